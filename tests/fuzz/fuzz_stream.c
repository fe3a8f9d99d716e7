/*
 * fuzz_stream: libFuzzer target for the stream readers (src/stream.c).
 *
 * A writer task writes the payload to one end of a socketpair (or a pipe)
 * in chunks the input chooses, yielding between them, then closes it; a
 * reader task runs the input's operations on a stream over the other end
 * (read, readexactly, readline, readuntil, peek/consume, fill, set_limit,
 * at_eof, each possibly in an already expired timeout scope), then reads
 * the rest to the end. After every operation the reader checks what the
 * header (include/asyncio/stream.h) promises against a model, the payload
 * and how much of it was read, and abort()s on any difference: a
 * violation is a crash the fuzzer reports.
 *
 * Input layout (every field optional: a short input gets defaults):
 *   [0]      limit: 1..200 for b < 200, else limits[b - 200] (0: default)
 *   [1]      flags: bit 0 set the limit with asyncio_stream_set_limit()
 *            after opening (else asyncio_stream_open()'s), bit 1 a pipe
 *            (else a socketpair), bits 2-3 yields after each chunk, bit 4
 *            repeat the payload [2] + 1 times
 *   [2]      repeat count - 1
 *   [3]      number of operations (% 64), then for each an opcode byte,
 *            an argument byte and, for readuntil, 1 to 4 separator bytes
 *            and a capacity byte
 *   [.]      number of chunk sizes (% 32), then one byte each: 1 + (b &
 *            0x7f), times 512 if b & 0x80; cycled (none: one write)
 *   rest     the payload
 *
 * Every input runs in its own asyncio_run(), which frees what the loop
 * made; every wait is bounded by a timeout scope (HANG_LIMIT), whose
 * expiry is reported as a hang (abort). FUZZ_STREAM_TRACE=1 in the
 * environment prints each operation and its result.
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANG_LIMIT 5.0            /* seconds: an input never needs more than milliseconds */
#define MAX_PAYLOAD (512 * 1024)  /* after repetition */
#define MAX_OPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t limits[] = {
    0,     256,   1000,  1024,   4095,   4096,   4097,   8191,  8192,  16383, 16384,
    16385, 20000, 32767, 32768,  65535,  65536,  65537,  100000, 3,    2,
};

enum op {
    OP_READ,
    OP_READEXACTLY,
    OP_READLINE,
    OP_READUNTIL,
    OP_PEEK_CONSUME,
    OP_FILL,
    OP_SET_LIMIT,
    OP_AT_EOF,
    OP_EXPIRED,  /* the next operation runs in a timeout scope already due */
    OP_YIELD,    /* asyncio_sleep(0): the writer goes on */
    OP_COUNT
};

static const char *const op_names[] = {"read",  "readexactly", "readline", "readuntil",
                                       "peek/consume", "fill", "set_limit", "at_eof",
                                       "expired", "yield"};

struct op_spec {
    uint8_t op, arg;
    uint8_t sep[4];
    uint8_t seplen, cap;
};

struct run {
    /* the input, decoded */
    size_t limit;         /* the limit asked for (0: default) */
    int use_set_limit, use_pipe, yields;
    struct op_spec ops[MAX_OPS];
    size_t nops;
    size_t chunks[32];
    size_t nchunks;
    uint8_t *payload;     /* what the writer writes, in order */
    size_t total;
    /* the model */
    int rfd, wfd;
    size_t written;       /* bytes the writer's write() calls took */
    int writer_done;      /* it has closed its end */
    size_t pos;           /* bytes the reader has taken from the stream */
    size_t cur_limit;     /* the stream's limit now */
    int overfull;         /* a timed-out readexactly put data back: the buffer
                           * may hold more than the limit */
    size_t opi;           /* the operation running, for messages */
    const char *opname;
};

static size_t eff(size_t limit)
{
    return limit ? limit : ASYNCIO_STREAM_LIMIT;
}

static size_t pick_limit(uint8_t b)
{
    size_t limit = b < 200 ? (size_t)b + 1
                           : limits[(size_t)(b - 200) % (sizeof limits / sizeof limits[0])];
    return limit;
}

