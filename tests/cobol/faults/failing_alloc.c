/*
 * Preloaded into a COBOL program by tests/integration/test_esfh_hardening.py: every malloc,
 * calloc and realloc of a size within $ESRT_TEST_FAIL_ALLOC ("LOW-HIGH", in bytes) fails, as
 * allocations do when a process runs out of memory. The range picks out the buffers a test
 * means (they are sized by a file's record length) and leaves the rest of the program alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* glibc's own allocator: calling it needs no dlsym, which itself allocates. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *block, size_t size);

static int fails(size_t size)
{
    static int parsed;
    static unsigned long low = 1, high;
    if (!parsed) {
        /* getenv and strtoul do not allocate, so this is safe inside malloc. */
        const char *range = getenv("ESRT_TEST_FAIL_ALLOC");
        char *end;
        if (range != NULL) {
            low = strtoul(range, &end, 10);
            high = *end == '-' ? strtoul(end + 1, NULL, 10) : low;
        }
        parsed = 1;
    }
    if (size < low || size > high)
        return 0;
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t size)
{
    return fails(size) ? NULL : __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return __libc_calloc(count, size);      /* overflows: glibc refuses it itself */
    return fails(count * size) ? NULL : __libc_calloc(count, size);
}

void *realloc(void *block, size_t size)
{
    return fails(size) ? NULL : __libc_realloc(block, size);
}
