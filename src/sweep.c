/* The stack sweep (asyncio_run_options_t::stack_sweep): a task parked for
 * longer than the threshold has the live part of its stack, from its saved
 * stack pointer to the top (a few hundred bytes for a task parked in a
 * read or a sleep), copied to a heap block of that size, and the stack's
 * pages given back to the kernel; the bytes are copied back just before
 * the task runs again, at the same addresses.
 *
 * Finding the idle tasks costs the busy ones nothing. The sweep walks the
 * loop's tasks in passes, one every threshold, SWEEP_BATCH tasks per
 * iteration of the loop, from the loop's own context (a timer queues it:
 * never from a task's stack). A parked task it finds running through the
 * plain step function is switched to the marked one (task.c); a task that
 * runs meanwhile goes back to the plain one as it runs. A task still
 * marked at the next visit has not run for about a threshold: it is swept,
 * and runs through the step that restores its stack. The hot paths test
 * nothing: next_context() hands over straight only to plain tasks, so a
 * marked or swept one starts through the loop's context.
 *
 * What must stay where it is (task.h): the library keeps nothing that
 * another context reaches on a parked stack, but a task inside a timeout
 * scope (its scopes are on its stack, and asyncio_timeout_reschedule()
 * from another task reads them) or owning an open task group (other tasks
 * pass its asyncio_taskgroup_t to asyncio_taskgroup_create_task()) is not
 * swept, nor one that waits for a thread (its function's argument is
 * often on the task's stack) or for other tasks (their arguments often
 * are): only waits on sleeps, file descriptors, streams and sync objects
 * qualify. Objects the program itself shares from a task's stack are the
 * program's contract (loop.h).
 *
 * Where a stack's contents cannot be reached from here (the portable
 * _setjmp switch keeps its stack pointer mangled in a jmp_buf), under
 * ThreadSanitizer and under Valgrind, the sweep is not available. */
#include "task.h"
#include "clock.h"
#include "sanitizers.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
/* process_madvise() on the calling process without a pidfd (Linux 6.14). */
#if defined(__linux__) && !defined(PIDFD_SELF_THREAD)
#define PIDFD_SELF_THREAD (-10000)
#endif

/* Nor in the test build that seals parked stacks (task.c): the sweep
 * reads them. */
#if defined(CORO_ASM) && !defined(ASYNCIO_TSAN) && !defined(ASYNCIO_SEAL_PARKED_STACKS)
#define SWEEP_SUPPORTED 1
#endif

/* Tasks visited per iteration of the loop: about 20 us of work in all
 * (most tasks are only looked at), so that a pass over a million tasks
 * holds up no wake-up by more than that. */
#define SWEEP_BATCH 1024

/* The threshold $ASYNCIO_STACK_SWEEP gives (seconds, > 0), 0 when unset,
 * empty or "0", or -EINVAL. */
static int sweep_env(uint64_t *ns)
{
    *ns = 0;
    const char *v = getenv("ASYNCIO_STACK_SWEEP");
    if (!v || !*v)
        return 0;
    char *end;
    double s = strtod(v, &end);
    if (*end || !(s >= 0) || s > 1e9)
        return -EINVAL;
    *ns = s > 0 ? clock_seconds_to_ns(s) : 0;
    return 0;
}

bool sweep_available(void)
{
#ifdef SWEEP_SUPPORTED
#ifdef ASYNCIO_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return false;
#endif
    return true;
#else
    return false;
#endif
}

static void sweep_fire(struct loop *loop, struct ltimer *lt);
static void sweep_run(struct loop *loop, struct runnable *r);

/* Arm the timer for the next part of the sweep, due at when. */
static void sweep_schedule(struct loop *loop, uint64_t when)
{
    struct loop_sweep *sw = &loop->tasks.sweep;
    loop_timer_cancel(loop, &sw->timer);
    sw->timer.t.when = when;
    if (loop_timer_add(loop, &sw->timer) < 0)
        sw->timer.t.when = 0; /* no room in the heap: no sweep until set again */
}

static int sweep_set(struct loop *loop, uint64_t threshold_ns)
{
    struct loop_sweep *sw = &loop->tasks.sweep;
    if (threshold_ns && !sweep_available())
        return -ENOTSUP;
    sw->threshold_ns = threshold_ns;
    if (!threshold_ns) {
        /* Swept tasks get their stacks back as they run. */
        loop_timer_cancel(loop, &sw->timer);
        sw->cursor = NULL;
        return 0;
    }
    sweep_schedule(loop, clock_deadline(clock_now_ns(), threshold_ns));
    return timer_queued(&sw->timer.t) ? 0 : -ENOMEM;
}

