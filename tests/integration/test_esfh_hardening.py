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
from esrt.cobol.esfh_build import build_esfh, esfh_cobc_args

from conftest import program_environ

FAULTS = Path(__file__).resolve().parents[1] / "cobol" / "faults"


@pytest.fixture(scope="module")
def esfh_lib(tmp_path_factory):
    return build_esfh(tmp_path_factory.mktemp("esfh-lib"))


def run(program, cwd, *args, **variables):
    result = subprocess.run([str(program), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120, env=program_environ(**variables))
    assert result.returncode == 0, f"{program.name} {' '.join(args)} ended with " \
        f"{result.returncode}:\n{result.stdout}{result.stderr}"
    return result.stdout.splitlines(), result.stderr.splitlines()


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
                     "open, key in the record: 00",
                     "write 00",
                     "close 00"]
    assert errors[0] == ("ESFH: file KEYFILE: the prime key (8 bytes at offset 16) is not "
                         "within the record of 20 bytes; the program's key definition does "
                         "not fit its record")
    assert "offset 2147483648" in errors[1] and "16 bytes at offset 4294967288" in errors[2]
