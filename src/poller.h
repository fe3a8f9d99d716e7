/* The poller seam: one small interface, one file per backend (epoll,
 * kqueue, poll), chosen when the loop is created. Interest is level
 * triggered: an fd stays registered across waits and reports while it is
 * ready. */
#ifndef ASYNCIO_POLLER_H
#define ASYNCIO_POLLER_H

#include "names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLLER_IN 0x1u
#define POLLER_OUT 0x2u
#define POLLER_ERR 0x4u   /* error or hang-up: wakes readers and writers */
#define POLLER_INVAL 0x8u /* the fd is not open (poll backend): drop it */

/* The length a table indexed by fd must grow to so that fd fits: double
 * from cur (64 at first) up to 4096, then grow by a quarter (rounded down
 * to a multiple of 1024), so that a server of 10,000 connections keeps 10,240
 * entries, not 16,384 (40 bytes each in the loop's table); computed
 * without overflow for any fd up to INT_MAX. Callers make sure fd is open
 * first, so the table never grows past the process's fd limit. */
static inline size_t poller_table_len(size_t cur, int fd)
{
    size_t need = (size_t)fd + 1, n = cur ? cur : 64;
    while (n < need && n <= SIZE_MAX / 2) {
        size_t step = n < 4096 ? n : (n / 4) & ~(size_t)1023;
        n += step;
    }
    return n < need ? need : n;
}

struct poller_event {
    int fd;
    unsigned events;
};

/* An event of no fd: a child process ended (kqueue's EVFILT_PROC, see
 * watch_proc): poller_event.fd is POLLER_PROC and .events its pid. */
#define POLLER_PROC (-2)
/* Another thread woke the loop (wake_trigger): poller_event.fd. */
#define POLLER_WAKE (-3)
/* A signal came (kqueue's EVFILT_SIGNAL, see watch_signal):
 * poller_event.fd is POLLER_SIGNAL and .events the signal's number. */
#define POLLER_SIGNAL (-4)

struct poller;

struct poller_ops {
    const char *name;
    int (*init)(struct poller *p);
    void (*close)(struct poller *p);
    /* Change fd's interest from old_events to new_events (either may be 0:
     * add, modify or remove). 0 or a negative errno. */
    int (*ctl)(struct poller *p, int fd, unsigned old_events, unsigned new_events);
    /* Wait up to timeout_ns (UINT64_MAX: forever) and fill at most max
     * events. Returns how many, or a negative errno (-EINTR included). */
    int (*wait)(struct poller *p, uint64_t timeout_ns, struct poller_event *out, int max);
    /* The fd that is readable when wait() would return events, for an
     * event loop that drives this one; NULL if the backend has none. */
    int (*backend_fd)(const struct poller *p);
    /* The socket error an event of fd reported, taken (0: none); NULL
     * where the socket keeps it (SO_ERROR). libkqueue reads SO_ERROR to
     * report it, which clears it: a failed connect would look done. */
    int (*sock_error)(struct poller *p, int fd);
    /* Report pid's exit once (on) as a POLLER_PROC event, or stop (off);
     * NULL where the backend has no such filter. 0, or -ESRCH (no such
     * child: reaped already), or another negative errno. */
    int (*watch_proc)(struct poller *p, int pid, bool on);
    /* A wake-up of the backend's own (kqueue's EVFILT_USER), reported as
     * a POLLER_WAKE event: wake_open() sets it up (0, or a negative errno:
     * the loop then uses an eventfd or a pipe), wake_trigger(backend_fd)
     * fires it from any thread. NULL where the backend has none. */
    int (*wake_open)(struct poller *p);
    int (*wake_trigger)(int backend_fd);
    /* Report signal sig as POLLER_SIGNAL events (on), or stop (off); NULL
     * where the backend has no such filter (signal.c then reads a
     * signalfd or a pipe). 0 or a negative errno. What the filter sees
     * depends on where kqueue lives, and signal.c sets the signal up to
     * match (signal_blocked): */
    int (*watch_signal)(struct poller *p, int sig, bool on);
    /* true: the filter sees only a signal that is blocked, as libkqueue's
     * (a signalfd read by a thread of its own, which sees signals sent to
     * the process, not those sent to another thread: raise()); false: it
     * sees every attempt to deliver one, and the signal's disposition
     * still runs, so it is set to be ignored (a BSD or macOS kernel). */
    bool signal_blocked;
};

struct poller {
    const struct poller_ops *ops;
    void *state; /* the backend's own (epoll: its instance; poll: its fds) */
};

/* Open loop->poller with the backend the loop's options name (none:
 * $ASYNCIO_BACKEND, else the best one). Returns 0 or -ENOENT for an
 * unknown name, or the backend's init error. */
struct loop;
int poller_init(struct loop *loop);
void poller_term(struct loop *loop);

extern const struct poller_ops poller_poll_ops;
#ifdef __linux__
extern const struct poller_ops poller_epoll_ops;
#endif
#ifdef ASYNCIO_HAVE_KQUEUE /* the BSDs and macOS; Linux with libkqueue */
extern const struct poller_ops poller_kqueue_ops;
#endif

#endif
