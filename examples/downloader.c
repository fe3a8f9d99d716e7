/*
 * downloader: fetch every URL given at the same time, one task each, with
 * the library's own HTTP/1.1 client code, and say how many bytes each one
 * had (asyncio's classic "asynchronous downloader").
 *
 *     downloader [--cacert FILE] URL...   URL: http[s]://host[:port][/path]
 *     downloader http://127.0.0.1:8080/ https://localhost:8443/big.bin
 *
 * It shows a task group whose children report their own failures (so that
 * one failing download does not cancel the others), asyncio_open_connection
 * with a connect timeout, a timeout scope around a whole download, and
 * reading a response line by line and then by Content-Length, chunks
 * (Transfer-Encoding: chunked) or until the end of the stream.
 *
 * https:// URLs go over TLS (asyncio's ssl=, <asyncio/tls.h>) with one
 * client context for all of them: the server's certificate must verify
 * against the system's CA store, or with --cacert against the CA
 * certificates in FILE (PEM) instead, and name the URL's host. The
 * stream's calls are the same as for http://. TLS is there when the
 * program was built with libasyncio-tls (OpenSSL 3); without it, each
 * https:// URL fails with "https is not available in this build".
 *
 * One line per URL as it completes: "URL: N bytes" (N counts the body),
 * "URL: HTTP STATUS" for an answer other than 2xx (redirects are not
 * followed), or "URL: error: REASON" (for TLS, with OpenSSL's reason:
 * "certificate verify failed: unable to get local issuer certificate");
 * a URL that cannot be fetched at all (another scheme, a bad port...) says
 * so first. Then "total: K bytes from M URLs in T s" over the M URLs that
 * succeeded. Exit status 0 if every download succeeded, 1 if not, 2 for a
 * bad command line (no URL, an unknown option, a --cacert FILE that cannot
 * be used).
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>
#ifdef ASYNCIO_HAVE_TLS /* defined when built with libasyncio-tls */
#include <asyncio/tls.h>
#endif

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define CONNECT_TIMEOUT 5.0   /* seconds for each address of a host */
#define DOWNLOAD_TIMEOUT 10.0 /* seconds for a whole download */
#define LINE_CAP 8192         /* the longest status or header line taken */
#define BODY_CHUNK 16384      /* bytes read at a time (and dropped) */

#ifndef ASYNCIO_HAVE_TLS
#define NO_TLS "https is not available in this build (libasyncio-tls was not built)"
#endif

struct download {
    const char *url;
    const char *bad;       /* why the URL cannot be fetched, or NULL */
    bool https;
    asyncio_tls_context_t *tls; /* the client context, for https */
    char host[256];        /* without the brackets of an IPv6 address */
    int port;
    const char *authority; /* host[:port] as written, for the Host header */
    size_t authority_len;
    const char *path;      /* from the first '/' on, without a #fragment */
    size_t path_len;
    int status;            /* the HTTP status */
    int err;               /* 0, or why the download failed */
    unsigned long long bytes;
    char tls_why[256];     /* why TLS failed, as OpenSSL says, or "" */
};

/* ---- URLs ------------------------------------------------------------- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* The length of scheme ("http://") if url starts with it, else 0. */
static size_t has_scheme(const char *url, const char *scheme)
{
    size_t i = 0;
    for (; scheme[i]; i++)
        if (!url[i] || (url[i] | 0x20) != scheme[i]) /* the scheme's case does not matter */
            return 0;
    return i;
}

/* Split an http[s]://host[:port][/path] URL into d: NULL, or what is
 * wrong. */
static const char *parse_url(const char *url, struct download *d)
{
    size_t n = has_scheme(url, "http://");
    if (!n && (n = has_scheme(url, "https://")) != 0)
        d->https = true;
    if (!n)
        return "only http:// and https:// URLs are supported";
    const char *p = url + n, *host = p, *host_end;
    d->authority = p;
    if (*p == '[') { /* an IPv6 address */
        host = ++p;
        while (*p && *p != ']' && (strchr("0123456789abcdefABCDEF:.", *p)))
            p++;
        if (*p != ']')
            return "bad IPv6 address";
        host_end = p++;
    } else {
        while (host_char(*p))
            p++;
        host_end = p;
    }
    size_t hlen = (size_t)(host_end - host);
    if (!hlen || hlen >= sizeof d->host)
        return hlen ? "host name too long" : "no host";
    memcpy(d->host, host, hlen);
    d->host[hlen] = '\0';
    d->port = d->https ? 443 : 80;
    if (*p == ':') {
        const char *digits = ++p;
        long port = 0;
        while (*p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535)
            return "bad port";
        d->port = (int)port;
    }
    d->authority_len = (size_t)(p - d->authority);
    if (*p && *p != '/')
        return *p == '@' ? "user names are not supported" : "bad character after the host";
    d->path = *p ? p : "/";
    d->path_len = strcspn(d->path, "#");
    for (size_t i = 0; i < d->path_len; i++)
        if ((unsigned char)d->path[i] <= ' ' || d->path[i] == 0x7f)
            return "spaces and control characters must be percent-encoded in the path";
    return NULL;
}

