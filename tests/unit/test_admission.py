"""The region's one admission path (esrt.region.admission), which both listeners use."""

import json

import pytest
from twisted.internet import defer

from esrt.region.admission import Admission


class Deployed:
    """The ServiceTable's lookup interface over a list of names."""

    def __init__(self, *names):
        self._names = list(names)

    def lookup(self, name):
        return type("Service", (), {"name": name})() if name in self._names else None

    def names(self):
        return list(self._names)


class Queue:
    """Stands in for the dispatcher: records what is submitted, answers nothing yet."""

    inactive_reason = None

    def __init__(self):
        self.submitted = []

    def submit(self, service, body, key=None):
        self.submitted.append((service, body, key))
        return defer.Deferred()


class Counts:
    def __init__(self):
        self.refusals = []

    def refused(self, conversation, code):
        self.refusals.append((conversation, code))


@pytest.fixture
def door():
    return Admission("ESSRV01", Deployed("srv01.CBLAPP01"), Queue(), max_body=64,
                     metrics=Counts())


def refusal(call):
    replies = []
    call.addCallback(replies.append)
    assert replies, "a refusal must be answered at once"
    body = json.loads(replies[0].body)["error"]
    return replies[0].status, body["code"], body["message"]


def test_an_admitted_call_goes_to_the_dispatcher_with_its_key(door):
    call = door.admit("http", b"srv01.CBLAPP01", b'{"A": 1}', b"key-1")
    assert not call.called
    assert door.dispatcher.submitted == [("srv01.CBLAPP01", b'{"A": 1}', "key-1")]
    door.admit("esrt", b"srv01.CBLAPP01", b"{}", None)
    assert door.dispatcher.submitted[-1] == ("srv01.CBLAPP01", b"{}", None)
    assert door.metrics.refusals == []


@pytest.mark.parametrize("service, params, key, status, code, says", [
    (b"srv01.NOPE", b"{}", None, 404, "unknown_service", "deployed: srv01.CBLAPP01"),
    (b"srv01.\xff", b"{}", None, 404, "unknown_service", r"b'srv01.\xff'"),
    (b"srv01.CBLAPP01", b"x" * 65, None, 413, "too_large", "max_body of 64 bytes"),
    (b"srv01.CBLAPP01", b"{}", b"", 400, "bad_idempotency_key", "1 to 200 printable"),
    (b"srv01.CBLAPP01", b"{}", b"a b", 400, "bad_idempotency_key", "a UUID"),
    (b"srv01.CBLAPP01", b"{}", b"k" * 201, 400, "bad_idempotency_key", "Idempotency-Key"),
])
def test_each_refusal_says_what_was_wrong_and_is_counted(door, service, params, key, status,
                                                         code, says):
    for conversation in ("http", "esrt"):
        got_status, got_code, message = refusal(door.admit(conversation, service, params, key))
        assert (got_status, got_code) == (status, code) and says in message, message
    assert door.metrics.refusals == [("http", code), ("esrt", code)]
    assert door.dispatcher.submitted == []


def test_a_standby_refuses_before_looking_anything_up(door):
    """Its packages are on the other node's disk: 'unknown service' would be a wrong answer."""
    door.dispatcher.inactive_reason = "ESSRV01 is a standby that is not active on this node"
    status, code, message = refusal(door.admit("esrt", b"srv01.ANYTHING", b"{}", b"bad key"))
    assert (status, code) == (503, "unavailable")
    assert message == "srv01.ANYTHING: ESSRV01 is a standby that is not active on this node"
