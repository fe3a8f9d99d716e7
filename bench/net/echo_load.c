/* bench/net/echo_load.c: the load generator of the echo benchmark.
 *
 *   echo_load HOST PORT CONNS SIZE DEPTH SECONDS [--pid PID]... [--warmup S]
 *   echo_load HOST PORT --idle N SECONDS [--touch]
 *
 * Load mode: CONNS connections, each keeping DEPTH messages of SIZE bytes in
 * flight: a message is done when its SIZE bytes have come back, and then the
 * next one is sent. Every echoed byte is checked against what was sent (the
 * byte stream of a connection is a fixed pattern, so the check is a memcmp)
 * and a connection never gets back more than it sent. After a warm-up
 * (default 0.5 s) it measures for SECONDS and prints `name value unit`
 * lines: msgs, msgs_per_s, MiB_per_s, seconds, conn_msgs_min/max (how even
 * the connections were served), load_cpu_pct (its own CPU use: near 100
 * means the load generator may be the limit), and with --pid the server's
 * CPU time over the same window from /proc/PID/stat (utime + stime; several
 * --pid are summed): server_cpu_s, server_cpu_pct, server_cpu_us_per_msg.
 *
 * Idle mode: opens N connections (at most 256 connecting at a time), prints
 * "connected N" when all are established and holds them for SECONDS (or
 * until killed), printing closed_by_server at the end. With --touch, after
 * "connected N" it waits for SIGUSR1 (so that the caller can measure the
 * server first), then sends one byte on each connection and prints
 * "touched N" when all have come back; SECONDS count from the start of the
 * hold either way.
 *
 * Single-threaded, level-triggered epoll, nonblocking sockets, TCP_NODELAY;
 * raises RLIMIT_NOFILE to its hard limit. Exits 1 on any error (refused,
 * closed, short or wrong echo, a stall of 10 s).
 *
 *   cc -O2 -o echo_load echo_load.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251               /* the byte pattern: byte i of a stream is i % 251 */
#define CHUNK (256 * 1024)       /* largest single send or recv */
#define MAX_PIDS 8
#define MAX_CONNECTING 256       /* idle mode: connects in progress at once */
#define STALL_S 10.0

struct conn {
    int fd;
    int want_out;    /* EPOLLOUT is being watched */
    uint64_t sent;   /* bytes sent */
    uint64_t recvd;  /* bytes echoed back, all checked */
    uint64_t msgs;   /* messages done */
    uint64_t msgs0;  /* msgs when the measurement started */
};

static unsigned char pat[PERIOD + CHUNK];
static unsigned char rbuf[CHUNK];
static uint64_t size, depth;
static uint64_t total_msgs;
static int ep;
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
    (void)sig;
    go = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "echo_load: %s\n", what);
    exit(1);
}

