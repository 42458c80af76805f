"""Settings typed as text (CLI flags, `esrt server set` pairs, form fields): what each text
means, and the message a user gets for a bad one."""

import pytest

from esrt.cli.server_cmd import parse_assignments
from esrt.mfds.web.pages import definition_from_form, form_values
from esrt.settings import SERVER_SETTINGS, SettingError, server_setting


def message(exc_info, field):
    return exc_info.value.fields[field]


# A listener's bounds at their defaults.
LIMITS = {"max_connections": 10000, "head_timeout": 10, "idle_timeout": 120,
          "max_pipelined": None, "max_queue": 1000}


def test_set_pairs_become_clean_changes():
    changes = parse_assignments(["seps=4", "durability=write-nosync", "standby=yes",
                                 "listeners=Web Services=127.0.0.1:9003",
                                 "listeners=Binary=127.0.0.1:9004,esrt",
                                 "env=DD_APPFILE01=APPFILE01", "max-body=65536", "root="])
    no_tls = {"tls_cert": None, "tls_key": None, "tls_client_ca": None, "auth": None,
              "metrics": None, "openapi": None, **LIMITS}
    assert changes == {
        "seps": 4, "durability": "write-nosync", "standby": True, "max_body": 65536,
        "listeners": [{"name": "Web Services", "address": "127.0.0.1:9003",
                       "conversation": "web-services", **no_tls},
                      {"name": "Binary", "address": "127.0.0.1:9004", "conversation": "esrt",
                       **no_tls}],
        "env": {"DD_APPFILE01": "APPFILE01"}, "root": None}


def test_a_listener_carries_its_tls_files_as_name_value_pairs():
    (listener,) = parse_assignments([
        "listeners=Secure=*:9443,web-services,tls_cert=/etc/esrt/srv.crt,"
        "tls-key=/etc/esrt/srv.key,tls_client_ca=/etc/esrt/ca.crt,auth=mtls"])["listeners"]
    assert listener == {"name": "Secure", "address": "*:9443", "conversation": "web-services",
                        "tls_cert": "/etc/esrt/srv.crt", "tls_key": "/etc/esrt/srv.key",
                        "tls_client_ca": "/etc/esrt/ca.crt", "auth": "mtls", "metrics": None,
                        "openapi": None, **LIMITS}
    # Shown as typed (the form's line, `server set` output), and read back the same.
    (text,) = server_setting("listeners").to_texts([listener])
    assert text == ("Secure=*:9443,web-services,tls_cert=/etc/esrt/srv.crt,"
                    "tls_key=/etc/esrt/srv.key,tls_client_ca=/etc/esrt/ca.crt,auth=mtls")
    assert server_setting("listeners").from_texts([text]) == [listener]
    # Without TLS the text is the one it always was.
    assert server_setting("listeners").to_texts(
        parse_assignments(["listeners=Web=127.0.0.1:9003"])["listeners"]) == \
        ["Web=127.0.0.1:9003,web-services"]
    # Conversation left out: the default one, with the files after the address.
    (binary,) = parse_assignments(["listeners=B=127.0.0.1:1,tls_cert=/a.crt,tls_key=/a.key"])[
        "listeners"]
    assert binary["conversation"] == "web-services" and binary["tls_key"] == "/a.key"


@pytest.mark.parametrize("text, says", [
    ("S=10.0.0.5:9003", "can be reached from other machines and has no authentication"),
    ("S=*:9003,auth=basic", "without TLS, so they would cross the network in clear text"),
    ("S=127.0.0.1:1,auth=mtls", "has auth=mtls but no tls_client_ca"),
    ("S=127.0.0.1:1,auth=maybe", "is not one of none, token, basic, mtls"),
    ("S=127.0.0.1:1,metrics=public", "is not one of off, auth, open"),
    ("S=127.0.0.1:1,tls_cert=/a.crt", "has tls_cert but no tls_key"),
    ("S=127.0.0.1:1,tls_key=/a.key", "has tls_key but no tls_cert"),
    ("S=127.0.0.1:1,tls_client_ca=/ca.crt", "has tls_client_ca but no tls_cert"),
    ("S=127.0.0.1:1,esrt,tls_cert=server.crt,tls_key=/a.key", "must be a full path"),
    ("S=127.0.0.1:1,esrt,colour=blue", "is not one of the listener settings tls_cert"),
])
def test_listener_tls_mistakes_say_what_to_do(text, says):
    with pytest.raises(SettingError) as caught:
        parse_assignments([f"listeners={text}"])
    assert says in str(caught.value)


