/*
 * The loop's life cycle and the embedding API (<asyncio/loop.h>, "the
 * loop's life cycle" and "embedding"): asyncio_new_event_loop(),
 * asyncio_get_event_loop(), asyncio_get_running_loop(), references,
 * asyncio_loop_run_until_complete(), run_forever(), stop() (from any
 * thread), is_running(), is_closed(), close(), backend_fd() and
 * run_nowait().
 *
 * The order tests mirror CPython's asyncio (loop.run_until_complete(),
 * run_forever(), stop(), close(), asyncio.Runner): each names the Python
 * scenario it follows and the order CPython 3.11 prints for it.
 *
 * Bounds: every loop a test makes with new_loop() has a guard timer
 * (GUARD_S): a run that does not return when it should is stopped by it
 * and the test fails naming it. The tests whose loop must sleep with no
 * timer at all (a stop from another thread) have a guard thread instead,
 * which ends the program with a message (block_guard). Waits for other
 * threads are sem_timedwait()s; the embedding tests' poll() loops have a
 * deadline.
 *
 * Timing: only order and "not before" are asserted, never how long
 * something took.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#define GUARD_S TU_TEST_TIMEOUT /* a run that should have returned is stopped */
#define WAIT_S 10.0             /* bound of every wait for another thread */

static const char *const backends[] = {"epoll", "poll"};
#define NBACKENDS (sizeof backends / sizeof backends[0])

/* ---- helpers ------------------------------------------------------------- */

/* sem_wait() for at most seconds: 0 or -ETIMEDOUT (-errno). */
static int sem_wait_s(sem_t *s, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(s, &ts) != 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The guard timer of the loop new_loop() made (see the top). */
static asyncio_handle_t g_guard;

/* The reference new_loop_ex() gave the test, until drop_loop(): a failed
 * test's teardown drops it, so that a failure leaks nothing either. */
static asyncio_loop_t *g_made;

static void drop_loop(asyncio_loop_t *loop)
{
    if (loop == g_made)
        g_made = NULL;
    asyncio_loop_unref(loop);
}

static void guard_fire(void *arg)
{
    (void)arg;
    tu_fail_at(__FILE__, __LINE__, "guard: the run was still going after %g s", (double)GUARD_S);
    asyncio_loop_stop(asyncio_get_running_loop());
}

/* A loop for this thread (backend NULL: the environment's), with a guard
 * timer if guard; the caller closes it with close_loop(). */
static asyncio_loop_t *new_loop_ex(const char *backend, bool guard)
{
    asyncio_run_options_t opts = {.backend = backend};
    asyncio_loop_t *loop = NULL;
    int rc = asyncio_new_event_loop(&loop, &opts);
    if (rc != 0)
        fail_msg("asyncio_new_event_loop(%s): %s", backend ? backend : "default", tu_err(rc));
    assert_non_null(loop);
    g_made = loop;
    memset(&g_guard, 0, sizeof g_guard);
    if (guard)
        assert_int_equal(asyncio_call_later(GUARD_S, guard_fire, NULL, &g_guard), 0);
    return loop;
}

static asyncio_loop_t *new_loop(void)
{
    tu_reset();
    return new_loop_ex(NULL, true);
}

static void close_loop(asyncio_loop_t *loop)
{
    assert_int_equal(asyncio_loop_close(loop), 0);
    assert_int_equal(asyncio_loop_is_closed(loop), 1);
    assert_null(asyncio_get_event_loop());
    drop_loop(loop);
    tu_check_failures();
}

/* Per test: no loop left in this thread by the one before (a failed
 * test's loop is closed by its teardown, so that the next test can make
 * its own). */
static int setup_no_loop(void **state)
{
    (void)state;
    tu_reset();
    return asyncio_get_event_loop() == NULL ? 0 : -1;
}

static int teardown_no_loop(void **state)
{
    (void)state;
    /* Only a failed test leaves one (the others end with close_loop()). */
    asyncio_loop_t *left = asyncio_get_event_loop();
    if (left) {
        fprintf(stderr, "test_runner: closing the loop the failed test left open\n");
        asyncio_loop_close(left);
    }
    if (g_made)
        drop_loop(g_made);
    return 0;
}

#define runner_test(fn) cmocka_unit_test_setup_teardown(fn, setup_no_loop, teardown_no_loop)

/* Callbacks that log. */
static void cb_log(void *arg)
{
    LOG("%s", (const char *)arg);
}

/* Logs its name, then schedules cb_log(next). */
struct chain {
    const char *name, *next;
};

static void cb_chain(void *arg)
{
    struct chain *c = arg;
    LOG("%s", c->name);
    CHECK_INT(asyncio_call_soon(cb_log, (void *)c->next, NULL), 0);
}

/* Stops the running loop. */
static void cb_stop(void *arg)
{
    (void)arg;
    CHECK_INT(asyncio_loop_stop(asyncio_get_running_loop()), 0);
}

/* Schedules cb_stop: the run stops at the end of the next iteration. */
static void cb_stop_next_time(void *arg)
{
    (void)arg;
    CHECK_INT(asyncio_call_soon(cb_stop, NULL, NULL), 0);
}

/* Logs its name, stops the running loop, schedules cb_log(next). */
static void cb_log_stop_chain(void *arg)
{
    struct chain *c = arg;
    LOG("%s", c->name);
    CHECK_INT(asyncio_loop_stop(asyncio_get_running_loop()), 0);
    CHECK_INT(asyncio_call_soon(cb_log, (void *)c->next, NULL), 0);
}

/* Run loop until a callback scheduled now (after what is ready already)
 * stops it: the rest of what is ready runs. */
static void run_one_more(asyncio_loop_t *loop)
{
    assert_int_equal(asyncio_call_soon(cb_stop, NULL, NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
}

/* A guard thread for a run that nothing in the loop bounds (the loop
 * sleeps with no timer): if the run has not returned within seconds, the
 * program ends with a message naming it. */
struct block_guard {
    sem_t done;
    pthread_t thread;
    const char *what;
    double seconds;
};

static void *block_guard_main(void *arg)
{
    struct block_guard *g = arg;
    if (sem_wait_s(&g->done, g->seconds) != 0) {
        fprintf(stderr, "test_runner: %s: still blocked after %g s (hung)\n", g->what, g->seconds);
        _exit(1);
    }
    return NULL;
}

static void block_guard_start(struct block_guard *g, const char *what)
{
    g->what = what;
    g->seconds = WAIT_S;
    assert_int_equal(sem_init(&g->done, 0, 0), 0);
    assert_int_equal(pthread_create(&g->thread, NULL, block_guard_main, g), 0);
}

static void block_guard_end(struct block_guard *g)
{
    sem_post(&g->done);
    assert_int_equal(pthread_join(g->thread, NULL), 0);
    sem_destroy(&g->done);
}

/* ---- order: stop() and run_forever() ------------------------------------- */

/* Python:
 *     def a(): log("a"); loop.stop(); loop.call_soon(log, "a-sched")
 *     def b(): log("b"); loop.call_soon(log, "b-sched")
 *     loop.call_soon(a); loop.call_soon(b); loop.run_forever(); log("|")
 *     loop.call_soon(loop.stop); loop.run_forever()
 * prints "a b | a-sched b-sched": the iteration under way runs what it
 * had ready; what those schedule runs at the next run. */
static void test_stop_in_a_callback_ends_the_run_after_that_iteration(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    struct chain a = {"a", "a-sched"}, b = {"b", "b-sched"};
    assert_int_equal(asyncio_call_soon(cb_log_stop_chain, &a, NULL), 0);
    assert_int_equal(asyncio_call_soon(cb_chain, &b, NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    LOG("|");
    run_one_more(loop);
    assert_log("a b | a-sched b-sched");
    close_loop(loop);
}

/* Python:
 *     async def t(): log("t1"); loop.stop(); await asyncio.sleep(0); log("t2")
 *     loop.create_task(t()); loop.call_soon(log, "c"); loop.run_forever()
 *     log("|"); loop.call_soon(loop.stop); loop.run_forever()
 * prints "t1 c | t2". */
static int task_stops_then_yields(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("t1");
    CHECK_INT(asyncio_loop_stop(asyncio_get_running_loop()), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("t2");
    return 0;
}

static void test_stop_in_a_task_ends_the_run_after_that_iteration(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_create_task(NULL, task_stops_then_yields, NULL, "t"), 0);
    assert_int_equal(asyncio_call_soon(cb_log, "c", NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    LOG("|");
    run_one_more(loop);
    assert_log("t1 c | t2");
    close_loop(loop);
}

/* Python:
 *     loop.stop(); loop.call_soon(log, "x")
 *     def y(): log("y"); loop.call_soon(log, "y2")
 *     loop.call_soon(y); loop.run_forever(); log("|")
 *     loop.call_soon(loop.stop); loop.run_forever()
 * prints "x y | y2": one iteration, which does not sleep (the guard timer
 * is GUARD_S away), then the run returns. Two stops before a run are one
 * stop: the next run goes on until stopped again. */
static void test_stop_before_run_forever_runs_one_iteration(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_stop(loop), 0);
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    struct chain y = {"y", "y2"};
    assert_int_equal(asyncio_call_soon(cb_log, "x", NULL), 0);
    assert_int_equal(asyncio_call_soon(cb_chain, &y, NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    LOG("|");
    run_one_more(loop);
    assert_log("x y | y2");

    /* Nothing ready at all: one iteration that polls, no sleep. */
    tu_log_reset();
    assert_int_equal(asyncio_loop_stop(loop), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    assert_log("");

    /* Twice: one stop, consumed by the first run. */
    assert_int_equal(asyncio_loop_stop(loop), 0);
    assert_int_equal(asyncio_loop_stop(loop), 0);
    assert_int_equal(asyncio_call_soon(cb_log, "one", NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    LOG("|");
    /* Two iterations: p, then p2 and the stop. */
    struct chain p = {"p", "p2"};
    assert_int_equal(asyncio_call_soon(cb_chain, &p, NULL), 0);
    assert_int_equal(asyncio_call_soon(cb_stop_next_time, NULL, NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    assert_log("one | p p2");
    close_loop(loop);
}

/* ---- order: run_until_complete() ----------------------------------------- */

/* Python:
 *     async def main():
 *         log("main")
 *         def cb1(): log("cb1"); loop.call_soon(log, "cb2")
 *         loop.call_soon(cb1); return 7
 *     r = loop.run_until_complete(main()); log("|")
 *     loop.call_soon(loop.stop); loop.run_forever()
 * prints "main cb1 | cb2" (r == 7): the loop stops in the iteration after
 * the task finished (its done callback stops it), where cb1 runs too. */
static struct chain g_cb1 = {"cb1", "cb2"};

static int main_schedules_then_returns(void *arg, void **result)
{
    LOG("main");
    CHECK_INT(asyncio_call_soon(cb_chain, &g_cb1, NULL), 0);
    *result = arg;
    return 7;
}

static void test_run_until_complete_stops_in_the_iteration_after_the_task(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    int token;
    void *result = NULL;
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_schedules_then_returns, &token,
                                                     &result),
                     7);
    assert_ptr_equal(result, &token);
    LOG("|");
    run_one_more(loop);
    assert_log("main cb1 | cb2");
    close_loop(loop);
}

static int main_returns_arg(void *arg, void **result)
{
    LOG("ret:%d", (int)(intptr_t)arg);
    CHECK_INT(asyncio_sleep(0), 0);
    *result = arg;
    return (int)(intptr_t)arg;
}

static int main_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("fail");
    return -EIO;
}

static int main_cancels_itself(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    int rc = asyncio_sleep(0);
    LOG("self:%s", tu_err(rc));
    return rc;
}

/* loop.run_until_complete() as many times as one likes on one loop, each
 * with its own outcome (a result, an error, a cancellation). */
static void test_run_until_complete_twice_and_more_on_one_loop(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    void *result = NULL;
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_returns_arg, (void *)(intptr_t)1,
                                                     &result),
                     1);
    assert_ptr_equal(result, (void *)(intptr_t)1);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_returns_arg, (void *)(intptr_t)2,
                                                     &result),
                     2);
    assert_ptr_equal(result, (void *)(intptr_t)2);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_fails, NULL, NULL), -EIO);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_cancels_itself, NULL, NULL),
                     -ECANCELED);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_returns_arg, (void *)(intptr_t)3,
                                                     NULL),
                     3);
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    assert_int_equal((int)asyncio_task_count(), 0);
    assert_log("ret:1 ret:2 fail self:ECANCELED ret:3");
    close_loop(loop);
}

