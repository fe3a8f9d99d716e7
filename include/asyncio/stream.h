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
/* A TLS context (asyncio's ssl.SSLContext): made and configured with
 * <asyncio/tls.h>, in the optional library libasyncio-tls. */
typedef struct asyncio_tls_context asyncio_tls_context_t;

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
 * Send count bytes of the open file `file`, from offset (count 0: to the
 * end of the file as it is now), after what is queued on the stream
 * (loop.sendfile(transport, file, offset, count)), and wait until the last
 * of them was handed to the kernel. On a plain socket, the queue goes
 * first, then the system's sendfile moves the file's pages without a copy
 * through this process; a small count (under 16 KiB) is read into the
 * queue instead, which costs less and leaves with what was queued before.
 * (A pipe takes the file's pages the same way.) Through a layer (TLS), on
 * a stream over a regular file, or without a sendfile in the system, the
 * file is read into the queue and sent as writes are, unless flags has
 * ASYNCIO_SENDFILE_NO_FALLBACK (-ENOTSUP then). Meanwhile other writes to
 * the stream, drains and asyncio_stream_set_layer() fail with -EBUSY; a
 * close by another task ends the call with -EBADF. The file is read at an
 * offset, as asyncio_sock_sendfile() says (a regular file; with a count,
 * also a block device); its offset is not moved, so tasks may send one fd
 * at once. The file is read in the loop's thread (see
 * asyncio_sock_sendfile()). Returns the bytes sent: count, or less if the
 * file ends first; or the error: the connection's (-EPIPE, -ECONNRESET,
 * ...; after a failure, cancellation or timeout part of the file may have
 * been sent: close the stream), -EBUSY (another sendfile or drain is in
 * progress), -EBADF, -ESPIPE (a pipe or socket as the file), -EISDIR,
 * -EINVAL, -ENOTSUP, -ENOMEM, -EPERM, -ECANCELED, -ETIMEDOUT; a bad file
 * sends none of its bytes (with a count, what was queued before is sent
 * first). May suspend; from a task.
 */
ASYNCIO_API ssize_t asyncio_stream_sendfile(asyncio_stream_t *s, int file, off_t offset,
                                            size_t count, int flags);

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

/* ---- layers -------------------------------------------------------------- */

/*
 * A layer transforms what a stream reads and writes on its fd: TLS (in
 * libasyncio-tls, <asyncio/tls.h>) is one. Most programs never use this
 * directly. With a layer, the stream's calls keep their meaning and their
 * buffering, but instead of recv(2) and send(2) the stream calls:
 *
 *   recv(layer, buf, n, &want)     bytes read (> 0), 0 at the end of the
 *                                  stream, or a negative errno;
 *   send(layer, iov, iovcnt, &want) bytes taken (> 0), or a negative errno;
 *                                  a call that took part of the bytes is
 *                                  called again with the rest, the same
 *                                  bytes (perhaps at another address);
 *   shutdown(layer, &want)         end the sending side (TLS: close_notify;
 *                                  the stream then shuts the socket's
 *                                  sending side too): 0 when it sent its end,
 *                                  1 when it had nothing to send (a TLS
 *                                  handshake that failed), or a negative
 *                                  errno. After a 0, closing the stream
 *                                  lingers: it reads and drops the peer's
 *                                  input until the peer's end, 5 s at most,
 *                                  before it closes the fd (closing with
 *                                  unread input, TLS 1.3's session tickets,
 *                                  would reset the connection and lose what
 *                                  the peer had not read yet);
 *   pending(layer)                 true if recv() can return bytes without
 *                                  reading the fd (what the layer holds);
 *   free(layer)                    the stream is closed: free the layer
 *                                  (no more calls, the fd is still open).
 *
 * -EAGAIN from recv, send or shutdown means "call again once the fd is
 * ready": *want says for what, ASYNCIO_LAYER_WANT_READ or _WANT_WRITE
 * (either may come from any of the three: TLS writes while it reads).
 * The stream never calls a layer from two tasks at once.
 */
#define ASYNCIO_LAYER_WANT_READ 1
#define ASYNCIO_LAYER_WANT_WRITE 2

typedef struct asyncio_stream_layer_ops {
    ssize_t (*recv)(void *layer, void *buf, size_t n, int *want);
    ssize_t (*send)(void *layer, const struct iovec *iov, int iovcnt, int *want);
    int (*shutdown)(void *layer, int *want);
    int (*pending)(void *layer);
    void (*free)(void *layer);
} asyncio_stream_layer_ops_t;

