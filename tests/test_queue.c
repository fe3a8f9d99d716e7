/*
 * Queues (CPython: test_asyncio/test_queues.py), plus what C adds: no item
 * lost or duplicated by a cancelled or timed-out wait, at every wait point.
 */
#include "testutil.h"

#define ITEM(n) ((void *)(uintptr_t)(n))
#define ID(p) ((int)(uintptr_t)(p))

static const char *qerr(long long rc)
{
    return rc == -ESHUTDOWN ? "ESHUTDOWN" : tu_err(rc);
}

/* Await t (and release it), but rather than hang if it does not finish
 * within many turns of the loop, fail and cancel it. Returns its status. */
static int settle(asyncio_task_t *t)
{
    for (long n = 0; !asyncio_future_done(t) && n < 100000; n++)
        CHECK_INT(asyncio_sleep(0), 0);
    if (!asyncio_future_done(t)) {
        tu_fail_at(__FILE__, __LINE__, "%s never finished", asyncio_task_name(t));
        asyncio_task_cancel(t);
    }
    int rc = asyncio_await(t, NULL);
    asyncio_task_release(t);
    return rc;
}

static void settle_all(size_t n, asyncio_task_t *const t[], int rcs[])
{
    for (size_t i = 0; i < n; i++)
        rcs[i] = settle(t[i]);
}

/* Take every item left with get_nowait and log them as "name:a,b,c". */
static void log_drain(asyncio_queue_t *q, const char *name)
{
    char buf[512];
    size_t n = 0;
    void *item;
    buf[0] = '\0';
    while (asyncio_queue_get_nowait(q, &item) == 0 && n < sizeof buf - 16)
        n += (size_t)snprintf(buf + n, sizeof buf - n, n ? ",%d" : "%d", ID(item));
    LOG("%s:%s", name, buf);
}

/* ---- order ------------------------------------------------------------- */

static int main_fifo_lifo_order(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t q;
    CHECK_INT(asyncio_queue_init(&q, 0), 0);
    for (int i = 1; i <= 5; i++)
        CHECK_INT(asyncio_queue_put(&q, ITEM(i)), 0);
    log_drain(&q, "fifo");
    CHECK_INT(asyncio_queue_destroy(&q), 0);

    CHECK_INT(asyncio_lifo_queue_init(&q, 0), 0);
    for (int i = 1; i <= 5; i++)
        CHECK_INT(asyncio_queue_put(&q, ITEM(i)), 0);
    void *item = NULL;
    CHECK_INT(asyncio_queue_get(&q, &item), 0);
    CHECK_INT(ID(item), 5);
    CHECK_INT(asyncio_queue_put(&q, ITEM(6)), 0);
    log_drain(&q, "lifo");
    CHECK_INT(asyncio_queue_destroy(&q), 0);
    return 0;
}

static void test_fifo_and_lifo_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_fifo_lifo_order, NULL, NULL), 0);
    assert_log("fifo:1,2,3,4,5 lifo:6,4,3,2,1");
}

/* Priority items: a priority and a tag telling them apart. */
struct prio_item {
    int prio;
    int tag;
};

static int prio_cmp(const void *a, const void *b)
{
    const struct prio_item *x = a, *y = b;
    return (x->prio > y->prio) - (x->prio < y->prio);
}

static int main_priority_order(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t q;
    CHECK_INT(asyncio_priority_queue_init(&q, 0, prio_cmp), 0);
    /* Equal priorities come out in insertion order. */
    static struct prio_item items[] = {{3, 1}, {1, 2}, {3, 3}, {1, 4}, {2, 5}, {1, 6}, {0, 7}};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        CHECK_INT(asyncio_queue_put_nowait(&q, &items[i]), 0);
    char buf[128] = "";
    size_t n = 0;
    void *item;
    while (asyncio_queue_get_nowait(&q, &item) == 0) {
        struct prio_item *p = item;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d/%d", n ? "," : "", p->prio, p->tag);
    }
    LOG("prio:%s", buf);

    /* Many items, few priorities, gets interleaved with puts: always the
     * smallest, the earliest inserted first among equals. */
    enum { N = 600 };
    static struct prio_item many[N];
    uint32_t seed = 12345;
    int taken = 0, bad = 0;
    struct prio_item last = {-1, -1};
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        many[i].prio = (int)((seed >> 16) % 5);
        many[i].tag = i;
        CHECK_INT(asyncio_queue_put_nowait(&q, &many[i]), 0);
        if (i % 3 == 2) { /* take one now and then: the heap shrinks and grows */
            CHECK_INT(asyncio_queue_get_nowait(&q, &item), 0);
            taken++;
        }
    }
    CHECK_INT(asyncio_queue_size(&q), N - taken);
    while (asyncio_queue_get_nowait(&q, &item) == 0) {
        struct prio_item *p = item;
        if (p->prio < last.prio || (p->prio == last.prio && p->tag < last.tag))
            bad++;
        last = *p;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(asyncio_queue_destroy(&q), 0);
    return 0;
}

static void test_priority_order_keeps_insertion_order_among_equals(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_priority_order, NULL, NULL), 0);
    assert_log("prio:0/7,1/2,1/4,1/6,2/5,3/1,3/3");
}

/* The ring grows while wrapped, and a bounded one grows up to maxsize. */
static int main_ring_growth(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t q;
    CHECK_INT(asyncio_queue_init(&q, 0), 0);
    int next_in = 0, next_out = 0, bad = 0;
    void *item;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < round % 37 + 1; i++)
            CHECK_INT(asyncio_queue_put_nowait(&q, ITEM(next_in++)), 0);
        for (int i = 0; i < round % 23; i++)
            if (asyncio_queue_get_nowait(&q, &item) == 0 && ID(item) != next_out++)
                bad++;
    }
    while (asyncio_queue_get_nowait(&q, &item) == 0)
        if (ID(item) != next_out++)
            bad++;
    CHECK_INT(bad, 0);
    CHECK_INT(next_out, next_in);
    CHECK_INT(asyncio_queue_destroy(&q), 0);

    CHECK_INT(asyncio_queue_init(&q, 100), 0);
    for (int i = 0; i < 60; i++)
        CHECK_INT(asyncio_queue_put_nowait(&q, ITEM(i)), 0);
    for (int i = 0; i < 50; i++) {
        CHECK_INT(asyncio_queue_get_nowait(&q, &item), 0);
        CHECK_INT(ID(item), i);
    }
    for (int i = 60; i < 150; i++)
        CHECK_INT(asyncio_queue_put_nowait(&q, ITEM(i)), 0);
    CHECK_INT(asyncio_queue_full(&q), 1);
    CHECK_INT(asyncio_queue_put_nowait(&q, ITEM(999)), -EAGAIN);
    for (int i = 50; i < 150; i++) {
        CHECK_INT(asyncio_queue_get_nowait(&q, &item), 0);
        if (ID(item) != i)
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(asyncio_queue_empty(&q), 1);
    CHECK_INT(asyncio_queue_destroy(&q), 0);
    return 0;
}

