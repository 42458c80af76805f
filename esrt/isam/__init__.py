"""esrt's indexed files: the Python side of ESFH, the EXTFH file handler in native/esfh.c.

`Esfh` loads libesfh.so (cffi, ABI mode) and exposes the transaction API a SEP drives around
each request: env_open once per process (store_open instead, for files in PostgreSQL), then
begin / commit or abort per request, doomed() after a deadlock, failchk() after a SEP died,
recover() before a region starts its SEPs.
The library is loaded with RTLD_GLOBAL so that COBOL modules compiled with -fcallfh=ESFH find
the ESFH symbol when they are loaded later.
"""

import errno
import os
import re
from pathlib import Path

from bsddb3 import db
from cffi import FFI

from esrt.cobol.esfh_build import esfh_header


def _cffi_section(header):
    """The declarations Python uses, written once in ESFH's header between BEGIN and END cffi."""
    text = Path(header).read_text()
    begin, end = text.find("BEGIN cffi"), text.find("/* END cffi */")
    if begin < 0 or end < begin:
        raise RuntimeError(f"{header} lacks its BEGIN cffi ... END cffi section; "
                           f"reinstall esrt or check out the complete tree")
    return text[text.index("*/", begin) + 2:end]


_SECTION = _cffi_section(esfh_header())
# ESFH's integer constants (region sizes shared with the file tools, see esrt.isam.files).
CONSTANTS = {name: int(value)
             for name, value in re.findall(r"^#define (ESFH_\w+) (\d+)", _SECTION, re.MULTILINE)}

DURABILITY = {"sync": 0, "write-nosync": 1}

# Berkeley DB's return codes that callers act on, from the same Berkeley DB (db.h via bsddb3).
DB_LOCK_DEADLOCK = db.DB_LOCK_DEADLOCK
DB_NOTFOUND = db.DB_NOTFOUND
DB_BUFFER_SMALL = db.DB_BUFFER_SMALL
DB_LOCK_NOTGRANTED = db.DB_LOCK_NOTGRANTED
DB_RUNRECOVERY = db.DB_RUNRECOVERY
# A commit whose outcome only the call's stored reply tells (native/esfh.h).
ESFH_IN_DOUBT = CONSTANTS["ESFH_IN_DOUBT"]
# The connection to a PostgreSQL store was lost before COMMIT: nothing committed.
ESFH_STORE_LOST = CONSTANTS["ESFH_STORE_LOST"]
# The PostgreSQL server ended the transaction for idling between two statements: nothing
# committed.
ESFH_IDLE_TIMEOUT = CONSTANTS["ESFH_IDLE_TIMEOUT"]
EBUSY = errno.EBUSY

ffi = FFI()
ffi.cdef(_SECTION)


