/* Executors: pools of threads that run blocking functions while a task
 * waits (asyncio_run_in_executor, asyncio_to_thread), and each loop's
 * default executor, made on first use and shut down as the loop closes.
 *
 * Threads start on demand: when work is queued and there are fewer idle
 * threads than queued calls, up to max_workers; a thread idle for
 * idle_timeout exits. Threads block every signal, so that signals meant
 * for a loop's signalfd stay pending for it. A finished call goes back to
 * the loop of the task that made it as a post to its inbox (thread.h), and
 * there wakes the task, or, if the task stopped waiting, is released. */
#include "clock.h"
#include "thread.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_WORKERS_LIMIT 4096
#define IDLE_TIMEOUT_DEFAULT 60.0

/* One call of a blocking function. */
struct xjob {
    struct post back;           /* its return to the loop, posted to home */
    struct dlist link;          /* on the executor's queue while queued */
    struct xjob *next_dropped;  /* on a shutdown's list of dropped calls */
    struct asyncio_executor *ex; /* a reference, until the loop is done with it */
    asyncio_thread_fn fn;
    void *arg;
    asyncio_work_release release;
    void *result;
    bool ran;                   /* fn returned (false: dropped unrun) */
    struct asyncio_loop *home;  /* the calling task's loop: a reference */
    /* The loop's thread only: */
    struct task *waiter;        /* NULL once the task stopped waiting */
    bool returned;              /* the post came back */
    uint64_t submitted_ns;      /* when it was queued (the loop's spinning) */
};

/* A thread, for the one that joins it. */
struct xthread {
    struct dlist link;          /* on live, then on exited */
    pthread_t id;
    struct asyncio_executor *ex;
};

struct asyncio_executor {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* idle threads wait on it */
    pthread_cond_t none_left;   /* a blocking shutdown waits on it */
    struct dlist todo;          /* struct xjob, FIFO */
    unsigned njobs;             /* on todo */
    atomic_uint queued;         /* njobs, for spinning threads to watch unlocked */
    unsigned max, nthreads, idle;
    unsigned spinning;          /* threads spinning for work (counted as idle) */
    uint64_t spin_ns;           /* how long a thread spins after a call, 0: adaptive */
    uint64_t gap_avg_ns;        /* (mu) recent waits from a call's end to the next */
    struct spin_backoff spin;   /* (mu) adaptive spinning's (thread.h) */
    bool multi_cpu;             /* more than one CPU: adaptive spinning may be on */
    uint64_t idle_ns;           /* UINT64_MAX: never exit */
    size_t stack_size;          /* 0: the system's default */
    atomic_bool shut;           /* no more work (written under mu) */
    bool detach;                /* nobody will join threads from now on */
    /* The owner's, until its shutdown is done, a thread's each, and a
     * call's each, until its loop is done with it: the last frees. */
    atomic_uint refs;
    struct dlist live;          /* struct xthread, running */
    struct dlist exited;        /* struct xthread, exited, to join */
    asyncio_cfuture_t *all_exited; /* a task's shutdown: set when none is left */
};

/* ---- the executor ---------------------------------------------------------- */

static void executor_free(struct asyncio_executor *ex)
{
    pthread_cond_destroy(&ex->none_left);
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}

static void executor_unref(struct asyncio_executor *ex)
{
    if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) == 1)
        executor_free(ex);
}

/* Join the threads on list (taken from exited) and free them. */
static void join_all(struct dlist *list)
{
    while (!dlist_empty(list)) {
        struct xthread *t = container_of(list->next, struct xthread, link);
        dlist_remove(&t->link);
        pthread_join(t->id, NULL);
        free(t);
    }
}

/* Move the exited threads to list, to join (under ex->mu). */
static void take_exited(struct asyncio_executor *ex, struct dlist *list)
{
    dlist_init(list);
    while (!dlist_empty(&ex->exited)) {
        struct dlist *n = ex->exited.next;
        dlist_remove(n);
        dlist_push_back(list, n);
    }
}

