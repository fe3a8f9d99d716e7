/* The kqueue backend: the default on the BSDs and macOS; on Linux it is
 * built only when the build names a libkqueue (a userspace kqueue over
 * epoll) to test it with.
 *
 * Registrations stay across waits, as epoll's: a filter (EVFILT_READ,
 * EVFILT_WRITE) is added once per fd, and interest changes with
 * EV_ENABLE / EV_DISABLE. Those changes are batched and go with the next
 * kevent() call, the wait included; a deletion goes at once, because the
 * fd is about to be closed (a closed fd's registration is gone in a BSD
 * kernel, but libkqueue cannot know of the close and would keep stale
 * state). A change the kernel refuses comes back as an EV_ERROR event: an
 * enable for a registration that went with an earlier close of the fd is
 * added again; an fd that is not open is reported as POLLER_INVAL, as the
 * poll backend does. Timeouts have the full resolution of a timespec.
 * The filters of no fd stand in for what Linux has fds for: EVFILT_SIGNAL
 * (signal.c), EVFILT_PROC (subprocess.c), EVFILT_USER (the wake-up). */
#include "poller.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define KQ_BATCH 256 /* events a wait fills at most */

#ifdef ASYNCIO_LIBKQUEUE
/* libkqueue's (exported, declared only in its tests' header). */
void libkqueue_drain_pending_close(void);
#endif

#define ADDED_READ 0x1u  /* EVFILT_READ was added for the fd */
#define ADDED_WRITE 0x2u /* EVFILT_WRITE was */

struct kq_fd {
    unsigned char added; /* ADDED_* */
    int err;             /* a socket error an event reported (fflags) */
};

struct kq_state {
    int fd;                  /* the kqueue */
    struct kevent *changes;  /* waiting for the next kevent() */
    int nchanges, cap;
    struct kq_fd *fds;       /* per fd */
    size_t nfds;
    struct kevent evs[KQ_BATCH];
};

