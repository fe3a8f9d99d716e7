/* http_parse: the request-head parser of examples/http_server.c (see
 * http_parse.h). */
#include "http_parse.h"

#include <string.h>

/* The head's end in data[from, n): where the "\r\n\r\n" that ends it
 * starts; or NULL, with *bare_lf set if a LF without its CR came first.
 * Each LF looks back at the bytes before it, so the search resumes at from
 * (what was searched before) without going over anything twice. */
static const char *find_head_end(const char *data, size_t from, size_t n, bool *bare_lf)
{
    const char *end = data + n;
    for (const char *c = data + from; (c = memchr(c, '\n', (size_t)(end - c))) != NULL; c++) {
        if (c == data || c[-1] != '\r') {
            *bare_lf = true;
            return NULL;
        }
        if (c - data >= 3 && c[-2] == '\n')
            return c - 3;
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

/* A Host value: uri-host [":" port] (RFC 9110, 7.2), empty allowed. The
 * characters of a reg-name, an IPv4 or an IP-literal, and ':'. */
static bool valid_host(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("-._~!$&'()*+,;=:[]%", c))))
            return false;
    }
    return true;
}

/* Decimal digits s[*i, n) into *v: false if there are none; a value over
 * 10^18 stays there (big enough for any file here). */
static bool digits(const char *s, size_t n, size_t *i, unsigned long long *v)
{
    size_t start = *i;
    *v = 0;
    for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++)
        if (*v < 1000000000000000000ULL)
            *v = *v * 10 + (unsigned)(s[*i] - '0');
    return *i > start;
}

/* A Range value (RFC 9110, 14.2): "bytes=" and one range-spec, or several
 * (a list: served whole). Anything else leaves rq->range NONE: a server may
 * ignore a Range it does not understand, and answers 200 with the whole. */
static void parse_range(const char *v, size_t n, struct http_request *rq)
{
    if (n < 6 || !ieq(v, 6, "bytes="))
        return;
    if (memchr(v, ',', n)) {
        rq->range = HTTP_RANGE_SEVERAL;
        return;
    }
    size_t i = 6;
    unsigned long long first = 0, last = HTTP_RANGE_END;
    bool suffix = i < n && v[i] == '-';
    if (!suffix && !digits(v, n, &i, &first))
        return;
    if (i == n || v[i++] != '-')
        return;
    if (i < n && !digits(v, n, &i, &last))
        return;
    if (i != n || (suffix && last == HTTP_RANGE_END) || (!suffix && last < first))
        return;
    rq->range = suffix ? HTTP_RANGE_SUFFIX : HTTP_RANGE_BYTES;
    rq->range_first = first;
    rq->range_last = last;
}

/* Copy a header value into a char[HTTP_TAGS_MAX]: "" if it does not fit. */
static void keep_value(char *to, const char *v, size_t n)
{
    if (n >= HTTP_TAGS_MAX)
        n = 0;
    memcpy(to, v, n);
    to[n] = '\0';
}

/* An If-Range value: an entity-tag (starts with '"' or "W/"), or a date. */
static void parse_if_range(const char *v, size_t n, struct http_request *rq)
{
    rq->has_if_range = true;
    if (n && (v[0] == '"' || (n > 1 && v[0] == 'W' && v[1] == '/')))
        keep_value(rq->if_range_tag, v, n);
    else
        rq->if_range_date = http_parse_date(v, n);
}

static void request_reset(struct http_request *rq)
{
    rq->status = 0;
    rq->minor = 1;
    rq->head = false;
    rq->keep_alive = false;
    rq->root = false;
    rq->body = 0;
    rq->if_modified_since = -1;
    rq->has_if_none_match = false;
    rq->has_if_range = false;
    rq->if_range_date = -1;
    rq->if_none_match[0] = '\0';
    rq->if_range_tag[0] = '\0';
    rq->range = HTTP_RANGE_NONE;
    rq->range_first = rq->range_last = 0;
    rq->path[0] = '\0';
}

