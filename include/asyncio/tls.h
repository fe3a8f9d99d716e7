/*
 * <asyncio/tls.h>: TLS for streams (asyncio's ssl= and start_tls), in the
 * optional library libasyncio-tls over OpenSSL 3 (CMake target
 * asyncio::tls, pkg-config asyncio-tls). The core library libasyncio does
 * not depend on it; <asyncio.h> does not include this header. Including it
 * needs no OpenSSL header.
 *
 * A context (ssl.SSLContext) holds the configuration shared by many
 * connections: a client context verifies the server's certificate against
 * the system's CA store (or the CA file given) and checks that it names
 * the host; a server context has a certificate and its key. Both speak TLS
 * 1.2 and 1.3 (1.2 is the minimum; 1.0 and 1.1 are refused), never
 * renegotiate, and the client sends the server's name (SNI).
 *
 * A context is configured from one thread, before it is first used; from
 * then on it is read-only and may be used by the loops of several threads
 * at once (a server with a loop per core shares one). It is reference
 * counted: each connection holds it, so the owner may unref it at any time.
 *
 * A TLS stream is an asyncio_stream_t: every call of <asyncio/stream.h>
 * works on it with the same meaning, reading and writing plain text.
 * asyncio_stream_write_eof() sends TLS's close_notify (then shuts the
 * socket's sending side); asyncio_stream_close() sends close_notify after
 * what is queued, as asyncio does; asyncio_stream_abort() sends nothing.
 * A read returns 0 (the end) only after the peer's close_notify. Errors of
 * a TLS stream, besides the socket's:
 *   -EPROTO        the peer broke the protocol: garbage, a bad record, a
 *                  fatal alert, a failed handshake;
 *   -ECONNRESET    the peer closed the connection without close_notify
 *                  (the data may have been cut short);
 *   -ASYNCIO_ECERT the peer's certificate did not verify (expired,
 *                  self-signed, untrusted, for another host);
 * and asyncio_tls_error() gives the reason as text. The library never
 * prints OpenSSL's errors, and leaves OpenSSL's per-thread error queue
 * empty.
 *
 * Thread safety: contexts as above; everything else is called from the
 * thread of the stream's loop, as the stream's own calls are.
 */
#ifndef ASYNCIO_TLS_H
#define ASYNCIO_TLS_H

#include <asyncio/common.h>
#include <asyncio/stream.h>

#include <errno.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The errno of a certificate that did not verify (asyncio's
 * ssl.SSLCertVerificationError): EKEYREJECTED where the system has it,
 * else EAUTH, else EACCES. Calls return it negated. */
#if defined(EKEYREJECTED)
#define ASYNCIO_ECERT EKEYREJECTED
#elif defined(EAUTH)
#define ASYNCIO_ECERT EAUTH
#else
#define ASYNCIO_ECERT EACCES
#endif

/* A context's side (ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER). */
#define ASYNCIO_TLS_CLIENT 1
#define ASYNCIO_TLS_SERVER 2

/* Peer verification (ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED). */
#define ASYNCIO_TLS_VERIFY_NONE 0
#define ASYNCIO_TLS_VERIFY_OPTIONAL 1
#define ASYNCIO_TLS_VERIFY_REQUIRED 2

/* Protocol versions (ssl.TLSVersion). */
#define ASYNCIO_TLS_VERSION_1_2 0x0303
#define ASYNCIO_TLS_VERSION_1_3 0x0304

/* ---- contexts ------------------------------------------------------------ */

/*
 * Make a context (ssl.create_default_context() for ASYNCIO_TLS_CLIENT;
 * SSLContext(PROTOCOL_TLS_SERVER) for ASYNCIO_TLS_SERVER): a client one
 * verifies servers (ASYNCIO_TLS_VERIFY_REQUIRED) with the system's CA
 * store and checks host names; a server one asks for no client
 * certificate (ASYNCIO_TLS_VERIFY_NONE). Returns 0 and the context, with
 * one reference, in *out; -EINVAL (out NULL, a side that is neither),
 * -ENOMEM, -EPROTO (OpenSSL refused). Callable from any thread, with or
 * without a loop. Does not suspend.
 */
