/* The loop core: the subsystems a loop is made of (their table), the loop's
 * life cycle (new, run until complete or stopped, one iteration for an
 * embedding, close; asyncio_run() over them), and its iterations. One
 * iteration runs what was ready when it began, polls (without blocking if
 * anything is ready, and not at all when no fd is watched and something is
 * ready), then moves due timers and ready fds to the ready queue. */
#include "task.h"
#include "clock.h"
#include "sanitizers.h"
#include "thread.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>

/* The thread's loop (see loop.h for why initial-exec). */
_Thread_local struct loop *loop_tls LOOP_TLS_MODEL;

int loop_timer_add(struct loop *loop, struct ltimer *lt)
{
    return timerheap_push(&loop->timers, &lt->t);
}

void loop_timer_cancel(struct loop *loop, struct ltimer *lt)
{
    if (timer_queued(&lt->t))
        timerheap_remove(&loop->timers, &lt->t);
}

/* What must happen before polling: queued writes go out. Each item is
 * unlinked before it runs, and may queue itself again for the next time. */
static void run_prepoll(struct loop *loop)
{
    while (!dlist_empty(&loop->prepoll)) {
        struct dlist *n = loop->prepoll.next;
        dlist_remove(n);
        struct prepoll *p = container_of(n, struct prepoll, link);
        p->run(loop, p);
    }
}

static int poll_io(struct loop *loop, uint64_t timeout_ns, int max, bool from_task)
{
    struct poller_event *evs = loop->events;
    int n = loop->poller.ops->wait(&loop->poller, timeout_ns, evs, max);
    for (int i = 0; i < n; i++)
        io_dispatch(loop, &evs[i], from_task);
    return n;
}

/* Busy polling: before it would sleep, a loop whose sleeps have been short
 * polls without blocking for up to budget (or *timeout, if sooner), so that
 * what arrives within that time is taken without the cost of going to
 * sleep and being woken (on both sides: the peer that writes pays for the
 * wake-up). True if it found events; else *timeout is what is left. */
static bool busy_poll(struct loop *loop, uint64_t budget, uint64_t *timeout)
{
    uint64_t start = clock_now_ns();
    if (budget > *timeout)
        budget = *timeout;
    uint64_t now;
    do {
        if (poll_io(loop, 0, LOOP_EVENTS, false) > 0)
            return true;
        /* An executor's thread that would answer may share this CPU. */
        if (loop->threads.calls_out)
            sched_yield();
        now = clock_now_ns();
    } while (now - start < budget);
    if (*timeout != UINT64_MAX)
        *timeout = *timeout > now - start ? *timeout - (now - start) : 0;
    return false;
}

/* Adaptive spinning on fds (thread.h's rule, with its own bounds): when
 * the sleeps that fd events ended have lately been shorter than
 * IO_SPIN_MAX_NS (a pipe whose writer writes a page at a time, or a peer
 * that answers within a microsecond or two), the wake-up costs more than
 * the wait; poll without blocking for up to twice that before sleeping. A
 * loop whose events come further apart (a network round trip, an idle
 * server) never spins. */
#define IO_SPIN_MAX_NS 5000u
#define IO_SPIN_CAP_NS 10000u

static void io_spin_or_sleep(struct loop *loop, uint64_t timeout)
{
    uint64_t avg = loop->io_wait_avg_ns;
    if (avg && avg <= IO_SPIN_MAX_NS && spin_allowed(&loop->io_spin)) {
        uint64_t budget = 2 * avg < 1000 ? 1000 : 2 * avg > IO_SPIN_CAP_NS ? IO_SPIN_CAP_NS : 2 * avg;
        bool came = busy_poll(loop, budget, &timeout);
        spin_result(&loop->io_spin, came);
        if (came)
            return;
    }
    uint64_t start = clock_now_ns();
    if (poll_io(loop, timeout, LOOP_EVENTS, false) > 0)
        spin_note_capped(&loop->io_wait_avg_ns, clock_now_ns() - start, 4 * IO_SPIN_CAP_NS);
}

/* Poll, blocking for up to timeout: with busy polling, spin first when the
 * last sleep was short, and time the sleep to decide the next time. Only
 * for fds, or for calls out in executors, whose results come through the
 * wake-up fd. */
