/*
 * Executors (<asyncio/thread.h>, issue 18): asyncio_to_thread(),
 * asyncio_run_in_executor(), asyncio_executor_new() and
 * asyncio_executor_shutdown().
 *   - a call gives fn's result to its task, and arg and result stay the
 *     caller's (release is not called); the loop runs other tasks while fn
 *     blocks;
 *   - a call whose outcome the task does not get (cancelled while queued or
 *     running, timed out by a scope or by asyncio_wait_for(), cancelled
 *     before it began, failed: fn NULL, not in a task, executor shut down)
 *     returns at once, and release(arg, result) is called exactly once:
 *     after fn returned (with its result) or instead of it (NULL), in the
 *     loop's thread, or in the thread that ran fn when the loop closed
 *     first;
 *   - options: bad ones refused; max_workers bounds the functions running
 *     at once; threads start on demand and retire after idle_timeout;
 *   - shutdown: without WAIT it returns at once and queued calls still
 *     run; CANCEL_FUTURES drops the queued ones; WAIT suspends a task (the
 *     loop runs on), blocks a plain thread, is refused in a loop callback,
 *     and a task cancelled or timed out in it leaves the shutdown to go on;
 *   - a loop that closes with calls in its default executor: the running
 *     ones are waited for, the queued ones dropped unrun, all released in
 *     the loop's thread before asyncio_run() returns;
 *   - an executor shared by loops in two threads at once, with calls
 *     cancelled and timed out at every stage and calls left in flight as
 *     the loops end (CI runs this under ThreadSanitizer).
 *
 * The blocking functions wait on a gate (a condition variable) the test
 * opens, so what runs when is decided by the test, never by a clock; every
 * wait on another thread is bounded (WAIT_S), and nothing measures how
 * long something took. Worker threads are counted with a thread-local
 * serial number (a new thread gets a new one, even where pthread_t values
 * are reused) and a thread-specific key whose destructor runs as the
 * thread exits. testutil's CHECK() and order log are one set of globals:
 * the loops of other threads keep a record of their own, which the test's
 * thread checks after joining them.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

/* Every wait on another thread is bounded by this many seconds. */
#define WAIT_S 10.0

/* ---- time, for bounds only ----------------------------------------------- */

static struct timespec mono_in(double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = (long long)ts.tv_nsec + (long long)(s * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- a gate the blocking functions wait for ------------------------------ */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &a);
    pthread_condattr_destroy(&a);
    g->open = false;
}

static void gate_destroy(struct gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Wait (at most WAIT_S) for g to open: false if it never did. */
static bool gate_wait(struct gate *g)
{
    struct timespec until = mono_in(WAIT_S);
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (!g->open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    bool open = g->open;
    pthread_mutex_unlock(&g->mu);
    return open;
}

/* ---- worker threads, as the functions see them --------------------------- */

static atomic_int running_now, running_max; /* functions running at once */
static atomic_int threads_seen;             /* distinct threads that ran a function */
static atomic_int threads_gone;             /* of those, the ones that exited */
static pthread_key_t gone_key;
static _Thread_local int my_serial;

static void on_thread_exit(void *v)
{
    (void)v;
    atomic_fetch_add(&threads_gone, 1);
}

/* The calling thread's serial number (from 1), given on its first call. */
static int note_thread(void)
{
    if (!my_serial) {
        my_serial = atomic_fetch_add(&threads_seen, 1) + 1;
        pthread_setspecific(gone_key, (void *)1);
    }
    return my_serial;
}

/* ---- waiting for a count: in a task, or in a plain thread ---------------- */

/* Let the loop run until *v >= n, at most WAIT_S. */
static bool task_wait_count(atomic_int *v, int n)
{
    double until = asyncio_loop_time() + WAIT_S;
    while (atomic_load(v) < n) {
        if (asyncio_loop_time() > until || asyncio_sleep(0.001) != 0)
            return false;
    }
    return true;
}

static bool thread_wait_count(atomic_int *v, int n)
{
    double until = asyncio_loop_time() + WAIT_S;
    while (atomic_load(v) < n) {
        if (asyncio_loop_time() > until)
            return false;
        nap(0.001);
    }
    return true;
}

#define AWAIT_COUNT(v, n) CHECK(task_wait_count((v), (n)))

/* Threads of this process (Linux: /proc/self/task), or -1 elsewhere. */
static int live_threads(void)
{
#ifdef __linux__
    return tu_dir_entries("/proc/self/task");
#else
    return -1;
#endif
}

#ifdef __linux__
static long my_tid(void)
{
    return (long)syscall(SYS_gettid);
}

/* The state letter of thread tid of this process ('?' if unknown). */
static char thread_state(long tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}
#else
static long my_tid(void)
{
    return 0;
}
#endif

/* Wait (bounded) until thread tid is asleep, seen three times in a row:
 * the loop's thread blocked in its close, waiting for its default
 * executor's threads. Elsewhere than Linux, a pause stands for it. */
static void wait_asleep(long tid)
{
#ifdef __linux__
    int seen = 0;
    double until = asyncio_loop_time() + WAIT_S;
    while (seen < 3 && asyncio_loop_time() < until) {
        seen = thread_state(tid) == 'S' ? seen + 1 : 0;
        nap(0.002);
    }
#else
    (void)tid;
    nap(0.2);
#endif
}

/* ---- one blocking call and what became of it ----------------------------- */

struct call {
    int id;
    struct gate *gate;        /* fn waits for it to open; NULL: it does not */
    int spin;                 /* then yields the CPU this many times */
    asyncio_executor_t *ex;   /* asyncio_run_in_executor(ex); NULL: asyncio_to_thread() */
    pthread_t loop_thread;    /* the thread of the loop that makes the call */
    asyncio_loop_t *loop;     /* that loop (someone holds a reference), or NULL */
    /* fn's side */
    atomic_int fn_calls, fn_done, gate_missed;
    void *fn_result;          /* written before fn_done */
    int fn_serial;
    pthread_t fn_thread;
    /* release's side (written before releases) */
    atomic_int releases;
    void *rel_arg;
    uintptr_t rel_result;     /* freed by release: compared, never read */
    bool rel_fn_done, rel_in_loop, rel_in_fn_thread;
    int rel_loop_closed;      /* asyncio_loop_is_closed(loop) then; -1: no loop given */
    /* the task's side */
    atomic_int entered;       /* about to make the call (the task is in it once it waits) */
    atomic_int returned;      /* the call returned */
    int status;               /* what it returned; 1: never made */
    void *got;
    int scope_rc;             /* asyncio_timeout_exit()'s, with a timeout */
    /* for the workloads */
    double timeout;           /* > 0: the call is made in a scope of that many seconds */
    int cancel_at, cancel_rc;
    bool in_flight;
    int awaited;
    asyncio_task_t *task;
};

static void call_init(struct call *c, int id, struct gate *g, asyncio_executor_t *ex)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    c->gate = g;
    c->ex = ex;
    c->loop_thread = pthread_self();
    c->status = 1;
    c->cancel_at = -1;
}

/* The blocking function: waits for the gate, returns a malloc'd int (the
 * call's id), which the task or release owns. */
static void *call_fn(void *arg)
{
    struct call *c = arg;
    int serial = note_thread();
    atomic_fetch_add(&c->fn_calls, 1);
    c->fn_serial = serial;
    c->fn_thread = pthread_self();
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now))
        ;
    if (c->gate && !gate_wait(c->gate))
        atomic_store(&c->gate_missed, 1);
    for (int i = 0; i < c->spin; i++)
        sched_yield();
    atomic_fetch_sub(&running_now, 1);
    int *r = malloc(sizeof *r);
    if (r)
        *r = c->id;
    c->fn_result = r;
    atomic_store(&c->fn_done, 1);
    return r;
}

static void call_release(void *arg, void *result)
{
    struct call *c = arg;
    c->rel_arg = arg;
    c->rel_result = (uintptr_t)result;
    c->rel_fn_done = atomic_load(&c->fn_done) == 1;
    c->rel_in_loop = pthread_equal(pthread_self(), c->loop_thread);
    c->rel_in_fn_thread =
        atomic_load(&c->fn_calls) > 0 && pthread_equal(pthread_self(), c->fn_thread);
    c->rel_loop_closed = c->loop ? asyncio_loop_is_closed(c->loop) : -1;
    free(result);
    atomic_fetch_add(&c->releases, 1);
}

/* A task that makes c's call (in a timeout scope if c->timeout > 0). */
static int call_task(void *arg, void **result)
{
    (void)result;
    struct call *c = arg;
    asyncio_timeout_t scope;
    if (c->timeout > 0) {
        int rc = asyncio_timeout_enter(&scope, c->timeout);
        if (rc != 0) {
            c->status = -EPROTO;
            atomic_store(&c->returned, 1);
            return 0;
        }
    }
    atomic_store(&c->entered, 1);
    void *got = NULL;
    int rc = c->ex ? asyncio_run_in_executor(c->ex, call_fn, c, call_release, &got)
                   : asyncio_to_thread(call_fn, c, call_release, &got);
    if (c->timeout > 0)
        c->scope_rc = asyncio_timeout_exit(&scope);
    c->got = got;
    c->status = rc;
    atomic_store(&c->returned, 1);
    return rc == -ECANCELED ? rc : 0;
}

/* c's call returned 0: fn's result delivered, nothing released. Frees it. */
static void check_delivered_at(const char *file, int line, struct call *c)
{
    if (c->status != 0 || c->got == NULL || c->got != c->fn_result ||
        *(int *)c->got != c->id || atomic_load(&c->fn_calls) != 1 ||
        atomic_load(&c->releases) != 0 || atomic_load(&c->gate_missed) != 0)
        tu_fail_at(file, line,
                   "call %d: returned %s, result %p (fn's %p), fn called %d time(s), "
                   "released %d time(s), gate missed %d",
                   c->id, tu_err(c->status), c->got, c->fn_result, atomic_load(&c->fn_calls),
                   atomic_load(&c->releases), atomic_load(&c->gate_missed));
    if (c->status == 0)
        free(c->got);
    c->got = NULL;
}

/* fn ran to its end, then its result went to release, once, in the loop's
 * thread. */