static void die_errno(const char *what)
{
    fprintf(stderr, "echo_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                     &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* This process's CPU time in seconds. */
static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double pids_cpu_s(const long *pids, int npids)
{
    double sum = 0;
    for (int i = 0; i < npids; i++) {
        double c = proc_cpu_s(pids[i]);
        if (c < 0) {
            fprintf(stderr, "echo_load: cannot read /proc/%ld/stat\n", pids[i]);
            exit(1);
        }
        sum += c;
    }
    return sum;
}

static void raise_nofile(uint64_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("getrlimit");
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            die_errno("setrlimit");
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need + 16) {
        fprintf(stderr, "echo_load: need %llu files, the limit is %llu\n",
                (unsigned long long)need + 16, (unsigned long long)rl.rlim_cur);
        exit(1);
    }
}

static struct sockaddr_storage addr;
static socklen_t addr_len;

static void resolve(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "echo_load: %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

static int new_socket(void)
{
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die_errno("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void watch(int fd, uint32_t events, uint64_t data, int op)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die_errno("epoll_ctl");
}

/* ---- load mode ---------------------------------------------------------- */

/* Send until DEPTH messages past the done ones are out, or the socket is full. */
static void pump(struct conn *c)
{
    uint64_t limit = (c->msgs + depth) * size;
    while (c->sent < limit) {
        uint64_t len = limit - c->sent;
        if (len > CHUNK)
            len = CHUNK;
        ssize_t n = send(c->fd, pat + c->sent % PERIOD, (size_t)len, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (uint64_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                c->want_out = 1;
                watch(c->fd, EPOLLIN | EPOLLOUT, (uint64_t)(uintptr_t)c, EPOLL_CTL_MOD);
            }
            return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            die_errno("send");
        }
    }
    if (c->want_out) {
        c->want_out = 0;
        watch(c->fd, EPOLLIN, (uint64_t)(uintptr_t)c, EPOLL_CTL_MOD);
    }
}

static void on_readable(struct conn *c)
{
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        die_errno("recv");
    }
    if (n == 0)
        die("the server closed a connection");
    if (c->recvd + (uint64_t)n > c->sent)
        die("got back more bytes than were sent");
    if (memcmp(rbuf, pat + c->recvd % PERIOD, (size_t)n) != 0)
        die("the echoed bytes differ from what was sent");
    c->recvd += (uint64_t)n;
    uint64_t done = c->recvd / size;
    if (done != c->msgs) {
        total_msgs += done - c->msgs;
        c->msgs = done;
        pump(c);
    }
}

static int run_load(uint64_t nconns, double seconds, double warmup,
                    const long *pids, int npids)
{
    raise_nofile(nconns);
    struct conn *conns = calloc(nconns, sizeof *conns);
    if (!conns)
        die("out of memory");
    for (uint64_t i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->fd = new_socket();
        if (connect(c->fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS)
            die_errno("connect");
        /* wait for it: a few connections, nothing to overlap */
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        if (poll(&pfd, 1, 10000) != 1)
            die("connect timed out");
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
            errno = err;
            die_errno("connect");
        }
        watch(c->fd, EPOLLIN, (uint64_t)(uintptr_t)c, EPOLL_CTL_ADD);
    }
    for (uint64_t i = 0; i < nconns; i++)
        pump(&conns[i]);

    struct epoll_event evs[256];
    double t0 = now_s();
    double warm_end = t0 + warmup, t_start = 0, t_end = 0;
    double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0;
    uint64_t m0 = 0, m1 = 0;
    int measuring = 0;
    uint64_t last_msgs = 0;
    double last_progress = t0;
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 20);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_errno("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = (struct conn *)(uintptr_t)evs[i].data.u64;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
            if (evs[i].events & EPOLLOUT)
                pump(c);
        }
        double t = now_s();
        if (total_msgs != last_msgs) {
            last_msgs = total_msgs;
            last_progress = t;
        } else if (t - last_progress > STALL_S) {
            die("no message came back for 10 s");
        }
        if (!measuring && t >= warm_end) {
            measuring = 1;
            if (npids)
                cpu0 = pids_cpu_s(pids, npids);
            self0 = self_cpu_s();
            t_start = now_s();
            m0 = total_msgs;
            for (uint64_t i = 0; i < nconns; i++)
                conns[i].msgs0 = conns[i].msgs;
        } else if (measuring && t >= t_start + seconds) {
            t_end = now_s();
            m1 = total_msgs;
            self1 = self_cpu_s();
            if (npids)
                cpu1 = pids_cpu_s(pids, npids);
            break;
        }
    }
    double dt = t_end - t_start;
    uint64_t msgs = m1 - m0, cmin = UINT64_MAX, cmax = 0;
    for (uint64_t i = 0; i < nconns; i++) {
        uint64_t k = conns[i].msgs - conns[i].msgs0;
        cmin = k < cmin ? k : cmin;
        cmax = k > cmax ? k : cmax;
    }
    printf("msgs %llu msgs\n", (unsigned long long)msgs);
    printf("msgs_per_s %.1f msgs/s\n", msgs / dt);
    printf("MiB_per_s %.1f MiB/s\n", (double)msgs * (double)size / dt / 1048576.0);
    printf("seconds %.3f s\n", dt);
    printf("conn_msgs_min %llu msgs\n", (unsigned long long)cmin);
    printf("conn_msgs_max %llu msgs\n", (unsigned long long)cmax);
    printf("load_cpu_pct %.1f %%\n", 100.0 * (self1 - self0) / dt);
    if (npids) {
        double cpu = cpu1 - cpu0;
        printf("server_cpu_s %.2f s\n", cpu);
        printf("server_cpu_pct %.1f %%\n", 100.0 * cpu / dt);
        if (msgs)
            printf("server_cpu_us_per_msg %.3f us\n", cpu * 1e6 / (double)msgs);
    }
    fflush(stdout);
    for (uint64_t i = 0; i < nconns; i++)
        close(conns[i].fd);
    return 0;
}

/* ---- idle mode ---------------------------------------------------------- */

