/**
 * \file asyncio/loop.h
 * \brief Running the event loop, time, and scheduled callbacks.
 *
 * asyncio_run() runs a program's main task in a loop of its own; the calls
 * of asyncio.Runner's life cycle (asyncio_new_event_loop(),
 * asyncio_loop_run_until_complete(), asyncio_loop_close()) do the same in
 * steps; another event loop can drive this one (asyncio_loop_backend_fd(),
 * asyncio_loop_run_nowait()); callbacks are scheduled with
 * asyncio_call_soon(), asyncio_call_later() and asyncio_call_at().
 *
 * \par Process-wide state
 * To name the task whose stack overflowed, the first loop made installs a
 * SIGSEGV handler (SA_ONSTACK) if SIGSEGV still has its default action; it
 * stays for the process's life and passes any other fault on to the
 * default action. Each thread that makes a loop gets an alternate signal
 * stack for it (unless it has one), removed when the loop closes. A
 * program that handles SIGSEGV itself, set before the first loop is made,
 * keeps its handler, and overflows are then not named.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_LOOP_H
#define ASYNCIO_LOOP_H

#include <asyncio/common.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The body of a task (and of the main task given to asyncio_run()).
 *
 * Returning -ECANCELED means the task finished as cancelled. A task whose
 * cancellation was requested but never delivered (it never waited
 * afterwards) finishes as cancelled even if it returns 0, as in asyncio.
 *
 * \param arg     the argument it was created with
 * \param result  its result slot (initially NULL): a task that succeeds
 *                leaves its result in *result
 * \return 0 (or more) when it succeeded, leaving its result in *result, or
 *         a negative errno when it failed.
 */
typedef int (*asyncio_fn)(void *arg, void **result);

/**
 * A plain callback, run by the loop (not in a task: it must not wait).
 *
 * \param arg  the argument it was scheduled with
 */
typedef void (*asyncio_callback)(void *arg);

/**
 * Options for asyncio_run_ex() and asyncio_new_event_loop().
 *
 * Zero-initialise, then set what you need.
 */
typedef struct asyncio_run_options {
    /** Default stack size of tasks in bytes (0: ASYNCIO_STACK_DEFAULT).
     *  Rounded up to the page size; at least ASYNCIO_STACK_MIN (and at most
     *  ASYNCIO_STACK_MAX). */
    size_t stack_size;
    /** Poller backend: "epoll" (Linux), "kqueue" (the BSDs, macOS; Linux
     *  only in a build over libkqueue), "poll" (any POSIX), or NULL for the
     *  environment variable ASYNCIO_BACKEND, else the platform's best. */
    const char *backend;
    /** Busy polling, in microseconds (0: $ASYNCIO_BUSY_POLL_US, else off;
     *  at most ASYNCIO_BUSY_POLL_MAX_US).
     *
     *  When the loop is about to sleep and its last sleep was short (at most
     *  twice this), it first polls without blocking for up to this long: a
     *  request that comes within it is taken without a sleep and a wake-up,
     *  which saves the peer that sends it the cost of waking the loop, and
     *  the loop some latency. It costs up to this much CPU per sleep while
     *  the loop is busy, nothing when it is idle (a long sleep turns it off
     *  until a sleep is short again). Worth it for a server on its own core
     *  that trades CPU for throughput or latency; off by default. */
    unsigned busy_poll_us;
    /** Guard region below every task stack, in bytes (0:
     *  ASYNCIO_STACK_GUARD_DEFAULT; at most ASYNCIO_STACK_GUARD_MAX).
     *
     *  Rounded up to the page size, and maybe a page more, so that stacks do
     *  not share cache sets. A task that runs past the end of its stack
     *  faults in it and the program stops with a message naming the task.
     *  Task code built without -fstack-clash-protection can jump over the
     *  guard with a frame larger than it (a big local array) and write into
     *  another task's stack unseen: build task code with that flag (gcc 8+,
     *  clang 11+; it touches every page of a large frame in order), or make
     *  the guard larger than any frame. Where the kernel has
     *  MADV_GUARD_INSTALL (Linux 6.13+) a guard costs no memory; elsewhere
     *  it is an mprotect'ed region, which costs address space only (the
     *  environment variable ASYNCIO_STACK_GUARD=mprotect asks for that
     *  region everywhere). */
    size_t stack_guard;
    /** The stack sweep, in seconds (asyncio_loop_set_stack_sweep()): a task
     *  parked longer than this has the live part of its stack moved to the
     *  heap and its stack's pages given back to the kernel. Positive turns
     *  it on with that threshold (1.0 is a good start), negative keeps it
     *  off whatever $ASYNCIO_STACK_SWEEP says, 0 leaves it to
     *  $ASYNCIO_STACK_SWEEP (seconds; unset, empty or 0: off). */
    double stack_sweep;
    /** Debug mode (asyncio.run(debug=...); see <asyncio/debug.h>): positive
     *  turns it on from the start, negative keeps it off whatever
     *  $ASYNCIO_DEBUG says, 0 leaves it to $ASYNCIO_DEBUG. */
    int debug;
} asyncio_run_options_t;

