/* Combinators over futures: gather and wait_for. */
#include "task.h"
#include "clock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

struct gather;

struct gather_waiter {
    struct waiter w;
    struct gather *g;
};

struct gather {
    struct task *task;
    size_t remaining;   /* children not done */
    bool fail_fast;     /* not ASYNCIO_RETURN_EXCEPTIONS */
    int first_error;    /* fail_fast: the first failure, in completion order */
};

static void gather_notify(struct waiter *w, struct asyncio_future *f)
{
    struct gather *g = container_of(w, struct gather_waiter, w)->g;
    g->remaining--;
    if (g->fail_fast && f->status < 0 && !g->first_error)
        g->first_error = f->status;
    if (g->remaining == 0 || g->first_error)
        task_wake(g->task, 0);
}

int asyncio_gather(size_t n, asyncio_future_t *const futs[], void *results[], int errors[],
                   unsigned flags)
{
    if ((n && !futs) || (flags & ~ASYNCIO_RETURN_EXCEPTIONS))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!futs[i])
            return -EINVAL;
    int rc = task_check_await(NULL); /* -EPERM outside a task, even for n == 0 */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = task_check_await(futs[i]);
    if (rc < 0)
        return rc;

    struct gather g = {loop_current()->current, 0, !(flags & ASYNCIO_RETURN_EXCEPTIONS), 0};
    for (size_t i = 0; i < n; i++) {
        if (!future_is_done(futs[i]))
            g.remaining++;
        else if (g.fail_fast && futs[i]->status < 0 && !g.first_error)
            g.first_error = futs[i]->status;
    }

    struct gather_waiter small[8], *ws = small;
    int cancelled = 0; /* -ECANCELED or -ETIMEDOUT once it happened */
    if (g.remaining && !g.first_error) {
        if (n > sizeof small / sizeof small[0] && !(ws = malloc(n * sizeof *ws)))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            ws[i].g = NULL;
            if (!future_is_done(futs[i])) {
                ws[i].w.notify = gather_notify;
                ws[i].g = &g;
                asyncio_future_retain(futs[i]);
                future_add_waiter(futs[i], &ws[i].w);
            }
        }
        struct task *t;
        /* A cancellation already pending counts as one that comes now. */
        rc = task_begin_wait_on(&t, "gather");
        while (g.remaining && !g.first_error) {
            if (rc < 0 && !cancelled) {
                /* Cancelling gather (or its timeout, or a failure to
                 * wait) cancels its unfinished children, then waits until
                 * they have finished. */
                cancelled = rc;
                g.fail_fast = false;
                for (size_t i = 0; i < n; i++)
                    if (!future_is_done(futs[i]))
                        asyncio_future_cancel(futs[i]);
                /* A plain future is done as soon as it is cancelled: if
                 * no child is left, nothing would wake us. */
                continue;
            }
            rc = cancelled ? task_park(t) : task_park_until(t, UINT64_MAX, 0);
        }
        /* A cancellation or timeout that came with the wake (the last child
         * finished, or one failed, and the task had not resumed yet) is
         * this wait's to report, as asyncio_await() would: the wait is over,
         * so there is nothing left to cancel. */
        if (rc < 0 && !cancelled)
            cancelled = rc;
        for (size_t i = 0; i < n; i++) {
            if (ws[i].g) {
                future_remove_waiter(&ws[i].w);
                asyncio_future_release(futs[i]);
            }
        }
        if (ws != small)
            free(ws);
    }

    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        bool done = future_is_done(futs[i]);
        int st = done ? futs[i]->status : -EAGAIN;
        futs[i]->retrieved |= done;
        if (results)
            results[i] = done && st >= 0 ? futs[i]->result : NULL;
        if (errors)
            errors[i] = st < 0 ? st : 0;
        if (done && st < 0)
            failed++;
    }
    if (cancelled)
        return cancelled;
    if (g.first_error)
        return g.first_error;
    return g.fail_fast ? 0 : (int)(failed > INT32_MAX ? INT32_MAX : failed);
}

int asyncio_wait_for(asyncio_future_t *f, double timeout, void **result)
{
    if (!f || isnan(timeout) || timeout < 0)
        return -EINVAL;
    /* wait_for is a timeout scope around an await (which makes the other
     * checks, and returns at once for a done f). */
    asyncio_timeout_t scope;
    int rc = asyncio_timeout_enter(&scope, timeout);
    if (rc < 0)
        return rc;
    rc = asyncio_await(f, result);
    asyncio_timeout_exit(&scope);
    return rc;
}

/* asyncio.wait: counts what is done, never cancels. */

struct waitset;

struct waitset_waiter {
    struct waiter w;
    struct waitset *ws;
};

struct waitset {
    struct task *task;
    size_t n, ndone;
    int return_when;
    bool failed; /* a future failed (not cancelled) */
};

static bool waitset_satisfied(const struct waitset *ws)
{
    if (ws->ndone == ws->n)
        return true;
    if (ws->return_when == ASYNCIO_FIRST_COMPLETED)
        return ws->ndone > 0;
    if (ws->return_when == ASYNCIO_FIRST_EXCEPTION)
        return ws->failed;
    return false;
}

static bool failed_status(int status)
{
    return status < 0 && status != -ECANCELED;
}

static void waitset_notify(struct waiter *w, struct asyncio_future *f)
{
    struct waitset *ws = container_of(w, struct waitset_waiter, w)->ws;
    ws->ndone++;
    ws->failed |= failed_status(f->status);
    if (waitset_satisfied(ws))
        task_wake(ws->task, 0);
}

