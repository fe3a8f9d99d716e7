/*
 * <asyncio/subprocess.h>: child processes with pipes as streams (asyncio's
 * create_subprocess_exec and create_subprocess_shell, and its Process).
 * Include <asyncio.h> rather than this file.
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

typedef struct asyncio_process asyncio_process_t;

/* What one of the child's standard fds is (asyncio.subprocess.PIPE,
 * DEVNULL, STDOUT; None: inherit). */
enum asyncio_stdio {
    ASYNCIO_STDIO_INHERIT = 0, /* the parent's own (the default) */
    ASYNCIO_STDIO_PIPE,        /* a pipe: the process has a stream for it */
    ASYNCIO_STDIO_DEVNULL,     /* /dev/null */
    ASYNCIO_STDIO_FD,          /* the caller's fd in the matching *_fd field
                                  (duplicated into the child; the caller
                                  keeps its own) */
    ASYNCIO_STDIO_STDOUT,      /* stderr only: the same as stdout */
};

/* Options (opts may be NULL: all inherited, the caller's directory and
 * environment). Zero-initialise, then set what you need. */
typedef struct asyncio_subprocess_options {
    enum asyncio_stdio stdin_mode, stdout_mode, stderr_mode;
    int stdin_fd, stdout_fd, stderr_fd; /* with ASYNCIO_STDIO_FD */
    const char *cwd;        /* working directory (NULL: the caller's) */
    char *const *env;       /* "NAME=value" strings, NULL-terminated (NULL:
                               the caller's environ) */
    int start_new_session;  /* setsid() in the child (start_new_session=True) */
    int new_process_group;  /* setpgid(0, 0) (process_group=0); not with the
                               above */
    size_t limit;           /* the pipes' stream read limit (0:
                               ASYNCIO_STREAM_LIMIT) */
} asyncio_subprocess_options_t;

/*
 * Start argv[0] with the arguments argv (NULL-terminated), looked up in
 * $PATH when it has no '/' (asyncio.create_subprocess_exec): the PATH of
 * opts->env when that is given, as Python's. As Python's defaults, the
 * child gets no fd but its three (close_fds: also the program's fds that
 * are not close-on-exec are closed in it, with glibc 2.34 or later), and
 * SIGPIPE and SIGXFSZ at their default action (restore_signals: a program
 * that ignores them does not pass that on). On success
 * *proc is the process, which the caller frees with
 * asyncio_process_release(). Returns 0, or: -EINVAL (proc or argv NULL,
 * argv[0] NULL, a bad mode, an fd mode with a negative fd, STDOUT for
 * other than stderr, both session options), -EPERM (no loop in this
 * thread), -ENOENT (no such program, or cwd missing), -EACCES (not
 * executable), -ENOEXEC, -EMFILE/-ENFILE (out of fds), -EAGAIN (no process
 * could be made, or, watching through SIGCHLD, 64 other loops do so
 * already), -ENOMEM, -ECHILD (with a pidfd: the child was reaped by
 * someone else before it could be watched: SIGCHLD set to SIG_IGN, or a
 * handler that waits for any child). On failure
 * nothing is left behind: no child, no fd. Does not suspend; from a task
 * or a loop callback.
 */
ASYNCIO_API int asyncio_create_subprocess_exec(asyncio_process_t **proc, const char *const argv[],
                                               const asyncio_subprocess_options_t *opts);

/* Start "/bin/sh -c cmd" (asyncio.create_subprocess_shell): as above;
 * -EINVAL also for cmd NULL. */
ASYNCIO_API int asyncio_create_subprocess_shell(asyncio_process_t **proc, const char *cmd,
                                                const asyncio_subprocess_options_t *opts);

/* The child's process id (Process.pid), or -EINVAL for NULL. */
ASYNCIO_API pid_t asyncio_process_pid(const asyncio_process_t *proc);

