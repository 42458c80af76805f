"""A region's state as monitors read it from its run directory (esrt.region.monitor), the
cluster's monitor built on it, and the switch of a standby region, against a stand-in region
process that answers the signals."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from esrt.home import Home
from esrt.region.monitor import monitor_region, region_state, switch_region
from esrt.states import ExitCode

NAME = "ESSRV01"


@pytest.fixture
def home(tmp_path):
    home = Home(tmp_path)
    (home.server_root(NAME) / "run").mkdir(parents=True)
    return home


def record(home, status=None, pid=None):
    run = home.server_root(NAME) / "run"
    if status is not None:
        (run / "status.json").write_text(json.dumps(status))
    if pid is not None:
        (run / "region.pid").write_text(f"{pid}\n")


@pytest.fixture
def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def region_process(home):
    """A stand-in region: SIGUSR1 makes it active, SIGUSR2 standing by, as its status says."""
    status = home.server_root(NAME) / "run" / "status.json"
    script = textwrap.dedent(f"""
        import json, signal, time
        def write(active):
            with open({str(status)!r} + ".tmp", "w") as f:
                json.dump({{"mfServerStatus": "Started", "standby": True, "active": active}}, f)
            import os; os.replace({str(status)!r} + ".tmp", {str(status)!r})
        signal.signal(signal.SIGUSR1, lambda *_: write(True))
        signal.signal(signal.SIGUSR2, lambda *_: write(False))
        write(False)
        print("ready", flush=True)
        time.sleep(120)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "ready\n"
        record(home, pid=process.pid)
        yield process
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_a_region_never_started_is_stopped(home):
    state = region_state(home, NAME)
    assert (state.code, state.text) == (ExitCode.NOT_RUNNING, "ESSRV01: Stopped")


def test_a_started_region_is_running_and_names_listeners_waiting_for_their_address(home):
    record(home, {"mfServerStatus": "Started", "listeners": [
        {"CN": "Web Services", "mfListenerStatus": "Waiting for address",
         "mfRequestedEndpoint": "tcp:10.0.0.1:9003"},
        {"CN": "Binary", "mfListenerStatus": "Started"}]}, pid=os.getpid())
    state = region_state(home, NAME)
    assert state.code == ExitCode.OK
    assert state.text == (f"ESSRV01: Started (pid {state.pid}); listener \"Web Services\" "
                          "waiting for address 10.0.0.1:9003")


def test_a_live_region_that_is_not_started_is_an_error(home):
    record(home, {"mfServerStatus": "Starting", "message": "recovering"},
           pid=os.getpid())
    state = region_state(home, NAME)
    assert state.code == ExitCode.ERROR
    assert state.text == f"ESSRV01: Starting (pid {state.pid}) recovering"


def test_a_standby_being_activated_is_running_not_failed(home):
    """While an activated standby starts its SEPs it reports Starting: its clone's monitor
    must say running, or Pacemaker restarts the region that is taking over."""
    record(home, {"mfServerStatus": "Starting", "standby": True, "active": True},
           os.getpid())
    state = region_state(home, NAME)
    assert state.code == ExitCode.OK and "being activated" in state.text
    # A region that is no standby, or not being activated, and not Started is still an error.
    for status in ({"mfServerStatus": "Starting", "standby": False, "active": True},
                   {"mfServerStatus": "Stopping", "standby": True, "active": True}):
        record(home, status)
        assert region_state(home, NAME).code == ExitCode.ERROR, status


def test_a_region_whose_process_is_gone_failed(home, dead_pid):
    record(home, {"mfServerStatus": "Started", "message": ""}, pid=dead_pid)
    state = region_state(home, NAME)
    assert state.code == ExitCode.ERROR
    assert state.text == "ESSRV01: Failed (last status Started, process gone)"


def test_a_region_stopped_cleanly_is_not_running(home, dead_pid):
    record(home, {"mfServerStatus": "Stopped"}, pid=dead_pid)
    assert region_state(home, NAME).code == ExitCode.NOT_RUNNING


