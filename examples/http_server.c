/*
 * http_server: a small HTTP/1.1 server with keep-alive and pipelining.
 * GET and HEAD only: "Hello, World!" at /, and with DIR the files under
 * DIR at their paths (GET /a/b.txt serves DIR/a/b.txt).
 *
 *     http_server PORT [DIR] [--host HOST] [--workers N] [--tls CERT KEY]
 *                 [--header-timeout S] [--keepalive-timeout S]
 *                 [--io-timeout S] [--max-connections N]
 *     curl http://127.0.0.1:PORT/
 *     curl --cacert CA.pem https://127.0.0.1:PORT/      (with --tls)
 *
 * It shows a parser that works in the stream's own buffer (peek, fill,
 * consume: no copy, and each new read is searched only once; the parser
 * itself is in proto/http_parse.c, where the fuzz targets reach it), answers
 * queued with one write each so that the answers to pipelined requests
 * leave in one system call, files sent with the stream's sendfile (no copy
 * through the program), backpressure with drain, one timeout scope per
 * connection whose deadline moves with what the connection is doing, and
 * a clean stop on SIGINT or SIGTERM.
 *
 * Limits, each an option where it is a number (SECONDS may have a
 * fraction), all per connection but the last:
 *   --header-timeout S (10)  a request head must be whole within S seconds
 *       of its first byte (of the connection's start, for the first
 *       request; the TLS handshake gets as long again). Bytes that come
 *       slowly do not extend it, so a client that sends a head a byte at a
 *       time ("slowloris") is answered 408 Request Timeout and closed; if
 *       nothing of a head came, the connection is just closed. A request's
 *       body (read and dropped: nothing here takes one) must come whole
 *       within S seconds of the answer too, else the connection is closed.
 *   --keepalive-timeout S (60)  how long a connection may wait idle for
 *       its next request; then it is closed.
 *   --io-timeout S (60)  the longest an answer being sent may make no
 *       progress: it goes out in steps (a file in pieces of SEND_PIECE,
 *       2 MiB, as nginx's sendfile_max_chunk; pipelined answers queued
 *       past the high water mark, drained) and each step must be done
 *       within S seconds, else the connection is closed: a client must
 *       read at least 2 MiB per S.
 *   a request head over the stream's read limit (64 KiB): 400, and closed.
 *   a decoded path over HTTP_PATH_MAX (1024 bytes): 404.
 *   LINGER_TIMEOUT (2 s): once the server has closed its side of a
 *       connection (after an error, "Connection: close", HTTP/1.0...) it
 *       reads and drops what the client still sends for at most 2 s.
 *   --max-connections N (10000)  connections each worker serves at once;
 *       one more gets "503 Service Unavailable" with "Connection: close"
 *       (what it sent is read and dropped, as in a lingering close), and
 *       the others go on undisturbed. With --workers, the limit is per
 *       worker (each has its own loop and listening socket). Keep N under
 *       the fds the process may open (ulimit -n): beyond those, the
 *       library pauses accepting rather than failing.
 *
 * Answers: 400 for a malformed request (RFC 9112: lines end with CRLF, a
 * bare LF is a 400 at once; a control byte other than HTAB in a header
 * value; HTTP/1.1 without a Host header, or with two), then the
 * connection is closed; 404 for a missing file, and for paths with a ".."
 * segment (also percent-encoded); 403 for a file it may not read; 405
 * with "Allow: GET, HEAD" for other methods; 501 for a request with a
 * Transfer-Encoding (chunked bodies are not supported, so the connection
 * closes: where such a body ends cannot be known). Bodies with a
 * Content-Length are read and dropped (see --header-timeout).
 *
 * Files as browsers and caches expect (RFC 9110): Content-Type from the
 * name's extension (html, css, js, json, txt, png, jpg, gif, svg, ico,
 * pdf, wasm and a few more; else application/octet-stream);
 * Last-Modified and a strong ETag (mtime and size, as nginx's), and 304
 * Not Modified for a matching If-None-Match, or without one an
 * If-Modified-Since not older than the file; a single Range of bytes
 * (a-b, a-, -n) gets 206 Partial Content with Content-Range, one that
 * starts past the end 416 with "Content-Range: bytes *\/SIZE"; several
 * ranges in one request, or a Range under an If-Range that does not
 * match, get the whole file (200), which RFC 9110 allows. A directory:
 * its index.html, and without the final slash a 301 that adds it (the
 * index's links are relative to it); without an index, 404. (/ itself
 * always says hello.)
 *
 * Symbolic links: a file is opened so that it cannot be outside DIR. On
 * Linux (5.6 and later) with openat2(RESOLVE_BENEATH): links that stay
 * inside DIR are followed, those that would leave it (absolute, or with
 * ".." out of it, even on the way back in) are refused with 404, in one
 * system call the kernel checks as it goes, so no rename or new link in
 * between can trick it.
 * Elsewhere each component of the path is opened from the one before with
 * O_NOFOLLOW: every symbolic link is refused (404), just as race-free.
 * Files are opened and stat'ed on the loop: fine for a local disk (a slow
 * one would stall every connection of the worker meanwhile).
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
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* syscall(), for openat2 on Linux */
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#if defined(SYS_openat2)
#include <linux/openat2.h>
#endif
#endif

