/* The coroutine engine (coro.h): a context made on a stack of its own,
 * started without setcontext's system call, and the switch between
 * contexts (a few instructions of assembly on x86-64, _setjmp/_longjmp
 * elsewhere), telling ASan and TSan of every switch in their builds.
 *
 * _FORTIFY_SOURCE turns longjmp into __longjmp_chk, which aborts when the
 * jump lands on another stack: that jump is the whole point here. */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 0

#include "coro.h"
#include "sanitizers.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

/* Start ASan's record of c: the bounds of its stack (NULL and 0 for the
 * thread's own, which ASan tells on the first switch away from it), no
 * fake stack, nobody switched to it yet. */
static inline void switch_init(struct coro *c, const void *bottom, size_t size)
{
#ifdef ASYNCIO_ASAN
    c->san_bottom = bottom;
    c->san_size = size;
    c->san_fake = NULL;
    c->san_src = NULL;
#else
    (void)c, (void)bottom, (void)size;
#endif
}

/* ASan must hear of every switch: which stack we go to before, and where we
 * came from after, else it reports false stack overflows and use-after-scope. */
static inline void switch_begin(struct coro *from, struct coro *to)
{
#ifdef ASYNCIO_ASAN
    to->san_src = from;
    __sanitizer_start_switch_fiber(&from->san_fake, to->san_bottom, to->san_size);
#else
    (void)from, (void)to;
#endif
}

/* TSan must hear of every switch too, and right before the jump itself:
 * from then on it counts what runs as to's (its call stack, its memory
 * accesses), and the switch orders all that from did before it ahead of what
 * to does next, as one thread running both would. Where the switch is
 * _setjmp/_longjmp, this goes between the two: TSan intercepts _setjmp and
 * files the jmp_buf under the fiber running then, dropping that fiber's
 * jmp_bufs it takes for dead frames, so from's must be made while from is
 * current (else a task's own setjmp/longjmp across a wait fails with "can't
 * find longjmp buf").
 * Always inlined, at -O0 too: as a function of its own it would leave TSan's
 * call stack of from one frame deeper and pop one frame off to's, which is
 * empty for a new context (clang 14's runtime then writes below that
 * shadow stack and crashes; gcc 12's does the same without a word). */
static inline __attribute__((always_inline)) void switch_jump(struct coro *to)
{
#ifdef ASYNCIO_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)to;
#endif
}

static inline void switch_end(struct coro *self)
{
#ifdef ASYNCIO_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(self->san_fake, &bottom, &size);
    self->san_src->san_bottom = bottom;
    self->san_src->san_size = size;
#else
    (void)self;
#endif
}

