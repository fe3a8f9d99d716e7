/* Synchronization primitives: Lock, Event, Condition, Semaphore (bounded or
 * not) and Barrier, with asyncio's semantics, on wait queues (waitq.h).
 *
 * Locks and semaphores are handed over: release gives the lock or permit to
 * the first waiter that can still take it, which owns it as soon as release
 * returns, so the lock is never free in between and nobody can barge in.
 * The invariant is that a free lock has no waiter that could be handed it.
 * A lock handed to a waiter that has not run since reads as unlocked, as
 * in asyncio (where that waiter takes it when it runs), and cannot be
 * released then: locked_ is LOCK_HANDED until the waiter resumes.
 * Events, conditions and barriers wake their waiters plainly. */
#include "waitq.h"

#include <errno.h>
#include <limits.h>

/* Markers of initialised objects. */
enum {
    LOCK_MAGIC = 0x4c6f636bu,
    EVENT_MAGIC = 0x4576656eu,
    COND_MAGIC = 0x436f6e64u,
    SEM_MAGIC = 0x53656d61u,
    BARRIER_MAGIC = 0x42617272u,
};

/* Every object begins with its wait queue and a marker, set while it is
 * initialised. */
#define IS(obj, MAGIC) ((obj) && (obj)->magic_ == (MAGIC))
#define lock_ok(l) IS(l, LOCK_MAGIC)
#define event_ok(e) IS(e, EVENT_MAGIC)
#define sem_ok(s) IS(s, SEM_MAGIC)
#define barrier_ok(b) IS(b, BARRIER_MAGIC)
/* 0; -EINVAL if obj is not one (ok: lock_ok...); in debug mode, -EXDEV
 * once reported if obj is used off the loop it is bound to (task.h). */
#define GUARD(obj, ok) (!ok(obj) ? -EINVAL : waitlist_check_owner(&(obj)->waiters_, __func__))
/* Make obj unusable: -EINVAL if it is not one, -EBUSY if busy or a task
 * waits on it, else 0. */
#define DESTROY(obj, MAGIC, busy)                                                    \
    (!IS(obj, MAGIC) ? -EINVAL                                                       \
     : (busy) || !waitq_empty(&(obj)->waiters_) ? -EBUSY                             \
     : (int)((obj)->magic_ = 0))

/* One cancellable wait on q, saying what for. Returns 0 once handed or
 * woken, else the status that ended it. */
static int wait_on(asyncio_waitlist_t *q, const char *what)
{
    struct task *t;
    int rc = task_begin_wait_on(&t, what);
    return rc < 0 ? rc : waitq_wait(q, t);
}

/* ---- Lock ---------------------------------------------------------------- */

/* lock->locked_: free, held by a task that has run since it got it, or
 * handed to a waiter that has not. */
enum { LOCK_FREE = 0, LOCK_HELD = 1, LOCK_HANDED = 2 };

int asyncio_lock_init(asyncio_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    waitq_init(&lock->waiters_);
    lock->locked_ = 0;
    lock->magic_ = LOCK_MAGIC;
    return 0;
}

int asyncio_lock_destroy(asyncio_lock_t *lock)
{
    return DESTROY(lock, LOCK_MAGIC, 0);
}

static void lock_release_internal(asyncio_lock_t *lock);

int asyncio_lock_acquire(asyncio_lock_t *lock)
{
    int bad = GUARD(lock, lock_ok);
    if (bad)
        return bad;
    int rc = task_check_await(NULL);
    if (rc < 0)
        return rc;
    if (lock->locked_ == LOCK_FREE) {
        /* Free means nobody could be handed it: no one to wait behind. */
        lock->locked_ = LOCK_HELD;
        return 0;
    }
    struct task *t;
    if ((rc = task_begin_wait_on(&t, "lock")) < 0)
        return rc;
    rc = waitq_wait(&lock->waiters_, t);
    if (rc == 0) {
        lock->locked_ = LOCK_HELD;
        /* Handed the lock, then cancelled before it ran: as in asyncio,
         * this wait reports it, and the lock goes on to the next waiter. */
        if (task_take_cancel(t)) {
            lock_release_internal(lock);
            return -ECANCELED;
        }
    }
    return rc;
}

static void lock_release_internal(asyncio_lock_t *lock)
{
    struct task *w = waitq_first(&lock->waiters_);
    if (w) {
        waitq_hand(w); /* stays locked, now for w */
        lock->locked_ = LOCK_HANDED;
    } else {
        lock->locked_ = LOCK_FREE;
    }
}

