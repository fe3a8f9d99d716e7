/*
 * scheduling.c: awaiting one after the other vs. running as tasks.
 *
 * This is the example from the "Coroutines and Tasks" page of Python's
 * asyncio documentation:
 *
 *     async def say_after(delay, what):
 *         await asyncio.sleep(delay)
 *         print(what)
 *
 *     async def main():                           # part 1: about 3 s
 *         print(f"started at {time.strftime('%X')}")
 *         await say_after(1, "Hello!")
 *         await say_after(2, "Hi!")
 *         print(f"finished at {time.strftime('%X')}")
 *
 *     async def main():                           # part 2: about 2 s
 *         task1 = asyncio.create_task(say_after(1, "Hello!"))
 *         task2 = asyncio.create_task(say_after(2, "Hi!"))
 *         print(f"started at {time.strftime('%X')}")
 *         await task1
 *         await task2
 *         print(f"finished at {time.strftime('%X')}")
 *
 * With stackful coroutines, `await say_after(...)` is just a function call:
 * say_after() suspends the task that called it. To run it concurrently,
 * make it a task of its own with asyncio_create_task().
 *
 * Every line is stamped with the wall-clock time, HH:MM:SS.microseconds.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime(), localtime_r() */

#include <asyncio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Print "HH:MM:SS.uuuuuu  message". */
static void log_line(const char *message)
{
    struct timespec now = { 0, 0 };
    struct tm tm;
    char hms[16] = "??:??:??";

    if (clock_gettime(CLOCK_REALTIME, &now) == 0 &&
        localtime_r(&now.tv_sec, &tm) != NULL)
        strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    printf("%s.%06ld  %s\n", hms, (long)(now.tv_nsec / 1000), message);
}

/* What say_after() needs: how long to wait, and what to say then. */
struct saying {
    double delay;
    const char *what;
};

/* async def say_after(delay, what). As a plain call it runs in the caller's
 * task; as a task's function it runs on its own. */
static int say_after(void *arg, void **result)
{
    const struct saying *s = arg;
    (void)result;

    int rc = asyncio_sleep(s->delay);
    if (rc < 0)
        return rc;
    log_line(s->what);
    return 0;
}

static const struct saying hello = { 1.0, "Hello!" };
static const struct saying hi = { 2.0, "Hi!" };

/* Part 1: await one coroutine, then the other: 1 s + 2 s. */
static int one_after_the_other(void)
{
    log_line("started");

    log_line("\"Hello!\" scheduled for execution");
    int rc = say_after((void *)&hello, NULL); /* await say_after(1, ...) */
    if (rc < 0)
        return rc;

    log_line("\"Hi!\" scheduled for execution");
    rc = say_after((void *)&hi, NULL); /* await say_after(2, ...) */
    if (rc < 0)
        return rc;

    log_line("Done.");
    return 0;
}

/* Part 2: the same two as tasks, which sleep at the same time: 2 s. */
static int concurrently(void)
{
    asyncio_task_t *task1 = NULL, *task2 = NULL;

    log_line("started");

    int rc = asyncio_create_task(&task1, say_after, (void *)&hello, "hello");
    if (rc < 0)
        return rc;
    log_line("\"Hello!\" scheduled for execution");

    rc = asyncio_create_task(&task2, say_after, (void *)&hi, "hi");
    if (rc < 0)
        goto out;
    log_line("\"Hi!\" scheduled for execution");

    /* await task1; await task2. Both already run: while we wait for task1,
     * task2 sleeps too. */
    rc = asyncio_await(task1, NULL);
    if (rc < 0)
        goto out;
    rc = asyncio_await(task2, NULL);
    if (rc < 0)
        goto out;

    log_line("Done.");
out:
    asyncio_task_release(task1);
    asyncio_task_release(task2);
    return rc < 0 ? rc : 0;
}

static int async_main(void *arg, void **result)
{
    (void)arg;
    (void)result;

    printf("Part 1: awaiting coroutines one after the other (about 3 s)\n");
    int rc = one_after_the_other();
    if (rc < 0)
        return rc;

    printf("Part 2: running them concurrently as tasks (about 2 s)\n");
    return concurrently();
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "scheduling: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
