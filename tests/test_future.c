/*
 * Futures (CPython: test_futures.py).
 */
#include "testutil.h"

static int g_val1, g_val2;

struct waiter {
    asyncio_future_t *f;
    int id;
};

static int waiter_task(void *arg, void **result)
{
    struct waiter *w = arg;
    void *res = NULL;
    LOG("w%d-wait", w->id);
    int rc = asyncio_await(w->f, &res);
    LOG("w%d-got:%s:%s", w->id, tu_err(rc), res == &g_val1 ? "val1" : "other");
    *result = res;
    return rc;
}

static int main_set_result_wakes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    struct waiter w[3] = {{f, 0}, {f, 1}, {f, 2}};
    asyncio_task_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = tu_spawn(waiter_task, &w[i], NULL);
    CHECK_INT(asyncio_sleep(0), 0); /* all three now wait */
    CHECK_INT(asyncio_future_done(f), 0);
    LOG("set");
    CHECK_INT(asyncio_future_set_result(f, &g_val1), 0);
    CHECK_INT(asyncio_future_done(f), 1);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    for (int i = 0; i < 3; i++) {
        void *res = NULL;
        CHECK_INT(asyncio_await(t[i], &res), 0);
        CHECK_PTR(res, &g_val1);
        asyncio_task_release(t[i]);
    }
    asyncio_future_release(f);
    return 0;
}

static void test_set_result_wakes_all_awaiting_tasks(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_set_result_wakes, NULL, NULL), 0);
    assert_log("w0-wait w1-wait w2-wait set w0-got:0:val1 w1-got:0:val1 w2-got:0:val1");
}

/* ---- done callbacks --------------------------------------------------- */

static asyncio_future_t *g_fut;
static asyncio_future_t *g_done;
static int g_cb_ran;

static void done_cb_log(asyncio_future_t *f, void *arg)
{
    void *res = NULL;
    int rc = asyncio_future_result(f, &res);
    CHECK_PTR(f, g_fut);
    CHECK_INT(asyncio_future_done(f), 1);
    g_cb_ran++;
    LOG("%s:%s", (const char *)arg, tu_err(rc));
}

static void done_cb_finish(asyncio_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    tu_cb_set_future(g_done);
}

static int main_done_callbacks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_cb_ran = 0;
    g_fut = tu_future();
    g_done = tu_future();
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_log, "cb1"), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_log, "cb2"), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_log, "cb3"), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_finish, NULL), 0);
    CHECK_INT(asyncio_future_set_result(g_fut, &g_val1), 0);
    /* Never inline. */
    CHECK_INT(g_cb_ran, 0);
    LOG("set");
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    CHECK_INT(g_cb_ran, 3);
    return 0;
}

static void test_done_callbacks_run_in_registration_order_never_inline(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_done_callbacks, NULL, NULL), 0);
    assert_log("set cb1:0 cb2:0 cb3:0");
}

static int main_callback_on_done_future(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_cb_ran = 0;
    g_fut = tu_future();
    g_done = tu_future();
    CHECK_INT(asyncio_future_set_error(g_fut, -EIO), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_log, "late"), 0);
    CHECK_INT(g_cb_ran, 0); /* scheduled, not called */
    LOG("added");
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_finish, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_callback_added_to_done_future_runs_through_the_loop(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_callback_on_done_future, NULL, NULL), 0);
    assert_log("added late:EIO");
}

static int main_callbacks_on_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_cb_ran = 0;
    g_fut = tu_future();
    g_done = tu_future();
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_log, "cb"), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_finish, NULL), 0);
    CHECK_INT(asyncio_future_cancel(g_fut), 1);
    CHECK_INT(g_cb_ran, 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_done_callbacks_run_when_future_is_cancelled(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_callbacks_on_cancel, NULL, NULL), 0);
    assert_log("cb:ECANCELED");
}

static int main_release_before_callbacks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_cb_ran = 0;
    g_fut = tu_future();
    g_done = tu_future();
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_log, "cb"), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_finish, NULL), 0);
    CHECK_INT(asyncio_future_set_result(g_fut, &g_val2), 0);
    /* The callbacks keep their own reference: f stays valid for them. */
    asyncio_future_release(g_fut);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    asyncio_future_release(g_done);
    return 0;
}

static void test_callbacks_keep_the_future_alive_after_release(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_release_before_callbacks, NULL, NULL), 0);
    assert_log("cb:0");
}

