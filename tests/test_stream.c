/*
 * Buffered streams over socketpairs and TCP on 127.0.0.1 (CPython:
 * test_streams.py). The far end of a connection is usually a raw fd driven
 * with the asyncio_sock_* calls, so what the stream sends and receives is
 * seen byte for byte.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG (4 * 1024 * 1024)

/* tu_err() and the codes streams add. */
static const char *err(long long rc)
{
    switch (rc) {
    case -ECONNRESET: return "ECONNRESET";
    case -ENOBUFS: return "ENOBUFS";
    case -EMSGSIZE: return "EMSGSIZE";
    case -EEXIST: return "EEXIST";
    case -ENOTSOCK: return "ENOTSOCK";
    case -ENOTSUP: return "ENOTSUP";
    case -ESPIPE: return "ESPIPE";
    case -EISDIR: return "EISDIR";
    default: return tu_err(rc);
    }
}

/* tu_run() with every wait of the test bounded (TU_TEST_TIMEOUT): a peer
 * that never answers fails the CHECK of the call that waited for it. */
static int run(asyncio_fn fn, void *arg, void **result)
{
    return tu_run_bounded(fn, arg, result, TU_TEST_TIMEOUT);
}

static char *pattern_buf(size_t n)
{
    char *b = malloc(n);
    if (!b) {
        tu_fail_at(__FILE__, __LINE__, "malloc(%zu)", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        b[i] = (char)tu_pattern(i);
    return b;
}

/* A stream on one end of a socketpair; the other end, raw, in *peer. */
static asyncio_stream_t *pair(int *peer, size_t limit)
{
    int sv[2];
    asyncio_stream_t *s = NULL;
    *peer = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        tu_fail_at(__FILE__, __LINE__, "socketpair: %s", strerror(errno));
        return NULL;
    }
    int rc = asyncio_stream_open(&s, sv[0], limit);
    if (rc < 0) {
        tu_fail_at(__FILE__, __LINE__, "asyncio_stream_open: %s", err(rc));
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    *peer = sv[1];
    return s;
}

/* A stream on the client end of a TCP connection on 127.0.0.1; the
 * accepted end, raw, in *peer. */
static asyncio_stream_t *tcp_pair(int *peer)
{
    *peer = -1;
    int lfd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    int cfd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    asyncio_stream_t *s = NULL;
    CHECK(lfd >= 0 && cfd >= 0);
    CHECK_INT(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(listen(lfd, 1), 0);
    CHECK_INT(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    CHECK_INT(asyncio_sock_connect(cfd, (struct sockaddr *)&a, sizeof a), 0);
    *peer = asyncio_sock_accept(lfd, NULL, NULL);
    CHECK(*peer >= 0);
    asyncio_close(lfd);
    CHECK_INT(asyncio_stream_open(&s, cfd, 0), 0);
    return s;
}

/* Write parts to fd one at a time, letting the loop run between them, so
 * the reader sees each arrive on its own. */
struct pieces {
    int fd;
    const char *part[8];
    bool close_after;
};

static int write_pieces(void *arg, void **result)
{
    (void)result;
    struct pieces *p = arg;
    for (int i = 0; i < 8 && p->part[i]; i++) {
        size_t n = strlen(p->part[i]);
        CHECK_INT(asyncio_sock_sendall(p->fd, p->part[i], n), n);
        CHECK_INT(asyncio_sleep(0.001), 0);
    }
    if (p->close_after)
        CHECK_INT(shutdown(p->fd, SHUT_WR), 0);
    return 0;
}

/* Read fd to its end (chunk bytes at a time, yielding after each if slow),
 * checking the bytes follow tu_pattern(). */
struct sink {
    int fd;
    size_t chunk;
    bool slow;
    size_t total;
    bool bad;
    int end;
};

static int read_to_end(void *arg, void **result)
{
    (void)result;
    struct sink *k = arg;
    char *buf = malloc(k->chunk);
    CHECK(buf != NULL);
    for (;;) {
        ssize_t n = asyncio_sock_recv(k->fd, buf, k->chunk);
        if (n <= 0) {
            k->end = (int)n;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] != tu_pattern(k->total + (size_t)i))
                k->bad = true;
        k->total += (size_t)n;
        if (k->slow && asyncio_sleep(0) < 0)
            break;
    }
    free(buf);
    return 0;
}

static void close_fd(int fd)
{
    if (fd >= 0)
        CHECK_INT(asyncio_close(fd), 0);
}

/* ---- reading ------------------------------------------------------------- */

static int main_read_then_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char buf[64];
    CHECK_INT(asyncio_sock_sendall(peer, "hello", 5), 5);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    /* Less than asked for: what is there, not a wait for more. */
    CHECK_INT(asyncio_sock_sendall(peer, "abcdef", 6), 6);
    CHECK_INT(asyncio_stream_read(s, buf, 4), 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);
    CHECK_INT(asyncio_stream_at_eof(s), 0);
    close_fd(peer);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 2);
    CHECK(memcmp(buf, "ef", 2) == 0);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0); /* and stays there */
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_read_returns_what_is_there_and_0_at_eof(void **state)
{
    (void)state;
    assert_int_equal(run(main_read_then_eof, NULL, NULL), 0);
}

static int main_read_zero(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char buf[8];
    /* Nothing there and the peer idle: n 0 must not wait. */
    CHECK_INT(asyncio_stream_read(s, buf, 0), 0);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 0), 0);
    CHECK_INT(asyncio_sock_sendall(peer, "xy", 2), 2);
    CHECK_INT(asyncio_stream_fill(s), 2);
    CHECK_INT(asyncio_stream_read(s, buf, 0), 0);
    CHECK_INT(asyncio_stream_peek(s, NULL), 2); /* took nothing */
    CHECK_INT(asyncio_stream_at_eof(s), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_read_of_0_bytes_returns_0_at_once(void **state)
{
    (void)state;
    assert_int_equal(run(main_read_zero, NULL, NULL), 0);
}

/* The header allows buf NULL when n is 0, with or without data there. */
static int main_read_zero_null(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    CHECK_INT(asyncio_stream_read(s, NULL, 0), 0);
    CHECK_INT(asyncio_stream_readexactly(s, NULL, 0), 0);
    CHECK_INT(asyncio_sock_sendall(peer, "xy", 2), 2);
    CHECK_INT(asyncio_stream_fill(s), 2);
    CHECK_INT(asyncio_stream_read(s, NULL, 0), 0);
    CHECK_INT(asyncio_stream_peek(s, NULL), 2);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_read_of_0_bytes_into_a_null_buffer_returns_0(void **state)
{
    (void)state;
    assert_int_equal(run(main_read_zero_null, NULL, NULL), 0);
}

static int main_readexactly(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    struct pieces p = {.fd = peer, .part = {"ab", "cde", "fgh"}};
    asyncio_task_t *w = tu_spawn(write_pieces, &p, "writer");
    char buf[16] = {0};
    CHECK_INT(asyncio_stream_readexactly(s, buf, 6), 6);
    CHECK_STR(buf, "abcdef");
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 2);
    CHECK_STR(buf, "gh");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readexactly_waits_for_exactly_n_bytes(void **state)
{
    (void)state;
    assert_int_equal(run(main_readexactly, NULL, NULL), 0);
}

static int main_readexactly_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char buf[16] = {0};
    CHECK_INT(asyncio_sock_sendall(peer, "abc", 3), 3);
    close_fd(peer);
    /* asyncio's IncompleteReadError: the partial bytes, in buf. */
    CHECK_INT(asyncio_stream_readexactly(s, buf, 10), 3);
    CHECK_STR(buf, "abc");
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 10), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_readexactly_at_early_eof_returns_the_partial_count(void **state)
{
    (void)state;
    assert_int_equal(run(main_readexactly_eof, NULL, NULL), 0);
}

struct exact {
    asyncio_stream_t *s;
    char *buf;
    size_t n;
};

static int exact_reader(void *arg, void **result)
{
    (void)result;
    struct exact *e = arg;
    LOG("readexactly:%s", err(asyncio_stream_readexactly(e->s, e->buf, e->n)));
    return 0;
}

static int main_readexactly_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char buf[16] = {0};
    struct exact e = {s, buf, 10};
    asyncio_task_t *r = tu_spawn(exact_reader, &e, "reader");
    CHECK_INT(asyncio_sock_sendall(peer, "0123", 4), 4);
    /* Until the reader has taken the 4 bytes out of the stream. */
    for (int i = 0; i < 100 && buf[3] != '3'; i++)
        tu_yield(1);
    CHECK_INT(asyncio_stream_peek(s, NULL), 0);
    CHECK_INT(asyncio_task_cancel(r), 1);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    /* They are back: a later read gets every byte, in order. */
    const void *data;
    CHECK_INT(asyncio_stream_peek(s, &data), 4);
    CHECK(data && memcmp(data, "0123", 4) == 0);
    CHECK_INT(asyncio_sock_sendall(peer, "456789", 6), 6);
    char got[16] = {0};
    CHECK_INT(asyncio_stream_readexactly(s, got, 10), 10);
    CHECK_STR(got, "0123456789");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readexactly_cancelled_part_way_puts_the_bytes_back(void **state)
{
    (void)state;
    assert_int_equal(run(main_readexactly_cancelled, NULL, NULL), 0);
    assert_log("readexactly:ECANCELED");
}

/* Half of n bytes come, then the scope ends the wait; the rest come after. */
static int main_readexactly_timed_out(void *arg, void **result)
{
    (void)result;
    size_t n = (size_t)(uintptr_t)arg, half = n / 2;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(n), *got = calloc(1, n);
    CHECK(got != NULL);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.05), 0);
    ssize_t sent = 0; /* as much of half as the socket holds */
    while ((size_t)sent < half) {
        ssize_t k = send(peer, data + sent, half - (size_t)sent, MSG_DONTWAIT);
        if (k <= 0)
            break;
        sent += k;
    }
    LOG("readexactly:%s", err(asyncio_stream_readexactly(s, got, n)));
    LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_stream_peek(s, NULL), sent);
    CHECK_INT(asyncio_sock_sendall(peer, data + sent, n - (size_t)sent), n - (size_t)sent);
    memset(got, 0, n);
    CHECK_INT(asyncio_stream_readexactly(s, got, n), n);
    CHECK(memcmp(got, data, n) == 0);
    free(data);
    free(got);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readexactly_timed_out_part_way_puts_the_bytes_back(void **state)
{
    (void)state;
    /* Small: through the stream's buffer; large: straight into the
     * caller's memory. */
    assert_int_equal(run(main_readexactly_timed_out, (void *)(uintptr_t)10, NULL), 0);
    assert_log("readexactly:ETIMEDOUT exit:ETIMEDOUT");
    assert_int_equal(run(main_readexactly_timed_out, (void *)(uintptr_t)200000, NULL), 0);
    assert_log("readexactly:ETIMEDOUT exit:ETIMEDOUT");
    /* One byte: half is none, the wait ends with nothing to put back. */
    assert_int_equal(run(main_readexactly_timed_out, (void *)(uintptr_t)1, NULL), 0);
    assert_log("readexactly:ETIMEDOUT exit:ETIMEDOUT");
}

static int main_separator_in_pieces(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    /* "\r\n\r\n" comes a byte or two at a time, with false starts. */
    struct pieces p = {.fd = peer,
                       .part = {"GET / HTTP/1.0\r", "\nHost: x\r", "\n", "\r", "\nbody"}};
    asyncio_task_t *w = tu_spawn(write_pieces, &p, "writer");
    const char *head = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    char buf[64] = {0};
    ssize_t n = asyncio_stream_readuntil(s, "\r\n\r\n", 4, buf, sizeof buf);
    CHECK_INT(n, strlen(head));
    CHECK_STR(buf, head);
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 4), 4);
    CHECK_STR(buf, "body");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readuntil_finds_a_separator_that_arrives_in_pieces(void **state)
{
    (void)state;
    assert_int_equal(run(main_separator_in_pieces, NULL, NULL), 0);
}

static int main_readline_lines(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    struct pieces p = {.fd = peer, .part = {"one\ntw", "o\n\nthr", "ee\n"}, .close_after = true};
    asyncio_task_t *w = tu_spawn(write_pieces, &p, "writer");
    char buf[16];
    ssize_t n;
    while ((n = asyncio_stream_readline(s, buf, sizeof buf)) > 0)
        LOG("%.*s", (int)n - 1, buf);
    LOG("end:%s", err(n));
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readline_returns_each_line_with_its_newline(void **state)
{
    (void)state;
    assert_int_equal(run(main_readline_lines, NULL, NULL), 0);
    assert_log("one two  three end:0");
}

static int main_separator_overlapping(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    /* "aab" in "aaab": the match starts at the second 'a', after a false
     * start at the first. */
    struct pieces p = {.fd = peer, .part = {"xa", "a", "ab", "aab"}};
    asyncio_task_t *w = tu_spawn(write_pieces, &p, "writer");
    char buf[16] = {0};
    CHECK_INT(asyncio_stream_readuntil(s, "aab", 3, buf, sizeof buf), 5);
    CHECK_STR(buf, "xaaab");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readuntil(s, "aab", 3, buf, sizeof buf), 3);
    CHECK_STR(buf, "aab");
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readuntil_finds_a_separator_after_a_false_start(void **state)
{
    (void)state;
    assert_int_equal(run(main_separator_overlapping, NULL, NULL), 0);
}

static int main_separator_at_edges(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 16);
    char buf[64] = {0};
    /* At the very front: an empty line. */
    CHECK_INT(asyncio_sock_sendall(peer, "\r\n", 2), 2);
    CHECK_INT(asyncio_stream_readuntil(s, "\r\n", 2, buf, sizeof buf), 2);
    /* Ending exactly at the limit: the whole buffer is one line. */
    CHECK_INT(asyncio_sock_sendall(peer, "0123456789abcd\r\n", 16), 16);
    CHECK_INT(asyncio_stream_readuntil(s, "\r\n", 2, buf, sizeof buf), 16);
    CHECK(memcmp(buf, "0123456789abcd\r\n", 16) == 0);
    /* Straddling the limit: "\r" is its last byte, "\n" does not fit. */
    CHECK_INT(asyncio_sock_sendall(peer, "0123456789abcde\r\n", 17), 17);
    CHECK_INT(asyncio_stream_readuntil(s, "\r\n", 2, buf, sizeof buf), -ENOBUFS);
    CHECK_INT(asyncio_stream_peek(s, NULL), 16);
    CHECK_INT(asyncio_stream_set_limit(s, 32), 0);
    CHECK_INT(asyncio_stream_readuntil(s, "\r\n", 2, buf, sizeof buf), 17);
    CHECK(memcmp(buf, "0123456789abcde\r\n", 17) == 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readuntil_separator_at_the_edges_of_the_buffer(void **state)
{
    (void)state;
    assert_int_equal(run(main_separator_at_edges, NULL, NULL), 0);
}

static int main_line_over_limit(void *arg, void **result)
{
    (void)result;
    bool by_consume = arg != NULL;
    int peer;
    asyncio_stream_t *s = pair(&peer, 8);
    CHECK_INT(asyncio_sock_sendall(peer, "0123456789\nnext\n", 16), 16);
    char buf[64] = {0};
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), -ENOBUFS);
    /* asyncio's LimitOverrunError: nothing was taken. */
    const void *data;
    CHECK_INT(asyncio_stream_peek(s, &data), 8);
    CHECK(data && memcmp(data, "01234567", 8) == 0);
    if (by_consume) {
        CHECK_INT(asyncio_stream_consume(s, 8), 0);
        CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 3);
        CHECK(memcmp(buf, "89\n", 3) == 0);
    } else {
        CHECK_INT(asyncio_stream_set_limit(s, 64), 0);
        CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 11);
        CHECK(memcmp(buf, "0123456789\n", 11) == 0);
    }
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "next\n", 5) == 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_line_over_the_limit_gives_enobufs_and_keeps_the_data(void **state)
{
    (void)state;
    assert_int_equal(run(main_line_over_limit, NULL, NULL), 0);      /* larger limit */
    assert_int_equal(run(main_line_over_limit, "consume", NULL), 0); /* skip it */
}

/* A buffer allocated under a limit of a few bytes grows once the limit is
 * raised (found by tests/fuzz/fuzz_stream: it stayed at 2 bytes, and every
 * read after said -ENOBUFS with 2 bytes buffered). */
static int main_limit_raised_from_tiny(void *arg, void **result)
{
    (void)result;
    size_t tiny = (size_t)(uintptr_t)arg;
    int peer;
    asyncio_stream_t *s = pair(&peer, tiny);
    CHECK_INT(asyncio_sock_sendall(peer, "abcdefgh\nrest", 13), 13);
    char buf[64] = {0};
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), -ENOBUFS);
    CHECK_INT(asyncio_stream_peek(s, NULL), (long long)tiny);
    CHECK_INT(asyncio_stream_set_limit(s, 64), 0);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 9);
    CHECK(memcmp(buf, "abcdefgh\n", 9) == 0);
    close_fd(peer);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 4), 4);
    CHECK(memcmp(buf, "rest", 4) == 0);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_a_buffer_made_under_a_tiny_limit_grows_when_it_is_raised(void **state)
{
    (void)state;
    for (uintptr_t tiny = 1; tiny <= 4; tiny++)
        assert_int_equal(run(main_limit_raised_from_tiny, (void *)tiny, NULL), 0);
}

