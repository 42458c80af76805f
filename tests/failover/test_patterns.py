"""The report's failover patterns 1-5 and 7-9 on a real two-node Pacemaker + Corosync lab.

Every test runs CBLAPP01 (and CBLAPP02 in pattern 7) as a resource group: relocatable IP +
shared disk (region file, deploy package, data environment, CASROOT logs) + ocf:esrt:region,
preferred on node1. A RecordingClient calls the group's address continuously with idempotency
keys, as the report's Java client did. Each test injects the pattern's fault and asserts that
the service resumes on the other node, that acknowledged counters are distinct and that none
is skipped (the in-flight call of the report's pattern 5, counter 339, must not be lost); it
prints the client-visible outage. Pattern 6 (pre-started standby) is in test_pattern6_standby.py.
"""

import time

from esrt.testing import faults
from esrt.testing.apps import make_service

from .failover_helpers import TAKEOVER_TIMEOUT, assert_takeover


def test_pattern1_manual_switch_over_and_back(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    since = time.time()
    lab.move(service.group, node2)
    assert_takeover(calls, since, node1, node2, report_outage, "switch-over node1 -> node2")
    since = time.time()
    lab.move(service.group, node1)
    calls.wait_for_calls(5, host=node1.name, timeout=TAKEOVER_TIMEOUT)
    report_outage("switch-back node2 -> node1", calls.outage(since))
    assert calls.duplicates() == [] and calls.gaps() == []
    assert service.node() == node1


def test_pattern2_power_failure_of_node1(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    since = faults.power_off(lab, node1)
    assert_takeover(calls, since, node1, node2, report_outage, "power-off of node1")
    assert lab.wait_group(service.group) == node2
    # Pacemaker itself fenced the lost node before taking its resources over.
    assert "off node1" in lab.fence_events()


def test_pattern3_lan_failure_of_node1(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    since = faults.lan_failure(lab, node1)
    assert_takeover(calls, since, node1, node2, report_outage, "LAN of node1 unplugged")
    # Only the node that lost its LAN was fenced (never the healthy one).
    assert lab.fence_events() == ["off node1"]
    assert not node1.powered or lab.locate(service.group) == node2


def test_pattern4_mfds_killed_is_detected_by_the_monitor(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    # The report's monitor script failed the node when mfds was down: the agent's check_mfds.
    service.set_region_parameter("check_mfds", "true")
    lab.crm("crm_resource", "--wait", "--timeout", "60s", timeout=90)
    lab.wait_group(service.group, on=node1)
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    since = faults.kill_mfds(node1)
    assert_takeover(calls, since, node1, node2, report_outage, "mfds of node1 killed")
    # The monitor failed the group; node1 itself stayed up (no fencing for an application).
    assert node1.powered and lab.fence_events() == []
    dump = node1.esrt("mdump", check=False)
    assert "SERVER_DOWN" in dump.stdout


def test_pattern5_switch_over_while_calling_loses_no_call(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(20, host=node1.name)
    since = time.time()
    lab.move(service.group, node2)
    assert_takeover(calls, since, node1, node2, report_outage, "switch-over while calling")
    failed = [r for r in calls.snapshot() if r.outcome != "ok" and r.time > since]
    # The client did see the switch-over (its call in flight failed and was sent again with the
    # same idempotency key), and still no counter is missing: the report lost 339 here.
    assert failed, "the client never noticed the switch-over"
    counters = calls.counters()
    assert counters == list(range(counters[0], counters[0] + len(counters)))


def test_pattern7_mutual_standby_both_ways(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    one = make_service(lab, "grp1", 101, "ESHA01", "CBLAPP01", prefer=node1)
    two = make_service(lab, "grp2", 102, "ESHA02", "CBLAPP02", prefer=node2)
    calls1 = recorder(one.url, service=one.service)
    calls2 = recorder(two.url, service=two.service)
    calls1.wait_for_calls(10, host=node1.name)
    calls2.wait_for_calls(10, host=node2.name)
    # node1's server fails: node2 takes it over while keeping its own.
    since = faults.kill_region(node1, one.region)
    assert_takeover(calls1, since, node1, node2, report_outage, "ESHA01 node1 -> node2")
    assert calls2.hosts() == [node2.name] and calls2.gaps() == []
    # Then node2's own server fails: node1 takes that one over.
    since = faults.kill_region(node2, two.region)
    assert_takeover(calls2, since, node2, node1, report_outage, "ESHA02 node2 -> node1")
    assert lab.locate(one.group) == node2 and lab.locate(two.group) == node1
    assert calls1.gaps() == [] and calls1.duplicates() == []


def _files_named(node, directory, pattern):
    result = node.run(["find", str(directory), "-name", pattern], check=False)
    return [line for line in result.stdout.splitlines() if line]


def test_pattern8_deploy_packages_on_the_shared_disk(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    since = faults.kill_region(node1, service.region)
    assert_takeover(calls, since, node1, node2, report_outage, "region of node1 killed")
    # node2 serves the package installed on the shared disk; no node has a copy of its own.
    deploy = service.mountpoint / "deploy"
    assert node2.run(["ls", str(deploy)]).stdout.split() == ["srv01"]
    assert str(deploy) in service.read_on(node2, "logs/console.log")
    for node in (node1, node2):
        assert _files_named(node, node.home, "srv01*") == [], f"{node.name} has a copy"


def test_pattern9_logs_on_the_shared_disk(lab, recorder, report_outage):
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    node1_log = service.read_on(node1, "logs/console.log")
    assert "ESHA01" in node1_log
    since = faults.kill_region(node1, service.region)
    assert_takeover(calls, since, node1, node2, report_outage, "region of node1 killed")
    # node2's region renamed node1's console.log to console.bak when it started.
    backup = service.read_on(node2, "logs/console.bak")
    assert backup.startswith(node1_log)
    current = service.read_on(node2, "logs/console.log")
    assert current and not current.startswith(node1_log)


def test_hung_region_is_detected_by_the_health_probe(lab, recorder, report_outage):
    """Beyond the report: a frozen region (SIGSTOP) keeps its processes and its "Started"
    status; the agent's health probe fails it and the group moves."""
    node1, node2 = lab.nodes
    service = make_service(lab, "grp1", 101, "ESHA01")
    calls = recorder(service.url)
    calls.wait_for_calls(10, host=node1.name)
    since = faults.hang_region(node1, service.region)
    assert_takeover(calls, since, node1, node2, report_outage, "region of node1 frozen")
    assert node1.powered and lab.fence_events() == []
    # The frozen processes were killed, not left behind on node1.
    assert node1.esrt("server", "status", service.region, check=False).returncode != 0
