/* The durable limit of bench_throughput.py: CBLAPP01's transaction done directly on Berkeley DB,
 * with nothing in front of it (no network, no region, no SEP, no COBOL).
 *
 *   bdb_limit HOME WRITERS SECONDS [sync|flush]
 *
 * WRITERS threads each repeat, for SECONDS: begin a transaction, read APPFILE01's one record
 * with a write lock (DB_RMW, as ESFH reads a file opened I-O), add one to its counter, write it
 * back, commit. Every commit is durable before it is counted (the log is on disk):
 *
 *   sync   (default) commit syncs the log, sharing syncs as Berkeley DB gives it (group
 *          commit). The record's lock is held until the sync is done, so writers of the one
 *          record wait for each other's syncs.
 *   flush  commit without syncing, which releases the lock at once, then sync the log
 *          (log_flush) before counting it: what a SEP does for a batch (esfh_env.c), here for
 *          every transaction.
 *
 * The environment is opened as ESFH opens a region's (esfh_env.c: the same subsystems, lock
 * detection, log file size, pre-written regions).
 *
 * Prints one JSON line: requests (commits), errors, rps, p50_ms, p99_ms, elapsed_s, and counter
 * (the record's value at the end, which must equal requests).
 */

#include <db.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "      "             /* CBLAPP01's RKEY: PIC X(6), spaces */
#define KEY_LEN 6
#define COUNTER_LEN 10          /* AF-COUNTER: PIC 9(10) */
#define RECORD_LEN (KEY_LEN + COUNTER_LEN)
#define BUCKET_US 10            /* latency histogram resolution */
#define BUCKETS 100000          /* up to 1 s; slower commits land in the last bucket */

static DB_ENV *env;
static DB *db;
static double deadline;
static int early_release;       /* flush mode */

struct writer {
    pthread_t thread;
    long commits;
    long errors;
    unsigned *histogram;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, int ret)
{
    fprintf(stderr, "bdb_limit: %s: %s\n", what, db_strerror(ret));
    exit(1);
}

/* The record's key and a DBT for its bytes in `record` (RECORD_LEN). */
static void record_dbts(DBT *key, DBT *data, char *record)
{
    memset(key, 0, sizeof *key);
    memset(data, 0, sizeof *data);
    key->data = KEY;
    key->size = KEY_LEN;
    data->data = record;
    data->size = RECORD_LEN;
    data->ulen = RECORD_LEN;
    data->flags = DB_DBT_USERMEM;
}

/* Read the record into `record` (flags: DB_RMW for a write lock); 0 or the error. */
static int read_record(DB_TXN *txn, char *record, u_int32_t flags)
{
    DBT key, data;
    int ret;
    record_dbts(&key, &data, record);
    if ((ret = db->get(db, txn, &key, &data, flags)) != 0)
        return ret;
    return data.size == RECORD_LEN ? 0 : DB_NOTFOUND;
}

static unsigned long long counter_of(const char *record)
{
    char digits[COUNTER_LEN + 1];
    memcpy(digits, record + KEY_LEN, COUNTER_LEN);
    digits[COUNTER_LEN] = '\0';
    return strtoull(digits, NULL, 10);
}

/* One CBLAPP01 transaction; 0, DB_LOCK_DEADLOCK (run it again) or another error. */
static int transaction(void)
{
    DB_TXN *txn;
    DBT key, data;
    char record[RECORD_LEN], digits[COUNTER_LEN + 1];
    int ret;

    if ((ret = env->txn_begin(env, NULL, &txn, 0)) != 0)
        return ret;
    if ((ret = read_record(txn, record, DB_RMW)) != 0) {
        txn->abort(txn);
        return ret;
    }
    snprintf(digits, sizeof digits, "%0*llu", COUNTER_LEN,
             (counter_of(record) + 1) % 10000000000ULL);
    memcpy(record + KEY_LEN, digits, COUNTER_LEN);
    record_dbts(&key, &data, record);
    if ((ret = db->put(db, txn, &key, &data, 0)) != 0) {
        txn->abort(txn);
        return ret;
    }
    if (!early_release)
        return txn->commit(txn, 0);
    if ((ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC)) != 0)
        return ret;
    return env->log_flush(env, NULL);
}

