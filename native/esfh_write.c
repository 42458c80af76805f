/*
 * ESFH writing: WRITE, REWRITE and DELETE, keeping the alternate-key databases and their
 * duplicate sequence numbers in step with the primary database (see esfh.c for the format).
 */
#include <errno.h>
#include <stdlib.h>

#include "esfh_internal.h"

/* A SPARSE alternate key whose value is all the suppress character is not indexed. */
static int suppressed(struct efile *f, int k, const unsigned char *keyb)
{
    int i;
    if (!f->key[k].sparse)
        return 0;
    for (i = 0; i < f->key[k].keylen; i++)
        if (keyb[i] != f->key[k].sparse_ch)
            return 0;
    return 1;
}

/* Next sequence number for the duplicates of alternate key k holding value kb. */
static int next_seq(struct efile *f, DB_TXN *txn, int k, const unsigned char *kb,
                    u_int32_t *seq, int *had)
{
    struct esfh_cursor cur;
    DBT key, data;
    unsigned char ik[KEYBUF + SEQLEN], pk[KEYBUF];
    int len = f->key[k].keylen, ret;

    ret = esfh_cur_open(f, k, txn, &cur);
    if (ret != 0)
        return ret;
    memcpy(ik, kb, (size_t)len);
    memset(ik + len, 0xff, SEQLEN);
    esfh_dbt_out(&key, ik, sizeof ik);
    key.size = (u_int32_t)(len + SEQLEN);
    esfh_dbt_out(&data, pk, sizeof pk);
    ret = esfh_cur_get(&cur, &key, &data, DB_SET_RANGE);
    ret = esfh_cur_get(&cur, &key, &data, ret == DB_NOTFOUND ? DB_LAST : DB_PREV);
    esfh_cur_close(&cur);
    *had = 0;
    *seq = 1;
    if (ret == 0 && memcmp(ik, kb, (size_t)len) == 0) {
        *had = 1;
        *seq = esfh_get_be32(ik + len) + 1;
    } else if (ret != 0 && ret != DB_NOTFOUND) {
        return ret;
    }
    return 0;
}

/* Secondary key of alternate key k for a stored value (record + sequence trailer). */
static u_int32_t sec_key(struct efile *f, int k, const unsigned char *val, u_int32_t vlen,
                         unsigned char *out)
{
    int n = esfh_key_bytes(f, k, val, out);
    if (f->key[k].dups) {
        memcpy(out + n, val + vlen - (u_int32_t)(f->ndups * SEQLEN) +
               (u_int32_t)(f->key[k].seqslot * SEQLEN), SEQLEN);
        n += SEQLEN;
    }
    return (u_int32_t)n;
}

int esfh_alt_entry(struct efile *f, int k, const unsigned char *val, u_int32_t vlen,
                   unsigned char *out)
{
    unsigned char kb[KEYBUF];
    esfh_key_bytes(f, k, val, kb);
    if (suppressed(f, k, kb))
        return -1;
    return (int)sec_key(f, k, val, vlen, out);
}

/* Is alternate key value kb (no duplicates) taken by a record other than prime key pk? */
static int alt_taken(struct efile *f, DB_TXN *txn, int k, const unsigned char *kb,
                     const unsigned char *pk, u_int32_t pklen, int *taken)
{
    DBT key, data;
    unsigned char other[KEYBUF];
    int ret;
    esfh_dbt_in(&key, kb, (u_int32_t)f->key[k].keylen);
    esfh_dbt_out(&data, other, sizeof other);
    ret = esfh_tbl_get(f, k, txn, &key, &data, 0);
    *taken = ret == 0 && !(pk && data.size == pklen && memcmp(other, pk, pklen) == 0);
    return ret == DB_NOTFOUND ? 0 : ret;
}

/* Status 22 when an alternate key without DUPLICATES in the record area belongs to another
 * record (pk: the record being rewritten, NULL for WRITE); otherwise "00". */
