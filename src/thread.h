/* The thread layer: how other threads reach a loop (threadsafe.c), the
 * executors that run blocking functions for tasks (executor.c), and
 * thread-safe futures (cfuture.c).
 *
 * One way in. Everything another thread hands a loop (a callback of
 * asyncio_call_soon_threadsafe(), a finished executor call, a task to start,
 * a thread-safe future's completion) is posted to the loop's inbox, struct
 * asyncio_loop, and run by the loop in the order each thread posted it.
 *
 * The inbox is a ring of INBOX_RING slots that posters fill without a lock
 * (a bounded multi-producer queue after Dmitry Vyukov's: a poster claims
 * the position at tail with a compare-and-swap, fills the slot and
 * publishes it through the slot's sequence word; the loop reads published
 * slots in order and frees each as it runs it). A mutex would make the
 * loop and a poster posting in a loop meet on it at every take, and the
 * loop waiting for it is what held the callback rate to 0.7x a minimal
 * mutex queue's; the ring has no such meeting (bench/threads.sh).
 *
 * When the ring is full, posts go to the overflow under the mutex: an
 * array that grows, or, for posts the library makes on its own (struct
 * post, embedded in the object posted) when the array cannot grow, a
 * linked list, so those posts never fail for want of memory. Once the
 * overflow holds anything (overflowing), every post goes there, and the
 * loop takes the overflow only when the ring is empty with nothing
 * claimed since it looked (tail read again under the mutex): a poster's
 * slots in the ring were claimed before its later post went to the
 * overflow, so they are taken first, and its posts after the take go to
 * the ring again, for a later take. So each thread's posts run in its
 * order. (A poster that read overflowing just before it was set may still
 * claim one slot: that only delays the overflow's take by one.)
 *
 * Waking. The first post after the loop last read its wake-up fd (an
 * eventfd; a pipe elsewhere) writes it: signalled says it was written, so
 * a burst of posts costs one wake-up. The loop clears signalled before it
 * looks at the ring, a poster sets it after it published; both with
 * sequentially consistent operations, so either the loop sees the post or
 * the poster sees the flag clear and writes the fd (no wake-up is lost).
 * While it spins for posts (threads_spin()), the loop sets signalled itself,
 * so posters write nothing. An iteration that does not poll compares the
 * ring's tail with what it took instead (threads_pending()). Posts from
 * the loop's own thread write nothing: the loop takes at its next
 * iteration (take_next); the public call from there does not even post,
 * but queues the callback as asyncio_call_soon() would (threadsafe.c).
 *
 * Once the loop closes, its inbox refuses posts (tail gets INBOX_CLOSED,
 * the overflow closed under the mutex); what was posted and not run is
 * released.
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

/* The ring's size (a power of two) and the mark in tail of a closed inbox. */
#define INBOX_RING 1024u
#define INBOX_CLOSED ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* A slot of the ring. For position pos, whose slot is pos % INBOX_RING and
 * whose lap is base = pos - pos % INBOX_RING, seq is base while the slot
 * is free for pos, base + 1 once pos is published, base + INBOX_RING once
 * it has run (free for the next lap): so the zeroed ring is free. */
struct inbox_slot {
    atomic_size_t seq;
    asyncio_callback cb;
    void *arg;
};

/* Apart from the ring, on lines of their own (a pad where an aligned type
 * would need an aligned allocation): what posters write at every post,
 * what the loop writes at every take, and the rarely touched rest. */
struct asyncio_loop {
    atomic_size_t tail;          /* the next position to claim; INBOX_CLOSED once closed */
    char pad1_[64];
    atomic_bool signalled;       /* the wake-up fd was written and not read since (or the
                                    loop spins): posts need not write it */
    atomic_bool overflowing;     /* the overflow holds posts: every post goes there */
    char pad2_[64];
    struct inbox_slot *ring;     /* INBOX_RING slots */
    asyncio_callback *releases;  /* slot i's release, apart: the loop reads it only at close */
    int wake_rd, wake_wr;        /* an eventfd (one fd) or a pipe; closed with the
                                    last reference, as posters write it unlocked */
    /* Or, with the kqueue backend, its EVFILT_USER event (wake_rd and
     * wake_wr are -1): posters trigger it on the loop's kqueue, wake_kq,
     * which closes with the loop; so the close sets wake_closed and waits
     * until no poster is between reading it and triggering (notifying):
     * a poster sees the close, or the close sees the poster (both
     * sequentially consistent). */
    int wake_kq;
    int (*wake_trigger)(int kq);
    atomic_int notifying;
    atomic_bool wake_closed;
    atomic_uint refs;            /* the loop's own (until closed), and asyncio_loop_ref()'s */
    atomic_bool running;         /* loop->running, for other threads */
    atomic_bool debug_closed;    /* it closed in debug mode: a use after is reported */
    pthread_t owner;             /* the thread that made the loop, the only one to run it */
    struct loop *loop;           /* (owner) the loop, NULL once closed */
    pthread_mutex_t mu;          /* the overflow's */
    struct post_array in;        /* (mu) posted to the overflow, not yet taken */
    struct post *spill, **spill_tail; /* (mu) posted when in could not grow */
    bool closed;                 /* (mu) the loop has closed: no more posts */
};

/* Post cb(arg) to run in s's loop (release(arg) instead if it closes
 * first). 0, -ESHUTDOWN (closed), -ENOMEM. Any thread, holding a
 * reference to s until it returns. */
int loop_post(struct asyncio_loop *s, asyncio_callback cb, void *arg, asyncio_callback release);
/* Post p (its entry filled in). 0 or -ESHUTDOWN; never -ENOMEM. Any
 * thread; s is kept alive through the call (p's callback may drop the
 * reference that kept it). */
int loop_post_node(struct asyncio_loop *s, struct post *p);

/* The loop's side (its thread). The wake-up fd, when polled, makes the
 * loop take its inbox. An iteration that does not poll (work is ready and
 * no other fd is watched) takes if something was posted since it last
 * took; so does the next iteration after take_next was set. */
static inline bool threads_pending(struct loop *loop)
{
    struct asyncio_loop *s = loop->threads.shared;
    size_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed) & ~INBOX_CLOSED;
    return tail != loop->threads.taken_end ||
           atomic_load_explicit(&s->overflowing, memory_order_relaxed);
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
 * time costs no wake-up on either side. (A loop spins on its fds by the
 * same rule, with bounds of its own: loop.c's io_spin_or_sleep().) */
#define THREAD_SPIN_MIN_NS 5000u
#define THREAD_SPIN_MAX_NS 50000u

/* Note wait x (ns) in the running average *avg (0: none yet). Outliers are
 * capped, so that one long idle time does not turn spinning off for long. */
static inline void spin_note_capped(uint64_t *avg, uint64_t x, uint64_t cap)
{
    if (x > cap)
        x = cap;
    *avg = *avg ? (*avg * 7 + x) / 8 : x;
}

static inline void spin_note(uint64_t *avg, uint64_t x)
{
    spin_note_capped(avg, x, 4 * THREAD_SPIN_MAX_NS);
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
