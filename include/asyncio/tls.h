/**
 * \file asyncio/tls.h
 * \brief TLS for streams, in the optional library libasyncio-tls (asyncio's
 *        ssl= and start_tls).
 *
 * TLS for streams (asyncio's ssl= and start_tls), in the optional library
 * libasyncio-tls over OpenSSL 3. Link with it: CMake target `asyncio::tls`
 * (or `asyncio::tls_static`), pkg-config `asyncio-tls` (`-lasyncio-tls`).
 * It is built (and this header installed) only where OpenSSL 3 was found.
 * The core library libasyncio does not depend on it; <asyncio.h> does not
 * include this header: include <asyncio/tls.h> itself. Including it needs
 * no OpenSSL header.
 *
 * \par Contexts
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
 * \par TLS streams
 * A TLS stream is an asyncio_stream_t: every call of <asyncio/stream.h>
 * works on it with the same meaning, reading and writing plain text.
 * asyncio_stream_write_eof() sends TLS's close_notify (then shuts the
 * socket's sending side); asyncio_stream_close() sends close_notify after
 * what is queued, as asyncio does; asyncio_stream_abort() sends nothing.
 * A read returns 0 (the end) only after the peer's close_notify.
 *
 * \par Errors
 * Errors of a TLS stream, besides the socket's:
 * - -EPROTO: the peer broke the protocol: garbage, a bad record, a fatal
 *   alert, a failed handshake;
 * - -ECONNRESET: the peer closed the connection without close_notify (the
 *   data may have been cut short);
 * - -#ASYNCIO_ECERT: the peer's certificate did not verify (expired,
 *   self-signed, untrusted, for another host);
 *
 * and asyncio_tls_error() gives the reason as text. The library never
 * prints OpenSSL's errors, and leaves OpenSSL's per-thread error queue
 * empty.
 *
 * \par Thread safety
 * Contexts as above; everything else is called from the thread of the
 * stream's loop, as the stream's own calls are.
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

/**
 * The errno of a certificate that did not verify (asyncio's
 * ssl.SSLCertVerificationError).
 *
 * EKEYREJECTED where the system has it (Linux), else EAUTH, else EACCES.
 * Calls return it negated.
 */
#if defined(EKEYREJECTED)
#define ASYNCIO_ECERT EKEYREJECTED
#elif defined(EAUTH)
#define ASYNCIO_ECERT EAUTH
#else
#define ASYNCIO_ECERT EACCES
#endif

/* A context's side (ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER). */
#define ASYNCIO_TLS_CLIENT 1 /**< a client context (ssl.PROTOCOL_TLS_CLIENT) */
#define ASYNCIO_TLS_SERVER 2 /**< a server context (ssl.PROTOCOL_TLS_SERVER) */

/* Peer verification (ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED). */
#define ASYNCIO_TLS_VERIFY_NONE 0     /**< verify no peer (ssl.CERT_NONE) */
#define ASYNCIO_TLS_VERIFY_OPTIONAL 1 /**< verify a certificate the peer sends
                                           (ssl.CERT_OPTIONAL); on a client,
                                           the same as REQUIRED */
#define ASYNCIO_TLS_VERIFY_REQUIRED 2 /**< the peer must send a certificate that
                                           verifies (ssl.CERT_REQUIRED) */

/* Protocol versions (ssl.TLSVersion). */
#define ASYNCIO_TLS_VERSION_1_2 0x0303 /**< TLS 1.2 (ssl.TLSVersion.TLSv1_2) */
#define ASYNCIO_TLS_VERSION_1_3 0x0304 /**< TLS 1.3 (ssl.TLSVersion.TLSv1_3) */

/* ---- contexts ------------------------------------------------------------ */

/**
 * Make a context (ssl.create_default_context() for #ASYNCIO_TLS_CLIENT;
 * SSLContext(PROTOCOL_TLS_SERVER) for #ASYNCIO_TLS_SERVER).
 *
 * A client one verifies servers (#ASYNCIO_TLS_VERIFY_REQUIRED) with the
 * system's CA store and checks host names; a server one asks for no client
 * certificate (#ASYNCIO_TLS_VERIFY_NONE).
 *
 * \param out   receives the context
 * \param side  #ASYNCIO_TLS_CLIENT or #ASYNCIO_TLS_SERVER
 * \return 0 and the context, with one reference, in *out; -EINVAL (out
 *         NULL, a side that is neither), -ENOMEM (also when OpenSSL could
 *         not make its context).
 * \suspends No.
 * \context Any thread, with or without a loop.
 */
ASYNCIO_API int asyncio_tls_context_new(asyncio_tls_context_t **out, int side);

