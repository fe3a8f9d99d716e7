/* Child exits without a pidfd: SIGCHLD (see net.h). The process-wide part
 * is the handler, the disposition it replaced, and the table of the fds of
 * the loops that watch children so (SIGCHLD_LOOPS at most at once); each
 * loop keeps its own children, and reaps only them, by pid.
 *
 * The handler takes no lock and allocates nothing: it writes each
 * registered loop's eventfd (a pipe elsewhere) and passes the signal on to
 * the handler it replaced. A slot's busy count keeps the fd from being
 * closed, and its number reused, while a handler is between reading it and
 * writing to it: a loop that leaves clears the slot, then waits for busy to
 * be 0 (both sequentially consistent, so a handler that comes later reads
 * the cleared slot). */
#include "net.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

static struct {
    atomic_int fd1;  /* the write end of a loop's fd, plus 1; 0: free */
    atomic_int busy; /* handlers between reading fd1 and writing it */
} slots[SIGCHLD_LOOPS];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* The disposition the handler replaced, which it passes the signal on to:
 * two copies, the one in use named by cur, so that a new one is written
 * where no handler reads (under mu). (A handler still running in another
 * thread through two re-installs in a row, each after the program set
 * SIGCHLD's disposition anew, could read a copy being written.) */
static struct sigaction replaced[2];
static atomic_int cur;

static void on_sigchld(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    for (int i = 0; i < SIGCHLD_LOOPS; i++) {
        atomic_fetch_add(&slots[i].busy, 1);
        int fd1 = atomic_load(&slots[i].fd1);
        if (fd1) {
            /* EAGAIN: readable already. An eventfd's write cannot fail
             * otherwise; if it did, once more (as threadsafe.c's). */
            uint64_t one = 1;
            for (int t = 0; t < 2; t++)
                if (write(fd1 - 1, &one, sizeof one) >= 0 || errno == EAGAIN)
                    break;
        }
        atomic_fetch_sub(&slots[i].busy, 1);
    }
    const struct sigaction *r = &replaced[atomic_load(&cur)];
    if (r->sa_flags & SA_SIGINFO) {
        if (r->sa_sigaction)
            r->sa_sigaction(sig, si, uc);
    } else if (r->sa_handler != SIG_DFL && r->sa_handler != SIG_IGN) {
        r->sa_handler(sig);
    }
    errno = saved;
}

/* Install the handler, unless it is SIGCHLD's already, and take a slot
 * for wfd. The handler is installed at the first spawn and left: a
 * program that set another disposition since (or SIG_IGN, whose children
 * the kernel reaps, statuses lost) has it replaced again, and gets the
 * signals passed on. The slot's index, -EAGAIN (every slot taken), or
 * sigaction's error. */
static int enter(int wfd)
{
    pthread_mutex_lock(&mu);
    int slot = -1;
    for (int i = 0; i < SIGCHLD_LOOPS && slot < 0; i++)
        if (!atomic_load(&slots[i].fd1))
            slot = i;
    int rc = slot < 0 ? -EAGAIN : 0;
    struct sigaction now;
    if (rc == 0 && sigaction(SIGCHLD, NULL, &now) < 0)
        rc = -errno; /* GCOVR_EXCL_LINE: only for a bad signal number */
    if (rc == 0 && !((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_sigchld)) {
        int next = !atomic_load(&cur);
        replaced[next] = now;
        atomic_store(&cur, next);
        /* Stopped children signal too if the handler replaced asked for
         * it (they are no ends for the library: its waitid() skips them). */
        bool handler = (now.sa_flags & SA_SIGINFO) ||
                       (now.sa_handler != SIG_DFL && now.sa_handler != SIG_IGN);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigchld;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | (handler ? now.sa_flags & SA_NOCLDSTOP : SA_NOCLDSTOP);
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGCHLD, &sa, NULL) < 0)
            rc = -errno; /* GCOVR_EXCL_LINE: as above */
    }
    if (rc == 0)
        atomic_store(&slots[slot].fd1, wfd + 1);
    pthread_mutex_unlock(&mu);
    return rc < 0 ? rc : slot;
}

static void leave(int slot)
{
    atomic_store(&slots[slot].fd1, 0);
    while (atomic_load(&slots[slot].busy))
        sched_yield(); /* GCOVR_EXCL_LINE: a handler in another thread, mid-write */
}

