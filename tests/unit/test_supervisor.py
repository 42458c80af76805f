"""SEP supervisor: state transitions with a fake reactor and clock, plus one real child."""

import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IProcessTransport
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer

from esrt.paths import RegionPaths
from esrt.region.console import ConsoleLog
from esrt.region.observer import Observers, SupervisorObserver
from esrt.region.replies import Rerun
from esrt.region.supervisor import Supervisor
from esrt.sep.protocol import FrameDecoder, encode_frame
from esrt.states import ExitCode, SEPState

REPO = Path(__file__).resolve().parents[2]

# A stand-in SEP speaking esrt.sep.protocol; the request body's "action" says what to do.
STANDIN_SEP_SOURCE = textwrap.dedent(f"""
    import json, os, signal, sys, time
    sys.path.insert(0, {str(REPO)!r})
    from esrt.sep.protocol import encode_frame, read_frame
    if os.environ.get("STANDIN_BOOT") == "fail":
        print("libcob: error: cannot load standin", file=sys.stderr, flush=True)
        sys.exit(3)
    requests, replies = os.fdopen(3, "rb"), os.fdopen(4, "wb")
    def reply(header, body=b""):
        replies.write(encode_frame(header, body)); replies.flush()
    reply({{"id": 0, "op": "ready", "pid": os.getpid()}})
    while True:
        frame = read_frame(requests)
        if frame is None:
            sys.exit(0)
        header, body = frame
        try:
            data = json.loads(body or b"{{}}")
        except ValueError as exc:
            message = "request body is not JSON: %s" % exc
            reply({{"id": header["id"], "status": 400,
                   "error": {{"code": "bad_json", "message": message}}}})
            continue
        action = data.get("action", "echo")
        if action == "abend":
            print("libcob: error: simulated abend in", header["service"], file=sys.stderr,
                  flush=True)
            os.kill(os.getpid(), getattr(signal, data.get("signal", "SIGKILL")))
        if action == "sleep":
            print("SLEEPING", header["service"], flush=True)
            time.sleep(data.get("seconds", 1))
        if action == "display":
            print(data.get("text", "hello"), flush=True)
        echoed = {{"echo": data, "service": header["service"], "pid": os.getpid()}}
        reply({{"id": header["id"], "status": 200, "rc": data.get("rc", 0)}},
              json.dumps(echoed).encode())
""")


@implementer(IProcessTransport)
class FakeProcess:
    """A process transport that records what the supervisor does to it."""

    def __init__(self, proto, argv, env, path, child_fds, pid):
        self.proto, self.argv, self.env = proto, argv, env
        self.path, self.child_fds = path, child_fds
        self.pid = pid
        self.written = bytearray()
        # Sizes of the writes, to tell one write of a batch from several.
        self.writes = []
        self.signals = []
        # No real pipe to write to at once: every frame goes through writeToChild.
        self.pipes = {}

    def writeToChild(self, fd, data):
        assert fd == 3
        self.written += data
        self.writes.append(len(data))

    def signalProcess(self, name):
        self.signals.append(name)

    def requests(self):
        return FrameDecoder().feed(bytes(self.written))

    def ready(self):
        self.frame({"id": 0, "op": "ready", "pid": self.pid})

    def frame(self, header, body=b""):
        self.proto.childDataReceived(4, encode_frame(header, body))

    def exit(self, code=0, sig=None):
        reason = ProcessDone(0) if code == 0 and sig is None else ProcessTerminated(code, sig)
        self.proto.processEnded(Failure(reason))


class FakeReactor(MemoryReactorClock):
    def __init__(self):
        super().__init__()
        self.processes = []

    def spawnProcess(self, proto, executable, args, env=None, path=None, uid=None, gid=None,
                     usePTY=False, childFDs=None):
        process = FakeProcess(proto, args, env, path, childFDs, 1000 + len(self.processes))
        proto.makeConnection(process)
        self.processes.append(process)
        return process


def definition(seps=2, timeout=30):
    return {"name": "ESSRV01", "seps": seps, "request_timeout": timeout}


@pytest.fixture
def made(tmp_path):
    def make(seps=2, timeout=30):
        reactor = FakeReactor()
        paths = RegionPaths({"name": "ESSRV01", "root": str(tmp_path)}).create()
        console = ConsoleLog(paths.console_log, paths.console_bak, "ESSRV01").open()
        sup = Supervisor(reactor, definition(seps, timeout), paths, console, {"X": "1"},
                         sep_command=["/usr/bin/python3", "-m", "esrt.sep"],
                         observer=Observers())
        return reactor, sup, paths

    return make


