"""Dispatcher: FIFO queue over the supervisor's SEPs, 503 when no SEP is left, statistics."""

import json

import pytest
from twisted.internet import defer

from esrt.paths import RegionPaths
from esrt.region.console import ConsoleLog
from esrt.region.dispatcher import Dispatcher
from esrt.region.observer import Observers
from esrt.region.supervisor import Supervisor
from esrt.states import ExitCode, SEPState
from test_supervisor import FakeReactor


@pytest.fixture
def region(tmp_path, request):
    reactor = FakeReactor()
    paths = RegionPaths({"name": "ESSRV01", "root": str(tmp_path)}).create()
    console = ConsoleLog(paths.console_log, paths.console_bak, "ESSRV01").open()
    reports = Observers()
    sup = Supervisor(reactor, {"name": "ESSRV01", "seps": 2, "request_timeout": 60}, paths,
                     console, {}, sep_command=["python3", "-m", "esrt.sep"], observer=reports)
    # Two cores for two SEPs, whatever the machine running the tests has.
    dispatcher = Dispatcher(reactor, sup, cores=getattr(request, "param", 2))
    reports.add(dispatcher)
    sup.start()
    return reactor, sup, dispatcher


def answer(process, rc=0):
    """Reply to the newest request the process got, echoing its body."""
    header, body = process.requests()[-1]
    process.frame({"id": header["id"], "status": 200, "rc": rc}, body)


def answer_all(process, rc=0):
    """Reply to every request the process got that it has not answered yet."""
    requests = process.requests()
    unanswered, process.answered = requests[process.answered:], len(requests)
    for header, body in unanswered:
        process.frame({"id": header["id"], "status": 200, "rc": rc}, body)


def numbers(process):
    return [json.loads(b)["n"] for _, b in process.requests()]


def test_calls_queue_until_a_sep_is_free_and_run_oldest_first(region):
    reactor, sup, dispatcher = region
    results = []
    for n in range(3):
        dispatcher.submit("srv01.A", json.dumps({"n": n}).encode()).addCallback(results.append)
    assert dispatcher.queued == 3 and dispatcher.active == 3  # nobody is ready yet
    first, second = reactor.processes
    first.answered = second.answered = 0
    # Three waiting, two SEPs: the first one ready takes its share, the oldest two.
    first.ready()
    assert numbers(first) == [0, 1]
    second.ready()
    assert numbers(second) == [2]
    assert dispatcher.queued == 0
    answer_all(second)
    answer_all(first)
    assert sorted(json.loads(r.body)["n"] for r in results) == [0, 1, 2]
    assert dispatcher.active == 0 and dispatcher.queued == 0


@pytest.mark.parametrize("region", [1], indirect=True)
def test_on_one_core_a_sep_that_frees_up_takes_the_backlog_not_its_share(region):
    reactor, sup, dispatcher = region
    first, second = reactor.processes
    first.answered = second.answered = 0
    first.ready()
    second.ready()
    for n in range(2 + 5):
        dispatcher.submit("srv01.A", json.dumps({"n": n}).encode())
    answer_all(first)
    # Two SEPs but one core to run them: leaving calls for the busy SEP gains nothing.
    assert numbers(first) == [0, 2, 3, 4, 5, 6] and dispatcher.queued == 0


def test_a_lone_caller_goes_straight_to_an_idle_sep_and_a_backlog_goes_in_batches(region):
    reactor, sup, dispatcher = region
    first, second = reactor.processes
    first.answered = second.answered = 0
    first.ready()
    second.ready()
    results = []
    dispatcher.submit("srv01.A", b'{"n": 0}').addCallback(results.append)
    dispatcher.submit("srv01.A", b'{"n": 1}').addCallback(results.append)
    assert numbers(first) == [0] and numbers(second) == [1]
    for n in range(2, 40):
        dispatcher.submit("srv01.A", json.dumps({"n": n}).encode()).addCallback(results.append)
    # Both busy: 38 wait. The SEP that frees up takes half the queue, at most max_batch.
    writes = len(first.writes)
    answer_all(first)
    assert numbers(first) == [0] + list(range(2, 2 + dispatcher.max_batch))
    assert len(first.writes) == writes + 1  # the whole batch in one write
    # Replies of a batch may come back one by one; the SEP is free once all are in.
    header, body = first.requests()[1]
    first.frame({"id": header["id"], "status": 200, "rc": 0}, body)
    first.answered = 2
    assert sup.seps[0].state == SEPState.BUSY
    answer_all(first)
    assert sup.seps[0].state == SEPState.BUSY  # took the next batch at once
    for _ in range(20):
        answer_all(first)
        answer_all(second)
    assert sorted(json.loads(r.body)["n"] for r in results) == list(range(40))
    assert all(r.status == 200 for r in results)


