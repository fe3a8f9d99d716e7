/*
 * <asyncio/loop.h>: running the event loop, time, and scheduled callbacks.
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_LOOP_H
#define ASYNCIO_LOOP_H

#include <asyncio/common.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The body of a task (and of the main task given to asyncio_run()).
 * It receives the argument it was created with and a pointer to its result
 * slot (initially NULL). It returns 0 (or more) when it succeeded, leaving
 * its result in *result, or a negative errno when it failed. Returning
 * -ECANCELED means the task finished as cancelled. A task whose cancellation
 * was requested but never delivered (it never waited afterwards) finishes as
 * cancelled even if it returns 0, as in asyncio.
 */
typedef int (*asyncio_fn)(void *arg, void **result);

/* A plain callback, run by the loop (not in a task: it must not wait). */
typedef void (*asyncio_callback)(void *arg);

/* Options for asyncio_run_ex(). Zero-initialise, then set what you need. */
typedef struct asyncio_run_options {
    /* Default stack size of tasks in bytes (0: ASYNCIO_STACK_DEFAULT).
     * Rounded up to the page size; at least ASYNCIO_STACK_MIN. */
    size_t stack_size;
    /* Poller backend: "epoll" (Linux), "poll" (any POSIX), or NULL for the
     * environment variable ASYNCIO_BACKEND, else the platform's best. */
    const char *backend;
    /* Busy polling, in microseconds (0: $ASYNCIO_BUSY_POLL_US, else off;
     * at most ASYNCIO_BUSY_POLL_MAX_US). When the loop is about to sleep
     * and its last sleep was short (at most twice this), it first polls
     * without blocking for up to this long: a request that comes within it
     * is taken without a sleep and a wake-up, which saves the peer that
     * sends it the cost of waking the loop, and the loop some latency. It
     * costs up to this much CPU per sleep while the loop is busy, nothing
     * when it is idle (a long sleep turns it off until a sleep is short
     * again). Worth it for a server on its own core that trades CPU for
     * throughput or latency; off by default. */
    unsigned busy_poll_us;
    /* Guard region below every task stack, in bytes (0:
     * ASYNCIO_STACK_GUARD_DEFAULT; rounded up to the page size, and maybe
     * a page more, so that stacks do not share cache sets; at most
     * ASYNCIO_STACK_GUARD_MAX). A task that runs past the end of its stack
     * faults in it and the program stops with a message naming the task.
     * Task code built without -fstack-clash-protection can jump over the
     * guard with a frame larger than it (a big local array) and write into
     * another task's stack unseen: build task code with that flag (gcc 8+,
     * clang 11+; it touches every page of a large frame in order), or make
     * the guard larger than any frame. Where the kernel has
     * MADV_GUARD_INSTALL (Linux 6.13+) a guard costs no memory; elsewhere
     * it is an mprotect'ed region, which costs address space only. */
    size_t stack_guard;
} asyncio_run_options_t;

#define ASYNCIO_BUSY_POLL_MAX_US 1000000u

#define ASYNCIO_STACK_MIN ((size_t)16 * 1024)
#define ASYNCIO_STACK_MAX ((size_t)1024 * 1024 * 1024)
#define ASYNCIO_STACK_DEFAULT ((size_t)256 * 1024)
#define ASYNCIO_STACK_GUARD_DEFAULT ((size_t)64 * 1024)
#define ASYNCIO_STACK_GUARD_MAX ((size_t)64 * 1024 * 1024)

/*
 * Create this thread's event loop, run main(arg, result) as its first task
 * (named "main") until it finishes, then cancel every task still alive and
 * run the loop until they have all finished (a task that catches the
 * cancellation and waits again is cancelled again), run the callbacks they
 * left ready, and free everything the loop created (tasks, futures,
 * handles, stacks); callbacks still scheduled for later never run.
 * Returns main's return value (0 or more, or a negative errno if main
 * failed, -ECANCELED if it finished cancelled); main's result is stored in
 * *result when result is not NULL.
 * Errors before main runs: -EINVAL (main is NULL, or
 * $ASYNCIO_BUSY_POLL_US is not a number of microseconds up to
 * ASYNCIO_BUSY_POLL_MAX_US), -EBUSY (a loop is already running in this
 * thread), -ENOENT (unknown backend), -ENOMEM.
 * Blocks the calling thread; it is not itself a task.
 */
ASYNCIO_API int asyncio_run(asyncio_fn main, void *arg, void **result);

/* asyncio_run() with options (opts may be NULL). Also -EINVAL for a stack
 * size outside [ASYNCIO_STACK_MIN, ASYNCIO_STACK_MAX], busy_poll_us above
 * ASYNCIO_BUSY_POLL_MAX_US, or stack_guard above ASYNCIO_STACK_GUARD_MAX. */
ASYNCIO_API int asyncio_run_ex(asyncio_fn main, void *arg, void **result,
                   const asyncio_run_options_t *opts);

/* The running loop's poller backend name ("epoll", "poll"), or NULL when no
 * loop runs in this thread. */
ASYNCIO_API const char *asyncio_loop_backend(void);

/* Seconds on the loop's monotonic clock (asyncio's loop.time()). Also
 * usable outside a loop: it reads the same clock. Never fails. */
ASYNCIO_API double asyncio_loop_time(void);

/* The same clock in nanoseconds. */
ASYNCIO_API uint64_t asyncio_loop_time_ns(void);

/*
 * A cancellable reference to a scheduled callback. It stays safe to use
 * (cancel, query) after the callback ran or was cancelled, for as long as
 * the loop lives: it then simply says the callback is no longer pending.
 */
typedef struct asyncio_handle {
    void *ptr;
    uint64_t id;
} asyncio_handle_t;

/*
 * Schedule cb(arg) to run in a later iteration of the loop. Callbacks run in
 * the order they were scheduled; one scheduled while the loop runs ready
 * callbacks runs in the next iteration, not the current one.
 * If handle is not NULL it receives a handle for asyncio_handle_cancel().
 * Returns 0, -EINVAL (cb is NULL), -EPERM (no loop runs in this thread),
 * -ENOMEM. Does not suspend.
 */
ASYNCIO_API int asyncio_call_soon(asyncio_callback cb, void *arg, asyncio_handle_t *handle);

/*
 * Schedule cb(arg) to run after delay seconds (0 allowed). Callbacks with
 * the same deadline run in the order they were scheduled.
 * Returns 0, -EINVAL (cb NULL, delay negative or NaN), -EPERM (no loop),
 * -ENOMEM. An infinite delay is accepted and never fires. Does not suspend.
 */
ASYNCIO_API int asyncio_call_later(double delay, asyncio_callback cb, void *arg,
                       asyncio_handle_t *handle);

/* Schedule cb(arg) at time when on asyncio_loop_time()'s clock (a past time
 * runs it in the next iteration). Errors as asyncio_call_later(). */
ASYNCIO_API int asyncio_call_at(double when, asyncio_callback cb, void *arg,
                    asyncio_handle_t *handle);

/*
 * Cancel a scheduled callback. Returns 1 if it was pending and now will not
 * run, 0 if it already ran or was cancelled, -EINVAL if handle is NULL or was
 * never filled in (all zero), -EPERM if no loop runs. O(log n) for
 * timers. Does not suspend.
 */
ASYNCIO_API int asyncio_handle_cancel(asyncio_handle_t *handle);

/* 1 if the callback behind handle is still pending, 0 if not, -EINVAL/-EPERM
 * as asyncio_handle_cancel(). */
ASYNCIO_API int asyncio_handle_pending(const asyncio_handle_t *handle);

#ifdef __cplusplus
}
#endif

#endif