static void poll_or_sleep(struct loop *loop, uint64_t timeout)
{
    /* Without busy polling: spin on the inbox first while calls are out
     * that have recently come back fast (thread.h). Then a poll for what
     * else came, without blocking. */
    if (!loop->busy_poll_ns && timeout != 0 && loop->threads.calls_out && loop->threads.multi_cpu) {
        struct loop_threads *th = &loop->threads;
        uint64_t budget = spin_budget(th->call_avg_ns);
        if (budget && spin_allowed(&th->spin)) {
            bool came = threads_spin(loop, budget < timeout ? budget : timeout);
            spin_result(&th->spin, came);
            if (came) {
                poll_io(loop, 0, LOOP_EVENTS, false);
                return;
            }
            if (timeout != UINT64_MAX)
                timeout = timeout > budget ? timeout - budget : 0;
        }
    }
    if (!loop->busy_poll_ns && timeout != 0 && loop->io.registered > 0 && loop->threads.multi_cpu) {
        io_spin_or_sleep(loop, timeout);
        return;
    }
    if (!loop->busy_poll_ns || timeout == 0 ||
        (loop->io.registered == 0 && loop->threads.calls_out == 0)) {
        poll_io(loop, timeout, LOOP_EVENTS, false);
        return;
    }
    if (loop->busy_poll_on && busy_poll(loop, loop->busy_poll_ns, &timeout))
        return;
    uint64_t start = clock_now_ns();
    poll_io(loop, timeout, LOOP_EVENTS, false);
    loop->busy_poll_on = clock_now_ns() - start <= 2 * loop->busy_poll_ns;
}

static void fire_due_timers(struct loop *loop)
{
    struct timer *t = timerheap_peek(&loop->timers);
    if (!t)
        return;
    uint64_t now = clock_now_ns();
    while (t && t->when <= now) {
        timerheap_remove(&loop->timers, t);
        struct ltimer *lt = container_of(t, struct ltimer, t);
        lt->fire(loop, lt);
        t = timerheap_peek(&loop->timers);
    }
}

/* Run only what is ready now: what these schedule runs next time. A task
 * that parks may hand over straight to the next task of the batch, or start
 * the next iteration itself (see task_park), so the batch lives in the
 * loop. */
static void run_batch(struct loop *loop)
{
    queue_take(&loop->batch, &loop->ready);
    bool timed = loop_instr(loop) & INSTR_DEBUG; /* read once a batch */
    struct qnode *n;
    while ((n = queue_pop(&loop->batch))) {
        struct runnable *r = container_of(n, struct runnable, q);
        if (timed && !task_runnable(r)) {
            uint64_t start = clock_now_ns(); /* a slow callback is reported */
            r->run(loop, r);
            debug_callback_ran(loop, start);
        } else {
            r->run(loop, r);
        }
    }
}

bool loop_next_batch_now(struct loop *loop)
{
    if (loop->closing || loop->stopping || loop->nowait || queue_empty(&loop->ready) ||
        loop->io.ndeferred ||
        loop->threads.take_next || (loop->io.registered == 0 && threads_pending(loop)))
        return false; /* the loop's own context goes on (no poll here sees posts) */
    run_prepoll(loop);
    /* Few events, so that what it defers always fits. */
    if (loop->io.registered > 0 && poll_io(loop, 0, LOOP_FAST_EVENTS, true) > 0 &&
        loop->io.ndeferred)
        return false; /* callbacks to run: the loop's context goes on */
    fire_due_timers(loop);
    queue_take(&loop->batch, &loop->ready);
    return true;
}

/* How long the loop may sleep: 0 if something is ready, else until its
 * first timer (UINT64_MAX: none). */
static uint64_t loop_timeout(struct loop *loop)
{
    if (!queue_empty(&loop->ready) || loop->threads.take_next || loop->io.ndeferred)
        return 0;
    struct timer *first = timerheap_peek(&loop->timers);
    if (!first)
        return UINT64_MAX;
    uint64_t now = clock_now_ns();
    return first->when > now ? first->when - now : 0;
}

