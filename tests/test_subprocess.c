/*
 * Child processes (<asyncio/subprocess.h>, issue 20), against CPython's
 * asyncio.subprocess (Lib/test/test_asyncio/test_subprocess.py):
 *   - exec and shell: exit codes, death by a signal (-9, -15), argv passed
 *     exactly, $PATH lookup, absolute and relative paths, errors of a
 *     missing program, a file that is not executable or not a program, a
 *     missing cwd; cwd, env (NULL: ours), a new session, a new process
 *     group; every bad option of the header; -EPERM without a loop;
 *   - stdio: PIPE for each fd (stdin a socket pair: closing it gives the
 *     child its end of file and the accessor NULL, write_eof ends it and
 *     keeps the stream), DEVNULL, a caller's FD (pipe, file, one of our
 *     0-2), stderr to stdout (merged in order), INHERIT; the pipes made
 *     while fd 0 is closed;
 *   - what the child inherits: an empty signal mask although the loop
 *     blocks the signals it handles, SIGPIPE and SIGXFSZ at their default
 *     (Python's restore_signals), no fd but 0-2 (close_fds);
 *   - no pidfd_open (a seccomp filter; valgrind 3.19 has none, and then
 *     the tests that need a child are skipped): -ENOSYS, nothing left;
 *   - communicate: 8 MiB through cat, stdout and stderr at once, input to
 *     a child with no stdin pipe, a child that reads none of its input,
 *     NUL-terminated buffers, cancelled or timed out (child left running,
 *     no output);
 *   - wait: cancelled or timed out (child left running, a later wait gets
 *     the code), several waiters, returncode before and after, signals
 *     after the reap, a grandchild that holds the stdout pipe;
 *   - release (killed and reaped, no zombie), the loop's close (killed,
 *     reaped, a warning naming the pid), SIGCHLD ignored by the program;
 *   - 1,000 spawn/wait cycles (pipes, 20 at a time), spawns that fail for
 *     want of fds at each step (RLIMIT_NOFILE): no fd and no child left;
 *   - loops in two threads spawning at once (no pipe leaks into the other
 *     thread's child).
 * The tests that watch the poller run on both backends (epoll and poll).
 *
 * Small helper programs are this program itself, run with a first
 * argument of "--helper-..." (see helper_main()): argv, open fds, the
 * targets of fds 0-2, session and group ids, a tee, a spew to both
 * outputs.
 *
 * Every wait is bounded: each test's loop runs its main task in a timeout
 * scope (TU_TEST_TIMEOUT), so a wait that never ends fails its CHECK;
 * children are "sleep 30" at most and are killed by the test. Nothing
 * measures how long something took.
 *
 * A test whose failure would end this program (a SIGPIPE) runs in a
 * child process of its own (tu_run_child()).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#define MiB (1024u * 1024u)

/* This program, for its helper modes (set in main()). */
static char self_exe[PATH_MAX];

/* A scratch directory of this run (made in main()). */
static char tmpdir[64];

/* Whether this system (or valgrind, which may not know the call) has
 * pidfd_open: without it every spawn is -ENOSYS (subprocess.h), and the
 * tests that need a child skip (set in main()). */
static bool have_pidfd;


/* Valgrind (3.19) has no pidfd_open, so children are watched through
 * SIGCHLD there, which test_without_pidfd_children_are_watched_through_
 * sigchld checks; but its posix_spawn() loses the exec's error (the child
 * exits 127 instead), and it runs a child 20-50 times slower: the tests
 * that need either do not run under it. */
static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

#define NEED_REAL_SPAWN()                                                      \
    do {                                                                       \
        if (under_valgrind()) {                                                \
            print_message("under valgrind: skipped\n");                        \
            skip();                                                            \
        }                                                                      \
    } while (0)

static const char *const backends[] = {"epoll", "poll"};
#define NBACKENDS 2

/* tu_err() and the codes subprocesses add. */
static const char *err(long long rc)
{
    switch (rc) {
    case -ESRCH: return "ESRCH";
    case -EACCES: return "EACCES";
    case -ENOEXEC: return "ENOEXEC";
    case -EMFILE: return "EMFILE";
    case -ENFILE: return "ENFILE";
    case -ECHILD: return "ECHILD";
    case -ENOSYS: return "ENOSYS";
    case -ENOTSOCK: return "ENOTSOCK";
    case -ENOBUFS: return "ENOBUFS";
    default: return tu_err(rc);
    }
}

#define CHECK_RC(actual, expected)                                             \
    do {                                                                       \
        long long c_a_ = (long long)(actual);                                  \
        long long c_e_ = (long long)(expected);                                \
        if (c_a_ != c_e_)                                                      \
            tu_fail_at(__FILE__, __LINE__, "%s is %s, expected %s", #actual,   \
                       err(c_a_), err(c_e_));                                  \
    } while (0)

/* Run fn(arg) as the main task of a loop on backend (NULL: the
 * environment's), inside a timeout scope of TU_TEST_TIMEOUT. */
static int run_on(const char *backend, asyncio_fn fn, void *arg)
{
    struct tu_bounded b = {fn, arg, TU_TEST_TIMEOUT};
    asyncio_run_options_t o = {.backend = backend};
    return tu_run_ex(tu_bounded_main, &b, NULL, &o);
}

static int run(asyncio_fn fn, void *arg)
{
    return run_on(NULL, fn, arg);
}

/* run_on() for a test that changed something of the process's (an fd, a
 * limit, a disposition) and must put it back before a failed check ends
 * the test: call tu_check_failures() after. */
static int run_on_unchecked(const char *backend, asyncio_fn fn, void *arg)
{
    tu_reset();
    struct tu_bounded b = {fn, arg, TU_TEST_TIMEOUT};
    asyncio_run_options_t o = {.backend = backend};
    return asyncio_run_ex(tu_bounded_main, &b, NULL, &o);
}

/* ---- the helper programs ------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(111);
        p += w;
        n -= (size_t)w;
    }
}

/* Run as "self --helper-NAME ...": returns the exit status, or -1 when
 * argv names no helper (then this is the test program). */
static int helper_main(int argc, char **argv)
{
    if (argc < 2 || strncmp(argv[1], "--helper-", 9) != 0)
        return -1;
    const char *h = argv[1] + 9;
    if (strcmp(h, "args") == 0) {
        /* Each argument after this one as "LEN:BYTES\n". */
        for (int i = 2; i < argc; i++)
            printf("%zu:%s\n", strlen(argv[i]), argv[i]);
        return 0;
    }
    if (strcmp(h, "fds") == 0) {
        /* The open fds, ascending, but the directory's own. */
        DIR *d = opendir("/proc/self/fd");
        if (!d)
            return 112;
        int fds[1024], n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < 1024) {
            if (e->d_name[0] == '.')
                continue;
            int fd = atoi(e->d_name);
            if (fd != dirfd(d))
                fds[n++] = fd;
        }
        closedir(d);
        qsort(fds, (size_t)n, sizeof fds[0], cmp_int);
        for (int i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", fds[i]);
        printf("\n");
        return 0;
    }
    if (strcmp(h, "links") == 0) {
        /* What fds 0, 1, 2 are, one a line ("closed" if not open); a
         * pipe is "pipe", a socket "socket" (their inodes differ from run
         * to run). */
        for (int fd = 0; fd < 3; fd++) {
            char path[64], target[PATH_MAX];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n < 0) {
                printf("closed\n");
                continue;
            }
            target[n] = '\0';
            if (strncmp(target, "pipe:", 5) == 0)
                strcpy(target, "pipe");
            if (strncmp(target, "socket:", 7) == 0)
                strcpy(target, "socket");
            printf("%s\n", target);
        }
        return 0;
    }
    if (strcmp(h, "ids") == 0) {
        printf("%ld %ld %ld\n", (long)getpid(), (long)getsid(0), (long)getpgrp());
        return 0;
    }
    if (strcmp(h, "tee") == 0) {
        /* stdin to stdout and to stderr, chunk by chunk. */
        char buf[65536];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return 113;
            write_all(1, buf, (size_t)n);
            write_all(2, buf, (size_t)n);
        }
        return 0;
    }
    if (strcmp(h, "spew") == 0 && argc >= 3) {
        /* N bytes of 'o' to stdout and of 'e' to stderr, 64 KiB to each
         * in turn: a parent that reads one to its end before the other
         * never sees either end. */
        size_t total = strtoul(argv[2], NULL, 10);
        static char o[65536], e[65536];
        memset(o, 'o', sizeof o);
        memset(e, 'e', sizeof e);
        for (size_t done = 0; done < total;) {
            size_t n = total - done < sizeof o ? total - done : sizeof o;
            write_all(1, o, n);
            write_all(2, e, n);
            done += n;
        }
        return 0;
    }
    fprintf(stderr, "unknown helper %s\n", argv[1]);
    return 120;
}

/* ---- checks on processes and fds ------------------------------------------ */

/* How many fds this process has open. */
static int count_fds(void)
{
    int n = tu_dir_entries("/proc/self/fd");
    return n < 0 ? -1 : n - 1; /* the directory's own */
}

/* Whether pid is a child of ours: 'R' not exited, 'Z' exited and not
 * reaped, 'G' gone (reaped, or not ours). Reaps nothing (WNOWAIT). */
static char child_state(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    while ((rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT)) < 0 && errno == EINTR)
        ;
    if (rc < 0)
        return errno == ECHILD ? 'G' : '?';
    return si.si_pid == 0 ? 'R' : 'Z';
}

/* True if this process has no child at all (none running, no zombie).
 * Reaps nothing. */
static bool no_children(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    while ((rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT)) < 0 && errno == EINTR)
        ;
    return rc < 0 && errno == ECHILD;
}

/* In a task: let the loop run until pid is no child of ours any more
 * (reaped), at most 5 s of loop time. */
static bool await_reaped(pid_t pid)
{
    double until = asyncio_loop_time() + 5.0;
    while (child_state(pid) != 'G') {
        if (asyncio_loop_time() > until || asyncio_sleep(0.002) != 0)
            return false;
    }
    return true;
}

/* ---- spawning and reading, in a task -------------------------------------- */

static asyncio_process_t *spawn_at(const char *file, int line, const char *const argv[],
                                   const asyncio_subprocess_options_t *o)
{
    asyncio_process_t *p = NULL;
    int rc = asyncio_create_subprocess_exec(&p, argv, o);
    if (rc != 0) {
        tu_fail_at(file, line, "create_subprocess_exec(%s): %s", argv[0], err(rc));
        return NULL;
    }
    if (asyncio_process_pid(p) <= 0)
        tu_fail_at(file, line, "pid %ld", (long)asyncio_process_pid(p));
    return p;
}
#define SPAWN(argv, o) spawn_at(__FILE__, __LINE__, (argv), (o))

static asyncio_process_t *shell_at(const char *file, int line, const char *cmd,
                                   const asyncio_subprocess_options_t *o)
{
    asyncio_process_t *p = NULL;
    int rc = asyncio_create_subprocess_shell(&p, cmd, o);
    if (rc != 0) {
        tu_fail_at(file, line, "create_subprocess_shell(%s): %s", cmd, err(rc));
        return NULL;
    }
    return p;
}
#define SHELL(cmd, o) shell_at(__FILE__, __LINE__, (cmd), (o))

/* Read s to its end: a malloc()ed, NUL-terminated buffer (its length in
 * *len if not NULL); on error what came so far, and a failed CHECK. */
static char *read_all_at(const char *file, int line, asyncio_stream_t *s, size_t *len)
{
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    if (!b || !s) {
        tu_fail_at(file, line, "read_all: %s", s ? "malloc" : "no stream");
        if (b)
            b[0] = '\0';
        if (len)
            *len = 0;
        return b;
    }
    for (;;) {
        if (cap - n < 2048) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                tu_fail_at(file, line, "read_all: realloc");
                break;
            }
            b = nb;
        }
        ssize_t r = asyncio_stream_read(s, b + n, cap - n - 1);
        if (r < 0) {
            tu_fail_at(file, line, "asyncio_stream_read: %s", err(r));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}
#define READ_ALL(s, len) read_all_at(__FILE__, __LINE__, (s), (len))

/* Check that s gives exactly expected, then its end. */
#define CHECK_OUTPUT(s, expected)                                              \
    do {                                                                       \
        char *o_ = READ_ALL((s), NULL);                                        \
        CHECK_STR(o_, (expected));                                             \
        free(o_);                                                              \
    } while (0)

