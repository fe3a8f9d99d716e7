/* Futures: a result set once, the waiters told about it, and await and
 * shield, a task's wait for one future. */
#include "task.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void future_init(struct asyncio_future *f, struct loop *loop, bool is_task)
{
    f->loop = loop;
    dlist_push_back(is_task ? &loop->tasks.all : &loop->tasks.futures, &f->all);
    dlist_init(&f->waiters);
    f->refs = 1;
    f->state = FUT_PENDING;
    f->is_task = is_task;
    f->retrieved = false;
    f->traced = false;
    f->status = 0;
    f->result = NULL;
}

void future_complete(struct asyncio_future *f, int status, void *result)
{
    f->state = FUT_DONE;
    f->status = status;
    f->result = result;
    /* Waiters only queue work (a task wake-up, a callback), so none of
     * them runs inline here. */
    while (!dlist_empty(&f->waiters)) {
        struct waiter *w = container_of(f->waiters.next, struct waiter, link);
        dlist_remove(&w->link);
        w->notify(w, f);
    }
}

void future_add_waiter(struct asyncio_future *f, struct waiter *w)
{
    dlist_push_back(&f->waiters, &w->link);
}

int future_outcome(struct asyncio_future *f, void **result)
{
    f->retrieved = true;
    if (result)
        *result = f->status >= 0 ? f->result : NULL;
    return f->status;
}

void future_free(struct asyncio_future *f)
{
    /* asyncio's "Task exception was never retrieved" (debug.c). */
    if (f->state == FUT_DONE && f->status < 0 && f->status != -ECANCELED && !f->retrieved)
        debug_report_unretrieved(f);
    if (f->is_task)
        sweep_forget(f->loop, (struct task *)f);
    dlist_remove(&f->all);
    if (f->is_task)
        task_struct_recycle((struct task *)f);
    else
        free(f);
}

int asyncio_future_new(asyncio_future_t **out)
{
    if (!out)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    /* In debug mode, where it was made follows it. */
    bool traced = loop_instr(loop) & INSTR_DEBUG;
    struct asyncio_future *f = malloc(sizeof *f + (traced ? sizeof(void *) : 0));
    if (!f)
        return -ENOMEM;
    future_init(f, loop, false);
    if (traced) {
        f->traced = true;
        void *origin = CALLER_ADDRESS();
        memcpy(f + 1, &origin, sizeof origin);
    }
    *out = f;
    return 0;
}

/* The checks of debug mode (task.h), for the calls that change f or wait. */
#define OWNER(f) loop_check_owner((f)->loop, __func__)

asyncio_future_t *asyncio_future_retain(asyncio_future_t *f)
{
    if (!f || OWNER(f) < 0)
        return NULL; /* no reference taken: none to drop later */
    f->refs++;
    return f;
}

void asyncio_future_release(asyncio_future_t *f)
{
    if (f && OWNER(f) == 0 && --f->refs == 0)
        future_free(f);
}

int asyncio_future_set_result(asyncio_future_t *f, void *result)
{
    if (!f || f->is_task)
        return -EINVAL;
    int rc = OWNER(f);
    if (rc < 0)
        return rc;
    if (future_is_done(f))
        return -EALREADY;
    future_complete(f, 0, result);
    return 0;
}

int asyncio_future_set_error(asyncio_future_t *f, int error)
{
    if (!f || f->is_task || error >= 0)
        return -EINVAL;
    int rc = OWNER(f);
    if (rc < 0)
        return rc;
    if (future_is_done(f))
        return -EALREADY;
    future_complete(f, error, NULL);
    return 0;
}

int asyncio_future_cancel(asyncio_future_t *f)
{
    if (!f)
        return -EINVAL;
    int rc = OWNER(f);
    if (rc < 0)
        return rc;
    if (f->is_task)
        return asyncio_task_cancel(f);
    if (future_is_done(f))
        return 0;
    future_complete(f, -ECANCELED, NULL);
    return 1;
}

int asyncio_future_done(const asyncio_future_t *f)
{
    return f ? future_is_done(f) : -EINVAL;
}

