/*
 * ESFH: esrt's EXTFH file handler on a transactional Berkeley DB environment.
 *
 * Shared declarations of the file-operation sources (esfh.c, esfh_read.c, esfh_write.c; their
 * own internals are in esfh_internal.h), esfh_env.c (the environment, transactions and the C
 * API a SEP calls through cffi) and esfh_replies.c (the reply store).
 */
#ifndef ESFH_H
#define ESFH_H

#include <stddef.h>
#include <stdio.h>
#include <libcob.h>
#include <db.h>

/* Public C API (exported by libesfh.so). */
int ESFH(unsigned char *opcode, FCD3 *fcd);
/* esfh_calls.c: what programs compiled by esrt call in place of libcob's cob_extfh_*. */
cob_file *esfh_calling_file(void);      /* the program's file of the current call, or NULL */
void esfh_program_record_read(size_t length);  /* a READ succeeded: tell the program's file */

/* BEGIN cffi: what Python calls (esrt.isam reads the lines up to END cffi as its cffi
 * declarations, so they are written once; plain C types and integer constants only). */
/* Sizes of the environment's regions: whoever creates them first, the others join. */
#define ESFH_LK_MAX_LOCKS 20000
#define ESFH_LK_MAX_OBJECTS 20000
#define ESFH_LK_MAX_LOCKERS 4000
#define ESFH_THREADS_PER_PROC 4         /* thread slots: max_procs * this + ESFH_THREADS_SPARE */
#define ESFH_THREADS_SPARE 16
/* Log files of 1 MB, not Berkeley DB's 10 MB: recovery zero-fills the current log file past
 * its last record to the file's end, and on a small or nearly full data disk those blocks
 * are exactly what recovery lacks. */
#define ESFH_LOG_FILE_BYTES 1048576
/* esfh_commit's answer when a PostgreSQL store's connection broke during COMMIT: the call's
 * stored reply (committed with it, or not at all) tells whether it committed. */
#define ESFH_IN_DOUBT 30600
/* What a call's BEGIN, its statements and its commit answer once the connection to a
 * PostgreSQL store is lost before its COMMIT (the server or its node went away, the session
 * was ended): the transaction is gone or never began and nothing of it committed, so the
 * call may run again. */
#define ESFH_STORE_LOST 30601
/* What a call's statements and commit answer when the PostgreSQL server ended its session
 * because the transaction stayed idle between two statements longer than the server's
 * idle_in_transaction_session_timeout: nothing of it committed. The program computed that
 * long between two file operations, or its process was held up that long. */
#define ESFH_IDLE_TIMEOUT 30602
int esfh_env_open(const char *home, int durability, int max_procs, char *err, int errlen);
int esfh_env_recover(const char *home, char *err, int errlen);
int esfh_env_recover_fresh(const char *home, char *err, int errlen);
int esfh_begin(void);
int esfh_commit(void);
void esfh_set_group_commit(int on);
int esfh_log_flush(void);
int esfh_abort(void);
int esfh_doomed(void);
/* Free what dead processes held; timeout_ms > 0: in a child process, given up (as needing
 * recovery) after that long. */
int esfh_failchk(int timeout_ms);
/* Checkpoint (kbytes > 0: only if that much log was written since the last one); with
 * remove_logs, remove the log files recovery no longer needs (*removed: how many). */
int esfh_env_checkpoint(int kbytes, int remove_logs, int *removed);
void esfh_env_close(void);
void esfh_env_abandon(void);
const char *esfh_last_error(void);
int esfh_request_writes(void);
int esfh_reply_put(const void *key, int keylen, const void *data, int datalen, long long expires);
int esfh_reply_get(const void *key, int keylen, void *buf, int buflen, int *outlen,
                   long long now);
int esfh_reply_purge(long long now, int limit);
/* Use the PostgreSQL store named by `conninfo` (a libpq connection string) instead of a
 * Berkeley DB environment, from now on in this process (sets ESFH_STORE, which the programs it
 * runs inherit), and connect to it. */
int esfh_store_open(const char *conninfo, char *err, int errlen);
/* In a PostgreSQL store: end the session of process `pid` of this host (a SEP that died) and
 * wait up to timeout_ms for it to be gone; EBUSY when it is not. */
int esfh_pg_end_session(long pid, int timeout_ms);
/* The libcob release ESFH was compiled for: major * 100 + minor (302 for 3.2). */
int esfh_built_for_libcob(void);
/* END cffi */

/* Internal, shared between the source files. */
DB_ENV *esfh_env(void);                 /* the environment, opened on first use */
DB_ENV *esfh_env_if_open(void);         /* the environment, or NULL: never opens it */
DB_TXN *esfh_op_txn(int *own);          /* transaction for one operation; *own: commit it after */
int esfh_op_end(DB_TXN *txn, int own, int ret);  /* finish an operation's transaction */
void esfh_note_write(void);             /* counts writes for ESFH_COMMIT_INTERVAL */
void esfh_interval_commit(void);        /* commit the interval transaction (at CLOSE) */
void esfh_set_error(const char *fmt, ...);
int esfh_is_doomed(void);
void esfh_close_all_dbs(void);          /* close cached DB handles (before closing the env) */
DB_TXN *esfh_request_txn(void);         /* the request transaction (begun on first use), or NULL outside one */
int esfh_request_lost(void);            /* ESFH_STORE_LOST when the request's transaction could not begin */
void esfh_doom(void);                   /* mark the request transaction as a deadlock victim */
void esfh_close_replies(void);          /* close the reply store (before closing the env) */

/* esfh_pg.c: the PostgreSQL store (ESFH_STORE, a libpq connection string): its connection
 * and transactions (esfh_env.c), and its reply store (esfh_replies.c). */
int esfh_pg_store(void);                 /* a PostgreSQL store is configured */
int esfh_pg_connected(void);             /* connected now (connecting on first use) */
DB_TXN *esfh_pg_begin(void);             /* BEGIN; a marker standing for the transaction */
int esfh_pg_end(int commit);             /* COMMIT or ROLLBACK: 0 or a Berkeley DB error */
void esfh_pg_close(void);
int esfh_pg_reply_put(const void *key, int keylen, const void *data, int datalen,
                      long long expires);
int esfh_pg_reply_get(const void *key, int keylen, void *buf, int buflen, int *outlen,
                      long long now, int in_request);
int esfh_pg_reply_purge(long long now, int limit);

#define ESFH_DEADLOCK(r) ((r) == DB_LOCK_DEADLOCK || (r) == DB_LOCK_NOTGRANTED)

#endif
