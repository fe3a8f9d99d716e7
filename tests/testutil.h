/*
 * Shared helpers for the libasyncio cmocka unit tests.
 *
 * The tests are written like CPython's Lib/test/test_asyncio: each test runs
 * its own asyncio_run() (a fresh loop), records what happens into an order
 * log with LOG(), and asserts the exact log afterwards.
 *
 * cmocka's assert_*() must not be used inside tasks or loop callbacks: a
 * failing assert longjmps out of the coroutine's stack and leaves the loop
 * half-run. Inside the loop use CHECK*(), which records the failure; tu_run()
 * turns recorded failures into a cmocka failure once asyncio_run() returned.
 */
#ifndef ASYNCIO_TESTUTIL_H
#define ASYNCIO_TESTUTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <asyncio.h>

/* TU_UNDER_TSAN: built with ThreadSanitizer (gcc or clang), where every
 * task context is a fiber the runtime counts as a thread (gcc 12's stops
 * at 8128) with memory mappings of its own. */
#if defined(__SANITIZE_THREAD__)
#define TU_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_UNDER_TSAN 1
#endif
#endif

/* TU_UNDER_ASAN: built with AddressSanitizer, whose shadow memory and
 * allocator add their own mappings, pages and page tables to what the
 * library's memory use shows in /proc. */
#if defined(__SANITIZE_ADDRESS__)
#define TU_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_UNDER_ASAN 1
#endif
#endif

/* Recursion of 1 KiB frames, depth deep: a task that calls it with a large
 * depth runs past the end of its stack (the overflow tests). */
static volatile int tu_recurse_sink;

static int __attribute__((noinline, unused)) tu_recurse(int depth)
{
    volatile char frame[1024];
    memset((char *)frame, depth, sizeof frame);
    tu_recurse_sink = frame[depth % 1024];
    return depth > 0 ? tu_recurse(depth - 1) + frame[7] : 0;
}

/* ---- order log -------------------------------------------------------- */

static char tu_log_buf[1 << 16];
static size_t tu_log_len;

static int tu_failures;
static char tu_first_failure[512];

static inline void tu_log_reset(void)
{
    tu_log_buf[0] = '\0';
    tu_log_len = 0;
}

static inline void tu_reset(void)
{
    tu_log_reset();
    tu_failures = 0;
    tu_first_failure[0] = '\0';
}

/* Append one space-separated event to the order log. */
__attribute__((format(printf, 1, 2))) static inline void tu_logf(const char *fmt, ...)
{
    size_t cap = sizeof tu_log_buf;
    if (tu_log_len + 2 >= cap)
        return;
    if (tu_log_len > 0)
        tu_log_buf[tu_log_len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tu_log_buf + tu_log_len, cap - tu_log_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        tu_log_len += (size_t)n < cap - tu_log_len ? (size_t)n : cap - tu_log_len - 1;
    tu_log_buf[tu_log_len] = '\0';
}

#define LOG(...) tu_logf(__VA_ARGS__)

/* The order log must be exactly `expected`. */
#define assert_log(expected) assert_string_equal(tu_log_buf, (expected))

/* ---- error names, for readable logs and messages ---------------------- */

/* rc's errno name (or its number, written in buf), for any thread. */
static inline const char *tu_err_r(long long rc, char buf[32])
{
    switch (rc) {
    case 0: return "0";
    case -ECANCELED: return "ECANCELED";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -EINVAL: return "EINVAL";
    case -EPERM: return "EPERM";
    case -EAGAIN: return "EAGAIN";
    case -EALREADY: return "EALREADY";
    case -EBUSY: return "EBUSY";
    case -EBADF: return "EBADF";
    case -EDEADLK: return "EDEADLK";
    case -ENOENT: return "ENOENT";
    case -ENOMEM: return "ENOMEM";
    case -EIO: return "EIO";
    case -EPIPE: return "EPIPE";
    case -EBADMSG: return "EBADMSG";
    case -ESHUTDOWN: return "ESHUTDOWN";
    case -EOVERFLOW: return "EOVERFLOW";
    default: break;
    }
    snprintf(buf, 32, "%lld", rc);
    return buf;
}

/* tu_err_r() with buffers of its own, for the loop's thread: four in turn,
 * so that one message may name a few. */
static inline const char *tu_err(long long rc)
{
    static char bufs[4][32];
    static int next;
    return tu_err_r(rc, bufs[next++ & 3]);
}

/* ---- checks usable inside tasks and callbacks ------------------------- */

__attribute__((format(printf, 3, 4))) static inline void
tu_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, msg);
    if (tu_failures++ == 0)
        snprintf(tu_first_failure, sizeof tu_first_failure, "%s:%d: %s", file, line, msg);
}

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            tu_fail_at(__FILE__, __LINE__, "%s", #cond);                       \
    } while (0)

