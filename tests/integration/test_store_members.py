"""One server on two nodes sharing a PostgreSQL store: the same region file started on both,
a package deployed on one reaching the other, and each node's `esrt server status`, admin UI
and API listing both members, a lost one and one that left.

The two nodes are two ESRT_HOMEs with their own mfds on this machine; what they share is only
the store, as two machines would.
"""

import json
import urllib.request

import pytest

from esrt.client import Client
from esrt.node.members import MemberStore, member_name

from conftest import EXAMPLES, wait_for

pytestmark = pytest.mark.postgresql

SERVICE = "srv01.CBLAPP01"


def _url(node):
    return "http://" + node.region_status("ESSRV01")["listeners"][0]["address"]


def _members(node):
    with urllib.request.urlopen(node.mfds_url + "/api/servers/ESSRV01/members",
                                timeout=10) as answer:
        return json.loads(answer.read())


def _status_lines(node):
    return node.esrt("server", "status", "ESSRV01").stdout.splitlines()


def test_one_region_file_on_two_nodes(tmp_path, node, other_node, srv01_car, pg_store):
    node.esrt("server", "create", "ESSRV01", "--seps", "2", "--listener",
              "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01",
              "--store", pg_store)
    region_file = tmp_path / "essrv01.json"
    region_file.write_text(node.esrt("server", "export", "ESSRV01").stdout)
    other_node.esrt("server", "import", str(region_file))
    for each in (node, other_node):
        each.esrt("casstart", "-r", "ESSRV01", "--wait")
    here, there = member_name(node.home), member_name(other_node.home)

    # Deployed on one node, the package reaches the other through the store.
    answer = node.esrt("deploy", str(srv01_car), "--server", "ESSRV01").stdout
    assert "stored in its PostgreSQL store" in answer
    node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", "ESSRV01")
    wait_for(lambda: SERVICE in other_node.region_status("ESSRV01").get("services", []),
             "the other node's region to serve the package deployed on the first")
    assert [p["package"] for p in _packages(other_node)] == ["srv01"]
    counters = []
    for each in (node, other_node, node, other_node):
        with Client(_url(each)) as client:
            counters.append(client.call(SERVICE)["LK-COUNTER"])
    assert counters == [0, 1, 2, 3]

    # Both nodes list both members, with their addresses.
    def both_serving(each):
        members = _members(each)["members"] or []
        return sorted(m["member"] for m in members if m["state"] == "Started"
                      and not m["lost"]) == sorted([here, there]) and members
    for each in (node, other_node):
        members = wait_for(lambda each=each: both_serving(each), "both members in mfds's list")
        addresses = {m["member"]: m["listeners"][0]["address"] for m in members}
        assert addresses == {here: _url(node)[7:], there: _url(other_node)[7:]}

    def status_lists_both():
        lines = _status_lines(node)
        return lines[1:] == [
            "members in its store: 2 serving",
            *sorted(f"  {member}: Started (pid {pid}) on {url[7:]} (Web Services)"
                    for member, pid, url in (
                        (here, node.region_status("ESSRV01")["pid"], _url(node)),
                        (there, other_node.region_status("ESSRV01")["pid"],
                         _url(other_node))))] and lines
    lines = wait_for(status_lists_both, "`esrt server status` to list both members")
    assert lines[0].startswith("ESSRV01: Started")
    with urllib.request.urlopen(node.mfds_url + "/servers/ESSRV01?tab=members",
                                timeout=10) as page:
        html = page.read().decode()
    assert here in html and there in html and _url(other_node)[7:] in html

    # A member killed outright is shown lost; one stopped leaves the list.
    other_node.esrt("casstop", "-r", "ESSRV01", "--force")
    lost = wait_for(lambda: [m for m in _members(node)["members"] if m["lost"]],
                    "the killed member to be shown lost")
    assert [m["member"] for m in lost] == [there]
    assert wait_for(lambda: "1 lost" in _status_lines(node)[1] and _status_lines(node),
                    "`esrt server status` to say one member is lost")
    other_node.esrt("casstart", "-r", "ESSRV01", "--wait")
    wait_for(lambda: both_serving(node), "the restarted member to serve again")
    other_node.esrt("casstop", "-r", "ESSRV01")
    wait_for(lambda: [m["member"] for m in _members(node)["members"]] == [here],
             "the member stopped cleanly to leave the list")
    with Client(_url(node)) as client:
        assert client.call(SERVICE)["LK-COUNTER"] == 4


def test_a_deploy_the_store_cannot_take_is_stored_once_it_can(node, srv01_car, pg_store):
    node.esrt("server", "create", "ESSRV01", "--listener", "Web Services=127.0.0.1:*",
              "--store", pg_store + " port=1")
    result = node.esrt("deploy", str(srv01_car), "--server", "ESSRV01", check=False)
    assert result.returncode != 0
    assert "not yet stored for the members on other nodes" in result.stderr
    assert "stores it as soon as the store answers" in result.stderr
    # Installed here all the same, and not undone by the sync while the store is away.
    installed = _packages(node)
    assert [p["package"] for p in installed] == ["srv01"]
    # The store answers again: mfds stores the package there, and keeps its own.
    node.esrt("server", "set", "ESSRV01", f"store={pg_store}")
    store = MemberStore(pg_store)
    try:
        stored = wait_for(lambda: store.packages("ESSRV01"), "the package to be stored")
    finally:
        store.close()
    assert stored["srv01"][0] == installed[0]["sha256"]
    assert _packages(node) == installed


def _packages(node):
    with urllib.request.urlopen(node.mfds_url + "/api/servers/ESSRV01/packages",
                                timeout=10) as answer:
        return json.loads(answer.read())["packages"]
