/* bench/net/tls_load.c: the HTTPS load generator of bench/tls.sh for what
 * wrk cannot do: full handshakes only, and bulk downloads, loading several
 * servers in turn.
 *
 *   tls_load HOST PORT[,PORT]... hs SECONDS [-c CONNS] [--slice S] [TLS OPTIONS]
 *   tls_load HOST PORT[,PORT]... get PATH SECONDS [-c CONNS] [--slice S] [TLS OPTIONS]
 *   tls_load HOST PORT check [PATH] [TLS OPTIONS]
 *
 * hs: CONNS connections (default 16) at a time, each a new TCP connection
 * and a full TLS handshake for one "GET / HTTP/1.1" with "Connection:
 * close"; a request is done when the whole answer (a 200 with its
 * Content-Length) has come and the server has closed (close_notify or the
 * socket's end: the server closes first, as it does for "Connection:
 * close", so TIME_WAIT stays on its side); then the next connection opens.
 * No session is ever resumed: every connection has a new SSL object, the
 * client context has no session cache (the new-session callback only
 * counts the tickets the server sends and keeps none), and SSL_set_session
 * is never called; a resumed handshake is counted (`resumed`) all the same,
 * as a check. (wrk cannot be used for this: it reconnects with SSL_clear(),
 * which keeps the session, and resumes whenever the server issues
 * tickets.)
 *
 * get: CONNS connections (default 1) to each server, each sending "GET
 * /PATH HTTP/1.1" with keep-alive, one at a time, reading the whole answer
 * (the bytes counted and dropped) before the next; a connection the server
 * closes between answers is opened again.
 *
 * Several servers (PORTs) are loaded in turn, never at once, as
 * bench/net/echo_load does: a slice of --slice seconds (default 0.05) on
 * the first, then the next, ..., then backwards, until each has been
 * measured for SECONDS. At the end of a slice no new request (hs: no new
 * connection) is started, and the slice ends when the ones in flight are
 * done, so that a server has nothing left to do while the others run (with
 * SIGSTOP, as bench/net/alternate does for wrk, a server would go on with
 * the handshakes queued when its client stopped, up to CONNS x 1.5 ms of
 * CPU, on the CPU the other server then has its turn on). In get mode a
 * slice thus holds at least one whole answer. A slice's time counts from
 * its first request to its last answer. One server: a single slice of
 * SECONDS.
 *
 * check: one GET (of / by default) on a new connection; prints the status
 * line, the body's length, the protocol version and the cipher suite;
 * exits 1 unless the answer is a 200.
 *
 * TLS options: --ciphersuites LIST (TLS 1.3 suites, default
 * TLS_AES_128_GCM_SHA256), --groups LIST (default X25519), --sni NAME
 * (default localhost). Only TLS 1.3 is offered; the server's certificate
 * is not verified (SSL_VERIFY_NONE: its signature over the handshake is
 * still checked, as TLS requires).
 *
 * Output: `name value unit` lines per server, the names prefixed with `tI.`
 * (I = 1, 2, ... in PORT order) when there are several: requests (done),
 * bytes (answer bodies' bytes), handshakes (completed), resumed, tickets
 * (session tickets the server sent), seconds (its slices' time), slices,
 * req_per_s, MiB_per_s; then version and cipher (of the last handshake, as
 * `version TLSv1.3 -`). Exits 1 on an error (refused, a bad answer, a
 * failed handshake, a stall of 10 s), or when a server got nothing done.
 *
 * Single-threaded, level-triggered epoll, nonblocking sockets, TCP_NODELAY.
 *
 *   cc -O2 -o tls_load tls_load.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define BUF_SIZE (256 * 1024)
#define MAX_CONNS 1024
#define MAX_TARGETS 8
#define STALL_S 10.0

enum mode { HS, GET, CHECK };
enum state { IDLE, CONNECTING, HANDSHAKE, WRITING, READING, DRAINING };

struct target;

struct conn {
    struct target *t;
    int fd;
    SSL *ssl;
    enum state st;
    unsigned events;     /* what epoll watches now (0: not in the set) */
    char head[HEAD_MAX]; /* the answer's head, as it comes */
    size_t head_len;
    int have_head;
    long long body_left; /* bytes of the body still to come */
    size_t req_off;      /* bytes of the request written */
};