#define CHECK_INT(actual, expected)                                            \
    do {                                                                       \
        long long tu_a_ = (long long)(actual);                                 \
        long long tu_e_ = (long long)(expected);                               \
        if (tu_a_ != tu_e_)                                                    \
            tu_fail_at(__FILE__, __LINE__, "%s is %s, expected %s (%s)",       \
                       #actual, tu_err(tu_a_), tu_err(tu_e_), #expected);      \
    } while (0)

#define CHECK_PTR(actual, expected)                                            \
    do {                                                                       \
        const void *tu_a_ = (const void *)(actual);                            \
        const void *tu_e_ = (const void *)(expected);                          \
        if (tu_a_ != tu_e_)                                                    \
            tu_fail_at(__FILE__, __LINE__, "%s is %p, expected %p (%s)",       \
                       #actual, tu_a_, tu_e_, #expected);                      \
    } while (0)

#define CHECK_STR(actual, expected)                                            \
    do {                                                                       \
        const char *tu_a_ = (actual);                                          \
        const char *tu_e_ = (expected);                                        \
        if (tu_a_ == NULL || tu_e_ == NULL || strcmp(tu_a_, tu_e_) != 0)       \
            tu_fail_at(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"",    \
                       #actual, tu_a_ ? tu_a_ : "(null)",                      \
                       tu_e_ ? tu_e_ : "(null)");                              \
    } while (0)

/* Turn failures recorded inside the loop into a cmocka failure. */
static inline void tu_check_failures(void)
{
    if (tu_failures)
        fail_msg("%d check(s) failed inside the loop; first: %s", tu_failures,
                 tu_first_failure);
}

/* Run fn as the main task of a fresh loop; fail the test on recorded
 * CHECK failures. Returns asyncio_run()'s value. */
static inline int tu_run(asyncio_fn fn, void *arg, void **result)
{
    tu_reset();
    int rc = asyncio_run(fn, arg, result);
    tu_check_failures();
    return rc;
}

static inline int tu_run_ex(asyncio_fn fn, void *arg, void **result,
                            const asyncio_run_options_t *opts)
{
    tu_reset();
    int rc = asyncio_run_ex(fn, arg, result, opts);
    tu_check_failures();
    return rc;
}

/* ---- small helpers ---------------------------------------------------- */

/* Create a task (CHECKing that creation succeeded) and return it. */
static inline asyncio_task_t *tu_spawn(asyncio_fn fn, void *arg, const char *name)
{
    asyncio_task_t *t = NULL;
    int rc = asyncio_create_task(&t, fn, arg, name);
    if (rc != 0)
        tu_fail_at(__FILE__, __LINE__, "asyncio_create_task: %s", tu_err(rc));
    return t;
}

static inline asyncio_future_t *tu_future(void)
{
    asyncio_future_t *f = NULL;
    int rc = asyncio_future_new(&f);
    if (rc != 0)
        tu_fail_at(__FILE__, __LINE__, "asyncio_future_new: %s", tu_err(rc));
    return f;
}

/* Yield n times with asyncio_sleep(0), CHECKing each returns 0. */
static inline void tu_yield(int n)
{
    for (int i = 0; i < n; i++) {
        int rc = asyncio_sleep(0);
        if (rc != 0)
            tu_fail_at(__FILE__, __LINE__, "asyncio_sleep(0): %s", tu_err(rc));
    }
}

/* A done callback / plain callback that sets the future given as arg. */
static inline void tu_cb_set_future(void *arg)
{
    int rc = asyncio_future_set_result((asyncio_future_t *)arg, NULL);
    if (rc != 0)
        tu_fail_at(__FILE__, __LINE__, "set_result from callback: %s", tu_err(rc));
}

/* ---- death tests ------------------------------------------------------ */

/* _exit() for a test's child process; in a coverage build it writes the
 * child's gcov counters first (_exit() skips them). */
#ifdef ASYNCIO_COVERAGE
void __gcov_dump(void);
#endif
static inline void tu_child_exit(int code)
{
#ifdef ASYNCIO_COVERAGE
    __gcov_dump();
#endif
    _exit(code);
}

/* Run fn in a child process, for what must end the program: collect its
 * stderr and how it ended (c->status, as waitpid() gives it). */
struct tu_child {
    int status;
    char err[4096];
};

static inline void tu_run_child(void (*fn)(void), struct tu_child *c)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A plain program's dispositions, not cmocka's crash catchers. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        fn();
        tu_child_exit(0);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], c->err + len, sizeof c->err - 1 - len)) > 0)
        len += (size_t)n;
    c->err[len] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, &c->status, 0), pid);
}

