/*
 * <asyncio/stream.h>: buffered streams over connected sockets, servers that
 * run a task per connection, and clients that open a stream to a server
 * (asyncio's streams API: StreamReader and StreamWriter, open_connection,
 * start_server and Server). Include <asyncio.h> rather than this file.
 *
 * One asyncio_stream_t is both of asyncio's StreamReader and StreamWriter
 * for one connection. At most one task reads it at a time and at most one
 * drains it at a time (a second gets -EBUSY); any task may write.
 *
 * Reading: asyncio_stream_read(), _readexactly(), _readline(), _readuntil()
 * copy into the caller's buffer; asyncio_stream_peek(), _fill() and
 * _consume() let a parser work on the stream's own buffer without a copy.
 * The buffer holds at most the stream's limit (64 KiB unless set), is
 * allocated when data arrives and given back when the stream is drained and
 * waits, so an idle connection costs no buffer.
 *
 * Writing: asyncio_stream_write() never suspends. It queues the bytes; the
 * loop sends what was queued before it next polls, or at once when the
 * writing task next waits to read this stream, so a run of small writes
 * costs one system call. A write of 4 KiB or more to an empty queue goes
 * to the socket at once (copying it would cost more than the system call
 * it might save), and only what the socket does not take is queued. What
 * the socket cannot take yet is sent in the background as it drains;
 * asyncio_stream_drain() is the backpressure: it waits while more than the
 * high water mark (64 KiB) is queued, until no more than the low water mark
 * (16 KiB) is.
 *
 * Every call that may suspend takes part in cancellation and timeout scopes
 * (-ECANCELED, -ETIMEDOUT), and a cancelled read loses no data: what had
 * arrived stays in the stream for the next read. Errors of the connection
 * are negative errnos: -ECONNRESET, -EPIPE (never SIGPIPE), ...; a stream
 * closed while a task waits on it wakes that task with -EBADF. A send the
 * socket refuses ends the connection, as in asyncio: what was queued is
 * dropped, drain() and later writes return the error, and so do reads,
 * once they have returned what was already buffered (a task waiting to
 * read wakes with it).
 */
#ifndef ASYNCIO_STREAM_H
#define ASYNCIO_STREAM_H

#include <asyncio/common.h>
#include <asyncio/loop.h>

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asyncio_stream asyncio_stream_t;
typedef struct asyncio_server asyncio_server_t;

/* The default limit of a stream's read buffer (asyncio's 2**16). */
#define ASYNCIO_STREAM_LIMIT 65536
/* The default write buffer water marks (asyncio's transports). */
#define ASYNCIO_STREAM_HIGH_WATER 65536
#define ASYNCIO_STREAM_LOW_WATER 16384

/* ---- streams ------------------------------------------------------------ */

/*
 * Make a stream of the connected socket, pipe, or regular file fd (a file
 * never waits: reads and writes go straight to it), which it owns from
 * then on: fd is made non-blocking, and closed when the stream is. The
 * O_NONBLOCK flag is the open file description's, which other processes
 * may share (a terminal, a pipe inherited as stdin or stdout): they see it
 * too, and it stays after the stream is closed; restore it (fcntl) if that
 * matters, or open a stream on a pipe of your own. limit is
 * the read buffer's limit (0: ASYNCIO_STREAM_LIMIT). Returns 0 and the
 * stream in *out, or -EPERM (no loop in this thread), -EBADF, -EINVAL (out NULL),
 * -ENOMEM; on failure fd is left open. Does not suspend.
 */
ASYNCIO_API int asyncio_stream_open(asyncio_stream_t **out, int fd, size_t limit);

/* The stream's fd (to set socket options, or for getpeername), or -EBADF
 * once it is closed. Do not read, write or close it behind the stream. */
ASYNCIO_API int asyncio_stream_fd(const asyncio_stream_t *s);

/*
 * Read up to n bytes (StreamReader.read(n)): returns how many, 0 at end of
 * stream (or for n 0), waiting until some are there. May suspend. Errors:
 * -ECONNRESET and the like, -EBADF (closed), -EBUSY (another task is
 * reading), -EINVAL (buf NULL with n > 0), -EPERM (not in a task),
 * -ECANCELED, -ETIMEDOUT.
 */