/** The most busy polling the options allow: 1 s, in microseconds.
 *  The bound of asyncio_run_options_t::busy_poll_us, $ASYNCIO_BUSY_POLL_US
 *  and asyncio_executor_options_t::spin_us. */
#define ASYNCIO_BUSY_POLL_MAX_US 1000000u

/** The smallest task stack size the options allow, in bytes (16 KiB). */
#define ASYNCIO_STACK_MIN ((size_t)16 * 1024)
/** The largest task stack size the options allow, in bytes (1 GiB). */
#define ASYNCIO_STACK_MAX ((size_t)1024 * 1024 * 1024)
/** The stack size of tasks when the options give none, in bytes (256 KiB). */
#define ASYNCIO_STACK_DEFAULT ((size_t)256 * 1024)
/** The guard region below a task stack when the options give none, in bytes
 *  (64 KiB). */
#define ASYNCIO_STACK_GUARD_DEFAULT ((size_t)64 * 1024)
/** The largest guard region below a task stack the options allow, in bytes
 *  (64 MiB). */
#define ASYNCIO_STACK_GUARD_MAX ((size_t)64 * 1024 * 1024)

/**
 * Run main as the first task of a new loop until it finishes (asyncio.run()).
 *
 * Create this thread's event loop, run main(arg, result) as its first task
 * (named "main") until it finishes, then cancel every task still alive and
 * run the loop until they have all finished (a task that catches the
 * cancellation and waits again is cancelled again), run the callbacks they
 * left ready, and free everything the loop created (tasks, futures,
 * handles, stacks); callbacks still scheduled for later never run.
 * The same as asyncio_new_event_loop(), asyncio_loop_run_until_complete(),
 * asyncio_loop_close() and asyncio_loop_unref().
 *
 * \param main    the main task's body; not NULL
 * \param arg     passed to main
 * \param result  receives main's result, or NULL
 * \return main's return value: 0 or more, or a negative errno if main
 *         failed, -ECANCELED if it finished cancelled. Errors before main
 *         runs: -EINVAL (main is NULL, or $ASYNCIO_BUSY_POLL_US is not a
 *         number of microseconds up to ASYNCIO_BUSY_POLL_MAX_US), -EBUSY (this
 *         thread has a loop already, running or not), -ENOENT (unknown
 *         backend), -ENOMEM, or an errno of the poller's creation (-EMFILE
 *         ...).
 * \suspends No: it blocks the calling thread while the loop runs; it is not
 *           itself a task.
 * \context Outside the loop: a thread that has no loop.
 */
ASYNCIO_API int asyncio_run(asyncio_fn main, void *arg, void **result);

