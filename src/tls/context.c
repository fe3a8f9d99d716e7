/* TLS contexts (<asyncio/tls.h>): an SSL_CTX with Python's defaults, and
 * the starter through which libasyncio's open_connection and start_server
 * hand connections to this library. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool tls_context_valid(const asyncio_tls_context_t *ctx)
{
    return ctx && ctx->magic == TLS_CONTEXT_MAGIC;
}

/* A server's ALPN choice: the first of its own protocols the client
 * offers; none shared, the handshake goes on without one (Python's). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    asyncio_tls_context_t *ctx = arg;
    unsigned char *sel;
    if (!ctx->alpn_len ||
        SSL_select_next_proto(&sel, outlen, ctx->alpn, (unsigned)ctx->alpn_len, in, inlen) !=
            OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* OpenSSL's verify mode for ours, on this side. */
static int ssl_verify_mode(int side, int verify)
{
    if (verify == ASYNCIO_TLS_VERIFY_NONE)
        return SSL_VERIFY_NONE;
    if (side == ASYNCIO_TLS_CLIENT || verify == ASYNCIO_TLS_VERIFY_OPTIONAL)
        return SSL_VERIFY_PEER; /* a client verifies a server either way */
    return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
}

/* Whether dir holds certificates by hash (c_rehash's "8 hex digits.0"). */
static bool has_hashed_certs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        found = len >= 10 && n[8] == '.' && strspn(n, "0123456789abcdef") == 8;
    }
    closedir(d);
    return found;
}

/* The system's CA store, as SSL_CTX_set_default_verify_paths() finds it
 * ($SSL_CERT_FILE, $SSL_CERT_DIR, OpenSSL's default file and directory),
 * but without reading the whole default bundle now (45-65 ms on Debian,
 * for each client context): its hashed directory instead, where a
 * certificate is read when a verification needs it. The bundle file is
 * read when it was named ($SSL_CERT_FILE), or when there is no hashed
 * directory. */
static void default_verify_paths(X509_STORE *store)
{
    const char *file = getenv(X509_get_default_cert_file_env());
    const char *dir = getenv(X509_get_default_cert_dir_env());
    if (!dir)
        dir = X509_get_default_cert_dir();
    bool use_dir = has_hashed_certs(dir);
    if (use_dir)
        X509_STORE_load_path(store, dir);
    if (file || !use_dir)
        X509_STORE_load_file(store, file ? file : X509_get_default_cert_file());
    ERR_clear_error(); /* a path that is not there is no error here */
}

int asyncio_tls_context_new(asyncio_tls_context_t **out, int side)
{
    if (!out || (side != ASYNCIO_TLS_CLIENT && side != ASYNCIO_TLS_SERVER))
        return -EINVAL;
    asyncio_tls_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ERR_clear_error();
    ctx->ssl_ctx = SSL_CTX_new(side == ASYNCIO_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
    if (!ctx->ssl_ctx) {
        ERR_clear_error();
        free(ctx);
        return -ENOMEM;
    }
    SSL_CTX *c = ctx->ssl_ctx;
    ctx->starter = &tls_starter;
    ctx->magic = TLS_CONTEXT_MAGIC;
    ctx->side = side;
    atomic_init(&ctx->refs, 1);
    /* TLS 1.2 at least, never renegotiate; a stream re-presents what a
     * write did not take from another address (its queue), and takes what
     * a write sent record by record. Read-ahead: a record's header and body,
     * and the records behind them, come in one recv. Buffers are given
     * back while a connection idles. */
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(c, 1);
    if (side == ASYNCIO_TLS_CLIENT) {
        ctx->verify = ASYNCIO_TLS_VERIFY_REQUIRED;
        ctx->check_hostname = true;
        /* The system's store, until load_verify_locations() replaces it. */
        default_verify_paths(SSL_CTX_get_cert_store(c));
    } else {
        ctx->verify = ASYNCIO_TLS_VERIFY_NONE;
        static const unsigned char sid[] = "libasyncio";
        SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1);
        SSL_CTX_set_alpn_select_cb(c, select_alpn, ctx);
    }
    SSL_CTX_set_verify(c, ssl_verify_mode(side, ctx->verify), NULL);
    ERR_clear_error();
    *out = ctx;
    return 0;
}

