/*
 * ESFH positioning and reading: START, READ NEXT/PREVIOUS through a cursor on the current
 * key's database, and READ by key (see esfh.c for the stored format).
 */
#include "esfh_internal.h"

/* Refuse a stored record or index entry of a length this file cannot have (a damaged file, or
 * one written by a program with another record or key layout) before any of it is used: what
 * ESFH derives from it (the record's length, its sequence numbers, the keys it copies) would
 * lie outside the value, or outside buffers sized for this file. Returns ESFH_DAMAGED. */
int esfh_damaged(struct efile *f, const char *what, u_int32_t size, u_int32_t expected)
{
    esfh_set_error("ESFH: file %s holds %s of %u bytes where this program's description of the "
                   "file allows %u: the file is damaged or was written with another record or "
                   "key layout (check it with 'esrt file verify')",
                   f->dbs ? f->dbs->path : "?", what, size, expected);
    return ESFH_DAMAGED;
}

/* Fetch the primary record whose prime key is pk into f->buf; *reclen: the record's length,
 * f->image: how many bytes of the record area buf holds (see esfh.c for RELATIVE slots). */
int esfh_get_primary(struct efile *f, DB_TXN *txn, const void *pk, u_int32_t pklen,
                     u_int32_t flags, u_int32_t *reclen)
{
    DBT key, data;
    u_int32_t trailer = (u_int32_t)(f->ndups * SEQLEN);
    int ret;
    esfh_dbt_in(&key, pk, pklen);
    esfh_dbt_out(&data, f->buf, f->bufsize);
    ret = esfh_tbl_get(f, 0, txn, &key, &data, flags);
    /* buf holds the longest value the file can have: a longer one is damaged. */
    if (ret == DB_BUFFER_SMALL)
        return esfh_damaged(f, "a record", data.size, f->bufsize);
    if (ret != 0)
        return ret;
    if (f->org == ORG_RELATIVE && data.size == f->maxrec + RELLEN) {
        *reclen = esfh_get_be32(f->buf + f->maxrec);
        if (*reclen > f->maxrec)
            return esfh_damaged(f, "a RELATIVE slot holding a record", *reclen, f->maxrec);
        f->image = f->maxrec;
    } else {
        /* At least the sequence numbers, at most the longest record and them: the length
         * would wrap around below, and the sequence numbers be read before the record. */
        if (data.size < trailer || data.size - trailer > f->maxrec)
            return esfh_damaged(f, "a record", data.size, f->maxrec + trailer);
        *reclen = data.size - trailer;
        f->image = *reclen;
    }
    return 0;
}

/* An index entry found by a cursor: index k's key (the prime key for k == 0) and, for an
 * alternate index, the prime key it points at, of the lengths this file's keys have. Longer
 * ones would overflow the key buffers they are copied into. */
static int check_entry(struct efile *f, int k, u_int32_t iklen, u_int32_t pklen)
{
    u_int32_t prime = (u_int32_t)f->key[0].keylen;
    u_int32_t want = k == 0 ? prime
                            : (u_int32_t)f->key[k].keylen + (f->key[k].dups ? SEQLEN : 0);
    if (iklen != want)
        return esfh_damaged(f, k == 0 ? "a prime key" : "an alternate key", iklen, want);
    if (k != 0 && pklen != prime)
        return esfh_damaged(f, "an alternate key entry naming a prime key", pklen, prime);
    return 0;
}

/* The record just fetched into the record area: a RELATIVE slot whole, as libcob's
 * relative_read and relative_read_next read the slot (3.1.2 and 3.2); otherwise the record,
 * leaving the rest of the area as it was, as libcob's BDB handler does. */
static void deliver(struct efile *f, FCD3 *fcd, u_int32_t reclen)
{
    u_int32_t image = f->image < f->maxrec ? f->image : f->maxrec;
    if (reclen > f->maxrec)
        reclen = f->maxrec;
    memcpy(fcd->recPtr, f->buf, image);
    STCOMPX4(reclen, fcd->curRecLen);
}

