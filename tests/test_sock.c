/*
 * Socket calls on real sockets on 127.0.0.1 (CPython: test_sock_lowlevel.py).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
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

/* An abstract Unix-domain address of this process's, named after tag;
 * its length. */
static socklen_t abstract_addr(struct sockaddr_un *a, const char *tag)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "asyncio-%s-%d", tag, (int)getpid());
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1));
}

static int main_unix(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct sockaddr_un a;
    socklen_t alen = abstract_addr(&a, "test");
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

/* A Unix-domain listener whose backlog is full: connect waits for room
 * (connect(2) says EAGAIN, with no event to wait on), bounded by a scope,
 * and succeeds once the listener accepts one. */
struct full_backlog {
    int lfd;
    int accepted;
};

static int accept_later(void *arg, void **result)
{
    (void)result;
    struct full_backlog *b = arg;
    CHECK_INT(asyncio_sleep(0.02), 0);
    b->accepted = asyncio_sock_accept(b->lfd, NULL, NULL);
    return 0;
}

static int main_unix_full_backlog(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct sockaddr_un a;
    socklen_t alen = abstract_addr(&a, "backlog");
    struct full_backlog b = {.lfd = asyncio_socket(AF_UNIX, SOCK_STREAM, 0), .accepted = -1};
    CHECK_INT(bind(b.lfd, (struct sockaddr *)&a, alen), 0);
    CHECK_INT(listen(b.lfd, 0), 0);
    /* Fill the backlog with plain connects until one says EAGAIN. */
    int pending[64], n = 0, full = 0;
    while (n < 64) {
        pending[n] = asyncio_socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(pending[n], (struct sockaddr *)&a, alen) < 0) {
            full = errno;
            asyncio_close(pending[n]);
            break;
        }
        n++;
    }
    CHECK_INT(full, EAGAIN);
    /* Nobody accepts: the connect waits until its scope ends it. */
    int fd = asyncio_socket(AF_UNIX, SOCK_STREAM, 0);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.03), 0);
    CHECK_INT(asyncio_sock_connect(fd, (struct sockaddr *)&a, alen), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    asyncio_close(fd);
    /* A task accepts one after 20 ms: the connect gets its place. */
    asyncio_task_t *t = tu_spawn(accept_later, &b, "accepter");
    fd = asyncio_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_INT(asyncio_timeout_enter(&scope, 5.0), 0);
    CHECK_INT(asyncio_sock_connect(fd, (struct sockaddr *)&a, alen), 0);
    CHECK_INT(asyncio_timeout_exit(&scope), 0);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK(b.accepted >= 0);
    asyncio_close(b.accepted);
    asyncio_close(fd);
    for (int i = 0; i < n; i++)
        asyncio_close(pending[i]);
    asyncio_close(b.lfd);
    return 0;
}

