"""mfds security with a real mfds process: accounts, sessions, Basic, node token, CSRF, roles,
audit, the loopback rule and the OpenAPI document."""

import base64
import http.client
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from esrt.home import Home
from esrt.node.mfds_client import MfdsClient, MfdsError
from esrt.mfds.daemon import start_daemon, stop_daemon

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-secret-1", "oscar": "oscar-secret-1", "rita": "rita-secret-1"}


def _env(home):
    environ = dict(os.environ, ESRT_HOME=str(home.root))
    environ.pop("ESRT_MFDS_USER", None)
    environ.pop("ESRT_MFDS_PASSWORD", None)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return environ


def user_cli(home, *args):
    """`esrt mfds user ...` as a user runs it (through a bare parser until main.py hooks it)."""
    if "add_user_commands" in (ROOT / "esrt" / "cli" / "main.py").read_text():
        argv = [sys.executable, "-m", "esrt", "mfds", "user", *args]
    else:
        argv = [sys.executable, "-c", "import argparse, sys\n"
                "from esrt.cli.user_cmd import add_user_commands\n"
                "p = argparse.ArgumentParser(prog='esrt mfds')\n"
                "add_user_commands(p)\n"
                "a = p.parse_args(sys.argv[1:])\n"
                "try:\n    sys.exit(int(a.func(a)))\n"
                "except ValueError as exc:\n    print(f'error: {exc}', file=sys.stderr)\n"
                "    sys.exit(1)\n", "user", *args]
    return subprocess.run(argv, env=_env(home), capture_output=True, text=True, timeout=120)


def call(info, method, path, body=None, headers=None):
    """One raw request: (status, headers dict (lower-case), body bytes)."""
    host, port = info["url"][len("http://"):].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        data = reply.read()
    finally:
        connection.close()
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, data


def basic(name, password=None):
    pair = f"{name}:{password if password is not None else PASSWORDS[name]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def error_of(data):
    return json.loads(data)["error"]


