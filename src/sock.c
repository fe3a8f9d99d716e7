/* Socket calls for tasks (asyncio_socket, asyncio_close, asyncio_sock_*):
 * the system call first, a wait only on EAGAIN. Also what the networking
 * layer's files share (net.h): the budget, the wait for a socket, a
 * Unix-domain address, an fd made ready for the loop.
 *
 * Fairness: a task whose socket always has data would never wait, so never
 * let others run. Each task may make a run of calls that complete without
 * waiting, worth IO_BUDGET units (a call, and one more per IO_UNIT_BYTES
 * it moved); the next one yields first (before its system call, so a
 * cancellation there loses no data). */
#include "net.h"

#include <asyncio/net.h>

#include <fcntl.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* asyncio_sock_connect()'s pauses before it tries a full Unix-domain
 * backlog again. */
#define CONNECT_RETRY_MIN_NS 1000000u  /* 1 ms */
#define CONNECT_RETRY_MAX_NS 50000000u /* 50 ms */

int net_begin(struct task **out)
{
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    struct task *t = loop->current;
    *out = t;
    if (++t->io_streak > IO_BUDGET) {
        t->io_streak = 0;
        return asyncio_sleep(0);
    }
    return 0;
}

/* net_begin() for a call with a buffer: -EINVAL for NULL with a length. */
static int io_start(const void *buf, size_t len, struct task **out)
{
    return !buf && len ? -EINVAL : net_begin(out);
}

int net_wait(struct task *t, int fd, bool readable)
{
    t->io_streak = 0;
    return io_wait(t, fd, readable ? POLLER_IN : POLLER_OUT);
}

int net_unix_addr(struct sockaddr_un *sun, const char *path)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (!path || !*path)
        return -EINVAL;
    if (strlen(path) >= sizeof sun->sun_path)
        return -ENAMETOOLONG;
    memcpy(sun->sun_path, path, strlen(path) + 1);
    return 0;
}

void net_sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
    /* One pending before is the program's, not ours to take; it can only
     * be if SIGPIPE was blocked already (else it would have been
     * delivered): ask only then, sparing a system call in the common case. */
    g->was_pending = sigismember(&g->old, SIGPIPE) == 1 && sigpending(&pending) == 0 &&
                     sigismember(&pending, SIGPIPE);
}

