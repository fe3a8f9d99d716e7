/*
 * TLS streams (<asyncio/tls.h>, libasyncio-tls) over real connections on
 * 127.0.0.1 (CPython: test_asyncio/test_ssl.py, test_sslproto.py): a
 * server made with asyncio_start_server(.tls) and a client made with
 * asyncio_open_connection(.tls), or a plain connection upgraded with
 * asyncio_start_tls(). Peers that misbehave are raw: a socket driven with
 * the asyncio_sock_* calls (garbage, silence), or plain OpenSSL in a
 * thread with blocking sockets (a close without close_notify, a record
 * cut short or sent in halves).
 *
 * The certificates are made at the start (tls_certs.c) in a temporary
 * directory. Every test runs in a timeout scope (tls_run()) and under the
 * watchdog (main()); after each one, tls_run() checks that no fd was left
 * open, that OpenSSL's error queue on this thread is empty (also checked
 * after every failing call: CHECK_ERR) and that nothing was printed on
 * stderr (the library never prints; a server does not report a failed
 * handshake).
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "tls_certs.h"

#include <asyncio/tls.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MiB (1024 * 1024)

static struct tls_certs certs;

/* tu_err() and the codes TLS and networking add. */
static const char *err(long long rc)
{
    switch (rc) {
    case -ECONNRESET: return "ECONNRESET";
    case -ECONNREFUSED: return "ECONNREFUSED";
    case -EPROTO: return "EPROTO";
    case -ASYNCIO_ECERT: return "ECERT";
    case -ENOTSOCK: return "ENOTSOCK";
    case -EEXIST: return "EEXIST";
    case -ENOBUFS: return "ENOBUFS";
    case -EMSGSIZE: return "EMSGSIZE";
    default: return tu_err(rc);
    }
}

/* ---- checks ------------------------------------------------------------- */

/* The library leaves OpenSSL's per-thread error queue empty: after every
 * call, failing ones included. Tasks run on this thread. */
static void check_ssl_clean(const char *file, int line)
{
    unsigned long e = ERR_peek_error();
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        tu_fail_at(file, line, "OpenSSL's error queue was left holding: %s", buf);
        ERR_clear_error();
    }
}

#define CHECK_SSL_CLEAN() check_ssl_clean(__FILE__, __LINE__)

/* A call that fails: its code, and nothing left in OpenSSL's queue. */
#define CHECK_ERR(call, expected)                                              \
    do {                                                                       \
        long long tu_r_ = (long long)(call);                                   \
        long long tu_x_ = (long long)(expected);                               \
        if (tu_r_ != tu_x_)                                                    \
            tu_fail_at(__FILE__, __LINE__, "%s is %s, expected %s", #call,     \
                       err(tu_r_), err(tu_x_));                                \
        check_ssl_clean(__FILE__, __LINE__);                                   \
    } while (0)

/* A reason given as text must be there and name one of the words (any
 * case), e.g. "expired". */
static void check_mentions(const char *file, int line, const char *what, const char *text,
                           const char *w1, const char *w2)
{
    if (!text || !*text) {
        tu_fail_at(file, line, "%s: no reason given", what);
        return;
    }
    if (!strcasestr(text, w1) && !(w2 && strcasestr(text, w2)))
        tu_fail_at(file, line, "%s \"%s\" does not mention \"%s\"%s%s%s", what, text, w1,
                   w2 ? " or \"" : "", w2 ? w2 : "", w2 ? "\"" : "");
}

#define CHECK_MENTIONS(text, w1, w2) check_mentions(__FILE__, __LINE__, #text, (text), (w1), (w2))

static const char *or_null(const char *s)
{
    return s ? s : "(null)";
}

/* How many fds this process has open. */
static int count_fds(void)
{
    int n = tu_dir_entries("/proc/self/fd");
    return n < 0 ? -1 : n - 1; /* the directory's own */
}

/* Let the loop run until cond holds (at most about 2 s). */
#define YIELD_UNTIL(cond)                                                      \
    do {                                                                       \
        for (int tu_i_ = 0; tu_i_ < 400 && !(cond); tu_i_++)                   \
            if (asyncio_sleep(0.005) < 0)                                      \
                break;                                                         \
        CHECK(cond);                                                           \
    } while (0)

/* ---- stderr: nothing may be printed ---------------------------------------- */

/* Under a sanitizer a report goes to stderr and the program ends at once:
 * it must not land in a file nobody reads. */
#if defined(TLS_NO_STDERR_CAPTURE)
/* set by the build (CMake's ASYNCIO_SANITIZE: gcc names no macro for UBSan) */
#elif defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TLS_NO_STDERR_CAPTURE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                 \
    __has_feature(undefined_behavior_sanitizer)
#define TLS_NO_STDERR_CAPTURE 1
#endif
#endif

struct capture {
    FILE *file;
    int saved;
};

static void capture_begin(struct capture *c)
{
    c->file = NULL;
    c->saved = -1;
#ifndef TLS_NO_STDERR_CAPTURE
    if (getenv("TLS_TEST_NO_CAPTURE"))
        return;
    fflush(stderr);
    c->file = tmpfile();
    if (!c->file)
        return;
    c->saved = dup(STDERR_FILENO);
    if (c->saved < 0 || dup2(fileno(c->file), STDERR_FILENO) < 0) {
        if (c->saved >= 0)
            close(c->saved);
        fclose(c->file);
        c->file = NULL;
        c->saved = -1;
    }
#endif
}

/* Put stderr back; what was printed meanwhile in out (NUL-terminated), and
 * printed again on the real stderr. */
static void capture_end(struct capture *c, char *out, size_t cap)
{
    out[0] = '\0';
    if (!c->file)
        return;
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    rewind(c->file);
    size_t n = fread(out, 1, cap - 1, c->file);
    out[n] = '\0';
    fclose(c->file);
    c->file = NULL;
    if (n)
        fputs(out, stderr);
}

/*
 * Run fn as a test's main task, every wait bounded (TU_TEST_TIMEOUT), and
 * fail the test if a CHECK failed, an fd was left open, OpenSSL's error
 * queue holds something or anything was printed on stderr.
 */
static void tls_run(asyncio_fn fn, void *arg)
{
    struct capture cap;
    capture_begin(&cap);
    ERR_clear_error();
    int fds = count_fds();
    tu_reset();
    struct tu_bounded b = {fn, arg, TU_TEST_TIMEOUT};
    int rc = asyncio_run(tu_bounded_main, &b, NULL);
    int fds_after = count_fds();
    unsigned long ssl_err = ERR_peek_error();
    ERR_clear_error();
    static char printed[8192];
    capture_end(&cap, printed, sizeof printed);
    tu_check_failures();
    assert_int_equal(rc, 0);
    if (fds_after != fds)
        fail_msg("%d fd(s) open before the test, %d after", fds, fds_after);
    if (ssl_err) {
        char buf[256];
        ERR_error_string_n(ssl_err, buf, sizeof buf);
        fail_msg("OpenSSL's error queue holds: %s", buf);
    }
    if (printed[0])
        fail_msg("something was printed on stderr (shown above)");
}

/* ---- data ---------------------------------------------------------------- */

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 4096);
}

/* Fill buf with pattern(from), pattern(from + 1), ... */
static void fill_pattern(char *buf, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)pattern(from + i);
}

/* Whether buf holds pattern(from), ... */
static bool is_pattern(const char *buf, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] != pattern(from + i))
            return false;
    return true;
}

/* ---- contexts ------------------------------------------------------------ */

static asyncio_tls_context_t *new_ctx(int side)
{
    asyncio_tls_context_t *ctx = NULL;
    int rc = asyncio_tls_context_new(&ctx, side);
    if (rc != 0 || !ctx)
        tu_fail_at(__FILE__, __LINE__, "asyncio_tls_context_new(%d): %s", side, err(rc));
    return ctx;
}

/* A server context presenting pem's certificate. */
static asyncio_tls_context_t *server_ctx(const struct tls_pem *pem)
{
    asyncio_tls_context_t *ctx = new_ctx(ASYNCIO_TLS_SERVER);
    if (!ctx)
        return NULL;
    int rc = asyncio_tls_context_load_cert_chain(ctx, pem->cert, pem->key);
    if (rc != 0) {
        tu_fail_at(__FILE__, __LINE__, "load_cert_chain(%s): %s", pem->cert, err(rc));
        asyncio_tls_context_unref(ctx);
        return NULL;
    }
    return ctx;
}

/* A client context trusting the CA ca (NULL: the system's store). */
static asyncio_tls_context_t *client_ctx(const struct tls_pem *ca)
{
    asyncio_tls_context_t *ctx = new_ctx(ASYNCIO_TLS_CLIENT);
    if (!ctx || !ca)
        return ctx;
    int rc = asyncio_tls_context_load_verify_locations(ctx, ca->cert, NULL);
    if (rc != 0) {
        tu_fail_at(__FILE__, __LINE__, "load_verify_locations(%s): %s", ca->cert, err(rc));
        asyncio_tls_context_unref(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- what a server's handlers saw ----------------------------------------- */

struct seen {
    int calls, ended;
    int is_tls;
    char version[32], cipher[80], alpn[32], subject[256];
    int subject_rc;
    long long end;        /* what the handler's last read returned */
    char error[256];      /* asyncio_tls_error() then */
    size_t bytes;         /* bytes it read */
    bool bad;             /* they did not follow pattern() */
    asyncio_event_t go;   /* the client lets the handler go on */
    /* start_tls handlers */
    asyncio_tls_context_t *tls;
    double delay;         /* wait before reading the plain line */
    bool quiet;           /* do not answer it: the client starts at once */
    size_t peeked;        /* bytes buffered after the plain line */
    int start_rc;
};

/* Record what the TLS getters say of s. */
static void note(struct seen *seen, asyncio_stream_t *s)
{
    seen->is_tls = asyncio_tls_is_tls(s);
    snprintf(seen->version, sizeof seen->version, "%s", or_null(asyncio_tls_version(s)));
    snprintf(seen->cipher, sizeof seen->cipher, "%s", or_null(asyncio_tls_cipher(s)));
    snprintf(seen->alpn, sizeof seen->alpn, "%s",
             or_null(asyncio_tls_selected_alpn_protocol(s)));
    seen->subject_rc = asyncio_tls_peer_subject(s, seen->subject, sizeof seen->subject);
    CHECK_SSL_CLEAN();
}

/* Record how the handler's reading ended. */
static void finish(struct seen *seen, asyncio_stream_t *s, long long end)
{
    seen->end = end;
    snprintf(seen->error, sizeof seen->error, "%s", or_null(asyncio_tls_error(s)));
    CHECK_SSL_CLEAN();
    seen->ended++;
}

/* Echo what comes until the end; count it. */
static void echo_loop(struct seen *seen, asyncio_stream_t *s)
{
    note(seen, s);
    char *buf = malloc(65536);
    ssize_t n = -ENOMEM;
    while (buf && (n = asyncio_stream_read(s, buf, 65536)) > 0) {
        seen->bytes += (size_t)n;
        int rc = asyncio_stream_write(s, buf, (size_t)n);
        if (rc == 0)
            rc = asyncio_stream_drain(s);
        if (rc < 0) {
            n = rc;
            break;
        }
    }
    free(buf);
    finish(seen, s, n);
}

static int echo_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    echo_loop(seen, s);
    return 0;
}

/* Read to the end, checking the bytes follow pattern(). */
static int sink_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    note(seen, s);
    char *buf = malloc(65536);
    ssize_t n = -ENOMEM;
    while (buf && (n = asyncio_stream_read(s, buf, 65536)) > 0) {
        if (!is_pattern(buf, (size_t)n, seen->bytes))
            seen->bad = true;
        seen->bytes += (size_t)n;
    }
    free(buf);
    finish(seen, s, n);
    return 0;
}

/* Wait for the client's go, then as sink_handler. */
static int stalled_sink_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    if (asyncio_event_wait(&seen->go) < 0) {
        seen->calls++;
        finish(seen, s, -ECANCELED);
        return 0;
    }
    return sink_handler(s, arg);
}

/* ---- a server and a client ------------------------------------------------- */

struct conn {
    asyncio_tls_context_t *sctx, *cctx; /* made by conn_start() unless set */
    const char *host;                   /* NULL: 127.0.0.1 */
    const char *server_hostname;        /* the client's option */
    double server_timeout;              /* the server's handshake timeout */
    size_t limit;                       /* the client stream's limit */
    asyncio_server_t *srv;
    int port;
    asyncio_stream_t *s; /* the client's stream */
    struct seen seen;
    char why[256]; /* the client's tls_error */
};

/* Start a TLS server with handler h (arg: &c->seen) presenting
 * certs.server unless c->sctx was set. */