static void test_unix_connect_waits_while_the_backlog_is_full(void **state)
{
    (void)state;
    assert_int_equal(run(main_unix_full_backlog, NULL, NULL), 0);
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

/* ---- sending a file (asyncio_sock_sendfile) ------------------------------ */

/* The system's sendfile is used, unless the build has none (portable). */
#ifdef TU_PORTABLE_FEATURES
#define HAS_ZERO_COPY 0
#else
#define HAS_ZERO_COPY 1
#endif

#define MIB (1024 * 1024)

/* tu_err() and the codes sendfile adds. */
static const char *err(long long rc)
{
    switch (rc) {
    case -ECONNRESET: return "ECONNRESET";
    case -ENOTSUP: return "ENOTSUP";
    case -ESPIPE: return "ESPIPE";
    case -EISDIR: return "EISDIR";
    default: return tu_err(rc);
    }
}

/* A temporary file of n bytes of tu_pattern(), already unlinked: its fd. */
/* A TCP connection on 127.0.0.1: the connecting end, the accepted one in
 * *peer. */
static int tcp_conn(int *peer)
{
    int port, lfd = listener(&port);
    CHECK(lfd >= 0);
    int fd = connect_to(port);
    CHECK(fd >= 0);
    *peer = asyncio_sock_accept(lfd, NULL, NULL);
    CHECK(*peer >= 0);
    asyncio_close(lfd);
    return fd;
}

/* Small kernel buffers on both ends, whatever the system's defaults, so
 * that a peer that does not read soon stops the sender. */
static void small_buffers(int fd, int peer)
{
    int small = 65536;
    CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    CHECK_INT(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
}

/* Read fd to its end, checking that the bytes are tu_pattern() from start. */
struct file_sink {
    int fd;
    size_t start;
    size_t total;
    bool bad;
    int end; /* 0 at the end, else the error */
};

static int check_to_end(void *arg, void **result)
{
    (void)result;
    struct file_sink *k = arg;
    static char buf[65536];
    for (;;) {
        ssize_t n = asyncio_sock_recv(k->fd, buf, sizeof buf);
        if (n <= 0) {
            k->end = (int)n;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] != tu_pattern(k->start + k->total + (size_t)i))
                k->bad = true;
        k->total += (size_t)n;
    }
    return 0;
}

/* Until t waits (on the socket), for a second at most. */
/* Send [offset, offset + count) of file on a new connection, the peer
 * checking what comes: sendfile's value; what came in *got. */
static ssize_t send_and_check(int file, off_t offset, size_t count, int flags, size_t *got)
{
    int peer, fd = tcp_conn(&peer);
    struct file_sink k = {.fd = peer, .start = (size_t)(offset > 0 ? offset : 0)};
    asyncio_task_t *r = tu_spawn(check_to_end, &k, "peer");
    ssize_t sent = asyncio_sock_sendfile(fd, file, offset, count, flags);
    CHECK_INT(shutdown(fd, SHUT_WR), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK(!k.bad);
    CHECK_INT(k.end, 0);
    CHECK_INT(k.total, sent >= 0 ? (size_t)sent : 0); /* an error sent nothing */
    *got = k.total;
    asyncio_close(fd);
    asyncio_close(peer);
    return sent;
}

struct whole {
    size_t size;
    size_t count; /* 0: to the end */
    int flags;
};

static int main_sendfile_whole(void *arg, void **result)
{
    (void)result;
    const struct whole *w = arg;
    int file = tu_temp_file(w->size);
    CHECK_INT(lseek(file, 777, SEEK_SET), 777);
    size_t got = 0;
    ssize_t sent = send_and_check(file, 0, w->count, w->flags, &got);
    LOG("sent:%s", sent == (ssize_t)w->size ? "all" : err(sent));
    CHECK_INT(lseek(file, 0, SEEK_CUR), 777); /* the file's offset did not move */
    close(file);
    return 0;
}

static void test_sendfile_sends_a_whole_file_intact(void **state)
{
    (void)state;
    size_t size = 5 * MIB + 12345; /* several chunks, and an odd end */
    struct whole to_end = {size, 0, 0}, counted = {size, size, 0};
    assert_int_equal(run(main_sendfile_whole, &to_end, NULL), 0);
    assert_log("sent:all");
    assert_int_equal(run(main_sendfile_whole, &counted, NULL), 0);
    assert_log("sent:all");
    struct whole small = {1001, 0, 0}, empty = {0, 0, 0};
    assert_int_equal(run(main_sendfile_whole, &small, NULL), 0);
    assert_log("sent:all");
    assert_int_equal(run(main_sendfile_whole, &empty, NULL), 0);
    assert_log("sent:all");
}

static void test_sendfile_without_fallback_is_zero_copy_or_enotsup(void **state)
{
    (void)state;
    struct whole w = {3 * MIB + 1, 0, ASYNCIO_SENDFILE_NO_FALLBACK};
    assert_int_equal(run(main_sendfile_whole, &w, NULL), 0);
    /* Nothing was sent where there is no sendfile: the peer saw its end
     * only (send_and_check checks it got what sendfile says it sent). */
    assert_log(HAS_ZERO_COPY ? "sent:all" : "sent:ENOTSUP");
}

/* Ranges: from the middle, past the end, at and after the end. */
static int main_sendfile_ranges(void *arg, void **result)
{
    (void)result;
    int flags = (int)(intptr_t)arg;
    enum { SIZE = 100000 };
    int file = tu_temp_file(SIZE);
    CHECK_INT(lseek(file, 123, SEEK_SET), 123);
    static const struct {
        off_t offset;
        size_t count;
    } cases[] = {
        {1000, 5000},       /* in the middle */
        {1, SIZE - 2},      /* all but the first and last bytes */
        {90000, 50000},     /* past the end: what there is */
        {0, SIZE + 1},      /* one past the end */
        {0, SIZE},          /* exactly */
        {0, SIZE_MAX},      /* as much as can be asked */
        {SIZE - 1, 0},      /* to the end: the last byte */
        {31337, 0},         /* to the end, from the middle */
        {SIZE, 10},         /* at the end */
        {SIZE, 0},
        {SIZE + 4096, 10},  /* after it */
        {SIZE + 4096, 0},
        {(off_t)1 << 40, 10}, /* far after it */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = 0;
        ssize_t sent = send_and_check(file, cases[i].offset, cases[i].count, flags, &got);
        LOG("%lld", (long long)sent);
    }
    CHECK_INT(lseek(file, 0, SEEK_CUR), 123);
    close(file);
    return 0;
}

#define RANGES_LOG "5000 99998 10000 100000 100000 100000 1 68663 0 0 0 0 0"

static void test_sendfile_sends_ranges_and_stops_at_the_end_of_the_file(void **state)
{
    (void)state;
    assert_int_equal(run(main_sendfile_ranges, (void *)(intptr_t)0, NULL), 0);
    assert_log(RANGES_LOG);
    if (HAS_ZERO_COPY) {
        assert_int_equal(run(main_sendfile_ranges,
                             (void *)(intptr_t)ASYNCIO_SENDFILE_NO_FALLBACK, NULL), 0);
        assert_log(RANGES_LOG);
    }
}

/* Two tasks send from one fd at once, each its own range. */
struct sender {
    int fd, file;
    off_t offset;
    size_t count;
    ssize_t sent;
    int *running;  /* senders that have begun and not ended */
    bool overlapped; /* the other was running when this one ended */
};

static int sendfile_task(void *arg, void **result)
{
    (void)result;
    struct sender *s = arg;
    ++*s->running;
    s->sent = asyncio_sock_sendfile(s->fd, s->file, s->offset, s->count, 0);
    s->overlapped = *s->running == 2;
    --*s->running;
    CHECK_INT(shutdown(s->fd, SHUT_WR), 0);
    return 0;
}

static int sendfile_result(void *arg, void **result)
{
    (void)result;
    struct sender *s = arg;
    s->sent = asyncio_sock_sendfile(s->fd, s->file, s->offset, s->count, 0);
    return 0;
}

static int main_sendfile_same_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t size = 6 * MIB;
    int file = tu_temp_file(size);
    CHECK_INT(lseek(file, 5, SEEK_SET), 5);
    int running = 0;
    int peer[2];
    struct sender s[2] = {
        {.offset = 0, .count = 4 * MIB, .running = &running},
        {.offset = 2 * MIB + 1, .count = 4 * MIB, .running = &running}, /* 1 short */
    };
    struct file_sink k[2];
    asyncio_task_t *st[2], *rt[2];
    for (int i = 0; i < 2; i++) {
        s[i].fd = tcp_conn(&peer[i]);
        s[i].file = file;
        k[i] = (struct file_sink){.fd = peer[i], .start = (size_t)s[i].offset};
        rt[i] = tu_spawn(check_to_end, &k[i], "peer");
    }
    for (int i = 0; i < 2; i++)
        st[i] = tu_spawn(sendfile_task, &s[i], "sender");
    for (int i = 0; i < 2; i++) {
        CHECK_INT(asyncio_await(st[i], NULL), 0);
        CHECK_INT(asyncio_await(rt[i], NULL), 0);
        asyncio_task_release(st[i]);
        asyncio_task_release(rt[i]);
    }
    CHECK_INT(s[0].sent, 4 * MIB);
    CHECK_INT(s[1].sent, 4 * MIB - 1);
    CHECK(s[0].overlapped || s[1].overlapped); /* they did run at once */
    for (int i = 0; i < 2; i++) {
        CHECK(!k[i].bad);
        CHECK_INT(k[i].total, s[i].sent);
        CHECK_INT(k[i].end, 0);
        asyncio_close(s[i].fd);
        asyncio_close(peer[i]);
    }
    CHECK_INT(lseek(file, 0, SEEK_CUR), 5);
    close(file);
    return 0;
}

static void test_two_tasks_sendfile_from_one_fd_at_once(void **state)
{
    (void)state;
    assert_int_equal(run(main_sendfile_same_fd, NULL, NULL), 0);
}

static void cb_sendfile(void *arg)
{
    int *fds = arg;
    LOG("callback:%s", err(asyncio_sock_sendfile(fds[0], fds[1], 0, 0, 0)));
}

static int main_sendfile_bad_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer, fd = tcp_conn(&peer);
    int file = tu_temp_file(1000);
    int p[2];
    CHECK_INT(pipe(p), 0);
    CHECK_INT(write(p[1], "data", 4), 4);
    LOG("file-1:%s", err(asyncio_sock_sendfile(fd, -1, 0, 0, 0)));
    int closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(closed);
    LOG("closed:%s", err(asyncio_sock_sendfile(fd, closed, 0, 10, 0)));
    LOG("offset:%s", err(asyncio_sock_sendfile(fd, file, -1, 10, 0)));
    LOG("flags:%s", err(asyncio_sock_sendfile(fd, file, 0, 10, 0x2)));
    LOG("flags:%s", err(asyncio_sock_sendfile(fd, file, 0, 10, -1)));
    LOG("pipe:%s", err(asyncio_sock_sendfile(fd, p[0], 0, 4, 0)));
    LOG("socket:%s", err(asyncio_sock_sendfile(fd, peer, 0, 4, 0)));
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dir >= 0);
    LOG("dir:%s", err(asyncio_sock_sendfile(fd, dir, 0, 4, 0)));
    LOG("dir:%s", err(asyncio_sock_sendfile(fd, dir, 0, 0, 0)));
    close(dir);
    char wpath[] = "/tmp/asyncio-sendfile-XXXXXX";
    int wfile = mkstemp(wpath);
    CHECK(wfile >= 0);
    CHECK_INT(write(wfile, "data", 4), 4);
    int wonly = open(wpath, O_WRONLY | O_CLOEXEC);
    unlink(wpath);
    close(wfile);
    LOG("write-only:%s", err(asyncio_sock_sendfile(fd, wonly, 0, 4, 0)));
    LOG("sock-1:%s", err(asyncio_sock_sendfile(-1, file, 0, 10, 0)));
    /* None of them sent a byte: the connection is as good as new. */
    CHECK_INT(asyncio_sock_sendfile(fd, file, 0, 0, 0), 1000);
    CHECK_INT(shutdown(fd, SHUT_WR), 0);
    struct file_sink k = {.fd = peer};
    CHECK_INT(check_to_end(&k, NULL), 0);
    CHECK_INT(k.total, 1000);
    CHECK(!k.bad);
    /* Outside a task. */
    int fds[2] = {fd, file};
    CHECK_INT(asyncio_call_soon(cb_sendfile, fds, NULL), 0);
    tu_yield(2);
    close(p[0]);
    close(p[1]);
    close(wonly);
    close(file);
    asyncio_close(fd);
    asyncio_close(peer);
    return 0;
}

