"""One SEP slot: a service execution process, its pipes, its frames and its life cycle.

A SEP is a child process that reads request frames on fd 3 and writes reply frames on fd 4
(esrt.sep.protocol); its stdout and stderr (COBOL DISPLAY, libcob errors) go to the console log.
A SEP runs one request at a time, and may be sent several at once (a batch, see call_batch).
The slot (SEP 0001, 0002, ...) outlives the processes that fill it: when one dies, the slot
settles the calls it was running and starts the next after a delay that doubles each time it
fails quickly (unless a call it was running killed it); a stop is TERM followed by a
scheduled KILL.

The slot knows nothing of the other slots. Everything region-wide (the reactor, the restart
tunables, how to spawn a process, the reply store, recovery of the data environment, and
whom to tell when the slot goes idle or fatal) it reaches through the :class:`Supervisor
<esrt.region.supervisor.Supervisor>` that created it; this module never imports that one.
A call is answered (its record's answered(), see send_batch) with what esrt.region.replies
defines: a Reply (error_reply's JSON error among them), or a Rerun, which tells the
dispatcher to run the call again.

Life cycle of one SEP (esrt.states.SEPState); every edge is written out in the code:

    STOPPED -> STARTING -> IDLE <-> BUSY
    STARTING/IDLE/BUSY -> STOPPING -> STOPPED          (stop requested)
    STARTING/IDLE/BUSY/STOPPING -> BACKOFF -> STARTING  (died, or killed by us for a timeout)
    STARTING -> FATAL                                   (boot failed, or never got ready N times)
"""

import collections
import json
import signal

from twisted.internet import defer, error, protocol

from esrt.cobol.exits import abend_cause
from esrt.region.replies import Reply, error_reply
from esrt.region.sendnow import write_child_now
from esrt.sep import protocol as frames
from esrt.states import ExitCode, SEPState

# Longest stdout/stderr line kept whole; a child writing without newlines must not grow memory.
MAX_LINE = 8192
RUNNING = (SEPState.STARTING, SEPState.IDLE, SEPState.BUSY)
IDLE_OR_BUSY = (SEPState.IDLE, SEPState.BUSY)
MAX_REQUEST_ID = frames.MAX_REQUEST_ID


STDERR_TAIL_LINES = 20
# Exit statuses of a SEP killed by someone else (an operator, the OOM killer, a kill test);
# a program that crashes by itself exits through libcob's handler with a plain status.
KILLED_FROM_OUTSIDE = (-signal.SIGKILL, -signal.SIGTERM)


def exit_returncode(reason):
    """A processEnded reason as a subprocess-style return code (negative: killed by signal)."""
    value = reason.value
    sig = getattr(value, "signal", None)
    if sig:
        return -sig
    return getattr(value, "exitCode", None)


class SEPProtocol(protocol.ProcessProtocol):
    """Byte plumbing of one SEP child: frames on fd 4, output lines on fd 1 and 2."""

    def __init__(self, sep):
        self.sep = sep
        self.decoder = frames.FrameDecoder()
        self._partial = {1: b"", 2: b""}
        self._broken = False

    def childDataReceived(self, fd, data):
        if fd == frames.REPLY_FD:
            if self._broken:
                return
            try:
                payloads = self.decoder.feed_payloads(data)
                for payload in payloads:
                    fields = frames.reply_fields(payload)
                    if fields is None or not self.sep.reply_received(*fields):
                        self.sep.frame_received(*frames.decode_header(payload))
            except frames.ProtocolError as exc:
                self._broken = True
                self.sep.protocol_error(str(exc))
        elif fd in self._partial:
            buffered = self._partial[fd] + data
            *lines, rest = buffered.split(b"\n")
            while len(rest) > MAX_LINE:
                lines.append(rest[:MAX_LINE])
                rest = rest[MAX_LINE:]
            self._partial[fd] = rest
            for line in lines:
                self.sep.output_line(fd, line.rstrip(b"\r").decode("utf-8", "replace"))

    def childConnectionLost(self, childFD):
        if childFD == frames.REQUEST_FD:
            # The SEP is on its way out (it closed its end, or died): no call may be sent to
            # it any more, though its end is only reported once all its pipes are closed.
            self.sep.request_pipe_open = False

    def processEnded(self, reason):
        for fd, rest in self._partial.items():
            if rest:
                self.sep.output_line(fd, rest.decode("utf-8", "replace"))
        self._partial = {1: b"", 2: b""}
        self.sep.process_ended(reason)