ASYNCIO_API int asyncio_tls_context_new(asyncio_tls_context_t **out, int side);

/* Take one more reference (any thread). Returns ctx. */
ASYNCIO_API asyncio_tls_context_t *asyncio_tls_context_ref(asyncio_tls_context_t *ctx);

/* Drop a reference (any thread); the last frees the context. NULL is
 * ignored. */
ASYNCIO_API void asyncio_tls_context_unref(asyncio_tls_context_t *ctx);

/*
 * Trust the CA certificates in cafile (PEM) and/or the directory capath
 * (OpenSSL's hashed layout) (SSLContext.load_verify_locations) instead of
 * the system's store. Returns 0, -EINVAL (both NULL, or ctx NULL),
 * -ENOENT (no such file), -EPROTO (no certificate could be read). Does
 * not suspend; the file is read now, from the calling thread.
 */
ASYNCIO_API int asyncio_tls_context_load_verify_locations(asyncio_tls_context_t *ctx,
                                                          const char *cafile,
                                                          const char *capath);

/*
 * Use the certificate chain in certfile (PEM: the certificate first, then
 * its intermediates) and the private key in keyfile (PEM; NULL: the key
 * is in certfile) (SSLContext.load_cert_chain): what a server presents,
 * or a client when the server asks. Returns 0, -EINVAL (ctx or certfile
 * NULL, or the key does not match the certificate), -ENOENT (a file
 * missing), -EPROTO (not a certificate or key). Does not suspend.
 */
ASYNCIO_API int asyncio_tls_context_load_cert_chain(asyncio_tls_context_t *ctx,
                                                    const char *certfile, const char *keyfile);

/* Set how peers are verified (SSLContext.verify_mode): one of
 * ASYNCIO_TLS_VERIFY_*. VERIFY_NONE on a client context also turns the
 * host name check off, as Python requires. Returns 0 or -EINVAL. */
ASYNCIO_API int asyncio_tls_context_set_verify(asyncio_tls_context_t *ctx, int mode);

/* Check that the server's certificate names the host connected to
 * (SSLContext.check_hostname; on by default for clients). Returns 0 or
 * -EINVAL (ctx NULL, or on with VERIFY_NONE). */
ASYNCIO_API int asyncio_tls_context_set_check_hostname(asyncio_tls_context_t *ctx, int on);

/*
 * Offer (client) or accept (server) these application protocols, most
 * preferred first (SSLContext.set_alpn_protocols): count names of 1 to 255
 * bytes each, e.g. {"h2", "http/1.1"}. A server picks the first of its own
 * list the client offers; a client whose list the server does not share
 * connects without one (asyncio_tls_selected_alpn_protocol() is NULL).
 * count 0 clears the list. Returns 0, -EINVAL, -ENOMEM.
 */
ASYNCIO_API int asyncio_tls_context_set_alpn_protocols(asyncio_tls_context_t *ctx,
                                                       const char *const *protocols,
                                                       size_t count);

/* The oldest and newest protocol versions allowed (SSLContext.minimum_version
 * and maximum_version): ASYNCIO_TLS_VERSION_1_2 or _1_3; 0 for max means
 * the newest OpenSSL has. Returns 0 or -EINVAL (min above max, or below
 * 1.2). */
ASYNCIO_API int asyncio_tls_context_set_versions(asyncio_tls_context_t *ctx, int min_version,
                                                 int max_version);

/* The cipher lists (SSLContext.set_ciphers): tls12 in OpenSSL's cipher
 * list format for TLS 1.2, tls13 a list of TLS 1.3 suites
 * ("TLS_AES_128_GCM_SHA256:..."); NULL leaves one as it is. Returns 0,
 * -EINVAL (none of a list is known). */
