"""Each request is one atomic, isolated, durable transaction over its files, on any number of SEPs,
with the files in either store (the region's Berkeley DB environment, or a PostgreSQL database).

CBLAPP01 reads a counter, returns it and rewrites it plus one: lost or doubled updates show up as
repeated or missing counters.
"""

import json
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from esrt.client import Client
from esrt.node.runs import read_json

from conftest import start_cblapp01_region

CALLERS = 8
CALLS_EACH = 500


def call_concurrently(url, callers, calls_each, errors, until=lambda: True):
    """Each caller makes `calls_each` calls, then goes on while `until()` is false."""
    counters, lock = [], threading.Lock()

    def caller():
        with Client(url) as client:
            done = 0
            while done < calls_each or not until():
                done += 1
                try:
                    value = client.call("srv01.CBLAPP01")["LK-COUNTER"]
                except Exception as exc:  # noqa: BLE001 - collected: the test asserts there are none
                    errors.append(repr(exc))
                    continue
                with lock:
                    counters.append(value)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counters


def sep_pids(region):
    run_dir = Path(read_json(region.node.home / "run" / f"{region.name}.json")["run"])
    return [int(pid) for pid in (read_json(run_dir / "processes.json") or {})["seps"].values()]


@pytest.fixture(params=["berkeley-db", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store(request):
    """The `esrt server create` options that put the region's files in one store."""
    if request.param == "berkeley-db":
        return ()
    return ("--store", request.getfixturevalue("pg_store"))


def test_concurrent_callers_on_four_seps_lose_no_update(node, srv01_car, store):
    region = start_cblapp01_region(node, srv01_car, seps=4, extra=store)
    errors = []
    counters = call_concurrently(region.url, CALLERS, CALLS_EACH, errors)
    assert errors == []
    assert sorted(counters) == list(range(CALLERS * CALLS_EACH))
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == CALLERS * CALLS_EACH
    data = node.home / "servers" / region.name / "data"
    if store:
        # The counter lives in the database: no Berkeley DB environment in the data directory.
        assert not list(data.glob("log.*")) and not (data / "APPFILE01").exists()
        console = (node.home / "servers" / region.name / "logs" / "console.log").read_text()
        assert "PostgreSQL store" in console
    else:
        assert list(data.glob("log.*")) and (data / "APPFILE01").exists()


def test_seps_killed_mid_load_cost_callers_nothing(node, srv01_car, store):
    region = start_cblapp01_region(node, srv01_car, seps=4, extra=store)
    errors, kills, stop = [], [], threading.Event()

    def killer():
        rng = random.Random(7)
        deadline = time.monotonic() + 120  # bounded: a dead region must fail the test, not hang it
        while len(kills) < 20 and not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.15)
            pid = rng.choice(sep_pids(region) or [0])
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        # The load lasts at least until the 20th kill, however fast the calls are.
        counters = call_concurrently(region.url, CALLERS, CALLS_EACH, errors,
                                     until=lambda: not thread.is_alive())
    finally:
        stop.set()
        thread.join()
    assert len(kills) == 20
    assert errors == []
    assert len(counters) >= CALLERS * CALLS_EACH
    assert sorted(counters) == list(range(len(counters)))
    console = (node.home / "servers" / region.name / "logs" / "console.log").read_text()
    assert "ESSI1706W" in console or "ESSI1707I" in console


def test_idempotency_key_returns_the_committed_reply(node, srv01_car, store):
    esrt_region = start_cblapp01_region(node, srv01_car, extra=store)
    key = str(uuid.uuid4())
    with Client(esrt_region.url) as client:
        first = client.request("POST", "/services/srv01/CBLAPP01", b"{}",
                               {"Idempotency-Key": key})
        again = client.request("POST", "/services/srv01/CBLAPP01", b"{}",
                               {"Idempotency-Key": key})
        assert json.loads(first[2]) == json.loads(again[2])
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 1
        status, _, body = client.request("POST", "/services/srv01/CBLAPP01", b"{}",
                                         {"Idempotency-Key": "x" * 201})
        assert status == 400 and b"bad_idempotency_key" in body


def test_a_region_killed_outright_recovers_its_data_on_restart(esrt_region):
    node, name = esrt_region.node, esrt_region.name
    with Client(esrt_region.url) as client:
        assert [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(5)] == list(range(5))
    node.esrt("casstop", "-r", name, "--force")
    node.esrt("casstart", "-r", name, "--wait")
    console = (node.home / "servers" / name / "logs" / "console.log").read_text()
    assert "ESDB0001I" in console
    url = "http://" + node.region_status(name)["listeners"][0]["address"]
    with Client(url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 5


def test_batch_single_transaction_rolls_back_a_failed_run(node, srv01_car, tmp_path):
    region = start_cblapp01_region(node, srv01_car)
    failing = tmp_path / "bumpfail.cbl"
    failing.write_text(BUMP_AND_FAIL)
    result = node.esrt("batch", "run", str(failing), "--server", region.name,
                       "--commit-interval", "single", check=False)
    assert result.returncode != 0
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
    # Without --commit-interval each rewrite commits on its own: all 100 stay, failure or not.
    node.esrt("batch", "run", str(failing), "--server", region.name, check=False)
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 101


# Adds 100 to APPFILE01's counter one rewrite at a time, then ends with RETURN-CODE 8.
BUMP_AND_FAIL = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. BUMPFAIL.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT APPFILE01 ASSIGN TO EXTERNAL APPFILE01
               ORGANIZATION IS INDEXED
               ACCESS MODE IS RANDOM
               RECORD KEY IS RKEY
               FILE STATUS IS WS-STATUS.
       DATA DIVISION.
       FILE SECTION.
       FD APPFILE01.
       01 APPREC.
          05 RKEY              PIC X(6).
          05 AF-COUNTER        PIC 9(10).
       WORKING-STORAGE SECTION.
       01 WS-STATUS            PIC XX.
       01 WS-I                 PIC 9(4).
       PROCEDURE DIVISION.
           OPEN I-O APPFILE01
           PERFORM VARYING WS-I FROM 1 BY 1 UNTIL WS-I > 100
              MOVE SPACES TO RKEY
              READ APPFILE01
              ADD 1 TO AF-COUNTER
              REWRITE APPREC
           END-PERFORM
           CLOSE APPFILE01
           MOVE 8 TO RETURN-CODE
           STOP RUN.
"""
