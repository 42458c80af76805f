"""The region's recent figures over time, for the graphs of mfds's Monitor & Control page.

Every `interval` seconds (the server setting history_interval, 5 by default) the region closes
one point: calls and errors per second, the p50 and p99 latency of the calls answered in that
interval (the last 1000 of each service at higher rates), for the whole server and per
service, with the queue depth and the SEPs busy
(averaged over one-second samples, and their peak). The last hour's points (at least) are
kept in a ring in memory and appended to run/history.jsonl, which mfds reads
(GET /api/servers/{name}/history): the graphs survive mfds's restarts, and begin again with
the region's own (the file is emptied when it starts), as its counters do.
"""

import collections
import itertools
import json
import math
import time

from twisted.internet import task

from esrt.home import write_text_atomic
from esrt.region.metrics import percentile
from esrt.states import SEPState

SPAN_SECONDS = 3600  # the points kept: at least the last hour's
SAMPLE_SECONDS = 1.0  # how often the queue depth and busy SEPs are looked at


class History:
    """Points of a region's figures, one per interval, for the last SPAN_SECONDS."""

    def __init__(self, reactor, metrics, dispatcher, supervisor, path, interval=5.0,
                 clock=time.time, monotonic=time.monotonic, on_problem=None):
        """`metrics` (RegionMetrics) holds the per-service figures, `dispatcher` its queue,
        `supervisor` its SEPs; points go to file `path` as JSON lines. Intervals are timed
        by `monotonic` (a clock stepped by NTP moves neither), points stamped by `clock`.
        `on_problem(text)` hears, once, why a point could not be made or written."""
        self.reactor = reactor
        self.monotonic = monotonic
        self.on_problem = on_problem
        self._problem_told = False
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.supervisor = supervisor
        self.path = path
        self.interval = float(interval)
        self.clock = clock
        self.capacity = math.ceil(SPAN_SECONDS / self.interval)
        self.points = collections.deque(maxlen=self.capacity)
        self._sample_every = min(SAMPLE_SECONDS, self.interval)
        self._queued, self._busy = [], []
        self._last = {}  # service -> (answered calls, errors) at the last point
        self._last_time = None
        self._lines_in_file = 0
        self._loop = None

    def start(self):
        """Begin a new history (the file is emptied) and sample from now on; the graphs
        are no reason for a region not to start."""
        try:
            self._write_all([])
        except OSError as exc:
            self._tell(f"cannot empty {self.path}: {exc}")
        self._last = {name: (entry.ok + entry.errors, entry.errors)
                      for name, entry in self.metrics._services.items()}
        self._last_time = self.monotonic()
        self._loop = task.LoopingCall(self._sample)
        self._loop.clock = self.reactor
        self._loop.start(self._sample_every, now=False)

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _sample(self):
        # Whatever goes wrong here must not end the LoopingCall (no more points) nor reach
        # the reactor: it is told once, and the next sample tries again.
        try:
            self._queued.append(self.dispatcher.queued)
            self._busy.append(sum(1 for sep in self.supervisor.seps
                                  if sep.state == SEPState.BUSY))
            # By the clock, not by samples: a busy reactor may skip some.
            if self.monotonic() - self._last_time >= self.interval - self._sample_every / 2:
                self.close_point()
        except Exception as exc:  # noqa: BLE001 - see above
            self._queued, self._busy = [], []
            self._tell(f"{type(exc).__name__}: {exc}")

    def _tell(self, problem):
        if self.on_problem is not None and not self._problem_told:
            self._problem_told = True
            self.on_problem(problem)

    def close_point(self):
        """Close the current interval: its point, appended to the ring and to the file."""
        now, stamp = self.monotonic(), self.clock()
        seconds = max(1e-9, now - (self._last_time or now - self.interval))
        services, latencies, calls_total, errors_total = {}, [], 0, 0
        for name, entry in self.metrics._services.items():
            answered = entry.ok + entry.errors
            before_calls, before_errors = self._last.get(name, (0, 0))
            calls, errors = answered - before_calls, entry.errors - before_errors
            self._last[name] = (answered, entry.errors)
            if calls <= 0:
                continue
            # The window holds the latest latencies: this interval's are its last `calls`
            # (its last DEFAULT_WINDOW ones, at a higher rate than that per interval).
            recent = list(itertools.islice(reversed(entry.window), calls))
            latencies.extend(recent)
            services[name] = {"calls": round(calls / seconds, 3),
                              "errors": round(errors / seconds, 3),
                              "p50": round(percentile(recent, 0.5), 3),
                              "p99": round(percentile(recent, 0.99), 3)}
            calls_total += calls
            errors_total += errors
        queued, busy = self._queued or [0], self._busy or [0]
        point = {"t": round(stamp, 3), "calls": round(calls_total / seconds, 3),
                 "errors": round(errors_total / seconds, 3),
                 "p50": round(percentile(latencies, 0.5), 3),
                 "p99": round(percentile(latencies, 0.99), 3),
                 "queued": round(sum(queued) / len(queued), 2), "queued_max": max(queued),
                 "busy": round(sum(busy) / len(busy), 2), "busy_max": max(busy),
                 "seps": len(self.supervisor.seps), "services": services}
        self._queued, self._busy = [], []
        self._last_time = now
        self.points.append(point)
        self._append(point)  # a full disk raises here: the ring keeps the point
        return point

    def _append(self, point):
        if self._lines_in_file >= 2 * self.capacity:
            # Bounded on disk too: rewritten with the ring's points once twice as long.
            self._write_all(self.points)
            return
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(point, separators=(",", ":")) + "\n")
        self._lines_in_file += 1

    def _write_all(self, points):
        write_text_atomic(self.path, "".join(json.dumps(p, separators=(",", ":")) + "\n"
                                             for p in points))
        self._lines_in_file = len(points)

