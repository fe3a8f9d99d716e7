/*
 * Task cancellation (CPython: test_tasks.py, the test_cancel* tests).
 */
#include "testutil.h"

static int g_val;
static int g_ran;

static int sleep_forever_logging(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_ran = 1;
    LOG("sleeping");
    int rc = asyncio_sleep(10.0);
    LOG("sleep:%s", tu_err(rc));
    return rc;
}

static int main_cancel_at_sleep(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(sleep_forever_logging, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("cancel:%d", asyncio_task_cancel(t));
    CHECK_INT(asyncio_future_done(t), 0); /* delivered when it next runs */
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    CHECK_INT(asyncio_future_result(t, NULL), -ECANCELED);
    LOG("main");
    return 0;
}

static void test_cancel_task_waiting_in_sleep(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_at_sleep, NULL, NULL), 0);
    assert_log("sleeping cancel:1 sleep:ECANCELED main");
}

static int await_arg_logging(void *arg, void **result)
{
    LOG("waiting");
    int rc = asyncio_await((asyncio_future_t *)arg, result);
    LOG("await:%s", tu_err(rc));
    return rc;
}

static int main_cancel_at_future(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t = tu_spawn(await_arg_logging, f, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    /* As in asyncio, the future the task waited for is cancelled too. */
    CHECK_INT(asyncio_future_done(f), 1);
    CHECK_INT(asyncio_future_cancelled(f), 1);
    CHECK_INT(asyncio_future_set_result(f, &g_val), -EALREADY);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("main");
    return 0;
}

static void test_cancel_task_waiting_on_future_cancels_the_future(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_at_future, NULL, NULL), 0);
    assert_log("waiting await:ECANCELED main");
}

static void done_cb_log(asyncio_future_t *f, void *arg)
{
    LOG("done-cb:%s", tu_err(asyncio_future_result(f, NULL)));
    tu_cb_set_future(arg);
}

static int main_cancel_before_start(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_ran = 0;
    asyncio_future_t *cb_done = tu_future();
    asyncio_task_t *t = tu_spawn(sleep_forever_logging, NULL, NULL);
    CHECK_INT(asyncio_future_add_done_callback(t, done_cb_log, cb_done), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    CHECK_INT(asyncio_await(cb_done, NULL), 0);
    CHECK_INT(g_ran, 0);
    CHECK_INT(asyncio_task_cancel(t), 0);
    return 0;
}

static void test_cancel_before_task_first_runs_means_it_never_runs(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_before_start, NULL, NULL), 0);
    assert_int_equal(g_ran, 0);
    assert_log("done-cb:ECANCELED");
}

static int returns_5(void *arg, void **result)
{
    (void)arg;
    *result = &g_val;
    return 5;
}

static int main_cancel_after_finish(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(returns_5, NULL, NULL);
    CHECK_INT(asyncio_await(t, NULL), 5);
    CHECK_INT(asyncio_task_cancel(t), 0);
    CHECK_INT(asyncio_future_cancel(t), 0);
    CHECK_INT(asyncio_future_cancelled(t), 0);
    void *res = NULL;
    CHECK_INT(asyncio_future_result(t, &res), 5);
    CHECK_PTR(res, &g_val);
    /* Nothing pending for the caller either. */
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_cancel_after_task_finished_returns_0(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_after_finish, NULL, NULL), 0);
}

static int catches_cancel(void *arg, void **result)
{
    (void)arg;
    int rc = asyncio_sleep(10.0);
    LOG("sleep:%s", tu_err(rc));
    rc = asyncio_sleep(0);
    LOG("again:%s", tu_err(rc));
    rc = asyncio_sleep(0.001);
    LOG("sleep2:%s", tu_err(rc));
    *result = &g_val;
    return 42;
}

static int main_catch_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(catches_cancel, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    void *res = NULL;
    CHECK_INT(asyncio_await(t, &res), 42);
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_cancelled(t), 0);
    return 0;
}

static void test_task_catching_cancellation_goes_on_and_returns_a_result(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_catch_cancel, NULL, NULL), 0);
    assert_log("sleep:ECANCELED again:0 sleep2:0");
}

static int cancels_itself(void *arg, void **result)
{
    (void)arg;
    LOG("start");
    LOG("cancel:%d", asyncio_task_cancel(asyncio_current_task()));
    LOG("still-running");
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    *result = &g_val;
    return 7;
}

static int main_cancel_while_running(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(cancels_itself, NULL, NULL);
    void *res = NULL;
    CHECK_INT(asyncio_await(t, &res), 7);
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_cancelled(t), 0);
    return 0;
}

static void test_cancel_requested_while_running_is_delivered_at_next_wait(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_while_running, NULL, NULL), 0);
    assert_log("start cancel:1 still-running sleep:ECANCELED sleep:0");
}

static int await_then_sleep(void *arg, void **result)
{
    void *res = NULL;
    int rc = asyncio_await((asyncio_future_t *)arg, &res);
    LOG("await:%s:%s", tu_err(rc), res == &g_val ? "val" : "other");
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    *result = res;
    return 0;
}

