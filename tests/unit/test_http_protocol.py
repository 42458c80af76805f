"""The Web Services listener's HTTP/1.1 as clients speak it on the wire: pipelining, chunked
bodies, Expect: 100-continue, HTTP/1.0, HEAD, and clear errors for what it refuses.

A real region process with stand-in SEPs (they echo the JSON body back), driven over raw
sockets so that every byte the client sends and receives is the test's own.
"""

import json
import socket

import pytest

# The same region fixture (a module-scoped region of its own for this module).
from test_region_http import MAX_BODY, region  # noqa: F401


class Wire:
    """A raw client connection that reads whole HTTP responses."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buffer += chunk

    def response(self, head_only=False):
        """(status, headers dict, body bytes) of the next response."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines)}
        length = 0 if head_only else int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self):
        """True when the server has closed the connection (nothing more to read)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


@pytest.fixture
def wire(region):  # noqa: F811 - the imported fixture
    connection = Wire(region.port)
    yield connection
    connection.close()


def post(body, extra=b"", path=b"/services/srv01/CBLAPP01"):
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (path, len(body), extra, body))


def test_pipelined_requests_are_answered_in_order(wire):
    # A stray blank line between requests is ignored, as HTTP/1.1 asks of servers.
    wire.send(b"\r\n".join(post(b'{"n": %d}' % n) for n in range(5)))
    for n in range(5):
        status, headers, body = wire.response()
        assert status == 200
        assert json.loads(body)["echo"] == {"n": n}
        assert "connection" not in headers  # kept alive


def test_chunked_body_is_reassembled(wire):
    wire.send(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n"
              b"5\r\n{\"a\":\r\n4;ext=1\r\n 12}\r\n0\r\n\r\n")
    status, _, body = wire.response()
    assert status == 200 and json.loads(body)["echo"] == {"a": 12}


def test_expect_100_continue_invites_the_body(wire):
    body = b'{"big": "yes"}'
    wire.send(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    status, _, _ = wire.response()
    assert status == 100
    wire.send(body)
    status, _, reply = wire.response()
    assert status == 200 and json.loads(reply)["echo"] == {"big": "yes"}


def test_http_1_0_closes_after_the_answer(wire):
    wire.send(b"POST /services/srv01/CBLAPP01 HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
    status, headers, _ = wire.response()
    assert status == 200 and headers["connection"] == "close"
    assert wire.closed()


def test_connection_close_is_honoured(wire):
    wire.send(post(b"{}", extra=b"Connection: close\r\n"))
    status, headers, _ = wire.response()
    assert status == 200 and headers["connection"] == "close"
    assert wire.closed()


def test_head_sends_headers_only(wire):
    wire.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = wire.response(head_only=True)
    assert status == 200 and int(headers["content-length"]) > 0 and body == b""
    wire.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # still in step
    status, _, body = wire.response()
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /health HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
    (b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400,
     "bad_request"),
    (b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "not_implemented"),
    (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "bad_request"),
])
def test_refused_requests_get_a_json_error_and_the_connection_closes(
        wire, request_bytes, status, code):
    wire.send(request_bytes)
    got, headers, body = wire.response()
    error = json.loads(body)["error"]
    assert (got, error["code"]) == (status, code) and error["message"]
    assert headers["connection"] == "close"
    assert wire.closed()


def test_an_answer_already_due_is_sent_before_the_error(wire):
    wire.send(post(b'{"n": 1}') + b"NONSENSE\r\n\r\n")
    status, _, body = wire.response()
    assert status == 200 and json.loads(body)["echo"] == {"n": 1}
    status, _, body = wire.response()
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"
    assert wire.closed()


def test_the_region_serves_on_after_refusing_a_client(region, wire):  # noqa: F811 - the imported fixture
    wire.send(b"GARBAGE\r\n\r\n")
    assert wire.response()[0] == 400
    other = Wire(region.port)
    try:
        other.send(post(b'{"after": 1}'))
        status, _, body = other.response()
        assert status == 200 and json.loads(body)["echo"] == {"after": 1}
    finally:
        other.close()


def served_calls(region):  # noqa: F811 - the imported fixture
    """How many service calls the region has answered (from its /metrics)."""
    probe = Wire(region.port)
    try:
        probe.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, body = probe.response()
    finally:
        probe.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("esrt_requests_total{"))


def test_nothing_after_connection_close_is_run(region, wire):  # noqa: F811 - the imported fixture
    before = served_calls(region)
    wire.send(post(b'{"n": 1}', extra=b"Connection: close\r\n") + post(b'{"n": 2}'))
    status, headers, body = wire.response()
    assert status == 200 and json.loads(body)["echo"] == {"n": 1}
    assert headers["connection"] == "close" and wire.closed()
    assert served_calls(region) == before + 1


def test_a_refused_body_is_answered_after_the_answers_due_before_it(wire):
    wire.send(post(b'{"n": 1}') + b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    status, _, body = wire.response()
    assert status == 200 and json.loads(body)["echo"] == {"n": 1}
    status, headers, body = wire.response()
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"
    assert headers["connection"] == "close"


def test_a_chunk_announced_too_large_is_refused_before_it_arrives(wire):
    wire.send(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\nfffffff\r\n" + b"x" * 1000)
    status, _, body = wire.response()
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"
    assert wire.closed()


@pytest.mark.parametrize("request_bytes", [
    b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\n{}XX0\r\n\r\n",
    b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 3\r\n"
    b"\r\n{}",
], ids=["negative-chunk-size", "chunk-without-crlf", "two-content-lengths"])
def test_ambiguous_framing_is_refused(wire, request_bytes):
    wire.send(request_bytes)
    status, headers, body = wire.response()
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"
    assert wire.closed()


def test_http_1_0_keep_alive_is_said_and_kept(wire):
    for n in (1, 2):
        wire.send(b"POST /services/srv01/CBLAPP01 HTTP/1.0\r\nConnection: keep-alive\r\n"
                  b"Content-Length: 8\r\n\r\n{\"n\": %d}" % n)
        status, headers, body = wire.response()
        assert status == 200 and json.loads(body)["echo"] == {"n": n}
        assert headers["connection"] == "keep-alive"
