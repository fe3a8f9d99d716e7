/* The BIO under a TLS stream: a non-blocking socket, read with recv(2) and
 * written with send(2) and MSG_NOSIGNAL (OpenSSL's socket BIO uses write(),
 * which raises SIGPIPE on a connection the peer reset). Bytes the stream had
 * read before TLS began (start_tls) are read first.
 *
 * The BIO_METHOD is made once per process (pthread_once) and never changes
 * after: the only state this library shares between threads besides the
 * contexts the program shares itself. */
#include "tls.h"

#include <openssl/bio.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* BSD: the core sets SO_NOSIGPIPE on the socket */
#endif

struct tls_bio {
    int fd;
    int err;               /* errno of the last failed system call */
    unsigned char *prefix; /* read before the socket */
    size_t plen, ppos;
};

static int bio_write(BIO *b, const char *buf, int len)
{
    struct tls_bio *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t r = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
        if (r >= 0)
            return (int)r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        else
            t->err = errno;
        return -1;
    }
}

static int bio_read(BIO *b, char *buf, int len)
{
    struct tls_bio *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (t->prefix) {
        size_t n = t->plen - t->ppos < (size_t)len ? t->plen - t->ppos : (size_t)len;
        memcpy(buf, t->prefix + t->ppos, n);
        t->ppos += n;
        if (t->ppos == t->plen) {
            free(t->prefix);
            t->prefix = NULL;
        }
        return (int)n;
    }
    for (;;) {
        ssize_t r = recv(t->fd, buf, (size_t)len, 0);
        if (r >= 0)
            return (int)r; /* 0: the end, which OpenSSL tells apart */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_read(b);
        else
            t->err = errno;
        return -1;
    }
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* nothing is held back */
        return 1;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    struct tls_bio *t = BIO_get_data(b);
    if (t) {
        free(t->prefix);
        free(t);
        BIO_set_data(b, NULL);
    }
    return 1;
}

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static void method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "asyncio socket");
    if (m && (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
              !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create) ||
              !BIO_meth_set_destroy(m, bio_destroy))) {
        BIO_meth_free(m); /* GCOVR_EXCL_LINE: the setters only store a pointer */
        m = NULL;         /* GCOVR_EXCL_LINE */
    }
    method = m;
}

BIO *tls_bio_new(int fd)
{
    pthread_once(&method_once, method_init);
    if (!method)
        return NULL; /* no memory when it was made: TLS fails with -ENOMEM */
    struct tls_bio *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fd = fd;
    BIO *b = BIO_new(method);
    if (!b) {
        free(t);
        return NULL;
    }
    BIO_set_data(b, t);
    return b;
}

int tls_bio_set_prefix(BIO *bio, const void *data, size_t n)
{
    struct tls_bio *t = BIO_get_data(bio);
    if (!n)
        return 0;
    unsigned char *p = malloc(n);
    if (!p)
        return -ENOMEM;
    memcpy(p, data, n);
    free(t->prefix);
    t->prefix = p;
    t->plen = n;
    t->ppos = 0;
    return 0;
}

int tls_bio_take_errno(BIO *bio)
{
    struct tls_bio *t = BIO_get_data(bio);
    int err = t->err;
    t->err = 0;
    return err;
}
