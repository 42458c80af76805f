"""Region metrics: per-service statistics, the Prometheus exposition, and the counters fed by the
supervisor (SEP states, restarts, recoveries), the dispatcher (re-runs) and SEP reply headers."""

import json
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from esrt.isam import DB_LOCK_DEADLOCK, EsfhError
from esrt.region.dispatcher import Dispatcher
from esrt.region.admission import Admission
from esrt.region.http import ServicesResource
from esrt.region.httpserver import HttpRequest
from esrt.region.metrics import RegionMetrics, percentile
from esrt.sep.worker import Transactions, handle_call
from esrt.states import SEPState
from test_supervisor import BrokenEnvironmentStore, FakeStore, made  # noqa: F401 - fixture


def samples(metrics):
    """{(sample name, sorted label items): value} of everything the region exposes."""
    text = metrics.exposition().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(metrics, name, **labels):
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def test_calls_are_counted_per_service_and_status_class():
    metrics = RegionMetrics("ESSRV01")
    for status in (200, 200, 200, 400, 503):
        metrics.observe("srv01.CBLAPP01", status, 0.002)
    metrics.observe("tst.ECHOPARM", 200, 0.004)
    assert value(metrics, "esrt_requests_total", service="srv01.CBLAPP01", code="2xx") == 3
    assert value(metrics, "esrt_requests_total", service="srv01.CBLAPP01", code="4xx") == 1
    assert value(metrics, "esrt_requests_total", service="srv01.CBLAPP01", code="5xx") == 1
    assert value(metrics, "esrt_errors_total", service="srv01.CBLAPP01") == 2
    assert value(metrics, "esrt_errors_total", service="tst.ECHOPARM") == 0
    assert value(metrics, "esrt_request_duration_seconds_count", service="srv01.CBLAPP01") == 5
    assert value(metrics, "esrt_request_duration_seconds_sum",
                 service="tst.ECHOPARM") == pytest.approx(0.004)
    # 2 ms falls in the 2.5 ms bucket, not in the 1 ms one.
    assert value(metrics, "esrt_request_duration_seconds_bucket", service="srv01.CBLAPP01",
                 le="0.001") == 0
    assert value(metrics, "esrt_request_duration_seconds_bucket", service="srv01.CBLAPP01",
                 le="0.0025") == 5
    assert value(metrics, "esrt_region_info", server="ESSRV01") == 1


def test_services_stats_give_calls_errors_average_and_p99():
    metrics = RegionMetrics("ESSRV01")
    for ms in range(1, 101):  # 1 .. 100 ms
        metrics.observe("srv01.CBLAPP01", 200 if ms % 10 else 500, ms / 1000.0)
    stats = metrics.services_stats()
    assert stats == {"srv01.CBLAPP01": {"calls": 100, "errors": 10, "avg_ms": 50.5,
                                        "p99_ms": 99.0}}
    assert json.loads(json.dumps(stats)) == stats  # goes into the JSON status document


def test_p99_covers_only_the_recent_window_while_totals_cover_everything():
    metrics = RegionMetrics("ESSRV01", window=10)
    for _ in range(50):
        metrics.observe("srv01.A", 200, 5.0)  # old, slow calls
    for _ in range(10):
        metrics.observe("srv01.A", 200, 0.001)
    stats = metrics.services_stats()["srv01.A"]
    assert stats["calls"] == 60 and stats["p99_ms"] == 1.0
    assert stats["avg_ms"] == pytest.approx((50 * 5000 + 10 * 1) / 60, abs=0.001)


def test_percentile_nearest_rank():
    assert percentile([], 0.99) == 0.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile(list(range(1, 1001)), 0.99) == 990
    assert percentile([3, 1, 2], 0.5) == 2


def test_a_bad_window_is_refused_with_a_remedy():
    with pytest.raises(ValueError, match="positive number of calls.*use e.g. 1000"):
        RegionMetrics("ESSRV01", window=0)


def test_each_region_has_its_own_registry():
    first, second = RegionMetrics("ESSRV01"), RegionMetrics("ESSRV02")
    first.observe("srv01.A", 200, 0.001)
    assert value(first, "esrt_requests_total", service="srv01.A", code="2xx") == 1
    assert value(second, "esrt_requests_total", service="srv01.A", code="2xx") is None
    assert value(second, "esrt_region_info", server="ESSRV02") == 1


