/**
 * \file asyncio/stream.h
 * \brief Streams over connected sockets, servers and clients.
 *
 * Buffered streams over connected sockets, servers that run a task per
 * connection, and clients that open a stream to a server (asyncio's streams
 * API: StreamReader and StreamWriter, open_connection, start_server and
 * Server).
 *
 * One asyncio_stream_t is both of asyncio's StreamReader and StreamWriter
 * for one connection. At most one task reads it at a time and at most one
 * drains it at a time (a second gets -EBUSY); any task may write.
 *
 * \par Reading
 * asyncio_stream_read(), asyncio_stream_readexactly(),
 * asyncio_stream_readline(), asyncio_stream_readuntil() copy into the
 * caller's buffer; asyncio_stream_peek(), asyncio_stream_fill() and
 * asyncio_stream_consume() let a parser work on the stream's own buffer
 * without a copy. The buffer holds at most the stream's limit (64 KiB
 * unless set), is allocated when data arrives and given back when the
 * stream is drained and waits, so an idle connection costs no buffer.
 *
 * \par Writing
 * asyncio_stream_write() never suspends. It queues the bytes; the loop
 * sends what was queued before it next polls, or at once when the writing
 * task next waits to read this stream, so a run of small writes costs one
 * system call. A write of 4 KiB or more to an empty queue goes to the
 * socket at once (copying it would cost more than the system call it might
 * save), and only what the socket does not take is queued. What the socket
 * cannot take yet is sent in the background as it drains.
 *
 * \par Back-pressure
 * asyncio_stream_drain() is the backpressure: it waits while more than the
 * high water mark (64 KiB) is queued, until no more than the low water mark
 * (16 KiB) is.
 *
 * \par Cancellation and errors
 * Every call that may suspend takes part in cancellation and timeout scopes
 * (-ECANCELED, -ETIMEDOUT), and a cancelled read loses no data: what had
 * arrived stays in the stream for the next read. Errors of the connection
 * are negative errnos: -ECONNRESET, -EPIPE (never SIGPIPE), ...; a stream
 * closed while a task waits on it wakes that task with -EBADF. A send the
 * socket refuses ends the connection, as in asyncio: what was queued is
 * dropped, drain() and later writes return the error, and so do reads,
 * once they have returned what was already buffered (a task waiting to
 * read wakes with it).
 *
 * \par Debug mode
 * In debug mode (<asyncio/debug.h>), a call that reads, writes, drains,
 * sends a file, sets a limit or layer, or closes a stream, or that closes,
 * serves or waits on a server, returns -EXDEV (and it is reported) when it
 * is made from a thread other than the loop's.
 *
 * Include <asyncio.h> rather than this file.
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

/**
 * A stream: asyncio's StreamReader and StreamWriter of one connection.
 *
 * Opaque: made by asyncio_stream_open(), asyncio_open_connection() or a
 * server, ended by asyncio_stream_close(), asyncio_stream_abort() or
 * asyncio_stream_wait_closed().
 */
typedef struct asyncio_stream asyncio_stream_t;
/**
 * A server (asyncio's Server): its listening sockets and the tasks of its
 * connections.
 *
 * Opaque: made by asyncio_start_server() or asyncio_start_unix_server(),
 * freed by asyncio_server_wait_closed() or when the loop closes.
 */
typedef struct asyncio_server asyncio_server_t;
/**
 * A TLS context (asyncio's ssl.SSLContext): made and configured with
 * <asyncio/tls.h>, in the optional library libasyncio-tls.
 *
 * Opaque. Its first member is a pointer to its asyncio_stream_starter_t.
 */
typedef struct asyncio_tls_context asyncio_tls_context_t;

/** The default limit of a stream's read buffer (asyncio's 2**16). */
#define ASYNCIO_STREAM_LIMIT 65536
/** The default high water mark of a stream's write buffer (asyncio's
 *  transports): asyncio_stream_drain() waits above it. */
#define ASYNCIO_STREAM_HIGH_WATER 65536
/** The default low water mark of a stream's write buffer (asyncio's
 *  transports): asyncio_stream_drain() waits until the queue is down to it. */
#define ASYNCIO_STREAM_LOW_WATER 16384

/* ---- streams ------------------------------------------------------------ */

