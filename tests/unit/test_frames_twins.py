"""The C frame splitter and request parser (esrt._frames) agree with their Python twins.

Hypothesis draws byte streams of frames (whole, cut short, oversized, garbage) and request
payloads (well-formed and mangled); both implementations must return the same frames, the same
consumed count and the same fields, and the C path must not leak.
"""

import resource
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from esrt import native, wire
from esrt.sep import protocol as frames

_frames = native.built("_frames")
needs_c = pytest.mark.skipif(_frames is None,
                             reason="esrt._frames not built (run pip install -e .)")


def framed(payload):
    return wire.LENGTH.pack(len(payload)) + payload


streams = st.lists(
    st.one_of(st.binary(max_size=40).map(framed),                         # whole frames
              st.binary(min_size=1, max_size=40).map(lambda p: framed(p)[:-1]),  # cut short
              st.binary(max_size=12)),                                      # garbage
    max_size=6).map(b"".join)


def request_payloads():
    well_formed = st.builds(
        lambda rid, service, key, params: wire.encode_request(rid, service, params, key)[4:],
        st.integers(0, wire.MAX_REQUEST_ID), st.binary(min_size=1, max_size=255),
        st.binary(max_size=wire.MAX_KEY), st.binary(max_size=64))

    def mangle(data, at, value):
        data = bytearray(data)
        if data:
            data[at % len(data)] = value
        return bytes(data)
    mangled = st.builds(mangle, well_formed, st.integers(0, 400), st.integers(0, 255))
    truncated = st.builds(lambda data, cut: data[:cut], well_formed, st.integers(0, 40))
    return st.one_of(well_formed, mangled, truncated, st.binary(max_size=30))


@needs_c
@settings(max_examples=1500, deadline=None)
@given(streams, st.integers(0, 48), st.sampled_from([bytes, bytearray]))
def test_split_frames_twins_agree(stream, max_frame, kind):
    buffer = kind(stream)
    assert _frames.split_frames(buffer, max_frame) == wire.split_frames_python(buffer, max_frame)


@needs_c
@settings(max_examples=1500, deadline=None)
@given(request_payloads())
def test_parse_request_fields_twins_agree(payload):
    expected = wire.parse_request_fields_python(payload)
    assert _frames.parse_request_fields(payload) == expected
    if expected is None:
        with pytest.raises(wire.FrameError):
            wire.parse_request(payload)
    else:
        assert wire.parse_request(payload).params == expected[3]


texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)


@needs_c
@settings(max_examples=1500, deadline=None)
@given(st.integers(0, 2**32 - 1), texts, texts, st.booleans(), st.integers(0, 2**32 - 1),
       st.binary(max_size=40))
def test_call_frame_twins_agree_with_each_other_and_with_encode_frame(
        request_id, service, key, idempotent, ttl, body):
    frame = _frames.call_frame(request_id, service, key, idempotent, ttl, body)
    assert frame == frames.call_frame_python(request_id, service, key, idempotent, ttl, body)
    header = {"id": request_id, "op": "call", "service": service, "key": key,
              "idempotent": idempotent, "ttl": ttl}
    assert frame == frames.encode_frame(header, body)


@needs_c
@pytest.mark.parametrize("request_id, ttl", [(-1, 0), (2**32, 0), (0, -5), (0, 2**64)])
def test_call_frame_twins_refuse_the_same_numbers(request_id, ttl):
    for call_frame in (_frames.call_frame, frames.call_frame_python):
        with pytest.raises(ValueError, match="32-bit"):
            call_frame(request_id, "a.B", "", False, ttl, b"")