static int check_alt_keys(struct efile *f, FCD3 *fcd, DB_TXN *txn, const unsigned char *pk,
                          u_int32_t pklen, const char **status)
{
    unsigned char kb[KEYBUF];
    int k, ret, taken;
    *status = "00";
    for (k = 1; k < f->nkeys; k++) {
        if (f->key[k].dups)
            continue;
        esfh_key_bytes(f, k, fcd->recPtr, kb);
        if (suppressed(f, k, kb))
            continue;
        ret = alt_taken(f, txn, k, kb, pk, pklen, &taken);
        if (ret != 0)
            return ret;
        if (taken) {
            *status = "22";
            return 0;
        }
    }
    return 0;
}

/* The length of the record a WRITE or REWRITE gives; status 44 when the file cannot hold it.
 * libcob checks this before anything its handler checks (cob_write, cob_rewrite). */
static int record_length(struct efile *f, FCD3 *fcd, u_int32_t *reclen)
{
    *reclen = esfh_get_be32(fcd->curRecLen);
    if (*reclen < f->minrec || *reclen > f->maxrec) {
        esfh_set_status(fcd, "44");
        return 1;
    }
    return 0;
}

/* Store a record of reclen bytes: new == 1 for WRITE, 0 for REWRITE (old value in f->buf,
 * length oldlen). */
static int store(struct efile *f, FCD3 *fcd, DB_TXN *txn, const unsigned char *pk,
                 u_int32_t pklen, int isnew, u_int32_t oldlen, u_int32_t reclen,
                 const char **status)
{
    u_int32_t vlen, seq, iklen;
    unsigned char *val, kb[KEYBUF], ik[KEYBUF + SEQLEN], oldik[KEYBUF + SEQLEN];
    DBT key, data;
    int k, ret, had;

    ret = check_alt_keys(f, fcd, txn, isnew ? NULL : pk, pklen, status);
    if (ret != 0 || (*status)[0] != '0')
        return ret;
    if (f->org == ORG_RELATIVE) {
        /* libcob's relative_write keeps the whole record area in a slot of the longest
         * record's size, whatever the record's length; a shorter record's length follows. */
        vlen = f->maxrec + (reclen < f->maxrec ? RELLEN : 0);
        val = malloc(vlen);
        if (val == NULL)
            return ENOMEM;
        memcpy(val, fcd->recPtr, f->maxrec);
        if (reclen < f->maxrec)
            esfh_put_be32(val + f->maxrec, reclen);
    } else {
        vlen = reclen + (u_int32_t)(f->ndups * SEQLEN);
        val = malloc(vlen);
        if (val == NULL)
            return ENOMEM;
        memcpy(val, fcd->recPtr, reclen);
    }
    for (k = 1; k < f->nkeys; k++) {
        struct keydef *kd = &f->key[k];
        int changed = 1;
        esfh_key_bytes(f, k, fcd->recPtr, kb);
        if (!isnew) {
            unsigned char oldkb[KEYBUF];
            esfh_key_bytes(f, k, f->buf, oldkb);
            changed = memcmp(oldkb, kb, (size_t)kd->keylen) != 0;
            if (kd->dups && !changed)
                memcpy(val + reclen + kd->seqslot * SEQLEN,
                       f->buf + oldlen + kd->seqslot * SEQLEN, SEQLEN);
            if (changed && !suppressed(f, k, oldkb)) {
                iklen = sec_key(f, k, f->buf, oldlen + (u_int32_t)(f->ndups * SEQLEN), oldik);
                esfh_dbt_in(&key, oldik, iklen);
                ret = esfh_tbl_del(f, k, txn, &key);
                if (ret != 0 && ret != DB_NOTFOUND)
                    goto fail;
            }
        }
        if (!changed || suppressed(f, k, kb)) {
            if (kd->dups && changed)
                esfh_put_be32(val + reclen + kd->seqslot * SEQLEN, 0);
            continue;
        }
        if (kd->dups) {
            ret = next_seq(f, txn, k, kb, &seq, &had);
            if (ret != 0)
                goto fail;
            if (had)
                *status = ESFH_STATUS_DUPLICATE_ADDED;
            esfh_put_be32(val + reclen + kd->seqslot * SEQLEN, seq);
        }
        iklen = sec_key(f, k, val, vlen, ik);
        esfh_dbt_in(&key, ik, iklen);
        esfh_dbt_in(&data, pk, pklen);
        ret = esfh_tbl_put(f, k, txn, &key, &data, isnew);
        if (ret != 0)
            goto fail;
    }
    esfh_dbt_in(&key, pk, pklen);
    esfh_dbt_in(&data, val, vlen);
    ret = esfh_tbl_put(f, 0, txn, &key, &data, isnew);
fail:
    free(val);
    return ret;
}