/**
 * Make a stream of the connected socket, pipe, or regular file fd, which it
 * owns from then on.
 *
 * A regular file never waits: reads and writes go straight to it. fd is
 * made non-blocking, and closed when the stream is. The O_NONBLOCK flag is
 * the open file description's, which other processes may share (a
 * terminal, a pipe inherited as stdin or stdout): they see it too, and it
 * stays after the stream is closed; restore it (fcntl) if that matters, or
 * open a stream on a pipe of your own.
 *
 * \param out    receives the stream
 * \param fd     a connected socket, a pipe or a regular file
 * \param limit  the read buffer's limit (0: #ASYNCIO_STREAM_LIMIT)
 * \return 0 and the stream in *out; -EPERM (no loop in this thread),
 *         -EBADF, -EINVAL (out NULL), -ENOMEM. On failure fd is left open.
 * \suspends No.
 * \context The loop's thread: a task, a callback, or between runs of the
 *          loop.
 */
ASYNCIO_API int asyncio_stream_open(asyncio_stream_t **out, int fd, size_t limit);

/**
 * The stream's fd (to set socket options, or for getpeername).
 *
 * Do not read, write or close it behind the stream.
 *
 * \param s  the stream
 * \return the fd; -EBADF once the stream is closed (or s is NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_fd(const asyncio_stream_t *s);

/**
 * Read up to n bytes (StreamReader.read(n)), waiting until some are there.
 *
 * \param s    the stream
 * \param buf  where the bytes go; may be NULL only if n is 0
 * \param n    the most bytes to read
 * \return how many bytes were read, 0 at end of stream (or for n 0);
 *         -ECONNRESET and the like, -EBADF (closed), -EBUSY (another task
 *         is reading), -EINVAL (s NULL, buf NULL with n > 0), -EPERM (not
 *         in a task), -ECANCELED, -ETIMEDOUT.
 * \suspends Yes: until some bytes are there. Cancellation and timeout
 *           scopes end the wait; what had arrived stays in the stream.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_stream_read(asyncio_stream_t *s, void *buf, size_t n);

/**
 * Read exactly n bytes (StreamReader.readexactly()).
 *
 * Cancelled or timed out part-way, it puts back what it had read: the next
 * read gets it.
 *
 * \param s    the stream
 * \param buf  where the bytes go; may be NULL only if n is 0
 * \param n    how many bytes to read
 * \return n; or, when the stream ends first, the fewer bytes that came
 *         (asyncio's IncompleteReadError.partial), all in buf. Errors as
 *         asyncio_stream_read(), and -ENOMEM.
 * \suspends Yes: until n bytes came or the stream ended. Cancellation and
 *           timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_stream_readexactly(asyncio_stream_t *s, void *buf, size_t n);

/**
 * Read up to and including a separator (StreamReader.readuntil()).
 *
 * If the stream ends first, returns what was left, without a separator.
 * Each error leaves the data in the stream for another try.
 *
 * \param s       the stream
 * \param sep     the separator, seplen bytes; not NULL
 * \param seplen  its length, > 0
 * \param buf     where the bytes go; may be NULL only if cap is 0
 * \param cap     the size of buf
 * \return the length, separator included; at the end of the stream, what
 *         was left (0 at end of stream). Errors:
 *         - -ENOBUFS: the separator is not within the stream's limit
 *           (asyncio's LimitOverrunError);
 *         - -EMSGSIZE: the data up to the separator (or, at the end, what
 *           was left) is more than cap;
 *         - -EINVAL: an empty or NULL separator, buf NULL with cap > 0;
 *         - and those of asyncio_stream_read().
 * \suspends Yes: until the separator or the end of the stream came.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_stream_readuntil(asyncio_stream_t *s, const void *sep, size_t seplen,
                                             void *buf, size_t cap);

/**
 * Read a line, up to and including its newline (StreamReader.readline()).
 *
 * The same as `asyncio_stream_readuntil(s, "\n", 1, buf, cap)`, except
 * that, unlike asyncio's readline, a line past the limit is left in the
 * stream (-ENOBUFS).
 *
 * \param s    the stream
 * \param buf  where the line goes; may be NULL only if cap is 0
 * \param cap  the size of buf
 * \return as asyncio_stream_readuntil(): the line's length, the newline
 *         included (at the end of the stream, what was left, 0 at end of
 *         stream); -ENOBUFS, -EMSGSIZE, and the errors of
 *         asyncio_stream_read().
 * \suspends Yes: until a whole line or the end of the stream came.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_stream_readline(asyncio_stream_t *s, void *buf, size_t cap);

/**
 * Whether the stream has ended and everything in it was read
 * (StreamReader.at_eof()).
 *
 * \param s  the stream
 * \return 1 (true), else 0 (also for s NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_at_eof(const asyncio_stream_t *s);

/**
 * The bytes the stream holds, not yet read, without reading.
 *
 * \param s     the stream
 * \param data  receives where they are (valid until the next call on s);
 *              NULL if not wanted
 * \return their count (0, with *data NULL, for s NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API size_t asyncio_stream_peek(const asyncio_stream_t *s, const void **data);

/**
 * Wait for more bytes and add them to the stream's buffer.
 *
 * \param s  the stream
 * \return how many came, 0 at end of stream; -ENOBUFS if the buffer
 *         already holds the stream's limit, -ENOMEM; other errors as
 *         asyncio_stream_read().
 * \suspends Yes: until some bytes come. Cancellation and timeout scopes end
 *           the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_stream_fill(asyncio_stream_t *s);

/**
 * Drop n bytes from the front of the buffer (after asyncio_stream_peek()).
 *
 * \param s  the stream
 * \param n  how many bytes
 * \return 0; -EINVAL if fewer than n are there (or s is NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_consume(asyncio_stream_t *s, size_t n);

/**
 * Set the read buffer's limit.
 *
 * \param s      the stream
 * \param limit  the limit in bytes (0: #ASYNCIO_STREAM_LIMIT)
 * \return 0; -EINVAL if the buffer already holds more (or s is NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_set_limit(asyncio_stream_t *s, size_t limit);

/**
 * Queue n bytes of buf for sending (StreamWriter.write()).
 *
 * The bytes are copied or sent before it returns, so buf is the caller's
 * again at once. With nothing queued, a write of 4 KiB or more, or one to a
 * stream with no input left to answer (nothing buffered, the last read came
 * back short), is tried on the socket right away and only what it does not
 * take is queued; otherwise the queue goes out in one system call before
 * the loop next polls or the stream's reader waits, so small writes in
 * answer to pipelined input leave together. Pair it with
 * asyncio_stream_drain() to bound the queue.
 *
 * \param s    the stream
 * \param buf  the bytes; may be NULL only if n is 0
 * \param n    how many
 * \return 0; or the connection's error (-EPIPE, -ECONNRESET, ..., also one
 *         met by this write), -EPIPE after asyncio_stream_write_eof(),
 *         -EBUSY (an asyncio_stream_sendfile() is in progress), -ENOMEM,
 *         -EINVAL (s NULL, buf NULL with n > 0).
 * \suspends No, never.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_write(asyncio_stream_t *s, const void *buf, size_t n);

/**
 * Queue the iovcnt buffers of iov (StreamWriter.writelines()), as
 * asyncio_stream_write() does.
 *
 * \param s       the stream
 * \param iov     the buffers; may be NULL only if iovcnt is 0
 * \param iovcnt  how many, >= 0
 * \return as asyncio_stream_write(); -EINVAL also for iovcnt < 0, or a
 *         buffer with a NULL base and a length.
 * \suspends No, never.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_writev(asyncio_stream_t *s, const struct iovec *iov, int iovcnt);

/**
 * Send count bytes of an open file after what is queued on the stream
 * (loop.sendfile(transport, file, offset, count)), and wait until the last
 * of them was handed to the kernel.
 *
 * On a plain socket, the queue goes first, then the system's sendfile moves
 * the file's pages without a copy through this process; a small count
 * (under 16 KiB) is read into the queue instead, which costs less and
 * leaves with what was queued before. (A pipe takes the file's pages the
 * same way.) Through a layer (TLS), on a stream over a regular file, or
 * without a sendfile in the system, the file is read into the queue and
 * sent as writes are, unless flags has #ASYNCIO_SENDFILE_NO_FALLBACK
 * (-ENOTSUP then).
 *
 * Meanwhile other writes to the stream, drains and
 * asyncio_stream_set_layer() fail with -EBUSY; a close by another task ends
 * the call with -EBADF. The file is read at an offset, as
 * asyncio_sock_sendfile() says (a regular file; with a count, also a block
 * device); its offset is not moved, so tasks may send one fd at once. The
 * file is read in the loop's thread (see asyncio_sock_sendfile()).
 *
 * \param s       the stream
 * \param file    the open file to send from
 * \param offset  where in the file to start, >= 0
 * \param count   how many bytes; 0: to the end of the file as it is now
 * \param flags   0 or #ASYNCIO_SENDFILE_NO_FALLBACK
 * \return the bytes sent: count, or less if the file ends first; or the
 *         error: the connection's (-EPIPE, -ECONNRESET, ...; after a
 *         failure, cancellation or timeout part of the file may have been
 *         sent: close the stream), -EBUSY (another sendfile or drain is in
 *         progress), -EBADF, -ESPIPE (a pipe or socket as the file),
 *         -EISDIR, -EINVAL, -ENOTSUP, -ENOMEM, -EPERM, -ECANCELED,
 *         -ETIMEDOUT. A bad file sends none of its bytes (with a count,
 *         what was queued before is sent first).
 * \suspends Yes: until the last byte was handed to the kernel. Cancellation
 *           and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API ssize_t asyncio_stream_sendfile(asyncio_stream_t *s, int file, off_t offset,
                                            size_t count, int flags);

/**
 * Wait until the write queue is under control (StreamWriter.drain()).
 *
 * Returns at once if no more than the high water mark is queued, else waits
 * until no more than the low water mark is.
 *
 * \param s  the stream
 * \return 0; or the connection's error (-EPIPE, -ECONNRESET, ...), -EBADF,
 *         -EBUSY (another task drains, or a sendfile is in progress),
 *         -EINVAL (s NULL), -EPERM, -ECANCELED, -ETIMEDOUT (the bytes stay
 *         queued).
 * \suspends Yes: while more than the high water mark is queued, until no
 *           more than the low water mark is. Cancellation and timeout scopes
 *           end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_stream_drain(asyncio_stream_t *s);

/**
 * Set the water marks (WriteTransport.set_write_buffer_limits()).
 *
 * \param s     the stream
 * \param high  the high water mark in bytes; high 0 and low 0 restore
 *              64 KiB and 16 KiB
 * \param low   the low water mark in bytes; low 0 alone is high / 4
 * \return 0; -EINVAL (low > high, s NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_set_write_buffer_limits(asyncio_stream_t *s, size_t high, size_t low);

/**
 * Bytes queued and not yet sent (WriteTransport.get_write_buffer_size()).
 *
 * \param s  the stream
 * \return the count (0 for s NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API size_t asyncio_stream_write_buffer_size(const asyncio_stream_t *s);

/**
 * Half-close (StreamWriter.write_eof()): once what is queued is sent, shut
 * the sending side (shutdown SHUT_WR); reading goes on.
 *
 * A pipe has no half-close: asyncio_stream_close() sends its end of file,
 * after what is queued. Calling it twice is harmless.
 *
 * \param s  the stream
 * \return 0 or a negative errno: -ENOTSOCK for a stream that is not a
 *         socket, the connection's error, -EBUSY (a sendfile is in
 *         progress), -EINVAL (s NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_write_eof(asyncio_stream_t *s);

/**
 * Close the stream (StreamWriter.close()).
 *
 * Tasks waiting on it wake with -EBADF, what is queued is still sent in the
 * background, then the fd is closed and the stream freed. s must not be
 * used after this (except that a server's handler may return after closing
 * its stream).
 *
 * \param s  the stream
 * \return 0; -EINVAL for NULL.
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_close(asyncio_stream_t *s);

/**
 * Close the stream at once (WriteTransport.abort()).
 *
 * What is queued is dropped, a TCP connection is reset (SO_LINGER 0), tasks
 * waiting on it wake with -EBADF. As after asyncio_stream_close(), s must
 * not be used after this.
 *
 * \param s  the stream
 * \return 0; -EINVAL for NULL.
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_stream_abort(asyncio_stream_t *s);

/**
 * Close the stream and wait until it is closed (StreamWriter.close() then
 * await wait_closed()).
 *
 * What is queued is sent first. The stream is freed in every case: s must
 * not be used after. Cancelled or timed out, it closes at once, dropping
 * what was left. Outside a task the stream is closed as
 * asyncio_stream_close() does.
 *
 * \param s  the stream
 * \return 0; or the error sending what was queued met (-EPIPE, ...);
 *         -ECANCELED, -ETIMEDOUT; -EPERM outside a task; -EINVAL for NULL.
 * \suspends Yes: until what was queued is sent and the fd closed.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_stream_wait_closed(asyncio_stream_t *s);

/* ---- layers -------------------------------------------------------------- */