static int main_cap_too_small(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    CHECK_INT(asyncio_sock_sendall(peer, "hello world\nrest", 16), 16);
    char buf[64] = {0};
    CHECK_INT(asyncio_stream_readline(s, buf, 11), -EMSGSIZE);
    CHECK_INT(asyncio_stream_peek(s, NULL), 16);
    CHECK_INT(asyncio_stream_readline(s, buf, 12), 12);
    CHECK(memcmp(buf, "hello world\n", 12) == 0);
    /* At the end too: what is left must fit. */
    close_fd(peer);
    CHECK_INT(asyncio_stream_readline(s, buf, 3), -EMSGSIZE);
    CHECK_INT(asyncio_stream_peek(s, NULL), 4);
    CHECK_INT(asyncio_stream_readline(s, buf, 4), 4);
    CHECK(memcmp(buf, "rest", 4) == 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_readline_into_too_small_a_buffer_gives_emsgsize_and_keeps_the_data(void **state)
{
    (void)state;
    assert_int_equal(run(main_cap_too_small, NULL, NULL), 0);
}

static int main_readuntil_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    struct pieces p = {.fd = peer, .part = {"line\nno sep", "arator"}, .close_after = true};
    asyncio_task_t *w = tu_spawn(write_pieces, &p, "writer");
    char buf[64] = {0};
    CHECK_INT(asyncio_stream_readuntil(s, "\n", 1, buf, sizeof buf), 5);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readuntil(s, "\n", 1, buf, sizeof buf), 12);
    CHECK_STR(buf, "no separator");
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_readuntil(s, "\n", 1, buf, sizeof buf), 0);
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_readuntil_at_eof_returns_the_rest_without_separator(void **state)
{
    (void)state;
    assert_int_equal(run(main_readuntil_eof, NULL, NULL), 0);
}

static int main_at_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    CHECK_INT(asyncio_stream_at_eof(s), 0);
    CHECK_INT(asyncio_sock_sendall(peer, "x", 1), 1);
    close_fd(peer);
    CHECK_INT(asyncio_stream_fill(s), 1);
    CHECK_INT(asyncio_stream_fill(s), 0); /* the end came, "x" is unread */
    CHECK_INT(asyncio_stream_at_eof(s), 0);
    char c;
    CHECK_INT(asyncio_stream_read(s, &c, 1), 1);
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_at_eof_only_once_the_end_came_and_everything_was_read(void **state)
{
    (void)state;
    assert_int_equal(run(main_at_eof, NULL, NULL), 0);
}

static int main_peek_fill_consume(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 8);
    const void *data = "not null";
    CHECK_INT(asyncio_stream_peek(s, &data), 0);
    CHECK_INT(asyncio_stream_consume(s, 1), -EINVAL);
    CHECK_INT(asyncio_sock_sendall(peer, "abc", 3), 3);
    CHECK_INT(asyncio_stream_fill(s), 3);
    CHECK_INT(asyncio_stream_peek(s, &data), 3);
    CHECK(memcmp(data, "abc", 3) == 0);
    CHECK_INT(asyncio_stream_consume(s, 2), 0);
    CHECK_INT(asyncio_stream_peek(s, &data), 1);
    CHECK(memcmp(data, "c", 1) == 0);
    CHECK_INT(asyncio_stream_consume(s, 2), -EINVAL);
    /* fill adds to what is there (in one read or more), up to the limit. */
    CHECK_INT(asyncio_sock_sendall(peer, "defghijkl", 9), 9);
    ssize_t n = 0;
    for (int i = 0; i < 8 && n >= 0; i++)
        n = asyncio_stream_fill(s);
    CHECK_INT(n, -ENOBUFS);
    CHECK_INT(asyncio_stream_peek(s, &data), 8);
    CHECK(memcmp(data, "cdefghij", 8) == 0);
    CHECK_INT(asyncio_stream_set_limit(s, 4), -EINVAL); /* holds more */
    CHECK_INT(asyncio_stream_consume(s, 8), 0);
    CHECK_INT(asyncio_stream_fill(s), 2);
    CHECK_INT(asyncio_stream_consume(s, 2), 0);
    close_fd(peer);
    CHECK_INT(asyncio_stream_fill(s), 0);
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_peek_fill_and_consume_parse_in_place(void **state)
{
    (void)state;
    assert_int_equal(run(main_peek_fill_consume, NULL, NULL), 0);
}

static int main_tiny_limit(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 3);
    CHECK_INT(asyncio_sock_sendall(peer, "a\nbc\n", 5), 5);
    char buf[8] = {0};
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 2);
    /* "bc\n" is as long as the limit: it fits once "a\n" is gone. */
    LOG("readline:%s", err(asyncio_stream_readline(s, buf, sizeof buf)));
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_line_as_long_as_a_tiny_limit_fits(void **state)
{
    (void)state;
    assert_int_equal(run(main_tiny_limit, NULL, NULL), 0);
    assert_log("readline:3");
}

static int blocked_read(void *arg, void **result)
{
    (void)result;
    char buf[16] = {0};
    ssize_t n = asyncio_stream_read(arg, buf, sizeof buf);
    LOG("read:%s", n > 0 ? buf : err(n));
    return 0;
}

static int main_two_readers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    asyncio_task_t *r = tu_spawn(blocked_read, s, "first");
    tu_yield(1);
    char buf[8];
    LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
    LOG("readexactly:%s", err(asyncio_stream_readexactly(s, buf, 1)));
    LOG("readline:%s", err(asyncio_stream_readline(s, buf, sizeof buf)));
    LOG("fill:%s", err(asyncio_stream_fill(s)));
    CHECK_INT(asyncio_sock_sendall(peer, "data", 4), 4);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_second_task_reading_a_stream_gets_ebusy(void **state)
{
    (void)state;
    assert_int_equal(run(main_two_readers, NULL, NULL), 0);
    assert_log("read:EBUSY readexactly:EBUSY readline:EBUSY fill:EBUSY read:data");
}

static int main_idle_timeouts(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char buf[16];
    asyncio_timeout_t scope;
    /* asyncio_wait_for() takes a future: a plain call is timed by a scope. */
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("readline:%s", err(asyncio_stream_readline(s, buf, sizeof buf)));
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("fill:%s", err(asyncio_stream_fill(s)));
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    /* The stream goes on working. */
    CHECK_INT(asyncio_sock_sendall(peer, "ok\n", 3), 3);
    LOG("readline:%s", err(asyncio_stream_readline(s, buf, sizeof buf)));
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_reads_of_an_idle_peer_time_out_in_a_scope(void **state)
{
    (void)state;
    assert_int_equal(run(main_idle_timeouts, NULL, NULL), 0);
    assert_log("read:ETIMEDOUT readline:ETIMEDOUT fill:ETIMEDOUT readline:3");
}

/* ---- writing ------------------------------------------------------------- */

static int main_write_then_read(void *arg, void **result)
{
    (void)result;
    int peer;
    asyncio_stream_t *s = arg ? tcp_pair(&peer) : pair(&peer, 0);
    CHECK_INT(asyncio_stream_write(s, "ping\n", 5), 0);
    char buf[16] = {0};
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 5);
    CHECK_STR(buf, "ping\n");
    CHECK_INT(asyncio_sock_sendall(peer, "pong\n", 5), 5);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 5);
    CHECK_STR(buf, "pong\n");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_write_then_read_on_the_peer(void **state)
{
    (void)state;
    assert_int_equal(run(main_write_then_read, NULL, NULL), 0);  /* socketpair */
    assert_int_equal(run(main_write_then_read, "tcp", NULL), 0); /* 127.0.0.1 */
}

static int main_coalesce(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(1000);
    for (int i = 0; i < 100; i++)
        CHECK_INT(asyncio_stream_write(s, data + 10 * i, 10), 0);
    CHECK_INT(asyncio_stream_write_buffer_size(s), 1000);
    struct iovec iov[3] = {{"a", 1}, {NULL, 0}, {"bc", 2}};
    CHECK_INT(asyncio_stream_writev(s, iov, 3), 0);
    /* Queued, not sent: the writes went out as one, at the next poll. */
    char buf[2048];
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 1003);
    CHECK(memcmp(buf, data, 1000) == 0 && memcmp(buf + 1000, "abc", 3) == 0);
    CHECK_INT(asyncio_stream_write_buffer_size(s), 0);
    free(data);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_small_writes_coalesce_into_one_in_order_send(void **state)
{
    (void)state;
    assert_int_equal(run(main_coalesce, NULL, NULL), 0);
}

static int main_water_marks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    CHECK(asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER);
    struct sink k = {.fd = peer, .chunk = 8192, .slow = true};
    asyncio_task_t *r = tu_spawn(read_to_end, &k, "slow peer");
    CHECK_INT(asyncio_stream_drain(s), 0);
    /* It waited for the peer, until the low water mark, not the end. */
    CHECK(k.total > 0 && k.total < BIG);
    CHECK(asyncio_stream_write_buffer_size(s) <= ASYNCIO_STREAM_LOW_WATER);
    /* At or below the high water mark: no wait at all. */
    size_t before = k.total;
    CHECK_INT(asyncio_stream_drain(s), 0);
    CHECK_INT(k.total, before);
    CHECK_INT(asyncio_stream_close(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(k.total, BIG);
    CHECK(!k.bad);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_drain_waits_above_high_water_until_low_water(void **state)
{
    (void)state;
    assert_int_equal(run(main_water_marks, NULL, NULL), 0);
}

static int main_buffer_limits(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(NULL, 0, 0), -EINVAL);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 10, 20), -EINVAL);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 0, 10), -EINVAL);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 100, 100), 0);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 0, 0), 0);
    /* high alone: low is high / 4, which drain then waits for. */
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 1 << 20, 0), 0);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    struct sink k = {.fd = peer, .chunk = 8192, .slow = true};
    asyncio_task_t *r = tu_spawn(read_to_end, &k, "slow peer");
    CHECK_INT(asyncio_stream_drain(s), 0);
    CHECK(asyncio_stream_write_buffer_size(s) <= (1 << 18));
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(k.total, BIG);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_write_buffer_limits_are_checked_and_used(void **state)
{
    (void)state;
    assert_int_equal(run(main_buffer_limits, NULL, NULL), 0);
}

static int drainer(void *arg, void **result)
{
    (void)result;
    LOG("drain:%s", err(asyncio_stream_drain(arg)));
    return 0;
}

static int main_drain_interrupted(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    size_t n = 1 << 20;
    char *data = pattern_buf(n);
    CHECK_INT(asyncio_stream_write(s, data, n - 3), 0);
    size_t queued = asyncio_stream_write_buffer_size(s);
    asyncio_task_t *d = tu_spawn(drainer, s, "drainer");
    tu_yield(2);
    CHECK_INT(asyncio_task_cancel(d), 1);
    CHECK_INT(asyncio_await(d, NULL), 0);
    asyncio_task_release(d);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("drain:%s", err(asyncio_stream_drain(s)));
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    /* Nothing was dropped: the peer gets every byte, then what follows. */
    CHECK_INT(asyncio_stream_write_buffer_size(s), queued);
    CHECK_INT(asyncio_stream_write(s, data + n - 3, 3), 0);
    struct sink k = {.fd = peer, .chunk = 65536};
    asyncio_task_t *r = tu_spawn(read_to_end, &k, "peer");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(k.total, n);
    CHECK(!k.bad);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_drain_cancelled_or_timed_out_keeps_the_bytes_queued(void **state)
{
    (void)state;
    assert_int_equal(run(main_drain_interrupted, NULL, NULL), 0);
    assert_log("drain:ECANCELED drain:ETIMEDOUT");
}

static int main_write_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    size_t n = 1 << 20;
    char *data = pattern_buf(n);
    CHECK_INT(asyncio_stream_write(s, data, n), 0);
    CHECK_INT(asyncio_stream_write_eof(s), 0);
    CHECK_INT(asyncio_stream_write_eof(s), 0); /* twice is harmless */
    LOG("write:%s", err(asyncio_stream_write(s, "x", 1)));
    struct iovec v = {"x", 1};
    LOG("writev:%s", err(asyncio_stream_writev(s, &v, 1)));
    /* The peer gets what was queued, then the end... */
    struct sink k = {.fd = peer, .chunk = 65536};
    CHECK_INT(read_to_end(&k, NULL), 0);
    CHECK_INT(k.total, n);
    CHECK_INT(k.end, 0);
    /* ...while this side still reads. */
    CHECK_INT(asyncio_sock_sendall(peer, "reply", 5), 5);
    char buf[8] = {0};
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK_STR(buf, "reply");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_write_eof_ends_the_peer_s_input_but_not_ours(void **state)
{
    (void)state;
    assert_int_equal(run(main_write_eof, NULL, NULL), 0);
    assert_log("write:EPIPE writev:EPIPE");
}

/* Write and drain until the connection reports the peer has gone. */
static int write_until_error(asyncio_stream_t *s)
{
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = asyncio_stream_write(s, "x", 1);
        if (rc == 0)
            rc = asyncio_stream_drain(s);
        if (rc == 0)
            CHECK_INT(asyncio_sleep(0.001), 0); /* the queue goes out */
    }
    return rc;
}

static int main_peer_gone(void *arg, void **result)
{
    (void)result;
    int peer;
    asyncio_stream_t *s = arg ? tcp_pair(&peer) : pair(&peer, 0);
    close_fd(peer);
    int rc = write_until_error(s);
    CHECK(rc == -EPIPE || rc == -ECONNRESET);
    /* The error sticks, for writes and drains alike. */
    CHECK_INT(asyncio_stream_write(s, "x", 1), rc);
    CHECK_INT(asyncio_stream_drain(s), rc);
    asyncio_stream_wait_closed(s);
    return 0;
}

/* A pipe's write end as a stream: writes arrive; once the reader is gone
 * they fail with -EPIPE, and the SIGPIPE write(2) raises is taken back. */
