"""A real mfds process on a free port in a temporary ESRT_HOME, driven through its JSON API."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esrt.home import Home
from esrt.node.mfds_client import MfdsClient, MfdsError, MfdsUnavailable
from esrt.mfds.daemon import MfdsStartError, pid_alive, process_state, running_info, \
    start_daemon, stop_daemon

from conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
WEB = {"name": "Web Services", "address": "127.0.0.1:9003", "conversation": "web-services"}


def _env():
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return environ


def _port_free(port):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def home(tmp_path):
    home = Home(tmp_path / "home")
    yield home
    # Whatever a test did, no mfds of this home survives it.
    stop_daemon(home, timeout=10.0)


@pytest.fixture
def mfds(home):
    info = start_daemon(home, "127.0.0.1:0")
    yield info
    stop_daemon(home, timeout=10.0)


@pytest.fixture
def client(mfds, home):
    return MfdsClient.from_home(home)


@pytest.fixture
def sleeper():
    """A real process standing in for a region; killed and reaped at the end."""
    processes = []

    def spawn():
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def _raw(info, method, path, body=None, headers=None):
    """Send one request without the client, return (status, decoded JSON or None)."""
    host, port = info["url"][len("http://"):].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        data = reply.read()
    finally:
        connection.close()
    return reply.status, (json.loads(data) if data else None)


# -- process ---------------------------------------------------------------------------------

def test_start_writes_info_and_answers_health(mfds, home, client):
    assert mfds["pid"] != os.getpid() and pid_alive(mfds["pid"])
    assert home.read_mfds_info() == mfds
    assert int(home.mfds_pid.read_text()) == mfds["pid"]
    assert mfds["home"] == str(home.root) and mfds["url"].startswith("http://127.0.0.1:")
    assert running_info(home)["pid"] == mfds["pid"]
    health = client.health()
    assert health["status"] == "ok" and health["pid"] == mfds["pid"]
    assert health["home"] == str(home.root) and health["version"]
    # Detached: its own session, so the starting shell's signals do not reach it.
    assert os.getsid(mfds["pid"]) == mfds["pid"]


def test_second_start_is_refused_clearly(mfds, home):
    with pytest.raises(MfdsStartError) as caught:
        start_daemon(home, "127.0.0.1:0")
    message = str(caught.value)
    assert "already running" in message and mfds["url"] in message
    assert "esrt mfds --stop" in message
    # Started by hand, in the foreground, it refuses too, and leaves the running one alone.
    result = subprocess.run([sys.executable, "-m", "esrt.mfds", "--listen", "127.0.0.1:0",
                             "--home", str(home.root)], env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "already running" in result.stderr and str(mfds["pid"]) in result.stderr
    assert home.read_mfds_info() == mfds and pid_alive(mfds["pid"])


def test_stop_removes_everything_and_frees_the_port(home):
    info = start_daemon(home, "127.0.0.1:0")
    port = int(info["url"].rsplit(":", 1)[1])
    assert stop_daemon(home) is True
    assert not pid_alive(info["pid"])
    assert not home.mfds_info.exists() and not home.mfds_pid.exists()
    assert _port_free(port)
    assert running_info(home) is None
    assert stop_daemon(home) is False
    with pytest.raises(MfdsUnavailable, match="esrt mfds --daemon"):
        MfdsClient.from_home(home)
    with pytest.raises(MfdsUnavailable, match=f"ESRT_HOME={home.root}"):
        MfdsClient(info["url"], home=home.root).health()
    # The repository outlives the process.
    assert home.repository.exists()


def test_repository_survives_restart(home):
    start_daemon(home, "127.0.0.1:0")
    MfdsClient.from_home(home).create_server({"name": "ESSRV01", "seps": 3})
    stop_daemon(home)
    start_daemon(home, "127.0.0.1:0")
    assert MfdsClient.from_home(home).get_server("ESSRV01")["definition"]["seps"] == 3


def test_bind_failure_is_explained(home):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(MfdsStartError) as caught:
            start_daemon(home, f"127.0.0.1:{port}")
    assert (f"cannot listen on 127.0.0.1:{port}: address already in use; choose another "
            "with --listen") in str(caught.value)
    assert not home.mfds_pid.exists() and not home.mfds_info.exists()
    assert running_info(home) is None


def test_stale_pid_file_is_taken_over(home, sleeper):
    dead = sleeper()
    dead.kill()
    dead.wait()
    home.ensure()
    home.mfds_pid.write_text(f"{dead.pid}\n")
    assert running_info(home) is None
    info = start_daemon(home, "127.0.0.1:0")
    assert int(home.mfds_pid.read_text()) == info["pid"]


# -- servers -----------------------------------------------------------------------------

def test_create_list_get_update_delete(client, home):
    created = client.create_server({"name": "ESSRV01", "listeners": [WEB]})
    assert created["name"] == "ESSRV01"
    assert created["definition"]["seps"] == 2
    assert created["mfServerStatus"] == "Stopped" and created["status"] is None
    assert created["paths"]["deploy"] == str(home.server_root("ESSRV01") / "deploy")
    assert created["paths"]["casroot"] == str(home.server_root("ESSRV01") / "logs")
    client.create_server({"name": "ESSRV02"})
    assert [s["name"] for s in client.list_servers()] == ["ESSRV01", "ESSRV02"]
    assert client.get_server("ESSRV01")["definition"]["listeners"][0]["name"] == "Web Services"
    updated = client.update_server("ESSRV01", {"seps": 4, "description": "sample"})
    assert updated["definition"]["seps"] == 4
    assert updated["definition"]["listeners"][0]["address"] == "127.0.0.1:9003"
    assert client.get_server("ESSRV01")["definition"]["description"] == "sample"
    client.delete_server("ESSRV02")
    assert [s["name"] for s in client.list_servers()] == ["ESSRV01"]


def test_invalid_definition_gets_400_with_fields(client):
    with pytest.raises(MfdsError) as caught:
        client.create_server({"name": "ESSRV01", "seps": 0,
                              "listeners": [{"name": "W", "address": "nowhere"}]})
    error = caught.value
    assert error.status == 400 and error.code == "invalid"
    assert set(error.fields) == {"seps", "listeners"}
    assert "between 1 and 64" in error.fields["seps"]
    client.create_server({"name": "ESSRV01"})
    with pytest.raises(MfdsError) as caught:
        client.update_server("ESSRV01", {"seps": "lots", "colour": "red"})
    assert caught.value.status == 400 and {"seps", "server"} <= set(caught.value.fields)
    assert client.get_server("ESSRV01")["definition"]["seps"] == 2


def test_duplicate_gets_409(client):
    client.create_server({"name": "ESSRV01"})
    with pytest.raises(MfdsError) as caught:
        client.create_server({"name": "ESSRV01"})
    assert caught.value.status == 409 and caught.value.code == "exists"
    assert "server ESSRV01 already exists" in str(caught.value)


def test_unknown_server_gets_404(client):
    for call in (lambda: client.get_server("NOPE"), lambda: client.delete_server("NOPE"),
                 lambda: client.update_server("NOPE", {"seps": 3}),
                 lambda: client.report_status("NOPE", {"mfServerStatus": "Started"}),
                 lambda: client.list_packages("NOPE"), lambda: client.list_services("NOPE")):
        with pytest.raises(MfdsError) as caught:
            call()
        assert caught.value.status == 404 and "no server NOPE" in str(caught.value)


def test_unknown_path_wrong_method_and_bad_json(mfds, client):
    client.create_server({"name": "ESSRV01"})
    status, body = _raw(mfds, "GET", "/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = _raw(mfds, "GET", "/api/servers/ESSRV01/nothing")
    assert status == 404 and "no such path" in body["error"]["message"]
    status, body = _raw(mfds, "PATCH", "/api/servers/ESSRV01")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    assert "GET or PUT or DELETE" in body["error"]["message"]
    status, body = _raw(mfds, "DELETE", "/api/health")
    assert status == 405
    status, body = _raw(mfds, "POST", "/api/servers", b"{not json",
                        {"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "bad_json"
    assert "not valid JSON" in body["error"]["message"]
    status, body = _raw(mfds, "PUT", "/api/servers/ESSRV01", b"[1, 2]")
    assert status == 400 and "must be a JSON object" in body["error"]["message"]
    status, body = _raw(mfds, "PUT", "/api/servers/ESSRV01/status", b"\xff\xfe")
    assert status == 400 and body["error"]["code"] == "bad_json"


# -- status ------------------------------------------------------------------------------

def _status(pid, state="Started"):
    return {"mfServerStatus": state, "pid": pid, "started": "2024-01-01T00:00:00+00:00",
            "message": "", "listeners": [{"CN": "Web Services", "mfListenerStatus": "Started",
                                          "mfRequestedEndpoint": "tcp:127.0.0.1:9003",
                                          "address": "127.0.0.1:9003",
                                          "conversation": "web-services"}],
            "seps": [{"id": 1, "pid": pid, "state": "Idle", "restarts": 0}], "stats": {},
            "services": []}


def test_reported_status_is_kept_and_shown(client, sleeper):
    client.create_server({"name": "ESSRV01"})
    region = sleeper()
    document = _status(region.pid)
    client.report_status("ESSRV01", document)
    server = client.get_server("ESSRV01")
    assert server["status"] == document and server["received"]
    assert server["mfServerStatus"] == "Started"
    assert client.list_servers()[0]["mfServerStatus"] == "Started"
    client.report_status("ESSRV01", _status(region.pid, "Stopped"))
    assert client.get_server("ESSRV01")["mfServerStatus"] == "Stopped"


def test_killed_region_is_not_shown_started(client, sleeper):
    client.create_server({"name": "ESSRV01"})
    region = sleeper()
    client.report_status("ESSRV01", _status(region.pid))
    assert client.get_server("ESSRV01")["mfServerStatus"] == "Started"
    with pytest.raises(MfdsError) as caught:
        client.delete_server("ESSRV01")
    assert caught.value.status == 409 and "esrt casstop -r ESSRV01" in str(caught.value)
    region.send_signal(signal.SIGKILL)
    # Not reaped on purpose: a zombie must count as dead too.
    wait_for(lambda: process_state(region.pid) == "Z", "the killed process to become a zombie")
    server = client.get_server("ESSRV01")
    assert server["mfServerStatus"] == "Failed"
    assert server["status"]["mfServerStatus"] == "Started"
    client.report_status("ESSRV01", _status(region.pid, "Stopping"))
    assert client.get_server("ESSRV01")["mfServerStatus"] == "Stopped"
    client.delete_server("ESSRV01")
    assert client.list_servers() == []


def test_killing_mfds_leaves_other_processes_running(home, sleeper):
    region = sleeper()
    info = start_daemon(home, "127.0.0.1:0")
    client = MfdsClient.from_home(home)
    client.create_server({"name": "ESSRV01"})
    client.report_status("ESSRV01", _status(region.pid))
    os.kill(info["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(info["pid"]), "mfds to die")
    assert region.poll() is None
    with pytest.raises(MfdsUnavailable):
        client.health()
    # The next start takes over the dead one's files and still knows the region runs.
    start_daemon(home, "127.0.0.1:0")
    assert MfdsClient.from_home(home).get_server("ESSRV01")["mfServerStatus"] == "Started"


# -- packages ----------------------------------------------------------------------------

COBOL_PROGRAM = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CBLAPP01.
       DATA DIVISION.
       LINKAGE SECTION.
       01 LK-PGMNAME PIC X(10).
       PROCEDURE DIVISION USING LK-PGMNAME.
           MOVE "CBLAPP01" TO LK-PGMNAME.
           GOBACK.
"""

