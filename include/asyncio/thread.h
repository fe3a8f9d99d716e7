/*
 * <asyncio/thread.h>: threads and loops. The running loop as a handle other
 * threads can use (call_soon_threadsafe), executors that run blocking
 * functions in threads while a task waits (run_in_executor, to_thread),
 * and thread-safe futures: a task started from another thread
 * (run_coroutine_threadsafe), or a result another thread delivers to a
 * task. Include <asyncio.h> rather than this file.
 *
 * Process-wide state: none. Each loop has its own default executor, made
 * on first use and shut down when the loop closes; executors made with
 * asyncio_executor_new() belong to whoever made them and may serve several
 * loops at once.
 */
#ifndef ASYNCIO_THREAD_H
#define ASYNCIO_THREAD_H

#include <asyncio/common.h>
#include <asyncio/loop.h>
#include <asyncio/future.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- into a loop from any thread ------------------------------------------ */

/* The loop handle (asyncio_loop_t), asyncio_get_running_loop(),
 * asyncio_loop_ref() and asyncio_loop_unref() are in <asyncio/loop.h>. */

/*
 * Schedule cb(arg) to run in loop's thread, from any thread (asyncio's
 * loop.call_soon_threadsafe()). Wakes the loop if it sleeps; many calls in
 * a row cost it one wake-up. Callbacks from one thread run in the order
 * they were made, as plain callbacks (as asyncio_call_soon()'s) in a later
 * iteration of the loop.
 * A callback accepted runs, unless the loop closes before it gets to it:
 * then release(arg) is called instead (in the loop's thread, as it
 * closes), so that nothing accepted is lost silently; release may be NULL.
 * From another thread, the caller must hold a reference to loop (see
 * asyncio_get_running_loop()) until the call returns: the callback may
 * run, and the loop close, before it does, so a callback that drops a
 * reference must drop one taken for it before the call.
 * Returns 0 (accepted), -EINVAL (loop or cb NULL), -ESHUTDOWN (the loop has
 * closed: neither cb nor release is called), -ENOMEM. Does not suspend.
 */
ASYNCIO_API int asyncio_call_soon_threadsafe(asyncio_loop_t *loop, asyncio_callback cb,
                                             void *arg, asyncio_callback release);

/* ---- executors ------------------------------------------------------------ */

/* A blocking function to run in a thread: what it returns is its result
 * (pthread's start routine). */
typedef void *(*asyncio_thread_fn)(void *arg);

/*
 * What becomes of a blocking call's arg and result when the task that made
 * the call does not get them (it was cancelled or timed out while the
 * function was queued or running, the executor dropped the call, or the
 * call failed before it was queued): release(arg, result) is called once,
 * after the function returned (result is then what it returned), or
 * instead of it (result NULL). It is called in the loop's thread, except
 * when that loop has closed before the function returned: then in the
 * thread that ran it. May be NULL: nothing to release.
 */
typedef void (*asyncio_work_release)(void *arg, void *result);

/* A pool of threads (concurrent.futures.ThreadPoolExecutor). */
typedef struct asyncio_executor asyncio_executor_t;

/* Options for asyncio_executor_new(). Zero-initialise, then set. */
typedef struct asyncio_executor_options {
    /* The most threads it runs at once (0: min(32, number of CPUs + 4), as
     * Python's). Threads start on demand, when work comes and no thread is
     * idle, and exit after idle_timeout without work. */
    unsigned max_workers;
    /* Seconds an idle thread waits for work before it exits (0: 60; a
     * negative value: never). */
    double idle_timeout;
    /* Stack size of its threads in bytes (0: the system's default). */
    size_t stack_size;
    /* Microseconds a thread that finished a call waits for the next one
     * without sleeping, yielding the CPU as it spins (at most
     * ASYNCIO_BUSY_POLL_MAX_US). A loop that hands calls over one after
     * another then does not pay for waking a thread each time: lower
     * latency for up to that much CPU per call. The default executor
     * spins as long as its loop busy polls (busy_poll_us in
     * asyncio_run_options_t, or $ASYNCIO_BUSY_POLL_US).
     * 0 (the default): adaptive. With more than one CPU to run on, a
     * thread spins for up to twice the time recent calls took to follow
     * one another, between 5 and 50 us, and not at all while they come
     * further apart than 50 us; the loop that waits for a call does the
     * same on its side (for calls that recently came back that fast). A
     * to_thread() round trip of a short function then costs no wake-up
     * on either side, in less time and less CPU than with one; a program
     * that makes calls seldom never spins. With one CPU nothing spins. */
    unsigned spin_us;
} asyncio_executor_options_t;

