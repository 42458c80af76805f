-- wrk script for bench_throughput.py: POST the JSON body in $WRK_BODY to the URL wrk is given
-- (an esrt or gunicorn service URL), and at the end print one JSON line of the results, so the
-- benchmark reads numbers rather than wrk's human-readable report. Latencies are in us in wrk.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    '{"requests": %d, "non_2xx": %d, "errors": %d, "errors_by_kind": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "elapsed_s": %.6f, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f}\n',
    summary.requests, e.status, errors, e.connect, e.read, e.write, e.status, e.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