static int main_pipe_reader_gone(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int p[2];
    CHECK_INT(pipe2(p, O_CLOEXEC), 0);
    asyncio_stream_t *s = NULL;
    CHECK_INT(asyncio_stream_open(&s, p[1], 0), 0);
    if (!s)
        return -EIO;
    CHECK_INT(asyncio_stream_write(s, "hello", 5), 0);
    CHECK_INT(asyncio_stream_drain(s), 0);
    char buf[8] = {0};
    CHECK_INT(asyncio_wait_readable(p[0]), 0); /* the write goes out as the task waits */
    CHECK_INT(read(p[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    close_fd(p[0]);
    int rc = write_until_error(s);
    CHECK_INT(rc, -EPIPE);
    CHECK_INT(asyncio_stream_write(s, "x", 1), -EPIPE);
    asyncio_stream_wait_closed(s);
    return 0;
}

static void test_writing_to_a_closed_peer_gives_epipe_not_sigpipe(void **state)
{
    (void)state;
    /* SIGPIPE has its default action here: one would end the program. */
    assert_int_equal(run(main_peer_gone, NULL, NULL), 0);
    assert_int_equal(run(main_peer_gone, "tcp", NULL), 0);
    assert_int_equal(run(main_pipe_reader_gone, NULL, NULL), 0);
    assert_false(tu_sigpipe_blocked()); /* the mask is as it was */
    assert_false(tu_sigpipe_pending());
    /* The caller blocked SIGPIPE and one is pending: it stays, and so does
     * the mask. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    assert_int_equal(raise(SIGPIPE), 0);
    assert_int_equal(run(main_pipe_reader_gone, NULL, NULL), 0);
    assert_true(tu_sigpipe_blocked());
    assert_true(tu_sigpipe_pending());
    struct timespec zero = {0, 0};
    assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    assert_false(tu_sigpipe_pending());
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

static int main_peer_reset(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    struct linger lg = {1, 0}; /* close with a reset */
    CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close_fd(peer);
    char buf[8];
    LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
    LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
    LOG("readline:%s", err(asyncio_stream_readline(s, buf, sizeof buf)));
    asyncio_stream_close(s);
    return 0;
}

static void test_read_from_a_reset_peer_gives_econnreset(void **state)
{
    (void)state;
    assert_int_equal(run(main_peer_reset, NULL, NULL), 0);
    assert_log("read:ECONNRESET read:ECONNRESET readline:ECONNRESET");
}

/* ---- closing ------------------------------------------------------------- */

static int main_close_wakes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    size_t n = 1 << 20;
    char *data = pattern_buf(n);
    CHECK_INT(asyncio_stream_write(s, data, n), 0);
    asyncio_task_t *r = tu_spawn(blocked_read, s, "reader");
    asyncio_task_t *d = tu_spawn(drainer, s, "drainer");
    tu_yield(2);
    CHECK_INT(asyncio_stream_close(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    CHECK_INT(asyncio_await(d, NULL), 0);
    asyncio_task_release(r);
    asyncio_task_release(d);
    /* What was queued still goes out, then the end. */
    struct sink k = {.fd = peer, .chunk = 65536};
    CHECK_INT(read_to_end(&k, NULL), 0);
    CHECK_INT(k.total, n);
    CHECK(!k.bad);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_close_wakes_a_blocked_reader_and_drainer_with_ebadf(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_wakes, NULL, NULL), 0);
    assert_log("read:EBADF drain:EBADF");
}

static int main_close_flushes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(BIG);
    for (size_t off = 0; off < BIG; off += 65536)
        CHECK_INT(asyncio_stream_write(s, data + off, 65536), 0);
    CHECK_INT(asyncio_stream_close(s), 0); /* returns at once */
    struct sink k = {.fd = peer, .chunk = 65536};
    CHECK_INT(read_to_end(&k, NULL), 0);
    CHECK_INT(k.total, BIG);
    CHECK_INT(k.end, 0);
    CHECK(!k.bad);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_close_sends_what_is_queued_then_the_end(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_flushes, NULL, NULL), 0);
}

static int main_wait_closed_flushes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    struct sink k = {.fd = peer, .chunk = 65536, .slow = true};
    asyncio_task_t *r = tu_spawn(read_to_end, &k, "peer");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK(k.total > 0); /* it waited for the peer to take the bytes */
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(k.total, BIG);
    CHECK_INT(k.end, 0);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_wait_closed_returns_0_once_everything_was_sent(void **state)
{
    (void)state;
    assert_int_equal(run(main_wait_closed_flushes, NULL, NULL), 0);
}

static int closer(void *arg, void **result)
{
    (void)result;
    LOG("wait_closed:%s", err(asyncio_stream_wait_closed(arg)));
    return 0;
}

static int main_wait_closed_interrupted(void *arg, void **result)
{
    (void)result;
    bool by_timeout = arg != NULL;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    if (by_timeout) {
        asyncio_timeout_t scope;
        CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
        LOG("wait_closed:%s", err(asyncio_stream_wait_closed(s)));
        CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    } else {
        asyncio_task_t *c = tu_spawn(closer, s, "closer");
        tu_yield(2);
        CHECK_INT(asyncio_task_cancel(c), 1);
        CHECK_INT(asyncio_await(c, NULL), 0);
        asyncio_task_release(c);
    }
    /* The queue was dropped and the fd closed: the peer gets what the
     * socket held, then the end, without waiting for the rest. */
    struct sink k = {.fd = peer, .chunk = 65536};
    CHECK_INT(read_to_end(&k, NULL), 0);
    CHECK(k.total < BIG);
    CHECK_INT(k.end, 0);
    CHECK(!k.bad);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_wait_closed_cancelled_or_timed_out_drops_the_queue(void **state)
{
    (void)state;
    assert_int_equal(run(main_wait_closed_interrupted, NULL, NULL), 0);
    assert_log("wait_closed:ECANCELED");
    assert_int_equal(run(main_wait_closed_interrupted, "timeout", NULL), 0);
    assert_log("wait_closed:ETIMEDOUT");
}

static void cb_wait_closed(void *arg)
{
    LOG("wait_closed:%s", err(asyncio_stream_wait_closed(arg)));
}

static int main_wait_closed_in_callback(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    CHECK_INT(asyncio_call_soon(cb_wait_closed, s, NULL), 0);
    /* -EPERM, and closed "as asyncio_stream_close() does": the queue is
     * still sent, then the end. */
    struct sink k = {.fd = peer, .chunk = 65536};
    CHECK_INT(read_to_end(&k, NULL), 0);
    CHECK_INT(k.total, BIG);
    CHECK_INT(k.end, 0);
    CHECK(!k.bad);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_wait_closed_outside_a_task_closes_as_close_does(void **state)
{
    (void)state;
    assert_int_equal(run(main_wait_closed_in_callback, NULL, NULL), 0);
    assert_log("wait_closed:EPERM");
}

struct leftover {
    int fd, peer;
};

static int line_reader(void *arg, void **result)
{
    (void)result;
    char buf[16];
    LOG("readline:%s", err(asyncio_stream_readline(arg, buf, sizeof buf)));
    return 0;
}

static int main_left_open(void *arg, void **result)
{
    (void)result;
    struct leftover *lo = arg;
    asyncio_stream_t *s = pair(&lo->peer, 0);
    lo->fd = asyncio_stream_fd(s);
    char *data = pattern_buf(1 << 20);
    CHECK_INT(asyncio_stream_write(s, data, 1 << 20), 0); /* stays queued */
    free(data);
    /* A reader still waiting for the rest of a line at the end. */
    tu_spawn(line_reader, s, "reader");
    CHECK_INT(asyncio_sock_sendall(lo->peer, "unfinished", 10), 10);
    for (int i = 0; i < 100 && asyncio_stream_peek(s, NULL) < 10; i++)
        tu_yield(1);
    CHECK_INT(asyncio_stream_peek(s, NULL), 10);
    return 0;
}

static void test_stream_left_open_is_freed_when_the_loop_ends(void **state)
{
    (void)state;
    struct leftover lo = {-1, -1};
    assert_int_equal(run(main_left_open, &lo, NULL), 0);
    assert_log("readline:ECANCELED");
    /* The fd is closed (and the memory freed: see ASan or valgrind). */
    assert_true(lo.fd >= 0);
    assert_int_equal(fcntl(lo.fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    close(lo.peer);
}

/* Close from another task while a reader yields for fairness inside its
 * read call (after IO_BUDGET calls that did not wait). */
static int close_soon(void *arg, void **result)
{
    (void)result;
    CHECK_INT(asyncio_stream_close(arg), 0);
    LOG("closed");
    return 0;
}

static int byte_reader(void *arg, void **result)
{
    (void)result;
    char c;
    ssize_t n;
    int count = 0;
    while ((n = asyncio_stream_read(arg, &c, 1)) == 1)
        count++;
    LOG("read:%s", err(n));
    CHECK(count > 0 && count < 1000);
    return 0;
}

static int main_close_during_fair_yield(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    char data[1000];
    memset(data, 'x', sizeof data);
    CHECK_INT(asyncio_sock_sendall(peer, data, sizeof data), sizeof data);
    asyncio_task_t *r = tu_spawn(byte_reader, s, "reader");
    asyncio_task_t *c = tu_spawn(close_soon, s, "closer");
    CHECK_INT(asyncio_await(r, NULL), 0);
    CHECK_INT(asyncio_await(c, NULL), 0);
    asyncio_task_release(r);
    asyncio_task_release(c);
    close_fd(peer);
    return 0;
}

static void test_close_while_a_read_yields_for_fairness_gives_ebadf(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_during_fair_yield, NULL, NULL), 0);
    assert_log("closed read:EBADF");
}

static int byte_writer(void *arg, void **result)
{
    (void)result;
    int rc, count = 0;
    /* write never suspends: only drain can see the close. */
    while ((rc = asyncio_stream_write(arg, "x", 1)) == 0 && (rc = asyncio_stream_drain(arg)) == 0)
        count++;
    LOG("drain:%s", err(rc));
    CHECK(count > 0 && count < 1000);
    return 0;
}

static int main_close_during_fair_drain(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    asyncio_task_t *w = tu_spawn(byte_writer, s, "writer");
    asyncio_task_t *c = tu_spawn(close_soon, s, "closer");
    CHECK_INT(asyncio_await(w, NULL), 0);
    CHECK_INT(asyncio_await(c, NULL), 0);
    asyncio_task_release(w);
    asyncio_task_release(c);
    close_fd(peer);
    return 0;
}

static void test_close_while_a_drain_yields_for_fairness_gives_ebadf(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_during_fair_drain, NULL, NULL), 0);
    assert_log("closed drain:EBADF");
}

/* A reader that moves much per call yields sooner than one that moves
 * little: with 1 MiB waiting in a pipe, each 256 KiB read spends the whole
 * budget, so another task runs between any two of them (with a budget of
 * calls alone, four reads would not yield at all). */
static long g_ticks;

static int ticker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (asyncio_sleep(0) == 0)
        g_ticks++;
    return 0;
}

static int main_large_reads_yield(void *arg, void **result)
{
    (void)arg;
    (void)result;
#ifdef F_SETPIPE_SZ
    enum { CHUNK = 256 * 1024, TOTAL = 4 * CHUNK };
    int p[2];
    CHECK_INT(pipe(p), 0);
    if (fcntl(p[1], F_SETPIPE_SZ, TOTAL) < TOTAL) { /* pipe-max-size lowered */
        close(p[0]);
        close(p[1]);
        LOG("skipped");
        return 0;
    }
    char *buf = pattern_buf(TOTAL);
    CHECK_INT(write(p[1], buf, TOTAL), TOTAL);
    asyncio_stream_t *s;
    CHECK_INT(asyncio_stream_open(&s, p[0], 0), 0);
    asyncio_task_t *t = tu_spawn(ticker, NULL, "ticker");
    tu_yield(1);
    long ticks[4];
    for (int i = 0; i < 4; i++) {
        CHECK_INT(asyncio_stream_read(s, buf, CHUNK), CHUNK);
        ticks[i] = g_ticks;
    }
    for (int i = 1; i < 4; i++)
        CHECK(ticks[i] > ticks[i - 1]);
    asyncio_task_cancel(t);
    asyncio_task_release(t);
    CHECK_INT(asyncio_stream_close(s), 0); /* closes p[0] */
    close(p[1]);
    free(buf);
    LOG("yielded");
#endif
    return 0;
}

static void test_large_reads_spend_the_budget_and_yield_sooner(void **state)
{
    (void)state;
#ifndef F_SETPIPE_SZ
    skip(); /* no way to put 1 MiB in a pipe */
#endif
    assert_int_equal(run(main_large_reads_yield, NULL, NULL), 0);
    if (strcmp(tu_log_buf, "skipped") == 0)
        skip(); /* pipe-max-size below 1 MiB */
    assert_log("yielded");
}

/* ---- misuse -------------------------------------------------------------- */

static void cb_calls(void *arg)
{
    asyncio_stream_t *s = arg;
    char buf[4];
    LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
    LOG("readexactly:%s", err(asyncio_stream_readexactly(s, buf, sizeof buf)));
    LOG("readline:%s", err(asyncio_stream_readline(s, buf, sizeof buf)));
    LOG("fill:%s", err(asyncio_stream_fill(s)));
    LOG("drain:%s", err(asyncio_stream_drain(s)));
}

static int main_bad_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_stream_t *s = NULL;
    char buf[4];
    CHECK_INT(asyncio_stream_open(NULL, 0, 0), -EINVAL);
    CHECK_INT(asyncio_stream_open(&s, -1, 0), -EBADF);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(asyncio_stream_open(&s, fd, 0), -EBADF); /* not open */
    CHECK_PTR(s, NULL);
    /* A NULL stream. */
    CHECK_INT(asyncio_stream_read(NULL, buf, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readexactly(NULL, buf, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readuntil(NULL, "\n", 1, buf, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readline(NULL, buf, 1), -EINVAL);
    CHECK_INT(asyncio_stream_fill(NULL), -EINVAL);
    CHECK_INT(asyncio_stream_consume(NULL, 0), -EINVAL);
    CHECK_INT(asyncio_stream_set_limit(NULL, 0), -EINVAL);
    CHECK_INT(asyncio_stream_write(NULL, "x", 1), -EINVAL);
    CHECK_INT(asyncio_stream_writev(NULL, NULL, 0), -EINVAL);
    CHECK_INT(asyncio_stream_drain(NULL), -EINVAL);
    CHECK_INT(asyncio_stream_write_eof(NULL), -EINVAL);
    CHECK_INT(asyncio_stream_close(NULL), -EINVAL);
    CHECK_INT(asyncio_stream_wait_closed(NULL), -EINVAL);
    CHECK_INT(asyncio_stream_fd(NULL), -EBADF);
    CHECK_INT(asyncio_stream_at_eof(NULL), 0);
    CHECK_INT(asyncio_stream_peek(NULL, NULL), 0);
    CHECK_INT(asyncio_stream_write_buffer_size(NULL), 0);
    /* NULL buffers with a length, bad vectors, empty separators. */
    int peer;
    s = pair(&peer, 0);
    CHECK_INT(asyncio_stream_read(s, NULL, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readexactly(s, NULL, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readuntil(s, "\n", 1, NULL, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readuntil(s, NULL, 1, buf, 1), -EINVAL);
    CHECK_INT(asyncio_stream_readuntil(s, "\n", 0, buf, 1), -EINVAL);
    CHECK_INT(asyncio_stream_write(s, NULL, 1), -EINVAL);
    struct iovec v[2] = {{"x", 1}, {NULL, 1}};
    CHECK_INT(asyncio_stream_writev(s, v, 2), -EINVAL);
    CHECK_INT(asyncio_stream_writev(s, NULL, 1), -EINVAL);
    CHECK_INT(asyncio_stream_writev(s, v, -1), -EINVAL);
    CHECK_INT(asyncio_stream_write_buffer_size(s), 0); /* nothing queued */
    CHECK_INT(asyncio_stream_fd(s) >= 0, 1);
    /* Waiting calls outside a task. */
    CHECK_INT(asyncio_call_soon(cb_calls, s, NULL), 0);
    tu_yield(2);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_bad_input_and_calls_outside_a_task_get_error_codes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    asyncio_stream_t *s = NULL;
    assert_int_equal(asyncio_stream_open(&s, sv[0], 0), -EPERM); /* no loop */
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(run(main_bad_input, NULL, NULL), 0);
    assert_log("read:EPERM readexactly:EPERM readline:EPERM fill:EPERM drain:EPERM");
}

static int abort_reader(void *arg, void **result)
{
    (void)result;
    char buf[16];
    LOG("read:%s", err(asyncio_stream_read(arg, buf, sizeof buf)));
    return 0;
}

static int main_abort(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    /* A queue the peer does not read, and a task blocked reading. Small
     * kernel buffers on both ends, whatever the system's defaults (a
     * default receive buffer of 4 MiB would take the whole write). */
    int small = 65536;
    CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    CHECK_INT(setsockopt(asyncio_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    asyncio_task_t *r = tu_spawn(abort_reader, s, "reader");
    tu_yield(2);
    CHECK(asyncio_stream_write_buffer_size(s) > 0);
    CHECK_INT(asyncio_stream_abort(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    /* The connection is reset at once: the peer does not get the queue. */
    struct sink k = {.fd = peer, .chunk = 65536};
    CHECK_INT(read_to_end(&k, NULL), 0);
    CHECK(k.total < BIG);
    LOG("peer:%s", err(k.end));
    free(data);
    close_fd(peer);
    return 0;
}

static void test_abort_drops_the_queue_resets_and_wakes_the_reader(void **state)
{
    (void)state;
    assert_int_equal(run(main_abort, NULL, NULL), 0);
    assert_log("read:EBADF peer:ECONNRESET");
}

static int main_regular_file(void *arg, void **result)
{
    (void)result;
    const char *path = arg;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    asyncio_stream_t *s = NULL;
    CHECK_INT(asyncio_stream_open(&s, fd, 0), 0);
    char buf[64];
    /* A short read of a file is no sign of a drained socket: no wait (epoll
     * would refuse a regular file), just the end. */
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 6);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 4);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0;
}

static void test_stream_over_a_regular_file_reads_to_its_end(void **state)
{
    (void)state;
    char path[] = "/tmp/asyncio-test-stream-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello\nrest", 10), 10);
    close(fd);
    assert_int_equal(run(main_regular_file, path, NULL), 0);
    unlink(path);
}

/*
 * A send the socket refuses ends the connection, as in asyncio: a task
 * waiting to read wakes with the error instead of waiting for ever. Here
 * the peer stopped reading (shutdown SHUT_RD) but still holds its end, so
 * nothing else would ever wake the reader: a write fails with -EPIPE, and
 * the reader gets -EPIPE after the byte that was already buffered.
 */
struct send_fail {
    asyncio_stream_t *s;
};

static int reader_after_send_failure(void *arg, void **result)
{
    struct send_fail *f = arg;
    (void)result;
    char c;
    ssize_t n = asyncio_stream_read(f->s, &c, 1);
    LOG("first:%s", n == 1 && c == 'x' ? "x" : tu_err(n));
    n = asyncio_stream_read(f->s, &c, 1);
    LOG("then:%s", tu_err(n));
    return 0;
}

static int main_send_failure_ends_reads(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_INT(write(sv[1], "x", 1), 1);
    CHECK_INT(shutdown(sv[1], SHUT_RD), 0);
    struct send_fail f;
    CHECK_INT(asyncio_stream_open(&f.s, sv[0], 0), 0);
    asyncio_task_t *r = tu_spawn(reader_after_send_failure, &f, "reader");
    tu_yield(3); /* it read the byte and waits for more */
    static char big[8192];
    int rc = asyncio_stream_write(f.s, big, sizeof big); /* sent at once */
    LOG("write:%s", tu_err(rc));
    CHECK_INT(asyncio_await(r, NULL), 0);
    LOG("drain:%s", tu_err(asyncio_stream_drain(f.s)));
    asyncio_task_release(r);
    asyncio_stream_wait_closed(f.s);
    close(sv[1]);
    return 0;
}

static void test_a_refused_send_ends_reading_too(void **state)
{
    (void)state;
    assert_int_equal(run(main_send_failure_ends_reads, NULL, NULL), 0);
    assert_log("first:x write:EPIPE then:EPIPE drain:EPIPE");
}

/* Small calls at their edges: peek at nothing, the default limit back,
 * an empty writev, abort(NULL). */
static int main_small_edges(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const void *data = &data;
    CHECK_INT((int)asyncio_stream_peek(NULL, &data), 0);
    CHECK_PTR(data, NULL);
    CHECK_INT(asyncio_stream_abort(NULL), -EINVAL);
    int peer;
    asyncio_stream_t *s = pair(&peer, 16);
    if (!s)
        return -1;
    CHECK_INT(write(peer, "0123456789abcdefXYZ", 19), 19);
    char buf[32];
    CHECK_INT(asyncio_stream_readuntil(s, "Z", 1, buf, sizeof buf), -ENOBUFS); /* over 16 */
    CHECK_INT(asyncio_stream_set_limit(s, 0), 0); /* back to 64 KiB */
    CHECK_INT(asyncio_stream_readuntil(s, "Z", 1, buf, sizeof buf), 19);
    struct iovec none[2] = {{buf, 0}, {NULL, 0}};
    CHECK_INT(asyncio_stream_writev(s, none, 2), 0);
    CHECK_INT((int)asyncio_stream_write_buffer_size(s), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close(peer);
    return 0;
}

static void test_small_calls_at_their_edges(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_small_edges, NULL, NULL), 0);
}

/* A second task that drains while one does gets -EBUSY; a task with a
 * cancellation pending closes at once, dropping the queue. */
static int logging_drainer(void *arg, void **result)
{
    (void)result;
    LOG("drain:%s", tu_err(asyncio_stream_drain(arg)));
    return 0;
}

static int main_two_drainers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    if (!s)
        return -1;
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 1, 0), 0);
    static char big[1 << 20];
    CHECK_INT(asyncio_stream_write(s, big, sizeof big), 0); /* more than the socket takes */
    asyncio_task_t *d = tu_spawn(logging_drainer, s, "drainer");
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(d), "stream drain");
    CHECK_INT(asyncio_stream_drain(s), -EBUSY);
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    CHECK_INT(asyncio_stream_wait_closed(s), -ECANCELED);
    CHECK_INT(asyncio_await(d, NULL), 0);
    asyncio_task_release(d);
    close(peer);
    return 0;
}