/* Wait for p: its return code (INT_MIN if the wait failed). */
static int wait_at(const char *file, int line, asyncio_process_t *p)
{
    int code = INT_MIN;
    int rc = asyncio_process_wait(p, &code);
    if (rc != 0) {
        tu_fail_at(file, line, "asyncio_process_wait: %s", err(rc));
        return INT_MIN;
    }
    return code;
}
#define WAIT(p) wait_at(__FILE__, __LINE__, (p))

/* Kill p, wait for it (it must die of the SIGKILL), release it. */
static void kill_wait_release_at(const char *file, int line, asyncio_process_t *p)
{
    if (!p)
        return;
    int rc = asyncio_process_kill(p);
    if (rc != 0)
        tu_fail_at(file, line, "asyncio_process_kill: %s", err(rc));
    int code = wait_at(file, line, p);
    if (code != -SIGKILL)
        tu_fail_at(file, line, "return code %d after the kill, expected -9 (it was not running?)",
                   code);
    asyncio_process_release(p);
}
#define KILL_WAIT_RELEASE(p) kill_wait_release_at(__FILE__, __LINE__, (p))

/* A task that waits for the process given: its return code as result. */
struct waiter {
    asyncio_process_t *p;
    int rc, code;
};

static int waiter_task(void *arg, void **result)
{
    (void)result;
    struct waiter *w = arg;
    w->code = INT_MIN;
    w->rc = asyncio_process_wait(w->p, &w->code);
    return 0;
}

/* ---- stderr captured (the loop's warnings) -------------------------------- */

struct capture {
    int saved, fd;
};

static void capture_begin(struct capture *c)
{
    fflush(stderr);
    c->fd = memfd_create("stderr", MFD_CLOEXEC);
    assert_true(c->fd >= 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Put stderr back and return what was written to it (also echoed). */
static void capture_end(struct capture *c, char *buf, size_t cap)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    ssize_t n = pread(c->fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(c->fd);
    if (n > 0)
        fprintf(stderr, "(captured stderr: %s)\n", buf);
}

/* =========================================================================
 * exec and shell
 * ========================================================================= */

static int main_exit_codes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *t[] = {"true", NULL};
    asyncio_process_t *p = SPAWN(t, NULL);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    const char *three[] = {"/bin/sh", "-c", "exit 3", NULL};
    p = SPAWN(three, NULL);
    CHECK_INT(WAIT(p), 3);
    asyncio_process_release(p);

    p = SHELL("exit 3", NULL);
    CHECK_INT(WAIT(p), 3);
    asyncio_process_release(p);

    p = SHELL("exit 0", NULL);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* Killed: minus the signal's number. */
    const char *sl[] = {"sleep", "30", NULL};
    p = SPAWN(sl, NULL);
    CHECK_RC(asyncio_process_kill(p), 0);
    CHECK_INT(WAIT(p), -SIGKILL);
    asyncio_process_release(p);

    p = SPAWN(sl, NULL);
    CHECK_RC(asyncio_process_terminate(p), 0);
    CHECK_INT(WAIT(p), -SIGTERM);
    asyncio_process_release(p);

    p = SPAWN(sl, NULL);
    CHECK_RC(asyncio_process_send_signal(p, SIGINT), 0);
    CHECK_INT(WAIT(p), -SIGINT);
    asyncio_process_release(p);

    /* A shell that kills itself, with a core dump's signal. */
    p = SHELL("kill -TERM $$", NULL);
    CHECK_INT(WAIT(p), -SIGTERM);
    asyncio_process_release(p);
    p = SHELL("ulimit -c 0; kill -ABRT $$", NULL);
    CHECK_INT(WAIT(p), -SIGABRT);
    asyncio_process_release(p);

    /* Codes above 127 are codes, not signals. */
    p = SHELL("exit 200", NULL);
    CHECK_INT(WAIT(p), 200);
    asyncio_process_release(p);
    return 0;
}

static void test_exit_codes_and_deaths_by_signal_on_both_backends(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_exit_codes, NULL), 0);
    assert_true(no_children());
}

