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
node going last.
"""

import contextlib
import json
import random
import threading
import time
import uuid
from pathlib import Path

import pytest

from esrt.client import Client
from esrt.settings import validate_server
from esrt.testing import faults
from esrt.testing.apps import PROGRAMS, build_car
from esrt.testing.lab import Lab, lab_unavailable_reason
from esrt.testing.pgha import ReplicatedPostgres
from esrt.testing.recorder import RecordingClient

SERVER = "ESAA"
PAF_AGENT = "/usr/lib/ocf/resource.d/heartbeat/pgsqlms"
PORT = 9003
ACCOUNTS = 200
# One attempt may take this long before the client moves to the other region: a powered-off
# node answers nothing, so this bounds what its death costs a caller.
ATTEMPT_TIMEOUT = 0.5
# Issue 16's target when a region dies: its callers move to the other region within a
# second. (Those for a node's power-off, under 1 s, and for the database primary's node,
# under 5 s, are measured and printed here, not yet met: see the notes.)
REGION_TARGET = 1.0


class Transfers:
    """A caller of XFER through `urls`: random transfers, each with its idempotency key and
    retried until it is answered."""

    def __init__(self, urls, seed):
        self.urls, self.seed = urls, seed
        self.replies, self.calls, self.errors = [], [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        pick = random.Random(self.seed)
        with Client(self.urls, timeout=ATTEMPT_TIMEOUT) as client:
            while not self._stop.is_set():
                source, target = pick.sample(range(1, ACCOUNTS + 1), 2)
                amount = pick.randint(1, 500)
                began = time.time()
                try:
                    reply = client.call("accounts.XFER", {
                        "LK-FROM": source, "LK-TO": target, "LK-AMOUNT": amount},
                        idempotency_key=uuid.uuid4().hex, retry_for=60.0)
                except Exception as exc:  # noqa: BLE001 - collected: the tests assert none
                    self.errors.append(repr(exc))
                    continue
                self.replies.append((source, target, amount, reply))
                self.calls.append((began, time.time()))

    def stop(self):
        self._stop.set()
        self._thread.join(70)


class Callers:
    """Two CBLAPP01 recorders (one starting on each region) and two transfer callers."""

    def __init__(self, urls):
        self.recorders = [RecordingClient(order, timeout=ATTEMPT_TIMEOUT, pause=0.02).start()
                          for order in (urls, urls[::-1])]
        self.transfers = [Transfers(order, seed) for seed, order in enumerate((urls, urls[::-1]))]

    def wait_for_calls(self, count=10):
        """Wait until every caller has had `count` more calls answered."""
        wanted = [len(t.replies) + count for t in self.transfers]
        for recorder in self.recorders:
            recorder.wait_for_calls(count, timeout=60)
        deadline = time.monotonic() + 60
        while any(len(t.replies) < n for t, n in zip(self.transfers, wanted)):
            assert time.monotonic() < deadline, "the transfers did not get going"
            time.sleep(0.05)

    def stop(self):
        """Stop every caller at once: one still calling while another gives up could leave
        a gap in the counters that is not a lost call."""
        stopping = [threading.Thread(target=caller.stop)
                    for caller in (*self.recorders, *self.transfers)]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()

    def longest_call(self, since):
        """The longest call in progress at or after `since`: what a caller saw of the fault."""
        spans = [(op.start, op.end) for r in self.recorders for op in r.operations()]
        spans += [span for t in self.transfers for span in t.calls]
        return max((end - start for start, end in spans if end >= since), default=0.0)

    def check(self):
        """Nothing lost, nothing applied twice."""
        operations = [op for r in self.recorders for op in r.operations()]
        assert [op for op in operations if op.outcome == "error"] == []
        counters = sorted(op.counter for op in operations if op.outcome == "ok")
        assert len(counters) == len(set(counters)), "a counter was acknowledged twice"
        assert counters == list(range(counters[0], counters[0] + len(counters))), \
            "an acknowledged counter is missing"
        assert [e for t in self.transfers for e in t.errors] == []
        numbers = {}
        for transfers in self.transfers:
            for source, target, _, reply in transfers.replies:
                assert reply["LK-RESULT"] == "OK"
                numbers.setdefault(source, []).append(reply["LK-FROM-UPDATES"])
                numbers.setdefault(target, []).append(reply["LK-TO-UPDATES"])
        # The callers of this test are the only ones: each account's numbers are consecutive.
        for account, seen in numbers.items():
            seen.sort()
            assert seen == list(range(seen[0], seen[0] + len(seen))), \
                f"account {account}: a transfer lost or applied twice ({seen})"


class ActiveActive:
    """The lab, its database and the region file the two region nodes run."""

    def __init__(self, lab, database, region_file):
        self.lab, self.database, self.region_file = lab, database, region_file
        self.region_nodes = lab.nodes[:2]
        self.urls = [f"http://{node.address}:{PORT}" for node in self.region_nodes]

    def start_region(self, node):
        node.esrt("casstart", "-r", SERVER, "--wait")

    @staticmethod
    def serving(node):
        """True once `node`'s region is Started with both services (its status file: a call
        of CBLAPP01 would take a counter from the recording clients)."""
        from esrt.home import Home
        from esrt.node.runs import read_json, recorded_run_dir
        status = read_json(recorded_run_dir(Home(node.home), SERVER) / "status.json") or {}
        return status.get("mfServerStatus") == "Started" and {
            "srv01.CBLAPP01", "accounts.XFER"} <= set(status.get("services") or ())

    def wait_serving(self, node, timeout=60):
        deadline = time.monotonic() + timeout
        while not self.serving(node):
            assert time.monotonic() < deadline, f"{node.name}'s region does not serve"
            time.sleep(0.2)


@contextlib.contextmanager
def running_active_active(work):
    """A three-node lab with the database and a region on node1 and node2 (see the module)."""
    reason = lab_unavailable_reason() or (
        None if Path(PAF_AGENT).is_file() else
        f"PAF is not installed ({PAF_AGENT}): run `apt-get install resource-agents-paf` "
        "(make setup does)")
    if reason:
        pytest.skip(reason)
    cars = [build_car("CBLAPP01", workdir=work / "srv01"), build_car("XFER", work / "xfer")]
    with Lab(nodes=3) as lab:
        database = ReplicatedPostgres(lab, primary=lab.nodes[2]).start()
        region_file = work / f"{SERVER}.region.json"
        region_file.write_text(json.dumps(validate_server({
            "name": SERVER, "seps": 2, "store": database.dsn,
            # The lab network is the test's own: anyone on it may call.
            "listeners": [{"name": "Web Services", "address": f"0.0.0.0:{PORT}",
                           "auth": "none"}],
            "env": {"DD_APPFILE01": "APPFILE01", "DD_ACCOUNTS": "ACCOUNTS",
                    "ACCOUNTS_COUNT": str(ACCOUNTS)}}), indent=2))
        setup = ActiveActive(lab, database, region_file)
        first = setup.region_nodes[0]
        for node in setup.region_nodes:
            node.esrt("server", "import", region_file)
            setup.start_region(node)
        for car in cars:
            first.esrt("deploy", car, "--server", SERVER)
        for program in ("CBLAPP01", "XFER"):
            app = PROGRAMS[program]
            first.esrt("batch", "run", app.path(app.batch), "--server", SERVER)
        for node in setup.region_nodes:
            # The second node installs the packages from the store within seconds.
            setup.wait_serving(node)
        yield setup


@pytest.fixture
def own_active_active(tmp_path):
    """A lab of the test's own, for a fault that leaves too few nodes for another one."""
    with running_active_active(tmp_path) as setup:
        yield setup


@pytest.fixture(scope="module")
def active_active(tmp_path_factory):
    """The lab shared by the tests whose faults leave it whole enough for the next."""
    with running_active_active(tmp_path_factory.mktemp("active-active")) as setup:
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
    since = faults.power_off(lab, primary)
    promoted = database.wait_primary(not_on=primary, timeout=60, standbys_ready=False)
    promoted_after = time.time() - since
    callers.wait_for_calls()
    callers.stop()
    outage = callers.longest_call(since)
    report_outage(f"power-off of {primary.name} (database primary; {promoted.name} "
                  f"promoted, serving with a synchronous standby {promoted_after:.1f} s after)",
                  outage)
    callers.check()