/* Python (a loop that is not running takes tasks and callbacks):
 *     async def t1(): log("t1"); await asyncio.sleep(0); log("t1b")
 *     async def t2(): log("t2")
 *     async def main():
 *         log("main:running=%d" % loop.is_running())
 *         await asyncio.sleep(0); log("main2")
 *     loop.create_task(t1()); loop.call_soon(log, "cb1")
 *     loop.call_later(0, log, "timer0"); loop.create_task(t2())
 *     loop.run_until_complete(main())
 * prints "t1 cb1 t2 main:running=1 timer0 t1b main2". */
static int t1_yields(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("t1");
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("t1b");
    return 0;
}

static int t2_logs(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("t2");
    return 0;
}

static int main_logs_running(void *arg, void **result)
{
    (void)result;
    asyncio_loop_t *loop = arg;
    LOG("main:running=%d", asyncio_loop_is_running(loop));
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("main2");
    return 0;
}

static void test_tasks_and_callbacks_made_before_the_first_run(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    asyncio_task_t *t1 = NULL;
    assert_int_equal(asyncio_create_task(&t1, t1_yields, NULL, "t1"), 0);
    assert_int_equal(asyncio_call_soon(cb_log, "cb1", NULL), 0);
    assert_int_equal(asyncio_call_later(0, cb_log, "timer0", NULL), 0);
    assert_int_equal(asyncio_create_task(NULL, t2_logs, NULL, "t2"), 0);
    /* Nothing ran: the loop is not running. */
    assert_int_equal((int)asyncio_task_count(), 2);
    assert_int_equal(asyncio_future_done(t1), 0);
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    assert_null(asyncio_get_running_loop());
    assert_ptr_equal(asyncio_get_event_loop(), loop);
    assert_log("");
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_logs_running, loop, NULL), 0);
    assert_log("t1 cb1 t2 main:running=1 timer0 t1b main2");
    assert_int_equal(asyncio_future_done(t1), 1);
    asyncio_task_release(t1);
    close_loop(loop);
}

/* Python:
 *     async def bg(): log("bg1"); await sleep(0); log("bg2"); await sleep(0)
 *                     log("bg3"); await sleep(0); log("bg4")
 *     async def m1(): loop.create_task(bg()); await sleep(0); log("m1-end")
 *     async def m2(): log("m2"); await sleep(0); log("m2-end")
 *     loop.run_until_complete(m1()); log("|")
 *     loop.run_until_complete(m2()); log("|")
 * prints "bg1 m1-end bg2 | bg3 m2 bg4 m2-end |": a task left pending by
 * one run goes on at the next, where it was. */
static int bg_four_steps(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 1; i <= 4; i++) {
        if (i > 1 && asyncio_sleep(0) != 0)
            return -ECANCELED;
        LOG("bg%d", i);
    }
    return 0;
}

static int m1_spawns_bg(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_create_task(NULL, bg_four_steps, NULL, "bg"), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("m1-end");
    return 0;
}

static int m2_two_steps(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("m2");
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("m2-end");
    return 0;
}

static void test_a_task_left_pending_goes_on_at_the_next_run(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_run_until_complete(loop, m1_spawns_bg, NULL, NULL), 0);
    assert_int_equal((int)asyncio_task_count(), 1);
    LOG("|");
    assert_int_equal(asyncio_loop_run_until_complete(loop, m2_two_steps, NULL, NULL), 0);
    LOG("|");
    assert_log("bg1 m1-end bg2 | bg3 m2 bg4 m2-end |");
    assert_int_equal((int)asyncio_task_count(), 0);
    close_loop(loop);
}

/* Python:
 *     async def m2():
 *         log("m2-start"); loop.stop(); await sleep(0)
 *         log("m2-resumed"); await sleep(0); log("m2-end"); return 1
 *     t = loop.create_task(m2())
 *     loop.run_until_complete(t)   # RuntimeError: Event loop stopped
 *                                  # before Future completed.
 *     log("done=%s" % t.done())    # False
 *     loop.run_until_complete(t)   # 1
 * prints "m2-start EINTR done=0 | m2-resumed m2-end again=1": stopped
 * early, the task is left running and goes on at the next run. */
static asyncio_task_t *g_stopped_task;

static int main_stops_early(void *arg, void **result)
{
    (void)arg;
    LOG("m2-start");
    g_stopped_task = asyncio_future_retain(asyncio_current_task());
    CHECK_INT(asyncio_loop_stop(asyncio_get_running_loop()), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("m2-resumed");
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("m2-end");
    *result = (void *)(intptr_t)1;
    return 1;
}

static int main_awaits_stopped_task(void *arg, void **result)
{
    (void)arg;
    return asyncio_await(g_stopped_task, result);
}

static void test_run_until_complete_stopped_early_is_eintr_and_the_task_goes_on(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    g_stopped_task = NULL;
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_stops_early, NULL, NULL), -EINTR);
    LOG("EINTR");
    assert_non_null(g_stopped_task);
    LOG("done=%d", asyncio_future_done(g_stopped_task));
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    LOG("|");
    void *result = NULL;
    int rc = asyncio_loop_run_until_complete(loop, main_awaits_stopped_task, NULL, &result);
    LOG("again=%d", rc);
    assert_ptr_equal(result, (void *)(intptr_t)1);
    assert_log("m2-start EINTR done=0 | m2-resumed m2-end again=1");
    asyncio_task_release(g_stopped_task);
    close_loop(loop);
}

/* Python:
 *     async def m3():
 *         log("start"); loop.stop()
 *         try: await asyncio.sleep(0)
 *         except CancelledError: log("first:ECANCELED"); raise
 *     loop.run_until_complete(m3())    # RuntimeError
 *     ... then asyncio.Runner's close: cancel, run until they end
 * prints "start EINTR first:ECANCELED": a task stopped early is cancelled
 * at the close, at the wait where it was left. */
static int main_stops_then_waits(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("start");
    CHECK_INT(asyncio_loop_stop(asyncio_get_running_loop()), 0);
    int rc = asyncio_sleep(0);
    LOG("first:%s", tu_err(rc));
    if (rc == 0) {
        rc = asyncio_sleep(100);
        LOG("second:%s", tu_err(rc));
    }
    return rc;
}

static void test_run_until_complete_stopped_early_then_closed_cancels_the_task(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_stops_then_waits, NULL, NULL),
                     -EINTR);
    LOG("EINTR");
    assert_int_equal((int)asyncio_task_count(), 1);
    close_loop(loop);
    assert_log("start EINTR first:ECANCELED");
}

