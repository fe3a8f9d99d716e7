/* bench/threads/minimal_queue.c: the ceiling for call_soon_threadsafe, the
 * least a loop needs to take callbacks from another thread: an epoll loop
 * watching an eventfd, and a mutex-protected array of (cb, arg) pairs.
 *
 *   minimal_queue threadsafe N [LOOP_CPU PRODUCER_CPU]
 *
 * A producer thread posts N callbacks as fast as it can; the loop (the main
 * thread) runs each. Posting appends to the array under the mutex and
 * writes the eventfd only when the array goes from empty to non-empty, so
 * a burst of posts costs the loop one wake-up (as libuv's uv_async_send
 * coalesces). The loop, woken, reads the eventfd, then swaps the array for
 * its own empty one under the mutex (one lock per wake-up, not per item)
 * and runs the batch. The two arrays keep their capacity, so after the
 * warm-up run nothing is allocated. Reading the eventfd before the swap
 * means no wake-up is lost: a post that lands between the two is in this
 * batch and its write only costs a spurious wake-up later.
 *
 * Output as bench/bench_threads.c's threadsafe mode (thr_common.h): one
 * warm-up of N/10 callbacks, then THR_RUNS runs of N; the median run. The
 * rate is N over the time from the producer's first post to the N-th
 * callback; CPU is the process's (getrusage) over the run, per callback.
 *
 *   cc -O2 -pthread -o minimal_queue minimal_queue.c
 */
#define _GNU_SOURCE
#include "thr_common.h"

#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef void (*cb_fn)(void *arg);
struct item {
    cb_fn cb;
    void *arg;
};
struct vec {
    struct item *v;
    size_t len, cap;
};

/* What the producers share, on cache lines of its own (128 bytes: the
 * adjacent-line prefetcher pairs lines), away from the loop's variables,
 * so that the counters the loop's callbacks write do not take the mutex's
 * line from the producer (false sharing). */
static struct {
    _Alignas(128) pthread_mutex_t mu;
    struct vec pending; /* under mu: what producers posted */
    int efd;
    _Alignas(128) char end_;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct vec running; /* the loop's: the batch it runs */
static int epfd;

/* Post cb(arg) to the loop from any thread. 0 or -ENOMEM. */
static int post(cb_fn cb, void *arg)
{
    pthread_mutex_lock(&q.mu);
    if (q.pending.len == q.pending.cap) {
        size_t cap = q.pending.cap ? 2 * q.pending.cap : 1024;
        struct item *v = realloc(q.pending.v, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&q.mu);
            return -ENOMEM;
        }
        q.pending.v = v;
        q.pending.cap = cap;
    }
    int was_empty = q.pending.len == 0;
    q.pending.v[q.pending.len++] = (struct item){cb, arg};
    pthread_mutex_unlock(&q.mu);
    if (was_empty) {
        uint64_t one = 1;
        while (write(q.efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    return 0;
}

/* The loop's side: take the whole batch in one swap and run it. */
static void drain(void)
{
    uint64_t v;
    while (read(q.efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&q.mu);
    struct vec t = q.pending;
    q.pending = running;
    running = t;
    pthread_mutex_unlock(&q.mu);
    for (size_t i = 0; i < running.len; i++)
        running.v[i].cb(running.v[i].arg);
    running.len = 0;
}

/* ---- the benchmark --------------------------------------------------------- */

static long target, received, order_errors;
static int done;
static uint64_t t_end;
static _Atomic uint64_t t_start;

static void on_cb(void *arg)
{
    if ((uintptr_t)arg != (uintptr_t)received)
        order_errors++;
    if (++received == target) {
        t_end = thr_now_ns();
        done = 1;
    }
}

struct producer {
    long n;
    int cpu;
    long failures;
};

static void *producer_main(void *p_)
{
    struct producer *p = p_;
    thr_pin(p->cpu, "producer");
    atomic_store(&t_start, thr_now_ns());
    for (long i = 0; i < p->n; i++)
        if (post(on_cb, (void *)(uintptr_t)i) < 0)
            p->failures++;
    return NULL;
}

/* One run of n callbacks; 0, or -1 if it failed or took over 120 s. */
static int one_run(long n, int producer_cpu, struct thr_run *out)
{
    target = n;
    received = order_errors = 0;
    done = 0;
    struct producer p = {n, producer_cpu, 0};
    uint64_t cpu0 = thr_cpu_ns(), deadline = thr_now_ns() + 120000000000u;
    pthread_t th;
    if (pthread_create(&th, NULL, producer_main, &p) != 0) {
        fprintf(stderr, "minimal_queue: pthread_create failed\n");
        return -1;
    }
    while (!done) {
        struct epoll_event ev[4];
        int k = epoll_wait(epfd, ev, 4, 1000);
        if (k < 0 && errno != EINTR) {
            perror("epoll_wait");
            exit(1);
        }
        for (int i = 0; i < k; i++)
            if (ev[i].data.fd == q.efd)
                drain();
        if (!done && (thr_now_ns() > deadline || (p.failures && received + p.failures >= n)))
            break;
    }
    uint64_t cpu1 = thr_cpu_ns();
    pthread_join(th, NULL);
    if (!done) {
        fprintf(stderr, "minimal_queue: %ld of %ld callbacks, %ld failed posts\n", received, n,
                p.failures);
        return -1;
    }
    out->rate = (double)n / ((double)(t_end - atomic_load(&t_start)) / 1e9);
    out->cpu_ns = (double)(cpu1 - cpu0) / (double)n;
    out->failures = p.failures;
    out->order_errors = order_errors;
    return 0;
}

int main(int argc, char **argv)
{
    struct thr_args a;
    thr_parse(argc, argv, &a);
    if (a.mode != 1) {
        fprintf(stderr, "minimal_queue: only the threadsafe mode\n");
        return 2;
    }
    thr_pin(a.loop_cpu, "loop");
    q.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = q.efd};
    if (q.efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, q.efd, &ev) < 0) {
        perror("minimal_queue: eventfd/epoll");
        return 1;
    }
    struct thr_run warm, runs[THR_RUNS];
    if (one_run(a.n / 10 > 0 ? a.n / 10 : 1, a.producer_cpu, &warm) < 0)
        return 1;
    for (int r = 0; r < THR_RUNS; r++)
        if (one_run(a.n, a.producer_cpu, &runs[r]) < 0)
            return 1;
    thr_report_threadsafe(runs, THR_RUNS, a.n);
    return 0;
}
