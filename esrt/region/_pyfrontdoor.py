"""The pure-Python twin of esrt._frontdoor (native/_frontdoor.c): an HTTP service call's
common case, read from a connection's buffer in one step, and its answer built in one step.

Both take only the plain case and decline everything else, so the full parser in
esrt.region.httpserver stays the one place that decides what an unusual request means and owns
every error message; the two implementations can never disagree on one.

read_request(buffer, max_header, max_body)
    The request at the start of `buffer` (bytes or bytearray), if it is plain: no blank lines
    before it, a request line "METHOD /origin-form-target HTTP/1.1" (or HTTP/1.0) whose method
    is a token and whose target is visible ASCII, header names that are tokens, header values
    of tabs, visible ASCII and bytes from 0x80, no Transfer-Encoding or Expect, at most one
    Content-Length (1 to 18 digits, at most max_body), a head at most max_header bytes long.

    Returns a tuple (consumed, method, path, version, headers, body, keep_alive): `path` is the
    target without its query, `headers` maps lower-case names to values stripped of spaces and
    tabs (the last of repeated names wins), `body` is bytes. None: the head is not all here yet
    (wait for more bytes). False: not plain, or its body is not all here (the full parser reads
    a body piece by piece, where this would read the head again for every piece): let the
    full parser read it.

response(status, body, rc, date, keep_alive, http10, head_only)
    The bytes of a JSON answer, exactly as the full path writes them (status line, then
    content-type, content-length, esrt-return-code when `rc` is not None, date, and
    "connection: close" or, for HTTP/1.0 keep-alive, "connection: keep-alive"); without the
    body for a HEAD request. None for a status outside REASONS, or an `rc` that is not a 32-bit
    integer (a RETURN-CODE always is).

admit(services, service, params, key, max_body)
    The common case of a call's admission (esrt.region.admission), for both listeners:
    `service` (bytes) is ASCII and a key of the dict `services`, `params` (bytes) is at most
    max_body bytes long, and `key` is None or 1 to 200 bytes from 0x21 to 0x7E. Returns
    (name, key) as str (key None when it was None); None for anything else, which
    Admission.admit's own checks decide and explain.
"""

import sys
from http import HTTPStatus

TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
TARGET = frozenset(range(0x21, 0x7F))
VALUE = frozenset([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
MAX_LENGTH_DIGITS = 18
# The statuses a service call is answered with; others take the full path. 413 is left out
# because its phrase depends on the Python release ("Content Too Large" from 3.13).
REASONS = {code: HTTPStatus(code).phrase.encode()
           for code in (200, 400, 401, 403, 404, 405, 408, 409, 411, 429, 431, 500, 501, 502,
                        503, 504, 505)}
DECLINED_HEADERS = (b"transfer-encoding", b"expect")


def _header(line, headers):
    """Add one header line to `headers`; False when it is not plain."""
    colon = line.find(b":")
    if colon <= 0:
        return False
    name, value = line[:colon], line[colon + 1:]
    if not TOKEN.issuperset(name) or not VALUE.issuperset(value):
        return False
    name = name.lower()
    if name in DECLINED_HEADERS or (name == b"content-length" and name in headers):
        return False
    headers[name] = value.strip(b" \t")
    return True


def read_request(buffer, max_header, max_body):
    """See the module docstring."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None if len(buffer) <= max_header else False
    if end > max_header or buffer[:2] == b"\r\n":
        return False
    lines = bytes(buffer[:end]).split(b"\r\n")
    method, space, rest = lines[0].partition(b" ")
    target, space2, version = rest.partition(b" ")
    if (not space2 or not method or not TOKEN.issuperset(method) or target[:1] != b"/"
            or not TARGET.issuperset(target) or version not in (b"HTTP/1.1", b"HTTP/1.0")):
        return False
    headers = {}
    for line in lines[1:]:
        if not _header(line, headers):
            return False
    length = headers.get(b"content-length", b"0")
    if not length.isdigit() or len(length) > MAX_LENGTH_DIGITS or int(length) > max_body:
        return False
    start = end + 4
    consumed = start + int(length)
    if len(buffer) < consumed:
        return False
    connection = headers.get(b"connection", b"").lower()
    if version == b"HTTP/1.0":
        keep_alive = b"keep-alive" in connection
    else:
        keep_alive = b"close" not in connection
    return (consumed, method, target.split(b"?", 1)[0], version, headers,
            bytes(buffer[start:consumed]), keep_alive)


def response(status, body, rc, date, keep_alive, http10, head_only):
    """See the module docstring."""
    reason = REASONS.get(status)
    if reason is None or (rc is not None and not (isinstance(rc, int)
                                                  and -2**31 <= rc < 2**31)):
        return None
    head = [b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            % (status, reason, len(body))]
    if rc is not None:
        head.append(b"esrt-return-code: %d\r\n" % rc)
    head.append(b"date: " + date + b"\r\n")
    if not keep_alive:
        head.append(b"connection: close\r\n")
    elif http10:
        head.append(b"connection: keep-alive\r\n")
    head.append(b"\r\n")
    if not head_only:
        head.append(body)
    return b"".join(head)


MAX_KEY = 200
KEY_BYTES = frozenset(range(0x21, 0x7F))


def admit(services, service, params, key, max_body):
    if not (isinstance(services, dict) and isinstance(service, bytes)
            and isinstance(params, bytes) and (key is None or isinstance(key, bytes))
            and isinstance(max_body, int)):
        return None
    if not -sys.maxsize - 1 <= max_body <= sys.maxsize:
        return None  # beyond what C holds in a Py_ssize_t: the full checks decide
    if len(params) > max_body or not service.isascii():
        return None
    if key is not None and not (1 <= len(key) <= MAX_KEY and KEY_BYTES.issuperset(key)):
        return None
    name = service.decode("ascii")
    if name not in services:
        return None
    return name, key.decode("ascii") if key is not None else None
