/* Synchronization primitives: Lock, Event, Condition, Semaphore (bounded or
 * not) and Barrier, with asyncio's semantics.
 *
 * Every object keeps a FIFO list of the tasks waiting on it, linked through
 * nodes on the waiters' own stacks, so nothing is ever allocated. A waiter
 * registers its node after task_begin_wait() succeeded, parks in
 * task_park_until() (so timeout scopes govern it) and unlinks its node
 * after it resumes, whatever woke it.
 *
 * Locks and semaphores are handed over: release gives the lock or permit to
 * the first waiter that can still take it (task_can_be_handed) and wakes it
 * with task_wake_handoff(), which keeps a later cancellation for its next
 * wait; the waiter owns what it was handed as soon as release returns, so
 * the lock is never free in between and nobody can barge in. Waiters
 * already woken by a cancellation or timeout are skipped (left linked: they
 * unlink themselves); the invariant is that a free lock has no waiter that
 * could be handed it. A semaphore's waiter handed a permit stays listed
 * until it resumes, as in asyncio, and hands on what was released
 * meanwhile (see sem_hand_on). */
#include "task.h"

#include <errno.h>
#include <limits.h>

/* The public list head is a private mirror of struct dlist. */
_Static_assert(sizeof(asyncio_waitlist_t) == sizeof(struct dlist), "waitlist layout");
_Static_assert(offsetof(asyncio_waitlist_t, prev_) == offsetof(struct dlist, prev), "prev");
_Static_assert(offsetof(asyncio_waitlist_t, next_) == offsetof(struct dlist, next), "next");

static inline struct dlist *wl(asyncio_waitlist_t *w) { return (struct dlist *)(void *)w; }

/* Markers of initialised objects. */
enum {
    LOCK_MAGIC = 0x4c6f636bu,
    EVENT_MAGIC = 0x4576656eu,
    COND_MAGIC = 0x436f6e64u,
    SEM_MAGIC = 0x53656d61u,
    BARRIER_MAGIC = 0x42617272u,
};

/* A task waiting on an object; lives on the waiting task's stack. */
struct sync_waiter {
    struct dlist link;
    struct task *task;
    bool handed; /* given the lock / a permit, notified, or woken by set */
};

static void waiter_init(struct sync_waiter *w, struct task *t)
{
    w->link.prev = w->link.next = NULL;
    w->task = t;
    w->handed = false;
}

/* The first waiter that can still be handed something, or NULL. */
static struct sync_waiter *first_handable(struct dlist *head)
{
    for (struct dlist *n = head->next; n != head; n = n->next) {
        struct sync_waiter *w = container_of(n, struct sync_waiter, link);
        if (task_can_be_handed(w->task))
            return w;
    }
    return NULL;
}

/* Give w what it waits for (a lock, a permit): it owns it from now on. */
static void hand_over(struct sync_waiter *w)
{
    dlist_remove(&w->link);
    w->handed = true;
    task_wake_handoff(w->task, 0);
}

/* Wake up to n waiters that can still be woken, in order, with status 0
 * (a plain wake: a cancellation before they run replaces it). They are
 * unlinked, so they no longer refer to the object. Returns how many. */
static int wake_some(struct dlist *head, int n)
{
    int woken = 0;
    struct dlist *node = head->next;
    while (node != head && woken < n) {
        struct dlist *next = node->next;
        struct sync_waiter *w = container_of(node, struct sync_waiter, link);
        if (task_can_be_handed(w->task)) {
            dlist_remove(&w->link);
            w->handed = true;
            task_wake(w->task, 0);
            woken++;
        }
        node = next;
    }
    return woken;
}

/* Wake every waiter and unlink every node (also those already woken by a
 * cancellation, which then keep their own status). */
static void wake_all(struct dlist *head)
{
    while (!dlist_empty(head)) {
        struct sync_waiter *w = container_of(head->next, struct sync_waiter, link);
        dlist_remove(&w->link);
        w->handed = true;
        task_wake(w->task, 0);
    }
}

/* One cancellable wait on a list: begin, register, park, unregister.
 * Returns the wake status. */
static int wait_on(struct dlist *head)
{
    struct task *t;
    int rc = task_begin_wait_on(&t, "barrier");
    if (rc < 0)
        return rc;
    struct sync_waiter w;
    waiter_init(&w, t);
    dlist_push_back(head, &w.link);
    rc = task_park_until(t, UINT64_MAX, 0);
    dlist_remove(&w.link);
    return rc;
}

