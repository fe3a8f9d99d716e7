/* Switch costs, measured in one run so that the ratios hold:
 *   switch_ns       a bare context switch of the coroutine engine
 *   yield_ns        two tasks ping-ponging with asyncio_sleep(0), per switch,
 *                   loop included
 *   swapcontext_ns  glibc's swapcontext, per switch
 * Each is the median of several alternating rounds. */
#include <asyncio.h>
#include <ucontext.h>

#include "bench.h"
#include "coro.h"

#define ROUNDS 7

static struct coro main_ctx, co;
static void bounce(void *arg)
{
    (void)arg;
    for (;;)
        coro_switch(&co, &main_ctx);
}

static double bare_switch(long n)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        coro_switch(&main_ctx, &co);
    return (bench_now() - t0) * 1e9 / (2.0 * (double)n);
}

static ucontext_t uc_main, uc_co;
static void uc_bounce(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static double swapcontext_switch(long n)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_co);
    return (bench_now() - t0) * 1e9 / (2.0 * (double)n);
}

static int yielder(void *arg, void **result)
{
    (void)result;
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        asyncio_sleep(0);
    return 0;
}

struct yield_run {
    long n;
    double ns;
};

static int yield_main(void *arg, void **result)
{
    (void)result;
    struct yield_run *run = arg;
    asyncio_task_t *t[2];
    asyncio_create_task(&t[0], yielder, &run->n, NULL);
    asyncio_create_task(&t[1], yielder, &run->n, NULL);
    double t0 = bench_now();
    int rc = asyncio_gather(2, t, NULL, NULL, 0);
    run->ns = (bench_now() - t0) * 1e9 / (2.0 * (double)run->n);
    asyncio_task_release(t[0]);
    asyncio_task_release(t[1]);
    return rc;
}

int main(void)
{
    struct stack_arena arena;
    stack_arena_init(&arena, 64 * 1024, ASYNCIO_STACK_GUARD_DEFAULT);
    struct coro_template tmpl;
    coro_template_init(&tmpl);
    coro_init_thread(&main_ctx);
    if (coro_create(&co, &main_ctx, &arena, &tmpl, 64 * 1024, bounce, NULL) < 0)
        return 1;
    static char uc_stack[64 * 1024];
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = uc_stack;
    uc_co.uc_stack.ss_size = sizeof uc_stack;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_bounce, 0);

    double sw[ROUNDS], sc[ROUNDS], y[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        sw[r] = bare_switch(5000000);
        sc[r] = swapcontext_switch(300000);
        struct yield_run run = {2000000, 0};
        if (asyncio_run(yield_main, &run, NULL) < 0)
            return 1;
        y[r] = run.ns;
    }
    printf("switch_ns %.2f ns\n", bench_median(sw, ROUNDS));
    printf("yield_ns %.2f ns\n", bench_median(y, ROUNDS));
    printf("swapcontext_ns %.2f ns\n", bench_median(sc, ROUNDS));
    coro_destroy(&co, &arena);
    stack_arena_destroy(&arena);
    return 0;
}
