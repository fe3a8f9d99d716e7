/* TLS streams: the layer (<asyncio/stream.h>) that reads and writes a
 * stream through an SSL object, the handshake (asyncio_start_tls) and what
 * a program may ask of a TLS stream.
 *
 * OpenSSL's calls on a non-blocking socket say "want read" or "want
 * write" and are called again once the socket is ready; the stream does
 * the waiting. Every call begins with an empty error queue and leaves it
 * empty: what went wrong is kept as an errno and a line of text in the
 * connection (asyncio_tls_error()). After a fatal error nothing more is
 * asked of OpenSSL, no close_notify either (OpenSSL forbids it). */
#include "tls.h"

#include <asyncio/io.h>
#include <asyncio/timeout.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDSHAKE_TIMEOUT 60.0 /* seconds: asyncio's ssl_handshake_timeout */
#define COALESCE 4096          /* writes of several buffers up to this: one record */

struct tls_conn {
    SSL *ssl;
    BIO *bio;                 /* SSL's (SSL_set_bio): freed with it */
    asyncio_tls_context_t *ctx;
    int fatal;                /* the error that ended the connection, or 0 */
    char alpn[256];           /* the protocol agreed, as a string */
    char err[200];            /* why the last call failed ("" if none did) */
};

static const asyncio_stream_layer_ops_t tls_ops;

