"""Frames between a region and its SEPs.

A SEP reads requests from file descriptor 3 and writes replies to file descriptor 4, so that
whatever a COBOL program DISPLAYs on stdout or stderr can never corrupt the conversation.

Every frame is: 4-byte big-endian total length N, then N bytes of payload: a fixed binary
header (one struct per direction, no JSON to build or parse on every call), its
variable-length fields, then the body. The header's first byte says what the frame is.

Region -> SEP (REQUEST: kind, flags, service length, key length, id, ttl), then the
service name and the key:
  CALL     run `service` ("srv01.CBLAPP01") with the JSON input in the body; `key` names the
           request in the reply store (esrt.region.txstore), kept `ttl` seconds; flag
           IDEMPOTENT: a stored reply under `key` is the answer.
  CANCEL   the caller of request `id` went away: roll it back unless it has committed.
  RELOAD   forget cached programs.
SEP -> region (REPLY: kind, flags, status, id, rc, microseconds, attempts, error code length,
error message length), then the error code and message:
  REPLY    the answer to request `id`: status 200|400|404|499|500|503, RETURN-CODE (200
           only), body = JSON output (200) or empty; the error's code and message otherwise;
           the run's attempts and whether it committed, when it ran in a transaction.
  READY    the first frame, once libcob is initialised; `rc` holds the SEP's pid.

In Python each header is a dict (encode_frame, FrameDecoder, read_frame):
  {"id", "op": "call", "service", "key", "idempotent", "ttl"}, {"id", "op": "cancel"},
  {"id", "op": "reload"}, {"id": 0, "op": "ready", "pid"},
  {"id", "status", "rc", "error": {"code", "message"}, "attempts", "committed", "replayed",
   "ms"}; a field at its default (no key, not idempotent, no rc, ...) is left out.

The region may write several call frames at once (a batch); the SEP answers each of them, in
any order, and the region takes the SEP to be free once every call it sent has its reply.
"""

import json
import struct

from esrt import native
from esrt.wire import split_frames

LENGTH = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
READY_ID = 0
# Request ids are unsigned 32-bit numbers; the region wraps them around (0 is READY_ID).
MAX_REQUEST_ID = 2**32 - 1
REQUEST_FD = 3
REPLY_FD = 4

# Frame kinds (the first byte of every header).
CALL, CANCEL, RELOAD, READY, REPLY = 1, 2, 3, 4, 5
REQUEST_OPS = {"call": CALL, "cancel": CANCEL, "reload": RELOAD}
OP_NAMES = {kind: op for op, kind in REQUEST_OPS.items()}
# kind, flags, service length, key length, request id, ttl seconds
REQUEST = struct.Struct(">BBHHII")
IDEMPOTENT = 1
# kind, flags, status, request id, rc (READY: pid), microseconds, attempts, error code length,
# error message length
REPLY_HEADER = struct.Struct(">BBHIiIHHI")
HAS_RC, HAS_TRANSACTION, COMMITTED, REPLAYED = 1, 2, 4, 8
REQUEST_FIELDS = {"id", "op", "service", "key", "idempotent", "ttl", "pid"}
REPLY_FIELDS = {"id", "status", "rc", "error", "attempts", "committed", "replayed", "ms"}


class ProtocolError(ValueError):
    """The peer sent something that is not a frame; the connection cannot be trusted anymore."""


def _request_header(header):
    unknown = set(header) - REQUEST_FIELDS
    if unknown:
        raise ValueError(f"request header fields {sorted(unknown)} have no place in a frame")
    op = header["op"]
    if op == "ready":
        return REPLY_HEADER.pack(READY, 0, 0, READY_ID, header["pid"], 0, 0, 0, 0)
    service = _bytes(header.get("service", ""))
    key = _bytes(header.get("key") or "")
    flags = IDEMPOTENT if header.get("idempotent") else 0
    return REQUEST.pack(REQUEST_OPS[op], flags, len(service), len(key), header["id"],
                        int(header.get("ttl") or 0)) + service + key


def _reply_header(header):
    unknown = set(header) - REPLY_FIELDS
    if unknown:
        raise ValueError(f"reply header fields {sorted(unknown)} have no place in a frame")
    # Whole numbers only (as the C encoder takes them): `rc or 0` and min() below would
    # pass a float such as 0.0 or 65536.0.
    for name in ("id", "status", "rc", "attempts"):
        value = header.get(name)
        if value is not None and not isinstance(value, int):
            raise TypeError(f"a reply's {name} must be a whole number, not {value!r}")
    flags = 0
    rc = header.get("rc")
    if rc is not None:
        flags |= HAS_RC
    if "attempts" in header or "committed" in header:
        flags |= HAS_TRANSACTION
        if header.get("committed"):
            flags |= COMMITTED
    if header.get("replayed"):
        flags |= REPLAYED
    error = header.get("error") or {}
    code = _bytes(error.get("code", ""))[:0xFFFF]
    message = _bytes(error.get("message", ""))
    micros = min(round(header.get("ms", 0) * 1000), 0xFFFFFFFF)
    return REPLY_HEADER.pack(REPLY, flags, header["status"], header["id"], rc or 0, micros,
                             min(header.get("attempts", 0), 0xFFFF), len(code),
                             len(message)) + code + message


