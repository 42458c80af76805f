"""A log sync that fails (a disk going bad): no caller is told "committed" for a commit that may
not be on disk, the region recovers its data environment by itself, and a retry with the same
idempotency key learns what became of the call.

SEPs commit without waiting for the disk and sync the log once per batch (group commit); here
that sync fails with EIO, injected by a small preload (tests/cobol/faults/failing_sync.c) in the
SEPs only, while a flag file exists.
"""

import subprocess
import uuid

import pytest

from esrt.client import Client, ServiceError

from conftest import ROOT, start_cblapp01_region

PRELOAD_SOURCE = ROOT / "tests" / "cobol" / "faults" / "failing_sync.c"


@pytest.fixture
def failing_sync(tmp_path):
    library = tmp_path / "failing_sync.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(PRELOAD_SOURCE),
                    "-ldl"], check=True)
    return library, tmp_path / "fail-sync"


def test_a_failed_log_sync_is_reported_and_the_region_recovers(node, srv01_car, failing_sync):
    library, flag = failing_sync
    region = start_cblapp01_region(node, srv01_car, name="ESSYNC", extra=(
        "--env", f"LD_PRELOAD={library}", "--env", f"ESRT_TEST_FAIL_SYNC={flag}"))
    key = str(uuid.uuid4())
    with Client(region.url, timeout=60) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
        flag.touch()
        with pytest.raises(ServiceError) as failure:
            client.call("srv01.CBLAPP01", idempotency_key=key)
        assert failure.value.status == 500 and failure.value.code == "transaction_failed"
        assert "could not be written to disk" in failure.value.message
        assert "same idempotency key" in failure.value.message
        flag.unlink()
        # The region recovers the environment from the disk and starts new SEPs; the commit
        # had been written, only not synced, so the call was kept: its key says so, and the
        # counter goes on after it, with nothing lost or given twice.
        replayed = client.call("srv01.CBLAPP01", idempotency_key=key, retry_for=60)
        assert replayed["LK-COUNTER"] == 1
        assert client.call("srv01.CBLAPP01", retry_for=60)["LK-COUNTER"] == 2
    console = (node.home / "servers" / region.name / "logs" / "console.log").read_text()
    assert "ESDB0006W" in console  # recovery of the data environment
    assert "its log sync failed" in console
