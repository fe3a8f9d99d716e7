/* Queues: FIFO and LIFO over a growable ring, priority over a binary heap,
 * with tasks waiting in put, get and join on wait queues (waitq.h). As in
 * asyncio, nothing is handed over: a put stores its item and wakes the
 * first getter, which takes an item when it runs (the smallest or the
 * newest one then, for a priority or LIFO queue), or waits again at the
 * back if another took it first; a get wakes the first putter the same
 * way. A waiter woken and then cancelled before it ran passes the wake on
 * while what woke it is still there. */
#include "waitq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_FIFO, KIND_LIFO, KIND_PRIORITY };

/* A priority queue's slot: the item and when it was inserted, so that
 * equal items come out first-in first-out. */
struct pq_entry {
    void *item;
    uint64_t seq;
};

/* ---- storage ------------------------------------------------------------- */

static size_t slot_size(const asyncio_queue_t *q)
{
    return q->kind == KIND_PRIORITY ? sizeof(struct pq_entry) : sizeof(void *);
}

/* Make room for one more item: 0 or -ENOMEM (nothing changed then). */
static int store_reserve(asyncio_queue_t *q)
{
    if (q->len < q->cap)
        return 0;
    size_t sz = slot_size(q);
    size_t cap = q->cap ? q->cap * 2 : 8;
    if (q->maxsize && cap > q->maxsize)
        cap = q->maxsize > q->cap ? q->maxsize : q->cap + 1;
    if (cap <= q->cap || cap > SIZE_MAX / sz)
        return -ENOMEM; /* GCOVR_EXCL_LINE: a capacity past SIZE_MAX / slot size: memory runs out long before */
    void *buf = realloc(q->buf, cap * sz);
    if (!buf)
        return -ENOMEM;
    if (q->kind == KIND_FIFO && q->head) {
        /* The ring wrapped (it is full): move its older part, from head to
         * the old end, to the new end. */
        size_t tail = q->cap - q->head;
        memmove((char *)buf + (cap - tail) * sz, (char *)buf + q->head * sz, tail * sz);
        q->head = cap - tail;
    }
    q->buf = buf;
    q->cap = cap;
    return 0;
}

/* a before b in a priority queue: smaller, or equal and inserted earlier. */
static bool pq_before(const asyncio_queue_t *q, const struct pq_entry *a, const struct pq_entry *b)
{
    int c = q->cmp(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

/* Insert item: 0 or -ENOMEM. Never fails when len < cap. */
static int store_push(asyncio_queue_t *q, void *item)
{
    int rc = store_reserve(q);
    if (rc < 0)
        return rc;
    if (q->kind == KIND_PRIORITY) {
        struct pq_entry *h = q->buf;
        struct pq_entry e = {item, q->seq++};
        size_t i = q->len++;
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (!pq_before(q, &e, &h[parent]))
                break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = e;
        return 0;
    }
    void **ring = q->buf;
    size_t i = q->head + q->len;
    ring[i >= q->cap ? i - q->cap : i] = item;
    q->len++;
    return 0;
}

/* Remove the next item (len > 0). */
static void *store_pop(asyncio_queue_t *q)
{
    if (q->kind == KIND_PRIORITY) {
        struct pq_entry *h = q->buf;
        void *item = h[0].item;
        struct pq_entry last = h[--q->len];
        size_t n = q->len, i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n)
                break;
            if (c + 1 < n && pq_before(q, &h[c + 1], &h[c]))
                c++;
            if (!pq_before(q, &h[c], &last))
                break;
            h[i] = h[c];
            i = c;
        }
        if (n)
            h[i] = last;
        return item;
    }
    void **ring = q->buf;
    if (q->kind == KIND_LIFO)
        return ring[--q->len]; /* head stays 0 */
    void *item = ring[q->head];
    if (++q->head == q->cap)
        q->head = 0;
    if (--q->len == 0)
        q->head = 0;
    return item;
}

static bool is_full(const asyncio_queue_t *q)
{
    return q->maxsize && q->len >= q->maxsize;
}

/* ---- the operations ------------------------------------------------------ */

static void wake_joiners_if_done(asyncio_queue_t *q)
{
    if (q->unfinished == 0)
        waitq_wake(&q->joiners, SIZE_MAX, 0);
}

/* Put into a queue that is not full nor shut down, and wake the first
 * getter (asyncio's _wakeup_next). 0 or -ENOMEM. */
static int put_now(asyncio_queue_t *q, void *item)
{
    int rc = store_push(q, item);
    if (rc < 0)
        return rc;
    q->unfinished++;
    if (!waitq_empty(&q->getters))
        waitq_wake_listed(&q->getters, 1);
    return 0;
}

/* Get from a non-empty queue, and wake the first putter. */
static void *get_now(asyncio_queue_t *q)
{
    void *item = store_pop(q);
    if (!waitq_empty(&q->putters))
        waitq_wake_listed(&q->putters, 1);
    return item;
}

/* One wait of t in list. If t was woken (t->wait.q.handed: a plain wake)
 * but its wait ends with an error (cancelled, or timed out, before it
 * ran), the wake goes on to the next waiter while still(q) holds, as
 * asyncio's getter and putter do: a wake is not lost while its reason
 * stands. */
