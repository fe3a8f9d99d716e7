/*
 * The event loop: asyncio_run(), call_soon/call_later/call_at, handles,
 * loop time and backends (CPython: test_base_events.py, test_events.py).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static asyncio_future_t *g_done;

static void cb_log(void *arg) { LOG("%s", (const char *)arg); }

static void cb_log_and_finish(void *arg)
{
    LOG("%s", (const char *)arg);
    tu_cb_set_future(g_done);
}

static void cb_log_int(void *arg) { LOG("%d", *(const int *)arg); }

/* ---- call_soon -------------------------------------------------------- */

static int main_call_soon_fifo(void *arg, void **result)
{
    static const char *names[] = {"1", "2", "3", "4", "5"};
    (void)arg;
    (void)result;
    g_done = tu_future();
    for (int i = 0; i < 5; i++)
        CHECK_INT(asyncio_call_soon(cb_log, (void *)names[i], NULL), 0);
    CHECK_INT(asyncio_call_soon(tu_cb_set_future, g_done, NULL), 0);
    LOG("scheduled");
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    LOG("woken");
    return 0;
}

static void test_call_soon_runs_callbacks_in_fifo_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_call_soon_fifo, NULL, NULL), 0);
    /* Nothing runs while the task that scheduled the callbacks runs. */
    assert_log("scheduled 1 2 3 4 5 woken");
}

static int main_call_soon_then_yield(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_call_soon(cb_log, "a", NULL), 0);
    CHECK_INT(asyncio_call_soon(cb_log, "b", NULL), 0);
    LOG("before");
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("after");
    return 0;
}

static void test_sleep0_lets_ready_callbacks_run_first(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_call_soon_then_yield, NULL, NULL), 0);
    assert_log("before a b after");
}

struct chain {
    const char *name;
    int step;
    int n;
    int *finished;
};

static void cb_chain(void *arg)
{
    struct chain *c = arg;
    LOG("%s%d", c->name, c->step);
    if (++c->step <= c->n) {
        CHECK_INT(asyncio_call_soon(cb_chain, c, NULL), 0);
    } else if (++*c->finished == 2) {
        tu_cb_set_future(g_done);
    }
}

static int main_interleaved_chains(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int finished = 0;
    struct chain a = {"a", 1, 3, &finished};
    struct chain b = {"b", 1, 3, &finished};
    g_done = tu_future();
    CHECK_INT(asyncio_call_soon(cb_chain, &a, NULL), 0);
    CHECK_INT(asyncio_call_soon(cb_chain, &b, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_callbacks_scheduled_from_callbacks_keep_fifo_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_interleaved_chains, NULL, NULL), 0);
    assert_log("a1 b1 a2 b2 a3 b3");
}

/*
 * A callback that keeps re-scheduling itself with call_soon must not starve
 * the loop: each re-scheduled run belongs to the next iteration, and every
 * iteration looks at the timers. A timer already due fires after at most
 * one more run of the spinner. (If the loop drained callbacks scheduled
 * from callbacks in the same iteration, the timer would never fire.)
 */
static int g_spin_count;
static int g_timer_fired;

static void cb_timer_flag(void *arg)
{
    (void)arg;
    g_timer_fired = 1;
    LOG("timer");
}

static void cb_spin(void *arg)
{
    g_spin_count++;
    LOG("spin%d", g_spin_count);
    if (g_timer_fired || g_spin_count >= 1000) {
        tu_cb_set_future(g_done);
        return;
    }
    CHECK_INT(asyncio_call_soon(cb_spin, arg, NULL), 0);
}

static int main_spinner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_spin_count = 0;
    g_timer_fired = 0;
    g_done = tu_future();
    CHECK_INT(asyncio_call_soon(cb_spin, NULL, NULL), 0);
    CHECK_INT(asyncio_call_at(asyncio_loop_time() - 1.0, cb_timer_flag, NULL, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_callback_scheduled_from_callback_runs_in_next_iteration(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_spinner, NULL, NULL), 0);
    assert_int_equal(g_timer_fired, 1);
    /* spin1 and the timer run in the same iteration (either order), spin2
     * in the next one sees the timer has fired. */
    assert_in_range(g_spin_count, 1, 2);
}

/* ---- call_later / call_at --------------------------------------------- */

static int main_call_at_order(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_done = tu_future();
    double now = asyncio_loop_time();
    CHECK_INT(asyncio_call_at(now + 0.03, cb_log_and_finish, "c", NULL), 0);
    CHECK_INT(asyncio_call_at(now + 0.01, cb_log, "a", NULL), 0);
    CHECK_INT(asyncio_call_at(now + 0.02, cb_log, "b", NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    CHECK(asyncio_loop_time() >= now + 0.03 - 1e-6);
    return 0;
}

static void test_call_at_runs_callbacks_in_deadline_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_call_at_order, NULL, NULL), 0);
    assert_log("a b c");
}

#define N_SAME 200
static int g_ids[N_SAME];

