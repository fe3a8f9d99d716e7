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
        rc = task_begin_wait(&t);
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
            }
            rc = cancelled ? task_park(t) : task_park_until(t, UINT64_MAX, 0);
        }
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
    int rc = task_check_await(f);
    if (rc < 0)
        return rc;
    if (future_is_done(f))
        return future_outcome(f, result);

    /* wait_for is a timeout scope around an await. */
    asyncio_timeout_t scope;
    if ((rc = asyncio_timeout_enter(&scope, timeout)) < 0)
        return rc;
    rc = asyncio_await(f, result);
    asyncio_timeout_exit(&scope);
    return rc;
}