PARAMETERS = [{"name": "LK-PGMNAME", "level": 1, "pic": "X(10)", "usage": "display",
               "offset": 0, "length": 10, "type": "string", "direction": "out"}]


@pytest.fixture
def car_bytes(tmp_path):
    car = pytest.importorskip("esrt.mapping.car", reason="esrt.mapping.car is not written yet")
    source = tmp_path / "cblapp01.cbl"
    source.write_text(COBOL_PROGRAM)
    module = tmp_path / "CBLAPP01.so"
    subprocess.run(["cobc", "-m", "-o", str(module), str(source)], check=True, timeout=120)
    mapping = {"format": "esrt-mapping/1", "service": "srv01",
               "programs": [{"program": "CBLAPP01", "entry": "CBLAPP01", "source": str(source),
                             "parameters": PARAMETERS}]}
    mapping_path = tmp_path / "srv01.mapping.json"
    mapping_path.write_text(json.dumps(mapping))
    out = tmp_path / "srv01.car"
    car.build_car(mapping, mapping_path, {"CBLAPP01": module}, out)
    return out.read_bytes()


def test_deploy_installs_records_and_lists_services(client, car_bytes):
    server = client.create_server({"name": "ESSRV01"})
    result = client.deploy("ESSRV01", car_bytes, "srv01.car")
    assert result["message"] == "installed srv01 (1 program: CBLAPP01) into ESSRV01"
    assert result["manifest"]["service"] == "srv01"
    installed = Path(server["paths"]["deploy"]) / "srv01"
    assert (installed / "CBLAPP01.so").exists() and (installed / "manifest.json").exists()
    packages = client.list_packages("ESSRV01")
    assert [(p["package"], p["size"]) for p in packages] == [("srv01", len(car_bytes))]
    services = client.list_services("ESSRV01")
    assert services == [{"name": "srv01.CBLAPP01", "package": "srv01", "program": "CBLAPP01",
                         "parameters": PARAMETERS}]


