/*
 * Synchronization primitives (CPython: test_locks.py): Lock, Event,
 * Condition, Semaphore, BoundedSemaphore, Barrier; and a cancellation and
 * timeout harness that interrupts a scenario at each of its waits in turn.
 */
#include "testutil.h"

#include <limits.h>

/* ---- shared helpers ------------------------------------------------------ */

/* A worker: its id and the objects it uses. */
struct worker {
    int id;
    void *obj;   /* the primitive */
    void *obj2;  /* a second one, or a counter */
};

static asyncio_task_t *spawn_worker(asyncio_fn fn, struct worker *w, int id, void *obj)
{
    w->id = id;
    w->obj = obj;
    w->obj2 = NULL;
    return tu_spawn(fn, w, NULL);
}

static void release_all(asyncio_task_t **ts, int n)
{
    for (int i = 0; i < n; i++)
        asyncio_task_release(ts[i]);
}

/* Let the loop run until the n tasks have finished, then gather them. A
 * task that is still not done after many iterations is a bug (it waits for
 * something it will never get): record it and cancel it, so that a broken
 * primitive fails the test instead of hanging it. No clock is involved. */
static int gather_soon(int n, asyncio_task_t **ts, int *errs, unsigned flags)
{
    for (int spins = 0; spins < 200; spins++) {
        int done = 1;
        for (int i = 0; i < n; i++)
            done &= asyncio_future_done(ts[i]) == 1;
        if (done)
            break;
        if (asyncio_sleep(0) < 0)
            break;
    }
    for (int i = 0; i < n; i++) {
        if (!asyncio_future_done(ts[i])) {
            tu_fail_at(__FILE__, __LINE__, "task %s never finished", asyncio_task_name(ts[i]));
            asyncio_task_cancel(ts[i]);
        }
    }
    return asyncio_gather((size_t)n, ts, NULL, errs, flags);
}

static int await_soon(asyncio_task_t *t)
{
    int rc = gather_soon(1, &t, NULL, ASYNCIO_RETURN_EXCEPTIONS);
    return rc < 0 ? rc : asyncio_future_result(t, NULL);
}

/* ---- Lock ---------------------------------------------------------------- */

/* Acquire, log, hold across a yield, release. */
static int lock_worker(void *arg, void **result)
{
    struct worker *w = arg;
    (void)result;
    asyncio_lock_t *lock = w->obj;
    LOG("w%d", w->id);
    int rc = asyncio_lock_acquire(lock);
    LOG("got%d:%s", w->id, tu_err(rc));
    if (rc < 0)
        return rc;
    CHECK_INT(asyncio_lock_locked(lock), 1);
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_lock_release(lock), 0);
    return 0;
}

static int main_lock_fifo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    CHECK_INT(asyncio_lock_init(&lock), 0);
    CHECK_INT(asyncio_lock_locked(&lock), 0);
    CHECK_INT(asyncio_lock_acquire(&lock), 0); /* free: no suspension */
    CHECK_INT(asyncio_lock_locked(&lock), 1);
    struct worker ws[5];
    asyncio_task_t *ts[5];
    for (int i = 0; i < 5; i++)
        ts[i] = spawn_worker(lock_worker, &ws[i], i, &lock);
    tu_yield(2);
    LOG("release");
    CHECK_INT(asyncio_lock_release(&lock), 0);
    CHECK_INT(gather_soon(5, ts, NULL, 0), 0);
    CHECK_INT(asyncio_lock_locked(&lock), 0);
    CHECK_INT(asyncio_lock_destroy(&lock), 0);
    release_all(ts, 5);
    return 0;
}

static void test_lock_fifo_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_lock_fifo, NULL, NULL), 0);
    assert_log("w0 w1 w2 w3 w4 release got0:0 got1:0 got2:0 got3:0 got4:0");
}

/* Release hands the lock to the first waiter: it reads unlocked until the
 * waiter runs (as in asyncio), cannot be released again meanwhile (that
 * would make two holders: asyncio's RuntimeError), and a task that asks
 * for it afterwards (even the releaser) queues behind. */
static int main_lock_no_barging(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    asyncio_lock_init(&lock);
    CHECK_INT(asyncio_lock_acquire(&lock), 0);
    struct worker wa, wb;
    asyncio_task_t *a = spawn_worker(lock_worker, &wa, 1, &lock);
    tu_yield(1);
    CHECK_INT(asyncio_lock_release(&lock), 0);
    LOG("released:locked=%d", asyncio_lock_locked(&lock));
    CHECK_INT(asyncio_lock_release(&lock), -EPERM);
    asyncio_task_t *b = spawn_worker(lock_worker, &wb, 2, &lock);
    LOG("main-acquire");
    int rc = asyncio_lock_acquire(&lock);
    LOG("main-got:%s", tu_err(rc));
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_lock_release(&lock), 0);
    CHECK_INT(await_soon(a), 0);
    CHECK_INT(await_soon(b), 0);
    CHECK_INT(asyncio_lock_locked(&lock), 0);
    CHECK_INT(asyncio_lock_destroy(&lock), 0);
    asyncio_task_release(a);
    asyncio_task_release(b);
    return 0;
}

static void test_lock_release_hands_off_no_barging(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_lock_no_barging, NULL, NULL), 0);
    /* b asks after main but runs first to its acquire: main was queued
     * first, since a's turn was already decided at the release. */
    assert_log("w1 released:locked=0 main-acquire got1:0 w2 main-got:0 got2:0");
}

/* CPython test_acquire_cancel / test_cancel_race: a cancelled waiter leaves
 * no trace, even at the head of the queue when the lock is released. */
static int main_lock_cancel_waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    asyncio_lock_init(&lock);
    CHECK_INT(asyncio_lock_acquire(&lock), 0);
    struct worker ws[3];
    asyncio_task_t *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = spawn_worker(lock_worker, &ws[i], i, &lock);
    tu_yield(1);
    /* Cancel the head, then release before it has run: the lock goes to
     * the next one. Then cancel the last one too. */
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);
    CHECK_INT(asyncio_lock_release(&lock), 0);
    CHECK_INT(asyncio_task_cancel(ts[2]), 1);
    CHECK_INT(asyncio_lock_locked(&lock), 0); /* w1's, which has not run */
    CHECK_INT(asyncio_lock_release(&lock), -EPERM);
    int errs[3];
    CHECK_INT(gather_soon(3, ts, errs, ASYNCIO_RETURN_EXCEPTIONS), 2);
    CHECK_INT(errs[0], -ECANCELED);
    CHECK_INT(errs[1], 0);
    CHECK_INT(errs[2], -ECANCELED);
    CHECK_INT(asyncio_lock_locked(&lock), 0);
    CHECK_INT(asyncio_lock_destroy(&lock), 0); /* nobody left queued */
    release_all(ts, 3);
    return 0;
}

static void test_lock_cancel_waiting_acquire(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_lock_cancel_waiter, NULL, NULL), 0);
    assert_log("w0 w1 w2 got0:ECANCELED got1:0 got2:ECANCELED");
}

/* Cancelled after the lock was handed over but before it resumed: as in
 * asyncio (CPython 3.11 raises CancelledError from acquire), its acquire
 * reports the cancellation, and the lock goes on to the next waiter. */
static int main_lock_cancel_after_handoff(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    asyncio_lock_init(&lock);
    CHECK_INT(asyncio_lock_acquire(&lock), 0);
    struct worker ws[2];
    asyncio_task_t *ts[2];
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(lock_worker, &ws[i], i, &lock);
    tu_yield(1);
    CHECK_INT(asyncio_lock_release(&lock), 0); /* handed to w0 */
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);
    LOG("release");
    int errs[2];
    CHECK_INT(gather_soon(2, ts, errs, ASYNCIO_RETURN_EXCEPTIONS), 1);
    CHECK_INT(errs[0], -ECANCELED);
    CHECK_INT(errs[1], 0);
    CHECK_INT(asyncio_lock_locked(&lock), 0);
    CHECK_INT(asyncio_lock_destroy(&lock), 0);
    release_all(ts, 2);
    return 0;
}

static void test_lock_cancel_after_handoff_passes_the_lock_on(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_lock_cancel_after_handoff, NULL, NULL), 0);
    assert_log("w0 w1 release got0:ECANCELED got1:0");
}

