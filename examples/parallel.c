/*
 * parallel: runs the shell commands read from stdin, one per line, N at a
 * time (as `xargs -P N -I{} sh -c {}`, or GNU parallel), and prints each
 * command's output (its stdout and stderr merged, in the order it wrote
 * them) in one block when it ends, so that blocks never interleave; then a
 * summary of the exit codes.
 *
 *     parallel [-j N]           N at a time (1 to 1024; default: the number
 *                               of CPUs); blank lines are skipped
 *     printf '%s\n' 'make -C a' 'make -C b' 'sleep 1; exit 3' | parallel -j 2
 *
 *     === [2] exit 0: make -C b              a block: [number of the
 *     ...its output...                          command] status: command
 *     === [1] exit 0: make -C a
 *     ...
 *     === [3] exit 3: sleep 1; exit 3
 *     parallel: 3 commands, 2 succeeded, 1 failed
 *       [3] exit 3: sleep 1; exit 3
 *
 * The status is "exit CODE", or "signal NUMBER" for a command a signal
 * ended. Exit status: 0 if every command exited with 0, else 1. On SIGINT
 * (Ctrl-C), SIGTERM or SIGHUP it kills the commands that run, starts no
 * more, prints the summary of those that finished and lists the killed
 * ones, and exits with 128 + the signal's number (130 for SIGINT). SIGPIPE
 * (its stdout closed) does the same (141).
 *
 * The Python it mirrors:
 *
 *     async def worker(queue):
 *         while True:
 *             try:
 *                 n, cmd = await queue.get()
 *             except asyncio.QueueShutDown:
 *                 return
 *             proc = await asyncio.create_subprocess_shell(
 *                 cmd, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT,
 *                 process_group=0)
 *             out, _ = await proc.communicate()
 *             print(f"=== [{n}] exit {proc.returncode}: {cmd}")
 *             sys.stdout.buffer.write(out)   # in one piece, at the end
 *
 *     async def main(jobs):
 *         loop = asyncio.get_running_loop()
 *         loop.add_signal_handler(signal.SIGINT, interrupt)  # kill, stop
 *         stdin = asyncio.StreamReader()
 *         await loop.connect_read_pipe(
 *             lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
 *         queue = asyncio.Queue(jobs)
 *         workers = [asyncio.create_task(worker(queue)) for _ in range(jobs)]
 *         n = 0
 *         async for line in stdin:
 *             n += 1
 *             await queue.put((n, line.decode().strip()))
 *         queue.shutdown()         # the workers end once it is empty
 *         await asyncio.gather(*workers)
 *
 * It shows a fixed set of worker tasks fed by a bounded queue (the reader
 * waits while N commands are queued, so a long input is not all read into
 * memory at once), communicate() on many children at once, and a clean
 * stop: every command runs in a process group of its own
 * (new_process_group), so that Ctrl-C at a terminal reaches this program
 * only, and the program kills the whole group, the shell and whatever it
 * started; cancelled, each worker then waits for its child, so that none is
 * left behind.
 *
 * Standard input is read without blocking the loop, as a stream; a stream
 * is made for a pipe or a socket (asyncio_stream_open()). A regular file
 * cannot be polled, and a terminal's open file is the shell's too (the
 * stream's O_NONBLOCK would stay on it when this program ends): any stdin
 * other than a pipe or a socket is copied into a pipe by a `cat` child
 * (which Ctrl-C at a terminal stops too). For a pipe, fd 0's flags are put
 * back as they were at the end. The commands' stdin is /dev/null: they
 * cannot eat the list of commands.
 */
#define _POSIX_C_SOURCE 200809L
#include <asyncio.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_JOBS 1024
#define LINE_LIMIT 65536 /* the longest command line, newline included */

struct job {
    unsigned n;  /* its number: 1 for the first command read */
    char cmd[];
};

/* What became of a command that did not succeed. */
enum outcome { FAILED, NOT_STARTED, KILLED };

struct result {
    unsigned n;
    enum outcome outcome;
    int code;  /* FAILED: the return code; NOT_STARTED: the error */
    char *cmd;
};

struct app;

struct worker {
    struct app *app;
    asyncio_task_t *task;
    asyncio_process_t *proc;  /* the child it waits for, or NULL */
};

struct app {
    unsigned jobs;
    asyncio_queue_t queue;       /* struct job *, at most jobs of them */
    asyncio_stream_t *in;        /* the commands */
    asyncio_process_t *cat;      /* copies stdin into in, if stdin is no pipe */
    int stdin_flags;             /* fd 0's status flags to put back, or -1 */
    asyncio_task_t *reader;
    struct worker *workers;
    unsigned read;               /* commands read */
    unsigned done;               /* commands started, or that failed to */
    unsigned succeeded;
    unsigned not_run;            /* read, but not run: interrupted first */
    bool at_eof;                 /* the reader saw the end of stdin */
    bool input_error;
    bool finished;               /* signals no longer matter */
    int signum;                  /* the signal that interrupted it, or 0 */
    struct result *bad;          /* the commands that did not succeed */
    size_t nbad, capbad;
};

