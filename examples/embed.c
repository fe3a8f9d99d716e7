/*
 * embed: libasyncio's loop driven by another event loop, as a GUI
 * toolkit's main loop or libevent's would drive it. The program's own loop
 * ("host" in its output) is a plain poll() over the loop's backend fd
 * (epoll's fd) and fds of its own, with a timer of its own beside it,
 * computed from its own clock; it runs one iteration of the
 * libasyncio loop (asyncio_loop_run_nowait()) when that fd is readable or
 * when the time the last iteration asked for has come:
 *
 *     loop = asyncio.new_event_loop()          # asyncio_new_event_loop()
 *     loop.create_task(main())                 # runs at the first iteration
 *     fd = backend_fd(loop)                    # asyncio_loop_backend_fd()
 *     while True:                              # the program's own loop
 *         poll([fd, stdin], min(its own timer, the loop's next_ns))
 *         ...                                  # its timer, its stdin
 *         if fd was readable or next_ns has passed:
 *             if run_nowait(loop, &next_ns) == 1:   # main() called stop()
 *                 break
 *     loop.close()                             # asyncio_loop_close()
 *
 * On the libasyncio side, an echo server, and (in the demo) a client task
 * that sends it what the program's own loop hands over through an
 * asyncio_queue_t, and a task that sleeps and logs. The main task calls
 * asyncio_loop_stop() when it is done, which the program's loop sees as
 * asyncio_loop_run_nowait() returning 1; it then closes the loop.
 *
 *     embed                          the demo: the program's timer ticks 3
 *                                    times, 100 ms apart, each tick handing
 *                                    a message to the client task, which
 *                                    gets it back through the echo server;
 *                                    a task logs twice, 200 ms apart; then
 *                                    the loop is stopped and closed, and it
 *                                    exits 0 (after about 0.4 s). When stdin
 *                                    is not a terminal, the lines read from
 *                                    it before the third tick go through the
 *                                    echo server too.
 *     embed --serve PORT [--host HOST]
 *                                    only the echo server (port 0: a free
 *                                    one), until SIGINT or SIGTERM (handled
 *                                    by the embedded loop, the main
 *                                    thread's); the server of
 *                                    bench/lifecycle.sh's embed workload.
 *
 * ASYNCIO_BACKEND=poll: the poll() backend has no fd to watch
 * (asyncio_loop_backend_fd() gives -ENOTSUP), so the program runs the loop
 * at least every POLL_BACKEND_MS instead, and says so.
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100        /* the demo's own timer */
#define TICKS 3
#define SERVE_TICK_MS 1000 /* --serve: its timer only counts */
#define POLL_BACKEND_MS 5  /* no fd to watch: run the loop this often */
#define LOG_EVERY 0.2      /* the logging task's sleep */
#define LOGS 2
#define LINE_MAX_ 256      /* a message, newline included */

/* ---- the libasyncio side ------------------------------------------------ */

struct app {
    int serve;            /* --serve */
    const char *host;
    int port;             /* asked for; then the one the server got */
    asyncio_queue_t msgs; /* program -> client task: malloc'd lines, NULL ends */
};

/* One read buffer for all connections, and handler stacks of 64 KiB, as
 * examples/echo_server.c has (see there why): bench/lifecycle.sh compares
 * the two, so that only the way the loop is run differs. */
static char buf[256 * 1024];
#define HANDLER_STACK (64 * 1024)

/* A peer that reset or left, or the stream closed at shutdown: no error. */
static int conn_end(ssize_t rc)
{
    return rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF ? 0 : (int)rc;
}

static int echo(asyncio_stream_t *s, void *arg)
{
    (void)arg;
    ssize_t n;
    while ((n = asyncio_stream_read(s, buf, sizeof buf)) > 0) {
        int rc = asyncio_stream_write(s, buf, (size_t)n);
        if (rc == 0 && asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER)
            rc = asyncio_stream_drain(s); /* a client that does not read */
        if (rc < 0)
            return conn_end(rc);
    }
    return conn_end(n); /* 0: the client is done; the server closes s */
}

/* The demo's client: each line the program hands over goes to the echo
 * server and must come back as it was. */
static int client(void *arg, void **result)
{
    (void)result;
    struct app *app = arg;
    asyncio_stream_t *s;
    int rc = asyncio_open_connection(&s, "127.0.0.1", app->port, NULL);
    if (rc < 0)
        return rc;
    char *msg, back[LINE_MAX_ + 1];
    while ((rc = asyncio_queue_get(&app->msgs, (void **)&msg)) == 0 && msg) {
        size_t n = strlen(msg); /* with its newline */
        rc = asyncio_stream_write(s, msg, n);
        ssize_t got = rc < 0 ? rc : asyncio_stream_readline(s, back, sizeof back - 1);
        if (got == (ssize_t)n && memcmp(back, msg, n) == 0)
            printf("client: '%.*s' came back\n", (int)n - 1, msg);
        free(msg);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if (got != (ssize_t)n) {
            rc = -EPROTO;
            break;
        }
    }
    int closed = asyncio_stream_wait_closed(s);
    return rc < 0 ? rc : closed;
}

