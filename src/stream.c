/* Buffered streams: asyncio's StreamReader and StreamWriter over one fd,
 * on the loop's net subsystem (loop->net, see loop.h): the list of what is
 * left open at close, and the spare buffers streams share.
 *
 * Reading copies out of a buffer that exists only while it holds data:
 * before a read parks on an empty stream the buffer is freed, so idle
 * connections cost none. Large reads go straight into the caller's memory.
 * A read that came back short means the socket was drained (libuv's
 * heuristic): the next read waits for readiness first instead of paying
 * for a system call that would say EAGAIN.
 *
 * Writing queues; the queue goes out in one system call before the loop
 * next polls (struct prepoll), or before the stream's reader parks, and
 * whatever the socket cannot take is sent by a callback when it becomes
 * writable, with no task involved. A write to an empty queue is tried on
 * the socket first when it is DIRECT_WRITE bytes or more (the copy into
 * the queue of a large message costs more than a system call), or when the
 * stream has no input left to answer: a reply to
 * the last request sent at once, as asyncio's transports do. */
#include "net.h"

#include "clock.h"

#include <asyncio/stream.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define STREAM_MAGIC 0x5354524dU
#define BUF_FIRST 16384    /* first buffer of either side; they double as needed */
#define DIRECT_MIN 4096    /* reads of this much or more skip the buffer */
#define DIRECT_WRITE 4096  /* writes this large try the socket before queueing */
#define WBUF_KEEP 65536    /* a larger empty write buffer is given back */
#define LINGER_NS 5000000000ull /* a layer's close waits this long for the peer's end */

struct asyncio_stream {
    /* What a read, a write and a wait touch comes first, within 72 bytes. */
    uint32_t magic;
    int fd;
    unsigned refs;           /* the owner's, and one per call in progress */
    bool is_socket;          /* send(MSG_NOSIGNAL), else write() */
    bool is_file;            /* a regular file: never waits, cannot be polled */
    bool closing;            /* asyncio_stream_close() was called */
    bool eof;                /* the peer has finished sending */
    bool drained;            /* the last read came back short */
    bool shut_wanted;        /* write_eof(): shut once the queue is empty */
    bool shut_done;
    bool watching;           /* a writable callback is armed */
    bool sending;            /* in asyncio_stream_sendfile(): writes wait */
    uint8_t rwant;           /* what the layer's last recv waits for */
    uint8_t watched;         /* what the writable callback watches (POLLER_*) */
    int rerr, werr;          /* sticky errors of each direction */
    struct task *reader;     /* the task in a read call */
    char *rbuf;              /* unread bytes: rbuf[rpos, rpos + rlen) */
    size_t rlen;
    char *wbuf;              /* queued bytes: wbuf[wpos, wpos + wlen) */
    size_t wlen;
    struct task *drainer;    /* the task in drain() */
    struct task *closer;     /* the task in wait_closed() */
    size_t rcap, rpos, limit;
    size_t wcap, wpos, high, low;
    struct loop *loop;
    struct net_open open;    /* freed at loop close if still open */
    asyncio_stream_t **owner_slot; /* cleared at close (stream_set_owner_slot) */
    struct prepoll flush;    /* queued bytes go out before the next poll */
    /* A layer (TLS) between the stream and its fd, asyncio_stream_set_layer():
     * its state apart, so that a plain stream costs 48 bytes less (10,000
     * idle connections: 480 KB). */
    struct stream_layer *lx;
};

/* What a stream with a layer has more. It lives as long as the stream: the
 * layer goes at close, before the fd, and lingering comes after. */
struct stream_layer {
    const asyncio_stream_layer_ops_t *ops; /* NULL once the layer is freed */
    void *layer;
    asyncio_stream_t *s;
    unsigned watch_ev;       /* what the layer's last send waits for */
    bool notified;           /* the layer's shutdown (close_notify) is done */
    bool notify_sent;        /* ... and it sent something: linger at close */
    bool lingering;          /* closed, reading until the peer's end */
    struct ltimer linger;    /* the end of lingering */
};

/* Does s read and write through a layer now? */
#define LAYERED(s) ((s)->lx && (s)->lx->ops)

static void stream_flush(asyncio_stream_t *s);

static bool valid(const asyncio_stream_t *s)
{
    return s && s->magic == STREAM_MAGIC;
}

/* valid() for a call that reads, writes, waits or closes: 0, -EINVAL, or
 * in debug mode -EXDEV (reported) from a thread not the loop's (task.h). */
#define USABLE(s) (!valid(s) ? -EINVAL : loop_check_owner((s)->loop, __func__))

/* ---- lifetime ------------------------------------------------------------ */

/* Buffers of the first size come from the loop's spares and go back there:
 * a keep-alive connection gives its empty buffers back each time it waits,
 * and the next one to read or write takes them without malloc. */
static char *buf_get(struct loop *loop)
{
    struct loop_net *n = &loop->net;
    return n->nspare_bufs ? n->spare_bufs[--n->nspare_bufs] : malloc(BUF_FIRST);
}

static void buf_put(struct loop *loop, char *buf, size_t cap)
{
    int room = (int)(sizeof loop->net.spare_bufs / sizeof loop->net.spare_bufs[0]);
    if (cap == BUF_FIRST && loop->net.nspare_bufs < room)
        loop->net.spare_bufs[loop->net.nspare_bufs++] = buf;
    else
        free(buf);
}

static void drop_rbuf(asyncio_stream_t *s)
{
    buf_put(s->loop, s->rbuf, s->rcap);
    s->rbuf = NULL;
    s->rcap = s->rpos = s->rlen = 0;
}

