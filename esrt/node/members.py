"""The members of a server whose files are in PostgreSQL (its `store` setting): the regions that
run it on any node, and the packages deployed to it, both kept in the store itself so that
every node sees them.

Each region writes its own row every BEAT seconds (esrt.region.membership) and deletes it when
it stops; a row not written for LOST_AFTER seconds is a member that died or lost the database.
The node's mfds stores each package deployed to such a server, and installs on its node the
packages another node deployed (esrt.mfds.api.members). Ages are measured with the database's
clock, so the nodes' clocks need not agree.
"""

import hashlib
import json
from collections import Counter
import socket
import threading

from esrt.pglink import first_line, link_defaults


SCHEMA = "esfh"
MEMBERS = "__esrt_members"
PACKAGES = "__esrt_packages"
# Seconds between a region's heartbeats, and after which a silent member is shown lost.
BEAT = 1.0
LOST_AFTER = 5.0
# A member lost for this long is forgotten (its row deleted by the next heartbeat of any).
FORGET_AFTER = 3600.0
# A store that does not answer must not hold a region's heartbeat or mfds's sync for long:
# bounds on connecting and on a statement; esrt.pglink's on a connection whose peer vanished
# without closing it.
CONNECT_TIMEOUT = 3
STATEMENT_TIMEOUT_MS = 5000


class StoreUnavailable(Exception):
    """The store could not be reached or refused a statement; the message says which."""


def member_name(home_root):
    """How a region is known among the members: its host and its ESRT_HOME (two homes on one
    host may run the same server)."""
    return f"{socket.gethostname()}:{home_root}"


def package_digest(data):
    """The SHA-256 that tells one package's bytes from another's."""
    return hashlib.sha256(data).hexdigest()


def _psycopg():
    # Imported when a store is first used, not with this module: mfds, every region and
    # `esrt server status` import this module, and psycopg costs them 0.1 s each to load.
    import psycopg
    import psycopg.sql
    return psycopg


def _table(name):
    return _psycopg().sql.Identifier(SCHEMA, name)


def _sql(text):
    return _psycopg().sql.SQL(text)


