/* The loop's inbox (see thread.h): asyncio_get_running_loop(), references,
 * asyncio_call_soon_threadsafe(), and the loop's side, which takes what
 * was posted and runs it. */
#include "clock.h"
#include "syscaps.h"
#include "thread.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#define INBOX_MIN 64          /* entries the array starts with */
#define INBOX_KEEP 4096       /* entries an array keeps whatever it held */

/* ---- any thread ----------------------------------------------------------- */

/* Make room for one more entry in s->in; false if it cannot grow. */
static bool inbox_room(struct asyncio_loop *s)
{
    struct post_array *a = &s->in;
    if (a->len < a->cap)
        return true;
    size_t cap = a->cap ? a->cap * 2 : INBOX_MIN;
    struct post_entry *v = cap <= SIZE_MAX / sizeof *v ? realloc(a->v, cap * sizeof *v) : NULL;
    if (!v)
        return false;
    a->v = v;
    a->cap = cap;
    return true;
}

/* Write the wake-up fd. The fd stays open while the poster holds its
 * reference (it is closed with the last). EAGAIN: a full eventfd (or
 * pipe) is readable already. An eventfd's write cannot fail otherwise; if
 * it did, it is tried once more, then left to the next post. */
static void inbox_wake(struct asyncio_loop *s)
{
    if (s->wake_kq >= 0) {
        atomic_fetch_add(&s->notifying, 1);
        int rc = atomic_load(&s->wake_closed) ? 0 : s->wake_trigger(s->wake_kq);
        atomic_fetch_sub(&s->notifying, 1);
        if (rc < 0)
            atomic_store(&s->signalled, false); /* GCOVR_EXCL_LINE: a trigger of an open kqueue does not fail */
        return;
    }
    uint64_t one = 1;
    for (int tries = 0; tries < 2; tries++) {
        ssize_t w;
        do
            w = write(s->wake_wr, &one, sizeof one);
        while (w < 0 && errno == EINTR);
        if (w >= 0 || errno == EAGAIN)
            return;
    }
    atomic_store(&s->signalled, false); /* GCOVR_EXCL_LINE: two failed writes in a row */
}

/* After a post: wake the loop unless it will look anyway. From the loop's
 * own thread nothing is written: the loop takes at the start of its next
 * iteration. Else the fd is written once until the loop reads it (thread.h
 * says why no wake-up is lost: the caller published its post with a
 * sequentially consistent operation). */
static void inbox_notify(struct asyncio_loop *s)
{
    struct loop *own = loop_current();
    if (own && own->threads.shared == s) {
        own->threads.take_next = true;
        return;
    }
    if (!atomic_load(&s->signalled) && !atomic_exchange(&s->signalled, true))
        inbox_wake(s);
}

