"""sep_scheduling: a region's SEPs run under SCHED_BATCH unless the server says normal."""

import os

from conftest import start_cblapp01_region
from test_transactions import sep_pids


def policies(region):
    return {os.sched_getscheduler(pid) for pid in sep_pids(region)}


def test_seps_are_batch_scheduled_by_default_and_normal_when_set(node, srv01_car):
    default = start_cblapp01_region(node, srv01_car, name="ESBATCH")
    assert policies(default) == {os.SCHED_BATCH}
    normal = start_cblapp01_region(node, srv01_car, name="ESNORMAL",
                                   extra=("--sep-scheduling", "normal"))
    assert policies(normal) == {os.SCHED_OTHER}
