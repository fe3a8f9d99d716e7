/* Coroutine stacks (stack.h): the arena that carves stacks from chunks of
 * up to CHUNK_SLOTS slots, a class of chunks a size, the guard
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
#define MADV_GUARD_REMOVE 103
#endif
#if !defined(HAVE_MADV_GUARD) && defined(MADV_GUARD_INSTALL)
#undef MADV_GUARD_INSTALL /* a test build without Linux's own features */
#undef MADV_GUARD_REMOVE
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
/* A chunk of another size than the default spans at most this much (its
 * slots are fewer when they are large). */
#define CHUNK_SPAN_MAX ((size_t)32 * 1024 * 1024)
/* Guards installed by one process_madvise() call at most. */
#define GUARD_BATCH 64

struct stack_chunk {
    struct dlist link;   /* on its class's partial list while a slot is free */
    struct stack_class *cls; /* NULL: a stack mapped alone */
    char *map;
    size_t map_len;      /* the slots, and for a pooled chunk up to the next
                            PMD_SPAN: its last page table is its own too */
    size_t slot_len;
    size_t guard;        /* its slots' guard: the arena's, or a page more */
    unsigned nslots;
    uint64_t free_mask;  /* bit i: slot i is free */
    uint64_t guarded;    /* bit i: slot i has its guard */
    unsigned swept;      /* slots whose task is swept (stack_swept()) */
    uint64_t pending;    /* bit i: slot i swept, its pages not given back yet */
    struct stack_chunk *next_dirty; /* on the arena's dirty list while pending */
    bool bare;           /* every slot free or swept, and the whole mapping
                            given back, page tables included */
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
    a->no_batch_free = false;
    a->dirty = NULL;
    a->batch_free = false;
    a->nfreed = 0;
    for (unsigned i = 0; i < STACK_CLASSES; i++) {
        a->classes[i] = (struct stack_class){.size = 0};
        dlist_init(&a->classes[i].partial);
    }
    a->classes[0].size = a->default_size;
    a->classes[0].nslots = CHUNK_SLOTS;
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
            continue;
        iov[n].iov_base = c->map + (size_t)i * c->slot_len;
        iov[n].iov_len = c->guard;
        bits |= UINT64_C(1) << i;
        n++;
    }
    long done = syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)n, MADV_GUARD_INSTALL,
                        0u);
    if (done == (long)((size_t)n * c->guard)) {
        c->guarded |= bits;
#ifdef MADV_POPULATE_WRITE
        /* The top page of each: the context is made there at once, and a
         * page fault costs more than the page (a trap; ten times as much in
         * some virtual machines). */
        for (int k = 0; k < n; k++) {
            iov[k].iov_base = (char *)iov[k].iov_base + c->slot_len - a->page;
            iov[k].iov_len = a->page;
        }
        syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)n, MADV_POPULATE_WRITE, 0u);
#endif
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

/* What a page table covers (x86-64, arm64 with 4 KiB pages): a pooled
 * chunk starts at such a boundary and its mapping ends at one, so its page
 * tables are its own, and the kernel frees them when the chunk is given
 * back whole (bare). Ending at one matters: the last table of a chunk of
 * 64 KiB stacks, shared with the next mapping, stayed (64 bytes a task). */
#define PMD_SPAN ((size_t)2 * 1024 * 1024)

/* len bytes for stacks, starting at a multiple of align (0: anywhere), or
 * NULL. */
static char *map_stacks(size_t len, size_t align)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK;
    char *m = mmap(NULL, len + align, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (!align)
        return m;
    size_t head = (align - (uintptr_t)m % align) % align;
    if (head)
        munmap(m, head);
    munmap(m + head + len, align - head);
    return m + head;
}

/* The guard below a stack of size bytes: an odd number of pages a slot.
 * With a multiple of 64 KiB (256 KiB stacks and 64 KiB guards) the tops of
 * all stacks would fall in the same cache sets, and a batch of tasks, each
 * touching its own stack top, would evict itself (bench_spawn shows it).
 * The page that makes the number odd is added to the guard. */
static size_t slot_guard(const struct stack_arena *a, size_t size)
{
    return a->guard + ((size + a->guard) / a->page % 2 ? 0 : a->page);
}

