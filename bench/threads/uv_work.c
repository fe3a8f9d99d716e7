/* bench/threads/uv_work.c: the libuv peer of bench/bench_threads.c.
 *
 *   uv_work to_thread N
 *   uv_work threadsafe N [LOOP_CPU PRODUCER_CPU]
 *
 * to_thread: N sequential uv_queue_work() round trips of a no-op (after
 * THR_WARMUP_TRIPS not measured): each is timed from just before
 * uv_queue_work() to the start of its after_work callback in the loop, and
 * the next is queued from there. libuv's pool has 4 threads by default
 * (UV_THREADPOOL_SIZE), started on the first uv_queue_work().
 *
 * threadsafe: what a libuv program does for loop.call_soon_threadsafe (and
 * what uvloop does): a producer thread appends (cb, arg) to a
 * mutex-protected array and calls uv_async_send() after every append;
 * libuv coalesces the sends (an atomic flag: only the first of a burst
 * writes its eventfd), and the loop's async callback takes the whole
 * array in one swap under the mutex and runs every callback in it. Only
 * delivered callbacks count, not async callbacks (which coalesce). The
 * array is bench/threads/minimal_queue.c's; only the wake-up differs.
 *
 * Output lines as thr_common.h says.
 *
 *   cc -O2 -pthread -o uv_work uv_work.c -luv
 */
#define _GNU_SOURCE /* uv.h needs pthread_rwlock_t; pthread_setaffinity_np */
#include "thr_common.h"

#include <stdatomic.h>
#include <uv.h>

static uv_loop_t *loop;

/* ---- to_thread: uv_queue_work round trips -------------------------------- */

static uv_work_t req;
static long trips_left, trips_total, trip_i, warm_left;
static uint64_t *trip_ns, trip_t0, wall0, cpu0, wall_ns, cpu_ns;

static void noop_work(uv_work_t *r)
{
    (void)r;
}

static void after_work(uv_work_t *r, int status);

static void queue_next(void)
{
    trip_t0 = thr_now_ns();
    int rc = uv_queue_work(loop, &req, noop_work, after_work);
    if (rc < 0) {
        fprintf(stderr, "uv_queue_work: %s\n", uv_strerror(rc));
        exit(1);
    }
}

static void after_work(uv_work_t *r, int status)
{
    (void)r;
    uint64_t t = thr_now_ns();
    if (status < 0) {
        fprintf(stderr, "after_work: %s\n", uv_strerror(status));
        exit(1);
    }
    if (warm_left > 0) {
        if (--warm_left == 0) {
            wall0 = thr_now_ns();
            cpu0 = thr_cpu_ns();
        }
        queue_next();
        return;
    }
    trip_ns[trip_i++] = t - trip_t0;
    if (--trips_left > 0) {
        queue_next();
        return;
    }
    wall_ns = thr_now_ns() - wall0;
    cpu_ns = thr_cpu_ns() - cpu0;
}

static int run_to_thread(long n)
{
    trip_ns = malloc((size_t)n * sizeof *trip_ns);
    if (!trip_ns)
        return 1;
    trips_left = trips_total = n;
    warm_left = THR_WARMUP_TRIPS;
    queue_next();
    uv_run(loop, UV_RUN_DEFAULT);
    if (trip_i != n) {
        fprintf(stderr, "uv_work: %ld of %ld round trips\n", trip_i, n);
        return 1;
    }
    thr_report_to_thread(trip_ns, n, wall_ns, cpu_ns);
    free(trip_ns);
    return 0;
}

/* ---- threadsafe: mutex queue + uv_async_send ----------------------------- */

typedef void (*cb_fn)(void *arg);
struct item {
    cb_fn cb;
    void *arg;
};
struct vec {
    struct item *v;
    size_t len, cap;
};

static uv_async_t async;
/* Shared with the producer, on lines of its own (as minimal_queue.c's). */
static struct {
    _Alignas(128) uv_mutex_t mu;
    struct vec pending; /* under mu */
    _Alignas(128) char end_;
} q;
static struct vec running;

