/*
 * ESFH environment and transactions: the Berkeley DB environment shared by every process of a
 * region, the transaction every file operation joins, and the C API a SEP calls through cffi.
 *
 * Three ways an operation gets its transaction:
 *  - inside esfh_begin() ... esfh_commit()/esfh_abort(): the request's transaction (a SEP);
 *  - ESFH_COMMIT_INTERVAL=N set: one transaction committed every N writes, at CLOSE and at
 *    normal exit (batch programs); work since the last commit is lost if the process dies,
 *    because recovery rolls back transactions that never committed;
 *  - otherwise: one transaction per operation (auto-commit).
 * A deadlock inside a request or interval transaction dooms it: the operation fails with file
 * status 51 and so does every later one until the caller aborts (a SEP then re-runs the request).
 */
#define _GNU_SOURCE   /* pipe2, syscall */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esfh.h"

static DB_ENV *g_env;
static int g_in_request;        /* between esfh_begin and esfh_commit/esfh_abort */
static DB_TXN *g_req_txn;       /* the request's transaction, begun at its first file access */
static int g_req_lost;          /* ESFH_STORE_LOST: that BEGIN could not reach the store */
static char g_req_lost_why[400];    /* and why, as ESFH said then */
static DB_TXN *g_interval_txn;  /* ESFH_COMMIT_INTERVAL's transaction */
static int g_doomed;
static int g_interval = -1;     /* -1: not read from the environment yet */
static int g_single;            /* ESFH_COMMIT_INTERVAL=single: one transaction for the run */
static int g_writes;
static int g_request_writes;    /* write operations in the current request transaction */
static int g_lock_fd = -1;      /* flock on HOME/esrt-env.lock: shared while the env is open */
static int g_write_nosync;      /* durability write-nosync: nothing is ever waited for */
static int g_group_commit;      /* a SEP's commits wait for esfh_log_flush (see esfh_commit) */
static int g_flush_due;         /* a request transaction ended since the last esfh_log_flush */
static int g_atexit_set;
static char g_error[1024];
/* The environment directory this process opened, resolved as /proc/self/maps shows it. */
static char g_home[PATH_MAX];

void esfh_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
}

const char *esfh_last_error(void)
{
    return g_error;
}

/* Informational messages (failchk reports what it freed) go to stderr: stdout belongs to the
 * COBOL program's DISPLAY output and to a SEP's protocol. */
static void msgcall(const DB_ENV *env, const char *msg)
{
    (void)env;
    fprintf(stderr, "ESFH: %s\n", msg);
}

static void errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void)env;
    (void)prefix;
    /* Keep Berkeley DB's own explanation: it is usually more precise than the return code.
     * One failure may bring several messages, the first being the cause: keep them all. */
    char previous[sizeof g_error];
    snprintf(previous, sizeof previous, "%s", esfh_last_error());
    if (strncmp(previous, "Berkeley DB: ", 13) == 0)
        esfh_set_error("%s; %s", previous, msg);
    else
        esfh_set_error("Berkeley DB: %s", msg);
}

/* failchk asks whether a thread of control is alive. kill(pid, 0) succeeds on a zombie, and a
 * killed SEP stays a zombie until its parent reaps it, so read the state from /proc instead. */
static int isalive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
    char path[64], buf[512];
    FILE *fp;
    char *close_paren;
    (void)env;
    (void)tid;
    (void)flags;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    if (fgets(buf, sizeof buf, fp) == NULL) {
        fclose(fp);
        return 0;
    }
    fclose(fp);
    close_paren = strrchr(buf, ')');
    if (close_paren == NULL || close_paren[1] == '\0')
        return 1;
    return close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/*
 * Every process using an environment holds a shared flock on HOME/esrt-env.lock; recovery
 * needs it exclusively. Recovery while another process has the environment open would corrupt
 * it, and flocks vanish with their process, so a crashed region never blocks its successor.
 */
