"""Where the time goes in esrt's binary path: CPU per process, and py-spy's hottest functions.

    python benchmarks/throughput/profile_binary.py [--service null|cblapp01] [--conns 16]
                                                   [--seconds 10] [--py-spy [--gil]]

Starts the benchmark's region (SEPs = cores, pinned to core 0 like bench_throughput.py),
drives the service through the "esrt" listener with the C load generator on core 1, and
reports how the server core's CPU time split between the region process and its SEPs (user
and system time from /proc). With --py-spy (pip install py-spy), each server process is
sampled for the run and the functions with the most samples are listed, self and total.
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import runners, servers  # noqa: E402

TOP = 12


def cpu_seconds(pid):
    """User and system CPU seconds of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def context_switches(pid):
    """(voluntary, involuntary) context switches of `pid` so far."""
    counts = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.endswith("ctxt_switches"):
            counts[name] = int(value)
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


def server_pids(work):
    """{label: pid} of the region and its SEPs, as the region recorded them."""
    from esrt.home import Home
    from esrt.node.runs import read_json, recorded_run_dir
    run_dir = recorded_run_dir(Home(work / "home"), servers.REGION_NAME)
    record = read_json(Path(run_dir) / "processes.json") or {}
    found = {"region": int(record["region"])}
    for sep, pid in sorted((record.get("seps") or {}).items()):
        found[f"sep{sep}"] = int(pid)
    return found


# Leaf frames where a process waits rather than works (py-spy samples those too).
WAITING = ("Condition.wait", "EPollReactor.doPoll", "_read_exactly", "untilConcludes")


def top_functions(raw_file):
    """(busy samples, waiting samples, self counter, total counter) from py-spy raw output;
    the counters cover busy samples only."""
    own, total = collections.Counter(), collections.Counter()
    busy = waiting = 0
    for line in Path(raw_file).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        count = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(WAITING):
            waiting += count
            continue
        busy += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return busy, waiting, own, total


def by_module(own):
    """Self samples by source file (esrt/region/sepslot.py, twisted/internet/defer.py, ...)."""
    modules = collections.Counter()
    for frame, count in own.items():
        where = frame.rpartition(" (")[2].split(":")[0]
        for root in ("site-packages/", "/esrt/", "python3."):
            if root in where:
                where = where.split(root, 1)[1]
                where = ("esrt/" + where) if root == "/esrt/" else where
                break
        modules[where] += count
    return modules


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=("null", "cblapp01"), default="null")
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--py-spy", dest="py_spy", action="store_true")
    parser.add_argument("--gil", action="store_true",
                        help="with --py-spy: sample only while Python holds the GIL, so that "
                             "system calls and time preempted by the SEPs are left out and "
                             "the samples show the region's Python CPU")
    parser.add_argument("--normal-scheduling", dest="normal_scheduling", action="store_true",
                        help="put the SEPs back under normal scheduling (SCHED_OTHER) instead "
                             "of the default sep_scheduling=batch, to compare: a woken SEP "
                             "then preempts the region on their shared core")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if args.py_spy and not Path(py_spy).exists():
        raise SystemExit("--py-spy needs py-spy: run `pip install py-spy`, or leave out --py-spy")
    pinned = len(os.sched_getaffinity(0)) >= 2
    if pinned:
        os.sched_setaffinity(0, {0})
    service, params = ((servers.NULL_SERVICE, servers.NULL_PARAMS) if args.service == "null"
                       else (servers.CBLAPP01_SERVICE, {}))
    work = Path(tempfile.mkdtemp(prefix="esrt-profile-"))
    try:
        loadgen = runners.build_loadgen(work / "build")
        imtk = work / "imtk-home"
        imtk.mkdir()
        cars = (servers.build_null_car(work, imtk), servers.build_cblapp01_car(work))
        with servers.esrt_region(work, os.cpu_count() or 1, cars) as addresses:
            pids = server_pids(work)
            if args.normal_scheduling:
                for label, pid in pids.items():
                    if label.startswith("sep"):
                        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
            before = {label: cpu_seconds(pid) for label, pid in pids.items()}
            switches = {label: context_switches(pid) for label, pid in pids.items()}
            spies = []
            if args.py_spy:
                for label, pid in pids.items():
                    out = work / f"{label}.raw"
                    spies.append((label, out, subprocess.Popen(
                        [py_spy, "record", *(["--gil"] if args.gil else []), "-p", str(pid),
                         "-d", str(args.seconds), "-r", "250", "-f", "raw", "-o", str(out)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            result = {}
            thread = threading.Thread(target=lambda: result.update(runners.run_binary(
                loadgen, addresses["binary"], service, params, args.conns, args.seconds, work,
                1 if pinned else None)))
            thread.start()
            thread.join()
            after = {label: cpu_seconds(pid) for label, pid in pids.items()}
            switches = {label: [b - a for a, b in zip(switches[label], context_switches(pid))]
                        for label, pid in pids.items()}
            for _, _, spy in spies:
                spy.wait()
        print(f"{service} at {args.conns} conns: {result['rps']:,.0f} req/s, p50 "
              f"{result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}")
        calls = max(result["requests"], 1)
        # Per call of the whole run (a SEP serves only its share of the calls).
        print(f"{'process':<8} {'user s':>7} {'sys s':>7} {'cpu us/call':>12} "
              f"{'vol cs/call':>12} {'invol cs/call':>14}")
        for label in sorted(pids):
            user = after[label][0] - before[label][0]
            system = after[label][1] - before[label][1]
            voluntary, involuntary = switches[label]
            print(f"{label:<8} {user:>7.2f} {system:>7.2f} {(user + system) / calls * 1e6:>12.1f} "
                  f"{voluntary / calls:>12.2f} {involuntary / calls:>14.2f}")
        for label, out, _ in spies:
            if not out.exists():
                print(f"\n{label}: py-spy wrote nothing (is ptrace allowed?)")
                continue
            busy, waiting, own, total = top_functions(out)
            print(f"\n{label}: {busy} busy samples ({waiting} waiting left out); "
                  "top self | top total, as % of busy samples")
            busy = max(busy, 1)
            for (name_own, n_own), (name_total, n_total) in zip(own.most_common(TOP),
                                                                total.most_common(TOP + 8)[8:]):
                print(f"  {100 * n_own / busy:5.1f}% {name_own[:62]:<62} | "
                      f"{100 * n_total / busy:5.1f}% {name_total[:62]}")
            print("  by module (self): " + ", ".join(
                f"{name} {100 * n / busy:.0f}%" for name, n in by_module(own).most_common(TOP)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