/* Python:
 *     async def m(): log("m:1"); await sleep(0); log("m:2")
 *     loop.stop(); loop.run_until_complete(m())   # RuntimeError
 *     log("EINTR"); ...next run
 * prints "m:1 EINTR | m:2": a stop made before the run stops it after one
 * iteration, the task's first step. */
static int main_two_steps(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("m:1");
    if (asyncio_sleep(0) != 0)
        return -ECANCELED;
    LOG("m:2");
    return 0;
}

static void test_stop_before_run_until_complete_is_eintr_after_one_iteration(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_stop(loop), 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_two_steps, NULL, NULL), -EINTR);
    LOG("EINTR");
    LOG("|");
    run_one_more(loop);
    assert_log("m:1 EINTR | m:2");
    /* A stop made before a task that ends in its first step: the result. */
    assert_int_equal(asyncio_loop_stop(loop), 0);
    void *result = NULL;
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_schedules_then_returns, loop,
                                                     &result),
                     7);
    assert_ptr_equal(result, loop);
    close_loop(loop);
}

/* Python (asyncio's run_until_complete() does the same):
 *     async def main():
 *         log("main"); loop.call_soon(loop.stop); await sleep(0)
 *         log("main-end"); return 5
 *     r = loop.run_until_complete(main()); log("r=%d" % r)
 *     def a(): log("a"); loop.call_soon(log, "b")
 *     loop.call_soon(a); loop.run_forever(); log("|")
 * prints "main main-end r=5 a | b": the task finished in the iteration a
 * stop ended, so run_until_complete() returns its result; its done
 * callback (the one that stops the loop) was already scheduled, and stops
 * the next run after one iteration. */
static int main_stop_and_finish_together(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("main");
    CHECK_INT(asyncio_call_soon(cb_stop, NULL, NULL), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("main-end");
    return 5;
}

static void test_stop_in_the_iteration_the_task_ends_returns_its_result(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    int rc = asyncio_loop_run_until_complete(loop, main_stop_and_finish_together, NULL, NULL);
    LOG("r=%d", rc);
    struct chain a = {"a", "b"};
    assert_int_equal(asyncio_call_soon(cb_chain, &a, NULL), 0);
    assert_int_equal(asyncio_loop_run_forever(loop), 0);
    LOG("|");
    run_one_more(loop);
    assert_log("main main-end r=5 a | b");
    close_loop(loop);
}

/* ---- order: close() ------------------------------------------------------- */

/* As asyncio.Runner.close() (and asyncio_run()): every task left is
 * cancelled and the loop runs until they have all ended; what their ends
 * leave ready (callbacks, done callbacks) runs; what is scheduled for
 * later never does. Python's Runner, for
 *     async def plain():
 *         try: await sleep(100)
 *         except CancelledError:
 *             log("plain:ECANCELED"); loop.call_soon(log, "plain-cb")
 *             loop.call_later(0.01, log, "plain-later"); raise
 * with a done callback logging "plain-done", prints "plain:ECANCELED
 * plain-cb plain-done". A task created and never started never runs.
 * Where Python's Runner would wait for a task that catches the
 * cancellation and waits again, this library cancels it again (the
 * header's rule): "stubborn" sees a second -ECANCELED. */
static int stubborn_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(100);
    LOG("stubborn:%s", tu_err(rc));
    /* In the close's wind-down: the loop runs, and is busy. */
    asyncio_loop_t *loop = asyncio_get_event_loop();
    CHECK(loop != NULL);
    CHECK_PTR(asyncio_get_running_loop(), loop);
    CHECK_INT(asyncio_loop_is_running(loop), 1);
    CHECK_INT(asyncio_loop_is_closed(loop), 0);
    CHECK_INT(asyncio_loop_close(loop), -EBUSY);
    CHECK_INT(asyncio_loop_run_forever(loop), -EBUSY);
    CHECK_INT(asyncio_loop_run_nowait(loop, NULL), -EBUSY);
    rc = asyncio_sleep(100); /* waits again */
    LOG("stubborn-again:%s", tu_err(rc));
    CHECK_INT(asyncio_call_soon(cb_log, "stubborn-cb", NULL), 0);
    return rc;
}

static int plain_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(100);
    LOG("plain:%s", tu_err(rc));
    CHECK_INT(asyncio_call_soon(cb_log, "plain-cb", NULL), 0);
    CHECK_INT(asyncio_call_later(0.01, cb_log, "plain-later", NULL), 0);
    return rc;
}

static int never_started(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("never-started-ran");
    return 0;
}

static void done_log(asyncio_future_t *f, void *arg)
{
    LOG("%s:%s", (const char *)arg, asyncio_future_cancelled(f) ? "cancelled" : "not-cancelled");
}

static int main_leaves_tasks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *s = tu_spawn(stubborn_task, NULL, "stubborn");
    asyncio_task_t *p = tu_spawn(plain_task, NULL, "plain");
    CHECK_INT(asyncio_future_add_done_callback(p, done_log, "plain-done"), 0);
    CHECK_INT(asyncio_sleep(0), 0); /* both start, and wait */
    asyncio_task_release(s);
    asyncio_task_release(p);
    LOG("main-end");
    return 0;
}

static void test_close_cancels_the_tasks_left_and_runs_what_they_leave_ready(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_leaves_tasks, NULL, NULL), 0);
    LOG("|");
    assert_int_equal(asyncio_create_task(NULL, never_started, NULL, "never"), 0);
    assert_int_equal((int)asyncio_task_count(), 3);
    assert_int_equal(asyncio_loop_close(loop), 0);
    LOG("closed");
    assert_log("main-end | stubborn:ECANCELED plain:ECANCELED plain-cb plain-done:cancelled "
               "stubborn-again:ECANCELED stubborn-cb closed");
    assert_int_equal(asyncio_loop_is_closed(loop), 1);
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    assert_null(asyncio_get_event_loop());
    assert_int_equal((int)asyncio_task_count(), 0);
    drop_loop(loop);
    tu_check_failures();
}

/* A loop closed with callbacks ready and none of its tasks left: the
 * ready ones run, once (what they schedule does not: one batch, the
 * header's rule; Python's Runner.close() runs some more iterations for
 * shutdown_asyncgens() and shutdown_default_executor(), where "c2" would
 * run too); timers never fire. */
static void test_close_runs_the_ready_callbacks_once_and_no_timers(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    struct chain c1 = {"c1", "c2"};
    assert_int_equal(asyncio_call_soon(cb_chain, &c1, NULL), 0);
    assert_int_equal(asyncio_call_later(5, cb_log, "later", NULL), 0);
    assert_int_equal(asyncio_loop_close(loop), 0);
    assert_log("c1");
    drop_loop(loop);
    tu_check_failures();
}

/* A loop made and closed without ever running; its tasks never start. */
static void test_close_of_a_loop_that_never_ran(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_create_task(NULL, never_started, NULL, "never"), 0);
    assert_int_equal(asyncio_loop_close(loop), 0);
    assert_log("");
    drop_loop(loop);
    tu_check_failures();
}

/* ---- is_running, get_running_loop, get_event_loop ------------------------- */

static asyncio_loop_t *g_probe_loop;

/* Where it runs (a task or a callback of g_probe_loop's run), the loop is
 * running and is the running loop. */
static void probe(const char *where)
{
    LOG("%s:%d", where, asyncio_loop_is_running(g_probe_loop));
    CHECK_PTR(asyncio_get_running_loop(), g_probe_loop);
    CHECK_PTR(asyncio_get_event_loop(), g_probe_loop);
    CHECK_INT(asyncio_loop_is_closed(g_probe_loop), 0);
}

static void cb_probe(void *arg)
{
    probe(arg);
}

static void done_probe(asyncio_future_t *f, void *arg)
{
    (void)f;
    probe(arg);
}

static int main_probe(void *arg, void **result)
{
    (void)arg;
    (void)result;
    probe("task");
    CHECK_INT(asyncio_call_soon(cb_probe, "cb", NULL), 0);
    CHECK_INT(asyncio_future_add_done_callback(asyncio_current_task(), done_probe, "done-cb"), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void assert_idle(asyncio_loop_t *loop)
{
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    assert_null(asyncio_get_running_loop());
    assert_ptr_equal(asyncio_get_event_loop(), loop);
    assert_int_equal(asyncio_loop_is_closed(loop), 0);
}

/* asyncio: loop.is_running() is False before and after a run, True in
 * its tasks and callbacks; asyncio.get_running_loop() only inside. */
static void test_is_running_and_the_current_loops(void **state)
{
    (void)state;
    assert_null(asyncio_get_event_loop());
    assert_null(asyncio_get_running_loop());
    asyncio_loop_t *loop = g_probe_loop = new_loop();
    assert_idle(loop);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_probe, NULL, NULL), 0);
    assert_idle(loop);
    assert_int_equal(asyncio_call_soon(cb_probe, "forever-cb", NULL), 0);
    run_one_more(loop);
    assert_idle(loop);
    assert_int_equal(asyncio_call_soon(cb_probe, "nowait-cb", NULL), 0);
    assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0);
    assert_idle(loop);
    assert_log("task:1 cb:1 done-cb:1 forever-cb:1 nowait-cb:1");
    assert_int_equal(asyncio_loop_close(loop), 0);
    assert_null(asyncio_get_event_loop());
    assert_null(asyncio_get_running_loop());
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    drop_loop(loop);
    tu_check_failures();
}

/* is_running() from another thread: 1 while the loop runs, 0 once its run
 * returned. */
struct running_probe {
    asyncio_loop_t *loop;
    asyncio_future_t *answered; /* set in the loop once the thread looked */
    sem_t after_run;            /* posted by the test once the run returned */
    int during, after, post_rc, wait_rc;
};

