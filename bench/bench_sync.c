/* The structured-concurrency surface under load, beside bench/py/bench_sync.py:
 *   lock_handoff_ns    two tasks taking turns on one lock (each holds it
 *                      across a yield, so every acquire is a FIFO handoff),
 *                      per handoff
 *   queue_items_per_s  one producer and one consumer through a bounded
 *                      queue (maxsize 64)
 *   taskgroup_100k_s   a task group of 100,000 children that each yield
 *                      once: enter, spawn, exit; the median of five groups
 *                      in one loop, so that stacks come from the pool as in
 *                      a server that keeps spawning
 *   taskgroup_100k_cold_s  the first of those groups, every stack new
 * Each is the median of several rounds, each on a fresh loop. */
#include <asyncio.h>

#include "bench.h"

#define ROUNDS 5

static asyncio_lock_t lock;

static int lock_user(void *arg, void **result)
{
    (void)result;
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        if (asyncio_lock_acquire(&lock) < 0)
            return -1;
        asyncio_sleep(0);
        asyncio_lock_release(&lock);
    }
    return 0;
}

static int lock_main(void *arg, void **result)
{
    double *ns = arg;
    (void)result;
    long n = 500000;
    asyncio_lock_init(&lock);
    asyncio_task_t *t[2];
    asyncio_create_task(&t[0], lock_user, &n, NULL);
    asyncio_create_task(&t[1], lock_user, &n, NULL);
    double t0 = bench_now();
    int rc = asyncio_gather(2, t, NULL, NULL, 0);
    *ns = (bench_now() - t0) * 1e9 / (2.0 * (double)n);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    asyncio_lock_destroy(&lock);
    return rc;
}

#define QUEUE_ITEMS 2000000L
static asyncio_queue_t queue;

static int producer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (long i = 0; i < QUEUE_ITEMS; i++)
        if (asyncio_queue_put(&queue, (void *)(i + 1)) < 0)
            return -1;
    return 0;
}

static int consumer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    long sum = 0;
    for (long i = 0; i < QUEUE_ITEMS; i++) {
        void *item;
        if (asyncio_queue_get(&queue, &item) < 0)
            return -1;
        sum += (long)item;
    }
    return sum == QUEUE_ITEMS * (QUEUE_ITEMS + 1) / 2 ? 0 : -1;
}

static int queue_main(void *arg, void **result)
{
    double *rate = arg;
    (void)result;
    asyncio_queue_init(&queue, 64);
    asyncio_task_t *t[2];
    asyncio_create_task(&t[0], producer, NULL, NULL);
    asyncio_create_task(&t[1], consumer, NULL, NULL);
    double t0 = bench_now();
    int rc = asyncio_gather(2, t, NULL, NULL, 0);
    *rate = QUEUE_ITEMS / (bench_now() - t0);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    asyncio_queue_destroy(&queue);
    return rc;
}

static int group_child(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(0);
}

struct group_run {
    double warm_s, cold_s;
};

static int group_main(void *arg, void **result)
{
    struct group_run *run = arg;
    (void)result;
    double s[5];
    for (int k = 0; k < 5; k++) {
        double t0 = bench_now();
        asyncio_taskgroup_t g;
        asyncio_taskgroup_enter(&g);
        for (int i = 0; i < 100000; i++)
            if (asyncio_taskgroup_create_task(&g, NULL, group_child, NULL, NULL) < 0)
                return -1;
        int rc = asyncio_taskgroup_exit(&g, 0);
        s[k] = bench_now() - t0;
        if (rc < 0)
            return rc;
    }
    run->cold_s = s[0];
    run->warm_s = bench_median(s, 5);
    return 0;
}

int main(void)
{
    double lock_ns[ROUNDS], q[ROUNDS], g[ROUNDS], cold[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        struct group_run run;
        if (asyncio_run(lock_main, &lock_ns[r], NULL) < 0 ||
            asyncio_run(queue_main, &q[r], NULL) < 0 || asyncio_run(group_main, &run, NULL) < 0)
            return 1;
        g[r] = run.warm_s;
        cold[r] = run.cold_s;
    }
    printf("lock_handoff_ns %.1f ns\n", bench_median(lock_ns, ROUNDS));
    printf("queue_items_per_s %.0f items/s\n", bench_median(q, ROUNDS));
    printf("taskgroup_100k_s %.4f s\n", bench_median(g, ROUNDS));
    printf("taskgroup_100k_cold_s %.4f s\n", bench_median(cold, ROUNDS));
    return 0;
}