/*
 * Make an executor (opts may be NULL: the defaults). No thread starts
 * until work comes. 0, -EINVAL (max_workers above 4096, idle_timeout NaN,
 * a stack size below PTHREAD_STACK_MIN, spin_us above
 * ASYNCIO_BUSY_POLL_MAX_US), -ENOMEM. Any thread. End it with
 * asyncio_executor_shutdown().
 */
ASYNCIO_API int asyncio_executor_new(asyncio_executor_t **out,
                                     const asyncio_executor_options_t *opts);

/* Flags for asyncio_executor_shutdown() (executor.shutdown()'s). */
#define ASYNCIO_SHUTDOWN_WAIT 1u           /* wait for its threads to exit */
#define ASYNCIO_SHUTDOWN_CANCEL_FUTURES 2u /* drop the work not started */

/*
 * Shut ex down: it accepts no more work (-ESHUTDOWN). With
 * ASYNCIO_SHUTDOWN_CANCEL_FUTURES the calls queued and not started are
 * dropped: their tasks get -ECANCELED and their release functions are
 * called; without it the threads run them first. Functions already running
 * run to their end (a thread cannot be stopped). With ASYNCIO_SHUTDOWN_WAIT
 * the call returns once every thread has exited: in a task it suspends
 * (other tasks run), in a thread with no running loop it blocks; without
 * it, it returns at once and the threads finish on their own. Either way
 * ex is freed once its last thread has exited, and must not be used after
 * this call.
 * Calls made while a shutdown is under way (in other tasks or threads) get
 * -ESHUTDOWN.
 * Returns 0, -EINVAL (ex NULL), -EPERM (ASYNCIO_SHUTDOWN_WAIT in a loop's
 * thread outside a task, where waiting would block the loop), -EDEADLK
 * (ASYNCIO_SHUTDOWN_WAIT from one of ex's own functions, which would wait
 * for itself) or -ENOMEM (ASYNCIO_SHUTDOWN_WAIT in a task) with nothing
 * done, or, in a task that was cancelled or timed out while it waited,
 * -ECANCELED or -ETIMEDOUT (the shutdown goes on without it).
 */
ASYNCIO_API int asyncio_executor_shutdown(asyncio_executor_t *ex, unsigned flags);

/*
 * Run fn(arg) in a thread of ex (NULL: the running loop's default executor,
 * min(32, CPUs + 4) threads) and wait for it (loop.run_in_executor()).
 * Returns 0 once fn returned, its return value in *result (result may be
 * NULL); arg and the result are then the caller's. Any other return means
 * the caller does not get them, and release(arg, result) is called once,
 * as asyncio_work_release says: -EINVAL (fn NULL), -EPERM (not in a task),
 * -ENOMEM, -EAGAIN (no thread could be started and none runs),
 * -ESHUTDOWN (ex is shut down), -ECANCELED (the task was cancelled, or the
 * executor dropped the call), -ETIMEDOUT (a timeout scope expired). On a
 * cancellation or timeout the task stops waiting at once: a call still
 * queued is dropped (fn is never called, release(arg, NULL) is called
 * before this returns); one running runs to its end, and its result goes
 * to release.
 * May suspend; from a task.
 */
ASYNCIO_API int asyncio_run_in_executor(asyncio_executor_t *ex, asyncio_thread_fn fn, void *arg,
                                        asyncio_work_release release, void **result);

/* asyncio.to_thread(): asyncio_run_in_executor() with the default
 * executor. May suspend; from a task. */
ASYNCIO_API int asyncio_to_thread(asyncio_thread_fn fn, void *arg, asyncio_work_release release,
                                  void **result);

/* ---- thread-safe futures -------------------------------------------------- */

/*
 * A future any thread may complete, wait for and cancel
 * (concurrent.futures.Future): what asyncio_run_coroutine_threadsafe()
 * gives, and the way another thread hands a result to a task. Reference
 * counted: the maker holds one reference.
 */
