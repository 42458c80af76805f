"""Request dispatcher: a FIFO of pending calls; each idle SEP takes the oldest.

Everything runs on the reactor thread, so the queue needs no lock and a call costs a few
attribute updates; there is no thread per request.
"""

import collections
import itertools
import time
import uuid

from twisted.internet import defer

from esrt.region.metrics import RegionMetrics
from esrt.region.supervisor import RETRY, error_reply


class _Pending:
    __slots__ = ("service", "body", "deferred", "submitted", "request", "attempts", "sep",
                 "sep_deferred")

    def __init__(self, service, body, deferred, submitted, request):
        self.service = service
        self.body = body
        self.deferred = deferred
        self.submitted = submitted
        self.request = request
        self.attempts = 0
        self.sep = None
        self.sep_deferred = None


class Dispatcher:
    """Queues calls for the supervisor's SEPs and keeps the request statistics."""

    # Runs of one call whose SEP was killed from outside before it committed.
    max_attempts = 10
    # How long the reply of a call without an idempotency key is kept for crash recovery.
    reply_ttl = 600

    def __init__(self, reactor, supervisor, idempotency_ttl=86400, metrics=None):
        """`metrics` is the region's RegionMetrics (default: a new one of its own)."""
        self.reactor = reactor
        self.supervisor = supervisor
        self.metrics = metrics if metrics is not None else RegionMetrics(supervisor.server)
        self.idempotency_ttl = idempotency_ttl
        self._queue = collections.deque()
        # Why nothing is served while the region is a standby standing by (None when active).
        self.inactive_reason = None
        # Names of calls without an idempotency key in the reply store: unique across the
        # region's restarts through a random prefix, and cheaper than a uuid4 per call (which
        # reads the kernel's random source every time).
        self._key_prefix = uuid.uuid4().hex[:16] + "-"
        self._key_numbers = itertools.count(1)
        self._drain_waiters = []
        self.requests = 0
        self.errors = 0
        self.active = 0
        self._total_ms = 0.0
        self.started = time.time()
        supervisor.on_idle = self._sep_idle
        supervisor.on_unavailable = self._fail_queued

    def submit(self, service, body, idempotency_key=None):
        """Queue a call of `service` with JSON `body` bytes; the Deferred fires with a Reply.

        With an idempotency key, a call that already committed under that key returns the
        stored reply instead of running again. Cancelling the Deferred (the client went away)
        drops a call that has not started yet and asks the SEP running it to roll it back.
        """
        if self.inactive_reason or not self.supervisor.can_serve():
            self.requests += 1
            self.errors += 1
            reply = self._unavailable(service)
            self.metrics.observe(service, reply.status, 0.0)
            return defer.succeed(reply)
        if idempotency_key:
            request = {"key": "i:" + idempotency_key, "idempotent": True,
                       "ttl": self.idempotency_ttl}
        else:
            request = {"key": "r:%s%d" % (self._key_prefix, next(self._key_numbers)),
                       "ttl": self.reply_ttl}
        pending = _Pending(service, body, None, self.reactor.seconds(), request)
        pending.deferred = defer.Deferred(canceller=lambda _: self._cancel(pending))
        self.active += 1
        self._queue.append(pending)
        self._pump()
        return pending.deferred

    def _cancel(self, pending):
        if pending.sep is not None:
            pending.sep.cancel(pending.sep_deferred)

    @property
    def queued(self):
        return len(self._queue)

    def _pump(self):
        while self._queue:
            sep = self.supervisor.idle_sep()
            if sep is None:
                return
            pending = self._queue.popleft()
            if pending.deferred.called:  # cancelled while queued
                self._done(pending, None)
                continue
            pending.attempts += 1
            pending.sep = sep
            pending.sep_deferred = sep.call(pending.service, pending.body, pending.request)
            pending.sep_deferred.addCallback(self._replied, pending)

    def _sep_idle(self, sep):
        self._pump()

    def _replied(self, reply, pending):
        pending.sep = pending.sep_deferred = None
        if reply is RETRY:
            if pending.attempts < self.max_attempts and not pending.deferred.called:
                self.metrics.killed_rerun()
                self._queue.appendleft(pending)
                self._pump()
                return
            reply = error_reply(503, "killed", f"{pending.service}: its SEP was killed from "
                                f"outside {pending.attempts} times while running it; each run "
                                "was rolled back; retry later")
        # Deliver first, then count: a drain() waiter (shutdown) must only run once the reply
        # has been handed to its connection.
        if not pending.deferred.called:
            pending.deferred.callback(reply)
        self._done(pending, reply)

    def _done(self, pending, reply):
        self.active -= 1
        if reply is not None:
            seconds = self.reactor.seconds() - pending.submitted
            self.requests += 1
            self._total_ms += seconds * 1000.0
            if reply.status != 200:
                self.errors += 1
            self.metrics.observe(pending.service, reply.status, seconds)
        if self.active == 0 and self._drain_waiters:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _unavailable(self, service):
        if self.inactive_reason:
            return error_reply(503, "unavailable", f"{service}: {self.inactive_reason}")
        return error_reply(503, "unavailable",
                           f"no SEP can run {service} on {self.supervisor.server}: every SEP has "
                           "failed or the server is stopping; see the console log, fix the cause "
                           "and restart the server")

    def _fail_queued(self):
        """No SEP is left: everything still queued gets 503 now rather than waiting forever."""
        while self._queue:
            pending = self._queue.popleft()
            reply = self._unavailable(pending.service)
            self._done(pending, reply)
            if not pending.deferred.called:
                pending.deferred.callback(reply)

    def drain(self):
        """Return a Deferred that fires once no call is queued or running."""
        if self.active == 0:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._drain_waiters.append(waiter)
        return waiter

    def services_stats(self):
        """The "services_stats" part of the status document (see RegionMetrics)."""
        return self.metrics.services_stats()

    def stats(self):
        """The "stats" part of the status document."""
        average = self._total_ms / self.requests if self.requests else 0.0
        return {"requests": self.requests, "errors": self.errors, "active": self.active,
                "max_tasks": len(self.supervisor.seps), "avg_latency_ms": round(average, 3),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started))}
