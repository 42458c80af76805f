"""Load generators of bench_throughput.py, each run as a process pinned to the load core.

* binary frames: loadgen.c (epoll, one outstanding request per connection), built with gcc;
* HTTP: wrk with wrk_report.lua, which prints its results as one JSON line;
* no network: calloop.py, the program called in a loop in one process.

Each returns a dict with at least requests (successful calls), errors, rps, p50_ms, p99_ms.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from esrt import wire

HERE = Path(__file__).resolve().parent
# Longest a load generator may run past its duration before it is taken as hung: the C
# generator drains outstanding requests for up to 30 s.
OVERRUN_S = 60


class RunError(RuntimeError):
    """A load generator could not run or printed no result; the message says what to do."""


def pin_prefix(core):
    """The command prefix that runs a program on `core` (nothing when not pinning)."""
    return [] if core is None else ["taskset", "-c", str(core)]


def _build(build_dir, source, name, libraries=()):
    """Compile `source` (in this directory) with gcc -O2 into `build_dir`/`name`."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RunError("no C compiler (gcc) on PATH: install it with `apt-get install gcc`")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    out = build_dir / name
    command = [compiler, "-O2", "-Wall", "-o", str(out), str(HERE / source), *libraries]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RunError(f"gcc could not build {source}:\n{result.stderr}\n"
                       f"to reproduce: {' '.join(command)}")
    return out


def build_loadgen(build_dir):
    """Compile loadgen.c into `build_dir`; return the executable's path."""
    return _build(build_dir, "loadgen.c", "loadgen")


def build_bdb_limit(build_dir):
    """Compile bdb_limit.c (Berkeley DB 5.3, libdb5.3-dev) into `build_dir`."""
    return _build(build_dir, "bdb_limit.c", "bdb_limit", ("-pthread", "-ldb"))


def _last_json(stdout, what, stderr=""):
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RunError(f"{what} printed no JSON result:\n{stdout[-2000:]}\n{stderr[-2000:]}")


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command, seconds, what, env=None):
    """Run a load generator; return its JSON result plus `loadgen_cpu`, the share of one core
    it used while it ran (near 1.0 would mean the generator, not the server, set the pace)."""
    cpu_before = _children_cpu()
    began = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=seconds + OVERRUN_S)
    except subprocess.TimeoutExpired:
        raise RunError(f"{what} did not finish within {seconds + OVERRUN_S:.0f}s") from None
    # Only waited-for children count, and the servers are waited for after the runs: the
    # difference is this generator's CPU time (taskset execs it in the same process).
    cpu = _children_cpu() - cpu_before
    wall = time.monotonic() - began
    if result.returncode != 0:
        raise RunError(f"{what} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    parsed = _last_json(result.stdout, what, result.stderr)
    parsed["loadgen_cpu"] = round(cpu / wall, 3) if wall > 0 else None
    return parsed


def run_binary(loadgen, address, service, params, connections, seconds, work, core):
    """Drive `service` at the "esrt" listener `address` with the C load generator."""
    frame = Path(work) / f"frame-{service}.bin"
    frame.write_bytes(wire.encode_request(1, service, json.dumps(params).encode()))
    return run_frames(loadgen, address, frame, connections, seconds, core, service)


def run_frames(loadgen, address, frames, connections, seconds, core, what):
    """The C load generator at the "esrt" listener `address`, sending the request frames of
    file `frames` in turn (`what` names them in errors)."""
    host, port = address.rsplit(":", 1)
    command = pin_prefix(core) + [str(loadgen), host, port, str(connections), str(seconds),
                                  str(frames)]
    return _run(command, seconds, f"loadgen ({what} at {address})")


def run_wrk(address, service, params, connections, seconds, core, scheme="http", headers=()):
    """Drive `service` at the HTTP listener `address` with wrk (one thread); `scheme` https
    for a TLS listener, `headers` ("Name: value", ...) sent with every request."""
    if shutil.which("wrk") is None:
        raise RunError("wrk is not installed: run `apt-get install wrk`")
    package, _, program = service.partition(".")
    url = f"{scheme}://{address}/services/{package}/{program}"
    # wrk takes whole seconds only.
    command = pin_prefix(core) + ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                                  "--timeout", "30s", "-s", str(HERE / "wrk_report.lua")]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    result = _run(command, seconds, f"wrk ({url})",
                  env=dict(os.environ, WRK_BODY=json.dumps(params)))
    # wrk counts every response in requests, non-2xx ones too; only 2xx are successful calls.
    result["requests"] -= result["non_2xx"]
    result["rps"] = round(result["requests"] / result["elapsed_s"], 1)
    return result


def run_bdb_limit(executable, home, writers, seconds, mode, core):
    """CBLAPP01's transaction straight on Berkeley DB in `home` (a new directory) by `writers`
    threads on `core`; `mode` "sync" or "flush" (see bdb_limit.c)."""
    Path(home).mkdir(parents=True)
    command = pin_prefix(core) + [str(executable), str(home), str(writers), str(seconds), mode]
    return _run(command, seconds, f"bdb_limit ({writers} writers, {mode})")


def run_call_loop(module, entry, parameters, seconds, environ):
    """Call `entry` of `module` in a loop in a new process (on this process's cores)."""
    command = [sys.executable, str(HERE / "calloop.py"), str(module), entry,
               json.dumps(parameters), str(seconds)]
    return _run(command, seconds, f"call loop ({entry})", env=environ)
