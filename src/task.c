/* Tasks: coroutines with a future, their contexts, the loop's tasks
 * subsystem (loop->tasks, its init and term), parking and waking,
 * cancellation, sleep, the debugging views, and a test build's sealing of
 * parked stacks. */
#include "waitq.h"
#include "clock.h"
#include "sanitizers.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void task_finish(struct loop *loop, struct task *t, int status)
{
    if (t->must_cancel && status >= 0)
        status = -ECANCELED; /* an undelivered cancellation, as in asyncio */
    t->must_cancel = false;
    t->state = TASK_DONE;
    loop->tasks.live--;
    future_complete(&t->fut, status, status >= 0 ? t->fut.result : NULL);
    if (t->group) {
        t->fut.retrieved = true; /* the group reports its children's failures */
        taskgroup_child_done(t, status);
    }
}

/* A task returned inside a task group: its children point at the group
 * on the stack the task just left, and would write to it when they end. A
 * bug in the program that no return value can report: stop, and say so. */
static void task_left_groups_open(struct task *t)
{
    fprintf(stderr,
            "asyncio: task \"%s\" returned without leaving %u task group%s"
            " (call asyncio_taskgroup_exit() first)\n",
            asyncio_task_name(&t->fut), t->open_groups, t->open_groups == 1 ? "" : "s");
    SAN_COVERAGE_DUMP();
    abort(); /* GCOVR_EXCL_LINE: the counters were written just above; abort() ends the process */
}

#ifdef ASYNCIO_SEAL_PARKED_STACKS
#include <sys/mman.h>
/* A test build's check of the rule in task.h on parked stacks: from the
 * moment a task has switched away to park until just before it runs again,
 * its stack is inaccessible (tests/test_parked.c). The parking task cannot
 * seal its own stack, which the switch still writes: the next to run does. */
static void stack_access(struct task *t, int prot)
{
    if (mprotect(t->ctx->coro.stack.base, t->ctx->coro.stack.size, prot) != 0)
        abort();
}
#define unseal(t) ((t)->state == TASK_WAITING ? stack_access(t, PROT_READ | PROT_WRITE) : (void)0)
#define SEAL_LATER(loop, t) ((loop)->parked = (t))
#define seal_parked(loop) \
    ((loop)->parked ? stack_access((loop)->parked, PROT_NONE), (void)((loop)->parked = NULL) : (void)0)
#else
#define unseal(t) ((void)0)
#define seal_parked(loop) ((void)0)
#define SEAL_LATER(loop, t) ((void)0)
#endif

/* Every context runs this forever: one task after another. */
static void ctx_main(void *arg)
{
    struct taskctx *c = arg;
    for (;;) {
        seal_parked(c->loop);
        struct task *t = c->task;
        errno = 0;
        int status = t->fn(t->arg, &t->fut.result);
        if (loop_instr(c->loop))
            task_info_step_end(c->loop, t);
        if (t->open_groups)
            task_left_groups_open(t);
        task_finish(c->loop, t, status);
        coro_switch(&c->coro, &c->loop->main);
    }
}

/* The task of a link on loop->tasks. */
static struct task *task_at(struct dlist *n)
{
    return container_of(container_of(n, struct asyncio_future, all), struct task, fut);
}

static struct taskctx *ctx_get(struct loop *loop, size_t stack_size, int *err)
{
    if (stack_size == loop->tasks.stacks.default_size && loop->tasks.ctx_pool) {
        struct taskctx *c = loop->tasks.ctx_pool;
        loop->tasks.ctx_pool = c->next;
        loop->tasks.ctx_pool_len--;
        return c;
    }
    struct taskctx *c = malloc(sizeof *c);
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->loop = loop;
    c->saved = NULL;
    c->saved_len = 0;
    c->prefaulted = false;
    struct coro *from = loop->current ? &loop->current->ctx->coro : &loop->main;
    int rc = coro_create(&c->coro, from, &loop->tasks.stacks, &loop->tasks.coro_tmpl, stack_size, ctx_main, c);
    if (rc < 0) {
        free(c);
        *err = rc;
        return NULL;
    }
    return c;
}

