"""`esrt doctor`: what stands between this node and running its servers, and what to do.

Each check looks at one thing a region needs (the Debian packages, the ESFH build, enough
file descriptors, free ports, room on the data and log disks, a synchronised clock, a private
ESRT_HOME, a reachable mfds, each PostgreSQL store reached, writable and open to ESFH's tables)
and returns Findings: "ok", "warn" (works, but will bite: say so
before it does) or "fail" (a server will not start or not serve), each with the fix. Checks
only look: nothing is started, built or changed.
"""

import ctypes
import dataclasses
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

from esrt.cobol.dialect import libcob_version
from esrt.cobol.esfh_build import CACHE_LIB, LIBRARY_NAME, NATIVE, PACKAGE_LIB, SOURCES
from esrt.node.mfds_client import TOKEN_FILE, MfdsClient, MfdsError, MfdsUnavailable
from esrt.node.runs import recorded_run_dir, region_pid
from esrt.paths import RegionPaths
from esrt.procs import process_alive

OK, WARN, FAIL = "ok", "warn", "fail"
# Debian packages a node runs servers with: "a,b" is the first of these this release has.
PACKAGES = ("gnucobol3,gnucobol", "libcob4-dev", "libdb5.3t64,libdb5.3", "db5.3-util",
            "libpq5", "openssl")
# Free space below which a data or log disk is a warning, and a failure.
DISK_WARN_FRACTION, DISK_WARN_BYTES = 0.10, 1 << 30
DISK_FAIL_FRACTION, DISK_FAIL_BYTES = 0.02, 200 << 20
# Descriptors a region needs besides its connections: SEP pipes, data files, logs, mfds.
FD_MARGIN = 256
# A clock whose error bound is above this is as good as unsynchronised for HA and expiries.
CLOCK_MAX_ERROR_US = 500_000
# Seconds a PostgreSQL store has to answer the doctor (a region's own connect timeout: 10).
STORE_CONNECT_TIMEOUT = 5
# What the doctor asks a store: whether it takes ESFH's writes, and what its account may do with
# ESFH's schema and tables (by oid: a name in a schema it may not use would be an error). ESFH
# makes a table (and the schema, with CREATE SCHEMA IF NOT EXISTS: CREATE on the database)
# only when it is missing, so an account that may not make them serves the files already made.
STORE_QUESTIONS = """
WITH esfh AS (SELECT oid FROM pg_namespace WHERE nspname = 'esfh')
SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on',
       current_setting('server_version'), current_user, current_database(),
       has_database_privilege(current_database(), 'CREATE'),
       (SELECT has_schema_privilege(oid, 'USAGE') FROM esfh),
       (SELECT has_schema_privilege(oid, 'CREATE') FROM esfh),
       EXISTS (SELECT FROM pg_class WHERE relnamespace = (SELECT oid FROM esfh)
               AND relname = '__esrt_replies'),
       (SELECT count(*) FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM esfh)
        AND c.relkind IN ('r', 'p') AND NOT (
              has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
              AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE')))
"""


@dataclasses.dataclass
class Finding:
    """One thing checked: `check` (its group), `status` (ok, warn, fail), what was found, and
    for a warn or fail, what to do."""

    check: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self):
        return dataclasses.asdict(self)


def run_checks(home, definitions, mfds_client=None):
    """Every Finding for node `home` (an esrt.home.Home) and its server `definitions`;
    `mfds_client` is tried for reachability (None: the node's own, from mfds.json)."""
    findings = []
    for check in (lambda: check_python(), lambda: check_packages(), lambda: check_esfh(),
                  lambda: check_descriptors(definitions), lambda: check_ports(home, definitions),
                  lambda: check_disks(home, definitions), lambda: check_clock(),
                  lambda: check_home(home), lambda: check_mfds(home, mfds_client),
                  lambda: check_stores(definitions)):
        try:
            findings.extend(check())
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            findings.append(Finding("doctor", FAIL, f"a check failed: {type(exc).__name__}: "
                                    f"{exc}", "report this as a bug of esrt doctor"))
    return findings


