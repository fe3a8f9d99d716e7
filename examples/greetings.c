/*
 * greetings.c: running tasks concurrently with asyncio_gather().
 *
 * The Python it mirrors:
 *
 *     async def greet(name, delay):
 *         await asyncio.sleep(delay)
 *         print(f"Hello, {name} after {delay} seconds!")
 *
 *     async def main():
 *         await asyncio.gather(greet("Alice", 2),
 *                              greet("Bob", 1),
 *                              greet("Charlie", 3))
 *
 *     asyncio.run(main())
 *
 * The three greetings wait at the same time, so Bob is greeted first, then
 * Alice, then Charlie, and the whole run takes about 3 seconds, not 6.
 *
 * A C coroutine takes one void * argument; to pass several values, point it
 * at a struct that lives at least as long as the task.
 */
#include <asyncio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct greeting {
    const char *name;
    int delay; /* seconds */
};

static int greet(void *arg, void **result)
{
    const struct greeting *g = arg;
    (void)result;

    int rc = asyncio_sleep(g->delay);
    if (rc < 0)
        return rc;
    printf("Hello, %s after %d seconds!\n", g->name, g->delay);
    return 0;
}

static int async_main(void *arg, void **result)
{
    (void)arg;
    (void)result;

    /* static: the data must outlive every task that points at it. */
    static const struct greeting greetings[] = {
        { "Alice", 2 },
        { "Bob", 1 },
        { "Charlie", 3 },
    };
    enum { N = sizeof greetings / sizeof greetings[0] };
    asyncio_task_t *tasks[N] = { NULL };
    double start = asyncio_loop_time();
    int rc = 0;

    /* Python's gather() wraps coroutines in tasks for us; in C we create
     * the tasks ourselves, then gather them. */
    for (size_t i = 0; i < N; i++) {
        rc = asyncio_create_task(&tasks[i], greet, (void *)&greetings[i],
                                 greetings[i].name);
        if (rc < 0)
            goto out;
    }

    /* await asyncio.gather(...): waits for all three. We need no results
     * (NULL), and want to hear about the first failure (flags 0). */
    rc = asyncio_gather(N, tasks, NULL, NULL, 0);
    if (rc < 0)
        goto out;

    printf("All greeted in %.1f seconds\n", asyncio_loop_time() - start);

out:
    for (size_t i = 0; i < N; i++)
        asyncio_task_release(tasks[i]); /* NULL is ignored */
    return rc;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "greetings: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
