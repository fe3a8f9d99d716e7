/**
 * \file asyncio.h
 * \brief libasyncio: Python's asyncio, in C; the one header to include.
 *
 * One event loop per thread, stackful coroutines as tasks, futures, sleep,
 * gather, wait_for and cancellation with asyncio's semantics.
 *
 * Conventions, for every function in this library (the manual's main page
 * says more):
 *  - A function that can fail returns int: 0 (or more) on success, a negative
 *    errno value on failure (-EINVAL for bad input, -ENOMEM, -ECANCELED,
 *    -ETIMEDOUT, -EPERM when a waiting call is made outside a task, ...).
 *  - "May suspend" in a function's description means it can park the calling
 *    task and let the loop run others. Such a call must be made from a task
 *    (else -EPERM). It returns -ECANCELED if the task is cancelled while it
 *    waits, or at once if it would wait while a cancellation is pending.
 *    A cancellation that comes after the wait was satisfied but before the
 *    task resumed is reported by that same wait, as in asyncio: nothing is
 *    lost by it (a future keeps its result, a timer or fd has nothing to
 *    give back). A cancellation requested while the task runs is reported
 *    by its next waiting call.
 *  - Objects belong to the loop that created them. Everything a loop created
 *    is freed when asyncio_run() returns; handles are invalid afterwards.
 *
 * It includes every public header, each after those it needs; each holds
 * one subject and documents its calls:
 *  - <asyncio/common.h>: ASYNCIO_API, the version (included by each)
 *  - <asyncio/loop.h>: asyncio_run, loop time, call_soon/later/at
 *  - <asyncio/future.h>: futures, done callbacks, await, shield
 *  - <asyncio/task.h>: tasks, sleep
 *  - <asyncio/io.h>: waiting for a file descriptor
 *  - <asyncio/timeout.h>: timeout scopes, wait_for
 *  - <asyncio/gather.h>: gather, wait, as_completed
 *  - <asyncio/taskgroup.h>: task groups
 *  - <asyncio/sync.h>: Lock, Event, Condition, Semaphore, Barrier
 *  - <asyncio/queue.h>: Queue, PriorityQueue, LifoQueue
 *  - <asyncio/net.h>: socket calls, getaddrinfo, datagram endpoints
 *  - <asyncio/stream.h>: streams, servers, open_connection
 *  - <asyncio/signal.h>: signal handlers
 *  - <asyncio/thread.h>: other threads: call_soon_threadsafe, executors,
 *    to_thread, run_coroutine_threadsafe
 *  - <asyncio/subprocess.h>: child processes: create_subprocess_exec/_shell
 *  - <asyncio/debug.h>: debug mode, the exception handler, task counters
 */
#ifndef ASYNCIO_H
#define ASYNCIO_H

#include <asyncio/common.h>
#include <asyncio/loop.h>
#include <asyncio/future.h>
#include <asyncio/task.h>
#include <asyncio/io.h>
#include <asyncio/timeout.h>
#include <asyncio/gather.h>
#include <asyncio/taskgroup.h>
#include <asyncio/sync.h>
#include <asyncio/queue.h>
#include <asyncio/net.h>
#include <asyncio/stream.h>
#include <asyncio/signal.h>
#include <asyncio/thread.h>
#include <asyncio/subprocess.h>
#include <asyncio/debug.h>

#endif
