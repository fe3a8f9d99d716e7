/**
 * \file asyncio/sync.h
 * \brief Synchronization primitives between tasks (asyncio's Lock, Event,
 *        Condition, Semaphore, BoundedSemaphore and Barrier).
 *
 * \code
 * asyncio_lock_t lock;               // lock = asyncio.Lock()
 * asyncio_lock_init(&lock);
 * ...
 * rc = asyncio_lock_acquire(&lock);  // async with lock:
 * if (rc < 0)
 *     return rc;                     //   (-ECANCELED: not acquired)
 * ...                                //   the critical section
 * asyncio_lock_release(&lock);
 * \endcode
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
 * when one closes (not in debug mode, see below). A function given NULL, or
 * an object that was never initialised or has been destroyed, returns
 * -EINVAL (the check reads a marker in the object and is a safety net, not
 * a guarantee).
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
 * and cancelled before it runs again does not keep it, as in asyncio: its
 * acquire returns -ECANCELED and the lock or permit goes on to the next
 * waiter (or is free). A timeout scope that expires then is reported by
 * the task's next wait instead: the acquire returns 0 (asyncio's timeout
 * callback comes after the task's step). The other calls (release, set, clear, notify, reset,
 * abort, and the queries) never suspend, and may be called from a task or
 * from a loop callback.
 *
 * Debug mode (<asyncio/debug.h>): an object is bound to the first loop in
 * debug mode that changes it or waits on it. From then on those calls
 * (acquire, release, set, clear, wait, notify, reset, abort) are reported
 * and fail with -EXDEV when made from another thread, from another loop
 * (a later loop of the same thread too), or from a thread with no loop.
 * Initialising the object again unbinds it.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_SYNC_H
#define ASYNCIO_SYNC_H

#include <asyncio/common.h>
#include <asyncio/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock (asyncio.Lock) ------------------------------------------------ */

/**
 * A mutual exclusion lock (asyncio.Lock).
 *
 * As in asyncio it has no owner: any task (or callback) may release it.
 * Opaque: its fields are private; initialise it with asyncio_lock_init().
 */
typedef struct asyncio_lock {
    /** \cond PRIVATE */
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int locked_;
    /** \endcond */
} asyncio_lock_t;

/**
 * Initialise lock, unlocked (asyncio.Lock()).
 *
 * \param lock  the lock
 * \return 0; -EINVAL (NULL).
 * \suspends No.
 * \context Any thread, before any other use of the lock (it needs no loop).
 */
ASYNCIO_API int asyncio_lock_init(asyncio_lock_t *lock);

/**
 * Acquire lock (Lock.acquire()).
 *
 * If it is free, take it at once without suspending; else wait in FIFO
 * order until a release hands it to this task.
 *
 * \param lock  the lock
 * \return 0 (the caller holds the lock); -EINVAL, -EPERM (not in a task),
 *         -ECANCELED, -ETIMEDOUT (the lock was not taken), -ENOMEM (a
 *         timeout scope's timer could not be armed), -EXDEV (debug mode: used
 *         from another loop's thread).
 * \suspends Yes: while the lock is locked, until a release hands it to this
 *           task. Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_lock_acquire(asyncio_lock_t *lock);

/**
 * Release lock (Lock.release()).
 *
 * If tasks wait for it, the first that can still take it is handed it and
 * the lock stays locked, now for that task; else it becomes free. Any task
 * or callback may release it, as in asyncio.
 *
 * \param lock  the lock
 * \return 0; -EINVAL, -EPERM (the lock is not locked, or was handed to a
 *         waiter that has not run since: asyncio's RuntimeError; a second
 *         release would make two holders), -EXDEV (debug mode: used from
 *         another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_lock_release(asyncio_lock_t *lock);

/**
 * Whether lock is locked (Lock.locked()).
 *
 * \param lock  the lock
 * \return 1 if lock is locked, 0 if not; -EINVAL. A lock handed to a
 *         waiter that has not run since reads 0, as in asyncio (where the
 *         waiter takes it when it runs); no other task can take it first.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_lock_locked(const asyncio_lock_t *lock);

/**
 * Make lock unusable: later calls return -EINVAL until it is initialised
 * again.
 *
 * A locked lock nobody waits for may be destroyed.
 *
 * \param lock  the lock
 * \return 0; -EINVAL, -EBUSY (tasks wait for it: nothing changes).
 * \suspends No.
 * \context The thread that uses the lock (no loop needed).
 */
