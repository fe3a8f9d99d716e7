/*
 * Waiting for file descriptors (CPython: test_events.py reader/writer tests).
 */
#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    set_nonblock(fds[0]);
    set_nonblock(fds[1]);
}

static int g_rfd, g_wfd;

/* Read into buf, waiting for readability as needed. Returns bytes read or a
 * negative errno from asyncio_wait_readable(). */
static ssize_t read_async(int fd, char *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = asyncio_wait_readable(fd);
        if (rc < 0)
            return rc;
    }
}

static int reader_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[16];
    ssize_t n = read(g_rfd, buf, sizeof buf);
    CHECK(n < 0 && errno == EAGAIN);
    LOG("reader-empty");
    n = read_async(g_rfd, buf, sizeof buf);
    LOG("read:%.*s", n > 0 ? (int)n : 0, buf);
    return n > 0 ? 0 : (int)n;
}

static int writer_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_sleep(0.01), 0);
    LOG("write");
    CHECK_INT(write(g_wfd, "hi", 2), 2);
    return 0;
}

static int main_reader_writer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *r = tu_spawn(reader_task, NULL, "reader");
    asyncio_task_t *w = tu_spawn(writer_task, NULL, "writer");
    CHECK_INT(asyncio_await(r, NULL), 0);
    CHECK_INT(asyncio_await(w, NULL), 0);
    return 0;
}

static void test_wait_readable_on_pipe_wakes_when_another_task_writes(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_reader_writer, NULL, NULL), 0);
    assert_log("reader-empty write read:hi");
    close(fds[0]);
    close(fds[1]);
}

static int main_writable(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_wait_writable(g_wfd), 0);
    CHECK_INT(write(g_wfd, "x", 1), 1);
    CHECK_INT(asyncio_wait_writable(g_wfd), 0);
    /* Data is already there: readable. */
    CHECK_INT(asyncio_wait_readable(g_rfd), 0);
    return 0;
}

static void test_wait_writable_on_empty_pipe_returns(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_writable, NULL, NULL), 0);
    close(fds[0]);
    close(fds[1]);
}

static int wait_readable_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    LOG("waiting");
    int rc = asyncio_wait_readable(g_rfd);
    LOG("wait:%s", tu_err(rc));
    return rc;
}

static int main_cancel_io_wait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    /* The fd is free for another waiter, which gets woken normally. */
    asyncio_task_t *t2 = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(write(g_wfd, "z", 1), 1);
    CHECK_INT(asyncio_await(t2, NULL), 0);
    return 0;
}

static void test_cancel_task_blocked_in_wait_readable(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_cancel_io_wait, NULL, NULL), 0);
    assert_log("waiting wait:ECANCELED waiting wait:0");
    close(fds[0]);
    close(fds[1]);
}

static int main_pending_cancel_io(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    CHECK_INT(asyncio_wait_readable(g_rfd), -ECANCELED);
    /* Nothing was left registered. */
    asyncio_task_t *t = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(write(g_wfd, "z", 1), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    return 0;
}

static void test_wait_readable_with_cancellation_pending_returns_at_once(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_pending_cancel_io, NULL, NULL), 0);
    assert_log("waiting wait:0");
    close(fds[0]);
    close(fds[1]);
}

static int main_forget_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("forget");
    CHECK_INT(asyncio_forget_fd(g_rfd), 0);
    CHECK_INT(asyncio_await(t, NULL), -EBADF);
    CHECK_INT(asyncio_forget_fd(g_rfd), 0); /* nothing waits: still fine */
    close(g_rfd);
    close(g_wfd);

    /* A new pipe, probably reusing the same fd numbers, works normally. */
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    CHECK_INT(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    g_rfd = fds[0];
    g_wfd = fds[1];
    asyncio_task_t *t2 = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(write(g_wfd, "z", 1), 1);
    CHECK_INT(asyncio_await(t2, NULL), 0);
    CHECK_INT(asyncio_forget_fd(g_rfd), 0);
    close(g_rfd);
    close(g_wfd);
    return 0;
}

