/*
 * fuzz_window.h: the read buffer of a model server, for the parser fuzz
 * targets. The parser is called on the window in[front, back) of the
 * connection's bytes; what is outside the window must not be read:
 *
 *  - a window of at most WINDOW_COPY bytes is given as a fresh copy of
 *    exactly its size (freed after the call), so AddressSanitizer sees a
 *    read past its end, and a pointer kept from an earlier call dangles;
 *  - a larger one (copying it at every call would cost too much) is the
 *    window of one copy of the whole input in which AddressSanitizer is
 *    told that the bytes outside [front, back) are not there (manual
 *    poisoning; the start is exact to 8 bytes only).
 *
 * Also what both parser targets share: FAIL() and CHECK() (a broken
 * promise is an abort() the fuzzer reports, after a line naming the
 * target, FUZZ_NAME, which the target defines first), the expansion of
 * an input's padding, and a floor on chunk sizes.
 */
#ifndef FUZZ_WINDOW_H
#define FUZZ_WINDOW_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

#ifndef FUZZ_NAME
#error "define FUZZ_NAME (the target's name, a string) before including fuzz_window.h"
#endif
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, FUZZ_NAME ": ");                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, FUZZ_NAME ": check failed: %s\n", #cond);                              \
            FAIL(__VA_ARGS__);                                                                     \
        }                                                                                          \
    } while (0)

#define WINDOW_COPY 4096

struct window {
    char *all;            /* the whole input, poisoned outside [front, back) */
    size_t total;
    size_t front, back;   /* what is unpoisoned in all */
    char *copy;           /* the last small window's copy */
};

static void window_init(struct window *w, const char *in, size_t total)
{
    w->all = malloc(total ? total : 1);
    if (!w->all)
        abort();
    memcpy(w->all, in, total);
    ASAN_POISON_MEMORY_REGION(w->all, total);
    w->total = total;
    w->front = w->back = 0;
    w->copy = NULL;
}

/* The bytes [front, back) of the input, to give to the parser. front and
 * back never go down. */
static const char *window_get(struct window *w, size_t front, size_t back)
{
    if (back > w->back)
        ASAN_UNPOISON_MEMORY_REGION(w->all + w->back, back - w->back);
    w->back = back;
    if (front > w->front)
        ASAN_POISON_MEMORY_REGION(w->all + w->front, front - w->front);
    w->front = front;
    free(w->copy);
    w->copy = NULL;
    if (back - front > WINDOW_COPY)
        return w->all + front;
    w->copy = malloc(back - front ? back - front : 1);
    if (!w->copy)
        abort();
    memcpy(w->copy, w->all + front, back - front);
    return w->copy;
}

static void window_free(struct window *w)
{
    ASAN_UNPOISON_MEMORY_REGION(w->all, w->total);
    free(w->all);
    free(w->copy);
}

/*
 * The connection's bytes of a parser target: rest[0, restlen) with, if pad
 * & 0x80, (pad & 0x7f) KiB of padbyte inserted at where / 256 of it (long
 * heads and arguments from short inputs). A fresh buffer of *total bytes.
 */
static char *fuzz_expand(const uint8_t *rest, size_t restlen, uint8_t pad, uint8_t padbyte,
                         uint8_t where, size_t *total)
{
    size_t padlen = pad & 0x80 ? (size_t)(pad & 0x7f) * 1024 : 0;
    size_t at = restlen * where / 256;
    *total = restlen + padlen;
    char *in = malloc(*total ? *total : 1);
    if (!in)
        abort();
    memcpy(in, rest, at);
    memset(in + at, padbyte, padlen);
    memcpy(in + at + padlen, rest + at, restlen - at);
    return in;
}

/* At most about 512 deliveries of total bytes in chunks[0, n): each call
 * is checked in O(buffer) time, and a long input in small chunks would
 * cost too much time. */
static void fuzz_min_chunks(size_t *chunks, size_t n, size_t total)
{
    for (size_t k = 0; k < n; k++)
        if (chunks[k] < total / 512)
            chunks[k] = total / 512;
}

#endif