static int main_argv_exact(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    const char *argv[] = {self_exe, "--helper-args", "a b", "", "  two  spaces ", "tab\there",
                          "quote\"'$HOME*", "new\nline", "\xc3\xbc", NULL};
    asyncio_process_t *p = SPAWN(argv, &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "3:a b\n0:\n14:  two  spaces \n8:tab\there\n"
                                            "13:quote\"'$HOME*\n8:new\nline\n2:\xc3\xbc\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* The shell gets its command as one argument. */
    p = SHELL("printf '[%s]' \"$0\" 'a  b' ''", &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "[/bin/sh][a  b][]");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_argv_is_passed_exactly(void **state)
{
    (void)state;
    assert_int_equal(run(main_argv_exact, NULL), 0);
}

/* A file in tmpdir with content and mode. */
static void make_file(const char *name, const char *content, mode_t mode, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static int main_lookup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    /* No '/': looked up in $PATH. */
    const char *byname[] = {"echo", "by name", NULL};
    asyncio_process_t *p = SPAWN(byname, &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "by name\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* An absolute path. */
    const char *abs[] = {"/bin/sh", "-c", "echo absolute", NULL};
    p = SPAWN(abs, &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "absolute\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* A relative path with a '/': from cwd, the child's (as Python). */
    asyncio_subprocess_options_t oc = o;
    oc.cwd = tmpdir;
    const char *rel[] = {"./script.sh", NULL};
    p = SPAWN(rel, &oc);
    CHECK_OUTPUT(asyncio_process_stdout(p), "script ran\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* A script with a #! line, by its absolute path. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/script.sh", tmpdir);
    const char *script[] = {path, NULL};
    p = SPAWN(script, &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "script ran\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_path_lookup_absolute_and_relative_paths(void **state)
{
    (void)state;
    char path[PATH_MAX];
    make_file("script.sh", "#!/bin/sh\necho script ran\n", 0755, path, sizeof path);
    assert_int_equal(run(main_lookup, NULL), 0);
}

/* Each spawn must fail with the error given, leaving no fd and no child. */
struct bad_spawn {
    const char *argv[4];
    const char *cwd;
    int expected;
};

static int main_spawn_errors(void *arg, void **result)
{
    (void)result;
    const struct bad_spawn *cases = arg;
    for (int i = 0; cases[i].argv[0]; i++) {
        int before = count_fds();
        asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                          .stdout_mode = ASYNCIO_STDIO_PIPE,
                                          .stderr_mode = ASYNCIO_STDIO_PIPE,
                                          .cwd = cases[i].cwd};
        asyncio_process_t *p = NULL;
        int rc = asyncio_create_subprocess_exec(&p, cases[i].argv, &o);
        if (rc != cases[i].expected)
            tu_fail_at(__FILE__, __LINE__, "case %d (%s, cwd %s): %s, expected %s", i,
                       cases[i].argv[0], cases[i].cwd ? cases[i].cwd : "-", err(rc),
                       err(cases[i].expected));
        if (rc == 0)
            KILL_WAIT_RELEASE(p);
        CHECK_INT(count_fds(), before);
        CHECK(no_children());
    }
    return 0;
}

static void test_spawn_errors_leave_no_fd_and_no_child(void **state)
{
    (void)state;
    NEED_REAL_SPAWN();
    char noexec[PATH_MAX], garbage[PATH_MAX], missing_cwd[PATH_MAX];
    make_file("not-executable", "#!/bin/sh\necho no\n", 0644, noexec, sizeof noexec);
    make_file("not-a-program", "\x01\x02\x03 garbage, no #! line\n", 0755, garbage,
              sizeof garbage);
    snprintf(missing_cwd, sizeof missing_cwd, "%s/no-such-dir", tmpdir);
    const struct bad_spawn cases[] = {
        {{"no-such-program-asyncio-test", NULL}, NULL, -ENOENT},
        {{"/no/such/program", NULL}, NULL, -ENOENT},
        {{noexec, NULL}, NULL, -EACCES},
        {{garbage, NULL}, NULL, -ENOEXEC},
        {{"true", NULL}, missing_cwd, -ENOENT},
        {{"/bin/true", NULL}, missing_cwd, -ENOENT},
        {{tmpdir, NULL}, NULL, -EACCES}, /* a directory */
        {{NULL}, NULL, 0},
    };
    assert_true(no_children());
    assert_int_equal(run(main_spawn_errors, (void *)cases), 0);
    assert_true(no_children());
}

static int main_cwd_env(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char expected[PATH_MAX + 2];
    char *real = realpath(tmpdir, NULL);
    CHECK(real != NULL);
    snprintf(expected, sizeof expected, "%s\n", real ? real : "?");
    free(real);

    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE, .cwd = tmpdir};
    asyncio_process_t *p = SHELL("pwd -P", &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), expected);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* Our own directory did not change. */
    char here[PATH_MAX];
    CHECK(getcwd(here, sizeof here) != NULL && strcmp(here, tmpdir) != 0);

    /* env: exactly what is given. */
    char *const env[] = {"FOO=bar baz", "EMPTY=", "ASYNCIO_SUBPROCESS_MARK=given", NULL};
    asyncio_subprocess_options_t oe = {.stdout_mode = ASYNCIO_STDIO_PIPE, .env = env};
    const char *envp[] = {"/usr/bin/env", NULL};
    p = SPAWN(envp, &oe);
    CHECK_OUTPUT(asyncio_process_stdout(p), "FOO=bar baz\nEMPTY=\nASYNCIO_SUBPROCESS_MARK=given\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* An empty environment. */
    char *const none[] = {NULL};
    oe.env = none;
    p = SPAWN(envp, &oe);
    CHECK_OUTPUT(asyncio_process_stdout(p), "");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* NULL: ours, as it is now. */
    asyncio_subprocess_options_t on = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    p = SHELL("echo \"[$ASYNCIO_SUBPROCESS_MARK]\"", &on);
    CHECK_OUTPUT(asyncio_process_stdout(p), "[ours]\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_cwd_and_env_are_honoured(void **state)
{
    (void)state;
    assert_int_equal(setenv("ASYNCIO_SUBPROCESS_MARK", "ours", 1), 0);
    assert_int_equal(run(main_cwd_env, NULL), 0);
    unsetenv("ASYNCIO_SUBPROCESS_MARK");
}

/* CPython looks a name up in the PATH of the env it is given
 * (os.get_exec_path(env)), not in the parent's:
 *   create_subprocess_exec("true", env={"PATH": "/nonexistent"})
 * raises FileNotFoundError, and a program found only in the given PATH
 * runs. */
static int main_env_path(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char path_var[PATH_MAX + 8];
    snprintf(path_var, sizeof path_var, "PATH=%s", tmpdir);
    char *const env_tmp[] = {path_var, NULL};
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE, .env = env_tmp};
    asyncio_process_t *p = NULL;
    /* Only in the given PATH. */
    const char *mine[] = {"only-in-given-path", NULL};
    int rc = asyncio_create_subprocess_exec(&p, mine, &o);
    CHECK_RC(rc, 0);
    if (rc == 0) {
        CHECK_OUTPUT(asyncio_process_stdout(p), "found in the given PATH\n");
        CHECK_INT(WAIT(p), 0);
        asyncio_process_release(p);
    }
    /* Not in the given PATH, though in ours. */
    char *const env_none[] = {"PATH=/nonexistent", NULL};
    o.env = env_none;
    const char *t[] = {"true", NULL};
    rc = asyncio_create_subprocess_exec(&p, t, &o);
    CHECK_RC(rc, -ENOENT);
    if (rc == 0)
        KILL_WAIT_RELEASE(p);

    /* A PATH entry where the name is not executable is passed over; with
     * no other, -EACCES (Python: PermissionError). */
    char both[2 * sizeof tmpdir + 32], denied_only[sizeof tmpdir + 32];
    snprintf(both, sizeof both, "PATH=%s/noexec:%s", tmpdir, tmpdir);
    snprintf(denied_only, sizeof denied_only, "PATH=%s/noexec", tmpdir);
    char *const env_both[] = {both, NULL};
    o.env = env_both;
    rc = asyncio_create_subprocess_exec(&p, mine, &o);
    CHECK_RC(rc, 0);
    if (rc == 0) {
        CHECK_OUTPUT(asyncio_process_stdout(p), "found in the given PATH\n");
        CHECK_INT(WAIT(p), 0);
        asyncio_process_release(p);
    }
    char *const env_denied[] = {denied_only, NULL};
    o.env = env_denied;
    rc = asyncio_create_subprocess_exec(&p, mine, &o);
    CHECK_RC(rc, -EACCES);
    if (rc == 0)
        KILL_WAIT_RELEASE(p);

    /* An env without PATH: "/bin:/usr/bin" (os.defpath). */
    char *const env_nopath[] = {"X=1", NULL};
    o.env = env_nopath;
    const char *sh[] = {"sh", "-c", "echo no PATH", NULL};
    rc = asyncio_create_subprocess_exec(&p, sh, &o);
    CHECK_RC(rc, 0);
    if (rc == 0) {
        CHECK_OUTPUT(asyncio_process_stdout(p), "no PATH\n");
        CHECK_INT(WAIT(p), 0);
        asyncio_process_release(p);
    }
    return 0;
}

static void test_name_is_looked_up_in_the_given_env_s_path_as_python_does(void **state)
{
    (void)state;
    char path[PATH_MAX];
    make_file("only-in-given-path", "#!/bin/sh\necho found in the given PATH\n", 0755, path,
              sizeof path);
    snprintf(path, sizeof path, "%s/noexec", tmpdir);
    assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
    make_file("noexec/only-in-given-path", "#!/bin/sh\necho the wrong one\n", 0644, path,
              sizeof path);
    assert_int_equal(run(main_env_path, NULL), 0);
}

/* The helper's "pid sid pgid". */
static void read_ids(asyncio_process_t *p, long ids[3])
{
    char *out = READ_ALL(asyncio_process_stdout(p), NULL);
    ids[0] = ids[1] = ids[2] = -1;
    CHECK(out && sscanf(out, "%ld %ld %ld", &ids[0], &ids[1], &ids[2]) == 3);
    free(out);
}

static int main_session_group(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *ids[] = {self_exe, "--helper-ids", NULL};
    long v[3];

    /* Default: our session and group. */
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    asyncio_process_t *p = SPAWN(ids, &o);
    read_ids(p, v);
    CHECK_INT(v[0], asyncio_process_pid(p));
    CHECK_INT(v[1], getsid(0));
    CHECK_INT(v[2], getpgrp());
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* start_new_session: sid == pgid == pid. */
    o.start_new_session = 1;
    p = SPAWN(ids, &o);
    read_ids(p, v);
    CHECK_INT(v[0], asyncio_process_pid(p));
    CHECK_INT(v[1], v[0]);
    CHECK_INT(v[2], v[0]);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* new_process_group: pgid == pid, our session. */
    o.start_new_session = 0;
    o.new_process_group = 1;
    p = SPAWN(ids, &o);
    read_ids(p, v);
    CHECK_INT(v[0], asyncio_process_pid(p));
    CHECK_INT(v[1], getsid(0));
    CHECK_INT(v[2], v[0]);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_new_session_and_new_process_group(void **state)
{
    (void)state;
    assert_int_equal(run(main_session_group, NULL), 0);
}

static int main_bad_options(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *t[] = {"true", NULL};
    const char *none[] = {NULL};
    asyncio_process_t *p = NULL;
    int before = count_fds();
    CHECK_RC(asyncio_create_subprocess_exec(NULL, t, NULL), -EINVAL);
    CHECK_RC(asyncio_create_subprocess_exec(&p, NULL, NULL), -EINVAL);
    CHECK_RC(asyncio_create_subprocess_exec(&p, none, NULL), -EINVAL);
    CHECK_RC(asyncio_create_subprocess_shell(&p, NULL, NULL), -EINVAL);
    CHECK_RC(asyncio_create_subprocess_shell(NULL, "true", NULL), -EINVAL);

    struct {
        asyncio_subprocess_options_t o;
        const char *what;
    } bad[] = {
        {{.stdin_mode = (enum asyncio_stdio)99}, "stdin mode 99"},
        {{.stdout_mode = (enum asyncio_stdio)(ASYNCIO_STDIO_STDOUT + 1)}, "stdout mode past STDOUT"},
        {{.stderr_mode = (enum asyncio_stdio)-1}, "stderr mode -1"},
        {{.stdin_mode = ASYNCIO_STDIO_FD, .stdin_fd = -1}, "stdin FD -1"},
        {{.stdout_mode = ASYNCIO_STDIO_FD, .stdout_fd = -1}, "stdout FD -1"},
        {{.stderr_mode = ASYNCIO_STDIO_FD, .stderr_fd = -5}, "stderr FD -5"},
        {{.stdin_mode = ASYNCIO_STDIO_STDOUT}, "STDOUT for stdin"},
        {{.stdout_mode = ASYNCIO_STDIO_STDOUT}, "STDOUT for stdout"},
        {{.start_new_session = 1, .new_process_group = 1}, "both session options"},
        /* Pipes asked for too: the check comes before any is made. */
        {{.stdin_mode = ASYNCIO_STDIO_PIPE, .stdout_mode = ASYNCIO_STDIO_PIPE,
          .stderr_mode = ASYNCIO_STDIO_FD, .stderr_fd = -1},
         "pipes and stderr FD -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = asyncio_create_subprocess_exec(&p, t, &bad[i].o);
        if (rc != -EINVAL)
            tu_fail_at(__FILE__, __LINE__, "exec with %s: %s, expected EINVAL", bad[i].what,
                       err(rc));
        if (rc == 0)
            KILL_WAIT_RELEASE(p);
        rc = asyncio_create_subprocess_shell(&p, "true", &bad[i].o);
        if (rc != -EINVAL)
            tu_fail_at(__FILE__, __LINE__, "shell with %s: %s, expected EINVAL", bad[i].what,
                       err(rc));
        if (rc == 0)
            KILL_WAIT_RELEASE(p);
    }
    CHECK_INT(count_fds(), before);
    CHECK(no_children());

    /* The process calls, given NULL or a bad signal. */
    int code = 1234;
    CHECK_RC(asyncio_process_pid(NULL), -EINVAL);
    CHECK_PTR(asyncio_process_stdin(NULL), NULL);
    CHECK_PTR(asyncio_process_stdout(NULL), NULL);
    CHECK_PTR(asyncio_process_stderr(NULL), NULL);
    CHECK_RC(asyncio_process_wait(NULL, &code), -EINVAL);
    CHECK_RC(asyncio_process_returncode(NULL, &code), -EINVAL);
    CHECK_INT(code, 1234);
    char *out = (char *)1;
    size_t outlen = 7;
    CHECK_RC(asyncio_process_communicate(NULL, NULL, 0, &out, &outlen, NULL, NULL, &code),
             -EINVAL);
    CHECK_PTR(out, NULL);
    CHECK_INT(outlen, 0);
    CHECK_RC(asyncio_process_send_signal(NULL, SIGTERM), -EINVAL);
    CHECK_RC(asyncio_process_terminate(NULL), -EINVAL);
    CHECK_RC(asyncio_process_kill(NULL), -EINVAL);
    asyncio_process_release(NULL);

    const char *sl[] = {"sleep", "30", NULL};
    p = SPAWN(sl, NULL);
    CHECK_RC(asyncio_process_send_signal(p, -1), -EINVAL);
    CHECK_RC(asyncio_process_send_signal(p, NSIG), -EINVAL);
    CHECK_RC(asyncio_process_send_signal(p, 1000), -EINVAL);
    CHECK_RC(asyncio_process_send_signal(p, 0), 0); /* a probe */
    /* Input without a stdin pipe. */
    CHECK_RC(asyncio_process_communicate(p, "x", 1, NULL, NULL, NULL, NULL, NULL), -EINVAL);
    /* len without input. */
    CHECK_RC(asyncio_process_communicate(p, NULL, 1, NULL, NULL, NULL, NULL, NULL), -EINVAL);
    CHECK_RC(asyncio_process_returncode(p, &code), -EAGAIN);
    KILL_WAIT_RELEASE(p);
    return 0;
}

static void test_bad_options_and_arguments_are_einval(void **state)
{
    (void)state;
    assert_int_equal(run(main_bad_options, NULL), 0);
}

/* Outside a loop callback or task. */
struct cb_calls {
    asyncio_process_t *p;
    int spawn_rc, wait_rc, comm_rc;
    asyncio_future_t *done;
};

static void cb_in_loop(void *arg)
{
    struct cb_calls *c = arg;
    const char *sl[] = {"sleep", "30", NULL};
    c->spawn_rc = asyncio_create_subprocess_exec(&c->p, sl, NULL); /* from a callback: fine */
    if (c->spawn_rc == 0) {
        c->wait_rc = asyncio_process_wait(c->p, NULL);
        c->comm_rc = asyncio_process_communicate(c->p, NULL, 0, NULL, NULL, NULL, NULL, NULL);
    }
    asyncio_future_set_result(c->done, NULL);
}

static int main_callbacks(void *arg, void **result)
{
    (void)result;
    struct cb_calls *c = arg;
    c->done = tu_future();
    CHECK_RC(asyncio_call_soon(cb_in_loop, c, NULL), 0);
    CHECK_RC(asyncio_await(c->done, NULL), 0);
    asyncio_future_release(c->done);
    CHECK_RC(c->spawn_rc, 0);
    CHECK_RC(c->wait_rc, -EPERM);
    CHECK_RC(c->comm_rc, -EPERM);
    if (c->spawn_rc == 0)
        KILL_WAIT_RELEASE(c->p);
    return 0;
}

static void test_no_loop_is_eperm_and_a_callback_may_spawn_but_not_wait(void **state)
{
    (void)state;
    const char *t[] = {"true", NULL};
    asyncio_process_t *p = NULL;
    assert_int_equal(asyncio_create_subprocess_exec(&p, t, NULL), -EPERM);
    assert_int_equal(asyncio_create_subprocess_shell(&p, "true", NULL), -EPERM);
    assert_null(p);
    assert_true(no_children());
    struct cb_calls c = {0};
    assert_int_equal(run(main_callbacks, &c), 0);
}

/* No pidfd_open (Linux before 5.3; valgrind 3.19): children are watched
 * through SIGCHLD (src/sigchld.c). Each spawn works, its code comes back,
 * and once none is left the loop's watcher is gone too: no fd, no child.
 * Where the system has the call, a seccomp filter takes it away in a
 * process of its own. */
static int main_no_pidfd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int before = count_fds();
    asyncio_subprocess_options_t all = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                        .stdout_mode = ASYNCIO_STDIO_PIPE,
                                        .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *t[] = {"true", NULL};
    const char *sl[] = {"sleep", "30", NULL};
    for (int i = 0; i < 4; i++) {
        asyncio_process_t *p = NULL;
        int rc = i < 2 ? asyncio_create_subprocess_exec(&p, i ? sl : t, i & 1 ? &all : NULL)
                       : asyncio_create_subprocess_shell(&p, i & 1 ? "exit 3" : "exit 0",
                                                         i & 1 ? &all : NULL);
        CHECK_RC(rc, 0);
        if (rc == 0 && i == 1) {
            KILL_WAIT_RELEASE(p);
        } else if (rc == 0) {
            CHECK_INT(WAIT(p), i == 3 ? 3 : 0);
            asyncio_process_release(p);
        }
        CHECK_INT(count_fds(), before);
        CHECK(no_children());
    }
    /* The disposition is the library's handler now (it passes signals on
     * to what it replaced). */
    struct sigaction now;
    CHECK_INT(sigaction(SIGCHLD, NULL, &now), 0);
    CHECK(now.sa_flags & SA_SIGINFO);
    return 0;
}

static void child_no_pidfd(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        tu_child_exit(77); /* no seccomp here: nothing to say */
    int rc = run(main_no_pidfd, NULL);
    if (tu_failures)
        fprintf(stderr, "%d check(s) failed; first: %s\n", tu_failures, tu_first_failure);
    tu_child_exit(rc == 0 && tu_failures == 0 ? 0 : 1);
}

static void test_without_pidfd_children_are_watched_through_sigchld(void **state)
{
    (void)state;
    const char *backend = getenv("ASYNCIO_BACKEND");
    if (backend && strcmp(backend, "kqueue") == 0) {
        print_message("the kqueue backend watches children itself (EVFILT_PROC): skipped\n");
        skip();
    }
#ifdef TU_UNDER_TSAN
    print_message("SIGCHLD's handler runs late under ThreadSanitizer (see main()): skipped\n");
    skip();
#endif
    if (!have_pidfd) {
        assert_int_equal(run(main_no_pidfd, NULL), 0);
        return;
    }
    struct tu_child c;
    tu_run_child(child_no_pidfd, &c);
    if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 77) {
        print_message("no seccomp filter could be set: skipped\n");
        skip();
    }
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("status %#x, stderr:\n%s", (unsigned)c.status, c.err);
}

/* =========================================================================
 * stdio
 * ========================================================================= */

static int main_pipes(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* stdin and stdout: cat echoes, the close of stdin ends it. */
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE};
    const char *cat[] = {"cat", NULL};
    asyncio_process_t *p = SPAWN(cat, &o);
    asyncio_stream_t *in = asyncio_process_stdin(p), *out = asyncio_process_stdout(p);
    CHECK(in && out);
    CHECK_PTR(asyncio_process_stderr(p), NULL);
    CHECK_RC(asyncio_stream_write(in, "hello\n", 6), 0);
    CHECK_RC(asyncio_stream_drain(in), 0);
    char line[32];
    CHECK_INT(asyncio_stream_readline(out, line, sizeof line), 6);
    CHECK(memcmp(line, "hello\n", 6) == 0);
    CHECK_RC(asyncio_stream_write(in, "bye\n", 4), 0);
    CHECK_RC(asyncio_stream_close(in), 0); /* queued bytes still go, then the end */
    CHECK_PTR(asyncio_process_stdin(p), NULL);
    CHECK_OUTPUT(out, "bye\n");
    CHECK_INT(WAIT(p), 0);
    CHECK_PTR(asyncio_process_stdout(p), out); /* still ours, at its end */
    asyncio_process_release(p);

    /* stdin is a socket pair (subprocess.h): write_eof ends the child's
     * input after what is queued, the stream stays. */
    p = SPAWN(cat, &o);
    in = asyncio_process_stdin(p);
    CHECK_RC(asyncio_stream_write(in, "half", 4), 0);
    CHECK_RC(asyncio_stream_write_eof(in), 0);
    CHECK_OUTPUT(asyncio_process_stdout(p), "half");
    CHECK_INT(WAIT(p), 0);
    CHECK_PTR(asyncio_process_stdin(p), in);
    CHECK_RC(asyncio_stream_write(in, "late", 4), -EPIPE); /* after write_eof */
    asyncio_process_release(p);

    /* What the child's fds are: a socket, two pipes. */
    asyncio_subprocess_options_t o3 = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                       .stdout_mode = ASYNCIO_STDIO_PIPE,
                                       .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *links[] = {self_exe, "--helper-links", NULL};
    p = SPAWN(links, &o3);
    CHECK_OUTPUT(asyncio_process_stdout(p), "socket\npipe\npipe\n");
    CHECK_OUTPUT(asyncio_process_stderr(p), "");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* stdout and stderr apart. */
    asyncio_subprocess_options_t o2 = {.stdout_mode = ASYNCIO_STDIO_PIPE,
                                       .stderr_mode = ASYNCIO_STDIO_PIPE};
    p = SHELL("echo out; echo err >&2; echo out2", &o2);
    CHECK_PTR(asyncio_process_stdin(p), NULL);
    CHECK_OUTPUT(asyncio_process_stdout(p), "out\nout2\n");
    CHECK_OUTPUT(asyncio_process_stderr(p), "err\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* wait_closed on stdin: the stream is gone too. */
    p = SPAWN(cat, &o);
    in = asyncio_process_stdin(p);
    CHECK_RC(asyncio_stream_write(in, "x", 1), 0);
    CHECK_RC(asyncio_stream_wait_closed(in), 0);
    CHECK_PTR(asyncio_process_stdin(p), NULL);
    CHECK_OUTPUT(asyncio_process_stdout(p), "x");
    CHECK_INT(WAIT(p), 0);
    /* stdout closed by us before the release. */
    CHECK_RC(asyncio_stream_close(asyncio_process_stdout(p)), 0);
    CHECK_PTR(asyncio_process_stdout(p), NULL);
    asyncio_process_release(p);

    /* The read limit of the pipes' streams. */
    asyncio_subprocess_options_t ol = {.stdout_mode = ASYNCIO_STDIO_PIPE, .limit = 16};
    p = SHELL("echo 0123456789abcdefghij; echo short", &ol);
    char buf[64];
    CHECK_RC(asyncio_stream_readline(asyncio_process_stdout(p), buf, sizeof buf), -ENOBUFS);
    CHECK_INT(asyncio_stream_readexactly(asyncio_process_stdout(p), buf, 21), 21);
    CHECK_INT(asyncio_stream_readline(asyncio_process_stdout(p), buf, sizeof buf), 6);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_pipes_for_each_fd_on_both_backends(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_pipes, NULL), 0);
}

static int main_devnull(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* stdin: an end of file at once. */
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_DEVNULL,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE};
    asyncio_process_t *p = SHELL("if read x; then echo read; else echo eof; fi; cat", &o);
    CHECK_PTR(asyncio_process_stdin(p), NULL);
    CHECK_OUTPUT(asyncio_process_stdout(p), "eof\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* stdout and stderr: discarded. */
    asyncio_subprocess_options_t o2 = {.stdout_mode = ASYNCIO_STDIO_DEVNULL,
                                       .stderr_mode = ASYNCIO_STDIO_PIPE};
    p = SHELL("echo discarded; echo kept >&2", &o2);
    CHECK_PTR(asyncio_process_stdout(p), NULL);
    CHECK_OUTPUT(asyncio_process_stderr(p), "kept\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    o2 = (asyncio_subprocess_options_t){.stdout_mode = ASYNCIO_STDIO_PIPE,
                                        .stderr_mode = ASYNCIO_STDIO_DEVNULL};
    p = SHELL("echo kept; echo discarded >&2", &o2);
    CHECK_OUTPUT(asyncio_process_stdout(p), "kept\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* What the fds are. */
    const char *links[] = {self_exe, "--helper-links", NULL};
    asyncio_subprocess_options_t o3 = {.stdin_mode = ASYNCIO_STDIO_DEVNULL,
                                       .stdout_mode = ASYNCIO_STDIO_PIPE,
                                       .stderr_mode = ASYNCIO_STDIO_DEVNULL};
    p = SPAWN(links, &o3);
    CHECK_OUTPUT(asyncio_process_stdout(p), "/dev/null\npipe\n/dev/null\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_devnull_gives_eof_and_discards_output(void **state)
{
    (void)state;
    assert_int_equal(run(main_devnull, NULL), 0);
}

struct fd_ctx {
    int pipe_w, pipe_r, file_in, file_out;
};

static int main_fd_mode(void *arg, void **result)
{
    (void)result;
    struct fd_ctx *c = arg;
    /* stdout into a pipe of ours. */
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_FD, .stdout_fd = c->pipe_w};
    asyncio_process_t *p = SHELL("echo via fd", &o);
    CHECK_PTR(asyncio_process_stdout(p), NULL);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    CHECK(fcntl(c->pipe_w, F_GETFD) >= 0); /* still ours */

    /* stdin from a file of ours, stdout and stderr to another. */
    asyncio_subprocess_options_t o2 = {.stdin_mode = ASYNCIO_STDIO_FD,
                                       .stdin_fd = c->file_in,
                                       .stdout_mode = ASYNCIO_STDIO_FD,
                                       .stdout_fd = c->file_out,
                                       .stderr_mode = ASYNCIO_STDIO_FD,
                                       .stderr_fd = c->file_out};
    p = SHELL("cat; echo to-err >&2", &o2);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    CHECK(fcntl(c->file_in, F_GETFD) >= 0 && fcntl(c->file_out, F_GETFD) >= 0);
    return 0;
}

static void test_fd_mode_uses_the_caller_s_pipe_and_files(void **state)
{
    (void)state;
    int pw[2];
    assert_int_equal(pipe2(pw, O_CLOEXEC), 0);
    char in_path[PATH_MAX], out_path[PATH_MAX];
    make_file("fd-in", "from the file\n", 0600, in_path, sizeof in_path);
    snprintf(out_path, sizeof out_path, "%s/fd-out", tmpdir);
    struct fd_ctx c = {pw[1], pw[0], open(in_path, O_RDONLY | O_CLOEXEC),
                       open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    assert_true(c.file_in >= 0 && c.file_out >= 0);
    assert_int_equal(run(main_fd_mode, &c), 0);
    close(pw[1]);
    char buf[256];
    ssize_t n = read(pw[0], buf, sizeof buf - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, "via fd\n");
    close(pw[0]);
    close(c.file_in);
    close(c.file_out);
    int fd = open(out_path, O_RDONLY | O_CLOEXEC);
    n = read(fd, buf, sizeof buf - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    assert_string_equal(buf, "from the file\nto-err\n");
}

static int main_stderr_to_stdout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_STDOUT};
    asyncio_process_t *p = SHELL("echo 1; echo 2 >&2; echo 3; echo 4 >&2; echo 5", &o);
    CHECK_PTR(asyncio_process_stderr(p), NULL);
    CHECK_OUTPUT(asyncio_process_stdout(p), "1\n2\n3\n4\n5\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* stdout discarded: stderr with it. */
    asyncio_subprocess_options_t o2 = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                       .stdout_mode = ASYNCIO_STDIO_DEVNULL,
                                       .stderr_mode = ASYNCIO_STDIO_STDOUT};
    const char *links[] = {self_exe, "--helper-links", NULL};
    p = SPAWN(links, &o2);
    CHECK_RC(asyncio_stream_close(asyncio_process_stdin(p)), 0);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* communicate with stderr merged: all in out, err NULL. */
    p = SHELL("echo a; echo b >&2", &o);
    char *out = NULL, *errb = (char *)1;
    size_t outlen = 0, errlen = 9;
    int code = -1;
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, &out, &outlen, &errb, &errlen, &code), 0);
    CHECK_STR(out, "a\nb\n");
    CHECK_PTR(errb, NULL);
    CHECK_INT(errlen, 0);
    CHECK_INT(code, 0);
    free(out);
    asyncio_process_release(p);
    return 0;
}

static void test_stderr_to_stdout_merges_in_order(void **state)
{
    (void)state;
    assert_int_equal(run(main_stderr_to_stdout, NULL), 0);
}

/* With stdout a pipe, stderr to the caller's fd 1 (its own stdout, as
 * "2>&1" of the parent): the child's stderr must be what fd 1 is in the
 * parent, not the child's new stdout. CPython's _posixsubprocess dups such
 * an fd out of the way first (bpo-12607). */
static int main_fd_is_a_standard_one(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_FD,
                                      .stderr_fd = STDOUT_FILENO};
    asyncio_process_t *p = SHELL("echo out; echo err >&2", &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "out\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_fd_mode_with_one_of_our_standard_fds(void **state)
{
    (void)state;
    /* Our stdout is a file for the while. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/our-stdout", tmpdir);
    fflush(stdout);
    int file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(file >= 0);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    dup2(file, STDOUT_FILENO);
    int rc = run_on_unchecked(NULL, main_fd_is_a_standard_one, NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    char buf[256];
    ssize_t n = pread(file, buf, sizeof buf - 1, 0);
    close(file);
    buf[n > 0 ? n : 0] = '\0';
    tu_check_failures();
    assert_int_equal(rc, 0);
    assert_string_equal(buf, "err\n");
}

struct inherit_ctx {
    pid_t pid;
};

static int main_inherit(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *cat[] = {"cat", NULL};
    asyncio_process_t *p = SPAWN(cat, NULL); /* NULL options: all inherited */
    CHECK_PTR(asyncio_process_stdin(p), NULL);
    CHECK_PTR(asyncio_process_stdout(p), NULL);
    CHECK_PTR(asyncio_process_stderr(p), NULL);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_INHERIT};
    p = SHELL("echo to-stderr >&2", &o);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_inherit_gives_the_child_our_fds(void **state)
{
    (void)state;
    /* Our fds 0-2 for the while: a pipe in, a pipe out, the out pipe for
     * stderr too. */
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(write(in[1], "inherited\n", 10), 10);
    close(in[1]);
    fflush(NULL);
    int saved[3];
    for (int i = 0; i < 3; i++)
        saved[i] = dup(i);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    int rc = run_on_unchecked(NULL, main_inherit, NULL);
    fflush(NULL);
    for (int i = 0; i < 3; i++) {
        dup2(saved[i], i);
        close(saved[i]);
    }
    close(in[0]);
    close(out[1]);
    char buf[256];
    size_t len = 0;
    ssize_t n;
    while ((n = read(out[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(out[0]);
    tu_check_failures();
    assert_int_equal(rc, 0);
    assert_string_equal(buf, "inherited\nto-stderr\n");
}

/* Pipes made while fd 0 is closed would come out as fd 0: they must not
 * be taken for the child's own. */
static int main_pipes_with_fd0_closed(void *arg, void **result)
{
    (void)result;
    int *saved = arg;
    /* Closed now, once the loop's own fds exist. */
    *saved = dup(0);
    CHECK(*saved >= 0);
    close(0);
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *links[] = {self_exe, "--helper-links", NULL};
    asyncio_process_t *p = SPAWN(links, &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "socket\npipe\npipe\n");
    CHECK_OUTPUT(asyncio_process_stderr(p), "");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    const char *cat[] = {"cat", NULL};
    o.stderr_mode = ASYNCIO_STDIO_INHERIT;
    p = SPAWN(cat, &o);
    char *out = NULL;
    size_t len = 0;
    CHECK_RC(asyncio_process_communicate(p, "through", 7, &out, &len, NULL, NULL, NULL), 0);
    CHECK_STR(out, "through");
    free(out);
    asyncio_process_release(p);
    CHECK(fcntl(0, F_GETFD) < 0); /* nothing of the library's was left there */
    dup2(*saved, 0);
    close(*saved);
    *saved = -1;
    return 0;
}

static void test_pipes_made_while_fd_0_is_closed(void **state)
{
    (void)state;
    int saved = -1;
    int rc = run_on_unchecked(NULL, main_pipes_with_fd0_closed, &saved);
    if (saved >= 0) { /* the task did not get to put it back */
        dup2(saved, 0);
        close(saved);
    }
    tu_check_failures();
    assert_int_equal(rc, 0);
}

/* =========================================================================
 * what the child inherits
 * ========================================================================= */

static void on_signal(int sig, void *arg)
{
    (void)sig;
    (void)arg;
}

/* The SigBlk line of a status file. */
static void sigblk(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "SigBlk:", 7) == 0 && strlen(line) < cap)
            memcpy(buf, line, strlen(line) + 1);
    fclose(f);
}

static int main_sigmask(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK_RC(asyncio_add_signal_handler(SIGUSR1, on_signal, NULL), 0);
    CHECK_RC(asyncio_add_signal_handler(SIGTERM, on_signal, NULL), 0);
    CHECK_RC(asyncio_add_signal_handler(SIGINT, on_signal, NULL), 0);
    /* The loop's thread blocks them (to read them from a signalfd; a
     * build without signalfd catches them with sigaction() instead)... */
    char mine[128];
    sigblk("/proc/thread-self/status", mine, sizeof mine);
#ifndef TU_PORTABLE_FEATURES
    CHECK(strcmp(mine, "SigBlk:\t0000000000000000\n") != 0);
#endif
    /* ...its child does not. */
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    asyncio_process_t *p = SHELL("grep SigBlk /proc/self/status", &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "SigBlk:\t0000000000000000\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    /* And SIGTERM ends it: it was not blocked. */
    const char *sl[] = {"sleep", "30", NULL};
    p = SPAWN(sl, NULL);
    CHECK_RC(asyncio_process_terminate(p), 0);
    CHECK_INT(WAIT(p), -SIGTERM);
    asyncio_process_release(p);
    asyncio_remove_signal_handler(SIGUSR1);
    asyncio_remove_signal_handler(SIGTERM);
    asyncio_remove_signal_handler(SIGINT);
    return 0;
}

static void test_child_s_signal_mask_is_empty_with_handlers_installed(void **state)
{
    (void)state;
    assert_int_equal(run(main_sigmask, NULL), 0);
}

/* CPython's restore_signals (the default of its subprocesses): SIGPIPE
 * and SIGXFSZ, which a program often ignores, are back to their default
 * in the child; other ignored signals stay ignored (exec keeps SIG_IGN). */
static int main_sigign(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    asyncio_process_t *p = SHELL("grep SigIgn /proc/self/status", &o);
    char *out = READ_ALL(asyncio_process_stdout(p), NULL);
    unsigned long long ign = ~0ull;
    CHECK(out && sscanf(out, "SigIgn: %llx", &ign) == 1);
    /* Signals 1-31 (glibc's posix_spawn leaves its internal signals 32
     * and 33 ignored in the child; nothing the library chose). */
    if ((ign & 0x7fffffffull) != 1ull << (SIGINT - 1))
        tu_fail_at(__FILE__, __LINE__, "the child ignores %#llx, expected %#llx (SIGINT only): %s",
                   ign & 0x7fffffffull, 1ull << (SIGINT - 1), out);
    free(out);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    /* So a pipeline in the child ends as it would from a shell. */
    p = SHELL("yes | head -n 1", &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "y\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_sigpipe_and_sigxfsz_are_default_in_the_child_as_python_s_restore_signals(
    void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old[3];
    sigaction(SIGPIPE, &ign, &old[0]);
    sigaction(SIGXFSZ, &ign, &old[1]);
    sigaction(SIGINT, &ign, &old[2]);
    int rc = run_on_unchecked(NULL, main_sigign, NULL);
    sigaction(SIGPIPE, &old[0], NULL);
    sigaction(SIGXFSZ, &old[1], NULL);
    sigaction(SIGINT, &old[2], NULL);
    tu_check_failures();
    assert_int_equal(rc, 0);
}

/* Whether fd is one of ours at 3 or above that is not close-on-exec (the
 * program's own, which the header leaves to it to mark). */
static bool inheritable(int fd)
{
    int fl = fd >= 3 ? fcntl(fd, F_GETFD) : -1;
    return fl >= 0 && !(fl & FD_CLOEXEC);
}

/* The helper's list of fds: 0, 1 and 2, and else only inheritable ones of
 * ours. */
static bool only_stdio_and_inheritable(const char *list)
{
    bool seen[3] = {false, false, false};
    const char *q = list;
    char *end;
    for (long fd; (fd = strtol(q, &end, 10)), end != q; q = end) {
        if (fd >= 0 && fd < 3)
            seen[fd] = true;
        else if (!inheritable((int)fd))
            return false;
    }
    return seen[0] && seen[1] && seen[2] && *q == '\n';
}

static int main_no_fd_leak(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* The library's fds about: a signalfd, other children's pidfds and
     * pipes, a stream of a socket pair. */
    CHECK_RC(asyncio_add_signal_handler(SIGUSR1, on_signal, NULL), 0);
    asyncio_subprocess_options_t all = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                        .stdout_mode = ASYNCIO_STDIO_PIPE,
                                        .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *cat[] = {"cat", NULL};
    asyncio_process_t *other = SPAWN(cat, &all);
    asyncio_process_t *other2 = SPAWN(cat, &all);
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    asyncio_stream_t *sock = NULL;
    CHECK_RC(asyncio_stream_open(&sock, sv[0], 0), 0);
    const char *fds[] = {self_exe, "--helper-fds", NULL};
    /* Pipes for the child itself, one pipe, /dev/null and stdout. */
    asyncio_subprocess_options_t variants[] = {
        all,
        {.stdout_mode = ASYNCIO_STDIO_PIPE},
        {.stdin_mode = ASYNCIO_STDIO_DEVNULL, .stdout_mode = ASYNCIO_STDIO_PIPE,
         .stderr_mode = ASYNCIO_STDIO_STDOUT},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        asyncio_process_t *p = SPAWN(fds, &variants[i]);
        if (asyncio_process_stdin(p))
            asyncio_stream_close(asyncio_process_stdin(p));
        char *out = READ_ALL(asyncio_process_stdout(p), NULL);
        if (!only_stdio_and_inheritable(out))
            tu_fail_at(__FILE__, __LINE__,
                       "variant %zu: the child has fds %s (0-2 expected, and none of the "
                       "library's)", i, out);
        free(out);
        CHECK_INT(WAIT(p), 0);
        asyncio_process_release(p);
    }
    asyncio_stream_close(sock);
    close(sv[1]);
    KILL_WAIT_RELEASE(other);
    KILL_WAIT_RELEASE(other2);
    asyncio_remove_signal_handler(SIGUSR1);
    return 0;
}

static void test_no_fd_of_the_library_leaks_into_the_child_on_both_backends(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_no_fd_leak, NULL), 0);
}

/* CPython's subprocesses get close_fds=True: the child has 0-2 and
 * nothing else, whatever the parent left inheritable. */
static int main_close_fds(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    const char *fds[] = {self_exe, "--helper-fds", NULL};
    asyncio_process_t *p = SPAWN(fds, &o);
    CHECK_OUTPUT(asyncio_process_stdout(p), "0 1 2\n");
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    return 0;
}

static void test_no_inheritable_fd_of_the_program_reaches_the_child_as_python_s_close_fds(
    void **state)
{
    (void)state;
    int fd = dup(STDERR_FILENO); /* not close-on-exec */
    assert_true(fd >= 3);
    int rc = run_on_unchecked(NULL, main_close_fds, NULL);
    close(fd);
    tu_check_failures();
    assert_int_equal(rc, 0);
}

/* =========================================================================
 * communicate
 * ========================================================================= */

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 4093);
}

static int main_communicate_big(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t n = 8 * MiB;
    char *in = malloc(n);
    CHECK(in != NULL);
    if (!in)
        return 0;
    for (size_t i = 0; i < n; i++)
        in[i] = (char)pattern(i);
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE};
    const char *cat[] = {"cat", NULL};
    asyncio_process_t *p = SPAWN(cat, &o);
    char *out = NULL, *errb = (char *)1;
    size_t outlen = 0, errlen = 5;
    int code = -1;
    CHECK_RC(asyncio_process_communicate(p, in, n, &out, &outlen, &errb, &errlen, &code), 0);
    CHECK_INT(code, 0);
    CHECK_INT(outlen, n);
    CHECK(out && outlen == n && memcmp(out, in, n) == 0);
    CHECK(out && out[outlen] == '\0');
    CHECK_PTR(errb, NULL); /* stderr is not a pipe */
    CHECK_INT(errlen, 0);
    CHECK_PTR(asyncio_process_stdin(p), NULL); /* closed by communicate */
    int rcode = -1;
    CHECK_RC(asyncio_process_returncode(p, &rcode), 0);
    CHECK_INT(rcode, 0);
    free(out);
    asyncio_process_release(p);

    /* Both ways and both outputs at once: a tee to stdout and stderr. */
    size_t m = 4 * MiB;
    asyncio_subprocess_options_t o3 = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                       .stdout_mode = ASYNCIO_STDIO_PIPE,
                                       .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *tee[] = {self_exe, "--helper-tee", NULL};
    p = SPAWN(tee, &o3);
    out = errb = NULL;
    CHECK_RC(asyncio_process_communicate(p, in, m, &out, &outlen, &errb, &errlen, &code), 0);
    CHECK_INT(code, 0);
    CHECK(out && outlen == m && memcmp(out, in, m) == 0);
    CHECK(errb && errlen == m && memcmp(errb, in, m) == 0);
    CHECK(out && errb && out[outlen] == '\0' && errb[errlen] == '\0');
    free(out);
    free(errb);
    asyncio_process_release(p);
    free(in);

    /* Outputs in turns of 64 KiB, no input: read at once, or deadlock. */
    const char *spew[] = {self_exe, "--helper-spew", "3000000", NULL};
    p = SPAWN(spew, &o3);
    out = errb = NULL;
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, &out, &outlen, &errb, &errlen, &code), 0);
    CHECK_INT(outlen, 3000000);
    CHECK_INT(errlen, 3000000);
    bool ok = out && errb;
    for (size_t i = 0; ok && i < outlen; i++)
        ok = out[i] == 'o' && errb[i] == 'e';
    CHECK(ok);
    CHECK_INT(code, 0);
    free(out);
    free(errb);
    asyncio_process_release(p);
    return 0;
}

static void test_communicate_8_mib_through_cat_and_both_outputs_on_both_backends(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_communicate_big, NULL), 0);
}

