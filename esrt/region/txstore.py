"""The region's handle on its data environment.

Before any SEP runs, the supervisor has the environment recovered (only when no other process
uses it) in a child process that the reactor watches (recover_in_child), so that a recovery
that dies or takes long on a failing disk neither kills the region nor stops it answering.
When a SEP dies, the region frees what the dead process held (failchk: its transaction is
rolled back, its locks released; in a child process given a time limit, see after_death) and
asks whether the request the SEP was running had committed: the SEP stores each updating
request's reply inside the request's own transaction, so a stored reply means "committed,
return this", and none means "rolled back, safe to run again".

A server whose files are in PostgreSQL (its store setting) has a PostgresReplyStore instead:
nothing to recover (the database server does that), a dead SEP's transaction and row locks go
with its session, which the region ends before it looks the reply up.
"""

import os
import signal
import sys
import time

from twisted.internet import defer, protocol

from esrt.isam import DB_LOCK_NOTGRANTED, DB_RUNRECOVERY, EBUSY, Esfh, EsfhError
from esrt.isam.recovery import BUSY
from esrt.region.sepslot import exit_returncode
from esrt.sep.protocol import unpack_reply


class OutcomeUnknown(Exception):
    """Whether a call committed cannot be told (its reply could not be looked up)."""


class _Exit(protocol.ProcessProtocol):
    """Keeps a child's stderr; fires (exit status, or minus the signal that ended it, stderr)."""

    def __init__(self):
        self.ended = defer.Deferred()
        self.errors = []

    def childDataReceived(self, fd, data):
        if fd == 2:
            self.errors.append(data)

    def processEnded(self, reason):
        self.ended.callback((exit_returncode(reason),
                             b"".join(self.errors).decode(errors="replace").strip()))


def _run(reactor, argv, started):
    child = _Exit()
    started(reactor.spawnProcess(child, argv[0], argv, env=dict(os.environ),
                                 childFDs={0: "w", 1: "r", 2: "r"}))
    return child.ended


async def recover_in_child(reactor, data_dir, command=None, started=lambda process: None):
    """Recover the environment in `data_dir` in a child process (esrt.isam.recovery); raises
    EsfhError (code EBUSY when another process uses the environment). `started(process)` is
    told of each child process (its transport) as it starts."""
    command = list(command or [sys.executable, "-m", "esrt.isam.recovery"])
    returncode, detail = await _run(reactor, command + [str(data_dir)], started)
    if returncode < 0:
        # Died reading the old region files (a failing disk left them garbage): once more,
        # without them. Only the log and the data files matter to recovery.
        returncode, detail = await _run(reactor, command + ["--fresh", str(data_dir)], started)
    if returncode == 0:
        return
    if returncode == BUSY:
        raise EsfhError(detail, EBUSY)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        raise EsfhError(f"ESFH: the recovery of {data_dir} died of {name}: its data disk is "
                        f"full or failing{'; ' + detail if detail else ''}")
    raise EsfhError(detail or f"ESFH: the recovery of {data_dir} failed (exit status "
                    f"{returncode})")


