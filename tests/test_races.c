/*
 * Races at the same instant (issue 16). For every waiting call W, a task T
 * parks in W; then the three events that can end the wait all happen
 * before T resumes, in each order the loop can produce:
 *   (a) what satisfies W (a future's result, a child's end, a lock or
 *       permit handed over, an event set, a notify, the last barrier
 *       party, a queue item or slot, data on a socket or pipe, ...);
 *   (b) asyncio_task_cancel(T);
 *   (c) T's timeout: a timeout scope around W, or W's own timeout
 *       (wait_for, wait, as_completed).
 * Each case checks what W returns, what T then owns, that a cancellation or
 * timeout W did not report is reported by T's next wait, and that nothing
 * is lost or duplicated, against the headers (where they are silent,
 * against asyncio's rule).
 *
 * How the orders are made, deterministically. (a) and (b) are done by
 * performer tasks, each parked on a "go" future until its turn: setting the
 * future puts it on the ready queue, as call_soon() would, and whatever is
 * on the ready queue before T is woken runs before T resumes. (c) is T's
 * deadline passing:
 *   - for a scope, asyncio_timeout_reschedule() into the past, made by a
 *     performer at c's place in the order: before its event (c first, the
 *     same instant), or after it (T was woken already);
 *   - for W's own timeout, the loop is held past the deadline, so that the
 *     timer fires the next time the loop looks at its timers, before its
 *     next batch: c first (the performers were queued, the timer wakes T
 *     behind them), or after the event that comes before it (the timer
 *     fires for a task already woken).
 *   c between (x,c,y): x's performer queues y's (ahead of T, which x wakes)
 *   and does x, then c; y's performer acts in the next batch, then T.
 * Data on a socket or pipe is written by (a)'s performer and seen by the
 * loop at its next poll, which comes before that iteration's timers.
 *
 * The rule the results follow (include/asyncio.h, timeout.h, sync.h,
 * queue.h, taskgroup.h, gather.h): the first event to reach T decides how it was
 * woken; a cancellation that comes later, before T resumes, is reported by
 * the same wait (-ECANCELED), as asyncio's CancelledError, and loses
 * nothing: a lock or permit handed to T goes on to the next waiter, a
 * queue's item or room stays for the next. A deadline that passes after T
 * was woken does not change that wait's outcome (as in asyncio, where the
 * woken task runs before the timeout's callback); the scope's next wait
 * fails at once. Exceptions, each checked where it applies: a condition
 * wait is over only once it has its lock back, and reports a deadline that
 * passed while it waited for it (here the lock is free when T resumes: the
 * general rule, as asyncio, which returns True); a task group reports a
 * child's failure over a cancellation or timeout that came with it.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- the engine ---------------------------------------------------------- */

enum {
    OWN_TIMEOUT = 1u << 0, /* (c) is W's own timeout, not a scope around it */
    A_IN_WAIT = 1u << 1,   /* T creates (a)'s performer itself (a group's child) */
    OK_NONNEG = 1u << 2,   /* W's success is any value >= 0 (an fd) */
    A_DEFERRED = 1u << 4,  /* (a) reaches T after its performer's step: a
                              child's return, or readiness at the next poll */
    NEED_A = 1u << 5,      /* nothing but (a) ends W: no pairs without it */
    EAGER = 1u << 6,       /* W is a plain await: (b) goes to the future */
    EAGER_NO_C = 1u << 7,  /* so is W without (c) (wait_for with no limit) */
};

enum outcome { OUT_A, OUT_CANCEL, OUT_TIMEOUT };

struct race;

/* A task that does one event when its go future is set. */
struct perf {
    struct race *r;
    char ev; /* 'a' or 'b' */
    asyncio_future_t *go;
    asyncio_task_t *task;
};

/* What T is expected to see. */
struct expect {
    int w;       /* W's return value */
    int expired; /* the scope right after W */
    int next1;   /* T's next two waits, in the scope */
    int next2;
    int exit;    /* the scope's exit */
};

struct scenario {
    const char *name;
    unsigned flags;
    int ok;        /* W's result when (a) wins */
    int timed_out; /* W's result when (c) wins (0: -ETIMEDOUT) */
    void (*setup)(struct race *r);            /* driver, before T starts */
    asyncio_fn helper;                        /* a task queued behind T, if any */
    int (*wait)(struct race *r, double timeout); /* T: W itself */
    void (*after)(struct race *r, int rc);    /* T, right after W: what it owns */
    void (*do_a)(struct race *r);             /* (a)'s performer */
    void (*finish)(struct race *r);           /* driver, once T is done */
    void (*expect)(const struct race *r, struct expect *e); /* exceptions */
    bool (*ready)(struct race *r);            /* T is where the race is run */
};

struct race {
    const struct scenario *sc;
    const char *order;
    double delta;     /* an own timeout */
    bool voided;      /* the loop was late, the order not made: run again */
    bool late;        /* T is done: what is left happens now */
    double t_seen;    /* T was parked in W by then */
    asyncio_task_t *T;
    asyncio_timeout_t *scope;
    bool in_wait;
    struct perf pa, pb;
    int a_status;     /* what (a)'s performer returns (a group's child) */
    int w_rc, expired, next1, next2, exit_rc;

    /* For the scenarios. */
    asyncio_future_t *f[2];
    void *res;
    void *results[2];
    asyncio_future_t *done[2];
    asyncio_as_completed_t it;
    int extra_rc;
    asyncio_task_t *helper;
    int helper_rc;
    void *helper_item;
    asyncio_lock_t lock;
    asyncio_event_t event;
    asyncio_condition_t cond;
    asyncio_semaphore_t sem;
    asyncio_barrier_t barrier;
    asyncio_queue_t q;
    int fd[2];
    int client;
    asyncio_stream_t *stream;
    char buf[256];
    size_t junk;
    char path[108];
};

static int g_a, g_b, g_i0, g_y; /* items and results, told apart by address */

static bool has(const struct race *r, char ev)
{
    return strchr(r->order, ev) != NULL;
}

static int pos(const struct race *r, char ev)
{
    const char *p = strchr(r->order, ev);
    return p ? (int)(p - r->order) : -1;
}

/* Checks that name the scenario and the order; none in a voided run. */
__attribute__((format(printf, 4, 5))) static void rfail(const struct race *r, const char *file,
                                                         int line, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tu_fail_at(file, line, "%s, order %s: %s", r->sc->name, r->order, msg);
}