/*
 * The streams of the child's stdin, stdout and stderr (Process.stdin,
 * .stdout, .stderr) when their mode was ASYNCIO_STDIO_PIPE, else NULL.
 * stdout and stderr are pipes; stdin is a Unix socket pair, so that
 * writing to a child that has exited fails with -EPIPE rather than
 * raising SIGPIPE, and asyncio_stream_write_eof() ends its input while the
 * stream stays open.
 * The process owns them; asyncio_stream_close() on one (the usual way to
 * send the child an end of file on its stdin) is allowed and makes the
 * accessor return NULL from then on. The others are closed with the
 * process.
 */
ASYNCIO_API asyncio_stream_t *asyncio_process_stdin(const asyncio_process_t *proc);
ASYNCIO_API asyncio_stream_t *asyncio_process_stdout(const asyncio_process_t *proc);
ASYNCIO_API asyncio_stream_t *asyncio_process_stderr(const asyncio_process_t *proc);

/*
 * Wait until the child has exited (Process.wait()) and store its return
 * code in *returncode if not NULL: its exit status, or minus the number of
 * the signal that killed it (asyncio's returncode). Returns 0, -EINVAL,
 * -EPERM (not in a task), -ECANCELED, -ETIMEDOUT (a timeout scope): a
 * cancelled or timed-out wait leaves the child running. Waiting does not
 * read its pipes: a child that fills one blocks (use communicate). A child
 * whose pipes a grandchild still holds open is reported when it exits.
 * May suspend.
 */
ASYNCIO_API int asyncio_process_wait(asyncio_process_t *proc, int *returncode);

/* The return code if the child has exited and been reaped (0, *returncode
 * set), else -EAGAIN (Process.returncode is None); -EINVAL. Does not
 * suspend. */
ASYNCIO_API int asyncio_process_returncode(const asyncio_process_t *proc, int *returncode);

/*
 * Feed input (len bytes; input may be NULL with len 0) to the child's
 * stdin and close it, read its stdout and stderr to their ends at the same
 * time, then wait for it to exit (Process.communicate()): large data both
 * ways cannot deadlock. What stdout and stderr gave is returned in
 * malloc()ed buffers (*out, *err; free() them), NUL-terminated (the NUL
 * not counted in *outlen, *errlen), when those pointers are not NULL and
 * the stream is a pipe; else they are set to NULL and 0. A stdin that is
 * not a pipe with input given is -EINVAL; a child that exits without
 * reading all its input is not an error (-EPIPE is ignored, as in
 * asyncio). Returns the same as asyncio_process_wait(), and the return code
 * in *returncode; -ENOMEM. If feeding or reading fails, the rest is
 * stopped and that error returned. Cancelled or timed out, it stops
 * reading and waiting, leaves the child running and its stdin open (the
 * input already queued may still be sent, as in asyncio), and returns no
 * output (the buffers are freed; what was read is lost, as in asyncio).
 * May suspend.
 */
ASYNCIO_API int asyncio_process_communicate(asyncio_process_t *proc, const void *input,
                                            size_t len, char **out, size_t *outlen, char **err,
                                            size_t *errlen, int *returncode);

/* Send sig to the child (Process.send_signal()); terminate() is SIGTERM,
 * kill() SIGKILL. Returns 0, -EINVAL (NULL, bad signal), -ESRCH (it has
 * exited and was reaped: the pid may be another process's by now, so
 * nothing is sent). Does not suspend. */
ASYNCIO_API int asyncio_process_send_signal(asyncio_process_t *proc, int sig);
ASYNCIO_API int asyncio_process_terminate(asyncio_process_t *proc);
ASYNCIO_API int asyncio_process_kill(asyncio_process_t *proc);

/*
 * Free the process object: its streams are closed; a child still running
 * is killed (SIGKILL) and reaped by the loop in the background (asyncio's
 * transport close()). NULL is ignored. Does not suspend. Call it from the
 * loop's thread, while the loop lives (after its close the loop has freed
 * the object already).
 */
ASYNCIO_API void asyncio_process_release(asyncio_process_t *proc);

#ifdef __cplusplus
}
#endif

#endif
