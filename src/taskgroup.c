/* Task groups (asyncio.TaskGroup). A child knows its group; the group
 * counts the children still running and records failures. The first
 * failure cancels the other children (found among the loop's tasks) and
 * the body; leaving the group waits until the count is zero.
 *
 * Cancellations of the owner are told apart by counting: the owner's
 * cancellation requests since the group was entered, less the ones the
 * group made itself, are the ones that came from outside. A group takes
 * its own requests back from the count when it exits, so that a group
 * around it, of the same owner, counts right. */
#include "task.h"

#include <errno.h>

enum { TG_UNUSED, TG_OPEN, TG_DONE };

static struct task *owner_of(asyncio_taskgroup_t *g)
{
    return g->owner;
}

static void record_error(asyncio_taskgroup_t *g, int status)
{
    if (g->nerrors < ASYNCIO_TASKGROUP_MAX_ERRORS)
        g->errors[g->nerrors] = status;
    g->nerrors++;
}

/* Cancel every unfinished child, and the body unless it is already
 * waiting in exit. */
static void abort_group(asyncio_taskgroup_t *g)
{
    if (g->aborting)
        return;
    g->aborting = 1;
    struct task *owner = owner_of(g);
    struct loop *loop = owner->fut.loop;
    for (struct dlist *n = loop->futures.next; n != &loop->futures; n = n->next) {
        struct task *t = task_of(container_of(n, struct asyncio_future, all));
        if (t && t->group == g && t->state != TASK_DONE)
            asyncio_task_cancel(&t->fut);
    }
    if (!g->exiting && owner->state != TASK_DONE && asyncio_task_cancel(&owner->fut) == 1)
        g->owner_cancels++;
}

void taskgroup_child_done(asyncio_taskgroup_t *g, int status)
{
    g->remaining--;
    if (status < 0 && status != -ECANCELED) {
        record_error(g, status);
        abort_group(g);
    }
    if (g->remaining == 0 && g->exiting)
        task_wake(owner_of(g), 0);
}

/* Cancellation requests of the owner that did not come from the group. */
static unsigned outside_cancels(asyncio_taskgroup_t *g)
{
    return owner_of(g)->num_cancels - g->cancels_base - g->owner_cancels;
}

int asyncio_taskgroup_enter(asyncio_taskgroup_t *g)
{
    if (!g)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    *g = (asyncio_taskgroup_t){0};
    g->owner = loop->current;
    g->cancels_base = loop->current->num_cancels;
    g->state = TG_OPEN;
    loop->current->open_groups++;
    return 0;
}

int asyncio_taskgroup_create_task(asyncio_taskgroup_t *g, asyncio_task_t **task, asyncio_fn fn,
                                  void *arg, const asyncio_task_options_t *opts)
{
    if (!g || g->state != TG_OPEN)
        return -EINVAL;
    if (g->aborting)
        return -ESHUTDOWN;
    asyncio_task_t *t;
    int rc = asyncio_create_task_ex(&t, fn, arg, opts);
    if (rc < 0)
        return rc;
    task_of(t)->group = g;
    g->remaining++;
    if (task)
        *task = t;
    else
        asyncio_task_release(t);
    return 0;
}

int asyncio_taskgroup_exit(asyncio_taskgroup_t *g, int body_status)
{
    if (!g || g->state != TG_OPEN)
        return -EINVAL;
    struct loop *loop = loop_current();
    struct task *t = owner_of(g);
    if (!loop || loop->current != t)
        return -EPERM;

    g->exiting = 1; /* from here on, aborting leaves the owner alone */
    if (body_status == -ETIMEDOUT) {
        g->outside = -ETIMEDOUT;
        abort_group(g);
    } else if (body_status < 0 && body_status != -ECANCELED) {
        record_error(g, body_status); /* the body failed: as a child would */
        abort_group(g);
    }
    if (outside_cancels(g) > 0)
        abort_group(g);

    t->waiting_on = "task group";
    while (g->remaining) {
        /* Once aborting, nothing can hurry the children more: wait for them
         * without reacting to further cancellations or timeouts. */
        int rc = g->aborting ? task_park(t) : task_park_until(t, UINT64_MAX, 0);
        if (rc == -ETIMEDOUT) {
            g->outside = -ETIMEDOUT;
            abort_group(g);
        } else if (rc == -ECANCELED && outside_cancels(g) > 0) {
            abort_group(g);
        }
    }
    g->exiting = 0;
    g->state = TG_DONE;
    t->open_groups--;

    /* What the group asked of its owner ends here; a cancellation from
     * outside is reported by the return value. The group's own requests
     * are taken back from the owner's count (asyncio's uncancel()), so a
     * group around this one does not take them for requests from outside. */
    bool outside = outside_cancels(g) > 0;
    if (g->owner_cancels || outside)
        t->must_cancel = false;
    t->num_cancels -= g->owner_cancels;
    if (g->nerrors)
        return g->errors[0];
    if (outside)
        return -ECANCELED;
    return g->outside;
}

int asyncio_taskgroup_errors(const asyncio_taskgroup_t *g, int *errors, size_t cap)
{
    if (!g)
        return -EINVAL;
    size_t kept = g->nerrors < ASYNCIO_TASKGROUP_MAX_ERRORS ? g->nerrors
                                                             : ASYNCIO_TASKGROUP_MAX_ERRORS;
    for (size_t i = 0; i < kept && i < cap; i++)
        errors[i] = g->errors[i];
    return (int)g->nerrors;
}
