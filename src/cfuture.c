/* Thread-safe futures (asyncio_cfuture_t): completed, waited for and
 * cancelled from any thread; asyncio_run_coroutine_threadsafe(), which
 * starts a task in a loop and completes one with the task's outcome; and
 * asyncio_wrap_future(), a loop future that follows one.
 *
 * A plain thread waits on the future's condition variable. A task (or a
 * loop future of asyncio_wrap_future()) registers a struct cf_wait on the
 * future's list; whoever completes the future takes the list under the
 * future's mutex and posts each wait to its loop's inbox, where it wakes
 * the task (or completes the loop future). Who frees a wait:
 * - still on the list: whoever unlinks it (the task that stops waiting, or
 *   the future's last reference);
 * - taken off it: its post, when it runs (if the task stopped waiting, or
 *   for a loop future) or when its loop closes first; else the task, once
 *   woken. A task that stops waiting (cancelled, timed out) when its wait
 *   was taken but not yet run leaves it to the post (task = NULL). */
#include "clock.h"
#include "thread.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

struct cf_wait {
    struct post post;           /* the wake, posted to home */
    struct dlist link;          /* on the future's waits while listed */
    struct asyncio_loop *home;  /* a reference */
    /* The loop's thread only, once listed: */
    struct task *task;          /* the task waiting; NULL once it stopped */
    asyncio_future_t *fut;      /* or the loop future to complete (a reference) */
    bool fired;                 /* the post ran */
    /* The future's outcome, written when it was taken off the list. */
    int status;
    void *result;
};

/* A task started by asyncio_run_coroutine_threadsafe(). */
struct rct {
    struct post start;          /* posted once: starts the task */
    struct post cancel;         /* posted if the future is cancelled */
    atomic_uint refs;           /* the loop side's, and the future's link */
    asyncio_fn fn;
    void *arg;
    asyncio_cfuture_t *f;       /* a reference, dropped with the loop side's */
    struct asyncio_loop *home;  /* a reference, likewise */
    asyncio_task_t *task;       /* the loop's thread: while it runs */
};

struct asyncio_cfuture {
    pthread_mutex_t mu;
    pthread_cond_t done_cv;     /* plain threads wait on it */
    atomic_uint refs;
    bool done;                  /* (mu) */
    int status;                 /* (mu) */
    void *result;               /* (mu) */
    struct dlist waits;         /* (mu) struct cf_wait */
    struct rct *task_req;       /* (mu) the task to cancel with it (a reference) */
    unsigned wrap_refs;         /* (mu) references held by wrap_future()'s links */
};

/* ---- waits -------------------------------------------------------------------- */

static void wait_free(struct cf_wait *w)
{
    asyncio_loop_unref(w->home);
    free(w);
}

/* In the loop: the future is done. */
static void wait_fire(void *arg)
{
    struct cf_wait *w = arg;
    w->fired = true;
    if (w->task) {
        task_wake(w->task, 0); /* it frees w */
        return;
    }
    if (w->fut) {
        if (w->fut->state == FUT_PENDING)
            future_complete(w->fut, w->status, w->status < 0 ? NULL : w->result);
        asyncio_future_release(w->fut);
    }
    wait_free(w);
}

/* Its loop closed first (in the loop as it closes, or in the completing
 * thread): its task has finished, and a loop future is freed with the
 * loop. */
static void wait_drop(void *arg)
{
    wait_free(arg);
}

static void rct_unref(void *arg)
{
    struct rct *r = arg;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        free(r);
}