int asyncio_lock_release(asyncio_lock_t *lock)
{
    int bad = GUARD(lock, lock_ok);
    if (bad)
        return bad;
    /* Handed and not taken yet: unlocked, as asyncio sees it (a second
     * release would hand it to a second waiter: two holders). */
    if (lock->locked_ != LOCK_HELD)
        return -EPERM;
    lock_release_internal(lock);
    return 0;
}

int asyncio_lock_locked(const asyncio_lock_t *lock)
{
    if (!lock_ok(lock))
        return -EINVAL;
    return lock->locked_ == LOCK_HELD;
}

/* Take lock for t, the running task, ignoring cancellation and timeout
 * scopes: what a condition wait does to get its lock back. Returns true if
 * a cancellation came while it waited (it is not kept); *waited says
 * whether it had to. */
static bool lock_acquire_uncancellable(asyncio_lock_t *lock, struct task *t, bool *waited)
{
    *waited = false;
    if (lock->locked_ == LOCK_FREE) {
        lock->locked_ = LOCK_HELD;
        return false;
    }
    *waited = true;
    bool cancelled = false;
    waitq_push(&lock->waiters_, t);
    for (;;) {
        /* task_park, not task_park_until: no scope deadline wakes it. */
        if (task_park(t) == -ECANCELED)
            cancelled = true;
        if (t->wait.q.handed) {
            lock->locked_ = LOCK_HELD;
            break;
        }
        if (lock->locked_ == LOCK_FREE) {
            lock->locked_ = LOCK_HELD;
            break;
        }
        /* Still linked (a release skips, never unlinks, a task that was
         * woken otherwise): wait again in the same place. */
    }
    waitq_unlink(t);
    return cancelled;
}

/* ---- Event --------------------------------------------------------------- */

int asyncio_event_init(asyncio_event_t *ev)
{
    if (!ev)
        return -EINVAL;
    waitq_init(&ev->waiters_);
    ev->set_ = 0;
    ev->magic_ = EVENT_MAGIC;
    return 0;
}

int asyncio_event_destroy(asyncio_event_t *ev)
{
    return DESTROY(ev, EVENT_MAGIC, 0);
}

int asyncio_event_set(asyncio_event_t *ev)
{
    int bad = GUARD(ev, event_ok);
    if (bad)
        return bad;
    if (!ev->set_) {
        ev->set_ = 1;
        waitq_wake(&ev->waiters_, SIZE_MAX, 0);
    }
    return 0;
}

int asyncio_event_clear(asyncio_event_t *ev)
{
    int bad = GUARD(ev, event_ok);
    if (bad)
        return bad;
    ev->set_ = 0;
    return 0;
}

int asyncio_event_is_set(const asyncio_event_t *ev)
{
    if (!event_ok(ev))
        return -EINVAL;
    return ev->set_;
}

int asyncio_event_wait(asyncio_event_t *ev)
{
    int bad = GUARD(ev, event_ok);
    if (bad)
        return bad;
    int rc = task_check_await(NULL);
    if (rc < 0)
        return rc;
    return ev->set_ ? 0 : wait_on(&ev->waiters_, "event");
}

/* ---- Condition ----------------------------------------------------------- */

static bool cond_ok(const asyncio_condition_t *c)
{
    return c && c->magic_ == COND_MAGIC && lock_ok(c->lock_);
}

int asyncio_condition_init(asyncio_condition_t *c, asyncio_lock_t *lock)
{
    if (!c || (lock && !lock_ok(lock)))
        return -EINVAL;
    if (!lock) {
        asyncio_lock_init(&c->own_);
        lock = &c->own_;
    } else {
        c->own_.magic_ = 0;
    }
    waitq_init(&c->waiters_);
    c->lock_ = lock;
    c->users_ = 0;
    c->magic_ = COND_MAGIC;
    return 0;
}

int asyncio_condition_destroy(asyncio_condition_t *c)
{
    if (!cond_ok(c))
        return -EINVAL;
    if (c->users_ || !waitq_empty(&c->waiters_) ||
        (c->lock_ == &c->own_ && asyncio_lock_destroy(&c->own_) < 0))
        return -EBUSY;
    c->magic_ = 0;
    return 0;
}

int asyncio_condition_acquire(asyncio_condition_t *c)
{
    return cond_ok(c) ? asyncio_lock_acquire(c->lock_) : -EINVAL;
}

int asyncio_condition_release(asyncio_condition_t *c)
{
    return cond_ok(c) ? asyncio_lock_release(c->lock_) : -EINVAL;
}

int asyncio_condition_locked(const asyncio_condition_t *c)
{
    return cond_ok(c) ? asyncio_lock_locked(c->lock_) : -EINVAL;
}

/* The checks shared by wait and wait_for. */
static int cond_check_wait(asyncio_condition_t *c)
{
    int rc = GUARD(c, cond_ok);
    if (rc == 0)
        rc = task_check_await(NULL);
    if (rc < 0)
        return rc;
    return c->lock_->locked_ == LOCK_HELD ? 0 : -EPERM;
}

