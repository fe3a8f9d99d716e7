/*
 * asyncio_wait_for() (CPython: test_waitfor.py).
 */
#include "testutil.h"

static int g_val;

struct quick {
    int yields;
    int rc;
};

static int quick_task(void *arg, void **result)
{
    struct quick *q = arg;
    tu_yield(q->yields);
    *result = &g_val;
    return q->rc;
}

static int main_in_time(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct quick q = {1, 7};
    asyncio_task_t *t = tu_spawn(quick_task, &q, NULL);
    void *res = NULL;
    CHECK_INT(asyncio_wait_for(t, 10.0, &res), 7);
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_cancelled(t), 0);

    /* Done well before a (finite) timeout: the timeout must not fire later,
     * neither at the awaited future nor at the caller. */
    struct quick q2 = {0, 0};
    asyncio_task_t *t2 = tu_spawn(quick_task, &q2, NULL);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_call_soon(tu_cb_set_future, f, NULL), 0);
    CHECK_INT(asyncio_wait_for(t2, 0.1, NULL), 0);
    CHECK_INT(asyncio_wait_for(f, 0.1, NULL), 0);
    CHECK_INT(asyncio_sleep(0.15), 0);
    CHECK_INT(asyncio_future_cancelled(t2), 0);
    CHECK_INT(asyncio_future_result(t2, NULL), 0);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    return 0;
}

static void test_wait_for_returns_result_when_done_in_time(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_in_time, NULL, NULL), 0);
}

static int slow_inner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("inner-start");
    int rc = asyncio_sleep(INFINITY);
    LOG("inner:%s", tu_err(rc));
    CHECK_INT(asyncio_sleep(0.01), 0);
    LOG("inner-cleaned");
    return rc;
}

static double g_elapsed;

static int main_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(slow_inner, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0); /* t now sleeps */
    double t0 = asyncio_loop_time();
    int rc = asyncio_wait_for(t, 0.02, NULL);
    g_elapsed = asyncio_loop_time() - t0;
    LOG("wait_for:%s", tu_err(rc));
    /* The inner task was cancelled and had finished. */
    CHECK_INT(asyncio_future_done(t), 1);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    /* The timeout is not a cancellation of the caller. */
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_sleep(0.001), 0);
    return 0;
}

static void test_wait_for_timeout_cancels_inner_task_and_waits_for_it(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_timeout, NULL, NULL), 0);
    assert_log("inner-start inner:ECANCELED inner-cleaned wait_for:ETIMEDOUT");
    assert_true(g_elapsed >= 0.02 - 1e-6);
}

static int swallowing_inner(void *arg, void **result)
{
    (void)arg;
    int rc = asyncio_sleep(INFINITY);
    LOG("inner:%s", tu_err(rc));
    *result = &g_val;
    return 5;
}

/* The timeout cancels the inner task, which returns anyway: wait_for
 * returns its outcome, as CPython's does (3.11 prints "swallowed" for
 * the same scenario). */
static int main_timeout_swallowed(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(swallowing_inner, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0); /* t now sleeps */
    void *res = NULL;
    LOG("wait_for:%s", tu_err(asyncio_wait_for(t, 0.01, &res)));
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_done(t), 1);
    CHECK_INT(asyncio_future_result(t, NULL), 5);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_wait_for_timeout_when_inner_swallows_the_cancel_returns_its_outcome(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_timeout_swallowed, NULL, NULL), 0);
    assert_log("inner:ECANCELED wait_for:5");
}

/* f gets its result in the iteration in which wait_for's timeout fires,
 * after it (the loop was held up past both): the caller's step comes
 * after both callbacks (a timer wakes its task one step later, as in
 * asyncio), so f is done when wait_for resumes, and wait_for returns its
 * result, as CPython 3.11's does (it prints 42 for the same scenario). */
static void set_result_cb(void *arg)
{
    CHECK_INT(asyncio_future_set_result((asyncio_future_t *)arg, &g_val), 0);
}

static void hold_up_cb(void *arg)
{
    double until = asyncio_loop_time() + *(double *)arg;
    while (asyncio_loop_time() < until) {
    }
}

static int main_result_with_the_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    static double hold = 0.03;
    CHECK_INT(asyncio_call_later(0.011, set_result_cb, f, NULL), 0);
    CHECK_INT(asyncio_call_soon(hold_up_cb, &hold, NULL), 0);
    void *res = NULL;
    CHECK_INT(asyncio_wait_for(f, 0.01, &res), 0);
    CHECK_PTR(res, &g_val);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    return 0;
}

static void test_wait_for_result_in_the_timeouts_iteration_is_returned(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_result_with_the_timeout, NULL, NULL), 0);
}

static int main_zero_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *res = NULL;
    asyncio_future_t *done = tu_future();
    CHECK_INT(asyncio_future_set_result(done, &g_val), 0);
    CHECK_INT(asyncio_wait_for(done, 0, &res), 0);
    CHECK_PTR(res, &g_val);

    struct quick q = {0, 3};
    asyncio_task_t *finished = tu_spawn(quick_task, &q, NULL);
    CHECK_INT(asyncio_await(finished, NULL), 3);
    res = NULL;
    CHECK_INT(asyncio_wait_for(finished, 0, &res), 3);
    CHECK_PTR(res, &g_val);

    asyncio_future_t *failed = tu_future();
    CHECK_INT(asyncio_future_set_error(failed, -EIO), 0);
    CHECK_INT(asyncio_wait_for(failed, 0, NULL), -EIO);

    asyncio_future_t *pending = tu_future();
    CHECK_INT(asyncio_wait_for(pending, 0, NULL), -ETIMEDOUT);
    CHECK_INT(asyncio_future_cancelled(pending), 1);

    /* A task not started yet: cancelled before it ran, then finished. */
    asyncio_task_t *unstarted = tu_spawn(slow_inner, NULL, NULL);
    CHECK_INT(asyncio_wait_for(unstarted, 0, NULL), -ETIMEDOUT);
    CHECK_INT(asyncio_future_done(unstarted), 1);
    CHECK_INT(asyncio_future_cancelled(unstarted), 1);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_wait_for_zero_timeout_only_succeeds_if_already_done(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_zero_timeout, NULL, NULL), 0);
    assert_log(""); /* slow_inner never ran */
}

