/*
 * hello.c: the smallest libasyncio program.
 *
 * The Python it mirrors:
 *
 *     async def main():
 *         print("Hello")
 *         await asyncio.sleep(1)
 *         print("World")
 *
 *     asyncio.run(main())
 *
 * A coroutine is a plain C function `int fn(void *arg, void **result)`.
 * asyncio_run() creates the event loop, runs the function as the loop's first
 * task and returns once it has finished. Inside a task, a call such as
 * asyncio_sleep() suspends only that task (its `await`); the loop is free to
 * run other tasks meanwhile.
 */
#include <asyncio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The main coroutine. We need neither its argument nor a result. */
static int async_main(void *arg, void **result)
{
    (void)arg;
    (void)result;

    printf("Hello\n");

    /* await asyncio.sleep(1): returns 0, or a negative errno such as
     * -ECANCELED if this task was cancelled while it slept. */
    int rc = asyncio_sleep(1.0);
    if (rc < 0)
        return rc; /* a task fails by returning a negative errno */

    printf("World\n");
    return 0;
}

int main(void)
{
    /* Line-buffer stdout, so lines come out in order even through a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "hello: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
