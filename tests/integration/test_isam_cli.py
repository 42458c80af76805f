"""`esrt file` against real COBOL programs using ESFH: files written by COBOL are read by the
tools, files loaded by the tools are read by COBOL (by prime key, by alternate keys with and
without duplicates, READ NEXT order), and the tools work while other processes have the
environment open.

The commands run as separate processes (python -m esrt.cli.file_cmd), like a user runs them,
on both stores: a Berkeley DB data environment (--data-dir) and a PostgreSQL store (--store),
where they give the same results; `esrt file copy` moves files from one to the other.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esrt.cobol.compile import compile_executable
from esrt.cobol.esfh_build import build_esfh, esfh_cobc_args
from esrt.isam.files import DataEnv

ROOT = Path(__file__).resolve().parents[2]

COPYBOOK = """\
       01 CUST-REC.
          05 CUST-ID      PIC X(6).
          05 CUST-NAME    PIC X(20).
          05 CUST-CITY    PIC X(10).
          05 CUST-BAL     PIC S9(7)V99 COMP-3.
"""

SELECT = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. {name}.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT CUSTF ASSIGN TO "CUSTF"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY CUST-ID
               ALTERNATE RECORD KEY CUST-CITY WITH DUPLICATES
               ALTERNATE RECORD KEY CUST-NAME
               FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD CUSTF.
       COPY "cust.cpy".
       WORKING-STORAGE SECTION.
       01 FS PIC XX.
       01 BAL-ED PIC -(7)9.99.
       PROCEDURE DIVISION.
"""

WRITER = SELECT.format(name="CUSTW") + """\
           OPEN OUTPUT CUSTF
           MOVE "C00003" TO CUST-ID MOVE "CAROL" TO CUST-NAME
           MOVE "ROME" TO CUST-CITY MOVE 30.50 TO CUST-BAL
           PERFORM PUT-REC
           MOVE "C00001" TO CUST-ID MOVE "ALICE" TO CUST-NAME
           MOVE "PARIS" TO CUST-CITY MOVE -7.25 TO CUST-BAL
           PERFORM PUT-REC
           MOVE "C00002" TO CUST-ID MOVE "BOB" TO CUST-NAME
           MOVE "ROME" TO CUST-CITY MOVE 1234567.89 TO CUST-BAL
           PERFORM PUT-REC
           MOVE "C00005" TO CUST-ID MOVE "EVE" TO CUST-NAME
           MOVE "OSLO" TO CUST-CITY MOVE 0 TO CUST-BAL
           PERFORM PUT-REC
           MOVE "C00004" TO CUST-ID MOVE "DAN" TO CUST-NAME
           MOVE "ROME" TO CUST-CITY MOVE 0.01 TO CUST-BAL
           PERFORM PUT-REC
           CLOSE CUSTF
           STOP RUN.
       PUT-REC.
           WRITE CUST-REC
           DISPLAY "WRITE " CUST-ID " " FS.
"""

READER = SELECT.format(name="CUSTR") + """\
           OPEN INPUT CUSTF
           DISPLAY "OPEN " FS
           MOVE "C00002" TO CUST-ID
           READ CUSTF KEY IS CUST-ID
           PERFORM SHOW-REC
           MOVE "EVE" TO CUST-NAME
           READ CUSTF KEY IS CUST-NAME
           PERFORM SHOW-REC
           MOVE "ROME" TO CUST-CITY
           READ CUSTF KEY IS CUST-CITY
           PERFORM UNTIL FS NOT = "00" AND FS NOT = "02"
                      OR CUST-CITY NOT = "ROME"
               PERFORM SHOW-REC
               READ CUSTF NEXT
           END-PERFORM
           MOVE LOW-VALUES TO CUST-ID
           START CUSTF KEY IS NOT LESS THAN CUST-ID
           READ CUSTF NEXT
           PERFORM UNTIL FS NOT = "00"
               PERFORM SHOW-REC
               READ CUSTF NEXT
           END-PERFORM
           DISPLAY "END " FS
           CLOSE CUSTF
           STOP RUN.
       SHOW-REC.
           MOVE CUST-BAL TO BAL-ED
           DISPLAY "REC " CUST-ID " " CUST-NAME(1:6) CUST-CITY " "
                   BAL-ED.
"""