static int main_call_at_same_deadline(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_done = tu_future();
    double now = asyncio_loop_time();
    double w0 = now + 0.01, w1 = now + 0.02;
    /* Odd ids share an earlier deadline, even ids a later one, interleaved
     * in scheduling order: a heap that is not stable mixes them up. */
    for (int i = 0; i < N_SAME; i++) {
        g_ids[i] = i;
        CHECK_INT(asyncio_call_at(i % 2 ? w0 : w1, cb_log_int, &g_ids[i], NULL), 0);
    }
    CHECK_INT(asyncio_call_at(w1, tu_cb_set_future, g_done, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_call_at_equal_deadlines_run_in_scheduling_order(void **state)
{
    (void)state;
    static char expected[4 * N_SAME + 16];
    size_t len = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < N_SAME; i++)
            if (i % 2 == pass)
                len += (size_t)snprintf(expected + len, sizeof expected - len,
                                        len ? " %d" : "%d", i);
    assert_int_equal(tu_run(main_call_at_same_deadline, NULL, NULL), 0);
    assert_log(expected);
}

static int main_call_at_same_past_deadline(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_done = tu_future();
    double past = asyncio_loop_time() - 5.0;
    for (int i = 0; i < 50; i++) {
        g_ids[i] = i;
        CHECK_INT(asyncio_call_at(past, cb_log_int, &g_ids[i], NULL), 0);
    }
    CHECK_INT(asyncio_call_at(past, tu_cb_set_future, g_done, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_call_at_in_the_past_runs_in_scheduling_order(void **state)
{
    (void)state;
    char expected[512];
    size_t len = 0;
    for (int i = 0; i < 50; i++)
        len += (size_t)snprintf(expected + len, sizeof expected - len, len ? " %d" : "%d", i);
    assert_int_equal(tu_run(main_call_at_same_past_deadline, NULL, NULL), 0);
    assert_log(expected);
}

static double g_sched_time, g_fire_time;

static void cb_short(void *arg)
{
    (void)arg;
    g_fire_time = asyncio_loop_time();
    LOG("short");
    tu_cb_set_future(g_done);
}

static int main_call_later_order(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t late;
    memset(&late, 0, sizeof late);
    g_done = tu_future();
    g_sched_time = asyncio_loop_time();
    CHECK_INT(asyncio_call_later(10.0, cb_log, "late", &late), 0);
    CHECK_INT(asyncio_call_later(0.01, cb_short, NULL, NULL), 0);
    CHECK_INT(asyncio_call_later(0, cb_log, "zero1", NULL), 0);
    CHECK_INT(asyncio_call_later(0.0, cb_log, "zero2", NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    CHECK_INT(asyncio_handle_pending(&late), 1);
    CHECK_INT(asyncio_handle_cancel(&late), 1);
    CHECK_INT(asyncio_handle_pending(&late), 0);
    return 0;
}

static void test_call_later_runs_callbacks_by_delay(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_call_later_order, NULL, NULL), 0);
    assert_log("zero1 zero2 short");
    /* Never early (lower bound only). */
    assert_true(g_fire_time - g_sched_time >= 0.01 - 1e-6);
}

static int main_call_later_infinity(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t h;
    memset(&h, 0, sizeof h);
    CHECK_INT(asyncio_call_later(INFINITY, cb_log, "never", &h), 0);
    CHECK_INT(asyncio_handle_pending(&h), 1);
    CHECK_INT(asyncio_sleep(0.02), 0);
    CHECK_INT(asyncio_handle_pending(&h), 1);
    CHECK_INT(asyncio_handle_cancel(&h), 1);
    LOG("end");
    return 0;
}

static void test_call_later_infinite_delay_never_fires(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_call_later_infinity, NULL, NULL), 0);
    assert_log("end");
}

/* ---- handles ---------------------------------------------------------- */

static int main_handle_cancel_soon(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t h;
    memset(&h, 0, sizeof h);
    g_done = tu_future();
    CHECK_INT(asyncio_call_soon(cb_log, "cancelled", &h), 0);
    CHECK_INT(asyncio_handle_pending(&h), 1);
    CHECK_INT(asyncio_handle_cancel(&h), 1);
    CHECK_INT(asyncio_handle_pending(&h), 0);
    CHECK_INT(asyncio_handle_cancel(&h), 0);
    CHECK_INT(asyncio_call_soon(cb_log_and_finish, "other", NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    tu_yield(3);
    CHECK_INT(asyncio_handle_pending(&h), 0);
    CHECK_INT(asyncio_handle_cancel(&h), 0);
    LOG("end");
    return 0;
}

static void test_handle_cancel_call_soon_callback_never_runs(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_handle_cancel_soon, NULL, NULL), 0);
    assert_log("other end");
}

static int main_handle_cancel_after_run(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t hs, ht;
    memset(&hs, 0, sizeof hs);
    memset(&ht, 0, sizeof ht);
    g_done = tu_future();
    CHECK_INT(asyncio_call_soon(cb_log, "soon", &hs), 0);
    CHECK_INT(asyncio_call_later(0, cb_log, "later", &ht), 0);
    CHECK_INT(asyncio_call_later(0.001, tu_cb_set_future, g_done, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    CHECK_INT(asyncio_handle_pending(&hs), 0);
    CHECK_INT(asyncio_handle_pending(&ht), 0);
    CHECK_INT(asyncio_handle_cancel(&hs), 0);
    CHECK_INT(asyncio_handle_cancel(&ht), 0);
    return 0;
}

static void test_handle_cancel_after_callback_ran_returns_0(void **state)
{
    (void)state;
    asyncio_handle_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(asyncio_handle_cancel(&h), -EPERM); /* no loop */
    assert_int_equal(asyncio_handle_pending(&h), -EPERM);
    assert_int_equal(tu_run(main_handle_cancel_after_run, NULL, NULL), 0);
    assert_log("soon later");
}

/* A handle from an earlier run's loop (closed), kept for the next run. */
static asyncio_handle_t g_old_handle;

static int main_handle_of_a_closed_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_call_later(10, cb_log, "never", &g_old_handle), 0);
    return 0;
}

static int main_handle_garbage(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Uninitialised memory, and a real handle with one field changed. */
    asyncio_handle_t junk;
    memset(&junk, 0xa5, sizeof junk);
    CHECK_INT(asyncio_handle_cancel(&junk), -EINVAL);
    CHECK_INT(asyncio_handle_pending(&junk), -EINVAL);
    asyncio_handle_t h, bad;
    CHECK_INT(asyncio_call_later(10, cb_log, "cancelled", &h), 0);
    bad = h;
    bad.id++;
    CHECK_INT(asyncio_handle_pending(&bad), -EINVAL);
    bad = h;
    bad.ptr = (char *)bad.ptr + 8;
    CHECK_INT(asyncio_handle_cancel(&bad), -EINVAL);
    CHECK_INT(asyncio_handle_pending(&h), 1);
    /* The last loop's handle; its slab was freed with that loop (and the
     * new loop's first handle may sit at the same address). */
    CHECK_INT(asyncio_handle_pending(&g_old_handle), -EINVAL);
    CHECK_INT(asyncio_handle_cancel(&g_old_handle), -EINVAL);
    CHECK_INT(asyncio_handle_cancel(&h), 1);
    return 0;
}

static void test_handle_garbage_or_of_another_loop_is_refused(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_handle_of_a_closed_loop, NULL, NULL), 0);
    assert_int_equal(tu_run(main_handle_garbage, NULL, NULL), 0);
    assert_log("");
}

static int g_timer_ids[20];

static int main_handle_cancel_timers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t h[20];
    memset(h, 0, sizeof h);
    g_done = tu_future();
    double now = asyncio_loop_time();
    /* Scheduled in a scrambled order so cancelled entries sit all over the
     * timer heap. */
    for (int k = 0; k < 20; k++) {
        int i = (k * 7) % 20;
        g_timer_ids[i] = i;
        CHECK_INT(asyncio_call_at(now + 0.001 * (i + 1), cb_log_int, &g_timer_ids[i], &h[i]), 0);
    }
    CHECK_INT(asyncio_call_at(now + 0.03, tu_cb_set_future, g_done, NULL), 0);
    for (int i = 0; i < 20; i++) {
        if (i % 3 == 0) {
            CHECK_INT(asyncio_handle_pending(&h[i]), 1);
            CHECK_INT(asyncio_handle_cancel(&h[i]), 1);
            CHECK_INT(asyncio_handle_pending(&h[i]), 0);
        }
    }
    CHECK_INT(asyncio_handle_cancel(&h[0]), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    for (int i = 0; i < 20; i++)
        CHECK_INT(asyncio_handle_pending(&h[i]), 0);
    return 0;
}

static void test_handle_cancel_timers_never_fire(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_handle_cancel_timers, NULL, NULL), 0);
    assert_log("1 2 4 5 7 8 10 11 13 14 16 17 19");
}

