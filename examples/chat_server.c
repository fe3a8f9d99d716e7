/*
 * chat_server: a chat room over TCP. Every line a client sends goes to all
 * the others (not back to the sender), prefixed with the sender's name,
 * which is its address:
 *
 *     [127.0.0.1:54321] hello
 *
 * A newcomer is told its own name ("*** you are 127.0.0.1:54321, 2 others
 * here"), and the others see clients join and leave ("*** 127.0.0.1:54321
 * joined", "... left", "... dropped: too slow").
 *
 * Slow clients: a line is queued on each receiver's stream with
 * asyncio_stream_writev(), which never waits, so nobody waits for the
 * slowest reader; instead each queue is bounded, and a client with more
 * than MAX_QUEUE waiting for it (it does not read, or reads slower than
 * the room talks) is disconnected, as IRC servers do ("SendQ exceeded").
 * A writer task per client with a queue of lines would bound it as well,
 * at the price of a task per client and more copies.
 *
 * Run it with `chat_server 7000` (or `chat_server 7000 --host 0.0.0.0`),
 * then chat from several terminals with `nc 127.0.0.1 7000`. Ctrl-C or
 * SIGTERM closes it, clients included, with exit status 0.
 */
#define _POSIX_C_SOURCE 200809L /* getnameinfo() */
#include <asyncio.h>

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_QUEUE (1024 * 1024)

struct client {
    struct client *prev, *next; /* in the room */
    asyncio_stream_t *s;
    bool dropped;
    char name[80];   /* "127.0.0.1:54321" */
    char prefix[84]; /* "[127.0.0.1:54321] " */
};

struct room {
    struct client all; /* the list head */
    size_t count;
};

struct args {
    const char *host;
    int port;
};

/* Disconnect a client too slow to take what it is sent: abort drops its
 * queue and resets the connection at once (a close would first try to send
 * the megabyte queued), and its handler's next read finds the end. */
static void drop(struct client *c)
{
    c->dropped = true;
    asyncio_stream_abort(c->s);
}

/* Queue iov for everyone in the room but from. Never suspends, so the
 * room cannot change under the loop. */
static void broadcast(struct room *room, const struct client *from, const struct iovec *iov,
                      int iovcnt)
{
    for (struct client *c = room->all.next; c != &room->all; c = c->next) {
        if (c == from || c->dropped)
            continue;
        /* A failed write means a broken connection: its handler's read
         * finds out and it leaves. */
        if (asyncio_stream_writev(c->s, iov, iovcnt) == 0 &&
            asyncio_stream_write_buffer_size(c->s) > MAX_QUEUE)
            drop(c);
    }
}

static void announce(struct room *room, const struct client *from, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    struct iovec iov = {msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1};
    broadcast(room, from, &iov, 1);
}

/* Pass each line me sends on to the others, parsed in the stream's own
 * buffer. Returns 0 at the end of the stream, or the error. */
static int relay_lines(struct room *room, struct client *me)
{
    size_t plen = strlen(me->prefix);
    for (;;) {
        const void *data;
        size_t n = asyncio_stream_peek(me->s, &data);
        const char *nl = n ? memchr(data, '\n', n) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - (const char *)data) + 1;
            struct iovec iov[2] = {{me->prefix, plen}, {(void *)data, len}};
            broadcast(room, me, iov, 2);
            asyncio_stream_consume(me->s, len);
            continue;
        }
        /* Yield before reading more: queued lines are sent when the loop
         * polls, and a sender with a flood of input would otherwise read
         * on for a while without letting it, piling megabytes on every
         * queue: the fast readers would be dropped with the slow. */
        ssize_t r = asyncio_sleep(0);
        if (r == 0)
            r = asyncio_stream_fill(me->s);
        if (r > 0)
            continue;
        /* At the end, or with a full buffer and no newline (a line past
         * the stream's 64 KiB limit), what there is goes as a line. */
        n = asyncio_stream_peek(me->s, &data); /* fill may have moved it */
        if (n && (r == 0 || r == -ENOBUFS)) {
            struct iovec iov[3] = {{me->prefix, plen}, {(void *)data, n}, {"\n", 1}};
            broadcast(room, me, iov, 3);
            asyncio_stream_consume(me->s, n);
        }
        if (r != -ENOBUFS)
            return (int)r;
    }
}

/* "address:port" of the peer; numeric, so getnameinfo() never blocks. */
static void peer_name(asyncio_stream_t *s, char *name, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[64], port[8];
    if (getpeername(asyncio_stream_fd(s), (struct sockaddr *)&ss, &len) < 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(name, cap, "fd%d", asyncio_stream_fd(s));
    else
        snprintf(name, cap, "%s:%s", host, port);
}

static int handle(asyncio_stream_t *s, void *arg)
{
    struct room *room = arg;
    struct client me = {.s = s};
    peer_name(s, me.name, sizeof me.name);
    snprintf(me.prefix, sizeof me.prefix, "[%s] ", me.name);

    char hello[160];
    int n = snprintf(hello, sizeof hello, "*** you are %s, %zu other%s here\n", me.name,
                     room->count, room->count == 1 ? "" : "s");
    asyncio_stream_write(s, hello, (size_t)n < sizeof hello ? (size_t)n : sizeof hello - 1);
    announce(room, &me, "*** %s joined\n", me.name);
    me.prev = room->all.prev;
    me.next = &room->all;
    me.prev->next = me.next->prev = &me;
    room->count++;

    int rc = relay_lines(room, &me);

    me.prev->next = me.next;
    me.next->prev = me.prev;
    room->count--;
    announce(room, &me, me.dropped ? "*** %s dropped: too slow\n" : "*** %s left\n", me.name);
    /* The ordinary ends of a connection are no error of the server's. */
    return rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF ? 0 : rc;
}

static void stop(int signum, void *arg)
{
    (void)signum;
    asyncio_server_close(arg);
    asyncio_server_close_clients(arg);
}

static int main_task(void *arg, void **result)
{
    (void)result;
    const struct args *a = arg;
    struct room room = {.all = {.prev = &room.all, .next = &room.all}};
    asyncio_server_t *srv;
    int rc = asyncio_start_server(&srv, handle, &room, a->host, a->port, NULL);
    if (rc < 0) {
        fprintf(stderr, "chat_server: cannot listen on %s:%d: %s\n", a->host, a->port,
                strerror(-rc));
        return rc;
    }
    if ((rc = asyncio_add_signal_handler(SIGINT, stop, srv)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, stop, srv)) < 0) {
        fprintf(stderr, "chat_server: signal handler: %s\n", strerror(-rc));
        asyncio_server_close(srv);
        asyncio_server_close_clients(srv);
        asyncio_server_wait_closed(srv); /* the handlers use room */
        return rc;
    }
    printf("listening on %s:%d\n", a->host, asyncio_server_port(srv));
    fflush(stdout);
    rc = asyncio_server_serve_forever(srv);
    int closed = asyncio_server_wait_closed(srv);
    return rc < 0 ? rc : closed;
}

/* PORT [--host HOST], the options before or after the port. */
static int parse_args(int argc, char **argv, struct args *a)
{
    int have_port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            a->host = argv[++i];
            continue;
        }
        char *end;
        long p = strtol(argv[i], &end, 10);
        if (have_port || argv[i][0] < '0' || argv[i][0] > '9' || *end || p > 65535)
            return -1;
        a->port = (int)p;
        have_port = 1;
    }
    return have_port ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct args a = {"127.0.0.1", 0};
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "usage: chat_server PORT [--host HOST]\n");
        return 2;
    }
    return asyncio_run(main_task, &a, NULL) < 0;
}