int asyncio_wait(size_t n, asyncio_future_t *const futs[], double timeout, int return_when,
                 asyncio_future_t *done[], asyncio_future_t *pending[])
{
    if (!n || !futs || isnan(timeout) || timeout < 0 ||
        (return_when != ASYNCIO_ALL_COMPLETED && return_when != ASYNCIO_FIRST_COMPLETED &&
         return_when != ASYNCIO_FIRST_EXCEPTION))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!futs[i])
            return -EINVAL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = task_check_await(futs[i]);
    if (rc < 0)
        return rc;

    struct waitset ws = {loop_current()->current, n, 0, return_when, false};
    for (size_t i = 0; i < n; i++) {
        if (future_is_done(futs[i])) {
            ws.ndone++;
            ws.failed |= failed_status(futs[i]->status);
        }
    }
    if (!waitset_satisfied(&ws) && timeout > 0) {
        struct waitset_waiter small[8], *w = small;
        struct task *t;
        if ((rc = task_begin_wait_on(&t, "wait")) < 0)
            return rc;
        if (n > sizeof small / sizeof small[0] && !(w = malloc(n * sizeof *w)))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            w[i].ws = NULL;
            if (!future_is_done(futs[i])) {
                w[i].ws = &ws;
                w[i].w.notify = waitset_notify;
                asyncio_future_retain(futs[i]);
                future_add_waiter(futs[i], &w[i].w);
            }
        }
        /* The call's own timeout is not an error: it wakes with 1. */
        uint64_t deadline = clock_deadline(clock_now_ns(), clock_seconds_to_ns(timeout));
        while (!waitset_satisfied(&ws) && rc == 0)
            rc = task_park_until(t, deadline, 1);
        for (size_t i = 0; i < n; i++) {
            if (w[i].ws) {
                future_remove_waiter(&w[i].w);
                asyncio_future_release(futs[i]);
            }
        }
        if (w != small)
            free(w);
        if (rc < 0)
            return rc;
    }
    size_t nd = 0, np = 0;
    for (size_t i = 0; i < n; i++) {
        if (future_is_done(futs[i])) {
            if (done)
                done[nd] = futs[i];
            nd++;
        } else {
            if (pending)
                pending[np] = futs[i];
            np++;
        }
    }
    return nd > INT32_MAX ? INT32_MAX : (int)nd;
}

/* asyncio.as_completed: futures queue up in the order they finish. */

struct ac_node {
    struct waiter w;
    struct ac_state *s;
    asyncio_future_t *f;
    struct ac_node *next; /* in the done queue */
    bool registered;
};

struct ac_state {
    struct task *task;  /* the task iterating, while it waits */
    size_t n, handed;
    uint64_t deadline;
    struct ac_node *head, **tailp;
    struct ac_node nodes[];
};

static void ac_push(struct ac_state *s, struct ac_node *node)
{
    node->next = NULL;
    *s->tailp = node;
    s->tailp = &node->next;
}

static void ac_notify(struct waiter *w, struct asyncio_future *f)
{
    struct ac_node *node = container_of(w, struct ac_node, w);
    (void)f;
    node->registered = false;
    ac_push(node->s, node);
    if (node->s->task)
        task_wake(node->s->task, 0);
}

int asyncio_as_completed_init(asyncio_as_completed_t *it, size_t n, asyncio_future_t *const futs[],
                              double timeout)
{
    if (!it || (n && !futs) || isnan(timeout) || timeout < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!futs[i])
            return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    struct ac_state *s = malloc(sizeof *s + n * sizeof s->nodes[0]);
    if (!s)
        return -ENOMEM;
    s->task = NULL;
    s->n = n;
    s->handed = 0;
    s->deadline = clock_deadline(clock_now_ns(), clock_seconds_to_ns(timeout));
    s->head = NULL;
    s->tailp = &s->head;
    for (size_t i = 0; i < n; i++) {
        struct ac_node *node = &s->nodes[i];
        node->s = s;
        node->f = asyncio_future_retain(futs[i]);
        node->registered = !future_is_done(futs[i]);
        if (node->registered) {
            node->w.notify = ac_notify;
            future_add_waiter(futs[i], &node->w);
        } else {
            ac_push(s, node);
        }
    }
    it->state = s;
    return 0;
}

int asyncio_as_completed_next(asyncio_as_completed_t *it, asyncio_future_t **f)
{
    if (!it || !it->state || !f)
        return -EINVAL;
    struct ac_state *s = it->state;
    if (s->handed == s->n)
        return 0;
    if (!s->head) {
        struct task *t = NULL;
        int rc = task_begin_wait_on(&t, "as_completed");
        if (rc == -EPERM)
            return rc;
        if (rc == 0 && clock_now_ns() >= s->deadline)
            rc = -ETIMEDOUT;
        s->task = t;
        while (rc == 0 && !s->head)
            rc = task_park_until(t, s->deadline, -ETIMEDOUT);
        s->task = NULL;
        if (rc < 0)
            return rc;
    }
    struct ac_node *node = s->head;
    s->head = node->next;
    if (!s->head)
        s->tailp = &s->head;
    s->handed++;
    *f = node->f;
    return 1;
}

void asyncio_as_completed_destroy(asyncio_as_completed_t *it)
{
    if (!it || !it->state)
        return;
    struct ac_state *s = it->state;
    for (size_t i = 0; i < s->n; i++) {
        if (s->nodes[i].registered)
            future_remove_waiter(&s->nodes[i].w);
        asyncio_future_release(s->nodes[i].f);
    }
    free(s);
    it->state = NULL;
}