static void check_released_after_run_at(const char *file, int line, struct call *c)
{
    if (atomic_load(&c->fn_calls) != 1 || atomic_load(&c->releases) != 1 || !c->rel_fn_done ||
        c->rel_arg != c || c->rel_result == 0 || c->rel_result != (uintptr_t)c->fn_result ||
        !c->rel_in_loop || atomic_load(&c->gate_missed) != 0)
        tu_fail_at(file, line,
                   "call %d: fn called %d time(s), released %d time(s) (fn done then: %d, "
                   "result %#lx, fn's %p, in the loop's thread: %d), gate missed %d",
                   c->id, atomic_load(&c->fn_calls), atomic_load(&c->releases), c->rel_fn_done,
                   (unsigned long)c->rel_result, c->fn_result, c->rel_in_loop,
                   atomic_load(&c->gate_missed));
}

/* fn never ran; release(arg, NULL) was called once, in the loop's thread. */
static void check_released_unrun_at(const char *file, int line, struct call *c)
{
    if (atomic_load(&c->fn_calls) != 0 || atomic_load(&c->releases) != 1 || c->rel_arg != c ||
        c->rel_result != 0 || !c->rel_in_loop)
        tu_fail_at(file, line,
                   "call %d: fn called %d time(s), released %d time(s) (result %#lx, in the "
                   "loop's thread: %d)",
                   c->id, atomic_load(&c->fn_calls), atomic_load(&c->releases),
                   (unsigned long)c->rel_result, c->rel_in_loop);
}

#define check_delivered(c) check_delivered_at(__FILE__, __LINE__, (c))
#define check_released_after_run(c) check_released_after_run_at(__FILE__, __LINE__, (c))
#define check_released_unrun(c) check_released_unrun_at(__FILE__, __LINE__, (c))

/* Make an executor, CHECKing it worked. */
static asyncio_executor_t *new_executor(unsigned max_workers, double idle_timeout)
{
    asyncio_executor_options_t o = {0};
    o.max_workers = max_workers;
    o.idle_timeout = idle_timeout;
    asyncio_executor_t *ex = NULL;
    int rc = asyncio_executor_new(&ex, &o);
    if (rc != 0 || !ex)
        tu_fail_at(__FILE__, __LINE__, "asyncio_executor_new: %s", tu_err(rc));
    return ex;
}

/* Start n tasks making calls cs[0..n-1]; wait (bounded) until the first
 * `running` of them run their functions and every task is in its call. */
static void start_calls(struct call *cs, asyncio_task_t **ts, int n, int running)
{
    for (int i = 0; i < n; i++)
        ts[i] = tu_spawn(call_task, &cs[i], NULL);
    for (int i = 0; i < n; i++)
        AWAIT_COUNT(&cs[i].entered, 1);
    AWAIT_COUNT(&running_now, running);
}

static void release_tasks(asyncio_task_t **ts, int n)
{
    for (int i = 0; i < n; i++)
        asyncio_task_release(ts[i]);
}

/* Each test's teardown: every thread that ran a function has exited (a
 * test leaves none behind, not even detached ones, for the next one). */
static int all_threads_gone(void **state)
{
    (void)state;
    int seen = atomic_load(&threads_seen);
    if (!thread_wait_count(&threads_gone, seen)) {
        fprintf(stderr, "test_executor: %d of %d worker threads still alive after the test\n",
                seen - atomic_load(&threads_gone), seen);
        return -1;
    }
    return 0;
}

/* ---- a call's result ----------------------------------------------------- */

static atomic_int echo_releases;

static void *echo_fn(void *arg)
{
    note_thread();
    return arg;
}

static void echo_release(void *arg, void *result)
{
    (void)arg;
    (void)result;
    atomic_fetch_add(&echo_releases, 1);
}

static int main_result(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct call c[2];
    call_init(&c[0], 1, NULL, NULL);
    call_init(&c[1], 2, NULL, NULL);
    /* asyncio_to_thread() and asyncio_run_in_executor(NULL): the default
     * executor, in another thread. */
    c[0].status = asyncio_to_thread(call_fn, &c[0], call_release, &c[0].got);
    c[1].status = asyncio_run_in_executor(NULL, call_fn, &c[1], call_release, &c[1].got);
    for (int i = 0; i < 2; i++) {
        CHECK(!pthread_equal(c[i].fn_thread, pthread_self()));
        check_delivered(&c[i]);
    }
    /* result may be NULL: the result is the caller's, and dropped. */
    int x = 7;
    CHECK_INT(asyncio_to_thread(echo_fn, &x, echo_release, NULL), 0);
    void *got = NULL;
    CHECK_INT(asyncio_to_thread(echo_fn, &x, echo_release, &got), 0);
    CHECK_PTR(got, &x);
    /* A user executor delivers the same way. */
    asyncio_executor_t *ex = new_executor(2, 0);
    struct call u;
    call_init(&u, 3, NULL, ex);
    u.status = asyncio_run_in_executor(ex, call_fn, &u, call_release, &u.got);
    check_delivered(&u);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    CHECK_INT(atomic_load(&echo_releases), 0);
    return 0;
}

static void test_a_call_delivers_its_result_and_release_is_not_called(void **state)
{
    (void)state;
    atomic_store(&echo_releases, 0);
    assert_int_equal(tu_run_bounded(main_result, NULL, NULL, WAIT_S), 0);
    /* Not at the loop's close either. */
    assert_int_equal(atomic_load(&echo_releases), 0);
}

/* ---- the loop runs while a function blocks ------------------------------- */

struct ticker {
    struct call *c;
    struct gate *g;
};

static int ticker_task(void *arg, void **result)
{
    (void)result;
    struct ticker *t = arg;
    AWAIT_COUNT(&t->c->fn_calls, 1);
    LOG("running");
    for (int i = 0; i < 3; i++) {
        LOG("tick%d", i);
        CHECK_INT(atomic_load(&t->c->fn_done), 0); /* fn still blocks */
        CHECK_INT(asyncio_sleep(0.001), 0);
    }
    LOG("open");
    gate_open(t->g);
    return 0;
}

static int main_loop_runs(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    struct call c;
    call_init(&c, 1, &g, NULL);
    struct ticker tk = {&c, &g};
    asyncio_task_t *caller = tu_spawn(call_task, &c, "caller");
    asyncio_task_t *ticker = tu_spawn(ticker_task, &tk, "ticker");
    CHECK_INT(asyncio_await(caller, NULL), 0);
    LOG("returned:%s", tu_err(c.status));
    check_delivered(&c);
    CHECK_INT(asyncio_await(ticker, NULL), 0);
    asyncio_task_release(caller);
    asyncio_task_release(ticker);
    gate_destroy(&g);
    return 0;
}

static void test_other_tasks_run_while_a_function_blocks_in_a_thread(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_loop_runs, NULL, NULL, WAIT_S), 0);
    assert_log("running tick0 tick1 tick2 open returned:0");
}

/* ---- cancellation -------------------------------------------------------- */

static atomic_int null_release_fn_started, null_release_fn_done;

static void *echo_gate_fn(void *arg)
{
    struct gate *g = arg;
    note_thread();
    atomic_store(&null_release_fn_started, 1);
    gate_wait(g);
    atomic_store(&null_release_fn_done, 1);
    return g;
}

static int echo_gate_task(void *arg, void **result)
{
    (void)result;
    return asyncio_to_thread(echo_gate_fn, arg, NULL, NULL);
}

static int main_cancel_running(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    struct call c;
    call_init(&c, 1, &g, NULL);
    asyncio_task_t *t = tu_spawn(call_task, &c, NULL);
    AWAIT_COUNT(&c.fn_calls, 1);
    CHECK_INT(asyncio_task_cancel(t), 1);
    /* The task stops waiting at once: fn still blocks, nothing released. */
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(c.status, -ECANCELED);
    CHECK_INT(atomic_load(&c.fn_done), 0);
    CHECK_INT(atomic_load(&c.releases), 0);
    LOG("cancelled");
    gate_open(&g);
    /* fn runs to its end; then release gets its result, in this thread. */
    AWAIT_COUNT(&c.releases, 1);
    LOG("released");
    check_released_after_run(&c);
    asyncio_task_release(t);

    /* release NULL: nothing to release (the result is not the caller's). */
    struct gate g2;
    gate_init(&g2);
    atomic_store(&null_release_fn_started, 0);
    atomic_store(&null_release_fn_done, 0);
    t = tu_spawn(echo_gate_task, &g2, NULL);
    AWAIT_COUNT(&null_release_fn_started, 1);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(atomic_load(&null_release_fn_done), 0);
    gate_open(&g2);
    AWAIT_COUNT(&null_release_fn_done, 1);
    asyncio_task_release(t);
    gate_destroy(&g);
    gate_destroy(&g2);
    return 0;
}

static void test_cancelled_while_running_returns_at_once_and_releases_the_result_later(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_cancel_running, NULL, NULL, WAIT_S), 0);
    assert_log("cancelled released");
}

static int main_cancel_queued(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    asyncio_executor_t *ex = new_executor(1, 0);
    struct call c[2];
    asyncio_task_t *t[2];
    call_init(&c[0], 1, &g, ex);
    call_init(&c[1], 2, &g, ex);
    start_calls(c, t, 2, 1); /* call 1 runs, call 2 is queued behind it */
    CHECK_INT(atomic_load(&c[1].fn_calls), 0);
    CHECK_INT(asyncio_task_cancel(t[1]), 1);
    CHECK_INT(asyncio_await(t[1], NULL), -ECANCELED);
    CHECK_INT(c[1].status, -ECANCELED);
    CHECK_INT(atomic_load(&c[0].fn_done), 0); /* at once: nothing has returned */
    /* Dropped from the queue, as Python's cancelled concurrent future:
     * released (arg, NULL) before the call returned, in this thread. */
    CHECK_INT(atomic_load(&c[1].releases), 1);
    check_released_unrun(&c[1]);
    gate_open(&g);
    CHECK_INT(asyncio_await(t[0], NULL), 0);
    check_delivered(&c[0]);
    /* fn never runs, and release is not called again. */
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    CHECK_INT(atomic_load(&c[1].fn_calls), 0);
    CHECK_INT(atomic_load(&c[1].releases), 1);
    release_tasks(t, 2);
    gate_destroy(&g);
    return 0;
}

static void test_cancelled_while_queued_returns_at_once_and_releases_once(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_cancel_queued, NULL, NULL, WAIT_S), 0);
}

/* ---- timeouts ------------------------------------------------------------ */

/* The scope of main_timeout_scope(), expired once the function runs: a
 * fixed delay would be a guess at how soon a thread starts it (a loaded
 * machine under TSan once took more than 20 ms, and the call was then
 * dropped from the queue unrun, another test's case). */