def reply_payloads():
    error = st.one_of(st.none(), st.fixed_dictionaries({"code": texts, "message": texts}))
    replies = st.builds(
        lambda request_id, status, rc, attempts, committed, error, body: frames.encode_frame(
            {"id": request_id, "status": status,
             **({"rc": rc} if rc is not None else {}),
             **({"attempts": attempts, "committed": committed} if attempts is not None else {}),
             **({"error": error} if error else {})}, body)[4:],
        st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.one_of(st.none(),
                                                                   st.integers(-2**31, 2**31 - 1)),
        st.one_of(st.none(), st.integers(0, 0xFFFF)), st.booleans(), error, st.binary(max_size=20))
    others = st.builds(lambda pid: frames.encode_frame({"id": 0, "op": "ready", "pid": pid})[4:],
                       st.integers(0, 2**31 - 1))
    mangled = st.builds(lambda data, at, value: data[:at % len(data)] + bytes([value])
                        + data[at % len(data) + 1:], replies, st.integers(0, 60),
                        st.integers(0, 255))
    return st.one_of(replies, others, mangled, st.binary(max_size=30),
                     st.builds(lambda data, cut: data[:cut], replies, st.integers(0, 30)))


@needs_c
@settings(max_examples=1500, deadline=None)
@given(reply_payloads())
def test_reply_fields_twins_agree_and_match_the_full_decoder(payload):
    fields = frames.reply_fields_python(payload)
    assert _frames.reply_fields(payload) == fields
    if fields is not None:
        request_id, status, flags, rc, attempts, body = fields
        header, decoded_body = frames.decode_header(payload)
        assert (header["id"], header["status"], header.get("rc", 0), decoded_body) == (
            request_id, status, rc if flags & frames.HAS_RC else 0, body)
        assert "error" not in header
        assert header.get("attempts") == (attempts if flags & frames.HAS_TRANSACTION else None)


def call_payloads():
    calls = st.builds(
        lambda request_id, service, key, idempotent, ttl, body: frames.call_frame_python(
            request_id, service, key, idempotent, ttl, body)[4:],
        st.integers(0, 2**32 - 1), texts, texts, st.booleans(), st.integers(0, 2**32 - 1),
        st.binary(max_size=20))
    not_utf8 = st.builds(lambda request_id, raw: frames.REQUEST.pack(
        frames.CALL, 0, len(raw), 0, request_id, 0) + raw, st.integers(0, 9),
        st.binary(min_size=1, max_size=6))
    others = st.sampled_from([frames.encode_frame({"id": 3, "op": "cancel"})[4:],
                              frames.encode_frame({"id": 3, "op": "reload"})[4:]])
    mangled = st.builds(lambda data, at, value: data[:at % len(data)] + bytes([value])
                        + data[at % len(data) + 1:], calls, st.integers(0, 40),
                        st.integers(0, 255))
    return st.one_of(calls, not_utf8, others, mangled, st.binary(max_size=20),
                     st.builds(lambda data, cut: data[:cut], calls, st.integers(0, 30)))


@needs_c
@settings(max_examples=1500, deadline=None)
@given(call_payloads())
def test_decode_call_twins_agree_and_match_decode_header(payload):
    decoded = frames.decode_call_python(payload)
    assert _frames.decode_call(payload) == decoded
    if decoded is not None:
        assert decoded == frames.decode_header_python(payload)


values = st.one_of(st.integers(-2**40, 2**70), st.none(), st.booleans(),
                   st.floats(allow_nan=True), st.text(max_size=3),
                   st.sampled_from([10**400, -10**400, 4294967, 4294968]))


def reply_headers():
    plain = st.fixed_dictionaries(
        {"id": st.integers(0, 2**32 - 1), "status": st.integers(100, 599)},
        optional={"rc": st.one_of(st.none(), st.integers(-2**31, 2**31 - 1)),
                  "attempts": st.integers(0, 2**17), "committed": st.booleans(),
                  "replayed": st.booleans(),
                  "ms": st.one_of(st.floats(0, 5e6), st.integers(0, 10**7))})
    odd = st.dictionaries(st.sampled_from(sorted(frames.SUCCESS_FIELDS) + ["error", "op", "x"]),
                          values, max_size=8)
    return st.one_of(plain, plain, odd)


