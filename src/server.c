/* Servers: one accepting task per listening socket, one handler task per
 * connection (asyncio.start_server). A connection's bookkeeping ends in a
 * done callback of its task, so that a handler cancelled before it ever ran
 * still has its stream closed and is counted out. */
#include "net.h"

#include <asyncio/stream.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SERVER_MAGIC 0x53525652U
#define MAX_LISTENERS 8
#define ACCEPT_PAUSE 0.1 /* seconds to stop accepting when out of fds */

struct listener {
    asyncio_server_t *srv;
    int fd;
    bool tcp;
    asyncio_task_t *task; /* the accepting task */
};

struct conn {
    struct dlist link;    /* on srv->conns */
    asyncio_server_t *srv;
    asyncio_stream_t *stream; /* NULL once the task has it */
    asyncio_task_t *task;
    /* Its task's end, as a done callback would see it (conn_done() runs in
     * the iteration after), without a callback handle: an idle server of
     * 10,000 connections holds 10,000 of these, and a handle is 120 bytes.
     * The waiter is off the task's list when it is told (future.c), so the
     * runnable that queues conn_done() takes its place. */
    union {
        struct waiter done;
        struct runnable done_run;
    };
};

struct asyncio_server {
    struct net_open open;    /* freed at loop close if still open */
    uint32_t magic;
    asyncio_stream_handler handler;
    void *arg;
    size_t limit, stack_size;
    asyncio_tls_context_t *tls; /* held (its starter's hold()) */
    double tls_timeout;
    struct listener listeners[MAX_LISTENERS];
    int nlisteners, accepting; /* accepting: accept tasks still running */
    struct dlist conns;
    size_t nconns;
    bool closed;
    bool waited;             /* a task is in wait_closed() */
    bool orphan;             /* failed to start: free it once idle */
    char *unix_path;         /* unlinked at close */
    asyncio_future_t *closed_fut; /* done at close */
    asyncio_future_t *idle_fut;   /* done once closed and nothing runs */
};

static bool valid(const asyncio_server_t *srv)
{
    return srv && srv->magic == SERVER_MAGIC;
}

/* valid() for a call that changes srv or waits: 0, -EINVAL, or in debug
 * mode -EXDEV (reported) from a thread not the loop's (task.h). */
#define USABLE(srv) (!valid(srv) ? -EINVAL : loop_check_owner((srv)->closed_fut->loop, __func__))

static void server_free(asyncio_server_t *srv);

static void maybe_idle(asyncio_server_t *srv)
{
    if (!srv->closed || srv->nconns || srv->accepting)
        return;
    if (srv->orphan)
        server_free(srv);
    else if (!asyncio_future_done(srv->idle_fut))
        asyncio_future_set_result(srv->idle_fut, NULL);
}

/* ---- connections --------------------------------------------------------- */

static int conn_main(void *arg, void **result)
{
    (void)result;
    struct conn *c = arg;
    asyncio_stream_t *s = c->stream;
    asyncio_server_t *srv = c->srv;
    c->stream = NULL; /* the task's now */
    stream_retain(s);
    if (srv->tls) {
        /* A failed handshake closed s (held: freed by the release). It is
         * the client's doing, as often as not: no handler, no report. */
        int rc = starter_of(srv->tls)->start(srv->tls, s, 1, NULL, srv->tls_timeout, NULL, 0);
        if (rc < 0) {
            stream_release(s);
            return rc == -ECANCELED ? rc : 0;
        }
    }
    int rc = srv->handler(s, srv->arg);
    asyncio_stream_close(s); /* 0 at once if the handler closed it: s is held */
    stream_release(s);
    return rc;
}

static void conn_done(struct loop *loop, struct runnable *r)
{
    (void)loop;
    struct conn *c = container_of(r, struct conn, done_run);
    asyncio_server_t *srv = c->srv;
    if (c->stream) /* cancelled before it ran */
        asyncio_stream_close(c->stream);
    dlist_remove(&c->link);
    srv->nconns--;
    asyncio_task_release(c->task);
    free(c);
    maybe_idle(srv);
}

static void conn_notify(struct waiter *w, struct asyncio_future *f)
{
    struct conn *c = container_of(w, struct conn, done);
    c->done_run.run = conn_done;
    loop_ready(f->loop, &c->done_run);
}

static void start_conn(struct listener *l, int fd)
{
    asyncio_server_t *srv = l->srv;
    if (l->tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c || asyncio_stream_open(&c->stream, fd, srv->limit) < 0) {
        free(c);
        close(fd); /* no memory: the peer sees the connection close */
        return;
    }
    c->srv = srv;
    char name[24];
    snprintf(name, sizeof name, "conn-%d", fd);
    asyncio_task_options_t opts = {.name = name, .stack_size = srv->stack_size};
    if (asyncio_create_task_ex(&c->task, conn_main, c, &opts) < 0) {
        asyncio_stream_close(c->stream);
        free(c);
        return;
    }
    c->done.notify = conn_notify;
    future_add_waiter(c->task, &c->done);
    dlist_push_back(&srv->conns, &c->link);
    srv->nconns++;
}