static void test_second_drainer_is_ebusy_and_cancelled_close_is_at_once(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_two_drainers, NULL, NULL), 0);
    assert_log("drain:EBADF");
}

/* ---- layers -------------------------------------------------------------- */

/*
 * asyncio_stream_set_layer() without TLS: a toy layer that XORs each byte
 * with XOR_KEY on the wire, its recv and send calling recv(2) and send(2)
 * on the stream's fd themselves. Knobs make it act as TLS may: want to
 * write in order to read (after filling the socket, perhaps), want to read
 * in order to write, take a few bytes a call, read two records at once and
 * hand out one a call (pending()), send an end marker at shutdown (after
 * an -EAGAIN, perhaps) or have nothing to send (1). It counts its calls and
 * checks that what a send did not take comes again, from its first byte.
 */
#define XOR_KEY 0x5a
#define END_MARK "#END#"
#define END_LEN 5

struct xl {
    int fd;
    bool tcp;            /* the test's: a TCP connection, not a socketpair */
    int peer;            /* the test's: a far end to close after the run */
    /* knobs */
    int recv_want_write; /* recv calls that answer -EAGAIN, WANT_WRITE, first */
    bool recv_fill;      /* ... having filled the socket (TLS writes to read) */
    int send_want_read;  /* send calls that answer -EAGAIN, WANT_READ, first */
    size_t send_max;     /* the most one send takes (0: what send(2) takes) */
    size_t record;       /* records: recv reads two at once, hands out one */
    int shut_again;      /* shutdown calls that answer -EAGAIN, WANT_WRITE, first */
    int shut_result;     /* 0: send END_MARK; 1: nothing to send */
    /* state */
    unsigned char held[64]; /* records read, not handed out yet */
    size_t hpos, hlen;
    size_t mark_sent;
    unsigned char expect[64]; /* how the next send must begin */
    size_t nexpect;
    /* what happened */
    int recvs, sends, shutdowns, pendings, frees;
    int after_free;      /* calls after free */
    int bad_args;        /* calls for no bytes */
    int bad_retry;       /* sends that did not begin with what was not taken */
    int max_iovcnt;
    bool fd_open_at_free;
    size_t filled;       /* bytes recv_fill put in the socket */
    size_t sent;         /* bytes send took */
};

static unsigned char xl_out[65536]; /* what one send XORs */

static void xor_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] ^= XOR_KEY;
}

/* Copy up to n bytes of iov, from offset skip, to dst: how many. */
static size_t iov_copy(const struct iovec *iov, int iovcnt, size_t skip, void *dst, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < iovcnt && got < n; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        size_t k = len - skip < n - got ? len - skip : n - got;
        memcpy((char *)dst + got, (const char *)iov[i].iov_base + skip, k);
        got += k;
        skip = 0;
    }
    return got;
}

static ssize_t raw_recv(int fd, void *buf, size_t n, int *want)
{
    for (;;) {
        ssize_t r = recv(fd, buf, n, 0);
        if (r >= 0) {
            xor_bytes(buf, (size_t)r);
            return r;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *want = ASYNCIO_LAYER_WANT_READ;
            return -EAGAIN;
        }
        return -errno;
    }
}

static ssize_t raw_send(int fd, const void *buf, size_t n, int *want)
{
    for (;;) {
        ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *want = ASYNCIO_LAYER_WANT_WRITE;
            return -EAGAIN;
        }
        return -errno;
    }
}

static void xl_called(struct xl *x)
{
    if (x->frees)
        x->after_free++;
}

static ssize_t xl_recv(void *layer, void *buf, size_t n, int *want)
{
    struct xl *x = layer;
    xl_called(x);
    x->recvs++;
    if (!n || !buf)
        x->bad_args++;
    if (x->recv_want_write > 0) {
        x->recv_want_write--;
        if (x->recv_fill) {
            static const unsigned char junk[4096];
            ssize_t r;
            while ((r = send(x->fd, junk, sizeof junk, MSG_NOSIGNAL)) > 0)
                x->filled += (size_t)r;
        }
        *want = ASYNCIO_LAYER_WANT_WRITE;
        return -EAGAIN;
    }
    if (!x->record)
        return raw_recv(x->fd, buf, n, want);
    if (!x->hlen) {
        ssize_t r = raw_recv(x->fd, x->held, 2 * x->record, want);
        if (r <= 0)
            return r;
        x->hpos = 0;
        x->hlen = (size_t)r;
    }
    size_t k = n < x->record ? n : x->record;
    if (k > x->hlen)
        k = x->hlen;
    memcpy(buf, x->held + x->hpos, k);
    x->hpos += k;
    x->hlen -= k;
    return (ssize_t)k;
}

static ssize_t xl_send(void *layer, const struct iovec *iov, int iovcnt, int *want)
{
    struct xl *x = layer;
    xl_called(x);
    x->sends++;
    if (iovcnt > x->max_iovcnt)
        x->max_iovcnt = iovcnt;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (!total)
        x->bad_args++;
    if (x->nexpect) {
        unsigned char head[sizeof x->expect];
        size_t k = iov_copy(iov, iovcnt, 0, head, x->nexpect);
        if (k != x->nexpect || memcmp(head, x->expect, k) != 0)
            x->bad_retry++;
        x->nexpect = 0;
    }
    ssize_t r;
    if (x->send_want_read > 0) {
        x->send_want_read--;
        *want = ASYNCIO_LAYER_WANT_READ;
        r = -EAGAIN;
    } else {
        size_t k = total < sizeof xl_out ? total : sizeof xl_out;
        if (x->send_max && k > x->send_max)
            k = x->send_max;
        iov_copy(iov, iovcnt, 0, xl_out, k);
        xor_bytes(xl_out, k);
        r = raw_send(x->fd, xl_out, k, want);
    }
    /* What was not taken must come again: remember how it begins. */
    size_t taken = r > 0 ? (size_t)r : 0;
    if (r == -EAGAIN || (r > 0 && taken < total))
        x->nexpect = iov_copy(iov, iovcnt, taken, x->expect, sizeof x->expect);
    x->sent += taken;
    return r;
}

static int xl_shutdown(void *layer, int *want)
{
    struct xl *x = layer;
    xl_called(x);
    x->shutdowns++;
    if (x->shut_again > 0) {
        x->shut_again--;
        *want = ASYNCIO_LAYER_WANT_WRITE;
        return -EAGAIN;
    }
    if (x->shut_result)
        return x->shut_result;
    unsigned char mark[END_LEN];
    memcpy(mark, END_MARK, END_LEN);
    xor_bytes(mark, END_LEN);
    while (x->mark_sent < END_LEN) {
        ssize_t r = raw_send(x->fd, mark + x->mark_sent, END_LEN - x->mark_sent, want);
        if (r < 0)
            return (int)r;
        x->mark_sent += (size_t)r;
    }
    return 0;
}

static int xl_pending(void *layer)
{
    struct xl *x = layer;
    xl_called(x);
    x->pendings++;
    return x->hlen > 0;
}

static void xl_free(void *layer)
{
    struct xl *x = layer;
    xl_called(x);
    x->frees++;
    x->fd_open_at_free = fcntl(x->fd, F_GETFD) != -1;
}

static const asyncio_stream_layer_ops_t xl_ops = {xl_recv, xl_send, xl_shutdown, xl_pending,
                                                  xl_free};

/* A stream with x as its layer, over a socketpair or (tcp) a TCP
 * connection on 127.0.0.1; the far end, raw, in *peer. */
static asyncio_stream_t *layered(struct xl *x, int *peer, bool tcp)
{
    asyncio_stream_t *s = tcp ? tcp_pair(peer) : pair(peer, 0);
    if (!s)
        return NULL;
    x->fd = asyncio_stream_fd(s);
    CHECK_INT(asyncio_stream_set_layer(s, &xl_ops, x), 0);
    return s;
}

/* After the run: x was freed once, with the fd still open, and no call
 * came after that, nor one for no bytes, nor a retry of other bytes. */
static void assert_layer_freed(const struct xl *x)
{
    assert_int_equal(x->frees, 1);
    assert_true(x->fd_open_at_free);
    assert_int_equal(x->after_free, 0);
    assert_int_equal(x->bad_args, 0);
    assert_int_equal(x->bad_retry, 0);
}

static void assert_layer_unused(const struct xl *x)
{
    assert_int_equal(x->recvs + x->sends + x->shutdowns + x->pendings + x->frees, 0);
}

/* Send n bytes of buf to fd as the layer's far end does: XORed. */
static void send_xored(int fd, const void *buf, size_t n)
{
    unsigned char *b = malloc(n);
    CHECK(b != NULL);
    if (!b)
        return;
    memcpy(b, buf, n);
    xor_bytes(b, n);
    CHECK_INT(asyncio_sock_sendall(fd, b, n), n);
    free(b);
}

/* Receive n bytes from fd into buf, un-XORed if xored: n, fewer at its
 * end, or the error. */
static ssize_t recv_exactly(int fd, void *buf, size_t n, bool xored)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = asyncio_sock_recv(fd, (char *)buf + got, n - got);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (xored)
        xor_bytes(buf, got);
    return (ssize_t)got;
}

/* b holds n bytes of tu_pattern(), XORed if xored. */
static bool holds_pattern(const char *b, size_t n, bool xored)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)b[i] ^ (xored ? XOR_KEY : 0)) != tu_pattern(i))
            return false;
    return true;
}

/* b holds the n bytes of text, XORed. */
static bool holds_xored(const char *b, const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)b[i] ^ XOR_KEY) != (unsigned char)text[i])
            return false;
    return true;
}

/* Send parts to fd XORed, one at a time, letting the loop run between. */
struct xpieces {
    int fd;
    const char *part[8];
};

static int send_xored_pieces(void *arg, void **result)
{
    (void)result;
    struct xpieces *p = arg;
    for (int i = 0; i < 8 && p->part[i]; i++) {
        send_xored(p->fd, p->part[i], strlen(p->part[i]));
        CHECK_INT(asyncio_sleep(0.001), 0);
    }
    return 0;
}

/* Send n bytes of tu_pattern() to fd, XORed. */
struct xsend {
    int fd;
    size_t n;
};

static int send_xored_pattern(void *arg, void **result)
{
    (void)result;
    struct xsend *x = arg;
    char *b = pattern_buf(x->n);
    if (!b)
        return 0;
    xor_bytes(b, x->n);
    CHECK_INT(asyncio_sock_sendall(x->fd, b, x->n), x->n);
    free(b);
    return 0;
}

/* Take n bytes of tu_pattern() (XORed if xored) from fd, checking them. */
struct take {
    int fd;
    size_t n;
    bool xored;
    size_t got;
    bool bad;
    int end; /* what ended it early: 0 the end, or the error */
};

static int take_pattern(void *arg, void **result)
{
    (void)result;
    struct take *k = arg;
    unsigned char *buf = malloc(65536);
    CHECK(buf != NULL);
    while (buf && k->got < k->n) {
        size_t want = k->n - k->got < 65536 ? k->n - k->got : 65536;
        ssize_t r = asyncio_sock_recv(k->fd, buf, want);
        if (r <= 0) {
            k->end = (int)r;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if ((buf[i] ^ (k->xored ? XOR_KEY : 0)) != tu_pattern(k->got + (size_t)i))
                k->bad = true;
        k->got += (size_t)r;
    }
    free(buf);
    return 0;
}

/* Everything fd sends until its end, in buf (chunk bytes a call at most,
 * 0: as much as fits; yielding after each if slow). */
struct collect {
    int fd;
    size_t chunk;
    bool slow;
    char *buf;
    size_t len, cap;
    int end; /* 0 at the end, else the error */
};

static int collect_to_end(void *arg, void **result)
{
    (void)result;
    struct collect *c = arg;
    for (;;) {
        if (c->len == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 65536;
            char *b = realloc(c->buf, cap);
            CHECK(b != NULL);
            if (!b) {
                c->end = -ENOMEM;
                break;
            }
            c->buf = b;
            c->cap = cap;
        }
        size_t want = c->cap - c->len;
        if (c->chunk && want > c->chunk)
            want = c->chunk;
        ssize_t n = asyncio_sock_recv(c->fd, c->buf + c->len, want);
        if (n <= 0) {
            c->end = (int)n;
            break;
        }
        c->len += (size_t)n;
        if (c->slow && asyncio_sleep(0) < 0)
            break;
    }
    return 0;
}

/* asyncio_stream_wait_closed() in a task of its own. */
struct closing {
    asyncio_stream_t *s;
    int rc;
    bool done;
};

static int wait_closed_task(void *arg, void **result)
{
    (void)result;
    struct closing *c = arg;
    c->rc = asyncio_stream_wait_closed(c->s);
    c->done = true;
    return 0;
}

/* Close s, whose layer sends END_MARK at its shutdown: the peer gets the
 * marker then the end, and the close lingers until the peer closes. */
static void close_layered(asyncio_stream_t *s, int peer)
{
    struct closing c = {s, 0, false};
    asyncio_task_t *t = tu_spawn(wait_closed_task, &c, "closer");
    char buf[16];
    CHECK_INT(recv_exactly(peer, buf, END_LEN, true), END_LEN);
    CHECK(memcmp(buf, END_MARK, END_LEN) == 0);
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 0);
    CHECK(!c.done); /* it lingers */
    close_fd(peer);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK(c.done);
    CHECK_INT(c.rc, 0);
}

struct layer_call {
    asyncio_stream_t *s;
    struct xl *x;
};

static void cb_set_layer(void *arg)
{
    struct layer_call *c = arg;
    LOG("callback:%s", err(asyncio_stream_set_layer(c->s, &xl_ops, c->x)));
}

static int set_layer_task(void *arg, void **result)
{
    (void)result;
    struct layer_call *c = arg;
    LOG("set_layer:%s", err(asyncio_stream_set_layer(c->s, &xl_ops, c->x)));
    return 0;
}

static int main_set_layer_errors(void *arg, void **result)
{
    (void)result;
    struct xl *good = arg, *bad = good + 1;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    if (!s)
        return -1;
    good->fd = bad->fd = asyncio_stream_fd(s);
    good->shut_result = 1; /* its close does not linger */
    CHECK_INT(asyncio_stream_set_layer(NULL, &xl_ops, bad), -EINVAL);
    CHECK_INT(asyncio_stream_set_layer(s, NULL, bad), -EINVAL);
    for (int i = 0; i < 5; i++) {
        asyncio_stream_layer_ops_t ops = xl_ops;
        switch (i) {
        case 0: ops.recv = NULL; break;
        case 1: ops.send = NULL; break;
        case 2: ops.shutdown = NULL; break;
        case 3: ops.pending = NULL; break;
        default: ops.free = NULL; break;
        }
        CHECK_INT(asyncio_stream_set_layer(s, &ops, bad), -EINVAL);
    }
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), NULL);
    CHECK_PTR(asyncio_stream_get_layer(NULL, &xl_ops), NULL);
    CHECK_PTR(asyncio_stream_get_layer(s, NULL), NULL);
    /* Outside a task. */
    struct layer_call c = {s, bad};
    CHECK_INT(asyncio_call_soon(cb_set_layer, &c, NULL), 0);
    tu_yield(2);
    /* While another task reads. */
    asyncio_task_t *r = tu_spawn(blocked_read, s, "reader");
    tu_yield(1);
    LOG("reading:%s", err(asyncio_stream_set_layer(s, &xl_ops, bad)));
    CHECK_INT(asyncio_sock_sendall(peer, "data", 4), 4);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    /* While another task drains. */
    size_t n = 1 << 20;
    char *data = pattern_buf(n);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 1, 0), 0);
    CHECK_INT(asyncio_stream_write(s, data, n), 0);
    asyncio_task_t *d = tu_spawn(drainer, s, "drainer");
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(d), "stream drain");
    LOG("draining:%s", err(asyncio_stream_set_layer(s, &xl_ops, bad)));
    CHECK_INT(asyncio_task_cancel(d), 1);
    CHECK_INT(asyncio_await(d, NULL), 0);
    asyncio_task_release(d);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(s, 0, 0), 0);
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), NULL); /* none went in */
    /* good goes in once the queue is out, in plain. */
    struct take k = {.fd = peer, .n = n};
    asyncio_task_t *p = tu_spawn(take_pattern, &k, "peer");
    CHECK_INT(asyncio_stream_set_layer(s, &xl_ops, good), 0);
    CHECK_INT(asyncio_await(p, NULL), 0);
    asyncio_task_release(p);
    CHECK_INT(k.got, n);
    CHECK(!k.bad);
    /* Twice. */
    LOG("twice:%s", err(asyncio_stream_set_layer(s, &xl_ops, bad)));
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), good);
    asyncio_stream_layer_ops_t same = xl_ops; /* the ops' address is what counts */
    CHECK_PTR(asyncio_stream_get_layer(s, &same), NULL);
    /* The stream goes on, through good. */
    CHECK_INT(asyncio_stream_write(s, "ok", 2), 0);
    char buf[8];
    CHECK_INT(recv_exactly(peer, buf, 2, true), 2);
    CHECK(memcmp(buf, "ok", 2) == 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    /* Not a socket. */
    int pp[2];
    CHECK_INT(pipe2(pp, O_CLOEXEC), 0);
    asyncio_stream_t *ps = NULL;
    CHECK_INT(asyncio_stream_open(&ps, pp[0], 0), 0);
    LOG("pipe:%s", err(asyncio_stream_set_layer(ps, &xl_ops, bad)));
    CHECK_INT(asyncio_stream_wait_closed(ps), 0);
    close(pp[1]);
    /* A connection that failed. */
    s = pair(&peer, 0);
    if (s) {
        close_fd(peer);
        LOG("write:%s", err(asyncio_stream_write(s, data, 8192)));
        LOG("failed:%s", err(asyncio_stream_set_layer(s, &xl_ops, bad)));
        LOG("wait_closed:%s", err(asyncio_stream_wait_closed(s)));
    }
    free(data);
    return 0;
}