ASYNCIO_API ssize_t asyncio_stream_read(asyncio_stream_t *s, void *buf, size_t n);

/*
 * Read exactly n bytes (StreamReader.readexactly): returns n, or, when the
 * stream ends first, the fewer bytes that came (asyncio's
 * IncompleteReadError.partial), all in buf. May suspend. Cancelled or timed
 * out part-way, it puts back what it had read: the next read gets it. Errors
 * as asyncio_stream_read(), and -ENOMEM.
 */
ASYNCIO_API ssize_t asyncio_stream_readexactly(asyncio_stream_t *s, void *buf, size_t n);

/*
 * Read up to and including the separator sep of seplen bytes
 * (StreamReader.readuntil) into buf, which holds cap bytes: returns the
 * length, separator included. If the stream ends first, returns what was
 * left (without a separator; 0 at end of stream). May suspend.
 * Errors, each leaving the data in the stream for another try:
 *   -ENOBUFS   the separator is not within the stream's limit (asyncio's
 *              LimitOverrunError);
 *   -EMSGSIZE  the data up to the separator is more than cap;
 * and those of asyncio_stream_read(); -EINVAL for an empty separator.
 */
ASYNCIO_API ssize_t asyncio_stream_readuntil(asyncio_stream_t *s, const void *sep, size_t seplen,
                                             void *buf, size_t cap);

/* asyncio_stream_readuntil(s, "\n", 1, buf, cap): StreamReader.readline,
 * except that a line past the limit is left in the stream (-ENOBUFS). */
ASYNCIO_API ssize_t asyncio_stream_readline(asyncio_stream_t *s, void *buf, size_t cap);

/* True (1) if the stream has ended and everything in it was read
 * (StreamReader.at_eof), else 0. Does not suspend. */
ASYNCIO_API int asyncio_stream_at_eof(const asyncio_stream_t *s);

/*
 * The bytes the stream holds, not yet read: their count, and where they
 * are in *data (valid until the next call on s). Does not suspend or read.
 */
ASYNCIO_API size_t asyncio_stream_peek(const asyncio_stream_t *s, const void **data);

/*
 * Wait for more bytes and add them to the stream's buffer: returns how many
 * came, 0 at end of stream. May suspend. -ENOBUFS if the buffer already
 * holds the stream's limit; other errors as asyncio_stream_read().
 */
ASYNCIO_API ssize_t asyncio_stream_fill(asyncio_stream_t *s);

/* Drop n bytes from the front of the buffer (after asyncio_stream_peek()).
 * Returns 0, or -EINVAL if fewer than n are there. Does not suspend. */
ASYNCIO_API int asyncio_stream_consume(asyncio_stream_t *s, size_t n);

/* Set the read buffer's limit (0: ASYNCIO_STREAM_LIMIT). Returns 0, or
 * -EINVAL if the buffer already holds more. Does not suspend. */
ASYNCIO_API int asyncio_stream_set_limit(asyncio_stream_t *s, size_t limit);

/*
 * Queue n bytes of buf for sending (StreamWriter.write). The bytes are
 * copied or sent before it returns, so buf is the caller's again at once.
 * With nothing queued, a write of 4 KiB or more, or one to a stream with
 * no input left to answer (nothing buffered, the last read came back
 * short), is tried on the socket right away and only what it does not take
 * is queued; otherwise the queue goes out in one system call before the
 * loop next polls or the stream's reader waits, so small writes in answer
 * to pipelined input leave together. Returns 0, or the connection's error
 * (-EPIPE, -ECONNRESET, ..., also one met by this write), -EPIPE after
 * asyncio_stream_write_eof(), -ENOMEM, -EINVAL (buf NULL with n > 0).
 * Never suspends; pair it with asyncio_stream_drain() to bound the queue.
 */
ASYNCIO_API int asyncio_stream_write(asyncio_stream_t *s, const void *buf, size_t n);

/* Queue the iovcnt buffers of iov (StreamWriter.writelines). As
 * asyncio_stream_write(). */
ASYNCIO_API int asyncio_stream_writev(asyncio_stream_t *s, const struct iovec *iov, int iovcnt);