def watch_unavailable(sup, reactor):
    """The times at which `sup` reports that no call can run (SupervisorObserver)."""
    times = []
    watcher = SupervisorObserver()
    watcher.unavailable = lambda: times.append(reactor.seconds())
    sup.observer.add(watcher)
    return times


def console_text(paths):
    return paths.console_log.read_text()


def test_start_spawns_each_sep_with_its_pipes_and_becomes_idle_on_ready(made):
    reactor, sup, paths = made()
    sup.start()
    assert [p.argv for p in reactor.processes] == [
        ["/usr/bin/python3", "-m", "esrt.sep", "--server", "ESSRV01", "--sep", str(n),
         "--deploy", str(paths.deploy), "--max-procs", "10", "--request-timeout", "30",
         "--scheduling", "batch"]
        # SEP 1 alone checkpoints the data environment.
        + (["--checkpoint-interval", "30"] if n == 1 else [])
        for n in (1, 2)]
    first = reactor.processes[0]
    assert first.child_fds == {0: "w", 1: "r", 2: "r", 3: "w", 4: "r"}
    assert first.path == str(paths.data) and first.env == {"X": "1"}
    assert [s.state for s in sup.seps] == [SEPState.STARTING, SEPState.STARTING]
    assert not sup.all_ready()
    for process in reactor.processes:
        process.ready()
    assert [s.state for s in sup.seps] == [SEPState.IDLE, SEPState.IDLE]
    assert sup.all_ready()
    assert sup.pids() == {"1": 1000, "2": 1001}
    assert "ESSI1600I SEP 0001 initialization completed (pid 1000)" in console_text(paths)


def test_call_sends_a_frame_and_relays_the_reply(made):
    reactor, sup, _ = made(seps=1)
    sup.start()
    process = reactor.processes[0]
    process.ready()
    results = []
    sep = sup.idle_sep()
    sep.call("srv01.CBLAPP01", b'{"a": 1}').addCallback(results.append)
    assert sep.state == SEPState.BUSY and sup.idle_sep() is None
    [(header, body)] = process.requests()
    assert header["op"] == "call" and header["service"] == "srv01.CBLAPP01"
    assert body == b'{"a": 1}'
    process.frame({"id": header["id"], "status": 200, "rc": 7}, b'{"LK-X": "y"}')
    assert results[0].status == 200 and results[0].rc == 7 and results[0].body == b'{"LK-X": "y"}'
    assert sep.state == SEPState.IDLE and sep.requests == 1


def test_error_reply_without_body_gets_the_json_error_shape(made):
    reactor, sup, _ = made(seps=1)
    sup.start()
    reactor.processes[0].ready()
    results = []
    sup.idle_sep().call("srv01.CBLAPP01", b"nope").addCallback(results.append)
    error = {"code": "bad_json", "message": "request body is not valid JSON"}
    reactor.processes[0].frame({"id": 1, "status": 400, "error": error})
    assert results[0].status == 400
    assert json.loads(results[0].body) == {"error": error}


def test_abend_while_busy_answers_500_with_cause_and_replaces_the_sep(made):
    reactor, sup, paths = made(seps=2)
    sup.start()
    for process in reactor.processes:
        process.ready()
    reactor.advance(10)  # well past the quick-failure threshold
    results = []
    sep = sup.seps[1]
    sep.call("srv01.CBLAPP01", b"{}").addCallback(results.append)
    victim = reactor.processes[1]
    victim.proto.childDataReceived(2, b"libcob: error: subscript of 'X' out of bounds: 11\n")
    victim.exit(sig=signal.SIGSEGV)
    error = json.loads(results[0].body)["error"]
    assert results[0].status == 500 and error["code"] == "abend"
    assert error["message"] == ("srv01.CBLAPP01 abended on SEP 0002: runtime error: "
                                "subscript of 'X' out of bounds: 11 (killed by SIGSEGV)")
    assert sep.state == SEPState.BACKOFF and sup.seps[0].state == SEPState.IDLE
    reactor.advance(0)
    assert len(reactor.processes) == 3 and sep.state == SEPState.STARTING
    reactor.processes[2].ready()
    assert sep.state == SEPState.IDLE and sep.restarts == 1
    text = console_text(paths)
    assert "ESSI1700W SEP 0002 abended (pid 1001)" in text
    assert "ESSI1701I SEP 0002 restarted" in text
    assert "ESSI1801W SEP 0002 stderr: libcob: error: subscript" in text


