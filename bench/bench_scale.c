/* bench_scale [--sweep S] [N]: N tasks (default 1,000,000) alive at once,
 * each sleeping until its own deadline (spread evenly over 2 s, from 1 s
 * after all exist).
 *   tasks               how many were alive at once
 *   create_s            how long creating them took
 *   start_s             how long starting them took (each runs until it
 *                       sleeps)
 *   rss_per_task_bytes  resident memory per sleeping task, stack included
 *   max_wake_late_ms    the latest wake-up past its deadline
 *
 * With --sweep S, the loop runs with the stack sweep at S seconds
 * (asyncio_run_options_t::stack_sweep), and the first deadline comes
 * 2 S + SWEEP_ALLOWANCE s + create_s later, so that the sweep has visited every task
 * twice and swept it first. The metrics are then named sweep_*:
 *   swept_tasks               tasks swept when memory was measured
 *   sweep_mem_per_task_bytes  resident memory plus page tables (VmRSS +
 *                             VmPTE) per task then, over what there was
 *                             before the first was made
 *   sweep_max_wake_late_ms    the latest wake-up past its deadline, stacks
 *                             put back included
 * (and sweep_tasks, sweep_create_s: tasks and create_s of this run)
 * bench/py/bench_scale.py --sweep S keeps the same timeline, and measures
 * at the same moment. */
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

/* Seconds added to the wait before the first deadline with --sweep, on
 * top of two periods and of the time creating the tasks took: the pass
 * that sweeps them does about as much per task (a heap block, a copy, the
 * pages given back), 1.5 s a million on a fast day, 10 s or more where a
 * page fault costs 11 us (a VM with shadow page tables). */
#define SWEEP_ALLOWANCE 3.0

struct run {
    long n;
    long created;
    double rss_per_task;
    double max_late;
    double create_s;
    double start_s;   /* starting them: a switch and a timer each */
    double sweep;     /* --sweep S, or 0 */
    size_t swept;     /* tasks swept when memory was measured */
    double mem_per_task;
};

static int scale_main(void *arg, void **result)
{
    (void)result;
    struct run *run = arg;
    struct sleeper *s = calloc((size_t)run->n, sizeof *s);
    if (!s)
        return -ENOMEM;
    long rss0 = bench_rss(), mem0 = bench_mem();
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
    /* Starting them (a switch and a timer each) must fit before base: the
     * allowance is twice the creation time (1 us a task at least), the rule
     * of bench/py/bench_scale.py, so that both measure their timers, not
     * their start-up (start_s reports that). Where touching memory again
     * is dear, starting takes longer than 1 us a task: a VM whose host maps
     * guest pages by shadow page tables took 7-13 us a task at a million
     * (stack pages 256 KiB apart), 2.2 us at 300,000. */
    double per_task = run->created ? 2 * run->create_s / (double)run->created : 0;
    base = asyncio_loop_time() + 1.0 + (double)run->created * (per_task > 1e-6 ? per_task : 1e-6);
    if (run->sweep > 0)
        base += 2 * run->sweep + SWEEP_ALLOWANCE + run->create_s;
    double t1 = asyncio_loop_time();
    asyncio_sleep(0); /* every task starts and goes to sleep */
    run->start_s = asyncio_loop_time() - t1;
    long rss1 = bench_rss();
    run->rss_per_task = run->created ? (double)(rss1 - rss0) / (double)run->created : 0;
    if (asyncio_loop_time() > base)
        fprintf(stderr, "bench_scale: starting took longer than planned\n");
    if (run->sweep > 0) {
        /* Until every sleeper is swept (the main task polls, so is not),
         * or 0.2 s before the first deadline. */
        asyncio_loop_t *loop = asyncio_get_running_loop();
        while (asyncio_loop_time() < base - 0.2) {
            asyncio_loop_stack_sweep_stats(loop, &run->swept, NULL);
            if (run->swept >= (size_t)run->created)
                break;
            asyncio_sleep(0.01);
        }
        long mem1 = bench_mem();
        run->mem_per_task = run->created ? (double)(mem1 - mem0) / (double)run->created : 0;
        if (run->swept < (size_t)run->created)
            fprintf(stderr, "bench_scale: %zu of %ld tasks swept before the deadlines\n",
                    run->swept, run->created);
    }
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
    struct run run = {.n = 1000000};
    int i = 1;
    if (i < argc && strcmp(argv[i], "--sweep") == 0) {
        if (i + 1 >= argc || (run.sweep = atof(argv[i + 1])) <= 0)
            return 2;
        i += 2;
    }
    if (i < argc)
        run.n = atol(argv[i++]);
    if (run.n <= 0 || i < argc)
        return 2;
    asyncio_run_options_t opts = {.stack_sweep = run.sweep > 0 ? run.sweep : -1};
    int rc = asyncio_run_ex(scale_main, &run, NULL, &opts);
    if (rc < 0) {
        fprintf(stderr, "bench_scale: %s\n", strerror(-rc));
        return 1;
    }
    const char *p = run.sweep > 0 ? "sweep_" : "";
    printf("%stasks %ld tasks\n", p, run.created);
    printf("%screate_s %.2f s\n", p, run.create_s);
    printf("%sstart_s %.2f s\n", p, run.start_s);
    if (run.sweep > 0) {
        printf("swept_tasks %zu tasks\n", run.swept);
        printf("sweep_mem_per_task_bytes %.0f bytes\n", run.mem_per_task);
    } else {
        printf("rss_per_task_bytes %.0f bytes\n", run.rss_per_task);
    }
    printf("%smax_wake_late_ms %.2f ms\n", p, run.max_late * 1e3);
    return run.created == run.n ? 0 : 1;
}