/* A READ succeeded: status 00, and the program learns the record's length (its DEPENDING ON
 * item when it came through esfh_extfh_*). */
static void read_ok(FCD3 *fcd)
{
    esfh_set_status(fcd, "00");
    esfh_program_record_read(esfh_get_be32(fcd->curRecLen));
}

/* Record the relative record number in the program's RELATIVE KEY item. When the program
 * came through esfh_extfh_* (esfh_calls.c) its file is in view and the item is set the way
 * libcob's own handler sets it. Otherwise only libcob 3.1.2 can help: its EXTFH copies
 * fcd->relKey into the item before it looks at the opcode, and OP_GETINFO then does nothing.
 * checked: after a READ NEXT or PREVIOUS, where libcob's relative_read_next (3.1.2 and 3.2)
 * zeroes the item and adds the number to it, keeping the item on overflow; returns -1 when the
 * number does not fit the item (the READ's status is then 14). Without the program's file in
 * view the item's size is unknown: the number is stored as it is and 0 returned. */
int esfh_set_relative_key(FCD3 *fcd, const unsigned char *rk, int checked)
{
    unsigned char opcode[2] = {0x00, (unsigned char)OP_GETINFO};
    unsigned char status[2] = {fcd->fileStatus[0], fcd->fileStatus[1]};
    cob_file *calling = esfh_calling_file();
    int number = (int)esfh_get_be32(rk + 4);
    memcpy(fcd->relKey, rk, 8);
    if (calling != NULL) {
        cob_field *item = calling->keys != NULL ? calling->keys[0].field : NULL;
        if (item == NULL)
            return 0;
        if (!checked) {
            cob_set_int(item, number);
            return 0;
        }
        cob_set_int(item, 0);
        return cob_add_int(item, number, COB_STORE_KEEP_ON_OVERFLOW) != 0 ? -1 : 0;
    }
    EXTFH(opcode, fcd);
    fcd->fileStatus[0] = status[0];
    fcd->fileStatus[1] = status[1];
    return 0;
}

/* Does the record in f->buf (reclen bytes and its sequence numbers) still have the entry ik of
 * alternate index k that led to it? */
static int still_at(struct efile *f, int k, const unsigned char *ik, u_int32_t iklen,
                    u_int32_t reclen)
{
    unsigned char entry[KEYBUF + SEQLEN];
    int i, n;
    /* A key that a short record of a variable-length file does not reach was indexed from
     * whatever followed the record then, which cannot be told again: such a record is taken
     * as the index gives it, as before this check. */
    for (i = 0; i < f->key[k].ncomp; i++)
        if ((u_int32_t)(f->key[k].pos[i] + f->key[k].len[i]) > reclen)
            return 1;
    n = esfh_alt_entry(f, k, f->buf, reclen + (u_int32_t)(f->ndups * SEQLEN), entry);
    return n >= 0 && (u_int32_t)n == iklen && memcmp(entry, ik, iklen) == 0;
}

/* A record found through index k at index key ik: read it, make it current. DB_NOTFOUND when
 * it is gone, or (k > 0) no longer has that alternate key: on the PostgreSQL store another
 * region may change it between the index read, which locks nothing, and the record's lock
 * (Berkeley DB's locks on index entries keep that from happening there). */
static int take(struct efile *f, FCD3 *fcd, DB_TXN *txn, int k, const unsigned char *ik,
                u_int32_t iklen, const unsigned char *pk, u_int32_t pklen, u_int32_t flags)
{
    u_int32_t reclen;
    int ret = esfh_get_primary(f, txn, pk, pklen, flags, &reclen);
    if (ret != 0)
        return ret;
    if (k > 0 && !still_at(f, k, ik, iklen, reclen))
        return DB_NOTFOUND;
    deliver(f, fcd, reclen);
    memcpy(f->pos, ik, iklen);
    f->poslen = iklen;
    memcpy(f->lastprime, pk, pklen);
    f->lastprimelen = pklen;
    f->curkey = k;
    f->state = POS_AFTER;
    f->eof = f->bof = 0;
    f->read_done = 1;
    return 0;
}

