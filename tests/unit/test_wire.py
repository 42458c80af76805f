"""The "esrt" binary frame format (esrt.wire): round trips, partial feeds, every malformed case."""

import struct

import pytest
from hypothesis import given, strategies as st

from esrt import wire
from esrt.client import Client, WireClient
from esrt.client.wire import parse_url

LIMIT = 4096 + wire.REQUEST_OVERHEAD


def split(data, limit=LIMIT):
    return wire.FrameDecoder(limit).feed(data)


def fatal(data, limit=LIMIT):
    """Feed `data` as the listener does, parse each request; return the FrameError raised."""
    decoder = wire.FrameDecoder(limit)
    with pytest.raises(wire.FrameError) as caught:
        while True:
            payloads = decoder.feed(data)
            if not payloads:
                break
            data = b""
            for payload in payloads:
                wire.parse_request(payload)
    return caught.value


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def test_request_round_trip():
    data = wire.encode_request(7, "srv01.CBLAPP01", b'{"A": 1}', key="k-1")
    (payload,) = split(data)
    request = wire.parse_request(payload)
    assert (request.request_id, request.service, request.key, request.params) == \
        (7, b"srv01.CBLAPP01", b"k-1", b'{"A": 1}')


def test_request_without_key_or_params():
    (payload,) = split(wire.encode_request(0, b"p.Q", b""))
    request = wire.parse_request(payload)
    assert (request.request_id, request.service, request.key, request.params) == \
        (0, b"p.Q", b"", b"")


def test_reply_round_trip_keeps_negative_return_codes():
    data = wire.encode_reply(2 ** 64 - 1, 500, -12, b'{"error": {}}')
    (payload,) = split(data, limit=1 << 20)
    reply = wire.parse_reply(payload)
    assert (reply.request_id, reply.status, reply.rc, reply.body) == \
        (2 ** 64 - 1, 500, -12, b'{"error": {}}')


