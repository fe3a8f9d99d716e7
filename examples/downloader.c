/*
 * downloader: fetch every URL given at the same time, one task each, with
 * the library's own HTTP/1.1 client code, and say how many bytes each one
 * had (asyncio's classic "asynchronous downloader").
 *
 *     downloader URL...          URL: http://host[:port][/path]
 *     downloader http://127.0.0.1:8080/ http://localhost:8080/big.bin
 *
 * It shows a task group whose children report their own failures (so that
 * one failing download does not cancel the others), asyncio_open_connection
 * with a connect timeout, a timeout scope around a whole download, and
 * reading a response line by line and then by Content-Length, chunks
 * (Transfer-Encoding: chunked) or until the end of the stream.
 *
 * One line per URL as it completes: "URL: N bytes" (N counts the body),
 * "URL: HTTP STATUS" for an answer other than 2xx (redirects are not
 * followed), or "URL: error: REASON"; then "total: K bytes from M URLs in
 * T s" over the M URLs that succeeded. Exit status 0 if every download
 * succeeded, 1 if not, 2 for a bad command line.
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>

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

struct download {
    const char *url;
    char host[256];        /* without the brackets of an IPv6 address */
    int port;
    const char *authority; /* host[:port] as written, for the Host header */
    size_t authority_len;
    const char *path;      /* from the first '/' on, without a #fragment */
    size_t path_len;
    int status;            /* the HTTP status */
    int err;               /* 0, or why the download failed */
    unsigned long long bytes;
};

/* ---- URLs ------------------------------------------------------------- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* Split an http://host[:port][/path] URL into d: NULL, or what is wrong. */
static const char *parse_url(const char *url, struct download *d)
{
    static const char scheme[] = "http://";
    for (size_t i = 0; i < sizeof scheme - 1; i++)
        if (!url[i] || (url[i] | 0x20) != scheme[i]) /* the scheme's case does not matter */
            return "only http:// URLs are supported";
    const char *p = url + sizeof scheme - 1, *host = p, *host_end;
    d->url = url;
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
    d->port = 80;
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
    asyncio_stream_t *s;
    int rc = asyncio_open_connection(&s, d->host, d->port, &opts);
    if (rc < 0)
        return rc;
    rc = exchange(s, d);
    asyncio_stream_close(s); /* nothing is left to send */
    return rc;
}

/* ---- tasks -------------------------------------------------------------- */

static void report(const struct download *d)
{
    if (d->err == -ENOENT) /* from the name lookup: strerror() would say "No such file" */
        printf("%s: error: unknown host\n", d->url);
    else if (d->err)
        printf("%s: error: %s\n", d->url, strerror(-d->err));
    else if (d->status < 200 || d->status > 299)
        printf("%s: HTTP %d\n", d->url, d->status);
    else
        printf("%s: %llu bytes\n", d->url, d->bytes);
}

static bool succeeded(const struct download *d)
{
    return !d->err && d->status >= 200 && d->status <= 299;
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
    asyncio_taskgroup_t group;
    int rc = asyncio_taskgroup_enter(&group);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < job->n; i++) {
        struct download *d = &job->downloads[i];
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

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: downloader URL...   (URL: http://host[:port][/path])\n");
        return 2;
    }
    struct job job = {(size_t)argc - 1, calloc((size_t)argc - 1, sizeof(struct download))};
    if (!job.downloads) {
        fprintf(stderr, "downloader: %s\n", strerror(ENOMEM));
        return 1;
    }
    for (size_t i = 0; i < job.n; i++) {
        const char *why = parse_url(argv[i + 1], &job.downloads[i]);
        if (why) {
            fprintf(stderr, "downloader: %s: %s (expected http://host[:port][/path])\n",
                    argv[i + 1], why);
            free(job.downloads);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = asyncio_run(main_task, &job, NULL);
    free(job.downloads);
    if (rc < 0)
        fprintf(stderr, "downloader: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}
