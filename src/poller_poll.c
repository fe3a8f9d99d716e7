/* poll() backend: any POSIX system. The fd set is a dense pollfd array with
 * an fd -> slot index, so ctl is O(1) and wait passes the array as it is. */
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

struct pollset {
    struct pollfd *pfds;
    int len, cap;
    int next;     /* where the next report starts: see pp_wait */
    int *slot_of; /* fd -> index in pfds, -1 if absent */
    int nslots;
};

static int pp_init(struct poller *p)
{
    struct pollset *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    p->state = s;
    return 0;
}

static void pp_close(struct poller *p)
{
    struct pollset *s = p->state;
    if (s) {
        free(s->pfds);
        free(s->slot_of);
        free(s);
    }
    p->state = NULL;
}

static short to_poll(unsigned ev)
{
    return (short)((ev & POLLER_IN ? POLLIN : 0) | (ev & POLLER_OUT ? POLLOUT : 0));
}

static int pp_ctl(struct poller *p, int fd, unsigned old_events, unsigned new_events)
{
    struct pollset *s = p->state;
    (void)old_events;
    if (fd >= s->nslots) {
        if (!new_events)
            return 0; /* GCOVR_EXCL_LINE: the loop drops only interest it registered, so fd has a slot */
        /* Only for an open fd (checked here too, as the table is sized by
         * the number): poll() itself would report a closed one only later. */
        if (fcntl(fd, F_GETFD) < 0)
            return -EBADF; /* GCOVR_EXCL_LINE: io.c checked it first (fd_table_grow); this table lags only after a failed realloc */
        size_t n = poller_table_len((size_t)s->nslots, fd);
        int *m = n <= SIZE_MAX / sizeof *m ? realloc(s->slot_of, n * sizeof *m) : NULL;
        if (!m)
            return -ENOMEM;
        for (size_t i = (size_t)s->nslots; i < n; i++)
            m[i] = -1;
        s->slot_of = m;
        s->nslots = (int)n;
    }
    int slot = s->slot_of[fd];
    if (!new_events) {
        if (slot < 0)
            return 0; /* GCOVR_EXCL_LINE: the loop drops only interest it registered */
        /* The last entry fills the hole. */
        s->pfds[slot] = s->pfds[--s->len];
        s->slot_of[s->pfds[slot].fd] = slot;
        s->slot_of[fd] = -1;
        return 0;
    }
    if (slot < 0) {
        if (s->len == s->cap) {
            int cap = s->cap ? s->cap * 2 : 64;
            struct pollfd *a = realloc(s->pfds, (size_t)cap * sizeof *a);
            if (!a)
                return -ENOMEM;
            s->pfds = a;
            s->cap = cap;
        }
        slot = s->len++;
        s->slot_of[fd] = slot;
        s->pfds[slot].fd = fd;
    }
    s->pfds[slot].events = to_poll(new_events);
    s->pfds[slot].revents = 0;
    return 0;
}

static int pp_wait(struct poller *p, uint64_t timeout_ns, struct poller_event *out, int max)
{
    struct pollset *s = p->state;
    int n;
#ifdef __linux__
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    n = ppoll(s->pfds, (nfds_t)s->len, timeout_ns == UINT64_MAX ? NULL : &ts, NULL);
#else
    int ms = -1;
    if (timeout_ns != UINT64_MAX) {
        uint64_t m = (timeout_ns + 999999) / 1000000;
        ms = m > 2000000000 ? 2000000000 : (int)m;
    }
    n = poll(s->pfds, (nfds_t)s->len, ms);
#endif
    if (n < 0)
        return -errno;
    /* When more fds are ready than fit in out, the report stops early; the
     * next one starts where this one stopped, so that every ready fd is
     * reported within a few polls (epoll rotates its ready list the same
     * way), not only those in the first slots. */
    int k = 0, len = s->len, start = s->next < len ? s->next : 0;
    for (int j = 0; j < len && n > 0; j++) {
        int i = start + j < len ? start + j : start + j - len;
        short r = s->pfds[i].revents;
        if (!r)
            continue;
        if (k == max) {
            s->next = i;
            return k;
        }
        n--;
        out[k].fd = s->pfds[i].fd;
        out[k].events = (r & POLLIN ? POLLER_IN : 0) | (r & POLLOUT ? POLLER_OUT : 0) |
                        (r & (POLLERR | POLLHUP) ? POLLER_ERR : 0) |
                        (r & POLLNVAL ? POLLER_INVAL : 0);
        k++;
    }
    return k;
}

const struct poller_ops poller_poll_ops = {
    .name = "poll",
    .init = pp_init,
    .close = pp_close,
    .ctl = pp_ctl,
    .wait = pp_wait,
};
