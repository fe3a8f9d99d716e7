/*
 * Thread-safe futures (<asyncio/thread.h>, issue 18): asyncio_cfuture_*,
 * asyncio_run_coroutine_threadsafe() and asyncio_wrap_future() (CPython:
 * test_asyncio/test_tasks.py's RunCoroutineThreadsafeTests and
 * test_futures.py's wrap_future tests).
 *
 *   - a plain thread starts tasks in a running loop and waits for them:
 *     success, a positive status, a failure, a task that returns
 *     -ECANCELED; timeouts 0 and bounded on a pending future; cancelling
 *     the future, which cancels the task in the loop; a loop that closes
 *     before the task starts or while it runs; a loop already closed; a
 *     task that starts one in its own loop;
 *   - tasks waiting for a future another thread completes (other tasks run
 *     meanwhile), and such waits cut short by a cancellation (also once
 *     the completion is on its way) or a timeout, with the future completed
 *     after (even once the loop closed);
 *   - the future alone: completed twice, read many times, cancelled, its
 *     references and arguments; waited for from a loop callback (-EPERM);
 *   - asyncio_wrap_future(): loop futures that follow a thread-safe one,
 *     with asyncio_gather() and asyncio_await(), done already, cancelled,
 *     their thread-safe future dropped, outlived by it, completed as the
 *     loop closes, outside a loop;
 *   - one future waited for by tasks of two loops and by plain threads; a
 *     task of one loop running tasks in another loop's thread;
 *   - races: threads completing the same futures, waits ending on their
 *     timeouts or cancellations as a thread completes their futures, a
 *     cancellation under way while the task ends and its loop closes;
 *   - many threads making round trips into one loop, with and without
 *     cancellations, and racing with the loop's close.
 *
 * Every wait is bounded: plain threads wait at most WAIT_S seconds (a
 * timeout there is a failure), tasks run under tu_run_bounded()'s scope,
 * and the watchdog ends what hangs anyway. No test measures time.
 *
 * testutil's CHECK() and order log are one set of globals for the loop of
 * the test's thread: plain threads (and loops in other threads) keep their
 * own record (struct rec), which the test checks after joining them.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdbool.h>
#include <time.h>

/* How long a plain thread waits for anything (far more than it needs). */
#define WAIT_S 10.0

static int g_v1, g_v2, g_v3, g_sentinel;

/* ---- a plain thread's record -------------------------------------------- */

struct rec {
    int bad; /* checks that failed: the first is described in first_bad */
    char first_bad[300];
};

__attribute__((format(printf, 4, 5))) static void rec_bad(struct rec *r, const char *file, int line,
                                                         const char *fmt, ...)
{
    if (r->bad++ == 0) {
        int n = snprintf(r->first_bad, sizeof r->first_bad, "%s:%d: ", file, line);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof r->first_bad)
            vsnprintf(r->first_bad + n, sizeof r->first_bad - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

#define RCHECK(r, cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            rec_bad((r), __FILE__, __LINE__, "%s", #cond);                     \
    } while (0)

#define RCHECK_INT(r, actual, expected)                                        \
    do {                                                                       \
        long long rc_a_ = (long long)(actual);                                 \
        long long rc_e_ = (long long)(expected);                               \
        if (rc_a_ != rc_e_) {                                                  \
            char rc_b1_[32], rc_b2_[32];                                       \
            rec_bad((r), __FILE__, __LINE__, "%s is %s, expected %s", #actual, \
                    tu_err_r(rc_a_, rc_b1_), tu_err_r(rc_e_, rc_b2_));         \
        }                                                                      \
    } while (0)

#define RCHECK_PTR(r, actual, expected)                                        \
    do {                                                                       \
        const void *rc_a_ = (const void *)(actual);                            \
        const void *rc_e_ = (const void *)(expected);                          \
        if (rc_a_ != rc_e_)                                                    \
            rec_bad((r), __FILE__, __LINE__, "%s is %p, expected %p", #actual, \
                    rc_a_, rc_e_);                                             \
    } while (0)

static void assert_rec_clean(const struct rec *r, const char *who)
{
    if (r->bad)
        fail_msg("%s: %d check(s) failed; first: %s", who, r->bad, r->first_bad);
}

/* ---- threads and bounded waits ------------------------------------------- */

static int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    return -pthread_create(t, NULL, fn, arg);
}

/* sem_wait(), for at most WAIT_S seconds: 0 or -ETIMEDOUT. */
static int sem_wait_bounded(sem_t *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)WAIT_S;
    while (sem_timedwait(s, &ts) != 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* From a plain thread: set the loop future fut, in its loop. */
static int set_in_loop(asyncio_loop_t *loop, asyncio_future_t *fut)
{
    return asyncio_call_soon_threadsafe(loop, tu_cb_set_future, fut, NULL);
}

/* The running loop, referenced for a thread to use (CHECKed). */
static asyncio_loop_t *loop_for_thread(void)
{
    asyncio_loop_t *loop = asyncio_get_running_loop();
    CHECK(loop != NULL);
    CHECK_INT(asyncio_loop_is_closed(loop), 0);
    return asyncio_loop_ref(loop);
}

/* ---- tasks started from threads ----------------------------------------- */

/* What a task ends with. */
struct outcome {
    const char *name;
    int status;
    void *result;
};

/* Logs, suspends once (so the outcome comes from a task that waited in the
 * loop), then ends as o says. */
static int outcome_task(void *arg, void **result)
{
    const struct outcome *o = arg;
    LOG("task-%s", o->name);
    CHECK_INT(asyncio_sleep(0), 0);
    *result = o->result;
    return o->status;
}

/* A round trip's task: no CHECK or LOG, it may run in another thread's
 * loop. Returns arg as its result. */
static int echo_task(void *arg, void **result)
{
    int rc = asyncio_sleep(0);
    *result = arg;
    return rc;
}

/* ---- a thread gets a task's outcome -------------------------------------- */

static const struct outcome g_outcomes[] = {
    {"ok", 0, &g_v1},
    {"three", 3, &g_v2},       /* a status above 0 is a success too */
    {"eio", -EIO, NULL},
    {"canceled", -ECANCELED, NULL}, /* returned, not cancelled from outside */
};
#define NOUTCOMES (sizeof g_outcomes / sizeof g_outcomes[0])

/* A plain thread that talks to the loop of the test's thread. */
struct client {
    void *(*fn)(void *);    /* what the thread runs (given the client) */
    asyncio_loop_t *loop;   /* referenced for it */
    asyncio_future_t *done; /* a loop future the thread sets when through */
    pthread_t thread;
    bool started;
    struct rec rec;
};

static void *outcomes_client(void *arg)
{
    struct client *c = arg;
    struct rec *r = &c->rec;
    RCHECK_PTR(r, asyncio_get_running_loop(), NULL); /* no loop runs here */
    RCHECK_INT(r, asyncio_loop_is_closed(c->loop), 0);
    for (size_t i = 0; i < NOUTCOMES; i++) {
        const struct outcome *o = &g_outcomes[i];
        asyncio_cfuture_t *f = NULL;
        int rc = asyncio_run_coroutine_threadsafe(c->loop, outcome_task, (void *)o, &f);
        RCHECK_INT(r, rc, 0);
        if (rc != 0)
            continue;
        void *res = &g_sentinel;
        RCHECK_INT(r, asyncio_cfuture_result(f, WAIT_S, &res), o->status);
        if (o->status >= 0)
            RCHECK_PTR(r, res, o->result);
        RCHECK_INT(r, asyncio_cfuture_done(f), 1);
        /* Done: cancel says so and changes nothing. */
        RCHECK_INT(r, asyncio_cfuture_cancel(f), 0);
        res = &g_sentinel;
        RCHECK_INT(r, asyncio_cfuture_result(f, 0, &res), o->status);
        if (o->status >= 0)
            RCHECK_PTR(r, res, o->result);
        RCHECK_INT(r, asyncio_cfuture_result(f, -1, NULL), o->status);
        asyncio_cfuture_unref(f);
    }
    RCHECK_INT(r, set_in_loop(c->loop, c->done), 0);
    return NULL;
}

/* The main task of a test with one client thread: start it, wait until it
 * says it is through. */
static int main_with_client(void *arg, void **result)
{
    (void)result;
    struct client *c = arg;
    c->loop = loop_for_thread();
    c->done = tu_future();
    int rc = thread_start(&c->thread, c->fn, c);
    CHECK_INT(rc, 0);
    c->started = rc == 0;
    if (c->started)
        CHECK_INT(asyncio_await(c->done, NULL), 0);
    asyncio_future_release(c->done);
    return 0;
}

/* After the loop: join the client, check its record, drop its loop. */
static void join_client(struct client *c)
{
    assert_true(c->started);
    assert_int_equal(pthread_join(c->thread, NULL), 0);
    /* The loop has closed; the reference keeps the handle. */
    assert_int_equal(asyncio_loop_is_closed(c->loop), 1);
    asyncio_loop_unref(c->loop);
    assert_rec_clean(&c->rec, "client thread");
}

static void test_thread_gets_the_outcome_of_a_task_it_started_in_a_running_loop(void **state)
{
    (void)state;
    struct client c = {.fn = outcomes_client};
    assert_int_equal(tu_run_bounded(main_with_client, &c, NULL, WAIT_S), 0);
    join_client(&c);
    assert_log("task-ok task-three task-eio task-canceled");
}

/* ---- timeouts on a pending future ---------------------------------------- */

/* Waits at the gate (a loop future), then succeeds with 7. */
static int gated_task(void *arg, void **result)
{
    LOG("gated-wait");
    int rc = asyncio_await((asyncio_future_t *)arg, NULL);
    LOG("gated-woke:%s", tu_err(rc));
    *result = &g_v3;
    return rc == 0 ? 7 : rc;
}

struct gate_client {
    struct client c; /* first: the thread is given the client */
    asyncio_future_t *gate;
};

static void *gate_client(void *arg)
{
    struct gate_client *g = arg;
    struct rec *r = &g->c.rec;
    asyncio_loop_t *loop = g->c.loop;
    asyncio_cfuture_t *f = NULL;
    int rc = asyncio_run_coroutine_threadsafe(loop, gated_task, g->gate, &f);
    RCHECK_INT(r, rc, 0);
    if (rc == 0) {
        void *res = &g_sentinel;
        RCHECK_INT(r, asyncio_cfuture_result(f, 0, &res), -ETIMEDOUT);     /* no wait */
        RCHECK_INT(r, asyncio_cfuture_result(f, 0.05, &res), -ETIMEDOUT);  /* a bounded one */
        RCHECK_INT(r, asyncio_cfuture_result(f, 1e-9, &res), -ETIMEDOUT);
        RCHECK_INT(r, asyncio_cfuture_done(f), 0);
        /* Open the gate: the task ends, the wait gets its outcome. */
        RCHECK_INT(r, set_in_loop(loop, g->gate), 0);
        RCHECK_INT(r, asyncio_cfuture_result(f, WAIT_S, &res), 7);
        RCHECK_PTR(r, res, &g_v3);
        asyncio_cfuture_unref(f);
    }
    RCHECK_INT(r, set_in_loop(loop, g->c.done), 0);
    return NULL;
}

static int main_gate(void *arg, void **result)
{
    struct gate_client *g = arg;
    g->gate = tu_future();
    int rc = main_with_client(&g->c, result);
    asyncio_future_release(g->gate);
    return rc;
}

static void test_result_of_a_pending_future_times_out_with_timeout_0_or_bounded(void **state)
{
    (void)state;
    struct gate_client g = {.c.fn = gate_client};
    assert_int_equal(tu_run_bounded(main_gate, &g, NULL, WAIT_S), 0);
    join_client(&g.c);
    assert_log("gated-wait gated-woke:0");
}

static void test_result_of_a_pending_future_times_out_in_a_thread_without_a_loop(void **state)
{
    (void)state;
    asyncio_cfuture_t *f = NULL;
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_non_null(f);
    void *res = NULL;
    assert_int_equal(asyncio_cfuture_result(f, 0, &res), -ETIMEDOUT);
    assert_int_equal(asyncio_cfuture_result(f, 0.02, &res), -ETIMEDOUT);
    assert_int_equal(asyncio_cfuture_done(f), 0);
    assert_int_equal(asyncio_cfuture_set_result(f, 0, &g_v1), 0);
    /* Done: no limit, or an infinite one, returns at once. */
    assert_int_equal(asyncio_cfuture_result(f, -1, &res), 0);
    assert_ptr_equal(res, &g_v1);
    res = NULL;
    assert_int_equal(asyncio_cfuture_result(f, INFINITY, &res), 0);
    assert_ptr_equal(res, &g_v1);
    asyncio_cfuture_unref(f);
}

/* ---- a thread cancels the future ------------------------------------------ */

struct cancel_client {
    struct client c; /* first: the thread is given the client */
    asyncio_cfuture_t *started, *finished; /* set by the task */
    asyncio_cfuture_t *f;                  /* the thread's future */
};

static int cancellable_task(void *arg, void **result)
{
    struct cancel_client *cc = arg;
    CHECK_INT(asyncio_cfuture_set_result(cc->started, 0, NULL), 0);
    int rc = asyncio_sleep(WAIT_S);
    LOG("task-wait:%s", tu_err(rc));
    CHECK_INT(asyncio_cfuture_set_result(cc->finished, 0, NULL), 0);
    *result = &g_v2;
    return 42; /* ignored: the future was cancelled */
}

static void *cancel_client(void *arg)
{
    struct cancel_client *cc = arg;
    struct rec *r = &cc->c.rec;
    int rc = asyncio_run_coroutine_threadsafe(cc->c.loop, cancellable_task, cc, &cc->f);
    RCHECK_INT(r, rc, 0);
    if (rc == 0) {
        RCHECK_INT(r, asyncio_cfuture_result(cc->started, WAIT_S, NULL), 0);
        RCHECK_INT(r, asyncio_cfuture_cancel(cc->f), 1);
        /* Done as cancelled at once, whatever the task does. */
        RCHECK_INT(r, asyncio_cfuture_done(cc->f), 1);
        void *res = &g_sentinel;
        RCHECK_INT(r, asyncio_cfuture_result(cc->f, 0, &res), -ECANCELED);
        RCHECK_INT(r, asyncio_cfuture_cancel(cc->f), 0);
        RCHECK_INT(r, asyncio_cfuture_set_result(cc->f, 0, &g_v1), -EALREADY);
    }
    /* The loop's main task waits for the task's end (cc->finished). */
    return NULL;
}

static int main_cancel(void *arg, void **result)
{
    (void)result;
    struct cancel_client *cc = arg;
    struct client *c = &cc->c;
    c->loop = loop_for_thread();
    int rc = thread_start(&c->thread, cancel_client, cc);
    CHECK_INT(rc, 0);
    c->started = rc == 0;
    if (c->started) {
        CHECK_INT(asyncio_cfuture_result(cc->finished, INFINITY, NULL), 0);
        LOG("finished");
    }
    return 0;
}

static void test_thread_cancels_the_future_and_the_task_in_the_loop_is_cancelled(void **state)
{
    (void)state;
    struct cancel_client cc = {0};
    assert_int_equal(asyncio_cfuture_new(&cc.started), 0);
    assert_int_equal(asyncio_cfuture_new(&cc.finished), 0);
    assert_int_equal(tu_run_bounded(main_cancel, &cc, NULL, WAIT_S), 0);
    assert_true(cc.c.started);
    assert_int_equal(pthread_join(cc.c.thread, NULL), 0);
    assert_rec_clean(&cc.c.rec, "client thread");
    assert_log("task-wait:ECANCELED finished");
    /* What the task returned after its cancellation changed nothing. */
    void *res = NULL;
    assert_int_equal(asyncio_cfuture_result(cc.f, 0, &res), -ECANCELED);
    assert_int_equal(asyncio_cfuture_done(cc.f), 1);
    asyncio_cfuture_unref(cc.f);
    asyncio_cfuture_unref(cc.started);
    asyncio_cfuture_unref(cc.finished);
    asyncio_loop_unref(cc.c.loop);
}

/* ---- loops that close ------------------------------------------------------- */

static asyncio_loop_t *g_loop;

static int logging_task(void *arg, void **result)
{
    (void)result;
    LOG("ran:%s", (const char *)arg);
    return 0;
}

static int main_keep_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_loop = loop_for_thread();
    return 0;
}

