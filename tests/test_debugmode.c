/* Debug mode, the exception handler and task counters (<asyncio/debug.h>):
 * a slow step or callback is reported with the task's name and origin; a
 * failure nobody retrieved names where it was made; a task held and never
 * awaited is reported at close; off, none of it is recorded; counters
 * count steps and split a task's time into running, ready and waiting. */
#include "testutil.h"

#include <asyncio/debug.h>

#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- what the handler received ---------------------------------------- */

#define MAX_REPORTS 16
struct reports {
    int n;
    asyncio_report_kind_t kind[MAX_REPORTS];
    char message[MAX_REPORTS][512];
    char origin[MAX_REPORTS][256];
    int status[MAX_REPORTS];
    double duration[MAX_REPORTS];
    bool had_future[MAX_REPORTS];
};
static struct reports got;

static void collect(asyncio_loop_t *loop, const asyncio_report_t *r, void *arg)
{
    (void)loop;
    CHECK(arg == &got);
    if (got.n == MAX_REPORTS)
        return;
    int i = got.n++;
    got.kind[i] = r->kind;
    snprintf(got.message[i], sizeof got.message[i], "%s", r->message);
    snprintf(got.origin[i], sizeof got.origin[i], "%s", r->origin ? r->origin : "");
    got.status[i] = r->status;
    got.duration[i] = r->duration;
    got.had_future[i] = r->future != NULL;
}

/* A loop in debug mode (debug != 0) whose reports go to collect(). */
static asyncio_loop_t *debug_loop(int debug, double slow)
{
    memset(&got, 0, sizeof got);
    tu_reset();
    asyncio_loop_t *loop;
    assert_int_equal(asyncio_new_event_loop(&loop, NULL), 0);
    assert_int_equal(asyncio_loop_set_debug(loop, debug), 0);
    assert_int_equal(asyncio_loop_get_debug(loop), debug != 0);
    if (slow > 0)
        assert_int_equal(asyncio_loop_set_slow_callback_duration(loop, slow), 0);
    assert_int_equal(asyncio_loop_set_exception_handler(loop, collect, &got), 0);
    return loop;
}

static void close_loop(asyncio_loop_t *loop)
{
    assert_int_equal(asyncio_loop_close(loop), 0);
    asyncio_loop_unref(loop);
    tu_check_failures();
}

/* Hold the CPU for seconds without letting the loop run others. */
static void busy(double seconds)
{
    double end = asyncio_loop_time() + seconds;
    while (asyncio_loop_time() < end)
        ;
}

static int busy_then_sleep(void *arg, void **result)
{
    (void)result;
    busy(*(double *)arg);
    return asyncio_sleep(0.001);
}

static void busy_callback(void *arg)
{
    busy(*(double *)arg);
}

/* ---- slow steps and callbacks ----------------------------------------- */

static int main_slow(void *arg, void **result)
{
    (void)arg;
    (void)result;
    double long_step = 0.1, short_step = 0;
    asyncio_task_t *slow = tu_spawn(busy_then_sleep, &long_step, "hog");
    asyncio_task_t *quick = tu_spawn(busy_then_sleep, &short_step, "quick");
    CHECK_INT(asyncio_call_soon(busy_callback, &long_step, NULL), 0);
    CHECK_INT(asyncio_await(slow, NULL), 0);
    CHECK_INT(asyncio_await(quick, NULL), 0);
    tu_yield(2); /* the report of a slow step is handed over from a callback */
    asyncio_task_release(slow);
    asyncio_task_release(quick);
    return 0;
}

static void test_a_slow_step_and_a_slow_callback_are_reported_with_name_and_origin(void **state)
{
    (void)state;
    asyncio_loop_t *loop = debug_loop(1, 0.02);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_slow, NULL, NULL), 0);
    close_loop(loop);
    /* The callback runs first (scheduled before the tasks' first steps). */
    assert_int_equal(got.n, 2);
    assert_int_equal(got.kind[0], ASYNCIO_REPORT_SLOW_CALLBACK);
    assert_true(got.duration[0] >= 0.1);
    assert_non_null(strstr(got.message[0], "Executing a callback took 0."));
    assert_int_equal(got.kind[1], ASYNCIO_REPORT_SLOW_STEP);
    assert_true(got.had_future[1]);
    assert_true(got.duration[1] >= 0.1);
    assert_non_null(strstr(got.message[1], "Executing task \"hog\" took 0."));
    /* Where it was made: in this program, a code address addr2line takes. */
    assert_non_null(strstr(got.origin[1], "test_debugmode"));
    assert_non_null(strstr(got.message[1], "(created at "));
}