static void drop_wbuf(asyncio_stream_t *s)
{
    buf_put(s->loop, s->wbuf, s->wcap);
    s->wbuf = NULL;
    s->wcap = s->wpos = s->wlen = 0;
}

static void free_buffers(asyncio_stream_t *s)
{
    drop_rbuf(s);
    drop_wbuf(s);
}

/* Tell the owner's slot the stream is no longer its to use. */
static void disown(asyncio_stream_t *s)
{
    if (s->owner_slot) {
        *s->owner_slot = NULL;
        s->owner_slot = NULL;
    }
}

void stream_set_owner_slot(asyncio_stream_t *s, asyncio_stream_t **slot)
{
    s->owner_slot = slot;
}

/* The layer goes before the fd: it may still hold what it was sending. */
static void free_layer(asyncio_stream_t *s)
{
    if (LAYERED(s)) {
        const asyncio_stream_layer_ops_t *ops = s->lx->ops;
        s->lx->ops = NULL;
        ops->free(s->lx->layer);
        s->lx->layer = NULL;
    }
}

static void stream_free(asyncio_stream_t *s)
{
    free_layer(s);
    disown(s);
    dlist_remove(&s->open.link);
    loop_prepoll_cancel(&s->flush);
    free_buffers(s);
    free(s->lx);
    s->magic = 0;
    free(s);
}

static void stream_free_at_close(struct net_open *o)
{
    asyncio_stream_t *s = container_of(o, asyncio_stream_t, open);
    free_layer(s);
    if (s->lx)
        loop_timer_cancel(s->loop, &s->lx->linger);
    if (s->fd >= 0)
        close(s->fd);
    stream_free(s);
}

static void hold(asyncio_stream_t *s)
{
    s->refs++;
}

static void put(asyncio_stream_t *s)
{
    if (--s->refs == 0 && s->fd < 0)
        stream_free(s);
}

static void finish_close(asyncio_stream_t *s);

/* Read and drop what the peer sends: true at its end (or an error), false
 * once nothing more is there for now. */
static bool linger_drain(asyncio_stream_t *s)
{
    char buf[1024];
    for (;;) {
        ssize_t r = recv(s->fd, buf, sizeof buf, 0);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return !(r < 0 && would_block(errno));
    }
}

static void on_linger_input(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    asyncio_stream_t *s = arg;
    if (linger_drain(s))
        finish_close(s);
}

static void on_linger_end(struct loop *loop, struct ltimer *lt)
{
    (void)loop;
    finish_close(container_of(lt, struct stream_layer, linger)->s);
}

/* A layer that sent its end (TLS's close_notify) at close: the peer may
 * still be sending (TLS 1.3's session tickets that a client which only
 * wrote never read, its own close_notify), and a close with unread input
 * makes the kernel reset the connection, which throws away whatever the
 * peer had not read yet: all that was sent, perhaps. So the sending side
 * is shut, and input read and dropped until the peer's end, for
 * LINGER_NS at most, before the fd is closed (Python's SSL transports wait
 * for the peer's close_notify so, within ssl_shutdown_timeout). True if
 * the stream lingers now; false to close at once. */
static bool linger_start(asyncio_stream_t *s)
{
    if (shutdown(s->fd, SHUT_WR) < 0 || linger_drain(s))
        return false;
    struct stream_layer *lx = s->lx;
    lx->linger.t.when = clock_now_ns() + LINGER_NS;
    lx->linger.fire = on_linger_end;
    if (loop_timer_add(s->loop, &lx->linger) < 0)
        return false;
    if (io_watch(s->loop, s->fd, POLLER_IN, on_linger_input, s) < 0) {
        loop_timer_cancel(s->loop, &lx->linger);
        return false;
    }
    lx->lingering = true;
    return true;
}

/* The end of a close: the queue is sent (or failed), so the fd goes. */
static void finish_close(asyncio_stream_t *s)
{
    bool linger = LAYERED(s) && s->lx->notify_sent && !s->werr && s->fd >= 0 && !s->lx->lingering;
    free_layer(s);
    if (linger && linger_start(s))
        return; /* finish_close() again at the peer's end */
    if (s->lx && s->lx->lingering) {
        loop_timer_cancel(s->loop, &s->lx->linger);
        s->lx->lingering = false;
    }
    if (s->fd >= 0) {
        asyncio_close(s->fd); /* wakes whoever still waits on it */
        s->fd = -1;
    }
    loop_prepoll_cancel(&s->flush);
    free_buffers(s);
    s->watching = false;
    if (s->closer)
        task_wake(s->closer, 0);
    if (s->drainer)
        task_wake(s->drainer, -EBADF);
    if (s->refs == 0)
        stream_free(s);
}

static void run_flush(struct loop *loop, struct prepoll *p)
{
    (void)loop;
    stream_flush(container_of(p, asyncio_stream_t, flush));
}

int asyncio_stream_open(asyncio_stream_t **out, int fd, size_t limit)
{
    struct loop *loop = loop_current();
    if (!loop)
        return -EPERM;
    if (!out)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int rc = net_prepare_fd(fd);
    if (rc < 0)
        return rc;
    asyncio_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    /* What fd is, from fstat (which cannot fail on an open fd), not from a
     * getsockopt that may (ENOBUFS, ENOMEM): a socket taken for a pipe
     * would lose its half-close (-ENOTSOCK) and MSG_NOSIGNAL. */
    struct stat st;
    bool st_ok = fstat(fd, &st) == 0;
    s->is_socket = st_ok && S_ISSOCK(st.st_mode);
    s->is_file = st_ok && S_ISREG(st.st_mode);
    s->loop = loop;
    s->magic = STREAM_MAGIC;
    s->fd = fd;
    s->refs = 1;
    s->limit = limit ? limit : ASYNCIO_STREAM_LIMIT;
    s->high = ASYNCIO_STREAM_HIGH_WATER;
    s->low = ASYNCIO_STREAM_LOW_WATER;
    s->flush.run = run_flush;
    s->lx = NULL;
    s->open.free_at_close = stream_free_at_close;
    dlist_push_back(&loop->net.open, &s->open.link);
    *out = s;
    return 0;
}

