"""Request dispatcher: a FIFO of pending calls; each idle SEP takes the oldest.

Everything runs on the reactor thread, so the queue needs no lock and a call costs a few
attribute updates; there is no thread per request.
"""

import collections
import time

from twisted.internet import defer

from esrt.region.supervisor import error_reply


class _Pending:
    __slots__ = ("service", "body", "deferred", "submitted")

    def __init__(self, service, body, deferred, submitted):
        self.service = service
        self.body = body
        self.deferred = deferred
        self.submitted = submitted


class Dispatcher:
    """Queues calls for the supervisor's SEPs and keeps the request statistics."""

    def __init__(self, reactor, supervisor):
        self.reactor = reactor
        self.supervisor = supervisor
        self._queue = collections.deque()
        self._drain_waiters = []
        self.requests = 0
        self.errors = 0
        self.active = 0
        self._total_ms = 0.0
        self.started = time.time()
        supervisor.on_idle = self._sep_idle
        supervisor.on_unavailable = self._fail_queued

    def submit(self, service, body):
        """Queue a call of `service` with JSON `body` bytes; the Deferred fires with a Reply.

        Cancelling the Deferred (the client went away) drops a call that has not started yet.
        A call that already runs on a SEP finishes there; its reply is simply not delivered.
        """
        if not self.supervisor.can_serve():
            self.requests += 1
            self.errors += 1
            return defer.succeed(self._unavailable(service))
        deferred = defer.Deferred()
        self.active += 1
        self._queue.append(_Pending(service, body, deferred, self.reactor.seconds()))
        self._pump()
        return deferred

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
            sep.call(pending.service, pending.body).addCallback(self._replied, pending)

    def _sep_idle(self, sep):
        self._pump()

    def _replied(self, reply, pending):
        # Deliver first, then count: a drain() waiter (shutdown) must only run once the reply
        # has been handed to its connection.
        if not pending.deferred.called:
            pending.deferred.callback(reply)
        self._done(pending, reply)

    def _done(self, pending, reply):
        self.active -= 1
        if reply is not None:
            self.requests += 1
            self._total_ms += (self.reactor.seconds() - pending.submitted) * 1000.0
            if reply.status != 200:
                self.errors += 1
        if self.active == 0 and self._drain_waiters:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _unavailable(self, service):
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

    def stats(self):
        """The "stats" part of the status document."""
        average = self._total_ms / self.requests if self.requests else 0.0
        return {"requests": self.requests, "errors": self.errors, "active": self.active,
                "max_tasks": len(self.supervisor.seps), "avg_latency_ms": round(average, 3),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started))}
