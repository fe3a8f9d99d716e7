/* Coroutine stacks (stack.h): the arena that carves default-size stacks
 * from chunks of CHUNK_SLOTS slots and maps other sizes alone, the guard
 * region below each stack (MADV_GUARD_INSTALL, in batches where the kernel
 * allows, else mprotect), and, under ASan, the clearing of a freed
 * stack's shadow. */
#include "stack.h"
#include "sanitizers.h"
#include "syscaps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#if defined(HAVE_MADV_GUARD) && !defined(MADV_GUARD_INSTALL)
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#if !defined(HAVE_MADV_GUARD) && defined(MADV_GUARD_INSTALL)
#undef MADV_GUARD_INSTALL /* a test build without Linux's own features */
#endif
/* process_madvise() on the calling process without a pidfd (Linux 6.14). */
#if defined(__linux__) && !defined(PIDFD_SELF_THREAD)
#define PIDFD_SELF_THREAD (-10000)
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define CHUNK_SLOTS 64
/* Guards installed by one process_madvise() call at most. */
#define GUARD_BATCH 16

struct stack_chunk {
    struct dlist link;   /* on the arena's partial list while a slot is free */
    char *map;
    size_t slot_len;
    size_t guard;        /* its slots' guard: the arena's, or a page more */
    unsigned nslots;
    uint64_t free_mask;  /* bit i: slot i is free */
    uint64_t guarded;    /* bit i: slot i has its guard */
};

size_t stack_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

void stack_arena_init(struct stack_arena *a, size_t default_size, size_t guard)
{
    a->page = stack_page_size();
    a->default_size = (default_size + a->page - 1) & ~(a->page - 1);
    a->guard = guard < a->page ? a->page : (guard + a->page - 1) & ~(a->page - 1);
    /* ASYNCIO_STACK_GUARD=mprotect takes the fallback path on any kernel:
     * to test it, or for tools that do not know MADV_GUARD_INSTALL. */
    const char *mode = getenv("ASYNCIO_STACK_GUARD");
    a->guard_mode = mode && strcmp(mode, "mprotect") == 0 ? GUARD_MPROTECT : GUARD_UNKNOWN;
    a->no_batch = false;
    dlist_init(&a->partial);
}

static int install_guard(struct stack_arena *a, struct stack_chunk *c, void *start)
{
#ifdef MADV_GUARD_INSTALL
    if (a->guard_mode != GUARD_MPROTECT) {
        if (madvise(start, c->guard, MADV_GUARD_INSTALL) == 0) {
            a->guard_mode = GUARD_MADVISE;
            return 0;
        }
        if (a->guard_mode == GUARD_MADVISE || (errno != EINVAL && errno != ENOSYS))
            return errno == ENOMEM ? -ENOMEM : -errno;
        /* An older kernel (or Valgrind): fall back for good. */
    }
#endif
    a->guard_mode = GUARD_MPROTECT;
    if (mprotect(start, c->guard, PROT_NONE) == 0)
        return 0;
    /* ENOMEM here means the process ran out of mappings (vm.max_map_count). */
    return errno == ENOMEM ? -EAGAIN : -errno;
}

/* Guards for slot and the next unguarded slots of c (up to GUARD_BATCH),
 * with one system call: process_madvise() takes a list of ranges. The
 * system call costs more than the guard pages themselves, so a list of
 * slots costs less per slot than one call each, and that is what makes a
 * guard region of many pages cheap. Only once madvise() has shown
 * that the kernel has guard pages; where process_madvise() cannot do it
 * (an older kernel, a seccomp filter), never again. False if nothing was
 * installed: then install_guard() does slot alone. */
static bool install_guards_batch(struct stack_arena *a, struct stack_chunk *c, unsigned slot)
{
#if defined(MADV_GUARD_INSTALL) && defined(SYS_process_madvise)
    if (a->guard_mode != GUARD_MADVISE || a->no_batch || c->nslots == 1)
        return false;
    struct iovec iov[GUARD_BATCH];
    uint64_t bits = 0;
    int n = 0;
    for (unsigned i = slot; i < c->nslots && n < GUARD_BATCH; i++) {
        if (c->guarded & (UINT64_C(1) << i))
            continue; /* GCOVR_EXCL_LINE: the guarded slots are a prefix (the lowest free slot is taken, and batches start there), slot its end */
        iov[n].iov_base = c->map + (size_t)i * c->slot_len;
        iov[n].iov_len = c->guard;
        bits |= UINT64_C(1) << i;
        n++;
    }
    long done = syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)n, MADV_GUARD_INSTALL,
                        0u);
    if (done == (long)((size_t)n * c->guard)) {
        c->guarded |= bits;
        return true;
    }
    if (done < 0)
        a->no_batch = true;
    /* A part done is done again by madvise(): guards may be installed
     * twice. */
#else
    (void)a, (void)c, (void)slot;