class _Call:
    """A call of call_batch: the call record send_batch takes, answered through a Deferred."""

    __slots__ = ("service", "body", "key", "idempotent", "ttl", "deferred")

    def __init__(self, service, body, request):
        request = request or {}
        self.service = service
        self.body = body
        self.key = request.get("key")
        self.idempotent = bool(request.get("idempotent"))
        self.ttl = request.get("ttl") or 0
        self.deferred = defer.Deferred()

    def answered(self, reply):
        self.deferred.callback(reply)


class SEP:
    """One SEP slot (SEP 0001, 0002, ...): survives the processes that fill it."""

    def __init__(self, supervisor, number):
        self.supervisor = supervisor
        self.number = number
        self.state = SEPState.STOPPED
        self.pid = None
        self.transport = None
        self.restarts = 0
        self.requests = 0
        self.boot_failures = 0
        self.delay = supervisor.min_restart_delay
        self.started_at = None
        self.cause = None
        # The calls sent and not answered yet (their records, see send_batch), by request id,
        # oldest first (one batch).
        self._calls = {}
        self._batch_size = 0
        # When the batch running now must have finished (reactor seconds), and the timer that
        # checks it. The timer is kept between batches, not armed and cancelled for each one:
        # that was a timer per batch on the region's busiest path.
        self._deadline = None
        self._watchdog = None
        self.request_pipe_open = False
        self._next_id = 1
        # Set by stop(): the region is stopping this SEP, so its end is no failure.
        self.stop_requested = False
        self._stop_waiters = []
        self._restart_call = None
        # What to do once the supervisor has recovered the environment (see start, _restart).
        self._after_recovery = None
        self._kill_call = None
        self._killed_by_us = False
        # What the SEP last wrote on stderr: libcob's last words name an abend's cause.
        self._stderr_tail = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._last_delay = 0.0

    @property
    def label(self):
        return f"SEP {self.number:04d}"

    def log(self, message_id, **fields):
        """Write console message `message_id` about this SEP."""
        self.supervisor.console.log(message_id, sep=self.number, **fields)

    def _enter(self, state, *sources):
        previous = self.state
        assert previous in sources, \
            f"{self.label}: {previous.value} -> {state.value} is not allowed"
        self.state = state
        # IDLE <-> BUSY happens on every request; the status picks it up on its periodic tick.
        if previous not in IDLE_OR_BUSY or state not in IDLE_OR_BUSY:
            self.supervisor.changed()

    # -- starting --------------------------------------------------------------------------

    def start(self):
        """Spawn the process (STOPPED -> STARTING, or FATAL -> STARTING when a standby region is
        activated again: the cause may have been on the other node's disk)."""
        self.stop_requested = False
        if self.state == SEPState.FATAL:
            self.boot_failures = 0
            self.delay = self.supervisor.min_restart_delay
        if self.supervisor.recovering:
            # The environment is not recovered yet (the region started after a crash, or on a
            # full disk): the slot waits as a restarting one does (STOPPED/FATAL -> BACKOFF),
            # and BACKOFF -> STARTING once the supervisor says it is recovered.
            self._enter(SEPState.BACKOFF, SEPState.STOPPED, SEPState.FATAL)
            self._after_recovery = lambda: self._spawn(SEPState.BACKOFF)
            return
        self._spawn(SEPState.STOPPED, SEPState.FATAL)

    def environment_recovered(self):
        """The supervisor recovered the environment: a slot that waited for it starts now."""
        resume, self._after_recovery = self._after_recovery, None
        if resume is not None and self.state == SEPState.BACKOFF and not self.stop_requested:
            resume()

    def _spawn(self, *sources):
        self._enter(SEPState.STARTING, *sources)
        self._stderr_tail.clear()
        self._killed_by_us = False
        self.started_at = self.supervisor.reactor.seconds()
        proto = SEPProtocol(self)
        self.request_pipe_open = True
        try:
            self.transport = self.supervisor.spawn(proto, self.number)
        except Exception as exc:  # noqa: BLE001 - any spawn failure means this slot cannot run
            self.transport = None
            self._go_fatal(f"cannot spawn the SEP process: {exc}", failures=1)
            return
        self.pid = self.transport.pid
        self.log("ESSI1601I")
        self.supervisor.processes_changed()

    def _restart(self):
        self._restart_call = None
        if self.supervisor.recovering:
            # No SEP may open the environment before recovery: wait for it.
            self._after_recovery = self._restart
            return
        self.restarts += 1
        self.supervisor.observer.sep_restarted(self)
        self.log("ESSI1701I", restarts=self.restarts, delay=self._last_delay)
        # BACKOFF -> STARTING
        self._spawn(SEPState.BACKOFF)

    # -- frames and output -----------------------------------------------------------------

    def frame_received(self, header, body):
        """A frame arrived from the SEP on fd 4."""
        op = header.get("op")
        if self.state == SEPState.STARTING and op == "ready":
            self.pid = header.get("pid", self.pid)
            self.log("ESSI1600I", pid=self.pid)
            self.boot_failures = 0
            # STARTING -> IDLE
            self._enter(SEPState.IDLE, SEPState.STARTING)
            self.supervisor.sep_idle(self)
            return
        request_id = header.get("id")
        call = self._calls.get(request_id) if self.state == SEPState.BUSY else None
        if call is not None:
            if "attempts" in header:
                self.supervisor.observer.transaction(header["attempts"],
                                                     bool(header.get("committed")))
            self._answered(request_id, self.reply_from(header, body, call.service))
            return
        if self.state == SEPState.STOPPING:
            return  # a late reply from a SEP we are killing anyway
        self.protocol_error(f"unexpected frame {header!r} in state {self.state.value}")

    def reply_received(self, request_id, status, flags, rc, attempts, body):
        """A successful reply read by frames.reply_fields, the common case: True once it has
        answered its call; False when it is anything else, to be read by frame_received."""
        if status != 200 or self.state != SEPState.BUSY or request_id not in self._calls:
            return False
        if flags & frames.HAS_TRANSACTION:
            self.supervisor.observer.transaction(attempts, bool(flags & frames.COMMITTED))
        self._answered(request_id, Reply(200, body or b"{}", rc if flags & frames.HAS_RC else 0))
        return True

    def _answered(self, request_id, reply):
        last = len(self._calls) == 1
        if last:
            # BUSY -> IDLE, before the reply is delivered: what the reply sets off (a drain,
            # then a stop) must find this SEP idle.
            self._end_batch()
            self._enter(SEPState.IDLE, SEPState.BUSY)
        self._finish_call(request_id, reply)
        if last and self.state == SEPState.IDLE:
            self.supervisor.sep_idle(self)

    @staticmethod
    def reply_from(header, body, service):
        """The Reply a SEP's answer frame stands for (a bad status is a 500 that says so)."""
        status = header.get("status")
        if not isinstance(status, int) or not 100 <= status <= 599:
            return error_reply(500, "internal", f"{service}: the SEP replied with a bad status "
                                                f"{status!r}; see the console log")
        if status == 200:
            return Reply(200, body or b"{}", header.get("rc", 0))
        problem = header.get("error") or {"code": "error", "message": f"{service} failed"}
        if not body:
            body = json.dumps({"error": problem}).encode()
        return Reply(status, body)

    def output_line(self, fd, text):
        """A line the SEP wrote on stdout (fd 1) or stderr (fd 2)."""
        if fd == 2:
            if text.strip():
                self._stderr_tail.append(text)
            self.supervisor.console.write_line("ESSI1801W", f"{self.label} stderr: {text}")
        else:
            self.supervisor.console.write_line("ESSI1800I", f"{self.label}: {text}")

    def protocol_error(self, problem):
        """The SEP broke the frame protocol: it cannot be trusted, so kill and replace it."""
        self.log("ESSI1705W", problem=problem)
        self._kill_for_replacement()

    # -- requests --------------------------------------------------------------------------

    def call(self, service, body, request=None):
        """Send one request (IDLE -> BUSY); return a Deferred that fires with a Reply.

        `request` may carry "key" (the request's name in the reply store), "idempotent" and
        "ttl"; they travel in the frame header to the SEP.
        """
        return self.call_batch([(service, body, request)])[0]

    def call_batch(self, calls):
        """Send several requests in one write (IDLE -> BUSY); one Deferred per call, in order.

        `calls` is a list of (service, body, request) as for call(); see send_batch.
        """
        records = [_Call(service, body, request) for service, body, request in calls]
        self.send_batch(records)
        return [record.deferred for record in records]

    def send_batch(self, calls):
        """Send several requests in one write (IDLE -> BUSY). Each call is a record with
        `service`, `body` (JSON bytes), `key` (its name in the reply store, or None),
        `idempotent`, `ttl` (seconds its stored reply is kept, 0: the SEP's default) and
        `answered(reply)`, which is called once with its Reply (or Rerun), whatever becomes
        of the SEP. The dispatcher's queue entries are such records: nothing is made per call
        here beyond its frame.

        The SEP runs them one after the other and answers them together, after one log flush
        for all their commits. The batch gets request_timeout per call to finish.
        """
        # IDLE -> BUSY
        self._enter(SEPState.BUSY, SEPState.IDLE)
        data = []
        for call in calls:
            request_id = self._next_id
            # Ids are 32-bit in the frames (esrt.sep.protocol), and 0 is the SEP's READY.
            self._next_id = self._next_id % MAX_REQUEST_ID + 1
            self._calls[request_id] = call
            data.append(frames.call_frame(request_id, call.service, call.key or "",
                                          call.idempotent, call.ttl or 0, call.body))
        self.requests += len(calls)
        self._batch_size = len(calls)
        allowed = self.supervisor.request_timeout * len(calls)
        self._deadline = self.supervisor.reactor.seconds() + allowed
        if self._watchdog is None:
            self._watchdog = self.supervisor.reactor.callLater(allowed, self._check_deadline)
        elif self._watchdog.getTime() > self._deadline:
            # Armed for a longer batch than this one: this one's deadline comes first.
            self._watchdog.reset(allowed)
        self._write_request(b"".join(data))

    def cancel(self, call):
        """The sender of `call` (a record sent with send_batch) went away: ask the SEP to roll
        it back."""
        for request_id, sent in self._calls.items():
            if sent is call and self.transport is not None:
                self._write_request(frames.encode_frame({"id": request_id, "op": "cancel"}))
                return

    def _write_request(self, data):
        if not self.request_pipe_open:
            return  # the SEP is going: its end settles the calls it was sent
        # At once, not on the reactor's next turn: 1.5x the calls per second through the same
        # pipes (benchmarks/bench_dispatch.py).
        write_child_now(self.transport, frames.REQUEST_FD, data)

    def _finish_call(self, request_id, reply):
        self.settle(self._calls.pop(request_id), reply)

    def settle(self, call, reply):
        """Hand `call`'s reply to its sender; a bug there costs that call, not this SEP's pipe
        (an exception would reach the reactor reading it)."""
        try:
            call.answered(reply)
        except Exception as exc:  # noqa: BLE001 - see above
            self.supervisor.console.log("ESCS5007E", what=call.service,
                                        problem=f"{type(exc).__name__}: {exc}")

    def _end_batch(self, stop_watching=False):
        self._deadline = None
        if stop_watching and self._watchdog is not None:
            if self._watchdog.active():
                self._watchdog.cancel()
            self._watchdog = None

    def _check_deadline(self):
        self._watchdog = None
        if self._deadline is None:
            return  # idle: the next batch arms the timer again
        left = self._deadline - self.supervisor.reactor.seconds()
        if left > 0:  # a later batch than the one the timer was armed for
            self._watchdog = self.supervisor.reactor.callLater(left, self._check_deadline)
            return
        self._deadline = None
        self._timed_out()

    def _timed_out(self):
        calls = list(self._calls.items())
        if self._batch_size == 1 and calls:
            request_id, call = calls[0]
            self.log("ESSI1703W", service=call.service,
                      timeout=self.supervisor.request_timeout, pid=self.pid)
            self._finish_call(request_id, error_reply(
                503, "timeout",
                f"{call.service} ran longer than {self.supervisor.request_timeout} s on "
                f"{self.label}; its SEP was killed and is being replaced; retry, or raise "
                "request_timeout if the program legitimately needs longer"))
        else:
            # Which call of the batch hangs is not known: each unanswered one runs again alone.
            self.log("ESSI1708W", calls=len(calls), pid=self.pid,
                      timeout=self.supervisor.request_timeout)
        self._kill_for_replacement()

    def _kill_for_replacement(self):
        if self.state not in RUNNING:
            return
        # STARTING/IDLE/BUSY -> STOPPING (killed; process_ended moves on to BACKOFF)
        self._enter(SEPState.STOPPING, *RUNNING)
        self._killed_by_us = True
        self._signal("KILL")

    def _signal(self, name):
        try:
            self.transport.signalProcess(name)
        except (error.ProcessExitedAlready, OSError, AttributeError):
            pass

    # -- stopping --------------------------------------------------------------------------

    def stop(self):
        """Stop this SEP (TERM, KILL after kill_delay); the Deferred fires once it is gone."""
        self.stop_requested = True
        if self.state in (SEPState.STOPPED, SEPState.FATAL):
            return defer.succeed(None)
        if self.state == SEPState.BACKOFF:
            # BACKOFF -> STOPPED
            if self._restart_call is not None and self._restart_call.active():
                self._restart_call.cancel()
            self._restart_call = None
            self._after_recovery = None
            self._enter(SEPState.STOPPED, SEPState.BACKOFF)
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._stop_waiters.append(waiter)
        if self.state in RUNNING:
            # STARTING/IDLE/BUSY -> STOPPING
            self._enter(SEPState.STOPPING, *RUNNING)
            self._signal("TERM")
        if self._kill_call is None:
            self._kill_call = self.supervisor.reactor.callLater(
                self.supervisor.kill_delay, self._kill_after_term)
        return waiter

    def _kill_after_term(self):
        self._kill_call = None
        if self.state == SEPState.STOPPING:
            self.log("ESKC0004W", delay=self.supervisor.kill_delay)
            self._signal("KILL")

    # -- exit ------------------------------------------------------------------------------

    def process_ended(self, reason):
        """The child is gone (all its pipes closed and it was reaped)."""
        returncode = exit_returncode(reason)
        if returncode == ExitCode.ENVIRONMENT_LOST:
            cause = ("its log sync failed, so it gave up the data environment, which is "
                     "recovered from the disk; check the disk")
        elif returncode == -signal.SIGALRM and self._batch_size > 1:
            cause = (f"a call of its batch of {self._batch_size} ran longer than "
                     f"request_timeout ({self.supervisor.request_timeout} s); each unanswered "
                     "call runs again alone")
        else:
            cause = abend_cause(returncode, "\n".join(self._stderr_tail))
        self.cause = cause
        store = self.supervisor.store
        old_pid, self.pid, self.transport = self.pid, None, None
        # While a recovery is under way, recovery frees what this process held: a failchk
        # would only wait for the orphaned mutex that made the recovery necessary.
        if (store is not None and not self.supervisor.recovering
                and not store.after_death(old_pid)):
            self.supervisor.begin_recovery()
        if self._kill_call is not None and self._kill_call.active():
            self._kill_call.cancel()
        self._kill_call = None
        state = self.state

        self._end_batch(stop_watching=True)
        calls, self._calls = list(self._calls.values()), {}
        alone = self._batch_size == 1
        for call in calls:
            if self.supervisor.recovering:
                # Whether it committed can only be told once the environment is recovered.
                self.supervisor.orphans.append((self, call, returncode, cause, alone))
            else:
                self.settle(call, self.supervisor.outcome_of_death(
                    self, call, returncode, cause, killed_by_us=self._killed_by_us,
                    alone=alone))
        self.supervisor.recover_when_quiet()

        if self.stop_requested and state == SEPState.STOPPING:
            # STOPPING -> STOPPED
            self._enter(SEPState.STOPPED, SEPState.STOPPING)
            self.log("ESKC0003I")
            self.supervisor.processes_changed()
            waiters, self._stop_waiters = self._stop_waiters, []
            for waiter in waiters:
                waiter.callback(None)
            return

        self.supervisor.processes_changed()
        code = getattr(reason.value, "exitCode", None)
        if state == SEPState.STARTING and returncode not in KILLED_FROM_OUTSIDE:
            self.boot_failures += 1
            if (code == ExitCode.BOOT_FAILED
                    or self.boot_failures >= self.supervisor.max_boot_failures):
                self._go_fatal(cause, failures=self.boot_failures, source=SEPState.STARTING)
                return
        if state != SEPState.STOPPING:
            self.log("ESSI1700W", pid=old_pid, cause=cause)
        self._schedule_restart(state)

    def _schedule_restart(self, source):
        now = self.supervisor.reactor.seconds()
        # A SEP that died running a call was killed by that call (an abend, a timeout), not by
        # a broken start: it comes back at once, or a burst of bad calls would keep the region
        # from serving the good ones for up to max_restart_delay.
        if (source != SEPState.BUSY and self.started_at is not None
                and now - self.started_at < self.supervisor.threshold):
            delay = self.delay
            self.delay = min(self.delay * 2, self.supervisor.max_restart_delay)
        else:
            delay = 0
            self.delay = self.supervisor.min_restart_delay
        # STARTING/IDLE/BUSY/STOPPING -> BACKOFF
        self._enter(SEPState.BACKOFF, source)
        self._last_delay = delay
        self._restart_call = self.supervisor.reactor.callLater(delay, self._restart)

    def _go_fatal(self, cause, failures, source=SEPState.STARTING):
        # STARTING -> FATAL
        self._enter(SEPState.FATAL, source)
        self.cause = cause
        self.log("ESSI1702E", failures=failures, cause=cause)
        self.supervisor.sep_fatal(self)

    def kill_for_recovery(self):
        """SIGKILL a running SEP so that the environment can be recovered."""
        if self.state in RUNNING and self.pid is not None:
            self._kill_for_replacement()

    def kill_now(self):
        """Last-resort SIGKILL (region exiting abnormally); safe to call in any state."""
        if self.pid:
            self._signal("KILL")

    def snapshot(self):
        """The status entry of this SEP."""
        return {"id": self.number, "pid": self.pid, "state": self.state.value,
                "restarts": self.restarts, "requests": self.requests}

