/* The loop layer: one loop per thread, its ready queue, timers, poller and
 * the context it runs on. Everything above it (futures, tasks, I/O) reaches
 * the loop through this header. */
#ifndef ASYNCIO_LOOP_INTERNAL_H
#define ASYNCIO_LOOP_INTERNAL_H

#include "names.h"

#include <asyncio.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "coro.h"
#include "list.h"
#include "poller.h"
#include "timerheap.h"

struct task;
struct loop;

/* Something the ready queue can run: a callback handle or a task. */
struct runnable {
    struct qnode q;
    void (*run)(struct loop *loop, struct runnable *r);
};

struct loop;

/* A callback watching an fd (io_watch()): what runs without a task, such as
 * a stream flushing its queue or the thread pool's wake-ups. */
typedef void (*io_callback)(struct loop *loop, int fd, unsigned events, void *arg);

/* What the loop knows of an fd tasks wait on. */
struct fdstate {
    struct task *reader;
    struct task *writer;
    io_callback cb;      /* called for cb_events no task waits for */
    void *cb_arg;
    unsigned cb_events;
    unsigned registered; /* POLLER_IN/OUT interest the poller holds */
};

/* Work to do just before the loop polls (a stream's queued writes), so
 * everything a batch of tasks queued goes out in one system call each. */
struct prepoll {
    struct dlist link;   /* on loop->prepoll while queued */
    void (*run)(struct loop *loop, struct prepoll *p);
};

/* The most events one poll reports, and the most the fast path (which
 * begins an iteration from a parking task, see loop_next_batch_now) asks
 * for. */
#define LOOP_EVENTS 256
#define LOOP_FAST_EVENTS 32

/* File descriptors (io.c): what the loop knows of each fd. */
struct loop_io {
    struct fdstate *fds;    /* indexed by fd, nfds long */
    int nfds;
    int registered;         /* fds with interest in the poller, but wake_fd */
    /* The thread layer's wake-up fd, not counted in registered: with no
     * other fd, a loop with work ready need not poll, as it reads the
     * inbox's pending flag instead (thread.h, loop_next_batch_now). */
    int wake_fd;
    int ndeferred;          /* events in deferred[] */
    /* Events for fd callbacks that the fast path found: no callback runs on
     * a task's stack, so they wait for the loop's own context, which runs
     * them first thing at its next poll. */
    struct poller_event deferred[LOOP_FAST_EVENTS];
};

/* Callback handles (handle.c) come from slabs that live as long as the
 * loop, so a stale asyncio_handle_t is always safe to look at. */
struct loop_handles {
    struct handle_slab *slabs; /* all of them, to free at close */
    struct chandle *free;   /* free list across the slabs */
    uint64_t last_id;       /* the last id given (0 means free) */
};

/* Networking (stream.c, server.c; see struct net_open below). */
struct loop_net {
    int nspare_bufs;        /* how many of spare_bufs[] hold one */
    struct dlist open;      /* struct net_open: what to free at close */
    struct sigchld_watch *sigchld; /* sigchld.c's, once a child is watched so */
    signed char pidfds;     /* subprocess.c: 0 not known yet, 1 pidfds, -1 SIGCHLD */
    void *spare_bufs[16];   /* empty stream buffers to reuse (see buf_get) */
};

/* The tasks subsystem's state (task.c, future.c, waitq.c). */
/* A timer of the loop's heap, with what firing it means (loop_timer_add()). */
struct ltimer {
    struct timer t;
    void (*fire)(struct loop *loop, struct ltimer *lt);
};

/* The stack sweep (sweep.c): its settings and where its pass is. */
struct loop_sweep {
    uint64_t threshold_ns;     /* 0: off */
    struct ltimer timer;       /* the next pass, or the rest of this one */
    struct runnable run;       /* the timer queues this: the sweep runs in
                                  the loop's context, never on a task's stack */
    bool queued;               /* run is on the ready queue */
    struct task *cursor;       /* the last task visited (a reference), or
                                  NULL: the pass starts at the first */
    size_t swept;              /* tasks whose stack is on the heap now */
    size_t saved_bytes;        /* the heap their stacks take */
};

