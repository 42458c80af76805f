"""ESFH facing what it cannot trust: a program's file control block, the records a file holds,
and memory that may run out. Each fault program in tests/cobol/faults puts one of them in
front of ESFH; the program must see a file status and go on, never crash or read past a buffer
(`make test-sanitized` runs these under AddressSanitizer and UBSan, where a read past a buffer
stops the program).
"""

import subprocess
from pathlib import Path

import pytest

from esrt.cobol.compile import compile_executable
from esrt.cobol.esfh_build import build_esfh, esfh_cobc_args, sanitizing

from conftest import compile_preload, program_environ

FAULTS = Path(__file__).resolve().parents[1] / "cobol" / "faults"


@pytest.fixture(scope="module")
def esfh_lib(tmp_path_factory):
    return build_esfh(tmp_path_factory.mktemp("esfh-lib"))


def run(program, cwd, *args, **variables):
    result = subprocess.run([str(program), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120, env=program_environ(**variables))
    assert result.returncode == 0, f"{program.name} {' '.join(args)} ended with " \
        f"{result.returncode}:\n{result.stdout}{result.stderr}"
    return result.stdout.splitlines(), [line for line in result.stderr.splitlines()
                                         if not line.startswith(LIBXML_VERSION_WARNING)]


# On Debian 13, libcob was built against a newer libxml2 than the one installed, and libxml2
# says so on stderr whenever a program loads it: not ESFH's words, which these tests check.
LIBXML_VERSION_WARNING = "Warning: program compiled against libxml"


def test_a_key_outside_the_record_is_refused_at_open(esfh_lib, tmp_path):
    """KEYFCD builds its own FCD (as programs written for Micro Focus's EXTFH do) for a file of
    20-byte records, with the key in or out of the record."""
    # -fstatic-call: the program calls ESFH by name, and nothing else in it uses libesfh.so.
    program = compile_executable(FAULTS / "keyfcd.cbl", tmp_path / "keyfcd",
                                 extra_args=[*esfh_cobc_args(esfh_lib), "-fstatic-call"])
    lines, errors = run(program, tmp_path)
    assert lines == ["open, key past the record end: 39",
                     "open, key at 2 GiB: 39",
                     "open, key wrapping around: 39",
                     "open, key of no bytes: 39",
                     "open, block shorter than a key: 39",
                     "open, component past the block: 39",
                     "open, key in the record: 00",
                     "write 00",
                     "close 00"]
    assert errors[0] == ("ESFH: file KEYFILE: the prime key (8 bytes at offset 16) is not "
                         "within the record of 20 bytes; the program's key definition does "
                         "not fit its record")
    assert "offset 2147483648" in errors[1] and "16 bytes at offset 4294967288" in errors[2]
    assert errors[4] == ("ESFH: file KEYFILE: its key definition block (16 bytes) is too short "
                         "for the entries of its 1 key(s)")
    assert errors[5] == ("ESFH: file KEYFILE: the prime key's components (1 at offset 32) lie "
                         "outside its key definition block of 40 bytes")


def put_raw(data_dir, name, entries):
    """Store `entries` (key bytes -> value bytes) in database `name` of the data environment
    as they are, past ESFH's checks, as a damaged disk or another program's layout would."""
    from bsddb3 import db

    from esrt.isam.files import DataEnv
    with DataEnv(data_dir) as env:
        handle = db.DB(env.env)
        handle.open(str(data_dir / name), None, db.DB_BTREE, db.DB_AUTO_COMMIT | db.DB_THREAD)
        try:
            env.transaction(lambda txn: [handle.put(key, value, txn=txn)
                                         for key, value in entries.items()])
        finally:
            handle.close()


def test_stored_entries_of_impossible_lengths_are_file_errors(esfh_lib, tmp_path):
    """BADREC's INDEXED file has 20-byte records and a 6-byte alternate key WITH DUPLICATES,
    so each stored value is the record and a 4-byte sequence number; its RELATIVE file has
    10-byte records."""
    program = compile_executable(FAULTS / "badrec.cbl", tmp_path / "badrec",
                                 extra_args=esfh_cobc_args(esfh_lib))
    data = tmp_path / "data"
    data.mkdir()
    assert run(program, data, "LOAD")[0] == ["loaded"]
    sound = b"K0004PARIS record 4\x00\x00\x00\x04"
    put_raw(data, "DAMAGED", {
        b"K0002": b"xy",                # shorter than its own sequence number
        b"K0003": b"K0003PARIS " + b"x" * 29,       # a 36-byte record
        b"K0004" + b"Z" * 1023: sound,  # a prime key longer than ESFH's key buffers
    })
    # An alternate key entry naming a prime key of 7 bytes.
    put_raw(data, "DAMAGED.1", {b"ROME  \x00\x00\x00\x01": b"K0001XX"})
    put_raw(data, "DAMREL", {
        (2).to_bytes(8, "big"): b"slot 2    " + (2 ** 31 - 1).to_bytes(4, "big"),
        (3).to_bytes(8, "big"): b"slot 3 + 3 bytes",   # neither a record nor a slot
    })
    lines, errors = run(program, data, "CHECK")
    assert [line.rstrip() for line in lines] == [
        "open 00",
        "read K0001 00 record 1",
        "read K0002 30",
        "read K0003 30",
        "delete K0002 30",
        "rewrite K0003 30",
        "start K0001 00",
        "next 00 K0001",
        "next 30",
        "start PARIS 00",
        "next by city 00 K0001",
        "next by city 30",
        "read ROME 30",
        "start K0004 30",
        "close 00",
        "read slot 1 00 slot 1",
        "read slot 2 30",
        "read slot 3 30",
        "delete slot 2 30",
        "close 00",
    ]
    path = data / "DAMAGED"
    assert errors[0] == (f"ESFH: file {path} holds a record of 2 bytes where this program's "
                         f"description of the file allows 24: the file is damaged or was "
                         f"written with another record or key layout (check it with 'esrt "
                         f"file verify')")
    assert f"file {path} holds a record of 40 bytes" in errors[1]
    assert "holds an alternate key entry naming a prime key of 7 bytes" in " ".join(errors)
    assert "holds a prime key of 1028 bytes where this program's description of the file " \
        "allows 5" in " ".join(errors)
    assert "holds a RELATIVE slot holding a record of 2147483647 bytes" in " ".join(errors)
    assert len(errors) == 11


@pytest.mark.skipif(sanitizing(), reason="AddressSanitizer replaces malloc itself: the failing "
                    "allocator cannot come before it")
def test_an_operation_without_memory_is_a_file_error(esfh_lib, tmp_path):
    """NOMEM's file has records of up to 40,000 bytes (ESFH's record buffer, allocated at OPEN)
    and it writes one of 30,000 (the value WRITE builds)."""
    preload = compile_preload(FAULTS / "failing_alloc.c", tmp_path)
    program = compile_executable(FAULTS / "nomem.cbl", tmp_path / "nomem",
                                 extra_args=esfh_cobc_args(esfh_lib))
    outcomes = {}
    for name, sizes in (("enough", "0-0"), ("open", "40000-40000"), ("write", "30000-30000")):
        (tmp_path / name).mkdir()
        lines, errors = run(program, tmp_path / name, LD_PRELOAD=str(preload),
                            ESRT_TEST_FAIL_ALLOC=sizes)
        outcomes[name] = [line.rstrip() for line in lines], errors
    assert outcomes["enough"] == (["open output 00", "write 00", "close 00", "open input 00",
                                   "read 00 30000", "close 00"], [])
    # Without its record buffer the file does not open (and stays closed).
    assert outcomes["open"][0] == ["open output 30", "write 48", "close 42", "open input 30",
                                   "read 47 00000", "close 42"]
    assert outcomes["open"][1][0] == ("ESFH: file NOMEMFILE: no memory for its record buffer "
                                      "(40000 bytes)")
    # A WRITE that cannot build its record stores nothing.
    assert outcomes["write"] == (["open output 00", "write 30", "close 00", "open input 00",
                                  "read 10 00000", "close 00"],
                                 [f"ESFH: file {tmp_path / 'write' / 'NOMEMFILE'}: Cannot "
                                  f"allocate memory"])