/* A task of the loop's own, which sleeps and logs. */
static int logger(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 1; i <= LOGS; i++) {
        int rc = asyncio_sleep(LOG_EVERY);
        if (rc < 0)
            return rc;
        printf("asyncio: slept %.1f s (%d of %d)\n", LOG_EVERY, i, LOGS);
    }
    return 0;
}

static void on_signal(int signum, void *arg)
{
    printf("asyncio: signal %d, closing the server\n", signum);
    asyncio_server_close(arg);         /* serve_forever() returns */
    asyncio_server_close_clients(arg); /* handlers are cancelled */
}

static int demo(struct app *app)
{
    asyncio_task_t *t[2];
    int rc = asyncio_create_task(&t[0], client, app, "client");
    if (rc < 0)
        return rc;
    if ((rc = asyncio_create_task(&t[1], logger, NULL, "logger")) < 0) {
        asyncio_task_cancel(t[0]);
        asyncio_task_release(t[0]);
        return rc;
    }
    rc = asyncio_gather(2, t, NULL, NULL, 0);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    return rc;
}

static int serve(asyncio_server_t *srv)
{
    int rc;
    if ((rc = asyncio_add_signal_handler(SIGINT, on_signal, srv)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, on_signal, srv)) < 0) {
        fprintf(stderr, "embed: signal handler: %s\n", strerror(-rc));
        return rc;
    }
    return asyncio_server_serve_forever(srv);
}

static int main_body(struct app *app)
{
    printf("asyncio: the loop's backend is %s\n", asyncio_loop_backend());
    asyncio_server_options_t opts = {.stack_size = HANDLER_STACK};
    asyncio_server_t *srv;
    int rc = asyncio_start_server(&srv, echo, NULL, app->host, app->port, &opts);
    if (rc < 0) {
        fprintf(stderr, "embed: cannot listen on %s:%d: %s\n", app->host, app->port,
                strerror(-rc));
        return rc;
    }
    app->port = asyncio_server_port(srv);
    printf("listening on %s:%d\n", app->host, app->port);
    fflush(stdout);
    rc = app->serve ? serve(srv) : demo(app);
    asyncio_server_close(srv);
    int closed = asyncio_server_wait_closed(srv);
    return rc < 0 ? rc : closed;
}

/* The main task: whatever happens, it stops the loop at its end, which is
 * how the program's loop learns that the work is done. */
static int main_task(void *arg, void **result)
{
    (void)result;
    int rc = main_body(arg);
    printf("asyncio: done (%s), stopping the loop\n", rc < 0 ? strerror(-rc) : "ok");
    asyncio_loop_stop(asyncio_get_running_loop());
    return rc;
}

/* ---- the program's own loop ----------------------------------------------- */

static int64_t now_ns(void) /* the program's own clock */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* poll()'s timeout for a deadline: milliseconds rounded up (a deadline is
 * never polled past), -1 for none. */
