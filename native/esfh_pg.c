/*
 * ESFH's PostgreSQL store: a file's records in a table of a PostgreSQL database, reached
 * through libpq, so that regions on several nodes serve one set of files at once.
 *
 * Chosen by ESFH_STORE (a libpq connection string, "host=... dbname=..." or a postgresql://
 * URL); without it ESFH keeps its files in Berkeley DB. The file operations (esfh_read.c,
 * esfh_write.c) are the same for both stores: they work on a primary index and one index per
 * alternate key through esfh_store.c, and this file answers those requests as Berkeley DB
 * would (its DBTs, flags and error codes), so the two stores cannot differ in what a COBOL
 * program sees.
 *
 * Layout: schema "esfh", one table per file, named by the file's path relative to the data
 * directory (ESRT_DATA_DIR, COB_FILE_PATH or the working directory, as ESFH resolves names):
 *     k bytea PRIMARY KEY     the prime key's bytes (RELATIVE: the 8-byte big-endian number)
 *     v bytea NOT NULL        the value Berkeley DB stores: record + duplicate sequence numbers
 *     a1 .. aN bytea UNIQUE   alternate key n's index entry (key bytes + sequence number for
 *                             keys WITH DUPLICATES, so duplicates sort in the order they were
 *                             written); NULL where a SPARSE key is not indexed
 * bytea orders as Berkeley DB's btrees do (bytes compared unsigned, a prefix first), so
 * "ORDER BY" walks an index in the order a cursor would.
 *
 * Transactions: a call is one database transaction (READ COMMITTED). A READ of a file opened
 * I-O reads the row FOR UPDATE, so the row stays locked until the call commits, as Berkeley
 * DB's write lock does; a lock held by a process that dies goes with its connection. Deadlocks
 * (40P01), serialization failures (40001) and a unique key taken by a concurrent transaction
 * (23505) come back as DB_LOCK_DEADLOCK: the call runs again, and then sees the other's row.
 *
 * Reading ahead: START and READ NEXT/PREVIOUS query a few rows of the index in key order and
 * keep them (with their records) for the operations that follow; the rows are dropped when
 * this process writes to the table and when the transaction ends.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <libpq-fe.h>

#include "esfh_internal.h"

#define FIRST_ROWS 8            /* rows fetched when an index is positioned anew */
#define MOST_ROWS 256           /* rows fetched at most, when a scan goes on */
#define TABLE_NAME_MAX 63       /* PostgreSQL's identifiers (NAMEDATALEN - 1) */
#define SQL_MAX 1024
#define SCHEMA "esfh"
/* PostgreSQL's type numbers (catalog/pg_type_d.h, not installed with libpq-dev). */
#define BYTEAOID_ 17
#define INT8OID_ 20

/* Rows of one index fetched in one direction from a bound: [bound, last] in index order
 * (descending: [last, bound]); complete when nothing lies past the last row. */
struct rows {
    PGresult *res;
    int n, desc, complete, limit;
    unsigned serial, writes;    /* the transaction and the table's writes they were read in */
    int has_bound, inclusive;
    unsigned char bound[KEYBUF + SEQLEN];
    u_int32_t boundlen;
};

struct esfh_pgtable {
    char name[TABLE_NAME_MAX + 1];
    char ident[2 * TABLE_NAME_MAX + 16];   /* "esfh"."name", quoted */
    int nalt;
    unsigned writes;
    struct rows rows[MAXKEYS];
    int last_k, last_row;       /* the row a cursor gave last: its record serves the next get */
    /* The row read last FOR UPDATE: locked until the transaction ends, so reading it again
     * (a REWRITE after the READ that locked it) needs no trip to the server. */
    PGresult *locked;
    unsigned locked_serial, locked_writes;
    unsigned char locked_key[KEYBUF];
    u_int32_t locked_keylen;
};

/* libpq, loaded when a PostgreSQL store is first used: a program whose files are in Berkeley
 * DB (the default) then never loads it and the two dozen libraries it needs (Kerberos, LDAP,
 * TLS), which every COBOL program would otherwise load at its start. */
static struct {
    void *handle;
    __typeof__(PQclear) *PQclear;
    __typeof__(PQcmdStatus) *PQcmdStatus;
    __typeof__(PQcmdTuples) *PQcmdTuples;
    __typeof__(PQconnectdbParams) *PQconnectdbParams;
    __typeof__(PQconnectPoll) *PQconnectPoll;
    __typeof__(PQconnectStartParams) *PQconnectStartParams;
    __typeof__(PQconninfo) *PQconninfo;
    __typeof__(PQconninfoFree) *PQconninfoFree;
    __typeof__(PQconninfoParse) *PQconninfoParse;
    __typeof__(PQconsumeInput) *PQconsumeInput;
    __typeof__(PQerrorMessage) *PQerrorMessage;
    __typeof__(PQexec) *PQexec;
    __typeof__(PQexecParams) *PQexecParams;
    __typeof__(PQexecPrepared) *PQexecPrepared;
    __typeof__(PQfinish) *PQfinish;
    __typeof__(PQgetlength) *PQgetlength;
    __typeof__(PQgetvalue) *PQgetvalue;
    __typeof__(PQntuples) *PQntuples;
    __typeof__(PQprepare) *PQprepare;
    __typeof__(PQreset) *PQreset;
    __typeof__(PQresetPoll) *PQresetPoll;
    __typeof__(PQresetStart) *PQresetStart;
    __typeof__(PQresultErrorField) *PQresultErrorField;
    __typeof__(PQresultErrorMessage) *PQresultErrorMessage;
    __typeof__(PQresultStatus) *PQresultStatus;
    __typeof__(PQsetNoticeReceiver) *PQsetNoticeReceiver;
    __typeof__(PQsocket) *PQsocket;
    __typeof__(PQstatus) *PQstatus;
    __typeof__(PQbackendPID) *PQbackendPID;
} libpq;

static int load_libpq(void)
{
    void *handle;
    if (libpq.handle != NULL)
        return 0;
    handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        esfh_set_error("ESFH: the PostgreSQL store needs libpq, which cannot be loaded (%s); "
                       "install Debian's libpq5 package", dlerror());
        return -1;
    }
