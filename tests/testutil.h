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

static inline const char *tu_err(long long rc)
{
    static char bufs[4][32];
    static int next;
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
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%lld", rc);
    return b;
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
        _exit(0);
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

#endif
