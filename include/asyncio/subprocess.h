/**
 * \file asyncio/subprocess.h
 * \brief Child processes with pipes as streams (create_subprocess_exec and
 *        _shell, Process).
 *
 * Child processes with pipes as streams (asyncio's create_subprocess_exec
 * and create_subprocess_shell, and its Process).
 *
 * A child is started with posix_spawn() (vfork speed): in it, every signal
 * is unblocked (a loop blocks those it handles in its thread), every
 * handler is back to the default (exec does it; the library ignores no
 * signal), and no fd but its three standard ones is open (every fd the
 * library makes is close-on-exec; those of the program should be too).
 * Its end is watched with a pidfd in the loop's poller (Linux 5.3 and
 * later), or, where the system has no pidfd (or the environment variable
 * ASYNCIO_CHILD_WATCHER=sigchld, read at a loop's first spawn, asks for
 * it), after each SIGCHLD. Either way the library reaps its own children
 * only, by pid, never anyone else's.
 *
 * Process-wide state (the SIGCHLD watcher only; pidfds need none): the
 * library's SIGCHLD handler, installed at the first spawn that needs it
 * (and again at a spawn that finds another disposition, SIG_IGN included:
 * children the kernel reaps for SIG_IGN would lose their statuses), then
 * left installed; it passes every SIGCHLD on to the handler it replaced,
 * so another library's children are still that library's to reap. And the
 * table of the loops that have children watched so, whose fds the handler
 * writes: 64 loops at most at once (a spawn in a 65th is -EAGAIN). The
 * library owns both; a program that sets SIGCHLD's disposition itself
 * while such children run must pass the signal on, or their ends go
 * unseen until their loop closes.
 *
 * When its loop closes, a child still running is killed (SIGKILL) and
 * reaped, with a warning on stderr that names its pid (asyncio's
 * "unclosed transport" warning); the process object is freed with the
 * loop if its owner did not free it first.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_SUBPROCESS_H
#define ASYNCIO_SUBPROCESS_H

#include <asyncio/common.h>
#include <asyncio/loop.h>
#include <asyncio/stream.h>

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A child process (asyncio.subprocess.Process).
 *
 * Opaque: made by asyncio_create_subprocess_exec() or
 * asyncio_create_subprocess_shell(), freed with asyncio_process_release()
 * (or by its loop's close).
 */
typedef struct asyncio_process asyncio_process_t;

/** What one of the child's standard fds is (asyncio.subprocess.PIPE,
 *  DEVNULL, STDOUT; None: inherit). */
enum asyncio_stdio {
    ASYNCIO_STDIO_INHERIT = 0, /**< the parent's own (the default) */
    ASYNCIO_STDIO_PIPE,        /**< a pipe: the process has a stream for it */
    ASYNCIO_STDIO_DEVNULL,     /**< /dev/null */
    ASYNCIO_STDIO_FD,          /**< the caller's fd in the matching *_fd field
                                    (duplicated into the child; the caller
                                    keeps its own) */
    ASYNCIO_STDIO_STDOUT,      /**< stderr only: the same as stdout */
};

/**
 * Options of asyncio_create_subprocess_exec() and
 * asyncio_create_subprocess_shell().
 *
 * opts may be NULL: all inherited, the caller's directory and environment.
 * Zero-initialise, then set what you need.
 */
typedef struct asyncio_subprocess_options {
    /** What the child's stdin, stdout and stderr are (enum asyncio_stdio;
     *  0: ASYNCIO_STDIO_INHERIT). */
    enum asyncio_stdio stdin_mode, stdout_mode, stderr_mode;
    /** The caller's fd for stdin, with ASYNCIO_STDIO_FD (>= 0). */
    int stdin_fd, stdout_fd, stderr_fd;
    /** \var asyncio_subprocess_options_t::stdout_fd
     *  The caller's fd for stdout, with ASYNCIO_STDIO_FD (>= 0). */
    /** \var asyncio_subprocess_options_t::stderr_fd
     *  The caller's fd for stderr, with ASYNCIO_STDIO_FD (>= 0). */
    const char *cwd;        /**< working directory (NULL: the caller's) */
    char *const *env;       /**< "NAME=value" strings, NULL-terminated (NULL:
                                 the caller's environ) */
    int start_new_session;  /**< setsid() in the child (start_new_session=True) */
    int new_process_group;  /**< setpgid(0, 0) (process_group=0); not with the
                                 above */
    size_t limit;           /**< the pipes' stream read limit (0:
                                 ASYNCIO_STREAM_LIMIT) */
} asyncio_subprocess_options_t;

