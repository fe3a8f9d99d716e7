/* The thread layer: how other threads reach a loop (threadsafe.c), the
 * executors that run blocking functions for tasks (executor.c), and
 * thread-safe futures (cfuture.c).
 *
 * One way in. Everything another thread hands a loop (a callback of
 * asyncio_call_soon_threadsafe(), a finished executor call, a task to start,
 * a thread-safe future's completion) is posted to the loop's inbox, struct
 * asyncio_loop, under its mutex (an adaptive one where glibc has it: a
 * producer posting in a loop and the loop taking meet on it for a few
 * instructions at a time). The first post after the loop last read its
 * wake-up fd (an eventfd; a pipe elsewhere) writes it, after the mutex is
 * released, so a burst of posts costs one wake-up; every post sets the
 * pending flag, which an iteration that does not poll reads instead. The
 * loop takes the whole inbox in one swap, and runs it as one item of its
 * ready queue, in the order posted. Posts from the loop's own thread write
 * nothing: the loop takes at its next iteration (take_next); the public
 * call from there does not even post, but queues the callback as
 * asyncio_call_soon() would (threadsafe.c). Once the loop closes, its
 * inbox refuses posts; what was posted and not run is released.
 *
 * The inbox holds copies of (cb, arg, release) in an array that grows (no
 * allocation per post once it is large enough), or, for posts the library
 * makes on its own (struct post, embedded in the object posted), a linked
 * list when the array cannot grow: those posts never fail for want of
 * memory. Once anything is on that list, every post goes there, so the
 * order is kept.
 */
#ifndef ASYNCIO_THREAD_INTERNAL_H
#define ASYNCIO_THREAD_INTERNAL_H

#include "names.h"

#include "task.h"

#include <asyncio/thread.h>

#include <pthread.h>
#include <stdatomic.h>

/* A post that cannot fail for want of memory: embedded in what is posted. */
struct post {
    struct post *next;
    struct post_entry e;
    bool heap; /* made by loop_post(): freed once run or released */
};

struct asyncio_loop {
    pthread_mutex_t mu;
    struct post_array in;     /* (mu) posted, not yet taken */
    struct post *spill, **spill_tail; /* (mu) posted when in could not grow */
    bool signalled;           /* (mu) the wake-up fd was written and not read since */
    bool closed;              /* (mu) the loop has closed: no more posts */
    int wake_rd, wake_wr;     /* an eventfd (one fd) or a pipe; closed with the
                                 last reference, as posters write it unlocked */
    atomic_bool pending;      /* something was posted since the last take */
    atomic_uint refs;         /* the loop's own (until closed), and asyncio_loop_ref()'s */
    atomic_bool running;      /* loop->running, for other threads */
    pthread_t owner;          /* the thread that made the loop, the only one to run it */
    struct loop *loop;        /* (owner) the loop, NULL once closed */
};

/* Post cb(arg) to run in s's loop (release(arg) instead if it closes
 * first). 0, -ESHUTDOWN (closed), -ENOMEM. Any thread. */
int loop_post(struct asyncio_loop *s, asyncio_callback cb, void *arg, asyncio_callback release);
/* Post p (its entry filled in). 0 or -ESHUTDOWN; never -ENOMEM. */
int loop_post_node(struct asyncio_loop *s, struct post *p);

/* The loop's side (its thread). The wake-up fd, when polled, makes the
 * loop take its inbox. An iteration that does not poll (work is ready and
 * no other fd is watched) takes if the pending flag says there is
 * something; so does the next iteration after take_next was set. */
static inline bool threads_pending(struct loop *loop)
{
    return atomic_load_explicit(&loop->threads.shared->pending, memory_order_relaxed);
}
void threads_take(struct loop *loop);
int threads_init(struct loop *loop);
/* Shut the default executor down (waiting for its threads), close the
 * inbox, release what it holds, drop the loop's reference. */
void threads_term(struct loop *loop);