#define HEADER_TIMEOUT 10.0     /* default --header-timeout */
#define KEEPALIVE_TIMEOUT 60.0  /* default --keepalive-timeout */
#define IO_TIMEOUT 60.0         /* default --io-timeout */
#define MAX_CONNECTIONS 10000   /* default --max-connections (per worker) */
#define LINGER_TIMEOUT 2.0      /* seconds to wait for the client's end after our last answer */
#define SEND_PIECE (2u << 20)   /* bytes of a file sent within one --io-timeout */
#define HEAD_MAX 512            /* an answer's head, or a whole small answer */
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
    double header_timeout, keepalive_timeout, io_timeout;
    int max_connections;
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
    int active;                /* how many it serves now (--max-connections) */
    int status;                /* its loop's outcome */
    /* The main thread's, for workers 1 to N-1. */
    pthread_t thread;
    bool joinable;
    asyncio_cfuture_t *started; /* done once it listens, with its loop, or failed */
    asyncio_loop_t *loop;       /* its loop, a reference, once it listens */
};

/*
 * A connection, as its handler goes from request to request. Its one
 * timeout scope's deadline is moved as the phase changes, never on every
 * read, so that bytes that come slowly cannot keep a connection forever:
 *   FIRST    from the start: the first head within --header-timeout
 *   IDLE     after an answer, nothing of the next request yet:
 *            --keepalive-timeout from then
 *   HEAD     part of a head came: --header-timeout from then (for the
 *            first request, FIRST's deadline stays)
 *   BUSY     answering: --io-timeout for each step; then reading the
 *            request's body, if it has one: --header-timeout for all of it
 */
enum phase { FIRST, IDLE, HEAD, BUSY };

struct conn {
    asyncio_stream_t *s;
    struct worker *w;
    asyncio_timeout_t timer;
    enum phase phase;
};

/* The connection's deadline, seconds from now. */
static void deadline_in(struct conn *c, double seconds)
{
    asyncio_timeout_reschedule(&c->timer, asyncio_loop_time() + seconds);
}

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
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 416: return "Range Not Satisfiable";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
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