/* Complete f; the waits it had are taken and posted. */
static int complete(asyncio_cfuture_t *f, int status, void *result)
{
    pthread_mutex_lock(&f->mu);
    if (f->done) {
        pthread_mutex_unlock(&f->mu);
        return -EALREADY;
    }
    f->done = true;
    f->status = status;
    f->result = status < 0 ? NULL : result;
    struct post *taken = NULL, **tail = &taken;
    while (!dlist_empty(&f->waits)) {
        struct cf_wait *w = container_of(f->waits.next, struct cf_wait, link);
        dlist_remove(&w->link);
        w->status = f->status;
        w->result = f->result;
        w->post.e = (struct post_entry){wait_fire, w, wait_drop};
        *tail = &w->post;
        tail = &w->post.next;
    }
    *tail = NULL;
    struct rct *r = f->task_req;
    f->task_req = NULL;
    /* The home reference r holds is its loop side's, which may let go of
     * it (and the loop close) as soon as f->mu is released: the cancel
     * post needs one of its own. */
    struct asyncio_loop *home = r && status == -ECANCELED ? asyncio_loop_ref(r->home) : NULL;
    pthread_cond_broadcast(&f->done_cv);
    pthread_mutex_unlock(&f->mu);
    while (taken) {
        struct post *p = taken;
        taken = p->next;
        struct cf_wait *w = container_of(p, struct cf_wait, post);
        if (loop_post_node(w->home, p) < 0)
            wait_drop(w);
    }
    if (r) {
        /* Cancelled from outside: cancel the task too (the link's
         * reference goes with the post). */
        if (!home || loop_post_node(home, &r->cancel) < 0)
            rct_unref(r);
        asyncio_loop_unref(home);
    }
    return 0;
}

/* ---- the future ------------------------------------------------------------------ */

int asyncio_cfuture_new(asyncio_cfuture_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    asyncio_cfuture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    dlist_init(&f->waits);
    atomic_init(&f->refs, 1);
    int rc = -pthread_mutex_init(&f->mu, NULL);
    if (rc == 0) {
        if ((rc = thread_cond_init(&f->done_cv)) == 0) {
            *out = f;
            return 0;
        }
        /* GCOVR_EXCL_START: glibc's mutex and condition inits do not fail */
        pthread_mutex_destroy(&f->mu);
    }
    free(f);
    return rc;
    /* GCOVR_EXCL_STOP */
}

asyncio_cfuture_t *asyncio_cfuture_ref(asyncio_cfuture_t *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void asyncio_cfuture_unref(asyncio_cfuture_t *f)
{
    if (!f)
        return;
    /* Under the mutex, so that the count is read with wrap_refs, which the
     * loop changes with it under the mutex too. */
    pthread_mutex_lock(&f->mu);
    unsigned left = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) - 1;
    bool orphan = left > 0 && left == f->wrap_refs && !f->done;
    pthread_mutex_unlock(&f->mu);
    /* Nobody left who could complete it: the loop futures that follow it
     * (asyncio_wrap_future) would wait for ever, so they end as cancelled.
     * No task waits (it would hold a reference). */
    if (left == 0 || orphan)
        complete(f, -ECANCELED, NULL);
    if (left == 0) {
        pthread_cond_destroy(&f->done_cv);
        pthread_mutex_destroy(&f->mu);
        free(f);
    }
}

int asyncio_cfuture_set_result(asyncio_cfuture_t *f, int status, void *result)
{
    return f ? complete(f, status, result) : -EINVAL;
}

int asyncio_cfuture_cancel(asyncio_cfuture_t *f)
{
    if (!f)
        return -EINVAL;
    return complete(f, -ECANCELED, NULL) == 0;
}

int asyncio_cfuture_done(asyncio_cfuture_t *f)
{
    if (!f)
        return -EINVAL;
    pthread_mutex_lock(&f->mu);
    bool done = f->done;
    pthread_mutex_unlock(&f->mu);
    return done;
}

/* f's outcome (under f->mu, f done). */
static int outcome(asyncio_cfuture_t *f, void **result)
{
    if (result && f->status >= 0)
        *result = f->result;
    return f->status;
}

struct cf_wait *cfuture_wait_new(struct task *t)
{
    struct cf_wait *w = calloc(1, sizeof *w);
    if (w) {
        w->home = asyncio_loop_ref(t->fut.loop->threads.shared);
        w->task = t;
    }
    return w;
}

void cfuture_wait_free(struct cf_wait *w)
{
    wait_free(w);
}

