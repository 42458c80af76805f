"""The region's one admission path (esrt.region.admission), which both listeners use."""

import io
import json

import pytest
from twisted.internet.task import Clock
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from esrt import wire
from esrt.region.admission import Admission
from esrt.region.http import ServicesResource
from esrt.region.httpserver import NOT_DONE_YET, HttpRequest
from esrt.region.replies import Reply
from esrt.region.wire_listener import WireFactory


class Deployed:
    """The ServiceTable's interface (by_name, lookup, names) over a list of names."""

    def __init__(self, *names):
        self.by_name = {name: type("Service", (), {"name": name})() for name in names}

    def lookup(self, name):
        return self.by_name.get(name)

    def names(self):
        return sorted(self.by_name)


class Ticket:
    def __init__(self, queue, service, reply_to, token):
        self.queue, self.service, self.reply_to, self.token = queue, service, reply_to, token

    def answer(self, reply):
        self.reply_to(reply, self.token, self)

    def withdraw(self):
        self.queue.withdrawn.append(self.service)


class Queue:
    """Stands in for the dispatcher: records what is sent, answers nothing until told to."""

    inactive_reason = None

    def __init__(self):
        self.submitted, self.tickets, self.withdrawn = [], [], []

    def send(self, service, body, key, reply_to, token):
        self.submitted.append((service, body, key))
        self.tickets.append(Ticket(self, service, reply_to, token))
        return self.tickets[-1]


class Counts:
    def __init__(self):
        self.refusals = []

    def refused(self, conversation, code):
        self.refusals.append((conversation, code))


@pytest.fixture
def door():
    return Admission("ESSRV01", Deployed("srv01.CBLAPP01"), Queue(), max_body=64,
                     metrics=Counts())


def admit(door, conversation, service, params, key, replies=None):
    """Admit a call whose replies go to `replies`; returns its ticket."""
    replies = [] if replies is None else replies
    return door.admit(conversation, service, params, key,
                      lambda reply, token, ticket: replies.append(reply), None)


def refusal(door, conversation, service, params, key):
    replies = []
    assert admit(door, conversation, service, params, key, replies) is None
    assert replies, "a refusal must be answered at once"
    body = json.loads(replies[0].body)["error"]
    return replies[0].status, body["code"], body["message"]


def test_an_admitted_call_goes_to_the_dispatcher_with_its_key(door):
    replies = []
    assert admit(door, "http", b"srv01.CBLAPP01", b'{"A": 1}', b"key-1", replies) is not None
    assert replies == []
    assert door.dispatcher.submitted == [("srv01.CBLAPP01", b'{"A": 1}', "key-1")]
    admit(door, "esrt", b"srv01.CBLAPP01", b"{}", None)
    assert door.dispatcher.submitted[-1] == ("srv01.CBLAPP01", b"{}", None)
    assert door.metrics.refusals == []


@pytest.mark.parametrize("service, params, key, status, code, says", [
    (b"srv01.NOPE", b"{}", None, 404, "unknown_service", "deployed: srv01.CBLAPP01"),
    (b"srv01.\xff", b"{}", None, 404, "unknown_service", r"b'srv01.\xff'"),
    (b"srv01.CBLAPP01", b"x" * 65, None, 413, "too_large", "max_body of 64 bytes"),
    (b"srv01.CBLAPP01", b"{}", b"", 400, "bad_idempotency_key", "1 to 200 printable"),
    (b"srv01.CBLAPP01", b"{}", b"a b", 400, "bad_idempotency_key", "a UUID"),
    (b"srv01.CBLAPP01", b"{}", b"k" * 201, 400, "bad_idempotency_key", "Idempotency-Key"),
    (b"srv01.CBLAPP01", b"{}", b"key-1\n", 400, "bad_idempotency_key", "printable ASCII"),
])
def test_each_refusal_says_what_was_wrong_and_is_counted(door, service, params, key, status,
                                                         code, says):
    for conversation in ("http", "esrt"):
        got_status, got_code, message = refusal(door, conversation, service, params, key)
        assert (got_status, got_code) == (status, code) and says in message, message
    assert door.metrics.refusals == [("http", code), ("esrt", code)]
    assert door.dispatcher.submitted == []