static int lock_env(const char *home, int exclusive, char *err, int errlen)
{
    char path[4096];
    if (g_lock_fd < 0) {
        snprintf(path, sizeof path, "%s/esrt-env.lock", home);
        g_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
        if (g_lock_fd < 0) {
            snprintf(err, errlen, "ESFH: cannot open %s: %s", path, strerror(errno));
            return errno;
        }
    }
    if (flock(g_lock_fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH) != 0) {
        int code = errno;
        if (code == EWOULDBLOCK)
            snprintf(err, errlen, "ESFH: the environment in %s is in use by another process "
                     "(a region, a batch job or esrt file); not recovering it", home);
        else
            snprintf(err, errlen, "ESFH: cannot lock %s/esrt-env.lock: %s", home, strerror(code));
        return code == EWOULDBLOCK ? EBUSY : code;
    }
    return 0;
}

/* No longer a user of the environment: a standby region that stood down must let the node
 * taking over recover it, which needs the lock exclusively. */
static void release_lock(void)
{
    if (g_lock_fd >= 0) {
        close(g_lock_fd);
        g_lock_fd = -1;
    }
}

static int open_env(DB_ENV **out, const char *home, int durability, int max_procs, int recover,
                    char *err, int errlen)
{
    DB_ENV *env;
    struct stat st;
    u_int32_t flags = DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
                      DB_THREAD | DB_FAILCHK;
    int ret;

    *out = NULL;
    if (home == NULL || stat(home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "ESFH: data directory %s does not exist; create it or set "
                 "ESRT_DATA_DIR to an existing directory", home ? home : "(none)");
        return ENOENT;
    }
    if ((ret = db_env_create(&env, 0)) != 0) {
        snprintf(err, errlen, "ESFH: cannot create a Berkeley DB handle: %s", db_strerror(ret));
        return ret;
    }
    env->set_errcall(env, errcall);
    env->set_msgcall(env, msgcall);
    env->set_lk_detect(env, DB_LOCK_DEFAULT);
    /* Room for every process (and a few Python threads each) that may ever attach, counting
     * dead ones until failchk clears them. */
    env->set_thread_count(env, (u_int32_t)(max_procs > 0
                                           ? max_procs * ESFH_THREADS_PER_PROC + ESFH_THREADS_SPARE
                                           : 64));
    env->set_isalive(env, isalive);
    env->set_lk_max_locks(env, ESFH_LK_MAX_LOCKS);
    env->set_lk_max_objects(env, ESFH_LK_MAX_OBJECTS);
    env->set_lk_max_lockers(env, ESFH_LK_MAX_LOCKERS);
    env->set_lg_max(env, ESFH_LOG_FILE_BYTES);
    if (durability == 1)
        env->set_flags(env, DB_TXN_WRITE_NOSYNC, 1);
    /* The shared regions are files mapped into every process. Created sparse, their pages
     * would get disk blocks only when first touched, and a touch after the data disk filled
     * up kills the process with SIGBUS (in the middle of a transaction, holding mutexes: the
     * environment then needs recovery, which a full disk prevents). DB_REGION_INIT writes
     * every page when the regions are created, so a full disk fails the open instead. */
    env->set_flags(env, DB_REGION_INIT, 1);
    if (recover)
        flags |= DB_RECOVER;
    esfh_set_error("%s", "");
    ret = env->open(env, home, flags, 0660);
    if (ret != 0) {
        /* Berkeley DB's own words (errcall) say which file or region failed. */
        const char *detail = esfh_last_error();
        snprintf(err, errlen, "ESFH: cannot open the Berkeley DB environment in %s: %s (%s)%s%s",
                 home, db_strerror(ret), ret == DB_RUNRECOVERY
                 ? "run recovery: restart the region, which recovers before starting SEPs"
                 : "check the directory's permissions and free space",
                 detail[0] ? "; " : "", detail);
        env->close(env, 0);
        return ret;
    }
    *out = env;
    return 0;
}

/* Roll back a request's transaction that was not finished (in PostgreSQL: on its connection;
 * g_req_txn only stands for it there). */
static void abort_request_txn(void)
{
    if (g_req_txn == NULL)
        return;
    if (esfh_pg_store())
        esfh_pg_end(0);
    else
        g_req_txn->abort(g_req_txn);
    g_req_txn = NULL;
}

