/* bench_subprocess: child processes, beside bench/subprocess/spawn_bare.c
 * (posix_spawn + waitpid: the limit), bench/subprocess/spawn_uv.c (libuv)
 * and bench/py/bench_subprocess.py (asyncio); bench/subprocess.sh runs
 * them all.
 *
 *   bench_subprocess spawn N CONC
 *   bench_subprocess pipe BYTES [CHUNK]
 *
 * spawn: CONC tasks each start /bin/true with
 * asyncio_create_subprocess_exec() (stdin, stdout and stderr inherited),
 * wait for it with asyncio_process_wait() and release it, then start the
 * next, until N have run (after SP_WARMUP(N) not measured). Output lines
 * as bench/subprocess/sp_common.h says.
 *
 * pipe: starts `head -c BYTES /dev/zero` with its stdout a pipe and reads
 * the stream to its end with asyncio_stream_read() into a buffer of CHUNK
 * bytes (default 65536, a stream's default limit), discarding it, then
 * waits for the child. Prints pipe_bytes, pipe_s and pipe_mb_per_s (MB: 10^6 bytes),
 * measured inside, from the spawn to the child's exit; bench/subprocess.sh
 * times the whole process from outside, as it times the shell pipeline it
 * compares this with. Exits 1 unless all BYTES came and head exited 0. */
#include <asyncio.h>

#include "subprocess/sp_common.h"

#define PIPE_CHUNK 65536

static const char *const true_argv[] = {SP_PROGRAM, NULL};

/* ---- spawn ------------------------------------------------------------------ */

static struct sp_args args;
static long started, target, failures;

static int spawner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (started < target) {
        started++;
        asyncio_process_t *p;
        int rc = asyncio_create_subprocess_exec(&p, true_argv, NULL);
        if (rc < 0) {
            if (failures++ == 0)
                fprintf(stderr, "bench_subprocess: spawn: %s\n", strerror(-rc));
            continue;
        }
        int code = -1;
        rc = asyncio_process_wait(p, &code);
        asyncio_process_release(p);
        if (rc < 0 || code != 0)
            failures++;
    }
    return 0;
}

/* n spawns, conc at a time. */
static int run(long n, int conc)
{
    asyncio_task_t *tasks[SP_MAX_CONC] = {0};
    started = 0;
    target = n;
    failures = 0;
    int k = 0, rc = 0;
    for (; k < conc && rc == 0; k++)
        rc = asyncio_create_task(&tasks[k], spawner, NULL, NULL);
    if (rc < 0)
        k--;
    int grc = asyncio_gather((size_t)k, tasks, NULL, NULL, 0);
    for (int i = 0; i < k; i++)
        asyncio_task_release(tasks[i]);
    return rc < 0 ? rc : grc;
}

static int spawn_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = run(SP_WARMUP(args.n), args.conc);
    if (rc < 0)
        return rc;
    struct sp_mark m0 = sp_mark();
    if ((rc = run(args.n, args.conc)) < 0)
        return rc;
    sp_report_spawn(&args, m0, failures);
    return 0;
}

/* ---- pipe ------------------------------------------------------------------- */

static long long pipe_bytes;
static size_t pipe_chunk = PIPE_CHUNK;

static int pipe_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char count[32];
    snprintf(count, sizeof count, "%lld", pipe_bytes);
    const char *const argv[] = {"head", "-c", count, "/dev/zero", NULL};
    asyncio_subprocess_options_t o = {0};
    o.stdout_mode = ASYNCIO_STDIO_PIPE;
    char *buf = malloc(pipe_chunk);
    if (!buf)
        return -ENOMEM;
    uint64_t t0 = sp_now_ns();
    asyncio_process_t *p;
    int rc = asyncio_create_subprocess_exec(&p, argv, &o);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    asyncio_stream_t *s = asyncio_process_stdout(p);
    long long got = 0;
    ssize_t n;
    while ((n = asyncio_stream_read(s, buf, pipe_chunk)) > 0)
        got += n;
    int code = -1;
    rc = n < 0 ? (int)n : asyncio_process_wait(p, &code);
    double secs = (double)(sp_now_ns() - t0) / 1e9;
    asyncio_process_release(p);
    free(buf);
    if (rc < 0)
        return rc;
    if (got != pipe_bytes || code != 0) {
        fprintf(stderr, "bench_subprocess: pipe: %lld bytes of %lld, head exited with %d\n", got,
                pipe_bytes, code);
        return -EIO;
    }
    printf("pipe_bytes %lld bytes\n", got);
    printf("pipe_s %.4f s\n", secs);
    printf("pipe_mb_per_s %.1f MB/s\n", (double)got / 1e6 / secs);
    return 0;
}

#define MORE "\n       bench_subprocess pipe BYTES [CHUNK]"

int main(int argc, char **argv)
{
    asyncio_fn fn = spawn_main;
    if (argc >= 3 && strcmp(argv[1], "pipe") == 0) {
        char *end;
        pipe_bytes = strtoll(argv[2], &end, 10);
        if (*end || pipe_bytes < 0 || argc > 4)
            sp_usage(argv[0], MORE);
        if (argc == 4) {
            long c = strtol(argv[3], &end, 10);
            if (*end || c <= 0 || c > (1L << 30))
                sp_usage(argv[0], MORE);
            pipe_chunk = (size_t)c;
        }
        fn = pipe_main;
    } else {
        sp_parse_spawn(argc, argv, &args, MORE);
    }
    int rc = asyncio_run(fn, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "bench_subprocess: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
