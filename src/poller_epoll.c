/* epoll backend (Linux). */
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* What epoll_wait fills, at most this many events at a time: kept with
 * the poller, not on the stack (a poll may run on a small task stack). */
#define EPOLL_BATCH 256

static int epoll_init(struct poller *p)
{
    p->state = malloc(EPOLL_BATCH * sizeof(struct epoll_event));
    if (!p->state)
        return -ENOMEM;
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd >= 0)
        return 0;
    int err = -errno;
    free(p->state);
    p->state = NULL;
    return err;
}

static void epoll_close_(struct poller *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    free(p->state);
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
    if (epoll_ctl(p->fd, op, fd, &ev) == 0)
        return 0;
    /* Our record can be stale when an fd was closed (the kernel dropped it)
     * or closed and reused without the loop being told: retry the other way. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        return epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
    if (op == EPOLL_CTL_ADD && errno == EEXIST)
        return epoll_ctl(p->fd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
    if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
        return 0;
    return -errno;
}

static int epoll_wait_(struct poller *p, uint64_t timeout_ns, struct poller_event *out, int max)
{
    struct epoll_event *evs = p->state;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH; /* GCOVR_EXCL_LINE: the loop asks for LOOP_EVENTS (256) at most */
    int n;
    if (timeout_ns == UINT64_MAX) {
        n = epoll_wait(p->fd, evs, max, -1);
    } else {
        /* epoll_pwait2 takes nanoseconds (Linux 5.11); else round up to ms. */
        n = -1;
        if (!p->no_ns_wait) {
            struct timespec ts = {(time_t)(timeout_ns / 1000000000u),
                                  (long)(timeout_ns % 1000000000u)};
            n = epoll_pwait2(p->fd, evs, max, &ts, NULL);
            /* GCOVR_EXCL_START: kernels before 5.11 only (no epoll_pwait2) */
            if (n < 0 && errno == ENOSYS)
                p->no_ns_wait = 1;
        }
        if (p->no_ns_wait) {
            uint64_t ms = (timeout_ns + 999999) / 1000000;
            n = epoll_wait(p->fd, evs, max, ms > 2000000000 ? 2000000000 : (int)ms);
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

const struct poller_ops poller_epoll_ops = {
    .name = "epoll",
    .init = epoll_init,
    .close = epoll_close_,
    .ctl = epoll_ctl_,
    .wait = epoll_wait_,
};
