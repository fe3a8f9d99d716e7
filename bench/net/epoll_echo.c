/* bench/net/epoll_echo.c: the baseline for the echo benchmark, a plain,
 * tight, single-threaded, level-triggered epoll echo server.
 *
 *   epoll_echo PORT
 *
 * Listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT" when ready
 * and exits on SIGINT or SIGTERM. One read per readiness event into a shared
 * 256 KiB buffer (the size our echo_server and uvloop read with), written
 * straight back; what the socket does not take is kept per connection,
 * reading stops and EPOLLOUT is watched until it has gone. No allocation on
 * the steady path.
 *
 *   cc -O2 -o epoll_echo epoll_echo.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

struct conn {
    int fd;
    size_t pend_len;  /* bytes of pend not yet written */
    size_t pend_off;  /* where they start */
    size_t pend_cap;
    char *pend;
};

static volatile sig_atomic_t stop;
static char buf[BUF_SIZE];

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pend);
    free(c);
}

static int watch(int ep, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write data, keeping the rest in c->pend. 0 if all went, 1 if some is kept,
 * -1 on error. */
static int send_or_keep(struct conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    if (len == 0)
        return 0;
    if (c->pend_cap < len) {
        char *p = realloc(c->pend, len);
        if (!p)
            return -1;
        c->pend = p;
        c->pend_cap = len;
    }
    memcpy(c->pend, data, len);
    c->pend_off = 0;
    c->pend_len = len;
    return 1;
}

static void on_readable(int ep, struct conn *c)
{
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(ep, c);
        return;
    }
    int rc = send_or_keep(c, buf, (size_t)n);
    if (rc < 0 || (rc > 0 && watch(ep, c, EPOLLOUT) < 0))
        conn_close(ep, c);
}

static void on_writable(int ep, struct conn *c)
{
    while (c->pend_len > 0) {
        ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len, MSG_NOSIGNAL);
        if (n > 0) {
            c->pend_off += (size_t)n;
            c->pend_len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            conn_close(ep, c);
            return;
        }
    }
    if (watch(ep, c, EPOLLIN) < 0)
        conn_close(ep, c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;  /* no SA_RESTART: epoll_wait fails with EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 4096) < 0) {
        perror("epoll_echo: bind/listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {  /* the listener: accept what is queued */
                for (int k = 0; k < 64; k++) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;  /* EAGAIN, or EMFILE etc.: try on the next event */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        free(c);
                    }
                }
                continue;
            }
            if (c->pend_len > 0)
                on_writable(ep, c);
            else
                on_readable(ep, c);
        }
    }
    return 0;
}
