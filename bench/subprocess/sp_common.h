/* bench/subprocess/sp_common.h: what the C programs of bench/subprocess.sh
 * share (bench/bench_subprocess.c, bench/subprocess/spawn_bare.c,
 * bench/subprocess/spawn_uv.c): the command line of the spawn workload,
 * the clock, CPU time, and its output lines, which
 * bench/py/bench_subprocess.py prints alike, so that bench/subprocess.sh
 * parses them the same way:
 *
 *   spawn N CONC:  spawn_n, spawn_conc, spawn_s (the wall time of the N),
 *                  spawn_per_s, spawn_cpu_us (user + system CPU per process,
 *                  the spawner's and its children's: the cost of a spawn
 *                  falls on both sides of a fork), spawn_parent_cpu_us (the
 *                  spawner's own), spawn_failures
 *
 * each as `name value unit`. A run starts SP_PROGRAM N times, CONC at a
 * time (a new one as soon as one has been reaped), with the spawner's own
 * stdin, stdout and stderr and environment, after SP_WARMUP(N) spawns not
 * measured. */
#ifndef SP_COMMON_H
#define SP_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define SP_PROGRAM "/bin/true"
#define SP_WARMUP(n) ((n) / 10 < 200 ? (n) / 10 : 200)
#define SP_MAX_CONC 1024

struct sp_args {
    long n;   /* processes */
    int conc; /* at a time */
};

static inline void sp_usage(const char *prog, const char *more)
{
    fprintf(stderr, "usage: %s spawn N CONC   (CONC: 1-%d)%s\n", prog, SP_MAX_CONC, more);
    exit(2);
}

/* argv: PROG spawn N CONC; more: other usage lines, for the message. */
static inline void sp_parse_spawn(int argc, char **argv, struct sp_args *a, const char *more)
{
    char *end;
    if (argc != 4 || strcmp(argv[1], "spawn") != 0)
        sp_usage(argv[0], more);
    a->n = strtol(argv[2], &end, 10);
    if (*end || a->n <= 0 || a->n > 100000000L)
        sp_usage(argv[0], more);
    long c = strtol(argv[3], &end, 10);
    if (*end || c <= 0 || c > SP_MAX_CONC)
        sp_usage(argv[0], more);
    a->conc = (int)c;
}

static inline uint64_t sp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User + system CPU time (RUSAGE_SELF: every thread of the process;
 * RUSAGE_CHILDREN: the children reaped so far), in ns. */
static inline uint64_t sp_cpu_ns(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* A measurement: the clock and both CPU times at its start. */
struct sp_mark {
    uint64_t wall, self, children;
};

static inline struct sp_mark sp_mark(void)
{
    struct sp_mark m = {sp_now_ns(), sp_cpu_ns(RUSAGE_SELF), sp_cpu_ns(RUSAGE_CHILDREN)};
    return m;
}

/* Print the spawn lines for the N processes of a run that started at m0
 * (every child reaped by now). */
static inline void sp_report_spawn(const struct sp_args *a, struct sp_mark m0, long failures)
{
    struct sp_mark m1 = sp_mark();
    double n = (double)a->n, wall = (double)(m1.wall - m0.wall) / 1e9;
    double self = (double)(m1.self - m0.self), children = (double)(m1.children - m0.children);
    printf("spawn_n %ld procs\n", a->n);
    printf("spawn_conc %d procs\n", a->conc);
    printf("spawn_s %.4f s\n", wall);
    printf("spawn_per_s %.1f procs/s\n", n / wall);
    printf("spawn_cpu_us %.2f us\n", (self + children) / 1e3 / n);
    printf("spawn_parent_cpu_us %.2f us\n", self / 1e3 / n);
    printf("spawn_failures %ld procs\n", failures);
}

#endif