def login(info, name, password=None):
    """Log in through the form; return (cookie header, CSRF token of the new session)."""
    status, headers, page = call(info, "GET", "/login")
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    form = urlencode({"name": name, "password": password or PASSWORDS[name], "csrf": csrf,
                      "next": "/"})
    status, headers, _ = call(info, "POST", "/login", form, {
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303, status
    cookie = headers["set-cookie"].split(";")[0]
    status, _, page = call(info, "GET", "/", headers={"Cookie": cookie})
    assert status == 200 and name.encode() in page
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    return cookie, csrf


@pytest.fixture
def home(tmp_path):
    home = Home(tmp_path / "home")
    home.ensure()
    yield home
    stop_daemon(home, timeout=10.0)


@pytest.fixture
def secured(home):
    """mfds with three accounts (admin alice, operator oscar, readonly rita) and ESSRV01."""
    for name, role in (("alice", "admin"), ("oscar", "operator"), ("rita", "readonly")):
        result = user_cli(home, "add", name, "--password", PASSWORDS[name], "--role", role)
        assert result.returncode == 0, result.stderr
        assert f"user {name} added with role {role}" in result.stdout
    info = start_daemon(home, "127.0.0.1:0")
    status, _, data = call(info, "POST", "/api/servers", json.dumps({"name": "ESSRV01"}),
                           {**basic("alice"), "Content-Type": "application/json"})
    assert status == 201, data
    return info


def test_open_until_an_account_exists_but_cross_site_posts_are_refused(home):
    info = start_daemon(home, "127.0.0.1:0")
    status, _, _ = call(info, "GET", "/api/servers")
    assert status == 200
    status, _, data = call(info, "POST", "/api/servers", json.dumps({"name": "EVIL"}),
                           {"Content-Type": "text/plain", "Origin": "http://attacker.example",
                            "Host": info["url"][len("http://"):]})
    assert status == 403 and error_of(data)["code"] == "csrf"
    status, _, data = call(info, "POST", "/api/servers", json.dumps({"name": "ESSRV01"}),
                           {"Content-Type": "application/json"})
    assert status == 201
    status, headers, page = call(info, "GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and b"ESSRV01" in page and b"no accounts" in page
    assert b'http-equiv="refresh"' not in page
    # The chosen auto-refresh interval sticks to the browser's session.
    cookie = {"Cookie": headers["set-cookie"].split(";")[0]}
    status, _, page = call(info, "GET", "/?refresh=10", headers=cookie)
    assert b'<meta http-equiv="refresh" content="10">' in page
    status, _, page = call(info, "GET", "/servers/ESSRV01?tab=monitor", headers=cookie)
    assert b'<meta http-equiv="refresh" content="10">' in page
    assert b"not running" in page


def test_non_loopback_listen_needs_an_admin(home):
    command = [sys.executable, "-m", "esrt.mfds", "--listen", "0.0.0.0:0", "--home",
               str(home.root)]
    result = subprocess.run(command, env=_env(home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0:0" in result.stderr
    assert "esrt mfds user add NAME --password PASSWORD --role admin" in result.stderr
    # A readonly account is not enough.
    assert user_cli(home, "add", "rita", "--password", PASSWORDS["rita"],
                    "--role", "readonly").returncode == 0
    result = subprocess.run(command, env=_env(home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no admin account" in result.stderr
    assert user_cli(home, "add", "alice", "--password", PASSWORDS["alice"],
                    "--role", "admin").returncode == 0
    info = start_daemon(home, "0.0.0.0:0")
    assert info["listen"].startswith("*:") or info["listen"].startswith("0.0.0.0")
    status, _, _ = call(info, "GET", "/api/servers", headers=basic("alice"))
    assert status == 200


def test_user_cli_rejects_bad_input_and_lists_without_secrets(home):
    result = user_cli(home, "add", "bob", "--password", "short", "--role", "admin")
    assert result.returncode != 0 and "too short" in result.stderr
    result = user_cli(home, "add", "bob", "--password", "long-enough", "--role", "king")
    assert result.returncode != 0 and "king" in result.stderr
    assert user_cli(home, "add", "bob", "--password", "long-enough", "--role",
                    "operator").returncode == 0
    result = user_cli(home, "add", "bob", "--password", "long-enough", "--role", "admin")
    assert result.returncode != 0 and "already exists" in result.stderr
    listed = user_cli(home, "list")
    assert "bob" in listed.stdout and "operator" in listed.stdout
    assert "long-enough" not in (home.root / "repository.db").read_bytes().decode("latin-1")
    assert user_cli(home, "delete", "bob").returncode == 0
    result = user_cli(home, "delete", "bob")
    assert result.returncode != 0 and "no user bob" in result.stderr


def test_every_call_needs_credentials_once_accounts_exist(secured):
    status, _, data = call(secured, "GET", "/api/health")
    assert status == 200  # liveness probes stay anonymous
    for method, path in (("GET", "/api/servers"), ("GET", "/api/servers/ESSRV01"),
                         ("GET", "/api/openapi.json"), ("POST", "/api/servers/ESSRV01/start"),
                         ("PUT", "/api/servers/ESSRV01/status")):
        status, headers, data = call(secured, method, path, b"{}")
        assert status == 401, (method, path)
        assert error_of(data)["code"] == "unauthorized"
        assert "ESRT_MFDS_USER" in error_of(data)["message"]
        assert headers["www-authenticate"].startswith("Basic")
    status, _, data = call(secured, "GET", "/api/servers", headers=basic("alice", "wrong!"))
    assert status == 401 and "wrong user name or password" in error_of(data)["message"]
    status, _, data = call(secured, "GET", "/api/servers", headers={"X-Esrt-Node-Token": "x"})
    assert status == 401 and "mfds.token" in error_of(data)["message"]
    # Pages send the browser to the login form instead.
    status, headers, _ = call(secured, "GET", "/servers/ESSRV01?tab=console",
                              headers={"Accept": "text/html"})
    assert status == 303
    assert headers["location"].startswith("/login?next=%2Fservers%2FESSRV01")


def test_roles(secured, home):
    json_type = {"Content-Type": "application/json"}
    for name in ("alice", "oscar", "rita"):
        status, _, data = call(secured, "GET", "/api/servers", headers=basic(name))
        assert status == 200 and json.loads(data)["servers"][0]["name"] == "ESSRV01"
    # readonly: nothing that changes anything.
    for method, path, body in (("POST", "/api/servers", {"name": "X1"}),
                               ("PUT", "/api/servers/ESSRV01", {"seps": 3}),
                               ("DELETE", "/api/servers/ESSRV01", None),
                               ("POST", "/api/servers/ESSRV01/start", None),
                               ("POST", "/api/servers/ESSRV01/stop?force=true", None),
                               ("POST", "/api/servers/ESSRV01/packages?filename=a.car", "x"),
                               ("PUT", "/api/servers/ESSRV01/status", {"mfServerStatus": "x"})):
        payload = json.dumps(body) if body is not None else None
        status, _, data = call(secured, method, path, payload, {**basic("rita"), **json_type})
        assert status == 403, (method, path)
        assert error_of(data)["code"] == "forbidden" and "rita" in error_of(data)["message"]
    # operator: deploys (the bad archive is refused by the check, not by the role) ...
    status, _, data = call(secured, "POST", "/api/servers/ESSRV01/packages?filename=junk.car",
                           b"not a zip", basic("oscar"))
    assert status == 400 and "not a zip" in error_of(data)["message"]
    # ... but does not define servers or see accounts.
    status, _, data = call(secured, "POST", "/api/servers", json.dumps({"name": "X2"}),
                           {**basic("oscar"), **json_type})
    assert status == 403 and "admin" in error_of(data)["message"]
    status, _, _ = call(secured, "GET", "/api/users", headers=basic("oscar"))
    assert status == 403
    # The pages obey the same rules: rita sees no buttons, and a forged click is refused.
    cookie, csrf = login(secured, "rita")
    status, _, page = call(secured, "GET", "/", headers={"Cookie": cookie})
    assert b"start-ESSRV01" not in page and b"new-server" not in page
    status, _, page = call(secured, "POST", "/servers/ESSRV01/start", urlencode({"csrf": csrf}),
                           {"Cookie": cookie,
                            "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"may not start servers" in page
    cookie, _ = login(secured, "oscar")
    status, _, page = call(secured, "GET", "/", headers={"Cookie": cookie})
    assert b"start-ESSRV01" in page and b"new-server" not in page
    # admin: everything.
    status, _, data = call(secured, "PUT", "/api/servers/ESSRV01", json.dumps({"seps": 3}),
                           {**basic("alice"), **json_type})
    assert status == 200 and json.loads(data)["definition"]["seps"] == 3
    status, _, data = call(secured, "GET", "/api/users", headers=basic("alice"))
    users = json.loads(data)["users"]
    assert {u["name"]: u["role"] for u in users} == {
        "alice": "admin", "oscar": "operator", "rita": "readonly"}
    assert "hash" not in data.decode() and "argon2" not in data.decode()

    records = [json.loads(line) for line in
               (home.root / "audit.log").read_text().splitlines()]
    assert {"user": "rita", "action": "start servers", "target": "ESSRV01",
            "outcome": "denied"}.items() <= next(
        r for r in records if r["user"] == "rita" and r["action"] == "start servers").items()
    assert any(r["user"] == "oscar" and r["action"] == "deploy" and r["outcome"] == "failed"
               for r in records)
    assert any(r["user"] == "alice" and r["action"] == "edit server" and r["outcome"] == "ok"
               for r in records)
    console = (home.root / "servers" / "ESSRV01" / "logs" / "console.log").read_text()
    assert re.search(r"\[\d+ ESSRV01\] ESAD0001I admin action edit server ok by user alice",
                     console)
    assert "ESAD0002W admin action deploy failed by user oscar" in console


def test_node_token_and_client_credentials(secured, home, monkeypatch):
    token_file = home.root / "mfds.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    status, _, _ = call(secured, "PUT", "/api/servers/ESSRV01/status",
                        json.dumps({"mfServerStatus": "Stopped"}),
                        {"X-Esrt-Node-Token": token, "Content-Type": "application/json"})
    assert status == 204
    monkeypatch.delenv("ESRT_MFDS_USER", raising=False)
    monkeypatch.delenv("ESRT_MFDS_PASSWORD", raising=False)
    # The node's owner's CLI uses the token; a client without it is refused with advice.
    assert MfdsClient.from_home(home).get_server("ESSRV01")["name"] == "ESSRV01"
    with pytest.raises(MfdsError) as caught:
        MfdsClient(secured["url"]).list_servers()
    assert caught.value.status == 401 and "ESRT_MFDS_USER" in str(caught.value)
    monkeypatch.setenv("ESRT_MFDS_USER", "rita")
    monkeypatch.setenv("ESRT_MFDS_PASSWORD", PASSWORDS["rita"])
    client = MfdsClient.from_home(home)  # explicit credentials win over the token
    assert client.list_servers()[0]["name"] == "ESSRV01"
    with pytest.raises(MfdsError) as caught:
        client.delete_server("ESSRV01")
    assert caught.value.status == 403


def test_sessions_and_csrf(secured, home):
    cookie, csrf = login(secured, "alice")
    json_type = {"Content-Type": "application/json", "Cookie": cookie}
    status, _, _ = call(secured, "GET", "/api/servers", headers={"Cookie": cookie})
    assert status == 200
    status, _, data = call(secured, "POST", "/api/servers", json.dumps({"name": "ESSRV02"}),
                           json_type)
    assert status == 403 and error_of(data)["code"] == "csrf"
    status, _, data = call(secured, "POST", "/api/servers", json.dumps({"name": "ESSRV02"}),
                           {**json_type, "X-CSRF-Token": csrf})
    assert status == 201
    # A page form without the token is refused too, and changes nothing.
    form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    status, _, page = call(secured, "POST", "/servers/ESSRV02/delete", "", form)
    assert status == 403 and b"CSRF" in page
    status, _, _ = call(secured, "POST", "/servers/ESSRV02/delete", urlencode({"csrf": csrf}),
                        form)
    assert status == 303
    status, _, _ = call(secured, "GET", "/api/servers/ESSRV02", headers={"Cookie": cookie})
    assert status == 404
    # Logout ends the session.
    status, _, _ = call(secured, "POST", "/logout", urlencode({"csrf": csrf}), form)
    assert status == 303
    status, _, _ = call(secured, "GET", "/api/servers", headers={"Cookie": cookie})
    assert status == 401


def test_login_failures_and_deleted_accounts(secured, home):
    status, headers, page = call(secured, "GET", "/login")
    cookie = headers["set-cookie"].split(";")[0]
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    status, _, page = call(secured, "POST", "/login", urlencode(
        {"name": "alice", "password": "nope", "csrf": csrf}), form)
    assert status == 401 and b"wrong user name or password" in page
    status, _, page = call(secured, "POST", "/login", urlencode(
        {"name": "alice", "password": PASSWORDS["alice"], "csrf": "forged"}), form)
    assert status == 403
    cookie, _ = login(secured, "rita")
    assert user_cli(home, "delete", "rita").returncode == 0
    status, _, _ = call(secured, "GET", "/api/servers", headers={"Cookie": cookie})
    assert status == 401
    records = [json.loads(line) for line in
               (home.root / "audit.log").read_text().splitlines()]
    assert any(r["action"] == "login" and r["outcome"] == "failed" and r["user"] == "alice"
               for r in records)
    assert any(r["action"] == "login" and r["outcome"] == "ok" and r["user"] == "rita"
               for r in records)


def test_openapi_document_describes_every_route(secured):
    status, _, data = call(secured, "GET", "/api/openapi.json", headers=basic("rita"))
    assert status == 200
    document = json.loads(data)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in ("/api/health", "/api/servers", "/api/servers/{name}",
                 "/api/servers/{name}/status", "/api/servers/{name}/packages",
                 "/api/servers/{name}/services", "/api/servers/{name}/console",
                 "/api/servers/{name}/start", "/api/servers/{name}/stop", "/api/users"):
        assert path in paths, path
        for method in paths[path]:
            if method == "parameters":
                continue
            concrete = path.replace("{name}", "ESSRV01")
            # Every documented operation exists: never a 404 "no such path" or 405.
            status, _, data = call(secured, method.upper(), concrete, b"{}",
                                   {**basic("rita"), "Content-Type": "application/json"})
            assert status not in (404, 405), (method, path, data)
    text = json.dumps(document)
    for name in ("mfServerStatus", "mfListenerStatus", "CN", "mfRequestedEndpoint"):
        assert name in text
    assert set(document["components"]["securitySchemes"]) == {
        "basicAuth", "sessionCookie", "nodeToken"}
