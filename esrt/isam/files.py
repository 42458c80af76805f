"""Tools for ESFH files: create, load, unload, dump, count and verify indexed files, checkpoint
and recover a region's data environment -- safe while the region runs.

They join the region's transactional Berkeley DB environment (the data directory) with
bsddb3 and read and write exactly ESFH's format (see esrt.isam.layout and native/esfh.c), so
COBOL programs and these tools see the same data. Every access runs in a transaction; a
transaction chosen as a deadlock victim is rolled back and re-run.

Joining ESFH's environment from Python: ESFH opens it with DB_FAILCHK, a thread table
(set_thread_count) and an is-alive callback; bsddb3 has no failchk/set_isalive, so the tools
open it without DB_FAILCHK. Berkeley DB still registers the tool's process in the thread
table the region created, so an ESFH failchk after a tool died mid-transaction aborts the
tool's transaction. When a tool is the first to open the directory it creates the regions with
ESFH's sizes (thread table included), because ESFH cannot join an environment without one.
The tools never open with DB_RECOVER except in `recover_environment`.

Environment lock: every process holds a shared flock on ``esrt-env.lock`` in the environment
home while it has the environment open; recovery takes it exclusively (non-blocking) and
refuses while anybody holds it.
"""

import fcntl
import hashlib
import os
from pathlib import Path

from bsddb3 import db

from esrt.isam import CONSTANTS
from esrt.isam.layout import FileLayout, LayoutError, SEQ_LEN, sidecar_path

ENV_LOCK_NAME = "esrt-env.lock"
ENV_FLAGS = (db.DB_CREATE | db.DB_INIT_TXN | db.DB_INIT_LOCK | db.DB_INIT_LOG |
             db.DB_INIT_MPOOL | db.DB_THREAD)
# Region sizes as ESFH sets them (native/esfh.h; max_procs 16), so that whoever creates the
# regions first, ESFH processes can join them.
THREAD_COUNT = 16 * CONSTANTS["ESFH_THREADS_PER_PROC"] + CONSTANTS["ESFH_THREADS_SPARE"]
LOCK_LIMITS = {"locks": CONSTANTS["ESFH_LK_MAX_LOCKS"],
               "objects": CONSTANTS["ESFH_LK_MAX_OBJECTS"],
               "lockers": CONSTANTS["ESFH_LK_MAX_LOCKERS"]}
BATCH_SIZE = 1000
BTREE_MAGIC = 0x053162
# The reply store's database (native/esfh_replies.c).
REPLIES_DB = "__esrt_replies"
DEADLOCK_RETRIES = 20
_DEADLOCKS = (db.DBLockDeadlockError, db.DBLockNotGrantedError)


class IsamFileError(ValueError):
    """A file tool failed; the message names the file, the problem and what to do."""


# --- the environment lock ------------------------------------------------------------------

def env_lock_holders(home):
    """PIDs holding a flock on the environment lock file of ``home`` (from /proc/locks)."""
    path = Path(home) / ENV_LOCK_NAME
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    wanted = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = set()
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if "->" in fields:        # a waiter, not a holder
            continue
        try:
            at = fields.index("FLOCK")
            pid = int(fields[at + 3])
            major, minor, inode = fields[at + 4].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                pids.add(pid)
        except (ValueError, IndexError):
            continue
    return sorted(pids)


