/*
 * ESFH: the EXTFH entry point. Programs compiled with `cobc -fcallfh=ESFH` call
 * ESFH(opcode, fcd) for every file operation. INDEXED and RELATIVE files live in the
 * transactional Berkeley DB environment (esfh_env.c); SEQUENTIAL and LINE SEQUENTIAL files are
 * passed to libcob's own EXTFH.
 *
 * Storage of one COBOL file resolved to PATH (file names: the ASSIGN name mapped like libcob
 * does -- DD_NAME, dd_NAME, NAME, then COB_FILE_PATH -- made absolute):
 *  - PATH: btree, key = prime key bytes (RELATIVE: 8-byte big-endian record number, so btree
 *    order is numeric order), value = record bytes + one 4-byte big-endian sequence number per
 *    alternate key WITH DUPLICATES;
 *  - PATH.1, PATH.2 ...: one btree per alternate key, key = alternate key bytes (+ the sequence
 *    number for keys WITH DUPLICATES, so duplicates come back in the order they were written,
 *    as GnuCOBOL's BDB handler returns them), value = prime key.
 * libcob's EXTFH interface does none of the COBOL state checks (41, 42, 43, 46, 47, 48, 49):
 * this handler does them, following libcob's fileio.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esfh.h"

#define MAXKEYS 16
#define MAXCOMP 8
#define KEYBUF 1024
#define SEQLEN 4

enum { POS_FIRST, POS_AT, POS_AFTER };

struct keydef {
    int ncomp, pos[MAXCOMP], len[MAXCOMP];
    int keylen;
    int dups, sparse, seqslot;
    unsigned char sparse_ch;
};

struct dbset {
    struct dbset *next;
    char path[PATH_MAX];
    int ndb;
    DB *db[MAXKEYS];
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
};

static struct dbset *g_dbsets;

/* ---------- small helpers ---------- */

static void set_status(FCD3 *fcd, const char *st)
{
    fcd->fileStatus[0] = (unsigned char)st[0];
    fcd->fileStatus[1] = (unsigned char)st[1];
}

static void dbt_in(DBT *d, const void *data, u_int32_t size)
{
    memset(d, 0, sizeof *d);
    d->data = (void *)data;
    d->size = size;
}

static void dbt_out(DBT *d, void *buf, u_int32_t cap)
{
    memset(d, 0, sizeof *d);
    d->data = buf;
    d->ulen = cap;
    d->flags = DB_DBT_USERMEM;
}

static u_int32_t get_be32(const unsigned char *p)
{
    return ((u_int32_t)p[0] << 24) | ((u_int32_t)p[1] << 16) | ((u_int32_t)p[2] << 8) | p[3];
}

