/*
 * <asyncio/taskgroup.h>: task groups (asyncio.TaskGroup).
 * Include <asyncio.h> rather than this file.
 *
 *     asyncio_taskgroup_t g;
 *     asyncio_taskgroup_enter(&g);
 *     asyncio_taskgroup_create_task(&g, NULL, fetch, url1, "fetch-1");
 *     asyncio_taskgroup_create_task(&g, NULL, fetch, url2, "fetch-2");
 *     int body = asyncio_sleep(0.1);          // the body may wait too
 *     int rc = asyncio_taskgroup_exit(&g, body); // waits for every child
 *
 * The first child that fails (returns an error other than -ECANCELED)
 * cancels the other children and the body's pending wait; leaving the group
 * waits for every child and reports the failures. Groups nest, and a group
 * whose task is cancelled from outside cancels its children.
 */
#ifndef ASYNCIO_TASKGROUP_H
#define ASYNCIO_TASKGROUP_H

#include <asyncio/common.h>
#include <asyncio/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How many failures a group keeps the codes of (all are counted). */
#define ASYNCIO_TASKGROUP_MAX_ERRORS 16

typedef struct asyncio_taskgroup {
    /* Private: set up by asyncio_taskgroup_enter(). */
    void *live_;            /* while open: the group's state, on the heap */
    int state_;
    size_t nerrors_;        /* after exit: how many failed, and the first */
    int errors_[ASYNCIO_TASKGROUP_MAX_ERRORS];
} asyncio_taskgroup_t;

/*
 * Open a group whose body is the calling task. The group object belongs to
 * the caller and must stay in place until asyncio_taskgroup_exit(), which
 * the task must call before it returns: a task that returns with a group
 * still open stops the program with a message on stderr (abort), as its
 * children would otherwise write to the group on a stack no longer there.
 * Returns 0, -EINVAL (NULL), -EPERM (not in a task), -ENOMEM. Does not
 * suspend.
 */
ASYNCIO_API int asyncio_taskgroup_enter(asyncio_taskgroup_t *g);

/*
 * Create a task in the group (asyncio's TaskGroup.create_task); any task or
 * callback may add to an open group. Arguments and errors as
 * asyncio_create_task_ex() (opts may be NULL), and -EINVAL for a group not
 * open, -ESHUTDOWN once the group is shutting down (a child failed or the
 * group was cancelled). Does not suspend.
 */
ASYNCIO_API int asyncio_taskgroup_create_task(asyncio_taskgroup_t *g, asyncio_task_t **task,
                                              asyncio_fn fn, void *arg,
                                              const asyncio_task_options_t *opts);

/*
 * Leave the group: wait until every child has finished (asyncio's
 * `async with` exit). body_status is what the body ended with: 0, or the
 * error that made it leave; a body error other than -ECANCELED/-ETIMEDOUT
 * counts as a failure and cancels the children, as in asyncio.
 * Returns 0 if no child (nor the body) failed and nothing cancelled the
 * group from outside; else the first failure's error code (see
 * asyncio_taskgroup_errors() for all of them); else -ECANCELED or
 * -ETIMEDOUT if the owner was cancelled, or timed out, from outside: then
 * the children were cancelled and waited for. A cancellation the group
 * itself made to stop the body is consumed here. Also -EINVAL (NULL, not
 * open), -EPERM (not the group's task). May suspend; the wait for the
 * children is not itself cut short by cancellation.
 */
ASYNCIO_API int asyncio_taskgroup_exit(asyncio_taskgroup_t *g, int body_status);

/*
 * The failures of the group (children and body), in the order they
 * happened: copies up to cap codes to errors (may be NULL if cap is 0) and
 * returns how many failures there were in all (only the first
 * ASYNCIO_TASKGROUP_MAX_ERRORS are kept). -EINVAL for NULL g.
 */
ASYNCIO_API int asyncio_taskgroup_errors(const asyncio_taskgroup_t *g, int *errors, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