static void test_ring_buffer_grows_in_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_ring_growth, NULL, NULL), 0);
}

/* ---- blocking put and get ---------------------------------------------- */

static asyncio_queue_t g_q;

static int putter_1_to_3(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 1; i <= 3; i++) {
        LOG("put%d", i);
        int rc = asyncio_queue_put(&g_q, ITEM(i));
        LOG("put%d:%s", i, qerr(rc));
    }
    return 0;
}

static int main_bounded_put_blocks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 2), 0);
    asyncio_task_t *t = tu_spawn(putter_1_to_3, NULL, NULL);
    tu_yield(3);
    LOG("size:%zu full:%d", asyncio_queue_size(&g_q), asyncio_queue_full(&g_q));
    void *item;
    CHECK_INT(asyncio_queue_get(&g_q, &item), 0);
    /* The room went to the waiting putter: its item is in already. */
    LOG("got:%d size:%zu", ID(item), asyncio_queue_size(&g_q));
    tu_yield(1);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(asyncio_queue_get_nowait(&g_q, &item), 0);
        LOG("got:%d", ID(item));
    }
    CHECK_INT(settle(t), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_bounded_put_blocks_until_a_get(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_bounded_put_blocks, NULL, NULL), 0);
    /* The get wakes the putter, whose item goes in when it runs, as in
     * asyncio: the size is 1 until then. */
    assert_log("put1 put1:0 put2 put2:0 put3 size:2 full:1 got:1 size:1 put3:0 got:2 got:3");
}

static int getter(void *arg, void **result)
{
    const char *name = arg;
    (void)result;
    void *item = NULL;
    LOG("%s", name);
    int rc = asyncio_queue_get(&g_q, &item);
    if (rc == 0)
        LOG("%s:%d", name, ID(item));
    else
        LOG("%s:%s", name, qerr(rc));
    return rc;
}

static int main_get_blocks(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    asyncio_task_t *t = tu_spawn(getter, "get", NULL);
    tu_yield(3);
    LOG("put");
    CHECK_INT(asyncio_queue_put(&g_q, ITEM(5)), 0);
    CHECK_INT(asyncio_queue_size(&g_q), 1); /* stored; the getter takes it when it runs */
    CHECK_INT(settle(t), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_get_blocks_until_a_put(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_get_blocks, NULL, NULL), 0);
    assert_log("get put get:5");
}

static int main_getters_fifo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    asyncio_task_t *t[3] = {tu_spawn(getter, "g1", NULL), tu_spawn(getter, "g2", NULL),
                            tu_spawn(getter, "g3", NULL)};
    tu_yield(1);
    for (int i = 1; i <= 3; i++)
        CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(i * 10)), 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(settle(t[i]), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_several_getters_are_served_in_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_getters_fifo, NULL, NULL), 0);
    assert_log("g1 g2 g3 g1:10 g2:20 g3:30");
}

static int putter_item(void *arg, void **result)
{
    (void)result;
    int id = ID(arg);
    int rc = asyncio_queue_put(&g_q, arg);
    LOG("p%d:%s", id, qerr(rc));
    return rc;
}

static int main_putters_fifo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 1), 0);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(0)), 0);
    asyncio_task_t *t[3] = {tu_spawn(putter_item, ITEM(1), NULL),
                            tu_spawn(putter_item, ITEM(2), NULL),
                            tu_spawn(putter_item, ITEM(3), NULL)};
    tu_yield(1);
    for (int i = 0; i < 4; i++) {
        void *item;
        CHECK_INT(asyncio_queue_get_nowait(&g_q, &item), 0);
        LOG("got:%d", ID(item));
        tu_yield(1);
    }
    for (int i = 0; i < 3; i++)
        CHECK_INT(settle(t[i]), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_several_putters_are_served_in_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_putters_fifo, NULL, NULL), 0);
    assert_log("got:0 p1:0 got:1 p2:0 got:2 p3:0 got:3");
}

static int main_nowait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t q;
    void *item = ITEM(77);
    CHECK_INT(asyncio_queue_init(&q, 1), 0);
    CHECK_INT(asyncio_queue_get_nowait(&q, &item), -EAGAIN); /* QueueEmpty */
    CHECK_INT(ID(item), 77);
    CHECK_INT(asyncio_queue_put_nowait(&q, ITEM(1)), 0);
    CHECK_INT(asyncio_queue_put_nowait(&q, ITEM(2)), -EAGAIN); /* QueueFull */
    CHECK_INT(asyncio_queue_get_nowait(&q, &item), 0);
    CHECK_INT(ID(item), 1);
    CHECK_INT(asyncio_queue_get_nowait(&q, &item), -EAGAIN);
    /* NULL is an item like any other. */
    CHECK_INT(asyncio_queue_put_nowait(&q, NULL), 0);
    CHECK_INT(asyncio_queue_get_nowait(&q, &item), 0);
    CHECK_PTR(item, NULL);
    CHECK_INT(asyncio_queue_destroy(&q), 0);
    return 0;
}

static void test_nowait_variants_fail_with_eagain(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_nowait, NULL, NULL), 0);
}

static int main_sizes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t q, u;
    CHECK_INT(asyncio_queue_init(&q, 2), 0);
    CHECK_INT(asyncio_queue_init(&u, 0), 0);
    CHECK_INT(asyncio_queue_maxsize(&q), 2);
    CHECK_INT(asyncio_queue_maxsize(&u), 0);
    CHECK_INT(asyncio_queue_size(&q), 0);
    CHECK_INT(asyncio_queue_empty(&q), 1);
    CHECK_INT(asyncio_queue_full(&q), 0);
    CHECK_INT(asyncio_queue_put(&q, ITEM(1)), 0);
    CHECK_INT(asyncio_queue_size(&q), 1);
    CHECK_INT(asyncio_queue_empty(&q), 0);
    CHECK_INT(asyncio_queue_full(&q), 0);
    CHECK_INT(asyncio_queue_put(&q, ITEM(2)), 0);
    CHECK_INT(asyncio_queue_size(&q), 2);
    CHECK_INT(asyncio_queue_full(&q), 1);
    for (int i = 0; i < 1000; i++)
        CHECK_INT(asyncio_queue_put(&u, ITEM(i)), 0);
    CHECK_INT(asyncio_queue_full(&u), 0); /* unbounded: never full */
    CHECK_INT(asyncio_queue_size(&u), 1000);
    CHECK_INT(asyncio_queue_destroy(&q), 0);
    CHECK_INT(asyncio_queue_destroy(&u), 0);
    return 0;
}

static void test_size_full_empty_maxsize(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_sizes, NULL, NULL), 0);
}

/* ---- task_done and join ------------------------------------------------ */

