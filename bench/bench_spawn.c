/* spawn_tasks_per_s: create tasks that each yield once, run them to
 * completion and join them, in batches (as a server spawns handlers):
 * the steady state reuses pooled stacks and makes no system call. */
#include <asyncio.h>

#include "bench.h"

#define TOTAL 2000000
#define BATCH 1000
#define ROUNDS 5

static int child(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(0);
}

static int spawn_main(void *arg, void **result)
{
    (void)result;
    double *rate = arg;
    static asyncio_task_t *tasks[BATCH];
    double t0 = bench_now();
    for (int done = 0; done < TOTAL; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            if (asyncio_create_task(&tasks[i], child, NULL, NULL) < 0)
                return -1;
        int rc = asyncio_gather(BATCH, tasks, NULL, NULL, 0);
        for (int i = 0; i < BATCH; i++)
            asyncio_task_release(tasks[i]);
        if (rc < 0)
            return rc;
    }
    *rate = TOTAL / (bench_now() - t0);
    return 0;
}

int main(void)
{
    double rates[ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        if (asyncio_run(spawn_main, &rates[r], NULL) < 0)
            return 1;
    printf("spawn_tasks_per_s %.0f tasks/s\n", bench_median(rates, ROUNDS));
    return 0;
}
