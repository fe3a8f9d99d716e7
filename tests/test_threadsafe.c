/*
 * The loop as other threads see it (<asyncio/thread.h>): the running loop's
 * handle, its references, and asyncio_call_soon_threadsafe():
 *   - callbacks from another thread run in the loop's thread, in the order
 *     each thread made them, and wake a loop asleep with nothing else to
 *     wake it, or one that never sleeps and watches no fd;
 *   - from the loop's own thread, in order with asyncio_call_soon()'s;
 *   - a closed loop refuses (-ESHUTDOWN) and calls neither function; a
 *     callback accepted before the close runs or is released, once, before
 *     asyncio_run() returns;
 *   - several threads posting at once, and racing with the close: every
 *     call is refused, or run or released exactly once (run under TSan in
 *     CI);
 *   - more posts than the inbox's ring holds, from several threads while
 *     the loop is blocked: each thread's still run in its order, and at a
 *     close they are released in the order posted.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Every wait on another thread here is bounded by this many seconds. */
#define WAIT_S 10.0

/* ---- the handle ----------------------------------------------------------- */

static asyncio_loop_t *seen_loop;

static int main_handle(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_loop_t *l = asyncio_get_running_loop();
    CHECK(l != NULL);
    CHECK_PTR(asyncio_get_running_loop(), l);
    CHECK_INT(asyncio_loop_is_closed(l), 0);
    CHECK_PTR(asyncio_loop_ref(l), l);
    seen_loop = l;
    return 0;
}

static void test_running_loop_handle_outlives_the_loop_while_referenced(void **state)
{
    (void)state;
    assert_null(asyncio_get_running_loop());
    assert_int_equal(tu_run(main_handle, NULL, NULL), 0);
    assert_non_null(seen_loop);
    assert_int_equal(asyncio_loop_is_closed(seen_loop), 1);
    assert_null(asyncio_get_running_loop());
    asyncio_loop_unref(seen_loop);
    seen_loop = NULL;
}

static int count_calls;
static void count_cb(void *arg)
{
    (void)arg;
    count_calls++;
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_int_equal(asyncio_call_soon_threadsafe(NULL, count_cb, NULL, NULL), -EINVAL);
    assert_int_equal(asyncio_loop_is_closed(NULL), -EINVAL);
    assert_null(asyncio_loop_ref(NULL));
    asyncio_loop_unref(NULL);
}

/* ---- from another thread -------------------------------------------------- */

#define N_ORDERED 5000

struct ordered {
    asyncio_loop_t *loop;
    pthread_t loop_thread;
    asyncio_future_t *all_done;
    int next;          /* the next sequence number expected (loop's thread) */
    int wrong_thread, out_of_order, post_errors;
};

struct seq_cb {
    struct ordered *o;
    int seq;
};
static struct seq_cb seqs[N_ORDERED];

static void seq_run(void *arg)
{
    struct seq_cb *c = arg;
    struct ordered *o = c->o;
    if (!pthread_equal(pthread_self(), o->loop_thread))
        o->wrong_thread++;
    if (c->seq != o->next)
        o->out_of_order++;
    o->next = c->seq + 1;
    if (c->seq == N_ORDERED - 1)
        asyncio_future_set_result(o->all_done, NULL);
}

static void *post_in_order(void *arg)
{
    struct ordered *o = arg;
    for (int i = 0; i < N_ORDERED; i++) {
        seqs[i] = (struct seq_cb){o, i};
        if (asyncio_call_soon_threadsafe(o->loop, seq_run, &seqs[i], NULL) != 0)
            o->post_errors++;
    }
    return NULL;
}

static int main_ordered(void *arg, void **result)
{
    (void)result;
    struct ordered *o = arg;
    o->loop = asyncio_get_running_loop();
    o->loop_thread = pthread_self();
    o->all_done = tu_future();
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, post_in_order, o), 0);
    /* The loop sleeps with nothing but the thread to wake it. */
    CHECK_INT(asyncio_wait_for(o->all_done, WAIT_S, NULL), 0);
    pthread_join(th, NULL);
    asyncio_future_release(o->all_done);
    return 0;
}

static void test_callbacks_from_a_thread_run_in_the_loop_in_order(void **state)
{
    (void)state;
    struct ordered o = {0};
    assert_int_equal(tu_run(main_ordered, &o, NULL), 0);
    assert_int_equal(o.post_errors, 0);
    assert_int_equal(o.next, N_ORDERED);
    assert_int_equal(o.wrong_thread, 0);
    assert_int_equal(o.out_of_order, 0);
}