def test_quick_failures_double_the_delay_and_end_in_fatal(made):
    reactor, sup, paths = made(seps=1)
    sup.max_boot_failures = 4
    sup.start()
    sep = sup.seps[0]
    delays = []
    for _ in range(3):
        reactor.processes[-1].exit(code=1)
        assert sep.state == SEPState.BACKOFF
        delays.append(sep._last_delay)
        reactor.advance(sep._last_delay)
        assert sep.state == SEPState.STARTING
    assert delays == [1.0, 2.0, 4.0]
    reactor.processes[-1].exit(code=1)
    assert sep.state == SEPState.FATAL
    spawned = len(reactor.processes)
    reactor.advance(1000)
    assert len(reactor.processes) == spawned
    assert not sup.can_serve()
    assert "ESSI1702E SEP 0001 failed to start 4 time(s) in a row" in console_text(paths)


def test_boot_failed_exit_code_is_fatal_at_once(made):
    reactor, sup, _ = made(seps=2)
    unavailable = watch_unavailable(sup, reactor)
    sup.start()
    reactor.processes[0].exit(code=int(ExitCode.BOOT_FAILED))
    assert sup.seps[0].state == SEPState.FATAL and sup.can_serve() and not unavailable
    reactor.processes[1].exit(code=int(ExitCode.BOOT_FAILED))
    assert not sup.can_serve() and unavailable == [reactor.seconds()]


def test_ready_resets_the_boot_failure_count(made):
    reactor, sup, _ = made(seps=1)
    sup.max_boot_failures = 2
    sup.start()
    reactor.processes[-1].exit(code=1)
    reactor.advance(1)
    reactor.processes[-1].ready()
    reactor.advance(10)
    reactor.processes[-1].exit(code=1)  # an abend after ready is not a boot failure
    reactor.advance(0)
    reactor.processes[-1].exit(code=1)
    assert sup.seps[0].state == SEPState.BACKOFF


def test_timeout_kills_the_sep_answers_503_and_replaces_it(made):
    reactor, sup, paths = made(seps=1, timeout=30)
    sup.start()
    reactor.processes[0].ready()
    reactor.advance(5)
    results = []
    sep = sup.idle_sep()
    sep.call("srv01.SLOW", b"{}").addCallback(results.append)
    reactor.advance(29)
    assert not results
    reactor.advance(1)
    assert results[0].status == 503
    assert json.loads(results[0].body)["error"]["code"] == "timeout"
    assert reactor.processes[0].signals == ["KILL"]
    assert sep.state == SEPState.STOPPING
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert len(results) == 1  # the abend path must not answer a second time
    reactor.advance(0)
    assert len(reactor.processes) == 2 and sep.state == SEPState.STARTING
    assert "ESSI1703W SEP 0001 ran srv01.SLOW for longer than 30 s" in console_text(paths)


def test_each_batch_gets_its_own_time_whatever_the_batches_before_it(made):
    reactor, sup, _ = made(seps=1, timeout=30)
    sup.start()
    process = reactor.processes[0]
    process.ready()
    sep = sup.idle_sep()
    results = []
    # A batch of four may take 120 s; it takes 1 s.
    for deferred in sep.call_batch([("srv01.A", b"{}", None)] * 4):
        deferred.addCallback(results.append)
    reactor.advance(1)
    for header, _ in process.requests():
        process.frame({"id": header["id"], "status": 200, "rc": 0}, b"{}")
    assert len(results) == 4 and sep.state == SEPState.IDLE
    # A lone call after it gets 30 s, not what was left of the batch's 120.
    reactor.advance(10)
    sep.call("srv01.SLOW", b"{}").addCallback(results.append)
    reactor.advance(29.5)
    assert len(results) == 4
    reactor.advance(0.5)
    assert results[4].status == 503 and process.signals == ["KILL"]
    # And a call after a short one gets its whole 30 s too.
    process.exit(sig=signal.SIGKILL)
    reactor.advance(sup.seps[0].delay)
    process = reactor.processes[1]
    process.ready()
    sep.call("srv01.A", b"{}").addCallback(results.append)
    reactor.advance(20)
    [(header, _)] = process.requests()
    process.frame({"id": header["id"], "status": 200, "rc": 0}, b"{}")
    sep.call("srv01.SLOW", b"{}").addCallback(results.append)
    reactor.advance(29.5)
    assert len(results) == 6
    reactor.advance(0.5)
    assert results[6].status == 503


