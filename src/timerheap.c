/* The timer heap (timerheap.h): a 4-ary min-heap of timers ordered by
 * deadline, then by the order they were pushed, with removal of any
 * timer from the slot it remembers. */
#include "timerheap.h"

#include <errno.h>
#include <stdlib.h>

void timerheap_free(struct timerheap *h)
{
    for (size_t i = 0; i < h->len; i++)
        h->slots[i].timer->index = TIMER_NOT_QUEUED;
    free(h->slots);
}

static inline bool slot_less(const struct timerslot *a, const struct timerslot *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void place(struct timerheap *h, size_t i, struct timerslot s)
{
    h->slots[i] = s;
    s.timer->index = i;
}

/* A 4-ary heap: half the depth of a binary one, and the four children of a
 * slot share a cache line or two, which is what a million timers miss on. */
#define ARITY 4

static void sift_up(struct timerheap *h, size_t i, struct timerslot s)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!slot_less(&s, &h->slots[parent]))
            break;
        place(h, i, h->slots[parent]);
        i = parent;
    }
    place(h, i, s);
}

static void sift_down(struct timerheap *h, size_t i, struct timerslot s)
{
    for (;;) {
        size_t first = ARITY * i + 1;
        if (first >= h->len)
            break;
        size_t child = first;
        size_t end = first + ARITY < h->len ? first + ARITY : h->len;
        for (size_t c = first + 1; c < end; c++)
            if (slot_less(&h->slots[c], &h->slots[child]))
                child = c;
        if (!slot_less(&h->slots[child], &s))
            break;
        place(h, i, h->slots[child]);
        i = child;
    }
    place(h, i, s);
}

int timerheap_push(struct timerheap *h, struct timer *t)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct timerslot *s = realloc(h->slots, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        h->slots = s;
        h->cap = cap;
    }
    struct timerslot s = {t->when, h->next_seq++, t};
    sift_up(h, h->len++, s);
    return 0;
}

void timerheap_remove(struct timerheap *h, struct timer *t)
{
    size_t i = t->index;
    t->index = TIMER_NOT_QUEUED;
    struct timerslot last = h->slots[--h->len];
    if (i == h->len)
        return;
    /* The last slot moves into the hole, then goes up or down. */
    if (i > 0 && slot_less(&last, &h->slots[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}