static int main_use_old_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Another loop runs in this thread now: the old one is still closed. */
    CHECK_INT(asyncio_loop_is_closed(g_loop), 1);
    CHECK(asyncio_get_running_loop() != g_loop);
    CHECK_INT(asyncio_loop_is_closed(asyncio_get_running_loop()), 0);
    asyncio_cfuture_t *f = NULL;
    CHECK_INT(asyncio_run_coroutine_threadsafe(g_loop, logging_task, "old-loop", &f), -ESHUTDOWN);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

struct closed_client {
    asyncio_loop_t *loop;
    struct rec rec;
};

static void *closed_client(void *arg)
{
    struct closed_client *c = arg;
    asyncio_cfuture_t *f = NULL;
    RCHECK_INT(&c->rec, asyncio_loop_is_closed(c->loop), 1);
    RCHECK_INT(&c->rec, asyncio_run_coroutine_threadsafe(c->loop, logging_task, "thread", &f),
               -ESHUTDOWN);
    return NULL;
}

static void test_run_coroutine_threadsafe_on_a_closed_loop_is_eshutdown(void **state)
{
    (void)state;
    g_loop = NULL;
    assert_int_equal(tu_run(main_keep_loop, NULL, NULL), 0);
    assert_non_null(g_loop);
    assert_int_equal(asyncio_loop_is_closed(g_loop), 1);
    asyncio_cfuture_t *f = NULL;
    assert_int_equal(asyncio_run_coroutine_threadsafe(g_loop, logging_task, "late", &f),
                     -ESHUTDOWN);
    assert_int_equal(asyncio_call_soon_threadsafe(g_loop, tu_cb_set_future, NULL, NULL),
                     -ESHUTDOWN);
    /* From another thread, and from a new loop of this one. */
    struct closed_client c = {.loop = g_loop};
    pthread_t t;
    assert_int_equal(thread_start(&t, closed_client, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_rec_clean(&c.rec, "thread");
    assert_int_equal(tu_run(main_use_old_loop, NULL, NULL), 0);
    assert_log(""); /* nothing ran */
    asyncio_loop_unref(g_loop);
    g_loop = NULL;
}

/* The loop closes while the task a thread started still waits. */
struct closing_client {
    struct client c; /* first: the thread is given the client */
    asyncio_future_t *task_started; /* set by the task */
};

static int sleeper_task(void *arg, void **result)
{
    (void)result;
    struct closing_client *cc = arg;
    tu_cb_set_future(cc->task_started);
    int rc = asyncio_sleep(WAIT_S);
    LOG("sleeper:%s", tu_err(rc));
    return rc;
}

static void *closing_client(void *arg)
{
    struct closing_client *cc = arg;
    struct rec *r = &cc->c.rec;
    asyncio_cfuture_t *f = NULL;
    int rc = asyncio_run_coroutine_threadsafe(cc->c.loop, sleeper_task, cc, &f);
    RCHECK_INT(r, rc, 0);
    if (rc == 0) {
        void *res = &g_sentinel;
        RCHECK_INT(r, asyncio_cfuture_result(f, WAIT_S, &res), -ECANCELED);
        RCHECK_INT(r, asyncio_cfuture_done(f), 1);
        asyncio_cfuture_unref(f);
    }
    return NULL;
}

static int main_closing(void *arg, void **result)
{
    (void)result;
    struct closing_client *cc = arg;
    struct client *c = &cc->c;
    c->loop = loop_for_thread();
    cc->task_started = tu_future();
    int rc = thread_start(&c->thread, closing_client, cc);
    CHECK_INT(rc, 0);
    c->started = rc == 0;
    if (c->started)
        CHECK_INT(asyncio_await(cc->task_started, NULL), 0);
    LOG("main-returns");
    asyncio_future_release(cc->task_started);
    return 0; /* the loop closes: it cancels the sleeper */
}

static void test_loop_closing_before_the_started_task_ends_cancels_its_future(void **state)
{
    (void)state;
    struct closing_client cc = {0};
    assert_int_equal(tu_run_bounded(main_closing, &cc, NULL, WAIT_S), 0);
    assert_true(cc.c.started);
    /* The thread wakes: its wait ends as cancelled. */
    assert_int_equal(pthread_join(cc.c.thread, NULL), 0);
    assert_rec_clean(&cc.c.rec, "client thread");
    assert_int_equal(asyncio_loop_is_closed(cc.c.loop), 1);
    asyncio_loop_unref(cc.c.loop);
    assert_log("main-returns sleeper:ECANCELED");
}

/* Started from the loop's own thread, never run: the loop closes first,
 * with no other task left (the start is still in the inbox) or with one
 * (the start comes while the loop winds down). */
static asyncio_cfuture_t *g_unstarted;

static int main_start_and_return(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_run_coroutine_threadsafe(asyncio_get_running_loop(), logging_task,
                                               "never", &g_unstarted),
              0);
    return 0;
}

static int sleeper_no_arg_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(WAIT_S);
    LOG("sleeper:%s", tu_err(rc));
    return rc;
}

static int main_start_and_return_with_a_sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(sleeper_no_arg_task, NULL, "sleeper");
    asyncio_task_release(t);
    CHECK_INT(asyncio_sleep(0), 0); /* it sleeps now */
    return main_start_and_return(NULL, result);
}

static void test_loop_closing_before_the_task_starts_cancels_its_future(void **state)
{
    (void)state;
    for (int with_sleeper = 0; with_sleeper < 2; with_sleeper++) {
        g_unstarted = NULL;
        assert_int_equal(tu_run(with_sleeper ? main_start_and_return_with_a_sleeper
                                             : main_start_and_return,
                                NULL, NULL),
                         0);
        assert_non_null(g_unstarted);
        assert_int_equal(asyncio_cfuture_done(g_unstarted), 1);
        void *res = &g_sentinel;
        assert_int_equal(asyncio_cfuture_result(g_unstarted, 0, &res), -ECANCELED);
        assert_int_equal(asyncio_cfuture_cancel(g_unstarted), 0);
        asyncio_cfuture_unref(g_unstarted);
        assert_log(with_sleeper ? "sleeper:ECANCELED" : ""); /* "never" never ran */
    }
}

/* ---- a task starts a task in its own loop ------------------------------------ */

static int signalling_task(void *arg, void **result)
{
    (void)result;
    LOG("ran:signalling");
    tu_cb_set_future(arg);
    return 0;
}

