/*
 * Scale: 100,000 tasks alive at once, each sleeping, all gathered.
 */
#include "testutil.h"

#define N_TASKS 100000

/* Under ThreadSanitizer every task context is a fiber, and 100,000 of them
 * are past gcc 12's runtime limit of 8128 threads and fibers (clang 14's
 * maps memory for each): the test is skipped there (TU_UNDER_TSAN). */

static asyncio_task_t *g_tasks[N_TASKS];
static void *g_results[N_TASKS];
static int g_errors[N_TASKS];
static int g_started;
static int g_woken;

static int sleeper(void *arg, void **result)
{
    g_started++;
    int rc = asyncio_sleep(0.01);
    if (rc == 0)
        g_woken++;
    *result = arg;
    return rc;
}

static int main_many(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.stack_size = ASYNCIO_STACK_MIN;
    g_started = g_woken = 0;
    int created = 0;
    for (int i = 0; i < N_TASKS; i++) {
        int rc = asyncio_create_task_ex(&g_tasks[i], sleeper, (void *)(intptr_t)i, &opts);
        if (rc != 0) {
            tu_fail_at(__FILE__, __LINE__, "task %d of %d: asyncio_create_task_ex: %s", i,
                       N_TASKS, tu_err(rc));
            break;
        }
        created++;
    }
    CHECK_INT(created, N_TASKS);
    CHECK_INT((long long)asyncio_task_count(), created + 1);
    CHECK_INT(asyncio_sleep(0), 0);
    /* All started, all sleeping: alive at once. */
    CHECK_INT(g_started, created);
    CHECK_INT(g_woken, 0);
    CHECK_INT((long long)asyncio_task_count(), created + 1);

    CHECK_INT(asyncio_gather((size_t)created, g_tasks, g_results, g_errors, 0), 0);
    CHECK_INT(g_woken, created);
    CHECK_INT((long long)asyncio_task_count(), 1);
    int bad = 0;
    for (int i = 0; i < created; i++) {
        if (g_results[i] != (void *)(intptr_t)i || g_errors[i] != 0)
            bad++;
        asyncio_task_release(g_tasks[i]);
    }
    CHECK_INT(bad, 0);
    return 0;
}

static void test_100000_tasks_alive_at_once(void **state)
{
#ifdef TU_UNDER_TSAN
    skip();
#endif
    (void)state;
    assert_int_equal(tu_run(main_many, NULL, NULL), 0);
    assert_int_equal(g_woken, N_TASKS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_100000_tasks_alive_at_once),
    };
    return tu_run_group_tests_name("many_tasks", tests, NULL, NULL);
}
