"""`esrt bench SERVICE --url URL -c N -d SECONDS`: load-test one service and summarise it.

Shows a live progress bar on stderr (a line per second when stderr is not a terminal), then
requests, errors by code, req/s and latency percentiles; `--json` prints the summary as JSON
on stdout instead, `--plot FILE.png` draws a latency histogram and throughput over time.
Exits 1 when any call failed, so scripts notice. Also runnable as `python -m esrt.cli.bench_cmd`.
"""

import argparse
import json
import sys

from esrt.cli.errors import add_tls_client_options, tls_client_files
from esrt.states import ExitCode

BAR_WIDTH = 30


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, e.g. 10")
    return value


def progress_printer(duration, stream):
    """A progress callback: a redrawn bar on a terminal, one line per report otherwise."""
    interactive = stream.isatty()

    def report(elapsed, requests, errors):
        rate = requests / elapsed if elapsed > 0 else 0.0
        figures = f"{elapsed:5.1f}/{duration:g}s {requests} req {rate:,.0f} req/s {errors} errors"
        if interactive:
            done = min(BAR_WIDTH, int(BAR_WIDTH * elapsed / duration))
            stream.write(f"\r[{'#' * done}{'.' * (BAR_WIDTH - done)}] {figures}\033[K")
        else:
            stream.write(figures + "\n")
        stream.flush()

    def finish():
        if interactive:
            stream.write("\n")
            stream.flush()

    return report, finish, (0.1 if interactive else 1.0)


def format_summary(summary):
    """The human-readable summary, one fact a line."""
    latency = summary["latency_ms"]

    def ms(name):
        value = latency[name]
        return "-" if value is None else f"{value:.3f}"

    lines = [f"{summary['service']} at {summary['url']}: {summary['connections']} connections "
             f"({summary['processes']} processes), {summary['elapsed_s']:.2f}s"
             + (" (interrupted)" if summary.get("interrupted") else ""),
             f"requests   {summary['requests']}",
             f"errors     {summary['errors']}"]
    for code, count in summary["errors_by_code"].items():
        lines.append(f"  {code:<20} {count}")
    lines += [f"req/s      {summary['requests_per_s']:.1f}",
              f"latency ms p50 {ms('p50')}  p90 {ms('p90')}  p99 {ms('p99')}  "
              f"max {ms('max')}  mean {ms('mean')}"]
    for failure in summary.get("worker_failures", ()):
        lines.append(f"warning: a load generator worker failed ({failure}); its connections "
                     "are counted as errors")
    return "\n".join(lines)


def cmd_bench(args):
    """Run the bench the arguments describe; print the summary; exit 1 if any call failed."""
    from esrt.bench import loadgen
    from esrt.mapping import jsonio
    params = None
    if args.data:
        try:
            params = jsonio.loads(args.data.encode())
        except ValueError as exc:
            raise loadgen.BenchError(f"--data is not valid JSON: {exc}") from None
    if args.plot:
        loadgen.require_matplotlib()
    report, finish, interval = progress_printer(args.duration, sys.stderr)
    try:
        result = loadgen.run_bench(args.url, args.service, args.connections, args.duration,
                                   params=params, processes=args.processes,
                                   timeout=args.timeout, tls=tls_client_files(args),
                                   progress=report,
                                   progress_interval=interval)
    finally:
        finish()
    summary = result.summary
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True), flush=True)
    else:
        print(format_summary(summary), flush=True)
    if args.plot:
        loadgen.write_plot(result, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout,
              flush=True)
    if summary["requests"] == 0 and summary["errors"] == 0:
        print("warning: no call completed within the run; try a longer --duration",
              file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.ERROR if summary["errors"] else ExitCode.OK


def add_bench_command(commands):
    """Add `bench` to the subparsers `commands` of the esrt command line."""
    bench = commands.add_parser(
        "bench", help="load-test a service: req/s, latency percentiles, errors",
        description="Call SERVICE back to back on N connections for SECONDS and report "
                    "requests, errors by code, req/s and latency p50/p90/p99/max.")
    bench.add_argument("service", help="PACKAGE.PROGRAM, e.g. srv01.CBLAPP01")
    bench.add_argument("--url", required=True,
                       help="listener URL: http://HOST:PORT, esrt://HOST:PORT, or with TLS "
                       "https://HOST:PORT, esrts://HOST:PORT")
    add_tls_client_options(bench)
    bench.add_argument("-c", "--connections", type=_positive_int, default=1,
                       help="concurrent connections, each calling back to back (default 1)")
    bench.add_argument("-d", "--duration", type=_positive_seconds, default=10.0,
                       metavar="SECONDS", help="how long to run (default 10)")
    bench.add_argument("--data", help="JSON object of input parameters sent with every call")
    bench.add_argument("--processes", type=_positive_int, default=None,
                       help="load generator processes (default: one per core)")
    bench.add_argument("--timeout", type=_positive_seconds, default=60.0,
                       help="seconds to wait for one reply (default 60)")
    bench.add_argument("--plot", metavar="FILE.png",
                       help="write a latency histogram and throughput over time (needs matplotlib)")
    bench.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    bench.set_defaults(func=cmd_bench)
    return bench


def main(argv=None):
    """`python -m esrt.cli.bench_cmd SERVICE --url ...`: the bench without the rest of esrt."""
    from esrt.client import ConnectionFailed, ServiceError
    parser = argparse.ArgumentParser(prog="esrt")
    add_bench_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except (ValueError, ConnectionFailed, ServiceError) as exc:
        print(f"esrt bench: error: {exc}", file=sys.stderr)
        return int(ExitCode.ERROR)


if __name__ == "__main__":
    sys.exit(main())
