/* Waiting for file descriptors (the loop's io subsystem, loop->io). Interest
 * stays registered after a wait, so a task that reads until EAGAIN and
 * waits again costs no poller call; it is dropped lazily, when the fd
 * reports while nobody waits for it. */
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Grow the table so that fd fits. The table is sized by the number, so
 * the number must be an open fd's, hence below the process's fd limit: a
 * number nothing has open gets -EBADF before anything is allocated. */
static int __attribute__((noinline)) fd_table_grow(struct loop *loop, int fd)
{
    if (fcntl(fd, F_GETFD) < 0)
        return errno == EBADF ? -EBADF : -errno;
    size_t n = poller_table_len((size_t)loop->io.nfds, fd);
    struct fdstate *a = n <= SIZE_MAX / sizeof *a ? realloc(loop->io.fds, n * sizeof *a) : NULL;
    if (!a)
        return -ENOMEM;
    memset(a + loop->io.nfds, 0, (n - (size_t)loop->io.nfds) * sizeof *a);
    loop->io.fds = a;
    loop->io.nfds = (int)n;
    return 0;
}

/* fd's entry (fd >= 0), or NULL with *err set. */
static inline struct fdstate *fd_state(struct loop *loop, int fd, int *err)
{
    if (fd >= loop->io.nfds && (*err = fd_table_grow(loop, fd)) < 0)
        return NULL;
    return &loop->io.fds[fd];
}

static int set_interest(struct loop *loop, int fd, struct fdstate *st, unsigned want)
{
    if (want == st->registered)
        return 0;
    int rc = loop->poller.ops->ctl(&loop->poller, fd, st->registered, want);
    if (rc < 0)
        return rc;
    if (fd != loop->io.wake_fd)
        loop->io.registered += (want != 0) - (st->registered != 0);
    st->registered = want;
    return 0;
}

int io_wait(struct task *t, int fd, unsigned ev)
{
    if (fd < 0)
        return -EBADF; /* GCOVR_EXCL_LINE: callers check fd, or tried a system call on it that gave EBADF */
    int rc = task_ready_to_wait(t, ev == POLLER_IN ? "fd readable" : "fd writable");
    if (rc < 0)
        return rc;
    struct loop *loop = t->fut.loop;
    struct fdstate *st = fd_state(loop, fd, &rc);
    if (!st)
        return rc;
    struct task **slot = ev == POLLER_IN ? &st->reader : &st->writer;
    if (*slot)
        return -EBUSY;
    rc = set_interest(loop, fd, st, st->registered | ev);
    if (rc < 0)
        return rc;
    *slot = t;
    rc = task_park_until(t, UINT64_MAX, 0);
    /* The table may have moved while we slept. */
    st = &loop->io.fds[fd];
    slot = ev == POLLER_IN ? &st->reader : &st->writer;
    if (*slot == t)
        *slot = NULL;
    return rc;
}

static int wait_current(int fd, unsigned ev)
{
    if (fd < 0)
        return -EBADF;
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    return io_wait(loop->current, fd, ev);
}

int asyncio_wait_readable(int fd)
{
    return wait_current(fd, POLLER_IN);
}

int asyncio_wait_writable(int fd)
{
    return wait_current(fd, POLLER_OUT);
}

static void wake_and_clear(struct task **slot, int status)
{
    if (*slot) {
        task_wake(*slot, status);
        *slot = NULL;
    }
}

/* Every event but input for a waiting reader: errors, output, callbacks,
 * interest nobody wants any more. Apart, so that the common case costs
 * no saved registers. */
static void __attribute__((noinline))
dispatch_other(struct loop *loop, int fd, struct fdstate *st, unsigned events, bool from_task)
{
    if (events & POLLER_INVAL) {
        /* Closed behind the loop's back: nothing will ever come. */
        wake_and_clear(&st->reader, -EBADF);
        wake_and_clear(&st->writer, -EBADF);
        set_interest(loop, fd, st, 0);
        st->cb_events = 0;
        return;
    }
    unsigned idle = 0, for_cb = 0;
    if (events & (POLLER_IN | POLLER_ERR)) {
        if (st->reader)
            task_wake(st->reader, 0);
        else if (st->cb_events & POLLER_IN)
            for_cb |= POLLER_IN;
        else
            idle |= POLLER_IN;
    }
    if (events & (POLLER_OUT | POLLER_ERR)) {
        if (st->writer)
            task_wake(st->writer, 0);
        else if (st->cb_events & POLLER_OUT)
            for_cb |= POLLER_OUT;
        else
            idle |= POLLER_OUT;
    }
    idle &= st->registered;
    int rc;
    if (idle && (rc = set_interest(loop, fd, st, st->registered & ~idle)) < 0) {
        /* The poller kept the interest nobody wants, which would report
         * again at once: drop all of it, and tell whoever still waits on
         * the fd, or it would wait for ever. */
        wake_and_clear(&st->reader, rc);
        wake_and_clear(&st->writer, rc);
        set_interest(loop, fd, st, 0);
    }
    if (!for_cb)
        return;
    for_cb |= events & POLLER_ERR;
    if (from_task) {
        /* Not on a task's stack: the loop's context calls it soon. The
         * fast path polls for fewer events than there are slots. */
        loop->io.deferred[loop->io.ndeferred++] = (struct poller_event){fd, for_cb};
        return;
    }
    /* Last: the callback may change this fd's state, or the table. */
    st->cb(loop, fd, for_cb, st->cb_arg);
}

