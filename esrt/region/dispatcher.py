"""Request dispatcher: a FIFO of pending calls; each idle SEP takes the oldest.

Everything runs on the reactor thread, so the queue needs no lock and a call costs a few
attribute updates; there is no thread per request.

When callers wait because every SEP is busy, an idle SEP takes several of the oldest calls at
once (a batch: its share of the queue, at most `max_batch`). It gets them in one write, runs
them one after the other, makes all their commits durable with one log sync and answers them
in one write: under load, a SEP wakes up and syncs once for many calls instead of once each.
A lone caller still goes straight to an idle SEP, alone.
"""

import collections
import itertools
import math
import time
import uuid

from twisted.internet import defer

from esrt.procs import usable_cores
from esrt.region.metrics import RegionMetrics
from esrt.region.observer import SupervisorObserver
from esrt.region.replies import Rerun, error_reply


class _Pending:
    """One call from its admission to its answer: the dispatcher's queue entry, then the call
    record its SEP runs (esrt.region.sepslot.SEP.send_batch: service, body, key, idempotent,
    ttl and answered), and the ticket its sender may withdraw. One object for all three: this
    is the path of every call."""

    __slots__ = ("dispatcher", "service", "body", "key", "idempotent", "ttl", "reply_to",
                 "token", "submitted", "attempts", "sep", "alone", "done")

    def __init__(self, dispatcher, service, body, key, idempotent, ttl, reply_to, token,
                 submitted):
        self.dispatcher = dispatcher
        self.service = service
        self.body = body
        # The call's name in the reply store (the SEP stores its reply there when it commits).
        self.key = key
        self.idempotent = idempotent
        self.ttl = ttl
        self.reply_to = reply_to
        self.token = token
        self.submitted = submitted
        self.attempts = 0
        self.sep = None  # the SEP running it now
        # Run in a batch of its own (its batch died, and it may be why).
        self.alone = False
        # Answered, or withdrawn by its sender: reply_to is not called (again).
        self.done = False

    def answered(self, reply):
        """Its SEP's answer (a Reply, or a Rerun)."""
        self.dispatcher.replied(reply, self)

    def withdraw(self):
        """The sender went away: a call not started is dropped, a running one rolled back;
        reply_to is not called."""
        if not self.done:
            self.done = True
            if self.sep is not None:
                self.sep.cancel(self)


def _fire(reply, deferred, ticket):
    deferred.callback(reply)