/* Only from the loop's own context: a context never frees its own stack.
 * Unmapping costs microseconds, which a burst of finishing tasks must not
 * pay: the pool takes every default-sized context, and tasks_trim_pool()
 * unmaps the surplus when the loop has nothing else to do. */
static void ctx_put(struct loop *loop, struct taskctx *c)
{
    if (c->coro.stack.size == loop->tasks.stacks.default_size) {
        c->next = loop->tasks.ctx_pool;
        loop->tasks.ctx_pool = c;
        loop->tasks.ctx_pool_len++;
        return;
    }
    coro_destroy(&c->coro, &loop->tasks.stacks);
    free(c);
}

bool tasks_trim_pool(struct loop *loop, uint64_t until_ns)
{
    if (loop->tasks.ctx_pool_len <= CTX_POOL_HOT)
        return false; /* GCOVR_EXCL_LINE: its one caller checks this first */
    /* The pool is last in, first out: its head holds the stacks used last,
     * likeliest in the cache. Keep those and unmap from the cold end. */
    struct taskctx *keep = loop->tasks.ctx_pool;
    for (size_t i = 1; i < CTX_POOL_HOT; i++)
        keep = keep->next;
    /* Check the clock every few unmaps only; their pages go back in one
     * system call. */
    while (keep->next) {
        stack_free_batch_begin(&loop->tasks.stacks);
        for (int i = 0; i < 16 && keep->next; i++) {
            struct taskctx *c = keep->next;
            keep->next = c->next;
            loop->tasks.ctx_pool_len--;
            coro_destroy(&c->coro, &loop->tasks.stacks);
            free(c);
        }
        stack_free_batch_end(&loop->tasks.stacks);
        if (clock_now_ns() >= until_ns)
            break;
    }
    return loop->tasks.ctx_pool_len > CTX_POOL_HOT;
}

int tasks_init(struct loop *loop)
{
    const asyncio_run_options_t *opts = loop->opts;
    struct loop_tasks *ts = &loop->tasks;
    int rc = sweep_init(loop);
    if (rc < 0)
        return rc;
    dlist_init(&ts->futures);
    dlist_init(&ts->all);
    size_t size = opts && opts->stack_size ? opts->stack_size : ASYNCIO_STACK_DEFAULT;
    stack_arena_init(&ts->stacks, size * SAN_STACK_SCALE,
                     opts && opts->stack_guard ? opts->stack_guard : ASYNCIO_STACK_GUARD_DEFAULT);
    coro_template_init(&ts->coro_tmpl);
    return fanin_make_spare(loop);
}

/* The futures and tasks left, the structs and contexts they were recycled
 * into, then the stacks, which must all be free by then. */
void tasks_term(struct loop *loop)
{
    sweep_term(loop);
    while (!dlist_empty(&loop->tasks.all)) {
        struct task *t = task_at(loop->tasks.all.next);
        if (t->ctx) {
            /* Created but never run (only possible while closing). */
            coro_destroy(&t->ctx->coro, &loop->tasks.stacks);
            free(t->ctx);
        }
        future_free(&t->fut);
    }
    futures_free_all(loop);
    free(loop->tasks.fanin_spare);
    while (loop->tasks.free_structs) {
        struct task *t = loop->tasks.free_structs;
        loop->tasks.free_structs = t->next_free;
        free(t);
    }
    stack_free_batch_begin(&loop->tasks.stacks);
    while (loop->tasks.ctx_pool) {
        struct taskctx *c = loop->tasks.ctx_pool;
        loop->tasks.ctx_pool = c->next;
        coro_destroy(&c->coro, &loop->tasks.stacks);
        free(c);
    }
    stack_free_batch_end(&loop->tasks.stacks);
    loop->tasks.ctx_pool_len = 0;
    stack_arena_destroy(&loop->tasks.stacks);
}

static void task_step(struct loop *loop, struct runnable *r);

/* With many tasks, the next task's struct and the registers saved on its
 * stack are rarely in the cache: start loading the stack one task ahead and
 * the struct two ahead (a prefetch never faults, so an address computed for
 * what may not be a task is harmless). */
