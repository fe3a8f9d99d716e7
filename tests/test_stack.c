/*
 * Task stacks: overflow reports, and running out of memory or of memory
 * mappings, each in a child process (a crash there is a test failure, not
 * the end of the suite).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under ASan, faults go to its own handler and it needs terabytes of
 * address space: the tests that depend on either are skipped there. */
#ifdef TU_UNDER_ASAN
static const int under_asan = 1;
#else
static const int under_asan = 0;
#endif
/* TSan too reserves terabytes of address space, and counts every task
 * context as a thread with memory mappings of its own (testutil.h): the
 * tests that exhaust memory or mappings are skipped there. Overflow
 * reports work under TSan. */
#ifdef TU_UNDER_TSAN
static const int under_tsan = 1;
#else
static const int under_tsan = 0;
#endif

static int overflow_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return tu_recurse(1 << 20);
}

static int overflow_main(void *arg, void **result)
{
    (void)result;
    asyncio_task_t *t;
    asyncio_task_options_t opts = {.name = arg, .stack_size = 64 * 1024};
    if (asyncio_create_task_ex(&t, overflow_task, NULL, &opts) < 0)
        return -1;
    asyncio_sleep(0.01); /* others run first */
    return asyncio_await(t, NULL);
}

static void child_overflow_named(void)
{
    asyncio_run(overflow_main, "worker-7", NULL);
}

static void child_overflow_unnamed(void)
{
    asyncio_run(overflow_main, NULL, NULL);
}

static void test_overflow_names_the_task_and_its_stack_size(void **state)
{
    (void)state;
    if (under_asan)
        skip();
    struct tu_child c;
    tu_run_child(child_overflow_named, &c);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGABRT);
    assert_string_equal(c.err, "asyncio: task \"worker-7\" overflowed its 64 KiB stack\n");

    tu_run_child(child_overflow_unnamed, &c);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGABRT);
    /* main is Task-1, the recursing task Task-2 */
    assert_string_equal(c.err, "asyncio: task \"Task-2\" overflowed its 64 KiB stack\n");
}

static int null_task(void *arg, void **result)
{
    (void)result;
    return *(volatile int *)arg; /* a fault that is not an overflow */
}

static int null_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t;
    if (asyncio_create_task(&t, null_task, NULL, "faulty") < 0)
        return -1;
    return asyncio_await(t, NULL);
}

static void child_null(void)
{
    asyncio_run(null_main, NULL, NULL);
}

static void test_other_faults_keep_the_default_action(void **state)
{
    (void)state;
    if (under_asan)
        skip();
    struct tu_child c;
    tu_run_child(child_null, &c);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGSEGV);
    assert_null(strstr(c.err, "overflowed"));
}

/* Create sleeping tasks until creation fails; the failure must be an error
 * code, and the loop must go on working afterwards. */
static int sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return asyncio_sleep(INFINITY) == -ECANCELED ? 0 : -1;
}

static int exhaust_main(void *arg, void **result)
{
    (void)result;
    long limit = *(long *)arg;
    long n = 0;
    int rc = 0;
    while (n < limit && (rc = asyncio_create_task(NULL, sleeper, NULL, NULL)) == 0)
        n++;
    if (rc != -ENOMEM && rc != -EAGAIN) {
        fprintf(stderr, "created %ld tasks, then rc=%d\n", n, rc);
        return 10;
    }
    if (n < 100) {
        fprintf(stderr, "only %ld tasks before the limit\n", n);
        return 11;
    }
    if (asyncio_sleep(0) != 0 || (size_t)n + 1 != asyncio_task_count())
        return 12;
    return 0; /* asyncio_run cancels the sleepers */
}

static void child_exhaust_memory(void)
{
    /* 256 MiB of address space: a few hundred stacks of 256 KiB. */
    struct rlimit rl = {256L << 20, 256L << 20};
    setrlimit(RLIMIT_AS, &rl);
    long limit = 100000;
    int rc = asyncio_run(exhaust_main, &limit, NULL);
    tu_child_exit(rc == 0 ? 0 : 20 + (rc > 0 ? rc : 9));
}

