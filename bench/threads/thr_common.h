/* bench/threads/thr_common.h: what the C programs of the thread benchmarks
 * share (bench/bench_threads.c, bench/threads/minimal_queue.c,
 * bench/threads/uv_work.c): the command line, pinning a thread to a CPU,
 * CPU time, percentiles, and the output lines, which every implementation
 * (bench/py/bench_threads.py too) prints alike, so that bench/threads.sh
 * parses them the same way:
 *
 *   to_thread N:    to_thread_n, to_thread_median_us, to_thread_p99_us,
 *                   to_thread_max_us, to_thread_mean_us, to_thread_total_s,
 *                   to_thread_cpu_us_per_op
 *   threadsafe N:   threadsafe_n, threadsafe_cb_per_s, threadsafe_cpu_ns_per_cb,
 *                   threadsafe_failures, threadsafe_order_errors
 *
 * each as `name value unit`. Needs _GNU_SOURCE (pthread_setaffinity_np)
 * before the first include of the translation unit. */
#ifndef THR_COMMON_H
#define THR_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Round trips of to_thread mode not measured, before the N that are. */
#define THR_WARMUP_TRIPS 1000
/* Runs of threadsafe mode: one warm-up of N/10 callbacks, then this many of
 * N; the median run's figures are printed. */
#define THR_RUNS 3

struct thr_args {
    int mode;         /* 0: to_thread, 1: threadsafe */
    long n;           /* round trips or callbacks */
    int loop_cpu;     /* CPU of the loop's thread, -1: not pinned */
    int producer_cpu; /* CPU of the producer thread, -1: not pinned */
};

static inline void thr_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s to_thread N\n"
            "       %s threadsafe N [LOOP_CPU PRODUCER_CPU]   (-1: not pinned)\n",
            prog, prog);
    exit(2);
}

static inline void thr_parse(int argc, char **argv, struct thr_args *a)
{
    char *end;
    if (argc < 3)
        thr_usage(argv[0]);
    if (strcmp(argv[1], "to_thread") == 0)
        a->mode = 0;
    else if (strcmp(argv[1], "threadsafe") == 0)
        a->mode = 1;
    else
        thr_usage(argv[0]);
    a->n = strtol(argv[2], &end, 10);
    if (*end || a->n <= 0 || a->n > 1000000000L)
        thr_usage(argv[0]);
    a->loop_cpu = a->producer_cpu = -1;
    if (a->mode == 1 && argc == 5) {
        a->loop_cpu = (int)strtol(argv[3], &end, 10);
        if (*end)
            thr_usage(argv[0]);
        a->producer_cpu = (int)strtol(argv[4], &end, 10);
        if (*end)
            thr_usage(argv[0]);
    } else if (argc != 3) {
        thr_usage(argv[0]);
    }
}

/* Pin the calling thread to cpu (nothing if cpu < 0); complains on stderr
 * and goes on unpinned if it cannot. */
static inline void thr_pin(int cpu, const char *who)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc != 0)
        fprintf(stderr, "cannot pin the %s thread to CPU %d: %s\n", who, cpu, strerror(rc));
}

static inline uint64_t thr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User + system CPU time of the whole process (every thread), in ns. */
static inline uint64_t thr_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static inline int thr_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static inline int thr_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The value at quantile q of n sorted values (nearest rank). */
static inline uint64_t thr_quantile(const uint64_t *sorted, long n, double q)
{
    long k = (long)(q * (double)n + 0.999999); /* ceil(q n), 1-based */
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1];
}

/* Print the to_thread lines from n round-trip times (ns, sorted here), the
 * wall time and the process CPU time of the n. */
static inline void thr_report_to_thread(uint64_t *trip_ns, long n, uint64_t wall_ns,
                                        uint64_t cpu_ns)
{
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)trip_ns[i];
    qsort(trip_ns, (size_t)n, sizeof *trip_ns, thr_cmp_u64);
    uint64_t med = n % 2 ? trip_ns[n / 2] : (trip_ns[n / 2 - 1] + trip_ns[n / 2]) / 2;
    printf("to_thread_n %ld ops\n", n);
    printf("to_thread_median_us %.3f us\n", (double)med / 1e3);
    printf("to_thread_p99_us %.3f us\n", (double)thr_quantile(trip_ns, n, 0.99) / 1e3);
    printf("to_thread_max_us %.3f us\n", (double)trip_ns[n - 1] / 1e3);
    printf("to_thread_mean_us %.3f us\n", sum / (double)n / 1e3);
    printf("to_thread_total_s %.4f s\n", (double)wall_ns / 1e9);
    printf("to_thread_cpu_us_per_op %.3f us\n", (double)cpu_ns / 1e3 / (double)n);
}

/* One measured run of threadsafe mode. */
struct thr_run {
    double rate;      /* callbacks per second */
    double cpu_ns;    /* process CPU per callback */
    long failures;    /* calls that returned an error */
    long order_errors; /* callbacks out of order */
};

/* Print the threadsafe lines: the run of the median rate of runs[0..k). */
static inline void thr_report_threadsafe(struct thr_run *runs, int k, long n)
{
    double rates[THR_RUNS];
    long failures = 0, order = 0;
    for (int i = 0; i < k; i++) {
        rates[i] = runs[i].rate;
        failures += runs[i].failures;
        order += runs[i].order_errors;
    }
    qsort(rates, (size_t)k, sizeof rates[0], thr_cmp_double);
    double med = rates[k / 2];
    const struct thr_run *m = &runs[0];
    for (int i = 0; i < k; i++)
        if (runs[i].rate == med)
            m = &runs[i];
    printf("threadsafe_n %ld callbacks\n", n);
    printf("threadsafe_cb_per_s %.0f cb/s\n", m->rate);
    printf("threadsafe_cpu_ns_per_cb %.1f ns\n", m->cpu_ns);
    printf("threadsafe_failures %ld calls\n", failures);
    printf("threadsafe_order_errors %ld callbacks\n", order);
}

#endif