static void run_once(struct loop *loop)
{
    run_prepoll(loop); /* first: it may wake tasks */
    if (loop->threads.take_next)
        threads_take(loop);
    uint64_t timeout = queue_empty(&loop->ready) ? loop_timeout(loop) : 0;
    /* About to sleep: first give back the stacks a burst of tasks left
     * pooled, for up to half the time to the next timer. */
    if (timeout != 0 && loop->tasks.ctx_pool_len > CTX_POOL_HOT) {
        uint64_t start = clock_now_ns();
        uint64_t until = timeout == UINT64_MAX ? UINT64_MAX : clock_deadline(start, timeout / 2);
        if (tasks_trim_pool(loop, until)) {
            timeout = 0; /* more to trim: go on after a look at the rest */
        } else if (timeout != UINT64_MAX) {
            uint64_t spent = clock_now_ns() - start;
            timeout = timeout > spent ? timeout - spent : 0;
        }
    }
    /* A stop, or an embedding's iteration: poll, but do not sleep. */
    if (loop->stopping || loop->nowait)
        timeout = 0;
    /* What the fast path polled but could not call, as if polled now. */
    if (loop->io.ndeferred)
        io_run_deferred(loop);
    /* Polling with nothing to wait for would only cost a system call; the
     * inbox's flag says what the wake-up fd would. */
    if (timeout != 0 || loop->io.registered > 0 || loop->nowait)
        poll_or_sleep(loop, timeout); /* an embedding's fd must be left quiet */
    else if (threads_pending(loop))
        threads_take(loop);
    fire_due_timers(loop);
    run_batch(loop);
}

static void timers_term(struct loop *loop)
{
    timerheap_free(&loop->timers);
}

/* What a loop is made of. loop_new() runs the inits in this order (NULL:
 * zeros are its empty state, as the loop is calloc'd), loop_free() the
 * terms in the reverse order, which is the order that matters:
 * - timers first: the heap marks the timers it holds unqueued, as they live
 *   in what goes later (handle slabs, tasks, streams);
 * - threads: the default executor's threads are joined before anything
 *   else goes, the inbox closed, and what it holds released (the calls no
 *   task waits for any more among it);
 * - signals: the mask restored, the signalfd closed (no order against the
 *   executors' threads, which block every signal);
 * - net: the open streams and servers; a server releases the tasks and
 *   futures it holds, so before tasks; a stream gives its buffers to the
 *   spares, freed after the list; both close fds, so before io;
 * - tasks: the futures and tasks left, the structs and contexts they were
 *   recycled into, then the stacks, which must all be free;
 * - handles after the futures, whose waiter lists may link the slabs';
 * - io: the fd table, once nothing that watched an fd is left;
 * - overflow: its alternate signal stack, as no task runs any more;
 * - the poller last, every fd it watched closed; first up, so that an
 *   unknown backend or no epoll fd fails before anything is set up.
 * An init that fails (the poller's, or tasks' -ENOMEM) has the terms of
 * those before it run. */
static const struct subsystem {
    int (*init)(struct loop *loop); /* 0 or a negative errno */
    void (*term)(struct loop *loop); /* never NULL */
} subsystems[] = {
    {poller_init, poller_term},
    {overflow_init, overflow_term},
    {NULL, io_term},
    {NULL, handles_term},
    {tasks_init, tasks_term},
    {debug_init, debug_term},
    {net_init, net_term},
    {NULL, signals_term},
    {threads_init, threads_term},
    {NULL, timers_term},
};
#define SUBSYSTEMS (sizeof subsystems / sizeof subsystems[0])

/* Run the terms of the first n subsystems, last first; free the loop. */
static void loop_free(struct loop *loop, size_t n)
{
    while (n--)
        subsystems[n].term(loop);
    free(loop);
}

static struct loop *loop_new(const asyncio_run_options_t *opts, unsigned busy_poll_us, int *err)
{
    struct loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        *err = -ENOMEM;
        return NULL;
    }
    queue_init(&loop->ready);
    queue_init(&loop->batch);
    dlist_init(&loop->prepoll);
    coro_init_thread(&loop->main);
    loop->busy_poll_ns = (uint64_t)busy_poll_us * 1000;
    loop->opts = opts;
    for (size_t i = 0; i < SUBSYSTEMS; i++) {
        if (subsystems[i].init && (*err = subsystems[i].init(loop)) < 0) {
            loop_free(loop, i); /* undo the ones done */
            return NULL;
        }
    }
    return loop;
}

/* $ASYNCIO_BUSY_POLL_US: a whole number of microseconds up to the maximum;
 * unset or empty is 0 (off). */
static int busy_poll_env(unsigned *us)
{
    const char *v = getenv("ASYNCIO_BUSY_POLL_US");
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (*v < '0' || *v > '9' || errno || *end || n > ASYNCIO_BUSY_POLL_MAX_US)
        return -EINVAL;
    *us = (unsigned)n;
    return 0;
}

/* What asyncio_run_ex() and asyncio_new_event_loop() refuse in opts (and
 * the environment); 0 with the busy polling budget, or -EINVAL. */