@pytest.mark.parametrize("attempts, committed, expected", [
    (1, True, {"committed": 1, "aborted": 0, "reruns": 0}),
    (3, True, {"committed": 1, "aborted": 2, "reruns": 2}),
    (5, False, {"committed": 0, "aborted": 5, "reruns": 4}),
])
def test_transactions_committed_aborted_and_deadlock_reruns(attempts, committed, expected):
    metrics = RegionMetrics("ESSRV01")
    metrics.transaction(attempts, committed)
    assert value(metrics, "esrt_transactions_total", outcome="committed") == expected["committed"]
    assert value(metrics, "esrt_transactions_total", outcome="aborted") == expected["aborted"]
    assert value(metrics, "esrt_deadlock_reruns_total") == expected["reruns"]


# -- wired to a supervisor and dispatcher (stand-in SEP processes, fake clock) ----------------

def wired(made, seps=1, store=None):  # noqa: F811 - `made` is the fixture's value
    reactor, sup, paths = made(seps=seps)
    sup.store = store
    metrics = RegionMetrics("ESSRV01")
    metrics.watch(sup)
    dispatcher = Dispatcher(reactor, sup, metrics=metrics)
    sup.observer.add(dispatcher)
    sup.observer.add(metrics)
    sup.start()
    return reactor, sup, dispatcher, metrics


def test_sep_states_and_restarts_follow_the_supervisor(made):  # noqa: F811
    reactor, sup, dispatcher, metrics = wired(made, seps=2)
    assert value(metrics, "esrt_seps", state=SEPState.STARTING.value) == 2
    for process in reactor.processes:
        process.ready()
    reactor.advance(10)
    assert value(metrics, "esrt_seps", state=SEPState.IDLE.value) == 2
    assert value(metrics, "esrt_seps", state=SEPState.STARTING.value) == 0
    assert value(metrics, "esrt_sep_restarts_total") == 0
    reactor.processes[0].exit(code=1)  # died by itself
    assert value(metrics, "esrt_seps", state=SEPState.BACKOFF.value) == 1
    reactor.advance(sup.max_restart_delay)
    assert value(metrics, "esrt_sep_restarts_total") == 1
    assert value(metrics, "esrt_seps", state=SEPState.STARTING.value) == 1


def test_a_call_rerun_after_an_outside_kill_is_counted_once_as_a_request(made):  # noqa: F811
    reactor, sup, dispatcher, metrics = wired(made, seps=1, store=FakeStore())
    reactor.processes[0].ready()
    results = []
    dispatcher.submit("srv01.CBLAPP01", b"{}").addCallback(results.append)
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert value(metrics, "esrt_killed_reruns_total") == 1
    reactor.advance(sup.max_restart_delay)
    process = reactor.processes[1]
    process.ready()
    header, _ = process.requests()[-1]
    process.frame({"id": header["id"], "status": 200, "rc": 0, "attempts": 2,
                   "committed": True}, b"{}")
    assert results[0].status == 200
    assert value(metrics, "esrt_requests_total", service="srv01.CBLAPP01", code="2xx") == 1
    assert value(metrics, "esrt_request_duration_seconds_count", service="srv01.CBLAPP01") == 1
    assert value(metrics, "esrt_transactions_total", outcome="committed") == 1
    assert value(metrics, "esrt_deadlock_reruns_total") == 1
    assert value(metrics, "esrt_sep_restarts_total") == 1
    assert metrics.services_stats()["srv01.CBLAPP01"]["calls"] == 1


def test_environment_recoveries_are_counted(made):  # noqa: F811
    reactor, sup, dispatcher, metrics = wired(made, seps=2, store=BrokenEnvironmentStore())
    for process in reactor.processes:
        process.ready()
    reactor.processes[0].exit(sig=signal.SIGKILL)
    assert value(metrics, "esrt_environment_recoveries_total", result="ok") == 0
    reactor.processes[1].exit(sig=signal.SIGKILL)
    assert value(metrics, "esrt_environment_recoveries_total", result="ok") == 1
    assert value(metrics, "esrt_environment_recoveries_total", result="failed") == 0