/* An event of no fd (poller.h): a callback's, so from a task's stack it is
 * put off to the loop's own context, as an fd callback is. */
static void __attribute__((noinline))
dispatch_native(struct loop *loop, const struct poller_event *ev, bool from_task)
{
    if (from_task)
        loop->io.deferred[loop->io.ndeferred++] = *ev;
    else if (ev->fd == POLLER_PROC)
        subprocess_proc_exited(loop, (int)ev->events);
    else if (ev->fd == POLLER_WAKE)
        threads_woken(loop);
    else if (ev->fd == POLLER_SIGNAL)
        signals_fired(loop, (int)ev->events);
}

void io_dispatch(struct loop *loop, const struct poller_event *ev, bool from_task)
{
    int fd = ev->fd;
    if (fd < 0) {
        dispatch_native(loop, ev, from_task);
        return;
    }
    if (fd >= loop->io.nfds)
        return; /* GCOVR_EXCL_LINE: the poller reports only fds the loop registered, all in the table */
    struct fdstate *st = &loop->io.fds[fd];
    if (ev->events == POLLER_IN && st->reader)
        task_wake(st->reader, 0); /* the common case: input awaited */
    else
        dispatch_other(loop, fd, st, ev->events, from_task);
}

void io_run_deferred(struct loop *loop)
{
    int n = loop->io.ndeferred;
    loop->io.ndeferred = 0;
    for (int i = 0; i < n; i++) {
        int fd = loop->io.deferred[i].fd;
        if (fd < 0) {
            dispatch_native(loop, &loop->io.deferred[i], false);
            continue;
        }
        if (fd >= loop->io.nfds)
            continue; /* GCOVR_EXCL_LINE: the table only grows while the loop runs */
        /* What the fd's callback still wants since: it may have been
         * stopped, or the fd forgotten. */
        struct fdstate *st = &loop->io.fds[fd];
        unsigned ev = loop->io.deferred[i].events;
        if (st->cb && (ev & st->cb_events))
            st->cb(loop, fd, (ev & st->cb_events) | (ev & POLLER_ERR), st->cb_arg);
    }
}

int io_watch(struct loop *loop, int fd, unsigned events, io_callback cb, void *arg)
{
    if (fd < 0)
        return -EBADF; /* GCOVR_EXCL_LINE: every caller passes an fd it checked or owns */
    int rc = 0;
    struct fdstate *st = fd_state(loop, fd, &rc);
    if (!st)
        return rc;
    /* Interest no longer wanted is dropped lazily, by io_dispatch(). */
    rc = set_interest(loop, fd, st, st->registered | events);
    if (rc < 0)
        return rc;
    st->cb = cb;
    st->cb_arg = arg;
    st->cb_events = events;
    return 0;
}

void io_wake_waiters(struct loop *loop, int fd, int status)
{
    if (fd < 0 || fd >= loop->io.nfds)
        return;
    wake_and_clear(&loop->io.fds[fd].reader, status);
    wake_and_clear(&loop->io.fds[fd].writer, status);
}

int asyncio_forget_fd(int fd)
{
    if (fd < 0)
        return -EBADF;
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (fd >= loop->io.nfds)
        return 0;
    io_wake_waiters(loop, fd, -EBADF);
    struct fdstate *st = &loop->io.fds[fd];
    st->cb_events = 0;
    if (set_interest(loop, fd, st, 0) < 0) {
        /* The poller refused (the fd is already closed): forget it anyway. */
        loop->io.registered -= st->registered != 0;
        st->registered = 0;
    }
    return 0;
}

void io_term(struct loop *loop)
{
    free(loop->io.fds);
}