struct target {
    const char *port_s;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct conn *conns;
    unsigned long long requests, bytes, handshakes, resumed, tickets;
    double seconds;
    int slices;
};

static enum mode mode;
static const char *host, *path = "";
static const char *sni = "localhost";
static struct target targets[MAX_TARGETS];
static int ntargets, nconns;
static struct target *current; /* the server being loaded */
static int stopping;           /* the slice is over: no new request */
static int inflight;           /* connections with a request under way */
static SSL_CTX *ctx;
static int ep;
static char request[1024];
static size_t request_len;
static char version[32] = "-", cipher[64] = "-";
static char status_line[128] = "-";
static long long check_body = -1;
static double last_progress;
static unsigned char buf[BUF_SIZE];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tls_load HOST PORT[,PORT]... hs SECONDS [-c CONNS] [--slice S] [TLS OPTIONS]\n"
            "       tls_load HOST PORT[,PORT]... get PATH SECONDS [-c CONNS] [--slice S] [TLS OPTIONS]\n"
            "       tls_load HOST PORT check [PATH] [TLS OPTIONS]\n"
            "TLS OPTIONS: --ciphersuites LIST --groups LIST --sni NAME\n");
    exit(2);
}

static _Noreturn void ssl_fail(const char *what)
{
    fprintf(stderr, "tls_load: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* An error ends the run: the caller sees exit status 1 and the reason. */
static _Noreturn void conn_error(const struct conn *c, const char *what)
{
    fprintf(stderr, "tls_load: port %s: %s\n", c->t->port_s, what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* Counts the session tickets the server sends; keeps none (returns 0: the
 * session is not taken, and nothing ever resumes it). */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    current->tickets++;
    return 0;
}

static void watch(struct conn *c, unsigned events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    int op = !events ? EPOLL_CTL_DEL : c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) {
        perror("tls_load: epoll_ctl");
        exit(1);
    }
    c->events = events;
}

static void conn_close(struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    c->events = 0;
    c->st = IDLE;
}

static void request_start(struct conn *c)
{
    c->head_len = 0;
    c->have_head = 0;
    c->body_left = 0;
    c->req_off = 0;
    c->st = WRITING;
    watch(c, EPOLLOUT);
}

/* A new connection: TCP connect started, SSL object made. */
static void conn_open(struct conn *c)
{
    struct target *t = c->t;
    c->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("tls_load: socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->events = 0;
    c->head_len = 0;
    c->have_head = 0;
    c->body_left = 0;
    c->req_off = 0;
    if (connect(c->fd, (struct sockaddr *)&t->addr, t->addr_len) < 0 && errno != EINPROGRESS) {
        fprintf(stderr, "tls_load: connect %s:%s: %s\n", host, t->port_s, strerror(errno));
        exit(1);
    }
    c->ssl = SSL_new(ctx);
    if (!c->ssl)
        ssl_fail("SSL_new");
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    if (sni && *sni)
        SSL_set_tlsext_host_name(c->ssl, sni);
    c->st = CONNECTING;
    watch(c, EPOLLOUT);
}

/* Start c's next request: hs, a new connection; get, a GET on c's
 * connection (opened first if there is none). */
static void conn_go(struct conn *c)
{
    inflight++;
    if (c->fd < 0)
        conn_open(c);
    else
        request_start(c);
}

/* c's request is done (counted by the caller): the next, unless the slice
 * is over. */
static void conn_done(struct conn *c)
{
    inflight--;
    if (mode == HS)
        conn_close(c);
    if (mode == CHECK)
        return;
    if (!stopping) {
        conn_go(c);
    } else if (mode == GET) {
        c->st = IDLE; /* kept alive, out of the epoll set until its turn */
        watch(c, 0);
    }
}

/* What an SSL call's failure asks for: 1 to wait (epoll set), 0 if the
 * connection ended (EOF, close_notify), -1 on an error. */
static int ssl_wait(struct conn *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        watch(c, EPOLLIN);
        return 1;
    case SSL_ERROR_WANT_WRITE:
        watch(c, EPOLLOUT);
        return 1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == ECONNRESET)
            return 0;
        return -1;
    case SSL_ERROR_SSL:
        /* OpenSSL 3: the socket's end without close_notify */
        if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return 0;
        }
        return -1;
    default:
        return -1;
    }
}

