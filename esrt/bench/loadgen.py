"""A closed-loop load generator for esrt services, used by `esrt bench`.

N connections each call one service back to back for a fixed time, through the ordinary
Python clients (esrt.client.Client: http:// or esrt://), so what is measured is what a Python
caller sees. The connections are spread over worker processes (one per core at most, each
running its connections in threads) so the generator is not held back by one interpreter's
GIL. Each call's latency is taken with time.perf_counter_ns; failed calls (ServiceError,
ConnectionFailed) are counted by error code and never end the run.
"""

import array
import collections
import importlib.util
import math
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field

# Width of one bar of the throughput-over-time series.
BUCKET_NS = 100_000_000
# A worker that cannot even start its connections within this long is reported as broken.
READY_TIMEOUT_S = 60.0
# After a connection failure, pause before the next try so a dead listener is not hammered.
RECONNECT_PAUSE_S = 0.01
CONNECTION_FAILED = "connection_failed"
WORKER_DIED = "worker_died"


class BenchError(ValueError):
    """A bench that cannot run as asked (bad option, missing plotting library, broken worker)."""


@dataclass
class BenchResult:
    """What one run measured: the `summary` dict plus the raw series behind it."""

    summary: dict
    latencies_ns: list = field(default_factory=list)  # successful calls, sorted ascending
    throughput: list = field(default_factory=list)  # successful calls per BUCKET_NS bar
    bucket_s: float = BUCKET_NS / 1e9