int sweep_init(struct loop *loop)
{
    struct loop_sweep *sw = &loop->tasks.sweep;
    memset(sw, 0, sizeof *sw);
    timer_init(&sw->timer.t);
    sw->timer.fire = sweep_fire;
    sw->run.run = sweep_run;
    const asyncio_run_options_t *opts = loop->opts;
    double opt = opts ? opts->stack_sweep : 0;
    uint64_t ns = 0;
    if (opt > 0)
        ns = clock_seconds_to_ns(opt);
    else if (opt == 0 && sweep_env(&ns) < 0)
        return -EINVAL;
    /* Where the sweep is not available the environment asks in vain; an
     * option is refused by asyncio_new_event_loop()'s check. The timer is
     * armed by sweep_start(), once every subsystem is up: a timer added
     * here would leak the heap if a later init failed (the timers' term
     * runs last). */
    if (ns && sweep_available())
        sw->threshold_ns = ns;
    return 0;
}

int sweep_start(struct loop *loop)
{
    struct loop_sweep *sw = &loop->tasks.sweep;
    return sw->threshold_ns ? sweep_set(loop, sw->threshold_ns) : 0;
}

void sweep_term(struct loop *loop)
{
    /* Every task ran to its end before the terms: none is swept. */
    loop->tasks.sweep.cursor = NULL;
}

/* ---- taking a stack away and putting it back ------------------------------ */

/* A stack's bytes, copied without the sanitizer's checks: its frames'
 * red zones are poisoned, and the shadow stays as it is while the bytes
 * are away. */
#ifdef ASYNCIO_ASAN
__attribute__((no_sanitize("address")))
#endif
static void copy_bytes(void *to, const void *from, size_t n)
{
    unsigned char *d = to;
    const unsigned char *s = from;
    while (n--)
        *d++ = *s++;
}

/* The waits a task may be swept in: their records are in struct task and
 * in the objects waited on, and what wakes them reaches nothing of the
 * task's stack (task.h). */
static bool wait_sweepable(const char *what)
{
    static const char *const ok[] = {"sleep", "fd readable", "fd writable", "stream drain",
                                     "lock", "event", "condition", "semaphore", "barrier",
                                     "queue get", "queue put", "queue join"};
    if (!what)
        return false;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(what, ok[i]) == 0)
            return true;
    return false;
}

/* Take t's stack away: 0, or -ENOMEM (t stays as it was). */
static int sweep_out(struct loop *loop, struct task *t)
{
#ifdef SWEEP_SUPPORTED
    struct taskctx *c = t->ctx;
    char *base = c->coro.stack.base, *top = base + c->coro.stack.size;
    char *sp = c->coro.sp;
    if (sp < base || sp >= top)
        return -EINVAL; /* GCOVR_EXCL_LINE: a parked task's saved stack pointer is in its stack */
    size_t len = (size_t)(top - sp);
    if (len > UINT32_MAX)
        return -E2BIG; /* GCOVR_EXCL_LINE: 4 GiB of live stack; it stays */
    void *saved = malloc(len);
    if (!saved)
        return -ENOMEM;
    copy_bytes(saved, sp, len);
    stack_swept(&loop->tasks.stacks, &c->coro.stack);
    c->saved = saved;
    c->saved_len = (uint32_t)len;
    c->prefaulted = false;
    loop->tasks.sweep.swept++;
    loop->tasks.sweep.saved_bytes += len;
    task_set_sweep_mark(t, SWEEP_SWEPT);
    return 0;
#else
    (void)loop, (void)t;
    return -ENOTSUP; /* GCOVR_EXCL_LINE: never on where unsupported */
#endif
}

#if defined(SWEEP_SUPPORTED) && defined(MADV_POPULATE_WRITE)
/* Swept tasks prefaulted together (sweep_prefault()). */
#define PREFAULT_BATCH 64

/* Where t's saved bytes go back: the pages from its saved stack pointer's
 * to the top. */
static struct iovec prefault_range(struct task *t, size_t page)
{
    struct taskctx *c = t->ctx;
    char *top = (char *)c->coro.stack.base + c->coro.stack.size;
    char *from = (char *)((uintptr_t)(top - c->saved_len) & ~(uintptr_t)(page - 1));
    return (struct iovec){from, (size_t)(top - from)};
}
#endif

void sweep_prefault(struct loop *loop, struct task *t)
{
#if defined(SWEEP_SUPPORTED) && defined(MADV_POPULATE_WRITE)
    /* A page fault costs a trap, which can cost ten times what the page
     * does (11 us in some virtual machines, against 1 us for the same page
     * populated by madvise()): the tasks of a batch woken together (a
     * timer's worth, a burst of input) get their pages in one call. */
    if (t->ctx->prefaulted)
        return;
    size_t page = loop->tasks.stacks.page;
    struct iovec iov[PREFAULT_BATCH];
    int n = 0;
    iov[n++] = prefault_range(t, page);
    t->ctx->prefaulted = true;
    for (struct qnode *q = loop->batch.head; q && n < PREFAULT_BATCH; q = q->next) {
        struct runnable *r = container_of(q, struct runnable, q);
        if (!task_runnable(r))
            continue;
        struct task *u = container_of(r, struct task, run);
        if (task_sweep_mark(u) != SWEEP_SWEPT || u->ctx->prefaulted)
            continue;
        iov[n++] = prefault_range(u, page);
        u->ctx->prefaulted = true;
    }
#if defined(SYS_process_madvise)
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (n > 1 && !loop->tasks.stacks.no_batch_free &&
        syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)n, MADV_POPULATE_WRITE, 0u) ==
            (long)total)
        return;