static void test_sendfile_bad_input_and_calls_outside_a_task_get_error_codes(void **state)
{
    (void)state;
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char path[] = "/tmp/asyncio-sendfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "abc", 3), 3);
    assert_int_equal(asyncio_sock_sendfile(0, fd, 0, 0, 0), -EPERM); /* no loop */
    assert_int_equal(asyncio_sock_sendfile(0, fd, 0, 3, ASYNCIO_SENDFILE_NO_FALLBACK), -EPERM);
    close(fd);
    close(file);
    assert_int_equal(run(main_sendfile_bad_input, NULL, NULL), 0);
    assert_log("file-1:EBADF closed:EBADF offset:EINVAL flags:EINVAL flags:EINVAL "
               "pipe:ESPIPE socket:ESPIPE dir:EISDIR dir:EISDIR write-only:EBADF sock-1:EBADF "
               "callback:EPERM");
}

/* The peer is gone (closed before, or while reading): -EPIPE or
 * -ECONNRESET, in a child whose SIGPIPE has its default action. */
static int main_sendfile_peer_gone(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int file = tu_temp_file(8 * MIB);
    for (int reset = 0; reset < 2; reset++) {
        /* Gone before: closed, or reset. */
        int peer, fd = tcp_conn(&peer);
        if (reset) {
            struct linger lg = {1, 0};
            CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        }
        asyncio_close(peer);
        ssize_t rc = asyncio_sock_sendfile(fd, file, 0, 0, 0);
        LOG("before:%s", rc == -EPIPE || rc == -ECONNRESET ? "gone" : err(rc));
        asyncio_close(fd);
    }
    /* Gone while reading: after the first 64 KiB. */
    int peer, fd = tcp_conn(&peer);
    small_buffers(fd, peer);
    static char buf[65536];
    struct sender s = {.fd = fd, .file = file};
    asyncio_task_t *st = tu_spawn(sendfile_result, &s, "sender");
    tu_until_waiting(st);
    size_t got = 0;
    while (got < 65536) {
        ssize_t n = asyncio_sock_recv(peer, buf, sizeof buf);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    asyncio_close(peer);
    CHECK_INT(asyncio_await(st, NULL), 0);
    asyncio_task_release(st);
    LOG("while:%s", s.sent == -EPIPE || s.sent == -ECONNRESET ? "gone" : err(s.sent));
    asyncio_close(fd);
    close(file);
    return 0;
}

/* The same where the program ignores SIGPIPE, as servers do: sendfile
 * then runs without the guard, with the same results; the disposition is
 * the program's still. */
static int main_sendfile_peer_gone_ignored(void *arg, void **result)
{
    signal(SIGPIPE, SIG_IGN);
    int rc = main_sendfile_peer_gone(arg, result);
    struct sigaction sa;
    CHECK_INT(sigaction(SIGPIPE, NULL, &sa), 0);
    LOG("%s", sa.sa_handler == SIG_IGN ? "ignored" : "changed");
    signal(SIGPIPE, SIG_DFL);
    return rc;
}

static void test_sendfile_to_a_peer_that_is_gone_gives_epipe_not_sigpipe(void **state)
{
    (void)state;
    tu_assert_no_sigpipe(main_sendfile_peer_gone, "before:gone before:gone while:gone");
    tu_assert_no_sigpipe(main_sendfile_peer_gone_ignored,
                         "before:gone before:gone while:gone ignored");
}

/* A peer that does not read: the sender waits; cancelled, or its scope
 * ends, it returns, and the sockets close as any do. */
static int sendfile_logged(void *arg, void **result)
{
    (void)result;
    struct sender *s = arg;
    s->sent = asyncio_sock_sendfile(s->fd, s->file, s->offset, s->count, 0);
    LOG("sendfile:%s", err(s->sent));
    return 0;
}

static int main_sendfile_interrupted(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int file = tu_temp_file(8 * MIB);
    CHECK_INT(lseek(file, 9, SEEK_SET), 9);
    /* Cancelled. */
    int peer, fd = tcp_conn(&peer);
    small_buffers(fd, peer);
    struct sender s = {.fd = fd, .file = file};
    asyncio_task_t *t = tu_spawn(sendfile_logged, &s, "sender");
    tu_until_waiting(t);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_close(fd), 0);
    CHECK_INT(asyncio_close(peer), 0);
    /* Timed out, in the caller's scope. */
    fd = tcp_conn(&peer);
    small_buffers(fd, peer);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.05), 0);
    LOG("sendfile:%s", err(asyncio_sock_sendfile(fd, file, 0, 0, 0)));
    LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_close(fd), 0);
    CHECK_INT(asyncio_close(peer), 0);
    /* Closed (asyncio_close() by another task) while it waits. */
    fd = tcp_conn(&peer);
    small_buffers(fd, peer);
    s = (struct sender){.fd = fd, .file = file};
    t = tu_spawn(sendfile_logged, &s, "sender");
    tu_until_waiting(t);
    CHECK_INT(asyncio_close(fd), 0);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_close(peer), 0);
    CHECK_INT(lseek(file, 0, SEEK_CUR), 9);
    close(file);
    return 0;
}