struct expire_when_running {
    asyncio_timeout_t *scope;
    struct call *c;
};

static int expire_when_running(void *arg, void **result)
{
    (void)result;
    struct expire_when_running *e = arg;
    AWAIT_COUNT(&e->c->fn_calls, 1);
    CHECK_INT(asyncio_timeout_reschedule(e->scope, asyncio_loop_time()), 0);
    return 0;
}

static int main_timeout_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    struct call c;
    call_init(&c, 1, &g, NULL);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, WAIT_S), 0);
    struct expire_when_running e = {&scope, &c};
    asyncio_task_t *expirer;
    CHECK_INT(asyncio_create_task(&expirer, expire_when_running, &e, "expirer"), 0);
    c.status = asyncio_to_thread(call_fn, &c, call_release, &c.got);
    CHECK_INT(asyncio_await(expirer, NULL), 0);
    asyncio_task_release(expirer);
    CHECK_INT(c.status, -ETIMEDOUT);
    CHECK_INT(atomic_load(&c.fn_calls), 1);
    CHECK_INT(atomic_load(&c.fn_done), 0); /* the task stopped waiting at once */
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_INT(atomic_load(&c.releases), 0);
    gate_open(&g);
    AWAIT_COUNT(&c.releases, 1);
    check_released_after_run(&c);
    gate_destroy(&g);
    return 0;
}

static void test_a_timeout_scope_ends_the_wait_and_releases_the_result_later(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_timeout_scope, NULL, NULL, WAIT_S), 0);
}

static int main_wait_for(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    struct call c;
    call_init(&c, 1, &g, NULL);
    asyncio_task_t *t = tu_spawn(call_task, &c, NULL);
    AWAIT_COUNT(&c.fn_calls, 1); /* running (not a guess at how soon) */
    CHECK_INT(asyncio_wait_for(t, 0.02, NULL), -ETIMEDOUT);
    /* wait_for cancelled the task and waited for it: its call returned
     * -ECANCELED while fn still blocked. */
    CHECK_INT(c.status, -ECANCELED);
    CHECK_INT(atomic_load(&c.fn_calls), 1);
    CHECK_INT(atomic_load(&c.fn_done), 0);
    CHECK_INT(atomic_load(&c.releases), 0);
    gate_open(&g);
    AWAIT_COUNT(&c.releases, 1);
    check_released_after_run(&c);
    asyncio_task_release(t);
    gate_destroy(&g);
    return 0;
}

static void test_wait_for_times_out_a_task_waiting_in_to_thread(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_wait_for, NULL, NULL, WAIT_S), 0);
}

/* ---- a cancellation or expired scope before the call --------------------- */

static int self_cancel_task(void *arg, void **result)
{
    (void)result;
    struct call *c = arg;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    c->status = asyncio_to_thread(call_fn, c, call_release, &c->got);
    return 0;
}

static int expired_scope_task(void *arg, void **result)
{
    (void)result;
    struct call *c = arg;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0), 0);
    c->status = asyncio_run_in_executor(c->ex, call_fn, c, call_release, &c->got);
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    return 0;
}

static int main_pending(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_executor_t *ex = new_executor(1, 0);
    struct call c[2];
    call_init(&c[0], 1, NULL, NULL);
    call_init(&c[1], 2, NULL, ex);
    asyncio_task_t *t[2] = {tu_spawn(self_cancel_task, &c[0], NULL),
                            tu_spawn(expired_scope_task, &c[1], NULL)};
    for (int i = 0; i < 2; i++)
        asyncio_await(t[i], NULL);
    CHECK_INT(c[0].status, -ECANCELED);
    CHECK_INT(c[1].status, -ETIMEDOUT);
    for (int i = 0; i < 2; i++) {
        AWAIT_COUNT(&c[i].releases, 1);
        check_released_unrun(&c[i]);
    }
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    release_tasks(t, 2);
    return 0;
}

static void test_a_cancellation_or_expired_scope_before_the_call_releases_arg_unrun(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_pending, NULL, NULL, WAIT_S), 0);
    /* fn was not run later either (the loop's close waited for its
     * default executor). */
    assert_int_equal(atomic_load(&threads_seen), atomic_load(&threads_gone));
}

/* ---- errors -------------------------------------------------------------- */

static int main_fn_null(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_executor_t *ex = new_executor(1, 0);
    struct call c[2];
    call_init(&c[0], 1, NULL, NULL);
    call_init(&c[1], 2, NULL, ex);
    c[0].status = asyncio_to_thread(NULL, &c[0], call_release, &c[0].got);
    c[1].status = asyncio_run_in_executor(ex, NULL, &c[1], call_release, &c[1].got);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(c[i].status, -EINVAL);
        AWAIT_COUNT(&c[i].releases, 1);
        check_released_unrun(&c[i]);
    }
    /* release NULL: nothing to release. */
    CHECK_INT(asyncio_to_thread(NULL, &c[0], NULL, NULL), -EINVAL);
    CHECK_INT(atomic_load(&c[0].releases), 1);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    return 0;
}

static void test_fn_null_is_einval_and_releases_arg(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_fn_null, NULL, NULL, WAIT_S), 0);
}

struct from_cb {
    struct call c[2];
    asyncio_executor_t *ex;
    int done;
};

static void make_calls_from_a_callback(void *arg)
{
    struct from_cb *f = arg;
    f->c[0].status = asyncio_to_thread(call_fn, &f->c[0], call_release, &f->c[0].got);
    f->c[1].status = asyncio_run_in_executor(f->ex, call_fn, &f->c[1], call_release, &f->c[1].got);
    f->done = 1;
}

static int main_from_callback(void *arg, void **result)
{
    (void)result;
    struct from_cb *f = arg;
    call_init(&f->c[0], 1, NULL, NULL);
    call_init(&f->c[1], 2, NULL, f->ex);
    CHECK_INT(asyncio_call_soon(make_calls_from_a_callback, f, NULL), 0);
    for (int i = 0; i < 100 && !f->done; i++)
        CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(f->done, 1);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(f->c[i].status, -EPERM);
        AWAIT_COUNT(&f->c[i].releases, 1);
        check_released_unrun(&f->c[i]);
    }
    return 0;
}

static void test_a_call_outside_a_task_is_eperm_and_releases_arg(void **state)
{
    (void)state;
    tu_reset();
    int seen = atomic_load(&threads_seen);
    asyncio_executor_t *ex = NULL;
    assert_int_equal(asyncio_executor_new(&ex, NULL), 0);
    /* In a thread where no loop runs (this one). */
    struct call c[2];
    call_init(&c[0], 1, NULL, NULL);
    call_init(&c[1], 2, NULL, ex);
    c[0].status = asyncio_to_thread(call_fn, &c[0], call_release, &c[0].got);
    c[1].status = asyncio_run_in_executor(ex, call_fn, &c[1], call_release, &c[1].got);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(c[i].status, -EPERM);
        /* No loop to call it in: none will run later either. */
        assert_true(thread_wait_count(&c[i].releases, 1));
        check_released_unrun(&c[i]);
    }
    tu_check_failures();
    /* In a loop callback. */
    struct from_cb f = {.ex = ex};
    assert_int_equal(tu_run_bounded(main_from_callback, &f, NULL, WAIT_S), 0);
    /* A blocking shutdown in a thread with no loop: nothing to wait for. */
    assert_int_equal(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    assert_int_equal(atomic_load(&threads_seen), seen); /* no function ran */
}

/* ---- options ------------------------------------------------------------- */

struct echo_call {
    asyncio_executor_t *ex;
    void *got;
};

static int echo_in_task(void *arg, void **result)
{
    (void)result;
    struct echo_call *c = arg;
    CHECK_INT(asyncio_run_in_executor(c->ex, echo_fn, c, NULL, &c->got), 0);
    CHECK_PTR(c->got, c);
    return 0;
}

/* Threads that spin for the next call (spin_us), and a loop that busy
 * polls, whose default executor spins as long: calls one after another,
 * several at once (a spinning thread takes one, an idle or new one the
 * rest), and a shutdown that finds a thread spinning. */
static int main_spinning(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 200; i++) {
        void *got = NULL;
        CHECK_INT(asyncio_to_thread(echo_fn, &got, NULL, &got), 0);
        CHECK_PTR(got, &got);
    }
    asyncio_executor_t *ex = NULL;
    asyncio_executor_options_t o = {.max_workers = 3, .spin_us = 1000000};
    CHECK_INT(asyncio_executor_new(&ex, &o), 0);
    for (int round = 0; round < 20; round++) {
        struct echo_call calls[4];
        asyncio_future_t *tasks[4];
        for (int i = 0; i < 4; i++) {
            calls[i] = (struct echo_call){ex, NULL};
            tasks[i] = tu_spawn(echo_in_task, &calls[i], NULL);
        }
        CHECK_INT(asyncio_gather(4, tasks, NULL, NULL, 0), 0);
        for (int i = 0; i < 4; i++)
            asyncio_task_release(tasks[i]);
    }
    /* Its threads spin for up to a second: the shutdown does not wait it out
     * (the watchdog would tell). */
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    return 0;
}

static void test_spinning_threads_and_a_busy_polling_loop(void **state)
{
    (void)state;
    asyncio_run_options_t opts = {.busy_poll_us = 200};
    tu_reset();
    struct tu_bounded b = {main_spinning, NULL, WAIT_S};
    assert_int_equal(asyncio_run_ex(tu_bounded_main, &b, NULL, &opts), 0);
    tu_check_failures();
}

/* Adaptive spinning (the default, with more than one CPU): fast calls
 * teach both sides to spin; then a call slower than any spin, a post from
 * another thread while the loop spins, and fast calls again must each
 * still wake the loop (a spin that ends re-arms the wake-up fd). On one
 * CPU nothing spins, and the same holds. */
static void *sleep_ms_fn(void *arg)
{
    struct timespec ts = {0, (long)(intptr_t)arg * 1000000L};
    nanosleep(&ts, NULL);
    return arg;
}

struct spin_post {
    asyncio_loop_t *loop;
    atomic_int ran;
};

static void spin_post_cb(void *arg)
{
    atomic_fetch_add(&((struct spin_post *)arg)->ran, 1);
}

static void *post_then_sleep_fn(void *arg)
{
    struct spin_post *p = arg;
    /* The loop waits for this very call meanwhile: spinning, at first. */
    if (asyncio_call_soon_threadsafe(p->loop, spin_post_cb, p, NULL) != 0)
        return NULL;
    return sleep_ms_fn((void *)(intptr_t)3);
}

