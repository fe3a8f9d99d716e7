/*
 * kv_server: a small Redis. Enough of its protocol (RESP2) for redis-cli,
 * redis-benchmark and redis-py, over an in-memory hash table shared by
 * every connection.
 *
 *     kv_server PORT [--host HOST] [--busy-poll US] [--timeout SECONDS]
 *               [--max-connections N] [--max-args N] [--max-bulk BYTES]
 *                                            (HOST: 127.0.0.1 unless given)
 *     redis-cli -p PORT set greeting hello
 *     redis-cli -p PORT get greeting
 *     printf 'PING\r\nINCR hits\r\n' | nc -N 127.0.0.1 PORT
 *     redis-benchmark -p PORT -t ping,set,get -q
 *
 * Commands, with Redis's replies and errors: PING, ECHO, GET, SET (EX, PX,
 * NX, XX), MGET, MSET, DEL, EXISTS, INCR, DECR, INCRBY, DECRBY, EXPIRE and
 * PEXPIRE (NX, XX, GT, LT), TTL, PTTL, PERSIST, DBSIZE, FLUSHDB, SELECT
 * (database 0 only), MULTI, EXEC, DISCARD, QUIT, and what clients send
 * when they connect: HELLO 2 (RESP3 is refused: NOPROTO), CLIENT SETNAME,
 * GETNAME, SETINFO and ID, COMMAND (COUNT, INFO; DOCS answers none),
 * CONFIG GET (save and appendonly). Both request forms: multibulk
 * ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), and inline ("GET k\r\n", what nc
 * and telnet send; no quoting).
 *
 * Transactions as in Redis: after MULTI, commands are queued (+QUEUED) and
 * EXEC runs them all at once (nothing else runs meanwhile: one loop, no
 * wait in between) and answers with the array of their replies, errors
 * included; DISCARD drops them. A command refused while queued (unknown,
 * or a wrong number of arguments) makes EXEC answer EXECABORT. No WATCH.
 *
 * Limits (each answered as Redis answers it):
 *   --max-connections N  (10000, Redis's maxclients) connections at once;
 *                        one more is answered "-ERR max number of clients
 *                        reached" and closed, the others go on. The soft
 *                        limit on open files is raised to fit, if it can be.
 *   --timeout SECONDS    (0: none, Redis's default) a client that sends
 *                        nothing for that long is disconnected, and so is
 *                        one that leaves its replies unread that long (they
 *                        are dropped: the connection is reset).
 *   --max-args N         (1048576, Redis's former multibulk limit) the
 *                        arguments of a command: "-ERR Protocol error:
 *                        invalid multibulk length", then close.
 *   --max-bulk BYTES     (512 MiB, Redis's proto-max-bulk-len; no more) one
 *                        argument: "-ERR Protocol error: invalid bulk
 *                        length", then close.
 *   1 GiB                a whole command (Redis's client-query-buffer-limit):
 *                        "-ERR Protocol error: query buffer limit reached",
 *                        then close; 64 KiB an inline command or a "*N" or
 *                        "$N" line ("too big inline request", ...); an
 *                        inline command of more than --max-args words: "too
 *                        many arguments".
 *   memory               a command costs its bytes plus 24 bytes per
 *                        argument, no more than 5 times its size (an
 *                        argument takes 6 bytes at least): the argument
 *                        array grows as arguments arrive, not from the
 *                        count announced, and a large one is given back
 *                        after its command. Commands queued by MULTI are
 *                        copied (8 bytes per argument more), 1 GiB at most
 *                        ("-ERR transaction too big", and EXEC aborts).
 *   replies              reading stops while 64 KiB of replies wait to be
 *                        sent (one command's replies are not cut: an MGET
 *                        or EXEC may queue more).
 *   expiry               times to live of less than some 580 years (the
 *                        loop's clock, in nanoseconds; Redis takes longer
 *                        ones): "invalid expire time". An expired key is
 *                        deleted when next looked at, none is swept in the
 *                        background.
 * A connection closed after an error (a protocol error, one too many
 * clients) is drained for 1 s at most, so that the client reads the error
 * rather than a reset.
 *
 * What it shows: a parser working in the stream's own buffer
 * (asyncio_stream_peek/fill/consume) with no copy and no allocation per
 * command (the parser itself is in proto/resp.c, where the fuzz targets
 * reach it). Every complete command that one read brought is answered before
 * the next read, and the replies, queued with asyncio_stream_write(), leave
 * in one system call: pipelining costs nothing extra. A command larger than
 * the read limit (a big SET) raises the stream's limit while it arrives.
 * An idle timeout is one timeout scope per connection, its deadline moved
 * before each wait.
 *
 * It busy-polls for up to 20 us before its loop would sleep (--busy-poll US;
 * 0 turns it off unless $ASYNCIO_BUSY_POLL_US asks for it; see "Busy
 * polling" in the README): with one request in flight per client, a wake-up
 * costs the client more than the request costs the server, and a loop that
 * has just answered is often asked again within microseconds. It spins only
 * while its sleeps are short: idle, it sleeps.
 */
#include <asyncio.h>

#include "proto/resp.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define SMALL_REPLY 512                 /* GET replies up to this are one copy */

/* ---- the keyspace: open addressing, linear probing ----------------------- */

struct item {
    uint64_t expires;       /* asyncio_loop_time_ns() deadline; 0: never */
    size_t klen, vlen, vcap;
    char data[];            /* the key, then room for vcap bytes of value */
};

struct slot {
    uint64_t hash;          /* kept here so a probe rarely touches an item */
    struct item *it;        /* NULL: empty */
};

struct table {
    struct slot *slots;
    size_t mask, count;     /* mask + 1 slots, a power of two */
};

#define NONE SIZE_MAX

static uint64_t hash_bytes(const char *p, size_t n)
{
    /* FNV-1a: keys are short. Unseeded: keys chosen to collide would slow
     * the table down, which a server facing strangers must not allow. */
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    return h;
}

static char *value_of(struct item *it)
{
    return it->data + it->klen;
}

