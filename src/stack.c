#include "stack.h"
#include "sanitizers.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__) && !defined(MADV_GUARD_INSTALL)
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

size_t stack_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static int install_guard(void *page, size_t len, enum stack_guard_mode *mode)
{
#ifdef MADV_GUARD_INSTALL
    if (*mode != GUARD_MPROTECT) {
        if (madvise(page, len, MADV_GUARD_INSTALL) == 0) {
            *mode = GUARD_MADVISE;
            return 0;
        }
        if (*mode == GUARD_MADVISE || (errno != EINVAL && errno != ENOSYS))
            return -errno;
        *mode = GUARD_MPROTECT; /* an older kernel: fall back for good */
    }
#endif
    *mode = GUARD_MPROTECT;
    if (mprotect(page, len, PROT_NONE) == 0)
        return 0;
    /* ENOMEM here means the process ran out of mappings (vm.max_map_count). */
    return errno == ENOMEM ? -EAGAIN : -errno;
}

int stack_alloc(struct stack *s, size_t size, enum stack_guard_mode *mode)
{
    size_t page = stack_page_size();
    size = (size + page - 1) & ~(page - 1);
    size_t len = size + page;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    int rc = install_guard(map, page, mode);
    if (rc < 0) {
        munmap(map, len);
        return rc;
    }
#ifdef MADV_NOHUGEPAGE
    /* With transparent huge pages set to "always", a touched stack could
     * cost 2 MiB. */
    madvise(map, len, MADV_NOHUGEPAGE);
#endif
    s->map = map;
    s->map_len = len;
    s->base = (char *)map + page;
    s->size = size;
    SAN_STACK_REGISTER(s);
    return 0;
}

#ifdef ASYNCIO_ASAN
/* Frames leave poisoned shadow behind, which a later mapping at the same
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

void stack_free(struct stack *s)
{
    if (!s->map)
        return;
    SAN_STACK_DEREGISTER(s);
    munmap(s->map, s->map_len);
    s->map = NULL;
}