/**
 * asyncio_run() with options (asyncio.run()).
 *
 * \param main    the main task's body; not NULL
 * \param arg     passed to main
 * \param result  receives main's result, or NULL
 * \param opts    the options, or NULL (the defaults)
 * \return as asyncio_run(); also -EINVAL for a stack size outside
 *         [ASYNCIO_STACK_MIN, ASYNCIO_STACK_MAX], busy_poll_us above
 *         ASYNCIO_BUSY_POLL_MAX_US, stack_guard above
 *         ASYNCIO_STACK_GUARD_MAX, stack_sweep NaN or above 1e9, or
 *         $ASYNCIO_STACK_SWEEP not a number of seconds; -ENOTSUP for a
 *         positive stack_sweep where the sweep is not available (see
 *         asyncio_loop_set_stack_sweep()).
 * \suspends No: it blocks the calling thread while the loop runs.
 * \context Outside the loop: a thread that has no loop.
 */
ASYNCIO_API int asyncio_run_ex(asyncio_fn main, void *arg, void **result,
                   const asyncio_run_options_t *opts);

/* ---- the loop's life cycle (asyncio.Runner and the loop's methods) -------- */

/**
 * A loop, as a handle.
 *
 * A loop belongs to the thread that made it: it runs there only, and the
 * calls that run or close it return -EXDEV from any other thread. Several
 * threads may each have a loop and run it at the same time (a loop per
 * core: see the README's "A loop on every core").
 * The handle is reference-counted and outlives the loop for as long as
 * someone holds a reference: it then just says the loop is closed, and
 * every call that needs the loop returns -ESHUTDOWN (asyncio's "Event loop
 * is closed"); a loop that closed in debug mode also says so on stderr,
 * naming the call (asyncio_loop_close() again excepted: it may be called
 * twice).
 *
 * With a loop in each of several threads, the main thread's owns the
 * signals (asyncio_add_signal_handler()): close it last, as its close
 * unblocks them, and a signal that comes after would then end the process
 * while the other loops still run.
 *
 * Life cycle, as asyncio's (asyncio.Runner, loop.run_until_complete(),
 * run_forever(), stop(), close()):
 *
 * \code
 * asyncio_loop_t *loop;
 * asyncio_new_event_loop(&loop, NULL);           // this thread's loop
 * asyncio_loop_run_until_complete(loop, main, arg, &result);
 * asyncio_loop_run_until_complete(loop, more, arg, &result); // again
 * asyncio_loop_close(loop);   // cancel what is left, free the loop
 * asyncio_loop_unref(loop);   // the handle
 * \endcode
 *
 * asyncio_run() is exactly these four calls.
 */
typedef struct asyncio_loop asyncio_loop_t;

/**
 * Make the calling thread's loop (asyncio.new_event_loop() and
 * set_event_loop()).
 *
 * It becomes the thread's current loop: from now until it is closed, the
 * calls that act on "the loop" from this thread (create_task, call_soon,
 * call_later, open_connection, ...) act on it, also while it is not
 * running, so that work can be scheduled before it runs. Its tasks and
 * callbacks run only while one of the run calls runs it
 * (asyncio_loop_run_until_complete(), asyncio_loop_run_forever(),
 * asyncio_loop_run_nowait()).
 *
 * \param loop  receives a reference the caller drops with
 *              asyncio_loop_unref() once done with it (after
 *              asyncio_loop_close()); not NULL
 * \param opts  options as asyncio_run_ex()'s, or NULL; it is read here only
 * \return 0; -EINVAL (loop NULL, or opts or the environment as
 *         asyncio_run_ex() refuses them), -ENOTSUP (as asyncio_run_ex()),
 *         -EBUSY (this thread has a loop
 *         already: one at a time per thread), -ENOENT (unknown backend),
 *         -ENOMEM, or an errno of the poller's creation (-EMFILE ...).
 * \suspends No.
 * \context Outside the loop: a thread that has no loop.
 */
ASYNCIO_API int asyncio_new_event_loop(asyncio_loop_t **loop, const asyncio_run_options_t *opts);