static void set_text(struct tls_conn *c, const char *what, const char *detail)
{
    snprintf(c->err, sizeof c->err, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* The errno and text for SSL's failure of ret (SSL_get_error()), the error
 * queue emptied. -EAGAIN with *want for a call to make again; 0 for the
 * peer's close_notify. */
static int failed(struct tls_conn *c, int ret, int *want)
{
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? ASYNCIO_LAYER_WANT_READ : ASYNCIO_LAYER_WANT_WRITE;
        ERR_clear_error();
        return -EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return 0;
    }
    int sys = tls_bio_take_errno(c->bio);
    unsigned long code = ERR_peek_error(); /* the first: the cause */
    int rc;
    if (sys) {
        rc = -sys;
        set_text(c, strerror(sys), NULL);
    } else if (e == SSL_ERROR_SYSCALL ||
               (code && ERR_GET_LIB(code) == ERR_LIB_SSL &&
                ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        rc = -ECONNRESET;
        set_text(c, "unexpected eof while reading", "the peer closed without close_notify");
    } else if (code && ERR_GET_LIB(code) == ERR_LIB_SSL &&
               ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        rc = -ASYNCIO_ECERT;
        long v = SSL_get_verify_result(c->ssl);
        set_text(c, "certificate verify failed", X509_verify_cert_error_string(v));
    } else {
        rc = -EPROTO;
        const char *why = code ? ERR_reason_error_string(code) : NULL;
        set_text(c, why ? why : "TLS protocol error", NULL);
    }
    ERR_clear_error();
    c->fatal = rc;
    return rc;
}

/* ---- the layer ------------------------------------------------------------ */

static ssize_t tls_recv(void *layer, void *buf, size_t n, int *want)
{
    struct tls_conn *c = layer;
    if (c->fatal)
        return c->fatal;
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(c->ssl, buf, n > INT_MAX ? INT_MAX : n, &got) == 1)
        return (ssize_t)got;
    return failed(c, 0, want);
}

/* SSL_write n bytes of p, record by record (partial writes), as many as
 * the socket takes: how many went, or the error if none did. */
static ssize_t write_some(struct tls_conn *c, const void *p, size_t n, int *want)
{
    size_t done = 0;
    while (done < n) {
        size_t wrote = 0;
        ERR_clear_error();
        size_t len = n - done > INT_MAX ? INT_MAX : n - done;
        if (SSL_write_ex(c->ssl, (const char *)p + done, len, &wrote) != 1) {
            int rc = failed(c, 0, want);
            if (rc == 0)
                rc = -EPIPE; /* GCOVR_EXCL_LINE: SSL_write never sees close_notify */
            return done ? (ssize_t)done : rc;
        }
        done += wrote;
    }
    return (ssize_t)done;
}

static ssize_t tls_send(void *layer, const struct iovec *iov, int iovcnt, int *want)
{
    struct tls_conn *c = layer;
    if (c->fatal)
        return c->fatal;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (iovcnt > 1 && total <= COALESCE) {
        /* One record for a header and its body, not one each. A write the
         * socket does not take is queued by the stream, and the same
         * bytes come back in one buffer. */
        char one[COALESCE];
        size_t at = 0;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(one + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        return write_some(c, one, total, want);
    }
    size_t done = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        ssize_t r = write_some(c, iov[i].iov_base, iov[i].iov_len, want);
        if (r < 0)
            return done ? (ssize_t)done : r;
        done += (size_t)r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return (ssize_t)done;
}

static int tls_shutdown(void *layer, int *want)
{
    struct tls_conn *c = layer;
    if (c->fatal || !SSL_is_init_finished(c->ssl))
        return 1; /* no close_notify after a fatal error, nor before the handshake */
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl);
    if (r >= 0) /* 0: sent, the peer's not yet read; 1: both */
        return 0;
    r = failed(c, r, want);
    return r == 0 ? 1 : r; /* GCOVR_EXCL_LINE: SSL_shutdown() never reports close_notify so */
}

static int tls_pending(void *layer)
{
    struct tls_conn *c = layer;
    return !c->fatal && (SSL_pending(c->ssl) > 0 || SSL_has_pending(c->ssl));
}

static void conn_free(struct tls_conn *c)
{
    SSL_free(c->ssl); /* and its BIO */
    asyncio_tls_context_unref(c->ctx);
    free(c);
}

static void tls_free(void *layer)
{
    conn_free(layer);
}

static const asyncio_stream_layer_ops_t tls_ops = {
    .recv = tls_recv,
    .send = tls_send,
    .shutdown = tls_shutdown,
    .pending = tls_pending,
    .free = tls_free,
};

/* ---- the handshake -------------------------------------------------------- */

/* The connection's SSL object on fd, set for its side and the name: 0 or a
 * negative errno (c->err says why, for a name). */
static int conn_setup(struct tls_conn *c, int fd, const char *name)
{
    asyncio_tls_context_t *ctx = c->ctx;
    ERR_clear_error();
    c->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = c->ssl ? tls_bio_new(fd) : NULL;
    if (!bio) {
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_bio(c->ssl, bio, bio);
    c->bio = bio;
    if (ctx->side == ASYNCIO_TLS_SERVER) {
        SSL_set_accept_state(c->ssl);
        return 0;
    }
    SSL_set_connect_state(c->ssl);
    int rc = 0;
    if (name && *name) {
        unsigned char addr[16];
        bool is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
        /* SNI carries host names only, never an address (RFC 6066). */
        if (!is_ip && SSL_set_tlsext_host_name(c->ssl, name) != 1)
            rc = -EINVAL;
        if (rc == 0 && ctx->check_hostname) {
            X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
                           : X509_VERIFY_PARAM_set1_host(param, name, 0);
            if (ok != 1)
                rc = -EINVAL;
        }
        if (rc < 0)
            set_text(c, "invalid server_hostname", name);
    }
    ERR_clear_error();
    return rc;
}

/* Drive the handshake to its end, waiting on fd: 0 or a negative errno. */
static int handshake(struct tls_conn *c, int fd)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            /* A send OpenSSL chose to ignore (a session ticket to a client
             * gone) must not be taken for the cause of a later failure. */
            tls_bio_take_errno(c->bio);
            break;
        }
        int want = 0;
        int rc = failed(c, r, &want);
        if (rc == 0) { /* close_notify in place of a handshake */
            set_text(c, "the peer closed the connection during the handshake", NULL);
            return c->fatal = -ECONNRESET;
        }
        if (rc != -EAGAIN)
            return rc;
        rc = want == ASYNCIO_LAYER_WANT_READ ? asyncio_wait_readable(fd) : asyncio_wait_writable(fd);
        if (rc < 0) {
            c->fatal = rc; /* no close_notify for a handshake given up */
            return rc;
        }
    }
    const unsigned char *proto;
    unsigned len;
    SSL_get0_alpn_selected(c->ssl, &proto, &len);
    if (len && len < sizeof c->alpn) {
        memcpy(c->alpn, proto, len);
        c->alpn[len] = '\0';
    }
    return 0;
}

static void report(const asyncio_tls_options_t *opts, const char *text)
{
    if (opts && opts->error && opts->error_size)
        snprintf(opts->error, opts->error_size, "%s", text);
}