static void test_set_layer_refuses_bad_calls_and_leaves_the_layer_to_its_caller(void **state)
{
    (void)state;
    struct xl x[2] = {{0}};
    assert_int_equal(run(main_set_layer_errors, x, NULL), 0);
    assert_log("callback:EPERM reading:EBUSY read:data draining:EBUSY drain:ECANCELED "
               "twice:EEXIST pipe:ENOTSOCK write:EPIPE failed:EPIPE wait_closed:EPIPE");
    assert_layer_freed(&x[0]);
    assert_layer_unused(&x[1]);
}

/* What was queued before set_layer() goes out in plain, all of it, before
 * anything goes through the layer: set_layer() waits for a slow peer. */
static int main_layer_after_queue(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = x->tcp ? tcp_pair(&peer) : pair(&peer, 0);
    if (!s)
        return -1;
    x->fd = asyncio_stream_fd(s);
    if (x->tcp) { /* small kernel buffers, whatever the system's defaults */
        int small = 65536;
        CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        CHECK_INT(setsockopt(x->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    }
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, 1000), 0);
    CHECK_INT(asyncio_stream_write(s, data + 1000, BIG - 1000), 0);
    CHECK(asyncio_stream_write_buffer_size(s) > 0);
    struct collect c = {.fd = peer, .chunk = 16384, .slow = true};
    asyncio_task_t *p = tu_spawn(collect_to_end, &c, "slow peer");
    CHECK_INT(asyncio_stream_set_layer(s, &xl_ops, x), 0);
    CHECK_INT(asyncio_stream_write_buffer_size(s), 0);
    CHECK_INT(x->sends, 0); /* the queue went out in plain */
    CHECK(c.len > 0);       /* it waited for the peer */
    CHECK_INT(asyncio_stream_write(s, "after", 5), 0);
    CHECK_INT(asyncio_stream_close(s), 0);
    CHECK_INT(asyncio_await(p, NULL), 0);
    asyncio_task_release(p);
    CHECK_INT(c.end, 0);
    CHECK_INT(c.len, BIG + 5 + END_LEN);
    if (c.len == BIG + 5 + END_LEN) {
        CHECK(holds_pattern(c.buf, BIG, false));
        CHECK(holds_xored(c.buf + BIG, "after" END_MARK, 5 + END_LEN));
    }
    free(c.buf);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_set_layer_waits_until_the_queue_went_out_in_plain(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_layer_after_queue, &x, NULL), 0);
    assert_layer_freed(&x);
    struct xl y = {.tcp = true};
    assert_int_equal(run(main_layer_after_queue, &y, NULL), 0);
    assert_layer_freed(&y);
}

/* What the stream had read and not returned stays in its buffer, as it
 * came: the caller takes it with peek and consume (TLS: the start of the
 * handshake). */
static int main_layer_buffered(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    if (!s)
        return -1;
    x->fd = asyncio_stream_fd(s);
    x->shut_result = 1;
    char buf[16] = {0};
    CHECK_INT(asyncio_sock_sendall(peer, "abc\nDEF", 7), 7);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 4);
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), NULL);
    CHECK_INT(asyncio_stream_set_layer(s, &xl_ops, x), 0);
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), x);
    const void *data = NULL;
    CHECK_INT(asyncio_stream_peek(s, &data), 3);
    CHECK(data && memcmp(data, "DEF", 3) == 0);
    CHECK_INT(x->recvs, 0);
    CHECK_INT(asyncio_stream_consume(s, 3), 0);
    CHECK_INT(asyncio_stream_peek(s, NULL), 0);
    send_xored(peer, "xyz\n", 4);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "xyz\n", 4) == 0);
    CHECK(x->recvs > 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    return 0;
}

static void test_set_layer_leaves_what_was_buffered_to_peek_and_consume(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_layer_buffered, &x, NULL), 0);
    assert_layer_freed(&x);
}

/* Every read call, and writes small, vectored and large, through a layer;
 * the end through it too. */
static int main_layer_reads(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    char buf[64] = {0};
    send_xored(peer, "hello", 5);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    struct xpieces pe = {peer, {"abc", "de", "f"}};
    asyncio_task_t *w = tu_spawn(send_xored_pieces, &pe, "pieces");
    CHECK_INT(asyncio_stream_readexactly(s, buf, 6), 6);
    CHECK(memcmp(buf, "abcdef", 6) == 0);
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    struct xpieces pl = {peer, {"line o", "ne\nline two\nkey: va", "lue\r\n", "\r\nbody"}};
    w = tu_spawn(send_xored_pieces, &pl, "lines");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 9);
    CHECK_STR(buf, "line one\n");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 9);
    CHECK_STR(buf, "line two\n");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readuntil(s, "\r\n\r\n", 4, buf, sizeof buf), 14);
    CHECK_STR(buf, "key: value\r\n\r\n");
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    /* fill, peek, consume. */
    for (int i = 0; i < 10 && asyncio_stream_peek(s, NULL) < 4; i++)
        CHECK(asyncio_stream_fill(s) > 0);
    send_xored(peer, "MORE", 4);
    for (int i = 0; i < 10 && asyncio_stream_peek(s, NULL) < 8; i++)
        CHECK(asyncio_stream_fill(s) > 0);
    const void *data = NULL;
    CHECK_INT(asyncio_stream_peek(s, &data), 8);
    CHECK(data && memcmp(data, "bodyMORE", 8) == 0);
    CHECK_INT(asyncio_stream_consume(s, 4), 0);
    CHECK_INT(asyncio_stream_peek(s, &data), 4);
    CHECK(data && memcmp(data, "MORE", 4) == 0);
    CHECK_INT(asyncio_stream_consume(s, 4), 0);
    /* Large reads, straight into the caller's buffer. */
    char *in = malloc(BIG);
    CHECK(in != NULL);
    struct xsend xs = {peer, BIG};
    w = tu_spawn(send_xored_pattern, &xs, "sender");
    CHECK_INT(asyncio_stream_readexactly(s, in, BIG), BIG);
    CHECK(holds_pattern(in, BIG, false));
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    xs.n = 10000;
    w = tu_spawn(send_xored_pattern, &xs, "sender");
    size_t got = 0;
    for (int i = 0; i < 100 && got < 10000; i++) {
        ssize_t r = asyncio_stream_read(s, in + got, 65536);
        CHECK(r > 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    CHECK_INT(got, 10000);
    CHECK(holds_pattern(in, 10000, false));
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    /* Writes. */
    CHECK_INT(asyncio_stream_write(s, "ping", 4), 0);
    CHECK_INT(recv_exactly(peer, buf, 4, true), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    struct iovec v[3] = {{"a", 1}, {"bc", 2}, {"def", 3}};
    CHECK_INT(asyncio_stream_writev(s, v, 3), 0);
    CHECK_INT(recv_exactly(peer, buf, 6, true), 6);
    CHECK(memcmp(buf, "abcdef", 6) == 0);
    char *out = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, out, BIG), 0);
    CHECK(asyncio_stream_write_buffer_size(s) > 0); /* more than the socket takes */
    struct take k = {.fd = peer, .n = BIG, .xored = true};
    asyncio_task_t *p = tu_spawn(take_pattern, &k, "peer");
    CHECK_INT(asyncio_stream_drain(s), 0);
    CHECK_INT(asyncio_await(p, NULL), 0);
    asyncio_task_release(p);
    CHECK_INT(k.got, BIG);
    CHECK(!k.bad);
    /* The end. */
    CHECK_INT(shutdown(peer, SHUT_WR), 0);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    /* The peer's end came before: the close does not linger. */
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(recv_exactly(peer, buf, END_LEN, true), END_LEN);
    CHECK(memcmp(buf, END_MARK, END_LEN) == 0);
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 0);
    close_fd(peer);
    free(in);
    free(out);
    return 0;
}

static void test_every_read_and_write_call_goes_through_the_layer(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_layer_reads, &x, NULL), 0);
    assert_layer_freed(&x);
    assert_int_equal(x.shutdowns, 1);
}

/* The layer's recv wants to write (TLS may, to read): the stream waits
 * until the fd is writable, not readable, and calls recv again. */
struct late {
    int fd;
    struct xl *x;
};

static int late_input(void *arg, void **result)
{
    (void)result;
    struct late *l = arg;
    CHECK_INT(asyncio_sleep(0.05), 0);
    LOG("recvs:%d", l->x->recvs);
    if (l->x->filled) {
        /* Take what filled the socket: it turns writable. */
        char *junk = malloc(l->x->filled);
        CHECK(junk != NULL);
        if (junk)
            CHECK_INT(recv_exactly(l->fd, junk, l->x->filled, false), l->x->filled);
        free(junk);
        CHECK_INT(asyncio_sleep(0.05), 0);
        LOG("recvs:%d", l->x->recvs);
    }
    send_xored(l->fd, "hi", 2);
    return 0;
}

static int main_recv_wants_write(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    x->recv_want_write = 1;
    struct late l = {peer, x};
    asyncio_task_t *t = tu_spawn(late_input, &l, "peer");
    char buf[8] = {0};
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 2);
    CHECK_STR(buf, "hi");
    LOG("read");
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    close_layered(s, peer);
    return 0;
}

static void test_recv_wanting_to_write_waits_for_a_writable_fd(void **state)
{
    (void)state;
    /* Writable at once: recv comes again before any input (2: the
     * -EAGAIN for writing, then the one for reading). */
    struct xl x = {0};
    assert_int_equal(run(main_recv_wants_write, &x, NULL), 0);
    assert_log("recvs:2 read");
    assert_layer_freed(&x);
    /* Full: recv comes again only once the peer has read. */
    struct xl y = {.recv_fill = true};
    assert_int_equal(run(main_recv_wants_write, &y, NULL), 0);
    assert_log("recvs:1 recvs:2 read");
    assert_true(y.filled > 0);
    assert_layer_freed(&y);
}

/* A layer holding what it read ahead (pending()): the stream takes it
 * without waiting for the fd, where nothing more comes. */
static int main_pending(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    x->record = 5;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    char buf[64] = {0};
    char *big = malloc(8192);
    CHECK(big != NULL);
    asyncio_timeout_t scope;
    /* A wait for the fd would never end: bounded, and named. */
    CHECK_INT(asyncio_timeout_enter(&scope, 2.0), 0);
    send_xored(peer, "AAAAABBBBB", 10);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "AAAAA", 5) == 0);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "BBBBB", 5) == 0);
    send_xored(peer, "CCCCCDDDDD", 10);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 10), 10);
    CHECK(memcmp(buf, "CCCCCDDDDD", 10) == 0);
    send_xored(peer, "ab\ncdefgh\n", 10);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 3);
    CHECK_STR(buf, "ab\n");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 7);
    CHECK_STR(buf, "cdefgh\n");
    send_xored(peer, "EEEEEFFFFF", 10);
    CHECK_INT(asyncio_stream_fill(s), 5);
    CHECK_INT(asyncio_stream_fill(s), 5);
    const void *data = NULL;
    CHECK_INT(asyncio_stream_peek(s, &data), 10);
    CHECK(data && memcmp(data, "EEEEEFFFFF", 10) == 0);
    CHECK_INT(asyncio_stream_consume(s, 10), 0);
    send_xored(peer, "GGGGGHHHHH", 10);
    if (big) { /* reads large enough to skip the buffer */
        CHECK_INT(asyncio_stream_read(s, big, 8192), 5);
        CHECK(memcmp(big, "GGGGG", 5) == 0);
        CHECK_INT(asyncio_stream_read(s, big, 8192), 5);
        CHECK(memcmp(big, "HHHHH", 5) == 0);
    }
    CHECK_INT(asyncio_timeout_exit(&scope), 0);
    CHECK(x->pendings > 0);
    free(big);
    close_layered(s, peer);
    return 0;
}

static void test_stream_takes_what_the_layer_holds_without_waiting(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_pending, &x, NULL), 0);
    assert_layer_freed(&x);
}

/* A layer that takes a few bytes a call gets the rest in the next, from
 * the queue and from a vectored write tried at once. */
static int main_partial_sends(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    x->send_max = 7;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    size_t n = 20000;
    char *data = pattern_buf(n);
    struct take k = {.fd = peer, .n = n, .xored = true};
    asyncio_task_t *p = tu_spawn(take_pattern, &k, "peer");
    CHECK_INT(asyncio_stream_write(s, data, 1000), 0);
    CHECK_INT(asyncio_stream_write_buffer_size(s), 1000); /* queued */
    for (int i = 0; i < 10 && asyncio_stream_write_buffer_size(s); i++)
        tu_yield(1);
    CHECK_INT(asyncio_stream_write_buffer_size(s), 0);
    CHECK_INT(x->sent, 1000);
    struct iovec v[3] = {{data + 1000, 3000}, {data + 4000, 2000}, {data + 6000, n - 6000}};
    CHECK_INT(asyncio_stream_writev(s, v, 3), 0);
    CHECK_INT(x->max_iovcnt, 3);
    CHECK_INT(asyncio_stream_write_buffer_size(s), n - 1000 - 7); /* it took 7 at once */
    CHECK_INT(asyncio_await(p, NULL), 0);
    asyncio_task_release(p);
    CHECK_INT(k.got, n);
    CHECK(!k.bad);
    CHECK_INT(x->sent, n);
    CHECK(x->sends >= (int)((n + 6) / 7));
    free(data);
    close_layered(s, peer);
    return 0;
}

static void test_a_send_that_takes_part_gets_the_rest_next(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_partial_sends, &x, NULL), 0);
    assert_layer_freed(&x);
}

/* The layer's send wants to read (TLS may, to write): the stream calls it
 * again once input comes, which stays for the reader. */
static int main_send_wants_read(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    x->send_want_read = 1;
    CHECK_INT(asyncio_stream_write(s, "abc", 3), 0);
    CHECK_INT(asyncio_sleep(0.05), 0);
    char buf[8] = {0};
    CHECK_INT(recv(peer, buf, sizeof buf, MSG_DONTWAIT), -1); /* nothing yet */
    LOG("sends:%d", x->sends);
    send_xored(peer, "x", 1);
    CHECK_INT(recv_exactly(peer, buf, 3, true), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    LOG("sends:%d", x->sends);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 1);
    CHECK(buf[0] == 'x');
    close_layered(s, peer);
    return 0;
}

static void test_send_wanting_to_read_is_called_again_on_input(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_send_wants_read, &x, NULL), 0);
    assert_log("sends:1 sends:2");
    assert_layer_freed(&x);
}

/* The same while a task waits to read: the input that comes wakes the
 * reader, and the send must not be forgotten for it. */
static int main_send_wants_read_with_reader(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    asyncio_task_t *r = tu_spawn(blocked_read, s, "reader");
    tu_yield(1);
    x->send_want_read = 1;
    CHECK_INT(asyncio_stream_write(s, "abc", 3), 0);
    CHECK_INT(asyncio_sleep(0.05), 0);
    LOG("sends:%d", x->sends);
    send_xored(peer, "x", 1);
    CHECK_INT(asyncio_await(r, NULL), 0); /* it read "x" */
    asyncio_task_release(r);
    char buf[8] = {0};
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 1.0), 0);
    ssize_t got = recv_exactly(peer, buf, 3, true);
    asyncio_timeout_exit(&scope);
    LOG("peer:%s", got == 3 && memcmp(buf, "abc", 3) == 0 ? "abc" : err(got));
    asyncio_stream_abort(s); /* whatever happened, no linger */
    close_fd(peer);
    return 0;
}

static void test_send_wanting_to_read_is_called_again_when_a_reader_takes_the_input(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_send_wants_read_with_reader, &x, NULL), 0);
    assert_log("sends:1 read:x peer:abc");
    assert_layer_freed(&x);
}

/* write_eof(): the layer's shutdown after what is queued (waiting for the
 * fd if it asks), then the socket's; reading goes on through the layer. */
static int main_layer_write_eof(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    size_t n = 1 << 20;
    char *data = pattern_buf(n);
    CHECK_INT(asyncio_stream_write(s, data, n), 0);
    CHECK(asyncio_stream_write_buffer_size(s) > 0);
    CHECK_INT(asyncio_stream_write_eof(s), 0);
    CHECK_INT(x->shutdowns, 0); /* what is queued goes first */
    CHECK_INT(asyncio_stream_write_eof(s), 0);
    CHECK_INT(asyncio_stream_write(s, "x", 1), -EPIPE);
    struct collect c = {.fd = peer};
    CHECK_INT(collect_to_end(&c, NULL), 0);
    CHECK_INT(c.end, 0);
    size_t mark = x->shut_result ? 0 : END_LEN;
    CHECK_INT(c.len, n + mark);
    if (c.len == n + mark) {
        CHECK(holds_pattern(c.buf, n, true));
        CHECK(holds_xored(c.buf + n, END_MARK, mark));
    }
    LOG("shutdowns:%d", x->shutdowns);
    send_xored(peer, "reply", 5);
    char buf[8] = {0};
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK_STR(buf, "reply");
    CHECK_INT(shutdown(peer, SHUT_WR), 0);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    /* The peer's end came: the close neither lingers nor shuts again. */
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    LOG("shutdowns:%d", x->shutdowns);
    free(c.buf);
    free(data);
    close_fd(peer);
    return 0;
}

