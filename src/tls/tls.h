/* libasyncio-tls's internal header: what context.c, bio.c and stream.c
 * share. The library sits on libasyncio's public calls only: a TLS stream
 * is a plain asyncio_stream_t with a layer (asyncio_stream_set_layer())
 * whose recv and send are SSL_read and SSL_write, over a BIO of our own on
 * the stream's socket (bio.c: send with MSG_NOSIGNAL, the bytes the
 * stream had buffered before start_tls first). Internal names have
 * external linkage and so carry the asyncio__tls_ prefix, as src/names.h
 * asks of the core. */
#ifndef ASYNCIO_TLS_INTERNAL_H
#define ASYNCIO_TLS_INTERNAL_H

#include <asyncio/tls.h>

#include <openssl/ssl.h>

#include <stdatomic.h>
#include <stdbool.h>

#define TLS_CONTEXT_MAGIC 0x544c5343U

struct asyncio_tls_context {
    const asyncio_stream_starter_t *starter; /* first: see <asyncio/stream.h> */
    uint32_t magic;
    int side;                /* ASYNCIO_TLS_CLIENT or _SERVER */
    int verify;              /* ASYNCIO_TLS_VERIFY_* */
    bool check_hostname;
    bool has_own_cas;        /* load_verify_locations() replaced the store */
    atomic_int refs;
    SSL_CTX *ssl_ctx;
    unsigned char *alpn;     /* the list in ALPN's wire format */
    size_t alpn_len;
};

/* context.c: the starter every context points to, and a context's check. */
extern const asyncio_stream_starter_t asyncio__tls_starter;
#define tls_starter asyncio__tls_starter
bool asyncio__tls_context_valid(const asyncio_tls_context_t *ctx);
#define tls_context_valid asyncio__tls_context_valid

/* stream.c: asyncio_start_tls(), which with close_always closes s on
 * every failure, those before it began too (the starter's contract). */
int asyncio__tls_start(asyncio_stream_t *s, asyncio_tls_context_t *ctx,
                       const asyncio_tls_options_t *opts, bool close_always);
#define tls_start asyncio__tls_start

/* bio.c: a BIO over a non-blocking socket fd. Reads first return the
 * prefix (bytes read from the socket before TLS began), then recv(2);
 * writes are send(2) with MSG_NOSIGNAL. The errno of the last failed
 * system call is kept for the error report. */
BIO *asyncio__tls_bio_new(int fd);
#define tls_bio_new asyncio__tls_bio_new
/* Hand the BIO n bytes to read before the socket: 0 or -ENOMEM. */
int asyncio__tls_bio_set_prefix(BIO *bio, const void *data, size_t n);
#define tls_bio_set_prefix asyncio__tls_bio_set_prefix
/* The errno of the BIO's last failed system call (0: none, or the end of
 * the stream), cleared by the call. */
int asyncio__tls_bio_take_errno(BIO *bio);
#define tls_bio_take_errno asyncio__tls_bio_take_errno

#endif
