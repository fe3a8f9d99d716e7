/* bench/net/echo_load.c: the load generator of the echo benchmark.
 *
 *   echo_load HOST PORT[,PORT]... CONNS SIZE DEPTH SECONDS [--pid PID[,PID]...]
 *             [--warmup S] [--slice S] [--verbose]
 *   echo_load HOST PORT --idle N SECONDS [--touch]
 *
 * Load mode: CONNS connections to each server, each keeping DEPTH messages
 * of SIZE bytes in flight: a message is done when its SIZE bytes have come
 * back, and then the next one is sent. Every echoed byte is checked against
 * what was sent (the byte stream of a connection is a fixed pattern, so the
 * check is a memcmp) and a connection never gets back more than it sent.
 *
 * Several servers (PORTs) are loaded in turn, never at once: a slice of
 * --slice seconds (default 0.05) on the first, then the next, ..., then
 * backwards, until each has been measured for SECONDS. At the end of a
 * slice no new message is sent and the slice ends when the messages in
 * flight have come back, so a server's connections are quiet while the
 * others run. The machine's drift thus falls on all servers alike. Each
 * server first gets a warm-up slice (--warmup, default 0.5 s), not counted.
 * One server: a single slice of SECONDS.
 *
 * Output: `name value unit` lines per server, the names prefixed with `tI.`
 * (I = 1, 2, ... in PORT order) when there are several: msgs (done while
 * slices ran), msgs_per_s (over the slices' time), MiB_per_s, seconds,
 * slices, conn_msgs_min/max (how even the connections were served),
 * load_cpu_pct (its own CPU use while loading the server: near 100 means
 * the load generator may be the limit), and with --pid (one per PORT) the
 * server's CPU over its slices, drains included, from the sum_exec_runtime
 * of its threads (/proc/PID/task/TID/schedstat, ns): server_cpu_s,
 * server_cpu_pct, server_cpu_us_per_msg. --verbose prints every slice on
 * stderr.
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
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251               /* the byte pattern: byte i of a stream is i % 251 */
#define CHUNK (256 * 1024)       /* largest single send or recv */
#define MAX_TARGETS 8
#define MAX_CONNECTING 256       /* idle mode: connects in progress at once */
#define STALL_S 10.0

struct target;