def busy_batch(region, count):
    """Both SEPs ready and busy, then `count` more calls: the first SEP to free up takes a
    batch of them. Returns (results by n, the batch's numbers)."""
    reactor, sup, dispatcher = region
    first, second = reactor.processes
    first.answered = second.answered = 0
    first.ready()
    second.ready()
    results = {}
    for n in range(2 + count):
        dispatcher.submit("srv01.A", json.dumps({"n": n}).encode()).addCallback(
            results.setdefault, n)
    answer_all(first)
    return results, numbers(first)[1:]


def test_a_batch_whose_sep_abends_runs_each_unanswered_call_again_alone(region):
    reactor, sup, dispatcher = region
    results, batch = busy_batch(region, 4)
    first, second = reactor.processes
    answer_all(second)
    assert batch == [2, 3]  # half of the four waiting
    first.exit(code=134)  # abended in the middle of its batch
    reactor.advance(0)
    # Nobody was told anything yet: each call of the batch runs again, alone.
    assert not [n for n in batch if n in results.values()]
    second_numbers = numbers(second)
    answer_all(second)
    assert numbers(second)[len(second_numbers):] == [batch[0]]
    # The culprit abends again, now alone, and is the only one answered with the abend.
    reactor.advance(sup.min_restart_delay)
    third = reactor.processes[2]
    third.answered = 0
    third.ready()
    assert numbers(third) == [batch[1]]
    third.exit(code=134)
    reactor.advance(0)
    failed = [reply for reply, n in results.items() if reply.status != 200]
    assert [results[reply] for reply in failed] == [batch[1]]
    assert json.loads(failed[0].body)["error"]["code"] == "abend"
    for _ in range(5):
        answer_all(second)
    assert sorted(results.values()) == list(range(6))


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
    reactor.advance(0)  # on the next turn, after the reply was handled
    assert drained == [None]


def test_a_batch_whose_sep_is_killed_from_outside_runs_again_without_a_word_to_callers(region):
    import signal
    reactor, sup, dispatcher = region
    results, batch = busy_batch(region, 4)
    assert batch == [2, 3]
    reactor.processes[0].exit(sig=signal.SIGKILL)
    reactor.advance(0)
    second = reactor.processes[1]
    for _ in range(4):
        answer_all(second)
    assert sorted(results.values()) == [0, 1, 2, 3, 4, 5]
    assert all(reply.status == 200 for reply in results)


def test_a_batch_that_outlives_its_timeout_is_killed_and_each_call_runs_again_alone(region):
    reactor, sup, dispatcher = region
    results, batch = busy_batch(region, 4)
    first, second = reactor.processes
    for _ in range(3):
        answer_all(second)  # the second SEP serves everything else and is idle
    assert sorted(results.values()) == [0, 1, 4, 5]
    # The batch has the request timeout (60 s) for each of its calls.
    reactor.advance(60 * len(batch) - 1)
    assert first.signals == []
    reactor.advance(1)
    assert first.signals == ["KILL"]
    assert "ESSI1708W SEP 0001 did not finish a batch of 2 calls" in \
        sup.console.log_path.read_text()
    first.exit(sig=9)
    reactor.advance(0)
    assert not set(results.values()) & set(batch)  # nobody answered yet
    # Which call hung is not known: each runs again alone, the oldest first.
    assert numbers(second)[-1] == batch[0] and dispatcher.queued == 1
    answer_all(second)
    assert numbers(second)[-1] == batch[1]
    answer_all(second)
    assert sorted(results.values()) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("ending", ["reply", "abend"])
