/* bench_threads: the thread layer, beside bench/threads/uv_work.c (libuv),
 * bench/threads/minimal_queue.c (the ceiling) and bench/py/bench_threads.py
 * (asyncio, uvloop); bench/threads.sh runs them all.
 *
 *   bench_threads to_thread N
 *   bench_threads threadsafe N [LOOP_CPU PRODUCER_CPU]   (-1: not pinned)
 *
 * to_thread: a task makes N sequential asyncio_to_thread(noop) round trips
 * (after THR_WARMUP_TRIPS not measured, which also start the default
 * executor's thread), each timed around the call with
 * asyncio_loop_time_ns(): median, p99, max, mean, the wall time of the N
 * and the process's CPU time (getrusage: the loop and the pool's threads)
 * per round trip.
 *
 * threadsafe: a plain pthread calls asyncio_call_soon_threadsafe(loop, cb,
 * i, NULL) N times as fast as it can, while the main task waits on an
 * asyncio_event that the N-th callback sets (in a 120 s timeout scope, so
 * that it never hangs). A call that fails (-ENOMEM, ...) is counted in
 * threadsafe_failures and the run waits for the callbacks accepted. The
 * rate is the callbacks delivered over the time from the producer's first
 * call to the last callback; CPU is the whole process's over the run, per
 * callback. One warm-up run of N/10, then THR_RUNS runs of N; the median
 * run. The loop's thread (the main thread) and the producer are pinned to
 * LOOP_CPU and PRODUCER_CPU if given.
 *
 * Output lines as bench/threads/thr_common.h says. */
#include <asyncio.h>

#include "threads/thr_common.h"

#include <stdatomic.h>
#include <unistd.h>

static struct thr_args args;

/* ---- to_thread ------------------------------------------------------------ */

static void *noop(void *arg)
{
    return arg;
}

static int to_thread_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    long n = args.n;
    for (long i = 0; i < THR_WARMUP_TRIPS; i++) {
        void *r = NULL;
        int rc = asyncio_to_thread(noop, &args, NULL, &r);
        if (rc < 0 || r != &args) {
            fprintf(stderr, "bench_threads: asyncio_to_thread: %s\n", strerror(-rc));
            return rc < 0 ? rc : -EIO;
        }
    }
    uint64_t *trips = malloc((size_t)n * sizeof *trips);
    if (!trips)
        return -ENOMEM;
    uint64_t cpu0 = thr_cpu_ns(), w0 = asyncio_loop_time_ns();
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        uint64_t t0 = asyncio_loop_time_ns();
        int rc = asyncio_to_thread(noop, (void *)(uintptr_t)(i + 1), NULL, &r);
        trips[i] = asyncio_loop_time_ns() - t0;
        if (rc < 0 || r != (void *)(uintptr_t)(i + 1)) {
            fprintf(stderr, "bench_threads: asyncio_to_thread: %s\n",
                    rc < 0 ? strerror(-rc) : "wrong result");
            free(trips);
            return rc < 0 ? rc : -EIO;
        }
    }
    uint64_t wall = asyncio_loop_time_ns() - w0, cpu = thr_cpu_ns() - cpu0;
    thr_report_to_thread(trips, n, wall, cpu);
    free(trips);
    return 0;
}

/* ---- threadsafe ----------------------------------------------------------- */

static asyncio_event_t done_ev;
static long received, last_seen, order_errors;
static int signalled;
static uint64_t t_end;
static _Atomic long target;      /* callbacks to wait for: n - failures */
static _Atomic uint64_t t_start; /* the producer's first call */

static void finish_if_done(void)
{
    if (!signalled && received >= atomic_load(&target)) {
        signalled = 1;
        t_end = asyncio_loop_time_ns();
        asyncio_event_set(&done_ev);
    }
}

static void on_cb(void *arg)
{
    long i = (long)(uintptr_t)arg;
    if (i <= last_seen)
        order_errors++;
    last_seen = i;
    received++;
    finish_if_done();
}

/* Sent after the calls if some failed: target has changed. */
static void on_check(void *arg)
{
    (void)arg;
    finish_if_done();
}

struct producer {
    asyncio_loop_t *loop;
    long n;
    int cpu;
    long failures;
    int first_error;
};

static void *producer_main(void *p_)
{
    struct producer *p = p_;
    thr_pin(p->cpu, "producer");
    atomic_store(&t_start, asyncio_loop_time_ns());
    for (long i = 0; i < p->n; i++) {
        int rc = asyncio_call_soon_threadsafe(p->loop, on_cb, (void *)(uintptr_t)i, NULL);
        if (rc < 0) {
            if (!p->failures)
                p->first_error = rc;
            p->failures++;
        }
    }
    if (p->failures) {
        atomic_store(&target, p->n - p->failures);
        /* The loop may have run the last accepted callback already. */
        for (int k = 0; k < 1000; k++) {
            if (asyncio_call_soon_threadsafe(p->loop, on_check, NULL, NULL) == 0)
                break;
            usleep(1000);
        }
    }
    return NULL;
}

static int one_run(long n, struct thr_run *out)
{
    received = order_errors = 0;
    last_seen = -1;
    signalled = 0;
    atomic_store(&target, n);
    asyncio_event_init(&done_ev);
    struct producer p = {asyncio_get_running_loop(), n, args.producer_cpu, 0, 0};
    if (!p.loop) {
        fprintf(stderr, "bench_threads: asyncio_get_running_loop() is NULL\n");
        return -EIO;
    }
    uint64_t cpu0 = thr_cpu_ns();
    pthread_t th;
    if (pthread_create(&th, NULL, producer_main, &p) != 0) {
        fprintf(stderr, "bench_threads: pthread_create failed\n");
        return -EAGAIN;
    }
    asyncio_timeout_t scope;
    asyncio_timeout_enter(&scope, 120.0);
    int rc = asyncio_event_wait(&done_ev);
    int trc = asyncio_timeout_exit(&scope);
    uint64_t cpu1 = thr_cpu_ns();
    pthread_join(th, NULL); /* its last call has returned, or nearly */
    asyncio_event_destroy(&done_ev);
    if (p.failures)
        fprintf(stderr, "bench_threads: %ld of %ld calls failed, the first with %s\n", p.failures,
                n, strerror(-p.first_error));
    if (rc < 0 || trc < 0) {
        fprintf(stderr, "bench_threads: %ld of %ld callbacks after 120 s\n", received,
                n - p.failures);
        return rc < 0 ? rc : trc;
    }
    out->rate = (double)received / ((double)(t_end - atomic_load(&t_start)) / 1e9);
    out->cpu_ns = (double)(cpu1 - cpu0) / (double)(received ? received : 1);
    out->failures = p.failures;
    out->order_errors = order_errors;
    return 0;
}

static int threadsafe_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct thr_run warm, runs[THR_RUNS];
    int rc = one_run(args.n / 10 > 0 ? args.n / 10 : 1, &warm);
    for (int r = 0; r < THR_RUNS && rc == 0; r++)
        rc = one_run(args.n, &runs[r]);
    if (rc < 0)
        return rc;
    thr_report_threadsafe(runs, THR_RUNS, args.n);
    return 0;
}

int main(int argc, char **argv)
{
    thr_parse(argc, argv, &args);
    thr_pin(args.loop_cpu, "loop"); /* the loop runs in this thread */
    int rc = asyncio_run(args.mode == 0 ? to_thread_main : threadsafe_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "bench_threads: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
