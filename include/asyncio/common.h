/**
 * \file asyncio/common.h
 * \brief Common definitions: ASYNCIO_API, the version, a sendfile flag.
 *
 * What every public header needs: ASYNCIO_API, the library's version, and
 * the private list head of tasks waiting on an object. Each header includes
 * it, so that each compiles on its own.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_COMMON_H
#define ASYNCIO_COMMON_H

/** Marks the library's exported functions (everything else is hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define ASYNCIO_API __attribute__((visibility("default")))
#else
#define ASYNCIO_API
#endif

/** The major number of the library's version (MAJOR.MINOR.PATCH). */
#define ASYNCIO_VERSION_MAJOR 0
/** The minor number of the library's version. */
#define ASYNCIO_VERSION_MINOR 1
/** The patch number of the library's version. */
#define ASYNCIO_VERSION_PATCH 0

/**
 * A sendfile flag: no fallback (asyncio's fallback=False).
 *
 * A flag of asyncio_sock_sendfile() and asyncio_stream_sendfile(): fail
 * with -ENOTSUP where the file cannot be sent with the system's sendfile,
 * instead of reading and sending it.
 */
#define ASYNCIO_SENDFILE_NO_FALLBACK 0x1

/** \cond PRIVATE */
/* Private: the head of the list of tasks waiting on an object (a lock, an
 * event, a queue's getters...), and, in debug mode, the loop the object
 * belongs to (compared, never followed). */
typedef struct asyncio_waitlist {
    struct asyncio_waitlist *prev_;
    struct asyncio_waitlist *next_;
    void *loop_;
} asyncio_waitlist_t;
/** \endcond */

#endif