#define LOAD(name)                                                                            \
    if ((*(void **)&libpq.name = dlsym(handle, #name)) == NULL)                               \
        goto missing
    LOAD(PQclear);
    LOAD(PQcmdStatus);
    LOAD(PQcmdTuples);
    LOAD(PQconnectdbParams);
    LOAD(PQconnectPoll);
    LOAD(PQconnectStartParams);
    LOAD(PQconninfo);
    LOAD(PQconninfoFree);
    LOAD(PQconninfoParse);
    LOAD(PQconsumeInput);
    LOAD(PQerrorMessage);
    LOAD(PQexec);
    LOAD(PQexecParams);
    LOAD(PQexecPrepared);
    LOAD(PQfinish);
    LOAD(PQgetlength);
    LOAD(PQgetvalue);
    LOAD(PQntuples);
    LOAD(PQprepare);
    LOAD(PQreset);
    LOAD(PQresetPoll);
    LOAD(PQresetStart);
    LOAD(PQresultErrorField);
    LOAD(PQresultErrorMessage);
    LOAD(PQresultStatus);
    LOAD(PQsetNoticeReceiver);
    LOAD(PQsocket);
    LOAD(PQstatus);
    LOAD(PQbackendPID);
#undef LOAD
    libpq.handle = handle;
    return 0;
missing:
    esfh_set_error("ESFH: the libpq loaded lacks %s; install Debian's libpq5 package",
                   dlerror());
    dlclose(handle);
    return -1;
}

/* Below, every call of libpq goes through the functions loaded above. */
#define PQclear (*libpq.PQclear)
#define PQcmdStatus (*libpq.PQcmdStatus)
#define PQcmdTuples (*libpq.PQcmdTuples)
#define PQconnectdbParams (*libpq.PQconnectdbParams)
#define PQconnectPoll (*libpq.PQconnectPoll)
#define PQconnectStartParams (*libpq.PQconnectStartParams)
#define PQconninfo (*libpq.PQconninfo)
#define PQconninfoFree (*libpq.PQconninfoFree)
#define PQconninfoParse (*libpq.PQconninfoParse)
#define PQconsumeInput (*libpq.PQconsumeInput)
#define PQerrorMessage (*libpq.PQerrorMessage)
#define PQexec (*libpq.PQexec)
#define PQexecParams (*libpq.PQexecParams)
#define PQexecPrepared (*libpq.PQexecPrepared)
#define PQfinish (*libpq.PQfinish)
#define PQgetlength (*libpq.PQgetlength)
#define PQgetvalue (*libpq.PQgetvalue)
#define PQntuples (*libpq.PQntuples)
#define PQprepare (*libpq.PQprepare)
#define PQreset (*libpq.PQreset)
#define PQresetPoll (*libpq.PQresetPoll)
#define PQresetStart (*libpq.PQresetStart)
#define PQresultErrorField (*libpq.PQresultErrorField)
#define PQresultErrorMessage (*libpq.PQresultErrorMessage)
#define PQresultStatus (*libpq.PQresultStatus)
#define PQsetNoticeReceiver (*libpq.PQsetNoticeReceiver)
#define PQsocket (*libpq.PQsocket)
#define PQstatus (*libpq.PQstatus)
#define PQbackendPID (*libpq.PQbackendPID)

/* READ COMMITTED whatever the database's default: a row read FOR UPDATE after a wait is the
 * latest committed one, and a reply read after waiting for its key's lock is seen. */
#define BEGIN "BEGIN ISOLATION LEVEL READ COMMITTED"

static PGconn *g_conn;
static int g_in_txn;
static int g_failed;            /* an error that is not a deadlock ended the transaction */
static unsigned g_serial;       /* bumped at every BEGIN, COMMIT and ROLLBACK */
/* Stands for the connection's open transaction where ESFH passes a DB_TXN around. */
static DB_TXN g_marker;
static int g_binary[MAXKEYS + 4];
static long g_backend_pid;      /* the server process of this connection's session */

static int g_idled_out;         /* the server said it ends the session: its transaction idled */
static int g_read_only;         /* the session's server refused a write: the next one is new */
static struct timespec g_idle_since;    /* when the transaction's last statement ended */

/* What the server says outside a statement. libpq would write its notices ("schema esfh
 * already exists, skipping") on stderr, the console log of a region, where they say nothing
 * a user needs. An error there is the server telling why it ends the session: kept when it is
 * the transaction's idle timeout (SQLSTATE 25P03), which then fails the transaction. */
static void heard(void *unused, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    (void)unused;
    if (state != NULL && strcmp(state, "25P03") == 0)
        g_idled_out = 1;
}

/* Milliseconds from `since` to now (CLOCK_MONOTONIC). */
static long ms_since(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Before a statement of a transaction that has idled a while: read what the server may have
 * said meanwhile. Sending first would meet a closed session, whose reset loses the reason. */
static void hear_while_idle(void)
{
    if (!g_idled_out && ms_since(&g_idle_since) >= 10)
        PQconsumeInput(g_conn);
}

static void statement_ended(void)
{
    clock_gettime(CLOCK_MONOTONIC, &g_idle_since);
}

static const char *conninfo(void)
{
    const char *value = getenv("ESFH_STORE");
    return value != NULL && value[0] != '\0' ? value : NULL;
}

int esfh_pg_store(void)
{
    return conninfo() != NULL;
}

/* The value of `keyword` among libpq's `options` ("" when unset), into `out`; frees them. */
static void option_value(PQconninfoOption *options, const char *keyword, char *out, size_t cap)
{
    PQconninfoOption *option;
    out[0] = '\0';
    for (option = options; option != NULL && option->keyword != NULL; option++)
        if (strcmp(option->keyword, keyword) == 0 && option->val != NULL)
            snprintf(out, cap, "%s", option->val);
    PQconninfoFree(options);
}

/* Does the connection string, or PGSERVICE, name a service of pg_service.conf? */
static int names_service(const char *info)
{
    const char *service = getenv("PGSERVICE");
    char named[256];
    option_value(PQconninfoParse(info, NULL), "service", named, sizeof named);
    return named[0] != '\0' || (service != NULL && service[0] != '\0');
}

/* After how many milliseconds without an answer a connection attempt towards the store is
 * started again (0: never; see learn_round_trip), and why the last connection failed where
 * libpq cannot say. */
static long g_resend_ms;
static char g_connect_problem[160];

/* The connect timeout of `conn` in milliseconds, as libpq applies it (seconds, at least 2;
 * 0: none). */
static long connect_limit_ms(PGconn *conn)
{
    char timeout[16];
    long limit_ms;
    option_value(PQconninfo(conn), "connect_timeout", timeout, sizeof timeout);
    limit_ms = strtol(timeout, NULL, 10) * 1000;
    return limit_ms > 0 && limit_ms < 2000 ? 2000 : limit_ms;
}

/* Whether, and after how long, the next attempts towards the store just connected start again
 * when left unanswered. Why: when the store's address moves to another node (a failover), an
 * attempt sent while nobody had it waits for TCP to send its first packet again, a whole
 * second later, however soon the new owner answers. Four round trips of this connection, at
 * least 250 ms, are long enough to wait for that answer; at a second or more, TCP's own
 * resending comes as early. Only at one address given as such (libpq goes through several
 * hosts, or the addresses of a name, one at a time, each with the whole connect timeout, and
 * an attempt started again would start over at the first) and within a connect timeout
 * (without one, attempts made again would never end); elsewhere libpq connects as it always
 * does. Kept while connecting fails: that is when it is needed. */
static void learn_round_trip(PGconn *conn)
{
    struct tcp_info info;
    socklen_t size = sizeof info;
    unsigned char address[sizeof(struct in6_addr)];
    char host[256];
    long wait;
    if (PQstatus(conn) != CONNECTION_OK)
        return;
    g_resend_ms = 0;
    option_value(PQconninfo(conn), "hostaddr", host, sizeof host);
    if (host[0] == '\0')
        option_value(PQconninfo(conn), "host", host, sizeof host);
    if ((inet_pton(AF_INET, host, address) != 1 && inet_pton(AF_INET6, host, address) != 1) ||
        connect_limit_ms(conn) == 0 ||
        getsockopt(PQsocket(conn), IPPROTO_TCP, TCP_INFO, &info, &size) != 0 ||
        info.tcpi_rtt == 0)
        return;
    wait = 4L * (long)info.tcpi_rtt / 1000;
    if (wait < 250)
        wait = 250;
    g_resend_ms = wait < 1000 ? wait : 0;
}

/* Drive a connection begun by PQconnectStartParams or PQresetStart (`reset`) to its end,
 * starting the attempt again whenever its first packet is left unanswered for g_resend_ms,
 * and giving up, as libpq would, once the connect timeout has passed. (A fixed pace, not a
 * growing one: the connect timeout bounds the attempts, a few a second.) */
static void complete_connection(PGconn *conn, int reset)
{
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    long limit_ms = connect_limit_ms(conn), left, wait;
    /* Without a connect timeout (g_resend_ms was learnt with one), none is started again. */
    long resend_ms = limit_ms > 0 ? g_resend_ms : 0;
    struct timespec begun, attempt;
    struct pollfd socket_events;
    ConnStatusType seen = CONNECTION_BAD;
    int ready;
    clock_gettime(CLOCK_MONOTONIC, &begun);
    while (state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED &&
           PQstatus(conn) != CONNECTION_BAD) {
        wait = 1000;   /* at most, between two looks at the clock */
        if (limit_ms > 0) {
            left = limit_ms - ms_since(&begun);
            if (left <= 0) {
                snprintf(g_connect_problem, sizeof g_connect_problem,
                         "timeout expired: no answer within %ld s (connect_timeout)\n",
                         limit_ms / 1000);
                return;
            }
            if (left < wait)
                wait = left;
        }
        if (PQstatus(conn) == CONNECTION_STARTED && seen != CONNECTION_STARTED)
            clock_gettime(CLOCK_MONOTONIC, &attempt);   /* a first packet sent: libpq's or ours */
        seen = PQstatus(conn);
        if (resend_ms > 0 && seen == CONNECTION_STARTED) {   /* and not answered yet */
            left = resend_ms - ms_since(&attempt);
            if (left <= 0) {
                if (!PQresetStart(conn))
                    return;
                reset = 1;
                state = PGRES_POLLING_WRITING;
                seen = CONNECTION_BAD;
                continue;
            }
            if (left < wait)
                wait = left;
        }
        socket_events.fd = PQsocket(conn);
        socket_events.events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        ready = poll(&socket_events, 1, (int)wait);
        if (ready < 0 && errno != EINTR) {
            snprintf(g_connect_problem, sizeof g_connect_problem, "waiting for the store: %s\n",
                     strerror(errno));
            return;
        }
        if (ready > 0)
            state = reset ? PQresetPoll(conn) : PQconnectPoll(conn);
    }
}

/* Why connecting failed, for an error message (ends with a newline, as libpq's do). */
static const char *connect_problem(PGconn *conn)
{
    return g_connect_problem[0] != '\0' ? g_connect_problem : PQerrorMessage(conn);
}

/* The store's connection, lost, made again. */
static void reconnect(PGconn *conn)
{
    g_connect_problem[0] = '\0';
    g_read_only = 0;
    if (g_resend_ms == 0)
        PQreset(conn);
    else if (PQresetStart(conn))
        complete_connection(conn, 1);
    learn_round_trip(conn);
}

/* ESFH's connection defaults, each with the environment variable of libpq that says it instead.
 * A store that stops answering (a network cut, its node gone without closing connections)
 * must not hold a SEP, or a region ending a dead SEP's session, for as long as TCP takes to
 * give up (a quarter of an hour of retransmissions; two hours before a silent connection is
 * even probed): connecting gives up after 10 s, and a connection after 10 s of unacknowledged
 * sends or of a silent peer (keepalives from 5 s idle, 2 s apart). A server that accepts no
 * writes is refused at connect (target_session_attrs): during a failover the store's address
 * can lead to a standby for a moment, where every call would fail for good; refused, the
 * store is lost for now and the calls are retried. */
static const struct {
    const char *key, *value, *environment;
} DEFAULTS[] = {
    {"connect_timeout", "10", "PGCONNECT_TIMEOUT"},
    {"keepalives", "1", NULL},
    {"keepalives_idle", "5", NULL},
    {"keepalives_interval", "2", NULL},
    {"keepalives_count", "2", NULL},
    {"tcp_user_timeout", "10000", NULL},
    {"target_session_attrs", "read-write", "PGTARGETSESSIONATTRS"},
};
#define NDEFAULTS (sizeof DEFAULTS / sizeof DEFAULTS[0])

/* Connect to the store, with DEFAULTS. They are defaults only: the string comes last, so what
 * it sets wins, and so does a default's environment variable; a service file it names (or
 * PGSERVICE) is left to say them all. */
static PGconn *connect_store(void)
{
    const char *keys[NDEFAULTS + 2], *values[NDEFAULTS + 2];
    size_t i, n = 0;
    int service = names_service(conninfo());
    PGconn *conn;
    for (i = 0; i < NDEFAULTS && !service; i++) {
        const char *set = DEFAULTS[i].environment ? getenv(DEFAULTS[i].environment) : NULL;
        if (set == NULL || set[0] == '\0') {
            keys[n] = DEFAULTS[i].key;
            values[n++] = DEFAULTS[i].value;
        }
    }
    keys[n] = "dbname";     /* with expand_dbname: the whole string */
    values[n++] = conninfo();
    keys[n] = values[n] = NULL;
    g_connect_problem[0] = '\0';
    if (g_resend_ms == 0) {
        conn = PQconnectdbParams(keys, values, 1);
    } else {
        conn = PQconnectStartParams(keys, values, 1);
        if (conn != NULL)
            complete_connection(conn, 0);
    }
    learn_round_trip(conn);
    return conn;
}

#define FNV_OFFSET 14695981039346656037ULL

static unsigned long long fnv1a(unsigned long long hash, const void *data, size_t size)
{
    const unsigned char *p = data;
    size_t i;
    for (i = 0; i < size; i++)
        hash = (hash ^ p[i]) * 1099511628211ULL;
    return hash;
}

/* "esfh MACHINE PID": the session name of process `pid` of this machine, where MACHINE is a
 * digest of its host name and machine id (containers may share a host name). PostgreSQL keeps
 * 63 bytes of a session's name: a host name in it could be cut, and two names would match. */
static void session_name(long pid, char *out, size_t cap)
{
    char host[256] = "", machine[64] = "";
    unsigned long long hash = FNV_OFFSET;
    FILE *file = fopen("/etc/machine-id", "re");
    if (file != NULL) {
        if (fgets(machine, sizeof machine, file) == NULL)
            machine[0] = '\0';
        fclose(file);
    }
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    hash = fnv1a(hash, host, strlen(host));
    hash = fnv1a(hash, machine, strlen(machine));
    snprintf(out, cap, "esfh %016llx %ld", hash, pid);
}

/* The statements prepared in this session, by their text. Each kind of statement (a file's
 * READ, REWRITE, START in one direction...) is parsed and planned once per session instead of
 * at every call; the texts differ only by table, key column, direction and read-ahead size, so
 * a session has a few per file. Past PREPARED_MOST kinds the rest run unprepared: the memory
 * they hold here and in the server stays bounded whatever the files. */
#define PREPARED_SLOTS 1024     /* a power of two */
#define PREPARED_MOST 512

static struct {
    unsigned long long hash;
    char *sql;                  /* NULL: a free slot */
} g_prepared[PREPARED_SLOTS];
static int g_nprepared;

/* A new session knows none of the old one's statements. */
static void forget_prepared(void)
{
    size_t slot;
    for (slot = 0; slot < PREPARED_SLOTS; slot++) {
        free(g_prepared[slot].sql);
        g_prepared[slot].sql = NULL;
    }
    g_nprepared = 0;
}

/* Run `sql` as a statement prepared in this session, prepared now if it is new; the result of
 * the execution, or of the preparation when that failed (its error is the statement's: a
 * missing table, an aborted transaction, a lost connection). */
static PGresult *execute(const char *sql, int nparams, const Oid *types,
                         const char *const *values, const int *lengths, int binary)
{
    unsigned long long hash = fnv1a(FNV_OFFSET, sql, strlen(sql));
    size_t slot = hash & (PREPARED_SLOTS - 1);
    char name[24];
    char *copy;
    PGresult *res;
    while (g_prepared[slot].sql != NULL &&
           (g_prepared[slot].hash != hash || strcmp(g_prepared[slot].sql, sql) != 0))
        slot = (slot + 1) & (PREPARED_SLOTS - 1);
    snprintf(name, sizeof name, "esfh_%zu", slot);
    if (g_prepared[slot].sql == NULL) {
        /* Remembered only once prepared, and prepared only when it can be remembered: a
         * statement the server knows and this table does not would be prepared again under
         * its name, which the server refuses. */
        copy = g_nprepared < PREPARED_MOST ? strdup(sql) : NULL;
        if (copy == NULL)
            return PQexecParams(g_conn, sql, nparams, types, values, lengths,
                                binary ? g_binary : NULL, binary);
        res = PQprepare(g_conn, name, sql, nparams, types);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            free(copy);
            return res;
        }
        PQclear(res);
        g_prepared[slot].hash = hash;
        g_prepared[slot].sql = copy;
        g_nprepared++;
    }
    return PQexecPrepared(g_conn, name, nparams, values, lengths, binary ? g_binary : NULL,
                          binary);
}

/* Name this process's session: a region finds the session of a SEP that died by its name, and
 * ends it before it asks whether the SEP's last call committed (esfh_pg_end_session). Called
 * whenever a session begins. */
static void name_session(void)
{
    char name[96], sql[160];
    PGresult *res;
    forget_prepared();
    session_name((long)getpid(), name, sizeof name);
    /* A commit is durable when it returns (SEPs answer right after it), whatever the
     * database's default. */
    snprintf(sql, sizeof sql, "SET application_name = '%s'; SET synchronous_commit = on", name);
    res = PQexec(g_conn, sql);
    PQclear(res);
    g_backend_pid = PQbackendPID(g_conn);
}

int esfh_pg_connected(void)
{
    int i;
    if (g_conn != NULL && PQstatus(g_conn) == CONNECTION_OK && !(g_read_only && !g_in_txn))
        return 1;
    if (g_conn != NULL && !g_in_txn) {
        /* The server went away between transactions (a restart, a failover), or refused a
         * write (a standby the store's address led to): connect again. */
        reconnect(g_conn);
        if (PQstatus(g_conn) == CONNECTION_OK) {
            name_session();
            return 1;
        }
    }
    if (g_conn != NULL) {
        esfh_set_error("ESFH: the connection to the PostgreSQL store is lost: %s",
                       connect_problem(g_conn));
        return 0;
    }
    if (load_libpq() != 0)
        return 0;
    for (i = 0; i < MAXKEYS + 4; i++)
        g_binary[i] = 1;
    g_conn = connect_store();
    PQsetNoticeReceiver(g_conn, heard, NULL);
    if (PQstatus(g_conn) != CONNECTION_OK) {
        esfh_set_error("ESFH: cannot connect to the PostgreSQL store named by ESFH_STORE: %s"
                       "check that the server runs, that it is the primary (a standby accepts "
                       "no writes), and that the connection string is right",
                       connect_problem(g_conn));
        PQfinish(g_conn);
        g_conn = NULL;
        return 0;
    }
    name_session();
    return 1;
}

void esfh_pg_close(void)
{
    if (g_conn != NULL)
        PQfinish(g_conn);
    g_conn = NULL;
    g_in_txn = 0;
    g_read_only = 0;
}

/* Did the server end the session because the transaction idled too long (SQLSTATE 25P03)?
 * If so, the reason and what to do are the error to report. */
static int idled_out(PGresult *res, int in_txn)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!(in_txn && g_idled_out) && (state == NULL || strcmp(state, "25P03") != 0))
        return 0;
    esfh_set_error("ESFH: the PostgreSQL server ended the call's transaction: it stayed idle "
                   "between two file operations longer than the server's "
                   "idle_in_transaction_session_timeout, and was rolled back. If the program "
                   "computes that long between two file operations, raise that setting for "
                   "the database or role of the store (ALTER DATABASE ... SET "
                   "idle_in_transaction_session_timeout = ...) above the longest such pause");
    return 1;
}