static void *thread_probe_running(void *arg)
{
    struct running_probe *p = arg;
    p->during = asyncio_loop_is_running(p->loop);
    p->post_rc = asyncio_call_soon_threadsafe(p->loop, tu_cb_set_future, p->answered, NULL);
    p->wait_rc = sem_wait_s(&p->after_run, WAIT_S);
    p->after = asyncio_loop_is_running(p->loop);
    return NULL;
}

static int main_lets_a_thread_look(void *arg, void **result)
{
    (void)result;
    struct running_probe *p = arg;
    pthread_t *th = malloc(sizeof *th);
    CHECK(th != NULL);
    if (!th)
        return -ENOMEM;
    p->answered = tu_future();
    int rc = -pthread_create(th, NULL, thread_probe_running, p);
    CHECK_INT(rc, 0);
    if (rc == 0)
        CHECK_INT(asyncio_wait_for(p->answered, WAIT_S, NULL), 0);
    asyncio_future_release(p->answered);
    *result = rc == 0 ? th : NULL;
    if (rc != 0)
        free(th);
    return rc;
}

static void test_is_running_seen_from_another_thread(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    struct running_probe p = {.loop = loop, .during = -1, .after = -1};
    assert_int_equal(sem_init(&p.after_run, 0, 0), 0);
    void *th = NULL;
    int rc = asyncio_loop_run_until_complete(loop, main_lets_a_thread_look, &p, &th);
    assert_int_equal(rc, 0);
    assert_non_null(th);
    sem_post(&p.after_run);
    assert_int_equal(pthread_join(*(pthread_t *)th, NULL), 0);
    free(th);
    sem_destroy(&p.after_run);
    assert_int_equal(p.post_rc, 0);
    assert_int_equal(p.wait_rc, 0);
    assert_int_equal(p.during, 1);
    assert_int_equal(p.after, 0);
    close_loop(loop);
}

/* The loop holds a reference of its own until closed: the caller may drop
 * its own at once, and reach the loop through asyncio_get_event_loop(). */
static void test_the_loop_outlives_the_callers_reference_until_closed(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    drop_loop(loop);
    assert_ptr_equal(asyncio_get_event_loop(), loop);
    assert_int_equal(asyncio_loop_run_until_complete(asyncio_get_event_loop(), main_returns_arg,
                                                     (void *)(intptr_t)4, NULL),
                     4);
    /* A reference taken and dropped meanwhile changes nothing. */
    assert_ptr_equal(asyncio_loop_ref(loop), loop);
    asyncio_loop_unref(loop);
    assert_int_equal(asyncio_loop_close(asyncio_get_event_loop()), 0);
    assert_null(asyncio_get_event_loop());
    tu_check_failures();
}

/* ---- errors --------------------------------------------------------------- */

static int main_nothing(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static void test_null_arguments_are_einval(void **state)
{
    (void)state;
    int64_t next = 12345;
    assert_int_equal(asyncio_new_event_loop(NULL, NULL), -EINVAL);
    assert_null(asyncio_get_event_loop()); /* nothing made */
    assert_int_equal(asyncio_loop_run_until_complete(NULL, main_nothing, NULL, NULL), -EINVAL);
    assert_int_equal(asyncio_loop_run_forever(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_stop(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_is_running(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_is_closed(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_close(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_backend_fd(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_run_nowait(NULL, &next), -EINVAL);
    assert_int_equal(asyncio_loop_run_nowait(NULL, NULL), -EINVAL);
    assert_null(asyncio_loop_ref(NULL));
    asyncio_loop_unref(NULL);
    /* With a loop: a NULL function. */
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_run_until_complete(loop, NULL, NULL, NULL), -EINVAL);
    assert_int_equal((int)asyncio_task_count(), 0);
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    /* The loop is none the worse. */
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_returns_arg, (void *)(intptr_t)9,
                                                     NULL),
                     9);
    close_loop(loop);
}

static void test_calls_on_a_closed_loop_are_eshutdown(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    asyncio_loop_t *extra = asyncio_loop_ref(loop);
    assert_ptr_equal(extra, loop);
    assert_int_equal(asyncio_loop_close(loop), 0);
    int64_t next = 12345;
    /* The handle stays valid until its last reference goes. */
    assert_int_equal(asyncio_loop_is_closed(loop), 1);
    assert_int_equal(asyncio_loop_is_running(loop), 0);
    assert_int_equal(asyncio_loop_close(loop), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_close(loop), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_nothing, NULL, NULL), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_run_forever(loop), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_run_nowait(loop, &next), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_backend_fd(loop), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_stop(loop), -ESHUTDOWN);
    assert_int_equal(asyncio_call_soon_threadsafe(loop, cb_log, "x", NULL), -ESHUTDOWN);
    assert_null(asyncio_get_event_loop());
    assert_null(asyncio_get_running_loop());
    /* Nothing to run calls on: asyncio_call_soon() has no loop. */
    assert_int_equal(asyncio_call_soon(cb_log, "x", NULL), -EPERM);
    asyncio_loop_unref(extra);
    assert_int_equal(asyncio_loop_is_closed(loop), 1);
    drop_loop(loop); /* the last: the handle goes */
    assert_log("");
    tu_check_failures();
}

/* From a task, a callback of run_forever() and one of run_nowait(): the
 * loop is running, so running or closing it again is -EBUSY, and so is
 * making another loop in this thread (asyncio: "This event loop is
 * already running", "Cannot close a running event loop",
 * "asyncio.run() cannot be called from a running event loop"). */
static void try_reentry(const char *where)
{
    asyncio_loop_t *loop = asyncio_get_running_loop();
    CHECK(loop != NULL);
    asyncio_loop_t *other = NULL;
    int64_t next = 0;
    LOG("%s:%s,%s,%s,%s,%s,%s", where,
        tu_err(asyncio_loop_run_until_complete(loop, main_nothing, NULL, NULL)),
        tu_err(asyncio_loop_run_forever(loop)), tu_err(asyncio_loop_run_nowait(loop, &next)),
        tu_err(asyncio_loop_close(loop)), tu_err(asyncio_new_event_loop(&other, NULL)),
        tu_err(asyncio_run(main_nothing, NULL, NULL)));
    CHECK(other == NULL);
    CHECK_INT(asyncio_loop_is_closed(loop), 0);
    CHECK_INT(asyncio_loop_is_running(loop), 1);
    /* The embedding's fd may be asked for from inside too. */
    int fd = asyncio_loop_backend_fd(loop);
    const char *backend = asyncio_loop_backend();
    if (backend && strcmp(backend, "poll") == 0)
        CHECK_INT(fd, -ENOTSUP);
    else
        CHECK(fd >= 0);
}

static void cb_try_reentry(void *arg)
{
    try_reentry(arg);
}

static int main_try_reentry(void *arg, void **result)
{
    (void)arg;
    (void)result;
    try_reentry("task");
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_running_or_closing_a_running_loop_is_ebusy(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_try_reentry, NULL, NULL), 0);
    assert_int_equal(asyncio_call_soon(cb_try_reentry, "forever", NULL), 0);
    run_one_more(loop);
    assert_int_equal(asyncio_call_soon(cb_try_reentry, "nowait", NULL), 0);
    assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0);
    assert_log("task:EBUSY,EBUSY,EBUSY,EBUSY,EBUSY,EBUSY "
               "forever:EBUSY,EBUSY,EBUSY,EBUSY,EBUSY,EBUSY "
               "nowait:EBUSY,EBUSY,EBUSY,EBUSY,EBUSY,EBUSY");
    /* None of those left a task or a loop behind. */
    assert_int_equal((int)asyncio_task_count(), 0);
    assert_ptr_equal(asyncio_get_event_loop(), loop);
    close_loop(loop);
}

/* One loop per thread, running or not (asyncio.Runner refuses to run in a
 * thread whose loop runs; here a made loop is enough); once closed,
 * another may be made. */
static void test_one_loop_per_thread_and_a_new_one_after_close(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    asyncio_loop_t *second = NULL;
    assert_int_equal(asyncio_new_event_loop(&second, NULL), -EBUSY);
    assert_null(second);
    assert_int_equal(asyncio_run(main_returns_arg, NULL, NULL), -EBUSY);
    asyncio_run_options_t opts = {.backend = "poll"};
    assert_int_equal(asyncio_run_ex(main_returns_arg, NULL, NULL, &opts), -EBUSY);
    assert_log(""); /* main never ran */
    assert_ptr_equal(asyncio_get_event_loop(), loop);
    /* The made loop is untouched. */
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_returns_arg, (void *)(intptr_t)5,
                                                     NULL),
                     5);
    close_loop(loop);

    /* After the close: a new loop, then asyncio_run(). */
    asyncio_loop_t *again = new_loop();
    assert_true(again != NULL);
    assert_int_equal(asyncio_loop_is_closed(again), 0);
    assert_int_equal(asyncio_loop_run_until_complete(again, main_returns_arg, (void *)(intptr_t)6,
                                                     NULL),
                     6);
    close_loop(again);
    assert_int_equal(tu_run(main_returns_arg, (void *)(intptr_t)8, NULL), 8);
    assert_null(asyncio_get_event_loop());
}

/* asyncio_new_event_loop() refuses what asyncio_run_ex() refuses, with the
 * same errors, and makes no loop then. */
