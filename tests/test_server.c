/*
 * Servers, clients, name resolution, signal handlers and datagram
 * endpoints on 127.0.0.1, ::1 and Unix-domain sockets (CPython:
 * test_server.py, test_streams.py, test_unix_events.py).
 *
 * Where a test means "localhost" it must pass whichever address the name
 * gives first: with Debian's /etc/hosts ("::1 localhost" as well as
 * "127.0.0.1 localhost") glibc puts ::1 first. Every test runs in a
 * timeout scope (run()) and under the watchdog (main()), so a peer that
 * never answers fails the test with a message instead of hanging it.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* tu_err() and the codes networking adds. */
static const char *err(long long rc)
{
    switch (rc) {
    case -ECONNREFUSED: return "ECONNREFUSED";
    case -ECONNRESET: return "ECONNRESET";
    case -EADDRINUSE: return "EADDRINUSE";
    case -ENAMETOOLONG: return "ENAMETOOLONG";
    case -ENETUNREACH: return "ENETUNREACH";
    case -EHOSTUNREACH: return "EHOSTUNREACH";
    case -EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case -EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return tu_err(rc);
    }
}

/* tu_run() with every wait of the test bounded (TU_TEST_TIMEOUT): a peer
 * that never answers fails the CHECK of the call that waited for it. */
static int run(asyncio_fn fn, void *arg, void **result)
{
    return tu_run_bounded(fn, arg, result, TU_TEST_TIMEOUT);
}

/* What the handlers of a test saw. */
struct seen {
    int calls, ended;
    asyncio_task_t *tasks[8];
    char names[8][32];
};

/* Echo lines until the client goes; the usual asyncio example server. */
static int echo_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    if (seen)
        seen->calls++;
    char line[256];
    ssize_t n;
    while ((n = asyncio_stream_readline(s, line, sizeof line)) > 0) {
        int rc = asyncio_stream_write(s, line, (size_t)n);
        if (rc == 0)
            rc = asyncio_stream_drain(s);
        if (rc < 0)
            break;
    }
    if (seen)
        seen->ended++;
    return n == -ECANCELED ? (int)n : 0;
}

/* Send msg + "\n" and check it comes back. */
static void round_trip(asyncio_stream_t *s, const char *msg)
{
    char want[128], got[128] = {0};
    int len = snprintf(want, sizeof want, "%s\n", msg);
    CHECK_INT(asyncio_stream_write(s, want, (size_t)len), 0);
    CHECK_INT(asyncio_stream_readline(s, got, sizeof got), len);
    CHECK_STR(got, want);
}

static asyncio_server_t *serve(asyncio_stream_handler h, void *arg, const char *host,
                               const asyncio_server_options_t *opts)
{
    asyncio_server_t *srv = NULL;
    int rc = asyncio_start_server(&srv, h, arg, host, 0, opts);
    if (rc < 0)
        tu_fail_at(__FILE__, __LINE__, "asyncio_start_server(%s): %s", host, err(rc));
    return srv;
}

static asyncio_stream_t *dial(const char *host, int port)
{
    asyncio_stream_t *s = NULL;
    int rc = asyncio_open_connection(&s, host, port, NULL);
    if (rc < 0)
        tu_fail_at(__FILE__, __LINE__, "asyncio_open_connection(%s, %d): %s", host, port,
                   err(rc));
    return s;
}

/* Close srv and wait until it is freed. */
static void shut(asyncio_server_t *srv)
{
    CHECK_INT(asyncio_server_close(srv), 0);
    CHECK_INT(asyncio_server_wait_closed(srv), 0);
}

/* Let the loop run until cond holds (or 200 rounds went by). */
#define YIELD_UNTIL(cond)                                                      \
    do {                                                                       \
        for (int tu_i_ = 0; tu_i_ < 200 && !(cond); tu_i_++)                   \
            CHECK_INT(asyncio_sleep(0.001), 0);                                \
        CHECK(cond);                                                           \
    } while (0)

/* ---- servers and clients ------------------------------------------------- */

static int main_round_trip(void *arg, void **result)
{
    (void)result;
    const char *host = arg;
    asyncio_server_t *srv = serve(echo_handler, NULL, host, NULL);
    int port = asyncio_server_port(srv);
    CHECK(port > 0);
    asyncio_stream_t *s = dial(host, port);
    round_trip(s, "hello");
    round_trip(s, "again");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    shut(srv);
    return 0;
}

static void test_start_server_and_open_connection_round_trip(void **state)
{
    (void)state;
    assert_int_equal(run(main_round_trip, "127.0.0.1", NULL), 0);
}

static void test_open_connection_to_localhost_resolves_in_the_thread_pool(void **state)
{
    (void)state;
    assert_int_equal(run(main_round_trip, "localhost", NULL), 0);
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void test_ipv6_loopback_round_trip(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    assert_int_equal(run(main_round_trip, "::1", NULL), 0);
}

/* The numeric form of a resolved address, for messages and servers. */
static const char *numeric(const struct addrinfo *ai, char *buf, size_t len)
{
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, (socklen_t)len, NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(buf, len, "?");
    return buf;
}

/*
 * asyncio_open_connection() tries a name's addresses in turn until one
 * connects. A server on each address alone must be reached by a client
 * that dials the name: on the first address at once, on a later one after
 * the earlier ones refused. With Debian's /etc/hosts "localhost" is ::1
 * then 127.0.0.1, so a server on 127.0.0.1 alone is reached after ::1
 * refused, and one on ::1 alone at once; where the name has one address
 * (127.0.0.1 alone in /etc/hosts) there is no second address to test.
 */
static int main_each_address(void *arg, void **result)
{
    (void)result;
    const char *host = arg;
    /* The addresses in the order the client tries them: it resolves with
     * these hints (net_resolve() in src/resolve.c). */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    CHECK_INT(asyncio_getaddrinfo(host, "80", &hints, &res), 0);
    int count = 0, i = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        count++;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next, i++) {
        char addr[INET6_ADDRSTRLEN + 8];
        numeric(ai, addr, sizeof addr);
        struct seen seen = {0};
        asyncio_server_t *srv = NULL;
        int rc = asyncio_start_server(&srv, echo_handler, &seen, addr, 0, NULL);
        if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
            continue; /* listed, but not configured here (IPv6 off) */
        if (rc < 0) {
            tu_fail_at(__FILE__, __LINE__, "asyncio_start_server(%s): %s", addr, err(rc));
            continue;
        }
        int port = asyncio_server_port(srv);
        asyncio_stream_t *s = NULL;
        rc = asyncio_open_connection(&s, host, port, NULL);
        if (rc < 0) {
            tu_fail_at(__FILE__, __LINE__,
                       "asyncio_open_connection(%s, %d) with a server on %s alone (address "
                       "%d of %d %s resolves to): %s",
                       host, port, addr, i + 1, count, host, err(rc));
        } else {
            round_trip(s, addr);
            CHECK_INT(asyncio_stream_wait_closed(s), 0);
        }
        shut(srv);
        CHECK_INT(seen.calls, rc == 0 ? 1 : 0); /* that server, not another */
    }
    if (res)
        freeaddrinfo(res);
    CHECK(count >= 1);
    return 0;
}

