"""The fault injectors that need no cluster, against real regions and mfds on this machine."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from esrt.client import Client, ConnectionFailed
from esrt.procs import process_alive
from esrt.testing import faults


def _recorded_pids(node, name):
    from esrt.home import Home
    from esrt.node.runs import recorded_pids, recorded_run_dir
    return recorded_pids(recorded_run_dir(Home(node.home), name))[1]


def _zombie_or_gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (OSError, IndexError):
        return True


def test_kill_region_kills_only_that_region(node, srv01_car):
    from conftest import start_cblapp01_region
    one = start_cblapp01_region(node, srv01_car, name="ESSRV01", seps=1)
    two = start_cblapp01_region(node, srv01_car, name="ESSRV02", seps=1)
    victims = _recorded_pids(node, "ESSRV01")
    moment = faults.kill_region(node, "ESSRV01")
    assert moment > 0
    for pid in victims:
        for _ in range(100):
            if _zombie_or_gone(pid):
                break
            time.sleep(0.05)
        assert _zombie_or_gone(pid), f"pid {pid} of ESSRV01 survived"
    status = node.esrt("server", "status", "ESSRV01", check=False)
    assert status.returncode == 1, status.stdout   # crashed, not cleanly stopped
    with Client(two.url, timeout=10) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
    with pytest.raises(ConnectionFailed):
        with Client(one.url, timeout=2) as client:
            client.call("srv01.CBLAPP01")


def test_kill_sep_is_survived_by_the_region(node, srv01_car):
    from conftest import start_cblapp01_region
    region = start_cblapp01_region(node, srv01_car, seps=1)
    before = set(_recorded_pids(node, region.name))
    faults.kill_sep(node, region.name, 1)
    with Client(region.url, timeout=10) as client:
        reply = client.call("srv01.CBLAPP01", retry_for=30)
    assert reply["LK-COUNTER"] == 0
    assert set(_recorded_pids(node, region.name)) != before   # a new SEP replaced the dead one
    with pytest.raises(faults.FaultError, match="no live SEP 0007"):
        faults.kill_sep(node, region.name, 7)


def test_hang_region_stops_answers_until_resumed(node, srv01_car):
    from conftest import start_cblapp01_region
    region = start_cblapp01_region(node, srv01_car, seps=1)
    faults.hang_region(node, region.name)
    try:
        with pytest.raises(ConnectionFailed, match="timed out"):
            with Client(region.url, timeout=1) as client:
                client.call("srv01.CBLAPP01")
        assert all(process_alive(pid) for pid in _recorded_pids(node, region.name))
    finally:
        faults.resume_region(node, region.name)
    with Client(region.url, timeout=10) as client:
        assert client.call("srv01.CBLAPP01", retry_for=10)["LK-COUNTER"] in (0, 1)


def test_kill_mfds_leaves_the_region_serving(node, srv01_car):
    from conftest import start_cblapp01_region
    region = start_cblapp01_region(node, srv01_car, seps=1)
    faults.kill_mfds(node)
    status = node.esrt("mfds", "--status", check=False)
    assert status.returncode == 7, status.stdout
    dump = node.esrt("mdump", check=False)
    assert "SERVER_DOWN" in dump.stdout
    with Client(region.url, timeout=10) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
    with pytest.raises(faults.FaultError, match="no mfds runs"):
        faults.kill_mfds(node)


def test_kill_region_names_a_region_that_does_not_run(node):
    with pytest.raises(faults.FaultError, match="region NOSUCH has no live recorded process"):
        faults.kill_region(node, "NOSUCH")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_fill_disk_fills_the_file_system_and_free_disk_undoes_it():
    mountpoint = Path(tempfile.mkdtemp(prefix="esrt-fill-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                   check=True)
    try:
        faults.fill_disk(None, mountpoint)
        with pytest.raises(OSError, match="No space left"):
            with open(mountpoint / "more", "wb") as more:
                more.write(b"x" * 65536)
                more.flush()
                os.fsync(more.fileno())
        faults.free_disk(None, mountpoint)
        (mountpoint / "more").write_bytes(b"x" * 65536)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)
        mountpoint.rmdir()


def test_fill_and_free_disk_refuse_a_directory_with_no_disk_mounted(tmp_path):
    # Filling it would fill the root file system; "emptying" it would leave the full disk full
    # on the node that holds it now.
    with pytest.raises(faults.FaultError, match="no file system is mounted there"):
        faults.fill_disk(None, tmp_path)
    with pytest.raises(faults.FaultError, match="no file system is mounted there"):
        faults.free_disk(None, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def agent_region(node, srv01_car, tmp_path):
    """agent_run(action, **params): the installed OCF agent run on a portable CBLAPP01 region
    (ESHA04, listening on a free local port); the region is stopped afterwards."""
    from esrt.ha.agent import install_agent
    from esrt.testing.apps import prepare_region
    ocf_root = Path(tempfile.mkdtemp(prefix="esrt-ocf-"))
    agent = install_agent(ocf_root / "resource.d")
    region_file = prepare_region(tmp_path / "shared", "127.0.0.1", "ESHA04",
                                 port=_free_port(), car=srv01_car)

    def agent_run(action, **params):
        environ = dict(os.environ, OCF_ROOT=str(ocf_root), OCF_RESOURCE_INSTANCE="esrt4",
                       OCF_RESKEY_config=str(region_file), OCF_RESKEY_home=str(node.home))
        environ.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
        return subprocess.run([str(agent), action], env=environ, capture_output=True,
                              text=True, timeout=180)

    try:
        yield agent_run
    finally:
        agent_run("stop")
        shutil.rmtree(ocf_root, ignore_errors=True)


def test_agent_check_mfds_fails_the_monitor_when_mfds_is_killed(node, agent_region):
    """Pattern 4 without a cluster: with check_mfds=true the OCF agent's monitor fails as soon
    as the node's mfds is gone (the region itself still serves); without it, it does not."""
    assert agent_region("start").returncode == 0
    assert agent_region("monitor", check_mfds="true").returncode == 0
    faults.kill_mfds(node)
    failed = agent_region("monitor", check_mfds="true")
    assert failed.returncode == 1 and "SERVER_DOWN" in failed.stderr
    assert agent_region("monitor").returncode == 0       # default: mfds is not required
    assert agent_region("stop").returncode == 0
    assert agent_region("monitor", check_mfds="true").returncode == 7


def test_agent_monitor_fails_a_frozen_region_and_stop_kills_it(node, agent_region):
    """A SIGSTOPped region keeps its pids and its "Started" status: only the health probe
    tells; stop then kills exactly its processes at once instead of waiting for an orderly
    stop that cannot happen."""
    from esrt.home import Home
    from esrt.node.runs import recorded_pids, recorded_run_dir
    assert agent_region("start").returncode == 0
    pids = recorded_pids(recorded_run_dir(Home(node.home), "ESHA04"))[1]
    faults.hang_region(node, "ESHA04")
    frozen = agent_region("monitor", probe_timeout="1")
    assert frozen.returncode == 1 and "does not answer GET /health" in frozen.stderr
    assert agent_region("monitor", probe_timeout="0").returncode == 0   # status alone is fooled
    assert agent_region("stop", probe_timeout="1").returncode == 0
    assert agent_region("monitor").returncode == 7
    assert all(_zombie_or_gone(pid) for pid in pids)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
