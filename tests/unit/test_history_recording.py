"""Recording a history: which failures are definite, RecordingClient's operations, the file
format, settling by resending, and the whole loop against a real CBLAPP01 region."""

import json
import socket
import threading

import pytest

from esrt.client import Client, ConnectionFailed, Reply, ServiceError
from esrt.testing import recorder as recorder_module
from esrt.testing.checker import check_history, outages, settle_history
from esrt.testing.faults import kill_sep
from esrt.testing.history import (DEFINITE_CODES, ERROR, OK, UNKNOWN, Fault, Operation,
                                  ResendSettler, attempt_outcome, collect, load_history,
                                  save_history)
from esrt.testing.recorder import RecordingClient


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refusal(scheme="http"):
    """The ConnectionFailed a real client raises when nothing listens."""
    with Client(f"{scheme}://127.0.0.1:{closed_port()}", timeout=2) as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.call("srv01.CBLAPP01")
    return caught.value


# -- which failures are definite ----------------------------------------------------------

@pytest.mark.parametrize("scheme", ["http", "esrt"])
def test_a_refused_connection_is_definite_only_when_nothing_could_have_gone_before(scheme):
    refused = refusal(scheme)
    assert attempt_outcome(refused, fresh_connection=True) == ERROR
    # On a reused connection the request may have gone out first, before the reconnect.
    assert attempt_outcome(refused, fresh_connection=False) == UNKNOWN


def test_timeouts_lost_connections_and_500s_are_unknown_refusals_by_the_region_are_not():
    assert attempt_outcome(ConnectionFailed("http://x:1: timed out"), True) == UNKNOWN
    for code in ("abend", "transaction_failed", "internal", "http_error", "in_doubt"):
        assert attempt_outcome(ServiceError(500, code, "?"), True) == UNKNOWN
    for code in ("unavailable", "killed", "deadlock", "recovering", "bad_json"):
        assert attempt_outcome(ServiceError(503, code, "?"), False) == ERROR
    assert attempt_outcome(RuntimeError("anything else"), True) == UNKNOWN
    assert all(DEFINITE_CODES.values())


# -- RecordingClient's operations, with a scripted client ---------------------------------

class ScriptedClient:
    """Stands for esrt.client.Client: each call plays the next (connected, result) step; the
    last one stops the recorder."""

    def __init__(self, script, recorder_box):
        self.script = script
        self.box = recorder_box
        self.keys = []

    @property
    def connected(self):
        return self.script[0][0] if self.script else False

    def call(self, service, params=None, idempotency_key=None, retry_for=None):
        self.keys.append(idempotency_key)
        _, result = self.script.pop(0)
        if not self.script:
            self.box[0]._stopping.set()
        if isinstance(result, Exception):
            raise result
        return result

    def close(self):
        pass


def reply(counter, host="node1", rc=0):
    answer = Reply({"LK-COUNTER": counter, "LK-HOSTNAME": host})
    answer.return_code = rc
    return answer


def record(monkeypatch, script, **options):
    box = []
    clients = []

    def make_client(url, timeout=60.0):
        clients.append(ScriptedClient(script, box))
        return clients[-1]

    monkeypatch.setattr(recorder_module, "Client", make_client)
    recording = RecordingClient("http://127.0.0.1:1", pause=0, client_id="c1", **options)
    box.append(recording)
    recording.start()
    recording._thread.join(10)
    assert not recording._thread.is_alive()
    return recording, clients[-1].keys