/* A loop that never sleeps and watches no fd still takes what is posted. */
struct spinning {
    asyncio_loop_t *loop;
    atomic_int started;
    bool flag; /* set by the callback, in the loop's thread */
};

static void set_flag(void *arg)
{
    ((struct spinning *)arg)->flag = true;
}

static void *post_flag(void *arg)
{
    struct spinning *s = arg;
    while (!atomic_load(&s->started))
        sched_yield();
    asyncio_call_soon_threadsafe(s->loop, set_flag, s, NULL);
    return NULL;
}

static int main_spinning(void *arg, void **result)
{
    (void)result;
    struct spinning *s = arg;
    s->loop = asyncio_get_running_loop();
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, post_flag, s), 0);
    atomic_store(&s->started, 1);
    double give_up = asyncio_loop_time() + WAIT_S;
    while (!s->flag && asyncio_loop_time() < give_up)
        CHECK_INT(asyncio_sleep(0), 0);
    CHECK(s->flag);
    pthread_join(th, NULL);
    return 0;
}

static void test_a_loop_that_never_sleeps_takes_posts(void **state)
{
    (void)state;
    struct spinning s = {0};
    assert_int_equal(tu_run(main_spinning, &s, NULL), 0);
    assert_true(s.flag);
}

/* ---- from the loop's own thread ------------------------------------------ */

static void log_cb(void *arg)
{
    LOG("%s", (const char *)arg);
}

static void log_release(void *arg)
{
    LOG("released %s", (const char *)arg);
}

static int main_own_thread(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_loop_t *l = asyncio_get_running_loop();
    CHECK_INT(asyncio_call_soon(log_cb, "A", NULL), 0);
    CHECK_INT(asyncio_call_soon_threadsafe(l, log_cb, "B", log_release), 0);
    CHECK_INT(asyncio_call_soon(log_cb, "C", NULL), 0);
    CHECK_INT(asyncio_call_soon_threadsafe(l, log_cb, "D", NULL), 0);
    LOG("posted");
    tu_yield(1);
    LOG("yielded");
    return 0;
}

static void test_own_thread_posts_run_in_order_with_call_soon(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_own_thread, NULL, NULL), 0);
    assert_log("posted A B C D yielded");
}

/* ---- the close ------------------------------------------------------------ */

struct closing {
    asyncio_loop_t *loop;
    bool from_thread;
};

static void *post_late(void *arg)
{
    struct closing *c = arg;
    if (asyncio_call_soon_threadsafe(c->loop, log_cb, "late", log_release) != 0)
        LOG("refused");
    return NULL;
}

/* Runs in the loop's last batch, after every task ended (a done callback
 * of the last task the close cancels): what it posts is never run, and
 * must be released. */
static void last_callback(asyncio_future_t *main_task, void *arg)
{
    (void)main_task;
    struct closing *c = arg;
    LOG("last");
    if (c->from_thread) {
        pthread_t th;
        if (pthread_create(&th, NULL, post_late, c) == 0)
            pthread_join(th, NULL);
    } else {
        post_late(c);
    }
}

static int sleep_forever(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(INFINITY);
}