/* ---- HTTP ------------------------------------------------------------- */

/* Read one line into buf, without its end ("\r\n" or "\n"): its length, or
 * -EPROTO if the stream ended first, or the stream's error (-EMSGSIZE for
 * a line over LINE_CAP). */
static ssize_t read_line(asyncio_stream_t *s, char *buf)
{
    ssize_t n = asyncio_stream_readline(s, buf, LINE_CAP - 1);
    if (n < 0)
        return n;
    if (n == 0 || buf[n - 1] != '\n')
        return -EPROTO;
    n--;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return n;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The header line's name is `name` (case-insensitively): its trimmed value,
 * else NULL. */
static const char *header_value(const char *line, const char *name)
{
    size_t i = 0;
    for (; name[i]; i++)
        if (lower((unsigned char)line[i]) != name[i])
            return NULL;
    if (line[i] != ':')
        return NULL;
    const char *v = line + i + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return v;
}

/* A number in base (10 or 16) at the start of s, ending where end says:
 * 0 and the value, or -EPROTO. */
static int parse_number(const char *s, int base, const char **end, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *p = s;
    for (;; p++) {
        int c = lower((unsigned char)*p);
        int digit = c >= '0' && c <= '9' ? c - '0' : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            break;
        if (v >> 56)
            return -EPROTO;
        v = v * (unsigned)base + (unsigned)digit;
    }
    if (p == s)
        return -EPROTO;
    *end = p;
    *out = v;
    return 0;
}

/* Read and count n bytes of body. */
static int read_bytes(asyncio_stream_t *s, unsigned long long n, struct download *d)
{
    char buf[BODY_CHUNK];
    while (n) {
        ssize_t r = asyncio_stream_read(s, buf, n < sizeof buf ? (size_t)n : sizeof buf);
        if (r <= 0)
            return r < 0 ? (int)r : -EPROTO; /* ended before Content-Length */
        d->bytes += (unsigned long long)r;
        n -= (unsigned long long)r;
    }
    return 0;
}

static int read_until_eof(asyncio_stream_t *s, struct download *d)
{
    char buf[BODY_CHUNK];
    ssize_t r;
    while ((r = asyncio_stream_read(s, buf, sizeof buf)) > 0)
        d->bytes += (unsigned long long)r;
    return (int)r;
}

/* A chunked body: size line, data, CRLF, ..., a 0 size line, trailers. */
static int read_chunked(asyncio_stream_t *s, struct download *d, char *line)
{
    for (;;) {
        ssize_t n = read_line(s, line);
        if (n < 0)
            return (int)n;
        const char *end;
        unsigned long long size;
        if (parse_number(line, 16, &end, &size) < 0 || (*end && *end != ';' && *end != ' ' && *end != '\t'))
            return -EPROTO;
        if (size == 0)
            break;
        int rc = read_bytes(s, size, d);
        if (rc < 0)
            return rc;
        if ((n = read_line(s, line)) != 0)
            return n < 0 ? (int)n : -EPROTO;
    }
    ssize_t n;
    while ((n = read_line(s, line)) > 0) /* trailer fields, dropped */
        ;
    return (int)n;
}

static int send_request(asyncio_stream_t *s, const struct download *d)
{
    static const char version[] = " HTTP/1.1\r\nHost: ";
    static const char rest[] = "\r\nUser-Agent: libasyncio-downloader\r\nAccept: */*\r\n"
                               "Connection: close\r\n\r\n";
    struct iovec iov[] = {
        {(void *)"GET ", 4},
        {(void *)d->path, d->path_len},
        {(void *)version, sizeof version - 1},
        {(void *)d->authority, d->authority_len},
        {(void *)rest, sizeof rest - 1},
    };
    /* Queued: it goes out when the task first waits for the answer. */
    return asyncio_stream_writev(s, iov, 5);
}

/* The status line and headers, then the body: 0 or a negative errno. */
static int exchange(asyncio_stream_t *s, struct download *d)
{
    char line[LINE_CAP];
    int rc = send_request(s, d);
    if (rc < 0)
        return rc;
    bool chunked, has_length;
    unsigned long long length;
    do { /* 1xx answers are interim: the real one follows */
        ssize_t n = read_line(s, line);
        if (n < 0)
            return (int)n;
        const char *end;
        unsigned long long status;
        if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
            parse_number(line + 9, 10, &end, &status) < 0 || end != line + 12 ||
            (*end && *end != ' ') || status < 100 || status > 599 || status == 101)
            return -EPROTO;
        d->status = (int)status;
        chunked = has_length = false;
        length = 0;
        while ((n = read_line(s, line)) > 0) {
            const char *v;
            if ((v = header_value(line, "content-length")) != NULL) {
                unsigned long long len;
                if (parse_number(v, 10, &end, &len) < 0 || (*end && *end != ' ' && *end != '\t') ||
                    (has_length && len != length))
                    return -EPROTO;
                has_length = true;
                length = len;
            } else if ((v = header_value(line, "transfer-encoding")) != NULL) {
                size_t vlen = strlen(v);
                while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                    vlen--;
                chunked = vlen >= 7;
                for (size_t i = 0; chunked && i < 7; i++)
                    chunked = lower((unsigned char)v[vlen - 7 + i]) == "chunked"[i];
                if (!chunked) /* another coding last: the body runs to the end */
                    has_length = false;
            }
        }
        if (n < 0)
            return (int)n;
    } while (d->status < 200);
    if (d->status > 299 || d->status == 204)
        return 0; /* no body, or not the one asked for */
    if (chunked)
        return read_chunked(s, d, line);
    return has_length ? read_bytes(s, length, d) : read_until_eof(s, d);
}

