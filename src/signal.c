/* Signal handlers run as loop callbacks (loop.add_signal_handler), so that
 * no user code runs in signal context. A signal reaches the loop by one of
 * three ways, chosen when the first handler is added:
 * - the poller's own filter (kqueue's EVFILT_SIGNAL), reported as a
 *   POLLER_SIGNAL event: the signal is blocked where that filter sees only
 *   blocked ones (libkqueue), else its disposition is set to ignore, as a
 *   kernel kqueue records a signal whatever its disposition, which still
 *   runs (the BSDs, macOS);
 * - else, where there is signalfd: the signals are blocked in the loop's
 *   thread and read from one signalfd, and nothing global is needed;
 * - else a sigaction() handler writes to a pipe of the loop's.
 * Only the main thread's loop takes handlers, as asyncio's: with a loop on
 * every core, one loop owns the signals (and stops the others). The loop's
 * signals subsystem (loop->signals), set up by the first handler added.
 * Process-wide state (the pipe way only): see "no signalfd" below. */
#include "syscaps.h"
#include "loop.h"

#include <asyncio/signal.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>
#if defined(__has_include)
#if __has_include(<pthread_np.h>)
#include <pthread_np.h> /* pthread_main_np(): FreeBSD, OpenBSD */
#endif
#endif

/* The process's first thread: on Linux the one whose id is the process's
 * (gettid() cannot fail; glibc has it since 2.30, else the system call),
 * on the BSDs and macOS pthread_main_np(). */
static bool in_main_thread(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
    return gettid() == getpid();
#elif defined(SYS_gettid)
    return (pid_t)syscall(SYS_gettid) == getpid();
#else
    return pthread_main_np() == 1;
#endif
}

static bool bad_signal(int sig)
{
    return sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP;
}

/* What add_signal_handler() checks first: 0 and the loop, or the error. */
static int add_check(int signum, asyncio_signal_callback cb, struct loop **out)
{
    if (bad_signal(signum) || !cb)
        return -EINVAL;
    if (!(*out = loop_current()))
        return -EPERM;
    if (!in_main_thread())
        return -EXDEV; /* as asyncio: handlers live on the main thread's loop */
    return 0;
}

#ifdef HAVE_SIGNALFD
#include <sys/signalfd.h>
#endif

struct sigwatch {
    bool native;         /* the poller's filter (poller_ops.watch_signal) */
    bool ignored;        /* native, the disposition set to ignore (not blocked) */
    int fd, wfd;         /* signalfd, or the pipe's two ends; -1: none */
    sigset_t taken;      /* the signals taken now */
    sigset_t before;     /* which of those blocked by us were blocked before */
    struct sigaction *old; /* ignored: the dispositions replaced, per signal */
    struct {
        asyncio_signal_callback cb;
        void *arg;
    } handlers[NSIG];
};

/* Run sig's callback, if w is still the loop's and sig still has one (a
 * handler removed since its signal arrived is not called). */
static void fire(struct loop *loop, const struct sigwatch *w, int sig)
{
    struct sigwatch *now = loop->signals;
    if (now != w || sig <= 0 || sig >= NSIG || !now->handlers[sig].cb)
        return;
    now->handlers[sig].cb(sig, now->handlers[sig].arg);
}

void signals_fired(struct loop *loop, int sig)
{
    fire(loop, loop->signals, sig);
}

/* Unblock sig unless it was blocked before us. One that arrived since its
 * handler last ran is taken first: unblocked, it would get the default
 * action, which ends the process for most. */