def percentile(sorted_values, q):
    """The nearest-rank `q`th percentile (0 < q <= 100) of ascending values; None if empty.

    Nearest rank always returns a value that was measured, so p100 is the maximum and the
    percentiles of one run can never come out of order.
    """
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q!r} must be in (0, 100]")
    if not sorted_values:
        return None
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def summarize(sorted_latencies_ns, errors_by_code, elapsed_s):
    """The summary of a run: counts, req/s, and latency percentiles in milliseconds.

    `sorted_latencies_ns` holds one value per successful call, ascending; `errors_by_code`
    maps an error code to how many calls failed with it; `elapsed_s` is the measured time.
    """
    requests = len(sorted_latencies_ns)

    def ms(value_ns):
        return None if value_ns is None else round(value_ns / 1e6, 3)

    latency = {f"p{q}": ms(percentile(sorted_latencies_ns, q)) for q in (50, 90, 99)}
    latency["max"] = ms(sorted_latencies_ns[-1] if requests else None)
    latency["mean"] = ms(sum(sorted_latencies_ns) / requests if requests else None)
    return {
        "requests": requests,
        "errors": sum(errors_by_code.values()),
        "errors_by_code": dict(sorted(errors_by_code.items())),
        "elapsed_s": round(elapsed_s, 3),
        "requests_per_s": round(requests / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "latency_ms": latency,
    }


# --- worker side -------------------------------------------------------------------------------

def _drive(client, service, params, slot, counts, stop, deadline_ns, start_ns, out):
    """Call `service` on one connection until the deadline; leave the series in `out`."""
    from esrt.client import ConnectionFailed, ServiceError
    clock = time.perf_counter_ns
    latencies = array.array("q")
    buckets = []
    errors = collections.Counter()
    ok = failed = 0
    last_ns = start_ns
    while not stop.value:
        began = clock()
        if began >= deadline_ns:
            break
        code = None
        try:
            client.call(service, params)
        except ServiceError as exc:
            code = exc.code
        except ConnectionFailed:
            code = CONNECTION_FAILED
        except Exception as exc:  # noqa: BLE001 - the run must go on; the type names what went wrong
            code = type(exc).__name__
        ended = clock()
        last_ns = ended
        if code is None:
            latencies.append(ended - began)
            ok += 1
            counts[2 * slot] = ok
            bar = (ended - start_ns) // BUCKET_NS
            if bar >= len(buckets):
                buckets.extend([0] * (bar + 1 - len(buckets)))
            buckets[bar] += 1
        else:
            errors[code] += 1
            failed += 1
            counts[2 * slot + 1] = failed
            if code == CONNECTION_FAILED:
                time.sleep(RECONNECT_PAUSE_S)
    out.update(latencies=latencies, buckets=buckets, errors=errors, last_ns=last_ns)


def _worker(slots, url, tls, service, params, timeout, duration_ns, counts, stop, start, ready,
            go, results):
    """One worker process: drive the connections numbered `slots`, then send the series back."""
    # Ctrl-C reaches the whole process group; the parent decides when the run ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from esrt.client import Client
    try:
        clients = [Client(url, timeout=timeout, **tls) for _ in slots]
    except Exception as exc:  # noqa: BLE001 - any failure to connect ends this worker with its reason
        ready.release()
        results.put((slots, None, f"{type(exc).__name__}: {exc}"))
        return
    ready.release()
    go.wait()
    start_ns = start.value
    outs = [{} for _ in slots]
    threads = [threading.Thread(target=_drive, args=(client, service, params, slot, counts, stop,
                                                     start_ns + duration_ns, start_ns, out))
               for client, slot, out in zip(clients, slots, outs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    latencies = array.array("q")
    buckets = []
    errors = collections.Counter()
    last_ns = start_ns
    for out in outs:
        latencies.extend(out.get("latencies", ()))
        errors.update(out.get("errors", {}))
        for bar, count in enumerate(out.get("buckets", ())):
            if bar >= len(buckets):
                buckets.append(0)
            buckets[bar] += count
        last_ns = max(last_ns, out.get("last_ns", start_ns))
    results.put((slots, (latencies.tobytes(), buckets, dict(errors), last_ns), None))


# --- parent side -------------------------------------------------------------------------------

def _validate(url, tls, service, connections, duration, processes, params):
    from esrt.client import Client, service_path
    if not isinstance(connections, int) or connections < 1:
        raise BenchError(f"connections {connections!r}: give at least 1 (e.g. -c 16)")
    if not duration > 0:
        raise BenchError(f"duration {duration!r}: give a number of seconds above 0 (e.g. -d 10)")
    if processes is not None and (not isinstance(processes, int) or processes < 1):
        raise BenchError(f"processes {processes!r}: give at least 1, or leave it out to use "
                         "one per core")
    if params is not None and not isinstance(params, dict):
        raise BenchError(f"parameters {params!r} must be a JSON object, e.g. "
                         "'{\"LK-NAME\": \"x\"}'")
    service_path(service)  # raises ValueError naming the expected PACKAGE.PROGRAM form
    Client(url, **tls).close()  # raises ValueError naming the expected URL forms or files


def run_bench(url, service, connections=1, duration=10.0, params=None, processes=None,
              timeout=60.0, progress=None, progress_interval=1.0, tls=None):
    """Call `service` at `url` on `connections` connections for `duration` seconds.

    `tls` holds the TLS files of Client (ca_file, cert_file, key_file) for an https:// or
    esrts:// URL.

    `processes` worker processes share the connections (default: one per core, at most one
    per connection). `progress(elapsed_s, requests, errors)` is called every
    `progress_interval` seconds while the run lasts. Calls still in flight at the deadline
    are waited for and counted, so every call that reached the service is in the result.
    Ctrl-C ends the run early and still returns what was measured (summary["interrupted"]).
    """
    tls = dict(tls or {})
    _validate(url, tls, service, connections, duration, processes, params)
    workers = min(connections, processes or os.cpu_count() or 1)
    # spawn, not fork: the children inherit no threads, sockets or locks of the caller.
    context = multiprocessing.get_context("spawn")
    counts = context.RawArray("q", 2 * connections)
    stop = context.RawValue("b", 0)
    start = context.RawValue("q", 0)
    ready = context.Semaphore(0)
    go = context.Event()
    results = context.Queue()
    duration_ns = int(duration * 1e9)
    plan = [list(range(index, connections, workers)) for index in range(workers)]
    children = [context.Process(target=_worker, name=f"esrt-bench-{index}", daemon=True,
                                args=(slots, url, tls, service, params, timeout, duration_ns,
                                      counts, stop, start, ready, go, results))
                for index, slots in enumerate(plan)]
    interrupted = False
    try:
        for child in children:
            child.start()
        for _ in children:
            if not ready.acquire(timeout=READY_TIMEOUT_S):
                raise BenchError(f"the load generator's worker processes did not start within "
                                 f"{READY_TIMEOUT_S:.0f}s: the machine may be overloaded")
        start.value = time.perf_counter_ns()
        go.set()
        interrupted = _watch(start.value, duration_ns, counts, progress, progress_interval)
        stop.value = 1
        collected = _collect(children, plan, results)
    finally:
        stop.value = 1
        go.set()
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()
                child.join()
    return _merge(collected, start.value, duration, interrupted, url, service, connections,
                  workers)


def _watch(start_ns, duration_ns, counts, progress, interval):
    """Report progress until the deadline; return True if Ctrl-C ended the run early."""
    deadline = start_ns + duration_ns
    try:
        while True:
            now = time.perf_counter_ns()
            if now >= deadline:
                break
            time.sleep(min(interval, (deadline - now) / 1e9))
            if progress is not None:
                snapshot = counts[:]
                progress(min(time.perf_counter_ns(), deadline) / 1e9 - start_ns / 1e9,
                         sum(snapshot[0::2]), sum(snapshot[1::2]))
    except KeyboardInterrupt:
        return True
    return False


def _collect(children, plan, results):
    """Receive each worker's series; a worker that died counts its connections as errors."""
    pending = {tuple(slots): child for slots, child in zip(plan, children)}
    collected = []
    while pending:
        try:
            slots, data, failure = results.get(timeout=0.5)
        except queue.Empty:
            for slots, child in list(pending.items()):
                if not child.is_alive() and results.empty():
                    del pending[slots]
                    collected.append((slots, None, f"exit code {child.exitcode}"))
            continue
        pending.pop(tuple(slots), None)
        collected.append((slots, data, failure))
    return collected


def _merge(collected, start_ns, duration, interrupted, url, service, connections, workers):
    latencies = array.array("q")
    errors = collections.Counter()
    buckets = []
    last_ns = start_ns
    failures = []
    for slots, data, failure in collected:
        if data is None:
            errors[WORKER_DIED] += len(slots)
            failures.append(failure)
            continue
        raw, worker_buckets, worker_errors, worker_last = data
        part = array.array("q")
        part.frombytes(raw)
        latencies.extend(part)
        errors.update(worker_errors)
        for bar, count in enumerate(worker_buckets):
            if bar >= len(buckets):
                buckets.append(0)
            buckets[bar] += count
        last_ns = max(last_ns, worker_last)
    ordered = sorted(latencies)
    # Elapsed runs to the last reply, so calls finishing after the deadline are not free.
    elapsed = (last_ns - start_ns) / 1e9 if last_ns > start_ns else float(duration)
    summary = summarize(ordered, errors, elapsed)
    summary = {"service": service, "url": url, "connections": connections,
               "processes": workers, "duration_s": duration, **summary}
    if interrupted:
        summary["interrupted"] = True
    if failures:
        summary["worker_failures"] = failures
    return BenchResult(summary=summary, latencies_ns=ordered, throughput=buckets)


# --- plot ---------------------------------------------------------------------------------------

def require_matplotlib():
    """Fail early, before a run, if a plot was asked for and matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise BenchError("--plot needs matplotlib, which is not installed: run "
                         "`pip install matplotlib`, or leave out --plot")


def write_plot(result, path):
    """Write a PNG: latency histogram (left) and throughput over time (right)."""
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")  # no display needed
    from matplotlib import pyplot

    summary = result.summary
    figure, (histogram, timeline) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    latencies_ms = [value / 1e6 for value in result.latencies_ns]
    if latencies_ms:
        histogram.hist(latencies_ms, bins=60, color="tab:blue")
        for name, style in (("p50", "-"), ("p99", "--")):
            value = summary["latency_ms"][name]
            histogram.axvline(value, color="tab:red", linestyle=style,
                              label=f"{name} {value:.3f} ms")
        histogram.legend()
    histogram.set_xlabel("latency (ms)")
    histogram.set_ylabel("calls")
    histogram.set_title("latency")
    times = [index * result.bucket_s for index in range(len(result.throughput))]
    rates = [count / result.bucket_s for count in result.throughput]
    timeline.plot(times, rates, color="tab:green")
    timeline.set_xlabel("time (s)")
    timeline.set_ylabel("requests/s")
    timeline.set_title("throughput")
    timeline.set_ylim(bottom=0)
    figure.suptitle(f"{summary['service']} at {summary['url']}: {summary['connections']} "
                    f"connections, {summary['requests_per_s']:.0f} req/s, "
                    f"{summary['errors']} errors")
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