static asyncio_handle_t g_victim;

static void cb_cancel_victim(void *arg)
{
    (void)arg;
    LOG("cancel=%d", asyncio_handle_cancel(&g_victim));
    LOG("pending=%d", asyncio_handle_pending(&g_victim));
}

static int main_cancel_ready_callback(void *arg, void **result)
{
    (void)arg;
    (void)result;
    memset(&g_victim, 0, sizeof g_victim);
    g_done = tu_future();
    CHECK_INT(asyncio_call_soon(cb_cancel_victim, NULL, NULL), 0);
    CHECK_INT(asyncio_call_soon(cb_log, "victim", &g_victim), 0);
    CHECK_INT(asyncio_call_soon(tu_cb_set_future, g_done, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_handle_cancel_of_callback_ready_in_same_iteration(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_ready_callback, NULL, NULL), 0);
    assert_log("cancel=1 pending=0");
}

static int main_cancel_due_timer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    memset(&g_victim, 0, sizeof g_victim);
    g_done = tu_future();
    double past = asyncio_loop_time() - 1.0;
    CHECK_INT(asyncio_call_at(past, cb_cancel_victim, NULL, NULL), 0);
    CHECK_INT(asyncio_call_at(past, cb_log, "victim", &g_victim), 0);
    CHECK_INT(asyncio_call_at(past, tu_cb_set_future, g_done, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_handle_cancel_of_due_timer_in_same_iteration(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_due_timer, NULL, NULL), 0);
    assert_log("cancel=1 pending=0");
}

/* A handle stays safe after its callback ran: it must never reach a newer
 * callback that reuses the same storage. */
static int main_stale_handle(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t old[50], fresh[50];
    memset(old, 0, sizeof old);
    memset(fresh, 0, sizeof fresh);
    g_done = tu_future();
    for (int i = 0; i < 50; i++)
        CHECK_INT(asyncio_call_soon(cb_log, "old", &old[i]), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    for (int i = 0; i < 50; i++)
        CHECK_INT(asyncio_call_later(0.001, cb_log, "new", &fresh[i]), 0);
    CHECK_INT(asyncio_call_later(0.002, tu_cb_set_future, g_done, NULL), 0);
    for (int i = 0; i < 50; i++) {
        CHECK_INT(asyncio_handle_pending(&old[i]), 0);
        CHECK_INT(asyncio_handle_cancel(&old[i]), 0);
        CHECK_INT(asyncio_handle_pending(&fresh[i]), 1);
    }
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_stale_handle_never_touches_a_newer_callback(void **state)
{
    (void)state;
    char expected[512];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(expected + len, sizeof expected - len, "%s%s", i ? " " : "",
                                i < 50 ? "old" : "new");
    assert_int_equal(tu_run(main_stale_handle, NULL, NULL), 0);
    assert_log(expected);
}

/* ---- time ------------------------------------------------------------- */

static double g_t_inside;
static double g_slept;

static int main_loop_time(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_t_inside = asyncio_loop_time();
    double prev = g_t_inside;
    uint64_t prev_ns = asyncio_loop_time_ns();
    for (int i = 0; i < 1000; i++) {
        double t = asyncio_loop_time();
        uint64_t ns = asyncio_loop_time_ns();
        CHECK(t >= prev);
        CHECK(ns >= prev_ns);
        prev = t;
        prev_ns = ns;
    }
    double ta = asyncio_loop_time();
    uint64_t ns = asyncio_loop_time_ns();
    double tb = asyncio_loop_time();
    CHECK((double)ns / 1e9 >= ta - 1e-6);
    CHECK((double)ns / 1e9 <= tb + 1e-6);

    double t0 = asyncio_loop_time();
    CHECK_INT(asyncio_sleep(0.05), 0);
    double t1 = asyncio_loop_time();
    g_slept = t1 - t0;
    CHECK(t1 >= t0);
    return 0;
}

static void test_loop_time_is_monotonic_and_advances_with_sleep(void **state)
{
    (void)state;
    double before = asyncio_loop_time();
    uint64_t before_ns = asyncio_loop_time_ns();
    assert_true(before > 0);
    assert_true(before_ns > 0);
    assert_int_equal(tu_run(main_loop_time, NULL, NULL), 0);
    double after = asyncio_loop_time();
    /* The same clock inside and outside the loop. */
    assert_true(g_t_inside >= before);
    assert_true(after >= g_t_inside);
    assert_true(asyncio_loop_time_ns() >= before_ns);
    /* Lower bound only. */
    assert_true(g_slept >= 0.05 - 1e-6);
}

/* ---- asyncio_run ------------------------------------------------------ */

static int g_obj;

static int main_returns_7(void *arg, void **result)
{
    CHECK_PTR(arg, &g_obj);
    CHECK_PTR(*result, NULL);
    *result = &g_obj;
    return 7;
}

static void test_run_returns_main_value_and_result(void **state)
{
    (void)state;
    void *res = NULL;
    assert_int_equal(tu_run(main_returns_7, &g_obj, &res), 7);
    assert_ptr_equal(res, &g_obj);
    /* result may be NULL */
    assert_int_equal(tu_run(main_returns_7, &g_obj, NULL), 7);
}

static int main_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_sleep(0), 0);
    return -EIO;
}

static void test_run_returns_main_error(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_fails, NULL, NULL), -EIO);
}

