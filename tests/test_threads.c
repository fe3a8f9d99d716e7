/*
 * What crosses threads, on purpose and all at once (issue 16): CI runs the
 * suite under ThreadSanitizer, and these tests give it the library's
 * cross-thread paths to watch:
 *   - the resolver's thread pool: many asyncio_getaddrinfo() calls at
 *     once, more than the pool has threads, cancelled or timed out at every
 *     stage (before the task starts, queued, in a thread, finished but not
 *     yet taken back, taken back but not yet resumed), and loops that end
 *     with lookups still in the pool;
 *   - loops in several threads at the same time, each with its own pool,
 *     task contexts (made, pooled, reused, trimmed) and timers;
 *   - signal handlers of loops in two threads, each sent its own signal.
 * Every outcome is checked exactly too, so the tests are worth running in
 * every build.
 *
 * testutil's CHECK() and order log are one set of globals: the tests that
 * run loops in several threads give each thread its own record (struct
 * tally), which the test's own thread checks after joining them.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <asyncio/stream.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <sys/socket.h>

/* ---- a per-thread record of outcomes ------------------------------------ */

struct tally {
    int ok, enoent, cancelled, timedout, never_ran;
    int tasks_done;
    int bad; /* anything unexpected: the first is described in first_bad */
    char first_bad[200];
};

__attribute__((format(printf, 2, 3))) static void tally_bad(struct tally *t, const char *fmt, ...)
{
    if (t->bad++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->first_bad, sizeof t->first_bad, fmt, ap);
        va_end(ap);
    }
}

static void assert_tally_clean(const struct tally *t, const char *who)
{
    if (t->bad)
        fail_msg("%s: %d unexpected outcome(s); first: %s", who, t->bad, t->first_bad);
}

/* ---- lookups ------------------------------------------------------------- */

/* What a lookup asks, and what it must get when nothing stops it. */
enum kind {
    LOCALHOST_80_INET,   /* 127.0.0.1 port 80 */
    LOCALHOST_HTTP,      /* a loopback address, port 80 (/etc/services) */
    LOCALHOST_NOSERVICE, /* -ENOENT: no such service */
    NKINDS
};

struct lookup {
    enum kind kind;
    double timeout;  /* > 0: inside a timeout scope of that many seconds */
    int cancel_at;   /* cancelled after that many yields of its creator; -1: never */
    int cancel_rc;   /* asyncio_task_cancel()'s answer */
    int status;      /* what the task saw (1: it never ran) */
    asyncio_task_t *task;
};

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

static int port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

/* -EBADMSG if the answer is not what the kind asked for. */
static int check_answer(enum kind kind, const struct addrinfo *res)
{
    if (!res)
        return -EBADMSG;
    for (const struct addrinfo *a = res; a; a = a->ai_next) {
        if (!is_loopback(a->ai_addr) || port_of(a->ai_addr) != 80)
            return -EBADMSG;
        if (kind == LOCALHOST_80_INET &&
            (a->ai_family != AF_INET || a->ai_socktype != SOCK_STREAM))
            return -EBADMSG;
    }
    return 0;
}

static int lookup_task(void *arg, void **result)
{
    (void)result;
    struct lookup *l = arg;
    struct addrinfo hints = {0}, *res = NULL;
    const char *service = "80";
    const struct addrinfo *h = NULL;
    switch (l->kind) {
    case LOCALHOST_80_INET:
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        h = &hints;
        break;
    case LOCALHOST_HTTP:
        service = "http";
        break;
    default:
        service = "no-such-service";
        break;
    }
    asyncio_timeout_t scope;
    int rc = 0;
    if (l->timeout > 0)
        rc = asyncio_timeout_enter(&scope, l->timeout);
    if (rc == 0) {
        rc = asyncio_getaddrinfo("localhost", service, h, &res);
        if (rc == 0)
            rc = check_answer(l->kind, res);
        if (res)
            freeaddrinfo(res);
        if (l->timeout > 0) {
            int ex = asyncio_timeout_exit(&scope);
            if (ex == -ETIMEDOUT && rc != -ETIMEDOUT)
                rc = -EPROTO; /* expired, yet the wait did not say so */
        }
    }
    l->status = rc;
    return rc;
}

