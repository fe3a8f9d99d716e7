/**
 * \file asyncio/gather.h
 * \brief Waiting on several futures or tasks at once (asyncio.gather,
 *        asyncio.wait and asyncio.as_completed).
 *
 * One future or task is awaited with asyncio_await() or asyncio_shield()
 * (<asyncio/future.h>), or with asyncio_wait_for() (<asyncio/timeout.h>).
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_GATHER_H
#define ASYNCIO_GATHER_H

#include <asyncio/common.h>
#include <asyncio/future.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A flag of asyncio_gather() (asyncio's return_exceptions=True): wait for
 * every child and return the number that failed, instead of returning the
 * first failure.
 */
#define ASYNCIO_RETURN_EXCEPTIONS 0x1u

/**
 * Wait for n futures or tasks (asyncio.gather()).
 *
 * Without ASYNCIO_RETURN_EXCEPTIONS, returns 0 once all succeeded, or the
 * error of the first child to fail as soon as it fails (the others keep
 * running; entries of those not done are left NULL / -EAGAIN; a failure of
 * theirs is not reported as never retrieved, as in asyncio). With it,
 * waits for all and returns the number that failed.
 *
 * If the calling task is cancelled while it waits (or has a cancellation
 * pending when some child is not done), gather cancels every child not yet
 * done, waits for them to finish, and returns -ECANCELED. It does so when
 * the task resumes: if the wait was over by then (the last child ended or,
 * without ASYNCIO_RETURN_EXCEPTIONS, one failed, before or after the
 * cancellation came), it returns -ECANCELED and leaves the children still
 * running alone. (asyncio cancels them at once, if the cancellation came
 * first.) A timeout scope that expires does the same, with -ETIMEDOUT.
 *
 * \param n        the number of children; 0 returns 0 at once
 * \param futs     the children, futures or tasks, none NULL; may be NULL if
 *                 n is 0
 * \param results  receives each child's result, in argument order (NULL for
 *                 a child that failed or is not done); may be NULL
 * \param errors   receives each child's status, in argument order: 0, or how
 *                 it failed (an error code, -ECANCELED), -EAGAIN if not done;
 *                 may be NULL
 * \param flags    0 or ASYNCIO_RETURN_EXCEPTIONS
 * \return without ASYNCIO_RETURN_EXCEPTIONS: 0, or the first failure's
 *         error; with it: the number of children that failed, cancelled
 *         ones included (0 or more);
 *         -ECANCELED, -ETIMEDOUT (the caller was cancelled or its timeout
 *         scope expired), -EINVAL (futs NULL with n > 0, a NULL child,
 *         unknown flag), -EPERM (not in a task, also for n = 0), -EDEADLK
 *         (the calling task is a child), -ENOMEM (a gather of more than 8, or
 *         while another task gathers too, allocates its records; or a timeout
 *         scope's timer could not be armed).
 * \suspends Yes: until every child is done or, without
 *           ASYNCIO_RETURN_EXCEPTIONS, one failed, and then for one more
 *           step of the loop, as asyncio's (its children's callbacks, then
 *           the outer future's), also when they are done already (n > 0).
 *           Cancellation and timeout scopes end the wait, once the
 *           children, cancelled, have finished.
 * \context A task.
 */
ASYNCIO_API int asyncio_gather(size_t n, asyncio_future_t *const futs[], void *results[],
                   int errors[], unsigned flags);

/** asyncio_wait() returns when every future is done (asyncio.ALL_COMPLETED). */
#define ASYNCIO_ALL_COMPLETED 0
/** asyncio_wait() returns when any future is done (asyncio.FIRST_COMPLETED). */
#define ASYNCIO_FIRST_COMPLETED 1
/** asyncio_wait() returns when any future fails (cancellation is not a
 *  failure), else when all are done (asyncio.FIRST_EXCEPTION). */
#define ASYNCIO_FIRST_EXCEPTION 2

