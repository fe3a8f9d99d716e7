/* Signal handlers run as loop callbacks (loop.add_signal_handler): the
 * signals are blocked in the loop's thread and read from one signalfd, so
 * no code runs in signal context and nothing global is needed. Only the
 * main thread's loop takes handlers, as asyncio's: with a loop on every
 * core, one loop owns the signals (and stops the others). The loop's
 * signals subsystem (loop->signals), set up by the first handler added. */
#include "loop.h"

#include <asyncio/signal.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/signalfd.h>
#include <sys/syscall.h>

/* The process's first thread, whose id is the process's (gettid() cannot
 * fail; glibc has it since 2.30, elsewhere the system call). */
static bool in_main_thread(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
    return gettid() == getpid();
#else
    return (pid_t)syscall(SYS_gettid) == getpid();
#endif
}

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

static bool bad_signal(int sig)
{
    return sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP;
}

int asyncio_add_signal_handler(int signum, asyncio_signal_callback cb, void *arg)
{
    if (bad_signal(signum) || !cb)
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!in_main_thread())
        return -EXDEV; /* as asyncio: handlers live on the main thread's loop */
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
    sigdelset(&w->mask, signum);
    signalfd(w->fd, &w->mask, 0);
    release_signal(w, signum);
    sigdelset(&w->before, signum);
    return 1;
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

int asyncio_add_signal_handler(int signum, asyncio_signal_callback cb, void *arg)
{
    (void)signum;
    (void)cb;
    (void)arg;
    return -ENOSYS;
}

int asyncio_remove_signal_handler(int signum)
{
    (void)signum;
    return -ENOSYS;
}

void signals_term(struct loop *loop)
{
    (void)loop;
}

#endif