/**
 * A layer's recv, send or shutdown waits for the fd to be readable
 * (asyncio_stream_layer_ops_t).
 */
#define ASYNCIO_LAYER_WANT_READ 1
/**
 * A layer's recv, send or shutdown waits for the fd to be writable
 * (asyncio_stream_layer_ops_t).
 */
#define ASYNCIO_LAYER_WANT_WRITE 2

/**
 * The calls of a stream layer (asyncio_stream_set_layer()).
 *
 * A layer transforms what a stream reads and writes on its fd: TLS (in
 * libasyncio-tls, <asyncio/tls.h>) is one. Most programs never use this
 * directly. With a layer, the stream's calls
 * keep their meaning and their buffering, but instead of recv(2) and
 * send(2) the stream calls these.
 *
 * -EAGAIN from recv, send or shutdown means "call again once the fd is
 * ready": *want says for what, #ASYNCIO_LAYER_WANT_READ or
 * #ASYNCIO_LAYER_WANT_WRITE (either may come from any of the three: TLS
 * writes while it reads). The stream never calls a layer from two tasks at
 * once.
 */
typedef struct asyncio_stream_layer_ops {
    /**
     * Read bytes through the layer (instead of recv(2)).
     * \param layer  the layer given to asyncio_stream_set_layer()
     * \param buf    where the bytes go
     * \param n      the most bytes to read
     * \param want   with -EAGAIN, receives what the fd must be ready for
     * \return bytes read (> 0), 0 at the end of the stream, or a negative
     *         errno (-EAGAIN: call again once the fd is ready).
     */
    ssize_t (*recv)(void *layer, void *buf, size_t n, int *want);
    /**
     * Send bytes through the layer (instead of send(2)).
     *
     * A call that took part of the bytes is called again with the rest, the
     * same bytes (perhaps at another address).
     * \param layer   the layer
     * \param iov     the bytes
     * \param iovcnt  the number of buffers in iov
     * \param want    with -EAGAIN, receives what the fd must be ready for
     * \return bytes taken (> 0), or a negative errno (-EAGAIN: call again
     *         once the fd is ready).
     */
    ssize_t (*send)(void *layer, const struct iovec *iov, int iovcnt, int *want);
    /**
     * End the sending side (TLS: close_notify; the stream then shuts the
     * socket's sending side too).
     *
     * After a 0, closing the stream lingers: it reads and drops the peer's
     * input until the peer's end, 5 s at most, before it closes the fd
     * (closing with unread input, TLS 1.3's session tickets, would reset
     * the connection and lose what the peer had not read yet).
     * \param layer  the layer
     * \param want   with -EAGAIN, receives what the fd must be ready for
     * \return 0 when it sent its end, 1 when it had nothing to send (a TLS
     *         handshake that failed), or a negative errno (-EAGAIN: call
     *         again once the fd is ready).
     */
    int (*shutdown)(void *layer, int *want);
    /**
     * Whether recv() can return bytes without reading the fd (what the
     * layer holds).
     * \param layer  the layer
     * \return true (nonzero) or 0.
     */
    int (*pending)(void *layer);
    /**
     * The stream is closed: free the layer (no more calls, the fd is still
     * open).
     * \param layer  the layer
     */
    void (*free)(void *layer);
} asyncio_stream_layer_ops_t;

