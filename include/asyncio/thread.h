/**
 * \file asyncio/thread.h
 * \brief Threads and loops: call_soon_threadsafe, executors, thread-safe
 *        futures.
 *
 * Threads and loops. The running loop as a handle other threads can use
 * (call_soon_threadsafe), executors that run blocking functions in threads
 * while a task waits (run_in_executor, to_thread), and thread-safe futures:
 * a task started from another thread (run_coroutine_threadsafe), or a
 * result another thread delivers to a task. The loop handle
 * (asyncio_loop_t), asyncio_get_running_loop(), asyncio_loop_ref() and
 * asyncio_loop_unref() are in <asyncio/loop.h>.
 *
 * Process-wide state: none. Each loop has its own default executor, made
 * on first use and shut down when the loop closes; executors made with
 * asyncio_executor_new() belong to whoever made them and may serve several
 * loops at once.
 *
 * Include <asyncio.h> rather than this file.
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

/**
 * Schedule cb(arg) to run in loop's thread, from any thread (asyncio's
 * loop.call_soon_threadsafe()).
 *
 * Wakes the loop if it sleeps; many calls in a row cost it one wake-up.
 * Callbacks from one thread run in the order they were made, as plain
 * callbacks (as asyncio_call_soon()'s) in a later iteration of the loop.
 * A callback accepted runs, unless the loop closes before it gets to it:
 * then release(arg) is called instead (in the loop's thread, as it
 * closes), so that nothing accepted is lost silently.
 *
 * \param loop     the loop. From another thread, the caller must hold a
 *                 reference to it (see asyncio_get_running_loop()) until
 *                 the call returns: the callback may run, and the loop
 *                 close, before it does, so a callback that drops a
 *                 reference must drop one taken for it before the call.
 * \param cb       the callback; not NULL
 * \param arg      passed to cb (or to release)
 * \param release  called with arg instead of cb if the loop closes before
 *                 it runs cb; may be NULL
 * \return 0 (accepted); -EINVAL (loop or cb NULL), -ESHUTDOWN (the loop has
 *         closed: neither cb nor release is called), -ENOMEM.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_call_soon_threadsafe(asyncio_loop_t *loop, asyncio_callback cb,
                                             void *arg, asyncio_callback release);

/* ---- executors ------------------------------------------------------------ */

/**
 * A blocking function to run in a thread (pthread's start routine).
 *
 * \param arg  what asyncio_run_in_executor() or asyncio_to_thread() was
 *             given
 * \return its result.
 */
typedef void *(*asyncio_thread_fn)(void *arg);

/**
 * What becomes of a blocking call's arg and result when the task that made
 * the call does not get them.
 *
 * That is when the task was cancelled or timed out while the function was
 * queued or running, the executor dropped the call, or the call failed
 * before it was queued: release(arg, result) is called once, after the
 * function returned (result is then what it returned), or instead of it
 * (result NULL). It is called in the loop's thread, except when that loop
 * has closed before the function returned: then in the thread that ran it.
 * May be NULL: nothing to release.
 *
 * \param arg     the call's argument
 * \param result  what the function returned, or NULL if it never ran
 */
typedef void (*asyncio_work_release)(void *arg, void *result);

/**
 * A pool of threads (concurrent.futures.ThreadPoolExecutor).
 *
 * Opaque: made by asyncio_executor_new(), ended by
 * asyncio_executor_shutdown().
 */
typedef struct asyncio_executor asyncio_executor_t;

/**
 * Options for asyncio_executor_new().
 *
 * Zero-initialise, then set.
 */