static int main_adaptive(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct spin_post p = {asyncio_get_running_loop(), 0};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++) {
            void *got = NULL;
            CHECK_INT(asyncio_to_thread(echo_fn, &got, NULL, &got), 0);
            CHECK_PTR(got, &got);
        }
        /* Slower than any spin: a lost wake-up would hang here (the
         * bound of tu_bounded_main fails the test). */
        void *got = NULL;
        void *ms = (void *)(intptr_t)(2 + round);
        CHECK_INT(asyncio_to_thread(sleep_ms_fn, ms, NULL, &got), 0);
        CHECK_PTR(got, ms);
        CHECK_INT(asyncio_to_thread(post_then_sleep_fn, &p, NULL, &got), 0);
        CHECK_PTR(got, (void *)(intptr_t)3);
        /* Posted before the call returned: it ran first (FIFO inbox). */
        CHECK_INT(atomic_load(&p.ran), round + 1);
    }
    return 0;
}

static void test_adaptive_spinning_never_loses_a_wake_up(void **state)
{
    (void)state;
    tu_reset();
    struct tu_bounded b = {main_adaptive, NULL, WAIT_S};
    assert_int_equal(tu_run(tu_bounded_main, &b, NULL), 0);
    tu_check_failures();
}

static void test_executor_new_refuses_bad_options(void **state)
{
    (void)state;
    asyncio_executor_t *ex = NULL;
    asyncio_executor_options_t o;

    assert_int_equal(asyncio_executor_new(NULL, NULL), -EINVAL);
    o = (asyncio_executor_options_t){.max_workers = 4097};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);
    o = (asyncio_executor_options_t){.max_workers = UINT_MAX};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);
    o = (asyncio_executor_options_t){.idle_timeout = NAN};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);
    o = (asyncio_executor_options_t){.idle_timeout = -NAN};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);
    o = (asyncio_executor_options_t){.stack_size = 1};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);
    o = (asyncio_executor_options_t){.stack_size = (size_t)PTHREAD_STACK_MIN - 1};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);
    o = (asyncio_executor_options_t){.spin_us = ASYNCIO_BUSY_POLL_MAX_US + 1};
    assert_int_equal(asyncio_executor_new(&ex, &o), -EINVAL);

    /* The limits themselves, and the documented special values. */
    const asyncio_executor_options_t good[] = {
        {.max_workers = 4096},
        {.max_workers = 1},
        {.stack_size = (size_t)PTHREAD_STACK_MIN},
        {.idle_timeout = -1},
        {.idle_timeout = INFINITY},
        {.idle_timeout = 1e-9},
        {.spin_us = ASYNCIO_BUSY_POLL_MAX_US},
        {0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ex = NULL;
        assert_int_equal(asyncio_executor_new(&ex, &good[i]), 0);
        assert_non_null(ex);
        assert_int_equal(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    }
    ex = NULL;
    assert_int_equal(asyncio_executor_new(&ex, NULL), 0);
    assert_non_null(ex);
    assert_int_equal(asyncio_executor_shutdown(ex, 0), 0);

    assert_int_equal(asyncio_executor_shutdown(NULL, 0), -EINVAL);
    assert_int_equal(asyncio_executor_shutdown(NULL, ASYNCIO_SHUTDOWN_WAIT), -EINVAL);
}

#define SMALL_STACK ((size_t)256 * 1024)

static void *stack_fn(void *arg)
{
    size_t *size = arg;
    note_thread();
    *size = 0;
#if defined(__GLIBC__)
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, size);
        pthread_attr_destroy(&a);
    }
#endif
    return arg;
}

static int main_options_in_use(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* A stack size of its own, smaller than the system's default (the
     * sanitizers may enlarge a small one: compared with the default, not
     * with what was asked for). */
    size_t size[2] = {1, 1};
    for (int i = 0; i < 2; i++) {
        asyncio_executor_options_t o = {.stack_size = i ? 0 : SMALL_STACK};
        asyncio_executor_t *ex = NULL;
        CHECK_INT(asyncio_executor_new(&ex, &o), 0);
        void *got = NULL;
        CHECK_INT(asyncio_run_in_executor(ex, stack_fn, &size[i], NULL, &got), 0);
        CHECK_PTR(got, &size[i]);
        CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    }
#if defined(__GLIBC__)
    if (size[0] < SMALL_STACK / 2 || size[0] >= size[1])
        tu_fail_at(__FILE__, __LINE__, "stack of %zu bytes, %zu asked for (default: %zu)",
                   size[0], SMALL_STACK, size[1]);
#endif
    asyncio_executor_t *ex;
    /* Idle threads that never retire, and one that retires at once: a
     * call is served, and a blocking shutdown ends the waiting thread. */
    const double idles[] = {-1, INFINITY, 1e-9};
    for (size_t i = 0; i < sizeof idles / sizeof idles[0]; i++) {
        ex = new_executor(2, idles[i]);
        struct call c;
        call_init(&c, (int)i + 1, NULL, ex);
        c.status = asyncio_run_in_executor(ex, call_fn, &c, call_release, &c.got);
        check_delivered(&c);
        call_init(&c, (int)i + 11, NULL, ex);
        c.status = asyncio_run_in_executor(ex, call_fn, &c, call_release, &c.got);
        check_delivered(&c);
        CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    }
    return 0;
}

static void test_executor_options_are_used(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_options_in_use, NULL, NULL, WAIT_S), 0);
}

/* ---- threads: how many, when --------------------------------------------- */

static int main_max_workers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    atomic_store(&running_max, 0);
    int seen = atomic_load(&threads_seen), gone = atomic_load(&threads_gone);
    asyncio_executor_t *ex = new_executor(2, 0);
    struct call c[5];
    asyncio_task_t *t[5];
    for (int i = 0; i < 5; i++)
        call_init(&c[i], i + 1, &g, ex);
    start_calls(c, t, 5, 2);
    /* Time for a third to start, if the bound let it. */
    CHECK_INT(asyncio_sleep(0.02), 0);
    CHECK_INT(atomic_load(&running_now), 2);
    int started = 0;
    for (int i = 0; i < 5; i++)
        started += atomic_load(&c[i].fn_calls);
    CHECK_INT(started, 2);
    gate_open(&g);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(asyncio_await(t[i], NULL), 0);
        check_delivered(&c[i]);
    }
    CHECK_INT(atomic_load(&running_max), 2);
    /* Two threads served all five calls. */
    CHECK_INT(atomic_load(&threads_seen) - seen, 2);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    CHECK_INT(atomic_load(&threads_gone) - gone, 2);
    release_tasks(t, 5);
    gate_destroy(&g);
    return 0;
}

static void test_max_workers_bounds_the_functions_running_at_once(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_max_workers, NULL, NULL, WAIT_S), 0);
}

struct on_demand {
    int before; /* threads of the process before the loop */
};

static int main_on_demand(void *arg, void **result)
{
    (void)result;
    struct on_demand *d = arg;
    /* A loop starts no thread for its default executor... */
    int n = live_threads();
    if (d->before >= 0 && n > d->before)
        tu_fail_at(__FILE__, __LINE__, "%d threads in a fresh loop, %d before", n, d->before);
    /* ...nor does an executor made and not used. */
    asyncio_executor_t *ex = new_executor(4, 0);
    n = live_threads();
    if (d->before >= 0 && n > d->before)
        tu_fail_at(__FILE__, __LINE__, "%d threads after executor_new, %d before", n, d->before);
    /* The first call starts one. */
    int seen = atomic_load(&threads_seen);
    struct call c;
    call_init(&c, 1, NULL, ex);
    c.status = asyncio_run_in_executor(ex, call_fn, &c, call_release, &c.got);
    check_delivered(&c);
    CHECK_INT(atomic_load(&threads_seen) - seen, 1);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    /* Likewise the default executor's. */
    call_init(&c, 2, NULL, NULL);
    c.status = asyncio_to_thread(call_fn, &c, call_release, &c.got);
    check_delivered(&c);
    CHECK_INT(atomic_load(&threads_seen) - seen, 2);
    return 0;
}

static void test_threads_start_on_demand(void **state)
{
    (void)state;
    struct on_demand d = {live_threads()};
    assert_int_equal(tu_run_bounded(main_on_demand, &d, NULL, WAIT_S), 0);
}

static int main_idle(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int seen = atomic_load(&threads_seen), gone = atomic_load(&threads_gone);
    asyncio_executor_t *ex = new_executor(1, 0.05);
    struct call c[2];
    call_init(&c[0], 1, NULL, ex);
    c[0].status = asyncio_run_in_executor(ex, call_fn, &c[0], call_release, &c[0].got);
    check_delivered(&c[0]);
    /* Its thread exits once idle for 0.05 s, the executor still open. */
    AWAIT_COUNT(&threads_gone, gone + 1);
    CHECK_INT(atomic_load(&threads_seen) - seen, 1);
    /* The next call gets a new thread. */
    call_init(&c[1], 2, NULL, ex);
    c[1].status = asyncio_run_in_executor(ex, call_fn, &c[1], call_release, &c[1].got);
    check_delivered(&c[1]);
    CHECK(c[1].fn_serial != c[0].fn_serial);
    CHECK_INT(atomic_load(&threads_seen) - seen, 2);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    CHECK_INT(atomic_load(&threads_gone) - gone, 2);
    return 0;
}

static void test_idle_threads_exit_after_idle_timeout(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_idle, NULL, NULL, WAIT_S), 0);
}

/* Calls that come as idle threads retire: an idle thread whose wait
 * times out as a call is queued takes it, or another thread starts. */
struct retiring {
    asyncio_executor_t *ex;
    int id;
    int bad;
};

static int retiring_task(void *arg, void **result)
{
    (void)result;
    struct retiring *r = arg;
    for (int i = 0; i < 150; i++) {
        struct call c;
        call_init(&c, r->id * 1000 + i, NULL, r->ex);
        c.status = asyncio_run_in_executor(r->ex, call_fn, &c, call_release, &c.got);
        if (c.status != 0 || c.got != c.fn_result || atomic_load(&c.releases) != 0)
            r->bad++;
        if (c.status == 0)
            free(c.got);
        if (asyncio_sleep(0.0004 * (i % 4)) != 0)
            r->bad++;
    }
    return 0;
}

