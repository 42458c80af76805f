"""esrt.pglink: the connection options added to a PostgreSQL store's connection string."""

import pytest

from esrt.pglink import LINK_DEFAULTS, link_defaults


@pytest.fixture(autouse=True)
def no_libpq_environment(monkeypatch, tmp_path):
    # Nobody's service files: the tests write their own.
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "no-services.conf"))
    monkeypatch.setenv("PGSYSCONFDIR", str(tmp_path))
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.delenv("PGTARGETSESSIONATTRS", raising=False)


def test_a_string_without_timeouts_gets_every_default():
    assert link_defaults("host=db dbname=esrt") == {"connect_timeout": "10", **LINK_DEFAULTS}
    assert link_defaults("postgresql://db/esrt", connect_timeout=3)["connect_timeout"] == "3"


def test_what_the_string_sets_is_left_to_it():
    added = link_defaults("postgresql://db/esrt?keepalives_idle=1&connect_timeout=2")
    assert "keepalives_idle" not in added and "connect_timeout" not in added
    assert added["tcp_user_timeout"] == "10000"


def test_a_named_service_is_left_to_say_them_all(monkeypatch):
    assert link_defaults("service=orders dbname=esrt") == {}
    monkeypatch.setenv("PGSERVICE", "orders")
    assert link_defaults("host=db dbname=esrt") == {}


def test_a_services_connect_timeout_is_passed_on(monkeypatch, tmp_path):
    # psycopg never reads the service file's timeout: without it, it would wait 130 s.
    services = tmp_path / "pg_service.conf"
    services.write_text("[orders]\nhost=127.0.0.1\nport=1\nconnect_timeout=4\n"
                        "[plain]\nhost=127.0.0.1\nport=1\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    assert link_defaults("service=orders dbname=esrt") == {"connect_timeout": "4"}
    assert link_defaults("service=plain dbname=esrt") == {}
    assert link_defaults("service=orders dbname=esrt connect_timeout=2") == {}
    assert link_defaults("service=missing dbname=esrt") == {}
    monkeypatch.setenv("PGSERVICE", "orders")
    assert link_defaults("dbname=esrt") == {"connect_timeout": "4"}


def test_pgconnect_timeout_keeps_the_connect_timeout(monkeypatch):
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "4")
    added = link_defaults("host=db dbname=esrt")
    assert "connect_timeout" not in added and added["keepalives_idle"] == "5"


def test_pgtargetsessionattrs_keeps_the_servers_asked_for(monkeypatch):
    # A pooler in front of the store, or a tool reading a standby, may ask for any server.
    assert link_defaults("host=db dbname=esrt")["target_session_attrs"] == "read-write"
    assert "target_session_attrs" not in link_defaults(
        "host=db dbname=esrt target_session_attrs=any")
    monkeypatch.setenv("PGTARGETSESSIONATTRS", "any")
    added = link_defaults("host=db dbname=esrt")
    assert "target_session_attrs" not in added and added["keepalives_idle"] == "5"
