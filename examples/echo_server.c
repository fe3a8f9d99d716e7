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
 *     echo_server PORT [--host HOST] [--workers N] [--tls CERT KEY]
 *                 [--max-connections N] [--stack-sweep SECONDS]
 *
 * Run it with `echo_server 7000` (or `echo_server 7000 --host 0.0.0.0`),
 * then try `nc -N 127.0.0.1 7000 < /etc/services | cmp - /etc/services`
 * or examples/echo_client. Ctrl-C or SIGTERM closes it, clients included,
 * with exit status 0.
 *
 * With --workers N (1 to 64, default 1) it runs a loop per core: N
 * threads, each with its own loop and its own listening socket on the same
 * port (SO_REUSEPORT), and the kernel spreads the connections over them,
 * as over nginx's worker processes. The main thread's loop is worker 0 and
 * owns the signals: on SIGINT or SIGTERM it closes its server and has
 * every other worker close its own (asyncio_call_soon_threadsafe), then
 * joins their threads. A worker that cannot listen stops them all (exit
 * status 1). At exit it prints how many connections each worker served.
 * With one worker, everything runs in the main thread. (SO_REUSEPORT lets
 * any program of the same user share the port: a second copy started with
 * --workers on it gets a share of the connections, not "address in use".)
 *
 * With --tls CERT KEY it echoes over TLS (asyncio's ssl= of start_server):
 * CERT is the server's certificate chain (PEM, the certificate first) and
 * KEY its private key (PEM); try `openssl s_client -connect
 * 127.0.0.1:7000 -CAfile CA.pem`. The handler is the same: the stream's
 * calls read and write plain text through TLS, and the end of the input
 * is the client's close_notify. One context serves every worker: it is
 * configured before the threads start and only read after. TLS is there
 * when the program was built with libasyncio-tls (OpenSSL 3); without it,
 * --tls says it is not available in this build (status 2).
 *
 * Limits:
 *   - --max-connections N (1 to 1000000, default 10000) connections at
 *     once, over all the workers together (one atomic counter they share,
 *     changed once as a connection starts and once as it ends, never per
 *     read): one more is closed at once, before it is read from (with
 *     --tls, after the handshake, which the server does before the
 *     handler runs), and the connections there are go on undisturbed;
 *   - a read takes at most READ_BUFFER (256 KiB); what the client does
 *     not read back waits in the stream's queue, and once more than
 *     ASYNCIO_STREAM_HIGH_WATER (64 KiB) is queued the handler stops
 *     reading from the client until no more than the low water mark
 *     (16 KiB) is (asyncio_stream_drain()): a client that sends and never
 *     reads holds at most 64 KiB plus one read queued (and the kernel's
 *     socket buffers), and waits; there is no timeout;
 *   - --workers N: 1 to 64 threads.
 *
 * With --stack-sweep SECONDS (0.001 to 3600; or ASYNCIO_STACK_SWEEP in the
 * environment) every loop runs the stack sweep (asyncio_loop_set_stack_sweep()):
 * a connection idle for that long gives its handler's stack pages back and
 * keeps only the few hundred bytes its stack really holds, so that many
 * idle connections cost about 1 KiB each instead of 5. The handler shares
 * none of its locals with other tasks, as the sweep's contract asks.
 */
#include <asyncio.h>
#ifdef ASYNCIO_HAVE_TLS /* defined when built with libasyncio-tls */
#include <asyncio/tls.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64
#define DEFAULT_MAX_CONNECTIONS 10000

/*
 * One read buffer per worker for all its connections, as hand-written
 * epoll loops have: nothing suspends between asyncio_stream_read() filling
 * it and asyncio_stream_write() sending or copying it, so no other task
 * can touch it in between (one loop, one thread). On each handler's stack
 * it would cost every idle connection a second stack page, and one that
 * ever carried a large message the whole buffer's pages for good. Reads of
 * 4 KiB or more go straight from the socket into it. 256 KiB, the size
 * uvloop reads with (256,000 bytes), takes a 100 KiB message in one read,
 * and several at once when many are in flight.
 */
#define READ_BUFFER (256 * 1024)

/* Without the buffer a handler needs little stack: reserving 64 KiB rather
 * than the default 256 KiB costs fewer page tables (a stack is backed only
 * where it is touched either way). */
#define HANDLER_STACK (64 * 1024)

/* What the workers share, set before they start and only read after,
 * but for stopping (the main thread's alone) and the count of open
 * connections (atomic). */
struct server {
    const char *host;
    int port; /* asked for; then the one worker 0 listens on (port 0) */
    int nworkers;
    long max_connections;
    atomic_long open; /* connections served now, by all the workers */
    double stack_sweep; /* --stack-sweep, or 0: the environment's */
    asyncio_tls_context_t *tls; /* --tls: the server context, else NULL */
    struct worker *workers;
    bool stopping; /* stop_all() was called */
};

/* A worker: a thread with its own loop and listening socket. */
struct worker {
    struct server *sv;
    int id; /* 0: the main thread's */
    /* The worker's own, used in its thread only (and read by main() once
     * it has been joined). */
    asyncio_server_t *srv;     /* NULL once closed and freed */
    unsigned long connections; /* how many it served */
    int status;                /* its loop's outcome */
    char buf[READ_BUFFER];
    /* The main thread's, for workers 1 to N-1. */
    pthread_t thread;
    bool joinable;
    asyncio_cfuture_t *started; /* done once it listens, with its loop, or failed */
    asyncio_loop_t *loop;       /* its loop, a reference, once it listens */
};

/* The ends of a connection that are no error of the server's: the peer
 * reset or went away (with TLS, also without close_notify), or the server
 * closed the stream at shutdown; with TLS, also a peer that broke the
 * protocol (-EPROTO: garbage, a bad record). */
static int quiet(ssize_t rc, const struct worker *w)
{
    return rc == -ECONNRESET || rc == -EPIPE || rc == -EBADF || (rc == -EPROTO && w->sv->tls)
               ? 0
               : (int)rc;
}

static int echo(asyncio_stream_t *s, struct worker *w)
{
    for (;;) {
        ssize_t n = asyncio_stream_read(s, w->buf, sizeof w->buf);
        if (n <= 0)
            return quiet(n, w); /* 0: the client is done; the server closes s */
        /* Queued, or sent at once when large; drain only past the high
         * water mark, where it waits for a client that does not read. */
        int rc = asyncio_stream_write(s, w->buf, (size_t)n);
        if (rc == 0 && asyncio_stream_write_buffer_size(s) > ASYNCIO_STREAM_HIGH_WATER)
            rc = asyncio_stream_drain(s);
        if (rc < 0)
            return quiet(rc, w);
    }
}

/* Over --max-connections, a connection is closed at once (returning
 * closes it); the count is the workers' together. */
static int handle(asyncio_stream_t *s, void *arg)
{
    struct worker *w = arg;
    int rc = 0;
    if (atomic_fetch_add(&w->sv->open, 1) < w->sv->max_connections) {
        w->connections++;
        rc = echo(s, w);
    }
    atomic_fetch_sub(&w->sv->open, 1);
    return rc;
}

/* ---- workers ------------------------------------------------------------ */

/* Listen on the server's host and port, with a socket of the worker's own
 * (one of N on the port when there are several workers). */
static int start_listening(struct worker *w)
{
    const struct server *sv = w->sv;
    asyncio_server_options_t opts = {
        .stack_size = HANDLER_STACK, .reuse_port = sv->nworkers > 1, .tls = sv->tls};
    int rc = asyncio_start_server(&w->srv, handle, w, sv->host, sv->port, &opts);
    if (rc < 0)
        fprintf(stderr, "echo_server: cannot listen on %s:%d: %s\n", sv->host, sv->port,
                strerror(-rc));
    return rc;
}

/* In the worker's loop: stop listening and cancel its connections, so that
 * serve_until_stopped() returns. Nothing once it has. */
static void stop_serving(void *arg)
{
    struct worker *w = arg;
    if (w->srv) {
        asyncio_server_close(w->srv);
        asyncio_server_close_clients(w->srv);
    }
}

static int serve_until_stopped(struct worker *w)
{
    int rc = asyncio_server_serve_forever(w->srv);
    int closed = asyncio_server_wait_closed(w->srv);
    w->srv = NULL; /* freed (or, if the wait failed, left to the loop's close) */
    return rc < 0 ? rc : closed;
}

/* Workers 1 to N-1: a thread with a loop of its own. The worker tells the
 * main thread through w->started whether it listens: with its loop (a
 * reference, so that the handle stays valid to post to, even once the loop
 * has closed), or with the error. */
static int worker_task(void *arg, void **result)
{
    (void)result;
    struct worker *w = arg;
    int rc = start_listening(w);
    asyncio_cfuture_set_result(w->started, rc,
                               rc < 0 ? NULL : asyncio_loop_ref(asyncio_get_running_loop()));
    return rc < 0 ? rc : serve_until_stopped(w);
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    asyncio_run_options_t opts = {.stack_sweep = w->sv->stack_sweep};
    w->status = asyncio_run_ex(worker_task, w, NULL, &opts);
    /* The task never ran (no loop: out of fds, say)? Then tell it now. */
    if (w->status < 0 && asyncio_cfuture_set_result(w->started, w->status, NULL) == 0)
        fprintf(stderr, "echo_server: worker %d: no loop: %s\n", w->id, strerror(-w->status));
    return NULL;
}

/* In the main thread, on SIGINT or SIGTERM, or when a worker could not
 * start: worker 0 stops at once, the others in their loops (those whose
 * loops are known: see start_workers()). Stopping twice does no harm. */
static void stop_all(struct server *sv)
{
    sv->stopping = true;
    stop_serving(&sv->workers[0]);
    for (int i = 1; i < sv->nworkers; i++)
        if (sv->workers[i].loop)
            asyncio_call_soon_threadsafe(sv->workers[i].loop, stop_serving, &sv->workers[i], NULL);
}

static void on_signal(int signum, void *arg)
{
    (void)signum;
    stop_all(arg);
}

/*
 * Start workers 1 to N-1 and wait until each listens or has failed. The
 * main task waits suspended: its loop serves and takes signals meanwhile
 * (a stop then reaches the workers whose loops are known, and the others
 * once they all are). The threads start after the signal handlers were
 * added, so they inherit the signal mask that blocks SIGINT and SIGTERM:
 * the kernel delivers these to the main thread. Returns 0, or the first
 * error (everything is stopping then).
 */
static int start_workers(struct server *sv)
{
    int rc = 0;
    for (int i = 1; i < sv->nworkers; i++) {
        struct worker *w = &sv->workers[i];
        if ((rc = asyncio_cfuture_new(&w->started)) == 0)
            rc = -pthread_create(&w->thread, NULL, worker_thread, w);
        if (rc < 0) {
            fprintf(stderr, "echo_server: cannot start worker %d: %s\n", i, strerror(-rc));
            break;
        }
        w->joinable = true;
    }
    for (int i = 1; i < sv->nworkers && sv->workers[i].joinable; i++) {
        void *loop = NULL;
        int st = asyncio_cfuture_result(sv->workers[i].started, -1, &loop);
        sv->workers[i].loop = loop;
        if (st < 0 && rc == 0)
            rc = st; /* the worker said why on stderr */
    }
    if (rc < 0 || sv->stopping)
        stop_all(sv); /* (again: now it reaches every worker that listens) */
    return rc;
}

/* Once every worker was told to stop: join their threads and drop what
 * the main thread held of them. 0, or -1 if one of them failed. */
static int join_workers(struct server *sv)
{
    int rc = 0;
    for (int i = 1; i < sv->nworkers; i++) {
        struct worker *w = &sv->workers[i];
        if (w->joinable) {
            pthread_join(w->thread, NULL);
            if (w->status < 0)
                rc = -1;
        }
        asyncio_loop_unref(w->loop);
        w->loop = NULL; /* a signal now does not post to it */
        asyncio_cfuture_unref(w->started);
    }
    return rc;
}

/* ---- main --------------------------------------------------------------- */

/* The main thread's loop: worker 0, then the others on its port (the one it
 * took, for port 0). */
static int main_task(void *arg, void **result)
{
    (void)result;
    struct server *sv = arg;
    struct worker *w = &sv->workers[0];
    int rc = start_listening(w);
    if (rc < 0)
        return rc;
    if ((rc = asyncio_add_signal_handler(SIGINT, on_signal, sv)) < 0 ||
        (rc = asyncio_add_signal_handler(SIGTERM, on_signal, sv)) < 0) {
        fprintf(stderr, "echo_server: signal handler: %s\n", strerror(-rc));
        stop_serving(w);
        serve_until_stopped(w);
        return rc;
    }
    sv->port = asyncio_server_port(w->srv);
    rc = start_workers(sv);
    if (rc == 0 && !sv->stopping) {
        printf("listening on %s:%d\n", sv->host, sv->port);
        fflush(stdout);
    }
    int served = serve_until_stopped(w);
    if (!sv->stopping)
        stop_all(sv); /* worker 0 ended on its own: the others end too */
    return rc < 0 ? rc : served;
}

/* A decimal number from 0 to max, or -1. */
static int number(const char *s, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return s[0] < '0' || s[0] > '9' || *end || v > max ? -1 : (int)v;
}

/* PORT [--host HOST] [--workers N] [--tls CERT KEY] [--max-connections N]
 * [--stack-sweep SECONDS], the options before or after the port. */
static int parse_args(int argc, char **argv, struct server *sv, const char **cert,
                      const char **key)
{
    int have_port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            sv->host = argv[++i];
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            if ((sv->nworkers = number(argv[++i], MAX_WORKERS)) < 1)
                return -1;
        } else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc) {
            if ((sv->max_connections = number(argv[++i], 1000000)) < 1)
                return -1;
        } else if (strcmp(argv[i], "--stack-sweep") == 0 && i + 1 < argc) {
            char *end;
            const char *v = argv[++i];
            sv->stack_sweep = strtod(v, &end);
            if (*v < '0' || *v > '9' || *end || !(sv->stack_sweep >= 0.001) ||
                sv->stack_sweep > 3600)
                return -1;
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            *cert = argv[++i];
            *key = argv[++i];
        } else {
            if (have_port || (sv->port = number(argv[i], 65535)) < 0)
                return -1;
            have_port = 1;
        }
    }
    return have_port ? 0 : -1;
}