#define RCHECK(r, cond)                                                                      \
    do {                                                                                     \
        if (!(r)->voided && !(cond))                                                         \
            rfail((r), __FILE__, __LINE__, "%s", #cond);                                     \
    } while (0)

#define RCHECK_INT(r, actual, expected)                                                      \
    do {                                                                                     \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                      \
        if (!(r)->voided && a_ != e_)                                                        \
            rfail((r), __FILE__, __LINE__, "%s is %s, expected %s", #actual, tu_err(a_),     \
                  tu_err(e_));                                                               \
    } while (0)

#define RCHECK_STATE(r, task, state) RCHECK_STR_((r), asyncio_task_state(task), (state), #task)
#define RCHECK_STR_(r, actual, expected, what)                                               \
    do {                                                                                     \
        const char *a_ = (actual);                                                           \
        if (!(r)->voided && (!a_ || strcmp(a_, (expected)) != 0))                            \
            rfail((r), __FILE__, __LINE__, "%s is \"%s\", expected \"%s\"", (what),          \
                  a_ ? a_ : "(null)", (expected));                                           \
    } while (0)

static bool is_waiting(asyncio_task_t *t)
{
    const char *s = asyncio_task_state(t);
    return s && strcmp(s, "waiting") == 0;
}

static enum outcome outcome(const struct race *r)
{
    char first = r->order[0];
    if (has(r, 'b'))
        return OUT_CANCEL; /* a cancellation before T resumed is reported */
    return first == 'c' ? OUT_TIMEOUT : OUT_A;
}

static void expected(const struct race *r, struct expect *e)
{
    bool scoped = !(r->sc->flags & OWN_TIMEOUT);
    enum outcome o = outcome(r);
    e->w = o == OUT_CANCEL ? -ECANCELED
         : o == OUT_TIMEOUT ? (r->sc->timed_out ? r->sc->timed_out : -ETIMEDOUT)
                            : r->sc->ok;
    e->expired = scoped && o == OUT_TIMEOUT;
    bool late_deadline = scoped && has(r, 'c'); /* the scope's deadline is past */
    e->next1 = late_deadline ? -ETIMEDOUT : 0;
    e->next2 = late_deadline ? -ETIMEDOUT : 0;
    e->exit = late_deadline ? -ETIMEDOUT : 0;
    if (r->sc->expect)
        r->sc->expect(r, e);
}

static void go(struct perf *p)
{
    if (p->go && !asyncio_future_done(p->go))
        CHECK_INT(asyncio_future_set_result(p->go, NULL), 0);
}

static struct perf *perf_of(struct race *r, char ev)
{
    return ev == 'a' ? &r->pa : &r->pb;
}

/* (c): T's deadline passes now. A scope's deadline is moved into the past
 * (a wait in progress takes it at once); an own timeout cannot be moved, so
 * the loop is held until it has passed: the timer fires the next time the
 * loop looks at its timers, before it runs the next batch. */
static void do_c(struct race *r)
{
    if (r->sc->flags & OWN_TIMEOUT) {
        /* W set its deadline delta after it began, before t_seen. */
        double until = r->t_seen + r->delta + 1e-4;
        while (asyncio_loop_time() < until)
            ;
    } else {
        RCHECK_INT(r, asyncio_timeout_reschedule(r->scope, asyncio_loop_time() - 1.0), 0);
    }
}

static void cb_do_c(void *arg)
{
    struct race *r = arg;
    RCHECK_STATE(r, r->T, "ready"); /* (a) reached it */
    do_c(r);
}

static void do_event(struct race *r, char ev)
{
    if (ev == 'a') {
        if (r->sc->do_a)
            r->sc->do_a(r);
    } else {
        RCHECK_INT(r, asyncio_task_cancel(r->T), 1);
    }
}

/* Whether T's timer is armed, from what asyncio_print_tasks() says of it. */
static bool timer_armed(asyncio_task_t *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return false;
    asyncio_print_tasks(f);
    fclose(f);
    char head[64];
    snprintf(head, sizeof head, "task \"%s\":", asyncio_task_name(t));
    const char *line = strstr(text, head);
    const char *end = line ? strchr(line, '\n') : NULL;
    const char *timer = line ? strstr(line, ", timer in") : NULL;
    bool armed = timer && (!end || timer < end);
    free(text);
    return armed;
}

/* The order is being made: what T has seen when the performer of the
 * event at index i of the order acts (c at index ic). */
static void check_progress(struct race *r, int i, int ic)
{
    bool own = r->sc->flags & OWN_TIMEOUT;
    int first = ic == 0 ? 1 : 0;
    if (i == first && ic == 0 && own) {
        RCHECK_STATE(r, r->T, "ready"); /* woken by its timer */
        RCHECK(r, !timer_armed(r->T));
    } else if (i == first && !(ic == 0 && own)) {
        RCHECK_STATE(r, r->T, "waiting"); /* nothing reached it yet */
    } else if (i == 2) {
        RCHECK_STATE(r, r->T, "ready"); /* by the timeout, or the first event */
        RCHECK(r, !timer_armed(r->T));  /* which fired, or was never armed */
    } else if (i == 1 && ic == 2 && own) {
        RCHECK(r, timer_armed(r->T)); /* it fires after this batch */
    }
}

/* A performer's turn: its event, and what the order wants around it. */
static void act(struct race *r, struct perf *p)
{
    if (r->late) {
        do_event(r, p->ev);
        return;
    }
    int i = pos(r, p->ev), ic = pos(r, 'c');
    int len = (int)strlen(r->order);
    bool own = r->sc->flags & OWN_TIMEOUT;
    int first = ic == 0 ? 1 : 0;
    /* An own timeout that fired before the first event means the loop was
     * held up: the order was not made, run it again. */
    if (i == first && ic != 0 && own && !is_waiting(r->T))
        r->voided = true;
    check_progress(r, i, ic);
    if (i == first && ic == 0 && !own)
        do_c(r); /* the deadline passes, then this event, at once */
    /* (c) right after this event, before T resumes: at once, or, when the
     * event is what will wake T but reaches it only later (a child's
     * return, readiness at the next poll), from a callback queued ahead of
     * T and of the next performer. */
    bool c_next = ic == i + 1;
    bool c_deferred = c_next && p->ev == 'a' && (r->sc->flags & A_DEFERRED) && is_waiting(r->T);
    if (c_deferred)
        CHECK_INT(asyncio_call_soon(cb_do_c, r, NULL), 0);
    if (i == first && ic == 1 && len == 3)
        go(perf_of(r, r->order[2])); /* ahead of T, in the next batch */
    do_event(r, p->ev);
    if (c_next && !c_deferred)
        do_c(r);
}

static int performer(void *arg, void **result)
{
    struct perf *p = arg;
    int rc = asyncio_await(p->go, NULL);
    if (rc < 0)
        return rc; /* cancelled before its turn: a child W cancelled */
    act(p->r, p);
    *result = &g_a;
    return p->ev == 'a' ? p->r->a_status : 0;
}

static void make_perf(struct race *r, struct perf *p, char ev, bool task)
{
    p->r = r;
    p->ev = ev;
    p->go = tu_future();
    p->task = task ? tu_spawn(performer, p, ev == 'a' ? "perf-a" : "perf-b") : NULL;
}

static int task_T(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    bool scoped = !(r->sc->flags & OWN_TIMEOUT);
    asyncio_timeout_t scope;
    if (scoped) {
        CHECK_INT(asyncio_timeout_enter(&scope, INFINITY), 0);
        r->scope = &scope;
    }
    double timeout = !scoped && has(r, 'c') ? r->delta : INFINITY;
    r->in_wait = true;
    int rc = r->sc->wait(r, timeout);
    r->in_wait = false;
    r->w_rc = rc;
    r->expired = scoped ? asyncio_timeout_expired(&scope) : 0;
    if (r->sc->after)
        r->sc->after(r, rc);
    r->next1 = asyncio_sleep(0);
    r->next2 = asyncio_sleep(0);
    if (scoped) {
        r->exit_rc = asyncio_timeout_exit(&scope);
        r->scope = NULL;
    }
    return 0;
}

/* Let t run until it parks (or ends); false if it never did. */
static bool until_parked(asyncio_task_t *t, const bool *flag)
{
    for (int i = 0; i < 1000; i++) {
        if ((!flag || *flag) && is_waiting(t))
            return true;
        if (asyncio_future_done(t) || asyncio_sleep(0) < 0)
            return false;
    }
    return false;
}

/* Wait for t to finish, within a bound: a wait that never ends is a
 * failure that names it, not a hang. */
static void await_bounded(struct race *r, asyncio_task_t *t, const char *what)
{
    asyncio_future_t *fs[1] = {t};
    if (asyncio_wait(1, fs, 2.0, ASYNCIO_ALL_COMPLETED, NULL, NULL) != 1) {
        rfail(r, __FILE__, __LINE__, "%s never finished (state %s, waiting on %s)", what,
              asyncio_task_state(t), asyncio_task_waiting_on(t) ? asyncio_task_waiting_on(t) : "-");
        asyncio_task_cancel(t);
    }
    asyncio_await(t, NULL);
}

static int driver(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    const struct scenario *sc = r->sc;
    r->fd[0] = r->fd[1] = r->client = -1;
    if (sc->setup)
        sc->setup(r);
    make_perf(r, &r->pa, 'a', !(sc->flags & A_IN_WAIT));
    if (has(r, 'b'))
        make_perf(r, &r->pb, 'b', true);
    r->T = tu_spawn(task_T, r, "T");
    if (!until_parked(r->T, &r->in_wait))
        rfail(r, __FILE__, __LINE__, "T never parked in the wait");
    if (sc->helper) {
        r->helper = tu_spawn(sc->helper, r, "helper");
        if (!until_parked(r->helper, NULL))
            rfail(r, __FILE__, __LINE__, "the helper never parked behind T");
    }
    for (int i = 0; sc->ready && !sc->ready(r); i++) {
        if (i == 1000 || asyncio_sleep(0) < 0) {
            rfail(r, __FILE__, __LINE__, "T never got where the race is run");
            break;
        }
    }
    /* The performers, too, wait for their turn (a group's child was
     * created by T and may not have run yet). */
    struct perf *ps[2] = {&r->pa, &r->pb};
    for (int i = 0; i < 2; i++)
        if (ps[i]->task && !until_parked(ps[i]->task, NULL))
            rfail(r, __FILE__, __LINE__, "a performer never parked");
    r->t_seen = asyncio_loop_time();

    int len = (int)strlen(r->order), ic = pos(r, 'c');
    if (ic == 0 && (sc->flags & OWN_TIMEOUT)) {
        if (!is_waiting(r->T))
            r->voided = true; /* its timer fired already */
        for (int i = 1; i < len; i++)
            go(perf_of(r, r->order[i]));
        do_c(r); /* its timer wakes T behind the performers */
    } else if (ic == 0) {
        for (int i = 1; i < len; i++)
            go(perf_of(r, r->order[i])); /* the first one does (c) too */
    } else {
        go(perf_of(r, r->order[0]));
        if (len >= 2 && ic != 1 && r->order[1] != 'c')
            go(perf_of(r, r->order[1]));
    }
    await_bounded(r, r->T, "T");

    /* What did not happen before T resumed happens now. */
    r->late = true;
    go(&r->pa);
    tu_yield(3);
    if (sc->finish)
        sc->finish(r);
    for (int i = 0; i < 2; i++) {
        if (ps[i]->task) {
            await_bounded(r, ps[i]->task, ps[i]->ev == 'a' ? "(a)'s performer" : "(b)'s performer");
            asyncio_task_release(ps[i]->task);
        }
        if (ps[i]->go)
            asyncio_future_release(ps[i]->go);
    }
    if (r->helper) {
        await_bounded(r, r->helper, "the helper");
        asyncio_task_release(r->helper);
    }

    struct expect e;
    expected(r, &e);
    if ((sc->flags & OK_NONNEG) && outcome(r) == OUT_A)
        RCHECK(r, r->w_rc >= 0);
    else
        RCHECK_INT(r, r->w_rc, e.w);
    RCHECK_INT(r, r->expired, e.expired);
    RCHECK_INT(r, r->next1, e.next1);
    RCHECK_INT(r, r->next2, e.next2);
    if (!(sc->flags & OWN_TIMEOUT))
        RCHECK_INT(r, r->exit_rc, e.exit);
    asyncio_task_release(r->T);
    return 0;
}

static const char *const ORDERS[] = {
    /* all three, every order */
    "abc", "acb", "bac", "bca", "cab", "cba",
    /* and every pair */
    "ab", "ba", "ac", "ca", "bc", "cb",
};

/* Every order of a scenario, each in a loop of its own. A run whose own
 * timeout fired before its turn (the loop was held up: a loaded machine)
 * is run again with a longer timeout. RACES_VERBOSE=1 in the environment
 * names each run on stderr as it starts. */
static void run_scenario(const struct scenario *sc)
{
    for (size_t k = 0; k < sizeof ORDERS / sizeof ORDERS[0]; k++) {
        if ((sc->flags & NEED_A) && !strchr(ORDERS[k], 'a'))
            continue;
        for (int attempt = 0;; attempt++) {
            struct race r = {.sc = sc, .order = ORDERS[k], .delta = 0.005 * (1 << attempt)};
            if (getenv("RACES_VERBOSE"))
                fprintf(stderr, "%s, order %s\n", sc->name, ORDERS[k]);
            int rc = asyncio_run(driver, &r, NULL);
            if (rc != 0)
                tu_fail_at(__FILE__, __LINE__, "%s, order %s: the driver returned %s", sc->name,
                           ORDERS[k], tu_err(rc));
            if (!r.voided)
                break;
            if (attempt == 5) {
                tu_fail_at(__FILE__, __LINE__, "%s, order %s: the loop was always too late",
                           sc->name, ORDERS[k]);
                break;
            }
        }
    }
}

/* Run each scenario in every order, then fail the test if any check did:
 * a failing scenario does not hide the others. */
#define RUN_SCENARIOS(...)                                                                   \
    do {                                                                                     \
        const struct scenario *scs_[] = {__VA_ARGS__};                                       \
        tu_reset();                                                                          \
        for (size_t i_ = 0; i_ < sizeof scs_ / sizeof scs_[0]; i_++)                         \
            run_scenario(scs_[i_]);                                                          \
        tu_check_failures();                                                                 \
    } while (0)

/* ---- futures and tasks ----------------------------------------------------- */

/* asyncio_await on a plain future. */

static void await_setup(struct race *r)
{
    r->f[0] = tu_future();
}

static int await_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_await(r->f[0], &r->res);
}

