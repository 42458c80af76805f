"""CBLAPP01's field codec: the C extension (esrt._codec) against its pure-Python twin.

    python benchmarks/bench_codec.py [--calls 200000]

Times ProgramCodec.dump_outputs and load_inputs for CBLAPP01's LINKAGE (three PIC X
fields and a PIC 9(10) counter) with each implementation in the same process and prints
the ratio twin time / C time (how many times faster C is). Ratios, not times, are the
result; nothing here is asserted.
"""

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esrt.mapping import ProgramCodec, defmap, speedups  # noqa: E402

REQUEST = {"LK-DATETIME": "2024-05-01 12:34:56", "LK-PGMNAME": "CBLAPP01",
           "LK-HOSTNAME": "node1.example.org", "LK-COUNTER": 1234567}


def cblapp01_program():
    """CBLAPP01's mapping, read from its source as imtkmake reads it."""
    source = ROOT / "examples" / "cblapp01" / "cblapp01.cbl"
    return defmap([str(source)], "bench")["programs"][0]


def measure(calls=200000):
    """{operation: {implementation: seconds per call}} for the implementations built."""
    program = cblapp01_program()
    results = {"dump_outputs": {}, "load_inputs": {}}
    for name in speedups.AVAILABLE:
        codec = ProgramCodec(program, name)
        buffers = codec.new_buffers()
        codec.load_inputs(buffers, REQUEST)
        # Each lambda is timed within this iteration, with this iteration's codec.
        for operation, call in (("dump_outputs", lambda: codec.dump_outputs(buffers)),  # noqa: B023
                                ("load_inputs",
                                 lambda: codec.load_inputs(buffers, REQUEST))):  # noqa: B023
            best = min(timeit.repeat(call, number=calls // 5, repeat=5))
            results[operation][name] = best / (calls // 5)
    return results


def report(results):
    """Lines of text: per-call times and the twin / C ratio."""
    lines = []
    for operation, times in results.items():
        text = ", ".join("%s %.2f us" % (name, seconds * 1e6) for name, seconds in times.items())
        if "c" in times:
            text += "; C is %.2fx the twin's speed" % (times["python"] / times["c"])
        else:
            text += "; esrt._codec not built, no ratio"
        lines.append("CBLAPP01 %s: %s" % (operation, text))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200000)
    args = parser.parse_args(argv)
    print("\n".join(report(measure(args.calls))))


if __name__ == "__main__":
    main()