static int main_returns_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -ECANCELED;
}

static int main_cancels_itself(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    return 0; /* never delivered: finishes cancelled */
}

static void test_run_returns_ecanceled_when_main_finishes_cancelled(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_returns_cancelled, NULL, NULL), -ECANCELED);
    assert_int_equal(tu_run(main_cancels_itself, NULL, NULL), -ECANCELED);
}

struct leftover {
    int started;
    int cancelled;
    int finished;
    int callback_ran;
};

static struct leftover g_left[4];

static void cb_leftover(void *arg) { ((struct leftover *)arg)->callback_ran = 1; }

static int leftover_task(void *arg, void **result)
{
    struct leftover *l = arg;
    (void)result;
    l->started = 1;
    int rc = asyncio_sleep(INFINITY);
    if (rc == -ECANCELED)
        l->cancelled = 1;
    /* Callbacks a task leaves ready when it ends still run. */
    if (asyncio_call_soon(cb_leftover, l, NULL) != 0)
        l->callback_ran = -1;
    l->finished = 1;
    return rc;
}

static int main_with_leftovers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    memset(g_left, 0, sizeof g_left);
    asyncio_task_t *t0 = tu_spawn(leftover_task, &g_left[0], "kept");
    CHECK_INT(asyncio_create_task(NULL, leftover_task, &g_left[1], "detached"), 0);
    asyncio_task_t *t2 = tu_spawn(leftover_task, &g_left[2], "released");
    asyncio_task_release(t2);
    CHECK_INT(asyncio_sleep(0), 0); /* let them start */
    CHECK_INT(asyncio_create_task(NULL, leftover_task, &g_left[3], "created last"), 0);
    CHECK_INT(asyncio_future_done(t0), 0);
    CHECK_INT((long long)asyncio_task_count(), 5);
    return 3;
}

static void test_run_cancels_tasks_still_alive_when_main_returns(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_with_leftovers, NULL, NULL), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g_left[i].started, 1);
        assert_int_equal(g_left[i].cancelled, 1);
        assert_int_equal(g_left[i].finished, 1);
        assert_int_equal(g_left[i].callback_ran, 1);
    }
    /* Created as main returns: as asyncio.run(), the loop runs one more
     * iteration (main's done callbacks: the one that stops it), in which
     * the task starts; then it is cancelled like the others. */
    assert_int_equal(g_left[3].started, 1);
    assert_int_equal(g_left[3].cancelled, 1);
    assert_int_equal(g_left[3].finished, 1);
    assert_null(asyncio_loop_backend());
    assert_int_equal((int)asyncio_task_count(), 0);
}

static int g_run_count;

static int main_counts(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT((long long)asyncio_task_count(), 1);
    CHECK(asyncio_loop_backend() != NULL);
    CHECK_INT(asyncio_sleep(0.001), 0);
    return ++g_run_count;
}

static void test_run_can_be_called_again_after_it_returned(void **state)
{
    (void)state;
    g_run_count = 0;
    assert_int_equal(tu_run(main_counts, NULL, NULL), 1);
    assert_int_equal(tu_run(main_counts, NULL, NULL), 2);
    assert_int_equal(tu_run(main_counts, NULL, NULL), 3);
}

/* ---- backends ------------------------------------------------------------ */

static char g_backend[32];

static void cb_backend_done(void *arg)
{
    const char *b = asyncio_loop_backend();
    CHECK_STR(b, g_backend);
    tu_cb_set_future(arg);
}

static int main_backend(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *b = asyncio_loop_backend();
    CHECK(b != NULL);
    snprintf(g_backend, sizeof g_backend, "%s", b ? b : "(null)");
    /* Exercise the poller a little: a timer, and a callback. */
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_call_later(0.002, cb_backend_done, f, NULL), 0);
    CHECK_INT(asyncio_await(f, NULL), 0);
    return 0;
}

static void test_loop_backend_name_follows_environment(void **state)
{
    (void)state;
    g_backend[0] = '\0';
    assert_null(asyncio_loop_backend());
    assert_int_equal(tu_run(main_backend, NULL, NULL), 0);
    const char *env = getenv("ASYNCIO_BACKEND");
    if (env && *env) {
        assert_string_equal(g_backend, env);
    } else {
#ifdef __linux__
        assert_string_equal(g_backend, "epoll");
#else
        assert_string_equal(g_backend, "poll");
#endif
    }
    assert_null(asyncio_loop_backend());
}

static void test_run_ex_backend_option_overrides_environment(void **state)
{
    (void)state;
    asyncio_run_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.backend = "poll";
    assert_int_equal(tu_run_ex(main_backend, NULL, NULL, &opts), 0);
    assert_string_equal(g_backend, "poll");
#ifdef __linux__
    opts.backend = "epoll";
    assert_int_equal(tu_run_ex(main_backend, NULL, NULL, &opts), 0);
    assert_string_equal(g_backend, "epoll");
#endif
    /* NULL options: as asyncio_run(). */
    assert_int_equal(tu_run_ex(main_backend, NULL, NULL, NULL), 0);
}

/* ---- stack sizes ------------------------------------------------------ */

static int main_uses_stack(void *arg, void **result)
{
    size_t n = *(size_t *)arg;
    (void)result;
    volatile unsigned char buf[4 * 1024];
    if (n > sizeof buf)
        n = sizeof buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)i;
    CHECK_INT(asyncio_sleep(0), 0);
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (unsigned char)i)
            return -EIO;
    return 0;
}

static void test_run_ex_accepts_stack_sizes_in_range(void **state)
{
    (void)state;
    size_t use = 4 * 1024;
    asyncio_run_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.stack_size = ASYNCIO_STACK_MIN;
    assert_int_equal(tu_run_ex(main_uses_stack, &use, NULL, &opts), 0);
    opts.stack_size = ASYNCIO_STACK_MIN + 1; /* rounded up */
    assert_int_equal(tu_run_ex(main_uses_stack, &use, NULL, &opts), 0);
    opts.stack_size = 0; /* default */
    assert_int_equal(tu_run_ex(main_uses_stack, &use, NULL, &opts), 0);
    opts.stack_size = 4 * 1024 * 1024;
    assert_int_equal(tu_run_ex(main_uses_stack, &use, NULL, &opts), 0);
}