static void test_sendfile_cancelled_timed_out_or_closed_while_it_waits(void **state)
{
    (void)state;
    int fds = tu_dir_entries("/proc/self/fd");
    assert_int_equal(run(main_sendfile_interrupted, NULL, NULL), 0);
    assert_log("sendfile:ECANCELED sendfile:ETIMEDOUT exit:ETIMEDOUT sendfile:EBADF");
    assert_int_equal(tu_dir_entries("/proc/self/fd"), fds); /* none left open */
}

/* Fairness: a peer that keeps up (a thread reading as fast as it can), so
 * that the sender seldom if ever waits; another task still runs before
 * sendfile returns. */
struct thread_sink {
    int fd;
    size_t total;
    bool bad;
};

static void *thread_reader(void *arg)
{
    struct thread_sink *k = arg;
    static char buf[1 << 18];
    for (;;) {
        ssize_t n = recv(k->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] != tu_pattern(k->total + (size_t)i))
                k->bad = true;
        k->total += (size_t)n;
    }
    return NULL;
}

static int main_sendfile_fair(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t size = 32 * MIB;
    int file = tu_temp_file(size);
    int peer, fd = tcp_conn(&peer);
    int fl = fcntl(peer, F_GETFL);
    CHECK_INT(fcntl(peer, F_SETFL, fl & ~O_NONBLOCK), 0); /* the thread blocks */
    struct thread_sink k = {.fd = peer};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, thread_reader, &k), 0);
    asyncio_task_t *t = tu_spawn(ticker, NULL, "ticker");
    tu_yield(1);
    g_ticks = 0;
    CHECK_INT(asyncio_sock_sendfile(fd, file, 0, 0, 0), size);
    long ticks = g_ticks;
    CHECK(ticks >= 8); /* a 2 MiB chunk at a time, at most, then others run */
    CHECK_INT(shutdown(fd, SHUT_WR), 0);
    CHECK_INT(pthread_join(th, NULL), 0); /* the end is on its way */
    CHECK_INT(k.total, size);
    CHECK(!k.bad);
    asyncio_task_cancel(t);
    asyncio_task_release(t);
    asyncio_close(fd);
    asyncio_close(peer);
    close(file);
    return 0;
}

