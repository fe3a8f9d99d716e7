/*
 * Certificates for the TLS tests (see tls_certs.h), made in C with
 * OpenSSL 3 so that the tests need no openssl command and take no
 * noticeable time: EC P-256 keys sign in microseconds.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "tls_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY (24L * 60 * 60)

enum kind { KIND_CA, KIND_SERVER, KIND_CLIENT, KIND_SELF };

/* One extension, made as the openssl command's config files would. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -1;
    int ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

/*
 * A certificate for key with subject CN=cn, valid from not_before to
 * not_after seconds from now, signed by issuer/issuer_key (NULL: by
 * itself). san, if not NULL, is its subjectAltName ("DNS:x,IP:y").
 */
static X509 *make_cert(enum kind kind, EVP_PKEY *key, const char *cn, const char *san,
                       X509 *issuer, EVP_PKEY *issuer_key, long not_before, long not_after)
{
    static long serial = 1;
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_NAME *name = X509_get_subject_name(x);
    int ok = X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) &&
             X509_gmtime_adj(X509_getm_notBefore(x), not_before) &&
             X509_gmtime_adj(X509_getm_notAfter(x), not_after) && X509_set_pubkey(x, key) &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                        (const unsigned char *)"libasyncio tests", -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                                        -1, -1, 0) &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    if (!ok)
        goto fail;
    X509 *signer = issuer ? issuer : x;
    if (add_ext(x, signer, NID_subject_key_identifier, "hash") < 0)
        goto fail;
    switch (kind) {
    case KIND_CA:
        if (add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
            add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
            goto fail;
        break;
    case KIND_SERVER:
    case KIND_CLIENT:
        if (add_ext(x, signer, NID_basic_constraints, "CA:FALSE") < 0 ||
            add_ext(x, signer, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(x, signer, NID_ext_key_usage,
                    kind == KIND_SERVER ? "serverAuth" : "clientAuth") < 0)
            goto fail;
        break;
    case KIND_SELF:
        /* No key usage: a key usage without keyCertSign would keep
         * OpenSSL from seeing it as self-signed at all. */
        break;
    }
    if (san && add_ext(x, signer, NID_subject_alt_name, san) < 0)
        goto fail;
    if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
        goto fail;
    return x;
fail:
    X509_free(x);
    return NULL;
}

static int join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, TLS_CERTS_PATH, "%s/%s", dir, name);
    return n > 0 && n < TLS_CERTS_PATH ? 0 : -1;
}

