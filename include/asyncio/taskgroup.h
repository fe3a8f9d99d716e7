/**
 * \file asyncio/taskgroup.h
 * \brief Task groups (asyncio.TaskGroup).
 *
 * \code
 * asyncio_taskgroup_t g;
 * asyncio_taskgroup_enter(&g);
 * asyncio_taskgroup_create_task(&g, NULL, fetch, url1, "fetch-1");
 * asyncio_taskgroup_create_task(&g, NULL, fetch, url2, "fetch-2");
 * int body = asyncio_sleep(0.1);          // the body may wait too
 * int rc = asyncio_taskgroup_exit(&g, body); // waits for every child
 * \endcode
 *
 * The first child that fails (returns an error other than -ECANCELED)
 * cancels the other children and the body's pending wait; leaving the group
 * waits for every child and reports the failures. Groups nest, and a group
 * whose task is cancelled from outside cancels its children.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_TASKGROUP_H
#define ASYNCIO_TASKGROUP_H

#include <asyncio/common.h>
#include <asyncio/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How many failures a group keeps the codes of (all are counted):
 *  asyncio_taskgroup_errors(). */
#define ASYNCIO_TASKGROUP_MAX_ERRORS 16

/**
 * A task group (asyncio.TaskGroup).
 *
 * Opaque: its fields are private, set up by asyncio_taskgroup_enter(). The
 * caller provides the object and keeps it in place until
 * asyncio_taskgroup_exit(); after that it still answers
 * asyncio_taskgroup_errors().
 */
typedef struct asyncio_taskgroup {
    /** \cond PRIVATE */
    /* Private: set up by asyncio_taskgroup_enter(). */
    void *live_;            /* while open: the group's state, on the heap */
    int state_;
    size_t nerrors_;        /* after exit: how many failed, and the first */
    int errors_[ASYNCIO_TASKGROUP_MAX_ERRORS];
    /** \endcond */
} asyncio_taskgroup_t;

/**
 * Open a group whose body is the calling task (entering asyncio's
 * `async with TaskGroup()`).
 *
 * The task must call asyncio_taskgroup_exit() before it returns: a task that
 * returns with a group still open stops the program with a message on
 * stderr (abort), as its children would otherwise write to the group on a
 * stack no longer there.
 *
 * \param g  the group object, the caller's; it must stay in place until
 *           asyncio_taskgroup_exit()
 * \return 0; -EINVAL (NULL), -EPERM (not in a task), -ENOMEM.
 * \suspends No.
 * \context A task, which becomes the group's body.
 */
ASYNCIO_API int asyncio_taskgroup_enter(asyncio_taskgroup_t *g);

/**
 * Create a task in the group (TaskGroup.create_task()).
 *
 * Any task or callback of the loop may add to an open group.
 *
 * \param g     an open group
 * \param task  as asyncio_create_task(): receives a reference the caller
 *              must release, or NULL
 * \param fn    the task's function; not NULL
 * \param arg   passed to fn
 * \param opts  the options, as asyncio_create_task_ex(); NULL for the
 *              defaults
 * \return 0; the errors of asyncio_create_task_ex(); -EINVAL also for g NULL
 *         or not open; -ESHUTDOWN once the group is shutting down (a child
 *         failed or the group was cancelled).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_taskgroup_create_task(asyncio_taskgroup_t *g, asyncio_task_t **task,
                                              asyncio_fn fn, void *arg,
                                              const asyncio_task_options_t *opts);

/**
 * Leave the group: wait until every child has finished (asyncio's
 * `async with` exit).
 *
 * A body error other than -ECANCELED/-ETIMEDOUT counts as a failure and
 * cancels the children, as in asyncio, and comes after the children's
 * failures (asyncio appends it to the ExceptionGroup once they are done). If the owner was cancelled, or timed
 * out, from outside, the children are cancelled and waited for. A
 * cancellation the group itself made to stop the body is consumed here.
 *
 * \param g            the open group, entered by the calling task
 * \param body_status  what the body ended with: 0, or the error that made it
 *                     leave
 * \return 0 if no child (nor the body) failed and nothing cancelled the
 *         group from outside; else the first failure's error code (see
 *         asyncio_taskgroup_errors() for all of them); else -ECANCELED or
 *         -ETIMEDOUT if the owner was cancelled, or timed out, from outside;
 *         -ENOMEM (counted as a failure: no room to arm the timer of a
 *         timeout scope around the wait, so the group cancelled its
 *         children and waited for them without deadlines);
 *         -EINVAL (NULL, not open), -EPERM (not the group's task).
 * \suspends Yes: until every child has finished. The wait is not itself cut
 *           short by cancellation or timeout scopes: they cancel the
 *           children, and are reported by the return value.
 * \context A task: the group's own, which entered it.
 */
ASYNCIO_API int asyncio_taskgroup_exit(asyncio_taskgroup_t *g, int body_status);

/**
 * The failures of the group: the children's in the order they happened,
 * then the body's (as in asyncio's ExceptionGroup).
 *
 * \param g       a group that was entered, open or left
 * \param errors  receives up to cap codes; may be NULL if cap is 0
 * \param cap     room in errors
 * \return how many failures there were in all (only the first
 *         ASYNCIO_TASKGROUP_MAX_ERRORS are kept); -EINVAL (g NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_taskgroup_errors(const asyncio_taskgroup_t *g, int *errors, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
