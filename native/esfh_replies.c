/*
 * Committed replies, kept in the same Berkeley DB environment as the files they describe.
 *
 * A SEP stores a request's reply inside the request's own transaction, so the reply exists if
 * and only if the request's file updates were committed. After a SEP dies mid-request, the
 * region looks the reply up: found means "committed, return this"; absent means "rolled back,
 * safe to run again". An Idempotency-Key makes a retried call find the first call's reply.
 *
 * Record: key = the request key bytes; value = 8-byte big-endian expiry (seconds since the
 * epoch) followed by the opaque reply bytes the SEP chose to store.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esfh.h"

#define REPLIES_DB "__esrt_replies"

static DB *g_replies;

static int replies_db(DB **out)
{
    DB_ENV *env = esfh_env();
    DB *db;
    int ret;
    if (g_replies != NULL) {
        *out = g_replies;
        return 0;
    }
    if (env == NULL)
        return EINVAL;
    if ((ret = db_create(&db, env, 0)) != 0)
        return ret;
    ret = db->open(db, NULL, REPLIES_DB, NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT | DB_THREAD,
                   0660);
    if (ret != 0) {
        esfh_set_error("ESFH: cannot open the reply store %s: %s", REPLIES_DB, db_strerror(ret));
        db->close(db, 0);
        return ret;
    }
    g_replies = db;
    *out = db;
    return 0;
}

void esfh_close_replies(void)
{
    if (g_replies != NULL) {
        g_replies->close(g_replies, 0);
        g_replies = NULL;
    }
}

static void put_be64(unsigned char *out, uint64_t value)
{
    int i;
    for (i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *in)
{
    uint64_t value = 0;
    int i;
    for (i = 0; i < 8; i++)
        value = (value << 8) | in[i];
    return value;
}

/* Store `data` under `key` in the current request transaction (esfh_begin must be active). */
int esfh_reply_put(const void *key, int keylen, const void *data, int datalen, long long expires)
{
    DB *db;
    DB_TXN *txn = esfh_request_txn();
    DBT k, v;
    unsigned char *buf;
    int ret;
    if (txn == NULL) {
        if (esfh_request_lost())
            return esfh_request_lost();
        esfh_set_error("ESFH: esfh_reply_put needs the request transaction (esfh_begin)");
        return EINVAL;
    }
    if (esfh_pg_store())
        return keylen < 0 || datalen < 0 ? EINVAL
                                         : esfh_pg_reply_put(key, keylen, data, datalen, expires);
    /* A negative length would size the buffer below by wrapping around. */
    if (keylen < 0 || datalen < 0 || datalen > INT32_MAX - 8) {
        esfh_set_error("ESFH: esfh_reply_put: a key of %d bytes and a reply of %d bytes "
                       "cannot be stored", keylen, datalen);
        return EINVAL;
    }
    if ((ret = replies_db(&db)) != 0)
        return ret;
    buf = malloc((size_t)datalen + 8);
    if (buf == NULL)
        return ENOMEM;
    put_be64(buf, (uint64_t)expires);
    memcpy(buf + 8, data, (size_t)datalen);
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    k.data = (void *)key;
    k.size = (u_int32_t)keylen;
    v.data = buf;
    v.size = (u_int32_t)datalen + 8;
    ret = db->put(db, txn, &k, &v, 0);
    free(buf);
    if (ret != 0) {
        if (ESFH_DEADLOCK(ret))
            esfh_doom();
        esfh_set_error("ESFH: cannot store the reply: %s", db_strerror(ret));
    }
    return ret;
}

/*
 * Look a reply up. Inside a request transaction the record is read with a write lock, so two
 * concurrent calls with one idempotency key run one after the other. Outside one (the region,
 * after a SEP died) the read never waits: a lock held by another dead process would otherwise
 * block it forever, so it returns DB_LOCK_NOTGRANTED and the caller runs failchk and retries.
 * Returns 0 and the reply bytes (without the expiry) in buf; DB_NOTFOUND when absent or
 * expired; DB_BUFFER_SMALL with *outlen set when buf is too small.
 */
