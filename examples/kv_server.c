/*
 * kv_server: a small Redis. Enough of its protocol (RESP) for redis-cli and
 * redis-benchmark, over an in-memory hash table shared by every connection.
 *
 *     kv_server PORT [--host HOST] [--busy-poll US]
 *                                            (HOST: 127.0.0.1 unless given)
 *     redis-cli -p PORT set greeting hello
 *     redis-cli -p PORT get greeting
 *     printf 'PING\r\nINCR hits\r\n' | nc -N 127.0.0.1 PORT
 *     redis-benchmark -p PORT -t ping,set,get -q
 *
 * Commands: PING, ECHO, SET (with EX, PX, NX, XX), GET, DEL, EXISTS, INCR,
 * and COMMAND and CONFIG GET, answered just enough for the clients' opening
 * questions. Both protocols: multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
 * and inline ("GET k\r\n", what nc and telnet send; no quoting).
 *
 * What it shows: a parser working in the stream's own buffer
 * (asyncio_stream_peek/fill/consume) with no copy and no allocation per
 * command (the parser itself is in proto/resp.c, where the fuzz targets
 * reach it). Every complete command that one read brought is answered before
 * the next read, and the replies, queued with asyncio_stream_write(), leave
 * in one system call: pipelining costs nothing extra. A command larger than
 * the read limit (a big SET) raises the stream's limit while it arrives.
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
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- connections and the parser ------------------------------------------ */

struct conn {
    asyncio_stream_t *s;
    struct table *db;
    /* The command being parsed. It stays at the front of the stream's
     * buffer while more of it is read, and the buffer may move: the parser
     * keeps offsets from its first byte, and resumes where it stopped. */
    struct resp_parser parser;
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

/* ---- commands ------------------------------------------------------------ */

static int is_n(const struct resp_arg *a, const char *word, size_t len)
{
    return a->len == len && strncasecmp(a->p, word, len) == 0;
}

#define is(a, literal) is_n(a, literal, sizeof literal - 1)

static int out_of_memory(struct conn *c)
{
    return REPLY(c, "-OOM out of memory\r\n");
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

static int cmd_get(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    size_t i = table_lookup(c->db, a[1].p, a[1].len, hash_bytes(a[1].p, a[1].len));
    if (i == NONE)
        return REPLY(c, "$-1\r\n");
    struct item *it = c->db->slots[i].it;
    return reply_bulk(c, value_of(it), it->vlen);
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
            return reply_error(c, "ERR value is not an integer or out of range");
        uint64_t now = asyncio_loop_time_ns();
        if (ttl <= 0 || (unsigned long long)ttl > (UINT64_MAX - now) / 1000000 / (unsigned long long)unit)
            return reply_error(c, "ERR invalid expire time in 'set' command");
        expires = now + (uint64_t)ttl * (uint64_t)unit * 1000000;
    }
    uint64_t h = hash_bytes(a[1].p, a[1].len);
    size_t i = table_lookup(c->db, a[1].p, a[1].len, h);
    if ((nx && i != NONE) || (xx && i == NONE))
        return REPLY(c, "$-1\r\n");
    if (table_store(c->db, i, h, a[1].p, a[1].len, a[2].p, a[2].len, expires) < 0)
        return out_of_memory(c);
    return REPLY(c, "+OK\r\n");
}

static int cmd_del(struct conn *c, const struct resp_arg *a, size_t argc)
{
    long long n = 0;
    for (size_t k = 1; k < argc; k++) {
        size_t i = table_lookup(c->db, a[k].p, a[k].len, hash_bytes(a[k].p, a[k].len));
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
        n += table_lookup(c->db, a[k].p, a[k].len, hash_bytes(a[k].p, a[k].len)) != NONE;
    return reply_int(c, n);
}

static int cmd_incr(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)argc;
    uint64_t h = hash_bytes(a[1].p, a[1].len);
    size_t i = table_lookup(c->db, a[1].p, a[1].len, h);
    long long v = 0;
    uint64_t expires = 0; /* INCR keeps the key's time to live */
    if (i != NONE) {
        struct item *it = c->db->slots[i].it;
        if (!resp_parse_ll(value_of(it), it->vlen, &v))
            return reply_error(c, "ERR value is not an integer or out of range");
        if (v == LLONG_MAX)
            return reply_error(c, "ERR increment or decrement would overflow");
        expires = it->expires;
    }
    char b[24];
    size_t n = format_ll(b, ++v);
    if (table_store(c->db, i, h, a[1].p, a[1].len, b, n, expires) < 0)
        return out_of_memory(c);
    return reply_int(c, v);
}

/* redis-cli and redis-benchmark ask for the command table and for two
 * settings when they start; they do without the table, and the settings
 * are what a server that keeps nothing on disk says. */
static int cmd_command(struct conn *c, const struct resp_arg *a, size_t argc)
{
    (void)a;
    (void)argc;
    return REPLY(c, "*0\r\n");
}

static int cmd_config(struct conn *c, const struct resp_arg *a, size_t argc)
{
    if (!is(&a[1], "GET"))
        return reply_error(c, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                           (int)(a[1].len < 128 ? a[1].len : 128), a[1].p);
    int n = 0;
    for (size_t i = 2; i < argc; i++)
        n += is(&a[i], "save") || is(&a[i], "appendonly");
    char head[16];
    int rc = reply(c, head, (size_t)snprintf(head, sizeof head, "*%d\r\n", 2 * n));
    for (size_t i = 2; i < argc && rc == 0; i++) {
        if (is(&a[i], "save"))
            rc = REPLY(c, "$4\r\nsave\r\n$0\r\n\r\n");
        else if (is(&a[i], "appendonly"))
            rc = REPLY(c, "$10\r\nappendonly\r\n$2\r\nno\r\n");
    }
    return rc;
}

static const struct command {
    const char *name;       /* as Redis spells it in its errors */
    size_t len;
    int arity;              /* n: exactly n words; -n: at least n */
    int (*run)(struct conn *c, const struct resp_arg *a, size_t argc);
} commands[] = {
#define CMD(name, arity, run) {name, sizeof name - 1, arity, run}
    CMD("get", 2, cmd_get), /* the ones benchmarks time first */
    CMD("set", -3, cmd_set),
    CMD("ping", -1, cmd_ping),
    CMD("incr", 2, cmd_incr),
    CMD("del", -2, cmd_del),
    CMD("exists", -2, cmd_exists),
    CMD("echo", 2, cmd_echo),
    CMD("command", -1, cmd_command),
    CMD("config", -2, cmd_config),
#undef CMD
};

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
                       (int)(a[0].len < 128 ? a[0].len : 128), a[0].p, (int)n, args);
}

