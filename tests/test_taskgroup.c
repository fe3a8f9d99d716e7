/*
 * Task groups, shield, wait and as_completed (CPython: test_taskgroups.py,
 * test_tasks.py's shield/wait/as_completed tests).
 */
#include "testutil.h"

static int g_vals[8];

/* A child that sleeps arg/1000 s, then succeeds, or fails with -(arg % 1000)
 * when arg >= 1000. Logs how it ended. */
static int child(void *arg, void **result)
{
    intptr_t a = (intptr_t)arg;
    int rc = asyncio_sleep((double)(a % 1000) / 1000.0);
    if (rc < 0) {
        LOG("%s:%s", asyncio_task_name(asyncio_current_task()), tu_err(rc));
        return rc;
    }
    LOG("%s:done", asyncio_task_name(asyncio_current_task()));
    if (a >= 1000)
        return -(int)(a / 1000);
    *result = &g_vals[a % 8];
    return 0;
}

static int spawn(asyncio_taskgroup_t *g, intptr_t arg, const char *name, asyncio_task_t **t)
{
    asyncio_task_options_t o = {.name = name};
    return asyncio_taskgroup_create_task(g, t, child, (void *)arg, &o);
}

static int main_all_succeed(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    asyncio_task_t *a, *b;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(spawn(&g, 20, "a", &a), 0);
    CHECK_INT(spawn(&g, 10, "b", &b), 0);
    CHECK_INT(spawn(&g, 5, "c", NULL), 0);
    LOG("exit:%s", tu_err(asyncio_taskgroup_exit(&g, 0)));
    CHECK_INT(asyncio_future_done(a), 1);
    CHECK_INT(asyncio_future_done(b), 1);
    CHECK_INT(asyncio_taskgroup_errors(&g, NULL, 0), 0);
    asyncio_task_release(a);
    asyncio_task_release(b);
    return 0;
}

static void test_exit_waits_for_every_child(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_all_succeed, NULL, NULL), 0);
    assert_log("c:done b:done a:done exit:0");
}

static int main_first_failure(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(spawn(&g, 100, "slow", NULL), 0);
    CHECK_INT(spawn(&g, EIO * 1000 + 10, "bad", NULL), 0);
    int body = asyncio_sleep(10); /* the failure cancels the body's wait */
    LOG("body:%s", tu_err(body));
    CHECK_INT(asyncio_taskgroup_create_task(&g, NULL, child, NULL, NULL), -ESHUTDOWN);
    LOG("exit:%s", tu_err(asyncio_taskgroup_exit(&g, body)));
    int errs[4];
    CHECK_INT(asyncio_taskgroup_errors(&g, errs, 4), 1);
    CHECK_INT(errs[0], -EIO);
    /* The group consumed its own cancellation of the body. */
    LOG("after:%s", tu_err(asyncio_sleep(0)));
    return 0;
}

static void test_first_failure_cancels_siblings_and_body(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_first_failure, NULL, NULL), 0);
    assert_log("bad:done slow:ECANCELED body:ECANCELED exit:EIO after:0");
}

/* A child whose cleanup fails after it was cancelled. */
static int fails_in_cleanup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(10);
    LOG("y:%s", tu_err(rc));
    return -EPIPE;
}

static int main_all_failures(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    /* x fails, which cancels y, whose cleanup fails too: both count. */
    CHECK_INT(spawn(&g, EIO * 1000 + 5, "x", NULL), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&g, NULL, fails_in_cleanup, NULL, NULL), 0);
    LOG("exit:%s", tu_err(asyncio_taskgroup_exit(&g, 0)));
    int errs[4];
    CHECK_INT(asyncio_taskgroup_errors(&g, errs, 4), 2);
    CHECK_INT(errs[0], -EIO);
    CHECK_INT(errs[1], -EPIPE);
    return 0;
}

static void test_all_failures_are_reported(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_all_failures, NULL, NULL), 0);
    assert_log("x:done y:ECANCELED exit:EIO");
}

