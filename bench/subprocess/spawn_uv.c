/* bench/subprocess/spawn_uv.c: the libuv peer of bench/bench_subprocess.c's
 * spawn workload: uv_spawn() CONC children at a time, a new one started
 * from the exit callback of the last (which also closes its handle). The
 * children's stdin, stdout and stderr are the spawner's (UV_INHERIT_FD), as
 * for every implementation (libuv would otherwise open /dev/null for them).
 *
 *   spawn_uv spawn N CONC
 *
 * Output lines as sp_common.h says.
 *
 *   cc -O2 -o spawn_uv spawn_uv.c -luv
 */
#define _GNU_SOURCE /* uv.h needs pthread_rwlock_t */
#include "sp_common.h"

#include <uv.h>

static uv_loop_t *loop;
static long started, target, failures;
static char *true_argv[] = {SP_PROGRAM, NULL};

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void start_one(void);

static void on_exit_(uv_process_t *p, int64_t status, int signal)
{
    if (status != 0 || signal != 0)
        failures++;
    uv_close((uv_handle_t *)p, on_close);
    if (started < target)
        start_one();
}

static void start_one(void)
{
    static uv_stdio_container_t stdio[3] = {
        {UV_INHERIT_FD, {.fd = 0}}, {UV_INHERIT_FD, {.fd = 1}}, {UV_INHERIT_FD, {.fd = 2}}};
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = SP_PROGRAM;
    o.args = true_argv;
    o.exit_cb = on_exit_;
    o.stdio_count = 3;
    o.stdio = stdio;
    uv_process_t *p = malloc(sizeof *p);
    if (!p) {
        fprintf(stderr, "spawn_uv: out of memory\n");
        exit(1);
    }
    started++;
    int rc = uv_spawn(loop, p, &o);
    if (rc < 0) { /* the handle must be closed all the same */
        failures++;
        uv_close((uv_handle_t *)p, on_close);
        if (started < target)
            start_one();
    }
}

/* n spawns, conc at a time: how many failed. */
static long run(long n, int conc)
{
    started = 0;
    target = n;
    failures = 0;
    for (int i = 0; i < conc && started < target; i++)
        start_one();
    uv_run(loop, UV_RUN_DEFAULT);
    return failures;
}

int main(int argc, char **argv)
{
    struct sp_args a;
    sp_parse_spawn(argc, argv, &a, "");
    loop = uv_default_loop();
    run(SP_WARMUP(a.n), a.conc);
    struct sp_mark m0 = sp_mark();
    long f = run(a.n, a.conc);
    sp_report_spawn(&a, m0, f);
    uv_loop_close(loop);
    return 0;
}