/* What l's task must have ended with, given how it was stopped. */
static void tally_lookup(struct tally *t, const struct lookup *l, int awaited)
{
    int expected = l->kind == LOCALHOST_NOSERVICE ? -ENOENT : 0;
    bool stopped = l->cancel_rc == 1;
    bool ok;
    if (stopped)
        ok = awaited == -ECANCELED && (l->status == 1 || l->status == -ECANCELED);
    else if (l->timeout > 0)
        ok = (awaited == expected || awaited == -ETIMEDOUT) && l->status == awaited;
    else
        ok = awaited == expected && l->status == expected;
    if (!ok) {
        tally_bad(t, "lookup kind %d, timeout %g, cancel at %d (cancel: %d): awaited %s, saw %s",
                  (int)l->kind, l->timeout, l->cancel_at, l->cancel_rc, tu_err(awaited),
                  l->status == 1 ? "nothing (never ran)" : tu_err(l->status));
        return;
    }
    if (l->status == 1)
        t->never_ran++;
    if (awaited == 0)
        t->ok++;
    else if (awaited == -ENOENT)
        t->enoent++;
    else if (awaited == -ECANCELED)
        t->cancelled++;
    else
        t->timedout++;
}

/* One burst: n lookups at once (in ls), where lookup i is of kind
 * i % NKINDS, is cancelled after i / NKINDS % 6 yields of this task (0 to
 * 4; 5: never), so that every kind meets every stage, and every seventh is
 * bounded by a timeout of a fraction of a millisecond. Yielding lets the
 * pool threads work meanwhile, so the cancellations land at every stage of
 * a lookup. With end_in_flight, nothing is awaited: the loop is to end with
 * the lookups in flight, and ls must outlive it (the tasks write to it as
 * they end). */
#define MAX_BURST 64

static void lookup_burst_in(struct tally *t, struct lookup *ls, int n, bool end_in_flight)
{
    if (n > MAX_BURST)
        n = MAX_BURST;
    for (int i = 0; i < n; i++) {
        struct lookup *l = &ls[i];
        /* Left in flight, a lookup that fails would be reported as never
         * retrieved: those end in flight only succeed (or are cancelled). */
        l->kind = (enum kind)(i % (end_in_flight ? LOCALHOST_NOSERVICE : NKINDS));
        l->cancel_at = i / NKINDS % 6 < 5 ? i / NKINDS % 6 : -1;
        l->timeout = i % 7 == 3 && !end_in_flight ? 0.0002 * (1 + i % 3) : 0;
        l->cancel_rc = 0;
        l->status = 1;
        int rc = asyncio_create_task(&l->task, lookup_task, l, NULL);
        if (rc != 0) {
            tally_bad(t, "asyncio_create_task: %s", tu_err(rc));
            n = i;
            break;
        }
    }
    for (int y = 0; y < 5; y++) {
        for (int i = 0; i < n; i++)
            if (ls[i].cancel_at == y)
                ls[i].cancel_rc = asyncio_task_cancel(ls[i].task);
        int rc = asyncio_sleep(0);
        if (rc != 0)
            tally_bad(t, "asyncio_sleep(0): %s", tu_err(rc));
    }
    if (end_in_flight) {
        /* The loop cancels what is left, waits for it, and stops the pool
         * with lookups still running in its threads. */
        for (int i = 0; i < n; i++)
            asyncio_task_release(ls[i].task);
        return;
    }
    for (int i = 0; i < n; i++) {
        tally_lookup(t, &ls[i], asyncio_await(ls[i].task, NULL));
        asyncio_task_release(ls[i].task);
    }
}

static void lookup_burst(struct tally *t, int n)
{
    struct lookup ls[MAX_BURST];
    lookup_burst_in(t, ls, n, false);
}

/* ---- many short tasks: contexts made, pooled, reused and trimmed -------- */

static int short_task(void *arg, void **result)
{
    int naps = (int)(intptr_t)arg;
    for (int i = 0; i < naps; i++) {
        int rc = asyncio_sleep(i % 2 ? 0 : 0.0005);
        if (rc != 0)
            return rc;
    }
    *result = arg;
    return 0;
}

/* n tasks alive at once, every third with a stack of its own size (such
 * a context is unmapped when its task ends; the others are pooled), then a
 * pause long enough for the loop to trim a pool grown past what it keeps. */
