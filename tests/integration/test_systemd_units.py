"""systemd units from `esrt mfds install-service` and `esrt server install-service NAME`.

This machine's PID 1 is not systemd, so the units are checked in two ways: systemd's own
`systemd-analyze verify` reads them as systemd would, and their ExecStart and ExecStop lines
are run as systemd runs them -- with $NOTIFY_SOCKET on a socket of the test's, and stderr on
a stream named by $JOURNAL_STREAM -- to see that each process says READY=1 itself (so
NotifyAccess=main holds), only once it answers, STOPPING=1 when stopped, and that a region
writes its console to the journal stream as well.
"""

import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import run_esrt

SERVER = "ESSYS01"


def unit_settings(path, instance=None):
    """{key: [values]} of a unit file's [Service], %i filled with `instance`."""
    settings = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("[", "#")):
            key, value = line.split("=", 1)
            if instance is not None:
                value = value.replace("%i", instance)
            settings.setdefault(key, []).append(value)
    return settings


def install_units(home, unit_dir):
    for command in (["mfds", "install-service", "--listen", "127.0.0.1:0"],
                    ["server", "install-service", SERVER]):
        result = run_esrt([*command, "--unit-dir", str(unit_dir)], home)
        assert "wrote " in result.stdout and "enable --now" in result.stdout
    return unit_dir / "esrt-mfds.service", unit_dir / "esrt-server@.service"


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    mfds_unit, template = install_units(tmp_path / "home", tmp_path / "units")
    # An instance is verified through a file of its name: the template, linked.
    (tmp_path / "units" / f"esrt-server@{SERVER}.service").symlink_to(template.name)
    result = subprocess.run(["systemd-analyze", "verify", mfds_unit.name,
                             f"esrt-server@{SERVER}.service"], cwd=tmp_path / "units",
                            env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{tmp_path / 'units'}:"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # No complaint about our files: unknown keys (a newer systemd's) would be warnings here.
    assert "esrt-" not in result.stderr, result.stderr
    server = unit_settings(template, SERVER)
    # Ordered after mfds at boot, but not bound to it: stopping mfds leaves servers running.
    assert "esrt-mfds.service" in server["After"][0] and "esrt-mfds.service" in server["Wants"][0]
    assert "Requires" not in server and "BindsTo" not in server
    assert server["Restart"] == ["on-failure"] and server["KillMode"] == ["mixed"]


class NotifySocket:
    """The socket systemd would listen on: each datagram with the pid that sent it."""

    def __init__(self, path):
        self.path = str(path)
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.socket.bind(self.path)

    def wait_for(self, wanted, timeout=60.0):
        """(pid, fields) of the first message holding `wanted` (e.g. "READY=1")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, ancillary, _, _ = self.socket.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                break
            pid = next(struct.unpack("iII", payload)[0] for level, kind, payload in ancillary
                       if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            if wanted in data.decode().splitlines():
                return pid, fields
        raise AssertionError(f"no {wanted} within {timeout} s")

    def close(self):
        self.socket.close()


def run_as_systemd(settings, notify, journal):
    """Start a unit's ExecStart as systemd would; the Popen."""
    environ = dict(os.environ, NOTIFY_SOCKET=notify.path)
    for assignment in settings.get("Environment", ()):
        key, value = shlex.split(assignment)[0].split("=", 1)
        environ[key] = value
    info = os.fstat(journal.fileno())
    environ["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
    return subprocess.Popen(shlex.split(settings["ExecStart"][0]), env=environ,
                            stdin=subprocess.DEVNULL, stdout=journal, stderr=journal)


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(30)


def test_the_units_commands_start_report_and_stop_as_systemd_expects(tmp_path):
    home, unit_dir = tmp_path / "home", tmp_path / "units"
    mfds_unit, template = install_units(home, unit_dir)
    notify = NotifySocket(tmp_path / "notify")
    processes = []
    journal = open(tmp_path / "journal", "w+b")
    try:
        mfds = run_as_systemd(unit_settings(mfds_unit), notify, journal)
        processes.append(mfds)
        pid, fields = notify.wait_for("READY=1")
        assert pid == mfds.pid and "listening on" in fields["STATUS"]
        # Ready means answering: the health check succeeds at once.
        url = json.loads((home / "mfds.json").read_text())["url"]
        with urllib.request.urlopen(f"{url}/api/health", timeout=10) as answer:
            assert answer.status == 200

        run_esrt(["server", "create", SERVER, "--listener", "Web=127.0.0.1:*"], home)
        server = unit_settings(template, SERVER)
        region = run_as_systemd(server, notify, journal)
        processes.append(region)
        pid, fields = notify.wait_for("READY=1")
        # The region itself said it (casstart --foreground became the region process), once
        # its listener was up: the status shows where, and a call there is answered.
        assert pid == region.pid and "Web" in fields["STATUS"]
        status = json.loads((home / "servers" / SERVER / "run" / "status.json").read_text())
        assert status["pid"] == region.pid and status["mfServerStatus"] == "Started"
        address = status["listeners"][0]["address"]
        with urllib.request.urlopen(f"http://{address}/health", timeout=10) as answer:
            assert json.loads(answer.read())["status"] == "ok"
        # Only the region talks to systemd: its SEPs do not inherit the socket.
        for sep in status["seps"]:
            environ = open(f"/proc/{sep['pid']}/environ", "rb").read().split(b"\0")
            assert not [v for v in environ if v.startswith((b"NOTIFY_SOCKET=", b"JOURNAL_"))]
        # Started again while it runs: an exit code the unit does not restart on.
        again = subprocess.run(shlex.split(server["ExecStart"][0]),
                               env=dict(os.environ, ESRT_HOME=str(home)),
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 11 and "already running" in again.stderr
        assert "11" in server["RestartPreventExitStatus"][0].split()

        stop_command = shlex.split(server["ExecStop"][0])
        result = subprocess.run(stop_command, env=dict(os.environ, ESRT_HOME=str(home)),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and f"{SERVER} stopped" in result.stdout, result.stderr
        pid, _ = notify.wait_for("STOPPING=1")
        assert pid == region.pid
        assert region.wait(60) == 0  # a clean stop: Restart=on-failure leaves it stopped
        journal.seek(0)
        written = journal.read().decode(errors="replace")
        console = (home / "servers" / SERVER / "logs" / "console.log").read_text()
        # Every console line reached the journal as well.
        for message in ("ESCD0106I", "ESST0005I", "ESST0006I"):
            assert message in console and message in written

        mfds.send_signal(signal.SIGTERM)  # systemctl stop esrt-mfds (KillMode=process)
        pid, _ = notify.wait_for("STOPPING=1")
        assert pid == mfds.pid and mfds.wait(60) == 0
    finally:
        for process in processes:
            stop(process)
        run_esrt(["casstop", "-r", SERVER, "--force"], home, check=False)
        notify.close()
        journal.close()


def test_enable_without_systemd_says_so_and_keeps_the_file(tmp_path):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here: --enable would really enable the unit")
    result = run_esrt(["mfds", "install-service", "--unit-dir", str(tmp_path), "--enable"],
                      tmp_path / "home", check=False)
    assert result.returncode == 1
    assert "systemd does not run on this machine" in result.stderr
    assert (tmp_path / "esrt-mfds.service").is_file()
    assert sys.executable in (tmp_path / "esrt-mfds.service").read_text()
