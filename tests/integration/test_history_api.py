"""GET /api/servers/{name}/history: the points a real region keeps for the Monitor & Control
graphs, filtered by time, refused with a reason when asked wrongly, begun anew when the region
restarts."""

import json
import urllib.error
import urllib.request

from esrt.client import Client

from conftest import start_cblapp01_region, wait_for


def history(node, name, query=""):
    with urllib.request.urlopen(f"{node.mfds_url}/api/servers/{name}/history{query}",
                                timeout=30) as answer:
        return json.loads(answer.read())


def refusal(node, name, query=""):
    try:
        history(node, name, query)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["error"]
    raise AssertionError("not refused")


def test_the_history_of_a_real_region(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car, extra=("--history-interval", "1"))
    with Client(region.url) as client:
        for _ in range(20):
            client.call("srv01.CBLAPP01")
    busy = wait_for(lambda: [p for p in history(node, region.name)["points"]
                             if p["services"].get("srv01.CBLAPP01")], "a point with the calls")
    document = history(node, region.name)
    assert document["interval"] == 1 and document["name"] == region.name
    assert sum(p["services"]["srv01.CBLAPP01"]["calls"] for p in busy) > 0
    assert all(p["p99"] >= p["p50"] >= 0 for p in busy)
    newest = document["points"][-1]["t"]
    assert all(p["t"] > newest for p in history(node, region.name, f"?since={newest}")["points"])
    assert len(history(node, region.name, "?limit=1")["points"]) == 1

    status, error = refusal(node, region.name, "?since=yesterday")
    assert status == 400 and "Unix time" in error["message"]
    status, error = refusal(node, "NOSUCH")
    assert status == 404

    # A restarted region begins a new history, as its counters do.
    node.esrt("casstop", "-r", region.name)
    node.esrt("casstart", "-r", region.name, "--wait")
    assert all(p["t"] > newest for p in history(node, region.name)["points"])