class EsfhError(RuntimeError):
    """An ESFH call failed; the message says what failed and what to do."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Esfh:
    """libesfh.so in this process (one Berkeley DB environment handle per process)."""

    def __init__(self, library_path):
        path = Path(library_path)
        if not path.is_file():
            raise EsfhError(f"ESFH library {path} does not exist; build it with "
                            f"esrt.cobol.esfh_build.build_esfh(out_dir)")
        self.path = path.resolve()
        self.lib = ffi.dlopen(str(self.path), ffi.RTLD_NOW | ffi.RTLD_GLOBAL)

    def _check(self, code, what):
        if code != 0:
            detail = ffi.string(self.lib.esfh_last_error()).decode(errors="replace")
            raise EsfhError(f"ESFH {what} failed ({code}): {detail or 'no detail'}", code)
        return code

    def env_open(self, home, durability="sync", max_procs=16):
        """Open the data environment in directory `home` (must exist) for this process."""
        if durability not in DURABILITY:
            raise EsfhError(f"ESFH durability {durability!r} is not known; use one of "
                            f"{', '.join(DURABILITY)}")
        err = ffi.new("char[]", 1024)
        code = self.lib.esfh_env_open(os.fsencode(home), DURABILITY[durability], max_procs,
                                      err, 1024)
        if code != 0:
            raise EsfhError(ffi.string(err).decode(errors="replace"), code)

    def store_open(self, conninfo):
        """Keep this process's files in the PostgreSQL store `conninfo` (a libpq connection
        string) instead of a Berkeley DB environment, and connect to it now. The COBOL
        programs it runs inherit the choice (ESFH_STORE)."""
        err = ffi.new("char[]", 1024)
        code = self.lib.esfh_store_open(conninfo.encode(), err, 1024)
        if code != 0:
            raise EsfhError(ffi.string(err).decode(errors="replace"), code)

    def end_session(self, pid, timeout=5.0):
        """In a PostgreSQL store: end the session of process `pid` of this host (a SEP that
        died) and wait until it is gone, so that its last transaction is settled for good."""
        self._check(self.lib.esfh_pg_end_session(int(pid), max(1, round(timeout * 1000))),
                    "ending a dead process's session")

    def recover(self, home, fresh=False):
        """Run Berkeley DB recovery on `home`; only while no other process has it open. With
        `fresh`, the old region files are removed unread first (an earlier recovery died
        reading them)."""
        err = ffi.new("char[]", 1024)
        recover = self.lib.esfh_env_recover_fresh if fresh else self.lib.esfh_env_recover
        code = recover(os.fsencode(home), err, 1024)
        if code != 0:
            raise EsfhError(ffi.string(err).decode(errors="replace"), code)

    def begin(self):
        """Begin the request's transaction: every file operation joins it."""
        self._check(self.lib.esfh_begin(), "begin")

    def commit(self):
        """Commit the request's transaction (raises EsfhError if it was doomed: re-run it)."""
        self._check(self.lib.esfh_commit(), "commit")

    def set_group_commit(self, on=True):
        """Group commit (a SEP serving batches): commit() writes the commit record without
        waiting for the disk, and log_flush() then makes all of them durable with one sync.
        Nobody may be told of a commit before the log_flush() after it."""
        self.lib.esfh_set_group_commit(1 if on else 0)

    def log_flush(self):
        """Wait until every commit of this process so far is on disk (see set_group_commit)."""
        self._check(self.lib.esfh_log_flush(), "flushing the log")

    def abort(self):
        """Roll back the request's transaction."""
        self._check(self.lib.esfh_abort(), "abort")

    def doomed(self):
        """True when an operation of this transaction was a deadlock victim: abort, re-run."""
        return bool(self.lib.esfh_doomed())

    def failchk(self, timeout=None):
        """Release locks and transactions of dead processes (call after a SEP died).

        With `timeout` (seconds), it runs in a child process that is given up after that long,
        raising EsfhError with DB_RUNRECOVERY: a process that died holding one of Berkeley DB's
        internal mutexes would otherwise keep failchk, and its caller, waiting forever."""
        milliseconds = max(1, round(timeout * 1000)) if timeout else 0
        self._check(self.lib.esfh_failchk(milliseconds), "failchk")

    def env_close(self):
        """Close the environment (aborting an open request transaction)."""
        self.lib.esfh_env_close()

    def request_writes(self):
        """How many write operations the current request transaction has done."""
        return self.lib.esfh_request_writes()

    def reply_put(self, key, data, expires):
        """Store reply bytes under `key` in the request transaction, until epoch `expires`."""
        self._check(self.lib.esfh_reply_put(key, len(key), data, len(data), int(expires)),
                    "storing a reply")

    def reply_get(self, key, now):
        """The reply bytes committed under `key`, or None. Locks the key inside a request."""
        size = 65536
        while True:
            buf = ffi.new("char[]", size)
            outlen = ffi.new("int *")
            code = self.lib.esfh_reply_get(key, len(key), buf, size, outlen, int(now))
            if code == 0:
                return ffi.buffer(buf, outlen[0])[:]
            if code == DB_NOTFOUND:
                return None
            if code == DB_BUFFER_SMALL:
                size = outlen[0]
                continue
            self._check(code, "reading a stored reply")

    def reply_purge(self, now, limit=10000):
        """Delete up to `limit` expired replies; return how many went."""
        return self.lib.esfh_reply_purge(int(now), limit)

    def checkpoint(self, remove_logs=True, kbytes=0):
        """Checkpoint the open environment (with `kbytes`, only once that much log was written
        since the last checkpoint); with `remove_logs`, remove the log files recovery no longer
        needs. Returns how many log files that were."""
        removed = ffi.new("int *")
        self._check(self.lib.esfh_env_checkpoint(kbytes, 1 if remove_logs else 0, removed),
                    "checkpoint")
        return removed[0]

    def env_abandon(self):
        """Panic a broken environment (every process then fails fast) and drop this handle."""
        self.lib.esfh_env_abandon()
