/*
 * <asyncio/net.h>: non-blocking socket calls for tasks (asyncio's
 * loop.sock_* family), name resolution (loop.getaddrinfo) and datagram
 * endpoints (loop.create_datagram_endpoint). Include <asyncio.h> rather
 * than this file.
 *
 * Each socket call tries the system call first and waits for the socket
 * only when it would block (EAGAIN), so a socket with data ready costs no
 * poller call. They take part in cancellation and timeout scopes like
 * every waiting call: -ECANCELED, -ETIMEDOUT. Byte counts are ssize_t: 0
 * or more on success, a negative errno on failure. Writes never raise
 * SIGPIPE: a peer that has gone gives -EPIPE (or -ECONNRESET).
 *
 * Fairness: a task whose socket always has data would never wait, and so
 * never let other tasks run. A task may make 64 socket or stream calls in
 * a row that did not wait, fewer when they move much data (each 4 KiB
 * moved counts as one more call, so 256 KiB spends it all); the next such
 * call first yields, as asyncio_sleep(0) does, and may return what that
 * returns (-ECANCELED, -ETIMEDOUT) before doing anything.
 *
 * The fds must be non-blocking (asyncio_socket() makes them so); close them
 * with asyncio_close(), which wakes any task still waiting on them.
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

/* socket(2), non-blocking and close-on-exec. Returns the fd or a negative
 * errno. Does not suspend; needs no loop. */
ASYNCIO_API int asyncio_socket(int domain, int type, int protocol);

/*
 * Close fd after waking every task of this loop waiting on it with -EBADF
 * (see asyncio_forget_fd()). Returns 0 or a negative errno from close(2)
 * (-EBADF for a negative fd). Does not suspend; without a loop it only
 * closes.
 */
ASYNCIO_API int asyncio_close(int fd);

/*
 * Accept a connection on the listening socket fd (loop.sock_accept).
 * Returns the new connection's fd (non-blocking, close-on-exec), its peer
 * address in addr/addrlen if addr is not NULL (addrlen in/out, as
 * accept(2)). May suspend. Errors: as accept(2) (-EMFILE, -ENFILE, ...),
 * -EPERM (not in a task), -ECANCELED, -ETIMEDOUT, -EBADF.
 */
ASYNCIO_API int asyncio_sock_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);

/*
 * Connect fd to addr (loop.sock_connect): returns 0 once connected, or the
 * connection's error (-ECONNREFUSED, -ENETUNREACH, ...), taken from
 * SO_ERROR after an EINPROGRESS. May suspend. A cancelled or timed-out
 * connect leaves the socket in an unspecified state: close it.
 */
ASYNCIO_API int asyncio_sock_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/*
 * Receive up to len bytes into buf (loop.sock_recv / sock_recv_into):
 * returns how many (0 at end of stream, or for len 0), waiting until some
 * arrive. May suspend. Errors: -ECONNRESET, -EBADF, -EINVAL (buf NULL with
 * len > 0), -EPERM, -ECANCELED, -ETIMEDOUT, ...
 */
ASYNCIO_API ssize_t asyncio_sock_recv(int fd, void *buf, size_t len);

/* The same as asyncio_sock_recv(): asyncio's name for receiving into a
 * buffer the caller owns. */
ASYNCIO_API ssize_t asyncio_sock_recv_into(int fd, void *buf, size_t len);

/*
 * Send all len bytes of buf (loop.sock_sendall), waiting whenever the
 * socket is full. Returns len once everything was handed to the kernel, or
 * the error (-EPIPE, -ECONNRESET, ...). If it fails, is cancelled or times
 * out part-way, some bytes may have been sent: the stream is then no longer
 * usable. May suspend.
 */
ASYNCIO_API ssize_t asyncio_sock_sendall(int fd, const void *buf, size_t len);