static int acquire_in_scope(void *arg, void **result)
{
    asyncio_lock_t *lock = arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    int rc = asyncio_lock_acquire(lock);
    LOG("acquire:%s", tu_err(rc));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    return rc;
}

static int main_lock_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    asyncio_lock_init(&lock);
    CHECK_INT(asyncio_lock_acquire(&lock), 0);
    asyncio_task_t *t = tu_spawn(acquire_in_scope, &lock, NULL);
    CHECK_INT(asyncio_await(t, NULL), -ETIMEDOUT); /* a timer ends it */
    CHECK_INT(asyncio_lock_destroy(&lock), 0); /* no waiter left */
    asyncio_lock_init(&lock);
    CHECK_INT(asyncio_lock_acquire(&lock), 0);

    /* In an expired scope a held lock fails at once; a free one is taken
     * without waiting, as in asyncio (the next real wait times out). */
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 0), 0);
    LOG("held:%s", tu_err(asyncio_lock_acquire(&lock)));
    CHECK_INT(asyncio_lock_release(&lock), 0);
    LOG("free:%s", tu_err(asyncio_lock_acquire(&lock)));
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_lock_release(&lock), 0);

    /* Likewise a pending cancellation. */
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    LOG("free:%s", tu_err(asyncio_lock_acquire(&lock)));
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    CHECK_INT(asyncio_lock_release(&lock), 0);
    CHECK_INT(asyncio_lock_destroy(&lock), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_lock_acquire_in_timeout_scope(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_lock_timeout, NULL, NULL), 0);
    assert_log("acquire:ETIMEDOUT exit:ETIMEDOUT held:ETIMEDOUT free:0 sleep:ETIMEDOUT "
               "exit:ETIMEDOUT free:0 sleep:ECANCELED");
}

/* ---- Event --------------------------------------------------------------- */

static int event_waiter(void *arg, void **result)
{
    struct worker *w = arg;
    (void)result;
    int rc = asyncio_event_wait(w->obj);
    LOG("wait%d:%s", w->id, tu_err(rc));
    return rc;
}

static int main_event(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_event_t ev;
    CHECK_INT(asyncio_event_init(&ev), 0);
    CHECK_INT(asyncio_event_is_set(&ev), 0);
    struct worker ws[3];
    asyncio_task_t *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = spawn_worker(event_waiter, &ws[i], i, &ev);
    tu_yield(2);
    LOG("set");
    CHECK_INT(asyncio_event_set(&ev), 0);
    CHECK_INT(asyncio_event_is_set(&ev), 1);
    CHECK_INT(asyncio_event_set(&ev), 0); /* again: nothing more */
    /* Waiting on a set event returns at once, without yielding. */
    LOG("wait-set:%s", tu_err(asyncio_event_wait(&ev)));
    CHECK_INT(gather_soon(3, ts, NULL, 0), 0);
    release_all(ts, 3);

    /* CPython test_clear_with_waiters: set then clear before the waiters
     * run; they still return 0. */
    CHECK_INT(asyncio_event_clear(&ev), 0);
    CHECK_INT(asyncio_event_is_set(&ev), 0);
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(event_waiter, &ws[i], 10 + i, &ev);
    tu_yield(1);
    LOG("set-clear");
    CHECK_INT(asyncio_event_set(&ev), 0);
    CHECK_INT(asyncio_event_clear(&ev), 0);
    CHECK_INT(asyncio_event_destroy(&ev), 0); /* woken waiters left it */
    CHECK_INT(gather_soon(2, ts, NULL, 0), 0);
    release_all(ts, 2);
    return 0;
}

static void test_event_set_clear_wait(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_event, NULL, NULL), 0);
    assert_log("set wait-set:0 wait0:0 wait1:0 wait2:0 set-clear wait10:0 wait11:0");
}

static int main_event_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_event_t ev;
    asyncio_event_init(&ev);
    struct worker ws[2];
    asyncio_task_t *ts[2];
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(event_waiter, &ws[i], i, &ev);
    tu_yield(1);
    CHECK_INT(asyncio_event_destroy(&ev), -EBUSY);
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);
    CHECK_INT(await_soon(ts[0]), -ECANCELED);
    /* Set, then cancel before it resumes: the cancellation wins, as in
     * asyncio (nothing is lost: the event stays set). */
    CHECK_INT(asyncio_event_set(&ev), 0);
    CHECK_INT(asyncio_task_cancel(ts[1]), 1);
    CHECK_INT(await_soon(ts[1]), -ECANCELED);
    CHECK_INT(asyncio_event_is_set(&ev), 1);
    CHECK_INT(asyncio_event_destroy(&ev), 0);
    release_all(ts, 2);
    return 0;
}

static void test_event_cancelled_wait_leaves_no_waiter(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_event_cancel, NULL, NULL), 0);
    assert_log("wait0:ECANCELED wait1:ECANCELED");
}

/* ---- Condition ----------------------------------------------------------- */

static int cond_waiter(void *arg, void **result)
{
    struct worker *w = arg;
    (void)result;
    asyncio_condition_t *c = w->obj;
    CHECK_INT(asyncio_condition_acquire(c), 0);
    int rc = asyncio_condition_wait(c);
    LOG("wait%d:%s locked=%d", w->id, tu_err(rc), asyncio_condition_locked(c));
    CHECK_INT(asyncio_condition_release(c), 0);
    return rc;
}

static int main_cond_notify(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_condition_t c;
    CHECK_INT(asyncio_condition_init(&c, NULL), 0);
    struct worker ws[5];
    asyncio_task_t *ts[5];
    for (int i = 0; i < 5; i++)
        ts[i] = spawn_worker(cond_waiter, &ws[i], i, &c);
    tu_yield(1);
    CHECK_INT(asyncio_condition_locked(&c), 0); /* every waiter let it go */
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    LOG("notify1:%d", asyncio_condition_notify(&c, 1));
    CHECK_INT(asyncio_condition_release(&c), 0);
    tu_yield(2);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    LOG("notify2:%d", asyncio_condition_notify(&c, 2));
    /* The woken ones wait for the lock, which we still hold. */
    tu_yield(2);
    LOG("release");
    CHECK_INT(asyncio_condition_release(&c), 0);
    tu_yield(3);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    LOG("notify_all:%d", asyncio_condition_notify_all(&c));
    LOG("notify_all:%d", asyncio_condition_notify_all(&c)); /* nobody left */
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(gather_soon(5, ts, NULL, 0), 0);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    release_all(ts, 5);
    return 0;
}

static void test_condition_notify_order(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_notify, NULL, NULL), 0);
    assert_log("notify1:1 wait0:0 locked=1 notify2:2 release wait1:0 locked=1 "
               "wait2:0 locked=1 notify_all:2 notify_all:0 wait3:0 locked=1 wait4:0 locked=1");
}

static int g_counter;
static int g_pred_calls;

static int counter_at_least_3(void *arg)
{
    (void)arg;
    g_pred_calls++;
    LOG("pred:%d", g_counter);
    return g_counter >= 3 ? 42 : 0;
}

static int cond_wait_for_task(void *arg, void **result)
{
    asyncio_condition_t *c = arg;
    (void)result;
    CHECK_INT(asyncio_condition_acquire(c), 0);
    int rc = asyncio_condition_wait_for(c, counter_at_least_3, NULL);
    LOG("wait_for:%s locked=%d", tu_err(rc), asyncio_condition_locked(c));
    CHECK_INT(asyncio_condition_release(c), 0);
    return rc;
}

static int main_cond_wait_for(void *arg, void **result)
{
    (void)arg;
    (void)result;
    g_counter = 0;
    g_pred_calls = 0;
    asyncio_condition_t c;
    asyncio_condition_init(&c, NULL);
    asyncio_task_t *t = tu_spawn(cond_wait_for_task, &c, NULL);
    tu_yield(1);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(asyncio_condition_acquire(&c), 0);
        g_counter++;
        CHECK_INT(asyncio_condition_notify_all(&c), 1);
        CHECK_INT(asyncio_condition_release(&c), 0);
        tu_yield(1);
    }
    CHECK_INT(await_soon(t), 42);
    CHECK_INT(g_pred_calls, 4);
    /* A predicate already true does not wait. */
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    LOG("again:%d", asyncio_condition_wait_for(&c, counter_at_least_3, NULL));
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_condition_wait_for_predicate(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_wait_for, NULL, NULL), 0);
    assert_log("pred:0 pred:1 pred:2 pred:3 wait_for:42 locked=1 pred:3 again:42");
}

/* Cancelled while waiting, with the lock held by someone else: the wait
 * returns only once it has the lock back (CPython test_wait_cancel_contested). */
static int main_cond_cancel_reacquire(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_condition_t c;
    asyncio_condition_init(&c, NULL);
    struct worker w;
    asyncio_task_t *t = spawn_worker(cond_waiter, &w, 0, &c);
    tu_yield(1);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    tu_yield(3);
    LOG("still-waiting:%d", !asyncio_future_done(t));
    CHECK_INT(asyncio_condition_destroy(&c), -EBUSY);
    /* Cancelling it again while it takes the lock back changes nothing. */
    CHECK_INT(asyncio_task_cancel(t), 1);
    tu_yield(1);
    LOG("release");
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(await_soon(t), -ECANCELED);
    CHECK_INT(asyncio_condition_locked(&c), 0);

    /* Notified, then cancelled while it waits for the lock. */
    t = spawn_worker(cond_waiter, &w, 1, &c);
    tu_yield(1);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_condition_notify(&c, 1), 1);
    tu_yield(2);
    CHECK_INT(asyncio_task_cancel(t), 1);
    tu_yield(1);
    LOG("release");
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(await_soon(t), -ECANCELED);
    asyncio_task_release(t);

    /* Notified, handed the lock back, then cancelled before it ran: the
     * lock is its own, and the wait reports the cancellation. */
    t = spawn_worker(cond_waiter, &w, 2, &c);
    tu_yield(1);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_condition_notify(&c, 1), 1);
    tu_yield(2);
    LOG("release");
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(asyncio_condition_locked(&c), 0); /* handed, the waiter not run */
    CHECK_INT(asyncio_condition_release(&c), -EPERM);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(await_soon(t), -ECANCELED);
    CHECK_INT(asyncio_condition_locked(&c), 0);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_condition_cancelled_wait_reacquires_the_lock(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_cancel_reacquire, NULL, NULL), 0);
    assert_log("still-waiting:1 release wait0:ECANCELED locked=1 "
               "release wait1:ECANCELED locked=1 release wait2:ECANCELED locked=1");
}

/* Notified, then cancelled before it ran: the notification goes to the
 * next waiter (CPython test_cancelled_error_wakeup). */
static int main_cond_notified_then_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_condition_t c;
    asyncio_condition_init(&c, NULL);
    struct worker ws[3];
    asyncio_task_t *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = spawn_worker(cond_waiter, &ws[i], i, &c);
    tu_yield(1);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_condition_notify(&c, 1), 1);
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(await_soon(ts[0]), -ECANCELED);
    CHECK_INT(await_soon(ts[1]), 0);
    LOG("w2-waiting:%d", !asyncio_future_done(ts[2]));
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_condition_notify(&c, 1), 1);
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(await_soon(ts[2]), 0);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    release_all(ts, 3);
    return 0;
}

static void test_condition_notified_then_cancelled_passes_it_on(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_notified_then_cancelled, NULL, NULL), 0);
    assert_log("wait0:ECANCELED locked=1 wait1:0 locked=1 w2-waiting:1 wait2:0 locked=1");
}

static int cond_wait_in_scope(void *arg, void **result)
{
    asyncio_condition_t *c = arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_condition_acquire(c), 0);
    CHECK_INT(asyncio_timeout_enter(&scope, 0.02), 0);
    int rc = asyncio_condition_wait(c);
    LOG("wait:%s locked=%d", tu_err(rc), asyncio_condition_locked(c));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_condition_release(c), 0);
    return rc;
}

static int main_cond_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_condition_t c;
    asyncio_condition_init(&c, NULL);
    asyncio_task_t *t = tu_spawn(cond_wait_in_scope, &c, NULL);
    CHECK_INT(asyncio_await(t, NULL), -ETIMEDOUT); /* a timer ends it */
    CHECK_INT(asyncio_condition_locked(&c), 0);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_condition_wait_times_out_with_the_lock_held(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_timeout, NULL, NULL), 0);
    assert_log("wait:ETIMEDOUT locked=1 exit:ETIMEDOUT");
}

/* Timed out while another task holds the lock, then cancelled while the
 * lock is handed back: one failure is reported, the cancellation (an
 * outside cancellation wins, as in asyncio), and nothing is left pending
 * for the next wait. */
static int cond_timeout_then_cancel(void *arg, void **result)
{
    asyncio_condition_t *c = arg;
    (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_condition_acquire(c), 0);
    CHECK_INT(asyncio_timeout_enter(&scope, 0.01), 0);
    int rc = asyncio_condition_wait(c);
    LOG("wait:%s locked=%d", tu_err(rc), asyncio_condition_locked(c));
    LOG("exit:%s", tu_err(asyncio_timeout_exit(&scope)));
    CHECK_INT(asyncio_condition_release(c), 0);
    LOG("sleep:%s", tu_err(asyncio_sleep(0)));
    return rc;
}

static int main_cond_timeout_then_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_condition_t c;
    asyncio_condition_init(&c, NULL);
    asyncio_task_t *t = tu_spawn(cond_timeout_then_cancel, &c, NULL);
    tu_yield(1);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_sleep(0.03), 0); /* its deadline passes meanwhile */
    LOG("release");
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(await_soon(t), -ECANCELED);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_condition_timeout_then_cancel_while_reacquiring(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_timeout_then_cancel, NULL, NULL), 0);
    assert_log("release wait:ECANCELED locked=1 exit:ETIMEDOUT sleep:0");
}

/* Two conditions over one lock (CPython test_explicit_lock); a wait hands
 * the lock to a task waiting for it. */
static int main_cond_explicit_lock(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    asyncio_condition_t c1, c2;
    asyncio_lock_init(&lock);
    CHECK_INT(asyncio_condition_init(&c1, &lock), 0);
    CHECK_INT(asyncio_condition_init(&c2, &lock), 0);
    struct worker w1, w2, wl;
    asyncio_task_t *t1 = spawn_worker(cond_waiter, &w1, 1, &c1);
    asyncio_task_t *t2 = spawn_worker(cond_waiter, &w2, 2, &c2);
    tu_yield(1);
    CHECK_INT(asyncio_lock_acquire(&lock), 0);
    CHECK_INT(asyncio_condition_locked(&c1), 1);
    CHECK_INT(asyncio_condition_locked(&c2), 1);
    asyncio_task_t *tl = spawn_worker(lock_worker, &wl, 9, &lock);
    tu_yield(1);
    CHECK_INT(asyncio_condition_notify(&c2, 1), 1);
    LOG("release");
    CHECK_INT(asyncio_lock_release(&lock), 0);
    CHECK_INT(await_soon(t2), 0);
    CHECK_INT(await_soon(tl), 0);
    CHECK_INT(asyncio_condition_acquire(&c1), 0);
    CHECK_INT(asyncio_condition_notify(&c1, 1), 1);
    CHECK_INT(asyncio_condition_release(&c1), 0);
    CHECK_INT(await_soon(t1), 0);
    CHECK_INT(asyncio_condition_destroy(&c1), 0);
    CHECK_INT(asyncio_condition_destroy(&c2), 0);
    CHECK_INT(asyncio_lock_locked(&lock), 0);
    CHECK_INT(asyncio_lock_destroy(&lock), 0); /* the conditions left it alone */
    asyncio_task_release(t1);
    asyncio_task_release(t2);
    asyncio_task_release(tl);
    return 0;
}

static void test_condition_over_a_shared_lock(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_cond_explicit_lock, NULL, NULL), 0);
    /* The lock queue is FIFO: w9 asked for the lock before w2 was
     * notified, so it gets it first. */
    assert_log("w9 release got9:0 wait2:0 locked=1 wait1:0 locked=1");
}

/* ---- Semaphore ----------------------------------------------------------- */

static int sem_worker(void *arg, void **result)
{
    struct worker *w = arg;
    (void)result;
    asyncio_semaphore_t *s = w->obj;
    int rc = asyncio_semaphore_acquire(s);
    LOG("got%d:%s", w->id, tu_err(rc));
    if (rc < 0)
        return rc;
    rc = asyncio_sleep(0); /* hold it across a wait */
    CHECK_INT(asyncio_semaphore_release(s), 0);
    return rc;
}