static int wait_turn(asyncio_waitlist_t *list, struct task *t, bool (*still)(const asyncio_queue_t *),
                     const asyncio_queue_t *q)
{
    int rc = waitq_wait(list, t);
    if (rc < 0 && t->wait.q.handed && still(q))
        waitq_wake_listed(list, 1);
    return rc;
}

static bool has_items(const asyncio_queue_t *q)
{
    return q->len > 0;
}

static bool has_room(const asyncio_queue_t *q)
{
    return !is_full(q);
}

static int init(asyncio_queue_t *q, size_t maxsize, unsigned char kind, asyncio_queue_cmp cmp)
{
    if (!q)
        return -EINVAL;
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
    q->maxsize = maxsize;
    q->unfinished = 0;
    q->seq = 0;
    q->cmp = cmp;
    waitq_init(&q->getters);
    waitq_init(&q->putters);
    waitq_init(&q->joiners);
    q->kind = kind;
    q->is_shutdown = 0;
    return 0;
}

/* Debug mode's check (task.h): q is bound by its getters' list. */
#define OWNER(q) waitlist_check_owner(&(q)->getters, __func__)

int asyncio_queue_init(asyncio_queue_t *q, size_t maxsize)
{
    return init(q, maxsize, KIND_FIFO, NULL);
}

int asyncio_priority_queue_init(asyncio_queue_t *q, size_t maxsize, asyncio_queue_cmp cmp)
{
    if (!cmp)
        return -EINVAL;
    return init(q, maxsize, KIND_PRIORITY, cmp);
}

int asyncio_lifo_queue_init(asyncio_queue_t *q, size_t maxsize)
{
    return init(q, maxsize, KIND_LIFO, NULL);
}

int asyncio_queue_destroy(asyncio_queue_t *q)
{
    if (!q)
        return -EINVAL;
    if (!waitq_empty(&q->getters) || !waitq_empty(&q->putters) || !waitq_empty(&q->joiners))
        return -EBUSY;
    free(q->buf);
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
    return 0;
}

int asyncio_queue_put_nowait(asyncio_queue_t *q, void *item)
{
    if (!q)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    if (q->is_shutdown)
        return -ESHUTDOWN;
    if (is_full(q))
        return -EAGAIN;
    return put_now(q, item);
}

int asyncio_queue_get_nowait(asyncio_queue_t *q, void **item)
{
    if (!q || !item)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    if (q->len == 0)
        return q->is_shutdown ? -ESHUTDOWN : -EAGAIN;
    *item = get_now(q);
    return 0;
}

int asyncio_queue_put(asyncio_queue_t *q, void *item)
{
    if (!q)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    int rc = task_check_await(NULL); /* -EPERM outside a task */
    if (rc < 0)
        return rc;
    while (is_full(q)) {
        if (q->is_shutdown)
            return -ESHUTDOWN;
        struct task *t;
        if ((rc = task_begin_wait_on(&t, "queue put")) < 0 ||
            (rc = wait_turn(&q->putters, t, has_room, q)) < 0)
            return rc;
    }
    if (q->is_shutdown)
        return -ESHUTDOWN;
    return put_now(q, item);
}

int asyncio_queue_get(asyncio_queue_t *q, void **item)
{
    if (!q || !item)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    int rc = task_check_await(NULL);
    if (rc < 0)
        return rc;
    while (q->len == 0) {
        if (q->is_shutdown)
            return -ESHUTDOWN;
        struct task *t;
        if ((rc = task_begin_wait_on(&t, "queue get")) < 0 ||
            (rc = wait_turn(&q->getters, t, has_items, q)) < 0)
            return rc;
    }
    *item = get_now(q);
    return 0;
}

int asyncio_queue_task_done(asyncio_queue_t *q)
{
    if (!q)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    if (q->unfinished == 0)
        return -EINVAL;
    q->unfinished--;
    wake_joiners_if_done(q);
    return 0;
}

int asyncio_queue_join(asyncio_queue_t *q)
{
    if (!q)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    int rc = task_check_await(NULL);
    if (rc < 0 || q->unfinished == 0)
        return rc;
    struct task *t;
    if ((rc = task_begin_wait_on(&t, "queue join")) < 0)
        return rc;
    return waitq_wait(&q->joiners, t);
}

int asyncio_queue_shutdown(asyncio_queue_t *q, int immediate)
{
    if (!q)
        return -EINVAL;
    int bad = OWNER(q);
    if (bad)
        return bad;
    q->is_shutdown = 1;
    if (immediate) {
        /* Drop what is left; each dropped item counts as done. */
        q->unfinished -= q->len < q->unfinished ? q->len : q->unfinished;
        q->len = q->head = 0;
        wake_joiners_if_done(q);
    }
    /* Every waiter looks again (3.13's shutdown wakes them all): a putter
     * fails, a getter fails if the queue is empty, else takes an item. */
    waitq_wake_listed(&q->getters, SIZE_MAX);
    waitq_wake_listed(&q->putters, SIZE_MAX);
    return 0;
}

size_t asyncio_queue_size(const asyncio_queue_t *q)
{
    return q ? q->len : 0;
}

size_t asyncio_queue_maxsize(const asyncio_queue_t *q)
{
    return q ? q->maxsize : 0;
}

int asyncio_queue_full(const asyncio_queue_t *q)
{
    return q ? is_full(q) : -EINVAL;
}

int asyncio_queue_empty(const asyncio_queue_t *q)
{
    return q ? q->len == 0 : -EINVAL;
}
