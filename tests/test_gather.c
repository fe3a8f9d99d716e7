/*
 * asyncio_gather() (CPython: test_gather in test_tasks.py).
 */
#include "testutil.h"

#include <stdbool.h>

static int g_vals[1000];
static int g_sentinel;

struct child {
    int id;
    int yields;
    int rc;
    int *flag;
};

static int child_task(void *arg, void **result)
{
    struct child *c = arg;
    tu_yield(c->yields);
    LOG("done%d", c->id);
    if (c->flag)
        *c->flag = 1;
    if (c->rc >= 0)
        *result = &g_vals[c->id];
    return c->rc;
}

static void init_out(size_t n, void *results[], int errors[])
{
    for (size_t i = 0; i < n; i++) {
        results[i] = &g_sentinel;
        errors[i] = 12345;
    }
}

static int main_results_in_order(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct child c[3] = {{0, 3, 0, NULL}, {1, 2, 0, NULL}, {2, 1, 0, NULL}};
    asyncio_future_t *futs[3];
    void *results[3];
    int errors[3];
    init_out(3, results, errors);
    for (int i = 0; i < 3; i++)
        futs[i] = tu_spawn(child_task, &c[i], NULL);
    CHECK_INT(asyncio_gather(3, futs, results, errors, 0), 0);
    LOG("gathered");
    for (int i = 0; i < 3; i++) {
        CHECK_PTR(results[i], &g_vals[i]);
        CHECK_INT(errors[i], 0);
        asyncio_task_release(futs[i]);
    }
    return 0;
}

static void test_gather_results_in_argument_order_not_completion_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_results_in_order, NULL, NULL), 0);
    assert_log("done2 done1 done0 gathered");
}

struct setter {
    asyncio_future_t *f;
    void *value;
};

static void cb_set(void *arg)
{
    struct setter *s = arg;
    CHECK_INT(asyncio_future_set_result(s->f, s->value), 0);
}

static int task_sets_then_returns(void *arg, void **result)
{
    struct setter *s = arg;
    tu_yield(1);
    CHECK_INT(asyncio_future_set_result(s->f, s->value), 0);
    LOG("task3");
    *result = &g_vals[3];
    return 0;
}

static int main_mixed(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct child c1 = {1, 2, 0, NULL};
    asyncio_future_t *f0 = tu_future(), *f2 = tu_future();
    struct setter s0 = {f0, &g_vals[0]};
    struct setter s2 = {f2, &g_vals[2]};
    asyncio_future_t *futs[4];
    futs[0] = f0;
    futs[1] = tu_spawn(child_task, &c1, NULL);
    futs[2] = f2;
    futs[3] = tu_spawn(task_sets_then_returns, &s0, NULL);
    CHECK_INT(asyncio_call_later(0.002, cb_set, &s2, NULL), 0);
    void *results[4];
    int errors[4];
    init_out(4, results, errors);
    CHECK_INT(asyncio_gather(4, futs, results, errors, 0), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_PTR(results[i], &g_vals[i]);
        CHECK_INT(errors[i], 0);
    }
    return 0;
}

static void test_gather_mixes_futures_and_tasks(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_mixed, NULL, NULL), 0);
    assert_log("task3 done1");
}