static int rel_key_zero(FCD3 *fcd)
{
    return esfh_get_be32(fcd->relKey) == 0 && esfh_get_be32(fcd->relKey + 4) == 0;
}

int esfh_do_write(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char pk[KEYBUF];
    u_int32_t pklen, reclen, oldlen;
    const char *status;
    int ret;

    f->read_done = 0;
    if (f->access == ACCESS_SEQ ? (f->mode != OPEN_OUTPUT && f->mode != OPEN_EXTEND)
                                : (f->mode != OPEN_OUTPUT && f->mode != OPEN_IO)) {
        esfh_set_status(fcd, "48");
        return 0;
    }
    if (f->nonexistent) {
        esfh_set_status(fcd, "48");
        return 0;
    }
    if (record_length(f, fcd, &reclen))
        return 0;
    if (f->org == ORG_RELATIVE) {
        if (f->access == ACCESS_SEQ) {
            /* Sequential WRITE appends after the highest record number. */
            struct esfh_cursor cur;
            DBT key, data;
            unsigned char vbuf[8];
            u_int32_t hi = 0, lo = 0;
            ret = esfh_cur_open(f, 0, txn, &cur);
            if (ret != 0)
                return ret;
            esfh_dbt_out(&key, pk, sizeof pk);
            esfh_dbt_out(&data, vbuf, 0);
            data.flags |= DB_DBT_PARTIAL;
            ret = esfh_cur_get(&cur, &key, &data, DB_LAST);
            esfh_cur_close(&cur);
            if (ret == 0) {
                hi = esfh_get_be32(pk);
                lo = esfh_get_be32(pk + 4);
            } else if (ret != DB_NOTFOUND) {
                return ret;
            }
            if (++lo == 0)
                hi++;
            esfh_put_be32(pk, hi);
            esfh_put_be32(pk + 4, lo);
        } else {
            if (rel_key_zero(fcd)) {
                esfh_set_status(fcd, "24");
                return 0;
            }
            memcpy(pk, fcd->relKey, 8);
        }
        pklen = 8;
    } else {
        pklen = (u_int32_t)esfh_key_bytes(f, 0, fcd->recPtr, pk);
        if (f->access == ACCESS_SEQ && f->have_lastwrite && memcmp(f->lastwrite, pk, pklen) > 0) {
            esfh_set_status(fcd, "21");
            return 0;
        }
        memcpy(f->lastwrite, pk, pklen);
        f->have_lastwrite = 1;
    }
    ret = esfh_get_primary(f, txn, pk, pklen, esfh_rmw(f, txn) ? DB_RMW : 0, &oldlen);
    if (ret == 0) {
        esfh_set_status(fcd, f->org == ORG_INDEXED && f->access == ACCESS_SEQ &&
                   f->mode == OPEN_OUTPUT ? "21" : "22");
        return 0;
    }
    if (ret != DB_NOTFOUND)
        return ret;
    ret = store(f, fcd, txn, pk, pklen, 1, 0, reclen, &status);
    if (ret == 0 && status[0] == '2' && f->org == ORG_INDEXED && f->access == ACCESS_SEQ &&
        f->mode == OPEN_OUTPUT)
        status = "21";   /* libcob reports any duplicate in a sequential load as 21 */
    if (ret == 0) {
        esfh_set_status(fcd, status);
        if (f->org == ORG_RELATIVE && f->access == ACCESS_SEQ && status[0] == '0')
            esfh_set_relative_key(fcd, pk, 0);
        esfh_note_write();
    }
    return ret;
}

/* The prime key REWRITE and DELETE act on: the last record read (sequential access) or the
 * key in the record area / RELATIVE KEY (random and dynamic access). */