# What unload writes: one object per line, field names of the copybook, exact decimals.
JSONL = """\
{"CUST-ID":"C00001","CUST-NAME":"ALICE","CUST-CITY":"PARIS","CUST-BAL":-7.25}
{"CUST-ID":"C00002","CUST-NAME":"BOB","CUST-CITY":"ROME","CUST-BAL":1234567.89}
{"CUST-ID":"C00003","CUST-NAME":"CAROL","CUST-CITY":"ROME","CUST-BAL":30.50}
{"CUST-ID":"C00004","CUST-NAME":"DAN","CUST-CITY":"ROME","CUST-BAL":0.01}
{"CUST-ID":"C00005","CUST-NAME":"EVE","CUST-CITY":"OSLO","CUST-BAL":0.00}
"""


def rec(cid, name, city, bal):
    return "REC %s %-6s%-10s %11s" % (cid, name, city, bal)


BY_KEYS = [rec("C00002", "BOB", "ROME", "1234567.89"), rec("C00005", "EVE", "OSLO", "0.00")]
ALL = [rec("C00001", "ALICE", "PARIS", "-7.25"), rec("C00002", "BOB", "ROME", "1234567.89"),
       rec("C00003", "CAROL", "ROME", "30.50"), rec("C00004", "DAN", "ROME", "0.01"),
       rec("C00005", "EVE", "OSLO", "0.00")]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    work = tmp_path_factory.mktemp("isam-cli")
    lib = build_esfh(work / "lib")
    (work / "cust.cpy").write_text(COPYBOOK)
    built = {}
    for name, source in (("custw", WRITER), ("custr", READER)):
        path = work / f"{name}.cbl"
        path.write_text(source)
        built[name] = compile_executable(path, work / name, copy_dirs=[str(work)],
                                         extra_args=esfh_cobc_args(lib))
    # The writer under GnuCOBOL's own file handler: what ESFH must answer on this GnuCOBOL.
    built["custw-plain"] = compile_executable(work / "custw.cbl", work / "custw-plain",
                                              copy_dirs=[str(work)])
    built["copybook"] = work / "cust.cpy"
    built["lib"] = lib
    return built


@pytest.fixture(params=["berkeley-db", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store(request, tmp_path):
    """Where the files are: the `esrt file` options naming the store, and the environment
    variables that give COBOL programs the same store."""
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "berkeley-db":
        return {"data": data, "where": ["--data-dir", data], "env": {}}
    dsn = request.getfixturevalue("pg_store")
    return {"data": data, "where": ["--store", dsn], "env": {"ESFH_STORE": dsn}}


def cobol(program, data, store=None):
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "COB_FILE_PATH": str(data),
                                 "ESRT_DATA_DIR": str(data), **(store or {}).get("env", {})})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def esrt_file(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "esrt.cli.file_cmd", "file", *map(str, args)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def describe(where, copybook):
    return esrt_file("create", "CUSTF", "--adopt", *where, "--layout", copybook,
                     "--key", "CUST-ID", "--alt-key", "CUST-CITY:dups", "--alt-key", "CUST-NAME")


def test_cobol_written_file_is_read_by_the_tools(programs, tmp_path, store):
    data, where = store["data"], store["where"]
    plain = tmp_path / "plain"
    plain.mkdir()
    written = cobol(programs["custw"], data, store)
    # C00002 is a second ROME: GnuCOBOL 3.1 answers 02, 3.2 answers 00; ESFH as the one in use.
    assert written[2] in ("WRITE C00002 02", "WRITE C00002 00")
    assert written == cobol(programs["custw-plain"], plain)
    # Without a description the key count is unknown: a clear refusal, not garbage.
    refused = esrt_file("unload", "CUSTF", tmp_path / "x.jsonl", *where,
                        "--layout", programs["copybook"], "--key", "CUST-ID", check=False)
    assert refused.returncode == 1
    assert "2 alternate key" in refused.stderr and "--alt-key" in refused.stderr
    describe(where, programs["copybook"])
    out = tmp_path / "custf.jsonl"
    esrt_file("unload", "CUSTF", out, *where)
    assert out.read_text() == JSONL
    assert esrt_file("count", "CUSTF", *where).stdout.strip() == "5"
    assert "OK (5 records, 2 alternate key indexes" in esrt_file(
        "verify", "CUSTF", *where).stdout
    dump = esrt_file("dump", "CUSTF", *where, "--limit", "2").stdout.splitlines()
    assert [json.loads(line)["CUST-ID"] for line in dump] == ["C00001", "C00002"]
    fixed = tmp_path / "custf.dat"
    esrt_file("unload", "CUSTF", fixed, *where, "--format", "fixed")
    assert len(fixed.read_bytes()) == 5 * 41   # records only, no sequence numbers
    # Records loaded by the tool continue ESFH's duplicate sequence: COBOL reads them last.
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"CUST-ID":"C00000","CUST-NAME":"ZED","CUST-CITY":"ROME",'
                     '"CUST-BAL":-0.5}\n')
    esrt_file("load", "CUSTF", extra, *where)
    lines = cobol(programs["custr"], data, store)
    assert lines[3:7] == [rec("C00003", "CAROL", "ROME", "30.50"),
                          rec("C00002", "BOB", "ROME", "1234567.89"),
                          rec("C00004", "DAN", "ROME", "0.01"),
                          rec("C00000", "ZED", "ROME", "-0.50")]
    assert "OK (6 records" in esrt_file("verify", "CUSTF", *where).stdout