static void test_sendfile_of_a_large_file_lets_other_tasks_run(void **state)
{
    (void)state;
    assert_int_equal(run(main_sendfile_fair, NULL, NULL), 0);
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
        cmocka_unit_test(test_unix_connect_waits_while_the_backlog_is_full),
        cmocka_unit_test(test_always_ready_socket_still_yields),
        cmocka_unit_test(test_misuse_gets_error_codes),
        /* asyncio_sock_sendfile() */
        cmocka_unit_test(test_sendfile_sends_a_whole_file_intact),
        cmocka_unit_test(test_sendfile_without_fallback_is_zero_copy_or_enotsup),
        cmocka_unit_test(test_sendfile_sends_ranges_and_stops_at_the_end_of_the_file),
        cmocka_unit_test(test_two_tasks_sendfile_from_one_fd_at_once),
        cmocka_unit_test(test_sendfile_bad_input_and_calls_outside_a_task_get_error_codes),
        cmocka_unit_test(test_sendfile_to_a_peer_that_is_gone_gives_epipe_not_sigpipe),
        cmocka_unit_test(test_sendfile_cancelled_timed_out_or_closed_while_it_waits),
        cmocka_unit_test(test_sendfile_of_a_large_file_lets_other_tasks_run),
    };
    return tu_run_group_tests_name("sock", tests, NULL, NULL);
}
