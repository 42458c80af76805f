"""Shared pieces of the failover tests: what "the service took over" means.

The groups themselves come from esrt.testing.apps (make_service): a shared disk holding a
portable region (region file, deploy directory, data environment and CASROOT logs), a
relocatable IP and the ocf:esrt:region resource. The region's root (run directory: pids,
status) is deliberately NOT on the shared disk: pids are only meaningful on the node that
wrote them, so each node keeps its own under its ESRT_HOME.
"""

TAKEOVER_TIMEOUT = 90


def assert_takeover(recorder, since, old, new, report_outage, label):
    """Service resumed on `new` after the fault at `since`; no counter lost or repeated."""
    recorder.wait_for_calls(5, host=new.name, timeout=TAKEOVER_TIMEOUT)
    outage = recorder.outage(since)
    assert outage is not None, f"no reply from {new.name} after the fault: {recorder.hosts()}"
    report_outage(label, outage)
    successes = recorder.successes()
    before = [r for r in successes if r.time <= since]
    assert before and {r.host for r in before} == {old.name}, "service did not start on " + old.name
    assert successes[-1].host == new.name
    assert recorder.duplicates() == [], "acknowledged counters must be distinct"
    assert recorder.gaps() == [], "a counter was skipped: an acknowledged call was lost"
    return outage