static void *write_until_deadline(void *arg)
{
    struct writer *writer = arg;
    double started;
    while ((started = now()) < deadline) {
        int ret;
        while ((ret = transaction()) == DB_LOCK_DEADLOCK)
            ;
        if (ret != 0) {
            writer->errors++;
            continue;
        }
        writer->commits++;
        long bucket = (long)((now() - started) * 1e6 / BUCKET_US);
        writer->histogram[bucket < BUCKETS ? bucket : BUCKETS - 1]++;
    }
    return NULL;
}

static double percentile_ms(const unsigned *histogram, long total, double fraction)
{
    long wanted = (long)(fraction * (double)total), seen = 0;
    for (long bucket = 0; bucket < BUCKETS; bucket++) {
        seen += histogram[bucket];
        if (seen > wanted)
            return (double)(bucket * BUCKET_US + BUCKET_US / 2) / 1000.0;
    }
    return 0.0;
}

static void open_store(const char *home)
{
    DB_TXN *txn;
    DBT key, data;
    char record[RECORD_LEN];
    int ret;

    if ((ret = db_env_create(&env, 0)) != 0)
        fail("db_env_create", ret);
    env->set_lk_detect(env, DB_LOCK_DEFAULT);
    env->set_lg_max(env, 1048576);
    env->set_flags(env, DB_REGION_INIT, 1);
    if ((ret = env->open(env, home, DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                         DB_INIT_MPOOL | DB_THREAD | DB_RECOVER, 0660)) != 0)
        fail(home, ret);
    if ((ret = db_create(&db, env, 0)) != 0)
        fail("db_create", ret);
    if ((ret = db->open(db, NULL, "APPFILE01", NULL, DB_BTREE,
                        DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0660)) != 0)
        fail("opening APPFILE01", ret);
    /* INITFILE1: the one record, counter 0. */
    memcpy(record, KEY, KEY_LEN);
    memset(record + KEY_LEN, '0', COUNTER_LEN);
    record_dbts(&key, &data, record);
    if ((ret = env->txn_begin(env, NULL, &txn, 0)) != 0
        || (ret = db->put(db, txn, &key, &data, 0)) != 0
        || (ret = txn->commit(txn, 0)) != 0)
        fail("writing the record", ret);
}

static unsigned long long final_counter(void)
{
    char record[RECORD_LEN];
    int ret = read_record(NULL, record, 0);
    if (ret != 0)
        fail("reading the record back", ret);
    return counter_of(record);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5 || atoi(argv[2]) < 1 || atof(argv[3]) <= 0
        || (argc == 5 && strcmp(argv[4], "sync") != 0 && strcmp(argv[4], "flush") != 0)) {
        fprintf(stderr, "usage: bdb_limit HOME WRITERS SECONDS [sync|flush] (HOME an existing "
                "empty directory, WRITERS >= 1)\n");
        return 2;
    }
    early_release = argc == 5 && strcmp(argv[4], "flush") == 0;
    int count = atoi(argv[2]);
    struct writer *writers = calloc((size_t)count, sizeof *writers);
    unsigned *histogram = calloc(BUCKETS, sizeof *histogram);
    if (writers == NULL || histogram == NULL) {
        fprintf(stderr, "bdb_limit: out of memory\n");
        return 1;
    }
    open_store(argv[1]);
    double began = now();
    deadline = began + atof(argv[3]);
    for (int i = 0; i < count; i++) {
        writers[i].histogram = calloc(BUCKETS, sizeof *histogram);
        if (writers[i].histogram == NULL
            || pthread_create(&writers[i].thread, NULL, write_until_deadline, &writers[i]) != 0) {
            fprintf(stderr, "bdb_limit: cannot start writer %d\n", i + 1);
            return 1;
        }
    }
    long commits = 0, errors = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(writers[i].thread, NULL);
        commits += writers[i].commits;
        errors += writers[i].errors;
        for (long bucket = 0; bucket < BUCKETS; bucket++)
            histogram[bucket] += writers[i].histogram[bucket];
        free(writers[i].histogram);
    }
    double elapsed = now() - began;
    printf("{\"requests\": %ld, \"errors\": %ld, \"rps\": %.1f, \"p50_ms\": %.4f, "
           "\"p99_ms\": %.4f, \"elapsed_s\": %.3f, \"counter\": %llu}\n", commits, errors,
           (double)commits / elapsed, percentile_ms(histogram, commits, 0.50),
           percentile_ms(histogram, commits, 0.99), elapsed, final_counter());
    db->close(db, 0);
    env->close(env, 0);
    free(histogram);
    free(writers);
    return 0;
}
