"""SEP supervisor: the region's pool of SEP slots, and recovery of the data environment.

The supervisor owns the N slots of one region (esrt.region.sepslot.SEP, one per SEP process),
spawns their processes, hands idle ones to the dispatcher, stops them all, and tells the
region when none is left that could serve. It follows Twisted's ProcessMonitor: the reactor
is a constructor argument, the restart and stop tunables are class attributes (the slots
read them from here), and tests drive it with a fake reactor and clock.

When a SEP dies holding a Berkeley DB mutex (the reply store's failchk says so, or does not
finish within its time limit: Berkeley DB would wait for such a mutex for ever), every SEP is
stopped, the environment is recovered once the last one is gone, and the calls they were
running are settled afterwards: only then can the store tell whether each one committed.
Whether a call whose SEP died gets its committed reply, runs again (a Rerun) or gets an
error is decided here too (outcome_of_death), for the slots and for recovery alike.
"""

import sys

from twisted.internet import defer

from esrt.region.observer import SupervisorObserver
from esrt.region.replies import Rerun, error_reply
from esrt.region.sepslot import KILLED_FROM_OUTSIDE, RUNNING, SEP
from esrt.region.txstore import OutcomeUnknown
from esrt.sep import protocol as frames
from esrt.states import ExitCode, SEPState

# A SEP in these states serves nothing and will not come back by itself.
GONE = (SEPState.FATAL, SEPState.STOPPED)