u_int32_t esfh_rmw(struct efile *f, DB_TXN *txn)
{
    /* Reading a file opened I-O usually precedes a REWRITE: take the write lock at once so two
     * transactions doing read-then-rewrite queue instead of deadlocking on the upgrade. */
    return f->mode == OPEN_IO && txn != NULL ? DB_RMW : 0;
}

/* The index entry after (prev: before) the file's position on its key of reference, in
 * kbuf (and, on an alternate index, the prime key in vbuf); DB_NOTFOUND at the end. */
static int next_entry(struct efile *f, DB_TXN *txn, int prev, unsigned char *kbuf, DBT *key,
                      unsigned char *vbuf, DBT *data)
{
    struct esfh_cursor cur;
    int ret, exact;
    u_int32_t lk;

    ret = esfh_cur_open(f, f->curkey, txn, &cur);
    if (ret != 0)
        return ret;
    /* Position with write locks when a REWRITE may follow (see esfh_rmw): a read lock taken here
     * and upgraded later deadlocks against every other transaction doing the same. */
    lk = esfh_rmw(f, txn);
    esfh_dbt_out(key, kbuf, KEYBUF + SEQLEN);
    esfh_dbt_out(data, vbuf, KEYBUF);
    if (f->curkey == 0) {
        /* On the prime index the value is the record, which take() reads again: none of it
         * is wanted here, and a record longer than vbuf would fail the cursor's get. */
        data->flags |= DB_DBT_PARTIAL;
        data->dlen = 0;
    }
    if (!prev && (f->bof || f->state == POS_FIRST)) {
        ret = esfh_cur_get(&cur, key, data, (DB_FIRST) | lk);
    } else if (prev && f->eof) {
        ret = esfh_cur_get(&cur, key, data, (DB_LAST) | lk);
    } else {
        memcpy(kbuf, f->pos, f->poslen);
        key->size = f->poslen;
        ret = esfh_cur_get(&cur, key, data, (DB_SET_RANGE) | lk);
        exact = ret == 0 && key->size == f->poslen && memcmp(kbuf, f->pos, f->poslen) == 0;
        if (!prev) {
            if (ret == 0 && exact && f->state == POS_AFTER)
                ret = esfh_cur_get(&cur, key, data, (DB_NEXT) | lk);
        } else if (ret == DB_NOTFOUND) {
            ret = esfh_cur_get(&cur, key, data, (DB_LAST) | lk);
        } else if (ret == 0 && !(exact && f->state == POS_AT)) {
            ret = esfh_cur_get(&cur, key, data, (DB_PREV) | lk);
        }
    }
    esfh_cur_close(&cur);
    if (ret == 0)
        ret = check_entry(f, f->curkey, key->size, data->size);
    return ret;
}