static size_t table_find(const struct table *t, const char *k, size_t klen, uint64_t h)
{
    if (!t->slots)
        return NONE;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const struct item *it = t->slots[i].it;
        if (!it)
            return NONE;
        if (t->slots[i].hash == h && it->klen == klen && memcmp(it->data, k, klen) == 0)
            return i;
    }
}

/* Delete without tombstones: later members of the probe run move back into
 * the hole unless that would put them before their home slot. */
static void table_remove(struct table *t, size_t i)
{
    free(t->slots[i].it);
    t->count--;
    for (size_t j = (i + 1) & t->mask; t->slots[j].it; j = (j + 1) & t->mask) {
        size_t home = t->slots[j].hash & t->mask;
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].it = NULL;
}

/* The slot of key k if it is there and has not expired (an expired key is
 * deleted when it is next looked at; none is swept in the background, so a
 * key nobody asks for again stays in memory until exit). */
static size_t table_lookup(struct table *t, const char *k, size_t klen, uint64_t h)
{
    size_t i = table_find(t, k, klen, h);
    if (i != NONE && t->slots[i].it->expires && t->slots[i].it->expires <= asyncio_loop_time_ns()) {
        table_remove(t, i);
        i = NONE;
    }
    return i;
}

static int table_grow(struct table *t)
{
    size_t n = t->slots ? (t->mask + 1) * 2 : 16;
    struct slot *s = calloc(n, sizeof *s);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i].it)
            continue;
        size_t j = t->slots[i].hash & (n - 1);
        while (s[j].it)
            j = (j + 1) & (n - 1);
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->mask = n - 1;
    return 0;
}

/* Give key k (in slot i, or new when i is NONE) the value v: rewritten in
 * place when it fits without wasting much, so overwriting a key with a value
 * of the same size allocates nothing. 0 or -ENOMEM. */
static int table_store(struct table *t, size_t i, uint64_t h, const char *k, size_t klen,
                       const char *v, size_t vlen, uint64_t expires)
{
    struct item *it = i != NONE ? t->slots[i].it : NULL;
    if (!it || vlen > it->vcap || it->vcap > 2 * vlen + 64) {
        if (!it && (t->count + 1) * 4 > (t->slots ? t->mask + 1 : 0) * 3 && table_grow(t) < 0)
            return -ENOMEM;
        size_t size = sizeof *it + klen + vlen;
        struct item *n = it ? realloc(it, size) : malloc(size);
        if (!n)
            return -ENOMEM;
        if (!it) {
            n->klen = klen;
            memcpy(n->data, k, klen);
            for (i = h & t->mask; t->slots[i].it; i = (i + 1) & t->mask)
                ;
            t->slots[i].hash = h;
            t->count++;
        }
        it = t->slots[i].it = n;
        it->vcap = vlen;
    }
    memcpy(value_of(it), v, vlen);
    it->vlen = vlen;
    it->expires = expires;
    return 0;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; t->slots && i <= t->mask; i++)
        free(t->slots[i].it);
    free(t->slots);
    t->slots = NULL;
    t->mask = t->count = 0;
}

/* ---- the server and its connections -------------------------------------- */

#define MAX_CONNECTIONS 10000   /* Redis's maxclients */
#define MAX_QUEUED RESP_MAX_QUERY /* the commands a transaction may queue */
#define LINGER_S 1.0            /* draining a connection closed after an error */

struct app {
    const char *host;
    int port;
    unsigned busy_poll_us;
    unsigned long timeout;          /* seconds; 0: none */
    unsigned long max_connections, max_args, max_bulk;
    asyncio_server_t *srv;
    long long last_id;              /* of the connections, as CLIENT ID */
    struct table db;
};

/* What MULTI queued: each command as its index in commands[], its number
 * of arguments, then each argument's length and bytes (size_t values
 * copied in and out with memcpy: they need no alignment). */
struct multi {
    int on;                 /* between MULTI and EXEC or DISCARD */
    int failed;             /* a command was refused: EXEC aborts */
    size_t count;           /* commands queued */
    char *buf;
    size_t len, cap;
};

struct conn {
    asyncio_stream_t *s;
    struct app *app;
    struct table *db;
    /* The command being parsed. It stays at the front of the stream's
     * buffer while more of it is read, and the buffer may move: the parser
     * keeps offsets from its first byte, and resumes where it stopped. */
    struct resp_parser parser;
    asyncio_timeout_t *idle;  /* --timeout's scope, or NULL */
    long long id;
    char *name;               /* CLIENT SETNAME's, or NULL */
    struct multi multi;
};

/* ---- replies ------------------------------------------------------------- */

static int reply(struct conn *c, const char *s, size_t n)
{
    return asyncio_stream_write(c->s, s, n);
}

#define REPLY(c, literal) reply(c, literal, sizeof literal - 1)

static size_t format_ll(char *out, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10));
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

static int reply_int(struct conn *c, long long v)
{
    char b[32];
    b[0] = ':';
    size_t n = 1 + format_ll(b + 1, v);
    memcpy(b + n, "\r\n", 2);
    return reply(c, b, n + 2);
}

static int reply_bulk(struct conn *c, const char *p, size_t len)
{
    char head[SMALL_REPLY + 32];
    head[0] = '$';
    size_t n = 1 + format_ll(head + 1, (long long)len);
    memcpy(head + n, "\r\n", 2);
    n += 2;
    if (len <= SMALL_REPLY) { /* one copy into the queue, not three */
        memcpy(head + n, p, len);
        memcpy(head + n + len, "\r\n", 2);
        return reply(c, head, n + len + 2);
    }
    struct iovec v[3] = {{head, n}, {(void *)p, len}, {"\r\n", 2}};
    return asyncio_stream_writev(c->s, v, 3);
}

/* An error reply: "-" and the text, its line breaks made spaces (a reply
 * must stay one line), as Redis does. */
static int reply_error(struct conn *c, const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b + 1, sizeof b - 3, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    size_t len = (size_t)n < sizeof b - 4 ? (size_t)n + 1 : sizeof b - 3;
    b[0] = '-';
    for (size_t i = 1; i < len; i++)
        if (b[i] == '\r' || b[i] == '\n')
            b[i] = ' ';
    memcpy(b + len, "\r\n", 2);
    return reply(c, b, len + 2);
}

