/*
 * http_server: a small HTTP/1.1 server with keep-alive and pipelining.
 * GET and HEAD only: "Hello, World!" at /, and with DIR the files under
 * DIR at their paths (GET /a/b.txt serves DIR/a/b.txt).
 *
 *     http_server PORT [DIR] [--host HOST] [--workers N] [--tls CERT KEY]
 *     curl http://127.0.0.1:PORT/
 *     curl --cacert CA.pem https://127.0.0.1:PORT/      (with --tls)
 *
 * It shows a parser that works in the stream's own buffer (peek, fill,
 * consume: no copy, and each new read is searched only once; the parser
 * itself is in proto/http_parse.c, where the fuzz targets reach it), answers
 * queued with one write each so that the answers to pipelined requests
 * leave in one system call, backpressure with drain, a timeout scope used
 * as a connection's idle timer, and a clean stop on SIGINT or SIGTERM.
 *
 * With --workers N (1 to 64, default 1) it also shows a loop per core:
 * N threads, each with its own loop and its own listening socket on the
 * same port (SO_REUSEPORT), and the kernel spreads the connections over
 * them, as over nginx's worker processes. The main thread's loop is worker
 * 0 and owns the signals: on SIGINT or SIGTERM it closes its server and
 * has every other worker close its own (asyncio_call_soon_threadsafe), then
 * joins their threads. A worker that cannot listen stops them all (exit
 * status 1). At exit it prints how many connections each worker served.
 * With one worker, everything runs in the main thread. (SO_REUSEPORT lets
 * any program of the same user share the port: a second copy started with
 * --workers on it gets a share of the connections, not "address in use".)
 *
 * With --tls CERT KEY it serves https: CERT is the server's certificate
 * chain (PEM, the certificate first) and KEY its private key (PEM). It
 * shows a server context of <asyncio/tls.h> (asyncio's ssl= of
 * start_server): each connection's handshake is done before its handler
 * runs, which then reads and writes plain text through the same stream
 * calls; ALPN agrees on "http/1.1". One context serves every worker: it is
 * configured before the threads start and only read after. TLS is there
 * when the program was built with libasyncio-tls (OpenSSL 3); without it,
 * --tls says it is not available in this build (status 2).
 *
 * Answers: 400 for a malformed request or a header section over the
 * stream's limit (64 KiB), then the connection is closed; 404 for a missing
 * file, and for paths with a ".." segment (also percent-encoded); 403 for a
 * file it may not read; 405 with
 * "Allow: GET, HEAD" for other methods; 501 for a request with a
 * Transfer-Encoding (chunked bodies are not supported, so the connection
 * closes: where such a body ends cannot be known). Bodies with a
 * Content-Length are read and dropped. Symbolic links under DIR are
 * followed: guarding against them is out of scope here.
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>
#ifdef ASYNCIO_HAVE_TLS /* defined when built with libasyncio-tls */
#include <asyncio/tls.h>
#endif

#include "proto/http_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define IDLE_TIMEOUT 60.0  /* seconds without progress before a connection is dropped */
#define LINGER_TIMEOUT 2.0 /* seconds to wait for the client's end after our last answer */
#define FILE_CHUNK 65536   /* bytes of a file read at a time */
#define HEAD_MAX 512       /* an answer's head, or a whole small answer */
#define READ_LIMIT ASYNCIO_STREAM_LIMIT /* the connections' read limit (the server's default) */
#define MAX_WORKERS 64

static const char hello[] = "Hello, World!";

/* What the workers share, set before they start and only read after,
 * but for stopping (the main thread's alone). */
struct server {
    const char *host;
    int port;  /* asked for; then the one worker 0 listens on (port 0) */
    int dirfd; /* DIR, or -1: only / is served */
    int nworkers;
    asyncio_tls_context_t *tls; /* --tls: the server context, else NULL */
    struct worker *workers;
    bool stopping; /* stop_all() was called */
};