int cfuture_wait_park(asyncio_cfuture_t *f, struct cf_wait *w, uint64_t deadline)
{
    struct task *t = w->task;
    pthread_mutex_lock(&f->mu);
    if (f->done) {
        pthread_mutex_unlock(&f->mu);
        wait_free(w);
        return 0;
    }
    dlist_push_back(&f->waits, &w->link);
    pthread_mutex_unlock(&f->mu);
    int rc = task_park_until(t, deadline, -ETIMEDOUT);
    if (w->fired) {
        wait_free(w);
        return rc;
    }
    pthread_mutex_lock(&f->mu);
    bool listed = dlist_linked(&w->link);
    dlist_remove(&w->link);
    pthread_mutex_unlock(&f->mu);
    if (listed)
        wait_free(w);
    else
        w->task = NULL; /* taken, its post on the way: it frees w */
    return rc;
}

int asyncio_cfuture_result(asyncio_cfuture_t *f, double timeout, void **result)
{
    if (!f || isnan(timeout))
        return -EINVAL;
    uint64_t deadline = timeout < 0 ? UINT64_MAX
                                    : clock_deadline(clock_now_ns(), clock_seconds_to_ns(timeout));
    pthread_mutex_lock(&f->mu);
    bool done = f->done;
    int rc = done ? outcome(f, result) : 0;
    pthread_mutex_unlock(&f->mu);
    if (done)
        return rc;
    if (timeout == 0)
        return -ETIMEDOUT;
    struct loop *loop = loop_current();
    if (loop && !loop->current)
        return -EPERM; /* waiting would block the loop */
    if (loop) {
        struct task *t;
        if ((rc = task_begin_wait_on(&t, "thread-safe future")) < 0)
            return rc;
        struct cf_wait *w = cfuture_wait_new(t);
        if (!w)
            return -ENOMEM;
        if ((rc = cfuture_wait_park(f, w, deadline)) < 0)
            return rc;
        pthread_mutex_lock(&f->mu);
    } else {
        pthread_mutex_lock(&f->mu);
        while (!f->done && thread_cond_wait_until(&f->done_cv, &f->mu, deadline) == 0)
            ;
    }
    rc = f->done ? outcome(f, result) : -ETIMEDOUT;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* A loop future of asyncio_wrap_future() that is not done yet: when it
 * is cancelled, so is f (as asyncio.wrap_future() does). Listed in the
 * loop (its thread only), so that the loop drops f if it closes first. Its
 * reference to f is counted apart (wrap_refs): once only such references
 * are left, nobody can complete f, and it ends as cancelled. */
struct wrap_link {
    struct dlist link;          /* on loop->threads.wraps */
    asyncio_cfuture_t *f;       /* a reference */
};

static void wrap_link_free(struct wrap_link *l)
{
    dlist_remove(&l->link);
    pthread_mutex_lock(&l->f->mu);
    l->f->wrap_refs--;
    pthread_mutex_unlock(&l->f->mu);
    asyncio_cfuture_unref(l->f);
    free(l);
}

static void wrapped_done(asyncio_future_t *fut, void *arg)
{
    struct wrap_link *l = arg;
    if (asyncio_future_cancelled(fut))
        asyncio_cfuture_cancel(l->f);
    wrap_link_free(l);
}

void cfuture_wraps_term(struct loop *loop)
{
    while (!dlist_empty(&loop->threads.wraps))
        wrap_link_free(container_of(loop->threads.wraps.next, struct wrap_link, link));
}

int asyncio_wrap_future(asyncio_cfuture_t *f, asyncio_future_t **out)
{
    if (!f || !out)
        return -EINVAL;
    *out = NULL;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    asyncio_future_t *fut;
    int rc = asyncio_future_new(&fut);
    if (rc < 0)
        return rc;
    struct cf_wait *w = calloc(1, sizeof *w);
    struct wrap_link *l = w ? malloc(sizeof *l) : NULL;
    if (l && (rc = asyncio_future_add_done_callback(fut, wrapped_done, l)) < 0) {
        free(l);
        l = NULL;
    }
    if (!l) {
        free(w);
        asyncio_future_release(fut);
        return rc < 0 ? rc : -ENOMEM;
    }
    l->f = f;
    dlist_push_back(&loop->threads.wraps, &l->link);
    w->home = asyncio_loop_ref(loop->threads.shared);
    w->fut = asyncio_future_retain(fut);
    pthread_mutex_lock(&f->mu);
    asyncio_cfuture_ref(f); /* the link's, counted with wrap_refs */
    f->wrap_refs++;
    bool done = f->done;
    if (!done)
        dlist_push_back(&f->waits, &w->link);
    else
        future_complete(fut, f->status, f->status < 0 ? NULL : f->result);
    pthread_mutex_unlock(&f->mu);
    if (done) {
        asyncio_future_release(fut);
        wait_free(w);
    }
    *out = fut;
    return 0;
}

/* ---- run_coroutine_threadsafe ------------------------------------------------------ */

/* The loop side is done with r. */
static void rct_loop_done(struct rct *r)
{
    asyncio_cfuture_unref(r->f);
    asyncio_loop_unref(r->home);
    rct_unref(r);
}

static void rct_task_done(asyncio_future_t *task, void *arg)
{
    struct rct *r = arg;
    void *result = NULL;
    int status = asyncio_future_result(task, &result);
    asyncio_task_release(task);
    r->task = NULL;
    /* Nothing left to cancel: the link goes before the completion, which
     * would take an outcome of -ECANCELED for a cancellation from outside. */
    pthread_mutex_lock(&r->f->mu);
    bool linked = r->f->task_req == r;
    if (linked)
        r->f->task_req = NULL;
    pthread_mutex_unlock(&r->f->mu);
    if (linked)
        rct_unref(r);
    complete(r->f, status, result);
    rct_loop_done(r);
}

/* In the loop: start the task, unless the future was cancelled already or
 * the loop is closing (a task made now might never run). */
static void rct_start(void *arg)
{
    struct rct *r = arg;
    int rc = asyncio_cfuture_done(r->f) || loop_current()->closing ? -ECANCELED : 0;
    if (rc == 0 && (rc = asyncio_create_task(&r->task, r->fn, r->arg, NULL)) == 0 &&
        (rc = asyncio_future_add_done_callback(r->task, rct_task_done, r)) < 0) {
        asyncio_task_cancel(r->task); /* no memory to follow it: it must not run unseen */
        asyncio_task_release(r->task);
        r->task = NULL;
    }
    if (rc < 0) {
        complete(r->f, rc, NULL);
        rct_loop_done(r);
    }
}

/* The loop closed before starting it. */
static void rct_never_started(void *arg)
{
    struct rct *r = arg;
    complete(r->f, -ECANCELED, NULL);
    rct_loop_done(r);
}

/* In the loop: the future was cancelled. */
static void rct_cancel(void *arg)
{
    struct rct *r = arg;
    if (r->task)
        asyncio_task_cancel(r->task);
    rct_unref(r);
}

int asyncio_run_coroutine_threadsafe(asyncio_loop_t *loop, asyncio_fn fn, void *arg,
                                     asyncio_cfuture_t **out)
{
    if (!loop || !fn || !out)
        return -EINVAL;
    *out = NULL;
    asyncio_cfuture_t *f;
    int rc = asyncio_cfuture_new(&f);
    if (rc < 0)
        return rc;
    struct rct *r = calloc(1, sizeof *r);
    if (!r) {
        asyncio_cfuture_unref(f);
        return -ENOMEM;
    }
    atomic_init(&r->refs, 2);
    r->fn = fn;
    r->arg = arg;
    r->f = asyncio_cfuture_ref(f);
    r->home = asyncio_loop_ref(loop);
    r->start.e = (struct post_entry){rct_start, r, rct_never_started};
    r->cancel.e = (struct post_entry){rct_cancel, r, rct_unref};
    f->task_req = r; /* nobody else has f yet */
    if ((rc = loop_post_node(loop, &r->start)) < 0) {
        f->task_req = NULL;
        asyncio_cfuture_unref(f);
        asyncio_loop_unref(loop);
        free(r);
        asyncio_cfuture_unref(f);
        return rc;
    }
    *out = f;
    return 0;
}