/* "*n\r\n", the head of an array of n replies that follow. */
static int reply_array(struct conn *c, size_t n)
{
    char b[32];
    b[0] = '*';
    size_t len = 1 + format_ll(b + 1, (long long)n);
    memcpy(b + len, "\r\n", 2);
    return reply(c, b, len + 2);
}

/* ---- commands ------------------------------------------------------------ */

static int is_n(const struct resp_arg *a, const char *word, size_t len)
{
    return a->len == len && strncasecmp(a->p, word, len) == 0;
}

#define is(a, literal) is_n(a, literal, sizeof literal - 1)

/* An argument quoted in an error message: at most 128 bytes of it. */
#define QUOTED(a) (int)((a)->len < 128 ? (a)->len : 128), (a)->p

static int out_of_memory(struct conn *c)
{
    return REPLY(c, "-OOM out of memory\r\n");
}

static int not_an_integer(struct conn *c)
{
    return reply_error(c, "ERR value is not an integer or out of range");
}

static size_t lookup(struct conn *c, const struct resp_arg *key)
{
    return table_lookup(c->db, key->p, key->len, hash_bytes(key->p, key->len));
}

static int cmd_ping(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (argc > 2)
        return reply_error(c, "ERR wrong number of arguments for 'ping' command");
    return argc == 2 ? reply_bulk(c, a[1].p, a[1].len) : REPLY(c, "+PONG\r\n");
}

static int cmd_echo(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    return reply_bulk(c, a[1].p, a[1].len);
}

static int reply_value(struct conn *c, size_t i)
{
    if (i == NONE)
        return REPLY(c, "$-1\r\n");
    struct item *it = c->db->slots[i].it;
    return reply_bulk(c, value_of(it), it->vlen);
}

static int cmd_get(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    return reply_value(c, lookup(c, &a[1]));
}

static int cmd_mget(struct conn *c, const struct resp_arg *a, size_t argc)
{
    int rc = reply_array(c, argc - 1);
    for (size_t k = 1; k < argc && rc == 0; k++)
        rc = reply_value(c, lookup(c, &a[k]));
    return rc;
}

/* The deadline ttl units of unit milliseconds from now (ttl > 0), on
 * asyncio_loop_time_ns()'s clock: 0, or -1 if it is past what the clock
 * counts (some 580 years from boot). */
static int deadline(long long ttl, long long unit, uint64_t *out)
{
    uint64_t now = asyncio_loop_time_ns();
    if ((unsigned long long)ttl > (UINT64_MAX - now) / 1000000 / (unsigned long long)unit)
        return -1;
    *out = now + (uint64_t)ttl * (uint64_t)unit * 1000000;
    return 0;
}

/* SET key value [NX | XX] [EX seconds | PX milliseconds] */
static int cmd_set(struct conn *c, const struct resp_arg *a, size_t argc)
{
    int nx = 0, xx = 0;
    long long ttl = 0, unit = 0; /* milliseconds per unit of the EX or PX given */
    const struct resp_arg *when = NULL;
    for (size_t i = 3; i < argc; i++) {
        if (is(&a[i], "NX") && !xx)
            nx = 1;
        else if (is(&a[i], "XX") && !nx)
            xx = 1;
        else if ((is(&a[i], "EX") || is(&a[i], "PX")) && !unit && i + 1 < argc) {
            unit = a[i].p[0] == 'E' || a[i].p[0] == 'e' ? 1000 : 1;
            when = &a[++i];
        } else
            return reply_error(c, "ERR syntax error");
    }
    uint64_t expires = 0;
    if (when) {
        if (!resp_parse_ll(when->p, when->len, &ttl))
            return not_an_integer(c);
        if (ttl <= 0 || deadline(ttl, unit, &expires) < 0)
            return reply_error(c, "ERR invalid expire time in 'set' command");
    }
    uint64_t h = hash_bytes(a[1].p, a[1].len);
    size_t i = table_lookup(c->db, a[1].p, a[1].len, h);
    if ((nx && i != NONE) || (xx && i == NONE))
        return REPLY(c, "$-1\r\n");
    if (table_store(c->db, i, h, a[1].p, a[1].len, a[2].p, a[2].len, expires) < 0)
        return out_of_memory(c);
    return REPLY(c, "+OK\r\n");
}

/* MSET key value [key value ...]: as many SETs (which drop a time to live). */
static int cmd_mset(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (argc % 2 == 0)
        return reply_error(c, "ERR wrong number of arguments for 'mset' command");
    for (size_t k = 1; k < argc; k += 2) {
        uint64_t h = hash_bytes(a[k].p, a[k].len);
        size_t i = table_lookup(c->db, a[k].p, a[k].len, h);
        if (table_store(c->db, i, h, a[k].p, a[k].len, a[k + 1].p, a[k + 1].len, 0) < 0)
            return out_of_memory(c);
    }
    return REPLY(c, "+OK\r\n");
}

static int cmd_del(struct conn *c, const struct resp_arg *a, size_t argc)
{
    long long n = 0;
    for (size_t k = 1; k < argc; k++) {
        size_t i = lookup(c, &a[k]);
        if (i != NONE) {
            table_remove(c->db, i);
            n++;
        }
    }
    return reply_int(c, n);
}

static int cmd_exists(struct conn *c, const struct resp_arg *a, size_t argc)
{
    long long n = 0;
    for (size_t k = 1; k < argc; k++)
        n += lookup(c, &a[k]) != NONE;
    return reply_int(c, n);
}

/* INCR, DECR, INCRBY and DECRBY: the value of key, an integer (or none: 0),
 * plus by. The key keeps its time to live. */
