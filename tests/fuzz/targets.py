"""What the fuzzers check, one function per parser that reads what a client or a user sends.

Each target takes the fuzzer's bytes and raises only when something is wrong in esrt: an
exception a parser should have turned into its own error, a C part that disagrees with its
pure-Python twin, or a package that writes outside its deploy directory. They are run by
tests/fuzz/run.py (atheris, coverage-guided, `make fuzz`) and replayed on every case kept
in tests/fuzz/regressions by tests/unit/test_fuzz_regressions.py.
"""

import io
import json
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path

from twisted.internet import address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

MAX_HEADER = 4096
MAX_BODY = 2048


class _Transport(StringTransport):
    """A socket's transport in memory, with the TCP options the listeners set."""

    def setTcpNoDelay(self, enabled):
        pass


class _Resource:
    """Routes every request of the HTTP fuzz target to a fixed JSON answer."""

    def render(self, request):
        if request.content is not None:
            request.content.read()
        request.setHeader(b"content-type", b"application/json")
        return b"{}"

    def refused(self, code):
        pass


def http_head(data):
    """The HTTP request head and body: the C common case reads what its twin reads, and the
    full parser answers any bytes with well-formed responses and never raises."""
    from esrt.region import _pyfrontdoor, frontdoor
    from esrt.region.httpserver import ServicesFactory
    c_read = frontdoor.read_request(bytearray(data), MAX_HEADER, MAX_BODY)
    twin_read = _pyfrontdoor.read_request(bytearray(data), MAX_HEADER, MAX_BODY)
    if isinstance(c_read, tuple):
        assert c_read == twin_read, (c_read, twin_read)
    else:
        assert c_read in (None, False), c_read

    factory = ServicesFactory(_Resource(), MAX_BODY, Clock())
    channel = factory.buildProtocol(address.IPv4Address("TCP", "127.0.0.1", 1))
    transport = _Transport()
    channel.makeConnection(transport)
    # Twice: once whole, once more as the tail of a stream cut at an arbitrary byte.
    cut = data[0] % (len(data) + 1) if data else 0
    channel.dataReceived(data[:cut])
    channel.dataReceived(data[cut:])
    channel.connectionLost(None)
    _check_responses(transport.value(), b"HEAD" in data)


def _check_responses(written, head_requests):
    """Every byte the server wrote belongs to a whole response: status line, headers with a
    Content-Length, and that many bytes of body (none for a HEAD request, so with HEAD in the
    input only the first response is checked)."""
    if head_requests:
        written = written[:written.find(b"\r\n\r\n") + 4] if written else written
        if written:
            assert written.startswith(b"HTTP/1.1 ") and written[9:12].isdigit(), written[:80]
        return
    at = 0
    while at < len(written):
        end = written.find(b"\r\n\r\n", at)
        assert end > 0, written[at:at + 200]
        head = written[at:end].split(b"\r\n")
        assert head[0].startswith(b"HTTP/1.1 ") and head[0][9:12].isdigit(), head[0]
        lengths = [line.split(b":", 1)[1] for line in head[1:]
                   if line.lower().startswith(b"content-length:")]
        assert len(lengths) == 1, head
        at = end + 4 + int(lengths[0])
        assert at <= len(written), written[end:end + 200]


def wire_frames(data):
    """The binary conversation's frames: C and Python split and parse alike, and the decoder
    answers any stream with frames or a FrameError, nothing else."""
    from esrt import native, wire
    frames = native.load("_frames")
    max_frame = 512
    twin = wire.split_frames_python(data, max_frame)
    if frames is not None:
        assert frames.split_frames(bytearray(data), max_frame) == twin
    decoder = wire.FrameDecoder(max_frame)
    payloads = []
    try:
        for piece in (data[:7], data[7:], b""):
            payloads += decoder.feed(piece)
    except wire.FrameError as exc:
        assert exc.status in (400, 413)
    for payload in payloads + [data]:
        python_fields = wire.parse_request_fields_python(payload)
        if frames is not None:
            assert frames.parse_request_fields(payload) == python_fields
        try:
            fields = wire.request_fields(payload)
        except wire.FrameError:
            assert python_fields is None
        else:
            assert fields == python_fields
        if wire.is_credentials(payload):
            try:
                wire.credentials_fields(payload)
            except wire.FrameError:
                pass