static int conn_start(struct conn *c, asyncio_stream_handler h)
{
    CHECK_INT(asyncio_event_init(&c->seen.go), 0);
    if (!c->sctx)
        c->sctx = server_ctx(&certs.server);
    if (!c->cctx)
        c->cctx = client_ctx(&certs.ca);
    if (!c->sctx || !c->cctx)
        return -1;
    if (!c->host)
        c->host = "127.0.0.1";
    asyncio_server_options_t o = {.tls = c->sctx, .tls_handshake_timeout = c->server_timeout};
    int rc = asyncio_start_server(&c->srv, h, &c->seen, c->host, 0, &o);
    if (rc < 0) {
        tu_fail_at(__FILE__, __LINE__, "asyncio_start_server: %s", err(rc));
        return -1;
    }
    c->port = asyncio_server_port(c->srv);
    CHECK(c->port > 0);
    return 0;
}

/* Connect the client (TLS with c->cctx); open_connection's result. */
static int conn_dial(struct conn *c)
{
    asyncio_connection_options_t o = {.tls = c->cctx,
                                      .server_hostname = c->server_hostname,
                                      .limit = c->limit,
                                      .tls_error = c->why,
                                      .tls_error_size = sizeof c->why};
    c->why[0] = '\0';
    c->s = NULL;
    int rc = asyncio_open_connection(&c->s, c->host, c->port, &o);
    CHECK_SSL_CLEAN();
    if (rc == 0)
        CHECK(c->s != NULL);
    else
        c->s = NULL;
    return rc;
}

/* conn_start() and conn_dial(), which must work. */
static int conn_open(struct conn *c, asyncio_stream_handler h)
{
    if (conn_start(c, h) < 0)
        return -1;
    int rc = conn_dial(c);
    if (rc != 0) {
        tu_fail_at(__FILE__, __LINE__, "asyncio_open_connection: %s (%s)", err(rc), c->why);
        return -1;
    }
    return 0;
}

/* Close the client (wait_closed, if still open), stop the server and wait
 * for its handlers, drop the contexts. */
static void conn_end(struct conn *c)
{
    if (c->s) {
        CHECK_INT(asyncio_stream_wait_closed(c->s), 0);
        c->s = NULL;
    }
    if (c->srv) {
        CHECK_INT(asyncio_server_close(c->srv), 0);
        CHECK_INT(asyncio_server_wait_closed(c->srv), 0);
        c->srv = NULL;
    }
    asyncio_tls_context_unref(c->sctx);
    asyncio_tls_context_unref(c->cctx);
    c->sctx = c->cctx = NULL;
    CHECK_INT(asyncio_event_destroy(&c->seen.go), 0);
    CHECK_SSL_CLEAN();
}

/* start_tls's options for a client checking the name "localhost". */
static const asyncio_tls_options_t localhost = {.server_hostname = "localhost"};

/* Send msg + "\n" and check it comes back. */
static void round_trip(asyncio_stream_t *s, const char *msg)
{
    char want[256], got[256] = {0};
    int len = snprintf(want, sizeof want, "%s\n", msg);
    CHECK_INT(asyncio_stream_write(s, want, (size_t)len), 0);
    CHECK_INT(asyncio_stream_readline(s, got, sizeof got), len);
    CHECK_STR(got, want);
}

/* ---- raw peers ----------------------------------------------------------- */

/* A listening socket on 127.0.0.1 (non-blocking, for the loop) that
 * nobody accepts on: connections complete in its backlog and then hear
 * nothing. */
static int silent_listener(int *port)
{
    int lfd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(lfd >= 0);
    CHECK_INT(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(listen(lfd, 8), 0);
    CHECK_INT(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return lfd;
}

/* A raw TCP client of 127.0.0.1:port (the loop's kind of fd). */
static int raw_connect(int port)
{
    int fd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(fd >= 0);
    CHECK_INT(asyncio_sock_connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Plain OpenSSL in a thread of its own, with blocking sockets (each call
 * bounded by a 5 s socket timeout), as a peer that misbehaves. */
enum raw_mode {
    RAW_SERVER_NO_CLOSE_NOTIFY, /* "hi", then close the socket */
    RAW_SERVER_TRUNCATED,       /* half of the record of "hello", then close */
    RAW_SERVER_SLOW_RECORD,     /* "hello world" in a record sent in two halves
                                   200 ms apart; then wait for the end */
    RAW_CLIENT_NO_CLOSE_NOTIFY, /* "hi\n", read "ok\n", close the socket */
};

struct raw_peer {
    enum raw_mode mode;
    int lfd;  /* server modes: listening socket */
    int port; /* the port it listens on, or connects to */
    pthread_t thread;
    bool running;
    char failed[256]; /* what went wrong in the thread */
    char got[64];     /* what it read */
    int tickets;      /* client: the session tickets it received */
};

/* A client's new-session callback: one per TLS 1.3 ticket received. */
static int count_ticket(SSL *ssl, SSL_SESSION *sess)
{
    (void)sess;
    struct raw_peer *p = SSL_get_app_data(ssl);
    p->tickets++;
    return 0; /* not kept: OpenSSL frees it */
}

static void raw_fail(struct raw_peer *p, const char *what)
{
    if (!p->failed[0]) {
        unsigned long e = ERR_peek_error();
        char buf[200] = "";
        if (e)
            ERR_error_string_n(e, buf, sizeof buf);
        snprintf(p->failed, sizeof p->failed, "%s: %s (errno %d)", what, buf, errno);
    }
    ERR_clear_error();
}

static int send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *raw_peer_thread(void *arg)
{
    struct raw_peer *p = arg;
    bool server = p->mode != RAW_CLIENT_NO_CLOSE_NOTIFY;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1;
    if (server) {
        struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) != 1) {
            raw_fail(p, "accept: nobody came");
            goto out;
        }
        fd = accept(p->lfd, NULL, NULL);
    } else {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            raw_fail(p, "connect");
            goto out;
        }
    }
    if (fd < 0) {
        raw_fail(p, server ? "accept" : "socket");
        goto out;
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        raw_fail(p, "SSL_CTX_new");
        goto out;
    }
    if (!server) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(ctx, count_ticket);
    }
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0); /* nothing after the handshake but ours */
        if (SSL_CTX_use_certificate_file(ctx, certs.server.cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, certs.server.key, SSL_FILETYPE_PEM) != 1) {
            raw_fail(p, "loading the server's certificate");
            goto out;
        }
    }
    ssl = SSL_new(ctx);
    if (ssl)
        SSL_set_app_data(ssl, p);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        raw_fail(p, "SSL_new");
        goto out;
    }
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        raw_fail(p, "handshake");
        goto out;
    }
    switch (p->mode) {
    case RAW_SERVER_NO_CLOSE_NOTIFY:
        if (SSL_write(ssl, "hi", 2) != 2)
            raw_fail(p, "SSL_write");
        break; /* and close the socket with no close_notify */
    case RAW_SERVER_TRUNCATED:
    case RAW_SERVER_SLOW_RECORD: {
        /* The record is made in memory, then sent by hand. */
        BIO *mem = BIO_new(BIO_s_mem());
        if (!mem) {
            raw_fail(p, "BIO_new");
            break;
        }
        SSL_set0_wbio(ssl, mem);
        const char *msg = p->mode == RAW_SERVER_TRUNCATED ? "hello" : "hello world";
        if (SSL_write(ssl, msg, (int)strlen(msg)) != (int)strlen(msg)) {
            raw_fail(p, "SSL_write");
            break;
        }
        char *rec = NULL;
        long len = BIO_get_mem_data(mem, &rec);
        size_t half = (size_t)len / 2;
        if (len < 10 || send_all(fd, rec, half) < 0) {
            raw_fail(p, "send");
            break;
        }
        if (p->mode == RAW_SERVER_TRUNCATED)
            break;
        usleep(200 * 1000);
        if (send_all(fd, rec + half, (size_t)len - half) < 0) {
            raw_fail(p, "send");
            break;
        }
        /* Until the client has read it and closed. */
        char buf[256];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
            ;
        if (n < 0)
            raw_fail(p, "waiting for the client to close");
        break;
    }
    case RAW_CLIENT_NO_CLOSE_NOTIFY: {
        if (SSL_write(ssl, "hi\n", 3) != 3) {
            raw_fail(p, "SSL_write");
            break;
        }
        int n = SSL_read(ssl, p->got, (int)sizeof p->got - 1);
        if (n <= 0)
            raw_fail(p, "SSL_read");
        else
            p->got[n] = '\0';
        break; /* and close the socket with no close_notify */
    }
    }
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    if (server)
        close(p->lfd);
    ERR_clear_error();
    return NULL;
}

/* Start the peer (server modes: listening on p->port). */
static int raw_peer_start(struct raw_peer *p, enum raw_mode mode, int port)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->lfd = -1;
    p->port = port;
    if (mode != RAW_CLIENT_NO_CLOSE_NOTIFY) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
            listen(p->lfd, 1) < 0 || getsockname(p->lfd, (struct sockaddr *)&a, &len) < 0) {
            tu_fail_at(__FILE__, __LINE__, "raw peer's socket: %s", strerror(errno));
            if (p->lfd >= 0)
                close(p->lfd);
            return -1;
        }
        p->port = ntohs(a.sin_port);
    }
    if (pthread_create(&p->thread, NULL, raw_peer_thread, p) != 0) {
        tu_fail_at(__FILE__, __LINE__, "pthread_create");
        if (p->lfd >= 0)
            close(p->lfd);
        return -1;
    }
    p->running = true;
    return 0;
}

/* Wait for the peer's thread (bounded by its sockets' timeouts) and check
 * it did all it meant to. */
static void raw_peer_join(struct raw_peer *p)
{
    if (!p->running)
        return;
    pthread_join(p->thread, NULL);
    p->running = false;
    if (p->failed[0])
        tu_fail_at(__FILE__, __LINE__, "the raw OpenSSL peer failed: %s", p->failed);
}

/* ---- connections, getters and echo ------------------------------------------ */

static int main_echo(void *arg, void **result)
{
    (void)result;
    struct conn c = {.host = arg};
    if (conn_open(&c, echo_handler) < 0)
        goto out;
    asyncio_stream_t *s = c.s;
    /* The server holds its context, each connection its own: the owner
     * may let them go at any time. */
    asyncio_tls_context_unref(c.sctx);
    c.sctx = NULL;
    asyncio_stream_t *second = NULL;
    char why[256] = "";
    asyncio_connection_options_t o = {.tls = c.cctx, .tls_error = why,
                                      .tls_error_size = sizeof why};
    CHECK_INT(asyncio_open_connection(&second, c.host, c.port, &o), 0);
    asyncio_tls_context_unref(c.cctx);
    c.cctx = NULL;
    if (second) {
        round_trip(second, "second");
        CHECK_INT(asyncio_stream_wait_closed(second), 0);
    }
    CHECK_INT(asyncio_tls_is_tls(s), 1);
    CHECK_STR(asyncio_tls_version(s), "TLSv1.3");
    const char *cipher = asyncio_tls_cipher(s);
    CHECK(cipher && strncmp(cipher, "TLS_", 4) == 0);
    CHECK_PTR(asyncio_tls_selected_alpn_protocol(s), NULL);
    CHECK_PTR(asyncio_tls_error(s), NULL);
    /* The server's subject, whole and cut short. */
    char subject[256] = "", small[5] = "xxxx";
    int len = asyncio_tls_peer_subject(s, subject, sizeof subject);
    CHECK(len > 0 && (size_t)len == strlen(subject));
    CHECK(strstr(subject, "CN=localhost") != NULL);
    CHECK_INT(asyncio_tls_peer_subject(s, small, sizeof small), len);
    CHECK_INT(strlen(small), 4);
    CHECK(strncmp(small, subject, 4) == 0);
    CHECK_INT(asyncio_tls_peer_subject(s, NULL, 0), len);
    CHECK_ERR(asyncio_tls_peer_subject(s, NULL, 8), -EINVAL);
    round_trip(s, "hello");
    round_trip(s, "again");
    round_trip(s, "");
    CHECK_SSL_CLEAN();
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    c.s = NULL;
    /* The handlers saw their ends (our close_notify). */
    YIELD_UNTIL(c.seen.ended == 2);
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, 2);
    CHECK_INT(c.seen.is_tls, 1);
    CHECK_STR(c.seen.version, "TLSv1.3");
    CHECK(strncmp(c.seen.cipher, "TLS_", 4) == 0);
    CHECK_STR(c.seen.alpn, "(null)");
    CHECK_INT(c.seen.subject_rc, -ENOENT); /* the client sent no certificate */
    CHECK_INT(c.seen.end, 0);
    CHECK_STR(c.seen.error, "(null)");
    return 0;
}