/* ---- results ---------------------------------------------------------------- */

static void note(struct app *a, const struct job *job, enum outcome outcome, int code)
{
    if (a->nbad == a->capbad) {
        size_t cap = a->capbad ? a->capbad * 2 : 16;
        struct result *b = realloc(a->bad, cap * sizeof *b);
        if (!b) {
            fprintf(stderr, "parallel: out of memory: [%u] not listed in the summary\n", job->n);
            return;
        }
        a->bad = b;
        a->capbad = cap;
    }
    a->bad[a->nbad++] = (struct result){job->n, outcome, code, strdup(job->cmd)}; /* NULL: "?" */
}

/* "exit 3", "signal 9" for a return code. */
static const char *status_text(int code, char *buf, size_t cap)
{
    if (code >= 0)
        snprintf(buf, cap, "exit %d", code);
    else
        snprintf(buf, cap, "signal %d", -code);
    return buf;
}

/* One command's block, written in one piece: nothing else runs meanwhile. */
static void print_block(const struct job *job, const char *status, const char *out, size_t len)
{
    printf("=== [%u] %s: %s\n", job->n, status, job->cmd);
    if (len) {
        fwrite(out, 1, len, stdout);
        if (out[len - 1] != '\n')
            putchar('\n');
    }
    fflush(stdout);
}

static int by_number(const void *x, const void *y)
{
    const struct result *a = x, *b = y;
    return (a->n > b->n) - (a->n < b->n);
}

static const char *signame(int signum)
{
    switch (signum) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE";
    default: return "a signal";
    }
}

static void summary(struct app *a)
{
    if (a->nbad) /* qsort(NULL, 0, ...) is undefined */
        qsort(a->bad, a->nbad, sizeof *a->bad, by_number);
    unsigned killed = 0;
    for (size_t i = 0; i < a->nbad; i++)
        killed += a->bad[i].outcome == KILLED;
    unsigned ended = a->done - killed;
    printf("parallel: %u command%s, %u succeeded, %u failed\n", ended, ended == 1 ? "" : "s",
           a->succeeded, ended - a->succeeded);
    char buf[64];
    for (size_t i = 0; i < a->nbad; i++) {
        const struct result *r = &a->bad[i];
        const char *cmd = r->cmd ? r->cmd : "?";
        if (r->outcome == FAILED)
            printf("  [%u] %s: %s\n", r->n, status_text(r->code, buf, sizeof buf), cmd);
        else if (r->outcome == NOT_STARTED)
            printf("  [%u] could not start (%s): %s\n", r->n, strerror(-r->code), cmd);
    }
    if (a->signum) {
        printf("parallel: interrupted by %s: %u killed, %u not started%s\n", signame(a->signum),
               killed, a->not_run, a->at_eof ? "" : ", the rest of stdin not read");
        for (size_t i = 0; i < a->nbad; i++)
            if (a->bad[i].outcome == KILLED)
                printf("  [%u] killed: %s\n", a->bad[i].n, a->bad[i].cmd ? a->bad[i].cmd : "?");
    }
    fflush(stdout);
}

/* ---- running commands ----------------------------------------------------- */

/* Kill the command's process group: its shell and what that started. The
 * group's number is its leader's pid, which is ours until reaped; after
 * that, the kernel gives the number to no new process while the group has
 * members, so this reaches our leftovers or nobody. */
static void kill_group(asyncio_process_t *proc)
{
    kill(-asyncio_process_pid(proc), SIGKILL);
}

