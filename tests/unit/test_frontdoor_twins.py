"""The HTTP front door's common case in C (esrt._frontdoor) agrees with its Python twin
(esrt.region._pyfrontdoor), and both agree with the full parser they stand in for.

Hypothesis draws request heads from parts real clients send and parts they should not (bad
methods and targets, obs-fold, control bytes, duplicate or malformed Content-Length, chunked
bodies, blank lines before the request, cut-off streams): C and Python must return the same
request, the same "wait" or the same "not plain"; a plain request must be read exactly as
httpserver's full parser reads it; answers must be byte for byte what the header-by-header
path writes. The C functions must not leak.
"""

import resource
from http import HTTPStatus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esrt import native
from esrt.region import _pyfrontdoor, frontdoor
from esrt.region.admission import Admission
from esrt.region.httpserver import MAX_HEADER_BYTES, NOT_DONE_YET, HttpChannel, HttpRequest

_frontdoor = native.built("_frontdoor")
needs_c = pytest.mark.skipif(_frontdoor is None,
                             reason="esrt._frontdoor not built (run pip install -e .)")
DATE = b"Sun, 06 Dec 2026 15:00:00 GMT"

plain_methods = st.sampled_from([b"POST", b"GET", b"HEAD", b"DELETE", b"M-SEARCH"])
plain_targets = st.sampled_from([b"/services/null/NULLSVC", b"/services/srv01/CBLAPP01?trace=1&x",
                                 b"/", b"/health", b"/?"])
plain_versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])
plain_headers = st.sampled_from([
    b"Host: 127.0.0.1:8080", b"Content-Type: application/json", b"Connection: close",
    b"Connection: keep-alive", b"connection: Keep-Alive, Upgrade", b"CONNECTION:  CLOSE ",
    b"Idempotency-Key: 4f1c-9", b"Idempotency-Key:", b"X-Tab:\tv \t", b"X-High: \xe9t\xe9",
    b"X-Dup: 1", b"x-dup: 2", b"X-Colons: a:b:c", b"Accept: */*"])
odd_methods = st.one_of(st.sampled_from([b"", b"PO ST", b"G\x00T"]), st.binary(max_size=5))
odd_targets = st.one_of(
    st.sampled_from([b"http://host:8080/services/a/B", b"*", b"/a\x7fb", b"/a b", b"/caf\xc3\xa9",
                     b""]),
    st.binary(max_size=6).map(lambda tail: b"/" + tail))
