/*
 * Task code for test_stack built with -fstack-clash-protection (see
 * tests/CMakeLists.txt): a frame far larger than the guard region is
 * touched page by page from the top, so its first access below the stack
 * lands in the guard and the overflow is reported.
 */
#include <string.h>

int tu_probed_big_frame(int depth);

int tu_probed_big_frame(int depth)
{
    volatile char frame[1024 * 1024]; /* 1 MiB: larger than any guard here */
    memset((char *)frame, depth, sizeof frame);
    return frame[depth % 4096];
}