struct conn {
    struct target *t; /* the server it goes to */
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

/* HOST and PORT into *addr; exits if they do not resolve. */
static void resolve(const char *host, const char *port, struct sockaddr_storage *addr,
                    socklen_t *addr_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "echo_load: %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

static int new_socket(const struct sockaddr_storage *addr)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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

/* One server under load: its connections, and what was measured on it. */
struct target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    long pid;             /* 0: the server's CPU is not measured */
    struct conn *conns;
    int open;             /* new messages may be sent (its slice is running) */
    uint64_t outstanding; /* bytes sent and not yet echoed, all connections */
    uint64_t done;        /* messages done, all slices */
    /* sums over the measured slices */
    uint64_t m_msgs;      /* messages done while a slice was open */
    uint64_t m_msgs_all;  /* ... and while it drained, for CPU per message */
    double m_secs;        /* time the slices were open */
    double m_cpu_s;       /* server CPU over the slices, drain included */
    double m_self_s;      /* our own CPU over the same */
    double m_wall_all;    /* slice time, drain included */
    int slices;
};

/* Send until DEPTH messages past the done ones are out (after the slice:
 * only the rest of a message begun), or the socket is full. */
static void pump(struct conn *c)
{
    struct target *t = c->t;
    uint64_t limit = t->open ? (c->msgs + depth) * size : (c->sent + size - 1) / size * size;
    while (c->sent < limit) {
        uint64_t len = limit - c->sent;
        if (len > CHUNK)
            len = CHUNK;
        ssize_t n = send(c->fd, pat + c->sent % PERIOD, (size_t)len, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (uint64_t)n;
            t->outstanding += (uint64_t)n;
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
    struct target *t = c->t;
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
    t->outstanding -= (uint64_t)n;
    uint64_t done = c->recvd / size;
    if (done != c->msgs) {
        t->done += done - c->msgs;
        c->msgs = done;
        if (t->open)
            pump(c);
    }
}

/* CPU time of every thread of pid (sum_exec_runtime, ns resolution), in
 * seconds; exits if the process is gone. */
static double proc_cpu_s(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "echo_load: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    double sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p2[320];
        snprintf(p2, sizeof p2, "/proc/%ld/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f)
            continue;  /* the thread is gone */
        unsigned long long ns;
        if (fscanf(f, "%llu", &ns) == 1)
            sum += (double)ns / 1e9;
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* This thread's CPU time in seconds. */
static double self_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t nconns;
static int verbose;

/* Has a connection of t sent part of a message only? */
static int partial(const struct target *t)
{
    for (uint64_t i = 0; i < nconns; i++)
        if (t->conns[i].sent % size)
            return 1;
    return 0;
}

/* Load target t for `len` seconds, then let its messages in flight come back;
 * with `measure`, add the slice to its sums. */
static void run_slice(struct target *t, int idx, double len, int measure)
{
    static struct epoll_event evs[256];
    double cpu0 = t->pid ? proc_cpu_s(t->pid) : 0;
    double self0 = self_cpu_s();
    uint64_t d0 = t->done, d1 = 0;
    double t0 = now_s(), t1 = 0, last_progress = t0;
    uint64_t last_done = d0;
    t->open = 1;
    for (uint64_t i = 0; i < nconns; i++)
        pump(&t->conns[i]);
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
        double now = now_s();
        if (t->done != last_done) {
            last_done = t->done;
            last_progress = now;
        } else if (now - last_progress > STALL_S) {
            die("no message came back for 10 s");
        }
        if (t->open && now >= t0 + len) {
            t->open = 0;
            t1 = now;
            d1 = t->done;
        }
        if (!t->open && t->outstanding == 0 && !partial(t))
            break;
    }
    double t2 = now_s();
    double self1 = self_cpu_s();
    double cpu1 = t->pid ? proc_cpu_s(t->pid) : 0;
    if (verbose)
        fprintf(stderr, "slice t%d %s %.4f s %llu msgs %.1f msgs/s drain %.4f s cpu %.3f us/msg\n",
                idx + 1, measure ? "measured" : "warm-up", t1 - t0,
                (unsigned long long)(d1 - d0), (double)(d1 - d0) / (t1 - t0), t2 - t1,
                t->done > d0 ? (cpu1 - cpu0) * 1e6 / (double)(t->done - d0) : 0.0);
    if (!measure)
        return;
    t->m_msgs += d1 - d0;
    t->m_msgs_all += t->done - d0;
    t->m_secs += t1 - t0;
    t->m_wall_all += t2 - t0;
    t->m_cpu_s += cpu1 - cpu0;
    t->m_self_s += self1 - self0;
    t->slices++;
}

static void report(const char *prefix, const struct target *t)
{
    uint64_t cmin = UINT64_MAX, cmax = 0;
    for (uint64_t i = 0; i < nconns; i++) {
        uint64_t k = t->conns[i].msgs - t->conns[i].msgs0;
        cmin = k < cmin ? k : cmin;
        cmax = k > cmax ? k : cmax;
    }
    double dt = t->m_secs;
    printf("%smsgs %llu msgs\n", prefix, (unsigned long long)t->m_msgs);
    printf("%smsgs_per_s %.1f msgs/s\n", prefix, (double)t->m_msgs / dt);
    printf("%sMiB_per_s %.1f MiB/s\n", prefix, (double)t->m_msgs * (double)size / dt / 1048576.0);
    printf("%sseconds %.3f s\n", prefix, dt);
    printf("%sslices %d slices\n", prefix, t->slices);
    printf("%sconn_msgs_min %llu msgs\n", prefix, (unsigned long long)cmin);
    printf("%sconn_msgs_max %llu msgs\n", prefix, (unsigned long long)cmax);
    printf("%sload_cpu_pct %.1f %%\n", prefix, 100.0 * t->m_self_s / t->m_wall_all);
    if (t->pid) {
        printf("%sserver_cpu_s %.3f s\n", prefix, t->m_cpu_s);
        printf("%sserver_cpu_pct %.1f %%\n", prefix, 100.0 * t->m_cpu_s / t->m_wall_all);
        if (t->m_msgs_all)
            printf("%sserver_cpu_us_per_msg %.3f us\n", prefix,
                   t->m_cpu_s * 1e6 / (double)t->m_msgs_all);
    }
}

/* Load every target in turn, a slice at a time (forwards, then backwards, so
 * that a drift of the machine's speed falls on all alike), until each has
 * been measured for `seconds`. One target: a single slice of `seconds`. */
static int run_load(struct target *tg, int ntg, double seconds, double warmup, double slice)
{
    raise_nofile(nconns * (uint64_t)ntg);
    for (int k = 0; k < ntg; k++) {
        struct target *t = &tg[k];
        t->conns = calloc(nconns, sizeof *t->conns);
        if (!t->conns)
            die("out of memory");
        for (uint64_t i = 0; i < nconns; i++) {
            struct conn *c = &t->conns[i];
            c->t = t;
            c->fd = new_socket(&t->addr);
            if (connect(c->fd, (struct sockaddr *)&t->addr, t->addr_len) < 0 && errno != EINPROGRESS)
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
    }
    if (ntg == 1 || slice > seconds)
        slice = seconds;
    if (warmup > 0)
        for (int k = 0; k < ntg; k++)
            run_slice(&tg[k], k, warmup, 0);
    for (int k = 0; k < ntg; k++)
        for (uint64_t i = 0; i < nconns; i++)
            tg[k].conns[i].msgs0 = tg[k].conns[i].msgs;
    for (int cycle = 0; tg[0].m_secs < seconds - slice / 2; cycle++)
        for (int j = 0; j < ntg; j++) {
            int k = cycle % 2 ? ntg - 1 - j : j;
            run_slice(&tg[k], k, slice, 1);
        }
    for (int k = 0; k < ntg; k++) {
        char prefix[16] = "";
        if (ntg > 1)
            snprintf(prefix, sizeof prefix, "t%d.", k + 1);
        report(prefix, &tg[k]);
        for (uint64_t i = 0; i < nconns; i++)
            close(tg[k].conns[i].fd);
        free(tg[k].conns);
    }
    fflush(stdout);
    return 0;
}

/* ---- idle mode ---------------------------------------------------------- */

static int run_idle(const char *host, const char *port, uint64_t nconns, double seconds, int touch)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    resolve(host, port, &addr, &addr_len);
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
            int fd = new_socket(&addr);
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
            "usage: echo_load HOST PORT[,PORT]... CONNS SIZE DEPTH SECONDS [--pid PID[,PID]...]\n"
            "                 [--warmup S] [--slice S] [--verbose]\n"
            "       echo_load HOST PORT --idle N SECONDS [--touch]\n");
    exit(2);
}

/* Split a comma-separated list into at most max items; returns their count. */
static int split_list(char *s, char **items, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max)
            usage();
        items[n++] = tok;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *pos[8];
    char *pidlist = NULL;
    int npos = 0, touch = 0;
    double warmup = 0.5, slice = 0.1;
    uint64_t idle = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc) {
            pidlist = argv[++i];
        } else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
            warmup = parse_d(argv[++i], "warm-up");
        } else if (strcmp(argv[i], "--slice") == 0 && i + 1 < argc) {
            slice = parse_d(argv[++i], "slice");
        } else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc) {
            idle = parse_u(argv[++i], "connection count");
        } else if (strcmp(argv[i], "--touch") == 0) {
            touch = 1;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
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
        if (npos != 3 || pidlist)
            usage();
        return run_idle(pos[0], pos[1], idle, parse_d(pos[2], "seconds"), touch);
    }
    if (npos != 6 || touch)
        usage();
    char *ports[MAX_TARGETS], *pidv[MAX_TARGETS];
    int ntg = split_list(strdup(pos[1]), ports, MAX_TARGETS);
    int npids = pidlist ? split_list(pidlist, pidv, MAX_TARGETS) : 0;
    if (ntg == 0 || (npids && npids != ntg)) {
        fprintf(stderr, "echo_load: give one pid per port, or none\n");
        exit(2);
    }
    struct target tg[MAX_TARGETS];
    memset(tg, 0, sizeof tg);
    for (int k = 0; k < ntg; k++) {
        resolve(pos[0], ports[k], &tg[k].addr, &tg[k].addr_len);
        tg[k].pid = npids ? (long)parse_u(pidv[k], "pid") : 0;
    }
    nconns = parse_u(pos[2], "connection count");
    size = parse_u(pos[3], "size");
    depth = parse_u(pos[4], "depth");
    double seconds = parse_d(pos[5], "seconds");
    if (!(seconds > 0) || !(slice > 0)) {
        fprintf(stderr, "echo_load: SECONDS and --slice must be above 0\n");
        exit(2);
    }
    return run_load(tg, ntg, seconds, warmup, slice);
}
