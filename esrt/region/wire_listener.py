"""The "esrt" listener: the binary conversation of esrt.wire in front of the dispatcher.

Each connection decodes request frames, submits every request to the dispatcher as soon as it
is whole (so a pipelining client has several calls running at once) and writes each reply as
it comes back, tagged with its request id. A frame that breaks the format gets one error reply
and ends the connection once the requests already accepted are answered; nothing a client sends
can stop the region.
"""

import json

from twisted.internet import defer, protocol, task, tcp

from esrt import wire
from esrt.region.deadlines import ConnectionClock
from esrt.region.httpserver import Refusal, apply_limits
from esrt.region.replies import json_error
from esrt.region.sendnow import send_now

# After a fatal frame error, how long the rest of the client's stream is read and dropped
# before the connection is closed: closing a socket with unread input makes the kernel send a
# reset, which could destroy the error reply before the client reads it.
DISCARD_SECONDS = 10.0


class WireProtocol(protocol.Protocol):
    """One client connection of an "esrt" listener."""

    def __init__(self):
        self.decoder = None
        self.caller = None  # who calls, on a listener that authenticates (esrt.region.callers)
        self._held = None  # frames waiting behind credentials being checked
        self._policy = None  # the accounts, tokens and rules self.caller was checked with
        self.calls = set()  # the tickets of the calls still queued or running
        self.broken = False  # a fatal frame error was answered; only draining now
        self.paused = False
        self._discard = None
        self._clock = None  # the head and idle time limits (from connectionMade on)

    def connectionMade(self):
        self.decoder = wire.FrameDecoder(self.factory.max_body + wire.REQUEST_OVERHEAD)
        self.factory.connections.add(self)
        self._clock = ConnectionClock(self.factory.reactor, self._time_is_up)
        self._arm()
        # Replies go out one frame at a time as calls finish; without this, Nagle's algorithm
        # holds a reply back until the client acknowledges the previous one.
        self.transport.setTcpNoDelay(True)
        guard = self.factory.guard
        if guard is not None and guard.checks:
            from esrt.region.callers import NO_CREDENTIALS, Caller
            self.caller = Caller(problem=NO_CREDENTIALS[guard.mode] + (
                "; a binary client sends them once, in a credentials frame"
                if guard.mode != "mtls" else ""))

    def dataReceived(self, data):
        whole = False  # whole frames arrived: a partial one left now has a head limit of its own
        while not self.broken:
            try:
                payloads = self.decoder.feed(data)
            except wire.FrameError as exc:
                self._fatal(exc)
                return
            if not payloads:
                break
            data = b""
            whole = True
            for payload in payloads:
                fields = wire.parse_request_fields(payload)  # a plain request, the common case
                if fields is not None and self._held is None:
                    try:
                        self._serve(*fields)
                    except Exception as exc:  # noqa: BLE001 - our bug costs one request
                        self._internal(fields[0], repr(fields[1]), exc)
                    continue
                try:
                    if wire.is_credentials(payload):
                        item = (self._credentials, *wire.credentials_fields(payload))
                    else:
                        item = (self._serve, *wire.request_fields(payload))
                except wire.FrameError as exc:
                    self._fatal(exc)
                    return
                if self._held is not None:
                    self._held.append(item)  # behind credentials being checked, in order
                else:
                    self._handle(item)
            if not self.decoder.buffered:
                break  # nothing left that another feed could return or refuse
        if self.broken:
            self._arm()
            return
        if self.calls or self._held is not None or self.paused:
            self._clock.clear()  # answers owed: no limit on the client meanwhile
        else:
            if whole:
                self._clock.clear()  # whole frames: the next one has its own head limit
            self._arm()
        waiting = len(self.calls) + len(self._held or ())
        if waiting >= self.factory.max_in_flight and not self.paused:
            # Backpressure: a client pipelining faster than the SEPs answer waits in TCP.
            self.paused = True
            self.transport.pauseProducing()

    def _arm(self):
        """The head time limit while part of a frame has arrived, the idle one while no call
        is under way, none while the region owes answers (see esrt.region.deadlines)."""
        if self._clock is None:
            return
        if self.broken:
            self._clock.clear()
        else:
            # Paused by the region (too many calls unanswered), the rest of a frame waits on
            # us, not on the client.
            self._clock.follow(self.decoder.buffered,
                               self.calls or self._held is not None or self.paused,
                               self.factory)

    def _time_is_up(self, kind):
        if self.broken or self.transport is None or not self.transport.connected:
            return
        if kind == "idle":
            self.factory.admission.count_refused("esrt", "idle_timeout")
            self.transport.loseConnection()
            return
        self._fatal(wire.FrameError(408, "head_timeout", (
            f"the frame was not complete within {self.factory.head_timeout} s of its first "
            "byte; send whole frames (this listener's head_timeout)")))

    def _handle(self, item):
        """Serve a request, or take credentials; our bug costs that one frame only."""
        handler, request_id, *fields = item
        try:
            handler(request_id, *fields)
        except Exception as exc:  # noqa: BLE001 - our bug costs one request, not the region
            self._internal(request_id, repr(fields[0]), exc)

    def _current_caller(self):
        """Who this connection calls as, as the region's accounts, tokens and rules say now:
        a token revoked, an account deleted or a password changed since the connection
        authenticated ends its calls (401) from the next one on."""
        caller = self.caller
        if caller is None:
            return None
        guard = self.factory.guard
        policy = guard.directory.policy
        if not caller.known and guard.mode == "mtls":
            # The handshake is over once a frame arrives: the certificate can be read.
            caller = guard.identify(None, self.transport)
        elif caller.known and policy is not self._policy:
            caller = policy.recheck(caller)
        self.caller, self._policy = caller, policy
        return caller

    def _serve(self, request_id, service, key, params):
        caller = self.caller
        if caller is not None:
            caller = self._current_caller()
        factory = self.factory
        if factory.in_flight >= factory.max_queue:
            self._error(request_id, 503, "busy", (
                f"this listener has {factory.max_queue} calls queued or running (its "
                "max_queue); send this one again in a second"))
            return
        ticket = factory.admission.admit("esrt", service, params, key or None, self._relay,
                                         request_id, caller)
        if ticket is not None:
            self.calls.add(ticket)
            factory.in_flight += 1

    def _credentials(self, request_id, authorization):
        """A credentials frame: who this connection calls as, from now on."""
        guard = self.factory.guard
        if guard is None or not guard.checks:
            self._answer_credentials(request_id, None)
            return
        caller = guard.identify(authorization, self.transport)
        if not isinstance(caller, defer.Deferred):
            self._answer_credentials(request_id, caller)
            return
        # A password being verified: the frames behind it wait, in order.
        self._held = []

        def failed(failure):
            self.factory.report_error("credentials", failure.getErrorMessage())
            from esrt.region.callers import Caller
            return Caller(problem="the credentials could not be checked (an internal error, "
                                  "see the region's console log)")

        caller.addErrback(failed).addCallback(self._checked, request_id)

    def _checked(self, caller, request_id):
        held, self._held = self._held, None
        if self.transport is None or not self.transport.connected:
            return  # the client went away while its password was checked
        try:
            self._handle((self._answer_credentials, request_id, caller))
            while held:
                if self.broken or not self.transport.connected:
                    return
                self._handle(held.pop(0))
                if self._held is not None:
                    # Another password check began: the rest waits for that one.
                    self._held.extend(held)
                    return
        finally:
            if self._held is None:
                self._after_reply()

    def _answer_credentials(self, request_id, caller):
        if caller is None:
            body = json.dumps({"user": None, "role": None,
                               "note": "this listener does not authenticate its callers"})
            send_now(self.transport, wire.encode_reply(request_id, 200, 0, body.encode()))
            return
        if caller.known or self.caller is None or not self.caller.known:
            self.caller, self._policy = caller, self.factory.guard.directory.policy
        if not caller.known:
            self.factory.admission.report_denied("esrt", caller, "(credentials)", 401,
                                                 caller.problem)
            self._error(request_id, 401, "unauthenticated",
                        f"who is calling is not known: {caller.problem}")
            return
        body = json.dumps({"user": caller.name, "role": caller.role}).encode()
        send_now(self.transport, wire.encode_reply(request_id, 200, 0, body))

    def _relay(self, reply, request_id, ticket):
        if ticket is not None and ticket in self.calls:
            self.calls.discard(ticket)
            self.factory.in_flight -= 1
        try:
            if self.transport is not None and self.transport.connected:
                send_now(self.transport, wire.encode_reply(
                    request_id, reply.status, reply.rc if reply.status == 200 else 0, reply.body))
        except Exception as exc:  # noqa: BLE001 - our bug costs this call, not the connection
            self._internal(request_id, f"the reply to request {request_id}", exc)
        self._after_reply()

    def _after_reply(self):
        if not self.calls:
            self._arm()  # nothing owed any more: the idle limit runs again
        if self.broken:
            if not self.calls:
                self._close_write()
        elif (self.paused and self.transport.connected and self._held is None
              and len(self.calls) < max(1, self.factory.max_in_flight // 2)):
            self.paused = False
            self.transport.resumeProducing()

    def _error(self, request_id, status, code, message):
        self.factory.admission.count_refused("esrt", code)
        if self.transport is not None and self.transport.connected:
            send_now(self.transport, wire.encode_reply(request_id, status, 0,
                                                       json_error(code, message)))

    def _internal(self, request_id, what, exc):
        self.factory.report_error(what, f"{type(exc).__name__}: {exc}")
        self._error(request_id, 500, "internal",
                    f"internal error in the {self.factory.server_name} region while serving "
                    f"{what}: {exc}; see the console log")

    def _fatal(self, exc):
        """Answer a frame error, finish the calls accepted before it, then close."""
        self.broken = True
        if self._clock is not None:
            self._clock.clear()
        self._error(exc.request_id, exc.status, exc.code, exc.message)
        if self.paused:
            # Keep reading (and dropping) so the client's unread bytes cause no reset.
            self.paused = False
            self.transport.resumeProducing()
        self._discard = self.factory.reactor.callLater(DISCARD_SECONDS, self._close)
        if not self.calls:
            self._close_write()

    def _close_write(self):
        # Half-close: the client reads every reply, then end of stream, and closes its side.
        transport = self.transport
        if transport is None or not transport.connected:
            return
        # Over TLS the half-close must be TLS's own (loseConnection flushes what the TLS
        # layer still holds and sends close_notify); the socket's would cut those bytes off.
        if isinstance(transport, tcp.Connection):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()

    def _close(self):
        self._discard = None
        if self.transport is not None and self.transport.connected:
            self.transport.loseConnection()

    def connectionLost(self, reason=None):
        self.factory.connections.discard(self)
        self.paused = False
        if self._discard is not None and self._discard.active():
            self._discard.cancel()
        self._discard = None
        if self._clock is not None:
            self._clock.stop()
        # The client went away: calls not started are dropped, running ones rolled back.
        calls, self.calls = self.calls, set()
        self.factory.in_flight -= len(calls)
        for ticket in calls:
            ticket.withdraw()


class WireFactory(protocol.Factory):
    """Builds WireProtocol connections for one or more "esrt" listeners of a region."""

    protocol = WireProtocol
    noisy = False
    # Seconds open connections get at shutdown to flush their last replies and close.
    close_grace = 5.0

    def __init__(self, admission, reactor, report_error, guard=None, limits=None):
        """`admission` (esrt.region.admission) takes the calls; `report_error(what, problem)`
        logs our own bugs (as ServicesResource does); `guard`
        (esrt.region.callers.ListenerGuard) is the listener's authentication (None: none);
        `limits` its bounds, as for esrt.region.httpserver.ServicesFactory (a binary client
        may pipeline max_pipelined calls before its input is paused)."""
        self.admission = admission
        self.guard = guard
        apply_limits(self, limits, pipelined=256)
        self.max_in_flight = self.max_pipelined
        self.in_flight = 0  # calls of this listener queued or running
        self.server_name = admission.server_name
        self.max_body = admission.max_body
        self.reactor = reactor
        self.report_error = report_error
        self.connections = set()

    def buildProtocol(self, addr):
        if len(self.connections) >= self.max_connections:
            self.admission.count_refused("esrt", "too_many_connections")
            return Refusal(wire.encode_reply(0, 503, 0, json_error("too_many_connections", (
                f"this listener has its {self.max_connections} connections open (its "
                "max_connections); try again in a moment"))), self.reactor)
        return super().buildProtocol(addr)

    def close_connections(self):
        """Close every connection once its buffered replies are sent; fires when all are gone."""
        open_ones = {c for c in self.connections
                     if c.transport is not None and c.transport.connected}
        for connection in open_ones:
            connection.transport.loseConnection()
        waited = [0.0]

        def check():
            if not any(c.transport is not None and c.transport.connected for c in open_ones) \
                    or waited[0] >= self.close_grace:
                return None
            waited[0] += 0.01
            return task.deferLater(self.reactor, 0.01, check)

        return defer.maybeDeferred(check)

