/*
 * Timeout scopes (CPython: test_timeouts.py).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <unistd.h>

static int main_scope_times_out_a_sleep(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    double t0 = asyncio_loop_time();
    CHECK_INT(asyncio_timeout_enter(&scope, 0.05), 0);
    LOG("sleep:%s", tu_err(asyncio_sleep(10)));
    CHECK(asyncio_loop_time() - t0 >= 0.05);
    CHECK_INT(asyncio_timeout_expired(&scope), 1);
    /* Every later wait in the expired scope fails at once. */
    LOG("sleep0:%s", tu_err(asyncio_sleep(0)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    /* Outside it, waits work again. */
    LOG("after:%s", tu_err(asyncio_sleep(0.001)));
    return 0;
}

static void test_scope_times_out_waits_inside_it(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_scope_times_out_a_sleep, NULL, NULL), 0);
    assert_log("sleep:ETIMEDOUT sleep0:ETIMEDOUT exit:ETIMEDOUT after:0");
}

static int main_scope_not_reached(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 10), 0);
    LOG("sleep:%s", tu_err(asyncio_sleep(0.01)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_timeout_expired(&scope), 0);
    return 0;
}

static void test_scope_not_reached_changes_nothing(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_scope_not_reached, NULL, NULL), 0);
    assert_log("sleep:0 exit:0");
}

static int main_zero_delay(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0), 0);
    LOG("sleep0:%s", tu_err(asyncio_sleep(0)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_zero_delay_times_out_the_first_wait(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_zero_delay, NULL, NULL), 0);
    assert_log("sleep0:ETIMEDOUT exit:ETIMEDOUT");
}

static int main_nested_outer_nearer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t outer, inner;
    CHECK_INT(asyncio_timeout_enter(&outer, 0.03), 0);
    CHECK_INT(asyncio_timeout_enter(&inner, 10), 0);
    LOG("sleep:%s", tu_err(asyncio_sleep(10)));
    LOG("inner:%s", tu_err(asyncio_timeout_exit(&inner)));
    LOG("outer:%s", tu_err(asyncio_timeout_exit(&outer)));
    return 0;
}

static void test_nested_scopes_nearest_deadline_wins_outer(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_nested_outer_nearer, NULL, NULL), 0);
    assert_log("sleep:ETIMEDOUT inner:0 outer:ETIMEDOUT");
}

static int main_nested_inner_nearer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t outer, inner;
    CHECK_INT(asyncio_timeout_enter(&outer, 10), 0);
    CHECK_INT(asyncio_timeout_enter(&inner, 0.03), 0);
    LOG("sleep:%s", tu_err(asyncio_sleep(10)));
    LOG("inner:%s", tu_err(asyncio_timeout_exit(&inner)));
    LOG("sleep:%s", tu_err(asyncio_sleep(0.001)));
    LOG("outer:%s", tu_err(asyncio_timeout_exit(&outer)));
    return 0;
}

static void test_nested_scopes_nearest_deadline_wins_inner(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_nested_inner_nearer, NULL, NULL), 0);
    assert_log("sleep:ETIMEDOUT inner:ETIMEDOUT sleep:0 outer:0");
}

/* Another task moves the deadline of a scope whose task is waiting. */
struct resched {
    asyncio_timeout_t *scope;
    double when;
};

static int rescheduler(void *arg, void **result)
{
    struct resched *r = arg;
    (void)result;
    CHECK_INT(asyncio_sleep(0.01), 0);
    CHECK_INT(asyncio_timeout_reschedule(r->scope, asyncio_loop_time() + r->when), 0);
    LOG("moved");
    return 0;
}

static int main_reschedule_earlier(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, INFINITY), 0);
    CHECK(isinf(asyncio_timeout_when(&scope)));
    struct resched r = {&scope, 0.02};
    tu_spawn(rescheduler, &r, NULL);
    LOG("sleep:%s", tu_err(asyncio_sleep(10)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_reschedule_earlier_applies_to_the_wait_in_progress(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_reschedule_earlier, NULL, NULL), 0);
    assert_log("moved sleep:ETIMEDOUT exit:ETIMEDOUT");
}

static int main_reschedule_later(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_timeout_enter(&scope, 0.05), 0);
    struct resched r = {&scope, 10};
    tu_spawn(rescheduler, &r, NULL);
    CHECK_INT(asyncio_call_later(0.1, tu_cb_set_future, f, NULL), 0);
    LOG("await:%s", tu_err(asyncio_await(f, NULL)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_reschedule_later_lets_the_wait_finish(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_reschedule_later, NULL, NULL), 0);
    assert_log("moved await:0 exit:0");
}

