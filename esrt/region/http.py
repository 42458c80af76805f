"""The "Web Services" listener: JSON over HTTP/1.1 (keep-alive) in front of the dispatcher.

    POST /services/<package>/<PROGRAM>   call a service; body = JSON object of in/io parameters
    GET  /openapi.json                   OpenAPI 3 description of every deployed service
    GET  /health                         {"status": "ok"} while the region serves
    GET  /metrics                        Prometheus metrics of the region (text format)

Every error is JSON: {"error": {"code": ..., "message": ...}} with a stable code.
"""

import errno
import json
import os

from twisted.internet import defer, error

from esrt.region.httpserver import NOT_DONE_YET
from esrt.region.replies import json_error
from esrt.settings import format_address
from esrt.states import ListenerStatus

JSON = b"application/json"
LISTEN_BACKLOG = 4096
# What a 401 asks for, by the listener's `auth`.
CHALLENGES = {"token": b"Bearer", "basic": b'Basic realm="esrt", charset="UTF-8"',
              "mtls": b"Bearer"}


class ServicesResource:
    """Routes every path of the listener; talks to the dispatcher for service calls."""

    isLeaf = True

    def __init__(self, admission, health, report_error):
        """`admission` (esrt.region.admission) takes the service calls, and its metrics are
        served at /metrics; `health()` returns (ok, detail); `report_error(what, problem)`
        logs our own bugs."""
        self.admission = admission
        self.server_name = admission.server_name
        self.services = admission.services
        self.metrics = admission.metrics
        self.health = health
        self.report_error = report_error

    def render(self, request):
        try:
            return self._route(request)
        except Exception as exc:  # noqa: BLE001 - our bug must cost one request, not the region
            return self._internal(request, exc)

    def refused(self, code):
        """Count a request answered with error `code` without calling a service."""
        self.admission.count_refused("http", code)

    def _internal(self, request, exc):
        self.refused("internal")
        what = request.path.decode("latin-1")
        self.report_error(what, f"{type(exc).__name__}: {exc}")
        request.setResponseCode(500)
        request.setHeader(b"content-type", JSON)
        return json_error("internal", f"internal error in the {self.server_name} region while "
                                      f"serving {what}: {exc}; see the console log")

    def _error(self, request, status, code, message, extra_headers=()):
        self.refused(code)
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
            if request.path == b"/health":
                ok, detail = self.health()
                request.setResponseCode(200 if ok else 503)
                request.setHeader(b"content-type", JSON)
                return json.dumps({"status": "ok" if ok else "unavailable",
                                   "detail": detail}).encode()
            serve = self._metrics if request.path == b"/metrics" else self._openapi
            return self._exposed(request, request.path[1:].split(b".")[0].decode(), serve)
        return self._error(request, 404, "not_found",
                           f"no such path {request.path.decode('latin-1')} on {self.server_name}; "
                           "services are at POST /services/<package>/<PROGRAM>, their "
                           "description at GET /openapi.json, metrics at GET /metrics")

    def _exposed(self, request, what, serve):
        """/metrics or /openapi.json as the listener's `what` setting says: off, behind its
        authentication, or open."""
        guard = _guard(request)
        exposure = "open" if guard is None else getattr(guard, what)
        if exposure == "off":
            return self._error(request, 404, "not_found",
                               f"{request.path.decode()} is not served on this listener "
                               f"({what}=off); an admin can set {what}=auth or {what}=open")
        if exposure == "open":
            return serve(request)
        caller = guard.identify(request.getHeader(b"authorization"), request.channel.transport)
        if caller is None:
            return self._error(request, 401, "unauthenticated",
                               f"{request.path.decode()} is for authenticated callers "
                               f"({what}=auth) and this listener authenticates nobody (auth="
                               f"none); an admin can set {what}=open")

        def answer(caller):
            if not caller.known:
                return self._error(request, 401, "unauthenticated",
                                   f"who is calling is not known: {caller.problem}")
            return serve(request)

        if not isinstance(caller, defer.Deferred):
            return answer(caller)

        def later(caller):
            if request.channel is not None:
                request.write(answer(caller))
                request.finish()

        caller.addCallback(later).addErrback(lambda failure: self._failed_later(request,
                                                                                failure))
        return NOT_DONE_YET

    def _failed_later(self, request, failure):
        if request.channel is not None and not request.finished:
            request.write(self._internal(request, failure.value))
            request.finish()

    def _openapi(self, request):
        self.services.scan()
        from esrt.region.services import openapi_document
        request.setHeader(b"content-type", JSON)
        return json.dumps(openapi_document(self.server_name, list(self.services))).encode()


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
        body = request.content.read() if request.content is not None else b""
        guard = _guard(request)
        if guard is None or not guard.checks:
            self._admit(request, package + b"." + program, body, None)
            return NOT_DONE_YET
        caller = guard.identify(request.getHeader(b"authorization"), request.channel.transport)
        if isinstance(caller, defer.Deferred):
            # A password being verified (once per account and password, in a thread).
            caller.addCallback(lambda known: self._admit(request, package + b"." + program,
                                                         body, known))
            caller.addErrback(lambda failure: self._failed_later(request, failure))
        else:
            self._admit(request, package + b"." + program, body, caller)
        return NOT_DONE_YET

    def _admit(self, request, service, body, caller):
        if request.channel is None:
            return  # the client went away while its password was being checked
        factory = getattr(request.channel, "factory", None)
        limit = getattr(factory, "max_queue", None)
        if limit is not None and factory.in_flight >= limit:
            self.refused("busy")
            request.finish_json(503, json_error("busy", f"this listener has {limit} calls "
                                                        "queued or running (its max_queue); "
                                                        "send this one again after the "
                                                        "Retry-After seconds"),
                                headers=((b"retry-after", b"1"),))
            return
        ticket = self.admission.admit("http", service, body,
                                      request.getHeader(b"idempotency-key"), self._relay,
                                      request, caller)
        if ticket is not None:
            if limit is not None:
                factory.in_flight += 1
                request.counted_in = factory
            # The client went away: a call not started is dropped, a running one rolled back.
            request.on_lost = lambda: self._lost(request, ticket)

    @staticmethod
    def _lost(request, ticket):
        _uncount(request)
        ticket.withdraw()

    def _relay(self, reply, request, ticket):
        _uncount(request)
        if request.channel is None:  # the client has gone
            return
        try:
            # RFC 9110: a 401 names the scheme it wants (HTTP clients send Basic only when
            # asked).
            guard = _guard(request) if reply.status == 401 else None
            challenge = ((b"www-authenticate", CHALLENGES.get(guard.mode, b"Bearer")),) \
                if guard is not None else ()
            request.finish_json(reply.status, reply.body, reply.rc if reply.ok else None,
                                challenge)
        except Exception as exc:  # noqa: BLE001 - a failure to answer costs this call only
            what = request.path.decode("latin-1")
            self.report_error(what, f"{type(exc).__name__}: {exc}")
            if request.channel is not None and not request.finished:
                request.finish_json(500, json_error(
                    "internal", f"internal error in the {self.server_name} region while "
                                f"answering {what}: {exc}; see the console log"))