int asyncio_stream_fd(const asyncio_stream_t *s)
{
    return valid(s) && !s->closing && s->fd >= 0 ? s->fd : -EBADF;
}

void stream_retain(asyncio_stream_t *s)
{
    hold(s);
}

void stream_release(asyncio_stream_t *s)
{
    put(s);
}

/* ---- reading ------------------------------------------------------------- */

/* Begin a read call into buf (n bytes): holds s and makes t its reader. */
#define read_begin(s, buf, n, t) read_begin_((s), (buf), (n), (t), __func__)
static ALWAYS_INLINE int read_begin_(asyncio_stream_t *s, const void *buf, size_t n, struct task **t,
                                     const char *call)
{
    if (!valid(s) || (!buf && n))
        return -EINVAL;
    int bad = loop_check_owner(s->loop, call);
    if (bad)
        return bad;
    if (s->closing)
        return -EBADF; /* GCOVR_EXCL_LINE: only a call after close or abort, which stream.h forbids: a guard for a stream still held */
    hold(s); /* net_begin() may yield, and another task close s */
    int rc = net_begin(t);
    if (rc == 0 && s->closing)
        rc = -EBADF;
    if (rc == 0 && s->reader)
        rc = -EBUSY;
    if (rc < 0) {
        put(s);
        return rc;
    }
    s->reader = *t;
    return 0;
}

static ssize_t read_end(asyncio_stream_t *s, ssize_t rc)
{
    s->reader = NULL;
    put(s);
    return rc;
}

/* Wait until the fd is readable: first send what is queued (the reply to
 * what was read, likely), and give back an empty buffer. */
static ALWAYS_INLINE int wait_input(asyncio_stream_t *s, struct task *t)
{
    /* An empty queue has nothing left to do: a close, a drainer, a
     * write_eof() and the writable callback all settled as it emptied. */
    if (s->wlen) {
        stream_flush(s);
        if (s->rerr) /* the send failed: nothing more will come */
            return s->rerr;
    }
    if (s->rlen == 0 && s->rbuf)
        drop_rbuf(s);
    if (s->wlen == 0 && s->wbuf) /* nor an empty write queue's */
        drop_wbuf(s);
    s->drained = false;
    bool readable = s->rwant != ASYNCIO_LAYER_WANT_WRITE; /* TLS may write to read */
    s->rwant = 0;
    int rc = s->fd < 0 ? -EBADF : net_wait(t, s->fd, readable);
    return rc == 0 && s->closing ? -EBADF : rc;
}

/* read_once() through the layer. */
static ssize_t __attribute__((noinline)) layer_read(asyncio_stream_t *s, void *buf, size_t n)
{
    int want = 0;
    ssize_t r = s->lx->ops->recv(s->lx->layer, buf, n, &want);
    /* A send or shutdown waiting for input the layer needed: this read may
     * have taken it, and then the fd's readiness will not say so (a
     * reader's wait takes precedence over the watch): try again before the
     * next poll. */
    if (s->watching && s->watched == POLLER_IN)
        loop_prepoll(s->loop, &s->flush);
    if (r > 0) {
        /* Short, and nothing more within the layer: the socket is drained
         * too, likely (the layer reads ahead as much as there is). */
        s->drained = (size_t)r < n && !s->lx->ops->pending(s->lx->layer);
        net_charge(s->reader, (size_t)r);
        return r;
    }
    if (r == 0) {
        s->eof = true;
        return 0;
    }
    if (r == -EAGAIN) {
        s->rwant = (uint8_t)want;
        return -EAGAIN;
    }
    return s->rerr = (int)r;
}

/* One read(2) into buf: bytes, 0 at end (noted), -EAGAIN, or the error
 * (kept: reads after it fail the same way). */