typedef struct asyncio_executor_options {
    /** The most threads it runs at once (0: min(32, number of CPUs + 4), as
     *  Python's; at most 4096). Threads start on demand, when work comes and
     *  no thread is idle, and exit after idle_timeout without work. */
    unsigned max_workers;
    /** Seconds an idle thread waits for work before it exits (0: 60; a
     *  negative value: never; not NaN). */
    double idle_timeout;
    /** Stack size of its threads in bytes (0: the system's default; else at
     *  least PTHREAD_STACK_MIN). */
    size_t stack_size;
    /** Microseconds a thread that finished a call waits for the next one
     *  without sleeping, yielding the CPU as it spins (at most
     *  ASYNCIO_BUSY_POLL_MAX_US).
     *
     *  A loop that hands calls over one after another then does not pay for
     *  waking a thread each time: lower latency for up to that much CPU per
     *  call. The default executor spins as long as its loop busy polls
     *  (busy_poll_us in asyncio_run_options_t, or $ASYNCIO_BUSY_POLL_US).
     *
     *  0 (the default): adaptive. With more than one CPU to run on, a
     *  thread spins for up to twice the time recent calls took to follow
     *  one another, between 5 and 50 us, and not at all while they come
     *  further apart than 50 us; the loop that waits for a call does the
     *  same on its side (for calls that recently came back that fast). A
     *  to_thread() round trip of a short function then costs no wake-up
     *  on either side, in less time and less CPU than with one; a program
     *  that makes calls seldom never spins. With one CPU nothing spins. */
    unsigned spin_us;
} asyncio_executor_options_t;

/**
 * Make an executor (concurrent.futures.ThreadPoolExecutor()).
 *
 * No thread starts until work comes. End it with
 * asyncio_executor_shutdown().
 *
 * \param out   receives the executor; not NULL
 * \param opts  the options, or NULL (the defaults)
 * \return 0; -EINVAL (out NULL, max_workers above 4096, idle_timeout NaN,
 *         a stack size below PTHREAD_STACK_MIN, spin_us above
 *         ASYNCIO_BUSY_POLL_MAX_US), -ENOMEM.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_executor_new(asyncio_executor_t **out,
                                     const asyncio_executor_options_t *opts);

/* Flags for asyncio_executor_shutdown() (executor.shutdown()'s). */
/** A flag of asyncio_executor_shutdown(): wait for its threads to exit (wait=True). */
#define ASYNCIO_SHUTDOWN_WAIT 1u
/** A flag of asyncio_executor_shutdown(): drop the work not started (cancel_futures=True). */
#define ASYNCIO_SHUTDOWN_CANCEL_FUTURES 2u

/**
 * Shut ex down (executor.shutdown()): it accepts no more work (-ESHUTDOWN).
 *
 * With ASYNCIO_SHUTDOWN_CANCEL_FUTURES the calls queued and not started
 * are dropped: their tasks get -ECANCELED and their release functions are
 * called; without it the threads run them first. Functions already running
 * run to their end (a thread cannot be stopped). With ASYNCIO_SHUTDOWN_WAIT
 * the call returns once every thread has exited: in a task it suspends
 * (other tasks run), in a thread with no running loop it blocks; without
 * it, it returns at once and the threads finish on their own. Either way
 * ex is freed once its last thread has exited, and must not be used after
 * this call.
 * Calls made while a shutdown is under way (in other tasks or threads) get
 * -ESHUTDOWN.
 *
 * \param ex     the executor, from asyncio_executor_new(); not NULL
 * \param flags  0, ASYNCIO_SHUTDOWN_WAIT, ASYNCIO_SHUTDOWN_CANCEL_FUTURES, or
 *               both or'ed
 * \return 0; with nothing done: -EINVAL (ex NULL), -EPERM
 *         (ASYNCIO_SHUTDOWN_WAIT in a loop's thread outside a task while the
 *         loop runs, where waiting would block the loop), -EDEADLK
 *         (ASYNCIO_SHUTDOWN_WAIT from one of ex's own functions, which would
 *         wait for itself) or -ENOMEM (ASYNCIO_SHUTDOWN_WAIT in a task); or,
 *         in a task that was cancelled or timed out while it waited,
 *         -ECANCELED or -ETIMEDOUT (the shutdown goes on without it).
 * \suspends Yes, with ASYNCIO_SHUTDOWN_WAIT in a task: until every thread of
 *           ex has exited. Cancellation and timeout scopes end the wait.
 *           Without the flag, no.
 * \context Any thread. With ASYNCIO_SHUTDOWN_WAIT: a task (it suspends) or a
 *          thread whose loop is not running (it blocks), not a callback
 *          (-EPERM) nor one of ex's own functions (-EDEADLK).
 */
