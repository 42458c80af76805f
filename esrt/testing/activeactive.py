"""Active-active regions on a highly available PostgreSQL, on a three-node lab: what the failover
tests of issue 16 (tests/failover/test_active_active.py) and benchmarks/bench_db_failover.py
share.

node1 and node2 each run region ESAA from one region file, both serving at once; the files
and the replies are in PostgreSQL, whose primary starts on node3 with its standbys on node1
and node2 (a commit waits for one of them), made highly available by an engine of
esrt.testing.pgha (PAF) or esrt.testing.patroni. Callers call CBLAPP01 (one shared counter)
and XFER (transfers between many accounts) through both regions, moving to the other when
one fails, with their idempotency keys; Callers.check() says whether any acknowledged call
was lost or applied twice, Callers.longest_call() what a caller saw of a fault.
"""

import contextlib
import json
import random
import threading
import time
import uuid

from esrt.client import Client
from esrt.settings import validate_server
from esrt.testing.apps import PROGRAMS, build_car
from esrt.testing.lab import Lab, lab_unavailable_reason
from esrt.testing.labhost import wait_until
from esrt.testing.pgha import ReplicatedPostgres
from esrt.testing.recorder import RecordingClient

SERVER = "ESAA"
PORT = 9003
ACCOUNTS = 200
# One attempt may take this long before the client moves to the other region: a powered-off
# node answers nothing, so this bounds what its death costs a caller.
ATTEMPT_TIMEOUT = 0.5
# corosync for these three nodes: a token timeout of 0.6 s, without the 0.65 s corosync adds
# (token_coefficient) for every node beyond two, so a dead node leaves the membership 1.3 s
# after its last token (token, then consensus at 1.2 times it), where the lab's 1 s token took
# 2.2 s. That is the largest part of a database failover, whose target is under 5 s also when
# the dead node was Pacemaker's DC (an election, then the new DC's one-second wait for its CIB
# updates); on one LAN, corosync running at real-time priority, 0.6 s of silence is not a busy
# node.
TOTEM = {"token": 600, "token_coefficient": 0}


class CallsLost(AssertionError):
    """An acknowledged call was lost or applied twice, or a call failed for good."""


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
        if not wait_until(lambda: all(len(t.replies) >= n
                                      for t, n in zip(self.transfers, wanted)), 60, 0.05):
            raise TimeoutError("the transfers did not get going within 60 s")

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
        """Raise CallsLost unless every call succeeded, none was lost, none applied twice."""
        operations = [op for r in self.recorders for op in r.operations()]
        failed = [op for op in operations if op.outcome == "error"]
        failed += [error for t in self.transfers for error in t.errors]
        if failed:
            raise CallsLost(f"{len(failed)} calls failed for good, the first: {failed[0]}")
        counters = sorted(op.counter for op in operations if op.outcome == "ok")
        if len(counters) != len(set(counters)):
            raise CallsLost("a CBLAPP01 counter was acknowledged twice")
        if counters != list(range(counters[0], counters[0] + len(counters))):
            raise CallsLost("an acknowledged CBLAPP01 counter is missing")
        numbers = {}
        for transfers in self.transfers:
            for source, target, _, reply in transfers.replies:
                if reply["LK-RESULT"] != "OK":
                    raise CallsLost(f"XFER answered {reply}")
                numbers.setdefault(source, []).append(reply["LK-FROM-UPDATES"])
                numbers.setdefault(target, []).append(reply["LK-TO-UPDATES"])
        # These callers are the only ones: each account's numbers are consecutive.
        for account, seen in numbers.items():
            seen.sort()
            if seen != list(range(seen[0], seen[0] + len(seen))):
                raise CallsLost(f"account {account}: a transfer lost or applied twice ({seen})")


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
        if not wait_until(lambda: self.serving(node), timeout):
            raise TimeoutError(f"{node.name}'s region does not serve within {timeout} s")


def unavailable_reason(engine=ReplicatedPostgres):
    """Why running_active_active cannot run here with `engine`, or None."""
    return lab_unavailable_reason() or engine.unavailable_reason()


@contextlib.contextmanager
def running_active_active(work, engine=ReplicatedPostgres, totem=TOTEM):
    """A three-node lab with the database (made highly available by `engine`, a subclass of
    esrt.testing.pgha.LabPostgres) and a region on node1 and node2 (see the module);
    `totem`: the lab's corosync settings (esrt.testing.lab.Lab)."""
    cars = [build_car("CBLAPP01", workdir=work / "srv01"), build_car("XFER", work / "xfer")]
    with Lab(nodes=3, totem=totem) as lab:
        database = engine(lab, primary=lab.nodes[2]).start()
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
