/* The monotonic clock every deadline is measured on. */
#ifndef ASYNCIO_CLOCK_H
#define ASYNCIO_CLOCK_H

#include "names.h"

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t clock_now_ns(void);

/* Convert a duration in seconds to nanoseconds, saturating at UINT64_MAX
 * (which stands for "never"). The caller has rejected NaN and negatives. */
uint64_t clock_seconds_to_ns(double seconds);

/* now + delta, saturating at UINT64_MAX. */
static inline uint64_t clock_deadline(uint64_t now, uint64_t delta)
{
    return delta > UINT64_MAX - now ? UINT64_MAX : now + delta;
}

#endif