static void test_echo_round_trips_and_getters(void **state)
{
    (void)state;
    tls_run(main_echo, "127.0.0.1");
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

/* No server_hostname: the host, an IPv6 address here, is what is checked
 * (the certificate names IP ::1). */
static void test_echo_over_ipv6_checks_the_ip_address(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    tls_run(main_echo, "::1");
}

/* ---- each read call ------------------------------------------------------- */

/* Write each part on its own (a record each), letting the loop send it. */
static int send_parts(asyncio_stream_t *s, const char *const *parts)
{
    for (int i = 0; parts[i]; i++) {
        int rc = asyncio_stream_write(s, parts[i], strlen(parts[i]));
        if (rc == 0)
            rc = asyncio_stream_drain(s);
        if (rc == 0)
            rc = asyncio_sleep(0.002);
        if (rc < 0) {
            tu_fail_at(__FILE__, __LINE__, "sending \"%s\": %s", parts[i], err(rc));
            return -1;
        }
    }
    return 0;
}

/* Read a line that must be want. */
static int expect_line(asyncio_stream_t *s, const char *want)
{
    char line[64] = {0};
    ssize_t n = asyncio_stream_readline(s, line, sizeof line);
    if (n != (ssize_t)strlen(want) || strcmp(line, want) != 0) {
        tu_fail_at(__FILE__, __LINE__, "readline: %s \"%s\", expected \"%s\"",
                   n < 0 ? err(n) : "got", n < 0 ? "" : line, want);
        return -1;
    }
    return 0;
}

#define READS_BIG (1 * MiB)

/* A server reading the client's "N\n" before each step of what it sends. */
static int reads_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    static const char *const hello[] = {"hello", NULL};
    static const char *const pieces[] = {"ab", "cde", "fgh", NULL};
    static const char *const lines[] = {"line one\nline two\nGET / HTTP/1.0\r",
                                        "\nHost: x\r\n\r", "\nbo", "dy", NULL};
    static const char *const long_line[] = {"0123456789abcdefXYZ", NULL};
    static const char *const tail[] = {"tail", NULL};
    char *big = malloc(READS_BIG);
    if (!big)
        return 0;
    fill_pattern(big, READS_BIG, 0);
    if (send_parts(s, hello) == 0 && expect_line(s, "1\n") == 0 && send_parts(s, pieces) == 0 &&
        expect_line(s, "2\n") == 0 && send_parts(s, lines) == 0 &&
        expect_line(s, "3\n") == 0 && send_parts(s, long_line) == 0 &&
        expect_line(s, "4\n") == 0) {
        /* Many small records, every 64th one sent alone. */
        int rc = 0;
        for (size_t off = 0; off < READS_BIG && rc == 0; off += 1000) {
            size_t n = READS_BIG - off < 1000 ? READS_BIG - off : 1000;
            rc = asyncio_stream_write(s, big + off, n);
            if (rc == 0 && (off / 1000) % 64 == 0)
                rc = asyncio_stream_drain(s);
            if (rc == 0 && (off / 1000) % 64 == 0)
                rc = asyncio_sleep(0);
        }
        CHECK_INT(rc, 0);
        if (rc == 0 && expect_line(s, "5\n") == 0)
            send_parts(s, tail);
    }
    free(big);
    seen->ended++;
    return 0; /* the server closes: close_notify after "tail" */
}

static int main_reads(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    char *big = malloc(READS_BIG);
    if (!big || conn_open(&c, reads_handler) < 0)
        goto out;
    asyncio_stream_t *s = c.s;
    char buf[64] = {0};
    /* read: what is there, not a wait for more. */
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 5);
    CHECK_STR(buf, "hello");
    CHECK_INT(asyncio_stream_at_eof(s), 0);
    CHECK_INT(asyncio_stream_write(s, "1\n", 2), 0);
    /* readexactly over three records; the rest of the last stays. */
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 6), 6);
    CHECK_STR(buf, "abcdef");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 2);
    CHECK_STR(buf, "gh");
    CHECK_INT(asyncio_stream_write(s, "2\n", 2), 0);
    /* readline, readuntil across records, then peek/fill/consume. */
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 9);
    CHECK_STR(buf, "line one\n");
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 9);
    CHECK_STR(buf, "line two\n");
    memset(buf, 0, sizeof buf);
    const char *head = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    CHECK_INT(asyncio_stream_readuntil(s, "\r\n\r\n", 4, buf, sizeof buf), strlen(head));
    CHECK_STR(buf, head);
    const void *data = NULL;
    size_t have;
    while ((have = asyncio_stream_peek(s, &data)) < 4) {
        ssize_t got = asyncio_stream_fill(s);
        CHECK(got > 0);
        if (got <= 0)
            break;
    }
    CHECK_INT(have, 4);
    CHECK(data && memcmp(data, "body", 4) == 0);
    CHECK_INT(asyncio_stream_consume(s, 4), 0);
    CHECK_INT(asyncio_stream_peek(s, NULL), 0);
    CHECK_INT(asyncio_stream_consume(s, 1), -EINVAL);
    /* Over the limit: -ENOBUFS and the data stays; with the limit raised,
     * the rest comes from what TLS holds, not from the socket. */
    CHECK_INT(asyncio_stream_set_limit(s, 16), 0);
    CHECK_INT(asyncio_stream_write(s, "3\n", 2), 0);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readuntil(s, "Z", 1, buf, sizeof buf), -ENOBUFS);
    CHECK_INT(asyncio_stream_set_limit(s, 0), 0);
    CHECK_INT(asyncio_stream_readuntil(s, "Z", 1, buf, sizeof buf), 19);
    CHECK_STR(buf, "0123456789abcdefXYZ");
    /* readexactly across many records. */
    CHECK_INT(asyncio_stream_write(s, "4\n", 2), 0);
    CHECK_INT(asyncio_stream_readexactly(s, big, READS_BIG), READS_BIG);
    CHECK(is_pattern(big, READS_BIG, 0));
    /* The end: close_notify after "tail". */
    CHECK_INT(asyncio_stream_write(s, "5\n", 2), 0);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_readexactly(s, buf, 10), 4);
    CHECK_STR(buf, "tail");
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 0);
    CHECK_INT(asyncio_stream_fill(s), 0);
    CHECK_PTR(asyncio_tls_error(s), NULL);
out:
    conn_end(&c);
    CHECK_INT(c.seen.ended, 1);
    free(big);
    return 0;
}

static void test_each_read_call_over_tls(void **state)
{
    (void)state;
    tls_run(main_reads, NULL);
}

/* ---- writing ------------------------------------------------------------- */

static int main_writev(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    char *big = malloc(4 * 30000), *back = malloc(4 * 30000);
    if (!big || !back || conn_open(&c, echo_handler) < 0)
        goto out;
    asyncio_stream_t *s = c.s;
    struct iovec small[4] = {{"alpha ", 6}, {"beta ", 5}, {"", 0}, {"gamma\n", 6}};
    CHECK_INT(asyncio_stream_writev(s, small, 4), 0);
    char line[64] = {0};
    CHECK_INT(asyncio_stream_readline(s, line, sizeof line), 17);
    CHECK_STR(line, "alpha beta gamma\n");
    /* Large buffers: sent at once, partly, through TLS. */
    fill_pattern(big, 4 * 30000, 0);
    struct iovec large[4];
    for (int i = 0; i < 4; i++)
        large[i] = (struct iovec){big + i * 30000, 30000};
    CHECK_INT(asyncio_stream_writev(s, large, 4), 0);
    CHECK_INT(asyncio_stream_drain(s), 0);
    CHECK_INT(asyncio_stream_readexactly(s, back, 4 * 30000), 4 * 30000);
    CHECK(is_pattern(back, 4 * 30000, 0));
out:
    conn_end(&c);
    CHECK_INT(c.seen.bytes, 17 + 4 * 30000);
    free(big);
    free(back);
    return 0;
}

static void test_writev_of_several_buffers(void **state)
{
    (void)state;
    tls_run(main_writev, NULL);
}

#define BULK (8 * MiB)

struct bulk {
    asyncio_stream_t *s;
    size_t sent;
};

/* Write BULK bytes of pattern() in chunks of many sizes, draining after
 * each, then write_eof. */
static int bulk_writer(void *arg, void **result)
{
    (void)result;
    struct bulk *b = arg;
    static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 16383, 16384, 16385, 65536,
                                   300000, 1000000, 7};
    char *buf = malloc(1000000);
    CHECK(buf != NULL);
    int rc = 0;
    for (size_t i = 0; buf && b->sent < BULK && rc == 0; i++) {
        size_t n = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (n > BULK - b->sent)
            n = BULK - b->sent;
        fill_pattern(buf, n, b->sent);
        rc = asyncio_stream_write(b->s, buf, n);
        if (rc == 0)
            rc = asyncio_stream_drain(b->s);
        if (rc == 0)
            b->sent += n;
    }
    CHECK_INT(rc, 0);
    CHECK_INT(asyncio_stream_write_eof(b->s), 0);
    free(buf);
    return 0;
}

static int main_bulk(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    char *buf = malloc(256 * 1024);
    if (!buf || conn_open(&c, echo_handler) < 0)
        goto out;
    struct bulk b = {.s = c.s};
    asyncio_task_t *w = tu_spawn(bulk_writer, &b, "bulk writer");
    size_t total = 0;
    bool bad = false;
    ssize_t n;
    while ((n = asyncio_stream_read(c.s, buf, 256 * 1024)) > 0) {
        if (!is_pattern(buf, (size_t)n, total))
            bad = true;
        total += (size_t)n;
    }
    CHECK_INT(n, 0); /* the server's close_notify, after our write_eof */
    CHECK_INT(total, BULK);
    CHECK(!bad);
    CHECK_INT(asyncio_await(w, NULL), 0);
    asyncio_task_release(w);
    CHECK_INT(b.sent, BULK);
out:
    conn_end(&c);
    CHECK_INT(c.seen.bytes, BULK);
    CHECK_INT(c.seen.end, 0);
    free(buf);
    return 0;
}

static void test_large_transfer_both_ways(void **state)
{
    (void)state;
    tls_run(main_bulk, NULL);
}

/* ---- ends: write_eof, close, abort ------------------------------------------ */

/* Read to the end, then answer with how much came. */
static int count_then_answer_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    char buf[256];
    ssize_t n;
    while ((n = asyncio_stream_read(s, buf, sizeof buf)) > 0)
        seen->bytes += (size_t)n;
    CHECK_INT(asyncio_stream_at_eof(s), 1);
    finish(seen, s, n);
    char answer[64];
    int len = snprintf(answer, sizeof answer, "got %zu bytes\n", seen->bytes);
    CHECK_INT(asyncio_stream_write(s, answer, (size_t)len), 0);
    return 0;
}

static int main_client_write_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    if (conn_open(&c, count_then_answer_handler) < 0)
        goto out;
    CHECK_INT(asyncio_stream_write(c.s, "request", 7), 0);
    CHECK_INT(asyncio_stream_write_eof(c.s), 0);
    CHECK_INT(asyncio_stream_write(c.s, "x", 1), -EPIPE);
    /* TLS 1.3 half-close: the server still answers after our end. */
    char line[64] = {0};
    CHECK_INT(asyncio_stream_readline(c.s, line, sizeof line), 12);
    CHECK_STR(line, "got 7 bytes\n");
    CHECK_INT(asyncio_stream_read(c.s, line, sizeof line), 0);
    CHECK_INT(asyncio_stream_at_eof(c.s), 1);
out:
    conn_end(&c);
    CHECK_INT(c.seen.end, 0);
    CHECK_STR(c.seen.error, "(null)");
    return 0;
}

static void test_write_eof_sends_close_notify_and_the_peer_can_answer(void **state)
{
    (void)state;
    tls_run(main_client_write_eof, NULL);
}

/* The server ends its side first, then reads the client's answer. */
static int eof_first_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    CHECK_INT(asyncio_stream_write(s, "greeting\n", 9), 0);
    CHECK_INT(asyncio_stream_write_eof(s), 0);
    char line[64] = {0};
    ssize_t n = asyncio_stream_readline(s, line, sizeof line);
    CHECK_INT(n, 7);
    CHECK_STR(line, "thanks\n");
    n = asyncio_stream_read(s, line, sizeof line);
    finish(seen, s, n);
    return 0;
}

static int main_server_write_eof(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    if (conn_open(&c, eof_first_handler) < 0)
        goto out;
    char line[64] = {0};
    CHECK_INT(asyncio_stream_readline(c.s, line, sizeof line), 9);
    CHECK_STR(line, "greeting\n");
    CHECK_INT(asyncio_stream_read(c.s, line, sizeof line), 0);
    CHECK_INT(asyncio_stream_at_eof(c.s), 1);
    CHECK_INT(asyncio_stream_write(c.s, "thanks\n", 7), 0);
    CHECK_INT(asyncio_stream_drain(c.s), 0);
out:
    conn_end(&c);
    CHECK_INT(c.seen.end, 0);
    return 0;
}

static void test_server_write_eof_and_the_client_still_writes(void **state)
{
    (void)state;
    tls_run(main_server_write_eof, NULL);
}

#define QUEUED (2 * MiB)