static int main_first_failure(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int b_flag = 0;
    struct child c_ok = {0, 0, 0, NULL};
    struct child c_fail = {1, 1, -EIO, NULL};
    struct child c_slow = {2, 20, 0, &b_flag};
    asyncio_future_t *f = tu_future();
    asyncio_future_t *futs[4];
    futs[0] = tu_spawn(child_task, &c_ok, NULL);
    futs[1] = tu_spawn(child_task, &c_fail, NULL);
    futs[2] = tu_spawn(child_task, &c_slow, NULL);
    futs[3] = f;
    void *results[4];
    int errors[4];
    init_out(4, results, errors);
    CHECK_INT(asyncio_gather(4, futs, results, errors, 0), -EIO);
    LOG("gather-failed");
    CHECK_PTR(results[0], &g_vals[0]);
    CHECK_INT(errors[0], 0);
    CHECK_INT(errors[1], -EIO);
    CHECK_PTR(results[2], NULL);
    CHECK_INT(errors[2], -EAGAIN);
    CHECK_PTR(results[3], NULL);
    CHECK_INT(errors[3], -EAGAIN);
    /* The others keep running: not cancelled. */
    CHECK_INT(asyncio_future_done(futs[2]), 0);
    CHECK_INT(b_flag, 0);
    CHECK_INT(asyncio_future_done(f), 0);
    CHECK_INT(asyncio_await(futs[2], NULL), 0);
    CHECK_INT(b_flag, 1);
    CHECK_INT(asyncio_future_cancelled(futs[2]), 0);
    CHECK_INT(asyncio_future_set_result(f, NULL), 0);
    /* The caller was not cancelled either. */
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_gather_returns_first_failure_and_others_keep_running(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_first_failure, NULL, NULL), 0);
    assert_log("done0 done1 gather-failed done2");
}

static int sleeps_forever(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(INFINITY);
}

static void cb_cancel(void *arg) { CHECK_INT(asyncio_task_cancel((asyncio_task_t *)arg), 1); }

static void cb_set_error(void *arg) { CHECK_INT(asyncio_future_set_error((asyncio_future_t *)arg, -ENOENT), 0); }

static int main_return_exceptions(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct child c0 = {0, 0, 0, NULL};
    struct child c1 = {1, 1, -EIO, NULL};
    struct child c3 = {3, 4, 0, NULL};
    asyncio_future_t *futs[5];
    futs[0] = tu_spawn(child_task, &c0, NULL);
    futs[1] = tu_spawn(child_task, &c1, NULL);
    futs[2] = tu_spawn(sleeps_forever, NULL, NULL);
    futs[3] = tu_spawn(child_task, &c3, NULL);
    futs[4] = tu_future();
    CHECK_INT(asyncio_call_soon(cb_cancel, futs[2], NULL), 0);
    CHECK_INT(asyncio_call_later(0.002, cb_set_error, futs[4], NULL), 0);
    void *results[5];
    int errors[5];
    init_out(5, results, errors);
    CHECK_INT(asyncio_gather(5, futs, results, errors, ASYNCIO_RETURN_EXCEPTIONS), 3);
    LOG("gathered");
    CHECK_INT(errors[0], 0);
    CHECK_INT(errors[1], -EIO);
    CHECK_INT(errors[2], -ECANCELED);
    CHECK_INT(errors[3], 0);
    CHECK_INT(errors[4], -ENOENT);
    CHECK_PTR(results[0], &g_vals[0]);
    CHECK_PTR(results[3], &g_vals[3]);
    for (int i = 0; i < 5; i++)
        CHECK_INT(asyncio_future_done(futs[i]), 1);
    /* A cancelled child does not cancel the caller. */
    CHECK_INT(asyncio_sleep(0), 0);
    /* results and errors may be NULL. */
    CHECK_INT(asyncio_gather(5, futs, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS), 3);
    return 0;
}

static void test_gather_return_exceptions_collects_errors_in_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_return_exceptions, NULL, NULL), 0);
    assert_log("done0 done1 done3 gathered");
}

static int main_child_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct child c1 = {1, 20, 0, NULL};
    asyncio_future_t *futs[2];
    futs[0] = tu_spawn(sleeps_forever, NULL, NULL);
    futs[1] = tu_spawn(child_task, &c1, NULL);
    CHECK_INT(asyncio_call_soon(cb_cancel, futs[0], NULL), 0);
    int errors[2];
    void *results[2];
    init_out(2, results, errors);
    CHECK_INT(asyncio_gather(2, futs, results, errors, 0), -ECANCELED);
    CHECK_INT(errors[0], -ECANCELED);
    CHECK_INT(errors[1], -EAGAIN);
    LOG("gather-returned");
    CHECK_INT(asyncio_sleep(0), 0); /* the caller is not cancelled */
    CHECK_INT(asyncio_await(futs[1], NULL), 0);
    return 0;
}