typedef struct asyncio_cfuture asyncio_cfuture_t;

/* Make a pending thread-safe future. 0, -EINVAL (out NULL), -ENOMEM. Any
 * thread. */
ASYNCIO_API int asyncio_cfuture_new(asyncio_cfuture_t **out);

/* Take another reference (for another thread); returns f. Any thread. */
ASYNCIO_API asyncio_cfuture_t *asyncio_cfuture_ref(asyncio_cfuture_t *f);

/* Drop a reference; the last one frees f. NULL is ignored. A result
 * nobody took is not freed (the library never owns what it points to).
 * A pending f whose last reference outside the loop futures of
 * asyncio_wrap_future() goes (nobody can complete it any more) ends as
 * cancelled, and they with it. Any thread. */
ASYNCIO_API void asyncio_cfuture_unref(asyncio_cfuture_t *f);

/*
 * Complete f: status >= 0 with result (a success), or a negative errno (a
 * failure; -ECANCELED: cancelled). Wakes every thread and task waiting for
 * it. Returns 0, or -EINVAL (f NULL), -EALREADY (f is done already, for
 * instance cancelled: result is still the caller's). Any thread; does not
 * suspend.
 */
ASYNCIO_API int asyncio_cfuture_set_result(asyncio_cfuture_t *f, int status, void *result);

/*
 * Cancel f: if it is pending it becomes done as cancelled (-ECANCELED) at
 * once, and, if it came from asyncio_run_coroutine_threadsafe(), its task
 * is cancelled in its loop (what that task later returns is ignored).
 * Returns 1 if f was cancelled, 0 if it was done already, -EINVAL if f is
 * NULL. Any thread; does not suspend.
 */
ASYNCIO_API int asyncio_cfuture_cancel(asyncio_cfuture_t *f);

/* 1 if f is done, 0 if pending, -EINVAL if f is NULL. Any thread. */
ASYNCIO_API int asyncio_cfuture_done(asyncio_cfuture_t *f);

/*
 * Wait up to timeout seconds (0: do not wait; negative or infinite: no
 * limit) for f, then give its outcome: its status (>= 0, the result in
 * *result if result is not NULL; a negative errno for a failure,
 * -ECANCELED if cancelled), or -ETIMEDOUT if it is still pending. In a task
 * it suspends (other tasks run; a cancellation or timeout scope ends the
 * wait with -ECANCELED or -ETIMEDOUT, f unchanged); in a thread with no
 * running loop it blocks; in a loop's thread outside a task it does not
 * wait (-EPERM if f is pending and timeout is not 0). Also -EINVAL (f
 * NULL, timeout NaN), -ENOMEM. The result may be read any number of times.
 */
ASYNCIO_API int asyncio_cfuture_result(asyncio_cfuture_t *f, double timeout, void **result);

/*
 * Start fn(arg, result) as a task in loop (which may be another thread's)
 * from any thread (asyncio.run_coroutine_threadsafe()); *out receives a
 * thread-safe future (the caller's reference, to drop with
 * asyncio_cfuture_unref()) that completes with the task's outcome.
 * Cancelling the future cancels the task. If loop closes before the task
 * starts, the future completes as cancelled.
 * Returns 0, -EINVAL (loop, fn or out NULL), -ESHUTDOWN (loop has closed),
 * -ENOMEM. Does not suspend.
 */
ASYNCIO_API int asyncio_run_coroutine_threadsafe(asyncio_loop_t *loop, asyncio_fn fn, void *arg,
                                                 asyncio_cfuture_t **out);

/*
 * A loop future that completes with f's outcome (asyncio.wrap_future()),
 * for gather(), wait() and the like: *out is a new future of the running
 * loop (the caller's reference). Cancelling the loop future (or a task
 * awaiting it being cancelled, a wait_for() timing out) cancels f, as in
 * asyncio, and so the task behind f if it came from
 * asyncio_run_coroutine_threadsafe(); completing it otherwise leaves f
 * alone. Returns 0, -EINVAL (f or out NULL), -EPERM (no loop
 * runs in this thread), -ENOMEM. Does not suspend.
 */
ASYNCIO_API int asyncio_wrap_future(asyncio_cfuture_t *f, asyncio_future_t **out);

#ifdef __cplusplus
}
#endif

#endif
