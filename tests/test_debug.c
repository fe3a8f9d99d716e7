/*
 * Debugging aids: the list of live tasks, their states and what they wait
 * on, and the report of failures nobody looked at.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <unistd.h>

static int sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(10);
}

static int awaiter(void *arg, void **result)
{
    (void)result;
    return asyncio_await((asyncio_future_t *)arg, NULL);
}

/* asyncio_print_tasks() into text (cap bytes, NUL-terminated); returns
 * what it returned. */
static int print_tasks_to(char *text, size_t cap)
{
    text[0] = '\0';
    FILE *out = tmpfile();
    CHECK(out != NULL);
    if (!out)
        return -EIO;
    int n = asyncio_print_tasks(out);
    rewind(out);
    size_t len = fread(text, 1, cap - 1, out);
    fclose(out);
    text[len] = '\0';
    return n;
}

static int main_all_tasks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_future_t *f = tu_future();
    asyncio_task_t *s = tu_spawn(sleeper, NULL, "sleepy");
    asyncio_task_t *a = tu_spawn(awaiter, f, "patient");
    CHECK_STR(asyncio_task_state(s), "created");
    CHECK_PTR(asyncio_task_waiting_on(s), NULL);
    tu_yield(1);
    CHECK_STR(asyncio_task_state(asyncio_current_task()), "running");
    CHECK_STR(asyncio_task_state(s), "waiting");
    CHECK_STR(asyncio_task_waiting_on(s), "sleep");
    CHECK_STR(asyncio_task_waiting_on(a), "future");
    CHECK_PTR(asyncio_task_state(f), NULL); /* not a task */

    asyncio_task_t *list[8];
    CHECK_INT((int)asyncio_all_tasks(list, 8), 3);
    CHECK_INT((int)asyncio_all_tasks(list, 1), 3); /* counts past cap */
    CHECK_INT((int)asyncio_all_tasks(NULL, 0), 3);
    CHECK_INT((int)asyncio_all_tasks(NULL, 8), 3); /* NULL: a count only */

    char text[1024];
    CHECK_INT(print_tasks_to(text, sizeof text), 3);
    CHECK(strstr(text, "task \"main\": running\n") != NULL);
    CHECK(strstr(text, "task \"sleepy\": waiting on sleep, timer in ") != NULL);
    CHECK(strstr(text, "task \"patient\": waiting on future\n") != NULL);
    CHECK_INT(asyncio_print_tasks(NULL), -EINVAL);

    CHECK_INT(asyncio_task_cancel(s), 1);
    CHECK_STR(asyncio_task_state(s), "ready");
    CHECK_INT(asyncio_await(s, NULL), -ECANCELED);
    CHECK_STR(asyncio_task_state(s), "done");
    CHECK_INT((int)asyncio_all_tasks(NULL, 0), 2);
    CHECK_INT(asyncio_future_set_result(f, NULL), 0);
    return 0;
}

static void test_all_tasks_states_and_what_they_wait_on(void **state)
{
    (void)state;
    assert_int_equal((int)asyncio_all_tasks(NULL, 0), 0);
    assert_null(asyncio_task_state(NULL));
    assert_int_equal(asyncio_print_tasks(stdout), -EPERM);
    assert_int_equal(tu_run(main_all_tasks, NULL, NULL), 0);
}

/* A task cancelled before it ran shows the request still to deliver. */
static int main_print_pending_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(sleeper, NULL, "doomed");
    CHECK_INT(asyncio_task_cancel(t), 1);
    char text[512];
    CHECK_INT(print_tasks_to(text, sizeof text), 2);
    CHECK(strstr(text, "task \"doomed\": created, cancellation pending\n") != NULL);
    CHECK(strstr(text, "task \"main\": running\n") != NULL);
    CHECK_INT(asyncio_await(t, NULL), -ECANCELED);
    asyncio_task_release(t);
    return 0;
}

static void test_print_tasks_shows_a_pending_cancellation(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_print_pending_cancel, NULL, NULL), 0);
}

/* Run fn in a loop with stderr captured; return what was written to it. */
static char g_err[4096];

static void run_capturing_stderr(asyncio_fn fn)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    int rc = tu_run(fn, NULL, NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t len = fread(g_err, 1, sizeof g_err - 1, tmp);
    g_err[len] = '\0';
    fclose(tmp);
    assert_int_equal(rc, 0);
}

static int fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int cancelled_one(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(10);
}

static int main_unretrieved(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t;
    /* Nobody looks at these: reported. */
    CHECK_INT(asyncio_create_task(NULL, fails, NULL, "lost"), 0);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_future_set_error(f, -EPIPE), 0);
    asyncio_future_release(f);
    /* Looked at, or cancelled: not reported. */
    CHECK_INT(asyncio_create_task(&t, fails, NULL, "seen"), 0);
    CHECK_INT(asyncio_await(t, NULL), -EIO);
    asyncio_task_release(t);
    CHECK_INT(asyncio_create_task(&t, fails, NULL, "result-read"), 0);
    tu_yield(2);
    CHECK_INT(asyncio_future_result(t, NULL), -EIO);
    asyncio_task_release(t);
    CHECK_INT(asyncio_create_task(&t, cancelled_one, NULL, "cancelled"), 0);
    tu_yield(1);
    asyncio_task_cancel(t);
    asyncio_task_release(t);
    tu_yield(2);
    return 0;
}

static void test_failures_nobody_retrieved_are_reported(void **state)
{
    (void)state;
    run_capturing_stderr(main_unretrieved);
    assert_non_null(strstr(g_err, "asyncio: Task exception was never retrieved: task \"lost\" "
                                  "failed with -5 ("));
    assert_non_null(strstr(g_err, "asyncio: Future exception was never retrieved: failed with "
                                  "-32 ("));
    assert_null(strstr(g_err, "seen"));
    assert_null(strstr(g_err, "result-read"));
    assert_null(strstr(g_err, "cancelled"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_tasks_states_and_what_they_wait_on),
        cmocka_unit_test(test_print_tasks_shows_a_pending_cancellation),
        cmocka_unit_test(test_failures_nobody_retrieved_are_reported),
    };
    return tu_run_group_tests_name("debug", tests, NULL, NULL);
}
