/* Timer min-heap ordered by (deadline, sequence number), so that timers with
 * equal deadlines fire in the order they were scheduled. The timer node is
 * embedded in its owner and remembers its slot, which makes removal
 * O(log n). */
#ifndef ASYNCIO_TIMERHEAP_H
#define ASYNCIO_TIMERHEAP_H

#include "names.h"

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define TIMER_NOT_QUEUED SIZE_MAX

struct timer {
    uint64_t when;  /* deadline, ns on clock_now_ns() */
    size_t index;   /* slot in the heap, TIMER_NOT_QUEUED when not in it */
};

/* Slots hold the sort key next to the pointer, so that sifting compares
 * without touching the timers themselves. */
struct timerslot {
    uint64_t when;
    uint64_t seq;
    struct timer *timer;
};

struct timerheap {
    struct timerslot *slots;
    size_t len, cap;
    uint64_t next_seq;
};

static inline void timer_init(struct timer *t) { t->index = TIMER_NOT_QUEUED; }
static inline bool timer_queued(const struct timer *t) { return t->index != TIMER_NOT_QUEUED; }

/* All zeros is an empty heap. Free it (its timers are marked unqueued). */
void timerheap_free(struct timerheap *h);
/* Insert t (not queued) with deadline t->when. 0 or -ENOMEM. */
int timerheap_push(struct timerheap *h, struct timer *t);
/* Remove a queued timer. */
void timerheap_remove(struct timerheap *h, struct timer *t);
/* The earliest timer, or NULL. */
static inline struct timer *timerheap_peek(const struct timerheap *h)
{
    return h->len ? h->slots[0].timer : NULL;
}

#endif