static int worker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        void *item;
        int rc = asyncio_queue_get(&g_q, &item);
        if (rc < 0)
            return rc == -ESHUTDOWN ? 0 : rc;
        CHECK_INT(asyncio_sleep(0.001), 0);
        LOG("done%d", ID(item));
        CHECK_INT(asyncio_queue_task_done(&g_q), 0);
    }
}

static int joiner(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_queue_join(&g_q);
    LOG("%s:%s", (const char *)arg, qerr(rc));
    return rc;
}

static int main_join(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    CHECK_INT(asyncio_queue_join(&g_q), 0); /* nothing unfinished */
    CHECK_INT(asyncio_queue_task_done(&g_q), -EINVAL);
    for (int i = 1; i <= 3; i++)
        CHECK_INT(asyncio_queue_put(&g_q, ITEM(i)), 0);
    asyncio_task_t *j = tu_spawn(joiner, "other-join", NULL);
    asyncio_task_t *w[2] = {tu_spawn(worker, NULL, NULL), tu_spawn(worker, NULL, NULL)};
    LOG("join:%s", qerr(asyncio_queue_join(&g_q)));
    CHECK_INT(settle(j), 0);
    /* Called more times than items were put: ValueError. */
    CHECK_INT(asyncio_queue_task_done(&g_q), -EINVAL);
    /* join again: the count went back up, then down. */
    CHECK_INT(asyncio_queue_put(&g_q, ITEM(4)), 0);
    LOG("join:%s", qerr(asyncio_queue_join(&g_q)));
    CHECK_INT(asyncio_queue_shutdown(&g_q, 0), 0);
    CHECK_INT(settle(w[0]), 0);
    CHECK_INT(settle(w[1]), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_join_waits_until_every_item_is_done(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_join, NULL, NULL), 0);
    assert_log("done1 done2 done3 join:0 other-join:0 done4 join:0");
}

/* ---- shutdown ---------------------------------------------------------- */

static int main_shutdown_drains(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    CHECK_INT(asyncio_queue_put(&g_q, ITEM(1)), 0);
    CHECK_INT(asyncio_queue_put(&g_q, ITEM(2)), 0);
    CHECK_INT(asyncio_queue_shutdown(&g_q, 0), 0);
    LOG("put:%s", qerr(asyncio_queue_put(&g_q, ITEM(3))));
    LOG("put_nowait:%s", qerr(asyncio_queue_put_nowait(&g_q, ITEM(3))));
    void *item = NULL;
    for (int i = 0; i < 2; i++) {
        CHECK_INT(asyncio_queue_get(&g_q, &item), 0);
        LOG("got:%d", ID(item));
        CHECK_INT(asyncio_queue_task_done(&g_q), 0);
    }
    LOG("get:%s", qerr(asyncio_queue_get(&g_q, &item)));
    LOG("get_nowait:%s", qerr(asyncio_queue_get_nowait(&g_q, &item)));
    /* Nothing unfinished: join returns at once, even in an expired scope. */
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0), 0);
    LOG("join:%s", qerr(asyncio_queue_join(&g_q)));
    asyncio_timeout_exit(&scope);
    CHECK_INT(asyncio_queue_shutdown(&g_q, 1), 0); /* again: harmless */
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_shutdown_refuses_puts_and_gets_drain_first(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_shutdown_drains, NULL, NULL), 0);
    assert_log("put:ESHUTDOWN put_nowait:ESHUTDOWN got:1 got:2 get:ESHUTDOWN "
               "get_nowait:ESHUTDOWN join:0");
}

static int main_shutdown_immediate(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    for (int i = 1; i <= 3; i++)
        CHECK_INT(asyncio_queue_put(&g_q, ITEM(i)), 0);
    /* A consumer holds one item, not yet done. */
    void *item;
    CHECK_INT(asyncio_queue_get(&g_q, &item), 0);
    asyncio_task_t *j = tu_spawn(joiner, "join", NULL);
    tu_yield(1);
    CHECK_INT(asyncio_queue_shutdown(&g_q, 1), 0);
    LOG("size:%zu", asyncio_queue_size(&g_q));
    LOG("get:%s", qerr(asyncio_queue_get(&g_q, &item)));
    tu_yield(2);
    LOG("task_done"); /* the one held: now nothing is unfinished */
    CHECK_INT(asyncio_queue_task_done(&g_q), 0);
    CHECK_INT(asyncio_queue_task_done(&g_q), -EINVAL); /* dropped ones counted done */
    CHECK_INT(settle(j), 0);

    /* With nothing held, immediate shutdown releases join at once. */
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    for (int i = 1; i <= 3; i++)
        CHECK_INT(asyncio_queue_put(&g_q, ITEM(i)), 0);
    asyncio_task_t *js[2] = {tu_spawn(joiner, "j1", NULL), tu_spawn(joiner, "j2", NULL)};
    tu_yield(1);
    LOG("shutdown");
    CHECK_INT(asyncio_queue_shutdown(&g_q, 1), 0);
    CHECK_INT(settle(js[0]), 0);
    CHECK_INT(settle(js[1]), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_shutdown_immediate_drops_items_and_releases_join(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_shutdown_immediate, NULL, NULL), 0);
    assert_log("size:0 get:ESHUTDOWN task_done join:0 shutdown j1:0 j2:0");
}

static int main_shutdown_wakes_waiters(void *arg, void **result)
{
    (void)result;
    int immediate = *(int *)arg;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    asyncio_task_t *g[2] = {tu_spawn(getter, "g1", NULL), tu_spawn(getter, "g2", NULL)};
    tu_yield(1);
    LOG("shutdown");
    CHECK_INT(asyncio_queue_shutdown(&g_q, immediate), 0);
    int rcs[2];
    settle_all(2, g, rcs);
    CHECK_INT(rcs[0], -ESHUTDOWN);
    CHECK_INT(rcs[1], -ESHUTDOWN);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);

    /* Blocked putters: woken with -ESHUTDOWN, their items not inserted. */
    CHECK_INT(asyncio_queue_init(&g_q, 1), 0);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(0)), 0);
    asyncio_task_t *p[2] = {tu_spawn(putter_item, ITEM(1), NULL),
                            tu_spawn(putter_item, ITEM(2), NULL)};
    tu_yield(1);
    LOG("shutdown");
    CHECK_INT(asyncio_queue_shutdown(&g_q, immediate), 0);
    settle_all(2, p, rcs);
    CHECK_INT(rcs[0], -ESHUTDOWN);
    CHECK_INT(rcs[1], -ESHUTDOWN);
    log_drain(&g_q, "left");
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_shutdown_wakes_blocked_getters_and_putters(void **state)
{
    (void)state;
    int immediate = 0;
    assert_int_equal(tu_run(main_shutdown_wakes_waiters, &immediate, NULL), 0);
    assert_log("g1 g2 shutdown g1:ESHUTDOWN g2:ESHUTDOWN shutdown p1:ESHUTDOWN p2:ESHUTDOWN "
               "left:0");
    immediate = 1;
    assert_int_equal(tu_run(main_shutdown_wakes_waiters, &immediate, NULL), 0);
    assert_log("g1 g2 shutdown g1:ESHUTDOWN g2:ESHUTDOWN shutdown p1:ESHUTDOWN p2:ESHUTDOWN "
               "left:");
}

