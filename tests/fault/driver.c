/*
 * The fault-injection driver (issue 16): runs each scenario once to count
 * the allocations and system calls the library makes on the loop's thread,
 * then once for every one of those calls with that call failing (and, for
 * a call that blocks, once more with it failing with EINTR; accept4 with
 * ECONNABORTED), each run in a
 * child process. A run must end with the scenario's success or one of the
 * errors its calls document (an EINTR must not be seen at all: the library
 * retries); no crash, no hang (20 s alarm), no leak (LeakSanitizer, in a
 * sanitizer build), no task left parked (asyncio_run() would not return).
 *
 *   fault_driver [-v] [-k N [-e]] [SCENARIO...]     (default: all)
 *
 * -k N runs the scenario once, in this process (for a debugger), with
 * call N failing (-e: with EINTR).
 *
 * Built with libasyncio-tls (FAULT_HAVE_TLS), the TLS scenarios too: a TLS
 * server and client, start_tls on a plain connection. Their certificate is
 * written to a directory of its own under $TMPDIR before the runs (by the
 * driver, uncounted) and removed after.
 *
 * Exit status 0 when every run passed; else 1, with one line per failed
 * run saying the scenario, the call that failed (its number and name),
 * and what went wrong: how to run just that is printed too.
 */
#include "fault.h"

#include <asyncio.h>
#ifdef FAULT_HAVE_TLS
#include <asyncio/tls.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Calls the driver and its scenarios make themselves, outside the count:
 * what is tested is the library. */
ssize_t __real_write(int fd, const void *b, size_t n);
ssize_t __real_read(int fd, void *b, size_t n);
int __real_bind(int fd, const struct sockaddr *a, socklen_t n);
int __real_listen(int fd, int n);
int __real_getsockname(int fd, struct sockaddr *a, socklen_t *n);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_pipe2(int fds[2], int fl);
int __real_socketpair(int d, int t, int p, int sv[2]);
int __real_waitid(idtype_t t, id_t id, siginfo_t *si, int opts);

/* LeakSanitizer's check, where it is linked in; gcov's dump, in a
 * coverage build (a child that leaves with _exit() writes no counters);
 * the sanitizers' last call before they end a process. */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));
#ifdef ASYNCIO_COVERAGE
void __gcov_dump(void);
#endif

#define TRY(expr)                                                              \
    do {                                                                       \
        long try_rc_ = (long)(expr);                                           \
        if (try_rc_ < 0)                                                       \
            return (int)try_rc_;                                               \
    } while (0)

/* A result that is wrong whatever failed: never allowed. An errno no call
 * returns (not -EPROTO, which TLS streams do). */
#define WRONG (-ENOTRECOVERABLE)
#define CHECK_OR_WRONG(cond)                                                   \
    do {                                                                       \
        if (!(cond))                                                           \
            return WRONG;                                                      \
    } while (0)

/* ---- scenarios ------------------------------------------------------------ */

static void cb_count(void *arg) { ++*(int *)arg; }

static int s_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int n = 0;
    for (int i = 0; i < 3; i++)
        TRY(asyncio_call_soon(cb_count, &n, NULL));
    asyncio_handle_t h;
    TRY(asyncio_call_later(0.001, cb_count, &n, NULL));
    TRY(asyncio_call_later(10.0, cb_count, &n, &h)); /* left pending at close */
    TRY(asyncio_sleep(0.005));
    asyncio_future_t *f;
    TRY(asyncio_future_new(&f));
    asyncio_future_set_result(f, &n);
    void *res = NULL;
    int rc = asyncio_await(f, &res);
    asyncio_future_release(f);
    TRY(rc);
    CHECK_OR_WRONG(res == &n && n == 4);
    return 0;
}

static int child_sleeps(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_sleep((double)(intptr_t)arg / 1000.0);
    return rc < 0 ? rc : (int)(intptr_t)arg;
}

static int s_tasks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    enum { N = 12 };
    asyncio_task_t *t[N];
    int made = 0, rc = 0;
    for (; made < N && rc == 0; made++)
        rc = asyncio_create_task(&t[made], child_sleeps, (void *)(intptr_t)(made % 3), NULL);
    if (rc < 0)
        made--;
    if (rc == 0) {
        int errors[N];
        rc = asyncio_gather(N, t, NULL, errors, ASYNCIO_RETURN_EXCEPTIONS);
        if (rc >= 0) {
            for (int i = 0; i < N && rc == 0; i++)
                if (errors[i] < 0)
                    rc = errors[i]; /* a child that could not sleep */
        }
    }
    for (int i = 0; i < made; i++)
        asyncio_task_release(t[i]);
    TRY(rc);
    /* wait_for that times out, and shield. */
    asyncio_task_t *slow;
    /* A name too long to keep inside the task: it is allocated. */
    TRY(asyncio_create_task(&slow, child_sleeps, (void *)(intptr_t)50,
                            "slow, with a name longer than a task holds"));
    rc = asyncio_wait_for(slow, 0.002, NULL);
    asyncio_task_release(slow);
    if (rc != -ETIMEDOUT)
        return rc < 0 ? rc : WRONG;
    return 0;
}

static int child_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(0.001);
    return rc < 0 ? rc : -EIO;
}

static int s_taskgroup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_taskgroup_t g;
    TRY(asyncio_taskgroup_enter(&g));
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = asyncio_taskgroup_create_task(&g, NULL, child_sleeps, (void *)(intptr_t)(20 + i), NULL);
    if (rc == 0)
        rc = asyncio_taskgroup_create_task(&g, NULL, child_fails, NULL, NULL);
    int body = rc < 0 ? rc : asyncio_sleep(1.0);
    int ex = asyncio_taskgroup_exit(&g, body);
    if (rc < 0)
        return rc;
    /* The failing child's -EIO, unless a sleep failed first. */
    return ex == -EIO ? 0 : ex < 0 ? ex : WRONG;
}

/* A group's exit inside a timeout scope, where arming the scope's timer is
 * the loop's first timer (the heap is allocated then): without room for
 * it, the group fails with -ENOMEM after its children (trying again would
 * spin for as long as memory stays short). */
static int s_taskgroup_scoped(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    TRY(asyncio_timeout_enter(&scope, 10.0));
    asyncio_taskgroup_t g;
    int rc = asyncio_taskgroup_enter(&g);
    if (rc == 0) {
        rc = asyncio_taskgroup_create_task(&g, NULL, child_sleeps, (void *)(intptr_t)1, NULL);
        int ex = asyncio_taskgroup_exit(&g, rc);
        rc = rc < 0 ? rc : ex;
    }
    int ex = asyncio_timeout_exit(&scope);
    TRY(rc);
    TRY(ex);
    return 0;
}

/* A scope moved from no deadline to one while its task waits, the loop's
 * first timer: without room for it, the reschedule fails and the scope
 * keeps no deadline (not one with no timer behind it). */
struct resched {
    asyncio_timeout_t scope;
    asyncio_event_t ev;
    bool entered;
};

static int resched_waiter(void *arg, void **result)
{
    (void)result;
    struct resched *r = arg;
    TRY(asyncio_timeout_enter(&r->scope, INFINITY));
    r->entered = true;
    int rc = asyncio_event_wait(&r->ev);
    int ex = asyncio_timeout_exit(&r->scope);
    TRY(rc == -ETIMEDOUT ? 0 : rc);
    return ex == -ETIMEDOUT ? 0 : ex;
}

static int s_timeout_reschedule(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct resched r = {.entered = false};
    TRY(asyncio_event_init(&r.ev));
    asyncio_task_t *t;
    TRY(asyncio_create_task(&t, resched_waiter, &r, NULL));
    int rc = asyncio_sleep(0); /* the waiter enters its scope and waits */
    if (rc == 0 && r.entered) {
        rc = asyncio_timeout_reschedule(&r.scope, asyncio_loop_time() + 0.002);
        if (rc < 0 && !isinf(asyncio_timeout_when(&r.scope)))
            rc = WRONG;
        if (rc < 0)
            asyncio_event_set(&r.ev); /* no deadline: end its wait */
    }
    int a = asyncio_await(t, NULL);
    asyncio_task_release(t);
    asyncio_event_destroy(&r.ev);
    TRY(rc);
    TRY(a);
    return 0;
}