static int cond_wait(asyncio_condition_t *c)
{
    struct task *t;
    /* A pending cancellation or an expired scope: fail before letting go
     * of the lock, which is then simply still held. */
    int rc = task_begin_wait_on(&t, "condition");
    if (rc < 0)
        return rc;
    c->users_++;
    waitq_push(&c->waiters_, t);
    lock_release_internal(c->lock_);
    rc = waitq_park(t);
    bool notified = t->wait.q.handed;

    /* Get the lock back whatever happened (asyncio's rule). A cancellation
     * that comes meanwhile, or while the lock was being handed back to us,
     * is reported by this wait. */
    bool waited;
    if (lock_acquire_uncancellable(c->lock_, t, &waited))
        rc = -ECANCELED;
    if (task_take_cancel(t))
        rc = -ECANCELED;
    if (rc == 0 && waited) {
        /* A scope deadline passed while the lock was taken back. When it
         * was free, nothing waited: as in asyncio, a deadline that passed
         * after the notification, before the task ran, is the next wait's. */
        struct task *self;
        rc = task_begin_wait_on(&self, "condition");
    }
    if (rc < 0 && notified) {
        /* We were chosen but do not return as notified: pass it on. */
        waitq_wake(&c->waiters_, 1, 0);
    }
    c->users_--;
    return rc;
}

int asyncio_condition_wait(asyncio_condition_t *c)
{
    int rc = cond_check_wait(c);
    return rc < 0 ? rc : cond_wait(c);
}

int asyncio_condition_wait_for(asyncio_condition_t *c, asyncio_predicate pred, void *arg)
{
    int rc = cond_check_wait(c);
    if (rc < 0)
        return rc;
    if (!pred)
        return -EINVAL;
    while ((rc = pred(arg)) == 0) {
        int w = cond_wait(c);
        if (w < 0)
            return w;
    }
    return rc;
}

int asyncio_condition_notify(asyncio_condition_t *c, int n)
{
    if (n < 0)
        return -EINVAL;
    int bad = GUARD(c, cond_ok);
    if (bad)
        return bad;
    if (c->lock_->locked_ != LOCK_HELD)
        return -EPERM;
    return (int)waitq_wake(&c->waiters_, (size_t)n, 0);
}

int asyncio_condition_notify_all(asyncio_condition_t *c)
{
    return asyncio_condition_notify(c, INT_MAX);
}

/* ---- Semaphore ----------------------------------------------------------- */

static int sem_init(asyncio_semaphore_t *s, int value, int bound)
{
    if (!s || value < 0)
        return -EINVAL;
    waitq_init(&s->waiters_);
    s->value_ = value;
    s->bound_ = bound;
    s->magic_ = SEM_MAGIC;
    return 0;
}

int asyncio_semaphore_init(asyncio_semaphore_t *s, int value)
{
    return sem_init(s, value, -1);
}

int asyncio_bounded_semaphore_init(asyncio_semaphore_t *s, int value)
{
    return sem_init(s, value, value);
}

int asyncio_semaphore_destroy(asyncio_semaphore_t *s)
{
    return DESTROY(s, SEM_MAGIC, 0);
}

/* A waiter handed a permit holds its place until it resumes (asyncio keeps
 * its done future in _waiters until then): while one does, or one still
 * waits, the semaphore counts as locked and a newcomer queues behind it, even
 * if a later release left a permit free. The waiter passes such permits on
 * when it leaves. */
static bool sem_has_live_waiter(const asyncio_semaphore_t *s)
{
    return waitq_holds_place(&s->waiters_);
}

/* Hand free permits to waiters that can take them, in order. */
static void sem_hand_on(asyncio_semaphore_t *s)
{
    struct task *w;
    while (s->value_ > 0 && (w = waitq_first(&s->waiters_))) {
        s->value_--;
        waitq_hand(w);
    }
}

int asyncio_semaphore_acquire(asyncio_semaphore_t *s)
{
    int bad = GUARD(s, sem_ok);
    if (bad)
        return bad;
    int rc = task_check_await(NULL);
    if (rc < 0)
        return rc;
    if (s->value_ > 0 && !sem_has_live_waiter(s)) {
        s->value_--;
        return 0;
    }
    struct task *t;
    if ((rc = task_begin_wait_on(&t, "semaphore")) < 0)
        return rc;
    rc = waitq_wait(&s->waiters_, t);
    /* Handed a permit, then cancelled before it ran: as in asyncio, this
     * wait reports it, and the permit goes back. */
    if (rc == 0 && task_take_cancel(t)) {
        s->value_++;
        rc = -ECANCELED;
    }
    /* Permits released while it held its place go to those behind it. */
    sem_hand_on(s);
    return rc;
}