int esfh_read_seq(struct efile *f, FCD3 *fcd, DB_TXN *txn, int prev)
{
    DBT key, data;
    unsigned char kbuf[KEYBUF + SEQLEN], vbuf[KEYBUF], missed[KEYBUF + SEQLEN];
    u_int32_t missedlen = 0;
    int ret, again;

    if (f->nonexistent) {
        esfh_set_status(fcd, f->first_read ? "10" : "46");
        f->first_read = 0;
        return 0;
    }
    if ((!prev && f->eof) || (prev && f->bof)) {
        esfh_set_status(fcd, "46");
        return 0;
    }
    if (prev && f->state == POS_FIRST && !f->eof) {
        f->bof = 1;
        esfh_set_status(fcd, "10");
        return 0;
    }
    for (;;) {
        ret = next_entry(f, txn, prev, kbuf, &key, vbuf, &data);
        if (ret == DB_NOTFOUND) {
            if (prev)
                f->bof = 1;
            else
                f->eof = 1;
            f->read_done = 0;
            esfh_set_status(fcd, "10");
            return 0;
        }
        if (ret != 0)
            return ret;
        ret = take(f, fcd, txn, f->curkey, kbuf, key.size, f->curkey == 0 ? kbuf : vbuf,
                   f->curkey == 0 ? key.size : data.size, esfh_rmw(f, txn));
        if (ret != DB_NOTFOUND)
            break;
        /* The record went between finding its entry and reading it: another process deleted
         * it or changed the alternate key of the scan (on the PostgreSQL store, a region
         * elsewhere, after the entry was read ahead and before the record was locked). The
         * store is asked again, at that entry once more
         * (a transaction that deleted the record and wrote it again under the same key left
         * a new one, which a read locking the old one does not see), then past it: the next
         * record is the one to read, as if the entry had never been met. */
        again = missedlen == key.size && memcmp(missed, kbuf, key.size) == 0;
        memcpy(missed, kbuf, key.size);
        missedlen = key.size;
        esfh_tbl_forget(f);
        memcpy(f->pos, kbuf, key.size);
        f->poslen = key.size;
        f->state = again ? POS_AFTER : POS_AT;
        f->eof = f->bof = 0;
    }
    if (ret != 0)
        return ret;
    if (f->org == ORG_RELATIVE && esfh_set_relative_key(fcd, kbuf, 1) != 0) {
        /* The record is in the record area but its number does not fit the RELATIVE KEY:
         * like libcob, status 14 and the file stays at this record, so that the next READ
         * meets it again (and in sequential access a REWRITE or DELETE is 43). */
        f->state = POS_AT;
        f->read_done = 0;
        esfh_set_status(fcd, "14");
        return 0;
    }
    read_ok(fcd);
    return 0;
}

static int key_index(struct efile *f, FCD3 *fcd)
{
    int k = esfh_get_be16(fcd->refKey);
    return k >= 0 && k < f->nkeys ? k : 0;
}

/* Search index k for the key in the record area (first partlen bytes) under condition cond
 * (an OP_START_* opcode); on success the found entry's index key and prime key. */
static int search(struct efile *f, FCD3 *fcd, DB_TXN *txn, int k, int cond, int partlen,
                  unsigned char *ik, u_int32_t *iklen, unsigned char *pk, u_int32_t *pklen)
{
    struct esfh_cursor cur;
    DBT key, data;
    unsigned char want[KEYBUF];
    int wantlen, ret;
    u_int32_t lk;

    if (f->org == ORG_RELATIVE) {
        memcpy(want, fcd->relKey, 8);
        wantlen = 8;
        partlen = 8;
    } else {
        wantlen = esfh_key_bytes(f, k, fcd->recPtr, want);
        if (partlen <= 0 || partlen > wantlen)
            partlen = wantlen;
    }
    ret = esfh_cur_open(f, k, txn, &cur);
    if (ret != 0)
        return ret;
    lk = esfh_rmw(f, txn);
    memcpy(ik, want, (size_t)partlen);
    esfh_dbt_out(&key, ik, KEYBUF + SEQLEN);
    key.size = (u_int32_t)partlen;
    esfh_dbt_out(&data, pk, KEYBUF);
    if (k == 0) {
        /* The value is the record (see esfh_read_seq); the caller reads it by its key. */
        data.flags |= DB_DBT_PARTIAL;
        data.dlen = 0;
    }
#define CMP() memcmp(ik, want, (size_t)partlen)
    ret = esfh_cur_get(&cur, &key, &data, (DB_SET_RANGE) | lk);
    switch (cond) {
    case OP_START_EQ:
        if (ret == 0 && CMP() != 0)
            ret = DB_NOTFOUND;
        break;
    case OP_START_GT:
        while (ret == 0 && CMP() == 0)
            ret = esfh_cur_get(&cur, &key, &data, (DB_NEXT) | lk);
        break;
    case OP_START_LT:
        ret = esfh_cur_get(&cur, &key, &data, (ret == DB_NOTFOUND ? DB_LAST : DB_PREV) | lk);
        break;
    case OP_START_LE:
        if (ret == DB_NOTFOUND) {
            ret = esfh_cur_get(&cur, &key, &data, (DB_LAST) | lk);
        } else if (ret == 0 && CMP() != 0) {
            ret = esfh_cur_get(&cur, &key, &data, (DB_PREV) | lk);
        } else if (ret == 0 && f->key[k].dups) {
            /* Like GnuCOBOL: the last of the duplicates of the found key value. */
            unsigned char same[KEYBUF];
            int len = f->key[k].keylen;
            memcpy(same, ik, (size_t)len);
            while (ret == 0 && memcmp(ik, same, (size_t)len) == 0)
                ret = esfh_cur_get(&cur, &key, &data, (DB_NEXT) | lk);
            ret = esfh_cur_get(&cur, &key, &data, (ret == DB_NOTFOUND ? DB_LAST : DB_PREV) | lk);
        }
        break;
    case OP_START_FI:
        ret = esfh_cur_get(&cur, &key, &data, (DB_FIRST) | lk);
        break;
    case OP_START_LA:
        ret = esfh_cur_get(&cur, &key, &data, (DB_LAST) | lk);
        break;
    default: /* GE */
        break;
    }
#undef CMP
    esfh_cur_close(&cur);
    if (ret == 0)
        ret = check_entry(f, k, key.size, data.size);
    if (ret == 0) {
        *iklen = key.size;
        if (k == 0) {
            memcpy(pk, ik, key.size);
            *pklen = key.size;
        } else {
            *pklen = data.size;
        }
    }
    return ret;
}

