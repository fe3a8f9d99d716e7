/* Intrusive lists: the node lives inside the object it orders, so linking
 * and unlinking never allocate. */
#ifndef ASYNCIO_LIST_H
#define ASYNCIO_LIST_H

#include "names.h"

#include <stddef.h>
#include <stdbool.h>

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Circular doubly linked list with a sentinel head. A node whose next is
 * NULL is not on any list, so unlinking twice is harmless. */
struct dlist {
    struct dlist *prev, *next;
};

static inline void dlist_init(struct dlist *head) { head->prev = head->next = head; }
static inline bool dlist_empty(const struct dlist *head) { return head->next == head; }
static inline bool dlist_linked(const struct dlist *n) { return n->next != NULL; }

static inline void dlist_push_back(struct dlist *head, struct dlist *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void dlist_remove(struct dlist *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Singly linked FIFO: the loop's ready queue. */
struct qnode {
    struct qnode *next;
};

struct queue {
    struct qnode *head;
    struct qnode **tailp;
};

static inline void queue_init(struct queue *q) { q->head = NULL; q->tailp = &q->head; }
static inline bool queue_empty(const struct queue *q) { return q->head == NULL; }

static inline void queue_push(struct queue *q, struct qnode *n)
{
    n->next = NULL;
    *q->tailp = n;
    q->tailp = &n->next;
}

/* Move everything from src to dst (dst is overwritten), leaving src empty. */
static inline void queue_take(struct queue *dst, struct queue *src)
{
    dst->head = src->head;
    dst->tailp = src->head ? src->tailp : &dst->head;
    queue_init(src);
}

static inline struct qnode *queue_pop(struct queue *q)
{
    struct qnode *n = q->head;
    if (n) {
        q->head = n->next;
        if (!q->head)
            q->tailp = &q->head;
    }
    return n;
}

#endif