def test_an_empty_list_value_empties_the_list():
    assert parse_assignments(["listeners=", "env="]) == {"listeners": [], "env": {}}


@pytest.mark.parametrize("pairs, field, says", [
    (["seps"], "seps", "must look like KEY=VALUE"),
    (["colour=blue"], "colour", "no such setting; known: name, description, seps"),
    (["name=OTHER"], "name", "cannot change"),
    (["seps=2", "seps=3"], "seps", "given twice"),
    (["seps=100"], "seps", "must be between 1 and 64"),
    (["seps=many"], "seps", "is not a whole number"),
    (["durability=fast"], "durability", "is not one of sync, write-nosync"),
    (["standby=maybe"], "standby", "is not true or false"),
    (["listeners=Web=127.0.0.1:99999"], "listeners", "port must be 0..65535"),
    (["env=1BAD=x"], "env", "must look like NAME=value"),
    (["store=db1"], "store", "is not a PostgreSQL connection string"),
    (["store=host=db1 password=secret"], "store", "keep the password out"),
    (["store=postgresql://esrt:secret@db1/esrt"], "store", "~/.pgpass"),
])
def test_bad_set_pairs_say_what_is_wrong(pairs, field, says):
    with pytest.raises(SettingError) as caught:
        parse_assignments(pairs)
    assert says in message(caught, field)


@pytest.mark.parametrize("text", [
    "host=db1 dbname=esrt user=esrt",
    "host=/run/postgresql port=5433 dbname=esrt application_name='two words'",
    "postgresql://db1:5432/esrt?sslmode=require",
    "postgresql://esrt@db1,db2/esrt?target_session_attrs=read-write",
])
def test_a_store_is_a_connection_string(text):
    assert parse_assignments([f"store={text}"])["store"] == text


def test_no_store_is_the_embedded_berkeley_db():
    assert parse_assignments(["store="])["store"] is None


def test_every_setting_survives_its_own_text():
    """What is shown (form, `server set` output) reads back as the same value."""
    for setting in SERVER_SETTINGS:
        for value in (setting.default, setting.example):
            if value is None:
                continue
            clean = setting.validate(value)
            assert setting.from_texts(setting.to_texts(clean) or [""]) == clean, setting.name


def test_form_round_trip_and_blank_numbers():
    example = {s.name: s.validate(s.example) for s in SERVER_SETTINGS}
    assert definition_from_form(form_values(example), creating=True) == example
    form = form_values({"name": "ESSRV01"})
    form["seps"] = form["max_body"] = ""
    definition = definition_from_form(form, creating=True)
    assert "seps" not in definition and "max_body" not in definition
    assert definition["listeners"] == [] and definition["root"] is None


def test_form_errors_name_their_fields():
    form = form_values({"name": "ESSRV01"})
    form.update(seps="0", listeners="no equals sign", env="DD=x\n2=y")
    with pytest.raises(SettingError) as caught:
        definition_from_form(form, creating=True)
    assert set(caught.value.fields) == {"seps", "listeners", "env"}


def test_setting_lookup_takes_dashes():
    assert server_setting("request-timeout").name == "request_timeout"


@pytest.mark.parametrize("text, metrics", [
    ("W=127.0.0.1:9003", "open"),
    ("W=10.0.0.5:9003,auth=none", "off"),
    ("W=10.0.0.5:9003,tls_cert=/a.crt,tls_key=/a.key,auth=token", "auth"),
    ("W=10.0.0.5:9003,auth=none,metrics=open", "open"),
])
def test_what_a_listener_exposes_by_default_depends_on_its_address(text, metrics):
    from esrt.settings import listener_exposure, parse_listener_option
    listener = parse_listener_option(text)
    assert listener_exposure(listener, "metrics") == metrics
    # Each is its own setting: openapi keeps the address's default when metrics is set.
    assert listener_exposure(listener, "openapi") == (
        "off" if "metrics=open" in text else metrics)
