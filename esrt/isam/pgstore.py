"""The file tools on a PostgreSQL store: what esrt.isam.files does for a Berkeley DB data
environment, for a server whose files are in PostgreSQL (its `store` setting).

The tables are ESFH's (native/esfh_pg.c): schema "esfh", one table per file named after it,
with the prime key (k), the stored value (v: the record and its duplicate sequence numbers,
as in Berkeley DB) and one column per alternate key holding its index entry (a1, a2, ...).
File descriptions, which the Berkeley DB tools keep in a sidecar file beside each file, are
rows of esfh.__esrt_descriptions here, so that every node sees them.

PgStore has DataEnv's interface and PgFile IsamFile's (esrt.isam.files.StoredFile), so `esrt
file` runs the same code on both stores. Every access runs in a transaction; one that loses a
deadlock or a serialization conflict is run again.
"""

import json

import psycopg
from psycopg import errors, sql

from esrt.isam.files import DEADLOCK_RETRIES, IsamFileError, StoredFile, _shown
from esrt.isam.layout import FileLayout, LayoutError, SEQ_LEN
from esrt.pglink import link_defaults

SCHEMA = "esfh"
DESCRIPTIONS = "__esrt_descriptions"
REPLIES = "__esrt_replies"
# ESFH's own tables in the schema: not files.
INTERNAL_PREFIX = "__esrt"
# PostgreSQL's longest identifier, and so the longest file name of a store.
NAME_MAX = 63
# Run again: a deadlock, a serialization conflict, or a key a region wrote meanwhile (the
# run again sees it, and says so).
_RETRIED = (errors.DeadlockDetected, errors.SerializationFailure, errors.UniqueViolation)


def _table(name):
    return sql.Identifier(SCHEMA, name)


class PgStore:
    """A PostgreSQL store, joined for the tools (a context manager)."""

    def __init__(self, conninfo):
        self.conninfo = conninfo
        self.home = f"PostgreSQL store {conninfo}"
        try:
            self.connection = psycopg.connect(conninfo, application_name="esrt file",
                                              **link_defaults(conninfo))
        except psycopg.Error as exc:
            raise IsamFileError(f"cannot connect to the {self.home}: {exc}; check that the "
                                "server runs, that it is the primary (a standby accepts no "
                                "writes), and that the connection string is right") from None
        self._files = []
        try:
            self.transaction(self._make_schema)
        except BaseException:
            self.close()
            raise

    def _make_schema(self, cursor):
        found = cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (
            _table(DESCRIPTIONS).as_string(self.connection),)).fetchone()[0]
        if found:
            return  # nothing to make: no need for the right to create
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('esfh'))")
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        cursor.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, "
                               "description text NOT NULL)").format(_table(DESCRIPTIONS)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.connection is None:
            return
        self._files = []
        self.connection.close()
        self.connection = None

    def transaction(self, work):
        """Run ``work(cursor)`` in a transaction, re-running it after a deadlock or a
        serialization failure; return its result."""
        for attempt in range(DEADLOCK_RETRIES):
            try:
                with self.connection.transaction(), self.connection.cursor() as cursor:
                    return work(cursor)
            except _RETRIED:
                if attempt == DEADLOCK_RETRIES - 1:
                    raise IsamFileError(f"{self.home}: still deadlocked after "
                                        f"{DEADLOCK_RETRIES} attempts; retry when the regions "
                                        "are less busy") from None
            except errors.InsufficientPrivilege as exc:
                raise IsamFileError(f"{self.home}: {exc.diag.message_primary}; grant the "
                                    "account in the connection string the rights on schema "
                                    f"{SCHEMA} and its tables (or use the account the "
                                    "regions use)") from None
            except psycopg.Error as exc:
                raise IsamFileError(f"{self.home}: {exc}") from None

    def path_of(self, name):
        """A file's name in the store: its table's name."""
        name = str(name)
        while name.startswith("./"):
            name = name[2:]
        if "/" in name or not name or len(name.encode()) > NAME_MAX:
            raise IsamFileError(f"{name!r} is not a file name of a PostgreSQL store: give the "
                                f"file's name in the server's data directory (1 to {NAME_MAX} "
                                "bytes, no '/'), as the program's ASSIGN names it")
        if name.startswith(INTERNAL_PREFIX):
            raise IsamFileError(f"{name} is ESFH's own table, not a file")
        return name

    def exists(self, name):
        name = self.path_of(name)
        return self.transaction(lambda cursor: cursor.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            (_table(name).as_string(self.connection),)).fetchone()[0])

    def description(self, name):
        name = self.path_of(name)
        row = self.transaction(lambda cursor: cursor.execute(
            sql.SQL("SELECT description FROM {} WHERE name = %s").format(_table(DESCRIPTIONS)),
            (name,)).fetchone())
        if row is None:
            return None
        try:
            return FileLayout.from_json(json.loads(row[0]), f"the description of {name}")
        except ValueError as exc:
            raise LayoutError(f"the description of {name} in the {self.home} is not valid "
                              f"JSON ({exc}); recreate it with 'esrt file create --adopt'") \
                from None

    def save_description(self, name, layout):
        text = json.dumps(layout.to_json())
        self.transaction(lambda cursor: cursor.execute(
            sql.SQL("INSERT INTO {} (name, description) VALUES (%s, %s) ON CONFLICT (name) "
                    "DO UPDATE SET description = EXCLUDED.description")
            .format(_table(DESCRIPTIONS)), (self.path_of(name), text)))

    def file_names(self):
        """The files of the store, in name order."""
        rows = self.transaction(lambda cursor: cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name COLLATE \"C\"", (SCHEMA,)).fetchall())
        return [row[0] for row in rows if not row[0].startswith(INTERNAL_PREFIX)]

    def replies(self):
        """The stored replies: (key, expiry in epoch seconds, reply bytes)."""
        def work(cursor):
            if cursor.execute("SELECT to_regclass(%s)", (_table(REPLIES).as_string(
                    self.connection),)).fetchone()[0] is None:
                return []
            return [(bytes(key), expires, bytes(data)) for key, expires, data in cursor.execute(
                sql.SQL("SELECT key, expires, data FROM {} ORDER BY key").format(
                    _table(REPLIES))).fetchall()]
        return self.transaction(work)

    def replace_replies(self, replies):
        """Empty the reply store and store ``replies`` (as replies() gives them)."""
        def work(cursor):
            cursor.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (key bytea PRIMARY KEY, "
                                   "expires bigint NOT NULL, data bytea NOT NULL)")
                           .format(_table(REPLIES)))
            cursor.execute(sql.SQL("CREATE INDEX IF NOT EXISTS __esrt_replies_expires ON {} "
                                   "(expires)").format(_table(REPLIES)))
            cursor.execute(sql.SQL("DELETE FROM {}").format(_table(REPLIES)))
            with cursor.copy(sql.SQL("COPY {} (key, expires, data) FROM STDIN").format(
                    _table(REPLIES))) as copy:
                for reply in replies:
                    copy.write_row(reply)
        self.transaction(work)

    def open_file(self, name, layout=None, create=False):
        name = self.path_of(name)
        if layout is None:
            layout = self.description(name)
        if not create and not self.exists(name):
            raise IsamFileError(f"file {name} does not exist in the {self.home}; create it "
                                "with 'esrt file create' (or check the name and --store/"
                                "--server)")
        handle = PgFile(self, name, layout, create)
        self._files.append(handle)
        return handle