static int main_own_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_loop_t *loop = asyncio_get_running_loop();
    static const struct outcome own = {"own", 0, &g_v1};
    asyncio_cfuture_t *f = NULL;
    CHECK_INT(asyncio_run_coroutine_threadsafe(loop, outcome_task, (void *)&own, &f), 0);
    void *res = NULL;
    CHECK_INT(asyncio_cfuture_result(f, INFINITY, &res), 0);
    CHECK_PTR(res, &g_v1);
    asyncio_cfuture_unref(f);
    /* Cancelled before the loop got to start it: it never runs. */
    CHECK_INT(asyncio_run_coroutine_threadsafe(loop, logging_task, "cancelled-early", &f), 0);
    CHECK_INT(asyncio_cfuture_cancel(f), 1);
    CHECK_INT(asyncio_cfuture_result(f, 0, NULL), -ECANCELED);
    asyncio_cfuture_unref(f);
    /* Started after it, its future dropped at once: it runs all the same
     * (and, started in order, after the one cancelled would have). */
    asyncio_future_t *ran = tu_future();
    CHECK_INT(asyncio_run_coroutine_threadsafe(loop, signalling_task, ran, &f), 0);
    asyncio_cfuture_unref(f);
    CHECK_INT(asyncio_await(ran, NULL), 0);
    asyncio_future_release(ran);
    LOG("end");
    return 0;
}

static void test_task_starts_a_task_in_its_own_loop_and_waits_for_it(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_own_loop, NULL, NULL, WAIT_S), 0);
    assert_log("task-own ran:signalling end");
}

/* ---- a task waits for a future a thread completes -------------------------- */

struct handoff {
    asyncio_cfuture_t *cf;
    sem_t go;
    pthread_t thread;
    struct rec rec;
};

static int handoff_waiter(void *arg, void **result)
{
    struct handoff *h = arg;
    LOG("wait");
    void *res = NULL;
    int rc = asyncio_cfuture_result(h->cf, INFINITY, &res);
    LOG("got:%s:%s", tu_err(rc), res == &g_v1 ? "v1" : "other");
    /* Read again, many times, without waiting. */
    for (int i = 0; i < 5; i++) {
        res = NULL;
        CHECK_INT(asyncio_cfuture_result(h->cf, i % 2 ? 0 : 1.0, &res), 0);
        CHECK_PTR(res, &g_v1);
    }
    *result = res;
    return rc;
}

static int ticker(void *arg, void **result)
{
    (void)result;
    struct handoff *h = arg;
    for (int i = 1; i <= 3; i++) {
        LOG("tick%d", i);
        CHECK_INT(asyncio_sleep(0), 0);
    }
    CHECK_INT(sem_post(&h->go), 0); /* now the thread may complete it */
    LOG("go");
    return 0;
}

static void *handoff_completer(void *arg)
{
    struct handoff *h = arg;
    RCHECK_INT(&h->rec, sem_wait_bounded(&h->go), 0);
    RCHECK_INT(&h->rec, asyncio_cfuture_set_result(h->cf, 0, &g_v1), 0);
    RCHECK_INT(&h->rec, asyncio_cfuture_set_result(h->cf, 0, &g_v2), -EALREADY);
    RCHECK_INT(&h->rec, asyncio_cfuture_set_result(h->cf, -EIO, NULL), -EALREADY);
    RCHECK_INT(&h->rec, asyncio_cfuture_cancel(h->cf), 0);
    return NULL;
}

static int main_handoff(void *arg, void **result)
{
    (void)result;
    struct handoff *h = arg;
    asyncio_task_t *w = tu_spawn(handoff_waiter, h, "waiter");
    asyncio_task_t *t = tu_spawn(ticker, h, "ticker");
    CHECK_INT(asyncio_await(t, NULL), 0);
    void *res = NULL;
    CHECK_INT(asyncio_await(w, &res), 0);
    CHECK_PTR(res, &g_v1);
    asyncio_task_release(w);
    asyncio_task_release(t);
    return 0;
}

static void test_task_waits_for_a_future_a_thread_completes_while_other_tasks_run(void **state)
{
    (void)state;
    struct handoff h = {0};
    assert_int_equal(asyncio_cfuture_new(&h.cf), 0);
    assert_int_equal(sem_init(&h.go, 0, 0), 0);
    assert_int_equal(thread_start(&h.thread, handoff_completer, &h), 0);
    assert_int_equal(tu_run_bounded(main_handoff, &h, NULL, WAIT_S), 0);
    assert_int_equal(pthread_join(h.thread, NULL), 0);
    assert_rec_clean(&h.rec, "completing thread");
    assert_log("wait tick1 tick2 tick3 go got:0:v1");
    void *res = NULL;
    assert_int_equal(asyncio_cfuture_result(h.cf, 0, &res), 0);
    assert_ptr_equal(res, &g_v1);
    sem_destroy(&h.go);
    asyncio_cfuture_unref(h.cf);
}

/* A wait cut short: the future is unchanged, and completing it after is
 * fine, while the loop runs or once it has closed. */
struct cut {
    const char *name;
    asyncio_cfuture_t *cf;
    double scope; /* > 0: the wait is in a timeout scope of that long */
};

static int cut_waiter(void *arg, void **result)
{
    (void)result;
    struct cut *c = arg;
    asyncio_timeout_t scope;
    if (c->scope > 0)
        CHECK_INT(asyncio_timeout_enter(&scope, c->scope), 0);
    void *res = &g_sentinel;
    int rc = asyncio_cfuture_result(c->cf, INFINITY, &res);
    LOG("%s:%s", c->name, tu_err(rc));
    if (c->scope > 0)
        CHECK_INT(asyncio_timeout_exit(&scope), rc);
    return rc;
}

static void *complete_v1(void *arg)
{
    /* The test checks the outcome: the completion must be accepted. */
    return (void *)(intptr_t)asyncio_cfuture_set_result(arg, 0, &g_v1);
}

static int main_cancelled_waits(void *arg, void **result)
{
    (void)result;
    struct cut *cuts = arg; /* [0]: completed by a thread in the loop's life; [1]: after */
    asyncio_task_t *w[2];
    for (int i = 0; i < 2; i++)
        w[i] = tu_spawn(cut_waiter, &cuts[i], cuts[i].name);
    CHECK_INT(asyncio_sleep(0), 0); /* both wait now */
    for (int i = 0; i < 2; i++)
        CHECK_INT(asyncio_task_cancel(w[i]), 1);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(asyncio_await(w[i], NULL), -ECANCELED);
        asyncio_task_release(w[i]);
        CHECK_INT(asyncio_cfuture_done(cuts[i].cf), 0); /* unchanged */
    }
    pthread_t t;
    CHECK_INT(thread_start(&t, complete_v1, cuts[0].cf), 0);
    void *res = NULL;
    CHECK_INT(asyncio_cfuture_result(cuts[0].cf, INFINITY, &res), 0);
    CHECK_PTR(res, &g_v1);
    void *trc = NULL;
    CHECK_INT(pthread_join(t, &trc), 0); /* done already: it completed the future */
    CHECK_INT((intptr_t)trc, 0);
    LOG("completed");
    return 0;
}

