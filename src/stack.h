/* Coroutine stacks: mapped by the library, lazily backed (MAP_NORESERVE),
 * with a guard page below the usable area. The guard is installed with
 * MADV_GUARD_INSTALL where the kernel has it (no extra memory mapping, so
 * adjacent stacks merge into one mapping and vm.max_map_count stops being
 * the limit), else with mprotect (two mappings per stack). */
#ifndef ASYNCIO_STACK_H
#define ASYNCIO_STACK_H

#include <stddef.h>

struct stack {
    void *map;      /* start of the mapping: the guard page comes first */
    size_t map_len; /* guard + usable */
    void *base;     /* lowest usable address */
    size_t size;    /* usable bytes */
    unsigned vg_id; /* Valgrind's id for it */
};

/* How guards are made; the loop remembers what worked. */
enum stack_guard_mode { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

/* Map a stack of at least size usable bytes (rounded up to pages).
 * Returns 0, -ENOMEM (no memory) or -EAGAIN (no memory mappings left). */
int stack_alloc(struct stack *s, size_t size, enum stack_guard_mode *mode);
void stack_free(struct stack *s);

/* The system page size. */
size_t stack_page_size(void);

#endif