static int run_idle(uint64_t nconns, double seconds, int touch)
{
    raise_nofile(nconns);
    int *fds = malloc(nconns * sizeof *fds);
    unsigned char *state = calloc(nconns, 1);  /* 0 connecting, 1 up, 2 touched, 3 closed */
    if (!fds || !state)
        die("out of memory");
    struct epoll_event evs[512];
    uint64_t started = 0, up = 0, connecting = 0;
    double deadline = now_s() + 60;
    while (up < nconns) {
        while (connecting < MAX_CONNECTING && started < nconns) {
            int fd = new_socket();
            fds[started] = fd;
            if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS)
                die_errno("connect");
            watch(fd, EPOLLOUT, started, EPOLL_CTL_ADD);
            started++;
            connecting++;
        }
        int n = epoll_wait(ep, evs, 512, 100);
        if (n < 0 && errno != EINTR)
            die_errno("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint64_t k = evs[i].data.u64;
            int err = 0;
            socklen_t el = sizeof err;
            if (getsockopt(fds[k], SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
                fprintf(stderr, "echo_load: connection %llu of %llu: %s\n",
                        (unsigned long long)k + 1, (unsigned long long)nconns,
                        strerror(err ? err : errno));
                exit(1);
            }
            watch(fds[k], EPOLLIN, k, EPOLL_CTL_MOD);
            state[k] = 1;
            connecting--;
            up++;
        }
        if (now_s() > deadline)
            die("connecting took over 60 s");
    }
    printf("connected %llu\n", (unsigned long long)up);
    fflush(stdout);

    /* then only EOFs (and with --touch the echoes) come in */
    uint64_t closed = 0, touched = 0;
    double t_end = now_s() + seconds;
    sigset_t usr1, unblocked;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &unblocked);  /* delivered in epoll_pwait only */
    int sent = 0, said_touched = 0;
    while (now_s() < t_end) {
        if (touch && go && !sent) {
            for (uint64_t k = 0; k < nconns; k++)
                if (state[k] == 1 && send(fds[k], "x", 1, MSG_NOSIGNAL) != 1)
                    die_errno("send");
            sent = 1;
        }
        int n = epoll_pwait(ep, evs, 512, 100, &unblocked);
        if (n < 0 && errno != EINTR)
            die_errno("epoll_pwait");
        for (int i = 0; i < n; i++) {
            uint64_t k = evs[i].data.u64;
            char b[64];
            ssize_t r = recv(fds[k], b, sizeof b, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r == 1 && sent && state[k] == 1 && b[0] == 'x') {
                state[k] = 2;
                touched++;
                continue;
            }
            if (r > 0)
                die("unexpected bytes on an idle connection");
            epoll_ctl(ep, EPOLL_CTL_DEL, fds[k], NULL);
            close(fds[k]);
            state[k] = 3;
            closed++;
        }
        if (sent && !said_touched && touched + closed == nconns) {
            printf("touched %llu\n", (unsigned long long)touched);
            fflush(stdout);
            said_touched = 1;
        }
    }
    printf("closed_by_server %llu conns\n", (unsigned long long)closed);
    if (touch)
        printf("touched_conns %llu conns\n", (unsigned long long)touched);
    fflush(stdout);
    return closed || (touch && touched != nconns) ? 1 : 0;
}

/* ---- main --------------------------------------------------------------- */

static uint64_t parse_u(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0) {
        fprintf(stderr, "echo_load: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static double parse_d(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0)) {
        fprintf(stderr, "echo_load: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: echo_load HOST PORT CONNS SIZE DEPTH SECONDS [--pid PID]... [--warmup S]\n"
            "       echo_load HOST PORT --idle N SECONDS [--touch]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *pos[8];
    int npos = 0, touch = 0, npids = 0;
    long pids[MAX_PIDS];
    double warmup = 0.5;
    uint64_t idle = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc) {
            if (npids == MAX_PIDS)
                usage();
            pids[npids++] = (long)parse_u(argv[++i], "pid");
        } else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
            warmup = parse_d(argv[++i], "warm-up");
        } else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc) {
            idle = parse_u(argv[++i], "connection count");
        } else if (strcmp(argv[i], "--touch") == 0) {
            touch = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            usage();
        } else if (npos < 8) {
            pos[npos++] = argv[i];
        } else {
            usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (unsigned char)(i % PERIOD);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die_errno("epoll_create1");
    if (idle) {
        if (npos != 3)
            usage();
        resolve(pos[0], pos[1]);
        return run_idle(idle, parse_d(pos[2], "seconds"), touch);
    }
    if (npos != 6 || touch)
        usage();
    resolve(pos[0], pos[1]);
    uint64_t nconns = parse_u(pos[2], "connection count");
    size = parse_u(pos[3], "size");
    depth = parse_u(pos[4], "depth");
    return run_load(nconns, parse_d(pos[5], "seconds"), warmup, pids, npids);
}