ASYNCIO_API int asyncio_tls_context_set_ciphers(asyncio_tls_context_t *ctx, const char *tls12,
                                                const char *tls13);

/* The number of TLS 1.3 session tickets a server sends after each
 * handshake (SSLContext.num_tickets; 2 unless set): 0 sends none, and
 * spares the server their encryption where no client resumes sessions.
 * Returns 0, or -EINVAL (ctx NULL or a client context). */
ASYNCIO_API int asyncio_tls_context_set_num_tickets(asyncio_tls_context_t *ctx, size_t count);

/* ---- streams ------------------------------------------------------------- */

typedef struct asyncio_tls_options {
    const char *server_hostname; /* client: the name sent (SNI) and checked
                                    (an address is checked, never sent);
                                    "": neither; NULL: -EINVAL if the
                                    context checks host names (Python's
                                    "check_hostname requires
                                    server_hostname"), else neither */
    double handshake_timeout;    /* seconds; 0: 60 (asyncio's) */
    char *error;                 /* if not NULL, a failed handshake writes */
    size_t error_size;           /* why here, as text (NUL-terminated) */
} asyncio_tls_options_t;

/*
 * Upgrade the connected stream s to TLS (StreamWriter.start_tls): waits
 * until what s has queued is sent, then does the TLS handshake as a
 * client or a server (the context's side) within the timeout; bytes s had
 * read and not yet returned are the start of the handshake. From then on
 * s reads and writes through TLS. No other task may use s meanwhile.
 * Returns 0, or a negative errno having closed and freed s (asyncio closes
 * the transport of a failed start_tls): -ASYNCIO_ECERT (the certificate
 * did not verify), -EPROTO (the handshake failed: an alert, garbage, no
 * shared protocol version or cipher), -ECONNRESET (the peer closed), the
 * socket's errors, -ETIMEDOUT (the handshake timeout, or the caller's
 * scope), -ECANCELED, -ENOMEM; and, with s untouched (misuse): -EINVAL
 * (s or ctx NULL, a bad timeout or server_hostname), -EEXIST (s has TLS
 * already), -EBUSY (another task reads s), -ENOTSOCK, -EPERM (not in a
 * task), -EBADF (s closed, by another task while the queue went out).
 * opts may be NULL. May suspend.
 */
ASYNCIO_API int asyncio_start_tls(asyncio_stream_t *s, asyncio_tls_context_t *ctx,
                                  const asyncio_tls_options_t *opts);

/* Whether s reads and writes through TLS: 1 or 0. Does not suspend. */
ASYNCIO_API int asyncio_tls_is_tls(const asyncio_stream_t *s);

/* The protocol version in use ("TLSv1.3"), or NULL if s is not TLS. */
ASYNCIO_API const char *asyncio_tls_version(const asyncio_stream_t *s);

/* The cipher suite in use ("TLS_AES_256_GCM_SHA384"), or NULL. */
ASYNCIO_API const char *asyncio_tls_cipher(const asyncio_stream_t *s);

/* The application protocol agreed (ALPN), or NULL if none was. Valid
 * while s is open. */
ASYNCIO_API const char *asyncio_tls_selected_alpn_protocol(const asyncio_stream_t *s);

/*
 * The subject of the peer's certificate as one line of text
 * ("CN=example.com,O=..."), written to buf (cap bytes, NUL-terminated,
 * cut short if it does not fit): returns its full length, -ENOENT (the
 * peer sent none), -EINVAL (s not TLS, buf NULL with cap > 0). Does not
 * suspend.
 */
ASYNCIO_API int asyncio_tls_peer_subject(const asyncio_stream_t *s, char *buf, size_t cap);

/* Why the last TLS call on s failed, as text ("certificate has expired",
 * "unexpected eof while reading", ...), or NULL if none did. Valid until
 * the next call on s. Does not suspend. */
ASYNCIO_API const char *asyncio_tls_error(const asyncio_stream_t *s);

#ifdef __cplusplus
}
#endif

#endif
