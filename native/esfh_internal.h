/*
 * ESFH internals shared by the file-operation sources: esfh.c (entry point, OPEN, CLOSE),
 * esfh_read.c (START and READ) and esfh_write.c (WRITE, REWRITE, DELETE). The stored format
 * these structures describe is documented at the top of esfh.c.
 */
#ifndef ESFH_INTERNAL_H
#define ESFH_INTERNAL_H

#include <limits.h>
#include <string.h>

#include "esfh.h"

#define MAXKEYS 16
#define MAXCOMP 8
#define KEYBUF 1024
#define SEQLEN 4
#define RELLEN 4        /* the length after a RELATIVE slot holding a shorter record */
/* The longest record: its buffer, with the trailers, must fit a Berkeley DB length (32 bits). */
#define ESFH_MAX_RECORD (0x7fffffffu - MAXKEYS * SEQLEN - RELLEN)

enum { POS_FIRST, POS_AT, POS_AFTER };

/* An operation's result beside Berkeley DB's (-30999 to -30800) and errno values: the file
 * holds a record or index entry of a length it cannot have (status 30, reason on stderr). */
#define ESFH_DAMAGED (-30500)

/* ESFH answers as the handler of the libcob it is built against (and so runs with). */
#define ESFH_LIBCOB_AT_LEAST(major, minor)                                                    \
    (__LIBCOB_VERSION > (major) || (__LIBCOB_VERSION == (major) && __LIBCOB_VERSION_MINOR >= (minor)))

/* Status of a WRITE or REWRITE that adds a duplicate of an alternate key WITH DUPLICATES:
 * 02 in libcob 3.1; 3.2's BDB code overwrites its 02 with the result of the index put. */
#if ESFH_LIBCOB_AT_LEAST(3, 2)
#define ESFH_STATUS_DUPLICATE_ADDED "00"
#else
#define ESFH_STATUS_DUPLICATE_ADDED "02"
#endif

struct keydef {
    int ncomp, pos[MAXCOMP], len[MAXCOMP];
    int keylen;
    int dups, sparse, seqslot;
    unsigned char sparse_ch;
};

struct esfh_pgtable;      /* esfh_pg.c: a file's table in a PostgreSQL store */

struct dbset {
    struct dbset *next;
    char path[PATH_MAX];
    int ndb;
    DB *db[MAXKEYS];            /* Berkeley DB: the primary database, then one per alternate key */
    struct esfh_pgtable *pg;    /* PostgreSQL: the file's one table (db[] unused) */
};

/* A cursor on one of a file's indexes (k: 0 the prime key, 1.. the alternate keys), for the
 * length of one operation: a Berkeley DB cursor, or a position in esfh_pg.c's rows. */
struct esfh_cursor {
    struct efile *f;
    int k;
    DBC *dbc;
    int row;                    /* PostgreSQL: the current row of the index's fetched rows */
    int positioned;
};

struct efile {
    int org, access, mode, nonexistent, first_read;
    int nkeys, ndups;
    struct keydef key[MAXKEYS];
    struct dbset *dbs;
    int curkey, state, eof, bof, read_done;
    unsigned char pos[KEYBUF + SEQLEN];
    u_int32_t poslen;
    unsigned char lastprime[KEYBUF];
    u_int32_t lastprimelen;
    unsigned char lastwrite[KEYBUF];
    int have_lastwrite;
    unsigned char *buf;       /* record + sequence trailer */
    u_int32_t bufsize, maxrec, minrec;
    u_int32_t image;          /* bytes of the record area in buf: the record, or a RELATIVE slot */
};

/* The tiny helpers below run on every record access, so they stay inlinable in each file. */

static inline void esfh_set_status(FCD3 *fcd, const char *st)
{
    fcd->fileStatus[0] = (unsigned char)st[0];
    fcd->fileStatus[1] = (unsigned char)st[1];
}

static inline void esfh_dbt_in(DBT *d, const void *data, u_int32_t size)
{
    memset(d, 0, sizeof *d);
    d->data = (void *)data;
    d->size = size;
}

static inline void esfh_dbt_out(DBT *d, void *buf, u_int32_t cap)
{
    memset(d, 0, sizeof *d);
    d->data = buf;
    d->ulen = cap;
    d->flags = DB_DBT_USERMEM;
}