static int accept_main(void *arg, void **result)
{
    (void)result;
    struct listener *l = arg;
    asyncio_server_t *srv = l->srv;
    int rc;
    for (;;) {
        rc = asyncio_sock_accept(l->fd, NULL, NULL);
        if (rc >= 0) {
            start_conn(l, rc);
            continue;
        }
        if (rc == -ECANCELED || rc == -EBADF || rc == -EPERM || srv->closed)
            break;
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
            /* Out of fds or memory: pause (the backlog waits in the kernel)
             * rather than spin on a socket that stays readable. */
            if ((rc = asyncio_sleep(ACCEPT_PAUSE)) < 0)
                break;
        }
        /* Else a connection failed before we took it (ECONNABORTED,
         * EPROTO...): go on with the next. */
    }
    return rc == -ECANCELED || rc == -EBADF ? 0 : rc;
}

/* In a done callback: an accepting task may end before it ever ran. */
static void accept_done(asyncio_future_t *f, void *arg)
{
    (void)f;
    asyncio_server_t *srv = arg;
    srv->accepting--;
    maybe_idle(srv);
}

/* ---- listening ----------------------------------------------------------- */

static void server_free(asyncio_server_t *srv)
{
    for (int i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].fd >= 0)
            asyncio_close(srv->listeners[i].fd);
        if (srv->listeners[i].task)
            asyncio_task_release(srv->listeners[i].task);
    }
    if (srv->unix_path) {
        if (srv->nlisteners && !srv->closed)
            unlink(srv->unix_path);
        free(srv->unix_path);
    }
    asyncio_future_release(srv->closed_fut);
    asyncio_future_release(srv->idle_fut);
    if (srv->tls)
        starter_of(srv->tls)->release(srv->tls);
    dlist_remove(&srv->open.link);
    srv->magic = 0;
    free(srv);
}

static void server_free_at_close(struct net_open *o)
{
    server_free(container_of(o, asyncio_server_t, open));
}

static int server_new(asyncio_server_t **out, asyncio_stream_handler handler, void *arg,
                      const asyncio_server_options_t *opts)
{
    if (!out || !handler)
        return -EINVAL;
    if (opts && opts->tls &&
        (opts->tls_handshake_timeout < 0 || starter_of(opts->tls)->check(opts->tls, 1) < 0))
        return -EINVAL;
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    asyncio_server_t *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->magic = SERVER_MAGIC;
    srv->handler = handler;
    srv->arg = arg;
    srv->limit = opts ? opts->limit : 0;
    srv->stack_size = opts ? opts->stack_size : 0;
    if (opts && opts->tls) {
        srv->tls = opts->tls;
        srv->tls_timeout = opts->tls_handshake_timeout;
        starter_of(srv->tls)->hold(srv->tls);
    }
    dlist_init(&srv->conns);
    srv->open.free_at_close = server_free_at_close;
    dlist_push_back(&loop->net.open, &srv->open.link);
    int rc = asyncio_future_new(&srv->closed_fut);
    if (rc == 0)
        rc = asyncio_future_new(&srv->idle_fut);
    if (rc < 0) {
        server_free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

static int listen_on(asyncio_server_t *srv, const struct sockaddr *addr, socklen_t len,
                     const asyncio_server_options_t *opts)
{
    if (srv->nlisteners == MAX_LISTENERS)
        return 0; /* GCOVR_EXCL_LINE: only for a name with more than 8 addresses, which no test can make (localhost has 2) */
    int fd = asyncio_socket(addr->sa_family, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    bool tcp = addr->sa_family != AF_UNIX;
    if (tcp)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef SO_REUSEPORT
    if (tcp && opts && opts->reuse_port &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        /* GCOVR_EXCL_START: SO_REUSEPORT on a new TCP socket does not fail on Linux 3.9+ */
        int err = -errno;
        close(fd);
        return err;
        /* GCOVR_EXCL_STOP */
    }
#else
    if (tcp && opts && opts->reuse_port) {
        close(fd); /* GCOVR_EXCL_LINE: no SO_REUSEPORT here: say so, not "in use" later */
        return -EOPNOTSUPP; /* GCOVR_EXCL_LINE */
    }
#endif
#ifdef IPV6_V6ONLY
    if (addr->sa_family == AF_INET6) /* the IPv4 address gets its own socket */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
#endif
    int backlog = opts && opts->backlog > 0 ? opts->backlog : 511;
    if (bind(fd, addr, len) < 0 || listen(fd, backlog) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    struct listener *l = &srv->listeners[srv->nlisteners++];
    l->srv = srv;
    l->fd = fd;
    l->tcp = tcp;
    return 0;
}

/* Every socket listens (listened is 0), or one failed: start accepting on
 * each and give the caller the server, or free it. If a task cannot be
 * made, the server is closed, and freed once those already made end. */
static int start_accepting(asyncio_server_t *srv, int listened, asyncio_server_t **out)
{
    if (listened < 0) {
        server_free(srv);
        return listened;
    }
    for (int i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        int rc = asyncio_create_task(&l->task, accept_main, l, "server-accept");
        if (rc == 0 && (rc = asyncio_future_add_done_callback(l->task, accept_done, srv)) < 0) {
            asyncio_task_cancel(l->task);
            asyncio_task_release(l->task);
            l->task = NULL;
        }
        if (rc < 0) {
            srv->orphan = true;
            asyncio_server_close(srv);
            return rc;
        }
        srv->accepting++;
    }
    *out = srv;
    return 0;
}

int asyncio_start_server(asyncio_server_t **out, asyncio_stream_handler handler, void *arg,
                         const char *host, int port, const asyncio_server_options_t *opts)
{
    if (!out || port < 0 || port > 65535)
        return -EINVAL;
    asyncio_server_t *srv;
    int rc = server_new(&srv, handler, arg, opts);
    if (rc < 0)
        return rc;
    struct addrinfo *res = NULL;
    rc = net_resolve(host, port, opts ? opts->family : 0, SOCK_STREAM, true, &res);
    for (struct addrinfo *ai = rc == 0 ? res : NULL; ai; ai = ai->ai_next) {
        /* Port 0 on two families: the second takes the first's port. */
        if (port == 0 && srv->nlisteners) {
            int p = asyncio_server_port(srv);
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)p); /* GCOVR_EXCL_LINE: glibc lists the IPv4 wildcard first */
            else if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)p);
        }
        if ((rc = listen_on(srv, ai->ai_addr, ai->ai_addrlen, opts)) < 0)
            break;
    }
    if (res)
        freeaddrinfo(res);
    if (rc == 0 && !srv->nlisteners)
        rc = -EADDRNOTAVAIL; /* GCOVR_EXCL_LINE: getaddrinfo() never succeeds with no address, and listen_on() fails or adds one */
    return start_accepting(srv, rc, out);
}