/* A small socket send buffer: a large write leaves most of it queued in
 * the stream (loopback's buffers take megabytes). */
static void small_send_buffer(asyncio_stream_t *s)
{
    int size = 32 * 1024;
    CHECK_INT(setsockopt(asyncio_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
}

/* Queue QUEUED bytes (more than the socket takes) and close at once. */
static int write_and_close_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    char *buf = malloc(QUEUED);
    CHECK(buf != NULL);
    small_send_buffer(s);
    if (buf) {
        fill_pattern(buf, QUEUED, 0);
        CHECK_INT(asyncio_stream_write(s, buf, QUEUED), 0);
        CHECK(asyncio_stream_write_buffer_size(s) > 0);
    }
    free(buf);
    CHECK_INT(asyncio_stream_close(s), 0);
    return 0;
}

static int main_close(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char *buf = malloc(QUEUED);
    CHECK(buf != NULL);
    if (!buf)
        return 0;
    /* The server's close: everything, then close_notify. */
    struct conn c = {0};
    if (conn_open(&c, write_and_close_handler) == 0) {
        size_t total = 0;
        ssize_t n;
        bool bad = false;
        while ((n = asyncio_stream_read(c.s, buf, 65536)) > 0) {
            if (!is_pattern(buf, (size_t)n, total))
                bad = true;
            total += (size_t)n;
        }
        CHECK_INT(n, 0);
        CHECK_INT(total, QUEUED);
        CHECK(!bad);
        CHECK_PTR(asyncio_tls_error(c.s), NULL);
    }
    conn_end(&c);
    /* The client's close, to a server that reads to the end: with most
     * of the bytes queued in the stream, then with all of them taken by
     * the socket (loopback's buffers hold megabytes), still in the
     * kernel's send queue when the stream closes its fd. */
    for (int small = 1; small >= 0; small--) {
        struct conn d = {0};
        if (conn_open(&d, sink_handler) == 0) {
            if (small)
                small_send_buffer(d.s);
            fill_pattern(buf, QUEUED, 0);
            CHECK_INT(asyncio_stream_write(d.s, buf, QUEUED), 0);
            if (small) {
                CHECK(asyncio_stream_write_buffer_size(d.s) > 0);
                CHECK_INT(asyncio_stream_close(d.s), 0);
            } else {
                CHECK_INT(asyncio_stream_wait_closed(d.s), 0);
            }
            d.s = NULL;
            YIELD_UNTIL(d.seen.ended == 1);
        }
        conn_end(&d);
        LOG("%s:%s", small ? "queued" : "sent", d.seen.end == 0 && d.seen.bytes == QUEUED
                                                    ? "all"
                                                    : err(d.seen.end));
        CHECK_INT(d.seen.bytes, QUEUED);
        CHECK(!d.seen.bad);
        CHECK_INT(d.seen.end, 0);
        CHECK_STR(d.seen.error, "(null)");
    }
    free(buf);
    return 0;
}

static void test_close_sends_close_notify_after_what_was_queued(void **state)
{
    (void)state;
    tls_run(main_close, NULL);
    assert_log("queued:all sent:all");
}

/* Send "x", wait for the client's "abort\n", abort. */
static int abort_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    CHECK_INT(asyncio_stream_write(s, "x", 1), 0);
    if (expect_line(s, "abort\n") == 0)
        CHECK_INT(asyncio_stream_abort(s), 0);
    return 0;
}

static int main_abort(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    if (conn_open(&c, abort_handler) < 0)
        goto out;
    char buf[16];
    CHECK_INT(asyncio_stream_read(c.s, buf, sizeof buf), 1);
    CHECK_INT(asyncio_stream_write(c.s, "abort\n", 6), 0);
    /* abort sends no close_notify: a reset, never a clean end. */
    ssize_t n = asyncio_stream_read(c.s, buf, sizeof buf);
    LOG("read:%s", err(n));
    CHECK(n < 0);
    CHECK_SSL_CLEAN();
    asyncio_stream_abort(c.s);
    c.s = NULL;
out:
    conn_end(&c);
    return 0;
}

static void test_abort_resets_the_peer_s_read(void **state)
{
    (void)state;
    tls_run(main_abort, NULL);
    assert_log("read:ECONNRESET");
}

/* ---- peers that break the protocol ----------------------------------------- */

static int main_no_close_notify(void *arg, void **result)
{
    (void)result;
    enum raw_mode mode = (enum raw_mode)(intptr_t)arg;
    struct raw_peer p;
    asyncio_tls_context_t *cctx = client_ctx(&certs.ca);
    if (!cctx || raw_peer_start(&p, mode, 0) < 0) {
        asyncio_tls_context_unref(cctx);
        return 0;
    }
    asyncio_stream_t *s = NULL;
    char why[256] = "";
    asyncio_connection_options_t o = {.tls = cctx, .tls_error = why,
                                      .tls_error_size = sizeof why};
    CHECK_INT(asyncio_open_connection(&s, "127.0.0.1", p.port, &o), 0);
    if (s) {
        char buf[64] = {0};
        if (mode == RAW_SERVER_NO_CLOSE_NOTIFY) {
            CHECK_INT(asyncio_stream_read(s, buf, sizeof buf), 2);
            CHECK_STR(buf, "hi");
        }
        /* The connection ends without close_notify: data may have been
         * cut, which only a reset-like error says. */
        ssize_t n = asyncio_stream_read(s, buf, sizeof buf);
        LOG("read:%s", err(n));
        CHECK_SSL_CLEAN();
        if (mode == RAW_SERVER_NO_CLOSE_NOTIFY)
            CHECK_INT(n, -ECONNRESET);
        else
            CHECK(n == -ECONNRESET || n == -EPROTO);
        const char *e = asyncio_tls_error(s);
        CHECK(e != NULL && *e);
        LOG("error:%s", e ? "text" : "none");
        CHECK_INT(asyncio_stream_at_eof(s), 0);
        /* And so does the next read. */
        CHECK(asyncio_stream_read(s, buf, sizeof buf) < 0);
        CHECK_SSL_CLEAN();
        (void)asyncio_stream_wait_closed(s);
    }
    raw_peer_join(&p);
    asyncio_tls_context_unref(cctx);
    return 0;
}

static void test_peer_closing_without_close_notify_gives_econnreset(void **state)
{
    (void)state;
    tls_run(main_no_close_notify, (void *)(intptr_t)RAW_SERVER_NO_CLOSE_NOTIFY);
    assert_log("read:ECONNRESET error:text");
}

static void test_truncated_record_then_close_gives_an_error(void **state)
{
    (void)state;
    tls_run(main_no_close_notify, (void *)(intptr_t)RAW_SERVER_TRUNCATED);
}

/* The handler reads "hi\n", answers "ok\n", then reads the end. */
static int hi_ok_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    if (expect_line(s, "hi\n") == 0) {
        CHECK_INT(asyncio_stream_write(s, "ok\n", 3), 0);
        CHECK_INT(asyncio_stream_drain(s), 0);
    }
    char buf[16];
    finish(seen, s, asyncio_stream_read(s, buf, sizeof buf));
    return 0;
}

static int main_client_no_close_notify(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    struct raw_peer p;
    if (conn_start(&c, hi_ok_handler) < 0 ||
        raw_peer_start(&p, RAW_CLIENT_NO_CLOSE_NOTIFY, c.port) < 0)
        goto out;
    YIELD_UNTIL(c.seen.ended == 1);
    raw_peer_join(&p);
    CHECK_STR(p.got, "ok\n");
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, 1);
    CHECK_INT(c.seen.end, -ECONNRESET);
    CHECK(strcmp(c.seen.error, "(null)") != 0 && c.seen.error[0]);
    return 0;
}

static void test_server_reading_a_client_gone_without_close_notify(void **state)
{
    (void)state;
    tls_run(main_client_no_close_notify, NULL);
}

/* A server sends TLS 1.3 session tickets as asked: two unless set
 * (OpenSSL's and Python's default), none with set_num_tickets(0), which a
 * client context refuses. The tickets come before the server's "ok\n". */
static int main_num_tickets(void *arg, void **result)
{
    (void)result;
    size_t want = (size_t)(uintptr_t)arg;
    struct conn c = {0};
    struct raw_peer p;
    c.sctx = server_ctx(&certs.server);
    if (want != 2)
        CHECK_INT(asyncio_tls_context_set_num_tickets(c.sctx, want), 0);
    if (conn_start(&c, hi_ok_handler) < 0 ||
        raw_peer_start(&p, RAW_CLIENT_NO_CLOSE_NOTIFY, c.port) < 0)
        goto out;
    YIELD_UNTIL(c.seen.ended == 1);
    raw_peer_join(&p);
    CHECK_STR(p.got, "ok\n");
    CHECK_INT(p.tickets, (int)want);
    CHECK_ERR(asyncio_tls_context_set_num_tickets(c.cctx, 0), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_num_tickets(NULL, 0), -EINVAL);
out:
    conn_end(&c);
    return 0;
}

static void test_num_tickets_the_server_sends(void **state)
{
    (void)state;
    tls_run(main_num_tickets, (void *)(uintptr_t)2);
    tls_run(main_num_tickets, (void *)(uintptr_t)0);
    tls_run(main_num_tickets, (void *)(uintptr_t)1);
}

/* A raw server: accept, send garbage, read until the client goes. */
struct garbage {
    int lfd;
    size_t got;
    long long end;
};

static int garbage_server(void *arg, void **result)
{
    (void)result;
    struct garbage *g = arg;
    int fd = asyncio_sock_accept(g->lfd, NULL, NULL);
    CHECK(fd >= 0);
    if (fd < 0)
        return 0;
    const char *junk = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    CHECK_INT(asyncio_sock_sendall(fd, junk, strlen(junk)), strlen(junk));
    char buf[4096];
    ssize_t n;
    while ((n = asyncio_sock_recv(fd, buf, sizeof buf)) > 0)
        g->got += (size_t)n;
    g->end = n;
    CHECK_INT(asyncio_close(fd), 0);
    return 0;
}

static int main_garbage_to_client(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    struct garbage g = {.lfd = silent_listener(&port)};
    asyncio_tls_context_t *cctx = client_ctx(&certs.ca);
    asyncio_task_t *t = tu_spawn(garbage_server, &g, "garbage server");
    int before = count_fds();
    asyncio_stream_t *s = NULL;
    char why[256] = "";
    asyncio_connection_options_t o = {.tls = cctx, .tls_error = why,
                                      .tls_error_size = sizeof why};
    CHECK_ERR(asyncio_open_connection(&s, "127.0.0.1", port, &o), -EPROTO);
    CHECK_PTR(s, NULL);
    CHECK(why[0] != '\0');
    YIELD_UNTIL(count_fds() == before);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK(g.got > 0); /* the ClientHello */
    CHECK(g.end == 0 || g.end == -ECONNRESET);
    CHECK_INT(asyncio_close(g.lfd), 0);
    asyncio_tls_context_unref(cctx);
    return 0;
}

static void test_garbage_from_the_server_fails_open_connection_with_eproto(void **state)
{
    (void)state;
    tls_run(main_garbage_to_client, NULL);
}

static int main_garbage_to_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    if (conn_start(&c, echo_handler) < 0)
        goto out;
    int fd = raw_connect(c.port);
    const char *junk = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    CHECK_INT(asyncio_sock_sendall(fd, junk, strlen(junk)), strlen(junk));
    /* Perhaps an alert, then the end. */
    char buf[4096];
    ssize_t n;
    size_t got = 0;
    while ((n = asyncio_sock_recv(fd, buf, sizeof buf)) > 0)
        got += (size_t)n;
    LOG("end:%s", n == 0 ? "eof" : n == -ECONNRESET ? "reset" : err(n));
    CHECK(n == 0 || n == -ECONNRESET);
    CHECK(got < 100);
    CHECK_INT(asyncio_close(fd), 0);
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, 0);
    return 0;
}

static void test_garbage_to_the_server_closes_it_without_a_handler(void **state)
{
    (void)state;
    tls_run(main_garbage_to_server, NULL);
}

/* ---- certificates ----------------------------------------------------------- */

struct cert_case {
    const char *name;
    const struct tls_pem *server; /* what the server presents */
    const char *server_hostname;  /* the client's option */
    int verify;                   /* -1: as made; else set_verify() */
    int check_hostname;           /* -1: as made; else set_check_hostname() */
    const struct tls_pem *ca;     /* what the client trusts; NULL: system */
    int expected;                 /* 0 or -ASYNCIO_ECERT */
    const char *word1, *word2;    /* what the reason mentions */
};