/* --tls CERT KEY: the server context (ssl.SSLContext(PROTOCOL_TLS_SERVER)
 * with load_cert_chain()), in sv->tls. 0, or the exit status having said
 * why. */
static int tls_context(struct server *sv, const char *cert, const char *key)
{
#ifdef ASYNCIO_HAVE_TLS
    int rc = asyncio_tls_context_new(&sv->tls, ASYNCIO_TLS_SERVER);
    if (rc < 0) {
        fprintf(stderr, "echo_server: cannot make a TLS context: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = asyncio_tls_context_load_cert_chain(sv->tls, cert, key)) < 0) {
        fprintf(stderr, "echo_server: --tls %s %s: %s\n", cert, key,
                rc == -EINVAL   ? "the key does not match the certificate"
                : rc == -EPROTO ? "not a PEM certificate or key"
                                : strerror(-rc));
        asyncio_tls_context_unref(sv->tls);
        sv->tls = NULL;
        return 1;
    }
    return 0;
#else
    (void)sv;
    (void)cert;
    (void)key;
    fprintf(stderr, "echo_server: --tls is not available in this build "
                    "(libasyncio-tls was not built)\n");
    return 2;
#endif
}

int main(int argc, char **argv)
{
    struct server sv = {
        .host = "127.0.0.1", .nworkers = 1, .max_connections = DEFAULT_MAX_CONNECTIONS};
    const char *cert = NULL, *key = NULL;
    if (parse_args(argc, argv, &sv, &cert, &key) < 0) {
        fprintf(stderr,
                "usage: echo_server PORT [--host HOST] [--workers N (1-%d)] [--tls CERT KEY] "
                "[--max-connections N (1-1000000)] [--stack-sweep SECONDS (0.001-3600)]\n",
                MAX_WORKERS);
        return 2;
    }
    atomic_init(&sv.open, 0);
    int status;
    if (cert && (status = tls_context(&sv, cert, key)) != 0)
        return status;
    if (!(sv.workers = calloc((size_t)sv.nworkers, sizeof *sv.workers))) {
#ifdef ASYNCIO_HAVE_TLS
        asyncio_tls_context_unref(sv.tls);
#endif
        return 1;
    }
    for (int i = 0; i < sv.nworkers; i++) {
        sv.workers[i].sv = &sv;
        sv.workers[i].id = i;
    }
    /* asyncio_run() in its steps, so that the workers are joined before
     * the loop closes: until then it holds SIGINT and SIGTERM, and one more
     * of them is read (and does nothing), not fatal. */
    asyncio_loop_t *loop;
    asyncio_run_options_t opts = {.stack_sweep = sv.stack_sweep};
    int rc = asyncio_new_event_loop(&loop, &opts);
    if (rc == -ENOTSUP)
        fprintf(stderr, "echo_server: --stack-sweep is not available in this build\n");
    if (rc == 0) {
        rc = asyncio_loop_run_until_complete(loop, main_task, &sv, NULL);
        if (join_workers(&sv) < 0 && rc >= 0)
            rc = -1;
        asyncio_loop_close(loop);
        asyncio_loop_unref(loop);
    }
    if (rc >= 0 && sv.nworkers > 1)
        for (int i = 0; i < sv.nworkers; i++)
            printf("worker %d: %lu connections\n", i, sv.workers[i].connections);
    free(sv.workers);
#ifdef ASYNCIO_HAVE_TLS
    asyncio_tls_context_unref(sv.tls); /* its connections are closed: the last reference */
#endif
    return rc < 0;
}
