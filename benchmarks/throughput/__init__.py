"""Parts of benchmarks/bench_throughput.py: servers, load generators, reporting."""
