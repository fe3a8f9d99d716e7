/**
 * \file asyncio/debug.h
 * \brief Debug mode, the exception handler, and counters of live tasks.
 *
 * Debug mode (asyncio's `loop.set_debug()`, `PYTHONASYNCIODEBUG`) makes a
 * loop report what is usually a bug, at a cost to speed:
 *  - a task step or callback that runs longer than the slow-callback
 *    duration (100 ms unless set) without letting the loop run others, named,
 *    with where it was created;
 *  - a failed task or future whose failure nobody retrieved, with where it
 *    was created;
 *  - at the loop's close, a task the program still holds a reference to
 *    and never awaited (nor read the outcome of);
 *  - a loop's object used from a thread other than the loop's, or after
 *    the loop closed: the call fails with -EXDEV. A future, task, stream
 *    or server is checked while its loop is in debug mode; a lock, event,
 *    condition, semaphore, barrier or queue is bound to the first loop in
 *    debug mode that uses it (as asyncio binds a primitive to its loop) and
 *    checked from then on, also from a thread with no loop;
 *  - a loop used after it closed (asyncio's "Event loop is closed"): the
 *    call fails with -ESHUTDOWN, as it does out of debug mode, and the
 *    default handler prints the call's name (the loop's own handler went
 *    with it).
 * Turn it on for a loop with asyncio_loop_set_debug() or from its start
 * with asyncio_run_options_t::debug (asyncio.run(debug=True)), or for every
 * loop with the environment variable `ASYNCIO_DEBUG=1`, read when a loop is
 * made (unless that option is negative).
 * Off, it costs nothing measurable.
 *
 * "Where it was created" is the code address of the call that made the
 * object, as `function+offset (file)`: give the offset to
 * `addr2line -f -e file 0xOFFSET` for the source line (build with -g). It
 * is recorded only while debug mode or the task counters are on.
 *
 * Reports go to the loop's exception handler (asyncio's
 * `loop.set_exception_handler()`), which prints them to stderr unless the
 * program set its own.
 *
 * Task counters (per-task steps and times) are separate from debug mode:
 * asyncio_loop_set_task_counters(), or `ASYNCIO_TASK_COUNTERS=1`.
 *
 * Process-wide state: a counter that numbers the loops as they are made,
 * so that an object bound to a closed loop is not taken for one of a loop
 * made later at the same address.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_DEBUG_H
#define ASYNCIO_DEBUG_H

#include <asyncio/common.h>
#include <asyncio/future.h>
#include <asyncio/loop.h>
#include <asyncio/task.h>

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Turn debug mode on or off for loop (loop.set_debug()).
 *
 * Tasks created while it is on have their origin recorded; those created
 * before have none to report.
 *
 * \param loop     the loop
 * \param enabled  nonzero: on; 0: off
 * \return 0; -EINVAL (loop NULL), -ESHUTDOWN (closed), -EXDEV (another
 *         thread's loop), -ENOMEM.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_set_debug(asyncio_loop_t *loop, int enabled);

/**
 * Whether loop is in debug mode (loop.get_debug()).
 *
 * \param loop  the loop
 * \return 1 (on), 0 (off); -EINVAL (loop NULL), -ESHUTDOWN (closed),
 *         -EXDEV (another thread's loop).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_get_debug(asyncio_loop_t *loop);

/**
 * Set how long a task step or callback may run before debug mode reports it
 * (loop.slow_callback_duration).
 *
 * \param loop     the loop
 * \param seconds  the threshold, > 0 and finite (asyncio's default: 0.1)
 * \return 0; -EINVAL (loop NULL, seconds not > 0 or not finite),
 *         -ESHUTDOWN, -EXDEV.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_set_slow_callback_duration(asyncio_loop_t *loop, double seconds);

/**
 * The threshold of asyncio_loop_set_slow_callback_duration().
 *
 * \param loop  the loop
 * \return the seconds; -EINVAL (as a double) for a NULL or closed loop.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API double asyncio_loop_get_slow_callback_duration(asyncio_loop_t *loop);

/** What a report is about (asyncio's exception handler context). */
typedef enum asyncio_report_kind {
    ASYNCIO_REPORT_NEVER_RETRIEVED = 1, /**< a task or future failed; nobody retrieved it */
    ASYNCIO_REPORT_SLOW_STEP,           /**< a task step ran longer than the threshold */
    ASYNCIO_REPORT_SLOW_CALLBACK,       /**< a callback ran longer than the threshold */
    ASYNCIO_REPORT_NEVER_AWAITED,       /**< at close: a task held, never awaited */
    ASYNCIO_REPORT_WRONG_THREAD,        /**< a loop's object used from another thread */
    ASYNCIO_REPORT_CLOSED_LOOP,         /**< a loop used after it closed (to stderr) */
} asyncio_report_kind_t;