static void await_after(struct race *r, int rc)
{
    if (rc == 0)
        RCHECK(r, r->res == &g_a);
}

/* (b) first, while T still awaits f: T's cancellation cancelled f at once,
 * as asyncio's Task.cancel() cancels the future the task awaits; (a) finds
 * it done. (After (a) or (c) woke T, the cancellation only replaces that
 * wake-up.) */
static bool b_before_a(const struct race *r)
{
    bool eager = (r->sc->flags & EAGER) || ((r->sc->flags & EAGER_NO_C) && !has(r, 'c'));
    return eager && r->order[0] == 'b';
}

static void await_do_a(struct race *r)
{
    int rc = asyncio_future_set_result(r->f[0], &g_a);
    if (!r->late || has(r, 'a'))
        RCHECK_INT(r, rc, b_before_a(r) ? -EALREADY : 0);
}

/* The future keeps the result it was given, whatever the wait returned; a
 * future nothing completed before T resumed was cancelled by T. */
static void await_finish(struct race *r)
{
    void *res = NULL;
    int rc = asyncio_future_result(r->f[0], &res);
    if (has(r, 'a') && !b_before_a(r)) {
        RCHECK_INT(r, rc, 0);
        RCHECK(r, res == &g_a);
    } else {
        RCHECK_INT(r, rc, -ECANCELED);
    }
    asyncio_future_release(r->f[0]);
}

static const struct scenario sc_await = {
    .name = "await", .flags = EAGER, .ok = 0, .setup = await_setup, .wait = await_wait,
    .after = await_after, .do_a = await_do_a, .finish = await_finish,
};

static void test_await_reports_a_cancel_that_comes_with_the_result_in_any_order_and_the_future_keeps_it(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_await);
}

/* asyncio_await on a task: (a) is the task's end. */

static int await_task_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_await(r->pa.task, &r->res);
}

static void await_task_finish(struct race *r)
{
    void *res = NULL;
    asyncio_await(r->pa.task, NULL);
    int rc = asyncio_future_result(r->pa.task, &res);
    if (has(r, 'a') && !b_before_a(r)) {
        RCHECK_INT(r, rc, 0);
        RCHECK(r, res == &g_a);
    } else {
        RCHECK_INT(r, rc, -ECANCELED); /* T cancelled it and waited for it */
    }
}

/* (b) first cancels the awaited task, (a)'s performer, before its turn:
 * it ends at once and never acts, so neither (a) nor a (c) it was to do
 * after (a) comes. A (c) done by (b)'s performer passes the deadline
 * while T waits for that task to end: it fires in the wait (the scope is
 * expired, as asyncio's), and the wait reports the cancellation, which
 * came first. */
static void await_task_expect(const struct race *r, struct expect *e)
{
    if (r->order[0] != 'b' || !has(r, 'c'))
        return;
    if (pos(r, 'c') == 1) {
        e->expired = 1;
    } else {
        e->next1 = e->next2 = e->exit = 0;
    }
}

static const struct scenario sc_await_task = {
    .name = "await task", .flags = A_DEFERRED | EAGER, .ok = 0, .wait = await_task_wait,
    .after = await_after, .finish = await_task_finish, .expect = await_task_expect,
};

static void test_await_of_a_task_reports_a_cancel_that_comes_with_its_end_and_the_task_keeps_its_result(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_await_task);
}

/* gather: (a) is the last child's end, or a child's failure. */

static void gather_setup(struct race *r)
{
    r->f[0] = tu_future();
    r->f[1] = tu_future();
    CHECK_INT(asyncio_future_set_result(r->f[0], &g_i0), 0);
}

static int gather_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_gather(2, r->f, r->results, NULL, 0);
}

static void gather_after(struct race *r, int rc)
{
    if (rc == 0) {
        RCHECK(r, r->results[0] == &g_i0);
        RCHECK(r, r->results[1] == &g_a);
    }
}

static void gather_do_a(struct race *r)
{
    int rc = asyncio_future_set_result(r->f[1], &g_a);
    if (!r->late || has(r, 'a'))
        RCHECK_INT(r, rc, 0);
}

static void gather_finish(struct race *r)
{
    void *res = NULL;
    int rc = asyncio_future_result(r->f[1], &res);
    if (has(r, 'a')) {
        RCHECK_INT(r, rc, 0); /* kept */
        RCHECK(r, res == &g_a);
    } else {
        RCHECK_INT(r, rc, -ECANCELED); /* cancelled by the gather */
    }
    asyncio_future_release(r->f[0]);
    asyncio_future_release(r->f[1]);
}

static const struct scenario sc_gather = {
    .name = "gather", .ok = 0, .setup = gather_setup, .wait = gather_wait,
    .after = gather_after, .do_a = gather_do_a, .finish = gather_finish,
};

static void test_gather_reports_a_cancel_or_timeout_that_comes_with_its_last_child_in_any_order(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_gather);
}

static void gather_fail_setup(struct race *r)
{
    r->f[0] = tu_future();
    r->f[1] = tu_future();
}

static void gather_fail_do_a(struct race *r)
{
    int rc = asyncio_future_set_error(r->f[1], -EIO);
    if (!r->late || has(r, 'a'))
        RCHECK_INT(r, rc, 0);
}

/* Once a failure ended the wait before T resumed, the child still running
 * is left alone, in either order (gather.h): it is not cancelled. */
