/* The loop's thread pool subsystem (loop->pool): up to POOL_THREADS
 * threads per loop, started on first use, stopped by threadpool_term().
 * Threads block every signal, so that signals meant for the loop's
 * signalfd stay pending for it. Finished jobs go on a list the loop takes
 * when the eventfd says there is something on it. */
#include "threadpool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#define POOL_THREADS 4

struct threadpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *todo, **todo_tail; /* FIFO */
    struct job *done;              /* finished, for the loop to take */
    int wake_rd, wake_wr;          /* eventfd (one fd) or a pipe */
    int nthreads, idle;
    bool stop;
    pthread_t threads[POOL_THREADS];
};

static void *worker(void *arg)
{
    struct threadpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->todo && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (p->stop)
            break;
        struct job *j = p->todo;
        p->todo = j->next;
        if (!p->todo)
            p->todo_tail = &p->todo;
        pthread_mutex_unlock(&p->mu);
        j->work(j);
        pthread_mutex_lock(&p->mu);
        j->next = p->done;
        p->done = j;
        uint64_t one = 1;
        ssize_t w;
        do
            w = write(p->wake_wr, &one, sizeof one);
        while (w < 0 && errno == EINTR);
        /* EAGAIN: the eventfd is full of wake-ups already; fine. */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* In the loop: hand finished jobs to their tasks, or free them. */
static void on_wake(struct loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)events;
    struct threadpool *p = arg;
    uint64_t buf[8];
#ifdef __linux__
    (void)!read(fd, buf, sizeof buf); /* an eventfd: one read resets it */
#else
    while (read(fd, buf, sizeof buf) > 0)
        ;
#endif
    pthread_mutex_lock(&p->mu);
    struct job *j = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    while (j) {
        struct job *next = j->next;
        j->finished = true;
        if (j->waiter)
            task_wake(j->waiter, 0);
        else
            j->release(j);
        j = next;
    }
}

#ifndef __linux__
static int set_nonblock_cloexec(int fd)
{
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}
#endif

static struct threadpool *pool_open(struct loop *loop, int *err)
{
    struct threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        *err = -ENOMEM;
        return NULL;
    }
    p->todo_tail = &p->todo;
#ifdef __linux__
    p->wake_rd = p->wake_wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    *err = p->wake_rd < 0 ? -errno : 0;
#else
    int fds[2];
    *err = pipe(fds) < 0 ? -errno : 0;
    if (!*err) {
        p->wake_rd = fds[0];
        p->wake_wr = fds[1];
        if ((*err = set_nonblock_cloexec(fds[0])) == 0)
            *err = set_nonblock_cloexec(fds[1]);
    }
#endif
    if (!*err && (*err = -pthread_mutex_init(&p->mu, NULL)) == 0) {
        if ((*err = -pthread_cond_init(&p->cv, NULL)) == 0) {
            if ((*err = io_watch(loop, p->wake_rd, POLLER_IN, on_wake, p)) == 0)
                return p;
            pthread_cond_destroy(&p->cv);
        }
        pthread_mutex_destroy(&p->mu);
    }
    if (p->wake_rd > 0)
        close(p->wake_rd);
    if (p->wake_wr != p->wake_rd && p->wake_wr > 0)
        close(p->wake_wr); /* GCOVR_EXCL_LINE: a pipe's end, off Linux only (one eventfd there) */
    free(p);
    return NULL;
}

/* Queue j, starting a thread if none is idle and there is room for one. */
static int submit(struct threadpool *p, struct job *j)
{
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    if (p->idle == 0 && p->nthreads < POOL_THREADS) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = -pthread_create(&p->threads[p->nthreads], NULL, worker, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0)
            p->nthreads++;
        else if (p->nthreads > 0)
            rc = 0; /* the threads there will get to it */
    }
    if (rc == 0) {
        j->next = NULL;
        *p->todo_tail = j;
        p->todo_tail = &j->next;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int threadpool_run(struct job *job)
{
    struct task *t;
    int rc = task_begin_wait_on(&t, "thread pool");
    struct loop *loop = rc == 0 ? t->fut.loop : NULL;
    if (rc == 0 && !loop->pool && !(loop->pool = pool_open(loop, &rc)))
        rc = rc < 0 ? rc : -ENOMEM;
    if (rc == 0) {
        job->finished = false;
        job->waiter = t;
        rc = submit(loop->pool, job);
    }
    if (rc < 0) {
        job->release(job); /* never queued: the pool is done with it now */
        return rc;
    }
    while (!job->finished) {
        rc = task_park_until(t, UINT64_MAX, 0);
        if (rc < 0) {
            if (job->finished)
                job->release(job); /* done, but the cancellation came first */
            else
                job->waiter = NULL; /* the pool releases it when done */
            return rc;
        }
    }
    return 0;
}

void threadpool_term(struct loop *loop)
{
    struct threadpool *p = loop->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* Every task has finished: what is left has no waiter. */
    *p->todo_tail = p->done;
    for (struct job *j = p->todo, *next; j; j = next) {
        next = j->next;
        j->release(j);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    close(p->wake_rd);
    if (p->wake_wr != p->wake_rd)
        close(p->wake_wr); /* GCOVR_EXCL_LINE: a pipe's end, off Linux only (one eventfd there) */
    free(p);
}
