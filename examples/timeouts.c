/*
 * timeouts: a timeout scope around a slow operation, and a task group whose
 * one failing child cancels its siblings.
 *
 *     async with asyncio.timeout(0.5):
 *         await slow_operation()          # TimeoutError after 0.5 s
 *
 *     async with asyncio.TaskGroup() as tg:
 *         tg.create_task(worker("A", 1.0))
 *         tg.create_task(worker("B", 0.3, fail=True))
 *         tg.create_task(worker("C", 1.0))   # A and C are cancelled
 */
#include <asyncio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static double t0;

static void say(const char *fmt, const char *a, const char *b)
{
    printf("[%.2fs] ", asyncio_loop_time() - t0);
    printf(fmt, a, b);
    putchar('\n');
}

/* Something slow: two seconds of "work". */
static int slow_operation(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_sleep(2.0);
    if (rc < 0) {
        say("slow operation: stopped (%s)%s", strerror(-rc), "");
        return rc;
    }
    say("slow operation: finished%s%s", "", "");
    return 0;
}

struct job {
    const char *name;
    double seconds;
    int fails;
};

static int worker(void *arg, void **result)
{
    struct job *job = arg;
    (void)result;
    say("worker %s: started%s", job->name, "");
    int rc = asyncio_sleep(job->seconds);
    if (rc < 0) {
        say("worker %s: cancelled%s", job->name, "");
        return rc;
    }
    if (job->fails) {
        say("worker %s: failing with %s", job->name, strerror(EIO));
        return -EIO;
    }
    say("worker %s: done%s", job->name, "");
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    t0 = asyncio_loop_time();

    /* 1. A timeout scope: every wait inside ends with -ETIMEDOUT once the
     * deadline passes, and what is awaited is cancelled. */
    asyncio_timeout_t scope;
    asyncio_task_t *op;
    asyncio_timeout_enter(&scope, 0.5);
    if (asyncio_create_task(&op, slow_operation, NULL, "slow") < 0)
        return -1;
    int rc = asyncio_await(op, NULL);
    if (asyncio_timeout_exit(&scope) == -ETIMEDOUT)
        say("timeout: the operation took too long (%s)%s", strerror(-rc), "");
    asyncio_task_release(op);

    /* 2. A task group: B fails, so A and C are cancelled, and leaving the
     * group reports B's error. */
    struct job jobs[] = {{"A", 1.0, 0}, {"B", 0.3, 1}, {"C", 1.0, 0}};
    asyncio_taskgroup_t group;
    asyncio_taskgroup_enter(&group);
    for (int i = 0; i < 3; i++) {
        asyncio_task_options_t opts = {.name = jobs[i].name};
        asyncio_taskgroup_create_task(&group, NULL, worker, &jobs[i], &opts);
    }
    rc = asyncio_taskgroup_exit(&group, 0);
    int errors[4];
    int n = asyncio_taskgroup_errors(&group, errors, 4);
    printf("[%.2fs] task group: %s, %d failure%s\n", asyncio_loop_time() - t0,
           rc < 0 ? strerror(-rc) : "ok", n, n == 1 ? "" : "s");
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return asyncio_run(main_task, NULL, NULL) < 0;
}
