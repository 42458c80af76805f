"""FailoverClient's rounds over its listeners, with stand-in clients of one listener each."""

import pytest

from esrt.client.common import ConnectionFailed, ServiceError
from esrt.client.failover import FailoverClient


class Listener:
    """A client of one listener that answers from a script: an exception or a reply."""

    def __init__(self, url, script):
        self.url, self.script, self.keys, self.closed = url, list(script), [], 0

    def call(self, service, params=None, idempotency_key=None):
        self.keys.append(idempotency_key)
        outcome = self.script.pop(0) if self.script else {"ok": self.url}
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self):
        self.closed += 1


def clients(scripts):
    made = {}

    def make(url):
        made[url] = Listener(url, scripts.get(url, ()))
        return made[url]
    return made, make


def test_a_failed_call_moves_to_the_next_listener_with_its_key():
    made, make = clients({"a": [ConnectionFailed("refused")],
                          "b": [ServiceError(503, "unavailable", "stopping")]})
    client = FailoverClient(["a", "b", "c"], make)
    assert client.call("srv01.CBLAPP01") == {"ok": "c"}
    keys = made["a"].keys + made["b"].keys + made["c"].keys
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]
    assert client.url == "c"
    # The next call starts where the last one was answered.
    assert client.call("srv01.CBLAPP01", idempotency_key="k2") == {"ok": "c"}
    assert made["c"].keys[-1] == "k2" and made["a"].keys == keys[:1]


def test_the_service_s_own_error_is_not_retried_elsewhere():
    made, make = clients({"a": [ServiceError(400, "bad_input", "LK-AMOUNT")]})
    client = FailoverClient(["a", "b"], make)
    with pytest.raises(ServiceError) as caught:
        client.call("srv01.CBLAPP01")
    assert caught.value.status == 400 and made["b"].keys == []


def test_when_every_listener_fails_the_call_fails_unless_time_is_left():
    made, make = clients({"a": [ConnectionFailed("refused")] * 3,
                          "b": [ConnectionFailed("refused")] * 2})
    client = FailoverClient(["a", "b"], make)
    with pytest.raises(ConnectionFailed):
        client.call("srv01.CBLAPP01")
    assert len(made["a"].keys) == 1 and len(made["b"].keys) == 1
    # With time to retry: more rounds, one key, until a listener answers.
    assert client.call("srv01.CBLAPP01", idempotency_key="k", retry_for=5) == {"ok": "b"}
    assert set(made["a"].keys[1:] + made["b"].keys[1:]) == {"k"}
