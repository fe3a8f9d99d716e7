/**
 * \file asyncio/queue.h
 * \brief Queues for tasks to hand items to each other (asyncio.Queue,
 *        PriorityQueue and LifoQueue, with Python 3.13's shutdown).
 *
 * \code
 * asyncio_queue_t q;
 * asyncio_queue_init(&q, 10);           // at most 10 items
 * ...                                   // producer task:
 * rc = asyncio_queue_put(&q, item);     // waits while the queue is full
 * ...                                   // consumer task:
 * rc = asyncio_queue_get(&q, &item);    // waits while it is empty
 * ...                                   // work on item, then
 * asyncio_queue_task_done(&q);
 * ...
 * asyncio_queue_join(&q);               // every item put was done
 * asyncio_queue_destroy(&q);
 * \endcode
 *
 * Items are void pointers (NULL is a valid item) and belong to the caller:
 * the queue stores the pointers only, and never frees what they point to.
 *
 * Python exceptions are error codes here:
 *  - QueueFull: -EAGAIN from asyncio_queue_put_nowait()
 *  - QueueEmpty: -EAGAIN from asyncio_queue_get_nowait()
 *  - QueueShutDown: -ESHUTDOWN (after asyncio_queue_shutdown())
 *  - ValueError: -EINVAL from asyncio_queue_task_done() called too often
 *
 * Waiting and cancellation, as in asyncio. A put stores its item and wakes
 * the first task waiting in get (in the order they began to wait), which
 * takes an item when it runs: the first, the smallest or the newest then,
 * by the queue's kind; if another took it first (a get_nowait), the woken
 * getter waits again, behind the others. A get wakes the first waiting
 * putter the same way, which inserts its item when it runs. A waiting put
 * or get either completes or leaves the queue exactly as if it had never
 * been called: a getter that is cancelled (or whose timeout scope expires)
 * while it waits, even after a put woke it and before it ran, takes no
 * item, and wakes the next getter if items are left; a cancelled putter
 * inserts nothing, and wakes the next putter if there is room. Nothing is
 * ever lost or duplicated.
 *
 * The queue object belongs to the caller (static, on a task's stack, or in
 * allocated memory), must not be moved or copied once initialised, and must
 * outlive every task that waits on it. It is not thread safe: use it from
 * one thread (the loop's). asyncio_queue_put_nowait(), get_nowait,
 * task_done, shutdown and the queries never suspend and may also be called
 * from loop callbacks, or with no loop running at all.
 *
 * Debug mode (<asyncio/debug.h>): a queue is bound to the first loop in
 * debug mode that uses it (any call but init, destroy and the queries).
 * From then on those calls are reported and fail with -EXDEV when made from
 * another thread, from another loop (a later loop of the same thread too),
 * or from a thread with no loop. Initialising the queue again unbinds it.
 *
 * Include <asyncio.h> rather than this file.
 */
#ifndef ASYNCIO_QUEUE_H
#define ASYNCIO_QUEUE_H

#include <asyncio/common.h>
#include <asyncio/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Orders a priority queue's items (asyncio_priority_queue_init()).
 *
 * \param a  an item
 * \param b  another item
 * \return negative if a comes out before b, positive if after, 0 if equal.
 */
typedef int (*asyncio_queue_cmp)(const void *a, const void *b);

/**
 * A queue: first-in first-out, priority or last-in first-out, by its init
 * function (asyncio.Queue, PriorityQueue, LifoQueue).
 *
 * Opaque: its fields are private, set by asyncio_queue_init(),
 * asyncio_priority_queue_init() or asyncio_lifo_queue_init(); use the
 * asyncio_queue_ functions only.
 */
typedef struct asyncio_queue {
    /** \cond PRIVATE */
    /* Private: set by the init functions; use the functions below. */
    void *buf;                 /* items: a ring, or a heap; NULL until used */
    size_t cap;                /* slots in buf */
    size_t head;               /* FIFO: where the oldest item is */
    size_t len;                /* items in buf */
    size_t maxsize;            /* 0: unbounded */
    size_t unfinished;         /* items put and not yet marked done */
    uint64_t seq;              /* priority queue: insertion counter */
    asyncio_queue_cmp cmp;     /* priority queue only */
    asyncio_waitlist_t getters, putters, joiners;
    unsigned char kind;
    unsigned char is_shutdown;
    /** \endcond */
} asyncio_queue_t;

/**
 * Initialise q as a first-in first-out queue (asyncio.Queue(maxsize)).
 *
 * Allocates nothing: storage is allocated by the first put that needs it.
 *
 * \param q        the queue
 * \param maxsize  the most items it holds; 0: no limit
 * \return 0; -EINVAL (q NULL).
 * \suspends No.
 * \context Any thread, before any other use of the queue (it needs no loop).
 */
