"""A SEP that dies holding one of Berkeley DB's internal mutexes costs a recovery, not the region.

Berkeley DB 5.3 cannot tell that such a mutex is orphaned, so failchk, which the region runs
after every SEP death, would wait for it for ever and the region with it. The region runs
failchk in a child process it gives up after a time, then recovers the environment, which
frees every mutex. The death is injected by a small preload in the SEPs
(tests/cobol/faults/dies_holding_mutex.c): the SEP that starts while a flag file exists dies
as it opens the environment, holding the first mutex it took.
"""

import os
import signal
import time
import uuid

import pytest

from esrt.client import Client

from conftest import ROOT, compile_preload, start_cblapp01_region
from test_transactions import sep_pids

PRELOAD_SOURCE = ROOT / "tests" / "cobol" / "faults" / "dies_holding_mutex.c"


@pytest.fixture
def dies_holding_mutex(tmp_path):
    return compile_preload(PRELOAD_SOURCE, tmp_path), tmp_path / "die-holding-mutex"


def test_a_sep_dying_inside_berkeley_db_costs_a_recovery_not_the_region(node, srv01_car,
                                                                         dies_holding_mutex):
    library, flag = dies_holding_mutex
    region = start_cblapp01_region(node, srv01_car, name="ESMUTEX", extra=(
        "--env", f"LD_PRELOAD={library}", "--env", f"ESRT_TEST_DIE_HOLDING_MUTEX={flag}"))
    console_log = node.home / "servers" / region.name / "logs" / "console.log"

    def recovered_again():
        console = console_log.read_text()
        return ("failchk did not finish" in console
                and console.rindex("ESDB0001I") > console.index("failchk did not finish"))

    key = str(uuid.uuid4())
    with Client(region.url, timeout=60) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
        flag.touch()
        # Its replacement is the SEP that starts while the flag exists.
        os.kill(sep_pids(region)[0], signal.SIGKILL)
        counters = [client.call("srv01.CBLAPP01", idempotency_key=key, retry_for=60)
                    ["LK-COUNTER"]]
        # Calls go on meanwhile: one that meets the region waiting for failchk (its reactor
        # waits too, for at most failchk_timeout) or recovering is answered afterwards.
        deadline = time.monotonic() + 120
        while not recovered_again() and time.monotonic() < deadline:
            counters.append(client.call("srv01.CBLAPP01", retry_for=60)["LK-COUNTER"])
        assert not flag.exists(), "no SEP started again after the kill"
        assert recovered_again(), "the region did not recover from the SEP's death"
        counters += [client.call("srv01.CBLAPP01", retry_for=60)["LK-COUNTER"]
                     for _ in range(3)]
        assert counters == list(range(1, len(counters) + 1))
        # Exactly once: the key finds the first call's reply.
        assert client.call("srv01.CBLAPP01", idempotency_key=key)["LK-COUNTER"] == 1
    assert "ESDB0006W" in console_log.read_text()  # every SEP stopped for the recovery