/* What a failed statement means for ESFH: DB_LOCK_DEADLOCK when running the call again can
 * succeed at once, ESFH_STORE_LOST when the connection is gone or its server accepts no
 * writes (running it again can succeed once the store is back, or its address leads to the
 * primary again), EIO (with the reason in esfh_last_error) when it cannot. */
static int failure(PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int lost;
    if (g_failed)
        return g_failed;    /* "current transaction is aborted": the first error says why */
    if (state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ||
                          strcmp(state, "23505") == 0)) {
        if (g_in_txn) {
            esfh_doom();
            g_failed = DB_LOCK_DEADLOCK;   /* what later statements answer, not 25P02 */
        }
        return DB_LOCK_DEADLOCK;
    }
    if (state != NULL && strcmp(state, "55P03") == 0) {
        if (g_in_txn) {
            esfh_doom();
            g_failed = DB_LOCK_NOTGRANTED;
        }
        return DB_LOCK_NOTGRANTED;
    }
    if (idled_out(res, g_in_txn)) {
        if (g_in_txn)
            g_failed = ESFH_IDLE_TIMEOUT;
        return ESFH_IDLE_TIMEOUT;
    }
    if (state != NULL && strcmp(state, "25006") == 0) {
        /* The session's server accepts no writes: a standby (a string allowing one, or a
         * service file without target_session_attrs) or a primary made read-only. A new
         * session may reach a primary: the store is lost for now, the call not failed. */
        esfh_set_error("ESFH: PostgreSQL store, %s: the server accepts no writes (a standby, "
                       "or default_transaction_read_only is on); the store must lead to the "
                       "primary: %.*s", what,
                       (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
        g_read_only = 1;
        if (g_in_txn)
            g_failed = ESFH_STORE_LOST;
        return ESFH_STORE_LOST;
    }
    esfh_set_error("ESFH: PostgreSQL store, %s: %s", what,
                   res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(g_conn));
    lost = PQstatus(g_conn) != CONNECTION_OK ? ESFH_STORE_LOST : EIO;
    if (g_in_txn)
        g_failed = lost;
    return lost;
}

/* Run one statement: binary, with bytea parameters and results as raw bytes, or in text;
 * the result, or NULL with *ret set. */
static PGresult *run_as(const char *sql, int nparams, const Oid *types,
                        const char *const *values, const int *lengths, int binary, int *ret,
                        const char *what)
{
    PGresult *res;
    ExecStatusType status;
    if (g_failed) {
        *ret = g_failed;
        return NULL;
    }
    if (g_in_txn)
        hear_while_idle();
    res = execute(sql, nparams, types, values, lengths, binary);
    statement_ended();
    status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && !g_in_txn &&
        PQstatus(g_conn) != CONNECTION_OK) {
        /* A statement on its own (the region looking a reply up, ending a dead SEP's
         * session) on a connection the server dropped since (a restart): once more, on a new
         * one. Inside a transaction the transaction is gone, and that is the caller's to know. */
        PQclear(res);
        reconnect(g_conn);
        if (PQstatus(g_conn) != CONNECTION_OK) {
            const char *problem = connect_problem(g_conn);
            int length = (int)strcspn(problem, "\n");   /* its first line */
            esfh_set_error("ESFH: PostgreSQL store, %s: the connection was lost and cannot be "
                           "made again: %.*s", what, length, problem);
            *ret = ESFH_STORE_LOST;
            return NULL;
        }
        name_session();
        res = execute(sql, nparams, types, values, lengths, binary);
        status = PQresultStatus(res);
    }
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        *ret = 0;
        return res;
    }
    *ret = failure(res, what);
    PQclear(res);
    return NULL;
}