#endif
    for (int i = 0; i < n; i++)
        madvise(iov[i].iov_base, iov[i].iov_len, MADV_POPULATE_WRITE); /* else it faults */
#else
    (void)loop, (void)t;
#endif
}

int sweep_restore(struct loop *loop, struct task *t)
{
    struct taskctx *c = t->ctx;
    int rc = stack_unswept(&loop->tasks.stacks, &c->coro.stack);
    if (rc < 0)
        return rc;
    char *top = (char *)c->coro.stack.base + c->coro.stack.size;
    copy_bytes(top - c->saved_len, c->saved, c->saved_len);
    free(c->saved);
    loop->tasks.sweep.swept--;
    loop->tasks.sweep.saved_bytes -= c->saved_len;
    c->saved = NULL;
    c->saved_len = 0;
    c->prefaulted = false;
    task_set_sweep_mark(t, SWEEP_PLAIN);
    return 0;
}

/* ---- the passes ------------------------------------------------------------- */

static void sweep_visit(struct loop *loop, struct task *t)
{
    enum sweep_mark m = task_sweep_mark(t);
    if (m == SWEEP_SWEPT || m == SWEEP_OTHER)
        return;
    bool idle = t->state == TASK_WAITING && !t->queued && t != loop->current && t->ctx &&
                !t->no_sweep && !t->scopes && !t->open_groups && wait_sweepable(t->waiting_on);
    if (!idle)
        task_set_sweep_mark(t, SWEEP_PLAIN);
    else if (m == SWEEP_PLAIN)
        task_set_sweep_mark(t, SWEEP_MARKED); /* the next visit sweeps it if it has not run */
    else
        sweep_out(loop, t); /* on -ENOMEM it stays marked: the next visit tries again */
}

/* A part of the pass: SWEEP_BATCH tasks from where the last part stopped. */
static void sweep_run(struct loop *loop, struct runnable *r)
{
    (void)r;
    struct loop_sweep *sw = &loop->tasks.sweep;
    sw->queued = false;
    if (!sw->threshold_ns || loop->closing)
        return;
    struct dlist *all = &loop->tasks.all;
    struct dlist *d = sw->cursor ? sw->cursor->fut.all.next : all->next;
    for (size_t n = 0; d != all && n < SWEEP_BATCH; n++, d = d->next)
        sweep_visit(loop, container_of(d, struct task, fut.all));
    stack_sweep_flush(&loop->tasks.stacks); /* the pages of those swept */
    if (d == all) {
        sw->cursor = NULL;
        sweep_schedule(loop, clock_deadline(clock_now_ns(), sw->threshold_ns));
    } else {
        sw->cursor = container_of(d->prev, struct task, fut.all);
        sweep_schedule(loop, 0); /* the rest in the next iteration */
    }
}

static void sweep_fire(struct loop *loop, struct ltimer *lt)
{
    (void)lt;
    struct loop_sweep *sw = &loop->tasks.sweep;
    if (!sw->queued) {
        sw->queued = true;
        loop_ready(loop, &sw->run);
    }
}

/* ---- the public calls ---------------------------------------------------------- */

int asyncio_loop_set_stack_sweep(asyncio_loop_t *s, double seconds)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    if (rc < 0)
        return rc;
    if (!(seconds >= 0) || seconds > 1e9)
        return -EINVAL;
    return sweep_set(loop, seconds > 0 ? clock_seconds_to_ns(seconds) : 0);
}

double asyncio_loop_get_stack_sweep(asyncio_loop_t *s)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    return rc < 0 ? (double)rc : (double)loop->tasks.sweep.threshold_ns / 1e9;
}

int asyncio_task_swept_bytes(const asyncio_task_t *task)
{
    struct task *t = task_of((asyncio_task_t *)task);
    if (!t)
        return -EINVAL;
    return task_sweep_mark(t) == SWEEP_SWEPT ? (int)t->ctx->saved_len : 0;
}

int asyncio_loop_stack_sweep_stats(asyncio_loop_t *s, size_t *tasks, size_t *bytes)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    if (rc < 0)
        return rc;
    if (tasks)
        *tasks = loop->tasks.sweep.swept;
    if (bytes)
        *bytes = loop->tasks.sweep.saved_bytes;
    return 0;
}
