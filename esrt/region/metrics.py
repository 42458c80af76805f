"""Request statistics and Prometheus metrics of one region.

One RegionMetrics per region holds its own prometheus_client CollectorRegistry (never the
process-global one, so that two regions in one test process do not mix) and the per-service
figures of the status document ("services_stats": calls, errors, average and p99 latency).

The hot path is `observe()`, called once per finished call on the reactor thread: it looks up the
service's cached entry and does a few attribute updates. The per-call figures (calls by status
class, errors, the latency histogram, transactions) are plain numbers that a collector turns
into Prometheus families when /metrics is scraped: prometheus_client's own metric objects take a
lock on every update, which cost the region as much as encoding the call's frame. SEP states
are read from the supervisor only when /metrics is scraped, too.
"""

import bisect
import collections
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from esrt.region.observer import SupervisorObserver
from esrt.states import SEPState

# Latency buckets in seconds: COBOL services answer in well under a millisecond up to the
# request timeout (default 60 s), so the buckets span that range.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)
# The buckets' "le" labels, as prometheus_client writes them.
BUCKET_LABELS = (*(floatToGoString(bound) for bound in LATENCY_BUCKETS), "+Inf")
# Recent calls per service over which p99 is computed.
DEFAULT_WINDOW = 1000
STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

__all__ = ["RegionMetrics", "ServiceMetrics", "CONTENT_TYPE_LATEST", "LATENCY_BUCKETS"]