int asyncio_semaphore_release(asyncio_semaphore_t *s)
{
    int bad = GUARD(s, sem_ok);
    if (bad)
        return bad;
    if (s->bound_ >= 0 && s->value_ >= s->bound_)
        return -EOVERFLOW;
    if (s->value_ == INT_MAX)
        return -EOVERFLOW;
    s->value_++;
    sem_hand_on(s);
    return 0;
}

int asyncio_semaphore_locked(const asyncio_semaphore_t *s)
{
    if (!sem_ok(s))
        return -EINVAL;
    return s->value_ == 0 || sem_has_live_waiter(s);
}

int asyncio_semaphore_value(const asyncio_semaphore_t *s)
{
    if (!sem_ok(s))
        return -EINVAL;
    return s->value_;
}

/* ---- Barrier ------------------------------------------------------------- */

/* asyncio's _BarrierState. */
enum { B_FILLING, B_DRAINING, B_RESETTING, B_BROKEN };

int asyncio_barrier_init(asyncio_barrier_t *b, int parties)
{
    if (!b || parties < 1)
        return -EINVAL;
    waitq_init(&b->waiters_);
    b->parties_ = parties;
    b->count_ = 0;
    b->inside_ = 0;
    b->state_ = B_FILLING;
    b->magic_ = BARRIER_MAGIC;
    return 0;
}

int asyncio_barrier_destroy(asyncio_barrier_t *b)
{
    return DESTROY(b, BARRIER_MAGIC, b->inside_);
}

/* asyncio's Barrier.wait(), with the condition's waits made directly on
 * the barrier: the state only changes between two steps of the loop, so
 * the lock asyncio takes around it has nothing to protect here. */
static int barrier_wait(asyncio_barrier_t *b)
{
    int rc;
    /* _block(): wait while the previous round drains or resets. */
    while (b->state_ == B_DRAINING || b->state_ == B_RESETTING)
        if ((rc = wait_on(&b->waiters_, "barrier")) < 0)
            return rc;
    if (b->state_ == B_BROKEN)
        return -EPIPE;

    int index = b->count_++;
    if (index + 1 == b->parties_) {
        /* _release(): the last to arrive lets the others go. */
        b->state_ = B_DRAINING;
        waitq_wake(&b->waiters_, SIZE_MAX, 0); /* all look again */
        rc = index;
    } else {
        /* _wait(): until filling ends. */
        rc = 0;
        while (b->state_ == B_FILLING && rc >= 0)
            rc = wait_on(&b->waiters_, "barrier");
        if (rc >= 0)
            rc = b->state_ == B_BROKEN || b->state_ == B_RESETTING ? -EPIPE : index;
    }

    /* _exit(): the last to leave ends draining or resetting. */
    if (--b->count_ == 0) {
        if (b->state_ == B_RESETTING || b->state_ == B_DRAINING)
            b->state_ = B_FILLING;
        waitq_wake(&b->waiters_, SIZE_MAX, 0); /* all look again */
    }
    return rc;
}

int asyncio_barrier_wait(asyncio_barrier_t *b)
{
    int bad = GUARD(b, barrier_ok);
    if (bad)
        return bad;
    int rc = task_check_await(NULL);
    if (rc < 0)
        return rc;
    b->inside_++;
    rc = barrier_wait(b);
    b->inside_--;
    return rc;
}

int asyncio_barrier_reset(asyncio_barrier_t *b)
{
    int bad = GUARD(b, barrier_ok);
    if (bad)
        return bad;
    if (b->count_ > 0)
        b->state_ = B_RESETTING;
    else
        b->state_ = B_FILLING;
    waitq_wake(&b->waiters_, SIZE_MAX, 0); /* all look again */
    return 0;
}

int asyncio_barrier_abort(asyncio_barrier_t *b)
{
    int bad = GUARD(b, barrier_ok);
    if (bad)
        return bad;
    b->state_ = B_BROKEN;
    waitq_wake(&b->waiters_, SIZE_MAX, 0); /* all look again */
    return 0;
}

int asyncio_barrier_parties(const asyncio_barrier_t *b)
{
    return barrier_ok(b) ? b->parties_ : -EINVAL;
}

int asyncio_barrier_n_waiting(const asyncio_barrier_t *b)
{
    if (!barrier_ok(b))
        return -EINVAL;
    return b->state_ == B_FILLING ? b->count_ : 0;
}

int asyncio_barrier_broken(const asyncio_barrier_t *b)
{
    if (!barrier_ok(b))
        return -EINVAL;
    return b->state_ == B_BROKEN;
}
