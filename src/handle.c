/* Callback handles: call_soon, call_later, call_at, and the future done
 * callbacks, which run through the ready queue the same way; the loop's
 * handles subsystem (loop->handles), whose slabs live as long as it. */
#include "task.h"
#include "clock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

enum { H_FREE, H_READY, H_TIMER, H_WAITING, H_CANCELLED };

struct chandle {
    struct runnable run;
    struct ltimer timer;
    struct waiter waiter;       /* a done callback waiting for its future */
    asyncio_callback cb;
    asyncio_done_callback done_cb;
    void *arg;
    struct asyncio_future *fut; /* done callbacks: a reference to it */
    uint64_t id;                /* 0 while free */
    int state;
    struct chandle *next_free;
};

#define SLAB_HANDLES 256

struct handle_slab {
    struct handle_slab *next;
    struct chandle h[SLAB_HANDLES];
};

static void handle_run(struct loop *loop, struct runnable *r);

static struct chandle *handle_new(struct loop *loop, asyncio_callback cb, void *arg)
{
    if (!loop->handles.free) {
        struct handle_slab *s = malloc(sizeof *s);
        if (!s)
            return NULL;
        s->next = loop->handles.slabs;
        loop->handles.slabs = s;
        for (int i = SLAB_HANDLES - 1; i >= 0; i--) {
            s->h[i].state = H_FREE;
            s->h[i].id = 0;
            s->h[i].next_free = loop->handles.free;
            loop->handles.free = &s->h[i];
        }
    }
    struct chandle *h = loop->handles.free;
    loop->handles.free = h->next_free;
    h->id = ++loop->handles.last_id;
    h->fut = NULL;
    h->cb = cb;
    h->arg = arg;
    h->run.run = handle_run;
    timer_init(&h->timer.t);
    return h;
}

static void handle_release(struct loop *loop, struct chandle *h)
{
    h->state = H_FREE;
    h->id = 0;
    h->next_free = loop->handles.free;
    loop->handles.free = h;
}

void handles_term(struct loop *loop)
{
    for (struct handle_slab *s = loop->handles.slabs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
}

static void handle_run(struct loop *loop, struct runnable *r)
{
    struct chandle *h = container_of(r, struct chandle, run);
    if (h->state == H_CANCELLED) {
        handle_release(loop, h);
        return;
    }
    asyncio_callback cb = h->cb;
    asyncio_done_callback done_cb = h->done_cb;
    void *arg = h->arg;
    struct asyncio_future *f = h->fut;
    /* Released first, so that the callback sees its handle as no longer
     * pending. */
    handle_release(loop, h);
    if (f) {
        done_cb(f, arg);
        asyncio_future_release(f);
    } else {
        cb(arg);
    }
}

static void handle_fire(struct loop *loop, struct ltimer *lt)
{
    struct chandle *h = container_of(lt, struct chandle, timer);
    h->state = H_READY;
    loop_ready(loop, &h->run);
}

/* What a handle that loop filled in with ptr and id holds as its check:
 * garbage (an uninitialised handle), or another loop's handle, is refused
 * before ptr is read. Loops are numbered (debug.c), so the handle of a
 * loop closed since does not pass for one of a new loop at the same place. */
static uint64_t handle_check(const struct loop *loop, const void *ptr, uint64_t id)
{
    /* Two xors and a multiply by a constant: a cancel is ~100 ns, and a
     * mixing hash here cost it 13% (bench_timers' cancel_ns). Random bytes
     * pass with odds of 2^-64; a handle of another loop, or one with a
     * field changed, does not. */
    return (uint64_t)(uintptr_t)ptr ^ id ^ ((uint64_t)loop->debug.id * 0x9e3779b97f4a7c15u);
}

static void fill(struct loop *loop, asyncio_handle_t *out, struct chandle *h)
{
    if (out) {
        out->ptr = h;
        out->id = h->id;
        out->check = handle_check(loop, h, h->id);
    }
}

int asyncio_call_soon(asyncio_callback cb, void *arg, asyncio_handle_t *handle)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!cb)
        return -EINVAL;
    struct chandle *h = handle_new(loop, cb, arg);
    if (!h)
        return -ENOMEM;
    h->state = H_READY;
    loop_ready(loop, &h->run);
    fill(loop, handle, h);
    return 0;
}

