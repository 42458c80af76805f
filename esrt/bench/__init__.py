"""Load generation against esrt listeners: `esrt bench` and the benchmarks build on this."""

from esrt.bench.loadgen import BenchError, BenchResult, percentile, run_bench, summarize

__all__ = ["BenchError", "BenchResult", "percentile", "run_bench", "summarize"]
