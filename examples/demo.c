/*
 * demo.c: libasyncio in one screen, in about 2 seconds: named tasks taking
 * turns with asyncio_sleep(0), asyncio_gather() with results,
 * asyncio_wait_for() timing out a slow task, and a cancellation.
 * Every line shows the time since start and the task that printed it.
 */
#include <asyncio.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* On error, give up: whatever is left is freed when asyncio_run() returns. */
#define TRY(call) do { int rc_ = (call); if (rc_ < 0) return rc_; } while (0)

static double t0; /* loop time at start */

/* printf() with the elapsed time and the current task's name in front
 * (asyncio_run() names its task "main"). */
static void say(const char *fmt, ...)
{
    va_list ap;
    printf("[%.2fs] %-8s ", asyncio_loop_time() - t0,
           asyncio_task_name(asyncio_current_task()));
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static const char *errname(int rc)
{
    return rc == -ETIMEDOUT ? "-ETIMEDOUT" : rc == -ECANCELED ? "-ECANCELED"
         : rc >= 0 ? "ok" : strerror(-rc);
}

/* asyncio_sleep(0) only yields: two of these take turns. */
static int player(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int round = 1; round <= 3; round++) {
        say("round %d", round);
        TRY(asyncio_sleep(0));
    }
    return 0;
}

/* Pretend to download something; the task's result is the data. */
struct job { const char *name; double seconds; const char *data; };

static int fetch(void *arg, void **result)
{
    const struct job *job = arg;
    TRY(asyncio_sleep(job->seconds));
    say("got %s after %.2f s", job->data, job->seconds);
    *result = (void *)job->data;
    return 0;
}

/* Tick every *arg seconds until cancelled: asyncio_sleep() then returns
 * -ECANCELED (asyncio's CancelledError), which we clean up and pass on. */
static int ticker(void *arg, void **result)
{
    double period = *(const double *)arg;
    (void)result;
    for (int n = 1;; n++) {
        int rc = asyncio_sleep(period);
        if (rc == -ECANCELED)
            say("cancelled, cleaning up");
        if (rc < 0)
            return rc;
        say("tick %d", n);
    }
}

static int async_main(void *arg, void **result)
{
    static const struct job jobs[3] = {
        { "fetch-1", 1.00, "apple" },
        { "fetch-2", 0.50, "banana" },
        { "fetch-3", 0.25, "cherry" },
    };
    static const double slow = 10.0, fast = 0.2;
    asyncio_task_t *t[3];
    void *res[3];
    (void)arg, (void)result;

    t0 = asyncio_loop_time();
    say("libasyncio %d.%d.%d, %s backend", ASYNCIO_VERSION_MAJOR,
        ASYNCIO_VERSION_MINOR, ASYNCIO_VERSION_PATCH, asyncio_loop_backend());

    /* 1. Two tasks interleave by yielding to each other. */
    TRY(asyncio_create_task(&t[0], player, NULL, "ping"));
    TRY(asyncio_create_task(&t[1], player, NULL, "pong"));
    TRY(asyncio_gather(2, t, NULL, NULL, 0));
    asyncio_task_release(t[0]), asyncio_task_release(t[1]);

    /* 2. Three downloads at once; results come back in argument order. */
    for (int i = 0; i < 3; i++)
        TRY(asyncio_create_task(&t[i], fetch, (void *)&jobs[i], jobs[i].name));
    TRY(asyncio_gather(3, t, res, NULL, 0));
    say("gather -> [%s, %s, %s]", (char *)res[0], (char *)res[1], (char *)res[2]);
    for (int i = 0; i < 3; i++)
        asyncio_task_release(t[i]);

    /* 3. A time limit: on timeout, wait_for() cancels the task, waits for
     *    it to finish, and returns -ETIMEDOUT. */
    TRY(asyncio_create_task(&t[0], ticker, (void *)&slow, "slow"));
    say("wait_for(slow, 0.5) -> %s", errname(asyncio_wait_for(t[0], 0.5, NULL)));
    asyncio_task_release(t[0]);

    /* 4. Cancel a task by hand, then await it to see how it ended. */
    TRY(asyncio_create_task(&t[0], ticker, (void *)&fast, "ticker"));
    TRY(asyncio_sleep(0.5));
    say("cancel(ticker) -> %d", asyncio_task_cancel(t[0]));
    say("await(ticker) -> %s", errname(asyncio_await(t[0], NULL)));
    asyncio_task_release(t[0]);

    say("done, %zu task left (this one)", asyncio_task_count());
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "demo: %s\n", strerror(-rc));
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