static void unblock_one(struct sigwatch *w, int sig)
{
    sigset_t one, pending;
    sigemptyset(&one);
    sigaddset(&one, sig);
    bool was = sigismember(&w->before, sig);
    sigdelset(&w->before, sig);
    if (was)
        return;
    if (sigpending(&pending) == 0 && sigismember(&pending, sig) == 1) {
        struct timespec now = {0, 0};
        while (sigtimedwait(&one, NULL, &now) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

/* The disposition that stands for "ignore" while a kernel kqueue watches
 * sig: SIG_IGN, but for SIGCHLD, which ignored would reap children on its
 * own and not be recorded by the filter: a handler that does nothing.
 * Which signals the library set to SIG_IGN is the process's, as the
 * dispositions are: children are spawned with those back at the default
 * (signals_ignored()), whichever thread's loop spawns them. */
static atomic_bool lib_ignored[NSIG];

static void do_nothing(int sig)
{
    (void)sig;
}

/* A signal already pending when its handler is added, run soon. */
static void fire_pending(void *arg)
{
    struct loop *loop = loop_current();
    if (loop)
        signals_fired(loop, (int)(intptr_t)arg);
}

/* Take sig if it is pending (blocked by the program, it came before the
 * handler did): true if it was. The signalfd way reads it as the handler's;
 * the filter would lose it (libkqueue drops what is pending as it adds the
 * filter, setting SIG_IGN drops it, and a kernel kqueue records only what
 * comes after), so it is taken here and its handler called soon. */
static bool take_pending(int sig)
{
    sigset_t pending, one;
    if (sigpending(&pending) < 0 || sigismember(&pending, sig) != 1)
        return false;
    sigemptyset(&one);
    sigaddset(&one, sig);
    struct timespec now = {0, 0};
    int got;
    while ((got = sigtimedwait(&one, NULL, &now)) < 0 && errno == EINTR)
        ;
    return got == sig;
}

static int native_watch(struct loop *loop, struct sigwatch *w, int sig);

static int native_take(struct loop *loop, struct sigwatch *w, int sig)
{
    bool taken = take_pending(sig);
    int rc = taken ? asyncio_call_soon(fire_pending, (void *)(intptr_t)sig, NULL) : 0;
    if (rc == 0)
        rc = native_watch(loop, w, sig);
    if (rc < 0 && taken)
        raise(sig); /* pending again, as it was (the callback finds no handler) */
    return rc;
}

static int native_watch(struct loop *loop, struct sigwatch *w, int sig)
{
    struct poller *p = &loop->poller;
    if (!w->ignored) {
        /* The filter first, blocking after it: libkqueue blocks the signal
         * itself as it adds the filter, and drops one pending then (as it
         * would count for an earlier registration); blocked by us first, a
         * signal that came in between would be lost. */
        sigset_t one, old;
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_BLOCK, NULL, &old);
        bool was = sigismember(&old, sig) == 1;
        int rc = p->ops->watch_signal(p, sig, true);
        pthread_sigmask(rc == 0 || was ? SIG_BLOCK : SIG_UNBLOCK, &one, NULL);
        if (rc == 0 && was)
            sigaddset(&w->before, sig);
        return rc;
    }
    /* Watched first: a signal between the two runs the disposition the
     * process had, as it would have without us, and is not lost. */
    int rc = p->ops->watch_signal(p, sig, true);
    if (rc < 0)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig == SIGCHLD ? do_nothing : SIG_IGN;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &w->old[sig]) < 0) {
        rc = -errno; /* GCOVR_EXCL_LINE: bad_signal() refused what sigaction() would */
        p->ops->watch_signal(p, sig, false); /* GCOVR_EXCL_LINE */
        return rc;                           /* GCOVR_EXCL_LINE */
    }
    atomic_store(&lib_ignored[sig], sa.sa_handler == SIG_IGN);
    return 0;
}

static void native_leave(struct loop *loop, struct sigwatch *w, int sig)
{
    struct poller *p = &loop->poller;
    if (w->ignored) {
        sigaction(sig, &w->old[sig], NULL);
        atomic_store(&lib_ignored[sig], false);
    }
    (void)p->ops->watch_signal(p, sig, false);
    if (!w->ignored)
        unblock_one(w, sig);
}

#ifdef HAVE_SIGNALFD
static void on_signalfd(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    struct signalfd_siginfo si[8];
    ssize_t n;
    while ((n = read(fd, si, sizeof si)) > 0)
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++)
            fire(loop, arg, (int)si[i].ssi_signo);
}

static int fd_open(struct loop *loop, struct sigwatch *w)
{
    sigset_t none;
    sigemptyset(&none);
    w->fd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
    int rc = w->fd < 0 ? -errno : io_watch(loop, w->fd, POLLER_IN, on_signalfd, w);
    if (rc < 0 && w->fd >= 0)
        close(w->fd);
    return rc;
}

/* Block sig in the loop's thread, remembering whether it was already. */
static void block_one(struct sigwatch *w, int sig)
{
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    if (sigismember(&old, sig))
        sigaddset(&w->before, sig);
}

static int fd_take(struct sigwatch *w, int sig)
{
    block_one(w, sig);
    sigaddset(&w->taken, sig);
    if (signalfd(w->fd, &w->taken, 0) < 0) {
        int err = -errno;
        sigdelset(&w->taken, sig);
        unblock_one(w, sig);
        return err;
    }
    return 0;
}

static void fd_leave(struct sigwatch *w, int sig)
{
    sigset_t rest = w->taken;
    sigdelset(&rest, sig);
    signalfd(w->fd, &rest, 0);
    unblock_one(w, sig);
}

#else /* no signalfd */

/* Where there is no signalfd and no filter of the poller's (the poll
 * backend on the BSDs and macOS): a sigaction() handler writes the
 * signal's number to a pipe of the loop's, and the loop reads it.
 * Dispositions are the process's, so this state is too: for each signal,
 * the write end of the pipe of the loop that handles it (plus 1; 0: none)
 * and how many handlers are between reading it and writing to it (the
 * loop waits for none before it closes the pipe), and the disposition the
 * handler replaced, restored when the loop's handler goes. Only the main
 * thread's loop takes handlers, so one loop at a time writes them; the
 * mutex orders that with a loop of an earlier run still letting go. */
