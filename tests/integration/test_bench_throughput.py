"""benchmarks/bench_throughput.py end to end at tiny settings: real region, SEPs, gunicorn,
Twisted echo server, C load generator and wrk; checks what a user of the results relies on."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_throughput.py"

pytestmark = pytest.mark.skipif(
    not (shutil.which("wrk") and shutil.which("gcc") and shutil.which("taskset")
         and (Path(sys.executable).parent / "gunicorn").exists()),
    reason="needs wrk, gcc, taskset and gunicorn in the venv")

SYSTEMS = {("esrt_binary", "null"), ("esrt_binary", "cblapp01"), ("esrt_http", "null"),
           ("esrt_http", "cblapp01"), ("esrt_https", "null"), ("esrt_https_basic", "null"),
           ("twisted_echo", "null"), ("gunicorn", "null"),
           ("gunicorn", "cblapp01"), ("call_loop", "null"), ("call_loop", "cblapp01"),
           ("bdb_limit", "cblapp01"), ("bdb_flush", "cblapp01")}
# Measured without a load generator.
IN_PROCESS = ("call_loop", "bdb_limit", "bdb_flush")


def processes_mentioning(text):
    """Pids whose command line or environment contains `text` (our own work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    environ = dict(os.environ, BENCH_QUICK="1", BENCH_SECONDS="1", BENCH_CONNS="2",
                   BENCH_OUT=str(out))
    process = subprocess.Popen([sys.executable, str(SCRIPT)], env=environ, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        # SIGTERM makes the script stop its servers before it exits.
        process.terminate()
        stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    work = re.search(r"modules in (\S+)", result.stdout)
    return result, out, work.group(1) if work else None


def test_the_run_succeeds_and_leaves_nothing_behind(tiny_run):
    result, out, work = tiny_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert work and not Path(work).exists()
    assert processes_mentioning(work) == []
    assert "ratios at 2 connections" in result.stdout


def test_latest_json_has_every_run_with_measured_numbers(tiny_run):
    _, out, _ = tiny_run
    document = json.loads((out / "latest.json").read_text())
    runs = document["runs"]
    assert {(r["system"], r["service"]) for r in runs} == SYSTEMS
    for run in runs:
        assert run["conns"] == (1 if run["system"] == "call_loop" else 2)
        assert run["errors"] == 0, run
        assert run["requests"] > 0 and run["rps"] > 0
        assert 0 < run["p50_ms"] <= run["p99_ms"]
        assert run["rps"] == pytest.approx(run["requests"] / run["elapsed_s"], rel=0.01)
        if run["system"] not in IN_PROCESS:
            assert 0 < run["loadgen_cpu"] < 2  # the generator's share of its core was measured
    assert document["system"]["seps"] == os.cpu_count()
    assert document["system"]["pinned"] == (len(os.sched_getaffinity(0)) >= 2)


def test_ratios_are_computed_from_the_runs(tiny_run):
    _, out, _ = tiny_run
    document = json.loads((out / "latest.json").read_text())
    rps = {(r["system"], r["service"]): r["rps"] for r in document["runs"]}
    ratios = document["ratios"]
    assert ratios["conns"] == 2  # 16 was not measured: the largest measured count is used
    assert ratios["binary_vs_twisted_echo"] == pytest.approx(
        rps["esrt_binary", "null"] / rps["twisted_echo", "null"], abs=1e-4)
    assert ratios["http_vs_gunicorn"] == pytest.approx(
        rps["esrt_http", "null"] / rps["gunicorn", "null"], abs=1e-4)
    assert ratios["durable_vs_null"] == pytest.approx(
        rps["esrt_binary", "cblapp01"] / rps["esrt_binary", "null"], abs=1e-4)
    assert ratios["durable_vs_bdb_limit"] == pytest.approx(
        rps["esrt_binary", "cblapp01"] / rps["bdb_limit", "cblapp01"], abs=1e-4)
    assert ratios["durable_vs_bdb_flush"] == pytest.approx(
        rps["esrt_binary", "cblapp01"] / rps["bdb_flush", "cblapp01"], abs=1e-4)
    assert ratios["https_basic_vs_https"] == pytest.approx(
        rps["esrt_https_basic", "null"] / rps["esrt_https", "null"], abs=1e-4)


def test_cblapp01_counter_matches_the_successful_calls(tiny_run):
    _, out, _ = tiny_run
    document = json.loads((out / "latest.json").read_text())
    checks = {check["system"]: check for check in document["checks"]}
    binary = checks["esrt_binary"]
    # The C load generator waits for every reply, so nothing may be missing or extra.
    assert binary["ok"] and binary["counter_moved"] == binary["successful_calls"] > 0
    assert checks["esrt_http"]["ok"]
    calls = sum(r["requests"] for r in document["runs"]
                if (r["system"], r["service"]) == ("esrt_binary", "cblapp01"))
    assert binary["successful_calls"] == calls
    # Berkeley DB alone: every commit it counted is in the record.
    for system in ("bdb_limit", "bdb_flush"):
        assert checks[system]["ok"] and checks[system]["counter_moved"] > 0, checks[system]


def test_plot_is_a_png(tiny_run):
    _, out, _ = tiny_run
    assert (out / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_settings_are_refused_with_the_remedy(tmp_path):
    environ = dict(os.environ, BENCH_CONNS="16,lots", BENCH_OUT=str(tmp_path))
    result = subprocess.run([sys.executable, str(SCRIPT)], env=environ, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "BENCH_CONNS='16,lots'" in result.stderr and "e.g. BENCH_CONNS=1,16,64" in result.stderr
    assert not (tmp_path / "latest.json").exists()