/* The stack sweep: sleepers swept while they wait (a period of 2 ms, sleeps
 * of 40 ms) and put back as they wake, one woken by a cancellation; each
 * checks a local it filled before its sleep. Where the sweep is not
 * available (under Valgrind), -ENOTSUP is the scenario's success. */
static int swept_sleeper(void *arg, void **result)
{
    (void)result;
    volatile char local[300];
    for (size_t i = 0; i < sizeof local; i++)
        local[i] = (char)(i + (uintptr_t)arg);
    int rc = asyncio_sleep(0.04);
    for (size_t i = 0; i < sizeof local; i++)
        if (local[i] != (char)(i + (uintptr_t)arg))
            return WRONG;
    return rc;
}

static int s_sweep(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_loop_set_stack_sweep(asyncio_get_running_loop(), 0.002);
    if (rc == -ENOTSUP)
        return 0;
    TRY(rc);
    asyncio_task_t *t[4] = {NULL};
    int made = 0;
    while (made < 4 && (rc = asyncio_create_task(&t[made], swept_sleeper, (void *)(uintptr_t)made,
                                                 NULL)) == 0)
        made++;
    if (rc == 0)
        rc = asyncio_sleep(0.02);
    if (made > 0)
        asyncio_task_cancel(t[0]);
    for (int i = 0; i < made; i++) {
        int a = asyncio_await(t[i], NULL);
        asyncio_task_release(t[i]);
        if (i == 0 ? a != -ECANCELED && a != 0 && a != WRONG : a < 0 && rc == 0)
            rc = a;
        if (a == WRONG)
            rc = WRONG;
    }
    return rc;
}

struct sync_objs {
    asyncio_lock_t lock;
    asyncio_event_t event;
    asyncio_condition_t cond;
    asyncio_semaphore_t sem;
    asyncio_barrier_t barrier;
    int shared;
};

static int sync_worker(void *arg, void **result)
{
    struct sync_objs *o = arg;
    (void)result;
    for (int i = 0; i < 3; i++) {
        TRY(asyncio_lock_acquire(&o->lock));
        int v = o->shared;
        int rc = asyncio_sleep(0);
        o->shared = v + 1;
        asyncio_lock_release(&o->lock);
        TRY(rc);
    }
    TRY(asyncio_semaphore_acquire(&o->sem));
    int rc = asyncio_sleep(0);
    asyncio_semaphore_release(&o->sem);
    TRY(rc);
    TRY(asyncio_event_wait(&o->event));
    TRY(asyncio_condition_acquire(&o->cond));
    rc = asyncio_condition_notify_all(&o->cond);
    asyncio_condition_release(&o->cond);
    TRY(rc);
    TRY(asyncio_barrier_wait(&o->barrier));
    return 0;
}

static int s_sync(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct sync_objs o = {0};
    asyncio_lock_init(&o.lock);
    asyncio_event_init(&o.event);
    asyncio_condition_init(&o.cond, NULL);
    asyncio_semaphore_init(&o.sem, 1);
    asyncio_barrier_init(&o.barrier, 3);
    asyncio_task_t *t[2];
    TRY(asyncio_create_task(&t[0], sync_worker, &o, NULL));
    int rc = asyncio_create_task(&t[1], sync_worker, &o, NULL);
    if (rc < 0) {
        asyncio_task_release(t[0]);
        return rc;
    }
    rc = asyncio_sleep(0.001);
    asyncio_event_set(&o.event);
    if (rc == 0)
        rc = asyncio_barrier_wait(&o.barrier);
    if (rc < 0)
        asyncio_barrier_abort(&o.barrier);
    int g = asyncio_gather(2, t, NULL, NULL, 0);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    TRY(rc);
    TRY(g);
    CHECK_OR_WRONG(o.shared == 6);
    return 0;
}

#define ITEMS 200

static int producer(void *arg, void **result)
{
    (void)result;
    for (intptr_t i = 1; i <= ITEMS; i++)
        TRY(asyncio_queue_put(arg, (void *)i));
    return 0;
}

static int consumer(void *arg, void **result)
{
    long sum = 0;
    for (int i = 0; i < ITEMS; i++) {
        void *item;
        TRY(asyncio_queue_get(arg, &item));
        sum += (intptr_t)item;
        asyncio_queue_task_done(arg);
    }
    *result = (void *)(intptr_t)sum;
    return 0;
}

static int s_queue(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t q;
    TRY(asyncio_queue_init(&q, 8));
    asyncio_task_t *t[2];
    int rc = asyncio_create_task(&t[0], producer, &q, NULL);
    if (rc < 0)
        return rc;
    rc = asyncio_create_task(&t[1], consumer, &q, NULL);
    if (rc < 0) {
        asyncio_task_cancel(t[0]);
        asyncio_await(t[0], NULL);
        asyncio_task_release(t[0]);
        asyncio_queue_destroy(&q);
        return rc;
    }
    void *res[2];
    rc = asyncio_gather(2, t, res, NULL, 0);
    if (rc == 0)
        rc = asyncio_queue_join(&q);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    asyncio_queue_destroy(&q);
    TRY(rc);
    CHECK_OR_WRONG((intptr_t)res[1] == (long)ITEMS * (ITEMS + 1) / 2);
    return 0;
}

/* asyncio_wait() and as_completed over more futures than fit on the
 * stack: both allocate. */
static int wait_many(void)
{
    enum { N = 9 };
    asyncio_future_t *f[N];
    int made = 0, rc = 0;
    for (; made < N && rc == 0; made++)
        rc = asyncio_future_new(&f[made]);
    if (rc < 0)
        made--;
    if (rc == 0) {
        rc = asyncio_wait(N, f, 0.001, ASYNCIO_FIRST_COMPLETED, NULL, NULL);
        if (rc > 0)
            rc = WRONG; /* none was done */
    }
    if (rc == 0) {
        asyncio_as_completed_t it;
        rc = asyncio_as_completed_init(&it, N, f, 0);
        if (rc == 0)
            asyncio_as_completed_destroy(&it);
    }
    for (int i = 0; i < made; i++)
        asyncio_future_release(f[i]);
    return rc;
}

static int s_timeouts(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* A timer callback as the loop's first handle (its slab is allocated
     * here), cancelled at once. */
    asyncio_handle_t h;
    int count = 0;
    TRY(asyncio_call_later(10.0, cb_count, &count, &h));
    asyncio_handle_cancel(&h);
    TRY(wait_many());
    asyncio_timeout_t scope;
    TRY(asyncio_timeout_enter(&scope, 0.002));
    int rc = asyncio_sleep(1.0);
    int ex = asyncio_timeout_exit(&scope);
    if (rc != -ETIMEDOUT && rc < 0)
        return rc;
    CHECK_OR_WRONG(rc == -ETIMEDOUT && ex == -ETIMEDOUT);
    /* A scope moved later, which does not expire. */
    TRY(asyncio_timeout_enter(&scope, 0.001));
    rc = asyncio_timeout_reschedule(&scope, asyncio_loop_time() + 5.0);
    if (rc == 0)
        rc = asyncio_sleep(0.003);
    ex = asyncio_timeout_exit(&scope);
    TRY(rc);
    TRY(ex);
    return 0;
}

/* Streams over a socketpair: lines, exact reads, write_eof. */
static const char stream_text[] = "hello\nworld\n0123456789";

/* Writes the text and closes its stream, whatever fails: the reader then
 * sees the end of the stream. */
static int stream_writer(void *arg, void **result)
{
    (void)result;
    asyncio_stream_t *w = arg;
    int rc = asyncio_stream_write(w, stream_text, sizeof stream_text - 1);
    if (rc == 0)
        rc = asyncio_stream_drain(w);
    if (rc == 0)
        rc = asyncio_stream_write_eof(w);
    int c = asyncio_stream_wait_closed(w);
    return rc < 0 ? rc : c;
}

