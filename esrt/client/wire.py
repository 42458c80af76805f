"""Client of the "esrt" binary conversation (esrt.wire): `WireClient(host, port)`.

`esrt.client.Client("esrt://HOST:PORT")` returns one of these, so code and the `esrt call`
command written for HTTP work unchanged against a binary listener. One WireClient holds one TCP
connection; `call_many` pipelines: it sends requests without waiting for replies (up to
`window` at a time) and matches replies by request id.
"""

import socket
import urllib.parse

from esrt import wire
from esrt.client.common import (ConnectionFailed, Reply, ServiceError, authorization,
                                connection_problem, retry_call, service_path, tls_context)
from esrt.mapping import jsonio

# Error codes after which the region closes the connection (see esrt.wire).
FATAL_CODES = ("bad_frame", "too_large")


def parse_url(url):
    """'esrt://HOST:PORT' or 'esrts://HOST:PORT' (TLS) -> (host, port, tls); ValueError naming
    the URL otherwise."""
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("esrt", "esrts") or not parsed.hostname or not port \
            or parsed.path not in ("", "/"):
        raise ValueError(f"URL {url!r} must look like esrt://HOST:PORT, or esrts://HOST:PORT "
                         "with TLS (the address of a listener of conversation type esrt)")
    return parsed.hostname, port, parsed.scheme == "esrts"


def to_reply(frame):
    """A reply frame -> Reply of output values; ServiceError for an error status."""
    try:
        decoded = jsonio.loads(frame.body) if frame.body else {}
    except ValueError:
        decoded = None
    if frame.status != 200:
        error = decoded.get("error") if isinstance(decoded, dict) else None
        if isinstance(error, dict):
            return ServiceError(frame.status, error.get("code", "error"), error.get("message", ""))
        return ServiceError(frame.status, "error", f"status {frame.status}: "
                            f"{frame.body[:200].decode('utf-8', 'replace')}")
    if not isinstance(decoded, dict):
        return ServiceError(frame.status, "bad_reply", "the service's reply is not a JSON object")
    reply = Reply(decoded)
    reply.return_code = frame.rc
    return reply


