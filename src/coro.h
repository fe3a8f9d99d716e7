/* The coroutine engine: execution contexts on their own stacks.
 *
 * A context is created with makecontext (from a getcontext template made
 * once per loop), entered with the registers makecontext prepared, and
 * from then on switched without a system call: on x86-64 by a few
 * instructions that save the callee-saved registers and the stack pointer,
 * elsewhere with _setjmp/_longjmp. A context runs its entry function
 * forever (the task layer reuses it for task after task), so contexts and
 * their stacks can be pooled. Floating-point control state (rounding mode,
 * exception masks) is the thread's, shared by all its tasks, as C defines
 * it. */
#ifndef ASYNCIO_CORO_H
#define ASYNCIO_CORO_H

#include "names.h"

#include <setjmp.h>
#include <stdbool.h>
#include <ucontext.h>

#include "sanitizers.h"
#include "stack.h"

/* Under ASan and TSan every switch must be announced, so it goes through a
 * function. */
#if defined(ASYNCIO_ASAN) || defined(ASYNCIO_TSAN)
#define CORO_ANNOTATE 1
#endif

typedef void (*coro_entry)(void *arg);

/* The x86-64 switch (coro.c) is written for ELF (.type, .size, .hidden,
 * symbol names without a leading underscore): elsewhere, macOS's Mach-O
 * included, the portable _setjmp/_longjmp switch, as on arm64. */
#if defined(__x86_64__) && defined(__ELF__) && !defined(ASYNCIO_NO_ASM)
#define CORO_ASM 1
#endif

struct coro {
#ifdef CORO_ASM
    void *sp;       /* saved stack pointer; the registers are on the stack */
#else
    jmp_buf env;
#endif
    struct stack stack;     /* unused for a thread's own context */
#ifdef ASYNCIO_ASAN
    /* For ASan: the bounds of this context's stack (learnt on the first
     * switch away from it, for the thread's own), the fake stack it left
     * behind when it switched out, and who switched to it last. */
    const void *san_bottom;
    size_t san_size;
    void *san_fake;
    struct coro *san_src;
#endif
#ifdef ASYNCIO_TSAN
    /* For TSan: this context's fiber, made with it and destroyed with its
     * stack; for the thread's own context, the thread's. */
    void *tsan_fiber;
#endif
};

/* What makecontext starts from, filled in by getcontext once. */
struct coro_template {
    ucontext_t uc;
    bool ready;
};
void coro_template_init(struct coro_template *t);

/* Make c the context of the calling thread's own stack (the loop's). */
void coro_init_thread(struct coro *c);

/* Create a context on a new stack of stack_size bytes, that will run
 * entry(arg) when first switched to; entry must never return.
 * Returns 0, -ENOMEM or -EAGAIN. `from` is the caller's own context. */
int coro_create(struct coro *c, struct coro *from, struct stack_arena *arena,
                struct coro_template *tmpl, size_t stack_size, coro_entry entry, void *arg);

/* Free a context's stack. Never call it for the running context. */
void coro_destroy(struct coro *c, struct stack_arena *arena);

/* Save the running context into from and resume to. */
#ifdef CORO_ASM
void asyncio_coro_switch_regs(void **from, void *const *to);
#endif
#if defined(CORO_ASM) && !defined(CORO_ANNOTATE)
static inline void coro_switch(struct coro *from, struct coro *to)
{
    asyncio_coro_switch_regs(&from->sp, &to->sp);
}
#else
void coro_switch(struct coro *from, struct coro *to);
#endif

#endif