static inline void prefetch_next(struct loop *loop)
{
    struct qnode *n = loop->batch.head;
    if (!n)
        return;
#ifdef CORO_ASM
    struct runnable *r = container_of(n, struct runnable, q);
    if (r->run == task_step) {
        struct task *t = container_of(r, struct task, run);
        if (t->ctx)
            __builtin_prefetch(t->ctx->coro.sp);
    }
#endif
    if (n->next) {
        struct task *t2 = container_of(container_of(n->next, struct runnable, q), struct task, run);
        __builtin_prefetch(&t2->ctx);
        __builtin_prefetch(&t2->state);
    }
}

/* The loop's side of running a task: switch to it until it parks or ends. */
static void task_step(struct loop *loop, struct runnable *r)
{
    struct task *t = container_of(r, struct task, run);
    t->queued = false;
    if (t->state == TASK_CREATED && t->must_cancel) {
        /* Cancelled before it ever ran: its function never starts. */
        task_finish(loop, t, -ECANCELED);
    } else {
        unseal(t);
        t->state = TASK_RUNNING;
        loop->current = t;
        prefetch_next(loop);
        coro_switch(&loop->main, &t->ctx->coro);
        seal_parked(loop);
        /* Back from t, or from a task that t (and so on) handed over to. */
        t = loop->current;
        loop->current = NULL;
        if (t->state != TASK_DONE)
            return;
    }
    ctx_put(loop, t->ctx);
    t->ctx = NULL;
    asyncio_future_release(&t->fut); /* the loop's reference */
}

/* task_step() while debug mode or the counters are on: the step is
 * measured from here. Such a task is never handed over to straight from a
 * parking one (next_context() takes task_step()'s only), so that the hot
 * paths carry no test for it: a not-taken test there cost bench_sync's
 * 100,000-task group 15-20%. */
static void task_step_counted(struct loop *loop, struct runnable *r)
{
    struct task *t = container_of(r, struct task, run);
    if (!(t->state == TASK_CREATED && t->must_cancel))
        task_info_step_begin(t);
    task_step(loop, r);
}

/* task_step() for a task the sweep has visited once while it was parked
 * (sweep.c): it ran again, so the next visit starts over. */
static void task_step_marked(struct loop *loop, struct runnable *r)
{
    r->run = task_step;
    task_step(loop, r);
}

/* task_step() for a task whose stack the sweep took: put it back first. */
static void task_step_swept(struct loop *loop, struct runnable *r)
{
    sweep_prefault(loop, container_of(r, struct task, run));
    if (sweep_restore(loop, container_of(r, struct task, run)) == 0)
        task_step(loop, r);
    else
        loop_ready(loop, r); /* no room for its guard now: the next iteration */
}

static bool is_hop(const struct runnable *r);

bool task_runnable(const struct runnable *r)
{
    return r->run == task_step || r->run == task_step_counted || r->run == task_step_marked ||
           r->run == task_step_swept || is_hop(r);
}

enum sweep_mark task_sweep_mark(const struct task *t)
{
    void (*run)(struct loop *, struct runnable *) = t->run.run;
    return run == task_step          ? SWEEP_PLAIN
           : run == task_step_marked ? SWEEP_MARKED
           : run == task_step_swept  ? SWEEP_SWEPT
                                     : SWEEP_OTHER;
}

void task_set_sweep_mark(struct task *t, enum sweep_mark m)
{
    t->run.run = m == SWEEP_MARKED ? task_step_marked : m == SWEEP_SWEPT ? task_step_swept : task_step;
}

void tasks_set_counted(struct loop *loop, bool on)
{
    for (struct dlist *d = loop->tasks.all.next; d != &loop->tasks.all; d = d->next) {
        struct task *t = task_at(d);
        /* The counted step does not restore: a task that cannot get its
         * stack back now stays swept, and is counted from its next park. */
        if (t->run.run != task_step_swept || sweep_restore(loop, t) == 0)
            t->run.run = on ? task_step_counted : task_step;
    }
}

