/*
 * The wrappers: __wrap_NAME for every NAME in FAULT_SITES (fault.h). The
 * link (-Wl,--wrap=NAME) sends the library's calls here; __real_NAME is
 * the C library's. See fault.h for what is counted.
 */
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

/* Process-wide: the one state of this test build (fault.h). */
static _Thread_local bool armed;          /* this thread's calls count */
static bool trace;                        /* $FAULT_TRACE: say every call */
static unsigned long calls, fail_at;
static bool fail_eintr;
static int failed_site = -1;
static bool failed_eintr;
static unsigned char site_log[FAULT_LOG];

static const char *const site_names[] = {
#define FAULT_NAME(name, err, eintr) #name,
    FAULT_SITES(FAULT_NAME)
#undef FAULT_NAME
};
static const int site_errno[] = {
#define FAULT_ERR(name, err, eintr) err,
    FAULT_SITES(FAULT_ERR)
#undef FAULT_ERR
};
static const int site_eintr[] = {
#define FAULT_EINTR(name, err, eintr) eintr,
    FAULT_SITES(FAULT_EINTR)
#undef FAULT_EINTR
};

void fault_arm(void)
{
    armed = true;
    trace = getenv("FAULT_TRACE") != NULL;
}

void fault_disarm(void)
{
    armed = false;
}

void fault_fail_at(unsigned long n, bool eintr)
{
    fail_at = n;
    fail_eintr = eintr;
}

unsigned long fault_calls(void)
{
    return calls;
}

int fault_failed_site(bool *eintr)
{
    if (eintr)
        *eintr = failed_eintr;
    return failed_site;
}

int fault_site_of(unsigned long n)
{
    return n >= 1 && n <= FAULT_LOG ? site_log[n - 1] : -1;
}

const char *fault_site_name(int site)
{
    return site >= 0 && site < FAULT_NSITES ? site_names[site] : "?";
}

bool fault_site_can_eintr(int site)
{
    return site >= 0 && site < FAULT_NSITES && site_eintr[site] != 0;
}

ssize_t __real_write(int fd, const void *b, size_t n);

/* Count a call at site; true (errno set) if this is the one to fail. */
static bool hit(enum fault_site site)
{
    if (!armed)
        return false;
    unsigned long n = ++calls;
    if (n <= FAULT_LOG)
        site_log[n - 1] = (unsigned char)site;
    if (trace) {
        char line[64];
        int len = snprintf(line, sizeof line, "fault: call %lu: %s%s\n", n, site_names[site],
                           n == fail_at ? " (fails)" : "");
        if (len > 0)
            (void)!__real_write(2, line, (size_t)len);
    }
    if (n != fail_at)
        return false;
    failed_site = (int)site;
    failed_eintr = fail_eintr && site_eintr[site];
    errno = failed_eintr ? site_eintr[site] : site_errno[site];
    return true;
}

