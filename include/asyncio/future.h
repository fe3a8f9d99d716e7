/**
 * \file asyncio/future.h
 * \brief Futures, the results that tasks wait for, and the calls that wait
 *        for one (await, shield).
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
 * whose outcome nobody looked at (asyncio_await(), asyncio_future_result(),
 * asyncio_gather(), asyncio_wait_for(), a task group, ...) is reported when
 * it is freed, as asyncio's "Task exception was never retrieved", to the
 * loop's exception handler, which prints it on stderr unless the program set
 * its own (<asyncio/debug.h>):
 * \verbatim
   asyncio: Task exception was never retrieved: task "worker" failed
   with -5 (Input/output error)
   \endverbatim
 * In debug mode the report also says where the future or task was created.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_FUTURE_H
#define ASYNCIO_FUTURE_H

#include <asyncio/common.h>
#include <asyncio/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A future (asyncio.Future): a result set once, that tasks wait for.
 *
 * Opaque: made by asyncio_future_new() (or, as a task, by
 * asyncio_create_task()), used through pointers only.
 */
typedef struct asyncio_future asyncio_future_t;

/**
 * A done callback (asyncio_future_add_done_callback()).
 *
 * Called once f is done, through the ready queue, never inline: it runs in
 * the loop's thread as a callback of the loop (not in a task: it must not
 * wait).
 *
 * \param f    the future that is done
 * \param arg  what asyncio_future_add_done_callback() was given
 */
typedef void (*asyncio_done_callback)(asyncio_future_t *f, void *arg);

