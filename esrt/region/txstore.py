"""The region's handle on its data environment.

At start the region recovers the Berkeley DB environment (only when no other process uses it)
before any SEP runs, in a child process (recover_in_child). When a SEP dies, the region frees
what the dead process held (failchk: its transaction is rolled back, its locks released) and
asks whether the request the SEP was running had committed: the SEP stores each updating
request's reply inside the request's own transaction, so a stored reply means "committed,
return this", and none means "rolled back, safe to run again".
"""

import os
import signal
import subprocess
import sys
import time

from esrt.isam import DB_LOCK_NOTGRANTED, DB_RUNRECOVERY, EBUSY, Esfh, EsfhError
from esrt.isam.recovery import BUSY
from esrt.sep.protocol import unpack_reply


def recover_in_child(data_dir, command=None):
    """Recover the environment in `data_dir` in a child process (esrt.isam.recovery), so that
    a recovery that dies (SIGBUS on a full disk) fails instead of killing the region; raises
    EsfhError (code EBUSY when another process uses the environment)."""
    command = list(command or [sys.executable, "-m", "esrt.isam.recovery"])
    result = subprocess.run(command + [str(data_dir)], capture_output=True, text=True,
                            errors="replace")
    if result.returncode < 0:
        # Died reading the old region files (a failing disk left them garbage): once more,
        # without them. Only the log and the data files matter to recovery.
        result = subprocess.run(command + ["--fresh", str(data_dir)], capture_output=True,
                                text=True, errors="replace")
    detail = result.stderr.strip()
    if result.returncode == 0:
        return
    if result.returncode == BUSY:
        raise EsfhError(detail, EBUSY)
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise EsfhError(f"ESFH: the recovery of {data_dir} died of {name} (is its disk full or "
                        f"failing?){'; ' + detail if detail else ''}")
    raise EsfhError(detail or f"ESFH: the recovery of {data_dir} failed (exit status "
                    f"{result.returncode})")


class ReplyStore:
    """Recovery, failchk and committed-reply lookups for one region."""

    # argv of the recovery process (tests put a stand-in here); None: esrt.isam.recovery.
    recovery_command = None

    def __init__(self, esfh, path, console, durability="sync", max_procs=16, clock=time.time):
        self.esfh = esfh
        self.path = path
        self.console = console
        self.durability = durability
        self.max_procs = max_procs
        self.clock = clock
        # Why the last full recovery failed (None: it did not).
        self.problem = None

    @classmethod
    def open(cls, data_dir, durability, max_procs, console):
        """Recover (when nobody else uses the environment) and open it.

        None when ESFH itself cannot be loaded. When recovery or opening fails (a full or
        failing data disk), the store comes back unopened with `problem` saying why: the
        supervisor then keeps trying to recover before any SEP may start (needs_recovery)."""
        from esrt.cobol.esfh_build import esfh_library
        try:
            esfh = Esfh(esfh_library())
        except Exception as exc:  # noqa: BLE001 - no gcc/libdb: the region still serves, without transactions
            console.log("ESDB0004E", path=data_dir, problem=str(exc))
            return None
        store = cls(esfh, data_dir, console, durability, max_procs)
        try:
            recover_in_child(data_dir, cls.recovery_command)
            console.log("ESDB0001I", path=data_dir)
        except EsfhError as exc:
            if exc.code != EBUSY:
                console.log("ESDB0004E", path=data_dir, problem=str(exc))
                store.problem = f"recovery failed: {exc}"
                return store
            console.log("ESDB0002W", path=data_dir, problem=str(exc))
        try:
            esfh.env_open(str(data_dir), durability, max_procs)
        except EsfhError as exc:
            console.log("ESDB0004E", path=data_dir, problem=str(exc))
            store.problem = f"opening it failed: {exc}"
            return store
        console.log("ESDB0003I", path=data_dir, durability=durability)
        return store

    @property
    def needs_recovery(self):
        """True while the last recovery (or the first opening) failed."""
        return self.problem is not None

    def after_death(self):
        """Roll back what a dead process left (its transaction, its locks).

        Returns False when that is impossible (the process died holding one of Berkeley DB's
        internal mutexes): the environment then needs a full recovery with every SEP stopped.
        """
        try:
            self.esfh.failchk()
        except EsfhError as exc:
            self.console.log("ESDB0005W", problem=str(exc))
            return exc.code != DB_RUNRECOVERY
        return True

    def recover(self):
        """Full recovery: only while no SEP has the environment open. True when it worked;
        else `problem` says why (a full data disk, an I/O error)."""
        self.esfh.env_abandon()
        try:
            recover_in_child(self.path, self.recovery_command)
        except EsfhError as exc:
            self.problem = f"recovery failed: {exc}"
            return False
        try:
            self.esfh.env_open(str(self.path), self.durability, self.max_procs)
        except EsfhError as exc:
            self.problem = f"recovered, but opening it failed: {exc}"
            return False
        self.problem = None
        self.console.log("ESDB0001I", path=self.path)
        return True

    # Lookups that find the reply locked (by another SEP that died too) before giving up.
    lookup_attempts = 100

    def committed(self, key):
        """(header, body) of the reply committed under `key`, or None."""
        if not key:
            return None
        for _ in range(self.lookup_attempts):
            try:
                stored = self.esfh.reply_get(key.encode(), self.clock())
                break
            except EsfhError as exc:
                if exc.code != DB_LOCK_NOTGRANTED:
                    self.console.log("ESDB0005W", problem=str(exc))
                    return None
                # Held by a process that died after the last cleanup: clean up again.
                self.after_death()
                time.sleep(0.01)
        else:
            self.console.log("ESDB0005W", problem=f"the reply of {key} stayed locked")
            return None
        if stored is None:
            return None
        self._sync_log()
        return unpack_reply(stored)

    def _sync_log(self):
        """Put the dead SEP's commit on disk before anyone is told of it.

        SEPs commit without waiting for the disk and sync the log once per batch (group
        commit), so a SEP killed in between leaves a commit that was written but perhaps not
        synced. Syncing the newest log files through descriptors of our own needs none of
        Berkeley DB's mutexes, which a killed process may have held. A sync that fails is
        logged, and the reply is still the answer: running the call again would apply it twice.
        """
        if self.durability != "sync":
            return
        try:
            logs = sorted(name for name in os.listdir(self.path) if name.startswith("log."))
            for name in logs[-2:]:
                descriptor = os.open(os.path.join(self.path, name), os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        except OSError as exc:
            self.console.log("ESDB0005W", problem=f"syncing the log of {self.path}: {exc}")

    def close(self):
        self.esfh.env_close()