/* Parse the answer's head once it is whole: 1 done, 0 more needed, -1 bad. */
static int parse_head(struct conn *c)
{
    char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (!end)
        return c->head_len == sizeof c->head ? -1 : 0;
    size_t head_bytes = (size_t)(end - c->head) + 4;
    char *eol = memchr(c->head, '\r', head_bytes);
    size_t sl = (size_t)(eol - c->head);
    if (sl >= sizeof status_line)
        sl = sizeof status_line - 1;
    memcpy(status_line, c->head, sl);
    status_line[sl] = 0;
    if (strncmp(c->head, "HTTP/1.1 200 ", 13) != 0) {
        fprintf(stderr, "tls_load: answer %s\n", status_line);
        return -1;
    }
    long long len = -1;
    for (char *p = memchr(c->head, '\n', head_bytes); p && p < end;
         p = memchr(p + 1, '\n', (size_t)(end - p))) {
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            len = strtoll(p + 16, NULL, 10);
    }
    if (len < 0) {
        fprintf(stderr, "tls_load: an answer without Content-Length\n");
        return -1;
    }
    long long extra = (long long)(c->head_len - head_bytes); /* body bytes read with the head */
    if (extra > len) {
        fprintf(stderr, "tls_load: more bytes than the Content-Length\n");
        return -1;
    }
    check_body = len;
    c->have_head = 1;
    c->body_left = len - extra;
    c->t->bytes += (unsigned long long)extra;
    return 1;
}

/* Move c on as far as it goes without waiting. */
static void step(struct conn *c)
{
    struct target *t = c->t;
    for (;;) {
        int r, w;
        switch (c->st) {
        case IDLE:
            return;
        case CONNECTING: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                fprintf(stderr, "tls_load: connect %s:%s: %s\n", host, t->port_s, strerror(err));
                exit(1);
            }
            c->st = HANDSHAKE;
            break;
        }
        case HANDSHAKE:
            ERR_clear_error();
            errno = 0;
            r = SSL_connect(c->ssl);
            if (r != 1) {
                if (ssl_wait(c, r) == 1)
                    return;
                conn_error(c, "the handshake failed");
            }
            t->handshakes++;
            if (SSL_session_reused(c->ssl))
                t->resumed++;
            snprintf(version, sizeof version, "%s", SSL_get_version(c->ssl));
            snprintf(cipher, sizeof cipher, "%s", SSL_get_cipher_name(c->ssl));
            request_start(c);
            break;
        case WRITING:
            ERR_clear_error();
            errno = 0;
            r = SSL_write(c->ssl, request + c->req_off, (int)(request_len - c->req_off));
            if (r <= 0) {
                w = ssl_wait(c, r);
                if (w == 1)
                    return;
                if (w == 0 && mode == GET && c->req_off == 0) { /* closed: again */
                    conn_close(c);
                    conn_open(c);
                    return;
                }
                conn_error(c, "a write failed");
            }
            c->req_off += (size_t)r;
            if (c->req_off == request_len) {
                c->st = READING;
                watch(c, EPOLLIN);
            }
            break;
        case READING:
        case DRAINING:
            ERR_clear_error();
            errno = 0;
            if (c->st == READING && !c->have_head)
                r = SSL_read(c->ssl, c->head + c->head_len, (int)(sizeof c->head - c->head_len));
            else
                r = SSL_read(c->ssl, buf, sizeof buf);
            if (r <= 0) {
                w = ssl_wait(c, r);
                if (w == 1)
                    return;
                if (w == 0 && c->st == DRAINING) { /* the server's end: done */
                    t->requests++;
                    conn_done(c);
                    return;
                }
                if (w == 0 && mode == GET && c->head_len == 0 && !c->have_head) {
                    conn_close(c); /* closed between answers: again */
                    conn_open(c);
                    return;
                }
                conn_error(c, w == 0 ? "the server closed in the middle of an answer"
                                     : "a read failed");
            }
            last_progress = now_s();
            if (c->st == DRAINING)
                conn_error(c, "bytes after the answer");
            if (!c->have_head) {
                c->head_len += (size_t)r;
                int p = parse_head(c);
                if (p < 0)
                    conn_error(c, "a bad answer");
                if (p == 0)
                    break;
            } else {
                if (r > c->body_left)
                    conn_error(c, "more bytes than the Content-Length");
                c->body_left -= r;
                t->bytes += (unsigned long long)r;
            }
            if (c->body_left == 0) {
                if (mode == GET || mode == CHECK) {
                    t->requests++;
                    conn_done(c);
                    return;
                }
                c->st = DRAINING; /* hs: until the server closes */
                watch(c, EPOLLIN);
            }
            break;
        }
    }
}