/**
 * The calling thread's loop, running or not (asyncio.get_event_loop()).
 *
 * The loop made by asyncio_new_event_loop() or asyncio_run() and not
 * closed yet.
 *
 * \return the loop, or NULL. Borrowed: valid until the loop is closed,
 *         unless the caller takes a reference. Never fails.
 * \suspends No.
 * \context Any thread: it answers for the calling thread.
 */
ASYNCIO_API asyncio_loop_t *asyncio_get_event_loop(void);

/**
 * The loop running in the calling thread (asyncio.get_running_loop()).
 *
 * A task or callback of that loop gets it; the thread that runs it, between
 * run calls, gets NULL. The pointer is valid while that loop lives (until
 * it is closed). A thread that may still use it after that must hold a
 * reference: take one with asyncio_loop_ref() while the loop is surely
 * alive (in the loop's thread, before handing the pointer over), and drop
 * it with asyncio_loop_unref() when done.
 *
 * \return the loop, or NULL if none runs in this thread. Never fails.
 * \suspends No.
 * \context Any thread: it answers for the calling thread.
 */
ASYNCIO_API asyncio_loop_t *asyncio_get_running_loop(void);

/**
 * Take a reference to loop.
 *
 * \param loop  the handle, which must be valid: alive, or referenced by
 *              the caller; NULL is allowed
 * \return loop, or NULL if loop is NULL.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API asyncio_loop_t *asyncio_loop_ref(asyncio_loop_t *loop);

/**
 * Drop a reference (asyncio_new_event_loop()'s or asyncio_loop_ref()'s).
 *
 * The last one frees the handle; a loop not closed yet stays alive (it
 * holds a reference of its own until closed).
 *
 * \param loop  the handle; NULL is ignored
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API void asyncio_loop_unref(asyncio_loop_t *loop);

/**
 * Run loop until fn, started now as a task, has finished
 * (loop.run_until_complete()).
 *
 * fn(arg, result) runs as a task named "main". As asyncio does, the loop
 * stops in the iteration after the one in which the task finished (where
 * the task's done callbacks run). Other tasks and callbacks of the loop run
 * meanwhile; what is left when it returns stays for the next run or for the
 * close.
 *
 * \param loop    the calling thread's loop
 * \param fn      the task's body; not NULL
 * \param arg     passed to fn
 * \param result  receives fn's result, or NULL
 * \return fn's return value: 0 or more, or the negative errno it failed
 *         with (-ECANCELED if it finished cancelled). Other errors (fn never
 *         ran, or was left running): -EINVAL (loop or fn NULL), -ESHUTDOWN
 *         (loop closed), -EXDEV (another thread's loop), -EBUSY (the loop is
 *         running: called from one of its tasks or callbacks), -ENOMEM (no
 *         task could be made), -EINTR (the loop was stopped with
 *         asyncio_loop_stop() before the task finished: the task goes on at
 *         the next run, or is cancelled by the close).
 * \suspends No: it blocks the calling thread while the loop runs; it is not
 *           itself a task.
 * \context Outside the loop: the loop's own thread, not from its tasks or
 *          callbacks.
 */
ASYNCIO_API int asyncio_loop_run_until_complete(asyncio_loop_t *loop, asyncio_fn fn, void *arg,
                                                void **result);

/**
 * Run loop until asyncio_loop_stop() is called (loop.run_forever()).
 *
 * A stop made before the call (and not consumed yet) makes it run one
 * iteration, polling without blocking, then return.
 *
 * \param loop  the calling thread's loop
 * \return 0; -EINVAL, -ESHUTDOWN, -EXDEV, -EBUSY as
 *         asyncio_loop_run_until_complete().
 * \suspends No: it blocks the calling thread while the loop runs.
 * \context Outside the loop: the loop's own thread, not from its tasks or
 *          callbacks.
 */
ASYNCIO_API int asyncio_loop_run_forever(asyncio_loop_t *loop);