static int main_communicate_small(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    /* NUL-terminated, lengths without the NUL; empty output is "". */
    asyncio_process_t *p = SHELL("printf abc; exit 4", &o);
    char *out = NULL, *errb = NULL;
    size_t outlen = 99, errlen = 99;
    int code = -1;
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, &out, &outlen, &errb, &errlen, &code), 0);
    CHECK_INT(code, 4);
    CHECK_INT(outlen, 3);
    CHECK(out && memcmp(out, "abc", 4) == 0);
    CHECK_INT(errlen, 0);
    CHECK(errb && errb[0] == '\0');
    free(out);
    free(errb);
    /* Again, once exited: nothing more, the same code. */
    code = -1;
    out = errb = NULL;
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, &out, &outlen, &errb, &errlen, &code), 0);
    CHECK_INT(code, 4);
    CHECK(out && outlen == 0 && out[0] == '\0');
    free(out);
    free(errb);
    asyncio_process_release(p);

    /* NULL out pointers: the output is read (the child is not blocked)
     * and dropped. */
    p = SHELL("head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2; exit 2", &o);
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, &code), 0);
    CHECK_INT(code, 2);
    asyncio_process_release(p);

    /* Input to a child with no stdin pipe: -EINVAL, buffers NULL. */
    p = SHELL("exit 0", &o);
    out = errb = (char *)1;
    outlen = errlen = 1;
    CHECK_RC(asyncio_process_communicate(p, "in", 2, &out, &outlen, &errb, &errlen, &code),
             -EINVAL);
    CHECK_PTR(out, NULL);
    CHECK_PTR(errb, NULL);
    CHECK_INT(outlen, 0);
    CHECK_INT(errlen, 0);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);

    /* No pipe at all: just the wait. */
    p = SHELL("exit 6", NULL);
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, &out, &outlen, NULL, NULL, &code), 0);
    CHECK_PTR(out, NULL);
    CHECK_INT(code, 6);
    asyncio_process_release(p);

    /* stdin closed already, input given: -EINVAL. */
    asyncio_subprocess_options_t oi = {.stdin_mode = ASYNCIO_STDIO_PIPE};
    const char *cat[] = {"cat", NULL};
    p = SPAWN(cat, &oi);
    asyncio_stream_close(asyncio_process_stdin(p));
    CHECK_RC(asyncio_process_communicate(p, "x", 1, NULL, NULL, NULL, NULL, &code), -EINVAL);
    CHECK_RC(asyncio_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, &code), 0);
    CHECK_INT(code, 0);
    asyncio_process_release(p);
    return 0;
}