static int main_body_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(spawn(&g, 100, "slow", NULL), 0);
    tu_yield(1); /* slow starts (a task cancelled before it starts never runs) */
    LOG("exit:%s", tu_err(asyncio_taskgroup_exit(&g, -ENOENT)));
    LOG("after:%s", tu_err(asyncio_sleep(0)));
    return 0;
}

static void test_body_failure_cancels_children(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_body_fails, NULL, NULL), 0);
    assert_log("slow:ECANCELED exit:ENOENT after:0");
}

/* A child that fails with -EPIPE when cancelled. */
static int fails_when_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(10);
    return rc == -ECANCELED ? -EPIPE : rc;
}

/* As asyncio's ExceptionGroup: the body's error comes after the
 * children's, even one the body's failure caused (CPython 3.11 prints
 * [EPIPE, ENOENT] for the same scenario). */
static int main_body_error_comes_last(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&g, NULL, fails_when_cancelled, NULL, NULL), 0);
    tu_yield(1);
    CHECK_INT(asyncio_taskgroup_exit(&g, -ENOENT), -EPIPE);
    int errs[4] = {0};
    CHECK_INT(asyncio_taskgroup_errors(&g, errs, 4), 2);
    CHECK_INT(errs[0], -EPIPE);
    CHECK_INT(errs[1], -ENOENT);
    return 0;
}

static void test_body_error_comes_after_the_childrens(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_body_error_comes_last, NULL, NULL), 0);
}

static int group_owner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(spawn(&g, 100, "k1", NULL), 0);
    CHECK_INT(spawn(&g, 200, "k2", NULL), 0);
    int rc = asyncio_taskgroup_exit(&g, 0); /* cancelled while waiting here */
    LOG("exit:%s", tu_err(rc));
    return rc;
}

static int main_cancel_from_outside(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(group_owner, NULL, "owner");
    CHECK_INT(asyncio_sleep(0.01), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    return 0;
}

static void test_cancel_from_outside_cancels_children(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_from_outside, NULL, NULL), 0);
    assert_log("k1:ECANCELED k2:ECANCELED exit:ECANCELED");
}

static int nested_inner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t inner;
    CHECK_INT(asyncio_taskgroup_enter(&inner), 0);
    CHECK_INT(spawn(&inner, EBADMSG * 1000 + 5, "inner-bad", NULL), 0);
    CHECK_INT(spawn(&inner, 100, "inner-slow", NULL), 0);
    int body = asyncio_sleep(10);
    int rc = asyncio_taskgroup_exit(&inner, body);
    LOG("inner-exit:%s", tu_err(rc));
    return rc;
}

static int main_nested(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t outer;
    CHECK_INT(asyncio_taskgroup_enter(&outer), 0);
    CHECK_INT(spawn(&outer, 100, "outer-slow", NULL), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&outer, NULL, nested_inner, NULL, NULL), 0);
    int body = asyncio_sleep(10);
    LOG("outer-body:%s", tu_err(body));
    LOG("outer-exit:%s", tu_err(asyncio_taskgroup_exit(&outer, body)));
    return 0;
}

static void test_nested_groups_propagate_failures(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_nested, NULL, NULL), 0);
    assert_log("inner-bad:done inner-slow:ECANCELED inner-exit:EBADMSG outer-slow:ECANCELED "
               "outer-body:ECANCELED outer-exit:EBADMSG");
}

/* One task owns two nested groups. The inner group's failing child makes
 * the inner group cancel the owner to stop the body, and the inner exit
 * consumes that cancellation (asyncio 3.11+: uncancel()). The outer group
 * must not count it as one from outside: its exit returns 0 and its child
 * runs to its end. */
static int main_nested_same_owner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t outer, inner;
    CHECK_INT(asyncio_taskgroup_enter(&outer), 0);
    CHECK_INT(spawn(&outer, 30, "outer-child", NULL), 0);
    CHECK_INT(asyncio_taskgroup_enter(&inner), 0);
    CHECK_INT(spawn(&inner, EIO * 1000 + 5, "inner-bad", NULL), 0);
    int body = asyncio_sleep(10);
    LOG("inner-body:%s", tu_err(body));
    LOG("inner-exit:%s", tu_err(asyncio_taskgroup_exit(&inner, body)));
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    LOG("outer-exit:%s", tu_err(asyncio_taskgroup_exit(&outer, 0)));
    return 0;
}