struct loop_tasks {
    /* Every future and task alive, to free what is left at close. */
    struct dlist futures;      /* plain futures */
    struct dlist all;          /* tasks, unfinished or still referenced */
    size_t live;               /* tasks not finished */
    uint64_t serial;           /* for default names, Task-N */
    struct task *free_structs; /* task structs to reuse */
    /* Contexts (with their stacks) of finished tasks, ready for reuse. */
    struct taskctx *ctx_pool;
    size_t ctx_pool_len;
    struct stack_arena stacks; /* default_size: for new tasks, ASan scale applied */
    struct coro_template coro_tmpl;
    struct fanin *fanin_spare; /* a small fan-in block for reuse (waitq.h) */
    struct loop_sweep sweep;   /* sweep.c */
};

/* What another thread posted to the loop (thread.h): cb(arg), or
 * release(arg) (if not NULL) when the loop closes before running it. */
struct post_entry {
    asyncio_callback cb;
    void *arg;
    asyncio_callback release;
};
struct post_array {
    struct post_entry *v;
    size_t len, cap;
};
struct post;

/* Debug mode and task counters (debug.c): loop->instr's bits. Off, the
 * hot paths test loop->instr and nothing else. */
#define INSTR_DEBUG 1u
#define INSTR_COUNTERS 2u
#define INSTR_CLOSED 4u /* asyncio_loop_close() frees it: no more checks */
struct loop_debug {
    uintptr_t id;                      /* this loop's number (debug.c): what
                                          binds a sync object or queue */
    uint64_t slow_ns;                  /* slow_callback_duration */
    asyncio_exception_handler handler; /* NULL: the default */
    void *handler_arg;
};

/* Spinning's back-off after failed spins (thread.h). */
struct loop;
static inline unsigned loop_instr(const struct loop *loop);
struct spin_backoff {
    unsigned skip;  /* waits left that do not spin */
    unsigned fails; /* failed spins in a row */
};

/* The thread layer's loop-side state (threadsafe.c, executor.c). */
struct loop_threads {
    struct asyncio_loop *shared; /* the inbox other threads post to */
    size_t head, taken_end;      /* the ring's positions: next to run, past the last taken */
    struct post_array out;       /* taken from the overflow, run by runner after the ring's */
    struct post *spill;          /* taken from its list, run after out */
    struct runnable runner;      /* queued while out or spill holds some */
    bool runner_queued;
    /* Take at the start of the next iteration: posts from the loop's own
     * thread write no wake-up, and a take is put off while the last one
     * has not run. */
    bool take_next;
    struct dlist local;          /* posts from the loop's own thread, queued */
    struct dlist wraps;          /* wrap_future() futures not done (cfuture.c) */
    size_t calls_out;            /* executor calls not yet back (busy polling) */
    uint64_t call_avg_ns;        /* their recent round trips (thread.h's spinning) */
    struct spin_backoff spin;    /* (thread.h) */
    bool multi_cpu;              /* may spin: more than one CPU to run on */
    struct asyncio_executor *default_executor; /* made on first use */
};

struct loop {
    struct queue ready;
    struct queue batch;     /* what this iteration runs: ready when it began */
    struct timerheap timers;
    struct poller poller;
    struct coro main;       /* the context the loop itself runs on */
    struct task *current;   /* the task running now, or NULL */
#ifdef ASYNCIO_SEAL_PARKED_STACKS
    struct task *parked;    /* a task that just switched away to park, whose
                               stack the next to run seals (task.c) */
#endif

    /* Read by every iteration, with io's first fields below. */
    struct dlist prepoll;   /* struct prepoll to run before the next poll */
    bool closing;           /* winding down: what is left is being cancelled */
    bool stopping;          /* asyncio_loop_stop(): the run ends after this batch */
    bool nowait;            /* asyncio_loop_run_nowait(): one iteration, no sleep */
    bool running;           /* inside a run call (or the close's wind-down) */
    bool busy_poll_on;      /* the last sleep was short: spin next time */
    unsigned char instr;    /* INSTR_*: debug mode, task counters (debug.c);
                               its thread's only: others read instr_shared */
    uint64_t busy_poll_ns;  /* spin budget before sleeping, 0: never */
    uint64_t io_wait_avg_ns; /* recent sleeps that fd events ended (adaptive spinning) */
    struct spin_backoff io_spin;