static struct {
    atomic_int wfd1;
    atomic_int busy;
} sig_slots[NSIG];
static struct sigaction sig_old[NSIG];
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_signal_handler(int sig)
{
    int saved = errno;
    atomic_fetch_add(&sig_slots[sig].busy, 1);
    int fd = atomic_load(&sig_slots[sig].wfd1) - 1;
    if (fd >= 0) {
        unsigned char b = (unsigned char)sig;
        (void)!write(fd, &b, 1); /* a full pipe: signals coalesce anyway */
    }
    atomic_fetch_sub(&sig_slots[sig].busy, 1);
    errno = saved;
}

static void on_pipe(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            fire(loop, arg, buf[i]);
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno; /* GCOVR_EXCL_LINE: on a pipe just made, these do not fail */
    return 0;
}

static int fd_open(struct loop *loop, struct sigwatch *w)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -errno;
    int rc = set_nonblock_cloexec(fds[0]);
    if (rc == 0)
        rc = set_nonblock_cloexec(fds[1]);
    if (rc == 0)
        rc = io_watch(loop, fds[0], POLLER_IN, on_pipe, w);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    w->fd = fds[0];
    w->wfd = fds[1];
    return 0;
}

static int fd_take(struct sigwatch *w, int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal_handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    pthread_mutex_lock(&sig_mu);
    atomic_store(&sig_slots[sig].wfd1, w->wfd + 1);
    int rc = sigaction(sig, &sa, &sig_old[sig]) < 0 ? -errno : 0;
    if (rc < 0)
        atomic_store(&sig_slots[sig].wfd1, 0); /* GCOVR_EXCL_LINE: bad_signal() refused what sigaction() would */
    pthread_mutex_unlock(&sig_mu);
    return rc;
}

/* Give sig's disposition back: no handler writes to the pipe after this. */
static void fd_leave(struct sigwatch *w, int sig)
{
    (void)w;
    pthread_mutex_lock(&sig_mu);
    sigaction(sig, &sig_old[sig], NULL);
    atomic_store(&sig_slots[sig].wfd1, 0);
    while (atomic_load(&sig_slots[sig].busy))
        sched_yield(); /* a handler in another thread, a few instructions from done */
    pthread_mutex_unlock(&sig_mu);
}

#endif

/* The loop's signals subsystem, made by its first handler. */
static int signals_open(struct loop *loop, struct sigwatch **out)
{
    struct sigwatch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->fd = w->wfd = -1;
    sigemptyset(&w->taken);
    sigemptyset(&w->before);
    const struct poller_ops *ops = loop->poller.ops;
    int rc = 0;
    if (ops->watch_signal) {
        w->native = true;
        w->ignored = !ops->signal_blocked;
        if (w->ignored && !(w->old = calloc(NSIG, sizeof *w->old)))
            rc = -ENOMEM; /* GCOVR_EXCL_LINE: a kernel kqueue's only */
    } else {
        rc = fd_open(loop, w);
    }
    if (rc < 0) {
        free(w);
        return rc;
    }
    *out = loop->signals = w;
    return 0;
}

static int take(struct loop *loop, struct sigwatch *w, int sig)
{
    int rc = w->native ? native_take(loop, w, sig) : fd_take(w, sig);
    if (rc == 0)
        sigaddset(&w->taken, sig);
    return rc;
}

/* Stop taking sig (its handler is gone). */
static void leave(struct loop *loop, struct sigwatch *w, int sig)
{
    if (w->native)
        native_leave(loop, w, sig);
    else
        fd_leave(w, sig);
    sigdelset(&w->taken, sig);
}

int asyncio_add_signal_handler(int signum, asyncio_signal_callback cb, void *arg)
{
    struct loop *loop;
    int rc = add_check(signum, cb, &loop);
    if (rc < 0)
        return rc;
    struct sigwatch *w = loop->signals;
    if (!w && (rc = signals_open(loop, &w)) < 0)
        return rc;
    if (sigismember(&w->taken, signum) != 1 && (rc = take(loop, w, signum)) < 0)
        return rc;
    w->handlers[signum].cb = cb;
    w->handlers[signum].arg = arg;
    return 0;
}

void signals_ignored(sigset_t *set)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (atomic_load(&lib_ignored[sig]))
            sigaddset(set, sig);
}

void signals_term(struct loop *loop)
{
    struct sigwatch *w = loop->signals;
    if (!w)
        return;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&w->taken, sig) == 1)
            leave(loop, w, sig);
    if (w->fd >= 0)
        close(w->fd);
    if (w->wfd >= 0)
        close(w->wfd);
    free(w->old);
    free(w);
    loop->signals = NULL;
}

int asyncio_remove_signal_handler(int signum)
{
    if (bad_signal(signum))
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    struct sigwatch *w = loop->signals;
    if (!w || !w->handlers[signum].cb)
        return 0;
    w->handlers[signum].cb = NULL;
    leave(loop, w, signum);
    return 1;
}