class FakeStore:
    """The ReplyStore's interface with a dict of committed replies."""

    def __init__(self, committed=None):
        self.committed_replies = dict(committed or {})
        self.cleanups = 0
        self.problem = None

    @property
    def needs_recovery(self):
        return self.problem is not None

    def after_death(self, pid=None):
        self.cleanups += 1
        return True

    def committed(self, key):
        return self.committed_replies.get(key)


def test_outside_kill_retries_unless_the_request_had_committed(made):
    reactor, sup, paths = made(seps=1)
    sup.store = FakeStore({"r:done": ({"status": 200, "rc": 0}, b'{"LK-COUNTER": 7}')})
    sup.start()
    reactor.processes[0].ready()
    results = []
    sup.seps[0].call("srv01.CBLAPP01", b"{}", {"key": "r:lost"}).addCallback(results.append)
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert results == [Rerun.RETRY] and sup.store.cleanups == 1
    reactor.advance(sup.min_restart_delay)
    reactor.processes[1].ready()
    sup.seps[0].call("srv01.CBLAPP01", b"{}", {"key": "r:done"}).addCallback(results.append)
    reactor.processes[1].exit(sig=signal.SIGKILL)
    assert results[1].status == 200 and results[1].body == b'{"LK-COUNTER": 7}'
    assert "ESSI1707I SEP 0001 died after committing srv01.CBLAPP01" in console_text(paths)


class FailingLookupStore(FakeStore):
    def committed(self, key):
        from esrt.region.txstore import OutcomeUnknown
        raise OutcomeUnknown("looking up its reply failed: Input/output error")


def test_a_call_whose_reply_cannot_be_looked_up_is_in_doubt_not_run_again(made):
    """Running it again (as for a call that did not commit) could apply it twice."""
    reactor, sup, _ = made(seps=1)
    sup.store = FailingLookupStore()
    sup.start()
    reactor.processes[0].ready()
    results = []
    sup.seps[0].call("srv01.CBLAPP01", b"{}", {"key": "i:k1"}).addCallback(results.append)
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert len(results) == 1 and results[0].status == 503
    error = json.loads(results[0].body)["error"]
    assert error["code"] == "in_doubt" and "Input/output error" in error["message"]
    assert "same Idempotency-Key" in error["message"]


class BrokenEnvironmentStore(FakeStore):
    """failchk cannot clean up (a SEP died holding a Berkeley DB mutex): recovery is needed."""

    def __init__(self, committed=None):
        super().__init__(committed)
        self.recoveries = 0

    def after_death(self, pid=None):
        self.cleanups += 1
        return False

    def recover(self, reactor, started=None):
        self.recoveries += 1
        return True


def test_a_broken_environment_stops_every_sep_recovers_then_settles_their_calls(made):
    reactor, sup, paths = made(seps=2)
    sup.store = BrokenEnvironmentStore({"r:b": ({"status": 200, "rc": 0}, b'{"N": 1}')})
    sup.start()
    for process in reactor.processes:
        process.ready()
    reactor.advance(10)
    results = {}
    sup.seps[0].call("srv01.A", b"{}", {"key": "r:a"}).addCallback(results.setdefault, "a")
    sup.seps[1].call("srv01.B", b"{}", {"key": "r:b"}).addCallback(results.setdefault, "b")
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert sup.recovering and sup.idle_sep() is None and not results
    assert reactor.processes[1].signals == ["KILL"]  # the other SEP is stopped for recovery
    reactor.processes[1].exit(sig=signal.SIGKILL)
    assert sup.store.recoveries == 1 and not sup.recovering
    # No failchk for a SEP killed for the recovery: it would wait for the orphaned mutex
    # (failchk_timeout, with the region waiting) for nothing, since recovery frees it.
    assert sup.store.cleanups == 1
    assert results[Rerun.RETRY] == "a"  # rolled back by recovery: run again
    committed = [reply for reply in results if reply is not Rerun.RETRY][0]
    assert committed.status == 200 and committed.body == b'{"N": 1}'
    reactor.advance(sup.max_restart_delay)
    assert len(reactor.processes) == 4  # both SEPs started again after recovery
    assert "ESDB0006W" in console_text(paths)


class FullDiskStore(BrokenEnvironmentStore):
    """Recovery fails (a full data disk) until `space` is set."""

    path = "/data"

    def __init__(self):
        super().__init__()
        self.space = False

    def recover(self, reactor, started=None):
        self.recoveries += 1
        self.problem = None if self.space else "No space left on device"
        return self.space


def test_recovery_that_fails_is_retried_with_back_off_and_calls_are_answered_at_once(made):
    reactor, sup, paths = made(seps=1)
    sup.store = FullDiskStore()
    unavailable = watch_unavailable(sup, reactor)
    sup.start()
    reactor.processes[0].ready()
    reactor.advance(10)
    results = []
    sup.seps[0].call("srv01.A", b"{}", {"key": "r:a"}).addCallback(results.append)
    reactor.processes[0].exit(sig=signal.SIGKILL)
    # The call in flight is answered now, not when the disk has room again.
    assert len(results) == 1 and results[0].status == 503
    assert "No space left on device" in results[0].body.decode()
    assert sup.unrecoverable and "free space on its data disk" in sup.unrecoverable
    assert unavailable, "queued calls were not refused"
    # Tries again after 1, 2, 4, ... seconds (up to max_recovery_delay); no SEP meanwhile.
    for delay in (1, 2, 4, 8):
        reactor.advance(delay)
    assert sup.store.recoveries == 5 and len(reactor.processes) == 1
    sup.store.space = True
    reactor.advance(16)
    assert sup.store.recoveries == 6 and not sup.recovering and sup.unrecoverable is None
    reactor.advance(sup.max_restart_delay)
    assert len(reactor.processes) == 2  # the SEP is back
    assert console_text(paths).count("ESDB0007E") == 5


def test_stop_while_recovery_keeps_failing_stops_trying(made):
    reactor, sup, _ = made(seps=1)
    sup.store = FullDiskStore()
    sup.start()
    reactor.processes[0].ready()
    reactor.advance(10)
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert sup.store.recoveries == 1
    done = []
    sup.stop().addCallback(done.append)
    reactor.advance(1000)
    assert done and sup.store.recoveries == 1 and len(reactor.processes) == 1


def test_a_region_that_starts_on_a_failing_disk_starts_its_seps_once_recovery_works(made):
    """The first recovery failed (an I/O error): no SEP may open the environment before
    recovery, yet the region must not give up (no SEP can run) but keep trying."""
    reactor, sup, paths = made(seps=2)
    sup.store = FullDiskStore()
    sup.store.problem = "recovery failed: Input/output error"
    unavailable = watch_unavailable(sup, reactor)
    sup.start()
    assert reactor.processes == [] and sup.idle_sep() is None
    assert sup.can_serve(), "the region would shut itself down"
    # The slots wait as restarting ones do.
    assert all(sep.state == SEPState.BACKOFF for sep in sup.seps)
    assert sup.unrecoverable and unavailable
    for delay in (1, 2, 4):
        reactor.advance(delay)
    assert sup.store.recoveries == 4 and reactor.processes == []
    sup.store.space = True
    reactor.advance(8)
    assert sup.unrecoverable is None and not sup.recovering
    assert len(reactor.processes) == 2  # the waiting slots start at once
    assert sup.seps[0].restarts == 0  # a first start, not a restart
    for process in reactor.processes:
        process.ready()
    assert sup.all_ready()
    assert console_text(paths).count("ESDB0007E") == 4


def test_stop_while_waiting_to_start_on_a_failing_disk_starts_nothing(made):
    reactor, sup, _ = made(seps=1)
    sup.store = FullDiskStore()
    sup.store.problem = "recovery failed: Input/output error"
    sup.start()
    done = []
    sup.stop().addCallback(done.append)
    sup.store.space = True
    reactor.advance(1000)
    assert done and sup.store.recoveries == 1 and reactor.processes == []
    assert not sup.can_serve()


class SlowRecoveryStore(FakeStore):
    """Recovery runs in a child process: each one ends when the test fires its Deferred."""

    path = "/data"

    def __init__(self):
        super().__init__()
        self.problem = "not recovered yet"
        self.running = []

    def recover(self, reactor, started=None):
        self.running.append(defer.Deferred())
        return self.running[-1].addCallback(self._ended)

    def _ended(self, recovered):
        self.problem = None if recovered else "recovery failed: Input/output error"
        return recovered


