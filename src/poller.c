/* Choosing the backend: the poller subsystem's init and term (see
 * poller.h for the interface, poller_epoll.c and poller_poll.c for the
 * backends). */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first is the default: epoll on Linux, kqueue where it is the
 * system's own (on Linux it is there only with libkqueue, by name). */
static const struct poller_ops *const backends[] = {
#ifdef __linux__
    &poller_epoll_ops,
#endif
#ifdef ASYNCIO_HAVE_KQUEUE
    &poller_kqueue_ops,
#endif
    &poller_poll_ops,
};

int poller_init(struct loop *loop)
{
    struct poller *p = &loop->poller;
    const char *name = loop->opts ? loop->opts->backend : NULL;
    if (!name || !*name)
        name = getenv("ASYNCIO_BACKEND");
    const struct poller_ops *ops = backends[0];
    if (name && *name) {
        ops = NULL;
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
            if (strcmp(backends[i]->name, name) == 0)
                ops = backends[i];
        if (!ops)
            return -ENOENT;
    }
    p->ops = ops;
    p->state = NULL;
    return ops->init(p);
}

void poller_term(struct loop *loop)
{
    loop->poller.ops->close(&loop->poller);
}