/* Run the parsed command: 0, or the error of the connection. */
static int execute(struct conn *c)
{
    const struct resp_arg *a = c->parser.argv;
    size_t argc = c->parser.argc;
    if (!argc)
        return 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        if (!is_n(&a[0], cmd->name, cmd->len))
            continue;
        if (cmd->arity > 0 ? argc != (size_t)cmd->arity : argc < (size_t)-cmd->arity)
            return reply_error(c, "ERR wrong number of arguments for '%s' command", cmd->name);
        return cmd->run(c, a, argc);
    }
    return unknown_command(c, a, argc);
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

static int serve(asyncio_stream_t *s, void *arg)
{
    struct conn c = {.s = s, .db = arg};
    resp_parser_init(&c.parser);
    size_t limit = ASYNCIO_STREAM_LIMIT;
    int rc = 0;
    for (;;) {
        const void *data;
        size_t n = asyncio_stream_peek(s, &data);
        size_t done = 0, used;
        enum resp_result r = RESP_MORE;
        /* Answer every command that came: the replies leave together. */
        while (done < n && asyncio_stream_write_buffer_size(s) <= ASYNCIO_STREAM_HIGH_WATER) {
            r = resp_parse(&c.parser, (const char *)data + done, n - done, &used);
            if (r != RESP_COMMAND)
                break;
            done += used;
            if ((rc = execute(&c)) < 0)
                break;
        }
        if (r == RESP_ERROR || r == RESP_NOMEM || rc < 0) {
            if (r == RESP_ERROR) /* answer, then close, as Redis does */
                rc = reply_error(&c, "ERR %s", c.parser.error);
            else if (r == RESP_NOMEM)
                rc = -ENOMEM;
            break;
        }
        asyncio_stream_consume(s, done);
        if (asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER) {
            if ((rc = asyncio_stream_drain(s)) < 0)
                break;
            continue;
        }
        if ((rc = fit_limit(&c, n - done, &limit)) < 0) {
            if (rc == -1)
                rc = reply_error(&c, "ERR %s", c.parser.error);
            break;
        }
        ssize_t got = asyncio_stream_fill(s);
        if (got <= 0) {
            rc = (int)got;
            break;
        }
    }
    resp_parser_free(&c.parser);
    /* The usual ends of a connection are no errors of the handler. */
    if (rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF || rc == -ENOTCONN)
        rc = 0;
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

#define BUSY_POLL_US 20 /* 8-12% more requests a second than 0 (README) */

struct app {
    const char *host;
    int port;
    unsigned busy_poll_us;
    asyncio_server_t *srv;
    struct table db;
};

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
    int rc = asyncio_start_server(&app->srv, serve, &app->db, app->host, app->port, NULL);
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

static int usage(void)
{
    fprintf(stderr, "usage: kv_server PORT [--host HOST] [--busy-poll US]\n");
    return 2;
}

/* A decimal number up to max: 0, or -1 if s is not one. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct app app = {.host = "127.0.0.1", .port = -1, .busy_poll_us = BUSY_POLL_US};
    unsigned long v;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            app.host = argv[++i];
        } else if (strcmp(argv[i], "--busy-poll") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], ASYNCIO_BUSY_POLL_MAX_US, &v) < 0)
                return usage();
            app.busy_poll_us = (unsigned)v;
        } else if (app.port < 0 && parse_uint(argv[i], 65535, &v) == 0) {
            app.port = (int)v;
        } else {
            return usage();
        }
    }
    if (app.port < 0)
        return usage();
    /* 0 leaves it to $ASYNCIO_BUSY_POLL_US, off when that is unset. */
    asyncio_run_options_t opts = {.busy_poll_us = app.busy_poll_us};
    int rc = asyncio_run_ex(main_task, &app, NULL, &opts);
    /* After asyncio_run() no handler can be left to use the keyspace. */
    table_free(&app.db);
    return rc < 0 ? 1 : 0;
}
