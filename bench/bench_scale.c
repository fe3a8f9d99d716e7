/* bench_scale [N]: N tasks (default 1,000,000) alive at once, each sleeping
 * until its own deadline (spread evenly over 2 s, from 1 s after all exist).
 *   tasks               how many were alive at once
 *   create_s            how long creating them took
 *   rss_per_task_bytes  resident memory per sleeping task, stack included
 *   max_wake_late_ms    the latest wake-up past its deadline */
#include <asyncio.h>
#include <errno.h>

#include "bench.h"

struct sleeper {
    double deadline;
    double late;
};

/* Deadlines are set once every task exists: base is when the first is due. */
static double base;

static int sleeper_fn(void *arg, void **result)
{
    (void)result;
    struct sleeper *s = arg;
    s->deadline += base;
    int rc = asyncio_sleep(s->deadline - asyncio_loop_time());
    s->late = asyncio_loop_time() - s->deadline;
    return rc;
}

struct run {
    long n;
    long created;
    double rss_per_task;
    double max_late;
    double create_s;
};

static int scale_main(void *arg, void **result)
{
    (void)result;
    struct run *run = arg;
    struct sleeper *s = calloc((size_t)run->n, sizeof *s);
    if (!s)
        return -ENOMEM;
    long rss0 = bench_rss();
    double t0 = asyncio_loop_time();
    for (long i = 0; i < run->n; i++) {
        /* Spread over 2 s after base: waking one costs about half a
         * microsecond, so a million due within 100 ms could not all be on time. */
        s[i].deadline = 2.0 * (double)i / (double)run->n;
        int rc = asyncio_create_task(NULL, sleeper_fn, &s[i], NULL);
        if (rc < 0) {
            fprintf(stderr, "bench_scale: task %ld: %s\n", i, strerror(-rc));
            break;
        }
        run->created++;
    }
    run->create_s = asyncio_loop_time() - t0;
    /* Starting them (a switch and a timer each) must fit before base. */
    base = asyncio_loop_time() + 1.0 + (double)run->created * 1e-6;
    asyncio_sleep(0); /* every task starts and goes to sleep */
    long rss1 = bench_rss();
    run->rss_per_task = run->created ? (double)(rss1 - rss0) / (double)run->created : 0;
    if (asyncio_loop_time() > base)
        fprintf(stderr, "bench_scale: starting took longer than planned\n");
    while (asyncio_task_count() > 1)
        asyncio_sleep(0.01);
    for (long i = 0; i < run->created; i++)
        if (s[i].late > run->max_late)
            run->max_late = s[i].late;
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    struct run run = {argc > 1 ? atol(argv[1]) : 1000000, 0, 0, 0, 0};
    if (run.n <= 0)
        return 2;
    int rc = asyncio_run(scale_main, &run, NULL);
    if (rc < 0)
        return 1;
    printf("tasks %ld tasks\n", run.created);
    printf("create_s %.2f s\n", run.create_s);
    printf("rss_per_task_bytes %.0f bytes\n", run.rss_per_task);
    printf("max_wake_late_ms %.2f ms\n", run.max_late * 1e3);
    return run.created == run.n ? 0 : 1;
}
