/* The coroutine engine: execution contexts on their own stacks.
 *
 * A context is created once with getcontext/makecontext (entered a first
 * time with swapcontext, which costs a system call) and from then on
 * switched with _setjmp/_longjmp, which saves only registers: no system
 * call. A context runs its entry function forever (the task layer reuses it
 * for task after task), so contexts and their stacks can be pooled. */
#ifndef ASYNCIO_CORO_H
#define ASYNCIO_CORO_H

#include <setjmp.h>

#include "stack.h"

typedef void (*coro_entry)(void *arg);

struct coro {
    jmp_buf env;
    struct stack stack;     /* unused for a thread's own context */
    coro_entry entry;
    void *arg;
    /* For ASan: the bounds of this context's stack (learnt on the first
     * switch away from it, for the thread's own), the fake stack it left
     * behind when it switched out, and who switched to it last. */
    const void *san_bottom;
    size_t san_size;
    void *san_fake;
    struct coro *san_src;
};

/* Make c the context of the calling thread's own stack (the loop's). */
void coro_init_thread(struct coro *c);

/* Create a context on a new stack of stack_size bytes, that will run
 * entry(arg) when first switched to; entry must never return.
 * Returns 0, -ENOMEM or -EAGAIN. `from` is the caller's own context. */
int coro_create(struct coro *c, struct coro *from, size_t stack_size,
                enum stack_guard_mode *guard, coro_entry entry, void *arg);

/* Free a context's stack. Never call it for the running context. */
void coro_destroy(struct coro *c);

/* Save the running context into from and resume to. */
void coro_switch(struct coro *from, struct coro *to);

#endif
