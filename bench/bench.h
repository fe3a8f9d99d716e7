/* Helpers shared by the benchmarks. */
#ifndef ASYNCIO_BENCH_H
#define ASYNCIO_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size of this process in bytes, from /proc (0 if unknown). */
static inline long bench_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * 4096;
}

/* Resident memory plus page tables in bytes (VmRSS + VmPTE from
 * /proc/self/status; 0 if unknown): what a task costs the machine, the
 * page tables of its stack included. */
static inline long bench_mem(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    long kib = 0, v;
    char line[256];
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1 || sscanf(line, "VmPTE: %ld", &v) == 1)
            kib += v;
    fclose(f);
    return kib * 1024;
}

/* Median of n doubles (sorts them). */
static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