/*
 * Wait until the write queue is under control (StreamWriter.drain): at once
 * if no more than the high water mark is queued, else until no more than
 * the low water mark is. Returns 0, or the connection's error (-EPIPE,
 * -ECONNRESET, ...), -EBADF, -EBUSY (another task drains), -EPERM,
 * -ECANCELED, -ETIMEDOUT (the bytes stay queued). May suspend.
 */
ASYNCIO_API int asyncio_stream_drain(asyncio_stream_t *s);

/*
 * Set the water marks (WriteTransport.set_write_buffer_limits): high 0 and
 * low 0 restore 64 KiB and 16 KiB; low 0 alone is high / 4. Returns 0 or
 * -EINVAL (low > high). Does not suspend.
 */
ASYNCIO_API int asyncio_stream_set_write_buffer_limits(asyncio_stream_t *s, size_t high, size_t low);

/* Bytes queued and not yet sent (WriteTransport.get_write_buffer_size). */
ASYNCIO_API size_t asyncio_stream_write_buffer_size(const asyncio_stream_t *s);

/*
 * Half-close (StreamWriter.write_eof): once what is queued is sent, shut
 * the sending side (shutdown SHUT_WR); reading goes on. Returns 0 or a
 * negative errno; -ENOTSOCK for a stream that is not a socket (a pipe has
 * no half-close: asyncio_stream_close() sends its end of file, after what
 * is queued). Does not suspend.
 */
ASYNCIO_API int asyncio_stream_write_eof(asyncio_stream_t *s);

/*
 * Close the stream (StreamWriter.close): tasks waiting on it wake with
 * -EBADF, what is queued is still sent in the background, then the fd is
 * closed and the stream freed. s must not be used after this (except that
 * a server's handler may return after closing its stream). Returns 0, or
 * -EINVAL for NULL. Does not suspend.
 */
ASYNCIO_API int asyncio_stream_close(asyncio_stream_t *s);

/*
 * Close the stream at once (WriteTransport.abort()): what is queued is
 * dropped, a TCP connection is reset (SO_LINGER 0), tasks waiting on it
 * wake with -EBADF. As after asyncio_stream_close(), s must not be used
 * after this. Returns 0, or -EINVAL for NULL. Does not suspend.
 */
ASYNCIO_API int asyncio_stream_abort(asyncio_stream_t *s);

/*
 * Close the stream and wait until it is closed (StreamWriter.close() then
 * await wait_closed()): what is queued is sent first. The stream is freed
 * in every case, s must not be used after. Returns 0, or the error sending
 * what was queued met (-EPIPE, ...); cancelled or timed out, it closes at
 * once, dropping what was left, and returns -ECANCELED or -ETIMEDOUT.
 * -EPERM outside a task (the stream is then closed as asyncio_stream_close()
 * does). May suspend.
 */
ASYNCIO_API int asyncio_stream_wait_closed(asyncio_stream_t *s);

/* ---- clients ------------------------------------------------------------ */

typedef struct asyncio_connection_options {
    int family;             /* AF_INET, AF_INET6 or 0 for either */
    double connect_timeout; /* seconds for each address; 0: no limit */
    size_t limit;           /* the stream's read limit; 0: 64 KiB */
} asyncio_connection_options_t;

/*
 * Open a TCP connection to host:port (asyncio.open_connection): resolves
 * host (asyncio_getaddrinfo()), then tries each address in turn until one
 * connects; the stream has TCP_NODELAY set. Returns 0 and the stream in
 * *out, or the last address's error (-ECONNREFUSED, -ETIMEDOUT, ...),
 * a resolution error, -EINVAL (bad port or out NULL), -EPERM, -ECANCELED,
 * -ETIMEDOUT. May suspend. opts may be NULL.
 */
ASYNCIO_API int asyncio_open_connection(asyncio_stream_t **out, const char *host, int port,
                                        const asyncio_connection_options_t *opts);

/* The same to a Unix-domain stream socket at path
 * (asyncio.open_unix_connection). -ENAMETOOLONG for a path too long. */
ASYNCIO_API int asyncio_open_unix_connection(asyncio_stream_t **out, const char *path,
                                             const asyncio_connection_options_t *opts);

/* ---- servers ------------------------------------------------------------ */