static void gather_fail_finish(struct race *r)
{
    if (has(r, 'a')) {
        RCHECK_INT(r, asyncio_future_done(r->f[0]), 0);
        RCHECK_INT(r, asyncio_future_result(r->f[1], NULL), -EIO);
        CHECK_INT(asyncio_future_set_result(r->f[0], NULL), 0);
    } else {
        RCHECK_INT(r, asyncio_future_result(r->f[0], NULL), -ECANCELED);
        RCHECK_INT(r, asyncio_future_result(r->f[1], NULL), -ECANCELED);
    }
    asyncio_future_release(r->f[0]);
    asyncio_future_release(r->f[1]);
}

static const struct scenario sc_gather_fail = {
    .name = "gather, a child fails", .ok = -EIO, .setup = gather_fail_setup,
    .wait = gather_wait, .do_a = gather_fail_do_a, .finish = gather_fail_finish,
};

static void test_gather_reports_a_cancel_or_timeout_that_comes_with_a_failure_and_leaves_the_rest_running(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_gather_fail);
}

/* wait_for with its own timeout. */

static int wait_for_wait(struct race *r, double timeout)
{
    return asyncio_wait_for(r->f[0], timeout, &r->res);
}

/* Its own timeout first, then the result, both before T resumes: f is
 * done and not cancelled when wait_for looks, and it returns the result,
 * as asyncio's wait_for does (fut.done() is checked first). */
static void wait_for_expect(const struct race *r, struct expect *e)
{
    if (r->order[0] == 'c' && has(r, 'a') && !has(r, 'b'))
        e->w = r->sc->ok;
}

static const struct scenario sc_wait_for = {
    .name = "wait_for", .flags = OWN_TIMEOUT | EAGER_NO_C, .ok = 0, .setup = await_setup,
    .wait = wait_for_wait, .after = await_after, .do_a = await_do_a, .finish = await_finish,
    .expect = wait_for_expect,
};

static void test_wait_for_own_timeout_and_a_cancel_with_the_result_follow_the_first_to_come(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_wait_for);
}

/* asyncio_wait (FIRST_COMPLETED), with its own timeout and in a scope: its
 * own timeout is not an error, it counts what is done when T resumes. */

static void wait_setup(struct race *r)
{
    r->f[0] = tu_future();
    r->f[1] = tu_future();
}

static int wait_wait(struct race *r, double timeout)
{
    return asyncio_wait(2, r->f, timeout, ASYNCIO_FIRST_COMPLETED, r->done, NULL);
}

static void wait_after(struct race *r, int rc)
{
    if (rc == 1)
        RCHECK(r, r->done[0] == r->f[1]);
}

static void wait_finish(struct race *r)
{
    /* asyncio.wait never cancels. */
    RCHECK_INT(r, asyncio_future_done(r->f[0]), 0);
    RCHECK_INT(r, asyncio_future_result(r->f[1], NULL), 0);
    CHECK_INT(asyncio_future_set_result(r->f[0], NULL), 0);
    asyncio_future_release(r->f[0]);
    asyncio_future_release(r->f[1]);
}

static const struct scenario sc_wait_own = {
    .name = "wait, own timeout", .flags = OWN_TIMEOUT, .ok = 1, .timed_out = 1,
    .setup = wait_setup, .wait = wait_wait, .after = wait_after, .do_a = gather_do_a,
    .finish = wait_finish,
};

static const struct scenario sc_wait_scope = {
    .name = "wait, scope", .ok = 1, .setup = wait_setup, .wait = wait_wait,
    .after = wait_after, .do_a = gather_do_a, .finish = wait_finish,
};

static void test_wait_counts_what_is_done_on_its_own_timeout_and_reports_a_cancel_in_any_order(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_wait_own, &sc_wait_scope);
}

/* as_completed, with its own timeout and in a scope: a future that
 * finished but was not handed back is handed back by the next call. */

static int ac_wait(struct race *r, double timeout)
{
    CHECK_INT(asyncio_as_completed_init(&r->it, 2, r->f, timeout), 0);
    asyncio_future_t *f = NULL;
    int rc = asyncio_as_completed_next(&r->it, &f);
    if (rc == 1)
        RCHECK(r, f == r->f[1]);
    return rc;
}

static void ac_after(struct race *r, int rc)
{
    if (rc < 0 && has(r, 'a')) {
        asyncio_future_t *f = NULL;
        RCHECK_INT(r, asyncio_as_completed_next(&r->it, &f), 1);
        RCHECK(r, f == r->f[1]);
    }
    asyncio_as_completed_destroy(&r->it);
}

static const struct scenario sc_ac_own = {
    .name = "as_completed, own timeout", .flags = OWN_TIMEOUT, .ok = 1, .setup = wait_setup,
    .wait = ac_wait, .after = ac_after, .do_a = gather_do_a, .finish = wait_finish,
};

static const struct scenario sc_ac_scope = {
    .name = "as_completed, scope", .ok = 1, .setup = wait_setup, .wait = ac_wait,
    .after = ac_after, .do_a = gather_do_a, .finish = wait_finish,
};

static void test_as_completed_keeps_a_future_that_finished_with_a_cancel_or_timeout_for_the_next_call(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_ac_own, &sc_ac_scope);
}

/* ---- task groups ----------------------------------------------------------- */

/* The exit waits for the children: (a) is the last child's end. */
static int tg_exit_wait(struct race *r, double timeout)
{
    (void)timeout;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&g, &r->pa.task, performer, &r->pa, NULL), 0);
    return asyncio_taskgroup_exit(&g, 0);
}

static void tg_finish(struct race *r)
{
    /* The exit waited for the child: done, with (a)'s status if it came. */
    RCHECK_INT(r, asyncio_future_done(r->pa.task), 1);
    RCHECK_INT(r, asyncio_future_result(r->pa.task, NULL), has(r, 'a') ? r->a_status : -ECANCELED);
}

static const struct scenario sc_tg_exit = {
    .name = "task group exit", .flags = A_IN_WAIT | A_DEFERRED, .ok = 0, .wait = tg_exit_wait,
    .finish = tg_finish,
};

static void test_task_group_exit_reports_a_cancel_or_timeout_that_comes_with_its_last_child(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_tg_exit);
}

/* A child's failure wins over a cancellation or timeout that comes with it
 * (taskgroup.h: the first failure's code, else -ECANCELED/-ETIMEDOUT). */
static void tg_fail_setup(struct race *r)
{
    r->a_status = -EIO;
}

static void tg_fail_expect(const struct race *r, struct expect *e)
{
    if (has(r, 'a'))
        e->w = -EIO;
}

static const struct scenario sc_tg_exit_fail = {
    .name = "task group exit, a child fails", .flags = A_IN_WAIT | A_DEFERRED, .ok = -EIO,
    .setup = tg_fail_setup, .wait = tg_exit_wait, .finish = tg_finish, .expect = tg_fail_expect,
};

static void test_task_group_exit_reports_a_child_failure_that_comes_with_a_cancel_or_timeout(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_tg_exit_fail);
}

/* The body waits while a child fails: the group cancels the body, and takes
 * that cancellation back at its exit; an outside cancellation and the
 * timeout come in the same iteration. */
static int tg_body_wait(struct race *r, double timeout)
{
    (void)timeout;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&g, &r->pa.task, performer, &r->pa, NULL), 0);
    int body = asyncio_await(r->f[0], NULL); /* never completed */
    RCHECK_INT(r, body, -ECANCELED);
    return asyncio_taskgroup_exit(&g, body);
}

static void tg_body_setup(struct race *r)
{
    r->a_status = -EIO;
    r->f[0] = tu_future();
}

/* The group's own cancellation of the body replaces a timeout that came
 * first: the body's wait returns -ECANCELED and the scope is not expired;
 * the failure is what the group reports. */
static void tg_body_expect(const struct race *r, struct expect *e)
{
    e->w = has(r, 'a') ? -EIO : has(r, 'b') ? -ECANCELED : -ETIMEDOUT;
    e->expired = 0;
}

static void tg_body_finish(struct race *r)
{
    tg_finish(r);
    RCHECK_INT(r, asyncio_future_cancelled(r->f[0]), 1);
    asyncio_future_release(r->f[0]);
}

static const struct scenario sc_tg_body = {
    .name = "task group body", .flags = A_IN_WAIT | A_DEFERRED, .setup = tg_body_setup,
    .wait = tg_body_wait, .finish = tg_body_finish, .expect = tg_body_expect,
};

/* The same with the group inside another group of the same task: the inner
 * group's cancellation must not count as one from outside for the outer. */
static int tg_nested_wait(struct race *r, double timeout)
{
    (void)timeout;
    asyncio_taskgroup_t outer, inner;
    CHECK_INT(asyncio_taskgroup_enter(&outer), 0);
    CHECK_INT(asyncio_taskgroup_enter(&inner), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&inner, &r->pa.task, performer, &r->pa, NULL), 0);
    int body = asyncio_await(r->f[0], NULL);
    RCHECK_INT(r, body, -ECANCELED);
    r->extra_rc = asyncio_taskgroup_exit(&inner, body);
    return asyncio_taskgroup_exit(&outer, r->extra_rc);
}

