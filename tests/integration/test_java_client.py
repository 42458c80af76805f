"""Integration tests for the JDK-only Java client in examples/java.

The client is compiled with the real javac and run with the real JVM against real HTTP
servers: a small contract-faithful server started here, and (when the lead's ``esrt_region``
fixture is available) a running esrt region with srv01 deployed.
"""

import http.server
import itertools
import json
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

JAVA_SOURCE = Path(__file__).resolve().parents[2] / "examples" / "java" / "CblApp01Client.java"
LINE = re.compile(
    r"^(?P<date>\d\d/\d\d/\d\d) (?P<time>\d\d:\d\d:\d\d\.\d\d) "
    r"(?P<program>\S+) (?P<host>\S+) (?P<counter>\d+)$"
)
ERROR_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d\.\d\d ERROR (?P<message>.+)$")
# Generous: a JVM start is a few hundred ms, but loaded CI machines can be far slower.
RUN_TIMEOUT = 300

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or shutil.which("java") is None,
    reason="javac/java not on PATH; install a JDK (apt-get install default-jdk-headless)",
)


@pytest.fixture(scope="module")
def client_classes(tmp_path_factory):
    """Compile the client once per module; return the class directory."""
    out = tmp_path_factory.mktemp("java-classes")
    subprocess.run(
        ["javac", "-Xlint:all", "-Werror", "-d", str(out), str(JAVA_SOURCE)],
        check=True, timeout=RUN_TIMEOUT,
    )
    return out


def run_client(classes, *args):
    """Run the compiled client; return the CompletedProcess with text output."""
    return subprocess.run(
        ["java", "-cp", str(classes), "CblApp01Client", *args],
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )


class FakeCblApp01:
    """A real HTTP server speaking the srv01.CBLAPP01 contract, with a rising counter.

    Calls whose 1-based number is in ``fail_calls`` get a 500 with a JSON error object, so the
    client's error path can be seen. ``peers`` records each request's client address.
    """

    def __init__(self, fail_calls=()):
        self.fail_calls = set(fail_calls)
        self.peers = []
        self._calls = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the esrt listener offers

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"null")
                if self.path != "/services/srv01/CBLAPP01":
                    self._reply(404, {"error": {"code": "SERVICE_NOT_FOUND",
                                                "message": f"no service at {self.path}"}})
                    return
                if request != {}:
                    self._reply(400, {"error": {"code": "BAD_REQUEST",
                                                "message": "CBLAPP01 takes no input"}})
                    return
                with fake._lock:
                    number = next(fake._calls)
                    fake.peers.append(self.client_address)
                if number in fake.fail_calls:
                    self._reply(500, {"error": {"code": "PROGRAM_ABEND",
                                                "message": "CBLAPP01 ended abnormally"}})
                    return
                self._reply(200, {
                    "LK-DATETIME": "26/11/25 20:31:07.42",
                    "LK-PGMNAME": "CBLAPP01  ",
                    "LK-HOSTNAME": "fakehost".ljust(20),
                    "LK-COUNTER": 16 + number,
                })

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


@pytest.fixture
def fake_service(request):
    """Start a FakeCblApp01; failing calls come from ``@pytest.mark.parametrize`` indirect."""
    fake = FakeCblApp01(getattr(request, "param", ()))
    request.addfinalizer(fake.stop)
    return fake


def test_java_client_prints_one_line_per_call_on_one_connection(client_classes, fake_service):
    result = run_client(client_classes, "--url", fake_service.url, "--repeat", "3")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "26/11/25 20:31:07.42 CBLAPP01 fakehost 17",
        "26/11/25 20:31:07.42 CBLAPP01 fakehost 18",
        "26/11/25 20:31:07.42 CBLAPP01 fakehost 19",
    ]
    # One HttpClient in one process: all calls ride one keep-alive connection.
    assert len(set(fake_service.peers)) == 1


@pytest.mark.parametrize("fake_service", [{2}], indirect=True)
def test_java_client_reports_failed_call_and_goes_on(client_classes, fake_service):
    result = run_client(client_classes, "--url", fake_service.url, "--repeat", "3")

    assert result.returncode == 1
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["17", "19"]
    errors = result.stderr.splitlines()
    assert len(errors) == 1
    message = ERROR_LINE.match(errors[0]).group("message")
    assert message == "PROGRAM_ABEND: CBLAPP01 ended abnormally (HTTP 500)"


def test_java_client_names_unknown_service(client_classes, fake_service):
    result = run_client(client_classes, "--url", fake_service.url + "/", "--service", "srv09.NOPE")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "SERVICE_NOT_FOUND: no service at /services/srv09/NOPE" in result.stderr


def test_java_client_reports_unreachable_listener(client_classes):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port is now closed; nothing listens there.
    result = run_client(client_classes, "--url", f"http://127.0.0.1:{port}", "--repeat", "2")

    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert all(f"cannot call http://127.0.0.1:{port}/services/srv01/CBLAPP01" in e for e in errors)


@pytest.mark.parametrize("args, named", [
    (["--repeat", "0"], "--repeat"),
    (["--repeat", "many"], "--repeat"),
    (["--service", "CBLAPP01"], "--service"),
    (["--url", "localhost:9003"], "--url"),
    (["--colour", "red"], "--colour"),
    (["--url"], "--url"),
])
def test_java_client_rejects_bad_command_line(client_classes, args, named):
    result = run_client(client_classes, *args)

    assert result.returncode == 2
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("CblApp01Client: ") and named in first
    assert "usage:" in result.stderr


def test_java_client_single_file_launch(fake_service):
    """`java CblApp01Client.java` (no javac step) works as the README says."""
    result = subprocess.run(
        ["java", str(JAVA_SOURCE), "--url", fake_service.url],
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "26/11/25 20:31:07.42 CBLAPP01 fakehost 17\n"


def test_java_client_against_esrt_region(client_classes, esrt_region):
    result = run_client(client_classes, "--url", esrt_region.url, "--repeat", "3")

    assert result.returncode == 0, result.stderr
    lines = [LINE.match(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and all(lines), result.stdout
    assert [m.group("program") for m in lines] == ["CBLAPP01"] * 3
    assert [m.group("host") for m in lines] == [socket.gethostname()[:20]] * 3
    counters = [int(m.group("counter")) for m in lines]
    assert counters == [counters[0], counters[0] + 1, counters[0] + 2]