/**
 * Put a layer between the stream and its fd (what asyncio_start_tls()
 * does).
 *
 * First waits until what is queued has been sent, in plain, then every
 * later read and write goes through ops. Bytes the stream has buffered and
 * not yet returned stay there, unread: the caller takes them with
 * asyncio_stream_peek() and asyncio_stream_consume() (TLS hands them to its
 * handshake) before it suspends again.
 *
 * \param s      the stream, over a socket
 * \param ops    the layer's calls, every one set; must stay valid while the
 *               stream lives
 * \param layer  passed to each of ops; on success the stream owns it (it
 *               calls ops->free at close)
 * \return 0; or -EINVAL (s or ops NULL, an op missing), -EBUSY (another
 *         task reads or drains s, or sends a file on it), -EEXIST (s has a
 *         layer), -ENOTSOCK (s is not a socket), -EBADF (s closed), the
 *         connection's error, -ENOMEM, -EPERM (not in a task),
 *         -ECANCELED, -ETIMEDOUT. On failure the layer is not installed
 *         (the caller still owns it).
 * \suspends Yes: until what was queued is sent. Cancellation and timeout
 *           scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_stream_set_layer(asyncio_stream_t *s, const asyncio_stream_layer_ops_t *ops,
                                         void *layer);

/**
 * The layer s has, if its ops are ops.
 *
 * \param s    the stream
 * \param ops  the calls the layer was installed with
 * \return the layer; NULL if s has none, or one with other ops (or s or ops
 *         is NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API void *asyncio_stream_get_layer(const asyncio_stream_t *s,
                                           const asyncio_stream_layer_ops_t *ops);

/**
 * How a context object starts its layer on a new connection (the TLS
 * context's hook into asyncio_open_connection() and asyncio_start_server()).
 *
 * The core library does not know such an object (a TLS context): it
 * starts its layer through these calls, for asyncio_open_connection() and
 * asyncio_start_server(). Such an object begins with a pointer to one of these (as
 * asyncio_tls_context_t does).
 */