    struct loop_io io;
    struct loop_tasks tasks;
    struct loop_handles handles;
    struct loop_net net;
    struct loop_threads threads;
    struct sigwatch *signals; /* signal.c: handlers and how signals come, if any */
    struct loop_debug debug;  /* debug.c */
    atomic_uchar instr_shared; /* instr, for debug mode's check from other threads */
    void *altstack;           /* overflow.c: its signal stack, if ours */
    const asyncio_run_options_t *opts; /* asyncio_run_ex()'s, for the inits */

    /* Last, apart from what every iteration reads. What the last poll
     * reported (here rather than on the stack: the fast path polls on a
     * task's stack, which may be small). */
    struct poller_event events[LOOP_EVENTS];
};

/* The initial-exec model reads the variable straight off the thread pointer;
 * in a shared library the default would call __tls_get_addr() on every
 * loop_current(), a few times per message on a busy connection. It costs
 * the library a pointer's worth of the static TLS that glibc keeps for
 * dlopen(). Hidden, as every internal symbol: only loop.c writes it. */
#if defined(__GNUC__) && defined(__ELF__)
#define LOOP_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define LOOP_TLS_MODEL
#endif
extern _Thread_local struct loop *loop_tls LOOP_TLS_MODEL;

/* For the few small functions of the per-message path that the compiler
 * leaves out of line (each call saves and restores registers). */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* This thread's running loop, or NULL. Inline: it is asked a few times per
 * message, and a call across files costs more than the load. */
static inline struct loop *loop_current(void)
{
    return loop_tls;
}

/* loop->instr, from the loop's own thread (a plain read: an atomic one
 * kept the compiler from scheduling the hot paths around it, 15-20% on
 * bench_sync's lock handoff and task group rows). */
static inline unsigned loop_instr(const struct loop *loop)
{
    return loop->instr;
}

/* The loop behind handle s, from its own thread (running or not), for the
 * public call named call: 0, or -EINVAL (NULL), -ESHUTDOWN (closed: debug
 * mode reports it, unless call is NULL), -EXDEV (another thread's). */
int loop_own(asyncio_loop_t *s, struct loop **out, const char *call);

/* The public call named call found s closed (it returns -ESHUTDOWN):
 * reported (debug.c) when s closed in debug mode and call is not NULL. */
void debug_closed_use(asyncio_loop_t *s, const char *call);

/* Set loop->instr and its shared copy (the loop's thread only). */
static inline void loop_set_instr(struct loop *loop, unsigned instr)
{
    loop->instr = (unsigned char)instr;
    atomic_store_explicit(&loop->instr_shared, (unsigned char)instr, memory_order_relaxed);
}

/* Append r to the ready queue: it runs in the next iteration. */
static inline void loop_ready(struct loop *loop, struct runnable *r)
{
    queue_push(&loop->ready, &r->q);
}

/* Begin the next iteration without blocking, from a parking task's stack:
 * poll for I/O already there, move due timers, and make the ready queue the
 * new batch, so that the parking task can switch straight to the next
 * task. Only tasks are woken here: an fd callback the poll calls for is
 * left for the loop's own context (loop->io.deferred), and then this
 * returns false. False also when nothing is ready, or the loop is closing,
 * stopping or running one iteration only: then the loop's own context
 * must take over. */
bool loop_next_batch_now(struct loop *loop);

/* Timers: t->when must be set. 0 or -ENOMEM. The owner of a timer says what
 * firing means through the callback it gives the loop, see struct ltimer. */
int loop_timer_add(struct loop *loop, struct ltimer *lt);
void loop_timer_cancel(struct loop *loop, struct ltimer *lt);

/* A child process pid ended (subprocess.c), as the poller reported it
 * (POLLER_PROC: kqueue's EVFILT_PROC). */
