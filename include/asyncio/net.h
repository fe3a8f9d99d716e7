/**
 * \file asyncio/net.h
 * \brief Socket calls for tasks, name resolution and datagram endpoints.
 *
 * Non-blocking socket calls for tasks (asyncio's `loop.sock_*` family),
 * name resolution (`loop.getaddrinfo`) and datagram endpoints
 * (`loop.create_datagram_endpoint`).
 *
 * Each socket call tries the system call first and waits for the socket
 * only when it would block (EAGAIN), so a socket with data ready costs no
 * poller call. They take part in cancellation and timeout scopes like
 * every waiting call: -ECANCELED, -ETIMEDOUT. Byte counts are `ssize_t`: 0
 * or more on success, a negative errno on failure. Writes never raise
 * SIGPIPE: a peer that has gone gives -EPIPE (or -ECONNRESET).
 *
 * \par Fairness
 * A task whose socket always has data would never wait, and so never let
 * other tasks run. A task may make 64 socket or stream calls in a row that
 * did not wait, fewer when they move much data (each 4 KiB moved counts as
 * one more call, so 256 KiB spends it all); the next such call first
 * yields, as asyncio_sleep(0) does, and may return what that returns
 * (-ECANCELED, -ETIMEDOUT) before doing anything.
 *
 * \par File descriptors
 * The fds must be non-blocking (asyncio_socket() makes them so); close them
 * with asyncio_close(), which wakes any task still waiting on them.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_NET_H
#define ASYNCIO_NET_H

#include <asyncio/common.h>
#include <asyncio/loop.h>

#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sockets ------------------------------------------------------------ */

/**
 * Make a socket (socket(2)), non-blocking and close-on-exec.
 *
 * \param domain    as socket(2): AF_INET, AF_INET6, AF_UNIX, ...
 * \param type      as socket(2): SOCK_STREAM, SOCK_DGRAM, ...
 * \param protocol  as socket(2); usually 0
 * \return the fd; or a negative errno from socket(2) (-EAFNOSUPPORT,
 *         -EMFILE, ...).
 * \suspends No.
 * \context Any thread; needs no loop.
 */
ASYNCIO_API int asyncio_socket(int domain, int type, int protocol);

/**
 * Close fd after waking every task of this loop waiting on it with -EBADF.
 *
 * The loop forgets fd first, as asyncio_forget_fd() does; then close(2).
 *
 * \param fd  the fd to close
 * \return 0; -EBADF (a negative fd), or a negative errno from close(2)
 *         (an EINTR counts as closed: 0).
 * \suspends No.
 * \context Any thread: it wakes the waiters of the calling thread's loop;
 *          in a thread without a loop it only closes.
 */
ASYNCIO_API int asyncio_close(int fd);