static int incr_by(struct conn *c, const struct resp_arg *key, long long by)
{
    uint64_t h = hash_bytes(key->p, key->len);
    size_t i = table_lookup(c->db, key->p, key->len, h);
    long long v = 0;
    uint64_t expires = 0;
    if (i != NONE) {
        struct item *it = c->db->slots[i].it;
        if (!resp_parse_ll(value_of(it), it->vlen, &v))
            return not_an_integer(c);
        expires = it->expires;
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
        return reply_error(c, "ERR increment or decrement would overflow");
    v += by;
    char b[24];
    size_t n = format_ll(b, v);
    if (table_store(c->db, i, h, key->p, key->len, b, n, expires) < 0)
        return out_of_memory(c);
    return reply_int(c, v);
}

static int cmd_incr(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    return incr_by(c, &a[1], 1);
}

static int cmd_decr(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    return incr_by(c, &a[1], -1);
}

static int cmd_incrby(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    long long by;
    if (!resp_parse_ll(a[2].p, a[2].len, &by))
        return not_an_integer(c);
    return incr_by(c, &a[1], by);
}

static int cmd_decrby(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    long long by;
    if (!resp_parse_ll(a[2].p, a[2].len, &by))
        return not_an_integer(c);
    if (by == LLONG_MIN)
        return reply_error(c, "ERR decrement would overflow");
    return incr_by(c, &a[1], -by);
}

/* EXPIRE / PEXPIRE key time [NX | XX | GT | LT], unit milliseconds per
 * unit of time. A time not in the future deletes the key. As in Redis, a
 * key with no time to live has an infinite one for GT and LT. */
static int expire_generic(struct conn *c, const struct resp_arg *a, size_t argc, long long unit)
{
    const char *name = unit == 1 ? "pexpire" : "expire";
    int nx = 0, xx = 0, gt = 0, lt = 0;
    for (size_t k = 3; k < argc; k++) {
        if (is(&a[k], "NX"))
            nx = 1;
        else if (is(&a[k], "XX"))
            xx = 1;
        else if (is(&a[k], "GT"))
            gt = 1;
        else if (is(&a[k], "LT"))
            lt = 1;
        else
            return reply_error(c, "ERR Unsupported option %.*s", QUOTED(&a[k]));
    }
    if (nx && (xx || gt || lt))
        return reply_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
    if (gt && lt)
        return reply_error(c, "ERR GT and LT options at the same time are not compatible");
    long long ttl;
    if (!resp_parse_ll(a[2].p, a[2].len, &ttl))
        return not_an_integer(c);
    uint64_t when = 0; /* 0: already past */
    if (ttl < LLONG_MIN / unit || (ttl > 0 && deadline(ttl, unit, &when) < 0))
        return reply_error(c, "ERR invalid expire time in '%s' command", name);
    size_t i = lookup(c, &a[1]);
    if (i == NONE)
        return REPLY(c, ":0\r\n");
    struct item *it = c->db->slots[i].it;
    uint64_t cur = it->expires; /* 0: none */
    if ((nx && cur) || (xx && !cur) || (gt && (!cur || when <= cur)) || (lt && cur && when >= cur))
        return REPLY(c, ":0\r\n");
    if (!when)
        table_remove(c->db, i);
    else
        it->expires = when;
    return REPLY(c, ":1\r\n");
}

static int cmd_expire(struct conn *c, const struct resp_arg *a, size_t argc)
{
    return expire_generic(c, a, argc, 1000);
}

static int cmd_pexpire(struct conn *c, const struct resp_arg *a, size_t argc)
{
    return expire_generic(c, a, argc, 1);
}

/* TTL and PTTL: -2 for no key, -1 for no time to live. */
static int ttl_generic(struct conn *c, const struct resp_arg *key, int ms)
{
    size_t i = lookup(c, key);
    if (i == NONE)
        return reply_int(c, -2);
    uint64_t expires = c->db->slots[i].it->expires;
    if (!expires)
        return reply_int(c, -1);
    uint64_t now = asyncio_loop_time_ns();
    long long left = expires > now ? (long long)((expires - now) / 1000000) : 0;
    return reply_int(c, ms ? left : (left + 500) / 1000); /* Redis rounds */
}

static int cmd_ttl(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    return ttl_generic(c, &a[1], 0);
}

static int cmd_pttl(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    return ttl_generic(c, &a[1], 1);
}

static int cmd_persist(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    size_t i = lookup(c, &a[1]);
    if (i == NONE || !c->db->slots[i].it->expires)
        return REPLY(c, ":0\r\n");
    c->db->slots[i].it->expires = 0;
    return REPLY(c, ":1\r\n");
}

static int cmd_dbsize(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)a;
    (void)argc;
    return reply_int(c, (long long)c->db->count);
}

/* FLUSHDB [ASYNC | SYNC]: both synchronous. */
static int cmd_flushdb(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (argc > 2 || (argc == 2 && !is(&a[1], "ASYNC") && !is(&a[1], "SYNC")))
        return reply_error(c, "ERR syntax error");
    table_free(c->db);
    return REPLY(c, "+OK\r\n");
}

/* One database, 0; Redis has 16 unless told otherwise. */
static int cmd_select(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    long long db;
    if (!resp_parse_ll(a[1].p, a[1].len, &db) || db < INT_MIN || db > INT_MAX)
        return not_an_integer(c);
    if (db != 0)
        return reply_error(c, "ERR DB index is out of range");
    return REPLY(c, "+OK\r\n");
}

/* QUIT: +OK, then the connection closes (1: the caller closes it). */
static int cmd_quit(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)a;
    (void)argc;
    int rc = REPLY(c, "+OK\r\n");
    return rc < 0 ? rc : 1;
}

/* A client's name or library (CLIENT SETNAME, SETINFO, HELLO's SETNAME):
 * printable, no spaces, as Redis wants them. */
static int is_attribute(const struct resp_arg *v)
{
    for (size_t i = 0; i < v->len; i++)
        if (v->p[i] < '!' || v->p[i] > '~')
            return 0;
    return 1;
}

static int bad_name(struct conn *c)
{
    return reply_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
}