static inline u_int32_t esfh_get_be32(const unsigned char *p)
{
    return ((u_int32_t)p[0] << 24) | ((u_int32_t)p[1] << 16) | ((u_int32_t)p[2] << 8) | p[3];
}

/* A 2-byte COMP-X field of the FCD. libcob's LDCOMPX2 and LDCOMPX4 shift bytes promoted to
 * int, which is undefined for a 4-byte value of 2 GiB or more (a corrupt or hand-made FCD):
 * ESFH reads every FCD field as unsigned bytes (esfh_get_be32 for 4-byte fields). */
static inline unsigned esfh_get_be16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static inline void esfh_put_be32(unsigned char *p, u_int32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* esfh_store.c: the tables of a file, on either store. Berkeley DB's DBTs, flags and errors
 * are the interface (DB_NOTFOUND, DB_BUFFER_SMALL, DB_LOCK_DEADLOCK, DB_RMW, DB_DBT_PARTIAL
 * with dlen 0: no data wanted); PostgreSQL answers in the same terms. Writes to an alternate
 * index k > 0 are what the primary put implies (PostgreSQL keeps them as columns of the
 * record's row): callers make them all the same, in the order Berkeley DB needs. */
int esfh_tbl_get(struct efile *f, int k, DB_TXN *txn, DBT *key, DBT *data, u_int32_t flags);
int esfh_tbl_put(struct efile *f, int k, DB_TXN *txn, DBT *key, DBT *data, int isnew);
int esfh_tbl_del(struct efile *f, int k, DB_TXN *txn, DBT *key);
int esfh_tbl_truncate(struct efile *f, DB_TXN *txn);
void esfh_tbl_forget(struct efile *f);
int esfh_cur_open(struct efile *f, int k, DB_TXN *txn, struct esfh_cursor *cur);
int esfh_cur_get(struct esfh_cursor *cur, DBT *key, DBT *data, u_int32_t flags);
void esfh_cur_close(struct esfh_cursor *cur);

int esfh_store_ready(void);              /* esfh_env.c: files can be opened */

/* esfh_pg.c: the PostgreSQL store (its transactions are declared in esfh.h). */
int esfh_pg_open_table(struct dbset *s, const char *path, int create, int *exists);
void esfh_pg_close_table(struct dbset *s);
int esfh_pg_get(struct efile *f, int k, DBT *key, DBT *data, u_int32_t flags);
int esfh_pg_put(struct efile *f, DBT *key, DBT *data, int isnew);
int esfh_pg_del(struct efile *f, DBT *key);
int esfh_pg_truncate(struct efile *f);
int esfh_pg_cur_get(struct esfh_cursor *cur, DBT *key, DBT *data, u_int32_t flags);
void esfh_pg_forget(struct efile *f);

/* esfh_write.c: alternate key k's index entry for a stored value (record + sequence
 * trailer of vlen bytes): its length, or -1 for a SPARSE key that is not indexed. */
int esfh_alt_entry(struct efile *f, int k, const unsigned char *val, u_int32_t vlen,
                   unsigned char *out);

/* esfh.c */
int esfh_key_bytes(struct efile *f, int k, const unsigned char *rec, unsigned char *out);

/* esfh_read.c */
int esfh_damaged(struct efile *f, const char *what, u_int32_t size, u_int32_t expected);
int esfh_get_primary(struct efile *f, DB_TXN *txn, const void *pk, u_int32_t pklen,
                     u_int32_t flags, u_int32_t *reclen);
int esfh_set_relative_key(FCD3 *fcd, const unsigned char *rk, int checked);
u_int32_t esfh_rmw(struct efile *f, DB_TXN *txn);
int esfh_read_seq(struct efile *f, FCD3 *fcd, DB_TXN *txn, int prev);
int esfh_do_start(struct efile *f, FCD3 *fcd, DB_TXN *txn, int cond);
int esfh_do_read_random(struct efile *f, FCD3 *fcd, DB_TXN *txn);

/* esfh_write.c */
int esfh_do_write(struct efile *f, FCD3 *fcd, DB_TXN *txn);
int esfh_do_rewrite(struct efile *f, FCD3 *fcd, DB_TXN *txn);
int esfh_do_delete(struct efile *f, FCD3 *fcd, DB_TXN *txn);

#endif