/**
 * Ask loop to stop (loop.stop()).
 *
 * The run call that runs it returns after the iteration under way has run
 * what it had ready (callbacks scheduled by those run at the next run); if
 * it is not running, the next run call runs one iteration, then returns.
 *
 * \param loop  the loop
 * \return 0; -EINVAL (NULL), -ESHUTDOWN (closed), -ENOMEM (another thread's
 *         request could not be queued).
 * \suspends No.
 * \context Any thread: from another one the request goes through the
 *          loop's inbox, as asyncio_call_soon_threadsafe() (and wakes the
 *          loop).
 */
ASYNCIO_API int asyncio_loop_stop(asyncio_loop_t *loop);

/**
 * Whether loop is running (loop.is_running()): inside one of its run calls.
 *
 * \param loop  the loop
 * \return 1 if it is running, 0 if not (also once closed); -EINVAL if loop
 *         is NULL.
 * \suspends No.
 * \context Any thread; from another, the answer may be outdated by the time
 *          it is read.
 */
ASYNCIO_API int asyncio_loop_is_running(asyncio_loop_t *loop);

/**
 * Whether loop has closed (loop.is_closed()): it accepts no more callbacks.
 *
 * \param loop  the loop
 * \return 1 if it has closed, 0 if not; -EINVAL if loop is NULL.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API int asyncio_loop_is_closed(asyncio_loop_t *loop);

/**
 * Close loop, as asyncio.Runner.close() (and asyncio_run()) does.
 *
 * Cancel every task still alive and run the loop until they have all
 * finished (a task that catches the cancellation and waits again is
 * cancelled again), run the callbacks they left ready, shut the default
 * executor down (its running calls are waited for), release what other
 * threads posted and the loop did not run, and free everything the loop
 * made (tasks, futures, handles, stacks); callbacks scheduled for later
 * never run. The thread has no loop any more (a new one may be made). The
 * handle stays valid until its last reference is dropped.
 *
 * \param loop  the calling thread's loop
 * \return 0; -EINVAL (NULL), -ESHUTDOWN (closed already), -EXDEV (another
 *         thread's loop), -EBUSY (the loop is running: called from one of
 *         its tasks or callbacks).
 * \suspends No: it blocks the calling thread while the tasks wind down.
 * \context Outside the loop: the loop's own thread, not from its tasks or
 *          callbacks.
 */
ASYNCIO_API int asyncio_loop_close(asyncio_loop_t *loop);

/* ---- embedding: another event loop drives this one ------------------------ */

/**
 * The fd that becomes readable when loop has work to handle, for another
 * event loop to watch.
 *
 * It becomes readable when loop has I/O or a wake-up (a signal, another
 * thread's callback, an executor's result) to handle: it is the backend's
 * own (epoll's fd; kqueue's). Watch it for reading in the other event loop
 * and call asyncio_loop_run_nowait() when it is readable, or when the time
 * that call gave has passed.
 *
 * \param loop  the calling thread's loop
 * \return the fd (owned by the loop: do not close it); -EINVAL (NULL),
 *         -ESHUTDOWN (closed), -EXDEV (another thread's loop), or -ENOTSUP
 *         (the poll() backend has no such fd: drive it with timeouts only,
 *         or use epoll).
 * \suspends No.
 * \context The loop's thread: outside the loop, a task or a callback.
 */
ASYNCIO_API int asyncio_loop_backend_fd(asyncio_loop_t *loop);

/**
 * Run one iteration of loop without blocking (uv_run(UV_RUN_NOWAIT)).
 *
 * Poll without waiting, run the callbacks and tasks that are ready and the
 * timers that are due.
 *
 * \param loop     the calling thread's loop
 * \param next_ns  if not NULL, receives how long the loop may wait before
 *                 it needs to run again unless its fd becomes readable: 0
 *                 (at once: work is ready), the nanoseconds to its next
 *                 timer, or -1 (only when the fd becomes readable)
 * \return 0; 1 if asyncio_loop_stop() was called (the stop is consumed: a
 *         program that runs the loop "until stopped" leaves off here);
 *         -EINVAL, -ESHUTDOWN, -EXDEV, -EBUSY as
 *         asyncio_loop_run_until_complete().
 * \suspends No: it does not block (but for what its callbacks and tasks
 *           do).
 * \context Outside the loop: the loop's own thread, not from its tasks or
 *          callbacks.
 */
