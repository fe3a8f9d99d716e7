/*
 * numbers_letters.c: two tasks taking turns.
 *
 * The Python it mirrors:
 *
 *     async def print_numbers():
 *         for i in range(10):
 *             print(i)
 *             await asyncio.sleep(1)
 *
 *     async def print_letters():
 *         for letter in "abcdefghij":
 *             print(letter)
 *             await asyncio.sleep(1)
 *
 *     async def main():
 *         numbers = asyncio.create_task(print_numbers())
 *         letters = asyncio.create_task(print_letters())
 *         await numbers
 *         await letters
 *
 *     asyncio.run(main())
 *
 * Each task prints, then sleeps; while one sleeps the other runs, so the
 * output interleaves: 0 a 1 b 2 c ... 9 j. Both sleep at the same time, so
 * the whole run takes about 10 seconds, not 20.
 */
#include <asyncio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_numbers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 10; i++) {
        printf("%d\n", i);
        int rc = asyncio_sleep(1.0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int print_letters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (const char *letter = "abcdefghij"; *letter != '\0'; letter++) {
        printf("%c\n", *letter);
        int rc = asyncio_sleep(1.0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int async_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    asyncio_task_t *numbers = NULL, *letters = NULL;

    /* asyncio.create_task(): the tasks are scheduled now and start running
     * as soon as this task waits for something. */
    int rc = asyncio_create_task(&numbers, print_numbers, NULL, "numbers");
    if (rc < 0)
        return rc;
    rc = asyncio_create_task(&letters, print_letters, NULL, "letters");
    if (rc < 0) {
        asyncio_task_release(numbers);
        return rc;
    }

    /* await numbers; await letters. asyncio_await() returns the task's own
     * return value (here 0), or its error. */
    rc = asyncio_await(numbers, NULL);
    if (rc >= 0)
        rc = asyncio_await(letters, NULL);

    /* We asked for references to the tasks, so we give them back. */
    asyncio_task_release(numbers);
    asyncio_task_release(letters);
    return rc < 0 ? rc : 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = asyncio_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "numbers_letters: %s\n", strerror(-rc));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
