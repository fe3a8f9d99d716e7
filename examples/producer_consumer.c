/*
 * producer_consumer: a bounded queue between three producers and four
 * consumers; join() waits until every item has been processed.
 *
 *     q = asyncio.Queue(maxsize=5)
 *     producers = [asyncio.create_task(produce(q, i)) for i in range(3)]
 *     consumers = [asyncio.create_task(consume(q, i)) for i in range(4)]
 *     await asyncio.gather(*producers)
 *     await q.join()
 *     for c in consumers: c.cancel()
 */
#include <asyncio.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#define PRODUCERS 3
#define CONSUMERS 4
#define ITEMS 10 /* per producer */

static asyncio_queue_t queue;
static long consumed_count, consumed_sum;

static int produce(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    for (int i = 1; i <= ITEMS; i++) {
        intptr_t item = id * 100 + i;
        int rc = asyncio_queue_put(&queue, (void *)item); /* waits while full */
        if (rc < 0)
            return rc;
        printf("producer %d: put %ld (queue size %zu)\n", id, (long)item,
               asyncio_queue_size(&queue));
        asyncio_sleep(0.01 * (id + 1));
    }
    return 0;
}

static int consume(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    for (;;) {
        void *item;
        int rc = asyncio_queue_get(&queue, &item); /* waits while empty */
        if (rc < 0)
            return rc; /* -ECANCELED at the end */
        printf("consumer %d: got %ld\n", id, (long)(intptr_t)item);
        consumed_count++;
        consumed_sum += (long)(intptr_t)item;
        asyncio_sleep(0.015); /* "process" it */
        asyncio_queue_task_done(&queue);
    }
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_init(&queue, 5);
    asyncio_task_t *producers[PRODUCERS], *consumers[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        asyncio_create_task(&consumers[i], consume, (void *)(intptr_t)i, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        asyncio_create_task(&producers[i], produce, (void *)(intptr_t)(i + 1), NULL);

    int rc = asyncio_gather(PRODUCERS, producers, NULL, NULL, 0);
    if (rc == 0)
        rc = asyncio_queue_join(&queue); /* every item processed */
    for (int i = 0; i < CONSUMERS; i++)
        asyncio_task_cancel(consumers[i]);
    asyncio_gather(CONSUMERS, consumers, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS);

    long expected_sum = 0;
    for (int p = 1; p <= PRODUCERS; p++)
        for (int i = 1; i <= ITEMS; i++)
            expected_sum += p * 100 + i;
    printf("produced %d items, consumed %ld items\n", PRODUCERS * ITEMS, consumed_count);
    printf("sum of items: %ld (expected %ld)\n", consumed_sum, expected_sum);
    for (int i = 0; i < PRODUCERS; i++)
        asyncio_task_release(producers[i]);
    for (int i = 0; i < CONSUMERS; i++)
        asyncio_task_release(consumers[i]);
    asyncio_queue_destroy(&queue);
    return rc < 0 ? rc : (consumed_sum == expected_sum ? 0 : -EIO);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return asyncio_run(main_task, NULL, NULL) < 0;
}
