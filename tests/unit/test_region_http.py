"""The region as a user runs it: a real `python -m esrt.region` process with stand-in SEPs,
called over real HTTP sockets."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_supervisor import STANDIN_SEP_SOURCE

REPO = Path(__file__).resolve().parents[2]
MAX_BODY = 4096


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_for(predicate, what, limit=60.0):
    # A guard against hanging forever, not a performance threshold.
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def write_package(deploy, package, programs):
    folder = deploy / package
    folder.mkdir(parents=True)
    mapping = {"format": "esrt-mapping/1", "service": package, "programs": [
        {"program": name, "entry": name, "source": f"{name.lower()}.cbl", "parameters": [
            {"name": "LK-NAME", "level": 1, "usage": "display", "pic": "X(20)", "offset": 0,
             "length": 20, "type": "string", "direction": "in"},
            {"name": "LK-COUNTER", "level": 1, "usage": "display", "pic": "9(10)", "offset": 20,
             "length": 10, "type": "integer", "direction": "out"}]} for name in programs]}
    (folder / f"{package}.mapping.json").write_text(json.dumps(mapping))
    (folder / "manifest.json").write_text(json.dumps({
        "format": "esrt-car/1", "service": package, "mapping": f"{package}.mapping.json",
        "programs": [{"program": name, "entry": name, "module": f"{name}.so"}
                     for name in programs]}))


class RegionProcess:
    """A region subprocess and the files it writes."""

    def __init__(self, root, address="127.0.0.1:*", conversation="web-services", timeout=2):
        self.root = Path(root)
        self.home = self.root / "home"
        self.server_root = self.home / "servers" / "ESSRV01"
        self.run_dir = self.server_root / "run"
        self.console = self.server_root / "logs" / "console.log"
        self.script = self.root / "standin.py"
        self.script.write_text(STANDIN_SEP_SOURCE)
        self.definition = self.root / "definition.json"
        self.definition.write_text(json.dumps({
            "name": "ESSRV01", "seps": 2, "max_body": MAX_BODY, "request_timeout": timeout,
            "listeners": [{"name": "Web Services", "address": address,
                           "conversation": conversation}]}))
        self.process = None
        self.seen_pids = set()

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "esrt.region", "ESSRV01", "--home", str(self.home),
             "--definition", str(self.definition), "--sep-script", str(self.script)],
            cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return self

    def status(self):
        try:
            return json.loads((self.run_dir / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def sep_pids(self):
        try:
            record = json.loads((self.run_dir / "processes.json").read_text())
        except (OSError, ValueError):
            return set()
        pids = {int(pid) for pid in record.get("seps", {}).values()}
        self.seen_pids |= pids
        return pids

    def wait_started(self):
        def started():
            self.sep_pids()
            status = self.status() or {}
            if self.process.poll() is not None:
                raise AssertionError(f"region exited with {self.process.returncode}: "
                                     f"{self.process.stdout.read().decode()}")
            return status.get("mfServerStatus") == "Started" and status
        status = wait_for(started, "the region to report Started")
        self.port = int(status["listeners"][0]["address"].rsplit(":", 1)[1])
        return self

    def stop(self):
        """SIGTERM, then SIGKILL if needed; and no stand-in SEP may outlive the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.process.stdout.close()
        self.sep_pids()
        for pid in self.seen_pids:
            if alive(pid) and str(self.script) in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def call(self, path, body=b"{}", method="POST", conn=None):
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            return response, json.loads(data) if data else None
        finally:
            if own:
                conn.close()


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    root = tmp_path_factory.mktemp("region")
    proc = RegionProcess(root)
    write_package(proc.server_root / "deploy", "srv01", ["CBLAPP01"])
    try:
        proc.start().wait_started()
        yield proc
    finally:
        proc.stop()


def test_call_relays_body_status_and_return_code(region):
    response, body = region.call("/services/srv01/CBLAPP01", b'{"LK-NAME": "abc", "rc": 4}')
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("Esrt-Return-Code") == "4"
    assert body["echo"] == {"LK-NAME": "abc", "rc": 4} and body["service"] == "srv01.CBLAPP01"


def test_bad_body_error_from_the_sep_is_relayed(region):
    response, body = region.call("/services/srv01/CBLAPP01", b"this is not json")
    assert response.status == 400 and body["error"]["code"] == "bad_json"
    assert response.getheader("Esrt-Return-Code") is None


def test_unknown_service_is_404_naming_what_is_deployed(region):
    response, body = region.call("/services/srv01/NOPE")
    assert response.status == 404
    assert body == {"error": {"code": "unknown_service",
                              "message": "no service srv01.NOPE on ESSRV01; deployed: "
                                         "srv01.CBLAPP01"}}