static void test_gather_child_cancelled_is_a_failure_not_a_cancel_of_caller(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_child_cancelled, NULL, NULL), 0);
    assert_log("gather-returned done1");
}

/* ---- cancelling the gathering task ------------------------------------ */

struct gather_args {
    asyncio_future_t *futs[4];
    void *results[4];
    int errors[4];
};

static int cancel_then_cleanup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(INFINITY);
    LOG("t1:%s", tu_err(rc));
    CHECK_INT(asyncio_sleep(0.01), 0);
    LOG("t1-cleaned");
    return rc;
}

static int waits_on_future(void *arg, void **result)
{
    return asyncio_await((asyncio_future_t *)arg, result);
}

static int gathering_task(void *arg, void **result)
{
    struct gather_args *g = arg;
    (void)result;
    int rc = asyncio_gather(4, g->futs, g->results, g->errors, 0);
    LOG("gather:%s", tu_err(rc));
    /* Every child had finished when gather returned. */
    for (int i = 0; i < 4; i++)
        CHECK_INT(asyncio_future_done(g->futs[i]), 1);
    return rc;
}

static int main_cancel_gather(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct child c3 = {3, 0, 0, NULL};
    struct gather_args g;
    asyncio_future_t *plain = tu_future();
    asyncio_future_t *awaited = tu_future();
    g.futs[0] = tu_spawn(cancel_then_cleanup, NULL, NULL);
    g.futs[1] = tu_spawn(waits_on_future, awaited, NULL);
    g.futs[2] = plain;
    g.futs[3] = tu_spawn(child_task, &c3, NULL);
    init_out(4, g.results, g.errors);
    asyncio_task_t *gt = tu_spawn(gathering_task, &g, "gatherer");
    tu_yield(2);
    CHECK_INT(asyncio_future_done(g.futs[3]), 1);
    CHECK_INT(asyncio_future_done(gt), 0);
    LOG("cancel");
    CHECK_INT(asyncio_task_cancel(gt), 1);
    CHECK_INT(asyncio_await(gt, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(gt), 1);
    CHECK_INT(asyncio_future_cancelled(g.futs[0]), 1);
    CHECK_INT(asyncio_future_cancelled(g.futs[1]), 1);
    CHECK_INT(asyncio_future_cancelled(plain), 1);
    /* The finished child keeps its result. */
    CHECK_INT(asyncio_future_cancelled(g.futs[3]), 0);
    void *res = NULL;
    CHECK_INT(asyncio_future_result(g.futs[3], &res), 0);
    CHECK_PTR(res, &g_vals[3]);
    /* The cancelled child passed the cancellation on to what it awaited. */
    CHECK_INT(asyncio_future_cancelled(awaited), 1);
    return 0;
}

/* A cancellation already pending when gather is called counts as one that
 * comes while it waits: the unfinished children are cancelled too. */
static int gather_with_cancel_pending(void *arg, void **result)
{
    asyncio_future_t **futs = arg;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    int rc = asyncio_gather(2, futs, NULL, NULL, 0);
    LOG("gather:%s", tu_err(rc));
    CHECK_INT(asyncio_future_cancelled(futs[0]), 1);
    CHECK_INT(asyncio_future_cancelled(futs[1]), 1);
    return rc;
}

static int main_gather_cancel_pending(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *futs[2] = {tu_future(), NULL};
    futs[1] = tu_spawn(waits_on_future, tu_future(), NULL);
    asyncio_task_t *gt = tu_spawn(gather_with_cancel_pending, futs, NULL);
    CHECK_INT(asyncio_await(gt, NULL), -ECANCELED);
    return 0;
}

static void test_gather_with_cancellation_pending_cancels_children(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_gather_cancel_pending, NULL, NULL), 0);
    assert_log("gather:ECANCELED");
}

static void test_cancelling_gather_cancels_unfinished_children_and_waits_for_them(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_gather, NULL, NULL), 0);
    assert_log("done3 cancel t1:ECANCELED t1-cleaned gather:ECANCELED");
}

