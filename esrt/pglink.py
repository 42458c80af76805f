"""How esrt's Python code connects to a PostgreSQL store (a server's `store` setting): with
the same defaults against a store that stops answering as ESFH's own connections
(native/esfh_pg.c, connect_store), so that a cut link or a node gone without closing its
connections fails a heartbeat or a file tool within seconds, instead of holding it for as long
as TCP takes to give up (a quarter of an hour of retransmissions; two hours before a silent
connection is even probed; a silent server during connect: forever).

They are defaults only: what the connection string says wins; a string (or PGSERVICE) naming a
service of pg_service.conf gets none of them (the service file is where such settings are
kept), and PGCONNECT_TIMEOUT and PGTARGETSESSIONATTRS keep theirs. A service's own connect
timeout is passed on explicitly: psycopg waits for a connection itself, reading the timeout
from the string and PGCONNECT_TIMEOUT only (130 s otherwise), never from the service file.
"""

import os

# target_session_attrs: these connections write, and a standby that the store's address leads
# to for a moment during a failover refuses writes; refused at connect instead, it is a store
# out of reach for now (retried), not an error of the work.
LINK_DEFAULTS = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2",
                 "keepalives_count": "2", "tcp_user_timeout": "10000",
                 "target_session_attrs": "read-write"}
CONNECT_TIMEOUT = 10
# libpq's environment variables that say a default instead (as the string does).
ENVIRONMENT = {"connect_timeout": "PGCONNECT_TIMEOUT",
               "target_session_attrs": "PGTARGETSESSIONATTRS"}


def link_defaults(conninfo, connect_timeout=CONNECT_TIMEOUT):
    """The connection options (name -> value, for psycopg.connect's keywords) to add to
    `conninfo`: those of LINK_DEFAULTS and the connect timeout that it leaves unset."""
    # psycopg is imported here, not with the module: mfds, every region and `esrt server
    # status` reach this module, and psycopg costs each 0.1 s to load.
    from psycopg.conninfo import conninfo_to_dict
    given = conninfo_to_dict(conninfo)
    if given.get("service") or os.environ.get("PGSERVICE"):
        if "connect_timeout" in given or os.environ.get("PGCONNECT_TIMEOUT"):
            return {}
        return _service_connect_timeout(conninfo)
    defaults = {"connect_timeout": str(connect_timeout), **LINK_DEFAULTS}
    return {name: value for name, value in defaults.items()
            if name not in given and not os.environ.get(ENVIRONMENT.get(name, ""))}


def _service_connect_timeout(conninfo):
    """{"connect_timeout": N} when the service `conninfo` names sets one, else {}."""
    from psycopg import pq
    from psycopg.conninfo import make_conninfo
    # libpq reads the service file as it starts a connection (it knows where the file is and
    # how a user's file and the system's combine). Towards a socket that cannot exist: no
    # name is looked up and no server sees it; the options are read all the same.
    nowhere = make_conninfo(conninfo, host=os.devnull, hostaddr="", port="1")
    started = pq.PGconn.connect_start(nowhere.encode())
    try:
        options = {option.keyword: option.val for option in started.info}
    finally:
        started.finish()
    timeout = options.get(b"connect_timeout")
    return {"connect_timeout": timeout.decode()} if timeout else {}


def first_line(exc):
    """The first line of what a psycopg error says (libpq's messages run over several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)