/* A worker: a thread with its own loop and listening socket. */
struct worker {
    const struct server *sv;
    int id; /* 0: the main thread's */
    /* The worker's own, used in its thread only (and read by main() once
     * it has been joined). */
    asyncio_server_t *srv;     /* NULL once closed and freed */
    unsigned long connections; /* how many it served */
    int status;                /* its loop's outcome */
    char chunk[FILE_CHUNK];    /* send_file()'s buffer */
    /* The main thread's, for workers 1 to N-1. */
    pthread_t thread;
    bool joinable;
    asyncio_cfuture_t *started; /* done once it listens, with its loop, or failed */
    asyncio_loop_t *loop;       /* its loop, a reference, once it listens */
};

/* ---- the answer's head ---------------------------------------------------- */

/* The Date header, formatted once a second, by each worker's thread for
 * itself. strftime's day and month names are English here: the program
 * never calls setlocale(). */
static _Thread_local char date_line[64];
static _Thread_local size_t date_len;
static _Thread_local time_t date_second = (time_t)-1;

static void update_date(void)
{
    time_t now = time(NULL);
    if (now == date_second)
        return;
    struct tm tm;
    if (!gmtime_r(&now, &tm))
        return;
    date_len = strftime(date_line, sizeof date_line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date_second = now;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 501: return "Not Implemented";
    default: return "Internal Server Error";
    }
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT(p, lit) put(p, lit, sizeof lit - 1)

static char *put_str(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

static char *put_num(char *p, unsigned long long v)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* Write the head of an answer into b (HEAD_MAX bytes): its end. */
static char *put_head(char *b, const struct http_request *rq, int status, const char *type,
                      unsigned long long length)
{
    char *p = PUT(b, "HTTP/1.1 ");
    p = put_num(p, (unsigned long long)status);
    *p++ = ' ';
    p = put_str(p, reason(status));
    p = PUT(p, "\r\nServer: libasyncio\r\n");
    update_date();
    p = put(p, date_line, date_len);
    p = PUT(p, "Content-Type: ");
    p = put_str(p, type);
    p = PUT(p, "\r\nContent-Length: ");
    p = put_num(p, length);
    p = PUT(p, "\r\n");
    if (status == 405)
        p = PUT(p, "Allow: GET, HEAD\r\n");
    if (!rq->keep_alive)
        p = PUT(p, "Connection: close\r\n");
    else if (rq->minor == 0)
        p = PUT(p, "Connection: keep-alive\r\n");
    return PUT(p, "\r\n");
}

/* A whole small answer in one write: one system call for any number of
 * pipelined answers, as they queue up until the loop sends them. */
static int send_small(asyncio_stream_t *s, const struct http_request *rq, int status,
                      const char *body, size_t len)
{
    char b[HEAD_MAX];
    char *p = put_head(b, rq, status, "text/plain", len);
    if (!rq->head)
        p = put(p, body, len);
    return asyncio_stream_write(s, b, (size_t)(p - b));
}

static int send_status(asyncio_stream_t *s, const struct http_request *rq, int status)
{
    char body[48];
    char *p = put_num(body, (unsigned long long)status);
    *p++ = ' ';
    p = put_str(p, reason(status));
    *p++ = '\n';
    return send_small(s, rq, status, body, (size_t)(p - body));
}

/* ---- files ------------------------------------------------------------- */

static const char *content_type(const char *path)
{
    static const char *const types[][2] = {
        {"html", "text/html"},       {"htm", "text/html"},          {"txt", "text/plain"},
        {"css", "text/css"},         {"js", "text/javascript"},     {"json", "application/json"},
        {"png", "image/png"},        {"jpg", "image/jpeg"},         {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},        {"svg", "image/svg+xml"},      {"pdf", "application/pdf"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot + 1, types[i][0]) == 0)
                return types[i][1];
    return "application/octet-stream";
}

/*
 * Send a file of DIR, through the worker's chunk: one buffer for all its
 * connections, as nothing waits between reading a chunk into it and
 * queueing that chunk (asyncio_stream_write copies what the socket does
 * not take at once). Plain blocking open/read calls on the loop are fine
 * here only because these are regular files on a local disk read in
 * chunks of at most 64 KiB, with a drain between chunks; a real server
 * would read in a thread (or use sendfile) so that a slow disk cannot stall
 * every connection. O_NONBLOCK keeps open() of a FIFO from blocking.
 */
static int send_file(asyncio_stream_t *s, struct worker *w, const struct http_request *rq,
                     asyncio_timeout_t *idle)
{
    char *chunk = w->chunk;
    int fd = openat(w->sv->dirfd, rq->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        bool missing = e == ENOENT || e == ENOTDIR || e == ELOOP || e == ENAMETOOLONG;
        return send_status(s, rq, missing ? 404 : e == EACCES || e == EPERM ? 403 : 500);
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return send_status(s, rq, 404);
    }
    char head[HEAD_MAX];
    struct iovec iov[2] = {{head, 0}, {chunk, 0}};
    iov[0].iov_len = (size_t)(put_head(head, rq, 200, content_type(rq->path),
                                       (unsigned long long)st.st_size) - head);
    if (rq->head) {
        close(fd);
        return asyncio_stream_write(s, head, iov[0].iov_len);
    }
    unsigned long long left = (unsigned long long)st.st_size;
    int rc;
    bool first = true;
    do {
        size_t want = left < FILE_CHUNK ? (size_t)left : FILE_CHUNK;
        ssize_t r = 0;
        while (want && (r = read(fd, chunk, want)) < 0 && errno == EINTR)
            ;
        if (want && r <= 0) {
            /* The file shrank or failed under us: its promised length cannot
             * be kept, so the connection ends. */
            rc = r < 0 ? -errno : -EIO;
            fprintf(stderr, "http_server: /%s: %s\n", rq->path, strerror(-rc));
            break;
        }
        iov[1].iov_len = (size_t)r;
        /* The head goes with the first chunk: a large first write with
         * nothing queued goes straight to the socket, uncopied. */
        rc = first ? asyncio_stream_writev(s, iov, 2) : asyncio_stream_write(s, chunk, (size_t)r);
        first = false;
        left -= (unsigned long long)r;
        if (rc == 0 && left) {
            asyncio_timeout_reschedule(idle, asyncio_loop_time() + IDLE_TIMEOUT);
            rc = asyncio_stream_drain(s);
        }
    } while (rc == 0 && left);
    close(fd);
    return rc;
}

/* ---- connections -------------------------------------------------------- */

/* Wait for more input, at most IDLE_TIMEOUT: bytes, 0 at the end, or an
 * error (-ENOBUFS: the buffer holds the stream's limit). */
static ssize_t more_input(asyncio_stream_t *s, asyncio_timeout_t *idle)
{
    asyncio_timeout_reschedule(idle, asyncio_loop_time() + IDLE_TIMEOUT);
    return asyncio_stream_fill(s);
}

/* Read and drop n bytes of a request body: 0, or how the connection ended. */
static int skip_body(asyncio_stream_t *s, unsigned long long n, asyncio_timeout_t *idle)
{
    for (;;) {
        size_t have = asyncio_stream_peek(s, NULL);
        size_t k = n < have ? (size_t)n : have;
        asyncio_stream_consume(s, k);
        n -= k;
        if (!n)
            return 0;
        ssize_t r = more_input(s, idle);
        if (r <= 0)
            return r ? (int)r : -EPIPE;
    }
}

/*
 * The end of a connection we close: our FIN goes after the last answer,
 * then what the client still sends is read and dropped for a short while.
 * Closing with unread input would make the kernel reset the connection,
 * and a reset can destroy the answer before the client has read it (the
 * "lingering close" of HTTP servers).
 */
static int linger(asyncio_stream_t *s, asyncio_timeout_t *idle)
{
    int rc = asyncio_stream_write_eof(s);
    if (rc < 0)
        return rc;
    asyncio_timeout_reschedule(idle, asyncio_loop_time() + LINGER_TIMEOUT);
    for (;;) {
        asyncio_stream_consume(s, asyncio_stream_peek(s, NULL));
        ssize_t r = asyncio_stream_fill(s);
        if (r <= 0)
            return (int)r;
    }
}

static int answer(asyncio_stream_t *s, struct worker *w, const struct http_request *rq,
                  asyncio_timeout_t *idle)
{
    if (rq->status)
        return send_status(s, rq, rq->status);
    if (rq->root)
        return send_small(s, rq, 200, hello, sizeof hello - 1);
    if (w->sv->dirfd < 0)
        return send_status(s, rq, 404);
    return send_file(s, w, rq, idle);
}

static int serve(asyncio_stream_t *s, struct worker *w, asyncio_timeout_t *idle)
{
    struct http_parser ps;
    struct http_request rq;
    http_parser_init(&ps);
    for (;;) {
        const char *data;
        size_t used, n = asyncio_stream_peek(s, (const void **)&data);
        enum http_parse_result r = http_parse_head(&ps, data, n, READ_LIMIT, &rq, &used);
        asyncio_stream_consume(s, used);
        if (r == HTTP_PARSE_MORE) {
            /* The parser answered 400 to a buffer holding READ_LIMIT bytes, so
             * no -ENOBUFS here. */
            ssize_t got = more_input(s, idle);
            if (got <= 0)
                return (int)got; /* the end, or an error */
            continue;
        }
        int rc = answer(s, w, &rq, idle);
        if (rc == 0 && asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER) {
            /* A client that pipelines without reading waits here. */
            asyncio_timeout_reschedule(idle, asyncio_loop_time() + IDLE_TIMEOUT);
            rc = asyncio_stream_drain(s);
        }
        if (rc < 0)
            return rc;
        if (!rq.keep_alive) /* always after HTTP_PARSE_ERROR */
            return linger(s, idle);
        if (rq.body && (rc = skip_body(s, rq.body, idle)) < 0)
            return rc;
    }
}

static int on_connection(asyncio_stream_t *s, void *arg)
{
    struct worker *w = arg;
    w->connections++;
    asyncio_timeout_t idle;
    int rc = asyncio_timeout_enter(&idle, IDLE_TIMEOUT);
    if (rc < 0)
        return rc;
    rc = serve(s, w, &idle);
    asyncio_timeout_exit(&idle);
    /* The ordinary ends of a connection: the client left or went quiet, or
     * the server closed it; with TLS, also a client that broke the protocol
     * (or left without close_notify: -ECONNRESET). */
    if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF ||
        (rc == -EPROTO && w->sv->tls) || rc > 0)
        rc = 0;
    return rc;
}

/* ---- workers ------------------------------------------------------------ */

/* Listen on the server's host and port, with a socket of the worker's own
 * (one of N on the port when there are several workers). */
static int start_listening(struct worker *w)
{
    const struct server *sv = w->sv;
    asyncio_server_options_t opts = {.reuse_port = sv->nworkers > 1, .tls = sv->tls};
    int rc = asyncio_start_server(&w->srv, on_connection, w, sv->host, sv->port, &opts);
    if (rc < 0)
        fprintf(stderr, "http_server: cannot listen on %s:%d: %s\n", sv->host, sv->port,
                strerror(-rc));
    return rc;
}

/* In the worker's loop: stop listening and cancel its connections, so that
 * serve_until_stopped() returns. Nothing once it has. */
static void stop_serving(void *arg)
{
    struct worker *w = arg;
    if (w->srv) {
        asyncio_server_close(w->srv);
        asyncio_server_close_clients(w->srv);
    }
}

static int serve_until_stopped(struct worker *w)
{
    int rc = asyncio_server_serve_forever(w->srv);
    int closed = asyncio_server_wait_closed(w->srv);
    w->srv = NULL; /* freed (or, if the wait failed, left to the loop's close) */
    return rc < 0 ? rc : closed;
}

/* Workers 1 to N-1: a thread with a loop of its own. The worker tells the
 * main thread through w->started whether it listens: with its loop (a
 * reference, so that the handle stays valid to post to, even once the loop
 * has closed), or with the error. */
static int worker_task(void *arg, void **result)
{
    (void)result;
    struct worker *w = arg;
    int rc = start_listening(w);
    asyncio_cfuture_set_result(w->started, rc,
                               rc < 0 ? NULL : asyncio_loop_ref(asyncio_get_running_loop()));
    return rc < 0 ? rc : serve_until_stopped(w);
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    w->status = asyncio_run(worker_task, w, NULL);
    /* The task never ran (no loop: out of fds, say)? Then tell it now. */
    if (w->status < 0 && asyncio_cfuture_set_result(w->started, w->status, NULL) == 0)
        fprintf(stderr, "http_server: worker %d: no loop: %s\n", w->id, strerror(-w->status));
    return NULL;
}

/* In the main thread, on SIGINT or SIGTERM, or when a worker could not
 * start: worker 0 stops at once, the others in their loops (those whose
 * loops are known: see start_workers()). Stopping twice does no harm. */
static void stop_all(struct server *sv)
{
    sv->stopping = true;
    stop_serving(&sv->workers[0]);
    for (int i = 1; i < sv->nworkers; i++)
        if (sv->workers[i].loop)
            asyncio_call_soon_threadsafe(sv->workers[i].loop, stop_serving, &sv->workers[i], NULL);
}

static void on_signal(int signum, void *arg)
{
    (void)signum;
    stop_all(arg);
}

/*
 * Start workers 1 to N-1 and wait until each listens or has failed. The
 * main task waits suspended: its loop serves and takes signals meanwhile
 * (a stop then reaches the workers whose loops are known, and the others
 * once they all are). The threads start after the signal handlers were
 * added, so they inherit the signal mask that blocks SIGINT and SIGTERM:
 * the kernel delivers these to the main thread. Returns 0, or the first
 * error (everything is stopping then).
 */
static int start_workers(struct server *sv)
{
    int rc = 0;
    for (int i = 1; i < sv->nworkers; i++) {
        struct worker *w = &sv->workers[i];
        if ((rc = asyncio_cfuture_new(&w->started)) == 0)
            rc = -pthread_create(&w->thread, NULL, worker_thread, w);
        if (rc < 0) {
            fprintf(stderr, "http_server: cannot start worker %d: %s\n", i, strerror(-rc));
            break;
        }
        w->joinable = true;
    }
    for (int i = 1; i < sv->nworkers && sv->workers[i].joinable; i++) {
        void *loop = NULL;
        int st = asyncio_cfuture_result(sv->workers[i].started, -1, &loop);
        sv->workers[i].loop = loop;
        if (st < 0 && rc == 0)
            rc = st; /* the worker said why on stderr */
    }
    if (rc < 0 || sv->stopping)
        stop_all(sv); /* (again: now it reaches every worker that listens) */
    return rc;
}

/* Once every worker was told to stop: join their threads and drop what
 * the main thread held of them. 0, or -1 if one of them failed. */
static int join_workers(struct server *sv)
{
    int rc = 0;
    for (int i = 1; i < sv->nworkers; i++) {
        struct worker *w = &sv->workers[i];
        if (w->joinable) {
            pthread_join(w->thread, NULL);
            if (w->status < 0)
                rc = -1;
        }
        asyncio_loop_unref(w->loop);
        w->loop = NULL; /* a signal now does not post to it */
        asyncio_cfuture_unref(w->started);
    }
    return rc;
}

/* ---- main --------------------------------------------------------------- */

/* The main thread's loop: worker 0, then the others on its port (the one it
 * took, for port 0). */
static int main_task(void *arg, void **result)
{
    (void)result;
    struct server *sv = arg;
    struct worker *w = &sv->workers[0];
    int rc = start_listening(w);
    if (rc < 0)
        return rc;
    if ((rc = asyncio_add_signal_handler(SIGINT, on_signal, sv)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, on_signal, sv)) < 0) {
        fprintf(stderr, "http_server: signal handlers: %s\n", strerror(-rc));
        stop_serving(w);
        serve_until_stopped(w);
        return rc;
    }
    sv->port = asyncio_server_port(w->srv);
    rc = start_workers(sv);
    if (rc == 0 && !sv->stopping) {
        printf("listening on %s:%d\n", sv->host, sv->port);
        fflush(stdout);
    }
    int served = serve_until_stopped(w);
    if (!sv->stopping)
        stop_all(sv); /* worker 0 ended on its own: the others end too */
    return rc < 0 ? rc : served;
}