/* arg: the reader's limit (0: the default). */
static int s_stream(void *arg, void **result)
{
    (void)result;
    int sv[2];
    if (__real_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return WRONG;
    asyncio_stream_t *r = NULL, *w = NULL;
    int rc = asyncio_stream_open(&r, sv[0], (size_t)(uintptr_t)arg);
    if (rc < 0) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    rc = asyncio_stream_open(&w, sv[1], 0);
    if (rc < 0) {
        close(sv[1]);
        asyncio_stream_wait_closed(r);
        return rc;
    }
    asyncio_task_t *t = NULL;
    rc = asyncio_create_task(&t, stream_writer, w, NULL);
    if (rc < 0)
        asyncio_stream_wait_closed(w);
    char buf[64];
    ssize_t n = 0;
    if (rc == 0) {
        n = asyncio_stream_readline(r, buf, sizeof buf);
        if (n >= 0 && (n != 6 || memcmp(buf, "hello\n", 6) != 0))
            n = WRONG;
        if (n >= 0)
            n = asyncio_stream_readuntil(r, "\n", 1, buf, sizeof buf);
        if (n >= 0 && (n != 6 || memcmp(buf, "world\n", 6) != 0))
            n = WRONG;
        if (n >= 0)
            n = asyncio_stream_readexactly(r, buf, 10);
        if (n >= 0 && memcmp(buf, "0123456789", 10) != 0)
            n = WRONG;
        if (n >= 0)
            n = asyncio_stream_read(r, buf, sizeof buf); /* end of stream */
        if (n > 0)
            n = WRONG;
        int wrc = asyncio_await(t, NULL);
        asyncio_task_release(t);
        if (wrc < 0 && n != WRONG + 0 && n >= 0)
            n = wrc;
        else if (wrc < 0 && n == WRONG)
            n = wrc; /* the writer failed: the text was cut short */
    }
    asyncio_stream_wait_closed(r);
    TRY(rc);
    TRY(n);
    return 0;
}

/* A server on 127.0.0.1 and clients through it; also the resolver. */
static int echo_handler(asyncio_stream_t *s, void *arg)
{
    (void)arg;
    char line[64];
    ssize_t n;
    while ((n = asyncio_stream_readline(s, line, sizeof line)) > 0) {
        TRY(asyncio_stream_write(s, line, (size_t)n));
        TRY(asyncio_stream_drain(s));
    }
    return n < 0 ? (int)n : 0;
}

static int client_round_trip(const char *host, int port)
{
    asyncio_stream_t *c;
    TRY(asyncio_open_connection(&c, host, port, NULL));
    char buf[16];
    ssize_t n = asyncio_stream_write(c, "ping\n", 5);
    if (n >= 0)
        n = asyncio_stream_readline(c, buf, sizeof buf);
    /* The end of the stream first: the server closed the connection (it
     * closes one it has no memory to serve), a documented recovery. */
    if (n == 0)
        n = -ECONNRESET;
    if (n >= 0 && (n != 5 || memcmp(buf, "ping\n", 5) != 0))
        n = WRONG;
    asyncio_stream_wait_closed(c);
    return n < 0 ? (int)n : 0;
}

static int client_task(void *arg, void **result)
{
    (void)result;
    return client_round_trip("127.0.0.1", (int)(intptr_t)arg);
}

static int serve_and_connect(const char *client_host, int nclients)
{
    asyncio_server_t *srv;
    TRY(asyncio_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL));
    int port = asyncio_server_port(srv);
    int rc = port < 0 ? port : 0;
    if (rc < 0) {
        /* no port to connect to */
    } else if (client_host) {
        rc = client_round_trip(client_host, port);
    } else {
        asyncio_task_t *t[4];
        int made = 0;
        for (; made < nclients && rc == 0; made++)
            rc = asyncio_create_task(&t[made], client_task, (void *)(intptr_t)port, NULL);
        if (rc < 0)
            made--;
        int g = made ? asyncio_gather((size_t)made, t, NULL, NULL, 0) : 0;
        for (int i = 0; i < made; i++)
            asyncio_task_release(t[i]);
        if (rc == 0)
            rc = g;
    }
    asyncio_server_close(srv);
    int w = asyncio_server_wait_closed(srv);
    TRY(rc);
    return w;
}

/* Callbacks pending far off fill the loop's first slab of handles (256)
 * but two: the server's accepting task takes one for its done callback,
 * the first connection's done callback the other, and a later
 * connection's needs a new slab, whose allocation one run fails (the
 * server must close that connection and go on). With three clients, a
 * fill of 253 to 255 reaches that. */
#define SLAB_FILL 254

static int s_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_handle_t fill[SLAB_FILL];
    int never = 0, n = 0, rc = 0;
    for (; n < SLAB_FILL && rc == 0; n++)
        rc = asyncio_call_later(10.0, cb_count, &never, &fill[n]);
    if (rc < 0)
        n--;
    if (rc == 0)
        rc = serve_and_connect(NULL, 3);
    for (int i = 0; i < n; i++)
        asyncio_handle_cancel(&fill[i]);
    return rc;
}

static int s_resolver(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_INET};
    struct addrinfo *res = NULL;
    TRY(asyncio_getaddrinfo("localhost", "80", &hints, &res));
    freeaddrinfo(res);
    return serve_and_connect("localhost", 1);
}

static void on_usr1(int sig, void *arg)
{
    (void)sig;
    asyncio_event_set(arg);
}

static int s_signal(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_event_t ev;
    asyncio_event_init(&ev);
    TRY(asyncio_add_signal_handler(SIGUSR1, on_usr1, &ev));
    raise(SIGUSR1);
    asyncio_timeout_t scope;
    int rc = asyncio_timeout_enter(&scope, 5.0);
    if (rc == 0) {
        rc = asyncio_event_wait(&ev);
        asyncio_timeout_exit(&scope);
    }
    asyncio_remove_signal_handler(SIGUSR1);
    return rc;
}