/* A timer wakes its task one step later, as asyncio's does: there the
 * timer's handle completes a future (sleep) or cancels the task (a
 * timeout), and the task's step is scheduled from that with call_soon, so
 * it runs in the next iteration, after every callback that was due with
 * it. The task's own runnable makes the step: queued at the timer's place
 * with a hop function, which puts back the step function and queues it
 * again. One hop for each step function, so that nothing is stored. */
static void hop(struct loop *loop, struct runnable *r, void (*step)(struct loop *, struct runnable *))
{
    r->run = step;
    loop_ready(loop, r);
}
static void task_hop(struct loop *loop, struct runnable *r) { hop(loop, r, task_step); }
static void task_hop_counted(struct loop *loop, struct runnable *r) { hop(loop, r, task_step_counted); }
static void task_hop_marked(struct loop *loop, struct runnable *r) { hop(loop, r, task_step_marked); }
static void task_hop_swept(struct loop *loop, struct runnable *r) { hop(loop, r, task_step_swept); }

static bool is_hop(const struct runnable *r)
{
    return r->run == task_hop || r->run == task_hop_counted || r->run == task_hop_marked ||
           r->run == task_hop_swept;
}

/* The hop function of t's step function. */
static void set_hop(struct task *t)
{
    void (*run)(struct loop *, struct runnable *) = t->run.run;
    t->run.run = run == task_step_counted ? task_hop_counted
               : run == task_step_marked  ? task_hop_marked
               : run == task_step_swept   ? task_hop_swept
                                          : task_hop;
}

void task_wake_hop(struct task *t, int status)
{
    if (t->state != TASK_WAITING || t->queued)
        return; /* woken otherwise already: the first wake wins */
    task_wake(t, status);
    set_hop(t);
}

/* Park t, the running task, at the back of the ready queue: it resumes in
 * the next batch (asyncio's sleep(0)), or the one after with hop. */
static int park_at_back(struct task *t, bool with_hop)
{
    t->state = TASK_WAITING;
    t->wake_status = 0;
    t->queued = true;
    if (with_hop)
        set_hop(t);
    loop_ready(t->fut.loop, &t->run);
    return task_park(t);
}

int task_yield_hop(struct task *t)
{
    return park_at_back(t, true);
}

static void task_timer_fire(struct loop *loop, struct ltimer *lt)
{
    struct task *t = container_of(lt, struct task, timer);
    (void)loop;
    task_wake_hop(t, t->timer_status);
}

void task_struct_recycle(struct task *t)
{
    struct loop_tasks *ts = &t->fut.loop->tasks;
    if (t->name && t->name != t->name_buf)
        free((char *)t->name);
    t->name = NULL;
    if (t->info) {
        free(t->info);
        t->info = NULL;
    }
    t->next_free = ts->free_structs;
    ts->free_structs = t;
}

/* asyncio_create_task_ex() for a caller at origin (debug mode's report). */
static int task_create(asyncio_task_t **task, asyncio_fn fn, void *arg,
                       const asyncio_task_options_t *opts, void *origin)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    size_t stack_size = loop->tasks.stacks.default_size;
    const char *name = opts ? opts->name : NULL;
    if (opts && opts->stack_size) {
        if (opts->stack_size < ASYNCIO_STACK_MIN || opts->stack_size > ASYNCIO_STACK_MAX)
            return -EINVAL;
        stack_size = opts->stack_size * SAN_STACK_SCALE;
    }
    bool no_sweep = opts && opts->stack_sweep < 0;
    struct task *t = loop->tasks.free_structs;
    if (t)
        loop->tasks.free_structs = t->next_free;
    else if (!(t = malloc(sizeof *t)))
        return -ENOMEM;
    t->fut.loop = loop; /* for task_struct_recycle() until future_init() */
    t->name = NULL;
    t->info = NULL;
    if (name) {
        size_t len = strlen(name) + 1;
        char *copy = len <= sizeof t->name_buf ? t->name_buf : malloc(len);
        if (!copy) {
            task_struct_recycle(t);
            return -ENOMEM;
        }
        t->name = memcpy(copy, name, len);
    }
    int rc = 0;
    t->ctx = ctx_get(loop, stack_size, &rc);
    if (!t->ctx) {
        task_struct_recycle(t);
        return rc;
    }
    t->ctx->task = t;
    future_init(&t->fut, loop, true);
    t->run.run = loop_instr(loop) ? task_step_counted : task_step;
    timer_init(&t->timer.t);
    t->timer.fire = task_timer_fire;
    t->timer_status = 0;
    t->scopes = NULL;
    t->forwarding = false;
    t->cancel_forwarded = false;
    t->awaited = NULL;
    t->timer_scope = NULL;
    t->own_deadline = UINT64_MAX;
    t->own_status = 0;
    t->timed_wait = false;
    t->no_sweep = no_sweep;
    t->fn = fn;
    t->arg = arg;
    t->state = TASK_CREATED;
    t->must_cancel = false;
    t->handoff = false;
    t->wake_status = 0;
    t->saved_errno = 0;
    t->num_cancels = 0;
    t->io_streak = 0;
    t->group = NULL;
    t->sibling.next = NULL;
    t->open_groups = 0;
    t->waiting_on = NULL;
    t->serial = ++loop->tasks.serial;
    if (loop_instr(loop))
        task_info_created(loop, t, origin);
    t->queued = true;
    loop_ready(loop, &t->run);
    loop->tasks.live++;
    if (task) {
        t->fut.refs++;
        *task = &t->fut;
    }
    return 0;
}

