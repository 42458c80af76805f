"""esrt.region.history: one point per interval with rates, latency percentiles of the calls of
that interval, queue and busy SEPs; at least an hour kept, in memory and on disk, and a new
history at each start of the region."""

import json

from twisted.internet.task import Clock

from esrt.node.runs import read_history
from esrt.region.history import SPAN_SECONDS, History
from esrt.region.metrics import RegionMetrics
from esrt.states import SEPState


class Dispatcher:
    queued = 0


class Sep:
    def __init__(self, state):
        self.state = state


class Supervisor:
    def __init__(self):
        self.seps = [Sep(SEPState.IDLE), Sep(SEPState.IDLE)]


def history(tmp_path, interval=5.0):
    reactor = Clock()
    metrics, dispatcher, supervisor = RegionMetrics("ESHIS01"), Dispatcher(), Supervisor()
    recorder = History(reactor, metrics, dispatcher, supervisor, tmp_path / "history.jsonl",
                       interval=interval, clock=reactor.seconds, monotonic=reactor.seconds)
    return reactor, metrics, dispatcher, supervisor, recorder


def test_a_point_holds_the_rates_and_percentiles_of_its_own_interval(tmp_path):
    reactor, metrics, dispatcher, supervisor, recorder = history(tmp_path)
    for _ in range(50):
        metrics.observe("app.OLD", 200, 0.5)  # before the region's history began
    reactor.advance(1000)
    recorder.start()
    # 100 calls of A (one in ten failing), 1 to 100 ms; 10 calls of B at 2 ms.
    for ms in range(1, 101):
        metrics.observe("app.A", 500 if ms % 10 == 0 else 200, ms / 1000)
    for _ in range(10):
        metrics.observe("app.B", 200, 0.002)
    for second in range(5):
        dispatcher.queued = [0, 4, 8, 4, 4][second]
        supervisor.seps[0].state = SEPState.BUSY if second < 4 else SEPState.IDLE
        reactor.advance(1)
    [point] = recorder.points
    assert point["t"] == 1005
    assert point["calls"] == 22.0 and point["errors"] == 2.0  # 110 and 10 in 5 s
    assert point["services"]["app.A"] == {"calls": 20.0, "errors": 2.0, "p50": 50.0,
                                          "p99": 99.0}
    assert point["services"]["app.B"]["p99"] == 2.0
    assert "app.OLD" not in point["services"]  # no call of its own in this interval
    assert point["queued"] == 4.0 and point["queued_max"] == 8
    assert point["busy"] == 0.8 and point["busy_max"] == 1 and point["seps"] == 2
    # An idle interval: zeros, not the last figures again.
    reactor.pump([1] * 5)
    assert recorder.points[-1]["calls"] == 0 and recorder.points[-1]["services"] == {}
    assert read_history(tmp_path) == list(recorder.points)
    assert [p["t"] for p in read_history(tmp_path, since=1005)] == [1010]


def test_an_hour_is_kept_in_memory_and_on_disk_and_a_start_begins_anew(tmp_path):
    reactor, metrics, _, _, recorder = history(tmp_path, interval=10)
    recorder.start()
    for _ in range(3 * SPAN_SECONDS // 10):
        metrics.observe("app.A", 200, 0.001)
        reactor.advance(10)
    assert len(recorder.points) == SPAN_SECONDS // 10
    on_disk = read_history(tmp_path)
    # Rewritten once twice as long as the ring: never more than two hours' lines.
    assert SPAN_SECONDS // 10 <= len(on_disk) <= 2 * SPAN_SECONDS // 10
    assert on_disk[-1] == recorder.points[-1]
    assert on_disk[-1]["t"] - on_disk[0]["t"] >= SPAN_SECONDS - 10
    recorder.stop()

    # The region starts again: a history of its own.
    reactor2, metrics2, _, _, again = history(tmp_path, interval=10)
    again.start()
    assert read_history(tmp_path) == []
    reactor2.advance(10)
    assert len(read_history(tmp_path)) == 1


def test_a_torn_last_line_is_skipped_by_readers(tmp_path):
    reactor, metrics, _, _, recorder = history(tmp_path, interval=1)
    recorder.start()
    reactor.pump([1, 1])
    with open(tmp_path / "history.jsonl", "a") as out:
        out.write('{"t": 99')  # being written as mfds reads
    assert len(read_history(tmp_path)) == 2
    assert read_history(tmp_path, limit=1) == [json.loads(
        (tmp_path / "history.jsonl").read_text().splitlines()[1])]


class Failing(Dispatcher):
    fail = True

    @property
    def queued(self):
        if Failing.fail:
            raise RuntimeError("a bug")
        return 0


def test_a_failing_sample_is_told_once_and_the_next_points_still_come(tmp_path):
    reactor = Clock()
    told = []
    recorder = History(reactor, RegionMetrics("ESHIS01"), Failing(), Supervisor(),
                       tmp_path / "history.jsonl", interval=1, clock=reactor.seconds,
                       monotonic=reactor.seconds, on_problem=told.append)
    recorder.start()
    reactor.pump([1, 1, 1])
    assert told == ["RuntimeError: a bug"] and not recorder.points
    Failing.fail = False
    reactor.pump([1, 1])
    assert len(recorder.points) == 2


def test_reading_from_the_end_gives_every_line_whatever_the_block(tmp_path):
    from esrt.node.runs import _lines_from_the_end
    path = tmp_path / "history.jsonl"
    lines = [json.dumps({"t": n, "pad": "x" * (n % 13)}) for n in range(200)]
    path.write_text("\n".join(lines) + "\n")
    for block in (1, 7, 64, 65536):
        assert list(_lines_from_the_end(path, block)) == lines[::-1]
    assert [p["t"] for p in read_history(tmp_path, since=195)] == [196, 197, 198, 199]
    assert [p["t"] for p in read_history(tmp_path, limit=2)] == [198, 199]
