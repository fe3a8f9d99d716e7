/*
 * rate_limit: a semaphore lets at most 3 of 10 "requests" run at once.
 *
 *     sem = asyncio.Semaphore(3)
 *     async def request(i):
 *         async with sem:
 *             await asyncio.sleep(...)
 *     await asyncio.gather(*(request(i) for i in range(10)))
 */
#include <asyncio.h>

#include <stdint.h>
#include <stdio.h>

#define REQUESTS 10
#define LIMIT 3

static asyncio_semaphore_t sem;
static int in_flight, max_in_flight;

static int request(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    int rc = asyncio_semaphore_acquire(&sem); /* waits while 3 are running */
    if (rc < 0)
        return rc;
    in_flight++;
    if (in_flight > max_in_flight)
        max_in_flight = in_flight;
    printf("request %d: started (in flight: %d)\n", id, in_flight);
    rc = asyncio_sleep(0.05 + 0.05 * (id % 3)); /* the "request" */
    in_flight--;
    printf("request %d: done\n", id);
    asyncio_semaphore_release(&sem);
    return rc;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_semaphore_init(&sem, LIMIT);
    asyncio_task_t *tasks[REQUESTS];
    for (int i = 0; i < REQUESTS; i++)
        asyncio_create_task(&tasks[i], request, (void *)(intptr_t)(i + 1), NULL);
    int rc = asyncio_gather(REQUESTS, tasks, NULL, NULL, 0);
    for (int i = 0; i < REQUESTS; i++)
        asyncio_task_release(tasks[i]);
    printf("all %d requests done, at most %d in flight (limit %d)\n", REQUESTS, max_in_flight,
           LIMIT);
    asyncio_semaphore_destroy(&sem);
    return rc;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return asyncio_run(main_task, NULL, NULL) < 0;
}