#endif
    return false;
}

/* The free_mask of c with every slot free. */
static uint64_t chunk_all_free(const struct stack_chunk *c)
{
    return c->nslots == 64 ? UINT64_MAX : (UINT64_C(1) << c->nslots) - 1;
}

static struct stack_chunk *chunk_new(struct stack_arena *a, size_t size, unsigned nslots)
{
    struct stack_chunk *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    /* An odd number of pages a slot. With a multiple of 64 KiB (256 KiB
     * stacks and 64 KiB guards) the tops of all stacks would fall in the
     * same cache sets, and a batch of tasks, each touching its own stack
     * top, would evict itself (bench_spawn shows it). The page that makes
     * the number odd is added to the guard. */
    c->guard = a->guard + ((size + a->guard) / a->page % 2 ? 0 : a->page);
    c->slot_len = size + c->guard;
    c->nslots = nslots;
    c->map = mmap(NULL, c->slot_len * nslots, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (c->map == MAP_FAILED) {
        free(c);
        return NULL;
    }
#ifdef MADV_NOHUGEPAGE
    /* With transparent huge pages set to "always", a touched stack could
     * cost 2 MiB. */
    madvise(c->map, c->slot_len * nslots, MADV_NOHUGEPAGE);
#endif
    c->free_mask = chunk_all_free(c);
    c->guarded = 0;
    c->link.next = c->link.prev = NULL;
    return c;
}

static void chunk_unmap(struct stack_chunk *c)
{
    dlist_remove(&c->link);
    munmap(c->map, c->slot_len * c->nslots);
    free(c);
}

int stack_alloc(struct stack_arena *a, struct stack *s, size_t size)
{
    size = (size + a->page - 1) & ~(a->page - 1);
    bool pooled = size == a->default_size;
    struct stack_chunk *c;
    if (pooled && !dlist_empty(&a->partial)) {
        c = container_of(a->partial.next, struct stack_chunk, link);
    } else {
        c = chunk_new(a, size, pooled ? CHUNK_SLOTS : 1);
        if (!c)
            return -ENOMEM;
        if (pooled)
            dlist_push_back(&a->partial, &c->link);
    }
    unsigned slot = (unsigned)__builtin_ctzll(c->free_mask);
    char *start = c->map + (size_t)slot * c->slot_len;
    if (!(c->guarded & (UINT64_C(1) << slot)) && !install_guards_batch(a, c, slot)) {
        int rc = install_guard(a, c, start);
        if (rc < 0) {
            if (c->free_mask == chunk_all_free(c))
                chunk_unmap(c);
            return rc;
        }
        c->guarded |= UINT64_C(1) << slot;
    }
    c->free_mask &= ~(UINT64_C(1) << slot);
    if (!c->free_mask)
        dlist_remove(&c->link);
    s->map = start;
    s->base = start + c->guard;
    s->size = size;
    s->chunk = c;
    s->slot = slot;
    SAN_STACK_REGISTER(s);
    return 0;
}

#ifdef ASYNCIO_ASAN
/* Frames leave poisoned shadow behind, which the next stack at the same
 * address would inherit. Clearing the shadow of a whole stack would fault in
 * all of it, so clear only the pages the stack really used. */
void san_unpoison_stack(void *base, size_t size)
{
    size_t page = stack_page_size(), pages = size / page;
    unsigned char vec[256];
    for (size_t first = 0; first < pages; first += sizeof vec) {
        size_t n = pages - first < sizeof vec ? pages - first : sizeof vec;
        char *chunk = (char *)base + first * page;
        if (mincore(chunk, n * page, vec) < 0) {
            ASAN_UNPOISON_MEMORY_REGION(chunk, n * page);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (vec[i] & 1)
                ASAN_UNPOISON_MEMORY_REGION(chunk + i * page, page);
    }
}
#endif

void stack_free(struct stack_arena *a, struct stack *s)
{
    struct stack_chunk *c = s->chunk;
    if (!c)
        return; /* GCOVR_EXCL_LINE: callers free only stacks stack_alloc() gave, once */
    SAN_STACK_DEREGISTER(s);
    bool was_full = !c->free_mask;
    c->free_mask |= UINT64_C(1) << s->slot;
    s->chunk = NULL;
    if (c->free_mask == chunk_all_free(c)) {
        chunk_unmap(c);
        return;
    }
    /* The slot stays mapped (and guarded) for the next stack: give its pages
     * back without splitting the mapping. */
    madvise(s->base, s->size, MADV_DONTNEED);
    if (was_full)
        dlist_push_back(&a->partial, &c->link);
}

void stack_arena_destroy(struct stack_arena *a)
{
    while (!dlist_empty(&a->partial))
        chunk_unmap(container_of(a->partial.next, struct stack_chunk, link)); /* GCOVR_EXCL_LINE: loop_free() freed every stack first, and a chunk all free is unmapped then */
}