static void test_nested_groups_of_one_task_keep_their_cancellations_apart(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_nested_same_owner, NULL, NULL), 0);
    assert_log("inner-bad:done inner-body:ECANCELED inner-exit:EIO sleep:0 "
               "outer-child:done outer-exit:0");
}

/* The same two groups, and a cancellation from outside while the owner is
 * in the inner body: both exits report it, both groups' children are
 * cancelled, and the owner ends cancelled. */
static int owner_of_two(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t outer, inner;
    CHECK_INT(asyncio_taskgroup_enter(&outer), 0);
    CHECK_INT(spawn(&outer, 500, "outer-child", NULL), 0);
    CHECK_INT(asyncio_taskgroup_enter(&inner), 0);
    CHECK_INT(spawn(&inner, 500, "inner-child", NULL), 0);
    int body = asyncio_sleep(10);
    LOG("inner-body:%s", tu_err(body));
    int rc = asyncio_taskgroup_exit(&inner, body);
    LOG("inner-exit:%s", tu_err(rc));
    rc = asyncio_taskgroup_exit(&outer, rc);
    LOG("outer-exit:%s", tu_err(rc));
    return rc;
}

static int main_nested_same_owner_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *owner = tu_spawn(owner_of_two, NULL, "owner");
    CHECK_INT(asyncio_sleep(0.01), 0);
    CHECK_INT(asyncio_task_cancel(owner), 1);
    CHECK_INT(asyncio_await(owner, NULL), -ECANCELED);
    asyncio_task_release(owner);
    return 0;
}

static void test_nested_groups_of_one_task_both_see_an_outside_cancel(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_nested_same_owner_cancelled, NULL, NULL), 0);
    assert_log("inner-body:ECANCELED inner-child:ECANCELED inner-exit:ECANCELED "
               "outer-child:ECANCELED outer-exit:ECANCELED");
}

static int main_group_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(spawn(&g, 500, "long", NULL), 0);
    LOG("exit:%s", tu_err(asyncio_taskgroup_exit(&g, 0)));
    LOG("scope:%s", tu_err(asyncio_timeout_exit(&scope)));
    return 0;
}

static void test_timeout_scope_around_a_group(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_group_timeout, NULL, NULL), 0);
    assert_log("long:ECANCELED exit:ETIMEDOUT scope:ETIMEDOUT");
}

/* shield */
static int shielder(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_shield((asyncio_future_t *)arg, NULL);
    LOG("shield:%s", tu_err(rc));
    return rc;
}

static int main_shield(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *inner = tu_spawn(child, (void *)(intptr_t)20, "inner");
    asyncio_task_t *outer = tu_spawn(shielder, inner, "outer");
    CHECK_INT(asyncio_sleep(0.005), 0);
    CHECK_INT(asyncio_task_cancel(outer), 1);
    CHECK_INT(asyncio_await(outer, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_done(inner), 0);
    void *res = NULL;
    CHECK_INT(asyncio_await(inner, &res), 0);
    CHECK_PTR(res, &g_vals[20 % 8]);
    LOG("inner-ok");
    return 0;
}

static void test_shield_keeps_the_inner_task_alive(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_shield, NULL, NULL), 0);
    assert_log("shield:ECANCELED inner:done inner-ok");
}

/* wait */
static int main_wait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f[3] = {tu_spawn(child, (void *)(intptr_t)30, "w30"),
                              tu_spawn(child, (void *)(intptr_t)(EIO * 1000 + 10), "w10"),
                              tu_spawn(child, (void *)(intptr_t)60, "w60")};
    asyncio_future_t *done[3], *pending[3];
    CHECK_INT(asyncio_wait(3, f, INFINITY, ASYNCIO_FIRST_COMPLETED, done, pending), 1);
    CHECK_PTR(done[0], f[1]);
    CHECK_PTR(pending[0], f[0]);
    CHECK_PTR(pending[1], f[2]);
    CHECK_INT(asyncio_wait(3, f, INFINITY, ASYNCIO_FIRST_EXCEPTION, done, pending), 1);
    CHECK_INT(asyncio_wait(3, f, 0.001, ASYNCIO_ALL_COMPLETED, done, pending), 1); /* timeout */
    CHECK_INT(asyncio_future_done(f[0]), 0); /* nothing was cancelled */
    CHECK_INT(asyncio_wait(3, f, INFINITY, ASYNCIO_ALL_COMPLETED, done, NULL), 3);
    CHECK_INT(asyncio_wait(0, f, 1, ASYNCIO_ALL_COMPLETED, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_wait(3, f, 1, 7, NULL, NULL), -EINVAL);
    return 0;
}

