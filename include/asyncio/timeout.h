/**
 * \file asyncio/timeout.h
 * \brief Timeout scopes over a block of waits (asyncio's
 *        `async with asyncio.timeout(delay)` and `timeout_at(when)`), and
 *        asyncio_wait_for(), an await inside such a scope (asyncio.wait_for).
 *
 * \code
 * asyncio_timeout_t scope;
 * asyncio_timeout_enter(&scope, 1.5);
 * rc = asyncio_await(f, &result);   // -ETIMEDOUT after 1.5 s
 * ...                               // any other waits
 * if (asyncio_timeout_exit(&scope) == -ETIMEDOUT) ...
 * \endcode
 *
 * While a scope is open, every waiting call of the task that opened it
 * returns -ETIMEDOUT once the scope's deadline has passed: the one waiting
 * then, and every later one at once, until the scope is left. Scopes nest;
 * the nearest deadline wins. A timeout acts as a cancellation delivered as
 * -ETIMEDOUT: asyncio_await(), asyncio_gather() and asyncio_wait_for()
 * cancel what they wait for and wait until it has finished, as they do when
 * cancelled.
 *
 * Cancellation and timeout at the same moment: if a cancellation reaches
 * the task before it resumed from a wait its deadline ended, the wait
 * returns -ECANCELED (as in asyncio, an outside cancellation wins; so does
 * the one a task group makes to stop its body), and the scope does not
 * count as expired unless a later wait in it times out.
 *
 * A deadline that passes after a wait was satisfied (a result, a lock, an
 * item, readiness), before the task resumed, does not change what that
 * wait returns, unlike a cancellation (as in asyncio, where the woken task
 * runs before the timeout's callback): the scope is not expired, and the
 * task's next wait in it fails at once. A condition wait reports it only
 * if it had to wait for its lock (see <asyncio/sync.h>).
 *
 * The scope object belongs to the caller (usually on the task's stack) and
 * must stay in place until asyncio_timeout_exit(). Scopes are left in the
 * reverse order they were entered.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_TIMEOUT_H
#define ASYNCIO_TIMEOUT_H

#include <asyncio/common.h>
#include <asyncio/future.h>
#include <asyncio/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A timeout scope (asyncio.Timeout).
 *
 * Opaque: its fields are private, set by asyncio_timeout_enter() or
 * asyncio_timeout_enter_at(). The caller provides the object and keeps it
 * in place until asyncio_timeout_exit().
 */
typedef struct asyncio_timeout {
    /** \cond PRIVATE */
    /* Private: set by asyncio_timeout_enter(). */
    struct asyncio_timeout *outer;
    void *task;
    uint64_t deadline_ns; /* UINT64_MAX: none */
    int expired;
    int open;
    /** \endcond */
} asyncio_timeout_t;

/**
 * Open a scope for the calling task whose deadline is delay seconds from now
 * (asyncio.timeout()).
 *
 * \param scope  the scope object, the caller's; it must stay in place until
 *               asyncio_timeout_exit()
 * \param delay  seconds; INFINITY: none, until rescheduled; 0 or less:
 *               already due
 * \return 0; -EINVAL (scope NULL, delay NaN, scope open in this task
 *         already: asyncio's RuntimeError), -EPERM (not in a
 *         task).
 * \suspends No.
 * \context A task.
 */
ASYNCIO_API int asyncio_timeout_enter(asyncio_timeout_t *scope, double delay);

/**
 * Open a scope for the calling task with a deadline on asyncio_loop_time()'s
 * clock (asyncio.timeout_at()).
 *
 * \param scope  the scope object, as asyncio_timeout_enter()
 * \param when   the deadline in loop time; INFINITY: none; a past time:
 *               already due
 * \return 0; -EINVAL (scope NULL, when NaN, scope open in this task
 *         already), -EPERM (not in a task).
 * \suspends No.
 * \context A task.
 */
ASYNCIO_API int asyncio_timeout_enter_at(asyncio_timeout_t *scope, double when);

/**
 * Move an open scope's deadline (Timeout.reschedule()).
 *
 * A wait in progress in the scope's task takes the new deadline at once:
 * one already past ends that wait now, with -ETIMEDOUT, so that nothing that
 * comes after it (in the same iteration) can satisfy it, as with asyncio's
 * reschedule.
 *
 * \param scope  an open scope, of any task of the loop
 * \param when   the new deadline in loop time; INFINITY: none; a past time:
 *               due now
 * \return 0; -EINVAL (scope NULL, when NaN, or scope not open), -ENOMEM (the
 *         timer of the wait in progress could not be armed: the scope and
 *         the wait keep their deadline).
 * \suspends No.
 * \context The loop's thread: any task or callback of the loop.
 */
ASYNCIO_API int asyncio_timeout_reschedule(asyncio_timeout_t *scope, double when);

/**
 * The scope's deadline (Timeout.when()).
 *
 * \param scope  the scope
 * \return the deadline in loop time, INFINITY for none; NaN for NULL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API double asyncio_timeout_when(const asyncio_timeout_t *scope);

/**
 * Whether a wait in the scope returned -ETIMEDOUT because of its deadline
 * (Timeout.expired()).
 *
 * \param scope  the scope
 * \return 1 if it did, 0 if not; -EINVAL (NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_timeout_expired(const asyncio_timeout_t *scope);

/**
 * Close the scope (the end of asyncio's `async with` block).
 *
 * \param scope  the task's innermost open scope
 * \return 0; -ETIMEDOUT if it expired (see above); -EINVAL if scope is NULL,
 *         not open, or not the task's innermost open scope; -EPERM if not
 *         called by the task that opened it.
 * \suspends No.
 * \context A task: the one that opened the scope.
 */
ASYNCIO_API int asyncio_timeout_exit(asyncio_timeout_t *scope);

/**
 * Wait for f at most timeout seconds (asyncio.wait_for()).
 *
 * This is asyncio_await() inside a timeout scope (see this file's
 * description), and returns as asyncio_await() does if f finished in time.
 * On timeout (its own, or an enclosing scope's) f is cancelled and, if a
 * task, waited for until it finished; then -ETIMEDOUT. But if its own
 * timeout came and f did not end cancelled (it finished in the same
 * iteration, before the caller resumed, or it was a task that caught the
 * cancellation and returned, or failed otherwise), f's outcome is
 * returned, as asyncio's wait_for does. If the caller is cancelled while
 * it waits, f is cancelled and waited for the same way, then -ECANCELED.
 *
 * \param f        the future or task to wait for
 * \param timeout  seconds; INFINITY: no limit; 0 or less: only if already
 *                 done
 * \param result   receives f's result as asyncio_await() does; may be NULL
 * \return as asyncio_await(): f's outcome; -ETIMEDOUT, -ECANCELED (see
 *         above), -EINVAL (f NULL, timeout NaN), -EPERM (not in a
 *         task), -EDEADLK (a task awaiting itself), -ENOMEM (the timer could
 *         not be armed), -EXDEV (debug mode: used from another loop's
 *         thread).
 * \suspends Yes: until f is done or the timeout has passed, and then for
 *           one more step of the loop, as asyncio's wait_for (f's callback
 *           completes a waiter, whose callback wakes the task); for a done
 *           f, those two steps only, but at once with a timeout of 0 or
 *           less or INFINITY (a plain await). Cancellation and timeout
 *           scopes end the wait, once f, cancelled, has finished.
 * \context A task.
 */
ASYNCIO_API int asyncio_wait_for(asyncio_future_t *f, double timeout, void **result);

#ifdef __cplusplus
}
#endif

#endif