class WireClient:
    """Calls services of one "esrt" listener over one TCP connection (not thread-safe)."""

    # Requests call_many keeps sent but unanswered.
    window = 128

    def __init__(self, host, port=None, timeout=60.0, ca_file=None, cert_file=None,
                 key_file=None, tls=False, token=None, user=None, password=None):
        """`WireClient(host, port)`, or `WireClient("esrt://host:port")`; TLS with
        "esrts://host:port" or `tls=True`, the files as esrt.client.common.tls_context takes
        them; `token`, or `user` and `password`, sent once per connection to a listener that
        authenticates its callers."""
        self.authorization = authorization(token, user, password)
        if port is None:
            host, port, tls = parse_url(host)
        if not tls and (ca_file or cert_file or key_file):
            raise ValueError(f"esrt://{host}:{port} is without TLS, so its certificate files "
                             "would not be used: write esrts:// for a listener with TLS")
        self.host = host
        self.port = int(port)
        self.tls = tls_context(ca_file, cert_file, key_file) if tls else None
        self.url = f"{'esrts' if tls else 'esrt'}://{host}:{self.port}"
        self.timeout = timeout
        self._socket = None
        self._decoder = None
        self._reused = False
        self._next_id = 1
        self._early = {}  # replies read while waiting for another request id

    # -- connection ------------------------------------------------------------------------

    def _connect(self):
        if self._socket is None:
            try:
                sock = socket.create_connection((self.host, self.port), self.timeout)
            except OSError as exc:
                raise ConnectionFailed(connection_problem(self.url, exc)) from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_hostname=self.host)
                except OSError as exc:
                    sock.close()
                    raise ConnectionFailed(connection_problem(self.url, exc)) from None
            self._socket = sock
            self._decoder = wire.FrameDecoder(wire.DEFAULT_MAX_REPLY)
            self._reused = False
            self._early = {}
            if self.authorization:
                self._authenticate()
        return self._socket

    def _authenticate(self):
        request_id = self._next_id
        self._next_id = request_id + 1 if request_id < wire.MAX_REQUEST_ID else 1
        try:
            self._socket.sendall(wire.encode_credentials(request_id, self.authorization))
        except OSError as exc:
            self.close()
            raise ConnectionFailed(connection_problem(
                f"{self.url}: connection lost while sending", exc, self.tls is not None)) from None
        answer = to_reply(self._receive(request_id))
        if isinstance(answer, ServiceError):
            self.close()
            raise answer

    @property
    def connected(self):
        """True while a connection is open: the next call goes over it instead of a new one."""
        return self._socket is not None

    def close(self):
        """Close the connection (the next call opens a new one)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _send(self, data):
        try:
            self._connect().sendall(data)
        except OSError as exc:
            self.close()
            raise ConnectionFailed(connection_problem(
                f"{self.url}: connection lost while sending", exc, self.tls is not None)) from None

    def _receive(self, wanted):
        """Read until the reply to request id `wanted` arrives; return its frame."""
        while wanted not in self._early:
            try:
                data = self._socket.recv(262144)
            except OSError as exc:
                self.close()
                raise ConnectionFailed(connection_problem(
                    f"{self.url}: connection lost", exc, self.tls is not None)) from None
            if not data:
                self.close()
                raise ConnectionFailed(connection_problem(
                    self.url, ConnectionResetError("the listener closed the connection"),
                    self.tls is not None) if self.tls is not None
                    else f"{self.url}: the listener closed the connection")
            try:
                for payload in self._decoder.feed(data):
                    frame = wire.parse_reply(payload)
                    self._early[frame.request_id] = frame
            except wire.FrameError as exc:
                self.close()
                raise ConnectionFailed(f"{self.url}: the listener sent a broken reply: "
                                       f"{exc.message}") from None
            if 0 in self._early and wanted != 0:
                # An error about the connection itself (the request id could not be read).
                frame = self._early.pop(0)
                self.close()
                result = to_reply(frame)
                raise result if isinstance(result, ServiceError) else ConnectionFailed(
                    f"{self.url}: unexpected reply to request id 0")
        return self._early.pop(wanted)

    def _frame(self, service, params, key):
        service_path(service)  # the same name check as HTTP
        request_id = self._next_id
        self._next_id = request_id + 1 if request_id < wire.MAX_REQUEST_ID else 1
        return request_id, wire.encode_request(request_id, service, jsonio.dumps(params or {}),
                                               key or b"")

    def _result(self, frame):
        result = to_reply(frame)
        if isinstance(result, ServiceError) and result.code in FATAL_CODES:
            self.close()
        return result

    # -- calls -----------------------------------------------------------------------------

    def call(self, service, params=None, idempotency_key=None, retry_for=None):
        """Call PACKAGE.PROGRAM with a dict of in/io parameters; return a Reply of out/io values.

        Raises ServiceError for an error reply and ConnectionFailed when the listener cannot be
        reached; `retry_for` works as in esrt.client.Client.call.
        """
        return retry_call(self._call_once, service, params, idempotency_key, retry_for)

    def _call_once(self, service, params, idempotency_key):
        request_id, data = self._frame(service, params, idempotency_key)
        for attempt in (1, 2):
            was_reused = self._socket is not None and self._reused
            self._send(data)
            try:
                frame = self._receive(request_id)
            except ConnectionFailed:
                # A connection the region closed while idle (a restart) fails on first use;
                # nothing came back, as with HTTP keep-alive, so one more try is taken.
                if attempt == 1 and was_reused:
                    continue
                raise
            self._reused = True
            result = self._result(frame)
            if isinstance(result, ServiceError):
                raise result
            return result
        raise AssertionError("unreachable")

    def call_many(self, calls):
        """Pipeline `calls`, an iterable of (service, params) or (service, params, key).

        Returns one result per call, in the order given: a Reply, or the ServiceError of that
        call (returned, not raised, so one failed call does not hide the others). Raises
        ConnectionFailed if the connection is lost before every reply is in.
        """
        frames = []
        for item in calls:
            service, params, *rest = item
            frames.append(self._frame(service, params, rest[0] if rest else None))
        results = []
        sent = 0
        received = 0
        while received < len(frames):
            if sent - received < self.window and sent < len(frames):
                upto = min(len(frames), received + self.window)
                self._send(b"".join(data for _, data in frames[sent:upto]))
                sent = upto
            result = self._result(self._receive(frames[received][0]))
            results.append(result)
            received += 1
            if isinstance(result, ServiceError) and result.code in FATAL_CODES:
                raise ConnectionFailed(f"{self.url}: the listener refused a request "
                                       f"({result.code}: {result.message}) and closed the "
                                       f"connection after {received} of {len(frames)} replies")
        self._reused = True
        return results