/* A field value may hold visible characters, obs-text, SP and HTAB: not a
 * NUL, a CR or any other control byte (RFC 9110, 5.5). */
static bool valid_value(const char *v, const char *end)
{
    for (; v < end; v++) {
        unsigned char c = (unsigned char)*v;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Headers that may come once only: a second one is ignored (Range,
 * If-Modified-Since: RFC 9110 says to) or an error (Host). */
enum { SEEN_HOST = 1, SEEN_RANGE = 2, SEEN_IMS = 4 };

/* One header field, its name line[0, nlen) and its value v[0, vlen), into
 * rq: 0, or 400. */
static int parse_field(const char *line, size_t nlen, const char *v, size_t vlen,
                       struct http_request *rq, unsigned *seen, bool *chunked, bool *has_length)
{
    switch (nlen) {
    case 4:
        if (ieq(line, nlen, "host")) {
            if ((*seen & SEEN_HOST) || !valid_host(v, vlen))
                return 400;
            *seen |= SEEN_HOST;
        }
        break;
    case 5:
        if (ieq(line, nlen, "range")) {
            rq->range = HTTP_RANGE_NONE;
            if (!(*seen & SEEN_RANGE))
                parse_range(v, vlen, rq);
            *seen |= SEEN_RANGE;
        }
        break;
    case 8:
        if (ieq(line, nlen, "if-range"))
            parse_if_range(v, vlen, rq);
        break;
    case 10:
        if (ieq(line, nlen, "connection"))
            parse_connection(v, vlen, rq);
        break;
    case 13:
        if (ieq(line, nlen, "if-none-match")) {
            rq->has_if_none_match = true;
            keep_value(rq->if_none_match, v, vlen);
        }
        break;
    case 14:
        if (ieq(line, nlen, "content-length")) {
            unsigned long long len = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || len > 999999999999999ULL)
                    return 400;
                len = len * 10 + (unsigned)(v[i] - '0');
            }
            if (!vlen || (*has_length && len != rq->body))
                return 400;
            *has_length = true;
            rq->body = len;
        }
        break;
    case 17:
        if (ieq(line, nlen, "transfer-encoding")) {
            *chunked = true;
        } else if (ieq(line, nlen, "if-modified-since")) {
            rq->if_modified_since = *seen & SEEN_IMS ? -1 : http_parse_date(v, vlen);
            *seen |= SEEN_IMS;
        }
        break;
    default:
        break;
    }
    return 0;
}

