/* The combinators and sync layer's one waiting mechanism (waitq.c), which
 * sync.c, queue.c, gather.c and taskgroup.c build on:
 *
 * - A wait queue: tasks waiting on an object (a lock, an event, a queue's
 *   getters...) in the order they began to wait. The record of each wait is
 *   in the task (struct wq_entry, task.h), so nothing is allocated and
 *   nothing is written on a parked task's stack.
 * - A fan-in: one task waiting for k of n futures (gather, wait,
 *   as_completed), its records in one heap block.
 *
 * The rules, kept here once:
 * - A waiter is woken at most once, and only while it is parked and not
 *   yet woken (task_can_be_handed); every waker skips the others.
 * - Handoff: a waker that hands a waiter what it waits for (the lock, a
 *   permit) does the whole operation for it first and wakes it with
 *   task_wake_handoff(): a cancellation that comes before the waiter
 *   resumes sets must_cancel, and the waiter, when it resumes, gives back
 *   what it was handed and reports it (asyncio's acquire does the same); a
 *   timeout is kept for the task's next wait. The waiter stays listed
 *   until it resumes: until then the object counts as busy (destroy says
 *   -EBUSY; a semaphore counts as locked, as asyncio keeps the waiter's
 *   done future in _waiters).
 * - Plain wakes (an event set, a notify, a barrier's change, a queue's join)
 *   and error wakes unlink the waiter: it is done with the object, which
 *   may be destroyed before it resumes. A queue's getters and putters are
 *   woken plainly but stay listed (waitq_wake_listed): they look at the
 *   queue again when they run. A plain wake is
 *   woken with 0 and marked handed; a cancellation that comes before the
 *   waiter resumes replaces the 0.
 * - A waiter woken by its task (cancelled, timed out) stays listed until it
 *   resumes and unlinks itself.
 * Waits with room for one task (an fd's reader and writer, a stream's
 * drainer and closer, a thread-pool job) keep a task pointer instead of a
 * queue, under the same rules; a wait a later subsystem adds (a child's
 * exit) takes a wait queue, or a fan-in over futures. */
#ifndef ASYNCIO_WAITQ_H
#define ASYNCIO_WAITQ_H

#include "names.h"

#include "task.h"

/* The public asyncio_waitlist_t is a private mirror of struct dlist. */
static inline struct dlist *waitq_of(asyncio_waitlist_t *w)
{
    return (struct dlist *)(void *)w;
}

static inline void waitq_init(asyncio_waitlist_t *q)
{
    dlist_init(waitq_of(q));
    q->loop_ = NULL;
}
static inline bool waitq_empty(const asyncio_waitlist_t *q)
{
    return dlist_empty((const struct dlist *)(const void *)q);
}

/* Register t, the running task past task_begin_wait_on(), at the back of q. */
static inline void waitq_push(asyncio_waitlist_t *q, struct task *t)
{
    t->wait.q.handed = false;
    dlist_push_back(waitq_of(q), &t->wait.q.link);
}
/* Park t, registered with waitq_push(), until a waker hands it something
 * or wakes it, or a cancellation or timeout scope ends the wait; then
 * unlink it. Returns 0 if handed (t->wait.q.handed) or woken with 0, else
 * the wake status. */
int waitq_park(struct task *t);
/* Unlink t after a wait of its own making on a queue (a no-op if a waker
 * did). */
static inline void waitq_unlink(struct task *t) { dlist_remove(&t->wait.q.link); }
/* waitq_push() and waitq_park(). */
static inline int waitq_wait(asyncio_waitlist_t *q, struct task *t)
{
    waitq_push(q, t);
    return waitq_park(t);
}

/* The first waiter that can still be handed something, or NULL. */
struct task *waitq_first(asyncio_waitlist_t *q);
/* True if some waiter holds its place: handed something and not resumed,
 * or still parked. */
bool waitq_holds_place(const asyncio_waitlist_t *q);
/* Hand t (from waitq_first()) what it waits for: it owns it from
 * now on (see the handoff rule above). */
void waitq_hand(struct task *t);
/* Wake up to n waiters (SIZE_MAX: all) that can still be woken, in order,
 * with status: 0, a plain wake, marked handed, or an error they will
 * return, such as -ESHUTDOWN. Returns how many. */
size_t waitq_wake(asyncio_waitlist_t *q, size_t n, int status);
/* waitq_wake() with 0, leaving the woken listed until they resume: for a
 * waiter that looks at the object again when it runs (a queue's getter or
 * putter), so that the object counts as busy until then. */
size_t waitq_wake_listed(asyncio_waitlist_t *q, size_t n);

/* Fan-in: a task waiting for futures. Completed futures queue up in the
 * order they completed (those done at the start first, in argument order). */
struct fanin_node {
    struct waiter w;         /* on the future's waiters while registered */
    struct fanin *fi;
    asyncio_future_t *f;     /* retained */
    struct fanin_node *next; /* on the done queue */
};

enum fanin_stop {
    FANIN_ALL,           /* wake only when `want` are done */
    FANIN_FIRST_ERROR,   /* also at the first one that fails or is cancelled */
    FANIN_FIRST_FAILURE, /* also at the first one that fails (not cancelled) */
};

struct fanin {
    struct loop *loop;
    struct task *task;       /* the task to wake, while it waits */
    size_t n, ndone;
    size_t want;             /* wake once this many are done */
    enum fanin_stop stop;
    int first_error;         /* the first status < 0, in completion order */
    bool failed;             /* one failed other than by cancellation */
    uint64_t deadline;       /* as_completed's overall deadline */
    size_t cap;              /* nodes[] room: small blocks are reused */
    struct fanin_node *done, **done_tail;
    struct fanin_node nodes[];
};

/* Register on n futures of loop (each retained): 0, or -ENOMEM. *out
 * wants all n, FANIN_ALL; the caller sets want and stop as it needs. */
int fanin_open(struct fanin **out, struct loop *loop, size_t n, asyncio_future_t *const futs[]);
/* True when the waiting is over: want done, or the stop condition met. */
static inline bool fanin_satisfied(const struct fanin *fi)
{
    return fi->ndone >= fi->want || (fi->stop == FANIN_FIRST_ERROR && fi->first_error) ||
           (fi->stop == FANIN_FIRST_FAILURE && fi->failed);
}
/* Park t until fi is satisfied. cancellable: a cancellation or timeout
 * (scopes, or deadline, which wakes it with status) ends the wait and is
 * returned; else it waits whatever comes (t's cancellations are left to the
 * caller). Returns 0 once satisfied, or the status that ended it. */
int fanin_wait(struct fanin *fi, struct task *t, uint64_t deadline, int status, bool cancellable);
/* Unregister, release the futures, and free (or keep for reuse) fi. */
void fanin_close(struct fanin *fi);
/* A small block kept for reuse (loop->tasks.fanin_spare), so that a gather
 * or wait of a few futures allocates nothing: made when the loop starts (0
 * or -ENOMEM), freed with free() when it closes. */
int fanin_make_spare(struct loop *loop);

#endif