static void tg_nested_finish(struct race *r)
{
    RCHECK_INT(r, r->extra_rc, has(r, 'a') ? -EIO : -ECANCELED);
    tg_body_finish(r);
}

static const struct scenario sc_tg_nested = {
    .name = "nested task groups", .flags = A_IN_WAIT | A_DEFERRED, .setup = tg_body_setup,
    .wait = tg_nested_wait, .finish = tg_nested_finish, .expect = tg_body_expect,
};

/* The outer group's child fails while T waits in the inner group's exit for
 * a child that only ends when cancelled: the outer group's cancellation of
 * T reaches the inner group as one from outside it (it aborts), but not
 * the outer group, which reports the failure. */
static int wait_forever(void *arg, void **result)
{
    (void)result;
    return asyncio_await(arg, NULL);
}

static int tg_outer_fail_wait(struct race *r, double timeout)
{
    (void)timeout;
    asyncio_taskgroup_t outer, inner;
    CHECK_INT(asyncio_taskgroup_enter(&outer), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&outer, &r->pa.task, performer, &r->pa, NULL), 0);
    CHECK_INT(asyncio_taskgroup_enter(&inner), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&inner, NULL, wait_forever, r->f[0], NULL), 0);
    r->extra_rc = asyncio_taskgroup_exit(&inner, 0);
    return asyncio_taskgroup_exit(&outer, r->extra_rc);
}

static void tg_outer_fail_finish(struct race *r)
{
    RCHECK_INT(r, r->extra_rc, -ECANCELED);
    tg_body_finish(r);
}

static const struct scenario sc_tg_outer_fail = {
    .name = "nested task groups, the outer child fails", .flags = A_IN_WAIT | A_DEFERRED,
    .setup = tg_body_setup, .wait = tg_outer_fail_wait, .finish = tg_outer_fail_finish,
    .expect = tg_body_expect,
};

static void test_task_group_body_cancelled_by_a_failure_an_outside_cancel_and_a_timeout_at_once(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_tg_body, &sc_tg_nested, &sc_tg_outer_fail);
}

/* ---- locks, events, conditions, semaphores, barriers ------------------------- */

/* Lock: held by the driver; (a) is its release, handed to T; a second
 * waiter queues behind T. */

static void lock_setup(struct race *r)
{
    CHECK_INT(asyncio_lock_init(&r->lock), 0);
    CHECK_INT(asyncio_lock_acquire(&r->lock), 0);
}

static int lock_helper(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    r->helper_rc = asyncio_lock_acquire(&r->lock);
    if (r->helper_rc == 0)
        CHECK_INT(asyncio_lock_release(&r->lock), 0);
    return 0;
}

static int lock_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_lock_acquire(&r->lock);
}

/* T holds the lock exactly when its acquire returned 0; else a release
 * that came went to the waiter behind it. */
static void lock_after(struct race *r, int rc)
{
    if (rc == 0) {
        RCHECK_INT(r, asyncio_lock_locked(&r->lock), 1);
        RCHECK_STATE(r, r->helper, "waiting");
        CHECK_INT(asyncio_lock_release(&r->lock), 0); /* to the helper */
    } else if (has(r, 'a')) {
        /* Handed to the helper, which has not run: unlocked as asyncio
         * sees it, and not ours to release. */
        RCHECK_INT(r, asyncio_lock_locked(&r->lock), 0);
        RCHECK_INT(r, asyncio_lock_release(&r->lock), -EPERM);
        RCHECK_STATE(r, r->helper, "ready");
    } else {
        RCHECK_STATE(r, r->helper, "waiting");
    }
}

static void lock_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_lock_release(&r->lock), 0);
}

static void lock_finish(struct race *r)
{
    await_bounded(r, r->helper, "the helper");
    RCHECK_INT(r, r->helper_rc, 0);
    RCHECK_INT(r, asyncio_lock_locked(&r->lock), 0);
    RCHECK_INT(r, asyncio_lock_destroy(&r->lock), 0);
}

static const struct scenario sc_lock = {
    .name = "lock", .ok = 0, .setup = lock_setup, .helper = lock_helper,
    .wait = lock_wait, .after = lock_after, .do_a = lock_do_a, .finish = lock_finish,
};

static void test_lock_handed_over_is_kept_and_a_cancel_after_it_goes_to_the_next_wait(void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_lock);
}

/* Event: (a) is set; a second waiter must be woken too. */

static void event_setup(struct race *r)
{
    CHECK_INT(asyncio_event_init(&r->event), 0);
}

static int event_helper(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    r->helper_rc = asyncio_event_wait(&r->event);
    return 0;
}

static int event_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_event_wait(&r->event);
}

static void event_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_event_set(&r->event), 0);
}

static void event_finish(struct race *r)
{
    await_bounded(r, r->helper, "the helper");
    RCHECK_INT(r, r->helper_rc, 0);
    RCHECK_INT(r, asyncio_event_is_set(&r->event), 1);
    RCHECK_INT(r, asyncio_event_destroy(&r->event), 0);
}

static const struct scenario sc_event = {
    .name = "event", .ok = 0, .setup = event_setup, .helper = event_helper,
    .wait = event_wait, .do_a = event_do_a, .finish = event_finish,
};

static void test_event_wait_reports_a_cancel_that_comes_with_the_set_in_any_order(void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_event);
}

/* Condition: T and a second waiter wait; (a) is notify(1), made by a task
 * that takes the lock, notifies and lets go. */

static void cond_setup(struct race *r)
{
    CHECK_INT(asyncio_condition_init(&r->cond, NULL), 0);
}

static int cond_helper(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    CHECK_INT(asyncio_condition_acquire(&r->cond), 0);
    r->helper_rc = asyncio_condition_wait(&r->cond);
    CHECK_INT(asyncio_condition_release(&r->cond), 0);
    return 0;
}

static int cond_wait(struct race *r, double timeout)
{
    (void)timeout;
    CHECK_INT(asyncio_condition_acquire(&r->cond), 0);
    return asyncio_condition_wait(&r->cond);
}

/* T holds the lock whatever its wait returned; a notification it did not
 * return with went to the waiter behind it. */
static void cond_after(struct race *r, int rc)
{
    RCHECK_INT(r, asyncio_condition_locked(&r->cond), 1);
    if (rc != 0 && has(r, 'a'))
        RCHECK_STATE(r, r->helper, "ready");
    else
        RCHECK_STATE(r, r->helper, "waiting");
    CHECK_INT(asyncio_condition_release(&r->cond), 0);
}

static void cond_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_condition_acquire(&r->cond), 0); /* free: no wait */
    int n = asyncio_condition_notify(&r->cond, 1);
    RCHECK(r, n == 0 || n == 1);
    RCHECK_INT(r, asyncio_condition_release(&r->cond), 0);
}

static void cond_finish(struct race *r)
{
    if (is_waiting(r->helper)) {
        /* Nobody gave it a notification: one more, once. */
        CHECK_INT(asyncio_condition_acquire(&r->cond), 0);
        CHECK_INT(asyncio_condition_notify(&r->cond, 1), 1);
        CHECK_INT(asyncio_condition_release(&r->cond), 0);
    }
    await_bounded(r, r->helper, "the helper");
    RCHECK_INT(r, r->helper_rc, 0);
    RCHECK_INT(r, asyncio_condition_destroy(&r->cond), 0);
}

static const struct scenario sc_cond = {
    .name = "condition", .ok = 0, .setup = cond_setup, .helper = cond_helper,
    .wait = cond_wait, .after = cond_after, .do_a = cond_do_a, .finish = cond_finish,
};

static void test_condition_wait_passes_on_a_notification_it_does_not_return_with_in_any_order(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_cond);
}

/* Condition, the second half of the wait: T was notified, and waits to get
 * the lock back from the task that notified it, which keeps it. Nothing but
 * the lock ends that wait (asyncio's rule): (a) is its release, handed to
 * T; a cancellation or a deadline that comes meanwhile is reported by the
 * wait when it returns, the lock held. */

static int cond_notifier(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    CHECK_INT(asyncio_condition_acquire(&r->cond), 0);
    r->helper_rc = asyncio_condition_notify(&r->cond, 1);
    CHECK_INT(asyncio_await(r->f[0], NULL), 0); /* keeps the lock meanwhile */
    return 0;
}

static void cond_relock_setup(struct race *r)
{
    cond_setup(r);
    r->f[0] = tu_future();
}

/* T was woken by the notification and parked again, for the lock. */
static bool cond_relock_ready(struct race *r)
{
    return r->helper_rc == 1 && is_waiting(r->T) && is_waiting(r->helper);
}

static void cond_relock_after(struct race *r, int rc)
{
    (void)rc;
    RCHECK_INT(r, asyncio_condition_locked(&r->cond), 1);
    CHECK_INT(asyncio_condition_release(&r->cond), 0);
}