static int main_closing(void *arg, void **result)
{
    (void)result;
    struct closing *c = arg;
    c->loop = asyncio_loop_ref(asyncio_get_running_loop());
    asyncio_task_t *t = tu_spawn(sleep_forever, NULL, "left");
    CHECK_INT(asyncio_future_add_done_callback(t, last_callback, c), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_posts_the_loop_never_ran_are_released_at_close(void **state)
{
    (void)state;
    for (int from_thread = 0; from_thread < 2; from_thread++) {
        struct closing c = {.from_thread = from_thread};
        assert_int_equal(tu_run(main_closing, &c, NULL), 0);
        assert_log("last released late");
        /* Closed: refused, and neither function is called. */
        assert_int_equal(asyncio_call_soon_threadsafe(c.loop, log_cb, "after", log_release),
                         -ESHUTDOWN);
        assert_log("last released late");
        asyncio_loop_unref(c.loop);
    }
}

/* ---- many threads, and the close racing with them ----------------------- */

#define POSTERS 4
#define POSTS_EACH 20000

struct stress {
    asyncio_loop_t *loop;
    atomic_int accepted, refused, ran, released, failed;
    atomic_int go;
    bool stop_early; /* the main task returns while the threads post */
    pthread_t threads[POSTERS];
};

static void stress_run(void *arg)
{
    atomic_fetch_add(&((struct stress *)arg)->ran, 1);
}

static void stress_release(void *arg)
{
    atomic_fetch_add(&((struct stress *)arg)->released, 1);
}

static void *stress_poster(void *arg)
{
    struct stress *s = arg;
    while (!atomic_load(&s->go))
        sched_yield();
    for (int i = 0; i < POSTS_EACH; i++) {
        int rc = asyncio_call_soon_threadsafe(s->loop, stress_run, s, stress_release);
        if (rc == 0)
            atomic_fetch_add(&s->accepted, 1);
        else if (rc == -ESHUTDOWN)
            atomic_fetch_add(&s->refused, 1);
        else
            atomic_fetch_add(&s->failed, 1);
    }
    return NULL;
}

static int main_stress(void *arg, void **result)
{
    (void)result;
    struct stress *s = arg;
    s->loop = asyncio_loop_ref(asyncio_get_running_loop()); /* the threads' */
    for (int i = 0; i < POSTERS; i++)
        CHECK_INT(pthread_create(&s->threads[i], NULL, stress_poster, s), 0);
    atomic_store(&s->go, 1);
    if (s->stop_early) {
        tu_yield(10);
        return 0; /* the loop closes while they post */
    }
    double give_up = asyncio_loop_time() + WAIT_S;
    while (atomic_load(&s->ran) < POSTERS * POSTS_EACH && asyncio_loop_time() < give_up)
        CHECK_INT(asyncio_sleep(0.001), 0);
    return 0;
}

static void run_stress(bool stop_early)
{
    struct stress s = {.stop_early = stop_early};
    assert_int_equal(tu_run(main_stress, &s, NULL), 0);
    /* Everything accepted was run or released before asyncio_run()
     * returned; what comes now is refused. */
    int ran = atomic_load(&s.ran), released = atomic_load(&s.released);
    for (int i = 0; i < POSTERS; i++)
        pthread_join(s.threads[i], NULL);
    asyncio_loop_unref(s.loop);
    assert_int_equal(atomic_load(&s.failed), 0);
    assert_int_equal(atomic_load(&s.accepted) + atomic_load(&s.refused), POSTERS * POSTS_EACH);
    assert_int_equal(atomic_load(&s.accepted), ran + released);
    assert_int_equal(atomic_load(&s.ran), ran);
    assert_int_equal(atomic_load(&s.released), released);
    if (!stop_early) {
        assert_int_equal(ran, POSTERS * POSTS_EACH);
        assert_int_equal(released, 0);
    }
}

static void test_many_threads_post_at_once(void **state)
{
    (void)state;
    run_stress(false);
}

static void test_posts_racing_with_the_close_are_run_released_or_refused(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++)
        run_stress(true);
}


/* ---- more than the inbox's ring holds ------------------------------------- */

/* The inbox is a ring of 1024 posts (src/thread.h), then an overflow: posts
 * from several threads while the loop cannot take fill both, and each
 * thread's posts still run in the order it made them, through the ring,
 * the overflow and the ring again. */
#define RING_POSTERS 3
#define RING_POSTS 3000 /* each: the first half while the loop is blocked */

struct ringed {
    asyncio_loop_t *loop;
    pthread_t loop_thread;
    atomic_int first_halves_done, go;
    int next[RING_POSTERS], ran, out_of_order, wrong_thread, post_errors;
};

struct ringed_cb {
    struct ringed *r;
    int thread, seq;
} ringed_cbs[RING_POSTERS][RING_POSTS];

static void ringed_run(void *arg)
{
    struct ringed_cb *c = arg;
    struct ringed *r = c->r;
    if (c->seq != r->next[c->thread])
        r->out_of_order++;
    r->next[c->thread] = c->seq + 1;
    if (!pthread_equal(pthread_self(), r->loop_thread))
        r->wrong_thread++;
    /* Now and then a slow one, so that the loop falls behind, the ring
     * fills and empties, and takes meet posts going to either. */
    if (++r->ran % 97 == 0)
        for (volatile int k = 0; k < 2000; k++)
            ;
}

struct ringed_poster {
    struct ringed *r;
    int thread;
    atomic_int errors;
};

static void *ringed_post(void *arg)
{
    struct ringed_poster *p = arg;
    struct ringed *r = p->r;
    while (!atomic_load(&r->go))
        sched_yield();
    for (int i = 0; i < RING_POSTS; i++) {
        if (i == RING_POSTS / 2)
            atomic_fetch_add(&r->first_halves_done, 1);
        struct ringed_cb *c = &ringed_cbs[p->thread][i];
        *c = (struct ringed_cb){r, p->thread, i};
        if (asyncio_call_soon_threadsafe(r->loop, ringed_run, c, NULL) != 0)
            atomic_fetch_add(&p->errors, 1);
    }
    return NULL;
}

static int main_ringed(void *arg, void **result)
{
    (void)result;
    struct ringed *r = arg;
    r->loop = asyncio_get_running_loop();
    r->loop_thread = pthread_self();
    pthread_t th[RING_POSTERS];
    struct ringed_poster p[RING_POSTERS];
    for (int i = 0; i < RING_POSTERS; i++) {
        p[i] = (struct ringed_poster){.r = r, .thread = i};
        CHECK_INT(pthread_create(&th[i], NULL, ringed_post, &p[i]), 0);
    }
    /* Block the loop's thread until 4500 posts wait: past the ring. */
    atomic_store(&r->go, 1);
    double give_up = asyncio_loop_time() + WAIT_S;
    while (atomic_load(&r->first_halves_done) < RING_POSTERS && asyncio_loop_time() < give_up)
        sched_yield();
    CHECK_INT(atomic_load(&r->first_halves_done), RING_POSTERS);
    /* Now take while the second halves come. */
    while (r->ran < RING_POSTERS * RING_POSTS && asyncio_loop_time() < give_up)
        CHECK_INT(asyncio_sleep(0.001), 0);
    for (int i = 0; i < RING_POSTERS; i++) {
        pthread_join(th[i], NULL);
        r->post_errors += atomic_load(&p[i].errors);
    }
    return 0;
}

static void test_posts_past_the_ring_run_in_each_threads_order(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        struct ringed r = {0};
        assert_int_equal(tu_run(main_ringed, &r, NULL), 0);
        assert_int_equal(r.post_errors, 0);
        assert_int_equal(r.ran, RING_POSTERS * RING_POSTS);
        assert_int_equal(r.out_of_order, 0);
        assert_int_equal(r.wrong_thread, 0);
        for (int i = 0; i < RING_POSTERS; i++)
            assert_int_equal(r.next[i], RING_POSTS);
    }
}