typedef struct asyncio_stream_starter {
    /**
     * Whether the context can serve that side of a connection.
     * \param context      the context object
     * \param server_side  1: a server's side; 0: a client's
     * \return 0 if it can, else -EINVAL.
     */
    int (*check)(void *context, int server_side);
    /**
     * Start the layer on s; the arguments after s are the options' own
     * (asyncio_connection_options_t, asyncio_server_options_t).
     * \param context            the context object
     * \param s                  the new connection's stream
     * \param server_side        1: a server's side; 0: a client's
     * \param server_hostname    a client's server name (the options'), or
     *                           NULL
     * \param handshake_timeout  seconds; 0: the layer's default
     * \param error              where to write why it failed, as text; may
     *                           be NULL
     * \param error_size         the size of error
     * \return 0 with the layer in place; or a negative errno having closed
     *         and freed s (as asyncio closes the transport of a failed
     *         start_tls).
     */
    int (*start)(void *context, asyncio_stream_t *s, int server_side,
                 const char *server_hostname, double handshake_timeout, char *error,
                 size_t error_size);
    /**
     * Take a reference: a server keeps its context alive.
     * \param context  the context object
     */
    void (*hold)(void *context);
    /**
     * Drop the reference hold() took.
     * \param context  the context object
     */
    void (*release)(void *context);
} asyncio_stream_starter_t;

/* ---- clients ------------------------------------------------------------ */

/**
 * Options of asyncio_open_connection() and asyncio_open_unix_connection().
 * Zero-initialise: every 0 member is a default.
 */
typedef struct asyncio_connection_options {
    int family;             /**< AF_INET, AF_INET6 or 0 for either */
    double connect_timeout; /**< seconds for each address; 0: no limit */
    size_t limit;           /**< the stream's read limit; 0: 64 KiB */
    /** A client TLS context of <asyncio/tls.h>, or NULL: no TLS.
     *
     * TLS (open_connection's ssl=, server_hostname=, ssl_handshake_timeout=:
     * this member and the next four): with a client context, the connection
     * does a TLS handshake before it is returned, and the stream reads and
     * writes plain text through TLS. */
    asyncio_tls_context_t *tls;
    const char *server_hostname; /**< the name sent (SNI) and checked; NULL:
                                    host; "": neither sent nor checked */
    double tls_handshake_timeout; /**< seconds; 0: 60 (asyncio's) */
    char *tls_error;              /**< if not NULL, a failed handshake writes
                                       why here, as text (NUL-terminated) */
    size_t tls_error_size;        /**< the size of tls_error */
} asyncio_connection_options_t;

/**
 * Open a TCP connection to host:port (asyncio.open_connection()).
 *
 * Resolves host (asyncio_getaddrinfo()), then tries each address in turn
 * until one connects; the stream has TCP_NODELAY set. With opts->tls, then
 * does the TLS handshake (see asyncio_start_tls() in <asyncio/tls.h> for
 * its errors).
 *
 * \param out   receives the stream
 * \param host  the host name or address; not NULL nor ""
 * \param port  the port, 1 to 65535
 * \param opts  the options; NULL for the defaults
 * \return 0 and the stream in *out; or the last address's error
 *         (-ECONNREFUSED, -ETIMEDOUT, ...), a resolution error, a TLS
 *         error (-ASYNCIO_ECERT for a certificate that does not verify,
 *         -EPROTO, ...), -EINVAL (bad port, host NULL or "", out NULL, a
 *         negative or NaN timeout, a server context), -EPERM, -ECANCELED,
 *         -ETIMEDOUT.
 * \suspends Yes: while it resolves, connects and does the TLS handshake.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_open_connection(asyncio_stream_t **out, const char *host, int port,
                                        const asyncio_connection_options_t *opts);

/**
 * Open a connection to a Unix-domain stream socket at path
 * (asyncio.open_unix_connection()), as asyncio_open_connection() does.
 *
 * opts->family is not used. With opts->tls, opts->server_hostname must be
 * set (asyncio's rule: "" checks no name).
 *
 * \param out   receives the stream
 * \param path  the socket's path; not NULL nor ""
 * \param opts  the options; NULL for the defaults
 * \return 0 and the stream in *out; or as asyncio_open_connection();
 *         -ENAMETOOLONG for a path too long; -EINVAL also for TLS without
 *         server_hostname.
 * \suspends Yes: while it connects and does the TLS handshake. Cancellation
 *           and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_open_unix_connection(asyncio_stream_t **out, const char *path,
                                             const asyncio_connection_options_t *opts);

/* ---- servers ------------------------------------------------------------ */