static int download(struct download *d)
{
    asyncio_connection_options_t opts = {.connect_timeout = CONNECT_TIMEOUT};
    if (d->https) {
        /* The handshake is part of the connection: the stream comes back
         * verified (the host name checked against the certificate is the
         * URL's, as server_hostname is left NULL), or not at all, with
         * OpenSSL's reason in tls_why. */
        opts.tls = d->tls;
        opts.tls_error = d->tls_why;
        opts.tls_error_size = sizeof d->tls_why;
    }
    asyncio_stream_t *s;
    int rc = asyncio_open_connection(&s, d->host, d->port, &opts);
    if (rc < 0)
        return rc;
    rc = exchange(s, d);
#ifdef ASYNCIO_HAVE_TLS
    const char *why;
    if (rc < 0 && d->https && (why = asyncio_tls_error(s)) != NULL) /* a bad record, no close_notify... */
        snprintf(d->tls_why, sizeof d->tls_why, "%s", why);
#endif
    asyncio_stream_close(s); /* nothing is left to send */
    return rc;
}

/* ---- tasks -------------------------------------------------------------- */

static void report(const struct download *d)
{
    if (d->bad) {
        printf("%s: error: %s\n", d->url, d->bad);
    } else if (d->err == -ENOENT) { /* from the name lookup: strerror() would say "No such file" */
        printf("%s: error: unknown host\n", d->url);
    } else if (d->err) {
        const char *what = strerror(-d->err);
#ifdef ASYNCIO_HAVE_TLS
        if (d->err == -ASYNCIO_ECERT)
            what = "certificate verify failed";
#endif
        /* With OpenSSL's reason, unless it says the same in its own words. */
        size_t n = strlen(what);
        if (!d->tls_why[0])
            printf("%s: error: %s\n", d->url, what);
        else if (strncmp(d->tls_why, what, n) == 0)
            printf("%s: error: %s\n", d->url, d->tls_why);
        else
            printf("%s: error: %s: %s\n", d->url, what, d->tls_why);
    } else if (d->status < 200 || d->status > 299) {
        printf("%s: HTTP %d\n", d->url, d->status);
    } else {
        printf("%s: %llu bytes\n", d->url, d->bytes);
    }
}

static bool succeeded(const struct download *d)
{
    return !d->bad && !d->err && d->status >= 200 && d->status <= 299;
}

/* One download, within DOWNLOAD_TIMEOUT. It reports its own failure and
 * returns 0, so that the group does not cancel the other downloads. */
static int fetch(void *arg, void **result)
{
    (void)result;
    struct download *d = arg;
    asyncio_timeout_t scope;
    int rc = asyncio_timeout_enter(&scope, DOWNLOAD_TIMEOUT);
    if (rc == 0) {
        rc = download(d);
        if (asyncio_timeout_exit(&scope) == -ETIMEDOUT)
            rc = -ETIMEDOUT;
    }
    d->err = rc < 0 ? rc : 0;
    report(d);
    return 0;
}