static int target_key(struct efile *f, FCD3 *fcd, unsigned char *pk, u_int32_t *pklen)
{
    if (f->org == ORG_RELATIVE) {
        if (f->access == ACCESS_SEQ) {
            memcpy(pk, f->lastprime, 8);
        } else {
            if (rel_key_zero(fcd))
                return -1;
            memcpy(pk, fcd->relKey, 8);
        }
        *pklen = 8;
        return 0;
    }
    *pklen = (u_int32_t)esfh_key_bytes(f, 0, fcd->recPtr, pk);
    if (f->access == ACCESS_SEQ &&
        (*pklen != f->lastprimelen || memcmp(pk, f->lastprime, *pklen) != 0))
        return -2;
    return 0;
}

static int update_checks(struct efile *f, FCD3 *fcd)
{
    int read_done = f->read_done;
    f->read_done = 0;
    if (f->mode != OPEN_IO || f->nonexistent) {
        esfh_set_status(fcd, "49");
        return 1;
    }
    if (f->access == ACCESS_SEQ && !read_done) {
        esfh_set_status(fcd, "43");
        return 1;
    }
    return 0;
}

int esfh_do_rewrite(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char pk[KEYBUF];
    u_int32_t pklen, oldlen, reclen;
    const char *status;
    int ret, t;

    if (update_checks(f, fcd) || record_length(f, fcd, &reclen))
        return 0;
    t = target_key(f, fcd, pk, &pklen);
    if (t != 0) {
        esfh_set_status(fcd, t == -1 ? "24" : "21");
        return 0;
    }
    /* libcob checks the alternate keys before it looks for the record. */
    ret = check_alt_keys(f, fcd, txn, pk, pklen, &status);
    if (ret != 0 || status[0] != '0') {
        esfh_set_status(fcd, status);
        return ret;
    }
    ret = esfh_get_primary(f, txn, pk, pklen, DB_RMW, &oldlen);
    if (ret == DB_NOTFOUND) {
        /* libcob 3.1.2's RELATIVE handler answers "00" for an empty slot in random access and
         * changes nothing (the standard says "23"); programs tested against it rely on that. */
        esfh_set_status(fcd, f->org == ORG_RELATIVE && f->access != ACCESS_SEQ ? "00" : "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    /* libcob's RELATIVE REWRITE replaces the record's bytes and keeps the length it had
     * (relative_rewrite in 3.1.2 and 3.2 writes the record area only, not the slot's size). */
    if (f->org == ORG_RELATIVE)
        reclen = oldlen < f->maxrec ? oldlen : f->maxrec;
    ret = store(f, fcd, txn, pk, pklen, 0, oldlen, reclen, &status);
    if (ret == 0) {
        esfh_set_status(fcd, status);
        esfh_note_write();
    }
    return ret;
}

int esfh_do_delete(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char pk[KEYBUF], ik[KEYBUF + SEQLEN], kb[KEYBUF];
    u_int32_t pklen, oldlen, iklen;
    DBT key;
    int ret, t, k;

    if (update_checks(f, fcd))
        return 0;
    t = target_key(f, fcd, pk, &pklen);
    if (t != 0) {
        esfh_set_status(fcd, t == -1 ? "24" : "21");
        return 0;
    }
    ret = esfh_get_primary(f, txn, pk, pklen, DB_RMW, &oldlen);
    if (ret == DB_NOTFOUND) {
        /* libcob 3.1.2's RELATIVE handler answers "00" for an empty slot in random access and
         * changes nothing (the standard says "23"); programs tested against it rely on that. */
        esfh_set_status(fcd, f->org == ORG_RELATIVE && f->access != ACCESS_SEQ ? "00" : "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    for (k = 1; k < f->nkeys; k++) {
        esfh_key_bytes(f, k, f->buf, kb);
        if (suppressed(f, k, kb))
            continue;
        iklen = sec_key(f, k, f->buf, oldlen + (u_int32_t)(f->ndups * SEQLEN), ik);
        esfh_dbt_in(&key, ik, iklen);
        ret = esfh_tbl_del(f, k, txn, &key);
        if (ret != 0 && ret != DB_NOTFOUND)
            return ret;
    }
    esfh_dbt_in(&key, pk, pklen);
    ret = esfh_tbl_del(f, 0, txn, &key);
    if (ret == 0) {
        esfh_set_status(fcd, "00");
        esfh_note_write();
    }
    return ret;
}