static void test_slow_steps_are_not_reported_when_debug_mode_is_off(void **state)
{
    (void)state;
    asyncio_loop_t *loop = debug_loop(0, 0.02);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_slow, NULL, NULL), 0);
    close_loop(loop);
    assert_int_equal(got.n, 0);
}

static void test_a_step_under_the_threshold_is_not_reported(void **state)
{
    (void)state;
    asyncio_loop_t *loop = debug_loop(1, 1000);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_slow, NULL, NULL), 0);
    close_loop(loop);
    assert_int_equal(got.n, 0);
}

/* ---- never retrieved -------------------------------------------------- */

static int fail_eio(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int main_unretrieved(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(fail_eio, NULL, "failing");
    asyncio_task_release(t); /* nobody will look: reported when it is freed */
    tu_yield(2);
    asyncio_future_t *f = tu_future();
    CHECK_INT(asyncio_future_set_error(f, -ENOSPC), 0);
    asyncio_future_release(f);
    return 0;
}

static void test_a_failure_never_retrieved_names_where_it_was_made(void **state)
{
    (void)state;
    asyncio_loop_t *loop = debug_loop(1, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_unretrieved, NULL, NULL), 0);
    close_loop(loop);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.kind[0], ASYNCIO_REPORT_NEVER_RETRIEVED);
    assert_int_equal(got.status[0], -EIO);
    assert_non_null(strstr(got.message[0], "Task exception was never retrieved: task \"failing\""));
    assert_non_null(strstr(got.origin[0], "test_debugmode"));
    assert_int_equal(got.kind[1], ASYNCIO_REPORT_NEVER_RETRIEVED);
    assert_int_equal(got.status[1], -ENOSPC);
    assert_non_null(strstr(got.message[1], "Future exception was never retrieved"));
    assert_non_null(strstr(got.origin[1], "test_debugmode"));
}

static void test_without_debug_mode_the_report_has_no_origin(void **state)
{
    (void)state;
    asyncio_loop_t *loop = debug_loop(0, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_unretrieved, NULL, NULL), 0);
    close_loop(loop);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.origin[0], "");
    assert_string_equal(got.origin[1], "");
    assert_null(strstr(got.message[0], "created at"));
}

/* ---- never awaited, at close ------------------------------------------ */

static int quick_ok(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static asyncio_task_t *held[3];

static int main_held(void *arg, void **result)
{
    (void)arg;
    (void)result;
    held[0] = tu_spawn(quick_ok, NULL, "held");     /* never awaited: reported */
    held[1] = tu_spawn(quick_ok, NULL, "awaited");  /* awaited: not */
    held[2] = tu_spawn(fail_eio, NULL, "held-failing");
    asyncio_task_t *released = tu_spawn(quick_ok, NULL, "released");
    asyncio_task_release(released);                 /* released: not */
    CHECK_INT(asyncio_await(held[1], NULL), 0);
    tu_yield(2);
    return 0;
}

static void test_a_task_held_and_never_awaited_is_reported_at_close(void **state)
{
    (void)state;
    asyncio_loop_t *loop = debug_loop(1, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_held, NULL, NULL), 0);
    close_loop(loop);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.kind[0], ASYNCIO_REPORT_NEVER_AWAITED);
    assert_non_null(strstr(got.message[0], "Task \"held\" was never awaited nor released"));
    assert_non_null(strstr(got.origin[0], "test_debugmode"));
    /* A failed one is said once, with its failure. */
    assert_int_equal(got.kind[1], ASYNCIO_REPORT_NEVER_AWAITED);
    assert_int_equal(got.status[1], -EIO);
    assert_non_null(strstr(got.message[1], "Task \"held-failing\" was never awaited"));
}

/* ---- the default handler, the environment ----------------------------- */

static void child_default_handler(void)
{
    memset(&got, 0, sizeof got);
    setenv("ASYNCIO_DEBUG", "1", 1);
    asyncio_loop_t *loop;
    if (asyncio_new_event_loop(&loop, NULL) != 0 || asyncio_loop_get_debug(loop) != 1)
        tu_child_exit(2);
    /* Set, then given back to the default. */
    if (asyncio_loop_set_exception_handler(loop, collect, &got) != 0 ||
        asyncio_loop_set_exception_handler(loop, NULL, NULL) != 0)
        tu_child_exit(3);
    asyncio_loop_run_until_complete(loop, main_unretrieved, NULL, NULL);
    asyncio_loop_close(loop);
    asyncio_loop_unref(loop);
    tu_child_exit(got.n == 0 ? 0 : 4);
}