static PGresult *run(const char *sql, int nparams, const char *const *values,
                     const int *lengths, int binary, int *ret, const char *what)
{
    return run_as(sql, nparams, NULL, values, lengths, binary, ret, what);
}

/* Binary parameters of the given types (bigint: 8 bytes big-endian), binary results. */
static PGresult *run_typed(const char *sql, int nparams, const Oid *types,
                           const char *const *values, const int *lengths, int *ret,
                           const char *what)
{
    return run_as(sql, nparams, types, values, lengths, 1, ret, what);
}

DB_TXN *esfh_pg_begin(void)
{
    PGresult *res;
    if (!esfh_pg_connected())
        return NULL;
    if (g_in_txn)
        return &g_marker;
    res = PQexec(g_conn, BEGIN);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQstatus(g_conn) != CONNECTION_OK) {
        /* The server went away since the last transaction (a restart, a failover to a
         * standby): nothing of this one was done yet, so connect again and begin there. */
        PQclear(res);
        reconnect(g_conn);
        if (PQstatus(g_conn) != CONNECTION_OK) {
            esfh_set_error("ESFH: the connection to the PostgreSQL store was lost and cannot be "
                           "made again: %s", connect_problem(g_conn));
            return NULL;
        }
        name_session();
        res = PQexec(g_conn, BEGIN);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        esfh_set_error("ESFH: cannot begin a transaction in the PostgreSQL store: %s",
                       PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    PQclear(res);
    g_in_txn = 1;
    g_failed = 0;
    g_idled_out = 0;
    statement_ended();
    g_serial++;
    return &g_marker;
}

/* End the sessions of pg_stat_activity that `condition` (on $1 = `value`) picks, and wait until
 * they are gone: 0; EBUSY when some are still there after timeout_ms, or the error of the
 * query (`what`). */
static int end_sessions(const char *condition, const char *first, const char *second,
                        int timeout_ms, const char *what)
{
    char sql[SQL_MAX];
    const char *values[2] = {first, second};
    int ret, waited, left;
    PGresult *res;
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE %s",
             condition);
    for (waited = 0;; waited += 10) {
        res = run(sql, second != NULL ? 2 : 1, values, NULL, 0, &ret, what);
        if (res == NULL)
            return ret;
        left = PQntuples(res);
        PQclear(res);
        if (left == 0)
            return 0;
        if (waited >= timeout_ms)
            return EBUSY;
        usleep(10000);
    }
}