static void test_open_connection_tries_each_address_of_a_name_in_turn(void **state)
{
    (void)state;
    assert_int_equal(run(main_each_address, "localhost", NULL), 0);
}

static int main_unresolvable(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* .invalid never resolves (RFC 6761); the guard keeps a resolver that
     * tries DNS on a machine without network from hanging the test. */
    asyncio_timeout_t guard;
    CHECK_INT(asyncio_timeout_enter(&guard, 5), 0);
    asyncio_stream_t *s = NULL;
    LOG("open:%s", err(asyncio_open_connection(&s, "nosuch.invalid", 80, NULL)));
    struct addrinfo *res = NULL;
    LOG("getaddrinfo:%s", err(asyncio_getaddrinfo("nosuch.invalid", "80", NULL, &res)));
    CHECK_PTR(res, NULL);
    asyncio_server_t *srv = NULL;
    LOG("server:%s", err(asyncio_start_server(&srv, echo_handler, NULL, "nosuch.invalid", 0,
                                              NULL)));
    CHECK_INT(asyncio_timeout_exit(&guard), 0);
    return 0;
}

static void test_unresolvable_name_gives_enoent(void **state)
{
    (void)state;
    assert_int_equal(run(main_unresolvable, NULL, NULL), 0);
    assert_log("open:ENOENT getaddrinfo:ENOENT server:ENOENT");
}

/* A port nobody listens on (just closed). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int main_refused(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_stream_t *s = NULL;
    LOG("open:%s", err(asyncio_open_connection(&s, "127.0.0.1", free_port(), NULL)));
    LOG("unix:%s", err(asyncio_open_unix_connection(&s, "/nonexistent/asyncio.sock", NULL)));
    CHECK_PTR(s, NULL);
    return 0;
}

static void test_connection_refused_gives_econnrefused(void **state)
{
    (void)state;
    assert_int_equal(run(main_refused, NULL, NULL), 0);
    assert_log("open:ECONNREFUSED unix:ENOENT");
}

/* A listener whose accept queue is full: the kernel drops further SYNs,
 * so a connect to it never completes (a local, deterministic stand-in for
 * an address that does not answer). */
static int full_listener(int *port, int *clients, int *nclients)
{
    int lfd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK_INT(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(listen(lfd, 0), 0);
    CHECK_INT(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    *nclients = 0;
    for (int i = 0; i < 4; i++) {
        int fd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
        clients[(*nclients)++] = fd;
        asyncio_timeout_t scope;
        CHECK_INT(asyncio_timeout_enter(&scope, 0.1), 0);
        int rc = asyncio_sock_connect(fd, (struct sockaddr *)&a, sizeof a);
        asyncio_timeout_exit(&scope);
        if (rc == -ETIMEDOUT)
            break; /* full */
        CHECK_INT(rc, 0);
    }
    return lfd;
}

static int main_connect_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port, clients[4], n;
    int lfd = full_listener(&port, clients, &n);
    asyncio_connection_options_t opts = {.connect_timeout = 0.1};
    asyncio_stream_t *s = NULL;
    double t0 = asyncio_loop_time();
    LOG("open:%s", err(asyncio_open_connection(&s, "127.0.0.1", port, &opts)));
    double took = asyncio_loop_time() - t0;
    CHECK(took >= 0.09 && took < 2);
    for (int i = 0; i < n; i++)
        asyncio_close(clients[i]);
    asyncio_close(lfd);
    return 0;
}

static void test_connect_timeout_ends_a_connect_that_gets_no_answer(void **state)
{
    (void)state;
    assert_int_equal(run(main_connect_timeout, NULL, NULL), 0);
    assert_log("open:ETIMEDOUT");
}

static int main_unreachable(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Off this machine: a network error at once, a timeout, or (behind a
     * transparent proxy) even a connection; never longer than the limit. */
    asyncio_connection_options_t opts = {.connect_timeout = 0.2};
    asyncio_stream_t *s = NULL;
    double t0 = asyncio_loop_time();
    int rc = asyncio_open_connection(&s, "10.255.255.1", 80, &opts);
    CHECK(asyncio_loop_time() - t0 < 2);
    CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -ENETUNREACH || rc == -EHOSTUNREACH ||
          rc == -ECONNREFUSED);
    if (rc == 0)
        asyncio_stream_close(s);
    return 0;
}

static void test_connect_timeout_bounds_a_connect_to_an_unroutable_address(void **state)
{
    (void)state;
    assert_int_equal(run(main_unreachable, NULL, NULL), 0);
}

static int main_unix(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char path[64];
    snprintf(path, sizeof path, "/tmp/asyncio-test-%d.sock", (int)getpid());
    /* What a crashed server leaves: a socket file nobody listens on. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    unlink(path);
    CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    asyncio_stream_t *s = NULL;
    LOG("stale:%s", err(asyncio_open_unix_connection(&s, path, NULL)));
    asyncio_server_t *srv = NULL;
    CHECK_INT(asyncio_start_unix_server(&srv, echo_handler, NULL, path, NULL), 0);
    CHECK_INT(asyncio_server_port(srv), -EINVAL); /* no port here */
    CHECK_INT(asyncio_open_unix_connection(&s, path, NULL), 0);
    round_trip(s, "over unix");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_server_close(srv), 0);
    struct stat st;
    LOG("stat:%s", stat(path, &st) == 0 ? "exists" : err(-errno));
    CHECK_INT(asyncio_server_wait_closed(srv), 0);
    return 0;
}

static void test_unix_server_replaces_a_stale_socket_and_unlinks_it_at_close(void **state)
{
    (void)state;
    assert_int_equal(run(main_unix, NULL, NULL), 0);
    assert_log("stale:ECONNREFUSED stat:ENOENT");
}

/* A server nobody closed is freed when the loop closes (stream.h): its
 * listening socket closed and, for a Unix server, its socket file gone, as
 * asyncio_server_close() would have done. */
static int main_left_open(void *arg, void **result)
{
    const char *path = arg;
    (void)result;
    asyncio_server_t *srv = NULL;
    CHECK_INT(asyncio_start_unix_server(&srv, echo_handler, NULL, path, NULL), 0);
    asyncio_stream_t *s = NULL;
    CHECK_INT(asyncio_open_unix_connection(&s, path, NULL), 0);
    round_trip(s, "then main returns");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    return 0; /* srv left listening */
}

static void test_unix_server_left_open_is_closed_and_unlinked_with_the_loop(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/asyncio-test-open-%d.sock", (int)getpid());
    assert_int_equal(run(main_left_open, path, NULL), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    unlink(path);
}

static void test_unix_server_outside_a_loop_gives_eperm(void **state)
{
    (void)state;
    asyncio_server_t *srv = NULL;
    assert_int_equal(asyncio_start_unix_server(&srv, echo_handler, NULL, "/tmp/asyncio-none.sock",
                                               NULL),
                     -EPERM);
    assert_null(srv);
    struct stat st;
    assert_int_equal(stat("/tmp/asyncio-none.sock", &st), -1);
}

/* Note which task runs it, then echo. */
static int noting_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    int i = seen->calls;
    if (i < 8) {
        seen->tasks[i] = asyncio_current_task();
        snprintf(seen->names[i], sizeof seen->names[i], "%s",
                 asyncio_task_name(seen->tasks[i]));
    }
    return echo_handler(s, arg);
}