/* A decimal number from 0 to max, or -1. */
static int parse_number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || *s < '0' || *s > '9' || v > max)
        return -1;
    return (int)v;
}

/* --tls CERT KEY: the server context (ssl.SSLContext(PROTOCOL_TLS_SERVER)
 * with load_cert_chain()), in sv->tls. 0, or the exit status having said
 * why. */
static int tls_context(struct server *sv, const char *cert, const char *key)
{
#ifdef ASYNCIO_HAVE_TLS
    static const char *const alpn[] = {"http/1.1"};
    int rc = asyncio_tls_context_new(&sv->tls, ASYNCIO_TLS_SERVER);
    if (rc < 0) {
        fprintf(stderr, "http_server: cannot make a TLS context: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = asyncio_tls_context_load_cert_chain(sv->tls, cert, key)) < 0) {
        fprintf(stderr, "http_server: --tls %s %s: %s\n", cert, key,
                rc == -EINVAL   ? "the key does not match the certificate"
                : rc == -EPROTO ? "not a PEM certificate or key"
                                : strerror(-rc));
    } else if ((rc = asyncio_tls_context_set_alpn_protocols(sv->tls, alpn, 1)) < 0) {
        fprintf(stderr, "http_server: cannot set ALPN: %s\n", strerror(-rc));
    }
    if (rc < 0) {
        asyncio_tls_context_unref(sv->tls);
        sv->tls = NULL;
        return 1;
    }
    return 0;
#else
    (void)sv;
    (void)cert;
    (void)key;
    fprintf(stderr, "http_server: --tls is not available in this build "
                    "(libasyncio-tls was not built)\n");
    return 2;
#endif
}

int main(int argc, char **argv)
{
    struct server sv = {.host = "127.0.0.1", .port = -1, .dirfd = -1, .nworkers = 1};
    const char *args[2], *cert = NULL, *key = NULL;
    int nargs = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--host") == 0)
            bad = ++i == argc || !*(sv.host = argv[i]);
        else if (strcmp(argv[i], "--workers") == 0)
            bad = ++i == argc || (sv.nworkers = parse_number(argv[i], MAX_WORKERS)) < 1;
        else if (strcmp(argv[i], "--tls") == 0)
            bad = (i += 2) >= argc || !*(cert = argv[i - 1]) || !*(key = argv[i]);
        else if ((argv[i][0] == '-' && argv[i][1]) || nargs == 2)
            bad = true;
        else
            args[nargs++] = argv[i];
    }
    if (bad || nargs == 0 || (sv.port = parse_number(args[0], 65535)) < 0) {
        fprintf(stderr,
                "usage: http_server PORT [DIR] [--host HOST] [--workers N (1-%d)] [--tls CERT KEY]\n",
                MAX_WORKERS);
        return 2;
    }
    int status;
    if (cert && (status = tls_context(&sv, cert, key)) != 0)
        return status;
    const char *dir = nargs == 2 ? args[1] : NULL;
    if (dir && (sv.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "http_server: %s: %s\n", dir, strerror(errno));
#ifdef ASYNCIO_HAVE_TLS
        asyncio_tls_context_unref(sv.tls);
#endif
        return 1;
    }
    int rc = -ENOMEM;
    if ((sv.workers = calloc((size_t)sv.nworkers, sizeof *sv.workers))) {
        for (int i = 0; i < sv.nworkers; i++) {
            sv.workers[i].sv = &sv;
            sv.workers[i].id = i;
        }
        /* asyncio_run() in its steps, so that the workers are joined
         * before the loop closes: until then it holds SIGINT and SIGTERM,
         * and one more of them is read (and does nothing), not fatal. */
        asyncio_loop_t *loop;
        if ((rc = asyncio_new_event_loop(&loop, NULL)) == 0) {
            rc = asyncio_loop_run_until_complete(loop, main_task, &sv, NULL);
            if (join_workers(&sv) < 0 && rc >= 0)
                rc = -1;
            asyncio_loop_close(loop);
            asyncio_loop_unref(loop);
        }
        if (rc >= 0 && sv.nworkers > 1)
            for (int i = 0; i < sv.nworkers; i++)
                printf("worker %d: %lu connections\n", i, sv.workers[i].connections);
        free(sv.workers);
    }
    if (sv.dirfd >= 0)
        close(sv.dirfd);
#ifdef ASYNCIO_HAVE_TLS
    asyncio_tls_context_unref(sv.tls); /* its connections are closed: the last reference */
#endif
    return rc < 0 ? 1 : 0;
}