class MemberStore:
    """One connection to a PostgreSQL store for the members' and packages' tables, made when
    first needed and made again after a failure. Safe to use from several threads (one
    statement at a time)."""

    def __init__(self, conninfo, application="esrt"):
        self.conninfo = conninfo
        self.application = application
        self._connection = None
        self._lock = threading.Lock()

    def close(self):
        """Close the connection (the next use connects again)."""
        with self._lock:
            self._drop()

    def _drop(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run(self, work):
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                with self._connection.transaction(), self._connection.cursor() as cursor:
                    return work(cursor)
            except _psycopg().Error as exc:
                # Whatever went wrong, the next call starts from a fresh session.
                self._drop()
                raise StoreUnavailable(f"PostgreSQL store {self.conninfo}: "
                                       f"{first_line(exc)}") from None

    def _connect(self):
        connection = _psycopg().connect(self.conninfo, application_name=self.application,
                                        autocommit=True,
                                        **link_defaults(self.conninfo, CONNECT_TIMEOUT))
        try:
            self._prepare(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _prepare(connection):
        connection.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        found = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
            (_table(MEMBERS).as_string(connection),
             _table(PACKAGES).as_string(connection))).fetchone()[0]
        if not found:
            with connection.transaction():
                # The lock ESFH takes to make its schema objects: two processes making them
                # at once would collide on the catalogs.
                connection.execute("SELECT pg_advisory_xact_lock(hashtext('esfh'))")
                connection.execute(_sql("CREATE SCHEMA IF NOT EXISTS {}").format(
                    _psycopg().sql.Identifier(SCHEMA)))
                connection.execute(_sql(
                    "CREATE TABLE IF NOT EXISTS {} (server text NOT NULL, member text NOT NULL,"
                    " host text NOT NULL, pid integer NOT NULL, state text NOT NULL, "
                    "listeners jsonb NOT NULL, started timestamptz NOT NULL, "
                    "seen timestamptz NOT NULL, PRIMARY KEY (server, member))").format(
                        _table(MEMBERS)))
                connection.execute(_sql(
                    "CREATE TABLE IF NOT EXISTS {} (server text NOT NULL, package text NOT NULL,"
                    " sha256 text NOT NULL, filename text NOT NULL, car bytea NOT NULL, "
                    "deployed timestamptz NOT NULL, deployed_from text NOT NULL, "
                    "PRIMARY KEY (server, package))").format(_table(PACKAGES)))

    # -- members ---------------------------------------------------------------------------

    def beat(self, server, member, state, pid, listeners, started):
        """Write member `member`'s row of `server` as of now; return every member (as
        members() does). `started` is the region's start, in seconds since the epoch."""
        def work(cursor):
            cursor.execute(_sql(
                "INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s), now()) "
                "ON CONFLICT (server, member) DO UPDATE SET host = EXCLUDED.host, "
                "pid = EXCLUDED.pid, state = EXCLUDED.state, listeners = EXCLUDED.listeners, "
                "started = EXCLUDED.started, seen = EXCLUDED.seen").format(_table(MEMBERS)),
                (server, member, socket.gethostname(), pid, state, json.dumps(listeners),
                 started))
            cursor.execute(_sql("DELETE FROM {} WHERE seen < now() - %s * interval '1 s'")
                           .format(_table(MEMBERS)), (FORGET_AFTER,))
            return self._members(cursor, server)
        return self._run(work)

    def leave(self, server, member):
        """Delete member `member`'s row of `server` (a region stopping)."""
        self._run(lambda cursor: cursor.execute(_sql(
            "DELETE FROM {} WHERE server = %s AND member = %s").format(_table(MEMBERS)),
            (server, member)))

    def members(self, server):
        """Every member of `server`: [{"member", "host", "pid", "state", "listeners",
        "started", "age", "lost"}], by member; `age` in seconds since its last heartbeat."""
        return self._run(lambda cursor: self._members(cursor, server))

    @staticmethod
    def _members(cursor, server):
        cursor.execute(_sql(
            "SELECT member, host, pid, state, listeners, "
            "to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "extract(epoch FROM now() - seen)::float8 FROM {} WHERE server = %s "
            "ORDER BY member COLLATE \"C\"").format(_table(MEMBERS)), (server,))
        return [{"member": member, "host": host, "pid": pid, "state": state,
                 "listeners": listeners, "started": started, "age": round(age, 1),
                 "lost": age > LOST_AFTER}
                for member, host, pid, state, listeners, started, age in cursor.fetchall()]

    # -- packages --------------------------------------------------------------------------

    def put_package(self, server, package, data, filename, deployed_from):
        """Store (or replace) package `package` of `server`; return its digest."""
        digest = package_digest(data)
        self._run(lambda cursor: cursor.execute(_sql(
            "INSERT INTO {} VALUES (%s, %s, %s, %s, %s, now(), %s) "
            "ON CONFLICT (server, package) DO UPDATE SET sha256 = EXCLUDED.sha256, "
            "filename = EXCLUDED.filename, car = EXCLUDED.car, deployed = EXCLUDED.deployed, "
            "deployed_from = EXCLUDED.deployed_from").format(_table(PACKAGES)),
            (server, package, digest, filename, data, deployed_from)))
        return digest

    def packages(self, server):
        """{package: (sha256, deployed_from)} of `server`, without their bytes."""
        def work(cursor):
            cursor.execute(_sql("SELECT package, sha256, deployed_from FROM {} "
                                   "WHERE server = %s").format(_table(PACKAGES)), (server,))
            return {package: (digest, origin) for package, digest, origin in cursor.fetchall()}
        return self._run(work)

    def package(self, server, package):
        """(bytes, file name, sha256) of one stored package, or None."""
        def work(cursor):
            cursor.execute(_sql("SELECT car, filename, sha256 FROM {} "
                                   "WHERE server = %s AND package = %s").format(
                                       _table(PACKAGES)), (server, package))
            row = cursor.fetchone()
            return None if row is None else (bytes(row[0]), row[1], row[2])
        return self._run(work)


def listeners_text(member):
    """A member's listeners as `esrt server status` and the admin UI show them."""
    return ", ".join(f"{listener['address'] or '(no address)'} ({listener['name']})"
                     for listener in member["listeners"])


def describe_member(member):
    """One line of `esrt server status` for a member."""
    listeners = listeners_text(member) or "no listeners"
    if member["lost"]:
        return (f"{member['member']}: lost, not heard of for {member['age']:.0f} s (was "
                f"{member['state']}, pid {member['pid']}, {listeners})")
    return f"{member['member']}: {member['state']} (pid {member['pid']}) on {listeners}"


def members_lines(status):
    """The lines that list a server's members, from its region's status document ([] for a
    server without a store)."""
    if "members" not in status:
        return []
    members = status.get("members")
    problem = status.get("members_problem")
    if members is None:
        return [f"members: not known yet ({problem or 'no heartbeat answered yet'})"]
    counts = Counter("lost" if m["lost"] else "serving" if m["state"] == "Started"
                     else m["state"].lower() for m in members)
    lines = ["members in its store: " + (", ".join(
        f"{counts.pop(kind)} {kind}" for kind in ("serving", *sorted(counts)) if kind in counts)
        or "none")]
    lines += [f"  {describe_member(member)}" for member in members]
    if problem:
        lines.append(f"  (as last read: this region cannot reach its store now: {problem})")
    return lines
