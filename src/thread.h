/* The thread layer: how other threads reach a loop (threadsafe.c), the
 * executors that run blocking functions for tasks (executor.c), and
 * thread-safe futures (cfuture.c).
 *
 * One way in. Everything another thread hands a loop (a callback of
 * asyncio_call_soon_threadsafe(), a finished executor call, a task to start,
 * a thread-safe future's completion) is posted to the loop's inbox, struct
 * asyncio_loop, under its mutex. The first post after the loop last took
 * its inbox writes the loop's wake-up fd (an eventfd; a pipe elsewhere),
 * so a burst of posts costs one wake-up, and sets the pending flag, which
 * the loop reads at every iteration without a system call. The loop takes
 * the whole inbox in one swap, and runs it as one item of its ready queue,
 * in the order posted. Once the loop closes, its inbox refuses posts; what
 * was posted and not run is released.
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
    bool signalled;           /* (mu) the wake-up fd was written since the last take */
    bool closed;              /* (mu) the loop has closed: no more posts */
    int wake_rd, wake_wr;     /* (mu) an eventfd (one fd) or a pipe; -1 once closed */
    atomic_bool pending;      /* something was posted since the last take */
    atomic_uint refs;         /* the running loop's, and asyncio_loop_ref()'s */
};

/* Post cb(arg) to run in s's loop (release(arg) instead if it closes
 * first). 0, -ESHUTDOWN (closed), -ENOMEM. Any thread. */
int loop_post(struct asyncio_loop *s, asyncio_callback cb, void *arg, asyncio_callback release);
/* Post p (its entry filled in). 0 or -ESHUTDOWN; never -ENOMEM. */
int loop_post_node(struct asyncio_loop *s, struct post *p);

/* The loop's side (its thread): take the inbox when the flag says there
 * is something in it; true if pending. */
static inline bool threads_pending(struct loop *loop)
{
    return atomic_load_explicit(&loop->threads.shared->pending, memory_order_relaxed);
}
void threads_take(struct loop *loop);
int threads_init(struct loop *loop);
/* Shut the default executor down (waiting for its threads), close the
 * inbox, release what it holds, drop the loop's reference. */
void threads_term(struct loop *loop);

/* Condition variables on the monotonic clock (where the system can). */
int thread_cond_init(pthread_cond_t *cv);
/* Wait on cv (mu held) until signalled or the clock reaches deadline_ns
 * (UINT64_MAX: none): 0 or -ETIMEDOUT. */
int thread_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns);

/* Executors (executor.c). */
/* The loop's default executor, made on first use: NULL with *err set. */
asyncio_executor_t *executor_default(struct loop *loop, int *err);
/* Drop queued work and wait for the threads (the loop is closing). */
void executor_close_default(struct loop *loop);

#endif