class ReplyStore:
    """Recovery, failchk and committed-reply lookups for one region."""

    # argv of the recovery process (tests put a stand-in here); None: esrt.isam.recovery.
    recovery_command = None
    # How long failchk may take before the environment is taken as needing recovery. It
    # takes milliseconds; only a process that died holding one of Berkeley DB's own mutexes
    # makes it wait, and then for ever. The region's reactor waits meanwhile.
    failchk_timeout = 5.0

    def __init__(self, esfh, path, console, durability="sync", max_procs=16, clock=time.time):
        self.esfh = esfh
        self.path = path
        self.console = console
        self.durability = durability
        self.max_procs = max_procs
        self.clock = clock
        # Why the environment cannot be used now (None once recovered and open).
        self.problem = "not recovered yet"
        # The recovery child running now (its process transport), or None.
        self._recovery_process = None

    @classmethod
    def load(cls, data_dir, durability, max_procs, console, store=None):
        """The store of `data_dir`, or the PostgreSQL store `store` (a libpq connection
        string), not open yet: the supervisor recovers and opens it (recover) before any SEP
        starts. None when ESFH itself cannot be loaded."""
        from esrt.cobol.esfh_build import esfh_library
        try:
            esfh = Esfh(esfh_library())
        except Exception as exc:  # noqa: BLE001 - no gcc/libdb: the region cannot serve safely
            console.log("ESDB0004E", path=store or data_dir, problem=str(exc))
            return None
        if store:
            return PostgresReplyStore(esfh, store, console)
        return cls(esfh, data_dir, console, durability, max_procs)

    @property
    def needs_recovery(self):
        """True until a recovery has worked (at start, and after one failed)."""
        return self.problem is not None

    def recover(self, reactor, started=lambda pid: None):
        """Full recovery, then open the environment: only while no SEP has it open.

        The Deferred fires True when that worked; else False, with `problem` saying why (a
        full data disk, an I/O error). `started(pid)` is told of each recovery process (see
        recovery_pid)."""
        def child_started(process):
            self._recovery_process = process
            started(process.pid)

        self.esfh.env_abandon()
        self.problem = "being recovered"
        recovering = defer.ensureDeferred(recover_in_child(reactor, self.path,
                                                           self.recovery_command, child_started))
        recovering.addBoth(self._recovery_process_gone)
        return recovering.addCallbacks(self._recovered, self._not_recovered)

    def _recovery_process_gone(self, result):
        self._recovery_process = None
        return result

    @property
    def recovery_pid(self):
        """The pid of the recovery process running now (for run/processes.json), or None."""
        process = self._recovery_process
        return process.pid if process is not None else None

    def kill_recovery(self):
        """SIGKILL the recovery process, if one runs (the region is exiting abnormally)."""
        if self._recovery_process is not None and self._recovery_process.pid:
            self._recovery_process.signalProcess("KILL")

    def _not_recovered(self, failure):
        failure.trap(EsfhError)
        if failure.value.code != EBUSY:
            self.problem = f"recovery failed: {failure.value}"
            return False
        # Another process (an `esrt file` command) has it open: then it needs no recovery.
        self.console.log("ESDB0002W", path=self.path, problem=str(failure.value))
        return self._open("not recovered, and opening it failed")

    def _recovered(self, _):
        self.console.log("ESDB0001I", path=self.path)
        return self._open("recovered, but opening it failed")

    def _open(self, failed):
        try:
            self.esfh.env_open(str(self.path), self.durability, self.max_procs)
        except EsfhError as exc:
            self.problem = f"{failed}: {exc}"
            return False
        self.problem = None
        self.console.log("ESDB0003I", path=self.path, durability=self.durability)
        return True

    def after_death(self, pid=None):
        """Roll back what a dead process left (its transaction, its locks).

        Returns False when that is impossible (the process died holding one of Berkeley DB's
        internal mutexes): the environment then needs a full recovery with every SEP stopped.
        failchk itself may be what finds that mutex, and would wait for it for ever: it runs
        in a child process, given failchk_timeout seconds before the same conclusion.
        """
        try:
            self.esfh.failchk(self.failchk_timeout)
        except EsfhError as exc:
            self.console.log("ESDB0005W", problem=str(exc))
            return exc.code != DB_RUNRECOVERY
        return True

    # Lookups that find the reply locked (by another SEP that died too) before giving up.
    lookup_attempts = 100

    def committed(self, key):
        """(header, body) of the reply committed under `key`, or None when none was.

        Raises OutcomeUnknown when the lookup itself fails (an I/O error, a lock that stays
        held): "not committed" would have the call run again, perhaps a second time."""
        if not key:
            return None
        for _ in range(self.lookup_attempts):
            try:
                stored = self.esfh.reply_get(key.encode(), self.clock())
                break
            except EsfhError as exc:
                if exc.code != DB_LOCK_NOTGRANTED:
                    self.console.log("ESDB0005W", problem=str(exc))
                    raise OutcomeUnknown(f"looking up its reply failed: {exc}") from exc
                # Held by a process that died after the last cleanup: clean up again.
                self.after_death()
                time.sleep(0.01)
        else:
            self.console.log("ESDB0005W", problem=f"the reply of {key} stayed locked")
            raise OutcomeUnknown("its stored reply stayed locked")
        if stored is None:
            return None
        try:
            reply = unpack_reply(stored)
        except ValueError as exc:
            self.console.log("ESDB0005W", problem=f"the reply of {key}: {exc}")
            raise OutcomeUnknown(f"its stored reply is damaged: {exc}") from exc
        self._sync_log()
        return reply

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


class PostgresReplyStore(ReplyStore):
    """The region's handle on a PostgreSQL store (the server's store setting): the committed
    replies are in the database, beside the files; the database server recovers itself."""

    # How long a dead SEP's session may take to go before the region gives up on it.
    session_timeout = 5.0

    def __init__(self, esfh, conninfo, console, clock=time.time):
        super().__init__(esfh, f"PostgreSQL store {conninfo}", console, clock=clock)
        self.conninfo = conninfo

    def recover(self, reactor, started=lambda pid: None):
        """Connect (at start, and again after a failure): the Deferred fires True once the
        database answers, False with `problem` saying why it does not."""
        self.problem = "connecting"
        try:
            self.esfh.store_open(self.conninfo)
        except EsfhError as exc:
            self.problem = f"the PostgreSQL store cannot be reached: {exc}"
            return defer.succeed(False)
        self.problem = None
        self.console.log("ESDB0003I", path=self.path, durability="synchronous")
        return defer.succeed(True)

    @property
    def recovery_pid(self):
        return None

    def kill_recovery(self):
        pass

    def after_death(self, pid=None):
        """End the dead SEP's session: its transaction is then settled for good (committed or
        rolled back) and its row locks released. False when the session does not go (the
        database does not answer): the supervisor then stops the SEPs and connects again."""
        if pid is None:
            return True
        try:
            self.esfh.end_session(pid, self.session_timeout)
        except EsfhError as exc:
            self.console.log("ESDB0005W", problem=str(exc))
            return False
        return True

    def _sync_log(self):
        pass  # a commit is durable in the database when it returns

    def close(self):
        self.esfh.env_close()
