/*
 * fuzz_resp: libFuzzer target for the RESP parser of examples/kv_server.c
 * (examples/proto/resp.c).
 *
 * The input is a connection's bytes, delivered to a model of kv_server's
 * loop (every whole command in the buffer parsed, what they used dropped,
 * the read limit raised and lowered by resp_read_limit(), then the next
 * delivery, cut to the room below the limit) in chunks the input chooses.
 * The same bytes are run again delivered as fully as the limit allows, and
 * one byte at a time: the three runs must see the same commands (offsets,
 * lengths, arguments) and end the same way (incremental parsing gives what
 * one call with everything gives). Each command is checked on its own too:
 * a multibulk one is exactly "*<argc>\r\n" then "$<len>\r\n<data>\r\n" per
 * argument (the two bytes after each CR, and after each data, unchecked, as
 * Redis does), an inline one is its line split at spaces and tabs. Each
 * call gets a buffer outside which ASan sees any read (fuzz_window.h).
 *
 * Input layout:
 *   [0]   the base read limit: one of bases[] (kv_server's is 65536)
 *   [1]   padding: if b & 0x80, (b & 0x7f) KiB of the byte [2] inserted
 *         at [3] / 256 of the rest (commands past 64 KiB from short inputs)
 *   [2]   padding byte      [3] where
 *   [4]   number of chunk sizes (% 16), then one byte each: 1 + (b & 0x7f),
 *         times 1024 if b & 0x80; cycled
 *   rest  the connection's bytes
 */
#define FUZZ_NAME "fuzz_resp"
#include "fuzz_window.h"
#include "resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t bases[] = {65536, 16, 64, 100, 256, 1024, 4096, 65536};

/* What the model server saw: a command, or the end (the last event). */
struct event {
    int kind;                 /* RESP_COMMAND; the end: RESP_ERROR, RESP_NOMEM, RESP_MORE */
    size_t at, len, argc;     /* the command's offset in the input, length */
    size_t args;              /* index of its first argument in log.args */
};

struct arg {
    size_t at, len;           /* offset in the input */
};

struct log {
    struct event *ev;
    size_t n, cap;
    char error[96];           /* the protocol error the run ended with */
    struct arg *args;
    size_t nargs, argcap;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? 2 * *cap : 16;
    p = realloc(p, *cap * size);
    if (!p)
        abort();
    return p;
}

static size_t put_num(char *out, long long v)
{
    return (size_t)sprintf(out, "%lld", v);
}

/* A multibulk command buf[0, len), parsed into a[0, argc): "*<argc>\r?"
 * (or "*<n <= 0>\r?" for none), then "$<len>\r?" <data> "??" for each. */
static void check_multibulk(const char *buf, size_t len, const struct resp_parser *p)
{
    char num[32];
    size_t pos = 1;
    if (p->argc == 0) {
        const char *cr = memchr(buf, '\r', len);
        long long v;
        CHECK(cr && (size_t)(cr - buf) + 2 == len &&
                  resp_parse_ll(buf + 1, (size_t)(cr - buf) - 1, &v) && v <= 0,
              "an empty multibulk command is not \"*<n <= 0>\\r\\n\"");
        return;
    }
    size_t k = put_num(num, (long long)p->argc);
    CHECK(len >= pos + k + 2 && memcmp(buf + pos, num, k) == 0 && buf[pos + k] == '\r',
          "the command does not begin with *%zu\\r", p->argc);
    pos += k + 2;
    for (size_t i = 0; i < p->argc; i++) {
        const struct resp_arg *a = &p->argv[i];
        CHECK(pos < len && buf[pos] == '$', "argument %zu: no '$'", i);
        k = put_num(num, (long long)a->len);
        CHECK(len >= pos + 1 + k + 2 && memcmp(buf + pos + 1, num, k) == 0 &&
                  buf[pos + 1 + k] == '\r',
              "argument %zu: not $%zu\\r", i, a->len);
        pos += 1 + k + 2;
        CHECK(a->off == pos && a->p == buf + pos && a->len + 2 <= len - pos,
              "argument %zu is not where its header says", i);
        pos += a->len + 2;
    }
    CHECK(pos == len, "the command is %zu bytes, its arguments end at %zu", len, pos);
}

/* An inline command buf[0, len): a line (its '\n' last, no other), split at
 * spaces and tabs, a '\r' before the '\n' dropped. */