/**
 * Wait for n futures or tasks until return_when is met or timeout seconds
 * pass (asyncio.wait()).
 *
 * Never cancels anything. A timeout is not an error: the call returns how
 * many are done then. ASYNCIO_FIRST_EXCEPTION returns at the first failure
 * (cancellation is not one), else when all are done.
 *
 * \param n            the number of futures, > 0 (asyncio's ValueError for
 *                     none)
 * \param futs         the futures or tasks, none NULL
 * \param timeout      seconds; INFINITY: no limit; 0 or less: only look
 * \param return_when  ASYNCIO_ALL_COMPLETED, ASYNCIO_FIRST_COMPLETED or
 *                     ASYNCIO_FIRST_EXCEPTION
 * \param done         receives the futures done, in argument order; NULL, or
 *                     room for n
 * \param pending      receives the futures not done, in argument order; NULL,
 *                     or room for n
 * \return how many are done (0 or more); -ECANCELED or -ETIMEDOUT if the
 *         caller was cancelled or its timeout scope expired; -EINVAL (n is 0,
 *         futs NULL, a NULL entry, unknown return_when, timeout NaN),
 *         -EPERM (not in a task), -EDEADLK (the calling task is one of
 *         the futures), -ENOMEM (as asyncio_gather()).
 * \suspends Yes: until return_when is met or the timeout has passed, and
 *           then for one more step of the loop, as asyncio's; when it is met
 *           already, or for a timeout of 0 or less, for those two steps
 *           only (what completes meanwhile counts). Cancellation and
 *           timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_wait(size_t n, asyncio_future_t *const futs[], double timeout,
                             int return_when, asyncio_future_t *done[],
                             asyncio_future_t *pending[]);

/**
 * An iterator that hands back futures in the order they finish
 * (asyncio.as_completed()).
 *
 * Opaque: its field is private. Initialise it with
 * asyncio_as_completed_init(), and release it with
 * asyncio_as_completed_destroy().
 */
typedef struct asyncio_as_completed {
    /** \cond PRIVATE */
    /* Private. */
    void *state;
    /** \endcond */
} asyncio_as_completed_t;

/**
 * Start iterating over n futures or tasks with an overall timeout.
 *
 * The iterator holds a reference to each future until
 * asyncio_as_completed_destroy(), which must be called when done with it.
 * Unlike asyncio_gather(), the calling task may be one of the futures.
 *
 * \param it       the iterator to initialise
 * \param n        the number of futures (0: the first
 *                 asyncio_as_completed_next() returns 0)
 * \param futs     the futures or tasks, none NULL; may be NULL if n is 0
 * \param timeout  the overall timeout in seconds; INFINITY: none; 0 or
 *                 less: already expired
 * \return 0; -EINVAL (it NULL, futs NULL with n > 0, a NULL entry, timeout
 *         NaN), -EPERM (not in a task), -ENOMEM.
 * \suspends No.
 * \context A task.
 */
ASYNCIO_API int asyncio_as_completed_init(asyncio_as_completed_t *it, size_t n,
                                          asyncio_future_t *const futs[], double timeout);

/**
 * The next future to finish: waits for it if none is done yet.
 *
 * Never cancels the futures. A future that finished is handed back by the
 * next call, even once the timeout has passed, and even if it finished as a
 * call was cancelled or timed out (that call fails; none is lost).
 *
 * \param it  an iterator from asyncio_as_completed_init()
 * \param f   receives the future; the iterator's reference keeps it alive
 *            until asyncio_as_completed_destroy()
 * \return 1 with the future in *f; 0 when every future has been handed
 *         back; -ETIMEDOUT when the overall timeout has passed (or a timeout
 *         scope expired), -ECANCELED, -EINVAL (it or f NULL, it destroyed),
 *         -EPERM (not in a task, when no future is ready to hand back),
 *         -ENOMEM (the timer could not be armed).
 * \suspends Yes: until one more future is done (not if one is ready to hand
 *           back). The overall timeout, cancellation and timeout scopes end
 *           the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_as_completed_next(asyncio_as_completed_t *it, asyncio_future_t **f);

/**
 * Release the iterator and its references to the futures.
 *
 * It may be abandoned part-way: the futures not yet handed back go on.
 *
 * \param it  the iterator; NULL, or one already destroyed, is ignored
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API void asyncio_as_completed_destroy(asyncio_as_completed_t *it);

#ifdef __cplusplus
}
#endif

#endif
