/*
 * Misuse: calls outside a task or loop, bad arguments, deadlocks, nesting.
 * Every error the headers promise, checked one by one.
 */
#include "testutil.h"

#include <unistd.h>

static int g_ran;

static void cb_nop(void *arg) { (void)arg; }

static void done_cb_nop(asyncio_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
}

static int fn_nop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_ran = 1;
    return 0;
}

/* ---- outside any loop ------------------------------------------------- */

static void check_outside_loop(int rfd, int wfd)
{
    asyncio_future_t *f = NULL;
    asyncio_task_t *t = NULL;
    asyncio_handle_t h;
    memset(&h, 0, sizeof h);

    /* Waiting calls. */
    assert_int_equal(asyncio_sleep(0), -EPERM);
    assert_int_equal(asyncio_sleep(0.01), -EPERM);
    assert_int_equal(asyncio_sleep(INFINITY), -EPERM);
    assert_int_equal(asyncio_wait_readable(rfd), -EPERM);
    assert_int_equal(asyncio_wait_writable(wfd), -EPERM);
    assert_int_equal(asyncio_gather(0, NULL, NULL, NULL, 0), -EPERM);

    /* Calls that need a loop. */
    assert_int_equal(asyncio_call_soon(cb_nop, NULL, &h), -EPERM);
    assert_int_equal(asyncio_call_later(0.01, cb_nop, NULL, &h), -EPERM);
    assert_int_equal(asyncio_call_at(asyncio_loop_time() + 0.01, cb_nop, NULL, &h), -EPERM);
    assert_int_equal(asyncio_future_new(&f), -EPERM);
    assert_null(f);
    assert_int_equal(asyncio_create_task(&t, fn_nop, NULL, NULL), -EPERM);
    assert_int_equal(asyncio_create_task(NULL, fn_nop, NULL, "x"), -EPERM);
    assert_int_equal(asyncio_create_task_ex(&t, fn_nop, NULL, NULL), -EPERM);
    assert_null(t);
    assert_int_equal(asyncio_forget_fd(rfd), -EPERM);

    /* Queries. */
    assert_null(asyncio_current_task());
    assert_null(asyncio_loop_backend());
    assert_int_equal((int)asyncio_task_count(), 0);
    assert_true(asyncio_loop_time() > 0);
}