static int sleepy_task(void *arg, void **result)
{
    (void)arg;
    CHECK_INT(asyncio_sleep(0.01), 0);
    *result = &g_val;
    return 4;
}

static int main_infinity(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(sleepy_task, NULL, NULL);
    void *res = NULL;
    CHECK_INT(asyncio_wait_for(t, INFINITY, &res), 4);
    CHECK_PTR(res, &g_val);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_call_later(0.005, tu_cb_set_future, f, NULL), 0);
    CHECK_INT(asyncio_wait_for(f, INFINITY, NULL), 0);
    return 0;
}

static void test_wait_for_infinite_timeout_waits_for_completion(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_infinity, NULL, NULL), 0);
}

static int main_plain_future_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    double t0 = asyncio_loop_time();
    CHECK_INT(asyncio_wait_for(f, 0.01, NULL), -ETIMEDOUT);
    g_elapsed = asyncio_loop_time() - t0;
    CHECK_INT(asyncio_future_done(f), 1);
    CHECK_INT(asyncio_future_cancelled(f), 1);
    CHECK_INT(asyncio_future_result(f, NULL), -ECANCELED);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_wait_for_plain_future_ends_cancelled_on_timeout(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_plain_future_timeout, NULL, NULL), 0);
    assert_true(g_elapsed >= 0.01 - 1e-6);
}

static void cb_fail(void *arg) { CHECK_INT(asyncio_future_set_error((asyncio_future_t *)arg, -ENOENT), 0); }

static int main_failure_passes_through(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct quick q = {2, -EIO};
    asyncio_task_t *t = tu_spawn(quick_task, &q, NULL);
    CHECK_INT(asyncio_wait_for(t, 10.0, NULL), -EIO);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_call_soon(cb_fail, f, NULL), 0);
    CHECK_INT(asyncio_wait_for(f, 10.0, NULL), -ENOENT);
    return 0;
}

static void test_wait_for_passes_failure_through(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_failure_passes_through, NULL, NULL), 0);
}

static void cb_cancel(void *arg) { CHECK_INT(asyncio_task_cancel((asyncio_task_t *)arg), 1); }

static int main_inner_cancelled_elsewhere(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(slow_inner, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0); /* t now sleeps */
    CHECK_INT(asyncio_call_soon(cb_cancel, t, NULL), 0);
    CHECK_INT(asyncio_wait_for(t, 10.0, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    /* Only the inner task was cancelled, not the caller. */
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("main");
    return 0;
}

static void test_wait_for_inner_cancelled_by_someone_else(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_inner_cancelled_elsewhere, NULL, NULL), 0);
    assert_log("inner-start inner:ECANCELED inner-cleaned main");
}

struct waiter_args {
    asyncio_future_t *target;
};

static int waiting_for(void *arg, void **result)
{
    struct waiter_args *w = arg;
    (void)result;
    int rc = asyncio_wait_for(w->target, 10.0, NULL);
    LOG("waiter:%s", tu_err(rc));
    CHECK_INT(asyncio_future_done(w->target), 1);
    CHECK_INT(asyncio_future_cancelled(w->target), 1);
    return rc;
}

static int main_caller_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct waiter_args w1 = {tu_spawn(slow_inner, NULL, NULL)};
    asyncio_task_t *waiter1 = tu_spawn(waiting_for, &w1, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(waiter1), 1);
    CHECK_INT(asyncio_await(waiter1, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(waiter1), 1);

    struct waiter_args w2 = {tu_future()};
    asyncio_task_t *waiter2 = tu_spawn(waiting_for, &w2, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(waiter2), 1);
    CHECK_INT(asyncio_await(waiter2, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(w2.target), 1);
    return 0;
}

static void test_wait_for_caller_cancelled_cancels_inner_and_waits(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_caller_cancelled, NULL, NULL), 0);
    assert_log("inner-start inner:ECANCELED inner-cleaned waiter:ECANCELED waiter:ECANCELED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_for_returns_result_when_done_in_time),
        cmocka_unit_test(test_wait_for_timeout_cancels_inner_task_and_waits_for_it),
        cmocka_unit_test(test_wait_for_timeout_when_inner_swallows_the_cancel_returns_its_outcome),
        cmocka_unit_test(test_wait_for_result_in_the_timeouts_iteration_is_returned),
        cmocka_unit_test(test_wait_for_zero_timeout_only_succeeds_if_already_done),
        cmocka_unit_test(test_wait_for_infinite_timeout_waits_for_completion),
        cmocka_unit_test(test_wait_for_plain_future_ends_cancelled_on_timeout),
        cmocka_unit_test(test_wait_for_passes_failure_through),
        cmocka_unit_test(test_wait_for_inner_cancelled_by_someone_else),
        cmocka_unit_test(test_wait_for_caller_cancelled_cancels_inner_and_waits),
    };
    return tu_run_group_tests_name("wait_for", tests, NULL, NULL);
}
