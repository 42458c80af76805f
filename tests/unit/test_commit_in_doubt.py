"""A SEP whose COMMIT lost its connection to the PostgreSQL store (ESFH_IN_DOUBT) answers with
what the call's stored reply says: its reply when it committed, another run when it did not,
and "in_doubt" when the reply cannot be read."""

import pytest

from esrt.isam import (DB_LOCK_DEADLOCK, ESFH_IDLE_TIMEOUT, ESFH_IN_DOUBT, ESFH_STORE_LOST,
                       EsfhError)
from esrt.sep import protocol
from esrt.sep.worker import ServiceFailure, Transactions


class Store:
    """ESFH as a SEP drives it, its COMMIT cut off once (`committed`: whether it got through)."""

    def __init__(self, committed, lookup_fails=False):
        self.committed, self.lookup_fails = committed, lookup_fails
        self.replies, self.pending, self.commits = {}, {}, 0

    def begin(self):
        self.pending = {}

    def doomed(self):
        return False

    def request_writes(self):
        return 1

    def reply_put(self, key, data, expires):
        self.pending[key] = data

    def reply_get(self, key, now):
        if self.lookup_fails:
            raise EsfhError("ESFH reading a stored reply failed: no connection", 5)
        return self.replies.get(key)

    def commit(self):
        self.commits += 1
        if self.commits == 1:
            if self.committed:
                self.replies.update(self.pending)
            raise EsfhError("ESFH commit failed (30600): the connection broke during COMMIT",
                            ESFH_IN_DOUBT)
        self.replies.update(self.pending)

    def abort(self):
        self.pending = {}


class Program:
    name = "srv01.CBLAPP01"

    def __init__(self):
        self.runs = 0

    def load(self, body):
        pass

    def bound_call(self):
        self.runs += 1
        return 0

    def reply_body(self):
        return b'{"LK-COUNTER": %d}' % (self.runs - 1)


def run(store, program):
    return Transactions(store, clock=lambda: 1000.0).run(
        program, b"{}", {"key": "r:1", "idempotent": False, "ttl": 60}, lambda: False)


def test_a_commit_that_got_through_answers_with_its_stored_reply():
    store, program = Store(committed=True), Program()
    header, body = run(store, program)
    assert program.runs == 1 and body == b'{"LK-COUNTER": 0}'
    assert header["committed"] is True and header["status"] == 200


def test_a_commit_that_did_not_get_through_runs_the_call_again():
    store, program = Store(committed=False), Program()
    header, body = run(store, program)
    assert program.runs == 2 and header["attempts"] == 2
    assert protocol.unpack_reply(store.replies[b"r:1"])[1] == body == b'{"LK-COUNTER": 1}'


def test_a_reply_that_cannot_be_read_leaves_the_call_in_doubt():
    with pytest.raises(ServiceFailure) as caught:
        run(Store(committed=True, lookup_fails=True), Program())
    assert caught.value.status == 503 and caught.value.code == "in_doubt"
    assert "same Idempotency-Key" in caught.value.message


class LostStore(Store):
    """A store whose connection is gone when the call begins (its server or node died)."""

    def begin(self):
        raise EsfhError("ESFH begin failed (30601): no connection to the server",
                        ESFH_STORE_LOST)


def test_a_store_lost_before_the_commit_asks_the_caller_to_retry():
    program = Program()
    with pytest.raises(ServiceFailure) as failure:
        run(LostStore(committed=False), program)
    # 503: clients (and FailoverClient) retry it, with its key; nothing of it committed.
    assert failure.value.status == 503 and failure.value.code == "store_unavailable"
    assert "retry" in failure.value.message and program.runs == 0


IDLED_OUT = EsfhError("ESFH commit failed (30602): the PostgreSQL server ended the call's "
                      "transaction: ... idle_in_transaction_session_timeout ...",
                      ESFH_IDLE_TIMEOUT)
DEADLOCK = EsfhError("ESFH commit failed: deadlock", DB_LOCK_DEADLOCK)


class IdlingStore(Store):
    """A store whose commits fail as `failures` says, in turn (then succeed): the server
    ending the call's transaction for idling (the program paused between two file operations
    longer than the server allows), or a deadlock."""

    def __init__(self, failures):
        super().__init__(committed=False)
        self.failures = list(failures)

    def commit(self):
        self.commits += 1
        if self.failures:
            raise self.failures.pop(0)
        self.replies.update(self.pending)


def test_a_transaction_ended_once_for_idling_runs_again():
    program = Program()
    header, _ = run(IdlingStore([IDLED_OUT]), program)
    assert program.runs == 2 and header["status"] == 200 and header["attempts"] == 2


def test_a_deadlock_before_an_idle_timeout_does_not_count_as_one():
    program = Program()
    header, _ = run(IdlingStore([DEADLOCK, IDLED_OUT]), program)
    assert program.runs == 3 and header["status"] == 200


def test_a_transaction_ended_twice_for_idling_is_an_error_the_caller_does_not_retry():
    program = Program()
    with pytest.raises(ServiceFailure) as failure:
        run(IdlingStore([IDLED_OUT, DEADLOCK, IDLED_OUT]), program)
    # Not 503: a client retrying it would meet the same end every time.
    assert (failure.value.status, failure.value.code) == (500, "transaction_timeout")
    assert "idle_in_transaction_session_timeout" in failure.value.message
    assert program.runs == 3
