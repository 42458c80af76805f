"""Committed CBLAPP01 calls per second through esrt, beside GnuCOBOL's own file handler.

    python benchmarks/bench_transactions.py [--seconds 3] [--seps 4]

esrt: a real region (HTTP listener, SEPs, ESFH on Berkeley DB, sync commits) called by 1, 4
and 16 concurrent callers, each a separate process with one keep-alive connection; every call
is one durable transaction. Baseline: the same program compiled for GnuCOBOL's built-in BDB
handler, called in a loop inside one process: no network, no transactions, no safety between
processes. Prints calls/s and the ratio esrt / baseline; ratios, not times, are the result.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esrt.client import Client  # noqa: E402
from esrt.cobol.compile import compile_executable, compile_module  # noqa: E402
from esrt.home import Home  # noqa: E402
from esrt.mfds import daemon  # noqa: E402
from esrt.node.control import start_region, stop_region  # noqa: E402

EXAMPLES = ROOT / "examples" / "cblapp01"


def esrt(home, *args, cwd=None):
    environ = dict(os.environ, ESRT_HOME=str(home))
    subprocess.run([sys.executable, "-m", "esrt", *args], cwd=cwd, env=environ, check=True,
                   stdout=subprocess.DEVNULL)


def caller(url, seconds, results):
    done = 0
    deadline = time.monotonic() + seconds
    with Client(url) as client:
        while time.monotonic() < deadline:
            client.call("srv01.CBLAPP01")
            done += 1
    results.put(done)


def esrt_rate(url, callers, seconds):
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=caller, args=(url, seconds, results))
               for _ in range(callers)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / (time.monotonic() - started)


BASELINE_DRIVER = r"""
import sys, time
from esrt.cobol.runtime import CobolRuntime
module, seconds = sys.argv[1], float(sys.argv[2])
runtime = CobolRuntime(); runtime.init()
buffers = [bytearray(20), bytearray(10), bytearray(20), bytearray(10)]
call = runtime.load(module, "CBLAPP01", 4).bind(buffers)
done, deadline = 0, time.monotonic() + seconds
started = time.monotonic()
while time.monotonic() < deadline:
    call(); done += 1
print(done / (time.monotonic() - started))
"""


def baseline_rate(work, seconds):
    """GnuCOBOL's built-in handler, one process, calls in a loop (the unsafe baseline)."""
    data = work / "baseline"
    data.mkdir()
    environ = dict(os.environ, DD_APPFILE01=str(data / "APPFILE01"),
                   PYTHONPATH=str(ROOT))
    initfile = compile_executable(EXAMPLES / "initfile1.cbl", work / "initfile1-plain")
    subprocess.run([str(initfile)], env=environ, check=True, stdout=subprocess.DEVNULL)
    module = compile_module(EXAMPLES / "cblapp01.cbl", work / "plain")
    out = subprocess.run([sys.executable, "-c", BASELINE_DRIVER, str(module), str(seconds)],
                         env=environ, check=True, capture_output=True, text=True, cwd=data)
    return float(out.stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--seps", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esrt-bench-"))
    home = Home(work / "home").ensure()
    try:
        daemon.start_daemon(home, "127.0.0.1:0")
        esrt(home.root, "server", "create", "BENCH", "--seps", str(args.seps),
             "--listener", "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01")
        pkg = work / "pkg"
        pkg.mkdir()
        shutil.copy(EXAMPLES / "cblapp01.cbl", pkg)
        esrt(home.root, "imtk", "defmap", "--src", "cblapp01.cbl", "--service", "srv01", cwd=pkg)
        mapping = pkg / "srv01.mapping.json"
        mapping.write_text(mapping.read_text().replace('"direction": "io"', '"direction": "out"'))
        esrt(home.root, "imtk", "generate", "--service", "srv01", cwd=pkg)
        status = start_region("BENCH", home=home)
        esrt(home.root, "deploy", str(pkg / "srv01.car"), "--server", "BENCH")
        esrt(home.root, "batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", "BENCH")
        url = "http://" + status["listeners"][0]["address"]
        baseline = baseline_rate(work, args.seconds)
        rows = [(callers, esrt_rate(url, callers, args.seconds)) for callers in (1, 4, 16)]
        with Client(url) as client:
            final = client.call("srv01.CBLAPP01")["LK-COUNTER"]
    finally:
        try:
            stop_region("BENCH", home=home, force=True)
        finally:
            daemon.stop_daemon(home)
            shutil.rmtree(work, ignore_errors=True)
    print(f"baseline: GnuCOBOL built-in handler, 1 process, no transactions: "
          f"{baseline:,.0f} calls/s")
    print(f"{'callers':>8} {'esrt committed calls/s':>24} {'ratio vs baseline':>18}")
    for callers, rate in rows:
        print(f"{callers:>8} {rate:>24,.0f} {rate / baseline:>18.3f}")
    print(json.dumps({"baseline_calls_per_s": round(baseline, 1),
                      "esrt_calls_per_s": {str(c): round(r, 1) for c, r in rows},
                      "ratios": {f"esrt_{c}_vs_builtin": round(r / baseline, 4) for c, r in rows},
                      "final_counter": final}))


if __name__ == "__main__":
    main()