/* Keep a copy of the client's name ("" removes it): 0 or -ENOMEM. */
static int keep_name(struct conn *c, const struct resp_arg *name)
{
    char *copy = NULL;
    if (name->len) {
        if (!(copy = malloc(name->len + 1)))
            return -ENOMEM;
        memcpy(copy, name->p, name->len);
        copy[name->len] = '\0';
    }
    free(c->name);
    c->name = copy;
    return 0;
}

static int client_arity(struct conn *c, const char *sub)
{
    return reply_error(c, "ERR wrong number of arguments for 'client|%s' command", sub);
}

/* CLIENT SETNAME name | GETNAME | SETINFO LIB-NAME|LIB-VER value | ID */
static int cmd_client(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (is(&a[1], "SETNAME")) {
        if (argc != 3)
            return client_arity(c, "setname");
        if (!is_attribute(&a[2]))
            return bad_name(c);
        return keep_name(c, &a[2]) < 0 ? out_of_memory(c) : REPLY(c, "+OK\r\n");
    }
    if (is(&a[1], "GETNAME")) {
        if (argc != 2)
            return client_arity(c, "getname");
        return c->name ? reply_bulk(c, c->name, strlen(c->name)) : REPLY(c, "$-1\r\n");
    }
    if (is(&a[1], "SETINFO")) { /* taken, and not kept */
        if (argc != 4)
            return client_arity(c, "setinfo");
        if (!is(&a[2], "LIB-NAME") && !is(&a[2], "LIB-VER"))
            return reply_error(c, "ERR Unrecognized option '%.*s'", QUOTED(&a[2]));
        if (!is_attribute(&a[3]))
            return reply_error(c, "ERR %.*s cannot contain spaces, newlines or special characters.",
                               QUOTED(&a[2]));
        return REPLY(c, "+OK\r\n");
    }
    if (is(&a[1], "ID")) {
        if (argc != 2)
            return client_arity(c, "id");
        return reply_int(c, c->id);
    }
    return reply_error(c, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.", QUOTED(&a[1]));
}

/* HELLO [protover [AUTH username password] [SETNAME name]]: RESP2 only.
 * With no password set (kv_server has none), Redis takes any password for
 * the user "default". The reply is HELLO's map, flattened as RESP2 does;
 * "version" is that of the Redis whose replies kv_server follows. */
static int cmd_hello(struct conn *c, const struct resp_arg *a, size_t argc)
{
    size_t k = 1;
    if (argc > 1) {
        long long version;
        if (!resp_parse_ll(a[1].p, a[1].len, &version))
            return reply_error(c, "ERR Protocol version is not an integer or out of range");
        if (version != 2)
            return reply_error(c, "NOPROTO unsupported protocol version");
        k = 2;
    }
    const struct resp_arg *user = NULL, *name = NULL;
    for (; k < argc; k++) {
        if (is(&a[k], "AUTH") && argc - k > 2) {
            user = &a[k + 1];
            k += 2;
        } else if (is(&a[k], "SETNAME") && argc - k > 1) {
            name = &a[++k];
        } else {
            return reply_error(c, "ERR Syntax error in HELLO option '%.*s'", QUOTED(&a[k]));
        }
    }
    if (user && !is(user, "default"))
        return reply_error(c, "WRONGPASS invalid username-password pair or user is disabled.");
    if (name && !is_attribute(name))
        return bad_name(c);
    if (name && keep_name(c, name) < 0)
        return out_of_memory(c);
    int rc;
    if ((rc = REPLY(c, "*14\r\n$6\r\nserver\r\n$9\r\nkv_server\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
                       "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n")) < 0 ||
        (rc = reply_int(c, c->id)) < 0)
        return rc;
    return REPLY(c, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                    "$7\r\nmodules\r\n*0\r\n");
}

/* redis-benchmark asks for two settings when it starts; they are what a
 * server that keeps nothing on disk says. */
static int cmd_config(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (!is(&a[1], "GET"))
        return reply_error(c, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.", QUOTED(&a[1]));
    size_t n = 0;
    for (size_t i = 2; i < argc; i++)
        n += is(&a[i], "save") || is(&a[i], "appendonly");
    int rc = reply_array(c, 2 * n);
    for (size_t i = 2; i < argc && rc == 0; i++) {
        if (is(&a[i], "save"))
            rc = REPLY(c, "$4\r\nsave\r\n$0\r\n\r\n");
        else if (is(&a[i], "appendonly"))
            rc = REPLY(c, "$10\r\nappendonly\r\n$2\r\nno\r\n");
    }
    return rc;
}

static int cmd_command(struct conn *c, const struct resp_arg *a, size_t argc);
static int cmd_multi(struct conn *c, const struct resp_arg *a, size_t argc);
static int cmd_exec(struct conn *c, const struct resp_arg *a, size_t argc);
static int cmd_discard(struct conn *c, const struct resp_arg *a, size_t argc);

static const struct command {
    const char *name;       /* as Redis spells it in its errors */
    size_t len;
    int arity;              /* n: exactly n words; -n: at least n */
    int first, last, step;  /* where the keys are, for COMMAND */
    int (*run)(struct conn *c, const struct resp_arg *a, size_t argc);
} commands[] = {
#define CMD(name, arity, first, last, step, run) \
    {name, sizeof name - 1, arity, first, last, step, run}
    CMD("get", 2, 1, 1, 1, cmd_get), /* the ones benchmarks time first */
    CMD("set", -3, 1, 1, 1, cmd_set),
    CMD("ping", -1, 0, 0, 0, cmd_ping),
    CMD("incr", 2, 1, 1, 1, cmd_incr),
    CMD("mget", -2, 1, -1, 1, cmd_mget),
    CMD("mset", -3, 1, -1, 2, cmd_mset),
    CMD("del", -2, 1, -1, 1, cmd_del),
    CMD("exists", -2, 1, -1, 1, cmd_exists),
    CMD("decr", 2, 1, 1, 1, cmd_decr),
    CMD("incrby", 3, 1, 1, 1, cmd_incrby),
    CMD("decrby", 3, 1, 1, 1, cmd_decrby),
    CMD("expire", -3, 1, 1, 1, cmd_expire),
    CMD("pexpire", -3, 1, 1, 1, cmd_pexpire),
    CMD("ttl", 2, 1, 1, 1, cmd_ttl),
    CMD("pttl", 2, 1, 1, 1, cmd_pttl),
    CMD("persist", 2, 1, 1, 1, cmd_persist),
    CMD("echo", 2, 0, 0, 0, cmd_echo),
    CMD("dbsize", 1, 0, 0, 0, cmd_dbsize),
    CMD("flushdb", -1, 0, 0, 0, cmd_flushdb),
    CMD("select", 2, 0, 0, 0, cmd_select),
    CMD("multi", 1, 0, 0, 0, cmd_multi),
    CMD("exec", 1, 0, 0, 0, cmd_exec),
    CMD("discard", 1, 0, 0, 0, cmd_discard),
    CMD("quit", -1, 0, 0, 0, cmd_quit),
    CMD("hello", -1, 0, 0, 0, cmd_hello),
    CMD("client", -2, 0, 0, 0, cmd_client),
    CMD("command", -1, 0, 0, 0, cmd_command),
    CMD("config", -2, 0, 0, 0, cmd_config),
#undef CMD
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const struct resp_arg *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (is_n(name, commands[i].name, commands[i].len))
            return &commands[i];
    return NULL;
}

/* A command's entry in COMMAND's reply, in the form Redis had until 6.2:
 * name, arity, flags (none given), first key, last key, step. */
static int reply_command_info(struct conn *c, const struct command *cmd)
{
    char b[128];
    int n = snprintf(b, sizeof b, "*6\r\n$%zu\r\n%s\r\n:%d\r\n*0\r\n:%d\r\n:%d\r\n:%d\r\n", cmd->len,
                     cmd->name, cmd->arity, cmd->first, cmd->last, cmd->step);
    return reply(c, b, (size_t)n);
}

/* COMMAND [COUNT | INFO [name ...] | DOCS [name ...]]: redis-cli asks for
 * the DOCS when it starts, and does without them. */
static int cmd_command(struct conn *c, const struct resp_arg *a, size_t argc)
{
    int rc;
    if (argc == 1 || (is(&a[1], "INFO") && argc == 2)) {
        rc = reply_array(c, NCOMMANDS);
        for (size_t i = 0; i < NCOMMANDS && rc == 0; i++)
            rc = reply_command_info(c, &commands[i]);
        return rc;
    }
    if (is(&a[1], "INFO")) {
        rc = reply_array(c, argc - 2);
        for (size_t k = 2; k < argc && rc == 0; k++) {
            const struct command *cmd = find_command(&a[k]);
            rc = cmd ? reply_command_info(c, cmd) : REPLY(c, "$-1\r\n");
        }
        return rc;
    }
    if (is(&a[1], "COUNT")) {
        if (argc != 2)
            return reply_error(c, "ERR wrong number of arguments for 'command|count' command");
        return reply_int(c, (long long)NCOMMANDS);
    }
    if (is(&a[1], "DOCS"))
        return REPLY(c, "*0\r\n");
    return reply_error(c, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.", QUOTED(&a[1]));
}

/* ---- transactions -------------------------------------------------------- */

static void multi_reset(struct multi *m)
{
    free(m->buf);
    *m = (struct multi){0};
}

static void put_size(struct multi *m, size_t v)
{
    memcpy(m->buf + m->len, &v, sizeof v);
    m->len += sizeof v;
}

static size_t get_size(const char **p)
{
    size_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/* Copy the command into the queue: +QUEUED, or an error (and then EXEC
 * aborts) if the queue would pass MAX_QUEUED or memory runs out. */
static int queue_command(struct conn *c, const struct command *cmd, const struct resp_arg *a,
                         size_t argc)
{
    struct multi *m = &c->multi;
    size_t need = 2 * sizeof(size_t);
    for (size_t i = 0; i < argc; i++)
        need += sizeof(size_t) + a[i].len;
    if (need > MAX_QUEUED - m->len) {
        m->failed = 1;
        return reply_error(c, "ERR transaction too big");
    }
    if (m->cap - m->len < need) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap - m->len < need)
            cap *= 2;
        char *buf = realloc(m->buf, cap);
        if (!buf) {
            m->failed = 1;
            return out_of_memory(c);
        }
        m->buf = buf;
        m->cap = cap;
    }
    put_size(m, (size_t)(cmd - commands));
    put_size(m, argc);
    for (size_t i = 0; i < argc; i++) {
        put_size(m, a[i].len);
        memcpy(m->buf + m->len, a[i].p, a[i].len);
        m->len += a[i].len;
    }
    m->count++;
    return REPLY(c, "+QUEUED\r\n");
}

static int cmd_multi(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)a;
    (void)argc;
    if (c->multi.on)
        return reply_error(c, "ERR MULTI calls can not be nested"); /* and go on */
    c->multi.on = 1;
    return REPLY(c, "+OK\r\n");
}

static int cmd_discard(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)a;
    (void)argc;
    if (!c->multi.on)
        return reply_error(c, "ERR DISCARD without MULTI");
    multi_reset(&c->multi);
    return REPLY(c, "+OK\r\n");
}

