/*
 * A tiny program built against an *installed* libasyncio, the way a user
 * would: through find_package(asyncio) or pkg-config. It only uses the
 * public header <asyncio.h>.
 *
 * The main task starts a child task that sleeps 0.01 s and returns a
 * result, awaits it and checks the result, the return value and the time
 * that passed. Exits 0 on success, 1 (with a message) on any failure.
 */
#include <asyncio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int answer = 42;

static int child(void *arg, void **result)
{
    int rc = asyncio_sleep(0.01);
    if (rc != 0)
        return rc;
    *result = arg;
    return 7;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    double start = asyncio_loop_time();
    asyncio_task_t *t = NULL;
    int rc = asyncio_create_task(&t, child, &answer, "child");
    if (rc != 0) {
        fprintf(stderr, "consumer: asyncio_create_task: %s\n", strerror(-rc));
        return rc;
    }
    void *value = NULL;
    rc = asyncio_await(t, &value);
    asyncio_task_release(t);
    if (rc != 7 || value != &answer) {
        fprintf(stderr, "consumer: child returned %d, result %p (want 7, %p)\n",
                rc, value, (void *)&answer);
        return -EPROTO;
    }
    double elapsed = asyncio_loop_time() - start;
    if (elapsed < 0.009) {
        fprintf(stderr, "consumer: slept only %.6f s (want >= 0.01)\n", elapsed);
        return -EPROTO;
    }
    *result = value;
    return 0;
}

int main(void)
{
    void *result = NULL;
    int rc = asyncio_run(main_task, NULL, &result);
    if (rc != 0 || result != &answer || *(int *)result != 42) {
        fprintf(stderr, "consumer: asyncio_run returned %d (%s), result %p\n",
                rc, rc < 0 ? strerror(-rc) : "ok", result);
        return 1;
    }
    printf("consumer: ok (libasyncio %d.%d.%d)\n", ASYNCIO_VERSION_MAJOR,
           ASYNCIO_VERSION_MINOR, ASYNCIO_VERSION_PATCH);
    return 0;
}