odd_versions = st.sampled_from([b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 x", b"HTTP/1.10"])
odd_headers = st.one_of(
    st.sampled_from([
        b"Transfer-Encoding: chunked", b"Expect: 100-continue", b"Content-Length: +2",
        b"Content-Length: ", b"Content-Length: 2 2", b"Content-Length: 99999999999999999999",
        b"content-length: 002", b" Host: x", b"Host : x", b"X-Ctl: a\x0bb", b"X-Del: a\x7f",
        b"NoColon", b":empty-name", b"X-CR: a\rb", b"X-LF: a\nb"]),
    st.builds(lambda name, value: name + b":" + value,
              st.binary(max_size=6), st.binary(max_size=8)))
after = st.sampled_from([b"", b"GET /health HTTP/1.1\r\n\r\n", b"\r\n", b"POS"])


@st.composite
def requests(draw, methods, targets, versions, headers, lead=None):
    """One request from the given parts, its Content-Length right, wrong or missing, and
    what a pipelining client sends after it."""
    body = draw(st.binary(max_size=10))
    start = draw(lead) if lead is not None else b""
    lines = draw(st.lists(headers, max_size=5))
    length = draw(st.sampled_from([None, len(body), len(body), max(len(body) - 1, 0),
                                   len(body) + 3]))
    if length is not None:
        lines.insert(draw(st.integers(0, len(lines))), b"Content-Length: %d" % length)
    return (start + draw(methods) + b" " + draw(targets) + b" " + draw(versions)
            + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body
            + draw(after))


def mangled(data, at, value):
    data = bytearray(data)
    data[at % len(data)] = value
    return bytes(data)


plain = requests(plain_methods, plain_targets, plain_versions, plain_headers)
odd = requests(st.one_of(plain_methods, odd_methods), st.one_of(plain_targets, odd_targets),
               st.one_of(plain_versions, odd_versions), st.one_of(plain_headers, odd_headers),
               lead=st.sampled_from([b"", b"\r\n"]))
streams = st.one_of(
    plain,
    st.builds(mangled, plain, st.integers(0, 500), st.integers(0, 255)),      # one byte off
    st.builds(lambda data, cut: data[:cut], plain, st.integers(0, 200)),      # not all here
    odd)


@needs_c
@settings(max_examples=3000, deadline=None)
@given(streams, st.integers(0, 160), st.integers(0, 12), st.sampled_from([bytes, bytearray]))
def test_read_request_twins_agree(stream, max_header, max_body, kind):
    buffer = kind(stream)
    expected = _pyfrontdoor.read_request(buffer, max_header, max_body)
    assert _frontdoor.read_request(buffer, max_header, max_body) == expected


class _Transport:
    connected = True

    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def loseConnection(self):  # noqa: N802 - Twisted's name
        self.connected = False


class _Factory:
    max_pipelined = 32

    def __init__(self, max_body):
        self.max_body = max_body
        self.rendered, self.refusals = [], []

    def render(self, request):
        self.rendered.append(request)
        return NOT_DONE_YET

    def refused(self, code):
        self.refusals.append(code)


def full_parser_reads(data, max_body):
    """The requests httpserver's full parser makes of `data`, with its refusals."""
    channel = HttpChannel()
    channel.read_plain = lambda buffer, max_header, max_body: False
    channel.factory = _Factory(max_body)
    channel.transport = _Transport()
    channel.dataReceived(data)
    return channel.factory.rendered, channel.factory.refusals, bytes(channel._buffer)


@settings(max_examples=3000, deadline=None)
@given(streams, st.integers(0, 12))
def test_a_plain_request_is_read_as_the_full_parser_reads_it(stream, max_body):
    plain = frontdoor.read_request(stream, MAX_HEADER_BYTES, max_body)
    if plain is False:
        return
    if plain is None:
        rendered, refusals, _ = full_parser_reads(stream, max_body)
        assert (rendered, refusals) == ([], []), "the fast path waits where the full one does not"
        return
    consumed, method, path, version, headers, body, keep_alive = plain
    rendered, refusals, left = full_parser_reads(stream[:consumed], max_body)
    assert refusals == [] and left == b""
    [request] = rendered
    assert (request.method, request.path, request.version, request.headers,
            request.content.read(), request.keep_alive) == (method, path, version, headers,
                                                           body, keep_alive)


def test_the_requests_clients_send_are_plain():
    curl = (b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            b"User-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Type: application/json\r\n"
            b"Idempotency-Key: 7d0b\r\nContent-Length: 2\r\n\r\n{}")
    wrk = b"POST /services/null/NULLSVC HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
    for request in (curl, wrk):
        assert frontdoor.read_request(request, MAX_HEADER_BYTES, 1024)[0] == len(request)
    # A body not all here yet is the full parser's to read piece by piece (this would read
    # the head again for every piece).
    assert frontdoor.read_request(curl[:-1], MAX_HEADER_BYTES, 1024) is False
    # A chunked body is not the common case: the full parser reads it.
    assert frontdoor.read_request(curl.replace(b"Content-Length: 2\r\n\r\n{}",
                                               b"Transfer-Encoding: chunked\r\n\r\n"),
                                  MAX_HEADER_BYTES, 1024) is False


statuses = st.one_of(st.sampled_from(sorted(_pyfrontdoor.REASONS) + [413, 499]),
                     st.integers(100, 599))
return_codes = st.one_of(st.none(), st.integers(-2**31, 2**31 - 1),
                         st.integers(-2**70, 2**70), st.just("7"))


@needs_c
@settings(max_examples=2000, deadline=None)
@given(statuses, st.binary(max_size=40), return_codes, st.binary(max_size=40),
       st.booleans(), st.booleans(), st.booleans())
def test_response_twins_agree(status, body, rc, date, keep_alive, http10, head_only):
    args = (status, body, rc, date, keep_alive, http10, head_only)
    assert _frontdoor.response(*args) == _pyfrontdoor.response(*args)


class _Channel:
    def date(self):
        return DATE

    def request_done(self, request):
        pass


@settings(max_examples=500, deadline=None)
@given(statuses, st.binary(max_size=40), return_codes, st.booleans(),
       st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]), st.sampled_from([b"POST", b"HEAD"]))
def test_an_answer_is_what_the_header_by_header_path_writes(status, body, rc, keep_alive,
                                                           version, method):
    quick = HttpRequest(_Channel(), method, b"/services/a/B", version, {})
    quick.finish_json(status, body, rc)
    slow = HttpRequest(_Channel(), method, b"/services/a/B", version, {})
    slow.setResponseCode(status)
    slow.setHeader(b"content-type", b"application/json")
    slow.setHeader(b"content-length", str(len(body)).encode())
    if rc is not None:
        slow.setHeader(b"esrt-return-code", str(rc).encode())
    slow.write(body)
    slow.finish()
    assert quick.response_bytes(keep_alive) == slow.response_bytes(keep_alive)


def test_a_body_sent_in_pieces_is_read_once_its_head_is_read():
    head = (b"POST /services/a/B HTTP/1.1\r\nHost: h\r\n" + b"X-Pad: %s\r\n" % (b"p" * 900)
            + b"Content-Length: 3000\r\n\r\n")
    channel = HttpChannel()
    reads = []
    channel.read_plain = lambda buffer, *limits: (reads.append(bytes(buffer))
                                                  or frontdoor.read_request(buffer, *limits))
    channel.factory = _Factory(4096)
    channel.transport = _Transport()
    channel.dataReceived(head + b"x" * 1000)
    assert bytes(channel._buffer) == b""  # the head is read, the body's first piece taken
    channel.dataReceived(b"x" * 1000)
    channel.dataReceived(b"x" * 1000)
    [request] = channel.factory.rendered
    assert request.content.read() == b"x" * 3000
    # The head was not read again for each piece of the body.
    assert [read[:4] for read in reads if read] == [b"POST"]