/* ---- busy polling ------------------------------------------------------ */

static int main_returns_zero(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static void test_run_ex_rejects_busy_poll_out_of_range(void **state)
{
    (void)state;
    asyncio_run_options_t opts = {.busy_poll_us = ASYNCIO_BUSY_POLL_MAX_US + 1};
    assert_int_equal(tu_run_ex(main_returns_zero, NULL, NULL, &opts), -EINVAL);
    opts.busy_poll_us = UINT32_MAX;
    assert_int_equal(tu_run_ex(main_returns_zero, NULL, NULL, &opts), -EINVAL);
    opts.busy_poll_us = ASYNCIO_BUSY_POLL_MAX_US;
    assert_int_equal(tu_run_ex(main_returns_zero, NULL, NULL, &opts), 0);
}

/* $ASYNCIO_BUSY_POLL_US: a whole number of microseconds in range, else the
 * loop does not start; an option given in code is not overridden. */
static void test_busy_poll_environment_is_checked(void **state)
{
    (void)state;
    static const char *bad[] = {"x", "-1", "10us", "1e3", " 5", "1000001", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("ASYNCIO_BUSY_POLL_US", bad[i], 1), 0);
        assert_int_equal(tu_run(main_returns_zero, NULL, NULL), -EINVAL);
    }
    asyncio_run_options_t opts = {.busy_poll_us = 50};
    assert_int_equal(tu_run_ex(main_returns_zero, NULL, NULL, &opts), 0);
    static const char *good[] = {"", "0", "50", "1000000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(setenv("ASYNCIO_BUSY_POLL_US", good[i], 1), 0);
        assert_int_equal(tu_run(main_returns_zero, NULL, NULL), 0);
    }
}

static int unset_busy_poll_env(void **state)
{
    (void)state;
    return unsetenv("ASYNCIO_BUSY_POLL_US");
}

/* Bytes written by another thread one at a time, a little apart, while a
 * ticker sleeps: with busy polling the loop takes input that comes while it
 * spins, and timers still fire, none early. */
struct dribble {
    int fd;
    int n;
};

static void *dribble_body(void *arg)
{
    const struct dribble *d = arg;
    for (int i = 0; i < d->n; i++) {
        unsigned char c = (unsigned char)i;
        struct timespec ts = {0, (i % 3) * 150000}; /* 0, 150 or 300 us */
        nanosleep(&ts, NULL);
        if (write(d->fd, &c, 1) != 1)
            break;
    }
    return NULL;
}

static int ticker(void *arg, void **result)
{
    (void)result;
    int *early = arg;
    for (int i = 0; i < 20; i++) {
        double before = asyncio_loop_time();
        CHECK_INT(asyncio_sleep(0.001), 0);
        if (asyncio_loop_time() - before < 0.001)
            (*early)++;
    }
    return 0;
}

static int main_busy_poll_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int p[2];
    CHECK_INT(pipe(p), 0);
    int early = 0;
    asyncio_task_t *t = tu_spawn(ticker, &early, "ticker");
    struct dribble d = {p[1], 200};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, dribble_body, &d), 0);
    int got = 0;
    while (got < d.n) {
        CHECK_INT(asyncio_wait_readable(p[0]), 0);
        unsigned char buf[64];
        ssize_t n = read(p[0], buf, sizeof buf);
        CHECK(n > 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++, got++)
            CHECK_INT(buf[i], (unsigned char)got);
    }
    CHECK_INT(pthread_join(th, NULL), 0);
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(early, 0);
    CHECK_INT(asyncio_forget_fd(p[0]), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void test_busy_poll_takes_input_and_keeps_timers(void **state)
{
    (void)state;
    asyncio_run_options_t opts = {.busy_poll_us = 1000};
    assert_int_equal(tu_run_ex(main_busy_poll_input, NULL, NULL, &opts), 0);
}

/* A loop that sleeps longer than twice its budget stops spinning: twenty
 * 20 ms sleeps with a 5 ms budget and an fd watched would spin for 100 ms
 * if it spun before each; it may spin once. (CPU time, not a speed.) */
static int fd_waiter(void *arg, void **result)
{
    (void)result;
    return asyncio_wait_readable(*(int *)arg);
}

static int main_busy_poll_idle(void *arg, void **result)
{
    (void)result;
    double *cpu = arg;
    int p[2];
    CHECK_INT(pipe(p), 0);
    asyncio_task_t *t = tu_spawn(fd_waiter, &p[0], "waiter");
    CHECK_INT(asyncio_sleep(0), 0); /* the waiter registers its fd */
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int i = 0; i < 20; i++)
        CHECK_INT(asyncio_sleep(0.02), 0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    *cpu = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    asyncio_forget_fd(p[0]); /* the loop keeps the fd registered after a wait */
    close(p[0]);
    close(p[1]);
    return 0;
}

static void test_busy_poll_stops_when_sleeps_are_long(void **state)
{
    (void)state;
    asyncio_run_options_t opts = {.busy_poll_us = 5000};
    double cpu = 1;
    assert_int_equal(tu_run_ex(main_busy_poll_idle, &cpu, NULL, &opts), 0);
    if (cpu >= 0.05)
        fail_msg("the loop used %.3f s of CPU over 20 sleeps of 20 ms", cpu);
}

/* Huge delays saturate instead of wrapping around into the past. */
static int huge_sleeper(void *arg, void **result)
{
    (void)result;
    LOG("sleep:%s", tu_err(asyncio_sleep(*(const double *)arg)));
    return 0;
}

static int quick_result(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int main_huge_delays(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const double huge = 1e30, big = 1e12;
    asyncio_handle_t h[4];
    memset(h, 0, sizeof h);
    CHECK_INT(asyncio_call_later(huge, cb_log, "later-huge", &h[0]), 0);
    CHECK_INT(asyncio_call_later(big, cb_log, "later-big", &h[1]), 0);
    CHECK_INT(asyncio_call_at(huge, cb_log, "at-huge", &h[2]), 0);
    CHECK_INT(asyncio_call_at(INFINITY, cb_log, "at-inf", &h[3]), 0);
    asyncio_task_t *s1 = tu_spawn(huge_sleeper, (void *)&huge, NULL);
    asyncio_task_t *s2 = tu_spawn(huge_sleeper, (void *)&big, NULL);
    asyncio_task_t *q = tu_spawn(quick_result, &g_obj, NULL);
    void *res = NULL;
    CHECK_INT(asyncio_wait_for(q, huge, &res), 0);
    CHECK_PTR(res, &g_obj);
    CHECK_INT(asyncio_sleep(0.02), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(asyncio_handle_pending(&h[i]), 1);
        CHECK_INT(asyncio_handle_cancel(&h[i]), 1);
    }
    CHECK_INT(asyncio_future_done(s1), 0);
    CHECK_INT(asyncio_future_done(s2), 0);
    LOG("cancel");
    CHECK_INT(asyncio_task_cancel(s1), 1);
    CHECK_INT(asyncio_task_cancel(s2), 1);
    CHECK_INT(asyncio_await(s1, NULL), 0);
    CHECK_INT(asyncio_await(s2, NULL), 0);
    return 0;
}

static void test_huge_delays_never_fire(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_huge_delays, NULL, NULL), 0);
    assert_log("cancel sleep:ECANCELED sleep:ECANCELED");
}

