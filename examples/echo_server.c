/*
 * echo_server: a TCP server that sends every byte back, with a task per
 * connection; the server of the echo benchmark (bench/net.sh).
 *
 *     async def handle(reader, writer):
 *         while data := await reader.read(262144):
 *             writer.write(data)
 *             await writer.drain()
 *
 *     server = await asyncio.start_server(handle, "127.0.0.1", port)
 *     loop.add_signal_handler(SIGTERM, server.close) ...
 *
 * Run it with `echo_server 7000` (or `echo_server 7000 --host 0.0.0.0`),
 * then try `nc -N 127.0.0.1 7000 < /etc/services | cmp - /etc/services`
 * or examples/echo_client. Ctrl-C or SIGTERM closes it, clients included,
 * with exit status 0.
 */
#include <asyncio.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One read buffer for all connections, as hand-written epoll loops have:
 * nothing suspends between asyncio_stream_read() filling it and
 * asyncio_stream_write() sending or copying it, so no other task can touch
 * it in between (one loop, one thread). On each handler's stack it would
 * cost every idle connection a second stack page, and one that ever
 * carried a large message the whole buffer's pages for good. Reads of
 * 4 KiB or more go straight from the socket into it. 256 KiB, the size
 * uvloop reads with (256,000 bytes), takes a 100 KiB message in one read,
 * and several at once when many are in flight.
 */
static char buf[256 * 1024];

/* Without the buffer a handler needs little stack: reserving 64 KiB rather
 * than the default 256 KiB costs fewer page tables (a stack is backed only
 * where it is touched either way). */
#define HANDLER_STACK (64 * 1024)

struct args {
    const char *host;
    int port;
};

/* The ends of a connection that are no error of the server's: the peer
 * reset or went away, or the server closed the stream at shutdown. */
static int quiet(ssize_t rc)
{
    return rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF ? 0 : (int)rc;
}

static int handle(asyncio_stream_t *s, void *arg)
{
    (void)arg;
    for (;;) {
        ssize_t n = asyncio_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return quiet(n); /* 0: the client is done; the server closes s */
        /* Queued, or sent at once when large; drain only past the high
         * water mark, where it waits for a client that does not read. */
        int rc = asyncio_stream_write(s, buf, (size_t)n);
        if (rc == 0 && asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER)
            rc = asyncio_stream_drain(s);
        if (rc < 0)
            return quiet(rc);
    }
}

static void stop(int signum, void *arg)
{
    (void)signum;
    asyncio_server_close(arg);         /* serve_forever() returns */
    asyncio_server_close_clients(arg); /* handlers are cancelled */
}

static int main_task(void *arg, void **result)
{
    (void)result;
    const struct args *a = arg;
    asyncio_server_options_t opts = {.stack_size = HANDLER_STACK};
    asyncio_server_t *srv;
    int rc = asyncio_start_server(&srv, handle, NULL, a->host, a->port, &opts);
    if (rc < 0) {
        fprintf(stderr, "echo_server: cannot listen on %s:%d: %s\n", a->host, a->port,
                strerror(-rc));
        return rc;
    }
    if ((rc = asyncio_add_signal_handler(SIGINT, stop, srv)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, stop, srv)) < 0) {
        fprintf(stderr, "echo_server: signal handler: %s\n", strerror(-rc));
        return rc; /* the loop frees the server */
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
        fprintf(stderr, "usage: echo_server PORT [--host HOST]\n");
        return 2;
    }
    return asyncio_run(main_task, &a, NULL) < 0;
}