struct job {
    size_t n;
    struct download *downloads;
};

static int main_task(void *arg, void **result)
{
    (void)result;
    struct job *job = arg;
    double t0 = asyncio_loop_time();
    for (size_t i = 0; i < job->n; i++) /* the URLs that cannot be fetched, first */
        if (job->downloads[i].bad)
            report(&job->downloads[i]);
    asyncio_taskgroup_t group;
    int rc = asyncio_taskgroup_enter(&group);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < job->n; i++) {
        struct download *d = &job->downloads[i];
        if (d->bad)
            continue;
        if ((rc = asyncio_taskgroup_create_task(&group, NULL, fetch, d, NULL)) < 0) {
            d->err = rc;
            report(d);
        }
    }
    rc = asyncio_taskgroup_exit(&group, 0);
    unsigned long long total = 0;
    size_t ok = 0;
    for (size_t i = 0; i < job->n; i++) {
        if (succeeded(&job->downloads[i])) {
            total += job->downloads[i].bytes;
            ok++;
        }
    }
    printf("total: %llu bytes from %zu URLs in %.3f s\n", total, ok, asyncio_loop_time() - t0);
    return rc < 0 ? rc : ok == job->n ? 0 : 1;
}

#ifdef ASYNCIO_HAVE_TLS
/* The client context of every https:// URL (ssl.create_default_context()):
 * the system's CA store, or the CA certificates of cafile. NULL, having
 * said why, if it cannot be made; *status is then the exit status. */
static asyncio_tls_context_t *client_context(const char *cafile, int *status)
{
    asyncio_tls_context_t *ctx;
    int rc = asyncio_tls_context_new(&ctx, ASYNCIO_TLS_CLIENT);
    if (rc < 0) {
        fprintf(stderr, "downloader: cannot make a TLS context: %s\n", strerror(-rc));
        *status = 1;
        return NULL;
    }
    if (cafile && (rc = asyncio_tls_context_load_verify_locations(ctx, cafile, NULL)) < 0) {
        fprintf(stderr, "downloader: --cacert %s: %s\n", cafile,
                rc == -EPROTO ? "no CA certificate in it (expected PEM)" : strerror(-rc));
        asyncio_tls_context_unref(ctx);
        *status = 2;
        return NULL;
    }
    /* Offered to the server (ALPN): the only protocol spoken here. */
    static const char *const alpn[] = {"http/1.1"};
    if ((rc = asyncio_tls_context_set_alpn_protocols(ctx, alpn, 1)) < 0) {
        fprintf(stderr, "downloader: cannot set ALPN: %s\n", strerror(-rc));
        asyncio_tls_context_unref(ctx);
        *status = 1;
        return NULL;
    }
    return ctx;
}
#endif

static int usage(void)
{
    fprintf(stderr, "usage: downloader [--cacert FILE] URL...   "
                    "(URL: http://host[:port][/path] or https://...)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *cafile = NULL;
    struct job job = {0, calloc((size_t)argc, sizeof(struct download))};
    if (!job.downloads) {
        fprintf(stderr, "downloader: %s\n", strerror(ENOMEM));
        return 1;
    }
    bool https = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc && argv[i + 1][0]) {
            cafile = argv[++i];
        } else if (argv[i][0] == '-') {
            free(job.downloads);
            return usage();
        } else {
            struct download *d = &job.downloads[job.n++];
            d->url = argv[i];
            d->bad = parse_url(argv[i], d);
#ifndef ASYNCIO_HAVE_TLS
            if (!d->bad && d->https)
                d->bad = NO_TLS;
#endif
            https |= !d->bad && d->https;
        }
    }
    if (job.n == 0) {
        free(job.downloads);
        return usage();
    }
    asyncio_tls_context_t *tls = NULL;
#ifdef ASYNCIO_HAVE_TLS
    int status = 1;
    if ((https || cafile) && !(tls = client_context(cafile, &status))) {
        free(job.downloads);
        return status;
    }
#else
    (void)https;
    (void)cafile; /* without TLS, nothing to verify */
#endif
    for (size_t i = 0; i < job.n; i++)
        job.downloads[i].tls = tls;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = asyncio_run(main_task, &job, NULL);
#ifdef ASYNCIO_HAVE_TLS
    asyncio_tls_context_unref(tls);
#endif
    free(job.downloads);
    if (rc < 0)
        fprintf(stderr, "downloader: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}
