/* The futures and tasks layer: what waiting means (the wait states of a
 * task are described once, below). */
#ifndef ASYNCIO_TASK_INTERNAL_H
#define ASYNCIO_TASK_INTERNAL_H

#include "names.h"

#include "loop.h"

#include <errno.h>

enum { FUT_PENDING, FUT_DONE };

/* Something waiting for a future: notify() is called once, when the future
 * completes, after the waiter was unlinked. */
struct waiter {
    struct dlist link;
    void (*notify)(struct waiter *w, struct asyncio_future *f);
};

struct asyncio_future {
    struct loop *loop;
    struct dlist all;     /* on loop->tasks.futures, or loop->tasks.all for a task */
    struct dlist waiters; /* struct waiter, in registration order */
    unsigned refs;
    unsigned char state;
    bool is_task;
    bool retrieved;       /* someone looked at a failure: no report at free */
    bool traced;          /* a plain future made in debug mode: its origin
                             follows the struct (future_origin()) */
    int status;           /* when done: >= 0 success, else error/-ECANCELED */
    void *result;
};

/* The wait states of a task, written down once.
 *
 *   state     queued  what it means
 *   CREATED   yes     made, on the ready queue, never run yet
 *   RUNNING   no      the running task: loop->current
 *   WAITING   no      parked, registered where its wake-up will come from
 *   WAITING   yes     woken: on the ready queue with wake_status, not resumed
 *   DONE      no      its function returned (or it was cancelled unstarted)
 *
 * Who moves a task:
 * - CREATED -> RUNNING, WAITING/queued -> RUNNING: the loop (task_step), or a
 *   parking task that switches straight to the next one (next_context).
 * - CREATED -> DONE: the loop, for a task cancelled before it ran.
 * - RUNNING -> WAITING: only the task itself, in task_park(), after it
 *   registered where the wake comes from (a wait queue, a future, a fan-in,
 *   an fd, a timer, a task group, a thread-pool job).
 * - WAITING -> WAITING/queued: anyone on the loop's thread, with task_wake()
 *   (the first wake wins; later ones are ignored), task_wake_handoff(), or
 *   asyncio_task_cancel().
 * - RUNNING -> DONE: the task's function returned (task_finish).
 *
 * The fields a wait and a wake share:
 * - wake_status: what task_park() returns, set by the first wake. A
 *   cancellation that comes after a plain wake and before the task resumes
 *   replaces it (nothing is lost: a future keeps its result, a timer or fd
 *   has nothing to give back).
 * - handoff: the wake handed the task something it must not lose (a lock, a
 *   permit). A cancellation then sets must_cancel instead, for the next
 *   wait. Cleared when the task parks again.
 * - must_cancel: a cancellation to deliver at the next wait (or at the end,
 *   as the task's outcome); num_cancels counts the requests (task groups
 *   take theirs back).
 * - timed_wait: parked in task_park_until(), so a rescheduled timeout scope
 *   may re-arm its timer; the timer fields say what the timer wakes it with.
 * - wait: the record of what it waits on (below); scopes: its open timeout
 *   scopes.
 *
 * Invariants: queued is true exactly while the task is on the ready queue. A
 * task WAITING and not queued is registered somewhere that will wake it, or
 * is the loop's to cancel at close. Every waiting call unregisters itself
 * once it resumes, whatever woke it. A task handed something owns it from
 * the waker's call on.
 *
 * What may live on a parked task's stack. Nothing the library reaches on its
 * own from another context: the record of what a task waits on is in
 * struct task (it waits for one thing at a time), a fan-in (gather, wait,
 * as_completed) and a task group's state are heap blocks, and the wait
 * queues live in the objects waited on. Code running elsewhere writes a
 * parked task's stack only through a pointer the program itself handed out:
 * an object declared there (a lock, a queue, a child's argument; C programs
 * do this all the time, and task groups make it safe) or a timeout scope
 * passed to asyncio_timeout_reschedule() from another task, which also
 * reads the scopes around it. So a parked stack's live part, above its
 * saved stack pointer, stays mapped at its address with its contents,
 * except where the program opts into the stack sweep (sweep.c), whose
 * contract (loop.h) makes such pointers the program's to avoid: the sweep
 * copies the live part away, and skips the waits where the library itself
 * would reach it (timeout scopes, task groups). */