static int main_retiring(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_executor_t *ex = new_executor(2, 0.0008);
    struct retiring r[2] = {{ex, 1, 0}, {ex, 2, 0}};
    asyncio_task_t *t[2] = {tu_spawn(retiring_task, &r[0], NULL),
                            tu_spawn(retiring_task, &r[1], NULL)};
    for (int i = 0; i < 2; i++) {
        CHECK_INT(asyncio_await(t[i], NULL), 0);
        CHECK_INT(r[i].bad, 0);
    }
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    release_tasks(t, 2);
    return 0;
}

static void test_calls_that_come_as_idle_threads_retire_are_served(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_retiring, NULL, NULL, WAIT_S), 0);
}

/* A function may run a loop of its own in the executor's thread (one
 * loop per thread), with a default executor of its own. */
static int inner_main(void *arg, void **result)
{
    struct call *c = arg;
    c->status = asyncio_to_thread(call_fn, c, call_release, &c->got);
    *result = c->got;
    return c->status;
}

static void *loop_fn(void *arg)
{
    struct call *c = arg;
    note_thread();
    c->loop_thread = pthread_self(); /* the inner loop's */
    void *got = NULL;
    int rc = asyncio_run(inner_main, c, &got);
    return rc == 0 ? got : NULL;
}

static int main_loop_in_fn(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct call inner;
    call_init(&inner, 7, NULL, NULL);
    void *got = NULL;
    CHECK_INT(asyncio_to_thread(loop_fn, &inner, NULL, &got), 0);
    CHECK(got != NULL);
    CHECK_PTR(got, inner.got);
    check_delivered(&inner);
    return 0;
}

static void test_a_function_may_run_a_loop_of_its_own(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_loop_in_fn, NULL, NULL, WAIT_S), 0);
}

/* The threads block every signal (<asyncio/signal.h>: "the loop's own
 * pool threads block every signal"), so that a signal sent to the process
 * reaches the loop that handles it, even while they run. */
static const int some_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2,
                                   SIGALRM, SIGCHLD, SIGPIPE, SIGWINCH};

static void *sigmask_fn(void *arg)
{
    int *first_unblocked = arg;
    note_thread();
    sigset_t cur;
    *first_unblocked = -1;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return arg;
    *first_unblocked = 0;
    for (size_t i = 0; i < sizeof some_signals / sizeof some_signals[0]; i++) {
        if (!sigismember(&cur, some_signals[i])) {
            *first_unblocked = some_signals[i];
            break;
        }
    }
    return arg;
}

static void *kill_fn(void *arg)
{
    note_thread();
    kill(getpid(), SIGUSR1);
    return arg;
}

static void on_usr1(int signum, void *arg)
{
    (void)signum;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static int main_signals(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int unblocked[2] = {-2, -2};
    void *got = NULL;
    asyncio_executor_t *ex = new_executor(1, 0);
    CHECK_INT(asyncio_to_thread(sigmask_fn, &unblocked[0], NULL, &got), 0);
    CHECK_INT(asyncio_run_in_executor(ex, sigmask_fn, &unblocked[1], NULL, &got), 0);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    for (int i = 0; i < 2; i++)
        if (unblocked[i] != 0)
            tu_fail_at(__FILE__, __LINE__, "%s executor: signal %d not blocked in its thread",
                       i ? "a user" : "the default", unblocked[i]);
    /* A signal for the process, sent from a function, reaches the loop. */
    static atomic_int usr1;
    atomic_store(&usr1, 0);
    int rc = asyncio_add_signal_handler(SIGUSR1, on_usr1, &usr1);
    if (rc == -ENOSYS)
        return 0; /* no signalfd here */
    CHECK_INT(rc, 0);
    CHECK_INT(asyncio_to_thread(kill_fn, NULL, NULL, NULL), 0);
    AWAIT_COUNT(&usr1, 1);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR1), 1);
    return 0;
}

static void test_executor_threads_block_every_signal(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_signals, NULL, NULL, WAIT_S), 0);
}

/* ---- shutdown ------------------------------------------------------------ */

static int main_shutdown_nowait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    int gone = atomic_load(&threads_gone);
    asyncio_executor_t *ex = new_executor(1, 0);
    struct call c[3];
    asyncio_task_t *t[3];
    for (int i = 0; i < 3; i++)
        call_init(&c[i], i + 1, &g, ex);
    start_calls(c, t, 3, 1);
    CHECK_INT(asyncio_executor_shutdown(ex, 0), 0);
    /* It returned with fn still blocked. */
    CHECK_INT(atomic_load(&c[0].fn_done), 0);
    LOG("shut");
    gate_open(&g);
    /* The queued calls still run. */
    for (int i = 0; i < 3; i++) {
        CHECK_INT(asyncio_await(t[i], NULL), 0);
        check_delivered(&c[i]);
    }
    LOG("all-ran");
    /* Its thread finishes on its own. */
    AWAIT_COUNT(&threads_gone, gone + 1);
    release_tasks(t, 3);
    gate_destroy(&g);
    return 0;
}

static void test_shutdown_without_wait_returns_at_once_and_queued_calls_still_run(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_shutdown_nowait, NULL, NULL, WAIT_S), 0);
    assert_log("shut all-ran");
}

static int main_cancel_futures(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    int gone = atomic_load(&threads_gone);
    asyncio_executor_t *ex = new_executor(1, 0);
    struct call c[3];
    asyncio_task_t *t[3];
    for (int i = 0; i < 3; i++)
        call_init(&c[i], i + 1, &g, ex);
    start_calls(c, t, 3, 1);
    CHECK_INT(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_CANCEL_FUTURES), 0);
    /* The queued calls are dropped: their tasks get -ECANCELED while the
     * running one still blocks. */
    for (int i = 1; i < 3; i++) {
        CHECK_INT(asyncio_await(t[i], NULL), -ECANCELED);
        CHECK_INT(c[i].status, -ECANCELED);
        AWAIT_COUNT(&c[i].releases, 1);
        check_released_unrun(&c[i]);
    }
    CHECK_INT(atomic_load(&c[0].fn_done), 0);
    gate_open(&g);
    /* The running one finishes and delivers. */
    CHECK_INT(asyncio_await(t[0], NULL), 0);
    check_delivered(&c[0]);
    AWAIT_COUNT(&threads_gone, gone + 1);
    for (int i = 1; i < 3; i++)
        CHECK_INT(atomic_load(&c[i].fn_calls), 0);
    release_tasks(t, 3);
    gate_destroy(&g);
    return 0;
}

static void test_shutdown_cancel_futures_drops_queued_calls_and_the_running_one_finishes(
    void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_cancel_futures, NULL, NULL, WAIT_S), 0);
}

struct opener {
    struct call *c; /* the call to be running first */
    struct gate *g;
};

static int opener_task(void *arg, void **result)
{
    (void)result;
    struct opener *o = arg;
    LOG("tick");
    CHECK_INT(atomic_load(&o->c->fn_done), 0);
    CHECK_INT(asyncio_sleep(0.005), 0);
    LOG("open");
    gate_open(o->g);
    return 0;
}

static int main_shutdown_wait_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    int seen = atomic_load(&threads_seen), gone = atomic_load(&threads_gone);
    asyncio_executor_t *ex = new_executor(2, 0);
    struct call c[3];
    asyncio_task_t *t[3];
    for (int i = 0; i < 3; i++)
        call_init(&c[i], i + 1, &g, ex);
    start_calls(c, t, 3, 2); /* two run, the third is queued */
    struct opener o = {&c[0], &g};
    asyncio_task_t *op = tu_spawn(opener_task, &o, "opener");
    LOG("shutdown");
    int rc = asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT);
    LOG("shutdown:%s", tu_err(rc));
    /* Back once its threads have exited, the queued call run first. */
    CHECK_INT(atomic_load(&threads_seen) - seen, 2);
    CHECK_INT(atomic_load(&threads_gone) - gone, 2);
    CHECK_INT(atomic_load(&c[2].fn_done), 1);
    int rcs[3];
    for (int i = 0; i < 3; i++)
        rcs[i] = asyncio_await(t[i], NULL);
    LOG("calls:%s,%s,%s", tu_err(rcs[0]), tu_err(rcs[1]), tu_err(rcs[2]));
    for (int i = 0; i < 3; i++)
        check_delivered(&c[i]);
    CHECK_INT(asyncio_await(op, NULL), 0);
    asyncio_task_release(op);
    release_tasks(t, 3);
    gate_destroy(&g);
    return 0;
}

static void test_shutdown_wait_in_a_task_lets_the_loop_run_until_the_threads_exit(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_shutdown_wait_task, NULL, NULL, WAIT_S), 0);
    assert_log("shutdown tick open shutdown:0 calls:0,0,0");
}

struct plain_shutdown {
    asyncio_executor_t *ex;
    struct call *c;
    asyncio_cfuture_t *done;
    int gone_before;
    int rc;
    int fn_done_then, gone_then;
};

static void *plain_shutdown_thread(void *arg)
{
    struct plain_shutdown *p = arg;
    p->rc = asyncio_executor_shutdown(p->ex, ASYNCIO_SHUTDOWN_WAIT);
    p->fn_done_then = atomic_load(&p->c->fn_done);
    p->gone_then = atomic_load(&threads_gone) - p->gone_before;
    asyncio_cfuture_set_result(p->done, 0, NULL);
    return NULL;
}

static int main_shutdown_wait_plain(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    struct plain_shutdown p = {.gone_before = atomic_load(&threads_gone)};
    p.ex = new_executor(1, 0);
    struct call c;
    asyncio_task_t *t;
    call_init(&c, 1, &g, p.ex);
    p.c = &c;
    start_calls(&c, &t, 1, 1);
    CHECK_INT(asyncio_cfuture_new(&p.done), 0);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, plain_shutdown_thread, &p), 0);
    /* The shutdown blocks its thread while fn blocks; this loop runs. */
    CHECK_INT(asyncio_sleep(0.01), 0);
    CHECK_INT(asyncio_cfuture_done(p.done), 0);
    LOG("open");
    gate_open(&g);
    CHECK_INT(asyncio_cfuture_result(p.done, WAIT_S, NULL), 0);
    LOG("shut");
    pthread_join(th, NULL);
    CHECK_INT(p.rc, 0);
    CHECK_INT(p.fn_done_then, 1);
    CHECK_INT(p.gone_then, 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    check_delivered(&c);
    asyncio_task_release(t);
    asyncio_cfuture_unref(p.done);
    gate_destroy(&g);
    return 0;
}

static void test_shutdown_wait_in_a_plain_thread_blocks_until_the_threads_exit(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_shutdown_wait_plain, NULL, NULL, WAIT_S), 0);
    assert_log("open shut");
}