/* ---- edge cases ------------------------------------------------------- */

static int main_gather_zero(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_gather(0, NULL, NULL, NULL, 0), 0);
    CHECK_INT(asyncio_gather(0, NULL, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS), 0);
    asyncio_future_t *dummy[1] = {NULL};
    void *results[1] = {&g_sentinel};
    int errors[1] = {12345};
    CHECK_INT(asyncio_gather(0, dummy, results, errors, 0), 0);
    CHECK_PTR(results[0], &g_sentinel);
    CHECK_INT(errors[0], 12345);
    return 0;
}

static void test_gather_of_zero_children_returns_0(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_gather_zero, NULL, NULL), 0);
}

static int main_gather_done_and_duplicates(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_future_t *e = tu_future();
    CHECK_INT(asyncio_future_set_result(f, &g_vals[7]), 0);
    CHECK_INT(asyncio_future_set_error(e, -EIO), 0);
    struct child c = {5, 2, 0, NULL};
    asyncio_task_t *t = tu_spawn(child_task, &c, NULL);
    asyncio_future_t *futs[4] = {f, t, f, t};
    void *results[4];
    int errors[4];
    init_out(4, results, errors);
    CHECK_INT(asyncio_gather(4, futs, results, errors, 0), 0);
    CHECK_PTR(results[0], &g_vals[7]);
    CHECK_PTR(results[1], &g_vals[5]);
    CHECK_PTR(results[2], &g_vals[7]);
    CHECK_PTR(results[3], &g_vals[5]);
    /* Already failed child: returned at once. */
    asyncio_future_t *futs2[2] = {f, e};
    init_out(2, results, errors);
    CHECK_INT(asyncio_gather(2, futs2, results, errors, 0), -EIO);
    CHECK_PTR(results[0], &g_vals[7]);
    CHECK_INT(errors[1], -EIO);
    init_out(2, results, errors);
    CHECK_INT(asyncio_gather(2, futs2, results, errors, ASYNCIO_RETURN_EXCEPTIONS), 1);
    CHECK_INT(errors[0], 0);
    CHECK_INT(errors[1], -EIO);
    return 0;
}

static void test_gather_of_done_futures_and_duplicate_children(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_gather_done_and_duplicates, NULL, NULL), 0);
    assert_log("done5");
}

#define N_MANY 1000

static int many_child(void *arg, void **result)
{
    int i = (int)(intptr_t)arg;
    tu_yield(i % 7);
    *result = &g_vals[i];
    return 0;
}

static int main_gather_many(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static asyncio_future_t *futs[N_MANY];
    static void *results[N_MANY];
    static int errors[N_MANY];
    asyncio_task_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.stack_size = ASYNCIO_STACK_MIN;
    for (int i = 0; i < N_MANY; i++)
        CHECK_INT(asyncio_create_task_ex(&futs[i], many_child, (void *)(intptr_t)i, &opts), 0);
    CHECK_INT(asyncio_gather(N_MANY, futs, results, errors, 0), 0);
    for (int i = 0; i < N_MANY; i++) {
        CHECK_PTR(results[i], &g_vals[i]);
        CHECK_INT(errors[i], 0);
        asyncio_task_release(futs[i]);
    }
    return 0;
}

static void test_gather_of_many_tasks(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_gather_many, NULL, NULL), 0);
}

/* ---- a cancellation that comes with the end of the wait ----------------- */

/* The gathering task is cancelled in the same iteration in which the wait
 * is satisfied (its last child finishes, or a child fails), before it
 * resumes: the cancellation is not lost, the gather reports it (as
 * asyncio_await() does, and as asyncio raises CancelledError there), and
 * what was still running is left alone. */
enum race { CHILD_THEN_CANCEL, CANCEL_THEN_CHILD, FAIL_THEN_CANCEL, CANCEL_THEN_FAIL };

struct race_state {
    enum race race;
    unsigned flags;
    bool use_await;
    asyncio_future_t *futs[2]; /* futs[0] never completes by itself */
    asyncio_task_t *gatherer;
};

