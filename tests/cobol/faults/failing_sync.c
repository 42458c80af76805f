/*
 * Preloaded into a region's SEPs by tests/integration/test_log_sync_failure.py: while the file
 * named by $ESRT_TEST_FAIL_SYNC exists, fsync and fdatasync fail with EIO, as they do when a
 * disk goes bad under a running region.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int sync_or_fail(const char *name, int fd)
{
    const char *flag = getenv("ESRT_TEST_FAIL_SYNC");
    int (*real)(int);
    if (flag != NULL && access(flag, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    real = (int (*)(int))dlsym(RTLD_NEXT, name);
    return real(fd);
}

int fsync(int fd)
{
    return sync_or_fail("fsync", fd);
}

int fdatasync(int fd)
{
    return sync_or_fail("fdatasync", fd);
}