static int check_options(const asyncio_run_options_t *opts, unsigned *busy_poll_us)
{
    if (opts && opts->stack_size &&
        (opts->stack_size < ASYNCIO_STACK_MIN || opts->stack_size > ASYNCIO_STACK_MAX))
        return -EINVAL;
    if (opts && opts->stack_guard > ASYNCIO_STACK_GUARD_MAX)
        return -EINVAL;
    *busy_poll_us = opts ? opts->busy_poll_us : 0;
    if (*busy_poll_us > ASYNCIO_BUSY_POLL_MAX_US)
        return -EINVAL;
    if (!*busy_poll_us && busy_poll_env(busy_poll_us) < 0)
        return -EINVAL;
    if (opts && (isnan(opts->stack_sweep) || opts->stack_sweep > 1e9))
        return -EINVAL;
    if (opts && opts->stack_sweep > 0 && !sweep_available())
        return -ENOTSUP;
    return 0;
}

int asyncio_new_event_loop(asyncio_loop_t **out, const asyncio_run_options_t *opts)
{
    unsigned busy_poll_us;
    if (!out)
        return -EINVAL;
    int rc = check_options(opts, &busy_poll_us);
    if (rc < 0)
        return rc;
    if (loop_tls)
        return -EBUSY;
    struct loop *loop = loop_new(opts, busy_poll_us, &rc);
    if (!loop)
        return rc;
    if ((rc = sweep_start(loop)) < 0) {
        loop_free(loop, SUBSYSTEMS);
        return rc;
    }
    loop->opts = NULL; /* the caller's: read by the inits only */
    loop_tls = loop;
    debug_start(loop);
    *out = asyncio_loop_ref(loop->threads.shared);
    return 0;
}

asyncio_loop_t *asyncio_get_event_loop(void)
{
    return loop_tls ? loop_tls->threads.shared : NULL;
}

asyncio_loop_t *asyncio_get_running_loop(void)
{
    return loop_tls && loop_tls->running ? loop_tls->threads.shared : NULL;
}

int loop_own(asyncio_loop_t *s, struct loop **out, const char *call)
{
    if (!s)
        return -EINVAL;
    bool mine = pthread_equal(s->owner, pthread_self());
    if (!mine && asyncio_loop_is_closed(s) != 1)
        return -EXDEV;
    if (!mine || !s->loop) { /* closed */
        debug_closed_use(s, call);
        return -ESHUTDOWN;
    }
    *out = s->loop;
    return 0;
}

/* The loop behind s, for a call that runs or closes it: loop_own()'s
 * errors, and -EBUSY (running). */
static int own_idle_loop(asyncio_loop_t *s, struct loop **out, const char *call)
{
    int rc = loop_own(s, out, call);
    return rc < 0 ? rc : (*out)->running ? -EBUSY : 0;
}

static void set_running(struct loop *loop, bool on)
{
    loop->running = on;
    atomic_store_explicit(&loop->threads.shared->running, on, memory_order_relaxed);
}

/* run_forever(): iterations until a stop, at least one (a stop made
 * before the run makes it one iteration that does not sleep). */
static void run_until_stopped(struct loop *loop)
{
    set_running(loop, true);
    do
        run_once(loop);
    while (!loop->stopping);
    loop->stopping = false;
    set_running(loop, false);
}

int asyncio_loop_run_forever(asyncio_loop_t *s)
{
    struct loop *loop;
    int rc = own_idle_loop(s, &loop, __func__);
    if (rc < 0)
        return rc;
    run_until_stopped(loop);
    return 0;
}

/* The main task's done callback stops the loop, as asyncio's
 * run_until_complete() does: in the iteration after the task finished. */
static void stop_when_done(asyncio_future_t *f, void *arg)
{
    (void)f;
    ((struct loop *)arg)->stopping = true;
}

int asyncio_loop_run_until_complete(asyncio_loop_t *s, asyncio_fn fn, void *arg, void **result)
{
    struct loop *loop;
    int rc = own_idle_loop(s, &loop, __func__);
    if (rc < 0)
        return rc;
    if (!fn)
        return -EINVAL;
    asyncio_task_t *t;
    if ((rc = asyncio_create_task(&t, fn, arg, "main")) < 0)
        return rc;
    if ((rc = asyncio_future_add_done_callback(t, stop_when_done, loop)) < 0) {
        asyncio_task_cancel(t); /* it never runs: it finishes cancelled */
        asyncio_task_release(t);
        return rc;
    }
    run_until_stopped(loop);
    if (future_is_done(t)) {
        rc = future_outcome(t, result);
    } else {
        asyncio_future_remove_done_callback(t, stop_when_done, loop);
        rc = -EINTR; /* stopped before it finished: it goes on detached */
    }
    asyncio_task_release(t);
    return rc;
}