/* Put e in the ring. 0, 1 if the ring is full, -ESHUTDOWN. */
static int ring_put(struct asyncio_loop *s, const struct post_entry *e)
{
    size_t pos = atomic_load_explicit(&s->tail, memory_order_relaxed);
    for (;;) {
        if (pos & INBOX_CLOSED)
            return -ESHUTDOWN;
        size_t i = pos & (INBOX_RING - 1), base = pos - i;
        struct inbox_slot *sl = &s->ring[i];
        size_t seq = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if (seq == base) {
            /* Free for pos: claim it (on failure pos is the tail now). */
            if (atomic_compare_exchange_weak_explicit(&s->tail, &pos, pos + 1, memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                sl->cb = e->cb;
                sl->arg = e->arg;
                s->releases[i] = e->release;
                atomic_exchange(&sl->seq, base + 1); /* published, and a full barrier */
                return 0;
            }
        } else if ((ptrdiff_t)(seq - base) < 0) {
            return 1; /* the last lap's post there has not run: full */
        } else {
            pos = atomic_load_explicit(&s->tail, memory_order_relaxed); /* taken: pos is old */
        }
    }
}

/* Put e in the overflow (under s->mu): in the array, or on the list, in
 * node, or, if node is NULL, in one made here. 0, or -ENOMEM with nothing
 * put. */
static int overflow_put(struct asyncio_loop *s, const struct post_entry *e, struct post *node)
{
    if (!s->spill && inbox_room(s)) {
        s->in.v[s->in.len++] = *e;
        return 0;
    }
    /* The list has posts the array could not take: go after them. */
    bool heap = !node;
    if (heap && !(node = malloc(sizeof *node)))
        return -ENOMEM;
    node->e = *e;
    node->heap = heap;
    node->next = NULL;
    *s->spill_tail = node;
    s->spill_tail = &node->next;
    return 0;
}

/* Post e: to the ring, or, when it is full or the overflow holds posts, to
 * the overflow (in node, if its list must take it; NULL: one made then).
 * The caller holds a reference until this returns: once published, the
 * callback may run at once, and the loop close, while the post still reads
 * signalled and writes the fd. */
static int post(struct asyncio_loop *s, const struct post_entry *e, struct post *node)
{
    int rc = atomic_load_explicit(&s->overflowing, memory_order_relaxed) ? 1 : ring_put(s, e);
    if (rc == 1) {
        pthread_mutex_lock(&s->mu);
        rc = s->closed ? -ESHUTDOWN : overflow_put(s, e, node);
        if (rc == 0)
            atomic_store(&s->overflowing, true);
        pthread_mutex_unlock(&s->mu);
    }
    if (rc == 0)
        inbox_notify(s);
    return rc;
}

int loop_post(struct asyncio_loop *s, asyncio_callback cb, void *arg, asyncio_callback release)
{
    return post(s, &(struct post_entry){cb, arg, release}, NULL);
}

/* A node's callback drops the reference its object holds, which may be the
 * last but the loop's: the post holds one of its own (see post()). */
int loop_post_node(struct asyncio_loop *s, struct post *p)
{
    asyncio_loop_ref(s);
    int rc = post(s, &p->e, p);
    asyncio_loop_unref(s);
    return rc;
}

static void wake_fds_close(struct asyncio_loop *s)
{
    if (s->wake_rd >= 0)
        close(s->wake_rd);
    if (s->wake_wr != s->wake_rd && s->wake_wr >= 0)
        close(s->wake_wr); /* GCOVR_EXCL_LINE: a pipe's end, off Linux only (one eventfd there) */
    s->wake_rd = s->wake_wr = -1;
}

asyncio_loop_t *asyncio_loop_ref(asyncio_loop_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void asyncio_loop_unref(asyncio_loop_t *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* The last reference: the loop has closed (it holds one while it
     * runs), so the inbox is empty. */
    wake_fds_close(s);
    pthread_mutex_destroy(&s->mu);
    free(s->in.v);
    free(s->ring);
    free(s->releases);
    free(s);
}

int asyncio_loop_is_closed(asyncio_loop_t *s)
{
    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&s->mu);
    bool closed = s->closed;
    pthread_mutex_unlock(&s->mu);
    return closed;
}

/* A post from the loop's own thread goes straight to the ready queue, as
 * asyncio's call_soon_threadsafe() does, so that it runs in order with the
 * call_soon() callbacks around it; listed, so that the loop releases it if
 * it closes first. */
struct local_post {
    struct runnable run;
    struct dlist link;          /* on loop->threads.local while queued */
    struct post_entry e;
};

static void local_post_run(struct loop *loop, struct runnable *r)
{
    (void)loop;
    struct local_post *p = container_of(r, struct local_post, run);
    dlist_remove(&p->link);
    struct post_entry e = p->e;
    free(p);
    e.cb(e.arg);
}

static int local_post(struct loop *loop, asyncio_callback cb, void *arg, asyncio_callback release)
{
    struct local_post *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->run.run = local_post_run;
    p->e = (struct post_entry){cb, arg, release};
    dlist_push_back(&loop->threads.local, &p->link);
    loop_ready(loop, &p->run);
    return 0;
}

int asyncio_call_soon_threadsafe(asyncio_loop_t *s, asyncio_callback cb, void *arg,
                                 asyncio_callback release)
{
    if (!s || !cb)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (loop && loop->threads.shared == s)
        return local_post(loop, cb, arg, release);
    int rc = loop_post(s, cb, arg, release);
    if (rc == -ESHUTDOWN)
        debug_closed_use(s, __func__);
    return rc;
}

/* macOS has no pthread_condattr_setclock(): there the wait is on the
 * real-time clock, for the time left on the monotonic one. */
int thread_cond_init(pthread_cond_t *cv)
{
#if defined(_POSIX_MONOTONIC_CLOCK) && !defined(__APPLE__)
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(cv, &a);
        pthread_condattr_destroy(&a);
    }
    return -rc;
#else
    return -pthread_cond_init(cv, NULL);
#endif
}

