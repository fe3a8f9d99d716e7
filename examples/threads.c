/*
 * threads: blocking code without blocking the loop, and other threads
 * talking to it.
 *
 *     async def main():
 *         loop = asyncio.get_running_loop()
 *         ticker = asyncio.create_task(tick())        # the loop stays free
 *         counts = await asyncio.gather(*(asyncio.to_thread(count_primes, lo, hi)
 *                                         for lo, hi in ranges))
 *         ticker.cancel()
 *         async with asyncio.timeout(0.1):            # too slow: given up,
 *             await asyncio.to_thread(slow_lookup)    # it still runs to its end
 *         q = asyncio.Queue()
 *         t = threading.Thread(target=feed, args=(loop, q))   # call_soon_threadsafe
 *         ...
 *         fut = asyncio.run_coroutine_threadsafe(answer(), loop)  # from a thread
 *         fut.result(timeout=5)
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- blocking functions, run by the default executor ---------------------- */

struct range {
    long lo, hi;
    long primes;
};

/* Blocking on purpose: trial division, and a pause as a slow library
 * call would make. */
static void *count_primes(void *arg)
{
    struct range *r = arg;
    nanosleep(&(struct timespec){0, 250 * 1000 * 1000}, NULL);
    for (long n = r->lo < 2 ? 2 : r->lo; n < r->hi; n++) {
        long d = 2;
        while (d * d <= n && n % d)
            d++;
        r->primes += d * d > n;
    }
    return r;
}

static void *slow_lookup(void *arg)
{
    nanosleep(&(struct timespec){0, 400 * 1000 * 1000}, NULL);
    return arg; /* "the answer", too late */
}

/* The task gave up on slow_lookup: its result comes here, in the loop. */
static void lookup_released(void *arg, void *result)
{
    (void)arg;
    printf("slow lookup: finished anyway, its result (%s) released\n", (const char *)result);
}

static int count_task(void *arg, void **result)
{
    (void)result;
    return asyncio_to_thread(count_primes, arg, NULL, NULL);
}

static int tick(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        if (asyncio_sleep(0.1) < 0)
            return 0;
        puts("tick: the loop is free while the threads work");
    }
}

/* ---- another thread talking to the loop ----------------------------------- */

struct feed {
    asyncio_loop_t *loop;
    asyncio_queue_t *queue;
    int answer;
};

/* Runs in the loop: callbacks from the thread, in the order it made them. */
static void put_line(void *arg)
{
    asyncio_queue_put_nowait(((struct feed *)arg)->queue, NULL); /* unbounded: cannot be full */
}

static int answer(void *arg, void **result)
{
    *result = arg;
    return asyncio_sleep(0.05); /* a task of the loop, asked by the thread */
}

static void *feeder(void *arg)
{
    struct feed *f = arg;
    for (int i = 0; i < 3; i++)
        asyncio_call_soon_threadsafe(f->loop, put_line, f, NULL);
    asyncio_cfuture_t *cf;
    void *r = NULL;
    if (asyncio_run_coroutine_threadsafe(f->loop, answer, &f->answer, &cf) == 0) {
        if (asyncio_cfuture_result(cf, 5.0, &r) >= 0)
            f->answer = 42 + (r == &f->answer ? 0 : 1);
        asyncio_cfuture_unref(cf);
    }
    asyncio_loop_unref(f->loop);
    return NULL;
}

static void *join_thread(void *arg)
{
    pthread_join(*(pthread_t *)arg, NULL);
    return NULL;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *ticker;
    asyncio_create_task(&ticker, tick, NULL, "ticker");

    struct range ranges[4];
    asyncio_task_t *calls[4];
    puts("counting primes below 200000 in 4 blocking calls at once");
    for (int i = 0; i < 4; i++) {
        ranges[i] = (struct range){i * 50000L, (i + 1) * 50000L, 0};
        asyncio_create_task(&calls[i], count_task, &ranges[i], NULL);
    }
    int rc = asyncio_gather(4, calls, NULL, NULL, 0);
    for (int i = 0; i < 4; i++)
        asyncio_task_release(calls[i]);
    if (rc < 0)
        return rc;
    long total = 0;
    for (int i = 0; i < 4; i++)
        total += ranges[i].primes;
    printf("primes below 200000: %ld\n", total);
    asyncio_task_cancel(ticker);
    asyncio_task_release(ticker);

    asyncio_timeout_t scope;
    asyncio_timeout_enter(&scope, 0.1);
    rc = asyncio_to_thread(slow_lookup, "42", lookup_released, NULL);
    asyncio_timeout_exit(&scope);
    printf("slow lookup: gave up waiting (%s)\n", strerror(-rc));
    asyncio_sleep(0.5); /* it finishes meanwhile */

    asyncio_queue_t q;
    asyncio_queue_init(&q, 0);
    struct feed f = {asyncio_loop_ref(asyncio_get_running_loop()), &q, 0};
    pthread_t th;
    if (pthread_create(&th, NULL, feeder, &f) != 0) {
        asyncio_loop_unref(f.loop);
        return -EAGAIN;
    }
    for (int i = 0; i < 3; i++) {
        void *item;
        asyncio_queue_get(&q, &item);
        printf("from the thread: callback %d ran in the loop\n", i + 1);
    }
    asyncio_to_thread(join_thread, &th, NULL, NULL); /* pthread_join blocks: off the loop */
    printf("the thread asked a task of the loop and got %d\n", f.answer);
    asyncio_queue_destroy(&q);
    return 0;
}

int main(void)
{
    int rc = asyncio_run(main_task, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "threads: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