static void test_out_of_memory_fails_task_creation_cleanly(void **state)
{
    (void)state;
    if (under_asan || under_tsan)
        skip();
    struct tu_child c;
    tu_run_child(child_exhaust_memory, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status %#x: %s", c.status, c.err);
}

static long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long n = -1;
    if (f) {
        if (fscanf(f, "%ld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static void child_exhaust_mappings(void)
{
    /* With mprotect guards every stack costs two mappings. */
    setenv("ASYNCIO_STACK_GUARD", "mprotect", 1);
    long limit = max_map_count() / 2 + 1000;
    int rc = asyncio_run(exhaust_main, &limit, NULL);
    tu_child_exit(rc == 0 ? 0 : 20 + (rc > 0 ? rc : 9));
}

static void test_out_of_mappings_fails_task_creation_cleanly(void **state)
{
    (void)state;
    long maps = max_map_count();
    if (maps < 0 || maps > 200000)
        skip(); /* unknown, or too many to reach quickly */
    if (under_asan || under_tsan)
        skip();
    struct tu_child c;
    tu_run_child(child_exhaust_mappings, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status %#x: %s", c.status, c.err);
}

/* Stacks are reused: many short tasks in turn, with the default and with
 * custom sizes, each writing over most of its stack. */
static int stack_user(void *arg, void **result)
{
    (void)result;
    size_t kib = (size_t)(uintptr_t)arg;
    volatile char buf[48 * 1024];
    memset((char *)buf, (int)kib, kib ? sizeof buf : 1024);
    asyncio_sleep(0);
    return buf[100] == (char)kib ? 0 : -EIO;
}

static int reuse_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int round = 0; round < 50; round++) {
        asyncio_task_t *t[20];
        for (int i = 0; i < 20; i++) {
            asyncio_task_options_t o = {.stack_size = i % 3 ? 0 : 64 * 1024};
            CHECK_INT(asyncio_create_task_ex(&t[i], stack_user, (void *)(uintptr_t)(i % 2 ? 48 : 0),
                                             &o), 0);
        }
        CHECK_INT(asyncio_gather(20, t, NULL, NULL, 0), 0);
        for (int i = 0; i < 20; i++)
            asyncio_task_release(t[i]);
    }
    return 0;
}

static void test_stacks_are_reused_across_tasks_and_sizes(void **state)
{
    (void)state;
    assert_int_equal(tu_run(reuse_main, NULL, NULL), 0);
}

/* Twelve sizes, more than the arena has classes (src/stack.h): the first
 * ones get chunks of their own, the rest are mapped alone; each task
 * writes over a part of its stack and checks it after a switch, three
 * rounds over (a class keeps an empty chunk for the next round). */
static int sized_user(void *arg, void **result)
{
    (void)result;
    volatile char buf[8 * 1024];
    memset((char *)buf, (int)(uintptr_t)arg, sizeof buf);
    if (asyncio_sleep(0) < 0)
        return -EIO;
    for (size_t i = 0; i < sizeof buf; i += 512)
        if (buf[i] != (char)(uintptr_t)arg)
            return -EIO;
    return 0;
}

static int sizes_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    enum { SIZES = 12, EACH = 5 };
    for (int round = 0; round < 3; round++) {
        asyncio_task_t *t[SIZES * EACH];
        for (int i = 0; i < SIZES * EACH; i++) {
            asyncio_task_options_t o = {.stack_size = (size_t)(24 + 4 * (i % SIZES)) * 1024};
            CHECK_INT(asyncio_create_task_ex(&t[i], sized_user, (void *)(uintptr_t)(i + 1), &o), 0);
        }
        CHECK_INT(asyncio_gather(SIZES * EACH, t, NULL, NULL, 0), 0);
        for (int i = 0; i < SIZES * EACH; i++)
            asyncio_task_release(t[i]);
    }
    return 0;
}

static void test_stacks_of_many_sizes(void **state)
{
    (void)state;
    assert_int_equal(tu_run(sizes_main, NULL, NULL), 0);
}

/*
 * Stack clash: a frame larger than a page, whose first access is below the
 * stack. Code built with -fstack-clash-protection touches a large frame
 * page by page, so however large the frame, the guard region catches it
 * (stack_probed.c, built with the flag where the compiler has it). Code
 * built without it (this file) is caught if the frame is smaller than the
 * guard region; with a one-page guard it wrote into the neighbouring
 * stack unseen. The loop's stacks are 16 KiB here, so that neighbours are
 * slots of one mapping, as with the default size.
 */
#ifdef ASYNCIO_TEST_PROBED_FRAMES
int tu_probed_big_frame(int depth);
#endif

static int __attribute__((noinline)) unprobed_frame(int depth)
{
    /* Below the 64 KiB default guard. Volatile stores, lowest address
     * first: a compiler may not drop or shrink them (a memset of a local
     * that is read once, clang reduces to that one byte). */
    volatile char frame[40 * 1024];
    for (size_t i = 0; i < sizeof frame; i += 256)
        frame[i] = (char)depth;
    return frame[depth % 4096];
}

static int clash_task(void *arg, void **result)
{
    (void)result;
#ifdef ASYNCIO_TEST_PROBED_FRAMES
    if (arg)
        return tu_probed_big_frame(3);
#endif
    return unprobed_frame(arg ? 3 : 5);
}

static int clash_main(void *arg, void **result)
{
    (void)result;
    asyncio_task_t *t[3];
    for (int i = 0; i < 3; i++) {
        asyncio_task_options_t o = {.name = i == 1 ? "clasher" : "neighbour"};
        if (i != 1) {
            if (asyncio_create_task_ex(&t[i], sleeper, NULL, &o) < 0)
                return -1;
        } else if (asyncio_create_task_ex(&t[i], clash_task, arg, &o) < 0) {
            return -1;
        }
    }
    asyncio_sleep(0.01);
    asyncio_await(t[1], NULL);
    return 0; /* not reached if the overflow is seen */
}

static void clash_child(void *probed)
{
    asyncio_run_options_t opts = {.stack_size = 16 * 1024};
    asyncio_run_ex(clash_main, probed, NULL, &opts);
}

static void child_clash_unprobed(void)
{
    clash_child(NULL);
}

static void child_clash_probed(void)
{
    clash_child("probed");
}

static void check_clash_reported(void (*fn)(void))
{
    struct tu_child c;
    tu_run_child(fn, &c);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT ||
        strcmp(c.err, "asyncio: task \"clasher\" overflowed its 16 KiB stack\n") != 0)
        fail_msg("no overflow report: status %#x, stderr: \"%s\"", (unsigned)c.status, c.err);
}

static void test_frame_smaller_than_the_guard_is_reported(void **state)
{
    (void)state;
    if (under_asan)
        skip();
    check_clash_reported(child_clash_unprobed);
}

static void test_probed_frame_larger_than_the_guard_is_reported(void **state)
{
    (void)state;
#ifndef ASYNCIO_TEST_PROBED_FRAMES
    skip(); /* the compiler has no -fstack-clash-protection */
#endif
    if (under_asan)
        skip();
    check_clash_reported(child_clash_probed);
}

/* The guard size is an option: out of range is -EINVAL; a larger one
 * works. */
static int guard_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *t = tu_spawn(stack_user, (void *)(uintptr_t)48, NULL);
    CHECK_INT(asyncio_await(t, NULL), 0);
    asyncio_task_release(t);
    return 0;
}

