/*
 * <asyncio/future.h>: futures, the results that tasks wait for, and the
 * calls that wait for one (await, shield).
 * Include <asyncio.h> rather than this file.
 *
 * A future is pending, then done exactly once: with a result (void *),
 * failed with an error code (a negative errno), or cancelled. A task is a
 * future too (asyncio_task_t is the same type), so every function here also
 * takes a task.
 *
 * Futures are reference counted: the creator holds one reference and drops
 * it with asyncio_future_release(). Whatever is still alive when the loop
 * closes is freed then.
 *
 * A future or task that failed (with an error other than -ECANCELED) and
 * whose outcome nobody looked at (asyncio_await, asyncio_future_result,
 * asyncio_gather, asyncio_wait_for, a task group, ...) is reported on stderr
 * when it is freed, as asyncio's "Task exception was never retrieved":
 *     asyncio: Task exception was never retrieved: task "worker" failed
 *     with -5 (Input/output error)
 */
#ifndef ASYNCIO_FUTURE_H
#define ASYNCIO_FUTURE_H

#include <asyncio/common.h>
#include <asyncio/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asyncio_future asyncio_future_t;

/* Called (through the ready queue, never inline) once f is done. */
typedef void (*asyncio_done_callback)(asyncio_future_t *f, void *arg);

/* Create a pending future in the running loop. Returns 0 and stores it in
 * *out, or -EINVAL (out NULL), -EPERM (no loop), -ENOMEM. */
ASYNCIO_API int asyncio_future_new(asyncio_future_t **out);

/* Drop a reference (NULL is ignored). The future is freed when the last
 * reference goes; callbacks and waiters keep their own. */
ASYNCIO_API void asyncio_future_release(asyncio_future_t *f);

/* Take one more reference to f, which the caller must release. Returns f. */
ASYNCIO_API asyncio_future_t *asyncio_future_retain(asyncio_future_t *f);

/*
 * Mark f done with result. Waiters are woken and done callbacks scheduled.
 * Returns 0, -EINVAL (f NULL, or f is a task: a task's result is what its
 * function returns), -EALREADY (f is already done: a result is set once).
 */
ASYNCIO_API int asyncio_future_set_result(asyncio_future_t *f, void *result);

/* Mark f failed with error, a negative errno (-ECANCELED cancels it).
 * Returns 0, -EINVAL (f NULL or a task, error >= 0), -EALREADY (done). */
ASYNCIO_API int asyncio_future_set_error(asyncio_future_t *f, int error);

/*
 * Cancel f. A pending future becomes cancelled at once; for a task this is
 * asyncio_task_cancel(). Returns 1 if cancelled (or, for a task, if a
 * cancellation was requested), 0 if f was already done (nothing happens),
 * -EINVAL if f is NULL.
 */
ASYNCIO_API int asyncio_future_cancel(asyncio_future_t *f);

/* 1 if f is done (result, error or cancelled), 0 if pending, -EINVAL (NULL). */
ASYNCIO_API int asyncio_future_done(const asyncio_future_t *f);

/* 1 if f finished cancelled, 0 if not, -EINVAL (NULL). */
ASYNCIO_API int asyncio_future_cancelled(const asyncio_future_t *f);

/*
 * How f ended, without waiting: 0 (or the task's non-negative return value)
 * with the result in *result (if result is not NULL), the error it failed
 * with, -ECANCELED if cancelled, -EAGAIN if still pending, -EINVAL (NULL).
 */
ASYNCIO_API int asyncio_future_result(const asyncio_future_t *f, void **result);

/*
 * Call cb(f, arg) once f is done: through the ready queue, in the order the
 * callbacks were added; if f is already done, it is scheduled now. Returns
 * 0, -EINVAL (f or cb NULL), -ENOMEM. Does not suspend.
 */
ASYNCIO_API int asyncio_future_add_done_callback(asyncio_future_t *f,
                                     asyncio_done_callback cb, void *arg);

/* Remove every not-yet-scheduled callback equal to (cb, arg). Returns how
 * many were removed (0 or more), -EINVAL (f or cb NULL). */
ASYNCIO_API int asyncio_future_remove_done_callback(asyncio_future_t *f,
                                        asyncio_done_callback cb, void *arg);

/*
 * Wait until f is done (asyncio's `await f`), then return as
 * asyncio_future_result() does. Awaiting a done future does not suspend.
 * If the calling task is cancelled while it waits (or has a cancellation
 * pending when f is not done), f is cancelled too (as in asyncio: a plain future becomes cancelled, a task gets a cancellation
 * request), the call waits until f has finished, and returns -ECANCELED
 * whatever f's outcome (see asyncio_future_result() for it). f is
 * cancelled when the task resumes, so a result f got before that, after
 * the cancellation came, is kept (asyncio cancels f at once). A further
 * cancellation while it waits for f to finish is passed on to f too, as
 * in asyncio; it is part of this -ECANCELED, or, when a timeout ended the
 * wait (-ETIMEDOUT), reported by the task's next wait. May suspend.
 * Errors: -EPERM (not in a task), -EINVAL (f NULL), -EDEADLK (a task
 * awaiting itself), -ECANCELED.
 */
ASYNCIO_API int asyncio_await(asyncio_future_t *f, void **result);

/*
 * Wait for f without letting a cancellation of the caller reach it
 * (asyncio.shield): if the calling task is cancelled (or times out) while
 * it waits, the call returns -ECANCELED (-ETIMEDOUT) at once and f goes on.
 * Otherwise returns as asyncio_await() does. May suspend. -EINVAL, -EPERM,
 * -EDEADLK as asyncio_await().
 */
ASYNCIO_API int asyncio_shield(asyncio_future_t *f, void **result);

#ifdef __cplusplus
}
#endif

#endif