static int main_handler_tasks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {0};
    asyncio_server_t *srv = serve(noting_handler, &seen, "127.0.0.1", NULL);
    int port = asyncio_server_port(srv);
    asyncio_stream_t *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = dial("127.0.0.1", port);
        round_trip(c[i], "hi");
        round_trip(c[i], "twice"); /* one handler call serves them both */
    }
    CHECK_INT(seen.calls, 3);
    for (int i = 0; i < 3; i++) {
        CHECK(seen.tasks[i] != NULL && seen.tasks[i] != asyncio_current_task());
        CHECK(strncmp(seen.names[i], "conn-", 5) == 0);
        for (int j = 0; j < i; j++)
            CHECK(seen.tasks[i] != seen.tasks[j]);
    }
    for (int i = 0; i < 3; i++)
        CHECK_INT(asyncio_stream_wait_closed(c[i]), 0);
    shut(srv);
    CHECK_INT(seen.ended, 3);
    return 0;
}

static void test_handler_runs_once_per_connection_in_a_task_of_its_own(void **state)
{
    (void)state;
    assert_int_equal(run(main_handler_tasks, NULL, NULL), 0);
}

static int bye_handler(asyncio_stream_t *s, void *arg)
{
    CHECK_INT(asyncio_stream_write(s, "bye\n", 4), 0);
    if (arg) /* closing it itself is fine too */
        CHECK_INT(asyncio_stream_close(s), 0);
    return 0;
}

static int main_handler_return(void *arg, void **result)
{
    (void)result;
    asyncio_server_t *srv = serve(bye_handler, arg, "127.0.0.1", NULL);
    asyncio_stream_t *s = dial("127.0.0.1", asyncio_server_port(srv));
    char buf[16] = {0};
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 4);
    CHECK_STR(buf, "bye\n");
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    shut(srv);
    return 0;
}

static void test_handler_returning_closes_its_stream(void **state)
{
    (void)state;
    assert_int_equal(run(main_handler_return, NULL, NULL), 0);
    assert_int_equal(run(main_handler_return, "closes itself", NULL), 0);
}

static int main_close_stops_accepting(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_t *srv = serve(echo_handler, NULL, "127.0.0.1", NULL);
    int port = asyncio_server_port(srv);
    asyncio_stream_t *s = dial("127.0.0.1", port);
    round_trip(s, "before");
    CHECK_INT(asyncio_server_close(srv), 0);
    CHECK_INT(asyncio_server_close(srv), 0); /* again: nothing more */
    asyncio_stream_t *late = NULL;
    LOG("open:%s", err(asyncio_open_connection(&late, "127.0.0.1", port, NULL)));
    round_trip(s, "after"); /* the connection that was there goes on */
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_server_wait_closed(srv), 0);
    return 0;
}

static void test_server_close_stops_accepting_but_connections_go_on(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_stops_accepting, NULL, NULL), 0);
    assert_log("open:ECONNREFUSED");
}

static int logging_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    char buf[16];
    ssize_t n = asyncio_stream_readline(s, buf, sizeof buf);
    LOG("handler:%s", err(n));
    return n < 0 ? (int)n : 0;
}

static int main_close_clients(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {0};
    asyncio_server_t *srv = serve(logging_handler, &seen, "127.0.0.1", NULL);
    int port = asyncio_server_port(srv);
    asyncio_stream_t *a = dial("127.0.0.1", port), *b = dial("127.0.0.1", port);
    YIELD_UNTIL(seen.calls == 2); /* both handlers wait in readline */
    LOG("cancelled:%d", asyncio_server_close_clients(srv));
    char buf[8];
    LOG("a:%s", err(asyncio_stream_read(a, buf, sizeof buf)));
    LOG("b:%s", err(asyncio_stream_read(b, buf, sizeof buf)));
    YIELD_UNTIL(asyncio_server_connections(srv) == 0);
    CHECK_INT(asyncio_stream_wait_closed(a), 0);
    CHECK_INT(asyncio_stream_wait_closed(b), 0);
    shut(srv);
    return 0;
}

static void test_close_clients_cancels_the_handlers(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_clients, NULL, NULL), 0);
    assert_log("cancelled:2 handler:ECANCELED handler:ECANCELED a:0 b:0");
}

/* A connection accepted whose handler has not started yet: close_clients
 * cancels it too, its handler never runs, and its stream is closed (the
 * peer reads the end of the stream), as for a handler that ran. */
static int main_close_clients_before_start(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {0};
    asyncio_server_t *srv = serve(logging_handler, &seen, "127.0.0.1", NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)asyncio_server_port(srv)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* A blocking connect: the kernel's backlog completes it at once. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_INT(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    asyncio_stream_t *c = NULL;
    CHECK_INT(asyncio_stream_open(&c, fd, 0), 0);
    /* Yielding with sleep(0), this task is always queued before the
     * handler's task, which the accepting task queues as it counts the
     * connection: this task sees it counted before the handler's first
     * step. */
    for (int i = 0; i < 1000 && asyncio_server_connections(srv) == 0; i++)
        CHECK_INT(asyncio_sleep(0), 0);
    LOG("calls:%d", seen.calls);
    LOG("cancelled:%d", asyncio_server_close_clients(srv));
    char buf[8];
    LOG("read:%s", err(asyncio_stream_read(c, buf, sizeof buf)));
    YIELD_UNTIL(asyncio_server_connections(srv) == 0);
    LOG("calls:%d", seen.calls);
    CHECK_INT(asyncio_stream_wait_closed(c), 0);
    shut(srv);
    return 0;
}

static void test_close_clients_cancels_a_handler_that_has_not_started(void **state)
{
    (void)state;
    assert_int_equal(run(main_close_clients_before_start, NULL, NULL), 0);
    assert_log("calls:0 cancelled:1 read:0 calls:0");
}

static int wait_closed_task(void *arg, void **result)
{
    (void)result;
    LOG("wait_closed:%s", err(asyncio_server_wait_closed(arg)));
    return 0;
}

static int ending_handler(asyncio_stream_t *s, void *arg)
{
    int rc = echo_handler(s, arg);
    LOG("handler-end");
    return rc;
}

static int main_wait_closed(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_t *srv = serve(ending_handler, NULL, "127.0.0.1", NULL);
    asyncio_stream_t *s = dial("127.0.0.1", asyncio_server_port(srv));
    round_trip(s, "x");
    CHECK_INT(asyncio_server_close(srv), 0);
    asyncio_task_t *w = tu_spawn(wait_closed_task, srv, "waiter");
    CHECK_INT(asyncio_sleep(0.02), 0); /* the waiter waits for the handler */
    LOG("client-close");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    return 0;
}

static void test_server_wait_closed_waits_for_the_handlers(void **state)
{
    (void)state;
    assert_int_equal(run(main_wait_closed, NULL, NULL), 0);
    assert_log("client-close handler-end wait_closed:0");
}

static int serve_forever_task(void *arg, void **result)
{
    (void)result;
    LOG("serve_forever:%s", err(asyncio_server_serve_forever(arg)));
    return 0;
}