static void test_asyncio_debug_turns_it_on_and_the_default_handler_prints(void **state)
{
    (void)state;
    struct tu_child c;
    tu_run_child(child_default_handler, &c);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0);
    assert_non_null(strstr(c.err, "asyncio: Task exception was never retrieved: task \"failing\" "
                                  "failed with -5 ("));
    assert_non_null(strstr(c.err, "asyncio: Future exception was never retrieved"));
    assert_non_null(strstr(c.err, "(created at "));
}

/* ---- bad input -------------------------------------------------------- */

static void *other_thread_calls(void *arg)
{
    asyncio_loop_t *loop = arg;
    static int rc[4];
    rc[0] = asyncio_loop_set_debug(loop, 1);
    rc[1] = asyncio_loop_set_task_counters(loop, 1);
    rc[2] = asyncio_loop_set_exception_handler(loop, NULL, NULL);
    rc[3] = asyncio_loop_set_slow_callback_duration(loop, 1);
    return rc;
}

static void test_bad_input_and_other_threads_get_error_codes(void **state)
{
    (void)state;
    assert_int_equal(asyncio_loop_set_debug(NULL, 1), -EINVAL);
    assert_int_equal(asyncio_loop_get_debug(NULL), -EINVAL);
    assert_int_equal(asyncio_loop_set_task_counters(NULL, 1), -EINVAL);
    assert_int_equal(asyncio_loop_set_exception_handler(NULL, collect, NULL), -EINVAL);
    assert_int_equal(asyncio_loop_set_slow_callback_duration(NULL, 1), -EINVAL);
    assert_true(asyncio_loop_get_slow_callback_duration(NULL) == -EINVAL);
    assert_int_equal(asyncio_task_get_stats(NULL, NULL), -EINVAL);
    asyncio_loop_default_exception_handler(NULL, NULL, NULL); /* ignored */

    asyncio_loop_t *loop;
    assert_int_equal(asyncio_new_event_loop(&loop, NULL), 0);
    assert_true(asyncio_loop_get_slow_callback_duration(loop) == 0.1); /* asyncio's default */
    assert_int_equal(asyncio_loop_set_slow_callback_duration(loop, 0), -EINVAL);
    assert_int_equal(asyncio_loop_set_slow_callback_duration(loop, -1), -EINVAL);
    assert_int_equal(asyncio_loop_set_slow_callback_duration(loop, NAN), -EINVAL);
    assert_int_equal(asyncio_loop_set_slow_callback_duration(loop, INFINITY), -EINVAL);
    pthread_t th;
    void *rcs;
    assert_int_equal(pthread_create(&th, NULL, other_thread_calls, loop), 0);
    assert_int_equal(pthread_join(th, &rcs), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(((int *)rcs)[i], -EXDEV);
    assert_int_equal(asyncio_loop_close(loop), 0);
    assert_int_equal(asyncio_loop_set_debug(loop, 1), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_get_debug(loop), -ESHUTDOWN);
    assert_int_equal(asyncio_loop_set_task_counters(loop, 1), -ESHUTDOWN);
    asyncio_loop_unref(loop);
}

/* ---- counters --------------------------------------------------------- */

struct counted {
    asyncio_task_t *self;
    uint64_t main_serial;
};

/* Waits 50 ms, runs 20 ms, yields twice while another task is ready. */
static int counted_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_INT(asyncio_sleep(0.05), 0);
    busy(0.02);
    tu_yield(2);
    return 0;
}

static int spinner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 4; i++) {
        busy(0.005); /* while it runs, the counted task is ready */
        tu_yield(1);
    }
    return 0;
}