static int task_gathers(void *arg, void **result)
{
    struct race_state *r = arg;
    (void)result;
    void *results[2];
    int errors[2];
    int rc = r->use_await ? asyncio_await(r->futs[1], NULL)
                          : asyncio_gather(2, r->futs, results, errors, r->flags);
    LOG("gather:%s", tu_err(rc));
    return rc;
}

static void cb_race(void *arg)
{
    struct race_state *r = arg;
    switch (r->race) {
    case CHILD_THEN_CANCEL:
        CHECK_INT(asyncio_future_set_result(r->futs[1], NULL), 0);
        CHECK_INT(asyncio_task_cancel(r->gatherer), 1);
        break;
    case CANCEL_THEN_CHILD:
        CHECK_INT(asyncio_task_cancel(r->gatherer), 1);
        /* An await passes the cancellation to its future at once, as
         * asyncio's: the result comes too late. */
        CHECK_INT(asyncio_future_set_result(r->futs[1], NULL), r->use_await ? -EALREADY : 0);
        break;
    case FAIL_THEN_CANCEL:
        CHECK_INT(asyncio_future_set_error(r->futs[1], -EIO), 0);
        CHECK_INT(asyncio_task_cancel(r->gatherer), 1);
        break;
    case CANCEL_THEN_FAIL:
        CHECK_INT(asyncio_task_cancel(r->gatherer), 1);
        CHECK_INT(asyncio_future_set_error(r->futs[1], -EIO), 0);
        break;
    }
}

static int main_race(void *arg, void **result)
{
    struct race_state *r = arg;
    (void)result;
    r->futs[0] = tu_future();
    r->futs[1] = tu_future();
    bool failing = r->race == FAIL_THEN_CANCEL || r->race == CANCEL_THEN_FAIL;
    if (!failing && !r->use_await) /* the last child is futs[1] */
        CHECK_INT(asyncio_future_set_result(r->futs[0], NULL), 0);
    r->gatherer = tu_spawn(task_gathers, r, "gatherer");
    tu_yield(1); /* it parks in the gather */
    CHECK_INT(asyncio_call_soon(cb_race, r, NULL), 0);
    CHECK_INT(asyncio_await(r->gatherer, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(r->gatherer), 1);
    /* A child still pending was not cancelled: the wait was already over. */
    CHECK_INT(asyncio_future_cancelled(r->futs[0]), 0);
    LOG("after");
    asyncio_task_release(r->gatherer);
    for (int i = 0; i < 2; i++) {
        void *res;
        asyncio_future_result(r->futs[i], &res); /* looked at: no report */
        asyncio_future_release(r->futs[i]);
    }
    return 0;
}

static void run_race(enum race race, unsigned flags, bool use_await)
{
    struct race_state r = {.race = race, .flags = flags, .use_await = use_await};
    assert_int_equal(tu_run(main_race, &r, NULL), 0);
    assert_log("gather:ECANCELED after");
}

static void test_gather_cancelled_as_its_last_child_finishes_reports_it(void **state)
{
    (void)state;
    run_race(CHILD_THEN_CANCEL, 0, false);
    run_race(CANCEL_THEN_CHILD, 0, false);
    run_race(CHILD_THEN_CANCEL, ASYNCIO_RETURN_EXCEPTIONS, false);
    run_race(CANCEL_THEN_CHILD, ASYNCIO_RETURN_EXCEPTIONS, false);
    /* The same as an await in the same place. */
    run_race(CHILD_THEN_CANCEL, 0, true);
    run_race(CANCEL_THEN_CHILD, 0, true);
}

static void test_gather_cancelled_as_a_child_fails_reports_it(void **state)
{
    (void)state;
    run_race(FAIL_THEN_CANCEL, 0, false);
    run_race(CANCEL_THEN_FAIL, 0, false);
}

/* The same race between tasks in one batch: the last child returns, and
 * the next task of the batch cancels the gatherer before it resumes. */
static int task_child_returns(void *arg, void **result)
{
    (void)arg;
    (void)result;
    tu_yield(1);
    LOG("child");
    return 0;
}

static int task_cancels(void *arg, void **result)
{
    (void)result;
    tu_yield(1);
    LOG("cancel");
    CHECK_INT(asyncio_task_cancel(*(asyncio_task_t **)arg), 1);
    return 0;
}

static int task_gathers_one(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_gather(1, (asyncio_future_t **)arg, NULL, NULL, 0);
    LOG("gather:%s", tu_err(rc));
    return rc;
}

static int main_race_tasks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *child = tu_spawn(task_child_returns, NULL, "child");
    asyncio_task_t *gatherer = NULL;
    asyncio_task_t *canceller = tu_spawn(task_cancels, &gatherer, "canceller");
    gatherer = tu_spawn(task_gathers_one, &child, "gatherer");
    CHECK_INT(asyncio_await(gatherer, NULL), -ECANCELED);
    CHECK_INT(asyncio_await(canceller, NULL), 0);
    asyncio_task_release(child);
    asyncio_task_release(canceller);
    asyncio_task_release(gatherer);
    return 0;
}