static void test_stack_guard_option(void **state)
{
    (void)state;
    asyncio_run_options_t big = {.stack_guard = ASYNCIO_STACK_GUARD_MAX};
    assert_int_equal(tu_run_ex(guard_main, NULL, NULL, &big), 0);
    asyncio_run_options_t small = {.stack_guard = 1};
    assert_int_equal(tu_run_ex(guard_main, NULL, NULL, &small), 0);
    asyncio_run_options_t bad = {.stack_guard = ASYNCIO_STACK_GUARD_MAX + 1};
    assert_int_equal(asyncio_run_ex(guard_main, NULL, NULL, &bad), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_names_the_task_and_its_stack_size),
        cmocka_unit_test(test_other_faults_keep_the_default_action),
        cmocka_unit_test(test_out_of_memory_fails_task_creation_cleanly),
        cmocka_unit_test(test_out_of_mappings_fails_task_creation_cleanly),
        cmocka_unit_test(test_stacks_are_reused_across_tasks_and_sizes),
        cmocka_unit_test(test_stacks_of_many_sizes),
        cmocka_unit_test(test_frame_smaller_than_the_guard_is_reported),
        cmocka_unit_test(test_probed_frame_larger_than_the_guard_is_reported),
        cmocka_unit_test(test_stack_guard_option),
    };
    return tu_run_group_tests_name("stack", tests, NULL, NULL);
}