/*
 * Parse the request head p[0, n) (it ends with "\r\n\r\n", and every LF in
 * it follows a CR) into rq: 0 to serve it, or the status to answer
 * instead. Whatever comes back, rq is filled in enough to answer: on a 400
 * or 501, keep_alive is false.
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
    unsigned seen = 0;
    for (const char *line = eol + 2; line < end - 2; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(end - line));
        /* A bare CR would let this line be read differently by another
         * parser; a line without a name would be obsolete folding. */
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (eol[1] != '\n' || !colon || !is_token(line, (size_t)(colon - line)) ||
            !valid_value(colon + 1, eol))
            goto bad;
        const char *v = colon + 1, *vend = eol;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        if (parse_field(line, (size_t)(colon - line), v, (size_t)(vend - v), rq, &seen, &chunked,
                        &has_length) != 0)
            goto bad;
    }
    if (rq->minor == 1 && !(seen & SEEN_HOST))
        goto bad; /* RFC 9112, 3.2: a 400 */
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

    bool bare_lf = false;
    const char *end = n > ps->scanned ? find_head_end(data, ps->scanned, n, &bare_lf) : NULL;
    if (!end) {
        ps->scanned = n;
        if (n < limit && !bare_lf)
            return HTTP_PARSE_MORE;
        /* A bare LF, or a head that does not fit in the stream's limit. */
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

/* ---- dates and entity-tags ------------------------------------------------ */

/* A cursor over a date being parsed. */
struct cursor {
    const char *p, *end;
};

static bool take(struct cursor *c, char ch)
{
    if (c->p == c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* Exactly ndigits decimal digits. */
static bool take_number(struct cursor *c, int ndigits, int *v)
{
    *v = 0;
    for (int i = 0; i < ndigits; i++, c->p++) {
        if (c->p == c->end || *c->p < '0' || *c->p > '9')
            return false;
        *v = *v * 10 + (*c->p - '0');
    }
    return true;
}

/* A month's name ("Jan"), case-sensitive as RFC 9110 says: 1 to 12, or 0. */
static int take_month(struct cursor *c)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (c->end - c->p < 3)
        return 0;
    for (int m = 0; m < 12; m++)
        if (memcmp(c->p, names + 3 * m, 3) == 0) {
            c->p += 3;
            return m + 1;
        }
    return 0;
}

/* "HH:MM:SS" into seconds of the day, or -1. */
static long take_clock(struct cursor *c)
{
    int h, m, s;
    if (!take_number(c, 2, &h) || !take(c, ':') || !take_number(c, 2, &m) || !take(c, ':') ||
        !take_number(c, 2, &s) || h > 23 || m > 59 || s > 60)
        return -1;
    return h * 3600L + m * 60L + (s == 60 ? 59 : s);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), y from 1970. */
static long long days_since_epoch(int y, int m, int d)
{
    y -= m <= 2;
    long long era = y / 400, yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static bool valid_day(int y, int m, int d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d >= 1 && d <= days[m - 1] + (m == 2 && leap);
}

long long http_parse_date(const char *s, size_t n)
{
    struct cursor c = {s, s + n};
    while (c.p < c.end && ((*c.p >= 'a' && *c.p <= 'z') || (*c.p >= 'A' && *c.p <= 'Z')))
        c.p++; /* the day's name, not checked */
    if (c.p - s < 3)
        return -1;
    int day, month, year;
    long secs;
    if (take(&c, ',')) {
        if (!take(&c, ' ') || !take_number(&c, 2, &day))
            return -1;
        if (take(&c, ' ')) { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            if (!(month = take_month(&c)) || !take(&c, ' ') || !take_number(&c, 4, &year))
                return -1;
        } else if (take(&c, '-')) { /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
            if (!(month = take_month(&c)) || !take(&c, '-') || !take_number(&c, 2, &year))
                return -1;
            year += year < 70 ? 2000 : 1900;
        } else {
            return -1;
        }
        if (!take(&c, ' ') || (secs = take_clock(&c)) < 0 || c.end - c.p != 4 ||
            memcmp(c.p, " GMT", 4) != 0)
            return -1;
    } else { /* asctime: Sun Nov  6 08:49:37 1994 */
        if (!take(&c, ' ') || !(month = take_month(&c)) || !take(&c, ' '))
            return -1;
        if (!(take(&c, ' ') ? take_number(&c, 1, &day) : take_number(&c, 2, &day)) ||
            !take(&c, ' ') || (secs = take_clock(&c)) < 0 || !take(&c, ' ') ||
            !take_number(&c, 4, &year) || c.p != c.end)
            return -1;
    }
    if (year < 1970 || !valid_day(year, month, day))
        return -1;
    return days_since_epoch(year, month, day) * 86400 + secs;
}

/* The opaque part of an entity-tag at s (after W/, with its quotes) and
 * its length, or 0 if s does not start with one. */
static size_t opaque_tag(const char **s)
{
    if ((*s)[0] == 'W' && (*s)[1] == '/')
        *s += 2;
    if (**s != '"')
        return 0;
    const char *close = strchr(*s + 1, '"');
    return close ? (size_t)(close - *s) + 1 : 0;
}

bool http_etag_listed(const char *list, const char *etag)
{
    size_t want = opaque_tag(&etag);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        size_t len = opaque_tag(&p);
        if (!len)
            return false; /* not a list of entity-tags */
        if (len == want && memcmp(p, etag, len) == 0)
            return true;
        p += len;
    }
    return false;
}