static void check_inline(const char *buf, size_t len, const struct resp_parser *p)
{
    CHECK(len >= 1 && buf[len - 1] == '\n' && !memchr(buf, '\n', len - 1),
          "an inline command of %zu bytes is not one line", len);
    size_t stop = len - 1;
    if (stop && buf[stop - 1] == '\r')
        stop--;
    size_t n = 0;
    for (size_t i = 0; i < stop;) {
        while (i < stop && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        size_t from = i;
        while (i < stop && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (i > from) {
            CHECK(n < p->argc, "more words than the %zu arguments", p->argc);
            CHECK(p->argv[n].p == buf + from && p->argv[n].len == i - from,
                  "argument %zu is not the line's word %zu", n, n);
            n++;
        }
    }
    CHECK(n == p->argc, "%zu words, %zu arguments", n, p->argc);
}

static void check_error(const struct resp_parser *p)
{
    CHECK(memchr(p->error, '\0', sizeof p->error) && strncmp(p->error, "Protocol error: ", 16) == 0,
          "error text: %.96s", p->error);
}

/*
 * kv_server's loop over in[0, total), base its default read limit:
 * deliveries of chunks[i % nchunks] bytes (0 chunks: as much as the limit
 * allows), each cut to the room left below the limit.
 */
static void serve(const char *in, size_t total, size_t base, const size_t *chunks,
                  size_t nchunks, struct log *log)
{
    struct resp_parser p;
    resp_parser_init(&p);
    size_t front = 0, back = 0, k = 0, limit = base; /* the buffer is in[front, back) */
    struct event end;
    struct window w;
    window_init(&w, in, total);
    for (;;) {
        size_t n = back - front, done = 0;
        const char *buf = window_get(&w, front, back);
        enum resp_result r = RESP_MORE;
        while (done < n) {
            size_t used = (size_t)-1;
            r = resp_parse(&p, buf + done, n - done, &used);
            if (r != RESP_COMMAND) {
                CHECK(used == 0, "used %zu with result %d", used, (int)r);
                break;
            }
            CHECK(used > 0 && used <= n - done, "used %zu of %zu", used, n - done);
            if (buf[done] == '*')
                check_multibulk(buf + done, used, &p);
            else
                check_inline(buf + done, used, &p);
            struct event e = {.kind = RESP_COMMAND, .at = front + done, .len = used,
                              .argc = p.argc, .args = log->nargs};
            for (size_t i = 0; i < p.argc; i++) {
                log->args = grow(log->args, &log->argcap, log->nargs, sizeof *log->args);
                log->args[log->nargs++] =
                    (struct arg){front + done + p.argv[i].off, p.argv[i].len};
            }
            log->ev = grow(log->ev, &log->cap, log->n, sizeof *log->ev);
            log->ev[log->n++] = e;
            done += used;
        }
        memset(&end, 0, sizeof end);
        end.kind = (int)r;
        end.at = front + done;
        if (r == RESP_ERROR || r == RESP_NOMEM) {
            if (r == RESP_ERROR)
                check_error(&p);
            memcpy(log->error, p.error, sizeof log->error);
            break;
        }
        front += done;
        size_t want = resp_read_limit(&p, back - front, limit, base);
        if (!want) { /* the command cannot fit: a protocol error too */
            check_error(&p);
            end.kind = RESP_ERROR;
            memcpy(log->error, p.error, sizeof log->error);
            break;
        }
        CHECK(want > back - front, "a limit of %zu for %zu bytes pending", want, back - front);
        CHECK(want == limit || want == base || want > limit,
              "the limit went from %zu to %zu (base %zu)", limit, want, base);
        limit = want;
        if (back == total) {
            end.kind = RESP_MORE; /* the end: in[front, total) is not a whole command */
            break;
        }
        size_t room = limit - (back - front);
        size_t take = nchunks ? chunks[k++ % nchunks] : room;
        if (take > room)
            take = room;
        if (take > total - back)
            take = total - back;
        back += take;
    }
    resp_parser_free(&p);
    window_free(&w);
    log->ev = grow(log->ev, &log->cap, log->n, sizeof *log->ev);
    log->ev[log->n++] = end;
}

static void compare(const struct log *a, const struct log *b, const char *what)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const struct event *x = &a->ev[i], *y = &b->ev[i];
        int same = x->kind == y->kind && x->at == y->at && x->len == y->len &&
                   x->argc == y->argc;
        for (size_t j = 0; same && j < x->argc; j++)
            same = a->args[x->args + j].at == b->args[y->args + j].at &&
                   a->args[x->args + j].len == b->args[y->args + j].len;
        if (!same)
            FAIL("%s: event %zu differs: kind %d/%d at %zu/%zu len %zu/%zu argc %zu/%zu", what,
                 i, x->kind, y->kind, x->at, y->at, x->len, y->len, x->argc, y->argc);
    }
    CHECK(a->n == b->n, "%s: %zu events, and %zu", what, a->n, b->n);
    CHECK(strcmp(a->error, b->error) == 0, "%s: the error '%s', and '%s'", what, a->error,
          b->error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i = 0;
#define NEXT(dflt) (i < size ? data[i++] : (dflt))
    size_t base = bases[NEXT(0) % (sizeof bases / sizeof bases[0])];
    uint8_t pad = NEXT(0), padbyte = NEXT('a'), where = NEXT(0);
    size_t chunks[16], nchunks = NEXT(0) % 16;
    for (size_t k = 0; k < nchunks; k++) {
        uint8_t b = NEXT(0);
        chunks[k] = (1 + (size_t)(b & 0x7f)) * (b & 0x80 ? 1024 : 1);
    }
#undef NEXT
    size_t total;
    char *in = fuzz_expand(data + i, size - i, pad, padbyte, where, &total);
    fuzz_min_chunks(chunks, nchunks, total);
    struct log chunked = {0}, whole = {0}, bytes = {0};
    serve(in, total, base, chunks, nchunks, &chunked);
    serve(in, total, base, NULL, 0, &whole);
    compare(&whole, &chunked, "as much as fits vs the input's chunks");
    if (total <= 1024) { /* O(total^2): small inputs only */
        size_t one = 1;
        serve(in, total, base, &one, 1, &bytes);
        compare(&whole, &bytes, "as much as fits vs one byte at a time");
    }
    struct log *logs[] = {&chunked, &whole, &bytes};
    for (size_t k = 0; k < 3; k++) {
        free(logs[k]->ev);
        free(logs[k]->args);
    }
    free(in);
    return 0;
}