def test_tool_loaded_file_is_read_by_cobol(programs, tmp_path, store):
    data, where = store["data"], store["where"]
    source = tmp_path / "in.jsonl"
    source.write_text(JSONL)
    # This process keeps the environment open the whole time (as a region would).
    with DataEnv(data):
        esrt_file("create", "CUSTF", *where, "--layout", programs["copybook"],
                  "--key", "CUST-ID", "--alt-key", "CUST-CITY:dups", "--alt-key", "CUST-NAME")
        assert "loaded 5 records" in esrt_file("load", "CUSTF", source, *where).stdout
        lines = cobol(programs["custr"], data, store)
    rome = [rec("C00002", "BOB", "ROME", "1234567.89"), rec("C00003", "CAROL", "ROME", "30.50"),
            rec("C00004", "DAN", "ROME", "0.01")]
    assert lines == ["OPEN 00"] + BY_KEYS + rome + ALL + ["END 10"]


def test_bad_line_rolls_back_its_batch(programs, tmp_path, store):
    where = store["where"]
    esrt_file("create", "CUSTF", *where, "--layout", programs["copybook"],
              "--key", "CUST-ID", "--alt-key", "CUST-CITY:dups", "--alt-key", "CUST-NAME")
    lines = JSONL.splitlines()
    bad = '{"CUST-ID":"C00009","CUST-BAL":"lots"}'
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines[:3] + [bad] + lines[3:]) + "\n")
    failed = esrt_file("load", "CUSTF", source, *where, "--batch-size", "2", check=False)
    assert failed.returncode == 1
    assert "line 4" in failed.stderr and "CUST-BAL" in failed.stderr
    # Lines 1-2 were committed; line 3 was in the rolled-back batch with line 4.
    assert esrt_file("count", "CUSTF", *where).stdout.strip() == "2"
    duplicate = tmp_path / "dup.jsonl"
    duplicate.write_text(lines[2] + "\n" + lines[0].replace("C00001", "C00007") + "\n")
    failed = esrt_file("load", "CUSTF", duplicate, *where, check=False)
    assert "line 2" in failed.stderr and "CUST-NAME 'ALICE" in failed.stderr
    assert esrt_file("count", "CUSTF", *where).stdout.strip() == "2"
    assert esrt_file("verify", "CUSTF", *where).returncode == 0