struct cb_shutdown {
    asyncio_executor_t *ex;
    int rc;
    int done;
};

static void shutdown_from_callback(void *arg)
{
    struct cb_shutdown *s = arg;
    s->rc = asyncio_executor_shutdown(s->ex, ASYNCIO_SHUTDOWN_WAIT);
    s->done = 1;
}

static int main_shutdown_in_callback(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct cb_shutdown s = {.ex = new_executor(1, 0)};
    /* With a thread in it, idle. */
    struct call c;
    call_init(&c, 1, NULL, s.ex);
    c.status = asyncio_run_in_executor(s.ex, call_fn, &c, call_release, &c.got);
    check_delivered(&c);
    CHECK_INT(asyncio_call_soon(shutdown_from_callback, &s, NULL), 0);
    for (int i = 0; i < 100 && !s.done; i++)
        CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(s.done, 1);
    CHECK_INT(s.rc, -EPERM);
    /* Nothing was done: the executor still serves. */
    call_init(&c, 2, NULL, s.ex);
    c.status = asyncio_run_in_executor(s.ex, call_fn, &c, call_release, &c.got);
    check_delivered(&c);
    CHECK_INT(asyncio_executor_shutdown(s.ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    return 0;
}

static void test_shutdown_wait_in_a_loop_callback_is_eperm_and_changes_nothing(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_shutdown_in_callback, NULL, NULL, WAIT_S), 0);
}

struct shutdown_task_arg {
    asyncio_executor_t *ex;
    int rc;
    atomic_int entered;
};

static int shutdown_task(void *arg, void **result)
{
    (void)result;
    struct shutdown_task_arg *s = arg;
    atomic_store(&s->entered, 1);
    s->rc = asyncio_executor_shutdown(s->ex, ASYNCIO_SHUTDOWN_WAIT);
    return s->rc == -ECANCELED ? s->rc : 0;
}

/* A blocking shutdown by a task whose cancellation is pending, and in a
 * scope already expired: it does not wait. */
static int shutdown_cancelled_before_task(void *arg, void **result)
{
    (void)result;
    struct shutdown_task_arg *s = arg;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    s->rc = asyncio_executor_shutdown(s->ex, ASYNCIO_SHUTDOWN_WAIT);
    return 0;
}

static int shutdown_expired_before_task(void *arg, void **result)
{
    (void)result;
    struct shutdown_task_arg *s = arg;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0), 0);
    s->rc = asyncio_executor_shutdown(s->ex, ASYNCIO_SHUTDOWN_WAIT);
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    return 0;
}

static int main_shutdown_interrupted(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    int gone = atomic_load(&threads_gone);
    struct call c[4];
    asyncio_task_t *t[4];
    asyncio_executor_t *ex0 = new_executor(1, 0);
    struct shutdown_task_arg s = {.ex = new_executor(1, 0)};
    struct shutdown_task_arg before[2] = {{.ex = new_executor(1, 0)}, {.ex = new_executor(1, 0)}};
    call_init(&c[0], 1, &g, ex0);
    call_init(&c[1], 2, &g, s.ex);
    call_init(&c[2], 3, &g, before[0].ex);
    call_init(&c[3], 4, &g, before[1].ex);
    start_calls(c, t, 4, 4);
    /* Before the wait: a cancellation pending, a scope expired. */
    asyncio_task_t *bt[2] = {tu_spawn(shutdown_cancelled_before_task, &before[0], NULL),
                             tu_spawn(shutdown_expired_before_task, &before[1], NULL)};
    for (int i = 0; i < 2; i++)
        asyncio_await(bt[i], NULL);
    CHECK_INT(before[0].rc, -ECANCELED);
    CHECK_INT(before[1].rc, -ETIMEDOUT);
    release_tasks(bt, 2);
    /* A timeout scope ends the wait... */
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    CHECK_INT(asyncio_executor_shutdown(ex0, ASYNCIO_SHUTDOWN_WAIT), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    /* ...and so does a cancellation. */
    asyncio_task_t *st = tu_spawn(shutdown_task, &s, NULL);
    AWAIT_COUNT(&s.entered, 1);
    CHECK_INT(asyncio_sleep(0.001), 0);
    CHECK_INT(asyncio_task_cancel(st), 1);
    CHECK_INT(asyncio_await(st, NULL), -ECANCELED);
    CHECK_INT(s.rc, -ECANCELED);
    for (int i = 0; i < 4; i++)
        CHECK_INT(atomic_load(&c[i].fn_done), 0);
    /* The shutdowns go on without their tasks: the calls finish and
     * deliver, the threads exit and the executors go. */
    gate_open(&g);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(asyncio_await(t[i], NULL), 0);
        check_delivered(&c[i]);
    }
    AWAIT_COUNT(&threads_gone, gone + 4);
    asyncio_task_release(st);
    release_tasks(t, 4);
    gate_destroy(&g);
    return 0;
}

static void test_shutdown_wait_timed_out_or_cancelled_goes_on_without_the_task(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_shutdown_interrupted, NULL, NULL, WAIT_S), 0);
}

static int main_eshutdown(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct gate g;
    gate_init(&g);
    struct shutdown_task_arg s = {.ex = new_executor(1, 0)};
    struct call c, late;
    asyncio_task_t *t;
    call_init(&c, 1, &g, s.ex);
    start_calls(&c, &t, 1, 1);
    /* A task shuts it down and waits (the executor is alive meanwhile):
     * a call made now is refused. */
    asyncio_task_t *st = tu_spawn(shutdown_task, &s, NULL);
    AWAIT_COUNT(&s.entered, 1);
    call_init(&late, 2, &g, s.ex);
    late.status = asyncio_run_in_executor(s.ex, call_fn, &late, call_release, &late.got);
    CHECK_INT(late.status, -ESHUTDOWN);
    AWAIT_COUNT(&late.releases, 1);
    check_released_unrun(&late);
    gate_open(&g);
    CHECK_INT(asyncio_await(st, NULL), 0);
    CHECK_INT(s.rc, 0);
    CHECK_INT(asyncio_await(t, NULL), 0);
    check_delivered(&c);
    CHECK_INT(atomic_load(&late.fn_calls), 0);
    asyncio_task_release(st);
    asyncio_task_release(t);
    gate_destroy(&g);
    return 0;
}

static void test_a_call_on_an_executor_being_shut_down_is_eshutdown_and_releases_arg(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_eshutdown, NULL, NULL, WAIT_S), 0);
}

struct self_shut {
    asyncio_executor_t *ex;
    int deadlk, rc;
};

static void *shutdown_self_fn(void *arg)
{
    struct self_shut *s = arg;
    note_thread();
    /* Waiting would wait for this very thread: refused, nothing done. */
    s->deadlk = asyncio_executor_shutdown(s->ex, ASYNCIO_SHUTDOWN_WAIT);
    s->rc = asyncio_executor_shutdown(s->ex, 0);
    return s;
}

static int main_shutdown_from_fn(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int gone = atomic_load(&threads_gone);
    struct self_shut s = {.ex = new_executor(1, 0)};
    void *got = NULL;
    CHECK_INT(asyncio_run_in_executor(s.ex, shutdown_self_fn, &s, NULL, &got), 0);
    CHECK_PTR(got, &s);
    CHECK_INT(s.deadlk, -EDEADLK);
    CHECK_INT(s.rc, 0);
    AWAIT_COUNT(&threads_gone, gone + 1);
    return 0;
}

static void test_shutdown_from_one_of_its_own_functions_waits_not_for_itself(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(main_shutdown_from_fn, NULL, NULL, WAIT_S), 0);
}

/* ---- the loop closes with calls in flight -------------------------------- */

/* Opens the gate once every call's task has returned from it (the loop
 * closing cancelled them) and the loop's thread sleeps (in its close). */
struct closer {
    struct call *c;
    int n;
    struct gate *g;
    long loop_tid;
    bool all_returned;
};

static void *closer_thread(void *arg)
{
    struct closer *k = arg;
    k->all_returned = true;
    for (int i = 0; i < k->n; i++)
        k->all_returned &= thread_wait_count(&k->c[i].returned, 1);
    wait_asleep(k->loop_tid);
    gate_open(k->g);
    return NULL;
}

struct close_run {
    struct call *c;
    int n;
    int running; /* calls whose functions run as main returns */
};

static int main_close_with_calls(void *arg, void **result)
{
    (void)result;
    struct close_run *r = arg;
    /* The calls were initialised by the test (its closer thread reads
     * them from the start). */
    for (int i = 0; i < r->n; i++)
        r->c[i].loop = asyncio_loop_ref(asyncio_get_running_loop());
    for (int i = 0; i < r->n; i++)
        CHECK_INT(asyncio_create_task(NULL, call_task, &r->c[i], NULL), 0);
    for (int i = 0; i < r->n; i++)
        AWAIT_COUNT(&r->c[i].entered, 1);
    AWAIT_COUNT(&running_now, r->running);
    CHECK_INT(asyncio_sleep(0.01), 0); /* time for more, if the bound let them */
    CHECK_INT(atomic_load(&running_now), r->running);
    /* Return with the calls in flight: the loop cancels their tasks. */
    return 0;
}

/* Run main_close_with_calls(r) as a bounded main task, with k's thread
 * beside it; join that thread before anything can fail. */
static int run_with_closer(struct close_run *r, struct closer *k)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closer_thread, k), 0);
    tu_reset();
    struct tu_bounded b = {main_close_with_calls, r, WAIT_S};
    int rc = asyncio_run(tu_bounded_main, &b, NULL);
    assert_int_equal(pthread_join(th, NULL), 0);
    tu_check_failures();
    return rc;
}

static void test_the_loop_closes_after_a_to_thread_call_still_running(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g);
    struct call c;
    call_init(&c, 1, &g, NULL);
    struct close_run r = {&c, 1, 1};
    struct closer k = {&c, 1, &g, my_tid(), false};
    assert_int_equal(run_with_closer(&r, &k), 0);
    /* asyncio_run() waited for fn, and release got its result in this
     * thread, before it returned. */
    assert_int_equal(c.status, -ECANCELED);
    assert_int_equal(atomic_load(&c.fn_done), 1);
    check_released_after_run(&c);
    tu_check_failures();
    assert_true(k.all_returned);
    asyncio_loop_unref(c.loop);
    gate_destroy(&g);
}

#define MAX_DEFAULT 32