/* A getter woken by a put, shut down before it ran: it takes the item if
 * the shutdown left it there, else fails (as 3.13's, where the woken
 * getter looks at the queue again). */
static int main_woken_before_shutdown(void *arg, void **result)
{
    (void)result;
    int immediate = *(int *)arg;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    asyncio_task_t *g[2] = {tu_spawn(getter, "g1", NULL), tu_spawn(getter, "g2", NULL)};
    tu_yield(1);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(9)), 0);
    CHECK_INT(asyncio_queue_shutdown(&g_q, immediate), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), -EBUSY); /* woken, not resumed */
    int rcs[2];
    settle_all(2, g, rcs);
    CHECK_INT(rcs[0], immediate ? -ESHUTDOWN : 0);
    CHECK_INT(rcs[1], -ESHUTDOWN);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_shutdown_after_a_put_woke_a_getter(void **state)
{
    (void)state;
    int immediate = 0;
    assert_int_equal(tu_run(main_woken_before_shutdown, &immediate, NULL), 0);
    assert_log("g1 g2 g1:9 g2:ESHUTDOWN");
    immediate = 1;
    assert_int_equal(tu_run(main_woken_before_shutdown, &immediate, NULL), 0);
    assert_log("g1 g2 g1:ESHUTDOWN g2:ESHUTDOWN");
}

/* ---- cancellation and timeouts of single waits --------------------------- */

static int getter_then_wait(void *arg, void **result)
{
    asyncio_timeout_t *scope = arg;
    (void)result;
    void *item = NULL;
    if (scope)
        CHECK_INT(asyncio_timeout_enter(scope, INFINITY), 0);
    int rc = asyncio_queue_get(&g_q, &item);
    LOG("get:%s:%d", qerr(rc), ID(item));
    LOG("next:%s", qerr(asyncio_sleep(0)));
    if (scope)
        asyncio_timeout_exit(scope);
    return 0;
}

static int main_getter_cancel_after_wake(void *arg, void **result)
{
    (void)result;
    int use_timeout = *(int *)arg;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    asyncio_task_t *t = tu_spawn(getter_then_wait, use_timeout ? &scope : NULL, NULL);
    tu_yield(1);
    asyncio_task_t *t2 = tu_spawn(getter, "g2", NULL); /* waits behind it */
    tu_yield(1);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(7)), 0); /* wakes the first getter */
    if (use_timeout)
        CHECK_INT(asyncio_timeout_reschedule(&scope, 0), 0); /* its scope is over */
    else
        CHECK_INT(asyncio_task_cancel(t), 1); /* before it resumed */
    settle(t);
    CHECK_INT(asyncio_queue_shutdown(&g_q, 0), 0); /* g2 waits on, if g1 got it */
    settle(t2);
    CHECK_INT(asyncio_queue_size(&g_q), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

/* A getter woken by a put and cancelled before it ran takes nothing, and
 * passes the wake on: the next getter gets the item (asyncio's getter
 * wakes the next one when it is cancelled with items left). A timeout
 * scope that expires then ends only the next wait: its deadline's timer
 * comes after the getter's step. */
static void test_getter_cancelled_after_a_put_woke_it_leaves_the_item(void **state)
{
    (void)state;
    int use_timeout = 0;
    assert_int_equal(tu_run(main_getter_cancel_after_wake, &use_timeout, NULL), 0);
    assert_log("g2 get:ECANCELED:0 g2:7 next:0"); /* CPython 3.11: the same */
    use_timeout = 1;
    assert_int_equal(tu_run(main_getter_cancel_after_wake, &use_timeout, NULL), 0);
    assert_log("g2 get:0:7 next:ETIMEDOUT g2:ESHUTDOWN");
}

static int putter_then_wait(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_queue_put(&g_q, arg);
    LOG("put%d:%s", ID(arg), qerr(rc));
    LOG("next:%s", qerr(asyncio_sleep(0)));
    return 0;
}

static int main_putter_cancel_after_wake(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 1), 0);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(1)), 0);
    asyncio_task_t *t = tu_spawn(putter_then_wait, ITEM(2), NULL);
    tu_yield(1);
    void *item;
    CHECK_INT(asyncio_queue_get_nowait(&g_q, &item), 0); /* wakes the putter */
    CHECK_INT(asyncio_task_cancel(t), 1);
    settle(t);
    log_drain(&g_q, "left");
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

/* A putter woken by a get and cancelled before it ran inserts nothing,
 * as asyncio's (which passes the room on to the next putter). */
static void test_putter_cancelled_after_a_get_woke_it_puts_nothing(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_putter_cancel_after_wake, NULL, NULL), 0);
    assert_log("put2:ECANCELED next:0 left:");
}

static int main_cancel_before_wake(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    asyncio_task_t *g[2] = {tu_spawn(getter, "g1", NULL), tu_spawn(getter, "g2", NULL)};
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(g[0]), 1);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(5)), 0); /* goes to g2 */
    int rcs[2];
    settle_all(2, g, rcs);
    LOG("size:%zu", asyncio_queue_size(&g_q));

    /* The only getter cancelled: the item stays in the queue. */
    asyncio_task_t *t = tu_spawn(getter, "g3", NULL);
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(6)), 0);
    settle(t);
    log_drain(&g_q, "left");

    /* A cancelled putter inserts nothing; the room goes to the next. */
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    CHECK_INT(asyncio_queue_init(&g_q, 1), 0);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(1)), 0);
    asyncio_task_t *p[2] = {tu_spawn(putter_item, ITEM(2), NULL),
                            tu_spawn(putter_item, ITEM(3), NULL)};
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(p[0]), 1);
    void *item;
    CHECK_INT(asyncio_queue_get_nowait(&g_q, &item), 0);
    CHECK_INT(ID(item), 1);
    settle_all(2, p, rcs);
    log_drain(&g_q, "left");
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_waiter_cancelled_before_the_wake_takes_nothing(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cancel_before_wake, NULL, NULL), 0);
    assert_log("g1 g2 g1:ECANCELED g2:5 size:0 g3 g3:ECANCELED left:6 "
               "p2:ECANCELED p3:0 left:3");
}