static int main_serve_forever(void *arg, void **result)
{
    (void)result;
    bool cancel = arg != NULL;
    asyncio_server_t *srv = serve(echo_handler, NULL, "127.0.0.1", NULL);
    int port = asyncio_server_port(srv);
    asyncio_task_t *f = tu_spawn(serve_forever_task, srv, "forever");
    asyncio_stream_t *s = dial("127.0.0.1", port);
    round_trip(s, "served");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    if (cancel) {
        CHECK_INT(asyncio_task_cancel(f), 1);
    } else {
        LOG("close");
        CHECK_INT(asyncio_server_close(srv), 0);
    }
    CHECK_INT(asyncio_await(f, NULL), 0);
    asyncio_task_release(f);
    /* Closed either way. */
    LOG("open:%s", err(asyncio_open_connection(&s, "127.0.0.1", port, NULL)));
    CHECK_INT(asyncio_server_wait_closed(srv), 0);
    return 0;
}

static void test_serve_forever_returns_0_once_another_task_closes_the_server(void **state)
{
    (void)state;
    assert_int_equal(run(main_serve_forever, NULL, NULL), 0);
    assert_log("close serve_forever:0 open:ECONNREFUSED");
}

static void test_serve_forever_cancelled_closes_the_server(void **state)
{
    (void)state;
    assert_int_equal(run(main_serve_forever, "cancel", NULL), 0);
    assert_log("serve_forever:ECANCELED open:ECONNREFUSED");
}

static int main_connections(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_t *srv = serve(echo_handler, NULL, "127.0.0.1", NULL);
    int port = asyncio_server_port(srv);
    CHECK_INT(asyncio_server_connections(srv), 0);
    asyncio_stream_t *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = dial("127.0.0.1", port);
        round_trip(c[i], "counted"); /* its handler runs now */
        CHECK_INT(asyncio_server_connections(srv), i + 1);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_INT(asyncio_stream_wait_closed(c[i]), 0);
        YIELD_UNTIL(asyncio_server_connections(srv) == (size_t)(2 - i));
    }
    shut(srv);
    return 0;
}

static void test_server_connections_counts_running_handlers(void **state)
{
    (void)state;
    assert_int_equal(run(main_connections, NULL, NULL), 0);
}

#define CLIENTS 200
#define TRIPS 5

struct client {
    int port, id;
};

static int client_task(void *arg, void **result)
{
    (void)result;
    struct client *c = arg;
    asyncio_stream_t *s = NULL;
    int rc = asyncio_open_connection(&s, "127.0.0.1", c->port, NULL);
    if (rc < 0)
        return rc;
    for (int i = 0; i < TRIPS; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "client %d trip %d", c->id, i);
        round_trip(s, msg);
    }
    return asyncio_stream_wait_closed(s);
}

static int main_many(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {0};
    asyncio_server_t *srv = serve(echo_handler, &seen, "127.0.0.1", NULL);
    static struct client cs[CLIENTS];
    static asyncio_task_t *ts[CLIENTS];
    static int errors[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cs[i] = (struct client){asyncio_server_port(srv), i};
        ts[i] = tu_spawn(client_task, &cs[i], NULL);
    }
    CHECK_INT(asyncio_gather(CLIENTS, (asyncio_future_t **)ts, NULL, errors,
                             ASYNCIO_RETURN_EXCEPTIONS), 0);
    int failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        failed += errors[i] != 0;
        asyncio_task_release(ts[i]);
    }
    CHECK_INT(failed, 0);
    shut(srv);
    CHECK_INT(seen.calls, CLIENTS);
    CHECK_INT(seen.ended, CLIENTS);
    return 0;
}

static void test_200_concurrent_clients_each_make_5_round_trips(void **state)
{
    (void)state;
    assert_int_equal(run(main_many, NULL, NULL), 0);
}

static int main_reuse_port(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_options_t opts = {.reuse_port = 1};
    struct seen seen = {0};
    asyncio_server_t *a = serve(echo_handler, &seen, "127.0.0.1", &opts), *b = NULL, *c = NULL;
    int port = asyncio_server_port(a);
    CHECK_INT(asyncio_start_server(&b, echo_handler, &seen, "127.0.0.1", port, &opts), 0);
    CHECK_INT(asyncio_server_port(b), port);
    /* Without the option the port is taken. */
    LOG("plain:%s", err(asyncio_start_server(&c, echo_handler, NULL, "127.0.0.1", port, NULL)));
    for (int i = 0; i < 4; i++) {
        asyncio_stream_t *s = dial("127.0.0.1", port);
        round_trip(s, "either");
        CHECK_INT(asyncio_stream_wait_closed(s), 0);
    }
    shut(a);
    shut(b);
    CHECK_INT(seen.calls, 4);
    return 0;
}

static void test_reuse_port_lets_two_servers_share_a_port(void **state)
{
    (void)state;
    assert_int_equal(run(main_reuse_port, NULL, NULL), 0);
    assert_log("plain:EADDRINUSE");
}

/* ---- out of fds ---------------------------------------------------------- */

/* Run fn in a child process (its limits and signal mask are its own) and
 * return how it ended, as waitpid() says. */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* A plain program's crash dispositions, not cmocka's catchers. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        int rc = fn();
        fflush(NULL);
        tu_child_exit(rc);
    }
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* tu_run() for a child: a failure must not longjmp back into cmocka,
 * which would go on running the parent's tests in the child. */
static int child_run(asyncio_fn fn, void *arg)
{
    tu_reset();
    struct tu_bounded b = {fn, arg, TU_TEST_TIMEOUT}; /* as run() */
    int rc = asyncio_run(tu_bounded_main, &b, NULL);
    return rc == 0 && tu_failures == 0 ? 0 : 1;
}