static int main_counters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_stats_t st;
    asyncio_task_t *me = asyncio_current_task();
    CHECK_INT(asyncio_task_get_stats(me, &st), -ENOENT); /* made before they were on */
    CHECK(st.serial == 1 && st.waiting_on == NULL);
    CHECK_INT(asyncio_loop_set_task_counters(asyncio_get_running_loop(), 1), 0);
    asyncio_task_t *t = tu_spawn(counted_task, NULL, "counted");
    CHECK_INT(asyncio_task_get_stats(t, &st), 0);
    CHECK(st.steps == 0 && st.parent == 1 && st.serial == 2);
    CHECK(strstr(st.origin, "test_debugmode") != NULL);
    tu_yield(1);
    CHECK_INT(asyncio_task_get_stats(t, &st), 0);
    CHECK(st.steps == 1 && st.waiting_on && strcmp(st.waiting_on, "sleep") == 0);
    asyncio_task_t *s = NULL;
    CHECK_INT(asyncio_sleep(0.06), 0); /* the counted task is woken and runs */
    s = tu_spawn(spinner, NULL, "spinner");
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(asyncio_await(s, NULL), 0);
    CHECK_INT(asyncio_task_get_stats(t, &st), 0);
    CHECK(st.steps == 4);                     /* start, after the sleep, two yields */
    CHECK(st.waiting_ns >= 45000000u);        /* its sleep (the clock is monotonic) */
    CHECK(st.running_ns >= 20000000u);        /* its busy stretch */
    CHECK(st.ready_ns > 0);                   /* behind the spinner */
    CHECK(st.waiting_on == NULL);
    /* The main task: counted from its first step after they were turned on. */
    CHECK_INT(asyncio_task_get_stats(me, &st), 0);
    CHECK(st.steps >= 3 && st.running_ns > 0 && st.waiting_ns > 0);
    CHECK(st.origin[0] == '\0');
    asyncio_task_release(t);
    asyncio_task_release(s);
    /* Off again: the counts stay as they were. */
    CHECK_INT(asyncio_loop_set_task_counters(asyncio_get_running_loop(), 0), 0);
    return 0;
}

static void test_task_counters_split_time_into_running_ready_and_waiting(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_counters, NULL, NULL), 0);
}

/* ---- objects used from another thread ---------------------------------- */

struct foreign {
    asyncio_future_t *f;
    asyncio_task_t *t;
    asyncio_event_t ev;
    asyncio_lock_t lock;
    asyncio_queue_t q;
    asyncio_stream_t *s;
    asyncio_server_t *srv;
    int peer;
    int rc[15];     /* from a thread running a loop of its own */
    bool retained;  /* asyncio_future_retain() took a reference there */
    int no_loop[2]; /* from a thread with none */
    int reports;    /* what that loop's handler received */
};

static struct reports got_b;

static void collect_b(asyncio_loop_t *loop, const asyncio_report_t *r, void *arg)
{
    (void)loop, (void)arg;
    if (r->kind == ASYNCIO_REPORT_WRONG_THREAD && r->status == -EXDEV &&
        strstr(r->message, "(): an object"))
        got_b.n++;
}

static int no_handler(asyncio_stream_t *s, void *arg)
{
    (void)s, (void)arg;
    return 0;
}

static void done_cb(asyncio_future_t *f, void *arg)
{
    (void)f, (void)arg;
}

static void *foreign_thread(void *arg)
{
    struct foreign *x = arg;
    asyncio_loop_t *b;
    if (asyncio_new_event_loop(&b, NULL) != 0)
        return NULL;
    asyncio_loop_set_exception_handler(b, collect_b, NULL);
    x->rc[0] = asyncio_future_set_result(x->f, NULL);
    x->rc[1] = asyncio_future_cancel(x->f);
    x->rc[2] = asyncio_task_cancel(x->t);
    x->rc[3] = asyncio_event_set(&x->ev);
    x->rc[4] = asyncio_lock_release(&x->lock);
    x->rc[5] = asyncio_queue_put_nowait(&x->q, NULL);
    x->rc[6] = asyncio_future_result(x->f, NULL);
    x->rc[7] = asyncio_queue_get_nowait(&x->q, &(void *){NULL});
    x->rc[8] = asyncio_future_add_done_callback(x->f, done_cb, NULL);
    char byte;
    x->rc[9] = asyncio_stream_write(x->s, "x", 1);
    x->rc[10] = asyncio_stream_drain(x->s);
    x->rc[11] = (int)asyncio_stream_read(x->s, &byte, 1);
    x->rc[12] = asyncio_stream_close(x->s);
    x->rc[13] = asyncio_server_close(x->srv);
    x->rc[14] = asyncio_stream_consume(x->s, 0);
    x->retained = asyncio_future_retain(x->f) != NULL;
    x->reports = got_b.n;
    asyncio_loop_close(b);
    asyncio_loop_unref(b);
    /* No loop in this thread: reported on stderr. */
    x->no_loop[0] = asyncio_event_clear(&x->ev);
    x->no_loop[1] = asyncio_future_set_error(x->f, -EIO);
    return NULL;
}