asyncio_tls_context_t *asyncio_tls_context_ref(asyncio_tls_context_t *ctx)
{
    if (tls_context_valid(ctx))
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void asyncio_tls_context_unref(asyncio_tls_context_t *ctx)
{
    if (!tls_context_valid(ctx))
        return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx->alpn);
    ctx->magic = 0;
    free(ctx);
}

/* -ENOENT for a path nothing is at, else 0 (OpenSSL's errors do not say). */
static int exists(const char *path)
{
    struct stat st;
    return !path || stat(path, &st) == 0 ? 0 : -ENOENT;
}

int asyncio_tls_context_load_verify_locations(asyncio_tls_context_t *ctx, const char *cafile,
                                              const char *capath)
{
    if (!tls_context_valid(ctx) || (!cafile && !capath))
        return -EINVAL;
    int rc = exists(cafile);
    if (rc == 0)
        rc = exists(capath);
    if (rc < 0)
        return rc;
    /* Instead of the system's store: a fresh one, which later calls add to. */
    X509_STORE *store = SSL_CTX_get_cert_store(ctx->ssl_ctx);
    if (!ctx->has_own_cas) {
        X509_STORE *fresh = X509_STORE_new();
        if (!fresh)
            return -ENOMEM;
        SSL_CTX_set_cert_store(ctx->ssl_ctx, fresh); /* frees the old one */
        store = fresh;
    }
    ERR_clear_error();
    int ok = X509_STORE_load_locations(store, cafile, capath);
    ERR_clear_error();
    if (!ok)
        return -EPROTO;
    ctx->has_own_cas = true;
    return 0;
}

int asyncio_tls_context_load_cert_chain(asyncio_tls_context_t *ctx, const char *certfile,
                                        const char *keyfile)
{
    if (!tls_context_valid(ctx) || !certfile)
        return -EINVAL;
    if (!keyfile)
        keyfile = certfile;
    int rc = exists(certfile);
    if (rc == 0)
        rc = exists(keyfile);
    if (rc < 0)
        return rc;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, certfile) != 1)
        rc = -EPROTO;
    else if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, keyfile, SSL_FILETYPE_PEM) != 1)
        rc = -EPROTO;
    else if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1)
        rc = -EINVAL;
    /* A key that does not match the certificate may fail the key's load
     * already (OpenSSL checks it against the certificate there). */
    if (rc == -EPROTO && ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
        rc = -EINVAL;
    ERR_clear_error();
    return rc;
}

int asyncio_tls_context_set_verify(asyncio_tls_context_t *ctx, int mode)
{
    if (!tls_context_valid(ctx) || mode < ASYNCIO_TLS_VERIFY_NONE ||
        mode > ASYNCIO_TLS_VERIFY_REQUIRED)
        return -EINVAL;
    ctx->verify = mode;
    if (mode == ASYNCIO_TLS_VERIFY_NONE)
        ctx->check_hostname = false;
    SSL_CTX_set_verify(ctx->ssl_ctx, ssl_verify_mode(ctx->side, mode), NULL);
    return 0;
}

int asyncio_tls_context_set_check_hostname(asyncio_tls_context_t *ctx, int on)
{
    if (!tls_context_valid(ctx) || (on && ctx->verify == ASYNCIO_TLS_VERIFY_NONE))
        return -EINVAL;
    ctx->check_hostname = on != 0;
    return 0;
}

