/* Stack overflow reports. A task that runs into the guard region below
 * its stack faults; a SIGSEGV handler, running on an alternate signal stack
 * (the faulting one is full), checks whether the address lies in the
 * running task's guard region and, if so, names the task and its stack size
 * on stderr before aborting. Any other fault is handed back to the default
 * action. The handler is installed only where SIGSEGV has no handler yet,
 * so a program's own handler (or a sanitizer's) always wins. The loop's
 * overflow subsystem: overflow_init() and overflow_term(). */
#include "task.h"
#include "sanitizers.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_u64(char *buf, size_t at, size_t cap, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at < cap)
        buf[at++] = tmp[--n];
    return at;
}

static bool in_guard(const struct task *t, const void *addr)
{
    const struct stack *s = &t->ctx->coro.stack;
    const char *a = addr;
    return s->map && a >= (const char *)s->map && a < (const char *)s->base;
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    struct loop *loop = loop_current();
    struct task *t = loop ? loop->current : NULL;
    if (t && t->ctx && in_guard(t, info->si_addr)) {
        char msg[256];
        size_t n = put_str(msg, 0, sizeof msg, "asyncio: task \"");
        if (t->name) {
            n = put_str(msg, n, sizeof msg - 64, t->name);
        } else {
            n = put_str(msg, n, sizeof msg, "Task-");
            n = put_u64(msg, n, sizeof msg, t->serial);
        }
        n = put_str(msg, n, sizeof msg, "\" overflowed its ");
        n = put_u64(msg, n, sizeof msg, t->ctx->coro.stack.size / SAN_STACK_SCALE / 1024);
        n = put_str(msg, n, sizeof msg, " KiB stack\n");
        ssize_t w = write(STDERR_FILENO, msg, n);
        (void)w;
        SAN_COVERAGE_DUMP();
        abort(); /* GCOVR_EXCL_LINE: the counters were written just above; abort() ends the process */
    }
    /* Not ours: let the fault happen again with the default action. */
    /* GCOVR_EXCL_START: the process dies of the fault on return, before gcov writes its counts */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    /* GCOVR_EXCL_STOP */
}

int overflow_init(struct loop *loop)
{
    struct sigaction old;
    if (sigaction(SIGSEGV, NULL, &old) < 0)
        return 0; /* GCOVR_EXCL_LINE: a query of a valid signal cannot fail */
    bool ours = (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_segv;
    if (!ours && old.sa_handler != SIG_DFL)
        return 0; /* somebody else handles faults */

    /* The handler needs a stack of its own in this thread. */
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_DISABLE)) {
        void *mem = malloc(ALTSTACK_SIZE);
        if (!mem)
            return 0;
        ss.ss_sp = mem;
        ss.ss_size = ALTSTACK_SIZE;
        ss.ss_flags = 0;
        if (sigaltstack(&ss, NULL) < 0) {
            free(mem);
            return 0;
        }
        loop->altstack = mem;
    }
    if (!ours) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
    }
    return 0;
}

void overflow_term(struct loop *loop)
{
    if (!loop->altstack)
        return;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    free(loop->altstack);
}