static int main_timeouts(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_timeout_t scope;
    void *item = NULL;
    CHECK_INT(asyncio_queue_init(&g_q, 1), 0);
    CHECK_INT(asyncio_timeout_enter(&scope, 0.01), 0);
    LOG("get:%s", qerr(asyncio_queue_get(&g_q, &item)));
    LOG("exit:%s", qerr(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_queue_put(&g_q, ITEM(1)), 0);
    CHECK_INT(asyncio_timeout_enter(&scope, 0.01), 0);
    LOG("put:%s", qerr(asyncio_queue_put(&g_q, ITEM(2))));
    LOG("exit:%s", qerr(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_timeout_enter(&scope, 0.01), 0);
    LOG("join:%s", qerr(asyncio_queue_join(&g_q)));
    LOG("exit:%s", qerr(asyncio_timeout_exit(&scope)));
    /* In an expired scope, calls that need not wait still work. */
    CHECK_INT(asyncio_timeout_enter(&scope, 0), 0);
    LOG("get:%s", qerr(asyncio_queue_get(&g_q, &item)));
    LOG("put:%s", qerr(asyncio_queue_put(&g_q, ITEM(3))));
    LOG("put:%s", qerr(asyncio_queue_put(&g_q, ITEM(4))));
    LOG("exit:%s", qerr(asyncio_timeout_exit(&scope)));
    log_drain(&g_q, "left");
    asyncio_queue_task_done(&g_q);
    asyncio_queue_task_done(&g_q);
    CHECK_INT(asyncio_queue_task_done(&g_q), -EINVAL);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_timeout_scopes_end_waits(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_timeouts, NULL, NULL), 0);
    assert_log("get:ETIMEDOUT exit:ETIMEDOUT put:ETIMEDOUT exit:ETIMEDOUT join:ETIMEDOUT "
               "exit:ETIMEDOUT get:0 put:0 put:ETIMEDOUT exit:ETIMEDOUT left:3");
}

/* ---- the cancellation harness ------------------------------------------ */

/*
 * A victim task runs a script of queue operations on a queue of 2; a driver
 * task does, for each of the victim's waits in turn, what ends it (a put for
 * a get, a get for a put, draining for a join). In run k the victim's k-th
 * wait is cancelled (or its timeout scope made to expire), either before
 * the driver acts (the wait ends with nothing done), or just after (the
 * victim was woken and has not resumed yet: it takes nothing and passes
 * the wake on, as asyncio's), or just before in the same turn (the victim
 * is woken, has not resumed yet, and must be passed over). Every run ends by draining the queue and checks
 * that each item put was taken exactly once and that no waiter is left.
 * A run that gets stuck fails (after many idle turns) instead of hanging.
 */
enum op { OP_GET, OP_PUT, OP_JOIN, OP_PUT_NOWAIT };

static const enum op script[] = {
    OP_GET,                                  /* wait 1: empty */
    OP_PUT_NOWAIT, OP_PUT_NOWAIT, OP_PUT,    /* wait 2: full */
    OP_JOIN,                                 /* wait 3 */
    OP_GET,                                  /* wait 4 */
    OP_PUT_NOWAIT, OP_PUT_NOWAIT, OP_PUT,    /* wait 5 */
    OP_PUT,                                  /* wait 6 */
    OP_JOIN,                                 /* wait 7 */
    OP_GET,                                  /* wait 8 */
};
#define NSCRIPT (sizeof script / sizeof script[0])
#define NWAITS 8

enum trigger { TRIG_CANCEL, TRIG_TIMEOUT };
enum when { WHEN_BEFORE, WHEN_AFTER, WHEN_RACE };

#define MAXID 4096

struct harness {
    asyncio_queue_t q;
    enum trigger trig;
    enum when when;
    int k;                    /* the wait to hit; 0: none */
    asyncio_task_t *victim;
    asyncio_timeout_t scope;  /* around each wait of the victim */
    int reached;              /* the wait the victim is at (or past) */
    int returned;             /* the last wait the victim returned from */
    int serviced;             /* the last wait the driver acted for */
    int rc[NWAITS + 1];       /* what each wait returned */
    enum op kind[NWAITS + 1];
    int blocked[NWAITS + 1];  /* the driver acted before it returned */
    int put_count[MAXID];
    int got_count[MAXID];
    int next_victim_id, next_driver_id;
    int abort;                /* stuck: the victim stops at once */
};

static struct harness H;

static void got(struct harness *h, void *item)
{
    int id = ID(item);
    if (id > 0 && id < MAXID)
        h->got_count[id]++;
    else
        tu_fail_at(__FILE__, __LINE__, "unknown item %d", id);
    CHECK_INT(asyncio_queue_task_done(&h->q), 0);
}

static int victim(void *arg, void **result)
{
    struct harness *h = arg;
    (void)result;
    int w = 0;
    for (size_t i = 0; i < NSCRIPT; i++) {
        if (script[i] == OP_PUT_NOWAIT) {
            int id = h->next_victim_id++;
            int rc = asyncio_queue_put_nowait(&h->q, ITEM(id));
            if (rc == 0)
                h->put_count[id]++;
            else
                CHECK_INT(rc, -EAGAIN);
            continue;
        }
        w++;
        h->kind[w] = script[i];
        h->reached = w;
        if (h->trig == TRIG_TIMEOUT)
            CHECK_INT(asyncio_timeout_enter(&h->scope, INFINITY), 0);
        int rc;
        void *item = NULL;
        int id = 0;
        switch (script[i]) {
        case OP_GET:
            rc = asyncio_queue_get(&h->q, &item);
            break;
        case OP_PUT:
            id = h->next_victim_id++;
            rc = asyncio_queue_put(&h->q, ITEM(id));
            break;
        default:
            rc = asyncio_queue_join(&h->q);
            break;
        }
        h->blocked[w] = h->serviced >= w;
        if (h->trig == TRIG_TIMEOUT)
            asyncio_timeout_exit(&h->scope);
        h->rc[w] = rc;
        h->returned = w;
        if (rc == 0 && script[i] == OP_GET)
            got(h, item);
        if (rc == 0 && script[i] == OP_PUT)
            h->put_count[id]++;
        if (h->abort)
            break;
    }
    return 0;
}

static void trigger(struct harness *h)
{
    if (h->trig == TRIG_CANCEL)
        CHECK_INT(asyncio_task_cancel(h->victim), 1);
    else
        CHECK_INT(asyncio_timeout_reschedule(&h->scope, 0), 0);
}

/* What ends the victim's wait w. */
static void serve(struct harness *h, int w)
{
    void *item;
    switch (h->kind[w]) {
    case OP_GET: {
        int id = h->next_driver_id++;
        int rc = asyncio_queue_put_nowait(&h->q, ITEM(id));
        if (rc == 0)
            h->put_count[id]++;
        else
            CHECK_INT(rc, -EAGAIN);
        break;
    }
    case OP_PUT:
        if (asyncio_queue_get_nowait(&h->q, &item) == 0)
            got(h, item);
        break;
    default:
        while (asyncio_queue_get_nowait(&h->q, &item) == 0)
            got(h, item);
        break;
    }
    h->serviced = w;
}

/* Yield until *what >= target; 0, or -EIO (and a failure) if that never
 * happens. */
static int spin_until(struct harness *h, const int *what, int target)
{
    for (long n = 0; *what < target; n++) {
        if (n == 100000) {
            tu_fail_at(__FILE__, __LINE__, "k=%d: stuck waiting for %d", h->k, target);
            h->abort = 1;
            return -EIO;
        }
        CHECK_INT(asyncio_sleep(0), 0);
    }
    return 0;
}

static int driver(void *arg, void **result)
{
    struct harness *h = arg;
    (void)result;
    for (int w = 1; w <= NWAITS; w++) {
        if (spin_until(h, &h->reached, w) < 0)
            return -EIO;
        if (w == h->k && h->when == WHEN_BEFORE) {
            trigger(h);
            if (spin_until(h, &h->returned, w) < 0)
                return -EIO;
        }
        if (w == h->k && h->when == WHEN_RACE)
            trigger(h);
        serve(h, w);
        if (w == h->k && h->when == WHEN_AFTER)
            trigger(h);
    }
    return 0;
}

static int main_harness(void *arg, void **result)
{
    struct harness *h = arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&h->q, 2), 0);
    asyncio_task_t *d;
    CHECK_INT(asyncio_create_task(&h->victim, victim, h, "victim"), 0);
    CHECK_INT(asyncio_create_task(&d, driver, h, "driver"), 0);
    CHECK_INT(asyncio_await(d, NULL), 0);
    for (long n = 0; !asyncio_future_done(h->victim) && n < 100000; n++)
        CHECK_INT(asyncio_sleep(0), 0);
    if (!asyncio_future_done(h->victim)) {
        tu_fail_at(__FILE__, __LINE__, "k=%d: the victim is stuck", h->k);
        h->abort = 1;
        asyncio_task_cancel(h->victim);
    }
    asyncio_await(h->victim, NULL);
    asyncio_task_release(h->victim);
    asyncio_task_release(d);

    /* Whatever is left in the queue counts as delivered. */
    void *item;
    while (asyncio_queue_get_nowait(&h->q, &item) == 0)
        got(h, item);
    for (int id = 1; id < MAXID; id++) {
        if (h->put_count[id] > 1 || h->put_count[id] != h->got_count[id])
            tu_fail_at(__FILE__, __LINE__, "k=%d item %d put %d times, taken %d times", h->k,
                       id, h->put_count[id], h->got_count[id]);
    }
    /* Nothing unfinished: join does not wait, even in an expired scope. */
    asyncio_timeout_t s;
    CHECK_INT(asyncio_timeout_enter(&s, 0), 0);
    CHECK_INT(asyncio_queue_join(&h->q), 0);
    CHECK_INT(asyncio_timeout_exit(&s), 0);
    CHECK_INT(asyncio_queue_destroy(&h->q), 0); /* -EBUSY if a waiter were left */

    /* What each wait returned. */
    int trig_rc = h->trig == TRIG_CANCEL ? -ECANCELED : -ETIMEDOUT;
    for (int w = 1; w <= NWAITS; w++) {
        if (h->k == 0 || w < h->k) {
            CHECK_INT(h->rc[w], 0);
            CHECK(h->blocked[w]); /* each really waited */
        }
    }
    if (h->k > 0) {
        int w = h->k;
        if (h->when == WHEN_BEFORE || h->trig == TRIG_CANCEL)
            CHECK_INT(h->rc[w], trig_rc); /* before the driver acted, or
                                             after it woke the victim and
                                             before it ran: as in asyncio,
                                             nothing taken, the wake passed on */
        else
            CHECK_INT(h->rc[w], 0); /* woken; a timeout scope ends only at
                                       the next turn */
    }
    return 0;
}

