"""Takeover outage on a real two-node Pacemaker + Corosync lab, beside the report's.

    python benchmarks/bench_takeover.py [--runs 5] [--out benchmarks/results/takeover.json]

The outage is what a client sees: from the fault to the first successful reply from the other
node, measured by a RecordingClient calling CBLAPP01 at the group's relocatable address with
idempotency keys (so each run also checks that no acknowledged counter was lost or repeated).
Two faults, `--runs` times each, median reported:

* power-off of the node running the group (a fresh lab per run: the node is gone);
* application failure: every process of the region killed (one lab; after each takeover the
  failure count is cleaned up so the next run can fail back the other way).

The report (ES 4.0 on HACMP 5.3) measured 96.5 s (switch-over while calling, pattern 5),
47.4 s (mutual standby, pattern 7) and 48.8 s (deploy packages on the shared disk, pattern 8).
Target here: under 5 s. Needs root (network namespaces, loop devices).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esrt.testing import faults  # noqa: E402
from esrt.testing.apps import make_service  # noqa: E402
from esrt.testing.lab import Lab, lab_unavailable_reason  # noqa: E402
from esrt.testing.recorder import RecordingClient  # noqa: E402

REPORT = [("switch-over while calling (pattern 5)", 96.5),
          ("mutual standby (pattern 7)", 47.4),
          ("deploy packages on shared disk (pattern 8)", 48.8)]
TARGET = 5.0
TAKEOVER_TIMEOUT = 120


def measure(calls, since, old, new):
    """One takeover: wait for the new node's replies; return the run's facts."""
    calls.wait_for_calls(3, host=new.name, timeout=TAKEOVER_TIMEOUT)
    outage = calls.outage(since)
    return {"outage_s": round(outage, 3), "from": old.name, "to": new.name,
            "lost": calls.gaps(), "duplicated": calls.duplicates(),
            "failed_attempts": sum(1 for r in calls.snapshot()
                                   if r.outcome != "ok" and r.time > since)}


def power_off_run():
    with Lab(nodes=2) as lab:
        node1, node2 = lab.nodes
        service = make_service(lab, "grp1", 101, "ESHA01")
        calls = RecordingClient(service.url).start()
        try:
            calls.wait_for_calls(10, host=node1.name)
            since = faults.power_off(lab, node1)
            return measure(calls, since, node1, node2)
        finally:
            calls.stop()


def application_failure_runs(runs, progress):
    results = []
    with Lab(nodes=2) as lab:
        service = make_service(lab, "grp1", 101, "ESHA01")
        calls = RecordingClient(service.url).start()
        try:
            for run in range(runs):
                old = lab.wait_group(service.group)
                new = next(node for node in lab.nodes if node is not old)
                calls.wait_for_calls(10, host=old.name)
                since = faults.kill_region(old, service.region)
                result = measure(calls, since, old, new)
                results.append(result)
                progress(f"application failure {run + 1}/{runs}: {result['outage_s']:.2f} s "
                         f"({old.name} -> {new.name})")
                # Forget the failure so that the next run may move the group back.
                lab.crm("crm_resource", "--cleanup", "--resource", service.group)
                lab.wait_group(service.group, on=new)
        finally:
            calls.stop()
    return results


def summary(results):
    outages = [r["outage_s"] for r in results]
    return {"median_s": round(statistics.median(outages), 3), "min_s": min(outages),
            "max_s": max(outages), "runs": results,
            "lost": sum(len(r["lost"]) for r in results),
            "duplicated": sum(len(r["duplicated"]) for r in results)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="takeovers per fault (default 5)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "takeover.json"),
                        help="where to write the results (JSON)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    reason = lab_unavailable_reason()
    if reason:
        print(f"bench_takeover: cannot run a lab here: {reason}", file=sys.stderr)
        return 2

    def progress(text):
        print(text, flush=True)

    started = time.time()
    load_before = os.getloadavg()[0]
    power = []
    for run in range(args.runs):
        result = power_off_run()
        power.append(result)
        progress(f"power-off {run + 1}/{args.runs}: {result['outage_s']:.2f} s")
    application = application_failure_runs(args.runs, progress)
    document = {
        "system": {"python": platform.python_version(), "machine": platform.machine(),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                   "wall_s": round(time.time() - started, 1), "runs_per_fault": args.runs,
                   # Other work on the machine stretches takeovers: keep it next to the numbers.
                   "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                   "target_s": TARGET},
        "power_off": summary(power),
        "application_failure": summary(application),
        "report_s": {label: seconds for label, seconds in REPORT},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")

    print()
    print(f"{'takeover outage (fault -> first reply on the other node)':58} {'median':>8}")
    for label, key in (("esrt, power-off of the active node", "power_off"),
                       ("esrt, application failure (region killed)", "application_failure")):
        facts = document[key]
        verdict = "under" if facts["median_s"] < TARGET else "OVER"
        print(f"{label:58} {facts['median_s']:7.2f} s  ({verdict} the {TARGET:.0f} s target; "
              f"min {facts['min_s']:.2f}, max {facts['max_s']:.2f}; lost {facts['lost']}, "
              f"duplicated {facts['duplicated']})")
    for label, seconds in REPORT:
        print(f"{'report (ES 4.0 + HACMP 5.3), ' + label:58} {seconds:7.1f} s")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