int esfh_do_start(struct efile *f, FCD3 *fcd, DB_TXN *txn, int cond)
{
    unsigned char ik[KEYBUF + SEQLEN], pk[KEYBUF];
    u_int32_t iklen, pklen;
    int k = f->org == ORG_RELATIVE ? 0 : key_index(f, fcd), ret;

    f->read_done = 0;
    if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
        esfh_set_status(fcd, "47");
        return 0;
    }
    if (f->access == ACCESS_RANDOM) {
        esfh_set_status(fcd, "47");
        return 0;
    }
    if (f->nonexistent) {
        f->first_read = 0;
        esfh_set_status(fcd, "23");
        return 0;
    }
    ret = search(f, fcd, txn, k, cond, esfh_get_be16(fcd->effKeyLen), ik, &iklen, pk, &pklen);
    f->curkey = k;
    if (ret == DB_NOTFOUND) {
        f->eof = 1;
        f->bof = 0;
        esfh_set_status(fcd, "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    memcpy(f->pos, ik, iklen);
    f->poslen = iklen;
    f->state = POS_AT;
    f->eof = f->bof = 0;
    esfh_set_status(fcd, "00");
    return 0;
}

int esfh_do_read_random(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char ik[KEYBUF + SEQLEN], pk[KEYBUF];
    u_int32_t iklen, pklen;
    int k = f->org == ORG_RELATIVE ? 0 : key_index(f, fcd), ret, attempt;

    f->read_done = 0;
    if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
        esfh_set_status(fcd, "47");
        return 0;
    }
    if (f->nonexistent) {
        esfh_set_status(fcd, f->first_read ? "10" : "23");
        f->first_read = 0;
        return 0;
    }
    if (f->org == ORG_RELATIVE && esfh_get_be32(fcd->relKey) == 0 && esfh_get_be32(fcd->relKey + 4) == 0) {
        esfh_set_status(fcd, "23");
        return 0;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        ret = search(f, fcd, txn, k, OP_START_EQ, 0, ik, &iklen, pk, &pklen);
        if (ret != 0)
            break;
        ret = take(f, fcd, txn, k, ik, iklen, pk, pklen, esfh_rmw(f, txn));
        if (ret != DB_NOTFOUND)
            break;
        /* The record the index named went, or lost that key, meanwhile (see take): another
         * record may have the key now. Once more, on what the store holds now. */
        esfh_tbl_forget(f);
    }
    if (ret == DB_NOTFOUND) {
        esfh_set_status(fcd, "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    if (f->org == ORG_RELATIVE)
        esfh_set_relative_key(fcd, pk, 0);
    read_ok(fcd);
    return 0;
}