int esfh_reply_get(const void *key, int keylen, void *buf, int buflen, int *outlen,
                   long long now)
{
    DB *db;
    DB_TXN *txn = esfh_request_txn(), *own = NULL;
    DB_ENV *env;
    DBT k, v;
    int ret;
    *outlen = 0;
    if (txn == NULL && esfh_request_lost())
        return esfh_request_lost();    /* never without the key's lock inside a request */
    if (esfh_pg_store())
        return esfh_pg_reply_get(key, keylen, buf, buflen, outlen, now, txn != NULL);
    env = esfh_env();
    if ((ret = replies_db(&db)) != 0)
        return ret;
    if (txn == NULL) {
        if ((ret = env->txn_begin(env, NULL, &own, DB_TXN_NOWAIT | DB_READ_COMMITTED)) != 0)
            return ret;
    }
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    k.data = (void *)key;
    k.size = (u_int32_t)keylen;
    v.flags = DB_DBT_MALLOC;
    ret = db->get(db, txn != NULL ? txn : own, &k, &v, txn != NULL ? DB_RMW : DB_READ_COMMITTED);
    if (own != NULL)
        own->commit(own, 0);
    if (ret != 0) {
        if (ESFH_DEADLOCK(ret) && txn != NULL)
            esfh_doom();
        return ret;
    }
    if (v.size < 8 || (long long)get_be64(v.data) < now) {
        free(v.data);
        return DB_NOTFOUND;
    }
    *outlen = (int)v.size - 8;
    if (*outlen > buflen) {
        free(v.data);
        return DB_BUFFER_SMALL;
    }
    memcpy(buf, (unsigned char *)v.data + 8, (size_t)*outlen);
    free(v.data);
    return 0;
}

/* Where the next purge goes on: the key it stopped at (none: from the first key). Each purge
 * looks at `limit` entries only; starting from the first key every time, the first `limit`
 * keys would soon all be live replies, and the expired ones after them never seen again, so
 * the store grew for ever under steady load. */
static void *g_purge_from;
static u_int32_t g_purge_from_size;

static void purge_resume_at(const DBT *key)
{
    void *copy = NULL;
    if (key != NULL && key->size > 0 && (copy = malloc(key->size)) != NULL)
        memcpy(copy, key->data, key->size);
    /* Without memory the next purge starts from the first key again: slower, not wrong. */
    free(g_purge_from);
    g_purge_from = copy;
    g_purge_from_size = copy != NULL ? key->size : 0;
}

/* Delete replies that expired before `now`, looking at no more than `limit` entries per call
 * (in one small transaction, so that a purge never holds many locks), going on where the
 * last call stopped; returns how many were deleted (negative: error). */
int esfh_reply_purge(long long now, int limit)
{
    DB *db;
    DB_ENV *env = esfh_pg_store() ? NULL : esfh_env();
    DB_TXN *txn = NULL;
    DBC *cursor = NULL;
    DBT k, v;
    int ret, deleted = 0, seen = 0;
    u_int32_t step = DB_FIRST;
    if (esfh_pg_store())
        return esfh_pg_reply_purge(now, limit);
    if (env == NULL || replies_db(&db) != 0)
        return -1;
    if ((ret = env->txn_begin(env, NULL, &txn, 0)) != 0)
        return -1;
    if ((ret = db->cursor(db, txn, &cursor, 0)) != 0) {
        txn->abort(txn);
        return -1;
    }
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    if (g_purge_from != NULL) {
        k.data = g_purge_from;
        k.size = g_purge_from_size;
        step = DB_SET_RANGE;
    }
    while (seen < limit && (ret = cursor->get(cursor, &k, &v, step | DB_RMW)) == 0) {
        step = DB_NEXT;
        seen++;
        if (v.size >= 8 && (long long)get_be64(v.data) < now) {
            if ((ret = cursor->del(cursor, 0)) != 0)
                break;
            deleted++;
        }
    }
    if (ret == 0) {
        /* Stopped at the limit: the next purge starts after the last key seen. */
        ret = cursor->get(cursor, &k, &v, DB_NEXT);
        if (ret == 0)
            purge_resume_at(&k);
    }
    if (ret == DB_NOTFOUND)
        purge_resume_at(NULL);  /* went round: from the first key again */
    cursor->close(cursor);
    if (ret != 0 && ret != DB_NOTFOUND) {
        txn->abort(txn);
        return ESFH_DEADLOCK(ret) ? 0 : -1;
    }
    return txn->commit(txn, 0) == 0 ? deleted : -1;
}
