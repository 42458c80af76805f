"""examples/monitoring: the Prometheus rules and configuration pass Debian's promtool (its
syntax check and the rules' own unit tests), every query of the Grafana dashboard is valid
PromQL, and every esrt metric they name is one a real region exports."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from esrt.client import Client, ServiceError

from conftest import ROOT, scrape_metrics, start_cblapp01_region

MONITORING = ROOT / "examples" / "monitoring"
RULES = MONITORING / "esrt.rules.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Grafana's own variables, as Grafana would fill them in before sending a query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$service": ".*"}


def promtool():
    """Debian's promtool, which `make test` puts beside the virtualenv's Python."""
    beside = Path(sys.executable).parent / "promtool"
    found = str(beside) if beside.exists() else shutil.which("promtool")
    assert found, ("promtool is missing: `make test` extracts it into .venv/bin from Debian's "
                   "promtool package (13) or prometheus package (12)")
    return found


def run_promtool(*args, cwd=MONITORING):
    result = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def dashboard_queries():
    """(panel title, expression) of every query of the dashboard, Grafana's variables filled."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [(panel["title"], target["expr"]) for panel in dashboard["panels"]
               for target in panel.get("targets", ())]
    queries += [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"]]
    filled = []
    for title, expr in queries:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        filled.append((title, expr))
    return filled


def test_the_rules_and_the_configuration_pass_promtool():
    assert "SUCCESS: 14 rules found" in run_promtool("check", "rules", RULES.name)
    assert "SUCCESS" in run_promtool("check", "config", "prometheus.yml")
    # The alerts fire on the series of a troubled region, a failover and failed recoveries,
    # and stay quiet on a healthy one (esrt.rules.test.yml).
    assert "SUCCESS" in run_promtool("test", "rules", "esrt.rules.test.yml")


def test_promtool_would_catch_an_alert_that_no_longer_fires(tmp_path):
    # The unit tests are not a formality: an alert whose threshold moved fails them.
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("> 0.05)", "> 0.5)"))
    shutil.copy(MONITORING / "esrt.rules.test.yml", tmp_path)
    result = subprocess.run([promtool(), "test", "rules", "esrt.rules.test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "EsrtErrorRatioHigh" in result.stdout + result.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path):
    queries = dashboard_queries()
    assert len(queries) >= 15
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "two panels share an id"
    # promtool checks PromQL in rule files: each query becomes a recording rule.
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for number, (_, expr) in enumerate(queries):
        lines += [f"      - record: dashboard:query{number}", f"        expr: {json.dumps(expr)}"]
    (tmp_path / "dashboard.rules.yml").write_text("\n".join(lines) + "\n")
    assert f"SUCCESS: {len(queries)} rules found" in run_promtool(
        "check", "rules", "dashboard.rules.yml", cwd=tmp_path)


def metric_names(text):
    """The esrt metric names an expression uses (recorded series, esrt:..., left out)."""
    return set(re.findall(r"(?<![\w:])esrt_[a-z_]+", text))


def test_the_rules_and_the_dashboard_use_only_metrics_a_region_exports(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car, seps=1)
    with Client(region.url) as client:
        client.call("srv01.CBLAPP01")
        with pytest.raises(ServiceError):
            client.call("srv01.NOSUCH")  # a refusal, so that esrt_refused_total has a sample
    _, values = scrape_metrics(region.url)
    exported = {name for name, _ in values}
    used = metric_names(RULES.read_text()) | metric_names(
        " ".join(expr for _, expr in dashboard_queries()))
    assert {"esrt_requests_total", "esrt_request_duration_seconds_bucket", "esrt_seps",
            "esrt_activations_total", "esrt_region_start_time_seconds"} <= used
    missing = used - exported
    assert missing == set(), f"named in examples/monitoring, not exported: {missing}"