/**
 * A connection handler (asyncio's client_connected_cb).
 *
 * It runs in a task of its own, named "conn-<fd>", for each accepted
 * connection, with the connection's stream. The server closes the stream
 * (as asyncio_stream_close() does) when the handler returns, unless the
 * handler closed it itself.
 *
 * \param s    the connection's stream
 * \param arg  what asyncio_start_server() was given
 * \return the task's status: 0, or a negative errno; a negative one other
 *         than -ECANCELED is reported on stderr (through the loop's
 *         exception handler, <asyncio/debug.h>), as asyncio logs the
 *         exceptions of its handlers.
 */
typedef int (*asyncio_stream_handler)(asyncio_stream_t *s, void *arg);

/**
 * Options of asyncio_start_server() and asyncio_start_unix_server().
 * Zero-initialise: every 0 member is a default.
 */
typedef struct asyncio_server_options {
    int family;         /**< AF_INET, AF_INET6 or 0 for every one host has */
    int backlog;        /**< listen(2) backlog; 0: 511 */
    int reuse_port;     /**< set SO_REUSEPORT (SO_REUSEADDR is always set):
                           several sockets, of this program or another,
                           listen on one port and the kernel spreads the
                           connections over them (a loop per core); where
                           the system has no SO_REUSEPORT, the start fails
                           with -EOPNOTSUPP */
    size_t limit;       /**< read limit of the connections' streams; 0: 64 KiB */
    size_t stack_size;  /**< handler tasks' stacks; 0: the loop's default */
    /** A server TLS context of <asyncio/tls.h>, or NULL: no TLS.
     *
     * TLS (start_server's ssl=, ssl_handshake_timeout=: this member and the
     * next): with a server context, each connection's task does the TLS
     * handshake first, within the timeout, and the handler gets a stream
     * that reads and writes plain text through TLS; a connection whose
     * handshake fails is closed without a handler (and without a report:
     * clients that give up are common). */
    asyncio_tls_context_t *tls;
    double tls_handshake_timeout; /**< seconds; 0: 60 (asyncio's) */
} asyncio_server_options_t;

