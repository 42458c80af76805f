"""Throughput of esrt against the transport limit, the call limit and what users run instead.

    python benchmarks/bench_throughput.py          # full run, a few minutes
    BENCH_QUICK=1 python benchmarks/bench_throughput.py   # 16 connections only, short runs

Measures, for the null service (examples/null, no file I/O) and CBLAPP01 (a durable
transaction per call), at 1, 16 and 64 connections, req/s and p50/p99 latency of:

  esrt_binary   (a) a region's "esrt" binary listener, SEPs = cores
  esrt_http     (b) the same region's HTTP listener
  esrt_https    (b') its HTTP listener with TLS (null only)
  esrt_https_basic  (b'') the same with auth=basic, every request carrying the password
  twisted_echo  (c) a bare Twisted server of the same framing doing no work (null only)
  gunicorn      (d) gunicorn sync workers (as many as SEPs) calling the program via ctypes
  call_loop     (e) the program called in a loop in one process, no network (1 "connection")
  bdb_limit     (f) CBLAPP01's transaction straight on Berkeley DB (benchmarks/throughput/
                    bdb_limit.c), one writer thread per connection, each commit syncing
  bdb_flush     (g) the same, each commit releasing its lock before the log sync, as ESFH does

Servers run on core 0, load generators on core 1 (taskset): a C epoll client for binary frames
(benchmarks/throughput/loadgen.c, built with gcc) and wrk for HTTP. Prints a table and the
ratios at 16 connections, writes benchmarks/results/latest.json and latest.png. After the
CBLAPP01 runs it checks that the counter moved by exactly the number of successful calls.
Exits 1 when a run had errors or a check failed.

Settings (environment): BENCH_QUICK=1; BENCH_SECONDS (per run, whole seconds); BENCH_CONNS
(e.g. "1,16,64"); BENCH_OUT (results directory); BENCH_PIN=0 to run unpinned.
"""

import base64
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import report, runners, servers  # noqa: E402
from esrt.client import Client  # noqa: E402
from esrt.cobol.compile import CompileError  # noqa: E402
from esrt.mfds.daemon import MfdsStartError  # noqa: E402
from esrt.node.control import RegionControlError  # noqa: E402

SERVER_CORE = 0
LOAD_CORE = 1
RATIO_CONNS = 16
# Systems measured without a load generator: the work is done by the measured process itself.
IN_PROCESS = ("call_loop", "bdb_limit", "bdb_flush")
# A 1-minute load average above this means something else is competing for the cores.
BUSY_LOAD = 1.0


class Settings:
    """What one run measures, from the environment (see the module docstring)."""

    def __init__(self, environ):
        self.quick = environ.get("BENCH_QUICK", "") not in ("", "0")
        self.seconds = _int_setting(environ, "BENCH_SECONDS", 2 if self.quick else 8)
        conns = environ.get("BENCH_CONNS") or ("16" if self.quick else "1,16,64")
        try:
            self.conns = sorted({int(part) for part in conns.split(",")})
        except ValueError:
            self.conns = []
        if not self.conns or min(self.conns) < 1:
            raise SystemExit(f"BENCH_CONNS={conns!r}: give connection counts of at least 1, "
                             "separated by commas, e.g. BENCH_CONNS=1,16,64")
        self.out = Path(environ.get("BENCH_OUT") or ROOT / "benchmarks" / "results")
        cores = len(os.sched_getaffinity(0))
        self.pin = environ.get("BENCH_PIN", "1") != "0" and cores >= 2
        self.seps = max(1, os.cpu_count() or 1)


def _int_setting(environ, name, default):
    text = environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SystemExit(f"{name}={text!r}: give a whole number of seconds of at least 1")
    return value