static int main_cert(void *arg, void **result)
{
    (void)result;
    const struct cert_case *k = arg;
    struct conn c = {.server_hostname = k->server_hostname};
    c.sctx = server_ctx(k->server);
    c.cctx = client_ctx(k->ca);
    if (c.cctx && k->verify >= 0)
        CHECK_INT(asyncio_tls_context_set_verify(c.cctx, k->verify), 0);
    if (c.cctx && k->check_hostname >= 0)
        CHECK_INT(asyncio_tls_context_set_check_hostname(c.cctx, k->check_hostname), 0);
    if (conn_start(&c, echo_handler) < 0)
        goto out;
    int before = count_fds();
    int rc = conn_dial(&c);
    CHECK_SSL_CLEAN();
    if (rc != k->expected)
        tu_fail_at(__FILE__, __LINE__, "%s: open_connection gave %s (%s), expected %s",
                   k->name, err(rc), c.why, err(k->expected));
    if (rc == 0 && c.s) {
        round_trip(c.s, k->name);
        char subject[256] = "";
        CHECK(asyncio_tls_peer_subject(c.s, subject, sizeof subject) > 0);
        CHECK(strstr(subject, "CN=") != NULL);
    } else {
        CHECK_MENTIONS(c.why, k->word1, k->word2);
        /* The client's socket is closed, at once or soon. */
        YIELD_UNTIL(count_fds() <= before);
    }
out:
    conn_end(&c);
    /* A server whose client gave up calls no handler. */
    CHECK_INT(c.seen.calls, k->expected == 0 ? 1 : 0);
    return 0;
}

static const struct cert_case cert_expired = {"expired", &certs.expired, NULL, -1, -1,
                                              &certs.ca, -ASYNCIO_ECERT, "expired", NULL};
static const struct cert_case cert_self = {"self-signed", &certs.self, NULL, -1, -1,
                                           &certs.ca, -ASYNCIO_ECERT, "self", NULL};
static const struct cert_case cert_other = {"other host", &certs.other, "localhost", -1, -1,
                                            &certs.ca, -ASYNCIO_ECERT, "host", NULL};
static const struct cert_case cert_untrusted = {"untrusted CA", &certs.rogue, NULL, -1, -1,
                                                &certs.ca, -ASYNCIO_ECERT, "issuer", "trust"};
/* The system's store is the rogue CA here (main() sets SSL_CERT_FILE). */
static const struct cert_case cert_system = {"system store", &certs.server, NULL, -1, -1,
                                             NULL, -ASYNCIO_ECERT, "issuer", "trust"};
static const struct cert_case cert_system_ok = {"system store trusts", &certs.rogue, NULL,
                                                -1, -1, NULL, 0, NULL, NULL};

static void test_expired_certificate_fails_with_ecert(void **state)
{
    (void)state;
    tls_run(main_cert, (void *)&cert_expired);
}

static void test_self_signed_certificate_fails_with_ecert(void **state)
{
    (void)state;
    tls_run(main_cert, (void *)&cert_self);
}

static void test_certificate_for_another_host_fails_with_ecert(void **state)
{
    (void)state;
    tls_run(main_cert, (void *)&cert_other);
}

static void test_certificate_from_an_untrusted_ca_fails_with_ecert(void **state)
{
    (void)state;
    tls_run(main_cert, (void *)&cert_untrusted);
}

static void test_client_context_verifies_with_the_system_store(void **state)
{
    (void)state;
    tls_run(main_cert, (void *)&cert_system_ok);
    tls_run(main_cert, (void *)&cert_system);
}

/* The machine's own store (main() put another in its place for the other
 * tests): it does not trust the test CA. */
static void test_real_system_store_does_not_trust_the_test_ca(void **state)
{
    (void)state;
    char *file = strdup(getenv("SSL_CERT_FILE")), *dir = strdup(getenv("SSL_CERT_DIR"));
    assert_non_null(file);
    assert_non_null(dir);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    tls_run(main_cert, (void *)&cert_system);
    setenv("SSL_CERT_FILE", file, 1);
    setenv("SSL_CERT_DIR", dir, 1);
    free(file);
    free(dir);
}

static void test_names_that_verify(void **state)
{
    (void)state;
    /* The host connected to is checked when no name is given (IP
     * 127.0.0.1, in the certificate), a given name instead of it. */
    static const struct cert_case by_ip = {"by ip", &certs.server, NULL, -1, -1,
                                           &certs.ca, 0, NULL, NULL};
    static const struct cert_case by_name = {"by name", &certs.server, "localhost", -1, -1,
                                             &certs.ca, 0, NULL, NULL};
    static const struct cert_case other = {"other by its name", &certs.other, "other.example",
                                           -1, -1, &certs.ca, 0, NULL, NULL};
    static const struct cert_case rogue = {"rogue trusted", &certs.rogue, NULL, -1, -1,
                                           &certs.rogue_ca, 0, NULL, NULL};
    tls_run(main_cert, (void *)&by_ip);
    tls_run(main_cert, (void *)&by_name);
    tls_run(main_cert, (void *)&other);
    tls_run(main_cert, (void *)&rogue);
}

static void test_empty_server_hostname_skips_the_host_check(void **state)
{
    (void)state;
    static const struct cert_case k = {"no name", &certs.other, "", -1, -1,
                                       &certs.ca, 0, NULL, NULL};
    tls_run(main_cert, (void *)&k);
}

static void test_verify_none_accepts_a_self_signed_certificate(void **state)
{
    (void)state;
    static const struct cert_case k = {"verify none", &certs.self, "localhost",
                                       ASYNCIO_TLS_VERIFY_NONE, -1, &certs.ca, 0, NULL, NULL};
    static const struct cert_case untrusted = {"verify none, untrusted", &certs.rogue, NULL,
                                               ASYNCIO_TLS_VERIFY_NONE, -1, NULL, 0, NULL,
                                               NULL};
    tls_run(main_cert, (void *)&k);
    tls_run(main_cert, (void *)&untrusted);
}

static void test_check_hostname_off_accepts_another_host(void **state)
{
    (void)state;
    static const struct cert_case k = {"check_hostname off", &certs.other, "localhost", -1, 0,
                                       &certs.ca, 0, NULL, NULL};
    /* The chain is still verified. */
    static const struct cert_case expired = {"check_hostname off, expired", &certs.expired,
                                             "localhost", -1, 0, &certs.ca, -ASYNCIO_ECERT,
                                             "expired", NULL};
    tls_run(main_cert, (void *)&k);
    tls_run(main_cert, (void *)&expired);
}

/* A reason cut to the buffer given, NUL-terminated; none asked for. */
static int main_small_error_buffer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    c.sctx = server_ctx(&certs.expired);
    if (conn_start(&c, echo_handler) < 0)
        goto out;
    char small[8];
    memset(small, 'x', sizeof small);
    asyncio_connection_options_t o = {.tls = c.cctx, .tls_error = small,
                                      .tls_error_size = sizeof small};
    asyncio_stream_t *s = NULL;
    CHECK_ERR(asyncio_open_connection(&s, "127.0.0.1", c.port, &o), -ASYNCIO_ECERT);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
    CHECK(strlen(small) > 0);
    asyncio_connection_options_t none = {.tls = c.cctx};
    CHECK_ERR(asyncio_open_connection(&s, "127.0.0.1", c.port, &none), -ASYNCIO_ECERT);
out:
    conn_end(&c);
    return 0;
}

static void test_error_text_fits_a_small_buffer_or_none(void **state)
{
    (void)state;
    tls_run(main_small_error_buffer, NULL);
}

/* ---- ALPN, versions, ciphers --------------------------------------------------- */

struct alpn_case {
    const char *server[2];
    size_t nserver;
    const char *client[2];
    size_t nclient;
    const char *want; /* NULL: none agreed */
};

static int main_alpn(void *arg, void **result)
{
    (void)result;
    const struct alpn_case *k = arg;
    struct conn c = {0};
    c.sctx = server_ctx(&certs.server);
    c.cctx = client_ctx(&certs.ca);
    if (!c.sctx || !c.cctx)
        goto out;
    CHECK_INT(asyncio_tls_context_set_alpn_protocols(c.sctx, k->server, k->nserver), 0);
    CHECK_INT(asyncio_tls_context_set_alpn_protocols(c.cctx, k->client, k->nclient), 0);
    if (conn_open(&c, echo_handler) < 0)
        goto out;
    CHECK_STR(or_null(asyncio_tls_selected_alpn_protocol(c.s)), or_null(k->want));
    round_trip(c.s, "alpn");
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, 1);
    CHECK_STR(c.seen.alpn, or_null(k->want));
    return 0;
}

static void test_alpn_agrees_on_the_server_s_first_shared_protocol(void **state)
{
    (void)state;
    static const struct alpn_case http11 = {{"h2", "http/1.1"}, 2, {"http/1.1"}, 1, "http/1.1"};
    static const struct alpn_case h2 = {{"h2", "http/1.1"}, 2, {"http/1.1", "h2"}, 2, "h2"};
    tls_run(main_alpn, (void *)&http11);
    tls_run(main_alpn, (void *)&h2);
}

static void test_alpn_without_overlap_connects_without_a_protocol(void **state)
{
    (void)state;
    static const struct alpn_case disjoint = {{"h2", "http/1.1"}, 2, {"spdy/1"}, 1, NULL};
    static const struct alpn_case server_none = {{NULL}, 0, {"h2"}, 1, NULL};
    static const struct alpn_case client_none = {{"h2"}, 1, {NULL}, 0, NULL};
    tls_run(main_alpn, (void *)&disjoint);
    tls_run(main_alpn, (void *)&server_none);
    tls_run(main_alpn, (void *)&client_none);
}

struct version_case {
    int server_min, server_max, client_min, client_max;
    const char *client_tls12, *client_tls13; /* set_ciphers() */
    int expected;
    const char *version, *cipher; /* what both see */
};

static int main_version(void *arg, void **result)
{
    (void)result;
    const struct version_case *k = arg;
    struct conn c = {0};
    c.sctx = server_ctx(&certs.server);
    c.cctx = client_ctx(&certs.ca);
    if (!c.sctx || !c.cctx)
        goto out;
    if (k->server_min)
        CHECK_INT(asyncio_tls_context_set_versions(c.sctx, k->server_min, k->server_max), 0);
    if (k->client_min)
        CHECK_INT(asyncio_tls_context_set_versions(c.cctx, k->client_min, k->client_max), 0);
    if (k->client_tls12 || k->client_tls13)
        CHECK_INT(asyncio_tls_context_set_ciphers(c.cctx, k->client_tls12, k->client_tls13), 0);
    if (conn_start(&c, echo_handler) < 0)
        goto out;
    int rc = conn_dial(&c);
    CHECK_INT(rc, k->expected);
    if (rc == 0 && c.s) {
        CHECK_STR(asyncio_tls_version(c.s), k->version);
        if (k->cipher)
            CHECK_STR(asyncio_tls_cipher(c.s), k->cipher);
        else
            CHECK(asyncio_tls_cipher(c.s) != NULL);
        round_trip(c.s, "version");
    } else if (rc < 0) {
        CHECK(c.why[0] != '\0');
    }
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, k->expected == 0 ? 1 : 0);
    if (k->expected == 0) {
        CHECK_STR(c.seen.version, k->version);
        if (k->cipher)
            CHECK_STR(c.seen.cipher, k->cipher);
    }
    return 0;
}

static void test_client_at_most_tls12_speaks_tls12(void **state)
{
    (void)state;
    static const struct version_case k = {0, 0, ASYNCIO_TLS_VERSION_1_2,
                                          ASYNCIO_TLS_VERSION_1_2, NULL, NULL, 0, "TLSv1.2",
                                          NULL};
    static const struct version_case cipher = {
        0, 0, ASYNCIO_TLS_VERSION_1_2, ASYNCIO_TLS_VERSION_1_2,
        "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, 0, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"};
    tls_run(main_version, (void *)&k);
    tls_run(main_version, (void *)&cipher);
}