static void test_cancelled_wait_leaves_the_future_alone_and_completing_it_later_is_fine(void **state)
{
    (void)state;
    struct cut cuts[2] = {{"w1", NULL, 0}, {"w2", NULL, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(asyncio_cfuture_new(&cuts[i].cf), 0);
    assert_int_equal(tu_run_bounded(main_cancelled_waits, cuts, NULL, WAIT_S), 0);
    assert_log("w1:ECANCELED w2:ECANCELED completed");
    /* Completed once its waiter's loop has closed. */
    assert_int_equal(asyncio_cfuture_done(cuts[1].cf), 0);
    assert_int_equal(asyncio_cfuture_set_result(cuts[1].cf, 0, &g_v2), 0);
    void *res = NULL;
    assert_int_equal(asyncio_cfuture_result(cuts[1].cf, 0, &res), 0);
    assert_ptr_equal(res, &g_v2);
    for (int i = 0; i < 2; i++)
        asyncio_cfuture_unref(cuts[i].cf);
}

/* The future is completed (its wake posted to the loop, not yet run) and
 * the waiting task cancelled in the same iteration: the cancellation came
 * first, for the task. */
static int main_cancel_after_completion_posted(void *arg, void **result)
{
    (void)result;
    struct cut *c = arg;
    asyncio_task_t *w = tu_spawn(cut_waiter, c, c->name);
    CHECK_INT(asyncio_sleep(0), 0); /* it waits */
    CHECK_INT(asyncio_cfuture_set_result(c->cf, 0, &g_v1), 0);
    CHECK_INT(asyncio_task_cancel(w), 1);
    CHECK_INT(asyncio_await(w, NULL), -ECANCELED);
    asyncio_task_release(w);
    tu_yield(3); /* the wake-up posted runs now, for nobody */
    void *res = NULL;
    CHECK_INT(asyncio_cfuture_result(c->cf, 0, &res), 0);
    CHECK_PTR(res, &g_v1);
    return 0;
}

static void test_wait_cancelled_after_the_future_completed_in_the_same_iteration(void **state)
{
    (void)state;
    struct cut c = {"w", NULL, 0};
    assert_int_equal(asyncio_cfuture_new(&c.cf), 0);
    assert_int_equal(tu_run_bounded(main_cancel_after_completion_posted, &c, NULL, WAIT_S), 0);
    assert_log("w:ECANCELED");
    asyncio_cfuture_unref(c.cf);
}

static int main_timed_out_waits(void *arg, void **result)
{
    (void)result;
    struct cut *c = arg;
    /* A timeout scope ends the wait. */
    asyncio_task_t *w = tu_spawn(cut_waiter, c, c->name);
    CHECK_INT(asyncio_await(w, NULL), -ETIMEDOUT);
    asyncio_task_release(w);
    CHECK_INT(asyncio_cfuture_done(c->cf), 0);
    /* The wait's own timeout, in a task; and 0, which does not suspend. */
    void *res = &g_sentinel;
    CHECK_INT(asyncio_cfuture_result(c->cf, 0.02, &res), -ETIMEDOUT);
    CHECK_INT(asyncio_cfuture_result(c->cf, 0, &res), -ETIMEDOUT);
    CHECK_INT(asyncio_cfuture_done(c->cf), 0);
    /* Its own timeout inside a longer scope: the scope has not expired. */
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, WAIT_S), 0);
    CHECK_INT(asyncio_cfuture_result(c->cf, 0.01, &res), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_expired(&scope), 0);
    CHECK_INT(asyncio_timeout_exit(&scope), 0);
    /* A shorter scope around a longer timeout: the scope's. */
    CHECK_INT(asyncio_timeout_enter(&scope, 0.01), 0);
    CHECK_INT(asyncio_cfuture_result(c->cf, WAIT_S, &res), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_INT(asyncio_cfuture_done(c->cf), 0);
    LOG("timed-out");
    /* Completed after, by a thread. */
    pthread_t t;
    CHECK_INT(thread_start(&t, complete_v1, c->cf), 0);
    res = NULL;
    CHECK_INT(asyncio_cfuture_result(c->cf, INFINITY, &res), 0);
    CHECK_PTR(res, &g_v1);
    void *trc = NULL;
    CHECK_INT(pthread_join(t, &trc), 0);
    CHECK_INT((intptr_t)trc, 0);
    return 0;
}

static void test_wait_in_a_timeout_scope_times_out_and_leaves_the_future_alone(void **state)
{
    (void)state;
    struct cut c = {"scoped", NULL, 0.02};
    assert_int_equal(asyncio_cfuture_new(&c.cf), 0);
    assert_int_equal(tu_run_bounded(main_timed_out_waits, &c, NULL, WAIT_S), 0);
    assert_log("scoped:ETIMEDOUT timed-out");
    asyncio_cfuture_unref(c.cf);
}

/* ---- the future alone -------------------------------------------------------- */

static void test_set_result_twice_is_ealready_and_the_result_reads_many_times(void **state)
{
    (void)state;
    asyncio_cfuture_t *f = NULL;
    void *res;
    /* A success. */
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_int_equal(asyncio_cfuture_done(f), 0);
    assert_int_equal(asyncio_cfuture_set_result(f, 0, &g_v1), 0);
    assert_int_equal(asyncio_cfuture_done(f), 1);
    assert_int_equal(asyncio_cfuture_set_result(f, 0, &g_v2), -EALREADY);
    assert_int_equal(asyncio_cfuture_set_result(f, -EIO, NULL), -EALREADY);
    assert_int_equal(asyncio_cfuture_cancel(f), 0);
    for (int i = 0; i < 10; i++) {
        res = NULL;
        assert_int_equal(asyncio_cfuture_result(f, i % 3 ? 0 : WAIT_S, &res), 0);
        assert_ptr_equal(res, &g_v1);
    }
    assert_int_equal(asyncio_cfuture_result(f, 0, NULL), 0);
    asyncio_cfuture_unref(f);
    /* A status above 0 is a success with a result. */
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_int_equal(asyncio_cfuture_set_result(f, 5, &g_v3), 0);
    for (int i = 0; i < 3; i++) {
        res = NULL;
        assert_int_equal(asyncio_cfuture_result(f, 0, &res), 5);
        assert_ptr_equal(res, &g_v3);
    }
    asyncio_cfuture_unref(f);
    /* A failure. */
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_int_equal(asyncio_cfuture_set_result(f, -EIO, NULL), 0);
    assert_int_equal(asyncio_cfuture_set_result(f, 0, &g_v1), -EALREADY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(asyncio_cfuture_result(f, 0, &res), -EIO);
    assert_int_equal(asyncio_cfuture_cancel(f), 0);
    asyncio_cfuture_unref(f);
    /* Cancelled: done at once; completing it after is -EALREADY. */
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_int_equal(asyncio_cfuture_cancel(f), 1);
    assert_int_equal(asyncio_cfuture_done(f), 1);
    assert_int_equal(asyncio_cfuture_cancel(f), 0);
    assert_int_equal(asyncio_cfuture_set_result(f, 0, &g_v1), -EALREADY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(asyncio_cfuture_result(f, -1, &res), -ECANCELED);
    asyncio_cfuture_unref(f);
}

static void *ref_holder(void *arg)
{
    asyncio_cfuture_t *f = arg;
    /* Completes and drops the last reference, in this thread. */
    intptr_t rc = asyncio_cfuture_set_result(f, 0, &g_v1);
    asyncio_cfuture_unref(f);
    return (void *)rc;
}

static void test_references_keep_the_future_for_each_thread_that_holds_one(void **state)
{
    (void)state;
    asyncio_cfuture_t *f = NULL;
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_ptr_equal(asyncio_cfuture_ref(f), f);
    assert_ptr_equal(asyncio_cfuture_ref(f), f);
    pthread_t t;
    assert_int_equal(thread_start(&t, ref_holder, f), 0);
    void *res = NULL;
    assert_int_equal(asyncio_cfuture_result(f, WAIT_S, &res), 0);
    assert_ptr_equal(res, &g_v1);
    asyncio_cfuture_unref(f);
    void *trc = NULL;
    assert_int_equal(pthread_join(t, &trc), 0);
    assert_int_equal((intptr_t)trc, 0);
    asyncio_cfuture_unref(f); /* the last one */
    /* Waits with no limit (the watchdog bounds them): negative, infinite,
     * and too large to count in nanoseconds. */
    static const double no_limit[] = {-1, -INFINITY, INFINITY, 1e300};
    for (size_t i = 0; i < sizeof no_limit / sizeof no_limit[0]; i++) {
        assert_int_equal(asyncio_cfuture_new(&f), 0);
        assert_ptr_equal(asyncio_cfuture_ref(f), f);
        assert_int_equal(thread_start(&t, ref_holder, f), 0);
        res = NULL;
        assert_int_equal(asyncio_cfuture_result(f, no_limit[i], &res), 0);
        assert_ptr_equal(res, &g_v1);
        assert_int_equal(pthread_join(t, &trc), 0);
        assert_int_equal((intptr_t)trc, 0);
        asyncio_cfuture_unref(f);
    }
    /* Never completed: freed all the same. */
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    asyncio_cfuture_unref(f);
    asyncio_cfuture_unref(NULL);
    assert_null(asyncio_cfuture_ref(NULL));
}

static int main_null_arguments(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_loop_t *loop = asyncio_get_running_loop();
    asyncio_cfuture_t *f = NULL;
    asyncio_future_t *lf = NULL;
    CHECK_INT(asyncio_run_coroutine_threadsafe(NULL, logging_task, "x", &f), -EINVAL);
    CHECK_INT(asyncio_run_coroutine_threadsafe(loop, NULL, "x", &f), -EINVAL);
    CHECK_INT(asyncio_run_coroutine_threadsafe(loop, logging_task, "x", NULL), -EINVAL);
    CHECK_INT(asyncio_wrap_future(NULL, &lf), -EINVAL);
    CHECK_INT(asyncio_cfuture_new(&f), 0);
    CHECK_INT(asyncio_wrap_future(f, NULL), -EINVAL);
    CHECK_INT(asyncio_cfuture_result(f, NAN, NULL), -EINVAL);
    asyncio_cfuture_unref(f);
    CHECK_INT(asyncio_sleep(0), 0); /* nothing was started */
    return 0;
}

static void test_null_arguments_are_einval(void **state)
{
    (void)state;
    assert_int_equal(asyncio_cfuture_new(NULL), -EINVAL);
    assert_int_equal(asyncio_cfuture_set_result(NULL, 0, NULL), -EINVAL);
    assert_int_equal(asyncio_cfuture_cancel(NULL), -EINVAL);
    assert_int_equal(asyncio_cfuture_done(NULL), -EINVAL);
    assert_int_equal(asyncio_cfuture_result(NULL, 0, NULL), -EINVAL);
    assert_int_equal(asyncio_loop_is_closed(NULL), -EINVAL);
    assert_null(asyncio_loop_ref(NULL));
    asyncio_loop_unref(NULL);
    asyncio_cfuture_t *f = NULL;
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    assert_int_equal(asyncio_cfuture_result(f, NAN, NULL), -EINVAL);
    assert_int_equal(asyncio_cfuture_done(f), 0);
    asyncio_cfuture_unref(f);
    assert_int_equal(tu_run(main_null_arguments, NULL, NULL), 0);
    assert_log("");
}

/* ---- from a loop callback: no waiting -------------------------------------- */

struct cb_case {
    asyncio_cfuture_t *pending, *done;
    asyncio_future_t *ran;
};

static void result_from_callback(void *arg)
{
    struct cb_case *c = arg;
    void *res = NULL;
    LOG("pending-1s:%s", tu_err(asyncio_cfuture_result(c->pending, 1.0, &res)));
    LOG("pending-forever:%s", tu_err(asyncio_cfuture_result(c->pending, -1, &res)));
    LOG("pending-0:%s", tu_err(asyncio_cfuture_result(c->pending, 0, &res)));
    LOG("done-1s:%s", tu_err(asyncio_cfuture_result(c->done, 1.0, &res)));
    CHECK_PTR(res, &g_v1);
    tu_cb_set_future(c->ran);
}

static void wrapped_done(asyncio_future_t *lf, void *arg)
{
    (void)arg;
    void *res = NULL;
    LOG("wrapped:%s", tu_err(asyncio_future_result(lf, &res)));
    CHECK_PTR(res, &g_v1);
}

static void result_from_callback_wrap(void *arg)
{
    struct cb_case *c = arg;
    asyncio_future_t *lf = NULL;
    CHECK_INT(asyncio_wrap_future(c->done, &lf), 0);
    if (lf)
        CHECK_INT(asyncio_future_add_done_callback(lf, wrapped_done, NULL), 0);
    asyncio_future_release(lf);
}

static int main_callback(void *arg, void **result)
{
    (void)result;
    (void)arg;
    struct cb_case c = {0};
    CHECK_INT(asyncio_cfuture_new(&c.pending), 0);
    CHECK_INT(asyncio_cfuture_new(&c.done), 0);
    CHECK_INT(asyncio_cfuture_set_result(c.done, 0, &g_v1), 0);
    c.ran = tu_future();
    CHECK_INT(asyncio_call_soon(result_from_callback_wrap, &c, NULL), 0);
    CHECK_INT(asyncio_call_soon(result_from_callback, &c, NULL), 0);
    CHECK_INT(asyncio_await(c.ran, NULL), 0);
    tu_yield(3); /* the wrapped future's callback */
    CHECK_INT(asyncio_cfuture_done(c.pending), 0);
    asyncio_future_release(c.ran);
    asyncio_cfuture_unref(c.pending);
    asyncio_cfuture_unref(c.done);
    return 0;
}

static void test_result_from_a_loop_callback_is_eperm_when_it_would_wait(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_callback, NULL, NULL, WAIT_S), 0);
    assert_log("pending-1s:EPERM pending-forever:EPERM pending-0:ETIMEDOUT done-1s:0 wrapped:0");
}

/* ---- asyncio_wrap_future ------------------------------------------------------ */

struct wrap_case {
    asyncio_cfuture_t *cf[4];
    sem_t go;
    pthread_t thread;
    struct rec rec;
};

static void *wrap_completer(void *arg)
{
    struct wrap_case *w = arg;
    RCHECK_INT(&w->rec, asyncio_cfuture_set_result(w->cf[0], 0, &g_v1), 0);
    RCHECK_INT(&w->rec, asyncio_cfuture_set_result(w->cf[1], 0, &g_v2), 0);
    RCHECK_INT(&w->rec, asyncio_cfuture_set_result(w->cf[2], -EIO, NULL), 0);
    RCHECK_INT(&w->rec, sem_wait_bounded(&w->go), 0);
    RCHECK_INT(&w->rec, asyncio_cfuture_set_result(w->cf[3], 0, &g_v3), 0);
    return NULL;
}

static int main_wrap(void *arg, void **result)
{
    (void)result;
    struct wrap_case *w = arg;
    asyncio_future_t *lf[4] = {0};
    for (int i = 0; i < 4; i++) {
        CHECK_INT(asyncio_cfuture_new(&w->cf[i]), 0);
        CHECK_INT(asyncio_wrap_future(w->cf[i], &lf[i]), 0);
        CHECK(lf[i] != NULL);
        CHECK_INT(asyncio_future_done(lf[i]), 0);
    }
    CHECK_INT(thread_start(&w->thread, wrap_completer, w), 0);
    void *results[3] = {0};
    int errors[3] = {1, 1, 1};
    CHECK_INT(asyncio_gather(3, lf, results, errors, ASYNCIO_RETURN_EXCEPTIONS), 1);
    CHECK_PTR(results[0], &g_v1);
    CHECK_PTR(results[1], &g_v2);
    CHECK_INT(errors[0], 0);
    CHECK_INT(errors[1], 0);
    CHECK_INT(errors[2], -EIO);
    LOG("gathered");
    CHECK_INT(sem_post(&w->go), 0);
    void *res = NULL;
    CHECK_INT(asyncio_await(lf[3], &res), 0);
    CHECK_PTR(res, &g_v3);
    LOG("awaited");
    /* The thread-safe futures say the same. */
    for (int i = 0; i < 4; i++) {
        int expected = i == 2 ? -EIO : 0;
        CHECK_INT(asyncio_cfuture_result(w->cf[i], 0, &res), expected);
        CHECK_INT(asyncio_future_result(lf[i], &res), expected);
        asyncio_future_release(lf[i]);
    }
    return 0;
}

static void test_wrapped_futures_complete_when_a_thread_completes_them(void **state)
{
    (void)state;
    struct wrap_case w = {0};
    assert_int_equal(sem_init(&w.go, 0, 0), 0);
    assert_int_equal(tu_run_bounded(main_wrap, &w, NULL, WAIT_S), 0);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    assert_rec_clean(&w.rec, "completing thread");
    assert_log("gathered awaited");
    for (int i = 0; i < 4; i++)
        asyncio_cfuture_unref(w.cf[i]);
    sem_destroy(&w.go);
}

static int main_wrap_done(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_cfuture_t *cf[4];
    for (int i = 0; i < 4; i++)
        CHECK_INT(asyncio_cfuture_new(&cf[i]), 0);
    CHECK_INT(asyncio_cfuture_set_result(cf[0], 0, &g_v1), 0);
    CHECK_INT(asyncio_cfuture_set_result(cf[1], -EIO, NULL), 0);
    CHECK_INT(asyncio_cfuture_cancel(cf[2]), 1);
    CHECK_INT(asyncio_cfuture_set_result(cf[3], 3, &g_v1), 0); /* a success above 0 */
    static const int expected[4] = {0, -EIO, -ECANCELED, 3};
    for (int i = 0; i < 4; i++) {
        /* Twice over the same future. */
        for (int k = 0; k < 2; k++) {
            asyncio_future_t *lf = NULL;
            CHECK_INT(asyncio_wrap_future(cf[i], &lf), 0);
            if (!lf)
                continue;
            void *res = NULL;
            int rc = asyncio_await(lf, &res);
            CHECK_INT(rc, expected[i]);
            if (expected[i] >= 0)
                CHECK_PTR(res, &g_v1);
            CHECK_INT(asyncio_future_cancelled(lf), i == 2);
            LOG("wrap%d:%s", i, tu_err(rc));
            asyncio_future_release(lf);
        }
        asyncio_cfuture_unref(cf[i]);
    }
    return 0;
}

static void test_wrap_of_a_done_future_gives_its_outcome(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_wrap_done, NULL, NULL, WAIT_S), 0);
    assert_log("wrap0:0 wrap0:0 wrap1:EIO wrap1:EIO wrap2:ECANCELED wrap2:ECANCELED wrap3:3 wrap3:3");
}