static int main_sem_counting(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_semaphore_t s;
    CHECK_INT(asyncio_semaphore_init(&s, 2), 0);
    CHECK_INT(asyncio_semaphore_value(&s), 2);
    CHECK_INT(asyncio_semaphore_locked(&s), 0);
    CHECK_INT(asyncio_semaphore_acquire(&s), 0);
    CHECK_INT(asyncio_semaphore_acquire(&s), 0);
    CHECK_INT(asyncio_semaphore_value(&s), 0);
    CHECK_INT(asyncio_semaphore_locked(&s), 1);
    struct worker ws[4];
    asyncio_task_t *ts[4];
    for (int i = 0; i < 4; i++)
        ts[i] = spawn_worker(sem_worker, &ws[i], i, &s);
    tu_yield(1);
    LOG("release");
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(asyncio_semaphore_value(&s), 0); /* handed, not added */
    CHECK_INT(asyncio_semaphore_locked(&s), 1);
    LOG("release");
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(gather_soon(4, ts, NULL, 0), 0);
    CHECK_INT(asyncio_semaphore_value(&s), 2);
    CHECK_INT(asyncio_semaphore_release(&s), 0); /* unbounded */
    CHECK_INT(asyncio_semaphore_value(&s), 3);
    CHECK_INT(asyncio_semaphore_destroy(&s), 0);
    release_all(ts, 4);
    return 0;
}

static void test_semaphore_counting_and_fifo(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_sem_counting, NULL, NULL), 0);
    assert_log("release release got0:0 got1:0 got2:0 got3:0");
}

/* CPython test_acquire_cancel_before_awoken: permits are never lost or
 * duplicated by cancellations before or after a handoff. A waiter handed a
 * permit and cancelled before it ran gives it back (CPython 3.11 raises
 * CancelledError from acquire and wakes the next). */
static int main_sem_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_semaphore_t s;
    asyncio_semaphore_init(&s, 0);
    struct worker ws[4];
    asyncio_task_t *ts[4];
    for (int i = 0; i < 4; i++)
        ts[i] = spawn_worker(sem_worker, &ws[i], i, &s);
    tu_yield(1);
    CHECK_INT(asyncio_semaphore_release(&s), 0); /* to w0 */
    CHECK_INT(asyncio_semaphore_release(&s), 0); /* to w1 */
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);    /* handed: gives it back */
    CHECK_INT(asyncio_task_cancel(ts[2]), 1);    /* waiting: leaves */
    CHECK_INT(asyncio_semaphore_destroy(&s), -EBUSY);
    /* w0 runs first: its acquire reports the cancellation and hands the
     * permit to w3, skipping w2. */
    tu_yield(1);
    CHECK_INT(asyncio_semaphore_value(&s), 0);
    LOG("release");
    CHECK_INT(asyncio_semaphore_release(&s), 0); /* nobody left to hand to */
    CHECK_INT(asyncio_semaphore_value(&s), 1);
    int errs[4];
    CHECK_INT(gather_soon(4, ts, errs, ASYNCIO_RETURN_EXCEPTIONS), 2);
    CHECK_INT(errs[0], -ECANCELED);
    CHECK_INT(errs[1], 0);
    CHECK_INT(errs[2], -ECANCELED);
    CHECK_INT(errs[3], 0);
    CHECK_INT(asyncio_semaphore_value(&s), 3); /* every permit given is back */
    CHECK_INT(asyncio_semaphore_destroy(&s), 0);
    release_all(ts, 4);
    return 0;
}

static void test_semaphore_cancel_before_and_after_handoff(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_sem_cancel, NULL, NULL), 0);
    assert_log("got0:ECANCELED got1:0 got2:ECANCELED release got3:0");
}

static int main_bounded(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_semaphore_t s;
    CHECK_INT(asyncio_bounded_semaphore_init(&s, 2), 0);
    CHECK_INT(asyncio_semaphore_release(&s), -EOVERFLOW);
    CHECK_INT(asyncio_semaphore_value(&s), 2);
    CHECK_INT(asyncio_semaphore_acquire(&s), 0);
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(asyncio_semaphore_release(&s), -EOVERFLOW);
    CHECK_INT(asyncio_semaphore_value(&s), 2);
    /* With waiters a release hands its permit on, within the bound. */
    CHECK_INT(asyncio_semaphore_acquire(&s), 0);
    CHECK_INT(asyncio_semaphore_acquire(&s), 0);
    struct worker w;
    asyncio_task_t *t = spawn_worker(sem_worker, &w, 0, &s);
    tu_yield(1);
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(await_soon(t), 0);
    CHECK_INT(asyncio_semaphore_value(&s), 1);
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(asyncio_semaphore_release(&s), -EOVERFLOW);
    CHECK_INT(asyncio_semaphore_destroy(&s), 0);
    /* A bound of zero allows no release at all; an unbounded semaphore
     * stops at INT_MAX. */
    CHECK_INT(asyncio_bounded_semaphore_init(&s, 0), 0);
    CHECK_INT(asyncio_semaphore_release(&s), -EOVERFLOW);
    CHECK_INT(asyncio_semaphore_init(&s, INT_MAX), 0);
    CHECK_INT(asyncio_semaphore_release(&s), -EOVERFLOW);
    CHECK_INT(asyncio_semaphore_value(&s), INT_MAX);
    asyncio_task_release(t);
    return 0;
}

static void test_bounded_semaphore_release_past_bound(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_bounded, NULL, NULL), 0);
    assert_log("got0:0");
}

/* asyncio's order: a semaphore at 0, A waiting; two releases in a row wake
 * A (it has not run yet) and leave a permit free, yet the semaphore counts
 * as locked and an acquire queues behind A instead of taking that permit
 * first. Checked against CPython 3.11: "locked=True value=1 A:got main:got
 * locked=True value=0 A:released end value=2". */
static int sem_holder(void *arg, void **result)
{
    asyncio_semaphore_t *s = arg;
    (void)result;
    int rc = asyncio_semaphore_acquire(s);
    LOG("A:got:%s", tu_err(rc));
    if (rc < 0)
        return rc;
    CHECK_INT(asyncio_sleep(0), 0);
    CHECK_INT(asyncio_semaphore_release(s), 0);
    LOG("A:released");
    return rc;
}

static int main_sem_no_barging(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_semaphore_t s;
    CHECK_INT(asyncio_semaphore_init(&s, 0), 0);
    asyncio_task_t *a = tu_spawn(sem_holder, &s, "A");
    tu_yield(1); /* A waits */
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    LOG("locked=%d value=%d", asyncio_semaphore_locked(&s), asyncio_semaphore_value(&s));
    CHECK_INT(asyncio_semaphore_acquire(&s), 0);
    LOG("main:got");
    LOG("locked=%d value=%d", asyncio_semaphore_locked(&s), asyncio_semaphore_value(&s));
    CHECK_INT(asyncio_await(a, NULL), 0);
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    LOG("end value=%d", asyncio_semaphore_value(&s));
    CHECK_INT(asyncio_semaphore_destroy(&s), 0);
    asyncio_task_release(a);
    return 0;
}

static void test_semaphore_acquire_does_not_overtake_a_woken_waiter(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_sem_no_barging, NULL, NULL), 0);
    assert_log("locked=1 value=1 A:got:0 main:got locked=1 value=0 A:released end value=2");
}

/* A waiter woken by a cancellation does not hold its place: with it the
 * only one listed, a free permit is taken at once. */
static int main_sem_cancelled_waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_semaphore_t s;
    CHECK_INT(asyncio_semaphore_init(&s, 0), 0);
    asyncio_task_t *a = tu_spawn(sem_holder, &s, "A");
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(a), 1);
    CHECK_INT(asyncio_semaphore_release(&s), 0); /* A is on its way out */
    LOG("locked=%d value=%d", asyncio_semaphore_locked(&s), asyncio_semaphore_value(&s));
    CHECK_INT(asyncio_semaphore_acquire(&s), 0); /* without waiting */
    LOG("main:got");
    CHECK_INT(asyncio_await(a, NULL), -ECANCELED);
    CHECK_INT(asyncio_semaphore_release(&s), 0);
    CHECK_INT(asyncio_semaphore_value(&s), 1);
    CHECK_INT(asyncio_semaphore_destroy(&s), 0);
    asyncio_task_release(a);
    return 0;
}

