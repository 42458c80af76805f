"""Who is calling: the region's copy of the node's accounts, tokens and rules, and how each
listener's `auth` setting turns a connection's credentials into an esrt.node.callers.Caller.

The copy comes from mfds (GET /api/callers, every `interval` seconds, with the node token) and
is kept in the run directory (callers.json, readable by the region's user only: it holds the
accounts' password hashes), so a region started while mfds is down checks calls with the last
copy it had, and a region whose mfds goes down keeps checking with what it holds.

Checking a password (HTTP Basic) costs an Argon2 verification, about 0.1 s of CPU by design; it
runs in a worker thread, once per account and password: a verified pair is remembered (keyed
by a digest of the password, never the password) for as long as the account's stored hash is
the same, so a client sending Basic on every call pays the hash once.
"""

import base64
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path

from twisted.internet import defer, task, threads

from esrt.node.callers import Caller, CallerPolicy
from esrt.node.tls import mfds_agent

CACHE_FILE = "callers.json"
NO_CREDENTIALS = {
    "token": "this listener wants an API token: send Authorization: Bearer TOKEN (an admin "
             "creates one with `esrt mfds token create USER`)",
    "basic": "this listener wants an account's name and password: send HTTP Basic "
             "credentials (Authorization: Basic ...)",
    "mtls": "this listener wants a client certificate issued to an account of the node",
}