def test_a_standby_refuses_before_looking_anything_up(door):
    """Its packages are on the other node's disk: 'unknown service' would be a wrong answer."""
    door.dispatcher.inactive_reason = "ESSRV01 is a standby that is not active on this node"
    status, code, message = refusal(door, "esrt", b"srv01.ANYTHING", b"{}", b"bad key")
    assert (status, code) == (503, "unavailable")
    assert message == "srv01.ANYTHING: ESSRV01 is a standby that is not active on this node"



class Channel:
    def date(self):
        return b"Sun, 06 Dec 2026 15:00:00 GMT"

    def request_done(self, request):
        pass


@pytest.fixture
def http():
    """(ServicesResource over a Queue, the queue, the problems it reported)."""
    queue, problems = Queue(), []
    resource = ServicesResource(Admission("ESSRV01", Deployed("srv01.CBLAPP01"), queue,
                                          max_body=64, metrics=Counts()),
                                lambda: (True, "ok"), lambda *problem: problems.append(problem))
    return resource, queue, problems


def post(resource):
    request = HttpRequest(Channel(), b"POST", b"/services/srv01/CBLAPP01", b"HTTP/1.1", {})
    request.content = io.BytesIO(b"{}")
    assert resource.render(request) is NOT_DONE_YET
    return request


def test_an_http_call_is_answered_with_its_reply(http):
    resource, queue, _ = http
    request = post(resource)
    queue.tickets[0].answer(Reply(200, b'{"A": 2}', 7))
    assert request.finished and request.code == 200
    assert b"esrt-return-code: 7\r\n" in request.response_bytes(True)


def test_an_http_call_whose_client_went_away_is_cancelled_and_not_answered(http):
    resource, queue, _ = http
    request = post(resource)
    request.connection_lost(Failure(ConnectionDone()))
    assert queue.withdrawn == ["srv01.CBLAPP01"] and not request.finished


def test_an_http_call_whose_answer_fails_inside_the_region_answers_500_and_says_why(http):
    resource, queue, problems = http
    request = post(resource)
    queue.tickets[0].answer(object())  # a bug: something other than a Reply
    assert request.finished and request.code == 500
    assert problems and problems[0][0] == "/services/srv01/CBLAPP01"
    assert b"internal error in the ESSRV01 region" in request.response_bytes(True)


def test_a_request_whose_cancel_fails_does_not_spare_the_others_when_the_client_goes():
    from esrt.region.httpserver import HttpChannel

    channel = HttpChannel()
    channel.factory = type("Factory", (), {"connections": set()})()
    first, second = (HttpRequest(channel, b"POST", b"/services/a/B", b"HTTP/1.1", {})
                     for _ in range(2))
    cancelled = []

    def broken_cancel():
        raise RuntimeError("a bug in a canceller")

    first.on_lost = broken_cancel
    second.on_lost = lambda: cancelled.append("second")
    channel._pending.extend([first, second])
    channel.connectionLost(Failure(ConnectionDone()))
    assert cancelled == ["second"]


class TcpTransport(StringTransport):
    def setTcpNoDelay(self, enabled):
        pass


def test_a_binary_reply_that_cannot_be_sent_is_a_500_for_that_request_only():
    problems = []
    queue = Queue()
    factory = WireFactory(Admission("ESSRV01", Deployed("srv01.CBLAPP01"), queue, max_body=64,
                                    metrics=Counts()),
                          Clock(), lambda *problem: problems.append(problem))
    connection = factory.buildProtocol(None)
    transport = TcpTransport()
    connection.makeConnection(transport)
    connection.dataReceived(wire.encode_request(7, "srv01.CBLAPP01", b"{}")
                            + wire.encode_request(8, "srv01.CBLAPP01", b"{}"))
    first, second = queue.tickets
    first.answer(object())  # a bug: something other than a Reply
    second.answer(Reply(200, b'{"A": 2}', 0))
    decoder = wire.FrameDecoder(1 << 20)
    replies = [wire.parse_reply(payload) for payload in decoder.feed(transport.value())]
    assert [(reply.request_id, reply.status) for reply in replies] == [(7, 500), (8, 200)]
    assert b"internal error in the ESSRV01 region" in replies[0].body
    assert problems and not connection.calls