/* ---- bounds: no test hangs -------------------------------------------- */

/*
 * Two bounds keep a test that waits for something that never comes (a
 * peer on the network, another process) from hanging until CTest kills it
 * at its 60 s TIMEOUT with no word of what hung:
 *
 *   - tu_run_bounded() runs the main task inside a timeout scope (in-loop,
 *     TU_TEST_TIMEOUT): the wait that never ends returns -ETIMEDOUT, the
 *     CHECK around it fails and names it, the test fails and the program
 *     goes on with the next test;
 *   - the watchdog (a thread, TU_WATCHDOG_SECONDS per test) is the last
 *     resort for what the loop cannot end (a task that ignores
 *     cancellation, a blocking call, a deadlock, a child process that does
 *     not exit): it prints
 *         test GROUP/TEST: no progress after N s (hung?)
 *     on stderr, kills this process's children (they would hold CTest's
 *     output pipe open) and ends the program with status 1.
 *
 * Use the watchdog from main(), in place of cmocka_run_group_tests_name():
 *     return tu_run_group_tests_name("loop", tests, NULL, NULL);
 * which restarts the budget for each test, named in the message. The
 * environment variable TU_WATCHDOG_SECONDS sets another budget (0: off),
 * e.g. for a run under valgrind on a slow machine.
 *
 * The watchdog is a thread with every signal blocked, not alarm(): a
 * SIGALRM handler would be inherited by the children of the death tests
 * (which use alarm() themselves), and the thread never takes a signal
 * meant for the loop. Arming it is a lock-free store, so a forked child
 * (which has no watchdog) can do what it likes.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* Per test, below CTest's TIMEOUT of 60 s so the message is ours. */
#ifndef TU_WATCHDOG_SECONDS
#define TU_WATCHDOG_SECONDS 30
#endif
/* In the loop, below the watchdog so the failed CHECK names the wait. */
#ifndef TU_TEST_TIMEOUT
#define TU_TEST_TIMEOUT 10.0
#endif

static struct {
    atomic_int started;
    atomic_uint seconds;                 /* the budget; 0: off */
    _Atomic(uint64_t) deadline_ns;       /* CLOCK_MONOTONIC; UINT64_MAX: disarmed */
    _Atomic(const char *) group, test;   /* what runs (string literals) */
    pid_t pid;                           /* the process that started it */
    pthread_t thread;
    pthread_mutex_t mu;                  /* with cv: tu_watchdog_stop() wakes it */
    pthread_cond_t cv;
    int stop;
    int running;                         /* the thread is in its loop */
} tu_wd = {.deadline_ns = UINT64_MAX, .mu = PTHREAD_MUTEX_INITIALIZER};

static inline uint64_t tu_wd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* How many entries the directory at path holds, "." and ".." aside (the
 * directory's own fd, for /proc/self/fd, included), or -1. */
static inline int tu_dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Byte i of the pattern files and buffers of the stream tests hold. */
static inline unsigned char tu_pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 4096);
}

/* A temporary file (already unlinked) of n bytes of tu_pattern(), or -1
 * and a failure recorded. */
