/* Debug mode, the exception handler, and task counters (<asyncio/debug.h>).
 *
 * Off, the loop pays one test of loop->instr per task step and wake-up.
 * On, each task gets a struct task_info (task.h): where it was made, who
 * made it, and its counters, advanced at each change of phase:
 *
 *   created/woken  -> READY    task_info_created(), task_info_ready()
 *   resumed        -> RUNNING  task_info_step_begin()
 *   parks          -> WAITING  task_info_step_end() (READY if already woken)
 *
 * A slow step is found at its end, on the task's own stack, in the middle
 * of parking: the report is made there but handed to the handler from a
 * callback, so that the handler runs from the loop, as every report's does.
 */
#include "task.h"
#include "clock.h"
#include "thread.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOW_DEFAULT_NS 100000000u /* asyncio's slow_callback_duration, 0.1 s */

/* An environment variable that turns something on: set, not empty, not "0". */
static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Process-wide (debug.h): loops are numbered from 1 as they are made. */
static atomic_uintptr_t loops_made;

int debug_init(struct loop *loop)
{
    loop->debug.id = atomic_fetch_add_explicit(&loops_made, 1, memory_order_relaxed) + 1;
    loop->debug.slow_ns = SLOW_DEFAULT_NS;
    int debug = loop->opts ? loop->opts->debug : 0;
    bool on = debug > 0 || (debug == 0 && env_on("ASYNCIO_DEBUG"));
    loop_set_instr(loop, (on ? INSTR_DEBUG : 0) |
                             (env_on("ASYNCIO_TASK_COUNTERS") ? INSTR_COUNTERS : 0));
    return 0;
}

/* ---- origins --------------------------------------------------------------- */

/* Where code address pc is, as "function+0xOFF (file)", or as
 * "(file+0xOFF)" when the function has no dynamic symbol (a static one, or
 * an executable linked without -rdynamic): an offset addr2line takes. The
 * address is a return address: the call is the byte before it. */
static const char *origin_text(void *pc, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!pc)
        return NULL;
    uintptr_t at = (uintptr_t)pc - 1;
    Dl_info di;
    if (dladdr((void *)at, &di) && di.dli_fname) {
        if (di.dli_sname && di.dli_saddr)
            snprintf(buf, len, "%s+0x%" PRIxPTR " (%s)", di.dli_sname,
                     at - (uintptr_t)di.dli_saddr, di.dli_fname);
        else
            snprintf(buf, len, "(%s+0x%" PRIxPTR ")", di.dli_fname, at - (uintptr_t)di.dli_fbase);
    } else {
        snprintf(buf, len, "0x%" PRIxPTR, at);
    }
    return buf;
}

void *future_origin(const struct asyncio_future *f)
{
    if (f->is_task) {
        const struct task *t = (const struct task *)f;
        return t->info ? t->info->origin : NULL;
    }
    void *origin = NULL;
    if (f->traced)
        memcpy(&origin, f + 1, sizeof origin);
    return origin;
}

/* ---- reports --------------------------------------------------------------- */

void asyncio_loop_default_exception_handler(asyncio_loop_t *loop, const asyncio_report_t *report,
                                            void *arg)
{
    (void)loop, (void)arg;
    if (report && report->message)
        fprintf(stderr, "asyncio: %s\n", report->message);
}

/* Hand a report to loop's handler. The message is formatted here; " (created
 * at ORIGIN)" is added for a future whose origin is known. */
static void report(struct loop *loop, asyncio_report_kind_t kind, struct asyncio_future *f,
                   int status, double duration, const char *fmt, ...)
{
    char origin_buf[512], msg[1024];
    const char *origin = f ? origin_text(future_origin(f), origin_buf, sizeof origin_buf) : NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof msg && origin)
        snprintf(msg + n, sizeof msg - (size_t)n, " (created at %s)", origin);
    asyncio_report_t r = {.kind = kind,
                          .message = msg,
                          .future = f,
                          .status = status,
                          .duration = duration,
                          .origin = origin};
    asyncio_exception_handler h = loop->debug.handler;
    if (h)
        h(loop->threads.shared, &r, loop->debug.handler_arg);
    else
        asyncio_loop_default_exception_handler(loop->threads.shared, &r, NULL);
}