static int main_foreign(void *arg, void **result)
{
    (void)result;
    struct foreign *x = arg;
    x->f = tu_future();
    x->t = tu_spawn(quick_ok, NULL, "mine");
    /* The sync objects and the queue are bound by their first use here. */
    CHECK_INT(asyncio_event_init(&x->ev), 0);
    CHECK_INT(asyncio_event_clear(&x->ev), 0);
    CHECK_INT(asyncio_lock_init(&x->lock), 0);
    CHECK_INT(asyncio_lock_acquire(&x->lock), 0);
    CHECK_INT(asyncio_queue_init(&x->q, 0), 0);
    CHECK_INT(asyncio_queue_put_nowait(&x->q, x), 0);
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_INT(asyncio_stream_open(&x->s, sv[0], 0), 0);
    x->peer = sv[1];
    CHECK_INT(asyncio_start_server(&x->srv, no_handler, NULL, "127.0.0.1", 0, NULL), 0);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, foreign_thread, x), 0);
    CHECK_INT(pthread_join(th, NULL), 0); /* blocks the loop: nothing else runs */
    /* Nothing was changed by those calls. */
    CHECK_INT(asyncio_future_done(x->f), 0);
    CHECK_INT(asyncio_lock_locked(&x->lock), 1);
    CHECK_INT((int)asyncio_queue_size(&x->q), 1);
    CHECK_INT(asyncio_event_is_set(&x->ev), 0);
    CHECK_INT(asyncio_stream_write_buffer_size(x->s), 0);
    CHECK_INT(asyncio_stream_close(x->s), 0); /* from here, fine */
    close(x->peer);
    CHECK_INT(asyncio_server_close(x->srv), 0);
    CHECK_INT(asyncio_server_wait_closed(x->srv), 0);
    CHECK_INT(asyncio_future_set_result(x->f, NULL), 0);
    CHECK_INT(asyncio_lock_release(&x->lock), 0);
    void *item;
    CHECK_INT(asyncio_queue_get_nowait(&x->q, &item), 0);
    CHECK(item == x);
    CHECK_INT(asyncio_queue_destroy(&x->q), 0);
    CHECK_INT(asyncio_await(x->t, NULL), 0);
    asyncio_task_release(x->t);
    asyncio_future_release(x->f);
    return 0;
}

static void test_objects_used_from_another_thread_are_reported_and_fail(void **state)
{
    (void)state;
    struct foreign x;
    memset(&x, 0, sizeof x);
    memset(&got_b, 0, sizeof got_b);
    asyncio_loop_t *loop = debug_loop(1, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, main_foreign, &x, NULL), 0);
    close_loop(loop);
    for (int i = 0; i < 15; i++)
        assert_int_equal(x.rc[i], -EXDEV);
    assert_false(x.retained);
    assert_int_equal(x.reports, 16);
    assert_int_equal(x.no_loop[0], -EXDEV);
    assert_int_equal(x.no_loop[1], -EXDEV);
    assert_int_equal(got.n, 0); /* the owner's handler heard nothing */
}

/* Without debug mode nothing is bound or checked: an object may be moved
 * to the next loop of the thread, as before. */
static int use_event(void *arg, void **result)
{
    (void)result;
    return asyncio_event_set(arg);
}

static void test_an_object_bound_in_debug_mode_cannot_move_to_the_next_loop(void **state)
{
    (void)state;
    asyncio_event_t ev;
    assert_int_equal(asyncio_event_init(&ev), 0);
    asyncio_loop_t *loop = debug_loop(0, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, use_event, &ev, NULL), 0);
    close_loop(loop);
    loop = debug_loop(1, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, use_event, &ev, NULL), 0);
    close_loop(loop);
    /* Bound to that (closed) loop now, as asyncio binds a primitive. */
    loop = debug_loop(1, 0);
    assert_int_equal(asyncio_loop_run_until_complete(loop, use_event, &ev, NULL), -EXDEV);
    close_loop(loop);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.kind[0], ASYNCIO_REPORT_WRONG_THREAD);
    assert_non_null(strstr(got.message[0], "asyncio_event_set(): an object bound to another loop"));
}

/* ---- the call graph ----------------------------------------------------- */

static int sleeper(void *arg, void **result)
{
    (void)arg, (void)result;
    return asyncio_sleep(30);
}

static int awaits_leaf(void *arg, void **result)
{
    (void)arg, (void)result;
    asyncio_task_t *leaf = tu_spawn(sleeper, NULL, "leaf");
    int rc = asyncio_await(leaf, NULL);
    asyncio_task_release(leaf);
    return rc;
}

static int group_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    asyncio_taskgroup_t tg;
    CHECK_INT(asyncio_taskgroup_enter(&tg), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&tg, NULL, sleeper, NULL, &(asyncio_task_options_t){.name = "child-a"}), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&tg, NULL, awaits_leaf, NULL, &(asyncio_task_options_t){.name = "child-b"}), 0);
    return asyncio_taskgroup_exit(&tg, 0);
}

static int gatherer(void *arg, void **result)
{
    (void)arg, (void)result;
    asyncio_future_t *fs[2] = {tu_spawn(sleeper, NULL, "g1"), tu_spawn(sleeper, NULL, "g2")};
    int rc = asyncio_gather(2, fs, NULL, NULL, 0);
    asyncio_task_release(fs[0]);
    asyncio_task_release(fs[1]);
    return rc;
}

static int awaits_arg(void *arg, void **result)
{
    (void)result;
    return asyncio_await(arg, NULL);
}

static char graph[8192];

static int main_graph(void *arg, void **result)
{
    (void)arg, (void)result;
    asyncio_task_t *t[5] = {tu_spawn(group_owner, NULL, "owner"), tu_spawn(gatherer, NULL, "gatherer"),
                            tu_spawn(sleeper, NULL, "lone"), NULL, NULL};
    t[3] = tu_spawn(awaits_arg, t[2], "w1"); /* two await "lone" */
    t[4] = tu_spawn(awaits_arg, t[2], "w2");
    tu_yield(3);
    FILE *out = tmpfile();
    CHECK(out != NULL);
    CHECK_INT(asyncio_print_call_graph(out), 11);
    rewind(out);
    size_t len = fread(graph, 1, sizeof graph - 1, out);
    graph[len] = '\0';
    fclose(out);
    CHECK_INT(asyncio_print_call_graph(NULL), -EINVAL);
    for (int i = 0; i < 5; i++) {
        asyncio_task_cancel(t[i]);
        asyncio_await(t[i], NULL);
        asyncio_task_release(t[i]);
    }
    return 0;
}

static void test_the_call_graph_is_a_tree_of_who_awaits_whom(void **state)
{
    (void)state;
    assert_int_equal(asyncio_print_call_graph(stdout), -EPERM); /* no loop */
    assert_int_equal(tu_run(main_graph, NULL, NULL), 0);
    /* Under the owner of its group, under what gathers or awaits it; a task
     * awaited twice under the older awaiter; roots in the order made. */
    assert_string_equal(graph, "Task \"main\" #1: running\n"
                               "Task \"owner\" #2: waiting (task group)\n"
                               "\u251c\u2500\u2500 Task \"child-a\" #7: waiting (sleep)\n"
                               "\u2514\u2500\u2500 Task \"child-b\" #8: waiting (task)\n"
                               "    \u2514\u2500\u2500 Task \"leaf\" #11: waiting (sleep)\n"
                               "Task \"gatherer\" #3: waiting (gather)\n"
                               "\u251c\u2500\u2500 Task \"g1\" #9: waiting (sleep)\n"
                               "\u2514\u2500\u2500 Task \"g2\" #10: waiting (sleep)\n"
                               "Task \"w1\" #5: waiting (task)\n"
                               "\u2514\u2500\u2500 Task \"lone\" #4: waiting (sleep), awaited by 1 more\n"
                               "Task \"w2\" #6: waiting (task)\n");
}

/* ASYNCIO_DUMP_SIGNAL: the signal prints the tree to stderr, with origins
 * in debug mode. A signal may take a few iterations to come (libkqueue
 * reads it in a thread of its own): stderr is read here until the tree's
 * last line is in (5 s at most), then passed on to the test. */