def test_a_stop_started_when_the_last_call_ends_stops_every_sep(region, ending):
    # As a standby standing down does: drain, then stop the SEPs. The last call may end with
    # its reply or with its SEP's death; either way the stop must complete.
    reactor, sup, dispatcher = region
    for process in reactor.processes:
        process.ready()
    results, stopped = [], []
    dispatcher.submit("srv01.A", b"{}").addCallback(results.append)
    dispatcher.drain().addCallback(lambda _: sup.stop().addCallback(stopped.append))
    if ending == "reply":
        answer(reactor.processes[0])
    else:
        reactor.processes[0].exit(code=134)
    reactor.advance(0)
    assert len(results) == 1
    # The SEPs still running end on their TERM.
    for process in reactor.processes[:2] if ending == "reply" else reactor.processes[1:2]:
        process.exit(sig=15)
    reactor.advance(10)
    assert stopped and all(sep.state == SEPState.STOPPED for sep in sup.seps)


def test_calls_still_waiting_when_every_sep_is_stopped_are_answered_503(region):
    reactor, sup, dispatcher = region
    results = []
    dispatcher.submit("srv01.A", b"{}").addCallback(results.append)  # no SEP is ready yet
    sup.stop()
    for process in reactor.processes:
        process.exit(sig=15)
    assert [reply.status for reply in results] == [503]
    assert dispatcher.active == 0 and dispatcher.queued == 0


def test_a_sender_whose_reply_to_fails_costs_its_own_call_only(region, tmp_path):
    reactor, sup, dispatcher = region
    delivered = []

    def broken(reply, token, ticket):
        raise RuntimeError("a bug in a listener")

    dispatcher.send("srv01.A", b'{"n": 0}', None, broken, None)
    dispatcher.send("srv01.A", b'{"n": 1}', None,
                    lambda reply, token, ticket: delivered.append((token, reply)), "second")
    drained = []
    dispatcher.drain().addCallback(drained.append)
    for process in reactor.processes:
        process.answered = 0
        process.ready()
    for process in reactor.processes:
        answer_all(process)
    reactor.advance(0)
    assert [(token, json.loads(reply.body)) for token, reply in delivered] == \
        [("second", {"n": 1})]
    assert dispatcher.active == 0 and drained == [None]
    console = (tmp_path / "logs" / "console.log").read_text()
    assert "ESCS5007E" in console and "a bug in a listener" in console


def test_a_withdrawn_running_call_is_rolled_back_and_its_sender_not_answered(region):
    reactor, sup, dispatcher = region
    process = reactor.processes[0]
    process.ready()
    answers = []
    ticket = dispatcher.send("srv01.A", b"{}", None,
                             lambda reply, token, ticket: answers.append(reply), None)
    ticket.withdraw()
    header, _ = process.requests()[-1]
    assert header == {"id": header["id"], "op": "cancel"}
    process.frame({"id": header["id"], "status": 499,
                   "error": {"code": "cancelled", "message": "rolled back"}})
    assert answers == [] and dispatcher.active == 0


@pytest.mark.parametrize("death", [{"code": 134}, {"sig": 9}], ids=["abend", "killed"])
def test_a_withdrawn_call_whose_batch_dies_is_not_run_again_and_drain_still_fires(region,
                                                                                  death):
    """Its batch's death asks for another run of each call (alone after an abend): not for
    the one whose client went away."""
    reactor, sup, dispatcher = region
    first, second = reactor.processes
    first.answered = second.answered = 0
    first.ready()
    second.ready()
    answers, tickets = {}, {}
    for n in range(6):
        tickets[n] = dispatcher.send("srv01.A", json.dumps({"n": n}).encode(), None,
                                     lambda reply, n, ticket: answers.setdefault(n, reply), n)
    answer_all(first)  # calls 0 and 2 answered; the first SEP takes the batch [2, 3]
    assert numbers(first)[1:] == [2, 3]
    tickets[2].withdraw()
    drained = []
    dispatcher.drain().addCallback(drained.append)
    first.exit(**death)
    reactor.advance(0)
    for _ in range(5):
        answer_all(second)
    assert sorted(answers) == [0, 1, 3, 4, 5]
    assert 2 not in numbers(second)  # not run again
    reactor.advance(0)  # drain() waiters are told on the next turn
    assert dispatcher.active == 0 and drained == [None]
    assert "ESCS5007E" not in sup.console.log_path.read_text()