ASYNCIO_API int asyncio_executor_shutdown(asyncio_executor_t *ex, unsigned flags);

/**
 * Run fn(arg) in a thread of ex and wait for it (loop.run_in_executor()).
 *
 * On a cancellation or timeout the task stops waiting at once: a call
 * still queued is dropped (fn is never called, release(arg, NULL) is
 * called before this returns); one running runs to its end, and its result
 * goes to release.
 *
 * \param ex       the executor, or NULL: the running loop's default
 *                 executor, min(32, CPUs + 4) threads
 * \param fn       the function; not NULL
 * \param arg      passed to fn
 * \param release  what becomes of arg and the result if the caller does
 *                 not get them (asyncio_work_release); may be NULL
 * \param result   receives fn's return value, or NULL
 * \return 0 once fn returned, its return value in *result; arg and the
 *         result are then the caller's. Any other return means the caller
 *         does not get them, and release(arg, result) is called once, as
 *         asyncio_work_release says: -EINVAL (fn NULL), -EPERM (not in a
 *         task), -ENOMEM, -EAGAIN (no thread could be started and none
 *         runs), -ESHUTDOWN (ex is shut down), -ECANCELED (the task was
 *         cancelled, or the executor dropped the call), -ETIMEDOUT (a
 *         timeout scope expired).
 * \suspends Yes: until fn has returned. Cancellation and timeout scopes end
 *           the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_run_in_executor(asyncio_executor_t *ex, asyncio_thread_fn fn, void *arg,
                                        asyncio_work_release release, void **result);

/**
 * Run fn(arg) in a thread of the default executor and wait for it
 * (asyncio.to_thread()).
 *
 * asyncio_run_in_executor() with the default executor.
 *
 * \param fn       the function; not NULL
 * \param arg      passed to fn
 * \param release  as asyncio_run_in_executor()'s; may be NULL
 * \param result   receives fn's return value, or NULL
 * \return as asyncio_run_in_executor().
 * \suspends Yes: until fn has returned. Cancellation and timeout scopes end
 *           the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_to_thread(asyncio_thread_fn fn, void *arg, asyncio_work_release release,
                                  void **result);

/* ---- thread-safe futures -------------------------------------------------- */

/**
 * A future any thread may complete, wait for and cancel
 * (concurrent.futures.Future).
 *
 * What asyncio_run_coroutine_threadsafe() gives, and the way another
 * thread hands a result to a task. Reference counted: the maker holds one
 * reference. Opaque.
 */
typedef struct asyncio_cfuture asyncio_cfuture_t;

/**
 * Make a pending thread-safe future.
 *
 * \param out  receives the future (the caller's reference); not NULL
 * \return 0; -EINVAL (out NULL), -ENOMEM.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_cfuture_new(asyncio_cfuture_t **out);

/**
 * Take another reference to f (for another thread).
 *
 * \param f  the future; NULL is allowed
 * \return f.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API asyncio_cfuture_t *asyncio_cfuture_ref(asyncio_cfuture_t *f);

/**
 * Drop a reference to f; the last one frees f.
 *
 * A result nobody took is not freed (the library never owns what it points
 * to). A pending f whose last reference outside the loop futures of
 * asyncio_wrap_future() goes (nobody can complete it any more) ends as
 * cancelled, and they with it.
 *
 * \param f  the future; NULL is ignored
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API void asyncio_cfuture_unref(asyncio_cfuture_t *f);

/**
 * Complete f (Future.set_result(), set_exception()).
 *
 * Wakes every thread and task waiting for it.
 *
 * \param f       the future
 * \param status  >= 0: a success, with result; a negative errno: a failure
 *                (-ECANCELED: cancelled)
 * \param result  the result, for a success (ignored for a failure)
 * \return 0; -EINVAL (f NULL), -EALREADY (f is done already, for instance
 *         cancelled: result is still the caller's).
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_cfuture_set_result(asyncio_cfuture_t *f, int status, void *result);

/**
 * Cancel f (Future.cancel()).
 *
 * If it is pending it becomes done as cancelled (-ECANCELED) at once, and,
 * if it came from asyncio_run_coroutine_threadsafe(), its task is
 * cancelled in its loop (what that task later returns is ignored).
 *
 * \param f  the future
 * \return 1 if f was cancelled, 0 if it was done already; -EINVAL if f is
 *         NULL.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_cfuture_cancel(asyncio_cfuture_t *f);

/**
 * Whether f is done (Future.done()).
 *
 * \param f  the future
 * \return 1 if f is done, 0 if pending; -EINVAL if f is NULL.
 * \suspends No.
 * \context Any thread; from another than the one completing it, the answer
 *          may be outdated.
 */