void debug_report_unretrieved(struct asyncio_future *f)
{
    if (f->is_task)
        report(f->loop, ASYNCIO_REPORT_NEVER_RETRIEVED, f, f->status, 0,
               "Task exception was never retrieved: task \"%s\" failed with %d (%s)",
               asyncio_task_name(f), f->status, strerror(-f->status));
    else
        report(f->loop, ASYNCIO_REPORT_NEVER_RETRIEVED, f, f->status, 0,
               "Future exception was never retrieved: failed with %d (%s)", f->status,
               strerror(-f->status));
}

void debug_callback_ran(struct loop *loop, uint64_t start_ns)
{
    uint64_t ns = clock_now_ns() - start_ns;
    if (ns > loop->debug.slow_ns)
        report(loop, ASYNCIO_REPORT_SLOW_CALLBACK, NULL, 0, (double)ns / 1e9,
               "Executing a callback took %.3f seconds", (double)ns / 1e9);
}

int debug_wrong_thread(struct loop *owner, const char *call)
{
    /* The report goes to the calling thread's loop, which runs here (the
     * owner's handler belongs to another thread); with none, to stderr. */
    struct loop *cur = loop_current();
    char msg[256];
    if (owner)
        snprintf(msg, sizeof msg,
                 "%s(): an object of another thread's loop, used from this thread: -EXDEV "
                 "(use asyncio_call_soon_threadsafe())", call);
    else
        snprintf(msg, sizeof msg,
                 "%s(): an object bound to another loop (or to a closed one), used from this "
                 "thread: -EXDEV", call);
    if (cur) {
        report(cur, ASYNCIO_REPORT_WRONG_THREAD, NULL, -EXDEV, 0, "%s", msg);
    } else {
        asyncio_report_t r = {.kind = ASYNCIO_REPORT_WRONG_THREAD, .message = msg, .status = -EXDEV};
        asyncio_loop_default_exception_handler(NULL, &r, NULL);
    }
    return -EXDEV;
}

void debug_closed_use(asyncio_loop_t *s, const char *call)
{
    if (call && atomic_load(&s->debug_closed)) {
        /* The loop's handler went with it: to stderr. */
        char msg[256];
        snprintf(msg, sizeof msg, "%s(): the loop is closed: -ESHUTDOWN", call);
        asyncio_report_t r = {.kind = ASYNCIO_REPORT_CLOSED_LOOP, .message = msg,
                              .status = -ESHUTDOWN};
        asyncio_loop_default_exception_handler(s, &r, NULL);
    }
}

/* A slow step, reported from the loop: the task's reference is held until
 * then. */
struct slow_step {
    struct asyncio_future *f;
    uint64_t ns;
};

static void slow_step_report(void *arg)
{
    struct slow_step *s = arg;
    struct task *t = (struct task *)s->f;
    if (t->info)
        t->info->slow_reported = false;
    report(s->f->loop, ASYNCIO_REPORT_SLOW_STEP, s->f, 0, (double)s->ns / 1e9,
           "Executing task \"%s\" took %.3f seconds", asyncio_task_name(s->f),
           (double)s->ns / 1e9);
    asyncio_future_release(s->f);
    free(s);
}

static void slow_step(struct task *t, uint64_t ns)
{
    struct slow_step *s = malloc(sizeof *s);
    if (!s) /* no memory to defer it: say it now, plainly */
        return (void)fprintf(stderr, "asyncio: Executing task \"%s\" took %.3f seconds\n",
                             asyncio_task_name(&t->fut), (double)ns / 1e9);
    s->f = asyncio_future_retain(&t->fut);
    s->ns = ns;
    if (asyncio_call_soon(slow_step_report, s, NULL) < 0) {
        asyncio_future_release(s->f);
        free(s);
        return;
    }
    t->info->slow_reported = true;
}

/* ---- task info ------------------------------------------------------------- */

static struct task_info *info_new(struct task *t)
{
    struct task_info *in = calloc(1, sizeof *in);
    if (in) {
        in->since = clock_now_ns();
        in->phase = INFO_READY;
    }
    return t->info = in;
}

void task_info_created(struct loop *loop, struct task *t, void *origin)
{
    struct task_info *in = info_new(t);
    if (!in)
        return; /* no report for it: its steps go unmeasured */
    in->origin = origin;
    in->parent = loop->current ? loop->current->serial : 0;
}