int asyncio_executor_new(asyncio_executor_t **out, const asyncio_executor_options_t *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    asyncio_executor_options_t o = opts ? *opts : (asyncio_executor_options_t){0};
    if (o.max_workers > MAX_WORKERS_LIMIT || isnan(o.idle_timeout) ||
        o.spin_us > ASYNCIO_BUSY_POLL_MAX_US ||
        (o.stack_size && o.stack_size < (size_t)PTHREAD_STACK_MIN))
        return -EINVAL;
    struct asyncio_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    if (!o.max_workers) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        o.max_workers = cpus > 0 && cpus < 28 ? (unsigned)cpus + 4 : 32;
    }
    ex->max = o.max_workers;
    double idle = o.idle_timeout == 0 ? IDLE_TIMEOUT_DEFAULT : o.idle_timeout;
    ex->idle_ns = idle < 0 ? UINT64_MAX : clock_seconds_to_ns(idle);
    ex->stack_size = o.stack_size;
    ex->spin_ns = (uint64_t)o.spin_us * 1000;
    ex->multi_cpu = thread_multi_cpu();
    dlist_init(&ex->todo);
    dlist_init(&ex->live);
    dlist_init(&ex->exited);
    atomic_init(&ex->refs, 1);
    int rc = -pthread_mutex_init(&ex->mu, NULL);
    if (rc == 0) {
        if ((rc = thread_cond_init(&ex->work)) == 0) {
            if ((rc = thread_cond_init(&ex->none_left)) == 0) {
                *out = ex;
                return 0;
            }
            /* GCOVR_EXCL_START: glibc's mutex and condition inits do not fail */
            pthread_cond_destroy(&ex->work);
        }
        pthread_mutex_destroy(&ex->mu);
    }
    free(ex);
    return rc;
    /* GCOVR_EXCL_STOP */
}

/* ---- calls: from the loop to a thread and back ------------------------------ */

static void job_free(struct xjob *j)
{
    asyncio_loop_unref(j->home);
    executor_unref(j->ex);
    free(j);
}

/* The caller does not get the call's outcome: release it, and the job. */
static void job_release(void *arg)
{
    struct xjob *j = arg;
    if (j->release)
        j->release(j->arg, j->ran ? j->result : NULL);
    job_free(j);
}

/* In the loop: the call is back. */
static void job_returned(void *arg)
{
    struct xjob *j = arg;
    j->returned = true;
    struct loop_threads *th = &loop_current()->threads;
    th->calls_out--;
    spin_note(&th->call_avg_ns, clock_now_ns() - j->submitted_ns);
    if (j->waiter)
        task_wake(j->waiter, 0);
    else
        job_release(j); /* its task stopped waiting */
}

/* From a thread: send j back to its loop; if the loop has closed, release
 * it here. */
static void job_send_back(struct xjob *j)
{
    j->back.e = (struct post_entry){job_returned, j, job_release};
    if (loop_post_node(j->home, &j->back) < 0)
        job_release(j);
}

/* njobs, and its copy for spinning threads (under ex->mu). */
static void set_njobs(struct asyncio_executor *ex, unsigned n)
{
    ex->njobs = n;
    atomic_store_explicit(&ex->queued, n, memory_order_relaxed);
}

/* After a call: wait for the next one without sleeping for up to budget,
 * so that a loop that hands calls over one after the other does not pay
 * for waking the thread each time (nor the thread for sleeping). With
 * spin_ns set it yields the CPU as it spins, for a loop on the same CPU;
 * adaptive spinning runs only with CPUs to spare, and pauses instead. */
static void spin_for_work(struct asyncio_executor *ex, uint64_t budget)
{
    uint64_t until = clock_deadline(clock_now_ns(), budget);
    while (!atomic_load_explicit(&ex->queued, memory_order_relaxed) &&
           !atomic_load_explicit(&ex->shut, memory_order_relaxed) && clock_now_ns() < until) {
        if (ex->spin_ns)
            sched_yield();
        else
            cpu_relax();
    }
}

/* How long a thread that just finished a call spins (under mu). */
static uint64_t spin_after_call(struct asyncio_executor *ex)
{
    if (ex->spin_ns)
        return ex->spin_ns;
    uint64_t budget = ex->multi_cpu ? spin_budget(ex->gap_avg_ns) : 0;
    return budget && spin_allowed(&ex->spin) ? budget : 0;
}