static void run_job(struct worker *w, const struct job *job)
{
    struct app *a = w->app;
    asyncio_subprocess_options_t opts = {0};
    opts.stdin_mode = ASYNCIO_STDIO_DEVNULL;
    opts.stdout_mode = ASYNCIO_STDIO_PIPE;
    opts.stderr_mode = ASYNCIO_STDIO_STDOUT; /* stderr=STDOUT: one pipe, in order */
    opts.new_process_group = 1;
    asyncio_process_t *proc;
    int rc = asyncio_create_subprocess_shell(&proc, job->cmd, &opts);
    a->done++;
    if (rc < 0) {
        char status[96];
        snprintf(status, sizeof status, "could not start (%s)", strerror(-rc));
        print_block(job, status, NULL, 0);
        note(a, job, NOT_STARTED, rc);
        return;
    }
    w->proc = proc;
    char *out = NULL;
    size_t len = 0;
    int code = 0;
    rc = asyncio_process_communicate(proc, NULL, 0, &out, &len, NULL, NULL, &code);
    if (rc < 0) {
        /* Cancelled (interrupted), or out of memory: the child runs on. */
        kill_group(proc);
        if (asyncio_process_wait(proc, &code) < 0)
            code = -SIGKILL; /* asyncio_process_release() reaps it */
    }
    w->proc = NULL;
    asyncio_process_release(proc);
    if (a->signum && (rc < 0 || code == -SIGKILL)) {
        note(a, job, KILLED, code); /* by us */
    } else {
        char status[96];
        status_text(code, status, sizeof status);
        if (rc < 0) /* no memory for its output: the block says so */
            snprintf(status + strlen(status), sizeof status - strlen(status),
                     ", output lost (%s)", strerror(-rc));
        print_block(job, status, out, len);
        if (code == 0 && rc == 0)
            a->succeeded++;
        else
            note(a, job, FAILED, code);
    }
    free(out);
}

static int worker(void *arg, void **result)
{
    struct worker *w = arg;
    (void)result;
    for (;;) {
        void *job;
        /* -ESHUTDOWN once the input has ended and the queue is empty (or
         * at once when interrupted); -ECANCELED when interrupted. */
        if (w->app->signum || asyncio_queue_get(&w->app->queue, &job) < 0)
            return 0;
        run_job(w, job);
        free(job);
    }
}

/* ---- reading the commands -------------------------------------------------- */

static int reader(void *arg, void **result)
{
    struct app *a = arg;
    (void)result;
    char *line = malloc(LINE_LIMIT);
    ssize_t len = line ? 0 : -ENOMEM;
    while (len >= 0) {
        len = asyncio_stream_readline(a->in, line, LINE_LIMIT);
        if (len <= 0)
            break; /* 0: the end of stdin */
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t skip = strspn(line, " \t");
        if ((size_t)len <= skip)
            continue; /* blank */
        struct job *job = malloc(sizeof *job + (size_t)len + 1);
        if (!job) {
            len = -ENOMEM;
            break;
        }
        job->n = ++a->read;
        memcpy(job->cmd, line, (size_t)len);
        job->cmd[len] = '\0';
        int rc = asyncio_queue_put(&a->queue, job); /* waits while N are queued */
        if (rc < 0) { /* interrupted */
            free(job);
            a->not_run++;
            len = rc;
        }
    }
    free(line);
    a->at_eof = len == 0;
    if (len < 0 && !a->signum) {
        if (len == -ENOBUFS)
            fprintf(stderr, "parallel: stdin: command %u is longer than %d bytes: stopped reading\n",
                    a->read + 1, LINE_LIMIT - 1);
        else
            fprintf(stderr, "parallel: stdin: %s\n", strerror((int)-len));
        a->input_error = true;
    }
    asyncio_queue_shutdown(&a->queue, 0); /* the workers end once it is empty */
    return 0;
}

/* A stream of the commands: see the top of the file. */
static int open_input(struct app *a)
{
    struct stat st;
    if (fstat(0, &st) < 0)
        return -errno;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
        a->stdin_flags = fcntl(0, F_GETFL);
        int fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return -errno;
        int rc = asyncio_stream_open(&a->in, fd, LINE_LIMIT);
        if (rc < 0)
            close(fd);
        return rc;
    }
    const char *const argv[] = {"cat", NULL};
    asyncio_subprocess_options_t opts = {0};
    opts.stdout_mode = ASYNCIO_STDIO_PIPE;
    opts.limit = LINE_LIMIT;
    int rc = asyncio_create_subprocess_exec(&a->cat, argv, &opts);
    if (rc == 0)
        a->in = asyncio_process_stdout(a->cat);
    return rc;
}

static void close_input(struct app *a)
{
    if (a->cat) {
        if (!a->at_eof) /* interrupted, or an input error: it may be blocked */
            asyncio_process_kill(a->cat);
        int code;
        if (asyncio_process_wait(a->cat, &code) == 0 && a->at_eof && code != 0) {
            fprintf(stderr, "parallel: cat, reading stdin, exited with %d\n", code);
            a->input_error = true;
        }
        asyncio_process_release(a->cat); /* closes in */
    } else if (a->in) {
        asyncio_stream_close(a->in);
    }
    a->in = NULL;
}

/* ---- signals ---------------------------------------------------------------- */

/* Interrupted: no new command; the queued ones are dropped; every running
 * command's process group is killed, and the workers and the reader are
 * cancelled: a worker in communicate() then waits for its child. */