static void assert_child_passed(int status)
{
    if (WIFSIGNALED(status))
        fail_msg("the child was killed by signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int hello_handler(asyncio_stream_t *s, void *arg)
{
    (void)arg;
    return asyncio_stream_write(s, "hello\n", 6);
}

#define FD_LIMIT 64

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int main_emfile(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_t *srv = serve(hello_handler, NULL, "127.0.0.1", NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)asyncio_server_port(srv))};
    struct rlimit rl;
    CHECK_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = FD_LIMIT;
    CHECK_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
    /* Take every fd but three, which the clients take. */
    int fill[FD_LIMIT], nfill = 0, fd;
    while (nfill < FD_LIMIT && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        fill[nfill++] = fd;
    CHECK_INT(errno, EMFILE);
    CHECK(nfill > 13);
    int clients[3];
    for (int i = 0; i < 3; i++) {
        close(fill[--nfill]);
        clients[i] = asyncio_socket(AF_INET, SOCK_STREAM, 0);
        CHECK(clients[i] >= 0);
        /* The kernel completes the handshake; accept() gets EMFILE. */
        CHECK_INT(asyncio_sock_connect(clients[i], (struct sockaddr *)&a, sizeof a), 0);
    }
    double cpu = cpu_seconds();
    CHECK_INT(asyncio_sleep(0.5), 0);
    cpu = cpu_seconds() - cpu;
    /* Spinning on the readable listener would take most of the 0.5 s. */
    CHECK(cpu < 0.25);
    CHECK_INT(asyncio_server_connections(srv), 0);
    for (int i = 0; i < 10; i++)
        close(fill[--nfill]);
    /* Once fds are free again, the waiting connections are served. */
    asyncio_timeout_t guard;
    CHECK_INT(asyncio_timeout_enter(&guard, 5), 0);
    for (int i = 0; i < 3; i++) {
        char buf[16] = {0};
        CHECK_INT(asyncio_sock_recv(clients[i], buf, sizeof buf), 6);
        CHECK_STR(buf, "hello\n");
        asyncio_close(clients[i]);
    }
    CHECK_INT(asyncio_timeout_exit(&guard), 0);
    while (nfill > 0)
        close(fill[--nfill]);
    shut(srv);
    return 0;
}

static int emfile_child(void)
{
    return child_run(main_emfile, NULL);
}

/* Valgrind emulates a lowered RLIMIT_NOFILE: it closes the fd accept()
 * got past the limit and reports EMFILE, so the connection is lost and the
 * test can only fail there. */
static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

static void test_accept_out_of_fds_pauses_instead_of_spinning(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    assert_child_passed(in_child(emfile_child));
}

/* ---- name resolution ----------------------------------------------------- */

static int port_of(const struct addrinfo *ai)
{
    if (ai->ai_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ai->ai_addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
}

static int main_getaddrinfo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    CHECK_INT(asyncio_getaddrinfo("127.0.0.1", "8080", &hints, &res), 0);
    CHECK(res && res->ai_family == AF_INET && port_of(res) == 8080);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
    CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    freeaddrinfo(res);
    res = NULL;
    CHECK_INT(asyncio_getaddrinfo("::1", "http", &hints, &res), 0);
    CHECK(res && res->ai_family == AF_INET6 && port_of(res) == 80);
    freeaddrinfo(res);
    res = NULL;
    hints.ai_family = AF_INET;
    CHECK_INT(asyncio_getaddrinfo("localhost", "7", &hints, &res), 0);
    CHECK(res && res->ai_family == AF_INET && port_of(res) == 7);
    sin = (const struct sockaddr_in *)res->ai_addr;
    CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    freeaddrinfo(res);
    /* Bad input. */
    CHECK_INT(asyncio_getaddrinfo(NULL, NULL, NULL, &res), -EINVAL);
    CHECK_INT(asyncio_getaddrinfo("127.0.0.1", "80", NULL, NULL), -EINVAL);
    hints.ai_family = 12345;
    CHECK_INT(asyncio_getaddrinfo("127.0.0.1", "80", &hints, &res), -EINVAL);
    CHECK_INT(asyncio_getaddrinfo("localhost", "no-such-service", NULL, &res), -ENOENT);
    return 0;
}

static void test_getaddrinfo_numeric_names_and_bad_input(void **state)
{
    (void)state;
    struct addrinfo *res = NULL;
    assert_int_equal(asyncio_getaddrinfo("127.0.0.1", "80", NULL, &res), -EPERM);
    assert_int_equal(run(main_getaddrinfo, NULL, NULL), 0);
}

static int lookup_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct addrinfo *res = NULL;
    int rc = asyncio_getaddrinfo("localhost", "80", NULL, &res);
    LOG("lookup:%s", err(rc));
    if (res)
        freeaddrinfo(res);
    return 0;
}

static int main_lookup_cancelled(void *arg, void **result)
{
    (void)result;
    asyncio_task_t *t = tu_spawn(lookup_task, NULL, "lookup");
    tu_yield(1); /* it is in the pool now */
    if (arg) /* the loop ends with the lookup in its thread */
        return 0;
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    /* The pool goes on serving. */
    t = tu_spawn(lookup_task, NULL, "lookup");
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_getaddrinfo_cancelled_in_the_thread_pool_leaks_nothing(void **state)
{
    (void)state;
    assert_int_equal(run(main_lookup_cancelled, NULL, NULL), 0);
    assert_log("lookup:ECANCELED lookup:0");
    assert_int_equal(run(main_lookup_cancelled, "end now", NULL), 0);
    assert_log("lookup:ECANCELED");
}

/* ---- signals ------------------------------------------------------------- */

struct caught {
    int signum, count;
    bool in_task;
    asyncio_future_t *fut;
};

static void on_signal(int signum, void *arg)
{
    struct caught *c = arg;
    c->signum = signum;
    c->count++;
    c->in_task = asyncio_current_task() != NULL;
    if (c->fut && !asyncio_future_done(c->fut))
        CHECK_INT(asyncio_future_set_result(c->fut, NULL), 0);
}

/* Wait (at most 2 s) for the callback to have run. */
static void await_signal(struct caught *c)
{
    c->fut = tu_future();
    asyncio_timeout_t guard;
    CHECK_INT(asyncio_timeout_enter(&guard, 2), 0);
    CHECK_INT(asyncio_await(c->fut, NULL), 0);
    CHECK_INT(asyncio_timeout_exit(&guard), 0);
    asyncio_future_release(c->fut);
    c->fut = NULL;
}

static int main_signal(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct caught usr1 = {0}, usr2 = {0};
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, on_signal, &usr1), 0);
    CHECK_INT(asyncio_add_signal_handler(SIGUSR2, on_signal, &usr2), 0);
    CHECK_INT(tu_raise(SIGUSR1), 0);
    await_signal(&usr1);
    CHECK_INT(kill(getpid(), SIGUSR2), 0); /* to the process, not the thread */
    await_signal(&usr2);
    CHECK_INT(tu_raise(SIGUSR1), 0);
    await_signal(&usr1);
    CHECK_INT(usr1.signum, SIGUSR1);
    CHECK_INT(usr1.count, 2);
    CHECK_INT(usr2.signum, SIGUSR2);
    CHECK_INT(usr2.count, 1);
    CHECK(!usr1.in_task && !usr2.in_task); /* a loop callback */
    /* Adding again replaces the callback. */
    struct caught other = {0};
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, on_signal, &other), 0);
    CHECK_INT(tu_raise(SIGUSR1), 0);
    await_signal(&other);
    CHECK_INT(usr1.count, 2);
    CHECK_INT(other.count, 1);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR1), 1);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR1), 0);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR2), 1);
    CHECK_INT(asyncio_remove_signal_handler(SIGTERM), 0); /* never had one */
    return 0;
}

static void test_signal_handler_runs_as_a_loop_callback(void **state)
{
    (void)state;
    assert_int_equal(run(main_signal, NULL, NULL), 0);
}

static int main_bad_signals(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct caught c = {0};
    int bad[] = {0, -1, NSIG, 1000, SIGKILL, SIGSTOP};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(asyncio_add_signal_handler(bad[i], on_signal, &c), -EINVAL);
        CHECK_INT(asyncio_remove_signal_handler(bad[i]), -EINVAL);
    }
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, NULL, &c), -EINVAL);
    return 0;
}

static void test_bad_signals_give_einval(void **state)
{
    (void)state;
    struct caught c = {0};
    assert_int_equal(asyncio_add_signal_handler(SIGUSR1, on_signal, &c), -EPERM);
    assert_int_equal(asyncio_remove_signal_handler(SIGUSR1), -EPERM);
    assert_int_equal(run(main_bad_signals, NULL, NULL), 0);
}

static int main_signals_left(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static struct caught c;
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, on_signal, &c), 0);
    CHECK_INT(asyncio_add_signal_handler(SIGUSR2, on_signal, &c), 0);
    CHECK_INT(asyncio_add_signal_handler(SIGHUP, on_signal, &c), 0);
    CHECK_INT(asyncio_remove_signal_handler(SIGHUP), 1);
    return 0; /* SIGUSR1 and SIGUSR2 still handled as the loop ends */
}

