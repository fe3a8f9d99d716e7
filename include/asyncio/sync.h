/*
 * <asyncio/sync.h>: synchronization primitives between tasks (asyncio's
 * Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier).
 * Include <asyncio.h> rather than this file.
 *
 *     asyncio_lock_t lock;               // lock = asyncio.Lock()
 *     asyncio_lock_init(&lock);
 *     ...
 *     rc = asyncio_lock_acquire(&lock);  // async with lock:
 *     if (rc < 0)
 *         return rc;                     //   (-ECANCELED: not acquired)
 *     ...                                //   the critical section
 *     asyncio_lock_release(&lock);
 *
 * The objects belong to the caller: a struct member, a static, or a local
 * of a task that outlives every use of it. Initialise one with its init
 * function before any other use; it needs no running loop for that. Once
 * initialised it must not be moved or copied (waiting tasks are linked to
 * it), and destroy is the last call on it: destroy returns -EBUSY and
 * changes nothing while tasks still wait on it. The library never
 * allocates memory for them: a waiting task is linked through a node on
 * its own stack. An object is used by the tasks and callbacks of one loop
 * (one thread), and may be used by successive loops if no task waits on it
 * when one closes. A function given NULL, or an object that was never
 * initialised or has been destroyed, returns -EINVAL (the check reads a
 * marker in the object and is a safety net, not a guarantee).
 *
 * The waiting calls (acquire, wait, wait_for) follow the conventions of
 * <asyncio.h>: they may suspend, so they must be made from a task (else
 * -EPERM, even when they would not suspend); they return -ECANCELED if the
 * task is cancelled while it waits, and -ETIMEDOUT when a timeout scope of
 * the task expires (<asyncio/timeout.h>). A pending cancellation or an
 * expired scope makes them fail at once only when they would wait: as in
 * asyncio, acquiring a free lock or waiting for a set event does not
 * suspend, and so does not report a cancellation (the task's next wait
 * does). A waiting call that fails leaves no trace: it is no longer
 * queued, took nothing (no lock, no permit), and lost nothing (a
 * notification it was given passes to the next waiter).
 *
 * Fairness: a lock or semaphore released while tasks wait is handed to the
 * first of them (FIFO) at once, so it is never free in between and a task
 * that comes later cannot take it first. A task handed a lock or permit
 * owns it, even if it is cancelled (or its timeout expires) before it runs
 * again: its acquire returns 0 and the cancellation is reported by its
 * next waiting call. The other calls (release, set, clear, notify, reset,
 * abort, and the queries) never suspend, and may be called from a task or
 * from a loop callback.
 */
#ifndef ASYNCIO_SYNC_H
#define ASYNCIO_SYNC_H

#include <asyncio/common.h>
#include <asyncio/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock (asyncio.Lock) ------------------------------------------------ */

/* A mutual exclusion lock. As in asyncio it has no owner: any task (or
 * callback) may release it. Its fields are private. */
typedef struct asyncio_lock {
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int locked_;
} asyncio_lock_t;

/* Initialise lock, unlocked. Returns 0, -EINVAL (NULL). Does not suspend. */
ASYNCIO_API int asyncio_lock_init(asyncio_lock_t *lock);

/*
 * Acquire lock: if it is free, take it at once without suspending;
 * else wait in FIFO order until a release hands it to this task.
 * May suspend. Returns 0 (the caller holds the lock), -EINVAL, -EPERM (not
 * in a task), -ECANCELED, -ETIMEDOUT (the lock was not taken), -ENOMEM (a
 * timeout scope's timer could not be armed).
 */
ASYNCIO_API int asyncio_lock_acquire(asyncio_lock_t *lock);

/*
 * Release lock. If tasks wait for it, the first that can still take it is
 * handed it and the lock stays locked, now for that task; else it becomes
 * free. Any task or callback may release it, as in asyncio. Returns 0,
 * -EINVAL, -EPERM (the lock is not locked: asyncio's RuntimeError).
 * Does not suspend.
 */
ASYNCIO_API int asyncio_lock_release(asyncio_lock_t *lock);