static void done_cb_named(asyncio_future_t *f, void *arg)
{
    (void)f;
    LOG("%s", (const char *)arg);
}

static void done_cb_other(asyncio_future_t *f, void *arg)
{
    (void)f;
    LOG("other-%s", (const char *)arg);
}

static int main_remove_done_callback(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const char *a = "a", *b = "b";
    g_fut = tu_future();
    g_done = tu_future();
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_named, (void *)a), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_named, (void *)b), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_other, (void *)a), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_named, (void *)a), 0);
    CHECK_INT(asyncio_future_remove_done_callback(g_fut, done_cb_named, (void *)a), 2);
    CHECK_INT(asyncio_future_remove_done_callback(g_fut, done_cb_named, (void *)a), 0);
    CHECK_INT(asyncio_future_remove_done_callback(g_fut, done_cb_finish, NULL), 0);
    CHECK_INT(asyncio_future_add_done_callback(g_fut, done_cb_finish, NULL), 0);
    CHECK_INT(asyncio_future_set_result(g_fut, NULL), 0);
    /* Already scheduled: no longer removable. */
    CHECK_INT(asyncio_future_remove_done_callback(g_fut, done_cb_named, (void *)b), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_remove_done_callback_returns_count_removed(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_remove_done_callback, NULL, NULL), 0);
    assert_log("b other-a");
}

/* ---- states ----------------------------------------------------------- */

static int main_set_twice(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *res = NULL;
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_future_result(f, &res), -EAGAIN);
    CHECK_INT(asyncio_future_result(f, NULL), -EAGAIN);
    CHECK_INT(asyncio_future_done(f), 0);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    CHECK_INT(asyncio_future_set_result(f, &g_val1), 0);
    CHECK_INT(asyncio_future_set_result(f, &g_val2), -EALREADY);
    CHECK_INT(asyncio_future_set_error(f, -EIO), -EALREADY);
    CHECK_INT(asyncio_future_cancel(f), 0);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    CHECK_INT(asyncio_future_result(f, &res), 0);
    CHECK_PTR(res, &g_val1);
    CHECK_INT(asyncio_future_result(f, NULL), 0);
    res = NULL;
    CHECK_INT(asyncio_await(f, &res), 0);
    CHECK_PTR(res, &g_val1);
    CHECK_INT(asyncio_await(f, NULL), 0);
    asyncio_future_release(f);
    return 0;
}

static void test_set_result_twice_returns_ealready(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_set_twice, NULL, NULL), 0);
}

static int err_waiter(void *arg, void **result)
{
    (void)result;
    return asyncio_await((asyncio_future_t *)arg, NULL);
}

static int main_set_error(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t = tu_spawn(err_waiter, f, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_future_set_error(f, -EIO), 0);
    CHECK_INT(asyncio_future_set_error(f, -ENOENT), -EALREADY);
    CHECK_INT(asyncio_future_set_result(f, NULL), -EALREADY);
    CHECK_INT(asyncio_future_done(f), 1);
    CHECK_INT(asyncio_future_cancelled(f), 0);
    CHECK_INT(asyncio_future_result(f, NULL), -EIO);
    CHECK_INT(asyncio_await(f, NULL), -EIO);
    /* The task returned what its await returned. */
    CHECK_INT(asyncio_await(t, NULL), -EIO);
    CHECK_INT(asyncio_future_cancelled(t), 0);

    /* set_error(-ECANCELED) cancels. */
    asyncio_future_t *g = tu_future();
    CHECK_INT(asyncio_future_set_error(g, -ECANCELED), 0);
    CHECK_INT(asyncio_future_cancelled(g), 1);
    CHECK_INT(asyncio_future_result(g, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancel(g), 0);
    return 0;
}

static void test_set_error_fails_the_future_and_its_waiters(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_set_error, NULL, NULL), 0);
}

static int main_cancel_future(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t = tu_spawn(err_waiter, f, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_future_cancel(f), 1);
    CHECK_INT(asyncio_future_done(f), 1);
    CHECK_INT(asyncio_future_cancelled(f), 1);
    CHECK_INT(asyncio_future_result(f, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancel(f), 0);
    CHECK_INT(asyncio_future_set_result(f, NULL), -EALREADY);
    CHECK_INT(asyncio_future_set_error(f, -EIO), -EALREADY);
    /* The waiter's await returned -ECANCELED and it returned that. */
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);

    asyncio_future_t *done = tu_future();
    CHECK_INT(asyncio_future_set_result(done, &g_val1), 0);
    CHECK_INT(asyncio_future_cancel(done), 0);
    CHECK_INT(asyncio_future_cancelled(done), 0);
    void *res = NULL;
    CHECK_INT(asyncio_future_result(done, &res), 0);
    CHECK_PTR(res, &g_val1);
    return 0;
}

