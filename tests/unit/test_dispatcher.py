"""Dispatcher: FIFO queue over the supervisor's SEPs, 503 when no SEP is left, statistics."""

import json

import pytest
from twisted.internet import defer

from esrt.paths import RegionPaths
from esrt.region.console import ConsoleLog
from esrt.region.dispatcher import Dispatcher
from esrt.region.supervisor import Supervisor
from esrt.states import ExitCode, SEPState
from test_supervisor import FakeReactor


@pytest.fixture
def region(tmp_path):
    reactor = FakeReactor()
    paths = RegionPaths({"name": "ESSRV01", "root": str(tmp_path)}).create()
    console = ConsoleLog(paths.console_log, paths.console_bak, "ESSRV01").open()
    sup = Supervisor(reactor, {"name": "ESSRV01", "seps": 2, "request_timeout": 60}, paths,
                     console, {}, sep_command=["python3", "-m", "esrt.sep"])
    dispatcher = Dispatcher(reactor, sup)
    sup.start()
    return reactor, sup, dispatcher


def answer(process, rc=0):
    """Reply to the newest request the process got, echoing its body."""
    header, body = process.requests()[-1]
    process.frame({"id": header["id"], "status": 200, "rc": rc}, body)


def test_calls_queue_until_a_sep_is_free_and_run_oldest_first(region):
    reactor, sup, dispatcher = region
    results = []
    for n in range(3):
        dispatcher.submit("srv01.A", json.dumps({"n": n}).encode()).addCallback(results.append)
    assert dispatcher.queued == 3 and dispatcher.active == 3  # nobody is ready yet
    first, second = reactor.processes
    first.ready()
    assert [json.loads(b) for _, b in first.requests()] == [{"n": 0}]
    second.ready()
    assert [json.loads(b) for _, b in second.requests()] == [{"n": 1}]
    assert dispatcher.queued == 1
    answer(second)
    assert [json.loads(b) for _, b in second.requests()] == [{"n": 1}, {"n": 2}]
    answer(first)
    answer(second)
    assert sorted(json.loads(r.body)["n"] for r in results) == [0, 1, 2]
    assert dispatcher.active == 0 and dispatcher.queued == 0


def test_no_sep_left_answers_503_unavailable_now_and_for_queued_calls(region):
    reactor, sup, dispatcher = region
    queued = []
    dispatcher.submit("srv01.A", b"{}").addCallback(queued.append)
    for process in reactor.processes:
        process.exit(code=int(ExitCode.BOOT_FAILED))
    assert all(sep.state == SEPState.FATAL for sep in sup.seps)
    assert queued[0].status == 503
    assert json.loads(queued[0].body)["error"]["code"] == "unavailable"
    later = []
    dispatcher.submit("srv01.A", b"{}").addCallback(later.append)
    assert later[0].status == 503
    assert "srv01.A" in json.loads(later[0].body)["error"]["message"]


def test_a_call_cancelled_while_queued_never_reaches_a_sep(region):
    reactor, sup, dispatcher = region
    gone = dispatcher.submit("srv01.A", b'{"n": "gone"}')
    gone.addErrback(lambda failure: failure.trap(defer.CancelledError))
    kept = []
    dispatcher.submit("srv01.A", b'{"n": "kept"}').addCallback(kept.append)
    gone.cancel()
    reactor.processes[0].ready()
    assert [json.loads(b) for _, b in reactor.processes[0].requests()] == [{"n": "kept"}]
    answer(reactor.processes[0])
    assert kept and dispatcher.active == 0


def test_stats_count_requests_errors_and_latency(region):
    reactor, sup, dispatcher = region
    for process in reactor.processes:
        process.ready()
    dispatcher.submit("srv01.A", b"{}")
    reactor.advance(0.5)
    answer(reactor.processes[0])
    dispatcher.submit("srv01.A", b"{}")
    reactor.advance(1.5)
    header, _ = reactor.processes[0].requests()[-1]
    reactor.processes[0].frame({"id": header["id"], "status": 400,
                                "error": {"code": "bad_json", "message": "x"}})
    stats = dispatcher.stats()
    assert stats["requests"] == 2 and stats["errors"] == 1 and stats["active"] == 0
    assert stats["avg_latency_ms"] == pytest.approx(1000.0)
    assert stats["max_tasks"] == 2


def test_drain_waits_for_calls_in_flight(region):
    reactor, sup, dispatcher = region
    reactor.processes[0].ready()
    dispatcher.submit("srv01.A", b"{}")
    drained = []
    dispatcher.drain().addCallback(drained.append)
    assert not drained
    answer(reactor.processes[0])
    assert drained == [None]
