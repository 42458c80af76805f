"""A full data disk: calls that cannot commit fail with a clear error, nothing half-done is
kept, the region stays up, and service resumes by itself once there is space again.

The data directory is a small tmpfs of its own (mounting one needs root, as the cluster tests
do), filled with a file as esrt.testing.faults.fill_disk does on a shared disk.
"""

import json
import os
import subprocess

import pytest

from esrt.client import Client, ServiceError
from esrt.testing import faults

from conftest import EXAMPLES, Region

NAME = "ESFULL"


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the data directory needs root")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mountpoint)],
                   check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_disk_fails_calls_cleanly_and_service_resumes(node, srv01_car, small_disk,
                                                             tmp_path):
    node.esrt("server", "create", NAME, "--seps", "2", "--listener", "Web Services=127.0.0.1:*",
              "--env", "DD_APPFILE01=APPFILE01")
    definition = json.loads(node.esrt("server", "export", NAME).stdout)
    definition["data_dir"] = str(small_disk / "data")
    region_file = tmp_path / "full.json"
    region_file.write_text(json.dumps(definition))
    node.esrt("server", "import", str(region_file))
    node.esrt("casstart", "-r", NAME, "--wait")
    node.esrt("deploy", str(srv01_car), "--server", NAME)
    node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", NAME)
    region = Region(node, NAME, node.region_status(NAME))

    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
        faults.fill_disk(None, str(small_disk))
        last = 0
        # The log's current page still has room for a few commits; then they fail.
        for _ in range(5000):
            try:
                last = client.call("srv01.CBLAPP01")["LK-COUNTER"]
            except ServiceError as exc:
                failure = exc
                break
        else:
            raise AssertionError("5000 calls committed on a full disk")
        assert failure.status == 500 and failure.code == "transaction_failed"
        assert "No space left on device" in failure.message
        # The region is still serving (it answers, just cannot commit).
        assert node.esrt("server", "status", NAME).returncode == 0
        with pytest.raises(ServiceError):
            client.call("srv01.CBLAPP01")

        faults.free_disk(None, str(small_disk))
        # Nothing of the failed calls was kept: the counter goes on from the last committed.
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == last + 1
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == last + 2
