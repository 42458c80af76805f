"""The "esrt" binary conversation: length-prefixed frames over TCP, shared by region and client.

A listener of conversation type "esrt" (`--listener "Binary=HOST:PORT,esrt"`) speaks this
instead of HTTP; `esrt.client.Client("esrt://HOST:PORT")` is its client. It carries exactly what
an HTTP call carries (service, idempotency key, the JSON object of parameters; the JSON<->COBOL
conversion stays in the SEP) without HTTP's parsing costs, and it lets a client pipeline.

Every integer is big-endian. Every frame is a 4-byte unsigned length N, then N bytes:

    request  (client -> region)
      u8   magic 0xE5
      u8   version 1
      u8   kind 0x01 (request)
      u64  request id, chosen by the client, echoed in the reply
      u8   S, then S bytes: service name, UTF-8, "PACKAGE.PROGRAM" (1..255 bytes)
      u8   K, then K bytes: idempotency key, printable ASCII (0..200 bytes; 0 = no key)
      ...  the rest: parameters, the same JSON object bytes as the body of an HTTP call

    reply    (region -> client)
      u8   magic 0xE5
      u8   version 1
      u8   kind 0x02 (reply)
      u64  request id of the request answered
      u16  status, as in HTTP: 200, 400, 404, 413, 500, 503
      i32  RETURN-CODE of the program (0 unless status is 200)
      ...  the rest: the JSON output (200) or {"error": {"code": ..., "message": ...}}

    credentials (client -> region, on a listener that authenticates its callers)
      u8   magic 0xE5
      u8   version 1
      u8   kind 0x03 (credentials)
      u64  request id, echoed in the reply
      ...  the rest: what HTTP would send as the Authorization header's value, ASCII
           ("Bearer TOKEN", or "Basic " and base64 of NAME:PASSWORD; at most 4096 bytes)

A connection authenticates once: the credentials frame is answered with status 200 and
{"user": ..., "role": ...}, or 401; the requests sent after it run as that caller, those sent
before it get 401, and so do all of them once the token is revoked, the account deleted or its
password changed. A listener authenticating by client certificate needs no credentials frame.

Pipelining: a client may send any number of requests before reading replies; they run
concurrently and replies come back as they finish, in any order, matched by request id.

Limits and errors: a request frame may be at most the server's max_body plus REQUEST_OVERHEAD
bytes. A longer one gets an error reply with status 413 (code "too_large"); a frame that is not
a request as laid out above gets status 400 (code "bad_frame"). Either way the region then
closes the connection, because the rest of the stream cannot be trusted; it answers the
requests it already accepted first. Errors that concern one well-formed request (unknown
service, bad JSON, bad idempotency key, parameters alone longer than max_body: 413) get an
error reply and the connection stays open.

Standard library only (esrt._frames, when built, splits and parses in C): the region, the
client and tools all import it.
"""

import struct

from esrt import native

MAGIC = 0xE5
VERSION = 1
KIND_REQUEST = 1
KIND_REPLY = 2
KIND_CREDENTIALS = 3
MAX_CREDENTIALS = 4096

LENGTH = struct.Struct(">I")
# magic, version, kind, request id
FIXED = struct.Struct(">BBBQ")
REPLY_HEAD = struct.Struct(">BBBQHi")
MAX_SERVICE = 255
MAX_KEY = 200
MAX_REQUEST_ID = 2 ** 64 - 1
# The most a request frame holds besides its parameters.
REQUEST_OVERHEAD = FIXED.size + 1 + MAX_SERVICE + 1 + MAX_KEY
# Bytes needed to read a frame's request id (length prefix + fixed part).
PEEK = LENGTH.size + FIXED.size
# Replies can be larger than requests (a service's output); the client's bound for them.
DEFAULT_MAX_REPLY = 256 * 1024 * 1024


class FrameError(ValueError):
    """A frame that breaks the format: `status` and `code` for the error reply, and the
    `request_id` it carried (0 when it could not be read). The connection cannot go on."""

    def __init__(self, status, code, message, request_id=0):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


def bad_frame(message, request_id=0):
    """A FrameError for a malformed frame (400, "bad_frame")."""
    return FrameError(400, "bad_frame", message, request_id)


class Request:
    """One decoded request frame."""

    __slots__ = ("request_id", "service", "key", "params")

    def __init__(self, request_id, service, key, params):
        self.request_id = request_id
        self.service = service  # bytes, as sent (decoding is the server's concern)
        self.key = key  # bytes, empty when the call has no idempotency key
        self.params = params

    def __repr__(self):
        return (f"Request({self.request_id}, {self.service!r}, key={self.key!r}, "
                f"params={self.params[:80]!r})")


class Reply:
    """One decoded reply frame."""

    __slots__ = ("request_id", "status", "rc", "body")

    def __init__(self, request_id, status, rc, body):
        self.request_id = request_id
        self.status = status
        self.rc = rc
        self.body = body

    def __repr__(self):
        return f"Reply({self.request_id}, {self.status}, rc={self.rc}, body={self.body[:80]!r})"


