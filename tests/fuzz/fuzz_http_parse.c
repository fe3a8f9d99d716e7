/*
 * fuzz_http_parse: libFuzzer target for the request-head parser of
 * examples/http_server.c (examples/proto/http_parse.c).
 *
 * The input is a connection's bytes, delivered to a model of the server's
 * loop (a read buffer of at most limit bytes, the parser called on it after
 * each delivery, what it used dropped, a request's body skipped) in chunks
 * the input chooses. The same bytes are run again delivered as fully as
 * the limit allows, and one byte at a time: the three runs must see the
 * same requests at the same offsets with the same results (incremental
 * parsing gives what one call with everything gives). Each call's result
 * is checked on its own too: a head is whole, ends at its first
 * "\r\n\r\n" and has no bare LF, its request line has the shape the
 * answer implies, a path to serve has no ".." segment, an error closes the
 * connection, "more" is said only when no head end and no bare LF is
 * buffered and the limit is not reached, an error without a head only for
 * a bare LF before any head end or a full buffer.
 * Each call gets a buffer outside which ASan sees any read (fuzz_window.h).
 *
 * Input layout:
 *   [0]   limit: 4 + b for b < 200, else one of limits[]
 *   [1]   padding: if b & 0x80, (b & 0x7f) KiB of the byte [2] inserted
 *         at [3] / 256 of the rest (long heads and paths from short inputs)
 *   [2]   padding byte      [3] where
 *   [4]   number of chunk sizes (% 16), then 1 + b each, cycled
 *   rest  the connection's bytes
 */
#define FUZZ_NAME "fuzz_http_parse"
#include "fuzz_window.h"
#include "http_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t limits[] = {256, 512, 1024, 1030, 1100, 2048, 4096, 65536};

/* One thing the model server saw. */
struct event {
    int kind;                 /* HTTP_PARSE_REQUEST, _ERROR, or -1: the end */
    size_t at, len;           /* the head: offset in the input (after empty lines), length */
    struct http_request rq;
};

struct log {
    struct event *ev;
    size_t n, cap;
};

static void log_add(struct log *l, const struct event *e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->ev = realloc(l->ev, l->cap * sizeof *l->ev);
        if (!l->ev)
            abort();
    }
    l->ev[l->n++] = *e;
}

/* The first needle[0, k) in h[0, n), or NULL (memmem, which C11 lacks). */
static const char *find(const char *h, size_t n, const char *needle, size_t k)
{
    const char *end = h + n;
    for (const char *c = h; (size_t)(end - c) >= k; c++) {
        c = memchr(c, needle[0], (size_t)(end - c) - k + 1);
        if (!c)
            return NULL;
        if (memcmp(c, needle, k) == 0)
            return c;
    }
    return NULL;
}

/* The first LF of p[0, n) without a CR before it, or NULL. */
static const char *bare_lf(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return p + i;
    return NULL;
}

