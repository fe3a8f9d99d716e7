/* bench/subprocess/spawn_bare.c: the limit for bench/bench_subprocess.c's
 * spawn workload: a bare posix_spawn() and waitpid(-1) loop, no event
 * loop, CONC children outstanding (a new one as soon as waitpid() has
 * reaped one).
 *
 *   spawn_bare spawn N CONC
 *
 * Output lines as sp_common.h says.
 *
 *   cc -O2 -o spawn_bare spawn_bare.c
 */
#define _GNU_SOURCE
#include "sp_common.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *const true_argv[] = {SP_PROGRAM, NULL};

/* n spawns, conc at a time: how many failed (not started, or not exit 0). */
static long run(long n, int conc)
{
    long started = 0, done = 0, failures = 0;
    int running = 0;
    while (done < n) {
        while (running < conc && started < n) {
            pid_t pid;
            started++;
            if (posix_spawn(&pid, SP_PROGRAM, NULL, NULL, true_argv, environ) != 0) {
                failures++;
                done++;
            } else {
                running++;
            }
        }
        if (running == 0)
            continue;
        int st;
        if (waitpid(-1, &st, 0) < 0) {
            if (errno == EINTR)
                continue;
            perror("spawn_bare: waitpid");
            exit(1);
        }
        running--;
        done++;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failures++;
    }
    return failures;
}

int main(int argc, char **argv)
{
    struct sp_args a;
    sp_parse_spawn(argc, argv, &a, "");
    run(SP_WARMUP(a.n), a.conc);
    struct sp_mark m0 = sp_mark();
    long failures = run(a.n, a.conc);
    sp_report_spawn(&a, m0, failures);
    return 0;
}
