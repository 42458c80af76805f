"""The "Web Services" listener: JSON over HTTP/1.1 (keep-alive) in front of the dispatcher.

    POST /services/<package>/<PROGRAM>   call a service; body = JSON object of in/io parameters
    GET  /openapi.json                   OpenAPI 3 description of every deployed service
    GET  /health                         {"status": "ok"} while the region serves
    GET  /metrics                        Prometheus metrics of the region (text format)

Every error is JSON: {"error": {"code": ..., "message": ...}} with a stable code.
"""

import errno
import io
import json
import os
import re

from twisted.internet import defer, error, task
from twisted.web import resource, server

from esrt.settings import format_address
from esrt.states import ListenerStatus

JSON = b"application/json"
IDEMPOTENCY_KEY = re.compile(rb"^[\x21-\x7e]{1,200}$")
# After answering 413 early, how long the rest of an oversized body is read and dropped before
# the connection is closed; reading it lets the client see the 413 instead of a reset.
DISCARD_SECONDS = 10.0


def json_error(code, message):
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def send_json(request, status, body, rc=None, extra_headers=()):
    """Finish `request` with a JSON body and an explicit Content-Length (no chunking)."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", JSON)
    request.setHeader(b"content-length", str(len(body)).encode())
    if rc is not None:
        request.setHeader(b"esrt-return-code", str(rc).encode())
    for name, value in extra_headers:
        request.setHeader(name, value)
    request.write(body)
    request.finish()


class ServiceRequest(server.Request):
    """A Request that refuses an oversized body from its Content-Length, before reading it."""

    _rejected = False
    _received = 0

    def gotLength(self, length):
        limit = self.channel.site.max_body
        if length is not None and length > limit:
            # Twisted would answer "Expect: 100-continue" right after this call; the client must
            # not be invited to send a body we refuse.
            expected = self.requestHeaders.getRawHeaders(b"expect") or []
            self.requestHeaders.removeHeader(b"expect")
            self._reject(length, limit, close_now=any(v.lower() == b"100-continue"
                                                      for v in expected))
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._rejected:
            return
        self._received += len(data)
        limit = self.channel.site.max_body
        if self._received > limit:  # chunked bodies announce no length
            self._reject(None, limit, close_now=False)
            return
        super().handleContentChunk(data)

    def _reject(self, length, limit, close_now):
        self._rejected = True
        self.content = io.BytesIO()  # stays empty: the rest of the body is dropped
        size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
        body = json_error("too_large", f"request body of {size} is larger than this server's "
                                       f"max_body of {limit} bytes; send less, or raise max_body "
                                       "in the server definition")
        head = (b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        self.channel.transport.write(head + body)
        if close_now:
            self.channel.transport.loseConnection()
        else:
            self.channel.site.reactor.callLater(DISCARD_SECONDS, self._close_channel)

    def _close_channel(self):
        if self.channel is not None and self.channel.transport is not None:
            self.channel.transport.loseConnection()

    def requestReceived(self, command, path, version):
        if self._rejected:
            # The 413 is already on the wire; the connection ends here.
            self._close_channel()
            return
        super().requestReceived(command, path, version)


class ServicesResource(resource.Resource):
    """Routes every path of the listener; talks to the dispatcher for service calls."""

    isLeaf = True

    def __init__(self, server_name, services, dispatcher, health, report_error, metrics=None):
        """`health()` returns (ok, detail); `report_error(what, problem)` logs our own bugs;
        `metrics` (a RegionMetrics) is served at /metrics, by default the dispatcher's."""
        super().__init__()
        self.metrics = metrics if metrics is not None else getattr(dispatcher, "metrics", None)
        self.server_name = server_name
        self.services = services
        self.dispatcher = dispatcher
        self.health = health
        self.report_error = report_error

    def render(self, request):
        try:
            return self._route(request)
        except Exception as exc:  # noqa: BLE001 - our bug must cost one request, not the region
            return self._internal(request, exc)

    def _internal(self, request, exc):
        what = request.path.decode("latin-1")
        self.report_error(what, f"{type(exc).__name__}: {exc}")
        request.setResponseCode(500)
        request.setHeader(b"content-type", JSON)
        return json_error("internal", f"internal error in the {self.server_name} region while "
                                      f"serving {what}: {exc}; see the console log")

    def _error(self, request, status, code, message, extra_headers=()):
        request.setResponseCode(status)
        request.setHeader(b"content-type", JSON)
        for name, value in extra_headers:
            request.setHeader(name, value)
        return json_error(code, message)

    def _route(self, request):
        parts = request.path.split(b"/")
        method = request.method
        if len(parts) == 4 and parts[1] == b"services" and parts[2] and parts[3]:
            if method != b"POST":
                return self._method_not_allowed(request, b"POST")
            return self._call(request, parts[2], parts[3])
        if request.path in (b"/openapi.json", b"/health", b"/metrics"):
            if method not in (b"GET", b"HEAD"):
                return self._method_not_allowed(request, b"GET, HEAD")
            if request.path == b"/metrics":
                return self._metrics(request)
            if request.path == b"/health":
                ok, detail = self.health()
                request.setResponseCode(200 if ok else 503)
                request.setHeader(b"content-type", JSON)
                return json.dumps({"status": "ok" if ok else "unavailable",
                                   "detail": detail}).encode()
            self.services.scan()
            from esrt.region.services import openapi_document
            request.setHeader(b"content-type", JSON)
            return json.dumps(openapi_document(self.server_name, list(self.services))).encode()
        return self._error(request, 404, "not_found",
                           f"no such path {request.path.decode('latin-1')} on {self.server_name}; "
                           "services are at POST /services/<package>/<PROGRAM>, their "
                           "description at GET /openapi.json, metrics at GET /metrics")

    def _metrics(self, request):
        if self.metrics is None:
            return self._error(request, 404, "not_found",
                               f"{self.server_name} keeps no metrics in this configuration")
        from esrt.region.metrics import CONTENT_TYPE_LATEST
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return self.metrics.exposition()

    def _method_not_allowed(self, request, allowed):
        return self._error(request, 405, "method_not_allowed",
                           f"{request.method.decode('latin-1')} is not allowed on "
                           f"{request.path.decode('latin-1')}; use {allowed.decode()}",
                           extra_headers=((b"allow", allowed),))

    def _call(self, request, package, program):
        try:
            name = f"{package.decode('utf-8')}.{program.decode('utf-8')}"
        except UnicodeDecodeError:
            name = None
        service = self.services.lookup(name) if name else None
        if service is None:
            deployed = ", ".join(self.services.names()) or "none (deploy a package first)"
            return self._error(request, 404, "unknown_service",
                               f"no service {name or repr(package + b'.' + program)} on "
                               f"{self.server_name}; deployed: {deployed}")
        body = request.content.read() if request.content is not None else b""
        key = request.getHeader(b"idempotency-key")
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            return self._error(request, 400, "bad_idempotency_key",
                               "the Idempotency-Key header must be 1 to 200 printable ASCII "
                               "characters (a UUID is a good choice)")
        state = {"gone": False}
        call = self.dispatcher.submit(service.name, body,
                                      key.decode("ascii") if key is not None else None)

        def client_gone(_):
            state["gone"] = True
            call.cancel()

        def relay(reply):
            if not state["gone"]:
                send_json(request, reply.status, reply.body, rc=reply.rc if reply.ok else None)

        def failed(failure):
            if failure.check(defer.CancelledError) or state["gone"]:
                return None
            self.report_error(service.name, failure.getErrorMessage())
            send_json(request, 500, json_error(
                "internal", f"internal error in the {self.server_name} region while calling "
                            f"{service.name}: {failure.getErrorMessage()}; see the console log"))
            return None

        request.notifyFinish().addErrback(client_gone)
        call.addCallbacks(relay, failed).addErrback(failed)
        return server.NOT_DONE_YET


