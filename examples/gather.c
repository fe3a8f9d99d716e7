/*
 * gather.c: collecting the results of concurrent tasks.
 *
 * The Python it mirrors:
 *
 *     async def task1():
 *         print("Task 1 started")
 *         await asyncio.sleep(2)
 *         print("Task 1 completed")
 *         return "Result 1"
 *
 *     async def task2():
 *         print("Task 2 started")
 *         await asyncio.sleep(1)
 *         print("Task 2 completed")
 *         return "Result 2"
 *
 *     async def main():
 *         results = await asyncio.gather(task1(), task2())
 *         print(results)
 *
 *     asyncio.run(main())
 *
 * Task 2 finishes first, yet gather() hands the results back in argument
 * order. Both tasks sleep at the same time: about 2 seconds in all.
 *
 * A task returns a status (0, or a negative errno) and leaves its result,
 * a void *, in *result.
 */
#include <asyncio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int task1(void *arg, void **result)
{
    (void)arg;
    printf("Task 1 started\n");
    int rc = asyncio_sleep(2.0);
    if (rc < 0)
        return rc;
    printf("Task 1 completed\n");
    *result = "Result 1"; /* a string literal lives for ever */
    return 0;
}

static int task2(void *arg, void **result)
{
    (void)arg;
    printf("Task 2 started\n");
    int rc = asyncio_sleep(1.0);
    if (rc < 0)
        return rc;
    printf("Task 2 completed\n");
    *result = "Result 2";
    return 0;
}

static int async_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *tasks[2] = { NULL, NULL };
    void *results[2] = { NULL, NULL };
    double start = asyncio_loop_time();

    int rc = asyncio_create_task(&tasks[0], task1, NULL, "task1");
    if (rc >= 0)
        rc = asyncio_create_task(&tasks[1], task2, NULL, "task2");

    /* results = await asyncio.gather(task1(), task2()) */
    if (rc >= 0)
        rc = asyncio_gather(2, tasks, results, NULL, 0);

    if (rc >= 0) {
        printf("Results: ['%s', '%s']\n", (const char *)results[0],
               (const char *)results[1]);
        printf("Gathered in %.1f seconds\n", asyncio_loop_time() - start);
    }

    asyncio_task_release(tasks[0]);
    asyncio_task_release(tasks[1]);
    return rc < 0 ? rc : 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "gather: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
