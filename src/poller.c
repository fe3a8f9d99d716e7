/* The poller seam (poller.h): the backends built in, and opening the one
 * asked for by name, by $ASYNCIO_BACKEND, or else the first (the best). */
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct poller_ops *const backends[] = {
#ifdef __linux__
    &poller_epoll_ops,
#endif
    &poller_poll_ops,
};

int poller_open(struct poller *p, const char *name)
{
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

void poller_close(struct poller *p)
{
    if (p->ops)
        p->ops->close(p);
    p->ops = NULL;
}