static void test_forget_fd_wakes_waiter_with_ebadf(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_forget_fd, NULL, NULL), 0);
    assert_log("waiting forget wait:EBADF waiting wait:0");
}

static int second_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_wait_readable(g_rfd);
}

static int main_two_waiters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t1 = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    asyncio_task_t *t2 = tu_spawn(second_reader, NULL, NULL);
    CHECK_INT(asyncio_await(t2, NULL), -EBUSY);
    CHECK_INT(asyncio_wait_readable(g_rfd), -EBUSY);
    CHECK_INT(asyncio_future_done(t1), 0);
    /* A writer on the same pipe's other end is unaffected. */
    CHECK_INT(asyncio_wait_writable(g_wfd), 0);
    CHECK_INT(write(g_wfd, "z", 1), 1);
    CHECK_INT(asyncio_await(t1, NULL), 0);
    return 0;
}

static void test_two_readers_on_the_same_fd_ebusy(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_two_waiters, NULL, NULL), 0);
    assert_log("waiting wait:0");
    close(fds[0]);
    close(fds[1]);
}

/* One task waits to read a socket while another waits to write it. */
static int g_sv[2];

static int sock_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_wait_readable(g_sv[0]);
    LOG("readable:%s", tu_err(rc));
    return rc;
}

static int sock_writer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_wait_writable(g_sv[0]);
    LOG("writable:%s", tu_err(rc));
    return rc;
}

static int main_read_and_write_same_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Fill sv[0] so it is not writable. */
    static char chunk[4096];
    while (write(g_sv[0], chunk, sizeof chunk) > 0)
        ;
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    asyncio_task_t *r = tu_spawn(sock_reader, NULL, NULL);
    asyncio_task_t *w = tu_spawn(sock_writer, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    LOG("send");
    CHECK_INT(write(g_sv[1], "x", 1), 1);
    CHECK_INT(asyncio_await(r, NULL), 0);
    CHECK_INT(asyncio_future_done(w), 0);
    LOG("drain");
    while (read(g_sv[1], chunk, sizeof chunk) > 0)
        ;
    CHECK_INT(asyncio_await(w, NULL), 0);
    return 0;
}

static void test_reader_and_writer_wait_on_the_same_fd(void **state)
{
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    set_nonblock(g_sv[0]);
    set_nonblock(g_sv[1]);
    assert_int_equal(tu_run(main_read_and_write_same_fd, NULL, NULL), 0);
    assert_log("send readable:0 drain writable:0");
    close(g_sv[0]);
    close(g_sv[1]);
}

static int main_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[4];
    asyncio_task_t *t = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    close(g_wfd);
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(read(g_rfd, buf, sizeof buf), 0);
    return 0;
}

static void test_wait_readable_reports_end_of_file(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_eof, NULL, NULL), 0);
    assert_log("waiting wait:0");
    close(fds[0]);
}

static int main_regular_file(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *backend = asyncio_loop_backend();
    int rc = asyncio_wait_readable(g_rfd);
    if (backend && (strcmp(backend, "epoll") == 0 || strcmp(backend, "kqueue") == 0))
        CHECK_INT(rc, -EPERM); /* epoll refuses regular files, and so does ours of kqueue */
    else
        CHECK_INT(rc, 0); /* poll: a regular file is always ready */
    /* Either way nothing is left registered. */
    CHECK_INT(asyncio_forget_fd(g_rfd), 0);
    CHECK_INT(asyncio_sleep(0), 0);
    return 0;
}

static void test_wait_readable_on_a_regular_file(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    g_rfd = fileno(f);
    assert_int_equal(tu_run(main_regular_file, NULL, NULL), 0);
    fclose(f);
}

#define N_PIPES 20
static int g_pipes[N_PIPES][2];

