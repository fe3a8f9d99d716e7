/* The loop layer: one loop per thread, its ready queue, timers, poller and
 * the context it runs on. Everything above it (futures, tasks, I/O) reaches
 * the loop through this header. */
#ifndef ASYNCIO_LOOP_INTERNAL_H
#define ASYNCIO_LOOP_INTERNAL_H

#include <asyncio.h>

#include <stdbool.h>
#include <stdint.h>

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

/* What the loop knows of an fd tasks wait on. */
struct fdstate {
    struct task *reader;
    struct task *writer;
    unsigned registered; /* POLLER_IN/OUT interest the poller holds */
};

struct handle_slab;

struct loop {
    struct queue ready;
    struct queue batch;     /* what this iteration runs: ready when it began */
    struct timerheap timers;
    struct poller poller;
    struct coro main;       /* the context the loop itself runs on */
    struct task *current;   /* the task running now, or NULL */

    /* Every future and task alive, to free what is left at close. */
    struct dlist futures;
    size_t live_tasks;
    uint64_t task_serial;   /* for default names, Task-N */

    /* Contexts (with their stacks) of finished tasks, ready for reuse. */
    struct task *free_tasks; /* task structs to reuse */
    struct taskctx *ctx_pool;
    size_t ctx_pool_len;
    size_t stack_size;      /* default for new tasks, ASan scale applied */
    struct stack_arena stacks;
    struct coro_template coro_tmpl;

    /* Callback handles come from slabs that live as long as the loop, so a
     * stale asyncio_handle_t is always safe to look at. */
    struct handle_slab *slabs;
    struct chandle *free_handles;
    uint64_t next_handle_id;

    struct fdstate *fds;
    int nfds;
    int registered_fds;     /* fds with interest in the poller */

    void *altstack;         /* signal stack for overflow reports, if ours */
    bool closing;
};

/* This thread's running loop, or NULL. */
struct loop *loop_current(void);

/* Append r to the ready queue: it runs in the next iteration. */
static inline void loop_ready(struct loop *loop, struct runnable *r)
{
    queue_push(&loop->ready, &r->q);
}

/* Begin the next iteration without blocking, from whatever context runs:
 * poll for I/O already there, move due timers, and make the ready queue the
 * new batch. False (nothing done) when nothing is ready or the loop is
 * closing: then the loop's own context must take over. */
bool loop_next_batch_now(struct loop *loop);

/* Timers: t->when must be set. 0 or -ENOMEM. The owner of a timer says what
 * firing means through the callback it gives the loop, see struct ltimer. */
struct ltimer {
    struct timer t;
    void (*fire)(struct loop *loop, struct ltimer *lt);
};
int loop_timer_add(struct loop *loop, struct ltimer *lt);
void loop_timer_cancel(struct loop *loop, struct ltimer *lt);

/* Handles (handle.c). */
void handles_free_all(struct loop *loop);

/* Futures and tasks (task.c, future.c). */
void futures_free_all(struct loop *loop);
void tasks_free_contexts(struct loop *loop);
/* Finished tasks' contexts are pooled for reuse without a system call; the
 * loop trims the pool back to this many when it is idle. */
#define CTX_POOL_HOT 1024
/* Unmap pooled contexts beyond the hot set until the clock reaches
 * until_ns; true if some surplus is left. */
bool tasks_trim_pool(struct loop *loop, uint64_t until_ns);
/* Cancel every unfinished task that has no cancellation pending. */
void tasks_cancel_all(struct loop *loop);

/* Stack overflow reports (overflow.c): install, and remove what this loop
 * added (its thread's alternate signal stack). */
void overflow_watch(struct loop *loop);
void overflow_unwatch(struct loop *loop);

/* File descriptors (io.c). */
void io_dispatch(struct loop *loop, const struct poller_event *ev);
void io_free(struct loop *loop);

#endif
