/*
 * Socket calls on real sockets on 127.0.0.1 (CPython: test_sock_lowlevel.py).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* tu_run() with every wait of the test bounded (TU_TEST_TIMEOUT): a peer
 * that never answers fails the CHECK of the call that waited for it. */
static int run(asyncio_fn fn, void *arg, void **result)
{
    return tu_run_bounded(fn, arg, result, TU_TEST_TIMEOUT);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

/* A listening TCP socket on 127.0.0.1 and an ephemeral port. */
static int listener(int *port)
{
    int fd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -errno;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_to(int port)
{
    int fd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    struct sockaddr_in a = loopback(port);
    int rc = asyncio_sock_connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc < 0) {
        asyncio_close(fd);
        return rc;
    }
    return fd;
}

#define BIG (4 * 1024 * 1024)

struct echo {
    int lfd;
    long echoed;
};

/* Accept one connection and echo everything back until EOF. */
static int echo_server(void *arg, void **result)
{
    struct echo *e = arg;
    (void)result;
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int c = asyncio_sock_accept(e->lfd, (struct sockaddr *)&peer, &plen);
    if (c < 0)
        return c;
    CHECK_INT(peer.sin_family, AF_INET);
    static char buf[65536];
    for (;;) {
        ssize_t n = asyncio_sock_recv(c, buf, sizeof buf);
        if (n <= 0) {
            asyncio_close(c);
            return (int)n;
        }
        ssize_t w = asyncio_sock_sendall(c, buf, (size_t)n);
        if (w < 0) {
            asyncio_close(c);
            return (int)w;
        }
        e->echoed += n;
    }
}

static int echo_reader(void *arg, void **result)
{
    int fd = *(int *)arg;
    (void)result;
    static char buf[65536];
    long total = 0;
    unsigned long sum = 0;
    for (;;) {
        ssize_t n = asyncio_sock_recv(fd, buf, sizeof buf);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            sum += (unsigned char)buf[i];
        total += n;
    }
    CHECK_INT(total, BIG);
    *result = (void *)(uintptr_t)sum;
    return 0;
}

static int main_echo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct echo e = {0, 0};
    int port;
    CHECK((e.lfd = listener(&port)) >= 0);
    asyncio_task_t *server = tu_spawn(echo_server, &e, "server");
    int fd = connect_to(port);
    CHECK(fd >= 0);
    asyncio_task_t *reader = tu_spawn(echo_reader, &fd, "reader");
    char *data = malloc(BIG);
    unsigned long sum = 0;
    for (int i = 0; i < BIG; i++) {
        data[i] = (char)(i * 7 + i / 4096);
        sum += (unsigned char)data[i];
    }
    /* More than the socket buffers hold: sendall has to wait for the
     * echo to be read. */
    CHECK_INT(asyncio_sock_sendall(fd, data, BIG), BIG);
    CHECK_INT(shutdown(fd, SHUT_WR), 0);
    void *got = NULL;
    CHECK_INT(asyncio_await(reader, &got), 0);
    CHECK(got == (void *)(uintptr_t)sum);
    CHECK_INT(asyncio_await(server, NULL), 0);
    CHECK_INT(e.echoed, BIG);
    free(data);
    CHECK_INT(asyncio_close(fd), 0);
    CHECK_INT(asyncio_close(e.lfd), 0);
    return 0;
}

static void test_echo_of_4_mib_over_tcp(void **state)
{
    (void)state;
    assert_int_equal(run(main_echo, NULL, NULL), 0);
}

static int main_refused(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    int lfd = listener(&port);
    CHECK(lfd >= 0);
    close(lfd); /* nobody listens on port now */
    CHECK_INT(connect_to(port), -ECONNREFUSED);
    return 0;
}

static void test_connect_refused(void **state)
{
    (void)state;
    assert_int_equal(run(main_refused, NULL, NULL), 0);
}

/* Writing to a peer that has gone: -EPIPE or -ECONNRESET, never SIGPIPE. */
static int main_epipe(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    int lfd = listener(&port);
    int fd = connect_to(port);
    int c = asyncio_sock_accept(lfd, NULL, NULL);
    CHECK(c >= 0);
    struct linger lg = {1, 0}; /* close with a reset */
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    asyncio_close(c);
    char buf[16];
    CHECK_INT(asyncio_sock_recv(fd, buf, sizeof buf), -ECONNRESET);
    ssize_t rc = 0;
    for (int i = 0; i < 100 && rc >= 0; i++)
        rc = asyncio_sock_sendall(fd, "x", 1);
    CHECK(rc == -EPIPE || rc == -ECONNRESET);
    asyncio_close(fd);
    asyncio_close(lfd);
    return 0;
}

static void test_reset_and_broken_pipe_are_error_codes(void **state)
{
    (void)state;
    /* The default SIGPIPE action would kill the test: it must not come. */
    assert_int_equal(run(main_epipe, NULL, NULL), 0);
}

static int blocked_reader(void *arg, void **result)
{
    int fd = *(int *)arg;
    (void)result;
    char buf[8];
    ssize_t n = asyncio_sock_recv(fd, buf, sizeof buf);
    LOG("recv:%s", tu_err(n));
    return 0;
}

static int main_cancel_and_close(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    asyncio_task_t *r = tu_spawn(blocked_reader, &sv[0], NULL);
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(r), 1);
    CHECK_INT(asyncio_await(r, NULL), 0);
    /* Closing the socket wakes a task waiting on it. */
    r = tu_spawn(blocked_reader, &sv[0], NULL);
    tu_yield(1);
    CHECK_INT(asyncio_close(sv[0]), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    /* And a timeout scope ends an accept. */
    int port, lfd = listener(&port);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("accept:%s", tu_err(asyncio_sock_accept(lfd, NULL, NULL)));
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    asyncio_close(lfd);
    asyncio_close(sv[1]);
    return 0;
}