static struct stack_chunk *chunk_new(struct stack_arena *a, size_t size, struct stack_class *cls)
{
    struct stack_chunk *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    unsigned nslots = cls ? cls->nslots : 1;
    c->cls = cls;
    c->guard = slot_guard(a, size);
    c->slot_len = size + c->guard;
    c->nslots = nslots;
    c->map_len = c->slot_len * nslots;
    if (cls)
        c->map_len = (c->map_len + PMD_SPAN - 1) / PMD_SPAN * PMD_SPAN;
    c->map = map_stacks(c->map_len, cls ? PMD_SPAN : 0);
    if (!c->map) {
        free(c);
        return NULL;
    }
#ifdef MADV_NOHUGEPAGE
    /* With transparent huge pages set to "always", a touched stack could
     * cost 2 MiB. */
    madvise(c->map, c->map_len, MADV_NOHUGEPAGE);
#endif
    c->free_mask = chunk_all_free(c);
    c->guarded = 0;
    c->swept = 0;
    c->pending = 0;
    c->next_dirty = NULL;
    c->bare = false;
    c->link.next = c->link.prev = NULL;
    return c;
}

static void free_flush(struct stack_arena *a);

static void chunk_unmap(struct stack_arena *a, struct stack_chunk *c)
{
    /* Ranges gathered in c must not be advised once the addresses are
     * unmapped, and perhaps mapped again by someone else. */
    free_flush(a);
    if (c->cls && c->cls->empty == c)
        c->cls->empty = NULL;
    dlist_remove(&c->link);
    munmap(c->map, c->map_len);
    free(c);
}

/* The class of stacks of size bytes (page-rounded), made if there is
 * room; NULL: such stacks are mapped alone. */
static struct stack_class *class_of(struct stack_arena *a, size_t size)
{
    for (unsigned i = 0; i < STACK_CLASSES; i++) {
        struct stack_class *k = &a->classes[i];
        if (k->size == size)
            return k;
        if (k->size == 0) {
            size_t slots = CHUNK_SPAN_MAX / (size + slot_guard(a, size));
            if (slots < 2)
                return NULL;
            k->size = size;
            k->nslots = slots < CHUNK_SLOTS ? (unsigned)slots : CHUNK_SLOTS;
            return k;
        }
    }
    return NULL;
}

int stack_alloc(struct stack_arena *a, struct stack *s, size_t size)
{
    size = (size + a->page - 1) & ~(a->page - 1);
    free_flush(a); /* a slot gathered must not be given back once in use */
    struct stack_class *cls = class_of(a, size);
    struct stack_chunk *c;
    if (cls && !dlist_empty(&cls->partial)) {
        c = container_of(cls->partial.next, struct stack_chunk, link);
    } else {
        c = chunk_new(a, size, cls);
        if (!c)
            return -ENOMEM;
        if (cls)
            dlist_push_back(&cls->partial, &c->link);
    }
    unsigned slot = (unsigned)__builtin_ctzll(c->free_mask);
    char *start = c->map + (size_t)slot * c->slot_len;
    if (!(c->guarded & (UINT64_C(1) << slot)) && !install_guards_batch(a, c, slot)) {
        int rc = install_guard(a, c, start);
        if (rc < 0) {
            if (c->free_mask == chunk_all_free(c))
                chunk_unmap(a, c);
            return rc;
        }
        c->guarded |= UINT64_C(1) << slot;
    }
    c->free_mask &= ~(UINT64_C(1) << slot);
    if (cls && cls->empty == c)
        cls->empty = NULL;
    c->bare = false; /* a stack in use that is not swept */
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
    (void)a; /* the chunk knows its class */
    struct stack_chunk *c = s->chunk;
    if (!c)
        return; /* GCOVR_EXCL_LINE: callers free only stacks stack_alloc() gave, once */
    SAN_STACK_DEREGISTER(s);
    bool was_full = !c->free_mask;
    c->free_mask |= UINT64_C(1) << s->slot;
    s->chunk = NULL;
    if (c->free_mask == chunk_all_free(c)) {
        if (!c->cls || c->cls->empty) {
            chunk_unmap(a, c);
            return;
        }
        c->cls->empty = c; /* kept, for the next stack of its size */
    }
    /* The slot stays mapped (and guarded) for the next stack: give its pages
     * back without splitting the mapping. */
    if (a->batch_free) {
        a->freed[a->nfreed].iov_base = s->base;
        a->freed[a->nfreed++].iov_len = s->size;
        if (a->nfreed == STACK_FREE_BATCH)
            free_flush(a);
    } else {
        madvise(s->base, s->size, MADV_DONTNEED);
    }
    if (was_full)
        dlist_push_back(&c->cls->partial, &c->link);
}

