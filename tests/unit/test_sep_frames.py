"""Frames between the region and its SEPs: fixed binary headers, and stored replies."""

import json

import pytest
from hypothesis import given, strategies as st

from esrt.sep.protocol import (
    FrameDecoder, ProtocolError, REQUEST, decode_header, encode_frame, pack_reply,
    unpack_reply)

ids = st.integers(min_value=0, max_value=2**32 - 1)
names = st.text(min_size=1, max_size=60)


@st.composite
def calls(draw):
    header = {"id": draw(ids), "op": "call", "service": draw(names)}
    key = draw(st.text(max_size=200))
    if key:
        header["key"] = key
    if draw(st.booleans()):
        header["idempotent"] = True
    ttl = draw(st.integers(min_value=0, max_value=86400 * 30))
    if ttl:
        header["ttl"] = ttl
    return header


@st.composite
def replies(draw):
    header = {"id": draw(ids), "status": draw(st.sampled_from([200, 400, 404, 499, 500, 503])),
              "ms": draw(st.integers(min_value=0, max_value=10**9)) / 1000}
    if header["status"] == 200:
        header["rc"] = draw(st.integers(min_value=-2**31, max_value=2**31 - 1))
    else:
        header["error"] = {"code": draw(names), "message": draw(st.text(max_size=3000))}
    if draw(st.booleans()):
        header["attempts"] = draw(st.integers(min_value=1, max_value=100))
        header["committed"] = draw(st.booleans())
    if draw(st.booleans()):
        header["replayed"] = True
    return header


@given(st.one_of(calls(), replies(),
                 ids.map(lambda i: {"id": i, "op": "cancel"}),
                 ids.map(lambda i: {"id": i, "op": "reload"}),
                 st.integers(min_value=1, max_value=2**31 - 1).map(
                     lambda pid: {"id": 0, "op": "ready", "pid": pid})),
       st.binary(max_size=300))
def test_every_header_comes_back_as_it_was_sent(header, body):
    frame = encode_frame(header, body)
    # Split anywhere, as a pipe may deliver it.
    decoder = FrameDecoder()
    cut = len(frame) // 2
    assert decoder.feed(frame[:cut]) == []
    assert decoder.feed(frame[cut:]) == [(header, body)]


def test_a_call_header_is_a_fixed_struct_and_its_names_not_json():
    header = {"id": 7, "op": "call", "service": "srv01.CBLAPP01", "key": "i:abc", "ttl": 600}
    frame = encode_frame(header, b'{"A": 1}')
    assert len(frame) == 4 + REQUEST.size + len("srv01.CBLAPP01") + len("i:abc") + 8
    assert frame[4 + REQUEST.size:].startswith(b"srv01.CBLAPP01i:abc")


def test_a_field_the_frame_has_no_place_for_is_refused_not_dropped():
    with pytest.raises(ValueError, match=r"\['trace'\] have no place"):
        encode_frame({"id": 1, "status": 200, "rc": 0, "trace": "x"})


@pytest.mark.parametrize("payload, problem", [
    (b"", "unknown frame kind None"),
    (b"\x09whatever", "unknown frame kind 9"),
    (b"\x01\x00\x00", "request frame shorter than its header"),
    (bytes([1, 0, 0, 50, 0, 0]) + bytes(8), "request frame header fields exceed the frame"),
    (bytes([5]) + bytes(10), "reply frame shorter than its header"),
    (bytes([1, 0, 0, 2, 0, 0]) + bytes(8) + b"\xff\xfe", "not UTF-8"),
])
def test_a_broken_header_is_a_protocol_error(payload, problem):
    with pytest.raises(ProtocolError, match=problem):
        decode_header(payload)


def test_stored_replies_round_trip_and_those_stored_before_binary_headers_still_read():
    stored = pack_reply({"status": 200, "rc": 4}, b'{"LK-COUNTER": 12}')
    assert unpack_reply(stored) == ({"status": 200, "rc": 4}, b'{"LK-COUNTER": 12}')
    # As the previous release stored them: 4-byte JSON header length, JSON header, body. A
    # retried call may meet one after an upgrade, within its idempotency time to live.
    head = json.dumps({"status": 200, "rc": 0}).encode()
    old = len(head).to_bytes(4, "big") + head + b'{"LK-COUNTER": 3}'
    assert unpack_reply(old) == ({"status": 200, "rc": 0}, b'{"LK-COUNTER": 3}')


@pytest.mark.parametrize("stored", [b"\x01\x00", b"\x00\x00\x00\x04[1,2]", b"\x00\x00\x00\x02{}",
                                    b"\x00\x00"])
def test_a_damaged_stored_reply_is_a_value_error(stored):
    with pytest.raises(ValueError):
        unpack_reply(stored)


def test_an_error_message_quoting_a_lone_surrogate_still_makes_a_frame():
    """Clients may send "\\ud800" as a JSON key, and the SEP's error quotes it."""
    header = {"id": 3, "status": 400,
              "error": {"code": "unknown_parameter", "message": "\ud800 is not a parameter"}}
    [(decoded, _)] = FrameDecoder().feed(encode_frame(header))
    assert decoded["error"]["message"] == "\\ud800 is not a parameter"