def test_unavailable_answers_count_as_errors(made):  # noqa: F811
    from esrt.states import ExitCode
    reactor, sup, dispatcher, metrics = wired(made, seps=1)
    reactor.processes[0].exit(code=int(ExitCode.BOOT_FAILED))
    results = []
    dispatcher.submit("srv01.A", b"{}").addCallback(results.append)
    assert results[0].status == 503
    assert metrics.services_stats()["srv01.A"] == {"calls": 1, "errors": 1, "avg_ms": 0.0,
                                                   "p99_ms": 0.0}
    assert value(metrics, "esrt_requests_total", service="srv01.A", code="5xx") == 1


def test_metrics_route_serves_the_text_format(made):  # noqa: F811
    reactor, sup, dispatcher, metrics = wired(made, seps=1)
    metrics.observe("srv01.A", 200, 0.001)
    admission = Admission("ESSRV01", None, dispatcher, max_body=1024)
    resource = ServicesResource(admission, lambda: (True, "Started"), lambda what, problem: None)
    request = HttpRequest(None, b"GET", b"/metrics", b"HTTP/1.1", {})
    body = resource.render(request)
    assert request.code == 200
    assert request.response_headers[b"content-type"].startswith(b"text/plain")
    assert b'esrt_requests_total{code="2xx",service="srv01.A"} 1.0' in body
    post = HttpRequest(None, b"POST", b"/metrics", b"HTTP/1.1", {})
    resource.render(post)
    assert post.code == 405


# -- the SEP side: attempts and commit in the reply header -------------------------------------

class StandInEsfh:
    """Stands in for the ESFH binding's transaction calls; deadlocks the first `losses` runs."""

    def __init__(self, losses):
        self.losses = losses
        self.log = []

    def begin(self):
        self.log.append("begin")

    def commit(self):
        self.log.append("commit")

    def abort(self):
        self.log.append("abort")

    def doomed(self):
        return False

    def request_writes(self):
        return False

    def bound_call(self):
        if self.losses:
            self.losses -= 1
            raise EsfhError("deadlock", code=DB_LOCK_DEADLOCK)
        return 0


class StandInService:
    name = "srv01.CBLAPP01"

    def __init__(self, esfh):
        self.bound_call = esfh.bound_call

    def load(self, body):
        pass

    def reply_body(self):
        return b'{"LK-COUNTER": 1}'


class StandInCache:
    def __init__(self, esfh):
        self.service = StandInService(esfh)

    def get(self, name):
        return self.service


@pytest.mark.parametrize("losses, status, attempts, committed", [
    (0, 200, 1, True), (2, 200, 3, True), (Transactions.max_attempts, 503,
                                           Transactions.max_attempts, False)])
def test_reply_header_says_how_many_runs_and_whether_it_committed(losses, status, attempts,
                                                                  committed):
    esfh = StandInEsfh(losses)
    header, _ = handle_call(StandInCache(esfh), Transactions(esfh),
                            {"service": "srv01.CBLAPP01", "key": "r:1"}, b"{}")
    assert (header["status"], header["attempts"], header["committed"]) == (status, attempts,
                                                                           committed)
    assert esfh.log.count("abort") == attempts - (1 if committed else 0)


def test_a_status_class_keeps_the_time_its_first_call_was_counted(monkeypatch):
    import esrt.region.metrics as metrics_module
    now = [1000.0]
    monkeypatch.setattr(metrics_module.time, "time", lambda: now[0])
    metrics = RegionMetrics("ESSRV01")
    metrics.observe("srv01.A", 200, 0.001)
    now[0] = 2000.0
    metrics.observe("srv01.A", 202, 0.001)  # another 2xx, later: class 2 is not created again
    now[0] = 3000.0
    metrics.observe("srv01.A", 404, 0.001)
    samples = [sample for family in text_string_to_metric_families(
        metrics.exposition().decode()) for sample in family.samples]
    created = {sample.labels["code"]: sample.value for sample in samples
               if sample.name == "esrt_requests_created"}
    counts = {sample.labels["code"]: sample.value for sample in samples
              if sample.name == "esrt_requests_total"}
    assert counts == {"2xx": 2, "4xx": 1}
    assert created == {"2xx": 1000.0, "4xx": 3000.0}