bool net_sigpipe_ignored(void)
{
    struct sigaction sa;
    return sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

void net_sigpipe_unblock(struct sigpipe_guard *g, ssize_t r, size_t want)
{
    int err = errno;
    bool raised = r < 0 ? err == EPIPE : (size_t)r < want;
    if (raised && !g->was_pending) {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!sigismember(&g->old, SIGPIPE))
        pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = err;
}

int net_prepare_fd(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno; /* GCOVR_EXCL_LINE: F_SETFL on an fd F_GETFL just accepted cannot fail */
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return 0;
}

int asyncio_socket(int domain, int type, int protocol)
{
#ifdef HAVE_SOCK_NONBLOCK
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -errno;
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
#else
    int fd = socket(domain, type, protocol);
    if (fd < 0)
        return -errno;
    int rc = fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? -errno : net_prepare_fd(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
#endif
    return fd;
}

int asyncio_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (loop_current())
        asyncio_forget_fd(fd);
    /* On EINTR the fd is closed all the same (Linux, and POSIX 2024). */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

struct io_args {
    void *buf;
    size_t len;
    struct sockaddr *addr;
    socklen_t *addrlen;
    const struct sockaddr *to;
    socklen_t tolen;
};

/* Run op until it stops failing with EINTR or EAGAIN, waiting for fd to be
 * ready between tries. op returns what the system call does (-1 and errno
 * on failure). */
static ssize_t io_loop(struct task *t, int fd, int readable,
                       ssize_t (*op)(int fd, struct io_args *a), struct io_args *a)
{
    for (;;) {
        ssize_t n = op(fd, a);
        if (n >= 0) {
            if (a->buf)
                net_charge(t, (size_t)n); /* bytes moved, not an fd */
            return n;
        }
        if (errno == EINTR)
            continue;
        if (!would_block(errno))
            return -errno;
        int rc = net_wait(t, fd, readable);
        if (rc < 0)
            return rc;
    }
}

static ssize_t op_accept(int fd, struct io_args *a)
{
#ifdef HAVE_ACCEPT4
    int c = accept4(fd, a->addr, a->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int c = accept(fd, a->addr, a->addrlen);
    if (c >= 0 && (fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK) < 0 ||
                   fcntl(c, F_SETFD, FD_CLOEXEC) < 0)) {
        int err = errno;
        close(c);
        errno = err;
        return -1;
    }
#endif
    /* A connection that died in the backlog is not the caller's problem:
     * try again, as asyncio does. */
    if (c < 0 && errno == ECONNABORTED)
        errno = EINTR;
    return c;
}

static ssize_t op_recvfrom(int fd, struct io_args *a)
{
    return recvfrom(fd, a->buf, a->len, 0, a->addr, a->addr ? a->addrlen : NULL);
}

static ssize_t op_sendto(int fd, struct io_args *a)
{
#if NET_SIGPIPE_BLOCK
    struct sigpipe_guard g;
    net_sigpipe_block(&g);
    ssize_t r = sendto(fd, a->buf, a->len, 0, a->to, a->to ? a->tolen : 0);
    net_sigpipe_unblock(&g, r, a->len);
    return r;
#else
    return sendto(fd, a->buf, a->len, NET_MSG_NOSIGNAL, a->to, a->to ? a->tolen : 0);
#endif
}

int asyncio_sock_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    struct task *t;
    int rc = net_begin(&t);
    if (rc < 0)
        return rc;
    struct io_args a = {.addr = addr, .addrlen = addrlen};
    return (int)io_loop(t, fd, 1, op_accept, &a);
}

int asyncio_sock_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    struct task *t;
    int rc = net_begin(&t);
    if (rc < 0)
        return rc;
    /* A Unix-domain listener whose backlog is full refuses with EAGAIN, and
     * gives nothing to wait on (the socket is writable at once): try again
     * after a pause, doubled each time up to CONNECT_RETRY_MAX_NS, as a
     * blocking connect would wait for room. */
    uint64_t pause_ns = CONNECT_RETRY_MIN_NS;
    int r;
    while ((r = connect(fd, addr, addrlen)) < 0 && errno == EAGAIN && addr &&
           addr->sa_family == AF_UNIX) {
        if ((rc = asyncio_sleep((double)pause_ns / 1e9)) < 0)
            return rc;
        pause_ns = pause_ns * 2 < CONNECT_RETRY_MAX_NS ? pause_ns * 2 : CONNECT_RETRY_MAX_NS;
    }
    if (r == 0)
        return 0;
    /* EINTR: the connection goes on in the background, as EINPROGRESS. */
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    if ((rc = net_wait(t, fd, false)) < 0)
        return rc;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    struct poller *p = &t->fut.loop->poller;
    if (p->ops->sock_error) {
        int seen = p->ops->sock_error(p, fd); /* taken: also when err is set */
        if (!err)
            err = seen;
    }
    return -err;
}

ssize_t asyncio_sock_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr,
                              socklen_t *addrlen)
{
    if (addr && !addrlen)
        return -EINVAL;
    struct task *t;
    int rc = io_start(buf, len, &t);
    if (rc < 0)
        return rc;
    struct io_args a = {.buf = buf, .len = len, .addr = addr, .addrlen = addrlen};
    return io_loop(t, fd, 1, op_recvfrom, &a);
}

ssize_t asyncio_sock_recv(int fd, void *buf, size_t len)
{
    return asyncio_sock_recvfrom(fd, buf, len, NULL, NULL);
}

ssize_t asyncio_sock_recv_into(int fd, void *buf, size_t len)
{
    return asyncio_sock_recv(fd, buf, len);
}

ssize_t asyncio_sock_sendto(int fd, const void *buf, size_t len, const struct sockaddr *addr,
                            socklen_t addrlen)
{
    struct task *t;
    int rc = io_start(buf, len, &t);
    if (rc < 0)
        return rc;
    struct io_args a = {.buf = (void *)buf, .len = len, .to = addr, .tolen = addrlen};
    return io_loop(t, fd, 0, op_sendto, &a);
}

ssize_t asyncio_sock_sendall(int fd, const void *buf, size_t len)
{
    struct task *t;
    int rc = io_start(buf, len, &t);
    if (rc < 0)
        return rc;
    struct io_args a = {.to = NULL};
    for (size_t off = 0; off < len;) {
        a.buf = (char *)buf + off;
        a.len = len - off;
        ssize_t n = io_loop(t, fd, 0, op_sendto, &a);
        if (n < 0)
            return n;
        off += (size_t)n;
    }
    return (ssize_t)len;
}