def _bytes(text):
    # A message may quote what a client sent, a lone surrogate included (a JSON key such as
    # "\\ud800" is valid JSON): it is written as an escape instead of failing the frame.
    return str(text).encode(errors="backslashreplace")


def encode_header(header):
    """The binary header (fixed part and variable fields) of a header dict."""
    return _request_header(header) if "op" in header else _reply_header(header)


def encode_frame_python(header, body=b""):
    """The bytes of one frame, in Python (encode_frame takes a successful reply in C)."""
    head = encode_header(header)
    return b"".join((LENGTH.pack(len(head) + len(body)), head, body))


def call_frame_python(request_id, service, key, idempotent, ttl, body):
    """The CALL frame of request `request_id` of `service` under reply-store `key` ("" for
    none): the bytes encode_frame makes of the same fields, without a header dict. Twin of
    esrt._frames.call_frame, which the region uses once per call."""
    if not 0 <= request_id <= 0xFFFFFFFF or not 0 <= ttl <= 0xFFFFFFFF:
        raise ValueError("a call frame's request id and ttl are 32-bit")
    service, key = _bytes(service), _bytes(key)
    if len(service) > 0xFFFF or len(key) > 0xFFFF:
        raise ValueError("a call frame's service and key are at most 65535 bytes long")
    size = REQUEST.size + len(service) + len(key) + len(body)
    if size > 0xFFFFFFFF:
        raise ValueError("a call frame is at most 4 GiB long")
    return b"".join((LENGTH.pack(size), REQUEST.pack(CALL, IDEMPOTENT if idempotent else 0,
                                                     len(service), len(key), request_id, ttl),
                     service, key, body))


def decode_header_python(payload):
    """decode_header in Python (decode_header takes a CALL frame in C)."""
    kind = payload[0] if payload else None
    if kind in OP_NAMES:
        if len(payload) < REQUEST.size:
            raise ProtocolError("request frame shorter than its header")
        _, flags, service_len, key_len, request_id, ttl = REQUEST.unpack_from(payload, 0)
        end = REQUEST.size + service_len + key_len
        if end > len(payload):
            raise ProtocolError("request frame header fields exceed the frame")
        header = {"id": request_id, "op": OP_NAMES[kind]}
        if service_len:
            header["service"] = _text(payload, REQUEST.size, service_len)
        if key_len:
            header["key"] = _text(payload, REQUEST.size + service_len, key_len)
        if flags & IDEMPOTENT:
            header["idempotent"] = True
        if ttl:
            header["ttl"] = ttl
        return header, bytes(payload[end:])
    if kind in (READY, REPLY):
        if len(payload) < REPLY_HEADER.size:
            raise ProtocolError("reply frame shorter than its header")
        (_, flags, status, request_id, rc, micros, attempts, code_len,
         message_len) = REPLY_HEADER.unpack_from(payload, 0)
        if kind == READY:
            return {"id": request_id, "op": "ready", "pid": rc}, bytes(payload[REPLY_HEADER.size:])
        end = REPLY_HEADER.size + code_len + message_len
        if end > len(payload):
            raise ProtocolError("reply frame header fields exceed the frame")
        header = {"id": request_id, "status": status, "ms": micros / 1000}
        if flags & HAS_RC:
            header["rc"] = rc
        if code_len or message_len:
            header["error"] = {
                "code": _text(payload, REPLY_HEADER.size, code_len),
                "message": _text(payload, REPLY_HEADER.size + code_len, message_len)}
        if flags & HAS_TRANSACTION:
            header["attempts"] = attempts
            header["committed"] = bool(flags & COMMITTED)
        if flags & REPLAYED:
            header["replayed"] = True
        return header, bytes(payload[end:])
    raise ProtocolError(f"unknown frame kind {kind!r}")