/* Run what was queued, each command's reply an element of EXEC's: all in
 * this call, with no wait, so no other connection's command comes between. */
static int cmd_exec(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)a;
    (void)argc;
    struct multi m = c->multi;
    if (!m.on)
        return reply_error(c, "ERR EXEC without MULTI");
    c->multi = (struct multi){0}; /* the commands now run, not queue */
    int rc;
    if (m.failed)
        rc = REPLY(c, "-EXECABORT Transaction discarded because of previous errors.\r\n");
    else
        rc = reply_array(c, m.count);
    struct resp_arg *args = NULL;
    size_t cap = 0;
    for (const char *p = m.buf, *end = m.buf + m.len; p < end && rc == 0 && !m.failed;) {
        const struct command *cmd = &commands[get_size(&p)];
        size_t n = get_size(&p);
        if (n > cap) {
            struct resp_arg *more = realloc(args, n * sizeof *args);
            if (!more) {
                rc = out_of_memory(c); /* this command's reply; the next ones may run */
                for (size_t i = 0; i < n; i++)
                    p += get_size(&p);
                continue;
            }
            args = more;
            cap = n;
        }
        for (size_t i = 0; i < n; i++) {
            args[i].len = get_size(&p);
            args[i].p = p;
            args[i].off = 0;
            p += args[i].len;
        }
        rc = cmd->run(c, args, n);
    }
    free(args);
    multi_reset(&m);
    return rc;
}