enum task_state { TASK_CREATED, TASK_RUNNING, TASK_WAITING, TASK_DONE };

/* A reusable execution context: a coroutine running task after task. */
struct taskctx {
    struct coro coro;
    struct loop *loop;
    struct task *task;     /* the task it runs now */
    struct taskctx *next;  /* in the loop's pool */
    /* While its task is swept (sweep.c): the live part of the stack, from
     * the saved stack pointer to the top, on the heap; else NULL. */
    void *saved;
    uint32_t saved_len;    /* 32 bits: the struct takes 112 bytes of the heap,
                              not 128; a longer live part is not swept */
    bool prefaulted;       /* its pages for saved are in memory again */
};

/* The record of a wait on a wait queue (waitq.h): written by the task
 * before it parks, and by the waker that hands it something. */
struct wq_entry {
    struct dlist link; /* on the wait queue while registered */
    bool handed;       /* a waker did what the task waits for, or woke it */
};

struct task {
    struct asyncio_future fut; /* first: a task is a future; fut.all links
                                  it on loop->tasks.all */
    /* What every wait and wake touches, together in the line after the
     * future's: a server task's struct is rarely in the cache when its
     * socket becomes readable. */
    struct runnable run;
    unsigned char state;
    bool queued;               /* on the ready queue */
    bool must_cancel;          /* these three: see the wait states above */
    bool handoff;
    bool timed_wait;
    bool no_sweep;             /* never swept (asyncio_task_options_t) */
    bool cancel_forwarded;     /* a cancellation went to `awaited` */
    bool forwarding;           /* in asyncio_task_cancel(), passing one on */
    int wake_status;
    int saved_errno;
    unsigned io_streak;        /* socket calls done without waiting (sock.c) */
    struct taskctx *ctx;
    asyncio_timeout_t *scopes; /* open timeout scopes, innermost first */
    const char *waiting_on;    /* what its current wait is for (debugging) */
    /* What it waits on: a task waits for one thing at a time. */
    union {
        struct waiter fut;     /* on an awaited future's waiters */
        struct wq_entry q;     /* on a wait queue */
    } wait;
    /* While parked in asyncio_await(): the future it awaits. A cancellation
     * goes to it first, as asyncio's Task.cancel() cancels _fut_waiter
     * (cancel_forwarded), and the task resumes when it is done, with its
     * outcome. */
    struct asyncio_future *awaited;
    /* The rest is for timed waits, the start and the end, and debugging. */
    struct ltimer timer;       /* for sleeps and timeouts */
    int timer_status;          /* what the timer wakes the task with */
    int own_status;
    asyncio_timeout_t *timer_scope; /* the scope whose deadline armed it */
    uint64_t own_deadline;     /* a timed wait's own deadline, and status */
    unsigned num_cancels;      /* cancellation requests, less those a task
                                  group made and took back at its exit */
    asyncio_fn fn;
    void *arg;
    struct taskgroup *group;   /* the group it was created in, or NULL */
    struct dlist sibling;      /* on group->children until it finishes */
    unsigned open_groups;      /* groups it entered and has not left */
    uint64_t serial;
    const char *name;          /* NULL: "Task-<serial>", made on demand;
                                  else name_buf or, if long, malloc'd */
    char name_buf[24];         /* 24: the struct takes 320 bytes of the heap,
                                  not 336 (a million tasks: 16 MB) */
    /* One or the other, so the struct keeps to five cache lines: a sixth,
     * touched at each create and recycle, cost bench_sync's 100,000-task
     * group 15%. */
    union {
        struct task *next_free; /* on the loop's list of task structs to reuse */
        struct task_info *info; /* while in use: debug mode and counters
                                   (debug.c), or NULL */
    };
};