static void cond_relock_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_condition_release(&r->cond), 0); /* the notifier's */
}

static void cond_relock_expect(const struct race *r, struct expect *e)
{
    e->w = has(r, 'b') ? -ECANCELED : has(r, 'c') ? -ETIMEDOUT : 0;
    e->expired = e->w == -ETIMEDOUT;
}

static void cond_relock_finish(struct race *r)
{
    CHECK_INT(asyncio_future_set_result(r->f[0], NULL), 0);
    await_bounded(r, r->helper, "the notifier");
    RCHECK_INT(r, asyncio_condition_locked(&r->cond), 0);
    RCHECK_INT(r, asyncio_condition_destroy(&r->cond), 0);
    asyncio_future_release(r->f[0]);
}

static const struct scenario sc_cond_relock = {
    .name = "condition, getting the lock back", .flags = NEED_A, .ok = 0,
    .setup = cond_relock_setup, .helper = cond_notifier, .wait = cond_wait,
    .after = cond_relock_after, .do_a = cond_relock_do_a, .finish = cond_relock_finish,
    .expect = cond_relock_expect, .ready = cond_relock_ready,
};

static void test_condition_wait_getting_its_lock_back_reports_a_cancel_or_timeout_that_came_meanwhile(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_cond_relock);
}

/* Semaphore at 0: (a) is a release, handed to T; a second waiter queues
 * behind it. Permits are neither lost nor made. */

static void sem_setup(struct race *r)
{
    CHECK_INT(asyncio_semaphore_init(&r->sem, 0), 0);
}

static int sem_helper(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    r->helper_rc = asyncio_semaphore_acquire(&r->sem);
    if (r->helper_rc == 0)
        CHECK_INT(asyncio_semaphore_release(&r->sem), 0);
    return 0;
}

static int sem_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_semaphore_acquire(&r->sem);
}

static void sem_after(struct race *r, int rc)
{
    RCHECK_INT(r, asyncio_semaphore_value(&r->sem), 0);
    if (rc == 0) {
        RCHECK_STATE(r, r->helper, "waiting");
        CHECK_INT(asyncio_semaphore_release(&r->sem), 0);
    } else if (has(r, 'a')) {
        RCHECK_STATE(r, r->helper, "ready");
    } else {
        RCHECK_STATE(r, r->helper, "waiting");
    }
}

static void sem_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_semaphore_release(&r->sem), 0);
}

static void sem_finish(struct race *r)
{
    await_bounded(r, r->helper, "the helper");
    RCHECK_INT(r, r->helper_rc, 0);
    RCHECK_INT(r, asyncio_semaphore_value(&r->sem), 1); /* the one permit released */
    RCHECK_INT(r, asyncio_semaphore_destroy(&r->sem), 0);
}

static const struct scenario sc_sem = {
    .name = "semaphore", .ok = 0, .setup = sem_setup, .helper = sem_helper,
    .wait = sem_wait, .after = sem_after, .do_a = sem_do_a, .finish = sem_finish,
};

static void test_semaphore_permit_handed_over_is_kept_and_one_released_to_a_cancelled_waiter_goes_on(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_sem);
}

/* Barrier of 2: (a) is the last party's arrival. A task that leaves
 * cancelled or timed out does not break the barrier. */

static void barrier_setup(struct race *r)
{
    CHECK_INT(asyncio_barrier_init(&r->barrier, 2), 0);
}

static int barrier_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_barrier_wait(&r->barrier);
}

static void barrier_do_a(struct race *r)
{
    int rc = asyncio_barrier_wait(&r->barrier);
    if (!r->late)
        RCHECK_INT(r, rc, 1); /* the last: it passes, T counted */
    else
        RCHECK(r, rc >= 0);
}

static int barrier_party(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    r->helper_rc = asyncio_barrier_wait(&r->barrier);
    return 0;
}

static void barrier_finish(struct race *r)
{
    if (!has(r, 'a')) {
        /* (a) arrived after T left: a round of its own needs one more. */
        asyncio_task_t *t = tu_spawn(barrier_party, r, "party");
        asyncio_await(t, NULL);
        asyncio_task_release(t);
        RCHECK_INT(r, r->helper_rc, 1);
    }
    asyncio_await(r->pa.task, NULL);
    RCHECK_INT(r, asyncio_barrier_broken(&r->barrier), 0);
    RCHECK_INT(r, asyncio_barrier_n_waiting(&r->barrier), 0);
    RCHECK_INT(r, asyncio_barrier_destroy(&r->barrier), 0);
}

static const struct scenario sc_barrier = {
    .name = "barrier", .ok = 0, .setup = barrier_setup, .wait = barrier_wait,
    .do_a = barrier_do_a, .finish = barrier_finish,
};

static void test_barrier_wait_cancelled_or_timed_out_as_the_last_party_comes_leaves_it_unbroken(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_barrier);
}

/* ---- queues ---------------------------------------------------------------- */

/* get: (a) is a put, which wakes T; a second getter waits behind it. As in
 * asyncio nothing is handed over: T takes the item when it runs, or, if a
 * cancellation reached it first, takes nothing and wakes the next getter.
 * The item reaches exactly one of them. */

static void queue_setup(struct race *r)
{
    CHECK_INT(asyncio_queue_init(&r->q, 0), 0);
}

static int getter_helper(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    r->helper_rc = asyncio_queue_get(&r->q, &r->helper_item);
    return 0;
}

static int get_wait(struct race *r, double timeout)
{
    (void)timeout;
    r->res = NULL;
    return asyncio_queue_get(&r->q, &r->res);
}

static void get_after(struct race *r, int rc)
{
    if (rc == 0) {
        RCHECK(r, r->res == &g_a);
        RCHECK_STATE(r, r->helper, "waiting");
    } else {
        RCHECK(r, r->res == NULL);
        RCHECK_STATE(r, r->helper, has(r, 'a') ? "ready" : "waiting");
    }
}

static void get_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_queue_put_nowait(&r->q, &g_a), 0);
}

static void get_finish(struct race *r)
{
    if (is_waiting(r->helper))
        CHECK_INT(asyncio_queue_put_nowait(&r->q, &g_y), 0);
    await_bounded(r, r->helper, "the helper");
    RCHECK_INT(r, r->helper_rc, 0);
    /* The item went to T or to the helper, never to both nor to nobody. */
    RCHECK_INT(r, (r->w_rc == 0 && r->res == &g_a) + (r->helper_item == &g_a), 1);
    RCHECK_INT(r, asyncio_queue_size(&r->q), 0);
    RCHECK_INT(r, asyncio_queue_destroy(&r->q), 0);
}

static const struct scenario sc_get = {
    .name = "queue get", .ok = 0, .setup = queue_setup,
    .helper = getter_helper, .wait = get_wait, .after = get_after, .do_a = get_do_a,
    .finish = get_finish,
};

static void test_queue_item_a_woken_getter_did_not_take_goes_to_the_next(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_get);
}

/* put into a full queue (maxsize 1): (a) is a get, whose room wakes T; a
 * second putter waits behind it, and gets the room if T does not take it. */

static void put_setup(struct race *r)
{
    CHECK_INT(asyncio_queue_init(&r->q, 1), 0);
    CHECK_INT(asyncio_queue_put_nowait(&r->q, &g_i0), 0);
}

static int putter_helper(void *arg, void **result)
{
    (void)result;
    struct race *r = arg;
    r->helper_rc = asyncio_queue_put(&r->q, &g_y);
    return 0;
}

static int put_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_queue_put(&r->q, &g_b);
}

static void put_after(struct race *r, int rc)
{
    /* T's item in, or i0 still there (no get came), or the room left. */
    RCHECK_INT(r, asyncio_queue_size(&r->q), rc == 0 || !has(r, 'a') ? 1 : 0);
    if (rc == 0)
        RCHECK_STATE(r, r->helper, "waiting");
    else
        RCHECK_STATE(r, r->helper, has(r, 'a') ? "ready" : "waiting");
}

static void put_do_a(struct race *r)
{
    void *item = NULL;
    RCHECK_INT(r, asyncio_queue_get_nowait(&r->q, &item), 0);
    RCHECK(r, item == &g_i0);
}

static void put_finish(struct race *r)
{
    /* Take everything: the helper's item once, T's only if its put said so. */
    int ts = 0, ys = 0, others = 0;
    for (int round = 0; round < 2; round++) {
        void *item;
        while (asyncio_queue_get_nowait(&r->q, &item) == 0) {
            ts += item == &g_b;
            ys += item == &g_y;
            others += item != &g_b && item != &g_y;
        }
        await_bounded(r, r->helper, "the helper");
    }
    RCHECK_INT(r, r->helper_rc, 0);
    RCHECK_INT(r, ts, r->w_rc == 0);
    RCHECK_INT(r, ys, 1);
    RCHECK_INT(r, others, 0);
    RCHECK_INT(r, asyncio_queue_destroy(&r->q), 0);
}