def system_info(settings):
    """What the results were measured on."""
    try:
        gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    except OSError:
        gcc = ""
    return {"host": platform.node(), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "seps": settings.seps,
            "gunicorn_workers": settings.seps, "pinned": settings.pin,
            "server_core": SERVER_CORE if settings.pin else None,
            "load_core": LOAD_CORE if settings.pin else None,
            "seconds_per_run": settings.seconds, "quick": settings.quick,
            "gcc": gcc.splitlines()[0] if gcc else None,
            # Other work on the machine skews every number; the load says how much there was.
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Bench:
    """Runs the measurements and collects one row per (system, service, connections)."""

    def __init__(self, settings, work):
        self.settings = settings
        self.work = work
        self.load_core = LOAD_CORE if settings.pin else None
        self.runs = []
        self.checks = []
        self.loadgen = None

    def record(self, system, service, conns, result):
        row = {"system": system, "service": service, "conns": conns,
               "rps": result["rps"], "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
               "errors": result["errors"], "requests": result["requests"],
               "elapsed_s": result["elapsed_s"]}
        if result.get("errors_by_kind"):
            row["errors_by_kind"] = result["errors_by_kind"]
        if system not in IN_PROCESS:
            row["loadgen_cpu"] = result.get("loadgen_cpu")
        self.runs.append(row)
        print(f"  {system:<13} {service:<9} {conns:>3} conns: {row['rps']:>11,.0f} req/s  "
              f"p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  errors {row['errors']}"
              + (f"  loadgen cpu {row['loadgen_cpu']:.0%}" if row.get("loadgen_cpu") else ""),
              flush=True)
        return row

    def binary(self, system, address, service, params, conns):
        result = runners.run_binary(self.loadgen, address, service, params, conns,
                                    self.settings.seconds, self.work, self.load_core)
        return self.record(system, _short(service), conns, result)

    def http(self, system, address, service, params, conns, scheme="http", headers=()):
        result = runners.run_wrk(address, service, params, conns, self.settings.seconds,
                                 self.load_core, scheme, headers)
        return self.record(system, _short(service), conns, result)

    def check_counter(self, system, url, before, rows, exact):
        """Compare CBLAPP01's counter with the successful calls of `rows`.

        `before` is the counter after the last call made before the runs. The C load
        generator waits for every reply, so for it the counter must match exactly; wrk stops
        with up to one request per connection in flight, which the service may still have
        done, so for wrk the counter may be ahead by at most the connections of all runs.
        """
        with Client(url) as client:
            now = int(client.call(servers.CBLAPP01_SERVICE)["LK-COUNTER"])
        done = sum(row["requests"] for row in rows)
        moved = now - before
        # wrk stops with up to `conns` calls sent and not counted, in each run.
        slack = 0 if exact else sum(row["conns"] for row in rows)
        check = {"system": system, "service": "cblapp01", "successful_calls": done,
                 "counter_moved": moved, "allowed_extra": slack,
                 "ok": done <= moved <= done + slack}
        self.checks.append(check)
        verdict = "ok" if check["ok"] else "MISMATCH"
        print(f"  check {system}: counter moved {moved}, successful calls {done} "
              f"(allowed extra {slack}): {verdict}", flush=True)
        return now + 1

    def call_loops(self, modules, data):
        environ = servers.plain_environ(modules, data)
        null_parameters = servers.mapping_parameters(servers.NULL_DIR / "null.mapping.json")
        for service, entry, parameters in (
                ("null", "NULLSVC", null_parameters),
                ("cblapp01", "CBLAPP01", servers.cblapp01_parameters(self.work))):
            result = runners.run_call_loop(modules / f"{entry}.so", entry, parameters,
                                           self.settings.seconds, environ)
            self.record("call_loop", service, 1, result)

    def bdb_limits(self, executable):
        """The durable limits: as many writers as connections, on the server's core."""
        core = SERVER_CORE if self.settings.pin else None
        for system, mode in (("bdb_limit", "sync"), ("bdb_flush", "flush")):
            for conns in self.settings.conns:
                result = runners.run_bdb_limit(executable, self.work / f"{system}-{conns}", conns,
                                               self.settings.seconds, mode, core)
                self.record(system, "cblapp01", conns, result)
                check = {"system": system, "service": "cblapp01",
                         "successful_calls": result["requests"],
                         "counter_moved": result["counter"], "allowed_extra": 0,
                         "ok": result["counter"] == result["requests"]}
                self.checks.append(check)

    def echo(self):
        with servers.echo_server() as address:
            for conns in self.settings.conns:
                self.binary("twisted_echo", address, servers.NULL_SERVICE, servers.NULL_PARAMS,
                            conns)

    def region(self, cars):
        with servers.esrt_region(self.work, self.settings.seps, cars) as addresses:
            binary_url = f"esrt://{addresses['binary']}"
            http_url = f"http://{addresses['http']}"
            for url in (binary_url, http_url):
                with Client(url) as client:
                    reply = dict(client.call(servers.NULL_SERVICE, servers.NULL_PARAMS))
                if reply != servers.NULL_REPLY:
                    raise servers.ServerError(f"{url}: {servers.NULL_SERVICE} answered {reply}, "
                                              f"expected {servers.NULL_REPLY}")
            basic = "Authorization: Basic " + base64.b64encode(
                f"{servers.BENCH_USER}:{servers.BENCH_PASSWORD}".encode()).decode()
            # One call first, as a client's first call: its password check (Argon2, about
            # 0.1 s) is paid once per account and password, not in the measured runs.
            with Client(f"https://{addresses['https_basic']}", ca_file=addresses["tls_cert"],
                        user=servers.BENCH_USER, password=servers.BENCH_PASSWORD) as client:
                client.call(servers.NULL_SERVICE, servers.NULL_PARAMS)
            for conns in self.settings.conns:
                self.binary("esrt_binary", addresses["binary"], servers.NULL_SERVICE,
                            servers.NULL_PARAMS, conns)
                self.http("esrt_http", addresses["http"], servers.NULL_SERVICE,
                          servers.NULL_PARAMS, conns)
                # TLS without and with HTTP Basic on every request: the password's hash is
                # paid once per account and password, not per call.
                self.http("esrt_https", addresses["https"], servers.NULL_SERVICE,
                          servers.NULL_PARAMS, conns, "https")
                row = self.http("esrt_https_basic", addresses["https_basic"],
                                servers.NULL_SERVICE, servers.NULL_PARAMS, conns, "https",
                                (basic,))
                if row["errors"] or not row["requests"]:
                    raise servers.ServerError("the HTTPS Basic listener refused the bench's "
                                              f"account: {row}")
            with Client(binary_url) as client:
                counter = int(client.call(servers.CBLAPP01_SERVICE)["LK-COUNTER"]) + 1
            rows = [self.binary("esrt_binary", addresses["binary"], servers.CBLAPP01_SERVICE,
                                {}, conns) for conns in self.settings.conns]
            counter = self.check_counter("esrt_binary", binary_url, counter, rows, exact=True)
            rows = [self.http("esrt_http", addresses["http"], servers.CBLAPP01_SERVICE, {}, conns)
                    for conns in self.settings.conns]
            self.check_counter("esrt_http", http_url, counter, rows, exact=False)

    def gunicorn(self, modules, data):
        with servers.gunicorn_server(self.work, self.settings.seps, modules, data) as address:
            url = f"http://{address}"
            for conns in self.settings.conns:
                self.http("gunicorn", address, servers.NULL_SERVICE, servers.NULL_PARAMS, conns)
            with Client(url) as client:
                counter = int(client.call(servers.CBLAPP01_SERVICE)["LK-COUNTER"]) + 1
            rows = [self.http("gunicorn", address, servers.CBLAPP01_SERVICE, {}, conns)
                    for conns in self.settings.conns]
            self.check_counter("gunicorn", url, counter, rows, exact=False)


def _short(service):
    return "null" if service == servers.NULL_SERVICE else "cblapp01"


def run(settings, work):
    """Measure everything; return the results document."""
    bench = Bench(settings, work)
    info = system_info(settings)
    print(f"building the load generator and the plain COBOL modules in {work}", flush=True)
    bench.loadgen = runners.build_loadgen(work / "build")
    imtk_home = work / "imtk-home"
    imtk_home.mkdir()
    cars = (servers.build_null_car(work, imtk_home), servers.build_cblapp01_car(work))
    modules, data = servers.build_plain_programs(work)
    print("(e) call loop", flush=True)
    bench.call_loops(modules, data)
    print("(f, g) CBLAPP01's transaction straight on Berkeley DB", flush=True)
    bench.bdb_limits(runners.build_bdb_limit(work / "build"))
    print("(c) Twisted echo", flush=True)
    bench.echo()
    print(f"(a, b) esrt region with {settings.seps} SEPs", flush=True)
    bench.region(cars)
    print(f"(d) gunicorn, {settings.seps} sync workers", flush=True)
    bench.gunicorn(modules, data)
    return {"system": info, "runs": bench.runs, "checks": bench.checks,
            "ratios": report.ratios(bench.runs, RATIO_CONNS)}


def _terminated(signum, frame):
    # SIGTERM ends the run through the normal unwinding, so every server is stopped.
    raise SystemExit(f"bench_throughput: stopped by signal {signum}; servers were stopped")


def main():
    signal.signal(signal.SIGTERM, _terminated)
    settings = Settings(os.environ)
    if settings.pin:
        # Every server this script starts inherits this; load generators are moved to core 1.
        os.sched_setaffinity(0, {SERVER_CORE})
    else:
        print("warning: not pinning (fewer than 2 cores, or BENCH_PIN=0): the load generator "
              "shares cores with the servers", file=sys.stderr)
    load = os.getloadavg()[0]
    if load > BUSY_LOAD:
        print(f"warning: the machine is busy (load average {load:.1f}): other work shares the "
              "cores with the servers and load generators, so the numbers and ratios are "
              "skewed; rerun on a quiet machine", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="esrt-bench-tp-"))
    started = time.monotonic()
    try:
        document = run(settings, work)
    except (servers.ServerError, runners.RunError, RegionControlError, MfdsStartError,
            CompileError) as exc:
        print(f"bench_throughput: error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document["system"]["wall_s"] = round(time.monotonic() - started, 1)
    document["system"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    settings.out.mkdir(parents=True, exist_ok=True)
    json_path = settings.out / "latest.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    print()
    print(report.table(document["runs"]))
    print()
    print(report.ratio_lines(document["ratios"]))
    png_path = settings.out / "latest.png"
    report.plot(document, png_path)
    print(f"\nwrote {json_path} and {png_path} ({document['system']['wall_s']} s)")
    problems = [f"{r['system']} {r['service']} {r['conns']} conns: {r['errors']} errors"
                for r in document["runs"] if r["errors"]]
    problems += [f"counter check of {c['system']} failed: {c['counter_moved']} updates for "
                 f"{c['successful_calls']} successful calls"
                 for c in document["checks"] if not c["ok"] and c["system"] != "gunicorn"]
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