static int post(cb_fn cb, void *arg)
{
    uv_mutex_lock(&q.mu);
    if (q.pending.len == q.pending.cap) {
        size_t cap = q.pending.cap ? 2 * q.pending.cap : 1024;
        struct item *v = realloc(q.pending.v, cap * sizeof *v);
        if (!v) {
            uv_mutex_unlock(&q.mu);
            return -ENOMEM;
        }
        q.pending.v = v;
        q.pending.cap = cap;
    }
    q.pending.v[q.pending.len++] = (struct item){cb, arg};
    uv_mutex_unlock(&q.mu);
    return uv_async_send(&async);
}

static void on_async(uv_async_t *h)
{
    (void)h;
    uv_mutex_lock(&q.mu);
    struct vec t = q.pending;
    q.pending = running;
    running = t;
    uv_mutex_unlock(&q.mu);
    for (size_t i = 0; i < running.len; i++)
        running.v[i].cb(running.v[i].arg);
    running.len = 0;
}

static long target, received, order_errors;
static int done;
static uint64_t t_end;
static _Atomic uint64_t t_start;
static uv_timer_t watchdog;

static void on_cb(void *arg)
{
    if ((uintptr_t)arg != (uintptr_t)received)
        order_errors++;
    if (++received == target) {
        t_end = thr_now_ns();
        done = 1;
        uv_stop(loop);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    uv_stop(loop);
}

struct producer {
    long n;
    int cpu;
    long failures;
};

static void producer_main(void *p_)
{
    struct producer *p = p_;
    thr_pin(p->cpu, "producer");
    atomic_store(&t_start, thr_now_ns());
    for (long i = 0; i < p->n; i++)
        if (post(on_cb, (void *)(uintptr_t)i) < 0)
            p->failures++;
}

static int one_run(long n, int producer_cpu, struct thr_run *out)
{
    target = n;
    received = order_errors = 0;
    done = 0;
    struct producer p = {n, producer_cpu, 0};
    uv_timer_start(&watchdog, on_watchdog, 120000, 0);
    uint64_t c0 = thr_cpu_ns();
    uv_thread_t th;
    if (uv_thread_create(&th, producer_main, &p) != 0) {
        fprintf(stderr, "uv_work: uv_thread_create failed\n");
        return -1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t c1 = thr_cpu_ns();
    uv_thread_join(&th);
    uv_timer_stop(&watchdog);
    if (!done || p.failures) {
        fprintf(stderr, "uv_work: %ld of %ld callbacks, %ld failed posts\n", received, n,
                p.failures);
        return -1;
    }
    out->rate = (double)n / ((double)(t_end - atomic_load(&t_start)) / 1e9);
    out->cpu_ns = (double)(c1 - c0) / (double)n;
    out->failures = p.failures;
    out->order_errors = order_errors;
    return 0;
}

static int run_threadsafe(const struct thr_args *a)
{
    if (uv_mutex_init(&q.mu) != 0 || uv_async_init(loop, &async, on_async) != 0 ||
        uv_timer_init(loop, &watchdog) != 0)
        return 1;
    struct thr_run warm, runs[THR_RUNS];
    if (one_run(a->n / 10 > 0 ? a->n / 10 : 1, a->producer_cpu, &warm) < 0)
        return 1;
    for (int r = 0; r < THR_RUNS; r++)
        if (one_run(a->n, a->producer_cpu, &runs[r]) < 0)
            return 1;
    thr_report_threadsafe(runs, THR_RUNS, a->n);
    uv_close((uv_handle_t *)&async, NULL);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    struct thr_args a;
    thr_parse(argc, argv, &a);
    thr_pin(a.loop_cpu, "loop");
    loop = uv_default_loop();
    int rc = a.mode == 0 ? run_to_thread(a.n) : run_threadsafe(&a);
    uv_loop_close(loop);
    return rc;
}
