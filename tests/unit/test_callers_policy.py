"""Who may call which service (esrt.node.callers) and the region's copy of it
(esrt.region.callers): tokens, rules, and what happens to callers when accounts change."""

import base64

import pytest
from argon2 import PasswordHasher
from twisted.internet import defer

from esrt.node.callers import (CallerPolicy, check_pattern, new_token, parse_subject,
                               token_hash)
from esrt.region import callers as region_callers

HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def snapshot(users, tokens=(), rules=(), version="1"):
    return {"users": [{"name": n, "role": r, "hash": h} for n, r, h in users],
            "tokens": [{"id": t[5:13], "user": u, "hash": token_hash(t)} for t, u in tokens],
            "rules": [{"subject": s, "pattern": p} for s, p in rules], "version": version}


def test_tokens_are_random_stored_hashed_and_name_their_owner():
    ident, token = new_token()
    assert token.startswith(f"esrt_{ident}_") and len(token) == 5 + 8 + 1 + 43
    assert new_token()[1] != token
    policy = CallerPolicy(snapshot([("alice", "operator", "h")], [(token, "alice")]))
    caller = policy.by_token(token)
    assert (caller.name, caller.role, caller.via) == ("alice", "operator", "token")
    assert token not in repr(policy.snapshot)  # only its hash is kept
    assert not policy.by_token(token[:-1] + ("A" if token[-1] != "A" else "B")).known
    assert not policy.by_token("not a token").known


def test_no_rule_allows_everything_and_the_first_rule_denies_the_rest():
    alice_only = CallerPolicy(snapshot([("alice", "operator", "h"), ("bob", "readonly", "h")]))
    bob = alice_only.by_certificate("bob")
    assert alice_only.allows(bob, "srv01.CBLAPP01")
    ruled = CallerPolicy(snapshot([("alice", "operator", "h"), ("bob", "readonly", "h")],
                                  rules=[("user:alice", "srv01.*"),
                                         ("role:readonly", "*.ECHO?")]))
    alice = ruled.by_certificate("alice")
    assert ruled.allows(alice, "srv01.CBLAPP01")
    assert not ruled.allows(alice, "srv02.CBLAPP01")
    assert ruled.allows(bob, "tst.ECHO1") and not ruled.allows(bob, "tst.ECHO10")
    assert not ruled.allows(bob, "srv01.CBLAPP01")
    # Patterns match the whole name, case and all.
    assert not ruled.allows(alice, "SRV01.CBLAPP01")


def test_a_checked_caller_follows_changes_to_accounts_and_tokens():
    _, token = new_token()
    before = CallerPolicy(snapshot([("alice", "operator", "h1")], [(token, "alice")]))
    by_token = before.by_token(token)
    by_password = before.by_verified_password("alice", "h1")
    by_certificate = before.by_certificate("alice")
    promoted = CallerPolicy(snapshot([("alice", "admin", "h1")], [(token, "alice")]))
    assert promoted.recheck(by_token).role == "admin"
    assert promoted.recheck(by_password).role == "admin"
    revoked = CallerPolicy(snapshot([("alice", "operator", "h1")]))
    assert "revoked" in revoked.recheck(by_token).problem
    assert revoked.recheck(by_password).known
    new_password = CallerPolicy(snapshot([("alice", "operator", "h2")], [(token, "alice")]))
    assert "password changed" in new_password.recheck(by_password).problem
    gone = CallerPolicy(snapshot([]))
    assert not gone.recheck(by_certificate).known


@pytest.mark.parametrize("text, clean", [("alice", "user:alice"), ("operator", "role:operator"),
                                         ("user:admin", "user:admin"),
                                         ("role:admin", "role:admin")])
def test_subjects(text, clean):
    assert parse_subject(text) == clean


@pytest.mark.parametrize("bad, says", [("role:boss", "role 'boss' is unknown"),
                                       ("", "is not a caller"), ("group:x", "is not a caller")])
def test_bad_subjects_say_what_to_write(bad, says):
    with pytest.raises(ValueError, match=says):
        parse_subject(bad)


def test_patterns():
    assert check_pattern(" srv01.* ") == "srv01.*"
    for bad in ("", "srv01 *", "a/b", "x" * 256):
        with pytest.raises(ValueError, match="is not a service pattern"):
            check_pattern(bad)


class ThreadPoolStandIn:
    """Runs nothing: each password check waits until the test answers it."""

    def __init__(self):
        self.pending = []

    def __call__(self, reactor, pool, function, stored_hash, password):
        waiting = defer.Deferred()
        self.pending.append((waiting, function, stored_hash, password))
        return waiting

    def finish(self):
        waiting, function, stored_hash, password = self.pending.pop(0)
        waiting.callback(function(stored_hash, password))


@pytest.fixture
def directory(tmp_path, monkeypatch):
    pool = ThreadPoolStandIn()
    monkeypatch.setattr(region_callers.threads, "deferToThreadPool", pool)

    class Reactor:
        def getThreadPool(self):  # noqa: N802 - the reactor's name
            return None

    made = region_callers.CallerDirectory(Reactor(), tmp_path)
    made.pool = pool
    return made


def basic(name, password):
    return b"Basic " + base64.b64encode(f"{name}:{password}".encode())


def result_of(deferred):
    found = []
    deferred.addCallback(found.append)
    return found[0]


def test_a_password_is_hashed_once_then_remembered(directory):
    directory.policy = CallerPolicy(snapshot([("bob", "readonly", HASHER.hash("right one"))]))
    checking = directory.by_authorization("basic", basic("bob", "right one"))
    directory.pool.finish()
    assert result_of(checking).name == "bob"
    again = directory.by_authorization("basic", basic("bob", "right one"))
    assert not isinstance(again, defer.Deferred) and again.name == "bob"
    wrong = directory.by_authorization("basic", basic("bob", "wrong one"))
    directory.pool.finish()
    assert "wrong name or password" in result_of(wrong).problem


def test_a_password_changed_while_it_was_checked_is_not_remembered(directory):
    old = HASHER.hash("leaked one")
    directory.policy = CallerPolicy(snapshot([("bob", "readonly", old)]))
    checking = directory.by_authorization("basic", basic("bob", "leaked one"))
    directory._received(__import__("json").dumps(snapshot(
        [("bob", "readonly", HASHER.hash("new one"))], version="2")).encode())
    directory.pool.finish()
    assert "password changed" in result_of(checking).problem
    assert isinstance(directory.by_authorization("basic", basic("bob", "leaked one")),
                      defer.Deferred)  # checked again, not remembered


def test_password_checks_waiting_are_bounded(directory):
    directory.policy = CallerPolicy(snapshot([("bob", "readonly", HASHER.hash("x" * 10))]))
    directory.max_checks_waiting = 3
    for guess in range(3):
        directory.by_authorization("basic", basic("bob", f"guess {guess}"))
    refused = directory.by_authorization("basic", basic("bob", "another guess"))
    assert "too many password checks" in refused.problem


def test_the_same_credentials_arriving_at_once_are_checked_once(directory):
    directory.policy = CallerPolicy(snapshot([("bob", "readonly", HASHER.hash("right one"))]))
    waiting = [directory.by_authorization("basic", basic("bob", "right one"))
               for _ in range(16)]
    assert len(directory.pool.pending) == 1
    directory.pool.finish()
    assert {result_of(check).name for check in waiting} == {"bob"}
    assert not directory._checking
