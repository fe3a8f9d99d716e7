/*
 * echo_client: a client for echo_server (or any line server): sends what
 * it reads on its standard input, prints what comes back, and at the end
 * of its input half-closes the connection and prints the rest, until the
 * server closes it.
 *
 *     reader, writer = await asyncio.open_connection(host, port)
 *     task = asyncio.create_task(copy(stdin, writer))  # then write_eof()
 *     while data := await reader.read(65536):
 *         stdout.write(data)
 *
 * Run it as `echo_client 127.0.0.1 7000` and type lines (Ctrl-D ends the
 * input), or `printf 'one\ntwo\n' | echo_client 127.0.0.1 7000`. Exits 0
 * once the server has closed the connection, 1 on errors, 128 + the signal
 * number on SIGINT or SIGTERM (and SIGPIPE, when its output is closed).
 *
 * Neither terminal nor pipe may block the loop: standard input is made
 * non-blocking and read when the loop says it is readable, standard output
 * goes through a stream, which waits for a slow reader without blocking.
 * Both share their file status flags with whoever else uses them (the
 * shell), so these are put back on the way out.
 */
#define _POSIX_C_SOURCE 200809L /* dup(), fcntl() */
#include <asyncio.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct client {
    const char *host;
    int port;
    asyncio_task_t *main;
    asyncio_stream_t *conn;
    int signum; /* the signal that stopped us, or 0 */
};

/* Write to a stream; wait only when its queue is past the high water mark. */
static int send_bytes(asyncio_stream_t *s, const void *data, size_t n)
{
    int rc = asyncio_stream_write(s, data, n);
    if (rc == 0 && asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER)
        rc = asyncio_stream_drain(s);
    return rc;
}

/* Standard input to the connection, then half-close it. fd 0 may be a
 * terminal (a line per read), a pipe, or a file (never "would block", and
 * which the loop could not wait for anyway). */
static int copy_stdin(void *arg, void **result)
{
    (void)result;
    struct client *c = arg;
    char buf[16384];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n > 0) {
            int rc = send_bytes(c->conn, buf, (size_t)n);
            if (rc < 0)
                return rc;
        } else if (n == 0) {
            return asyncio_stream_write_eof(c->conn);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = asyncio_wait_readable(0);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            int err = -errno;
            fprintf(stderr, "echo_client: standard input: %s\n", strerror(-err));
            asyncio_stream_write_eof(c->conn); /* so that the server ends too */
            return err;
        }
    }
}

static void on_signal(int signum, void *arg)
{
    struct client *c = arg;
    c->signum = signum;
    asyncio_task_cancel(c->main);
}

/* The connection to standard output until the server closes it: 0, or
 * the error, reported. */
static int copy_replies(struct client *c, asyncio_stream_t *out)
{
    char buf[65536];
    for (;;) {
        ssize_t n = asyncio_stream_read(c->conn, buf, sizeof buf);
        if (n < 0 && n != -ECANCELED)
            fprintf(stderr, "echo_client: %s:%d: %s\n", c->host, c->port, strerror((int)-n));
        if (n <= 0)
            return (int)n;
        int rc = send_bytes(out, buf, (size_t)n);
        if (rc == -EPIPE) {
            /* Whoever read our output is gone (`| head`): end as quietly
             * as SIGPIPE would have, with the same status. */
            c->signum = SIGPIPE;
            return rc;
        }
        if (rc < 0 && rc != -ECANCELED)
            fprintf(stderr, "echo_client: standard output: %s\n", strerror(-rc));
        if (rc < 0)
            return rc;
    }
}

static int main_task(void *arg, void **result)
{
    (void)result;
    struct client *c = arg;
    c->main = asyncio_current_task();
    int rc;
    if ((rc = asyncio_add_signal_handler(SIGINT, on_signal, c)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, on_signal, c)) < 0) {
        fprintf(stderr, "echo_client: signal handler: %s\n", strerror(-rc));
        return rc;
    }
    if ((rc = asyncio_open_connection(&c->conn, c->host, c->port, NULL)) < 0) {
        if (rc != -ECANCELED)
            fprintf(stderr, "echo_client: cannot connect to %s:%d: %s\n", c->host, c->port,
                    strerror(-rc));
        return rc;
    }
    asyncio_stream_t *out;
    int fd = dup(1);
    if (fd < 0 || (rc = asyncio_stream_open(&out, fd, 0)) < 0) {
        rc = fd < 0 ? -errno : rc;
        fprintf(stderr, "echo_client: standard output: %s\n", strerror(-rc));
        if (fd >= 0)
            close(fd);
        asyncio_stream_close(c->conn);
        return rc;
    }
    asyncio_task_t *input;
    if ((rc = asyncio_create_task(&input, copy_stdin, c, "stdin")) < 0) {
        asyncio_stream_close(out);
        asyncio_stream_close(c->conn);
        return rc;
    }

    rc = copy_replies(c, out);
    /* The server has closed (or we stop): the rest of the input is moot. */
    asyncio_task_cancel(input);
    int in_rc = asyncio_await(input, NULL);
    asyncio_task_release(input);
    int out_rc = asyncio_stream_wait_closed(out); /* prints what is queued */
    if (out_rc == -EPIPE)
        c->signum = SIGPIPE;
    else if (out_rc < 0 && out_rc != -ECANCELED)
        fprintf(stderr, "echo_client: standard output: %s\n", strerror(-out_rc));
    asyncio_stream_close(c->conn);
    if (rc == 0 && in_rc < 0 && in_rc != -ECANCELED && in_rc != -EPIPE && in_rc != -ECONNRESET)
        rc = in_rc; /* a failed read of stdin (reported there) */
    return rc < 0 ? rc : out_rc;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 3 ? strtol(argv[2], &end, 10) : 0;
    if (argc != 3 || !*argv[1] || end == argv[2] || *end || port < 1 || port > 65535) {
        fprintf(stderr, "usage: echo_client HOST PORT\n");
        return 2;
    }
    /* Writes to a closed pipe fail with EPIPE instead (see copy_replies),
     * so that the flags below are put back whatever happens. */
    signal(SIGPIPE, SIG_IGN);
    int in_flags = fcntl(0, F_GETFL), out_flags = fcntl(1, F_GETFL);
    if (out_flags < 0) {
        perror("echo_client: standard output");
        return 1;
    }
    if (in_flags < 0 || fcntl(0, F_SETFL, in_flags | O_NONBLOCK) < 0) {
        perror("echo_client: standard input");
        return 1;
    }
    struct client c = {.host = argv[1], .port = (int)port};
    int rc = asyncio_run(main_task, &c, NULL);
    fcntl(0, F_SETFL, in_flags);
    fcntl(1, F_SETFL, out_flags);
    if (c.signum)
        return 128 + c.signum;
    return rc < 0;
}