/**
 * Accept a connection on the listening socket fd (loop.sock_accept()).
 *
 * A connection that was aborted while it waited in the backlog is skipped,
 * as asyncio does: the call waits for the next.
 *
 * \param fd       a listening, non-blocking socket
 * \param addr     receives the peer's address; NULL if not wanted
 * \param addrlen  in: the size of *addr; out: the address's length, as
 *                 accept(2); may be NULL when addr is NULL
 * \return the new connection's fd (non-blocking, close-on-exec); errors as
 *         accept(2) (-EMFILE, -ENFILE, -EINVAL, ...), -EBADF, -EPERM (not
 *         in a task), -ECANCELED, -ETIMEDOUT.
 * \suspends Yes: until a connection comes. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_sock_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);

/**
 * Connect fd to addr (loop.sock_connect()).
 *
 * A Unix-domain listener whose backlog is full makes connect(2) fail with
 * EAGAIN: this call then waits for room, as a blocking connect does,
 * trying again after pauses of 1 ms doubling up to 50 ms (there is no
 * event to wait on), until cancelled or timed out.
 *
 * A cancelled or timed-out connect leaves the socket in an unspecified
 * state: close it.
 *
 * \param fd       a non-blocking socket
 * \param addr     the address to connect to
 * \param addrlen  its length
 * \return 0 once connected; or the connection's error (-ECONNREFUSED,
 *         -ENETUNREACH, ...), taken from SO_ERROR after an EINPROGRESS;
 *         connect(2)'s own errors, -EPERM (not in a task), -ECANCELED,
 *         -ETIMEDOUT.
 * \suspends Yes: until the connection is made or fails. Cancellation and
 *           timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_sock_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/**
 * Receive up to len bytes into buf (loop.sock_recv(), sock_recv_into()).
 *
 * \param fd   a connected, non-blocking socket
 * \param buf  where the bytes go; may be NULL only if len is 0
 * \param len  the most bytes to receive
 * \return how many bytes came (0 at end of stream, or for len 0);
 *         -ECONNRESET, -EBADF, -EINVAL (buf NULL with len > 0), -EPERM (not
 *         in a task), -ECANCELED, -ETIMEDOUT, and the other errors of
 *         recv(2).
 * \suspends Yes: until some bytes arrive. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_sock_recv(int fd, void *buf, size_t len);

/**
 * Receive up to len bytes into buf (loop.sock_recv_into()): the same as
 * asyncio_sock_recv().
 *
 * asyncio's name for receiving into a buffer the caller owns.
 *
 * \param fd   a connected, non-blocking socket
 * \param buf  where the bytes go; may be NULL only if len is 0
 * \param len  the most bytes to receive
 * \return as asyncio_sock_recv(): the bytes received (0 at end of stream);
 *         -ECONNRESET, -EBADF, -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT, ...
 * \suspends Yes: until some bytes arrive. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_sock_recv_into(int fd, void *buf, size_t len);

/**
 * Send all len bytes of buf (loop.sock_sendall()), waiting whenever the
 * socket is full.
 *
 * If it fails, is cancelled or times out part-way, some bytes may have
 * been sent: the stream is then no longer usable.
 *
 * \param fd   a connected, non-blocking socket
 * \param buf  the bytes; may be NULL only if len is 0
 * \param len  how many
 * \return len once everything was handed to the kernel; or the error:
 *         -EPIPE, -ECONNRESET, ..., -EINVAL (buf NULL with len > 0), -EPERM
 *         (not in a task), -ECANCELED, -ETIMEDOUT.
 * \suspends Yes: while the socket is full. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_sock_sendall(int fd, const void *buf, size_t len);

/**
 * Send count bytes of an open file on the connected socket fd
 * (loop.sock_sendfile()), waiting whenever the socket is full.
 *
 * With the system's sendfile (Linux) the kernel moves the file's pages to
 * the socket without a copy through this process; where it cannot (another
 * system, a file the kernel cannot send so), the file is read and sent
 * instead, unless flags has #ASYNCIO_SENDFILE_NO_FALLBACK (-ENOTSUP then).
 *
 * The file is read at an offset: a regular file, or, with a count, anything
 * pread() reads so (a block device); its own offset is not moved (unlike
 * asyncio's), so tasks may send one fd at once. With a count the file is
 * checked by its first read, without an fstat() per call. The file is read
 * in the loop's thread, as asyncio does: from the page cache at once, but a
 * file on a slow disk that is not cached holds the loop for the read.
 *
 * \param fd      a connected, non-blocking socket
 * \param file    the open file to send from
 * \param offset  where in the file to start, >= 0
 * \param count   how many bytes; 0: to the end of the file as it is now
 * \param flags   0 or #ASYNCIO_SENDFILE_NO_FALLBACK
 * \return the bytes sent: count, or less if the file ends first; or the
 *         error: -EPIPE, -ECONNRESET, ... (some bytes may have been sent:
 *         the connection is no longer usable), -EBADF, -ESPIPE (a pipe or
 *         socket as the file), -EISDIR, -EINVAL (offset < 0, unknown flags;
 *         count 0 on a block device), -ENOTSUP, -ENOMEM, -EPERM (outside a
 *         task), -ECANCELED, -ETIMEDOUT.
 * \suspends Yes: while the socket is full, and to let other tasks run after
 *           a long run without a wait (see Fairness above). Cancellation and
 *           timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_sock_sendfile(int fd, int file, off_t offset, size_t count, int flags);

/**
 * Receive one datagram of up to len bytes (loop.sock_recvfrom()).
 *
 * \param fd       a non-blocking socket
 * \param buf      where the datagram goes; may be NULL only if len is 0
 * \param len      the most bytes to take (a longer datagram is truncated,
 *                 as recvfrom(2) does)
 * \param addr     receives the datagram's source; NULL if not wanted
 * \param addrlen  in: the size of *addr; out: the address's length, as
 *                 recvfrom(2); must not be NULL when addr is not
 * \return the datagram's size; -EINVAL (buf NULL with len > 0, addr
 *         without addrlen), -EBADF, -EPERM (not in a task), -ECANCELED,
 *         -ETIMEDOUT, and the other errors of recvfrom(2).
 * \suspends Yes: until a datagram arrives. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_sock_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr,
                                          socklen_t *addrlen);

/**
 * Send one datagram to addr (loop.sock_sendto()), waiting while the socket
 * buffer is full.
 *
 * \param fd       a non-blocking socket
 * \param buf      the datagram; may be NULL only if len is 0
 * \param len      its size
 * \param addr     where to send it; NULL on a connected socket
 * \param addrlen  the length of *addr
 * \return len; errors as sendto(2) (-EMSGSIZE, -ECONNREFUSED, ...),
 *         -EINVAL (buf NULL with len > 0), -EPERM (not in a task),
 *         -ECANCELED, -ETIMEDOUT.
 * \suspends Yes: while the socket buffer is full. Cancellation and timeout
 *           scopes end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_sock_sendto(int fd, const void *buf, size_t len,
                                        const struct sockaddr *addr, socklen_t addrlen);

/* ---- name resolution ---------------------------------------------------- */