static void test_semaphore_cancelled_waiter_holds_no_place(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_sem_cancelled_waiter, NULL, NULL), 0);
    assert_log("locked=0 value=1 main:got A:got:ECANCELED");
}

/* ---- Barrier ------------------------------------------------------------- */

static int barrier_worker(void *arg, void **result)
{
    struct worker *w = arg;
    (void)result;
    int rounds = w->obj2 ? *(int *)w->obj2 : 1;
    int rc = 0;
    for (int r = 0; r < rounds; r++) {
        rc = asyncio_barrier_wait(w->obj);
        LOG("b%d:%s", w->id, tu_err(rc));
        if (rc < 0)
            break;
    }
    return rc < 0 ? rc : 0;
}

static int main_barrier_cycles(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_barrier_t b;
    CHECK_INT(asyncio_barrier_init(&b, 3), 0);
    CHECK_INT(asyncio_barrier_parties(&b), 3);
    CHECK_INT(asyncio_barrier_n_waiting(&b), 0);
    CHECK_INT(asyncio_barrier_broken(&b), 0);
    int rounds = 2;
    struct worker ws[3];
    asyncio_task_t *ts[3];
    for (int i = 0; i < 3; i++) {
        ts[i] = spawn_worker(barrier_worker, &ws[i], i, &b);
        ws[i].obj2 = &rounds;
    }
    tu_yield(1);
    LOG("n_waiting:%d", asyncio_barrier_n_waiting(&b));
    CHECK_INT(asyncio_barrier_destroy(&b), -EBUSY);
    CHECK_INT(gather_soon(3, ts, NULL, 0), 0);
    CHECK_INT(asyncio_barrier_n_waiting(&b), 0);
    CHECK_INT(asyncio_barrier_destroy(&b), 0);
    release_all(ts, 3);
    return 0;
}

static void test_barrier_three_parties_two_cycles(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_barrier_cycles, NULL, NULL), 0);
    /* Round 1: b0 and b1 wait, b2 arrives last (index 2) and goes on at
     * once; its second wait comes while b0 and b1 have not left yet (the
     * barrier drains: n_waiting is 0), so it waits for them, as b0 does
     * when it comes back. b1 leaves last and arrives at once, so round 2
     * runs b1, b2, b0; b0 completes it. */
    assert_log("b2:2 n_waiting:0 b0:0 b1:1 b0:2 b1:0 b2:1");
}

/* A task back at the barrier before the round drained waits for it (CPython
 * test_draining_state / test_blocking_tasks_while_draining). */
static int main_barrier_draining(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_barrier_t b;
    asyncio_barrier_init(&b, 2);
    int rounds = 2;
    struct worker w;
    asyncio_task_t *t = spawn_worker(barrier_worker, &w, 1, &b);
    w.obj2 = &rounds;
    tu_yield(1);
    CHECK_INT(asyncio_barrier_n_waiting(&b), 1);
    LOG("main:%s", tu_err(asyncio_barrier_wait(&b)));
    CHECK_INT(asyncio_barrier_n_waiting(&b), 0); /* draining */
    LOG("main:%s", tu_err(asyncio_barrier_wait(&b)));
    CHECK_INT(await_soon(t), 0);
    CHECK_INT(asyncio_barrier_destroy(&b), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_barrier_blocks_while_draining(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_barrier_draining, NULL, NULL), 0);
    assert_log("main:1 b1:0 main:1 b1:0");
}

static int main_barrier_abort_reset(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_barrier_t b;
    asyncio_barrier_init(&b, 3);
    struct worker ws[3];
    asyncio_task_t *ts[3];
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(barrier_worker, &ws[i], i, &b);
    tu_yield(1);
    LOG("abort");
    CHECK_INT(asyncio_barrier_abort(&b), 0);
    CHECK_INT(asyncio_barrier_broken(&b), 1);
    CHECK_INT(asyncio_barrier_n_waiting(&b), 0);
    int errs[4];
    CHECK_INT(gather_soon(2, ts, errs, ASYNCIO_RETURN_EXCEPTIONS), 2);
    release_all(ts, 2);
    LOG("late:%s", tu_err(asyncio_barrier_wait(&b))); /* broken until reset */
    CHECK_INT(asyncio_barrier_reset(&b), 0);
    CHECK_INT(asyncio_barrier_broken(&b), 0);

    /* Reset with tasks waiting: they get -EPIPE; the barrier then works. */
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(barrier_worker, &ws[i], 10 + i, &b);
    tu_yield(1);
    LOG("reset");
    CHECK_INT(asyncio_barrier_reset(&b), 0);
    CHECK_INT(asyncio_barrier_broken(&b), 0);
    CHECK_INT(gather_soon(2, ts, errs, ASYNCIO_RETURN_EXCEPTIONS), 2);
    CHECK_INT(errs[0], -EPIPE);
    release_all(ts, 2);
    for (int i = 0; i < 3; i++)
        ts[i] = spawn_worker(barrier_worker, &ws[i], 20 + i, &b);
    CHECK_INT(gather_soon(3, ts, NULL, 0), 0);
    release_all(ts, 3);

    /* A task arriving while a reset has not finished waits for it, then
     * takes part in the next round. */
    asyncio_task_t *t4[4];
    struct worker w4[4];
    for (int i = 0; i < 2; i++)
        t4[i] = spawn_worker(barrier_worker, &w4[i], 30 + i, &b);
    tu_yield(1);
    CHECK_INT(asyncio_barrier_reset(&b), 0);
    for (int i = 2; i < 4; i++)
        t4[i] = spawn_worker(barrier_worker, &w4[i], 30 + i, &b);
    LOG("reset");
    LOG("main:%s", tu_err(asyncio_barrier_wait(&b)));
    CHECK_INT(gather_soon(4, t4, errs, ASYNCIO_RETURN_EXCEPTIONS), 2);
    CHECK_INT(asyncio_barrier_destroy(&b), 0);
    release_all(t4, 4);
    return 0;
}

static void test_barrier_abort_and_reset(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_barrier_abort_reset, NULL, NULL), 0);
    assert_log("abort b0:EPIPE b1:EPIPE late:EPIPE reset b10:EPIPE b11:EPIPE "
               "b22:2 b20:0 b21:1 reset b30:EPIPE b31:EPIPE main:2 b32:0 b33:1");
}

/* A task cancelled while it waits leaves without breaking the barrier, as
 * in asyncio: the count goes down, and indexes may then repeat. */
static int main_barrier_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_barrier_t b;
    asyncio_barrier_init(&b, 3);
    struct worker ws[4];
    asyncio_task_t *ts[4];
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(barrier_worker, &ws[i], i, &b);
    tu_yield(1);
    CHECK_INT(asyncio_barrier_n_waiting(&b), 2);
    CHECK_INT(asyncio_task_cancel(ts[0]), 1);
    CHECK_INT(await_soon(ts[0]), -ECANCELED);
    CHECK_INT(asyncio_barrier_n_waiting(&b), 1);
    CHECK_INT(asyncio_barrier_broken(&b), 0);
    for (int i = 2; i < 4; i++)
        ts[i] = spawn_worker(barrier_worker, &ws[i], i, &b);
    CHECK_INT(gather_soon(3, ts + 1, NULL, 0), 0);
    CHECK_INT(asyncio_barrier_destroy(&b), 0);
    release_all(ts, 4);
    return 0;
}

static void test_barrier_cancelled_waiter_leaves_without_breaking(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_barrier_cancel, NULL, NULL), 0);
    assert_log("b0:ECANCELED b3:2 b1:1 b2:1");
}

/* ---- misuse -------------------------------------------------------------- */

static void cb_try_waits(void *arg)
{
    asyncio_lock_t *lock = arg;
    /* A callback is not a task: waiting calls refuse. */
    CHECK_INT(asyncio_lock_acquire(lock), -EPERM);
    LOG("cb");
}