static void test_communicate_buffers_codes_and_einval(void **state)
{
    (void)state;
    assert_int_equal(run(main_communicate_small, NULL), 0);
}

/* A child that exits without reading its input: no error (asyncio
 * ignores BrokenPipeError), and never a SIGPIPE (stream.h). Run in a
 * process of its own with SIGPIPE at its default, as in a C program: a
 * SIGPIPE would end it. */
static int main_unread_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t n = 1 * MiB;
    char *in = calloc(1, n);
    CHECK(in != NULL);
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE};
    const char *t[] = {"true", NULL};
    for (int i = 0; i < 3 && in; i++) {
        asyncio_process_t *p = SPAWN(t, &o);
        int code = -1;
        CHECK_RC(asyncio_process_communicate(p, in, n, NULL, NULL, NULL, NULL, &code), 0);
        CHECK_INT(code, 0);
        asyncio_process_release(p);
    }
    /* A write of its own to the stdin of a child that is gone: -EPIPE. */
    asyncio_process_t *p = SPAWN(t, &o);
    CHECK_INT(WAIT(p), 0);
    asyncio_stream_t *s = asyncio_process_stdin(p);
    int rc = asyncio_stream_write(s, in, 65536);
    if (rc == 0)
        rc = asyncio_stream_drain(s);
    CHECK_RC(rc, -EPIPE);
    asyncio_process_release(p);
    free(in);
    return 0;
}