ASYNCIO_API int asyncio_loop_run_nowait(asyncio_loop_t *loop, int64_t *next_ns);

/**
 * The poller backend name of this thread's loop.
 *
 * \return "epoll", "kqueue" or "poll" for the thread's loop (running or
 *         not: see asyncio_new_event_loop()), or NULL when the thread has
 *         none.
 * \suspends No.
 * \context Any thread: it answers for the calling thread.
 */
ASYNCIO_API const char *asyncio_loop_backend(void);

/**
 * Turn the stack sweep on or off for loop, or change its threshold.
 *
 * A task stays on its stack while it waits, and keeps the pages it touched
 * resident: about 4 KiB for a task parked in a read or a sleep, which uses
 * a few hundred bytes of them. With the sweep on, the loop looks at its
 * tasks once per threshold (in slices, from its own context, never on the
 * hot path): a task found waiting twice in a row, without having run in
 * between, has the live part of its stack (from its stack pointer to the
 * top) copied to a heap block of that size, and its stack's pages given
 * back to the kernel. When it is woken, the bytes are copied back, at the
 * same addresses, before it runs: a task that wakes after a long sleep
 * pays a page fault and a copy of a few hundred bytes, one that wakes
 * often never pays anything.
 *
 * Only tasks waiting on a sleep, a file descriptor, a stream, a lock, an
 * event, a condition, a semaphore, a barrier or a queue are swept, and not
 * inside a timeout scope nor while owning an open task group (whose
 * objects other tasks reach on its stack); tasks created with
 * asyncio_task_options_t::stack_sweep negative never are.
 *
 * The contract: while a task is swept, its stack's contents are elsewhere,
 * so nothing may read or write them. A task that gives another task or a
 * thread a pointer to one of its locals (a buffer, a lock or queue
 * declared in its function) and then waits in one of the waits above must
 * be created with stack_sweep negative: what the other side writes would
 * be lost, and what it reads would be zeros. The library's own state is
 * never on a parked stack.
 *
 * The guard region below each stack and the overflow report keep working;
 * AddressSanitizer keeps its view of the stack (its shadow is left as it
 * is while the bytes are away).
 *
 * \param loop     the loop
 * \param seconds  how long a task must have been waiting (about; at most
 *                 twice as long) before it is swept; 0 turns the sweep off
 *                 (swept tasks get their stacks back as they run)
 * \return 0; -EINVAL (loop NULL, seconds negative, NaN or above 1e9),
 *         -ENOTSUP (not available: ThreadSanitizer builds, under Valgrind,
 *         and where the context switch is the portable one, as on arm64
 *         or macOS), -ENOMEM, -ESHUTDOWN, -EXDEV.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_set_stack_sweep(asyncio_loop_t *loop, double seconds);

/**
 * The stack sweep's threshold (asyncio_loop_set_stack_sweep()).
 *
 * \param loop  the loop
 * \return the seconds, 0 when it is off; -EINVAL (as a double) for a NULL
 *         loop, -ESHUTDOWN or -EXDEV likewise.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API double asyncio_loop_get_stack_sweep(asyncio_loop_t *loop);

/**
 * What the stack sweep holds now: how many tasks are swept, and the heap
 * their stacks' live parts take.
 *
 * \param loop   the loop
 * \param tasks  receives the number of swept tasks; may be NULL
 * \param bytes  receives the bytes of their stacks on the heap; may be NULL
 * \return 0; -EINVAL (loop NULL), -ESHUTDOWN, -EXDEV.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_loop_stack_sweep_stats(asyncio_loop_t *loop, size_t *tasks,
                                               size_t *bytes);

/**
 * Seconds on the loop's monotonic clock (asyncio's loop.time()).
 *
 * Also usable outside a loop: it reads the same clock.
 *
 * \return the time in seconds. Never fails.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API double asyncio_loop_time(void);

/**
 * The same clock as asyncio_loop_time(), in nanoseconds.
 *
 * \return the time in nanoseconds. Never fails.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API uint64_t asyncio_loop_time_ns(void);

/**
 * A cancellable reference to a scheduled callback (asyncio.Handle,
 * asyncio.TimerHandle).
 *
 * It stays safe to use (cancel, query) after the callback ran or was
 * cancelled, for as long as the loop lives: it then simply says the
 * callback is no longer pending. asyncio_call_soon(), asyncio_call_later()
 * and asyncio_call_at() fill it in; its fields are private.
 */