static inline int tu_temp_file(size_t n)
{
    char path[] = "/tmp/asyncio-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        tu_fail_at(__FILE__, __LINE__, "mkstemp: %s", strerror(errno));
        return -1;
    }
    unlink(path);
    static unsigned char chunk[65536];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
        for (size_t i = 0; i < k; i++)
            chunk[i] = tu_pattern(done + i);
        ssize_t w = write(fd, chunk, k);
        if (w <= 0) {
            tu_fail_at(__FILE__, __LINE__, "write: %s", strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    return fd;
}

/* From a task: wait (1 s at most, then a failed CHECK) until t waits. */
static inline void tu_until_waiting(asyncio_task_t *t)
{
    for (int i = 0; i < 1000 && !asyncio_task_waiting_on(t); i++)
        CHECK_INT(asyncio_sleep(0.001), 0);
    CHECK(asyncio_task_waiting_on(t) != NULL);
}

/* Is SIGPIPE blocked in this thread, or pending? */
static inline bool tu_sigpipe_blocked(void)
{
    sigset_t mask;
    return pthread_sigmask(SIG_SETMASK, NULL, &mask) == 0 && sigismember(&mask, SIGPIPE);
}

static inline bool tu_sigpipe_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

/* SIGKILL the direct children of this process (best effort, Linux /proc):
 * a hung child of a death test would otherwise outlive us. */
static inline void tu_wd_kill_children(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == (long)tu_wd.pid)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
        char *p = strrchr(buf, ')');
        char state;
        long ppid;
        if (p && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long)tu_wd.pid)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

static inline void *tu_wd_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&tu_wd.mu);
    tu_wd.running = 1;
    pthread_cond_broadcast(&tu_wd.cv);
    while (!tu_wd.stop) {
        /* Look ten times a second (arming is a lock-free store). */
        struct timespec tick;
        clock_gettime(CLOCK_MONOTONIC, &tick);
        tick.tv_nsec += 100 * 1000 * 1000;
        if (tick.tv_nsec >= 1000000000) {
            tick.tv_sec++;
            tick.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&tu_wd.cv, &tu_wd.mu, &tick);
        if (tu_wd.stop)
            break;
        uint64_t deadline = atomic_load(&tu_wd.deadline_ns);
        if (deadline == UINT64_MAX || tu_wd_now_ns() < deadline)
            continue;
        const char *group = atomic_load(&tu_wd.group), *test = atomic_load(&tu_wd.test);
        char msg[320];
        int len = snprintf(msg, sizeof msg, "test %s%s%s: no progress after %u s (hung?)\n",
                           group ? group : "", group && test ? "/" : "",
                           test ? test : (group ? "" : "program"),
                           atomic_load(&tu_wd.seconds));
        if (len > 0) {
            ssize_t w = write(STDERR_FILENO, msg,
                              (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1);
            (void)w;
        }
        tu_wd_kill_children();
        _exit(1);
    }
    pthread_mutex_unlock(&tu_wd.mu);
    return NULL;
}

/* (Re)start the budget for the test named test (NULL: the program). */
static inline void tu_watchdog_arm(const char *test)
{
    atomic_store(&tu_wd.test, test);
    unsigned s = atomic_load(&tu_wd.seconds);
    atomic_store(&tu_wd.deadline_ns,
                 s ? tu_wd_now_ns() + (uint64_t)s * 1000000000u : UINT64_MAX);
}

static inline void tu_watchdog_disarm(void)
{
    atomic_store(&tu_wd.deadline_ns, UINT64_MAX);
}

/*
 * Start the watchdog (once) with a budget of seconds per test (0:
 * TU_WATCHDOG_SECONDS; the environment's TU_WATCHDOG_SECONDS wins) and arm
 * it for the whole program until a test arms it for itself. Call it from
 * main(); tu_run_group_tests_name() does.
 */
static inline void tu_watchdog(unsigned seconds)
{
    const char *env = getenv("TU_WATCHDOG_SECONDS");
    if (env && *env)
        seconds = (unsigned)strtoul(env, NULL, 10);
    else if (seconds == 0)
        seconds = TU_WATCHDOG_SECONDS;
    atomic_store(&tu_wd.seconds, seconds);
    if (seconds && !atomic_exchange(&tu_wd.started, 1)) {
        tu_wd.pid = getpid();
        tu_wd.stop = 0;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&tu_wd.cv, &ca);
        pthread_condattr_destroy(&ca);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread takes none */
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 128 * 1024);
        tu_wd.running = 0;
        if (pthread_create(&tu_wd.thread, &attr, tu_wd_thread, NULL) != 0) {
            fprintf(stderr, "testutil: cannot start the watchdog thread\n");
            pthread_cond_destroy(&tu_wd.cv);
            atomic_store(&tu_wd.started, 0);
        } else {
            /* Wait until the thread is in its loop: its start-up allocates
             * (the sanitizers' thread set-up, pthread_getattr_np), and a
             * test that forks at once (tu_run_child) could copy a malloc
             * lock held there into a child that then hangs on it (seen
             * with gcc 12's ASan, whose fork does not take its allocator's
             * locks). Waiting in the loop, the thread holds none. */
            pthread_mutex_lock(&tu_wd.mu);
            while (!tu_wd.running)
                pthread_cond_wait(&tu_wd.cv, &tu_wd.mu);
            pthread_mutex_unlock(&tu_wd.mu);
        }
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    tu_watchdog_arm(NULL);
}

