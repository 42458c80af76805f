/*
 * Preloaded (LD_PRELOAD) into a region so that DB_ENV->failchk can clean up after a SEP that
 * was killed while it waited for a lock.
 *
 * Debian's Berkeley DB 5.3 uses process-shared pthread mutexes and condition variables. failchk
 * "refreshes" the mutex a dead waiter slept on: pthread_cond_destroy, then pthread_cond_init.
 * Since glibc 2.25, pthread_cond_destroy waits until every waiter has left the condition
 * variable; a killed process never leaves, so failchk hangs forever (seen here: the region stuck
 * in futex_wait under __mutex_refresh). For calls made by libdb we skip the destroy: the
 * following pthread_cond_init rewrites the whole object, and only the dead process waited on
 * it. Every other caller gets glibc's own pthread_cond_destroy.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

int pthread_cond_destroy(pthread_cond_t *cond)
{
    static int (*real_destroy)(pthread_cond_t *);
    Dl_info caller;
    if (dladdr(__builtin_return_address(0), &caller) != 0 && caller.dli_fname != NULL &&
        strstr(caller.dli_fname, "libdb-") != NULL)
        return 0;
    if (real_destroy == NULL)
        real_destroy = (int (*)(pthread_cond_t *))dlsym(RTLD_NEXT, "pthread_cond_destroy");
    return real_destroy(cond);
}
