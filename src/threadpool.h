/* The thread layer: a small pool of threads per loop for work that must
 * block (getaddrinfo), and the way its results come back to the loop: an
 * eventfd (a pipe elsewhere) the loop watches with a callback. */
#ifndef ASYNCIO_THREADPOOL_H
#define ASYNCIO_THREADPOOL_H

#include "names.h"

#include "task.h"

/* One piece of blocking work. work() runs in a pool thread; then, in the
 * loop's thread, the task that waits for it is woken, or, if it went away
 * (cancelled), release() frees the job. */
struct job {
    struct job *next;
    void (*work)(struct job *job);
    void (*release)(struct job *job);
    struct task *waiter;
    bool finished;
};

/*
 * Run job in the pool and wait for it in the calling task: 0 once it has
 * finished (its results are in it), or -EPERM, -ENOMEM, -EAGAIN (no thread
 * could be started), -ECANCELED, -ETIMEDOUT. After an error the job belongs
 * to the pool, which calls release() when it is done with it; after 0 it is
 * the caller's again. May suspend.
 */
int threadpool_run(struct job *job);

/* Stop the loop's pool, if started; release the jobs nobody waits for. */
void threadpool_term(struct loop *loop);

#endif