static void check_options_refused(const asyncio_run_options_t *opts, int expected,
                                  const char *what)
{
    asyncio_loop_t *loop = NULL;
    int rc = asyncio_new_event_loop(&loop, opts);
    if (rc != expected)
        fail_msg("%s: asyncio_new_event_loop: %s, expected %s", what, tu_err(rc),
                 tu_err(expected));
    assert_null(asyncio_get_event_loop());
    rc = asyncio_run_ex(main_returns_arg, (void *)(intptr_t)1, NULL, opts);
    if (rc != expected)
        fail_msg("%s: asyncio_run_ex: %s, expected %s", what, tu_err(rc), tu_err(expected));
    assert_null(asyncio_get_event_loop());
}

static void test_new_event_loop_refuses_options_as_run_ex_does(void **state)
{
    (void)state;
    tu_reset();
    asyncio_run_options_t o;
    o = (asyncio_run_options_t){.stack_size = ASYNCIO_STACK_MIN - 1};
    check_options_refused(&o, -EINVAL, "stack_size below the minimum");
    o = (asyncio_run_options_t){.stack_size = ASYNCIO_STACK_MAX + 1};
    check_options_refused(&o, -EINVAL, "stack_size above the maximum");
    o = (asyncio_run_options_t){.stack_guard = ASYNCIO_STACK_GUARD_MAX + 1};
    check_options_refused(&o, -EINVAL, "stack_guard above the maximum");
    o = (asyncio_run_options_t){.busy_poll_us = ASYNCIO_BUSY_POLL_MAX_US + 1};
    check_options_refused(&o, -EINVAL, "busy_poll_us above the maximum");
    o = (asyncio_run_options_t){.backend = "no-such-backend"};
    check_options_refused(&o, -ENOENT, "unknown backend");
    /* $ASYNCIO_BUSY_POLL_US, read when busy_poll_us is 0. */
    const char *saved = getenv("ASYNCIO_BUSY_POLL_US");
    char *copy = saved ? strdup(saved) : NULL;
    assert_int_equal(setenv("ASYNCIO_BUSY_POLL_US", "lots", 1), 0);
    check_options_refused(NULL, -EINVAL, "$ASYNCIO_BUSY_POLL_US=lots");
    assert_int_equal(setenv("ASYNCIO_BUSY_POLL_US", "1000001", 1), 0);
    check_options_refused(NULL, -EINVAL, "$ASYNCIO_BUSY_POLL_US=1000001");
    if (copy)
        setenv("ASYNCIO_BUSY_POLL_US", copy, 1);
    else
        unsetenv("ASYNCIO_BUSY_POLL_US");
    free(copy);
    /* The limits themselves are fine; opts is read at the call only. */
    o = (asyncio_run_options_t){.stack_size = ASYNCIO_STACK_MIN, .busy_poll_us = 10,
                                .backend = "poll"};
    asyncio_loop_t *loop = NULL;
    assert_int_equal(asyncio_new_event_loop(&loop, &o), 0);
    o.backend = "no-such-backend";
    o.stack_size = 1;
    assert_int_equal(asyncio_loop_backend_fd(loop), -ENOTSUP);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_returns_arg, (void *)(intptr_t)2,
                                                     NULL),
                     2);
    close_loop(loop);
}

/* Another thread's loop: the calls that run or close it, and its fd, are
 * -EXDEV here; stop() and is_running() work from anywhere. Once that
 * thread closed it, they are -ESHUTDOWN here too. */
struct foreign {
    sem_t ready, done;
    asyncio_loop_t *loop; /* a reference for the test's thread */
    int new_rc, run_rc, close_rc;
};

static void *foreign_thread(void *arg)
{
    struct foreign *f = arg;
    asyncio_loop_t *l = NULL;
    f->new_rc = asyncio_new_event_loop(&l, NULL);
    if (f->new_rc == 0)
        f->loop = asyncio_loop_ref(l);
    sem_post(&f->ready);
    if (f->new_rc == 0) {
        f->run_rc = asyncio_loop_run_forever(l);
        f->close_rc = asyncio_loop_close(l);
        asyncio_loop_unref(l);
    }
    sem_post(&f->done);
    return NULL;
}

static void test_another_threads_loop_is_exdev(void **state)
{
    (void)state;
    tu_reset();
    struct foreign f = {.run_rc = 1, .close_rc = 1};
    assert_int_equal(sem_init(&f.ready, 0, 0), 0);
    assert_int_equal(sem_init(&f.done, 0, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, foreign_thread, &f), 0);
    assert_int_equal(sem_wait_s(&f.ready, WAIT_S), 0);
    assert_int_equal(f.new_rc, 0);
    asyncio_loop_t *l = f.loop;
    int64_t next = 12345;
    /* It is not this thread's loop: this thread has none. */
    assert_null(asyncio_get_event_loop());
    int exdev[5] = {
        asyncio_loop_run_until_complete(l, main_nothing, NULL, NULL),
        asyncio_loop_run_forever(l),
        asyncio_loop_run_nowait(l, &next),
        asyncio_loop_close(l),
        asyncio_loop_backend_fd(l),
    };
    /* With a loop of this thread's own, the same. */
    asyncio_loop_t *mine = new_loop();
    int exdev_mine[5] = {
        asyncio_loop_run_until_complete(l, main_nothing, NULL, NULL),
        asyncio_loop_run_forever(l),
        asyncio_loop_run_nowait(l, &next),
        asyncio_loop_close(l),
        asyncio_loop_backend_fd(l),
    };
    close_loop(mine);
    /* Wait (bounded) for it to run, then stop it from here. */
    int running = 0;
    for (int i = 0; i < (int)(WAIT_S * 1000) && !(running = asyncio_loop_is_running(l)); i++)
        sleep_ms(1);
    assert_int_equal(asyncio_loop_is_closed(l), 0);
    int stop_rc = asyncio_loop_stop(l);
    int done_rc = sem_wait_s(&f.done, WAIT_S);
    if (done_rc != 0)
        fail_msg("the other thread's run_forever() did not return after a stop from here");
    assert_int_equal(pthread_join(th, NULL), 0);
    for (int i = 0; i < 5; i++) {
        if (exdev[i] != -EXDEV || exdev_mine[i] != -EXDEV)
            fail_msg("call %d on another thread's loop: %s / %s, expected EXDEV", i,
                     tu_err(exdev[i]), tu_err(exdev_mine[i]));
    }
    assert_int_equal(running, 1);
    assert_int_equal(stop_rc, 0);
    assert_int_equal(f.run_rc, 0);
    assert_int_equal(f.close_rc, 0);
    /* Closed there: -ESHUTDOWN from here. */
    assert_int_equal(asyncio_loop_is_closed(l), 1);
    assert_int_equal(asyncio_loop_is_running(l), 0);
    assert_int_equal(asyncio_loop_run_until_complete(l, main_nothing, NULL, NULL), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_run_forever(l), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_run_nowait(l, &next), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_close(l), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_backend_fd(l), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_stop(l), -ESHUTDOWN);
    asyncio_loop_unref(l);
    sem_destroy(&f.ready);
    sem_destroy(&f.done);
}

/* ---- stop from another thread --------------------------------------------- */

struct stopper {
    asyncio_loop_t *loop;
    int saw_running; /* it saw the loop running before it stopped it */
    int rc;
};

static void *stop_when_running(void *arg)
{
    struct stopper *s = arg;
    for (int i = 0; i < (int)(WAIT_S * 1000) && !(s->saw_running = asyncio_loop_is_running(s->loop));
         i++)
        sleep_ms(1);
    sleep_ms(20); /* most likely asleep in its poll by now (not required) */
    s->rc = asyncio_loop_stop(s->loop);
    return NULL;
}

static int main_sleeps_long(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(100);
    LOG("long:%s", tu_err(rc));
    return rc;
}

/* A plain thread stops a loop that sleeps in run_forever() with nothing
 * to do, no timer at all (asyncio: loop.call_soon_threadsafe(loop.stop)):
 * the stop wakes it, and run_forever() returns. */
static void test_stop_from_another_thread_wakes_a_sleeping_loop(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        struct stopper s = {.loop = loop, .rc = 1};
        struct block_guard g;
        block_guard_start(&g, "run_forever() stopped from another thread");
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, stop_when_running, &s), 0);
        int rc = asyncio_loop_run_forever(loop);
        block_guard_end(&g);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(rc, 0);
        assert_int_equal(s.saw_running, 1);
        assert_int_equal(s.rc, 0);
        assert_int_equal(asyncio_loop_is_running(loop), 0);
        /* The stop was consumed: the next run goes on until stopped. */
        struct chain p = {"p", "p2"};
        assert_int_equal(asyncio_call_soon(cb_chain, &p, NULL), 0);
        assert_int_equal(asyncio_call_soon(cb_log, "q", NULL), 0);
        assert_int_equal(asyncio_call_soon(cb_stop_next_time, NULL, NULL), 0);
        block_guard_start(&g, "run_forever() after a stop from another thread");
        assert_int_equal(asyncio_loop_run_forever(loop), 0);
        block_guard_end(&g);
        assert_log("p q p2");

        /* run_until_complete() of a task asleep on a long timer: stopped
         * from there, -EINTR; the task is cancelled by the close. */
        s = (struct stopper){.loop = loop, .rc = 1};
        block_guard_start(&g, "run_until_complete() stopped from another thread");
        assert_int_equal(pthread_create(&th, NULL, stop_when_running, &s), 0);
        rc = asyncio_loop_run_until_complete(loop, main_sleeps_long, NULL, NULL);
        block_guard_end(&g);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(rc, -EINTR);
        assert_int_equal(s.rc, 0);
        close_loop(loop);
        assert_log("p q p2 long:ECANCELED");
    }
}