int tls_start(asyncio_stream_t *s, asyncio_tls_context_t *ctx, const asyncio_tls_options_t *opts,
              bool close_always)
{
    report(opts, "");
    double timeout = opts && opts->handshake_timeout ? opts->handshake_timeout : HANDSHAKE_TIMEOUT;
    const char *name = opts ? opts->server_hostname : NULL;
    int rc = 0;
    int fd = asyncio_stream_fd(s);
    if (!s || !tls_context_valid(ctx) || !(timeout > 0))
        rc = -EINVAL;
    else if (asyncio_stream_get_layer(s, &tls_ops))
        rc = -EEXIST;
    else if (fd < 0)
        rc = fd;
    else if (ctx->side == ASYNCIO_TLS_CLIENT && ctx->check_hostname && !name)
        rc = -EINVAL; /* Python: "check_hostname requires server_hostname" */
    struct tls_conn *c = NULL;
    if (rc == 0 && !(c = calloc(1, sizeof *c)))
        rc = -ENOMEM;
    if (rc < 0) {
        report(opts, rc == -ENOMEM ? strerror(ENOMEM) : "TLS could not start");
        if (s && fd >= 0 && (close_always || rc == -ENOMEM))
            asyncio_stream_abort(s);
        return rc;
    }
    c->ctx = asyncio_tls_context_ref(ctx);
    rc = conn_setup(c, fd, name);
    asyncio_timeout_t scope;
    bool scoped = false;
    if (rc == 0 && (rc = asyncio_timeout_enter(&scope, timeout)) == 0)
        scoped = true;
    /* What is queued goes out in plain, then the layer is in place. */
    bool installed = false;
    if (rc == 0 && (rc = asyncio_stream_set_layer(s, &tls_ops, c)) == 0) {
        installed = true;
        /* What the stream read past the plain part: the handshake's start. */
        const void *data;
        size_t n = asyncio_stream_peek(s, &data);
        if (n && (rc = tls_bio_set_prefix(c->bio, data, n)) == 0)
            asyncio_stream_consume(s, n);
    }
    if (rc == 0)
        rc = handshake(c, fd);
    if (scoped) {
        int out = asyncio_timeout_exit(&scope);
        if (rc == 0 || out == -ETIMEDOUT)
            rc = out < 0 ? out : rc;
    }
    if (rc == 0)
        return 0;
    if (rc == -ETIMEDOUT && !c->err[0])
        set_text(c, "the TLS handshake timed out", NULL);
    else if (rc == -ECANCELED && !c->err[0])
        set_text(c, "the TLS handshake was cancelled", NULL);
    else if (!c->err[0])
        set_text(c, strerror(-rc), NULL);
    report(opts, c->err);
    /* Misuse leaves s as it was; anything else, -ENOMEM too, closes it.
     * -EBADF before the layer: another task closed s while the queue went
     * out (misuse too), and s may be gone: not to be touched. */
    bool untouched = !installed && (rc == -EINVAL || rc == -EBUSY || rc == -EEXIST ||
                                    rc == -ENOTSOCK || rc == -EPERM || rc == -EBADF);
    if (!installed) {
        conn_free(c);
        if (!untouched || (close_always && rc != -EBADF))
            asyncio_stream_abort(s);
        return rc;
    }
    c->fatal = c->fatal ? c->fatal : rc; /* no close_notify for it */
    /* A failed handshake ends with a FIN, after the alert OpenSSL sent; one
     * given up (timeout, cancel) with a reset, as a plain abort. */
    if (rc == -ETIMEDOUT || rc == -ECANCELED)
        asyncio_stream_abort(s);
    else
        asyncio_stream_close(s);
    return rc;
}

int asyncio_start_tls(asyncio_stream_t *s, asyncio_tls_context_t *ctx,
                      const asyncio_tls_options_t *opts)
{
    return tls_start(s, ctx, opts, false);
}

/* ---- what a program may ask ---------------------------------------------- */

static struct tls_conn *conn_of(const asyncio_stream_t *s)
{
    return asyncio_stream_get_layer(s, &tls_ops);
}

int asyncio_tls_is_tls(const asyncio_stream_t *s)
{
    return conn_of(s) != NULL;
}

const char *asyncio_tls_version(const asyncio_stream_t *s)
{
    struct tls_conn *c = conn_of(s);
    return c ? SSL_get_version(c->ssl) : NULL;
}

const char *asyncio_tls_cipher(const asyncio_stream_t *s)
{
    struct tls_conn *c = conn_of(s);
    const SSL_CIPHER *cipher = c ? SSL_get_current_cipher(c->ssl) : NULL;
    return cipher ? SSL_CIPHER_get_name(cipher) : NULL;
}

const char *asyncio_tls_selected_alpn_protocol(const asyncio_stream_t *s)
{
    struct tls_conn *c = conn_of(s);
    return c && c->alpn[0] ? c->alpn : NULL;
}

int asyncio_tls_peer_subject(const asyncio_stream_t *s, char *buf, size_t cap)
{
    struct tls_conn *c = conn_of(s);
    if (!c || (!buf && cap))
        return -EINVAL;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (!peer)
        return -ENOENT;
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem) {
        ERR_clear_error();
        return -ENOMEM;
    }
    int rc = X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    char *text;
    long len = BIO_get_mem_data(mem, &text);
    if (rc < 0 || len < 0) {
        rc = -ENOMEM;
    } else {
        if (cap) {
            size_t n = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
            memcpy(buf, text, n);
            buf[n] = '\0';
        }
        rc = len > INT_MAX ? INT_MAX : (int)len;
    }
    BIO_free(mem);
    ERR_clear_error();
    return rc;
}

const char *asyncio_tls_error(const asyncio_stream_t *s)
{
    struct tls_conn *c = conn_of(s);
    return c && c->err[0] ? c->err : NULL;
}