static void task_churn(struct tally *t, int n)
{
    asyncio_task_t **ts = calloc((size_t)n, sizeof *ts);
    void **results = calloc((size_t)n, sizeof *results);
    int *errors = calloc((size_t)n, sizeof *errors);
    if (!ts || !results || !errors) {
        tally_bad(t, "out of memory");
        goto out;
    }
    int made = 0;
    for (; made < n; made++) {
        asyncio_task_options_t opts = {0};
        opts.stack_size = made % 3 == 2 ? 64 * 1024 : 0;
        int rc = asyncio_create_task_ex(&ts[made], short_task, (void *)(intptr_t)(made % 4), &opts);
        if (rc != 0) {
            tally_bad(t, "asyncio_create_task_ex: %s", tu_err(rc));
            break;
        }
    }
    /* Each loop counts its own tasks only: this one and what it made. */
    if (asyncio_task_count() != (size_t)made + 1)
        tally_bad(t, "asyncio_task_count() is %zu with %d made", asyncio_task_count(), made);
    int rc = asyncio_gather((size_t)made, ts, results, errors, ASYNCIO_RETURN_EXCEPTIONS);
    if (rc != 0)
        tally_bad(t, "asyncio_gather: %s", tu_err(rc));
    for (int i = 0; i < made; i++) {
        if (errors[i] != 0 || results[i] != (void *)(intptr_t)(i % 4))
            tally_bad(t, "task %d of %d: %s, result %p", i, made, tu_err(errors[i]), results[i]);
        else
            t->tasks_done++;
        asyncio_task_release(ts[i]);
    }
    rc = asyncio_sleep(0.02); /* the loop trims its pool of contexts here */
    if (rc != 0)
        tally_bad(t, "asyncio_sleep: %s", tu_err(rc));
out:
    free(ts);
    free(results);
    free(errors);
}

/* ---- a loop's whole workload --------------------------------------------- */

struct work {
    int bursts;       /* lookup bursts awaited */
    int burst_size;
    int churn;        /* tasks at once in task_churn(); 0: none */
    bool end_in_flight; /* a last burst left in the pool when the loop ends */
    struct lookup in_flight[MAX_BURST]; /* its lookups, written as they end */
    struct tally tally;
    int run_rc;
};

static int main_work(void *arg, void **result)
{
    (void)result;
    struct work *w = arg;
    for (int b = 0; b < w->bursts; b++) {
        lookup_burst(&w->tally, w->burst_size);
        if (w->churn && b == 0)
            task_churn(&w->tally, w->churn);
    }
    if (w->end_in_flight)
        lookup_burst_in(&w->tally, w->in_flight, w->burst_size, true);
    return 0;
}

/* ---- one loop ------------------------------------------------------------ */

static void test_many_lookups_with_cancellations_at_every_stage(void **state)
{
    (void)state;
    struct work w = {.bursts = 6, .burst_size = MAX_BURST};
    assert_int_equal(tu_run(main_work, &w, NULL), 0);
    assert_tally_clean(&w.tally, "loop");
    /* Each outcome happened, and cancellations found lookups not yet
     * started as well as lookups in the pool. */
    assert_true(w.tally.ok > 0);
    assert_true(w.tally.enoent > 0);
    assert_true(w.tally.cancelled > w.tally.never_ran);
    assert_true(w.tally.never_ran > 0);
}

static void test_loops_end_with_lookups_in_the_pool(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        struct work w = {.bursts = 0, .burst_size = 8 + 12 * i, .end_in_flight = true};
        assert_int_equal(tu_run(main_work, &w, NULL), 0);
        assert_tally_clean(&w.tally, "loop");
    }
    /* A new loop has a new pool, which serves (lookups 15 to 17 of a burst
     * are never cancelled). */
    struct work w = {.bursts = 1, .burst_size = 18};
    assert_int_equal(tu_run(main_work, &w, NULL), 0);
    assert_tally_clean(&w.tally, "loop");
    assert_true(w.tally.ok > 0);
}

/* ---- loops in several threads at once ------------------------------------ */

#define NLOOPS 4

struct loop_thread {
    pthread_barrier_t *start;
    int runs; /* asyncio_run() this many times in a row, in the same thread */
    struct work w;
};

static void *run_loops(void *arg)
{
    struct loop_thread *lt = arg;
    pthread_barrier_wait(lt->start);
    for (int i = 0; i < lt->runs; i++) {
        lt->w.run_rc = asyncio_run(main_work, &lt->w, NULL);
        if (lt->w.run_rc != 0)
            break;
    }
    return NULL;
}