/* Adaptive spinning. Waking a sleeping thread costs both sides system
 * calls and, across cores, the wake-up of an idle CPU (tens of
 * microseconds in a virtual machine), more than the wait itself when a
 * call to an executor takes a few microseconds. So, with no busy polling
 * asked for, a loop about to sleep with calls out spins on its inbox, and
 * an executor's thread that finished a call spins for the next one, for
 * up to twice the time such waits have recently taken (an average over
 * the last few), between THREAD_SPIN_MIN_NS and THREAD_SPIN_MAX_NS; not
 * at all once they take longer than THREAD_SPIN_MAX_NS, or with a single
 * CPU to run on (the spinner would only keep the thread it waits for off
 * it). A spin that fails only costs its budget; a wait that comes in
 * time costs no wake-up on either side. */
#define THREAD_SPIN_MIN_NS 5000u
#define THREAD_SPIN_MAX_NS 50000u

/* Note wait x (ns) in the running average *avg (0: none yet). Outliers are
 * capped, so that one long idle time does not turn spinning off for long. */
static inline void spin_note(uint64_t *avg, uint64_t x)
{
    if (x > 4 * THREAD_SPIN_MAX_NS)
        x = 4 * THREAD_SPIN_MAX_NS;
    *avg = *avg ? (*avg * 7 + x) / 8 : x;
}

/* How long to spin, for the average wait avg: 0 if it is too long. */
static inline uint64_t spin_budget(uint64_t avg)
{
    if (!avg || avg > THREAD_SPIN_MAX_NS)
        return 0;
    uint64_t b = 2 * avg;
    return b < THREAD_SPIN_MIN_NS ? THREAD_SPIN_MIN_NS : b > THREAD_SPIN_MAX_NS ? THREAD_SPIN_MAX_NS : b;
}

/* A spin that fails (what it waited for came later) makes the next ones
 * wait: 2, 4, ... up to 256 waits in a row do not spin, so that on a
 * machine whose CPUs are busy with other work, where the thread a spinner
 * waits for cannot run, spinning stops costing it (an adaptive mutex backs
 * off the same way). A spin that succeeds ends the back-off. (struct
 * spin_backoff is in loop.h, as the loop holds one.) */

static inline bool spin_allowed(struct spin_backoff *b)
{
    if (!b->skip)
        return true;
    b->skip--;
    return false;
}

static inline void spin_result(struct spin_backoff *b, bool ok)
{
    if (ok) {
        b->fails = 0;
        return;
    }
    if (b->fails < 8)
        b->fails++;
    b->skip = 1u << b->fails;
}

/* A hint to the CPU that this is a spin loop. */
static inline void cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Whether the calling thread may run on more than one CPU. */
bool thread_multi_cpu(void);

/* The loop's side of a spin: until something is posted or budget_ns has
 * passed, posters told not to write the wake-up fd; then take. True if
 * something was posted (and taken). */
bool threads_spin(struct loop *loop, uint64_t budget_ns);

/* Condition variables on the monotonic clock (where the system can). */
int thread_cond_init(pthread_cond_t *cv);
/* Wait on cv (mu held) until signalled or the clock reaches deadline_ns
 * (UINT64_MAX: none): 0 or -ETIMEDOUT. */
int thread_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns);

/* A task's wait for a thread-safe future (cfuture.c), in two steps, for
 * a wait that must not fail for want of memory once begun: the record,
 * made for t (NULL: no memory; cfuture_wait_free() if unused), and the
 * wait of the running task t, until deadline (task_park_until()'s value;
 * 0: f is done), which frees the record. */
struct cf_wait;
struct cf_wait *cfuture_wait_new(struct task *t);
void cfuture_wait_free(struct cf_wait *w);
int cfuture_wait_park(asyncio_cfuture_t *f, struct cf_wait *w, uint64_t deadline);
/* Drop the thread-safe futures the loop's pending wrap_future() futures
 * hold (the loop is closing: they will never be cancelled). */
void cfuture_wraps_term(struct loop *loop);

/* Executors (executor.c). */
/* The loop's default executor, made on first use: NULL with *err set. */
asyncio_executor_t *executor_default(struct loop *loop, int *err);
/* Drop queued work and wait for the threads (the loop is closing). */
void executor_close_default(struct loop *loop);

#endif
