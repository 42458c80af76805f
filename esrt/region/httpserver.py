"""A lean HTTP/1.1 server for the "Web Services" listener.

twisted.web builds a full Request per call (header objects, cookies, sessions, content
negotiation hooks, a log line), which cost the region about three times what the call itself
costs (143 µs against 50 µs of region CPU per call of a null service). This server parses
what a JSON service needs and nothing else:

* request line, headers (at most MAX_HEADER_BYTES), keep-alive (HTTP/1.1 by default, HTTP/1.0
  with "Connection: keep-alive"), pipelined requests answered in order;
* bodies by Content-Length or chunked, "Expect: 100-continue", and a 413 from the announced
  length before the body is read;
* clear JSON errors for what it refuses (400 bad_request, 411, 413, 431, 501, 505).

Routing stays in esrt.region.http.ServicesResource, which sees each request through the small
interface of HttpRequest (the part of twisted.web's Request it used).
"""

import collections
import io
import json
import re
import time
from email.utils import formatdate
from http import HTTPStatus

from twisted.internet import defer, error, protocol, task, tcp
from twisted.python import failure, log

from esrt.region import frontdoor
from esrt.region.deadlines import ConnectionClock
from esrt.region.sendnow import send_now

NOT_DONE_YET = 1  # render() returns this when it finishes the request later
FRAMING_HEADERS = (b"content-length", b"transfer-encoding")
CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
MAX_HEADER_BYTES = 64 * 1024
# After answering 413 early, how long the rest of an oversized body is read and dropped before
# the connection is closed; reading it lets the client see the 413 instead of a reset.
DISCARD_SECONDS = 10.0


def apply_limits(factory, limits, pipelined):
    """Set a listener factory's bounds from its settings (`limits`, a listener dict); the
    defaults are esrt.settings's, and `pipelined` that of max_pipelined for the
    conversation."""
    from esrt.settings import LISTENER_SETTINGS
    for setting in LISTENER_SETTINGS:
        if setting.name in ("max_connections", "head_timeout", "idle_timeout",
                            "max_pipelined", "max_queue"):
            value = (limits or {}).get(setting.name)
            setattr(factory, setting.name, setting.default if value is None else value)
    if factory.max_pipelined is None:
        factory.max_pipelined = pipelined


