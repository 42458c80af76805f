"""`esrt doctor`: a ready node passes; each problem a node can have is named with its fix, and
the exit code says whether anything fails (0: ready, warnings allowed; 1: something fails)."""

import json
import os
import resource
import socket
import subprocess
import sys
import uuid

import pytest

from esrt.mfds.repository import Repository
from esrt.testing.postgres import PostgresCluster

from conftest import database_of, over_tcp, run_esrt
from test_disk_full import small_disk  # noqa: F401 - a fixture

CHECKS = {"python", "packages", "esfh", "descriptors", "ports", "disks", "clock", "home", "mfds"}


def doctor(node, *args, limit_files=None):
    """(exit code, findings) of `esrt doctor --json` on `node`."""
    if limit_files is None:
        result = node.esrt("doctor", "--json", *args, check=False)
    else:
        def limited():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_files, limit_files))
        result = subprocess.run([sys.executable, "-m", "esrt", "doctor", "--json", *args],
                                env=dict(os.environ, ESRT_HOME=str(node.home)),
                                capture_output=True, text=True, timeout=120,
                                preexec_fn=limited)
    report = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0), result.stdout
    return result.returncode, report["findings"]


def of(findings, check, status=None):
    return [f for f in findings if f["check"] == check and status in (None, f["status"])]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_ready_node_passes_and_every_check_has_its_say(node):
    port = free_port()
    node.esrt("server", "create", "ESDOC01", "--listener", f"Web=127.0.0.1:{port}")
    code, findings = doctor(node)
    assert code == 0, findings
    assert {f["check"] for f in findings} == CHECKS
    # The clock may only warn (an unsynchronised clock still runs servers); nothing fails.
    assert not [f for f in findings if f["status"] == "fail"]
    [ports] = of(findings, "ports")
    assert ports["status"] == "ok" and f"port {port} is free" in ports["detail"]
    assert "gnucobol" in of(findings, "packages")[0]["detail"]
    assert "built for libcob 3." in of(findings, "esfh")[0]["detail"]
    assert of(findings, "mfds")[0]["detail"].startswith("mfds answers at http")
    assert "ESDOC01 data" in " ".join(f["detail"] for f in of(findings, "disks"))


def test_each_problem_is_named_with_its_fix_and_fails_the_exit_code(node):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        taken = holder.getsockname()[1]
        node.esrt("server", "create", "ESDOC02", "--listener", f"Web=127.0.0.1:{taken}")
        code, findings = doctor(node)
        assert code == 1
        [ports] = of(findings, "ports", "fail")
        assert f"port {taken} is already in use" in ports["detail"]
        assert "ESDOC02 listener 'Web'" in ports["detail"] and "ss -ltnp" in ports["fix"]
    finally:
        holder.close()

    # Ten thousand connections per listener (the default max_connections) need the files.
    code, findings = doctor(node, limit_files=1024)
    assert code == 1
    [descriptors] = of(findings, "descriptors", "fail")
    assert "ESDOC02" in descriptors["detail"] and "only 1024 files" in descriptors["detail"]
    assert "LimitNOFILE" in descriptors["fix"]

    os.chmod(node.home, 0o777)
    try:
        code, findings = doctor(node)
        [home] = of(findings, "home", "fail")
        assert "writable by everyone" in home["detail"] and home["fix"] == f"chmod go-w {node.home}"
    finally:
        os.chmod(node.home, 0o700)
    # mfds creates its repository for its owner only (it holds password and token hashes).
    repository = node.home / "repository.db"
    assert repository.stat().st_mode & 0o777 == 0o600
    os.chmod(repository, 0o644)  # as an older esrt left it
    try:
        _, findings = doctor(node)
        [home] = of(findings, "home", "fail")
        assert "readable by others" in home["detail"] and home["fix"] == f"chmod 600 {repository}"
    finally:
        # Its owner's next opening (mfds, any `esrt mfds user ...`) makes it private again.
        Repository(repository).close()
    assert repository.stat().st_mode & 0o777 == 0o600

    # With mfds stopped, the definitions come from the repository: still checked.
    node.esrt("mfds", "--stop")
    code, findings = doctor(node)
    assert code == 1
    [mfds] = of(findings, "mfds", "fail")
    assert "esrt mfds --daemon" in mfds["fix"]
    assert of(findings, "ports")[0]["detail"].startswith("ESDOC02 listener")
    text = run_esrt(["doctor"], node.home, check=False)
    assert text.returncode == 1
    assert "FAIL  mfds" in text.stdout and "fix: start it" in text.stdout
    assert text.stdout.rstrip().endswith("to look at")