static int main_cancel_after_wakeup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t = tu_spawn(await_then_sleep, f, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    /* The task's wait is satisfied (it is ready to resume), then cancelled:
     * that same wait reports the cancellation, as in asyncio; the future
     * keeps its result, and the next waits are not cancelled. */
    CHECK_INT(asyncio_future_set_result(f, &g_val), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(asyncio_future_cancelled(t), 0);
    void *res = NULL;
    CHECK_INT(asyncio_future_result(f, &res), 0);
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    return 0;
}

static void test_cancel_after_wait_was_satisfied_is_reported_by_that_wait(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_after_wakeup, NULL, NULL), 0);
    assert_log("await:ECANCELED:other sleep:0 sleep:0");
}

static int cancel_self_return_0(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    LOG("returning");
    return 0;
}

static int await_then_return_0(void *arg, void **result)
{
    (void)result;
    LOG("await:%s", tu_err(asyncio_await((asyncio_future_t *)arg, NULL)));
    return 0;
}

static int main_undelivered_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t1 = tu_spawn(cancel_self_return_0, NULL, NULL);
    CHECK_INT(asyncio_await(t1, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t1), 1);
    CHECK_INT(asyncio_future_result(t1, NULL), -ECANCELED);
    return 0;
}

static void test_undelivered_cancel_makes_task_returning_0_finish_cancelled(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_undelivered_cancel, NULL, NULL), 0);
    assert_log("returning");
}

static int main_undelivered_cancel_after_wakeup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t2 = tu_spawn(await_then_return_0, f, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    /* Satisfied wait, then cancel: the wait reports it, so it was delivered
     * and a task that then returns 0 has succeeded. */
    CHECK_INT(asyncio_future_set_result(f, NULL), 0);
    CHECK_INT(asyncio_task_cancel(t2), 1);
    CHECK_INT(asyncio_await(t2, NULL), 0);
    CHECK_INT(asyncio_future_cancelled(t2), 0);
    return 0;
}

static void test_cancel_reported_by_satisfied_wait_counts_as_delivered(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_undelivered_cancel_after_wakeup, NULL, NULL), 0);
    assert_log("await:ECANCELED");
}

static int inner_task(void *arg, void **result)
{
    LOG("inner-start");
    int rc = asyncio_await((asyncio_future_t *)arg, NULL);
    LOG("inner-done:%s", tu_err(rc));
    *result = &g_val;
    return 7;
}

static int outer_task(void *arg, void **result)
{
    int rc = asyncio_await((asyncio_task_t *)arg, result);
    LOG("outer:%s", tu_err(rc));
    return rc;
}

static int inner_with_cleanup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("inner-start");
    int rc = asyncio_sleep(INFINITY);
    LOG("inner:%s", tu_err(rc));
    CHECK_INT(asyncio_sleep(0.005), 0);
    LOG("inner-cleaned");
    return rc;
}

static int main_cancel_outer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *inner = tu_spawn(inner_with_cleanup, NULL, "inner");
    asyncio_task_t *outer = tu_spawn(outer_task, inner, "outer");
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(outer), 1);
    CHECK_INT(asyncio_await(outer, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(outer), 1);
    /* As in asyncio, the awaited task was cancelled too, and had finished
     * before the outer await returned. */
    CHECK_INT(asyncio_future_done(inner), 1);
    CHECK_INT(asyncio_future_cancelled(inner), 1);
    return 0;
}

static void test_cancel_task_awaiting_another_task_cancels_inner_and_waits_for_it(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_outer, NULL, NULL), 0);
    assert_log("inner-start inner:ECANCELED inner-cleaned outer:ECANCELED");
}

static int sleep_forever_then_go_on(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("first:%s", tu_err(asyncio_sleep(INFINITY)));
    LOG("second:%s", tu_err(asyncio_sleep(0)));
    LOG("third:%s", tu_err(asyncio_sleep(0.001)));
    return 0;
}

static int main_cancel_twice(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(sleep_forever_then_go_on, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(asyncio_future_cancelled(t), 0);
    return 0;
}

static void test_cancel_requested_twice_is_delivered_once(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_twice, NULL, NULL), 0);
    assert_log("first:ECANCELED second:0 third:0");
}

static int pending_cancel_waits(void *arg, void **result)
{
    asyncio_future_t *pending = arg;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    /* Would wait with a cancellation pending: returns at once. */
    LOG("sleep-inf:%s", tu_err(asyncio_sleep(INFINITY)));
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    /* As in asyncio, the pending cancellation also cancels what is awaited. */
    LOG("await:%s", tu_err(asyncio_await(pending, NULL)));
    CHECK_INT(asyncio_future_cancelled(pending), 1);
    return -ECANCELED;
}

static int main_pending_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t = tu_spawn(pending_cancel_waits, f, NULL);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(f), 1);
    return 0;
}