static void *stop_now(void *arg)
{
    struct stopper *s = arg;
    s->rc = asyncio_loop_stop(s->loop);
    return NULL;
}

/* A stop another thread makes before the run: the next run_forever() runs
 * one iteration and returns (asyncio: call_soon_threadsafe(loop.stop)
 * before run_forever(): "x y" then return, "y2" next time). A stop posted
 * and never run is released by the close. */
static void test_stop_from_another_thread_before_the_run(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], true);
        struct stopper s = {.loop = loop, .rc = 1};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, stop_now, &s), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(s.rc, 0);
        struct chain y = {"y", "y2"};
        assert_int_equal(asyncio_call_soon(cb_log, "x", NULL), 0);
        assert_int_equal(asyncio_call_soon(cb_chain, &y, NULL), 0);
        assert_int_equal(asyncio_loop_run_forever(loop), 0);
        LOG("|");
        run_one_more(loop);
        assert_log("x y | y2");
        /* Posted, then the loop closed without running. */
        s.rc = 1;
        assert_int_equal(pthread_create(&th, NULL, stop_now, &s), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(s.rc, 0);
        close_loop(loop);
    }
}

/* Another thread stops the loop over and over while its thread runs it
 * again and again, then closes it: every stop is taken (0) until the close,
 * after which they are -ESHUTDOWN; that thread's run_forever() calls are
 * -EXDEV, then -ESHUTDOWN. Nothing posted is lost or leaked, and the runs
 * all return. (TSan: the handle shared while the loop closes.) */
struct storm {
    asyncio_loop_t *loop;
    atomic_bool go;
    int stops_ok, exdev, after_close;
    int bad_rc;
};

static void cb_nothing(void *arg)
{
    (void)arg;
}

static void *stop_storm(void *arg)
{
    struct storm *s = arg;
    double until = asyncio_loop_time() + 3 * WAIT_S; /* the runs end long before */
    while (!atomic_load(&s->go) && asyncio_loop_time() < until)
        sched_yield();
    while (asyncio_loop_time() < until) {
        int rc = asyncio_loop_stop(s->loop);
        int rf = asyncio_loop_run_forever(s->loop);
        if (rc == 0 && rf == -EXDEV) {
            s->stops_ok++;
            s->exdev++;
        } else if (rc == -ESHUTDOWN && rf == -ESHUTDOWN) {
            s->after_close++;
            break;
        } else if (rc == 0 && rf == -ESHUTDOWN) {
            s->stops_ok++; /* closed between the two calls */
        } else {
            s->bad_rc = rc != 0 ? rc : rf;
            break;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_stops_from_another_thread_while_the_loop_runs_and_closes(void **state)
{
    (void)state;
    asyncio_loop_t *loop = new_loop();
    struct storm s = {.loop = asyncio_loop_ref(loop)};
    atomic_init(&s.go, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_storm, &s), 0);
    atomic_store(&s.go, true);
    int runs = 0, bad = 0;
    for (int i = 0; i < 50; i++) {
        /* Something to do each time, so the stops meet a busy loop too. */
        assert_int_equal(asyncio_call_soon(cb_nothing, NULL, NULL), 0);
        if (asyncio_loop_run_forever(loop) != 0)
            bad++;
        runs++;
    }
    close_loop(loop);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(runs, 50);
    assert_int_equal(s.bad_rc, 0);
    assert_true(s.stops_ok >= 50); /* each run ended by one of them */
    assert_int_equal(s.after_close, 1);
    asyncio_loop_unref(s.loop);
}

/* ---- embedding ------------------------------------------------------------ */

/* poll() for the backend fd (fd < 0: none, sleep only) for at most ms:
 * 1 if it is readable. */
static int poll_fd(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do
        n = poll(fd >= 0 ? &p : NULL, fd >= 0 ? 1 : 0, ms);
    while (n < 0 && errno == EINTR);
    return n > 0 && (p.revents & POLLIN) ? 1 : 0;
}

/* The time run_nowait() gave, as poll()'s timeout: rounded up to a
 * millisecond (never early), at most cap_ms (so that the test's loop
 * looks at its deadline; -1 becomes cap_ms). */
static int next_to_ms(int64_t next, int cap_ms)
{
    if (next < 0)
        return cap_ms;
    int64_t ms = (next + 999999) / 1000000;
    return ms > cap_ms ? cap_ms : (int)ms;
}

/* asyncio_loop_backend_fd(): the epoll fd, the same each time, which this
 * thread may poll; -ENOTSUP on the poll backend. */
static void test_backend_fd_on_each_backend(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        int fd = asyncio_loop_backend_fd(loop);
        if (strcmp(backends[b], "epoll") == 0) {
            assert_true(fd >= 0);
            assert_int_equal(asyncio_loop_backend_fd(loop), fd);
            assert_true(fcntl(fd, F_GETFD) >= 0); /* open */
            assert_int_equal(poll_fd(fd, 0), 0);  /* nothing to handle */
        } else {
            assert_int_equal(fd, -ENOTSUP);
        }
        close_loop(loop);
    }
}

static void cb_note_time(void *arg)
{
    *(double *)arg = asyncio_loop_time();
}

/* next_ns: -1 with nothing scheduled, 0 with work ready, the time to the
 * next timer otherwise. */
static void test_run_nowait_next_ns(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        int64_t next = 12345;
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(next, -1);
        assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0);

        /* A callback that schedules another: work is ready after it. */
        struct chain x = {"x", "y"};
        assert_int_equal(asyncio_call_soon(cb_chain, &x, NULL), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(next, 0);
        assert_log("x");
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(next, -1);
        assert_log("x y");

        /* A task made between iterations runs at the next one. */
        assert_int_equal(asyncio_create_task(NULL, t2_logs, NULL, "t2"), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_log("x y t2");
        assert_int_equal(next, -1);

        /* A timer 10 s away: at most that long, more than nothing. */
        asyncio_handle_t h;
        double fired = 0;
        assert_int_equal(asyncio_call_later(10, cb_note_time, &fired, &h), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_true(next > 0);
        assert_true(next <= (int64_t)10 * 1000000000);
        /* Cancelled: nothing again. */
        assert_int_equal(asyncio_handle_cancel(&h), 1);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(next, -1);
        /* Further than next_ns can say: the most it can, not a negative
         * number (which would read as "no timer"). */
        assert_int_equal(asyncio_call_later(1e10, cb_note_time, &fired, &h), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_true(next == INT64_MAX);
        assert_int_equal(asyncio_handle_cancel(&h), 1);
        /* An infinite delay never fires: nothing either. */
        assert_int_equal(asyncio_call_later(INFINITY, cb_note_time, &fired, NULL), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(next, -1);
        /* A due timer: 0 (it has not run yet: call_at in the past runs in
         * the next iteration, which this is). */
        assert_int_equal(asyncio_call_at(asyncio_loop_time() - 1, cb_note_time, &fired, NULL), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_true(fired > 0);
        assert_int_equal(next, -1);
        assert_log("x y t2");
        close_loop(loop);
    }
}

static int task_stops_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_loop_stop(asyncio_get_running_loop()), 0);
    LOG("task-stopped");
    return 0;
}

/* run_nowait() returns 1 when asyncio_loop_stop() was called (the stop is
 * consumed), in a callback, a task, or before the call. */
static void test_run_nowait_returns_1_after_a_stop(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        struct chain a = {"a", "a2"};
        assert_int_equal(asyncio_call_soon(cb_log_stop_chain, &a, NULL), 0);
        assert_int_equal(asyncio_call_soon(cb_log, "b", NULL), 0);
        int64_t next = 12345;
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 1);
        assert_int_equal(next, 0); /* a2 is ready */
        assert_log("a b");
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0); /* consumed */
        assert_int_equal(next, -1);
        assert_log("a b a2");
        assert_int_equal(asyncio_create_task(NULL, task_stops_loop, NULL, "stopper"), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 1);
        assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0);
        assert_int_equal(asyncio_loop_stop(loop), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 1);
        assert_int_equal(next, -1);
        assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0);
        assert_log("a b a2 task-stopped");
        /* A stop consumed by run_nowait() is not left for run_forever(). */
        assert_int_equal(asyncio_loop_stop(loop), 0);
        assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 1);
        struct chain p = {"p", "p2"};
        assert_int_equal(asyncio_call_soon(cb_chain, &p, NULL), 0);
        assert_int_equal(asyncio_call_soon(cb_stop_next_time, NULL, NULL), 0);
        memset(&g_guard, 0, sizeof g_guard);
        assert_int_equal(asyncio_call_later(GUARD_S, guard_fire, NULL, &g_guard), 0);
        assert_int_equal(asyncio_loop_run_forever(loop), 0);
        assert_log("a b a2 task-stopped p p2");
        close_loop(loop);
    }
}

/* A plain poll() loop drives the loop: timers fire in order, never before
 * their time, with poll()'s timeout taken from next_ns. */
struct fired {
    const char *name;
    double deadline; /* loop time it was due at, at the earliest */
    double at;       /* loop time it ran */
};

static void cb_fired(void *arg)
{
    struct fired *f = arg;
    f->at = asyncio_loop_time();
    LOG("%s", f->name);
}

static int task_sleeps_then_fires(void *arg, void **result)
{
    (void)result;
    struct fired *f = arg;
    double left = f->deadline - asyncio_loop_time(); /* until a time set beforehand */
    CHECK_INT(asyncio_sleep(left > 0 ? left : 0), 0);
    cb_fired(f);
    return 0;
}

