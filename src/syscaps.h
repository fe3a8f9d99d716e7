/* What the system offers that POSIX does not promise, decided by feature
 * tests (a header or a macro that is there), never by a list of system
 * names; each has a portable path beside it. A test build defines
 * ASYNCIO_NO_LINUX_FEATURES (CMake: -DASYNCIO_PORTABLE_FEATURES=ON) to turn
 * every one off, so that the paths the BSDs and macOS take are built and
 * run on Linux too:
 *
 *   HAVE_SOCK_NONBLOCK  socket(SOCK_NONBLOCK | SOCK_CLOEXEC); else fcntl
 *   HAVE_ACCEPT4        accept4() (CMake's check: ASYNCIO_HAVE_ACCEPT4_FN);
 *                       else accept() and fcntl
 *   HAVE_MSG_NOSIGNAL   send(MSG_NOSIGNAL); else SO_NOSIGPIPE on the socket
 *                       where it exists, else SIGPIPE blocked around sends
 *   HAVE_EVENTFD        the thread-safe wake-up; else a pipe
 *   HAVE_SIGNALFD       signal handlers read from a signalfd; else a
 *                       sigaction() handler that writes to a pipe
 *   HAVE_PIDFD          child exits through pidfds; else SIGCHLD
 *   HAVE_MADV_GUARD     MADV_GUARD_INSTALL guard pages; else mprotect()
 *   HAVE_SENDFILE       sendfile(out, in, &offset, count) of <sys/sendfile.h>
 *                       (Linux, illumos); else files are read and sent
 */
#ifndef ASYNCIO_SYSCAPS_H
#define ASYNCIO_SYSCAPS_H

#include <sys/socket.h>
#if defined(__has_include)
#if __has_include(<sys/syscall.h>)
#include <sys/syscall.h>
#endif
#endif

#ifndef ASYNCIO_NO_LINUX_FEATURES

#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
#define HAVE_SOCK_NONBLOCK 1
#if defined(ASYNCIO_HAVE_ACCEPT4_FN)
#define HAVE_ACCEPT4 1
#endif
#endif

#ifdef MSG_NOSIGNAL
#define HAVE_MSG_NOSIGNAL 1
#endif

#if defined(__has_include)
#if __has_include(<sys/eventfd.h>)
#define HAVE_EVENTFD 1
#endif
#if __has_include(<sys/signalfd.h>)
#define HAVE_SIGNALFD 1
#endif
#if __has_include(<sys/sendfile.h>)
#define HAVE_SENDFILE 1
#endif
#endif

#ifdef SYS_pidfd_open
#define HAVE_PIDFD 1
#endif

/* Guard pages: a Linux madvise() (6.13), tried at run time, its number
 * defined here where the headers are older (stack.c). */
#if defined(__linux__)
#define HAVE_MADV_GUARD 1
#endif

#endif /* ASYNCIO_NO_LINUX_FEATURES */

#endif