/* Many timers at pseudo-random deadlines, some cancelled: they fire in
 * (deadline, scheduling order) order and cancelled ones never fire. */
#define N_RANDOM 2000
static int g_fired[N_RANDOM];
static int g_nfired;

static void cb_record(void *arg)
{
    if (g_nfired < N_RANDOM)
        g_fired[g_nfired] = (int)(intptr_t)arg;
    g_nfired++;
}

static double g_when[N_RANDOM];
static int g_cancelled[N_RANDOM];

static int main_random_timers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static asyncio_handle_t h[N_RANDOM];
    uint32_t seed = 12345;
    double now = asyncio_loop_time();
    g_nfired = 0;
    g_done = tu_future();
    for (int i = 0; i < N_RANDOM; i++) {
        seed = seed * 1103515245u + 12345u;
        /* 64 distinct deadlines in the next 20 ms: plenty of ties. */
        g_when[i] = now + 0.005 + (double)((seed >> 16) % 64) * 0.0002;
        g_cancelled[i] = 0;
        CHECK_INT(asyncio_call_at(g_when[i], cb_record, (void *)(intptr_t)i, &h[i]), 0);
    }
    for (int i = 0; i < N_RANDOM; i++) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 4 == 0) {
            g_cancelled[i] = 1;
            CHECK_INT(asyncio_handle_cancel(&h[i]), 1);
        }
    }
    CHECK_INT(asyncio_call_at(now + 0.03, tu_cb_set_future, g_done, NULL), 0);
    CHECK_INT(asyncio_await(g_done, NULL), 0);
    return 0;
}

static void test_many_timers_fire_in_deadline_then_scheduling_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_random_timers, NULL, NULL), 0);
    int expected = 0;
    for (int i = 0; i < N_RANDOM; i++)
        expected += !g_cancelled[i];
    assert_int_equal(g_nfired, expected);
    for (int k = 0; k < g_nfired; k++)
        assert_int_equal(g_cancelled[g_fired[k]], 0);
    for (int k = 1; k < g_nfired; k++) {
        int a = g_fired[k - 1], b = g_fired[k];
        assert_true(g_when[a] < g_when[b] || (g_when[a] == g_when[b] && a < b));
    }
}

/* ---- one loop per thread ------------------------------------------------ */

static pthread_barrier_t g_barrier;

static int main_trivial_for_thread(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

struct thread_run {
    int id;
    int rc;
    void *res;
    size_t count_at_barrier;
    int sleeps_ok;
    int ticks;
};

static void cb_tick(void *arg) { ((struct thread_run *)arg)->ticks++; }

static int thread_main(void *arg, void **result)
{
    struct thread_run *t = arg;
    /* Both threads' loops are running at this point. */
    pthread_barrier_wait(&g_barrier);
    t->count_at_barrier = asyncio_task_count();
    t->sleeps_ok = 1;
    for (int i = 0; i < 5; i++) {
        if (asyncio_call_soon(cb_tick, t, NULL) != 0)
            t->sleeps_ok = 0;
        if (asyncio_sleep(0.002) != 0)
            t->sleeps_ok = 0;
    }
    *result = t;
    return 10 + t->id;
}

static void *thread_body(void *arg)
{
    struct thread_run *t = arg;
    t->rc = asyncio_run(thread_main, t, &t->res);
    return NULL;
}

static void test_run_in_two_threads_at_once(void **state)
{
    (void)state;
    struct thread_run runs[2];
    pthread_t th[2];
    memset(runs, 0, sizeof runs);
    assert_int_equal(pthread_barrier_init(&g_barrier, NULL, 2), 0);
    for (int i = 0; i < 2; i++) {
        runs[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, thread_body, &runs[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&g_barrier);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(runs[i].rc, 10 + i);
        assert_ptr_equal(runs[i].res, &runs[i]);
        assert_int_equal((int)runs[i].count_at_barrier, 1);
        assert_int_equal(runs[i].sleeps_ok, 1);
        assert_int_equal(runs[i].ticks, 5);
    }
    /* No loop is left behind in this thread. */
    assert_null(asyncio_loop_backend());
}

/* Another thread has no loop, even while this one runs one. */
struct other_thread_result {
    int call_soon;
    int future_new;
    int create_task;
    int sleep;
    size_t count;
    int current_is_null;
};

static void *other_thread_body(void *arg)
{
    struct other_thread_result *r = arg;
    asyncio_future_t *f = NULL;
    r->call_soon = asyncio_call_soon(cb_log, "other-thread", NULL);
    r->future_new = asyncio_future_new(&f);
    r->create_task = asyncio_create_task(NULL, main_trivial_for_thread, NULL, NULL);
    r->sleep = asyncio_sleep(0);
    r->count = asyncio_task_count();
    r->current_is_null = asyncio_current_task() == NULL && asyncio_loop_backend() == NULL;
    return NULL;
}

static int main_other_thread(void *arg, void **result)
{
    struct other_thread_result *r = arg;
    pthread_t th;
    (void)result;
    CHECK_INT(pthread_create(&th, NULL, other_thread_body, r), 0);
    CHECK_INT(pthread_join(th, NULL), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

/* ---- closing with callbacks still scheduled ----------------------------- */

/* Timers still pending when the loop closes: their handles live in slabs
 * that close frees, so the timer heap must be let go of first (ASan and
 * valgrind saw the heap's teardown write into freed slabs). Enough timers
 * for several slabs, one pending call_soon, and a timer scheduled by a
 * callback that runs while the loop winds down. */
static void cb_schedule_late(void *arg)
{
    (void)arg;
    LOG("late");
    CHECK_INT(asyncio_call_later(10.0, cb_log, "never", NULL), 0);
}

static int main_close_with_timers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t h;
    for (int i = 0; i < 600; i++)
        CHECK_INT(asyncio_call_later(10.0 + i * 0.001, cb_log, "never", i == 300 ? &h : NULL), 0);
    CHECK_INT(asyncio_handle_cancel(&h), 1);
    CHECK_INT(asyncio_call_at(asyncio_loop_time() + 3600.0, cb_log, "never", NULL), 0);
    CHECK_INT(asyncio_call_soon(cb_schedule_late, NULL, NULL), 0);
    LOG("return");
    return 0;
}

/* A task created by a callback that runs while the loop winds down never
 * runs (the loop does not poll again), and is freed with the rest. */
static int never_runs(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("ran");
    return 0;
}

static void on_main_done_create_task(asyncio_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    LOG("main-done");
    CHECK_INT(asyncio_create_task(NULL, never_runs, NULL, "late-task"), 0);
}

static int main_create_task_at_close(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_future_add_done_callback(asyncio_current_task(), on_main_done_create_task,
                                               NULL),
              0);
    LOG("return");
    return 0;
}

static void test_task_created_while_the_loop_winds_down_never_runs(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_create_task_at_close, NULL, NULL), 0);
    assert_log("return main-done");
}