static const char *g_unread_backend;
static bool g_unread_sigpipe_ignored;

static void child_unread_input(void)
{
    signal(SIGPIPE, g_unread_sigpipe_ignored ? SIG_IGN : SIG_DFL);
    int rc = run_on(g_unread_backend, main_unread_input, NULL);
    if (tu_failures)
        fprintf(stderr, "%d check(s) failed; first: %s\n", tu_failures, tu_first_failure);
    tu_child_exit(rc == 0 && tu_failures == 0 ? 0 : 1);
}

static void check_unread_input(const char *backend, bool sigpipe_ignored)
{
    g_unread_backend = backend;
    g_unread_sigpipe_ignored = sigpipe_ignored;
    struct tu_child c;
    tu_run_child(child_unread_input, &c);
    const char *how = sigpipe_ignored ? "SIGPIPE ignored" : "SIGPIPE at its default";
    if (WIFSIGNALED(c.status))
        fail_msg("%s, %s: the test's process died of signal %d (%s)%s; stderr:\n%s", backend,
                 how, WTERMSIG(c.status), strsignal(WTERMSIG(c.status)),
                 WTERMSIG(c.status) == SIGPIPE ? ": writing to the stdin pipe of a child "
                                                 "that is gone raised SIGPIPE"
                                               : "",
                 c.err);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("%s, %s: status %#x, stderr:\n%s", backend, how, (unsigned)c.status, c.err);
}

/* With SIGPIPE ignored (as Python does), the library's own handling of
 * -EPIPE. */
static void test_child_that_reads_no_input_is_no_error_with_sigpipe_ignored(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        check_unread_input(backends[b], true);
}

/* As a C program runs: SIGPIPE at its default. */
static void test_child_that_reads_no_input_raises_no_sigpipe(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        check_unread_input(backends[b], false);
}

/* Cancelled or timed out: -ECANCELED / -ETIMEDOUT, no output, the child
 * left running. */
struct comm_ctx {
    asyncio_process_t *p;
    int rc, code;
    char *out, *err;
    size_t outlen, errlen;
    const void *in;
    size_t inlen;
};

static int communicate_task(void *arg, void **result)
{
    (void)result;
    struct comm_ctx *c = arg;
    c->code = INT_MIN;
    c->out = c->err = (char *)1;
    c->outlen = c->errlen = 99;
    c->rc = asyncio_process_communicate(c->p, c->in, c->inlen, &c->out, &c->outlen, &c->err,
                                        &c->errlen, &c->code);
    return c->rc;
}

static void check_comm_stopped(struct comm_ctx *c, int expected)
{
    CHECK_RC(c->rc, expected);
    CHECK_PTR(c->out, NULL);
    CHECK_PTR(c->err, NULL);
    CHECK_INT(c->outlen, 0);
    CHECK_INT(c->errlen, 0);
    CHECK_INT(c->code, INT_MIN); /* not set */
    int code;
    CHECK_RC(asyncio_process_returncode(c->p, &code), -EAGAIN);
    CHECK_INT(child_state(asyncio_process_pid(c->p)), 'R');
}

static int main_communicate_stopped(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t n = 1 * MiB;
    char *in = calloc(1, n);
    CHECK(in != NULL);
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    /* Prints, then reads nothing and sleeps: the feed blocks, the reads
     * wait. */
    const char *cmd = "echo partial; echo partial >&2; exec sleep 30";

    /* Cancelled, from another task, while it waits. */
    struct comm_ctx c = {.p = SHELL(cmd, &o), .in = in, .inlen = n};
    asyncio_task_t *t = tu_spawn(communicate_task, &c, "communicate");
    while (asyncio_task_state(t) && strcmp(asyncio_task_state(t), "waiting") != 0)
        tu_yield(1);
    CHECK_RC(asyncio_sleep(0.05), 0); /* data has flowed by then, or not: either way */
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_RC(asyncio_await(t, NULL), -ECANCELED);
    asyncio_task_release(t);
    check_comm_stopped(&c, -ECANCELED);
    /* stdin stays open, what was not sent still queued (asyncio's
     * _feed_stdin closes it only after its drain). */
    CHECK(asyncio_process_stdin(c.p) != NULL);
    KILL_WAIT_RELEASE(c.p);

    /* Timed out, in a scope of the caller's. */
    struct comm_ctx c2 = {.p = SHELL(cmd, &o), .in = in, .inlen = n};
    asyncio_timeout_t scope;
    CHECK_RC(asyncio_timeout_enter(&scope, 0.05), 0);
    communicate_task(&c2, NULL);
    CHECK_RC(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    check_comm_stopped(&c2, -ETIMEDOUT);
    CHECK(asyncio_process_stdin(c2.p) != NULL);
    KILL_WAIT_RELEASE(c2.p);

    /* Timed out with no input, by asyncio_wait_for() around a task. */
    struct comm_ctx c3 = {.p = SHELL(cmd, &o)};
    t = tu_spawn(communicate_task, &c3, "communicate");
    CHECK_RC(asyncio_wait_for(t, 0.05, NULL), -ETIMEDOUT);
    asyncio_task_release(t);
    check_comm_stopped(&c3, -ECANCELED);
    /* What is left of the output can still be read. */
    CHECK(asyncio_process_stdout(c3.p) != NULL);
    KILL_WAIT_RELEASE(c3.p);

    /* Cancelled before it ever ran. */
    struct comm_ctx c4 = {.p = SHELL(cmd, &o)};
    t = tu_spawn(communicate_task, &c4, "communicate");
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_RC(asyncio_await(t, NULL), -ECANCELED);
    asyncio_task_release(t);
    KILL_WAIT_RELEASE(c4.p);
    free(in);
    return 0;
}

static void test_communicate_cancelled_or_timed_out_leaves_the_child_running(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_communicate_stopped, NULL), 0);
    assert_true(no_children());
}

/* =========================================================================
 * wait
 * ========================================================================= */

static int main_wait_stopped(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *sl[] = {"sleep", "30", NULL};
    asyncio_process_t *p = SPAWN(sl, NULL);
    int code = 1234;

    /* Cancelled. */
    struct waiter w = {p, 0, 0};
    asyncio_task_t *t = tu_spawn(waiter_task, &w, "waiter");
    tu_yield(2);
    CHECK_STR(asyncio_task_state(t), "waiting");
    CHECK_INT(asyncio_task_cancel(t), 1);
    CHECK_RC(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK_RC(w.rc, -ECANCELED);
    CHECK_INT(w.code, INT_MIN);
    CHECK_RC(asyncio_process_returncode(p, &code), -EAGAIN);
    CHECK_INT(child_state(asyncio_process_pid(p)), 'R');

    /* Timed out. */
    asyncio_timeout_t scope;
    CHECK_RC(asyncio_timeout_enter(&scope, 0.02), 0);
    CHECK_RC(asyncio_process_wait(p, &code), -ETIMEDOUT);
    CHECK_RC(asyncio_timeout_exit(&scope), -ETIMEDOUT);
    CHECK_INT(code, 1234);
    CHECK_RC(asyncio_process_returncode(p, &code), -EAGAIN);
    CHECK_INT(child_state(asyncio_process_pid(p)), 'R');

    /* By wait_for around a task, which catches the cancellation and
     * returns 0: wait_for returns that, as asyncio's does. */
    struct waiter w2 = {p, 0, 0};
    t = tu_spawn(waiter_task, &w2, "waiter");
    CHECK_RC(asyncio_wait_for(t, 0.02, NULL), 0);
    asyncio_task_release(t);
    CHECK_RC(w2.rc, -ECANCELED);
    CHECK_INT(child_state(asyncio_process_pid(p)), 'R');

    /* A later wait gets the code. */
    CHECK_RC(asyncio_process_send_signal(p, 0), 0);
    CHECK_RC(asyncio_process_kill(p), 0);
    CHECK_INT(WAIT(p), -SIGKILL);
    CHECK_INT(WAIT(p), -SIGKILL); /* and again */
    asyncio_process_release(p);
    return 0;
}

static void test_wait_cancelled_or_timed_out_leaves_the_child_running_on_both_backends(
    void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_wait_stopped, NULL), 0);
}

static int main_many_waiters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    enum { N = 6 };
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE};
    asyncio_process_t *p = SHELL("read x; exit 7", &o);
    int code = 0;
    CHECK_RC(asyncio_process_returncode(p, &code), -EAGAIN);
    struct waiter w[N];
    asyncio_task_t *t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct waiter){p, 1, 0};
        t[i] = tu_spawn(waiter_task, &w[i], "waiter");
    }
    tu_yield(2);
    for (int i = 0; i < N; i++)
        CHECK_STR(asyncio_task_state(t[i]), "waiting");
    /* The end of its input ends it. */
    asyncio_stream_close(asyncio_process_stdin(p));
    CHECK_RC(asyncio_gather(N, (asyncio_future_t *const *)t, NULL, NULL, 0), 0);
    for (int i = 0; i < N; i++) {
        CHECK_RC(w[i].rc, 0);
        CHECK_INT(w[i].code, 7);
        asyncio_task_release(t[i]);
    }
    code = 0;
    CHECK_RC(asyncio_process_returncode(p, &code), 0);
    CHECK_INT(code, 7);
    CHECK_RC(asyncio_process_wait(p, NULL), 0); /* returncode may be NULL */
    /* Reaped: no signal goes to the pid, which may be another's now. */
    CHECK_RC(asyncio_process_send_signal(p, SIGTERM), -ESRCH);
    CHECK_RC(asyncio_process_send_signal(p, 0), -ESRCH);
    CHECK_RC(asyncio_process_terminate(p), -ESRCH);
    CHECK_RC(asyncio_process_kill(p), -ESRCH);
    CHECK_INT(child_state(asyncio_process_pid(p)), 'G');
    asyncio_process_release(p);
    return 0;
}