int asyncio_tls_context_set_alpn_protocols(asyncio_tls_context_t *ctx,
                                           const char *const *protocols, size_t count)
{
    if (!tls_context_valid(ctx) || (!protocols && count))
        return -EINVAL;
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = protocols[i] ? strlen(protocols[i]) : 0;
        if (n == 0 || n > 255)
            return -EINVAL;
        len += 1 + n;
    }
    if (len > 65535)
        return -EINVAL;
    unsigned char *wire = NULL;
    if (count && !(wire = malloc(len)))
        return -ENOMEM;
    unsigned char *p = wire;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(protocols[i]);
        *p++ = (unsigned char)n;
        memcpy(p, protocols[i], n);
        p += n;
    }
    if (ctx->side == ASYNCIO_TLS_CLIENT) {
        ERR_clear_error();
        /* 0 is success here, as the OpenSSL manual warns. */
        int bad = SSL_CTX_set_alpn_protos(ctx->ssl_ctx, wire, (unsigned)len);
        ERR_clear_error();
        if (bad) {
            free(wire);
            return -ENOMEM;
        }
    }
    free(ctx->alpn);
    ctx->alpn = wire;
    ctx->alpn_len = len;
    return 0;
}

int asyncio_tls_context_set_versions(asyncio_tls_context_t *ctx, int min_version,
                                     int max_version)
{
    if (!tls_context_valid(ctx))
        return -EINVAL;
    bool min_ok = min_version == ASYNCIO_TLS_VERSION_1_2 || min_version == ASYNCIO_TLS_VERSION_1_3;
    bool max_ok = max_version == 0 || max_version == ASYNCIO_TLS_VERSION_1_2 ||
                  max_version == ASYNCIO_TLS_VERSION_1_3;
    if (!min_ok || !max_ok || (max_version && max_version < min_version))
        return -EINVAL;
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx->ssl_ctx, max_version);
    return 0;
}

int asyncio_tls_context_set_ciphers(asyncio_tls_context_t *ctx, const char *tls12,
                                    const char *tls13)
{
    if (!tls_context_valid(ctx))
        return -EINVAL;
    ERR_clear_error();
    int rc = 0;
    if (tls12 && SSL_CTX_set_cipher_list(ctx->ssl_ctx, tls12) != 1)
        rc = -EINVAL;
    if (rc == 0 && tls13 && SSL_CTX_set_ciphersuites(ctx->ssl_ctx, tls13) != 1)
        rc = -EINVAL;
    ERR_clear_error();
    return rc;
}

int asyncio_tls_context_set_num_tickets(asyncio_tls_context_t *ctx, size_t count)
{
    if (!tls_context_valid(ctx) || ctx->side != ASYNCIO_TLS_SERVER)
        return -EINVAL;
    SSL_CTX_set_num_tickets(ctx->ssl_ctx, count);
    return 0;
}

/* ---- the starter ---------------------------------------------------------- */

static int starter_check(void *context, int server_side)
{
    asyncio_tls_context_t *ctx = context;
    if (!tls_context_valid(ctx))
        return -EINVAL;
    return ctx->side == (server_side ? ASYNCIO_TLS_SERVER : ASYNCIO_TLS_CLIENT) ? 0 : -EINVAL;
}

static int starter_start(void *context, asyncio_stream_t *s, int server_side,
                         const char *server_hostname, double handshake_timeout, char *error,
                         size_t error_size)
{
    (void)server_side; /* starter_check() saw the context's side already */
    asyncio_tls_options_t opts = {
        .server_hostname = server_hostname,
        .handshake_timeout = handshake_timeout,
        .error = error,
        .error_size = error_size,
    };
    return tls_start(s, context, &opts, true);
}

static void starter_hold(void *context)
{
    asyncio_tls_context_ref(context);
}

static void starter_release(void *context)
{
    asyncio_tls_context_unref(context);
}

const asyncio_stream_starter_t tls_starter = {
    .check = starter_check,
    .start = starter_start,
    .hold = starter_hold,
    .release = starter_release,
};
