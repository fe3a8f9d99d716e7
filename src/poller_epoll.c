/* The epoll backend (Linux): one epoll instance whose interest follows
 * the loop's (level triggered), waits to the nanosecond with epoll_pwait2
 * where the kernel has it, and its events translated to POLLER_*. */
#include "poller.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* What epoll_wait fills, at most this many events at a time. */
#define EPOLL_BATCH 256

/* The poller's state. The events are kept here, not on the stack: a poll
 * may run on a small task stack. */
struct epoll_state {
    int fd;          /* the epoll instance */
    bool no_ns_wait; /* the kernel lacks epoll_pwait2: wait in ms */
    struct epoll_event evs[EPOLL_BATCH];
};

static int epoll_init(struct poller *p)
{
    struct epoll_state *st = malloc(sizeof *st);
    if (!st)
        return -ENOMEM;
    st->fd = epoll_create1(EPOLL_CLOEXEC);
    if (st->fd < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    st->no_ns_wait = false;
    p->state = st;
    return 0;
}

static void epoll_close_(struct poller *p)
{
    struct epoll_state *st = p->state;
    if (st)
        close(st->fd);
    free(st);
    p->state = NULL;
}

static uint32_t to_epoll(unsigned ev)
{
    return (ev & POLLER_IN ? EPOLLIN : 0) | (ev & POLLER_OUT ? EPOLLOUT : 0);
}

static int epoll_ctl_(struct poller *p, int fd, unsigned old_events, unsigned new_events)
{
    struct epoll_event ev = {.events = to_epoll(new_events), .data.fd = fd};
    int op = !new_events ? EPOLL_CTL_DEL : old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int epfd = ((struct epoll_state *)p->state)->fd;
    if (epoll_ctl(epfd, op, fd, &ev) == 0)
        return 0;
    /* Our record can be stale when an fd was closed (the kernel dropped it)
     * or closed and reused without the loop being told: retry the other way. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
    if (op == EPOLL_CTL_ADD && errno == EEXIST)
        return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
    if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
        return 0;
    return -errno;
}

static int epoll_wait_(struct poller *p, uint64_t timeout_ns, struct poller_event *out, int max)
{
    struct epoll_state *st = p->state;
    struct epoll_event *evs = st->evs;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH; /* GCOVR_EXCL_LINE: the loop asks for LOOP_EVENTS (256) at most */
    int n;
    if (timeout_ns == UINT64_MAX || timeout_ns == 0) {
        /* (no time to copy in: the commonest polls, the fast path's too) */
        n = epoll_wait(st->fd, evs, max, timeout_ns ? -1 : 0);
    } else {
        /* epoll_pwait2 takes nanoseconds (Linux 5.11); else round up to ms. */
        n = -1;
        if (!st->no_ns_wait) {
            struct timespec ts = {(time_t)(timeout_ns / 1000000000u),
                                  (long)(timeout_ns % 1000000000u)};
            n = epoll_pwait2(st->fd, evs, max, &ts, NULL);
            /* GCOVR_EXCL_START: kernels before 5.11 only (no epoll_pwait2) */
            if (n < 0 && errno == ENOSYS)
                st->no_ns_wait = true;
        }
        if (st->no_ns_wait) {
            uint64_t ms = (timeout_ns + 999999) / 1000000;
            n = epoll_wait(st->fd, evs, max, ms > 2000000000 ? 2000000000 : (int)ms);
        }
        /* GCOVR_EXCL_STOP */
    }
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        out[i].fd = evs[i].data.fd;
        out[i].events = (e & EPOLLIN ? POLLER_IN : 0) | (e & EPOLLOUT ? POLLER_OUT : 0) |
                        (e & (EPOLLERR | EPOLLHUP) ? POLLER_ERR : 0);
    }
    return n;
}

static int epoll_backend_fd(const struct poller *p)
{
    return ((const struct epoll_state *)p->state)->fd;
}

const struct poller_ops poller_epoll_ops = {
    .name = "epoll",
    .init = epoll_init,
    .close = epoll_close_,
    .ctl = epoll_ctl_,
    .wait = epoll_wait_,
    .backend_fd = epoll_backend_fd,
};