ASYNCIO_API int asyncio_lock_destroy(asyncio_lock_t *lock);

/* ---- Event (asyncio.Event) ---------------------------------------------- */

/**
 * A flag tasks can wait for (asyncio.Event).
 *
 * Opaque: its fields are private; initialise it with asyncio_event_init().
 */
typedef struct asyncio_event {
    /** \cond PRIVATE */
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int set_;
    /** \endcond */
} asyncio_event_t;

/**
 * Initialise ev, not set (asyncio.Event()).
 *
 * \param ev  the event
 * \return 0; -EINVAL (NULL).
 * \suspends No.
 * \context Any thread, before any other use of the event (it needs no loop).
 */
ASYNCIO_API int asyncio_event_init(asyncio_event_t *ev);

/**
 * Set the flag and wake every task waiting for it (Event.set()).
 *
 * Their waits return 0, even if the flag is cleared again before they run.
 *
 * \param ev  the event
 * \return 0; -EINVAL, -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_event_set(asyncio_event_t *ev);

/**
 * Clear the flag: later waits block until the next set (Event.clear()).
 *
 * \param ev  the event
 * \return 0; -EINVAL, -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_event_clear(asyncio_event_t *ev);

/**
 * Whether the flag is set (Event.is_set()).
 *
 * \param ev  the event
 * \return 1 if the flag is set, 0 if not; -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_event_is_set(const asyncio_event_t *ev);

/**
 * Wait until the flag is set (Event.wait()).
 *
 * Returns at once, without suspending, if it is set already.
 *
 * \param ev  the event
 * \return 0; -EINVAL, -EPERM (not in a task), -ECANCELED, -ETIMEDOUT,
 *         -ENOMEM (a timeout scope's timer), -EXDEV (debug mode: used from
 *         another loop's thread).
 * \suspends Yes: while the flag is not set, until a set. Cancellation and
 *           timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_event_wait(asyncio_event_t *ev);

/**
 * Make ev unusable: later calls return -EINVAL until it is initialised
 * again.
 *
 * \param ev  the event
 * \return 0; -EINVAL, -EBUSY (tasks wait for it; tasks woken by a set but not
 *         yet run do not count).
 * \suspends No.
 * \context The thread that uses the event (no loop needed).
 */
ASYNCIO_API int asyncio_event_destroy(asyncio_event_t *ev);

/* ---- Condition (asyncio.Condition) -------------------------------------- */

/**
 * A condition variable over a lock (asyncio.Condition).
 *
 * Opaque: its fields are private; initialise it with
 * asyncio_condition_init().
 */
typedef struct asyncio_condition {
    /** \cond PRIVATE */
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int users_;             /* tasks inside a wait */
    asyncio_lock_t *lock_;  /* the lock: own_, or the caller's */
    asyncio_lock_t own_;
    /** \endcond */
} asyncio_condition_t;

/**
 * Initialise cond over lock (asyncio.Condition(lock)).
 *
 * \param cond  the condition
 * \param lock  an initialised lock that must outlive cond and may be shared
 *              by several conditions; NULL: the condition uses a lock of its
 *              own
 * \return 0; -EINVAL (cond NULL, lock not initialised).
 * \suspends No.
 * \context Any thread, before any other use of the condition (it needs no
 *          loop).
 */
ASYNCIO_API int asyncio_condition_init(asyncio_condition_t *cond, asyncio_lock_t *lock);