static void test_wait_returns_done_and_pending_without_cancelling(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_wait, NULL, NULL), 0);
    assert_log("w10:done w30:done w60:done");
}

/* as_completed */
static int main_as_completed(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f[4] = {tu_spawn(child, (void *)(intptr_t)30, "a30"),
                              tu_spawn(child, (void *)(intptr_t)10, "a10"), tu_future(),
                              tu_spawn(child, (void *)(intptr_t)20, "a20")};
    CHECK_INT(asyncio_future_set_result(f[2], &g_vals[0]), 0); /* done first */
    asyncio_as_completed_t it;
    CHECK_INT(asyncio_as_completed_init(&it, 4, f, INFINITY), 0);
    asyncio_future_t *next;
    int order[4], k = 0, rc;
    while ((rc = asyncio_as_completed_next(&it, &next)) == 1) {
        for (int i = 0; i < 4; i++)
            if (f[i] == next)
                order[k] = i;
        k++;
    }
    CHECK_INT(rc, 0);
    CHECK_INT(k, 4);
    CHECK_INT(order[0], 2);
    CHECK_INT(order[1], 1);
    CHECK_INT(order[2], 3);
    CHECK_INT(order[3], 0);
    asyncio_as_completed_destroy(&it);

    /* With an overall timeout: what finished comes out, then -ETIMEDOUT. */
    asyncio_future_t *g[2] = {tu_spawn(child, (void *)(intptr_t)5, "b5"),
                              tu_spawn(child, (void *)(intptr_t)900, "b900")};
    CHECK_INT(asyncio_as_completed_init(&it, 2, g, 0.05), 0);
    CHECK_INT(asyncio_as_completed_next(&it, &next), 1);
    CHECK_PTR(next, g[0]);
    CHECK_INT(asyncio_as_completed_next(&it, &next), -ETIMEDOUT);
    CHECK_INT(asyncio_future_done(g[1]), 0); /* not cancelled */
    asyncio_as_completed_destroy(&it);
    asyncio_task_cancel(g[1]);
    return 0;
}

static void test_as_completed_hands_back_in_completion_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_as_completed, NULL, NULL), 0);
    assert_log("a10:done a20:done a30:done b5:done b900:ECANCELED");
}

/* wait and as_completed: the argument checks, more futures than fit on the
 * stack, and an overall timeout already over at the first call. */
static void set_all(void *arg)
{
    asyncio_future_t **f = arg;
    for (int i = 0; i < 10; i++)
        CHECK_INT(asyncio_future_set_result(f[i], &g_vals[i % 8]), 0);
}