def test_a_package_deployed_while_running_is_found_on_the_first_miss(region):
    write_package(region.server_root / "deploy", "srv02", ["CBLAPP02"])
    response, body = region.call("/services/srv02/CBLAPP02")
    assert response.status == 200 and body["service"] == "srv02.CBLAPP02"


def test_wrong_method_and_unknown_path(region):
    response, body = region.call("/services/srv01/CBLAPP01", None, method="GET")
    assert response.status == 405 and body["error"]["code"] == "method_not_allowed"
    assert response.getheader("Allow") == "POST"
    response, body = region.call("/nothing/here", None, method="GET")
    assert response.status == 404 and body["error"]["code"] == "not_found"


def test_oversized_body_is_refused_from_its_content_length(region):
    with socket.create_connection(("127.0.0.1", region.port), timeout=60) as sock:
        # Headers only: the answer must come without the body ever being sent.
        sock.sendall(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        reply = b""
        while b"}}" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    error = json.loads(body)["error"]
    assert error["code"] == "too_large" and str(MAX_BODY) in error["message"]


def test_keep_alive_serves_two_requests_on_one_connection(region):
    conn = region.connection()
    try:
        first, _ = region.call("/services/srv01/CBLAPP01", b'{"n": 1}', conn=conn)
        sock = conn.sock
        second, body = region.call("/services/srv01/CBLAPP01", b'{"n": 2}', conn=conn)
        assert first.status == second.status == 200 and body["echo"] == {"n": 2}
        assert conn.sock is sock and sock is not None
    finally:
        conn.close()


def test_abend_gives_500_and_the_region_keeps_serving(region):
    response, body = region.call("/services/srv01/CBLAPP01",
                                 b'{"action": "abend", "signal": "SIGSEGV"}')
    assert response.status == 500 and body["error"]["code"] == "abend"
    assert body["error"]["message"].startswith("srv01.CBLAPP01 abended on SEP 000")
    assert body["error"]["message"].endswith(
        ": runtime error: simulated abend in srv01.CBLAPP01 (killed by SIGSEGV)")
    for _ in range(4):
        response, _ = region.call("/services/srv01/CBLAPP01")
        assert response.status == 200
    assert "ESSI1700W" in region.console.read_text()
    wait_for(lambda: sum(s["restarts"] for s in region.status()["seps"]) >= 1,
             "the status to show the restart")


def test_timeout_gives_503_and_the_sep_is_replaced(region):
    response, body = region.call("/services/srv01/CBLAPP01", b'{"action": "sleep", "seconds": 30}')
    assert response.status == 503 and body["error"]["code"] == "timeout"
    response, _ = region.call("/services/srv01/CBLAPP01")
    assert response.status == 200


def test_display_output_lands_in_the_console_log(region):
    response, _ = region.call("/services/srv01/CBLAPP01",
                              b'{"action": "display", "text": "HELLO FROM COBOL"}')
    assert response.status == 200
    wait_for(lambda: "HELLO FROM COBOL" in region.console.read_text(), "the DISPLAY line")
    line = next(each for each in region.console.read_text().splitlines()
                if "HELLO FROM COBOL" in each)
    assert "ESSI1800I SEP 000" in line and "[" in line and "ESSRV01]" in line


def test_openapi_and_health(region):
    response, doc = region.call("/openapi.json", None, method="GET")
    assert response.status == 200 and doc["openapi"].startswith("3.")
    operation = doc["paths"]["/services/srv01/CBLAPP01"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    reply_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert request_schema["properties"] == {"LK-NAME": {"type": "string", "maxLength": 20,
                                                        "description": "PIC X(20)"}}
    assert list(reply_schema["properties"]) == ["LK-COUNTER"]
    response, health = region.call("/health", None, method="GET")
    assert response.status == 200 and health["status"] == "ok"
    status = region.status()
    assert status["listeners"][0]["CN"] == "Web Services"
    assert status["listeners"][0]["mfListenerStatus"] == "Started"
    assert status["listeners"][0]["mfRequestedEndpoint"] == "tcp:127.0.0.1:*"
    assert "srv01.CBLAPP01" in status["services"]


def test_sigterm_stops_everything_and_exits_0(tmp_path):
    proc = RegionProcess(tmp_path)
    try:
        proc.start().wait_started()
        seps = proc.sep_pids()
        assert len(seps) == 2 and all(alive(pid) for pid in seps)
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(60) == 0
        assert not any(alive(pid) for pid in seps)
        assert not (proc.run_dir / "region.pid").exists()
        assert proc.status()["mfServerStatus"] == "Stopped"
        text = proc.console.read_text()
        for message_id in ("ESST0005I", "ESST0006I"):
            assert message_id in text
        assert text.count("ESKC0003I") == 2
    finally:
        proc.stop()


def test_a_second_start_rotates_the_console_log(tmp_path):
    proc = RegionProcess(tmp_path)
    try:
        proc.start().wait_started()
        first_pid = proc.process.pid
        proc.stop()
        proc.start().wait_started()
        bak = (proc.console.parent / "console.bak").read_text()
        assert f"[{first_pid} ESSRV01]" in bak and "ESST0006I" in bak
        assert f"[{first_pid} ESSRV01]" not in proc.console.read_text()
    finally:
        proc.stop()


def test_bind_failure_fails_the_region_and_leaves_no_sep(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = RegionProcess(tmp_path, address=f"127.0.0.1:{port}")
        try:
            proc.start()
            code = proc.process.wait(60)
            proc.sep_pids()
        finally:
            proc.stop()
    assert code != 0
    expected = (f'ESSRV01: listener "Web Services" cannot bind 127.0.0.1:{port}: '
                "address already in use")
    status = proc.status()
    assert status["mfServerStatus"] == "Failed" and status["message"] == expected
    assert status["listeners"][0]["mfListenerStatus"] == "Failed"
    assert f"ESCS5005E {expected}" in proc.console.read_text()
    assert not any(alive(pid) for pid in proc.seen_pids)


def test_esrt_conversation_listener_serves_binary_calls(tmp_path):
    from esrt.client import ServiceError, WireClient
    proc = RegionProcess(tmp_path, conversation="esrt")
    write_package(proc.server_root / "deploy", "srv01", ["CBLAPP01"])
    try:
        status = proc.start().wait_started().status()
        assert status["listeners"][0]["conversation"] == "esrt"
        with WireClient("127.0.0.1", proc.port) as client:
            reply = client.call("srv01.CBLAPP01", {"LK-NAME": "abc", "rc": 4})
            assert reply["echo"] == {"LK-NAME": "abc", "rc": 4} and reply.return_code == 4
            with pytest.raises(ServiceError) as caught:
                client.call("srv01.NOPE")
            assert (caught.value.status, caught.value.code) == (404, "unknown_service")
        assert "(esrt)" in proc.console.read_text()
    finally:
        proc.stop()


def test_refuses_to_start_while_the_pid_file_names_a_live_process(tmp_path):
    proc = RegionProcess(tmp_path)
    proc.run_dir.mkdir(parents=True)
    (proc.run_dir / "region.pid").write_text(f"{os.getpid()}\n")  # this test process is alive
    try:
        proc.start()
        code = proc.process.wait(60)
        output = proc.process.stdout.read().decode()
    finally:
        proc.stop()
    assert code == 1 and "ESSRV01 is already running" in output
    assert (proc.run_dir / "region.pid").read_text().strip() == str(os.getpid())


def test_in_flight_request_finishes_during_shutdown(tmp_path):
    import threading
    proc = RegionProcess(tmp_path, timeout=30)
    write_package(proc.server_root / "deploy", "srv01", ["CBLAPP01"])
    results = []
    try:
        proc.start().wait_started()
        worker = threading.Thread(target=lambda: results.append(proc.call(
            "/services/srv01/CBLAPP01", b'{"action": "sleep", "seconds": 3}')))
        worker.start()
        wait_for(lambda: "SLEEPING" in proc.console.read_text(), "the call to reach a SEP")
        proc.process.send_signal(signal.SIGTERM)
        worker.join(60)
        assert proc.process.wait(60) == 0
    finally:
        proc.stop()
    response, body = results[0]
    assert response.status == 200 and body["echo"]["action"] == "sleep"
    text = proc.console.read_text()
    assert "ESST0006I" in text and "ESCS5007E" not in text


def test_status_is_put_to_mfds(tmp_path):
    import http.server
    import threading

    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append((self.path, json.loads(self.rfile.read(
                int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    mfds = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=mfds.serve_forever, daemon=True)
    thread.start()
    proc = RegionProcess(tmp_path)
    proc.home.mkdir(parents=True)
    (proc.home / "mfds.json").write_text(json.dumps(
        {"url": f"http://127.0.0.1:{mfds.server_address[1]}"}))
    try:
        proc.start().wait_started()
        wait_for(lambda: any(doc["mfServerStatus"] == "Started" for _, doc in received),
                 "a Started status at the fake mfds")
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(60) == 0
    finally:
        proc.stop()
        mfds.shutdown()
        mfds.server_close()
    assert {path for path, _ in received} == {"/api/servers/ESSRV01/status"}
    assert received[-1][1]["mfServerStatus"] == "Stopped"