def test_deploy_tells_a_running_region_to_rescan(client, car_bytes):
    client.create_server({"name": "ESSRV01"})
    region = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""\
            import signal, sys
            signal.signal(signal.SIGHUP, lambda *a: print("rescan", flush=True))
            print("ready", flush=True)
            signal.pause()
            signal.pause()
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert region.stdout.readline().strip() == "ready"
        client.report_status("ESSRV01", _status(region.pid))
        result = client.deploy("ESSRV01", car_bytes, "srv01.car")
        assert "told to rescan" in result["message"]
        assert region.stdout.readline().strip() == "rescan"
    finally:
        region.kill()
        region.wait()
        region.stdout.close()


def test_bad_package_gets_400(client, car_bytes):
    client.create_server({"name": "ESSRV01"})
    with pytest.raises(MfdsError) as caught:
        client.deploy("ESSRV01", b"this is not a zip archive", "junk.car")
    assert caught.value.status == 400 and caught.value.code == "bad_package"
    assert "junk.car" in str(caught.value) and "not a zip" in str(caught.value)
    with pytest.raises(MfdsError) as caught:
        client.deploy("NOPE", car_bytes, "srv01.car")
    assert caught.value.status == 404
    assert client.list_packages("ESSRV01") == []


def test_oversized_upload_gets_413(mfds, client):
    client.create_server({"name": "ESSRV01"})
    status, body = _raw(mfds, "POST", "/api/servers/ESSRV01/packages?filename=big.car",
                        b"\0" * (66 * 1024 * 1024))
    assert status == 413 and body["error"]["code"] == "too_large"
    assert client.list_packages("ESSRV01") == []