def check_python():
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 11):
        return [Finding("python", FAIL, f"Python {version}", "esrt needs Python 3.11 or later")]
    return [Finding("python", OK, f"Python {version} ({sys.executable})")]


def _dpkg_version(package):
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Version}", package],
                                capture_output=True, text=True, timeout=30)
    except OSError:
        return None, False
    status, _, version = result.stdout.partition("|")
    return (version if "install ok installed" in status else None), True


def check_packages():
    found, missing = [], []
    for choice in PACKAGES:
        for package in choice.split(","):
            version, can_tell = _dpkg_version(package)
            if not can_tell:
                return [Finding("packages", WARN, "dpkg-query is not here: not a Debian system, "
                                "the packages cannot be checked",
                                f"install the equivalents of {', '.join(PACKAGES)}")]
            if version:
                found.append(f"{package} {version}")
                break
        else:
            missing.append(choice.split(",")[0])
    if missing:
        return [Finding("packages", FAIL, f"missing Debian packages: {', '.join(missing)}",
                        f"apt-get install {' '.join(missing)} (as root), or run `make setup` "
                        "in the esrt checkout")]
    return [Finding("packages", OK, ", ".join(found))]


def esfh_library_path():
    """Where the ESFH library of this installation is, or None when it was never built."""
    for directory in (PACKAGE_LIB, CACHE_LIB):
        if (directory / LIBRARY_NAME).is_file():
            return directory / LIBRARY_NAME
    return None