static void test_write_eof_shuts_the_layer_down_after_the_queue(void **state)
{
    (void)state;
    struct xl x = {.shut_again = 1}; /* -EAGAIN first: it waits for the fd */
    assert_int_equal(run(main_layer_write_eof, &x, NULL), 0);
    assert_log("shutdowns:2 shutdowns:2");
    assert_layer_freed(&x);
    struct xl y = {.shut_result = 1}; /* nothing to send: the end only */
    assert_int_equal(run(main_layer_write_eof, &y, NULL), 0);
    assert_log("shutdowns:1 shutdowns:1");
    assert_layer_freed(&y);
}

/* close(): the layer's shutdown after what is queued, then it lingers,
 * reading and dropping what the peer still sends, until the peer's end:
 * the peer gets everything, then the end, and no reset. */
struct junk {
    int fd;
    size_t n;
    ssize_t rc;
};

static int send_junk(void *arg, void **result)
{
    (void)result;
    struct junk *j = arg;
    char *b = calloc(1, j->n);
    CHECK(b != NULL);
    j->rc = b ? asyncio_sock_sendall(j->fd, b, j->n) : -ENOMEM;
    free(b);
    return 0;
}

static int main_close_lingers(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, x->tcp);
    if (!s)
        return -1;
    send_xored(peer, "unread", 6); /* input the stream never reads */
    size_t n = 1 << 20;
    char *data = pattern_buf(n);
    CHECK_INT(asyncio_stream_write(s, data, n), 0);
    struct closing c = {s, 0, false};
    asyncio_task_t *t = tu_spawn(wait_closed_task, &c, "closer");
    tu_yield(1);
    /* The peer sends more after the close, and reads. */
    struct junk j = {peer, 256 * 1024, 0};
    asyncio_task_t *js = tu_spawn(send_junk, &j, "junk");
    struct collect k = {.fd = peer};
    CHECK_INT(collect_to_end(&k, NULL), 0);
    LOG("peer:%s", err(k.end));
    CHECK_INT(k.len, n + END_LEN);
    if (k.len == n + END_LEN) {
        CHECK(holds_pattern(k.buf, n, true));
        CHECK(holds_xored(k.buf + n, END_MARK, END_LEN));
    }
    CHECK_INT(asyncio_await(js, NULL), 0);
    asyncio_task_release(js);
    CHECK_INT(j.rc, j.n); /* all taken (and dropped) */
    CHECK_INT(asyncio_sleep(0.05), 0);
    LOG("closed:%d", c.done);
    close_fd(peer);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    LOG("closed:%d wait_closed:%s", c.done, err(c.rc));
    CHECK_INT(x->shutdowns, 1);
    free(k.buf);
    free(data);
    return 0;
}

static void test_close_lingers_until_the_peer_s_end(void **state)
{
    (void)state;
    struct xl x = {.tcp = true};
    assert_int_equal(run(main_close_lingers, &x, NULL), 0);
    assert_log("peer:0 closed:0 closed:1 wait_closed:0");
    assert_layer_freed(&x);
    struct xl y = {0};
    assert_int_equal(run(main_close_lingers, &y, NULL), 0);
    assert_log("peer:0 closed:0 closed:1 wait_closed:0");
    assert_layer_freed(&y);
}

/* A shutdown that sent nothing (1): no linger, the fd is closed at once. */
static int main_close_without_linger(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    x->shut_result = 1;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    CHECK_INT(asyncio_stream_write(s, "bye", 3), 0);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 1.0), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0); /* the peer does nothing */
    CHECK_INT(asyncio_timeout_exit(&scope), 0);
    CHECK_INT(x->shutdowns, 1);
    char buf[8];
    CHECK_INT(recv_exactly(peer, buf, 3, true), 3);
    CHECK(memcmp(buf, "bye", 3) == 0);
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 0);
    errno = 0;
    CHECK_INT(send(peer, "late", 4, MSG_NOSIGNAL), -1); /* nobody holds the other end */
    CHECK_INT(errno, EPIPE);
    close_fd(peer);
    return 0;
}

static void test_close_after_a_shutdown_that_sent_nothing_does_not_linger(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_close_without_linger, &x, NULL), 0);
    assert_layer_freed(&x);
}

/* A peer that never ends: the linger gives up after 5 s. */
static int main_linger_times_out(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    double t0 = asyncio_loop_time();
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    double took = asyncio_loop_time() - t0;
    if (took < 4.5 || took > 8.0)
        tu_fail_at(__FILE__, __LINE__, "the close took %.3f s, not the 5 s linger", took);
    char buf[16];
    CHECK_INT(recv_exactly(peer, buf, END_LEN, true), END_LEN);
    CHECK(memcmp(buf, END_MARK, END_LEN) == 0);
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 0);
    close_fd(peer);
    return 0;
}

static void test_linger_ends_after_5_s_without_the_peer_s_end(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_linger_times_out, &x, NULL), 0);
    assert_layer_freed(&x);
}

/* The layer is freed once however the stream ends: abort (no shutdown),
 * the loop's end with the stream open, or lingering. */
static int main_layer_abort(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    CHECK(asyncio_stream_write_buffer_size(s) > 0);
    CHECK_INT(asyncio_stream_abort(s), 0);
    CHECK_INT(x->frees, 1); /* at once */
    CHECK_INT(x->shutdowns, 0);
    struct collect k = {.fd = peer};
    CHECK_INT(collect_to_end(&k, NULL), 0);
    CHECK(k.len < BIG);
    CHECK_INT(k.end, 0);
    free(k.buf);
    free(data);
    close_fd(peer);
    return 0;
}

static int main_layer_left_open(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    send_xored(peer, "hi", 2);
    char buf[8];
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 2);
    CHECK_INT(asyncio_stream_write(s, "yo", 2), 0);
    CHECK_INT(recv_exactly(peer, buf, 2, true), 2);
    close_fd(peer);
    return 0; /* s is open: the loop's end frees it, and its layer */
}

static int main_layer_left_lingering(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    int peer;
    asyncio_stream_t *s = layered(x, &peer, false);
    if (!s)
        return -1;
    CHECK_INT(asyncio_stream_close(s), 0);
    char buf[16];
    CHECK_INT(recv_exactly(peer, buf, END_LEN, true), END_LEN);
    CHECK_INT(asyncio_sock_recv(peer, buf, sizeof buf), 0); /* it lingers now */
    x->peer = peer; /* closed after the loop's end */
    return 0;
}

static void test_layer_is_freed_once_by_abort_and_by_the_loop_s_end(void **state)
{
    (void)state;
    struct xl a = {0};
    assert_int_equal(run(main_layer_abort, &a, NULL), 0);
    assert_layer_freed(&a);
    assert_int_equal(a.shutdowns, 0);
    struct xl b = {0};
    assert_int_equal(run(main_layer_left_open, &b, NULL), 0);
    assert_layer_freed(&b);
    struct xl c = {.peer = -1};
    assert_int_equal(run(main_layer_left_lingering, &c, NULL), 0);
    assert_layer_freed(&c);
    assert_int_equal(c.shutdowns, 1);
    if (c.peer >= 0)
        close(c.peer);
}

/* set_layer() waiting for the queue is cancelled, times out, or sees the
 * stream closed: no layer, the caller keeps it; nothing queued is lost. */
static int main_set_layer_interrupted(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg, *other = x + 1, *third = x + 2;
    int peer;
    asyncio_stream_t *s = pair(&peer, 0);
    if (!s)
        return -1;
    x->fd = other->fd = asyncio_stream_fd(s);
    x->shut_result = 1;
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    size_t queued = asyncio_stream_write_buffer_size(s);
    CHECK(queued > 0);
    struct layer_call c = {s, x};
    asyncio_task_t *t = tu_spawn(set_layer_task, &c, "set_layer");
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(t), "stream set_layer");
    /* Meanwhile nobody else reads, drains or sets a layer. */
    char buf[4];
    LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
    LOG("drain:%s", err(asyncio_stream_drain(s)));
    LOG("other:%s", err(asyncio_stream_set_layer(s, &xl_ops, other)));
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), NULL);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), NULL);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    LOG("timeout:%s", err(asyncio_stream_set_layer(s, &xl_ops, x)));
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_PTR(asyncio_stream_get_layer(s, &xl_ops), NULL);
    CHECK_INT(asyncio_stream_write_buffer_size(s), queued); /* nothing dropped */
    /* It works once the peer reads: the queue in plain, then the layer. */
    struct collect k = {.fd = peer, .chunk = 65536};
    asyncio_task_t *p = tu_spawn(collect_to_end, &k, "peer");
    CHECK_INT(asyncio_stream_set_layer(s, &xl_ops, x), 0);
    CHECK_INT(asyncio_stream_write(s, "after", 5), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_await(p, NULL), 0);
    asyncio_task_release(p);
    CHECK_INT(k.end, 0);
    CHECK_INT(k.len, BIG + 5);
    if (k.len == BIG + 5) {
        CHECK(holds_pattern(k.buf, BIG, false));
        CHECK(holds_xored(k.buf + BIG, "after", 5));
    }
    free(k.buf);
    close_fd(peer);
    /* Closed while it waits. */
    s = pair(&peer, 0);
    if (s) {
        third->fd = asyncio_stream_fd(s);
        CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
        struct layer_call c3 = {s, third};
        t = tu_spawn(set_layer_task, &c3, "set_layer");
        tu_yield(1);
        CHECK_INT(asyncio_stream_close(s), 0);
        CHECK_INT(asyncio_await(t, NULL), 0);
        asyncio_task_release(t);
        struct collect k3 = {.fd = peer, .chunk = 65536};
        CHECK_INT(collect_to_end(&k3, NULL), 0); /* the queue still goes, in plain */
        CHECK_INT(k3.end, 0);
        CHECK_INT(k3.len, BIG);
        CHECK(k3.len == BIG && holds_pattern(k3.buf, BIG, false));
        free(k3.buf);
        close_fd(peer);
    }
    free(data);
    return 0;
}

static void test_set_layer_cancelled_timed_out_or_closed_installs_nothing(void **state)
{
    (void)state;
    struct xl x[3] = {{0}};
    assert_int_equal(run(main_set_layer_interrupted, x, NULL), 0);
    assert_log("read:EBUSY drain:EBUSY other:EBUSY set_layer:ECANCELED timeout:ETIMEDOUT "
               "set_layer:EBADF");
    assert_layer_freed(&x[0]);
    assert_layer_unused(&x[1]);
    assert_layer_unused(&x[2]);
}

/* ---- sending a file (asyncio_stream_sendfile) ---------------------------- */

/* The system's sendfile is used, unless the build has none (portable). */
#ifdef TU_PORTABLE_FEATURES
#define HAS_ZERO_COPY 0
#else
#define HAS_ZERO_COPY 1
#endif

#define MIB (1024 * 1024)
#define SMALL_FILE 16384 /* stream.h: a smaller count is read into the queue */

/* A temporary file of n bytes of tu_pattern(), already unlinked: its fd. */
/* n bytes written before the file: "HEAD" then 'h's. */
static char *head_buf(size_t n)
{
    char *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    if (b) {
        memset(b, 'h', n);
        memcpy(b, "HEAD", n < 4 ? n : 4);
    }
    return b;
}

/* got (len bytes; XORed on the wire if xored) is head, then tu_pattern()
 * from offset for n bytes, then tail: or say where it is not. */
static void check_sent(const char *got, size_t len, bool xored, const char *head, size_t hlen,
                       size_t offset, size_t n, const char *tail, int line)
{
    unsigned char key = xored ? XOR_KEY : 0;
    size_t tlen = strlen(tail);
    if (len != hlen + n + tlen) {
        tu_fail_at(__FILE__, line, "got %zu bytes, expected %zu + %zu + %zu", len, hlen, n, tlen);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)got[i] ^ key;
        unsigned char want = i < hlen       ? (unsigned char)head[i]
                             : i < hlen + n ? tu_pattern(offset + i - hlen)
                                            : (unsigned char)tail[i - hlen - n];
        if (c != want) {
            tu_fail_at(__FILE__, line, "byte %zu (%s) is %u, expected %u", i,
                       i < hlen ? "head" : i < hlen + n ? "file" : "tail", c, want);
            return;
        }
    }
}

/* Small kernel buffers on both ends, whatever the system's defaults, so
 * that a peer that does not read soon stops the sender. */