static void test_the_loop_closes_after_to_thread_calls_still_queued(void **state)
{
    (void)state;
    /* The default executor: min(32, CPUs + 4) threads. Two calls more
     * than that wait in its queue as the loop closes. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int max = cpus > 0 && cpus + 4 < MAX_DEFAULT ? (int)cpus + 4 : MAX_DEFAULT;
    int n = max + 2;
    struct gate g;
    gate_init(&g);
    struct call c[MAX_DEFAULT + 2];
    for (int i = 0; i < n; i++)
        call_init(&c[i], i + 1, &g, NULL);
    atomic_store(&running_max, 0);
    struct close_run r = {c, n, max};
    struct closer k = {c, n, &g, my_tid(), false};
    assert_int_equal(run_with_closer(&r, &k), 0);
    assert_true(k.all_returned);
    assert_int_equal(atomic_load(&running_max), max);
    /* The running ones ran to their end and were released with their
     * results, the queued ones dropped unrun and released with NULL; all
     * in this thread, before asyncio_run() returned. */
    int ran = 0, dropped = 0;
    for (int i = 0; i < n; i++) {
        CHECK_INT(c[i].status, -ECANCELED);
        if (atomic_load(&c[i].fn_calls)) {
            check_released_after_run(&c[i]);
            ran++;
        } else {
            check_released_unrun(&c[i]);
            dropped++;
        }
        asyncio_loop_unref(c[i].loop);
    }
    tu_check_failures();
    assert_int_equal(ran, max);
    assert_int_equal(dropped, 2);
    gate_destroy(&g);
}

/* Two calls, each on an executor of its own (one thread each), both
 * blocked on r->g as main returns; the first executor is shut down
 * without waiting, in the loop. */
struct close_two {
    struct call *c;
    struct gate *g;
    asyncio_executor_t *ex[2];
};

static int main_close_two(void *arg, void **result)
{
    (void)result;
    struct close_two *t = arg;
    for (int i = 0; i < 2; i++) {
        call_init(&t->c[i], i + 1, t->g, t->ex[i]);
        t->c[i].loop = asyncio_loop_ref(asyncio_get_running_loop());
    }
    for (int i = 0; i < 2; i++)
        CHECK_INT(asyncio_create_task(NULL, call_task, &t->c[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        AWAIT_COUNT(&t->c[i].fn_calls, 1);
    CHECK_INT(asyncio_executor_shutdown(t->ex[0], 0), 0);
    return 0;
}

static void test_release_runs_in_the_worker_when_the_loop_closed_first(void **state)
{
    (void)state;
    /*
     * A user executor outlives the loops it serves: a call whose task was
     * cancelled as its loop closed, and whose fn returns after that, is
     * released in the thread that ran fn (asyncio_work_release: "except
     * when that loop has closed before the function returned"). Executor
     * 0 is shut down without waiting in the loop; executor 1 is left
     * open, and shut down with WAIT by this thread after the loop closed.
     */
    struct gate g;
    gate_init(&g);
    int gone = atomic_load(&threads_gone);
    struct call c[2];
    struct close_two t = {c, &g, {NULL, NULL}};
    asyncio_executor_options_t o = {.max_workers = 1};
    assert_int_equal(asyncio_executor_new(&t.ex[0], &o), 0);
    assert_int_equal(asyncio_executor_new(&t.ex[1], &o), 0);
    assert_int_equal(tu_run_bounded(main_close_two, &t, NULL, WAIT_S), 0);
    /* The loop has closed, fn still blocks: nothing released yet. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(c[i].status, -ECANCELED);
        assert_int_equal(atomic_load(&c[i].fn_done), 0);
        assert_int_equal(atomic_load(&c[i].releases), 0);
        assert_int_equal(asyncio_loop_is_closed(c[i].loop), 1);
    }
    gate_open(&g);
    /* Executor 1: a blocking shutdown returns once its thread exited,
     * fn's release done by then. */
    assert_int_equal(asyncio_executor_shutdown(t.ex[1], ASYNCIO_SHUTDOWN_WAIT), 0);
    assert_int_equal(atomic_load(&c[1].releases), 1);
    /* Executor 0: its thread finishes on its own. */
    assert_true(thread_wait_count(&c[0].releases, 1));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(atomic_load(&c[i].fn_calls), 1);
        assert_int_equal(atomic_load(&c[i].releases), 1);
        assert_ptr_equal(c[i].rel_arg, &c[i]);
        assert_true(c[i].rel_result != 0 && c[i].rel_result == (uintptr_t)c[i].fn_result);
        assert_true(c[i].rel_fn_done);
        assert_false(c[i].rel_in_loop);
        assert_true(c[i].rel_in_fn_thread);
        assert_int_equal(c[i].rel_loop_closed, 1);
        asyncio_loop_unref(c[i].loop);
    }
    assert_true(thread_wait_count(&threads_gone, gone + 2));
    gate_destroy(&g);
}

/* The loop closes while a task waits in a blocking shutdown of a user
 * executor whose call (of another task) still blocks: both tasks are
 * cancelled, the shutdown goes on without its task, and once fn returns
 * (after the loop closed) release runs in fn's thread and the executor
 * goes with its last thread. */
struct close_in_shutdown {
    struct call c;
    struct shutdown_task_arg s;
};

static int main_close_in_shutdown(void *arg, void **result)
{
    (void)result;
    struct close_in_shutdown *x = arg;
    x->c.loop = asyncio_loop_ref(asyncio_get_running_loop());
    x->s.rc = 1;
    CHECK_INT(asyncio_create_task(NULL, call_task, &x->c, NULL), 0);
    AWAIT_COUNT(&x->c.fn_calls, 1);
    CHECK_INT(asyncio_create_task(NULL, shutdown_task, &x->s, NULL), 0);
    AWAIT_COUNT(&x->s.entered, 1);
    CHECK_INT(asyncio_sleep(0.001), 0);
    return 0;
}

static void test_the_loop_closes_while_a_task_waits_in_a_blocking_shutdown(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g);
    int gone = atomic_load(&threads_gone);
    struct close_in_shutdown x;
    memset(&x, 0, sizeof x);
    asyncio_executor_options_t o = {.max_workers = 1};
    assert_int_equal(asyncio_executor_new(&x.s.ex, &o), 0);
    call_init(&x.c, 1, &g, x.s.ex);
    assert_int_equal(tu_run_bounded(main_close_in_shutdown, &x, NULL, WAIT_S), 0);
    assert_int_equal(x.c.status, -ECANCELED);
    assert_int_equal(x.s.rc, -ECANCELED);
    assert_int_equal(atomic_load(&x.c.fn_done), 0);
    assert_int_equal(atomic_load(&x.c.releases), 0);
    gate_open(&g);
    assert_true(thread_wait_count(&x.c.releases, 1));
    assert_int_equal(atomic_load(&x.c.fn_calls), 1);
    assert_true(x.c.rel_result != 0 && x.c.rel_result == (uintptr_t)x.c.fn_result);
    assert_false(x.c.rel_in_loop);
    assert_true(x.c.rel_in_fn_thread);
    assert_int_equal(x.c.rel_loop_closed, 1);
    assert_true(thread_wait_count(&threads_gone, gone + 1));
    asyncio_loop_unref(x.c.loop);
    gate_destroy(&g);
}

/* The executor's owner shuts it down (with WAIT, so that it stays valid
 * while that call lasts) from its own thread, once the function of a call
 * a loop in another thread made has run, with nothing else between the
 * two threads: the call is delivered, and the call's submission touches
 * the executor only while it holds its lock, since the shutdown may free
 * it at any moment after (ThreadSanitizer reports an access after the
 * lock was let go as a race with the free). The loop's thread makes a
 * first call, so that a thread is idle in the executor when the second
 * comes (the path that wakes an idle thread). */
struct owner_race {
    asyncio_executor_t *ex;
    struct call c[2];
    atomic_int go_on;   /* the owner has shut ex down: the loop may end */
    int run_rc;
};

static int main_owner_race(void *arg, void **result)
{
    (void)result;
    struct owner_race *o = arg;
    for (int i = 0; i < 2; i++) {
        struct call *c = &o->c[i];
        c->loop_thread = pthread_self();
        c->status = asyncio_run_in_executor(o->ex, call_fn, c, call_release, &c->got);
        if (i == 0 && asyncio_sleep(0.005) != 0) /* its thread goes idle */
            return -EPROTO;
    }
    /* Stay until the owner is done (no other order between the two). */
    while (!atomic_load(&o->go_on))
        if (asyncio_sleep(0.001) != 0)
            return -EPROTO;
    return 0;
}

static void *owner_race_loop(void *arg)
{
    struct owner_race *o = arg;
    o->run_rc = asyncio_run(main_owner_race, o, NULL);
    return NULL;
}

static void test_an_owner_shuts_down_an_executor_a_loop_in_another_thread_just_used(void **state)
{
    (void)state;
    tu_reset();
    for (int round = 0; round < 20; round++) {
        struct owner_race o;
        memset(&o, 0, sizeof o);
        asyncio_executor_options_t opts = {.max_workers = 1};
        assert_int_equal(asyncio_executor_new(&o.ex, &opts), 0);
        for (int i = 0; i < 2; i++)
            call_init(&o.c[i], i + 1, NULL, o.ex); /* before the thread reads them */
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, owner_race_loop, &o), 0);
        /* Once the second call's function has returned, shut down. */
        bool ran = thread_wait_count(&o.c[1].fn_done, 1);
        int rc = asyncio_executor_shutdown(o.ex, ASYNCIO_SHUTDOWN_WAIT);
        atomic_store(&o.go_on, 1);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_true(ran);
        assert_int_equal(rc, 0);
        assert_int_equal(o.run_rc, 0);
        for (int i = 0; i < 2; i++)
            check_delivered(&o.c[i]);
        tu_check_failures();
    }
}

/* ---- many calls, loops in two threads, one executor ---------------------- */

#define WL_CALLS 48
#define WL_IN_FLIGHT 4

struct workload {
    asyncio_executor_t *ex; /* even calls go to it, odd ones to the default executor */
    struct gate *gate;      /* for the in-flight call on ex */
    int ncalls;
    struct call calls[WL_CALLS];
    asyncio_loop_t *loop;   /* a reference, dropped by the test */
    pthread_t thread;
    int run_rc;
    int bad;
    char first_bad[200];
};

__attribute__((format(printf, 2, 3))) static void wl_bad(struct workload *w, const char *fmt, ...)
{
    if (w->bad++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_bad, sizeof w->first_bad, fmt, ap);
        va_end(ap);
    }
}