static int main_trivial(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_calls_outside_a_loop_return_eperm(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    g_ran = 0;
    check_outside_loop(fds[0], fds[1]);
    assert_int_equal(tu_run(main_trivial, NULL, NULL), 0);
    /* And again once a loop has come and gone. */
    check_outside_loop(fds[0], fds[1]);
    assert_int_equal(g_ran, 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---- waiting calls from a loop callback (a loop, but no task) --------- */

struct cb_ctx {
    asyncio_future_t *pending;
    asyncio_task_t *task;
    asyncio_future_t *done;
    int rfd, wfd;
};

static void cb_waiting_calls(void *arg)
{
    struct cb_ctx *c = arg;
    asyncio_future_t *futs[2] = {c->pending, c->task};
    CHECK_PTR(asyncio_current_task(), NULL);
    CHECK_INT(asyncio_sleep(0), -EPERM);
    CHECK_INT(asyncio_sleep(1.0), -EPERM);
    CHECK_INT(asyncio_await(c->pending, NULL), -EPERM);
    CHECK_INT(asyncio_await(c->task, NULL), -EPERM);
    CHECK_INT(asyncio_gather(2, futs, NULL, NULL, 0), -EPERM);
    CHECK_INT(asyncio_gather(0, NULL, NULL, NULL, 0), -EPERM);
    CHECK_INT(asyncio_wait_for(c->pending, 1.0, NULL), -EPERM);
    CHECK_INT(asyncio_wait_for(c->task, INFINITY, NULL), -EPERM);
    CHECK_INT(asyncio_wait_readable(c->rfd), -EPERM);
    CHECK_INT(asyncio_wait_writable(c->wfd), -EPERM);
    /* Nothing was disturbed. */
    CHECK_INT(asyncio_future_done(c->pending), 0);
    CHECK_INT(asyncio_future_cancelled(c->task), 0);
    /* Non-waiting calls are fine from a callback. */
    CHECK_INT(asyncio_call_soon(cb_nop, NULL, NULL), 0);
    CHECK_INT(asyncio_future_set_result(c->done, NULL), 0);
}

static int waits_on(void *arg, void **result)
{
    return asyncio_await((asyncio_future_t *)arg, result);
}

static int main_callback_misuse(void *arg, void **result)
{
    int *fds = arg;
    (void)result;
    struct cb_ctx c;
    c.pending = tu_future();
    c.done = tu_future();
    c.task = tu_spawn(waits_on, c.pending, NULL);
    c.rfd = fds[0];
    c.wfd = fds[1];
    CHECK_INT(asyncio_call_soon(cb_waiting_calls, &c, NULL), 0);
    CHECK_INT(asyncio_await(c.done, NULL), 0);
    CHECK_INT(asyncio_future_set_result(c.pending, NULL), 0);
    CHECK_INT(asyncio_await(c.task, NULL), 0);
    return 0;
}

static void test_waiting_calls_from_a_callback_return_eperm(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(tu_run(main_callback_misuse, fds, NULL), 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---- deadlock --------------------------------------------------------- */

static int main_await_self(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *self = asyncio_current_task();
    asyncio_future_t *f = tu_future();
    asyncio_task_t *other = tu_spawn(waits_on, f, NULL);
    asyncio_future_t *only_self[1] = {self};
    asyncio_future_t *with_self[3] = {f, other, self};
    CHECK_INT(asyncio_await(self, NULL), -EDEADLK);
    CHECK_INT(asyncio_gather(1, only_self, NULL, NULL, 0), -EDEADLK);
    CHECK_INT(asyncio_gather(3, with_self, NULL, NULL, 0), -EDEADLK);
    CHECK_INT(asyncio_gather(3, with_self, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS), -EDEADLK);
    CHECK_INT(asyncio_wait_for(self, 1.0, NULL), -EDEADLK);
    CHECK_INT(asyncio_wait_for(self, INFINITY, NULL), -EDEADLK);
    /* Nothing else was touched, and the task goes on normally. */
    CHECK_INT(asyncio_future_done(f), 0);
    CHECK_INT(asyncio_future_done(other), 0);
    CHECK_INT(asyncio_future_done(self), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_future_set_result(f, NULL), 0);
    CHECK_INT(asyncio_await(other, NULL), 0);
    return 5;
}

static void test_task_awaiting_itself_is_edeadlk(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_await_self, NULL, NULL), 5);
}

/* ---- NULL arguments and bad values ------------------------------------ */

static int main_null_arguments(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t zero;
    memset(&zero, 0, sizeof zero);
    asyncio_future_t *f = tu_future();
    asyncio_task_t *t = NULL;
    void *res = NULL;

    /* loop.h */
    CHECK_INT(asyncio_call_soon(NULL, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_call_later(0.0, NULL, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_call_at(asyncio_loop_time(), NULL, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_handle_cancel(NULL), -EINVAL);
    CHECK_INT(asyncio_handle_pending(NULL), -EINVAL);
    CHECK_INT(asyncio_handle_cancel(&zero), -EINVAL);
    CHECK_INT(asyncio_handle_pending(&zero), -EINVAL);

    /* future.h */
    CHECK_INT(asyncio_future_new(NULL), -EINVAL);
    CHECK_INT(asyncio_future_set_result(NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_future_set_error(NULL, -EIO), -EINVAL);
    CHECK_INT(asyncio_future_set_error(f, 0), -EINVAL);
    CHECK_INT(asyncio_future_set_error(f, EIO), -EINVAL);
    CHECK_INT(asyncio_future_cancel(NULL), -EINVAL);
    CHECK_INT(asyncio_future_done(NULL), -EINVAL);
    CHECK_INT(asyncio_future_cancelled(NULL), -EINVAL);
    CHECK_INT(asyncio_future_result(NULL, &res), -EINVAL);
    CHECK_INT(asyncio_future_result(NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_future_add_done_callback(NULL, done_cb_nop, NULL), -EINVAL);
    CHECK_INT(asyncio_future_add_done_callback(f, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_future_remove_done_callback(NULL, done_cb_nop, NULL), -EINVAL);
    CHECK_INT(asyncio_future_remove_done_callback(f, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_await(NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_await(NULL, &res), -EINVAL);
    CHECK_PTR(asyncio_future_retain(NULL), NULL);
    asyncio_future_release(NULL);

    /* task.h, gather.h, and wait_for (timeout.h) */
    CHECK_INT(asyncio_create_task(&t, NULL, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_create_task(NULL, NULL, NULL, "x"), -EINVAL);
    CHECK_INT(asyncio_create_task_ex(&t, NULL, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_task_cancel(NULL), -EINVAL);
    CHECK_INT(asyncio_task_cancel(f), -EINVAL); /* not a task */
    CHECK_PTR(asyncio_task_name(NULL), NULL);
    asyncio_task_release(NULL);
    CHECK_INT(asyncio_gather(2, NULL, NULL, NULL, 0), -EINVAL);
    asyncio_future_t *with_null[2] = {f, NULL};
    CHECK_INT(asyncio_gather(2, with_null, NULL, NULL, 0), -EINVAL);
    asyncio_future_t *just_f[1] = {f};
    CHECK_INT(asyncio_gather(1, just_f, NULL, NULL, 0x2u), -EINVAL);
    CHECK_INT(asyncio_gather(1, just_f, NULL, NULL, 0x80000000u), -EINVAL);
    CHECK_INT(asyncio_wait_for(NULL, 1.0, NULL), -EINVAL);
    CHECK_INT(asyncio_wait_for(NULL, INFINITY, &res), -EINVAL);

    /* None of that touched f, created a task, or cancelled the caller. */
    CHECK_INT(asyncio_future_done(f), 0);
    CHECK_INT((long long)asyncio_task_count(), 1);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(g_ran, 0);
    CHECK_INT(asyncio_future_set_result(f, NULL), 0);
    return 0;
}

static void test_null_arguments_return_einval(void **state)
{
    (void)state;
    g_ran = 0;
    assert_int_equal(tu_run(main_null_arguments, NULL, NULL), 0);
    assert_int_equal(asyncio_run(NULL, NULL, NULL), -EINVAL);
    assert_int_equal(asyncio_run_ex(NULL, NULL, NULL, NULL), -EINVAL);
    assert_null(asyncio_loop_backend());
}

/* Order of what ran, for the negative-delay tests. */
static char g_trace[16];
static size_t g_trace_len;

static void cb_trace(void *arg)
{
    if (g_trace_len + 1 < sizeof g_trace)
        g_trace[g_trace_len++] = *(const char *)arg;
}

static int fn_trace(void *arg, void **result)
{
    (void)result;
    cb_trace(arg);
    return 0;
}

static int main_bad_durations(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t h;
    memset(&h, 0, sizeof h);
    asyncio_future_t *f = tu_future();

    /* NaN is refused everywhere: no time can be made of it. */
    CHECK_INT(asyncio_sleep(NAN), -EINVAL);
    CHECK_INT(asyncio_call_later(NAN, cb_nop, NULL, &h), -EINVAL);
    CHECK_INT(asyncio_call_at(NAN, cb_nop, NULL, &h), -EINVAL);
    CHECK_INT(asyncio_wait_for(f, NAN, NULL), -EINVAL);
    CHECK_INT(asyncio_wait(1, &f, NAN, ASYNCIO_ALL_COMPLETED, NULL, NULL), -EINVAL);
    asyncio_as_completed_t it;
    CHECK_INT(asyncio_as_completed_init(&it, 1, &f, NAN), -EINVAL);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, NAN), -EINVAL);

    /* The bad calls did not cancel f; nothing was scheduled. */
    CHECK_INT(asyncio_future_done(f), 0);
    CHECK_INT((long long)asyncio_task_count(), 1);
    return 0;
}

static void test_nan_durations_return_einval(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_bad_durations, NULL, NULL), 0);
}

/* A negative delay is 0, as in asyncio, where sleep(-1) yields,
 * call_later(-1) is due at once and a timeout of -1 has expired: C code
 * computing deadline - now past the deadline must not get an error. */
static int main_negative_durations(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const double negative[] = {-1e-9, -1.0, -INFINITY};
    for (size_t i = 0; i < sizeof negative / sizeof negative[0]; i++) {
        double d = negative[i];
        g_trace_len = 0;
        memset(g_trace, 0, sizeof g_trace);

        /* sleep(d) yields: a task made before it runs first, then the
         * caller goes on (asyncio.sleep(-1) is sleep(0)). */
        CHECK_INT(asyncio_create_task(NULL, fn_trace, "t", NULL), 0);
        CHECK_INT(asyncio_sleep(d), 0);
        cb_trace("s");

        /* call_later(d, a) then call_soon(b): b first, as asyncio moves
         * due timers behind what is ready already. */
        asyncio_handle_t h;
        CHECK_INT(asyncio_call_later(d, cb_trace, "a", &h), 0);
        CHECK_INT(asyncio_call_soon(cb_trace, "b", NULL), 0);
        CHECK_INT(asyncio_sleep(0.001), 0);
        CHECK_STR(g_trace, "tsba");

        /* wait_for(f, d): f not done times out and is cancelled; a done
         * f gives its result. */
        asyncio_future_t *f = tu_future();
        CHECK_INT(asyncio_wait_for(f, d, NULL), -ETIMEDOUT);
        CHECK_INT(asyncio_future_cancelled(f), 1);
        asyncio_future_t *g = tu_future();
        CHECK_INT(asyncio_future_set_result(g, (void *)&g_trace), 0);
        void *res = NULL;
        CHECK_INT(asyncio_wait_for(g, d, &res), 0);
        CHECK_PTR(res, (void *)&g_trace);

        /* wait(d) only looks; as_completed(d) has expired. */
        asyncio_future_t *both[2] = {g, tu_future()};
        asyncio_future_t *done[2] = {NULL, NULL}, *pending[2] = {NULL, NULL};
        CHECK_INT(asyncio_wait(2, both, d, ASYNCIO_ALL_COMPLETED, done, pending), 1);
        CHECK_PTR(done[0], g);
        CHECK_PTR(pending[0], both[1]);
        asyncio_as_completed_t it;
        CHECK_INT(asyncio_as_completed_init(&it, 1, &both[1], d), 0);
        asyncio_future_t *next = NULL;
        CHECK_INT(asyncio_as_completed_next(&it, &next), -ETIMEDOUT);
        asyncio_as_completed_destroy(&it);
        CHECK_INT(asyncio_future_done(both[1]), 0);

        /* A scope entered with d has expired: the next wait ends it. */
        asyncio_timeout_t scope;
        CHECK_INT(asyncio_timeout_enter(&scope, d), 0);
        CHECK_INT(asyncio_sleep(10), -ETIMEDOUT);
        CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    }
    return 0;
}

static void test_negative_durations_are_zero(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_negative_durations, NULL, NULL), 0);
}

/* ---- stack sizes ------------------------------------------------------ */

static int main_bad_task_stacks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const size_t bad[] = {1, ASYNCIO_STACK_MIN - 1, ASYNCIO_STACK_MAX + 1, SIZE_MAX};
    asyncio_task_options_t opts;
    memset(&opts, 0, sizeof opts);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        asyncio_task_t *t = NULL;
        opts.stack_size = bad[i];
        CHECK_INT(asyncio_create_task_ex(&t, fn_nop, NULL, &opts), -EINVAL);
        CHECK_INT(asyncio_create_task_ex(NULL, fn_nop, NULL, &opts), -EINVAL);
        CHECK_PTR(t, NULL);
    }
    CHECK_INT((long long)asyncio_task_count(), 1);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(g_ran, 0);
    return 0;
}

static void test_bad_stack_sizes_return_einval(void **state)
{
    (void)state;
    static const size_t bad[] = {1, ASYNCIO_STACK_MIN - 1, ASYNCIO_STACK_MAX + 1, SIZE_MAX};
    asyncio_run_options_t opts;
    memset(&opts, 0, sizeof opts);
    g_ran = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        opts.stack_size = bad[i];
        assert_int_equal(asyncio_run_ex(fn_nop, NULL, NULL, &opts), -EINVAL);
        assert_int_equal(g_ran, 0);
        assert_null(asyncio_loop_backend());
    }
    assert_int_equal(tu_run(main_bad_task_stacks, NULL, NULL), 0);
    assert_int_equal(g_ran, 0);
}

/* ---- nesting ---------------------------------------------------------- */

static void cb_nested_run(void *arg)
{
    CHECK_INT(asyncio_run(fn_nop, NULL, NULL), -EBUSY);
    tu_cb_set_future(arg);
}

static int main_nested_run(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_run_options_t opts;
    memset(&opts, 0, sizeof opts);
    const char *backend = asyncio_loop_backend();
    CHECK_INT(asyncio_run(fn_nop, NULL, NULL), -EBUSY);
    CHECK_INT(asyncio_run_ex(fn_nop, NULL, NULL, NULL), -EBUSY);
    opts.backend = "poll";
    CHECK_INT(asyncio_run_ex(fn_nop, NULL, NULL, &opts), -EBUSY);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_call_soon(cb_nested_run, f, NULL), 0);
    CHECK_INT(asyncio_await(f, NULL), 0);
    /* The running loop is intact. */
    CHECK_PTR(asyncio_loop_backend(), backend);
    CHECK_INT(asyncio_sleep(0.001), 0);
    CHECK_INT(g_ran, 0);
    return 9;
}

static void test_nested_asyncio_run_returns_ebusy(void **state)
{
    (void)state;
    g_ran = 0;
    assert_int_equal(tu_run(main_nested_run, NULL, NULL), 9);
    assert_int_equal(g_ran, 0);
}

/* ---- backends --------------------------------------------------------- */

static void test_unknown_backend_returns_enoent(void **state)
{
    (void)state;
    asyncio_run_options_t opts;
    memset(&opts, 0, sizeof opts);
    g_ran = 0;
    opts.backend = "no-such-backend";
    assert_int_equal(asyncio_run_ex(fn_nop, NULL, NULL, &opts), -ENOENT);
    assert_int_equal(g_ran, 0);
    assert_null(asyncio_loop_backend());

    /* Through the environment too; an explicit backend wins over it. */
    const char *old = getenv("ASYNCIO_BACKEND");
    char *saved = old ? strdup(old) : NULL;
    assert_int_equal(setenv("ASYNCIO_BACKEND", "no-such-backend", 1), 0);
    int rc_env = asyncio_run(fn_nop, NULL, NULL);
    int ran_env = g_ran;
    opts.backend = "poll";
    int rc_explicit = asyncio_run_ex(fn_nop, NULL, NULL, &opts);
    if (saved) {
        setenv("ASYNCIO_BACKEND", saved, 1);
        free(saved);
    } else {
        unsetenv("ASYNCIO_BACKEND");
    }
    assert_int_equal(rc_env, -ENOENT);
    assert_int_equal(ran_env, 0);
    assert_int_equal(rc_explicit, 0);
    assert_int_equal(g_ran, 1);
    assert_null(asyncio_loop_backend());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_outside_a_loop_return_eperm),
        cmocka_unit_test(test_waiting_calls_from_a_callback_return_eperm),
        cmocka_unit_test(test_task_awaiting_itself_is_edeadlk),
        cmocka_unit_test(test_null_arguments_return_einval),
        cmocka_unit_test(test_nan_durations_return_einval),
        cmocka_unit_test(test_negative_durations_are_zero),
        cmocka_unit_test(test_bad_stack_sizes_return_einval),
        cmocka_unit_test(test_nested_asyncio_run_returns_ebusy),
        cmocka_unit_test(test_unknown_backend_returns_enoent),
    };
    return tu_run_group_tests_name("misuse", tests, NULL, NULL);
}
