"""A real region counts its calls: GET /metrics (Prometheus) and services_stats in its status."""

import http.client
import os
import signal
import time

import pytest

from esrt.client import Client, ServiceError

from conftest import scrape_metrics, start_cblapp01_region, wait_for
from test_transactions import sep_pids

CALLS = 25


def scrape(region):
    return scrape_metrics(region.url)


def test_calls_show_in_metrics_and_in_the_status(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car, seps=2)
    service = "srv01.CBLAPP01"
    with Client(region.url) as client:
        counters = [client.call(service)["LK-COUNTER"] for _ in range(CALLS)]
    assert counters == list(range(CALLS))

    content_type, values = scrape(region)
    assert content_type.startswith("text/plain")
    assert values[("esrt_requests_total", (("code", "2xx"), ("service", service)))] == CALLS
    assert values[("esrt_request_duration_seconds_count", (("service", service),))] == CALLS
    assert values[("esrt_errors_total", (("service", service),))] == 0
    # CBLAPP01 rewrites its counter: every call is one committed transaction.
    assert values[("esrt_transactions_total", (("outcome", "committed"),))] == CALLS
    assert values[("esrt_seps", (("state", "Idle"),))] == 2
    assert values[("esrt_region_info", (("server", region.name),))] == 1
    assert values[("esrt_region_active", ())] == 1
    assert values[("esrt_activations_total", ())] == 0
    assert 0 < time.time() - values[("esrt_region_start_time_seconds", ())] < 600

    def stats():
        return (node.region_status(region.name).get("services_stats") or {}).get(service)

    shown = wait_for(lambda: (stats() or {}).get("calls") == CALLS and stats(),
                     f"services_stats to show {CALLS} calls")
    assert shown["errors"] == 0
    assert 0 < shown["avg_ms"] <= shown["p99_ms"]


def test_a_killed_sep_counts_as_a_restart(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car, seps=1)
    _, before = scrape(region)
    assert before[("esrt_sep_restarts_total", ())] == 0
    [pid] = sep_pids(region)
    os.kill(pid, signal.SIGKILL)

    def restarted():
        _, values = scrape(region)
        return values[("esrt_sep_restarts_total", ())] == 1 and values
    values = wait_for(restarted, "the SEP restart to be counted")
    assert values[("esrt_sep_restarts_total", ())] == 1
    # The replacement SEP serves again, and the call is counted.
    wait_for(lambda: sep_pids(region) and sep_pids(region) != [pid], "a new SEP")
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
    _, after = scrape(region)
    assert after[("esrt_requests_total", (("code", "2xx"), ("service", "srv01.CBLAPP01")))] == 1


def test_requests_refused_by_the_listeners_are_counted(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car, seps=1,
                                   extra=("--listener", "Binary=127.0.0.1:*,esrt"))
    (binary,) = [listener for listener in region.status["listeners"]
                 if listener["conversation"] == "esrt"]
    for url, calls in ((region.url, 3), (f"esrt://{binary['address']}", 1)):
        with Client(url) as client:
            for _ in range(calls):
                with pytest.raises(ServiceError) as refused:
                    client.call("srv01.NOSUCH")
                assert refused.value.code == "unknown_service"
    host, port = region.url[len("http://"):].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", "/services/srv01/CBLAPP01")  # wrong method
        assert connection.getresponse().status == 405
    finally:
        connection.close()

    _, values = scrape(region)
    refused = {labels: value for (name, labels), value in values.items()
               if name == "esrt_refused_total"}
    assert refused[(("code", "unknown_service"), ("conversation", "http"))] == 3
    assert refused[(("code", "method_not_allowed"), ("conversation", "http"))] == 1
    assert refused[(("code", "unknown_service"), ("conversation", "esrt"))] == 1
    # Refused requests never reach a service, so they are in no service's figures.
    assert not any(name == "esrt_requests_total" and dict(labels).get("service") == "srv01.NOSUCH"
                   for name, labels in values)