static int main_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_lock_t lock;
    asyncio_event_t ev;
    asyncio_condition_t c;
    asyncio_semaphore_t s;
    asyncio_barrier_t b;
    CHECK_INT(asyncio_lock_init(&lock), 0);
    CHECK_INT(asyncio_event_init(&ev), 0);
    CHECK_INT(asyncio_condition_init(&c, NULL), 0);
    CHECK_INT(asyncio_semaphore_init(&s, 1), 0);
    CHECK_INT(asyncio_barrier_init(&b, 2), 0);

    CHECK_INT(asyncio_lock_release(&lock), -EPERM); /* not locked */
    CHECK_INT(asyncio_condition_wait(&c), -EPERM);  /* lock not held */
    CHECK_INT(asyncio_condition_wait_for(&c, counter_at_least_3, NULL), -EPERM);
    CHECK_INT(asyncio_condition_notify(&c, 1), -EPERM);
    CHECK_INT(asyncio_condition_notify_all(&c), -EPERM);
    CHECK_INT(asyncio_condition_release(&c), -EPERM);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    CHECK_INT(asyncio_condition_notify(&c, -1), -EINVAL);
    CHECK_INT(asyncio_condition_wait_for(&c, NULL, NULL), -EINVAL);
    CHECK_INT(asyncio_condition_notify(&c, 0), 0);
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(asyncio_call_soon(cb_try_waits, &lock, NULL), 0);
    tu_yield(2);

    /* Destroy with a waiter: -EBUSY, and nothing changes. */
    CHECK_INT(asyncio_lock_acquire(&lock), 0);
    struct worker w;
    asyncio_task_t *t = spawn_worker(lock_worker, &w, 0, &lock);
    tu_yield(1);
    CHECK_INT(asyncio_lock_destroy(&lock), -EBUSY);
    CHECK_INT(asyncio_lock_release(&lock), 0);
    CHECK_INT(await_soon(t), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_lock_destroy(&lock), 0);
    /* Destroyed: every call says -EINVAL. */
    CHECK_INT(asyncio_lock_acquire(&lock), -EINVAL);
    CHECK_INT(asyncio_lock_release(&lock), -EINVAL);
    CHECK_INT(asyncio_lock_locked(&lock), -EINVAL);
    CHECK_INT(asyncio_lock_destroy(&lock), -EINVAL);
    CHECK_INT(asyncio_condition_init(&c, &lock), -EINVAL); /* lock not usable */

    CHECK_INT(asyncio_event_destroy(&ev), 0);
    CHECK_INT(asyncio_event_wait(&ev), -EINVAL);
    CHECK_INT(asyncio_semaphore_destroy(&s), 0);
    CHECK_INT(asyncio_semaphore_acquire(&s), -EINVAL);
    CHECK_INT(asyncio_barrier_destroy(&b), 0);
    CHECK_INT(asyncio_barrier_wait(&b), -EINVAL);
    return 0;
}

