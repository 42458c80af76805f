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
 *    alternate key WITH DUPLICATES. A RELATIVE record is stored as libcob stores it, in a
 *    slot: the whole record area (the file's maximum record length), followed, when the
 *    record is shorter, by its 4-byte big-endian length. A value no longer than the maximum
 *    is a record of its own length: a record of the maximum length is stored as it is, and
 *    shorter records stored before ESFH kept slots still read back;
 *  - PATH.1, PATH.2 ...: one btree per alternate key, key = alternate key bytes (+ the sequence
 *    number for keys WITH DUPLICATES, so duplicates come back in the order they were written,
 *    as GnuCOBOL's BDB handler returns them), value = prime key.
 * Reading is in esfh_read.c, writing in esfh_write.c; the structures they share are in
 * esfh_internal.h.
 * libcob's EXTFH interface does none of the COBOL state checks (41, 42, 43, 46, 47, 48, 49):
 * this handler does them, following libcob's fileio.c.
 * Nothing read from an FCD or a database is used before it is checked: a key layout that
 * does not fit the record is 39 at OPEN (load_keys), a record or index entry of a length the
 * file cannot have is 30 (esfh_damaged in esfh_read.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esfh_internal.h"

static struct dbset *g_dbsets;

/* ---------- file names and DB handles ---------- */

static void resolve_name(FCD3 *fcd, char *out, size_t cap)
{
    char name[PATH_MAX], envname[PATH_MAX + 4], joined[PATH_MAX * 2 + 2], cwd[PATH_MAX];
    const char *value, *dir;
    int len = esfh_get_be16(fcd->fnameLen);
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

static struct dbset *cached_dbset(const char *path, int ndb)
{
    struct dbset *s;
    for (s = g_dbsets; s; s = s->next)
        if (strcmp(s->path, path) == 0 && s->ndb == ndb)
            return s;
    return NULL;
}

static struct dbset *new_dbset(const char *path, int ndb)
{
    struct dbset *s = calloc(1, sizeof *s);
    if (s == NULL) {
        esfh_set_error("ESFH: no memory to open %s", path);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    s->ndb = ndb;
    return s;
}

/* The file's table in a PostgreSQL store, made when `create`; *exists: whether it was there
 * before (*out NULL: it is not, and was not to be made). */
static int get_pg_dbset(const char *path, int ndb, int create, int *exists, struct dbset **out)
{
    struct dbset *s = cached_dbset(path, ndb);
    int ret;
    *out = NULL;
    *exists = 0;
    if (s != NULL) {
        *exists = 1;
        *out = s;
        return 0;
    }
    s = new_dbset(path, ndb);
    if (s == NULL)
        return ENOMEM;
    ret = esfh_pg_open_table(s, path, create, exists);
    if (ret != 0 || s->pg == NULL) {
        free(s);
        return ret;
    }
    s->next = g_dbsets;
    g_dbsets = s;
    *out = s;
    return 0;
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
    s = cached_dbset(path, ndb);
    if (s != NULL) {
        *out = s;
        return 0;
    }
    s = new_dbset(path, ndb);
    if (s == NULL)
        return ENOMEM;
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
        if (s->pg != NULL)
            esfh_pg_close_table(s);
        else
            for (i = s->ndb - 1; i >= 0; i--)
                s->db[i]->close(s->db[i], 0);
        free(s);
    }
    g_dbsets = NULL;
}

/* ---------- OPEN / CLOSE ---------- */

/* The key layout of the file being opened, from its FCD, checked against the record: every
 * access copies keys out of the program's record area and out of ESFH's copy of a record,
 * both of the file's maximum record length, so a key reaching past it would have ESFH read
 * past them. Returns 0, or -1 with the reason in esfh_last_error (OPEN then answers 39, as
 * libcob does for a file whose attributes conflict with the program's). */
static int load_keys(struct efile *f, FCD3 *fcd)
{
    KDB *kdb = fcd->kdbPtr;
    const char *name = fcd->fnamePtr != NULL ? fcd->fnamePtr : "";
    int namelen = fcd->fnamePtr != NULL ? (int)esfh_get_be16(fcd->fnameLen) : 0;
    unsigned nkeys, kdblen;
    int k, c;
    if (f->maxrec > ESFH_MAX_RECORD) {
        esfh_set_error("ESFH: file %.*s: records of %u bytes are longer than the %u bytes "
                       "ESFH stores", namelen, name, f->maxrec, ESFH_MAX_RECORD);
        return -1;
    }
    if (f->org == ORG_RELATIVE) {
        f->nkeys = 1;
        f->key[0].ncomp = 0;
        f->key[0].keylen = 8;
        return 0;
    }
    nkeys = kdb != NULL ? esfh_get_be16(kdb->nkeys) : 0;
    if (nkeys < 1 || nkeys > MAXKEYS) {
        esfh_set_error("ESFH: file %.*s has %u keys; ESFH stores files of 1 to %d keys",
                       namelen, name, nkeys, MAXKEYS);
        return -1;
    }
    /* The block's own length, when the caller filled it in (libcob does), bounds the key
     * entries and their components: a block that claims more than it holds is refused, not
     * read past. */
    kdblen = esfh_get_be16(kdb->kdbLen);
    if (kdblen != 0 && offsetof(KDB, key) + nkeys * sizeof(KDB_KEY) > kdblen) {
        esfh_set_error("ESFH: file %.*s: its key definition block (%u bytes) is too short for "
                       "the entries of its %u key(s)", namelen, name, kdblen, nkeys);
        return -1;
    }
    f->nkeys = (int)nkeys;
    for (k = 0; k < f->nkeys; k++) {
        struct keydef *kd = &f->key[k];
        unsigned offset = esfh_get_be16(kdb->key[k].offset);
        EXTKEY *ek = (EXTKEY *)((char *)kdb + offset);
        unsigned ncomp = esfh_get_be16(kdb->key[k].count);
        char key[32];
        if (k == 0)
            snprintf(key, sizeof key, "the prime key");
        else
            snprintf(key, sizeof key, "alternate key %d", k);
        if (ncomp < 1 || ncomp > MAXCOMP) {
            esfh_set_error("ESFH: file %.*s: %s has %u components; ESFH takes 1 to %d",
                           namelen, name, key, ncomp, MAXCOMP);
            return -1;
        }
        if (kdblen != 0 && (offset < offsetof(KDB, key)
                            || offset + ncomp * sizeof(EXTKEY) > kdblen)) {
            esfh_set_error("ESFH: file %.*s: %s's components (%u at offset %u) lie outside "
                           "its key definition block of %u bytes", namelen, name, key, ncomp,
                           offset, kdblen);
            return -1;
        }
        kd->ncomp = (int)ncomp;
        kd->keylen = 0;
        for (c = 0; c < kd->ncomp; c++, ek++) {
            u_int32_t pos = esfh_get_be32(ek->pos), len = esfh_get_be32(ek->len);
            /* Compared without adding: pos + len may wrap around. */
            if (len < 1 || pos > f->maxrec || len > f->maxrec - pos) {
                esfh_set_error("ESFH: file %.*s: %s (%u bytes at offset %u%s) is not within "
                               "the record of %u bytes; the program's key definition does "
                               "not fit its record", namelen, name, key, len, pos,
                               kd->ncomp > 1 ? ", one of its components" : "", f->maxrec);
                return -1;
            }
            kd->pos[c] = (int)pos;
            kd->len[c] = (int)len;
            kd->keylen += (int)len;
            if (kd->keylen > KEYBUF) {
                esfh_set_error("ESFH: file %.*s: %s is longer than the %d bytes ESFH takes",
                               namelen, name, key, KEYBUF);
                return -1;
            }
        }
        kd->dups = k > 0 && (kdb->key[k].keyFlags & KEY_DUPS) != 0;
        kd->sparse = k > 0 && (kdb->key[k].keyFlags & KEY_SPARSE) != 0;
        kd->sparse_ch = kdb->key[k].sparse;
        kd->seqslot = kd->dups ? f->ndups++ : -1;
    }
    return 0;
}

/* Copy key k's bytes (all components, concatenated) out of a record. */
int esfh_key_bytes(struct efile *f, int k, const unsigned char *rec, unsigned char *out)
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
    int exists, optional = (fcd->otherFlags & OTH_OPTIONAL) != 0, ret;

    resolve_name(fcd, path, sizeof path);
    if (esfh_pg_store()) {
        /* The table is made by an OPEN that would create the file, as Berkeley DB's databases
         * are (get_dbset below). */
        ret = get_pg_dbset(path, f->nkeys,
                           mode == OPEN_OUTPUT || (optional && mode != OPEN_INPUT), &exists,
                           &f->dbs);
        if (ret != 0) {
            fprintf(stderr, "%s\n", esfh_last_error());
            /* 39: the table's alternate keys are not the program's. */
            esfh_set_status(fcd, ESFH_DEADLOCK(ret) ? "61" : ret == EINVAL ? "39" : "30");
            return ESFH_DEADLOCK(ret) ? ret : 0;
        }
    } else {
        exists = stat(path, &st) == 0;
    }
    if (!exists && mode != OPEN_OUTPUT && !optional) {
        esfh_set_status(fcd, "35");
        return 0;
    }
    f->mode = mode;
    f->state = POS_FIRST;
    f->first_read = 1;
    if (!exists && mode == OPEN_INPUT) {
        /* OPTIONAL file opened INPUT: nothing is created; reads see an empty file. */
        f->nonexistent = 1;
        esfh_set_status(fcd, "05");
        return 0;
    }
    if (f->dbs == NULL) {
        ret = get_dbset(path, f->nkeys, &f->dbs);
        if (ret != 0) {
            esfh_set_status(fcd, ret == EACCES ? "37" : "30");
            return 0;
        }
    }
    if (mode == OPEN_OUTPUT) {
        ret = esfh_tbl_truncate(f, txn);
        if (ret != 0) {
            if (ret != EIO)
                esfh_set_error("ESFH: cannot empty %s for OPEN OUTPUT: %s", path,
                               db_strerror(ret));
            esfh_set_status(fcd, ESFH_DEADLOCK(ret) ? "61" : "30");
            return ret;
        }
    }
    esfh_set_status(fcd, !exists && optional && mode != OPEN_OUTPUT ? "05" : "00");
    return 0;
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
            esfh_set_status(fcd, "47");
            return 0;
        }
        return esfh_read_seq(f, fcd, txn, 0);
    case OP_READ_PREV: case OP_READ_PREV_LOCK: case OP_READ_PREV_NO_LOCK:
    case OP_READ_PREV_KEPT_LOCK:
        f->read_done = 0;
        if (f->mode != OPEN_INPUT && f->mode != OPEN_IO) {
            esfh_set_status(fcd, "47");
            return 0;
        }
        return esfh_read_seq(f, fcd, txn, 1);
    case OP_READ_RAN: case OP_READ_RAN_LOCK: case OP_READ_RAN_NO_LOCK:
    case OP_READ_RAN_KEPT_LOCK: case OP_READ_DIR: case OP_READ_DIR_LOCK:
    case OP_READ_DIR_NO_LOCK: case OP_READ_DIR_KEPT_LOCK:
        return esfh_do_read_random(f, fcd, txn);
    case OP_START_EQ: case OP_START_EQ_ANY: case OP_START_GT: case OP_START_GE:
    case OP_START_LT: case OP_START_LE: case OP_START_FI: case OP_START_LA:
        return esfh_do_start(f, fcd, txn, opcd == OP_START_EQ_ANY ? OP_START_EQ : opcd);
    case OP_WRITE:
        return esfh_do_write(f, fcd, txn);
    case OP_REWRITE:
        return esfh_do_rewrite(f, fcd, txn);
    case OP_DELETE:
        return esfh_do_delete(f, fcd, txn);
    default:
        /* UNLOCK, COMMIT, ROLLBACK, FLUSH, GETINFO: locks and commits belong to the
         * transaction, so there is nothing to do here. */
        esfh_set_status(fcd, "00");
        return 0;
    }
}

/* OPEN could not get the memory for the file's handle or record buffer: the OPEN fails as when
 * the file's databases cannot be opened (30), and leaves the file closed. */
static int open_without_memory(FCD3 *fcd, const char *what, size_t size)
{
    esfh_set_error("ESFH: file %.*s: no memory for its %s (%zu bytes)",
                   fcd->fnamePtr != NULL ? (int)esfh_get_be16(fcd->fnameLen) : 0,
                   fcd->fnamePtr != NULL ? fcd->fnamePtr : "", what, size);
    fprintf(stderr, "%s\n", esfh_last_error());
    esfh_set_status(fcd, "30");
    fcd->openMode = OPEN_NOT_OPEN;
    return 0;
}

static int handle(FCD3 *fcd, int opcd)
{
    struct efile *f = fcd->fileHandle;
    DB_TXN *txn;
    int own, ret = 0, attempt;

    if (is_open_op(opcd)) {
        if (f != NULL) {
            esfh_set_status(fcd, "41");
            return 0;
        }
        if (!esfh_store_ready()) {
            esfh_set_status(fcd, "30");
            return 0;
        }
        f = calloc(1, sizeof *f);
        if (f == NULL)
            return open_without_memory(fcd, "handle", sizeof *f);
        f->org = fcd->fileOrg;
        f->access = fcd->accessFlags & 0x7f;
        f->maxrec = esfh_get_be32(fcd->maxRecLen);
        f->minrec = esfh_get_be32(fcd->minRecLen);
        if (load_keys(f, fcd) != 0) {
            free(f);
            fprintf(stderr, "%s\n", esfh_last_error());
            esfh_set_status(fcd, "39");
            return 0;
        }
        /* The longest value the file can hold: a record and its sequence numbers, or a
         * RELATIVE slot and its length (esfh_get_primary finds longer ones damaged). */
        f->bufsize = f->maxrec + (f->org == ORG_RELATIVE ? RELLEN
                                                         : (u_int32_t)(f->ndups * SEQLEN));
        /* Zeroed: a key that lies past the end of a shorter record is read from here. */
        f->buf = calloc(f->bufsize, 1);
        if (f->buf == NULL) {
            size_t size = f->bufsize;
            free(f);
            return open_without_memory(fcd, "record buffer", size);
        }
        fcd->fileHandle = f;
        txn = esfh_op_txn(&own);
        if (txn == NULL) {
            /* No transaction could begin (the environment is broken): opening without one
             * would truncate an OUTPUT file outside the caller's transaction. */
            fprintf(stderr, "%s\n", esfh_last_error());
            esfh_set_status(fcd, "30");
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
            esfh_set_status(fcd, "42");
            return 0;
        }
        free_file(fcd);
        fcd->openMode = OPEN_NOT_OPEN;
        esfh_interval_commit();
        esfh_set_status(fcd, "00");
        return 0;
    }
    if (f == NULL) {
        /* Not open: libcob reports reads and STARTs as 47, writes as 48, updates as 49. */
        if (opcd == OP_WRITE)
            esfh_set_status(fcd, "48");
        else if (opcd == OP_REWRITE || opcd == OP_DELETE)
            esfh_set_status(fcd, "49");
        else
            esfh_set_status(fcd, "47");
        return 0;
    }
    if (esfh_is_doomed()) {
        esfh_set_status(fcd, "51");
        return 0;
    }
    /* Only an operation in its own transaction can be retried after a deadlock; in a request
     * or interval transaction the whole transaction has to go. */
    for (attempt = 0; attempt < 20; attempt++) {
        txn = esfh_op_txn(&own);
        if (txn == NULL) {
            esfh_set_status(fcd, "30");
            return 0;
        }
        ret = run_op(f, fcd, opcd, txn);
        ret = esfh_op_end(txn, own, ret);
        if (!(own && ESFH_DEADLOCK(ret)))
            break;
    }
    if (ret != 0) {
        if (ESFH_DEADLOCK(ret)) {
            esfh_set_status(fcd, "51");
        } else {
            /* A damaged file and a PostgreSQL store's session lost or ended have their own
             * message already, which says more than a number. */
            if (ret != ESFH_DAMAGED && ret != ESFH_STORE_LOST && ret != ESFH_IDLE_TIMEOUT)
                esfh_set_error("ESFH: file %s: %s", f->dbs ? f->dbs->path : "?",
                               db_strerror(ret));
            /* A damaged file or a lack of memory, as a bad key layout at OPEN: the program
             * sees only 30, whoever runs it needs to know which file and why. */
            if (ret == ESFH_DAMAGED || ret == ENOMEM)
                fprintf(stderr, "%s\n", esfh_last_error());
            esfh_set_status(fcd, "30");
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
