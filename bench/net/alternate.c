/* bench/net/alternate.c: run load generators in turn, a slice at a time.
 *
 *   alternate [--slice S] OUT1 CMD1 [ARG]... -- OUT2 CMD2 [ARG]... [-- ...]
 *
 * Starts every command stopped (its output to OUTi), then lets one run at a
 * time: SIGCONT to the first, S seconds (default 0.05), SIGSTOP, the next,
 * ..., then backwards, until all have exited. A load generator that cannot
 * take turns itself (wrk, redis-benchmark) thus loads its server while the
 * others' servers wait, and the machine's drift falls on all of them alike,
 * as echo_load does for the echo servers. When one has exited the rest go
 * on in turn.
 *
 * Prints `name value unit` lines: cI.active_s (the time command I was let
 * run, to the nanosecond: SIGCONT sent until it was seen stopped or
 * exited), cI.slices, cI.cpu_s (its user + system time), cI.status (its
 * exit status; 128 + N if killed by signal N). The command's own rates
 * count wall time, stopped time included: divide its counts by
 * cI.active_s instead. Exits 0 if every command exited 0, else 1; 2 on bad
 * usage.
 *
 * The commands get SIGSTOP, which nothing can catch: a command must not
 * mind being stopped (its peers see a client that pauses). Every child is
 * killed if alternate itself gets SIGINT or SIGTERM.
 *
 *   cc -O2 -o alternate alternate.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 8

struct cmd {
    char **argv;
    const char *out;
    pid_t pid;
    int done;
    int status;
    double active_s;
    double cpu_s; /* its user + system time, from wait4() */
    int slices;
};

static struct cmd cmds[MAX_CMDS];
static int ncmds;
static volatile sig_atomic_t quit;

static void on_quit(int sig)
{
    quit = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: alternate [--slice S] OUT1 CMD1 [ARG]... -- OUT2 CMD2 [ARG]... [-- ...]\n");
    exit(2);
}

/* Fork c stopped, its output to c->out. */
static void start(struct cmd *c)
{
    int fd = open(c->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "alternate: %s: %s\n", c->out, strerror(errno));
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("alternate: fork");
        exit(1);
    }
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        raise(SIGSTOP); /* the parent lets it go on */
        execvp(c->argv[0], c->argv);
        fprintf(stderr, "alternate: %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    int st;
    if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st)) {
        fprintf(stderr, "alternate: %s did not start\n", c->argv[0]);
        exit(1);
    }
    c->pid = pid;
}

static void note_exit(struct cmd *c, int st, const struct rusage *ru)
{
    c->done = 1;
    c->cpu_s = (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
               (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kill_all(void)
{
    for (int i = 0; i < ncmds; i++)
        if (cmds[i].pid > 0 && !cmds[i].done) {
            kill(cmds[i].pid, SIGKILL);
            kill(cmds[i].pid, SIGCONT);
            int st;
            struct rusage ru;
            wait4(cmds[i].pid, &st, 0, &ru);
            note_exit(&cmds[i], st, &ru);
        }
}

/* Let c run for `slice` seconds (less if it exits), then stop it. SIGCHLD
 * is blocked: sigtimedwait() sleeps out the slice, waking early only to see
 * whether a child has exited. */
static void run_slice(struct cmd *c, double slice, const sigset_t *chld)
{
    double t0 = now_s(), end = t0 + slice;
    kill(c->pid, SIGCONT);
    int st;
    struct rusage ru;
    for (;;) {
        if (quit) {
            kill_all();
            exit(1);
        }
        pid_t r = wait4(c->pid, &st, WNOHANG, &ru);
        if (r == c->pid && (WIFEXITED(st) || WIFSIGNALED(st))) {
            note_exit(c, st, &ru);
            break;
        }
        double left = end - now_s();
        if (left <= 0) {
            kill(c->pid, SIGSTOP);
            /* until it has stopped (or exited meanwhile) */
            while (wait4(c->pid, &st, WUNTRACED, &ru) < 0 && errno == EINTR)
                ;
            if (WIFEXITED(st) || WIFSIGNALED(st))
                note_exit(c, st, &ru);
            break;
        }
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        sigtimedwait(chld, NULL, &ts); /* SIGCHLD, or the end of the slice */
    }
    c->active_s += now_s() - t0;
    c->slices++;
}

int main(int argc, char **argv)
{
    double slice = 0.05;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--slice") == 0) {
        char *end;
        slice = strtod(argv[i + 1], &end);
        if (end == argv[i + 1] || *end || !(slice > 0))
            usage();
        i += 2;
    }
    while (i < argc) {
        if (ncmds == MAX_CMDS || i + 1 >= argc)
            usage();
        struct cmd *c = &cmds[ncmds++];
        c->out = argv[i++];
        c->argv = &argv[i];
        while (i < argc && strcmp(argv[i], "--") != 0)
            i++;
        if (&argv[i] == c->argv)
            usage();
        if (i < argc)
            argv[i++] = NULL; /* ends this command's argv */
    }
    if (ncmds == 0)
        usage();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL); /* taken by sigtimedwait() only */
    for (int k = 0; k < ncmds; k++)
        start(&cmds[k]);
    for (int cycle = 0;; cycle++) {
        int left = 0;
        for (int j = 0; j < ncmds; j++) {
            struct cmd *c = &cmds[cycle % 2 ? ncmds - 1 - j : j];
            if (!c->done) {
                run_slice(c, slice, &chld);
                left++;
            }
        }
        if (!left)
            break;
    }
    int bad = 0;
    for (int k = 0; k < ncmds; k++) {
        printf("c%d.active_s %.6f s\n", k + 1, cmds[k].active_s);
        printf("c%d.slices %d slices\n", k + 1, cmds[k].slices);
        printf("c%d.cpu_s %.6f s\n", k + 1, cmds[k].cpu_s);
        printf("c%d.status %d status\n", k + 1, cmds[k].status);
        bad |= cmds[k].status != 0;
    }
    return bad;
}