static void test_signal_mask_is_as_before_once_the_loop_ended(void **state)
{
    (void)state;
    sigset_t usr2, before, after;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    /* SIGUSR2 was blocked already: it must stay so. */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr2, &before), 0);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
    assert_int_equal(run(main_signals_left, NULL, NULL), 0);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &usr2, NULL), 0);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&before, sig) != sigismember(&after, sig))
            fail_msg("signal %d is %sblocked after the loop, was not before", sig,
                     sigismember(&after, sig) ? "" : "not ");
}

/* A signal that came while a handler was installed belongs to it: if it
 * was not read yet when the handler goes, it must not then get its default
 * action (for SIGUSR1, ending the process), as in asyncio, whose C-level
 * handler has always taken it already. */
static int main_pending_then_removed(void *arg, void **result)
{
    (void)result;
    static struct caught c;
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, on_signal, &c), 0);
    CHECK_INT(tu_raise(SIGUSR1), 0); /* pending: the loop has not looked */
    if (arg)
        return 0; /* the loop ends with the handler installed */
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR1), 1);
    CHECK_INT(asyncio_sleep(0.01), 0);
    return 0;
}

static int pending_removed_child(void)
{
    return child_run(main_pending_then_removed, NULL);
}

static int pending_at_end_child(void)
{
    return child_run(main_pending_then_removed, "end");
}

static void test_signal_pending_when_its_handler_is_removed_is_not_fatal(void **state)
{
    (void)state;
    assert_child_passed(in_child(pending_removed_child));
}

static void test_signal_pending_when_the_loop_ends_is_not_fatal(void **state)
{
    (void)state;
    assert_child_passed(in_child(pending_at_end_child));
}

/* A signal the program blocked, pending when its handler is added, is the
 * handler's: the signalfd reads it; the kqueue filter would not (libkqueue
 * drops it as the filter is added, a kernel kqueue records only later
 * ones), so it is taken as the handler is added. (Through a sigaction()
 * handler, as without signalfd, it waits for the program to unblock it.) */
static int main_pending_before_added(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static struct caught c;
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK_INT(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);
    CHECK_INT(tu_raise(SIGUSR2), 0);
    CHECK_INT(asyncio_add_signal_handler(SIGUSR2, on_signal, &c), 0);
    await_signal(&c);
    CHECK_INT(c.count, 1);
    CHECK_INT(c.signum, SIGUSR2);
    CHECK_INT(asyncio_sleep(0.01), 0);
    CHECK_INT(c.count, 1); /* once */
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR2), 1);
    sigset_t now;
    CHECK_INT(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK_INT(sigismember(&now, SIGUSR2), 1); /* blocked before: still */
    return 0;
}

static int pending_before_added_child(void)
{
    return child_run(main_pending_before_added, NULL);
}

static void test_signal_pending_when_its_handler_is_added_is_handled(void **state)
{
    (void)state;
#ifdef TU_PORTABLE_FEATURES
    skip(); /* through a sigaction() handler: pending until unblocked (signal.h) */
#endif
    assert_child_passed(in_child(pending_before_added_child));
}

/* Where the backend has a filter for signals (kqueue's EVFILT_SIGNAL), a
 * handler uses it and opens nothing of its own; elsewhere the first one
 * opens a signalfd (Linux) or a pipe's two ends (no signalfd). */
static int main_handler_fds(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static struct caught c;
    int before = tu_dir_entries("/proc/self/fd");
    CHECK_INT(asyncio_add_signal_handler(SIGUSR1, on_signal, &c), 0);
    CHECK_INT(asyncio_add_signal_handler(SIGUSR2, on_signal, &c), 0);
    int opened = tu_dir_entries("/proc/self/fd") - before;
    const char *backend = asyncio_loop_backend();
#ifdef TU_PORTABLE_FEATURES
    int expect = 2;
#else
    int expect = 1;
#endif
    if (strcmp(backend, "kqueue") == 0)
        expect = 0;
    CHECK_INT(opened, expect);
    CHECK_INT(tu_raise(SIGUSR1), 0);
    await_signal(&c);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR1), 1);
    CHECK_INT(asyncio_remove_signal_handler(SIGUSR2), 1);
    return 0;
}

static void test_signal_handlers_use_the_backends_own_filter(void **state)
{
    (void)state;
    if (tu_dir_entries("/proc/self/fd") < 0)
        skip(); /* no /proc to count fds in */
    assert_int_equal(run(main_handler_fds, NULL, NULL), 0);
}

/* ---- datagrams ----------------------------------------------------------- */

/* A datagram server endpoint: answers one "ping" with "pong". */
struct dgram_server {
    int fd;
    bool got;
    char addr[INET6_ADDRSTRLEN + 8];
};

static int pong_once(void *arg, void **result)
{
    (void)result;
    struct dgram_server *d = arg;
    char buf[16] = {0};
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t n = asyncio_sock_recvfrom(d->fd, buf, sizeof buf, (struct sockaddr *)&from, &flen);
    if (n == -ECANCELED)
        return (int)n; /* the ping went to another address */
    CHECK_INT(n, 4);
    CHECK_STR(buf, "ping");
    d->got = true;
    CHECK_INT(asyncio_sock_sendto(d->fd, "pong", 4, (struct sockaddr *)&from, flen), 4);
    return 0;
}

#define DGRAM_SERVERS 4

/*
 * Server endpoints bound on every address host resolves to, all on one
 * port, as a server that means "host" does (asyncio_start_server() does the
 * same for TCP). Returns how many, or -EADDRINUSE when the port the first
 * took is taken in another family (try again).
 */
static int bind_every_address(const char *host, struct dgram_server *srv, int *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    int rc = asyncio_getaddrinfo(host, NULL, &hints, &res);
    if (rc < 0) {
        tu_fail_at(__FILE__, __LINE__, "asyncio_getaddrinfo(%s): %s", host, err(rc));
        return 0;
    }
    int n = 0;
    *port = 0;
    for (struct addrinfo *ai = res; ai && n < DGRAM_SERVERS; ai = ai->ai_next) {
        struct dgram_server *d = &srv[n];
        *d = (struct dgram_server){.fd = -1};
        numeric(ai, d->addr, sizeof d->addr);
        int fd = asyncio_create_datagram_endpoint(d->addr, *port, NULL, 0, ai->ai_family);
        if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT)
            continue; /* listed, but not configured here (IPv6 off) */
        if (fd == -EADDRINUSE && *port) {
            for (int i = 0; i < n; i++)
                asyncio_close(srv[i].fd);
            n = -EADDRINUSE;
            break;
        }
        if (fd < 0) {
            tu_fail_at(__FILE__, __LINE__, "datagram endpoint on %s port %d: %s", d->addr,
                       *port, err(fd));
            continue;
        }
        d->fd = fd;
        if (!*port) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            CHECK_INT(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
            *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        n++;
    }
    freeaddrinfo(res);
    return n;
}

/*
 * A client endpoint connected to host:port sends "ping" and gets "pong"
 * back. The servers listen on every address of host: the client reaches
 * one whichever address its resolver gives first ("localhost" is ::1 first
 * with Debian's /etc/hosts, 127.0.0.1 with one that has no ::1 line).
 */
static void datagram_round_trip(const char *host)
{
    struct dgram_server srv[DGRAM_SERVERS];
    int n = 0, port = 0;
    for (int attempt = 0; attempt < 5 && (n = bind_every_address(host, srv, &port)) < 0;
         attempt++)
        ;
    if (n <= 0) {
        tu_fail_at(__FILE__, __LINE__, "no datagram server endpoint on %s: %s", host, err(n));
        return;
    }
    char where[DGRAM_SERVERS * (INET6_ADDRSTRLEN + 10)] = "";
    asyncio_task_t *tasks[DGRAM_SERVERS];
    for (int i = 0; i < n; i++) {
        snprintf(where + strlen(where), sizeof where - strlen(where), "%s%s", i ? ", " : "",
                 srv[i].addr);
        tasks[i] = tu_spawn(pong_once, &srv[i], "pong");
    }
    int cli = asyncio_create_datagram_endpoint(NULL, 0, host, port, 0);
    if (cli < 0) {
        tu_fail_at(__FILE__, __LINE__, "client endpoint to %s port %d: %s", host, port, err(cli));
    } else {
        /* The answer depends on the servers: at most 5 s. */
        asyncio_timeout_t scope;
        CHECK_INT(asyncio_timeout_enter(&scope, 5), 0);
        CHECK_INT(asyncio_sock_sendall(cli, "ping", 4), 4);
        char buf[16] = {0};
        ssize_t got = asyncio_sock_recv(cli, buf, sizeof buf);
        if (asyncio_timeout_exit(&scope) == -ETIMEDOUT)
            tu_fail_at(__FILE__, __LINE__,
                       "datagram to %s port %d: no pong within 5 s from the servers on %s",
                       host, port, where);
        else if (got != 4)
            tu_fail_at(__FILE__, __LINE__,
                       "datagram to %s port %d: recv gave %s, not \"pong\" from the servers "
                       "on %s (ECONNREFUSED: it went to an address nobody listens on)",
                       host, port, err(got), where);
        else
            CHECK_STR(buf, "pong");
        CHECK_INT(asyncio_close(cli), 0);
    }
    int answered = 0;
    for (int i = 0; i < n; i++) {
        if (!srv[i].got)
            asyncio_task_cancel(tasks[i]);
        int rc = asyncio_await(tasks[i], NULL);
        CHECK_INT(rc, srv[i].got ? 0 : -ECANCELED);
        asyncio_task_release(tasks[i]);
        answered += srv[i].got;
        CHECK_INT(asyncio_close(srv[i].fd), 0);
    }
    CHECK_INT(answered, cli >= 0 ? 1 : 0);
}

static int main_datagram(void *arg, void **result)
{
    (void)arg;
    (void)result;
    datagram_round_trip("127.0.0.1");
    if (have_ipv6_loopback())
        datagram_round_trip("::1");
    datagram_round_trip("localhost"); /* resolved in the thread pool */
    return 0;
}

static void test_datagram_endpoints_round_trip(void **state)
{
    (void)state;
    assert_int_equal(run(main_datagram, NULL, NULL), 0);
}

static int main_datagram_bad(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_create_datagram_endpoint("127.0.0.1", -1, NULL, 0, 0), -EINVAL);
    CHECK_INT(asyncio_create_datagram_endpoint("127.0.0.1", 65536, NULL, 0, 0), -EINVAL);
    CHECK_INT(asyncio_create_datagram_endpoint(NULL, 0, "127.0.0.1", -1, 0), -EINVAL);
    CHECK_INT(asyncio_create_datagram_endpoint(NULL, 0, "127.0.0.1", 65536, 0), -EINVAL);
    CHECK_INT(asyncio_create_datagram_endpoint(NULL, 0, NULL, 0, 0), -EINVAL); /* nothing */
    return 0;
}

static void test_datagram_endpoint_rejects_bad_ports(void **state)
{
    (void)state;
    assert_int_equal(run(main_datagram_bad, NULL, NULL), 0);
}

/* ---- misuse -------------------------------------------------------------- */

static int main_bad_arguments(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_t *srv = NULL;
    asyncio_stream_t *s = NULL;
    const char *h = "127.0.0.1";
    CHECK_INT(asyncio_start_server(&srv, echo_handler, NULL, h, -1, NULL), -EINVAL);
    CHECK_INT(asyncio_start_server(&srv, echo_handler, NULL, h, 65536, NULL), -EINVAL);
    CHECK_INT(asyncio_start_server(&srv, NULL, NULL, h, 0, NULL), -EINVAL);
    CHECK_INT(asyncio_open_connection(&s, h, 0, NULL), -EINVAL);
    CHECK_INT(asyncio_open_connection(&s, h, -1, NULL), -EINVAL);
    CHECK_INT(asyncio_open_connection(&s, h, 65536, NULL), -EINVAL);
    CHECK_INT(asyncio_open_connection(&s, NULL, 80, NULL), -EINVAL);
    CHECK_INT(asyncio_open_connection(&s, "", 80, NULL), -EINVAL);
    CHECK_INT(asyncio_open_connection(NULL, h, 80, NULL), -EINVAL);
    asyncio_connection_options_t neg = {.connect_timeout = -1};
    CHECK_INT(asyncio_open_connection(&s, h, 80, &neg), -EINVAL);
    CHECK_INT(asyncio_open_unix_connection(&s, "/nonexistent/sock", &neg), -EINVAL);
    asyncio_connection_options_t nan_timeout = {.connect_timeout = NAN};
    CHECK_INT(asyncio_open_connection(&s, h, 80, &nan_timeout), -EINVAL);
    CHECK_INT(asyncio_open_unix_connection(&s, "/nonexistent/sock", &nan_timeout), -EINVAL);
    char longpath[200];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    CHECK_INT(asyncio_start_unix_server(&srv, echo_handler, NULL, longpath, NULL), -ENAMETOOLONG);
    CHECK_INT(asyncio_open_unix_connection(&s, longpath, NULL), -ENAMETOOLONG);
    CHECK_INT(asyncio_start_unix_server(&srv, echo_handler, NULL, "", NULL), -EINVAL);
    CHECK_INT(asyncio_open_unix_connection(&s, NULL, NULL), -EINVAL);
    CHECK_PTR(srv, NULL);
    CHECK_PTR(s, NULL);
    CHECK_INT(asyncio_server_port(NULL), -EINVAL);
    CHECK_INT(asyncio_server_connections(NULL), 0);
    CHECK_INT(asyncio_server_close(NULL), -EINVAL);
    CHECK_INT(asyncio_server_close_clients(NULL), -EINVAL);
    CHECK_INT(asyncio_server_wait_closed(NULL), -EINVAL);
    CHECK_INT(asyncio_server_serve_forever(NULL), -EINVAL);
    return 0;
}

static void test_bad_arguments_and_calls_outside_a_task_get_error_codes(void **state)
{
    (void)state;
    asyncio_server_t *srv = NULL;
    asyncio_stream_t *s = NULL;
    assert_int_equal(asyncio_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL),
                     -EPERM);
    assert_int_equal(asyncio_open_connection(&s, "127.0.0.1", 80, NULL), -EPERM);
    assert_int_equal(asyncio_create_datagram_endpoint("127.0.0.1", 0, NULL, 0, 0), -EPERM);
    assert_int_equal(run(main_bad_arguments, NULL, NULL), 0);
}

static int main_null_out(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char path[64];
    snprintf(path, sizeof path, "/tmp/asyncio-test-%d.sock", (int)getpid());
    CHECK_INT(asyncio_start_server(NULL, echo_handler, NULL, "127.0.0.1", 0, NULL), -EINVAL);
    CHECK_INT(asyncio_start_unix_server(NULL, echo_handler, NULL, path, NULL), -EINVAL);
    return 0;
}

static void test_start_server_without_a_place_for_the_server_gives_einval(void **state)
{
    (void)state;
    assert_int_equal(run(main_null_out, NULL, NULL), 0);
}

/* host "" listens on every interface, one port for both families. */
static int main_every_interface(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_server_t *srv = serve(echo_handler, NULL, "", NULL);
    if (!srv)
        return -1;
    int port = asyncio_server_port(srv);
    CHECK(port > 0);
    asyncio_stream_t *c = dial("127.0.0.1", port);
    if (c) {
        round_trip(c, "v4");
        CHECK_INT(asyncio_stream_wait_closed(c), 0);
    }
    if (have_ipv6_loopback()) {
        c = dial("::1", port);
        if (c) {
            round_trip(c, "v6");
            CHECK_INT(asyncio_stream_wait_closed(c), 0);
        }
    }
    shut(srv);
    return 0;
}

static void test_empty_host_listens_on_every_interface_on_one_port(void **state)
{
    (void)state;
    assert_int_equal(run(main_every_interface, NULL, NULL), 0);
}

/* wait_closed: a second waiter gets -EBUSY; a cancelled one -ECANCELED,
 * and the server is left to be waited for again. */
static int main_wait_closed_busy(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {0};
    asyncio_server_t *srv = serve(echo_handler, &seen, "127.0.0.1", NULL);
    if (!srv)
        return -1;
    asyncio_stream_t *c = dial("127.0.0.1", asyncio_server_port(srv));
    if (!c)
        return -1;
    round_trip(c, "hi"); /* the handler runs */
    CHECK_INT(asyncio_server_close(srv), 0);
    asyncio_task_t *w = tu_spawn(wait_closed_task, srv, "waiter");
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(w), "future");
    CHECK_INT(asyncio_server_wait_closed(srv), -EBUSY);
    CHECK_INT(asyncio_task_cancel(w), 1);
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    CHECK_INT(asyncio_stream_wait_closed(c), 0); /* the handler returns */
    CHECK_INT(asyncio_server_wait_closed(srv), 0);
    CHECK_INT(seen.ended, 1);
    return 0;
}

static void test_wait_closed_twice_is_ebusy_and_cancelled_is_ecanceled(void **state)
{
    (void)state;
    assert_int_equal(run(main_wait_closed_busy, NULL, NULL), 0);
    assert_log("wait_closed:ECANCELED");
}

/* A datagram endpoint whose connect fails (broadcast without
 * SO_BROADCAST) returns the error and leaves no fd behind. */
static int main_datagram_connect_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int probe = dup(0);
    CHECK(probe >= 0);
    close(probe);
    int rc = asyncio_create_datagram_endpoint(NULL, 0, "255.255.255.255", 9, AF_INET);
    CHECK(rc == -EACCES || rc == -ENETUNREACH);
    int next = dup(0);
    CHECK_INT(next, probe); /* the socket it made was closed */
    close(next);
    return 0;
}

static void test_datagram_endpoint_whose_connect_fails_returns_the_error(void **state)
{
    (void)state;
    assert_int_equal(run(main_datagram_connect_fails, NULL, NULL), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would end the run: none may come */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_server_and_open_connection_round_trip),
        cmocka_unit_test(test_open_connection_to_localhost_resolves_in_the_thread_pool),
        cmocka_unit_test(test_ipv6_loopback_round_trip),
        cmocka_unit_test(test_open_connection_tries_each_address_of_a_name_in_turn),
        cmocka_unit_test(test_unresolvable_name_gives_enoent),
        cmocka_unit_test(test_connection_refused_gives_econnrefused),
        cmocka_unit_test(test_connect_timeout_ends_a_connect_that_gets_no_answer),
        cmocka_unit_test(test_connect_timeout_bounds_a_connect_to_an_unroutable_address),
        cmocka_unit_test(test_unix_server_replaces_a_stale_socket_and_unlinks_it_at_close),
        cmocka_unit_test(test_unix_server_left_open_is_closed_and_unlinked_with_the_loop),
        cmocka_unit_test(test_unix_server_outside_a_loop_gives_eperm),
        cmocka_unit_test(test_handler_runs_once_per_connection_in_a_task_of_its_own),
        cmocka_unit_test(test_handler_returning_closes_its_stream),
        cmocka_unit_test(test_server_close_stops_accepting_but_connections_go_on),
        cmocka_unit_test(test_close_clients_cancels_the_handlers),
        cmocka_unit_test(test_close_clients_cancels_a_handler_that_has_not_started),
        cmocka_unit_test(test_server_wait_closed_waits_for_the_handlers),
        cmocka_unit_test(test_serve_forever_returns_0_once_another_task_closes_the_server),
        cmocka_unit_test(test_serve_forever_cancelled_closes_the_server),
        cmocka_unit_test(test_server_connections_counts_running_handlers),
        cmocka_unit_test(test_accept_out_of_fds_pauses_instead_of_spinning),
        cmocka_unit_test(test_200_concurrent_clients_each_make_5_round_trips),
        cmocka_unit_test(test_reuse_port_lets_two_servers_share_a_port),
        cmocka_unit_test(test_getaddrinfo_numeric_names_and_bad_input),
        cmocka_unit_test(test_getaddrinfo_cancelled_in_the_thread_pool_leaks_nothing),
        cmocka_unit_test(test_signal_handler_runs_as_a_loop_callback),
        cmocka_unit_test(test_bad_signals_give_einval),
        cmocka_unit_test(test_signal_mask_is_as_before_once_the_loop_ended),
        cmocka_unit_test(test_signal_pending_when_its_handler_is_removed_is_not_fatal),
        cmocka_unit_test(test_signal_pending_when_the_loop_ends_is_not_fatal),
        cmocka_unit_test(test_signal_pending_when_its_handler_is_added_is_handled),
        cmocka_unit_test(test_signal_handlers_use_the_backends_own_filter),
        cmocka_unit_test(test_datagram_endpoints_round_trip),
        cmocka_unit_test(test_datagram_endpoint_rejects_bad_ports),
        cmocka_unit_test(test_bad_arguments_and_calls_outside_a_task_get_error_codes),
        /* Last: a NULL out written to would crash the run. */
        cmocka_unit_test(test_start_server_without_a_place_for_the_server_gives_einval),
        cmocka_unit_test(test_empty_host_listens_on_every_interface_on_one_port),
        cmocka_unit_test(test_wait_closed_twice_is_ebusy_and_cancelled_is_ecanceled),
        cmocka_unit_test(test_datagram_endpoint_whose_connect_fails_returns_the_error),
    };
    return tu_run_group_tests_name("server", tests, NULL, NULL);
}