def _check_id(request_id):
    if not isinstance(request_id, int) or not 0 <= request_id <= MAX_REQUEST_ID:
        raise ValueError(f"request id {request_id!r} must be an integer from 0 to 2**64-1")


def encode_request(request_id, service, params, key=b""):
    """Return the bytes of one request frame; `service` and `key` are str or bytes."""
    _check_id(request_id)
    if isinstance(service, str):
        service = service.encode("utf-8")
    if isinstance(key, str):
        key = key.encode("ascii")
    key = key or b""
    if not 1 <= len(service) <= MAX_SERVICE:
        raise ValueError(f"service name {service!r} must be 1 to {MAX_SERVICE} bytes long")
    if len(key) > MAX_KEY:
        raise ValueError(f"idempotency key of {len(key)} bytes is longer than {MAX_KEY} bytes")
    size = FIXED.size + 1 + len(service) + 1 + len(key) + len(params)
    return b"".join((LENGTH.pack(size), FIXED.pack(MAGIC, VERSION, KIND_REQUEST, request_id),
                     bytes((len(service),)), service, bytes((len(key),)), key, params))


def encode_credentials(request_id, authorization):
    """Return the bytes of a credentials frame; `authorization` as an HTTP Authorization
    header's value (str or bytes)."""
    _check_id(request_id)
    if isinstance(authorization, str):
        authorization = authorization.encode("ascii")
    if not 1 <= len(authorization) <= MAX_CREDENTIALS:
        raise ValueError(f"credentials must be 1 to {MAX_CREDENTIALS} bytes long")
    return b"".join((LENGTH.pack(FIXED.size + len(authorization)),
                     FIXED.pack(MAGIC, VERSION, KIND_CREDENTIALS, request_id), authorization))


def is_credentials(payload):
    """Whether a frame's payload is a credentials frame (the rest go to request_fields)."""
    return len(payload) > 2 and payload[2] == KIND_CREDENTIALS


def credentials_fields(payload):
    """(request_id, authorization bytes) of a credentials frame; FrameError when malformed."""
    request_id = _check_fixed(payload, KIND_CREDENTIALS)
    authorization = bytes(payload[FIXED.size:])
    if not 1 <= len(authorization) <= MAX_CREDENTIALS:
        raise bad_frame(f"credentials of {len(authorization)} bytes: send 1 to "
                        f"{MAX_CREDENTIALS}", request_id)
    return request_id, authorization


def encode_reply(request_id, status, rc, body):
    """Return the bytes of one reply frame."""
    return wire_reply(request_id, status, rc, body) or encode_reply_python(request_id, status,
                                                                           rc, body)


def wire_reply_python(request_id, status, rc, body):
    """encode_reply's bytes, or None where it would refuse (an id, status or RETURN-CODE out
    of range or not an integer, a body that is not bytes): the twin of
    esrt._frames.wire_reply."""
    rc = 0 if rc is None else rc
    if not (isinstance(request_id, int) and isinstance(status, int) and isinstance(rc, int)
            and isinstance(body, bytes)):
        return None
    if not (0 <= request_id <= MAX_REQUEST_ID and 0 <= status <= 0xFFFF
            and -2**31 <= rc < 2**31 and REPLY_HEAD.size + len(body) <= 0xFFFFFFFF):
        return None
    return encode_reply_python(request_id, status, rc, body)


def encode_reply_python(request_id, status, rc, body):
    """encode_reply in Python: raises ValueError or struct.error on what it cannot encode."""
    _check_id(request_id)
    return b"".join((LENGTH.pack(REPLY_HEAD.size + len(body)),
                     REPLY_HEAD.pack(MAGIC, VERSION, KIND_REPLY, request_id, status, rc or 0),
                     body))


def _check_fixed(payload, kind):
    """Validate magic, version and kind; return the request id."""
    if len(payload) < FIXED.size:
        raise bad_frame(f"frame of {len(payload)} bytes is shorter than the {FIXED.size}-byte "
                        "fixed header (magic, version, kind, request id)")
    magic, version, got_kind, request_id = FIXED.unpack_from(payload, 0)
    if magic != MAGIC:
        raise bad_frame(f"frame starts with byte 0x{magic:02X}, not the magic byte "
                        f"0x{MAGIC:02X}; is the client speaking HTTP to a binary listener?")
    if version != VERSION:
        raise bad_frame(f"frame has version {version}; this server speaks version {VERSION}",
                        request_id)
    if got_kind != kind:
        names = {KIND_REQUEST: "request", KIND_REPLY: "reply", KIND_CREDENTIALS: "credentials"}
        raise bad_frame(f"frame has kind {got_kind}, expected {kind} ({names[kind]})",
                        request_id)
    return request_id


def parse_request(payload):
    """Decode the payload of a request frame (after its length) into a Request.

    Raises FrameError (400, "bad_frame") naming what is wrong with a malformed one.
    """
    return Request(*request_fields(payload))


def request_fields(payload):
    """parse_request's fields as a tuple (request_id, service, key, params), without the
    Request: the listener's path for every call."""
    fields = parse_request_fields(payload)
    if fields is None:
        _explain_bad_request(payload)
    return fields