int asyncio_future_cancelled(const asyncio_future_t *f)
{
    return f ? future_is_done(f) && f->status == -ECANCELED : -EINVAL;
}

int asyncio_future_result(const asyncio_future_t *f, void **result)
{
    if (!f)
        return -EINVAL;
    int rc = OWNER(f);
    if (rc < 0)
        return rc;
    if (!future_is_done(f))
        return -EAGAIN;
    return future_outcome((asyncio_future_t *)f, result); /* marks it retrieved */
}

/* Wait for f. If the wait is cut short by a cancellation or timeout, and
 * mode is not AWAIT_SHIELD, f is cancelled too and waited for; else f is
 * left alone. The steps are asyncio's: await wakes the task when f is done
 * (its __wakeup is f's done callback); shield and wait_for go through a
 * callback that completes another future, whose own callback wakes the
 * task: one step more (task_wake_hop()), and wait_for takes them even for
 * a done f (shield returns a done f at once). */
static int await_future(asyncio_future_t *f, void **result, enum await_mode mode)
{
    if (!f)
        return -EINVAL;
    int rc = OWNER(f);
    if (rc == 0)
        rc = task_check_await(f);
    if (rc < 0)
        return rc;
    struct task *t;
    if (future_is_done(f)) {
        if (mode != AWAIT_FOR)
            return future_outcome(f, result);
        asyncio_future_retain(f);
        if ((rc = task_begin_wait_on(&t, f->is_task ? "task" : "future")) == 0)
            rc = task_yield_hop(t);
        if (rc == 0)
            rc = future_outcome(f, result);
        asyncio_future_release(f);
        return rc;
    }
    bool propagate = mode != AWAIT_SHIELD;
    /* A cancellation already pending counts as one that comes now. */
    rc = task_begin_wait_on(&t, f->is_task ? "task" : "future");
    asyncio_future_retain(f);
    if (rc == 0) {
        task_watch_future(t, f, mode != AWAIT_PLAIN);
        if (mode == AWAIT_PLAIN)
            t->awaited = f; /* a cancellation goes to f (asyncio_task_cancel) */
        rc = task_park_until(t, UINT64_MAX, 0);
        t->awaited = NULL;
        future_remove_waiter(&t->wait.fut);
        if (t->cancel_forwarded) {
            /* The task's cancellation went to f: the wait ends when f is
             * done, with f's outcome, whatever woke the task meanwhile (a
             * timeout too: asyncio reports the cancellation that came
             * first). */
            t->cancel_forwarded = false;
            bool more = !future_is_done(f) && task_wait_done_uncancellable(t, f);
            rc = future_outcome(f, result);
            /* One more came while it waited (passed on to f too): part of
             * this -ECANCELED, else the next wait's. */
            if (more && rc != -ECANCELED)
                t->must_cancel = true;
            asyncio_future_release(f);
            return rc;
        }
    }
    if (propagate && (rc == -ECANCELED || rc == -ETIMEDOUT) && !future_is_done(f)) {
        /* As in asyncio, cancelling a task (or its timeout) cancels what it
         * awaits; the wait ends once that has finished. */
        asyncio_future_cancel(f);
        /* A cancellation that comes meanwhile is passed on to f too; it is
         * this wait's -ECANCELED, or, after a timeout, the next wait's. */
        if (task_wait_done_uncancellable(t, f) && rc != -ECANCELED)
            t->must_cancel = true;
    }
    if (rc == 0)
        rc = future_outcome(f, result);
    asyncio_future_release(f);
    return rc;
}

int asyncio_await(asyncio_future_t *f, void **result)
{
    return await_future(f, result, AWAIT_PLAIN);
}

int asyncio_shield(asyncio_future_t *f, void **result)
{
    return await_future(f, result, AWAIT_SHIELD);
}

int future_await_for(asyncio_future_t *f, void **result)
{
    return await_future(f, result, AWAIT_FOR);
}

void futures_free_all(struct loop *loop)
{
    while (!dlist_empty(&loop->tasks.futures))
        future_free(container_of(loop->tasks.futures.next, struct asyncio_future, all));
}
