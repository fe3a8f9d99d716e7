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
 *     chat_server PORT [--host HOST] [--grace SECONDS] [--max-connections N]
 *
 * Run it with `chat_server 7000` (or `chat_server 7000 --host 0.0.0.0`),
 * then chat from several terminals with `nc 127.0.0.1 7000`. Ctrl-C or
 * SIGTERM closes it, clients included, with exit status 0.
 *
 * Back-pressure: the room goes at the pace of its slowest reader, not
 * of its fastest talker. A line is queued on each reader's stream with
 * asyncio_stream_writev(), which never waits. Before it passes on a line,
 * a talker's task checks every other client's queue: while one holds more
 * than QUEUE_HIGH (256 KiB) the talker waits, with asyncio_stream_drain()
 * on that reader's stream (its water marks set to QUEUE_HIGH and
 * QUEUE_LOW), until that queue is down to QUEUE_LOW (64 KiB); meanwhile it
 * does not read from its own client, whom TCP then slows down. A reader
 * that reads steadily, however slowly, is never dropped: the talkers
 * slow to its pace. A queue grows past QUEUE_HIGH by one line at most
 * (the check and the queuing of the line do not suspend in between), and
 * by the join and leave lines, which never wait.
 *
 * Dropping: a reader is dropped ("*** NAME dropped: too slow") when a
 * talker has waited for it GRACE seconds (--grace, default 15) and its
 * queue has not shrunk in that time. The talker checks at each quarter of
 * GRACE whether the queue shrank; the fourth check in a row that finds it
 * has not drops the reader. So a reader that takes nothing more goes
 * GRACE seconds after a talker began to wait for it, or between GRACE and
 * 1.25 GRACE after it last took something if that was later. What a
 * client that never reads does to the room, precisely: the kernel's
 * buffers for it fill first (a few MiB), then its queue passes QUEUE_HIGH
 * and the talker of that line waits before its next one; so does every
 * other talker, since every line goes to every reader. The whole room
 * pauses for GRACE seconds (up to 1.25 GRACE if the kernel still took a
 * few bytes for it in the first quarter); nothing is lost for the others,
 * and once the reader is dropped the lines that waited go out in order
 * and the room goes on at full speed. A reader that takes a few bytes in
 * each quarter of GRACE is kept, and holds the room to its pace. A client
 * that reads nothing while nobody talks holds at most QUEUE_HIGH and one
 * line, and is not dropped.
 *
 * Limits:
 *   - a line is at most 64 KiB (the stream's read limit); a longer one is
 *     passed on in pieces of 64 KiB, each as a line;
 *   - QUEUE_HIGH (256 KiB) and QUEUE_LOW (64 KiB) per reader, and --grace
 *     SECONDS (default 15, any positive number) without progress, as
 *     above;
 *   - MAX_QUEUE (1 MiB) per reader: past it a reader is dropped at once.
 *     Lines wait at QUEUE_HIGH, so only the join and leave lines can take
 *     a queue that far (many clients coming and going while a reader takes
 *     nothing);
 *   - --max-connections N (1 to 1000000, default 10000) clients in the
 *     room: one more is sent "*** server full" and closed at once, and
 *     the others do not notice.
 */
#define _POSIX_C_SOURCE 200809L /* getnameinfo() */
#include <asyncio.h>

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define QUEUE_HIGH (256 * 1024)
#define QUEUE_LOW (64 * 1024)
#define MAX_QUEUE (1024 * 1024)
#define DEFAULT_GRACE 15.0
#define DEFAULT_MAX_CONNECTIONS 10000

struct client {
    struct client *prev, *next; /* in the room */
    asyncio_stream_t *s;
    unsigned long id; /* to find it again after a wait: it may have left */
    bool dropped;
    char name[80];   /* "127.0.0.1:54321" */
    char prefix[84]; /* "[127.0.0.1:54321] " */
};

struct room {
    struct client all; /* the list head */
    size_t count;
    unsigned long last_id;
    /* Set and cleared at once each time a talker is done waiting for a
     * reader: it wakes the talkers that wait for the same reader. */
    asyncio_event_t progress;
    double grace;
    size_t max_clients;
};

struct args {
    const char *host;
    int port;
    double grace;
    long max_clients;
};

/* Disconnect a client too slow to take what it is sent: abort drops its
 * queue and resets the connection at once (a close would first try to send
 * what is queued), and its handler's next read finds the end. */
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

/* ---- back-pressure ------------------------------------------------------ */

/* The client with this id, if it is still in the room. */
static struct client *find(struct room *room, unsigned long id)
{
    for (struct client *c = room->all.next; c != &room->all; c = c->next)
        if (c->id == id && !c->dropped)
            return c;
    return NULL;
}

/* A reader other than me with more than QUEUE_HIGH queued, or NULL. */
static struct client *behind(struct room *room, const struct client *me)
{
    for (struct client *c = room->all.next; c != &room->all; c = c->next)
        if (c != me && !c->dropped && asyncio_stream_write_buffer_size(c->s) > QUEUE_HIGH)
            return c;
    return NULL;
}

/* Wake every talker waiting in wait_for_reader() for another's drain. */
static void pulse(struct room *room)
{
    asyncio_event_set(&room->progress);
    asyncio_event_clear(&room->progress);
}

/*
 * Wait until r's queue is down to QUEUE_LOW, or r is gone: left, or
 * dropped here when its queue did not shrink in GRACE seconds (checked at
 * each quarter of it). A stream has one drainer at a time: if another
 * talker waits for r already, wait until that one is done. r is not used
 * after a wait (it may have left): it is looked up again by its id.
 * Returns 0 or -ECANCELED.
 */
static int wait_for_reader(struct room *room, struct client *r)
{
    unsigned long id = r->id;
    int quiet = 0; /* quarters of GRACE in a row in which r took nothing */
    int rc;
    do {
        size_t queued = asyncio_stream_write_buffer_size(r->s);
        asyncio_timeout_t scope;
        asyncio_timeout_enter(&scope, room->grace / 4);
        rc = asyncio_stream_drain(r->s);
        asyncio_timeout_exit(&scope);
        if (rc != -ETIMEDOUT || !(r = find(room, id)))
            break;
        quiet = asyncio_stream_write_buffer_size(r->s) < queued ? 0 : quiet + 1;
        if (quiet == 4)
            drop(r);
    } while (!r->dropped);
    if (rc == -EBUSY) /* another talker drains r */
        return asyncio_event_wait(&room->progress);
    pulse(room);
    return rc == -ECANCELED ? rc : 0; /* r's own errors are its handler's */
}

/* Hold me's lines back while a reader is too far behind. */
static int wait_for_readers(struct room *room, const struct client *me)
{
    struct client *r;
    while ((r = behind(room, me)) != NULL) {
        int rc = wait_for_reader(room, r);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- a client ----------------------------------------------------------- */

/* Pass len bytes of data on as a line from me (newline: add one). */
static void pass_on(struct room *room, struct client *me, const void *data, size_t len,
                    bool newline)
{
    struct iovec iov[3] = {{me->prefix, strlen(me->prefix)}, {(void *)data, len}, {"\n", 1}};
    broadcast(room, me, iov, newline ? 3 : 2);
    asyncio_stream_consume(me->s, len);
}

/* Pass each line me sends on to the others, parsed in the stream's own
 * buffer, each once nobody is too far behind (and so not reading from me
 * meanwhile). Returns 0 at the end of the stream, or the error. */
static int relay_lines(struct room *room, struct client *me)
{
    ssize_t got = 1; /* what the last fill returned: > 0, more may come */
    for (;;) {
        int rc = wait_for_readers(room, me);
        if (rc < 0 || me->dropped)
            return rc;
        const void *data;
        size_t n = asyncio_stream_peek(me->s, &data);
        const char *nl = n ? memchr(data, '\n', n) : NULL;
        if (nl) {
            pass_on(room, me, data, (size_t)(nl - (const char *)data) + 1, false);
        } else if (n && (got == 0 || got == -ENOBUFS)) {
            /* At the end, or with a full buffer and no newline (a line
             * past the stream's 64 KiB limit), what there is goes as a
             * line. */
            pass_on(room, me, data, n, true);
        } else if (got == 0 || (got < 0 && got != -ENOBUFS)) {
            return (int)got;
        } else {
            got = asyncio_stream_fill(me->s);
        }
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
    if (room->count >= room->max_clients) {
        static const char full[] = "*** server full\n";
        asyncio_stream_write(s, full, sizeof full - 1);
        return 0; /* the server closes s, once the line is sent */
    }
    struct client me = {.s = s, .id = ++room->last_id};
    asyncio_stream_set_write_buffer_limits(s, QUEUE_HIGH, QUEUE_LOW);
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
    pulse(room); /* talkers held back by me go on (my drainer: as s closes) */
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

static int serve(struct room *room, const struct args *a)
{
    asyncio_server_t *srv;
    int rc = asyncio_start_server(&srv, handle, room, a->host, a->port, NULL);
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

static int main_task(void *arg, void **result)
{
    (void)result;
    const struct args *a = arg;
    struct room room = {.all = {.prev = &room.all, .next = &room.all},
                        .grace = a->grace,
                        .max_clients = (size_t)a->max_clients};
    asyncio_event_init(&room.progress);
    int rc = serve(&room, a);
    asyncio_event_destroy(&room.progress);
    return rc;
}

/* PORT [--host HOST] [--grace SECONDS] [--max-connections N], the options
 * before or after the port. */
static int parse_args(int argc, char **argv, struct args *a)
{
    int have_port = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            a->host = argv[++i];
        } else if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
            a->grace = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(a->grace > 0) || !isfinite(a->grace))
                return -1;
        } else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc) {
            a->max_clients = strtol(argv[++i], &end, 10);
            if (argv[i][0] < '0' || argv[i][0] > '9' || *end || a->max_clients < 1 ||
                a->max_clients > 1000000)
                return -1;
        } else {
            long p = strtol(argv[i], &end, 10);
            if (have_port || argv[i][0] < '0' || argv[i][0] > '9' || *end || p > 65535)
                return -1;
            a->port = (int)p;
            have_port = 1;
        }
    }
    return have_port ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct args a = {"127.0.0.1", 0, DEFAULT_GRACE, DEFAULT_MAX_CONNECTIONS};
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "usage: chat_server PORT [--host HOST] [--grace SECONDS] "
                        "[--max-connections N (1-1000000)]\n");
        return 2;
    }
    return asyncio_run(main_task, &a, NULL) < 0;
}
