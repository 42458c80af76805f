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

/* The checkpoint after which log files were last looked for removal. */
static DB_LSN g_archived_at;

static int remove_unneeded_logs(DB_ENV *env, int *removed)
{
    char **names = NULL, **name;
    DB_TXN_STAT *stat = NULL;
    DB_LSN last;
    int ret = env->txn_stat(env, &stat, 0);
    if (ret != 0) {
        esfh_set_error("ESFH: reading the last checkpoint failed: %s", db_strerror(ret));
        return ret;
    }
    last = stat->st_last_ckp;
    free(stat);
    /* No new checkpoint (the log did not grow enough): no file became unneeded. */
    if (log_compare(&last, &g_archived_at) == 0)
        return 0;
    /* Listed first (only counted), then removed: the count is what the caller reports. */
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
    if (*removed > 0) {
        ret = env->log_archive(env, NULL, DB_ARCH_REMOVE);
        if (ret != 0) {
            esfh_set_error("ESFH: removing the log files recovery no longer needs failed: %s",
                           db_strerror(ret));
            return ret;
        }
    }
    g_archived_at = last;
    return 0;
}

int esfh_env_checkpoint(int kbytes, int remove_logs, int *removed)
{
    /* Not esfh_env(): the region may call this, and must not open an environment it gave up. */
    DB_ENV *env = esfh_env_if_open();
    int ret;

    *removed = 0;
    if (env == NULL)
        return EINVAL;
    /* With kbytes, Berkeley DB checkpoints only once that much log was written since the
     * environment's last checkpoint, by whichever process: cheap enough to ask after every
     * batch of calls, and it does not start over when the SEP asking is restarted. */
    ret = env->txn_checkpoint(env, (u_int32_t)(kbytes > 0 ? kbytes : 0), 0, 0);
    if (ret != 0) {
        esfh_set_error("ESFH: checkpoint failed: %s", db_strerror(ret));
        return ret;
    }
    return remove_logs ? remove_unneeded_logs(env, removed) : 0;
}