static int main_wrap_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_cfuture_t *cf = NULL;
    CHECK_INT(asyncio_cfuture_new(&cf), 0);
    /* A loop future completed otherwise than by cancelling leaves the
     * thread-safe future alone. */
    asyncio_future_t *lf0 = NULL;
    CHECK_INT(asyncio_wrap_future(cf, &lf0), 0);
    CHECK_INT(asyncio_future_set_result(lf0, NULL), 0);
    tu_yield(2);
    CHECK_INT(asyncio_cfuture_done(cf), 0);
    asyncio_future_release(lf0);
    /* Cancelling one cancels it (as asyncio.wrap_future), and so the other
     * loop future that follows it. */
    asyncio_future_t *lf = NULL, *lf2 = NULL;
    CHECK_INT(asyncio_wrap_future(cf, &lf), 0);
    CHECK_INT(asyncio_wrap_future(cf, &lf2), 0);
    CHECK_INT(asyncio_future_cancel(lf), 1);
    asyncio_future_release(lf); /* released before the cancellation goes on */
    CHECK_INT(asyncio_await(lf2, NULL), -ECANCELED);
    CHECK_INT(asyncio_cfuture_done(cf), 1);
    CHECK_INT(asyncio_cfuture_result(cf, 0, NULL), -ECANCELED);
    /* A loop future of a done one gives its outcome at once. */
    asyncio_future_t *lf3 = NULL;
    CHECK_INT(asyncio_wrap_future(cf, &lf3), 0);
    CHECK_INT(asyncio_await(lf3, NULL), -ECANCELED);
    asyncio_future_release(lf3);
    asyncio_future_release(lf2);
    asyncio_cfuture_unref(cf);
    LOG("done");
    return 0;
}

static int remote_sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(WAIT_S);
    LOG("remote task: %s", tu_err(rc));
    return rc;
}

/* wait_for() timing out on the loop future of a started task cancels
 * that task, as in asyncio. */
static int main_wrap_wait_for(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_cfuture_t *cf = NULL;
    CHECK_INT(asyncio_run_coroutine_threadsafe(asyncio_get_running_loop(), remote_sleeper, NULL,
                                               &cf), 0);
    asyncio_future_t *lf = NULL;
    CHECK_INT(asyncio_wrap_future(cf, &lf), 0);
    CHECK_INT(asyncio_wait_for(lf, 0.05, NULL), -ETIMEDOUT);
    LOG("timed out");
    /* As in asyncio, the cancellation goes on through the loop future's
     * done callback, in a later iteration. */
    tu_yield(1);
    CHECK_INT(asyncio_cfuture_result(cf, 0, NULL), -ECANCELED);
    tu_yield(3); /* the task's cancellation is delivered */
    asyncio_future_release(lf);
    asyncio_cfuture_unref(cf);
    return 0;
}

static void test_cancelling_the_loop_future_cancels_the_wrapped_future(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_wrap_cancelled, NULL, NULL, WAIT_S), 0);
    assert_log("done");
    assert_int_equal(tu_run_bounded(main_wrap_wait_for, NULL, NULL, WAIT_S), 0);
    assert_log("timed out remote task: ECANCELED");
}

static void *drop_ref(void *arg)
{
    asyncio_cfuture_unref(arg);
    return NULL;
}

static int main_wrap_dropped(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int in_thread = 0; in_thread < 2; in_thread++) {
        asyncio_cfuture_t *cf = NULL;
        CHECK_INT(asyncio_cfuture_new(&cf), 0);
        asyncio_future_t *lf = NULL;
        CHECK_INT(asyncio_wrap_future(cf, &lf), 0);
        if (!lf)
            continue;
        pthread_t t;
        if (in_thread)
            CHECK_INT(thread_start(&t, drop_ref, cf), 0); /* the last reference */
        else
            asyncio_cfuture_unref(cf);
        int rc = asyncio_await(lf, NULL);
        LOG("dropped-%s:%s", in_thread ? "thread" : "loop", tu_err(rc));
        CHECK_INT(asyncio_future_cancelled(lf), 1);
        if (in_thread)
            CHECK_INT(pthread_join(t, NULL), 0);
        asyncio_future_release(lf);
    }
    return 0;
}

static void test_dropping_the_wrapped_futures_last_reference_cancels_the_loop_future(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_wrap_dropped, NULL, NULL, WAIT_S), 0);
    assert_log("dropped-loop:ECANCELED dropped-thread:ECANCELED");
}

/* The loop closes with loop futures still following thread-safe ones. */
static asyncio_cfuture_t *g_outlive[2];

static int main_wrap_and_leave(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 2; i++) {
        asyncio_future_t *lf = NULL;
        CHECK_INT(asyncio_wrap_future(g_outlive[i], &lf), 0);
        if (lf && i == 0)
            CHECK_INT(asyncio_future_add_done_callback(lf, wrapped_done, NULL), 0);
        asyncio_future_release(lf); /* i == 0: kept by its callback */
    }
    return 0;
}

