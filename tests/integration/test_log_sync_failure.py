"""A log sync that fails (a disk going bad): nobody is told of a commit before it is known to
be on disk, the region recovers its data environment by itself, and each call in flight is
answered with what recovery kept.

SEPs commit without waiting for the disk and sync the log once per batch (group commit); here
that sync fails with EIO, injected by a small preload (tests/cobol/faults/failing_sync.c) in the
SEPs only, while a flag file exists.
"""

import uuid

import pytest

from esrt.client import Client

from conftest import ROOT, compile_preload, start_cblapp01_region

PRELOAD_SOURCE = ROOT / "tests" / "cobol" / "faults" / "failing_sync.c"


@pytest.fixture
def failing_sync(tmp_path):
    return compile_preload(PRELOAD_SOURCE, tmp_path), tmp_path / "fail-sync"


def test_a_failed_log_sync_is_reported_and_the_region_recovers(node, srv01_car, failing_sync):
    library, flag = failing_sync
    region = start_cblapp01_region(node, srv01_car, name="ESSYNC", extra=(
        "--env", f"LD_PRELOAD={library}", "--env", f"ESRT_TEST_FAIL_SYNC={flag}"))
    key = str(uuid.uuid4())
    with Client(region.url, timeout=60) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
        flag.touch()
        # The SEP cannot sync its commit: it does not answer, gives up the environment and
        # exits; the region recovers it from the disk, where the commit had been written
        # (only its sync failed), and answers the call with the reply committed with it.
        assert client.call("srv01.CBLAPP01", idempotency_key=key)["LK-COUNTER"] == 1
        flag.unlink()
        assert client.call("srv01.CBLAPP01", retry_for=60)["LK-COUNTER"] == 2
        # Exactly once: the key finds the first call's reply.
        assert client.call("srv01.CBLAPP01", idempotency_key=key)["LK-COUNTER"] == 1
    console = (node.home / "servers" / region.name / "logs" / "console.log").read_text()
    assert "could not be written to disk" in console  # the SEP's own words, on stderr
    assert "ESDB0006W" in console  # recovery of the data environment
    assert "ESSI1707I" in console  # the committed reply returned for the SEP that gave up