/* Stop the watchdog thread and wait for it (nothing left for valgrind to
 * call possibly lost). tu_run_group_tests_name() does, at the end. */
static inline void tu_watchdog_stop(void)
{
    tu_watchdog_disarm();
    if (!atomic_exchange(&tu_wd.started, 0))
        return;
    pthread_mutex_lock(&tu_wd.mu);
    tu_wd.stop = 1;
    pthread_cond_signal(&tu_wd.cv);
    pthread_mutex_unlock(&tu_wd.mu);
    pthread_join(tu_wd.thread, NULL);
    pthread_cond_destroy(&tu_wd.cv);
}

/* The per-test setup tu_run_group_tests_name() puts in front of each test:
 * arm the watchdog with the test's name, then the test's own setup. */
struct tu_wd_test {
    const char *name;
    void *initial_state;
    CMFixtureFunction setup;
};

static inline int tu_wd_setup(void **state)
{
    const struct tu_wd_test *t = *state;
    tu_watchdog_arm(t->name);
    *state = t->initial_state;
    return t->setup ? t->setup(state) : 0;
}

/* raise(sig), but with ASYNCIO_BACKEND=kqueue on Linux kill(getpid(),
 * sig): libkqueue's EVFILT_SIGNAL reads a signalfd in a thread of its own,
 * which sees the signals sent to the process and not those sent to
 * another thread (raise() sends to the calling one; libkqueue's BUGS.md).
 * A kernel kqueue sees both. Every thread of the test programs but the
 * one running the loop blocks every signal, so the process's signal goes
 * where raise()'s would. */
static inline int tu_raise(int sig)
{
#ifdef __linux__
    const char *b = getenv("ASYNCIO_BACKEND");
    if (b && strcmp(b, "kqueue") == 0)
        return kill(getpid(), sig);
#endif
    return raise(sig);
}

/* With ASYNCIO_BACKEND=kqueue on Linux, libkqueue keeps state of its own
 * for the process: two fds (a monitoring epoll instance and an eventfd),
 * made at the first kqueue() and kept, and a monitoring thread that runs
 * while any kqueue is open. So that no test's count of open fds or of
 * threads sees them come and go, a thread of the test program's own
 * holds a loop (a kqueue) open from before the first test to the exit. */
struct tu_holder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
};

static inline void *tu_kqueue_holder(void *arg)
{
    struct tu_holder *h = arg;
    sigset_t all;
    sigfillset(&all); /* every signal is for the threads the tests run */
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    asyncio_loop_t *l;
    int rc = asyncio_new_event_loop(&l, NULL);
    pthread_mutex_lock(&h->mu);
    h->ready = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu); /* h is gone once the waiter wakes */
    if (rc == 0)
        for (;;)
            pause(); /* until the process exits */
    return NULL;
}

static inline void tu_backend_warm_up(void)
{
    static int done;
    const char *b = getenv("ASYNCIO_BACKEND");
    if (done++ || !b || strcmp(b, "kqueue") != 0)
        return;
    struct tu_holder h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t th;
    if (pthread_create(&th, NULL, tu_kqueue_holder, &h) == 0) {
        pthread_detach(th);
        pthread_mutex_lock(&h.mu);
        while (!h.ready)
            pthread_cond_wait(&h.cv, &h.mu);
        pthread_mutex_unlock(&h.mu);
    }
}