struct sigchld_watch {
    struct net_open open;  /* freed at the loop's close, or once idle */
    struct loop *loop;
    int rfd, wfd;          /* an eventfd (one fd) or a pipe */
    int slot;
    bool checking;         /* in on_signalled(): not to be freed yet */
    struct dlist children; /* struct sigchld_child, not reaped yet */
};

static void watch_free(struct sigchld_watch *w)
{
    if (w->slot >= 0)
        leave(w->slot);
    /* Its children are reaped at the close too (blocking): they must not
     * reach back into a freed list. */
    while (!dlist_empty(&w->children))
        dlist_remove(w->children.next);
    if (w->rfd >= 0) {
        io_watch(w->loop, w->rfd, 0, NULL, NULL);
        asyncio_close(w->rfd); /* the loop forgets the fd: its number comes back */
    }
    if (w->wfd >= 0 && w->wfd != w->rfd)
        close(w->wfd); /* GCOVR_EXCL_LINE: a pipe's end, off Linux only */
    dlist_remove(&w->open.link);
    w->loop->net.sigchld = NULL;
    free(w);
}

static void watch_free_at_close(struct net_open *o)
{
    watch_free(container_of(o, struct sigchld_watch, open));
}

/* A SIGCHLD came (maybe for a child of someone else's): every child of this
 * loop's is looked at; those that ended are reaped by their owners. */
static void on_signalled(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    struct sigchld_watch *w = arg;
    uint64_t buf[8];
#ifdef HAVE_EVENTFD
    (void)!read(fd, buf, sizeof buf);
#else
    while (read(fd, buf, sizeof buf) > 0)
        ;
#endif
    w->checking = true;
    struct dlist *n = w->children.next;
    while (n != &w->children) {
        struct dlist *next = n->next; /* n may be unlinked and freed */
        struct sigchld_child *c = container_of(n, struct sigchld_child, link);
        c->check(c); /* its owner reaps it if it has ended (WNOHANG) */
        n = next;
    }
    w->checking = false;
    sigchld_idle(loop);
}

int fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fd);
    errno = err;
    return moved;
}

static int open_fds(struct sigchld_watch *w)
{
#ifdef HAVE_EVENTFD
    w->rfd = w->wfd = fd_above_stdio(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    return w->rfd < 0 ? -errno : 0;
#else
    int fds[2];
    if (pipe(fds) < 0)
        return -errno;
    w->rfd = fd_above_stdio(fds[0]);
    int err = errno;
    w->wfd = fd_above_stdio(fds[1]);
    if (w->rfd < 0 || w->wfd < 0)
        return w->rfd < 0 ? -err : -errno;
    int both[2] = {w->rfd, w->wfd};
    for (int i = 0; i < 2; i++)
        if (fcntl(both[i], F_SETFL, O_NONBLOCK) < 0 || fcntl(both[i], F_SETFD, FD_CLOEXEC) < 0)
            return -errno;
    return 0;
#endif
}

int sigchld_prepare(struct loop *loop)
{
    if (loop->net.sigchld)
        return 0;
    struct sigchld_watch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->rfd = w->wfd = w->slot = -1;
    dlist_init(&w->children);
    w->open.free_at_close = watch_free_at_close;
    dlist_push_back(&loop->net.open, &w->open.link);
    loop->net.sigchld = w;
    int rc = open_fds(w);
    if (rc == 0)
        rc = io_watch(loop, w->rfd, POLLER_IN, on_signalled, w);
    if (rc == 0 && (rc = enter(w->wfd)) >= 0) {
        w->slot = rc;
        return 0;
    }
    watch_free(w);
    return rc;
}

void sigchld_watch(struct loop *loop, struct sigchld_child *c)
{
    dlist_push_back(&loop->net.sigchld->children, &c->link);
}

void sigchld_forget(struct loop *loop, struct sigchld_child *c)
{
    if (!dlist_linked(&c->link))
        return;
    dlist_remove(&c->link);
    sigchld_idle(loop);
}

void sigchld_idle(struct loop *loop)
{
    struct sigchld_watch *w = loop->net.sigchld;
    if (w && !w->checking && dlist_empty(&w->children))
        watch_free(w);
}
