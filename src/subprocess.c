/* Child processes (asyncio.subprocess): posix_spawn() with file actions
 * for the three standard fds, pipes as streams, and the child's end
 * watched through a pidfd in the poller, so that the library reaps its own
 * children only and needs no SIGCHLD handler (no process-wide state); or,
 * where there is no pidfd, after each SIGCHLD (sigchld.c), by pid.
 *
 * A process is on the loop's list of open things (loop->net.open) from its
 * start until freed: the loop's close kills and reaps a child still
 * running, with a warning, and frees the object. After asyncio_process_
 * release() of a running child, the object lives on (unowned) until the
 * loop has reaped it. */
#include "net.h"

#include <asyncio/subprocess.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PROCESS_MAGIC 0x50524f43U

struct asyncio_process {
    uint32_t magic;
    pid_t pid;
    int pidfd;                  /* watched until the child is reaped, then -1 */
    bool reaped;
    bool owned;                 /* asyncio_process_release() not called yet */
    int returncode;
    asyncio_future_t *exited;   /* done once reaped: what wait() awaits */
    asyncio_stream_t *stdio[3]; /* the pipes' streams, NULL once closed */
    struct loop *loop;
    struct net_open open;       /* on loop->net.open until freed */
    struct sigchld_child child; /* without a pidfd: checked after each SIGCHLD */
    bool kq_watched;            /* the kqueue backend reports its exit (EVFILT_PROC) */
};

static bool valid(const asyncio_process_t *p)
{
    return p && p->magic == PROCESS_MAGIC;
}

/* ---- the child's end ------------------------------------------------------ */

static void process_free(asyncio_process_t *p)
{
    for (int i = 0; i < 3; i++)
        if (p->stdio[i])
            asyncio_stream_close(p->stdio[i]); /* clears the slot */
    sigchld_forget(p->loop, &p->child);
    dlist_remove(&p->open.link);
    asyncio_future_release(p->exited);
    p->magic = 0;
    free(p);
}

/* asyncio's returncode of a waitid() status. */
static int returncode_of(const siginfo_t *si)
{
    return si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
}

/* Reap the child (it has exited, or must be waited for: block). */
static void reap(asyncio_process_t *p, bool block)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | (block ? 0 : WNOHANG));
    while (rc < 0 && errno == EINTR);
    if (rc == 0 && si.si_pid == 0)
        return; /* not ended: a SIGCHLD for another child (or a readable pidfd, not yet waitable) */
    /* ECHILD: someone else reaped it (a SIGCHLD handler of the program's
     * that waits for any child): its status is lost, as asyncio says 255. */
    p->returncode = rc == 0 ? returncode_of(&si) : 255;
    if (rc < 0)
        fprintf(stderr, "asyncio: child process %ld was reaped by someone else: returncode 255\n",
                (long)p->pid);
    p->reaped = true;
    if (p->kq_watched) { /* reaped before its event: no event for the next child of its pid */
        p->kq_watched = false;
        p->loop->poller.ops->watch_proc(&p->loop->poller, (int)p->pid, false);
    }
    if (p->pidfd >= 0) {
        io_watch(p->loop, p->pidfd, 0, NULL, NULL);
        asyncio_close(p->pidfd); /* the loop forgets the fd: its number comes back */
        p->pidfd = -1;
    }
    sigchld_forget(p->loop, &p->child);
    /* The code in the result too: a waiter reads it from there, as p may be
     * freed (released) by the time it resumes. */
    asyncio_future_set_result(p->exited, (void *)(intptr_t)p->returncode);
}

static void on_exit_ready(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    asyncio_process_t *p = arg;
    reap(p, false);
    if (p->reaped && !p->owned)
        process_free(p);
}

static void on_sigchld_check(struct sigchld_child *c)
{
    asyncio_process_t *p = container_of(c, asyncio_process_t, child);
    on_exit_ready(p->loop, -1, 0, p);
}

static void free_at_close(struct net_open *o);