/* ---- running a command --------------------------------------------------- */

static int unknown_command(struct conn *c, const struct resp_arg *a, size_t argc)
{
    /* Redis quotes the arguments until they fill 128 bytes. */
    char args[160];
    size_t n = 0;
    for (size_t i = 1; i < argc && n < 128; i++) {
        size_t k = a[i].len < 128 - n ? a[i].len : 128 - n;
        args[n++] = '\'';
        memcpy(args + n, a[i].p, k);
        n += k;
        memcpy(args + n, "' ", 2);
        n += 2;
    }
    return reply_error(c, "ERR unknown command '%.*s', with args beginning with: %.*s",
                       QUOTED(&a[0]), (int)n, args);
}

/* A command Redis refuses before it runs (unknown, or with the wrong
 * number of arguments): inside MULTI, EXEC will abort; an EXEC refused
 * aborts at once. */
static int refuse(struct conn *c, const struct command *cmd, const struct resp_arg *a, size_t argc)
{
    if (c->multi.on)
        c->multi.failed = 1;
    if (!cmd)
        return unknown_command(c, a, argc);
    if (cmd->run == cmd_exec) {
        multi_reset(&c->multi);
        return reply_error(c, "EXECABORT Transaction discarded because of: "
                              "wrong number of arguments for 'exec' command");
    }
    return reply_error(c, "ERR wrong number of arguments for '%s' command", cmd->name);
}

/* Run (or, after MULTI, queue) a command: 0, 1 if the connection is to be
 * closed (QUIT), or its error. */
static int execute(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (!argc)
        return 0;
    const struct command *cmd = find_command(&a[0]);
    if (!cmd || (cmd->arity > 0 ? argc != (size_t)cmd->arity : argc < (size_t)-cmd->arity))
        return refuse(c, cmd, a, argc);
    if (c->multi.on && cmd->run != cmd_exec && cmd->run != cmd_discard && cmd->run != cmd_multi &&
        cmd->run != cmd_quit)
        return queue_command(c, cmd, a, argc);
    return cmd->run(c, a, argc);
}

/* ---- the connection's task ----------------------------------------------- */

/* Make room for the command at the front of the buffer, n bytes of it
 * there: raise the limit while a command larger than it arrives, or bring
 * it back down once no big command is pending (resp_read_limit()). 0, -1
 * if the command is too big (a protocol error, in c->parser.error), or the
 * error of asyncio_stream_set_limit(). */
static int fit_limit(struct conn *c, size_t n, size_t *limit)
{
    size_t want = resp_read_limit(&c->parser, n, *limit, ASYNCIO_STREAM_LIMIT);
    if (!want)
        return -1;
    if (want == *limit)
        return 0;
    int rc = asyncio_stream_set_limit(c->s, want); /* cannot fail: n < want */
    if (rc == 0)
        *limit = want;
    return rc;
}

/* Before each wait: --timeout counts from now. */
static void idle_from_now(struct conn *c)
{
    if (c->idle)
        asyncio_timeout_reschedule(c->idle, asyncio_loop_time() + (double)c->app->timeout);
}

/*
 * The end of a connection closed after an error reply: our FIN goes after
 * the reply, then what the client still sends is read and dropped, for
 * LINGER_S at most. Closing with input unread would make the kernel reset
 * the connection, and a reset can destroy the reply before the client has
 * read it.
 */
static int linger(asyncio_stream_t *s)
{
    asyncio_timeout_t scope;
    int rc = asyncio_stream_write_eof(s);
    if (rc < 0 || (rc = asyncio_timeout_enter(&scope, LINGER_S)) < 0)
        return rc;
    ssize_t got;
    do {
        asyncio_stream_consume(s, asyncio_stream_peek(s, NULL));
        got = asyncio_stream_fill(s);
    } while (got > 0);
    asyncio_timeout_exit(&scope);
    return (int)got; /* 0 at the client's end, -ETIMEDOUT after LINGER_S */
}

#define CLOSE_AFTER_REPLY 1

/* Read and answer commands until the client leaves or QUITs (0), sends
 * something that is no command (the error answered: CLOSE_AFTER_REPLY), or
 * an error ends the connection (-ETIMEDOUT: --timeout). */
static int serve_commands(struct conn *c)
{
    asyncio_stream_t *s = c->s;
    size_t limit = ASYNCIO_STREAM_LIMIT;
    for (;;) {
        const void *data;
        size_t n = asyncio_stream_peek(s, &data);
        size_t done = 0, used;
        enum resp_result r = RESP_MORE;
        int rc = 0;
        /* Answer every command that came: the replies leave together. */
        while (done < n && asyncio_stream_write_buffer_size(s) <= ASYNCIO_STREAM_HIGH_WATER) {
            r = resp_parse(&c->parser, (const char *)data + done, n - done, &used);
            if (r != RESP_COMMAND)
                break;
            done += used;
            if ((rc = execute(c, c->parser.argv, c->parser.argc)) != 0)
                return rc > 0 ? 0 : rc; /* QUIT, or the connection's error */
        }
        if (r == RESP_NOMEM)
            return -ENOMEM;
        if (r == RESP_ERROR)
            break;
        asyncio_stream_consume(s, done);
        idle_from_now(c);
        if (asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER) {
            if ((rc = asyncio_stream_drain(s)) < 0)
                return rc;
            continue;
        }
        if ((rc = fit_limit(c, n - done, &limit)) == -1)
            break;
        if (rc < 0)
            return rc;
        ssize_t got = asyncio_stream_fill(s);
        if (got <= 0)
            return (int)got;
    }
    /* A protocol error: answer, then close, as Redis does. */
    int rc = reply_error(c, "ERR %s", c->parser.error);
    return rc < 0 ? rc : CLOSE_AFTER_REPLY;
}