static void run_harness(enum trigger trig, enum when when)
{
    for (int k = 0; k <= NWAITS; k++) {
        memset(&H, 0, sizeof H);
        H.trig = trig;
        H.when = when;
        H.k = k;
        H.next_victim_id = 1;
        H.next_driver_id = 2001;
        assert_int_equal(tu_run(main_harness, &H, NULL), 0);
    }
}

static void test_cancel_at_each_wait_before_the_wake(void **state)
{
    (void)state;
    run_harness(TRIG_CANCEL, WHEN_BEFORE);
}

static void test_cancel_at_each_wait_after_the_wake(void **state)
{
    (void)state;
    run_harness(TRIG_CANCEL, WHEN_AFTER);
}

static void test_cancel_at_each_wait_just_before_the_wake(void **state)
{
    (void)state;
    run_harness(TRIG_CANCEL, WHEN_RACE);
}

static void test_timeout_at_each_wait_before_the_wake(void **state)
{
    (void)state;
    run_harness(TRIG_TIMEOUT, WHEN_BEFORE);
}

static void test_timeout_at_each_wait_after_the_wake(void **state)
{
    (void)state;
    run_harness(TRIG_TIMEOUT, WHEN_AFTER);
}

/* ---- stress ------------------------------------------------------------ */

enum { S_PRODUCERS = 4, S_CONSUMERS = 4, S_ITEMS = 20000, S_PER = S_ITEMS / S_PRODUCERS };

struct slot {
    asyncio_task_t *task; /* the consumer running now */
    int in_wait;          /* it is parked in get (or put) */
};

static struct {
    asyncio_queue_t q;
    unsigned char got[S_ITEMS + 1];
    int total, dup, cancels, respawns, put_cancels;
    struct slot cons[S_CONSUMERS];
    struct slot prod[S_PRODUCERS];
    int stop;
    uint32_t rng;
} S;

static uint32_t rnd(void)
{
    S.rng ^= S.rng << 13;
    S.rng ^= S.rng >> 17;
    S.rng ^= S.rng << 5;
    return S.rng;
}

static int stress_producer(void *arg, void **result)
{
    int p = ID(arg);
    (void)result;
    for (int i = 0; i < S_PER; i++) {
        int id = p * S_PER + i + 1;
        int rc;
        do {
            S.prod[p].in_wait = 1;
            rc = asyncio_queue_put(&S.q, ITEM(id));
            S.prod[p].in_wait = 0;
            if (rc == -ECANCELED)
                S.put_cancels++;
        } while (rc == -ECANCELED); /* not put: try again */
        CHECK_INT(rc, 0);
        if (rnd() % 8 == 0 && asyncio_sleep(0) == -ECANCELED)
            S.put_cancels++;
    }
    /* A cancellation that came after the last put was done: take it. */
    while (asyncio_sleep(0) == -ECANCELED)
        S.put_cancels++;
    return 0;
}

