/*
 * Fault injection for the test build (option ASYNCIO_FAULT_INJECTION).
 *
 * The driver (driver.c) is linked with the library's objects and with
 * `-Wl,--wrap=NAME` for every allocation and system call the library makes
 * (see tests/fault/CMakeLists.txt): each call the library makes to NAME
 * goes to __wrap_NAME (wrap.c), which counts it and can make it fail as
 * the system would (errno set, the failure value returned). No source of
 * the library changes for it.
 *
 * Only calls made on the thread that armed counting (the thread that runs
 * the scenario's loop) are counted or failed: the resolver's worker
 * threads run at their own pace, and counting them would make the Nth call
 * a different call from run to run.
 *
 * Calls that cannot fail with valid arguments are not failed: fcntl() on
 * an open fd (the library asks F_GETFD only to learn whether an fd is
 * open), close(), munmap(), clock_gettime(), the pthread mutex and
 * condition calls, sigemptyset() and the like; kill() of a child of ours
 * not yet reaped, and the posix_spawnattr_*() setters and
 * posix_spawn_file_actions_init() (glibc's only store). The posix_spawn
 * calls return their error rather than setting errno; waitid()'s hard
 * failure, ECHILD, is a child some other part of the program reaped.
 *
 * These counters are the one process-wide state of this test build (the
 * library itself keeps none but its thread-local loop pointer); every run
 * is a fresh child process, so they start at zero each time.
 */
#ifndef ASYNCIO_TEST_FAULT_H
#define ASYNCIO_TEST_FAULT_H

#include <stdbool.h>

/* One entry a wrapped function: its name, the errno of a hard failure, and
 * the errno of a failure the library retries (0: none): EINTR for a call
 * that blocks; for accept4, ECONNABORTED (a connection that died in the
 * backlog), which the library retries as it does EINTR. Below, "eintr"
 * means that second kind of failure. */
#define FAULT_SITES(X)                                                         \
    X(malloc, ENOMEM, 0)                                                       \
    X(calloc, ENOMEM, 0)                                                       \
    X(realloc, ENOMEM, 0)                                                      \
    X(strdup, ENOMEM, 0)                                                       \
    X(mmap, ENOMEM, 0)                                                         \
    X(madvise, ENOMEM, 0)                                                      \
    X(mprotect, ENOMEM, 0)                                                     \
    X(syscall, ENOSYS, 0)                                                      \
    X(epoll_create1, EMFILE, 0)                                                \
    X(epoll_ctl, ENOMEM, 0)                                                    \
    X(epoll_wait, ENOMEM, EINTR)                                                   \
    X(epoll_pwait2, ENOMEM, EINTR)                                                 \
    X(ppoll, ENOMEM, EINTR)                                                        \
    X(eventfd, EMFILE, 0)                                                      \
    X(signalfd, EMFILE, 0)                                                     \
    X(pthread_create, EAGAIN, 0)                                               \
    X(sigaltstack, ENOMEM, 0)                                                  \
    X(socket, EMFILE, 0)                                                       \
    X(bind, EADDRINUSE, 0)                                                     \
    X(listen, EADDRINUSE, 0)                                                   \
    X(accept4, EMFILE, ECONNABORTED)                                                      \
    X(connect, ECONNREFUSED, EINTR)                                                \
    X(getsockname, ENOBUFS, 0)                                                 \
    X(getsockopt, ENOBUFS, 0)                                                  \
    X(setsockopt, ENOMEM, 0)                                                   \
    X(shutdown, ENOTCONN, 0)                                                   \
    X(recv, ECONNRESET, EINTR)                                                     \
    X(recvfrom, ECONNRESET, EINTR)                                                 \
    X(read, EIO, EINTR)                                                            \
    X(send, EPIPE, EINTR)                                                          \
    X(sendto, EPIPE, EINTR)                                                        \
    X(sendmsg, EPIPE, EINTR)                                                       \
    X(writev, EPIPE, EINTR)                                                        \
    X(write, EPIPE, EINTR)                                                         \
    X(stat, EACCES, 0)                                                         \
    X(unlink, EACCES, 0)                                                       \
    X(pipe2, EMFILE, 0)                                                        \
    X(socketpair, EMFILE, 0)                                                   \
    X(posix_spawn, EAGAIN, 0)                                                  \
    X(posix_spawnp, EAGAIN, 0)                                                 \
    X(posix_spawn_file_actions_adddup2, ENOMEM, 0)                             \
    X(posix_spawn_file_actions_addopen, ENOMEM, 0)                             \
    X(waitid, ECHILD, EINTR)

enum fault_site {
#define FAULT_ENUM(name, err, eintr) FAULT_##name,
    FAULT_SITES(FAULT_ENUM)
#undef FAULT_ENUM
    FAULT_NSITES
};

/* Count the calls made on this thread from now on. */
void fault_arm(void);
/* Stop counting (and failing): the driver's own calls after a run, and
 * gcov's when it writes its counters, must not be failed. */
void fault_disarm(void);
/* The Nth counted call (1-based) fails, with its retried errno (EINTR...)
 * instead of its hard errno if eintr is set (and the site has one); 0: none
 * fails. */
void fault_fail_at(unsigned long n, bool eintr);
/* Calls counted so far on the armed thread. */
unsigned long fault_calls(void);
/* Which site the failed call was (-1: none failed yet), and whether it
 * failed with EINTR. */
int fault_failed_site(bool *eintr);
/* The site of the nth counted call, as recorded (n <= FAULT_LOG). */
#define FAULT_LOG 65536
int fault_site_of(unsigned long n);
const char *fault_site_name(int site);
bool fault_site_can_eintr(int site);

#endif