int thread_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns)
{
    if (deadline_ns == UINT64_MAX) {
        pthread_cond_wait(cv, mu);
        return 0;
    }
#if defined(_POSIX_MONOTONIC_CLOCK) && !defined(__APPLE__)
    uint64_t at = deadline_ns;
#else
    uint64_t now = clock_now_ns(), left = deadline_ns > now ? deadline_ns - now : 0;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t at = clock_deadline((uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec, left);
#endif
    struct timespec ts = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
    return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* ---- the loop's thread ---------------------------------------------------- */

/* Run what was taken, in the order posted: the ring's, then the overflow's
 * array, then its list. A callback may post again: that goes to the inbox,
 * for the next take. */
static void run_taken(struct loop *loop, struct runnable *r)
{
    (void)r;
    struct loop_threads *th = &loop->threads;
    struct inbox_slot *ring = th->shared->ring;
    while (th->head != th->taken_end) {
        size_t pos = th->head++, i = pos & (INBOX_RING - 1);
        struct inbox_slot *sl = &ring[i];
        asyncio_callback cb = sl->cb;
        void *arg = sl->arg;
        atomic_store_explicit(&sl->seq, pos - i + INBOX_RING, memory_order_release); /* free */
        cb(arg);
    }
    for (size_t i = 0; i < th->out.len; i++)
        th->out.v[i].cb(th->out.v[i].arg);
    /* A larger array is kept while it is a quarter full: a steady stream
     * of large batches must not grow it again every time; a burst's worth
     * is freed once the batches are small again. */
    if (th->out.cap > INBOX_KEEP && th->out.len < th->out.cap / 4) {
        free(th->out.v);
        th->out.v = NULL;
        th->out.cap = 0;
    }
    th->out.len = 0;
    while (th->spill) {
        struct post *p = th->spill;
        th->spill = p->next;
        bool heap = p->heap;
        struct post_entry e = p->e;
        if (heap)
            free(p);
        e.cb(e.arg); /* may free p, if it lives in what it posted */
    }
    th->runner_queued = false;
}

/* Take what was posted: the ring's published slots, in order up to the
 * first that is not (its poster is between claim and publish: it wakes
 * the loop once it has published, or finds it looking), and, if the ring
 * is empty then, the overflow (thread.h says why then only). It becomes
 * one item of the ready queue; put off to the next iteration while the
 * last take has not run. True if something was taken. */
static bool take(struct loop *loop)
{
    struct loop_threads *th = &loop->threads;
    struct asyncio_loop *s = th->shared;
    if (th->runner_queued) {
        th->take_next = true;
        return false;
    }
    th->take_next = false;
    /* Sequentially consistent loads, as the store that cleared signalled
     * before (thread.h): plain loads on x86, acquire loads on Arm. */
    size_t end = atomic_load(&s->tail) & ~INBOX_CLOSED, pos = th->taken_end;
    while (pos != end) {
        size_t i = pos & (INBOX_RING - 1);
        if (atomic_load(&s->ring[i].seq) != pos - i + 1)
            break;
        pos++;
    }
    th->taken_end = pos;
    if (pos == end && atomic_load(&s->overflowing)) {
        pthread_mutex_lock(&s->mu);
        /* No claim since: the ring's posts all come before the overflow's. */
        if ((atomic_load(&s->tail) & ~INBOX_CLOSED) == pos) {
            struct post_array in = s->in;
            s->in = th->out; /* empty, with the room it had */
            th->out = in;
            th->spill = s->spill;
            s->spill = NULL;
            s->spill_tail = &s->spill;
            atomic_store(&s->overflowing, false);
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (th->head == th->taken_end && !th->out.len && !th->spill)
        return false;
    th->runner_queued = true;
    loop_ready(loop, &th->runner);
    return true;
}

void threads_take(struct loop *loop)
{
    take(loop);
}

bool thread_multi_cpu(void)
{
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set) > 1;
#endif
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

bool threads_spin(struct loop *loop, uint64_t budget_ns)
{
    struct asyncio_loop *s = loop->threads.shared;
    /* Posters need not write the fd while the loop looks: signalled says
     * it was written already. If it really was, there is a post. */
    bool marked = !atomic_exchange(&s->signalled, true);
    if (marked) {
        uint64_t until = clock_deadline(clock_now_ns(), budget_ns);
        while (!threads_pending(loop) && clock_now_ns() < until)
            cpu_relax();
        /* Whatever came, the fd is armed again before the take: a post
         * from now on writes it, as the loop may sleep next. */
        atomic_store(&s->signalled, false);
    }
    return take(loop) || loop->threads.take_next; /* (a take put off: go on too) */
}

/* The wake-up fd is readable: reset it, then take. Posts from now on write
 * it again; those made before are in what is taken now, or, if the take
 * is put off, next time. */
static void on_wake(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    uint64_t buf[8];
#ifdef HAVE_EVENTFD
    (void)!read(fd, buf, sizeof buf); /* an eventfd: one read resets it */
#else
    while (read(fd, buf, sizeof buf) > 0)
        ;
#endif
    threads_woken(loop);
}

void threads_woken(struct loop *loop)
{
    atomic_store(&loop->threads.shared->signalled, false);
    take(loop);
}

#ifndef HAVE_EVENTFD
static int set_nonblock_cloexec(int fd)
{
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}
#endif

static int wake_fds_open(struct asyncio_loop *s)
{
#ifdef HAVE_EVENTFD
    s->wake_rd = s->wake_wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return s->wake_rd < 0 ? -errno : 0;
#else
    int fds[2];
    if (pipe(fds) < 0)
        return -errno;
    s->wake_rd = fds[0];
    s->wake_wr = fds[1];
    int rc = set_nonblock_cloexec(fds[0]);
    return rc < 0 ? rc : set_nonblock_cloexec(fds[1]);
#endif
}


/* The inbox's mutex is held for a few instructions at a time, by a
 * producer that posts in a loop and a loop that takes: where glibc has
 * them, an adaptive mutex spins a little before it sleeps, which spares
 * both the futex calls of a mutex that is only ever busy for a moment. */
static int inbox_mutex_init(pthread_mutex_t *mu)
{
#if defined(__GLIBC__) && defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP)
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc == 0) {
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
        rc = pthread_mutex_init(mu, &a);
        pthread_mutexattr_destroy(&a);
    }
    return -rc;
#else
    return -pthread_mutex_init(mu, NULL);
#endif
}

int threads_init(struct loop *loop)
{
    struct loop_threads *th = &loop->threads;
    th->runner.run = run_taken;
    th->multi_cpu = thread_multi_cpu();
    dlist_init(&th->local);
    dlist_init(&th->wraps);
    loop->io.wake_fd = -1;
    struct asyncio_loop *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->wake_rd = s->wake_wr = s->wake_kq = -1;
    s->spill_tail = &s->spill;
    atomic_init(&s->tail, 0);
    atomic_init(&s->signalled, false);
    atomic_init(&s->overflowing, false);
    atomic_init(&s->running, false);
    atomic_init(&s->refs, 1);
    /* Zeroed slots are free for the first lap (thread.h). */
    s->ring = calloc(INBOX_RING, sizeof *s->ring);
    s->releases = calloc(INBOX_RING, sizeof *s->releases);
    int rc = s->ring && s->releases ? inbox_mutex_init(&s->mu) : -ENOMEM;
    struct poller *p = &loop->poller;
    if (rc == 0 && p->ops->wake_open && p->ops->wake_open(p) == 0) {
        /* The kqueue backend's own wake-up (EVFILT_USER): no fd. */
        s->wake_kq = p->ops->backend_fd(p);
        s->wake_trigger = p->ops->wake_trigger;
        atomic_init(&s->notifying, 0);
        atomic_init(&s->wake_closed, false);
        s->owner = pthread_self();
        s->loop = loop;
        th->shared = s;
        return 0;
    }
    if (rc == 0) {
        if ((rc = wake_fds_open(s)) == 0) {
            loop->io.wake_fd = s->wake_rd;
            if ((rc = io_watch(loop, s->wake_rd, POLLER_IN, on_wake, NULL)) == 0) {
                s->owner = pthread_self();
                s->loop = loop;
                th->shared = s;
                return 0;
            }
            loop->io.wake_fd = -1;
        }
        wake_fds_close(s);
        pthread_mutex_destroy(&s->mu);
    }
    free(s->ring);
    free(s->releases);
    free(s);
    return rc;
}

static void release_entry(const struct post_entry *e)
{
    if (e->release)
        e->release(e->arg);
}

static void release_list(struct post *p)
{
    while (p) {
        struct post *next = p->next;
        struct post_entry e = p->e;
        if (p->heap)
            free(p);
        release_entry(&e); /* may free p, if it lives in what it posted */
        p = next;
    }
}

void threads_term(struct loop *loop)
{
    struct loop_threads *th = &loop->threads;
    struct asyncio_loop *s = th->shared;
    /* Its threads post what they drop and finish: before the close. */
    executor_close_default(loop);
    if (s->wake_kq >= 0) {
        atomic_store(&s->wake_closed, true);
        while (atomic_load(&s->notifying))
            sched_yield(); /* a poster a few instructions from done */
    } else {
        io_watch(loop, s->wake_rd, 0, NULL, NULL);
    }
    loop->io.wake_fd = -1;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    size_t end = atomic_fetch_or(&s->tail, INBOX_CLOSED) & ~INBOX_CLOSED;
    struct post_array in = s->in;
    struct post *spill = s->spill;
    s->in = (struct post_array){0};
    s->spill = NULL;
    s->spill_tail = &s->spill;
    pthread_mutex_unlock(&s->mu);
    /* What was taken has run: the runner is queued by a take in
     * run_once(), whose batch runs it, and the loop's last batch follows
     * its last run_once(). What came after is released: the ring's first,
     * each once its poster, which claimed it before the close, has
     * published it (it is between two instructions of ring_put()). */
    for (size_t pos = th->head; pos != end; pos++) {
        size_t i = pos & (INBOX_RING - 1);
        struct inbox_slot *sl = &s->ring[i];
        while (atomic_load_explicit(&sl->seq, memory_order_acquire) != pos - i + 1)
            sched_yield(); /* GCOVR_EXCL_LINE: a poster preempted in between */
        release_entry(&(struct post_entry){sl->cb, sl->arg, s->releases[i]});
    }
    th->head = th->taken_end = end;
    for (size_t i = 0; i < in.len; i++)
        release_entry(&in.v[i]);
    free(in.v);
    free(th->out.v);
    th->out = (struct post_array){0};
    release_list(th->spill);
    th->spill = NULL;
    release_list(spill);
    while (!dlist_empty(&th->local)) {
        struct local_post *p = container_of(th->local.next, struct local_post, link);
        dlist_remove(&p->link);
        struct post_entry e = p->e;
        free(p);
        release_entry(&e);
    }
    cfuture_wraps_term(loop); /* after the close: what they cancel cannot post here */
    s->loop = NULL;
    th->shared = NULL;
    asyncio_loop_unref(s);
}
