"""esrt's indexed files: the Python side of ESFH, the EXTFH file handler in native/esfh.c.

`Esfh` loads libesfh.so (cffi, ABI mode) and exposes the transaction API a SEP drives around
each request: env_open once per process, then begin / commit or abort per request, doomed()
after a deadlock, failchk() after a SEP died, recover() before a region starts its SEPs.
The library is loaded with RTLD_GLOBAL so that COBOL modules compiled with -fcallfh=ESFH find
the ESFH symbol when they are loaded later.
"""

import os
from pathlib import Path

from cffi import FFI

_CDEF = """
int  esfh_env_open(const char *home, int durability, int max_procs, char *err, int errlen);
int  esfh_env_recover(const char *home, char *err, int errlen);
int  esfh_begin(void);
int  esfh_commit(void);
int  esfh_abort(void);
int  esfh_doomed(void);
int  esfh_failchk(void);
void esfh_env_close(void);
const char *esfh_last_error(void);
"""

DURABILITY = {"sync": 0, "write-nosync": 1}

# Berkeley DB's return code for a deadlock victim (db.h DB_LOCK_DEADLOCK).
DB_LOCK_DEADLOCK = -30993

ffi = FFI()
ffi.cdef(_CDEF)


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

    def recover(self, home):
        """Run Berkeley DB recovery on `home`; only while no other process has it open."""
        err = ffi.new("char[]", 1024)
        code = self.lib.esfh_env_recover(os.fsencode(home), err, 1024)
        if code != 0:
            raise EsfhError(ffi.string(err).decode(errors="replace"), code)

    def begin(self):
        """Begin the request's transaction: every file operation joins it."""
        self._check(self.lib.esfh_begin(), "begin")

    def commit(self):
        """Commit the request's transaction (raises EsfhError if it was doomed: re-run it)."""
        self._check(self.lib.esfh_commit(), "commit")

    def abort(self):
        """Roll back the request's transaction."""
        self._check(self.lib.esfh_abort(), "abort")

    def doomed(self):
        """True when an operation of this transaction was a deadlock victim: abort, re-run."""
        return bool(self.lib.esfh_doomed())

    def failchk(self):
        """Release locks and transactions of dead processes (call after a SEP died)."""
        self._check(self.lib.esfh_failchk(), "failchk")

    def env_close(self):
        """Close the environment (aborting an open request transaction)."""
        self.lib.esfh_env_close()