static const struct scenario sc_put = {
    .name = "queue put", .ok = 0, .setup = put_setup,
    .helper = putter_helper, .wait = put_wait, .after = put_after, .do_a = put_do_a,
    .finish = put_finish,
};

static void test_queue_room_a_woken_putter_did_not_take_goes_to_the_next(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_put);
}

/* join: (a) is the last task_done; join has nothing to hand over. */

static void join_setup(struct race *r)
{
    void *item;
    CHECK_INT(asyncio_queue_init(&r->q, 0), 0);
    CHECK_INT(asyncio_queue_put_nowait(&r->q, &g_i0), 0);
    CHECK_INT(asyncio_queue_get_nowait(&r->q, &item), 0);
}

static int join_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_queue_join(&r->q);
}

static void join_do_a(struct race *r)
{
    RCHECK_INT(r, asyncio_queue_task_done(&r->q), 0);
}

static void join_finish(struct race *r)
{
    RCHECK_INT(r, asyncio_queue_task_done(&r->q), -EINVAL); /* counted once */
    RCHECK_INT(r, asyncio_queue_join(&r->q), 0);
    RCHECK_INT(r, asyncio_queue_destroy(&r->q), 0);
}

static const struct scenario sc_join = {
    .name = "queue join", .ok = 0, .setup = join_setup, .wait = join_wait,
    .do_a = join_do_a, .finish = join_finish,
};

static void test_queue_join_reports_a_cancel_that_comes_with_the_last_task_done_in_any_order(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_join);
}

/* ---- streams, sockets, fds ------------------------------------------------- */

static void write_all(struct race *r, int fd, const char *s)
{
    size_t n = strlen(s);
    RCHECK_INT(r, write(fd, s, n), (long long)n);
}

/* Read fd until it would block: how many junk bytes ('j') came, and add
 * the 'T' bytes to *ts. */
static size_t drain(int fd, size_t *ts)
{
    char b[4096];
    size_t junk = 0;
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            junk += b[i] == 'j';
            *ts += b[i] == 'T';
        }
    return junk;
}

/* A stream over one end of a socketpair, the raw peer in fd[1]. */
static void stream_setup(struct race *r)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_INT(asyncio_stream_open(&r->stream, sv[0], 0), 0);
    r->fd[1] = sv[1];
}

static void stream_end(struct race *r)
{
    CHECK_INT(asyncio_stream_close(r->stream), 0);
    close(r->fd[1]);
}

static int stream_read_wait(struct race *r, double timeout)
{
    (void)timeout;
    return (int)asyncio_stream_read(r->stream, r->buf, sizeof r->buf);
}

static void stream_do_a(struct race *r)
{
    write_all(r, r->fd[1], "hello");
}

/* The bytes T did not return are still in the stream. */
static void stream_read_finish(struct race *r)
{
    if (r->w_rc != 5) {
        memset(r->buf, 0, sizeof r->buf);
        RCHECK_INT(r, asyncio_stream_read(r->stream, r->buf, sizeof r->buf), 5);
    }
    RCHECK(r, memcmp(r->buf, "hello", 5) == 0);
    stream_end(r);
}

static const struct scenario sc_stream_read = {
    .name = "stream read", .flags = A_DEFERRED, .ok = 5, .setup = stream_setup, .wait = stream_read_wait,
    .do_a = stream_do_a, .finish = stream_read_finish,
};

/* readexactly with part of what it needs already read: cut short, it puts
 * that part back. */
static void readexactly_setup(struct race *r)
{
    stream_setup(r);
    write_all(r, r->fd[1], "abc");
}

static int readexactly_wait(struct race *r, double timeout)
{
    (void)timeout;
    return (int)asyncio_stream_readexactly(r->stream, r->buf, 8);
}

static void readexactly_finish(struct race *r)
{
    if (r->w_rc != 8) {
        memset(r->buf, 0, sizeof r->buf);
        RCHECK_INT(r, asyncio_stream_readexactly(r->stream, r->buf, 8), 8);
    }
    RCHECK(r, memcmp(r->buf, "abchello", 8) == 0);
    stream_end(r);
}

static const struct scenario sc_readexactly = {
    .name = "stream readexactly", .flags = A_DEFERRED, .ok = 8, .setup = readexactly_setup,
    .wait = readexactly_wait, .do_a = stream_do_a, .finish = readexactly_finish,
};

/* readline with part of the line already in the stream's buffer. */
static void readline_setup(struct race *r)
{
    stream_setup(r);
    write_all(r, r->fd[1], "ab");
}

static int readline_wait(struct race *r, double timeout)
{
    (void)timeout;
    return (int)asyncio_stream_readline(r->stream, r->buf, sizeof r->buf);
}

static void readline_do_a(struct race *r)
{
    write_all(r, r->fd[1], "c\n");
}

static void readline_finish(struct race *r)
{
    if (r->w_rc != 4) {
        memset(r->buf, 0, sizeof r->buf);
        RCHECK_INT(r, asyncio_stream_readline(r->stream, r->buf, sizeof r->buf), 4);
    }
    RCHECK(r, memcmp(r->buf, "abc\n", 4) == 0);
    stream_end(r);
}

static const struct scenario sc_readline = {
    .name = "stream readline", .flags = A_DEFERRED, .ok = 4, .setup = readline_setup,
    .wait = readline_wait, .do_a = readline_do_a, .finish = readline_finish,
};

/* drain: the socket is full and 100 bytes are queued past the high water
 * mark; (a) is the peer reading what fills the socket. Cut short, drain
 * leaves the bytes queued, and they are sent all the same. */
static void drain_setup(struct race *r)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    char chunk[100];
    memset(chunk, 'j', sizeof chunk);
    ssize_t n;
    while ((n = write(sv[0], chunk, sizeof chunk)) > 0)
        r->junk += (size_t)n;
    CHECK_INT(asyncio_stream_open(&r->stream, sv[0], 0), 0);
    CHECK_INT(asyncio_stream_set_write_buffer_limits(r->stream, 10, 0), 0);
    r->fd[1] = sv[1];
}

static int drain_wait(struct race *r, double timeout)
{
    (void)timeout;
    memset(r->buf, 'T', 100);
    CHECK_INT(asyncio_stream_write(r->stream, r->buf, 100), 0);
    return asyncio_stream_drain(r->stream);
}

static void drain_do_a(struct race *r)
{
    size_t ts = 0;
    r->junk -= drain(r->fd[1], &ts);
}

static void drain_finish(struct race *r)
{
    size_t ts = 0;
    for (int i = 0; i < 100 && ts < 100; i++) {
        r->junk -= drain(r->fd[1], &ts);
        tu_yield(1);
    }
    RCHECK_INT(r, r->junk, 0);
    RCHECK_INT(r, ts, 100);
    RCHECK_INT(r, asyncio_stream_write_buffer_size(r->stream), 0);
    stream_end(r);
}

static const struct scenario sc_drain = {
    .name = "stream drain", .flags = A_DEFERRED, .ok = 0, .setup = drain_setup,
    .wait = drain_wait, .do_a = drain_do_a, .finish = drain_finish,
};

static void test_stream_read_cut_short_by_a_cancel_or_timeout_as_data_comes_loses_no_bytes(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_stream_read, &sc_readexactly, &sc_readline, &sc_drain);
}

/* sock_recv and sock_recvfrom over a socketpair. */

static void sock_setup_type(struct race *r, int type)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_INT(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    r->fd[0] = sv[0];
    r->fd[1] = sv[1];
}

static void sock_stream_setup(struct race *r)
{
    sock_setup_type(r, SOCK_STREAM);
}

static void sock_dgram_setup(struct race *r)
{
    sock_setup_type(r, SOCK_DGRAM);
}

static int recv_wait(struct race *r, double timeout)
{
    (void)timeout;
    return (int)asyncio_sock_recv(r->fd[0], r->buf, sizeof r->buf);
}

static int recvfrom_wait(struct race *r, double timeout)
{
    (void)timeout;
    return (int)asyncio_sock_recvfrom(r->fd[0], r->buf, sizeof r->buf, NULL, NULL);
}

static void sock_finish(struct race *r)
{
    if (r->w_rc != 5) {
        memset(r->buf, 0, sizeof r->buf);
        RCHECK_INT(r, asyncio_sock_recv(r->fd[0], r->buf, sizeof r->buf), 5);
    }
    RCHECK(r, memcmp(r->buf, "hello", 5) == 0);
    CHECK_INT(asyncio_close(r->fd[0]), 0);
    close(r->fd[1]);
}

static const struct scenario sc_recv = {
    .name = "sock_recv", .flags = A_DEFERRED, .ok = 5, .setup = sock_stream_setup, .wait = recv_wait,
    .do_a = stream_do_a, .finish = sock_finish,
};