/* Write x (and key, if not NULL) as PEM to path. */
static int write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = (!x || PEM_write_X509(f, x)) &&
             (!key || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Make key and certificate for one name and write both files. */
static int make_pair(struct tls_pem *pem, const char *dir, const char *name, enum kind kind,
                     const char *cn, const char *san, X509 *issuer, EVP_PKEY *issuer_key,
                     long not_before, long not_after, X509 **x_out, EVP_PKEY **key_out)
{
    char file[64];
    snprintf(file, sizeof file, "%s.crt", name);
    if (join(pem->cert, dir, file) < 0)
        return -1;
    snprintf(file, sizeof file, "%s.key", name);
    if (join(pem->key, dir, file) < 0)
        return -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        return -1;
    X509 *x = make_cert(kind, key, cn, san, issuer, issuer_key, not_before, not_after);
    int rc = x && write_pem(pem->cert, x, NULL) == 0 && write_pem(pem->key, NULL, key) == 0
                 ? 0
                 : -1;
    if (rc == 0 && x_out && key_out) {
        *x_out = x;
        *key_out = key;
        return 0;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int tls_certs_make(struct tls_certs *c)
{
    memset(c, 0, sizeof *c);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(c->dir, sizeof c->dir, "%s/asyncio-tls-XXXXXX", tmp);
    if (!mkdtemp(c->dir)) {
        perror("tls_certs: mkdtemp");
        c->dir[0] = '\0';
        return -1;
    }
    X509 *ca = NULL, *rogue_ca = NULL;
    EVP_PKEY *ca_key = NULL, *rogue_key = NULL;
    const char *local = "DNS:localhost,IP:127.0.0.1,IP:::1";
    const long valid = 30 * DAY;
    int rc = make_pair(&c->ca, c->dir, "ca", KIND_CA, "asyncio test CA", NULL, NULL, NULL,
                       -DAY, valid, &ca, &ca_key);
    if (rc == 0)
        rc = make_pair(&c->rogue_ca, c->dir, "rogue-ca", KIND_CA, "asyncio rogue CA", NULL,
                       NULL, NULL, -DAY, valid, &rogue_ca, &rogue_key);
    if (rc == 0)
        rc = make_pair(&c->server, c->dir, "server", KIND_SERVER, "localhost", local, ca,
                       ca_key, -DAY, valid, NULL, NULL);
    if (rc == 0)
        rc = make_pair(&c->expired, c->dir, "expired", KIND_SERVER, "localhost", local, ca,
                       ca_key, -2 * DAY, -DAY, NULL, NULL);
    if (rc == 0)
        rc = make_pair(&c->other, c->dir, "other", KIND_SERVER, "other.example",
                       "DNS:other.example", ca, ca_key, -DAY, valid, NULL, NULL);
    if (rc == 0)
        rc = make_pair(&c->self, c->dir, "self", KIND_SELF, "localhost", local, NULL, NULL,
                       -DAY, valid, NULL, NULL);
    if (rc == 0)
        rc = make_pair(&c->rogue, c->dir, "rogue", KIND_SERVER, "localhost", local, rogue_ca,
                       rogue_key, -DAY, valid, NULL, NULL);
    if (rc == 0)
        rc = make_pair(&c->client, c->dir, "client", KIND_CLIENT, "asyncio test client", NULL,
                       ca, ca_key, -DAY, valid, NULL, NULL);
    if (rc == 0)
        rc = make_pair(&c->rogue_client, c->dir, "rogue-client", KIND_CLIENT,
                       "asyncio rogue client", NULL, rogue_ca, rogue_key, -DAY, valid, NULL,
                       NULL);
    X509_free(ca);
    X509_free(rogue_ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(rogue_key);
    /* The server's certificate and key in one file (keyfile NULL). */
    if (rc == 0)
        rc = join(c->server_combined, c->dir, "server-combined.pem");
    if (rc == 0) {
        FILE *out = fopen(c->server_combined, "w");
        rc = out ? 0 : -1;
        const char *parts[2] = {c->server.cert, c->server.key};
        for (int i = 0; i < 2 && rc == 0; i++) {
            FILE *in = fopen(parts[i], "r");
            char buf[4096];
            size_t n;
            if (!in) {
                rc = -1;
                break;
            }
            while ((n = fread(buf, 1, sizeof buf, in)) > 0)
                if (fwrite(buf, 1, n, out) != n)
                    rc = -1;
            fclose(in);
        }
        if (out && fclose(out) != 0)
            rc = -1;
    }
    if (rc == 0)
        rc = join(c->garbage, c->dir, "garbage.pem");
    if (rc == 0) {
        FILE *out = fopen(c->garbage, "w");
        rc = out && fputs("this is not a certificate\n\x01\x02\x03 nor a key\n", out) >= 0
                 ? 0
                 : -1;
        if (out && fclose(out) != 0)
            rc = -1;
    }
    if (rc < 0) {
        fprintf(stderr, "tls_certs: could not make the test certificates in %s\n", c->dir);
        ERR_print_errors_fp(stderr);
        tls_certs_remove(c);
        return -1;
    }
    ERR_clear_error();
    return 0;
}

void tls_certs_remove(struct tls_certs *c)
{
    if (!c->dir[0])
        return;
    const struct tls_pem *pems[] = {&c->ca,   &c->server,   &c->expired,
                                    &c->other, &c->self,    &c->rogue_ca,
                                    &c->rogue, &c->client,  &c->rogue_client};
    for (size_t i = 0; i < sizeof pems / sizeof pems[0]; i++) {
        if (pems[i]->cert[0])
            unlink(pems[i]->cert);
        if (pems[i]->key[0])
            unlink(pems[i]->key);
    }
    if (c->server_combined[0])
        unlink(c->server_combined);
    if (c->garbage[0])
        unlink(c->garbage);
    if (rmdir(c->dir) < 0)
        perror("tls_certs: rmdir");
    c->dir[0] = '\0';
}
