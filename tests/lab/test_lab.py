"""The esrt.testing lab itself: a real two-node Pacemaker cluster that fences and fails over.

One lab serves the whole module (booting one takes seconds); the tests run in file order, the
last one stops the lab and checks that nothing is left behind.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from esrt.client import Client
from esrt.testing import Lab, LabError, lab_unavailable_reason
from esrt.testing.apps import prepare_cblapp01
from esrt.testing.lab import STATE_DIR
from esrt.testing.labhost import reclaim_stale_lab

REASON = lab_unavailable_reason()

PORT = 9001
GROUP = "grp1"


@pytest.fixture(scope="module")
def lab():
    if REASON:
        pytest.skip(REASON)
    with Lab(nodes=2) as started:
        print(f"lab {started.name} booted in {started.boot_seconds:.1f} s")
        yield started


@pytest.fixture(scope="module")
def group(lab):
    """Group grp1 (address .10, shared disk, region ESHA01 with CBLAPP01), preferring node1."""
    ip = f"{lab.subnet}.10"
    mountpoint = lab.workdir / "shared" / GROUP
    disk = lab.add_disk("shared1")
    with lab.mounted(disk, at=mountpoint) as root:
        region_file = prepare_cblapp01(root, ip, PORT)
    lab.add_group(GROUP, ip, disk, mountpoint, region_file, prefer=lab.nodes[0])
    return f"http://{ip}:{PORT}"


def call(url):
    with Client(url, timeout=5) as client:
        reply = client.call("srv01.CBLAPP01", retry_for=30)
    return reply["LK-HOSTNAME"].strip(), int(reply["LK-COUNTER"])


def test_two_nodes_boot_and_are_quorate(lab):
    status = lab.crm("crm_mon", "-1")
    assert "Online: [ node1 node2 ]" in status, status
    assert "partition with quorum" in status, status
    assert "fence_esrtlab" in status and "Started" in status, status
    for node in lab.nodes:
        # Each node has its own hostname and its own mfds on the default address.
        assert node.run(["hostname"]).stdout.strip() == node.name
        assert "SERVER_DOWN" not in node.esrt("mdump").stdout


def test_group_starts_on_the_preferred_node_and_answers_at_its_address(lab, group):
    node = lab.wait_group(GROUP, timeout=90)
    assert node is lab.nodes[0]
    assert lab.locate(GROUP) is lab.nodes[0]
    first = call(group)
    second = call(group)
    assert first == ("node1", 0)
    assert second == ("node1", 1)


def test_move_switches_the_group_over_and_clears_its_constraint(lab, group):
    node1, node2 = lab.nodes
    _, before = call(group)
    lab.move(GROUP, node2)
    assert lab.locate(GROUP) is node2
    assert call(group) == ("node2", before + 1)
    constraints = lab.crm("cibadmin", "--query", "--scope", "constraints")
    assert "cli-prefer" not in constraints and f"{GROUP}-prefers-node1" in constraints


def test_power_off_fences_the_node_and_the_group_moves(lab, group):
    node1, node2 = lab.nodes
    _, before = call(group)
    fault = time.monotonic()
    lab.power_off(node2)
    assert not node2.powered
    assert lab.wait_group(GROUP, on=node1, timeout=90) is node1
    started = time.monotonic() - fault
    host, counter = call(group)
    print(f"takeover after power-off: group started after {started:.1f} s, first reply "
          f"after {time.monotonic() - fault:.1f} s")
    assert host == "node1"
    assert counter == before + 1  # the data on the shared disk moved with the group
    assert "off node2" in lab.fence_events()
    with pytest.raises(LabError, match="powered off"):
        node2.run(["true"])


def test_bad_group_address_is_refused_with_the_remedy(lab):
    with pytest.raises(LabError, match=rf"not on the lab LAN {lab.subnet}\.0/24"):
        lab.add_group("bad", "192.0.2.10", "/dev/null", "/mnt/x", "/mnt/x/r.json")


def test_unavailable_reason_names_the_debian_package(monkeypatch):
    import shutil
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda cmd: None if cmd == "corosync" else real_which(cmd))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "apt-get install corosync" in lab_unavailable_reason()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in lab_unavailable_reason()


def lab_leftovers(lab, pids):
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    mounts = Path("/proc/self/mounts").read_text()
    left = [f"netns {line}" for line in netns.splitlines() if line.startswith(lab.name + "-")]
    left += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
             if line.split(":")[1].strip().startswith(lab.name)]
    left += [f"loop {line}" for line in loops.splitlines() if str(lab.workdir) in line]
    left += [f"mount {line}" for line in mounts.splitlines() if str(lab.workdir) in line]
    left += [f"process {pid}" for pid in pids if os.path.exists(f"/proc/{pid}")]
    if lab.workdir.exists():
        left.append(f"workdir {lab.workdir}")
    return left


def node_processes(lab):
    """Host PIDs of every process in a powered node's PID namespace."""
    namespaces = {os.readlink(f"/proc/{node.init_pid}/ns/pid") for node in lab.nodes
                  if node.powered}
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "ns" / "pid") in namespaces:
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def test_stop_leaves_no_namespace_link_loop_device_mount_or_process(lab, group):
    pids = node_processes(lab)
    assert len(pids) > 5  # node1's init, corosync, pacemaker daemons, mfds, the region
    assert lab_leftovers(lab, [])  # the check does see a running lab
    lab.stop()
    # /proc/PID exists for zombies too, so this also proves every process was reaped.
    assert lab_leftovers(lab, pids) == []
    lab.stop()  # idempotent


OWNER = """
import sys, time
sys.path.insert(0, {root!r})
from esrt.testing import Lab
with Lab(nodes=2) as lab:
    print(lab.name, lab.workdir, flush=True)
    time.sleep(600)
"""


def test_a_lab_whose_owner_is_terminated_stops_with_it(tmp_path):
    """SIGTERM to the process that started a lab (a job stopped, a CI timeout) tears the lab
    down as stop() does, instead of leaving its cluster running."""
    if REASON:
        pytest.skip(REASON)
    script = tmp_path / "owner.py"
    script.write_text(OWNER.format(root=str(Path(__file__).resolve().parents[2])))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    lab = None
    try:
        name, workdir = owner.stdout.readline().split()
        lab = SimpleNamespace(name=name, workdir=Path(workdir))
        pids = [int(pid) for node in ("node1", "node2") for pid in subprocess.run(
            ["ip", "netns", "pids", f"{name}-{node}"], capture_output=True,
            text=True).stdout.split()]
        assert len(pids) > 5  # each node's init, corosync, the Pacemaker daemons, mfds
        owner.send_signal(signal.SIGTERM)
        owner.wait(timeout=120)
        assert lab_leftovers(lab, pids) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if lab is not None and lab_leftovers(lab, []):
            # What the test found left is still removed: the next labs must find none of it.
            for claim in STATE_DIR.glob("*.pid"):
                if claim.read_text().split()[1:2] == [lab.name]:
                    reclaim_stale_lab(claim)