class ServicesSite(server.Site):
    """A Site without access logging (one log line per request costs more than the request)."""

    requestFactory = ServiceRequest
    noisy = False

    # Seconds open connections get at shutdown to flush their last response and close.
    close_grace = 5.0

    def __init__(self, root, max_body, reactor):
        super().__init__(root, reactor=reactor)
        self.max_body = max_body
        self._connections = set()

    def buildProtocol(self, addr):
        channel = super().buildProtocol(addr)
        if channel is not None:
            self._connections.add(channel)
        return channel

    def log(self, request):
        pass

    def close_connections(self):
        """Close every connection once its buffered output is sent; fires when all are gone.

        Without this, a response written just before shutdown could still sit in its
        transport's buffer when the reactor stops, and the client would see a reset.
        """
        def connected(channel):
            transport = getattr(channel, "transport", None)
            return transport is not None and transport.connected

        open_ones = {c for c in self._connections if connected(c)}
        self._connections = open_ones
        for channel in open_ones:
            channel.transport.loseConnection()
        waited = [0.0]

        def check():
            if not any(connected(c) for c in open_ones) or waited[0] >= self.close_grace:
                return None
            waited[0] += 0.01
            return task.deferLater(self.reactor, 0.01, check)

        return defer.maybeDeferred(check)


