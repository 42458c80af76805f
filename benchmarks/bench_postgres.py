"""Durable calls on the PostgreSQL store against pgbench running the same transaction.

    python benchmarks/bench_postgres.py            # BENCH_SECONDS per run (default 10)

esrt_pg: CBLAPP01 through a region's binary listener (C load generator, 16 connections), the
region's files in a PostgreSQL cluster of its own (esrt.testing.postgres). Each call is one
database transaction: the counter's row read FOR UPDATE, updated, the call's reply stored.

pgbench: the same statements in one transaction, on the same table and reply store, with as
many clients, each statement prepared once per connection (`-M prepared`), as ESFH prepares
its own once per session:

    BEGIN; SELECT v ... FOR UPDATE; UPDATE ... SET v; INSERT INTO the replies ...; COMMIT

Many records: examples/accounts' XFER (two accounts of ACCOUNTS read for update, both
rewritten) over ACCOUNTS accounts chosen at random, through one region with SEPS SEPs, then
through two such regions on the same database (two nodes: each its own home and mfds), with the
same number of connections in all. Prints two_regions_vs_one (req/s of two / of one). On a
two-core machine the regions and the database share core 0, so the figure says what a second
region costs there, not how far regions scale on nodes of their own.

The database, the regions and their SEPs run on core 0, the load generators on core 1. Prints
pg_vs_pgbench (esrt_pg req/s / pgbench transactions/s; the target is 0.5) and writes
benchmarks/results/postgres.json. Checks that the counter moved by exactly the number of
answered calls, and that the accounts took exactly two updates per answered transfer; exits 1
when a check failed.
"""

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import runners, servers  # noqa: E402
from esrt.client import Client  # noqa: E402
from esrt.testing.apps import build_car  # noqa: E402
from esrt.testing.postgres import PostgresCluster, bin_dir  # noqa: E402
from esrt.wire import encode_request  # noqa: E402

SERVER_CORE, LOAD_CORE = 0, 1
CONNECTIONS = 16
SEPS = 2
ACCOUNTS = 10000
# Different transfers the load generators take in turn.
TRANSFERS = 8192
XFER_SERVICE = "accounts.XFER"
# The updates count of an account record: after ACCT-ID PIC 9(6) and ACCT-BALANCE PIC S9(11).
UPDATES_SQL = ('SELECT sum(CAST(convert_from(substring(v FROM 18 FOR 9), \'UTF8\') AS bigint)) '
               'FROM esfh."ACCOUNTS"')

PGBENCH_SCRIPT = """\
\\set id random(1, 2000000000)
BEGIN;
SELECT v FROM esfh."APPFILE01" WHERE k = '\\x{key}'::bytea FOR UPDATE;
UPDATE esfh."APPFILE01" SET v = '\\x{value}'::bytea WHERE k = '\\x{key}'::bytea;
INSERT INTO esfh.__esrt_replies (key, expires, data) VALUES (convert_to('r-bench-' || \
CAST(:id AS text), 'UTF8'), 4102444800, '\\x{reply}'::bytea) ON CONFLICT (key) DO UPDATE \
SET expires = EXCLUDED.expires, data = EXCLUDED.data;
COMMIT;
"""


def pgbench(cluster, script, seconds, core):
    """pgbench's transactions per second for `script`, CONNECTIONS clients on one thread."""
    path = Path(tempfile.mkdtemp(prefix="esrt-pgbench-")) / "cblapp01.sql"
    path.write_text(script)
    command = runners.pin_prefix(core) + [
        str(bin_dir() / "pgbench"), "-n", "-M", "prepared", "-c", str(CONNECTIONS), "-j", "1",
        "-T", str(seconds), "-f", str(path), cluster.dsn]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{result.stdout}{result.stderr}")
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    return {"rps": float(found.group(1)), "requests": int(processed.group(1)),
            "errors": int(failed.group(1)) if failed else 0}


def transfer_frames(path):
    """TRANSFERS request frames of XFER between random pairs of accounts, in one file."""
    pick = random.Random(1)
    frames = []
    for number in range(TRANSFERS):
        source, target = pick.sample(range(1, ACCOUNTS + 1), 2)
        params = {"LK-FROM": source, "LK-TO": target, "LK-AMOUNT": pick.randint(1, 999)}
        frames.append(encode_request(number + 1, XFER_SERVICE, json.dumps(params).encode()))
    path.write_bytes(b"".join(frames))
    return path