/* The connection broke while COMMIT was on its way: whether the transaction committed is
 * not known until its session is gone. Connect again and end that session (the server may
 * not have noticed the break yet); then the call's reply, stored in the same transaction,
 * says whether it committed. Gives up when the server cannot be reached again (the connect
 * timeout) or that session is still there 5 s later. */
static void end_lost_session(long pid)
{
    char text[32], name[96];
    reconnect(g_conn);
    if (PQstatus(g_conn) != CONNECTION_OK)
        return;
    name_session();
    /* Only that session: after a failover this may be another server, where the same
     * backend pid can be anyone's. Ours are named after this process (name_session). */
    session_name((long)getpid(), name, sizeof name);
    snprintf(text, sizeof text, "%ld", pid);
    end_sessions("pid = $1::int AND application_name = $2 AND pid <> pg_backend_pid()", text,
                 name, 5000, "ending a session lost during COMMIT");
}

int esfh_pg_end(int commit)
{
    PGresult *res;
    int ret = 0, failed = g_failed;
    if (!g_in_txn)
        return 0;
    g_in_txn = 0;
    g_failed = 0;
    g_serial++;
    if (failed)
        commit = 0;
    hear_while_idle();
    res = PQexec(g_conn, commit ? "COMMIT" : "ROLLBACK");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (commit && idled_out(res, 1)) {
            /* The server ended the session before the COMMIT came, while the transaction
             * idled: it was rolled back, nothing is in doubt. */
            ret = ESFH_IDLE_TIMEOUT;
        } else if (commit) {
            esfh_set_error("ESFH: COMMIT in the PostgreSQL store failed: %s",
                           PQresultErrorMessage(res));
            ret = EIO;
            if (PQstatus(g_conn) != CONNECTION_OK) {
                long pid = g_backend_pid;
                PQclear(res);
                res = NULL;
                end_lost_session(pid);
                esfh_set_error("ESFH: the connection to the PostgreSQL store broke during "
                               "COMMIT: whether the call committed is told by its stored reply");
                ret = ESFH_IN_DOUBT;
            }
        }
    } else if (commit && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        /* A statement of the transaction failed without ESFH seeing it: nothing committed. */
        esfh_set_error("ESFH: the PostgreSQL store rolled the transaction back; re-run it");
        ret = DB_LOCK_DEADLOCK;
    }
    PQclear(res);
    g_idled_out = 0;            /* that session is gone: it says nothing of the next one */
    return failed ? failed : ret;
}

/* ---------- tables ---------- */

/* The file's table name: its path relative to the data directory. */
static int table_name(const char *path, char *out, size_t cap)
{
    const char *home = getenv("ESRT_DATA_DIR"), *name = path;
    char cwd[PATH_MAX];
    size_t len;
    if (home == NULL || home[0] == '\0')
        home = getenv("COB_FILE_PATH");
    if (home == NULL || home[0] == '\0')
        home = getcwd(cwd, sizeof cwd);
    if (home != NULL) {
        len = strlen(home);
        while (len > 1 && home[len - 1] == '/')
            len--;
        if (strncmp(path, home, len) == 0 && path[len] == '/')
            name = path + len + 1;
    }
    while (strncmp(name, "./", 2) == 0)
        name += 2;
    if (strchr(name, '/') != NULL || strncmp(name, "__esrt", 6) == 0 || name[0] == '\0') {
        esfh_set_error("ESFH: file %s: a PostgreSQL store keeps the files of the data directory "
                       "itself (one table each, named after the file), not %s; name the file "
                       "without a directory, and not starting with __esrt", path, name);
        return -1;
    }
    if (strlen(name) > TABLE_NAME_MAX || strlen(name) >= cap) {
        esfh_set_error("ESFH: file %s: its name in the data directory, %s, is longer than the "
                       "%d bytes of a PostgreSQL table name; give it a shorter name", path,
                       name, TABLE_NAME_MAX);
        return -1;
    }
    snprintf(out, cap, "%s", name);
    return 0;
}

static void quote_ident(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(out, cap, "\"" SCHEMA "\".\"");
    for (; *name && n + 3 < cap; name++) {
        if (*name == '"')
            out[n++] = '"';
        out[n++] = *name;
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* Whether the table exists; -1 on an error (in esfh_last_error). */
static int table_exists(const char *ident)
{
    const char *values[1] = {ident};
    int ret, exists;
    PGresult *res = run("SELECT to_regclass($1) IS NOT NULL", 1, values, NULL, 0, &ret,
                        "looking for a file's table");
    if (res == NULL)
        return -1;
    exists = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return exists;
}

/* How many alternate-key columns the table has; -1 on an error. */
static int alt_columns(const char *ident)
{
    const char *values[1] = {ident};
    int ret, count;
    PGresult *res = run("SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) "
                        "AND attname ~ '^a[0-9]+$' AND NOT attisdropped", 1, values, NULL, 0,
                        &ret, "reading a file's table");
    if (res == NULL)
        return -1;
    count = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return count;
}

/* Make schema objects: `statements` after the schema, on a connection of their own,
 * committed at once, so that what a call that then rolls back made stays (as Berkeley DB's
 * databases, made outside the call's transaction too). An advisory lock keeps two processes
 * from racing to make the same. `what` names it in the error. */
static int make(const char *statements, const char *what)
{
    char sql[SQL_MAX * 2];
    PGconn *ddl = connect_store();
    PGresult *res = NULL;
    const char *state;
    int ret = ESFH_STORE_LOST;    /* not connected: out of reach for now, as for a call */
    PQsetNoticeReceiver(ddl, heard, NULL);
    if (PQstatus(ddl) == CONNECTION_OK) {
        snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('esfh'));"
                 " CREATE SCHEMA IF NOT EXISTS " SCHEMA "; %s; COMMIT", statements);
        res = PQexec(ddl, sql);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        ret = PQresultStatus(res) == PGRES_COMMAND_OK ? 0
              : state != NULL && strcmp(state, "25006") == 0 ? ESFH_STORE_LOST : EIO;
    }
    if (ret != 0)
        esfh_set_error("ESFH: cannot create %s in the PostgreSQL store: %s", what,
                       res != NULL ? PQresultErrorMessage(res) : connect_problem(ddl));
    PQclear(res);
    PQfinish(ddl);
    return ret;
}