ASYNCIO_API int asyncio_queue_init(asyncio_queue_t *q, size_t maxsize);

/**
 * Initialise q as a priority queue (asyncio.PriorityQueue(maxsize)): get
 * returns the smallest item by cmp(a, b) first.
 *
 * Items that compare equal come out in the order they were inserted (a
 * waiting putter's item is inserted when a get makes room for it).
 *
 * \param q        the queue
 * \param maxsize  the most items it holds; 0: no limit
 * \param cmp      orders the items
 * \return 0; -EINVAL (q or cmp NULL).
 * \suspends No.
 * \context Any thread, before any other use of the queue (it needs no loop).
 */
ASYNCIO_API int asyncio_priority_queue_init(asyncio_queue_t *q, size_t maxsize,
                                            asyncio_queue_cmp cmp);

/**
 * Initialise q as a last-in first-out queue (asyncio.LifoQueue(maxsize)):
 * get returns the item put most recently.
 *
 * \param q        the queue
 * \param maxsize  the most items it holds; 0: no limit
 * \return 0; -EINVAL (q NULL).
 * \suspends No.
 * \context Any thread, before any other use of the queue (it needs no loop).
 */
ASYNCIO_API int asyncio_lifo_queue_init(asyncio_queue_t *q, size_t maxsize);

/**
 * Free q's storage.
 *
 * Items still in it are forgotten (they belong to the caller: drain them
 * with asyncio_queue_get_nowait() first if they must be freed). Afterwards
 * q may only be initialised again.
 *
 * \param q  the queue
 * \return 0; -EINVAL (q NULL); -EBUSY if a task still waits on q (in put,
 *         get or join, including one woken but not yet resumed), in which
 *         case nothing is done.
 * \suspends No.
 * \context The thread that uses the queue (no loop needed).
 */
ASYNCIO_API int asyncio_queue_destroy(asyncio_queue_t *q);

/**
 * Put item into q (await Queue.put(item)).
 *
 * If q is full, waits until a get makes room, then inserts the item.
 *
 * \param q     the queue
 * \param item  the item, any pointer (NULL too)
 * \return 0 once the item is in q;
 *         -EINVAL (q NULL); -EPERM (not in a task, even if q has room);
 *         -ESHUTDOWN if q is shut down, or is shut down while this waits (the
 *         item was not inserted); -ECANCELED or -ETIMEDOUT if the task is
 *         cancelled or its timeout scope expires while this waits, or one is
 *         pending when it would wait (the item was not inserted); -ENOMEM
 *         (storage could not grow, or no memory to arm a timeout scope's
 *         timer; the item was not inserted); -EXDEV (debug mode: used from
 *         another loop's thread).
 * \suspends Yes: only while q is full, until a get makes room. Cancellation
 *           and timeout scopes end the wait, and so does a shutdown.
 * \context A task.
 */
ASYNCIO_API int asyncio_queue_put(asyncio_queue_t *q, void *item);

/**
 * Remove an item from q into *item (await Queue.get()).
 *
 * If q is empty, waits until a put wakes it, then takes an item.
 *
 * \param q     the queue
 * \param item  receives the item
 * \return 0 with *item set; -EINVAL (q or item NULL); -EPERM (not in a task,
 *         even if q has items); -ESHUTDOWN if q is shut down and empty, or is
 *         shut down while this waits (*item is left alone); -ECANCELED or
 *         -ETIMEDOUT if the task is cancelled or its timeout scope expires
 *         while this waits, or one is pending when it would wait (no item was
 *         taken); -ENOMEM (no memory to arm a timeout scope's timer; no item
 *         was taken); -EXDEV (debug mode: used from another loop's thread).
 * \suspends Yes: only while q is empty, until a put wakes it.
 *           Cancellation and timeout scopes end the wait, and so does a
 *           shutdown.
 * \context A task.
 */
ASYNCIO_API int asyncio_queue_get(asyncio_queue_t *q, void **item);

/**
 * Put item into q without waiting (Queue.put_nowait()).
 *
 * \param q     the queue
 * \param item  the item, any pointer (NULL too)
 * \return 0; -EINVAL (q NULL); -ESHUTDOWN (q is shut down); -EAGAIN if q is
 *         full (QueueFull); -ENOMEM (storage could not grow); -EXDEV (debug
 *         mode: used from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback; or a thread with no loop
 *          (not once debug mode bound the queue to a loop).
 */
ASYNCIO_API int asyncio_queue_put_nowait(asyncio_queue_t *q, void *item);