static ALWAYS_INLINE ssize_t read_once(asyncio_stream_t *s, void *buf, size_t n)
{
    if (s->eof)
        return 0;
    if (s->rerr)
        return s->rerr;
    if (s->drained)
        return -EAGAIN;
    if (LAYERED(s))
        return layer_read(s, buf, n);
    for (;;) {
        /* recv(2) and send(2) take a shorter path through the kernel than
         * read(2) and sendmsg(2): measurable at one call per message. */
        ssize_t r = s->is_socket ? recv(s->fd, buf, n, 0) : read(s->fd, buf, n);
        if (r > 0) {
            s->drained = (size_t)r < n && !s->is_file; /* epoll refuses files */
            net_charge(s->reader, (size_t)r);
            return r;
        }
        if (r == 0) {
            s->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (would_block(errno))
            return -EAGAIN;
        return s->rerr = -errno;
    }
}

/* Room at the end of the buffer for more input: how much (0 if the buffer
 * holds the limit), or -ENOMEM. */
static ssize_t make_room(asyncio_stream_t *s)
{
    if (s->rlen >= s->limit)
        return 0;
    size_t want = s->limit - s->rlen;
    size_t tail = s->rcap - s->rpos - s->rlen;
    if (!s->rbuf || (tail < want && (tail == 0 || tail < s->rcap / 4))) {
        if (s->rpos && s->rlen) /* slide what is left to the front */
            memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
        if (!s->rbuf && s->limit >= BUF_FIRST) {
            if (!(s->rbuf = buf_get(s->loop)))
                return -ENOMEM;
            s->rcap = BUF_FIRST;
        } else if (!s->rbuf || s->rcap == s->rlen || s->rcap - s->rlen < s->rcap / 4) {
            /* Full (a buffer of fewer than 4 bytes, allocated under a limit
             * that small, has rcap / 4 == 0) or nearly full: grow it. */
            size_t cap = s->rcap ? s->rcap * 2 : BUF_FIRST;
            if (cap > s->limit)
                cap = s->limit;
            if (cap < s->rlen + 1)
                cap = s->rlen + 1;
            char *b = realloc(s->rbuf, cap);
            if (!b)
                return -ENOMEM;
            s->rbuf = b;
            s->rcap = cap;
        }
    }
    size_t room = s->rcap - s->rpos - s->rlen;
    return (ssize_t)(room < want ? room : want);
}

/* Add what one read(2) brings to the buffer: as read_once(), and -ENOBUFS
 * when the buffer holds the limit. */
static ssize_t fill_once(asyncio_stream_t *s)
{
    ssize_t room = make_room(s);
    if (room <= 0)
        return room < 0 ? room : -ENOBUFS;
    ssize_t r = read_once(s, s->rbuf + s->rpos + s->rlen, (size_t)room);
    if (r > 0)
        s->rlen += (size_t)r;
    return r;
}

static void take(asyncio_stream_t *s, void *buf, size_t n)
{
    if (!n)
        return; /* buf and rbuf may be NULL: memcpy must not see them */
    memcpy(buf, s->rbuf + s->rpos, n);
    s->rpos += n;
    s->rlen -= n;
    if (!s->rlen)
        s->rpos = 0;
}

ssize_t asyncio_stream_read(asyncio_stream_t *s, void *buf, size_t n)
{
    struct task *t;
    int rc = read_begin(s, buf, n, &t);
    if (rc < 0)
        return rc;
    ssize_t r;
    for (;;) {
        if (s->rlen || !n) {
            r = (ssize_t)(n < s->rlen ? n : s->rlen);
            take(s, buf, (size_t)r);
            break;
        }
        r = n >= DIRECT_MIN ? read_once(s, buf, n) : fill_once(s);
        if (r == -EAGAIN)
            r = wait_input(s, t);
        else if (r <= 0 || n >= DIRECT_MIN)
            break;
        if (r < 0)
            break;
    }
    return read_end(s, r);
}

/* Put n bytes back in front of the buffer (a readexactly() that did not
 * finish): 0 or -ENOMEM. */
static int unread(asyncio_stream_t *s, const void *buf, size_t n)
{
    if (!n)
        return 0;
    if (s->rpos < n) {
        size_t cap = n + s->rlen;
        char *b = malloc(cap > BUF_FIRST ? cap : BUF_FIRST);
        if (!b)
            return -ENOMEM;
        if (s->rlen)
            memcpy(b + n, s->rbuf + s->rpos, s->rlen); /* GCOVR_EXCL_LINE: readexactly() unreads only with the buffer empty (it takes what is buffered before it reads) */
        free(s->rbuf);
        s->rbuf = b;
        s->rcap = cap > BUF_FIRST ? cap : BUF_FIRST;
        s->rpos = n;
    }
    s->rpos -= n;
    s->rlen += n;
    memcpy(s->rbuf + s->rpos, buf, n);
    return 0;
}

ssize_t asyncio_stream_readexactly(asyncio_stream_t *s, void *buf, size_t n)
{
    struct task *t;
    int rc = read_begin(s, buf, n, &t);
    if (rc < 0)
        return rc;
    char *p = buf;
    size_t got = 0;
    ssize_t r = 0;
    while (got < n) {
        if (s->rlen) {
            size_t k = n - got < s->rlen ? n - got : s->rlen;
            take(s, p + got, k);
            got += k;
            continue;
        }
        r = n - got >= DIRECT_MIN ? read_once(s, p + got, n - got) : fill_once(s);
        if (r == -EAGAIN)
            r = wait_input(s, t);
        else if (r > 0 && n - got >= DIRECT_MIN)
            got += (size_t)r;
        if (r < 0 || (r == 0 && s->eof))
            break;
    }
    if (r < 0) {
        /* Nothing is lost: the next read finds what this one had. */
        int err = unread(s, buf, got);
        return read_end(s, err < 0 ? err : r);
    }
    return read_end(s, (ssize_t)got);
}

/* Where sep first occurs in hay, or NULL. */
static const char *find(const char *hay, size_t n, const char *sep, size_t seplen)
{
    while (n >= seplen) {
        const char *c = memchr(hay, sep[0], n - seplen + 1);
        if (!c)
            return NULL;
        if (memcmp(c, sep, seplen) == 0)
            return c;
        n -= (size_t)(c + 1 - hay);
        hay = c + 1;
    }
    return NULL;
}

ssize_t asyncio_stream_readuntil(asyncio_stream_t *s, const void *sep, size_t seplen, void *buf,
                                 size_t cap)
{
    if (!sep || !seplen)
        return -EINVAL;
    struct task *t;
    int rc = read_begin(s, buf, cap, &t);
    if (rc < 0)
        return rc;
    size_t from = 0; /* where the separator may start: before is searched */
    ssize_t r;
    for (;;) {
        const char *data = s->rbuf ? s->rbuf + s->rpos : NULL; /* NULL + 0 is UB */
        const char *hit = s->rlen > from ? find(data + from, s->rlen - from, sep, seplen) : NULL;
        if (hit) {
            size_t len = (size_t)(hit - data) + seplen;
            r = len > s->limit ? -ENOBUFS : len > cap ? -EMSGSIZE : (ssize_t)len;
            break;
        }
        from = s->rlen >= seplen ? s->rlen - seplen + 1 : 0;
        if (s->rlen >= s->limit) {
            r = -ENOBUFS;
            break;
        }
        r = fill_once(s);
        if (r == -EAGAIN)
            r = wait_input(s, t);
        if (r == 0 && s->eof) /* the end: what is left, without separator */
            r = s->rlen > cap ? -EMSGSIZE : (ssize_t)s->rlen;
        if (r < 0 || s->eof)
            break;
    }
    if (r > 0)
        take(s, buf, (size_t)r);
    return read_end(s, r);
}

ssize_t asyncio_stream_readline(asyncio_stream_t *s, void *buf, size_t cap)
{
    return asyncio_stream_readuntil(s, "\n", 1, buf, cap);
}

int asyncio_stream_at_eof(const asyncio_stream_t *s)
{
    return valid(s) && s->eof && !s->rlen;
}

size_t asyncio_stream_peek(const asyncio_stream_t *s, const void **data)
{
    if (!valid(s)) {
        if (data)
            *data = NULL;
        return 0;
    }
    if (data)
        *data = s->rbuf ? s->rbuf + s->rpos : NULL;
    return s->rlen;
}

ssize_t asyncio_stream_fill(asyncio_stream_t *s)
{
    struct task *t;
    int rc = read_begin(s, NULL, 0, &t);
    if (rc < 0)
        return rc;
    ssize_t r;
    while ((r = fill_once(s)) == -EAGAIN)
        if ((r = wait_input(s, t)) < 0)
            break;
    return read_end(s, r);
}

int asyncio_stream_consume(asyncio_stream_t *s, size_t n)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    if (n > s->rlen)
        return -EINVAL;
    s->rpos += n;
    s->rlen -= n;
    if (!s->rlen)
        s->rpos = 0;
    return 0;
}