static void *worker(void *arg)
{
    struct xthread *self = arg;
    struct asyncio_executor *ex = self->ex;
    bool may_spin = false; /* after a call */
    uint64_t call_end = 0; /* when the last call ended, 0: none since */
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        if (dlist_empty(&ex->todo)) {
            if (ex->shut)
                break;
            uint64_t budget = may_spin ? spin_after_call(ex) : 0;
            may_spin = false;
            if (budget) {
                ex->spinning++;
                pthread_mutex_unlock(&ex->mu);
                spin_for_work(ex, budget);
                pthread_mutex_lock(&ex->mu);
                ex->spinning--;
                if (!ex->spin_ns)
                    spin_result(&ex->spin, !dlist_empty(&ex->todo) || ex->shut);
                continue;
            }
            ex->idle++;
            int rc = thread_cond_wait_until(&ex->work, &ex->mu,
                                            clock_deadline(clock_now_ns(), ex->idle_ns));
            ex->idle--;
            if (rc == -ETIMEDOUT && dlist_empty(&ex->todo))
                break; /* idle too long */
            continue;
        }
        struct xjob *j = container_of(ex->todo.next, struct xjob, link);
        dlist_remove(&j->link);
        set_njobs(ex, ex->njobs - 1);
        if (call_end)
            spin_note(&ex->gap_avg_ns, clock_now_ns() - call_end);
        pthread_mutex_unlock(&ex->mu);
        j->result = j->fn(j->arg);
        j->ran = true;
        job_send_back(j);
        may_spin = true;
        call_end = clock_now_ns();
        pthread_mutex_lock(&ex->mu);
    }
    /* Exit: the last thread tells a shutdown that waits. */
    asyncio_cfuture_t *all_exited = NULL;
    if (--ex->nthreads == 0) {
        all_exited = ex->all_exited;
        ex->all_exited = NULL;
        pthread_cond_broadcast(&ex->none_left);
    }
    dlist_remove(&self->link);
    bool detached = ex->detach;
    if (detached)
        pthread_detach(pthread_self());
    else
        dlist_push_back(&ex->exited, &self->link);
    pthread_mutex_unlock(&ex->mu);
    executor_unref(ex);
    if (detached)
        free(self);
    if (all_exited) {
        asyncio_cfuture_set_result(all_exited, 0, NULL);
        asyncio_cfuture_unref(all_exited);
    }
    return NULL;
}