class CallerDirectory:
    """The accounts, tokens and rules calls are checked against, kept up to date from mfds."""

    interval = 2.0
    fetch_timeout = 5.0
    # Verified Basic credentials remembered at most this many (the oldest go first).
    max_remembered = 10000
    # Argon2 checks at once (each takes a core for about 0.1 s and 64 MiB), and waiting for
    # their turn: beyond that a Basic request is refused rather than queued without end.
    concurrent_checks = 2
    max_checks_waiting = 64

    def __init__(self, reactor, run_dir, mfds_url=None, token=None, mfds_cert=None,
                 on_change=lambda policy: None, on_reach=lambda ok, problem: None):
        """`on_change(policy)` hears of each new copy, `on_reach(ok, problem)` of mfds
        becoming unreachable (ok False) and reachable again."""
        self.on_reach = on_reach
        self.reactor = reactor
        self.cache_path = Path(run_dir) / CACHE_FILE
        self.mfds_url = mfds_url.rstrip("/") if mfds_url else None
        self.token = token
        self.on_change = on_change
        self.policy = CallerPolicy(self._read_cache())
        self._agent = mfds_agent(reactor, self.mfds_url, mfds_cert, self.fetch_timeout)
        self._loop = None
        self._fetching = None
        # sha256(salt + name + password) -> the stored hash it was verified against
        self._verified = {}
        self._salt = secrets.token_bytes(16)
        self._checks = defer.DeferredSemaphore(self.concurrent_checks)
        self._checks_waiting = 0
        # digest -> (hash being checked, Deferreds of other requests waiting for that check)
        self._checking = {}
        self._failing = False

    def _read_cache(self):
        try:
            return json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}

    def start(self):
        """Fetch now and then every `interval` seconds (nothing to do without an mfds)."""
        if self._agent is None:
            return
        self._loop = task.LoopingCall(self.fetch)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=True)

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def fetch(self):
        """Ask mfds for a newer copy; the Deferred fires when done and never fails."""
        if self._fetching is not None:
            return self._fetching
        from twisted.web.client import readBody
        from twisted.web.http_headers import Headers
        from esrt.node.mfds_client import TOKEN_HEADER
        version = self.policy.snapshot.get("version", "")
        url = f"{self.mfds_url}/api/callers?version={version}".encode()
        headers = Headers({TOKEN_HEADER.lower().encode(): [self.token.encode()]}
                          if self.token else {})
        fetching = self._agent.request(b"GET", url, headers)
        fetching.addTimeout(self.fetch_timeout, self.reactor)

        def answered(response):
            if response.code != 200:
                return readBody(response).addBoth(lambda _: None)
            return readBody(response).addCallback(self._received)

        fetching.addCallback(answered)
        fetching.addCallbacks(lambda _: self._reached(True), self._unreachable)
        self._fetching = fetching

        def done(result):
            self._fetching = None
            return result

        fetching.addBoth(done)
        return fetching

    def _unreachable(self, failure):
        # mfds away: keep the copy we have, and say so once (not every 2 s).
        self._reached(False, failure.getErrorMessage())

    def _reached(self, ok, problem=None):
        if ok == (not self._failing):
            return
        self._failing = not ok
        self.on_reach(ok, problem)

    def _received(self, body):
        snapshot = json.loads(body)
        if not isinstance(snapshot, dict) or "version" not in snapshot:
            return
        self.policy = CallerPolicy(snapshot)
        self._verified.clear()
        # mkstemp: a new file, readable by this user only, whatever was left behind before.
        fd, tmp = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", dir=self.cache_path.parent)
        with os.fdopen(fd, "w") as out:
            json.dump(snapshot, out)
        os.replace(tmp, self.cache_path)
        self.on_change(self.policy)

    # -- credentials ------------------------------------------------------------------------

    def by_authorization(self, mode, header):
        """The Caller of an Authorization header value (bytes or None) on a listener with
        `mode` "token" or "basic": a Caller, or a Deferred of one for a password not yet
        verified."""
        scheme, _, value = (header or b"").decode("latin-1").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if mode == "token":
            if scheme != "bearer" or not value:
                return Caller(problem=NO_CREDENTIALS["token"])
            return self.policy.by_token(value)
        if scheme != "basic" or not value:
            return Caller(problem=NO_CREDENTIALS["basic"])
        try:
            name, colon, password = base64.b64decode(value, validate=True).decode(
                "utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            colon = ""
        if not colon:
            return Caller(problem="the Basic credentials are not base64 of NAME:PASSWORD")
        return self.by_password(name, password)

    def by_password(self, name, password):
        """The Caller of an account name and password (a Deferred when not yet verified)."""
        user = self.policy.users.get(name)
        digest = hashlib.sha256(self._salt + name.encode() + b"\0" + password.encode()
                                ).digest()
        if user is not None and self._verified.get(digest) == user["hash"]:
            return Caller(user["name"], user["role"], "basic", proof=user["hash"])
        checked_hash = user["hash"] if user else None
        running = self._checking.get(digest)
        if running is not None and running[0] == checked_hash:
            # The same credentials are being checked for another request (a client opening
            # several connections at once): wait for that one check.
            waiter = defer.Deferred()
            running[1].append(waiter)
            return waiter
        if self._checks_waiting >= self.max_checks_waiting:
            return Caller(problem="too many password checks are waiting; try again in a "
                                  "moment (or use an API token, which costs no check)")
        self._checks_waiting += 1
        waiters = []
        self._checking[digest] = (checked_hash, waiters)
        checking = self._checks.run(threads.deferToThreadPool, self.reactor,
                                    self.reactor.getThreadPool(), _verify, checked_hash,
                                    password)

        def done(result):
            self._checks_waiting -= 1
            if self._checking.get(digest, (None, None))[1] is waiters:
                del self._checking[digest]
            return result

        checking.addBoth(done)
        checking.addCallback(self._verified_password, name, digest, checked_hash)

        def share(result):
            for waiter in waiters:
                waiter.callback(result)
            return result

        return checking.addBoth(share)

    def _verified_password(self, ok, name, digest, checked_hash):
        if not ok or checked_hash is None:
            return Caller(problem=f"wrong name or password for {name!r}")
        # The policy may have changed while the hash was computed: only the hash that was
        # checked counts, and only while it is still the account's.
        caller = self.policy.by_verified_password(name, checked_hash)
        if caller.known:
            if len(self._verified) >= self.max_remembered:
                self._verified.pop(next(iter(self._verified)))
            self._verified[digest] = checked_hash
        return caller

    def by_certificate(self, transport):
        """The Caller of a TLS connection's client certificate (mode "mtls")."""
        getter = getattr(transport, "getPeerCertificate", None)
        certificate = getter() if getter is not None else None
        if certificate is None:
            return Caller(problem=NO_CREDENTIALS["mtls"])
        return self.policy.by_certificate(certificate.get_subject().CN)


def _verify(stored_hash, password):
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError
    hasher = PasswordHasher()
    try:
        # An unknown account costs the same as a wrong password: timing tells no names.
        return hasher.verify(stored_hash or _dummy_hash(hasher), password) \
            and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


_DUMMY = []


def _dummy_hash(hasher):
    if not _DUMMY:
        _DUMMY.append(hasher.hash("not a real password"))
    return _DUMMY[0]


class ListenerGuard:
    """How one listener knows its callers (`auth`) and what else it serves to whom (`metrics`,
    `openapi`: off, auth or open), from its settings."""

    def __init__(self, config, directory):
        from esrt.settings import listener_auth, listener_exposure
        self.mode = listener_auth(config)
        self.metrics = listener_exposure(config, "metrics")
        self.openapi = listener_exposure(config, "openapi")
        self.directory = directory

    @property
    def checks(self):
        """Whether calls on this listener carry a Caller (auth is not none)."""
        return self.mode != "none"

    def identify(self, authorization, transport):
        """The Caller of a request (a Deferred while a password is verified); None when the
        listener does not authenticate."""
        if self.mode == "none":
            return None
        if self.mode == "mtls":
            return self.directory.by_certificate(transport)
        return self.directory.by_authorization(self.mode, authorization)