def percentile(values, fraction):
    """The nearest-rank percentile (0 < fraction <= 1) of `values`; 0.0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = -(-len(ordered) * fraction // 1)  # ceil without importing math
    return ordered[max(0, int(rank) - 1)]


class ServiceMetrics:
    """The figures of one service: totals by status class, a latency histogram, a window of
    recent latencies."""

    __slots__ = ("name", "ok", "errors", "total_ms", "window", "by_class", "buckets",
                 "created", "class_created")

    def __init__(self, name, window):
        self.name = name
        # Calls answered 200, and the others: the 200s, nearly every call, are counted apart
        # from by_class, a dict update less per call.
        self.ok = 0
        self.errors = 0
        self.total_ms = 0.0
        self.window = collections.deque(maxlen=window)
        self.by_class = {}  # status class (2 for 2xx, ...) -> calls, but for the 200s
        # Calls per latency bucket (not cumulative), the last one past every bound.
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.created = time.time()
        self.class_created = {}  # status class -> when its first call was counted

    def observe(self, status, seconds):
        """Count one finished call with HTTP-like `status` that took `seconds`."""
        if status == 200:
            if not self.ok:
                self.class_created.setdefault(2, time.time())
            self.ok += 1
        else:
            self.errors += 1
            status_class = status // 100
            calls = self.by_class.get(status_class)
            if calls is None:
                calls = 0
                # Class 2 may have been created by a 200 already.
                self.class_created.setdefault(status_class, time.time())
            self.by_class[status_class] = calls + 1
        # A bucket counts the calls that took at most its bound (Prometheus's "le").
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        milliseconds = seconds * 1000.0
        self.total_ms += milliseconds
        self.window.append(milliseconds)

    @property
    def calls(self):
        return self.ok + self.errors

    def calls_by_class(self):
        """{status class (2 for 2xx, ...): calls}, the 200s (counted apart) included."""
        by_class = dict(self.by_class)
        if self.ok:
            by_class[2] = by_class.get(2, 0) + self.ok
        return by_class

    def cumulative_buckets(self):
        """[(le, calls that took at most le)], "+Inf" last, as a histogram exposes them."""
        total, cumulative = 0, []
        for bound, count in zip(BUCKET_LABELS, self.buckets):
            total += count
            cumulative.append((bound, total))
        return cumulative

    def snapshot(self):
        """{"calls", "errors", "avg_ms", "p99_ms"} for the status document."""
        average = self.total_ms / self.calls if self.calls else 0.0
        return {"calls": self.calls, "errors": self.errors, "avg_ms": round(average, 3),
                "p99_ms": round(percentile(self.window, 0.99), 3)}


class RegionMetrics(SupervisorObserver):
    """Every metric of one region, in a registry of its own; observes the supervisor's SEP
    restarts, transactions and recoveries."""

    def __init__(self, server, window=DEFAULT_WINDOW):
        """`server` is the region's name; `window` the number of recent calls per service
        over which p99 is computed."""
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"metrics window must be a positive number of calls, not "
                             f"{window!r}; use e.g. {DEFAULT_WINDOW}")
        self.server = server
        self.window = window
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._services = {}
        Gauge("esrt_region_info", "Constant 1, labelled with the region's server name",
              ["server"], registry=registry).labels(server=server).set(1)
        self.committed = self.aborted = self.deadlock_reruns = 0
        self.created = time.time()
        registry.register(_CallFigures(self))
        self._sep_states = Gauge("esrt_seps", "SEPs in each life-cycle state", ["state"],
                                 registry=registry)
        self._restarts = Counter("esrt_sep_restarts", "SEP processes started again after the "
                                 "previous one ended", registry=registry)
        self._killed_reruns = Counter("esrt_killed_reruns", "Calls run again because their SEP "
                                      "was killed from outside before the call committed",
                                      registry=registry)
        self._recoveries = Counter("esrt_environment_recoveries", "Full recoveries of the data "
                                   "environment after a SEP died holding it, by result",
                                   ["result"], registry=registry)
        for result in ("ok", "failed"):
            self._recoveries.labels(result=result)
        self._refused = Counter("esrt_refused", "Requests a listener answered itself without "
                                "calling a service (unknown service, malformed or oversized "
                                "request, ...), by conversation type and error code",
                                ["conversation", "code"], registry=registry)

    # -- per call ----------------------------------------------------------------------------

    def service(self, name):
        """The ServiceMetrics of service `name` (created on its first call)."""
        entry = self._services.get(name)
        if entry is None:
            entry = self._services[name] = ServiceMetrics(name, self.window)
        return entry

    def observe(self, service, status, seconds):
        """Count one answered call of `service`: reply `status`, `seconds` from receipt."""
        entry = self._services.get(service)
        if entry is None:
            entry = self.service(service)
        entry.observe(status, seconds)

    def refused(self, conversation, code):
        """A listener of `conversation` ("http", "esrt") answered error `code` itself.

        Not labelled by service: the names in refused requests are whatever clients sent.
        """
        self._refused.labels(conversation=conversation, code=code).inc()

    # -- events ------------------------------------------------------------------------------

    def sep_restarted(self, sep=None):
        """A SEP process was started again."""
        self._restarts.inc()

    def transaction(self, attempts, committed):
        """A SEP ran a call in `attempts` transactions (deadlock re-runs included); the last
        one committed or not. Every run but a committed last one was aborted."""
        if attempts == 1 and committed:  # nearly every call
            self.committed += 1
            return
        attempts = max(1, int(attempts))
        self.deadlock_reruns += attempts - 1
        if committed:
            self.committed += 1
            self.aborted += attempts - 1
        else:
            self.aborted += attempts

    def killed_rerun(self):
        """A call is run again because its SEP was killed from outside."""
        self._killed_reruns.inc()

    def recovery_ended(self, ok=True):
        """The data environment went through a full recovery (`ok`: it worked)."""
        self._recoveries.labels(result="ok" if ok else "failed").inc()

    def watch_region(self, serving):
        """Report whether the region serves its data (`serving()`: False while a standby
        stands by), when it started, and count its takeovers (see activated)."""
        Gauge("esrt_region_active", "1 while the region serves its data, 0 while it is a "
              "standby standing by", registry=self.registry).set_function(
            lambda: 1 if serving() else 0)
        Gauge("esrt_region_start_time_seconds", "When the region process started (Unix time)",
              registry=self.registry).set(self.created)
        self._activations = Counter("esrt_activations", "Takeovers: a standby region "
                                    "activated (esrt server activate, the cluster's agent)",
                                    registry=self.registry)

    def activated(self):
        """A standby region took over (it serves its data from now on)."""
        self._activations.inc()

    def watch(self, supervisor):
        """Report the SEP states of `supervisor` (its restarts, transactions and recoveries come
        as its observer)."""
        seps = supervisor.seps
        for state in SEPState:
            self._sep_states.labels(state=state.value).set_function(
                lambda state=state: sum(1 for sep in seps if sep.state == state))

    # -- output ------------------------------------------------------------------------------

    def services_stats(self):
        """{"PACKAGE.PROGRAM": {"calls", "errors", "avg_ms", "p99_ms"}} for the status document."""
        return {name: entry.snapshot() for name, entry in sorted(self._services.items())}

    def exposition(self):
        """The registry in the Prometheus text format (bytes); serve with CONTENT_TYPE_LATEST."""
        return generate_latest(self.registry)


class _CallFigures:
    """Turns a RegionMetrics' per-call figures into Prometheus families when scraped."""

    def __init__(self, metrics):
        self.metrics = metrics

    def collect(self):
        metrics = self.metrics
        requests = CounterMetricFamily("esrt_requests", "Service calls answered, by service "
                                       "and status class of the reply", labels=["service", "code"])
        errors = CounterMetricFamily("esrt_errors", "Service calls answered with a status "
                                     "other than 200", labels=["service"])
        latency = HistogramMetricFamily("esrt_request_duration_seconds", "Time from receiving "
                                        "a call to its reply, queueing included",
                                        labels=["service"])
        for name, entry in sorted(metrics._services.items()):
            for status_class, calls in sorted(entry.calls_by_class().items()):
                requests.add_metric([name, STATUS_CLASSES.get(status_class, "other")], calls,
                                    created=entry.class_created[status_class])
            errors.add_metric([name], entry.errors, created=entry.created)
            latency.add_metric([name], entry.cumulative_buckets(), entry.total_ms / 1000.0)
        transactions = CounterMetricFamily("esrt_transactions", "Service call transactions, by "
                                           "outcome", labels=["outcome"])
        transactions.add_metric(["committed"], metrics.committed, created=metrics.created)
        transactions.add_metric(["aborted"], metrics.aborted, created=metrics.created)
        reruns = CounterMetricFamily("esrt_deadlock_reruns", "Runs of a call repeated because "
                                     "it lost a deadlock", metrics.deadlock_reruns,
                                     created=metrics.created)
        return [requests, errors, latency, transactions, reruns]