/* The sock_* calls, a datagram endpoint and fd waits. */
static int s_sock(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int lfd = asyncio_socket(AF_INET, SOCK_STREAM, 0);
    TRY(lfd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int rc = 0;
    if (__real_bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || __real_listen(lfd, 4) < 0 ||
        __real_getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        rc = WRONG;
    int cfd = rc < 0 ? rc : asyncio_socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 && rc == 0)
        rc = cfd;
    if (rc == 0)
        rc = asyncio_sock_connect(cfd, (struct sockaddr *)&a, sizeof a);
    int afd = rc < 0 ? rc : asyncio_sock_accept(lfd, NULL, NULL);
    if (afd < 0 && rc == 0)
        rc = afd;
    char buf[8];
    if (rc == 0) {
        ssize_t n = asyncio_sock_sendall(cfd, "abc", 3);
        if (n >= 0)
            n = asyncio_sock_recv(afd, buf, sizeof buf);
        if (n >= 0 && (n < 1 || memcmp(buf, "abc", (size_t)n) != 0))
            n = WRONG;
        rc = n < 0 ? (int)n : 0;
    }
    if (afd >= 0)
        asyncio_close(afd);
    if (cfd >= 0)
        asyncio_close(cfd);
    asyncio_close(lfd);
    TRY(rc);
    /* A datagram to ourselves. */
    int u = asyncio_create_datagram_endpoint("127.0.0.1", 0, NULL, 0, AF_INET);
    TRY(u);
    alen = sizeof a;
    if (__real_getsockname(u, (struct sockaddr *)&a, &alen) < 0)
        rc = WRONG;
    ssize_t n = rc < 0 ? rc : asyncio_sock_sendto(u, "dg", 2, (struct sockaddr *)&a, alen);
    if (n >= 0)
        n = asyncio_sock_recvfrom(u, buf, sizeof buf, NULL, NULL);
    if (n >= 0 && (n != 2 || memcmp(buf, "dg", 2) != 0))
        n = WRONG;
    asyncio_close(u);
    TRY(n);
    /* Waiting for a pipe. */
    int p[2];
    if (__real_pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return WRONG;
    rc = asyncio_wait_writable(p[1]);
    if (rc == 0 && __real_write(p[1], "x", 1) != 1)
        rc = WRONG;
    if (rc == 0)
        rc = asyncio_wait_readable(p[0]);
    asyncio_close(p[0]);
    asyncio_close(p[1]);
    return rc;
}

/* Threads: executors, thread-safe futures, and posts from this thread into
 * a loop in another thread (whose own calls are not counted), held up
 * while they come so that they fill the inbox's ring (1024) and go on to
 * its overflow: the overflow's array growing, and, when it cannot, its
 * list. */
#define OTHER_POSTS 1500

struct other {
    asyncio_loop_t *loop;
    asyncio_event_t stop;
    int ran;
    int ready[2];
    atomic_int hold; /* the other loop's thread waits while it is set */
};

static int other_main(void *arg, void **result)
{
    (void)result;
    struct other *o = arg;
    asyncio_event_init(&o->stop);
    o->loop = asyncio_loop_ref(asyncio_get_running_loop());
    char c = 1;
    if (__real_write(o->ready[1], &c, 1) != 1)
        return -EIO;
    asyncio_timeout_t scope;
    int rc = asyncio_timeout_enter(&scope, 15.0);
    if (rc == 0) {
        rc = asyncio_event_wait(&o->stop);
        asyncio_timeout_exit(&scope);
    }
    return rc;
}

static void *other_thread(void *arg)
{
    asyncio_run(other_main, arg, NULL);
    return NULL;
}

static void other_stop(void *arg) { asyncio_event_set(&((struct other *)arg)->stop); }
static void other_count(void *arg) { ((struct other *)arg)->ran++; }

/* Holds the other loop's thread up while o->hold is set (10 s at most). */
static void other_hold(void *arg)
{
    struct other *o = arg;
    for (int i = 0; i < 10000 && atomic_load(&o->hold); i++)
        usleep(1000);
}
static int in_other(void *arg, void **result) { *result = arg; return 7; }
static void *echo_fn(void *arg) { return arg; }
static void *complete_fn(void *arg) { asyncio_cfuture_set_result(arg, 3, arg); return NULL; }

/* Into the other loop, held up: callbacks past its ring, then a task;
 * -ENOMEM allowed. */
static int post_to_other(struct other *o, int *accepted)
{
    atomic_store(&o->hold, 1);
    int rc = asyncio_call_soon_threadsafe(o->loop, other_hold, o, NULL);
    for (int i = 0; i < OTHER_POSTS && rc == 0; i++)
        if ((rc = asyncio_call_soon_threadsafe(o->loop, other_count, o, NULL)) == 0)
            ++*accepted;
    atomic_store(&o->hold, 0);
    asyncio_cfuture_t *f = NULL;
    if (rc == 0)
        rc = asyncio_run_coroutine_threadsafe(o->loop, in_other, o, &f);
    void *r = NULL;
    if (rc == 0) {
        rc = asyncio_cfuture_result(f, 10.0, &r);
        CHECK_OR_WRONG(rc < 0 || (rc == 7 && r == o));
        rc = rc < 0 ? rc : 0;
    }
    asyncio_cfuture_unref(f);
    return rc;
}

static int s_threads(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *r = NULL;
    int n = 0;
    TRY(asyncio_call_soon_threadsafe(asyncio_get_running_loop(), cb_count, &n, NULL));
    TRY(asyncio_to_thread(echo_fn, &r, NULL, &r));
    CHECK_OR_WRONG(r == &r && n == 1);
    asyncio_executor_t *ex;
    TRY(asyncio_executor_new(&ex, &(asyncio_executor_options_t){.max_workers = 2}));
    asyncio_cfuture_t *cf = NULL;
    asyncio_future_t *wrapped = NULL;
    int rc = asyncio_cfuture_new(&cf);
    if (rc == 0)
        rc = asyncio_wrap_future(cf, &wrapped);
    if (rc == 0)
        rc = asyncio_run_in_executor(ex, complete_fn, cf, NULL, NULL);
    if (rc == 0) {
        rc = asyncio_cfuture_result(cf, 10.0, &r);
        CHECK_OR_WRONG(rc < 0 || (rc == 3 && r == cf));
    }
    if (rc >= 0) {
        rc = asyncio_wait_for(wrapped, 10.0, &r);
        CHECK_OR_WRONG(rc < 0 || r == cf);
    }
    asyncio_future_release(wrapped);
    asyncio_cfuture_unref(cf);
    /* A task started through the inbox of this very loop (counted here). */
    asyncio_cfuture_t *own = NULL;
    if (rc >= 0)
        rc = asyncio_run_coroutine_threadsafe(asyncio_get_running_loop(), in_other, &own, &own);
    if (rc >= 0) {
        rc = asyncio_cfuture_result(own, 10.0, &r);
        CHECK_OR_WRONG(rc < 0 || (rc == 7 && r == &own));
    }
    asyncio_cfuture_unref(own);
    /* Waiting needs a future; without one, shut down without waiting. */
    int sd = asyncio_executor_shutdown(ex, ASYNCIO_SHUTDOWN_WAIT);
    if (sd == -ENOMEM)
        sd = asyncio_executor_shutdown(ex, 0);
    CHECK_OR_WRONG(sd == 0);
    if (rc < 0)
        return rc;

    struct other o = {0};
    if (pipe(o.ready) < 0)
        return -errno;
    pthread_t th;
    int prc = __real_pthread_create(&th, NULL, other_thread, &o);
    char c;
    if (prc == 0 && __real_read(o.ready[0], &c, 1) != 1)
        prc = EIO;
    close(o.ready[0]);
    close(o.ready[1]);
    if (prc != 0)
        return -prc;
    int accepted = 0;
    rc = post_to_other(&o, &accepted);
    /* The failure injected is spent (or comes later): the stop gets through. */
    while (asyncio_call_soon_threadsafe(o.loop, other_stop, &o, NULL) == -ENOMEM)
        ;
    pthread_join(th, NULL);
    CHECK_OR_WRONG(o.ran == accepted);
    CHECK_OR_WRONG(asyncio_loop_is_closed(o.loop) == 1);
    asyncio_loop_unref(o.loop);
    return rc;
}

/* The loop's life cycle, step by step, in a thread of its own (a function
 * of the default executor): a loop made, work queued before it runs, run
 * until stopped by a callback, run until a task completes, driven by
 * run_nowait from a poll() on its fd (on the poll backend, which has
 * none, from the times it gives), closed with a task left. arg: the
 * backend's name, or NULL. */
static void cb_stop(void *arg) { asyncio_loop_stop(arg); }

static int sleeps_long(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(10.0);
}

static int lifecycle_steps(asyncio_loop_t *l)
{
    int n = 0;
    TRY(asyncio_create_task(NULL, sleeps_long, NULL, "left")); /* cancelled by the close */
    TRY(asyncio_call_soon(cb_count, &n, NULL));
    TRY(asyncio_call_soon(cb_stop, l, NULL));
    TRY(asyncio_loop_run_forever(l));
    CHECK_OR_WRONG(n == 1 && asyncio_loop_is_running(l) == 0);
    TRY(asyncio_loop_run_until_complete(l, s_loop, NULL, NULL));
    TRY(asyncio_call_later(0.002, cb_count, &n, NULL));
    TRY(asyncio_call_later(0.003, cb_stop, l, NULL));
    int fd = asyncio_loop_backend_fd(l);
    for (int i = 0, rc = 0; rc == 0; i++) {
        CHECK_OR_WRONG(i < 10000);
        int64_t next;
        TRY(rc = asyncio_loop_run_nowait(l, &next));
        CHECK_OR_WRONG(next >= -1);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (rc == 0 && next != 0)
            poll(&p, fd >= 0, next < 0 ? 1000 : (int)(next / 1000000 + 1));
    }
    CHECK_OR_WRONG(n == 2);
    return 0;
}

static void *lifecycle_thread(void *backend)
{
    asyncio_loop_t *l;
    int rc = asyncio_new_event_loop(&l, &(asyncio_run_options_t){.backend = backend});
    if (rc == 0) {
        rc = lifecycle_steps(l);
        int crc = asyncio_loop_close(l);
        if (crc != 0)
            rc = WRONG; /* nothing in a close may fail */
        asyncio_loop_unref(l);
    }
    return (void *)(intptr_t)rc;
}

static int s_lifecycle(void *arg, void **result)
{
    (void)result;
    void *r = NULL;
    TRY(asyncio_to_thread(lifecycle_thread, arg, NULL, &r));
    return (int)(intptr_t)r;
}

/* Subprocesses: spawn with pipes, communicate (more than the pipes hold,
 * both ways at once), wait, a spawn that fails, release of a running
 * child. The children (cat, sh) end by themselves once their stdin is
 * closed, so that no run waits on one that a failure left unkilled. */
#define SP_INPUT (256 * 1024)

/* pid is a child of ours not yet reaped (the driver's own call, which
 * reaps nothing). */
static bool unreaped(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return __real_waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* A child's return code, or 255 when its reap failed (waitid's ECHILD, a
 * child "reaped by someone else"), which the header documents. */
static bool code_is(int code, int expected)
{
    return code == expected || (code == 255 && fault_failed_site(NULL) == FAULT_waitid);
}

static int s_subprocess(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static char in[SP_INPUT];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)('a' + i % 23);
    asyncio_subprocess_options_t pipes = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                          .stdout_mode = ASYNCIO_STDIO_PIPE,
                                          .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *cat[] = {"cat", NULL};
    asyncio_process_t *p;

    /* communicate: the input through cat and back. */
    TRY(asyncio_create_subprocess_exec(&p, cat, &pipes));
    char *out = NULL, *err = NULL;
    size_t outlen = 0, errlen = 0;
    int code = -1;
    int rc = asyncio_process_communicate(p, in, sizeof in, &out, &outlen, &err, &errlen, &code);
    /* cat gives back what it got: all, or less if a send to it failed
     * (EPIPE: taken for a child that stopped reading, no error). */
    if (rc == 0 && (!out || !err || errlen || outlen > sizeof in ||
                    memcmp(out, in, outlen) != 0 || !code_is(code, 0)))
        rc = WRONG;
    int site = fault_failed_site(NULL);
    if (rc == 0 && outlen < sizeof in && site != FAULT_send && site != FAULT_sendmsg &&
        site != FAULT_writev && site != FAULT_write)
        rc = WRONG;
    free(out);
    free(err);
    asyncio_process_release(p);
    TRY(rc);

    /* wait: a shell that exits 3 at the end of its stdin; stdout to
     * /dev/null, stderr with it. */
    asyncio_subprocess_options_t o2 = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                       .stdout_mode = ASYNCIO_STDIO_DEVNULL,
                                       .stderr_mode = ASYNCIO_STDIO_STDOUT};
    TRY(asyncio_create_subprocess_shell(&p, "read x; exit 3", &o2));
    asyncio_stream_close(asyncio_process_stdin(p));
    rc = asyncio_process_wait(p, &code);
    int again = -1;
    if (rc == 0 && (!code_is(code, 3) || asyncio_process_returncode(p, &again) != 0 ||
                    again != code || asyncio_process_send_signal(p, SIGTERM) != -ESRCH))
        rc = WRONG;
    asyncio_process_release(p);
    TRY(rc);

    /* A spawn that fails: no such program (or a failure before it). */
    const char *none[] = {"/nonexistent/asyncio-fault-program", NULL};
    rc = asyncio_create_subprocess_exec(&p, none, &pipes);
    if (rc == 0) {
        asyncio_process_release(p);
        return WRONG;
    }
    if (rc != -ENOENT)
        return rc;

    /* Release of a running child: killed, and reaped by the loop. */
    TRY(asyncio_create_subprocess_exec(&p, cat, &pipes));
    pid_t pid = asyncio_process_pid(p);
    rc = asyncio_stream_write(asyncio_process_stdin(p), "x\n", 2);
    asyncio_process_release(p);
    TRY(rc);
    for (int i = 0; i < 5000 && unreaped(pid); i++)
        TRY(asyncio_sleep(0.001));
    /* Still there: only if its reap failed (then it stays a zombie). */
    CHECK_OR_WRONG(!unreaped(pid) || fault_failed_site(NULL) == FAULT_waitid);
    return 0;
}

