/* Signal handlers run as loop callbacks (loop.add_signal_handler): where
 * there is signalfd, the signals are blocked in the loop's thread and read
 * from one signalfd, so no code runs in signal context and nothing global
 * is needed; elsewhere a sigaction() handler writes to a pipe (below). Only the
 * main thread's loop takes handlers, as asyncio's: with a loop on every
 * core, one loop owns the signals (and stops the others). The loop's
 * signals subsystem (loop->signals), set up by the first handler added. */
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

struct sigwatch {
    int fd;
    sigset_t mask;   /* the signals handled, blocked by us */
    sigset_t before; /* which of them were blocked before */
    struct {
        asyncio_signal_callback cb;
        void *arg;
    } handlers[NSIG];
};

static void on_signal(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    struct signalfd_siginfo si[8];
    ssize_t n;
    while ((n = read(fd, si, sizeof si)) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++) {
            struct sigwatch *w = loop->signals;
            int sig = (int)si[i].ssi_signo;
            if (w != arg || sig <= 0 || sig >= NSIG || !w->handlers[sig].cb)
                continue; /* removed since it arrived */
            w->handlers[sig].cb(sig, w->handlers[sig].arg);
        }
    }
}

/* Unblock sig unless it was blocked before us. One that arrived since its
 * handler last ran is taken first: unblocked, it would get the default
 * action, which ends the process for most. */
static void release_signal(struct sigwatch *w, int sig)
{
    sigset_t one, pending;
    sigemptyset(&one);
    sigaddset(&one, sig);
    if (sigismember(&w->before, sig))
        return;
    if (sigpending(&pending) == 0 && sigismember(&pending, sig) == 1) {
        struct timespec now = {0, 0};
        while (sigtimedwait(&one, NULL, &now) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

int asyncio_add_signal_handler(int signum, asyncio_signal_callback cb, void *arg)
{
    struct loop *loop;
    int rc0 = add_check(signum, cb, &loop);
    if (rc0 < 0)
        return rc0;
    struct sigwatch *w = loop->signals;
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return -ENOMEM;
        sigemptyset(&w->mask);
        sigemptyset(&w->before);
        w->fd = signalfd(-1, &w->mask, SFD_NONBLOCK | SFD_CLOEXEC);
        int rc = w->fd < 0 ? -errno : io_watch(loop, w->fd, POLLER_IN, on_signal, w);
        if (rc < 0) {
            if (w->fd >= 0)
                close(w->fd);
            free(w);
            return rc;
        }
        loop->signals = w;
    }
    if (!sigismember(&w->mask, signum)) {
        sigset_t one, old;
        sigemptyset(&one);
        sigaddset(&one, signum);
        pthread_sigmask(SIG_BLOCK, &one, &old);
        if (sigismember(&old, signum))
            sigaddset(&w->before, signum);
        sigaddset(&w->mask, signum);
        if (signalfd(w->fd, &w->mask, 0) < 0) {
            int err = -errno;
            sigdelset(&w->mask, signum);
            if (!sigismember(&w->before, signum))
                pthread_sigmask(SIG_UNBLOCK, &one, NULL);
            return err;
        }
    }
    w->handlers[signum].cb = cb;
    w->handlers[signum].arg = arg;
    return 0;
}

/* Stop taking signum (its handler is gone): asyncio_remove_signal_handler()'s. */
static void drop_signal(struct sigwatch *w, int signum)
{
    sigdelset(&w->mask, signum);
    signalfd(w->fd, &w->mask, 0);
    release_signal(w, signum);
    sigdelset(&w->before, signum);
}

void signals_term(struct loop *loop)
{
    struct sigwatch *w = loop->signals;
    if (!w)
        return;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&w->mask, sig) == 1)
            release_signal(w, sig);
    close(w->fd);
    free(w);
}

#else /* no signalfd */

/* Where there is no signalfd (the BSDs, macOS): a sigaction() handler
 * writes the signal's number to a pipe of the loop's, and the loop reads it
 * and runs the callback, so that no user code runs in signal context.
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

struct sigwatch {
    int rfd, wfd; /* the pipe */
    bool handled[NSIG];
    struct {
        asyncio_signal_callback cb;
        void *arg;
    } handlers[NSIG];
};

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

static void on_signal(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            struct sigwatch *w = loop->signals;
            int sig = buf[i];
            if (w != arg || sig <= 0 || sig >= NSIG || !w->handlers[sig].cb)
                continue; /* removed since it arrived */
            w->handlers[sig].cb(sig, w->handlers[sig].arg);
        }
    }
}

/* Give sig's disposition back: no handler writes to the pipe after this. */
static void release_signal(struct sigwatch *w, int sig)
{
    pthread_mutex_lock(&sig_mu);
    sigaction(sig, &sig_old[sig], NULL);
    atomic_store(&sig_slots[sig].wfd1, 0);
    while (atomic_load(&sig_slots[sig].busy))
        sched_yield(); /* a handler in another thread, a few instructions from done */
    pthread_mutex_unlock(&sig_mu);
    w->handled[sig] = false;
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno; /* GCOVR_EXCL_LINE: on a pipe just made, these do not fail */
    return 0;
}

int asyncio_add_signal_handler(int signum, asyncio_signal_callback cb, void *arg)
{
    struct loop *loop;
    int rc0 = add_check(signum, cb, &loop);
    if (rc0 < 0)
        return rc0;
    struct sigwatch *w = loop->signals;
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return -ENOMEM;
        int fds[2];
        int rc = pipe(fds) < 0 ? -errno : 0;
        if (rc == 0) {
            w->rfd = fds[0];
            w->wfd = fds[1];
            rc = set_nonblock_cloexec(fds[0]);
            if (rc == 0)
                rc = set_nonblock_cloexec(fds[1]);
            if (rc == 0)
                rc = io_watch(loop, w->rfd, POLLER_IN, on_signal, w);
            if (rc < 0) {
                close(fds[0]);
                close(fds[1]);
            }
        }
        if (rc < 0) {
            free(w);
            return rc;
        }
        loop->signals = w;
    }
    if (!w->handled[signum]) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal_handler;
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        pthread_mutex_lock(&sig_mu);
        atomic_store(&sig_slots[signum].wfd1, w->wfd + 1);
        int rc = sigaction(signum, &sa, &sig_old[signum]) < 0 ? -errno : 0;
        if (rc < 0)
            atomic_store(&sig_slots[signum].wfd1, 0); /* GCOVR_EXCL_LINE: bad_signal() refused what sigaction() would */
        pthread_mutex_unlock(&sig_mu);
        if (rc < 0)
            return rc; /* GCOVR_EXCL_LINE */
        w->handled[signum] = true;
    }
    w->handlers[signum].cb = cb;
    w->handlers[signum].arg = arg;
    return 0;
}

/* Stop taking signum (its handler is gone): asyncio_remove_signal_handler()'s. */
static void drop_signal(struct sigwatch *w, int signum)
{
    release_signal(w, signum);
}

void signals_term(struct loop *loop)
{
    struct sigwatch *w = loop->signals;
    if (!w)
        return;
    for (int sig = 1; sig < NSIG; sig++)
        if (w->handled[sig])
            release_signal(w, sig);
    close(w->rfd);
    close(w->wfd);
    free(w);
}

#endif

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
    drop_signal(w, signum);
    return 1;
}