/* The file's table, as esfh_pg.c's header describes it. */
static int create_table(struct esfh_pgtable *t)
{
    char sql[SQL_MAX], what[TABLE_NAME_MAX + 32];
    size_t n;
    int i;
    n = (size_t)snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s (k bytea PRIMARY KEY,"
                         " v bytea NOT NULL", t->ident);
    for (i = 1; i <= t->nalt; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, ", a%d bytea UNIQUE", i);
    snprintf(sql + n, sizeof sql - n, ")");
    snprintf(what, sizeof what, "the table of %s", t->name);
    return make(sql, what);
}

/* Open the file's table into s->pg, making it when `create`; *exists: whether it was there
 * before (not there and not made: 0 and s->pg NULL). */
int esfh_pg_open_table(struct dbset *s, const char *path, int create, int *exists)
{
    struct esfh_pgtable *t;
    int found, columns, ret;
    if (!esfh_pg_connected())
        return EIO;
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        esfh_set_error("ESFH: no memory to open %s", path);
        return ENOMEM;
    }
    if (table_name(path, t->name, sizeof t->name) != 0) {
        free(t);
        return ENAMETOOLONG;
    }
    quote_ident(t->name, t->ident, sizeof t->ident);
    t->nalt = s->ndb - 1;
    t->last_k = -1;
    found = table_exists(t->ident);
    if (found == 1) {
        columns = alt_columns(t->ident);
        if (columns != t->nalt) {
            if (columns >= 0)
                esfh_set_error("ESFH: file %s: its table in the PostgreSQL store has %d "
                               "alternate keys, this program's description of the file %d; "
                               "the file was written with another key layout", path, columns,
                               t->nalt);
            free(t);
            return EINVAL;
        }
    }
    if (found < 0 || (!found && !create)) {
        free(t);
        *exists = 0;
        return found < 0 ? EIO : 0;
    }
    if (!found && (ret = create_table(t)) != 0) {
        free(t);
        return ret;
    }
    if (!found && (columns = alt_columns(t->ident)) != t->nalt) {
        /* Another program made it first, with another key layout. */
        if (columns >= 0)
            esfh_set_error("ESFH: file %s: its table in the PostgreSQL store was just made "
                           "with %d alternate keys, this program's description of the file has "
                           "%d", path, columns, t->nalt);
        free(t);
        return EINVAL;
    }
    *exists = found;
    s->pg = t;
    return 0;
}

void esfh_pg_close_table(struct dbset *s)
{
    int k;
    if (s->pg == NULL)
        return;
    for (k = 0; k < MAXKEYS; k++)
        if (s->pg->rows[k].res != NULL)
            PQclear(s->pg->rows[k].res);
    if (s->pg->locked != NULL)
        PQclear(s->pg->locked);
    free(s->pg);
    s->pg = NULL;
}

/* ---------- reading and writing rows ---------- */

static int keycmp(const unsigned char *a, u_int32_t alen, const unsigned char *b,
                  u_int32_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Give `value` to a DBT as Berkeley DB would: into the caller's buffer (DB_BUFFER_SMALL when
 * it does not fit), or nothing for a partial get of 0 bytes. */
static int give(DBT *dbt, const char *value, int length)
{
    if ((dbt->flags & DB_DBT_PARTIAL) && dbt->dlen == 0) {
        dbt->size = 0;
        return 0;
    }
    dbt->size = (u_int32_t)length;
    if ((u_int32_t)length > dbt->ulen)
        return DB_BUFFER_SMALL;
    memcpy(dbt->data, value, (size_t)length);
    return 0;
}

static void dropped(struct esfh_pgtable *t, int k)
{
    if (t->rows[k].res != NULL)
        PQclear(t->rows[k].res);
    t->rows[k].res = NULL;
    t->rows[k].n = 0;
    if (t->last_k == k)
        t->last_k = -1;
}

static void written(struct esfh_pgtable *t)
{
    t->writes++;
    t->last_k = -1;
}