@given(request_id=st.integers(0, 2 ** 64 - 1),
       service=st.binary(min_size=1, max_size=255),
       key=st.binary(max_size=200),
       params=st.binary(max_size=600),
       cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_any_request_survives_any_split_of_the_stream(request_id, service, key, params, cuts):
    one = wire.encode_request(request_id, service, params, key)
    stream = one + one
    decoder = wire.FrameDecoder(LIMIT)
    payloads = []
    last = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        payloads += decoder.feed(stream[last:cut])
        last = cut
    assert decoder.buffered == 0
    assert len(payloads) == 2
    for payload in payloads:
        request = wire.parse_request(payload)
        assert (request.request_id, request.service, request.key, request.params) == \
            (request_id, service, key, params)


def test_byte_by_byte_feed_yields_frames_only_when_whole():
    stream = wire.encode_request(1, "a.B", b"{}") + wire.encode_request(2, "a.C", b"[]")
    decoder = wire.FrameDecoder(LIMIT)
    seen = []
    for index in range(len(stream)):
        got = decoder.feed(stream[index:index + 1])
        seen += [(index, wire.parse_request(p).request_id) for p in got]
    first_end = len(wire.encode_request(1, "a.B", b"{}")) - 1
    assert seen == [(first_end, 1), (len(stream) - 1, 2)]


def test_frame_at_the_limit_passes_and_one_byte_more_is_413_with_its_request_id():
    params = b"x" * (LIMIT - wire.FIXED.size - 1 - 3 - 1)
    assert len(split(wire.encode_request(5, "a.B", params))) == 1
    error = fatal(wire.encode_request(5, "a.B", params + b"x"))
    assert (error.status, error.code, error.request_id) == (413, "too_large", 5)
    assert "max_body" in error.message


def test_oversize_is_told_from_the_header_alone():
    header = wire.encode_request(9, "a.B", b"")[:wire.PEEK]
    announced = struct.pack(">I", LIMIT + 1) + header[4:]
    decoder = wire.FrameDecoder(LIMIT)
    assert decoder.feed(announced[:10]) == []  # the request id has not arrived yet
    with pytest.raises(wire.FrameError) as caught:
        decoder.feed(announced[10:])
    assert (caught.value.status, caught.value.request_id) == (413, 9)


def test_http_sent_to_a_binary_listener_is_a_bad_frame():
    error = fatal(b"POST /services/a/B HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (error.status, error.code) == (400, "bad_frame")
    assert "HTTP" in error.message


HEAD = bytes((wire.MAGIC, wire.VERSION, wire.KIND_REQUEST)) + (3).to_bytes(8, "big")


@pytest.mark.parametrize("payload, words, request_id", [
    (b"", "shorter than", 0),
    (HEAD[:5], "shorter than", 0),
    (b"\x00" + HEAD[1:] + b"\x03a.B\x00", "magic byte", 0),
    (HEAD[:1] + b"\x02" + HEAD[2:] + b"\x03a.B\x00", "version 2", 3),
    (HEAD[:2] + b"\x02" + HEAD[3:] + b"\x03a.B\x00", "kind 2", 3),
    (HEAD, "before its service name length", 3),
    (HEAD + b"\x00\x00", "empty service name", 3),
    (HEAD + b"\x05a.B", "inside its 5-byte service name", 3),
    (HEAD + b"\x03a.B", "before its idempotency key length", 3),
    (HEAD + b"\x03a.B\xc9" + b"k" * 201, "over the limit of 200", 3),
    (HEAD + b"\x03a.B\x04kk", "inside its 4-byte idempotency key", 3),
])
def test_malformed_request_frames(payload, words, request_id):
    error = fatal(frame(payload))
    assert (error.status, error.code) == (400, "bad_frame")
    assert words in error.message
    assert error.request_id == request_id


def test_a_reply_is_not_a_request_and_a_short_reply_is_refused():
    error = fatal(wire.encode_reply(4, 200, 0, b"{}"))
    assert error.code == "bad_frame" and error.request_id == 4
    with pytest.raises(wire.FrameError, match="shorter than its 17-byte header"):
        wire.parse_reply(bytes((wire.MAGIC, wire.VERSION, wire.KIND_REPLY)) + bytes(8))


def test_good_frames_before_a_bad_one_are_returned_first():
    stream = wire.encode_request(1, "a.B", b"{}") + frame(b"garbage!!!!!!")
    payloads = split(stream)
    assert wire.parse_request(payloads[0]).request_id == 1
    with pytest.raises(wire.FrameError):
        wire.parse_request(payloads[1])


def test_good_frames_before_an_oversized_one_come_out_before_the_413():
    decoder = wire.FrameDecoder(LIMIT)
    stream = wire.encode_request(1, "a.B", b"{}") + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    (payload,) = decoder.feed(stream)
    assert wire.parse_request(payload).request_id == 1
    with pytest.raises(wire.FrameError) as caught:
        decoder.feed(b"")
    assert caught.value.code == "bad_frame"


@pytest.mark.parametrize("args, problem", [
    ((1, "", b"{}"), "1 to 255 bytes"),
    ((1, "x" * 256, b"{}"), "1 to 255 bytes"),
    ((1, "a.B", b"{}", "k" * 201), "longer than 200"),
    ((-1, "a.B", b"{}"), "from 0 to 2\\*\\*64-1"),
    ((2 ** 64, "a.B", b"{}"), "from 0 to 2\\*\\*64-1"),
])
def test_encoder_refuses_what_cannot_be_sent(args, problem):
    with pytest.raises(ValueError, match=problem):
        wire.encode_request(*args)


def test_client_urls():
    assert parse_url("esrt://127.0.0.1:9004") == ("127.0.0.1", 9004, False)
    assert parse_url("esrts://localhost:9443") == ("localhost", 9443, True)
    client = Client("esrt://localhost:9004", timeout=3)
    assert isinstance(client, WireClient) and (client.host, client.port, client.timeout) == \
        ("localhost", 9004, 3)
    for bad in ("esrt://127.0.0.1", "esrt://:9004", "http://127.0.0.1:9004",
                "esrt://127.0.0.1:9004/services"):
        with pytest.raises(ValueError, match="esrt://HOST:PORT"):
            parse_url(bad)
    with pytest.raises(ValueError, match="http://HOST:PORT, https://HOST:PORT, esrt://HOST:PORT"):
        Client("ftp://127.0.0.1:1")
