/*
 * Task code for test_stack built with -fstack-clash-protection (see
 * tests/CMakeLists.txt): a frame far larger than the guard region is
 * touched page by page from the top, so its first access below the stack
 * lands in the guard and the overflow is reported.
 */
#include <stddef.h>

int tu_probed_big_frame(int depth);

int tu_probed_big_frame(int depth)
{
    /* 1 MiB: larger than any guard here. Volatile stores, which no
     * compiler may drop or shrink, lowest address first. */
    volatile char frame[1024 * 1024];
    for (size_t i = 0; i < sizeof frame; i += 256)
        frame[i] = (char)depth;
    return frame[depth % 4096];
}