/* Posts past the ring to a loop that never runs: the close runs or
 * releases each once, in the order posted (the ring's, then the
 * overflow's). */
#define UNRUN_POSTS 2500

static int unrun_log[UNRUN_POSTS], unrun_len;
static int unrun_ids[UNRUN_POSTS];

static void unrun_note(void *arg)
{
    if (unrun_len < UNRUN_POSTS)
        unrun_log[unrun_len] = *(int *)arg;
    unrun_len++;
}

static void *unrun_post(void *arg)
{
    asyncio_loop_t *loop = arg;
    intptr_t errors = 0;
    for (int i = 0; i < UNRUN_POSTS; i++) {
        unrun_ids[i] = i;
        if (asyncio_call_soon_threadsafe(loop, unrun_note, &unrun_ids[i], unrun_note) != 0)
            errors++;
    }
    return (void *)errors;
}

static void test_posts_past_the_ring_to_a_loop_that_never_ran_are_released_in_order(void **state)
{
    (void)state;
    asyncio_loop_t *loop;
    assert_int_equal(asyncio_new_event_loop(&loop, NULL), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, unrun_post, loop), 0);
    void *errors;
    pthread_join(th, &errors);
    assert_int_equal((intptr_t)errors, 0);
    unrun_len = 0;
    assert_int_equal(asyncio_loop_close(loop), 0);
    asyncio_loop_unref(loop);
    assert_int_equal(unrun_len, UNRUN_POSTS);
    for (int i = 0; i < UNRUN_POSTS; i++)
        if (unrun_log[i] != i)
            fail_msg("the %d-th run or release was post %d", i, unrun_log[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_running_loop_handle_outlives_the_loop_while_referenced),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_callbacks_from_a_thread_run_in_the_loop_in_order),
        cmocka_unit_test(test_a_loop_that_never_sleeps_takes_posts),
        cmocka_unit_test(test_own_thread_posts_run_in_order_with_call_soon),
        cmocka_unit_test(test_posts_the_loop_never_ran_are_released_at_close),
        cmocka_unit_test(test_many_threads_post_at_once),
        cmocka_unit_test(test_posts_racing_with_the_close_are_run_released_or_refused),
        cmocka_unit_test(test_posts_past_the_ring_run_in_each_threads_order),
        cmocka_unit_test(test_posts_past_the_ring_to_a_loop_that_never_ran_are_released_in_order),
    };
    return tu_run_group_tests_name("threadsafe", tests, NULL, NULL);
}
