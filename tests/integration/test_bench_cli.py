"""`esrt bench` against a real region serving CBLAPP01, and the summary arithmetic behind it."""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys

import pytest

from esrt.bench.loadgen import BenchError, percentile, run_bench, summarize
from esrt.client import Client
from conftest import ROOT, start_cblapp01_region

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def bench_in_esrt():
    """Whether `esrt bench` is wired into the main command line yet."""
    from esrt.cli.main import build_parser
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(["bench", "srv01.CBLAPP01", "--url", "http://h:1"])
    except SystemExit:
        return False
    return True


# Runs `python -m esrt` in an interpreter where `import matplotlib` fails, as where it is not
# installed (a None entry in sys.modules is how Python marks a module as not importable).
WITHOUT_MATPLOTLIB = ("import runpy, sys; sys.modules['matplotlib'] = None; "
                      "sys.argv[0] = 'esrt'; runpy.run_module('esrt', run_name='__main__')")


def run_bench_cli(node, *args, check=True, hide_matplotlib=False):
    """`esrt bench ...` as a subprocess: through `esrt` once main.py has it, else the module."""
    environ = dict(os.environ, ESRT_HOME=str(node.home),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")])))
    entry = ["-m", "esrt", "bench"] if bench_in_esrt() else ["-m", "esrt.cli.bench_cmd"]
    if hide_matplotlib:
        entry = ["-c", WITHOUT_MATPLOTLIB, "bench"]
    result = subprocess.run([sys.executable, *entry, *args], env=environ, capture_output=True,
                            text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"esrt bench failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


# --- summary arithmetic ----------------------------------------------------------------------

def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 1) == 7
    assert percentile([1, 2, 3], 50) == 2
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_summary_counts_rates_and_milliseconds():
    latencies = sorted([1_000_000] * 98 + [5_000_000, 20_000_000])  # 98 x 1 ms, 5 ms, 20 ms
    summary = summarize(latencies, {"connection_failed": 2, "no_sep": 1}, elapsed_s=2.0)
    assert summary["requests"] == 100
    assert summary["errors"] == 3
    assert summary["errors_by_code"] == {"connection_failed": 2, "no_sep": 1}
    assert summary["requests_per_s"] == 50.0
    assert summary["latency_ms"] == {"p50": 1.0, "p90": 1.0, "p99": 5.0, "max": 20.0,
                                     "mean": 1.23}
    empty = summarize([], {}, elapsed_s=1.0)
    assert empty["requests"] == 0 and empty["requests_per_s"] == 0.0
    assert empty["latency_ms"]["p50"] is None and empty["latency_ms"]["max"] is None


def test_bad_options_are_refused_before_any_process_starts():
    with pytest.raises(BenchError, match="connections"):
        run_bench("http://127.0.0.1:1", "srv01.CBLAPP01", connections=0, duration=1)
    with pytest.raises(ValueError, match="PACKAGE.PROGRAM"):
        run_bench("http://127.0.0.1:1", "CBLAPP01", connections=1, duration=1)
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        run_bench("ftp://127.0.0.1:1", "srv01.CBLAPP01", connections=1, duration=1)


def test_unreachable_listener_is_counted_by_code_not_a_crash():
    import socket
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_bench(f"http://127.0.0.1:{port}", "srv01.CBLAPP01", connections=2,
                       duration=0.5, processes=1)
    assert result.summary["requests"] == 0
    assert result.summary["errors"] > 0
    assert set(result.summary["errors_by_code"]) == {"connection_failed"}


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path):
    class NoNode:
        home = tmp_path
    result = run_bench_cli(NoNode, "srv01.CBLAPP01", "--url", "http://127.0.0.1:1", "-d", "1",
                           "--plot", str(tmp_path / "bench.png"), check=False,
                           hide_matplotlib=True)
    assert result.returncode != 0
    assert "pip install matplotlib" in result.stderr
    assert not (tmp_path / "bench.png").exists()


# --- against a real region -----------------------------------------------------------------

@pytest.mark.parametrize("conversation", ["http", "esrt"])
def test_bench_json_every_call_committed_once(node, srv01_car, tmp_path, conversation):
    region = start_cblapp01_region(node, srv01_car,
                                   extra=("--listener", "Binary=127.0.0.1:*,esrt"))
    url = region.url
    if conversation == "esrt":
        (binary,) = [listener for listener in region.status["listeners"]
                     if listener["conversation"] == "esrt"]
        url = f"esrt://{binary['address']}"
    plot = tmp_path / "bench.png"
    extra = ["--plot", str(plot)] if HAVE_MATPLOTLIB else []
    result = run_bench_cli(node, "srv01.CBLAPP01", "--url", url, "-c", "4", "-d", "2",
                           "--json", *extra)
    summary = json.loads(result.stdout)
    assert summary["requests"] > 0
    assert summary["errors"] == 0, summary["errors_by_code"]
    assert summary["connections"] == 4 and summary["url"] == url
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    # Every call the bench counted committed exactly once: the next counter is that number.
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == summary["requests"]
    # Not a terminal: progress comes as plain lines, no carriage-return redraws.
    assert "req/s" in result.stderr and "\r" not in result.stderr
    if HAVE_MATPLOTLIB:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_text_summary(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car)
    result = run_bench_cli(node, "srv01.CBLAPP01", "--url", region.url, "-c", "2", "-d", "1")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"srv01.CBLAPP01 at {region.url}: 2 connections")
    requests = int(next(line.split()[1] for line in lines if line.startswith("requests")))
    assert requests > 0
    assert any(line.startswith("errors     0") for line in lines)
    assert any(line.startswith("latency ms p50") for line in lines)