/* 1 if lock is locked, 0 if not, -EINVAL. Does not suspend. */
ASYNCIO_API int asyncio_lock_locked(const asyncio_lock_t *lock);

/* Make lock unusable (later calls return -EINVAL until it is initialised
 * again). Returns 0, -EINVAL, -EBUSY (tasks wait for it: nothing changes).
 * A locked lock nobody waits for may be destroyed. Does not suspend. */
ASYNCIO_API int asyncio_lock_destroy(asyncio_lock_t *lock);

/* ---- Event (asyncio.Event) ---------------------------------------------- */

/* A flag tasks can wait for. Its fields are private. */
typedef struct asyncio_event {
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int set_;
} asyncio_event_t;

/* Initialise ev, not set. Returns 0, -EINVAL. Does not suspend. */
ASYNCIO_API int asyncio_event_init(asyncio_event_t *ev);

/* Set the flag and wake every task waiting for it (their waits return 0,
 * even if the flag is cleared again before they run). Returns 0, -EINVAL.
 * Does not suspend. */
ASYNCIO_API int asyncio_event_set(asyncio_event_t *ev);

/* Clear the flag: later waits block until the next set. Returns 0,
 * -EINVAL. Does not suspend. */
ASYNCIO_API int asyncio_event_clear(asyncio_event_t *ev);

/* 1 if the flag is set, 0 if not, -EINVAL. Does not suspend. */
ASYNCIO_API int asyncio_event_is_set(const asyncio_event_t *ev);

/*
 * Wait until the flag is set; returns at once, without suspending, if it
 * is set already. May suspend. Returns 0, -EINVAL, -EPERM (not in a task),
 * -ECANCELED, -ETIMEDOUT, -ENOMEM (a timeout scope's timer).
 */
ASYNCIO_API int asyncio_event_wait(asyncio_event_t *ev);

/* Make ev unusable. Returns 0, -EINVAL, -EBUSY (tasks wait for it; tasks
 * woken by a set but not yet run do not count). Does not suspend. */
ASYNCIO_API int asyncio_event_destroy(asyncio_event_t *ev);

/* ---- Condition (asyncio.Condition) -------------------------------------- */

/* A condition variable over a lock. Its fields are private. */
typedef struct asyncio_condition {
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int users_;             /* tasks inside a wait */
    asyncio_lock_t *lock_;  /* the lock: own_, or the caller's */
    asyncio_lock_t own_;
} asyncio_condition_t;

/*
 * Initialise cond over lock, an initialised lock that must outlive cond and
 * may be shared by several conditions; with lock NULL the condition uses a
 * lock of its own. Returns 0, -EINVAL (cond NULL, lock not initialised).
 * Does not suspend.
 */
ASYNCIO_API int asyncio_condition_init(asyncio_condition_t *cond, asyncio_lock_t *lock);

/* asyncio_lock_acquire() on cond's lock (may suspend). */
ASYNCIO_API int asyncio_condition_acquire(asyncio_condition_t *cond);

/* asyncio_lock_release() on cond's lock. */
ASYNCIO_API int asyncio_condition_release(asyncio_condition_t *cond);

/* asyncio_lock_locked() on cond's lock. */
ASYNCIO_API int asyncio_condition_locked(const asyncio_condition_t *cond);

/*
 * Wait until notified. The lock must be locked (asyncio checks only that
 * it is locked, not by whom). Releases the lock (handing it to a task
 * waiting for it, if any), waits for asyncio_condition_notify(), then
 * acquires the lock again before returning. The lock is held again when
 * this returns, WHATEVER it returns: also after -ECANCELED or -ETIMEDOUT,
 * as in asyncio (getting it back ignores cancellation, so that may still
 * wait for another task to release it; a cancellation that comes then is
 * reported by this call). The wait is over only once it has the lock back:
 * a scope's deadline passed by then is reported (-ETIMEDOUT), also one
 * that passed after the notification came, before the task resumed, when
 * the lock was free (asyncio returns True there). A wait that was notified
 * but fails anyway (cancelled or timed out before it could run) passes its
 * notification to the next waiter. As asyncio allows, it may return 0
 * without a notification (a "spurious" wake-up): re-check the state, or
 * use asyncio_condition_wait_for().
 * May suspend. Returns 0, -EINVAL, -EPERM (not in a task, or the lock is
 * not locked: then nothing happens), -ECANCELED, -ETIMEDOUT, -ENOMEM (a
 * timeout scope's timer).
 */
