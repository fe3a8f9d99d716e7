/*
 * What may live on a parked task's stack (src/task.h): nothing the library
 * reaches from another context. Each test here runs one kind of wait whose
 * wake-up comes from elsewhere (a release, a put, a child's end, a timer, a
 * peer's write, a worker thread), with every object the program shares in
 * static storage, so that no code but the task's own has a reason to touch
 * its stack.
 *
 * Built with -DASYNCIO_SEAL_PARKED_STACKS=ON (a CI section), the library
 * makes a parked task's stack inaccessible until it runs again: a wait
 * that kept its records there (as gather, task groups and every sync
 * object once did) faults. test_sealing_is_on proves, in that build, that
 * a read of a parked stack does fault. In other builds these are plain
 * behaviour tests.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <netdb.h>
#include <sys/socket.h>

#define ITEM(i) ((void *)(intptr_t)(i))

static asyncio_lock_t g_lock;
static asyncio_semaphore_t g_sem;
static asyncio_event_t g_ev;
static asyncio_condition_t g_cond;
static asyncio_barrier_t g_bar;
static asyncio_queue_t g_q;
static asyncio_taskgroup_t g_tg; /* only its owner touches it */
static int g_count;
static int g_ready;

/* ---- sync objects ------------------------------------------------------ */

static int lock_user(void *arg, void **result)
{
    (void)result;
    for (int i = 0; i < 3; i++) {
        int rc = asyncio_lock_acquire(&g_lock);
        if (rc < 0)
            return rc;
        g_count += (int)(intptr_t)arg;
        rc = asyncio_sleep(0); /* a cancellation after the handoff ends here */
        asyncio_lock_release(&g_lock);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int sem_user(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_semaphore_acquire(&g_sem);
    if (rc < 0)
        return rc;
    g_count++;
    asyncio_sleep(0.001);
    return asyncio_semaphore_release(&g_sem);
}

static int event_user(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_event_wait(&g_ev);
    if (rc == 0)
        g_count++;
    return rc;
}

static int is_ready(void *arg)
{
    (void)arg;
    return g_ready;
}

static int cond_user(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = asyncio_condition_acquire(&g_cond);
    if (rc < 0)
        return rc;
    rc = asyncio_condition_wait_for(&g_cond, is_ready, NULL);
    if (rc > 0)
        g_count++;
    asyncio_condition_release(&g_cond);
    return rc > 0 ? 0 : rc;
}

static int barrier_user(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int round = 0; round < 2; round++) {
        int rc = asyncio_barrier_wait(&g_bar);
        if (rc < 0)
            return rc;
        g_count++;
    }
    return 0;
}

static int gather_all(asyncio_task_t **ts, int n)
{
    int errors[16];
    int rc = asyncio_gather((size_t)n, ts, NULL, errors, ASYNCIO_RETURN_EXCEPTIONS);
    for (int i = 0; i < n; i++) {
        if (rc > 0 && errors[i] != 0)
            rc = errors[i]; /* the first failure, in argument order */
        asyncio_task_release(ts[i]);
    }
    return rc;
}

static int sync_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *ts[4];

    asyncio_lock_init(&g_lock);
    g_count = 0;
    for (int i = 0; i < 3; i++)
        ts[i] = tu_spawn(lock_user, ITEM(i + 1), NULL);
    CHECK_INT(gather_all(ts, 3), 0);
    CHECK_INT(g_count, 18);
    /* A waiter cancelled while parked, and one cancelled after the handoff. */
    CHECK_INT(asyncio_lock_acquire(&g_lock), 0);
    ts[0] = tu_spawn(lock_user, ITEM(1), NULL);
    ts[1] = tu_spawn(lock_user, ITEM(1), NULL);
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);
    CHECK_INT(asyncio_lock_release(&g_lock), 0); /* handed to ts[1] */
    CHECK_INT(asyncio_task_cancel(ts[1]), 1);
    CHECK_INT(asyncio_gather(2, ts, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS), 2);
    asyncio_task_release(ts[0]);
    asyncio_task_release(ts[1]);
    CHECK_INT(asyncio_lock_locked(&g_lock), 0);
    CHECK_INT(asyncio_lock_destroy(&g_lock), 0);

    asyncio_bounded_semaphore_init(&g_sem, 2);
    g_count = 0;
    for (int i = 0; i < 4; i++)
        ts[i] = tu_spawn(sem_user, NULL, NULL);
    CHECK_INT(gather_all(ts, 4), 0);
    CHECK_INT(g_count, 4);
    CHECK_INT(asyncio_semaphore_destroy(&g_sem), 0);

    asyncio_event_init(&g_ev);
    g_count = 0;
    for (int i = 0; i < 3; i++)
        ts[i] = tu_spawn(event_user, NULL, NULL);
    tu_yield(1);
    CHECK_INT(asyncio_event_set(&g_ev), 0);
    CHECK_INT(gather_all(ts, 3), 0);
    CHECK_INT(g_count, 3);
    CHECK_INT(asyncio_event_destroy(&g_ev), 0);

    asyncio_condition_init(&g_cond, NULL);
    g_count = g_ready = 0;
    for (int i = 0; i < 3; i++)
        ts[i] = tu_spawn(cond_user, NULL, NULL);
    tu_yield(2);
    CHECK_INT(asyncio_condition_acquire(&g_cond), 0);
    CHECK_INT(asyncio_condition_notify(&g_cond, 1), 1); /* not ready yet */
    CHECK_INT(asyncio_condition_release(&g_cond), 0);
    tu_yield(2);
    CHECK_INT(asyncio_condition_acquire(&g_cond), 0);
    g_ready = 1;
    CHECK_INT(asyncio_condition_notify_all(&g_cond), 3);
    CHECK_INT(asyncio_condition_release(&g_cond), 0);
    CHECK_INT(gather_all(ts, 3), 0);
    CHECK_INT(g_count, 3);
    CHECK_INT(asyncio_condition_destroy(&g_cond), 0);

    asyncio_barrier_init(&g_bar, 3);
    g_count = 0;
    for (int i = 0; i < 3; i++)
        ts[i] = tu_spawn(barrier_user, NULL, NULL);
    CHECK_INT(gather_all(ts, 3), 0);
    CHECK_INT(g_count, 6);
    CHECK_INT(asyncio_barrier_destroy(&g_bar), 0);
    return 0;
}