static int main_wait_edges(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f[10], *done[10], *pending[10];
    for (int i = 0; i < 10; i++)
        f[i] = tu_future();
    asyncio_future_t *with_null[2] = {f[0], NULL};
    CHECK_INT(asyncio_wait(2, with_null, 1, ASYNCIO_ALL_COMPLETED, NULL, NULL), -EINVAL);
    asyncio_future_t *self[1] = {asyncio_current_task()};
    CHECK_INT(asyncio_wait(1, self, 1, ASYNCIO_ALL_COMPLETED, NULL, NULL), -EDEADLK);
    /* Ten pending futures: a timeout returns 0 done, then all finish. */
    CHECK_INT(asyncio_wait(10, f, 0.001, ASYNCIO_FIRST_COMPLETED, done, pending), 0);
    CHECK_PTR(pending[9], f[9]);
    CHECK_INT(asyncio_call_soon(set_all, f, NULL), 0);
    CHECK_INT(asyncio_wait(10, f, INFINITY, ASYNCIO_ALL_COMPLETED, done, pending), 10);
    CHECK_PTR(done[9], f[9]);

    asyncio_as_completed_t it;
    CHECK_INT(asyncio_as_completed_init(&it, 2, with_null, 1), -EINVAL);
    asyncio_future_t *next = NULL;
    CHECK_INT(asyncio_as_completed_next(NULL, &next), -EINVAL);
    /* A timeout of 0 with nothing done: -ETIMEDOUT at once, then what
     * finished since is still handed back. */
    asyncio_future_t *g[1] = {tu_future()};
    CHECK_INT(asyncio_as_completed_init(&it, 1, g, 0), 0);
    CHECK_INT(asyncio_as_completed_next(&it, &next), -ETIMEDOUT);
    CHECK_INT(asyncio_future_set_result(g[0], NULL), 0);
    CHECK_INT(asyncio_as_completed_next(&it, &next), 1);
    CHECK_PTR(next, g[0]);
    asyncio_as_completed_destroy(&it);
    asyncio_future_release(g[0]);
    for (int i = 0; i < 10; i++)
        asyncio_future_release(f[i]);
    return 0;
}

/* as_completed_next() waits, so a callback may not call it: -EPERM, and
 * the iterator is left as it was. */
static asyncio_as_completed_t g_it;

static void cb_next(void *arg)
{
    asyncio_future_t *f = NULL;
    CHECK_INT(asyncio_as_completed_next(&g_it, &f), -EPERM);
    CHECK_PTR(f, NULL);
    (void)arg;
}

static int as_completed_outside_a_task_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f[1] = {tu_future()};
    CHECK_INT(asyncio_as_completed_init(&g_it, 1, f, INFINITY), 0);
    CHECK_INT(asyncio_call_soon(cb_next, NULL, NULL), 0);
    tu_yield(1);
    CHECK_INT(asyncio_future_set_result(f[0], NULL), 0);
    asyncio_future_t *next = NULL;
    CHECK_INT(asyncio_as_completed_next(&g_it, &next), 1);
    CHECK_PTR(next, f[0]);
    asyncio_as_completed_destroy(&g_it);
    asyncio_future_release(f[0]);
    return 0;
}

static void test_as_completed_next_outside_a_task(void **state)
{
    (void)state;
    assert_int_equal(tu_run(as_completed_outside_a_task_main, NULL, NULL), 0);
}

static void test_wait_and_as_completed_edges(void **state)
{
    (void)state;
    asyncio_as_completed_t it;
    asyncio_future_t *none[1] = {NULL};
    assert_int_equal(asyncio_as_completed_init(&it, 0, none, 1), -EPERM); /* no task */
    assert_int_equal(tu_run(main_wait_edges, NULL, NULL), 0);
}

/* Leaving a group: only its own task may, and a body that timed out
 * cancels the children and gets -ETIMEDOUT back, not a failure. */
static int exit_other_group(void *arg, void **result)
{
    (void)result;
    CHECK_INT(asyncio_taskgroup_exit(arg, 0), -EPERM);
    return 0;
}

static int main_exit_edges(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    asyncio_task_t *c = NULL;
    CHECK_INT(spawn(&g, 900, "slow", &c), 0);
    asyncio_task_t *other = tu_spawn(exit_other_group, &g, "other");
    CHECK_INT(asyncio_await(other, NULL), 0);
    asyncio_task_release(other);
    CHECK_INT(asyncio_taskgroup_exit(&g, -ETIMEDOUT), -ETIMEDOUT);
    CHECK_INT(asyncio_taskgroup_errors(&g, NULL, 0), 0);
    CHECK_INT(asyncio_future_cancelled(c), 1);
    asyncio_task_release(c);
    LOG("main:%s", tu_err(asyncio_sleep(0))); /* no cancellation left over */
    return 0;
}

static void test_exit_from_another_task_or_after_a_body_timeout(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_exit_edges, NULL, NULL), 0);
    assert_log("slow:ECANCELED main:0");
}