static void test_thread_safe_future_outliving_the_loop_of_its_wrapper(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(asyncio_cfuture_new(&g_outlive[i]), 0);
    assert_int_equal(tu_run(main_wrap_and_leave, NULL, NULL), 0);
    /* Completed, then dropped, with no loop to tell. */
    assert_int_equal(asyncio_cfuture_set_result(g_outlive[0], 0, &g_v1), 0);
    asyncio_cfuture_unref(g_outlive[0]);
    /* Dropped pending, from another thread. */
    pthread_t t;
    assert_int_equal(thread_start(&t, drop_ref, g_outlive[1]), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_log(""); /* the callback never ran: its loop had closed */
}

/* Completed in the loop's own thread as its main task returns: the wake-up
 * is in the loop's inbox when it closes, and released there. */
static int main_complete_and_leave(void *arg, void **result)
{
    (void)result;
    asyncio_cfuture_t *cf = arg;
    asyncio_future_t *lf = NULL;
    CHECK_INT(asyncio_wrap_future(cf, &lf), 0);
    if (lf)
        CHECK_INT(asyncio_future_add_done_callback(lf, wrapped_done, NULL), 0);
    asyncio_future_release(lf);
    CHECK_INT(asyncio_cfuture_set_result(cf, 0, &g_v1), 0);
    return 0;
}

static void test_completion_posted_to_a_loop_as_it_closes_is_released(void **state)
{
    (void)state;
    asyncio_cfuture_t *cf = NULL;
    assert_int_equal(asyncio_cfuture_new(&cf), 0);
    assert_int_equal(tu_run(main_complete_and_leave, cf, NULL), 0);
    void *res = NULL;
    assert_int_equal(asyncio_cfuture_result(cf, 0, &res), 0);
    assert_ptr_equal(res, &g_v1);
    asyncio_cfuture_unref(cf);
    /* Run before the loop closed, or released as it did. */
    if (strcmp(tu_log_buf, "") != 0)
        assert_log("wrapped:0");
}

static void test_wrap_future_outside_a_loop_is_eperm(void **state)
{
    (void)state;
    asyncio_cfuture_t *f = NULL;
    assert_int_equal(asyncio_cfuture_new(&f), 0);
    asyncio_future_t *lf = NULL;
    assert_int_equal(asyncio_wrap_future(f, &lf), -EPERM);
    assert_int_equal(asyncio_cfuture_set_result(f, 0, &g_v1), 0);
    assert_int_equal(asyncio_wrap_future(f, &lf), -EPERM); /* done or not */
    assert_int_equal(asyncio_wrap_future(NULL, &lf), -EINVAL);
    assert_int_equal(asyncio_cfuture_done(f), 1);
    asyncio_cfuture_unref(f);
}

/* ---- one future, waited for in two loops and in plain threads ---------------- */

#define SIDE_WAITERS 3

struct side {
    asyncio_cfuture_t *cf;
    sem_t *ready;
    pthread_t thread;
    int got;     /* waits that got the result */
    struct rec rec;
};

static int side_waiter(void *arg, void **result)
{
    (void)result;
    struct side *s = arg;
    void *res = NULL;
    int rc = asyncio_cfuture_result(s->cf, WAIT_S, &res);
    RCHECK_INT(&s->rec, rc, 0);
    RCHECK_PTR(&s->rec, res, &g_v1);
    s->got += rc == 0 && res == &g_v1;
    return 0;
}

static int side_main(void *arg, void **result)
{
    (void)result;
    struct side *s = arg;
    asyncio_task_t *ts[SIDE_WAITERS];
    int n = 0;
    for (; n < SIDE_WAITERS; n++) {
        int rc = asyncio_create_task(&ts[n], side_waiter, s, NULL);
        RCHECK_INT(&s->rec, rc, 0);
        if (rc != 0)
            break;
    }
    asyncio_future_t *lf = NULL;
    RCHECK_INT(&s->rec, asyncio_wrap_future(s->cf, &lf), 0);
    RCHECK_INT(&s->rec, asyncio_sleep(0), 0); /* the waiters wait */
    RCHECK_INT(&s->rec, sem_post(s->ready), 0);
    for (int i = 0; i < n; i++) {
        RCHECK_INT(&s->rec, asyncio_await(ts[i], NULL), 0);
        asyncio_task_release(ts[i]);
    }
    if (lf) {
        asyncio_timeout_t scope;
        RCHECK_INT(&s->rec, asyncio_timeout_enter(&scope, WAIT_S), 0);
        void *res = NULL;
        int rc = asyncio_await(lf, &res);
        RCHECK_INT(&s->rec, rc, 0);
        RCHECK_PTR(&s->rec, res, &g_v1);
        s->got += rc == 0 && res == &g_v1;
        RCHECK_INT(&s->rec, asyncio_timeout_exit(&scope), 0);
        asyncio_future_release(lf);
    }
    return 0;
}

static void *side_loop_thread(void *arg)
{
    struct side *s = arg;
    RCHECK_INT(&s->rec, asyncio_run(side_main, s, NULL), 0);
    return NULL;
}

static void *side_plain_thread(void *arg)
{
    struct side *s = arg;
    RCHECK_INT(&s->rec, sem_post(s->ready), 0);
    void *res = NULL;
    int rc = asyncio_cfuture_result(s->cf, WAIT_S, &res);
    RCHECK_INT(&s->rec, rc, 0);
    RCHECK_PTR(&s->rec, res, &g_v1);
    s->got += rc == 0 && res == &g_v1;
    return NULL;
}

static void test_one_future_wakes_tasks_of_two_loops_and_plain_threads(void **state)
{
    (void)state;
    tu_reset();
    asyncio_cfuture_t *cf = NULL;
    assert_int_equal(asyncio_cfuture_new(&cf), 0);
    sem_t ready;
    assert_int_equal(sem_init(&ready, 0, 0), 0);
    struct side sides[4] = {0};
    for (int i = 0; i < 4; i++) {
        sides[i].cf = cf;
        sides[i].ready = &ready;
        assert_int_equal(
            thread_start(&sides[i].thread, i < 2 ? side_loop_thread : side_plain_thread, &sides[i]),
            0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(sem_wait_bounded(&ready), 0);
    assert_int_equal(asyncio_cfuture_set_result(cf, 0, &g_v1), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(sides[i].thread, NULL), 0);
        assert_rec_clean(&sides[i].rec, i < 2 ? "loop thread" : "plain thread");
        assert_int_equal(sides[i].got, i < 2 ? SIDE_WAITERS + 1 : 1);
    }
    sem_destroy(&ready);
    asyncio_cfuture_unref(cf);
}

/* ---- a task of one loop runs tasks in another loop -------------------------- */

struct other_loop {
    asyncio_cfuture_t *handoff; /* its loop, referenced */
    asyncio_cfuture_t *stop;
    pthread_t thread;
    int run_rc;
    struct rec rec;
};

static int other_main(void *arg, void **result)
{
    (void)result;
    struct other_loop *o = arg;
    asyncio_loop_t *loop = asyncio_loop_ref(asyncio_get_running_loop());
    RCHECK_INT(&o->rec, asyncio_cfuture_set_result(o->handoff, 0, loop), 0);
    RCHECK_INT(&o->rec, asyncio_cfuture_result(o->stop, WAIT_S, NULL), 0);
    return 0;
}

static void *other_loop_thread(void *arg)
{
    struct other_loop *o = arg;
    o->run_rc = asyncio_run(other_main, o, NULL);
    return NULL;
}

#define CROSS_CALLS 50
#define CROSS_GATHER 8

static int main_cross(void *arg, void **result)
{
    (void)result;
    struct other_loop *o = arg;
    void *p = NULL;
    CHECK_INT(asyncio_cfuture_result(o->handoff, INFINITY, &p), 0);
    asyncio_loop_t *other = p;
    CHECK(other != NULL && other != asyncio_get_running_loop());
    if (!other)
        return 0;
    static int tokens[CROSS_CALLS];
    int ok = 0;
    /* One at a time, waiting with asyncio_cfuture_result(). */
    for (int i = 0; i < CROSS_CALLS; i++) {
        asyncio_cfuture_t *f = NULL;
        CHECK_INT(asyncio_run_coroutine_threadsafe(other, echo_task, &tokens[i], &f), 0);
        if (!f)
            continue;
        void *res = NULL;
        int rc = asyncio_cfuture_result(f, INFINITY, &res);
        CHECK_INT(rc, 0);
        CHECK_PTR(res, &tokens[i]);
        ok += rc == 0 && res == &tokens[i];
        asyncio_cfuture_unref(f);
    }
    /* Several at once, followed by loop futures and gathered. */
    asyncio_cfuture_t *fs[CROSS_GATHER] = {0};
    asyncio_future_t *lfs[CROSS_GATHER] = {0};
    int n = 0;
    for (; n < CROSS_GATHER; n++) {
        int rc = asyncio_run_coroutine_threadsafe(other, echo_task, &tokens[n], &fs[n]);
        CHECK_INT(rc, 0);
        if (rc != 0)
            break;
        rc = asyncio_wrap_future(fs[n], &lfs[n]);
        CHECK_INT(rc, 0);
        if (rc != 0) {
            asyncio_cfuture_unref(fs[n]);
            break;
        }
    }
    void *results[CROSS_GATHER] = {0};
    CHECK_INT(asyncio_gather((size_t)n, lfs, results, NULL, 0), 0);
    for (int i = 0; i < n; i++) {
        CHECK_PTR(results[i], &tokens[i]);
        ok += results[i] == &tokens[i];
        asyncio_future_release(lfs[i]);
        asyncio_cfuture_unref(fs[i]);
    }
    LOG("ok:%d", ok);
    CHECK_INT(asyncio_cfuture_set_result(o->stop, 0, NULL), 0);
    asyncio_loop_unref(other); /* its loop thread's reference (handoff) */
    return 0;
}

static void test_task_in_one_loop_runs_tasks_in_another_loops_thread(void **state)
{
    (void)state;
    struct other_loop o = {0};
    assert_int_equal(asyncio_cfuture_new(&o.handoff), 0);
    assert_int_equal(asyncio_cfuture_new(&o.stop), 0);
    assert_int_equal(thread_start(&o.thread, other_loop_thread, &o), 0);
    int rc = tu_run_bounded(main_cross, &o, NULL, WAIT_S);
    /* Stop the other loop whatever happened here. */
    asyncio_cfuture_set_result(o.stop, 0, NULL);
    assert_int_equal(pthread_join(o.thread, NULL), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(o.run_rc, 0);
    assert_rec_clean(&o.rec, "other loop");
    assert_log("ok:58");
    asyncio_cfuture_unref(o.handoff);
    asyncio_cfuture_unref(o.stop);
}

/* ---- races on single futures ------------------------------------------------ */

/* Threads race to complete (or cancel) the same futures, which a loop
 * follows with wrapped futures: exactly one of them wins each, and every
 * view of a future gives the winner's outcome. */
#define RACED 200
#define COMPLETERS 4

static int g_completer_tokens[COMPLETERS];

struct completer {
    int id;
    asyncio_cfuture_t **fs;
    sem_t *go;
    pthread_t thread;
    bool won[RACED];
    struct rec rec;
};

static void *completer_main(void *arg)
{
    struct completer *c = arg;
    RCHECK_INT(&c->rec, sem_wait_bounded(c->go), 0);
    for (int i = 0; i < RACED; i++) {
        /* Odd completers cancel every third future, else set it. */
        if (c->id % 2 && i % 3 == 0) {
            int rc = asyncio_cfuture_cancel(c->fs[i]);
            RCHECK(&c->rec, rc == 0 || rc == 1);
            c->won[i] = rc == 1;
        } else {
            int rc = asyncio_cfuture_set_result(c->fs[i], 0, &g_completer_tokens[c->id]);
            RCHECK(&c->rec, rc == 0 || rc == -EALREADY);
            c->won[i] = rc == 0;
        }
    }
    return NULL;
}

struct completion_race {
    asyncio_cfuture_t *fs[RACED];
    struct completer cs[COMPLETERS];
    sem_t go;
    int loop_status[RACED]; /* what the wrapped futures said */
    void *loop_result[RACED];
};

static int main_completion_race(void *arg, void **result)
{
    (void)result;
    struct completion_race *cr = arg;
    asyncio_future_t **lfs = calloc(RACED, sizeof *lfs);
    CHECK(lfs != NULL);
    if (!lfs)
        return 0;
    int n = 0;
    for (; n < RACED; n++)
        if (asyncio_wrap_future(cr->fs[n], &lfs[n]) != 0)
            break;
    CHECK_INT(n, RACED);
    for (int i = 0; i < COMPLETERS; i++)
        CHECK_INT(sem_post(&cr->go), 0);
    /* Every cancelled one counts as failed. */
    int failed = asyncio_gather((size_t)n, lfs, cr->loop_result, cr->loop_status,
                                ASYNCIO_RETURN_EXCEPTIONS);
    CHECK(failed >= 0);
    for (int i = 0; i < n; i++)
        asyncio_future_release(lfs[i]);
    free(lfs);
    return 0;
}

static void test_threads_racing_to_complete_the_same_futures_one_wins_each(void **state)
{
    (void)state;
    struct completion_race *cr = calloc(1, sizeof *cr);
    assert_non_null(cr);
    assert_int_equal(sem_init(&cr->go, 0, 0), 0);
    for (int i = 0; i < RACED; i++)
        assert_int_equal(asyncio_cfuture_new(&cr->fs[i]), 0);
    for (int i = 0; i < COMPLETERS; i++) {
        cr->cs[i].id = i;
        cr->cs[i].fs = cr->fs;
        cr->cs[i].go = &cr->go;
        assert_int_equal(thread_start(&cr->cs[i].thread, completer_main, &cr->cs[i]), 0);
    }
    int rc = tu_run_bounded(main_completion_race, cr, NULL, WAIT_S);
    for (int i = 0; i < COMPLETERS; i++) {
        assert_int_equal(pthread_join(cr->cs[i].thread, NULL), 0);
        assert_rec_clean(&cr->cs[i].rec, "completing thread");
    }
    assert_int_equal(rc, 0);
    for (int i = 0; i < RACED; i++) {
        int winners = 0, winner = -1;
        for (int k = 0; k < COMPLETERS; k++)
            if (cr->cs[k].won[i]) {
                winners++;
                winner = k;
            }
        assert_int_equal(winners, 1);
        bool cancelled = winner % 2 && i % 3 == 0;
        void *res = NULL;
        int st = asyncio_cfuture_result(cr->fs[i], 0, &res);
        if (cancelled) {
            assert_int_equal(st, -ECANCELED);
            assert_int_equal(cr->loop_status[i], -ECANCELED);
        } else {
            assert_int_equal(st, 0);
            assert_ptr_equal(res, &g_completer_tokens[winner]);
            assert_int_equal(cr->loop_status[i], 0);
            assert_ptr_equal(cr->loop_result[i], &g_completer_tokens[winner]);
        }
        asyncio_cfuture_unref(cr->fs[i]);
    }
    sem_destroy(&cr->go);
    free(cr);
}

/* Tasks wait for futures a thread completes meanwhile, and their waits
 * end on their own timeouts (0 among them) or cancellations as the
 * completions come: each wait gives the result or says why it ended,
 * nothing is lost or freed twice. */
#define CUT_WAITS 160

struct cut_wait {
    asyncio_cfuture_t *cf;
    double timeout;
    int cancel_rc; /* asyncio_task_cancel()'s answer; 0: not cancelled */
    int rc;         /* what the wait said */
    void *res;
    int task_rc;    /* what awaiting the task said */
    asyncio_task_t *task;
};

static int g_cut_tokens[CUT_WAITS];

static int cut_wait_task(void *arg, void **result)
{
    (void)result;
    struct cut_wait *w = arg;
    w->res = &g_sentinel;
    w->rc = asyncio_cfuture_result(w->cf, w->timeout, &w->res);
    return w->rc;
}

static void *complete_in_order(void *arg)
{
    struct cut_wait *ws = arg;
    intptr_t bad = 0;
    for (int i = 0; i < CUT_WAITS; i++) {
        if (asyncio_cfuture_set_result(ws[i].cf, 0, &g_cut_tokens[i]) != 0)
            bad++;
        if (i % 8 == 0)
            sched_yield();
    }
    return (void *)bad;
}

static int main_cut_waits(void *arg, void **result)
{
    (void)result;
    struct cut_wait *ws = arg;
    static const double timeouts[] = {0, 0.0002, 0.001, INFINITY, 0.003};
    for (int i = 0; i < CUT_WAITS; i++) {
        ws[i].timeout = timeouts[i % 5];
        ws[i].rc = 1; /* not yet */
        ws[i].task = tu_spawn(cut_wait_task, &ws[i], NULL);
    }
    CHECK_INT(asyncio_sleep(0), 0); /* they wait (or gave up: timeout 0) */
    pthread_t t;
    int trc = thread_start(&t, complete_in_order, ws);
    CHECK_INT(trc, 0);
    /* Cancel every seventh as the completions come. */
    for (int y = 0; y < 7; y++) {
        for (int i = y; i < CUT_WAITS; i += 7)
            if (i % 7 == y && ws[i].timeout != 0 && i % 2)
                ws[i].cancel_rc = asyncio_task_cancel(ws[i].task);
        CHECK_INT(asyncio_sleep(0), 0);
    }
    for (int i = 0; i < CUT_WAITS; i++) {
        ws[i].task_rc = asyncio_await(ws[i].task, NULL);
        asyncio_task_release(ws[i].task);
    }
    if (trc == 0) {
        void *bad = NULL;
        CHECK_INT(pthread_join(t, &bad), 0); /* it never waits: it is through */
        CHECK_INT((intptr_t)bad, 0);
    }
    return 0;
}

static void test_waits_end_on_timeouts_and_cancellations_while_a_thread_completes(void **state)
{
    (void)state;
    struct cut_wait *ws = calloc(CUT_WAITS, sizeof *ws);
    assert_non_null(ws);
    for (int i = 0; i < CUT_WAITS; i++)
        assert_int_equal(asyncio_cfuture_new(&ws[i].cf), 0);
    assert_int_equal(tu_run_bounded(main_cut_waits, ws, NULL, WAIT_S), 0);
    for (int i = 0; i < CUT_WAITS; i++) {
        struct cut_wait *w = &ws[i];
        void *res = NULL;
        assert_int_equal(asyncio_cfuture_result(w->cf, 0, &res), 0);
        assert_ptr_equal(res, &g_cut_tokens[i]);
        /* The task ends as its wait did; a cancellation that came after
         * its wait got the result is delivered as the task ends. */
        assert_int_equal(w->task_rc, w->cancel_rc == 1 && w->rc == 0 ? -ECANCELED : w->rc);
        if (w->rc == 0) {
            assert_ptr_equal(w->res, &g_cut_tokens[i]);
        } else if (w->rc == -ETIMEDOUT) {
            assert_true(w->timeout != INFINITY); /* only a timeout ends it so */
        } else if (w->rc == -ECANCELED) {
            assert_int_equal(w->cancel_rc, 1);
        } else {
            fail_msg("wait %d (timeout %g, cancel %d): %s", i, w->timeout, w->cancel_rc,
                     tu_err(w->rc));
        }
        asyncio_cfuture_unref(w->cf);
    }
    free(ws);
}

/* ---- a cancellation that crosses the task's end and its loop's close -------- */

/*
 * A thread that never held a reference to a loop cancels a future of
 * asyncio_run_coroutine_threadsafe() in it, and while the cancellation is
 * under way the task ends and its loop closes. Cancelling needs no loop
 * reference (any thread may): the cancellation must find the loop closed
 * (or the task ended), not a loop freed under it.
 *
 * The order is forced, not left to timing: the future has MANY_WRAPS loop
 * futures of a second loop following it (asyncio_wrap_future), which the
 * cancelling thread wakes one by one before it turns to the task; the
 * first of them to complete lets the task end (it sets g, which the task
 * waits for), so the first loop finishes the task and closes while the
 * cancelling thread still wakes the others.
 */
#define MANY_WRAPS 50000

struct close_cross {
    asyncio_cfuture_t *handoff; /* the first loop's main task gives f */
    asyncio_cfuture_t *g;       /* the task waits for it, then ends */
    asyncio_future_t *ended;    /* first loop: set as the task ends */
    sem_t wrapped;              /* the second loop follows f */
    pthread_t first, second;
    int first_rc, second_rc;
    int cancelled_wraps;
    struct rec rec_first, rec_second;
};

static int cross_task(void *arg, void **result)
{
    (void)result;
    struct close_cross *x = arg;
    /* Let go by the second loop, or cancelled if the cancellation comes
     * to this loop first. */
    int rc = asyncio_cfuture_result(x->g, WAIT_S, NULL);
    RCHECK(&x->rec_first, rc == 0 || rc == -ECANCELED);
    RCHECK_INT(&x->rec_first, asyncio_future_set_result(x->ended, NULL), 0);
    return 0;
}

static int first_main(void *arg, void **result)
{
    (void)result;
    struct close_cross *x = arg;
    struct rec *r = &x->rec_first;
    RCHECK_INT(r, asyncio_future_new(&x->ended), 0);
    asyncio_cfuture_t *f = NULL;
    int rc = asyncio_run_coroutine_threadsafe(asyncio_get_running_loop(), cross_task, x, &f);
    RCHECK_INT(r, rc, 0);
    RCHECK_INT(r, asyncio_cfuture_set_result(x->handoff, rc, f), 0); /* f's reference goes */
    if (rc == 0) {
        asyncio_timeout_t scope;
        RCHECK_INT(r, asyncio_timeout_enter(&scope, WAIT_S), 0);
        RCHECK_INT(r, asyncio_await(x->ended, NULL), 0);
        RCHECK_INT(r, asyncio_timeout_exit(&scope), 0);
    }
    asyncio_future_release(x->ended);
    return 0; /* the loop closes now */
}

static void *first_thread(void *arg)
{
    struct close_cross *x = arg;
    x->first_rc = asyncio_run(first_main, x, NULL);
    return NULL;
}

/* Second loop: the first loop future woken lets the task end. */
static void release_task(asyncio_future_t *lf, void *arg)
{
    struct close_cross *x = arg;
    RCHECK_INT(&x->rec_second, asyncio_future_cancelled(lf), 1);
    RCHECK_INT(&x->rec_second, asyncio_cfuture_set_result(x->g, 0, NULL), 0);
}

static int second_main(void *arg, void **result)
{
    (void)result;
    struct close_cross *x = arg;
    struct rec *r = &x->rec_second;
    void *p = NULL;
    RCHECK_INT(r, asyncio_cfuture_result(x->handoff, WAIT_S, &p), 0);
    asyncio_future_t **lfs = calloc(MANY_WRAPS, sizeof *lfs);
    RCHECK(r, lfs != NULL);
    int n = 0;
    if (p && lfs)
        for (; n < MANY_WRAPS; n++)
            if (asyncio_wrap_future(p, &lfs[n]) != 0)
                break;
    RCHECK_INT(r, n, MANY_WRAPS);
    if (n > 0)
        RCHECK_INT(r, asyncio_future_add_done_callback(lfs[0], release_task, x), 0);
    RCHECK_INT(r, sem_post(&x->wrapped), 0);
    if (n > 0) {
        asyncio_timeout_t scope;
        RCHECK_INT(r, asyncio_timeout_enter(&scope, WAIT_S), 0);
        RCHECK_INT(r, asyncio_await(lfs[n - 1], NULL), -ECANCELED); /* the last one woken */
        RCHECK_INT(r, asyncio_timeout_exit(&scope), 0);
    }
    for (int i = 0; i < n; i++) {
        RCHECK_INT(r, asyncio_future_done(lfs[i]), 1);
        x->cancelled_wraps += asyncio_future_cancelled(lfs[i]) == 1;
        asyncio_future_release(lfs[i]);
    }
    free(lfs);
    return 0;
}

static void *second_thread(void *arg)
{
    struct close_cross *x = arg;
    x->second_rc = asyncio_run(second_main, x, NULL);
    return NULL;
}

static void test_cancel_crossing_the_tasks_end_and_its_loops_close(void **state)
{
    (void)state;
    struct close_cross *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(asyncio_cfuture_new(&x->handoff), 0);
    assert_int_equal(asyncio_cfuture_new(&x->g), 0);
    assert_int_equal(sem_init(&x->wrapped, 0, 0), 0);
    assert_int_equal(thread_start(&x->first, first_thread, x), 0);
    assert_int_equal(thread_start(&x->second, second_thread, x), 0);
    void *p = NULL;
    assert_int_equal(asyncio_cfuture_result(x->handoff, WAIT_S, &p), 0);
    asyncio_cfuture_t *f = p;
    assert_non_null(f);
    assert_int_equal(sem_wait_bounded(&x->wrapped), 0);
    /* Pending until now: the task cannot end before this wakes the
     * second loop. */
    assert_int_equal(asyncio_cfuture_cancel(f), 1);
    assert_int_equal(pthread_join(x->first, NULL), 0);
    assert_int_equal(pthread_join(x->second, NULL), 0);
    assert_int_equal(x->first_rc, 0);
    assert_int_equal(x->second_rc, 0);
    assert_rec_clean(&x->rec_first, "first loop");
    assert_rec_clean(&x->rec_second, "second loop");
    void *res = &g_sentinel;
    assert_int_equal(asyncio_cfuture_result(f, 0, &res), -ECANCELED);
    assert_int_equal(x->cancelled_wraps, MANY_WRAPS);
    asyncio_cfuture_unref(f);
    asyncio_cfuture_unref(x->g);
    asyncio_cfuture_unref(x->handoff);
    sem_destroy(&x->wrapped);
    free(x);
}

/* ---- many threads, one loop ----------------------------------------------------- */

#define NTHREADS 8
#define ROUNDS 300
#define PIPELINE 4 /* futures a racer holds at once */

struct tripper {
    asyncio_loop_t *loop;
    asyncio_future_t *all_done; /* set in the loop by the last thread through */
    int id;
    pthread_t thread;
    bool started;
    int token;   /* what its tasks return */
    long calls, ok, cancelled, dropped;
    bool shut;   /* saw -ESHUTDOWN */
    struct rec rec;
};

/* Loop side: counts threads through; the last sets all_done. */
static int g_threads_through;

static void thread_through(void *arg)
{
    struct tripper *t = arg;
    if (++g_threads_through == NTHREADS)
        tu_cb_set_future(t->all_done);
}

/* Loop side: every task run; the target-th sets g_target. */
static long g_runs, g_target_runs;
static asyncio_future_t *g_target;

static int counted_echo(void *arg, void **result)
{
    if (++g_runs == g_target_runs && g_target)
        tu_cb_set_future(g_target);
    const int *token = arg;
    int rc = asyncio_sleep(0);
    if (rc == 0 && *token % 2)
        rc = asyncio_sleep(0); /* some take longer */
    *result = (void *)token;
    return rc;
}

/* Wait for f, started for t (cancel_rc: what cancelling it said, -1 if it
 * was not), and check its outcome. closing: the loop may close meanwhile. */
static void finish_one(struct tripper *t, asyncio_cfuture_t *f, int cancel_rc, bool closing)
{
    void *res = &g_sentinel;
    int rc = asyncio_cfuture_result(f, WAIT_S, &res);
    char b[32];
    if (rc == 0 && res == &t->token && cancel_rc != 1) {
        t->ok++;
    } else if (rc == -ECANCELED && (cancel_rc == 1 || closing)) {
        t->cancelled++;
    } else {
        rec_bad(&t->rec, __FILE__, __LINE__, "round trip %ld (cancel: %d): %s, result %s",
                t->calls, cancel_rc, tu_err_r(rc, b),
                res == &t->token ? "ours" : res == &g_sentinel ? "untouched" : "another");
    }
    RCHECK_INT(&t->rec, asyncio_cfuture_done(f), 1);
    asyncio_cfuture_unref(f);
}

static void *tripper_main(void *arg)
{
    struct tripper *t = arg;
    for (int i = 0; i < ROUNDS; i++) {
        asyncio_cfuture_t *f = NULL;
        int rc = asyncio_run_coroutine_threadsafe(t->loop, counted_echo, &t->token, &f);
        RCHECK_INT(&t->rec, rc, 0);
        if (rc != 0)
            break;
        t->calls++;
        /* Odd threads cancel every fourth call at once: it may be done
         * already (0), or not (1, and the task is cancelled). */
        int cancel_rc = -1;
        if (t->id % 2 && i % 4 == 1) {
            cancel_rc = asyncio_cfuture_cancel(f);
            RCHECK(&t->rec, cancel_rc == 0 || cancel_rc == 1);
        }
        finish_one(t, f, cancel_rc, false);
    }
    RCHECK_INT(&t->rec, asyncio_call_soon_threadsafe(t->loop, thread_through, t, NULL), 0);
    return NULL;
}

static int main_trippers(void *arg, void **result)
{
    (void)result;
    struct tripper *ts = arg;
    asyncio_future_t *all_done = tu_future();
    asyncio_loop_t *loop = loop_for_thread();
    g_threads_through = 0;
    g_runs = 0;
    g_target = NULL;
    int started = 0;
    for (int i = 0; i < NTHREADS; i++) {
        ts[i].loop = asyncio_loop_ref(loop);
        ts[i].all_done = all_done;
        ts[i].id = i;
        ts[i].token = i;
        int rc = thread_start(&ts[i].thread, tripper_main, &ts[i]);
        CHECK_INT(rc, 0);
        ts[i].started = rc == 0;
        started += rc == 0;
    }
    asyncio_loop_unref(loop);
    if (started == NTHREADS)
        CHECK_INT(asyncio_await(all_done, NULL), 0);
    asyncio_future_release(all_done);
    LOG("all-through");
    return 0;
}

static void test_many_threads_make_round_trips_into_one_running_loop(void **state)
{
    (void)state;
    struct tripper ts[NTHREADS] = {0};
    assert_int_equal(tu_run_bounded(main_trippers, ts, NULL, 2 * WAIT_S), 0);
    long ok = 0, cancelled = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_true(ts[i].started);
        assert_int_equal(pthread_join(ts[i].thread, NULL), 0);
        assert_rec_clean(&ts[i].rec, "round-trip thread");
        assert_int_equal(ts[i].calls, ROUNDS);
        assert_int_equal(ts[i].ok + ts[i].cancelled, ROUNDS);
        if (i % 2 == 0)
            assert_int_equal(ts[i].ok, ROUNDS); /* even threads cancel none */
        ok += ts[i].ok;
        cancelled += ts[i].cancelled;
        asyncio_loop_unref(ts[i].loop);
    }
    assert_log("all-through");
    /* Every success was a task that ran; cancelled ones may have run too. */
    assert_true(g_runs >= ok);
    assert_true(ok + cancelled == NTHREADS * ROUNDS);
}

/* Racing with the close: every call either is refused (-ESHUTDOWN) or
 * gives a future that completes (the task's outcome, or cancelled by the
 * close); every thread ends up refused; nothing hangs. Racers hold up to
 * PIPELINE futures before they wait for them, odd ones cancel some, and
 * those with id % 4 == 2 drop every third future without waiting. */
#define RACE_TARGET 600     /* tasks run before the main task returns */
#define RACE_MAX_CALLS 1000000L

static void *racer_main(void *arg)
{
    struct tripper *t = arg;
    asyncio_cfuture_t *held[PIPELINE];
    int held_cancel[PIPELINE];
    int n = 0;
    for (long i = 0;; i++) {
        if (i == RACE_MAX_CALLS) {
            rec_bad(&t->rec, __FILE__, __LINE__, "%ld calls and the loop never refused one", i);
            break;
        }
        asyncio_cfuture_t *f = NULL;
        int rc = asyncio_run_coroutine_threadsafe(t->loop, counted_echo, &t->token, &f);
        if (rc == -ESHUTDOWN) {
            t->shut = true;
            RCHECK_INT(&t->rec, asyncio_loop_is_closed(t->loop), 1);
            break;
        }
        RCHECK_INT(&t->rec, rc, 0);
        if (rc != 0)
            break;
        t->calls++;
        int cancel_rc = -1;
        if (t->id % 2 && i % 3 == 1) {
            cancel_rc = asyncio_cfuture_cancel(f);
            RCHECK(&t->rec, cancel_rc == 0 || cancel_rc == 1);
        }
        if (t->id % 4 == 2 && i % 3 == 0) {
            asyncio_cfuture_unref(f); /* nobody waits: the loop side finishes it */
            t->dropped++;
            continue;
        }
        held[n] = f;
        held_cancel[n++] = cancel_rc;
        if (n == PIPELINE) {
            for (int k = 0; k < n; k++)
                finish_one(t, held[k], held_cancel[k], true);
            n = 0;
        }
    }
    for (int k = 0; k < n; k++)
        finish_one(t, held[k], held_cancel[k], true);
    return NULL;
}

static int main_racers(void *arg, void **result)
{
    (void)result;
    struct tripper *ts = arg;
    asyncio_loop_t *loop = loop_for_thread();
    g_runs = 0;
    g_target = tu_future();
    for (int i = 0; i < NTHREADS; i++) {
        ts[i].loop = asyncio_loop_ref(loop);
        ts[i].id = i;
        ts[i].token = i;
        int rc = thread_start(&ts[i].thread, racer_main, &ts[i]);
        CHECK_INT(rc, 0);
        ts[i].started = rc == 0;
    }
    asyncio_loop_unref(loop);
    CHECK_INT(asyncio_await(g_target, NULL), 0);
    asyncio_future_release(g_target);
    g_target = NULL;
    LOG("closing");
    return 0; /* with the racers still at it */
}

static void test_round_trips_racing_with_the_loops_close_complete_or_are_refused(void **state)
{
    (void)state;
    /* Several loops, closing after more and more tasks ran. */
    for (int round = 0; round < 4; round++) {
        struct tripper ts[NTHREADS] = {0};
        g_target_runs = RACE_TARGET / 4 * (round + 1);
        assert_int_equal(tu_run_bounded(main_racers, ts, NULL, 2 * WAIT_S), 0);
        long ok = 0;
        for (int i = 0; i < NTHREADS; i++) {
            assert_true(ts[i].started);
            assert_int_equal(pthread_join(ts[i].thread, NULL), 0);
            assert_rec_clean(&ts[i].rec, "racing thread");
            assert_true(ts[i].shut);
            assert_int_equal(ts[i].ok + ts[i].cancelled + ts[i].dropped, ts[i].calls);
            ok += ts[i].ok;
            asyncio_loop_unref(ts[i].loop);
        }
        assert_log("closing");
        assert_true(ok >= 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_gets_the_outcome_of_a_task_it_started_in_a_running_loop),
        cmocka_unit_test(test_result_of_a_pending_future_times_out_with_timeout_0_or_bounded),
        cmocka_unit_test(test_result_of_a_pending_future_times_out_in_a_thread_without_a_loop),
        cmocka_unit_test(test_thread_cancels_the_future_and_the_task_in_the_loop_is_cancelled),
        cmocka_unit_test(test_run_coroutine_threadsafe_on_a_closed_loop_is_eshutdown),
        cmocka_unit_test(test_loop_closing_before_the_started_task_ends_cancels_its_future),
        cmocka_unit_test(test_loop_closing_before_the_task_starts_cancels_its_future),
        cmocka_unit_test(test_task_starts_a_task_in_its_own_loop_and_waits_for_it),
        cmocka_unit_test(test_task_waits_for_a_future_a_thread_completes_while_other_tasks_run),
        cmocka_unit_test(test_cancelled_wait_leaves_the_future_alone_and_completing_it_later_is_fine),
        cmocka_unit_test(test_wait_cancelled_after_the_future_completed_in_the_same_iteration),
        cmocka_unit_test(test_wait_in_a_timeout_scope_times_out_and_leaves_the_future_alone),
        cmocka_unit_test(test_set_result_twice_is_ealready_and_the_result_reads_many_times),
        cmocka_unit_test(test_references_keep_the_future_for_each_thread_that_holds_one),
        cmocka_unit_test(test_null_arguments_are_einval),
        cmocka_unit_test(test_result_from_a_loop_callback_is_eperm_when_it_would_wait),
        cmocka_unit_test(test_wrapped_futures_complete_when_a_thread_completes_them),
        cmocka_unit_test(test_wrap_of_a_done_future_gives_its_outcome),
        cmocka_unit_test(test_cancelling_the_loop_future_cancels_the_wrapped_future),
        cmocka_unit_test(test_dropping_the_wrapped_futures_last_reference_cancels_the_loop_future),
        cmocka_unit_test(test_thread_safe_future_outliving_the_loop_of_its_wrapper),
        cmocka_unit_test(test_completion_posted_to_a_loop_as_it_closes_is_released),
        cmocka_unit_test(test_wrap_future_outside_a_loop_is_eperm),
        cmocka_unit_test(test_one_future_wakes_tasks_of_two_loops_and_plain_threads),
        cmocka_unit_test(test_task_in_one_loop_runs_tasks_in_another_loops_thread),
        cmocka_unit_test(test_threads_racing_to_complete_the_same_futures_one_wins_each),
        cmocka_unit_test(test_waits_end_on_timeouts_and_cancellations_while_a_thread_completes),
        cmocka_unit_test(test_cancel_crossing_the_tasks_end_and_its_loops_close),
        cmocka_unit_test(test_many_threads_make_round_trips_into_one_running_loop),
        cmocka_unit_test(test_round_trips_racing_with_the_loops_close_complete_or_are_refused),
    };
    return tu_run_group_tests_name("cfuture", tests, NULL, NULL);
}