void subprocess_proc_exited(struct loop *loop, int pid);
/* Another thread woke the loop (threadsafe.c), as the poller reported it
 * (POLLER_WAKE: kqueue's EVFILT_USER): take what was posted. */
void threads_woken(struct loop *loop);

/* Handles (handle.c): free the slabs at close. */
void handles_term(struct loop *loop);

/* Futures and tasks (task.c, future.c, waitq.c). */
int tasks_init(struct loop *loop);
void tasks_term(struct loop *loop);
/* Finished tasks' contexts are pooled for reuse without a system call; the
 * loop trims the pool back to this many when it is idle. */
#define CTX_POOL_HOT 1024
/* Unmap pooled contexts beyond the hot set until the clock reaches
 * until_ns; true if some surplus is left. */
bool tasks_trim_pool(struct loop *loop, uint64_t until_ns);
/* Cancel every unfinished task that has no cancellation pending. */
void tasks_cancel_all(struct loop *loop);

/* Stack overflow reports (overflow.c): install (never fails), and remove
 * what this loop added (its thread's alternate signal stack). */
int overflow_init(struct loop *loop);
void overflow_term(struct loop *loop);

/* File descriptors (io.c). Dispatch one polled event: wake the tasks that
 * wait for it, and call the fd's callback, or, from a task's stack
 * (from_task), queue it on loop->io.deferred for io_run_deferred(). */
void io_dispatch(struct loop *loop, const struct poller_event *ev, bool from_task);
/* Call the fd callbacks the fast path deferred (from the loop's context). */
void io_run_deferred(struct loop *loop);
void io_term(struct loop *loop); /* frees the fd table */
/* Have cb(loop, fd, events, arg) called when fd reports one of events
 * (POLLER_IN/OUT) that no task waits for; events 0 stops it. One callback
 * per fd. 0, -EBADF, -ENOMEM or the poller's error. */
int io_watch(struct loop *loop, int fd, unsigned events, io_callback cb, void *arg);
/* Wake the tasks waiting on fd with status, keeping its registration. */
void io_wake_waiters(struct loop *loop, int fd, int status);
/* asyncio_wait_readable() (ev POLLER_IN) or asyncio_wait_writable()
 * (POLLER_OUT) for t, the running task. */
int io_wait(struct task *t, int fd, unsigned ev);

/* Run p before the next poll (once, however often it is asked). */
static inline void loop_prepoll(struct loop *loop, struct prepoll *p)
{
    if (!dlist_linked(&p->link))
        dlist_push_back(&loop->prepoll, &p->link);
}
static inline void loop_prepoll_cancel(struct prepoll *p)
{
    dlist_remove(&p->link);
}

/* Signals (signal.c): give back the signal mask or dispositions, close the
 * signalfd or pipe. */
void signals_term(struct loop *loop);
/* A signal came, as the poller reported it (POLLER_SIGNAL: kqueue's
 * EVFILT_SIGNAL): run its handler. */
void signals_fired(struct loop *loop, int sig);
/* Add to set the signals the library set to be ignored (a kernel kqueue
 * watching them), which a child must not inherit ignored. Any thread. */
void signals_ignored(sigset_t *set);

/* Networking (stream.c, server.c): an open stream or server is on
 * loop->net.open until freed, so that the loop frees at close what its
 * owner left open. Its init and term are here, not in stream.c, so that a
 * program linked with libasyncio.a that opens no stream gets none of it. */
struct net_open {
    struct dlist link;
    void (*free_at_close)(struct net_open *o); /* frees it, unlinked */
};
static inline int net_init(struct loop *loop)
{
    dlist_init(&loop->net.open);
    return 0;
}
/* After the list: closing a stream gives its buffers to the spares. */
static inline void net_term(struct loop *loop)
{
    while (!dlist_empty(&loop->net.open)) {
        struct net_open *o = container_of(loop->net.open.next, struct net_open, link);
        o->free_at_close(o);
    }
    while (loop->net.nspare_bufs)
        free(loop->net.spare_bufs[--loop->net.nspare_bufs]);
}

#endif