static void test_close_with_timers_pending_frees_them_cleanly(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_close_with_timers, NULL, NULL), 0);
    assert_log("return late");
    /* And the next loop of this thread starts from a clean heap. */
    assert_int_equal(tu_run(main_close_with_timers, NULL, NULL), 0);
    assert_log("return late");
}

/* ---- where callbacks run, and fairness, while tasks stay ready ---------- */

/* While tasks stay ready, the loop begins the next iteration from the stack
 * of the task that parks last (the fast path). A callback the poll calls
 * for there (here: a signal handler, read from the loop's signalfd) must
 * still run from the loop's own context: no current task, -EPERM for a
 * waiting call (it used to park the parked task a second time and hang),
 * and on the thread's own stack, never a task's. */
struct cb_seen {
    int calls;
    int current_null;
    int on_thread_stack;
    int sleep_rc;
};

static char *g_stack_lo, *g_stack_hi; /* the thread's own stack */

static void find_thread_stack(void)
{
    pthread_attr_t a;
    void *addr;
    size_t size;
    assert_int_equal(pthread_getattr_np(pthread_self(), &a), 0);
    assert_int_equal(pthread_attr_getstack(&a, &addr, &size), 0);
    pthread_attr_destroy(&a);
    g_stack_lo = addr;
    g_stack_hi = (char *)addr + size;
}

static void record_context(struct cb_seen *seen)
{
    char here;
    seen->calls++;
    seen->current_null += asyncio_current_task() == NULL;
    seen->on_thread_stack += &here >= g_stack_lo && &here < g_stack_hi;
    /* Only where it cannot hang: inside a parked task it would park it. */
    if (asyncio_current_task() == NULL)
        seen->sleep_rc = asyncio_sleep(0);
}

static void on_usr1(int sig, void *arg)
{
    (void)sig;
    record_context(arg);
}

static void cb_record_context(void *arg) { record_context(arg); }

static void done_record_context(asyncio_future_t *f, void *arg)
{
    (void)f;
    record_context(arg);
}

struct yielder {
    int n;
    int raise_at; /* -1: never */
};

static int yielder(void *arg, void **result)
{
    struct yielder *y = arg;
    (void)result;
    for (int i = 0; i < y->n; i++) {
        if (i == y->raise_at)
            tu_raise(SIGUSR1);
        CHECK_INT(asyncio_sleep(0), 0);
    }
    return 0;
}

static int main_callbacks_while_tasks_ready(void *arg, void **result)
{
    struct cb_seen *seen = arg;
    (void)result;
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, on_usr1, &seen[0]), 0);
    struct yielder a = {200, 20}, b = {200, -1};
    asyncio_task_t *ta = tu_spawn(yielder, &a, "a");
    asyncio_task_t *tb = tu_spawn(yielder, &b, "b");
    /* Callbacks of the other kinds, scheduled while the two keep yielding. */
    tu_yield(5);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_future_add_done_callback(f, done_record_context, &seen[1]), 0);
    CHECK_INT(asyncio_future_set_result(f, NULL), 0);
    CHECK_INT(asyncio_call_soon(cb_record_context, &seen[2], NULL), 0);
    CHECK_INT(asyncio_await(ta, NULL), 0);
    CHECK_INT(asyncio_await(tb, NULL), 0);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR1), 1);
    asyncio_task_release(ta);
    asyncio_task_release(tb);
    asyncio_future_release(f);
    return 0;
}

static void test_callbacks_run_on_the_loop_stack_while_tasks_stay_ready(void **state)
{
    (void)state;
    find_thread_stack();
    static const char *backends[] = {"epoll", "poll"};
    static const char *kinds[] = {"signal handler", "done callback", "call_soon callback"};
    for (int b = 0; b < 2; b++) {
        struct cb_seen seen[3];
        memset(seen, 0, sizeof seen);
        asyncio_run_options_t opts = {.backend = backends[b]};
        assert_int_equal(tu_run_ex(main_callbacks_while_tasks_ready, seen, NULL, &opts), 0);
        for (int k = 0; k < 3; k++) {
            if (seen[k].calls != 1 || seen[k].current_null != 1 || seen[k].on_thread_stack != 1 ||
                seen[k].sleep_rc != -EPERM)
                fail_msg("%s, %s: calls %d, without a current task %d, on the thread's stack %d, "
                         "sleep(0) %s", backends[b], kinds[k], seen[k].calls,
                         seen[k].current_null, seen[k].on_thread_stack, tu_err(seen[k].sleep_rc));
        }
    }
}