static int pipe_reader(void *arg, void **result)
{
    int i = (int)(intptr_t)arg;
    char c = 0;
    (void)result;
    ssize_t n = read_async(g_pipes[i][0], &c, 1);
    CHECK_INT(n, 1);
    CHECK_INT(c, 'a' + i);
    return n == 1 ? 0 : -EIO;
}

static int main_many_pipes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t[N_PIPES];
    for (int i = 0; i < N_PIPES; i++)
        t[i] = tu_spawn(pipe_reader, (void *)(intptr_t)i, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    for (int i = N_PIPES - 1; i >= 0; i--) {
        char c = (char)('a' + i);
        CHECK_INT(write(g_pipes[i][1], &c, 1), 1);
        if (i % 3 == 0)
            CHECK_INT(asyncio_sleep(0.001), 0);
    }
    CHECK_INT(asyncio_gather(N_PIPES, t, NULL, NULL, 0), 0);
    return 0;
}

static void test_many_readers_on_many_pipes(void **state)
{
    (void)state;
    for (int i = 0; i < N_PIPES; i++)
        make_pipe(g_pipes[i]);
    assert_int_equal(tu_run(main_many_pipes, NULL, NULL), 0);
    for (int i = 0; i < N_PIPES; i++) {
        close(g_pipes[i][0]);
        close(g_pipes[i][1]);
    }
}

static int main_wait_for_io(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_wait_for(t, 0.01, NULL), -ETIMEDOUT);
    CHECK_INT(asyncio_future_cancelled(t), 1);
    /* And the fd is free again. */
    asyncio_task_t *t2 = tu_spawn(wait_readable_task, NULL, NULL);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(write(g_wfd, "z", 1), 1);
    CHECK_INT(asyncio_wait_for(t2, INFINITY, NULL), 0);
    return 0;
}

static void test_wait_for_times_out_a_task_blocked_on_io(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    g_rfd = fds[0];
    g_wfd = fds[1];
    assert_int_equal(tu_run(main_wait_for_io, NULL, NULL), 0);
    assert_log("waiting wait:ECANCELED waiting wait:0");
    close(fds[0]);
    close(fds[1]);
}

static int main_bad_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_wait_readable(-1), -EBADF);
    CHECK_INT(asyncio_wait_writable(-1), -EBADF);
    CHECK_INT(asyncio_forget_fd(-1), -EBADF);
    CHECK_INT(asyncio_wait_readable(-42), -EBADF);
    return 0;
}

static void test_negative_fd_is_ebadf(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_bad_fd, NULL, NULL), 0);
}

/*
 * An fd a task has waited on is forgotten with asyncio_forget_fd() before it
 * is closed (even though nobody waits on it any more), and a new pipe reuses
 * the fd number: waiting on it must work. A pipe write makes the read end
 * ready at once, so the reader must be woken within a few loop iterations (a
 * bounded number of sleep(0), no timing); if not, it is cancelled so the
 * test fails instead of hanging.
 */
static int reuse_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[8];
    ssize_t n = read_async(g_rfd, buf, sizeof buf);
    LOG("read:%s", n > 0 ? "ok" : tu_err(n));
    return n > 0 ? 0 : (int)n;
}

static int main_fd_reuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int round = 0; round < 3; round++) {
        int fds[2];
        CHECK_INT(pipe(fds), 0);
        CHECK_INT(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
        CHECK_INT(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
        /* (Usually the same fd numbers as the previous round.) */
        g_rfd = fds[0];
        g_wfd = fds[1];
        asyncio_task_t *r = tu_spawn(reuse_reader, NULL, NULL);
        CHECK_INT(asyncio_sleep(0), 0); /* r now waits */
        CHECK_INT(write(g_wfd, "ok", 2), 2);
        for (int spins = 0; spins < 100 && !asyncio_future_done(r); spins++)
            CHECK_INT(asyncio_sleep(0), 0);
        if (!asyncio_future_done(r)) {
            tu_fail_at(__FILE__, __LINE__, "round %d: reader not woken by a write", round);
            LOG("stuck");
            asyncio_task_cancel(r);
        }
        asyncio_await(r, NULL);
        asyncio_task_release(r);
        CHECK_INT(asyncio_forget_fd(fds[0]), 0);
        CHECK_INT(asyncio_forget_fd(fds[1]), 0);
        close(fds[0]);
        close(fds[1]);
    }
    return 0;
}

static void test_fd_forgotten_closed_and_reused_works_again(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_fd_reuse, NULL, NULL), 0);
    assert_log("read:ok read:ok read:ok");
}