void subprocess_proc_exited(struct loop *loop, int pid)
{
    for (struct dlist *n = loop->net.open.next; n != &loop->net.open; n = n->next) {
        struct net_open *o = container_of(n, struct net_open, link);
        if (o->free_at_close != free_at_close)
            continue; /* a stream's or a server's */
        asyncio_process_t *p = container_of(o, asyncio_process_t, open);
        if (p->pid == (pid_t)pid && !p->reaped && p->kq_watched) {
            p->kq_watched = false; /* reported once */
            on_exit_ready(loop, -1, 0, p); /* may free p */
            return;
        }
    }
}

/* The loop closes: a child still running is killed and reaped. */
static void free_at_close(struct net_open *o)
{
    asyncio_process_t *p = container_of(o, asyncio_process_t, open);
    if (!p->reaped) {
        if (p->owned) /* (a released one was killed already: no news) */
            fprintf(stderr, "asyncio: child process %ld still running at loop close: killed\n",
                    (long)p->pid);
        kill(p->pid, SIGKILL);
        reap(p, true);
    }
    process_free(p);
}

/* ---- spawning ------------------------------------------------------------- */

struct spawn_fds {
    int parent[3]; /* our ends of the pipes (-1: none) */
    int child[3];  /* what the child's fd i becomes (a pipe's end, or a
                      caller's fd moved above 2); ours to close after */
};