/**
 * asyncio_lock_acquire() on cond's lock (Condition.acquire()).
 *
 * \param cond  the condition
 * \return as asyncio_lock_acquire(): 0 (the caller holds the lock); -EINVAL,
 *         -EPERM (not in a task), -ECANCELED, -ETIMEDOUT, -ENOMEM, -EXDEV
 *         (debug mode: used from another loop's thread).
 * \suspends Yes: while the lock is locked, as asyncio_lock_acquire().
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_condition_acquire(asyncio_condition_t *cond);

/**
 * asyncio_lock_release() on cond's lock (Condition.release()).
 *
 * \param cond  the condition
 * \return as asyncio_lock_release(): 0; -EINVAL, -EPERM (not locked), -EXDEV
 *         (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_condition_release(asyncio_condition_t *cond);

/**
 * asyncio_lock_locked() on cond's lock (Condition.locked()).
 *
 * \param cond  the condition
 * \return 1 if the lock is locked, 0 if not; -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_condition_locked(const asyncio_condition_t *cond);

/**
 * Wait until notified (Condition.wait()).
 *
 * The lock must be locked (asyncio checks only that it is locked, not by
 * whom). Releases the lock (handing it to a task waiting for it, if any),
 * waits for asyncio_condition_notify(), then acquires the lock again before
 * returning. The lock is held again when this returns, WHATEVER it returns:
 * also after -ECANCELED or -ETIMEDOUT, as in asyncio (getting it back
 * ignores cancellation, so that may still wait for another task to release
 * it; a cancellation that comes then is reported by this call). A scope's
 * deadline that passed while it waited for the lock is reported
 * (-ETIMEDOUT); one that passed after the notification came, before the
 * task resumed, with the lock free, is the next wait's, as in asyncio
 * (which returns True there). A wait that was notified but fails anyway
 * (cancelled, or timed out before the notification) passes its
 * notification to the next waiter. As
 * asyncio allows, it may return 0 without a notification (a "spurious"
 * wake-up): re-check the state, or use asyncio_condition_wait_for().
 *
 * \param cond  the condition
 * \return 0; -EINVAL, -EPERM (not in a task, or the lock is not locked: then
 *         nothing happens), -ECANCELED, -ETIMEDOUT, -ENOMEM (a timeout
 *         scope's timer), -EXDEV (debug mode: used from another loop's
 *         thread).
 * \suspends Yes: until notified, then until it has the lock back.
 *           Cancellation and timeout scopes end the wait for the
 *           notification, not the one for the lock.
 * \context A task.
 */
ASYNCIO_API int asyncio_condition_wait(asyncio_condition_t *cond);

/**
 * A predicate for asyncio_condition_wait_for(), called with the lock held.
 *
 * \param arg  what asyncio_condition_wait_for() was given
 * \return 0 for false, anything else for true (a negative value ends the
 *         wait with it as an error code).
 */
typedef int (*asyncio_predicate)(void *arg);

/**
 * Wait until pred(arg) is true (Condition.wait_for()).
 *
 * With the lock held, calls pred and, while it returns 0,
 * asyncio_condition_wait(). The lock is held when this returns, unless it
 * was not held when it was called.
 *
 * \param cond  the condition
 * \param pred  the predicate
 * \param arg   passed to pred
 * \return pred's last value (non-zero: a negative value is returned as it
 *         is, so a predicate may end the wait with an error code of its own),
 *         or what a failed asyncio_condition_wait() returned (-ECANCELED,
 *         ...); -EINVAL (cond not initialised, pred NULL), -EPERM (not in a
 *         task, lock not locked), -EXDEV (debug mode: used from another
 *         loop's thread).
 * \suspends Yes: while pred returns 0, in asyncio_condition_wait().
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_condition_wait_for(asyncio_condition_t *cond, asyncio_predicate pred,
                                           void *arg);

/**
 * Wake up to n tasks waiting on cond (Condition.notify()).
 *
 * The first n wake, in the order they began to wait; each returns from its
 * wait once it has the lock again. The lock must be locked.
 *
 * \param cond  the condition
 * \param n     how many to wake, >= 0
 * \return how many were woken (0 or more); -EINVAL (also n < 0), -EPERM (the
 *         lock is not locked), -EXDEV (debug mode: used from another loop's
 *         thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_condition_notify(asyncio_condition_t *cond, int n);

/**
 * Wake every task waiting on cond (Condition.notify_all()).
 *
 * \param cond  the condition
 * \return as asyncio_condition_notify(): how many were woken; -EINVAL,
 *         -EPERM, -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_condition_notify_all(asyncio_condition_t *cond);

/**
 * Make cond unusable (its own lock too; a caller's lock is left alone).
 *
 * \param cond  the condition
 * \return 0; -EINVAL, -EBUSY (tasks are in a wait on cond, or wait for its
 *         own lock).
 * \suspends No.
 * \context The thread that uses the condition (no loop needed).
 */
