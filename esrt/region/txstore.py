"""The region's handle on its data environment.

At start the region recovers the Berkeley DB environment (only when no other process uses it)
before any SEP runs. When a SEP dies, the region frees what the dead process held (failchk:
its transaction is rolled back, its locks released) and asks whether the request the SEP was
running had committed: the SEP stores each updating request's reply inside the request's own
transaction, so a stored reply means "committed, return this", and none means "rolled back,
safe to run again".
"""

import os
import time

from esrt.isam import DB_LOCK_NOTGRANTED, DB_RUNRECOVERY, EBUSY, Esfh, EsfhError
from esrt.sep.protocol import unpack_reply


class ReplyStore:
    """Recovery, failchk and committed-reply lookups for one region."""

    def __init__(self, esfh, path, console, durability="sync", max_procs=16, clock=time.time):
        self.esfh = esfh
        self.path = path
        self.console = console
        self.durability = durability
        self.max_procs = max_procs
        self.clock = clock
        # Why the environment is not open: its last recovery or opening failed (None: it is).
        self.problem = None

    @classmethod
    def open(cls, data_dir, durability, max_procs, console):
        """Recover (when nobody else uses the environment) and open it.

        None when ESFH itself cannot be loaded (the region then serves without transactions).
        When the environment cannot be recovered or opened (a failing or full data disk), the
        store comes back unopened with `problem` saying why: the supervisor then starts no SEP,
        and keeps calling recover() with a back-off until it works.
        """
        from esrt.cobol.esfh_build import esfh_library
        try:
            esfh = Esfh(esfh_library())
        except Exception as exc:  # noqa: BLE001 - no gcc/libdb: the region still serves, without transactions
            console.log("ESDB0004E", path=data_dir, problem=str(exc))
            return None
        store = cls(esfh, data_dir, console, durability, max_procs)
        try:
            esfh.recover(str(data_dir))
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
            self.esfh.recover(str(self.path))
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