/* The checks one result allows on its own. buf[0, n) is what the parser got. */
static void check_result(enum http_parse_result r, const char *buf, size_t n, size_t limit,
                         const struct http_request *rq, size_t used)
{
    CHECK(used <= n, "used %zu of %zu", used, n);
    size_t skip = 0;
    while (skip + 2 <= n && buf[skip] == '\r' && buf[skip + 1] == '\n')
        skip += 2;
    if (r == HTTP_PARSE_MORE || (r == HTTP_PARSE_ERROR && used == skip)) {
        /* No head: the empty lines are dropped, and no head end is there
         * (before the first bare LF, if there is one). */
        CHECK(used == skip, "no head, but used %zu, not the %zu of empty lines", used, skip);
        const char *lf = bare_lf(buf + skip, n - skip);
        const char *end = find(buf + skip, n - skip, "\r\n\r\n", 4);
        CHECK(!end || (lf && lf < end + 3), "a head end was there (n %zu)", n);
        if (r == HTTP_PARSE_MORE)
            CHECK(n - skip < limit && !lf, "more wanted with %zu bytes (limit %zu), bare LF %d",
                  n - skip, limit, lf != NULL);
        else
            CHECK((n - skip >= limit || lf) && rq->status == 400 && !rq->keep_alive,
                  "an error without head: n %zu, status %d", n - skip, rq->status);
        return;
    }
    CHECK(r == HTTP_PARSE_REQUEST || r == HTTP_PARSE_ERROR, "result %d", (int)r);
    CHECK(used > skip, "a head of 0 bytes");
    const char *head = buf + skip;
    size_t len = used - skip;
    CHECK(len >= 4 && find(head, len, "\r\n\r\n", 4) == head + len - 4,
          "the head (%zu bytes) does not end at its first CRLFCRLF", len);
    CHECK(len <= limit, "a head of %zu bytes over the limit %zu", len, limit);
    CHECK(!bare_lf(head, len), "a bare LF in a head");
    CHECK(rq->minor == 0 || rq->minor == 1, "minor %d", rq->minor);
    if (r == HTTP_PARSE_ERROR) {
        CHECK(rq->status == 400 || rq->status == 501, "error status %d", rq->status);
        CHECK(!rq->keep_alive, "keep-alive after an error");
        return;
    }
    CHECK(rq->status == 0 || rq->status == 404 || rq->status == 405, "status %d", rq->status);
    /* The request line: METHOD SP TARGET SP HTTP/1.x CRLF. */
    const char *eol = find(head, len, "\r\n", 2);
    const char *sp1 = memchr(head, ' ', (size_t)(eol - head));
    CHECK(sp1 && sp1 > head, "no method");
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    CHECK(sp2 && sp2 > sp1 + 1 && eol - sp2 == 9 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0 &&
              sp2[8] == '0' + rq->minor,
          "a served request's line is not METHOD SP TARGET SP HTTP/1.x");
    size_t mlen = (size_t)(sp1 - head);
    int get = mlen == 3 && memcmp(head, "GET", 3) == 0;
    int is_head = mlen == 4 && memcmp(head, "HEAD", 4) == 0;
    CHECK(rq->head == is_head, "head %d for a method of %zu bytes", rq->head, mlen);
    CHECK((rq->status == 405) == (!get && !is_head), "status %d for a method of %zu bytes",
          rq->status, mlen);
    if (rq->status == 0) {
        const char *nul = memchr(rq->path, '\0', sizeof rq->path);
        CHECK(nul, "the path is not terminated");
        size_t plen = (size_t)(nul - rq->path);
        CHECK(rq->path[0] != '/', "an absolute path: %s", rq->path);
        CHECK(!rq->root || plen == 0, "root with a path: %s", rq->path);
        for (const char *seg = rq->path;;) {
            const char *slash = strchr(seg, '/');
            size_t seglen = slash ? (size_t)(slash - seg) : strlen(seg);
            CHECK(!(seglen == 2 && seg[0] == '.' && seg[1] == '.'), "a '..' segment: %s",
                  rq->path);
            if (!slash)
                break;
            seg = slash + 1;
        }
    }
}

static int same_request(const struct http_request *a, const struct http_request *b)
{
    return a->status == b->status && a->minor == b->minor && a->head == b->head &&
           a->keep_alive == b->keep_alive && a->root == b->root && a->body == b->body &&
           a->if_modified_since == b->if_modified_since &&
           a->has_if_none_match == b->has_if_none_match && a->has_if_range == b->has_if_range &&
           a->if_range_date == b->if_range_date && a->range == b->range &&
           a->range_first == b->range_first && a->range_last == b->range_last &&
           strcmp(a->if_none_match, b->if_none_match) == 0 &&
           strcmp(a->if_range_tag, b->if_range_tag) == 0 && strcmp(a->path, b->path) == 0;
}

/*
 * The server's loop over in[0, total): deliveries of chunks[i % nchunks]
 * bytes (0 chunks: as much as the limit allows), each cut to the room left
 * below the limit.
 */