int asyncio_create_task_ex(asyncio_task_t **task, asyncio_fn fn, void *arg,
                           const asyncio_task_options_t *opts)
{
    return task_create(task, fn, arg, opts, CALLER_ADDRESS());
}

int asyncio_create_task(asyncio_task_t **task, asyncio_fn fn, void *arg, const char *name)
{
    asyncio_task_options_t opts = {.name = name, .stack_size = 0};
    return task_create(task, fn, arg, &opts, CALLER_ADDRESS());
}

void asyncio_task_release(asyncio_task_t *task)
{
    asyncio_future_release(task);
}

int asyncio_task_cancel(asyncio_task_t *task)
{
    struct task *t = task_of(task);
    if (!t)
        return -EINVAL;
    int rc = loop_check_owner(t->fut.loop, __func__);
    if (rc < 0)
        return rc;
    if (t->state == TASK_DONE)
        return 0;
    t->num_cancels++;
    if (t->state == TASK_WAITING && !t->handoff) {
        if (!t->queued) {
            /* Awaiting f: cancel f now, and resume when it is done, with
             * its outcome (asyncio: fut_waiter.cancel(), True if it took). */
            struct asyncio_future *f = t->awaited;
            if (f && !t->forwarding) {
                /* Marked meanwhile: tasks awaiting each other in a cycle
                 * come back here, and are woken instead of recursing. */
                t->forwarding = true;
                int fc = asyncio_future_cancel(f);
                t->forwarding = false;
                if (fc == 1) {
                    t->cancel_forwarded = true;
                    return 1;
                }
            }
            task_wake(t, -ECANCELED);
            return 1;
        }
        /* Woken, not resumed: see wake_status in task.h. Two
         * cancellations on their way merge into one. */
        t->wake_status = -ECANCELED;
        return 1;
    }
    t->must_cancel = true;
    return 1;
}

void tasks_cancel_all(struct loop *loop)
{
    for (struct dlist *n = loop->tasks.all.next; n != &loop->tasks.all; n = n->next) {
        struct task *t = task_at(n);
        if (t->state != TASK_DONE && !t->must_cancel && !t->cancel_forwarded &&
            !(t->queued && t->wake_status == -ECANCELED))
            asyncio_task_cancel(&t->fut);
    }
}

asyncio_task_t *asyncio_current_task(void)
{
    struct loop *loop = loop_current();
    return loop && loop->current ? &loop->current->fut : NULL;
}

static const char *task_name(struct task *t)
{
    if (t->name)
        return t->name;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "Task-%" PRIu64, t->serial);
    /* name_buf holds serials up to 18 digits; past that, the heap. */
    char *name = (size_t)n < sizeof t->name_buf ? t->name_buf : malloc((size_t)n + 1);
    if (!name)
        return "Task"; /* GCOVR_EXCL_LINE: a serial past 10^18, and no memory */
    return t->name = memcpy(name, buf, (size_t)n + 1);
}

