"""A data disk that returns I/O errors, or turns slow, under a region serving several callers.

The region's data directory sits on esrt-faultfs (esrt.testing.faultfs), which fails or delays
its I/O on command. With the disk failing, every call is answered promptly with an error that
says so (none waits for its client's time-out), the region does not shut itself down, and once
the disk works again it serves by itself with no committed call lost or counted twice. With
the disk slow, calls are answered and counted as usual and no SEP is killed for it.
"""

import json
import os
import threading
import time

import pytest

from esrt.client import Client, ServiceError
from esrt.testing import faultfs, faults

from conftest import EXAMPLES, Region, call_outcome, wait_for

NAME = "ESIOERR"
# Generous: a call that reaches it was left hanging by the region, not merely slowed down.
CLIENT_TIMEOUT = 15.0


@pytest.fixture
def region_on_faultfs(node, srv01_car, tmp_path):
    """(region, disk): region NAME with 4 SEPs, its data directory on an esrt-faultfs mount,
    CBLAPP01 deployed and its counter at 0. The region is stopped before the disk is
    unmounted, whatever happens."""
    reason = faultfs.unavailable_reason()
    if reason:
        pytest.skip(reason)
    disk = faultfs.FaultFS(tmp_path / "source", tmp_path / "disk", log=tmp_path / "faultfs.log")
    disk.mount()
    try:
        node.esrt("server", "create", NAME, "--seps", "4", "--listener",
                  "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01",
                  "--data-dir", str(disk.mountpoint / "data"))
        node.esrt("casstart", "-r", NAME, "--wait")
        node.esrt("deploy", str(srv01_car), "--server", NAME)
        node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", NAME)
        yield Region(node, NAME, node.region_status(NAME)), disk
    finally:
        try:
            node.stop_everything()
        finally:
            disk.unmount()


class Callers:
    """`count` threads calling CBLAPP01 in a loop until stop(), each outcome recorded:
    "ok", "RETURN-CODE n", "STATUS code: message" or "no answer: ..." with the time it took."""

    def __init__(self, url, count=4):
        self.url = url
        self.outcomes = []   # (outcome, seconds, time it was answered)
        self.counters = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._loop) for _ in range(count)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        self._stopping.set()
        for thread in self._threads:
            thread.join()

    def _loop(self):
        with Client(self.url, timeout=CLIENT_TIMEOUT) as client:
            while not self._stopping.is_set():
                started = time.monotonic()
                outcome, counter = call_outcome(client)
                if outcome.startswith("no answer"):
                    client.close()
                with self._lock:
                    self.outcomes.append((outcome, time.monotonic() - started, time.time()))
                    if counter is not None:
                        self.counters.append(counter)
                if not outcome.startswith(("ok", "RETURN-CODE")):
                    # A failing call comes back at once; do not spin on it.
                    time.sleep(0.01)

    def failures(self):
        return [outcome for outcome, _, _ in self.outcomes if outcome != "ok"]

    def oks_since(self, moment):
        return sum(1 for outcome, _, answered in self.outcomes
                   if outcome == "ok" and answered > moment)


def served(url):
    """(LK-COUNTER,) of one call that counted, or None while the region cannot count."""
    try:
        with Client(url, timeout=CLIENT_TIMEOUT) as client:
            reply = client.call("srv01.CBLAPP01")
    except ServiceError:
        return None
    return (reply["LK-COUNTER"],) if reply.return_code == 0 else None


def console_of(node):
    return (node.home / "servers" / NAME / "logs" / "console.log").read_text()


def assert_counted_exactly(callers, next_counter):
    """CBLAPP01 answers the counter it found and adds one: every acknowledged counter is
    distinct and below the next, and none is lost (a call in doubt may account for one)."""
    counters = callers.counters
    in_doubt = sum("in_doubt" in failure for failure in callers.failures())
    assert len(set(counters)) == len(counters), f"a counter was given twice: {counters}"
    assert all(number < next_counter for number in counters), (counters, next_counter)
    assert len(counters) <= next_counter <= len(counters) + in_doubt, (
        f"{len(counters)} calls counted and {in_doubt} in doubt, but the next call found "
        f"{next_counter}: a committed call was lost or one counted twice")


def test_io_errors_under_load_are_answered_and_service_comes_back(node, region_on_faultfs):
    region, disk = region_on_faultfs
    data = disk.mountpoint / "data"
    statuses = []
    with Callers(region.url) as callers:
        wait_for(lambda: callers.oks_since(0) >= 20, "calls to commit before the fault")
        failed_at = faults.io_errors(None, data)
        # Long enough for SEPs to die, recovery to fail and be retried with its back-off.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            statuses.append(node.region_status(NAME).get("mfServerStatus"))
            time.sleep(0.2)
        assert disk.state()["failed"] > 0, "the disk was never asked for anything"
        healed_at = faults.heal_io(None, data)
        try:
            wait_for(lambda: callers.oks_since(healed_at) >= 20, "service to resume by itself "
                     "after the disk was healed", limit=90)
        except AssertionError:
            raise AssertionError(f"no service after healing; console:\n"
                                 f"{console_of(node)[-6000:]}") from None
    console = console_of(node)
    late = [(outcome, round(seconds, 1)) for outcome, seconds, _ in callers.outcomes
            if seconds > CLIENT_TIMEOUT / 3 or outcome.startswith("no answer")]
    assert not late, f"calls left waiting: {late[:10]}\n{console[-4000:]}"
    assert "ESCD0107E" not in console, console[-4000:]
    failures = [outcome for outcome, _, answered in callers.outcomes
                if outcome != "ok" and answered > failed_at]
    assert failures, "every call committed on a failing disk"
    # Each failure names its cause: the disk's error, a recovery under way, or a recovery that
    # failed on the still failing disk (the calls queued then are refused with that).
    unclear = sorted({failure for failure in failures
                      if "Input/output error" not in failure
                      and "the region is recovering its data environment" not in failure
                      and f"the data environment of {NAME} cannot be recovered" not in failure
                      and not failure.startswith("RETURN-CODE 8")})
    assert not unclear, unclear
    (next_counter,) = wait_for(lambda: served(region.url), "a call after the fault")
    assert_counted_exactly(callers, next_counter)
    wait_for(lambda: node.region_status(NAME).get("mfServerStatus") == "Started",
             "the region to report Started again")
    # Failed while it could not recover (so that a cluster may move it), not before.
    assert "Failed" in statuses, statuses