def http_answer(status, code, message, headers=()):
    """A whole HTTP/1.1 response carrying the JSON error, closing the connection."""
    body = _error_body(code, message)
    lines = [b"HTTP/1.1 %d %s" % (status, _reason(status)), b"content-type: application/json",
             b"content-length: %d" % len(body), b"connection: close"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Refusal(protocol.Protocol):
    """A connection the listener has no room for: it gets `answer` and is closed.

    Closing a socket with the client's request unread makes the kernel send a reset, which can
    destroy the answer before the client reads it: the answer goes out with a half-close, what
    the client sends is read and dropped, and the connection is cut after `linger` seconds
    unless the client closes first."""

    linger = 2.0

    def __init__(self, answer, reactor):
        self.answer = answer
        self.reactor = reactor
        self._cut = None

    def connectionMade(self):
        self.transport.write(self.answer)
        if isinstance(self.transport, tcp.Connection):
            self.transport.loseWriteConnection()
            self._cut = self.reactor.callLater(self.linger, self.transport.abortConnection)
        else:
            self.transport.loseConnection()  # TLS: its own close, after the answer

    def dataReceived(self, data):
        pass

    def connectionLost(self, reason=None):
        if self._cut is not None and self._cut.active():
            self._cut.cancel()


def _reason(code):
    try:
        return HTTPStatus(code).phrase.encode()
    except ValueError:
        return b"Unknown"


class HttpError(Exception):
    """A request the server refuses before routing it; the connection is closed after the answer."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HttpRequest:
    """One request: what ServicesResource reads (method, path, content, getHeader) and sets."""

    def __init__(self, channel, method, path, version, headers):
        self.channel = channel
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers  # lower-case name -> last value, both bytes
        self.content = None
        self.code = 200
        self.response_headers = {}
        self.body = []
        self.finished = False
        self.head_only = method == b"HEAD"
        self.keep_alive = True
        self._json = None  # (body, rc) of an answer given with finish_json
        self._finish_waiters = []
        # Called when the client goes away before the answer is sent (cancels its call).
        self.on_lost = None
        self.counted_in = None  # the listener factory whose max_queue counts this call

    def getHeader(self, name):  # the name twisted.web's Request uses
        """The value of request header `name` (bytes, any case), or None."""
        return self.headers.get(name.lower())

    def setResponseCode(self, code):
        self.code = code

    def setHeader(self, name, value):
        self.response_headers[name.lower()] = value

    def write(self, data):
        self.body.append(data)

    def finish_json(self, status, body, rc=None, headers=()):
        """Answer with JSON `body` and, when `rc` is not None, the esrt-return-code header:
        what setResponseCode, setHeader, write and finish would send, built in one step.
        `headers` ((name, value), ...) are added to it (the answer is then built header by
        header, as the common case's builder knows none)."""
        self.code = status
        if headers:
            for name, value in headers:
                self.setHeader(name, value)
            self.setHeader(b"content-type", b"application/json")
            if rc is not None:
                self.setHeader(b"esrt-return-code", str(rc).encode())
            self.write(body)
        else:
            self._json = (body, rc)
        self.finish()

    def finish(self):
        """The response is complete: send it (in turn, behind earlier pipelined requests)."""
        if self.finished:
            return
        self.finished = True
        waiters, self._finish_waiters = self._finish_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        if self.channel is not None:
            self.channel.request_done(self)

    def notifyFinish(self):
        """A Deferred: fires when the response is sent, fails if the client goes away first."""
        waiter = defer.Deferred()
        if self.finished:
            waiter.callback(None)
        else:
            self._finish_waiters.append(waiter)
        return waiter

    def connection_lost(self, reason):
        self.channel = None
        waiters, self._finish_waiters = self._finish_waiters, []
        for waiter in waiters:
            waiter.errback(reason)
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()

    def response_bytes(self, keep_alive):
        if self._json is not None:
            body, rc = self._json
            built = frontdoor.response(self.code, body, rc, self.channel.date(), keep_alive,
                                       self.version == b"HTTP/1.0", self.head_only)
            if built is not None:
                return built
            # A status the common case does not know: the same answer, header by header.
            self.setHeader(b"content-type", b"application/json")
            self.setHeader(b"content-length", b"%d" % len(body))
            if rc is not None:
                self.setHeader(b"esrt-return-code", str(rc).encode())
            self.body = [body]
        body = b"".join(self.body)
        headers = self.response_headers
        lines = [b"HTTP/1.1 %d %s" % (self.code, _reason(self.code))]
        if b"content-length" not in headers:
            headers[b"content-length"] = b"%d" % len(body)
        for name, value in headers.items():
            lines.append(name + b": " + value)
        lines.append(b"date: " + self.channel.date())
        if not keep_alive:
            lines.append(b"connection: close")
        elif self.version == b"HTTP/1.0":
            lines.append(b"connection: keep-alive")
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        return head if self.head_only else head + body


class HttpChannel(protocol.Protocol):
    """One client connection: parses requests, hands them to the resource, answers in order."""

    # Reads a plain request in one step (esrt.region.frontdoor); what it declines goes through
    # the full parser below, which owns every refusal.
    read_plain = staticmethod(frontdoor.read_request)

    def __init__(self):
        self._buffer = bytearray()
        self._pending = collections.deque()  # requests not yet answered, oldest first
        self._body_request = None  # request whose body is being read
        self._body_left = 0  # Content-Length bytes still to read, or -1 while chunked
        self._chunks = None
        self._closing = False  # answer what is pending, then close
        self._discarding = 0  # bytes of a refused body still to drop
        self._paused = False  # too many pipelined requests unanswered
        self._write_blocked = False  # the transport asked us to pause (unread answers)
        self._clock = None  # the head and idle time limits (from connectionMade on)

    def connectionMade(self):
        self.factory.connections.add(self)
        self.transport.setTcpNoDelay(True)
        self._clock = ConnectionClock(self.factory.reactor, self._time_is_up)
        self._arm()
        # The transport pauses us when answers pile up unread (a client that pipelines but
        # does not read): reading stops until they drain, so nothing grows without bound.
        self.transport.registerProducer(self, True)

    def pauseProducing(self):  # IPushProducer: the transport's buffer is full
        self._write_blocked = True
        self.transport.pauseProducing()

    def resumeProducing(self):  # IPushProducer: the buffer drained
        self._write_blocked = False
        self._resume_reading()

    def stopProducing(self):
        pass

    def _resume_reading(self):
        if not self._paused and not self._write_blocked and self.transport is not None \
                and self.transport.connected:
            self.transport.resumeProducing()
            self.factory.reactor.callLater(0, self._resume_parsing)

    def connectionLost(self, reason=None):
        self.factory.connections.discard(self)
        if self._clock is not None:
            self._clock.stop()
        reason = reason or failure.Failure(error.ConnectionDone())
        pending, self._pending = self._pending, collections.deque()
        for request in pending:
            try:
                request.connection_lost(reason)
            except Exception:  # noqa: BLE001 - one request's bug must not spare the others
                log.err(None, f"error telling a request to {request.path!r} that its client "
                              "went away")

    def date(self):
        return self.factory.date()

    # -- reading ----------------------------------------------------------------------------

    def dataReceived(self, data):
        if self._discarding:
            dropped = min(self._discarding, len(data))
            self._discarding -= dropped
            if not self._discarding and not self._pending:
                self.transport.loseConnection()
            return
        if self._closing:
            return
        self._buffer += data
        try:
            self._parse()
        except HttpError as exc:
            self._refuse(exc)
        self._arm()

    # -- time limits ----------------------------------------------------------------------

    def _arm(self):
        """The time limit that fits the connection's state: the head's while part of a
        request has arrived (counted from its first byte), the idle one while nothing is
        under way, none while the region owes answers."""
        if self._clock is None:
            return
        if self._closing or self.transport is None:
            self._clock.clear()
        else:
            # While the region itself stops reading (too many pipelined, answers unread), what
            # is buffered waits on us, not on the client.
            self._clock.follow(self._buffer or self._body_request is not None,
                               self._pending or self._paused or self._write_blocked,
                               self.factory)

    def _time_is_up(self, kind):
        if self.transport is None or not self.transport.connected:
            return
        if kind == "idle":
            self.factory.refused("idle_timeout")
            self.transport.loseConnection()
            return
        self._refuse(HttpError(408, "head_timeout",
                               f"the request was not complete within "
                               f"{self.factory.head_timeout} s of its first byte; send whole "
                               "requests (this listener's head_timeout)"))

    def _parse(self):
        while not self._closing and not self._paused:
            if self._body_request is not None:
                if not self._read_body():
                    return
                continue
            plain = self.read_plain(self._buffer, MAX_HEADER_BYTES, self.factory.max_body)
            if plain is None:
                return
            if plain is not False:
                self._start_plain(*plain)
                continue
            # Blank lines before a request line are ignored (RFC 9112 section 2.2).
            while self._buffer.startswith(b"\r\n"):
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise HttpError(431, "headers_too_large",
                                    f"request headers are longer than {MAX_HEADER_BYTES} bytes")
                return
            if end > MAX_HEADER_BYTES:
                raise HttpError(431, "headers_too_large",
                                f"request headers are longer than {MAX_HEADER_BYTES} bytes")
            head = bytes(self._buffer[:end])
            del self._buffer[:end + 4]
            if not head:
                continue
            self._start_request(head)

    def _start_plain(self, consumed, method, path, version, headers, body, keep_alive):
        del self._buffer[:consumed]
        request = HttpRequest(self, method, path, version, headers)
        request.keep_alive = keep_alive
        request.content = io.BytesIO(body)
        self._queue_request(request)
        if not keep_alive:
            self._closing = True  # as after a full request: nothing after it is read or run
        self._dispatch(request)

    def _queue_request(self, request):
        self._pending.append(request)
        if self._clock is not None:
            self._clock.clear()  # a request is whole: the next one has its own head limit
        if len(self._pending) >= self.factory.max_pipelined:
            self._paused = True
            self.transport.pauseProducing()

    def _start_request(self, head):
        request_line, *header_lines = head.split(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise HttpError(400, "bad_request",
                            f"malformed request line {request_line[:100]!r}; expected "
                            "METHOD /path HTTP/1.1")
        method, target, version = parts
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise HttpError(505, "http_version_not_supported",
                            f"{version[:20]!r} is not supported; speak HTTP/1.1")
        headers = {}
        for line in header_lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise HttpError(400, "bad_request", f"malformed header line {line[:100]!r}")
            name, value = name.lower(), value.strip()
            if name in FRAMING_HEADERS and name in headers and headers[name] != value:
                # Two framings of one body: a proxy in front may pick the other one.
                raise HttpError(400, "bad_request", f"conflicting {name.decode()} headers; "
                                                    "send one")
            headers[name] = value
        if target.startswith(b"http://") or target.startswith(b"https://"):
            target = b"/" + target.split(b"/", 3)[3] if target.count(b"/") >= 3 else b"/"
        path = target.split(b"?", 1)[0]
        request = HttpRequest(self, method, path, version, headers)
        connection = headers.get(b"connection", b"").lower()
        if version == b"HTTP/1.0":
            request.keep_alive = b"keep-alive" in connection
        else:
            request.keep_alive = b"close" not in connection
        self._queue_request(request)
        self._begin_body(request)

    def _begin_body(self, request):
        headers = request.headers
        encoding = headers.get(b"transfer-encoding")
        length = headers.get(b"content-length")
        limit = self.factory.max_body
        if encoding is not None:
            if encoding.lower() != b"chunked":
                raise HttpError(501, "not_implemented",
                                f"transfer-encoding {encoding[:40]!r} is not supported; send "
                                "the body with Content-Length or chunked")
            if length is not None:
                raise HttpError(400, "bad_request",
                                "both Content-Length and Transfer-Encoding are set; send one")
            self._body_left, self._chunks = -1, []
        elif length is not None:
            if not length.isdigit():
                raise HttpError(400, "bad_request",
                                f"Content-Length {length[:40]!r} is not a number of bytes")
            self._body_left = int(length)
            if self._body_left > limit:
                self._too_large(request, f"{self._body_left} bytes")
                return
        else:
            self._body_left = 0
        # Invited only when no earlier answer is due (it would arrive ahead of them); a client
        # not invited sends its body after a short wait anyway.
        if self._body_left and headers.get(b"expect", b"").lower() == b"100-continue" \
                and self._pending[0] is request:
            send_now(self.transport, b"HTTP/1.1 100 Continue\r\n\r\n")
        self._body_request = request
        request.content_parts = []
        request.content_size = 0

    def _read_body(self):
        """Move body bytes from the buffer into the request; True once the body is complete."""
        request = self._body_request
        if self._body_left >= 0:
            taken = min(self._body_left, len(self._buffer))
            request.content_parts.append(bytes(self._buffer[:taken]))
            del self._buffer[:taken]
            self._body_left -= taken
            if self._body_left:
                return False
        elif not self._read_chunks(request):
            return False
        self._body_request = None
        request.content = io.BytesIO(b"".join(request.content_parts))
        del request.content_parts
        if not request.keep_alive:
            # The client closes after this one: nothing after it is read or run.
            self._closing = True
        self._dispatch(request)
        return True

    def _read_chunks(self, request):
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                if len(self._buffer) > 1024:
                    raise HttpError(400, "bad_request", "chunk size line is too long")
                return False
            size_text = bytes(self._buffer[:line_end]).split(b";", 1)[0].strip()
            if not CHUNK_SIZE.match(size_text):
                raise HttpError(400, "bad_request",
                                f"bad chunk size {size_text[:20]!r} in a chunked body")
            size = int(size_text, 16)
            if request.content_size + size > self.factory.max_body:
                # Refused from the announced size, before its bytes are buffered.
                self._too_large(request, f"more than {self.factory.max_body} bytes")
                return False
            if size == 0:
                # The last chunk, then optional trailers, then an empty line.
                end = self._buffer.find(b"\r\n\r\n", line_end)
                if end < 0:
                    return False
                del self._buffer[:end + 4]
                return True
            if len(self._buffer) < line_end + 2 + size + 2:
                return False
            end = line_end + 2 + size
            if self._buffer[end:end + 2] != b"\r\n":
                raise HttpError(400, "bad_request", "a chunk of a chunked body does not end "
                                                    "with CRLF where its size says")
            request.content_parts.append(bytes(self._buffer[line_end + 2:end]))
            request.content_size += size
            del self._buffer[:end + 2]

    def _too_large(self, request, size):
        """Answer 413 from what the client announced (in turn, after the answers due before
        it), then close once the body has gone by."""
        self._closing = True
        self._body_request = None
        self.factory.refused("too_large")
        expected = request.headers.get(b"expect", b"").lower() == b"100-continue"
        if expected or self._body_left < 0:
            # Not invited to send it, or no way to know where it ends: nothing more to read.
            self._discarding = 0
        else:
            self._discarding = max(self._body_left - len(self._buffer), 0)
            if self._discarding:
                self.factory.reactor.callLater(DISCARD_SECONDS, self._give_up_discarding)
        self._buffer.clear()
        request.content = io.BytesIO()
        request.setResponseCode(413)
        request.setHeader(b"content-type", b"application/json")
        request.write(_error_body(
            "too_large", f"request body of {size} is larger than this server's max_body of "
                         f"{self.factory.max_body} bytes; send less, or raise max_body in the "
                         "server definition"))
        request.finish()

    def _give_up_discarding(self):
        self._discarding = 0
        if self.transport is not None:
            self.transport.loseConnection()

    def _refuse(self, exc):
        """A request that cannot be parsed: answer (after those before it) and close."""
        self._closing = True
        self._buffer.clear()
        self._body_request = None
        self.factory.refused(exc.code)
        body = _error_body(exc.code, exc.message)
        if self._pending and self._pending[-1].content is None:
            self._pending.pop()  # the request that broke: it gets this answer instead
        request = HttpRequest(self, b"", b"", b"HTTP/1.1", {})
        request.keep_alive = False
        request.setResponseCode(exc.status)
        request.setHeader(b"content-type", b"application/json")
        request.write(body)
        request.content = io.BytesIO()
        self._pending.append(request)
        request.finish()

    # -- answering --------------------------------------------------------------------------

    def _dispatch(self, request):
        result = self.factory.render(request)
        if result is not NOT_DONE_YET:
            request.write(result)
            request.finish()

    def request_done(self, request):
        """Send every finished response at the head of the queue, in request order."""
        pending = self._pending
        while pending and pending[0].finished:
            done = pending.popleft()
            keep_alive = done.keep_alive and not (self._closing and not pending)
            if self.transport is None or not self.transport.connected:
                return
            send_now(self.transport, done.response_bytes(keep_alive))
            if not done.keep_alive:
                self._closing = True
                self.transport.loseConnection()
                return
        if self._closing and not pending and not self._discarding:
            self.transport.loseConnection()
        elif self._paused and len(pending) < max(1, self.factory.max_pipelined // 2):
            self._paused = False
            self._resume_reading()
        self._arm()

    def _resume_parsing(self):
        if self.transport is not None and self.transport.connected:
            try:
                self._parse()
            except HttpError as exc:
                self._refuse(exc)
            self._arm()


def _error_body(code, message):
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class ServicesFactory(protocol.Factory):
    """Builds an HttpChannel per connection of a "web-services" listener."""

    protocol = HttpChannel
    noisy = False

    # Seconds open connections get at shutdown to flush their last response and close.
    close_grace = 5.0

    def __init__(self, root, max_body, reactor, guard=None, limits=None):
        """`root` routes requests: root.render(request) returns the body or NOT_DONE_YET;
        `guard` (esrt.region.callers.ListenerGuard) is the listener's authentication and what
        it exposes (None: no authentication, everything open); `limits` the listener's
        settings that bound its connections (max_connections, head_timeout, idle_timeout,
        max_pipelined, max_queue; esrt.settings gives the defaults)."""
        self.root = root
        self.max_body = max_body
        self.reactor = reactor
        self.guard = guard
        apply_limits(self, limits, pipelined=32)
        self.in_flight = 0  # calls of this listener queued or running
        self.connections = set()
        self._date = (0, b"")

    def render(self, request):
        return self.root.render(request)

    def buildProtocol(self, addr):
        if len(self.connections) >= self.max_connections:
            self.refused("too_many_connections")
            return Refusal(http_answer(503, "too_many_connections", (
                f"this listener has its {self.max_connections} connections open (its "
                "max_connections); try again in a moment"), ((b"retry-after", b"1"),)),
                self.reactor)
        return super().buildProtocol(addr)

    def refused(self, code):
        """Count a request the server refused before routing it (root.refused, if it counts)."""
        refused = getattr(self.root, "refused", None)
        if refused is not None:
            refused(code)

    def date(self):
        """The Date header's value, formatted at most once a second."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True).encode())
        return self._date[1]

    def close_connections(self):
        """Close every connection once its buffered output is sent; fires when all are gone.

        Without this, a response written just before shutdown could still sit in its
        transport's buffer when the reactor stops, and the client would see a reset.
        """
        def connected(channel):
            transport = channel.transport
            return transport is not None and transport.connected

        open_ones = {channel for channel in self.connections if connected(channel)}
        for channel in open_ones:
            channel.transport.loseConnection()
        waited = [0.0]

        def check():
            if (not any(connected(channel) for channel in open_ones)
                    or waited[0] >= self.close_grace):
                return None
            waited[0] += 0.01
            return task.deferLater(self.reactor, 0.01, check)

        return defer.maybeDeferred(check)
