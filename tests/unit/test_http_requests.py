"""The Web Services listener's HTTP parser against a corpus of requests, in the way gunicorn's
tests/requests/ does: each tests/unit/requests/{valid,invalid}/NAME.http holds what a client
sends (lines end in CRLF on the wire), NAME.json what must come of it: the requests handed to
the services (method, path, body), the status of every answer in order, the error of a refused
request (its code and a part of its message), and whether the server closed the connection.

Each case is fed to an HttpChannel on a fake transport twice, all at once and one byte at a
time: the parser must give the same outcome however the bytes arrive.
"""

import io
import json
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from esrt.region.httpserver import ServicesFactory

CORPUS = Path(__file__).resolve().parent / "requests"
MAX_BODY = 1024
CASES = sorted(CORPUS.glob("*/*.http"))


class EchoServices:
    """Stands in for the region's ServicesResource: records each request, answers "ok"."""

    def __init__(self):
        self.seen = []
        self.refusals = []

    def render(self, request):
        self.seen.append({"method": request.method.decode(), "path": request.path.decode(),
                          "body": request.content.read().decode("latin-1")})
        return b"ok"

    def refused(self, code):
        self.refusals.append(code)


class TcpStringTransport(StringTransport):
    """A StringTransport with the one TCP option the channel sets."""

    def setTcpNoDelay(self, enabled):
        self.no_delay = enabled


def request_bytes(path):
    return path.read_bytes().replace(b"\n", b"\r\n")


def answers(data):
    """(status, JSON body or None) of every response in `data`, in order."""
    found = []
    stream = io.BytesIO(data)
    while True:
        status_line = stream.readline()
        if not status_line:
            return found
        headers = {}
        for line in iter(stream.readline, b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        body = stream.read(int(headers.get("content-length", 0)))
        is_json = headers.get("content-type") == "application/json"
        found.append((status, json.loads(body) if is_json else None))


def outcome(data, piece_size):
    """Feed `data` to a new connection `piece_size` bytes at a time; what came of it."""
    services = EchoServices()
    factory = ServicesFactory(services, MAX_BODY, MemoryReactorClock())
    channel = factory.buildProtocol(None)
    transport = TcpStringTransport()
    channel.makeConnection(transport)
    for start in range(0, len(data), piece_size):
        channel.dataReceived(data[start:start + piece_size])
    return services, answers(transport.value()), transport.disconnecting


@pytest.mark.parametrize("case", CASES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_the_parser_gives_each_case_its_expected_outcome(case):
    expected = json.loads(case.with_suffix(".json").read_text())
    data = request_bytes(case)
    for piece_size in (len(data), 1):
        services, responses, closed = outcome(data, piece_size)
        assert services.seen == expected["requests"], piece_size
        assert [status for status, _ in responses] == expected["statuses"], piece_size
        assert closed == expected["closed"], piece_size
        if case.parent.name == "invalid":
            error = responses[-1][1]["error"]
            assert error["code"] == expected["error"]
            assert expected["message"] in error["message"]
            assert services.refusals == [expected["error"]]
        else:
            assert services.refusals == []
            assert all(body is None for _, body in responses)


def test_the_corpus_has_both_kinds_of_case():
    kinds = {case.parent.name for case in CASES}
    assert kinds == {"valid", "invalid"}
    assert all(case.with_suffix(".json").is_file() for case in CASES)
