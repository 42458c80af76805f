"""`make fuzz`: coverage-guided fuzzing (atheris, libFuzzer) of every target of
tests/fuzz/targets.py for a bounded time each.

    python tests/fuzz/run.py [--seconds 60] [TARGET ...]

Each target runs in a process of its own, from the seeds in targets.SEEDS and the corpus kept
in build/fuzz/<target> between runs. A crash (an exception, a disagreement between C and its
twin, a file written outside the deploy directory) is written to
tests/fuzz/regressions/<target>/crash-<sha1> and the run exits 1: fix the bug and commit the
file, which tests/unit/test_fuzz_regressions.py then replays in every `make test`. Python's
own code is instrumented for coverage (the twins, the parsers, zipfile); the C parts run
beside their twins on every input.

    python tests/fuzz/run.py --replay [TARGET ...]

runs every input of the corpora and every kept case through the targets once, without the
fuzzer: `make fuzz` does that again in the tree whose C parts are built with
AddressSanitizer and UndefinedBehaviorSanitizer (as `make test-sanitized` builds them), so
each input the fuzzer found interesting also reaches the C code under the sanitizers.
(libFuzzer's coverage hooks and gcc's sanitizer runtime cannot share one process, which is
why the sanitizers get a replay rather than a fuzzing run of their own.)
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REGRESSIONS = HERE / "regressions"


def worker(target, seconds, corpus):
    """Fuzz one target in this process (libFuzzer exits the process when done)."""
    import atheris
    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=["esrt", "targets", "zipfile", "json"]):
        import targets
        # What the targets import lazily is imported here, so that it is instrumented too.
        import esrt.mapping.car
        import esrt.mapping.codec
        import esrt.region._pyfrontdoor
        import esrt.region.httpserver
        import esrt.wire  # noqa: F401
    check = targets.TARGETS[target]
    corpus = Path(corpus)
    corpus.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(targets.SEEDS[target]):
        (corpus / f"seed-{number}").write_bytes(seed)
    crashes = REGRESSIONS / target
    crashes.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={seconds}",
                   f"-artifact_prefix={crashes}/", "-timeout=20", "-rss_limit_mb=3072",
                   "-max_len=8192", "-print_final_stats=1"], check)
    atheris.Fuzz()


def replay(chosen, corpus):
    """Every corpus input and kept case through its target; 1 when one fails."""
    from targets import SEEDS, TARGETS
    failed = 0
    for target in chosen:
        inputs = [path for folder in (corpus / target, REGRESSIONS / target)
                  if folder.is_dir() for path in sorted(folder.iterdir()) if path.is_file()]
        for data in [seed for seed in SEEDS[target]] + [path.read_bytes() for path in inputs]:
            try:
                TARGETS[target](data)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, then counted
                failed += 1
                print(f"  {target}: {type(exc).__name__}: {exc} on {data[:80]!r}", flush=True)
        print(f"replayed {len(inputs) + len(SEEDS[target])} inputs of {target}", flush=True)
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="targets to fuzz (default: all)")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--corpus", default=str(ROOT / "build" / "fuzz"),
                        help="where the corpora are kept between runs")
    parser.add_argument("--replay", action="store_true",
                        help="run the corpora and kept cases through the targets once")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.seconds, Path(args.corpus) / args.worker)
        return 0
    sys.path.insert(0, str(HERE))
    from targets import TARGETS
    chosen = args.targets or list(TARGETS)
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}: choose from "
                     f"{', '.join(TARGETS)}")
    if args.replay:
        return replay(chosen, Path(args.corpus))
    failed = []
    for target in chosen:
        print(f"fuzzing {target} for {args.seconds} s", flush=True)
        before = set((REGRESSIONS / target).glob("crash-*"))
        result = subprocess.run([sys.executable, __file__, "--worker", target, "--seconds",
                                 str(args.seconds), "--corpus", args.corpus],
                                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        found = sorted(set((REGRESSIONS / target).glob("crash-*")) - before)
        if result.returncode != 0 or found:
            failed.append(target)
            for path in found:
                print(f"  {target}: crash kept in {path.relative_to(ROOT)}", flush=True)
    if failed:
        print(f"fuzzing found problems in: {', '.join(failed)}; fix them and commit the cases "
              "in tests/fuzz/regressions", flush=True)
        return 1
    print("fuzzing found nothing", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