/* Calls cancelled after 0 to 4 yields of this task (or never), some in
 * short timeout scopes, so that cancellations and timeouts land at every
 * stage: before the task starts, queued, running, returned but not yet
 * taken by the loop, taken but the task not yet resumed. Then the last
 * WL_IN_FLIGHT calls are left in flight as the loop ends (one of them
 * blocked in ex until the test opens the gate, after the loop closed). */
static int workload_main(void *arg, void **result)
{
    (void)result;
    struct workload *w = arg;
    w->loop = asyncio_loop_ref(asyncio_get_running_loop());
    int n = w->ncalls - WL_IN_FLIGHT;
    for (int i = 0; i < w->ncalls; i++) {
        struct call *c = &w->calls[i];
        call_init(c, i + 1, NULL, i % 2 ? NULL : w->ex);
        c->loop = w->loop;
        c->spin = i % 4 * 10;
        if (i >= n) {
            c->in_flight = true;
            continue;
        }
        c->cancel_at = i / 2 % 6 < 5 ? i / 2 % 6 : -1;
        c->timeout = i % 7 == 3 ? 0.0002 * (1 + i % 3) : 0;
        int rc = asyncio_create_task(&c->task, call_task, c, NULL);
        if (rc != 0) {
            wl_bad(w, "asyncio_create_task: %s", tu_err(rc));
            c->task = NULL;
        }
    }
    for (int y = 0; y < 5; y++) {
        for (int i = 0; i < n; i++)
            if (w->calls[i].cancel_at == y && w->calls[i].task)
                w->calls[i].cancel_rc = asyncio_task_cancel(w->calls[i].task);
        int rc = asyncio_sleep(y % 2 ? 0 : 0.0003);
        if (rc != 0)
            wl_bad(w, "asyncio_sleep: %s", tu_err(rc));
    }
    for (int i = 0; i < n; i++) {
        struct call *c = &w->calls[i];
        if (!c->task)
            continue;
        c->awaited = asyncio_await(c->task, NULL);
        asyncio_task_release(c->task);
        c->task = NULL;
    }
    /* In flight: call n on ex waits for the gate; the others spin. */
    for (int i = n; i < w->ncalls; i++) {
        struct call *c = &w->calls[i];
        if (i == n && w->ex)
            c->gate = w->gate;
        int rc = asyncio_create_task(NULL, call_task, c, NULL);
        if (rc != 0)
            wl_bad(w, "asyncio_create_task: %s", tu_err(rc));
    }
    for (int i = n; i < w->ncalls; i++) {
        if (!task_wait_count(&w->calls[i].entered, 1))
            wl_bad(w, "in-flight call %d never started", i + 1);
    }
    return 0;
}

static void *workload_thread(void *arg)
{
    struct workload *w = arg;
    w->thread = pthread_self();
    w->run_rc = asyncio_run(workload_main, w, NULL);
    return NULL;
}

/* In the test's thread, once the loops have closed and ex is shut down
 * (nothing is left in flight): every call made was delivered or released
 * exactly once, as the header says. */
static void check_workload(struct workload *w, const char *who, int *ok)
{
#define WL_CHECK(cond)                                                                  \
    do {                                                                                \
        if (!(cond))                                                                    \
            tu_fail_at(__FILE__, __LINE__, "%s, call %d (cancel at %d: %d, timeout %g, " \
                       "in flight %d): %s; returned %s, fn called %d, released %d",     \
                       who, c->id, c->cancel_at, c->cancel_rc, c->timeout,             \
                       c->in_flight, #cond, c->status == 1 ? "nothing (never made)"     \
                       : tu_err(c->status), fc, rel);                                   \
    } while (0)
    if (w->run_rc != 0 || w->bad)
        tu_fail_at(__FILE__, __LINE__, "%s: asyncio_run %s, %d problem(s): %s", who,
                   tu_err(w->run_rc), w->bad, w->first_bad);
    for (int i = 0; i < w->ncalls; i++) {
        struct call *c = &w->calls[i];
        int fc = atomic_load(&c->fn_calls), rel = atomic_load(&c->releases);
        WL_CHECK(fc <= 1);
        WL_CHECK(atomic_load(&c->gate_missed) == 0);
        if (c->timeout > 0 && c->status != 1)
            WL_CHECK((c->status == -ETIMEDOUT) == (c->scope_rc == -ETIMEDOUT));
        if (!c->in_flight) {
            if (c->cancel_rc == 1)
                WL_CHECK(c->awaited == -ECANCELED);
            else
                WL_CHECK(c->awaited == 0);
        }
        if (c->status == 1) {
            /* The task never ran: no call was made. */
            WL_CHECK(c->cancel_rc == 1 || c->in_flight);
            WL_CHECK(fc == 0 && rel == 0);
        } else if (c->status == 0) {
            WL_CHECK(c->cancel_rc != 1);
            WL_CHECK(fc == 1 && rel == 0);
            WL_CHECK(c->got != NULL && c->got == c->fn_result);
            free(c->got);
            c->got = NULL;
            ++*ok;
        } else if (c->status == -ECANCELED || c->status == -ETIMEDOUT) {
            if (c->status == -ECANCELED)
                WL_CHECK(c->cancel_rc == 1 || c->in_flight);
            else
                WL_CHECK(c->timeout > 0);
            WL_CHECK(rel == 1);
            WL_CHECK(c->rel_arg == c);
            if (fc) {
                WL_CHECK(c->rel_fn_done);
                WL_CHECK(c->rel_result != 0 && c->rel_result == (uintptr_t)c->fn_result);
            } else {
                WL_CHECK(c->rel_result == 0);
            }
            /* In the loop's thread, or in fn's once the loop had closed. */
            WL_CHECK(c->rel_in_loop ||
                     (fc && c->rel_in_fn_thread && c->rel_loop_closed == 1));
        } else {
            WL_CHECK(!"an unexpected status");
        }
    }
#undef WL_CHECK
}

static void test_many_calls_cancelled_or_timed_out_at_every_stage(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g);
    static struct workload w;
    memset(&w, 0, sizeof w);
    w.ncalls = WL_CALLS;
    w.gate = &g;
    asyncio_executor_options_t o = {.max_workers = 3};
    assert_int_equal(asyncio_executor_new(&w.ex, &o), 0);
    tu_reset();
    w.thread = pthread_self();
    w.run_rc = asyncio_run(workload_main, &w, NULL);
    tu_check_failures();
    gate_open(&g);
    assert_int_equal(asyncio_executor_shutdown(w.ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    int ok = 0;
    check_workload(&w, "loop", &ok);
    tu_check_failures();
    assert_true(ok > 0);
    asyncio_loop_unref(w.loop);
    gate_destroy(&g);
}

static void test_an_executor_shared_by_loops_in_two_threads_at_once(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g);
    static struct workload w[2];
    asyncio_executor_t *ex = NULL;
    asyncio_executor_options_t o = {.max_workers = 3};
    assert_int_equal(asyncio_executor_new(&ex, &o), 0);
    tu_reset();
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].ex = ex;
        w[i].gate = &g;
        w[i].ncalls = WL_CALLS;
        assert_int_equal(pthread_create(&th[i], NULL, workload_thread, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* Both loops have closed; their in-flight calls on ex still block. */
    gate_open(&g);
    assert_int_equal(asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT), 0);
    for (int i = 0; i < 2; i++) {
        int ok = 0;
        check_workload(&w[i], i ? "loop 1" : "loop 0", &ok);
        tu_check_failures();
        assert_true(ok > 0);
        asyncio_loop_unref(w[i].loop);
    }
    gate_destroy(&g);
}

int main(void)
{
    if (pthread_key_create(&gone_key, on_thread_exit) != 0)
        return 1;
#define T(name) cmocka_unit_test_teardown(name, all_threads_gone)
    const struct CMUnitTest tests[] = {
        T(test_a_call_delivers_its_result_and_release_is_not_called),
        T(test_other_tasks_run_while_a_function_blocks_in_a_thread),
        T(test_cancelled_while_running_returns_at_once_and_releases_the_result_later),
        T(test_cancelled_while_queued_returns_at_once_and_releases_once),
        T(test_a_timeout_scope_ends_the_wait_and_releases_the_result_later),
        T(test_wait_for_times_out_a_task_waiting_in_to_thread),
        T(test_a_cancellation_or_expired_scope_before_the_call_releases_arg_unrun),
        T(test_fn_null_is_einval_and_releases_arg),
        T(test_a_call_outside_a_task_is_eperm_and_releases_arg),
        T(test_executor_new_refuses_bad_options),
        T(test_spinning_threads_and_a_busy_polling_loop),
        T(test_adaptive_spinning_never_loses_a_wake_up),
        T(test_executor_options_are_used),
        T(test_max_workers_bounds_the_functions_running_at_once),
        T(test_threads_start_on_demand),
        T(test_idle_threads_exit_after_idle_timeout),
        T(test_calls_that_come_as_idle_threads_retire_are_served),
        T(test_a_function_may_run_a_loop_of_its_own),
        T(test_executor_threads_block_every_signal),
        T(test_shutdown_without_wait_returns_at_once_and_queued_calls_still_run),
        T(test_shutdown_cancel_futures_drops_queued_calls_and_the_running_one_finishes),
        T(test_shutdown_wait_in_a_task_lets_the_loop_run_until_the_threads_exit),
        T(test_shutdown_wait_in_a_plain_thread_blocks_until_the_threads_exit),
        T(test_shutdown_wait_in_a_loop_callback_is_eperm_and_changes_nothing),
        T(test_shutdown_wait_timed_out_or_cancelled_goes_on_without_the_task),
        T(test_a_call_on_an_executor_being_shut_down_is_eshutdown_and_releases_arg),
        T(test_shutdown_from_one_of_its_own_functions_waits_not_for_itself),
        T(test_the_loop_closes_after_a_to_thread_call_still_running),
        T(test_the_loop_closes_after_to_thread_calls_still_queued),
        T(test_release_runs_in_the_worker_when_the_loop_closed_first),
        T(test_the_loop_closes_while_a_task_waits_in_a_blocking_shutdown),
        T(test_an_owner_shuts_down_an_executor_a_loop_in_another_thread_just_used),
        T(test_many_calls_cancelled_or_timed_out_at_every_stage),
        T(test_an_executor_shared_by_loops_in_two_threads_at_once),
    };
#undef T
    return tu_run_group_tests_name("executor", tests, NULL, NULL);
}
