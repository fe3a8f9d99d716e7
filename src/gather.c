/* Waiting on several futures: gather, wait and as_completed, each a fan-in
 * (waitq.h) with its own rule for when the waiting is over. */
#include "waitq.h"
#include "clock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* -EINVAL for a NULL future, -EPERM outside a task, then, unless self_ok,
 * -EDEADLK if one is the calling task; else 0. */
static int check_futures(size_t n, asyncio_future_t *const futs[], bool self_ok)
{
    for (size_t i = 0; i < n; i++)
        if (!futs[i])
            return -EINVAL;
    int rc = task_check_await(NULL);
    for (size_t i = 0; i < n && rc == 0 && !self_ok; i++)
        rc = task_check_await(futs[i]);
    return rc;
}

int asyncio_gather(size_t n, asyncio_future_t *const futs[], void *results[], int errors[],
                   unsigned flags)
{
    if ((n && !futs) || (flags & ~ASYNCIO_RETURN_EXCEPTIONS))
        return -EINVAL;
    int rc = check_futures(n, futs, false); /* -EPERM even for n == 0 */
    if (rc < 0)
        return rc;

    bool fail_fast = !(flags & ASYNCIO_RETURN_EXCEPTIONS);
    int first_error = 0;
    int cancelled = 0; /* -ECANCELED or -ETIMEDOUT once it happened */
    struct task *t = loop_current()->current;
    struct fanin *fi;
    if (n && (rc = fanin_open(&fi, t->fut.loop, n, futs)) < 0)
        return rc;
    if (n) {
        fi->stop = fail_fast ? FANIN_FIRST_ERROR : FANIN_ALL;
        /* A cancellation already pending counts as one that comes now.
         * Done already, it still takes asyncio's two steps (the children's
         * callbacks, then the outer future's). */
        if ((rc = task_begin_wait_on(&t, "gather")) == 0)
            rc = fanin_satisfied(fi) ? task_yield_hop(t) : fanin_wait(fi, t, UINT64_MAX, 0, true);
        if (rc < 0 && !fanin_satisfied(fi)) {
            /* Cancelling gather (or its timeout) cancels its unfinished
             * children, then waits until they have finished, whatever
             * comes meanwhile. */
            for (size_t i = 0; i < n; i++)
                if (!future_is_done(futs[i]))
                    asyncio_future_cancel(futs[i]);
            fi->stop = FANIN_ALL;
            fanin_wait(fi, t, UINT64_MAX, 0, false);
        }
        /* A cancellation or timeout that came with the wake (the last child
         * finished, or one failed, and the task had not resumed yet) is
         * this wait's to report, as asyncio_await() would. */
        cancelled = rc;
        first_error = fi->first_error;
        fanin_close(fi);
    }

    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        bool done = future_is_done(futs[i]);
        int st = done ? futs[i]->status : -EAGAIN;
        /* Every child counts as retrieved, even one that fails after gather
         * returned: asyncio's gather retrieves each exception as its child
         * finishes, outer done or not. */
        futs[i]->retrieved = true;
        if (results)
            results[i] = done && st >= 0 ? futs[i]->result : NULL;
        if (errors)
            errors[i] = st < 0 ? st : 0;
        if (done && st < 0)
            failed++;
    }
    if (cancelled)
        return cancelled;
    if (fail_fast)
        return first_error;
    return (int)(failed > INT32_MAX ? INT32_MAX : failed);
}

/* asyncio.wait: counts what is done, never cancels. */
int asyncio_wait(size_t n, asyncio_future_t *const futs[], double timeout, int return_when,
                 asyncio_future_t *done[], asyncio_future_t *pending[])
{
    if (!n || !futs || isnan(timeout) ||
        (return_when != ASYNCIO_ALL_COMPLETED && return_when != ASYNCIO_FIRST_COMPLETED &&
         return_when != ASYNCIO_FIRST_EXCEPTION))
        return -EINVAL;
    int rc = check_futures(n, futs, false);
    if (rc < 0)
        return rc;

    struct task *t;
    struct fanin *fi;
    if ((rc = fanin_open(&fi, loop_current(), n, futs)) < 0)
        return rc;
    if (return_when == ASYNCIO_FIRST_COMPLETED)
        fi->want = 1;
    else if (return_when == ASYNCIO_FIRST_EXCEPTION)
        fi->stop = FANIN_FIRST_FAILURE;
    /* Done already, or no time to wait, it still takes asyncio's two steps
     * (the futures' callbacks, then the waiter's), and counts then. */
    if ((rc = task_begin_wait_on(&t, "wait")) == 0) {
        if (fanin_satisfied(fi) || timeout <= 0) {
            rc = task_yield_hop(t);
        } else {
            /* The call's own timeout is not an error: it wakes with 1. */
            uint64_t deadline = clock_deadline(clock_now_ns(), clock_seconds_to_ns(timeout));
            rc = fanin_wait(fi, t, deadline, 1, true);
        }
    }
    fanin_close(fi);
    if (rc < 0)
        return rc;
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

/* asyncio.as_completed: futures come out in the order they finish, from a
 * fan-in kept open between the calls. */
int asyncio_as_completed_init(asyncio_as_completed_t *it, size_t n, asyncio_future_t *const futs[],
                              double timeout)
{
    if (!it || (n && !futs) || isnan(timeout))
        return -EINVAL;
    struct fanin *fi;
    int rc = check_futures(n, futs, true);
    if (rc < 0 || (rc = fanin_open(&fi, loop_current(), n, futs)) < 0)
        return rc;
    fi->deadline = clock_deadline(clock_now_ns(), clock_seconds_to_ns(timeout));
    it->state = fi;
    return 0;
}

int asyncio_as_completed_next(asyncio_as_completed_t *it, asyncio_future_t **f)
{
    if (!it || !it->state || !f)
        return -EINVAL;
    struct fanin *fi = it->state;
    if (!fi->done) {
        if (fi->ndone == fi->n)
            return 0; /* every one handed out */
        struct task *t = NULL;
        int rc = task_begin_wait_on(&t, "as_completed");
        if (rc == -EPERM)
            return rc;
        if (rc == 0 && clock_now_ns() >= fi->deadline)
            rc = -ETIMEDOUT;
        fi->want = fi->ndone + 1;
        if (rc == 0)
            rc = fanin_wait(fi, t, fi->deadline, -ETIMEDOUT, true);
        if (rc < 0)
            return rc;
    }
    struct fanin_node *node = fi->done;
    fi->done = node->next;
    if (!fi->done)
        fi->done_tail = &fi->done;
    *f = node->f;
    return 1;
}

void asyncio_as_completed_destroy(asyncio_as_completed_t *it)
{
    if (!it || !it->state)
        return;
    fanin_close(it->state);
    it->state = NULL;
}
