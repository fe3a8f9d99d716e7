/**
 * \file asyncio/io.h
 * \brief Waiting for file descriptors.
 *
 * A task that reads or writes a non-blocking fd of its own waits here for
 * it to be ready (asyncio's loop.add_reader and add_writer, as waiting
 * calls). Call asyncio_forget_fd() before closing an fd a task waited on.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_IO_H
#define ASYNCIO_IO_H

#include <asyncio/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Wait until fd is readable (asyncio's loop.add_reader, as a waiting call).
 *
 * Readable: data, end of file, a pending connection, or an error condition
 * on it. The caller should have tried its read first (and got EAGAIN); a
 * return of 0 means "try again", and a retry may still find nothing. One
 * task at a time may wait to read an fd.
 *
 * \param fd  an open file descriptor, >= 0
 * \return 0; -EBADF (fd < 0 or not open: at once, before anything is
 *         allocated for it; an fd closed while a task waits on it wakes the
 *         task with -EBADF where the backend can tell), -EBUSY (another task
 *         waits to read fd), -EPERM (not in a task), -ECANCELED, -ETIMEDOUT,
 *         -ENOMEM, or a poller error such as -EPERM for a regular file with
 *         epoll or kqueue (poll() says a regular file is always ready).
 * \suspends Yes: until fd is readable, or asyncio_forget_fd() forgets it.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_wait_readable(int fd);

/**
 * Wait until fd is writable (asyncio's loop.add_writer, as a waiting call).
 *
 * The same as asyncio_wait_readable(), for writing: one task at a time may
 * wait to write an fd (another may wait to read it meanwhile).
 *
 * \param fd  an open file descriptor, >= 0
 * \return 0; -EBADF, -EBUSY (another task waits to write fd), -EPERM,
 *         -ECANCELED, -ETIMEDOUT, -ENOMEM, or a poller error, as
 *         asyncio_wait_readable().
 * \suspends Yes: until fd is writable, or asyncio_forget_fd() forgets it.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_wait_writable(int fd);

/**
 * Tell the loop that fd is about to be closed.
 *
 * It wakes any task waiting on fd with -EBADF and forgets the fd. Call it
 * before close(fd) for every fd a task of this loop has waited on, whether
 * or not one waits now: the loop keeps an fd registered between waits (so
 * that waiting again costs no system call), and a closed fd whose number
 * is reused would otherwise be taken for the old one.
 *
 * \param fd  the file descriptor, >= 0 (one the loop never saw is fine)
 * \return 0; -EBADF (fd < 0), -EPERM (no loop in this thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback, or the thread between
 *          runs of its loop.
 */
ASYNCIO_API int asyncio_forget_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif
