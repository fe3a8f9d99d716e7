/*
 * A tiny program built against an *installed* libasyncio-tls, the way a
 * user would: through find_package(asyncio) (asyncio::tls or
 * asyncio::tls_static) or pkg-config (asyncio-tls). It only uses the
 * public headers <asyncio.h> and <asyncio/tls.h> (which needs no OpenSSL
 * header), and needs no network, certificate or key:
 *  - makes a client and a server context and sets ALPN on both;
 *  - checks the errors of bad calls: NULL arguments and a bad side give
 *    -EINVAL, a certificate or CA file that does not exist -ENOENT;
 *  - runs a task that calls asyncio_start_tls() on a NULL stream, which
 *    must give -EINVAL;
 *  - drops the contexts' references.
 * Exits 0 on success, 1 (with a message) on any failure.
 */
#include <asyncio.h>
#include <asyncio/tls.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Under a directory that does not exist, so that it is missing everywhere. */
#define MISSING_FILE "/nonexistent-asyncio-install-test/missing.pem"

static int failures;

static void expect(const char *what, int got, int want)
{
    if (got != want) {
        fprintf(stderr, "tls_consumer: %s returned %d (%s), want %d (%s)\n", what, got,
                got < 0 ? strerror(-got) : "ok", want, want < 0 ? strerror(-want) : "ok");
        failures++;
    }
}

struct start_tls_call {
    asyncio_tls_context_t *ctx;
    int ran;
    int rc;
};

/* The task returns 0, and leaves asyncio_start_tls()'s result in the
 * struct: asyncio_run() gives -EINVAL for its own reasons too. */
static int start_tls_task(void *arg, void **result)
{
    struct start_tls_call *call = arg;
    asyncio_tls_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.server_hostname = "example.com";
    opts.handshake_timeout = 1.0;
    call->ran = 1;
    call->rc = asyncio_start_tls(NULL, call->ctx, &opts);
    *result = call;
    return 0;
}

int main(void)
{
    static const char *const alpn[] = {"h2", "http/1.1"};
    asyncio_tls_context_t *client = NULL;
    asyncio_tls_context_t *server = NULL;
    asyncio_tls_context_t *bad = NULL;

    int rc = asyncio_tls_context_new(&client, ASYNCIO_TLS_CLIENT);
    expect("asyncio_tls_context_new(CLIENT)", rc, 0);
    rc = asyncio_tls_context_new(&server, ASYNCIO_TLS_SERVER);
    expect("asyncio_tls_context_new(SERVER)", rc, 0);
    if (client == NULL || server == NULL) {
        fprintf(stderr, "tls_consumer: no context made\n");
        asyncio_tls_context_unref(client);
        asyncio_tls_context_unref(server);
        return 1;
    }
    expect("asyncio_tls_context_set_alpn_protocols(client)",
           asyncio_tls_context_set_alpn_protocols(client, alpn, 2), 0);
    expect("asyncio_tls_context_set_alpn_protocols(server)",
           asyncio_tls_context_set_alpn_protocols(server, alpn, 1), 0);

    /* Bad calls. */
    expect("asyncio_tls_context_new(NULL, CLIENT)",
           asyncio_tls_context_new(NULL, ASYNCIO_TLS_CLIENT), -EINVAL);
    expect("asyncio_tls_context_new(&ctx, 3)", asyncio_tls_context_new(&bad, 3), -EINVAL);
    if (bad != NULL) {
        fprintf(stderr, "tls_consumer: a failed asyncio_tls_context_new made a context\n");
        asyncio_tls_context_unref(bad);
        failures++;
    }
    expect("asyncio_tls_context_set_alpn_protocols(NULL, ...)",
           asyncio_tls_context_set_alpn_protocols(NULL, alpn, 2), -EINVAL);
    expect("asyncio_tls_context_load_cert_chain(NULL, ...)",
           asyncio_tls_context_load_cert_chain(NULL, MISSING_FILE, NULL), -EINVAL);
    expect("asyncio_tls_context_load_cert_chain(server, NULL, NULL)",
           asyncio_tls_context_load_cert_chain(server, NULL, NULL), -EINVAL);
    expect("asyncio_tls_context_load_cert_chain(server, <missing file>, NULL)",
           asyncio_tls_context_load_cert_chain(server, MISSING_FILE, NULL), -ENOENT);
    expect("asyncio_tls_context_load_verify_locations(client, NULL, NULL)",
           asyncio_tls_context_load_verify_locations(client, NULL, NULL), -EINVAL);
    expect("asyncio_tls_context_load_verify_locations(client, <missing file>, NULL)",
           asyncio_tls_context_load_verify_locations(client, MISSING_FILE, NULL), -ENOENT);

    /* asyncio_start_tls() in a task, on no stream. */
    struct start_tls_call call = {client, 0, 1};
    void *result = NULL;
    rc = asyncio_run(start_tls_task, &call, &result);
    expect("asyncio_run(start_tls_task)", rc, 0);
    if (!call.ran || result != &call) {
        fprintf(stderr, "tls_consumer: the task did not run (result %p)\n", result);
        failures++;
    } else {
        expect("asyncio_start_tls(NULL, client, opts) in a task", call.rc, -EINVAL);
    }

    asyncio_tls_context_unref(server);
    asyncio_tls_context_unref(client);
    asyncio_tls_context_unref(NULL);
    if (failures != 0) {
        fprintf(stderr, "tls_consumer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("tls_consumer: ok (libasyncio-tls %d.%d.%d, ASYNCIO_ECERT %d)\n",
           ASYNCIO_VERSION_MAJOR, ASYNCIO_VERSION_MINOR, ASYNCIO_VERSION_PATCH, ASYNCIO_ECERT);
    return 0;
}