/* One connection more than --max-connections: refused as Redis does. */
static int refuse_connection(asyncio_stream_t *s)
{
    static const char no[] = "-ERR max number of clients reached\r\n";
    int rc = asyncio_stream_write(s, no, sizeof no - 1);
    return rc < 0 ? rc : linger(s);
}

static int serve_client(asyncio_stream_t *s, struct app *app)
{
    struct conn c = {.s = s, .app = app, .db = &app->db, .id = ++app->last_id};
    resp_parser_init(&c.parser);
    c.parser.max_args = app->max_args;
    c.parser.max_bulk = app->max_bulk;
    asyncio_timeout_t idle;
    int rc = app->timeout ? asyncio_timeout_enter(&idle, INFINITY) : 0;
    if (rc < 0)
        return rc;
    c.idle = app->timeout ? &idle : NULL;
    rc = serve_commands(&c);
    if (c.idle)
        asyncio_timeout_exit(&idle);
    if (rc == CLOSE_AFTER_REPLY)
        rc = linger(s);
    resp_parser_free(&c.parser);
    multi_reset(&c.multi);
    free(c.name);
    return rc;
}

static int serve(asyncio_stream_t *s, void *arg)
{
    struct app *app = arg;
    /* This connection is counted: one more than allowed is refused. */
    int rc = asyncio_server_connections(app->srv) > app->max_connections ? refuse_connection(s)
                                                                          : serve_client(s, app);
    /* Timed out with replies still queued: the client does not read them.
     * Drop them (a reset), rather than leave the close waiting for it. */
    if (rc == -ETIMEDOUT && asyncio_stream_write_buffer_size(s) > 0)
        asyncio_stream_abort(s);
    /* The usual ends of a connection are no errors of the handler. */
    if (rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF || rc == -ENOTCONN || rc == -ETIMEDOUT)
        rc = 0;
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

#define BUSY_POLL_US 20 /* 8-12% more requests a second than 0 (README) */

static void on_signal(int signum, void *arg)
{
    (void)signum;
    struct app *app = arg;
    asyncio_server_close(app->srv);
    asyncio_server_close_clients(app->srv);
}

static int main_task(void *arg, void **result)
{
    (void)result;
    struct app *app = arg;
    int rc = asyncio_start_server(&app->srv, serve, app, app->host, app->port, NULL);
    if (rc < 0) {
        fprintf(stderr, "kv_server: cannot listen on %s:%d: %s\n", app->host, app->port, strerror(-rc));
        return rc;
    }
    if ((rc = asyncio_add_signal_handler(SIGINT, on_signal, app)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, on_signal, app)) < 0) {
        fprintf(stderr, "kv_server: signal handlers: %s\n", strerror(-rc));
        asyncio_server_close(app->srv);
    } else {
        printf("listening on %s:%d\n", app->host, asyncio_server_port(app->srv));
        fflush(stdout);
        rc = asyncio_server_serve_forever(app->srv);
    }
    int closed = asyncio_server_wait_closed(app->srv);
    return rc < 0 ? rc : closed;
}

/* Room for max connections (a descriptor each) and a few more, as far as
 * the hard limit allows (Redis does the same); past it, the library's
 * accept pauses until a descriptor is free. */
static void raise_fd_limit(unsigned long max)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static int usage(void)
{
    fprintf(stderr, "usage: kv_server PORT [--host HOST] [--busy-poll US] [--timeout SECONDS]\n"
                    "                 [--max-connections N] [--max-args N] [--max-bulk BYTES]\n");
    return 2;
}

/* A decimal number from min to max: 0, or -1 if s is not one. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct app app = {.host = "127.0.0.1", .port = -1, .busy_poll_us = BUSY_POLL_US,
                      .max_connections = MAX_CONNECTIONS, .max_args = RESP_MAX_ARGS,
                      .max_bulk = RESP_MAX_BULK};
    const struct {
        const char *name;
        unsigned long *value, min, max;
    } options[] = {
        {"--timeout", &app.timeout, 0, INT_MAX},
        {"--max-connections", &app.max_connections, 1, 1000000},
        {"--max-args", &app.max_args, 1, INT_MAX},
        {"--max-bulk", &app.max_bulk, 1, RESP_MAX_BULK},
    };
    unsigned long v;
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        while (k < sizeof options / sizeof options[0] && strcmp(argv[i], options[k].name) != 0)
            k++;
        if (k < sizeof options / sizeof options[0] && i + 1 < argc) {
            if (parse_uint(argv[++i], options[k].min, options[k].max, options[k].value) < 0)
                return usage();
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            app.host = argv[++i];
        } else if (strcmp(argv[i], "--busy-poll") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], 0, ASYNCIO_BUSY_POLL_MAX_US, &v) < 0)
                return usage();
            app.busy_poll_us = (unsigned)v;
        } else if (app.port < 0 && parse_uint(argv[i], 0, 65535, &v) == 0) {
            app.port = (int)v;
        } else {
            return usage();
        }
    }
    if (app.port < 0)
        return usage();
    raise_fd_limit(app.max_connections);
#ifdef __GLIBC__
    /* Blocks of 128 KiB and more (a big command's arguments or buffer, a
     * big value) each get pages of their own, grown without a copy and given
     * back when freed: glibc's default, until it frees such a block and
     * raises its threshold, after which they come from the heap, where
     * growing copies them and freeing keeps the pages (a big command would
     * leave the server 10 times its size larger). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    /* 0 leaves it to $ASYNCIO_BUSY_POLL_US, off when that is unset. */
    asyncio_run_options_t opts = {.busy_poll_us = app.busy_poll_us};
    int rc = asyncio_run_ex(main_task, &app, NULL, &opts);
    /* After asyncio_run() no handler can be left to use the keyspace. */
    table_free(&app.db);
    return rc < 0 ? 1 : 0;
}