/**
 * Start a program with arguments (asyncio.create_subprocess_exec()).
 *
 * argv[0] is looked up in $PATH when it has no '/': the PATH of opts->env
 * when that is given, as Python's. As Python's defaults, the child gets no
 * fd but its three (close_fds: also the program's fds that are not
 * close-on-exec are closed in it, with glibc 2.34 or later), and SIGPIPE
 * and SIGXFSZ at their default action (restore_signals: a program that
 * ignores them does not pass that on). On failure nothing is left behind:
 * no child, no fd.
 *
 * \param proc  receives the process, which the caller frees with
 *              asyncio_process_release(); not NULL
 * \param argv  the program (argv[0]) and its arguments, NULL-terminated;
 *              not NULL, argv[0] not NULL
 * \param opts  the options, or NULL
 * \return 0; -EINVAL (proc or argv NULL, argv[0] NULL, a bad mode, an fd
 *         mode with a negative fd, STDOUT for other than stderr, both
 *         session options), -EPERM (no loop in this thread), -ENOENT (no
 *         such program, or cwd missing), -EACCES (not executable),
 *         -ENOEXEC, -ENAMETOOLONG (a path of opts->env's PATH too long),
 *         -EMFILE/-ENFILE (out of fds), -EAGAIN (no process could be made,
 *         or, watching through SIGCHLD, 64 other loops do so already),
 *         -ENOMEM, -ECHILD (with a pidfd: the child was reaped by someone
 *         else before it could be watched: SIGCHLD set to SIG_IGN, or a
 *         handler that waits for any child).
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_create_subprocess_exec(asyncio_process_t **proc, const char *const argv[],
                                               const asyncio_subprocess_options_t *opts);

/**
 * Start "/bin/sh -c cmd" (asyncio.create_subprocess_shell()).
 *
 * As asyncio_create_subprocess_exec().
 *
 * \param proc  receives the process, as asyncio_create_subprocess_exec()'s
 * \param cmd   the shell command; not NULL
 * \param opts  the options, or NULL
 * \return as asyncio_create_subprocess_exec(); -EINVAL also for cmd NULL.
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_create_subprocess_shell(asyncio_process_t **proc, const char *cmd,
                                                const asyncio_subprocess_options_t *opts);

/**
 * The child's process id (Process.pid).
 *
 * \param proc  the process
 * \return the pid; -EINVAL for NULL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API pid_t asyncio_process_pid(const asyncio_process_t *proc);

/**
 * The stream of the child's stdin (Process.stdin), when its mode was
 * ASYNCIO_STDIO_PIPE.
 *
 * stdout and stderr are pipes; stdin is a Unix socket pair, so that
 * writing to a child that has exited fails with -EPIPE rather than
 * raising SIGPIPE, and asyncio_stream_write_eof() ends its input while the
 * stream stays open.
 * The process owns the streams; asyncio_stream_close() on one (the usual
 * way to send the child an end of file on its stdin) is allowed and makes
 * the accessor return NULL from then on. The others are closed with the
 * process.
 *
 * \param proc  the process
 * \return the stream, or NULL (not a pipe, closed, or proc NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API asyncio_stream_t *asyncio_process_stdin(const asyncio_process_t *proc);
/**
 * The stream of the child's stdout (Process.stdout), when its mode was
 * ASYNCIO_STDIO_PIPE.
 *
 * A pipe, owned by the process, as asyncio_process_stdin() says.
 *
 * \param proc  the process
 * \return the stream, or NULL (not a pipe, closed, or proc NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API asyncio_stream_t *asyncio_process_stdout(const asyncio_process_t *proc);
/**
 * The stream of the child's stderr (Process.stderr), when its mode was
 * ASYNCIO_STDIO_PIPE.
 *
 * A pipe, owned by the process, as asyncio_process_stdin() says.
 *
 * \param proc  the process
 * \return the stream, or NULL (not a pipe, closed, or proc NULL).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API asyncio_stream_t *asyncio_process_stderr(const asyncio_process_t *proc);

/**
 * Wait until the child has exited (Process.wait()).
 *
 * A cancelled or timed-out wait leaves the child running. Waiting does not
 * read its pipes: a child that fills one blocks (use communicate). A child
 * whose pipes a grandchild still holds open is reported when it exits.
 *
 * \param proc        the process
 * \param returncode  if not NULL, receives its return code: its exit
 *                    status, or minus the number of the signal that killed
 *                    it (asyncio's returncode)
 * \return 0; -EINVAL, -EPERM (not in a task), -ECANCELED, -ETIMEDOUT (a
 *         timeout scope).
 * \suspends Yes: until the child has exited. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_process_wait(asyncio_process_t *proc, int *returncode);

/**
 * The return code, if the child has exited and been reaped
 * (Process.returncode).
 *
 * \param proc        the process
 * \param returncode  if not NULL, receives the return code, as
 *                    asyncio_process_wait()'s
 * \return 0 (*returncode set); -EAGAIN if the child has not been reaped yet
 *         (Process.returncode is None); -EINVAL.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_process_returncode(const asyncio_process_t *proc, int *returncode);

/**
 * Feed input to the child, read its output, and wait for it to exit
 * (Process.communicate()).
 *
 * Feed input to the child's stdin and close it, read its stdout and stderr
 * to their ends at the same time, then wait for it to exit: large data
 * both ways cannot deadlock. A child that exits without reading all its
 * input is not an error (-EPIPE is ignored, as in asyncio). If feeding or
 * reading fails, the rest is stopped and that error returned. Cancelled or
 * timed out, it stops reading and waiting, leaves the child running and
 * its stdin open (the input already queued may still be sent, as in
 * asyncio), and returns no output (the buffers are freed; what was read is
 * lost, as in asyncio).
 *
 * \param proc        the process
 * \param input       len bytes to feed; may be NULL with len 0. A stdin that
 *                    is not a pipe with input given is -EINVAL.
 * \param len         the number of bytes of input
 * \param out         if not NULL and stdout is a pipe, receives what stdout
 *                    gave in a malloc()ed buffer (free() it), NUL-terminated;
 *                    else it is set to NULL
 * \param outlen      if not NULL, receives the length of *out (the NUL not
 *                    counted), 0 when *out is NULL
 * \param err         as out, for stderr
 * \param errlen      as outlen, for stderr
 * \param returncode  if not NULL, receives the return code, as
 *                    asyncio_process_wait()'s
 * \return the same as asyncio_process_wait(); -EINVAL (also input NULL with
 *         len > 0, or input given and stdin not a pipe), -ENOMEM, or the
 *         error feeding or reading failed with.
 * \suspends Yes: until the child has exited and its output has been read.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_process_communicate(asyncio_process_t *proc, const void *input,
                                            size_t len, char **out, size_t *outlen, char **err,
                                            size_t *errlen, int *returncode);

/**
 * Send sig to the child (Process.send_signal()).
 *
 * \param proc  the process
 * \param sig   the signal, 0 to NSIG - 1
 * \return 0; -EINVAL (NULL, bad signal), -ESRCH (it has exited and was
 *         reaped: the pid may be another process's by now, so nothing is
 *         sent), or kill()'s error.
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_process_send_signal(asyncio_process_t *proc, int sig);
/**
 * Send SIGTERM to the child (Process.terminate()).
 *
 * \param proc  the process
 * \return as asyncio_process_send_signal().
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_process_terminate(asyncio_process_t *proc);
/**
 * Send SIGKILL to the child (Process.kill()).
 *
 * \param proc  the process
 * \return as asyncio_process_send_signal().
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API int asyncio_process_kill(asyncio_process_t *proc);

/**
 * Free the process object (asyncio's transport close()).
 *
 * Its streams are closed; a child still running is killed (SIGKILL) and
 * reaped by the loop in the background.
 *
 * \param proc  the process; NULL is ignored. Call it while the loop lives
 *              (after its close the loop has freed the object already).
 * \suspends No.
 * \context The loop's thread.
 */
ASYNCIO_API void asyncio_process_release(asyncio_process_t *proc);

#ifdef __cplusplus
}
#endif

#endif