static void at_exit(int status, void *unused)
{
    /* Exit of a batch program (STOP RUN calls exit): interval work is kept; in single mode the
     * whole run commits only when it ends with status 0. A request transaction still open was
     * not finished by its SEP (STOP RUN or a crash inside a service) and is rolled back. */
    (void)unused;
    if (g_interval_txn != NULL) {
        if (g_single && status != 0) {
            fprintf(stderr, "ESFH: the run ended with status %d; its single transaction was "
                    "rolled back\n", status);
            g_interval_txn->abort(g_interval_txn);
        } else {
            g_interval_txn->commit(g_interval_txn, 0);
        }
        g_interval_txn = NULL;
    }
    g_in_request = 0;
    abort_request_txn();
    esfh_env_close();
}

int esfh_env_open(const char *home, int durability, int max_procs, char *err, int errlen)
{
    char local[512];
    int ret;
    if (err == NULL) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = '\0';
    if (g_env != NULL)
        return 0;
    ret = lock_env(home, 0, err, errlen);
    if (ret == 0)
        ret = open_env(&g_env, home, durability, max_procs, 0, err, errlen);
    if (ret != 0) {
        esfh_set_error("%s", err);
        release_lock();
        return ret;
    }
    g_write_nosync = durability == 1;
    if (realpath(home, g_home) == NULL)
        g_home[0] = '\0';
    if (!g_atexit_set) {
        on_exit(at_exit, NULL);
        g_atexit_set = 1;
    }
    return 0;
}

/* A recovery that failed half-way (the disk filled while it recreated the regions) leaves
 * region files that the next DB_RECOVER cannot join: it fails with DB_RUNRECOVERY for ever.
 * Region files hold no data, only what the processes share while they run; with the
 * environment locked exclusively nobody maps them, so they can go, and the next recovery
 * builds them anew from the log and the database files. */
static void remove_region_files(const char *home)
{
    DIR *dir = opendir(home);
    struct dirent *entry;
    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        if (strncmp(entry->d_name, "__db.", 5) == 0 && isdigit((unsigned char)entry->d_name[5]))
            unlinkat(dirfd(dir), entry->d_name, 0);
    }
    closedir(dir);
}

static int recover(const char *home, int fresh, char *err, int errlen);

int esfh_env_recover(const char *home, char *err, int errlen)
{
    return recover(home, 0, err, errlen);
}

/* Recovery that does not look at the old region files at all: after an earlier recovery died
 * (SIGSEGV or SIGBUS) reading them, they are what is broken. */
int esfh_env_recover_fresh(const char *home, char *err, int errlen)
{
    return recover(home, 1, err, errlen);
}

static int recover(const char *home, int fresh, char *err, int errlen)
{
    DB_ENV *env;
    char local[512];
    int ret;
    if (err == NULL) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = '\0';
    if (g_env != NULL) {
        snprintf(err, errlen, "ESFH: recover must run before this process opens the environment");
        return EINVAL;
    }
    ret = lock_env(home, 1, err, errlen);
    if (ret == 0) {
        if (fresh)
            remove_region_files(home);
        ret = open_env(&env, home, 0, 0, 1, err, errlen);
        if (ret != 0 && ret != ENOENT) {
            char first[512];
            size_t used;
            snprintf(first, sizeof first, "%s", err);
            remove_region_files(home);
            ret = open_env(&env, home, 0, 0, 1, err, errlen);
            used = strlen(err);
            if (ret != 0 && used + 2 < (size_t)errlen)
                snprintf(err + used, errlen - used, " (a first try, before its region files "
                         "were removed: %s)", first);
        }
    }
    if (ret == 0)
        env->close(env, 0);
    /* Back to shared: this process goes on using the environment like every other. */
    if (g_lock_fd >= 0)
        flock(g_lock_fd, LOCK_SH);
    if (ret != 0)
        esfh_set_error("%s", err);
    return ret;
}