/*
 * fd numbers far beyond any open fd: a prompt -EBADF on every backend, with
 * no allocation sized by the number (the fd table grew by doubling an int,
 * which overflowed and spun for INT_MAX, and 1 << 27 allocated gigabytes
 * before the poller was asked). Run in a child with an alarm, so a
 * regression fails with a message instead of hanging the suite; the
 * child's peak memory must not grow by more than a few MiB.
 */
static const char *g_backend;

static long max_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int main_huge_fds(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const int fds[] = {INT_MAX, INT_MAX - 1, 1 << 30, 1 << 27, (1 << 24) + 3};
    long before = max_rss_kib();
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        CHECK_INT(asyncio_wait_readable(fds[i]), -EBADF);
        CHECK_INT(asyncio_wait_writable(fds[i]), -EBADF);
        CHECK_INT(asyncio_forget_fd(fds[i]), 0);
    }
    long grown = max_rss_kib() - before;
    if (grown > 16 * 1024)
        tu_fail_at(__FILE__, __LINE__, "peak memory grew by %ld KiB", grown);
    /* The loop still works for a real fd after that. */
    int p[2];
    CHECK_INT(pipe(p), 0);
    CHECK_INT(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    CHECK_INT(asyncio_wait_writable(p[1]), 0);
    CHECK_INT(asyncio_forget_fd(p[1]), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void huge_fds_child(void)
{
    alarm(20);
    asyncio_run_options_t opts = {.backend = g_backend};
    int rc = tu_run_ex(main_huge_fds, NULL, NULL, &opts);
    tu_child_exit(rc == 0 && tu_failures == 0 ? 0 : 1);
}

static void check_huge_fds(const char *backend)
{
    g_backend = backend;
    struct tu_child c;
    tu_run_child(huge_fds_child, &c);
    if (WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGALRM)
        fail_msg("%s: still waiting after 20 s (hung)", backend);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("%s: status %#x, stderr:\n%s", backend, (unsigned)c.status, c.err);
}

static void test_huge_fd_numbers_are_ebadf_at_once_on_every_backend(void **state)
{
    (void)state;
    check_huge_fds("epoll");
    check_huge_fds("poll");
}

/* A real fd with a high number (near the process's limit): the table grows
 * to it and waiting works. */
static int g_high_fd;

static int main_high_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_wait_writable(g_high_fd), 0);
    CHECK_INT(asyncio_forget_fd(g_high_fd), 0);
    return 0;
}

static void test_high_open_fd_can_be_waited_on(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t top = rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur;
    int p[2];
    assert_int_equal(pipe(p), 0);
    g_high_fd = (int)top - 1;
    assert_int_equal(dup2(p[1], g_high_fd), g_high_fd);
    static const char *backends[] = {"epoll", "poll"};
    for (int i = 0; i < 2; i++) {
        asyncio_run_options_t opts = {.backend = backends[i]};
        assert_int_equal(tu_run_ex(main_high_fd, NULL, NULL, &opts), 0);
    }
    close(g_high_fd);
    close(p[0]);
    close(p[1]);
}

/* poll reports an fd closed behind the loop's back (no asyncio_forget_fd)
 * while a task waits on it: the task wakes with -EBADF. */
static int wait_read_logged(void *arg, void **result)
{
    (void)result;
    LOG("wait:%s", tu_err(asyncio_wait_readable((int)(intptr_t)arg)));
    return 0;
}

