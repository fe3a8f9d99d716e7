/* What AddressSanitizer, ThreadSanitizer and Valgrind must be told when
 * stacks are made, freed and switched. Everything here compiles to nothing
 * in a plain build. */
#ifndef ASYNCIO_SANITIZERS_H
#define ASYNCIO_SANITIZERS_H

#include "names.h"

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASYNCIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASYNCIO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define ASYNCIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASYNCIO_TSAN 1
#endif
#endif

#ifdef ASYNCIO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
/* ASan's frames are several times larger: give every stack room for them. */
#define SAN_STACK_SCALE 4
#elif defined(ASYNCIO_TSAN)
/* Each context is a TSan fiber: its own call stack for reports, and a
 * happens-before edge at every switch (see coro.c). TSan's frames are
 * hardly larger (a task that fits 16 KiB in a plain build fits it under
 * TSan with a KiB to spare), but a race report is printed on the stack of
 * the task that found it and needs up to 11 KiB there (gcc 12's runtime;
 * clang 14's, 4 KiB): twice the size leaves every task that fits its size
 * room for one. */
#include <sanitizer/tsan_interface.h>
#define SAN_STACK_SCALE 2
#else
#define SAN_STACK_SCALE 1
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ASYNCIO_VALGRIND 1
#endif
#endif

/* Called with a struct stack *. Valgrind must know every stack, else it
 * takes a switch for a huge stack frame; ASan's shadow of a freed stack must
 * be cleared so that the next mapping at that address starts clean. */
#ifdef ASYNCIO_VALGRIND
#define SAN_VG_REGISTER(s) ((s)->vg_id = VALGRIND_STACK_REGISTER((s)->base, (char *)(s)->base + (s)->size))
#define SAN_VG_DEREGISTER(s) VALGRIND_STACK_DEREGISTER((s)->vg_id)
#else
#define SAN_VG_REGISTER(s) ((void)(s))
#define SAN_VG_DEREGISTER(s) ((void)(s))
#endif

#ifdef ASYNCIO_ASAN
void san_unpoison_stack(void *base, size_t size);
#define SAN_ASAN_UNPOISON(s) san_unpoison_stack((s)->base, (s)->size)
#else
#define SAN_ASAN_UNPOISON(s) ((void)(s))
#endif

/* In a coverage build, what runs before an abort() on purpose (a stack
 * overflow report, a misuse that stops the program) is counted too: gcov
 * writes its counters at exit, which abort() skips. */
#ifdef ASYNCIO_COVERAGE
void __gcov_dump(void);
#define SAN_COVERAGE_DUMP() __gcov_dump()
#else
#define SAN_COVERAGE_DUMP() ((void)0)
#endif

#define SAN_STACK_REGISTER(s) SAN_VG_REGISTER(s)
#define SAN_STACK_DEREGISTER(s) \
    do {                        \
        SAN_VG_DEREGISTER(s);   \
        SAN_ASAN_UNPOISON(s);   \
    } while (0)

#endif