class PgFile(StoredFile):
    """One ESFH file in a PostgreSQL store: its table."""

    def __init__(self, env, name, layout, create=False):
        self.env = env
        self.path = name
        self.table = _table(name)
        self.layout = layout
        existing = self._alternate_columns()
        wanted = len(layout.alternates) if layout is not None and layout.keys else None
        if existing is None:
            self._create(wanted or 0)
            existing = wanted or 0
        elif wanted is not None and existing != wanted:
            raise IsamFileError(
                f"file {name} has {existing} alternate key columns but its description names "
                f"{wanted} alternate keys; pass --alt-key for each (in the order of the "
                "program's ALTERNATE RECORD KEY clauses)")
        self.alternate_count = existing

    def _alternate_columns(self):
        """How many alternate key columns the table has (None: there is no table)."""
        def work(cursor):
            found = cursor.execute("SELECT to_regclass(%s)",
                                   (self.table.as_string(self.env.connection),)).fetchone()[0]
            if found is None:
                return None
            return cursor.execute(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attname ~ '^a[0-9]+$' AND NOT attisdropped",
                (self.table.as_string(self.env.connection),)).fetchone()[0]
        return self.env.transaction(work)

    def _create(self, alternates):
        """The table as ESFH makes it (native/esfh_pg.c, create_table)."""
        columns = [sql.SQL("k bytea PRIMARY KEY"), sql.SQL("v bytea NOT NULL")]
        columns += [sql.SQL("{} bytea UNIQUE").format(sql.Identifier(f"a{index}"))
                    for index in range(1, alternates + 1)]

        def work(cursor):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('esfh'))")
            cursor.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                self.table, sql.SQL(", ").join(columns)))
        self.env.transaction(work)

    def close(self):
        pass

    # --- reading ------------------------------------------------------------------------------

    def count(self):
        return self.env.transaction(lambda cursor: cursor.execute(
            sql.SQL("SELECT count(*) FROM {}").format(self.table)).fetchone()[0])

    def items(self, limit=None):
        """Yield (prime key, stored value) in prime key order, in transactions of BATCH_SIZE
        rows (see IsamFile.items)."""
        yield from self._rows("k", ("k", "v"), limit)

    def index_entries(self, index):
        """Yield (entry, prime key) of alternate key ``index`` in entry order."""
        yield from self._rows(f"a{index}", (f"a{index}", "k"))

    def _rows(self, order, columns, limit=None):
        """Tuples of `columns` (bytes) of the rows whose `order` column is set, in its order,
        read in transactions of BATCH_SIZE rows."""
        key = sql.Identifier(order)
        wanted = sql.SQL(", ").join(sql.Identifier(column) for column in (order, *columns))

        def read(after, want):
            where = sql.SQL("{} > %s").format(key) if after is not None \
                else sql.SQL("{} IS NOT NULL").format(key)
            query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s").format(
                wanted, self.table, where, key)
            params = (after, want) if after is not None else (want,)
            return self.env.transaction(lambda cursor: cursor.execute(query, params).fetchall())

        for rows in self._batched(read, limit):
            for row in rows:
                yield tuple(bytes(value) if value is not None else None for value in row[1:])

    # --- writing ------------------------------------------------------------------------------

    def _store(self, cursor, record):
        """Write one new record like ESFH's WRITE; return a problem text or None."""
        layout = self.layout
        prime = layout.prime.extract(record)
        taken = cursor.execute(sql.SQL("SELECT 1 FROM {} WHERE k = %s").format(self.table),
                               (prime,)).fetchone()
        if taken:
            return "prime key %s %s already exists (duplicate key, status 22)" % (
                layout.prime.name, _shown(prime))
        entries, trailer = [], b""
        for index, key in enumerate(layout.alternates, 1):
            value = key.extract(record)
            column = sql.Identifier(f"a{index}")
            if key.dups:
                seq = self._next_seq(cursor, column, value).to_bytes(SEQ_LEN, "big")
                trailer += seq
                value += seq
            elif cursor.execute(sql.SQL("SELECT 1 FROM {} WHERE {} = %s").format(
                    self.table, column), (value,)).fetchone():
                return "alternate key %s %s already exists and allows no duplicates " \
                       "(status 22)" % (key.name, _shown(value))
            entries.append(value)
        self._insert(cursor, prime, bytes(record) + trailer, entries)
        return None

    def _insert(self, cursor, prime, value, entries):
        columns = [sql.Identifier("k"), sql.Identifier("v")]
        columns += [sql.Identifier(f"a{index}") for index in range(1, len(entries) + 1)]
        cursor.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self.table, sql.SQL(", ").join(columns),
            sql.SQL(", ").join(sql.Placeholder() * len(columns))), (prime, value, *entries))

    def _next_seq(self, cursor, column, value):
        """One more than the highest sequence number stored for ``value`` (1 for the first)."""
        found = cursor.execute(sql.SQL(
            "SELECT {} FROM {} WHERE {} >= %s AND {} <= %s ORDER BY {} DESC LIMIT 1").format(
                column, self.table, column, column, column),
            (value, value + b"\xff" * SEQ_LEN)).fetchone()
        if found is not None and len(found[0]) == len(value) + SEQ_LEN:
            return int.from_bytes(bytes(found[0])[len(value):], "big") + 1
        return 1

    def replace_content(self, items, entries):
        """Empty the file and store ``items`` ((prime key, stored value) pairs) with the
        alternate index entries ``entries`` (one list of (entry, prime key) per alternate
        key) as they are, in one transaction: a copy from another store."""
        by_prime = {}
        for index, pairs in enumerate(entries):
            for entry, prime in pairs:
                by_prime.setdefault(prime, [None] * len(entries))[index] = entry

        def work(cursor):
            cursor.execute(sql.SQL("DELETE FROM {}").format(self.table))
            columns = [sql.Identifier("k"), sql.Identifier("v")]
            columns += [sql.Identifier(f"a{index}") for index in range(1, len(entries) + 1)]
            with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    self.table, sql.SQL(", ").join(columns))) as copy:
                for prime, value in items:
                    copy.write_row((prime, value,
                                    *by_prime.get(prime, [None] * len(entries))))
        self.env.transaction(work)

    # --- checking -----------------------------------------------------------------------------

    def verify(self, max_problems=50):
        """Check that every record is stored under its prime key and carries the alternate
        key entries its record and sequence numbers give (PostgreSQL keeps the table and its
        indexes sound itself). Returns a list of problems (empty: the file is sound)."""
        layout = self._need_keys()
        problems = []
        alternates = [f"a{index}" for index in range(1, self.alternate_count + 1)]
        for prime, value, *entries in self._rows("k", ("k", "v", *alternates)):
            record = layout.record_of(value)
            if layout.prime.extract(record) != prime:
                problems.append("%s: record stored under prime key %s holds key %s" % (
                    self.path, _shown(prime), _shown(layout.prime.extract(record))))
            for index, (key, entry) in enumerate(zip(layout.alternates, entries), 1):
                expected = key.extract(record) + (
                    layout.sequence(value, index) if key.dups else b"")
                if entry != expected:
                    problems.append("%s: record %s has %s for alternate key %s where its "
                                    "record gives %s" % (
                                        self.path, _shown(prime),
                                        "no entry" if entry is None else
                                        "the entry " + _shown(entry), key.name,
                                        _shown(expected)))
            if len(problems) >= max_problems:
                break
        return problems[:max_problems]