struct addrinfo;
/**
 * Resolve host and service as getaddrinfo(3) does, without blocking the
 * loop (loop.getaddrinfo()).
 *
 * A numeric host is resolved at once, a name in a thread of the loop's
 * default executor (asyncio_to_thread()). A cancelled lookup finishes in
 * its thread and is freed there.
 *
 * \param host     a host name or numeric address; NULL for the local host
 *                 (or, with AI_PASSIVE, every address), as getaddrinfo(3)
 * \param service  a service name or port number; NULL for none
 *                 (host and service may not both be NULL)
 * \param hints    as getaddrinfo(3); NULL for none
 * \param res      receives the list: free it with freeaddrinfo()
 * \return 0 and the list in *res; or a negative errno: -ENOENT (no such
 *         host or service: EAI_NONAME, EAI_NODATA, EAI_SERVICE), -EAGAIN
 *         (EAI_AGAIN, or no thread could be started), -ENOMEM, -EINVAL (res
 *         NULL, host and service both NULL; bad hints: EAI_FAMILY,
 *         EAI_SOCKTYPE, EAI_BADFLAGS), -EIO (EAI_FAIL and the rest), the
 *         errno of EAI_SYSTEM, -EPERM (not in a task, even for a numeric
 *         host), -ECANCELED, -ETIMEDOUT.
 * \suspends Yes: while a name is looked up (a numeric host: no).
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_getaddrinfo(const char *host, const char *service,
                                    const struct addrinfo *hints, struct addrinfo **res);

/* ---- datagrams ---------------------------------------------------------- */

/**
 * Make a UDP socket, non-blocking, bound and/or connected
 * (loop.create_datagram_endpoint()).
 *
 * Names are resolved as by asyncio_getaddrinfo(). Use asyncio_sock_sendto(),
 * asyncio_sock_recvfrom() (or asyncio_sock_sendall() and asyncio_sock_recv()
 * when connected) and asyncio_close() on it.
 *
 * \param local_host   the address to bind to (NULL or "": every local
 *                     address); the socket is bound if local_host or
 *                     local_port is given
 * \param local_port   the port to bind to, 0 to 65535 (0: any)
 * \param remote_host  the peer to connect to; NULL: not connected
 * \param remote_port  the peer's port, 0 to 65535
 * \param family       AF_INET, AF_INET6 or 0 (the first address found)
 * \return the fd; or a negative errno: -EINVAL (a port out of range, or
 *         neither a local nor a remote side), the errors of
 *         asyncio_getaddrinfo() (-EPERM not in a task, -ECANCELED,
 *         -ETIMEDOUT, ...), of socket(2), bind(2) and connect(2).
 * \suspends Yes: to resolve names. Cancellation and timeout scopes end the
 *           wait.
 * \context A task (also for numeric addresses).
 */
ASYNCIO_API int asyncio_create_datagram_endpoint(const char *local_host, int local_port,
                                                 const char *remote_host, int remote_port,
                                                 int family);

#ifdef __cplusplus
}
#endif

#endif