static void test_tls13_cipher_suite_chosen_by_the_client_s_list(void **state)
{
    (void)state;
    static const struct version_case k = {0, 0, 0, 0, NULL, "TLS_CHACHA20_POLY1305_SHA256",
                                          0, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"};
    tls_run(main_version, (void *)&k);
}

static void test_no_shared_version_fails_with_eproto(void **state)
{
    (void)state;
    static const struct version_case k = {ASYNCIO_TLS_VERSION_1_3, 0, ASYNCIO_TLS_VERSION_1_2,
                                          ASYNCIO_TLS_VERSION_1_2, NULL, NULL, -EPROTO, NULL,
                                          NULL};
    static const struct version_case rev = {ASYNCIO_TLS_VERSION_1_2, ASYNCIO_TLS_VERSION_1_2,
                                            ASYNCIO_TLS_VERSION_1_3, 0, NULL, NULL, -EPROTO,
                                            NULL, NULL};
    tls_run(main_version, (void *)&k);
    tls_run(main_version, (void *)&rev);
}

/* ---- client certificates ------------------------------------------------------- */

enum client_cert_case { CC_NONE, CC_NONE_TLS12, CC_GOOD, CC_ROGUE, CC_OPTIONAL_NONE };

static int main_client_cert(void *arg, void **result)
{
    (void)result;
    enum client_cert_case k = (enum client_cert_case)(intptr_t)arg;
    bool ok = k == CC_GOOD || k == CC_OPTIONAL_NONE;
    struct conn c = {0};
    c.sctx = server_ctx(&certs.server);
    c.cctx = client_ctx(&certs.ca);
    if (!c.sctx || !c.cctx)
        goto out;
    CHECK_INT(asyncio_tls_context_set_verify(c.sctx, k == CC_OPTIONAL_NONE
                                                         ? ASYNCIO_TLS_VERIFY_OPTIONAL
                                                         : ASYNCIO_TLS_VERIFY_REQUIRED),
              0);
    CHECK_INT(asyncio_tls_context_load_verify_locations(c.sctx, certs.ca.cert, NULL), 0);
    if (k == CC_GOOD)
        CHECK_INT(asyncio_tls_context_load_cert_chain(c.cctx, certs.client.cert,
                                                      certs.client.key),
                  0);
    if (k == CC_ROGUE)
        CHECK_INT(asyncio_tls_context_load_cert_chain(c.cctx, certs.rogue_client.cert,
                                                      certs.rogue_client.key),
                  0);
    if (k == CC_NONE_TLS12)
        CHECK_INT(asyncio_tls_context_set_versions(c.cctx, ASYNCIO_TLS_VERSION_1_2,
                                                   ASYNCIO_TLS_VERSION_1_2),
                  0);
    if (conn_start(&c, echo_handler) < 0)
        goto out;
    int rc = conn_dial(&c);
    if (ok) {
        CHECK_INT(rc, 0);
        if (c.s)
            round_trip(c.s, "with a certificate");
    } else if (rc == 0 && c.s) {
        /* TLS 1.3: the client's handshake is over before the server
         * looked at its certificate; the refusal (an alert) comes next. */
        char buf[16];
        ssize_t n = asyncio_stream_read(c.s, buf, sizeof buf);
        LOG("read:%s", err(n));
        CHECK_INT(n, -EPROTO);
        CHECK_SSL_CLEAN();
        const char *e = asyncio_tls_error(c.s);
        CHECK(e && *e);
        asyncio_stream_abort(c.s);
        c.s = NULL;
    } else {
        LOG("open:%s", err(rc));
        CHECK_INT(rc, -EPROTO);
        CHECK(c.why[0] != '\0');
    }
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, ok ? 1 : 0);
    if (k == CC_GOOD) {
        CHECK(c.seen.subject_rc > 0);
        CHECK(strstr(c.seen.subject, "CN=asyncio test client") != NULL);
    }
    if (k == CC_OPTIONAL_NONE)
        CHECK_INT(c.seen.subject_rc, -ENOENT);
    return 0;
}

static void test_required_client_certificate_missing_fails(void **state)
{
    (void)state;
    /* TLS 1.3: the refusal comes after the client's handshake, at its
     * first read, or during it if the alert is there already. */
    tls_run(main_client_cert, (void *)(intptr_t)CC_NONE);
    if (strcmp(tu_log_buf, "read:EPROTO") != 0)
        assert_log("open:EPROTO");
    /* TLS 1.2: during the handshake. */
    tls_run(main_client_cert, (void *)(intptr_t)CC_NONE_TLS12);
    assert_log("open:EPROTO");
}

static void test_client_certificate_from_an_untrusted_ca_fails(void **state)
{
    (void)state;
    tls_run(main_client_cert, (void *)(intptr_t)CC_ROGUE);
}

static void test_client_certificate_is_verified_and_its_subject_read(void **state)
{
    (void)state;
    tls_run(main_client_cert, (void *)(intptr_t)CC_GOOD);
}

static void test_optional_client_certificate_may_be_missing(void **state)
{
    (void)state;
    tls_run(main_client_cert, (void *)(intptr_t)CC_OPTIONAL_NONE);
}

/* ---- start_tls ------------------------------------------------------------- */

/* Plain: read "STARTTLS\n", answer "OK\n" (unless quiet), start TLS with
 * seen->tls, then echo. */
static int starttls_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    CHECK_INT(asyncio_tls_is_tls(s), 0);
    if (seen->delay > 0)
        CHECK_INT(asyncio_sleep(seen->delay), 0);
    if (expect_line(s, "STARTTLS\n") < 0)
        return 0;
    seen->peeked = asyncio_stream_peek(s, NULL);
    if (!seen->quiet)
        CHECK_INT(asyncio_stream_write(s, "OK\n", 3), 0);
    seen->start_rc = asyncio_start_tls(s, seen->tls, NULL);
    CHECK_SSL_CLEAN();
    if (seen->start_rc < 0)
        return 0; /* s is closed and freed */
    echo_loop(seen, s);
    return 0;
}

/* A plain server (no TLS) with handler h. */
static asyncio_server_t *plain_server(asyncio_stream_handler h, void *arg, int *port)
{
    asyncio_server_t *srv = NULL;
    int rc = asyncio_start_server(&srv, h, arg, "127.0.0.1", 0, NULL);
    if (rc < 0) {
        tu_fail_at(__FILE__, __LINE__, "asyncio_start_server: %s", err(rc));
        return NULL;
    }
    *port = asyncio_server_port(srv);
    return srv;
}

static void shut(asyncio_server_t *srv)
{
    if (!srv)
        return;
    CHECK_INT(asyncio_server_close(srv), 0);
    CHECK_INT(asyncio_server_wait_closed(srv), 0);
}

static int main_start_tls(void *arg, void **result)
{
    (void)result;
    bool at_once = arg != NULL; /* the ClientHello right behind the line */
    struct seen seen = {.tls = server_ctx(&certs.server), .quiet = at_once,
                        .delay = at_once ? 0.05 : 0};
    asyncio_tls_context_t *cctx = client_ctx(&certs.ca);
    /* Without a name (opts NULL) only a context that checks none may
     * start; the chain is still verified. */
    if (at_once && cctx)
        CHECK_INT(asyncio_tls_context_set_check_hostname(cctx, 0), 0);
    int port = 0;
    asyncio_server_t *srv = seen.tls && cctx ? plain_server(starttls_handler, &seen, &port)
                                             : NULL;
    asyncio_stream_t *s = NULL;
    if (!srv)
        goto out;
    CHECK_INT(asyncio_open_connection(&s, "127.0.0.1", port, NULL), 0);
    if (!s)
        goto out;
    CHECK_INT(asyncio_tls_is_tls(s), 0);
    CHECK_PTR(asyncio_tls_version(s), NULL);
    CHECK_INT(asyncio_stream_write(s, "STARTTLS\n", 9), 0);
    char why[256] = "";
    asyncio_tls_options_t opts = {.server_hostname = "localhost", .error = why,
                                  .error_size = sizeof why};
    if (!at_once) {
        char line[16] = {0};
        CHECK_INT(asyncio_stream_readline(s, line, sizeof line), 3);
        CHECK_STR(line, "OK\n");
    }
    int rc = asyncio_start_tls(s, cctx, at_once ? NULL : &opts);
    CHECK_SSL_CLEAN();
    CHECK_INT(rc, 0);
    if (rc < 0) {
        tu_fail_at(__FILE__, __LINE__, "start_tls: %s", why);
        s = NULL;
        goto out;
    }
    CHECK_INT(asyncio_tls_is_tls(s), 1);
    CHECK_STR(asyncio_tls_version(s), "TLSv1.3");
    round_trip(s, "over TLS now");
    /* Once is enough: s is left as it was. */
    CHECK_ERR(asyncio_start_tls(s, cctx, &localhost), -EEXIST);
    round_trip(s, "still");
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
    s = NULL;
out:
    shut(srv);
    CHECK_INT(seen.calls, 1);
    CHECK_INT(seen.start_rc, 0);
    CHECK_INT(seen.is_tls, 1);
    CHECK_INT(seen.end, 0);
    if (at_once)
        CHECK(seen.peeked > 0); /* the ClientHello, or its start */
    else
        CHECK_INT(seen.peeked, 0);
    asyncio_tls_context_unref(seen.tls);
    asyncio_tls_context_unref(cctx);
    return 0;
}

static void test_start_tls_after_a_plaintext_exchange(void **state)
{
    (void)state;
    tls_run(main_start_tls, NULL);
}

static void test_start_tls_with_the_client_hello_already_buffered(void **state)
{
    (void)state;
    tls_run(main_start_tls, (void *)1);
}

/* The client starts TLS against a plain echo server: its own ClientHello
 * comes back, which is no answer. start_tls fails and frees s. */
static int main_start_tls_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {0};
    asyncio_tls_context_t *cctx = client_ctx(&certs.ca);
    int port = 0;
    asyncio_server_t *srv = cctx ? plain_server(echo_handler, &seen, &port) : NULL;
    if (!srv)
        goto out;
    int before = count_fds();
    asyncio_stream_t *s = NULL;
    CHECK_INT(asyncio_open_connection(&s, "127.0.0.1", port, NULL), 0);
    if (!s)
        goto out;
    char why[256] = "";
    asyncio_tls_options_t opts = {.server_hostname = "localhost", .error = why,
                                  .error_size = sizeof why};
    CHECK_ERR(asyncio_start_tls(s, cctx, &opts), -EPROTO);
    CHECK(why[0] != '\0');
    YIELD_UNTIL(count_fds() == before);
out:
    shut(srv);
    asyncio_tls_context_unref(cctx);
    return 0;
}

static void test_start_tls_that_fails_closes_the_stream(void **state)
{
    (void)state;
    tls_run(main_start_tls_fails, NULL);
}

/* The server's start_tls fails (the client sends garbage): the handler
 * returns, and the server must not close the stream start_tls freed. */
static int main_server_start_tls_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct seen seen = {.tls = server_ctx(&certs.server)};
    int port = 0;
    asyncio_server_t *srv = seen.tls ? plain_server(starttls_handler, &seen, &port) : NULL;
    asyncio_stream_t *s = NULL;
    if (!srv)
        goto out;
    CHECK_INT(asyncio_open_connection(&s, "127.0.0.1", port, NULL), 0);
    if (!s)
        goto out;
    CHECK_INT(asyncio_stream_write(s, "STARTTLS\n", 9), 0);
    char buf[256] = {0};
    CHECK_INT(asyncio_stream_readline(s, buf, sizeof buf), 3);
    const char *junk = "this is not a ClientHello, not even close to one\r\n";
    CHECK_INT(asyncio_stream_write(s, junk, strlen(junk)), 0);
    ssize_t n;
    while ((n = asyncio_stream_read(s, buf, sizeof buf)) > 0)
        ; /* perhaps an alert */
    CHECK(n == 0 || n == -ECONNRESET);
    CHECK_INT(asyncio_stream_wait_closed(s), 0);
out:
    shut(srv);
    CHECK_INT(seen.calls, 1);
    CHECK_INT(seen.start_rc, -EPROTO);
    asyncio_tls_context_unref(seen.tls);
    return 0;
}

static void test_server_start_tls_that_fails_in_a_handler(void **state)
{
    (void)state;
    tls_run(main_server_start_tls_fails, NULL);
}

struct outside {
    asyncio_stream_t *s;
    asyncio_tls_context_t *ctx;
    int rc;
    bool ran;
};

static void start_tls_in_a_callback(void *arg)
{
    struct outside *o = arg;
    o->rc = asyncio_start_tls(o->s, o->ctx, &localhost);
    o->ran = true;
}

static int stream_reader(void *arg, void **result)
{
    (void)result;
    char buf[16];
    LOG("reader:%s", err(asyncio_stream_read(arg, buf, sizeof buf)));
    return 0;
}

static int main_start_tls_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_tls_context_t *cctx = client_ctx(&certs.ca);
    int sv[2] = {-1, -1}, pv[2] = {-1, -1};
    asyncio_stream_t *s = NULL, *p = NULL;
    if (!cctx)
        return 0;
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_INT(asyncio_stream_open(&s, sv[0], 0), 0);
    if (!s)
        goto out;
    CHECK_ERR(asyncio_start_tls(NULL, cctx, &localhost), -EINVAL);
    CHECK_ERR(asyncio_start_tls(s, NULL, &localhost), -EINVAL);
    /* A context that checks host names needs one (Python's "check_hostname
     * requires server_hostname"). */
    CHECK_ERR(asyncio_start_tls(s, cctx, NULL), -EINVAL);
    asyncio_tls_options_t no_name = {.handshake_timeout = 1};
    CHECK_ERR(asyncio_start_tls(s, cctx, &no_name), -EINVAL);
    asyncio_tls_options_t bad_timeout = {.server_hostname = "localhost",
                                         .handshake_timeout = -1};
    CHECK_ERR(asyncio_start_tls(s, cctx, &bad_timeout), -EINVAL);
    /* Not in a task: from a loop callback. */
    struct outside o = {s, cctx, 0, false};
    CHECK_INT(asyncio_call_soon(start_tls_in_a_callback, &o, NULL), 0);
    YIELD_UNTIL(o.ran);
    CHECK_INT(o.rc, -EPERM);
    CHECK_SSL_CLEAN();
    /* Another task reads s. */
    asyncio_task_t *r = tu_spawn(stream_reader, s, "reader");
    tu_yield(2);
    CHECK_ERR(asyncio_start_tls(s, cctx, &localhost), -EBUSY);
    CHECK_INT(asyncio_task_cancel(r), 1);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    /* s was left as it was. */
    CHECK_INT(asyncio_tls_is_tls(s), 0);
    CHECK_INT(write(sv[1], "plain\n", 6), 6);
    char line[16] = {0};
    CHECK_INT(asyncio_stream_readline(s, line, sizeof line), 6);
    CHECK_STR(line, "plain\n");
    /* Not a socket. */
    CHECK_INT(pipe2(pv, O_CLOEXEC), 0);
    CHECK_INT(asyncio_stream_open(&p, pv[0], 0), 0);
    if (p) {
        pv[0] = -1;
        CHECK_ERR(asyncio_start_tls(p, cctx, &localhost), -ENOTSOCK);
        CHECK_INT(asyncio_tls_is_tls(p), 0);
        CHECK_INT(asyncio_stream_wait_closed(p), 0);
    }