int asyncio_stream_set_limit(asyncio_stream_t *s, size_t limit)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    if (!limit)
        limit = ASYNCIO_STREAM_LIMIT;
    if (s->rlen > limit)
        return -EINVAL;
    s->limit = limit;
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

static void on_writable(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    stream_flush(arg);
}

/* writev() to a pipe whose reader is gone raises SIGPIPE, which ends the
 * program unless it ignores the signal (send() has MSG_NOSIGNAL, write()
 * nothing alike): the signal is blocked around the call (net.h). So is a
 * socket's where the system has neither MSG_NOSIGNAL nor SO_NOSIGPIPE. */
static ssize_t writev_nosigpipe(int fd, const struct iovec *iov, int iovcnt)
{
    struct sigpipe_guard g;
    net_sigpipe_block(&g);
    ssize_t r = writev(fd, iov, iovcnt);
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    net_sigpipe_unblock(&g, r, want);
    return r;
}

/* send_some() through the layer: bytes taken, -EAGAIN (s->lx->watch_ev says
 * for what), or the error. */
static ssize_t __attribute__((noinline))
layer_send(asyncio_stream_t *s, const struct iovec *iov, int iovcnt)
{
    int want = 0;
    ssize_t r = s->lx->ops->send(s->lx->layer, iov, iovcnt, &want);
    if (r == -EAGAIN)
        s->lx->watch_ev = want == ASYNCIO_LAYER_WANT_READ ? POLLER_IN : POLLER_OUT;
    return r;
}

static ssize_t send_some(asyncio_stream_t *s, const struct iovec *iov, int iovcnt)
{
    if (LAYERED(s))
        return layer_send(s, iov, iovcnt);
    for (;;) {
        ssize_t r;
        if (s->is_socket && iovcnt == 1 && !NET_SIGPIPE_BLOCK) {
            r = send(s->fd, iov[0].iov_base, iov[0].iov_len, NET_MSG_NOSIGNAL);
        } else if (s->is_socket && !NET_SIGPIPE_BLOCK) {
            struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt};
            r = sendmsg(s->fd, &m, NET_MSG_NOSIGNAL);
        } else if (s->is_file) {
            r = writev(s->fd, iov, iovcnt); /* no SIGPIPE from a file: no mask to change */
        } else {
            r = writev_nosigpipe(s->fd, iov, iovcnt);
        }
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return would_block(errno) ? -EAGAIN : -errno;
    }
}

/* What is queued will not be sent: the queue is dropped, the error kept. */
static void write_failed(asyncio_stream_t *s, int err)
{
    s->werr = err;
    s->wlen = s->wpos = 0;
}

/* The socket refused what was sent (-EPIPE, -ECONNRESET, ...): the
 * connection is over, as in asyncio (a transport's fatal error ends it).
 * Reading ends too, once what is buffered has been read, and a reader
 * waiting now wakes with the error. */
static void send_failed(asyncio_stream_t *s, int err)
{
    write_failed(s, err);
    if (!s->rerr && !s->eof) {
        s->rerr = err;
        if (s->reader)
            task_wake(s->reader, err); /* if it is parked */
    }
}

/* Call stream_flush() again once the fd is ready for ev (output, or input
 * for a layer that must read to write). */
static void watch(asyncio_stream_t *s, unsigned ev)
{
    if (s->watching && s->watched == ev)
        return;
    int rc = io_watch(s->loop, s->fd, ev, on_writable, s);
    if (rc < 0) {
        write_failed(s, rc);
    } else {
        s->watching = true;
        s->watched = (uint8_t)ev;
    }
}

/* The layer's end of sending (TLS's close_notify), once the queue is empty,
 * for write_eof() and close(): true when done (or failed: a close goes on
 * without it, a write_eof() keeps the error), false while it waits for the
 * fd (watched). */
