/*
 * subprocess: child processes, after the examples of asyncio's
 * documentation (Subprocesses): shell commands run concurrently, each with
 * its stdout and stderr read through pipes; a program's one line of output
 * read from its stdout stream; and a child that takes too long, stopped by
 * a timeout scope, killed and waited for.
 *
 *     subprocess                 runs 'ls /zzz' and 'date' at once, then the
 *                                rest below; ends after about 0.5 s
 *     subprocess CMD...          the shell commands CMD... at once instead
 *
 * The Python it mirrors:
 *
 *     async def run(cmd):
 *         proc = await asyncio.create_subprocess_shell(
 *             cmd,
 *             stdout=asyncio.subprocess.PIPE,
 *             stderr=asyncio.subprocess.PIPE)
 *         stdout, stderr = await proc.communicate()
 *         print(f'[{cmd!r} exited with {proc.returncode}]')
 *         if stdout:
 *             print(f'[stdout]\n{stdout.decode()}')
 *         if stderr:
 *             print(f'[stderr]\n{stderr.decode()}')
 *
 *     async def get_date():
 *         proc = await asyncio.create_subprocess_exec(
 *             'date', '+%Y-%m-%d', stdout=asyncio.subprocess.PIPE)
 *         data = await proc.stdout.readline()     # one line of output
 *         await proc.wait()
 *         return data.decode('ascii').rstrip()
 *
 *     async def main():
 *         await asyncio.gather(run('ls /zzz'), run('date'))
 *         print(f"Current date: {await get_date()}")
 *
 *         proc = await asyncio.create_subprocess_exec('sleep', '10')
 *         try:
 *             async with asyncio.timeout(0.5):
 *                 await proc.wait()
 *         except TimeoutError:
 *             proc.kill()
 *             print(f"'sleep 10' killed: returncode {await proc.wait()}")
 *
 *     asyncio.run(main())
 *
 * Both commands of the gather run at the same time; each one's report is
 * printed whole when it has finished, so the faster one comes first. A
 * return code is the exit status, or minus the number of the signal that
 * ended the child (-9: SIGKILL), as in asyncio. A timeout that ends a wait
 * leaves the child running: the program kills it and waits for it, so
 * that nothing outlives it.
 */
#include <asyncio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT 0.5 /* seconds 'sleep 10' is given */

/* run(cmd): the child's output and return code, printed in one piece. */
static int run(void *arg, void **result)
{
    const char *cmd = arg;
    (void)result;
    asyncio_subprocess_options_t opts = {0};
    opts.stdout_mode = ASYNCIO_STDIO_PIPE;
    opts.stderr_mode = ASYNCIO_STDIO_PIPE;
    asyncio_process_t *proc;
    int rc = asyncio_create_subprocess_shell(&proc, cmd, &opts);
    if (rc < 0) {
        printf("['%s' could not start: %s]\n", cmd, strerror(-rc));
        return rc;
    }
    char *out, *err;
    size_t outlen, errlen;
    int returncode;
    rc = asyncio_process_communicate(proc, NULL, 0, &out, &outlen, &err, &errlen, &returncode);
    asyncio_process_release(proc);
    if (rc < 0) {
        printf("['%s': communicate: %s]\n", cmd, strerror(-rc));
        return rc;
    }
    printf("['%s' exited with %d]\n", cmd, returncode);
    if (outlen)
        printf("[stdout]\n%s\n", out);
    if (errlen)
        printf("[stderr]\n%s\n", err);
    free(out);
    free(err);
    return 0;
}

/* get_date(): one line read from the child's stdout, then its end. */
static int get_date(char *line, size_t cap)
{
    const char *const argv[] = {"date", "+%Y-%m-%d", NULL};
    asyncio_subprocess_options_t opts = {0};
    opts.stdout_mode = ASYNCIO_STDIO_PIPE;
    asyncio_process_t *proc;
    int rc = asyncio_create_subprocess_exec(&proc, argv, &opts);
    if (rc < 0)
        return rc;
    ssize_t n = asyncio_stream_readline(asyncio_process_stdout(proc), line, cap - 1);
    int returncode = 0;
    rc = n < 0 ? (int)n : asyncio_process_wait(proc, &returncode);
    asyncio_process_release(proc); /* kills it if still running (an error) */
    if (rc < 0)
        return rc;
    if (returncode != 0)
        return -EIO;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    line[n] = '\0';
    return 0;
}

/* A child that outlives its time: wait for it within a timeout scope, then
 * kill it and wait for it again (the wait itself is never the victim: a
 * timed-out wait leaves the child running). */
static int timed_out(void)
{
    const char *const argv[] = {"sleep", "10", NULL};
    asyncio_process_t *proc;
    int rc = asyncio_create_subprocess_exec(&proc, argv, NULL);
    if (rc < 0)
        return rc;
    double start = asyncio_loop_time();
    asyncio_timeout_t scope;
    asyncio_timeout_enter(&scope, TIMEOUT);
    int returncode;
    rc = asyncio_process_wait(proc, &returncode);
    if (asyncio_timeout_exit(&scope) == -ETIMEDOUT) {
        printf("'sleep 10' still running after %.1f s: killing it\n", TIMEOUT);
        asyncio_process_kill(proc);
        rc = asyncio_process_wait(proc, &returncode);
    }
    if (rc == 0)
        printf("'sleep 10' killed: returncode %d (after %.1f s)\n", returncode,
               asyncio_loop_time() - start);
    asyncio_process_release(proc);
    return rc;
}

struct commands {
    int n;
    char **cmds;
};

static int async_main(void *arg, void **result)
{
    struct commands *c = arg;
    (void)result;

    /* await asyncio.gather(run('ls /zzz'), run('date')) */
    asyncio_task_t **tasks = calloc((size_t)c->n, sizeof *tasks);
    if (!tasks)
        return -ENOMEM;
    int rc = 0, started = 0;
    for (; started < c->n && rc == 0; started++)
        rc = asyncio_create_task(&tasks[started], run, c->cmds[started], c->cmds[started]);
    if (rc < 0)
        started--; /* the last one failed: there is no task */
    if (rc == 0)
        rc = asyncio_gather((size_t)started, tasks, NULL, NULL, 0);
    for (int i = 0; i < started; i++)
        asyncio_task_release(tasks[i]);
    free(tasks);
    if (rc < 0)
        return rc;

    char date[64];
    if ((rc = get_date(date, sizeof date)) < 0)
        return rc;
    printf("Current date: %s\n", date);

    return timed_out();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static char ls[] = "ls /zzz", date[] = "date";
    char *defaults[] = {ls, date};
    struct commands c = {2, defaults};
    if (argc > 1) {
        c.n = argc - 1;
        c.cmds = argv + 1;
    }
    int rc = asyncio_run(async_main, &c, NULL);
    if (rc < 0) {
        fprintf(stderr, "subprocess: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