void task_info_step_begin(struct task *t)
{
    struct task_info *in = t->info ? t->info : info_new(t);
    if (!in)
        return;
    uint64_t now = clock_now_ns();
    if (in->phase == INFO_READY)
        in->ready_ns += now - in->since;
    else if (in->phase == INFO_WAITING)
        in->waiting_ns += now - in->since; /* woken unseen: counters turned on meanwhile */
    in->since = now;
    in->phase = INFO_RUNNING;
    in->steps++;
}

void task_info_step_end(struct loop *loop, struct task *t)
{
    struct task_info *in = t->info;
    if (!in || in->phase != INFO_RUNNING)
        return;
    uint64_t now = clock_now_ns(), ns = now - in->since;
    in->running_ns += ns;
    in->since = now;
    /* Woken already (a yield): it is ready, not waiting. */
    in->phase = t->queued ? INFO_READY : INFO_WAITING;
    if (loop_instr(loop) & INSTR_DEBUG && ns > loop->debug.slow_ns && !in->slow_reported)
        slow_step(t, ns);
}

void task_info_ready(struct task *t)
{
    struct task_info *in = t->info;
    if (!in || in->phase != INFO_WAITING)
        return; /* running (it woke itself: its step's end sees it), or unknown */
    uint64_t now = clock_now_ns();
    in->waiting_ns += now - in->since;
    in->since = now;
    in->phase = INFO_READY;
}

/* ---- at close ---------------------------------------------------------------- */

void debug_term(struct loop *loop)
{
    if (!(loop_instr(loop) & INSTR_DEBUG))
        return;
    /* What is left on the list after the wind-down is held by the program
     * (every task has finished; the loop's own references are gone). */
    for (struct dlist *n = loop->tasks.all.next; n != &loop->tasks.all; n = n->next) {
        struct asyncio_future *f = container_of(n, struct asyncio_future, all);
        if (f->retrieved)
            continue;
        if (f->status < 0 && f->status != -ECANCELED)
            report(loop, ASYNCIO_REPORT_NEVER_AWAITED, f, f->status, 0,
                   "Task \"%s\" was never awaited nor released; it failed with %d (%s)",
                   asyncio_task_name(f), f->status, strerror(-f->status));
        else
            report(loop, ASYNCIO_REPORT_NEVER_AWAITED, f, f->status, 0,
                   "Task \"%s\" was never awaited nor released", asyncio_task_name(f));
        f->retrieved = true; /* said once: not again as never retrieved */
    }
}

/* ---- the public calls ---------------------------------------------------------- */

static int set_instr(asyncio_loop_t *s, unsigned bit, int enabled, const char *call)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, call);
    if (rc < 0)
        return rc;
    unsigned instr = loop_instr(loop);
    instr = enabled ? instr | bit : instr & ~bit;
    if (!instr != !loop_instr(loop))
        tasks_set_counted(loop, instr != 0);
    loop_set_instr(loop, instr);
    return 0;
}

int asyncio_loop_set_debug(asyncio_loop_t *s, int enabled)
{
    return set_instr(s, INSTR_DEBUG, enabled, __func__);
}

int asyncio_loop_get_debug(asyncio_loop_t *s)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    return rc < 0 ? rc : (loop_instr(loop) & INSTR_DEBUG) != 0;
}

int asyncio_loop_set_task_counters(asyncio_loop_t *s, int enabled)
{
    return set_instr(s, INSTR_COUNTERS, enabled, __func__);
}

int asyncio_loop_set_slow_callback_duration(asyncio_loop_t *s, double seconds)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    if (rc < 0)
        return rc;
    if (!(seconds > 0) || !isfinite(seconds) || seconds > 1e9)
        return -EINVAL;
    loop->debug.slow_ns = (uint64_t)(seconds * 1e9);
    return 0;
}

double asyncio_loop_get_slow_callback_duration(asyncio_loop_t *s)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    return rc < 0 ? (double)rc : (double)loop->debug.slow_ns / 1e9;
}

int asyncio_loop_set_exception_handler(asyncio_loop_t *s, asyncio_exception_handler handler,
                                       void *arg)
{
    struct loop *loop;
    int rc = loop_own(s, &loop, __func__);
    if (rc < 0)
        return rc;
    loop->debug.handler = handler;
    loop->debug.handler_arg = handler ? arg : NULL;
    return 0;
}