static void test_gather_cancelled_by_a_task_as_its_child_returns_reports_it(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_race_tasks, NULL, NULL), 0);
    assert_log("child cancel gather:ECANCELED");
}

/* ---- asyncio's steps --------------------------------------------------------
 * A task awaiting another resumes one step after it ends (the awaited
 * task's done callback is the waiter's wake-up); gather, wait, wait_for,
 * shield and as_completed take one step more (the child's callback
 * completes an outer future, whose callback wakes the waiter), also when
 * what they wait for is done already (but shield, and wait_for with no
 * time left). A ticker task counts the steps. The expected logs are what
 * CPython 3.11 prints for the same scenarios. */

static int step_child(void *arg, void **result)
{
    (void)arg;
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("end");
    *result = &g_sentinel;
    return 0;
}

static int ticker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 4; i++) {
        LOG("t%d", i);
        CHECK_INT(asyncio_sleep(0), 0);
    }
    return 0;
}

static void note_soon(void *arg)
{
    (void)arg;
    LOG("soon");
}

/* One combinator (kind: 0 await, 1 gather, 2 wait, 3 wait_for, 4 shield,
 * 5 as_completed) on c; done: c is done already (5: wait_for with no
 * time left). Returns what it returned, 0 for success. */
static int combine(int kind, asyncio_task_t *c, bool done)
{
    void *r = NULL;
    asyncio_future_t *f = NULL;
    asyncio_as_completed_t it;
    switch (kind) {
    case 0: return asyncio_await(c, &r);
    case 1: return asyncio_gather(1, &c, &r, NULL, 0);
    case 2: return asyncio_wait(1, &c, done ? 0 : INFINITY, ASYNCIO_ALL_COMPLETED, NULL, NULL) - 1;
    case 3: return asyncio_wait_for(c, 10, &r);
    case 4: return asyncio_shield(c, &r);
    default:
        if (done)
            return asyncio_wait_for(c, 0, &r);
        CHECK_INT(asyncio_as_completed_init(&it, 1, &c, INFINITY), 0);
        int rc = asyncio_as_completed_next(&it, &f); /* 1: one came */
        asyncio_as_completed_destroy(&it);
        return rc == 1 && f == c ? 0 : -EIO;
    }
}