/**
 * Take one more reference to a context.
 *
 * \param ctx  the context (NULL or not a context: nothing is done)
 * \return ctx.
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API asyncio_tls_context_t *asyncio_tls_context_ref(asyncio_tls_context_t *ctx);

/**
 * Drop a reference; the last frees the context.
 *
 * \param ctx  the context; NULL is ignored
 * \suspends No.
 * \context Any thread.
 */
ASYNCIO_API void asyncio_tls_context_unref(asyncio_tls_context_t *ctx);

/**
 * Trust the CA certificates in cafile and/or capath instead of the
 * system's store (SSLContext.load_verify_locations()).
 *
 * The first call replaces the system's store; later calls add to it. The
 * files are read now, from the calling thread.
 *
 * \param ctx     the context
 * \param cafile  a file of CA certificates (PEM), or NULL
 * \param capath  a directory of CA certificates (OpenSSL's hashed layout),
 *                or NULL
 * \return 0; -EINVAL (both NULL, or ctx NULL), -ENOENT (no such file or
 *         directory), -EPROTO (no certificate could be read), -ENOMEM.
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_load_verify_locations(asyncio_tls_context_t *ctx,
                                                          const char *cafile,
                                                          const char *capath);

/**
 * Use a certificate chain and its private key (SSLContext.load_cert_chain()):
 * what a server presents, or a client when the server asks.
 *
 * \param ctx       the context
 * \param certfile  the certificate chain (PEM: the certificate first, then
 *                  its intermediates); not NULL
 * \param keyfile   the private key (PEM); NULL: the key is in certfile
 * \return 0; -EINVAL (ctx or certfile NULL, or the key does not match the
 *         certificate), -ENOENT (a file missing), -EPROTO (not a
 *         certificate or key).
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_load_cert_chain(asyncio_tls_context_t *ctx,
                                                    const char *certfile, const char *keyfile);

/**
 * Set how peers are verified (SSLContext.verify_mode).
 *
 * #ASYNCIO_TLS_VERIFY_NONE on a client context also turns the host name
 * check off, as Python requires.
 *
 * \param ctx   the context
 * \param mode  #ASYNCIO_TLS_VERIFY_NONE, #ASYNCIO_TLS_VERIFY_OPTIONAL or
 *              #ASYNCIO_TLS_VERIFY_REQUIRED
 * \return 0; -EINVAL (ctx NULL, another mode).
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_set_verify(asyncio_tls_context_t *ctx, int mode);

/**
 * Check that the server's certificate names the host connected to
 * (SSLContext.check_hostname; on by default for clients).
 *
 * \param ctx  the context
 * \param on   nonzero: check; 0: do not
 * \return 0; -EINVAL (ctx NULL, or on with #ASYNCIO_TLS_VERIFY_NONE).
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_set_check_hostname(asyncio_tls_context_t *ctx, int on);

/**
 * Offer (client) or accept (server) these application protocols, most
 * preferred first (SSLContext.set_alpn_protocols()).
 *
 * A server picks the first of its own list the client offers; a client
 * whose list the server does not share connects without one
 * (asyncio_tls_selected_alpn_protocol() is NULL).
 *
 * \param ctx        the context
 * \param protocols  count names of 1 to 255 bytes each, for example
 *                   {"h2", "http/1.1"}; may be NULL only if count is 0
 * \param count      how many; 0 clears the list
 * \return 0; -EINVAL (ctx NULL, protocols NULL with count > 0, a name NULL,
 *         empty or longer than 255 bytes, the list over 65535 bytes),
 *         -ENOMEM.
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_set_alpn_protocols(asyncio_tls_context_t *ctx,
                                                       const char *const *protocols,
                                                       size_t count);

/**
 * Set the oldest and newest protocol versions allowed
 * (SSLContext.minimum_version and maximum_version).
 *
 * \param ctx          the context
 * \param min_version  #ASYNCIO_TLS_VERSION_1_2 or #ASYNCIO_TLS_VERSION_1_3
 * \param max_version  #ASYNCIO_TLS_VERSION_1_2 or #ASYNCIO_TLS_VERSION_1_3;
 *                     0: the newest OpenSSL has
 * \return 0; -EINVAL (ctx NULL, min above max, or below 1.2, another
 *         value).
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_set_versions(asyncio_tls_context_t *ctx, int min_version,
                                                 int max_version);

/**
 * Set the cipher lists (SSLContext.set_ciphers()).
 *
 * \param ctx    the context
 * \param tls12  the ciphers of TLS 1.2, in OpenSSL's cipher list format;
 *               NULL leaves them as they are
 * \param tls13  a list of TLS 1.3 suites ("TLS_AES_128_GCM_SHA256:...");
 *               NULL leaves it as it is
 * \return 0; -EINVAL (ctx NULL, none of a list is known).
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_set_ciphers(asyncio_tls_context_t *ctx, const char *tls12,
                                                const char *tls13);

/**
 * Set the number of TLS 1.3 session tickets a server sends after each
 * handshake (SSLContext.num_tickets; 2 unless set).
 *
 * \param ctx    a server context
 * \param count  how many; 0 sends none, and spares the server their
 *               encryption where no client resumes sessions
 * \return 0; -EINVAL (ctx NULL or a client context).
 * \suspends No.
 * \context Any thread, before the context is first used.
 */
