"""Checkpoints of a region's data environment: a busy region does not fill its data disk with
Berkeley DB log files, and recovery still works once the old ones are gone.

Every commit appends to the log, in files of 1 MB (ESFH_LOG_FILE_BYTES). Nothing removed them
before: a lab's 64 MB shared disk filled within minutes of load and every call then failed
with "No space left on device" (found by the fault campaign, esrt.testing.soak).
"""

import subprocess
import uuid

from esrt.client import Client

from conftest import EXAMPLES, Region

NAME = "ESCKPT"


def log_files(data_dir):
    return sorted(path.name for path in data_dir.glob("log.*"))


def start_region(node, srv01_car, *settings):
    node.esrt("server", "create", NAME, "--seps", "2", "--listener", "Web Services=127.0.0.1:*",
              "--env", "DD_APPFILE01=APPFILE01", "--checkpoint-interval", "1", *settings)
    node.esrt("casstart", "-r", NAME, "--wait")
    node.esrt("deploy", str(srv01_car), "--server", NAME)
    node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", NAME)
    return Region(node, NAME, node.region_status(NAME)), node.home / "servers" / NAME / "data"


def call_until(client, predicate, what, limit=50000):
    """Call CBLAPP01 (with idempotency keys: their stored replies make the log grow faster)
    until predicate(); return the last counter."""
    for _ in range(limit):
        counter = client.call("srv01.CBLAPP01", idempotency_key=uuid.uuid4().hex)["LK-COUNTER"]
        if predicate():
            return counter
    raise AssertionError(f"{limit} calls and still not {what}")


def test_a_busy_region_removes_the_log_files_recovery_no_longer_needs(node, srv01_car):
    region, data = start_region(node, srv01_car)
    with Client(region.url) as client:
        call_until(client, lambda: "log.0000000004" in log_files(data),
                   "four log files written")
        # SEP 1 checkpoints every second between calls: the first files go.
        last = call_until(client, lambda: "log.0000000001" not in log_files(data),
                          "the first log file removed")
    assert len(log_files(data)) <= 3, log_files(data)

    # Recovery needs only what is left: after a crash (every process of the region killed)
    # the counter goes on where it was.
    node.esrt("casstop", "-r", NAME, "--force")
    node.esrt("casstart", "-r", NAME, "--wait")
    region = Region(node, NAME, node.region_status(NAME))
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == last + 1


def test_keep_logs_keeps_every_log_file(node, srv01_car):
    region, data = start_region(node, srv01_car, "--keep-logs")
    with Client(region.url) as client:
        call_until(client, lambda: "log.0000000004" in log_files(data),
                   "four log files written")
        # Checkpoints go on (each second, between calls), but remove nothing.
        first = last_checkpoint(data)
        call_until(client, lambda: last_checkpoint(data) != first, "a later checkpoint")
    assert log_files(data)[0] == "log.0000000001"


def last_checkpoint(data):
    """Berkeley DB's "time of last checkpoint" of the environment in `data`."""
    stat = subprocess.run(["db5.3_stat", "-t", "-h", str(data)], capture_output=True,
                          text=True, check=True).stdout
    return [line for line in stat.splitlines() if "last checkpoint" in line]