def bind_problem(exc):
    """A short lower-case reason for a failed bind, e.g. 'address already in use'."""
    socket_error = getattr(exc, "socketError", None)
    code = getattr(socket_error, "errno", None)
    if code == errno.EADDRNOTAVAIL:
        return "address not on this host"
    if code == errno.EACCES:
        return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    if code is not None:
        return os.strerror(code).lower()
    return str(socket_error or exc)


class Listener:
    """One listener of the region and its state (esrt.states.ListenerStatus).

    STOPPED -> STARTING -> STARTED -> STOPPED, or STARTING -> FAILED. An address that is not on
    this node (a relocatable IP still held by the other node) is not a failure:
    STARTING -> WAITING, and the bind is retried every `retry_interval` seconds until the
    address appears (WAITING -> STARTED) or the listener is stopped (WAITING -> STOPPED). This
    is what lets a standby region run before the cluster moves the address to it.
    """

    retry_interval = 0.2

    def __init__(self, reactor, config, factory, server_name, console, on_change=lambda: None):
        """`factory` builds the connections: a ServicesSite for "web-services", a WireFactory
        (esrt.region.wire_listener) for "esrt"."""
        self.reactor = reactor
        self.name = config["name"]
        self.requested = config["address"]
        self.conversation = config["conversation"]
        self.factory = factory
        self.server_name = server_name
        self.console = console
        self.on_change = on_change
        self.state = ListenerStatus.STOPPED
        self.address = None
        self.problem = None
        self._port = None
        self._retry = None

    def _enter(self, state, *sources):
        assert self.state in sources, f"listener {self.name}: {self.state.value} -> {state.value}"
        self.state = state
        self.on_change()

    def start(self):
        """Bind and listen; return False when FAILED (reason in .problem), True when STARTED or
        WAITING for its address."""
        # STOPPED -> STARTING
        self._enter(ListenerStatus.STARTING, ListenerStatus.STOPPED)
        return self._bind()

    def _bind(self):
        from esrt.settings import parse_address
        self._retry = None
        host, port = parse_address(self.requested)
        try:
            self._port = self.reactor.listenTCP(port, self.factory,
                                                interface="" if host == "*" else host)
        except error.CannotListenError as exc:
            socket_error = getattr(exc, "socketError", None)
            shown = format_address(host, port)
            if getattr(socket_error, "errno", None) == errno.EADDRNOTAVAIL:
                if self.state == ListenerStatus.STARTING:
                    self.problem = self.console.log(
                        "ESCS5008W", server=self.server_name, listener=self.name, address=shown)
                    # STARTING -> WAITING
                    self._enter(ListenerStatus.WAITING, ListenerStatus.STARTING)
                self._retry = self.reactor.callLater(self.retry_interval, self._bind)
                return True
            self.problem = self.console.log("ESCS5005E", server=self.server_name,
                                            listener=self.name, address=shown,
                                            problem=bind_problem(exc))
            # STARTING/WAITING -> FAILED
            self._enter(ListenerStatus.FAILED, ListenerStatus.STARTING, ListenerStatus.WAITING)
            return False
        bound = self._port.getHost()
        self.address = format_address(bound.host, bound.port)
        self.problem = None
        self.console.log("ESCS5004I", listener=self.name, address=self.address,
                         conversation=self.conversation)
        # STARTING/WAITING -> STARTED
        self._enter(ListenerStatus.STARTED, ListenerStatus.STARTING, ListenerStatus.WAITING)
        return True

    def stop(self):
        """Stop listening (connections already open finish their requests)."""
        if self.state == ListenerStatus.WAITING:
            if self._retry is not None and self._retry.active():
                self._retry.cancel()
            self._retry = None
            # WAITING -> STOPPED
            self._enter(ListenerStatus.STOPPED, ListenerStatus.WAITING)
            return defer.succeed(None)
        if self.state != ListenerStatus.STARTED:
            return defer.succeed(None)
        port, self._port = self._port, None
        # STARTED -> STOPPED
        self._enter(ListenerStatus.STOPPED, ListenerStatus.STARTED)
        self.console.log("ESCS5006I", listener=self.name)
        return defer.maybeDeferred(port.stopListening)

    def snapshot(self):
        host, port = self.requested.rsplit(":", 1)
        return {"CN": self.name, "mfListenerStatus": self.state.value,
                "mfRequestedEndpoint": f"tcp:{host}:{port}", "address": self.address,
                "conversation": self.conversation, "message": self.problem}