static int poll_timeout(int64_t until, int64_t now)
{
    if (until == INT64_MAX)
        return -1;
    if (until <= now)
        return 0;
    int64_t ms = (until - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Hand a line to the client task: put_nowait needs no running loop. */
static void hand_over(struct app *app, const char *text, size_t n)
{
    char *msg = malloc(n + 2);
    if (!msg)
        return;
    memcpy(msg, text, n);
    memcpy(msg + n, "\n", 2);
    if (asyncio_queue_put_nowait(&app->msgs, msg) < 0)
        free(msg);
}

/* The lines of stdin (when it is watched): what read() gives after poll()
 * said it was readable, cut into lines. 0 at its end. */
struct input {
    char line[LINE_MAX_];
    size_t len;
    int lines;
};

static int read_stdin(struct app *app, struct input *in)
{
    char chunk[4096];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    for (ssize_t i = 0; i < n; i++) {
        if (chunk[i] != '\n') {
            if (in->len < sizeof in->line - 1)
                in->line[in->len++] = chunk[i];
            continue;
        }
        hand_over(app, in->line, in->len);
        in->lines++;
        in->len = 0;
    }
    if (n == 0 && in->len) { /* a last line without its newline */
        hand_over(app, in->line, in->len);
        in->lines++;
        in->len = 0;
    }
    return n > 0;
}

/* The demo's timer: each tick hands a message over, the last one the end. */
static void demo_tick(struct app *app, long tick)
{
    char msg[32];
    int len = snprintf(msg, sizeof msg, "message %ld", tick);
    printf("host: tick %ld, hands '%s' to the asyncio side\n", tick, msg);
    hand_over(app, msg, (size_t)len);
    if (tick == TICKS)
        asyncio_queue_put_nowait(&app->msgs, NULL); /* the client's end */
}

struct stats {
    long polls, runs, fd_wakeups, ticks;
};

static int run_host(asyncio_loop_t *loop, struct app *app, struct stats *st)
{
    int fd = asyncio_loop_backend_fd(loop);
    if (fd == -ENOTSUP)
        printf("host: the loop's backend has no fd to watch: running it every %d ms at least\n",
               POLL_BACKEND_MS);
    else if (fd < 0)
        return fd;
    else
        printf("host: polling the loop's fd beside its own timer\n");

    struct pollfd pfd[2] = {{.fd = fd < 0 ? -1 : fd, .events = POLLIN}, {.fd = -1}};
    struct input in = {.len = 0};
    if (!app->serve && !isatty(STDIN_FILENO))
        pfd[1] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    int64_t period = (int64_t)(app->serve ? SERVE_TICK_MS : TICK_MS) * 1000000;
    int64_t now = now_ns();
    int64_t tick_at = now + period;
    int64_t loop_at = now; /* the loop's first iteration: at once */
    for (;;) {
        if (now >= loop_at) {
            int64_t next_ns;
            int rc = asyncio_loop_run_nowait(loop, &next_ns);
            st->runs++;
            if (rc != 0)
                return rc < 0 ? rc : 0; /* 1: asyncio_loop_stop() was called */
            now = now_ns();
            loop_at = next_ns < 0 || next_ns > INT64_MAX - now ? INT64_MAX : now + next_ns;
            if (fd < 0 && loop_at - now > POLL_BACKEND_MS * 1000000)
                loop_at = now + POLL_BACKEND_MS * 1000000;
        }
        int64_t until = loop_at < tick_at ? loop_at : tick_at;
        int n = poll(pfd, 2, poll_timeout(until, now));
        st->polls++;
        if (n < 0 && errno != EINTR)
            return -errno;
        now = now_ns();
        if (n > 0 && pfd[0].revents) {
            st->fd_wakeups++;
            loop_at = now; /* I/O or a wake-up for the loop */
        }
        if (n > 0 && pfd[1].revents) {
            if (!read_stdin(app, &in)) {
                printf("host: end of stdin after %d line(s)\n", in.lines);
                pfd[1].fd = -1; /* nothing more to watch */
            }
            loop_at = now; /* a line handed over wakes the client task */
        }
        if (now >= tick_at) {
            st->ticks++;
            tick_at += period;
            if (tick_at <= now)
                tick_at = now + period; /* late: no burst of ticks */
            if (!app->serve) {
                demo_tick(app, st->ticks);
                loop_at = now; /* the message wakes the client task */
                if (st->ticks == TICKS) {
                    tick_at = INT64_MAX; /* the demo's timer is done */
                    pfd[1].fd = -1;      /* and the rest of stdin is not read */
                }
            }
        }
    }
}

/* --serve PORT [--host HOST], or nothing. */
static int parse_args(int argc, char **argv, struct app *app)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            app->host = argv[++i];
        } else if (strcmp(argv[i], "--serve") == 0 && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (argv[i][0] < '0' || argv[i][0] > '9' || *end || p > 65535)
                return -1;
            app->port = (int)p;
            app->serve = 1;
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct app app = {.host = "127.0.0.1"};
    if (parse_args(argc, argv, &app) < 0) {
        fprintf(stderr, "usage: embed [--serve PORT [--host HOST]]\n");
        return 2;
    }
    asyncio_queue_init(&app.msgs, 0);
    asyncio_loop_t *loop;
    int rc = asyncio_new_event_loop(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "embed: no loop: %s\n", strerror(-rc));
        return 1;
    }
    /* It runs at the loop's first iteration, which the host's loop makes. */
    asyncio_task_t *main_t;
    if ((rc = asyncio_create_task(&main_t, main_task, &app, "main")) < 0) {
        fprintf(stderr, "embed: no main task: %s\n", strerror(-rc));
    } else {
        struct stats st = {0};
        rc = run_host(loop, &app, &st);
        if (rc < 0)
            fprintf(stderr, "embed: the host's loop failed: %s\n", strerror(-rc));
        else
            printf("host: the loop stopped after %ld polls, %ld iterations of it"
                   " (%ld woken by its fd), %ld ticks of its own timer\n",
                   st.polls, st.runs, st.fd_wakeups, st.ticks);
        /* How main ended (it reported its error): 0, or a negative errno. */
        if (rc == 0)
            rc = asyncio_future_result(main_t, NULL);
        asyncio_task_release(main_t);
    }
    asyncio_loop_close(loop); /* cancels what is left, as asyncio_run() does */
    asyncio_loop_unref(loop);
    char *msg; /* lines the client never took */
    while (asyncio_queue_get_nowait(&app.msgs, (void **)&msg) == 0)
        free(msg);
    asyncio_queue_destroy(&app.msgs);
    printf("host: the loop is closed\n");
    return rc < 0;
}