# A program with a field of every kind the JSON-to-LINKAGE loader writes.
RICH_PROGRAM = {"program": "FUZZ", "parameters": [
    {"name": "LK-NAME", "level": 1, "usage": "display", "type": "string", "length": 10,
     "offset": 0, "direction": "in"},
    {"name": "LK-AMOUNT", "level": 1, "usage": "display", "type": "number", "length": 7,
     "digits": 7, "scale": 2, "signed": True, "sign": "trailing", "offset": 0,
     "direction": "io"},
    {"name": "LK-PACKED", "level": 1, "usage": "comp-3", "type": "number", "length": 5,
     "digits": 9, "scale": 0, "signed": True, "offset": 0, "direction": "in"},
    {"name": "LK-BIN", "level": 1, "usage": "comp-5", "type": "number", "length": 4,
     "digits": 9, "scale": 3, "signed": False, "offset": 0, "direction": "in"},
    {"name": "LK-GROUP", "level": 1, "usage": "group", "type": "object", "offset": 0,
     "length": 9, "direction": "in", "fields": [
         {"name": "LK-ITEM", "level": 5, "usage": "display", "type": "number", "length": 3,
          "digits": 3, "scale": 0, "signed": False, "offset": 0, "occurs": 3}]},
]}


def linkage(data):
    """The JSON-to-LINKAGE loader: whatever the C path loads, the Python path loads into the
    same bytes, and the Python path answers anything with a load or a FieldValueError."""
    from esrt.mapping import FieldValueError, ProgramCodec, jsonio
    native_codec = ProgramCodec(RICH_PROGRAM, "c")
    twin = ProgramCodec(RICH_PROGRAM, "python")
    loaded = native_codec.new_buffers()
    expected = twin.new_buffers()
    handled = native_codec._plan is not None and native_codec._plan.load(loaded, data)
    accepted = twin.load_json(expected, data)
    if handled:
        assert accepted, data
        assert loaded == expected, data
    if not accepted:
        try:
            values = jsonio.loads(data) if data.strip() else {}
            twin.load_inputs(twin.new_buffers(), values)
        except (ValueError, FieldValueError):
            pass  # refused with the error that says what is wrong
        else:
            raise AssertionError(f"the twin declined what load_inputs takes: {data!r}")


def car(data):
    """The .car reader: any bytes are installed under the deploy directory or refused with a
    CarError; nothing is ever written outside it. The fuzzer's bytes are used both as a whole
    archive and as the names and contents of members of an archive built around them."""
    from esrt.mapping.car import CarError, install_car
    with tempfile.TemporaryDirectory(prefix="esrt-fuzz-car-") as scratch:
        root = Path(scratch)
        deploy = root / "deploy"
        for archive in (data, _archive_of(data)):
            try:
                manifest = install_car(archive, deploy)
            except CarError:
                pass
            else:
                service = deploy / manifest["service"]
                assert service.parent == deploy and service.is_dir(), manifest["service"]
            outside = [path for path in root.rglob("*") if deploy not in path.parents
                       and path != deploy]
            assert not outside, outside
            shutil.rmtree(deploy, ignore_errors=True)


def _archive_of(data):
    """A zip whose member names, manifest and contents come from `data`."""
    import hashlib
    names = [part.decode("latin-1") for part in data.split(b"\0")[:6] if part] or ["m"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        files = {}
        for index, name in enumerate(names):
            content = data[index::7]
            info = zipfile.ZipInfo(name)
            if data[:1] == b"L":
                info.external_attr = 0o120777 << 16  # a symbolic link entry
            archive.writestr(info, content)
            files[name] = hashlib.sha256(content).hexdigest()
        manifest = {"format": "esrt-car/1", "service": names[0], "files": files,
                    "mapping": names[-1], "programs": [{"module": names[-1]}]}
        archive.writestr("manifest.json", json.dumps(manifest))
    return buffer.getvalue()


TARGETS = {"http_head": http_head, "wire_frames": wire_frames, "linkage": linkage, "car": car}

# Seeds: one ordinary input per target, for the fuzzer to start from.
SEEDS = {
    "http_head": [b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
                  b"\r\n\r\n{}",
                  b"POST /a/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                  b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"],
    "wire_frames": [struct.pack(">IBBBQB", 30, 0xE5, 1, 1, 7, 14) + b"srv01.CBLAPP01\x00{}"
                    + b"\x00" * 3],
    "linkage": [b'{"LK-NAME": "ADA", "LK-AMOUNT": -12.5, "LK-PACKED": 123456789, '
                b'"LK-BIN": 1.234, "LK-GROUP": {"LK-ITEM": [1, 2, 3]}}', b"{}", b""],
    "car": [b"srv01\0mapping.json\0module.so"],
}