def test_slow_io_is_waited_for_and_kills_no_sep(node, region_on_faultfs):
    region, disk = region_on_faultfs
    data = disk.mountpoint / "data"
    with Callers(region.url) as callers:
        wait_for(lambda: callers.oks_since(0) >= 20, "calls to commit before the fault")
        slowed_at = faults.slow_io(None, data, 150)
        wait_for(lambda: callers.oks_since(slowed_at) >= 20, "calls to commit on a slow disk")
        assert disk.state()["delayed"] > 0, "the disk was never asked for anything"
        faults.heal_io(None, data)
    console = console_of(node)
    assert not callers.failures(), (sorted(set(callers.failures())), console[-4000:])
    (next_counter,) = served(region.url)
    assert_counted_exactly(callers, next_counter)
    assert next_counter == len(callers.counters)
    # ESSI1700W: a SEP ended unexpectedly; ESSI1703W: one was killed for running too long.
    for message in ("ESSI1700W", "ESSI1703W", "ESSI1708W", "ESDB0006W", "ESCD0107E"):
        assert message not in console, (message, console[-4000:])
    assert node.region_status(NAME)["mfServerStatus"] == "Started"


def test_a_region_started_on_a_failing_disk_waits_for_it_and_then_serves(node,
                                                                         region_on_faultfs):
    """A restart (by an operator, or a cluster trying the same node again) while the disk
    fails: the region used to start its SEPs without a recovered environment, every one of
    them failed to open it, and the region shut itself down for good (ESCD0107E)."""
    region, disk = region_on_faultfs
    node.esrt("casstop", "-r", NAME)
    faults.io_errors(None, disk.mountpoint / "data")
    started = node.esrt("casstart", "-r", NAME, "--wait", check=False)
    assert started.returncode != 0
    assert "cannot be recovered" in started.stdout + started.stderr, started
    status = node.region_status(NAME)
    assert status.get("mfServerStatus") == "Failed", status
    region = Region(node, NAME, status)
    with Client(region.url, timeout=CLIENT_TIMEOUT) as client:
        began = time.monotonic()
        with pytest.raises(ServiceError) as refused:
            client.call("srv01.CBLAPP01")
        assert time.monotonic() - began < 5
    assert refused.value.status == 503, refused.value
    # The recovery either reads the I/O error or, touching a mapped page, dies of SIGBUS.
    assert ("Input/output error" in refused.value.message
            or "died of SIGBUS: its data disk is full or failing" in refused.value.message), \
        refused.value.message
    time.sleep(2)   # a retry or two of recovery, failing
    faults.heal_io(None, disk.mountpoint / "data")
    (counter,) = wait_for(lambda: served(region.url), "service once the disk works", limit=60)
    assert counter == 0   # nothing was lost or applied while it could not serve
    wait_for(lambda: node.region_status(NAME).get("mfServerStatus") == "Started",
             "the region to report Started")
    assert "ESCD0107E" not in console_of(node)


def test_calls_during_a_long_recovery_are_refused_promptly_and_served_after(node,
                                                                          region_on_faultfs):
    """The region used to recover its environment on its reactor (and at start before its
    listeners): on a slow disk, calls waited unanswered until their clients gave up."""
    region, disk = region_on_faultfs
    data = disk.mountpoint / "data"
    node.esrt("casstop", "-r", NAME)
    faults.slow_io(None, data, 1500)
    node.esrt("casstart", "-r", NAME)
    status = wait_for(lambda: (lambda status: status if status.get("listeners") and
                               status["listeners"][0].get("address") else None)(
                                   node.region_status(NAME)),
                      "the region's listener")
    region = Region(node, NAME, status)
    with Client(region.url, timeout=CLIENT_TIMEOUT) as client:
        began = time.monotonic()
        with pytest.raises(ServiceError) as refused:
            client.call("srv01.CBLAPP01")
        waited = time.monotonic() - began
    assert refused.value.status == 503, refused.value
    assert "has been recovering for more than 5 s" in refused.value.message, refused.value
    assert waited < 10, waited
    assert "ESDB0008W" in console_of(node)
    # The recovery process is recorded with the region's, for casstop --force.
    record = json.loads((node.home / "servers" / NAME / "run" / "processes.json").read_text())
    assert record["recovery"] and os.path.exists(f"/proc/{record['recovery']}"), record
    # Slow is not failed: a cluster must not move a region for a long recovery.
    assert node.region_status(NAME)["mfServerStatus"] == "Starting"
    faults.heal_io(None, data)
    (counter,) = wait_for(lambda: served(region.url), "service once the recovery ended",
                          limit=120)
    assert counter == 0
    wait_for(lambda: node.region_status(NAME).get("mfServerStatus") == "Started",
             "the region to report Started")