static inline int tu_run_group_tests_(const char *group, const struct CMUnitTest *tests,
                                      size_t n, CMFixtureFunction group_setup,
                                      CMFixtureFunction group_teardown)
{
    tu_backend_warm_up();
    atomic_store(&tu_wd.group, group);
    tu_watchdog(0);
    /* cmocka gives a test's setup the test's initial_state, unless a group
     * setup made a state of its own: then the program-wide budget only. */
    struct CMUnitTest *copy = NULL;
    struct tu_wd_test *wrap = NULL;
    if (!group_setup && (copy = calloc(n, sizeof *copy)) && (wrap = calloc(n, sizeof *wrap))) {
        for (size_t i = 0; i < n; i++) {
            copy[i] = tests[i];
            wrap[i] = (struct tu_wd_test){tests[i].name, tests[i].initial_state,
                                          tests[i].setup_func};
            copy[i].setup_func = tu_wd_setup;
            copy[i].initial_state = &wrap[i];
        }
        tests = copy;
    }
    int rc = _cmocka_run_group_tests(group, tests, n, group_setup, group_teardown);
    tu_watchdog_stop();
    free(copy);
    free(wrap);
    return rc;
}

/* cmocka_run_group_tests_name() with the watchdog armed for each test. */
#define tu_run_group_tests_name(group, tests, group_setup, group_teardown)                 \
    tu_run_group_tests_(group, tests, sizeof(tests) / sizeof((tests)[0]), group_setup,       \
                        group_teardown)

/* The main task of tu_run_bounded(), for a child process's asyncio_run()
 * (see tu_run_bounded()): fn(arg) inside a scope of seconds. */
struct tu_bounded {
    asyncio_fn fn;
    void *arg;
    double seconds;
};

static inline int tu_bounded_main(void *arg, void **result)
{
    struct tu_bounded *b = arg;
    asyncio_timeout_t scope;
    int rc = asyncio_timeout_enter(&scope, b->seconds);
    if (rc != 0) {
        tu_fail_at(__FILE__, __LINE__, "asyncio_timeout_enter: %s", tu_err(rc));
        return b->fn(b->arg, result);
    }
    rc = b->fn(b->arg, result);
    int ex = asyncio_timeout_exit(&scope);
    if (ex == -ETIMEDOUT)
        tu_fail_at(__FILE__, __LINE__,
                   "gave up after %g s: a wait got no answer (the first failed check "
                   "names it; every wait after it failed at once)",
                   b->seconds);
    else if (ex != 0)
        tu_fail_at(__FILE__, __LINE__, "asyncio_timeout_exit: %s (a scope left open?)",
                   tu_err(ex));
    return rc;
}

/* Run fn as the main task of a loop in a child with SIGPIPE at its default
 * (a SIGPIPE ends it), and fail unless the child exits 0 having logged
 * exactly expect, with SIGPIPE neither left blocked nor pending. */
static inline asyncio_fn *tu_sigpipe_main_slot(void)
{
    static asyncio_fn fn;
    return &fn;
}

static inline void tu_sigpipe_child(void)
{
    signal(SIGPIPE, SIG_DFL);
    tu_reset();
    struct tu_bounded b = {*tu_sigpipe_main_slot(), NULL, TU_TEST_TIMEOUT};
    int rc = asyncio_run(tu_bounded_main, &b, NULL);
    fprintf(stderr, "%s%s%s", tu_log_buf, tu_sigpipe_blocked() ? " blocked" : "",
            tu_sigpipe_pending() ? " pending" : "");
    tu_child_exit(rc == 0 && tu_failures == 0 ? 0 : 1);
}

static inline void tu_assert_no_sigpipe(asyncio_fn fn, const char *expect)
{
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_DFL); /* main() set it: a SIGPIPE would kill */
    *tu_sigpipe_main_slot() = fn;
    struct tu_child c;
    tu_run_child(tu_sigpipe_child, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child: %s %d; stderr: %s", WIFSIGNALED(c.status) ? "signal" : "exit",
                 WIFSIGNALED(c.status) ? WTERMSIG(c.status) : WEXITSTATUS(c.status), c.err);
    assert_string_equal(c.err, expect);
}

/* tu_run() with every wait of the main task bounded: after seconds, the
 * one waiting (and each later one) returns -ETIMEDOUT, what it awaits is
 * cancelled, and the test fails. For tests that wait on a peer. */
static inline int tu_run_bounded(asyncio_fn fn, void *arg, void **result, double seconds)
{
    struct tu_bounded b = {fn, arg, seconds};
    return tu_run(tu_bounded_main, &b, result);
}

#endif