/**
 * Create a pending future in the calling thread's loop (loop.create_future()).
 *
 * \param out  receives the future, with one reference the caller drops with
 *             asyncio_future_release()
 * \return 0; -EINVAL (out NULL), -EPERM (no loop in this thread), -ENOMEM.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_future_new(asyncio_future_t **out);

/**
 * Drop a reference to f.
 *
 * The future is freed when the last reference goes; callbacks and waiters
 * keep their own. In debug mode, a call from another loop's thread is
 * reported and drops nothing.
 *
 * \param f  the future or task; NULL is ignored
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API void asyncio_future_release(asyncio_future_t *f);

/**
 * Take one more reference to f, which the caller must release.
 *
 * In debug mode, a call from another loop's thread is reported and takes no
 * reference: it returns NULL, so that the caller has nothing to release.
 *
 * \param f  the future or task; NULL is returned as it is
 * \return f; NULL for NULL, or (debug mode) from another loop's thread.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API asyncio_future_t *asyncio_future_retain(asyncio_future_t *f);

/**
 * Mark f done with result (Future.set_result()).
 *
 * Waiters are woken and done callbacks scheduled.
 *
 * \param f       a pending future; not a task (a task's result is what its
 *                function returns)
 * \param result  the result, any pointer (NULL too)
 * \return 0; -EINVAL (f NULL, or f is a task), -EALREADY (f is already
 *         done: a result is set once), -EXDEV (debug mode: used from another
 *         loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_future_set_result(asyncio_future_t *f, void *result);

/**
 * Mark f failed with error (Future.set_exception()).
 *
 * Waiters are woken and done callbacks scheduled.
 *
 * \param f      a pending future; not a task
 * \param error  a negative errno; -ECANCELED cancels f
 * \return 0; -EINVAL (f NULL or a task, error >= 0), -EALREADY (done),
 *         -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_future_set_error(asyncio_future_t *f, int error);

/**
 * Cancel f (Future.cancel()).
 *
 * A pending future becomes cancelled at once; for a task this is
 * asyncio_task_cancel().
 *
 * \param f  the future or task
 * \return 1 if cancelled (or, for a task, if a cancellation was requested),
 *         0 if f was already done (nothing happens); -EINVAL (f NULL),
 *         -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_future_cancel(asyncio_future_t *f);

/**
 * Whether f is done: with a result, an error, or cancelled (Future.done()).
 *
 * \param f  the future or task
 * \return 1 if f is done, 0 if pending; -EINVAL (NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_future_done(const asyncio_future_t *f);

/**
 * Whether f finished cancelled (Future.cancelled()).
 *
 * \param f  the future or task
 * \return 1 if f finished cancelled, 0 if not; -EINVAL (NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_future_cancelled(const asyncio_future_t *f);

/**
 * How f ended, without waiting (Future.result() and Future.exception()).
 *
 * A done f counts as retrieved from then on: its failure is not reported as
 * never retrieved.
 *
 * \param f       the future or task
 * \param result  receives f's result when it succeeded (NULL otherwise); may
 *                be NULL
 * \return 0 (or the task's non-negative return value) with the result in
 *         *result; the error f failed with; -ECANCELED if f was cancelled;
 *         -EAGAIN if f is still pending; -EINVAL (f NULL), -EXDEV (debug
 *         mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_future_result(const asyncio_future_t *f, void **result);

/**
 * Call cb(f, arg) once f is done (Future.add_done_callback()).
 *
 * Callbacks run through the ready queue, in the order they were added; if f
 * is already done, the callback is scheduled now. Each holds a reference to
 * f until it has run.
 *
 * \param f    the future or task
 * \param cb   the callback
 * \param arg  passed to cb
 * \return 0; -EINVAL (f or cb NULL), -ENOMEM, -EXDEV (debug mode: used from
 *         another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_future_add_done_callback(asyncio_future_t *f,
                                     asyncio_done_callback cb, void *arg);

/**
 * Remove every not-yet-scheduled callback equal to (cb, arg)
 * (Future.remove_done_callback()).
 *
 * \param f    the future or task
 * \param cb   the callback, as given to asyncio_future_add_done_callback()
 * \param arg  its argument, as given
 * \return how many were removed (0 or more); -EINVAL (f or cb NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_future_remove_done_callback(asyncio_future_t *f,
                                        asyncio_done_callback cb, void *arg);

/**
 * Wait until f is done, then return its outcome (asyncio's `await f`).
 *
 * Returns as asyncio_future_result() does. Awaiting a done future does not
 * suspend.
 *
 * If the calling task is cancelled while it waits, the cancellation goes
 * to f at once, as asyncio's Task.cancel() goes to the future the task
 * awaits (a plain future becomes cancelled, a task gets a cancellation
 * request), and the call returns f's outcome once f has finished:
 * -ECANCELED if f ended cancelled, else what f returned (a task that
 * caught the cancellation and returned anyway), as in asyncio. A timeout
 * scope that expires meanwhile does not change that outcome. If the
 * cancellation was pending when the call began, or came after f was done
 * and before the task resumed, or the wait ends by a timeout scope, f
 * (if not done) is cancelled when the task resumes and waited for, and
 * the call returns -ECANCELED or -ETIMEDOUT whatever f's outcome (see
 * asyncio_future_result() for it). A further cancellation while it waits
 * for f to finish is passed on to f too; it is part of this -ECANCELED,
 * or, when a timeout ended the wait (-ETIMEDOUT), reported by the task's
 * next wait.
 *
 * \param f       the future or task to wait for
 * \param result  receives f's result as asyncio_future_result() does; may be
 *                NULL
 * \return as asyncio_future_result(): 0 (or the task's non-negative return
 *         value), or the error f failed with, or -ECANCELED if f was
 *         cancelled; also -ECANCELED (the calling task was cancelled),
 *         -ETIMEDOUT (a timeout scope expired), -EINVAL (f NULL), -EPERM (not
 *         in a task, even if f is done), -EDEADLK (a task awaiting itself),
 *         -ENOMEM (a timeout scope's timer could not be armed), -EXDEV (debug
 *         mode: used from another loop's thread).
 * \suspends Yes: until f is done (not if it is done already). Cancellation
 *           and timeout scopes end the wait, once f, cancelled, has finished.
 * \context A task.
 */
ASYNCIO_API int asyncio_await(asyncio_future_t *f, void **result);

/**
 * Wait for f without letting a cancellation of the caller reach it
 * (asyncio.shield()).
 *
 * If the calling task is cancelled (or times out) while it waits, the call
 * returns -ECANCELED (-ETIMEDOUT) at once and f goes on. Otherwise it
 * returns as asyncio_await() does.
 *
 * \param f       the future or task to wait for
 * \param result  receives f's result as asyncio_future_result() does; may be
 *                NULL
 * \return as asyncio_await(): f's outcome; -ECANCELED, -ETIMEDOUT (the
 *         caller was cancelled or timed out: f goes on), -EINVAL, -EPERM,
 *         -EDEADLK, -ENOMEM, -EXDEV (debug mode: used from another loop's
 *         thread).
 * \suspends Yes: until f is done, and then for one more step of the loop,
 *           as asyncio's (f's callback completes the outer future, whose
 *           callback wakes the task); not if it is done already.
 *           Cancellation and timeout scopes end the wait at once, and leave
 *           f alone.
 * \context A task.
 */
ASYNCIO_API int asyncio_shield(asyncio_future_t *f, void **result);

#ifdef __cplusplus
}
#endif

#endif