DB_ENV *esfh_env(void)
{
    const char *home, *durability;
    char err[512];
    char cwd[4096];
    if (g_env != NULL)
        return g_env;
    home = getenv("ESRT_DATA_DIR");
    if (home == NULL || home[0] == '\0')
        home = getenv("COB_FILE_PATH");
    if (home == NULL || home[0] == '\0')
        home = getcwd(cwd, sizeof cwd);
    durability = getenv("ESFH_DURABILITY");
    if (esfh_env_open(home, durability && strcmp(durability, "write-nosync") == 0, 16,
                      err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return g_env;
}

/* Whether files can be opened: the PostgreSQL store reachable, or the environment open. */
int esfh_store_ready(void)
{
    if (esfh_pg_store()) {
        if (esfh_pg_connected())
            return 1;
        fprintf(stderr, "%s\n", esfh_last_error());
        return 0;
    }
    return esfh_env() != NULL;
}

static int interval(void)
{
    if (esfh_pg_store())
        return 0;   /* each operation outside a call commits at once: see esfh_op_txn */
    if (g_interval < 0) {
        const char *value = getenv("ESFH_COMMIT_INTERVAL");
        g_single = value != NULL && strcmp(value, "single") == 0;
        g_interval = g_single ? INT_MAX : (value ? atoi(value) : 0);
        if (g_interval < 0)
            g_interval = 0;
    }
    return g_interval;
}

/* `text` on one line (libpq's messages hold newlines, and end in one) into out. */
static void one_line(char *out, size_t cap, const char *text)
{
    size_t n;
    snprintf(out, cap, "%s", text);
    for (n = 0; out[n] != '\0'; n++)
        if (out[n] == '\n')
            out[n] = ' ';
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
}

/* The request's transaction, begun now if this is the request's first file access: a call
 * that touches no file then costs no transaction at all (begin and commit were a fifth of a
 * null service's time in its SEP). NULL outside a request, or when it cannot begin. */
static DB_TXN *request_txn(void)
{
    int ret;
    if (!g_in_request || g_req_txn != NULL || g_req_lost)
        return g_req_txn;
    if (esfh_pg_store()) {
        /* A request whose transaction could not begin has none for the rest of it: none of
         * its operations, reply lookups or its commit may run outside one (a lookup without
         * the key's lock could let the call run twice). */
        if ((g_req_txn = esfh_pg_begin()) == NULL) {
            g_req_lost = ESFH_STORE_LOST;
            one_line(g_req_lost_why, sizeof g_req_lost_why, esfh_last_error());
        }
        return g_req_txn;
    }
    ret = g_env->txn_begin(g_env, NULL, &g_req_txn, 0);
    if (ret != 0) {
        esfh_set_error("ESFH: cannot begin a transaction: %s", db_strerror(ret));
        g_req_txn = NULL;
    }
    return g_req_txn;
}

DB_TXN *esfh_op_txn(int *own)
{
    DB_TXN *txn = NULL;
    int ret;
    *own = 0;
    if (g_in_request)
        return request_txn();
    if (esfh_pg_store()) {
        txn = esfh_pg_begin();
        *own = txn != NULL;
        return txn;
    }
    if (interval() > 0) {
        if (g_interval_txn == NULL) {
            ret = g_env->txn_begin(g_env, NULL, &g_interval_txn, 0);
            if (ret != 0) {
                esfh_set_error("ESFH: cannot begin a transaction: %s", db_strerror(ret));
                g_interval_txn = NULL;
            }
        }
        return g_interval_txn;
    }
    ret = g_env->txn_begin(g_env, NULL, &txn, 0);
    if (ret != 0) {
        esfh_set_error("ESFH: cannot begin a transaction: %s", db_strerror(ret));
        return NULL;
    }
    *own = 1;
    return txn;
}

int esfh_op_end(DB_TXN *txn, int own, int ret)
{
    int cret;
    if (txn == NULL)
        return ret;
    if (esfh_pg_store()) {
        /* A request's transaction ends with the request (a failed statement has doomed it
         * or marked it failed already, see esfh_pg.c); an operation's own ends here. */
        if (!own)
            return ret;
        cret = esfh_pg_end(ret == 0);
        return ret != 0 ? ret : cret;
    }
    if (ret != 0 && (ESFH_DEADLOCK(ret) || ret == DB_RUNRECOVERY)) {
        if (own) {
            txn->abort(txn);
        } else if (txn == g_req_txn) {
            g_doomed = 1;
        } else {
            fprintf(stderr, "ESFH: deadlock; the work since the last commit "
                    "(ESFH_COMMIT_INTERVAL) was rolled back\n");
            txn->abort(txn);
            g_interval_txn = NULL;
        }
        return ret;
    }
    if (own) {
        cret = txn->commit(txn, 0);
        if (cret != 0) {
            esfh_set_error("ESFH: commit failed: %s", db_strerror(cret));
            return cret;
        }
    }
    return ret;
}

void esfh_note_write(void)
{
    if (g_in_request)
        g_request_writes++;
    if (g_interval_txn != NULL && !g_in_request && ++g_writes >= g_interval) {
        g_interval_txn->commit(g_interval_txn, 0);
        g_interval_txn = NULL;
        g_writes = 0;
    }
}

void esfh_interval_commit(void)
{
    if (g_interval_txn != NULL && !g_single) {
        g_interval_txn->commit(g_interval_txn, 0);
        g_interval_txn = NULL;
        g_writes = 0;
    }
}

int esfh_is_doomed(void)
{
    return g_doomed;
}

int esfh_request_lost(void)
{
    return g_in_request ? g_req_lost : 0;
}

DB_TXN *esfh_request_txn(void)
{
    return request_txn();
}

void esfh_doom(void)
{
    if (g_req_txn != NULL)
        g_doomed = 1;
}

int esfh_built_for_libcob(void)
{
    /* Status codes depend on the libcob release ESFH is compiled for (esfh_internal.h):
     * `esrt doctor` compares this with the libcob that runs. */
    return __LIBCOB_VERSION * 100 + __LIBCOB_VERSION_MINOR;
}

int esfh_request_writes(void)
{
    return g_request_writes;
}

int esfh_begin(void)
{
    if (!esfh_store_ready())
        /* A PostgreSQL store out of reach (its node died, a standby being promoted) is a
         * moment's matter: the call may run again. */
        return esfh_pg_store() ? ESFH_STORE_LOST : EINVAL;
    if (g_in_request) {
        esfh_set_error("ESFH: esfh_begin called while a transaction is active; "
                       "call esfh_commit or esfh_abort first");
        return EINVAL;
    }
    esfh_interval_commit();
    g_in_request = 1;
    g_req_txn = NULL;
    g_req_lost = 0;
    g_doomed = 0;
    g_request_writes = 0;
    return 0;
}

int esfh_commit(void)
{
    int ret;
    DB_TXN *txn = g_req_txn;
    g_in_request = 0;
    if (g_req_lost) {
        /* Its transaction never began: nothing of the request is in the store. */
        g_req_lost = 0;
        esfh_set_error("ESFH: the PostgreSQL store could not be reached to begin the call's "
                       "transaction; nothing of it committed: re-run it (%s)", g_req_lost_why);
        return ESFH_STORE_LOST;
    }
    if (txn == NULL)
        return 0;
    g_req_txn = NULL;
    if (esfh_pg_store()) {
        ret = esfh_pg_end(!g_doomed);
        if (g_doomed) {
            g_doomed = 0;
            esfh_set_error("ESFH: the transaction hit a deadlock and was rolled back; "
                           "re-run it");
            return DB_LOCK_DEADLOCK;
        }
        return ret;
    }
    if (g_doomed) {
        txn->abort(txn);
        g_doomed = 0;
        esfh_set_error("ESFH: the transaction hit a deadlock and was rolled back; re-run it");
        return DB_LOCK_DEADLOCK;
    }
    /* Group commit: the commit record is written to the log file but not synced, which
     * releases the transaction's locks at once; the SEP syncs once for a whole batch of
     * requests (esfh_log_flush) before it answers any of them. The next request on the same
     * records (every CBLAPP01 call updates one) does not wait for the disk, and one fsync makes
     * a batch durable. Since the record is written here, a full disk fails this commit, which
     * then rolls back, as a synced commit would. */
    ret = txn->commit(txn, g_group_commit ? DB_TXN_WRITE_NOSYNC : 0);
    if (ret != 0)
        esfh_set_error("ESFH: commit failed: %s", db_strerror(ret));
    else
        g_flush_due = 1;
    return ret;
}

void esfh_set_group_commit(int on)
{
    g_group_commit = on;
}

/* Make every commit so far durable: one fsync of the log for all of them (none when nothing
 * was committed since the last flush, and none with write-nosync durability). A request that
 * only read may have read another process's commit that is not on disk yet, so a read-only
 * commit makes a flush due too; an abort does not, as its caller is told nothing it read. */
int esfh_log_flush(void)
{
    int ret;
    if (g_env == NULL || !g_flush_due || g_write_nosync)
        return 0;
    ret = g_env->log_flush(g_env, NULL);
    if (ret != 0) {
        esfh_set_error("ESFH: the log could not be written to disk: %s", db_strerror(ret));
        return ret;
    }
    g_flush_due = 0;
    return 0;
}


int esfh_abort(void)
{
    int ret;
    DB_TXN *txn = g_req_txn;
    g_doomed = 0;
    g_in_request = 0;
    g_req_lost = 0;
    if (txn == NULL)
        return 0;
    g_req_txn = NULL;
    if (esfh_pg_store()) {
        esfh_pg_end(0);
        return 0;
    }
    ret = txn->abort(txn);
    if (ret != 0)
        esfh_set_error("ESFH: abort failed: %s", db_strerror(ret));
    return ret;
}

int esfh_doomed(void)
{
    return g_doomed;
}

static int failchk_here(void)
{
    int ret = EINVAL, attempt;
    esfh_set_error("%s", "");   /* what failchk reports is its own, not an earlier error's */
    /* The first call after a death may find the dead thread's state busy: try again. */
    for (attempt = 0; attempt < 50; attempt++) {
        ret = g_env->failchk(g_env, 0);
        if (ret != EBUSY)
            break;
        usleep(20000);
    }
    return ret;
}

/* What a failchk child reports to its parent through a pipe: Berkeley DB's return code, then
 * its explanation. */
struct failchk_outcome {
    int ret;
    char error[sizeof g_error];
};

/*
 * A process that died holding one of Berkeley DB's internal mutexes (not a lock: the mutex of
 * a shared region, taken for a moment inside the library) makes every later taker of that
 * mutex wait forever, failchk included: Berkeley DB 5.3 cannot tell such a mutex is orphaned.
 * Run in the region itself, failchk would hang the region for good. So it runs in a forked
 * child, on the handle the child inherits (the region is single-threaded in Berkeley DB and
 * waits, so nothing else uses the handle meanwhile; its files are read and written with
 * pread and pwrite, so no offset is shared). A child that does not finish within timeout_ms
 * is killed, and the environment is reported as needing recovery, which rebuilds the shared
 * regions and frees every mutex. The child ends with _exit: the region's exit handlers (an
 * environment close among them) must not run in it.
 */
static int failchk_in_child(int timeout_ms)
{
    int pipe_fds[2], status, pidfd, waited;
    struct failchk_outcome outcome;
    struct pollfd ready;
    struct timespec deadline;
    ssize_t got;
    pid_t child;

    /* Without a pipe or a child (out of processes or memory), failchk runs here, unbounded:
     * what it waits for is then a mutex orphaned at the very moment the node ran short. */
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return failchk_here();
    fflush(stderr);
    child = fork();
    if (child < 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return failchk_here();
    }
    if (child == 0) {
        close(pipe_fds[0]);
        memset(&outcome, 0, sizeof outcome);
        outcome.ret = failchk_here();
        snprintf(outcome.error, sizeof outcome.error, "%s", esfh_last_error());
        if (write(pipe_fds[1], &outcome, sizeof outcome) != (ssize_t)sizeof outcome)
            _exit(2);
        _exit(0);
    }
    close(pipe_fds[1]);
    /* A pidfd becomes readable when the child exits: no polling interval to wait out. */
    pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    ready.fd = pidfd >= 0 ? pidfd : pipe_fds[0];
    ready.events = POLLIN;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    for (;;) {
        struct timespec now;
        long long left_ms;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left_ms = (long long)(deadline.tv_sec - now.tv_sec) * 1000
                  + (deadline.tv_nsec - now.tv_nsec) / 1000000;
        waited = left_ms > 0 ? poll(&ready, 1, (int)left_ms) : 0;
        if (waited >= 0 || errno != EINTR)
            break;
    }
    /* Out of time, or poll itself failed: either way the child must not be waited for
     * without a limit, which is what this is here to prevent. */
    if (waited <= 0) {
        kill(child, SIGKILL);
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
        if (pidfd >= 0)
            close(pidfd);
        close(pipe_fds[0]);
        esfh_set_error("ESFH: failchk did not finish within %d ms: a process died holding one "
                       "of Berkeley DB's internal mutexes, which only a recovery frees",
                       timeout_ms);
        return DB_RUNRECOVERY;
    }
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (pidfd >= 0)
        close(pidfd);
    do {
        got = read(pipe_fds[0], &outcome, sizeof outcome);
    } while (got < 0 && errno == EINTR);
    close(pipe_fds[0]);
    if (got != (ssize_t)sizeof outcome) {
        esfh_set_error("ESFH: the failchk process ended without an answer (status %d): the "
                       "environment is treated as needing recovery", status);
        return DB_RUNRECOVERY;
    }
    outcome.error[sizeof outcome.error - 1] = '\0';
    esfh_set_error("%s", outcome.error);
    return outcome.ret;
}

int esfh_failchk(int timeout_ms)
{
    int ret;
    if (esfh_env() == NULL)
        return EINVAL;
    ret = timeout_ms > 0 ? failchk_in_child(timeout_ms) : failchk_here();
    if (ret != 0) {
        char cause[sizeof g_error];
        snprintf(cause, sizeof cause, "%s", esfh_last_error());
        esfh_set_error("ESFH: failchk failed: %s%s%s%s", db_strerror(ret), ret == DB_RUNRECOVERY
                       ? " (stop every process of the region and recover the environment)" : "",
                       cause[0] ? "; " : "", cause);
    }
    return ret;
}

/* Give up a broken environment (a process died holding one of its mutexes): panic it, so that
 * every call, in every process, fails at once with DB_RUNRECOVERY instead of waiting for the
 * dead process, then drop the handles. Recovery (esfh_env_recover) rebuilds it. */
/* Berkeley DB's close of a panicked environment returns before it detaches the shared
 * regions, so a process that gave up its environment kept the region files mapped. Recovery
 * deletes them, but their blocks stay in use for as long as a mapping lives: about 2 MB
 * lost per recovery, and on a full disk exactly the room recovery needs to create them
 * again. The handle is gone, so nothing refers to these mappings any more. */
static void unmap_regions(const char *home)
{
    struct { unsigned long start, end; } found[64];
    size_t count = 0, home_len = strlen(home), i;
    char line[PATH_MAX + 256];
    FILE *maps;

    if (home_len == 0 || (maps = fopen("/proc/self/maps", "re")) == NULL)
        return;
    /* Collected first: unmapping while reading would change the file under us. */
    while (count < sizeof found / sizeof found[0] && fgets(line, sizeof line, maps) != NULL) {
        unsigned long start, end;
        int path_at = 0;
        const char *path;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &path_at) < 2 || !path_at)
            continue;
        path = line + path_at;
        if (strncmp(path, home, home_len) == 0 && path[home_len] == '/'
                && strncmp(path + home_len + 1, "__db.", 5) == 0
                && isdigit((unsigned char)path[home_len + 6])) {
            found[count].start = start;
            found[count].end = end;
            count++;
        }
    }
    fclose(maps);
    for (i = 0; i < count; i++)
        munmap((void *)found[i].start, found[i].end - found[i].start);
}

void esfh_env_abandon(void)
{
    if (g_env == NULL)
        return;
    g_env->set_flags(g_env, DB_PANIC_ENVIRONMENT, 1);
    g_in_request = 0;
    g_req_txn = NULL;
    g_interval_txn = NULL;
    esfh_env_close();
    unmap_regions(g_home);
}

void esfh_env_close(void)
{
    if (esfh_pg_store()) {
        g_in_request = 0;
        abort_request_txn();
        esfh_close_all_dbs();
        esfh_pg_close();
    }
    if (g_env == NULL) {
        release_lock();
        return;
    }
    g_in_request = 0;
    abort_request_txn();
    esfh_interval_commit();
    esfh_close_replies();
    esfh_close_all_dbs();
    g_env->close(g_env, 0);
    g_env = NULL;
    release_lock();
}

DB_ENV *esfh_env_if_open(void)
{
    return g_env;
}
