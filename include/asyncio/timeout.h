/*
 * <asyncio/timeout.h>: timeout scopes over a block of waits (asyncio's
 * `async with asyncio.timeout(delay)` and `timeout_at(when)`), and
 * asyncio_wait_for(), an await inside such a scope (asyncio.wait_for).
 * Include <asyncio.h> rather than this file.
 *
 *     asyncio_timeout_t scope;
 *     asyncio_timeout_enter(&scope, 1.5);
 *     rc = asyncio_await(f, &result);   // -ETIMEDOUT after 1.5 s
 *     ...                               // any other waits
 *     if (asyncio_timeout_exit(&scope) == -ETIMEDOUT) ...
 *
 * While a scope is open, every waiting call of the task that opened it
 * returns -ETIMEDOUT once the scope's deadline has passed: the one waiting
 * then, and every later one at once, until the scope is left. Scopes nest;
 * the nearest deadline wins. A timeout acts as a cancellation delivered as
 * -ETIMEDOUT: asyncio_await, asyncio_gather and asyncio_wait_for cancel what
 * they wait for and wait until it has finished, as they do when cancelled.
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
 * task's next wait in it fails at once. A condition wait, which is over
 * only once it has its lock back, reports it (see <asyncio/sync.h>).
 *
 * The scope object belongs to the caller (usually on the task's stack) and
 * must stay in place until asyncio_timeout_exit(). Scopes are left in the
 * reverse order they were entered.
 */
#ifndef ASYNCIO_TIMEOUT_H
#define ASYNCIO_TIMEOUT_H

#include <asyncio/common.h>
#include <asyncio/future.h>
#include <asyncio/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asyncio_timeout {
    /* Private: set by asyncio_timeout_enter(). */
    struct asyncio_timeout *outer;
    void *task;
    uint64_t deadline_ns; /* UINT64_MAX: none */
    int expired;
    int open;
} asyncio_timeout_t;

/*
 * Open a scope whose deadline is delay seconds from now (INFINITY: none,
 * until rescheduled; 0: already due) for the calling task. Returns 0,
 * -EINVAL (scope NULL, delay negative or NaN), -EPERM (not in a task).
 * Does not suspend.
 */
ASYNCIO_API int asyncio_timeout_enter(asyncio_timeout_t *scope, double delay);

/* The same with a deadline on asyncio_loop_time()'s clock (INFINITY: none;
 * a past time: already due). -EINVAL for NaN. */
ASYNCIO_API int asyncio_timeout_enter_at(asyncio_timeout_t *scope, double when);

/*
 * Move an open scope's deadline to when (loop time; INFINITY: none). May be
 * called by any task or callback of the loop; a wait in progress in the
 * scope's task takes the new deadline at once: one already past ends that
 * wait now, with -ETIMEDOUT, so that nothing that comes after it (in the
 * same iteration) can satisfy it, as with asyncio's reschedule. Returns 0,
 * -EINVAL (NULL, NaN, or a scope not open).
 */
ASYNCIO_API int asyncio_timeout_reschedule(asyncio_timeout_t *scope, double when);

/* The scope's deadline on loop time (INFINITY: none), or NaN for NULL. */
ASYNCIO_API double asyncio_timeout_when(const asyncio_timeout_t *scope);

/* 1 if a wait in the scope returned -ETIMEDOUT because of its deadline,
 * 0 if not, -EINVAL (NULL). */
ASYNCIO_API int asyncio_timeout_expired(const asyncio_timeout_t *scope);

/*
 * Close the scope. Returns -ETIMEDOUT if it expired (see above), else 0;
 * -EINVAL if scope is NULL, not open, or not the task's innermost open
 * scope; -EPERM if not called by the task that opened it. Does not suspend.
 */
ASYNCIO_API int asyncio_timeout_exit(asyncio_timeout_t *scope);

/*
 * Wait for f (a future or a task) at most timeout seconds (INFINITY: no
 * limit; 0: only if already done): asyncio_await() inside a timeout scope
 * (see <asyncio/timeout.h>). Returns as asyncio_await() does if f finished
 * in time. On timeout (its own, or an enclosing scope's) f is cancelled
 * and, if a task, waited for until it finished; then -ETIMEDOUT. If the
 * caller is cancelled while it waits, f is cancelled and waited for the
 * same way, then -ECANCELED.
 * May suspend. Also -EINVAL (f NULL, timeout negative or NaN), -EPERM,
 * -EDEADLK.
 */
ASYNCIO_API int asyncio_wait_for(asyncio_future_t *f, double timeout, void **result);

#ifdef __cplusplus
}
#endif

#endif
