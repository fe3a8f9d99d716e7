/**
 * \file asyncio/signal.h
 * \brief Unix signal handlers run by the loop as callbacks.
 *
 * Unix signal handlers run by the loop as callbacks (asyncio's
 * loop.add_signal_handler and remove_signal_handler).
 *
 * It includes the system's <%signal.h>, for the signal numbers (SIGINT,
 * SIGTERM, ...).
 *
 * Process-wide state: signal dispositions and the signal mask, which a
 * handler changes while it is installed (asyncio_add_signal_handler() says
 * how, and what children inherit).
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_SIGNAL_H
#define ASYNCIO_SIGNAL_H

#include <asyncio/common.h>

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A signal handler, run by the loop as a callback (not in a task: it must
 * not wait).
 *
 * \param signum  the signal that arrived
 * \param arg     what asyncio_add_signal_handler() was given
 */
typedef void (*asyncio_signal_callback)(int signum, void *arg);

/**
 * Call cb(signum, arg) from the loop each time signum arrives
 * (loop.add_signal_handler).
 *
 * cb runs as a callback (not in a task); it replaces a handler this loop
 * had for signum. The signal reaches the loop one of three ways, by what
 * the system and the loop's backend have:
 *  - the kqueue backend (the BSDs, macOS): its own filter, EVFILT_SIGNAL.
 *    A kernel kqueue sees a signal whatever its disposition, which still
 *    runs, so the library sets it to be ignored (SIGCHLD: a handler that
 *    does nothing, as an ignored SIGCHLD would reap children by itself)
 *    and gives the disposition back when the handler goes. Which signals
 *    it set to be ignored is process-wide state of the library's, as
 *    dispositions are: the children asyncio_create_subprocess_exec()
 *    starts get those at their default. (On Linux, over libkqueue, a test
 *    vehicle, the signal is blocked instead, and only signals sent to the
 *    process are seen, not those sent to a thread, such as raise()'s.)
 *  - signalfd (Linux, with the epoll or poll backend): the signal is
 *    blocked in the loop's thread and read from a signalfd;
 *  - else a sigaction() handler of the library's for signum (the
 *    disposition it replaced comes back when the handler is removed or the
 *    loop closes), which only writes to a pipe the loop reads.
 *
 * Either way cb runs in the loop like any callback and may use every call
 * that does not suspend. A signal the program blocked and that is pending
 * when the handler is added is the handler's (it runs soon), but in the
 * third way, where it stays pending until the program unblocks it.
 *
 * As in asyncio, only the main thread's loop takes handlers (the thread
 * main() runs in): in a program with a loop in each of several threads,
 * that loop owns the signals and tells the others what to do
 * (asyncio_loop_stop(), or asyncio_call_soon_threadsafe()). In a program
 * with other threads, block the signal in them too (threads started from
 * the loop's thread after this call inherit the mask; executors' threads
 * block every signal), or the kernel may deliver it there.
 *
 * A handler may run whenever the loop polls, until it is removed or the
 * loop is closed: in the iteration after asyncio_run()'s main task ended,
 * and during the close's wind-down, too. So what arg points to must live
 * that long (or the handler be removed first).
 *
 * Where the signal is blocked (signalfd, libkqueue), children inherit the
 * signal mask: a program started from the loop's thread with
 * posix_spawn(), or fork() and exec(), while a handler is installed runs
 * with signum blocked (a child that never sees SIGINT or SIGTERM), until
 * the handler is removed. Reset the mask in the child: with posix_spawn, a
 * spawn attribute with an empty mask,
 *
 * \code
 * posix_spawnattr_t attr;
 * sigset_t none;
 * sigemptyset(&none);
 * posix_spawnattr_init(&attr);
 * posix_spawnattr_setsigmask(&attr, &none);
 * posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
 * posix_spawn(&pid, path, NULL, &attr, argv, environ);
 * posix_spawnattr_destroy(&attr);
 * \endcode
 *
 * or, after fork() and before exec(), sigprocmask(SIG_SETMASK, &none,
 * NULL) in the child. (asyncio_create_subprocess_exec() does this.)
 *
 * \param signum  the signal, 1 to NSIG - 1, not SIGKILL or SIGSTOP
 * \param cb      the handler; not NULL
 * \param arg     passed to cb; it must live as long as the handler may run
 * \return 0; -EINVAL (bad signum, SIGKILL, SIGSTOP, cb NULL), -EPERM (no
 *         loop in this thread), -EXDEV (not the main thread), -ENOMEM,
 *         -EMFILE.
 * \suspends No.
 * \context The loop's thread, the main thread's only: a task or a callback,
 *          or the thread before its loop runs.
 */
ASYNCIO_API int asyncio_add_signal_handler(int signum, asyncio_signal_callback cb, void *arg);

/**
 * Remove this loop's handler for signum (loop.remove_signal_handler).
 *
 * It unblocks signum, or gives back its disposition. A signal that came and
 * was not handled yet is dropped, not left to its default action.
 *
 * \param signum  the signal, as asyncio_add_signal_handler()'s
 * \return 1 if there was a handler, 0 if not; -EINVAL (bad signum), -EPERM
 *         (no loop in this thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_remove_signal_handler(int signum);

#ifdef __cplusplus
}
#endif

#endif