def test_data_disks_nearly_full_or_not_mounted_are_found(node, small_disk, tmp_path):  # noqa: F811
    definition = {"name": "ESDOC03", "data_dir": str(small_disk / "data"),
                  "listeners": [{"name": "Web", "address": "127.0.0.1:*"}]}
    region_file = tmp_path / "esdoc03.json"
    region_file.write_text(json.dumps(definition))
    (small_disk / "data").mkdir()
    code, findings = doctor(node, "--config", str(region_file))
    assert [f for f in of(findings, "disks") if "ESDOC03 data" in f["detail"]][0]["status"] == "ok"

    # 16 MB of tmpfs, filled but for a little: under 2% free fails.
    with open(small_disk / "data" / "filler", "wb") as filler:
        filler.write(b"\0" * (16 * 1024 * 1024 - 200 * 1024))
    code, findings = doctor(node, "--config", str(region_file))
    assert code == 1
    [full] = [f for f in of(findings, "disks", "fail") if "ESDOC03 data" in f["detail"]]
    assert str(small_disk) in full["detail"] and "free space" in full["fix"]

    # A region file that expects its data on a disk of its own, which is not mounted here.
    definition["data_dir"] = str(tmp_path / "shared" / "data")
    region_file.write_text(json.dumps(definition))
    code, findings = doctor(node, "--config", str(region_file))
    assert code == 1
    [unmounted] = [f for f in of(findings, "disks", "fail") if "ESDOC03" in f["detail"]]
    assert "missing" in unmounted["detail"] and "mount the shared disk" in unmounted["fix"]
    definition["standby"] = True  # on the node that stands by, the disk is mounted elsewhere
    region_file.write_text(json.dumps(definition))
    _, findings = doctor(node, "--config", str(region_file))
    assert [f for f in of(findings, "disks") if "ESDOC03" in f["detail"]][0]["status"] == "warn"


def test_an_unknown_server_is_an_error_that_says_where_servers_come_from(node):
    result = node.esrt("doctor", "--server", "NOSUCH", check=False)
    assert result.returncode == 1
    assert "no server NOSUCH is defined" in result.stderr and "--config" in result.stderr


@pytest.mark.postgresql
def test_a_store_is_reached_and_must_be_a_primary_open_to_esfh(node, postgres, pg_store):
    node.esrt("server", "create", "ESDOC02", "--listener", f"Web=127.0.0.1:{free_port()}",
              "--store", pg_store)
    code, findings = doctor(node, "--server", "ESDOC02")
    [store] = of(findings, "store")
    assert store["status"] == "ok", store
    assert "the primary" in store["detail"] and "PostgreSQL" in store["detail"]
    database = database_of(pg_store)

    def store_is(conninfo, status):
        node.esrt("server", "set", "ESDOC02", f"store={conninfo}")
        code, findings = doctor(node, "--server", "ESDOC02")
        [store] = of(findings, "store")
        assert store["status"] == status and code == (1 if status == "fail" else 0), store
        return store

    with PostgresCluster(standby_of=postgres) as standby:
        store = store_is(over_tcp(pg_store, standby.port), "fail")
        assert "is a standby" in store["detail"] and "primary" in store["fix"], store
        # Several hosts: the regions take the one that accepts writes, and so does the doctor.
        store_is(f"host=127.0.0.1,127.0.0.1 port={standby.port},{postgres.port} user=esrt "
                 f"dbname={database}", "ok")
    # An account with fewer rights than the one that made ESFH's schema (made here, whether or
    # not mfds made it already, reading the members of the server's store).
    visitor = f"visitor{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE ROLE {visitor} LOGIN")
    as_visitor = f"{pg_store} user={visitor}"
    try:
        postgres.psql("CREATE SCHEMA IF NOT EXISTS esfh; "
                      f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA esfh "
                      f"TO {visitor}; ALTER DEFAULT PRIVILEGES IN SCHEMA esfh "
                      f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {visitor}", dsn=pg_store)
        store = store_is(as_visitor, "fail")
        assert "may not use schema esfh" in store["detail"], store
        postgres.psql(f"GRANT USAGE ON SCHEMA esfh TO {visitor}", dsn=pg_store)
        store = store_is(as_visitor, "fail")
        assert "may not make ESFH's tables" in store["detail"], store
        assert f"GRANT CREATE ON DATABASE {database} TO {visitor}" in store["fix"], store
        # The reply store made by its owner: the files there are served, new ones not made.
        postgres.psql("CREATE TABLE esfh.__esrt_replies (key bytea PRIMARY KEY, "
                      "expires bigint NOT NULL, data bytea NOT NULL)", dsn=pg_store)
        store = store_is(as_visitor, "warn")
        assert "a new one cannot be made" in store["detail"], store
    finally:
        postgres.psql(f"DROP OWNED BY {visitor}", dsn=pg_store)
        postgres.psql(f"DROP ROLE {visitor}")
    store = store_is(over_tcp(pg_store, free_port()), "fail")
    assert "cannot be reached" in store["detail"] and "pg_hba.conf" in store["fix"], store