def drive(loadgen, addresses, frames, seconds, core):
    """The C load generator against each address at once, CONNECTIONS split between them;
    their results summed."""
    results = [None] * len(addresses)

    def one(index, address):
        results[index] = runners.run_frames(loadgen, address, frames,
                                            CONNECTIONS // len(addresses), seconds, core,
                                            XFER_SERVICE)

    threads = [threading.Thread(target=one, args=pair) for pair in enumerate(addresses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if None in results:
        raise SystemExit("a load generator failed (see above)")
    return {"rps": round(sum(r["rps"] for r in results), 1),
            "requests": sum(r["requests"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "p50_ms": max(r["p50_ms"] for r in results),
            "p99_ms": max(r["p99_ms"] for r in results)}


def many_records(cluster, work, loadgen, seconds, core, runs, checks):
    """XFER through one region, then through two on the same store; the ratio."""
    car = build_car("XFER", workdir=work / "pkg-accounts")
    frames = transfer_frames(work / "transfers.bin")
    store = cluster.create_database("accounts")
    done = 0
    with servers.accounts_region(work / "node1", SEPS, car, store, ACCOUNTS) as first:
        for label, addresses in (("one_region", [first]), ("two_regions", None)):
            if addresses is None:
                with servers.accounts_region(work / "node2", SEPS, car, store) as second:
                    result = drive(loadgen, [first, second], frames, seconds, core)
            else:
                result = drive(loadgen, addresses, frames, seconds, core)
            runs[label] = result
            done += result["requests"]
            print(f"  {label:<11} xfer {CONNECTIONS} conns: {result['rps']:>9,.0f} req/s  "
                  f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  errors "
                  f"{result['errors']}", flush=True)
    updates = int(cluster.psql(UPDATES_SQL, store).strip())
    checks.append({"system": "accounts", "successful_calls": done, "account_updates": updates,
                   "ok": updates == 2 * done})
    return round(runs["two_regions"]["rps"] / runs["one_region"]["rps"], 3)


def counter(url):
    with Client(url) as client:
        return int(client.call(servers.CBLAPP01_SERVICE)["LK-COUNTER"])


def main():
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    out = Path(os.environ.get("BENCH_OUT", ROOT / "benchmarks" / "results"))
    pin = len(os.sched_getaffinity(0)) >= 2 and os.environ.get("BENCH_PIN", "1") != "0"
    if pin:
        os.sched_setaffinity(0, {SERVER_CORE})  # the cluster, mfds and the region inherit it
    load_core = LOAD_CORE if pin else None
    work = Path(tempfile.mkdtemp(prefix="esrt-bench-pg-"))
    loadgen = runners.build_loadgen(work / "build")
    car = servers.build_cblapp01_car(work)
    checks, runs = [], {}
    with PostgresCluster() as cluster, \
            servers.esrt_region(work, SEPS, (car,), store=cluster.dsn) as addresses:
        url = f"esrt://{addresses['binary']}"
        before = counter(url) + 1
        result = runners.run_binary(loadgen, addresses["binary"], servers.CBLAPP01_SERVICE, {},
                                    CONNECTIONS, seconds, work, load_core)
        moved = counter(url) - before
        checks.append({"system": "esrt_pg", "successful_calls": result["requests"],
                       "counter_moved": moved, "ok": moved == result["requests"]})
        runs["esrt_pg"] = {key: result[key] for key in ("rps", "p50_ms", "p99_ms", "errors",
                                                        "requests")}
        print(f"  esrt_pg   cblapp01 {CONNECTIONS} conns: {result['rps']:>9,.0f} req/s  "
              f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  errors "
              f"{result['errors']}; counter moved {moved}", flush=True)
        key, value = cluster.psql('SELECT encode(k, \'hex\'), encode(v, \'hex\') FROM '
                                  'esfh."APPFILE01"').strip().split("|")
        reply = cluster.psql("SELECT encode(data, 'hex') FROM esfh.__esrt_replies LIMIT 1")
        script = PGBENCH_SCRIPT.format(key=key, value=value, reply=reply.strip() or "00")
        runs["pgbench"] = pgbench(cluster, script, seconds, load_core)
        print(f"  pgbench   cblapp01 {CONNECTIONS} conns: {runs['pgbench']['rps']:>9,.0f} tps  "
              f"errors {runs['pgbench']['errors']}", flush=True)
        two_vs_one = many_records(cluster, work, loadgen, seconds, load_core, runs, checks)
    ratio = round(runs["esrt_pg"]["rps"] / runs["pgbench"]["rps"], 3)
    print(f"pg_vs_pgbench = {ratio} (target 0.5)")
    print(f"two_regions_vs_one = {two_vs_one}")
    for check in checks:
        if not check["ok"]:
            print(f"CHECK FAILED: {check}", file=sys.stderr)
    document = {"connections": CONNECTIONS, "seps": SEPS, "seconds": seconds, "pinned": pin,
                "accounts": ACCOUNTS, "runs": runs, "checks": checks,
                "ratios": {"pg_vs_pgbench": ratio, "two_regions_vs_one": two_vs_one}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "postgres.json").write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(check["ok"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