static void test_sync_objects(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(sync_main, NULL, NULL, TU_TEST_TIMEOUT), 0);
}

/* ---- queues -------------------------------------------------------------- */

static int producer(void *arg, void **result)
{
    (void)result;
    for (int i = 1; i <= 20; i++) {
        int rc = asyncio_queue_put(&g_q, ITEM(i * (int)(intptr_t)arg));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int consumer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        void *item;
        int rc = asyncio_queue_get(&g_q, &item);
        if (rc == -ESHUTDOWN)
            return 0;
        if (rc < 0)
            return rc;
        g_count += (int)(intptr_t)item;
        asyncio_queue_task_done(&g_q);
    }
}

static int joiner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_queue_join(&g_q);
}

static int queue_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *ts[5];
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0)
            asyncio_queue_init(&g_q, 1); /* every put and get waits: handoffs */
        else
            asyncio_lifo_queue_init(&g_q, 2);
        g_count = 0;
        ts[0] = tu_spawn(consumer, NULL, NULL);
        ts[1] = tu_spawn(consumer, NULL, NULL);
        ts[2] = tu_spawn(producer, ITEM(1), NULL);
        ts[3] = tu_spawn(producer, ITEM(2), NULL);
        ts[4] = tu_spawn(joiner, NULL, NULL);
        CHECK_INT(asyncio_await(ts[2], NULL), 0);
        CHECK_INT(asyncio_await(ts[3], NULL), 0);
        CHECK_INT(asyncio_await(ts[4], NULL), 0);
        CHECK_INT(g_count, 3 * 210);
        CHECK_INT(asyncio_queue_shutdown(&g_q, 0), 0); /* wakes the getters */
        CHECK_INT(gather_all(ts, 5), 0);
        CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    }
    return 0;
}

static void test_queues(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(queue_main, NULL, NULL, TU_TEST_TIMEOUT), 0);
}

/* ---- gather, wait, as_completed, await, wait_for, task groups ----------- */

static int sleeper(void *arg, void **result)
{
    *result = arg;
    return asyncio_sleep((double)(intptr_t)arg / 1000.0);
}

