/* Timeout scopes, deadlines over a block of waits, and wait_for, a scope
 * around an await. The scopes of a task are a list through the caller's
 * scope objects; task_park_until() arms the task's timer for the nearest
 * deadline, and task_begin_wait_on() fails waits in a scope whose deadline
 * has passed. */
#include "task.h"
#include "clock.h"

#include <errno.h>
#include <math.h>

static int enter_ns(asyncio_timeout_t *scope, uint64_t deadline)
{
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    struct task *t = loop->current;
    /* Entered twice (asyncio's RuntimeError): linking it again would make
     * the list a cycle. Only this task's open scopes can be checked: the
     * fields of a scope never entered are whatever the caller left. */
    for (const asyncio_timeout_t *s = t->scopes; s; s = s->outer)
        if (s == scope)
            return -EINVAL;
    scope->outer = t->scopes;
    scope->task = t;
    scope->deadline_ns = deadline;
    scope->expired = 0;
    scope->open = 1;
    t->scopes = scope;
    return 0;
}

/* Loop time in seconds to a deadline in ns (INFINITY: none; past: 0). */
static uint64_t when_to_ns(double when)
{
    return when <= 0 ? 0 : clock_seconds_to_ns(when);
}

int asyncio_timeout_enter(asyncio_timeout_t *scope, double delay)
{
    if (!scope || isnan(delay))
        return -EINVAL;
    return enter_ns(scope, clock_deadline(clock_now_ns(), clock_seconds_to_ns(delay)));
}

int asyncio_timeout_enter_at(asyncio_timeout_t *scope, double when)
{
    if (!scope || isnan(when))
        return -EINVAL;
    return enter_ns(scope, when_to_ns(when));
}

int asyncio_timeout_reschedule(asyncio_timeout_t *scope, double when)
{
    if (!scope || isnan(when) || !scope->open)
        return -EINVAL;
    uint64_t old = scope->deadline_ns;
    scope->deadline_ns = when_to_ns(when);
    struct task *t = scope->task;
    /* A wait in progress takes the new deadline now. One already past ends
     * it now, as the timer would (asyncio's reschedule calls the timeout
     * back at once): what comes later in this iteration, a release or a
     * result, must find the task timed out, not hand it anything. */
    if (t->timed_wait && !t->queued) {
        int rc = task_rearm(t);
        if (rc < 0) {
            /* No room for the timer (-ENOMEM): the wait keeps the deadline
             * it had, and its timer (the heap kept the room the cancelled
             * one took: this re-arm cannot fail). */
            scope->deadline_ns = old;
            task_rearm(t);
            return rc;
        }
        if (timer_queued(&t->timer.t) && t->timer.t.when <= clock_now_ns()) {
            loop_timer_cancel(t->fut.loop, &t->timer);
            task_wake(t, t->timer_status);
        }
        return rc;
    }
    return 0;
}

double asyncio_timeout_when(const asyncio_timeout_t *scope)
{
    if (!scope)
        return NAN;
    return scope->deadline_ns == UINT64_MAX ? INFINITY : (double)scope->deadline_ns / 1e9;
}

int asyncio_timeout_expired(const asyncio_timeout_t *scope)
{
    return scope ? scope->expired : -EINVAL;
}

int asyncio_timeout_exit(asyncio_timeout_t *scope)
{
    if (!scope || !scope->open)
        return -EINVAL;
    struct loop *loop = loop_current();
    struct task *t = scope->task;
    if (!loop || loop->current != t)
        return -EPERM;
    if (t->scopes != scope)
        return -EINVAL;
    t->scopes = scope->outer;
    scope->open = 0;
    return scope->expired ? -ETIMEDOUT : 0;
}

int asyncio_wait_for(asyncio_future_t *f, double timeout, void **result)
{
    if (!f || isnan(timeout))
        return -EINVAL;
    /* The await makes the other checks. */
    asyncio_timeout_t scope;
    int rc = asyncio_timeout_enter(&scope, timeout);
    if (rc < 0)
        return rc;
    /* Without a limit, asyncio's wait_for is a plain await; with none left,
     * a done f's outcome comes at once. */
    rc = timeout == INFINITY || (timeout <= 0 && future_is_done(f))
             ? asyncio_await(f, result)
             : future_await_for(f, result);
    /* Its own timeout, and yet f did not end cancelled: it was done before
     * this task resumed, or it did not let the cancellation stop it (a task
     * that returned anyway, or failed otherwise). asyncio's wait_for then
     * returns f's outcome (3.11: fut.result() after the timeout). */
    if (asyncio_timeout_exit(&scope) == -ETIMEDOUT && rc == -ETIMEDOUT && future_is_done(f) &&
        f->status != -ECANCELED)
        rc = future_outcome(f, result);
    return rc;
}