/* -EPERM unless called from a task. */
static int check_task(void)
{
    return task_check_await(NULL);
}

/* ---- Lock ---------------------------------------------------------------- */

static bool lock_ok(const asyncio_lock_t *lock)
{
    return lock && lock->magic_ == LOCK_MAGIC;
}

int asyncio_lock_init(asyncio_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    dlist_init(wl(&lock->waiters_));
    lock->locked_ = 0;
    lock->magic_ = LOCK_MAGIC;
    return 0;
}

int asyncio_lock_destroy(asyncio_lock_t *lock)
{
    if (!lock_ok(lock))
        return -EINVAL;
    if (!dlist_empty(wl(&lock->waiters_)))
        return -EBUSY;
    lock->magic_ = 0;
    return 0;
}

int asyncio_lock_acquire(asyncio_lock_t *lock)
{
    if (!lock_ok(lock))
        return -EINVAL;
    int rc = check_task();
    if (rc < 0)
        return rc;
    if (!lock->locked_) {
        /* Free means nobody could be handed it: no one to wait behind. */
        lock->locked_ = 1;
        return 0;
    }
    struct task *t;
    if ((rc = task_begin_wait_on(&t, "lock")) < 0)
        return rc;
    struct sync_waiter w;
    waiter_init(&w, t);
    dlist_push_back(wl(&lock->waiters_), &w.link);
    for (;;) {
        rc = task_park_until(t, UINT64_MAX, 0);
        if (w.handed) {
            /* Ours, whatever came after: a cancellation waits for the next
             * wait (task_wake_handoff). The releaser unlinked the node, and
             * the lock may no longer be looked at. */
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        /* Woken by something else: take the lock if it is free, else
         * keep our place. GCOVR_EXCL_START: nothing else wakes a lock
         * waiter with 0 (only a release, which hands it the lock) */
        if (!lock->locked_) {
            lock->locked_ = 1;
            break;
        }
        /* GCOVR_EXCL_STOP */
    }
    dlist_remove(&w.link); /* a no-op if the releaser did it */
    return rc;
}

static void lock_release_internal(asyncio_lock_t *lock)
{
    struct sync_waiter *w = first_handable(wl(&lock->waiters_));
    if (w)
        hand_over(w); /* stays locked, now for w */
    else
        lock->locked_ = 0;
}

int asyncio_lock_release(asyncio_lock_t *lock)
{
    if (!lock_ok(lock))
        return -EINVAL;
    if (!lock->locked_)
        return -EPERM;
    lock_release_internal(lock);
    return 0;
}

int asyncio_lock_locked(const asyncio_lock_t *lock)
{
    if (!lock_ok(lock))
        return -EINVAL;
    return lock->locked_;
}

/* Take lock for t, the running task, ignoring cancellation and timeout
 * scopes: what a condition wait does to get its lock back. Returns true if
 * a cancellation came while it waited (it is not kept). */
static bool lock_acquire_uncancellable(asyncio_lock_t *lock, struct task *t)
{
    if (!lock->locked_) {
        lock->locked_ = 1;
        return false;
    }
    bool cancelled = false;
    struct sync_waiter w;
    waiter_init(&w, t);
    dlist_push_back(wl(&lock->waiters_), &w.link);
    for (;;) {
        /* task_park, not task_park_until: no scope deadline wakes it. */
        int rc = task_park(t);
        if (w.handed)
            break;
        if (rc == -ECANCELED)
            cancelled = true;
        if (!lock->locked_) {
            lock->locked_ = 1;
            break;
        }
        /* Still linked (a release skips, never unlinks, a task that was
         * woken otherwise): wait again in the same place. */
    }
    dlist_remove(&w.link);
    return cancelled;
}

/* ---- Event --------------------------------------------------------------- */

static bool event_ok(const asyncio_event_t *ev)
{
    return ev && ev->magic_ == EVENT_MAGIC;
}

int asyncio_event_init(asyncio_event_t *ev)
{
    if (!ev)
        return -EINVAL;
    dlist_init(wl(&ev->waiters_));
    ev->set_ = 0;
    ev->magic_ = EVENT_MAGIC;
    return 0;
}

int asyncio_event_destroy(asyncio_event_t *ev)
{
    if (!event_ok(ev))
        return -EINVAL;
    if (!dlist_empty(wl(&ev->waiters_)))
        return -EBUSY;
    ev->magic_ = 0;
    return 0;
}

int asyncio_event_set(asyncio_event_t *ev)
{
    if (!event_ok(ev))
        return -EINVAL;
    if (!ev->set_) {
        ev->set_ = 1;
        wake_all(wl(&ev->waiters_));
    }
    return 0;
}

int asyncio_event_clear(asyncio_event_t *ev)
{
    if (!event_ok(ev))
        return -EINVAL;
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
    if (!event_ok(ev))
        return -EINVAL;
    int rc = check_task();
    if (rc < 0)
        return rc;
    if (ev->set_)
        return 0;
    struct task *t;
    if ((rc = task_begin_wait_on(&t, "event")) < 0)
        return rc;
    struct sync_waiter w;
    waiter_init(&w, t);
    dlist_push_back(wl(&ev->waiters_), &w.link);
    do {
        rc = task_park_until(t, UINT64_MAX, 0);
        /* A wake that was not set()'s leaves the node linked: wait on. */
    } while (rc == 0 && !w.handed);
    dlist_remove(&w.link);
    return rc;
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
    dlist_init(wl(&c->waiters_));
    c->lock_ = lock;
    c->users_ = 0;
    c->magic_ = COND_MAGIC;
    return 0;
}

int asyncio_condition_destroy(asyncio_condition_t *c)
{
    if (!cond_ok(c))
        return -EINVAL;
    if (c->users_ || !dlist_empty(wl(&c->waiters_)))
        return -EBUSY;
    if (c->lock_ == &c->own_ && asyncio_lock_destroy(&c->own_) < 0)
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
static int cond_check_wait(const asyncio_condition_t *c)
{
    if (!cond_ok(c))
        return -EINVAL;
    int rc = check_task();
    if (rc < 0)
        return rc;
    return c->lock_->locked_ ? 0 : -EPERM;
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
    struct sync_waiter w;
    waiter_init(&w, t);
    dlist_push_back(wl(&c->waiters_), &w.link);
    lock_release_internal(c->lock_);
    rc = task_park_until(t, UINT64_MAX, 0);
    dlist_remove(&w.link);
    bool notified = w.handed;

    /* Get the lock back whatever happened (asyncio's rule). A cancellation
     * that comes meanwhile, or while the lock was being handed back to us,
     * is reported by this wait. */
    if (lock_acquire_uncancellable(c->lock_, t))
        rc = -ECANCELED;
    if (task_take_cancel(t))
        rc = -ECANCELED;
    if (rc == 0) {
        /* A scope deadline passed while the lock was taken back. */
        struct task *self;
        rc = task_begin_wait(&self);
    }
    if (rc < 0 && notified) {
        /* We were chosen but do not return as notified: pass it on. */
        wake_some(wl(&c->waiters_), 1);
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
    if (!cond_ok(c) || n < 0)
        return -EINVAL;
    if (!c->lock_->locked_)
        return -EPERM;
    return wake_some(wl(&c->waiters_), n);
}

int asyncio_condition_notify_all(asyncio_condition_t *c)
{
    return asyncio_condition_notify(c, INT_MAX);
}

/* ---- Semaphore ----------------------------------------------------------- */

static bool sem_ok(const asyncio_semaphore_t *s)
{
    return s && s->magic_ == SEM_MAGIC;
}

static int sem_init(asyncio_semaphore_t *s, int value, int bound)
{
    if (!s || value < 0)
        return -EINVAL;
    dlist_init(wl(&s->waiters_));
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
    if (!sem_ok(s))
        return -EINVAL;
    if (!dlist_empty(wl(&s->waiters_)))
        return -EBUSY;
    s->magic_ = 0;
    return 0;
}

/* Semaphore waiters handed a permit stay on the list until they resume
 * (asyncio keeps their done futures in _waiters until then): while one is
 * there, the semaphore counts as locked and a newcomer queues behind it,
 * even if a later release left a permit free. The waiter passes such
 * permits on when it leaves. */

/* A waiter that holds its place: handed a permit and not yet resumed, or
 * still parked. One woken by a cancellation or timeout is on its way out. */
static bool sem_waiter_live(const struct sync_waiter *w)
{
    return w->handed || task_can_be_handed(w->task);
}

static bool sem_has_live_waiter(const asyncio_semaphore_t *s)
{
    const struct dlist *head = (const struct dlist *)(const void *)&s->waiters_;
    for (const struct dlist *n = head->next; n != head; n = n->next)
        if (sem_waiter_live(container_of(n, struct sync_waiter, link)))
            return true;
    return false;
}

/* Hand free permits to waiters that can take them, in order. */
static void sem_hand_on(asyncio_semaphore_t *s)
{
    struct sync_waiter *w;
    while (s->value_ > 0 && (w = first_handable(wl(&s->waiters_)))) {
        s->value_--;
        w->handed = true; /* stays linked until it resumes */
        task_wake_handoff(w->task, 0);
    }
}

int asyncio_semaphore_acquire(asyncio_semaphore_t *s)
{
    if (!sem_ok(s))
        return -EINVAL;
    int rc = check_task();
    if (rc < 0)
        return rc;
    if (s->value_ > 0 && !sem_has_live_waiter(s)) {
        s->value_--;
        return 0;
    }
    struct task *t;
    if ((rc = task_begin_wait_on(&t, "semaphore")) < 0)
        return rc;
    struct sync_waiter w;
    waiter_init(&w, t);
    dlist_push_back(wl(&s->waiters_), &w.link);
    do {
        rc = task_park_until(t, UINT64_MAX, 0);
        if (w.handed)
            rc = 0; /* the permit is ours; see asyncio_lock_acquire() */
    } while (rc == 0 && !w.handed); /* only a handoff ends a wait with 0 */
    dlist_remove(&w.link);
    /* Permits released while it held its place go to those behind it. */
    sem_hand_on(s);
    return rc;
}

int asyncio_semaphore_release(asyncio_semaphore_t *s)
{
    if (!sem_ok(s))
        return -EINVAL;
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

static bool barrier_ok(const asyncio_barrier_t *b)
{
    return b && b->magic_ == BARRIER_MAGIC;
}

int asyncio_barrier_init(asyncio_barrier_t *b, int parties)
{
    if (!b || parties < 1)
        return -EINVAL;
    dlist_init(wl(&b->waiters_));
    b->parties_ = parties;
    b->count_ = 0;
    b->inside_ = 0;
    b->state_ = B_FILLING;
    b->magic_ = BARRIER_MAGIC;
    return 0;
}

int asyncio_barrier_destroy(asyncio_barrier_t *b)
{
    if (!barrier_ok(b))
        return -EINVAL;
    if (b->inside_ || !dlist_empty(wl(&b->waiters_)))
        return -EBUSY;
    b->magic_ = 0;
    return 0;
}

/* The state changed: every waiter re-checks it (asyncio's notify_all). */
static void barrier_notify_all(asyncio_barrier_t *b)
{
    wake_all(wl(&b->waiters_));
}

/* asyncio's Barrier.wait(), with the condition's waits made directly on
 * the barrier: the state only changes between two steps of the loop, so
 * the lock asyncio takes around it has nothing to protect here. */
static int barrier_wait(asyncio_barrier_t *b)
{
    int rc;
    /* _block(): wait while the previous round drains or resets. */
    while (b->state_ == B_DRAINING || b->state_ == B_RESETTING)
        if ((rc = wait_on(wl(&b->waiters_))) < 0)
            return rc;
    if (b->state_ == B_BROKEN)
        return -EPIPE;

    int index = b->count_++;
    if (index + 1 == b->parties_) {
        /* _release(): the last to arrive lets the others go. */
        b->state_ = B_DRAINING;
        barrier_notify_all(b);
        rc = index;
    } else {
        /* _wait(): until filling ends. */
        rc = 0;
        while (b->state_ == B_FILLING && rc >= 0)
            rc = wait_on(wl(&b->waiters_));
        if (rc >= 0)
            rc = b->state_ == B_BROKEN || b->state_ == B_RESETTING ? -EPIPE : index;
    }

    /* _exit(): the last to leave ends draining or resetting. */
    if (--b->count_ == 0) {
        if (b->state_ == B_RESETTING || b->state_ == B_DRAINING)
            b->state_ = B_FILLING;
        barrier_notify_all(b);
    }
    return rc;
}

int asyncio_barrier_wait(asyncio_barrier_t *b)
{
    if (!barrier_ok(b))
        return -EINVAL;
    int rc = check_task();
    if (rc < 0)
        return rc;
    b->inside_++;
    rc = barrier_wait(b);
    b->inside_--;
    return rc;
}

int asyncio_barrier_reset(asyncio_barrier_t *b)
{
    if (!barrier_ok(b))
        return -EINVAL;
    if (b->count_ > 0)
        b->state_ = B_RESETTING;
    else
        b->state_ = B_FILLING;
    barrier_notify_all(b);
    return 0;
}

int asyncio_barrier_abort(asyncio_barrier_t *b)
{
    if (!barrier_ok(b))
        return -EINVAL;
    b->state_ = B_BROKEN;
    barrier_notify_all(b);
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