/* A stop from another thread, run by the loop as a posted callback. */
static void stop_posted(void *arg)
{
    (void)arg;
    loop_tls->stopping = true;
}

int asyncio_loop_stop(asyncio_loop_t *s)
{
    if (!s)
        return -EINVAL;
    if (pthread_equal(s->owner, pthread_self())) {
        if (!s->loop) {
            debug_closed_use(s, __func__);
            return -ESHUTDOWN;
        }
        s->loop->stopping = true;
        return 0;
    }
    int rc = loop_post(s, stop_posted, NULL, NULL);
    if (rc == -ESHUTDOWN)
        debug_closed_use(s, __func__);
    return rc;
}

int asyncio_loop_is_running(asyncio_loop_t *s)
{
    if (!s)
        return -EINVAL;
    return atomic_load_explicit(&s->running, memory_order_relaxed);
}

int asyncio_loop_close(asyncio_loop_t *s)
{
    struct loop *loop;
    /* A second close is no misuse (asyncio's close() may be called again):
     * not reported. */
    int rc = own_idle_loop(s, &loop, NULL);
    if (rc < 0)
        return rc;
    /* Wind down: cancel whatever is left until it has all finished (a task
     * that swallows one cancellation gets another at its next wait). */
    set_running(loop, true);
    loop->closing = true;
    loop->stopping = false; /* a stop not consumed would make it spin */
    while (loop->tasks.live) {
        tasks_cancel_all(loop);
        run_once(loop);
    }
    /* The callbacks their ends left ready, once; no polling now. */
    run_batch(loop);
    set_running(loop, false);
    if (loop_instr(loop) & INSTR_DEBUG)
        atomic_store(&s->debug_closed, true); /* before the inbox closes (loop_free()) */
    s->loop = NULL;
    loop_tls = NULL;
    /* What the terms release is no misuse for debug mode's check. */
    loop_set_instr(loop, loop_instr(loop) | INSTR_CLOSED);
    loop_free(loop, SUBSYSTEMS);
    return 0;
}

int asyncio_loop_backend_fd(asyncio_loop_t *s)
{
    struct loop *loop;
    int rc = own_idle_loop(s, &loop, __func__);
    if (rc == -EBUSY)
        rc = 0, loop = s->loop; /* a task or callback may ask too */
    if (rc < 0)
        return rc;
    return loop->poller.ops->backend_fd ? loop->poller.ops->backend_fd(&loop->poller) : -ENOTSUP;
}

int asyncio_loop_run_nowait(asyncio_loop_t *s, int64_t *next_ns)
{
    struct loop *loop;
    int rc = own_idle_loop(s, &loop, __func__);
    if (rc < 0)
        return rc;
    set_running(loop, true);
    loop->nowait = true;
    run_once(loop);
    /* What its tasks queued goes out now, as before any sleep of the loop's
     * own: the embedding may wait until next_ns before it calls again. */
    run_prepoll(loop);
    loop->nowait = false;
    set_running(loop, false);
    bool stopped = loop->stopping;
    loop->stopping = false;
    if (next_ns) {
        uint64_t t = loop_timeout(loop);
        *next_ns = t == UINT64_MAX ? -1 : t > INT64_MAX ? INT64_MAX : (int64_t)t;
    }
    return stopped;
}

int asyncio_run(asyncio_fn main, void *arg, void **result)
{
    return asyncio_run_ex(main, arg, result, NULL);
}

int asyncio_run_ex(asyncio_fn main, void *arg, void **result, const asyncio_run_options_t *opts)
{
    if (!main)
        return -EINVAL;
    asyncio_loop_t *s;
    int rc = asyncio_new_event_loop(&s, opts);
    if (rc < 0)
        return rc;
    rc = asyncio_loop_run_until_complete(s, main, arg, result);
    asyncio_loop_close(s);
    asyncio_loop_unref(s);
    return rc;
}

const char *asyncio_loop_backend(void)
{
    return loop_tls ? loop_tls->poller.ops->name : NULL;
}

double asyncio_loop_time(void)
{
    return (double)clock_now_ns() / 1e9;
}

uint64_t asyncio_loop_time_ns(void)
{
    return clock_now_ns();
}