def test_verify_finds_damaged_alternate_index(programs, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cobol(programs["custw"], data)
    describe(["--data-dir", data], programs["copybook"])
    with DataEnv(data) as env:
        handle = env.open_file("CUSTF")
        txn = env.env.txn_begin()
        handle.dbs[2].delete(b"BOB".ljust(20), txn=txn)       # CUST-NAME entry of C00002
        handle.dbs[1].put(b"OSLO".ljust(10) + b"\0\0\0\x09", b"C00099", txn=txn)
        txn.commit()
    failed = esrt_file("verify", "CUSTF", "--data-dir", data, check=False)
    assert failed.returncode == 1
    assert "CUSTF.2: record 'C00002' has no entry for alternate key CUST-NAME" in failed.stderr
    assert "CUSTF.1: entry" in failed.stderr and "'C00099'" in failed.stderr
    assert "2 problem(s)" in failed.stderr


HOLDER = textwrap.dedent("""
    import sys
    from esrt.isam import Esfh
    esfh = Esfh(sys.argv[1])
    esfh.env_open(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    esfh.failchk()
    esfh.env_close()
    print("closed", flush=True)
""")


def test_tools_share_the_environment_with_esfh_and_recover_waits(programs, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cobol(programs["custw"], data)
    describe(["--data-dir", data], programs["copybook"])
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(programs["lib"]), str(data)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "ready"
        extra = tmp_path / "extra.jsonl"
        extra.write_text('{"CUST-ID":"C00006","CUST-NAME":"FAY","CUST-CITY":"OSLO"}\n')
        esrt_file("load", "CUSTF", extra, "--data-dir", data)
        assert esrt_file("count", "CUSTF", "--data-dir", data).stdout.strip() == "6"
        esrt_file("checkpoint", "--data-dir", data)
        refused = esrt_file("recover", "--data-dir", data, check=False)
        assert refused.returncode == 1
        assert str(holder.pid) in refused.stderr and "stop the region" in refused.stderr
        # The ESFH process's failchk copes with the tools' registrations in its thread table.
        holder.stdin.write("close\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert "recovered" in esrt_file("recover", "--data-dir", data).stdout
    assert esrt_file("count", "CUSTF", "--data-dir", data).stdout.strip() == "6"
    assert cobol(programs["custr"], data)[-2] == rec("C00006", "FAY", "OSLO", "0.00")


def test_missing_environment_choice_is_explained(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ESRT_DATA_DIR"}
    result = subprocess.run([sys.executable, "-m", "esrt.cli.file_cmd", "file", "count", "X"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert "--server NAME" in result.stderr and "--data-dir" in result.stderr
    missing = esrt_file("count", "NOFILE", "--data-dir", tmp_path, check=False)
    assert "NOFILE does not exist" in missing.stderr and "esrt file create" in missing.stderr


@pytest.mark.postgresql
def test_files_copied_between_stores_read_the_same(programs, tmp_path, pg_store):
    """Berkeley DB to PostgreSQL and back: every copy holds the same records in the same key
    orders (duplicates in the order they were written), checked by its digest."""
    data, back = tmp_path / "data", tmp_path / "back"
    data.mkdir()
    back.mkdir()
    to_postgresql = {"env": {"ESFH_STORE": pg_store}}
    cobol(programs["custw"], data)
    describe(["--data-dir", data], programs["copybook"])
    in_berkeley_db = cobol(programs["custr"], data)
    copied = esrt_file("copy", "--data-dir", data, "--to-store", pg_store).stdout
    assert "copied CUSTF: 5 records" in copied and "the same in both stores" in copied
    assert cobol(programs["custr"], tmp_path, to_postgresql) == in_berkeley_db
    # The description went along: the tools read the copy without options.
    assert "OK (5 records" in esrt_file("verify", "CUSTF", "--store", pg_store).stdout
    again = esrt_file("copy", "--data-dir", data, "--to-store", pg_store, check=False)
    assert again.returncode == 1 and "--replace" in again.stderr
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"CUST-ID":"C00000","CUST-NAME":"ZED","CUST-CITY":"ROME"}\n')
    esrt_file("load", "CUSTF", extra, "--store", pg_store)
    in_postgresql = cobol(programs["custr"], tmp_path, to_postgresql)
    assert "copied CUSTF: 6 records" in esrt_file("copy", "CUSTF", "--store", pg_store,
                                                  "--to-data-dir", back).stdout
    assert cobol(programs["custr"], back) == in_postgresql
    assert rec("C00000", "ZED", "ROME", "0.00") in in_postgresql
    assert "OK (6 records" in esrt_file("verify", "CUSTF", "--data-dir", back).stdout
