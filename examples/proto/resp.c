/* resp: the command parser of examples/kv_server.c (see resp.h). */
#include "resp.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void resp_parser_init(struct resp_parser *p)
{
    p->want = -1;
    p->bulk = -1;
    p->pos = p->need = 0;
    p->argc = 0;
    p->argcap = sizeof p->small / sizeof p->small[0];
    p->argv = p->small;
    p->error[0] = '\0';
    p->max_args = RESP_MAX_ARGS;
    p->max_bulk = RESP_MAX_BULK;
}

void resp_parser_free(struct resp_parser *p)
{
    if (p->argv != p->small)
        free(p->argv);
    p->argv = p->small;
    p->argcap = sizeof p->small / sizeof p->small[0];
    p->argc = 0;
}

int resp_parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    int neg = s[0] == '-';
    size_t i = (size_t)neg;
    if (i == n || s[i] < '1' || s[i] > '9')
        return 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (ULLONG_MAX - 9) / 10)
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > (unsigned long long)LLONG_MAX + neg)
        return 0;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 1;
}

static enum resp_result protocol_error(struct resp_parser *p, const char *what, int ch)
{
    snprintf(p->error, sizeof p->error, "Protocol error: %s", what);
    if (ch >= 0) {
        size_t n = strlen(p->error);
        snprintf(p->error + n, sizeof p->error - n, ", got '%c'",
                 ch == '\r' || ch == '\n' ? ' ' : ch);
    }
    return RESP_ERROR;
}

/* Room for one more argument, the array grown as arguments arrive (up to
 * want, the count announced, when there is one), never from the count
 * alone: a client that announces a million arguments and sends none costs
 * nothing. The caller keeps argc below p->max_args. 0 or -ENOMEM. */
