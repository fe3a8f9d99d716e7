/*
 * A program that links libasyncio.a statically and has functions and a
 * variable of its own named like the library's internal ones (issue 15:
 * they were global in libasyncio.a; src/names.h now gives them the
 * asyncio__ prefix). So this has to link, and each side must keep using
 * its own:
 *  - with the old archive the link fails ("multiple definition of
 *    `stack_alloc'"), or, when the linker found no need for the archive
 *    member that defines a name, the library silently called the program's
 *    function instead of its own: these functions report that and exit 1;
 *  - then asyncio_run() runs a task that sleeps 0.01 s.
 * Built by the test symbols_static_clash (run_clash.sh), not by `all`, so
 * that a link failure fails that test rather than the whole build.
 */
#include <asyncio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names the library used internally (src/stack.c, task.c, io.c, clock.c,
 * coro.c, future.c, loop.c); here with other types, on purpose. */
const char *stack_alloc(void);
const char *task_park(void);
const char *io_wait(void);
const char *clock_now_ns(void);
const char *coro_create(void);
const char *future_complete(void);
int loop_tls = 4242;

static void called_by_library(const char *name)
{
    fprintf(stderr, "clash: libasyncio called the program's %s(), not its own\n",
            name);
    exit(1);
}

static int in_main_program;

#define CLASH_FN(name)                   \
    const char *name(void)               \
    {                                    \
        if (!in_main_program)            \
            called_by_library(#name);    \
        return #name;                    \
    }
CLASH_FN(stack_alloc)
CLASH_FN(task_park)
CLASH_FN(io_wait)
CLASH_FN(clock_now_ns)
CLASH_FN(coro_create)
CLASH_FN(future_complete)

static int answer = 42;

static int sleeper(void *arg, void **result)
{
    double start = asyncio_loop_time();
    int rc = asyncio_sleep(0.01);
    if (rc != 0)
        return rc;
    if (asyncio_loop_time() - start < 0.009) {
        fprintf(stderr, "clash: slept only %.6f s\n", asyncio_loop_time() - start);
        return -EPROTO;
    }
    *result = arg;
    return 0;
}

int main(void)
{
    void *result = NULL;
    int rc = asyncio_run(sleeper, &answer, &result);
    if (rc != 0 || result != &answer) {
        fprintf(stderr, "clash: asyncio_run returned %d (%s), result %p\n", rc,
                rc < 0 ? strerror(-rc) : "ok", result);
        return 1;
    }
    /* The program's own names are still its own. */
    in_main_program = 1;
    const char *got[] = {stack_alloc(), task_park(), io_wait(), clock_now_ns(),
                         coro_create(), future_complete()};
    const char *want[] = {"stack_alloc", "task_park", "io_wait", "clock_now_ns",
                          "coro_create", "future_complete"};
    for (size_t i = 0; i < sizeof got / sizeof got[0]; i++) {
        if (strcmp(got[i], want[i]) != 0) {
            fprintf(stderr, "clash: %s() returned \"%s\"\n", want[i], got[i]);
            return 1;
        }
    }
    if (loop_tls != 4242) {
        fprintf(stderr, "clash: the program's loop_tls is %d, not 4242\n", loop_tls);
        return 1;
    }
    printf("clash: ok: linked with libasyncio.a beside its own stack_alloc(), "
           "task_park(), io_wait(), clock_now_ns(), coro_create(), "
           "future_complete() and loop_tls\n");
    return 0;
}