static void test_cancel_close_and_timeout_end_waits(void **state)
{
    (void)state;
    assert_int_equal(run(main_cancel_and_close, NULL, NULL), 0);
    assert_log("recv:ECANCELED recv:EBADF accept:ETIMEDOUT");
}

static int main_udp(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int a = asyncio_socket(AF_INET, SOCK_DGRAM, 0), b = asyncio_socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    CHECK_INT(bind(a, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_INT(getsockname(a, (struct sockaddr *)&addr, &len), 0);
    CHECK_INT(asyncio_sock_sendto(b, "ping", 4, (struct sockaddr *)&addr, sizeof addr), 4);
    char buf[16];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    CHECK_INT(asyncio_sock_recvfrom(a, buf, sizeof buf, (struct sockaddr *)&from, &flen), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_INT(asyncio_sock_sendto(a, "pong", 4, (struct sockaddr *)&from, flen), 4);
    CHECK_INT(asyncio_sock_recvfrom(b, buf, sizeof buf, NULL, NULL), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    /* A connected datagram socket sends with no address. */
    CHECK_INT(connect(b, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_INT(asyncio_sock_sendto(b, "again", 5, NULL, 0), 5);
    CHECK_INT(asyncio_sock_recv(a, buf, sizeof buf), 5);
    asyncio_close(a);
    asyncio_close(b);
    return 0;
}

static void test_udp_sendto_and_recvfrom(void **state)
{
    (void)state;
    assert_int_equal(run(main_udp, NULL, NULL), 0);
}

static int main_unix(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "asyncio-test-%d", (int)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                                 strlen(a.sun_path + 1)); /* abstract */
    int lfd = asyncio_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_INT(bind(lfd, (struct sockaddr *)&a, alen), 0);
    CHECK_INT(listen(lfd, 4), 0);
    int fd = asyncio_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_INT(asyncio_sock_connect(fd, (struct sockaddr *)&a, alen), 0);
    int c = asyncio_sock_accept(lfd, NULL, NULL);
    CHECK(c >= 0);
    CHECK_INT(asyncio_sock_sendall(c, "hello", 5), 5);
    char buf[8];
    CHECK_INT(asyncio_sock_recv_into(fd, buf, sizeof buf), 5);
    asyncio_close(c);
    CHECK_INT(asyncio_sock_recv(fd, buf, sizeof buf), 0); /* EOF */
    asyncio_close(fd);
    asyncio_close(lfd);
    return 0;
}

static void test_unix_domain_stream(void **state)
{
    (void)state;
    assert_int_equal(run(main_unix, NULL, NULL), 0);
}

/* A reader whose socket always has data still lets others run. */
static long g_ticks;

static int ticker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        if (asyncio_sleep(0) < 0)
            return 0;
        g_ticks++;
    }
}

static int main_fair(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    CHECK_INT(write(sv[1], buf, sizeof buf), (ssize_t)sizeof buf);
    asyncio_task_t *t = tu_spawn(ticker, NULL, NULL);
    tu_yield(1);
    g_ticks = 0;
    /* 1,000 one-byte reads that never wait. */
    for (int i = 0; i < 1000; i++)
        CHECK_INT(asyncio_sock_recv(sv[0], buf, 1), 1);
    CHECK(g_ticks >= 10);
    asyncio_task_cancel(t);
    asyncio_close(sv[0]);
    asyncio_close(sv[1]);
    return 0;
}

static void test_always_ready_socket_still_yields(void **state)
{
    (void)state;
    assert_int_equal(run(main_fair, NULL, NULL), 0);
}

static void cb_recv(void *arg)
{
    char b;
    *(ssize_t *)arg = asyncio_sock_recv(0, &b, 1);
}

static int main_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_sock_recv(0, NULL, 5), -EINVAL);
    CHECK_INT(asyncio_sock_sendall(0, NULL, 5), -EINVAL);
    CHECK_INT(asyncio_sock_recvfrom(0, NULL, 5, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_sock_recv(-1, NULL, 0), -EBADF);
    CHECK_INT(asyncio_close(-1), -EBADF);
    ssize_t from_cb = 0;
    CHECK_INT(asyncio_call_soon(cb_recv, &from_cb, NULL), 0);
    tu_yield(2);
    CHECK_INT(from_cb, -EPERM);
    return 0;
}

static void test_misuse_gets_error_codes(void **state)
{
    (void)state;
    char b;
    assert_int_equal(asyncio_sock_recv(0, &b, 1), -EPERM);
    assert_int_equal(asyncio_sock_accept(0, NULL, NULL), -EPERM);
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    sa.ss_family = AF_INET;
    assert_int_equal(asyncio_sock_connect(0, (struct sockaddr *)&sa, sizeof sa), -EPERM);
    assert_int_equal(asyncio_sock_sendto(0, &b, 1, NULL, 0), -EPERM);
    /* An address without room for its length. */
    assert_int_equal(asyncio_sock_recvfrom(0, &b, 1, (struct sockaddr *)&sa, NULL), -EINVAL);
    assert_int_equal(run(main_misuse, NULL, NULL), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would end the run: none may come */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_of_4_mib_over_tcp),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_reset_and_broken_pipe_are_error_codes),
        cmocka_unit_test(test_cancel_close_and_timeout_end_waits),
        cmocka_unit_test(test_udp_sendto_and_recvfrom),
        cmocka_unit_test(test_unix_domain_stream),
        cmocka_unit_test(test_always_ready_socket_still_yields),
        cmocka_unit_test(test_misuse_gets_error_codes),
    };
    return tu_run_group_tests_name("sock", tests, NULL, NULL);
}