static void test_several_waiters_all_get_the_code_and_signals_after_the_reap_are_esrch(
    void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_many_waiters, NULL), 0);
}

static int main_grandchild(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* The shell exits at once; its background sleep holds stdout. */
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .start_new_session = 1};
    asyncio_process_t *p = SHELL("sleep 30 & echo $!; exit 0", &o);
    char line[32] = {0};
    ssize_t n = asyncio_stream_readline(asyncio_process_stdout(p), line, sizeof line - 1);
    CHECK(n > 1);
    long grandchild = strtol(line, NULL, 10);
    CHECK(grandchild > 1);
    /* Reported on its exit, though the pipe is still open. */
    CHECK_INT(WAIT(p), 0);
    CHECK_INT(asyncio_stream_at_eof(asyncio_process_stdout(p)), 0);
    /* The grandchild ends with its group (the session's, the child's pid). */
    CHECK_INT(kill(-asyncio_process_pid(p), SIGKILL), 0);
    if (grandchild > 1)
        kill((pid_t)grandchild, SIGKILL);
    /* Then the pipe ends. */
    CHECK_OUTPUT(asyncio_process_stdout(p), "");
    asyncio_process_release(p);
    return 0;
}

static void test_wait_reports_exit_while_a_grandchild_holds_stdout_on_both_backends(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_grandchild, NULL), 0);
}

/* =========================================================================
 * release and the loop's close
 * ========================================================================= */

static int main_release(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int before = count_fds();
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *sl[] = {"sleep", "30", NULL};
    /* Running: killed, and reaped by the loop. */
    asyncio_process_t *p = SPAWN(sl, &o);
    pid_t pid = asyncio_process_pid(p);
    CHECK_INT(child_state(pid), 'R');
    asyncio_process_release(p);
    CHECK(await_reaped(pid));
    CHECK_INT(count_fds(), before);

    /* Several at once, and one with its stdin half-written. */
    pid_t pids[5];
    for (int i = 0; i < 5; i++) {
        p = SPAWN(sl, &o);
        pids[i] = asyncio_process_pid(p);
        char big[100000] = {0};
        CHECK_RC(asyncio_stream_write(asyncio_process_stdin(p), big, sizeof big), 0);
        asyncio_process_release(p);
    }
    for (int i = 0; i < 5; i++)
        CHECK(await_reaped(pids[i]));
    CHECK_INT(count_fds(), before);

    /* Exited and reaped already: freed at once. */
    const char *t[] = {"true", NULL};
    p = SPAWN(t, &o);
    pid = asyncio_process_pid(p);
    CHECK_INT(WAIT(p), 0);
    asyncio_process_release(p);
    CHECK_INT(child_state(pid), 'G');
    CHECK_INT(count_fds(), before);

    /* Exited, not yet reaped. */
    p = SPAWN(t, &o);
    pid = asyncio_process_pid(p);
    /* Without letting the loop run (it stays a zombie): a blocking wait,
     * bounded, that reaps nothing. */
    for (int i = 0; i < 5000 && child_state(pid) == 'R'; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    CHECK_INT(child_state(pid), 'Z');
    asyncio_process_release(p);
    CHECK(await_reaped(pid));
    CHECK_INT(count_fds(), before);
    CHECK(no_children());
    return 0;
}

static void test_release_kills_and_reaps_a_running_child_on_both_backends(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++)
        assert_int_equal(run_on(backends[b], main_release, NULL), 0);
}

/* A task waits while the process is released: it must not crash (it
 * gets the code, or an error). */
static int main_release_while_waited(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *sl[] = {"sleep", "30", NULL};
    asyncio_process_t *p = SPAWN(sl, NULL);
    pid_t pid = asyncio_process_pid(p);
    struct waiter w = {p, 1, 0};
    asyncio_task_t *t = tu_spawn(waiter_task, &w, "waiter");
    tu_yield(2);
    asyncio_process_release(p);
    CHECK_RC(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    CHECK(w.rc < 0 || w.code == -SIGKILL);
    CHECK(await_reaped(pid));
    return 0;
}

static void test_release_while_another_task_waits(void **state)
{
    (void)state;
    assert_int_equal(run(main_release_while_waited, NULL), 0);
}

/* The same with a task in communicate: it must end (an error, or the
 * output and code) without touching what was freed. */
static int main_release_while_communicating(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    static char in[256 * 1024];
    struct comm_ctx c = {.p = SHELL("echo partial; exec sleep 30", &o), .in = in,
                         .inlen = sizeof in};
    pid_t pid = asyncio_process_pid(c.p);
    asyncio_task_t *t = tu_spawn(communicate_task, &c, "communicate");
    tu_yield(3);
    asyncio_process_release(c.p);
    CHECK_RC(asyncio_wait_for(t, 5.0, NULL), c.rc);
    asyncio_task_release(t);
    if (c.rc == 0) {
        free(c.out);
        free(c.err);
    } else {
        CHECK_PTR(c.out, NULL);
        CHECK_PTR(c.err, NULL);
    }
    CHECK(await_reaped(pid));
    return 0;
}

static void test_release_while_another_task_communicates(void **state)
{
    (void)state;
    assert_int_equal(run(main_release_while_communicating, NULL), 0);
}

struct close_ctx {
    pid_t pids[3];
    bool release_first;
};

static int main_left_running(void *arg, void **result)
{
    (void)result;
    struct close_ctx *c = arg;
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    const char *sl[] = {"sleep", "30", NULL};
    for (int i = 0; i < 3; i++) {
        asyncio_process_t *p = SPAWN(sl, i == 1 ? NULL : &o);
        c->pids[i] = asyncio_process_pid(p);
        if (c->release_first)
            asyncio_process_release(p);
        /* else: left to the loop's close */
    }
    return 0;
}

static void test_loop_close_kills_and_reaps_a_running_child_with_a_warning(void **state)
{
    (void)state;
    for (int b = 0; b < NBACKENDS; b++) {
        struct close_ctx c = {{0}, false};
        struct capture cap;
        char text[4096];
        capture_begin(&cap);
        int rc = run_on_unchecked(backends[b], main_left_running, &c);
        capture_end(&cap, text, sizeof text);
        tu_check_failures();
        assert_int_equal(rc, 0);
        for (int i = 0; i < 3; i++) {
            char want[96];
            snprintf(want, sizeof want, "child process %ld still running at loop close",
                     (long)c.pids[i]);
            if (!strstr(text, want))
                fail_msg("%s: no warning naming pid %ld; stderr was: %s", backends[b],
                         (long)c.pids[i], text);
            assert_int_equal(child_state(c.pids[i]), 'G');
        }
        assert_true(no_children());
    }
}

static void test_loop_close_reaps_released_children_without_a_warning(void **state)
{
    (void)state;
    struct close_ctx c = {{0}, true};
    struct capture cap;
    char text[4096];
    capture_begin(&cap);
    int rc = run_on_unchecked(NULL, main_left_running, &c);
    capture_end(&cap, text, sizeof text);
    tu_check_failures();
    assert_int_equal(rc, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(child_state(c.pids[i]), 'G');
    assert_true(no_children());
    /* Released is closed (asyncio warns of unclosed transports only). */
    if (strstr(text, "still running"))
        fail_msg("a warning for a child the program had released: %s", text);
}

/* SIGCHLD ignored by the program: the kernel reaps the children itself;
 * with pidfds the library says 255 (as asyncio) with a warning, or -ECHILD
 * at the spawn if the child was gone before it could be watched. Watching
 * through SIGCHLD, the spawn takes the signal back (its handler replaces
 * SIG_IGN): the code is the child's. */
static bool sigchld_watcher(void)
{
    const char *e = getenv("ASYNCIO_CHILD_WATCHER");
    return !have_pidfd || (e && strcmp(e, "sigchld") == 0);
}

static int main_sigchld_ignored(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE};
    asyncio_process_t *p = NULL;
    int rc = asyncio_create_subprocess_shell(&p, "read x; exit 3", &o);
    CHECK_RC(rc, 0);
    if (rc == 0) {
        asyncio_stream_close(asyncio_process_stdin(p));
        CHECK_INT(WAIT(p), sigchld_watcher() ? 3 : 255);
        asyncio_process_release(p);
    }
    return 0;
}

static void test_sigchld_ignored_by_the_program_gives_255_with_a_warning(void **state)
{
    (void)state;
    struct sigaction old, ign = {.sa_handler = SIG_IGN};
    sigaction(SIGCHLD, &ign, &old);
    struct capture cap;
    char text[4096];
    capture_begin(&cap);
    int rc = run_on_unchecked(NULL, main_sigchld_ignored, NULL);
    capture_end(&cap, text, sizeof text);
    sigaction(SIGCHLD, &old, NULL);
    tu_check_failures();
    assert_int_equal(rc, 0);
    if (sigchld_watcher())
        assert_null(strstr(text, "was reaped by someone else"));
    else
        assert_non_null(strstr(text, "was reaped by someone else"));
}

/* The library waits for its own children only. */
static int main_others_children(void *arg, void **result)
{
    (void)result;
    (void)arg;
    asyncio_subprocess_options_t o = {.stdout_mode = ASYNCIO_STDIO_PIPE};
    for (int i = 0; i < 5; i++) {
        asyncio_process_t *p = SHELL("echo x", &o);
        CHECK_OUTPUT(asyncio_process_stdout(p), "x\n");
        CHECK_INT(WAIT(p), 0);
        asyncio_process_release(p);
    }
    return 0;
}

/* The program's own SIGCHLD handler, which another library could have. */
static atomic_int program_sigchlds;

static void program_on_sigchld(int sig)
{
    (void)sig;
    atomic_fetch_add(&program_sigchlds, 1);
}

static void program_on_sigchld_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGCHLD && si && si->si_signo == SIGCHLD)
        atomic_fetch_add(&program_sigchlds, 1);
}

/* The program's handler (plain, or SA_SIGINFO) still runs (watching
 * through SIGCHLD, the library's passes each signal on, with its siginfo),
 * and its child is still its own to reap. */
static void own_child_and_handler(bool info)
{
    struct sigaction old, mine_sa;
    memset(&mine_sa, 0, sizeof mine_sa);
    if (info)
        mine_sa.sa_sigaction = program_on_sigchld_info;
    else
        mine_sa.sa_handler = program_on_sigchld;
    mine_sa.sa_flags = SA_RESTART | (info ? SA_SIGINFO : 0);
    sigemptyset(&mine_sa.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &mine_sa, &old), 0);
    atomic_store(&program_sigchlds, 0);
    fflush(NULL);
    pid_t mine = fork();
    assert_true(mine >= 0);
    if (mine == 0)
        _exit(42);
    int rc = run(main_others_children, NULL);
    int status = 0;
    pid_t got = waitpid(mine, &status, 0);
    int seen = atomic_load(&program_sigchlds);
    sigaction(SIGCHLD, &old, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(got, mine);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    assert_true(seen >= 2); /* its child's, and one at least of the library's five later */
}

static void test_a_child_of_the_program_s_own_is_left_alone(void **state)
{
    (void)state;
    own_child_and_handler(false);
    own_child_and_handler(true);
}

/* =========================================================================
 * many, and failures
 * ========================================================================= */

struct cycle {
    int index;
    int failures;
};

static int cycle_task(void *arg, void **result)
{
    (void)result;
    struct cycle *c = arg;
    const char *t[] = {"true", NULL};
    int kind = c->index % 4;
    asyncio_subprocess_options_t o = {0};
    if (kind == 1)
        o.stdout_mode = ASYNCIO_STDIO_PIPE;
    if (kind == 2)
        o = (asyncio_subprocess_options_t){.stdin_mode = ASYNCIO_STDIO_PIPE,
                                           .stdout_mode = ASYNCIO_STDIO_PIPE,
                                           .stderr_mode = ASYNCIO_STDIO_PIPE};
    if (kind == 3)
        o = (asyncio_subprocess_options_t){.stdin_mode = ASYNCIO_STDIO_DEVNULL,
                                           .stdout_mode = ASYNCIO_STDIO_PIPE,
                                           .stderr_mode = ASYNCIO_STDIO_STDOUT};
    asyncio_process_t *p = NULL;
    int rc = asyncio_create_subprocess_exec(&p, t, &o);
    if (rc != 0) {
        tu_fail_at(__FILE__, __LINE__, "spawn %d: %s", c->index, err(rc));
        c->failures++;
        return 0;
    }
    int code = -1;
    if (kind >= 2)
        rc = asyncio_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, &code);
    else
        rc = asyncio_process_wait(p, &code);
    if (rc != 0 || code != 0) {
        tu_fail_at(__FILE__, __LINE__, "cycle %d: %s, code %d", c->index, err(rc), code);
        c->failures++;
    }
    asyncio_process_release(p);
    return 0;
}

