/* Checkpoints and log files of the data environment.
 *
 * Every commit appends to Berkeley DB's log, and nothing else ever removes a log file: without
 * checkpoints a region's data disk fills with logs (about 1 MB per few hundred calls), and
 * recovery after a crash replays all of them. The region calls esfh_env_checkpoint()
 * periodically: the checkpoint writes the cache's dirty pages to the data files, so recovery
 * starts from it, and the log files before it are no longer needed for normal recovery. */

#include <errno.h>
#include <stdlib.h>

#include "esfh_internal.h"

int esfh_env_checkpoint(int remove_logs, int *removed)
{
    /* Not esfh_env(): the region calls this, and must not open an environment it gave up. */
    DB_ENV *env = esfh_env_if_open();
    char **names = NULL, **name;
    int ret;

    *removed = 0;
    if (env == NULL)
        return EINVAL;
    ret = env->txn_checkpoint(env, 0, 0, 0);
    if (ret != 0) {
        esfh_set_error("ESFH: checkpoint failed: %s", db_strerror(ret));
        return ret;
    }
    if (!remove_logs)
        return 0;
    /* Listed first (only counted), then removed: the count is what the region reports. */
    ret = env->log_archive(env, &names, 0);
    if (ret != 0) {
        esfh_set_error("ESFH: listing the log files recovery no longer needs failed: %s",
                       db_strerror(ret));
        return ret;
    }
    if (names != NULL) {
        for (name = names; *name != NULL; name++)
            (*removed)++;
        free(names);
    }
    if (*removed == 0)
        return 0;
    ret = env->log_archive(env, NULL, DB_ARCH_REMOVE);
    if (ret != 0)
        esfh_set_error("ESFH: removing the log files recovery no longer needs failed: %s",
                       db_strerror(ret));
    return ret;
}
