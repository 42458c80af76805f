/*
 * A file's indexes on the store in use: Berkeley DB's databases (the primary one and one per
 * alternate key, see esfh.c), or the file's table in PostgreSQL (esfh_pg.c). The file
 * operations call only these, so both stores run the same code above them.
 */
#include "esfh_internal.h"

int esfh_tbl_get(struct efile *f, int k, DB_TXN *txn, DBT *key, DBT *data, u_int32_t flags)
{
    DB *db;
    if (f->dbs->pg != NULL)
        return esfh_pg_get(f, k, key, data, flags);
    db = f->dbs->db[k];
    return db->get(db, txn, key, data, flags);
}

/* isnew: a WRITE (the record is not there), not a REWRITE. Berkeley DB overwrites either way
 * under the lock taken when the record was looked for; PostgreSQL inserts, so that a
 * concurrent WRITE of the same key fails and runs again instead of overwriting. */
int esfh_tbl_put(struct efile *f, int k, DB_TXN *txn, DBT *key, DBT *data, int isnew)
{
    DB *db;
    if (f->dbs->pg != NULL)
        return k == 0 ? esfh_pg_put(f, key, data, isnew) : 0;
    db = f->dbs->db[k];
    return db->put(db, txn, key, data, 0);
}

int esfh_tbl_del(struct efile *f, int k, DB_TXN *txn, DBT *key)
{
    DB *db;
    if (f->dbs->pg != NULL)
        return k == 0 ? esfh_pg_del(f, key) : 0;
    db = f->dbs->db[k];
    return db->del(db, txn, key, 0);
}

int esfh_tbl_truncate(struct efile *f, DB_TXN *txn)
{
    u_int32_t count;
    int i, ret;
    if (f->dbs->pg != NULL)
        return esfh_pg_truncate(f);
    for (i = 0; i < f->dbs->ndb; i++) {
        ret = f->dbs->db[i]->truncate(f->dbs->db[i], txn, &count, 0);
        if (ret != 0)
            return ret;
    }
    return 0;
}

/* What the store read ahead of the file's indexes, forgotten: the next cursor get asks it
 * again and sees what other transactions committed since (see esfh_read_seq). Berkeley DB
 * reads nothing ahead. */
void esfh_tbl_forget(struct efile *f)
{
    if (f->dbs->pg != NULL)
        esfh_pg_forget(f);
}

int esfh_cur_open(struct efile *f, int k, DB_TXN *txn, struct esfh_cursor *cur)
{
    DB *db;
    cur->f = f;
    cur->k = k;
    cur->dbc = NULL;
    cur->row = -1;
    cur->positioned = 0;
    if (f->dbs->pg != NULL)
        return 0;
    db = f->dbs->db[k];
    return db->cursor(db, txn, &cur->dbc, 0);
}

int esfh_cur_get(struct esfh_cursor *cur, DBT *key, DBT *data, u_int32_t flags)
{
    if (cur->dbc == NULL)
        return esfh_pg_cur_get(cur, key, data, flags);
    return cur->dbc->get(cur->dbc, key, data, flags);
}

void esfh_cur_close(struct esfh_cursor *cur)
{
    if (cur->dbc != NULL)
        cur->dbc->close(cur->dbc);
    cur->dbc = NULL;
}