static bool __attribute__((noinline)) layer_shutdown(asyncio_stream_t *s)
{
    int want = 0;
    int rc = s->lx->ops->shutdown(s->lx->layer, &want);
    if (rc == -EAGAIN) {
        watch(s, want == ASYNCIO_LAYER_WANT_READ ? POLLER_IN : POLLER_OUT);
        return s->werr != 0; /* the watch failed: give up on it */
    }
    s->lx->notified = true;
    s->lx->notify_sent = rc == 0;
    if (rc < 0 && !s->closing)
        s->werr = rc;
    return true;
}

/* Send what is queued, as much as the socket takes; arm the writable
 * callback for the rest. Wakes a drainer, and ends a close, as due. */
static void stream_flush(asyncio_stream_t *s)
{
    if (s->fd < 0)
        return;
    while (s->wlen && !s->werr) {
        struct iovec v = {s->wbuf + s->wpos, s->wlen};
        ssize_t r = send_some(s, &v, 1);
        if (r == -EAGAIN) {
            /* a plain socket waits for output; a layer says what (layer_send) */
            watch(s, LAYERED(s) ? s->lx->watch_ev : POLLER_OUT);
            break;
        }
        if (r < 0) {
            send_failed(s, (int)r);
            break;
        }
        s->wpos += (size_t)r;
        s->wlen -= (size_t)r;
    }
    bool sent = !s->wlen;
    if (!s->wlen) {
        s->wpos = 0;
        loop_prepoll_cancel(&s->flush); /* sent already: nothing left for it */
        if (s->wcap > WBUF_KEEP)
            drop_wbuf(s);
        if (LAYERED(s) && !s->lx->notified && !s->werr && (s->shut_wanted || s->closing))
            sent = layer_shutdown(s);
        if (s->watching && sent) {
            io_watch(s->loop, s->fd, 0, NULL, NULL);
            s->watching = false;
        }
        if (s->shut_wanted && !s->shut_done && !s->werr && sent) {
            s->shut_done = true;
            if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN && errno != ENOTSOCK)
                s->werr = -errno; /* GCOVR_EXCL_LINE: on an open socket shutdown() fails only with ENOTCONN */
        }
    }
    if (s->drainer && (s->wlen <= s->low || s->werr))
        task_wake(s->drainer, 0);
    if (s->closing && sent)
        finish_close(s); /* last: it may free s */
}

/* Can bytes be queued now? 0 or why not. */
#define write_check(s) write_check_((s), __func__)
static int write_check_(const asyncio_stream_t *s, const char *call)
{
    if (!valid(s))
        return -EINVAL;
    int bad = loop_check_owner(s->loop, call);
    if (bad)
        return bad;
    if (s->closing || s->fd < 0)
        return -EBADF; /* GCOVR_EXCL_LINE: only a call after close or abort, which stream.h forbids: a guard for a stream still held */
    if (s->werr)
        return s->werr;
    if (s->sending)
        return -EBUSY;
    return s->shut_wanted ? -EPIPE : 0;
}

/* Room in the write queue for n more bytes after what is queued: 0, or
 * -ENOMEM. */
static int queue_room(asyncio_stream_t *s, size_t n)
{
    size_t need = s->wlen + n;
    if (s->wpos + need > s->wcap) {
        if (s->wpos && s->wlen)
            memmove(s->wbuf, s->wbuf + s->wpos, s->wlen);
        s->wpos = 0;
        if (!s->wbuf && need <= BUF_FIRST) {
            if (!(s->wbuf = buf_get(s->loop)))
                return -ENOMEM;
            s->wcap = BUF_FIRST;
        } else if (need > s->wcap) {
            size_t cap = s->wcap ? s->wcap * 2 : BUF_FIRST;
            while (cap < need)
                cap *= 2;
            char *b = realloc(s->wbuf, cap);
            if (!b)
                return -ENOMEM;
            s->wbuf = b;
            s->wcap = cap;
        }
    }
    return 0;
}

/* n bytes were added to the queue: send them now past the high water mark
 * (a task that writes to other streams while its own input keeps coming
 * may not poll for a while), else before the next poll. */
static void queued(asyncio_stream_t *s, size_t n)
{
    s->wlen += n;
    if (s->watching)
        return; /* the writable callback sends it */
    if (s->wlen > s->high)
        stream_flush(s);
    else
        loop_prepoll(s->loop, &s->flush);
}

static int queue_bytes(asyncio_stream_t *s, const struct iovec *iov, int iovcnt, size_t skip,
                       size_t total)
{
    size_t n = total - skip;
    int rc = queue_room(s, n);
    if (rc < 0)
        return rc;
    char *dst = s->wbuf + s->wpos + s->wlen;
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(dst, (const char *)iov[i].iov_base + skip, len - skip);
        dst += len - skip;
        skip = 0;
    }
    queued(s, n);
    return 0;
}

int asyncio_stream_writev(asyncio_stream_t *s, const struct iovec *iov, int iovcnt)
{
    int rc = write_check(s);
    if (rc < 0)
        return rc;
    if (iovcnt < 0 || (!iov && iovcnt))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (!total)
        return 0;
    size_t sent = 0;
    /* Nothing queued, and large, or the answer to all the input there was
     * (none buffered, the last read came back short: the task will likely
     * wait next, and the queue would go out then): send now, sparing the
     * copy into the queue. Small writes to a stream with input pending
     * queue, and leave together. */
    if (!s->wlen && iovcnt <= 64 && (total >= DIRECT_WRITE || (s->drained && !s->rlen))) {
        ssize_t r = send_some(s, iov, iovcnt);
        if (r < 0 && r != -EAGAIN) {
            send_failed(s, (int)r);
            return (int)r;
        }
        if (r > 0) {
            sent = (size_t)r;
            if (s->loop->current)
                net_charge(s->loop->current, sent);
        }
        if (sent == total)
            return 0;
    }
    return queue_bytes(s, iov, iovcnt, sent, total);
}