static void test_embedded_timers_fire_in_order_and_not_early(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        int fd = asyncio_loop_backend_fd(loop);
        struct fired now = {"now", 0, 0}, a = {"a", 0, 0}, t = {"task", 0, 0}, c = {"c", 0, 0};
        /* Far enough apart that a slow machine (valgrind) keeps the
         * order: a at 50 ms, the task until 100 ms, c at 200 ms. */
        double start = asyncio_loop_time();
        c.deadline = start + 0.2;
        assert_int_equal(asyncio_call_later(0.2, cb_fired, &c, NULL), 0);
        a.deadline = asyncio_loop_time() + 0.05;
        assert_int_equal(asyncio_call_later(0.05, cb_fired, &a, NULL), 0);
        now.deadline = start;
        assert_int_equal(asyncio_call_soon(cb_fired, &now, NULL), 0);
        t.deadline = start + 0.1;
        assert_int_equal(asyncio_create_task(NULL, task_sleeps_then_fires, &t, "sleeper"), 0);
        int64_t next = 12345;
        /* First iteration: "now" runs (first) and the task starts its
         * sleep; the next timer is at most 50 ms away. */
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(strncmp(tu_log_buf, "now", 3), 0);
        assert_true(next >= 0 && next <= 50 * 1000000);
        double deadline = asyncio_loop_time() + WAIT_S;
        int iterations = 1;
        while (c.at == 0 && asyncio_loop_time() < deadline) {
            poll_fd(fd, next_to_ms(next, 100));
            assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
            iterations++;
        }
        if (c.at == 0)
            fail_msg("%s: the timers had not all fired after %g s (%d iterations; log \"%s\")",
                     backends[b], WAIT_S, iterations, tu_log_buf);
        assert_log("now a task c");
        assert_int_equal(next, -1); /* nothing left */
        struct fired *all[] = {&now, &a, &t, &c};
        for (int i = 0; i < 4; i++)
            if (all[i]->at < all[i]->deadline)
                fail_msg("%s: %s ran %.6f s before its time", backends[b], all[i]->name,
                         all[i]->deadline - all[i]->at);
        close_loop(loop);
    }
}

/* A task waits for a socket; the data that arrives makes the backend fd
 * readable, and the next run_nowait() hands it to the task. On the poll
 * backend (no fd) the embedding drives it with timeouts only. */
struct sock_reader {
    int fd;
    bool waiting, done;
    char got[8];
};

static int task_reads_socket(void *arg, void **result)
{
    (void)result;
    struct sock_reader *r = arg;
    r->waiting = true;
    int rc = asyncio_wait_readable(r->fd);
    r->waiting = false;
    CHECK_INT(rc, 0);
    ssize_t n = read(r->fd, r->got, sizeof r->got - 1);
    CHECK_INT(n, 2);
    if (n > 0)
        r->got[n] = '\0';
    CHECK_INT(asyncio_forget_fd(r->fd), 0);
    r->done = true;
    LOG("read:%s", r->got);
    return 0;
}

static void test_embedded_socket_read_wakes_the_backend_fd(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        int fd = asyncio_loop_backend_fd(loop);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct sock_reader r = {.fd = sv[0]};
        assert_int_equal(asyncio_create_task(NULL, task_reads_socket, &r, "reader"), 0);
        int64_t next = 12345;
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_true(r.waiting);
        assert_int_equal(next, -1); /* only the fd can wake it */
        if (fd >= 0) {
            assert_int_equal(poll_fd(fd, 0), 0); /* nothing yet */
            assert_int_equal(write(sv[1], "hi", 2), 2);
            assert_int_equal(poll_fd(fd, (int)(WAIT_S * 1000)), 1);
            assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
            assert_true(r.done);
        } else {
            assert_int_equal(write(sv[1], "hi", 2), 2);
            double deadline = asyncio_loop_time() + WAIT_S;
            while (!r.done && asyncio_loop_time() < deadline) {
                assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
                if (!r.done)
                    poll_fd(-1, 5);
            }
            if (!r.done)
                fail_msg("poll backend: the reader never got its data");
        }
        assert_string_equal(r.got, "hi");
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0); /* the task's end */
        assert_int_equal((int)asyncio_task_count(), 0);
        assert_int_equal(next, -1);
        assert_log("read:hi");
        close(sv[0]);
        close(sv[1]);
        close_loop(loop);
    }
}

/* A task writes a little to a stream, then sleeps long: what it queued
 * must be sent before run_nowait() returns, as the embedding may wait for
 * the whole next_ns before it calls again. */
struct writer_then_sleep {
    int fd;
};

static int task_writes_then_sleeps(void *arg, void **result)
{
    (void)result;
    struct writer_then_sleep *w = arg;
    asyncio_stream_t *s;
    CHECK_INT(asyncio_stream_open(&s, w->fd, 0), 0);
    CHECK_INT(asyncio_stream_write(s, "hey", 3), 0);
    int rc = asyncio_sleep(3600);
    asyncio_stream_close(s);
    return rc;
}

static void test_run_nowait_sends_what_its_tasks_queued(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct writer_then_sleep w = {sv[0]};
        assert_int_equal(asyncio_create_task(NULL, task_writes_then_sleeps, &w, "writer"), 0);
        int64_t next = 0;
        for (int i = 0; i < 3 && next == 0; i++)
            assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_true(next > 1000000000LL); /* the sleep: an hour */
        char buf[8] = {0};
        assert_int_equal(poll_fd(sv[1], 0), 1); /* sent already, not at the next call */
        assert_int_equal(read(sv[1], buf, sizeof buf - 1), 3);
        assert_string_equal(buf, "hey");
        close_loop(loop); /* cancels the sleeper, which closes sv[0] */
        close(sv[1]);
    }
}

/* Another thread's asyncio_call_soon_threadsafe() and asyncio_loop_stop()
 * make the backend fd readable; the next run_nowait() runs the callback
 * (in this thread), or returns 1 for the stop. */
struct poster {
    asyncio_loop_t *loop;
    pthread_t loop_thread;
    bool stop;
    int rc;
};

static void cb_in_loop_thread(void *arg)
{
    struct poster *p = arg;
    CHECK(pthread_equal(pthread_self(), p->loop_thread));
    LOG("posted");
}

static void *post_from_thread(void *arg)
{
    struct poster *p = arg;
    p->rc = p->stop ? asyncio_loop_stop(p->loop)
                    : asyncio_call_soon_threadsafe(p->loop, cb_in_loop_thread, p, NULL);
    return NULL;
}

static void post_and_drive(asyncio_loop_t *loop, int fd, struct poster *p, int expect_nowait)
{
    pthread_t th;
    p->rc = 1;
    assert_int_equal(pthread_create(&th, NULL, post_from_thread, p), 0);
    if (fd >= 0) {
        /* Wakes this poll() without a timeout's help. */
        assert_int_equal(poll_fd(fd, (int)(WAIT_S * 1000)), 1);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p->rc, 0);
    /* The post is made: the next iteration takes it. */
    int64_t next = 12345;
    assert_int_equal(asyncio_loop_run_nowait(loop, &next), expect_nowait);
    assert_int_equal(next, -1);
}

static void test_embedded_posts_from_another_thread_wake_the_backend_fd(void **state)
{
    (void)state;
    for (size_t b = 0; b < NBACKENDS; b++) {
        tu_reset();
        asyncio_loop_t *loop = new_loop_ex(backends[b], false);
        int fd = asyncio_loop_backend_fd(loop);
        int64_t next = 12345;
        assert_int_equal(asyncio_loop_run_nowait(loop, &next), 0);
        assert_int_equal(next, -1);
        struct poster p = {.loop = loop, .loop_thread = pthread_self()};
        post_and_drive(loop, fd, &p, 0);
        assert_log("posted");
        p.stop = true;
        post_and_drive(loop, fd, &p, 1);
        assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0); /* consumed */
        p.stop = false;
        post_and_drive(loop, fd, &p, 0);
        assert_log("posted posted");
        close_loop(loop);
    }
}

/* Once run_nowait() has taken what another thread posted, the backend fd
 * is quiet again: an embedding that polls it must not be woken over and
 * over for a post already handled (its poll() would spin). A loop with no
 * fd of its own watched, only the inbox's; epoll (the only backend with
 * an fd). */
static void test_embedded_backend_fd_is_quiet_once_a_post_is_taken(void **state)
{
    (void)state;
    tu_reset();
    asyncio_loop_t *loop = new_loop_ex("epoll", false);
    int fd = asyncio_loop_backend_fd(loop);
    assert_true(fd >= 0);
    struct poster p = {.loop = loop, .loop_thread = pthread_self()};
    for (int round = 0; round < 2; round++) {
        p.stop = round == 1;
        post_and_drive(loop, fd, &p, p.stop ? 1 : 0);
        /* Allow a spurious wake-up or two, no more. */
        int spins = 0;
        while (poll_fd(fd, 0) == 1 && spins < 3) {
            assert_int_equal(asyncio_loop_run_nowait(loop, NULL), 0);
            spins++;
        }
        if (poll_fd(fd, 0) == 1)
            fail_msg("round %d (%s): the backend fd is still readable after %d more "
                     "run_nowait() calls, with nothing to handle (an embedding's poll() "
                     "spins)",
                     round, p.stop ? "asyncio_loop_stop()" : "call_soon_threadsafe()", spins);
    }
    assert_log("posted");
    close_loop(loop);
}

/* ---- several loops at once ------------------------------------------------ */

#define NLOOPS 4
#define NWORKERS 8

