"""Active-active regions on PostgreSQL, on a real three-node Pacemaker lab (issue 16, items 5
and 6).

node1 and node2 each run region ESAA from one region file, both serving at once; the files
and the replies are in PostgreSQL, whose primary starts on node3 with its standbys on node1
and node2 (streaming, a commit waits for one of them), promoted by Pacemaker's PAF agent
behind a floating address (esrt.testing.pgha). Recording clients call CBLAPP01 (one shared
counter) and XFER (transfers between many accounts) through both regions, moving to the other
when one fails, with their idempotency keys. Each fault is followed by the same checks: no
acknowledged call lost or applied twice (the counters acknowledged are gapless and unique;
every account's transfer numbers come back gapless and once each), and the longest call
(the client-visible outage) is printed.

A node powered off or cut from the LAN leaves a lab of three nodes with two, too few to lose
another (quorum): those faults get a lab each. The others share one, the database primary's
node going last. Last, a lab of its own sees the primary's node die, come back as a standby,
and the promoted primary's node die in turn.
"""

import contextlib
import time

import pytest

from esrt.testing import faults
from esrt.testing.activeactive import (SERVER, Callers, running_active_active,
                                       unavailable_reason)

# Issue 16's target when a region or its node dies: its callers move to the other region
# within a second. (The one for the database primary's node, under 5 s, is measured and
# printed here, not asserted: about one run in ten, PAF refuses the standby Pacemaker chose
# because the other had received more WAL, and the second round takes about 8 s; README,
# "Files in PostgreSQL".)
REGION_TARGET = 1.0


@contextlib.contextmanager
def active_active_lab(work):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with running_active_active(work) as setup:
        yield setup


@pytest.fixture
def own_active_active(tmp_path):
    """A lab of the test's own, for a fault that leaves too few nodes for another one."""
    with active_active_lab(tmp_path) as setup:
        yield setup


@pytest.fixture(scope="module")
def active_active(tmp_path_factory):
    """The lab shared by the tests whose faults leave it whole enough for the next."""
    with active_active_lab(tmp_path_factory.mktemp("active-active")) as setup:
        yield setup


@pytest.fixture
def callers(request):
    setup = request.getfixturevalue(
        "own_active_active" if "own_active_active" in request.fixturenames else "active_active")
    made = Callers(setup.urls)
    try:
        made.wait_for_calls()
        yield made
    finally:
        made.stop()


def test_power_off_of_a_region_node(own_active_active, callers, report_outage):
    lab, node = own_active_active.lab, own_active_active.region_nodes[1]
    since = faults.power_off(lab, node)
    callers.wait_for_calls()
    callers.stop()
    outage = callers.longest_call(since)
    report_outage("power-off of node2 (region, standby)", outage)
    callers.check()
    assert outage < REGION_TARGET


def test_lan_failure_of_a_region_node(own_active_active, callers, report_outage):
    lab, node = own_active_active.lab, own_active_active.region_nodes[0]
    since = faults.lan_failure(lab, node)
    callers.wait_for_calls()
    deadline = time.monotonic() + 60
    while node.powered:
        assert time.monotonic() < deadline, "the node that lost its LAN was not fenced"
        time.sleep(0.2)
    callers.wait_for_calls()
    callers.stop()
    report_outage("LAN of node1 unplugged", callers.longest_call(since))
    callers.check()


def test_sep_killed_while_holding_row_locks_costs_nothing(active_active, callers,
                                                           report_outage):
    node = active_active.region_nodes[0]
    since = time.time()
    for number in (1, 2, 1, 2):
        faults.kill_sep(node, SERVER, number)
        time.sleep(0.5)
    callers.wait_for_calls()
    callers.stop()
    report_outage("4 SEPs killed on node1", callers.longest_call(since))
    callers.check()


def test_a_region_killed_costs_its_callers_under_a_second(active_active, callers,
                                                          report_outage):
    node = active_active.region_nodes[0]
    since = faults.kill_region(node, SERVER)
    callers.wait_for_calls()
    callers.stop()
    try:
        outage = callers.longest_call(since)
        report_outage("region on node1 killed", outage)
        callers.check()
        assert outage < REGION_TARGET
    finally:
        # The next tests share the lab: they need both regions.
        active_active.start_region(node)
        active_active.wait_serving(node)


def test_power_off_of_the_database_primary_node(active_active, callers, report_outage):
    lab, database = active_active.lab, active_active.database
    primary = database.wait_primary(timeout=60)
    role = " and Pacemaker's DC" if lab.designated_controller() == primary.name else ""
    since = faults.power_off(lab, primary)
    promoted = database.wait_primary(not_on=primary, timeout=60, standbys_ready=False)
    promoted_after = time.time() - since
    callers.wait_for_calls()
    callers.stop()
    outage = callers.longest_call(since)
    report_outage(f"power-off of {primary.name} (database primary{role}; {promoted.name} "
                  f"promoted, serving with a synchronous standby {promoted_after:.1f} s after)",
                  outage)
    callers.check()


def test_a_database_node_rejoins_and_the_next_failover_loses_nothing(own_active_active,
                                                                      callers, report_outage):
    """The primary's node dies and comes back as a standby (ReplicatedPostgres.rejoin: a copy of the
    promoted primary's data); then the promoted primary's node dies too, a region's node, its
    region with it. Through both: no acknowledged call lost or applied twice."""
    lab, database = own_active_active.lab, own_active_active.database
    first = database.wait_primary(timeout=60)
    faults.power_off(lab, first)
    second = database.wait_primary(not_on=first, timeout=60, standbys_ready=False)
    database.rejoin(first)
    callers.wait_for_calls()
    since = faults.power_off(lab, second)
    promoted = database.wait_primary(not_on=second, timeout=60, standbys_ready=False)
    callers.wait_for_calls()
    callers.stop()
    report_outage(f"power-off of {second.name} (promoted primary and a region) after {first.name}"
                  f" rejoined; {promoted.name} promoted", callers.longest_call(since))
    callers.check()