int asyncio_stream_write(asyncio_stream_t *s, const void *buf, size_t n)
{
    if (!buf && n)
        return -EINVAL;
    struct iovec v = {(void *)buf, n};
    return asyncio_stream_writev(s, &v, 1);
}

int asyncio_stream_drain(asyncio_stream_t *s)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    if (s->closing)
        return -EBADF; /* GCOVR_EXCL_LINE: only a call after close or abort, which stream.h forbids: a guard for a stream still held */
    if (s->sending)
        return -EBUSY;
    struct task *t;
    hold(s);
    int rc = net_begin(&t); /* counts as a call: a writer must yield too */
    if (rc == 0 && s->wlen > s->high && !s->closing)
        stream_flush(s);
    if (rc == 0 && (s->closing || s->fd < 0))
        rc = -EBADF;
    if (rc < 0 || s->werr || s->wlen <= s->high) {
        rc = rc < 0 ? rc : s->werr;
        put(s);
        return rc;
    }
    rc = task_begin_wait_on(&t, "stream drain");
    if (rc == 0 && s->drainer)
        rc = -EBUSY;
    if (rc < 0) {
        put(s);
        return rc;
    }
    s->drainer = t;
    while (!rc && s->wlen > s->low && !s->werr && s->fd >= 0)
        rc = task_park_until(t, UINT64_MAX, 0);
    s->drainer = NULL;
    if (!rc)
        rc = s->werr ? s->werr : s->fd < 0 ? -EBADF : 0;
    put(s);
    return rc;
}

/* ---- sending a file ------------------------------------------------------ */

#define SENDFILE_MIN 16384  /* a smaller file is read into the queue */
#define SENDFILE_READ 65536 /* what reading into the queue takes at a time */

/* Wait until no more than limit bytes are queued: 0 or the error. */
static int wait_queue(asyncio_stream_t *s, struct task *t, size_t limit)
{
    if (s->wlen > limit && !s->werr)
        stream_flush(s);
    int rc = 0;
    if (s->wlen > limit && !s->werr && s->fd >= 0 &&
        (rc = task_begin_wait_on(&t, "stream sendfile")) == 0) {
        s->drainer = t;
        while (!rc && s->wlen > limit && !s->werr && s->fd >= 0)
            rc = task_park_until(t, UINT64_MAX, 0);
        s->drainer = NULL;
    }
    return rc ? rc : s->werr ? s->werr : s->fd < 0 ? -EBADF : 0;
}

/* Read [offset + *sent, offset + total) of file into the queue, waiting
 * for it to drain to the low water mark whenever it passes the high one. */
static int read_into_queue(asyncio_stream_t *s, struct task *t, int file, off_t offset,
                           size_t total, size_t *sent)
{
    while (*sent < total) {
        size_t n = total - *sent < SENDFILE_READ ? total - *sent : SENDFILE_READ;
        int rc = queue_room(s, n);
        if (rc < 0)
            return rc;
        ssize_t r = pread(file, s->wbuf + s->wpos + s->wlen, n, offset + (off_t)*sent);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : 0; /* 0: the file ends short of total */
        *sent += (size_t)r;
        queued(s, (size_t)r);
        net_charge(t, (size_t)r);
        rc = s->wlen > s->high ? wait_queue(s, t, s->low) : s->werr;
        if (rc == 0 && t->io_streak >= IO_BUDGET) {
            t->io_streak = 0;
            rc = asyncio_sleep(0);
        }
        if (rc == 0 && (s->closing || s->fd < 0))
            rc = -EBADF; /* closed by another task while this one waited */
        if (rc < 0)
            return rc;
    }
    return 0;
}

ssize_t asyncio_stream_sendfile(asyncio_stream_t *s, int file, off_t offset, size_t count,
                                int flags)
{
    int rc = write_check(s);
    size_t total = 0, sent = 0;
    if (rc == 0 && s->drainer)
        rc = -EBUSY;
    if (rc == 0)
        rc = net_sendfile_span(file, offset, count, flags, &total);
    if (rc < 0)
        return rc;
    struct task *t;
    hold(s);
    rc = net_begin(&t); /* may yield: check again after it */
    if (rc == 0)
        rc = write_check(s);
    if (rc == 0 && s->drainer)
        rc = -EBUSY;
#ifdef HAVE_SENDFILE
    bool zero_copy = !LAYERED(s) && !s->is_file;
#else
    bool zero_copy = false;
#endif
    if (rc == 0 && !zero_copy && (flags & ASYNCIO_SENDFILE_NO_FALLBACK))
        rc = -ENOTSUP;
    if (rc < 0) {
        put(s);
        return rc;
    }
    if (total < SENDFILE_MIN && !(flags & ASYNCIO_SENDFILE_NO_FALLBACK))
        zero_copy = false; /* a copy costs less than a sendfile call (and a SIGPIPE guard) */
    s->sending = true;
    if (zero_copy) {
        rc = wait_queue(s, t, 0);
        if (rc == 0 && s->closing)
            rc = -EBADF;
        if (rc == 0)
            rc = net_sendfile_zero(t, &s->fd, file, offset, total, &sent);
        if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
            send_failed(s, rc);
        zero_copy = rc != -ENOTSUP || (flags & ASYNCIO_SENDFILE_NO_FALLBACK);
    }
    if (!zero_copy) {
        rc = read_into_queue(s, t, file, offset, total, &sent);
        if (rc == 0 && s->wlen > s->high)
            rc = wait_queue(s, t, s->low);
    }
    s->sending = false;
    put(s);
    return rc < 0 ? rc : (ssize_t)sent;
}