struct loop_rec {
    int index;
    pthread_barrier_t *start;
    sem_t running;  /* posted from inside its run_forever() */
    sem_t finished; /* posted once its loop is closed */
    asyncio_loop_t *loop; /* a reference for the test's thread */
    int new_rc, ruc_rc, rf_rc, close_rc;
    void *ruc_result;
    int workers_ok;
    long ticks;     /* the ticker's rounds */
    int ticker_end; /* what the ticker's wait returned when the close came */
    int posted;     /* callbacks the test's thread posted, run */
    int bad;
    char first_bad[160];
};

__attribute__((format(printf, 2, 3))) static void rec_bad(struct loop_rec *r, const char *fmt,
                                                         ...)
{
    if (r->bad++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->first_bad, sizeof r->first_bad, fmt, ap);
        va_end(ap);
    }
}

static int worker(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    for (int k = 0; k < 5; k++) {
        int rc = asyncio_sleep((double)((i + k) % 3) * 0.001);
        if (rc != 0)
            return rc;
    }
    *result = (void *)(i * 10);
    return 0;
}

static int rec_work(void *arg, void **result)
{
    struct loop_rec *r = arg;
    asyncio_task_t *ts[NWORKERS];
    int made = 0;
    for (int i = 0; i < NWORKERS; i++) {
        int rc = asyncio_create_task(&ts[i], worker, (void *)(intptr_t)i, NULL);
        if (rc != 0) {
            rec_bad(r, "create_task: %d", rc);
            break;
        }
        made++;
    }
    void *results[NWORKERS];
    int rc = asyncio_gather((size_t)made, ts, results, NULL, 0);
    if (rc != 0)
        rec_bad(r, "gather: %d", rc);
    for (int i = 0; i < made; i++) {
        if (rc == 0 && results[i] == (void *)(intptr_t)(i * 10))
            r->workers_ok++;
        asyncio_task_release(ts[i]);
    }
    if (asyncio_loop_is_running(r->loop) != 1)
        rec_bad(r, "not running in its own task");
    *result = r;
    return 0;
}

static int ticker(void *arg, void **result)
{
    (void)result;
    struct loop_rec *r = arg;
    for (;;) {
        int rc = asyncio_sleep(0.001);
        if (rc != 0) {
            r->ticker_end = rc;
            return rc;
        }
        r->ticks++;
    }
}

static void cb_rec_running(void *arg)
{
    struct loop_rec *r = arg;
    sem_post(&r->running);
}

static void cb_rec_posted(void *arg)
{
    struct loop_rec *r = arg;
    r->posted++;
}

static void *loop_thread(void *arg)
{
    struct loop_rec *r = arg;
    asyncio_loop_t *l = NULL;
    r->new_rc = asyncio_new_event_loop(&l, NULL);
    if (r->new_rc == 0)
        r->loop = asyncio_loop_ref(l);
    pthread_barrier_wait(r->start); /* all made: the runs overlap */
    if (r->new_rc != 0) {
        sem_post(&r->running);
        sem_post(&r->finished);
        return NULL;
    }
    r->ruc_rc = asyncio_loop_run_until_complete(l, rec_work, r, &r->ruc_result);
    int rc = asyncio_create_task(NULL, ticker, r, "ticker");
    if (rc != 0)
        rec_bad(r, "ticker: %d", rc);
    if ((rc = asyncio_call_soon(cb_rec_running, r, NULL)) != 0) {
        rec_bad(r, "call_soon: %d", rc);
        sem_post(&r->running);
    }
    r->rf_rc = asyncio_loop_run_forever(l);
    if (asyncio_loop_is_running(l) != 0)
        rec_bad(r, "running after run_forever()");
    r->close_rc = asyncio_loop_close(l);
    asyncio_loop_unref(l);
    sem_post(&r->finished);
    return NULL;
}

static void test_four_loops_in_four_threads_stopped_from_the_main_thread(void **state)
{
    (void)state;
    tu_reset();
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, NLOOPS), 0);
    struct loop_rec recs[NLOOPS];
    pthread_t th[NLOOPS];
    for (int i = 0; i < NLOOPS; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        recs[i].index = i;
        recs[i].start = &start;
        recs[i].rf_rc = recs[i].close_rc = recs[i].ruc_rc = 1;
        assert_int_equal(sem_init(&recs[i].running, 0, 0), 0);
        assert_int_equal(sem_init(&recs[i].finished, 0, 0), 0);
        assert_int_equal(pthread_create(&th[i], NULL, loop_thread, &recs[i]), 0);
    }
    /* Everything below is bounded, and the loops are stopped whatever
     * happened, before any assertion. */
    int running_rc[NLOOPS], is_running[NLOOPS], post_rc[NLOOPS], stop_rc[NLOOPS], fin_rc[NLOOPS];
    for (int i = 0; i < NLOOPS; i++) {
        running_rc[i] = sem_wait_s(&recs[i].running, WAIT_S);
        is_running[i] = recs[i].loop ? asyncio_loop_is_running(recs[i].loop) : -1;
    }
    for (int i = 0; i < NLOOPS; i++) {
        /* A callback posted in, then the stop after it. */
        post_rc[i] = recs[i].loop ? asyncio_call_soon_threadsafe(recs[i].loop, cb_rec_posted,
                                                                 &recs[i], NULL)
                                  : -1;
        stop_rc[i] = recs[i].loop ? asyncio_loop_stop(recs[i].loop) : -1;
    }
    bool all_finished = true;
    for (int i = 0; i < NLOOPS; i++) {
        fin_rc[i] = sem_wait_s(&recs[i].finished, WAIT_S);
        all_finished &= fin_rc[i] == 0;
    }
    if (!all_finished)
        fail_msg("a loop did not return from run_forever() after a stop (finished: %d %d %d %d)",
                 fin_rc[0], fin_rc[1], fin_rc[2], fin_rc[3]);
    for (int i = 0; i < NLOOPS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < NLOOPS; i++) {
        struct loop_rec *r = &recs[i];
        if (r->bad)
            fail_msg("loop %d: %d unexpected outcome(s); first: %s", i, r->bad, r->first_bad);
        assert_int_equal(r->new_rc, 0);
        assert_int_equal(running_rc[i], 0);
        assert_int_equal(is_running[i], 1);
        assert_int_equal(r->ruc_rc, 0);
        assert_ptr_equal(r->ruc_result, r);
        assert_int_equal(r->workers_ok, NWORKERS);
        assert_int_equal(post_rc[i], 0);
        assert_int_equal(stop_rc[i], 0);
        assert_int_equal(r->rf_rc, 0);
        assert_int_equal(r->posted, 1); /* posted before the stop: it ran */
        assert_int_equal(r->close_rc, 0);
        assert_int_equal(r->ticker_end, -ECANCELED); /* cancelled by the close */
        assert_int_equal(asyncio_loop_is_closed(r->loop), 1);
        assert_int_equal(asyncio_loop_is_running(r->loop), 0);
        assert_int_equal(asyncio_loop_stop(r->loop), -ESHUTDOWN);
        asyncio_loop_unref(r->loop);
        sem_destroy(&r->running);
        sem_destroy(&r->finished);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        runner_test(test_stop_in_a_callback_ends_the_run_after_that_iteration),
        runner_test(test_stop_in_a_task_ends_the_run_after_that_iteration),
        runner_test(test_stop_before_run_forever_runs_one_iteration),
        runner_test(test_run_until_complete_stops_in_the_iteration_after_the_task),
        runner_test(test_run_until_complete_twice_and_more_on_one_loop),
        runner_test(test_tasks_and_callbacks_made_before_the_first_run),
        runner_test(test_a_task_left_pending_goes_on_at_the_next_run),
        runner_test(test_run_until_complete_stopped_early_is_eintr_and_the_task_goes_on),
        runner_test(test_run_until_complete_stopped_early_then_closed_cancels_the_task),
        runner_test(test_stop_before_run_until_complete_is_eintr_after_one_iteration),
        runner_test(test_stop_in_the_iteration_the_task_ends_returns_its_result),
        runner_test(test_close_cancels_the_tasks_left_and_runs_what_they_leave_ready),
        runner_test(test_close_runs_the_ready_callbacks_once_and_no_timers),
        runner_test(test_close_of_a_loop_that_never_ran),
        runner_test(test_is_running_and_the_current_loops),
        runner_test(test_is_running_seen_from_another_thread),
        runner_test(test_the_loop_outlives_the_callers_reference_until_closed),
        runner_test(test_null_arguments_are_einval),
        runner_test(test_calls_on_a_closed_loop_are_eshutdown),
        runner_test(test_running_or_closing_a_running_loop_is_ebusy),
        runner_test(test_one_loop_per_thread_and_a_new_one_after_close),
        runner_test(test_new_event_loop_refuses_options_as_run_ex_does),
        runner_test(test_another_threads_loop_is_exdev),
        runner_test(test_stop_from_another_thread_wakes_a_sleeping_loop),
        runner_test(test_stop_from_another_thread_before_the_run),
        runner_test(test_stops_from_another_thread_while_the_loop_runs_and_closes),
        runner_test(test_backend_fd_on_each_backend),
        runner_test(test_run_nowait_next_ns),
        runner_test(test_run_nowait_returns_1_after_a_stop),
        runner_test(test_embedded_timers_fire_in_order_and_not_early),
        runner_test(test_embedded_socket_read_wakes_the_backend_fd),
        runner_test(test_run_nowait_sends_what_its_tasks_queued),
        runner_test(test_embedded_posts_from_another_thread_wake_the_backend_fd),
        runner_test(test_embedded_backend_fd_is_quiet_once_a_post_is_taken),
        runner_test(test_four_loops_in_four_threads_stopped_from_the_main_thread),
    };
    return tu_run_group_tests_name("runner", tests, NULL, NULL);
}
