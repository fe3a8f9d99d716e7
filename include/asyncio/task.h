/*
 * <asyncio/task.h>: tasks (stackful coroutines) and sleep.
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_TASK_H
#define ASYNCIO_TASK_H

#include <asyncio/common.h>
#include <asyncio/future.h>

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A task is a future whose result is produced by a coroutine. */
typedef struct asyncio_future asyncio_task_t;

/* Options for asyncio_create_task_ex(). Zero-initialise. */
typedef struct asyncio_task_options {
    const char *name;  /* copied; NULL gives "Task-N" */
    size_t stack_size; /* 0: the loop's default; else as asyncio_run_ex() */
} asyncio_task_options_t;

/*
 * Create a task running fn(arg, &result) on its own stack; it starts in a
 * later iteration of the loop (asyncio.create_task). name may be NULL.
 * The stack has a guard region below it (asyncio_run_options_t's
 * stack_guard): build task code with -fstack-clash-protection, so that a
 * frame larger than the guard cannot jump over it.
 * If task is not NULL it receives a reference the caller must release with
 * asyncio_task_release(); if NULL the task runs detached.
 * Returns 0, -EINVAL (fn NULL), -EPERM (no loop in this thread),
 * -ENOMEM or -EAGAIN (no memory or mappings left for a stack). Does not
 * suspend; may be called from a task or from a loop callback.
 */
ASYNCIO_API int asyncio_create_task(asyncio_task_t **task, asyncio_fn fn, void *arg,
                        const char *name);

/* asyncio_create_task() with options (opts may be NULL). Also -EINVAL for a
 * stack size outside [ASYNCIO_STACK_MIN, ASYNCIO_STACK_MAX]. */
ASYNCIO_API int asyncio_create_task_ex(asyncio_task_t **task, asyncio_fn fn, void *arg,
                           const asyncio_task_options_t *opts);

/* Drop the caller's reference to a task (as asyncio_future_release()). A
 * running task is not stopped by this; it goes on detached. */
ASYNCIO_API void asyncio_task_release(asyncio_task_t *task);

/*
 * Request cancellation of task (asyncio's Task.cancel()). If it is waiting,
 * or was woken but has not resumed yet, that wait returns -ECANCELED when it
 * next runs; if it has not started yet, it never runs and finishes
 * cancelled; if it is the running task (cancelling itself), its next wait
 * returns -ECANCELED. Requests made before one is delivered merge into one.
 * The task may go on after that or finish cancelled by returning -ECANCELED.
 * Returns 1 if a cancellation was requested, 0 if the task was already
 * finished (nothing happens), -EINVAL (NULL, or not a task). Does not
 * suspend.
 */
ASYNCIO_API int asyncio_task_cancel(asyncio_task_t *task);

/* The task running now, or NULL outside a task. No reference is added. */
ASYNCIO_API asyncio_task_t *asyncio_current_task(void);

/* The task's name (valid while the task is), or NULL if task is NULL. */
ASYNCIO_API const char *asyncio_task_name(const asyncio_task_t *task);

/* Number of tasks of this thread's loop that have not finished (including
 * the caller), or 0 when the thread has no loop. */
ASYNCIO_API size_t asyncio_task_count(void);

/*
 * The tasks of this thread's loop that have not finished (asyncio's
 * all_tasks): stores up to cap of them in out (no reference is added) and
 * returns how many there are in all, 0 when the thread has no loop.
 */
ASYNCIO_API size_t asyncio_all_tasks(asyncio_task_t **out, size_t cap);

/* What a task is doing: "created" (not run yet), "running", "ready" (woken,
 * about to resume), "waiting", "done"; NULL for NULL or a plain future. */
ASYNCIO_API const char *asyncio_task_state(const asyncio_task_t *task);

/* What a waiting task waits for: "sleep", "future", "task", "gather",
 * "wait", "as_completed", "task group", "fd readable", "fd writable",
 * "lock", "event", "condition", "semaphore", "barrier", "queue put",
 * "queue get", "queue join", ... ("something" if unnamed); NULL if the task
 * is not waiting. */
ASYNCIO_API const char *asyncio_task_waiting_on(const asyncio_task_t *task);

/*
 * Print one line per unfinished task to out (asyncio's all_tasks() with
 * print_stack() in spirit): name, state, what it waits for and when its
 * timer fires. Returns the number of tasks printed, -EINVAL (out NULL),
 * -EPERM (no loop). Does not suspend.
 */
ASYNCIO_API int asyncio_print_tasks(FILE *out);

/*
 * Suspend the calling task for seconds. asyncio_sleep(0) only yields: the
 * task goes to the back of the ready queue, so every other ready task runs
 * first. May suspend. Returns 0, -EINVAL (negative or NaN; INFINITY sleeps
 * until cancelled), -EPERM (not in a task), -ECANCELED.
 */
ASYNCIO_API int asyncio_sleep(double seconds);

#ifdef __cplusplus
}
#endif

#endif