/*
 * A connection handler (asyncio's client_connected_cb): runs in a task of
 * its own, named "conn-<fd>", for each accepted connection, with the
 * connection's stream. The server closes the stream (as
 * asyncio_stream_close() does) when the handler returns, unless the handler
 * closed it itself. The return value is the task's status; a negative one
 * other than -ECANCELED is reported on stderr, as asyncio logs the
 * exceptions of its handlers.
 */
typedef int (*asyncio_stream_handler)(asyncio_stream_t *s, void *arg);

typedef struct asyncio_server_options {
    int family;         /* AF_INET, AF_INET6 or 0 for every one host has */
    int backlog;        /* listen(2) backlog; 0: 511 */
    int reuse_port;     /* set SO_REUSEPORT (SO_REUSEADDR is always set):
                           several sockets, of this program or another,
                           listen on one port and the kernel spreads the
                           connections over them (a loop per core); where
                           the system has no SO_REUSEPORT, the start fails
                           with -EOPNOTSUPP */
    size_t limit;       /* read limit of the connections' streams; 0: 64 KiB */
    size_t stack_size;  /* handler tasks' stacks; 0: the loop's default */
} asyncio_server_options_t;

/*
 * Listen on host:port and run handler(stream, arg) in a new task for every
 * connection (asyncio.start_server). host NULL or "" listens on every
 * interface (IPv4 and IPv6), a name on each of its addresses; port 0 takes
 * a free port (see asyncio_server_port()). Accepting starts at once.
 * Accepting that fails with EMFILE or ENFILE pauses for 100 ms and goes on,
 * so a server out of fds neither dies nor spins; a connection it has no
 * memory to serve (its stream or task) is closed at once, and the server
 * goes on. Returns 0 and the server
 * in *out, or a negative errno (-EADDRINUSE, resolution errors, -EINVAL,
 * -EPERM, ...). May suspend (to resolve host). opts may be NULL.
 */
ASYNCIO_API int asyncio_start_server(asyncio_server_t **out, asyncio_stream_handler handler,
                                     void *arg, const char *host, int port,
                                     const asyncio_server_options_t *opts);

/* The same on a Unix-domain socket at path (asyncio.start_unix_server); a
 * stale socket file there is replaced. */
ASYNCIO_API int asyncio_start_unix_server(asyncio_server_t **out, asyncio_stream_handler handler,
                                          void *arg, const char *path,
                                          const asyncio_server_options_t *opts);

/* The port the server's first socket listens on (for port 0), or -EINVAL. */
ASYNCIO_API int asyncio_server_port(const asyncio_server_t *srv);

/* Number of connections whose handlers are running now. */
ASYNCIO_API size_t asyncio_server_connections(const asyncio_server_t *srv);

/*
 * Stop listening (Server.close): the listening sockets are closed, the
 * handlers that run go on. Returns 0 (also when already closed), -EINVAL.
 * Does not suspend; safe from a callback, e.g. a signal handler's.
 */
ASYNCIO_API int asyncio_server_close(asyncio_server_t *srv);

/* Cancel every running handler (Server.close_clients / abort_clients):
 * their streams are closed as they return. Returns how many were
 * cancelled, or -EINVAL. Does not suspend. */
ASYNCIO_API int asyncio_server_close_clients(asyncio_server_t *srv);

/*
 * Wait until the server is closed and every handler has returned
 * (Server.wait_closed), then free the server: srv must not be used after
 * this returns 0. Returns 0, or -ECANCELED / -ETIMEDOUT (the server is then
 * left as it was, still to be waited for), -EPERM, -EBUSY (another task
 * waits for it). May suspend. A server nobody waited for is freed when the
 * loop closes.
 */
ASYNCIO_API int asyncio_server_wait_closed(asyncio_server_t *srv);

/*
 * Wait until the server is closed (Server.serve_forever): returns 0 once
 * asyncio_server_close() was called (by a signal handler, another task...).
 * If the waiting task is cancelled or times out, closes the server and
 * returns -ECANCELED or -ETIMEDOUT. -EPERM outside a task. May suspend.
 */
ASYNCIO_API int asyncio_server_serve_forever(asyncio_server_t *srv);

#ifdef __cplusplus
}
#endif

#endif