static void test_waiting_call_with_cancellation_pending_returns_at_once(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_pending_cancel, NULL, NULL), 0);
    assert_log("sleep-inf:ECANCELED await:ECANCELED");
}

static int await_done_with_cancel_pending(void *arg, void **result)
{
    void *res = NULL;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    /* A done future: no wait, so no delivery yet. */
    int rc = asyncio_await((asyncio_future_t *)arg, &res);
    LOG("await-done:%s:%s", tu_err(rc), res == &g_val ? "val" : "other");
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    return -ECANCELED;
}

static int main_await_done_with_pending_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_future_set_result(f, &g_val), 0);
    asyncio_task_t *t = tu_spawn(await_done_with_cancel_pending, f, NULL);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    return 0;
}

static void test_awaiting_done_future_does_not_consume_pending_cancel(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_await_done_with_pending_cancel, NULL, NULL), 0);
    assert_log("await-done:0:val sleep:ECANCELED");
}

static int cleanup_after_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(INFINITY);
    LOG("cancelled:%s", tu_err(rc));
    CHECK_INT(asyncio_sleep(0.01), 0);
    LOG("cleaned-up");
    return -ECANCELED;
}

static int main_cleanup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(cleanup_after_cancel, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    /* asyncio_future_cancel() on a task is asyncio_task_cancel(). */
    CHECK_INT(asyncio_future_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    LOG("main-saw-done");
    CHECK_INT(asyncio_future_cancelled(t), 1);
    return 0;
}

static void test_cancelled_task_can_wait_while_cleaning_up(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cleanup, NULL, NULL), 0);
    assert_log("cancelled:ECANCELED cleaned-up main-saw-done");
}

static void cb_cancel_task(void *arg)
{
    LOG("timer-cancels");
    CHECK_INT(asyncio_task_cancel((asyncio_task_t *)arg), 1);
}

static int main_cancel_from_callback(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(sleep_forever_logging, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0); /* t now sleeps */
    CHECK_INT(asyncio_call_later(0.005, cb_cancel_task, t, NULL), 0);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    return 0;
}

static void test_cancel_task_from_a_loop_callback(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_from_callback, NULL, NULL), 0);
    assert_log("sleeping timer-cancels sleep:ECANCELED");
}

static int main_awaiter_cancelled_while_awaiting(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* The main task is cancelled while it awaits a task that swallows the
     * cancellation passed on to it and returns 7: as in asyncio (the
     * cancellation goes to what the task awaits), the await returns the
     * inner outcome, and the main task goes on. CPython 3.11 prints
     * "outer await returned inner-result" for the same scenario. */
    asyncio_future_t *f = tu_future();
    asyncio_task_t *inner = tu_spawn(inner_task, f, "inner");
    CHECK_INT(asyncio_sleep(0), 0); /* inner now waits on f */
    CHECK_INT(asyncio_call_soon(cb_cancel_task, asyncio_current_task(), NULL), 0);
    void *res = NULL;
    int rc = asyncio_await(inner, &res);
    LOG("main-await:%s", tu_err(rc));
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_done(inner), 1);
    CHECK_INT(asyncio_future_cancelled(inner), 0);
    res = NULL;
    CHECK_INT(asyncio_future_result(inner, &res), 7);
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_cancelled(f), 1);
    /* Delivered: the main task goes on normally. */
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_cancelled_awaiter_gets_the_inner_outcome(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_awaiter_cancelled_while_awaiting, NULL, NULL), 0);
    assert_log("inner-start timer-cancels inner-done:ECANCELED main-await:7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_task_waiting_in_sleep),
        cmocka_unit_test(test_cancel_task_waiting_on_future_cancels_the_future),
        cmocka_unit_test(test_cancel_before_task_first_runs_means_it_never_runs),
        cmocka_unit_test(test_cancel_after_task_finished_returns_0),
        cmocka_unit_test(test_task_catching_cancellation_goes_on_and_returns_a_result),
        cmocka_unit_test(test_cancel_requested_while_running_is_delivered_at_next_wait),
        cmocka_unit_test(test_cancel_after_wait_was_satisfied_is_reported_by_that_wait),
        cmocka_unit_test(test_undelivered_cancel_makes_task_returning_0_finish_cancelled),
        cmocka_unit_test(test_cancel_reported_by_satisfied_wait_counts_as_delivered),
        cmocka_unit_test(test_cancel_task_awaiting_another_task_cancels_inner_and_waits_for_it),
        cmocka_unit_test(test_cancel_requested_twice_is_delivered_once),
        cmocka_unit_test(test_waiting_call_with_cancellation_pending_returns_at_once),
        cmocka_unit_test(test_awaiting_done_future_does_not_consume_pending_cancel),
        cmocka_unit_test(test_cancelled_task_can_wait_while_cleaning_up),
        cmocka_unit_test(test_cancel_task_from_a_loop_callback),
        cmocka_unit_test(test_cancelled_awaiter_gets_the_inner_outcome),
    };
    return tu_run_group_tests_name("cancel", tests, NULL, NULL);
}