static void test_misuse_gets_error_codes(void **state)
{
    (void)state;
    /* NULL everywhere. */
    assert_int_equal(asyncio_lock_init(NULL), -EINVAL);
    assert_int_equal(asyncio_lock_acquire(NULL), -EINVAL);
    assert_int_equal(asyncio_lock_release(NULL), -EINVAL);
    assert_int_equal(asyncio_lock_locked(NULL), -EINVAL);
    assert_int_equal(asyncio_lock_destroy(NULL), -EINVAL);
    assert_int_equal(asyncio_event_init(NULL), -EINVAL);
    assert_int_equal(asyncio_event_set(NULL), -EINVAL);
    assert_int_equal(asyncio_event_clear(NULL), -EINVAL);
    assert_int_equal(asyncio_event_is_set(NULL), -EINVAL);
    assert_int_equal(asyncio_event_wait(NULL), -EINVAL);
    assert_int_equal(asyncio_event_destroy(NULL), -EINVAL);
    assert_int_equal(asyncio_condition_init(NULL, NULL), -EINVAL);
    assert_int_equal(asyncio_condition_acquire(NULL), -EINVAL);
    assert_int_equal(asyncio_condition_release(NULL), -EINVAL);
    assert_int_equal(asyncio_condition_locked(NULL), -EINVAL);
    assert_int_equal(asyncio_condition_wait(NULL), -EINVAL);
    assert_int_equal(asyncio_condition_wait_for(NULL, counter_at_least_3, NULL), -EINVAL);
    assert_int_equal(asyncio_condition_notify(NULL, 1), -EINVAL);
    assert_int_equal(asyncio_condition_notify_all(NULL), -EINVAL);
    assert_int_equal(asyncio_condition_destroy(NULL), -EINVAL);
    assert_int_equal(asyncio_semaphore_init(NULL, 1), -EINVAL);
    assert_int_equal(asyncio_bounded_semaphore_init(NULL, 1), -EINVAL);
    assert_int_equal(asyncio_semaphore_acquire(NULL), -EINVAL);
    assert_int_equal(asyncio_semaphore_release(NULL), -EINVAL);
    assert_int_equal(asyncio_semaphore_locked(NULL), -EINVAL);
    assert_int_equal(asyncio_semaphore_value(NULL), -EINVAL);
    assert_int_equal(asyncio_semaphore_destroy(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_init(NULL, 1), -EINVAL);
    assert_int_equal(asyncio_barrier_wait(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_reset(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_abort(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_parties(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_n_waiting(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_broken(NULL), -EINVAL);
    assert_int_equal(asyncio_barrier_destroy(NULL), -EINVAL);

    /* Bad values, and objects never initialised. */
    asyncio_semaphore_t s;
    asyncio_barrier_t b;
    asyncio_lock_t zero_lock;
    memset(&zero_lock, 0, sizeof zero_lock);
    assert_int_equal(asyncio_semaphore_init(&s, -1), -EINVAL);
    assert_int_equal(asyncio_bounded_semaphore_init(&s, -1), -EINVAL);
    assert_int_equal(asyncio_barrier_init(&b, 0), -EINVAL);
    assert_int_equal(asyncio_lock_acquire(&zero_lock), -EINVAL);

    /* Outside a task: waiting calls say -EPERM, even when they would not
     * suspend; the others work without a loop. */
    asyncio_lock_t lock;
    asyncio_event_t ev;
    asyncio_condition_t c;
    assert_int_equal(asyncio_lock_init(&lock), 0);
    assert_int_equal(asyncio_lock_acquire(&lock), -EPERM);
    assert_int_equal(asyncio_lock_locked(&lock), 0);
    assert_int_equal(asyncio_event_init(&ev), 0);
    assert_int_equal(asyncio_event_set(&ev), 0);
    assert_int_equal(asyncio_event_wait(&ev), -EPERM);
    assert_int_equal(asyncio_condition_init(&c, &lock), 0);
    assert_int_equal(asyncio_condition_wait(&c), -EPERM);
    assert_int_equal(asyncio_semaphore_init(&s, 1), 0);
    assert_int_equal(asyncio_semaphore_acquire(&s), -EPERM);
    assert_int_equal(asyncio_semaphore_release(&s), 0);
    assert_int_equal(asyncio_semaphore_value(&s), 2);
    assert_int_equal(asyncio_barrier_init(&b, 1), 0);
    assert_int_equal(asyncio_barrier_wait(&b), -EPERM);
    assert_int_equal(asyncio_barrier_abort(&b), 0);
    assert_int_equal(asyncio_condition_destroy(&c), 0);
    assert_int_equal(asyncio_lock_destroy(&lock), 0);

    assert_int_equal(tu_run(main_misuse, NULL, NULL), 0);
    assert_log("cb w0 got0:0");
}

/* ---- cancellation and timeout harness ------------------------------------ */

/*
 * A scenario with five waits that block (lock, event, semaphore, condition,
 * barrier) and a last yield, run again and again: run k interrupts it at
 * its k-th wait, by cancelling the task or by moving the deadline of a
 * timeout scope around it to now, either while it waits there (BEFORE), or
 * just after what it waits for was given to it but before it resumed
 * (AFTER). After each run: the lock is free, the semaphore has all its
 * permits, nobody is left waiting anywhere (destroy succeeds), and the
 * interruption came out at the wait it should.
 */
enum { NWAITS = 5 };
enum { BEFORE, AFTER };
enum { BY_CANCEL, BY_TIMEOUT };

struct harness {
    asyncio_lock_t lock;
    asyncio_event_t ev;
    asyncio_semaphore_t sem;
    asyncio_condition_t cond;
    asyncio_barrier_t bar;
    asyncio_timeout_t *scope; /* the scenario's, while open */
    int how;                  /* BY_CANCEL, BY_TIMEOUT */
    int step;                 /* the wait the scenario is at (1..6) */
    int fail_step;            /* the wait that failed, or 0 */
};

static int scenario(void *arg, void **result)
{
    struct harness *h = arg;
    (void)result;
    asyncio_timeout_t scope;
    if (h->how == BY_TIMEOUT) {
        CHECK_INT(asyncio_timeout_enter(&scope, INFINITY), 0);
        h->scope = &scope;
    }
    int rc;
    h->step = 1;
    if ((rc = asyncio_lock_acquire(&h->lock)) < 0)
        goto out;
    CHECK_INT(asyncio_lock_locked(&h->lock), 1);
    h->step = 2;
    if ((rc = asyncio_event_wait(&h->ev)) < 0)
        goto out_lock;
    h->step = 3;
    if ((rc = asyncio_semaphore_acquire(&h->sem)) < 0)
        goto out_lock;
    CHECK_INT(asyncio_condition_acquire(&h->cond), 0); /* free: no wait */
    h->step = 4;
    rc = asyncio_condition_wait(&h->cond);
    CHECK_INT(asyncio_condition_locked(&h->cond), 1); /* whatever rc is */
    CHECK_INT(asyncio_condition_release(&h->cond), 0);
    if (rc < 0)
        goto out_sem;
    h->step = 5;
    if ((rc = asyncio_barrier_wait(&h->bar)) < 0)
        goto out_sem;
    CHECK_INT(rc, 0);
    h->step = 6;
    rc = asyncio_sleep(0);
out_sem:
    CHECK_INT(asyncio_semaphore_release(&h->sem), 0);
out_lock:
    CHECK_INT(asyncio_lock_release(&h->lock), 0);
out:
    if (rc < 0)
        h->fail_step = h->step;
    if (h->how == BY_TIMEOUT) {
        h->scope = NULL;
        int ex = asyncio_timeout_exit(&scope);
        CHECK_INT(ex, rc == -ETIMEDOUT ? -ETIMEDOUT : 0);
    }
    return rc < 0 ? rc : 0;
}

/* Give the scenario what it waits for at wait s. */
static void unblock(struct harness *h, int s, int *holds_lock, int *holds_permit)
{
    switch (s) {
    case 1:
        CHECK_INT(asyncio_lock_release(&h->lock), 0);
        *holds_lock = 0;
        break;
    case 2:
        CHECK_INT(asyncio_event_set(&h->ev), 0);
        break;
    case 3:
        CHECK_INT(asyncio_semaphore_release(&h->sem), 0);
        *holds_permit = 0;
        break;
    case 4:
        CHECK_INT(asyncio_condition_acquire(&h->cond), 0);
        CHECK_INT(asyncio_condition_notify(&h->cond, 1), 1);
        CHECK_INT(asyncio_condition_release(&h->cond), 0);
        break;
    case 5:
        CHECK_INT(asyncio_barrier_wait(&h->bar), 1); /* the last: no wait */
        break;
    default:
        break;
    }
}

static void interrupt(struct harness *h, asyncio_task_t *t)
{
    if (h->how == BY_CANCEL)
        CHECK_INT(asyncio_task_cancel(t), 1);
    else
        CHECK_INT(asyncio_timeout_reschedule(h->scope, 0), 0); /* due now */
}

/* One run: interrupt at wait k (0: never). Returns the scenario's result. */
static int harness_run(struct harness *h, int how, int when, int k)
{
    memset(h, 0, sizeof *h);
    h->how = how;
    asyncio_lock_init(&h->lock);
    asyncio_event_init(&h->ev);
    asyncio_semaphore_init(&h->sem, 0);
    asyncio_condition_init(&h->cond, NULL);
    asyncio_barrier_init(&h->bar, 2);
    /* This task holds the lock and the semaphore's only permit. */
    int holds_lock = 1, holds_permit = 1;
    CHECK_INT(asyncio_lock_acquire(&h->lock), 0);

    asyncio_task_t *t = tu_spawn(scenario, h, "scenario");
    for (int s = 1; s <= NWAITS; s++) {
        /* The scenario is parked at wait s once it has set step s. */
        for (int spins = 0; h->step < s && !asyncio_future_done(t); spins++) {
            if (spins > 100) {
                CHECK(!"scenario stuck");
                break;
            }
            CHECK_INT(asyncio_sleep(0), 0);
        }
        if (asyncio_future_done(t) || h->step != s)
            break;
        /* Past k the scenario should have failed; if it goes on anyway,
         * let it, so that the step checks below fail instead of a hang. */
        if (s == k && when == BEFORE) {
            interrupt(h, t);
            continue;
        }
        unblock(h, s, &holds_lock, &holds_permit);
        if (s == k)
            interrupt(h, t);
    }
    int rc = await_soon(t);
    asyncio_task_release(t);

    /* Give back what this task still holds; then nothing may be held. */
    if (holds_lock)
        CHECK_INT(asyncio_lock_release(&h->lock), 0);
    if (holds_permit)
        CHECK_INT(asyncio_semaphore_release(&h->sem), 0);
    CHECK_INT(asyncio_lock_locked(&h->lock), 0);
    CHECK_INT(asyncio_semaphore_value(&h->sem), 1);
    CHECK_INT(asyncio_condition_locked(&h->cond), 0);
    CHECK_INT(asyncio_barrier_n_waiting(&h->bar), 0);
    CHECK_INT(asyncio_barrier_broken(&h->bar), 0);
    CHECK_INT(asyncio_lock_destroy(&h->lock), 0);
    CHECK_INT(asyncio_event_destroy(&h->ev), 0);
    CHECK_INT(asyncio_semaphore_destroy(&h->sem), 0);
    CHECK_INT(asyncio_condition_destroy(&h->cond), 0);
    CHECK_INT(asyncio_barrier_destroy(&h->bar), 0);
    CHECK_INT(asyncio_task_count(), 1);
    return rc;
}

struct harness_case {
    int how, when;
    int fail_step[NWAITS + 1]; /* by k; [0]: no interruption */
};

static int main_harness(void *arg, void **result)
{
    const struct harness_case *hc = arg;
    (void)result;
    struct harness h;
    int expected_rc = hc->how == BY_CANCEL ? -ECANCELED : -ETIMEDOUT;
    for (int k = 0; k <= NWAITS; k++) {
        int rc = harness_run(&h, hc->how, hc->when, k);
        LOG("k%d:%s@%d", k, tu_err(rc), h.fail_step);
        CHECK_INT(rc, k ? expected_rc : 0);
        CHECK_INT(h.fail_step, hc->fail_step[k]);
    }
    return 0;
}

static void test_harness_cancel_at_each_wait(void **state)
{
    (void)state;
    static const struct harness_case hc = {BY_CANCEL, BEFORE, {0, 1, 2, 3, 4, 5}};
    assert_int_equal(tu_run(main_harness, (void *)&hc, NULL), 0);
    assert_log("k0:0@0 k1:ECANCELED@1 k2:ECANCELED@2 k3:ECANCELED@3 k4:ECANCELED@4 "
               "k5:ECANCELED@5");
}

static void test_harness_cancel_after_each_wakeup(void **state)
{
    (void)state;
    /* Every wait woken, then cancelled before it ran, reports the
     * cancellation itself, as in asyncio: a lock or permit handed over goes
     * back (on to the next waiter). */
    static const struct harness_case hc = {BY_CANCEL, AFTER, {0, 1, 2, 3, 4, 5}};
    assert_int_equal(tu_run(main_harness, (void *)&hc, NULL), 0);
    assert_log("k0:0@0 k1:ECANCELED@1 k2:ECANCELED@2 k3:ECANCELED@3 k4:ECANCELED@4 "
               "k5:ECANCELED@5");
}

static void test_harness_timeout_at_each_wait(void **state)
{
    (void)state;
    static const struct harness_case hc = {BY_TIMEOUT, BEFORE, {0, 1, 2, 3, 4, 5}};
    assert_int_equal(tu_run(main_harness, (void *)&hc, NULL), 0);
    assert_log("k0:0@0 k1:ETIMEDOUT@1 k2:ETIMEDOUT@2 k3:ETIMEDOUT@3 k4:ETIMEDOUT@4 "
               "k5:ETIMEDOUT@5");
}

static void test_harness_timeout_after_each_wakeup(void **state)
{
    (void)state;
    /* A deadline passing after the wake-up does not undo it: the next wait
     * times out, as in asyncio; the condition's too, whose lock is free when
     * it resumes (it reports a deadline only when it had to wait for it). */
    static const struct harness_case hc = {BY_TIMEOUT, AFTER, {0, 2, 3, 4, 5, 6}};
    assert_int_equal(tu_run(main_harness, (void *)&hc, NULL), 0);
    assert_log("k0:0@0 k1:ETIMEDOUT@2 k2:ETIMEDOUT@3 k3:ETIMEDOUT@4 k4:ETIMEDOUT@5 "
               "k5:ETIMEDOUT@6");
}

/* A condition whose own lock a task waits for cannot be destroyed; a
 * wait_for whose wait is cancelled returns that. */
static int cond_acquirer(void *arg, void **result)
{
    (void)result;
    asyncio_condition_t *c = arg;
    LOG("acquire:%s", tu_err(asyncio_condition_acquire(c)));
    LOG("release:%s", tu_err(asyncio_condition_release(c)));
    return 0;
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static int cond_wait_for_never(void *arg, void **result)
{
    (void)result;
    asyncio_condition_t *c = arg;
    CHECK_INT(asyncio_condition_acquire(c), 0);
    LOG("wait_for:%s", tu_err(asyncio_condition_wait_for(c, never, NULL)));
    CHECK_INT(asyncio_condition_locked(c), 1); /* held again on return */
    CHECK_INT(asyncio_condition_release(c), 0);
    return 0;
}

static int main_condition_edges(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_condition_t c;
    CHECK_INT(asyncio_condition_init(&c, NULL), 0);
    CHECK_INT(asyncio_condition_acquire(&c), 0);
    asyncio_task_t *t = tu_spawn(cond_acquirer, &c, "acq");
    tu_yield(1); /* it waits for the lock */
    CHECK_INT(asyncio_condition_destroy(&c), -EBUSY);
    CHECK_INT(asyncio_condition_release(&c), 0);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);

    t = tu_spawn(cond_wait_for_never, &c, "wf");
    tu_yield(2);
    CHECK_STR(asyncio_task_waiting_on(t), "condition");
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_condition_destroy(&c), 0);
    return 0;
}

static void test_condition_destroy_busy_lock_and_cancelled_wait_for(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_condition_edges, NULL, NULL), 0);
    assert_log("acquire:0 release:0 wait_for:ECANCELED");
}

/* A task with a cancellation pending that arrives while the last round
 * still drains gets -ECANCELED and leaves the barrier as it was. */
static int barrier_party(void *arg, void **result)
{
    (void)result;
    LOG("party:%s", tu_err(asyncio_barrier_wait(arg)));
    return 0;
}

static int main_barrier_cancel_while_draining(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_barrier_t b;
    CHECK_INT(asyncio_barrier_init(&b, 2), 0);
    asyncio_task_t *t = tu_spawn(barrier_party, &b, "party");
    tu_yield(1);
    CHECK_INT(asyncio_barrier_wait(&b), 1); /* the round ends; party drains */
    CHECK_INT(asyncio_task_cancel(asyncio_current_task()), 1);
    CHECK_INT(asyncio_barrier_wait(&b), -ECANCELED);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    /* Not broken: the next round works. */
    t = tu_spawn(barrier_party, &b, "party");
    tu_yield(1);
    CHECK_INT(asyncio_barrier_wait(&b), 1);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_INT(asyncio_barrier_destroy(&b), 0);
    return 0;
}

static void test_barrier_cancelled_while_the_last_round_drains(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_barrier_cancel_while_draining, NULL, NULL), 0);
    assert_log("party:0 party:0");
}

/* Destroy says 0 only once no task will touch the object again, so the
 * program may free it at once: a waiter cancelled before an event was set,
 * and a semaphore's waiter handed a permit, still touch it when they
 * resume. The objects are on the heap: under ASan a use after free would
 * be reported. */
static int sem_acquirer(void *arg, void **result)
{
    (void)result;
    return asyncio_semaphore_acquire(arg);
}

static int destroy_then_free(int (*destroy)(void *), void *obj)
{
    int rc = -EBUSY;
    for (int i = 0; i < 10 && rc == -EBUSY; i++)
        if ((rc = destroy(obj)) == -EBUSY)
            CHECK_INT(asyncio_sleep(0), 0);
    free(obj);
    return rc;
}

static int destroy_event(void *ev) { return asyncio_event_destroy(ev); }
static int destroy_sem(void *s) { return asyncio_semaphore_destroy(s); }

static int main_destroy_then_free(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_event_t *ev = malloc(sizeof *ev);
    CHECK_INT(asyncio_event_init(ev), 0);
    struct worker ws[2];
    asyncio_task_t *ts[2];
    for (int i = 0; i < 2; i++)
        ts[i] = spawn_worker(event_waiter, &ws[i], i, ev);
    tu_yield(1);
    CHECK_INT(asyncio_task_cancel(ts[0]), 1); /* woken, not resumed */
    CHECK_INT(asyncio_event_set(ev), 0);
    CHECK_INT(destroy_then_free(destroy_event, ev), 0);
    CHECK_INT(gather_soon(2, ts, NULL, ASYNCIO_RETURN_EXCEPTIONS), 1);
    release_all(ts, 2);

    asyncio_semaphore_t *sem = malloc(sizeof *sem);
    CHECK_INT(asyncio_semaphore_init(sem, 0), 0);
    ts[0] = tu_spawn(sem_acquirer, sem, NULL);
    tu_yield(1);
    CHECK_INT(asyncio_semaphore_release(sem), 0); /* handed to ts[0] */
    CHECK_INT(asyncio_semaphore_destroy(sem), -EBUSY); /* it passes permits on */
    CHECK_INT(destroy_then_free(destroy_sem, sem), 0);
    CHECK_INT(gather_soon(1, ts, NULL, 0), 0);
    release_all(ts, 1);
    return 0;
}

static void test_destroy_only_when_no_waiter_touches_it_again(void **state)
{
    (void)state;
    assert_int_equal(tu_run(main_destroy_then_free, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_fifo_order),
        cmocka_unit_test(test_lock_release_hands_off_no_barging),
        cmocka_unit_test(test_lock_cancel_waiting_acquire),
        cmocka_unit_test(test_lock_cancel_after_handoff_passes_the_lock_on),
        cmocka_unit_test(test_lock_acquire_in_timeout_scope),
        cmocka_unit_test(test_event_set_clear_wait),
        cmocka_unit_test(test_event_cancelled_wait_leaves_no_waiter),
        cmocka_unit_test(test_condition_notify_order),
        cmocka_unit_test(test_condition_wait_for_predicate),
        cmocka_unit_test(test_condition_cancelled_wait_reacquires_the_lock),
        cmocka_unit_test(test_condition_notified_then_cancelled_passes_it_on),
        cmocka_unit_test(test_condition_wait_times_out_with_the_lock_held),
        cmocka_unit_test(test_condition_timeout_then_cancel_while_reacquiring),
        cmocka_unit_test(test_condition_over_a_shared_lock),
        cmocka_unit_test(test_semaphore_counting_and_fifo),
        cmocka_unit_test(test_semaphore_cancel_before_and_after_handoff),
        cmocka_unit_test(test_bounded_semaphore_release_past_bound),
        cmocka_unit_test(test_semaphore_acquire_does_not_overtake_a_woken_waiter),
        cmocka_unit_test(test_semaphore_cancelled_waiter_holds_no_place),
        cmocka_unit_test(test_barrier_three_parties_two_cycles),
        cmocka_unit_test(test_barrier_blocks_while_draining),
        cmocka_unit_test(test_barrier_abort_and_reset),
        cmocka_unit_test(test_barrier_cancelled_waiter_leaves_without_breaking),
        cmocka_unit_test(test_misuse_gets_error_codes),
        cmocka_unit_test(test_harness_cancel_at_each_wait),
        cmocka_unit_test(test_harness_cancel_after_each_wakeup),
        cmocka_unit_test(test_harness_timeout_at_each_wait),
        cmocka_unit_test(test_harness_timeout_after_each_wakeup),
        cmocka_unit_test(test_condition_destroy_busy_lock_and_cancelled_wait_for),
        cmocka_unit_test(test_barrier_cancelled_while_the_last_round_drains),
        cmocka_unit_test(test_destroy_only_when_no_waiter_touches_it_again),
    };
    return tu_run_group_tests_name("sync", tests, NULL, NULL);
}