void coro_init_thread(struct coro *c)
{
    c->stack.map = NULL;
    c->stack.chunk = NULL;
    switch_init(c, NULL, 0);
#ifdef ASYNCIO_TSAN
    c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

#ifdef CORO_ASM
/* switch_regs(from, to): push the callee-saved registers, save the stack
 * pointer in *from, load *to's, pop its registers and jump back into it.
 * save_and_start(save, sp, pc, a0, a1): save like switch_regs, then jump to
 * pc(a0, a1) on stack sp, as a call would (sp holds a return address);
 * switching to *save later returns from save_and_start. */
void asyncio_coro_save_and_start(void **save, void *sp, void *pc, uint64_t a0, uint64_t a1);
__asm__(".text\n"
        ".p2align 4\n"
        ".globl asyncio_coro_switch_regs\n"
        ".hidden asyncio_coro_switch_regs\n"
        ".type asyncio_coro_switch_regs,@function\n"
        "asyncio_coro_switch_regs:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq (%rsi), %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    popq %rcx\n" /* pop+jmp, not ret: ret would always mispredict */
        "    jmpq *%rcx\n"
        ".size asyncio_coro_switch_regs,.-asyncio_coro_switch_regs\n"
        ".p2align 4\n"
        ".globl asyncio_coro_save_and_start\n"
        ".hidden asyncio_coro_save_and_start\n"
        ".type asyncio_coro_save_and_start,@function\n"
        "asyncio_coro_save_and_start:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    movq %rcx, %rdi\n"
        "    movq %r8, %rsi\n"
        "    jmpq *%rdx\n"
        ".size asyncio_coro_save_and_start,.-asyncio_coro_save_and_start\n");
#endif

/* Handed from coro_create to the new context's first instructions, on the
 * creator's stack until the context has copied what it needs (the entry
 * and its argument are not kept in struct coro: a parked task's context is
 * 16 bytes smaller for it). */
struct boot {
    struct coro *self;
    struct coro *from;
    coro_entry entry;
    void *arg;
#ifndef CORO_ASM
    jmp_buf *back;
#endif
};

static void trampoline(unsigned hi, unsigned lo)
{
    struct boot *b = (struct boot *)(uintptr_t)(((uint64_t)hi << 32) | lo);
    struct coro *self = b->self;
    coro_entry entry = b->entry;
    void *arg = b->arg;
    switch_end(self);
    /* Park here and let the creator return from coro_create. The first real
     * switch to this context lands right after. */
    struct coro *from = b->from;
    switch_begin(self, from);
#ifdef CORO_ASM
    switch_jump(from);
    asyncio_coro_switch_regs(&self->sp, &from->sp);
#else
    if (!_setjmp(self->env)) {
        switch_jump(from);
        _longjmp(*b->back, 1);
    }
#endif
    switch_end(self);
    entry(arg);
    abort(); /* GCOVR_EXCL_LINE: entry never returns (its task ends with a switch away) */
}

void coro_template_init(struct coro_template *t)
{
    t->ready = false;
}

int coro_create(struct coro *c, struct coro *from, struct stack_arena *arena,
                struct coro_template *tmpl, size_t stack_size, coro_entry entry, void *arg)
{
    /* getcontext only fills in a valid ucontext for makecontext: once per
     * loop is enough. */
    if (!tmpl->ready) {
        if (getcontext(&tmpl->uc) < 0)
            return -errno; /* GCOVR_EXCL_LINE: getcontext() does not fail on Linux (valid ucontext, no signal mask change) */
        tmpl->ready = true;
    }
    int rc = stack_alloc(arena, &c->stack, stack_size);
    if (rc < 0)
        return rc;
    switch_init(c, c->stack.base, c->stack.size);
#ifdef ASYNCIO_TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
#endif

    ucontext_t uc = tmpl->uc;
    uc.uc_stack.ss_sp = c->stack.base;
    uc.uc_stack.ss_size = c->stack.size;
    uc.uc_link = NULL;
    struct boot b = {.self = c, .from = from, .entry = entry, .arg = arg};
    uint64_t p = (uint64_t)(uintptr_t)&b;
    makecontext(&uc, (void (*)(void))trampoline, 2, (unsigned)(p >> 32), (unsigned)p);
    /* The new context comes straight back here (see trampoline). */
    switch_begin(from, c);
#ifdef CORO_ASM
    /* Enter it with the registers makecontext prepared, without setcontext
     * and its signal-mask system call. */
    switch_jump(c);
    asyncio_coro_save_and_start(&from->sp, (void *)uc.uc_mcontext.gregs[REG_RSP],
                                (void *)uc.uc_mcontext.gregs[REG_RIP],
                                (uint64_t)uc.uc_mcontext.gregs[REG_RDI],
                                (uint64_t)uc.uc_mcontext.gregs[REG_RSI]);
#else
    /* setcontext also sets the signal mask: the thread's now, not the one
     * the template was made with (a signal handler added since then blocks
     * its signal, which must stay blocked). */
    pthread_sigmask(SIG_SETMASK, NULL, &uc.uc_sigmask);
    jmp_buf back;
    b.back = &back;
    if (!_setjmp(back)) {
        switch_jump(c);
        setcontext(&uc);
        abort(); /* setcontext returns only on failure */
    }
#endif
    switch_end(from);
    return 0;
}

void coro_destroy(struct coro *c, struct stack_arena *arena)
{
#ifdef ASYNCIO_TSAN
    if (c->stack.chunk) {
        __tsan_destroy_fiber(c->tsan_fiber);
        c->tsan_fiber = NULL;
    }
#endif
    stack_free(arena, &c->stack);
}

#if !defined(CORO_ASM) || defined(CORO_ANNOTATE)
__attribute__((noinline)) void coro_switch(struct coro *from, struct coro *to)
{
    switch_begin(from, to);
#ifdef CORO_ASM
    switch_jump(to);
    asyncio_coro_switch_regs(&from->sp, &to->sp);
#else
    if (!_setjmp(from->env)) {
        switch_jump(to);
        _longjmp(to->env, 1);
    }
#endif
    switch_end(from);
}
#endif