def parse_request_fields_python(payload):
    """(request_id, service, key, params) of a well-formed request payload, else None.

    The twin of esrt._frames.parse_request_fields.
    """
    try:
        return _checked_request_fields(payload)
    except FrameError:
        return None


def _explain_bad_request(payload):
    _checked_request_fields(payload)
    raise AssertionError("the C and Python request parsers disagree on %r" % (payload[:64],))


def _checked_request_fields(payload):
    request_id = _check_fixed(payload, KIND_REQUEST)
    at = FIXED.size
    end = len(payload)
    if at >= end:
        raise bad_frame("request frame ends before its service name length", request_id)
    size = payload[at]
    at += 1
    if size == 0:
        raise bad_frame("request frame has an empty service name; name a service "
                        "PACKAGE.PROGRAM", request_id)
    if at + size > end:
        raise bad_frame(f"request frame ends inside its {size}-byte service name", request_id)
    service = bytes(payload[at:at + size])
    at += size
    if at >= end:
        raise bad_frame("request frame ends before its idempotency key length", request_id)
    size = payload[at]
    at += 1
    if size > MAX_KEY:
        raise bad_frame(f"idempotency key length {size} is over the limit of {MAX_KEY}",
                        request_id)
    if at + size > end:
        raise bad_frame(f"request frame ends inside its {size}-byte idempotency key", request_id)
    key = bytes(payload[at:at + size])
    at += size
    return request_id, service, key, bytes(payload[at:])


def split_frames_python(buffer, max_frame):
    """Whole frames (of at most `max_frame` bytes) at the start of `buffer`: (payloads, consumed).

    The twin of esrt._frames.split_frames: stops at the first incomplete or oversized frame,
    which the caller deals with.
    """
    payloads = []
    start = 0
    available = len(buffer)
    while available - start >= LENGTH.size:
        (size,) = LENGTH.unpack_from(buffer, start)
        if size > max_frame or available - start - LENGTH.size < size:
            break
        payloads.append(bytes(buffer[start + LENGTH.size:start + LENGTH.size + size]))
        start += LENGTH.size + size
    return payloads, start


def parse_reply(payload):
    """Decode the payload of a reply frame (after its length) into a Reply."""
    request_id = _check_fixed(payload, KIND_REPLY)
    if len(payload) < REPLY_HEAD.size:
        raise bad_frame(f"reply frame of {len(payload)} bytes is shorter than its "
                        f"{REPLY_HEAD.size}-byte header", request_id)
    _, _, _, _, status, rc = REPLY_HEAD.unpack_from(payload, 0)
    return Reply(request_id, status, rc, bytes(payload[REPLY_HEAD.size:]))


class FrameDecoder:
    """Incremental splitter: feed() bytes as they arrive, get back whole frame payloads.

    Raises FrameError (413, "too_large") as soon as a length prefix announces more than
    `max_frame` bytes, carrying the request id when the bytes that hold it have arrived (it
    waits for them: a client that sends a frame sends its header along). Frames complete
    before the oversized one are returned first; the call after that raises, so a caller
    feeds b"" after every non-empty result until it gets none.
    """

    def __init__(self, max_frame):
        self.max_frame = max_frame
        self._buffer = bytearray()

    @property
    def buffered(self):
        """Bytes received that do not make a whole frame yet."""
        return len(self._buffer)

    def feed(self, data):
        """Add `data`; return the list of complete payloads (bytes), oldest first."""
        buffer = self._buffer
        if buffer:
            buffer += data
            frames, start = split_frames(buffer, self.max_frame)
            if start:
                del buffer[:start]
        else:
            # The common case: nothing left over from before, and `data` is whole frames:
            # split where it is, nothing copied into the buffer.
            frames, start = split_frames(data, self.max_frame)
            if start == len(data):
                return frames
            buffer += data[start:] if start else data
        # Whole frames before an oversized one are returned first; the next feed() (feed(b"")
        # will do) raises, once the bytes holding its request id are in.
        if not start and len(buffer) >= PEEK:
            (size,) = LENGTH.unpack_from(buffer, 0)
            if size > self.max_frame:
                raise self._too_large(size)
        return frames

    def _too_large(self, size):
        magic, _, _, request_id = FIXED.unpack_from(self._buffer, LENGTH.size)
        if magic != MAGIC:
            return bad_frame(f"frame starts with byte 0x{magic:02X}, not the magic byte "
                             f"0x{MAGIC:02X}; is the client speaking HTTP to a binary listener?")
        return FrameError(413, "too_large",
                          f"frame of {size} bytes is larger than this server's limit of "
                          f"{self.max_frame} bytes (max_body plus {REQUEST_OVERHEAD} bytes of "
                          "header); send less, or raise max_body in the server definition",
                          request_id)


_native = native.load("_frames")
split_frames = _native.split_frames if _native else split_frames_python
parse_request_fields = (_native.parse_request_fields if _native
                        else parse_request_fields_python)
wire_reply = _native.wire_reply if _native else wire_reply_python