static int failer(void *arg, void **result)
{
    (void)result;
    asyncio_sleep((double)(intptr_t)arg / 1000.0);
    return -EIO;
}

static int gatherer(void *arg, void **result)
{
    (void)result;
    int n = (int)(intptr_t)arg;
    asyncio_task_t *ts[16] = {0};
    for (int i = 0; i < n; i++)
        ts[i] = tu_spawn(sleeper, ITEM(100 + i), NULL);
    int rc = asyncio_gather((size_t)n, ts, NULL, NULL, 0);
    for (int i = 0; i < n; i++)
        asyncio_task_release(ts[i]);
    return rc;
}

static int group_owner(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_taskgroup_enter(&g_tg);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 12; i++)
        asyncio_taskgroup_create_task(&g_tg, NULL, sleeper, ITEM(1 + i % 3), NULL);
    if (arg)
        asyncio_taskgroup_create_task(&g_tg, NULL, failer, ITEM(2), NULL);
    int body = asyncio_sleep(arg ? 1.0 : 0); /* cut short by the failure */
    return asyncio_taskgroup_exit(&g_tg, body);
}

static int combinators_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *ts[16];
    void *res[16];

    /* gather, small (the loop's spare fan-in) and large (allocated). */
    for (int i = 0; i < 3; i++)
        ts[i] = tu_spawn(sleeper, ITEM(1 + i), NULL);
    CHECK_INT(asyncio_gather(3, ts, res, NULL, 0), 0);
    CHECK_PTR(res[2], ITEM(3));
    for (int i = 0; i < 3; i++)
        asyncio_task_release(ts[i]);
    for (int i = 0; i < 12; i++)
        ts[i] = tu_spawn(i == 5 ? failer : sleeper, ITEM(1 + i % 4), NULL);
    CHECK_INT(asyncio_gather(12, ts, NULL, NULL, 0), -EIO);
    CHECK_INT(gather_all(ts, 12), -EIO);

    /* A gather cancelled while it waits cancels its children and waits. */
    asyncio_task_t *g = tu_spawn(gatherer, ITEM(10), NULL);
    CHECK_INT(asyncio_sleep(0.002), 0);
    CHECK_INT(asyncio_task_cancel(g), 1);
    CHECK_INT(asyncio_await(g, NULL), -ECANCELED);
    asyncio_task_release(g);

    /* wait: the first to complete, then all with a timeout that passes. */
    for (int i = 0; i < 4; i++)
        ts[i] = tu_spawn(sleeper, ITEM(i == 0 ? 1 : 500), NULL);
    asyncio_future_t *done[4], *pending[4];
    CHECK_INT(asyncio_wait(4, ts, INFINITY, ASYNCIO_FIRST_COMPLETED, done, pending), 1);
    CHECK_PTR(done[0], ts[0]);
    CHECK_INT(asyncio_wait(4, ts, 0.002, ASYNCIO_ALL_COMPLETED, done, pending), 1);

    /* as_completed, then await, shield and wait_for on what is left. */
    asyncio_as_completed_t it;
    asyncio_future_t *f;
    CHECK_INT(asyncio_as_completed_init(&it, 1, &ts[0], INFINITY), 0);
    CHECK_INT(asyncio_as_completed_next(&it, &f), 1);
    CHECK_INT(asyncio_as_completed_next(&it, &f), 0);
    asyncio_as_completed_destroy(&it);
    asyncio_task_t *quick[3];
    for (int i = 0; i < 3; i++)
        quick[i] = tu_spawn(sleeper, ITEM(3 - i), NULL);
    CHECK_INT(asyncio_as_completed_init(&it, 3, quick, INFINITY), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(asyncio_as_completed_next(&it, &f), 1);
        CHECK_PTR(f, quick[2 - i]); /* in the order they finish */
    }
    asyncio_as_completed_destroy(&it);
    for (int i = 0; i < 3; i++)
        asyncio_task_release(quick[i]);
    asyncio_timeout_t scope; /* the task's own: only it touches the scope */
    CHECK_INT(asyncio_timeout_enter(&scope, 0.002), 0);
    CHECK_INT(asyncio_shield(ts[1], NULL), -ETIMEDOUT);
    CHECK_INT(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_INT(asyncio_future_done(ts[1]), 0); /* shielded: still running */
    CHECK_INT(asyncio_wait_for(ts[2], 0.002, NULL), -ETIMEDOUT);
    CHECK_INT(asyncio_future_cancelled(ts[2]), 1);
    for (int i = 1; i < 4; i += 2) {
        CHECK_INT(asyncio_task_cancel(ts[i]), 1);
        CHECK_INT(asyncio_await(ts[i], NULL), -ECANCELED);
    }
    for (int i = 0; i < 4; i++)
        asyncio_task_release(ts[i]);

    /* Task groups: children end while the owner is parked in exit; a
     * failing child aborts the group while the owner sleeps in its body. */
    g = tu_spawn(group_owner, NULL, NULL);
    CHECK_INT(asyncio_await(g, NULL), 0);
    asyncio_task_release(g);
    g = tu_spawn(group_owner, ITEM(1), NULL);
    CHECK_INT(asyncio_await(g, NULL), -EIO);
    asyncio_task_release(g);
    return 0;
}