/** A report, as the exception handler receives it (asyncio's context dict). */
typedef struct asyncio_report {
    asyncio_report_kind_t kind; /**< what it is about */
    /** The whole report as one line without a newline, as the default
     *  handler prints it after "asyncio: ". */
    const char *message;
    /** The task or future concerned, or NULL (a callback, a sync object).
     *  Borrowed for the handler's call: take a reference to keep it. */
    asyncio_future_t *future;
    int status;      /**< its failure (a negative errno), or 0 */
    double duration; /**< slow reports: the seconds it ran; else 0 */
    /** Where the task or future was created, as `function+0xOFFSET (file)`,
     *  or NULL when it was not recorded (debug mode and counters were off). */
    const char *origin;
} asyncio_report_t;

/**
 * A handler of reports (asyncio's exception handler).
 *
 * It runs in the loop's thread, from the loop (not in a task: it must not
 * wait), and must not close the loop.
 *
 * \param loop    the loop that reports
 * \param report  the report, valid during the call
 * \param arg     what asyncio_loop_set_exception_handler() was given
 */
typedef void (*asyncio_exception_handler)(asyncio_loop_t *loop, const asyncio_report_t *report,
                                          void *arg);

/**
 * Send loop's reports to handler instead of stderr
 * (loop.set_exception_handler()).
 *
 * \param loop     the loop
 * \param handler  the handler; NULL restores the default, which prints
 *                 "asyncio: " and the message to stderr
 * \param arg      passed to handler
 * \return 0; -EINVAL (loop NULL), -ESHUTDOWN, -EXDEV.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_set_exception_handler(asyncio_loop_t *loop,
                                                   asyncio_exception_handler handler, void *arg);

/**
 * The default handler (loop.default_exception_handler()): prints
 * "asyncio: " and report's message to stderr. A handler of the program's
 * may call it for what it does not handle itself.
 *
 * \param loop    the loop that reports (unused)
 * \param report  the report; NULL is ignored
 * \param arg     unused
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API void asyncio_loop_default_exception_handler(asyncio_loop_t *loop,
                                                        const asyncio_report_t *report, void *arg);

/**
 * Turn the task counters on or off for loop (asyncio_task_get_stats()).
 *
 * Each task then counts its steps and the time it spent running, ready but
 * not running, and waiting, from the moment the counters were turned on
 * (or it was created). On, they cost a few clock reads per step, and every
 * step goes through the loop (a parking task does not hand over straight
 * to the next); off, nothing.
 *
 * \param loop     the loop
 * \param enabled  nonzero: on; 0: off (the counts so far are kept)
 * \return 0; -EINVAL (loop NULL), -ESHUTDOWN, -EXDEV.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_set_task_counters(asyncio_loop_t *loop, int enabled);

/** A task's counters (asyncio_task_get_stats()). Times in nanoseconds. */
typedef struct asyncio_task_stats {
    uint64_t steps;      /**< times it was resumed (or started) */
    uint64_t running_ns; /**< time it ran */
    uint64_t ready_ns;   /**< time it was ready, waiting for its turn */
    uint64_t waiting_ns; /**< time it waited for something */
    /** What it waits on now (asyncio_task_waiting_on()), or NULL. */
    const char *waiting_on;
    /** Serial number of the task that created it (0: none, or a callback);
     *  tasks are numbered from 1 in the order they were created. */
    uint64_t parent;
    /** Its own serial number. */
    uint64_t serial;
    /** Where it was created, as asyncio_report_t's origin, or "" when it
     *  was not recorded. */
    char origin[256];
} asyncio_task_stats_t;

/**
 * Read task's counters.
 *
 * The times include the state the task is in now, up to this call.
 *
 * \param task  a task of the calling thread's loop
 * \param out   receives the counters
 * \return 0; -EINVAL (NULL, or not a task), -ENOENT (the counters were
 *         never on while the task lived: out holds only serial and
 *         waiting_on).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_task_get_stats(const asyncio_task_t *task, asyncio_task_stats_t *out);

/**
 * Print the tree of the unfinished tasks of this thread's loop to out
 * (asyncio 3.14's print_call_graph() and `python -m asyncio pstree`).
 *
 * A task hangs under the task that awaits it: with asyncio_await() or
 * asyncio_shield(), through asyncio_gather() or asyncio_wait(), or as the
 * owner of the task group it was made in (under the oldest, when several
 * await it: the line says how many more). Tasks awaited by none are the
 * roots, in the order they were made. A line gives the name, the serial
 * number, the state and what the task waits on; with debug mode or the
 * task counters on when it was made, also which task made it and where:
 *
 *     Task "main" #1: waiting (task group)
 *     ├── Task "server" #2: waiting (fd readable), made by #1 at main+0x5d (./srv)
 *     │   └── Task "conn-1" #4: waiting (fd readable), made by #2 at ...
 *     └── Task "ticker" #3: waiting (sleep), made by #1 at ...
 *
 * `ASYNCIO_DUMP_SIGNAL=USR1` (or USR2, HUP, QUIT, WINCH, a number) in the
 * environment when the main thread's loop is made has that signal print
 * the tree to stderr, at any time, from outside: `kill -USR1 PID`.
 *
 * \param out  where to print (flushed after)
 * \return the number of tasks printed; -EINVAL (out NULL), -EPERM (no loop
 *         in this thread), -ENOMEM.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_print_call_graph(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