static int push_arg(struct resp_parser *p, size_t off, size_t len, size_t want)
{
    if (p->argc == p->argcap) {
        size_t cap = p->argcap * 2;
        if (want > p->argc && cap > want)
            cap = want;
        if (cap > p->max_args)
            cap = p->max_args;
        /* realloc(): a large array moves without a copy (mremap). */
        struct resp_arg *a = realloc(p->argv == p->small ? NULL : p->argv, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        if (p->argv == p->small)
            memcpy(a, p->small, p->argc * sizeof *a);
        p->argv = a;
        p->argcap = cap;
    }
    p->argv[p->argc].off = off;
    p->argv[p->argc++].len = len;
    return 0;
}

/*
 * A "*N\r\n" or "$N\r\n" line at buf[*pos]: 1 and the number (past the
 * line in *pos), 0 if the line is not all there yet, -1 if it is too long,
 * -2 if N is no number. Too long is decided by where its '\r' is (not
 * within RESP_MAX_HEADER bytes), not by how much of the line has come: the
 * answer must not depend on how the input was split into reads.
 */
static int parse_header(const char *buf, size_t n, size_t *pos, long long *v)
{
    size_t room = n - *pos < RESP_MAX_HEADER ? n - *pos : RESP_MAX_HEADER;
    const char *cr = memchr(buf + *pos, '\r', room);
    if (!cr)
        return n - *pos >= RESP_MAX_HEADER ? -1 : 0;
    size_t end = (size_t)(cr - buf);
    if (end + 1 == n)
        return 0; /* the '\n' is still to come */
    if (!resp_parse_ll(buf + *pos + 1, end - *pos - 1, v))
        return -2;
    *pos = end + 2;
    return 1;
}

static enum resp_result parse_multibulk(struct resp_parser *p, const char *buf, size_t n,
                                        size_t *used)
{
    size_t pos = p->pos;
    long long v;
    int r;
    if (p->want < 0) {
        if ((r = parse_header(buf, n, &pos, &v)) == 0)
            return RESP_MORE;
        if (r < 0 || v > INT_MAX || (unsigned long long)v > p->max_args)
            return protocol_error(p, r == -1 ? "too big mbulk count string" : "invalid multibulk length", -1);
        if (v <= 0) {
            p->argc = 0;
            *used = pos; /* "*0": Redis skips it */
            return RESP_COMMAND;
        }
        p->want = v;
        p->argc = 0;
    }
    while (p->argc < (size_t)p->want) {
        if (p->bulk < 0) {
            if (pos == n)
                break;
            if (buf[pos] != '$')
                return protocol_error(p, "expected '$'", (unsigned char)buf[pos]);
            if ((r = parse_header(buf, n, &pos, &v)) == 0)
                break;
            if (r < 0 || v < 0 || v > RESP_MAX_BULK || (unsigned long long)v > p->max_bulk)
                return protocol_error(p, r == -1 ? "too big bulk count string" : "invalid bulk length", -1);
            p->bulk = v;
        }
        size_t len = (size_t)p->bulk;
        if (n - pos < len + 2) {
            p->need = pos + len + 2;
            break;
        }
        if (push_arg(p, pos, len, (size_t)p->want) < 0)
            return RESP_NOMEM;
        pos += len + 2; /* the "\r\n" after the data is not checked (nor by Redis) */
        p->bulk = -1;
    }
    p->pos = pos;
    if (p->argc < (size_t)p->want)
        return RESP_MORE;
    p->want = -1;
    *used = pos;
    return RESP_COMMAND;
}

/* An inline command: one line, its words separated by spaces or tabs. Too
 * long is decided by where its '\n' is, as in parse_header(). */
static enum resp_result parse_inline(struct resp_parser *p, const char *buf, size_t n,
                                     size_t *used)
{
    size_t room = n < RESP_MAX_HEADER ? n : RESP_MAX_HEADER;
    const char *nl = p->pos < room ? memchr(buf + p->pos, '\n', room - p->pos) : NULL;
    if (!nl) {
        p->pos = n;
        return n >= RESP_MAX_HEADER ? protocol_error(p, "too big inline request", -1) : RESP_MORE;
    }
    size_t end = (size_t)(nl - buf);
    size_t stop = end && buf[end - 1] == '\r' ? end - 1 : end;
    p->argc = 0;
    for (size_t i = 0; i < stop;) {
        while (i < stop && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        size_t from = i;
        while (i < stop && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (i == from)
            continue;
        if (p->argc == p->max_args)
            return protocol_error(p, "too many arguments", -1);
        if (push_arg(p, from, i - from, 0) < 0)
            return RESP_NOMEM;
    }
    *used = end + 1;
    return RESP_COMMAND;
}

enum resp_result resp_parse(struct resp_parser *p, const char *buf, size_t n, size_t *used)
{
    *used = 0;
    if (p->argcap > RESP_KEEP_ARGS && p->pos == 0 && p->want < 0)
        resp_parser_free(p); /* a new command: give a large array back */
    enum resp_result r = buf[0] == '*' ? parse_multibulk(p, buf, n, used)
                                       : parse_inline(p, buf, n, used);
    if (r == RESP_COMMAND) {
        p->pos = p->need = 0;
        for (size_t i = 0; i < p->argc; i++)
            p->argv[i].p = buf + p->argv[i].off;
    }
    return r;
}

size_t resp_read_limit(struct resp_parser *p, size_t n, size_t limit, size_t base)
{
    if (n >= limit) {
        size_t want = p->need > n ? p->need : 2 * n; /* 2 * n: within headers */
        if (want > RESP_MAX_QUERY)
            want = RESP_MAX_QUERY;
        if (n >= want) {
            protocol_error(p, "query buffer limit reached", -1);
            return 0;
        }
        return want;
    }
    /* Back to base only with room left: n == base would leave the buffer
     * full at its limit, and the next read failing (-ENOBUFS). */
    if (limit > base && n < base && p->need <= base)
        return base;
    return limit;
}
