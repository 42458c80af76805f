"""The database primary's node powered off under load: PAF against Patroni (issue 16, item 5).

    python benchmarks/bench_db_failover.py [--runs 3] [--engines paf,patroni]
                                           [--out benchmarks/results/db_failover.json]

Each run builds the active-active lab of tests/failover/test_active_active.py
(esrt.testing.activeactive: three nodes, regions on node1 and node2 from one region file, the
database primary on node3) with the database made highly available by one engine:

* paf: Pacemaker's PostgreSQL agent (Debian's resource-agents-paf), a floating address,
  fencing by the lab's power switch (esrt.testing.pgha);
* patroni: Patroni with etcd on every node, clients listing all nodes with
  target_session_attrs=read-write (esrt.testing.patroni), at Patroni's documented minimum
  timings.

Four callers (two CBLAPP01 recorders, two XFER callers, idempotency keys, 0.5 s per attempt)
run through both regions; node3 is powered off; the run ends when every caller has ten more
answers. Reported per run: the client-visible outage (the longest call in progress at or after
the power-off), when a promoted primary served with a synchronous standby again, and whether
any acknowledged call was lost or applied twice (a run that lost one fails the benchmark).
The ratio patroni_vs_paf is Patroni's median outage over PAF's, measured in the same run of
this script: above 1, PAF's outage is the shorter, and PAF is the engine esrt keeps.
Needs root (network namespaces); about a minute and a half per run.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esrt.testing import faults  # noqa: E402
from esrt.testing.activeactive import (  # noqa: E402
    TOTEM, Callers, CallsLost, running_active_active, unavailable_reason)
from esrt.testing.patroni import PatroniPostgres  # noqa: E402
from esrt.testing.pgha import ReplicatedPostgres  # noqa: E402

ENGINES = {"paf": ReplicatedPostgres, "patroni": PatroniPostgres}
TARGET = 5.0


def one_run(engine, totem):
    """Power off the primary's node under load once; the run's facts."""
    with tempfile.TemporaryDirectory(prefix="esrt-dbfail-") as work, \
            running_active_active(Path(work), engine, totem) as setup:
        database = setup.database
        callers = Callers(setup.urls)
        try:
            callers.wait_for_calls()
            primary = database.wait_primary(timeout=60)
            # Pacemaker's DC matters to PAF only: losing it costs an election and a second.
            was_dc = engine is ReplicatedPostgres and \
                setup.lab.designated_controller() == primary.name
            since = faults.power_off(setup.lab, primary)
            promoted = database.wait_primary(not_on=primary, timeout=90, standbys_ready=False)
            promoted_after = time.time() - since
            callers.wait_for_calls()
        finally:
            callers.stop()
        try:
            callers.check()
            lost = None
        except CallsLost as exc:
            lost = str(exc)
        return {"outage_s": round(callers.longest_call(since), 3),
                "promoted_s": round(promoted_after, 3),
                "from": primary.name, "to": promoted.name, "dc_lost": was_dc,
                "calls_lost": lost}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="power-offs per engine")
    parser.add_argument("--engines", default="paf,patroni",
                        help="comma-separated, of: " + ", ".join(ENGINES))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--totem", default="", metavar="NAME=MS,...",
                        help="corosync totem settings of the labs, over "
                        "esrt.testing.activeactive.TOTEM, e.g. token=800")
    args = parser.parse_args(argv)
    try:
        totem = dict(TOTEM, **{name.strip(): int(value) for name, value in
                               (item.split("=", 1) for item in args.totem.split(",")
                                if item.strip())})
    except ValueError:
        parser.error(f"--totem {args.totem!r}: give NAME=MILLISECONDS pairs separated by "
                     "commas, e.g. token=1000,token_coefficient=0")
    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        parser.error(f"unknown engine {', '.join(unknown) or '(none)'}; "
                     f"choose among {', '.join(ENGINES)}")
    for name in names:
        reason = unavailable_reason(ENGINES[name])
        if reason:
            print(f"bench_db_failover: {name} cannot run here: {reason}", file=sys.stderr)
            return 2
    results = {}
    for name in names:
        runs = []
        for number in range(1, args.runs + 1):
            run = one_run(ENGINES[name], totem)
            runs.append(run)
            lost = f"; LOST: {run['calls_lost']}" if run["calls_lost"] else "; nothing lost"
            print(f"{name} run {number}/{args.runs}: outage {run['outage_s']:.2f} s, "
                  f"promoted and serving after {run['promoted_s']:.2f} s "
                  f"({run['from']}{' (the DC)' if run['dc_lost'] else ''} -> "
                  f"{run['to']}){lost}", flush=True)
        results[name] = {"runs": runs,
                         "median_outage_s": statistics.median(r["outage_s"] for r in runs)}
    report = {"benchmark": "db_failover", "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": platform.node(), "target_s": TARGET, "totem": totem,
              "engines": results, "ratios": {}}
    if {"paf", "patroni"} <= set(results):
        report["ratios"]["patroni_vs_paf"] = round(
            results["patroni"]["median_outage_s"] / results["paf"]["median_outage_s"], 2)
        # Only an engine that lost no acknowledged call may be kept.
        sound = [name for name in ("paf", "patroni")
                 if not any(run["calls_lost"] for run in results[name]["runs"])]
        report["kept"] = min(sound, key=lambda n: results[n]["median_outage_s"], default=None)
    print(json.dumps({"medians": {n: r["median_outage_s"] for n, r in results.items()},
                      "ratios": report["ratios"], "kept": report.get("kept")}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    lost = [r for result in results.values() for r in result["runs"] if r["calls_lost"]]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