ASYNCIO_API int asyncio_condition_wait(asyncio_condition_t *cond);

/* A predicate for asyncio_condition_wait_for(): 0 for false, anything else
 * for true. Called with the lock held. */
typedef int (*asyncio_predicate)(void *arg);

/*
 * Wait until pred(arg) is true (asyncio's Condition.wait_for): with the
 * lock held, call pred and, while it returns 0, asyncio_condition_wait().
 * Returns pred's last value (non-zero: a negative value is returned as it
 * is, so a predicate may end the wait with an error code of its own), or
 * what a failed asyncio_condition_wait() returned (-ECANCELED, ...), or
 * -EINVAL (pred NULL), -EPERM (not in a task, lock not locked). The lock is
 * held when this returns, unless it was not held when it was called.
 * May suspend.
 */
ASYNCIO_API int asyncio_condition_wait_for(asyncio_condition_t *cond, asyncio_predicate pred,
                                           void *arg);

/*
 * Wake up to n tasks waiting on cond (the first n, in the order they began
 * to wait); each returns from its wait once it has the lock again. The
 * lock must be locked. Returns how many were woken (0 or more), -EINVAL
 * (also n < 0), -EPERM (the lock is not locked). Does not suspend.
 */
ASYNCIO_API int asyncio_condition_notify(asyncio_condition_t *cond, int n);

/* Wake every task waiting on cond. Returns as asyncio_condition_notify(). */
ASYNCIO_API int asyncio_condition_notify_all(asyncio_condition_t *cond);

/* Make cond unusable (its own lock too; a caller's lock is left alone).
 * Returns 0, -EINVAL, -EBUSY (tasks are in a wait on cond, or wait for its
 * own lock). Does not suspend. */
ASYNCIO_API int asyncio_condition_destroy(asyncio_condition_t *cond);

/* ---- Semaphore and BoundedSemaphore ------------------------------------ */

/* A counter of permits (asyncio.Semaphore), or with a bound set by
 * asyncio_bounded_semaphore_init() (asyncio.BoundedSemaphore). Its fields
 * are private. */
typedef struct asyncio_semaphore {
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int value_;
    int bound_;   /* -1: none */
} asyncio_semaphore_t;

/* Initialise sem with value permits (value >= 0). Returns 0, -EINVAL
 * (NULL, value < 0). Does not suspend. */
ASYNCIO_API int asyncio_semaphore_init(asyncio_semaphore_t *sem, int value);

/* Initialise sem as a bounded semaphore: value permits, and value is also
 * the most it may ever hold (see asyncio_semaphore_release()). Returns 0,
 * -EINVAL (NULL, value < 0). Does not suspend. */
ASYNCIO_API int asyncio_bounded_semaphore_init(asyncio_semaphore_t *sem, int value);

/*
 * Take a permit: if one is free, at once without suspending; else wait in
 * FIFO order until a release hands one to this task. May suspend. Returns
 * 0 (the caller has a permit), -EINVAL, -EPERM (not in a task),
 * -ECANCELED, -ETIMEDOUT (no permit was taken), -ENOMEM (a timeout
 * scope's timer).
 */
ASYNCIO_API int asyncio_semaphore_acquire(asyncio_semaphore_t *sem);

/*
 * Give a permit back: handed at once to the first task waiting that can
 * still take it, else added to the value. Returns 0, -EINVAL, or
 * -EOVERFLOW, and then changes nothing: for a bounded semaphore, when the
 * value is already at its bound (released more often than acquired:
 * asyncio's ValueError); for any semaphore, when the value would exceed
 * INT_MAX. Does not suspend.
 */