static void small_buffers(asyncio_stream_t *s, int peer)
{
    int small = 65536;
    CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    CHECK_INT(setsockopt(asyncio_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
}

/* Until t waits, for a second at most. */
/* asyncio_stream_sendfile() in a task of its own, logging its value. */
struct sendfile_call {
    asyncio_stream_t *s;
    int file;
    off_t offset;
    size_t count;
    int flags;
    ssize_t sent;
    bool log;
    int *running; /* if set: senders that have begun and not ended */
    bool overlapped; /* the other was running when this one ended */
};

static int sendfile_task(void *arg, void **result)
{
    (void)result;
    struct sendfile_call *c = arg;
    if (c->running)
        ++*c->running;
    c->sent = asyncio_stream_sendfile(c->s, c->file, c->offset, c->count, c->flags);
    if (c->running)
        c->overlapped = (*c->running)-- == 2;
    if (c->log)
        LOG("sendfile:%s", err(c->sent));
    return 0;
}

/* HEAD, the file, TAIL: in that order, for small files (read into the
 * queue) and large ones (zero-copy), whole and in ranges. */
struct sf_case {
    size_t size, head;
    off_t offset;
    size_t count, expect;
};

static const struct sf_case sf_cases[] = {
    {5000, 4, 0, 0, 5000},                 /* small: read into the queue */
    {5000, 150000, 0, 0, 5000},            /* ... after a queue that waits */
    {SMALL_FILE - 1, 4, 0, 0, SMALL_FILE - 1},
    {SMALL_FILE, 4, 0, 0, SMALL_FILE},
    {3 * MIB + 333, 4, 0, 0, 3 * MIB + 333},      /* large: zero-copy */
    {3 * MIB + 333, 150000, 0, 0, 3 * MIB + 333}, /* ... after a queue that waits */
    {3 * MIB + 333, 4, 777, 2 * MIB, 2 * MIB},    /* from the middle */
    {3 * MIB + 333, 4, 3 * MIB + 333 - 100, 0, 100},          /* the last 100 bytes */
    {3 * MIB + 333, 4, 3 * MIB + 333 - 20000, 50000, 20000},  /* past the end */
    {3 * MIB + 333, 4, 0, SIZE_MAX, 3 * MIB + 333},
    {3 * MIB + 333, 4, 3 * MIB + 333, 10, 0},     /* at the end */
    {3 * MIB + 333, 4, 4 * MIB, 0, 0},            /* after it */
    {0, 4, 0, 0, 0},                              /* an empty file */
};

static int main_stream_sendfile(void *arg, void **result)
{
    (void)result;
    int flags = (int)(intptr_t)arg;
    bool unsupported = !HAS_ZERO_COPY && (flags & ASYNCIO_SENDFILE_NO_FALLBACK);
    for (size_t i = 0; i < sizeof sf_cases / sizeof sf_cases[0]; i++) {
        const struct sf_case *k = &sf_cases[i];
        int file = tu_temp_file(k->size);
        CHECK_INT(lseek(file, 99, SEEK_SET), 99);
        int peer;
        asyncio_stream_t *s = tcp_pair(&peer);
        struct collect c = {.fd = peer};
        asyncio_task_t *t = tu_spawn(collect_to_end, &c, "peer");
        char *head = head_buf(k->head);
        CHECK_INT(asyncio_stream_write(s, head, k->head), 0);
        ssize_t sent = asyncio_stream_sendfile(s, file, k->offset, k->count, flags);
        ssize_t want = unsupported ? -ENOTSUP : (ssize_t)k->expect;
        if (sent != want)
            tu_fail_at(__FILE__, __LINE__, "case %zu: sendfile is %s, expected %s", i, err(sent),
                       err(want));
        /* Zero-copy returns once the kernel has it all (stream.h). */
        if (HAS_ZERO_COPY && (k->expect >= SMALL_FILE || flags) && sent >= 0)
            CHECK_INT(asyncio_stream_write_buffer_size(s), 0);
        CHECK_INT(asyncio_stream_write(s, "TAIL", 4), 0);
        CHECK_INT(asyncio_stream_wait_closed(s), 0);
        CHECK_INT(asyncio_await(t, NULL), 0);
        asyncio_task_release(t);
        CHECK_INT(c.end, 0);
        check_sent(c.buf, c.len, false, head, k->head, (size_t)k->offset,
                   sent > 0 ? (size_t)sent : 0, "TAIL", __LINE__);
        CHECK_INT(lseek(file, 0, SEEK_CUR), 99); /* the file's offset did not move */
        free(head);
        free(c.buf);
        close_fd(peer);
        close(file);
    }
    return 0;
}

static void test_sendfile_sends_the_file_between_what_was_written_before_and_after(void **state)
{
    (void)state;
    assert_int_equal(run(main_stream_sendfile, (void *)(intptr_t)0, NULL), 0);
}

static void test_sendfile_without_fallback_on_a_plain_stream_is_zero_copy_or_enotsup(void **state)
{
    (void)state;
    /* Small counts too: the flag asks for the system's sendfile. */
    assert_int_equal(
        run(main_stream_sendfile, (void *)(intptr_t)ASYNCIO_SENDFILE_NO_FALLBACK, NULL), 0);
}

/* While a task is in sendfile: writes, drains, write_eof and another
 * sendfile get -EBUSY; reads go on. Through the layer (xl not NULL) the
 * file is read into the queue, and the sender waits as a drain does. */
static int main_sendfile_busy(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    size_t size = 8 * MIB;
    int file = tu_temp_file(size);
    int peer;
    asyncio_stream_t *s = x ? layered(x, &peer, true) : tcp_pair(&peer);
    if (!s)
        return -1;
    small_buffers(s, peer);
    struct sendfile_call c = {.s = s, .file = file, .log = true};
    asyncio_task_t *t = tu_spawn(sendfile_task, &c, "sender");
    tu_until_waiting(t);
    LOG("write:%s", err(asyncio_stream_write(s, "x", 1)));
    struct iovec v = {"y", 1};
    LOG("writev:%s", err(asyncio_stream_writev(s, &v, 1)));
    LOG("drain:%s", err(asyncio_stream_drain(s)));
    LOG("write_eof:%s", err(asyncio_stream_write_eof(s)));
    LOG("sendfile:%s", err(asyncio_stream_sendfile(s, file, 0, 10, 0)));
    LOG("sendfile:%s", err(asyncio_stream_sendfile(s, file, 0, 0, ASYNCIO_SENDFILE_NO_FALLBACK)));
    /* Reading is another direction: it goes on. */
    if (x)
        send_xored(peer, "ping", 4);
    else
        CHECK_INT(asyncio_sock_sendall(peer, "ping", 4), 4);
    char buf[8] = {0};
    CHECK_INT(asyncio_stream_readexactly(s, buf, 4), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK(asyncio_task_waiting_on(t) != NULL); /* still sending */
    /* The peer reads: the file, then what is written once sendfile returned. */
    struct collect k = {.fd = peer};
    asyncio_task_t *r = tu_spawn(collect_to_end, &k, "peer");
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(c.sent, size);
    CHECK_INT(asyncio_stream_write(s, "TAIL", 4), 0);
    CHECK_INT(asyncio_stream_drain(s), 0);
    CHECK_INT(asyncio_stream_write_eof(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(k.end, 0);
    /* (the layer sends its end marker at write_eof) */
    check_sent(k.buf, k.len, x != NULL, "", 0, 0, size, x ? "TAIL" END_MARK : "TAIL", __LINE__);
    free(k.buf);
    if (x)
        CHECK_INT(asyncio_stream_abort(s), 0); /* the layer's end marker is not our subject */
    else
        CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    close(file);
    return 0;
}

#define BUSY_LOG                                                                        \
    "write:EBUSY writev:EBUSY drain:EBUSY write_eof:EBUSY sendfile:EBUSY sendfile:EBUSY " \
    "sendfile:8388608"

static void test_writes_drains_and_a_second_sendfile_get_ebusy_during_sendfile(void **state)
{
    (void)state;
    assert_int_equal(run(main_sendfile_busy, NULL, NULL), 0);
    assert_log(BUSY_LOG);
    struct xl x = {0};
    assert_int_equal(run(main_sendfile_busy, &x, NULL), 0);
    assert_log(BUSY_LOG);
    assert_layer_freed(&x);
}

/* A drain in progress: sendfile is -EBUSY (stream.h), and sends nothing. */
static int main_sendfile_while_draining(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int file = tu_temp_file(100000);
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    small_buffers(s, peer);
    char *data = pattern_buf(BIG);
    CHECK_INT(asyncio_stream_write(s, data, BIG), 0);
    asyncio_task_t *d = tu_spawn(logging_drainer, s, "drainer");
    tu_until_waiting(d);
    LOG("sendfile:%s", err(asyncio_stream_sendfile(s, file, 0, 0, 0)));
    LOG("sendfile:%s", err(asyncio_stream_sendfile(s, file, 0, 100, 0)));
    struct collect k = {.fd = peer};
    asyncio_task_t *r = tu_spawn(collect_to_end, &k, "peer");
    CHECK_INT(asyncio_await(d, NULL), 0);
    asyncio_task_release(d);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(k.len, BIG); /* the queue, and nothing of the file */
    CHECK(k.len == BIG && holds_pattern(k.buf, BIG, false));
    free(k.buf);
    free(data);
    close_fd(peer);
    close(file);
    return 0;
}

static void test_sendfile_while_another_task_drains_gets_ebusy(void **state)
{
    (void)state;
    assert_int_equal(run(main_sendfile_while_draining, NULL, NULL), 0);
    assert_log("sendfile:EBUSY sendfile:EBUSY drain:0");
}

/* set_layer() while a sendfile sends in plain: -EBUSY, as for a drain
 * (it must not put a layer under bytes that are still going out). */
static int main_set_layer_during_sendfile(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    size_t size = 8 * MIB;
    int file = tu_temp_file(size);
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    small_buffers(s, peer);
    struct sendfile_call c = {.s = s, .file = file, .log = true};
    asyncio_task_t *t = tu_spawn(sendfile_task, &c, "sender");
    tu_until_waiting(t);
    LOG("set_layer:%s", err(asyncio_stream_set_layer(s, &xl_ops, x)));
    struct collect k = {.fd = peer};
    asyncio_task_t *r = tu_spawn(collect_to_end, &k, "peer");
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_stream_abort(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    free(k.buf);
    close_fd(peer);
    close(file);
    return 0;
}

static void test_set_layer_during_sendfile_gets_ebusy(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_set_layer_during_sendfile, &x, NULL), 0);
    assert_log("set_layer:EBUSY sendfile:8388608");
    assert_layer_unused(&x);
}

/* Through the toy layer: the file is read into the queue and goes out
 * XORed, in order; with ASYNCIO_SENDFILE_NO_FALLBACK, -ENOTSUP and nothing
 * queued. */
static int main_sendfile_layered(void *arg, void **result)
{
    (void)result;
    struct xl *x = arg;
    static const size_t sizes[] = {5000, MIB + 7};
    int peer;
    asyncio_stream_t *s = layered(x, &peer, true);
    if (!s)
        return -1;
    for (int i = 0; i < 2; i++) {
        size_t size = sizes[i];
        int file = tu_temp_file(size);
        CHECK_INT(lseek(file, 3, SEEK_SET), 3);
        CHECK_INT(asyncio_stream_write(s, "HEAD", 4), 0);
        CHECK_INT(asyncio_stream_sendfile(s, file, 0, 0, ASYNCIO_SENDFILE_NO_FALLBACK), -ENOTSUP);
        CHECK_INT(asyncio_stream_write_buffer_size(s) <= 4, 1); /* nothing of the file */
        struct sendfile_call c = {.s = s, .file = file, .offset = 1, .log = true};
        asyncio_task_t *t = tu_spawn(sendfile_task, &c, "sender");
        size_t want = 4 + size - 1 + 4;
        char *got = malloc(want);
        CHECK_INT(recv_exactly(peer, got, want - 4, false), want - 4);
        CHECK_INT(asyncio_await(t, NULL), 0);
        asyncio_task_release(t);
        CHECK_INT(asyncio_stream_write(s, "TAIL", 4), 0);
        CHECK_INT(recv_exactly(peer, got + want - 4, 4, false), 4);
        check_sent(got, want, true, "HEAD", 4, 1, size - 1, "TAIL", __LINE__);
        CHECK_INT(lseek(file, 0, SEEK_CUR), 3);
        free(got);
        close(file);
    }
    close_layered(s, peer);
    return 0;
}

static void test_sendfile_through_a_layer_reads_the_file_into_the_queue(void **state)
{
    (void)state;
    struct xl x = {0};
    assert_int_equal(run(main_sendfile_layered, &x, NULL), 0);
    assert_log("sendfile:4999 sendfile:1048582");
    assert_layer_freed(&x);
}

/* A stream over a pipe or a regular file: no zero-copy there (stream.h:
 * "on a pipe ... the file is read into the queue ... unless flags has
 * ASYNCIO_SENDFILE_NO_FALLBACK (-ENOTSUP then)"), but the file arrives. */
/* collect_to_end() for a pipe (recv(2) is for sockets). */
static int read_pipe_to_end(void *arg, void **result)
{
    (void)result;
    struct collect *c = arg;
    for (;;) {
        if (c->len == c->cap) {
            char *b = realloc(c->buf, c->cap ? c->cap * 2 : 65536);
            CHECK(b != NULL);
            if (!b)
                break;
            c->buf = b;
            c->cap = c->cap ? c->cap * 2 : 65536;
        }
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n < 0 && errno == EAGAIN) {
            if ((c->end = asyncio_wait_readable(c->fd)) < 0)
                break;
            continue;
        }
        if (n <= 0) {
            c->end = n < 0 ? -errno : 0;
            break;
        }
        c->len += (size_t)n;
    }
    return 0;
}

static int main_sendfile_to_pipe_and_file(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t size = 300000;
    int file = tu_temp_file(size);
    int p[2];
    CHECK_INT(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    asyncio_stream_t *s = NULL;
    CHECK_INT(asyncio_stream_open(&s, p[1], 0), 0);
    if (!s)
        return -1;
    struct collect k = {.fd = p[0]};
    asyncio_task_t *r = tu_spawn(read_pipe_to_end, &k, "reader");
    LOG("pipe:%s", err(asyncio_stream_sendfile(s, file, 0, 0, ASYNCIO_SENDFILE_NO_FALLBACK)));
    LOG("pipe:%s", err(asyncio_stream_sendfile(s, file, 0, 0, 0)));
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    /* What NO_FALLBACK sent, if anything, then the whole file. */
    size_t first = k.len > size ? k.len - size : 0;
    CHECK(first == 0 || first == size);
    check_sent(k.buf + first, k.len - first, false, "", 0, 0, size, "", __LINE__);
    free(k.buf);
    close(p[0]);
    /* A regular file. */
    char path[] = "/tmp/asyncio-sendfile-XXXXXX";
    int out = mkstemp(path);
    CHECK(out >= 0);
    unlink(path);
    CHECK_INT(asyncio_stream_open(&s, out, 0), 0);
    int copy = dup(out);
    LOG("file:%s", err(asyncio_stream_sendfile(s, file, 0, 0, ASYNCIO_SENDFILE_NO_FALLBACK)));
    LOG("file:%s", err(asyncio_stream_sendfile(s, file, 0, 0, 0)));
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    char *got = malloc(size + 1);
    CHECK_INT(pread(copy, got, size + 1, 0), size);
    check_sent(got, size, false, "", 0, 0, size, "", __LINE__);
    free(got);
    close(copy);
    close(file);
    return 0;
}

/* A pipe takes the file's pages as a socket does (sendfile), a stream over
 * a regular file reads it into the queue (NO_FALLBACK: -ENOTSUP). */
static void test_sendfile_to_a_pipe_is_zero_copy_and_to_a_file_stream_reads_into_the_queue(
    void **state)
{
    (void)state;
    assert_int_equal(run(main_sendfile_to_pipe_and_file, NULL, NULL), 0);
#ifdef TU_PORTABLE_FEATURES
    assert_log("pipe:ENOTSUP pipe:300000 file:ENOTSUP file:300000");
#else
    assert_log("pipe:300000 pipe:300000 file:ENOTSUP file:300000");
#endif
}

/* Bad input, and calls outside a task. After each, the stream is usable. */
static void cb_stream_sendfile(void *arg)
{
    struct sendfile_call *c = arg;
    LOG("callback:%s", err(asyncio_stream_sendfile(c->s, c->file, 0, 0, 0)));
}

static int main_sendfile_bad_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int file = tu_temp_file(1000);
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    LOG("null:%s", err(asyncio_stream_sendfile(NULL, file, 0, 0, 0)));
    static uint64_t junk[64]; /* zeros: not a stream */
    LOG("junk:%s", err(asyncio_stream_sendfile((asyncio_stream_t *)(void *)junk, file, 0, 0, 0)));
    LOG("file-1:%s", err(asyncio_stream_sendfile(s, -1, 0, 0, 0)));
    LOG("offset:%s", err(asyncio_stream_sendfile(s, file, -1, 0, 0)));
    LOG("flags:%s", err(asyncio_stream_sendfile(s, file, 0, 0, 0x2)));
    int p[2];
    CHECK_INT(pipe(p), 0);
    CHECK_INT(write(p[1], "data", 4), 4);
    LOG("pipe:%s", err(asyncio_stream_sendfile(s, p[0], 0, 4, 0)));
    LOG("pipe:%s", err(asyncio_stream_sendfile(s, p[0], 0, 4, ASYNCIO_SENDFILE_NO_FALLBACK)));
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dir >= 0);
    LOG("dir:%s", err(asyncio_stream_sendfile(s, dir, 0, 4, 0)));
    LOG("dir:%s", err(asyncio_stream_sendfile(s, dir, 0, 1 << 20, 0)));
    LOG("dir:%s", err(asyncio_stream_sendfile(s, dir, 0, 0, 0)));
    close(dir);
    close(p[0]);
    close(p[1]);
    struct sendfile_call c = {.s = s, .file = file};
    CHECK_INT(asyncio_call_soon(cb_stream_sendfile, &c, NULL), 0);
    tu_yield(2);
    /* None of them sent or queued a byte, nor left the stream busy. */
    CHECK_INT(asyncio_stream_write_buffer_size(s), 0);
    CHECK_INT(asyncio_stream_write(s, "ok", 2), 0);
    CHECK_INT(asyncio_stream_drain(s), 0);
    LOG("after:%s", err(asyncio_stream_sendfile(s, file, 0, 0, 0)));
    CHECK_INT(asyncio_stream_write_eof(s), 0);
    LOG("after_eof:%s", err(asyncio_stream_sendfile(s, file, 0, 0, 0)));
    struct collect k = {.fd = peer};
    CHECK_INT(collect_to_end(&k, NULL), 0);
    check_sent(k.buf, k.len, false, "ok", 2, 0, 1000, "", __LINE__);
    free(k.buf);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    close_fd(peer);
    close(file);
    return 0;
}

static void test_sendfile_bad_input_and_calls_outside_a_task_get_error_codes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(asyncio_stream_sendfile(NULL, file, 0, 0, 0), -EINVAL); /* no loop */
    close(file);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(run(main_sendfile_bad_input, NULL, NULL), 0);
    /* Without a system sendfile, NO_FALLBACK is refused before the file is
     * read; else the first read finds the pipe. */
#ifdef TU_PORTABLE_FEATURES
#define NO_FALLBACK_PIPE "pipe:ENOTSUP "
#else
#define NO_FALLBACK_PIPE "pipe:ESPIPE "
#endif
    assert_log("null:EINVAL junk:EINVAL file-1:EBADF offset:EINVAL flags:EINVAL pipe:ESPIPE " //
               NO_FALLBACK_PIPE "dir:EISDIR dir:EISDIR dir:EISDIR callback:EPERM after:1000 "
               "after_eof:EPIPE");
#undef NO_FALLBACK_PIPE
}

/* The peer is gone: -EPIPE or -ECONNRESET, and the error sticks; in a
 * child whose SIGPIPE has its default action. */
static const char *gone(long long rc)
{
    return rc == -EPIPE || rc == -ECONNRESET ? "gone" : err(rc);
}

static int main_stream_sendfile_peer_gone(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int file = tu_temp_file(8 * MIB);
    for (int reset = 0; reset < 2; reset++) {
        int peer;
        asyncio_stream_t *s = tcp_pair(&peer);
        if (reset) {
            struct linger lg = {1, 0};
            CHECK_INT(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        }
        close_fd(peer);
        ssize_t rc = asyncio_stream_sendfile(s, file, 0, 0, 0);
        LOG("before:%s", gone(rc));
        CHECK_INT(asyncio_stream_write(s, "x", 1), rc); /* it sticks */
        CHECK_INT(asyncio_stream_sendfile(s, file, 0, 0, 0), rc);
        asyncio_stream_close(s);
    }
    /* Gone while it reads: after the first 64 KiB. */
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    small_buffers(s, peer);
    struct sendfile_call c = {.s = s, .file = file};
    asyncio_task_t *t = tu_spawn(sendfile_task, &c, "sender");
    tu_until_waiting(t);
    static char buf[65536];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = asyncio_sock_recv(peer, buf, sizeof buf);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close_fd(peer);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    LOG("while:%s", gone(c.sent));
    asyncio_stream_close(s);
    close(file);
    return 0;
}

static void test_sendfile_to_a_peer_that_is_gone_gives_epipe_not_sigpipe(void **state)
{
    (void)state;
    tu_assert_no_sigpipe(main_stream_sendfile_peer_gone, "before:gone before:gone while:gone");
}

/* A peer that does not read: the sender waits; cancelled, timed out, or
 * the stream closed by another task, it returns; nothing leaks (the fds
 * are counted here; the sanitizers and valgrind count the memory). */
static int main_stream_sendfile_interrupted(void *arg, void **result)
{
    (void)result;
    bool layer = arg != NULL;
    struct xl *x = arg;
    int file = tu_temp_file(8 * MIB);
    for (int how = 0; how < 3; how++) {
        int peer;
        asyncio_stream_t *s = layer ? layered(&x[how], &peer, true) : tcp_pair(&peer);
        if (!s)
            return -1;
        small_buffers(s, peer);
        CHECK_INT(asyncio_stream_write(s, "HEAD", 4), 0);
        struct sendfile_call c = {.s = s, .file = file, .log = true};
        if (how == 1) {
            asyncio_timeout_t scope;
            CHECK_INT(asyncio_timeout_enter(&scope, 0.05), 0);
            CHECK_INT(sendfile_task(&c, NULL), 0);
            LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
        } else {
            asyncio_task_t *t = tu_spawn(sendfile_task, &c, "sender");
            tu_until_waiting(t);
            if (how == 0)
                CHECK_INT(asyncio_task_cancel(t), 1);
            else
                CHECK_INT(asyncio_stream_close(s), 0);
            CHECK_INT(asyncio_await(t, NULL), 0);
            asyncio_task_release(t);
        }
        /* The peer gets HEAD and part of the file, in order, then the end
         * (once it reads, what was queued goes; the close ends it). */
        struct collect k = {.fd = peer};
        asyncio_task_t *r = tu_spawn(collect_to_end, &k, "peer");
        if (how != 2)
            CHECK_INT(asyncio_stream_close(s), 0);
        CHECK_INT(asyncio_await(r, NULL), 0);
        asyncio_task_release(r);
        size_t len = k.len;
        if (layer && len >= END_LEN) { /* the layer's end marker, last */
            CHECK(holds_xored(k.buf + len - END_LEN, END_MARK, END_LEN));
            len -= END_LEN;
        }
        CHECK(len >= 4 && len < 4 + 8 * MIB);
        if (len >= 4)
            check_sent(k.buf, len, layer, "HEAD", 4, 0, len - 4, "", __LINE__);
        free(k.buf);
        close_fd(peer);
    }
    close(file);
    return 0;
}

#define INTERRUPTED_LOG "sendfile:ECANCELED sendfile:ETIMEDOUT exit:ETIMEDOUT sendfile:EBADF"

static void test_sendfile_cancelled_timed_out_or_closed_while_it_waits(void **state)
{
    (void)state;
    int fds = tu_dir_entries("/proc/self/fd");
    assert_int_equal(run(main_stream_sendfile_interrupted, NULL, NULL), 0);
    assert_log(INTERRUPTED_LOG);
    assert_int_equal(tu_dir_entries("/proc/self/fd"), fds);
    struct xl x[3] = {{0}};
    assert_int_equal(run(main_stream_sendfile_interrupted, x, NULL), 0);
    assert_log(INTERRUPTED_LOG);
    assert_int_equal(tu_dir_entries("/proc/self/fd"), fds);
    for (int i = 0; i < 3; i++)
        assert_int_equal(x[i].frees, 1);
}

/* Closed by another task while sendfile yields for fairness (not while it
 * waits: nothing wakes it then): its next step must see the close and
 * return -EBADF, not use the stream (freed once the close is done) nor its
 * fd (closed, and perhaps another file's by then). */
struct reuse {
    asyncio_stream_t *s;
    asyncio_task_t *sender;
    int reused; /* a file opened at once after the close, on the stream's fd number */
};

/* Close s once the sender is ready to run (it yielded), and open a file
 * on the stream's fd number at once. */
static int close_and_reuse(void *arg, void **result)
{
    (void)result;
    struct reuse *u = arg;
    for (int i = 0; i < 100000; i++) {
        const char *st = asyncio_task_state(u->sender);
        if (st && strcmp(st, "ready") == 0)
            break;
        if (asyncio_sleep(0) < 0)
            return 0;
    }
    CHECK_STR(asyncio_task_state(u->sender), "ready");
    int oldfd = asyncio_stream_fd(u->s);
    CHECK(oldfd >= 0);
    CHECK_INT(asyncio_stream_close(u->s), 0);
    LOG("closed");
    /* As a server's next accept() would: the lowest free number at or
     * above the stream's, which is the stream's now. */
    char path[] = "/tmp/asyncio-sendfile-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    u->reused = fcntl(fd, F_DUPFD_CLOEXEC, oldfd);
    if (u->reused != oldfd) { /* still open: a layer's close lingers */
        close(u->reused);
        u->reused = -1;
    }
    close(fd);
    return 0;
}

/* Spend the task's budget of calls that do not wait (64 one-byte reads
 * of bytes that are there), so that sendfile's first step is to yield. */
struct budget_call {
    struct sendfile_call c;
    int fd; /* holds 64 bytes */
};

static int budget_then_sendfile(void *arg, void **result)
{
    struct budget_call *b = arg;
    for (int i = 0; i < 64; i++) {
        char ch;
        CHECK_INT(asyncio_sock_recv(b->fd, &ch, 1), 1);
    }
    return sendfile_task(&b->c, result);
}

/* Read fd (blocking) to its end, in a thread: the bytes counted in a
 * struct collect, not kept. */
static void *thread_sink(void *arg)
{
    struct collect *c = arg;
    static char buf[1 << 18];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->end = n < 0 ? -errno : 0;
            break;
        }
        c->len += (size_t)n;
    }
    return NULL;
}