static int stress_consumer(void *arg, void **result)
{
    struct slot *s = arg;
    (void)result;
    for (;;) {
        void *item;
        s->in_wait = 1;
        int rc = asyncio_queue_get(&S.q, &item);
        s->in_wait = 0;
        if (rc == -ESHUTDOWN)
            return 0;
        if (rc < 0)
            return rc;
        int id = ID(item);
        if (id < 1 || id > S_ITEMS || S.got[id])
            S.dup++;
        else
            S.got[id] = 1;
        S.total++;
        CHECK_INT(asyncio_queue_task_done(&S.q), 0);
        if (rnd() % 4 == 0) {
            rc = asyncio_sleep(0);
            if (rc < 0)
                return rc;
        }
    }
}

/* Runs consumers in a slot, starting a new one whenever one is cancelled. */
static int consumer_slot(void *arg, void **result)
{
    struct slot *s = arg;
    (void)result;
    for (;;) {
        CHECK_INT(asyncio_create_task(&s->task, stress_consumer, s, NULL), 0);
        int rc = asyncio_await(s->task, NULL);
        asyncio_task_release(s->task);
        s->task = NULL;
        if (rc != -ECANCELED) {
            CHECK_INT(rc, 0);
            return 0;
        }
        S.respawns++;
    }
}

static int canceller(void *arg, void **result)
{
    asyncio_task_t **producers = arg;
    (void)result;
    while (!S.stop) {
        int n = (int)(rnd() % 3) + 1;
        for (int i = 0; i < n; i++)
            CHECK_INT(asyncio_sleep(0), 0);
        struct slot *c = &S.cons[rnd() % S_CONSUMERS];
        if (c->task && c->in_wait) {
            asyncio_task_cancel(c->task);
            S.cancels++;
        }
        int p = (int)(rnd() % S_PRODUCERS);
        if (rnd() % 4 == 0 && S.prod[p].in_wait)
            asyncio_task_cancel(producers[p]);
    }
    return 0;
}

static int main_stress(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&S.q, 3), 0);
    asyncio_task_t *prod[S_PRODUCERS], *slots[S_CONSUMERS], *canc;
    for (int i = 0; i < S_CONSUMERS; i++)
        CHECK_INT(asyncio_create_task(&slots[i], consumer_slot, &S.cons[i], NULL), 0);
    for (int i = 0; i < S_PRODUCERS; i++)
        CHECK_INT(asyncio_create_task(&prod[i], stress_producer, ITEM(i), NULL), 0);
    CHECK_INT(asyncio_create_task(&canc, canceller, prod, NULL), 0);
    CHECK_INT(asyncio_gather(S_PRODUCERS, prod, NULL, NULL, 0), 0);
    /* A lost item would make join wait forever: first let the consumers
     * catch up (they mark each item done before they yield), failing after
     * many idle turns. */
    for (long n = 0; S.total < S_ITEMS && n < 100000; n++)
        CHECK_INT(asyncio_sleep(0), 0);
    if (S.total < S_ITEMS) {
        tu_fail_at(__FILE__, __LINE__, "%d items of %d taken", S.total, S_ITEMS);
    } else {
        CHECK_INT(asyncio_queue_join(&S.q), 0);
    }
    S.stop = 1;
    CHECK_INT(asyncio_await(canc, NULL), 0);
    CHECK_INT(asyncio_queue_shutdown(&S.q, 0), 0);
    for (int i = 0; i < S_CONSUMERS; i++)
        CHECK_INT(settle(slots[i]), 0);
    for (int i = 0; i < S_PRODUCERS; i++)
        asyncio_task_release(prod[i]);
    asyncio_task_release(canc);
    CHECK_INT(asyncio_queue_size(&S.q), 0);
    CHECK_INT(asyncio_queue_destroy(&S.q), 0);
    return 0;
}

static void test_stress_producers_consumers_with_cancellations(void **state)
{
    (void)state;
    memset(&S, 0, sizeof S);
    S.rng = 0x9e3779b9u;
    assert_int_equal(tu_run(main_stress, NULL, NULL), 0);
    assert_int_equal(S.dup, 0);
    assert_int_equal(S.total, S_ITEMS);
    for (int id = 1; id <= S_ITEMS; id++)
        assert_int_equal(S.got[id], 1);
    assert_true(S.cancels > 100);
    assert_true(S.put_cancels > 10);
    assert_true(S.respawns > 50);
}

/* ---- debugging ---------------------------------------------------------- */

static int main_waiting_on(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_queue_init(&g_q, 1), 0);
    asyncio_task_t *g = tu_spawn(getter, "g", NULL);
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(g), "queue get");
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(1)), 0);
    CHECK_INT(settle(g), 0);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(2)), 0);
    asyncio_task_t *p = tu_spawn(putter_item, ITEM(3), NULL);
    asyncio_task_t *j = tu_spawn(joiner, "j", NULL);
    tu_yield(1);
    CHECK_STR(asyncio_task_waiting_on(p), "queue put");
    CHECK_STR(asyncio_task_waiting_on(j), "queue join");
    CHECK_INT(asyncio_queue_shutdown(&g_q, 1), 0);
    CHECK_INT(asyncio_queue_task_done(&g_q), 0); /* item 1 */
    CHECK_INT(settle(p), -ESHUTDOWN);
    CHECK_INT(settle(j), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

static void test_waiting_tasks_say_what_they_wait_for(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_waiting_on, NULL, NULL), 0);
    assert_log("g g:1 p3:ESHUTDOWN j:0");
}

/* ---- misuse ------------------------------------------------------------ */

static int cmp_dummy(const void *a, const void *b)
{
    (void)a;
    (void)b;
    return 0;
}

static void cb_waits(void *arg)
{
    asyncio_queue_t *q = arg;
    void *item;
    CHECK_INT(asyncio_queue_put(q, ITEM(1)), -EPERM);
    CHECK_INT(asyncio_queue_get(q, &item), -EPERM);
    CHECK_INT(asyncio_queue_join(q), -EPERM);
    /* What never waits works from a callback. */
    CHECK_INT(asyncio_queue_put_nowait(q, ITEM(1)), 0);
    CHECK_INT(asyncio_queue_get_nowait(q, &item), 0);
    CHECK_INT(asyncio_queue_task_done(q), 0);
    LOG("cb");
}