#ifdef FAULT_HAVE_TLS
/* TLS: a server and a client over 127.0.0.1, then start_tls on a plain
 * connection. The certificate: EC P-256, self-signed, for localhost and
 * 127.0.0.1, valid from 2000 to 2100 (no clock finds it expired or not
 * yet valid). The server's, and the client's only CA. Made once with
 *   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
 *   openssl ca -selfsign -startdate 20000101000000Z -enddate 21000101000000Z
 * (CN=localhost; basicConstraints CA:TRUE; keyUsage digitalSignature,
 * keyCertSign; subjectAltName IP:127.0.0.1, DNS:localhost). */
static const char tls_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmDCCAT6gAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv\n"
    "c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM\n"
    "CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIz7x5W2hC3E7TV+\n"
    "Ln0Pe7+AhMrfV8Bvb2IEgtUKBZwfBIwVAeDbF8H/Hp0sK1lDzw3vE3fL5OtTjjwM\n"
    "0aQBCXmjfzB9MA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFFDSLuhlOVv8OaDW\n"
    "Ei4+9UGMRQkoMB8GA1UdIwQYMBaAFFDSLuhlOVv8OaDWEi4+9UGMRQkoMBoGA1Ud\n"
    "EQQTMBGHBH8AAAGCCWxvY2FsaG9zdDAOBgNVHQ8BAf8EBAMCAoQwCgYIKoZIzj0E\n"
    "AwIDSAAwRQIgEoqqpn6l2q4y/Qx/Hgp0rnbfMXpnB0JAOTAnOhtiJyQCIQDHxuLM\n"
    "8iMlMfXHxcDPKBVooeUB9OFOZFAR2n70iWHTCg==\n"
    "-----END CERTIFICATE-----\n";
static const char tls_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7DYnOi1jee3hMRaD\n"
    "H5xmgI6ShsAILGR7rP9OCvlb3pyhRANCAASM+8eVtoQtxO01fi59D3u/gITK31fA\n"
    "b29iBILVCgWcHwSMFQHg2xfB/x6dLCtZQ88N7xN3y+TrU448DNGkAQl5\n"
    "-----END PRIVATE KEY-----\n";

/* Where the driver wrote them (tls_files_make()); "" before. The process
 * that did, which alone removes them. */
static char tls_dir[512], tls_cert_path[600], tls_key_path[600];
static pid_t tls_owner;

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Removes the files and their directory: at exit, on SIGINT, SIGTERM or
 * SIGHUP, or when a sanitizer ends the process (-k N), only in the process
 * that made them (children inherit the handlers; they leave with _exit()).
 * Async-signal-safe. */
static void tls_files_remove(void)
{
    if (!tls_dir[0] || getpid() != tls_owner)
        return;
    unlink(tls_cert_path); /* not counted: only an armed thread's calls are */
    unlink(tls_key_path);
    rmdir(tls_dir);
    tls_dir[0] = '\0';
}