static int main_closed_behind_back(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int p[2];
    CHECK_INT(pipe(p), 0);
    asyncio_task_t *t = tu_spawn(wait_read_logged, (void *)(intptr_t)p[0], "reader");
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(t), "fd readable");
    /* Another fd gets ready while that one stays quiet. */
    int q[2];
    CHECK_INT(pipe(q), 0);
    CHECK_INT(write(q[1], "x", 1), 1);
    CHECK_INT(asyncio_wait_readable(q[0]), 0);
    CHECK_INT(asyncio_forget_fd(q[0]), 0);
    close(q[0]);
    close(q[1]);
    close(p[0]);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_forget_fd(p[0]), 0);
    close(p[1]);
    return 0;
}

static void test_poll_wakes_a_waiter_whose_fd_was_closed_behind_its_back(void **state)
{
    (void)state;
    asyncio_run_options_t o = {.backend = "poll"};
    assert_int_equal(tu_run_ex(main_closed_behind_back, NULL, NULL, &o), 0);
    assert_log("wait:EBADF");
}

#ifdef __linux__
/* epoll: the loop's record of an fd closed without asyncio_forget_fd()
 * disagrees with the kernel's; the loop puts it right. */
static int main_epoll_stale_records(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int a[2], b[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    CHECK_INT(write(a[1], "x", 1), 1);
    CHECK_INT(asyncio_wait_readable(a[0]), 0); /* registered for reading */
    /* Closed and its number reused: a wait for writing (a change of
     * interest for the loop) reaches the new socket. */
    int old = a[0];
    close(a[0]);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    CHECK_INT(b[0], old);
    CHECK_INT(asyncio_wait_writable(b[0]), 0);
    /* Closed, then forgotten: nothing to take back, still 0. */
    close(b[0]);
    CHECK_INT(asyncio_forget_fd(b[0]), 0);
    /* Forgotten while a copy kept it registered in the kernel, then the
     * copy put back under the same number: a new wait still works. */
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    CHECK_INT(write(b[1], "y", 1), 1);
    CHECK_INT(asyncio_wait_readable(b[0]), 0);
    int copy = dup(b[0]);
    CHECK(copy >= 0);
    close(b[0]);
    CHECK_INT(asyncio_forget_fd(b[0]), 0);
    CHECK_INT(dup2(copy, b[0]), b[0]);
    close(copy);
    CHECK_INT(asyncio_wait_readable(b[0]), 0);
    char c;
    CHECK_INT(read(b[0], &c, 1), 1);
    CHECK_INT(c, 'y');
    CHECK_INT(asyncio_forget_fd(b[0]), 0);
    close(b[0]);
    close(b[1]);
    close(a[1]);
    return 0;
}

static void test_epoll_puts_right_records_of_fds_closed_behind_its_back(void **state)
{
    (void)state;
    asyncio_run_options_t o = {.backend = "epoll"};
    assert_int_equal(tu_run_ex(main_epoll_stale_records, NULL, NULL, &o), 0);
}
#endif

/* Adaptive spinning on fds (src/loop.c): a pipe fed a page at a time by
 * another thread as fast as it can makes the loop's sleeps short, so it
 * polls without blocking before it sleeps. Nothing is lost or reordered
 * through the bursts, a pause (spins that find nothing, then sleeps), and
 * the bursts again; a timer fires during the pause; the end of file is
 * seen. (On one CPU nothing spins: the same checks hold.) */
#define FEED_PAGE 4096
#define FEED_BURST 2000

struct feeder {
    int fd;
    int err;
};

static void feed_burst(struct feeder *f, int first, int n)
{
    char page[FEED_PAGE];
    for (int i = first; i < first + n && !f->err; i++) {
        memset(page, (unsigned char)i, sizeof page);
        size_t off = 0;
        while (off < sizeof page) {
            ssize_t w = write(f->fd, page + off, sizeof page - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno == EAGAIN) {
                struct pollfd p = {.fd = f->fd, .events = POLLOUT};
                if (poll(&p, 1, 10000) != 1) { /* the reader stopped: give up */
                    f->err = ETIMEDOUT;
                    return;
                }
            } else {
                f->err = errno;
                return;
            }
        }
    }
}

static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    feed_burst(f, 0, FEED_BURST);
    nanosleep(&(struct timespec){0, 20000000}, NULL); /* a pause: the reader's spins find nothing */
    feed_burst(f, FEED_BURST, FEED_BURST);
    close(f->fd);
    return NULL;
}