/* A timeout cancels what the task awaits and waits for it to finish. */
static int slow_child(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(10);
    LOG("child:%s", tu_err(rc));
    CHECK_INT(asyncio_sleep(0.005), 0); /* cleanup that waits */
    LOG("child-cleaned");
    return rc;
}

static int main_await_in_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *child = tu_spawn(slow_child, NULL, NULL);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("await:%s", tu_err(asyncio_await(child, NULL)));
    CHECK_INT(asyncio_future_cancelled(child), 1);
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_timeout_cancels_the_awaited_task_and_waits_for_it(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_await_in_scope, NULL, NULL), 0);
    assert_log("child:ECANCELED child-cleaned await:ETIMEDOUT exit:ETIMEDOUT");
}

static int main_gather_in_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *futs[2] = {tu_spawn(slow_child, NULL, NULL), tu_future()};
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("gather:%s", tu_err(asyncio_gather(2, futs, NULL, NULL, 0)));
    CHECK_INT(asyncio_future_cancelled(futs[0]), 1);
    CHECK_INT(asyncio_future_cancelled(futs[1]), 1);
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_timeout_cancels_gathered_children(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_gather_in_scope, NULL, NULL), 0);
    assert_log("child:ECANCELED child-cleaned gather:ETIMEDOUT exit:ETIMEDOUT");
}

static int main_wait_for_in_nearer_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *child = tu_spawn(slow_child, NULL, NULL);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("wait_for:%s", tu_err(asyncio_wait_for(child, 10, NULL)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_wait_for_inside_a_nearer_scope_times_out_by_the_scope(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_wait_for_in_nearer_scope, NULL, NULL), 0);
    assert_log("child:ECANCELED child-cleaned wait_for:ETIMEDOUT exit:ETIMEDOUT");
}

static int main_io_in_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int p[2];
    CHECK_INT(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("readable:%s", tu_err(asyncio_wait_readable(p[0])));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    asyncio_forget_fd(p[0]);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void test_timeout_ends_a_wait_for_an_fd(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_io_in_scope, NULL, NULL), 0);
    assert_log("readable:ETIMEDOUT exit:ETIMEDOUT");
}

/* Cancellation and timeout due at the same moment: the cancellation wins
 * in either order, as in asyncio. Equal deadlines fire in the order they
 * were scheduled, and a timer wakes its task one step later (asyncio's
 * timer callback, then the task's step), so the cancellation reaches the
 * task before it resumes even when the scope's deadline fired first; a
 * cancellation that comes before the task resumes replaces its wake-up.
 * CPython 3.11 gives CancelledError in both orders. The scope counts as
 * expired only once a wait in it timed out. */
static void cancel_cb(void *arg)
{
    asyncio_task_cancel((asyncio_task_t *)arg);
}

/* Set when a run was too slow to show the order: the racer reached its
 * wait (or main its call_at) only after the shared deadline had passed,
 * as on a loaded machine under a sanitizer. Then the run says nothing and
 * is made again with a longer delay. */
static bool race_late;