def reply_fields_python(payload):
    """(request_id, status, flags, rc, attempts, body) of a REPLY frame's payload that
    carries no error text, the region's common case; None for any other payload, which
    decode_header reads (and refuses when it must). Twin of esrt._frames.reply_fields."""
    if len(payload) < REPLY_HEADER.size or payload[0] != REPLY:
        return None
    (_, flags, status, request_id, rc, _, attempts, code_len,
     message_len) = REPLY_HEADER.unpack_from(payload, 0)
    if code_len or message_len:
        return None
    return request_id, status, flags, rc, attempts, bytes(payload[REPLY_HEADER.size:])


def _text(payload, start, length):
    try:
        return bytes(payload[start:start + length]).decode()
    except UnicodeDecodeError:
        raise ProtocolError("frame header text is not UTF-8") from None


def decode_call_python(payload):
    """decode_header's (header, body) of a CALL frame; None for any other payload, and for
    one decode_header refuses. Twin of esrt._frames.decode_call."""
    if payload[:1] != bytes((CALL,)):
        return None
    try:
        return decode_header_python(payload)
    except ProtocolError:
        return None


# The fields of a successful reply's header: the only ones reply_frame encodes itself.
SUCCESS_FIELDS = frozenset({"id", "status", "rc", "attempts", "committed", "replayed", "ms"})


def reply_frame_python(header, body):
    """encode_frame's bytes for a reply `header` with SUCCESS_FIELDS only; None for any other
    header, or one encode_frame refuses. Twin of esrt._frames.reply_frame."""
    if not SUCCESS_FIELDS.issuperset(header):
        return None
    try:
        return encode_frame_python(header, body)
    except (ValueError, TypeError, KeyError, OverflowError, struct.error):
        return None


_native = native.load("_frames")
call_frame = _native.call_frame if _native is not None else call_frame_python
reply_fields = _native.reply_fields if _native is not None else reply_fields_python
decode_call = _native.decode_call if _native is not None else decode_call_python
reply_frame = _native.reply_frame if _native is not None else reply_frame_python


# The frames of every call (a CALL one way, a successful reply the other) take the common
# case's path; every other frame, and every refusal, is the Python code's.

def encode_frame(header, body=b""):
    """Return the bytes of one frame."""
    return reply_frame(header, body) or encode_frame_python(header, body)


def decode_header(payload):
    """(header dict, body) of a frame's payload; ProtocolError when it is not one."""
    return decode_call(payload) or decode_header_python(payload)


class FrameDecoder:
    """Incremental decoder: feed() bytes as they arrive, get back complete (header, body) frames."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data):
        return [decode_header(payload) for payload in self.feed_payloads(data)]

    def feed_payloads(self, data):
        """Like feed(), but the frames' payloads, not yet decoded."""
        self._buffer += data
        payloads, consumed = split_frames(self._buffer, MAX_FRAME)
        if consumed:
            del self._buffer[:consumed]
        elif len(self._buffer) >= 4 and LENGTH.unpack_from(self._buffer, 0)[0] > MAX_FRAME:
            raise ProtocolError(f"frame length {LENGTH.unpack_from(self._buffer, 0)[0]} is "
                                "out of range")
        return payloads


def read_frame(stream):
    """Blocking read of one frame from a binary file object; None at end of file."""
    prefix = _read_exactly(stream, 4)
    if prefix is None:
        return None
    (total,) = LENGTH.unpack(prefix)
    if total < 1 or total > MAX_FRAME:
        raise ProtocolError(f"frame length {total} is out of range")
    payload = _read_exactly(stream, total)
    if payload is None:
        raise ProtocolError("stream ended inside a frame")
    return decode_header(payload)


def _read_exactly(stream, size):
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return None
            raise ProtocolError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# A reply stored with its transaction: STORED_VERSION, status, rc, then the body. Replies
# stored before the binary headers (a 4-byte JSON header length, whose first byte is 0, then
# the JSON header) are still read: they may outlive an upgrade by their time to live.
STORED_VERSION = 1
STORED = struct.Struct(">BHi")


def pack_reply(header, body):
    """A reply's bytes as stored with its transaction (header: status and rc)."""
    return STORED.pack(STORED_VERSION, header["status"], header.get("rc") or 0) + body


def unpack_reply(data):
    """The inverse of pack_reply: (header dict, body bytes); ValueError when `data` is no
    stored reply (a damaged record)."""
    try:
        if data[:1] == bytes([STORED_VERSION]):
            _, status, rc = STORED.unpack_from(data, 0)
            return {"status": status, "rc": rc}, bytes(data[STORED.size:])
        (size,) = LENGTH.unpack_from(data, 0)
        header = json.loads(data[4:4 + size])
    except struct.error as exc:
        raise ValueError(f"a stored reply of {len(data)} bytes is too short: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("status"), int):
        raise ValueError("a stored reply's header is not a reply header")
    return header, data[4 + size:]