static void fds_close(int fds[3])
{
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* The child's stdin is a socket pair, not a pipe: a write to it after the
 * child has gone then fails with EPIPE instead of raising SIGPIPE (a
 * stream sends with MSG_NOSIGNAL; a pipe has no such flag), and
 * asyncio_stream_write_eof() can end it (CPython does the same on AIX).
 * Its stdout and stderr, which the loop only reads, are pipes. */
static int make_pipe(struct spawn_fds *f, int i)
{
    int p[2];
    if (i == 0 ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0
               : pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    if (i == 0) {
        int t = p[0]; /* p[0]: the child reads, p[1]: the loop writes */
        p[0] = p[1];
        p[1] = t;
    }
    int rd = fd_above_stdio(p[0]), wr = rd < 0 ? -1 : fd_above_stdio(p[1]);
    if (rd < 0 || wr < 0) {
        int err = -errno;
        if (rd >= 0)
            close(rd);
        else
            close(p[1]);
        return err;
    }
    f->parent[i] = i == 0 ? wr : rd;
    f->child[i] = i == 0 ? rd : wr;
    return 0;
}

static int check_options(const asyncio_subprocess_options_t *o)
{
    enum asyncio_stdio m[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
    int fd[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
    for (int i = 0; i < 3; i++) {
        if ((unsigned)m[i] > ASYNCIO_STDIO_STDOUT || (m[i] == ASYNCIO_STDIO_STDOUT && i != 2))
            return -EINVAL;
        if (m[i] == ASYNCIO_STDIO_FD && fd[i] < 0)
            return -EINVAL;
    }
    if (o->start_new_session && o->new_process_group)
        return -EINVAL;
    return 0;
}

/* The file actions for the three fds, in order (stderr as stdout after
 * stdout is in place). */
static int add_actions(posix_spawn_file_actions_t *fa, const asyncio_subprocess_options_t *o,
                       const struct spawn_fds *f)
{
    enum asyncio_stdio m[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
    int fd[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
    static const int devnull_flags[3] = {O_RDONLY, O_WRONLY, O_WRONLY};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        switch (m[i]) {
        case ASYNCIO_STDIO_INHERIT:
            break;
        case ASYNCIO_STDIO_PIPE:
            rc = posix_spawn_file_actions_adddup2(fa, f->child[i], i);
            break;
        case ASYNCIO_STDIO_DEVNULL:
            rc = posix_spawn_file_actions_addopen(fa, i, "/dev/null", devnull_flags[i], 0);
            break;
        case ASYNCIO_STDIO_FD: /* (moved above 2 if it was 0-2: see spawn) */
            rc = posix_spawn_file_actions_adddup2(fa, f->child[i] >= 0 ? f->child[i] : fd[i], i);
            break;
        case ASYNCIO_STDIO_STDOUT:
            rc = posix_spawn_file_actions_adddup2(fa, 1, 2);
            break;
        }
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Nothing but 0-2 is inherited, as Python's close_fds=True: also the
     * program's fds that are not close-on-exec. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    if (rc == 0 && o->cwd)
        rc = posix_spawn_file_actions_addchdir_np(fa, o->cwd);
#else
    if (rc == 0 && o->cwd)
        rc = ENOTSUP; /* GCOVR_EXCL_LINE: no chdir file action here */
#endif
    return -rc;
}

static int set_attrs(posix_spawnattr_t *attr, const asyncio_subprocess_options_t *o)
{
    /* Every signal unblocked: a loop's handled signals are blocked in its
     * thread. exec resets every handler (the library's SIGSEGV one for
     * stack overflows included) but keeps SIG_IGN: the library's (a kernel
     * kqueue's signals) are reset, and of the program's these two: */
    sigset_t none, dfl;
    sigemptyset(&none);
    /* As Python's restore_signals: SIGPIPE and SIGXFSZ back to the default,
     * which a server commonly ignores and its children must not inherit
     * ignored (a "yes | head" in a shell would never end). */
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
#ifdef SIGXFSZ
    sigaddset(&dfl, SIGXFSZ);
#endif
    signals_ignored(&dfl);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
    if (o->start_new_session)
        flags |= POSIX_SPAWN_SETSID;
#else
    if (o->start_new_session)
        return -ENOTSUP; /* GCOVR_EXCL_LINE: glibc before 2.26 */
#endif
    if (o->new_process_group)
        flags |= POSIX_SPAWN_SETPGROUP;
    int rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &dfl);
    if (rc == 0 && o->new_process_group)
        rc = posix_spawnattr_setpgroup(attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr, flags);
    return -rc;
}

static int pidfd_open_(pid_t pid)
{
#ifdef HAVE_PIDFD
    return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec, always */
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* How the loop watches its children's ends: with the kqueue backend, by
 * its EVFILT_PROC; else with pidfds where the system has them; else (or if
 * ASYNCIO_CHILD_WATCHER=sigchld asks for it) after each SIGCHLD
 * (sigchld.c). Decided at its first spawn. */
enum watch { WATCH_SIGCHLD, WATCH_PIDFD, WATCH_KQUEUE };

static enum watch watch_of(struct loop *loop)
{
    if (!loop->net.pidfds) {
        const char *e = getenv("ASYNCIO_CHILD_WATCHER");
        bool forced = e && strcmp(e, "sigchld") == 0;
        if (!forced && loop->poller.ops->watch_proc) {
            loop->net.pidfds = 2;
        } else {
            int fd = forced ? -1 : pidfd_open_(getpid());
            /* Any failure but ENOSYS is the moment's: the spawn's own
             * pidfd_open() will say it. */
            loop->net.pidfds = forced || (fd < 0 && errno == ENOSYS) ? -1 : 1;
            if (fd >= 0)
                close(fd);
        }
    }
    return loop->net.pidfds == 2 ? WATCH_KQUEUE : loop->net.pidfds > 0 ? WATCH_PIDFD
                                                                        : WATCH_SIGCHLD;
}

/* The child was spawned but cannot be watched: kill and reap it. */
static void abandon(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* The process object for the running child pid, with its streams. */
static int adopt(struct loop *loop, pid_t pid, enum watch w, struct spawn_fds *f, size_t limit,
                 asyncio_process_t **out)
{
    bool pidfd = w == WATCH_PIDFD;
    asyncio_process_t *p = calloc(1, sizeof *p);
    if (p)
        p->pidfd = -1;
    int rc = p ? asyncio_future_new(&p->exited) : -ENOMEM;
    bool gone = false;
    if (rc == 0 && pidfd && (p->pidfd = pidfd_open_(pid)) < 0) {
        rc = -errno;
        /* Reaped already, by someone else (SIGCHLD ignored, or a handler
         * that waits for any child): its pid may be another's by now. */
        gone = rc == -ESRCH;
        if (gone)
            rc = -ECHILD;
    }
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (f->parent[i] < 0)
            continue;
        if ((rc = asyncio_stream_open(&p->stdio[i], f->parent[i], limit)) == 0) {
            f->parent[i] = -1; /* the stream's now */
            stream_set_owner_slot(p->stdio[i], &p->stdio[i]);
        }
    }
    if (rc == 0 && pidfd)
        rc = io_watch(loop, p->pidfd, POLLER_IN, on_exit_ready, p);
    if (rc == 0 && w == WATCH_KQUEUE) {
        rc = loop->poller.ops->watch_proc(&loop->poller, (int)pid, true);
        p->kq_watched = rc == 0;
        gone = rc == -ESRCH; /* reaped already, by someone else */
        if (gone)
            rc = -ECHILD;
    }
    if (rc < 0) {
        if (!gone)
            abandon(pid);
        if (p) {
            for (int i = 0; i < 3; i++)
                if (p->stdio[i])
                    asyncio_stream_abort(p->stdio[i]);
            if (p->pidfd >= 0)
                asyncio_close(p->pidfd);
            asyncio_future_release(p->exited);
            free(p);
        }
        return rc;
    }
    p->magic = PROCESS_MAGIC;
    p->pid = pid;
    p->owned = true;
    p->loop = loop;
    p->open.free_at_close = free_at_close;
    dlist_push_back(&loop->net.open, &p->open.link);
    if (w == WATCH_SIGCHLD) {
        /* A SIGCHLD since the spawn has written the watcher's fd: the
         * check it makes comes after this. */
        p->child.check = on_sigchld_check;
        sigchld_watch(loop, &p->child);
    }
    *out = p;
    return 0;
}

/* The program's path for a name without '/': the first executable file of
 * that name in env's PATH (Python looks in the PATH of the env given, not
 * the caller's), into buf. 0, -ENOENT, -EACCES (found, but none may be
 * run), -ENAMETOOLONG. */
static int find_in_path(const char *name, char *const *env, char *buf, size_t cap)
{
    const char *path = NULL;
    for (char *const *e = env; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    if (!path)
        path = "/bin:/usr/bin"; /* as execvp() without PATH */
    int rc = -ENOENT;
    size_t nlen = strlen(name);
    for (const char *dir = path;; dir++) {
        const char *end = strchr(dir, ':');
        size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
        if ((dlen ? dlen : 1) + 1 + nlen + 1 > cap) {
            rc = -ENAMETOOLONG;
        } else {
            if (dlen)
                memcpy(buf, dir, dlen);
            else
                buf[dlen++] = '.'; /* an empty entry is the working directory */
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, name, nlen + 1);
            if (access(buf, X_OK) == 0) {
                struct stat st;
                if (stat(buf, &st) == 0 && S_ISREG(st.st_mode))
                    return 0;
            } else if (errno == EACCES) {
                rc = -EACCES;
            }
        }
        if (!end)
            return rc;
        dir = end;
    }
}

int asyncio_create_subprocess_exec(asyncio_process_t **proc, const char *const argv[],
                                   const asyncio_subprocess_options_t *opts)
{
    asyncio_subprocess_options_t o = opts ? *opts : (asyncio_subprocess_options_t){0};
    if (!proc || !argv || !argv[0] || check_options(&o) < 0)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    struct spawn_fds f = {{-1, -1, -1}, {-1, -1, -1}};
    enum asyncio_stdio m[3] = {o.stdin_mode, o.stdout_mode, o.stderr_mode};
    int ufd[3] = {o.stdin_fd, o.stdout_fd, o.stderr_fd};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (m[i] == ASYNCIO_STDIO_PIPE)
            rc = make_pipe(&f, i);
        /* A caller's fd 0-2 is moved out of the way first: the dup2s of
         * the others could overwrite it (stderr to our fd 1 while the
         * child's fd 1 becomes a pipe), as CPython does. */
        else if (m[i] == ASYNCIO_STDIO_FD && ufd[i] <= 2 &&
                 (f.child[i] = fcntl(ufd[i], F_DUPFD_CLOEXEC, 3)) < 0)
            rc = -errno;
    }
    char found[PATH_MAX];
    const char *prog = argv[0];
    if (rc == 0 && o.env && !strchr(argv[0], '/') &&
        (rc = find_in_path(argv[0], o.env, found, sizeof found)) == 0)
        prog = found;
    enum watch w = watch_of(loop);
#ifdef HAVE_PIDFD
    /* libkqueue's EVFILT_PROC (Linux) never reports a child the kernel
     * reaped itself (SIGCHLD ignored): a pidfd does (returncode 255). */
    struct sigaction cur;
    if (w == WATCH_KQUEUE && sigaction(SIGCHLD, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
        w = WATCH_PIDFD;
#endif
    /* Through SIGCHLD, the watcher is ready before the child can end. */
    if (rc == 0 && w == WATCH_SIGCHLD)
        rc = sigchld_prepare(loop);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    if (rc == 0)
        fa_ok = (rc = -posix_spawn_file_actions_init(&fa)) == 0;
    if (rc == 0)
        attr_ok = (rc = -posix_spawnattr_init(&attr)) == 0;
    if (rc == 0)
        rc = add_actions(&fa, &o, &f);
    if (rc == 0)
        rc = set_attrs(&attr, &o);
    pid_t pid = -1;
    if (rc == 0) {
        char *const *env = o.env ? o.env : environ;
        char *const *args = (char *const *)argv;
        rc = strchr(prog, '/') ? -posix_spawn(&pid, prog, &fa, &attr, args, env)
                               : -posix_spawnp(&pid, prog, &fa, &attr, args, env);
    }
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    fds_close(f.child);
    if (rc == 0)
        rc = adopt(loop, pid, w, &f, o.limit, proc);
    fds_close(f.parent);
    if (rc < 0 && w == WATCH_SIGCHLD)
        sigchld_idle(loop); /* no child: its watcher goes */
    return rc;
}

int asyncio_create_subprocess_shell(asyncio_process_t **proc, const char *cmd,
                                    const asyncio_subprocess_options_t *opts)
{
    if (!cmd)
        return -EINVAL;
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return asyncio_create_subprocess_exec(proc, argv, opts);
}

/* ---- the process object --------------------------------------------------- */

pid_t asyncio_process_pid(const asyncio_process_t *p)
{
    return valid(p) ? p->pid : -EINVAL;
}

asyncio_stream_t *asyncio_process_stdin(const asyncio_process_t *p)
{
    return valid(p) ? p->stdio[0] : NULL;
}

asyncio_stream_t *asyncio_process_stdout(const asyncio_process_t *p)
{
    return valid(p) ? p->stdio[1] : NULL;
}

asyncio_stream_t *asyncio_process_stderr(const asyncio_process_t *p)
{
    return valid(p) ? p->stdio[2] : NULL;
}

int asyncio_process_returncode(const asyncio_process_t *p, int *returncode)
{
    if (!valid(p))
        return -EINVAL;
    if (!p->reaped)
        return -EAGAIN;
    if (returncode)
        *returncode = p->returncode;
    return 0;
}

int asyncio_process_wait(asyncio_process_t *p, int *returncode)
{
    if (!valid(p))
        return -EINVAL;
    /* Shielded: a cancelled wait leaves the child (and the future) be. The
     * shield holds the future; p may be released (freed) meanwhile. */
    void *code = NULL;
    int rc = asyncio_shield(p->exited, &code);
    if (rc == 0 && returncode)
        *returncode = (int)(intptr_t)code;
    return rc;
}

int asyncio_process_send_signal(asyncio_process_t *p, int sig)
{
    if (!valid(p) || sig < 0 || sig >= NSIG)
        return -EINVAL;
    if (p->reaped)
        return -ESRCH;
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}

int asyncio_process_terminate(asyncio_process_t *p)
{
    return asyncio_process_send_signal(p, SIGTERM);
}

int asyncio_process_kill(asyncio_process_t *p)
{
    return asyncio_process_send_signal(p, SIGKILL);
}

void asyncio_process_release(asyncio_process_t *p)
{
    if (!valid(p) || !p->owned)
        return;
    p->owned = false;
    if (p->reaped) {
        process_free(p);
        return;
    }
    for (int i = 0; i < 3; i++)
        if (p->stdio[i])
            asyncio_stream_close(p->stdio[i]);
    kill(p->pid, SIGKILL); /* reaped by the loop, which then frees p */
}

/* ---- communicate ------------------------------------------------------------ */

struct feed {
    asyncio_stream_t *s;
    int werr; /* what queueing the input gave (0, -EPIPE, -ENOMEM, ...) */
};

/* Write the input, then close stdin (the child's end of file). A child
 * that exits without reading it all is no error. */
static int feed_task(void *arg, void **result)
{
    (void)result;
    struct feed *f = arg;
    int rc = f->werr; /* the input was queued by communicate */
    if (rc == 0)
        rc = asyncio_stream_drain(f->s);
    if (rc == -EPIPE || rc == -ECONNRESET)
        rc = 0;
    /* Cancelled (or failed otherwise), stdin stays open, as in asyncio. */
    if (rc == 0) {
        rc = asyncio_stream_wait_closed(f->s);
        if (rc == -EPIPE || rc == -ECONNRESET)
            rc = 0;
    }
    return rc;
}

struct drain_out {
    asyncio_stream_t *s;
    char *buf;
    size_t len, cap;
};

/* Read the stream to its end into a growing buffer. */
static int read_all_task(void *arg, void **result)
{
    (void)result;
    struct drain_out *d = arg;
    for (;;) {
        if (d->cap - d->len < 4096) {
            size_t cap = d->cap ? d->cap * 2 : 16384;
            char *b = realloc(d->buf, cap);
            if (!b)
                return -ENOMEM;
            d->buf = b;
            d->cap = cap;
        }
        ssize_t n = asyncio_stream_read(d->s, d->buf + d->len, d->cap - d->len - 1);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        d->len += (size_t)n;
    }
    d->buf[d->len] = '\0';
    return 0;
}

int asyncio_process_communicate(asyncio_process_t *p, const void *input, size_t len, char **out,
                                size_t *outlen, char **err, size_t *errlen, int *returncode)
{
    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    if (err)
        *err = NULL;
    if (errlen)
        *errlen = 0;
    if (!valid(p) || (len && !input) || (len && !p->stdio[0]))
        return -EINVAL;
    if (!asyncio_current_task())
        return -EPERM;
    /* What the tasks share with this one lives on the heap: this task's
     * stack is parked while they run (src/task.h). */
    struct comm_state {
        struct feed in;
        struct drain_out d[2];
    } *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->in.s = p->stdio[0];
    st->d[0].s = p->stdio[1];
    st->d[1].s = p->stdio[2];
    struct feed *fd_in = &st->in;
    struct drain_out *d = st->d;
    asyncio_task_t *tasks[3];
    int n = 0, rc = 0;
    /* The input is queued (copied) now, while this stack runs: the task
     * only sends it. */
    if (fd_in->s && len)
        fd_in->werr = asyncio_stream_write(fd_in->s, input, len);
    if (fd_in->s && (rc = asyncio_create_task(&tasks[n], feed_task, fd_in, "communicate stdin")) == 0)
        n++;
    for (int i = 0; i < 2 && rc == 0; i++)
        if (d[i].s && (rc = asyncio_create_task(&tasks[n], read_all_task, &d[i],
                                                i ? "communicate stderr" : "communicate stdout")) == 0)
            n++;
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            asyncio_task_cancel(tasks[i]);
    }
    /* Until they have all ended, the buffers are theirs. The first to fail
     * ends the gather (asyncio's gather): the others are cancelled, as they
     * could wait for ever on a child whose output nobody reads any more, or
     * whose input never ends. Cancelled or timed out, gather cancels them;
     * if it could not even start (no memory), they are stopped here too;
     * then each is waited for. */
    int grc = n ? asyncio_gather(n, tasks, NULL, NULL, 0) : 0;
    if (grc < 0)
        for (int i = 0; i < n; i++)
            asyncio_task_cancel(tasks[i]);
    for (int i = 0; i < n; i++) {
        while (!asyncio_future_done(tasks[i]))
            asyncio_await(tasks[i], NULL); /* returns once it has ended */
        asyncio_task_release(tasks[i]);
    }
    if (rc == 0 && grc < 0)
        rc = grc;
    if (rc == 0)
        rc = asyncio_process_wait(p, returncode);
    for (int i = 0; i < 2; i++) {
        char **dst = i ? err : out;
        size_t *dlen = i ? errlen : outlen;
        if (rc == 0 && dst && d[i].buf) {
            *dst = d[i].buf;
            if (dlen)
                *dlen = d[i].len;
        } else {
            free(d[i].buf);
        }
    }
    free(st);
    return rc;
}
