/*
 * cancel.c: cancelling a task.
 *
 * The Python it mirrors:
 *
 *     async def worker():
 *         try:
 *             while True:
 *                 await asyncio.sleep(1)
 *                 print("Message from worker")
 *         except asyncio.CancelledError:
 *             print("Worker: cancelled, cleaning up")
 *             raise
 *
 *     async def main():
 *         print("Starting worker...")
 *         task = asyncio.create_task(worker())
 *         await asyncio.sleep(3.5)
 *         print("Cancelling the worker...")
 *         task.cancel()
 *         try:
 *             await task
 *         except asyncio.CancelledError:
 *             print("The task has been canceled")
 *
 *     asyncio.run(main())
 *
 * C has no exceptions: asyncio's CancelledError is the error code
 * -ECANCELED. asyncio_task_cancel() makes the worker's current (or next)
 * waiting call return -ECANCELED; the worker cleans up and returns
 * -ECANCELED to finish as cancelled, which is what "raise" does above.
 *
 * The worker prints at 1, 2 and 3 seconds; main cancels it at 3.5 s.
 */
#include <asyncio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int worker(void *arg, void **result)
{
    (void)arg;
    (void)result;

    for (;;) {
        int rc = asyncio_sleep(1.0);
        if (rc == -ECANCELED) {
            /* except asyncio.CancelledError: clean up, then re-raise. */
            printf("Worker: cancelled, cleaning up\n");
            return -ECANCELED;
        }
        if (rc < 0)
            return rc; /* any other error */
        printf("Message from worker\n");
    }
}

static int async_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *task = NULL;

    printf("Starting worker...\n");
    int rc = asyncio_create_task(&task, worker, NULL, "worker");
    if (rc < 0)
        return rc;

    rc = asyncio_sleep(3.5);
    if (rc < 0)
        goto out;

    printf("Cancelling the worker...\n");
    asyncio_task_cancel(task); /* only a request: the worker is still alive */

    /* await task: returns how the task ended. It finishes cancelled, so
     * this is -ECANCELED, where Python's `await task` raises CancelledError.
     * asyncio_future_cancelled(task) confirms how the task ended. */
    rc = asyncio_await(task, NULL);
    if (rc == -ECANCELED && asyncio_future_cancelled(task) == 1) {
        printf("The task has been canceled\n");
        rc = 0;
    }

out:
    asyncio_task_release(task);
    return rc;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "cancel: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