def test_attempts_with_one_key_make_one_operation_that_ends_as_they_did(monkeypatch):
    refused = refusal()
    recording, keys = record(monkeypatch, [
        (False, refused), (False, ServiceError(503, "unavailable", "standby")), (False, reply(0)),
        (True, ConnectionFailed("timed out")), (False, reply(1, "node2")),
        (True, reply(0, rc=8)),
        (True, ServiceError(500, "abend", "died"))])
    first, second, third, fourth = recording.operations()
    assert (first.outcome, first.counter, first.host, first.attempts) == (OK, 0, "node1", 3)
    assert first.last_try > first.start and len(set(keys[:3])) == 1
    assert (second.outcome, second.counter, second.attempts) == (OK, 1, 2)
    assert (third.outcome, third.detail) == (ERROR, "RETURN-CODE 8")
    # Stopped while retrying after a 500: it may have been applied.
    assert (fourth.outcome, fourth.attempts, fourth.client) == (UNKNOWN, 1, "c1")
    assert len(set(keys)) == 4
    # The attempt records are what they always were.
    assert [r.outcome for r in recording.snapshot()][2] == OK
    assert recording.counters() == [0, 1, 0]


def test_without_idempotency_every_attempt_is_an_operation(monkeypatch):
    refused = refusal()
    recording, keys = record(monkeypatch, [
        (False, refused), (True, refused), (False, reply(5))], idempotency=False)
    assert [o.outcome for o in recording.operations()] == [ERROR, UNKNOWN, OK]
    assert keys == [None, None, None]


def test_histories_of_several_clients_merge_and_go_through_a_file(tmp_path):
    class Stub:
        def __init__(self, *ops):
            self.ops = list(ops)

        def operations(self):
            return self.ops

    a = Operation("a", "ka", 2.0, 3.0, OK, 1, "node1")
    b = Operation("b", "kb", 1.0, 4.0, UNKNOWN, detail="timed out", attempts=2, last_try=3.5)
    history = collect([Stub(a), Stub(b)])
    assert history == [b, a]
    fault = Fault(2.5, "kill-sep", "SEP 1")
    path = save_history(tmp_path / "history.jsonl", history, [fault])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["fault", "op", "op"]
    assert load_history(path) == (history, [fault])


def test_a_bad_history_line_is_named_and_a_bad_operation_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "op", "client": "a", "key": null, "start": 1, "end": 2, '
                    '"outcome": "ok"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*needs the counter"):
        load_history(path)
    with pytest.raises(ValueError, match="ends .* before it starts"):
        Operation("a", None, 2.0, 1.0, ERROR)
    with pytest.raises(ValueError, match="must be one of"):
        Operation("a", None, 1.0, 2.0, "maybe")


# -- settling by resending ----------------------------------------------------------------

def test_resending_returns_the_counter_and_none_for_a_call_that_could_not_count(monkeypatch):
    settler = ResendSettler("http://127.0.0.1:1")
    answers = {"applied": reply(7), "failed": reply(0, rc=8), "odd": Reply({})}
    sent = []
    monkeypatch.setattr(settler, "_call", lambda key: sent.append(key) or answers.get(key,
                                                                                     reply(9)))
    assert settler("applied") == 7 and settler("failed") is None
    with pytest.raises(ValueError, match="pass counter_field="):
        settler("odd")
    assert settler.next_counter() == 9 and sent[-1] not in answers
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        ResendSettler("127.0.0.1:1")


# -- the whole loop on a real region ------------------------------------------------------

def test_concurrent_clients_through_a_sep_kill_check_out(node, srv01_car):
    from conftest import start_cblapp01_region
    region = start_cblapp01_region(node, srv01_car, seps=2)
    recorders = [RecordingClient(region.url, client_id=f"c{i}") for i in range(3)]
    for recording in recorders:
        recording.start()
    try:
        recorders[0].wait_for_calls(10)
        faults = [Fault(kill_sep(node, region.name, 1), "kill-sep", "SEP 0001")]
        for recording in recorders:
            recording.wait_for_calls(10, timeout=60)
    finally:
        stoppers = [threading.Thread(target=r.stop) for r in recorders]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
    history = collect(recorders)
    settler = ResendSettler(region.url)
    settled = settle_history(history, settler)
    report = check_history(settled, initial=0, final=settler.next_counter())
    assert report.valid, str(report)
    assert report.summary.ok >= 30 and report.summary.unsettled == 0
    (outage,), _ = outages(history, faults)
    assert set(outage.clients) == {"c0", "c1", "c2"} and outage.every_client is not None