ASYNCIO_API int asyncio_condition_destroy(asyncio_condition_t *cond);

/* ---- Semaphore and BoundedSemaphore ------------------------------------ */

/**
 * A counter of permits (asyncio.Semaphore), or with a bound set by
 * asyncio_bounded_semaphore_init() (asyncio.BoundedSemaphore).
 *
 * Opaque: its fields are private; initialise it with
 * asyncio_semaphore_init() or asyncio_bounded_semaphore_init().
 */
typedef struct asyncio_semaphore {
    /** \cond PRIVATE */
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int value_;
    int bound_;   /* -1: none */
    /** \endcond */
} asyncio_semaphore_t;

/**
 * Initialise sem with value permits (asyncio.Semaphore(value)).
 *
 * \param sem    the semaphore
 * \param value  the number of permits, >= 0
 * \return 0; -EINVAL (NULL, value < 0).
 * \suspends No.
 * \context Any thread, before any other use of the semaphore (it needs no
 *          loop).
 */
ASYNCIO_API int asyncio_semaphore_init(asyncio_semaphore_t *sem, int value);

/**
 * Initialise sem as a bounded semaphore (asyncio.BoundedSemaphore(value)).
 *
 * \param sem    the semaphore
 * \param value  the number of permits, >= 0, and also the most it may ever
 *               hold (see asyncio_semaphore_release())
 * \return 0; -EINVAL (NULL, value < 0).
 * \suspends No.
 * \context Any thread, before any other use of the semaphore (it needs no
 *          loop).
 */
ASYNCIO_API int asyncio_bounded_semaphore_init(asyncio_semaphore_t *sem, int value);

/**
 * Take a permit (Semaphore.acquire()).
 *
 * If one is free, take it at once without suspending; else wait in FIFO
 * order until a release hands one to this task.
 *
 * \param sem  the semaphore
 * \return 0 (the caller has a permit); -EINVAL, -EPERM (not in a task),
 *         -ECANCELED, -ETIMEDOUT (no permit was taken), -ENOMEM (a timeout
 *         scope's timer), -EXDEV (debug mode: used from another loop's
 *         thread).
 * \suspends Yes: while no permit is free (or tasks wait before it), until a
 *           release hands one to this task. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_semaphore_acquire(asyncio_semaphore_t *sem);

/**
 * Give a permit back (Semaphore.release()).
 *
 * It is handed at once to the first task waiting that can still take it,
 * else added to the value.
 *
 * \param sem  the semaphore
 * \return 0; -EINVAL; -EOVERFLOW, and then changes nothing: for a bounded
 *         semaphore, when the value is already at its bound (released more
 *         often than acquired: asyncio's ValueError); for any semaphore, when
 *         the value would exceed INT_MAX; -EXDEV (debug mode: used from
 *         another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_semaphore_release(asyncio_semaphore_t *sem);

/**
 * Whether an acquire would wait (Semaphore.locked()).
 *
 * As in asyncio, it would wait when no permit is free, and also while tasks
 * wait for one: a task handed a permit counts as waiting until it resumes,
 * so a permit released meanwhile goes to the tasks queued behind it, not to
 * a newcomer.
 *
 * \param sem  the semaphore
 * \return 1 if an acquire would wait, 0 if not; -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_semaphore_locked(const asyncio_semaphore_t *sem);

/**
 * The number of free permits.
 *
 * \param sem  the semaphore
 * \return the number (0 or more); -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_semaphore_value(const asyncio_semaphore_t *sem);

/**
 * Make sem unusable: later calls return -EINVAL until it is initialised
 * again.
 *
 * \param sem  the semaphore
 * \return 0; -EINVAL, -EBUSY (tasks wait for it).
 * \suspends No.
 * \context The thread that uses the semaphore (no loop needed).
 */
ASYNCIO_API int asyncio_semaphore_destroy(asyncio_semaphore_t *sem);