static int main_steps(void *arg, void **result)
{
    (void)result;
    int kind = *(int *)arg;
    asyncio_task_t *c = tu_spawn(step_child, NULL, NULL);
    asyncio_task_t *tk = tu_spawn(ticker, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(combine(kind, c, false), 0);
    LOG("back");
    CHECK_INT(asyncio_await(tk, NULL), 0);
    asyncio_task_release(tk);
    /* Done already: a callback scheduled before runs first, but for
     * await, shield, and wait_for with no time left. */
    CHECK_INT(asyncio_call_soon(note_soon, NULL, NULL), 0);
    CHECK_INT(combine(kind, c, true), 0);
    LOG("back");
    CHECK_INT(asyncio_sleep(0), 0);
    asyncio_task_release(c);
    return 0;
}

static void test_combinators_take_asyncios_steps(void **state)
{
    (void)state;
    static const char *const expect[6] = {
        "t0 end t1 back t2 t3 back soon",    /* await */
        "t0 end t1 t2 back t3 soon back",    /* gather */
        "t0 end t1 t2 back t3 soon back",    /* wait (then timeout 0) */
        "t0 end t1 t2 back t3 soon back",    /* wait_for */
        "t0 end t1 t2 back t3 back soon",    /* shield */
        "t0 end t1 t2 back t3 back soon",    /* as_completed, wait_for(0) */
    };
    for (int kind = 0; kind < 6; kind++) {
        tu_log_reset();
        assert_int_equal(tu_run(main_steps, &kind, NULL), 0);
        assert_log(expect[kind]);
    }
}

/* Reports of the loop, counted by kind. */
static int g_unretrieved;

static void count_reports(asyncio_loop_t *loop, const asyncio_report_t *r, void *arg)
{
    (void)loop;
    (void)arg;
    if (r->kind == ASYNCIO_REPORT_NEVER_RETRIEVED)
        g_unretrieved++;
}

/* Fail-fast gather returns at the first failure; a child that fails
 * later is still gather's: asyncio's gather retrieves its exception, so
 * nothing reports it as never retrieved (CPython 3.11 prints only the
 * first error for the same scenario). The tasks are released before they
 * finish, so that their end is what frees them. */
static int main_late_failure(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_unretrieved = 0;
    CHECK_INT(asyncio_loop_set_exception_handler(asyncio_get_running_loop(), count_reports, NULL), 0);
    struct child c[2] = {{.id = 0, .yields = 1, .rc = -EIO}, {.id = 1, .yields = 3, .rc = -EPIPE}};
    asyncio_task_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = tu_spawn(child_task, &c[i], NULL);
    CHECK_INT(asyncio_gather(2, (asyncio_future_t **)t, NULL, NULL, 0), -EIO);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    tu_yield(6);
    CHECK_INT(asyncio_task_count(), 1);
    CHECK_INT(g_unretrieved, 0);
    /* A task nobody gathered still is reported: the handler sees reports. */
    struct child lone = {.id = 2, .yields = 0, .rc = -ENOENT};
    asyncio_task_release(tu_spawn(child_task, &lone, NULL));
    tu_yield(3);
    CHECK_INT(g_unretrieved, 1);
    return 0;
}

static void test_gather_children_failing_after_it_returned_are_retrieved(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_late_failure, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combinators_take_asyncios_steps),
        cmocka_unit_test(test_gather_children_failing_after_it_returned_are_retrieved),
        cmocka_unit_test(test_gather_results_in_argument_order_not_completion_order),
        cmocka_unit_test(test_gather_mixes_futures_and_tasks),
        cmocka_unit_test(test_gather_returns_first_failure_and_others_keep_running),
        cmocka_unit_test(test_gather_return_exceptions_collects_errors_in_order),
        cmocka_unit_test(test_gather_child_cancelled_is_a_failure_not_a_cancel_of_caller),
        cmocka_unit_test(test_cancelling_gather_cancels_unfinished_children_and_waits_for_them),
        cmocka_unit_test(test_gather_with_cancellation_pending_cancels_children),
        cmocka_unit_test(test_gather_of_zero_children_returns_0),
        cmocka_unit_test(test_gather_of_done_futures_and_duplicate_children),
        cmocka_unit_test(test_gather_of_many_tasks),
        cmocka_unit_test(test_gather_cancelled_as_its_last_child_finishes_reports_it),
        cmocka_unit_test(test_gather_cancelled_as_a_child_fails_reports_it),
        cmocka_unit_test(test_gather_cancelled_by_a_task_as_its_child_returns_reports_it),
    };
    return tu_run_group_tests_name("gather", tests, NULL, NULL);
}