static int main_dump(void *arg, void **result)
{
    (void)arg, (void)result;
    int saved = dup(STDERR_FILENO), p[2];
    CHECK(saved >= 0 && pipe(p) == 0);
    CHECK_INT(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    asyncio_task_t *t = tu_spawn(awaits_leaf, NULL, "waiter");
    tu_yield(2);
    CHECK_INT(tu_raise(SIGUSR1), 0);
    static char text[8192];
    size_t len = 0;
    for (int i = 0; i < 500 && !strstr(text, "Task \"leaf\""); i++) {
        CHECK_INT(asyncio_sleep(0.01), 0);
        ssize_t n = read(p[0], text + len, sizeof text - 1 - len);
        if (n > 0)
            len += (size_t)n;
        text[len] = '\0';
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    CHECK(write(STDERR_FILENO, text, len) == (ssize_t)len);
    asyncio_task_cancel(t);
    asyncio_await(t, NULL);
    asyncio_task_release(t);
    return 0;
}

static void child_dump(void)
{
    setenv("ASYNCIO_DUMP_SIGNAL", "USR1", 1);
    setenv("ASYNCIO_DEBUG", "1", 1);
    tu_child_exit(asyncio_run(main_dump, NULL, NULL) == 0 ? 0 : 1);
}

static void child_bad_dump_signal(void)
{
    setenv("ASYNCIO_DUMP_SIGNAL", "NOSUCH", 1);
    tu_child_exit(asyncio_run(quick_ok, NULL, NULL) == 0 ? 0 : 1);
}

static void test_the_dump_signal_prints_the_tree_to_stderr(void **state)
{
    (void)state;
    struct tu_child c;
    tu_run_child(child_dump, &c);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0);
    assert_non_null(strstr(c.err, "asyncio: the tasks of process "));
    /* The main task, made by the library's run call, waits in its sleep. */
    assert_non_null(strstr(c.err, "Task \"main\" #1: waiting (sleep) at "
                                  "asyncio_loop_run_until_complete+"));
    assert_non_null(strstr(c.err, "Task \"waiter\" #2: waiting (task), made by #1 at "));
    assert_non_null(strstr(c.err, "\u2514\u2500\u2500 Task \"leaf\" #3: waiting (sleep), made by #2 at "));
    tu_run_child(child_bad_dump_signal, &c);
    assert_int_equal(WEXITSTATUS(c.status), 0);
    assert_non_null(strstr(c.err, "asyncio: ASYNCIO_DUMP_SIGNAL=NOSUCH: not a signal"));
}

/* ---- the run option, and a loop used after its close ------------------- */

static int report_debug(void *arg, void **result)
{
    (void)arg, (void)result;
    return asyncio_loop_get_debug(asyncio_get_running_loop());
}

/* Debug mode as a loop made with opts (debug given) sees it: 0 or 1, or
 * 10 + the error. */
static int debug_with(int debug)
{
    asyncio_run_options_t opts = {.debug = debug};
    asyncio_loop_t *loop;
    int rc = asyncio_new_event_loop(&loop, &opts);
    if (rc < 0)
        return 10 - rc;
    rc = asyncio_loop_get_debug(loop);
    asyncio_loop_close(loop);
    asyncio_loop_unref(loop);
    return rc;
}

static void child_run_option(void)
{
    unsetenv("ASYNCIO_DEBUG");
    if (debug_with(0) != 0 || debug_with(1) != 1 || debug_with(7) != 1 || debug_with(-1) != 0)
        tu_child_exit(2);
    setenv("ASYNCIO_DEBUG", "1", 1);
    if (debug_with(0) != 1 || debug_with(1) != 1 || debug_with(-1) != 0)
        tu_child_exit(3);
    setenv("ASYNCIO_DEBUG", "0", 1);
    if (debug_with(0) != 0 || debug_with(1) != 1)
        tu_child_exit(4);
    /* asyncio.run(main(), debug=True): on in the main task. */
    asyncio_run_options_t opts = {.debug = 1};
    if (asyncio_run_ex(report_debug, NULL, NULL, &opts) != 1)
        tu_child_exit(5);
    opts.debug = 0;
    if (asyncio_run_ex(report_debug, NULL, NULL, &opts) != 0)
        tu_child_exit(6);
    tu_child_exit(0);
}

static void test_the_debug_run_option_turns_it_on_or_keeps_it_off(void **state)
{
    (void)state;
    struct tu_child c;
    tu_run_child(child_run_option, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child: status %d; stderr: %s", c.status, c.err);
    assert_string_equal(c.err, "");
}

static void noop(void *arg)
{
    (void)arg;
}

static int noop_task(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

static void *closed_loop_from_another_thread(void *arg)
{
    asyncio_loop_t *loop = arg;
    static int rc[2];
    rc[0] = asyncio_call_soon_threadsafe(loop, noop, NULL, NULL);
    rc[1] = asyncio_loop_stop(loop);
    return rc;
}

/* Every call on a closed loop: -ESHUTDOWN each (exit status 0), or the
 * number of the first that gave something else. */
static int use_closed_loop(asyncio_loop_t *loop)
{
    int64_t next;
    int rcs[] = {
        asyncio_loop_run_forever(loop),
        asyncio_loop_run_until_complete(loop, noop_task, NULL, NULL),
        asyncio_loop_run_nowait(loop, &next),
        asyncio_loop_stop(loop),
        asyncio_call_soon_threadsafe(loop, noop, NULL, NULL),
        asyncio_loop_backend_fd(loop),
        asyncio_loop_set_debug(loop, 1),
        asyncio_loop_get_debug(loop),
        asyncio_loop_set_exception_handler(loop, NULL, NULL),
        asyncio_loop_close(loop), /* again: -ESHUTDOWN, but no misuse */
    };
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
        if (rcs[i] != -ESHUTDOWN)
            return 10 + (int)i;
    pthread_t th;
    void *ret;
    if (pthread_create(&th, NULL, closed_loop_from_another_thread, loop) != 0 ||
        pthread_join(th, &ret) != 0)
        return 30;
    int *trc = ret;
    if (trc[0] != -ESHUTDOWN || trc[1] != -ESHUTDOWN)
        return 31;
    return 0;
}

/* Run use_closed_loop() on a loop closed with debug as given, in this
 * process (a child may not start threads under TSan once the parent has
 * some), stderr caught in err: 0, or what use_closed_loop() says. */
static int closed_loop(int debug, char *err, size_t len)
{
    memset(&got, 0, sizeof got);
    asyncio_run_options_t opts = {.debug = debug};
    asyncio_loop_t *loop;
    if (asyncio_new_event_loop(&loop, &opts) != 0)
        return 2;
    /* Its own handler is not called after the close: it went with the loop. */
    if (asyncio_loop_set_exception_handler(loop, collect, &got) != 0 ||
        asyncio_loop_close(loop) != 0)
        return 3;
    FILE *tmp = tmpfile();
    if (!tmp)
        return 4;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    int rc = use_closed_loop(loop);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, len - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    asyncio_loop_unref(loop);
    return rc ? rc : got.n;
}

static void test_a_loop_used_after_its_close_is_reported(void **state)
{
    (void)state;
    char err[4096];
    int rc = closed_loop(1, err, sizeof err);
    if (rc != 0)
        fail_msg("%d; stderr: %s", rc, err);
    static const char *const calls[] = {
        "asyncio_loop_run_forever",      "asyncio_loop_run_until_complete",
        "asyncio_loop_run_nowait",       "asyncio_loop_backend_fd",
        "asyncio_loop_set_debug",        "asyncio_loop_get_debug",
        "asyncio_loop_set_exception_handler",
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "asyncio: %s(): the loop is closed: -ESHUTDOWN\n", calls[i]);
        const char *at = strstr(err, line);
        if (!at || strstr(at + 1, line))
            fail_msg("not reported once: %s; stderr:\n%s", line, err);
    }
    /* From this thread and from another. */
    int n = 0;
    for (const char *at = err; (at = strstr(at, "asyncio_loop_stop(): the loop is closed")); at++)
        n++;
    assert_int_equal(n, 2);
    n = 0;
    for (const char *at = err; (at = strstr(at, "asyncio_call_soon_threadsafe(): the loop is closed"));
         at++)
        n++;
    assert_int_equal(n, 2);
    assert_null(strstr(err, "asyncio_loop_close"));
    int lines = 0;
    for (const char *at = err; (at = strchr(at, '\n')); at++)
        lines++;
    assert_int_equal(lines, 11);

    /* Closed out of debug mode: the same errors, nothing said. */
    rc = closed_loop(-1, err, sizeof err);
    if (rc != 0)
        fail_msg("%d; stderr: %s", rc, err);
    assert_string_equal(err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slow_step_and_a_slow_callback_are_reported_with_name_and_origin),
        cmocka_unit_test(test_slow_steps_are_not_reported_when_debug_mode_is_off),
        cmocka_unit_test(test_a_step_under_the_threshold_is_not_reported),
        cmocka_unit_test(test_a_failure_never_retrieved_names_where_it_was_made),
        cmocka_unit_test(test_without_debug_mode_the_report_has_no_origin),
        cmocka_unit_test(test_a_task_held_and_never_awaited_is_reported_at_close),
        cmocka_unit_test(test_asyncio_debug_turns_it_on_and_the_default_handler_prints),
        cmocka_unit_test(test_bad_input_and_other_threads_get_error_codes),
        cmocka_unit_test(test_task_counters_split_time_into_running_ready_and_waiting),
        cmocka_unit_test(test_objects_used_from_another_thread_are_reported_and_fail),
        cmocka_unit_test(test_the_call_graph_is_a_tree_of_who_awaits_whom),
        cmocka_unit_test(test_the_dump_signal_prints_the_tree_to_stderr),
        cmocka_unit_test(test_an_object_bound_in_debug_mode_cannot_move_to_the_next_loop),
        cmocka_unit_test(test_the_debug_run_option_turns_it_on_or_keeps_it_off),
        cmocka_unit_test(test_a_loop_used_after_its_close_is_reported),
    };
    return tu_run_group_tests_name("debugmode", tests, NULL, NULL);
}