static int main_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *item;
    CHECK_INT(asyncio_queue_init(NULL, 0), -EINVAL);
    CHECK_INT(asyncio_lifo_queue_init(NULL, 0), -EINVAL);
    CHECK_INT(asyncio_priority_queue_init(NULL, 0, cmp_dummy), -EINVAL);
    CHECK_INT(asyncio_priority_queue_init(&g_q, 0, NULL), -EINVAL);
    CHECK_INT(asyncio_queue_destroy(NULL), -EINVAL);
    CHECK_INT(asyncio_queue_put(NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_queue_get(NULL, &item), -EINVAL);
    CHECK_INT(asyncio_queue_put_nowait(NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_queue_get_nowait(NULL, &item), -EINVAL);
    CHECK_INT(asyncio_queue_task_done(NULL), -EINVAL);
    CHECK_INT(asyncio_queue_join(NULL), -EINVAL);
    CHECK_INT(asyncio_queue_shutdown(NULL, 0), -EINVAL);
    CHECK_INT(asyncio_queue_size(NULL), 0);
    CHECK_INT(asyncio_queue_maxsize(NULL), 0);
    CHECK_INT(asyncio_queue_full(NULL), -EINVAL);
    CHECK_INT(asyncio_queue_empty(NULL), -EINVAL);

    CHECK_INT(asyncio_queue_init(&g_q, 0), 0);
    CHECK_INT(asyncio_queue_get(&g_q, NULL), -EINVAL);
    CHECK_INT(asyncio_queue_get_nowait(&g_q, NULL), -EINVAL);
    CHECK_INT(asyncio_call_soon(cb_waits, &g_q, NULL), 0);
    tu_yield(2);

    /* A pending cancellation is reported only by a call that would wait. */
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    CHECK_INT(asyncio_queue_put(&g_q, ITEM(1)), 0);
    CHECK_INT(asyncio_queue_get(&g_q, &item), 0);
    CHECK_INT(asyncio_queue_join(&g_q), -ECANCELED);
    CHECK_INT(asyncio_queue_task_done(&g_q), 0);
    CHECK_INT(asyncio_queue_join(&g_q), 0);
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    CHECK_INT(asyncio_queue_get(&g_q, &item), -ECANCELED);

    /* Destroying a queue tasks wait on: -EBUSY, also for a waiter woken by
     * a put that has not resumed yet. */
    asyncio_task_t *t = tu_spawn(getter, "g", NULL);
    tu_yield(1);
    CHECK_INT(asyncio_queue_destroy(&g_q), -EBUSY);
    CHECK_INT(asyncio_queue_put_nowait(&g_q, ITEM(3)), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), -EBUSY);
    CHECK_INT(settle(t), 0);
    CHECK_INT(asyncio_queue_destroy(&g_q), 0);
    return 0;
}

/* Destroy says 0 only once no task will touch the queue again, so the
 * program may free it at once: here a getter cancelled just before the
 * queue shut down is still on its way out. On the heap: under ASan a use
 * after free would be reported. */
static int heap_getter(void *arg, void **result)
{
    void *item;
    (void)result;
    return asyncio_queue_get(arg, &item);
}

static int main_destroy_then_free(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_queue_t *q = malloc(sizeof *q);
    CHECK_INT(asyncio_queue_init(q, 1), 0);
    asyncio_task_t *ts[2] = {tu_spawn(heap_getter, q, NULL), tu_spawn(heap_getter, q, NULL)};
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(ts[0]), 1); /* woken, not resumed */
    CHECK_INT(asyncio_queue_shutdown(q, 0), 0);
    int rc = -EBUSY;
    for (int i = 0; i < 10 && rc == -EBUSY; i++)
        if ((rc = asyncio_queue_destroy(q)) == -EBUSY)
            tu_yield(1);
    CHECK_INT(rc, 0);
    free(q);
    CHECK_INT(asyncio_await(ts[0], NULL), -ECANCELED);
    CHECK_INT(asyncio_await(ts[1], NULL), -ESHUTDOWN);
    asyncio_task_release(ts[0]);
    asyncio_task_release(ts[1]);
    return 0;
}

static void test_destroy_only_when_no_waiter_touches_it_again(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_destroy_then_free, NULL, NULL), 0);
}

static void test_misuse_gets_error_codes(void **state)
{
    (void)state;
    /* Outside a loop: waiting calls refuse, the rest works. */
    asyncio_queue_t q;
    void *item;
    assert_int_equal(asyncio_queue_init(&q, 1), 0);
    assert_int_equal(asyncio_queue_put(&q, ITEM(1)), -EPERM);
    assert_int_equal(asyncio_queue_get(&q, &item), -EPERM);
    assert_int_equal(asyncio_queue_join(&q), -EPERM);
    assert_int_equal(asyncio_queue_put_nowait(&q, ITEM(1)), 0);
    assert_int_equal(asyncio_queue_put(&q, ITEM(2)), -EPERM);
    assert_int_equal(asyncio_queue_get_nowait(&q, &item), 0);
    assert_ptr_equal(item, ITEM(1));
    assert_int_equal(asyncio_queue_task_done(&q), 0);
    assert_int_equal(asyncio_queue_task_done(&q), -EINVAL);
    assert_int_equal(asyncio_queue_destroy(&q), 0);

    assert_int_equal(tu_run(main_misuse, NULL, NULL), 0);
    assert_log("cb g g:3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_lifo_order),
        cmocka_unit_test(test_priority_order_keeps_insertion_order_among_equals),
        cmocka_unit_test(test_ring_buffer_grows_in_order),
        cmocka_unit_test(test_bounded_put_blocks_until_a_get),
        cmocka_unit_test(test_get_blocks_until_a_put),
        cmocka_unit_test(test_several_getters_are_served_in_order),
        cmocka_unit_test(test_several_putters_are_served_in_order),
        cmocka_unit_test(test_nowait_variants_fail_with_eagain),
        cmocka_unit_test(test_size_full_empty_maxsize),
        cmocka_unit_test(test_join_waits_until_every_item_is_done),
        cmocka_unit_test(test_shutdown_refuses_puts_and_gets_drain_first),
        cmocka_unit_test(test_shutdown_immediate_drops_items_and_releases_join),
        cmocka_unit_test(test_shutdown_wakes_blocked_getters_and_putters),
        cmocka_unit_test(test_shutdown_after_a_put_woke_a_getter),
        cmocka_unit_test(test_getter_cancelled_after_a_put_woke_it_leaves_the_item),
        cmocka_unit_test(test_putter_cancelled_after_a_get_woke_it_puts_nothing),
        cmocka_unit_test(test_waiter_cancelled_before_the_wake_takes_nothing),
        cmocka_unit_test(test_timeout_scopes_end_waits),
        cmocka_unit_test(test_cancel_at_each_wait_before_the_wake),
        cmocka_unit_test(test_cancel_at_each_wait_after_the_wake),
        cmocka_unit_test(test_cancel_at_each_wait_just_before_the_wake),
        cmocka_unit_test(test_timeout_at_each_wait_before_the_wake),
        cmocka_unit_test(test_timeout_at_each_wait_after_the_wake),
        cmocka_unit_test(test_stress_producers_consumers_with_cancellations),
        cmocka_unit_test(test_waiting_tasks_say_what_they_wait_for),
        cmocka_unit_test(test_misuse_gets_error_codes),
        cmocka_unit_test(test_destroy_only_when_no_waiter_touches_it_again),
    };
    return tu_run_group_tests_name("queue", tests, NULL, NULL);
}