/*
 * Send count bytes of the open file `file`, from offset (count 0: to the
 * end of the file as it is now), on the connected socket fd
 * (loop.sock_sendfile), waiting whenever the socket is full. With the
 * system's sendfile (Linux) the kernel moves the file's pages to the socket
 * without a copy through this process; where it cannot (another system, a
 * file the kernel cannot send so), the file is read and sent instead,
 * unless flags has ASYNCIO_SENDFILE_NO_FALLBACK (-ENOTSUP then). The file
 * is read at an offset: a regular file, or, with a count, anything pread()
 * reads so (a block device); its own offset is not moved (unlike
 * asyncio's), so tasks may send one fd at once. With a count the file is
 * checked by its first read, without an fstat() per call. The file is
 * read in the loop's thread, as asyncio does: from the page cache at once,
 * but a file on a slow disk that is not cached holds the loop for the
 * read. Returns the bytes sent: count, or less if the file ends first; or
 * the error: -EPIPE, -ECONNRESET, ... (some bytes may have been sent: the
 * connection is no longer usable), -EBADF, -ESPIPE (a pipe or socket as
 * the file), -EISDIR, -EINVAL (offset < 0, unknown flags; count 0 on a
 * block device), -ENOTSUP, -EPERM (outside a task), -ECANCELED,
 * -ETIMEDOUT. May suspend; from a task.
 */
ASYNCIO_API ssize_t asyncio_sock_sendfile(int fd, int file, off_t offset, size_t count, int flags);

/*
 * Receive one datagram of up to len bytes (loop.sock_recvfrom): returns its
 * size (a longer one is truncated, as recvfrom(2) does) and its source in
 * addr/addrlen if addr is not NULL. May suspend.
 */
ASYNCIO_API ssize_t asyncio_sock_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr,
                                          socklen_t *addrlen);

/*
 * Send one datagram to addr (loop.sock_sendto; addr NULL on a connected
 * socket): returns len, waiting while the socket buffer is full. May
 * suspend. Errors as sendto(2), and those of every waiting call.
 */
ASYNCIO_API ssize_t asyncio_sock_sendto(int fd, const void *buf, size_t len,
                                        const struct sockaddr *addr, socklen_t addrlen);

/* ---- name resolution ---------------------------------------------------- */

/*
 * getaddrinfo(3) without blocking the loop (loop.getaddrinfo): a numeric
 * host is resolved at once, a name in a thread of the loop's small pool.
 * Returns 0 and the list in *res (free it with freeaddrinfo()), or a
 * negative errno: -ENOENT (no such host or service: EAI_NONAME,
 * EAI_NODATA, EAI_SERVICE), -EAGAIN (EAI_AGAIN), -ENOMEM, -EINVAL (bad
 * hints: EAI_FAMILY, EAI_SOCKTYPE, EAI_BADFLAGS), -EIO (EAI_FAIL and the
 * rest), the errno of EAI_SYSTEM, -EPERM (not in a task), -ECANCELED,
 * -ETIMEDOUT. May suspend; a cancelled lookup finishes in its thread and is
 * freed there.
 */
struct addrinfo;
ASYNCIO_API int asyncio_getaddrinfo(const char *host, const char *service,
                                    const struct addrinfo *hints, struct addrinfo **res);

/* ---- datagrams ---------------------------------------------------------- */

/*
 * A UDP socket (loop.create_datagram_endpoint), non-blocking: bound to
 * local_host:local_port if local_host or local_port is given, connected to
 * remote_host:remote_port if remote_host is not NULL; family AF_INET,
 * AF_INET6 or 0 (the first address found). Names are resolved as by
 * asyncio_getaddrinfo(). Use asyncio_sock_sendto(), asyncio_sock_recvfrom()
 * (or asyncio_sock_sendall() and asyncio_sock_recv() when connected) and
 * asyncio_close() on it. Returns the fd or a negative errno. May suspend
 * (to resolve names).
 */
ASYNCIO_API int asyncio_create_datagram_endpoint(const char *local_host, int local_port,
                                                 const char *remote_host, int remote_port,
                                                 int family);

#ifdef __cplusplus
}
#endif

#endif