/**
 * Listen on host:port and run handler(stream, arg) in a new task for every
 * connection (asyncio.start_server()).
 *
 * Accepting starts at once. Accepting that fails with EMFILE or ENFILE
 * pauses for 100 ms and goes on, so a server out of fds neither dies nor
 * spins; a connection it has no memory to serve (its stream or task) is
 * closed at once, and the server goes on.
 *
 * \param out      receives the server
 * \param handler  the connection handler; not NULL
 * \param arg      passed to handler
 * \param host     NULL or "": every interface (IPv4 and IPv6); a name: each
 *                 of its addresses
 * \param port     0 to 65535; 0 takes a free port (see asyncio_server_port())
 * \param opts     the options; NULL for the defaults
 * \return 0 and the server in *out; or a negative errno: -EADDRINUSE,
 *         resolution errors, -EINVAL (out or handler NULL, bad port, a
 *         client TLS context, a negative timeout), -EOPNOTSUPP (reuse_port
 *         without SO_REUSEPORT), -ENOMEM, -EPERM (not in a task),
 *         -ECANCELED, -ETIMEDOUT, ...
 * \suspends Yes: to resolve host (not for NULL, "" or a numeric address).
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_start_server(asyncio_server_t **out, asyncio_stream_handler handler,
                                     void *arg, const char *host, int port,
                                     const asyncio_server_options_t *opts);

/**
 * Listen on a Unix-domain socket at path (asyncio.start_unix_server()), as
 * asyncio_start_server() does.
 *
 * A stale socket file there is replaced; the file is removed when the
 * server closes. opts->family and opts->reuse_port are not used.
 *
 * \param out      receives the server
 * \param handler  the connection handler; not NULL
 * \param arg      passed to handler
 * \param path     the socket's path; not NULL nor ""
 * \param opts     the options; NULL for the defaults
 * \return 0 and the server in *out; or a negative errno: -EADDRINUSE,
 *         -ENAMETOOLONG, -EINVAL, -ENOMEM, -EPERM (not in a task), ...
 * \suspends No.
 * \context A task.
 */
ASYNCIO_API int asyncio_start_unix_server(asyncio_server_t **out, asyncio_stream_handler handler,
                                          void *arg, const char *path,
                                          const asyncio_server_options_t *opts);

/**
 * The port the server's first socket listens on (for port 0).
 *
 * \param srv  the server
 * \return the port; -EINVAL (srv NULL, closed, or a Unix-domain server).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_server_port(const asyncio_server_t *srv);

/**
 * Number of connections the server serves now: those whose handlers are
 * running.
 *
 * A connection counts from its accept until its task ends (its TLS
 * handshake included).
 *
 * \param srv  the server
 * \return the count (0 for srv NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API size_t asyncio_server_connections(const asyncio_server_t *srv);

/**
 * Stop listening (Server.close()): the listening sockets are closed, the
 * handlers that run go on.
 *
 * Safe from a callback, e.g. a signal handler's; it ends
 * asyncio_server_serve_forever().
 *
 * \param srv  the server
 * \return 0 (also when already closed); -EINVAL (srv NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_server_close(asyncio_server_t *srv);

/**
 * Cancel every running handler (Server.close_clients(), abort_clients()):
 * their streams are closed as they return.
 *
 * \param srv  the server
 * \return how many were cancelled; -EINVAL (srv NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_server_close_clients(asyncio_server_t *srv);

/**
 * Wait until the server is closed and every handler has returned
 * (Server.wait_closed()), then free the server.
 *
 * srv must not be used after this returns 0. A server nobody waited for is
 * freed when the loop closes.
 *
 * \param srv  the server
 * \return 0; or -ECANCELED / -ETIMEDOUT (the server is then left as it
 *         was, still to be waited for), -EPERM, -EBUSY (another task waits
 *         for it), -EINVAL (srv NULL).
 * \suspends Yes: until the server is closed and its handlers returned.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_server_wait_closed(asyncio_server_t *srv);

/**
 * Wait until the server is closed (Server.serve_forever()).
 *
 * If the waiting task is cancelled or times out, closes the server.
 *
 * \param srv  the server
 * \return 0 once asyncio_server_close() was called (by a signal handler,
 *         another task...); -ECANCELED or -ETIMEDOUT (the server closed);
 *         -EPERM outside a task; -EINVAL (srv NULL).
 * \suspends Yes: until the server is closed. Cancellation and timeout
 *           scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_server_serve_forever(asyncio_server_t *srv);

#ifdef __cplusplus
}
#endif

#endif