static int call_at_ns(struct loop *loop, uint64_t when, asyncio_callback cb, void *arg,
                      asyncio_handle_t *handle)
{
    struct chandle *h = handle_new(loop, cb, arg);
    if (!h)
        return -ENOMEM;
    h->timer.fire = handle_fire;
    h->timer.t.when = when;
    h->state = H_TIMER;
    /* A deadline of "never" stays pending without occupying the heap. */
    if (when != UINT64_MAX && loop_timer_add(loop, &h->timer) < 0) {
        handle_release(loop, h);
        return -ENOMEM;
    }
    fill(loop, handle, h);
    return 0;
}

int asyncio_call_later(double delay, asyncio_callback cb, void *arg, asyncio_handle_t *handle)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!cb || isnan(delay))
        return -EINVAL;
    return call_at_ns(loop, clock_deadline(clock_now_ns(), clock_seconds_to_ns(delay)), cb, arg,
                      handle);
}

int asyncio_call_at(double when, asyncio_callback cb, void *arg, asyncio_handle_t *handle)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!cb || isnan(when))
        return -EINVAL;
    return call_at_ns(loop, when <= 0 ? 0 : clock_seconds_to_ns(when), cb, arg, handle);
}

/* The chandle of a handle_valid() handle: NULL once it ran or was
 * cancelled. */
static struct chandle *lookup(const asyncio_handle_t *handle)
{
    struct chandle *h = handle->ptr;
    return h->id == handle->id ? h : NULL;
}

static bool handle_valid(const struct loop *loop, const asyncio_handle_t *handle)
{
    return handle && handle->ptr && handle->id &&
           handle->check == handle_check(loop, handle->ptr, handle->id);
}

int asyncio_handle_cancel(asyncio_handle_t *handle)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!handle_valid(loop, handle))
        return -EINVAL;
    struct chandle *h = lookup(handle);
    if (!h || h->state == H_CANCELLED)
        return 0;
    if (h->state == H_TIMER) {
        loop_timer_cancel(loop, &h->timer);
        handle_release(loop, h);
        return 1;
    }
    if (h->state == H_READY) {
        /* It stays on the ready queue, which skips and frees it. */
        h->state = H_CANCELLED;
        return 1;
    }
    return 0; /* GCOVR_EXCL_LINE: a handle a caller holds is READY, TIMER or CANCELLED (done callbacks get none) */
}

int asyncio_handle_pending(const asyncio_handle_t *handle)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!handle_valid(loop, handle))
        return -EINVAL;
    struct chandle *h = lookup(handle);
    return h && (h->state == H_READY || h->state == H_TIMER);
}

/* Future done callbacks. */

static void done_notify(struct waiter *w, struct asyncio_future *f)
{
    struct chandle *h = container_of(w, struct chandle, waiter);
    (void)f;
    h->state = H_READY;
    loop_ready(f->loop, &h->run);
}

int asyncio_future_add_done_callback(asyncio_future_t *f, asyncio_done_callback cb, void *arg)
{
    if (!f || !cb)
        return -EINVAL;
    int rc = loop_check_owner(f->loop, __func__);
    if (rc < 0)
        return rc;
    struct chandle *h = handle_new(f->loop, NULL, arg);
    if (!h)
        return -ENOMEM;
    h->done_cb = cb;
    h->fut = asyncio_future_retain(f);
    if (future_is_done(f)) {
        h->state = H_READY;
        loop_ready(f->loop, &h->run);
    } else {
        h->state = H_WAITING;
        h->waiter.notify = done_notify;
        future_add_waiter(f, &h->waiter);
    }
    return 0;
}

int asyncio_future_remove_done_callback(asyncio_future_t *f, asyncio_done_callback cb, void *arg)
{
    if (!f || !cb)
        return -EINVAL;
    int removed = 0;
    struct dlist *n = f->waiters.next;
    while (n != &f->waiters) {
        struct dlist *next = n->next;
        struct waiter *w = container_of(n, struct waiter, link);
        if (w->notify == done_notify) {
            struct chandle *h = container_of(w, struct chandle, waiter);
            if (h->done_cb == cb && h->arg == arg) {
                future_remove_waiter(w);
                handle_release(f->loop, h);
                removed++;
            }
        }
        n = next;
    }
    /* The references the callbacks held; f lives on through the caller's. */
    for (int i = 0; i < removed; i++)
        asyncio_future_release(f);
    return removed;
}
