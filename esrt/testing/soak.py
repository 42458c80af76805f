"""A fault campaign: `python -m esrt.testing.soak [--seconds N] [--seed S] [--report DIR]`.

Boots a two-node lab (esrt.testing.lab) with CBLAPP01 as a resource group, starts several
recording clients calling it with idempotency keys, lets esrt.testing.nemesis inject random
faults for the given time, then settles every call of unknown outcome through its key, checks
the whole history (esrt.testing.checker) and measures each fault's client-visible outage.
The report (the seed, every fault, the outages per kind, every anomaly or hang) is printed and
written to DIR with the history, so a run that found something can be replayed and studied.
Exit 0 when the history is valid and nothing hung, 1 otherwise. `make soak` runs it.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from esrt.client import ConnectionFailed, ServiceError
from esrt.testing.apps import make_service
from esrt.testing.checker import check_history, outages, settle_history
from esrt.testing.history import ResendSettler, collect, save_history
from esrt.testing.lab import Lab
from esrt.testing.nemesis import DISK_IO_KINDS, KINDS, Nemesis
from esrt.testing.recorder import RecordingClient

GROUP, HOST_PART, REGION = "soak", 130, "ESSOAK"
DISK_MB = 512
# SEPs of the region: calls run side by side (locks, deadlocks, batches), and the nemesis kills
# any of them, not only SEP 1, which checkpoints.
SEPS = 3


class SoakResult:
    """What a campaign found: the seed, the faults, the checker's report, outages, hangs."""

    def __init__(self, seed, faults, report, spread, hangs, calls):
        self.seed = seed
        self.faults = faults
        self.report = report
        self.outages = spread
        self.hangs = hangs
        self.calls = calls

    @property
    def ok(self):
        """True when the history is valid and the service always came back."""
        return self.report.valid and not self.hangs

    def text(self):
        """The report for a person."""
        lines = [f"soak: seed {self.seed}, {len(self.faults)} faults, {self.calls} calls",
                 f"history: {self.report.summary}"]
        for kind, spread in sorted(self.outages.by_kind.items()):
            shown = ", ".join(f"{name} {value:.2f} s" for name, value in
                              (("min", spread.min), ("median", spread.median),
                               ("max", spread.max)) if value is not None)
            lines.append(f"outage after {kind}: {spread.count} faults, {spread.recovered} "
                         f"recovered; {shown or 'none recovered'}")
        lines += [f"ANOMALY {anomaly}" for anomaly in self.report.anomalies]
        lines += [f"HANG after {kind}: {detail}" for kind, detail in self.hangs]
        lines.append("soak: " + ("passed" if self.ok else
                                 f"FAILED: replay with --seed {self.seed}"))
        return "\n".join(lines)

    def as_json(self):
        """The report as JSON-able data."""
        return {"seed": self.seed, "ok": self.ok, "calls": self.calls,
                "faults": [fault._asdict() for fault in self.faults],
                "outages": {kind: spread._asdict()
                            for kind, spread in self.outages.by_kind.items()},
                "anomalies": [str(anomaly) for anomaly in self.report.anomalies],
                "hangs": [list(hang) for hang in self.hangs]}


def run_soak(seconds, seed=None, clients=3, kinds=KINDS, report_dir=None, log=print):
    """Run one campaign of `seconds` on a fresh lab; return a SoakResult."""
    with Lab(nodes=2) as lab:
        # Every call stores its reply for a day (idempotency_ttl), and the settling at the end
        # needs those of the whole run: about 500 bytes a call, up to a thousand calls a second.
        # (A sparse image: only what is written takes space.)
        service = make_service(lab, GROUP, HOST_PART, REGION,
                               disk_mb=max(DISK_MB, int(seconds) * 2),
                               faulty_disk=bool(set(kinds) & set(DISK_IO_KINDS)),
                               seps=SEPS)
        recorders = [RecordingClient(service.url, client_id=f"c{number}").start()
                     for number in range(1, clients + 1)]
        try:
            recorders[0].wait_for_calls(5)
            nemesis = Nemesis(lab, service, seed=seed, kinds=kinds, log=log)
            faults = nemesis.run(seconds)
            if not nemesis.hangs:
                _wait_served_again(recorders, nemesis.hangs)
                if nemesis.hangs:
                    log(nemesis.diagnosis())
        finally:
            for recorder in recorders:
                recorder.stop()
        history = collect(recorders)
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            save_history(report_dir / "history.jsonl", history, faults)
        report = _settle_and_check(history, service.url, nemesis.hangs)
    result = SoakResult(nemesis.seed, faults, report, outages(history, faults), nemesis.hangs,
                        len(history))
    if report_dir is not None:
        (report_dir / "report.txt").write_text(result.text() + "\n")
        (report_dir / "report.json").write_text(json.dumps(result.as_json(), indent=2) + "\n")
    return result


def _settle_and_check(history, url, hangs):
    """The checker's report: on the settled history when the service answers, else (a hang)
    on what the clients saw, with the calls of unknown outcome left unsettled."""
    if not hangs:
        settler = ResendSettler(url)
        try:
            return check_history(settle_history(history, settler), initial=0,
                                 final=settler.next_counter())
        except (ConnectionFailed, ServiceError) as exc:
            hangs.append(("settling", f"the service did not answer: {exc}"))
    return check_history(history, initial=0)


def _wait_served_again(recorders, hangs, timeout=120):
    """Every client must be served again before the history is closed; one that is not is a
    hang of the last fault, reported as such (its history is still checked)."""
    for recorder in recorders:
        try:
            recorder.wait_for_calls(3, timeout=timeout)
        except AssertionError as exc:
            hangs.append(("the last fault", f"client {recorder.client_id}: {exc}"))
            return


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m esrt.testing.soak",
                                     description="Run a random fault campaign on a lab.")
    parser.add_argument("--seconds", type=float, default=180.0,
                        help="how long faults are injected (default 180)")
    parser.add_argument("--seed", type=int, help="replay the schedule of an earlier run")
    parser.add_argument("--clients", type=int, default=3, help="recording clients (default 3)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"fault kinds, comma-separated (default all: {','.join(KINDS)})")
    parser.add_argument("--report", type=Path, help="directory for the report and history")
    args = parser.parse_args(argv)
    began = time.monotonic()
    result = run_soak(args.seconds, args.seed, args.clients,
                      [kind.strip() for kind in args.kinds.split(",") if kind.strip()],
                      args.report)
    print(result.text())
    print(f"soak: {time.monotonic() - began:.0f} s in all")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