ASYNCIO_API int asyncio_cfuture_done(asyncio_cfuture_t *f);

/**
 * Wait up to timeout seconds for f, then give its outcome (Future.result()).
 *
 * In a task it suspends (other tasks run; a cancellation or timeout scope
 * ends the wait with -ECANCELED or -ETIMEDOUT, f unchanged); in a thread
 * with no loop it blocks; in a loop's thread outside a task (its loop
 * running or not) it does not wait (-EPERM if f is pending and timeout is
 * not 0): f may be one that only this loop can complete
 * (asyncio_run_coroutine_threadsafe() on it), and blocking would wait for
 * ever. (asyncio_executor_shutdown() does block there between runs: it
 * waits for threads, which do not need the loop.) The result may be read
 * any number of times.
 *
 * \param f        the future
 * \param timeout  seconds: 0, do not wait; negative or infinite, no limit;
 *                 not NaN
 * \param result   receives the result of a success, or NULL
 * \return its status: >= 0, the result in *result; a negative errno for a
 *         failure, -ECANCELED if cancelled. Or -ETIMEDOUT if it is still
 *         pending; -EINVAL (f NULL, timeout NaN), -EPERM (see above),
 *         -ENOMEM, and in a task -ECANCELED, -ETIMEDOUT.
 * \suspends Yes, in a task: until f is done or timeout has passed.
 *           Cancellation and timeout scopes end the wait.
 * \context Any thread; in a loop's thread, a task (elsewhere there it
 *          cannot wait).
 */
ASYNCIO_API int asyncio_cfuture_result(asyncio_cfuture_t *f, double timeout, void **result);

/**
 * Start fn(arg, result) as a task in loop, from any thread
 * (asyncio.run_coroutine_threadsafe()).
 *
 * The loop may be another thread's. The future completes with the task's
 * outcome; cancelling it cancels the task. If loop closes before the task
 * starts, the future completes as cancelled.
 *
 * \param loop  the loop (from another thread: hold a reference to it, as
 *              asyncio_call_soon_threadsafe() says)
 * \param fn    the task's body; not NULL
 * \param arg   passed to fn
 * \param out   receives a thread-safe future (the caller's reference, to
 *              drop with asyncio_cfuture_unref()); not NULL
 * \return 0; -EINVAL (loop, fn or out NULL), -ESHUTDOWN (loop has closed),
 *         -ENOMEM.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_run_coroutine_threadsafe(asyncio_loop_t *loop, asyncio_fn fn, void *arg,
                                                 asyncio_cfuture_t **out);

/**
 * A loop future that completes with f's outcome (asyncio.wrap_future()).
 *
 * For gather(), wait() and the like. Cancelling the loop future (or a task
 * awaiting it being cancelled, a wait_for() timing out) cancels f, as in
 * asyncio, and so the task behind f if it came from
 * asyncio_run_coroutine_threadsafe(); completing it otherwise leaves f
 * alone.
 *
 * \param f    the thread-safe future; not NULL
 * \param out  receives a new future of this thread's loop (the caller's
 *             reference); not NULL
 * \return 0; -EINVAL (f or out NULL), -EPERM (no loop in this thread),
 *         -ENOMEM.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_wrap_future(asyncio_cfuture_t *f, asyncio_future_t **out);

#ifdef __cplusplus
}
#endif

#endif
