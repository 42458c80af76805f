"""The report's pattern 6: a standby node with the same server already started.

The report failed here: a listener could not start while its relocatable IP was still on the
other node, so the standby could only wait with mfds running. In esrt the region is
pre-started on both nodes as a clone, from a region file on each node's own disk with
"standby": true. Its listener waits for the address, and it leaves the data environment on the
shared disk closed: that disk may be used by one node at a time. The resource group is
IPaddr2 + Filesystem + the region's activation (ocf:esrt:region activate=true), so Pacemaker's
ordering opens the environment only after the disk is mounted, and closes it before the disk is
unmounted. A takeover mounts the disk, adds the address and activates the region that is
already running: no region start.
"""

import json
import time

from esrt.testing import faults
from esrt.testing.apps import Service, prepare_region

from .failover_helpers import assert_takeover

REGION = "ESHA06"
GROUP = "grp6"


def region_status(node):
    """The status the standby region on `node` reports (its run files are in the node's home)."""
    try:
        return json.loads((node.home / "servers" / REGION / "run" / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def activations(node, pid):
    """How many times region process `pid` on `node` logged its activation (ESCD0111I)."""
    logs = node.home / "servers" / REGION / "logs"
    marker = f"[{pid} {REGION}] ESCD0111I"
    count = 0
    for name in ("console.bak", "console.log"):
        try:
            count += (logs / name).read_text().count(marker)
        except OSError:
            pass
    return count


def console_tails(node, lines=30):
    """The last lines of the region's console.bak and console.log on `node`, for failures."""
    logs = node.home / "servers" / REGION / "logs"
    parts = []
    for name in ("console.bak", "console.log"):
        try:
            tail = (logs / name).read_text().splitlines()[-lines:]
        except OSError as exc:
            tail = [f"({exc})"]
        parts.append(f"--- {name}\n" + "\n".join(tail))
    return "\n".join(parts)


def wait_for_status(node, predicate, what, limit=90.0):
    # A guard against hanging forever, not a performance threshold.
    deadline = time.monotonic() + limit
    while True:
        status = region_status(node)
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}; last status: {status}")
        time.sleep(0.2)


def test_pattern6_pre_started_standby_takes_over(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    ip = f"{lab.subnet}.106"
    disk = lab.add_disk(GROUP)
    mountpoint = lab.workdir / "mnt" / GROUP
    mountpoint.mkdir(parents=True, exist_ok=True)
    with lab.mounted(disk, at=mountpoint) as path:
        definition = json.loads(prepare_region(path, ip, REGION).read_text())
    # Data and packages on the shared disk; the logs stay with each node's own region.
    definition.update(standby=True, casroot=None)
    standby_file = lab.workdir / f"{REGION}.standby.json"
    standby_file.write_text(json.dumps(definition))
    lab.add_standby_group(GROUP, ip, disk, str(mountpoint), str(standby_file), REGION,
                          prefer=node1)
    lab.wait_group(GROUP, on=node1)

    assert region_status(node1)["active"] is True
    standby = wait_for_status(node2, lambda status: status.get("mfServerStatus") == "Started",
                              "node2's standby region to start")
    assert standby["active"] is False and not any(sep["pid"] for sep in standby["seps"])
    listener = standby["listeners"][0]
    assert listener["mfListenerStatus"] == "Waiting for address"

    calls = recorder(f"http://{ip}:9003")
    calls.wait_for_calls(10, host=node1.name)
    activated_before = activations(node2, standby["pid"])
    since = faults.power_off(lab, node1)
    assert_takeover(calls, since, node1, node2, report_outage,
                    "power-off of node1, standby pre-started on node2")
    # The takeover activated the region that stood by on node2: it was not started then.
    assert activations(node2, standby["pid"]) > activated_before, (
        f"node2's standby region (pid {standby['pid']}) was not activated by the takeover; "
        "the end of its console logs:\n" + console_tails(node2))
    serving = region_status(node2)
    assert serving["active"] is True
    # The same process that stood by serves now: Pacemaker did not restart it after it took
    # over (the clone's monitor once called an activation in progress a failure).
    assert serving["pid"] == standby["pid"], (
        f"node2's standby region was replaced after it took over (pid {standby['pid']} -> "
        f"{serving['pid']}); Pacemaker's view:\n{lab.crm('crm_mon', '-1', '--show-detail')}"
        f"\nthe end of its console logs:\n" + console_tails(node2))
    service = Service(lab, GROUP, ip, REGION, "CBLAPP01", mountpoint, standby_file)
    assert service.node() == node2