int asyncio_stream_set_write_buffer_limits(asyncio_stream_t *s, size_t high, size_t low)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    if (!high && !low) {
        high = ASYNCIO_STREAM_HIGH_WATER;
        low = ASYNCIO_STREAM_LOW_WATER;
    } else if (!low) {
        low = high / 4;
    }
    if (low > high)
        return -EINVAL;
    s->high = high;
    s->low = low;
    return 0;
}

size_t asyncio_stream_write_buffer_size(const asyncio_stream_t *s)
{
    return valid(s) ? s->wlen : 0;
}

int asyncio_stream_write_eof(asyncio_stream_t *s)
{
    if (valid(s) && !s->is_socket)
        return -ENOTSOCK; /* a pipe has no half-close: close it */
    int rc = write_check(s);
    if (rc < 0)
        return rc == -EPIPE ? 0 : rc; /* twice is harmless */
    s->shut_wanted = true;
    if (!s->wlen)
        stream_flush(s);
    return s->werr;
}

/* ---- closing ------------------------------------------------------------- */

int asyncio_stream_close(asyncio_stream_t *s)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    if (s->closing)
        return 0;
    s->closing = true;
    disown(s);
    if (s->fd >= 0)
        io_wake_waiters(s->loop, s->fd, -EBADF);
    if (s->drainer)
        task_wake(s->drainer, -EBADF);
    stream_flush(s); /* ends the close at once if nothing is queued */
    put(s);          /* the owner's reference */
    return 0;
}

int asyncio_stream_abort(asyncio_stream_t *s)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    if (s->closing)
        return 0; /* GCOVR_EXCL_LINE: only a call after close or abort, which stream.h forbids: a guard for a stream still held */
    if (s->fd >= 0 && s->is_socket) { /* the close resets the connection */
        struct linger now = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    }
    write_failed(s, -ECONNABORTED); /* drop the queue: the close is at once */
    return asyncio_stream_close(s);
}

int asyncio_stream_wait_closed(asyncio_stream_t *s)
{
    int bad = USABLE(s);
    if (bad)
        return bad;
    struct task *t;
    int rc = task_begin_wait_on(&t, "stream close");
    hold(s);
    if (rc < 0 && rc != -EPERM)
        write_failed(s, rc); /* no waiting: drop the queue, close now */
    asyncio_stream_close(s);
    while (!rc && s->fd >= 0 && !s->closer) {
        s->closer = t;
        rc = task_park_until(t, UINT64_MAX, 0);
        s->closer = NULL;
    }
    if (rc < 0 && rc != -EPERM && s->fd >= 0) {
        write_failed(s, rc);
        finish_close(s);
    }
    if (!rc)
        rc = s->werr;
    put(s);
    return rc;
}

/* ---- layers -------------------------------------------------------------- */

int asyncio_stream_set_layer(asyncio_stream_t *s, const asyncio_stream_layer_ops_t *ops,
                             void *layer)
{
    if (!valid(s) || !ops || !ops->recv || !ops->send || !ops->shutdown || !ops->pending ||
        !ops->free)
        return -EINVAL;
    int bad = loop_check_owner(s->loop, __func__);
    if (bad)
        return bad;
    if (s->closing || s->fd < 0)
        return -EBADF;
    if (LAYERED(s))
        return -EEXIST;
    if (!s->is_socket)
        return -ENOTSOCK;
    struct task *t;
    hold(s);
    int rc = net_begin(&t);
    if (rc == 0 && (s->closing || s->fd < 0))
        rc = -EBADF;
    if (rc == 0 && (s->reader || s->drainer || s->sending))
        rc = -EBUSY;
    if (rc == 0 && LAYERED(s))
        rc = -EEXIST; /* another task's set_layer() won while this one yielded */
    if (rc == 0 && s->wlen && !s->werr)
        stream_flush(s);
    if (rc == 0 && s->wlen && !s->werr) {
        /* What was queued goes out in plain first, all of it: wait as a
         * drainer with a low water mark of 0, and as the reader, so that
         * nobody reads the socket meanwhile. */
        rc = task_begin_wait_on(&t, "stream set_layer");
        if (rc == 0) {
            size_t low = s->low;
            s->reader = s->drainer = t;
            s->low = 0;
            while (!rc && s->wlen && !s->werr && s->fd >= 0 && !s->closing)
                rc = task_park_until(t, UINT64_MAX, 0);
            s->low = low;
            s->reader = s->drainer = NULL;
        }
    }
    if (rc == 0)
        rc = s->werr ? s->werr : s->fd < 0 || s->closing ? -EBADF : 0;
    if (rc == 0 && !s->lx) {
        if ((s->lx = malloc(sizeof *s->lx)) != NULL) {
            s->lx->s = s;
            s->lx->lingering = false;
            timer_init(&s->lx->linger.t);
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc == 0) {
        s->lx->ops = ops;
        s->lx->layer = layer;
        s->lx->watch_ev = 0;
        s->drained = false; /* the layer's first read must go to the socket */
        s->lx->notified = false;
        s->lx->notify_sent = false;
    }
    put(s);
    return rc;
}

void *asyncio_stream_get_layer(const asyncio_stream_t *s, const asyncio_stream_layer_ops_t *ops)
{
    return valid(s) && ops && LAYERED(s) && s->lx->ops == ops ? s->lx->layer : NULL;
}