@pytest.fixture
def closed_port():
    """A local port where nothing listens: a probe there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_cluster_monitor_passes_on_a_region_that_is_not_running(home, dead_pid):
    assert monitor_region(home, NAME, probe_timeout=1) == (ExitCode.NOT_RUNNING,
                                                            ["ESSRV01: Stopped"])
    record(home, {"mfServerStatus": "Started"}, pid=dead_pid)
    code, lines = monitor_region(home, NAME, probe_timeout=1)
    assert code == ExitCode.ERROR and lines == [region_state(home, NAME).text]


def test_the_cluster_monitor_fails_a_running_region_that_does_not_answer(home, closed_port):
    record(home, {"mfServerStatus": "Started", "listeners": [
        {"CN": "Web Services", "mfListenerStatus": "Started",
         "address": f"127.0.0.1:{closed_port}"}]}, pid=os.getpid())
    code, lines = monitor_region(home, NAME, probe_timeout=1)
    assert code == ExitCode.ERROR
    assert lines[0].startswith("ESSRV01: Started (pid ")
    assert lines[1].startswith("ESSRV01: Failed (running but not answering: listener "
                               f"\"Web Services\" at 127.0.0.1:{closed_port} does not answer")
    # Without a probe, running is enough.
    assert monitor_region(home, NAME, probe_timeout=0) == (ExitCode.OK, lines[:1])


def test_the_cluster_monitor_of_a_standby_standing_by(home):
    record(home, {"mfServerStatus": "Started", "standby": True, "active": False},
           pid=os.getpid())
    text = region_state(home, NAME).text
    # Running as it should; the monitor of its activation sees it stopped.
    assert monitor_region(home, NAME, probe_timeout=1) == (ExitCode.OK, [text])
    assert monitor_region(home, NAME, probe_timeout=1, require_active=True) == (
        ExitCode.NOT_RUNNING, [text, "ESSRV01: standing by (not active)"])


def test_switching_a_region_that_is_not_running(home):
    code, text = switch_region(home, NAME, activate=True, timeout=5)
    assert code == ExitCode.NOT_RUNNING and "casstart -r ESSRV01" in text


def test_a_region_that_is_no_standby_is_always_active(home):
    record(home, {"mfServerStatus": "Started", "standby": False}, pid=os.getpid())
    assert switch_region(home, NAME, activate=True, timeout=5)[0] == ExitCode.OK
    code, text = switch_region(home, NAME, activate=False, timeout=5)
    assert code == ExitCode.ERROR and "\"standby\": true" in text


def test_a_standby_region_is_activated_and_put_back(home, region_process):
    code, text = switch_region(home, NAME, activate=True, timeout=60)
    assert (code, text) == (ExitCode.OK, f"ESSRV01: active (pid {region_process.pid})")
    assert region_state(home, NAME).status["active"] is True
    code, text = switch_region(home, NAME, activate=False, timeout=60)
    assert (code, text) == (ExitCode.OK, f"ESSRV01: standing by (pid {region_process.pid})")


def test_a_switch_that_never_comes_gives_up_at_the_timeout(home, region_process):
    record(home, {"mfServerStatus": "Started", "standby": True, "active": False})
    now = [0.0]
    ignored = []
    # Stopped, the stand-in cannot answer: the switch waits on a fake clock until its timeout.
    os.kill(region_process.pid, signal.SIGSTOP)
    try:
        code, text = switch_region(home, NAME, activate=True, timeout=3,
                                   clock=lambda: now[0],
                                   sleep=lambda seconds: (ignored.append(seconds),
                                                          now.__setitem__(0, now[0] + seconds)))
    finally:
        os.kill(region_process.pid, signal.SIGCONT)
    assert code == ExitCode.ERROR and "within 3 s" in text
    assert 3 <= sum(ignored) < 3.1   # waited the whole timeout, and no longer