static void tls_files_remove_on_signal(int sig)
{
    tls_files_remove();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Writes the certificate and key into a new directory under $TMPDIR, once,
 * before any run is armed: not the library's calls. */
static bool tls_files_make(void)
{
    if (tls_dir[0])
        return true;
    const char *tmp = getenv("TMPDIR");
    snprintf(tls_dir, sizeof tls_dir, "%s/asyncio-fault-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tls_dir)) {
        perror("fault: mkdtemp");
        tls_dir[0] = '\0';
        return false;
    }
    tls_owner = getpid();
    atexit(tls_files_remove);
    struct sigaction sa = {.sa_handler = tls_files_remove_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(tls_files_remove);
    snprintf(tls_cert_path, sizeof tls_cert_path, "%s/cert.pem", tls_dir);
    snprintf(tls_key_path, sizeof tls_key_path, "%s/key.pem", tls_dir);
    if (!write_file(tls_cert_path, tls_cert_pem) || !write_file(tls_key_path, tls_key_pem)) {
        perror("fault: writing the certificate");
        return false;
    }
    /* The system's CA store, which every client context loads before
     * load_verify_locations() replaces it: none (a file that is not there,
     * a directory without hashed names), not the machine's bundle, whose
     * parsing would take most of each run (some 100 ms under ASan). The
     * same calls either way, and the client trusts our certificate only
     * through load_verify_locations(). */
    char none[640];
    snprintf(none, sizeof none, "%s/no-such-file.pem", tls_dir);
    if (setenv("SSL_CERT_FILE", none, 1) < 0 || setenv("SSL_CERT_DIR", tls_dir, 1) < 0) {
        perror("fault: setenv");
        return false;
    }
    /* OpenSSL's one-time initialisation (its configuration read), in the
     * parent: not each run's. None of its calls is counted anyway. */
    asyncio_tls_context_t *warm;
    if (asyncio_tls_context_new(&warm, ASYNCIO_TLS_CLIENT) == 0)
        asyncio_tls_context_unref(warm);
    return true;
}

struct tls_shared {
    asyncio_tls_context_t *server_ctx;
    int wrong; /* a handler got bytes that were not those sent */
};

/* The server's context (the certificate, two ALPN protocols) and the
 * client's (our certificate its only CA, one protocol of the server's). */
static int tls_contexts(asyncio_tls_context_t **server, asyncio_tls_context_t **client)
{
    static const char *const server_protos[] = {"x-other", "x-echo"};
    static const char *const client_protos[] = {"x-echo"};
    *server = *client = NULL;
    int rc = asyncio_tls_context_new(server, ASYNCIO_TLS_SERVER);
    if (rc == 0)
        rc = asyncio_tls_context_load_cert_chain(*server, tls_cert_path, tls_key_path);
    if (rc == 0)
        rc = asyncio_tls_context_set_alpn_protocols(*server, server_protos, 2);
    if (rc == 0)
        rc = asyncio_tls_context_new(client, ASYNCIO_TLS_CLIENT);
    if (rc == 0)
        rc = asyncio_tls_context_load_verify_locations(*client, tls_cert_path, NULL);
    if (rc == 0)
        rc = asyncio_tls_context_set_alpn_protocols(*client, client_protos, 1);
    if (rc < 0) {
        asyncio_tls_context_unref(*server);
        asyncio_tls_context_unref(*client);
        *server = *client = NULL;
    }
    return rc;
}

/* n bytes read into got where the len bytes of want were expected: 0 if
 * they all came; bytes that differ are WRONG whatever failed; fewer (the
 * stream ended: the peer closed it after a failure of its own) are the
 * peer's closing, as client_round_trip() takes it, when a call failed. */
static int tls_got(ssize_t n, const void *got, const void *want, size_t len)
{
    if (n < 0)
        return (int)n;
    if ((size_t)n > len || memcmp(got, want, (size_t)n) != 0)
        return WRONG;
    if ((size_t)n < len)
        return fault_failed_site(NULL) >= 0 ? -ECONNRESET : WRONG;
    return 0;
}

/* What a TLS stream says of itself, after the handshake. */
static int tls_check_info(asyncio_stream_t *c)
{
    char subject[64];
    int n = asyncio_tls_peer_subject(c, subject, sizeof subject);
    if (n == -ENOMEM)
        return n; /* OpenSSL's own memory: not failed here */
    const char *version = asyncio_tls_version(c);
    const char *alpn = asyncio_tls_selected_alpn_protocol(c);
    CHECK_OR_WRONG(asyncio_tls_is_tls(c) == 1 && version && strncmp(version, "TLSv1.", 6) == 0 &&
                   asyncio_tls_cipher(c) != NULL && alpn && strcmp(alpn, "x-echo") == 0);
    CHECK_OR_WRONG(n > 0 && strstr(subject, "CN=localhost") != NULL);
    CHECK_OR_WRONG(asyncio_tls_error(c) == NULL);
    return 0;
}

/* The server's handler: every byte back, until the client's close_notify. */
static int tls_echo_handler(asyncio_stream_t *s, void *arg)
{
    struct tls_shared *sh = arg;
    if (asyncio_tls_is_tls(s) != 1) {
        sh->wrong = 1;
        return WRONG;
    }
    char buf[4096];
    ssize_t n;
    while ((n = asyncio_stream_read(s, buf, sizeof buf)) > 0) {
        TRY(asyncio_stream_write(s, buf, (size_t)n));
        TRY(asyncio_stream_drain(s));
    }
    return (int)n;
}

/* More than a TLS record (16 KiB): several records, partial writes. */
#define TLS_BLOCK 20000
static const char *const tls_lines[] = {"one\n", "two two\n", "three three three\n"};

/* Lines (one writev: one record) and a block, echoed back and checked,
 * then close_notify (write_eof) and the server's in answer. */
static int tls_session(asyncio_stream_t *c)
{
    static char block[TLS_BLOCK], back[TLS_BLOCK];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (char)('a' + i % 26);
    struct iovec iov[3];
    for (int i = 0; i < 3; i++)
        iov[i] = (struct iovec){.iov_base = (void *)tls_lines[i], .iov_len = strlen(tls_lines[i])};
    TRY(asyncio_stream_writev(c, iov, 3));
    TRY(asyncio_stream_write(c, block, sizeof block));
    TRY(asyncio_stream_drain(c));
    char line[64];
    for (int i = 0; i < 3; i++) {
        ssize_t n = asyncio_stream_readline(c, line, sizeof line);
        TRY(tls_got(n, line, tls_lines[i], strlen(tls_lines[i])));
    }
    ssize_t n = asyncio_stream_readexactly(c, back, sizeof back);
    TRY(tls_got(n, back, block, sizeof block));
    TRY(asyncio_stream_write_eof(c));
    n = asyncio_stream_read(c, line, sizeof line); /* the end: close_notify */
    CHECK_OR_WRONG(n <= 0);
    return (int)n;
}

static int tls_good_client(int port, asyncio_tls_context_t *ctx)
{
    char err[160] = "x";
    asyncio_connection_options_t o = {.tls = ctx, .server_hostname = "localhost",
                                      .tls_error = err, .tls_error_size = sizeof err};
    asyncio_stream_t *c;
    int rc = asyncio_open_connection(&c, "127.0.0.1", port, &o);
    if (rc < 0)
        return rc;
    CHECK_OR_WRONG(err[0] == '\0'); /* no error to tell */
    rc = tls_check_info(c);
    if (rc == 0)
        rc = tls_session(c);
    int w = asyncio_stream_wait_closed(c);
    TRY(rc);
    return w;
}

/* A name the certificate is not for: the handshake must fail with
 * -ASYNCIO_ECERT, and say why. */
static int tls_bad_name_client(int port, asyncio_tls_context_t *ctx)
{
    char err[160] = "";
    asyncio_connection_options_t o = {.tls = ctx, .server_hostname = "example.com",
                                      .tls_error = err, .tls_error_size = sizeof err};
    asyncio_stream_t *c;
    int rc = asyncio_open_connection(&c, "127.0.0.1", port, &o);
    if (rc == 0) {
        asyncio_stream_abort(c);
        return WRONG;
    }
    if (rc != -ASYNCIO_ECERT)
        return rc;
    CHECK_OR_WRONG(strstr(err, "certificate verify failed") != NULL);
    return 0;
}

/* asyncio_start_server() with a TLS context: one client that talks, one
 * that must fail verification. */
static int s_tls(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct tls_shared sh = {0};
    asyncio_tls_context_t *client_ctx;
    TRY(tls_contexts(&sh.server_ctx, &client_ctx));
    asyncio_server_t *srv = NULL;
    asyncio_server_options_t so = {.tls = sh.server_ctx};
    int rc = asyncio_start_server(&srv, tls_echo_handler, &sh, "127.0.0.1", 0, &so);
    asyncio_tls_context_unref(sh.server_ctx); /* the server holds it */
    sh.server_ctx = NULL;
    int port = rc < 0 ? rc : asyncio_server_port(srv);
    if (rc == 0 && port < 0)
        rc = port;
    if (rc == 0)
        rc = tls_good_client(port, client_ctx);
    if (rc == 0)
        rc = tls_bad_name_client(port, client_ctx);
    asyncio_tls_context_unref(client_ctx);
    if (srv) {
        asyncio_server_close(srv);
        int w = asyncio_server_wait_closed(srv);
        if (rc == 0)
            rc = w;
    }
    CHECK_OR_WRONG(!sh.wrong);
    return rc;
}

/* A line read on the server's side: a prefix of want (the client may have
 * stopped part-way), else the handler notes it WRONG. */
static bool server_line_ok(struct tls_shared *sh, ssize_t n, const char *line, const char *want)
{
    if (n > 0 && ((size_t)n > strlen(want) || memcmp(line, want, (size_t)n) != 0))
        sh->wrong = 1;
    return n == (ssize_t)strlen(want) && !sh->wrong;
}

/* start_tls's server side: a line each way in plain, then TLS. */
static int starttls_handler(asyncio_stream_t *s, void *arg)
{
    struct tls_shared *sh = arg;
    char line[64];
    ssize_t n = asyncio_stream_readline(s, line, sizeof line);
    if (!server_line_ok(sh, n, line, "hello\n"))
        return n < 0 ? (int)n : 0;
    TRY(asyncio_stream_write(s, "hi\n", 3));
    /* Here the client's ClientHello comes right behind its line: what the
     * stream read past it is the handshake's start. */
    n = asyncio_stream_readline(s, line, sizeof line);
    if (!server_line_ok(sh, n, line, "starttls\n"))
        return n < 0 ? (int)n : 0;
    /* Failed, s is closed (held by the server, which closes it again as
     * the handler returns: nothing happens then). */
    TRY(asyncio_start_tls(s, sh->server_ctx, NULL));
    if (asyncio_tls_is_tls(s) != 1) {
        sh->wrong = 1;
        return WRONG;
    }
    n = asyncio_stream_readline(s, line, sizeof line);
    if (!server_line_ok(sh, n, line, "secret\n"))
        return n < 0 ? (int)n : 0;
    TRY(asyncio_stream_write(s, line, (size_t)n));
    TRY(asyncio_stream_drain(s));
    n = asyncio_stream_read(s, line, sizeof line); /* the client's close_notify */
    if (n > 0)
        sh->wrong = 1;
    return (int)n;
}

static int starttls_client(int port, asyncio_tls_context_t *ctx)
{
    asyncio_stream_t *c;
    TRY(asyncio_open_connection(&c, "127.0.0.1", port, NULL));
    char line[64];
    ssize_t n = asyncio_stream_write(c, "hello\n", 6);
    if (n == 0) {
        n = asyncio_stream_readline(c, line, sizeof line);
        n = tls_got(n, line, "hi\n", 3);
    }
    if (n == 0)
        n = asyncio_stream_write(c, "starttls\n", 9);
    if (n < 0) {
        asyncio_stream_wait_closed(c);
        return (int)n;
    }
    char err[160] = "x";
    asyncio_tls_options_t to = {.server_hostname = "localhost", .error = err,
                                .error_size = sizeof err};
    int rc = asyncio_start_tls(c, ctx, &to);
    if (rc < 0)
        return rc; /* c closed and freed: only misuse leaves it untouched */
    CHECK_OR_WRONG(err[0] == '\0');
    rc = tls_check_info(c);
    if (rc == 0)
        rc = asyncio_stream_write(c, "secret\n", 7);
    if (rc == 0) {
        n = asyncio_stream_readline(c, line, sizeof line);
        rc = tls_got(n, line, "secret\n", 7);
    }
    if (rc == 0)
        rc = asyncio_stream_write_eof(c);
    if (rc == 0) {
        n = asyncio_stream_read(c, line, sizeof line); /* the end: close_notify */
        rc = n > 0 ? WRONG : (int)n;
    }
    int w = asyncio_stream_wait_closed(c);
    TRY(rc);
    return w;
}

/* asyncio_start_tls() on both sides of a plain connection. */
static int s_starttls(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct tls_shared sh = {0};
    asyncio_tls_context_t *client_ctx;
    TRY(tls_contexts(&sh.server_ctx, &client_ctx));
    asyncio_server_t *srv = NULL;
    int rc = asyncio_start_server(&srv, starttls_handler, &sh, "127.0.0.1", 0, NULL);
    int port = rc < 0 ? rc : asyncio_server_port(srv);
    if (rc == 0 && port < 0)
        rc = port;
    if (rc == 0)
        rc = starttls_client(port, client_ctx);
    if (srv) {
        asyncio_server_close(srv);
        int w = asyncio_server_wait_closed(srv);
        if (rc == 0)
            rc = w;
    }
    /* After the handlers: they use the server's context. */
    asyncio_tls_context_unref(sh.server_ctx);
    asyncio_tls_context_unref(client_ctx);
    CHECK_OR_WRONG(!sh.wrong);
    return rc;
}
#endif /* FAULT_HAVE_TLS */

struct scenario {
    const char *name;
    asyncio_fn fn;
    const char *backend; /* NULL: the platform's best (epoll) */
    void *arg;
    bool sigchld;        /* children watched through SIGCHLD, not pidfds */
    bool tls;            /* needs the certificate files; TLS's errors too */
};

/* The poll backend's own allocations and poll() failing: the scenarios
 * that watch fds, again on it. A reader limit under the first buffer's
 * size (16 KiB): the buffer is sized to the limit, and grown. */
static const struct scenario scenarios[] = {
    {"loop", s_loop, NULL, NULL, false, false},
    {"tasks", s_tasks, NULL, NULL, false, false},
    {"taskgroup", s_taskgroup, NULL, NULL, false, false},
    {"taskgroup-scoped", s_taskgroup_scoped, NULL, NULL, false, false},
    {"timeout-reschedule", s_timeout_reschedule, NULL, NULL, false, false},
    {"sweep", s_sweep, NULL, NULL, false, false},
    {"sync", s_sync, NULL, NULL, false, false},
    {"queue", s_queue, NULL, NULL, false, false},
    {"timeouts", s_timeouts, NULL, NULL, false, false},
    {"stream", s_stream, NULL, NULL, false, false},
    {"server", s_server, NULL, NULL, false, false},
    {"resolver", s_resolver, NULL, NULL, false, false},
    {"signal", s_signal, NULL, NULL, false, false},
    {"sock", s_sock, NULL, NULL, false, false},
    {"threads", s_threads, NULL, NULL, false, false},
    {"lifecycle", s_lifecycle, NULL, NULL, false, false},
    {"lifecycle-poll", s_lifecycle, "poll", "poll", false, false},
    {"stream-poll", s_stream, "poll", NULL, false, false},
    {"sock-poll", s_sock, "poll", NULL, false, false},
    {"stream-limit", s_stream, NULL, (void *)(uintptr_t)16, false, false},
    {"subprocess", s_subprocess, NULL, NULL, false, false},
    {"subprocess-poll", s_subprocess, "poll", NULL, false, false},
    {"subprocess-sigchld", s_subprocess, NULL, NULL, true, false},
#ifdef FAULT_HAVE_TLS
    {"tls", s_tls, NULL, NULL, false, true},
    {"tls-poll", s_tls, "poll", NULL, false, true},
    {"tls-starttls", s_starttls, NULL, NULL, false, true},
#endif
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* Errors a scenario may end with when a call fails: what the headers of
 * the calls it makes document, the failures injected among them. site:
 * the call that failed. */
static bool documented(int rc, const struct scenario *s, int site)
{
    /* A TLS context's files are looked at with stat(), and any failure of
     * it is -ENOENT ("no such file", <asyncio/tls.h>). */
    if (s->tls && -rc == ENOENT && site == FAULT_stat)
        return true;
    /* A TLS 1.3 server whose NewSessionTicket's send() fails with EPIPE
     * takes the connection for closed by the client and goes on (OpenSSL's
     * choice): a real EPIPE stays, the injected one does not, and the
     * client then gets records after a missing one, "bad record mac". */
    if (s->tls && -rc == EPROTO && site == FAULT_send)
        return true;
    switch (-rc) {
    case ENOMEM: case EAGAIN: case EMFILE: case ENFILE: case EADDRINUSE:
    case ECONNREFUSED: case ECONNRESET: case ENOBUFS: case EPIPE: case EIO:
    case ENOTCONN: case EBADF: case EACCES: case ENOSYS: case ETIMEDOUT:
    case ECANCELED:
        return true;
    default:
        return false;
    }
}

/* ---- running them ------------------------------------------------------- */

/* What a child tells its parent. */
struct outcome {
    int rc;              /* asyncio_run()'s value */
    int leaked;          /* LeakSanitizer found leaks */
    int site;            /* the call that failed, or -1 */
    int eintr;           /* it failed with EINTR */
    unsigned long calls; /* calls counted */
};

/* Run scenario s in a child with the fail_at-th call failing; false if the
 * child did not report (it crashed or hung: *status says how). With
 * fail_at 0 (counting) the child also sends the site of every call, into
 * sites (room for FAULT_LOG). */
static bool run_child(const struct scenario *s, unsigned long fail_at, bool eintr,
                      struct outcome *out, int *status, unsigned char *sites)
{
    int p[2];
    if (pipe(p) < 0) {
        perror("pipe");
        exit(2);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(p[0]);
        alarm(20);
        if (s->sigchld)
            setenv("ASYNCIO_CHILD_WATCHER", "sigchld", 1);
        fault_arm();
        fault_fail_at(fail_at, eintr);
        struct outcome o = {0};
        asyncio_run_options_t opts = {.backend = s->backend};
        o.rc = asyncio_run_ex(s->fn, s->arg, NULL, &opts);
        /* The number of calls a run makes varies a little with timing (how
         * many times the loop polls): the call to fail may come after the
         * run, where it must not (in a coverage build, gcov's dump below
         * dies of a failed malloc). */
        fault_disarm();
        bool e;
        o.site = fault_failed_site(&e);
        o.eintr = e;
        o.calls = fault_calls();
        o.leaked = __lsan_do_recoverable_leak_check ? __lsan_do_recoverable_leak_check() : 0;
        if (__real_write(p[1], &o, sizeof o) != (ssize_t)sizeof o)
            _exit(3);
        for (unsigned long i = 1; !fail_at && i <= o.calls && i <= FAULT_LOG; i++) {
            unsigned char site = (unsigned char)fault_site_of(i);
            if (__real_write(p[1], &site, 1) != 1)
                _exit(3);
        }
#ifdef ASYNCIO_COVERAGE
        __gcov_dump();
#endif
        _exit(0);
    }
    close(p[1]);
    ssize_t n = __real_read(p[0], out, sizeof *out);
    for (unsigned long i = 0; sites && n == (ssize_t)sizeof *out && i < out->calls && i < FAULT_LOG;
         i++)
        if (__real_read(p[0], &sites[i], 1) != 1)
            n = -1;
    close(p[0]);
    waitpid(pid, status, 0);
    return n == (ssize_t)sizeof *out && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

static int verbose;

/* A run's verdict: NULL if it passed, else why not. */
static const char *judge(const struct scenario *s, bool reported, int status,
                         const struct outcome *o, bool eintr, char *buf, size_t len)
{
    if (!reported) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            return "hung (no end within 20 s)";
        if (WIFSIGNALED(status))
            snprintf(buf, len, "crashed (signal %d)", WTERMSIG(status));
        else
            snprintf(buf, len, "died (exit status %d)", WEXITSTATUS(status));
        return buf;
    }
    if (o->leaked)
        return "leaked (LeakSanitizer's report above)";
    if (o->rc == WRONG)
        return "a wrong result (data or outcome), not an error";
    if (eintr && o->site >= 0 && o->eintr && o->rc != 0) {
        snprintf(buf, len, "an EINTR (or accept's ECONNABORTED) reached the program: %d (%s)",
                 o->rc, strerror(-o->rc));
        return buf;
    }
    if (o->rc < 0 && !documented(o->rc, s, o->site)) {
        snprintf(buf, len, "an undocumented error %d (%s)", o->rc, strerror(-o->rc));
        return buf;
    }
    return NULL;
}

static int run_scenario(const struct scenario *s, unsigned long *runs)
{
    struct outcome o;
    int status;
    static unsigned char sites[FAULT_LOG];
    if (!run_child(s, 0, false, &o, &status, sites) || o.rc != 0 || o.leaked) {
        fprintf(stderr, "fault: %s: fails with no fault injected (rc %d, status %#x)\n", s->name,
                o.rc, (unsigned)status);
        return 1;
    }
    unsigned long calls = o.calls;
    if (calls > FAULT_LOG) {
        fprintf(stderr, "fault: %s: %lu calls, more than the %d the driver follows\n", s->name,
                calls, FAULT_LOG);
        return 1;
    }
    int failures = 0;
    for (unsigned long k = 1; k <= calls; k++) {
        /* Every call with its hard error; a call that blocks with EINTR too. */
        for (int pass = 0; pass < 1 + fault_site_can_eintr(sites[k - 1]); pass++) {
            bool eintr = pass == 1;
            struct outcome r = {0};
            bool reported = run_child(s, k, eintr, &r, &status, NULL);
            ++*runs;
            char buf[160];
            const char *why = judge(s, reported, status, &r, eintr, buf, sizeof buf);
            if (verbose || why)
                fprintf(stderr, "fault: %-9s call %4lu/%lu %-14s %-6s -> %s%s\n", s->name, k,
                        calls, reported ? fault_site_name(r.site) : "?",
                        eintr ? "EINTR" : "error", why ? "FAILED: " : "ok",
                        why ? why : "");
            if (why) {
                fprintf(stderr, "       rerun: fault_driver -k %lu%s %s\n", k, eintr ? " -e" : "",
                        s->name);
                failures++;
            }
        }
    }
    fprintf(stderr, "fault: %-9s %lu calls, %s\n", s->name, calls,
            failures ? "FAILED" : "every failure handled");
    return failures;
}

/* The harness itself: a leak in a child must be seen, or "no leak" would
 * mean nothing. True if LeakSanitizer is there and sees one. */
static void *volatile lost;

static bool leak_check_works(void)
{
    if (!__lsan_do_recoverable_leak_check)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO); /* the report is expected: not shown */
        lost = malloc(64);
        lost = NULL;
        _exit(__lsan_do_recoverable_leak_check() ? 0 : 1);
    }
    int status;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    unsigned long only_k = 0;
    bool only_eintr = false;
    unsigned shard = 0, shards = 1; /* -s I/N: scenarios I, I+N, I+2N... */
    int opt;
    while ((opt = getopt(argc, argv, "vk:es:")) != -1) {
        switch (opt) {
        case 'v': verbose = 1; break;
        case 'k': only_k = strtoul(optarg, NULL, 10); break;
        case 'e': only_eintr = true; break;
        case 's':
            if (sscanf(optarg, "%u/%u", &shard, &shards) == 2 && shards > 0 && shard < shards)
                break;
            fprintf(stderr, "%s: -s wants I/N with I < N (as 0/2)\n", argv[0]);
            return 2;
        default:
            fprintf(stderr, "usage: %s [-v] [-s I/N] [-k N [-e]] [SCENARIO...]\n", argv[0]);
            return 2;
        }
    }
    if (!only_k) {
        if (leak_check_works())
            fprintf(stderr, "fault: LeakSanitizer checks every run (a planted leak was seen)\n");
        else if (__lsan_do_recoverable_leak_check)
            return fprintf(stderr, "fault: LeakSanitizer missed a planted leak\n"), 1;
        else
            fprintf(stderr, "fault: no LeakSanitizer in this build: leaks are not checked "
                            "(configure with -DASYNCIO_SANITIZE=address,undefined)\n");
    }
    int failures = 0;
    unsigned long runs = 0;
    for (size_t i = 0; i < NSCENARIOS; i++) {
        const struct scenario *s = &scenarios[i];
        bool chosen = optind == argc;
        for (int a = optind; a < argc; a++)
            chosen |= strcmp(argv[a], s->name) == 0;
        if (!chosen || i % shards != shard)
            continue;
#ifdef FAULT_HAVE_TLS
        if (s->tls && !tls_files_make())
            return 2;
#endif
        if (only_k) {
            /* One run, in this process: for a debugger. */
            fault_arm();
            fault_fail_at(only_k, only_eintr);
            asyncio_run_options_t opts = {.backend = s->backend};
            int rc = asyncio_run_ex(s->fn, s->arg, NULL, &opts);
            fault_disarm();
            bool e;
            int site = fault_failed_site(&e);
            printf("%s: call %lu (%s%s) failed: asyncio_run returned %d (%s)\n", s->name, only_k,
                   fault_site_name(site), e ? ", EINTR" : "", rc, rc < 0 ? strerror(-rc) : "ok");
            return 0;
        }
        failures += run_scenario(s, &runs);
    }
    fprintf(stderr, "fault: %lu runs, %d failed\n", runs, failures);
    return failures ? 1 : 0;
}