def test_the_region_answers_while_recovery_runs_and_starts_seps_when_it_ends(made):
    """A recovery on a slow or failing disk may take long: the region must stay responsive
    (the old synchronous recovery blocked its reactor, so calls timed out unanswered)."""
    reactor, sup, _ = made(seps=2)
    sup.store = SlowRecoveryStore()
    sup.start()
    assert len(sup.store.running) == 1 and reactor.processes == []
    assert sup.can_serve() and sup.idle_sep() is None
    reactor.advance(60)   # however long it takes, nothing is started or retried meanwhile
    assert len(sup.store.running) == 1 and reactor.processes == []
    sup.store.running[0].callback(False)
    assert sup.unrecoverable and "Input/output error" in sup.unrecoverable
    reactor.advance(sup.min_recovery_delay)
    assert len(sup.store.running) == 2
    sup.store.running[1].callback(True)
    assert sup.unrecoverable is None and len(reactor.processes) == 2


def test_calls_are_refused_while_a_recovery_runs_too_long_and_served_after(made):
    reactor, sup, paths = made(seps=1)
    sup.store = SlowRecoveryStore()
    unavailable = watch_unavailable(sup, reactor)
    sup.start()
    reactor.advance(sup.recovery_patience - 0.1)
    assert not unavailable and sup.refusal is None   # calls wait a short recovery out
    reactor.advance(0.1)
    assert unavailable == [sup.recovery_patience]
    assert "recovering for more than 5 s" in sup.refusal
    assert sup.unrecoverable is None   # not failed: a long log may take that long to recover
    assert "ESDB0008W" in console_text(paths)
    sup.store.running[0].callback(True)
    assert sup.refusal is None and len(reactor.processes) == 1


def test_stop_during_a_recovery_waits_for_it_and_starts_nothing(made):
    """A standby giving its disk back closes the environment after stop(): a recovery still
    running then would open it behind the closing and keep the disk busy."""
    reactor, sup, _ = made(seps=1)
    sup.store = SlowRecoveryStore()
    sup.start()
    done = []
    sup.stop().addCallback(done.append)
    assert not done
    sup.store.running[0].callback(True)
    assert done and reactor.processes == []
    reactor.advance(1000)
    assert len(sup.store.running) == 1 and reactor.processes == []


def test_a_standby_taking_over_again_after_a_failed_recovery_recovers_and_starts(made):
    """The region gave its disk back while recovery kept failing (a cluster moved it away);
    when it takes the disk again, its slots used to wait for a recovery nobody started."""
    reactor, sup, _ = made(seps=1)
    sup.store = FullDiskStore()
    sup.store.problem = "not recovered yet"
    sup.start()
    assert sup.store.recoveries == 1 and sup.unrecoverable
    done = []
    sup.stop().addCallback(done.append)
    assert done
    sup.store = FullDiskStore()   # the new activation's store, on a disk with room now
    sup.store.problem = "not recovered yet"
    sup.store.space = True
    sup.start()
    assert sup.store.recoveries == 1 and sup.unrecoverable is None
    assert len(reactor.processes) == 1


def test_request_ids_wrap_around_within_32_bits_skipping_zero(made):
    from esrt.sep.protocol import MAX_REQUEST_ID
    reactor, sup, _ = made(seps=1)
    sup.start()
    reactor.processes[0].ready()
    sep = sup.seps[0]
    sep._next_id = MAX_REQUEST_ID
    sep.call_batch([("srv01.A", b"{}", {"key": "r:1"}), ("srv01.B", b"{}", {"key": "r:2"})])
    assert [header["id"] for header, _ in reactor.processes[0].requests()] == [MAX_REQUEST_ID, 1]


def test_stop_sends_term_then_kill_and_fires_when_all_are_gone(made):
    reactor, sup, paths = made(seps=2)
    sup.start()
    for process in reactor.processes:
        process.ready()
    done = []
    sup.stop().addCallback(done.append)
    assert [p.signals for p in reactor.processes] == [["TERM"], ["TERM"]]
    assert all(s.state == SEPState.STOPPING for s in sup.seps)
    reactor.processes[0].exit(code=0)
    assert sup.seps[0].state == SEPState.STOPPED and not done
    reactor.advance(sup.kill_delay)
    assert reactor.processes[1].signals == ["TERM", "KILL"]
    reactor.processes[1].exit(sig=signal.SIGKILL)
    assert done and all(s.state == SEPState.STOPPED for s in sup.seps)
    reactor.advance(1000)
    assert len(reactor.processes) == 2  # nothing restarted after a stop
    text = console_text(paths)
    assert text.count("ESKC0003I") == 2 and "ESKC0004W SEP 0002" in text