static int racer(void *arg, void **result)
{
    double when = *(double *)arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter_at(&scope, when), 0);
    if (asyncio_loop_time() >= when - 0.001) {
        race_late = true;
        return asyncio_timeout_exit(&scope) == 0 ? 0 : -EIO;
    }
    LOG("sleep:%s", tu_err(asyncio_sleep(10)));
    LOG("expired:%d", asyncio_timeout_expired(&scope));
    LOG("again:%s", tu_err(asyncio_sleep(0)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

struct race {
    int cancel_first;
    double delay; /* from now to the shared deadline */
};

static int main_race(void *arg, void **result)
{
    (void)result;
    const struct race *r = arg;
    double when = asyncio_loop_time() + r->delay;
    asyncio_task_t *t;
    asyncio_handle_t h;
    if (r->cancel_first) {
        /* The cancel's timer is scheduled before the scope's. */
        CHECK_INT(asyncio_create_task(&t, racer, &when, NULL), 0);
        CHECK_INT(asyncio_call_at(when, cancel_cb, t, &h), 0);
    } else {
        CHECK_INT(asyncio_create_task(&t, racer, &when, NULL), 0);
        tu_yield(1); /* the racer arms its scope timer first */
        if (asyncio_loop_time() >= when - 0.001)
            race_late = true;
        CHECK_INT(asyncio_call_at(when, cancel_cb, t, &h), 0);
    }
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_handle_cancel(&h); /* a late racer left before the cancel came */
    asyncio_task_release(t);
    return 0;
}

static void test_cancel_and_timeout_at_once_resolve_in_loop_order(void **state)
{
    (void)state;
    static const char *const expect[2] = {
        /* the deadline fires first, the cancellation comes in the same
         * iteration, before the task's step */
        "sleep:ECANCELED expired:0 again:ETIMEDOUT exit:ETIMEDOUT",
        "sleep:ECANCELED expired:0 again:ETIMEDOUT exit:ETIMEDOUT",
    };
    for (int cancel_first = 1; cancel_first >= 0; cancel_first--) {
        struct race r = {cancel_first, 0.02};
        for (;;) {
            race_late = false;
            tu_log_reset();
            assert_int_equal(tu_run(main_race, &r, NULL), 0);
            if (!race_late)
                break;
            if (r.delay >= 2)
                fail_msg("too slow to race even %.2f s ahead", r.delay);
            r.delay *= 10;
        }
        assert_log(expect[cancel_first]);
    }
}

static int other_exits(void *arg, void **result)
{
    (void)result;
    CHECK_INT(asyncio_timeout_exit((asyncio_timeout_t *)arg), -EPERM);
    return 0;
}

static void cb_enter(void *arg)
{
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 1), -EPERM);
    (void)arg;
}

static int main_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t a, b;
    CHECK_INT(asyncio_timeout_enter(NULL, 1), -EINVAL);
    CHECK_INT(asyncio_timeout_enter(&a, NAN), -EINVAL);
    CHECK_INT(asyncio_timeout_enter(&a, -1), 0); /* due, but nothing waited */
    CHECK_INT(asyncio_timeout_exit(&a), 0);
    CHECK_INT(asyncio_timeout_enter_at(&a, NAN), -EINVAL);
    CHECK_INT(asyncio_timeout_enter(&a, 1), 0);
    CHECK_INT(asyncio_timeout_enter(&b, 1), 0);
    CHECK_INT(asyncio_timeout_enter(&a, 1), -EINVAL); /* open already */
    CHECK_INT(asyncio_timeout_enter_at(&b, 1), -EINVAL);
    CHECK_INT(asyncio_timeout_exit(&a), -EINVAL); /* not the innermost */
    asyncio_task_t *t = tu_spawn(other_exits, &b, NULL);
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(asyncio_timeout_reschedule(&b, NAN), -EINVAL);
    CHECK_INT(asyncio_timeout_exit(&b), 0);
    CHECK_INT(asyncio_timeout_exit(&b), -EINVAL); /* twice */
    CHECK_INT(asyncio_timeout_reschedule(&b, 1), -EINVAL);
    CHECK_INT(asyncio_timeout_exit(&a), 0);
    CHECK_INT(asyncio_timeout_expired(NULL), -EINVAL);
    CHECK(isnan(asyncio_timeout_when(NULL)));
    CHECK_INT(asyncio_call_soon(cb_enter, NULL, NULL), 0);
    tu_yield(2);
    return 0;
}

static void test_misuse_gets_error_codes(void **state)
{
    (void)state;
    asyncio_timeout_t scope;
    assert_int_equal(asyncio_timeout_enter(&scope, 1), -EPERM);
    assert_int_equal(tu_run(main_misuse, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_times_out_waits_inside_it),
        cmocka_unit_test(test_scope_not_reached_changes_nothing),
        cmocka_unit_test(test_zero_delay_times_out_the_first_wait),
        cmocka_unit_test(test_nested_scopes_nearest_deadline_wins_outer),
        cmocka_unit_test(test_nested_scopes_nearest_deadline_wins_inner),
        cmocka_unit_test(test_reschedule_earlier_applies_to_the_wait_in_progress),
        cmocka_unit_test(test_reschedule_later_lets_the_wait_finish),
        cmocka_unit_test(test_timeout_cancels_the_awaited_task_and_waits_for_it),
        cmocka_unit_test(test_timeout_cancels_gathered_children),
        cmocka_unit_test(test_wait_for_inside_a_nearer_scope_times_out_by_the_scope),
        cmocka_unit_test(test_timeout_ends_a_wait_for_an_fd),
        cmocka_unit_test(test_cancel_and_timeout_at_once_resolve_in_loop_order),
        cmocka_unit_test(test_misuse_gets_error_codes),
    };
    return tu_run_group_tests_name("timeout", tests, NULL, NULL);
}