static const struct scenario sc_recvfrom = {
    .name = "sock_recvfrom", .flags = A_DEFERRED, .ok = 5, .setup = sock_dgram_setup, .wait = recvfrom_wait,
    .do_a = stream_do_a, .finish = sock_finish,
};

/* sock_accept on a listening Unix socket: (a) is a client's connect. */

static void accept_setup(struct race *r)
{
    static unsigned n;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(r->path, sizeof r->path, "/tmp/test_races.%ld.%u", (long)getpid(), n++);
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", r->path);
    unlink(r->path);
    r->fd[0] = asyncio_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(r->fd[0] >= 0);
    CHECK_INT(bind(r->fd[0], (struct sockaddr *)&sun, sizeof sun), 0);
    CHECK_INT(listen(r->fd[0], 8), 0);
}

static int accept_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_sock_accept(r->fd[0], NULL, NULL);
}

static void accept_after(struct race *r, int rc)
{
    (void)r;
    if (rc >= 0)
        CHECK_INT(asyncio_close(rc), 0);
}

static void accept_do_a(struct race *r)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", r->path);
    r->client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    RCHECK_INT(r, connect(r->client, (struct sockaddr *)&sun, sizeof sun), 0);
}

/* A connection T did not take waits in the backlog for the next accept. */
static void accept_finish(struct race *r)
{
    if (r->w_rc < 0) {
        int c = asyncio_sock_accept(r->fd[0], NULL, NULL);
        RCHECK(r, c >= 0);
        if (c >= 0)
            CHECK_INT(asyncio_close(c), 0);
    }
    close(r->client);
    CHECK_INT(asyncio_close(r->fd[0]), 0);
    unlink(r->path);
}

static const struct scenario sc_accept = {
    .name = "sock_accept", .flags = OK_NONNEG | A_DEFERRED, .setup = accept_setup, .wait = accept_wait,
    .after = accept_after, .do_a = accept_do_a, .finish = accept_finish,
};

/* sock_sendall into a full socket: (a) is the peer reading it all. Cut
 * short before it could send, it sent nothing. */

static void sendall_setup(struct race *r)
{
    sock_setup_type(r, SOCK_STREAM);
    CHECK_INT(fcntl(r->fd[1], F_SETFL, O_NONBLOCK), 0);
    char chunk[100];
    memset(chunk, 'j', sizeof chunk);
    ssize_t n;
    while ((n = write(r->fd[0], chunk, sizeof chunk)) > 0)
        r->junk += (size_t)n;
}

static int sendall_wait(struct race *r, double timeout)
{
    (void)timeout;
    memset(r->buf, 'T', 100);
    return (int)asyncio_sock_sendall(r->fd[0], r->buf, 100);
}

static void sendall_do_a(struct race *r)
{
    size_t ts = 0;
    r->junk -= drain(r->fd[1], &ts);
    RCHECK_INT(r, ts, 0);
}

static void sendall_finish(struct race *r)
{
    size_t ts = 0;
    r->junk -= drain(r->fd[1], &ts);
    RCHECK_INT(r, r->junk, 0);
    RCHECK_INT(r, ts, r->w_rc == 100 ? 100 : 0);
    CHECK_INT(asyncio_close(r->fd[0]), 0);
    close(r->fd[1]);
}

static const struct scenario sc_sendall = {
    .name = "sock_sendall", .flags = A_DEFERRED, .ok = 100, .setup = sendall_setup, .wait = sendall_wait,
    .do_a = sendall_do_a, .finish = sendall_finish,
};

static void test_sock_calls_cut_short_as_they_are_satisfied_leave_data_and_connections_in_place(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_recv, &sc_recvfrom, &sc_accept, &sc_sendall);
}

/* wait_readable / wait_writable on a pipe. */

static void pipe_setup(struct race *r)
{
    CHECK_INT(pipe(r->fd), 0);
    CHECK_INT(fcntl(r->fd[0], F_SETFL, O_NONBLOCK), 0);
    CHECK_INT(fcntl(r->fd[1], F_SETFL, O_NONBLOCK), 0);
}

static int readable_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_wait_readable(r->fd[0]);
}

static void pipe_end(struct race *r)
{
    CHECK_INT(asyncio_forget_fd(r->fd[0]), 0);
    CHECK_INT(asyncio_forget_fd(r->fd[1]), 0);
    close(r->fd[0]);
    close(r->fd[1]);
}

/* A wait for readiness takes nothing: the byte is still there. */
static void readable_finish(struct race *r)
{
    char c = 0;
    RCHECK_INT(r, read(r->fd[0], &c, 1), 1);
    RCHECK_INT(r, c, 'h');
    pipe_end(r);
}

static const struct scenario sc_readable = {
    .name = "wait_readable", .flags = A_DEFERRED, .ok = 0, .setup = pipe_setup, .wait = readable_wait,
    .do_a = stream_do_a, .finish = readable_finish,
};

static void writable_setup(struct race *r)
{
    pipe_setup(r);
    char chunk[4096];
    memset(chunk, 'j', sizeof chunk);
    ssize_t n;
    while ((n = write(r->fd[1], chunk, sizeof chunk)) > 0)
        r->junk += (size_t)n;
}

static int writable_wait(struct race *r, double timeout)
{
    (void)timeout;
    return asyncio_wait_writable(r->fd[1]);
}

static void writable_do_a(struct race *r)
{
    size_t ts = 0;
    r->junk -= drain(r->fd[0], &ts);
}

static void writable_finish(struct race *r)
{
    RCHECK_INT(r, r->junk, 0);
    pipe_end(r);
}

static const struct scenario sc_writable = {
    .name = "wait_writable", .flags = A_DEFERRED, .ok = 0, .setup = writable_setup, .wait = writable_wait,
    .do_a = writable_do_a, .finish = writable_finish,
};

static void test_fd_waits_report_a_cancel_or_timeout_that_comes_with_readiness_in_any_order(
    void **state)
{
    (void)state;
    RUN_SCENARIOS(&sc_readable, &sc_writable);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_await_reports_a_cancel_that_comes_with_the_result_in_any_order_and_the_future_keeps_it),
        cmocka_unit_test(test_await_of_a_task_reports_a_cancel_that_comes_with_its_end_and_the_task_keeps_its_result),
        cmocka_unit_test(test_gather_reports_a_cancel_or_timeout_that_comes_with_its_last_child_in_any_order),
        cmocka_unit_test(test_gather_reports_a_cancel_or_timeout_that_comes_with_a_failure_and_leaves_the_rest_running),
        cmocka_unit_test(test_wait_for_own_timeout_and_a_cancel_with_the_result_follow_the_first_to_come),
        cmocka_unit_test(test_wait_counts_what_is_done_on_its_own_timeout_and_reports_a_cancel_in_any_order),
        cmocka_unit_test(test_as_completed_keeps_a_future_that_finished_with_a_cancel_or_timeout_for_the_next_call),
        cmocka_unit_test(test_task_group_exit_reports_a_cancel_or_timeout_that_comes_with_its_last_child),
        cmocka_unit_test(test_task_group_exit_reports_a_child_failure_that_comes_with_a_cancel_or_timeout),
        cmocka_unit_test(test_task_group_body_cancelled_by_a_failure_an_outside_cancel_and_a_timeout_at_once),
        cmocka_unit_test(test_lock_handed_over_is_kept_and_a_cancel_after_it_goes_to_the_next_wait),
        cmocka_unit_test(test_event_wait_reports_a_cancel_that_comes_with_the_set_in_any_order),
        cmocka_unit_test(test_condition_wait_passes_on_a_notification_it_does_not_return_with_in_any_order),
        cmocka_unit_test(test_condition_wait_getting_its_lock_back_reports_a_cancel_or_timeout_that_came_meanwhile),
        cmocka_unit_test(test_semaphore_permit_handed_over_is_kept_and_one_released_to_a_cancelled_waiter_goes_on),
        cmocka_unit_test(test_barrier_wait_cancelled_or_timed_out_as_the_last_party_comes_leaves_it_unbroken),
        cmocka_unit_test(test_queue_item_a_woken_getter_did_not_take_goes_to_the_next),
        cmocka_unit_test(test_queue_room_a_woken_putter_did_not_take_goes_to_the_next),
        cmocka_unit_test(test_queue_join_reports_a_cancel_that_comes_with_the_last_task_done_in_any_order),
        cmocka_unit_test(test_stream_read_cut_short_by_a_cancel_or_timeout_as_data_comes_loses_no_bytes),
        cmocka_unit_test(test_sock_calls_cut_short_as_they_are_satisfied_leave_data_and_connections_in_place),
        cmocka_unit_test(test_fd_waits_report_a_cancel_or_timeout_that_comes_with_readiness_in_any_order),
    };
    return tu_run_group_tests_name("races", tests, NULL, NULL);
}