@needs_c
@settings(max_examples=2000, deadline=None)
@given(reply_headers(), st.binary(max_size=20))
@example({"id": 0, "rc": 0.0, "attempts": 0, "status": 0}, b"")  # whole numbers as floats
@example({"attempts": 65536.0, "committed": None, "id": 0, "ms": 0, "status": 0}, b"")
@example({"attempts": 0, "id": 0, "ms": 10**400, "status": 0}, b"")  # capped, in C too
def test_reply_frame_twins_agree_and_match_encode_frame(header, body):
    expected = frames.reply_frame_python(header, body)
    assert _frames.reply_frame(header, body) == expected
    if expected is not None:
        assert frames.decode_header(expected[4:])[1] == body


def numbers_near(limit):
    """Integers around 0 and around `limit`, and now and then something that is not one."""
    return st.one_of(st.integers(-3, 3), st.integers(limit - 3, limit + 3),
                     st.integers(-2**70, 2**70), st.sampled_from([None, True, 1.0, "7"]))


@needs_c
@settings(max_examples=2000, deadline=None)
@given(numbers_near(2**64 - 1), numbers_near(0xFFFF), numbers_near(2**31),
       st.one_of(st.binary(max_size=20), st.just(bytearray(b"{}")), st.just("{}")))
def test_wire_reply_twins_agree_and_decode_to_what_was_sent(request_id, status, rc, body):
    expected = wire.wire_reply_python(request_id, status, rc, body)
    assert _frames.wire_reply(request_id, status, rc, body) == expected
    if expected is not None:
        reply = wire.parse_reply(expected[4:])
        assert (reply.request_id, reply.status, reply.rc, reply.body) == \
            (request_id, status, rc or 0, body)
        return
    # Declined: encode_reply's Python path refuses it, or takes a bytes-like body as bytes.
    try:
        frame = wire.encode_reply(request_id, status, rc, body)
    except (ValueError, TypeError, struct.error):
        return
    assert not isinstance(body, bytes)
    assert frame == wire.encode_reply(request_id, status, rc, bytes(body))


def test_the_switch_picks_the_twin(monkeypatch):
    monkeypatch.setenv("ESRT_PUREPYTHON", "1")
    assert native.load("_frames") is None
    monkeypatch.setenv("ESRT_PUREPYTHON", "0")
    assert native.load("_frames") is _frames


@needs_c
def test_c_frame_functions_do_not_leak():
    request = wire.encode_request(7, "srv01.CBLAPP01", b'{"a": 1}', b"key-1")
    stream = bytearray(request * 3 + request[:9])
    reply_header = {"id": 7, "status": 200, "rc": 0, "attempts": 1, "committed": True}
    reply = frames.encode_frame(reply_header, b'{"a": 1}')[4:]
    call = frames.call_frame_python(7, "srv01.CBLAPP01", "r:1", False, 600, b"{}")

    def rounds(count):
        for _ in range(count):
            _frames.split_frames(stream, 1 << 20)
            _frames.parse_request_fields(request[4:])
            _frames.parse_request_fields(b"\xe5\x01\x01garbage")
            _frames.call_frame(7, "srv01.CBLAPP01", "i:key-\udc80", True, 600, b'{"a": 1}')
            assert _frames.reply_fields(reply)[5] == b'{"a": 1}'
            assert _frames.reply_fields(reply[:10]) is None
            assert _frames.decode_call(call[4:])[0]["service"] == "srv01.CBLAPP01"
            assert _frames.decode_call(call[4:12]) is None
            assert _frames.decode_call(b"\x01\x00\x00\x02" + bytes(10) + b"\xff\xfe") is None
            assert _frames.reply_frame(reply_header, b"{}") is not None
            assert _frames.reply_frame({"id": 1, "status": 200, "ms": "x"}, b"") is None
            assert _frames.wire_reply(7, 200, 0, b'{"a": 1}') is not None
            assert _frames.wire_reply(2**64, 200, 0, b"") is None
            try:
                _frames.call_frame(2**32, "srv01.CBLAPP01", "", False, 0, b"")
            except ValueError:
                pass

    rounds(20000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rounds(300000)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # 300k rounds leaking even one small object each would grow the process by over 10 MiB.
    assert grown_kib < 4096, f"resident size grew by {grown_kib} KiB over 300,000 rounds"
