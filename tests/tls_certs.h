/*
 * Certificates for the TLS tests, made with OpenSSL 3's API (no openssl
 * command needed): EC P-256 keys, written as PEM files into a fresh
 * temporary directory.
 *
 *   ca            the CA the tests trust (CN=asyncio test CA)
 *   server        signed by ca, for DNS:localhost, IP:127.0.0.1, IP:::1
 *   server_combined  the server's certificate and key in one file
 *   expired       as server, but its notAfter is a day in the past
 *   other         signed by ca, for DNS:other.example only
 *   self          a self-signed certificate for localhost and 127.0.0.1
 *   rogue_ca      a second CA, trusted by nobody
 *   rogue         signed by rogue_ca, for localhost and 127.0.0.1
 *   client        a client certificate (CN=asyncio test client) from ca
 *   rogue_client  a client certificate from rogue_ca
 *   garbage       a file with no PEM in it
 */
#ifndef ASYNCIO_TESTS_TLS_CERTS_H
#define ASYNCIO_TESTS_TLS_CERTS_H

#define TLS_CERTS_PATH 512

struct tls_pem {
    char cert[TLS_CERTS_PATH];
    char key[TLS_CERTS_PATH];
};

struct tls_certs {
    char dir[TLS_CERTS_PATH];
    struct tls_pem ca, server, expired, other, self, rogue_ca, rogue, client, rogue_client;
    char server_combined[TLS_CERTS_PATH];
    char garbage[TLS_CERTS_PATH];
};

/* Make the directory and every file. Returns 0, or -1 having said why on
 * stderr and removed what it made. */
int tls_certs_make(struct tls_certs *c);

/* Remove the files and the directory. */
void tls_certs_remove(struct tls_certs *c);

#endif