/* ---- Barrier (asyncio.Barrier) ------------------------------------------ */

/**
 * A barrier for a fixed number of tasks (asyncio.Barrier).
 *
 * Opaque: its fields are private; initialise it with asyncio_barrier_init().
 */
typedef struct asyncio_barrier {
    /** \cond PRIVATE */
    asyncio_waitlist_t waiters_;
    unsigned magic_;
    int parties_;
    int count_;   /* tasks past the entry, not yet left */
    int inside_;  /* tasks in asyncio_barrier_wait() */
    int state_;
    /** \endcond */
} asyncio_barrier_t;

/**
 * Initialise b for parties tasks (asyncio.Barrier(parties)).
 *
 * \param b        the barrier
 * \param parties  the number of tasks that pass it together, > 0
 * \return 0; -EINVAL (NULL, parties < 1).
 * \suspends No.
 * \context Any thread, before any other use of the barrier (it needs no
 *          loop).
 */
ASYNCIO_API int asyncio_barrier_init(asyncio_barrier_t *b, int parties);

/**
 * Wait until parties tasks are waiting at b, then all return together
 * (Barrier.wait()).
 *
 * Each returns its arrival index, 0 for the first to arrive to parties - 1
 * for the last, which does not wait for the others. A task arriving while
 * the previous round is still leaving the barrier (or while it is being
 * reset) first waits for that to end.
 *
 * When the barrier is broken (asyncio_barrier_abort()), or is reset while
 * the task waits in it, the call returns -EPIPE (asyncio's
 * BrokenBarrierError). A task cancelled (or timed out) while it waits for
 * the others leaves without breaking the barrier, as in asyncio: the others
 * go on waiting, and one more task must arrive. Until it has resumed it
 * still counts, as in asyncio: a task that arrives in between may complete
 * the round (and pass) without it.
 *
 * \param b  the barrier
 * \return the index (>= 0); -EPIPE, -EINVAL, -EPERM (not in a task),
 *         -ECANCELED, -ETIMEDOUT, -ENOMEM (a timeout scope's timer), -EXDEV
 *         (debug mode: used from another loop's thread).
 * \suspends Yes: until parties tasks have arrived, or the barrier is broken
 *           or reset; first, while a previous round leaves. Cancellation and
 *           timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_barrier_wait(asyncio_barrier_t *b);

/**
 * Return b to its initial, empty state (Barrier.reset()).
 *
 * Tasks waiting in it get -EPIPE, and it is usable again once they have left
 * (tasks arriving meanwhile wait for that). Also repairs a broken barrier.
 * Does not suspend (in asyncio it is a coroutine only to take a lock).
 *
 * \param b  the barrier
 * \return 0; -EINVAL, -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_barrier_reset(asyncio_barrier_t *b);

/**
 * Break b (Barrier.abort()).
 *
 * Tasks waiting in it, and every later asyncio_barrier_wait(), get -EPIPE
 * until asyncio_barrier_reset().
 *
 * \param b  the barrier
 * \return 0; -EINVAL, -EXDEV (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_barrier_abort(asyncio_barrier_t *b);

/**
 * The number of tasks needed to pass b (Barrier.parties).
 *
 * \param b  the barrier
 * \return the number; -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_barrier_parties(const asyncio_barrier_t *b);

/**
 * The number of tasks waiting at b for the others (Barrier.n_waiting).
 *
 * \param b  the barrier
 * \return the number (0 while a round is leaving, resetting or broken, as in
 *         asyncio); -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_barrier_n_waiting(const asyncio_barrier_t *b);

/**
 * Whether b is broken (Barrier.broken).
 *
 * \param b  the barrier
 * \return 1 if b is broken, 0 if not; -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_barrier_broken(const asyncio_barrier_t *b);

/**
 * Make b unusable: later calls return -EINVAL until it is initialised
 * again.
 *
 * \param b  the barrier
 * \return 0; -EINVAL, -EBUSY (tasks are in asyncio_barrier_wait() on it).
 * \suspends No.
 * \context The thread that uses the barrier (no loop needed).
 */
ASYNCIO_API int asyncio_barrier_destroy(asyncio_barrier_t *b);

#ifdef __cplusplus
}
#endif

#endif