static int main_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(NULL), -EINVAL);
    CHECK_INT(asyncio_taskgroup_exit(NULL, 0), -EINVAL);
    CHECK_INT(asyncio_taskgroup_errors(NULL, NULL, 0), -EINVAL);
    CHECK_INT(asyncio_shield(NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_shield(asyncio_current_task(), NULL), -EDEADLK);
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(asyncio_taskgroup_exit(&g, 0), 0);
    CHECK_INT(asyncio_taskgroup_exit(&g, 0), -EINVAL); /* twice */
    CHECK_INT(asyncio_taskgroup_create_task(&g, NULL, child, NULL, NULL), -EINVAL);
    asyncio_as_completed_t it;
    CHECK_INT(asyncio_as_completed_init(&it, 1, NULL, 1), -EINVAL);
    CHECK_INT(asyncio_as_completed_init(NULL, 0, NULL, 1), -EINVAL);
    CHECK_INT(asyncio_as_completed_init(&it, 0, NULL, NAN), -EINVAL);
    CHECK_INT(asyncio_as_completed_init(&it, 0, NULL, 1), 0);
    asyncio_future_t *f;
    CHECK_INT(asyncio_as_completed_next(&it, &f), 0);
    asyncio_as_completed_destroy(&it);
    asyncio_as_completed_destroy(NULL);
    return 0;
}

static void test_misuse_gets_error_codes(void **state)
{
    (void)state;
    asyncio_taskgroup_t g;
    assert_int_equal(asyncio_taskgroup_enter(&g), -EPERM);
    assert_int_equal(tu_run(main_misuse, NULL, NULL), 0);
}

/* A task that returns inside its groups stops the program and says which
 * task and how many groups: its children would write to the groups on the
 * stack it left. A group it left does not count; the two it did not leave,
 * one of them with a child still running, do. */
static int leaves_groups_open(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t done, outer, inner;
    if (asyncio_taskgroup_enter(&done) < 0 || asyncio_taskgroup_exit(&done, 0) < 0)
        return -1; /* a group left properly does not count */
    if (asyncio_taskgroup_enter(&outer) < 0 || asyncio_taskgroup_enter(&inner) < 0 ||
        spawn(&inner, 50, "child", NULL) < 0)
        return -1;
    return 0;
}

static int main_leave_open(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(leaves_groups_open, NULL, "leaky");
    asyncio_await(t, NULL);
    return 0;
}

static void child_leave_open(void)
{
    asyncio_run(main_leave_open, NULL, NULL);
}

static void test_returning_inside_a_group_stops_the_program_and_says_why(void **state)
{
    (void)state;
    struct tu_child c;
    tu_run_child(child_leave_open, &c);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGABRT);
    assert_string_equal(c.err, "asyncio: task \"leaky\" returned without leaving 2 task groups"
                               " (call asyncio_taskgroup_exit() first)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_waits_for_every_child),
        cmocka_unit_test(test_first_failure_cancels_siblings_and_body),
        cmocka_unit_test(test_all_failures_are_reported),
        cmocka_unit_test(test_body_failure_cancels_children),
        cmocka_unit_test(test_body_error_comes_after_the_childrens),
        cmocka_unit_test(test_cancel_from_outside_cancels_children),
        cmocka_unit_test(test_nested_groups_propagate_failures),
        cmocka_unit_test(test_nested_groups_of_one_task_keep_their_cancellations_apart),
        cmocka_unit_test(test_nested_groups_of_one_task_both_see_an_outside_cancel),
        cmocka_unit_test(test_timeout_scope_around_a_group),
        cmocka_unit_test(test_shield_keeps_the_inner_task_alive),
        cmocka_unit_test(test_wait_returns_done_and_pending_without_cancelling),
        cmocka_unit_test(test_as_completed_hands_back_in_completion_order),
        cmocka_unit_test(test_wait_and_as_completed_edges),
        cmocka_unit_test(test_as_completed_next_outside_a_task),
        cmocka_unit_test(test_exit_from_another_task_or_after_a_body_timeout),
        cmocka_unit_test(test_misuse_gets_error_codes),
        cmocka_unit_test(test_returning_inside_a_group_stops_the_program_and_says_why),
    };
    return tu_run_group_tests_name("taskgroup", tests, NULL, NULL);
}
