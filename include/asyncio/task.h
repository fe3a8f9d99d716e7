/**
 * \file asyncio/task.h
 * \brief Tasks (stackful coroutines) and sleep.
 *
 * A task runs a function (asyncio_fn) on its own stack, as a coroutine of
 * the loop: where asyncio writes `await`, a call here suspends the task and
 * lets the loop run others. A task is a future whose result its function
 * produces, so the calls of <asyncio/future.h> take a task too.
 *
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

/** A task (asyncio.Task): a future whose result is produced by a coroutine. */
typedef struct asyncio_future asyncio_task_t;

/** Options for asyncio_create_task_ex(). Zero-initialise. */
typedef struct asyncio_task_options {
    const char *name;  /**< the task's name, copied; NULL gives "Task-N" */
    /** Stack size in bytes; 0: the loop's default; else as asyncio_run_ex()'s
     *  (asyncio_run_options_t), within [ASYNCIO_STACK_MIN, ASYNCIO_STACK_MAX]. */
    size_t stack_size;
    /** The stack sweep (asyncio_loop_set_stack_sweep()): negative, this
     *  task is never swept (it shares its locals); 0, as the loop says. */
    int stack_sweep;
} asyncio_task_options_t;

/**
 * Create a task running fn(arg, &result) on its own stack
 * (asyncio.create_task()).
 *
 * The task starts in a later iteration of the loop. Its stack has a guard
 * region below it (asyncio_run_options_t's stack_guard): build task code
 * with -fstack-clash-protection, so that a frame larger than the guard
 * cannot jump over it.
 *
 * \param task  receives a reference the caller must release with
 *              asyncio_task_release(); if NULL, the task runs detached
 * \param fn    the task's function; not NULL
 * \param arg   passed to fn
 * \param name  the task's name, copied; NULL gives "Task-N"
 * \return 0; -EINVAL (fn NULL), -EPERM (no loop in this thread), -ENOMEM or
 *         -EAGAIN (no memory or mappings left for a stack).
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_create_task(asyncio_task_t **task, asyncio_fn fn, void *arg,
                        const char *name);

/**
 * asyncio_create_task() with options.
 *
 * \param task  as asyncio_create_task(): receives a reference, or NULL
 * \param fn    the task's function; not NULL
 * \param arg   passed to fn
 * \param opts  the options; NULL for the defaults
 * \return as asyncio_create_task(); also -EINVAL for a stack size outside
 *         [ASYNCIO_STACK_MIN, ASYNCIO_STACK_MAX].
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_create_task_ex(asyncio_task_t **task, asyncio_fn fn, void *arg,
                           const asyncio_task_options_t *opts);

/**
 * Drop the caller's reference to a task (as asyncio_future_release()).
 *
 * A running task is not stopped by this; it goes on detached.
 *
 * \param task  the task; NULL is ignored
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API void asyncio_task_release(asyncio_task_t *task);

/**
 * Request cancellation of task (Task.cancel()).
 *
 * If it is waiting, or was woken but has not resumed yet, that wait returns
 * -ECANCELED when it next runs; but a task waiting in asyncio_await() has
 * the future it awaits cancelled at once instead (a task awaited gets the
 * request), as asyncio's, and resumes when that is done (asyncio_await()
 * says what it returns); if it has not started yet, it never runs and
 * finishes cancelled; if it is the running task (cancelling itself), its
 * next wait returns -ECANCELED. Requests made before one is delivered merge
 * into one. The task may go on after that or finish cancelled by returning
 * -ECANCELED.
 *
 * \param task  the task
 * \return 1 if a cancellation was requested, 0 if the task was already
 *         finished (nothing happens); -EINVAL (NULL, or not a task), -EXDEV
 *         (debug mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_task_cancel(asyncio_task_t *task);

/**
 * The task running now (asyncio.current_task()).
 *
 * \return the task, with no reference added; NULL outside a task.
 * \suspends No.
 * \context Any thread: the answer is about the calling thread.
 */
ASYNCIO_API asyncio_task_t *asyncio_current_task(void);

/**
 * The task's name (Task.get_name()).
 *
 * \param task  the task
 * \return the name, valid while the task is; NULL if task is NULL or not a
 *         task.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API const char *asyncio_task_name(const asyncio_task_t *task);

/**
 * The number of tasks of this thread's loop that have not finished
 * (including the caller).
 *
 * \return the number; 0 when the thread has no loop.
 * \suspends No.
 * \context The loop's thread; any other has no loop, and gets 0.
 */
ASYNCIO_API size_t asyncio_task_count(void);

/**
 * The tasks of this thread's loop that have not finished (asyncio.all_tasks()).
 *
 * \param out  receives up to cap of them, with no reference added; NULL to
 *             count them only (cap is then ignored)
 * \param cap  room in out
 * \return how many there are in all (more than cap if out was too small);
 *         0 when the thread has no loop.
 * \suspends No.
 * \context The loop's thread; any other has no loop, and gets 0.
 */
ASYNCIO_API size_t asyncio_all_tasks(asyncio_task_t **out, size_t cap);

/**
 * What a task is doing: "created" (not run yet), "running", "ready" (woken,
 * about to resume), "waiting", "done".
 *
 * \param task  the task
 * \return one of the strings above (static); NULL for NULL or a plain future.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API const char *asyncio_task_state(const asyncio_task_t *task);

/**
 * What a waiting task waits for.
 *
 * \param task  the task
 * \return "sleep", "future", "task", "gather", "wait", "as_completed",
 *         "task group", "fd readable", "fd writable", "lock", "event",
 *         "condition", "semaphore", "barrier", "queue put", "queue get",
 *         "queue join", ... ("something" if unnamed); NULL if the task is not
 *         waiting (also when it was woken and is about to resume), or task is
 *         NULL or a plain future.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API const char *asyncio_task_waiting_on(const asyncio_task_t *task);

/**
 * How much of the task's stack the stack sweep holds on the heap
 * (asyncio_loop_set_stack_sweep()).
 *
 * \param task  the task
 * \return the bytes (the live part of its stack) while it is swept; 0 while
 *         its stack is in place; -EINVAL (NULL or a plain future).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_task_swept_bytes(const asyncio_task_t *task);

/**
 * Print one line per unfinished task to out (asyncio's all_tasks() with
 * print_stack() in spirit).
 *
 * Each line has the task's name, its state, what it waits for, when its
 * timer fires, and whether a cancellation is pending.
 *
 * \param out  the stream to print to
 * \return the number of tasks printed; -EINVAL (out NULL), -EPERM (no loop
 *         in this thread).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_print_tasks(FILE *out);

/**
 * Suspend the calling task for seconds (asyncio.sleep()).
 *
 * asyncio_sleep(0) only yields: the task goes to the back of the ready
 * queue, so every other ready task runs first. A negative delay is 0, as in
 * asyncio: asyncio_sleep(deadline - asyncio_loop_time()) past the deadline
 * yields. A task whose sleep (or timeout) is over resumes one step after
 * its timer fires, as in asyncio (the timer's callback, then the task's
 * step): the callbacks that were due with it run first.
 *
 * \param seconds  how long; 0 or less: yield; INFINITY sleeps until cancelled
 * \return 0; -EINVAL (NaN), -EPERM (not in a task), -ECANCELED,
 *         -ETIMEDOUT, -ENOMEM (its timer could not be armed).
 * \suspends Yes: until the time has passed. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_sleep(double seconds);

#ifdef __cplusplus
}
#endif

#endif