static void test_combinators(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(combinators_main, NULL, NULL, TU_TEST_TIMEOUT), 0);
}

/* ---- I/O and the thread pool -------------------------------------------- */

static int g_fds[2];

static int stream_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_stream_t *s;
    int rc = asyncio_stream_open(&s, g_fds[0], 0);
    if (rc < 0)
        return rc;
    char buf[8];
    rc = asyncio_stream_readexactly(s, buf, 5);
    if (rc == 5 && memcmp(buf, "hello", 5) != 0)
        rc = -EPROTO;
    asyncio_stream_close(s);
    return rc == 5 ? 0 : rc < 0 ? rc : -EPROTO;
}

static int io_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, g_fds), 0);
    asyncio_task_t *r = tu_spawn(stream_reader, NULL, NULL);
    CHECK_INT(asyncio_sleep(0.002), 0);
    CHECK_INT(asyncio_sock_sendall(g_fds[1], "hel", 3), 3);
    CHECK_INT(asyncio_sleep(0.002), 0);
    CHECK_INT(asyncio_sock_sendall(g_fds[1], "lo", 2), 2);
    CHECK_INT(asyncio_await(r, NULL), 0);
    asyncio_task_release(r);
    CHECK_INT(asyncio_wait_readable(g_fds[1]), 0); /* the close: EOF */
    asyncio_close(g_fds[1]);

    /* A wait for a worker thread: a name (not a number) is looked up in the
     * loop's pool; whether this machine knows it does not matter here. */
    struct addrinfo *ai = NULL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int rc = asyncio_getaddrinfo("localhost", "80", &hints, &ai);
    CHECK(rc == 0 || rc == -ENOENT || rc == -EAGAIN);
    if (rc == 0)
        freeaddrinfo(ai);
    return 0;
}

static void test_io_and_threads(void **state)
{
    (void)state;
    assert_int_equal(tu_run_bounded(io_main, NULL, NULL, TU_TEST_TIMEOUT), 0);
}

/* ---- the check itself ---------------------------------------------------- */

static volatile int *g_parked_local;

static int parks_with_a_local(void *arg, void **result)
{
    (void)arg;
    (void)result;
    volatile int local = 42;
    g_parked_local = &local;
    int rc = asyncio_event_wait(&g_ev);
    g_parked_local = NULL;
    return rc + local - 42;
}

static int reads_a_parked_stack(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_event_init(&g_ev);
    asyncio_task_t *t = tu_spawn(parks_with_a_local, NULL, NULL);
    tu_yield(1);
    int seen = *g_parked_local; /* faults when sealed */
    asyncio_event_set(&g_ev);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    return seen;
}

static void read_a_parked_stack(void)
{
    tu_child_exit(asyncio_run(reads_a_parked_stack, NULL, NULL) == 42 ? 0 : 3);
}

static void test_sealing_is_on(void **state)
{
    (void)state;
    struct tu_child c;
    tu_run_child(read_a_parked_stack, &c);
#ifdef TU_SEALED_STACKS
    /* The read faults: the check the other tests rely on is in force. */
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGSEGV);
#else
    /* Not sealed: the program may read its own locals (and does). */
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sealing_is_on),
        cmocka_unit_test(test_sync_objects),
        cmocka_unit_test(test_queues),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_io_and_threads),
    };
    return tu_run_group_tests_name("parked", tests, NULL, NULL);
}