struct fed {
    int rfd;
    long bytes, wrong;
    int ticks;
    bool done;
};

static int ticker(void *arg, void **result)
{
    (void)result;
    struct fed *d = arg;
    while (!d->done) {
        int rc = asyncio_sleep(0.001);
        if (rc < 0)
            return rc;
        d->ticks++;
    }
    return 0;
}

static int main_fed(void *arg, void **result)
{
    (void)result;
    struct fed *d = arg;
    asyncio_task_t *t = tu_spawn(ticker, d, "ticker");
    static char buf[64 * 1024];
    int rc;
    for (;;) {
        ssize_t n = read(d->rfd, buf, sizeof buf);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++, d->bytes++)
                if ((unsigned char)buf[i] != (unsigned char)(d->bytes / FEED_PAGE))
                    d->wrong++;
            continue;
        }
        if (n == 0)
            break;
        if (errno != EAGAIN) {
            CHECK_INT(-errno, 0);
            break;
        }
        if ((rc = asyncio_wait_readable(d->rfd)) < 0) {
            CHECK_INT(rc, 0);
            break;
        }
    }
    d->done = true;
    CHECK_INT(asyncio_wait_for(t, 10.0, NULL), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_a_pipe_fed_a_page_at_a_time_loses_nothing_while_the_loop_spins(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    struct feeder f = {.fd = fds[1]};
    struct fed d = {.rfd = fds[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, feeder_main, &f), 0);
    int rc = tu_run(main_fed, &d, NULL);
    pthread_join(th, NULL);
    close(fds[0]);
    assert_int_equal(rc, 0);
    assert_int_equal(f.err, 0);
    assert_int_equal(d.bytes, 2L * FEED_BURST * FEED_PAGE);
    assert_int_equal(d.wrong, 0);
    assert_true(d.ticks > 0); /* the 1 ms timer fired, in the pause if not before */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_readable_on_pipe_wakes_when_another_task_writes),
        cmocka_unit_test(test_a_pipe_fed_a_page_at_a_time_loses_nothing_while_the_loop_spins),
        cmocka_unit_test(test_wait_writable_on_empty_pipe_returns),
        cmocka_unit_test(test_cancel_task_blocked_in_wait_readable),
        cmocka_unit_test(test_wait_readable_with_cancellation_pending_returns_at_once),
        cmocka_unit_test(test_forget_fd_wakes_waiter_with_ebadf),
        cmocka_unit_test(test_two_readers_on_the_same_fd_ebusy),
        cmocka_unit_test(test_reader_and_writer_wait_on_the_same_fd),
        cmocka_unit_test(test_wait_readable_reports_end_of_file),
        cmocka_unit_test(test_wait_readable_on_a_regular_file),
        cmocka_unit_test(test_many_readers_on_many_pipes),
        cmocka_unit_test(test_wait_for_times_out_a_task_blocked_on_io),
        cmocka_unit_test(test_negative_fd_is_ebadf),
        cmocka_unit_test(test_fd_forgotten_closed_and_reused_works_again),
        cmocka_unit_test(test_huge_fd_numbers_are_ebadf_at_once_on_every_backend),
        cmocka_unit_test(test_high_open_fd_can_be_waited_on),
        cmocka_unit_test(test_poll_wakes_a_waiter_whose_fd_was_closed_behind_its_back),
#ifdef __linux__
        cmocka_unit_test(test_epoll_puts_right_records_of_fds_closed_behind_its_back),
#endif
    };
    return tu_run_group_tests_name("io", tests, NULL, NULL);
}