static char *put_hex(char *p, unsigned long long v)
{
    char digits[16];
    int n = 0;
    do
        digits[n++] = "0123456789abcdef"[v % 16];
    while ((v /= 16) != 0);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* An answer's head begins: the status line, Server and Date. */
static char *put_start(char *p, int status)
{
    p = PUT(p, "HTTP/1.1 ");
    p = put_num(p, (unsigned long long)status);
    *p++ = ' ';
    p = put_str(p, reason(status));
    p = PUT(p, "\r\nServer: libasyncio\r\n");
    update_date();
    return put(p, date_line, date_len);
}

static char *put_length(char *p, unsigned long long length)
{
    p = PUT(p, "Content-Length: ");
    p = put_num(p, length);
    return PUT(p, "\r\n");
}

/* An answer's head ends: Connection if need be, and the empty line. */
static char *put_end(char *p, const struct http_request *rq)
{
    if (!rq->keep_alive)
        p = PUT(p, "Connection: close\r\n");
    else if (rq->minor == 0)
        p = PUT(p, "Connection: keep-alive\r\n");
    return PUT(p, "\r\n");
}

/*
 * A whole small answer in one write: one system call for any number of
 * pipelined answers, as they queue up until the loop sends them. extra:
 * more header lines (each with its CRLF), at most 64 bytes, or NULL.
 */
static int send_small(asyncio_stream_t *s, const struct http_request *rq, int status,
                      const char *extra, const char *body, size_t len)
{
    char b[HEAD_MAX];
    char *p = put_start(b, status);
    p = PUT(p, "Content-Type: text/plain\r\n");
    p = put_length(p, len);
    if (extra)
        p = put_str(p, extra);
    p = put_end(p, rq);
    if (!rq->head)
        p = put(p, body, len);
    return asyncio_stream_write(s, b, (size_t)(p - b));
}

/* An answer whose body says its status, as "404 Not Found\n". */
static int send_status_with(asyncio_stream_t *s, const struct http_request *rq, int status,
                            const char *extra)
{
    char body[48];
    char *p = put_num(body, (unsigned long long)status);
    *p++ = ' ';
    p = put_str(p, reason(status));
    *p++ = '\n';
    return send_small(s, rq, status, extra, body, (size_t)(p - body));
}

static int send_status(asyncio_stream_t *s, const struct http_request *rq, int status)
{
    return send_status_with(s, rq, status, status == 405 ? "Allow: GET, HEAD\r\n" : NULL);
}

/* The request of an answer sent before any request was read (408, 503):
 * HTTP/1.1, the connection closes after it. */
static const struct http_request closing = {.minor = 1};

/* ---- files: finding them ----------------------------------------------- */

/* A path of DIR: the request's, or a directory's with index.html. */
#define FILE_PATH_MAX (HTTP_PATH_MAX + sizeof "index.html")

/*
 * Open path under dirfd with O_NOFOLLOW for each component: no symbolic
 * link is followed. Each directory is opened from the one before, so what
 * is opened is always under dirfd, whatever renames happen meanwhile. A
 * final '/' asks for a directory. The fd, or a negative errno.
 */
static int open_nofollow(int dirfd, const char *path, int flags)
{
    int at = dirfd;
    for (;;) {
        while (*path == '/')
            path++;
        size_t len = strcspn(path, "/");
        char name[256];
        if (len == 0 || len >= sizeof name) {
            if (at != dirfd)
                close(at);
            return len ? -ENAMETOOLONG : -ENOENT;
        }
        memcpy(name, path, len);
        name[len] = '\0';
        path += len;
        bool dir = *path == '/';
        while (*path == '/')
            path++;
        bool last = !*path;
        int fd = last ? openat(at, name, flags | O_NOFOLLOW | (dir ? O_DIRECTORY : 0))
                      : openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        if (at != dirfd)
            close(at);
        if (fd < 0 || last)
            return fd < 0 ? -e : fd;
        at = fd;
    }
}

/*
 * Open path under dirfd so that it cannot be outside it: on Linux with
 * openat2(RESOLVE_BENEATH), which follows the symbolic links that stay
 * under dirfd and fails with EXDEV for those that would leave it; where
 * it is missing (or refused by a seccomp filter), with open_nofollow().
 * The fd, or a negative errno.
 */
static int open_in_dir(int dirfd, const char *path)
{
    int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC; /* a FIFO would block */
#ifdef SYS_openat2
    static _Thread_local bool no_openat2;
    if (!no_openat2) {
        struct open_how how = {.flags = (uint64_t)flags,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        int fd, tries = 3;
        do /* EAGAIN: a rename raced with a ".." in a link: try again */
            fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        while (fd < 0 && errno == EAGAIN && --tries);
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
            return fd < 0 ? -errno : fd;
        no_openat2 = true;
    }
#endif
    return open_nofollow(dirfd, path, flags);
}

/* The status for an open that failed with -e. */
static int open_status(int e)
{
    return e == EACCES || e == EPERM ? 403 : e == ENOMEM || e == EMFILE || e == ENFILE ? 503 : 404;
}

/* Whether name ends with "." and ext, whatever its case. */
static bool has_extension(const char *name, size_t len, const char *ext)
{
    size_t n = strlen(ext);
    if (len <= n || name[len - n - 1] != '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[len - n + i];
        if ((c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c) != ext[i])
            return false;
    }
    return true;
}

static const char *content_type(const char *path)
{
    static const char *const types[][2] = {
        {"html", "text/html"},        {"htm", "text/html"},         {"txt", "text/plain"},
        {"css", "text/css"},          {"js", "text/javascript"},    {"mjs", "text/javascript"},
        {"json", "application/json"}, {"xml", "application/xml"},   {"png", "image/png"},
        {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},       {"gif", "image/gif"},
        {"webp", "image/webp"},       {"svg", "image/svg+xml"},     {"ico", "image/x-icon"},
        {"pdf", "application/pdf"},   {"wasm", "application/wasm"}, {"woff2", "font/woff2"},
    };
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (has_extension(path, len, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

/* ---- files: answering ---------------------------------------------------- */

/* An HTTP-date (IMF-fixdate), as in Last-Modified. */
static char *put_date(char *p, time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return PUT(p, "Thu, 01 Jan 1970 00:00:00 GMT");
    return p + strftime(p, 32, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The file's entity-tag: "MTIME-SIZE" in hex, as nginx's. */
static void make_etag(char *etag, const struct stat *st)
{
    char *p = etag;
    *p++ = '"';
    p = put_hex(p, (unsigned long long)st->st_mtime);
    *p++ = '-';
    p = put_hex(p, (unsigned long long)st->st_size);
    *p++ = '"';
    *p = '\0';
}

/* Last-Modified and ETag: what a cache keeps to ask again. */
static char *put_validators(char *p, const struct stat *st, const char *etag)
{
    p = PUT(p, "Last-Modified: ");
    p = put_date(p, st->st_mtime);
    p = PUT(p, "\r\nETag: ");
    p = put_str(p, etag);
    return PUT(p, "\r\n");
}

/* RFC 9110, 13.2.2: If-None-Match decides, else If-Modified-Since. */
static bool not_modified(const struct http_request *rq, const struct stat *st, const char *etag)
{
    if (rq->has_if_none_match)
        return http_etag_listed(rq->if_none_match, etag);
    return rq->if_modified_since >= 0 && (long long)st->st_mtime <= rq->if_modified_since;
}

/* If-Range: the Range applies if the file is still the one the client has
 * part of (its strong entity-tag, or its exact Last-Modified date). */
static bool range_applies(const struct http_request *rq, const struct stat *st, const char *etag)
{
    if (!rq->has_if_range)
        return true;
    if (rq->if_range_tag[0])
        return strcmp(rq->if_range_tag, etag) == 0;
    return rq->if_range_date >= 0 && rq->if_range_date == (long long)st->st_mtime;
}

/* The bytes a single Range asks for of size bytes: 206 with *first and
 * *count, 416 if it starts past the end, or 200 (the whole file: no
 * Range, several, or an empty file). */
static int select_range(const struct http_request *rq, unsigned long long size,
                        unsigned long long *first, unsigned long long *count)
{
    if (size == 0 || (rq->range != HTTP_RANGE_BYTES && rq->range != HTTP_RANGE_SUFFIX))
        return 200;
    if (rq->range == HTTP_RANGE_SUFFIX) {
        if (rq->range_last == 0)
            return 416;
        *first = rq->range_last < size ? size - rq->range_last : 0;
        *count = size - *first;
    } else {
        if (rq->range_first >= size)
            return 416;
        unsigned long long last = rq->range_last < size - 1 ? rq->range_last : size - 1;
        *first = rq->range_first;
        *count = last - *first + 1;
    }
    return 206;
}

static int send_unsatisfiable(asyncio_stream_t *s, const struct http_request *rq,
                              unsigned long long size)
{
    char extra[64];
    char *p = PUT(extra, "Content-Range: bytes */");
    p = put_num(p, size);
    p = PUT(p, "\r\n");
    *p = '\0';
    return send_status_with(s, rq, 416, extra);
}

/* 301 to the directory's path with its final slash. */
static int send_slash_redirect(asyncio_stream_t *s, const struct http_request *rq)
{
    char b[HEAD_MAX + 3 * HTTP_PATH_MAX];
    char *p = put_start(b, 301);
    p = PUT(p, "Location: /");
    for (const char *c = rq->path; *c; c++) { /* percent-encoded again */
        unsigned char u = (unsigned char)*c;
        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
            strchr("-._~/!$&'()*+,;=:@", u)) {
            *p++ = (char)u;
        } else {
            *p++ = '%';
            *p++ = "0123456789ABCDEF"[u >> 4];
            *p++ = "0123456789ABCDEF"[u & 15];
        }
    }
    p = PUT(p, "/\r\n");
    p = put_length(p, 0);
    p = put_end(p, rq);
    return asyncio_stream_write(s, b, (size_t)(p - b));
}

/*
 * The body: count bytes of the file from offset, after the head, with the
 * stream's sendfile (loop.sendfile): on a plain connection the kernel
 * moves the file's pages to the socket, no copy through the program (a
 * small count the library reads and queues instead, which costs less);
 * through TLS it reads and writes for us. In pieces of SEND_PIECE, each
 * within --io-timeout.
 */
static int send_body(struct conn *c, const char *path, int fd, unsigned long long offset,
                     unsigned long long count, const char *head, size_t head_len)
{
    int rc = asyncio_stream_write(c->s, head, head_len);
    while (rc == 0 && count) {
        size_t piece = count < SEND_PIECE ? (size_t)count : SEND_PIECE;
        deadline_in(c, c->w->sv->io_timeout);
        ssize_t n = asyncio_stream_sendfile(c->s, fd, (off_t)offset, piece, 0);
        if (n < 0)
            return (int)n;
        if ((size_t)n < piece) { /* its promised length cannot be kept: the end */
            fprintf(stderr, "http_server: /%s: the file shrank as it was sent\n", path);
            return -EIO;
        }
        offset += piece;
        count -= piece;
    }
    return rc;
}

/* A regular file of DIR, path open as fd: 304, 416, or 200 or 206 and its bytes. */
static int send_regular(struct conn *c, const struct http_request *rq, const char *path, int fd,
                        const struct stat *st)
{
    char etag[40];
    make_etag(etag, st);
    char head[HEAD_MAX];
    char *p;
    if (not_modified(rq, st, etag)) {
        p = put_validators(put_start(head, 304), st, etag);
        p = put_end(p, rq);
        return asyncio_stream_write(c->s, head, (size_t)(p - head));
    }
    unsigned long long size = (unsigned long long)st->st_size, first = 0, count = size;
    int status = 200;
    if (!rq->head && rq->range != HTTP_RANGE_NONE && range_applies(rq, st, etag))
        status = select_range(rq, size, &first, &count);
    if (status == 416)
        return send_unsatisfiable(c->s, rq, size);
    p = put_start(head, status);
    p = PUT(p, "Content-Type: ");
    p = put_str(p, content_type(path));
    p = PUT(p, "\r\n");
    p = put_length(p, count);
    p = put_validators(p, st, etag);
    p = PUT(p, "Accept-Ranges: bytes\r\n");
    if (status == 206) {
        p = PUT(p, "Content-Range: bytes ");
        p = put_num(p, first);
        *p++ = '-';
        p = put_num(p, first + count - 1);
        *p++ = '/';
        p = put_num(p, size);
        p = PUT(p, "\r\n");
    }
    p = put_end(p, rq);
    if (rq->head || count == 0)
        return asyncio_stream_write(c->s, head, (size_t)(p - head));
    return send_body(c, path, fd, first, count, head, (size_t)(p - head));
}

/* Open path of DIR and answer with it if it is a regular file; its
 * directory's index if it is a directory and index is true. */
static int send_path(struct conn *c, const struct http_request *rq, const char *path, bool index)
{
    int fd = open_in_dir(c->w->sv->dirfd, path);
    if (fd < 0)
        return send_status(c->s, rq, open_status(-fd));
    struct stat st;
    int rc;
    if (fstat(fd, &st) < 0) {
        rc = send_status(c->s, rq, 500);
    } else if (S_ISREG(st.st_mode)) {
        rc = send_regular(c, rq, path, fd, &st);
    } else if (S_ISDIR(st.st_mode) && index) {
        size_t len = strlen(path);
        if (path[len - 1] != '/') {
            rc = send_slash_redirect(c->s, rq);
        } else {
            char file[FILE_PATH_MAX];
            memcpy(file, path, len);
            memcpy(file + len, "index.html", sizeof "index.html");
            rc = send_path(c, rq, file, false);
        }
    } else {
        rc = send_status(c->s, rq, 404);
    }
    close(fd);
    return rc;
}

/* ---- connections -------------------------------------------------------- */

/*
 * Wait for more of a request head: the deadline changes with the phase
 * (see enum phase), not with each read. partial: some of the head is
 * there. Bytes, 0 at the end, or an error (-ETIMEDOUT).
 */
static ssize_t more_head(struct conn *c, bool partial)
{
    const struct server *sv = c->w->sv;
    if (partial && c->phase != HEAD) {
        if (c->phase != FIRST)
            deadline_in(c, sv->header_timeout);
        c->phase = HEAD;
    } else if (!partial && c->phase == BUSY) {
        deadline_in(c, sv->keepalive_timeout);
        c->phase = IDLE;
    }
    return asyncio_stream_fill(c->s);
}

/* Read and drop n bytes of a request body, all within --header-timeout
 * (nothing here takes a body: no reason to wait long for one): 0, or how
 * the connection ended. */
static int skip_body(struct conn *c, unsigned long long n)
{
    deadline_in(c, c->w->sv->header_timeout);
    for (;;) {
        size_t have = asyncio_stream_peek(c->s, NULL);
        size_t k = n < have ? (size_t)n : have;
        asyncio_stream_consume(c->s, k);
        n -= k;
        if (!n)
            return 0;
        ssize_t r = asyncio_stream_fill(c->s);
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
static int linger(asyncio_stream_t *s, asyncio_timeout_t *timer)
{
    int rc = asyncio_stream_write_eof(s);
    if (rc < 0)
        return rc;
    asyncio_timeout_reschedule(timer, asyncio_loop_time() + LINGER_TIMEOUT);
    for (;;) {
        asyncio_stream_consume(s, asyncio_stream_peek(s, NULL));
        ssize_t r = asyncio_stream_fill(s);
        if (r <= 0)
            return (int)r;
    }
}

static int answer(struct conn *c, const struct http_request *rq)
{
    if (rq->status)
        return send_status(c->s, rq, rq->status);
    if (rq->root)
        return send_small(c->s, rq, 200, NULL, hello, sizeof hello - 1);
    if (c->w->sv->dirfd < 0)
        return send_status(c->s, rq, 404);
    return send_path(c, rq, rq->path, true);
}

static int serve(struct conn *c)
{
    asyncio_stream_t *s = c->s;
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
            ssize_t got = more_head(c, n > used);
            if (got <= 0)
                return (int)got; /* the end, or an error */
            continue;
        }
        c->phase = BUSY;
        int rc = answer(c, &rq);
        if (rc == 0 && asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER) {
            /* A client that pipelines without reading waits here. */
            deadline_in(c, c->w->sv->io_timeout);
            rc = asyncio_stream_drain(s);
        }
        if (rc < 0)
            return rc;
        if (!rq.keep_alive) /* always after HTTP_PARSE_ERROR */
            return linger(s, &c->timer);
        if (rq.body && (rc = skip_body(c, rq.body)) < 0)
            return rc;
    }
}

/* Over --max-connections: a 503 at once, then close (what the client sent
 * is read and dropped meanwhile, as in linger()). */
static int refuse(asyncio_stream_t *s)
{
    asyncio_timeout_t timer;
    int rc = asyncio_timeout_enter(&timer, LINGER_TIMEOUT);
    if (rc < 0)
        return rc;
    if ((rc = send_status(s, &closing, 503)) == 0)
        rc = linger(s, &timer);
    asyncio_timeout_exit(&timer);
    return rc;
}

static int on_connection(asyncio_stream_t *s, void *arg)
{
    struct worker *w = arg;
    int rc;
    if (w->active >= w->sv->max_connections) {
        rc = refuse(s);
    } else {
        w->active++;
        w->connections++;
        struct conn c = {.s = s, .w = w, .phase = FIRST};
        if ((rc = asyncio_timeout_enter(&c.timer, w->sv->header_timeout)) == 0) {
            rc = serve(&c);
            /* Part of a head, and its time is up: 408, then close. */
            if (rc == -ETIMEDOUT && c.phase == HEAD && (rc = send_status(s, &closing, 408)) == 0)
                rc = linger(s, &c.timer);
            asyncio_timeout_exit(&c.timer);
        }
        w->active--;
    }
    /* The ordinary ends of a connection: the client left or went quiet, or
     * the server closed it; with TLS, also a client that broke the protocol
     * (or left without close_notify: -ECONNRESET). -EIO: said already. */
    if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF || rc == -EIO ||
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
    asyncio_server_options_t opts = {.reuse_port = sv->nworkers > 1,
                                     .tls = sv->tls,
                                     .tls_handshake_timeout = sv->header_timeout};
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

/* Seconds, more than 0 and at most a year (a fraction allowed), or -1. */
static double parse_seconds(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || *s < '0' || *s > '9' || !(v > 0 && v <= 31536000))
        return -1;
    return v;
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

static int usage(void)
{
    fprintf(stderr,
            "usage: http_server PORT [DIR] [--host HOST] [--workers N (1-%d)] [--tls CERT KEY]\n"
            "                   [--header-timeout SECONDS (%g)] [--keepalive-timeout SECONDS (%g)]\n"
            "                   [--io-timeout SECONDS (%g)] [--max-connections N (%d)]\n",
            MAX_WORKERS, HEADER_TIMEOUT, KEEPALIVE_TIMEOUT, IO_TIMEOUT, MAX_CONNECTIONS);
    return 2;
}

/* The options and arguments into sv, *dir, *cert and *key: false if they
 * are not a valid command line. */
static bool parse_args(int argc, char **argv, struct server *sv, const char **dir,
                       const char **cert, const char **key)
{
    const char *args[2];
    int nargs = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--host") == 0)
            bad = !val || !*(sv->host = val);
        else if (strcmp(opt, "--workers") == 0)
            bad = !val || (sv->nworkers = parse_number(val, MAX_WORKERS)) < 1;
        else if (strcmp(opt, "--max-connections") == 0)
            bad = !val || (sv->max_connections = parse_number(val, 1000000)) < 1;
        else if (strcmp(opt, "--header-timeout") == 0)
            bad = !val || (sv->header_timeout = parse_seconds(val)) < 0;
        else if (strcmp(opt, "--keepalive-timeout") == 0)
            bad = !val || (sv->keepalive_timeout = parse_seconds(val)) < 0;
        else if (strcmp(opt, "--io-timeout") == 0)
            bad = !val || (sv->io_timeout = parse_seconds(val)) < 0;
        else if (strcmp(opt, "--tls") == 0)
            bad = i + 2 >= argc || !*(*cert = argv[i + 1]) || !*(*key = argv[i + 2]);
        else if ((opt[0] == '-' && opt[1]) || nargs == 2)
            bad = true;
        else
            args[nargs++] = opt;
        if (strcmp(opt, "--tls") == 0)
            i += 2;
        else if (opt[0] == '-' && opt[1])
            i++; /* the option's value */
    }
    if (bad || nargs == 0 || (sv->port = parse_number(args[0], 65535)) < 0)
        return false;
    *dir = nargs == 2 ? args[1] : NULL;
    return true;
}

int main(int argc, char **argv)
{
    struct server sv = {.host = "127.0.0.1",
                        .port = -1,
                        .dirfd = -1,
                        .nworkers = 1,
                        .header_timeout = HEADER_TIMEOUT,
                        .keepalive_timeout = KEEPALIVE_TIMEOUT,
                        .io_timeout = IO_TIMEOUT,
                        .max_connections = MAX_CONNECTIONS};
    const char *dir = NULL, *cert = NULL, *key = NULL;
    if (!parse_args(argc, argv, &sv, &dir, &cert, &key))
        return usage();
    int status;
    if (cert && (status = tls_context(&sv, cert, key)) != 0)
        return status;
    if (dir && (sv.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "http_server: %s: %s\n", dir, strerror(errno));
#ifdef ASYNCIO_HAVE_TLS
        asyncio_tls_context_unref(sv.tls);
#endif
        return 1;
    }
    /* A server ignores SIGPIPE, as nginx does (and CPython at start-up):
     * the library's calls get -EPIPE either way, and sendfile, which has
     * no MSG_NOSIGNAL, then needs no guard around its calls. */
    signal(SIGPIPE, SIG_IGN);
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