static inline struct task *task_of(struct asyncio_future *f)
{
    return f && f->is_task ? (struct task *)f : NULL;
}

/* Futures (future.c). */
void future_init(struct asyncio_future *f, struct loop *loop, bool is_task);
void future_complete(struct asyncio_future *f, int status, void *result);
void future_add_waiter(struct asyncio_future *f, struct waiter *w);
static inline void future_remove_waiter(struct waiter *w) { dlist_remove(&w->link); }
static inline bool future_is_done(const struct asyncio_future *f) { return f->state == FUT_DONE; }
/* f's outcome as asyncio_future_result() reports it (f done). */
int future_outcome(struct asyncio_future *f, void **result);
/* asyncio_await() as wait_for() awaits, with asyncio's steps (future.c). */
enum await_mode { AWAIT_PLAIN, AWAIT_SHIELD, AWAIT_FOR };
int future_await_for(asyncio_future_t *f, void **result);
void future_free(struct asyncio_future *f);
/* Free the plain futures left at close. */
void futures_free_all(struct loop *loop);
/* Task structs are kept for reuse (freeing a burst of them would have
 * malloc give the pages back, and the next burst fault them in again). */
void task_struct_recycle(struct task *t);

/* Task groups (taskgroup.c): t, a child of a group, finished with status. */
void taskgroup_child_done(struct task *t, int status);

/* Waiting (task.c). */

/* Register t, about to park, as waiting for f: woken with status 0 when f
 * completes (hop: one step later, see task_wake_hop()). Unregister with
 * future_remove_waiter(&t->wait.fut). */
void task_watch_future(struct task *t, struct asyncio_future *f, bool hop);
/* task_wake(), but t runs one step later: the ready queue takes it again
 * when its turn comes, so that it resumes in the next batch. asyncio's
 * timers and combinators wake their task through a callback, which then
 * schedules the task's step: a timer, gather, wait, as_completed, wait_for
 * and shield wake their task this way. */
void task_wake_hop(struct task *t, int status);
/* Park t, the running task, for two steps (the same hop): what asyncio's
 * combinators take even when what they wait for is done already. 0, or
 * -ECANCELED if a cancellation came meanwhile. */
int task_yield_hop(struct task *t);

/* The checks every call that awaits f makes: -EPERM outside a task,
 * -EDEADLK if f is the calling task itself, else 0. */
int task_check_await(const struct asyncio_future *f);

/* The calling task, ready to wait for what (shown by asyncio_print_tasks):
 * 0, -EPERM outside a task, -ECANCELED when a cancellation is pending
 * (which this consumes), or -ETIMEDOUT past a timeout scope's deadline. */
int task_begin_wait_on(struct task **out, const char *what);
/* -ETIMEDOUT if a timeout scope of t is past its deadline (marking every
 * such scope expired), else 0. */
int task_scopes_check(struct task *t);
/* task_begin_wait_on() for t, known to be the running task. */
static inline int task_ready_to_wait(struct task *t, const char *what)
{
    t->waiting_on = what;
    if (t->must_cancel) {
        t->must_cancel = false;
        return -ECANCELED;
    }
    return t->scopes ? task_scopes_check(t) : 0;
}
/* Park the running task until something wakes it; returns the wake status. */
int task_park(struct task *t);

/* The return address of the function that calls this one: where a task or
 * future was made, for debug mode's reports. */
#if defined(__GNUC__) || defined(__clang__)
#define CALLER_ADDRESS() __builtin_return_address(0)
#else
#define CALLER_ADDRESS() NULL
#endif

/* Debug mode and task counters (debug.c). Each hook is called only while
 * loop->instr is set; a task made while it was not has no info until its
 * next step, and then none of what happened before. */
