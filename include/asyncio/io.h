/*
 * <asyncio/io.h>: waiting for file descriptors.
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_IO_H
#define ASYNCIO_IO_H

#include <asyncio/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Wait until fd is readable (asyncio's loop.add_reader, as a waiting call):
 * data, end of file, a pending connection, or an error condition on it.
 * The caller should have tried its read first (and got EAGAIN); a return of
 * 0 means "try again", and a retry may still find nothing. One task at a
 * time may wait to read an fd. May suspend. Returns 0, -EBADF (fd < 0 or
 * not open: at once, before anything is allocated for it; an fd closed
 * while a task waits on it wakes the task with -EBADF where the backend
 * can tell), -EBUSY (another task waits to read fd), -EPERM (not in a
 * task), -ECANCELED, -ENOMEM, or a poller error such as -EPERM for a
 * regular file with epoll or kqueue (poll() says a regular file is always
 * ready).
 */
ASYNCIO_API int asyncio_wait_readable(int fd);

/* The same for writability (asyncio's loop.add_writer). */
ASYNCIO_API int asyncio_wait_writable(int fd);

/*
 * Tell the loop that fd is about to be closed: wakes any task waiting on it
 * with -EBADF and forgets the fd. Call it before close(fd) for every fd a
 * task of this loop has waited on, whether or not one waits now: the loop
 * keeps an fd registered between waits (so that waiting again costs no
 * system call), and a closed fd whose number is reused would otherwise be
 * taken for the old one. Returns 0, -EBADF (fd < 0), -EPERM (no loop).
 * Does not suspend.
 */
ASYNCIO_API int asyncio_forget_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif
