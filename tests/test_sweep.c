/* The stack sweep (asyncio_loop_set_stack_sweep()): a task parked through
 * two passes has the live part of its stack moved to the heap and its
 * pages given back (the resident size falls, on Linux); its locals are
 * intact when it runs again, whatever woke it (a timer, a peer's write, a
 * cancellation, the loop's close); tasks that run, wait in a timeout
 * scope, own a task group, wait for other tasks or opted out are never
 * swept; bad input gets errors.
 *
 * Every wait for a pass is a bounded poll of the sweep's counts, never a
 * timing threshold. */
#define _GNU_SOURCE
#include "testutil.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define THRESHOLD 0.02 /* seconds: a pass every 20 ms */

/* Not under ThreadSanitizer, Valgrind, or the portable switch: there the
 * options are refused with -ENOTSUP, and the tests that need it skip. */
static bool g_available;

static void probe(void)
{
    asyncio_run_options_t opts = {.stack_sweep = 1};
    asyncio_loop_t *loop;
    int rc = asyncio_new_event_loop(&loop, &opts);
    if (rc == 0) {
        asyncio_loop_close(loop);
        asyncio_loop_unref(loop);
    }
    g_available = rc == 0;
    if (rc != 0 && rc != -ENOTSUP)
        fail_msg("a loop with the sweep on: %d", rc);
}

#define NEED_SWEEP()                                                           \
    do {                                                                       \
        if (!g_available)                                                      \
            skip();                                                            \
    } while (0)

static asyncio_loop_t *running(void)
{
    return asyncio_get_running_loop();
}

static size_t swept_tasks(void)
{
    size_t n = 0;
    CHECK_INT(asyncio_loop_stack_sweep_stats(running(), &n, NULL), 0);
    return n;
}

/* Wait (up to 10 s) until at least n tasks are swept. */
static void wait_swept(size_t n)
{
    for (int i = 0; i < 1000 && swept_tasks() < n; i++)
        CHECK_INT(asyncio_sleep(0.01), 0);
    if (swept_tasks() < n)
        tu_fail_at(__FILE__, __LINE__, "%zu tasks swept after 10 s, expected %zu", swept_tasks(), n);
}

/* The main task polls in short sleeps, so that it is never swept itself. */
static int run_swept(asyncio_fn fn)
{
    asyncio_run_options_t opts = {.stack_sweep = THRESHOLD};
    return tu_run_ex(fn, NULL, NULL, &opts);
}

/* ---- locals survive, pages go ------------------------------------------ */

#define LOCALS 700

static void fill(unsigned char *b, uintptr_t seed)
{
    for (size_t i = 0; i < LOCALS; i++)
        b[i] = (unsigned char)(i * 31 + seed);
}

static bool intact(const unsigned char *b, uintptr_t seed)
{
    for (size_t i = 0; i < LOCALS; i++)
        if (b[i] != (unsigned char)(i * 31 + seed))
            return false;
    return true;
}

static asyncio_event_t g_go;

/* Fills a local array, waits for g_go, checks the array: 0, or -EIO. */
static int holder(void *arg, void **result)
{
    (void)result;
    unsigned char b[LOCALS];
    volatile unsigned char *keep = b; /* in memory, across the wait */
    fill(b, (uintptr_t)arg);
    int rc = asyncio_event_wait(&g_go);
    if (rc < 0)
        return rc;
    return intact((const unsigned char *)keep, (uintptr_t)arg) ? 0 : -EIO;
}

/* VmRSS + VmPTE (pte_only: VmPTE alone) in KiB, or -1 (no /proc). */
static long status_kib(bool pte_only)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = 0, v;
    while (fgets(line, sizeof line, f))
        if ((!pte_only && sscanf(line, "VmRSS: %ld", &v) == 1) || sscanf(line, "VmPTE: %ld", &v) == 1)
            kib += v;
    fclose(f);
    return kib;
}

static long rss_kib(void)
{
    return status_kib(false);
}

/* Does this kernel free a page table when MADV_DONTNEED empties the whole
 * 2 MiB it covers (Linux 6.15's page-table reclaim)? 8 MiB touched, given
 * back, VmPTE looked at. */
static bool kernel_frees_page_tables(void)
{
    const size_t span = 2u << 20, len = 4 * span;
    char *m = mmap(NULL, len + span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    char *a = m + (span - (uintptr_t)m % span) % span;
#ifdef MADV_NOHUGEPAGE
    madvise(m, len + span, MADV_NOHUGEPAGE);
#endif
    for (size_t i = 0; i < len; i += 4096)
        a[i] = 1;
    long touched = status_kib(true);
    madvise(a, len, MADV_DONTNEED);
    long after = status_kib(true);
    munmap(m, len + span);
    return touched > 0 && after >= 0 && touched - after >= 12; /* 4 tables of 4 KiB */
}

#define N_HOLDERS 2000

/* Are the library's guards markers here (MADV_GUARD_INSTALL, Linux 6.13),
 * which it removes with the pages of a chunk given back whole? Guards made
 * with mprotect stay, and so do the page tables under them. */
static bool guards_are_markers(void)
{
#ifdef TU_PORTABLE_FEATURES
    return false; /* the library does not use them */
#else
    const char *mode = getenv("ASYNCIO_STACK_GUARD");
    if (mode && strcmp(mode, "mprotect") == 0)
        return false;
    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    bool ok = madvise(m, (size_t)page, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(m, 2 * (size_t)page);
    return ok;
#endif
}

/* arg: the holders' stack size (0: the loop's default). */
static int main_pages(void *arg, void **result)
{
    (void)result;
    CHECK_INT(asyncio_event_init(&g_go), 0);
    asyncio_task_t **t = calloc(N_HOLDERS, sizeof *t);
    CHECK(t != NULL);
    long pte_base = status_kib(true);
    for (uintptr_t i = 0; i < N_HOLDERS; i++) {
        asyncio_task_options_t o = {.stack_size = (size_t)(uintptr_t)arg};
        CHECK_INT(asyncio_create_task_ex(&t[i], holder, (void *)i, &o), 0);
    }
    CHECK_INT(asyncio_sleep(0), 0); /* all parked, each with a page in use */
    long before = rss_kib();
    wait_swept(N_HOLDERS);
    long after = rss_kib();
    /* Whole chunks of swept stacks went back with their page tables, where
     * the kernel frees those: a few tables are left (the heap's, the chunk
     * of the running task), not one for every 2 MiB of stacks. Not under
     * ASan (its shadow of the stacks has page tables of its own), nor where
     * guards are made with mprotect. */
    long pte = status_kib(true);
#ifdef TU_UNDER_ASAN
    pte_base = -1;
#endif
    if (pte_base > 0 && pte > 0 && guards_are_markers() && kernel_frees_page_tables() &&
        pte - pte_base > 64)
        tu_fail_at(__FILE__, __LINE__, "page tables grew by %ld KiB for %d swept tasks",
                   pte - pte_base, N_HOLDERS);
    size_t bytes = 0;
    CHECK_INT(asyncio_loop_stack_sweep_stats(running(), NULL, &bytes), 0);
    CHECK(bytes >= (size_t)N_HOLDERS * LOCALS);
    for (int i = 0; i < N_HOLDERS; i++)
        CHECK(asyncio_task_swept_bytes(t[i]) > LOCALS);
    /* A page each (4 KiB) was resident; what is left is the heap copy, a
     * few hundred bytes more than the locals. Linux only: /proc. */
    if (before > 0 && after > 0)
        CHECK(before - after >= (long)N_HOLDERS * 2);
    CHECK_INT(asyncio_event_set(&g_go), 0);
    for (int i = 0; i < N_HOLDERS; i++) {
        CHECK_INT(asyncio_await(t[i], NULL), 0); /* each found its locals */
        CHECK_INT(asyncio_task_swept_bytes(t[i]), 0);
        asyncio_task_release(t[i]);
    }
    CHECK_INT(swept_tasks(), 0);
    free(t);
    asyncio_event_destroy(&g_go);
    return 0;
}

static void test_idle_tasks_give_their_pages_back_and_keep_their_locals(void **state)
{
    (void)state;
    NEED_SWEEP();
    assert_int_equal(run_swept(main_pages), 0);
}

/* The same with 64 KiB stacks, not the loop's default: they come from
 * chunks of their own size, given back whole the same way. */
static void test_idle_tasks_with_stacks_of_another_size(void **state)
{
    (void)state;
    NEED_SWEEP();
    asyncio_run_options_t opts = {.stack_sweep = THRESHOLD};
    assert_int_equal(tu_run_ex(main_pages, (void *)(uintptr_t)(64 * 1024), NULL, &opts), 0);
}

/* ---- the guards come back -------------------------------------------------- */

/* 64 tasks with 64 KiB stacks fill a chunk of their own; once all are
 * swept the chunk is given back whole, its guards with it. When they wake,
 * the guards are back before any of them runs: the one that then runs past
 * the end of its stack is reported as ever (in a child: the report ends
 * the program). Not under ASan, whose own handler takes the fault. */

static int overflower(void *arg, void **result)
{
    (void)result;
    int rc = asyncio_event_wait(&g_go);
    if (rc < 0 || !arg)
        return rc;
    return tu_recurse(1 << 20);
}

static int main_overflow(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 64 };
    asyncio_task_t *t[N];
    if (asyncio_event_init(&g_go) != 0)
        return -1;
    for (int i = 0; i < N; i++) {
        asyncio_task_options_t o = {.stack_size = 64 * 1024, .name = i == 5 ? "woken-5" : NULL};
        if (asyncio_create_task_ex(&t[i], overflower, i == 5 ? (void *)1 : NULL, &o) != 0)
            return -2;
    }
    size_t swept = 0;
    for (int i = 0; i < 1000 && swept < N; i++) {
        asyncio_sleep(0.01);
        asyncio_loop_stack_sweep_stats(asyncio_get_running_loop(), &swept, NULL);
    }
    if (swept < N)
        return -3;
    asyncio_event_set(&g_go);
    asyncio_gather(N, t, NULL, NULL, ASYNCIO_RETURN_EXCEPTIONS);
    return -4; /* not reached: woken-5 overflows */
}

static void child_overflow_after_sweep(void)
{
    asyncio_run_options_t opts = {.stack_sweep = THRESHOLD};
    int rc = asyncio_run_ex(main_overflow, NULL, NULL, &opts);
    fprintf(stderr, "no overflow report; asyncio_run_ex returned %d\n", rc);
    tu_child_exit(3);
}

static void test_swept_stacks_get_their_guards_back(void **state)
{
    (void)state;
    NEED_SWEEP();
#ifdef TU_UNDER_ASAN
    skip();
#endif
    struct tu_child c;
    tu_run_child(child_overflow_after_sweep, &c);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT ||
        strcmp(c.err, "asyncio: task \"woken-5\" overflowed its 64 KiB stack\n") != 0)
        fail_msg("no overflow report: status %#x, stderr: \"%s\"", (unsigned)c.status, c.err);
}

/* ---- what wakes a swept task ---------------------------------------------- */

static int sleeper(void *arg, void **result)
{
    (void)result;
    unsigned char b[LOCALS];
    volatile unsigned char *keep = b;
    fill(b, 7);
    int rc = asyncio_sleep(*(double *)arg);
    if (rc < 0)
        return rc;
    return intact((const unsigned char *)keep, 7) ? 0 : -EIO;
}

static int reader(void *arg, void **result)
{
    (void)result;
    char buf[64] = {0};
    unsigned char b[LOCALS];
    volatile unsigned char *keep = b;
    fill(b, 9);
    ssize_t n = asyncio_sock_recv(*(int *)arg, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    if (n != 5 || memcmp(buf, "hello", 5) != 0 || !intact((const unsigned char *)keep, 9))
        return -EIO;
    return 0;
}

static int main_wakers(void *arg, void **result)
{
    (void)arg, (void)result;
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    double long_sleep = 3600, short_sleep = 0.3;
    asyncio_task_t *timed = tu_spawn(sleeper, &short_sleep, "timed");
    asyncio_task_t *victim = tu_spawn(sleeper, &long_sleep, "victim");
    asyncio_task_t *io = tu_spawn(reader, &sv[0], "reader");
    wait_swept(3);
    CHECK(asyncio_task_swept_bytes(io) > 0);
    CHECK_INT(write(sv[1], "hello", 5), 5);          /* a peer's write */
    CHECK_INT(asyncio_await(io, NULL), 0);
    CHECK(asyncio_task_cancel(victim) >= 0);         /* a cancellation */
    CHECK_INT(asyncio_await(victim, NULL), -ECANCELED);
    CHECK_INT(asyncio_await(timed, NULL), 0);        /* its timer */
    asyncio_task_release(timed);
    asyncio_task_release(victim);
    asyncio_task_release(io);
    close(sv[0]);
    close(sv[1]);
    /* Left swept at the end of main: the loop's close cancels it, which
     * must give its stack back first (LeakSanitizer would see the copy). */
    CHECK_INT(asyncio_create_task(NULL, sleeper, &long_sleep, "left"), 0);
    wait_swept(1);
    return 0;
}

static void test_swept_tasks_wake_on_timers_io_cancellation_and_close(void **state)
{
    (void)state;
    NEED_SWEEP();
    assert_int_equal(run_swept(main_wakers), 0);
}

/* ---- what is never swept ---------------------------------------------------- */

static int scoped(void *arg, void **result)
{
    (void)arg, (void)result;
    asyncio_timeout_t scope;
    CHECK_INT(asyncio_timeout_enter(&scope, 3600), 0);
    int rc = asyncio_event_wait(&g_go);
    CHECK_INT(asyncio_timeout_exit(&scope), 0);
    return rc;
}

static int group_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    asyncio_taskgroup_t g;
    CHECK_INT(asyncio_taskgroup_enter(&g), 0);
    CHECK_INT(asyncio_taskgroup_create_task(&g, NULL, holder, NULL, NULL), 0);
    return asyncio_taskgroup_exit(&g, 0);
}

static int awaiter(void *arg, void **result)
{
    (void)result;
    return asyncio_await(arg, NULL);
}

static int busy(void *arg, void **result)
{
    (void)result;
    int *stop = arg;
    while (!*stop) {
        int rc = asyncio_sleep(0.001);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int main_exempt(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_INT(asyncio_event_init(&g_go), 0);
    int stop = 0;
    asyncio_task_t *s = tu_spawn(scoped, NULL, "scoped");
    asyncio_task_t *g = tu_spawn(group_owner, NULL, "group owner");
    asyncio_task_t *plain = tu_spawn(holder, (void *)3, "plain");
    asyncio_task_t *a = tu_spawn(awaiter, plain, "awaiter");
    asyncio_task_t *b = tu_spawn(busy, &stop, "busy");
    asyncio_task_options_t no = {.name = "opted out", .stack_sweep = -1};
    asyncio_task_t *o;
    CHECK_INT(asyncio_create_task_ex(&o, holder, (void *)4, &no), 0);
    /* The plain one and the group's child are swept; then a few passes
     * more, in which nothing else may be. */
    wait_swept(2);
    CHECK(asyncio_task_swept_bytes(plain) > 0);
    for (int pass = 0; pass < 5; pass++) {
        CHECK_INT(asyncio_sleep(THRESHOLD), 0);
        asyncio_task_t *never[] = {s, g, a, b, o};
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
            if (asyncio_task_swept_bytes(never[i]) != 0)
                tu_fail_at(__FILE__, __LINE__, "task \"%s\" was swept", asyncio_task_name(never[i]));
    }
    CHECK_INT(swept_tasks(), 2);
    stop = 1;
    CHECK_INT(asyncio_event_set(&g_go), 0);
    asyncio_task_t *all[] = {s, g, plain, a, b, o};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK_INT(asyncio_await(all[i], NULL), 0);
        asyncio_task_release(all[i]);
    }
    asyncio_event_destroy(&g_go);
    return 0;
}

static void test_running_scoped_grouping_awaiting_and_opted_out_tasks_are_not_swept(void **state)
{
    (void)state;
    NEED_SWEEP();
    assert_int_equal(run_swept(main_exempt), 0);
}

/* ---- turning it off, and the counters ------------------------------------- */

static int main_switches(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_INT(asyncio_event_init(&g_go), 0);
    asyncio_task_t *t = tu_spawn(holder, (void *)5, "holder");
    asyncio_task_t *u = tu_spawn(holder, (void *)6, "holder 2");
    wait_swept(2);
    /* Off: they keep their copies until they run. */
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), 0), 0);
    CHECK(asyncio_loop_get_stack_sweep(running()) == 0);
    CHECK_INT(swept_tasks(), 2);
    /* The counters' step does not restore: turning them on puts every
     * stack back at once. */
    CHECK_INT(asyncio_loop_set_task_counters(running(), 1), 0);
    CHECK_INT(swept_tasks(), 0);
    CHECK_INT(asyncio_task_swept_bytes(t), 0);
    CHECK_INT(asyncio_loop_set_task_counters(running(), 0), 0);
    /* On again: swept again. */
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), THRESHOLD), 0);
    CHECK(fabs(asyncio_loop_get_stack_sweep(running()) - THRESHOLD) < 1e-9);
    wait_swept(2);
    CHECK_INT(asyncio_event_set(&g_go), 0);
    CHECK_INT(asyncio_await(t, NULL), 0);
    CHECK_INT(asyncio_await(u, NULL), 0);
    asyncio_task_release(t);
    asyncio_task_release(u);
    asyncio_event_destroy(&g_go);
    return 0;
}

static void test_turning_the_sweep_off_and_the_counters_on(void **state)
{
    (void)state;
    NEED_SWEEP();
    assert_int_equal(run_swept(main_switches), 0);
}

/* ---- bad input ---------------------------------------------------------------- */

static int main_bad(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), -1), -EINVAL);
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), NAN), -EINVAL);
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), 2e9), -EINVAL);
    CHECK(asyncio_loop_get_stack_sweep(running()) == 0); /* off by default */
    CHECK_INT(asyncio_task_swept_bytes(NULL), -EINVAL);
    asyncio_future_t *f;
    CHECK_INT(asyncio_future_new(&f), 0);
    CHECK_INT(asyncio_task_swept_bytes(f), -EINVAL);
    asyncio_future_release(f);
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), 1), g_available ? 0 : -ENOTSUP);
    CHECK_INT(asyncio_loop_set_stack_sweep(running(), 0), 0);
    return 0;
}

static void test_bad_input_gets_errors(void **state)
{
    (void)state;
    assert_int_equal(asyncio_loop_set_stack_sweep(NULL, 1), -EINVAL);
    assert_true(asyncio_loop_get_stack_sweep(NULL) == -EINVAL);
    assert_int_equal(asyncio_loop_stack_sweep_stats(NULL, NULL, NULL), -EINVAL);
    asyncio_run_options_t nan = {.stack_sweep = NAN};
    assert_int_equal(tu_run_ex(main_bad, NULL, NULL, &nan), -EINVAL);
    setenv("ASYNCIO_STACK_SWEEP", "soon", 1);
    assert_int_equal(tu_run(main_bad, NULL, NULL), -EINVAL);
    setenv("ASYNCIO_STACK_SWEEP", "0", 1);
    assert_int_equal(tu_run(main_bad, NULL, NULL), 0);
    unsetenv("ASYNCIO_STACK_SWEEP");
    asyncio_run_options_t off = {.stack_sweep = -1};
    assert_int_equal(tu_run_ex(main_bad, NULL, NULL, &off), 0);
    if (!g_available) {
        asyncio_run_options_t on = {.stack_sweep = 1};
        assert_int_equal(tu_run_ex(main_bad, NULL, NULL, &on), -ENOTSUP);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_tasks_give_their_pages_back_and_keep_their_locals),
        cmocka_unit_test(test_idle_tasks_with_stacks_of_another_size),
        cmocka_unit_test(test_swept_stacks_get_their_guards_back),
        cmocka_unit_test(test_swept_tasks_wake_on_timers_io_cancellation_and_close),
        cmocka_unit_test(test_running_scoped_grouping_awaiting_and_opted_out_tasks_are_not_swept),
        cmocka_unit_test(test_turning_the_sweep_off_and_the_counters_on),
        cmocka_unit_test(test_bad_input_gets_errors),
    };
    probe();
    return tu_run_group_tests_name("sweep", tests, NULL, NULL);
}
