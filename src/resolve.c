/* Name resolution off the loop: asyncio_getaddrinfo(), getaddrinfo(3) in
 * the loop's default executor, and net_resolve(), host and port for the clients,
 * servers and datagram endpoints. A numeric host needs no thread; a lookup
 * whose task was cancelled finishes in its thread and is freed when it
 * comes back. */
#include "net.h"
#include "thread.h"

#include <asyncio/net.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lookup {
    char *host, *service;  /* copies: the caller may be gone */
    struct addrinfo hints;
    bool has_hints;
    int rc;                /* getaddrinfo's, and errno for EAI_SYSTEM */
    int err;
    struct addrinfo *res;
};

static void *lookup_work(void *arg)
{
    struct lookup *l = arg;
    l->rc = getaddrinfo(l->host, l->service, l->has_hints ? &l->hints : NULL, &l->res);
    l->err = errno;
    return l;
}

static void lookup_free(struct lookup *l)
{
    if (l->res)
        freeaddrinfo(l->res);
    free(l->host);
    free(l->service);
    free(l);
}

static void lookup_release(void *arg, void *result)
{
    (void)result;
    lookup_free(arg);
}

static int eai_errno(int rc, int err)
{
    switch (rc) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_SERVICE:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENOENT;
    /* GCOVR_EXCL_START: failures of the system's resolver a test cannot cause (no name server, no memory) */
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_SYSTEM:
        return err > 0 ? -err : -EIO;
    default:
        return -EIO;
        /* GCOVR_EXCL_STOP */
    }
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

int asyncio_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res)
{
    if (!res || (!host && !service))
        return -EINVAL;
    *res = NULL;
    struct loop *loop = loop_current();
    if (!loop || !loop->current)
        return -EPERM;
    /* A number needs no lookup: answer at once. */
    struct addrinfo h = hints ? *hints : (struct addrinfo){0};
    h.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(host, service, &h, res);
    if (rc != EAI_NONAME || !host)
        return eai_errno(rc, errno);
    bool failed = false;
    struct lookup *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->host = dup_or_null(host, &failed);
    l->service = dup_or_null(service, &failed);
    if (hints) {
        l->hints = *hints;
        l->hints.ai_addr = NULL;
        l->hints.ai_canonname = NULL;
        l->hints.ai_next = NULL;
        l->has_hints = true;
    }
    if (failed) {
        lookup_free(l);
        return -ENOMEM;
    }
    rc = asyncio_to_thread(lookup_work, l, lookup_release, NULL);
    if (rc < 0)
        return rc; /* released, now or once the lookup is done */
    rc = eai_errno(l->rc, l->err);
    if (rc == 0) {
        *res = l->res;
        l->res = NULL;
    }
    lookup_free(l);
    return rc;
}

int net_resolve(const char *host, int port, int family, int type, bool passive,
                struct addrinfo **res)
{
    if (port < 0 || port > 65535)
        return -EINVAL; /* GCOVR_EXCL_LINE: every caller checked the port */
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {0};
    hints.ai_family = family;
    hints.ai_socktype = type;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : AI_ADDRCONFIG);
    if (host && !*host)
        host = NULL;
    return asyncio_getaddrinfo(host, service, &hints, res);
}
