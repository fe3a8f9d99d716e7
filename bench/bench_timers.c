/* bench_timers: 1,000,000 timers with random deadlines within 100 ms,
 * scheduled with asyncio_call_later and all fired; plus the cost of
 * cancelling them (O(log n) each).
 *   timers               how many
 *   schedule_and_fire_s  from the first call_later to the last firing
 *   cancel_ns            per asyncio_handle_cancel of a pending timer */
#include <asyncio.h>

#include "bench.h"

#define N 1000000
#define ROUNDS 3

static long fired;
static void on_timer(void *arg)
{
    (void)arg;
    fired++;
}

struct run {
    double fire_s;
    double cancel_ns;
};

static int timers_main(void *arg, void **result)
{
    (void)result;
    struct run *run = arg;
    static asyncio_handle_t h[N];
    unsigned seed = 12345;
    fired = 0;
    double t0 = bench_now();
    for (long i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        if (asyncio_call_later((seed >> 8) % 100000 / 1e6, on_timer, NULL, NULL) < 0)
            return -1;
    }
    while (fired < N)
        asyncio_sleep(0.001);
    run->fire_s = bench_now() - t0;

    for (long i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        asyncio_call_later(10 + (seed >> 8) % 100000 / 1e6, on_timer, NULL, &h[i]);
    }
    t0 = bench_now();
    for (long i = 0; i < N; i++)
        asyncio_handle_cancel(&h[(i * 7919) % N]);
    run->cancel_ns = (bench_now() - t0) * 1e9 / N;
    return 0;
}

int main(void)
{
    double fire[ROUNDS], cancel[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        struct run run;
        if (asyncio_run(timers_main, &run, NULL) < 0)
            return 1;
        fire[r] = run.fire_s;
        cancel[r] = run.cancel_ns;
    }
    printf("timers %d timers\n", N);
    printf("schedule_and_fire_s %.3f s\n", bench_median(fire, ROUNDS));
    printf("cancel_ns %.1f ns\n", bench_median(cancel, ROUNDS));
    return 0;
}
