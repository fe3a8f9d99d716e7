/* Wait queues and fan-ins: how a task waits for an object or for futures,
 * and how it is handed what it waits for (the rules are in waitq.h). */
#include "waitq.h"

#include <errno.h>
#include <stdlib.h>

/* The public list head is a private mirror of struct dlist. */
_Static_assert(sizeof(asyncio_waitlist_t) >= sizeof(struct dlist), "waitlist layout");
_Static_assert(offsetof(asyncio_waitlist_t, prev_) == offsetof(struct dlist, prev), "prev");
_Static_assert(offsetof(asyncio_waitlist_t, next_) == offsetof(struct dlist, next), "next");

static struct task *task_of_entry(const struct dlist *n)
{
    return container_of(container_of(n, struct wq_entry, link), struct task, wait.q);
}

int waitq_park(struct task *t)
{
    /* Only a waker wakes a waiter with 0, and it marks it handed. */
    int rc = task_park_until(t, UINT64_MAX, 0);
    waitq_unlink(t); /* a no-op if the waker unlinked it */
    return rc;
}

struct task *waitq_first(asyncio_waitlist_t *q)
{
    struct dlist *head = waitq_of(q);
    for (struct dlist *n = head->next; n != head; n = n->next) {
        struct task *t = task_of_entry(n);
        if (task_can_be_handed(t))
            return t;
    }
    return NULL;
}

bool waitq_holds_place(const asyncio_waitlist_t *q)
{
    const struct dlist *head = (const struct dlist *)(const void *)q;
    for (const struct dlist *n = head->next; n != head; n = n->next) {
        struct task *t = task_of_entry(n);
        if (t->wait.q.handed || task_can_be_handed(t))
            return true;
    }
    return false;
}

void waitq_hand(struct task *t)
{
    t->wait.q.handed = true;
    task_wake_handoff(t, 0);
}

size_t waitq_wake(asyncio_waitlist_t *q, size_t n, int status)
{
    struct dlist *head = waitq_of(q);
    size_t woken = 0;
    for (struct dlist *node = head->next, *next; node != head && woken < n; node = next) {
        next = node->next;
        struct task *t = task_of_entry(node);
        if (task_can_be_handed(t)) {
            dlist_remove(node);
            t->wait.q.handed = status == 0;
            task_wake(t, status);
            woken++;
        }
    }
    return woken;
}

size_t waitq_wake_listed(asyncio_waitlist_t *q, size_t n)
{
    struct dlist *head = waitq_of(q);
    size_t woken = 0;
    for (struct dlist *node = head->next; node != head && woken < n; node = node->next) {
        struct task *t = task_of_entry(node);
        if (task_can_be_handed(t)) {
            t->wait.q.handed = true;
            task_wake(t, 0);
            woken++;
        }
    }
    return woken;
}

/* ---- fan-in -------------------------------------------------------------- */

/* Blocks for this many futures or fewer are kept for the next fan-in. */
enum { FANIN_SMALL = 8 };

static void fanin_done(struct fanin *fi, struct fanin_node *node, int status)
{
    node->next = NULL;
    *fi->done_tail = node;
    fi->done_tail = &node->next;
    fi->ndone++;
    if (status < 0 && !fi->first_error)
        fi->first_error = status;
    if (status < 0 && status != -ECANCELED)
        fi->failed = true;
}

static void fanin_notify(struct waiter *w, struct asyncio_future *f);

struct task *fanin_waiter_task(struct waiter *w)
{
    return w->notify == fanin_notify ? container_of(w, struct fanin_node, w)->fi->task : NULL;
}

static void fanin_notify(struct waiter *w, struct asyncio_future *f)
{
    struct fanin_node *node = container_of(w, struct fanin_node, w);
    struct fanin *fi = node->fi;
    fanin_done(fi, node, f->status);
    if (fi->task && fanin_satisfied(fi))
        task_wake_hop(fi->task, 0); /* asyncio: a child's callback, then the outer future's */
}

static struct fanin *fanin_alloc(size_t n)
{
    size_t cap = n < FANIN_SMALL ? FANIN_SMALL : n;
    struct fanin *fi;
    if (cap > (SIZE_MAX - sizeof *fi) / sizeof fi->nodes[0] ||
        !(fi = malloc(sizeof *fi + cap * sizeof fi->nodes[0])))
        return NULL;
    fi->cap = cap;
    return fi;
}

int fanin_make_spare(struct loop *loop)
{
    return (loop->tasks.fanin_spare = fanin_alloc(0)) ? 0 : -ENOMEM;
}

int fanin_open(struct fanin **out, struct loop *loop, size_t n, asyncio_future_t *const futs[])
{
    struct fanin *fi = loop->tasks.fanin_spare;
    if (fi && n <= fi->cap)
        loop->tasks.fanin_spare = NULL;
    else if (!(fi = fanin_alloc(n)))
        return -ENOMEM;
    fi->loop = loop;
    fi->task = NULL;
    fi->n = fi->want = n;
    fi->ndone = 0;
    fi->stop = FANIN_ALL;
    fi->deadline = UINT64_MAX;
    fi->first_error = 0;
    fi->failed = false;
    fi->done = NULL;
    fi->done_tail = &fi->done;
    for (size_t i = 0; i < n; i++) {
        struct fanin_node *node = &fi->nodes[i];
        node->fi = fi;
        node->f = asyncio_future_retain(futs[i]);
        node->w.link.next = NULL;
        if (future_is_done(futs[i])) {
            fanin_done(fi, node, futs[i]->status);
        } else {
            node->w.notify = fanin_notify;
            future_add_waiter(futs[i], &node->w);
        }
    }
    *out = fi;
    return 0;
}

int fanin_wait(struct fanin *fi, struct task *t, uint64_t deadline, int status, bool cancellable)
{
    int rc = 0;
    fi->task = t;
    while (!fanin_satisfied(fi) && rc == 0)
        rc = cancellable ? task_park_until(t, deadline, status) : (task_park(t), 0);
    fi->task = NULL;
    return rc;
}

void fanin_close(struct fanin *fi)
{
    for (size_t i = 0; i < fi->n; i++) {
        future_remove_waiter(&fi->nodes[i].w);
        asyncio_future_release(fi->nodes[i].f);
    }
    struct loop *loop = fi->loop;
    if (fi->cap == FANIN_SMALL && !loop->tasks.fanin_spare)
        loop->tasks.fanin_spare = fi;
    else
        free(fi);
}