static void test_cancel_pending_future_returns_1_done_future_returns_0(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_future, NULL, NULL), 0);
}

static int noop_task(void *arg, void **result)
{
    (void)arg;
    *result = &g_val2;
    return 0;
}

static int main_set_result_on_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(noop_task, NULL, NULL);
    CHECK_INT(asyncio_future_set_result(t, &g_val1), -EINVAL);
    CHECK_INT(asyncio_future_set_error(t, -EIO), -EINVAL);
    void *res = NULL;
    CHECK_INT(asyncio_await(t, &res), 0);
    CHECK_PTR(res, &g_val2);
    CHECK_INT(asyncio_future_set_result(t, &g_val1), -EINVAL);
    asyncio_task_release(t);
    return 0;
}

static void test_set_result_on_a_task_returns_einval(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_set_result_on_task, NULL, NULL), 0);
}

static void cb_log_str(void *arg) { LOG("%s", (const char *)arg); }

static int main_await_done_does_not_suspend(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_future_set_result(f, &g_val1), 0);
    CHECK_INT(asyncio_call_soon(cb_log_str, "callback", NULL), 0);
    void *res = NULL;
    CHECK_INT(asyncio_await(f, &res), 0);
    CHECK_PTR(res, &g_val1);
    LOG("after-await");
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("after-sleep");
    return 0;
}

static void test_await_done_future_does_not_suspend(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_await_done_does_not_suspend, NULL, NULL), 0);
    assert_log("after-await callback after-sleep");
}

static int main_retain_release(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    CHECK_PTR(asyncio_future_retain(f), f);
    asyncio_future_release(f); /* still one reference */
    CHECK_INT(asyncio_future_done(f), 0);
    CHECK_INT(asyncio_future_set_result(f, &g_val1), 0);
    void *res = NULL;
    CHECK_INT(asyncio_await(f, &res), 0);
    CHECK_PTR(res, &g_val1);
    asyncio_future_release(f);
    asyncio_future_release(NULL); /* ignored */
    /* A future released while a task waits on it: the waiter keeps it. */
    asyncio_future_t *g = tu_future();
    asyncio_task_t *t = tu_spawn(err_waiter, g, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_future_set_error(g, -EIO), 0);
    asyncio_future_release(g); /* before the waiter resumed */
    CHECK_INT(asyncio_await(t, NULL), -EIO);
    asyncio_task_release(t);
    return 0;
}

static void test_retain_and_release_keep_the_future_alive(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_retain_release, NULL, NULL), 0);
}

static int main_futures_left_pending(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Never completed nor released: freed when the loop closes. */
    for (int i = 0; i < 100; i++) {
        asyncio_future_t *f = tu_future();
        if (i % 2)
            CHECK_INT(asyncio_future_add_done_callback(f, done_cb_named, "never"), 0);
    }
    return 0;
}

static void test_futures_left_pending_are_freed_with_the_loop(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_futures_left_pending, NULL, NULL), 0);
    assert_log("");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_result_wakes_all_awaiting_tasks),
        cmocka_unit_test(test_done_callbacks_run_in_registration_order_never_inline),
        cmocka_unit_test(test_callback_added_to_done_future_runs_through_the_loop),
        cmocka_unit_test(test_done_callbacks_run_when_future_is_cancelled),
        cmocka_unit_test(test_callbacks_keep_the_future_alive_after_release),
        cmocka_unit_test(test_remove_done_callback_returns_count_removed),
        cmocka_unit_test(test_set_result_twice_returns_ealready),
        cmocka_unit_test(test_set_error_fails_the_future_and_its_waiters),
        cmocka_unit_test(test_cancel_pending_future_returns_1_done_future_returns_0),
        cmocka_unit_test(test_set_result_on_a_task_returns_einval),
        cmocka_unit_test(test_await_done_future_does_not_suspend),
        cmocka_unit_test(test_retain_and_release_keep_the_future_alive),
        cmocka_unit_test(test_futures_left_pending_are_freed_with_the_loop),
    };
    return tu_run_group_tests_name("future", tests, NULL, NULL);
}
