/* Sending a file on a socket (loop.sock_sendfile; stream.c has the
 * stream's, loop.sendfile): sendfile(2) where the system has it, the
 * file's pages handed to the socket without a copy through user space;
 * else, and where it cannot be used (a TLS stream, a file the kernel cannot
 * splice), read and send, as asyncio falls back. The file's offset is never
 * moved (sendfile and pread with an offset), so several tasks may send
 * from one fd at once.
 *
 * The file is read in the loop's thread, as asyncio's and nginx's
 * sendfile do: from the page cache, at once; a file that is not cached,
 * on a slow disk, holds the loop for the read.
 *
 * sendfile() has no MSG_NOSIGNAL: SIGPIPE is blocked in the thread around
 * each run of calls that do not wait (net.h), so a peer that is gone is
 * -EPIPE, never the signal; unless the process ignores SIGPIPE, as servers
 * do, when the guard's system calls are spared. A short count means the
 * socket is full: the task waits, as nginx does. The task yields once it
 * moved SENDFILE_CHUNK without waiting (nginx's sendfile_max_chunk), so a
 * peer that reads as fast as the disk does cannot keep the loop to one
 * task; yielding after every call that moved more than the budget for
 * copied bytes (256 KiB) cost 2.5% more CPU per byte than nginx in
 * bench/net.sh's static row. */
#include "net.h"

#include <asyncio/net.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_SENDFILE
#include <sys/sendfile.h>
#endif

#define SENDFILE_CHUNK (2u << 20) /* bytes sent without a wait before the task yields */
/* The budget's unit for sendfile's bytes: SENDFILE_CHUNK is the whole
 * budget (net.h), where bytes copied through the program spend it in
 * 256 KiB. Charged so, a task that sends a file in pieces, each a call, is
 * held to SENDFILE_CHUNK between yields as one call is; charged as copied
 * bytes, it yielded before nearly every piece, a loop iteration each. */
#define SENDFILE_UNIT (SENDFILE_CHUNK / IO_BUDGET)
#define COPY_CHUNK 65536          /* the fallback's reads */

int net_sendfile_span(int file, off_t offset, size_t count, int flags, size_t *total)
{
    if (file < 0 || offset < 0 || (flags & ~ASYNCIO_SENDFILE_NO_FALLBACK))
        return file < 0 ? -EBADF : -EINVAL;
    if (count) {
        /* The first read (sendfile or pread at an offset) checks the file:
         * -ESPIPE for a pipe or socket, -EISDIR for a directory, before a
         * byte of it is sent. An fstat() here, once per call, cost 2% more
         * CPU per byte in bench/net.sh's static row, sent in 2 MiB calls. */
        *total = count;
        return 0;
    }
    /* To the end: as large as the file is now (a file that grows meanwhile
     * is sent as it was; one that shrinks, as far as it goes). */
    struct stat st;
    if (fstat(file, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode))
        return -EINVAL; /* its size is not st_size: ask for a count */
    if (!S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? -EISDIR : -ESPIPE; /* read at an offset, never waited for */
    *total = st.st_size > offset ? (size_t)(st.st_size - offset) : 0;
    return 0;
}

int net_sendfile_zero(struct task *t, const int *sockp, int file, off_t offset, size_t total,
                      size_t *sent)
{
#ifdef HAVE_SENDFILE
    /* Asked once a call: a signal ignored raises nothing (a program that
     * changes SIGPIPE's disposition while it sends files is on its own). */
    bool guard = !net_sigpipe_ignored();
    while (*sent < total) {
        /* Read again after every wait: a stream's closed meanwhile is -1
         * (its number may be another file's by now). */
        int sock = *sockp;
        if (sock < 0)
            return -EBADF;
        /* Moved since the task last waited or yielded, as the budget
         * counts it (what this call's net_begin() charged included). */
        size_t run = (size_t)t->io_streak * SENDFILE_UNIT;
        if (run >= SENDFILE_CHUNK) {
            t->io_streak = 0;
            int rc = asyncio_sleep(0);
            if (rc < 0)
                return rc;
            continue;
        }
        struct sigpipe_guard g;
        if (guard)
            net_sigpipe_block(&g);
        ssize_t r;
        size_t n;
        bool full = false;
        for (;;) {
            n = total - *sent < SENDFILE_CHUNK ? total - *sent : SENDFILE_CHUNK;
            if (n > SENDFILE_CHUNK - run)
                n = SENDFILE_CHUNK - run;
            off_t off = offset + (off_t)*sent;
            r = sendfile(sock, file, &off, n);
            if (r > 0) {
                *sent += (size_t)r;
                run += (size_t)r;
                full = (size_t)r < n;
                if (*sent == total || run >= SENDFILE_CHUNK || full)
                    break;
            } else if (r == 0 || errno != EINTR) {
                break;
            }
        }
        if (guard)
            net_sigpipe_unblock(&g, r, n);
        if (r == 0)
            return 0; /* the file ends short of total: what it had was sent */
        int rc = 0;
        if (r > 0 && *sent == total) {
            t->io_streak = (unsigned)(run / SENDFILE_UNIT);
        } else if (r > 0 && !full) {
            t->io_streak = IO_BUDGET; /* SENDFILE_CHUNK moved: yield above */
        } else if (r > 0) {
            /* Short: the socket's buffer is full (or the file ends, which
             * the next call finds). Calling again at once would find the
             * few KiB the peer read meanwhile: 6x the calls, and 2% more
             * CPU per byte than nginx, which waits here too. */
            rc = net_wait(t, sock, false);
        } else if (would_block(errno))
            rc = net_wait(t, sock, false);
        else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
            rc = *sent ? -errno : -ENOTSUP; /* the kernel cannot: fall back */
        else
            rc = -errno;
        if (rc < 0)
            return rc;
    }
    return 0;
#else
    (void)t, (void)sockp, (void)file, (void)offset, (void)total, (void)sent;
    return -ENOTSUP;
#endif
}

/* The fallback: read a chunk, send it all, again. */
static int copy_file(int sock, int file, off_t offset, size_t total, size_t *sent)
{
    size_t cap = total - *sent < COPY_CHUNK ? total - *sent : COPY_CHUNK;
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    while (*sent < total && rc == 0) {
        size_t n = total - *sent < cap ? total - *sent : cap;
        ssize_t r = pread(file, buf, n, offset + (off_t)*sent);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break; /* 0: the file ends short of total */
        }
        ssize_t w = asyncio_sock_sendall(sock, buf, (size_t)r);
        if (w < 0)
            rc = (int)w;
        else
            *sent += (size_t)r;
    }
    free(buf);
    return rc;
}

ssize_t asyncio_sock_sendfile(int sock, int file, off_t offset, size_t count, int flags)
{
    size_t total = 0, sent = 0;
    int rc = net_sendfile_span(file, offset, count, flags, &total);
    struct task *t;
    if (rc == 0)
        rc = net_begin(&t);
    if (rc < 0)
        return rc;
    rc = net_sendfile_zero(t, &sock, file, offset, total, &sent);
    if (rc == -ENOTSUP && !(flags & ASYNCIO_SENDFILE_NO_FALLBACK))
        rc = copy_file(sock, file, offset, total, &sent);
    return rc < 0 ? rc : (ssize_t)sent;
}
