/*
 * Preloaded into a region's SEPs by tests/integration/test_sep_dies_holding_mutex.py: the one
 * SEP that starts while the file named by $ESRT_TEST_DIE_HOLDING_MUTEX exists (it removes the
 * file, so only one does) kills itself with SIGKILL right after taking its first mutex inside
 * Berkeley DB, as it opens the data environment. Berkeley DB cannot tell that such a mutex is
 * orphaned: whoever takes it next waits for ever, the region's failchk included.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int armed;

__attribute__((constructor)) static void arm_if_chosen(void)
{
    const char *flag = getenv("ESRT_TEST_DIE_HOLDING_MUTEX");
    /* unlink succeeds for one process only: the others run normally. */
    armed = flag != NULL && unlink(flag) == 0;
}

static int called_by_berkeley_db(void *caller)
{
    Dl_info where;
    return dladdr(caller, &where) != 0 && where.dli_fname != NULL &&
           strstr(where.dli_fname, "libdb-") != NULL;
}

int pthread_mutex_lock(pthread_mutex_t *mutex)
{
    static int (*real_lock)(pthread_mutex_t *);
    int ret;
    if (real_lock == NULL)
        real_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    ret = real_lock(mutex);
    if (armed && ret == 0 && called_by_berkeley_db(__builtin_return_address(0)))
        kill(getpid(), SIGKILL);
    return ret;
}