int asyncio_start_unix_server(asyncio_server_t **out, asyncio_stream_handler handler, void *arg,
                              const char *path, const asyncio_server_options_t *opts)
{
    struct sockaddr_un sun;
    int rc = out ? net_unix_addr(&sun, path) : -EINVAL;
    if (rc < 0)
        return rc;
    asyncio_server_t *srv;
    rc = server_new(&srv, handler, arg, opts);
    if (rc < 0)
        return rc;
    /* A socket file left by an earlier run would make bind fail. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    srv->unix_path = strdup(path);
    rc = srv->unix_path ? listen_on(srv, (struct sockaddr *)&sun, sizeof sun, opts) : -ENOMEM;
    return start_accepting(srv, rc, out);
}

int asyncio_server_port(const asyncio_server_t *srv)
{
    if (!valid(srv) || !srv->nlisteners || srv->listeners[0].fd < 0)
        return -EINVAL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(srv->listeners[0].fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EINVAL;
}

size_t asyncio_server_connections(const asyncio_server_t *srv)
{
    return valid(srv) ? srv->nconns : 0;
}

/* ---- closing ------------------------------------------------------------- */

int asyncio_server_close(asyncio_server_t *srv)
{
    int bad = USABLE(srv);
    if (bad)
        return bad;
    if (srv->closed)
        return 0;
    srv->closed = true;
    for (int i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        if (l->task)
            asyncio_task_cancel(l->task);
        if (l->fd >= 0)
            asyncio_close(l->fd); /* wakes the accepting task */
        l->fd = -1;
    }
    if (srv->unix_path)
        unlink(srv->unix_path);
    asyncio_future_set_result(srv->closed_fut, NULL);
    maybe_idle(srv);
    return 0;
}

int asyncio_server_close_clients(asyncio_server_t *srv)
{
    int bad = USABLE(srv);
    if (bad)
        return bad;
    int n = 0;
    for (struct dlist *i = srv->conns.next; i != &srv->conns; i = i->next)
        n += asyncio_task_cancel(container_of(i, struct conn, link)->task) > 0;
    return n;
}

int asyncio_server_wait_closed(asyncio_server_t *srv)
{
    int bad = USABLE(srv);
    if (bad)
        return bad;
    if (srv->waited)
        return -EBUSY;
    srv->waited = true;
    int rc = asyncio_shield(srv->idle_fut, NULL);
    srv->waited = false;
    if (rc < 0)
        return rc;
    server_free(srv);
    return 0;
}

int asyncio_server_serve_forever(asyncio_server_t *srv)
{
    int bad = USABLE(srv);
    if (bad)
        return bad;
    int rc = asyncio_shield(srv->closed_fut, NULL);
    if (rc < 0 && rc != -EPERM)
        asyncio_server_close(srv);
    return rc;
}