out:
    if (s)
        CHECK_INT(asyncio_stream_wait_closed(s), 0);
    else if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (pv[0] >= 0)
        close(pv[0]);
    if (pv[1] >= 0)
        close(pv[1]);
    asyncio_tls_context_unref(cctx);
    return 0;
}

static void test_start_tls_misuse_leaves_the_stream_as_it_was(void **state)
{
    (void)state;
    tls_run(main_start_tls_misuse, NULL);
    assert_log("reader:ECANCELED");
}

/* ---- handshakes that stall ---------------------------------------------------- */

enum stall_how { STALL_OPTION, STALL_SCOPE, STALL_CANCEL };

struct stall {
    enum stall_how how;
    bool start_tls; /* else open_connection(.tls) */
    int port;
    asyncio_tls_context_t *cctx;
    int rc;
};

/* Connect to a peer that never answers and do the handshake. */
static int stalled_handshake(void *arg, void **result)
{
    (void)result;
    struct stall *k = arg;
    double option = k->how == STALL_OPTION ? 0.2 : 0;
    asyncio_stream_t *s = NULL;
    if (!k->start_tls) {
        asyncio_connection_options_t o = {.tls = k->cctx, .tls_handshake_timeout = option};
        k->rc = asyncio_open_connection(&s, "127.0.0.1", k->port, &o);
    } else {
        CHECK_INT(asyncio_open_connection(&s, "127.0.0.1", k->port, NULL), 0);
        if (!s)
            return 0;
        asyncio_tls_options_t t = {.server_hostname = "localhost", .handshake_timeout = option};
        k->rc = asyncio_start_tls(s, k->cctx, &t);
        if (k->rc == 0)
            asyncio_stream_abort(s);
        s = NULL;
    }
    CHECK_SSL_CLEAN();
    if (s)
        asyncio_stream_abort(s);
    return 0;
}

static int main_stall(void *arg, void **result)
{
    (void)result;
    struct stall *k = arg;
    k->rc = 1;
    k->cctx = client_ctx(&certs.ca);
    int lfd = silent_listener(&k->port);
    int before = count_fds();
    double t0 = asyncio_loop_time();
    if (k->how == STALL_OPTION) {
        stalled_handshake(k, NULL);
    } else if (k->how == STALL_SCOPE) {
        asyncio_timeout_t scope;
        CHECK_INT(asyncio_timeout_enter(&scope, 0.2), 0);
        stalled_handshake(k, NULL);
        CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    } else {
        asyncio_task_t *t = tu_spawn(stalled_handshake, k, "handshake");
        CHECK_INT(asyncio_sleep(0.2), 0);
        CHECK_INT(asyncio_task_cancel(t), 1);
        CHECK_INT(asyncio_await(t, NULL), 0);
        asyncio_task_release(t);
    }
    double took = asyncio_loop_time() - t0;
    LOG("rc:%s", err(k->rc));
    CHECK_INT(k->rc, k->how == STALL_CANCEL ? -ECANCELED : -ETIMEDOUT);
    if (took < 0.15 || took > 3.0)
        tu_fail_at(__FILE__, __LINE__, "the handshake ended after %.3f s, not about 0.2 s",
                   took);
    YIELD_UNTIL(count_fds() == before);
    CHECK_INT(asyncio_close(lfd), 0);
    asyncio_tls_context_unref(k->cctx);
    return 0;
}

static void test_handshake_timeout_option_gives_etimedout(void **state)
{
    (void)state;
    struct stall open = {.how = STALL_OPTION}, start = {.how = STALL_OPTION, .start_tls = true};
    tls_run(main_stall, &open);
    tls_run(main_stall, &start);
}

static void test_timeout_scope_ends_a_handshake_with_etimedout(void **state)
{
    (void)state;
    struct stall open = {.how = STALL_SCOPE}, start = {.how = STALL_SCOPE, .start_tls = true};
    tls_run(main_stall, &open);
    tls_run(main_stall, &start);
}

static void test_cancelling_a_handshake_gives_ecanceled(void **state)
{
    (void)state;
    struct stall open = {.how = STALL_CANCEL}, start = {.how = STALL_CANCEL, .start_tls = true};
    tls_run(main_stall, &open);
    tls_run(main_stall, &start);
}

/* A client that connects and says nothing: the server's handshake
 * timeout closes it, without a handler. */
static int main_server_handshake_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {.server_timeout = 0.2};
    if (conn_start(&c, echo_handler) < 0)
        goto out;
    int fd = raw_connect(c.port);
    double t0 = asyncio_loop_time();
    char buf[256];
    ssize_t n;
    while ((n = asyncio_sock_recv(fd, buf, sizeof buf)) > 0)
        ; /* perhaps an alert */
    double took = asyncio_loop_time() - t0;
    LOG("end:%s", n == 0 ? "eof" : err(n));
    CHECK(n == 0 || n == -ECONNRESET);
    if (took < 0.15 || took > 3.0)
        tu_fail_at(__FILE__, __LINE__, "the server closed after %.3f s, not about 0.2 s", took);
    CHECK_INT(asyncio_close(fd), 0);
out:
    conn_end(&c);
    CHECK_INT(c.seen.calls, 0);
    return 0;
}

static void test_server_handshake_timeout_closes_a_silent_client(void **state)
{
    (void)state;
    tls_run(main_server_handshake_timeout, NULL);
}

/* ---- waits on an established stream ----------------------------------------- */

/* Wait for the client's lines and answer each. */
static int late_handler(asyncio_stream_t *s, void *arg)
{
    struct seen *seen = arg;
    seen->calls++;
    if (expect_line(s, "go\n") == 0 && asyncio_stream_write(s, "late\n", 5) == 0 &&
        expect_line(s, "again\n") == 0)
        CHECK_INT(asyncio_stream_write(s, "later\n", 6), 0);
    char buf[16];
    finish(seen, s, asyncio_stream_read(s, buf, sizeof buf));
    return 0;
}

static int line_reader(void *arg, void **result)
{
    (void)result;
    char line[64];
    LOG("readline:%s", err(asyncio_stream_readline(arg, line, sizeof line)));
    return 0;
}

static int main_read_waits(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    if (conn_open(&c, late_handler) < 0)
        goto out;
    char buf[64] = {0};
    /* A scope ends a read of an idle peer... */
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.05), 0);
    LOG("read:%s", err(asyncio_stream_read(c.s, buf, sizeof buf)));
    LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
    /* ...and the stream works on. */
    CHECK_INT(asyncio_stream_write(c.s, "go\n", 3), 0);
    CHECK_INT(asyncio_stream_readline(c.s, buf, sizeof buf), 5);
    CHECK_STR(buf, "late\n");
    /* So after a cancelled read. */
    asyncio_task_t *r = tu_spawn(line_reader, c.s, "reader");
    tu_yield(3);
    CHECK_INT(asyncio_task_cancel(r), 1);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    memset(buf, 0, sizeof buf);
    CHECK_INT(asyncio_stream_write(c.s, "again\n", 6), 0);
    CHECK_INT(asyncio_stream_readline(c.s, buf, sizeof buf), 6);
    CHECK_STR(buf, "later\n");
    /* Closing wakes a reader with -EBADF. */
    r = tu_spawn(line_reader, c.s, "reader");
    tu_yield(3);
    CHECK_INT(asyncio_stream_close(c.s), 0);
    c.s = NULL;
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    YIELD_UNTIL(c.seen.ended == 1);
out:
    conn_end(&c);
    CHECK_INT(c.seen.end, 0);
    return 0;
}

static void test_read_timed_out_or_cancelled_and_the_stream_works_on(void **state)
{
    (void)state;
    tls_run(main_read_waits, NULL);
    assert_log("read:ETIMEDOUT exit:ETIMEDOUT readline:ECANCELED readline:EBADF");
}

/* Half a record is in when the scope ends the read; the other half comes
 * later, and the read after gets the whole of it. */
static int main_half_record(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct raw_peer p;
    asyncio_tls_context_t *cctx = client_ctx(&certs.ca);
    if (!cctx || raw_peer_start(&p, RAW_SERVER_SLOW_RECORD, 0) < 0) {
        asyncio_tls_context_unref(cctx);
        return 0;
    }
    asyncio_stream_t *s = NULL;
    asyncio_connection_options_t o = {.tls = cctx};
    CHECK_INT(asyncio_open_connection(&s, "127.0.0.1", p.port, &o), 0);
    if (s) {
        char buf[64] = {0};
        asyncio_timeout_t scope;
        CHECK_INT(asyncio_timeout_enter(&scope, 0.1), 0);
        LOG("read:%s", err(asyncio_stream_read(s, buf, sizeof buf)));
        LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
        CHECK_INT(asyncio_stream_readexactly(s, buf, 11), 11);
        CHECK_STR(buf, "hello world");
        CHECK_INT(asyncio_stream_wait_closed(s), 0);
    }
    raw_peer_join(&p);
    asyncio_tls_context_unref(cctx);
    return 0;
}

static void test_read_timed_out_with_half_a_record_in_loses_nothing(void **state)
{
    (void)state;
    tls_run(main_half_record, NULL);
    assert_log("read:ETIMEDOUT exit:ETIMEDOUT");
}

/* A server that does not read yet: drain times out with the bytes kept,
 * then they all arrive once it reads. */
static int main_drain_waits(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    char *buf = malloc(BULK);
    if (!buf || conn_open(&c, stalled_sink_handler) < 0)
        goto out;
    fill_pattern(buf, BULK, 0);
    CHECK_INT(asyncio_stream_write(c.s, buf, BULK), 0);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.1), 0);
    LOG("drain:%s", err(asyncio_stream_drain(c.s)));
    LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
    CHECK(asyncio_stream_write_buffer_size(c.s) > 0);
    CHECK_INT(asyncio_event_set(&c.seen.go), 0);
    CHECK_INT(asyncio_stream_drain(c.s), 0);
    CHECK_INT(asyncio_stream_wait_closed(c.s), 0);
    c.s = NULL;
    YIELD_UNTIL(c.seen.ended == 1);
out:
    conn_end(&c);
    CHECK_INT(c.seen.bytes, BULK);
    CHECK(!c.seen.bad);
    CHECK_INT(c.seen.end, 0);
    free(buf);
    return 0;
}

static void test_drain_timed_out_keeps_the_bytes_and_goes_on(void **state)
{
    (void)state;
    tls_run(main_drain_waits, NULL);
    assert_log("drain:ETIMEDOUT exit:ETIMEDOUT");
}

/* wait_closed timed out closes at once, dropping the queue; nothing leaks. */
static int main_wait_closed_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct conn c = {0};
    char *buf = malloc(BULK);
    if (!buf || conn_start(&c, stalled_sink_handler) < 0)
        goto out;
    int before = count_fds();
    if (conn_dial(&c) != 0)
        goto out;
    fill_pattern(buf, BULK, 0);
    CHECK_INT(asyncio_stream_write(c.s, buf, BULK), 0);
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.1), 0);
    LOG("wait_closed:%s", err(asyncio_stream_wait_closed(c.s)));
    LOG("exit:%s", err(asyncio_timeout_exit(&scope)));
    c.s = NULL;
    CHECK_INT(asyncio_event_set(&c.seen.go), 0);
    YIELD_UNTIL(c.seen.ended == 1);
    YIELD_UNTIL(count_fds() == before);
out:
    conn_end(&c);
    CHECK(c.seen.bytes < BULK); /* the queue was dropped */
    CHECK_INT(c.seen.ended, 1);
    free(buf);
    return 0;
}

static void test_wait_closed_timed_out_closes_at_once(void **state)
{
    (void)state;
    tls_run(main_wait_closed_timeout, NULL);
    assert_log("wait_closed:ETIMEDOUT exit:ETIMEDOUT");
}