static int kq_init(struct poller *p)
{
    struct kq_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->fd = kqueue();
    if (st->fd < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    p->state = st;
    return 0;
}

static void kq_close(struct poller *p)
{
    struct kq_state *st = p->state;
    if (st) {
        close(st->fd);
        free(st->changes);
        free(st->fds);
#ifdef ASYNCIO_LIBKQUEUE
        /* libkqueue frees a closed kqueue (its epoll instance, eventfds)
         * in a thread of its own, later: now, so that a closed loop has
         * no fd left open. */
        libkqueue_drain_pending_close();
#endif
    }
    free(st);
    p->state = NULL;
}

/* fd's entry (the table grown to fit), or NULL without memory. */
static struct kq_fd *fd_slot(struct kq_state *st, int fd)
{
    if ((size_t)fd >= st->nfds) {
        size_t n = poller_table_len(st->nfds, fd);
        struct kq_fd *a = n <= SIZE_MAX / sizeof *a ? realloc(st->fds, n * sizeof *a) : NULL;
        if (!a)
            return NULL;
        memset(a + st->nfds, 0, (n - st->nfds) * sizeof *a);
        st->fds = a;
        st->nfds = n;
    }
    return &st->fds[fd];
}

static int queue_change(struct kq_state *st, int fd, short filter, unsigned short flags)
{
    if (st->nchanges == st->cap) {
        int cap = st->cap ? st->cap * 2 : 64;
        struct kevent *c = realloc(st->changes, (size_t)cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        st->changes = c;
        st->cap = cap;
    }
    EV_SET(&st->changes[st->nchanges], (uintptr_t)fd, filter, flags, 0, 0, NULL);
    st->nchanges++;
    return 0;
}

/* Delete what is registered for fd, at once. */
static void delete_now(struct kq_state *st, int fd, struct kq_fd *slot)
{
    struct kevent ch[2];
    int n = 0;
    if (slot->added & ADDED_READ)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    if (slot->added & ADDED_WRITE)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    slot->added = 0;
    slot->err = 0;
    /* Changes of this fd still queued would undo the deletion: drop them. */
    int k = 0;
    for (int i = 0; i < st->nchanges; i++)
        if (st->changes[i].ident != (uintptr_t)fd)
            st->changes[k++] = st->changes[i];
    st->nchanges = k;
    /* ENOENT or EBADF: gone already (a BSD kernel drops a closed fd's). */
    if (n)
        (void)kevent(st->fd, ch, n, NULL, 0, NULL);
}

static int kq_ctl(struct poller *p, int fd, unsigned old_events, unsigned new_events)
{
    struct kq_state *st = p->state;
    struct kq_fd *slot = fd_slot(st, fd);
    if (!slot)
        return -ENOMEM;
    if (!new_events) {
        delete_now(st, fd, slot);
        return 0;
    }
    if (!slot->added && !old_events) {
        /* A new fd: kqueue would take a regular file and report it only
         * while its offset is short of the end (an empty file never), where
         * poll() says "always ready": refuse it, as epoll does (-EPERM).
         * A closed fd fails here too, at once, as with epoll. */
        struct stat sb;
        if (fstat(fd, &sb) < 0)
            return -errno;
        if (S_ISREG(sb.st_mode))
            return -EPERM;
    }
    static const struct {
        unsigned ev;
        short filter;
        unsigned char added;
    } dirs[2] = {{POLLER_IN, EVFILT_READ, ADDED_READ}, {POLLER_OUT, EVFILT_WRITE, ADDED_WRITE}};
    for (int i = 0; i < 2; i++) {
        bool want = new_events & dirs[i].ev, had = old_events & dirs[i].ev;
        if (want == had)
            continue;
        unsigned short flags;
        if (!want)
            flags = EV_DISABLE;
        else if (slot->added & dirs[i].added)
            flags = EV_ENABLE;
        else
            flags = EV_ADD | EV_ENABLE;
        int rc = queue_change(st, fd, dirs[i].filter, flags);
        if (rc < 0)
            return rc;
        if (flags & EV_ADD)
            slot->added |= dirs[i].added;
    }
    return 0;
}

/* A change refused (ev: its EV_ERROR event): what to report, if anything
 * (false: nothing). An enable of a registration an earlier close took is
 * queued again as an add. */
static bool refused(struct kq_state *st, const struct kevent *ev, struct poller_event *out)
{
    int fd = (int)ev->ident;
    int err = (int)ev->data;
    if (err == ENOENT && (size_t)fd < st->nfds && !(ev->flags & EV_ADD)) {
        /* The registration went with an earlier close of the fd (the
         * error event is the change itself, its flags kept): an enable is
         * made again as an add; a disable needs nothing. */
        unsigned char bit = ev->filter == EVFILT_READ ? ADDED_READ : ADDED_WRITE;
        st->fds[fd].added &= (unsigned char)~bit;
        if ((ev->flags & EV_ENABLE) && queue_change(st, fd, ev->filter, EV_ADD | EV_ENABLE) == 0)
            st->fds[fd].added |= bit;
        return false;
    }
    if (err == EBADF || err == ENOENT) {
        if ((size_t)fd < st->nfds)
            st->fds[fd].added = 0;
        out->fd = fd;
        out->events = POLLER_INVAL;
        return true;
    }
    out->fd = fd;
    out->events = POLLER_ERR;
    return true;
}

#ifdef ASYNCIO_LIBKQUEUE
/* libkqueue lists the signals that came newest first (a kernel kqueue, in
 * the order they came), one run of EVFILT_SIGNAL events: turn each run
 * around, so that handlers run in the order their signals came. */
static void reverse_signals(struct kevent *evs, int n)
{
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && evs[j].filter == EVFILT_SIGNAL && !(evs[j].flags & EV_ERROR))
            j++;
        for (int a = i, b = j - 1; a < b; a++, b--) {
            struct kevent t = evs[a];
            evs[a] = evs[b];
            evs[b] = t;
        }
        i = j > i ? j : i + 1;
    }
}
#endif