static int main_many_cycles(void *arg, void **result)
{
    (void)result;
    int total = (int)(intptr_t)arg;
    enum { AT_ONCE = 20 };
    int before = count_fds();
    struct cycle cy[AT_ONCE];
    asyncio_task_t *t[AT_ONCE];
    for (int done = 0; done < total && tu_failures == 0;) {
        int n = total - done < AT_ONCE ? total - done : AT_ONCE;
        /* One at a time for a tenth of them, 20 at once for the rest. */
        if (done < total / 10)
            n = 1;
        for (int i = 0; i < n; i++) {
            cy[i] = (struct cycle){done + i, 0};
            t[i] = tu_spawn(cycle_task, &cy[i], NULL);
        }
        CHECK_RC(asyncio_gather((size_t)n, (asyncio_future_t *const *)t, NULL, NULL, 0), 0);
        for (int i = 0; i < n; i++)
            asyncio_task_release(t[i]);
        done += n;
    }
    CHECK_INT(count_fds(), before);
    CHECK(no_children());
    return 0;
}

static void test_1000_spawn_wait_cycles_leave_no_zombie_and_no_fd(void **state)
{
    (void)state;
    NEED_REAL_SPAWN();
    int before = count_fds();
    assert_int_equal(run(main_many_cycles, (void *)(intptr_t)1000), 0);
    assert_int_equal(run_on("poll", main_many_cycles, (void *)(intptr_t)200), 0);
    assert_int_equal(count_fds(), before);
    /* No child of ours remains, exited or not. */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* Spawns with k fd numbers free under the limit, for k from 0 up to
 * enough for everything (three pipes, the pidfd): each step of the spawn
 * fails in turn with -EMFILE, the pidfd's after the child was started
 * (which must then be killed and reaped), and none leaves an fd or a
 * child behind. */
struct rlimit_ctx {
    int free_fds;
    bool pipes;
    int failures_seen, successes;
};

/* The (k+1)th fd number not in use: a limit under which exactly k are
 * free (the limit counts fd numbers; the lowest free ones are taken). */
static int limit_with_free(int k)
{
    bool used[4096] = {false};
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != dirfd(d) && fd < 4096)
            used[fd] = true;
    }
    closedir(d);
    for (int fd = 0, free_seen = 0; fd < 4096; fd++)
        if (!used[fd] && free_seen++ == k)
            return fd;
    return -1;
}

static int main_out_of_fds(void *arg, void **result)
{
    (void)result;
    struct rlimit_ctx *c = arg;
    int before = count_fds();
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE,
                                      .stderr_mode = ASYNCIO_STDIO_PIPE};
    if (!c->pipes)
        o = (asyncio_subprocess_options_t){0};
    const char *cat[] = {"cat", NULL};
    asyncio_process_t *p = NULL;
    struct rlimit old;
    CHECK_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    int limit = limit_with_free(c->free_fds);
    CHECK(limit > 0);
    struct rlimit lim = {(rlim_t)limit, old.rlim_max};
    CHECK_INT(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int rc = asyncio_create_subprocess_exec(&p, cat, &o);
    CHECK_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
    if (rc == 0 && c->pipes) {
        c->successes++;
        char *out = NULL;
        int code = -1;
        CHECK_RC(asyncio_process_communicate(p, "ok", 2, &out, NULL, NULL, NULL, &code), 0);
        CHECK_STR(out, "ok");
        CHECK_INT(code, 0);
        free(out);
        asyncio_process_release(p);
    } else if (rc == 0) {
        tu_fail_at(__FILE__, __LINE__, "no fd free, yet the child is watched");
        KILL_WAIT_RELEASE(p);
    } else {
        if (rc != -EMFILE)
            tu_fail_at(__FILE__, __LINE__, "with %d fds free: %s, expected EMFILE or success",
                       c->free_fds, err(rc));
        c->failures_seen++;
    }
    CHECK_INT(count_fds(), before);
    CHECK(no_children());
    return 0;
}

static void test_spawn_out_of_fds_leaves_no_fd_and_no_child(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    struct rlimit_ctx c = {0, true, 0, 0};
    for (c.free_fds = 0; c.free_fds <= 8; c.free_fds++) {
        int rc = run_on_unchecked(NULL, main_out_of_fds, &c);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
        tu_check_failures();
        assert_int_equal(rc, 0);
    }
    /* 0 to 5 free: the first, second or third pipe fails; from 6 on (the
     * pidfd takes the number of a child's end, closed by then), it works.
     * Through SIGCHLD, the loop's watcher takes one fd before the pipes
     * (an eventfd; two for a pipe where there is none): from 7 (8) on. */
    int watcher_fds = !sigchld_watcher() ? 0 : 1; /* an eventfd */
#ifdef TU_PORTABLE_FEATURES
    watcher_fds *= 2; /* a pipe: no eventfd in this build */
#endif
    assert_int_equal(c.failures_seen, 6 + watcher_fds);
    assert_int_equal(c.successes, 3 - watcher_fds);
    /* No pipe and no fd free: the child is started, then its pidfd cannot
     * be had: it must be killed and reaped (through SIGCHLD: the watcher's
     * fd cannot be had, and nothing is started). */
    struct rlimit_ctx c0 = {0, false, 0, 0};
    int rc = run_on_unchecked(NULL, main_out_of_fds, &c0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    tu_check_failures();
    assert_int_equal(rc, 0);
    assert_int_equal(c0.failures_seen, 1);
    assert_true(no_children());
}

/* =========================================================================
 * loops in two threads
 * ========================================================================= */

struct thread_ctx {
    int failures;
    char first[256];
};

static int thread_main(void *arg, void **result)
{
    (void)result;
    struct thread_ctx *c = arg;
    asyncio_subprocess_options_t o = {.stdin_mode = ASYNCIO_STDIO_PIPE,
                                      .stdout_mode = ASYNCIO_STDIO_PIPE};
    const char *cat[] = {"cat", NULL};
    for (int i = 0; i < 100; i++) {
        asyncio_process_t *p = NULL;
        int rc = asyncio_create_subprocess_exec(&p, cat, &o);
        char *out = NULL;
        int code = -1;
        asyncio_timeout_t scope;
        /* A cat that got the other thread's stdin pipe too would never
         * see its end of file. */
        if (rc == 0 && (rc = asyncio_timeout_enter(&scope, 10.0)) == 0) {
            rc = asyncio_process_communicate(p, "ping", 4, &out, NULL, NULL, NULL, &code);
            asyncio_timeout_exit(&scope);
        }
        if (rc != 0 || code != 0 || !out || strcmp(out, "ping") != 0) {
            if (c->failures++ == 0)
                snprintf(c->first, sizeof c->first, "cycle %d: rc %d, code %d, out %s", i, rc,
                         code, out ? out : "(null)");
            if (p && rc != 0)
                asyncio_process_kill(p);
        }
        free(out);
        asyncio_process_release(p);
    }
    return 0;
}

static void *thread_body(void *arg)
{
    struct thread_ctx *c = arg;
    int rc = asyncio_run(thread_main, c, NULL);
    if (rc != 0 && c->failures++ == 0)
        snprintf(c->first, sizeof c->first, "asyncio_run: %d", rc);
    return NULL;
}

static void test_loops_in_two_threads_spawn_at_once(void **state)
{
    (void)state;
    struct thread_ctx c[2] = {{0}, {0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_body, &c[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        if (c[i].failures)
            fail_msg("thread %d: %d failures; first: %s", i, c[i].failures, c[i].first);
    assert_true(no_children());
}

/* ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int h = helper_main(argc, argv);
    if (h >= 0)
        return h;
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) {
        fprintf(stderr, "cannot find this program (/proc/self/exe)\n");
        return 1;
    }
    self_exe[n] = '\0';
    int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    have_pidfd = pfd >= 0;
    if (pfd >= 0)
        close(pfd);
#ifdef TU_PORTABLE_FEATURES
    have_pidfd = false; /* the library was built to use none (src/syscaps.h) */
#endif
#ifdef TU_UNDER_TSAN
    /* ThreadSanitizer runs a signal's handler at the next call it
     * intercepts in the thread the signal came to (gcc 12's does not
     * intercept epoll_pwait2), which may be long after: watching children
     * through SIGCHLD cannot be tested here. */
    if (sigchld_watcher()) {
        printf("children watched through SIGCHLD: not under ThreadSanitizer (skipped)\n");
        return 0;
    }
#endif
    snprintf(tmpdir, sizeof tmpdir, "/tmp/asyncio-subprocess-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes_and_deaths_by_signal_on_both_backends),
        cmocka_unit_test(test_argv_is_passed_exactly),
        cmocka_unit_test(test_path_lookup_absolute_and_relative_paths),
        cmocka_unit_test(test_spawn_errors_leave_no_fd_and_no_child),
        cmocka_unit_test(test_cwd_and_env_are_honoured),
        cmocka_unit_test(test_name_is_looked_up_in_the_given_env_s_path_as_python_does),
        cmocka_unit_test(test_new_session_and_new_process_group),
        cmocka_unit_test(test_bad_options_and_arguments_are_einval),
        cmocka_unit_test(test_no_loop_is_eperm_and_a_callback_may_spawn_but_not_wait),
        cmocka_unit_test(test_without_pidfd_children_are_watched_through_sigchld),
        cmocka_unit_test(test_pipes_for_each_fd_on_both_backends),
        cmocka_unit_test(test_devnull_gives_eof_and_discards_output),
        cmocka_unit_test(test_fd_mode_uses_the_caller_s_pipe_and_files),
        cmocka_unit_test(test_stderr_to_stdout_merges_in_order),
        cmocka_unit_test(test_fd_mode_with_one_of_our_standard_fds),
        cmocka_unit_test(test_inherit_gives_the_child_our_fds),
        cmocka_unit_test(test_pipes_made_while_fd_0_is_closed),
        cmocka_unit_test(test_child_s_signal_mask_is_empty_with_handlers_installed),
        cmocka_unit_test(test_sigpipe_and_sigxfsz_are_default_in_the_child_as_python_s_restore_signals),
        cmocka_unit_test(test_no_fd_of_the_library_leaks_into_the_child_on_both_backends),
        cmocka_unit_test(test_no_inheritable_fd_of_the_program_reaches_the_child_as_python_s_close_fds),
        cmocka_unit_test(test_communicate_8_mib_through_cat_and_both_outputs_on_both_backends),
        cmocka_unit_test(test_communicate_buffers_codes_and_einval),
        cmocka_unit_test(test_child_that_reads_no_input_is_no_error_with_sigpipe_ignored),
        cmocka_unit_test(test_child_that_reads_no_input_raises_no_sigpipe),
        cmocka_unit_test(test_communicate_cancelled_or_timed_out_leaves_the_child_running),
        cmocka_unit_test(test_wait_cancelled_or_timed_out_leaves_the_child_running_on_both_backends),
        cmocka_unit_test(test_several_waiters_all_get_the_code_and_signals_after_the_reap_are_esrch),
        cmocka_unit_test(test_wait_reports_exit_while_a_grandchild_holds_stdout_on_both_backends),
        cmocka_unit_test(test_release_kills_and_reaps_a_running_child_on_both_backends),
        cmocka_unit_test(test_release_while_another_task_waits),
        cmocka_unit_test(test_release_while_another_task_communicates),
        cmocka_unit_test(test_loop_close_kills_and_reaps_a_running_child_with_a_warning),
        cmocka_unit_test(test_loop_close_reaps_released_children_without_a_warning),
        cmocka_unit_test(test_sigchld_ignored_by_the_program_gives_255_with_a_warning),
        cmocka_unit_test(test_a_child_of_the_program_s_own_is_left_alone),
        cmocka_unit_test(test_1000_spawn_wait_cycles_leave_no_zombie_and_no_fd),
        cmocka_unit_test(test_spawn_out_of_fds_leaves_no_fd_and_no_child),
        cmocka_unit_test(test_loops_in_two_threads_spawn_at_once),
    };
    /* $TU_SUBPROCESS_ONLY: run the tests whose names hold it (debugging). */
    const char *only = getenv("TU_SUBPROCESS_ONLY");
    struct CMUnitTest chosen[sizeof tests / sizeof tests[0]];
    size_t n_chosen = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!only || strstr(tests[i].name, only))
            chosen[n_chosen++] = tests[i];
    int rc = tu_run_group_tests_(("subprocess"), chosen, n_chosen, NULL, NULL);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