int esfh_pg_get(struct efile *f, int k, DBT *key, DBT *data, u_int32_t flags)
{
    struct esfh_pgtable *t = f->dbs->pg;
    struct rows *r;
    char sql[SQL_MAX];
    const char *values[1] = {key->data};
    int lengths[1] = {(int)key->size}, ret;
    PGresult *res;
    if (k == 0 && !(flags & DB_RMW) && t->last_k >= 0) {
        /* The record of the row a cursor just gave, read in this transaction. */
        r = &t->rows[t->last_k];
        if (r->serial == g_serial && r->writes == t->writes &&
            keycmp((const unsigned char *)PQgetvalue(r->res, t->last_row, 1),
                   (u_int32_t)PQgetlength(r->res, t->last_row, 1), key->data, key->size) == 0)
            return give(data, PQgetvalue(r->res, t->last_row, 2),
                        PQgetlength(r->res, t->last_row, 2));
    }
    if (k == 0 && (flags & DB_RMW) && t->locked != NULL && t->locked_serial == g_serial &&
        t->locked_writes == t->writes && t->locked_keylen == key->size &&
        memcmp(t->locked_key, key->data, key->size) == 0)
        return give(data, PQgetvalue(t->locked, 0, 0), PQgetlength(t->locked, 0, 0));
    if (k == 0)
        snprintf(sql, sizeof sql, "SELECT v FROM %s WHERE k = $1%s", t->ident,
                 flags & DB_RMW ? " FOR UPDATE" : "");
    else
        snprintf(sql, sizeof sql, "SELECT k FROM %s WHERE a%d = $1", t->ident, k);
    res = run(sql, 1, values, lengths, 1, &ret, "reading a record");
    if (res == NULL)
        return ret;
    ret = PQntuples(res) == 0 ? DB_NOTFOUND
                              : give(data, PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
    if (ret == 0 && k == 0 && (flags & DB_RMW) && key->size <= sizeof t->locked_key) {
        if (t->locked != NULL)
            PQclear(t->locked);
        t->locked = res;
        t->locked_serial = g_serial;
        t->locked_writes = t->writes;
        memcpy(t->locked_key, key->data, key->size);
        t->locked_keylen = key->size;
        return 0;
    }
    PQclear(res);
    return ret;
}

int esfh_pg_put(struct efile *f, DBT *key, DBT *data, int isnew)
{
    struct esfh_pgtable *t = f->dbs->pg;
    char sql[SQL_MAX + MAXKEYS * 24];
    unsigned char entries[MAXKEYS][KEYBUF + SEQLEN];
    const char *values[MAXKEYS + 2];
    int lengths[MAXKEYS + 2], i, ret, length;
    size_t n;
    PGresult *res;
    values[0] = key->data;
    lengths[0] = (int)key->size;
    values[1] = data->data;
    lengths[1] = (int)data->size;
    for (i = 1; i <= t->nalt; i++) {
        length = esfh_alt_entry(f, i, data->data, data->size, entries[i - 1]);
        values[i + 1] = length < 0 ? NULL : (const char *)entries[i - 1];
        lengths[i + 1] = length < 0 ? 0 : length;
    }
    if (isnew) {
        n = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s (k, v", t->ident);
        for (i = 1; i <= t->nalt; i++)
            n += (size_t)snprintf(sql + n, sizeof sql - n, ", a%d", i);
        n += (size_t)snprintf(sql + n, sizeof sql - n, ") VALUES ($1, $2");
        for (i = 1; i <= t->nalt; i++)
            n += (size_t)snprintf(sql + n, sizeof sql - n, ", $%d", i + 2);
        snprintf(sql + n, sizeof sql - n, ")");
    } else {
        n = (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET v = $2", t->ident);
        for (i = 1; i <= t->nalt; i++)
            n += (size_t)snprintf(sql + n, sizeof sql - n, ", a%d = $%d", i, i + 2);
        snprintf(sql + n, sizeof sql - n, " WHERE k = $1");
    }
    written(t);
    res = run(sql, t->nalt + 2, values, lengths, 1, &ret, "writing a record");
    if (res == NULL)
        return ret;
    PQclear(res);
    return 0;
}

/* DELETE the row of prime key `key`, or every row (key NULL); DB_NOTFOUND when none went. */
static int delete_rows(struct efile *f, const DBT *key, const char *what)
{
    struct esfh_pgtable *t = f->dbs->pg;
    char sql[SQL_MAX];
    const char *values[1] = {key != NULL ? key->data : NULL};
    int lengths[1] = {key != NULL ? (int)key->size : 0}, ret;
    PGresult *res;
    snprintf(sql, sizeof sql, "DELETE FROM %s%s", t->ident, key != NULL ? " WHERE k = $1" : "");
    written(t);
    res = run(sql, key != NULL, values, lengths, 1, &ret, what);
    if (res == NULL)
        return ret;
    ret = strcmp(PQcmdTuples(res), "0") == 0 ? DB_NOTFOUND : 0;
    PQclear(res);
    return ret;
}

int esfh_pg_del(struct efile *f, DBT *key)
{
    return delete_rows(f, key, "deleting a record");
}

int esfh_pg_truncate(struct efile *f)
{
    int ret = delete_rows(f, NULL, "emptying a file for OPEN OUTPUT");
    return ret == DB_NOTFOUND ? 0 : ret;   /* an empty file is emptied too */
}

/* ---------- cursors ---------- */

/* Fetch index k's rows from `bound` (none: from the first, or the last when descending). */
static int fetch(struct esfh_pgtable *t, int k, int desc, const unsigned char *bound,
                 u_int32_t boundlen, int inclusive, int limit)
{
    struct rows *r = &t->rows[k];
    char sql[SQL_MAX], column[16];
    const char *values[1] = {(const char *)bound};
    int lengths[1] = {(int)boundlen}, ret;
    PGresult *res;
    if (k == 0)
        snprintf(column, sizeof column, "k");
    else
        snprintf(column, sizeof column, "a%d", k);
    if (bound != NULL)
        snprintf(sql, sizeof sql, "SELECT %s, k, v FROM %s WHERE %s %s $1 ORDER BY %s%s "
                 "LIMIT %d", column, t->ident, column,
                 desc ? (inclusive ? "<=" : "<") : (inclusive ? ">=" : ">"), column,
                 desc ? " DESC" : "", limit);
    else
        snprintf(sql, sizeof sql, "SELECT %s, k, v FROM %s WHERE %s IS NOT NULL ORDER BY %s%s "
                 "LIMIT %d", column, t->ident, column, column, desc ? " DESC" : "", limit);
    res = run(sql, bound != NULL, values, lengths, 1, &ret, "reading a file in key order");
    if (res == NULL)
        return ret;
    dropped(t, k);
    r->res = res;
    r->n = PQntuples(res);
    r->desc = desc;
    r->limit = limit;
    r->complete = r->n < limit;
    r->serial = g_serial;
    r->writes = t->writes;
    r->has_bound = bound != NULL;
    r->inclusive = inclusive;
    if (bound != NULL)
        memcpy(r->bound, bound, boundlen);
    r->boundlen = boundlen;
    return 0;
}

static const unsigned char *row_key(struct rows *r, int row, u_int32_t *length)
{
    *length = (u_int32_t)PQgetlength(r->res, row, 0);
    return (const unsigned char *)PQgetvalue(r->res, row, 0);
}

/* The first row at or after `want` among rows already fetched ascending, when they are sure
 * to hold it: they must start at or before `want` and reach past it (or to the end). */
static int cached_from(struct esfh_pgtable *t, int k, const unsigned char *want,
                       u_int32_t wantlen)
{
    struct rows *r = &t->rows[k];
    const unsigned char *key;
    u_int32_t length;
    int row, c;
    if (r->res == NULL || r->desc || r->serial != g_serial || r->writes != t->writes)
        return -2;
    if (r->has_bound) {
        c = keycmp(want, wantlen, r->bound, r->boundlen);
        if (c < 0 || (c == 0 && !r->inclusive))
            return -2;
    }
    for (row = 0; row < r->n; row++) {
        key = row_key(r, row, &length);
        if (keycmp(key, length, want, wantlen) >= 0)
            return row;
    }
    return r->complete ? -1 : -2;
}

/* The cursor's row, given to the caller's DBTs. */
static int deliver_row(struct esfh_cursor *cur, DBT *key, DBT *data)
{
    struct esfh_pgtable *t = cur->f->dbs->pg;
    struct rows *r = &t->rows[cur->k];
    int ret;
    ret = give(key, PQgetvalue(r->res, cur->row, 0), PQgetlength(r->res, cur->row, 0));
    if (ret == 0)
        ret = cur->k == 0 ? give(data, PQgetvalue(r->res, cur->row, 2),
                                 PQgetlength(r->res, cur->row, 2))
                          : give(data, PQgetvalue(r->res, cur->row, 1),
                                 PQgetlength(r->res, cur->row, 1));
    t->last_k = cur->k;
    t->last_row = cur->row;
    return ret;
}

/* Position at the first row of a fresh fetch; DB_NOTFOUND leaves the cursor unpositioned. */
static int first_of_fetch(struct esfh_cursor *cur, int desc, const unsigned char *bound,
                          u_int32_t boundlen, int inclusive, int limit, DBT *key, DBT *data)
{
    struct esfh_pgtable *t = cur->f->dbs->pg;
    int ret = fetch(t, cur->k, desc, bound, boundlen, inclusive, limit);
    if (ret != 0)
        return ret;
    if (t->rows[cur->k].n == 0) {
        cur->positioned = 0;
        return DB_NOTFOUND;
    }
    cur->row = 0;
    cur->positioned = 1;
    return deliver_row(cur, key, data);
}

/* NEXT (desc 0) or PREV (desc 1) from the cursor's row. */
static int step(struct esfh_cursor *cur, int desc, DBT *key, DBT *data)
{
    struct esfh_pgtable *t = cur->f->dbs->pg;
    struct rows *r = &t->rows[cur->k];
    unsigned char from[KEYBUF + SEQLEN];
    u_int32_t fromlen;
    const unsigned char *current;
    int limit;
    if (r->desc == desc && r->serial == g_serial && r->writes == t->writes) {
        if (cur->row + 1 < r->n) {
            cur->row++;
            return deliver_row(cur, key, data);
        }
        if (r->complete)
            return DB_NOTFOUND;
    }
    current = row_key(r, cur->row, &fromlen);
    if (fromlen > sizeof from)
        return EINVAL;
    memcpy(from, current, fromlen);
    /* A scan that goes on reads more rows at a time, up to MOST_ROWS. */
    limit = r->desc == desc && r->limit * 4 < MOST_ROWS ? r->limit * 4 : MOST_ROWS;
    if (r->desc != desc)
        limit = FIRST_ROWS;
    return first_of_fetch(cur, desc, from, fromlen, 0, limit, key, data);
}

void esfh_pg_forget(struct efile *f)
{
    /* Rows are kept only while the table's write count is the one they were read at. */
    written(f->dbs->pg);
}

int esfh_pg_cur_get(struct esfh_cursor *cur, DBT *key, DBT *data, u_int32_t flags)
{
    struct esfh_pgtable *t = cur->f->dbs->pg;
    int op = (int)(flags & DB_OPFLAGS_MASK), row;
    switch (op) {
    case DB_FIRST:
        return first_of_fetch(cur, 0, NULL, 0, 1, FIRST_ROWS, key, data);
    case DB_LAST:
        return first_of_fetch(cur, 1, NULL, 0, 1, FIRST_ROWS, key, data);
    case DB_SET_RANGE:
        row = cached_from(t, cur->k, key->data, key->size);
        if (row == -1) {
            cur->positioned = 0;
            return DB_NOTFOUND;
        }
        if (row >= 0) {
            cur->row = row;
            cur->positioned = 1;
            return deliver_row(cur, key, data);
        }
        {
            unsigned char want[KEYBUF + SEQLEN];
            if (key->size > sizeof want)
                return EINVAL;
            memcpy(want, key->data, key->size);
            return first_of_fetch(cur, 0, want, key->size, 1, FIRST_ROWS, key, data);
        }
    case DB_NEXT:
        if (!cur->positioned)
            return first_of_fetch(cur, 0, NULL, 0, 1, FIRST_ROWS, key, data);
        return step(cur, 0, key, data);
    case DB_PREV:
        if (!cur->positioned)
            return first_of_fetch(cur, 1, NULL, 0, 1, FIRST_ROWS, key, data);
        return step(cur, 1, key, data);
    default:
        esfh_set_error("ESFH: PostgreSQL store: cursor operation %d is not supported", op);
        return EINVAL;
    }
}

/* ---------- the reply store ---------- */

/* Replies live in the store beside the files (esfh_replies.c says what they are for): a table
 * of their own, written in the call's transaction. */
#define REPLIES SCHEMA ".__esrt_replies"

static int g_replies_ready;

static int replies_table(void)
{
    int ret;
    if (g_replies_ready)
        return 0;
    if (!esfh_pg_connected())
        return ESFH_STORE_LOST;
    /* Made once: every process asking for CREATE would need the right to create, and its
     * CREATE INDEX IF NOT EXISTS would queue behind every reply being written. */
    if (table_exists(REPLIES) == 1) {
        g_replies_ready = 1;
        return 0;
    }
    ret = make("CREATE TABLE IF NOT EXISTS " REPLIES " (key bytea PRIMARY KEY,"
             " expires bigint NOT NULL, data bytea NOT NULL);"
             " CREATE INDEX IF NOT EXISTS __esrt_replies_expires ON " REPLIES " (expires)",
             "the reply store");
    if (ret != 0)
        return ret;
    g_replies_ready = 1;
    return 0;
}

static void put_be64(unsigned char *out, long long value)
{
    unsigned long long v = (unsigned long long)value;
    int i;
    for (i = 7; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)(v & 0xff);
}

/* A 64-bit lock number for a reply key: calls with one idempotency key take the same
 * transaction-level advisory lock, so the second waits for the first to commit or roll back
 * (a row that does not exist yet cannot be locked). FNV-1a; two keys sharing a number only
 * make their calls wait for each other. */
static long long key_lock(const void *key, int keylen)
{
    return (long long)fnv1a(FNV_OFFSET, key, (size_t)keylen);
}

static const Oid REPLY_TYPES[3] = {BYTEAOID_, INT8OID_, BYTEAOID_};
static const Oid PURGE_TYPES[2] = {INT8OID_, INT8OID_};

int esfh_pg_reply_put(const void *key, int keylen, const void *data, int datalen,
                      long long expires)
{
    unsigned char when[8];
    const char *values[3] = {key, (const char *)when, data};
    int lengths[3] = {keylen, 8, datalen}, ret;
    PGresult *res;
    if ((ret = replies_table()) != 0)
        return ret;
    put_be64(when, expires);
    res = run_typed("INSERT INTO " REPLIES " (key, expires, data) VALUES ($1, $2, $3)"
                    " ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires,"
                    " data = EXCLUDED.data", 3, REPLY_TYPES, values, lengths, &ret,
                    "storing a reply");
    if (res == NULL)
        return ret;
    PQclear(res);
    return 0;
}

/* See esfh_reply_get. Inside a request the key's advisory lock is taken first, so a call
 * whose idempotency key another call (in any region) is running waits for that one, then
 * reads its reply. Outside one (the region, after a SEP died) nothing waits. */
int esfh_pg_reply_get(const void *key, int keylen, void *buf, int buflen, int *outlen,
                      long long now, int in_request)
{
    unsigned char lock[8], when[8];
    const char *values[2] = {(const char *)lock, NULL};
    int lengths[2] = {8, 0}, ret;
    PGresult *res;
    *outlen = 0;
    if ((ret = replies_table()) != 0)
        return ret;
    if (in_request) {
        put_be64(lock, key_lock(key, keylen));
        res = run_typed("SELECT pg_advisory_xact_lock($1)", 1, REPLY_TYPES + 1, values,
                        lengths, &ret, "waiting for a call with the same idempotency key");
        if (res == NULL)
            return ret;
        PQclear(res);
    }
    values[0] = key;
    lengths[0] = keylen;
    put_be64(when, now);
    values[1] = (const char *)when;
    lengths[1] = 8;
    res = run_typed("SELECT data FROM " REPLIES " WHERE key = $1 AND expires >= $2", 2,
                    REPLY_TYPES, values, lengths, &ret, "reading a stored reply");
    if (res == NULL)
        return ret;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return DB_NOTFOUND;
    }
    *outlen = PQgetlength(res, 0, 0);
    ret = *outlen > buflen ? DB_BUFFER_SMALL : 0;
    if (ret == 0)
        memcpy(buf, PQgetvalue(res, 0, 0), (size_t)*outlen);
    PQclear(res);
    return ret;
}

/* Delete up to `limit` replies that expired before `now`; how many went (negative: error). */
int esfh_pg_reply_purge(long long now, int limit)
{
    unsigned char when[8], most[8];
    const char *values[2] = {(const char *)when, (const char *)most};
    int lengths[2] = {8, 8}, ret, deleted;
    PGresult *res;
    if (g_in_txn) {
        /* Its own transaction: inside a request's, it would commit that one half way. */
        esfh_set_error("ESFH: esfh_reply_purge called inside a transaction");
        return -1;
    }
    if (replies_table() != 0 || esfh_pg_begin() == NULL)
        return -1;
    put_be64(when, now);
    put_be64(most, limit);
    res = run_typed("DELETE FROM " REPLIES " WHERE key IN (SELECT key FROM " REPLIES
                    " WHERE expires < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)", 2,
                    PURGE_TYPES, values, lengths, &ret, "deleting expired replies");
    deleted = res != NULL ? atoi(PQcmdTuples(res)) : -1;
    if (res != NULL)
        PQclear(res);
    ret = esfh_pg_end(res != NULL);
    return ret == 0 ? deleted : (ESFH_DEADLOCK(ret) ? 0 : -1);
}

int esfh_store_open(const char *conninfo_text, char *err, int errlen)
{
    if (conninfo_text == NULL || conninfo_text[0] == '\0') {
        snprintf(err, (size_t)errlen, "ESFH: the PostgreSQL store needs a connection string "
                 "(host=... dbname=... or postgresql://...)");
        return EINVAL;
    }
    if (g_conn != NULL && strcmp(conninfo_text, conninfo() ? conninfo() : "") != 0)
        esfh_pg_close();
    setenv("ESFH_STORE", conninfo_text, 1);
    if (!esfh_pg_connected()) {
        snprintf(err, (size_t)errlen, "%s", esfh_last_error());
        return EIO;
    }
    return 0;
}

/* A process of this host died (a SEP): end its session, if the server has not yet seen it go,
 * and wait until it is gone. A transaction of the dead process may be in the middle of its
 * COMMIT; once its session is gone, it has committed or rolled back for good, and its reply
 * (esfh_reply_get) says which. 0 once gone; EBUSY when it is still there after timeout_ms. */
int esfh_pg_end_session(long pid, int timeout_ms)
{
    char name[96];
    int ret;
    if (!esfh_pg_connected())
        return EIO;
    session_name(pid, name, sizeof name);
    ret = end_sessions("application_name = $1", name, NULL, timeout_ms,
                       "ending the session of a process that died");
    if (ret == EBUSY)
        esfh_set_error("ESFH: the PostgreSQL session of process %ld is still there after %d ms",
                       pid, timeout_ms);
    return ret;
}
