/* Clients: open_connection (every address in turn, each with an optional
 * timeout of its own) and datagram endpoints. */
#include "net.h"

#include <asyncio/stream.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* Connect a new socket to addr: its fd, or a negative errno. */
static int connect_one(const struct sockaddr *addr, socklen_t len, int type, double timeout)
{
    int fd = asyncio_socket(addr->sa_family, type, 0);
    if (fd < 0)
        return fd;
    asyncio_timeout_t scope;
    int rc = timeout > 0 ? asyncio_timeout_enter(&scope, timeout) : 0;
    if (rc == 0) {
        rc = asyncio_sock_connect(fd, addr, len);
        if (timeout > 0) {
            int out = asyncio_timeout_exit(&scope);
            if (rc == 0 || out == -ETIMEDOUT)
                rc = out < 0 ? out : rc;
        }
    }
    if (rc < 0) {
        asyncio_close(fd);
        return rc;
    }
    return fd;
}

/* The stream of a connected fd, with TLS when opts ask for it. */
static int stream_of(asyncio_stream_t **out, int fd, const char *host,
                     const asyncio_connection_options_t *opts)
{
    asyncio_stream_t *s;
    int rc = asyncio_stream_open(&s, fd, opts ? opts->limit : 0);
    if (rc < 0) {
        asyncio_close(fd);
        return rc;
    }
    if (opts && opts->tls) {
        const char *name = opts->server_hostname ? opts->server_hostname : host;
        rc = starter_of(opts->tls)->start(opts->tls, s, 0, name, opts->tls_handshake_timeout,
                                          opts->tls_error, opts->tls_error_size);
        if (rc < 0)
            return rc; /* s is closed */
    }
    *out = s;
    return 0;
}

/* The options are usable (a connect timeout not negative nor NaN, and the
 * TLS part): 0 or -EINVAL. */
static int check_options(const asyncio_connection_options_t *opts)
{
    if (opts && !(opts->connect_timeout >= 0))
        return -EINVAL;
    if (!opts || !opts->tls)
        return 0;
    if (opts->tls_handshake_timeout < 0)
        return -EINVAL;
    return starter_of(opts->tls)->check(opts->tls, 0);
}

int asyncio_open_connection(asyncio_stream_t **out, const char *host, int port,
                            const asyncio_connection_options_t *opts)
{
    if (!out || !host || !*host || port <= 0 || port > 65535)
        return -EINVAL;
    int rc = check_options(opts);
    if (rc < 0)
        return rc;
    struct addrinfo *res = NULL;
    rc = net_resolve(host, port, opts ? opts->family : 0, SOCK_STREAM, false, &res);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai->ai_addr, ai->ai_addrlen, SOCK_STREAM,
                         opts ? opts->connect_timeout : 0);
        if (rc >= 0 || rc == -ECANCELED)
            break;
        /* -ETIMEDOUT: this address's own limit, or the caller's scope;
         * the next try tells them apart (a scope gone by fails at once). */
    }
    freeaddrinfo(res);
    if (rc < 0)
        return rc;
    int fd = rc, one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return stream_of(out, fd, host, opts);
}

int asyncio_open_unix_connection(asyncio_stream_t **out, const char *path,
                                 const asyncio_connection_options_t *opts)
{
    struct sockaddr_un sun;
    int rc = out ? net_unix_addr(&sun, path) : -EINVAL;
    if (rc == 0)
        rc = check_options(opts);
    /* No host to check a certificate against: asyncio asks for
     * server_hostname too ("" to check none). */
    if (rc == 0 && opts && opts->tls && !opts->server_hostname)
        rc = -EINVAL;
    if (rc < 0)
        return rc;
    int fd = connect_one((struct sockaddr *)&sun, sizeof sun, SOCK_STREAM,
                         opts ? opts->connect_timeout : 0);
    return fd < 0 ? fd : stream_of(out, fd, NULL, opts);
}

int asyncio_create_datagram_endpoint(const char *local_host, int local_port,
                                     const char *remote_host, int remote_port, int family)
{
    if (local_port < 0 || local_port > 65535 || remote_port < 0 || remote_port > 65535)
        return -EINVAL;
    bool bind_local = (local_host && *local_host) || local_port;
    if (!bind_local && !remote_host)
        return -EINVAL;
    struct addrinfo *local = NULL, *remote = NULL;
    int rc = 0;
    if (remote_host) {
        rc = net_resolve(remote_host, remote_port, family, SOCK_DGRAM, false, &remote);
        if (rc == 0)
            family = remote->ai_family; /* the local side must match */
    }
    if (rc == 0 && bind_local)
        rc = net_resolve(local_host, local_port, family, SOCK_DGRAM, true, &local);
    int fd = -1;
    if (rc == 0) {
        const struct addrinfo *first = remote ? remote : local;
        fd = rc = asyncio_socket(first->ai_family, SOCK_DGRAM, 0);
    }
    if (rc >= 0 && local && bind(fd, local->ai_addr, local->ai_addrlen) < 0)
        rc = -errno;
    if (rc >= 0 && remote && connect(fd, remote->ai_addr, remote->ai_addrlen) < 0)
        rc = -errno;
    if (local)
        freeaddrinfo(local);
    if (remote)
        freeaddrinfo(remote);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}