static size_t scaled(uint8_t b)
{
    return b & 0x80 ? (size_t)(b & 0x7f) * 256 : b;
}

/* The reader's scope of HANG_LIMIT s: a wait that ends with it is a hang. */
static asyncio_timeout_t *hang_scope;

#define CHECK(run, cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_stream: op %zu (%s), pos %zu of %zu, written %zu, limit %zu: ",  \
                    (run)->opi, (run)->opname, (run)->pos, (run)->total, (run)->written,           \
                    (run)->cur_limit);                                                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [%s]%s\n", #cond,                                                    \
                    hang_scope && asyncio_timeout_expired(hang_scope) == 1                         \
                        ? " (hung: the reader's time limit expired)" : "");                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FUZZ_STREAM_TRACE=1 in the environment: each operation and its result on
 * stderr, to see what an input does. */
static int tracing(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("FUZZ_STREAM_TRACE");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

static void trace(const struct run *r, size_t arg, ssize_t result, int expired)
{
    if (tracing())
        fprintf(stderr, "op %zu: %s(%zu)%s = %zd; pos %zu of %zu, written %zu, limit %zu\n",
                r->opi, r->opname, arg, expired ? " in an expired scope" : "", result, r->pos,
                r->total, r->written, r->cur_limit);
}

/* ---- the input ------------------------------------------------------------- */

static void decode(struct run *r, const uint8_t *data, size_t size)
{
    size_t i = 0;
#define NEXT(dflt) (i < size ? data[i++] : (dflt))
    r->limit = pick_limit(NEXT(0xff));
    uint8_t flags = NEXT(0);
    r->use_set_limit = flags & 1;
    r->use_pipe = (flags >> 1) & 1;
    r->yields = (flags >> 2) & 3;
    uint8_t repeat = NEXT(0); /* there whether used or not: the layout stays put */
    size_t rep = flags & 0x10 ? (size_t)repeat + 1 : 1;
    r->nops = NEXT(0) % MAX_OPS;
    for (size_t k = 0; k < r->nops; k++) {
        struct op_spec *o = &r->ops[k];
        o->op = NEXT(0) % OP_COUNT;
        o->arg = NEXT(0);
        o->seplen = 0;
        if (o->op == OP_READUNTIL) {
            o->seplen = (uint8_t)(1 + (o->arg & 3));
            for (size_t j = 0; j < o->seplen; j++)
                o->sep[j] = NEXT('\n');
            o->cap = NEXT(0xff);
        }
    }
    r->nchunks = NEXT(0) % 32;
    for (size_t k = 0; k < r->nchunks; k++) {
        uint8_t b = NEXT(0x7f);
        r->chunks[k] = ((size_t)(b & 0x7f) + 1) * (b & 0x80 ? 512 : 1);
    }
#undef NEXT
    const uint8_t *rest = data + i;
    size_t restlen = size - i;
    while (rep > 1 && restlen * rep > MAX_PAYLOAD)
        rep--;
    r->total = restlen * rep;
    r->payload = malloc(r->total ? r->total : 1);
    if (!r->payload)
        abort();
    for (size_t k = 0; k < rep; k++)
        memcpy(r->payload + k * restlen, rest, restlen);
    /* At most about 1024 writes: a large payload in 1-byte chunks would cost
     * too much time per input. */
    for (size_t k = 0; k < r->nchunks; k++)
        if (r->chunks[k] < r->total / 1024)
            r->chunks[k] = r->total / 1024;
}

/* ---- the writer ------------------------------------------------------------ */

static int writer(void *arg, void **result)
{
    (void)result;
    struct run *r = arg;
    asyncio_timeout_t scope;
    if (asyncio_timeout_enter(&scope, HANG_LIMIT) < 0)
        abort();
    size_t k = 0;
    while (r->written < r->total) {
        size_t want = r->nchunks ? r->chunks[k++ % r->nchunks] : r->total;
        if (want > r->total - r->written)
            want = r->total - r->written;
        size_t off = 0;
        while (off < want) {
            ssize_t n = write(r->wfd, r->payload + r->written, want - off);
            if (n > 0) {
                off += (size_t)n;
                r->written += (size_t)n; /* before anything can yield */
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                fprintf(stderr, "fuzz_stream: writer: %s\n", strerror(errno));
                abort();
            }
            int rc = asyncio_wait_writable(r->wfd);
            if (rc < 0) {
                fprintf(stderr, "fuzz_stream: writer stuck with %zu of %zu bytes written: %s\n",
                        r->written, r->total, strerror(-rc));
                abort();
            }
        }
        for (int y = 0; y < r->yields; y++)
            asyncio_sleep(0);
    }
    asyncio_close(r->wfd);
    r->wfd = -1;
    r->writer_done = 1;
    asyncio_timeout_exit(&scope);
    return 0;
}

/* ---- the reader's checks ----------------------------------------------------- */

/* What the stream holds is the payload at pos, and no more than was written. */
static size_t check_buffer(struct run *r, asyncio_stream_t *s)
{
    const void *p;
    size_t n = asyncio_stream_peek(s, &p);
    CHECK(r, r->pos + n <= r->written, "the buffer holds %zu bytes, more than written", n);
    CHECK(r, n == 0 || memcmp(p, r->payload + r->pos, n) == 0,
          "the buffer's %zu bytes are not the payload's at pos", n);
    CHECK(r, r->overfull || n <= r->cur_limit, "the buffer holds %zu bytes, over the limit", n);
    return n;
}

/* Bytes returned: they are the payload's next ones; pos moves past them. */
static void took(struct run *r, const void *buf, size_t n)
{
    CHECK(r, r->pos + n <= r->written, "%zu bytes returned, more than written", n);
    CHECK(r, n == 0 || memcmp(buf, r->payload + r->pos, n) == 0,
          "the %zu bytes returned are not the payload's next ones", n);
    r->pos += n;
}

/* Where the first sep of the rest of the payload ends (sep included), or 0. */
static size_t sep_end(const struct run *r, const uint8_t *sep, size_t seplen)
{
    size_t rem = r->total - r->pos;
    const uint8_t *p = r->payload + r->pos;
    for (size_t i = 0; i + seplen <= rem; i++)
        if (memcmp(p + i, sep, seplen) == 0)
            return i + seplen;
    return 0;
}

/* The buffer for a call of cap bytes: exactly cap, so that ASan sees any
 * write past it (a valid pointer for 0). */
static void *buffer(size_t cap)
{
    static char none;
    if (!cap)
        return &none;
    void *b = malloc(cap);
    if (!b)
        abort();
    return b;
}

static void unbuffer(void *b, size_t cap)
{
    if (cap)
        free(b);
}

/* readuntil(sep), by the header: the length (separator included) if the
 * separator ends within the limit and fits cap; -EMSGSIZE if not cap;
 * -ENOBUFS if it does not end within the limit and the rest is at least
 * the limit; at the end of the stream the rest without separator (0: none
 * left), or -EMSGSIZE. */
static ssize_t expect_readuntil(const struct run *r, const uint8_t *sep, size_t seplen, size_t cap)
{
    size_t end = sep_end(r, sep, seplen), rem = r->total - r->pos;
    if (end && end <= r->cur_limit)
        return end <= cap ? (ssize_t)end : -EMSGSIZE;
    if (rem >= r->cur_limit)
        return -ENOBUFS;
    return rem <= cap ? (ssize_t)rem : -EMSGSIZE;
}

static void do_readuntil(struct run *r, asyncio_stream_t *s, const uint8_t *sep, size_t seplen,
                         size_t cap, int line, int expired)
{
    ssize_t want = expect_readuntil(r, sep, seplen, cap);
    void *buf = buffer(cap);
    ssize_t got = line ? asyncio_stream_readline(s, buf, cap)
                       : asyncio_stream_readuntil(s, sep, seplen, buf, cap);
    trace(r, cap, got, expired);
    if (got == -ETIMEDOUT && expired) {
        unbuffer(buf, cap);
        return; /* nothing taken: check_buffer() sees it all still there */
    }
    CHECK(r, got == want, "got %zd, expected %zd (cap %zu, seplen %zu)", got, want, cap, seplen);
    if (got > 0) {
        size_t n = (size_t)got;
        took(r, buf, n);
        /* It ends with its separator unless the stream ended first. */
        CHECK(r, (n >= seplen && memcmp((char *)buf + n - seplen, sep, seplen) == 0) ||
                     r->pos == r->total,
              "a result of %zu bytes without its separator before the end", n);
    }
    /* Either error leaves the data in the stream: what did not fit is there. */
    if (got == -ENOBUFS) {
        size_t n = check_buffer(r, s);
        CHECK(r, n >= r->cur_limit, "-ENOBUFS with only %zu bytes buffered", n);
    }
    if (got == -EMSGSIZE) {
        size_t n = check_buffer(r, s);
        CHECK(r, n > cap, "-EMSGSIZE (cap %zu) with only %zu bytes buffered", cap, n);
    }
    unbuffer(buf, cap);
}

/* ---- the reader ------------------------------------------------------------ */

static void run_op(struct run *r, asyncio_stream_t *s, const struct op_spec *o, int expired)
{
    size_t n = scaled(o->arg);
    switch ((enum op)o->op) {
    case OP_READ: {
        void *buf = buffer(n);
        ssize_t got = asyncio_stream_read(s, buf, n);
        trace(r, n, got, expired);
        if (!(got == -ETIMEDOUT && expired)) {
            CHECK(r, got >= 0 && (size_t)got <= n, "read(%zu) returned %zd", n, got);
            took(r, buf, (size_t)got);
            CHECK(r, got > 0 || n == 0 || (r->pos == r->total && r->writer_done),
                  "read(%zu) returned 0 before the end", n);
        }
        unbuffer(buf, n);
        break;
    }
    case OP_READEXACTLY: {
        void *buf = buffer(n);
        size_t rem = r->total - r->pos;
        ssize_t got = asyncio_stream_readexactly(s, buf, n);
        trace(r, n, got, expired);
        if (got == -ETIMEDOUT && expired) {
            r->overfull = 1; /* what it had read is put back in front */
        } else {
            size_t want = n < rem ? n : rem; /* fewer only at the end: the partial data */
            CHECK(r, got == (ssize_t)want, "readexactly(%zu) returned %zd, expected %zu", n, got,
                  want);
            took(r, buf, (size_t)got);
            CHECK(r, (size_t)got == n || asyncio_stream_at_eof(s),
                  "readexactly short (%zd of %zu) but not at the end", got, n);
        }
        unbuffer(buf, n);
        break;
    }
    case OP_READLINE:
        do_readuntil(r, s, (const uint8_t *)"\n", 1, n, 1, expired);
        break;
    case OP_READUNTIL:
        do_readuntil(r, s, o->sep, o->seplen, scaled(o->cap), 0, expired);
        break;
    case OP_PEEK_CONSUME: {
        size_t have = check_buffer(r, s);
        int rc = asyncio_stream_consume(s, n);
        trace(r, n, rc, expired);
        if (n <= have) {
            CHECK(r, rc == 0, "consume(%zu) of %zu returned %d", n, have, rc);
            r->pos += n;
        } else {
            CHECK(r, rc == -EINVAL, "consume(%zu) of %zu returned %d", n, have, rc);
        }
        break;
    }
    case OP_FILL: {
        size_t have = check_buffer(r, s);
        ssize_t got = asyncio_stream_fill(s);
        trace(r, have, got, expired);
        if (got == -ETIMEDOUT && expired)
            break;
        if (have >= r->cur_limit) {
            CHECK(r, got == -ENOBUFS, "fill with %zu buffered returned %zd", have, got);
            break;
        }
        CHECK(r, got >= 0, "fill returned %zd", got);
        size_t now = check_buffer(r, s);
        CHECK(r, now == have + (size_t)got, "fill returned %zd, the buffer went from %zu to %zu",
              got, have, now);
        CHECK(r, got > 0 || (r->pos + have == r->total && r->writer_done),
              "fill returned 0 before the end");
        break;
    }
    case OP_SET_LIMIT: {
        size_t want = pick_limit(o->arg);
        size_t have = check_buffer(r, s);
        int rc = asyncio_stream_set_limit(s, want);
        trace(r, want, rc, expired);
        if (have > eff(want)) {
            CHECK(r, rc == -EINVAL, "set_limit(%zu) with %zu buffered returned %d", want, have, rc);
        } else {
            CHECK(r, rc == 0, "set_limit(%zu) with %zu buffered returned %d", want, have, rc);
            r->cur_limit = eff(want);
        }
        break;
    }
    case OP_AT_EOF: {
        int e = asyncio_stream_at_eof(s);
        trace(r, 0, e, expired);
        CHECK(r, e == 0 || e == 1, "at_eof returned %d", e);
        CHECK(r, !e || r->pos == r->total, "at_eof before the end");
        break;
    }
    case OP_YIELD:
        asyncio_sleep(0);
        break;
    case OP_EXPIRED:
    case OP_COUNT:
        break;
    }
}

static int reader(void *arg, void **result)
{
    (void)result;
    struct run *r = arg;
    asyncio_timeout_t scope;
    if (asyncio_timeout_enter(&scope, HANG_LIMIT) < 0)
        abort();
    hang_scope = &scope;
    asyncio_stream_t *s;
    int rc = asyncio_stream_open(&s, r->rfd, r->use_set_limit ? 0 : r->limit);
    CHECK(r, rc == 0, "stream_open: %s", strerror(-rc));
    r->rfd = -1; /* the stream's now */
    r->cur_limit = eff(r->use_set_limit ? 0 : r->limit);
    if (r->use_set_limit) {
        rc = asyncio_stream_set_limit(s, r->limit);
        CHECK(r, rc == 0, "set_limit on an empty stream: %s", strerror(-rc));
        r->cur_limit = eff(r->limit);
    }
    int expired = 0;
    for (r->opi = 0; r->opi < r->nops; r->opi++) {
        const struct op_spec *o = &r->ops[r->opi];
        r->opname = op_names[o->op];
        if (o->op == OP_EXPIRED) {
            expired = 1;
            continue;
        }
        asyncio_timeout_t due;
        if (expired && asyncio_timeout_enter(&due, 0) < 0)
            abort();
        run_op(r, s, o, expired);
        if (expired)
            asyncio_timeout_exit(&due);
        expired = 0;
        check_buffer(r, s);
    }
    /* The rest, to the end: everything written comes back, in order. */
    r->opname = "the rest";
    char buf[4096];
    for (;;) {
        ssize_t got = asyncio_stream_read(s, buf, sizeof buf);
        CHECK(r, got >= 0, "read of the rest: %s", strerror((int)-got));
        if (!got)
            break;
        took(r, buf, (size_t)got);
    }
    CHECK(r, r->pos == r->total && r->writer_done, "the stream ended early");
    CHECK(r, asyncio_stream_at_eof(s) == 1, "not at_eof after the end");
    check_buffer(r, s);
    rc = asyncio_stream_wait_closed(s);
    CHECK(r, rc == 0, "wait_closed: %s", strerror(-rc));
    hang_scope = NULL;
    asyncio_timeout_exit(&scope);
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    struct run *r = arg;
    asyncio_task_t *t[2]; /* tasks are futures */
    if (asyncio_create_task(&t[0], reader, r, "reader") < 0 ||
        asyncio_create_task(&t[1], writer, r, "writer") < 0)
        abort();
    int errors[2];
    int rc = asyncio_gather(2, t, NULL, errors, ASYNCIO_RETURN_EXCEPTIONS);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    if (rc < 0 || errors[0] || errors[1]) {
        fprintf(stderr, "fuzz_stream: gather %d, reader %d, writer %d\n", rc, errors[0], errors[1]);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.opname = "open";
    decode(&r, data, size);
    int fds[2];
    if (r.use_pipe ? pipe(fds) : socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) {
        perror("fuzz_stream: pipe/socketpair");
        abort();
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0)
            abort();
    r.rfd = fds[0];
    r.wfd = fds[1];
    int rc = asyncio_run(main_task, &r, NULL);
    if (rc < 0) {
        fprintf(stderr, "fuzz_stream: asyncio_run: %s\n", strerror(-rc));
        abort();
    }
    if (r.rfd >= 0)
        close(r.rfd);
    if (r.wfd >= 0)
        close(r.wfd);
    free(r.payload);
    return 0;
}