static void test_loops_in_four_threads_at_once(void **state)
{
    (void)state;
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, NLOOPS), 0);
    struct loop_thread lts[NLOOPS];
    pthread_t threads[NLOOPS];
    for (int i = 0; i < NLOOPS; i++) {
        lts[i] = (struct loop_thread){.start = &start, .runs = 2};
        lts[i].w = (struct work){
            .bursts = 2,
            .burst_size = 24 + 8 * i,
            /* One loop grows its pool of contexts past what it keeps. */
            .churn = i == 1 ? 1100 : 150,
            .end_in_flight = i % 2 == 0,
        };
    }
    /* Loop 0 runs in this thread, the others in threads of their own. */
    for (int i = 1; i < NLOOPS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, run_loops, &lts[i]), 0);
    run_loops(&lts[0]);
    for (int i = 1; i < NLOOPS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < NLOOPS; i++) {
        char who[32];
        snprintf(who, sizeof who, "loop %d", i);
        assert_int_equal(lts[i].w.run_rc, 0);
        assert_tally_clean(&lts[i].w.tally, who);
        assert_true(lts[i].w.tally.ok > 0);
        assert_int_equal(lts[i].w.tally.tasks_done, lts[i].runs * lts[i].w.churn);
    }
}

/* ---- signals with a loop in each of two threads --------------------------- */

/* As asyncio: only the main thread's loop takes signal handlers; it owns
 * the signals and stops the other loops. */

struct other_loop {
    sem_t ready;          /* posted once loop is set (or the thread failed) */
    asyncio_loop_t *loop; /* the thread's loop, referenced for the main thread */
    int add_rc;           /* asyncio_add_signal_handler() there */
    int run_rc, close_rc;
};

static void never_called(int signum, void *arg)
{
    (void)signum;
    (void)arg;
    abort();
}

static void *run_other_loop(void *arg)
{
    struct other_loop *o = arg;
    /* The process-directed signal below must reach the main thread only. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    asyncio_loop_t *l;
    o->run_rc = asyncio_new_event_loop(&l, NULL);
    if (o->run_rc == 0) {
        o->add_rc = asyncio_add_signal_handler(SIGUSR1, never_called, NULL);
        o->loop = asyncio_loop_ref(l);
    }
    sem_post(&o->ready);
    if (o->run_rc == 0) {
        o->run_rc = asyncio_loop_run_forever(l);
        o->close_rc = asyncio_loop_close(l);
        asyncio_loop_unref(l);
    }
    return NULL;
}

struct sig_main {
    struct other_loop *other;
    asyncio_future_t *got;
    int count;
};

static void on_usr1_stop_other(int signum, void *arg)
{
    struct sig_main *m = arg;
    (void)signum;
    m->count++;
    asyncio_loop_stop(m->other->loop);
    if (!asyncio_future_done(m->got))
        asyncio_future_set_result(m->got, NULL);
}

static int main_signals(void *arg, void **result)
{
    (void)result;
    struct sig_main *m = arg;
    int rc = asyncio_future_new(&m->got);
    if (rc != 0)
        return rc;
    rc = asyncio_add_signal_handler(SIGUSR1, on_usr1_stop_other, m);
    if (rc == 0 && kill(getpid(), SIGUSR1) != 0)
        rc = -errno;
    if (rc == 0)
        rc = asyncio_wait_for(m->got, 5, NULL);
    int rm = asyncio_remove_signal_handler(SIGUSR1);
    if (rc == 0 && rm != 1)
        rc = rm < 0 ? rm : -EPROTO;
    asyncio_future_release(m->got);
    return rc;
}

static void test_signals_live_on_the_main_threads_loop(void **state)
{
    (void)state;
    struct other_loop o = {0};
    assert_int_equal(sem_init(&o.ready, 0, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_other_loop, &o), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (sem_timedwait(&o.ready, &until) != 0)
        assert_int_equal(errno, EINTR);
    struct sig_main m = {.other = &o};
    int rc = o.loop ? tu_run(main_signals, &m, NULL) : -ENOENT;
    if (o.loop)
        asyncio_loop_stop(o.loop); /* whatever happened, so that the join ends */
    assert_int_equal(pthread_join(th, NULL), 0);
    sem_destroy(&o.ready);
    assert_int_equal(o.add_rc, -EXDEV); /* not the main thread */
    assert_int_equal(rc, 0);
    assert_int_equal(m.count, 1);
    assert_int_equal(o.run_rc, 0);   /* stopped by the main loop's handler */
    assert_int_equal(o.close_rc, 0);
    assert_int_equal(asyncio_loop_is_closed(o.loop), 1);
    asyncio_loop_unref(o.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_lookups_with_cancellations_at_every_stage),
        cmocka_unit_test(test_loops_end_with_lookups_in_the_pool),
        cmocka_unit_test(test_loops_in_four_threads_at_once),
        cmocka_unit_test(test_signals_live_on_the_main_threads_loop),
    };
    return tu_run_group_tests_name("threads", tests, NULL, NULL);
}
