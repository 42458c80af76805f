"""Frames between a region and its SEPs.

A SEP reads requests from file descriptor 3 and writes replies to file descriptor 4, so that
whatever a COBOL program DISPLAYs on stdout or stderr can never corrupt the conversation.

Every frame is: 4-byte big-endian total length N, then N bytes = 4-byte big-endian header length
H, H bytes of a UTF-8 JSON header object, and the remaining N - 4 - H bytes of body.

Request header:  {"id": int, "op": "call", "service": "srv01.CBLAPP01", "key": str,
                  "idempotent": bool, "ttl": seconds}; body = JSON input. `key` names the
                  request in the reply store (see esrt.region.txstore).
                 {"id": int, "op": "cancel"}: the caller of request `id` went away; roll it
                  back instead of committing if it has not committed yet.
                 {"id": int, "op": "reload"}; body empty: forget cached programs.
Reply header:    {"id": int, "status": 200|400|404|500, "rc": RETURN-CODE (200 only),
                  "error": {"code": str, "message": str} (errors only), "ms": elapsed ms}
                 body = JSON output (200) or empty.
The SEP's first frame, sent once libcob is initialised, is {"id": 0, "op": "ready", "pid": int}.

The region may write several call frames at once (a batch); the SEP answers each of them, in
any order, and the region takes the SEP to be free once every call it sent has its reply.
"""

import json
import struct

from esrt.wire import split_frames

LENGTH = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
READY_ID = 0
REQUEST_FD = 3
REPLY_FD = 4


class ProtocolError(ValueError):
    """The peer sent something that is not a frame; the connection cannot be trusted anymore."""


# Made once: json.dumps with separators would build a new encoder for every frame.
_encode_header = json.JSONEncoder(separators=(",", ":")).encode


def encode_frame(header, body=b""):
    """Return the bytes of one frame."""
    head = _encode_header(header).encode()
    return b"".join((LENGTH.pack(4 + len(head) + len(body)), LENGTH.pack(len(head)), head, body))


class FrameDecoder:
    """Incremental decoder: feed() bytes as they arrive, get back complete (header, body) frames."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data):
        self._buffer += data
        payloads, consumed = split_frames(self._buffer, MAX_FRAME)
        if consumed:
            del self._buffer[:consumed]
        elif len(self._buffer) >= 4 and LENGTH.unpack_from(self._buffer, 0)[0] > MAX_FRAME:
            raise ProtocolError(f"frame length {LENGTH.unpack_from(self._buffer, 0)[0]} is "
                                "out of range")
        return [_split(payload) for payload in payloads]


def _split(payload):
    if len(payload) < 4:
        raise ProtocolError(f"frame length {len(payload)} is out of range")
    (head_len,) = LENGTH.unpack_from(payload, 0)
    if head_len > len(payload) - 4:
        raise ProtocolError("frame header length exceeds the frame")
    try:
        header = json.loads(payload[4:4 + head_len])
    except ValueError as exc:
        raise ProtocolError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not a JSON object")
    return header, payload[4 + head_len:]


def read_frame(stream):
    """Blocking read of one frame from a binary file object; None at end of file."""
    prefix = _read_exactly(stream, 4)
    if prefix is None:
        return None
    (total,) = LENGTH.unpack(prefix)
    if total < 4 or total > MAX_FRAME:
        raise ProtocolError(f"frame length {total} is out of range")
    payload = _read_exactly(stream, total)
    if payload is None:
        raise ProtocolError("stream ended inside a frame")
    return _split(payload)


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


def pack_reply(header, body):
    """A reply as stored with its transaction: 4-byte header length, JSON header, body."""
    head = _encode_header(header).encode()
    return LENGTH.pack(len(head)) + head + body


def unpack_reply(data):
    """The inverse of pack_reply: (header dict, body bytes)."""
    (size,) = LENGTH.unpack_from(data, 0)
    return json.loads(data[4:4 + size]), data[4 + size:]