/**
 * Remove an item from q into *item without waiting (Queue.get_nowait()).
 *
 * \param q     the queue
 * \param item  receives the item
 * \return 0; -EINVAL (q or item NULL); -EAGAIN if q is empty (QueueEmpty);
 *         -ESHUTDOWN if q is empty and shut down; -EXDEV (debug mode: used
 *         from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback; or a thread with no loop
 *          (not once debug mode bound the queue to a loop).
 */
ASYNCIO_API int asyncio_queue_get_nowait(asyncio_queue_t *q, void **item);

/**
 * Mark one item taken from q as processed (Queue.task_done()).
 *
 * When every item put has been marked, the tasks waiting in
 * asyncio_queue_join() are woken.
 *
 * \param q  the queue
 * \return 0; -EINVAL if q is NULL or if called more times than items were
 *         put (Python's ValueError; nothing changes); -EXDEV (debug mode: used
 *         from another loop's thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback; or a thread with no loop
 *          (not once debug mode bound the queue to a loop).
 */
ASYNCIO_API int asyncio_queue_task_done(asyncio_queue_t *q);

/**
 * Wait until every item put into q has been marked done with
 * asyncio_queue_task_done() (await Queue.join()).
 *
 * Returns 0 at once if none is unfinished.
 *
 * \param q  the queue
 * \return 0; -EINVAL (q NULL); -EPERM (not in a task); -ECANCELED or
 *         -ETIMEDOUT if the task is cancelled or its timeout scope expires
 *         while this waits (including after the count reached zero but before
 *         the task resumed: join has nothing to hand over, so nothing is
 *         lost); -ENOMEM (no memory to arm a timeout scope's timer); -EXDEV
 *         (debug mode: used from another loop's thread).
 * \suspends Yes: while items are unfinished, until the last is marked done.
 *           Cancellation and timeout scopes end the wait.
 * \context A task.
 */
ASYNCIO_API int asyncio_queue_join(asyncio_queue_t *q);

/**
 * Shut q down (Queue.shutdown(), Python 3.13).
 *
 * From then on puts return -ESHUTDOWN, and tasks waiting in put are woken
 * with -ESHUTDOWN.
 *
 * If immediate is 0, gets go on returning the items left, and return
 * -ESHUTDOWN once q is empty; tasks waiting in get (q is empty then) are
 * woken with -ESHUTDOWN.
 *
 * If immediate is not 0, the items left are dropped (forgotten, not freed)
 * and each counts as done for join, as if asyncio_queue_task_done() were
 * called for it; tasks in join are woken if no unfinished item is left
 * (items already taken by getters and not marked done still count); every
 * get returns -ESHUTDOWN from then on, and waiting getters are woken with
 * it.
 *
 * A getter woken by a put before the shutdown takes an item if one is left
 * when it runs. Calling it again is harmless (immediate then drops what is
 * left).
 *
 * \param q          the queue
 * \param immediate  0: let gets drain the items left; not 0: drop them
 * \return 0; -EINVAL (q NULL), -EXDEV (debug mode: used from another loop's
 *         thread).
 * \suspends No.
 * \context The loop's thread: a task or a callback; or a thread with no loop
 *          (not once debug mode bound the queue to a loop).
 */
ASYNCIO_API int asyncio_queue_shutdown(asyncio_queue_t *q, int immediate);

/**
 * The number of items in q (Queue.qsize()).
 *
 * An item put counts until a getter takes it, also while a getter it woke
 * has not run yet.
 *
 * \param q  the queue
 * \return the number; 0 if q is NULL.
 * \suspends No.
 * \context The thread that uses the queue (no loop needed).
 */
ASYNCIO_API size_t asyncio_queue_size(const asyncio_queue_t *q);

/**
 * q's maxsize (Queue.maxsize).
 *
 * \param q  the queue
 * \return the maxsize (0: unbounded); 0 if q is NULL.
 * \suspends No.
 * \context The thread that uses the queue (no loop needed).
 */
ASYNCIO_API size_t asyncio_queue_maxsize(const asyncio_queue_t *q);

/**
 * Whether q holds maxsize items (Queue.full()); never for an unbounded
 * queue.
 *
 * \param q  the queue
 * \return 1 if q is full, 0 if not; -EINVAL (NULL).
 * \suspends No.
 * \context The thread that uses the queue (no loop needed).
 */
ASYNCIO_API int asyncio_queue_full(const asyncio_queue_t *q);

/**
 * Whether q holds no item (Queue.empty()).
 *
 * \param q  the queue
 * \return 1 if q holds no item, 0 if it does; -EINVAL (NULL).
 * \suspends No.
 * \context The thread that uses the queue (no loop needed).
 */
ASYNCIO_API int asyncio_queue_empty(const asyncio_queue_t *q);

#ifdef __cplusplus
}
#endif

#endif