def _uncount(request):
    """The call of `request` no longer counts towards its listener's max_queue."""
    factory = getattr(request, "counted_in", None)
    if factory is not None:
        request.counted_in = None
        factory.in_flight -= 1


def _guard(request):
    """The authentication and exposure of the listener a request came in on (None: none)."""
    return getattr(getattr(request.channel, "factory", None), "guard", None)


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
        (esrt.region.wire_listener) for "esrt". With `tls_cert` in `config` the listener
        speaks TLS (esrt.node.tls), its files read at start and watched while it runs."""
        self.reactor = reactor
        self.name = config["name"]
        self.requested = config["address"]
        self.conversation = config["conversation"]
        self.tls_files = (config.get("tls_cert"), config.get("tls_key"),
                          config.get("tls_client_ca"))
        self.head_timeout = config.get("head_timeout")
        self.tls = None
        self.factory = factory
        self.server_name = server_name
        self.console = console
        self.on_change = on_change
        self.state = ListenerStatus.STOPPED
        self.serving = factory
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
        if self.tls_files[0] and not self._start_tls():
            # STARTING -> FAILED
            self._enter(ListenerStatus.FAILED, ListenerStatus.STARTING)
            return False
        return self._bind()

    def _start_tls(self):
        from esrt.node.tls import ServerTLS, TLSFilesError
        try:
            self.tls = ServerTLS(*self.tls_files, protocols=(
                (b"http/1.1",) if self.conversation == "web-services" else ()))
        except TLSFilesError as exc:
            self.problem = self.console.log("ESCS5009E", server=self.server_name,
                                            listener=self.name, problem=exc)
            return False
        if self.head_timeout:
            self.tls.handshake_timeout = self.head_timeout
        scheme = "https" if self.conversation == "web-services" else "esrts"
        self.serving = self.tls.wrap(
            self.factory, self.reactor, plain_text_answer=plain_text_refusal(
                self.conversation, self.server_name, self.name, scheme),
            on_plain_text=lambda peer, data: self.console.log(
                "ESCS5010W", listener=self.name, peer=peer, data=data, scheme=scheme),
            on_handshake_failure=lambda peer, problem: self.console.log(
                "ESCS5011W", listener=self.name, peer=peer, problem=problem))
        self.tls.watch(self.reactor, self._tls_reloaded, lambda problem: self.console.log(
            "ESCS5013E", listener=self.name, problem=problem))
        return True

    def _tls_reloaded(self, certificate):
        from esrt.node.tls import describe
        self.console.log("ESCS5012I", listener=self.name, file=self.tls.cert_file,
                         certificate=describe(certificate))
        self.on_change()

    def _bind(self):
        from esrt.settings import parse_address
        self._retry = None
        host, port = parse_address(self.requested)
        try:
            # Twisted's default backlog of 50 makes the 51st client of a burst wait for a SYN
            # retry (a second or more); the kernel caps this at net.core.somaxconn.
            self._port = self.reactor.listenTCP(port, self.serving, backlog=LISTEN_BACKLOG,
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
        shown = self.conversation
        if self.tls is not None:
            from esrt.node.tls import describe
            shown += (", TLS" + (" with client certificates" if self.tls.mutual else "")
                      + f", certificate {describe(self.tls.certificate)}")
        self.console.log("ESCS5004I", listener=self.name, address=self.address,
                         conversation=shown)
        # STARTING/WAITING -> STARTED
        self._enter(ListenerStatus.STARTED, ListenerStatus.STARTING, ListenerStatus.WAITING)
        return True

    def stop(self):
        """Stop listening (connections already open finish their requests)."""
        if self.tls is not None:
            self.tls.stop_watching()
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
        tls = None
        if self.tls is not None:
            certificate = self.tls.certificate
            tls = {"subject": certificate.subject.rfc4514_string(),
                   "expires": certificate.not_valid_after_utc.isoformat(timespec="seconds"),
                   "client_certificates": self.tls.mutual}
        return {"CN": self.name, "mfListenerStatus": self.state.value,
                "mfRequestedEndpoint": f"tcp:{host}:{port}", "address": self.address,
                "conversation": self.conversation, "tls": tls, "message": self.problem}


def plain_text_refusal(conversation, server_name, listener_name, scheme):
    """What a client speaking plain text to a TLS listener is sent before it is closed: an
    error it can read in its own conversation."""
    from esrt import wire
    from esrt.node.tls import http_refusal
    message = (f"listener \"{listener_name}\" of {server_name} speaks TLS only; connect with "
               f"{scheme}://HOST:PORT (and the CA that signed the server's certificate)")
    if conversation == "esrt":
        return wire.encode_reply(0, 400, 0, json_error("tls_required", message))
    return http_refusal(message)