const char *asyncio_task_name(const asyncio_task_t *task)
{
    struct task *t = task_of((asyncio_task_t *)task);
    return t ? task_name(t) : NULL;
}

size_t asyncio_task_count(void)
{
    struct loop *loop = loop_current();
    return loop ? loop->tasks.live : 0;
}

/* Waiting. */

int task_begin_wait_on(struct task **out, const char *what)
{
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    *out = loop->current;
    return task_ready_to_wait(loop->current, what);
}

int task_scopes_check(struct task *t)
{
    /* Past a scope's deadline, every wait in it fails at once. */
    uint64_t now = clock_now_ns();
    bool late = false;
    for (asyncio_timeout_t *s = t->scopes; s; s = s->outer) {
        if (s->deadline_ns <= now) {
            s->expired = 1;
            late = true;
        }
    }
    return late ? -ETIMEDOUT : 0;
}

/* Where a parking task switches to. Straight to the next task of the
 * batch when it simply resumes (or starts), skipping the loop's own context;
 * when the batch is done, the parking task begins the next iteration itself
 * if that needs no blocking, and goes on the same way. The loop's context
 * is needed only for callbacks, finished tasks and blocking polls. */
static struct coro *next_context(struct loop *loop)
{
    struct runnable *r;
    for (;;) {
        if (!loop->batch.head && !loop_next_batch_now(loop))
            return &loop->main;
        r = container_of(loop->batch.head, struct runnable, q);
        if (r->run == task_step)
            break; /* the common case first: one test on the switch path */
        if (!is_hop(r))
            return &loop->main;
        /* A hop only queues its task again: no need to go back to the
         * loop's context for it. */
        queue_pop(&loop->batch);
        r->run(loop, r);
    }
    struct task *u = container_of(r, struct task, run);
    if (u->state == TASK_CREATED && u->must_cancel)
        return &loop->main;
    queue_pop(&loop->batch);
    u->queued = false;
    unseal(u);
    u->state = TASK_RUNNING;
    loop->current = u;
    prefetch_next(loop);
    return &u->ctx->coro;
}

int task_park(struct task *t)
{
    if (loop_instr(t->fut.loop))
        task_info_step_end(t->fut.loop, t);
    t->state = TASK_WAITING;
    t->handoff = false;
    t->saved_errno = errno;
    struct coro *to = next_context(t->fut.loop);
    if (to != &t->ctx->coro) { /* else it is this task's own turn again */
        SEAL_LATER(t->fut.loop, t);
        coro_switch(&t->ctx->coro, to);
        seal_parked(t->fut.loop);
    }
    errno = t->saved_errno;
    return t->wake_status;
}

void task_wake_handoff(struct task *t, int status)
{
    task_wake(t, status);
    t->handoff = true;
}

int task_rearm(struct task *t)
{
    uint64_t when = t->own_deadline;
    int status = t->own_status;
    t->timer_scope = NULL;
    for (asyncio_timeout_t *s = t->scopes; s; s = s->outer) {
        if (s->deadline_ns < when) {
            when = s->deadline_ns;
            status = -ETIMEDOUT;
            t->timer_scope = s;
        }
    }
    loop_timer_cancel(t->fut.loop, &t->timer);
    t->timer_status = status;
    if (when == UINT64_MAX)
        return 0;
    t->timer.t.when = when;
    return loop_timer_add(t->fut.loop, &t->timer);
}

/* The scopes that have timed out: the one whose deadline woke the task and
 * any other already past. */
static void scopes_expire(struct task *t, uint64_t now)
{
    for (asyncio_timeout_t *s = t->scopes; s; s = s->outer)
        if (s == t->timer_scope || s->deadline_ns <= now)
            s->expired = 1;
}

int task_park_timed(struct task *t, uint64_t deadline, int status)
{
    t->own_deadline = deadline;
    t->own_status = status;
    int rc = task_rearm(t);
    if (rc == 0) {
        t->timed_wait = true;
        rc = task_park(t);
        t->timed_wait = false;
        if (rc == -ETIMEDOUT && t->timer_status == -ETIMEDOUT)
            scopes_expire(t, clock_now_ns());
    }
    loop_timer_cancel(t->fut.loop, &t->timer);
    t->own_deadline = UINT64_MAX;
    return rc;
}