def test_the_reason_phrases_are_pythons():
    for status, phrase in _pyfrontdoor.REASONS.items():
        assert phrase == HTTPStatus(status).phrase.encode()


def test_the_switch_picks_the_twin(monkeypatch):
    monkeypatch.setenv("ESRT_PUREPYTHON", "1")
    assert native.load("_frontdoor") is None
    monkeypatch.setenv("ESRT_PUREPYTHON", "0")
    assert native.load("_frontdoor") is _frontdoor


DEPLOYED = {"srv01.CBLAPP01": "service", "null.NULLSVC": "service", "é.X": "service"}
keys = st.one_of(st.none(), st.binary(max_size=3), st.binary(min_size=199, max_size=202),
                 st.sampled_from([b"key-1", b"a b", b"\x7f", b"k" * 200, b"k" * 201]))
service_names = st.one_of(st.sampled_from([name.encode() for name in DEPLOYED]),
                          st.sampled_from([b"srv01.NOPE", b"", b"srv01.\xff", b"SRV01.CBLAPP01"]),
                          st.binary(max_size=8))


@needs_c
@settings(max_examples=3000, deadline=None)
@given(service_names, st.binary(max_size=20), keys, st.integers(-1, 24))
def test_admit_twins_agree(service, params, key, max_body):
    assert _frontdoor.admit(DEPLOYED, service, params, key, max_body) == \
        _pyfrontdoor.admit(DEPLOYED, service, params, key, max_body)


class FullChecksOnly:
    """A service table whose by_name is empty, so that Admission's one-step path declines
    every call and its own checks decide; lookup() finds DEPLOYED's services."""

    by_name = {}

    def lookup(self, name):
        return type("Service", (), {"name": name})() if name in DEPLOYED else None

    def names(self):
        return sorted(DEPLOYED)


class Sent:
    inactive_reason = None

    def __init__(self):
        self.calls = []

    def send(self, service, body, key, reply_to, token):
        self.calls.append((service, body, key))


@settings(max_examples=1000, deadline=None)
@given(service_names, st.binary(max_size=20), keys, st.integers(0, 24))
def test_admit_takes_only_what_the_full_checks_admit(service, params, key, max_body):
    """What the one-step path admits, Admission's own checks admit too, as the same call."""
    admitted = frontdoor.admit(DEPLOYED, service, params, key, max_body)
    if admitted is None:
        return
    sent = Sent()
    refused = []
    Admission("ESSRV01", FullChecksOnly(), sent, max_body, metrics=None).admit(
        "esrt", service, params, key, lambda reply, token, ticket: refused.append(reply), None)
    assert refused == [] and sent.calls == [(admitted[0], params, admitted[1])]


@needs_c
def test_c_front_door_functions_do_not_leak():
    request = (b"POST /services/srv01/CBLAPP01?x HTTP/1.1\r\nHost: h\r\nIdempotency-Key: k\r\n"
               b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}")
    long_name = b"X-" + b"n" * 100 + b": v\r\n"  # a name too long for the stack buffer
    declined = request.replace(b"Host: h\r\n", long_name + b"Expect: 100-continue\r\n")
    buffer = bytearray(request + request[:30])
    services = {"srv01.CBLAPP01": object()}

    def rounds(count):
        for _ in range(count):
            assert _frontdoor.read_request(buffer, MAX_HEADER_BYTES, 100)[0] == len(request)
            assert _frontdoor.read_request(declined, MAX_HEADER_BYTES, 100) is False
            assert _frontdoor.read_request(request[:-1], MAX_HEADER_BYTES, 100) is False
            assert _frontdoor.read_request(request[:20], MAX_HEADER_BYTES, 100) is None
            assert _frontdoor.response(200, b"{}", 2**40, DATE, True, False, False) is None
            assert _frontdoor.read_request(request.replace(b"Host: h\r\n", long_name),
                                           MAX_HEADER_BYTES, 100)
            _frontdoor.response(200, b'{"a": 1}', 0, DATE, True, False, False)
            assert _frontdoor.response(499, b"{}", None, DATE, False, True, True) is None
            assert _frontdoor.admit(services, b"srv01.CBLAPP01", b"{}", b"key-1", 64) == \
                ("srv01.CBLAPP01", "key-1")
            assert _frontdoor.admit(services, b"srv01.NOPE", b"{}", None, 64) is None

    rounds(20000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rounds(200000)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # Leaking one dict, tuple or bytes per round would grow the process by tens of MiB.
    assert grown_kib < 4096, f"resident size grew by {grown_kib} KiB over 200,000 rounds"