ASYNCIO_API int asyncio_tls_context_set_num_tickets(asyncio_tls_context_t *ctx, size_t count);

/* ---- streams ------------------------------------------------------------- */

/** Options of asyncio_start_tls(). Zero-initialise: every 0 member is a default. */
typedef struct asyncio_tls_options {
    const char *server_hostname; /**< client: the name sent (SNI) and checked
                                    (an address is checked, never sent);
                                    "": neither; NULL: -EINVAL if the
                                    context checks host names (Python's
                                    "check_hostname requires
                                    server_hostname"), else neither */
    double handshake_timeout;    /**< seconds; 0: 60 (asyncio's) */
    char *error;                 /**< if not NULL, a failed handshake writes
                                      why here, as text (NUL-terminated) */
    size_t error_size;           /**< the size of error */
} asyncio_tls_options_t;

/**
 * Upgrade the connected stream s to TLS (StreamWriter.start_tls()).
 *
 * Waits until what s has queued is sent, then does the TLS handshake as a
 * client or a server (the context's side) within the timeout; bytes s had
 * read and not yet returned are the start of the handshake. From then on s
 * reads and writes through TLS. No other task may use s meanwhile.
 *
 * \param s     the stream, over a connected socket
 * \param ctx   the context; the stream holds a reference to it
 * \param opts  the options; NULL for the defaults
 * \return 0; or a negative errno having closed and freed s (asyncio closes
 *         the transport of a failed start_tls): -#ASYNCIO_ECERT (the
 *         certificate did not verify), -EPROTO (the handshake failed: an
 *         alert, garbage, no shared protocol version or cipher),
 *         -ECONNRESET (the peer closed), the socket's errors, -ETIMEDOUT
 *         (the handshake timeout, or the caller's scope), -ECANCELED,
 *         -ENOMEM; and, with s untouched (misuse): -EINVAL (s or ctx NULL,
 *         a bad timeout or server_hostname), -EEXIST (s has TLS already),
 *         -EBUSY (another task reads or drains s, or sends a file on it),
 *         -ENOTSOCK, -EPERM (not in a task),
 *         -EBADF (s closed, by another task while the queue went out).
 * \suspends Yes: while what was queued is sent and during the handshake.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_start_tls(asyncio_stream_t *s, asyncio_tls_context_t *ctx,
                                  const asyncio_tls_options_t *opts);

/**
 * Whether s reads and writes through TLS.
 *
 * \param s  the stream
 * \return 1 or 0 (also for s NULL).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_tls_is_tls(const asyncio_stream_t *s);

/**
 * The protocol version in use ("TLSv1.3").
 *
 * \param s  the stream
 * \return the version, a constant string; NULL if s is not TLS.
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API const char *asyncio_tls_version(const asyncio_stream_t *s);

/**
 * The cipher suite in use ("TLS_AES_256_GCM_SHA384").
 *
 * \param s  the stream
 * \return the suite's name, a constant string; NULL if s is not TLS.
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API const char *asyncio_tls_cipher(const asyncio_stream_t *s);

/**
 * The application protocol agreed (ALPN).
 *
 * \param s  the stream
 * \return the protocol, valid while s is open; NULL if none was agreed (or
 *         s is not TLS).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API const char *asyncio_tls_selected_alpn_protocol(const asyncio_stream_t *s);

/**
 * The subject of the peer's certificate as one line of text
 * ("CN=example.com,O=...").
 *
 * \param s    the stream
 * \param buf  receives the text, NUL-terminated, cut short if it does not
 *             fit; may be NULL only if cap is 0
 * \param cap  the size of buf
 * \return the text's full length (without the NUL); -ENOENT (the peer sent
 *         no certificate), -EINVAL (s not TLS, buf NULL with cap > 0),
 *         -ENOMEM.
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API int asyncio_tls_peer_subject(const asyncio_stream_t *s, char *buf, size_t cap);

/**
 * Why the last TLS call on s failed, as text ("certificate has expired",
 * "unexpected eof while reading", ...).
 *
 * \param s  the stream
 * \return the text, valid until the next call on s; NULL if none failed
 *         (or s is not TLS).
 * \suspends No.
 * \context The loop's thread: a task or a callback.
 */
ASYNCIO_API const char *asyncio_tls_error(const asyncio_stream_t *s);

#ifdef __cplusplus
}
#endif

#endif