ASYNCIO_API int asyncio_semaphore_release(asyncio_semaphore_t *sem);

/* 1 if an acquire would wait, 0 if not, -EINVAL. As in asyncio, it would
 * wait when no permit is free, and also while tasks wait for one: a task
 * handed a permit counts as waiting until it resumes, so a permit released
 * meanwhile goes to the tasks queued behind it, not to a newcomer. */
ASYNCIO_API int asyncio_semaphore_locked(const asyncio_semaphore_t *sem);

/* The number of free permits (0 or more), or -EINVAL. */
ASYNCIO_API int asyncio_semaphore_value(const asyncio_semaphore_t *sem);

/* Make sem unusable. Returns 0, -EINVAL, -EBUSY (tasks wait for it).
 * Does not suspend. */
ASYNCIO_API int asyncio_semaphore_destroy(asyncio_semaphore_t *sem);

/* ---- Barrier (asyncio.Barrier) ------------------------------------------ */

/* A barrier for a fixed number of tasks. Its fields are private. */
typedef struct asyncio_barrier {
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int parties_;
    int count_;   /* tasks past the entry, not yet left */
    int inside_;  /* tasks in asyncio_barrier_wait() */
    int state_;
} asyncio_barrier_t;

/* Initialise b for parties tasks (parties > 0). Returns 0, -EINVAL.
 * Does not suspend. */
ASYNCIO_API int asyncio_barrier_init(asyncio_barrier_t *b, int parties);

/*
 * Wait until parties tasks are waiting at b, then all return together
 * (asyncio's Barrier.wait()). Each returns its arrival index, 0 for the
 * first to arrive to parties - 1 for the last, which does not suspend. A
 * task arriving while the previous round is still leaving the barrier (or
 * while it is being reset) first waits for that to end.
 * When the barrier is broken (asyncio_barrier_abort()), or is reset while
 * the task waits in it, the call returns -EPIPE (asyncio's
 * BrokenBarrierError). A task cancelled (or timed out) while it waits for
 * the others leaves without breaking the barrier, as in asyncio: the
 * others go on waiting, and one more task must arrive. Until it has
 * resumed it still counts, as in asyncio: a task that arrives in between
 * may complete the round (and pass) without it.
 * May suspend. Returns the index (>= 0), -EPIPE, -EINVAL, -EPERM (not in a
 * task), -ECANCELED, -ETIMEDOUT, -ENOMEM (a timeout scope's timer).
 */
ASYNCIO_API int asyncio_barrier_wait(asyncio_barrier_t *b);

/*
 * Return b to its initial, empty state; tasks waiting in it get -EPIPE,
 * and it is usable again once they have left (tasks arriving meanwhile
 * wait for that). Also repairs a broken barrier. Returns 0, -EINVAL.
 * Does not suspend (in asyncio it is a coroutine only to take a lock).
 */
ASYNCIO_API int asyncio_barrier_reset(asyncio_barrier_t *b);

/*
 * Break b: tasks waiting in it, and every later asyncio_barrier_wait(),
 * get -EPIPE until asyncio_barrier_reset(). Returns 0, -EINVAL.
 * Does not suspend.
 */
ASYNCIO_API int asyncio_barrier_abort(asyncio_barrier_t *b);

/* The number of tasks needed to pass b, or -EINVAL. */
ASYNCIO_API int asyncio_barrier_parties(const asyncio_barrier_t *b);

/* The number of tasks waiting at b for the others (0 while a round is
 * leaving, resetting or broken, as in asyncio), or -EINVAL. */
ASYNCIO_API int asyncio_barrier_n_waiting(const asyncio_barrier_t *b);

/* 1 if b is broken, 0 if not, -EINVAL. */
ASYNCIO_API int asyncio_barrier_broken(const asyncio_barrier_t *b);

/* Make b unusable. Returns 0, -EINVAL, -EBUSY (tasks are in
 * asyncio_barrier_wait() on it). Does not suspend. */
ASYNCIO_API int asyncio_barrier_destroy(asyncio_barrier_t *b);

#ifdef __cplusplus
}
#endif

#endif