typedef struct asyncio_handle {
    /** \cond PRIVATE */
    void *ptr;
    uint64_t id;
    uint64_t check; /* a hash of ptr, id and the loop: garbage is refused */
    /** \endcond */
} asyncio_handle_t;

/**
 * Schedule cb(arg) to run in a later iteration of the loop
 * (loop.call_soon()).
 *
 * Callbacks run in the order they were scheduled; one scheduled while the
 * loop runs ready callbacks runs in the next iteration, not the current
 * one.
 *
 * \param cb      the callback; not NULL
 * \param arg     passed to cb
 * \param handle  if not NULL, receives a handle for asyncio_handle_cancel()
 * \return 0; -EINVAL (cb is NULL), -EPERM (no loop in this thread),
 *         -ENOMEM.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_call_soon(asyncio_callback cb, void *arg, asyncio_handle_t *handle);

/**
 * Schedule cb(arg) to run after delay seconds (loop.call_later()).
 *
 * Callbacks with the same deadline run in the order they were scheduled.
 *
 * \param delay   seconds; 0 or less: due now (as asyncio: the callback runs
 *                at the next iteration); an infinite delay is accepted and
 *                never fires
 * \param cb      the callback; not NULL
 * \param arg     passed to cb
 * \param handle  if not NULL, receives a handle for asyncio_handle_cancel()
 * \return 0; -EINVAL (cb NULL, delay NaN), -EPERM (no loop in
 *         this thread), -ENOMEM.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_call_later(double delay, asyncio_callback cb, void *arg,
                       asyncio_handle_t *handle);

/**
 * Schedule cb(arg) at time when on asyncio_loop_time()'s clock
 * (loop.call_at()).
 *
 * \param when    the time, in seconds on asyncio_loop_time()'s clock; a past
 *                time runs cb in the next iteration; an infinite time never
 *                fires
 * \param cb      the callback; not NULL
 * \param arg     passed to cb
 * \param handle  if not NULL, receives a handle for asyncio_handle_cancel()
 * \return 0; -EINVAL (cb NULL, when NaN), -EPERM (no loop in this thread),
 *         -ENOMEM.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_call_at(double when, asyncio_callback cb, void *arg,
                    asyncio_handle_t *handle);

/**
 * Cancel a scheduled callback (Handle.cancel()).
 *
 * O(log n) for timers.
 *
 * \param handle  a handle filled in by asyncio_call_soon(),
 *                asyncio_call_later() or asyncio_call_at() of this thread's
 *                loop
 * \return 1 if it was pending and now will not run, 0 if it already ran or
 *         was cancelled; -EINVAL if handle is NULL or was not filled in by
 *         this loop (all zero, garbage, another loop's), -EPERM if the
 *         thread has no loop.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_handle_cancel(asyncio_handle_t *handle);

/**
 * Whether the callback behind handle is still pending.
 *
 * \param handle  a handle, as asyncio_handle_cancel()'s
 * \return 1 if it is still pending, 0 if not; -EINVAL, -EPERM as
 *         asyncio_handle_cancel().
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_handle_pending(const asyncio_handle_t *handle);

#ifdef __cplusplus
}
#endif

#endif