/* Start a thread (under ex->mu), its signals blocked. */
static int start_thread(struct asyncio_executor *ex)
{
    struct xthread *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ex = ex;
    pthread_attr_t attr;
    int rc = -pthread_attr_init(&attr);
    if (rc == 0) {
        if (ex->stack_size)
            rc = -pthread_attr_setstacksize(&attr, ex->stack_size);
        if (rc == 0) {
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            rc = -pthread_create(&t->id, &attr, worker, t);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        pthread_attr_destroy(&attr);
    }
    if (rc < 0) {
        free(t);
        return rc;
    }
    dlist_push_back(&ex->live, &t->link);
    ex->nthreads++;
    atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
    return 0;
}

/* Queue j, starting a thread if there are fewer idle threads than calls
 * queued and there is room for one. */
static int submit(struct asyncio_executor *ex, struct xjob *j)
{
    struct dlist exited;
    pthread_mutex_lock(&ex->mu);
    take_exited(ex, &exited);
    int rc = 0;
    if (ex->shut) {
        rc = -ESHUTDOWN;
    } else if (ex->njobs + 1 > ex->idle + ex->spinning && ex->nthreads < ex->max) {
        rc = start_thread(ex);
        if (rc < 0 && ex->nthreads > 0)
            rc = 0; /* the threads there will get to it */
    }
    bool wake = false;
    if (rc == 0) {
        j->ex = ex;
        atomic_fetch_add_explicit(&ex->refs, 2, memory_order_relaxed); /* j's, and ours */
        dlist_push_back(&ex->todo, &j->link);
        set_njobs(ex, ex->njobs + 1);
        wake = ex->idle > 0 && ex->njobs > ex->spinning; /* a spinning one takes one */
    }
    pthread_mutex_unlock(&ex->mu);
    /* Unlocked: the thread it wakes does not find the mutex held (our
     * reference keeps ex until then). An idle thread that is about to time
     * out takes the call as well. */
    if (wake)
        pthread_cond_signal(&ex->work);
    if (rc == 0)
        executor_unref(ex);
    join_all(&exited);
    return rc;
}

int asyncio_run_in_executor(asyncio_executor_t *ex, asyncio_thread_fn fn, void *arg,
                            asyncio_work_release release, void **result)
{
    struct task *t = NULL;
    struct xjob *j = NULL;
    int rc = fn ? task_begin_wait_on(&t, "executor") : -EINVAL;
    if (rc == 0 && !ex)
        ex = executor_default(t->fut.loop, &rc);
    if (rc == 0 && !(j = calloc(1, sizeof *j)))
        rc = -ENOMEM;
    if (rc == 0) {
        j->fn = fn;
        j->arg = arg;
        j->release = release;
        j->home = asyncio_loop_ref(t->fut.loop->threads.shared);
        j->waiter = t;
        j->submitted_ns = clock_now_ns();
        if ((rc = submit(ex, j)) < 0) {
            asyncio_loop_unref(j->home);
            free(j);
        } else {
            t->fut.loop->threads.calls_out++;
        }
    }
    if (rc < 0) {
        if (release)
            release(arg, NULL); /* never queued */
        return rc;
    }
    while (!j->returned && (rc = task_park_until(t, UINT64_MAX, 0)) == 0)
        ;
    if (!j->returned) {
        /* Cancelled or timed out. A call still queued is dropped, as
         * Python's cancelled concurrent future is; one running goes on,
         * and job_returned() releases it. */
        pthread_mutex_lock(&ex->mu);
        bool queued = dlist_linked(&j->link);
        if (queued) {
            dlist_remove(&j->link);
            set_njobs(ex, ex->njobs - 1);
        }
        pthread_mutex_unlock(&ex->mu);
        if (queued) {
            t->fut.loop->threads.calls_out--;
            job_release(j);
        } else {
            j->waiter = NULL;
        }
        return rc;
    }
    if (rc == 0 && j->ran) {
        if (result)
            *result = j->result;
        job_free(j);
        return 0;
    }
    /* Back, but dropped unrun, or the task was cancelled before it resumed. */
    job_release(j);
    return rc < 0 ? rc : -ECANCELED;
}

asyncio_executor_t *executor_default(struct loop *loop, int *err)
{
    struct loop_threads *th = &loop->threads;
    /* A loop that busy polls has its default executor's threads spin as
     * long: it trades CPU for latency on both sides of a call. */
    asyncio_executor_options_t o = {.spin_us = (unsigned)(loop->busy_poll_ns / 1000)};
    if (!th->default_executor && (*err = asyncio_executor_new(&th->default_executor, &o)) < 0)
        return NULL;
    return th->default_executor;
}

int asyncio_to_thread(asyncio_thread_fn fn, void *arg, asyncio_work_release release,
                      void **result)
{
    return asyncio_run_in_executor(NULL, fn, arg, release, result);
}

/* ---- shutdown ---------------------------------------------------------------- */

/* Send the dropped calls back to their loops, as not run. */
static void drop_all(struct xjob *j)
{
    while (j) {
        struct xjob *next = j->next_dropped;
        job_send_back(j);
        j = next;
    }
}

/* Wait for the threads to exit and join them: in a task through cf, set
 * by the last thread, with w made beforehand (a cancellation or timeout
 * ends the wait early, and then the threads detach themselves as they
 * exit); else blocking. */
static int wait_threads(struct asyncio_executor *ex, asyncio_cfuture_t *cf, struct cf_wait *w)
{
    int rc = 0;
    if (cf) {
        struct task *t;
        if ((rc = task_begin_wait_on(&t, "executor shutdown")) == 0)
            rc = cfuture_wait_park(cf, w, UINT64_MAX);
        else
            cfuture_wait_free(w);
        asyncio_cfuture_unref(cf);
        pthread_mutex_lock(&ex->mu);
        if (rc < 0)
            ex->detach = true;
    } else {
        pthread_mutex_lock(&ex->mu);
        while (ex->nthreads)
            thread_cond_wait_until(&ex->none_left, &ex->mu, UINT64_MAX);
    }
    struct dlist exited;
    take_exited(ex, &exited);
    pthread_mutex_unlock(&ex->mu);
    join_all(&exited);
    return rc;
}

/* Shut down (see asyncio_executor_shutdown); in_task: a wait suspends,
 * and what it needs is allocated first, so that -ENOMEM means nothing was
 * done. */
static int shutdown_ex(struct asyncio_executor *ex, unsigned flags, struct task *in_task)
{
    asyncio_cfuture_t *cf = NULL;
    struct cf_wait *w = NULL;
    bool wait = flags & ASYNCIO_SHUTDOWN_WAIT;
    if (wait && in_task) {
        if (asyncio_cfuture_new(&cf) < 0)
            return -ENOMEM;
        if (!(w = cfuture_wait_new(in_task))) {
            asyncio_cfuture_unref(cf);
            return -ENOMEM;
        }
    }
    pthread_mutex_lock(&ex->mu);
    ex->shut = true;
    /* Unlinked here: a task that stops waiting for one of them finds it
     * no longer queued, and leaves it to come back. */
    struct xjob *dropped = NULL, **tail = &dropped;
    while ((flags & ASYNCIO_SHUTDOWN_CANCEL_FUTURES) && !dlist_empty(&ex->todo)) {
        struct xjob *j = container_of(ex->todo.next, struct xjob, link);
        dlist_remove(&j->link);
        *tail = j;
        tail = &j->next_dropped;
        set_njobs(ex, ex->njobs - 1);
    }
    *tail = NULL;
    if (cf) {
        if (ex->nthreads)
            ex->all_exited = asyncio_cfuture_ref(cf);
        else
            asyncio_cfuture_set_result(cf, 0, NULL);
    }
    if (!wait)
        ex->detach = true;
    struct dlist exited;
    take_exited(ex, &exited);
    pthread_cond_broadcast(&ex->work); /* the idle ones exit now */
    pthread_mutex_unlock(&ex->mu);
    join_all(&exited);
    drop_all(dropped);
    int rc = wait ? wait_threads(ex, cf, w) : 0;
    executor_unref(ex);
    return rc;
}

/* True if the calling thread is one of ex's. */
static bool in_own_thread(struct asyncio_executor *ex)
{
    bool own = false;
    pthread_mutex_lock(&ex->mu);
    for (struct dlist *n = ex->live.next; n != &ex->live && !own; n = n->next)
        own = pthread_equal(container_of(n, struct xthread, link)->id, pthread_self());
    pthread_mutex_unlock(&ex->mu);
    return own;
}

int asyncio_executor_shutdown(asyncio_executor_t *ex, unsigned flags)
{
    if (!ex)
        return -EINVAL;
    struct loop *loop = loop_current();
    if ((flags & ASYNCIO_SHUTDOWN_WAIT) && loop && loop->running && !loop->current)
        return -EPERM;
    if ((flags & ASYNCIO_SHUTDOWN_WAIT) && in_own_thread(ex))
        return -EDEADLK; /* it would wait for itself */
    return shutdown_ex(ex, flags, loop ? loop->current : NULL);
}

void executor_close_default(struct loop *loop)
{
    struct asyncio_executor *ex = loop->threads.default_executor;
    if (!ex)
        return;
    loop->threads.default_executor = NULL;
    /* No task is left to wait for a call: drop those queued; wait for the
     * running ones, blocking. A function that never returns keeps
     * asyncio_run() from returning (documented). */
    shutdown_ex(ex, ASYNCIO_SHUTDOWN_WAIT | ASYNCIO_SHUTDOWN_CANCEL_FUTURES, NULL);
}