struct task_info {
    void *origin;        /* the return address of the create call, or NULL */
    uint64_t parent;     /* the creating task's serial, 0: none */
    uint64_t steps, running_ns, ready_ns, waiting_ns;
    uint64_t since;      /* when the present phase began */
    unsigned char phase; /* INFO_READY, INFO_RUNNING, INFO_WAITING */
    bool slow_reported;  /* a slow step of it is on its way to the handler */
};
enum { INFO_READY = 1, INFO_RUNNING, INFO_WAITING };
/* The call graph (debug.c): the task that waits for a future through w
 * (an await, or a gather's or wait's fan-in: waitq.c), or NULL (a done
 * callback); the task whose group t was made in, or NULL (taskgroup.c). */
struct task *task_waiting_through(struct waiter *w);
struct task *fanin_waiter_task(struct waiter *w);
struct task *taskgroup_owner(const struct task *t);
/* Install the dump signal ($ASYNCIO_DUMP_SIGNAL) once the loop is this
 * thread's (debug.c). */
void debug_start(struct loop *loop);
/* Whether r is a task's (its steps are timed by the task's hooks). */
bool task_runnable(const struct runnable *r);

/* The stack sweep (sweep.c): a task parked through two visits of the
 * sweep in a row has the live part of its stack copied to the heap and its
 * pages given back; it is put back before the task runs. The state is
 * which step function the task runs through (task.c), so that a task that
 * is not swept pays nothing: next_context() hands over straight only to
 * the plain one, and the others go through the loop. */
enum sweep_mark { SWEEP_PLAIN, SWEEP_MARKED, SWEEP_SWEPT, SWEEP_OTHER };
enum sweep_mark task_sweep_mark(const struct task *t);
void task_set_sweep_mark(struct task *t, enum sweep_mark m);
/* Put t's stack back (t swept, not running): from the loop's context or a
 * task's other than t. 0, or -ENOMEM (no room for its guard: it stays
 * swept). */
int sweep_restore(struct loop *loop, struct task *t);
/* Before t's restore: fault in the pages its stack's bytes go back to, for
 * t and the swept tasks after it in the batch, in one system call. */
void sweep_prefault(struct loop *loop, struct task *t);
/* Whether this build and process can sweep (not under TSan, Valgrind, or
 * the portable switch). */
bool sweep_available(void);
int sweep_init(struct loop *loop);
/* Arm the sweep's timer if the loop was made with it on: 0 or -ENOMEM. */
int sweep_start(struct loop *loop);
void sweep_term(struct loop *loop);
/* t leaves loop->tasks.all: the sweep's place in its pass moves back. */
static inline void sweep_forget(struct loop *loop, struct task *t)
{
    struct loop_sweep *sw = &loop->tasks.sweep;
    if (sw->cursor == t)
        sw->cursor = t->fut.all.prev == &loop->tasks.all
                         ? NULL
                         : container_of(t->fut.all.prev, struct task, fut.all);
}
/* Have every task of loop run through the step that counts (on), or the
 * plain one: when loop->instr turns on or off (debug.c). */
void tasks_set_counted(struct loop *loop, bool on);
/* A task made: its info, with the create call's return address. */
void task_info_created(struct loop *loop, struct task *t, void *origin);
/* t starts a step, ends one (parks or finishes), is made ready. */
void task_info_step_begin(struct task *t);
void task_info_step_end(struct loop *loop, struct task *t);
void task_info_ready(struct task *t);
/* A plain future made in debug mode keeps its origin after itself. */
void *future_origin(const struct asyncio_future *f);
/* Report a failure nobody retrieved (f done, failed, not cancelled). */
void debug_report_unretrieved(struct asyncio_future *f);
/* A callback (not a task's step) that began at start_ns has run. */
void debug_callback_ran(struct loop *loop, uint64_t start_ns);
/* Debug mode's check that a loop's object is used from its loop's thread.
 * An object with a loop (a future, task, stream, server) is checked when
 * that loop is in debug mode; a sync object or queue (which has none) is
 * bound to the loop that first uses it in debug mode (by the loop's
 * number: a loop made later at the same address is another), and checked
 * from then on. Each returns 0, or -EXDEV once the misuse was reported (call:
 * the function's name). */