static void on_signal(int signum, void *arg)
{
    struct app *a = arg;
    if (a->signum || a->finished)
        return;
    a->signum = signum;
    for (unsigned i = 0; i < a->jobs; i++)
        if (a->workers[i].proc)
            kill_group(a->workers[i].proc);
    if (a->cat)
        asyncio_process_kill(a->cat);
    void *job;
    while (asyncio_queue_get_nowait(&a->queue, &job) == 0) {
        free(job);
        a->not_run++;
    }
    /* Not immediate: a job handed to a worker whose get is cancelled before
     * it resumed goes back into the queue, and is freed at the end. */
    asyncio_queue_shutdown(&a->queue, 0);
    for (unsigned i = 0; i < a->jobs; i++)
        asyncio_task_cancel(a->workers[i].task);
    asyncio_task_cancel(a->reader);
}

static const int SIGNALS[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
#define NSIGNALS (sizeof SIGNALS / sizeof SIGNALS[0])

/* ---- main ------------------------------------------------------------------- */

static int async_main(void *arg, void **result)
{
    struct app *a = arg;
    (void)result;
    int rc = 0;
    for (size_t i = 0; i < NSIGNALS && rc == 0; i++)
        rc = asyncio_add_signal_handler(SIGNALS[i], on_signal, a);
    if (rc < 0) {
        fprintf(stderr, "parallel: signal handler: %s\n", strerror(-rc));
        return rc;
    }
    a->workers = calloc(a->jobs, sizeof *a->workers);
    asyncio_task_t **tasks = calloc(a->jobs + 1, sizeof *tasks);
    if (!a->workers || !tasks || (rc = asyncio_queue_init(&a->queue, a->jobs)) < 0) {
        free(tasks);
        return rc < 0 ? rc : -ENOMEM;
    }
    if ((rc = open_input(a)) < 0) {
        fprintf(stderr, "parallel: stdin: %s\n", strerror(-rc));
        asyncio_queue_destroy(&a->queue);
        free(tasks);
        return rc;
    }
    size_t n = 0;
    rc = asyncio_create_task(&a->reader, reader, a, "reader");
    if (rc == 0)
        tasks[n++] = a->reader;
    for (unsigned i = 0; i < a->jobs && rc == 0; i++) {
        a->workers[i].app = a;
        if ((rc = asyncio_create_task(&a->workers[i].task, worker, &a->workers[i], NULL)) == 0)
            tasks[n++] = a->workers[i].task;
    }
    if (rc < 0) { /* no memory for a task: stop the others */
        fprintf(stderr, "parallel: cannot start a task: %s\n", strerror(-rc));
        asyncio_queue_shutdown(&a->queue, 1);
        for (size_t i = 0; i < n; i++)
            asyncio_task_cancel(tasks[i]);
        a->input_error = true;
    }
    /* Neither fails (gather only on no memory, then the tasks run on
     * detached and the loop's close cancels them). */
    asyncio_gather(n, tasks, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS);
    close_input(a);
    a->finished = true; /* a signal from now on is too late to stop anything */
    for (size_t i = 0; i < n; i++)
        asyncio_task_release(tasks[i]);
    free(tasks);
    void *job;
    while (asyncio_queue_get_nowait(&a->queue, &job) == 0) {
        free(job);
        a->not_run++;
    }
    asyncio_queue_destroy(&a->queue);
    summary(a);
    return 0;
}

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: parallel [-j N]   (N: 1-%d, commands at a time; default: the CPUs)\n",
            MAX_JOBS);
    return status;
}

static int parse_jobs(const char *s, unsigned *jobs)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > MAX_JOBS)
        return -1;
    *jobs = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct app a = {0};
    a.jobs = cpus < 1 ? 1 : cpus > MAX_JOBS ? MAX_JOBS : (unsigned)cpus;
    a.stdin_flags = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout, 0);
        if (strcmp(argv[i], "-j") == 0 && i + 1 < argc) {
            if (parse_jobs(argv[++i], &a.jobs) < 0)
                return usage(stderr, 2);
        } else if (strncmp(argv[i], "-j", 2) == 0 && argv[i][2]) {
            if (parse_jobs(argv[i] + 2, &a.jobs) < 0)
                return usage(stderr, 2);
        } else {
            return usage(stderr, 2);
        }
    }
    int rc = asyncio_run(async_main, &a, NULL);
    if (a.stdin_flags >= 0)
        fcntl(0, F_SETFL, a.stdin_flags); /* O_NONBLOCK off again, for whoever shares it */
    for (size_t i = 0; i < a.nbad; i++)
        free(a.bad[i].cmd);
    free(a.bad);
    free(a.workers);
    if (rc < 0) {
        fprintf(stderr, "parallel: %s\n", strerror(-rc));
        return 1;
    }
    if (a.signum)
        return 128 + a.signum;
    return a.nbad || a.input_error ? 1 : 0;
}
