/* Coroutine stacks: mapped by the library, lazily backed (MAP_NORESERVE),
 * with a guard region below each usable area (a few pages: a frame larger
 * than one page, in code built without -fstack-clash-protection, would
 * jump a single guard page and land in the neighbouring stack).
 *
 * Stacks are carved from chunks of up to 64 slots of one size, one mapping
 * each, so that a million stacks cost thousands of mmap calls, not a
 * million: a class of chunks for the loop's default size and for each of
 * the first STACK_CLASSES - 1 other sizes asked for (a size past those,
 * or too large for two slots in a chunk, is mapped alone). A class keeps
 * one chunk with no stack in use, so that a task made and finished alone,
 * again and again, does not map and unmap a chunk each time. Guards are installed with MADV_GUARD_INSTALL where the kernel
 * has it (Linux 6.13+): no extra memory mapping, so vm.max_map_count stops
 * being the limit. Elsewhere mprotect makes them, at two mappings a stack,
 * and allocation fails with -EAGAIN when the mappings run out. */
#ifndef ASYNCIO_STACK_H
#define ASYNCIO_STACK_H

#include "names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

#include <sys/uio.h>

struct stack_chunk;

struct stack {
    void *map;      /* start of the slot: the guard region comes first */
    void *base;     /* lowest usable address */
    size_t size;    /* usable bytes */
    struct stack_chunk *chunk;
    unsigned slot;
    unsigned vg_id; /* Valgrind's id for it */
};

enum stack_guard_mode { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

#define STACK_CLASSES 8
/* Freed stacks whose pages one system call gives back, at most. */
#define STACK_FREE_BATCH 64

struct stack_class {
    size_t size;               /* usable bytes; 0: not in use yet */
    unsigned nslots;           /* slots a chunk */
    struct dlist partial;      /* its chunks with a free slot */
    struct stack_chunk *empty; /* the one chunk kept with every slot free */
};


struct stack_arena {
    size_t default_size;    /* usable bytes, page-rounded */
    size_t guard;           /* guard bytes below each stack, page-rounded */
    size_t page;
    enum stack_guard_mode guard_mode;
    bool no_batch;          /* process_madvise() failed: one by one */
    bool no_batch_free;     /* ... and for MADV_DONTNEED */
    struct stack_class classes[STACK_CLASSES]; /* [0]: the default size */
    struct stack_chunk *dirty; /* chunks with stacks swept since the last
                                  stack_sweep_flush() */
    bool batch_free;        /* between stack_free_batch_begin() and _end() */
    unsigned nfreed;        /* ranges in freed */
    struct iovec freed[STACK_FREE_BATCH]; /* freed stacks' pages to give back */
};

/* guard: the guard region's size in bytes (rounded up to pages, at least
 * one page). */
void stack_arena_init(struct stack_arena *a, size_t default_size, size_t guard);
/* Unmap what is left (every stack must be free). */
void stack_arena_destroy(struct stack_arena *a);

/* A stack of at least size usable bytes (page-rounded). Returns 0, -ENOMEM
 * (no memory) or -EAGAIN (no memory mappings left). */
int stack_alloc(struct stack_arena *a, struct stack *s, size_t size);
/* Give a stack back: its pages are returned to the system. */
void stack_free(struct stack_arena *a, struct stack *s);
/* Between these two, stack_free() gathers the pages to give back and
 * gives them back together (one process_madvise() call for up to
 * STACK_FREE_BATCH stacks where the kernel has it, not one madvise() each:
 * each call costs a TLB flush, which some virtual machines make dear).
 * Only frees may come between them: a stack_alloc() or a chunk unmapped
 * gives back what was gathered first. */
void stack_free_batch_begin(struct stack_arena *a);
void stack_free_batch_end(struct stack_arena *a);

/* The stack sweep (sweep.c): s's task is swept, its live part copied
 * away. Its pages are given back at the next stack_sweep_flush(), with
 * one system call per chunk: once every stack of a chunk is swept or free,
 * the chunk's whole mapping with its page tables (the guards go too). */
void stack_swept(struct stack_arena *a, struct stack *s);
void stack_sweep_flush(struct stack_arena *a);
/* s's task is about to run again: its chunk's guards come back if they
 * went. 0, or -ENOMEM (no room to install them: try again later). */
int stack_unswept(struct stack_arena *a, struct stack *s);

/* The system page size. */
size_t stack_page_size(void);

#endif