/* ---- the stack sweep's side (stack.h) ------------------------------------- */

/* Slots of c in use. */
static unsigned chunk_used(const struct stack_chunk *c)
{
    return c->nslots - (unsigned)__builtin_popcountll(c->free_mask);
}

void stack_swept(struct stack_arena *a, struct stack *s)
{
    struct stack_chunk *c = s->chunk;
    c->swept++;
    if (!c->pending) {
        c->next_dirty = a->dirty;
        a->dirty = c;
    }
    c->pending |= UINT64_C(1) << s->slot;
}

/* MADV_DONTNEED on n ranges: one system call where process_madvise() can
 * (Linux 6.14 for the calling process), else one each. */
static void give_back(struct stack_arena *a, const struct iovec *iov, unsigned n)
{
#if defined(__linux__) && defined(SYS_process_madvise)
    if (!a->no_batch_free && n > 1) {
        size_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += iov[i].iov_len;
        long done = syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)n, MADV_DONTNEED, 0u);
        if (done == (long)total)
            return;
        if (done < 0)
            a->no_batch_free = true; /* not for this advice here: one by one from now */
        /* A part done is done again: the advice is idempotent. */
    }
#else
    (void)a;
#endif
    for (unsigned i = 0; i < n; i++)
        madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
}

static void free_flush(struct stack_arena *a)
{
    if (a->nfreed) {
        give_back(a, a->freed, a->nfreed);
        a->nfreed = 0;
    }
}

void stack_free_batch_begin(struct stack_arena *a)
{
    a->batch_free = true;
}

void stack_free_batch_end(struct stack_arena *a)
{
    a->batch_free = false;
    free_flush(a);
}

/* Give back the pages of c's pending stacks: all of c when every stack in
 * it is swept (or free), else the pending ones, in one system call where
 * process_madvise() can. */
static void chunk_give_back(struct stack_arena *a, struct stack_chunk *c)
{
    if (c->swept == chunk_used(c)) {
        size_t len = c->map_len; /* the tail too: whole page tables */
        /* Page tables stay while a guard marker is in them, so the guards
         * go too (they come back before any of these stacks runs again);
         * a page table the range covers whole is then freed with its
         * pages. With mprotect'ed guards, only the pages go. */
#ifdef MADV_GUARD_REMOVE
        if (a->guard_mode == GUARD_MADVISE && madvise(c->map, len, MADV_GUARD_REMOVE) == 0)
            c->guarded = 0;
#endif
        madvise(c->map, len, MADV_DONTNEED);
        c->bare = true;
        return;
    }
    struct iovec iov[64];
    unsigned n = 0;
    for (uint64_t p = c->pending; p; p &= p - 1) {
        char *stack = c->map + (size_t)__builtin_ctzll(p) * c->slot_len + c->guard;
        iov[n].iov_base = stack;
        iov[n++].iov_len = c->slot_len - c->guard;
    }
    give_back(a, iov, n);
}

void stack_sweep_flush(struct stack_arena *a)
{
    while (a->dirty) {
        struct stack_chunk *c = a->dirty;
        a->dirty = c->next_dirty;
        c->next_dirty = NULL;
        if (!c->bare)
            chunk_give_back(a, c);
        c->pending = 0;
    }
}

int stack_unswept(struct stack_arena *a, struct stack *s)
{
    struct stack_chunk *c = s->chunk;
    c->pending &= ~(UINT64_C(1) << s->slot);
    /* The slots in use get their guards back, in batches. */
    uint64_t need = ~c->free_mask & ~c->guarded & chunk_all_free(c);
    while (need) {
        unsigned slot = (unsigned)__builtin_ctzll(need);
        if (!install_guards_batch(a, c, slot)) {
            int rc = install_guard(a, c, c->map + (size_t)slot * c->slot_len);
            if (rc < 0)
                return rc;
            c->guarded |= UINT64_C(1) << slot;
        }
        need = ~c->free_mask & ~c->guarded & chunk_all_free(c);
    }
    c->bare = false;
    c->swept--;
    return 0;
}

void stack_arena_destroy(struct stack_arena *a)
{
    /* Every stack is free by now: what is left are the chunks kept empty. */
    for (unsigned i = 0; i < STACK_CLASSES; i++)
        while (!dlist_empty(&a->classes[i].partial))
            chunk_unmap(a, container_of(a->classes[i].partial.next, struct stack_chunk, link));
}