int debug_wrong_thread(struct loop *owner, const char *call);
static inline int loop_check_owner(struct loop *owner, const char *call)
{
    /* From the owner's thread (always, but for a bug) nothing is read of
     * the loop; from another, only its shared copy of instr. */
    if (__builtin_expect(owner != loop_current(), 0) &&
        (atomic_load_explicit(&owner->instr_shared, memory_order_relaxed) &
         (INSTR_DEBUG | INSTR_CLOSED)) == INSTR_DEBUG)
        return debug_wrong_thread(owner, call);
    return 0;
}
static inline int waitlist_check_owner(asyncio_waitlist_t *w, const char *call)
{
    struct loop *cur = loop_current();
    if (__builtin_expect(w->loop_ != NULL, 0)) {
        if (!cur || w->loop_ != (void *)cur->debug.id)
            return debug_wrong_thread(NULL, call);
    } else if (cur && loop_instr(cur) & INSTR_DEBUG) {
        w->loop_ = (void *)cur->debug.id;
    }
    return 0;
}
/* At close, after the wind-down (net's term: a server's tasks are
 * released): report the tasks the program held and never awaited. */
int debug_init(struct loop *loop);
void debug_term(struct loop *loop);

/* Wake a parked task with status: the first wake wins. Inline: the loop
 * makes one call per ready fd. */
static inline void task_wake(struct task *t, int status)
{
    if (t->state != TASK_WAITING || t->queued)
        return;
    t->wake_status = status;
    t->queued = true;
    if (loop_instr(t->fut.loop))
        task_info_ready(t);
    loop_ready(t->fut.loop, &t->run);
}
/* Wake a task that task_can_be_handed() and was just handed something: see
 * handoff above. */
void task_wake_handoff(struct task *t, int status);
/* True if t is parked and not yet woken, so it can still be handed
 * something: one already woken is on its way out of the wait. */
static inline bool task_can_be_handed(const struct task *t)
{
    return t->state == TASK_WAITING && !t->queued;
}

/* Consume a pending cancellation: true if there was one. For waits that
 * report it themselves after an uncancellable stretch. */
static inline bool task_take_cancel(struct task *t)
{
    bool pending = t->must_cancel;
    t->must_cancel = false;
    return pending;
}

/* Park until f is done; a cancellation of t meanwhile does not end the
 * wait but is passed on to f (if not done yet). Returns whether one came. */
bool task_wait_done_uncancellable(struct task *t, struct asyncio_future *f);
/* task_park_until() when a timer is due: a deadline, or open scopes. */
int task_park_timed(struct task *t, uint64_t deadline, int status);
/* Park until woken, or until deadline (ns; UINT64_MAX: none), which wakes
 * it with status, or until the nearest deadline of its open timeout scopes,
 * which wakes it with -ETIMEDOUT. Every wait that a timeout scope governs
 * parks through here. Returns the wake status, or -ENOMEM. */
static inline int task_park_until(struct task *t, uint64_t deadline, int status)
{
    if (deadline != UINT64_MAX || t->scopes)
        return task_park_timed(t, deadline, status);
    /* No deadline at all (the common wait for I/O): no timer to arm, nor
     * to cancel after. Only the task itself opens scopes, so none can
     * appear while it is parked. */
    t->timed_wait = true;
    int rc = task_park(t);
    t->timed_wait = false;
    return rc;
}
/* Re-arm a task parked in task_park_until() after a scope deadline moved. */
int task_rearm(struct task *t);

#endif
