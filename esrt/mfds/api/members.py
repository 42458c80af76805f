"""mfds's side of servers whose files are in PostgreSQL (their `store` setting): such a server
may run on several nodes at once, each node's mfds holding its own definition of it.

Every `interval` seconds, for each such server, mfds reads from the store the members (the
regions' heartbeats, esrt.node.members) for the admin UI and the API, and the packages
deployed to the server from any node; a package whose digest differs from the one installed
here is installed here as if deployed here (and a running region told to rescan). A deploy
on this node stores the package there (esrt.mfds.api.packages).

The store is read in a worker thread, never in the reactor; what was read is applied in the
reactor, where the repository lives.
"""

import threading
from collections import Counter
from dataclasses import dataclass

from esrt.mfds.api.routes import ApiError, Response, Route
from esrt.mfds.repository import now_iso
from esrt.node.members import MemberStore, StoreUnavailable


class StoreSync:
    """Members and packages of the node's servers on a PostgreSQL store."""

    interval = 2.0

    def __init__(self, repository, log):
        self.repository = repository
        self.log = log
        # Set by MfdsApi: who installs what another node deployed.
        self.packages = None
        self._stores = {}
        self._stores_lock = threading.Lock()
        # server -> {"members", "read", "problem"}: the last read of each server's members.
        self._seen = {}
        # Deploys here since a read began: a read that overlaps one may have found the store
        # as it was before, and must not install that back.
        self._deploys = Counter()
        # server -> {package: Pending}: deployed here, not yet in the store. Never installed
        # over from the store; stored by the sync until the store takes it.
        self._pending = {}
        self._pending_lock = threading.Lock()
        # One store write at a time, so that the last deploy is the one stored.
        self._write_lock = threading.Lock()
        # (server, package, sha256) that failed to install: not fetched again.
        self._failed = set()
        self._loop = None
        self._reactor = None
        self._reading = False

    def store(self, conninfo):
        """The MemberStore of `conninfo`, one per store for the life of mfds."""
        with self._stores_lock:
            if conninfo not in self._stores:
                self._stores[conninfo] = MemberStore(conninfo, application="esrt mfds")
            return self._stores[conninfo]

    def routes(self):
        """GET /api/servers/{name}/members."""
        member = {"type": "object", "properties": {
            "member": {"type": "string"}, "host": {"type": "string"},
            "pid": {"type": "integer"}, "state": {"type": "string"},
            "listeners": {"type": "array", "items": {"type": "object"}},
            "started": {"type": "string"}, "age": {"type": "number"},
            "lost": {"type": "boolean"}}}
        return [Route("GET", "/api/servers/{name}/members", lambda call: Response(
            200, self.seen(self.repository.get_server(call.params["name"]))),
            "The regions running this server on any node (a server on a PostgreSQL store), "
            "as last read from the store", "readonly",
            {200: ("members", {"type": "object", "properties": {
                "store": {"type": "boolean"},
                "members": {"type": "array", "nullable": True, "items": member},
                "read": {"type": "string", "nullable": True},
                "problem": {"type": "string", "nullable": True}}})}, (401, 404))]

    def seen(self, definition):
        """What mfds knows of the members of server `definition`: {"store": bool, "members":
        [...] or None, "read": when, "problem": why the last read failed or None}."""
        if not definition.get("store"):
            return {"store": False, "members": None, "read": None, "problem": None}
        seen = self._seen.get(definition["name"], {"members": None, "read": None,
                                                   "problem": "not read yet"})
        return {"store": True, **seen}

    # -- deploys here ----------------------------------------------------------------------

    def sharing(self, server, package, digest, data, filename, node):
        """A deploy here of `package` to `server` is installed: it is to be stored (called in
        the reactor, before share() in a worker thread)."""
        self._deploys[server] += 1
        # Installed here now: a copy from the store that failed to install is no concern.
        self._failed = {entry for entry in self._failed if entry[:2] != (server, package)}
        with self._pending_lock:
            self._pending.setdefault(server, {})[package] = Pending(digest, data, filename, node)

    def share(self, server, conninfo, package, digest):
        """Store the package a deploy here installed, unless a later deploy of it came since
        (that one is stored instead). In a worker thread; StoreUnavailable when the store
        cannot take it (the sync tries again)."""
        with self._write_lock:
            with self._pending_lock:
                pending = self._pending.get(server, {}).get(package)
            if pending is None or pending.digest != digest:
                return
            self.store(conninfo).put_package(server, package, pending.data, pending.filename,
                                             pending.node)
            with self._pending_lock:
                if self._pending.get(server, {}).get(package) is pending:
                    del self._pending[server][package]

    def _pending_of(self, server):
        with self._pending_lock:
            return dict(self._pending.get(server, {}))

    # -- the periodic read -----------------------------------------------------------------

    def start(self, reactor):
        """Read now and every `interval` seconds on `reactor`."""
        from twisted.internet import task
        self._reactor = reactor
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = reactor
        self._loop.start(self.interval, now=True)

    def stop(self):
        """Stop reading; close the stores' connections."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        with self._stores_lock:
            stores = list(self._stores.values())
        if self._reactor is not None:
            # Not in the reactor: a read still waiting for a store holds its connection.
            for store in stores:
                self._reactor.getThreadPool().callInThread(store.close)

    def _tick(self):
        if self._reading:
            return
        try:
            wanted = self._wanted()
        except Exception as exc:  # noqa: BLE001 - the next tick tries again; say why
            self.log(f"cannot list the servers on a PostgreSQL store: {exc!r}")
            return
        if not wanted:
            return
        from twisted.internet import threads
        self._reading = True
        reading = threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(),
                                            self.read, wanted)
        reading.addCallback(self.apply)
        reading.addErrback(lambda failure: self.log(
            f"syncing the servers on a PostgreSQL store failed: {failure.getTraceback()}"))
        reading.addBoth(self._read_done)

    def _wanted(self):
        wanted = []
        for definition in self.repository.list_servers():
            name = definition["name"]
            if definition.get("store"):
                installed = {record["package"]: record["sha256"]
                             for record in self.repository.list_packages(name)}
                skipped = {(package, digest) for server, package, digest in self._failed
                           if server == name}
                wanted.append((name, definition["store"], installed, skipped,
                               self._deploys[name]))
        return wanted

    def _read_done(self, _):
        self._reading = False

    def read(self, wanted):
        """In a worker thread: for each (server, conninfo, {package: sha256 installed},
        packages not to fetch, deploy count), store what was deployed here and not stored yet,
        then read the members and the packages to install here."""
        found = []
        for name, conninfo, installed, skipped, deploys in wanted:
            store = self.store(conninfo)
            try:
                for package, pending in self._pending_of(name).items():
                    self.share(name, conninfo, package, pending.digest)
                members = store.members(name)
                downloads = []
                for package, (digest, origin) in sorted(store.packages(name).items()):
                    if installed.get(package) != digest and (package, digest) not in skipped:
                        stored = store.package(name, package)
                        if stored is not None:
                            downloads.append((package, origin, *stored))
                found.append((name, deploys, members, downloads, None))
            except StoreUnavailable as exc:
                found.append((name, deploys, None, [], str(exc)))
        return found

    def apply(self, found):
        """In the reactor: keep the members read, install the packages read."""
        for name, deploys, members, downloads, problem in found:
            seen = self._seen.get(name, {})
            self._seen[name] = {"members": members if problem is None else seen.get("members"),
                                "read": now_iso() if problem is None else seen.get("read"),
                                "problem": problem}
            if deploys != self._deploys[name]:
                continue  # deployed here meanwhile: what was read may be older
            pending = self._pending_of(name)
            for package, origin, data, filename, digest in downloads:
                if package not in pending:
                    self._install(name, package, origin, data, filename, digest)

    def _install(self, name, package, origin, data, filename, digest):
        try:
            answer = self.packages.install_shared(name, data, filename, digest)
        except Exception as exc:  # noqa: BLE001 - one package must not stop the others
            self._failed.add((name, package, digest))
            problem = exc.message if isinstance(exc, ApiError) else repr(exc)
            self.log(f"cannot install package {package} of {name} deployed on {origin}: "
                     f"{problem}; deploy it on this node to install it here")
            return
        self.log(f"{answer['message']} (deployed on {origin}, from the PostgreSQL store)")


@dataclass(frozen=True)
class Pending:
    """A package deployed here, waiting to be stored for the other members."""

    digest: str
    data: bytes
    filename: str
    node: str