int asyncio_task_get_stats(const asyncio_task_t *task, asyncio_task_stats_t *out)
{
    struct task *t = task_of((asyncio_task_t *)task);
    if (!t || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->serial = t->serial;
    out->waiting_on = asyncio_task_waiting_on(task);
    const struct task_info *in = t->info;
    if (!in)
        return -ENOENT;
    origin_text(in->origin, out->origin, sizeof out->origin);
    out->parent = in->parent;
    out->steps = in->steps;
    out->running_ns = in->running_ns;
    out->ready_ns = in->ready_ns;
    out->waiting_ns = in->waiting_ns;
    if (t->state != TASK_DONE) { /* the present phase, so far */
        uint64_t ns = clock_now_ns() - in->since;
        if (in->phase == INFO_RUNNING)
            out->running_ns += ns;
        else if (in->phase == INFO_READY)
            out->ready_ns += ns;
        else if (in->phase == INFO_WAITING)
            out->waiting_ns += ns;
    }
    return 0;
}

/* ---- the call graph -------------------------------------------------------------- */

/* The unfinished tasks, in the order they were made, and who awaits whom:
 * a task hangs under the first (oldest) task that awaits it, directly,
 * through a gather or wait, or as the owner of its task group. */
struct graph {
    struct task **t;
    size_t n;
    size_t *parent;  /* index of the first awaiter, or n: none */
    size_t *extra;   /* how many more tasks await it */
    size_t *child;   /* first child, or n */
    size_t *sibling; /* next child of the same parent, or n */
};

static size_t graph_index(const struct graph *g, const struct task *t)
{
    size_t lo = 0, hi = g->n; /* by serial: the list is in the order made */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->t[mid]->serial < t->serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g->n && g->t[lo] == t ? lo : g->n;
}

/* Note awaiter a of task i. */
static void graph_awaiter(struct graph *g, size_t i, struct task *a)
{
    size_t j = a ? graph_index(g, a) : g->n;
    if (j == g->n || j == i)
        return;
    if (g->parent[i] == g->n || a->serial < g->t[g->parent[i]]->serial) {
        if (g->parent[i] != g->n)
            g->extra[i]++;
        g->parent[i] = j;
    } else {
        g->extra[i]++;
    }
}

static int graph_build(struct graph *g, struct loop *loop)
{
    size_t n = 0;
    for (struct dlist *d = loop->tasks.all.next; d != &loop->tasks.all; d = d->next)
        n += container_of(d, struct task, fut.all)->state != TASK_DONE;
    g->n = n;
    g->t = malloc((n ? n : 1) * sizeof *g->t);
    size_t *v = malloc((n ? n : 1) * 4 * sizeof *v);
    if (!g->t || !v) {
        free(g->t);
        free(v);
        return -ENOMEM;
    }
    g->parent = v, g->extra = v + n, g->child = v + 2 * n, g->sibling = v + 3 * n;
    size_t k = 0;
    for (struct dlist *d = loop->tasks.all.next; d != &loop->tasks.all; d = d->next) {
        struct task *t = container_of(d, struct task, fut.all);
        if (t->state != TASK_DONE)
            g->t[k++] = t;
    }
    for (size_t i = 0; i < n; i++) {
        g->parent[i] = g->child[i] = g->sibling[i] = n;
        g->extra[i] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct asyncio_future *f = &g->t[i]->fut;
        for (struct dlist *d = f->waiters.next; d != &f->waiters; d = d->next)
            graph_awaiter(g, i, task_waiting_through(container_of(d, struct waiter, link)));
        graph_awaiter(g, i, taskgroup_owner(g->t[i]));
    }
    for (size_t i = n; i-- > 0;) { /* children in the order made */
        size_t p = g->parent[i];
        if (p != n) {
            g->sibling[i] = g->child[p];
            g->child[p] = i;
        }
    }
    return 0;
}

static void graph_line(FILE *out, const struct graph *g, size_t i)
{
    struct task *t = g->t[i];
    const char *waits = asyncio_task_waiting_on(&t->fut);
    fprintf(out, "Task \"%s\" #%" PRIu64 ": %s", asyncio_task_name(&t->fut), t->serial,
            asyncio_task_state(&t->fut));
    if (waits)
        fprintf(out, " (%s)", waits);
    if (g->extra[i])
        fprintf(out, ", awaited by %zu more", g->extra[i]);
    if (t->info) {
        char buf[512];
        if (t->info->parent)
            fprintf(out, ", made by #%" PRIu64, t->info->parent);
        if (origin_text(t->info->origin, buf, sizeof buf))
            fprintf(out, " at %s", buf);
    }
    fputc('\n', out);
}

/* Print the tree under root, depth first, without recursion (a chain of
 * awaits may be long, and this may run on a task's stack). */
static size_t graph_print(FILE *out, const struct graph *g, size_t root, bool *seen, size_t *stack,
                          bool *last)
{
    size_t printed = 0, depth = 0;
    stack[0] = root;
    last[0] = true;
    for (;;) {
        size_t i = stack[depth];
        for (size_t d = 1; d <= depth; d++)
            fputs(d == depth ? (last[d] ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ")
                             : (last[d] ? "    " : "\u2502   "),
                  out);
        graph_line(out, g, i);
        seen[i] = true;
        printed++;
        size_t c = g->child[i];
        while (c != g->n && seen[c])
            c = g->sibling[c];
        if (c != g->n) { /* down to the first child */
            size_t next = g->sibling[c];
            while (next != g->n && seen[next])
                next = g->sibling[next];
            stack[++depth] = c;
            last[depth] = next == g->n;
            continue;
        }
        for (;;) { /* up, to the next sibling of this node or of an ancestor */
            if (depth == 0)
                return printed;
            size_t s = g->sibling[stack[depth]];
            while (s != g->n && seen[s])
                s = g->sibling[s];
            if (s != g->n) {
                size_t next = g->sibling[s];
                while (next != g->n && seen[next])
                    next = g->sibling[next];
                stack[depth] = s;
                last[depth] = next == g->n;
                break;
            }
            depth--;
        }
    }
}

int asyncio_print_call_graph(FILE *out)
{
    struct loop *loop = loop_current();
    if (!out)
        return -EINVAL;
    if (!loop)
        return -EPERM;
    struct graph g;
    int rc = graph_build(&g, loop);
    if (rc < 0)
        return rc;
    size_t n = g.n, printed = 0;
    bool *seen = calloc(n + 1, sizeof *seen), *last = calloc(n + 1, sizeof *last);
    size_t *stack = calloc(n + 1, sizeof *stack);
    if (seen && last && stack) {
        /* The roots first; then what an await cycle left unreached. */
        for (size_t i = 0; i < n; i++)
            if (g.parent[i] == n)
                printed += graph_print(out, &g, i, seen, stack, last);
        for (size_t i = 0; i < n; i++)
            if (!seen[i])
                printed += graph_print(out, &g, i, seen, stack, last);
        fflush(out);
    } else {
        rc = -ENOMEM;
    }
    free(seen);
    free(last);
    free(stack);
    free(g.t);
    free(g.parent);
    return rc < 0 ? rc : (int)printed;
}

/* ---- the dump signal ------------------------------------------------------------- */

static void dump_tasks(int signum, void *arg)
{
    (void)arg;
    fprintf(stderr, "asyncio: the tasks of process %ld, on signal %d:\n", (long)getpid(), signum);
    if (asyncio_print_call_graph(stderr) < 0)
        fputs("asyncio: no memory to print the tasks\n", stderr);
}

/* $ASYNCIO_DUMP_SIGNAL: a signal's name (USR1 or SIGUSR1, ...) or number;
 * 0 when unset or empty, -1 (said on stderr) when it is neither. */
static int dump_signal_env(void)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
                 {"QUIT", SIGQUIT}, {"WINCH", SIGWINCH}};
    const char *v = getenv("ASYNCIO_DUMP_SIGNAL");
    if (!v || !*v)
        return 0;
    const char *name = strncmp(v, "SIG", 3) == 0 ? v + 3 : v;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].sig;
    char *end;
    long n = strtol(v, &end, 10);
    if (*v >= '0' && *v <= '9' && !*end && n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP)
        return (int)n;
    fprintf(stderr, "asyncio: ASYNCIO_DUMP_SIGNAL=%s: not a signal (USR1, USR2, HUP, QUIT, WINCH "
                    "or a number)\n", v);
    return -1;
}

void debug_start(struct loop *loop)
{
    (void)loop;
    int sig = dump_signal_env();
    /* Only the main thread's loop takes signals: elsewhere this is -EXDEV,
     * and the main thread's loop prints its own tasks. */
    if (sig > 0)
        asyncio_add_signal_handler(sig, dump_tasks, NULL);
}
