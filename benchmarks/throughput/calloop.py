"""The call limit: one COBOL program called in a loop in this process, no network.

    python calloop.py MODULE ENTRY PARAMETERS_JSON SECONDS

Loads MODULE with esrt's own runtime (cffi, the SEP's call path: cob_init once, buffers bound
once), fills the in fields from the benchmark's inputs once, and calls ENTRY back to back for
SECONDS. Calls are timed in batches sized so a batch lasts about BATCH_NS (a clock read per
call would cost as much as a null call); the latency of a call is its batch's time divided by
the batch size. Prints one JSON object: requests, errors (calls whose RETURN-CODE was not 0),
elapsed_s, rps, p50_ms, p99_ms.

Run it in a process of its own: libcob state cannot be undone (esrt.cobol.runtime). CBLAPP01
must be the plain build (GnuCOBOL's own file handler) with DD_APPFILE01 set.
"""

import json
import sys
import time

from esrt.cobol.runtime import CobolRuntime

BATCH_NS = 20_000
INPUTS = {"LK-IN-NAME": b"bench".ljust(20), "LK-IN-AMOUNT": b"0000042"}


def main():
    module, entry, parameters_json, seconds = sys.argv[1:5]
    parameters = json.loads(parameters_json)
    buffers = [bytearray(INPUTS.get(p["name"], b" " * p["length"])) for p in parameters]
    runtime = CobolRuntime()
    runtime.init()
    call = runtime.load(module, entry, len(buffers)).bind(buffers)
    clock = time.perf_counter_ns
    began = clock()
    for _ in range(100):
        call()
    batch = max(1, int(BATCH_NS * 100 / max(clock() - began, 1)))
    per_call = []
    done = errors = 0
    started = clock()
    deadline = started + int(float(seconds) * 1e9)
    now = started
    while now < deadline:
        failed = 0
        for _ in range(batch):
            failed += call() != 0
        then = clock()
        per_call.append((then - now) / batch)
        now = then
        done += batch - failed
        errors += failed
    elapsed = (now - started) / 1e9
    per_call.sort()

    def ms(q):
        return round(per_call[max(0, int(q / 100 * len(per_call) + 0.999999) - 1)] / 1e6, 6)

    print(json.dumps({"connections": 1, "requests": done, "errors": errors,
                      "elapsed_s": round(elapsed, 6), "rps": round(done / elapsed, 1),
                      "p50_ms": ms(50), "p99_ms": ms(99), "batch": batch}))


if __name__ == "__main__":
    main()