/*
 * Put a layer between the stream and its fd (what asyncio_start_tls()
 * does): first waits until what is queued has been sent, in plain, then
 * every later read and write goes through ops. Bytes the stream has
 * buffered and not yet returned stay there, unread: the caller takes them
 * with asyncio_stream_peek() and _consume() (TLS hands them to its
 * handshake) before it suspends again. Returns 0, or -EINVAL (s or ops
 * NULL, an op missing), -EBUSY (another task reads or drains s), -EEXIST
 * (s has a layer), -ENOTSOCK (s is not a socket), the connection's error,
 * -EPERM (not in a task), -ECANCELED, -ETIMEDOUT; on failure the layer is
 * not installed (the caller still owns it). May suspend.
 */
ASYNCIO_API int asyncio_stream_set_layer(asyncio_stream_t *s, const asyncio_stream_layer_ops_t *ops,
                                         void *layer);

/* The layer s has, if its ops are ops, else NULL. Does not suspend. */
ASYNCIO_API void *asyncio_stream_get_layer(const asyncio_stream_t *s,
                                           const asyncio_stream_layer_ops_t *ops);

/*
 * How a context object the core library does not know (a TLS context)
 * starts its layer on a new connection, for asyncio_open_connection() and
 * asyncio_start_server(): such an object begins with a pointer to one of
 * these.
 *   check(context, server_side)  0 if the context can serve that side of
 *                                a connection (1: a server's), else -EINVAL;
 *   start(context, s, server_side, server_hostname, handshake_timeout,
 *         error, error_size)     0 with the layer in place, or a negative
 *                                errno having closed and freed s (as
 *                                asyncio closes the transport of a failed
 *                                start_tls); the arguments after s are the
 *                                options' own;
 *   hold(context), release(context)  a server keeps its context alive.
 */
typedef struct asyncio_stream_starter {
    int (*check)(void *context, int server_side);
    int (*start)(void *context, asyncio_stream_t *s, int server_side,
                 const char *server_hostname, double handshake_timeout, char *error,
                 size_t error_size);
    void (*hold)(void *context);
    void (*release)(void *context);
} asyncio_stream_starter_t;

/* ---- clients ------------------------------------------------------------ */

typedef struct asyncio_connection_options {
    int family;             /* AF_INET, AF_INET6 or 0 for either */
    double connect_timeout; /* seconds for each address; 0: no limit */
    size_t limit;           /* the stream's read limit; 0: 64 KiB */
    /* TLS (open_connection's ssl=, server_hostname=, ssl_handshake_timeout=):
     * with a client context of <asyncio/tls.h>, the connection does a TLS
     * handshake before it is returned, and the stream reads and writes
     * plain text through TLS. */
    asyncio_tls_context_t *tls;
    const char *server_hostname; /* the name sent (SNI) and checked; NULL:
                                    host; "": neither sent nor checked */
    double tls_handshake_timeout; /* seconds; 0: 60 (asyncio's) */
    char *tls_error;              /* if not NULL, a failed handshake writes */
    size_t tls_error_size;        /* why here, as text (NUL-terminated) */
} asyncio_connection_options_t;

/*
 * Open a TCP connection to host:port (asyncio.open_connection): resolves
 * host (asyncio_getaddrinfo()), then tries each address in turn until one
 * connects; the stream has TCP_NODELAY set. With opts->tls, then does the
 * TLS handshake (see asyncio_start_tls() in <asyncio/tls.h> for its
 * errors: -ASYNCIO_ECERT for a certificate that does not verify, -EPROTO,
 * ...). Returns 0 and the stream in *out, or the last address's error
 * (-ECONNREFUSED, -ETIMEDOUT, ...), a resolution error, -EINVAL (bad port,
 * out NULL, a negative timeout, a server context), -EPERM, -ECANCELED,
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
    /* TLS (start_server's ssl=, ssl_handshake_timeout=): with a server
     * context of <asyncio/tls.h>, each connection's task does the TLS
     * handshake first, within the timeout, and the handler gets a stream
     * that reads and writes plain text through TLS; a connection whose
     * handshake fails is closed without a handler (and without a report:
     * clients that give up are common). */
    asyncio_tls_context_t *tls;
    double tls_handshake_timeout; /* seconds; 0: 60 (asyncio's) */
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
