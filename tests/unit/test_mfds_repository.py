"""The mfds repository: server CRUD, validation, status and package records, persistence."""

import sqlite3

import pytest

from esrt.mfds.repository import Repository, SchemaTooNew, ServerExists, ServerNotFound
from esrt.settings import SettingError

WEB = {"name": "Web Services", "address": "127.0.0.1:9003", "conversation": "Web Services and J2EE"}


@pytest.fixture
def repo(tmp_path):
    repository = Repository(tmp_path / "repository.db")
    yield repository
    repository.close()


def test_create_fills_defaults_and_normalises(repo):
    clean = repo.create_server({"name": "ESSRV01", "listeners": [WEB]})
    assert clean["seps"] == 2
    assert clean["listeners"] == [{"name": "Web Services", "address": "127.0.0.1:9003",
                                   "conversation": "web-services", "tls_cert": None,
                                   "tls_key": None, "tls_client_ca": None, "auth": None,
                                   "metrics": None, "openapi": None,
                                   "max_connections": 10000, "head_timeout": 10,
                                   "idle_timeout": 120, "max_pipelined": None,
                                   "max_queue": 1000}]
    assert repo.get_server("ESSRV01") == clean
    assert [d["name"] for d in repo.list_servers()] == ["ESSRV01"]


def test_list_is_sorted_by_name(repo):
    for name in ("ESSRV02", "ALPHA", "ESSRV01"):
        repo.create_server({"name": name})
    assert [d["name"] for d in repo.list_servers()] == ["ALPHA", "ESSRV01", "ESSRV02"]


def test_duplicate_name_is_refused(repo):
    repo.create_server({"name": "ESSRV01"})
    with pytest.raises(ServerExists, match="server ESSRV01 already exists"):
        repo.create_server({"name": "ESSRV01", "seps": 4})
    assert repo.get_server("ESSRV01")["seps"] == 2


def test_invalid_definition_names_every_bad_field(repo):
    with pytest.raises(SettingError) as caught:
        repo.create_server({"name": "1bad", "seps": 0, "colour": "red"})
    assert set(caught.value.fields) == {"name", "seps", "server"}
    assert "colour" in caught.value.fields["server"]
    assert repo.list_servers() == []


def test_missing_name_is_refused(repo):
    with pytest.raises(SettingError) as caught:
        repo.create_server({"seps": 3})
    assert "name" in caught.value.fields


def test_update_merges_and_validates(repo):
    repo.create_server({"name": "ESSRV01", "listeners": [WEB]})
    updated = repo.update_server("ESSRV01", {"seps": 5, "env": {"DD_APPFILE01": "APPFILE01"}})
    assert updated["seps"] == 5 and updated["listeners"][0]["name"] == "Web Services"
    assert repo.get_server("ESSRV01") == updated
    with pytest.raises(SettingError) as caught:
        repo.update_server("ESSRV01", {"seps": "many"})
    assert "seps" in caught.value.fields
    assert repo.get_server("ESSRV01")["seps"] == 5


def test_update_cannot_rename(repo):
    repo.create_server({"name": "ESSRV01"})
    with pytest.raises(SettingError) as caught:
        repo.update_server("ESSRV01", {"name": "ESSRV09"})
    assert "cannot be renamed" in caught.value.fields["name"]


def test_unknown_server(repo):
    with pytest.raises(ServerNotFound, match="no server NOPE"):
        repo.get_server("NOPE")
    with pytest.raises(ServerNotFound):
        repo.update_server("NOPE", {"seps": 3})
    with pytest.raises(ServerNotFound):
        repo.delete_server("NOPE")
    with pytest.raises(ServerNotFound):
        repo.set_status("NOPE", {"mfServerStatus": "Started"})
    with pytest.raises(ServerNotFound):
        repo.list_packages("NOPE")


def test_status_is_stored_as_is(repo):
    repo.create_server({"name": "ESSRV01"})
    assert repo.get_status("ESSRV01") is None
    document = {"mfServerStatus": "Started", "pid": 1234, "listeners": [{"CN": "Web Services"}],
                "extra": {"anything": [1, 2]}}
    repo.set_status("ESSRV01", document, received="2024-01-01T00:00:00+00:00")
    assert repo.get_status("ESSRV01") == (document, "2024-01-01T00:00:00+00:00")
    repo.set_status("ESSRV01", {"mfServerStatus": "Stopped"})
    assert repo.get_status("ESSRV01")[0] == {"mfServerStatus": "Stopped"}


def test_packages_are_recorded_and_replaced(repo):
    repo.create_server({"name": "ESSRV01"})
    repo.record_package("ESSRV01", "srv02", {"service": "srv02", "programs": []}, 10)
    repo.record_package("ESSRV01", "srv01", {"service": "srv01", "v": 1}, 100)
    repo.record_package("ESSRV01", "srv01", {"service": "srv01", "v": 2}, 200)
    packages = repo.list_packages("ESSRV01")
    assert [p["package"] for p in packages] == ["srv01", "srv02"]
    assert packages[0]["manifest"]["v"] == 2 and packages[0]["size"] == 200
    assert packages[0]["installed"]


def test_delete_forgets_status_and_packages(repo):
    repo.create_server({"name": "ESSRV01"})
    repo.set_status("ESSRV01", {"mfServerStatus": "Stopped"})
    repo.record_package("ESSRV01", "srv01", {}, 1)
    repo.delete_server("ESSRV01")
    assert repo.list_servers() == []
    repo.create_server({"name": "ESSRV01"})
    assert repo.get_status("ESSRV01") is None
    assert repo.list_packages("ESSRV01") == []


def test_survives_reopen_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "repository.db"
    first = Repository(path)
    first.create_server({"name": "ESSRV01", "seps": 3})
    first.close()
    second = Repository(path)
    try:
        assert second.get_server("ESSRV01")["seps"] == 3
        mode = sqlite3.connect(str(path)).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        second.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "repository.db"
    Repository(path).close()
    db = sqlite3.connect(str(path))
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(SchemaTooNew, match="upgrade esrt"):
        Repository(path)


def test_a_first_version_repository_keeps_its_packages_and_gains_their_digests(tmp_path):
    path = tmp_path / "repository.db"
    # The tables as esrt wrote them before packages had a digest.
    db = sqlite3.connect(str(path))
    db.executescript("""
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE servers (name TEXT PRIMARY KEY, definition TEXT NOT NULL,
                              created TEXT NOT NULL, updated TEXT NOT NULL);
        CREATE TABLE packages (server TEXT NOT NULL, package TEXT NOT NULL,
                               manifest TEXT NOT NULL, installed TEXT NOT NULL,
                               size INTEGER NOT NULL, PRIMARY KEY (server, package));
        INSERT INTO servers VALUES ('ESSRV01', '{"name": "ESSRV01"}', 'then', 'then');
        INSERT INTO packages VALUES ('ESSRV01', 'srv01', '{"programs": []}', 'then', 10);
    """)
    db.close()
    repository = Repository(path)
    try:
        assert repository.list_packages("ESSRV01") == [
            {"package": "srv01", "manifest": {"programs": []}, "installed": "then", "size": 10,
             "sha256": ""}]
        repository.record_package("ESSRV01", "srv02", {}, 5, sha256="ab" * 32)
        assert repository.list_packages("ESSRV01")[1]["sha256"] == "ab" * 32
    finally:
        repository.close()
    version = sqlite3.connect(str(path)).execute("SELECT version FROM schema_version").fetchone()
    assert version == (2,)
