/* The loop's clock (clock.h): CLOCK_MONOTONIC in nanoseconds, and
 * seconds turned into nanoseconds, saturating at "never". */
#include "clock.h"

#include <time.h>

uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_seconds_to_ns(double seconds)
{
    double ns = seconds * 1e9;
    if (ns <= 0) /* a delay in the past is due now (and -INFINITY too) */
        return 0;
    if (!(ns < 18446744073709549568.0)) /* largest double below 2^64 */
        return UINT64_MAX;
    return (uint64_t)ns;
}
