/*
 * <asyncio/gather.h>: waiting on several futures or tasks at once
 * (asyncio.gather, asyncio.wait and asyncio.as_completed). Include
 * <asyncio.h> rather than this file.
 *
 * One future or task is awaited with asyncio_await() or asyncio_shield()
 * (<asyncio/future.h>), or with asyncio_wait_for() (<asyncio/timeout.h>).
 */
#ifndef ASYNCIO_GATHER_H
#define ASYNCIO_GATHER_H

#include <asyncio/common.h>
#include <asyncio/future.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags for asyncio_gather(). */
#define ASYNCIO_RETURN_EXCEPTIONS 0x1u

/*
 * Wait for n futures or tasks (asyncio.gather). results (may be NULL) gets
 * each one's result in argument order; errors (may be NULL) gets each one's
 * status (0, or how it failed: an error code, -ECANCELED), in argument
 * order. Without ASYNCIO_RETURN_EXCEPTIONS, returns 0 once all succeeded,
 * or the error of the first child to fail as soon as it fails (the others
 * keep running; entries of those not done are left NULL / -EAGAIN). With
 * it, waits for all and returns the number that failed.
 * If the calling task is cancelled while it waits (or has a cancellation
 * pending when some child is not done), gather cancels every child not yet
 * done, waits for them to finish, and returns -ECANCELED. It does so when
 * the task resumes: if the wait was over by then (the last child ended or,
 * without ASYNCIO_RETURN_EXCEPTIONS, one failed, before or after the
 * cancellation came), it returns -ECANCELED and leaves the children still
 * running alone. (asyncio cancels them at once, if the cancellation came
 * first.)
 * May suspend. Also -EINVAL (futs NULL with n > 0, a NULL child, unknown
 * flag), -EPERM (not in a task), -EDEADLK (the calling task is a child),
 * -ENOMEM (a gather of more than 8, or while another task gathers too,
 * allocates its records).
 */
ASYNCIO_API int asyncio_gather(size_t n, asyncio_future_t *const futs[], void *results[],
                   int errors[], unsigned flags);

/* When asyncio_wait() returns. */
#define ASYNCIO_ALL_COMPLETED 0
#define ASYNCIO_FIRST_COMPLETED 1
#define ASYNCIO_FIRST_EXCEPTION 2

/*
 * Wait for the n futures or tasks (asyncio.wait) until return_when is met
 * or timeout seconds pass (INFINITY: no limit). Never cancels anything.
 * done and pending (each may be NULL, else room for n) receive the futures
 * done and not done, in argument order. Returns how many are done (0 or
 * more; a timeout is not an error), -ECANCELED or -ETIMEDOUT if the caller
 * was cancelled or its timeout scope expired, -EINVAL (futs NULL with
 * n > 0, a NULL entry, unknown return_when, timeout negative or NaN),
 * -EPERM, -EDEADLK, -ENOMEM (as gather). ASYNCIO_FIRST_EXCEPTION returns at the first failure
 * (cancellation is not one), else when all are done. May suspend.
 */
ASYNCIO_API int asyncio_wait(size_t n, asyncio_future_t *const futs[], double timeout,
                             int return_when, asyncio_future_t *done[],
                             asyncio_future_t *pending[]);

/* asyncio.as_completed: hands back the futures in the order they finish. */
typedef struct asyncio_as_completed {
    /* Private. */
    void *state;
} asyncio_as_completed_t;

/*
 * Start iterating over n futures or tasks with an overall timeout (INFINITY:
 * none). Returns 0, -EINVAL (NULL, a NULL entry, bad timeout), -EPERM (not
 * in a task), -ENOMEM. Does not suspend. Call asyncio_as_completed_destroy()
 * when done with the iterator.
 */
ASYNCIO_API int asyncio_as_completed_init(asyncio_as_completed_t *it, size_t n,
                                          asyncio_future_t *const futs[], double timeout);

/*
 * The next future to finish: waits for it if none is done yet. Returns 1
 * with it in *f, 0 when every future has been handed back, -ETIMEDOUT when
 * the overall timeout has passed, -ECANCELED, -EINVAL, -EPERM. May suspend.
 * Never cancels the futures. A future that finished is handed back by the
 * next call, even once the timeout has passed, and even if it finished as
 * a call was cancelled or timed out (that call fails; none is lost).
 */
ASYNCIO_API int asyncio_as_completed_next(asyncio_as_completed_t *it, asyncio_future_t **f);

/* Release the iterator (it may be abandoned part-way). NULL is ignored. */
ASYNCIO_API void asyncio_as_completed_destroy(asyncio_as_completed_t *it);

#ifdef __cplusplus
}
#endif

#endif
