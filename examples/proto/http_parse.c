/* http_parse: the request-head parser of examples/http_server.c (see
 * http_parse.h). */
#include "http_parse.h"

#include <string.h>

/* Where "\r\n\r\n" starts in p[0, n), or NULL. */
static const char *find_head_end(const char *p, size_t n)
{
    const char *end = p + n;
    for (const char *c = p; (c = memchr(c, '\r', (size_t)(end - c))) != NULL; c++) {
        if (end - c < 4)
            return NULL;
        if (c[1] == '\n' && c[2] == '\r' && c[3] == '\n')
            return c;
    }
    return NULL;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* s[0, n) equals the lower-case word, whatever the case of s. */
static bool ieq(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++)
        if (lower((unsigned char)s[i]) != word[i])
            return false;
    return i == n && !word[i];
}

/* A tchar of RFC 9110: what methods and header names are made of. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return n > 0;
}

static int hex(int c)
{
    c = lower(c);
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the target's path into rq->path: 0, or the status to answer. A
 * ".." segment, found after decoding so that "%2e%2e" and "..%2f" are
 * caught as well, could name something outside DIR. */
static int parse_target(const char *t, size_t n, struct http_request *rq)
{
    if (n > 7 && ieq(t, 7, "http://")) { /* absolute-form: drop the authority */
        const char *slash = memchr(t + 7, '/', n - 7);
        n = slash ? n - (size_t)(slash - t) : 1;
        t = slash ? slash : "/";
    }
    if (!n || t[0] != '/')
        return 400;
    const char *query = memchr(t, '?', n);
    if (query)
        n = (size_t)(query - t);
    rq->root = n == 1;
    size_t len = 0;
    for (size_t i = 1; i < n; i++) {
        int c = (unsigned char)t[i];
        if (c <= ' ' || c == 0x7f)
            return 400;
        if (c == '%') {
            int hi = i + 2 < n ? hex(t[i + 1]) : -1, lo = hi >= 0 ? hex(t[i + 2]) : -1;
            if (lo < 0)
                return 400;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return 400;
        if (c == '/' && len == 0)
            continue; /* openat() would take "//etc/passwd" as an absolute path */
        if (len == sizeof rq->path - 1)
            return 404;
        rq->path[len++] = (char)c;
    }
    rq->path[len] = '\0';
    for (const char *seg = rq->path;; seg++) {
        const char *slash = strchr(seg, '/');
        size_t seglen = slash ? (size_t)(slash - seg) : strlen(seg);
        if (seglen == 2 && seg[0] == '.' && seg[1] == '.')
            return 404;
        if (!slash)
            return 0;
        seg = slash;
    }
}

/* The tokens of a Connection header. */
static void parse_connection(const char *v, size_t n, struct http_request *rq)
{
    bool close_seen = false;
    while (n) {
        const char *comma = memchr(v, ',', n);
        size_t len = comma ? (size_t)(comma - v) : n;
        size_t a = 0, b = len;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (ieq(v + a, b - a, "close"))
            close_seen = true;
        else if (ieq(v + a, b - a, "keep-alive"))
            rq->keep_alive = true;
        if (!comma)
            break;
        n -= len + 1;
        v = comma + 1;
    }
    if (close_seen)
        rq->keep_alive = false;
}

static void request_reset(struct http_request *rq)
{
    rq->status = 0;
    rq->minor = 1;
    rq->head = false;
    rq->keep_alive = false;
    rq->root = false;
    rq->body = 0;
    rq->path[0] = '\0';
}

/*
 * Parse the request head p[0, n) (it ends with "\r\n\r\n") into rq: 0 to
 * serve it, or the status to answer instead. Whatever comes back, rq is
 * filled in enough to answer: on a 400 or 501, keep_alive is false.
 */
static int parse_request(const char *p, size_t n, struct http_request *rq)
{
    request_reset(rq);

    const char *end = p + n, *eol = memchr(p, '\r', n); /* there is one */
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (eol[1] != '\n' || !sp2 || sp1 == p || sp2 == sp1 + 1 || eol - sp2 - 1 != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        goto bad;
    rq->minor = sp2[8] - '0';
    rq->keep_alive = rq->minor == 1;
    size_t mlen = (size_t)(sp1 - p);
    bool get = mlen == 3 && memcmp(p, "GET", 3) == 0;
    rq->head = mlen == 4 && memcmp(p, "HEAD", 4) == 0;
    if (!get && !rq->head && !is_token(p, mlen))
        goto bad;

    bool has_length = false, chunked = false;
    for (const char *line = eol + 2; line < end - 2; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(end - line));
        /* A bare CR or LF would let this line be read differently by
         * another parser; a line without a name would be obsolete folding. */
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (eol[1] != '\n' || memchr(line, '\n', (size_t)(eol - line)) || !colon ||
            !is_token(line, (size_t)(colon - line)))
            goto bad;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *vend = eol;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - v);
        if (nlen == 14 && ieq(line, nlen, "content-length")) {
            unsigned long long len = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || len > 999999999999999ULL)
                    goto bad;
                len = len * 10 + (unsigned)(v[i] - '0');
            }
            if (!vlen || (has_length && len != rq->body))
                goto bad;
            has_length = true;
            rq->body = len;
        } else if (nlen == 17 && ieq(line, nlen, "transfer-encoding")) {
            chunked = true;
        } else if (nlen == 10 && ieq(line, nlen, "connection")) {
            parse_connection(v, vlen, rq);
        }
    }
    if (chunked) {
        rq->keep_alive = false;
        return 501;
    }
    if (!get && !rq->head)
        return 405;
    int status = parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), rq);
    if (status != 400)
        return status;
bad:
    rq->keep_alive = false;
    return 400;
}

void http_parser_init(struct http_parser *ps)
{
    ps->scanned = 0;
}

enum http_parse_result http_parse_head(struct http_parser *ps, const char *data, size_t n,
                                       size_t limit, struct http_request *rq, size_t *used)
{
    /* Empty lines before a request are allowed (RFC 9112, 2.2). */
    size_t skip = 0;
    while (n - skip >= 2 && data[skip] == '\r' && data[skip + 1] == '\n')
        skip += 2;
    ps->scanned = ps->scanned > skip ? ps->scanned - skip : 0;
    data += skip;
    n -= skip;
    *used = skip;

    size_t from = ps->scanned > 3 ? ps->scanned - 3 : 0; /* "\r\n\r\n" may straddle */
    const char *end = n > from ? find_head_end(data + from, n - from) : NULL;
    if (!end) {
        ps->scanned = n;
        if (n < limit)
            return HTTP_PARSE_MORE;
        /* The head does not fit in the stream's limit. */
        request_reset(rq);
        rq->status = 400;
        return HTTP_PARSE_ERROR;
    }
    size_t len = (size_t)(end - data) + 4;
    ps->scanned = 0;
    *used += len;
    rq->status = parse_request(data, len, rq);
    return rq->status == 400 || rq->status == 501 ? HTTP_PARSE_ERROR : HTTP_PARSE_REQUEST;
}