def _lock_env(home, exclusive):
    """Open and flock the environment lock file; return its descriptor."""
    fd = os.open(Path(home) / ENV_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pids = ", ".join(str(p) for p in env_lock_holders(home)) or "unknown"
        if exclusive:
            raise IsamFileError("data environment %s is in use by PIDs %s; stop the region "
                                "(and any batch program or file tool using it) first"
                                % (home, pids)) from None
        raise IsamFileError("data environment %s is being recovered (PIDs %s); try again "
                            "when recovery has finished" % (home, pids)) from None
    return fd


def _check_home(home):
    home = Path(home)
    if not home.is_dir():
        raise IsamFileError("data directory %s does not exist; check --data-dir or the "
                            "server's data_dir (create it, or start the region once)" % home)
    return home.resolve()


def _configure(env):
    env.set_lk_detect(db.DB_LOCK_DEFAULT)
    env.set_thread_count(THREAD_COUNT)
    env.set_lk_max_locks(LOCK_LIMITS["locks"])
    env.set_lk_max_objects(LOCK_LIMITS["objects"])
    env.set_lk_max_lockers(LOCK_LIMITS["lockers"])
    env.set_lg_max(CONSTANTS["ESFH_LOG_FILE_BYTES"])
    # Allocate the mapped region files when creating them, as ESFH does (native/esfh_env.c):
    # a page first touched after the disk filled would be a SIGBUS, not an error.
    env.set_flags(db.DB_REGION_INIT, 1)
    env.set_get_returns_none(2)


def _db_error(exc):
    """The text of a Berkeley DB exception."""
    args = getattr(exc, "args", ())
    return args[1] if len(args) > 1 else str(exc)


class DataEnv:
    """The data environment in directory ``home``, joined for the tools (a context manager).

    Holds the shared environment lock while open.
    """

    def __init__(self, home):
        self.home = _check_home(home)
        self._lock = _lock_env(self.home, exclusive=False)
        self.env = db.DBEnv()
        try:
            _configure(self.env)
            self.env.open(str(self.home), ENV_FLAGS, 0o660)
        except db.DBError as exc:
            self.env = None
            os.close(self._lock)
            raise IsamFileError("cannot open the data environment %s: %s (%s)" % (
                self.home, _db_error(exc),
                "run 'esrt file recover' with the region stopped"
                if isinstance(exc, db.DBRunRecoveryError)
                else "check the directory's permissions and free space")) from None
        self._files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close every file opened through this environment, then the environment."""
        if self.env is None:
            return
        for handle in self._files:
            handle.close()
        self._files = []
        self.env.close()
        self.env = None
        os.close(self._lock)

    def path_of(self, name):
        """A file name as ESFH resolves it in this region: relative names live in the data
        directory."""
        path = Path(name)
        return path if path.is_absolute() else self.home / path

    def exists(self, name):
        """Whether file ``name`` exists."""
        return self.path_of(name).exists()

    def description(self, name):
        """The stored description of file ``name`` (its sidecar), or None."""
        return FileLayout.load(self.path_of(name))

    def save_description(self, name, layout):
        """Store ``layout`` as the description of file ``name``."""
        path = self.path_of(name)
        try:
            layout.save(path)
        except OSError as exc:
            raise IsamFileError("cannot write the description %s: %s" % (
                sidecar_path(path), exc.strerror)) from None

    def file_names(self):
        """The names of the ESFH files here (INDEXED and RELATIVE), in name order: the
        Berkeley DB databases of the directory but the alternate indexes (NAME.1 ...), the
        reply store and Berkeley DB's own files."""
        names = []
        for path in sorted(self.home.iterdir()):
            if (not path.is_file() or path.name.startswith(("__db.", "log.", "__esrt"))
                    or not _is_btree(path)):
                continue
            base, dot, number = path.name.rpartition(".")
            if dot and number.isdigit() and (self.home / base).is_file():
                continue
            names.append(path.name)
        return names

    def nested_files(self):
        """ESFH files in subdirectories of the data directory (their paths from it)."""
        return sorted(str(path.relative_to(self.home)) for path in self.home.rglob("*")
                      if path.parent != self.home and path.is_file() and _is_btree(path)
                      and not path.name.startswith(("__db.", "log.")))

    def open_file(self, name, layout=None, create=False):
        """An IsamFile for ``name``; ``layout`` defaults to the file's sidecar."""
        path = self.path_of(name)
        if layout is None:
            layout = FileLayout.load(path)
        if not create and not path.exists():
            raise IsamFileError("file %s does not exist; create it with 'esrt file create' "
                                "(or check the name and --data-dir/--server)" % path)
        handle = IsamFile(self, path, layout, create)
        self._files.append(handle)
        return handle

    def transaction(self, work):
        """Run ``work(txn)`` in a transaction, re-running it after a deadlock; return its
        result. An exception from ``work`` aborts the transaction and propagates."""
        for attempt in range(DEADLOCK_RETRIES):
            txn = self.env.txn_begin()
            try:
                result = work(txn)
            except _DEADLOCKS:
                txn.abort()
                if attempt == DEADLOCK_RETRIES - 1:
                    raise IsamFileError("data environment %s: still deadlocked after %d "
                                        "attempts; retry when the region is less busy"
                                        % (self.home, DEADLOCK_RETRIES)) from None
                continue
            except BaseException:
                txn.abort()
                raise
            txn.commit()
            return result

    def checkpoint(self):
        """Flush the cache and write a checkpoint (bounds the work of a later recovery)."""
        self.env.txn_checkpoint(0, 0, db.DB_FORCE)

    def replies(self):
        """The stored replies (esfh_replies.c): (key, expiry in epoch seconds, reply bytes)."""
        if not (self.home / REPLIES_DB).exists():
            return []
        database = db.DB(self.env)
        database.open(REPLIES_DB, None, db.DB_BTREE, db.DB_THREAD | db.DB_AUTO_COMMIT, 0o660)
        try:
            def work(txn):
                cursor = database.cursor(txn=txn)
                try:
                    found, out = cursor.first(), []
                    while found is not None:
                        key, value = found
                        out.append((key, int.from_bytes(value[:8], "big"), value[8:]))
                        found = cursor.next()
                    return out
                finally:
                    cursor.close()
            return self.transaction(work)
        finally:
            database.close()

    def replace_replies(self, replies):
        """Empty the reply store and store ``replies`` (as replies() gives them)."""
        database = db.DB(self.env)
        database.open(REPLIES_DB, None, db.DB_BTREE,
                      db.DB_THREAD | db.DB_AUTO_COMMIT | db.DB_CREATE, 0o660)
        try:
            def work(txn):
                database.truncate(txn=txn)
                for key, expires, data in replies:
                    database.put(key, expires.to_bytes(8, "big") + data, txn=txn)
            self.transaction(work)
        finally:
            database.close()


def _is_btree(path):
    """Whether ``path`` is a Berkeley DB btree database (its magic number, on its first
    page, in either byte order)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return len(head) == 16 and head[12:16] in (BTREE_MAGIC.to_bytes(4, "little"),
                                               BTREE_MAGIC.to_bytes(4, "big"))


def checkpoint_environment(home):
    """Checkpoint the data environment in ``home`` (safe while the region runs)."""
    with DataEnv(home) as env:
        env.checkpoint()


def recover_environment(home):
    """Run Berkeley DB recovery on ``home``; refuses (IsamFileError) while any process holds
    the environment lock, i.e. while a region, batch program or tool uses it."""
    home = _check_home(home)
    lock = _lock_env(home, exclusive=True)
    try:
        env = db.DBEnv()
        _configure(env)
        try:
            env.open(str(home), ENV_FLAGS | db.DB_RECOVER, 0o660)
        except db.DBError as exc:
            raise IsamFileError("recovery of %s failed: %s; check free space and the log "
                                "files (log.*) in that directory" % (home, _db_error(exc))) \
                from None
        env.close()
    finally:
        os.close(lock)


# --- one file -------------------------------------------------------------------------------

def _shown(data):
    text = bytes(data)
    if all(32 <= b < 127 for b in text):
        return repr(text.decode("ascii"))
    return "x'%s'" % text.hex()


class StoredFile:
    """What the file tools do with one ESFH file on either store: the parts that need no
    store of their own (reading records, loading them in batches, the content digest). A
    store's file class gives count, items, index_entries, alternate_count, _store, verify
    and close."""

    def _need_keys(self):
        if self.layout is None or not self.layout.keys:
            raise IsamFileError("the keys of %s are not known; pass --key and --alt-key (or "
                                "--layout with field names), or describe the file once with "
                                "'esrt file create %s --adopt ...'" % (self.path,
                                                                        Path(self.path).name))
        return self.layout

    def records(self, limit=None):
        """Yield (prime key, record bytes) in prime key order."""
        layout = self.layout or FileLayout()
        for key, value in self.items(limit):
            yield key, layout.record_of(value)

    @staticmethod
    def _batched(read, limit=None):
        """The lists `read(after, want)` gives (at most `want` rows, each starting with its key,
        in key order, after the key `after`; None: from the first), one after the other until
        one comes short or `limit` rows came: a long scan in short transactions."""
        last, produced = None, 0
        while limit is None or produced < limit:
            want = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - produced)
            batch = read(last, want)
            yield batch
            produced += len(batch)
            if len(batch) < want:
                return
            last = batch[-1][0]

    def digest(self):
        """(records, SHA-256 of the stored content): every record's prime key and stored
        value, then every alternate index entry, each in key order. Both stores order keys
        alike (bytes compared unsigned), so a file and its copy in the other store have the
        same digest."""
        sha = hashlib.sha256()
        count = 0
        for key, value in self.items():
            count += 1
            _feed(sha, key, value)
        for index in range(1, self.alternate_count + 1):
            sha.update(b"index %d" % index)
            for entry, prime in self.index_entries(index):
                _feed(sha, entry, prime)
        return count, sha.hexdigest()

    def load(self, records, batch_size=BATCH_SIZE):
        """Write new records, keeping every alternate key index as ESFH does.

        ``records`` yields (where, record bytes); ``where`` names the input position for
        errors ("line 12"). Records are committed in transactions of ``batch_size``; a bad
        record raises IsamFileError and rolls back its whole batch (earlier batches stay).
        Returns the number of records written.
        """
        layout = self._need_keys()
        if layout.organization != "indexed":
            raise IsamFileError("loading is supported for INDEXED files only; %s is %s"
                                % (self.path, layout.organization.upper()))
        written = 0
        batch = []
        for where, record in records:
            self._check_record(where, record)
            batch.append((where, record))
            if len(batch) >= batch_size:
                written += self._load_batch(batch, written)
                batch = []
        if batch:
            written += self._load_batch(batch, written)
        return written

    def _check_record(self, where, record):
        layout = self.layout
        name = Path(self.path).name
        if layout.record_length is not None and len(record) != layout.record_length:
            raise IsamFileError("%s: %s: record is %d bytes, the file's records are %d; "
                                "nothing of this batch was loaded" % (
                                    name, where, len(record), layout.record_length))
        shortest = max(key.offset + key.length for key in layout.keys)
        if len(record) < shortest:
            raise IsamFileError("%s: %s: record is %d bytes, too short for its keys (%d); "
                                "nothing of this batch was loaded"
                                % (name, where, len(record), shortest))

    def _load_batch(self, batch, done):
        def work(txn):
            for where, record in batch:
                problem = self._store(txn, record)
                if problem:
                    raise IsamFileError(
                        "%s: %s: %s; this batch (from %s) was rolled back, the %d records "
                        "before it are loaded: fix the input and load again from %s"
                        % (Path(self.path).name, where, problem, batch[0][0], done,
                           batch[0][0]))
            return len(batch)
        return self.env.transaction(work)


def _feed(sha, first, second):
    sha.update(len(first).to_bytes(4, "big"))
    sha.update(first)
    sha.update(len(second).to_bytes(4, "big"))
    sha.update(second)


class IsamFile(StoredFile):
    """One ESFH file: the primary database PATH and PATH.1 ... per alternate key."""

    def __init__(self, env, path, layout, create=False):
        self.env = env
        self.path = Path(path)
        self.layout = layout
        self.dbs = []
        existing = self._secondaries_on_disk()
        if layout is not None and layout.keys and existing > len(layout.alternates):
            raise IsamFileError(
                "file %s has %d alternate key databases (%s.1 ... %s.%d) but its description "
                "names %d alternate keys; pass --alt-key for each (in the order of the "
                "program's ALTERNATE RECORD KEY clauses)" % (
                    self.path, existing, self.path.name, self.path.name, existing,
                    len(layout.alternates)))
        count = 1 + (len(layout.alternates) if layout is not None and layout.keys else existing)
        flags = db.DB_THREAD | db.DB_AUTO_COMMIT | (db.DB_CREATE if create else 0)
        try:
            for index in range(count):
                handle = db.DB(env.env)
                self.dbs.append(handle)
                handle.open(self._name(index), None, db.DB_BTREE, flags, 0o660)
        except db.DBError as exc:
            self.close()
            raise IsamFileError("cannot open %s: %s; check that it is an ESFH file and that "
                                "the name and --data-dir are right"
                                % (self._name(len(self.dbs) - 1), _db_error(exc))) from None

    def _name(self, index):
        return str(self.path) if index == 0 else "%s.%d" % (self.path, index)

    def _secondaries_on_disk(self):
        count = 0
        while os.path.exists(self._name(count + 1)):
            count += 1
        return count

    def close(self):
        """Close the file's database handles."""
        for handle in reversed(self.dbs):
            handle.close()
        self.dbs = []

    # --- reading ------------------------------------------------------------------------------

    def count(self):
        """The number of records (one transaction)."""
        return self.env.transaction(
            lambda txn: self.dbs[0].stat(flags=0, txn=txn)["ndata"])

    def items(self, limit=None):
        """Yield (prime key, stored value) in prime key order, reading in transactions of
        BATCH_SIZE records so that a long unload never blocks the region for long. Each
        batch is consistent; records changed while the scan runs may or may not be seen."""
        for batch in self._batches(self.dbs[0], limit):
            yield from batch

    def _read_batch(self, txn, after, want, database):
        cursor = database.cursor(txn=txn)
        try:
            found = cursor.first() if after is None else cursor.set_range(after)
            if found is not None and after is not None and found[0] == after:
                found = cursor.next()
            out = []
            while found is not None and len(out) < want:
                out.append(found)
                if len(out) < want:
                    found = cursor.next()
            return out
        finally:
            cursor.close()

    @property
    def alternate_count(self):
        """How many alternate key indexes the file has."""
        return len(self.dbs) - 1

    def index_entries(self, index):
        """Yield (entry, prime key) of alternate index ``index`` in entry order."""
        for batch in self._batches(self.dbs[index]):
            yield from batch

    def _batches(self, database, limit=None):
        """Lists of (key, value) of `database` in key order, one transaction each."""
        return self._batched(lambda after, want: self.env.transaction(
            lambda txn: self._read_batch(txn, after, want, database)), limit)

    # --- writing ------------------------------------------------------------------------------

    def _store(self, txn, record):
        """Write one new record like ESFH's WRITE; return a problem text or None."""
        layout = self.layout
        primary = self.dbs[0]
        prime = layout.prime.extract(record)
        if primary.get(prime, txn=txn, flags=db.DB_RMW) is not None:
            return "prime key %s %s already exists (duplicate key, status 22)" % (
                layout.prime.name, _shown(prime))
        for index, key in enumerate(layout.alternates, 1):
            value = key.extract(record)
            if not key.dups and self.dbs[index].get(value, txn=txn) is not None:
                return "alternate key %s %s already exists and allows no duplicates " \
                       "(status 22)" % (key.name, _shown(value))
        trailer = b""
        for index, key in enumerate(layout.alternates, 1):
            value = key.extract(record)
            if key.dups:
                seq = self._next_seq(txn, index, value).to_bytes(SEQ_LEN, "big")
                trailer += seq
                value += seq
            self.dbs[index].put(value, prime, txn=txn)
        primary.put(prime, bytes(record) + trailer, txn=txn)
        return None

    def replace_content(self, items, entries):
        """Empty the file, then store ``items`` ((prime key, stored value) pairs) and the
        alternate index entries ``entries`` (one list of (entry, prime key) per alternate
        key) as they are: a copy from another store. Written in transactions of BATCH_SIZE
        (a whole file in one would outgrow the environment's lock table), so a copy that
        fails half way leaves half a file: the copy's digest check then says so."""
        def empty(txn):
            for database in self.dbs:
                database.truncate(txn=txn)
        self.env.transaction(empty)
        for database, pairs in zip(self.dbs, [items, *entries]):
            batch = []
            for pair in pairs:
                batch.append(pair)
                if len(batch) >= BATCH_SIZE:
                    self._put_all(database, batch)
                    batch = []
            self._put_all(database, batch)

    def _put_all(self, database, pairs):
        def work(txn):
            for key, value in pairs:
                database.put(key, value, txn=txn)
        if pairs:
            self.env.transaction(work)

    def _next_seq(self, txn, index, value):
        """One more than the highest sequence number stored for ``value`` (1 for the first),
        so that duplicates read back in the order they were written."""
        cursor = self.dbs[index].cursor(txn=txn)
        try:
            found = cursor.set_range(value + b"\xff" * SEQ_LEN)
            found = cursor.prev() if found is not None else cursor.last()
        finally:
            cursor.close()
        if found is not None and found[0][:len(value)] == value and \
                len(found[0]) == len(value) + SEQ_LEN:
            return int.from_bytes(found[0][len(value):], "big") + 1
        return 1

    # --- checking -----------------------------------------------------------------------------

    def verify(self, max_problems=50):
        """Check the databases' structure (Berkeley DB verify) and that every record has its
        alternate key entries and every entry points at a record with that key. Returns a
        list of problems (empty: the file is sound)."""
        layout = self._need_keys()
        self.env.checkpoint()   # so that the files on disk hold every committed page
        problems = []
        for index in range(len(self.dbs)):
            checker = db.DB(self.env.env)
            try:
                checker.verify(self._name(index))
            except db.DBError as exc:
                problems.append("%s: Berkeley DB verify failed: %s"
                                % (self._name(index), _db_error(exc)))
        problems += self.env.transaction(lambda txn: self._cross_check(txn, layout))
        return problems[:max_problems]

    def _cross_check(self, txn, layout):
        problems = []
        expected = [set() for _ in self.dbs]
        cursor = self.dbs[0].cursor(txn=txn)
        try:
            found = cursor.first()
            while found is not None:
                prime, value = found
                record = layout.record_of(value)
                if layout.prime.extract(record) != prime:
                    problems.append("%s: record stored under prime key %s holds key %s" % (
                        self.path.name, _shown(prime), _shown(layout.prime.extract(record))))
                for index, key in enumerate(layout.alternates, 1):
                    entry = key.extract(record)
                    if key.dups:
                        entry += layout.sequence(value, index)
                    expected[index].add(entry)
                    stored = self.dbs[index].get(entry, txn=txn)
                    if stored != prime:
                        problems.append("%s: record %s has no entry for alternate key %s %s%s"
                                        % (self._name(index), _shown(prime), key.name,
                                           _shown(entry),
                                           "" if stored is None else
                                           " (the entry points at %s)" % _shown(stored)))
                found = cursor.next()
        finally:
            cursor.close()
        for index, key in enumerate(layout.alternates, 1):
            cursor = self.dbs[index].cursor(txn=txn)
            try:
                found = cursor.first()
                while found is not None:
                    if found[0] not in expected[index]:
                        problems.append("%s: entry %s for alternate key %s points at %s, "
                                        "which has no such key value (orphan entry)"
                                        % (self._name(index), _shown(found[0]), key.name,
                                           _shown(found[1])))
                    found = cursor.next()
            finally:
                cursor.close()
        return problems


def create_file(env, name, layout, adopt=False):
    """Create an empty INDEXED file ``name`` in DataEnv ``env`` with its sidecar description
    (``adopt``: the file exists, e.g. written by COBOL; only write the description).
    Returns the file's path."""
    path = env.path_of(name)
    if layout is None or not layout.keys:
        raise IsamFileError("creating %s needs its keys: --key NAME (with --layout) or "
                            "--record-length/--key-offset/--key-length" % path)
    if layout.record_length is None:
        raise IsamFileError("creating %s needs the record length: --layout COPYBOOK or "
                            "--record-length N" % path)
    if layout.organization != "indexed":
        raise IsamFileError("esrt file create makes INDEXED files only")
    exists = env.exists(name)
    if adopt and not exists:
        raise IsamFileError("file %s does not exist, so there is nothing to adopt; drop "
                            "--adopt to create it" % path)
    if exists and not adopt:
        raise IsamFileError("file %s already exists; use --adopt to write only its "
                            "description, or choose another name" % path)
    handle = env.open_file(name, layout, create=True)
    handle.close()
    env.save_description(name, layout)
    return path


# --- input and output formats ---------------------------------------------------------------

FORMATS = ("jsonl", "fixed")


def read_input(path, layout, fmt="jsonl"):
    """Yield (where, record bytes) from a JSON lines file (objects keyed by the copybook's
    field names, exact decimals) or a file of fixed-length records."""
    from esrt.mapping import jsonio
    from esrt.mapping.codec import FieldValueError
    if fmt not in FORMATS:
        raise IsamFileError("format %r is not known; use jsonl or fixed" % fmt)
    try:
        stream = open(path, "rb")
    except OSError as exc:
        raise IsamFileError("cannot read %s: %s" % (path, exc.strerror)) from None
    with stream:
        if fmt == "fixed":
            size = layout.record_length if layout is not None else None
            if not size:
                raise IsamFileError("--format fixed needs the record length: --layout or "
                                    "--record-length, or the file's description")
            number = 0
            while True:
                chunk = stream.read(size)
                if not chunk:
                    return
                number += 1
                if len(chunk) != size:
                    raise IsamFileError("%s: record %d is %d bytes, expected %d (the input "
                                        "ends in the middle of a record)"
                                        % (path, number, len(chunk), size))
                yield "record %d" % number, chunk
        if layout is None:
            raise IsamFileError("--format jsonl needs the record layout: pass --layout "
                                "COPYBOOK or use --format fixed")
        codec = layout.codec
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            where = "line %d" % number
            try:
                value = jsonio.loads(line)
                if not isinstance(value, dict):
                    raise ValueError("expected a JSON object of field values")
                yield where, codec.encode(value)
            except FieldValueError as exc:
                raise IsamFileError("%s: %s: %s; nothing of this batch was loaded"
                                    % (path, where, exc)) from None
            except ValueError as exc:
                raise IsamFileError("%s: %s: %s; nothing of this batch was loaded"
                                    % (path, where, exc)) from None


def record_json(layout, record):
    """One record as a JSON text line (the copybook's field names, exact decimals)."""
    from esrt.mapping import jsonio
    text = jsonio.dumps(layout.codec.decode(record))
    return text.decode("utf-8") if isinstance(text, bytes) else text


def write_output(handle, records, layout, fmt="jsonl"):
    """Write (key, record) pairs to binary stream ``handle``; return how many."""
    if fmt not in FORMATS:
        raise IsamFileError("format %r is not known; use jsonl or fixed" % fmt)
    if fmt == "jsonl" and (layout is None or layout.item is None):
        raise IsamFileError("--format jsonl needs the record layout: pass --layout COPYBOOK "
                            "or use --format fixed")
    count = 0
    for key, record in records:
        if fmt == "fixed":
            size = layout.record_length if layout is not None else None
            if size is not None and len(record) != size:
                raise IsamFileError("record %s is %d bytes, not the record length %d; "
                                    "unload it as jsonl" % (_shown(key), len(record), size))
            handle.write(record)
        else:
            handle.write(record_json(layout, record).encode("utf-8") + b"\n")
        count += 1
    return count


def hex_dump(key, record, width=16):
    """Lines showing a record's key and bytes as hex and text (for files without layout)."""
    lines = ["key %s (%d bytes), record %d bytes" % (_shown(key), len(key), len(record))]
    for at in range(0, len(record), width):
        chunk = record[at:at + width]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append("  %04x  %-*s |%s|" % (at, width * 3 - 1, chunk.hex(" "), text))
    return lines


__all__ = ["IsamFileError", "LayoutError", "DataEnv", "IsamFile", "create_file",
           "checkpoint_environment", "recover_environment", "env_lock_holders",
           "ENV_LOCK_NAME", "read_input", "write_output", "record_json", "hex_dump"]