/* 40 tasks waiting on always-readable pipes and one task that yields: every
 * reader is served within a bounded number of iterations on every backend.
 * The fast path asks for at most a few dozen events; the poll backend used
 * to report from its first slot every time, and 8 of the 40 starved. */
#define N_READERS 40
#define N_YIELDS 2000

struct reader {
    int fd;
    int wakes;
    const int *stop;
};

static int always_readable_reader(void *arg, void **result)
{
    struct reader *r = arg;
    (void)result;
    while (!*r->stop) {
        int rc = asyncio_wait_readable(r->fd);
        if (rc < 0)
            return rc;
        r->wakes++;
    }
    return 0;
}

static int main_fair_readers(void *arg, void **result)
{
    struct reader *readers = arg;
    (void)result;
    static int stop;
    stop = 0;
    int pipes[N_READERS][2];
    asyncio_task_t *tasks[N_READERS];
    for (int i = 0; i < N_READERS; i++) {
        CHECK_INT(pipe(pipes[i]), 0);
        CHECK_INT(write(pipes[i][1], "x", 1), 1); /* never read: always ready */
        readers[i] = (struct reader){pipes[i][0], 0, &stop};
        tasks[i] = tu_spawn(always_readable_reader, &readers[i], NULL);
    }
    tu_yield(N_YIELDS);
    stop = 1;
    CHECK_INT(asyncio_gather(N_READERS, tasks, NULL, NULL, 0), 0);
    for (int i = 0; i < N_READERS; i++) {
        asyncio_task_release(tasks[i]);
        asyncio_forget_fd(pipes[i][0]);
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    return 0;
}

static void test_every_ready_fd_is_served_on_every_backend(void **state)
{
    (void)state;
    static const char *backends[] = {"epoll", "poll"};
    for (int b = 0; b < 2; b++) {
        struct reader readers[N_READERS];
        asyncio_run_options_t opts = {.backend = backends[b]};
        assert_int_equal(tu_run_ex(main_fair_readers, readers, NULL, &opts), 0);
        int least = INT32_MAX, most = 0;
        for (int i = 0; i < N_READERS; i++) {
            least = readers[i].wakes < least ? readers[i].wakes : least;
            most = readers[i].wakes > most ? readers[i].wakes : most;
        }
        /* Each is served at least every other iteration: about N_YIELDS
         * wakes; a quarter of that leaves room for how the loop batches. */
        if (least < N_YIELDS / 4)
            fail_msg("%s: a reader was woken %d times, another %d, in %d iterations",
                     backends[b], least, most, N_YIELDS);
    }
}

static void test_other_threads_see_no_loop(void **state)
{
    (void)state;
    struct other_thread_result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(tu_run(main_other_thread, &r, NULL), 0);
    assert_int_equal(r.call_soon, -EPERM);
    assert_int_equal(r.future_new, -EPERM);
    assert_int_equal(r.create_task, -EPERM);
    assert_int_equal(r.sleep, -EPERM);
    assert_int_equal((int)r.count, 0);
    assert_int_equal(r.current_is_null, 1);
    assert_log("");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_soon_runs_callbacks_in_fifo_order),
        cmocka_unit_test(test_sleep0_lets_ready_callbacks_run_first),
        cmocka_unit_test(test_callbacks_scheduled_from_callbacks_keep_fifo_order),
        cmocka_unit_test(test_callback_scheduled_from_callback_runs_in_next_iteration),
        cmocka_unit_test(test_call_at_runs_callbacks_in_deadline_order),
        cmocka_unit_test(test_call_at_equal_deadlines_run_in_scheduling_order),
        cmocka_unit_test(test_call_at_in_the_past_runs_in_scheduling_order),
        cmocka_unit_test(test_call_later_runs_callbacks_by_delay),
        cmocka_unit_test(test_call_later_infinite_delay_never_fires),
        cmocka_unit_test(test_huge_delays_never_fire),
        cmocka_unit_test(test_many_timers_fire_in_deadline_then_scheduling_order),
        cmocka_unit_test(test_handle_cancel_call_soon_callback_never_runs),
        cmocka_unit_test(test_handle_cancel_after_callback_ran_returns_0),
        cmocka_unit_test(test_handle_garbage_or_of_another_loop_is_refused),
        cmocka_unit_test(test_handle_cancel_timers_never_fire),
        cmocka_unit_test(test_handle_cancel_of_callback_ready_in_same_iteration),
        cmocka_unit_test(test_handle_cancel_of_due_timer_in_same_iteration),
        cmocka_unit_test(test_stale_handle_never_touches_a_newer_callback),
        cmocka_unit_test(test_loop_time_is_monotonic_and_advances_with_sleep),
        cmocka_unit_test(test_run_returns_main_value_and_result),
        cmocka_unit_test(test_run_returns_main_error),
        cmocka_unit_test(test_run_returns_ecanceled_when_main_finishes_cancelled),
        cmocka_unit_test(test_run_cancels_tasks_still_alive_when_main_returns),
        cmocka_unit_test(test_run_can_be_called_again_after_it_returned),
        cmocka_unit_test(test_loop_backend_name_follows_environment),
        cmocka_unit_test(test_run_ex_backend_option_overrides_environment),
        cmocka_unit_test(test_run_ex_accepts_stack_sizes_in_range),
        cmocka_unit_test(test_run_ex_rejects_busy_poll_out_of_range),
        cmocka_unit_test_teardown(test_busy_poll_environment_is_checked, unset_busy_poll_env),
        cmocka_unit_test(test_busy_poll_takes_input_and_keeps_timers),
        cmocka_unit_test(test_busy_poll_stops_when_sleeps_are_long),
        cmocka_unit_test(test_run_in_two_threads_at_once),
        cmocka_unit_test(test_other_threads_see_no_loop),
        cmocka_unit_test(test_close_with_timers_pending_frees_them_cleanly),
        cmocka_unit_test(test_task_created_while_the_loop_winds_down_never_runs),
        cmocka_unit_test(test_callbacks_run_on_the_loop_stack_while_tasks_stay_ready),
        cmocka_unit_test(test_every_ready_fd_is_served_on_every_backend),
    };
    return tu_run_group_tests_name("loop", tests, NULL, NULL);
}