def check_esfh():
    library = esfh_library_path()
    if library is None:
        return [Finding("esfh", FAIL, f"ESFH ({LIBRARY_NAME}) is not built",
                        "run `make setup` in the esrt checkout (or `python -m "
                        "esrt.cobol.esfh_build`)")]
    running = libcob_version()
    if running is None:
        return [Finding("esfh", FAIL, "libcob (GnuCOBOL's runtime) cannot be loaded",
                        "apt-get install libcob4-dev")]
    try:
        handle = ctypes.CDLL(str(library))
    except OSError as exc:
        return [Finding("esfh", FAIL, f"{library} cannot be loaded: {exc}",
                        "build it again: `make setup` in the esrt checkout")]
    if not hasattr(handle, "esfh_built_for_libcob"):
        return [Finding("esfh", FAIL, f"{library} was built by an older esrt than this one",
                        "build it again: `make setup` in the esrt checkout")]
    built_for = handle.esfh_built_for_libcob()
    built = (built_for // 100, built_for % 100)
    if built != running[:2]:
        return [Finding("esfh", FAIL, f"{library} was built for libcob {built[0]}.{built[1]}, "
                        f"but libcob {'.'.join(map(str, running))} runs (file status codes "
                        "differ between releases)", "build it again: `make setup`")]
    stale = [name for name in SOURCES if (NATIVE / name).is_file()
             and (NATIVE / name).stat().st_mtime > library.stat().st_mtime]
    if stale:
        return [Finding("esfh", WARN, f"{library} is older than {', '.join(stale)}",
                        "build it again: `make setup`")]
    return [Finding("esfh", OK, f"{library}, built for libcob {built[0]}.{built[1]}")]


def check_descriptors(definitions):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A region raises its soft limit to the hard one (esrt.region.main): the hard one counts.
    findings = []
    for definition in definitions:
        wanted = sum(listener.get("max_connections", 10000)
                     for listener in definition.get("listeners") or ()) + FD_MARGIN
        if hard != resource.RLIM_INFINITY and hard < wanted:
            findings.append(Finding(
                "descriptors", FAIL,
                f"{definition['name']}: its listeners may hold {wanted - FD_MARGIN} connections "
                f"but a process may open only {hard} files (hard limit)",
                f"raise the limit to at least {wanted} (LimitNOFILE= in its systemd unit, "
                "`ulimit -Hn` or /etc/security/limits.conf), or lower the listeners' "
                "max_connections"))
    if not findings:
        findings.append(Finding("descriptors", OK, f"open files: soft {soft}, hard {hard}"))
    return findings


def _listening_ports():
    """{(ip, port)} of the TCP sockets listening on this machine (IPv4 and IPv6)."""
    listening = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            listening.add((socket.inet_ntop(family, raw), int(port, 16)))
    return listening


def _server_running(home, name):
    pid = region_pid(recorded_run_dir(home, name))
    return pid is not None and process_alive(pid)


def check_ports(home, definitions):
    findings, listening = [], _listening_ports()
    for definition in definitions:
        name = definition["name"]
        running = _server_running(home, name)
        for listener in definition.get("listeners") or ():
            host, _, port = listener["address"].rpartition(":")
            if port in ("*", "0") or not port.isdigit():
                continue  # any free port: nothing to collide with
            port = int(port)
            host = "0.0.0.0" if host in ("*", "") else host.strip("[]")
            wildcard = {"0.0.0.0", "::"}
            taken = any(p == port and (ip == host or ip in wildcard or host in wildcard)
                        for ip, p in listening)
            where = f"{name} listener {listener['name']!r} ({listener['address']})"
            if taken and not running:
                findings.append(Finding(
                    "ports", FAIL, f"{where}: port {port} is already in use by another program",
                    f"find it with `ss -ltnp 'sport = :{port}'` and stop it, or move the "
                    f"listener: `esrt server set {name} ...` with another port"))
            elif not taken and not running:
                findings.append(Finding("ports", OK, f"{where}: port {port} is free"))
            else:
                findings.append(Finding("ports", OK, f"{where}: in use by {name} itself"
                                        if taken else f"{where}: {name} runs"))
    return findings or [Finding("ports", OK, "no server listens on a fixed port")]


def _mount_point(path):
    path = _existing(path).resolve()
    while not os.path.ismount(path):
        path = path.parent
    return path


def _disk_finding(what, path):
    usage = shutil.disk_usage(_existing(path))
    free, fraction = usage.free, usage.free / usage.total if usage.total else 0.0
    text = (f"{what} {path}: {free / (1 << 30):.1f} GB free ({fraction:.0%}) on "
            f"{_mount_point(path)}")
    # The byte floors are for big disks; a small one dedicated to a server is judged by share.
    if free < min(DISK_FAIL_BYTES, usage.total / 4) or fraction < DISK_FAIL_FRACTION:
        return Finding("disks", FAIL, text, "free space there now: a full data disk stops "
                       "commits (the region then refuses calls), a full log disk loses logs")
    if free < min(DISK_WARN_BYTES, usage.total / 2) or fraction < DISK_WARN_FRACTION:
        return Finding("disks", WARN, text, "free space there soon")
    return Finding("disks", OK, text)


def _existing(path):
    # A directory not made yet (a server never started) is judged by where it will be.
    path = Path(path)
    while not path.exists():
        path = path.parent
    return path


def check_disks(home, definitions):
    findings = [_disk_finding("ESRT_HOME", home.root)]
    for definition in definitions:
        paths = RegionPaths(definition, home)
        name = definition["name"]
        if definition.get("data_dir") and Path(definition["data_dir"]).is_absolute():
            # A data directory outside the server's root: a shared disk (HA), which must be
            # a disk of its own, mounted, where the server is active.
            mount = _mount_point(paths.data)
            if mount == Path("/") or not paths.data.exists():
                status = WARN if definition.get("standby") else FAIL
                findings.append(Finding(
                    "disks", status,
                    f"{name}: data_dir {paths.data} is "
                    + ("missing" if not paths.data.exists() else "on the root file system"),
                    "mount the shared disk there" + (
                        " (a standby's disk is mounted where it is active: fine on the "
                        "node that stands by)" if definition.get("standby") else "")))
                continue
        findings.append(_disk_finding(f"{name} data", paths.data))
        if _mount_point(paths.casroot) != _mount_point(paths.data):
            findings.append(_disk_finding(f"{name} logs", paths.casroot))
    return findings


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> (x86-64 and aarch64 share this layout): the fields
    # read here come first; the rest is padding the kernel may fill.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("rest", ctypes.c_byte * 200)]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def check_clock():
    libc = ctypes.CDLL(None, use_errno=True)
    timex = _Timex()
    state = libc.adjtimex(ctypes.byref(timex))
    if state < 0:
        return [Finding("clock", WARN, "the kernel did not say whether the clock is "
                        f"synchronised ({os.strerror(ctypes.get_errno())})",
                        "check it with `timedatectl` or `chronyc tracking`")]
    if state == TIME_ERROR or timex.status & STA_UNSYNC or timex.maxerror > CLOCK_MAX_ERROR_US:
        return [Finding("clock", WARN, "the clock is not synchronised (NTP): "
                        f"maximum error {timex.maxerror / 1e6:.1f} s",
                        "run an NTP client (`apt-get install chrony`): stored replies and "
                        "idempotency keys expire by the clock, and cluster nodes must agree")]
    return [Finding("clock", OK, f"synchronised, maximum error {timex.maxerror / 1000:.1f} ms")]


def check_home(home):
    root = home.root
    if not root.exists():
        return [Finding("home", WARN, f"ESRT_HOME {root} does not exist yet",
                        "start mfds (`esrt mfds --daemon`): it creates it")]
    info = root.stat()
    findings = []
    if info.st_uid != os.geteuid():
        findings.append(Finding("home", FAIL, f"ESRT_HOME {root} belongs to uid {info.st_uid}, "
                                f"not to this user (uid {os.geteuid()})",
                                f"run esrt as its owner, or `chown -R {os.geteuid()} {root}`"))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        findings.append(Finding("home", FAIL, f"ESRT_HOME {root} is writable by "
                                f"{'everyone' if info.st_mode & stat.S_IWOTH else 'its group'} "
                                f"(mode {stat.filemode(info.st_mode)}): others could change "
                                "definitions and deployed programs", f"chmod go-w {root}"))
    for secret in ("repository.db", TOKEN_FILE):
        path = root / secret
        if path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            findings.append(Finding("home", FAIL, f"{path} is readable by others (mode "
                                    f"{stat.filemode(path.stat().st_mode)}): it holds "
                                    "password hashes or the node's token",
                                    f"chmod 600 {path}"))
    return findings or [Finding("home", OK, f"ESRT_HOME {root}, mode "
                                f"{stat.filemode(info.st_mode)}, owned by this user")]


def check_mfds(home, client=None):
    try:
        client = client or MfdsClient.from_home(home, timeout=5.0)
        client.health()
    except MfdsUnavailable as exc:
        return [Finding("mfds", FAIL, f"no mfds answers for ESRT_HOME={home.root}"
                        + (f" ({exc.reason})" if exc.reason else ""),
                        "start it: `esrt mfds --daemon` (or `systemctl start esrt-mfds`)")]
    except (MfdsError, OSError) as exc:
        return [Finding("mfds", FAIL, f"mfds answered with an error: {exc}",
                        f"see {home.mfds_log}")]
    return [Finding("mfds", OK, f"mfds answers at {client.url}")]



def check_stores(definitions):
    """Each PostgreSQL store of `definitions` (their `store` setting), once."""
    servers = {}
    for definition in definitions:
        if definition.get("store"):
            servers.setdefault(definition["store"], []).append(definition["name"])
    return [_store_finding(conninfo, names) for conninfo, names in servers.items()]


def _store_finding(conninfo, names):
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from esrt.pglink import first_line, link_defaults
    who = f"{', '.join(names)}: store {conninfo}"
    try:
        given = conninfo_to_dict(conninfo)
        options = link_defaults(conninfo, STORE_CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        return Finding("store", FAIL, f"{who} is not a connection string libpq takes: "
                       f"{first_line(exc)}", f"correct it: `esrt server set {names[0]} "
                       "store='host=HOST dbname=DB ...'`")
    if "connect_timeout" not in {**given, **options} and not os.environ.get("PGCONNECT_TIMEOUT"):
        # A service that sets none: the regions leave it to the service (the README asks for
        # the timeouts there), but the doctor, run by hand, must answer in seconds.
        options["connect_timeout"] = str(STORE_CONNECT_TIMEOUT)
    try:
        answers = _ask_store(conninfo, options)
    except psycopg.Error as exc:
        refusal = first_line(exc)
        answers = None
        if "read-only" in refusal:
            # Refused as the regions connect (libpq's target_session_attrs): the server at
            # the address, taken as it is, says why.
            try:
                answers = _ask_store(conninfo, {**options, "target_session_attrs": "any"})
            except psycopg.Error:
                pass
        if answers is None or not (answers[0] or answers[1]):
            return Finding("store", FAIL, f"{who} cannot be reached: {refusal}",
                           "check that PostgreSQL runs there, and that the connection string "
                           "(host, port, dbname, user; the password in ~/.pgpass) and the "
                           "server's pg_hba.conf let this account in")
    (standby, read_only, version, user, database, may_create_schema, may_use_schema,
     may_create_tables, replies_made, unusable) = answers
    if standby:
        return Finding("store", FAIL, f"{who} is a standby (in recovery): it accepts no "
                       "writes, and calls would be answered 503 store_unavailable",
                       "give the primary's address, or the floating address that follows it: "
                       f"`esrt server set {names[0]} store=...`")
    if read_only:
        return Finding("store", FAIL, f"{who} accepts no writes (default_transaction_read_only "
                       f"is on for {user} in {database})",
                       f"ALTER DATABASE {_ident(database)} SET default_transaction_read_only = "
                       "off (or the same for the role), or give another server")
    grant_database = f"GRANT CREATE ON DATABASE {_ident(database)} TO {_ident(user)}"
    grant_schema = f"GRANT USAGE, CREATE ON SCHEMA esfh TO {_ident(user)}"
    if may_use_schema is False:
        return Finding("store", FAIL, f"{who}: {user} may not use schema esfh of {database}, "
                       "where ESFH keeps the files", grant_schema)
    if unusable:
        return Finding("store", FAIL, f"{who}: {user} may not read and write {unusable} of "
                       f"ESFH's tables in schema esfh of {database} (made by another account)",
                       "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA esfh TO "
                       f"{_ident(user)}, or give the account that made them")
    missing = [grant for grant, right in ((grant_database, may_create_schema),
                                          (grant_schema, may_create_tables)) if right is False]
    if not replies_made and missing:
        # Every call stores its reply: without that table nothing is served.
        return Finding("store", FAIL, f"{who}: {user} may not make ESFH's tables in {database} "
                       "(schema esfh, the reply store, the files' tables)", "; ".join(missing))
    if missing:
        return Finding("store", WARN, f"{who}: {user} may not make tables in {database}: the "
                       "files already there are served, a new one cannot be made",
                       "; ".join(missing))
    return Finding("store", OK, f"{who}: PostgreSQL {version}, the primary, as {user} in "
                   f"{database}")


def _ask_store(conninfo, options):
    """STORE_QUESTIONS' answers from the store `conninfo` reached with `options`."""
    import psycopg
    with psycopg.connect(conninfo, application_name="esrt doctor", autocommit=True,
                         **options) as connection:
        return connection.execute(STORE_QUESTIONS).fetchone()


def _ident(name):
    """`name` as SQL writes it: quoted unless a plain lower-case identifier."""
    if name.isascii() and name.replace("_", "a").isalnum() and name == name.lower() \
            and not name[0].isdigit():
        return name
    return '"' + name.replace('"', '""') + '"'