class Supervisor:
    """Runs the N SEPs of one region and hands idle ones to the dispatcher."""

    # A SEP that dies within `threshold` seconds of its start failed "quickly": its restart
    # delay doubles from min_restart_delay up to max_restart_delay; otherwise it restarts at once.
    threshold = 1.0
    min_restart_delay = 1.0
    max_restart_delay = 60.0
    # Seconds between SIGTERM and SIGKILL when stopping.
    kill_delay = 5.0
    # Exits before "ready" in a row after which a SEP is given up (FATAL).
    max_boot_failures = 5
    # A full recovery that fails (a full or failing data disk) is tried again after this many
    # seconds, doubling up to the maximum, until it works; calls are refused meanwhile.
    min_recovery_delay = 1.0
    max_recovery_delay = 10.0
    # Calls queue while a recovery runs (it takes well under a second on a healthy disk);
    # once one has run this long, they are refused until it ends rather than left waiting.
    recovery_patience = 5.0

    def __init__(self, reactor, definition, paths, console, environ, sep_command=None,
                 store=None, observer=None):
        """`sep_command` is the argv prefix of a SEP (default: this python -m esrt.sep);
        `store` is the region's ReplyStore (None: no data environment); `observer` (a
        SupervisorObserver) gets every report of the supervisor and its slots."""
        self.reactor = reactor
        self.observer = observer if observer is not None else SupervisorObserver()
        self.store = store
        self.server = definition["name"]
        self.request_timeout = definition["request_timeout"]
        # SEP 1 checkpoints the data environment (esrt.sep.worker.serve).
        self.checkpoint_interval = definition.get("checkpoint_interval", 30)
        self.sep_scheduling = definition.get("sep_scheduling", "batch")
        self.keep_logs = bool(definition.get("keep_logs"))
        self.paths = paths
        self.console = console
        self.environ = environ
        self.sep_command = list(sep_command or [sys.executable, "-m", "esrt.sep"])
        self.seps = [SEP(self, number) for number in range(1, definition["seps"] + 1)]
        # Full recovery of the data environment (a SEP died holding a Berkeley DB mutex):
        # every SEP is stopped, calls they were running wait in `orphans`.
        self.recovering = False
        self.orphans = []
        # While full recovery keeps failing: why (a text for callers and the status), and the
        # delay before the next try.
        self.unrecoverable = None
        self._recovery_delay = self.min_recovery_delay
        self._recovery_retry = None
        # The recovery under way (a Deferred).
        self._recovery = None
        self._recovery_slow = None
        # While a recovery runs longer than recovery_patience: why calls are refused.
        self.slow_recovery = None
        self.stopping = False

    @property
    def refusal(self):
        """Why every call is refused now (recovery failed or runs long), or None."""
        return self.unrecoverable or self.slow_recovery

    def spawn(self, proto, number):
        """Start the child process of SEP `number` and return its process transport."""
        argv = self.sep_command + ["--server", self.server, "--sep", str(number),
                                   "--deploy", str(self.paths.deploy),
                                   "--max-procs", str(len(self.seps) + 8),
                                   "--request-timeout", str(self.request_timeout),
                                   "--scheduling", self.sep_scheduling]
        if number == 1:
            # One SEP checkpoints: more would only compete for the same work.
            argv += ["--checkpoint-interval", str(self.checkpoint_interval)]
            if self.keep_logs:
                argv.append("--keep-logs")
        return self.reactor.spawnProcess(
            proto, argv[0], argv, env=self.environ, path=str(self.paths.data),
            childFDs={0: "w", 1: "r", 2: "r", frames.REQUEST_FD: "w", frames.REPLY_FD: "r"})

    def start(self):
        """Start every SEP, once the data environment is recovered."""
        self.stopping = False
        # Also after a stop that left recovery failed (a standby that gave its disk back and
        # now takes it again, with a store of its own): a fresh start gets a fresh try.
        must_recover = self.store is not None and self.store.needs_recovery \
            and self._recovery is None
        if must_recover:
            self.cancel_recovery()
            self.unrecoverable = None
            self._recovery_delay = self.min_recovery_delay
            # No SEP may open the environment before it is recovered (after a crash, on a
            # full data disk): the slots wait for it (in BACKOFF: they will run, so the region
            # is not failed), and calls queue meanwhile.
            self.recovering = True
        for sep in self.seps:
            sep.start()
        if must_recover:
            self.recover_when_quiet()

    def stop(self):
        """Stop every SEP; the Deferred fires when all are gone (and a recovery under way has
        ended, so that the caller may close the environment).

        Calls still waiting for a SEP then get their answer at once (observer.unavailable): none
        would run before a start, perhaps much later, when their callers have long moved on.
        """
        self.stopping = True
        self.cancel_recovery()
        stopped = defer.DeferredList([sep.stop() for sep in self.seps], consumeErrors=True)
        stopped.addCallback(lambda _: self._recovery_finished())
        stopped.addCallback(lambda _: self.observer.unavailable())
        return stopped

    def kill_all(self):
        """SIGKILL every SEP that still has a process, and a recovery under way (for abnormal
        exits of the region)."""
        for sep in self.seps:
            sep.kill_now()
        if self.store is not None:
            self.store.kill_recovery()

    def recovery_pid(self):
        """The pid of the data environment's recovery process running now, or None."""
        return self.store.recovery_pid if self.store is not None else None

    def idle_sep(self):
        """Return an IDLE SEP or None."""
        if self.recovering:
            return None
        for sep in self.seps:
            if sep.state == SEPState.IDLE and sep.request_pipe_open:
                return sep
        return None

    # These two run for every call: plain loops, no generator.

    def running_seps(self):
        """How many SEPs are up or starting: the ones the queue is shared among."""
        running = 0
        for sep in self.seps:
            if sep.state in RUNNING:
                running += 1
        return running

    def can_serve(self):
        """True while some SEP is running or will come back (not FATAL, not stopped)."""
        for sep in self.seps:
            if sep.state not in GONE and not sep.stop_requested:
                return True
        return False

    def all_ready(self):
        return all(sep.state in (SEPState.IDLE, SEPState.BUSY) for sep in self.seps)

    def pids(self):
        """{"1": pid, ...} of the SEP processes alive now."""
        return {str(sep.number): sep.pid for sep in self.seps if sep.pid}

    def snapshot(self):
        return [sep.snapshot() for sep in self.seps]

    # -- events from SEPs ------------------------------------------------------------------

    def sep_idle(self, sep):
        self.observer.sep_idle(sep)

    def sep_fatal(self, sep):
        if not self.can_serve():
            self.console.log("ESSI1704E")
            self.observer.unavailable()

    def changed(self):
        self.observer.changed()

    def processes_changed(self):
        self.observer.processes_changed()

    # -- deaths and recovery ---------------------------------------------------------------

    def outcome_of_death(self, sep, call, returncode, cause, killed_by_us, alone=True):
        """The reply for a call whose SEP died under it (`alone`: not part of a batch)."""
        try:
            committed = self.store.committed(call.key) if self.store is not None else None
        except OutcomeUnknown as exc:
            return error_reply(503, "in_doubt", f"{call.service} was interrupted on {sep.label} "
                               f"and whether it committed is unknown ({exc}); retry it with the "
                               "same Idempotency-Key")
        if committed is not None:
            header, body = committed
            sep.log("ESSI1707I", service=call.service)
            return sep.reply_from(header, body, call.service)
        if sep.stop_requested:
            return error_reply(503, "unavailable", f"{call.service} was interrupted on "
                               f"{sep.label} because the server is stopping; retry on another "
                               "server")
        if returncode in KILLED_FROM_OUTSIDE and not killed_by_us:
            # Not the program's doing: the transaction was rolled back, so run it again.
            sep.log("ESSI1706W", service=call.service)
            return Rerun.RETRY
        if returncode == ExitCode.ENVIRONMENT_LOST:
            # The SEP gave up the environment after answering every call it could: one left
            # without a stored reply either never ran or changed nothing, so it runs again.
            return Rerun.RETRY
        if not alone:
            return Rerun.ALONE
        return error_reply(500, "abend", f"{call.service} abended on {sep.label}: {cause}")

    def begin_recovery(self):
        """Stop every SEP; recover_when_quiet() recovers once the last one is gone."""
        if self.recovering:
            return
        self.recovering = True
        self.console.log("ESDB0006W")
        for sep in self.seps:
            sep.kill_for_recovery()

    def recover_when_quiet(self):
        """Recover the environment once no SEP process is left, then settle orphaned calls.

        Recovery runs in a child process (ReplyStore.recover), so the region goes on answering
        meanwhile. When it fails (a full data disk cannot hold the recreated regions or the
        checkpoint), the SEPs stay down and every call is refused at once, while recovery is
        tried again with a back-off: the region serves again by itself once it works.
        """
        if not self.recovering or any(sep.pid for sep in self.seps) \
                or self._recovery_retry is not None or self._recovery is not None:
            return
        self._recovery_slow = self.reactor.callLater(self.recovery_patience,
                                                     self._recovery_is_slow)
        # Its process is recorded with the SEPs', so that casstop --force ends it too.
        self._recovery = defer.maybeDeferred(self.store.recover, self.reactor,
                                             lambda pid: self.observer.processes_changed())
        self._recovery.addErrback(self._recovery_crashed)
        self._recovery.addCallback(self._recovery_ended)

    def _recovery_is_slow(self):
        self._recovery_slow = None
        # Only calls are refused: the region is not failed (a long log may take this long).
        self.slow_recovery = (f"the data environment of {self.server} has been recovering for "
                              f"more than {self.recovery_patience:g} s (is its data disk slow "
                              "or failing?); retry shortly: service resumes by itself once "
                              "recovery ends")
        self.console.log("ESDB0008W", path=self.store.path, seconds=self.recovery_patience)
        self.observer.unavailable()
        self.changed()

    def _recovery_crashed(self, failure):
        # A bug of ours, not the disk: say so, and keep trying as for any failed recovery.
        self.store.problem = f"recovery failed: {failure.getErrorMessage()}"
        self.console.log("ESCS5007E", what="recovery", problem=failure.getTraceback())
        return False

    def _recovery_ended(self, recovered):
        self._recovery = None
        self.observer.processes_changed()
        if self._recovery_slow is not None:
            self._recovery_slow.cancel()
            self._recovery_slow = None
        self.slow_recovery = None
        recovered = bool(recovered)
        self.observer.recovery_ended(recovered)
        if recovered:
            self.recovering = False
            self.unrecoverable = None
            self._recovery_delay = self.min_recovery_delay
        else:
            delay = self._recovery_delay
            self._recovery_delay = min(delay * 2, self.max_recovery_delay)
            self.unrecoverable = (f"the data environment of {self.server} cannot be recovered "
                                  f"({self.store.problem}); free space on its data disk or "
                                  "check it: service resumes by itself once recovery works")
            self.console.log("ESDB0007E", path=self.store.path, problem=self.store.problem,
                             delay=delay)
            if not self.stopping:
                self._recovery_retry = self.reactor.callLater(delay, self._retry_recovery)
            self.observer.unavailable()
        self.changed()
        orphans, self.orphans = self.orphans, []
        for sep, call, returncode, cause, alone in orphans:
            if recovered:
                reply = self.outcome_of_death(sep, call, returncode, cause, killed_by_us=False,
                                              alone=alone)
            else:
                # Not "unavailable": that code promises the call was not applied, and here
                # nobody can look up whether it committed before its SEP died.
                reply = error_reply(503, "in_doubt", f"{call.service}: {self.unrecoverable}; "
                                    "whether this call committed is unknown: once the region "
                                    "serves again, retry it with the same Idempotency-Key")
            sep.settle(call, reply)
        if recovered:
            for sep in self.seps:
                sep.environment_recovered()

    def _recovery_finished(self):
        """A Deferred that fires once no recovery is under way (after _recovery_ended)."""
        if self._recovery is None:
            return defer.succeed(None)
        finished = defer.Deferred()
        self._recovery.addBoth(lambda result: (finished.callback(None), result)[1])
        return finished

    def _retry_recovery(self):
        self._recovery_retry = None
        self.recover_when_quiet()

    def cancel_recovery(self):
        """Stop trying to recover (the region is stopping)."""
        if self._recovery_retry is not None and self._recovery_retry.active():
            self._recovery_retry.cancel()
        self._recovery_retry = None