/* The wrapper of a function with a fixed argument list. */
#define WRAP(ret, name, fail, params, args)                                    \
    ret __real_##name params;                                                  \
    ret __wrap_##name params;                                                  \
    ret __wrap_##name params                                                   \
    {                                                                          \
        if (hit(FAULT_##name))                                                 \
            return fail;                                                       \
        return __real_##name args;                                             \
    }

WRAP(void *, malloc, NULL, (size_t n), (n))
WRAP(void *, calloc, NULL, (size_t n, size_t size), (n, size))
WRAP(void *, realloc, NULL, (void *p, size_t n), (p, n))
WRAP(char *, strdup, NULL, (const char *s), (s))
WRAP(void *, mmap, MAP_FAILED, (void *a, size_t n, int prot, int fl, int fd, off_t off),
     (a, n, prot, fl, fd, off))
WRAP(int, madvise, -1, (void *a, size_t n, int advice), (a, n, advice))
WRAP(int, mprotect, -1, (void *a, size_t n, int prot), (a, n, prot))
WRAP(int, epoll_create1, -1, (int fl), (fl))
WRAP(int, epoll_ctl, -1, (int ep, int op, int fd, struct epoll_event *ev), (ep, op, fd, ev))
WRAP(int, epoll_wait, -1, (int ep, struct epoll_event *ev, int max, int ms), (ep, ev, max, ms))
WRAP(int, epoll_pwait2, -1,
     (int ep, struct epoll_event *ev, int max, const struct timespec *t, const sigset_t *m),
     (ep, ev, max, t, m))
WRAP(int, ppoll, -1, (struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *m),
     (p, n, t, m))
WRAP(int, eventfd, -1, (unsigned v, int fl), (v, fl))
WRAP(int, signalfd, -1, (int fd, const sigset_t *m, int fl), (fd, m, fl))
WRAP(int, pthread_create, EAGAIN,
     (pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg), (t, a, fn, arg))
WRAP(int, sigaltstack, -1, (const stack_t *ss, stack_t *old), (ss, old))
WRAP(int, socket, -1, (int d, int t, int p), (d, t, p))
WRAP(int, bind, -1, (int fd, const struct sockaddr *a, socklen_t n), (fd, a, n))
WRAP(int, listen, -1, (int fd, int n), (fd, n))
WRAP(int, accept4, -1, (int fd, struct sockaddr *a, socklen_t *n, int fl), (fd, a, n, fl))
WRAP(int, getsockname, -1, (int fd, struct sockaddr *a, socklen_t *n), (fd, a, n))
WRAP(int, getsockopt, -1, (int fd, int l, int o, void *v, socklen_t *n), (fd, l, o, v, n))
WRAP(int, setsockopt, -1, (int fd, int l, int o, const void *v, socklen_t n), (fd, l, o, v, n))
WRAP(int, shutdown, -1, (int fd, int how), (fd, how))
WRAP(ssize_t, recv, -1, (int fd, void *b, size_t n, int fl), (fd, b, n, fl))
WRAP(ssize_t, recvfrom, -1, (int fd, void *b, size_t n, int fl, struct sockaddr *a, socklen_t *al),
     (fd, b, n, fl, a, al))
WRAP(ssize_t, read, -1, (int fd, void *b, size_t n), (fd, b, n))
WRAP(ssize_t, send, -1, (int fd, const void *b, size_t n, int fl), (fd, b, n, fl))
WRAP(ssize_t, sendto, -1,
     (int fd, const void *b, size_t n, int fl, const struct sockaddr *a, socklen_t al),
     (fd, b, n, fl, a, al))
WRAP(ssize_t, sendmsg, -1, (int fd, const struct msghdr *m, int fl), (fd, m, fl))
WRAP(ssize_t, writev, -1, (int fd, const struct iovec *v, int n), (fd, v, n))
WRAP(ssize_t, write, -1, (int fd, const void *b, size_t n), (fd, b, n))
WRAP(int, stat, -1, (const char *p, struct stat *st), (p, st))
WRAP(int, unlink, -1, (const char *p), (p))

WRAP(int, pipe2, -1, (int fds[2], int fl), (fds, fl))
WRAP(int, socketpair, -1, (int d, int t, int p, int sv[2]), (d, t, p, sv))
WRAP(int, waitid, -1, (idtype_t t, id_t id, siginfo_t *si, int opts), (t, id, si, opts))

/* The wrapper of a function that returns its error number (0: done). */
#define WRAP_ERRNO(name, params, args)                                         \
    int __real_##name params;                                                  \
    int __wrap_##name params;                                                  \
    int __wrap_##name params                                                   \
    {                                                                          \
        if (hit(FAULT_##name))                                                 \
            return errno;                                                      \
        return __real_##name args;                                             \
    }

WRAP_ERRNO(posix_spawn,
           (pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
            const posix_spawnattr_t *attr, char *const argv[], char *const envp[]),
           (pid, path, fa, attr, argv, envp))
WRAP_ERRNO(posix_spawnp,
           (pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
            const posix_spawnattr_t *attr, char *const argv[], char *const envp[]),
           (pid, file, fa, attr, argv, envp))
WRAP_ERRNO(posix_spawn_file_actions_adddup2, (posix_spawn_file_actions_t *fa, int fd, int to),
           (fa, fd, to))
WRAP_ERRNO(posix_spawn_file_actions_addopen,
           (posix_spawn_file_actions_t *fa, int fd, const char *path, int fl, mode_t mode),
           (fa, fd, path, fl, mode))

/* connect() interrupted by a signal goes on in the background (POSIX):
 * for an EINTR, the connection is started, then EINTR reported. */
int __real_connect(int fd, const struct sockaddr *a, socklen_t n);
int __wrap_connect(int fd, const struct sockaddr *a, socklen_t n);
int __wrap_connect(int fd, const struct sockaddr *a, socklen_t n)
{
    if (!hit(FAULT_connect))
        return __real_connect(fd, a, n);
    if (errno == EINTR) {
        int rc = __real_connect(fd, a, n);
        if (rc == 0 || errno == EINPROGRESS)
            errno = EINTR;
        return -1;
    }
    return -1;
}

/* The variadic one: its arguments are passed on as they came. */
long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);
long __wrap_syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (hit(FAULT_syscall))
        return -1;
    return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