static void serve(const char *in, size_t total, size_t limit, const size_t *chunks,
                  size_t nchunks, struct log *log)
{
    struct http_parser ps;
    http_parser_init(&ps);
    struct window w;
    window_init(&w, in, total);
    size_t front = 0, back = 0, k = 0; /* the buffer is in[front, back) */
    for (;;) {
        size_t n = back - front;
        const char *buf = window_get(&w, front, back);
        struct event e;
        memset(&e, 0, sizeof e);
        size_t used = (size_t)-1;
        enum http_parse_result r = http_parse_head(&ps, buf, n, limit, &e.rq, &used);
        check_result(r, buf, n, limit, &e.rq, used);
        if (r == HTTP_PARSE_MORE) {
            front += used;
            if (back == total) {
                e.kind = -1; /* the end, with in[front, total) never a whole head */
                e.at = front;
                log_add(log, &e);
                break;
            }
            size_t room = limit - (back - front);
            CHECK(room > 0, "more wanted with a full buffer");
            size_t want = nchunks ? chunks[k++ % nchunks] : room;
            if (want > room)
                want = room;
            if (want > total - back)
                want = total - back;
            back += want;
            continue;
        }
        e.kind = (int)r;
        size_t skip = 0;
        while (skip + 2 <= n && in[front + skip] == '\r' && in[front + skip + 1] == '\n')
            skip += 2;
        e.at = front + skip;
        e.len = used - skip;
        if (r == HTTP_PARSE_ERROR && used == skip)
            e.len = 0; /* no head within the limit */
        log_add(log, &e);
        front += used;
        if (r == HTTP_PARSE_ERROR || !e.rq.keep_alive)
            break; /* the connection closes */
        /* The body is read and dropped (skip_body()). */
        if (e.rq.body > total - front)
            break; /* it never ends: the connection waits until it times out */
        front += (size_t)e.rq.body;
        if (back < front)
            back = front;
    }
    window_free(&w);
}

static void compare(const struct log *a, const struct log *b, const char *what)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const struct event *x = &a->ev[i], *y = &b->ev[i];
        if (x->kind != y->kind || x->at != y->at || x->len != y->len ||
            (x->kind >= 0 && !same_request(&x->rq, &y->rq)))
            FAIL("%s: event %zu differs: kind %d/%d at %zu/%zu len %zu/%zu status %d/%d "
                 "keep-alive %d/%d body %llu/%llu path '%s'/'%s'",
                 what, i, x->kind, y->kind, x->at, y->at, x->len, y->len, x->rq.status,
                 y->rq.status, x->rq.keep_alive, y->rq.keep_alive, x->rq.body, y->rq.body,
                 x->rq.path, y->rq.path);
    }
    CHECK(a->n == b->n, "%s: %zu events, and %zu", what, a->n, b->n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i = 0;
#define NEXT(dflt) (i < size ? data[i++] : (dflt))
    uint8_t lb = NEXT(255);
    size_t limit = lb < 200 ? 4 + (size_t)lb
                            : limits[(lb - 200) % (sizeof limits / sizeof limits[0])];
    uint8_t pad = NEXT(0), padbyte = NEXT('a'), where = NEXT(0);
    size_t chunks[16], nchunks = NEXT(0) % 16;
    for (size_t k = 0; k < nchunks; k++)
        chunks[k] = 1 + (size_t)NEXT(0);
#undef NEXT
    size_t total;
    char *in = fuzz_expand(data + i, size - i, pad, padbyte, where, &total);
    fuzz_min_chunks(chunks, nchunks, total);
    struct log chunked = {0}, whole = {0}, bytes = {0};
    serve(in, total, limit, chunks, nchunks, &chunked);
    serve(in, total, limit, NULL, 0, &whole);
    compare(&whole, &chunked, "as much as fits vs the input's chunks");
    if (total <= 1024) { /* O(total^2): small inputs only */
        size_t one = 1;
        serve(in, total, limit, &one, 1, &bytes);
        compare(&whole, &bytes, "as much as fits vs one byte at a time");
    }
    free(chunked.ev);
    free(whole.ev);
    free(bytes.ev);
    free(in);
    return 0;
}