static void put_be32(unsigned char *p, u_int32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Copy key k's bytes (all components, concatenated) out of a record. */
static int key_bytes(struct efile *f, int k, const unsigned char *rec, unsigned char *out)
{
    int i, n = 0;
    if (f->org == ORG_RELATIVE)
        return 0;
    for (i = 0; i < f->key[k].ncomp; i++) {
        memcpy(out + n, rec + f->key[k].pos[i], (size_t)f->key[k].len[i]);
        n += f->key[k].len[i];
    }
    return n;
}

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

/* ---------- file names and DB handles ---------- */

static void resolve_name(FCD3 *fcd, char *out, size_t cap)
{
    char name[PATH_MAX], envname[PATH_MAX + 4], joined[PATH_MAX * 2 + 2], cwd[PATH_MAX];
    const char *value, *dir;
    int len = LDCOMPX2(fcd->fnameLen);
    if (len >= (int)sizeof name)
        len = sizeof name - 1;
    memcpy(name, fcd->fnamePtr, (size_t)len);
    name[len] = '\0';
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\0'))
        name[--len] = '\0';
    if (strchr(name, '/') == NULL) {
        const char *prefixes[] = {"DD_", "dd_", ""};
        int i;
        for (i = 0; i < 3; i++) {
            snprintf(envname, sizeof envname, "%s%s", prefixes[i], name);
            value = getenv(envname);
            if (value != NULL && value[0] != '\0') {
                snprintf(name, sizeof name, "%s", value);
                break;
            }
        }
    }
    if (name[0] != '/') {
        dir = getenv("COB_FILE_PATH");
        if (dir == NULL || dir[0] == '\0')
            dir = getcwd(cwd, sizeof cwd);
        snprintf(joined, sizeof joined, "%s/%s", dir ? dir : ".", name);
        if (joined[0] != '/' && getcwd(cwd, sizeof cwd) != NULL) {
            char abs[PATH_MAX * 3 + 4];
            snprintf(abs, sizeof abs, "%s/%s", cwd, joined);
            snprintf(out, cap, "%s", abs);
            return;
        }
        snprintf(out, cap, "%s", joined);
        return;
    }
    snprintf(out, cap, "%s", name);
}

static int get_dbset(const char *path, int ndb, struct dbset **out)
{
    struct dbset *s;
    DB_ENV *env = esfh_env();
    char name[PATH_MAX + 16];
    int i, ret;
    *out = NULL;
    if (env == NULL)
        return EINVAL;
    for (s = g_dbsets; s; s = s->next)
        if (strcmp(s->path, path) == 0 && s->ndb == ndb) {
            *out = s;
            return 0;
        }
    s = calloc(1, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->ndb = ndb;
    for (i = 0; i < ndb; i++) {
        if (i == 0)
            snprintf(name, sizeof name, "%s", path);
        else
            snprintf(name, sizeof name, "%s.%d", path, i);
        /* The handle outlives every request, so it is opened in its own transaction: a handle
         * opened inside a transaction that later aborts would become unusable. */
        ret = db_create(&s->db[i], env, 0);
        if (ret == 0)
            ret = s->db[i]->open(s->db[i], NULL, name, NULL, DB_BTREE,
                                 DB_CREATE | DB_THREAD | DB_AUTO_COMMIT, 0660);
        if (ret != 0) {
            esfh_set_error("ESFH: cannot open database %s: %s", name, db_strerror(ret));
            for (; i >= 0; i--)
                if (s->db[i])
                    s->db[i]->close(s->db[i], 0);
            free(s);
            return ret;
        }
    }
    s->next = g_dbsets;
    g_dbsets = s;
    *out = s;
    return 0;
}

void esfh_close_all_dbs(void)
{
    struct dbset *s, *next;
    int i;
    for (s = g_dbsets; s; s = next) {
        next = s->next;
        for (i = s->ndb - 1; i >= 0; i--)
            s->db[i]->close(s->db[i], 0);
        free(s);
    }
    g_dbsets = NULL;
}

/* ---------- OPEN / CLOSE ---------- */

static int load_keys(struct efile *f, FCD3 *fcd)
{
    KDB *kdb = fcd->kdbPtr;
    int k, c;
    if (f->org == ORG_RELATIVE) {
        f->nkeys = 1;
        f->key[0].ncomp = 0;
        f->key[0].keylen = 8;
        return 0;
    }
    if (kdb == NULL || LDCOMPX2(kdb->nkeys) < 1)
        return -1;
    f->nkeys = LDCOMPX2(kdb->nkeys);
    if (f->nkeys > MAXKEYS)
        return -1;
    for (k = 0; k < f->nkeys; k++) {
        struct keydef *kd = &f->key[k];
        EXTKEY *ek = (EXTKEY *)((char *)kdb + LDCOMPX2(kdb->key[k].offset));
        kd->ncomp = LDCOMPX2(kdb->key[k].count);
        if (kd->ncomp < 1 || kd->ncomp > MAXCOMP)
            return -1;
        kd->keylen = 0;
        for (c = 0; c < kd->ncomp; c++, ek++) {
            kd->pos[c] = (int)LDCOMPX4(ek->pos);
            kd->len[c] = (int)LDCOMPX4(ek->len);
            kd->keylen += kd->len[c];
        }
        if (kd->keylen > KEYBUF)
            return -1;
        kd->dups = k > 0 && (kdb->key[k].keyFlags & KEY_DUPS) != 0;
        kd->sparse = k > 0 && (kdb->key[k].keyFlags & KEY_SPARSE) != 0;
        kd->sparse_ch = kdb->key[k].sparse;
        kd->seqslot = kd->dups ? f->ndups++ : -1;
    }
    return 0;
}

static void free_file(FCD3 *fcd)
{
    struct efile *f = fcd->fileHandle;
    if (f != NULL) {
        free(f->buf);
        free(f);
    }
    fcd->fileHandle = NULL;
}

static int do_open(FCD3 *fcd, int mode, DB_TXN *txn)
{
    struct efile *f = fcd->fileHandle;
    char path[PATH_MAX];
    struct stat st;
    int exists, optional = (fcd->otherFlags & OTH_OPTIONAL) != 0, ret, i;
    u_int32_t count;

    resolve_name(fcd, path, sizeof path);
    exists = stat(path, &st) == 0;
    if (!exists && mode != OPEN_OUTPUT && !optional) {
        set_status(fcd, "35");
        return 0;
    }
    f->mode = mode;
    f->state = POS_FIRST;
    f->first_read = 1;
    if (!exists && mode == OPEN_INPUT) {
        /* OPTIONAL file opened INPUT: nothing is created; reads see an empty file. */
        f->nonexistent = 1;
        set_status(fcd, "05");
        return 0;
    }
    ret = get_dbset(path, f->nkeys, &f->dbs);
    if (ret != 0) {
        set_status(fcd, ret == EACCES ? "37" : "30");
        return 0;
    }
    if (mode == OPEN_OUTPUT) {
        for (i = 0; i < f->dbs->ndb; i++) {
            ret = f->dbs->db[i]->truncate(f->dbs->db[i], txn, &count, 0);
            if (ret != 0) {
                esfh_set_error("ESFH: cannot empty %s for OPEN OUTPUT: %s", path,
                               db_strerror(ret));
                set_status(fcd, ESFH_DEADLOCK(ret) ? "61" : "30");
                return ret;
            }
        }
    }
    set_status(fcd, !exists && optional && mode != OPEN_OUTPUT ? "05" : "00");
    return 0;
}

/* ---------- positioning and reading ---------- */

/* Fetch the primary record whose prime key is pk into f->buf; returns the record length. */
static int get_primary(struct efile *f, DB_TXN *txn, const void *pk, u_int32_t pklen,
                       u_int32_t flags, u_int32_t *reclen)
{
    DBT key, data;
    int ret;
    dbt_in(&key, pk, pklen);
    dbt_out(&data, f->buf, f->bufsize);
    ret = f->dbs->db[0]->get(f->dbs->db[0], txn, &key, &data, flags);
    if (ret == 0)
        *reclen = data.size - (u_int32_t)(f->ndups * SEQLEN);
    return ret;
}

static void deliver(struct efile *f, FCD3 *fcd, u_int32_t reclen)
{
    if (reclen > f->maxrec)
        reclen = f->maxrec;
    memcpy(fcd->recPtr, f->buf, reclen);
    STCOMPX4(reclen, fcd->curRecLen);
}

/* Record the relative record number in the program's RELATIVE KEY item. libcob's EXTFH copies
 * fcd->relKey into that item before it looks at the opcode; OP_GETINFO then does nothing. */
static void set_relative_key(FCD3 *fcd, const unsigned char *rk)
{
    unsigned char opcode[2] = {0x00, (unsigned char)OP_GETINFO};
    unsigned char status[2] = {fcd->fileStatus[0], fcd->fileStatus[1]};
    memcpy(fcd->relKey, rk, 8);
    EXTFH(opcode, fcd);
    fcd->fileStatus[0] = status[0];
    fcd->fileStatus[1] = status[1];
}

/* A record found through index k at index key ik: read it, make it current. */
static int take(struct efile *f, FCD3 *fcd, DB_TXN *txn, int k, const unsigned char *ik,
                u_int32_t iklen, const unsigned char *pk, u_int32_t pklen, u_int32_t flags)
{
    u_int32_t reclen;
    int ret = get_primary(f, txn, pk, pklen, flags, &reclen);
    if (ret != 0)
        return ret;
    deliver(f, fcd, reclen);
    memcpy(f->pos, ik, iklen);
    f->poslen = iklen;
    memcpy(f->lastprime, pk, pklen);
    f->lastprimelen = pklen;
    f->curkey = k;
    f->state = POS_AFTER;
    f->eof = f->bof = 0;
    f->read_done = 1;
    if (f->org == ORG_RELATIVE)
        set_relative_key(fcd, pk);
    return 0;
}

static u_int32_t rmw(struct efile *f, DB_TXN *txn)
{
    /* Reading a file opened I-O usually precedes a REWRITE: take the write lock at once so two
     * transactions doing read-then-rewrite queue instead of deadlocking on the upgrade. */
    return f->mode == OPEN_IO && txn != NULL ? DB_RMW : 0;
}

static int read_seq(struct efile *f, FCD3 *fcd, DB_TXN *txn, int prev)
{
    DB *db = f->dbs ? f->dbs->db[f->curkey] : NULL;
    DBC *cur;
    DBT key, data;
    unsigned char kbuf[KEYBUF + SEQLEN], vbuf[KEYBUF];
    int ret, exact, op;
    u_int32_t lk;

    if (f->nonexistent) {
        set_status(fcd, f->first_read ? "10" : "46");
        f->first_read = 0;
        return 0;
    }
    if ((!prev && f->eof) || (prev && f->bof)) {
        set_status(fcd, "46");
        return 0;
    }
    if (prev && f->state == POS_FIRST && !f->eof) {
        f->bof = 1;
        set_status(fcd, "10");
        return 0;
    }
    ret = db->cursor(db, txn, &cur, 0);
    if (ret != 0)
        return ret;
    /* Position with write locks when a REWRITE may follow (see rmw): a read lock taken here
     * and upgraded later deadlocks against every other transaction doing the same. */
    lk = rmw(f, txn);
    dbt_out(&key, kbuf, sizeof kbuf);
    dbt_out(&data, vbuf, sizeof vbuf);
    if (!prev && (f->bof || f->state == POS_FIRST)) {
        ret = cur->get(cur, &key, &data, (DB_FIRST) | lk);
    } else if (prev && f->eof) {
        ret = cur->get(cur, &key, &data, (DB_LAST) | lk);
    } else {
        memcpy(kbuf, f->pos, f->poslen);
        key.size = f->poslen;
        ret = cur->get(cur, &key, &data, (DB_SET_RANGE) | lk);
        exact = ret == 0 && key.size == f->poslen && memcmp(kbuf, f->pos, f->poslen) == 0;
        if (!prev) {
            if (ret == 0 && exact && f->state == POS_AFTER)
                ret = cur->get(cur, &key, &data, (DB_NEXT) | lk);
        } else if (ret == DB_NOTFOUND) {
            ret = cur->get(cur, &key, &data, (DB_LAST) | lk);
        } else if (ret == 0 && !(exact && f->state == POS_AT)) {
            ret = cur->get(cur, &key, &data, (DB_PREV) | lk);
        }
    }
    op = ret;
    cur->close(cur);
    if (op == DB_NOTFOUND) {
        if (prev)
            f->bof = 1;
        else
            f->eof = 1;
        f->read_done = 0;
        set_status(fcd, "10");
        return 0;
    }
    if (op != 0)
        return op;
    if (f->curkey == 0)
        ret = take(f, fcd, txn, 0, kbuf, key.size, kbuf, key.size, rmw(f, txn));
    else
        ret = take(f, fcd, txn, f->curkey, kbuf, key.size, vbuf, data.size, rmw(f, txn));
    if (ret == DB_NOTFOUND) {
        set_status(fcd, "23");
        return 0;
    }
    if (ret == 0)
        set_status(fcd, "00");
    return ret;
}

static int key_index(struct efile *f, FCD3 *fcd)
{
    int k = LDCOMPX2(fcd->refKey);
    return k >= 0 && k < f->nkeys ? k : 0;
}

/* Search index k for the key in the record area (first partlen bytes) under condition cond
 * (an OP_START_* opcode); on success the found entry's index key and prime key. */
static int search(struct efile *f, FCD3 *fcd, DB_TXN *txn, int k, int cond, int partlen,
                  unsigned char *ik, u_int32_t *iklen, unsigned char *pk, u_int32_t *pklen)
{
    DB *db = f->dbs->db[k];
    DBC *cur;
    DBT key, data;
    unsigned char want[KEYBUF];
    int wantlen, ret;
    u_int32_t lk;

    if (f->org == ORG_RELATIVE) {
        memcpy(want, fcd->relKey, 8);
        wantlen = 8;
        partlen = 8;
    } else {
        wantlen = key_bytes(f, k, fcd->recPtr, want);
        if (partlen <= 0 || partlen > wantlen)
            partlen = wantlen;
    }
    ret = db->cursor(db, txn, &cur, 0);
    if (ret != 0)
        return ret;
    lk = rmw(f, txn);
    memcpy(ik, want, (size_t)partlen);
    dbt_out(&key, ik, KEYBUF + SEQLEN);
    key.size = (u_int32_t)partlen;
    dbt_out(&data, pk, KEYBUF);
#define CMP() memcmp(ik, want, (size_t)partlen)
    ret = cur->get(cur, &key, &data, (DB_SET_RANGE) | lk);
    switch (cond) {
    case OP_START_EQ:
        if (ret == 0 && CMP() != 0)
            ret = DB_NOTFOUND;
        break;
    case OP_START_GT:
        while (ret == 0 && CMP() == 0)
            ret = cur->get(cur, &key, &data, (DB_NEXT) | lk);
        break;
    case OP_START_LT:
        ret = cur->get(cur, &key, &data, (ret == DB_NOTFOUND ? DB_LAST : DB_PREV) | lk);
        break;
    case OP_START_LE:
        if (ret == DB_NOTFOUND) {
            ret = cur->get(cur, &key, &data, (DB_LAST) | lk);
        } else if (ret == 0 && CMP() != 0) {
            ret = cur->get(cur, &key, &data, (DB_PREV) | lk);
        } else if (ret == 0 && f->key[k].dups) {
            /* Like GnuCOBOL: the last of the duplicates of the found key value. */
            unsigned char same[KEYBUF];
            int len = f->key[k].keylen;
            memcpy(same, ik, (size_t)len);
            while (ret == 0 && memcmp(ik, same, (size_t)len) == 0)
                ret = cur->get(cur, &key, &data, (DB_NEXT) | lk);
            ret = cur->get(cur, &key, &data, (ret == DB_NOTFOUND ? DB_LAST : DB_PREV) | lk);
        }
        break;
    case OP_START_FI:
        ret = cur->get(cur, &key, &data, (DB_FIRST) | lk);
        break;
    case OP_START_LA:
        ret = cur->get(cur, &key, &data, (DB_LAST) | lk);
        break;
    default: /* GE */
        break;
    }
#undef CMP
    cur->close(cur);
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

static int do_start(struct efile *f, FCD3 *fcd, DB_TXN *txn, int cond)
{
    unsigned char ik[KEYBUF + SEQLEN], pk[KEYBUF];
    u_int32_t iklen, pklen;
    int k = f->org == ORG_RELATIVE ? 0 : key_index(f, fcd), ret;

    f->read_done = 0;
    if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
        set_status(fcd, "47");
        return 0;
    }
    if (f->access == ACCESS_RANDOM) {
        set_status(fcd, "47");
        return 0;
    }
    if (f->nonexistent) {
        f->first_read = 0;
        set_status(fcd, "23");
        return 0;
    }
    ret = search(f, fcd, txn, k, cond, LDCOMPX2(fcd->effKeyLen), ik, &iklen, pk, &pklen);
    f->curkey = k;
    if (ret == DB_NOTFOUND) {
        f->eof = 1;
        f->bof = 0;
        set_status(fcd, "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    memcpy(f->pos, ik, iklen);
    f->poslen = iklen;
    f->state = POS_AT;
    f->eof = f->bof = 0;
    set_status(fcd, "00");
    return 0;
}

static int do_read_random(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char ik[KEYBUF + SEQLEN], pk[KEYBUF];
    u_int32_t iklen, pklen;
    int k = f->org == ORG_RELATIVE ? 0 : key_index(f, fcd), ret;

    f->read_done = 0;
    if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
        set_status(fcd, "47");
        return 0;
    }
    if (f->nonexistent) {
        set_status(fcd, f->first_read ? "10" : "23");
        f->first_read = 0;
        return 0;
    }
    if (f->org == ORG_RELATIVE && get_be32(fcd->relKey) == 0 && get_be32(fcd->relKey + 4) == 0) {
        set_status(fcd, "23");
        return 0;
    }
    ret = search(f, fcd, txn, k, OP_START_EQ, 0, ik, &iklen, pk, &pklen);
    if (ret == 0)
        ret = take(f, fcd, txn, k, ik, iklen, pk, pklen, rmw(f, txn));
    if (ret == DB_NOTFOUND) {
        set_status(fcd, "23");
        return 0;
    }
    if (ret == 0)
        set_status(fcd, "00");
    return ret;
}

/* ---------- writing ---------- */

/* Next sequence number for the duplicates of alternate key k holding value kb. */
static int next_seq(struct efile *f, DB_TXN *txn, int k, const unsigned char *kb,
                    u_int32_t *seq, int *had)
{
    DB *db = f->dbs->db[k];
    DBC *cur;
    DBT key, data;
    unsigned char ik[KEYBUF + SEQLEN], pk[KEYBUF];
    int len = f->key[k].keylen, ret;

    ret = db->cursor(db, txn, &cur, 0);
    if (ret != 0)
        return ret;
    memcpy(ik, kb, (size_t)len);
    memset(ik + len, 0xff, SEQLEN);
    dbt_out(&key, ik, sizeof ik);
    key.size = (u_int32_t)(len + SEQLEN);
    dbt_out(&data, pk, sizeof pk);
    ret = cur->get(cur, &key, &data, DB_SET_RANGE);
    ret = cur->get(cur, &key, &data, ret == DB_NOTFOUND ? DB_LAST : DB_PREV);
    cur->close(cur);
    *had = 0;
    *seq = 1;
    if (ret == 0 && memcmp(ik, kb, (size_t)len) == 0) {
        *had = 1;
        *seq = get_be32(ik + len) + 1;
    } else if (ret != 0 && ret != DB_NOTFOUND) {
        return ret;
    }
    return 0;
}

/* Secondary key of alternate key k for a stored value (record + sequence trailer). */
static u_int32_t sec_key(struct efile *f, int k, const unsigned char *val, u_int32_t vlen,
                         unsigned char *out)
{
    int n = key_bytes(f, k, val, out);
    if (f->key[k].dups) {
        memcpy(out + n, val + vlen - (u_int32_t)(f->ndups * SEQLEN) +
               (u_int32_t)(f->key[k].seqslot * SEQLEN), SEQLEN);
        n += SEQLEN;
    }
    return (u_int32_t)n;
}

/* Is alternate key value kb (no duplicates) taken by a record other than prime key pk? */
static int alt_taken(struct efile *f, DB_TXN *txn, int k, const unsigned char *kb,
                     const unsigned char *pk, u_int32_t pklen, int *taken)
{
    DBT key, data;
    unsigned char other[KEYBUF];
    int ret;
    dbt_in(&key, kb, (u_int32_t)f->key[k].keylen);
    dbt_out(&data, other, sizeof other);
    ret = f->dbs->db[k]->get(f->dbs->db[k], txn, &key, &data, 0);
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
        key_bytes(f, k, fcd->recPtr, kb);
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

/* Store a record: new == 1 for WRITE, 0 for REWRITE (old value in f->buf, length oldlen). */
static int store(struct efile *f, FCD3 *fcd, DB_TXN *txn, const unsigned char *pk,
                 u_int32_t pklen, int isnew, u_int32_t oldlen, const char **status)
{
    u_int32_t reclen = LDCOMPX4(fcd->curRecLen), vlen, seq, iklen;
    unsigned char *val, kb[KEYBUF], ik[KEYBUF + SEQLEN], oldik[KEYBUF + SEQLEN];
    DBT key, data;
    int k, ret, had;

    if (reclen < f->minrec || reclen > f->maxrec) {
        *status = "44";
        return 0;
    }
    ret = check_alt_keys(f, fcd, txn, isnew ? NULL : pk, pklen, status);
    if (ret != 0 || (*status)[0] != '0')
        return ret;
    vlen = reclen + (u_int32_t)(f->ndups * SEQLEN);
    val = malloc(vlen);
    memcpy(val, fcd->recPtr, reclen);
    for (k = 1; k < f->nkeys; k++) {
        struct keydef *kd = &f->key[k];
        int changed = 1;
        key_bytes(f, k, fcd->recPtr, kb);
        if (!isnew) {
            unsigned char oldkb[KEYBUF];
            key_bytes(f, k, f->buf, oldkb);
            changed = memcmp(oldkb, kb, (size_t)kd->keylen) != 0;
            if (kd->dups && !changed)
                memcpy(val + reclen + kd->seqslot * SEQLEN,
                       f->buf + oldlen + kd->seqslot * SEQLEN, SEQLEN);
            if (changed && !suppressed(f, k, oldkb)) {
                iklen = sec_key(f, k, f->buf, oldlen + (u_int32_t)(f->ndups * SEQLEN), oldik);
                dbt_in(&key, oldik, iklen);
                ret = f->dbs->db[k]->del(f->dbs->db[k], txn, &key, 0);
                if (ret != 0 && ret != DB_NOTFOUND)
                    goto fail;
            }
        }
        if (!changed || suppressed(f, k, kb)) {
            if (kd->dups && changed)
                put_be32(val + reclen + kd->seqslot * SEQLEN, 0);
            continue;
        }
        if (kd->dups) {
            ret = next_seq(f, txn, k, kb, &seq, &had);
            if (ret != 0)
                goto fail;
            if (had)
                *status = "02";
            put_be32(val + reclen + kd->seqslot * SEQLEN, seq);
        }
        iklen = sec_key(f, k, val, vlen, ik);
        dbt_in(&key, ik, iklen);
        dbt_in(&data, pk, pklen);
        ret = f->dbs->db[k]->put(f->dbs->db[k], txn, &key, &data, 0);
        if (ret != 0)
            goto fail;
    }
    dbt_in(&key, pk, pklen);
    dbt_in(&data, val, vlen);
    ret = f->dbs->db[0]->put(f->dbs->db[0], txn, &key, &data, 0);
fail:
    free(val);
    return ret;
}

static int rel_key_zero(FCD3 *fcd)
{
    return get_be32(fcd->relKey) == 0 && get_be32(fcd->relKey + 4) == 0;
}

static int do_write(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char pk[KEYBUF];
    u_int32_t pklen, reclen;
    const char *status;
    int ret;

    f->read_done = 0;
    if (f->access == ACCESS_SEQ ? (f->mode != OPEN_OUTPUT && f->mode != OPEN_EXTEND)
                                : (f->mode != OPEN_OUTPUT && f->mode != OPEN_IO)) {
        set_status(fcd, "48");
        return 0;
    }
    if (f->nonexistent) {
        set_status(fcd, "48");
        return 0;
    }
    if (f->org == ORG_RELATIVE) {
        if (f->access == ACCESS_SEQ) {
            /* Sequential WRITE appends after the highest record number. */
            DBC *cur;
            DBT key, data;
            unsigned char vbuf[8];
            u_int32_t hi = 0, lo = 0;
            ret = f->dbs->db[0]->cursor(f->dbs->db[0], txn, &cur, 0);
            if (ret != 0)
                return ret;
            dbt_out(&key, pk, sizeof pk);
            dbt_out(&data, vbuf, 0);
            data.flags |= DB_DBT_PARTIAL;
            ret = cur->get(cur, &key, &data, DB_LAST);
            cur->close(cur);
            if (ret == 0) {
                hi = get_be32(pk);
                lo = get_be32(pk + 4);
            } else if (ret != DB_NOTFOUND) {
                return ret;
            }
            if (++lo == 0)
                hi++;
            put_be32(pk, hi);
            put_be32(pk + 4, lo);
        } else {
            if (rel_key_zero(fcd)) {
                set_status(fcd, "24");
                return 0;
            }
            memcpy(pk, fcd->relKey, 8);
        }
        pklen = 8;
    } else {
        pklen = (u_int32_t)key_bytes(f, 0, fcd->recPtr, pk);
        if (f->access == ACCESS_SEQ && f->have_lastwrite && memcmp(f->lastwrite, pk, pklen) > 0) {
            set_status(fcd, "21");
            return 0;
        }
        memcpy(f->lastwrite, pk, pklen);
        f->have_lastwrite = 1;
    }
    ret = get_primary(f, txn, pk, pklen, rmw(f, txn) ? DB_RMW : 0, &reclen);
    if (ret == 0) {
        set_status(fcd, f->org == ORG_INDEXED && f->access == ACCESS_SEQ &&
                   f->mode == OPEN_OUTPUT ? "21" : "22");
        return 0;
    }
    if (ret != DB_NOTFOUND)
        return ret;
    ret = store(f, fcd, txn, pk, pklen, 1, 0, &status);
    if (ret == 0 && status[0] == '2' && f->org == ORG_INDEXED && f->access == ACCESS_SEQ &&
        f->mode == OPEN_OUTPUT)
        status = "21";   /* libcob reports any duplicate in a sequential load as 21 */
    if (ret == 0) {
        set_status(fcd, status);
        if (f->org == ORG_RELATIVE && f->access == ACCESS_SEQ && status[0] == '0')
            set_relative_key(fcd, pk);
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
    *pklen = (u_int32_t)key_bytes(f, 0, fcd->recPtr, pk);
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
        set_status(fcd, "49");
        return 1;
    }
    if (f->access == ACCESS_SEQ && !read_done) {
        set_status(fcd, "43");
        return 1;
    }
    return 0;
}

static int do_rewrite(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char pk[KEYBUF];
    u_int32_t pklen, oldlen;
    const char *status;
    int ret, t;

    if (update_checks(f, fcd))
        return 0;
    t = target_key(f, fcd, pk, &pklen);
    if (t != 0) {
        set_status(fcd, t == -1 ? "24" : "21");
        return 0;
    }
    /* libcob checks the alternate keys before it looks for the record. */
    ret = check_alt_keys(f, fcd, txn, pk, pklen, &status);
    if (ret != 0 || status[0] != '0') {
        set_status(fcd, status);
        return ret;
    }
    ret = get_primary(f, txn, pk, pklen, DB_RMW, &oldlen);
    if (ret == DB_NOTFOUND) {
        /* libcob 3.1.2's RELATIVE handler answers "00" for an empty slot in random access and
         * changes nothing (the standard says "23"); programs tested against it rely on that. */
        set_status(fcd, f->org == ORG_RELATIVE && f->access != ACCESS_SEQ ? "00" : "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    ret = store(f, fcd, txn, pk, pklen, 0, oldlen, &status);
    if (ret == 0) {
        set_status(fcd, status);
        esfh_note_write();
    }
    return ret;
}

static int do_delete(struct efile *f, FCD3 *fcd, DB_TXN *txn)
{
    unsigned char pk[KEYBUF], ik[KEYBUF + SEQLEN], kb[KEYBUF];
    u_int32_t pklen, oldlen, iklen;
    DBT key;
    int ret, t, k;

    if (update_checks(f, fcd))
        return 0;
    t = target_key(f, fcd, pk, &pklen);
    if (t != 0) {
        set_status(fcd, t == -1 ? "24" : "21");
        return 0;
    }
    ret = get_primary(f, txn, pk, pklen, DB_RMW, &oldlen);
    if (ret == DB_NOTFOUND) {
        /* libcob 3.1.2's RELATIVE handler answers "00" for an empty slot in random access and
         * changes nothing (the standard says "23"); programs tested against it rely on that. */
        set_status(fcd, f->org == ORG_RELATIVE && f->access != ACCESS_SEQ ? "00" : "23");
        return 0;
    }
    if (ret != 0)
        return ret;
    for (k = 1; k < f->nkeys; k++) {
        key_bytes(f, k, f->buf, kb);
        if (suppressed(f, k, kb))
            continue;
        iklen = sec_key(f, k, f->buf, oldlen + (u_int32_t)(f->ndups * SEQLEN), ik);
        dbt_in(&key, ik, iklen);
        ret = f->dbs->db[k]->del(f->dbs->db[k], txn, &key, 0);
        if (ret != 0 && ret != DB_NOTFOUND)
            return ret;
    }
    dbt_in(&key, pk, pklen);
    ret = f->dbs->db[0]->del(f->dbs->db[0], txn, &key, 0);
    if (ret == 0) {
        set_status(fcd, "00");
        esfh_note_write();
    }
    return ret;
}

/* ---------- the entry point ---------- */

static int open_mode_of(int opcd)
{
    switch (opcd) {
    case OP_OPEN_OUTPUT:
    case OP_OPEN_OUTPUT_NOREWIND:
        return OPEN_OUTPUT;
    case OP_OPEN_IO:
        return OPEN_IO;
    case OP_OPEN_EXTEND:
        return OPEN_EXTEND;
    default:
        return OPEN_INPUT;
    }
}

static int is_open_op(int opcd)
{
    return opcd == OP_OPEN_INPUT || opcd == OP_OPEN_OUTPUT || opcd == OP_OPEN_IO ||
           opcd == OP_OPEN_EXTEND || opcd == OP_OPEN_INPUT_NOREWIND ||
           opcd == OP_OPEN_OUTPUT_NOREWIND || opcd == OP_OPEN_INPUT_REVERSED;
}

static int is_close_op(int opcd)
{
    return (opcd & 0xFFF0) == OP_CLOSE;
}

/* One operation on an open file inside transaction txn; returns a Berkeley DB error or 0. */
static int run_op(struct efile *f, FCD3 *fcd, int opcd, DB_TXN *txn)
{
    switch (opcd) {
    case OP_READ_SEQ: case OP_READ_SEQ_LOCK: case OP_READ_SEQ_NO_LOCK:
    case OP_READ_SEQ_KEPT_LOCK: case OP_STEP_NEXT: case OP_STEP_NEXT_LOCK:
    case OP_STEP_NEXT_NO_LOCK: case OP_STEP_NEXT_KEPT_LOCK:
        f->read_done = 0;
        if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
            set_status(fcd, "47");
            return 0;
        }
        return read_seq(f, fcd, txn, 0);
    case OP_READ_PREV: case OP_READ_PREV_LOCK: case OP_READ_PREV_NO_LOCK:
    case OP_READ_PREV_KEPT_LOCK:
        f->read_done = 0;
        if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
            set_status(fcd, "47");
            return 0;
        }
        return read_seq(f, fcd, txn, 1);
    case OP_READ_RAN: case OP_READ_RAN_LOCK: case OP_READ_RAN_NO_LOCK:
    case OP_READ_RAN_KEPT_LOCK: case OP_READ_DIR: case OP_READ_DIR_LOCK:
    case OP_READ_DIR_NO_LOCK: case OP_READ_DIR_KEPT_LOCK:
        return do_read_random(f, fcd, txn);
    case OP_START_EQ: case OP_START_EQ_ANY: case OP_START_GT: case OP_START_GE:
    case OP_START_LT: case OP_START_LE: case OP_START_FI: case OP_START_LA:
        return do_start(f, fcd, txn, opcd == OP_START_EQ_ANY ? OP_START_EQ : opcd);
    case OP_WRITE:
        return do_write(f, fcd, txn);
    case OP_REWRITE:
        return do_rewrite(f, fcd, txn);
    case OP_DELETE:
        return do_delete(f, fcd, txn);
    default:
        /* UNLOCK, COMMIT, ROLLBACK, FLUSH, GETINFO: locks and commits belong to the
         * transaction, so there is nothing to do here. */
        set_status(fcd, "00");
        return 0;
    }
}

static int handle(FCD3 *fcd, int opcd)
{
    struct efile *f = fcd->fileHandle;
    DB_TXN *txn;
    int own, ret = 0, attempt;

    if (is_open_op(opcd)) {
        if (f != NULL) {
            set_status(fcd, "41");
            return 0;
        }
        if (esfh_env() == NULL) {
            set_status(fcd, "30");
            return 0;
        }
        f = calloc(1, sizeof *f);
        f->org = fcd->fileOrg;
        f->access = fcd->accessFlags & 0x7f;
        f->maxrec = LDCOMPX4(fcd->maxRecLen);
        f->minrec = LDCOMPX4(fcd->minRecLen);
        if (load_keys(f, fcd) != 0) {
            free(f);
            esfh_set_error("ESFH: file %.*s has a key layout ESFH cannot store (more than %d "
                           "keys or %d components, or keys longer than %d bytes)",
                           LDCOMPX2(fcd->fnameLen), fcd->fnamePtr, MAXKEYS, MAXCOMP, KEYBUF);
            fprintf(stderr, "%s\n", esfh_last_error());
            set_status(fcd, "39");
            return 0;
        }
        f->bufsize = f->maxrec + (u_int32_t)(f->ndups * SEQLEN) + 16;
        f->buf = malloc(f->bufsize);
        fcd->fileHandle = f;
        txn = esfh_op_txn(&own);
        if (txn == NULL) {
            /* No transaction could begin (the environment is broken): opening without one
             * would truncate an OUTPUT file outside the caller's transaction. */
            fprintf(stderr, "%s\n", esfh_last_error());
            set_status(fcd, "30");
            free_file(fcd);
            fcd->openMode = OPEN_NOT_OPEN;
            return 0;
        }
        ret = do_open(fcd, open_mode_of(opcd), txn);
        ret = esfh_op_end(txn, own, ret);
        if (fcd->fileStatus[0] != '0') {
            free_file(fcd);
            fcd->openMode = OPEN_NOT_OPEN;
        } else {
            fcd->openMode = (unsigned char)open_mode_of(opcd);
        }
        return 0;
    }
    if (is_close_op(opcd)) {
        if (f == NULL) {
            set_status(fcd, "42");
            return 0;
        }
        free_file(fcd);
        fcd->openMode = OPEN_NOT_OPEN;
        esfh_interval_commit();
        set_status(fcd, "00");
        return 0;
    }
    if (f == NULL) {
        /* Not open: libcob reports reads and STARTs as 47, writes as 48, updates as 49. */
        if (opcd == OP_WRITE)
            set_status(fcd, "48");
        else if (opcd == OP_REWRITE || opcd == OP_DELETE)
            set_status(fcd, "49");
        else
            set_status(fcd, "47");
        return 0;
    }
    if (esfh_is_doomed()) {
        set_status(fcd, "51");
        return 0;
    }
    /* Only an operation in its own transaction can be retried after a deadlock; in a request
     * or interval transaction the whole transaction has to go. */
    for (attempt = 0; attempt < 20; attempt++) {
        txn = esfh_op_txn(&own);
        if (txn == NULL) {
            set_status(fcd, "30");
            return 0;
        }
        ret = run_op(f, fcd, opcd, txn);
        ret = esfh_op_end(txn, own, ret);
        if (!(own && ESFH_DEADLOCK(ret)))
            break;
    }
    if (ret != 0) {
        if (ESFH_DEADLOCK(ret)) {
            set_status(fcd, "51");
        } else {
            esfh_set_error("ESFH: file %s: %s", f->dbs ? f->dbs->path : "?", db_strerror(ret));
            set_status(fcd, "30");
        }
    }
    return 0;
}

int ESFH(unsigned char *opcode, FCD3 *fcd)
{
    int opcd = opcode[0] == 0xFA ? 0xFA00 + opcode[1] : opcode[1];
    if (fcd->fileOrg != ORG_INDEXED && fcd->fileOrg != ORG_RELATIVE)
        return EXTFH(opcode, fcd);
    memcpy(fcd->fileStatus, "00", 2);
    return handle(fcd, opcd);
}