/* arg: "entry" (it yields on entry), "large" (a large file, zero-copy:
 * it yields between chunks), "layered" (through the layer: between reads
 * into the queue, the last one after the yield). */
static int main_close_during_sendfile_yield(void *arg, void **result)
{
    (void)result;
    const char *how = arg;
    bool entry = strcmp(how, "entry") == 0, layer = strcmp(how, "layered") == 0;
    size_t size = entry ? 100000 : layer ? 256 * 1024 + 1000 : 64 * MIB;
    int file = tu_temp_file(size);
    int peer;
    static struct xl x; /* the loop's end may free the layer after we return */
    memset(&x, 0, sizeof x);
    asyncio_stream_t *s = layer ? layered(&x, &peer, true) : tcp_pair(&peer);
    if (!s)
        return -1;
    /* A peer that keeps up: a thread reading, so that the sender yields
     * for fairness more than it waits. */
    int fl = fcntl(peer, F_GETFL);
    CHECK_INT(fcntl(peer, F_SETFL, fl & ~O_NONBLOCK), 0);
    struct collect k = {.fd = peer};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, thread_sink, &k), 0);
    int sv[2] = {-1, -1};
    struct budget_call b = {.c = {.s = s, .file = file, .log = true}};
    asyncio_task_t *t;
    if (entry) {
        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        static const char bytes[64];
        CHECK_INT(write(sv[1], bytes, sizeof bytes), sizeof bytes);
        b.fd = sv[0];
        t = tu_spawn(budget_then_sendfile, &b, "sender");
    } else {
        t = tu_spawn(sendfile_task, &b.c, "sender");
    }
    struct reuse u = {.s = s, .sender = t, .reused = -1};
    asyncio_task_t *cl = tu_spawn(close_and_reuse, &u, "closer");
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(asyncio_await(cl, NULL), 0);
    asyncio_task_release(t);
    asyncio_task_release(cl);
    if (layer) /* its end marker went, or not: the close waits for the peer's end */
        CHECK_INT(shutdown(peer, SHUT_WR), 0);
    CHECK_INT(pthread_join(th, NULL), 0); /* the close ended the connection */
    if (b.c.sent >= 0) /* if it says it sent them, the peer got them */
        CHECK(k.len >= (size_t)b.c.sent);
    if (u.reused >= 0) {
        struct stat st;
        CHECK_INT(fstat(u.reused, &st), 0);
        CHECK_INT(st.st_size, 0); /* nothing sent to another's fd */
        close(u.reused);
    }
    if (sv[0] >= 0) {
        close(sv[0]);
        close(sv[1]);
    }
    close(peer);
    close(file);
    return 0;
}

static void test_close_while_sendfile_yields_between_chunks_gives_ebadf(void **state)
{
    (void)state;
    int fds = tu_dir_entries("/proc/self/fd");
    assert_int_equal(run(main_close_during_sendfile_yield, "large", NULL), 0);
    assert_log("closed sendfile:EBADF");
    assert_int_equal(tu_dir_entries("/proc/self/fd"), fds);
}

static void test_close_while_sendfile_yields_between_reads_into_the_queue_gives_ebadf(void **state)
{
    (void)state;
    int fds = tu_dir_entries("/proc/self/fd");
    assert_int_equal(run(main_close_during_sendfile_yield, "layered", NULL), 0);
    assert_log("closed sendfile:EBADF");
    assert_int_equal(tu_dir_entries("/proc/self/fd"), fds);
}

static void test_close_while_sendfile_yields_on_entry_gives_ebadf(void **state)
{
    (void)state;
    int fds = tu_dir_entries("/proc/self/fd");
    assert_int_equal(run(main_close_during_sendfile_yield, "entry", NULL), 0);
    assert_log("closed sendfile:EBADF");
    assert_int_equal(tu_dir_entries("/proc/self/fd"), fds);
}

/* Two tasks send one fd at once, each on its own stream. */
static int main_stream_sendfile_same_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int file = tu_temp_file(6 * MIB);
    CHECK_INT(lseek(file, 5, SEEK_SET), 5);
    int running = 0, peer[2];
    struct sendfile_call c[2] = {
        {.file = file, .offset = 0, .count = 4 * MIB, .running = &running},
        {.file = file, .offset = 2 * MIB + 1, .count = 4 * MIB, .running = &running},
    };
    struct collect k[2];
    asyncio_task_t *st[2], *rt[2];
    for (int i = 0; i < 2; i++) {
        c[i].s = tcp_pair(&peer[i]);
        k[i] = (struct collect){.fd = peer[i]};
        rt[i] = tu_spawn(collect_to_end, &k[i], "peer");
    }
    for (int i = 0; i < 2; i++)
        st[i] = tu_spawn(sendfile_task, &c[i], "sender");
    for (int i = 0; i < 2; i++) {
        CHECK_INT(asyncio_await(st[i], NULL), 0);
        asyncio_task_release(st[i]);
        CHECK_INT(asyncio_stream_wait_closed(c[i].s), 0);
        CHECK_INT(asyncio_await(rt[i], NULL), 0);
        asyncio_task_release(rt[i]);
    }
    CHECK_INT(c[0].sent, 4 * MIB);
    CHECK_INT(c[1].sent, 4 * MIB - 1); /* the file ends first */
    CHECK(c[0].overlapped || c[1].overlapped);
    for (int i = 0; i < 2; i++) {
        check_sent(k[i].buf, k[i].len, false, "", 0, (size_t)c[i].offset,
                   c[i].sent > 0 ? (size_t)c[i].sent : 0, "", __LINE__);
        free(k[i].buf);
        close_fd(peer[i]);
    }
    CHECK_INT(lseek(file, 0, SEEK_CUR), 5);
    close(file);
    return 0;
}

static void test_two_tasks_sendfile_from_one_fd_at_once(void **state)
{
    (void)state;
    assert_int_equal(run(main_stream_sendfile_same_fd, NULL, NULL), 0);
}

/* Fairness: a peer that keeps up (a thread), and another task still runs
 * before sendfile returns. */
static int main_stream_sendfile_fair(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t size = 32 * MIB;
    int file = tu_temp_file(size);
    int peer;
    asyncio_stream_t *s = tcp_pair(&peer);
    int fl = fcntl(peer, F_GETFL);
    CHECK_INT(fcntl(peer, F_SETFL, fl & ~O_NONBLOCK), 0);
    struct collect k = {.fd = peer};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, thread_sink, &k), 0);
    asyncio_task_t *t = tu_spawn(ticker, NULL, "ticker");
    tu_yield(1);
    g_ticks = 0;
    CHECK_INT(asyncio_stream_sendfile(s, file, 0, 0, 0), size);
    CHECK(g_ticks >= 8); /* 2 MiB at a time at most, then others run */
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(pthread_join(th, NULL), 0);
    CHECK_INT(k.len, size);
    asyncio_task_cancel(t);
    asyncio_task_release(t);
    close(peer);
    close(file);
    return 0;
}

static void test_sendfile_of_a_large_file_lets_other_tasks_run(void **state)
{
    (void)state;
    assert_int_equal(run(main_stream_sendfile_fair, NULL, NULL), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would end the run: none may come */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_returns_what_is_there_and_0_at_eof),
        cmocka_unit_test(test_readexactly_waits_for_exactly_n_bytes),
        cmocka_unit_test(test_readexactly_at_early_eof_returns_the_partial_count),
        cmocka_unit_test(test_readexactly_cancelled_part_way_puts_the_bytes_back),
        cmocka_unit_test(test_readexactly_timed_out_part_way_puts_the_bytes_back),
        cmocka_unit_test(test_readuntil_finds_a_separator_that_arrives_in_pieces),
        cmocka_unit_test(test_readline_returns_each_line_with_its_newline),
        cmocka_unit_test(test_readuntil_finds_a_separator_after_a_false_start),
        cmocka_unit_test(test_readuntil_separator_at_the_edges_of_the_buffer),
        cmocka_unit_test(test_line_over_the_limit_gives_enobufs_and_keeps_the_data),
        cmocka_unit_test(test_a_buffer_made_under_a_tiny_limit_grows_when_it_is_raised),
        cmocka_unit_test(test_readline_into_too_small_a_buffer_gives_emsgsize_and_keeps_the_data),
        cmocka_unit_test(test_readuntil_at_eof_returns_the_rest_without_separator),
        cmocka_unit_test(test_at_eof_only_once_the_end_came_and_everything_was_read),
        cmocka_unit_test(test_peek_fill_and_consume_parse_in_place),
        cmocka_unit_test(test_line_as_long_as_a_tiny_limit_fits),
        cmocka_unit_test(test_second_task_reading_a_stream_gets_ebusy),
        cmocka_unit_test(test_reads_of_an_idle_peer_time_out_in_a_scope),
        cmocka_unit_test(test_write_then_read_on_the_peer),
        cmocka_unit_test(test_small_writes_coalesce_into_one_in_order_send),
        cmocka_unit_test(test_drain_waits_above_high_water_until_low_water),
        cmocka_unit_test(test_write_buffer_limits_are_checked_and_used),
        cmocka_unit_test(test_drain_cancelled_or_timed_out_keeps_the_bytes_queued),
        cmocka_unit_test(test_write_eof_ends_the_peer_s_input_but_not_ours),
        cmocka_unit_test(test_writing_to_a_closed_peer_gives_epipe_not_sigpipe),
        cmocka_unit_test(test_read_from_a_reset_peer_gives_econnreset),
        cmocka_unit_test(test_close_wakes_a_blocked_reader_and_drainer_with_ebadf),
        cmocka_unit_test(test_close_sends_what_is_queued_then_the_end),
        cmocka_unit_test(test_wait_closed_returns_0_once_everything_was_sent),
        cmocka_unit_test(test_wait_closed_cancelled_or_timed_out_drops_the_queue),
        cmocka_unit_test(test_wait_closed_outside_a_task_closes_as_close_does),
        cmocka_unit_test(test_stream_left_open_is_freed_when_the_loop_ends),
        cmocka_unit_test(test_bad_input_and_calls_outside_a_task_get_error_codes),
        cmocka_unit_test(test_abort_drops_the_queue_resets_and_wakes_the_reader),
        cmocka_unit_test(test_a_refused_send_ends_reading_too),
        cmocka_unit_test(test_stream_over_a_regular_file_reads_to_its_end),
        cmocka_unit_test(test_large_reads_spend_the_budget_and_yield_sooner),
        /* Last: under the sanitizers (-fno-sanitize-recover), a bug these
         * find ends the program, and with it the tests after them. */
        cmocka_unit_test(test_read_of_0_bytes_returns_0_at_once),
        cmocka_unit_test(test_read_of_0_bytes_into_a_null_buffer_returns_0),
        cmocka_unit_test(test_close_while_a_read_yields_for_fairness_gives_ebadf),
        cmocka_unit_test(test_close_while_a_drain_yields_for_fairness_gives_ebadf),
        cmocka_unit_test(test_small_calls_at_their_edges),
        cmocka_unit_test(test_second_drainer_is_ebusy_and_cancelled_close_is_at_once),
        /* Layers (asyncio_stream_set_layer), with a toy layer. */
        cmocka_unit_test(test_set_layer_refuses_bad_calls_and_leaves_the_layer_to_its_caller),
        cmocka_unit_test(test_set_layer_waits_until_the_queue_went_out_in_plain),
        cmocka_unit_test(test_set_layer_leaves_what_was_buffered_to_peek_and_consume),
        cmocka_unit_test(test_every_read_and_write_call_goes_through_the_layer),
        cmocka_unit_test(test_recv_wanting_to_write_waits_for_a_writable_fd),
        cmocka_unit_test(test_stream_takes_what_the_layer_holds_without_waiting),
        cmocka_unit_test(test_a_send_that_takes_part_gets_the_rest_next),
        cmocka_unit_test(test_send_wanting_to_read_is_called_again_on_input),
        cmocka_unit_test(test_send_wanting_to_read_is_called_again_when_a_reader_takes_the_input),
        cmocka_unit_test(test_write_eof_shuts_the_layer_down_after_the_queue),
        cmocka_unit_test(test_close_lingers_until_the_peer_s_end),
        cmocka_unit_test(test_close_after_a_shutdown_that_sent_nothing_does_not_linger),
        cmocka_unit_test(test_linger_ends_after_5_s_without_the_peer_s_end),
        cmocka_unit_test(test_layer_is_freed_once_by_abort_and_by_the_loop_s_end),
        cmocka_unit_test(test_set_layer_cancelled_timed_out_or_closed_installs_nothing),
        /* asyncio_stream_sendfile() */
        cmocka_unit_test(test_sendfile_sends_the_file_between_what_was_written_before_and_after),
        cmocka_unit_test(test_sendfile_without_fallback_on_a_plain_stream_is_zero_copy_or_enotsup),
        cmocka_unit_test(test_writes_drains_and_a_second_sendfile_get_ebusy_during_sendfile),
        cmocka_unit_test(test_sendfile_while_another_task_drains_gets_ebusy),
        cmocka_unit_test(test_set_layer_during_sendfile_gets_ebusy),
        cmocka_unit_test(test_sendfile_through_a_layer_reads_the_file_into_the_queue),
        cmocka_unit_test(test_sendfile_to_a_pipe_is_zero_copy_and_to_a_file_stream_reads_into_the_queue),
        cmocka_unit_test(test_sendfile_bad_input_and_calls_outside_a_task_get_error_codes),
        cmocka_unit_test(test_sendfile_to_a_peer_that_is_gone_gives_epipe_not_sigpipe),
        cmocka_unit_test(test_two_tasks_sendfile_from_one_fd_at_once),
        cmocka_unit_test(test_sendfile_of_a_large_file_lets_other_tasks_run),
        /* Last: under the sanitizers a bug these find ends the program. */
        cmocka_unit_test(test_sendfile_cancelled_timed_out_or_closed_while_it_waits),
        cmocka_unit_test(test_close_while_sendfile_yields_between_chunks_gives_ebadf),
        cmocka_unit_test(test_close_while_sendfile_yields_between_reads_into_the_queue_gives_ebadf),
        /* Last of all: without the fix, the stream is freed under the call. */
        cmocka_unit_test(test_close_while_sendfile_yields_on_entry_gives_ebadf),
    };
    return tu_run_group_tests_name("stream", tests, NULL, NULL);
}