static int kq_wait(struct poller *p, uint64_t timeout_ns, struct poller_event *out, int max)
{
    struct kq_state *st = p->state;
    if (max > KQ_BATCH)
        max = KQ_BATCH; /* GCOVR_EXCL_LINE: the loop asks for LOOP_EVENTS (256) at most */
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    int n = kevent(st->fd, st->changes, st->nchanges, st->evs, max, tsp);
    if (n < 0 && errno != EINTR) {
        /* The changes were not taken (a bad one stops the whole list when
         * there is no room to report it): apply them one by one. */
        int err = -errno;
        for (int i = 0; i < st->nchanges; i++)
            (void)kevent(st->fd, &st->changes[i], 1, NULL, 0, NULL);
        st->nchanges = 0;
        return err;
    }
    st->nchanges = 0; /* taken (EINTR: after they were) */
    if (n < 0)
        return -EINTR;
#ifdef ASYNCIO_LIBKQUEUE
    reverse_signals(st->evs, n);
#endif
    int k = 0;
    for (int i = 0; i < n; i++) {
        const struct kevent *ev = &st->evs[i];
        if (ev->flags & EV_ERROR) {
            if (ev->data != 0 && refused(st, ev, &out[k]))
                k++;
            continue;
        }
        if (ev->filter == EVFILT_USER) {
            out[k].fd = POLLER_WAKE; /* EV_CLEAR: reset as it is reported */
            out[k].events = 0;
            k++;
            continue;
        }
        if (ev->filter == EVFILT_SIGNAL) {
            out[k].fd = POLLER_SIGNAL; /* .data: how many came, coalesced */
            out[k].events = (unsigned)ev->ident;
            k++;
            continue;
        }
        if (ev->filter == EVFILT_PROC) {
            out[k].fd = POLLER_PROC; /* the child's end: NOTE_EXIT, once */
            out[k].events = (unsigned)ev->ident;
            k++;
            continue;
        }
        int fd = (int)ev->ident;
        out[k].fd = fd;
        out[k].events = ev->filter == EVFILT_READ ? POLLER_IN : POLLER_OUT;
        if ((ev->flags & EV_EOF) && ev->fflags) {
            /* The socket's error, in fflags: libkqueue took it from the
             * socket (getsockopt SO_ERROR clears it), so it is kept for
             * kq_sock_error(). */
            out[k].events |= POLLER_ERR;
            if ((size_t)fd < st->nfds)
                st->fds[fd].err = (int)ev->fflags;
        }
        k++;
    }
    return k;
}

static int kq_sock_error(struct poller *p, int fd)
{
    struct kq_state *st = p->state;
    if (fd < 0 || (size_t)fd >= st->nfds)
        return 0;
    int err = st->fds[fd].err;
    st->fds[fd].err = 0;
    return err;
}

/* A child's exit: EVFILT_PROC, added at once (a child that is gone says
 * ESRCH now, not in a later wait), reported once (EV_ONESHOT). */
static int kq_watch_proc(struct poller *p, int pid, bool on)
{
    struct kq_state *st = p->state;
    struct kevent ch;
    EV_SET(&ch, (uintptr_t)pid, EVFILT_PROC, on ? EV_ADD | EV_ONESHOT : EV_DELETE,
           on ? NOTE_EXIT : 0, 0, NULL);
    if (kevent(st->fd, &ch, 1, NULL, 0, NULL) == 0)
        return 0;
    return on ? -errno : 0; /* off: reported and gone already (one shot) */
}

/* A signal: EVFILT_SIGNAL, added or deleted at once (so that a refusal
 * is the caller's error), cleared as it is reported. */
static int kq_watch_signal(struct poller *p, int sig, bool on)
{
    struct kq_state *st = p->state;
    struct kevent ch;
    EV_SET(&ch, (uintptr_t)sig, EVFILT_SIGNAL, on ? EV_ADD | EV_CLEAR : EV_DELETE, 0, 0, NULL);
    if (kevent(st->fd, &ch, 1, NULL, 0, NULL) == 0)
        return 0;
    return -errno;
}

/* The loop's wake-up from other threads: EVFILT_USER, cleared as it is
 * reported. */
#define WAKE_IDENT 1

static int kq_wake_open(struct poller *p)
{
    struct kq_state *st = p->state;
    struct kevent ch;
    EV_SET(&ch, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    return kevent(st->fd, &ch, 1, NULL, 0, NULL) == 0 ? 0 : -errno;
}

static int kq_wake_trigger(int kq)
{
    struct kevent ch;
    EV_SET(&ch, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    return kevent(kq, &ch, 1, NULL, 0, NULL) == 0 ? 0 : -errno;
}

static int kq_backend_fd(const struct poller *p)
{
    return ((const struct kq_state *)p->state)->fd;
}

const struct poller_ops poller_kqueue_ops = {
    .name = "kqueue",
    .init = kq_init,
    .close = kq_close,
    .ctl = kq_ctl,
    .wait = kq_wait,
    .backend_fd = kq_backend_fd,
    .sock_error = kq_sock_error,
    .watch_proc = kq_watch_proc,
    .wake_open = kq_wake_open,
    .wake_trigger = kq_wake_trigger,
    .watch_signal = kq_watch_signal,
#ifdef ASYNCIO_LIBKQUEUE
    .signal_blocked = true, /* libkqueue: a signalfd of its own */
#else
    .signal_blocked = false, /* in the kernel: the disposition runs too */
#endif
};