static void task_future_done(struct waiter *w, struct asyncio_future *f)
{
    (void)f;
    task_wake(container_of(w, struct task, wait.fut), 0);
}

static void task_future_done_hop(struct waiter *w, struct asyncio_future *f)
{
    (void)f;
    task_wake_hop(container_of(w, struct task, wait.fut), 0);
}

struct task *task_waiting_through(struct waiter *w)
{
    if (w->notify == task_future_done || w->notify == task_future_done_hop)
        return container_of(w, struct task, wait.fut);
    return fanin_waiter_task(w);
}

void task_watch_future(struct task *t, struct asyncio_future *f, bool hop)
{
    t->wait.fut.notify = hop ? task_future_done_hop : task_future_done;
    future_add_waiter(f, &t->wait.fut);
}

int task_check_await(const struct asyncio_future *f)
{
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    return f == &loop->current->fut ? -EDEADLK : 0;
}

bool task_wait_done_uncancellable(struct task *t, struct asyncio_future *f)
{
    bool cancelled = false;
    while (!future_is_done(f)) {
        task_watch_future(t, f, false);
        int rc = task_park(t);
        future_remove_waiter(&t->wait.fut);
        if (rc == -ECANCELED) {
            /* As in asyncio, where cancelling a task cancels what it
             * awaits for as long as it awaits it: f gets this request too. */
            cancelled = true;
            if (!future_is_done(f))
                asyncio_future_cancel(f);
        }
    }
    return cancelled;
}

int asyncio_sleep(double seconds)
{
    if (isnan(seconds))
        return -EINVAL;
    struct task *t;
    int rc = task_begin_wait_on(&t, "sleep");
    if (rc < 0)
        return rc;
    if (seconds <= 0)
        return park_at_back(t, false); /* a plain yield */
    return task_park_until(t, clock_deadline(clock_now_ns(), clock_seconds_to_ns(seconds)), 0);
}

/* Debugging: what the tasks are doing. */

size_t asyncio_all_tasks(asyncio_task_t **out, size_t cap)
{
    struct loop *loop = loop_current();
    if (!loop)
        return 0;
    size_t n = 0;
    for (struct dlist *d = loop->tasks.all.next; d != &loop->tasks.all; d = d->next) {
        struct task *t = task_at(d);
        if (t->state == TASK_DONE)
            continue;
        if (n < cap && out)
            out[n] = &t->fut;
        n++;
    }
    return n;
}

const char *asyncio_task_state(const asyncio_task_t *task)
{
    const struct task *t = task_of((asyncio_task_t *)task);
    if (!t)
        return NULL;
    switch (t->state) {
    case TASK_CREATED:
        return "created";
    case TASK_RUNNING:
        return "running";
    case TASK_WAITING:
        return t->queued ? "ready" : "waiting";
    default:
        return "done";
    }
}

const char *asyncio_task_waiting_on(const asyncio_task_t *task)
{
    const struct task *t = task_of((asyncio_task_t *)task);
    if (!t || t->state != TASK_WAITING || t->queued)
        return NULL;
    return t->waiting_on ? t->waiting_on : "something";
}

int asyncio_print_tasks(FILE *out)
{
    if (!out)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    uint64_t now = clock_now_ns();
    int n = 0;
    for (struct dlist *d = loop->tasks.all.next; d != &loop->tasks.all; d = d->next) {
        struct task *t = task_at(d);
        if (t->state == TASK_DONE)
            continue;
        fprintf(out, "task \"%s\": %s", task_name(t), asyncio_task_state(&t->fut));
        const char *what = asyncio_task_waiting_on(&t->fut);
        if (what)
            fprintf(out, " on %s", what);
        if (timer_queued(&t->timer.t))
            fprintf(out, ", timer in %.3f s",
                    t->timer.t.when > now ? (double)(t->timer.t.when - now) / 1e9 : 0.0);
        if (t->must_cancel)
            fprintf(out, ", cancellation pending");
        fputc('\n', out);
        n++;
    }
    return n;
}