/* ---- bad input -------------------------------------------------------------- */

static int main_bad_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_tls_context_t *ctx = NULL;
    CHECK_ERR(asyncio_tls_context_new(NULL, ASYNCIO_TLS_CLIENT), -EINVAL);
    CHECK_ERR(asyncio_tls_context_new(&ctx, 0), -EINVAL);
    CHECK_ERR(asyncio_tls_context_new(&ctx, 3), -EINVAL);
    CHECK_PTR(ctx, NULL);
    asyncio_tls_context_unref(NULL);
    asyncio_tls_context_t *cli = new_ctx(ASYNCIO_TLS_CLIENT);
    asyncio_tls_context_t *srv = new_ctx(ASYNCIO_TLS_SERVER);
    if (!cli || !srv)
        goto out;
    CHECK_PTR(asyncio_tls_context_ref(cli), cli);
    asyncio_tls_context_unref(cli);
    const char *missing = "/nonexistent/asyncio-tls-test.pem";

    /* load_verify_locations */
    CHECK_ERR(asyncio_tls_context_load_verify_locations(NULL, certs.ca.cert, NULL), -EINVAL);
    CHECK_ERR(asyncio_tls_context_load_verify_locations(cli, NULL, NULL), -EINVAL);
    CHECK_ERR(asyncio_tls_context_load_verify_locations(cli, missing, NULL), -ENOENT);
    CHECK_ERR(asyncio_tls_context_load_verify_locations(cli, certs.garbage, NULL), -EPROTO);
    CHECK_ERR(asyncio_tls_context_load_verify_locations(cli, certs.ca.key, NULL), -EPROTO);
    CHECK_ERR(asyncio_tls_context_load_verify_locations(cli, certs.ca.cert, NULL), 0);

    /* load_cert_chain */
    CHECK_ERR(asyncio_tls_context_load_cert_chain(NULL, certs.server.cert, certs.server.key),
              -EINVAL);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, NULL, certs.server.key), -EINVAL);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, missing, certs.server.key), -ENOENT);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, certs.server.cert, missing), -ENOENT);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, certs.server.cert, certs.client.key),
              -EINVAL);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, certs.garbage, certs.server.key),
              -EPROTO);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, certs.server.cert, certs.garbage),
              -EPROTO);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, certs.server_combined, NULL), 0);
    CHECK_ERR(asyncio_tls_context_load_cert_chain(srv, certs.server.cert, certs.server.key), 0);

    /* set_verify, set_check_hostname */
    CHECK_ERR(asyncio_tls_context_set_verify(NULL, ASYNCIO_TLS_VERIFY_NONE), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_verify(cli, 3), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_verify(cli, -1), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_check_hostname(NULL, 1), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_verify(cli, ASYNCIO_TLS_VERIFY_NONE), 0);
    CHECK_ERR(asyncio_tls_context_set_check_hostname(cli, 1), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_verify(cli, ASYNCIO_TLS_VERIFY_REQUIRED), 0);
    CHECK_ERR(asyncio_tls_context_set_check_hostname(cli, 1), 0);

    /* set_alpn_protocols */
    char long_name[257];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    const char *too_long[1] = {long_name};
    const char *empty[2] = {"h2", ""};
    const char *null_name[2] = {"h2", NULL};
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(NULL, too_long, 0), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(cli, NULL, 1), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(cli, too_long, 1), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(cli, empty, 2), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(cli, null_name, 2), -EINVAL);
    long_name[255] = '\0'; /* 255 bytes: the most a name may have */
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(cli, too_long, 1), 0);
    CHECK_ERR(asyncio_tls_context_set_alpn_protocols(cli, NULL, 0), 0);

    /* set_versions */
    CHECK_ERR(asyncio_tls_context_set_versions(NULL, ASYNCIO_TLS_VERSION_1_2, 0), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_versions(cli, ASYNCIO_TLS_VERSION_1_3,
                                               ASYNCIO_TLS_VERSION_1_2),
              -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_versions(cli, 0x0302, 0), -EINVAL); /* TLS 1.1 */
    CHECK_ERR(asyncio_tls_context_set_versions(cli, 0x0301, ASYNCIO_TLS_VERSION_1_2), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_versions(cli, 0, 0), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_versions(cli, ASYNCIO_TLS_VERSION_1_2, 0), 0);
    CHECK_ERR(asyncio_tls_context_set_versions(cli, ASYNCIO_TLS_VERSION_1_3,
                                               ASYNCIO_TLS_VERSION_1_3),
              0);

    /* set_ciphers */
    CHECK_ERR(asyncio_tls_context_set_ciphers(NULL, "HIGH", NULL), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_ciphers(cli, "NO-SUCH-CIPHER", NULL), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_ciphers(cli, NULL, "TLS_NO_SUCH_SUITE"), -EINVAL);
    CHECK_ERR(asyncio_tls_context_set_ciphers(cli, NULL, NULL), 0);
    CHECK_ERR(asyncio_tls_context_set_ciphers(cli, "ECDHE-ECDSA-AES128-GCM-SHA256",
                                              "TLS_AES_128_GCM_SHA256"),
              0);

    /* Contexts of the wrong side. */
    asyncio_server_t *s = NULL;
    asyncio_server_options_t so = {.tls = cli};
    CHECK_ERR(asyncio_start_server(&s, echo_handler, NULL, "127.0.0.1", 0, &so), -EINVAL);
    CHECK_PTR(s, NULL);
    int port = 0;
    struct seen seen = {0};
    asyncio_server_t *plain = plain_server(echo_handler, &seen, &port);
    asyncio_stream_t *st = NULL;
    asyncio_connection_options_t co = {.tls = srv};
    CHECK_ERR(asyncio_open_connection(&st, "127.0.0.1", port, &co), -EINVAL);
    CHECK_PTR(st, NULL);

    /* The getters of a plain stream. */
    CHECK_INT(asyncio_open_connection(&st, "127.0.0.1", port, NULL), 0);
    if (st) {
        char buf[16] = "x";
        CHECK_INT(asyncio_tls_is_tls(st), 0);
        CHECK_PTR(asyncio_tls_version(st), NULL);
        CHECK_PTR(asyncio_tls_cipher(st), NULL);
        CHECK_PTR(asyncio_tls_selected_alpn_protocol(st), NULL);
        CHECK_PTR(asyncio_tls_error(st), NULL);
        CHECK_ERR(asyncio_tls_peer_subject(st, buf, sizeof buf), -EINVAL);
        CHECK_INT(asyncio_stream_wait_closed(st), 0);
    }
    shut(plain);
out:
    asyncio_tls_context_unref(cli);
    asyncio_tls_context_unref(srv);
    CHECK_SSL_CLEAN();
    return 0;
}

static void test_bad_input_gets_error_codes_and_leaves_no_openssl_error(void **state)
{
    (void)state;
    tls_run(main_bad_input, NULL);
}

/* Outside any loop: contexts are made and configured from any thread. */
static void test_contexts_need_no_loop(void **state)
{
    (void)state;
    ERR_clear_error();
    asyncio_tls_context_t *ctx = NULL;
    assert_int_equal(asyncio_tls_context_new(&ctx, ASYNCIO_TLS_SERVER), 0);
    assert_non_null(ctx);
    assert_int_equal(asyncio_tls_context_load_cert_chain(ctx, certs.server.cert,
                                                         certs.server.key),
                     0);
    assert_int_equal(asyncio_tls_context_load_cert_chain(ctx, certs.garbage, NULL), -EPROTO);
    assert_int_equal(ERR_peek_error(), 0);
    asyncio_tls_context_unref(ctx);
}

/* ---- the program ------------------------------------------------------------ */

/*
 * The certificates are made before the tests and removed after them, in
 * main(): a cmocka group setup would do the same, but testutil's watchdog
 * only gives each test its own budget when there is none.
 */
static int group_setup(void)
{
    return tls_certs_make(&certs);
}

static void group_teardown(void)
{
    tls_certs_remove(&certs);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would end the run: none may come */
    if (group_setup() != 0)
        return 1;
    /*
     * The system's CA store, as OpenSSL finds it (SSL_CERT_FILE and
     * SSL_CERT_DIR, read each time a client context is made), is the rogue
     * CA alone, but in test_real_system_store_does_not_trust_the_test_ca:
     * the tests do not depend on what this machine trusts, and a client
     * context costs no load of the machine's bundle (some 100 ms here,
     * seconds under valgrind).
     */
    setenv("SSL_CERT_FILE", certs.rogue_ca.cert, 1);
    setenv("SSL_CERT_DIR", certs.dir, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_round_trips_and_getters),
        cmocka_unit_test(test_echo_over_ipv6_checks_the_ip_address),
        cmocka_unit_test(test_each_read_call_over_tls),
        cmocka_unit_test(test_writev_of_several_buffers),
        cmocka_unit_test(test_large_transfer_both_ways),
        cmocka_unit_test(test_write_eof_sends_close_notify_and_the_peer_can_answer),
        cmocka_unit_test(test_server_write_eof_and_the_client_still_writes),
        cmocka_unit_test(test_close_sends_close_notify_after_what_was_queued),
        cmocka_unit_test(test_abort_resets_the_peer_s_read),
        cmocka_unit_test(test_peer_closing_without_close_notify_gives_econnreset),
        cmocka_unit_test(test_truncated_record_then_close_gives_an_error),
        cmocka_unit_test(test_server_reading_a_client_gone_without_close_notify),
        cmocka_unit_test(test_num_tickets_the_server_sends),
        cmocka_unit_test(test_garbage_from_the_server_fails_open_connection_with_eproto),
        cmocka_unit_test(test_garbage_to_the_server_closes_it_without_a_handler),
        cmocka_unit_test(test_expired_certificate_fails_with_ecert),
        cmocka_unit_test(test_self_signed_certificate_fails_with_ecert),
        cmocka_unit_test(test_certificate_for_another_host_fails_with_ecert),
        cmocka_unit_test(test_certificate_from_an_untrusted_ca_fails_with_ecert),
        cmocka_unit_test(test_client_context_verifies_with_the_system_store),
        cmocka_unit_test(test_real_system_store_does_not_trust_the_test_ca),
        cmocka_unit_test(test_names_that_verify),
        cmocka_unit_test(test_empty_server_hostname_skips_the_host_check),
        cmocka_unit_test(test_verify_none_accepts_a_self_signed_certificate),
        cmocka_unit_test(test_check_hostname_off_accepts_another_host),
        cmocka_unit_test(test_error_text_fits_a_small_buffer_or_none),
        cmocka_unit_test(test_alpn_agrees_on_the_server_s_first_shared_protocol),
        cmocka_unit_test(test_alpn_without_overlap_connects_without_a_protocol),
        cmocka_unit_test(test_client_at_most_tls12_speaks_tls12),
        cmocka_unit_test(test_tls13_cipher_suite_chosen_by_the_client_s_list),
        cmocka_unit_test(test_no_shared_version_fails_with_eproto),
        cmocka_unit_test(test_required_client_certificate_missing_fails),
        cmocka_unit_test(test_client_certificate_from_an_untrusted_ca_fails),
        cmocka_unit_test(test_client_certificate_is_verified_and_its_subject_read),
        cmocka_unit_test(test_optional_client_certificate_may_be_missing),
        cmocka_unit_test(test_start_tls_after_a_plaintext_exchange),
        cmocka_unit_test(test_start_tls_with_the_client_hello_already_buffered),
        cmocka_unit_test(test_start_tls_that_fails_closes_the_stream),
        cmocka_unit_test(test_server_start_tls_that_fails_in_a_handler),
        cmocka_unit_test(test_start_tls_misuse_leaves_the_stream_as_it_was),
        cmocka_unit_test(test_handshake_timeout_option_gives_etimedout),
        cmocka_unit_test(test_timeout_scope_ends_a_handshake_with_etimedout),
        cmocka_unit_test(test_cancelling_a_handshake_gives_ecanceled),
        cmocka_unit_test(test_server_handshake_timeout_closes_a_silent_client),
        cmocka_unit_test(test_read_timed_out_or_cancelled_and_the_stream_works_on),
        cmocka_unit_test(test_read_timed_out_with_half_a_record_in_loses_nothing),
        cmocka_unit_test(test_drain_timed_out_keeps_the_bytes_and_goes_on),
        cmocka_unit_test(test_wait_closed_timed_out_closes_at_once),
        cmocka_unit_test(test_bad_input_gets_error_codes_and_leaves_no_openssl_error),
        cmocka_unit_test(test_contexts_need_no_loop),
    };
    /* TLS_TEST_FILTER=pattern runs the tests whose names match (cmocka's
     * wildcards * and ?) alone. */
    const char *filter = getenv("TLS_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    int rc = tu_run_group_tests_name("tls", tests, NULL, NULL);
    group_teardown();
    return rc;
}