def test_stop_during_backoff_cancels_the_restart(made):
    reactor, sup, _ = made(seps=1)
    sup.start()
    reactor.processes[0].exit(code=1)
    assert sup.seps[0].state == SEPState.BACKOFF
    done = []
    sup.stop().addCallback(done.append)
    assert done and sup.seps[0].state == SEPState.STOPPED
    reactor.advance(100)
    assert len(reactor.processes) == 1


def test_output_lines_go_to_the_console_tagged_with_the_sep(made):
    reactor, sup, paths = made(seps=1)
    sup.start()
    process = reactor.processes[0]
    process.proto.childDataReceived(1, b"HELLO FROM ")
    process.proto.childDataReceived(1, b"COBOL\nsecond line\n")
    process.proto.childDataReceived(2, b"no newline at exit")
    process.exit(code=1)
    text = console_text(paths)
    assert "ESSI1800I SEP 0001: HELLO FROM COBOL" in text
    assert "ESSI1800I SEP 0001: second line" in text
    assert "ESSI1801W SEP 0001 stderr: no newline at exit" in text


def test_garbage_on_the_reply_pipe_kills_and_replaces_the_sep(made):
    reactor, sup, paths = made(seps=1)
    sup.start()
    process = reactor.processes[0]
    process.ready()
    process.proto.childDataReceived(4, b"\xff\xff\xff\xff garbage")
    assert process.signals == ["KILL"]
    assert "ESSI1705W" in console_text(paths)


def test_real_child_serves_abends_and_is_replaced(tmp_path):
    """A real stand-in SEP process, with a private reactor driven by hand."""
    from twisted.internet import process as twisted_process, selectreactor

    script = tmp_path / "standin.py"
    script.write_text(STANDIN_SEP_SOURCE)
    reactor = selectreactor.SelectReactor()
    paths = RegionPaths({"name": "ESSRV01", "root": str(tmp_path / "r")}).create()
    console = ConsoleLog(paths.console_log, paths.console_bak, "ESSRV01").open()
    sup = Supervisor(reactor, definition(seps=1), paths, console, dict(os.environ),
                     sep_command=[sys.executable, str(script)])
    results = []

    def until(predicate, limit=2000):
        for _ in range(limit):
            if predicate():
                return
            reactor.iterate(0.01)
            # The reactor is not run(), so no SIGCHLD handler is installed: reap by hand.
            twisted_process.reapAllProcesses()
        raise AssertionError("the stand-in SEP did not get there; see " + str(paths.console_log))

    try:
        sup.start()
        until(sup.all_ready)
        sup.idle_sep().call("srv01.ECHO", b'{"x": 1}').addCallback(results.append)
        until(lambda: results)
        assert results[0].status == 200 and json.loads(results[0].body)["echo"] == {"x": 1}
        first_pid = sup.seps[0].pid
        sup.idle_sep().call("srv01.ECHO", b'{"action": "abend", "signal": "SIGABRT"}'
                            ).addCallback(results.append)
        until(lambda: len(results) == 2)
        assert results[1].status == 500
        assert "runtime error: simulated abend in srv01.ECHO (killed by SIGABRT)" in \
            json.loads(results[1].body)["error"]["message"]
        until(sup.all_ready)
        assert sup.seps[0].pid != first_pid
    finally:
        done = []
        sup.stop().addCallback(done.append)
        until(lambda: done)
        for sep in sup.seps:
            assert sep.pid is None


def test_a_call_sent_to_a_sep_giving_up_the_environment_runs_again(made):
    # The SEP answered its batch, then gave up the environment (a failed log sync) and exits;
    # a call the region sent it in between was never read: it must run again, not be an abend.
    reactor, sup, paths = made(seps=1)
    sup.store = BrokenEnvironmentStore()
    sup.start()
    reactor.processes[0].ready()
    results = []
    sup.seps[0].call("srv01.A", b"{}", {"key": "r:x"}).addCallback(results.append)
    reactor.processes[0].exit(code=int(ExitCode.ENVIRONMENT_LOST))
    assert results == [Rerun.RETRY]
    assert "its log sync failed" in console_text(paths)
