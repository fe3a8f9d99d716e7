/* The networking layer (sock.c, stream.c, server.c, client.c, resolve.c,
 * subprocess.c, sigchld.c): what its files share. Socket calls try the
 * system call first and wait only on EAGAIN; every task has a budget of
 * calls that did not wait. */
#ifndef ASYNCIO_NET_INTERNAL_H
#define ASYNCIO_NET_INTERNAL_H

#include "names.h"

#include "task.h"

#include <asyncio/stream.h>

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "syscaps.h"

#include <signal.h>

/* A send to a peer that is gone must return EPIPE, never raise SIGPIPE:
 * with MSG_NOSIGNAL; else with SO_NOSIGPIPE set on the socket (macOS);
 * else (NET_SIGPIPE_BLOCK) with SIGPIPE blocked in the thread around the
 * send, as for a pipe. */
#ifdef HAVE_MSG_NOSIGNAL
#define NET_MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define NET_MSG_NOSIGNAL 0
#endif
#if !defined(HAVE_MSG_NOSIGNAL) && !defined(SO_NOSIGPIPE)
#define NET_SIGPIPE_BLOCK 1
#else
#define NET_SIGPIPE_BLOCK 0
#endif

/* Block SIGPIPE in this thread for a write that may raise it; after it
 * (r: what the write returned, errno its error; want: the bytes it was
 * asked to move), take back a SIGPIPE the write raised (one pending before
 * stays) and restore the mask; errno is kept. Linux sends a pipe's or a
 * socket's SIGPIPE to the writing thread. A write can raise it and still
 * return a count: the reader went away after a pipe took some bytes, or
 * after sendfile's first pieces were sent; so a short write looks too. */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};
void net_sigpipe_block(struct sigpipe_guard *g);
void net_sigpipe_unblock(struct sigpipe_guard *g, ssize_t r, size_t want);
/* Whether the process ignores SIGPIPE (as nginx and CPython do): a write
 * then raises nothing that is delivered, and a run of them goes without
 * the guard (a thread that also blocks the signal may find one pending,
 * which its unblocking discards). One system call. */
bool net_sigpipe_ignored(void);

/* What a task may do in a row without waiting before it must yield: each
 * call costs a unit, and the bytes it moved one more per IO_UNIT_BYTES.
 * Counting bytes makes a task that always finds 256 KiB to read yield after
 * each read, as an epoll loop serves each ready fd once a turn: serving
 * one connection for 64 such reads in a row cost the server more CPU per
 * message when large messages keep every socket full (the 100 KiB rows of
 * bench/net.sh's echo), while one that reads small messages still makes
 * 64 calls between yields, each of which costs an iteration of the loop
 * and a poll. */
#define IO_BUDGET 64
#define IO_UNIT_BYTES 4096

/* Every waiting network call starts here: 0 and the calling task in *out,
 * -EPERM outside a task, or what yielding (its budget spent) returned. */
int net_begin(struct task **out);

/* Charge t for a call that moved n bytes without waiting. */
static inline void net_charge(struct task *t, size_t n)
{
    size_t units = n / IO_UNIT_BYTES;
    t->io_streak = units >= IO_BUDGET ? IO_BUDGET : t->io_streak + (unsigned)units;
}

/* Wait for fd to be readable (or writable), and start a new budget: the
 * task let others run. */
int net_wait(struct task *t, int fd, bool readable);

static inline bool would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* Sending a file (sendfile.c). net_sendfile_span(): check the arguments
 * of a sendfile call and size what it sends: 0 and *total, or -EBADF,
 * -EINVAL, -ESPIPE, or fstat()'s error. net_sendfile_zero(): send
 * [offset + *sent, offset + total) of file on the socket *sockp with the
 * system's sendfile, waiting as the socket fills, *sent counting; *sockp
 * is read again after each wait (a stream's fd, -1 once closed: -EBADF).
 * 0 (all sent, or the file ended), -ENOTSUP (the system or the kernel
 * cannot, nothing sent: fall back), or the error. */
int net_sendfile_span(int file, off_t offset, size_t count, int flags, size_t *total);
int net_sendfile_zero(struct task *t, const int *sockp, int file, off_t offset, size_t total,
                      size_t *sent);

/* The address of a Unix-domain socket at path: 0, -EINVAL (NULL or empty)
 * or -ENAMETOOLONG. */
struct sockaddr_un;
int net_unix_addr(struct sockaddr_un *sun, const char *path);

/* Make fd non-blocking (and on BSD, SO_NOSIGPIPE): 0 or a negative errno. */
int net_prepare_fd(int fd);

/* The starter of a TLS context (<asyncio/stream.h>): its first member. */
static inline const asyncio_stream_starter_t *starter_of(asyncio_tls_context_t *ctx)
{
    return *(const asyncio_stream_starter_t *const *)(void *)ctx;
}

struct addrinfo;

/* Resolve host:port for a socket of type (resolve.c); host NULL or "" with
 * passive means every local address. As asyncio_getaddrinfo(). */
int net_resolve(const char *host, int port, int family, int type, bool passive,
                struct addrinfo **res);

/* Streams (stream.c): a server keeps its connection's stream alive while
 * the handler runs, whatever the handler does with it. */
struct asyncio_stream;
void stream_retain(struct asyncio_stream *s);
void stream_release(struct asyncio_stream *s);
/* A stream another object holds (a process's pipe): *slot is set to NULL
 * when the stream is closed (by anyone) or freed with the loop. */
void stream_set_owner_slot(struct asyncio_stream *s, struct asyncio_stream **slot);

/* fd moved to 3 or above, close-on-exec (fd itself if it is; -1 with errno
 * if fd is, or the move fails, fd closed): one the library makes while 0-2
 * are closed must not be taken for a standard fd, which a child's file
 * actions would overwrite (sigchld.c). */
int fd_above_stdio(int fd);

/* Child exits where there is no pidfd (sigchld.c; subprocess.c uses it).
 * Process-wide: a SIGCHLD handler, installed the first time a loop needs
 * it (again at a spawn that finds another disposition) and kept, which
 * passes every signal on to the disposition it replaced; and the table of
 * the fds it writes, one for each loop that has children to watch so
 * (SIGCHLD_LOOPS at most at once). Each loop keeps its own children and
 * checks them, by pid, after every SIGCHLD: never anyone else's. A loop's
 * watcher (its fd and slot) lives while it has such children. */
#define SIGCHLD_LOOPS 64
struct sigchld_child {
    struct dlist link;                       /* on its loop's list until forgotten */
    void (*check)(struct sigchld_child *c); /* a SIGCHLD came: reap if it ended */
};
/* Before a child of loop is spawned: make the loop's watcher (its fd
 * watched, a slot taken, the handler installed), unless it has one. 0,
 * -ENOMEM, -EMFILE (the fd), -EAGAIN (SIGCHLD_LOOPS loops watch already). */
int sigchld_prepare(struct loop *loop);
/* Check c after every SIGCHLD from now on (sigchld_prepare() done). */
void sigchld_watch(struct loop *loop, struct sigchld_child *c);
/* Stop checking c (reaped, or freed). Idempotent. The watcher goes once
 * it has no child left. */
void sigchld_forget(struct loop *loop, struct sigchld_child *c);
/* Free the loop's watcher if it has no child (a spawn that failed after
 * sigchld_prepare()). */
void sigchld_idle(struct loop *loop);

#endif
