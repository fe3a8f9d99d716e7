/* Task groups (asyncio.TaskGroup). While a group is open its state is a heap
 * block (children write to it when they end, and the owner's stack, where
 * the program declares the group, may be parked then); the outcome is
 * copied into the program's object at exit. The group lists its unfinished
 * children: the first failure cancels them and the body, and leaving the
 * group waits until the list is empty.
 *
 * Cancellations of the owner are told apart by counting: the owner's
 * cancellation requests since the group was entered, less the ones the
 * group made itself, are the ones that came from outside. A group takes
 * its own requests back from the count when it exits, so that a group
 * around it, of the same owner, counts right. */
#include "task.h"

#include <errno.h>
#include <stdlib.h>

enum { TG_UNUSED, TG_OPEN, TG_DONE };

struct taskgroup {
    struct task *owner;
    struct dlist children;  /* unfinished children, through task.sibling */
    bool aborting;          /* a failure or a cancellation hit the group */
    bool exiting;           /* the owner waits in asyncio_taskgroup_exit */
    unsigned owner_cancels; /* cancellations of the owner the group made */
    unsigned cancels_base;  /* the owner's cancellation count at entry */
    int outside;            /* -ETIMEDOUT seen from outside */
    size_t nerrors;
    int errors[ASYNCIO_TASKGROUP_MAX_ERRORS];
};

static void record_error(struct taskgroup *g, int status)
{
    if (g->nerrors < ASYNCIO_TASKGROUP_MAX_ERRORS)
        g->errors[g->nerrors] = status;
    g->nerrors++;
}

/* Cancel every unfinished child, and the body unless it is already
 * waiting in exit. */
static void abort_group(struct taskgroup *g)
{
    if (g->aborting)
        return;
    g->aborting = true;
    for (struct dlist *n = g->children.next; n != &g->children; n = n->next)
        asyncio_task_cancel(&container_of(n, struct task, sibling)->fut);
    if (!g->exiting && g->owner->state != TASK_DONE && asyncio_task_cancel(&g->owner->fut) == 1)
        g->owner_cancels++;
}

struct task *taskgroup_owner(const struct task *t)
{
    return t->group ? t->group->owner : NULL;
}

void taskgroup_child_done(struct task *t, int status)
{
    struct taskgroup *g = t->group;
    dlist_remove(&t->sibling);
    if (status < 0 && status != -ECANCELED) {
        record_error(g, status);
        abort_group(g);
    }
    if (dlist_empty(&g->children) && g->exiting)
        task_wake(g->owner, 0);
}

/* Cancellation requests of the owner that did not come from the group. */
static unsigned outside_cancels(const struct taskgroup *g)
{
    return g->owner->num_cancels - g->cancels_base - g->owner_cancels;
}

int asyncio_taskgroup_enter(asyncio_taskgroup_t *tg)
{
    if (!tg)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    struct taskgroup *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->owner = loop->current;
    dlist_init(&g->children);
    g->cancels_base = loop->current->num_cancels;
    *tg = (asyncio_taskgroup_t){.live_ = g, .state_ = TG_OPEN};
    loop->current->open_groups++;
    return 0;
}

int asyncio_taskgroup_create_task(asyncio_taskgroup_t *tg, asyncio_task_t **task, asyncio_fn fn,
                                  void *arg, const asyncio_task_options_t *opts)
{
    if (!tg || tg->state_ != TG_OPEN)
        return -EINVAL;
    struct taskgroup *g = tg->live_;
    if (g->aborting)
        return -ESHUTDOWN;
    asyncio_task_t *t;
    int rc = asyncio_create_task_ex(&t, fn, arg, opts);
    if (rc < 0)
        return rc;
    task_of(t)->group = g;
    dlist_push_back(&g->children, &task_of(t)->sibling);
    if (task)
        *task = t;
    else
        asyncio_task_release(t);
    return 0;
}

int asyncio_taskgroup_exit(asyncio_taskgroup_t *tg, int body_status)
{
    if (!tg || tg->state_ != TG_OPEN)
        return -EINVAL;
    struct taskgroup *g = tg->live_;
    struct loop *loop = loop_current();
    struct task *t = g->owner;
    if (!loop || loop->current != t)
        return -EPERM;

    g->exiting = true; /* from here on, aborting leaves the owner alone */
    bool body_failed = false;
    if (body_status == -ETIMEDOUT) {
        g->outside = -ETIMEDOUT;
        abort_group(g);
    } else if (body_status < 0 && body_status != -ECANCELED) {
        body_failed = true; /* as a child would; recorded after the children */
        abort_group(g);
    }
    if (outside_cancels(g) > 0)
        abort_group(g);

    t->waiting_on = "task group";
    while (!dlist_empty(&g->children)) {
        /* Once aborting, nothing can hurry the children more: wait for them
         * without reacting to further cancellations or timeouts. */
        int rc = g->aborting ? task_park(t) : task_park_until(t, UINT64_MAX, 0);
        if (rc == -ENOMEM) {
            /* No room to arm a timeout scope's timer: the task did not
             * park. Fail the group, as a child would, and wait for the
             * children without deadlines (else this loop would spin). */
            record_error(g, -ENOMEM);
            abort_group(g);
        } else if (rc == -ETIMEDOUT) {
            g->outside = -ETIMEDOUT;
            abort_group(g);
        } else if (rc == -ECANCELED && outside_cancels(g) > 0) {
            abort_group(g);
        }
    }
    t->open_groups--;
    /* asyncio appends the body's exception to the children's once they are
     * done: it comes last in the group's errors. */
    if (body_failed)
        record_error(g, body_status);

    /* What the group asked of its owner ends here; a cancellation from
     * outside is reported by the return value. The group's own requests
     * are taken back from the owner's count (asyncio's uncancel()), so a
     * group around this one does not take them for requests from outside. */
    bool outside = outside_cancels(g) > 0;
    if (g->owner_cancels || outside)
        t->must_cancel = false;
    t->num_cancels -= g->owner_cancels;
    int rc = g->nerrors ? g->errors[0] : outside ? -ECANCELED : g->outside;
    tg->state_ = TG_DONE;
    tg->nerrors_ = g->nerrors;
    for (size_t i = 0; i < ASYNCIO_TASKGROUP_MAX_ERRORS; i++)
        tg->errors_[i] = g->errors[i];
    tg->live_ = NULL;
    free(g);
    return rc;
}

int asyncio_taskgroup_errors(const asyncio_taskgroup_t *tg, int *errors, size_t cap)
{
    if (!tg)
        return -EINVAL;
    const struct taskgroup *g = tg->live_;
    size_t n = g ? g->nerrors : tg->nerrors_;
    const int *codes = g ? g->errors : tg->errors_;
    size_t kept = n < ASYNCIO_TASKGROUP_MAX_ERRORS ? n : ASYNCIO_TASKGROUP_MAX_ERRORS;
    for (size_t i = 0; i < kept && i < cap; i++)
        errors[i] = codes[i];
    return (int)n;
}