class Dispatcher(SupervisorObserver):
    """Queues calls for the supervisor's SEPs and keeps the request statistics."""

    # Runs of one call whose SEP was killed from outside before it committed.
    max_attempts = 10
    # How long the reply of a call without an idempotency key is kept for crash recovery.
    reply_ttl = 600
    # Most calls one SEP gets in one batch.
    max_batch = 8

    def __init__(self, reactor, supervisor, idempotency_ttl=86400, metrics=None, cores=None):
        """`metrics` is the region's RegionMetrics (default: a new one of its own); `cores`
        how many SEPs can run at the same time (default: the CPUs this process may use, which
        its SEPs inherit, within its cgroup's CPU quota)."""
        self.reactor = reactor
        self.cores = cores or usable_cores()
        self.supervisor = supervisor
        self.metrics = metrics if metrics is not None else RegionMetrics(supervisor.server)
        self.idempotency_ttl = idempotency_ttl
        self._queue = collections.deque()
        # Calls of a dead SEP to run again, on their way back to the head of the queue.
        self._again = []
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

    def send(self, service, body, idempotency_key, reply_to, token):
        """Queue a call of `service` with JSON `body` bytes; `reply_to(reply, token, ticket)`
        is called once with its Reply.

        Returns the call's ticket, whose withdraw() (the client went away) drops a call that
        has not started yet and asks the SEP running it to roll it back; or None when the call
        was answered at once (ticket None then). With an idempotency key, a call that already
        committed under that key returns the stored reply instead of running again.
        """
        if self.inactive_reason or self.supervisor.refusal \
                or not self.supervisor.can_serve():
            self.requests += 1
            self.errors += 1
            reply = self._unavailable(service)
            self.metrics.observe(service, reply.status, 0.0)
            reply_to(reply, token, None)
            return None
        if idempotency_key:
            key, idempotent, ttl = "i:" + idempotency_key, True, self.idempotency_ttl
        else:
            key = "r:%s%d" % (self._key_prefix, next(self._key_numbers))
            idempotent, ttl = False, self.reply_ttl
        pending = _Pending(self, service, body, key, idempotent, ttl, reply_to, token,
                           self.reactor.seconds())
        self.active += 1
        self._queue.append(pending)
        self._pump()
        return pending

    def submit(self, service, body, idempotency_key=None):
        """send() for callers that want a Deferred: it fires with the Reply; cancelling it
        withdraws the call."""
        ticket = None
        deferred = defer.Deferred(canceller=lambda _: ticket and ticket.withdraw())
        ticket = self.send(service, body, idempotency_key, _fire, deferred)
        return deferred

    @property
    def queued(self):
        return len(self._queue)

    def _pump(self):
        while self._queue:
            sep = self.supervisor.idle_sep()
            if sep is None:
                return
            batch = self._take_batch()
            if not batch:
                continue
            for pending in batch:
                pending.attempts += 1
                pending.sep = sep
            sep.send_batch(batch)

    def _take_batch(self):
        """The oldest queued calls for one SEP: its share of the queue among the SEPs that
        are running, at most max_batch; a call that must run alone goes alone.

        Shared among no more SEPs than there are cores to run them: beyond that, a share left
        to a busy SEP buys no parallelism, only one more wake-up, write and log sync. (A
        bigger batch answers its calls together, so with fewer cores than SEPs a call may
        wait a little longer for the others of its batch: throughput over latency, where the
        cores are what limits both.)"""
        sharing = min(self.supervisor.running_seps(), self.cores)
        share = math.ceil(len(self._queue) / max(1, sharing))
        size = max(1, min(self.max_batch, share))
        batch = []
        while self._queue and len(batch) < size:
            pending = self._queue[0]
            if pending.done:  # withdrawn while queued
                self._queue.popleft()
                self._done(pending, None)
                continue
            if pending.alone and batch:
                break
            batch.append(self._queue.popleft())
            if pending.alone:
                break
        return batch

    def sep_idle(self, sep):
        """A SEP is free (SupervisorObserver): give it the oldest waiting calls."""
        self._pump()

    def replied(self, reply, pending):
        """The answer of a SEP (or of its death) to `pending`: deliver it, or run it again."""
        pending.sep = None
        if isinstance(reply, Rerun) and pending.done:
            self._done(pending, None)  # withdrawn: nobody waits for another run
            return
        if reply is Rerun.ALONE:
            pending.alone = True
            self._run_again(pending)
            return
        if reply is Rerun.RETRY:
            if pending.attempts < self.max_attempts:
                self.metrics.killed_rerun()
                self._run_again(pending)
                return
            reply = error_reply(503, "killed", f"{pending.service}: its SEP was killed from "
                                f"outside {pending.attempts} times while running it; each run "
                                "was rolled back; retry later")
        # Deliver first, then count: a drain() waiter (shutdown) must only run once the reply
        # has been handed to its connection.
        self._deliver(pending, reply)
        self._done(pending, reply)

    def _deliver(self, pending, reply):
        if pending.done:
            return
        pending.done = True
        try:
            pending.reply_to(reply, pending.token, pending)
        except Exception as exc:  # noqa: BLE001 - a sender's bug costs its call, not the others
            self.supervisor.console.log("ESCS5007E", what=pending.service,
                                        problem=f"{type(exc).__name__}: {exc}")

    def _run_again(self, pending):
        # The calls of a dead SEP's batch come back one by one: they go back to the head of
        # the queue together, in their order, on the reactor's next turn.
        self._again.append(pending)
        if len(self._again) == 1:
            self.reactor.callLater(0, self._requeue_again)

    def _requeue_again(self):
        again, self._again = self._again, []
        self._queue.extendleft(reversed(again))
        if self.supervisor.can_serve():
            self._pump()
        else:
            self.unavailable()

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
                # On the next turn: a waiter stops SEPs, which must not happen inside the
                # handling of a SEP's reply or death that brought active to 0.
                self.reactor.callLater(0, waiter.callback, None)

    def _unavailable(self, service):
        if self.inactive_reason:
            return error_reply(503, "unavailable", f"{service}: {self.inactive_reason}")
        if self.supervisor.refusal:
            return error_reply(503, "unavailable", f"{service}: {self.supervisor.refusal}")
        return error_reply(503, "unavailable",
                           f"no SEP can run {service} on {self.supervisor.server}: every SEP has "
                           "failed or the server is stopping; see the console log, fix the cause "
                           "and restart the server")

    def unavailable(self):
        """No call can run now (SupervisorObserver): everything still queued gets 503 now
        rather than waiting forever."""
        while self._queue:
            pending = self._queue.popleft()
            reply = self._unavailable(pending.service)
            self._done(pending, reply)
            self._deliver(pending, reply)

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