/* Load t for `slice` seconds, then until its requests in flight are done;
 * its time counts. */
static void run_slice(struct target *t, double slice)
{
    struct epoll_event evs[64];
    current = t;
    stopping = 0;
    double t0 = now_s(), end = t0 + slice;
    last_progress = t0;
    for (int k = 0; k < nconns; k++)
        conn_go(&t->conns[k]);
    while (inflight > 0) {
        double now = now_s();
        if (!stopping && now >= end)
            stopping = 1;
        if (now - last_progress > STALL_S) {
            fprintf(stderr, "tls_load: port %s: no progress for %.0f s\n", t->port_s, STALL_S);
            exit(1);
        }
        int ms = stopping ? 100 : (int)((end - now) * 1000) + 1;
        if (ms > 100)
            ms = 100;
        int n = epoll_wait(ep, evs, 64, ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("tls_load: epoll_wait");
            exit(1);
        }
        for (int k = 0; k < n; k++)
            step(evs[k].data.ptr);
    }
    t->seconds += now_s() - t0;
    t->slices++;
}

static void add_target(const char *port_s)
{
    if (ntargets == MAX_TARGETS)
        usage();
    struct target *t = &targets[ntargets++];
    t->port_s = port_s;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(host, port_s, &hints, &ai);
    if (g) {
        fprintf(stderr, "tls_load: %s:%s: %s\n", host, port_s, gai_strerror(g));
        exit(1);
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        usage();
    host = argv[1];
    double secs = 0, slice = 0.05;
    const char *suites = "TLS_AES_128_GCM_SHA256", *groups = "X25519";
    int i = 4;
    nconns = -1;
    if (strcmp(argv[3], "hs") == 0 || strcmp(argv[3], "get") == 0) {
        mode = argv[3][0] == 'h' ? HS : GET;
        if (mode == GET) {
            if (i >= argc)
                usage();
            path = argv[i++];
        }
        if (i >= argc)
            usage();
        char *end;
        secs = strtod(argv[i], &end);
        if (end == argv[i] || *end || !(secs > 0))
            usage();
        i++;
    } else if (strcmp(argv[3], "check") == 0) {
        mode = CHECK;
        if (i < argc && argv[i][0] != '-')
            path = argv[i++];
    } else {
        usage();
    }
    for (; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "-c") == 0 && mode != CHECK) {
            nconns = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--slice") == 0 && mode != CHECK) {
            char *end;
            slice = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(slice > 0))
                usage();
        } else if (strcmp(argv[i], "--ciphersuites") == 0) {
            suites = argv[++i];
        } else if (strcmp(argv[i], "--groups") == 0) {
            groups = argv[++i];
        } else if (strcmp(argv[i], "--sni") == 0) {
            sni = argv[++i];
        } else {
            usage();
        }
    }
    if (nconns < 0)
        nconns = mode == HS ? 16 : 1;
    if (mode == CHECK)
        nconns = 1;
    if (nconns < 1 || nconns > MAX_CONNS)
        usage();
    if (*path == '/')
        path++;
    for (char *p = strtok(argv[2], ","); p; p = strtok(NULL, ","))
        add_target(p);
    if (ntargets == 0 || (mode == CHECK && ntargets > 1))
        usage();

    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tls_load\r\n%s\r\n",
                                   path, sni && *sni ? sni : host,
                                   mode == GET ? "" : "Connection: close\r\n");
    signal(SIGPIPE, SIG_IGN);

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        ssl_fail("SSL_CTX_new");
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        ssl_fail("setting TLS 1.3");
    if (!SSL_CTX_set_ciphersuites(ctx, suites))
        ssl_fail("--ciphersuites");
    if (!SSL_CTX_set1_groups_list(ctx, groups))
        ssl_fail("--groups");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* no cache: the callback counts tickets and keeps nothing */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("tls_load: epoll_create1");
        return 1;
    }
    for (int k = 0; k < ntargets; k++) {
        struct target *t = &targets[k];
        t->conns = calloc((size_t)nconns, sizeof *t->conns);
        if (!t->conns) {
            perror("tls_load: calloc");
            return 1;
        }
        for (int j = 0; j < nconns; j++) {
            t->conns[j].t = t;
            t->conns[j].fd = -1;
        }
    }

    if (mode == CHECK) {
        run_slice(&targets[0], STALL_S);
        struct target *t = &targets[0];
        printf("status %s\nbody_bytes %lld bytes\nversion %s -\ncipher %s -\nresumed %llu count\n",
               status_line, check_body, version, cipher, t->resumed);
        return t->requests ? 0 : 1;
    }
    if (ntargets == 1) {
        run_slice(&targets[0], secs);
    } else {
        for (int cycle = 0;; cycle++) {
            int left = 0;
            for (int j = 0; j < ntargets; j++) {
                struct target *t = &targets[cycle % 2 ? ntargets - 1 - j : j];
                if (t->seconds < secs) {
                    run_slice(t, slice);
                    left++;
                }
            }
            if (!left)
                break;
        }
    }

    int bad = 0;
    for (int k = 0; k < ntargets; k++) {
        struct target *t = &targets[k];
        char pre[8] = "";
        if (ntargets > 1)
            snprintf(pre, sizeof pre, "t%d.", k + 1);
        for (int j = 0; j < nconns; j++)
            conn_close(&t->conns[j]);
        free(t->conns);
        printf("%srequests %llu count\n", pre, t->requests);
        printf("%sbytes %llu bytes\n", pre, t->bytes);
        printf("%shandshakes %llu count\n", pre, t->handshakes);
        printf("%sresumed %llu count\n", pre, t->resumed);
        printf("%stickets %llu count\n", pre, t->tickets);
        printf("%sseconds %.6f s\n", pre, t->seconds);
        printf("%sslices %d slices\n", pre, t->slices);
        printf("%sreq_per_s %.3f req/s\n", pre, t->seconds > 0 ? (double)t->requests / t->seconds : 0);
        printf("%sMiB_per_s %.3f MiB/s\n", pre,
               t->seconds > 0 ? (double)t->bytes / 1048576.0 / t->seconds : 0);
        bad |= !t->requests;
    }
    printf("version %s -\ncipher %s -\n", version, cipher);
    SSL_CTX_free(ctx);
    return bad;
}
