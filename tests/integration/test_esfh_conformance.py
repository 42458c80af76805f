"""ESFH against GnuCOBOL's own file handler: each program in tests/conformance/ DISPLAYs every
file status and record it sees; compiled plain (libcob's BDB handler for INDEXED, its flat
files for RELATIVE) and with -fcallfh=ESFH, both runs must print the same lines. The
reference is the GnuCOBOL in use (3.1 on Debian 12, 3.2 on Debian 13), so ESFH differs between
versions only where GnuCOBOL itself does.

ESFH runs each program on both of its stores, Berkeley DB and PostgreSQL (ESFH_STORE): one
ledger, one list of known differences, for both.
"""

import subprocess
from pathlib import Path

import pytest

from esrt.cobol.compile import compile_executable
from esrt.cobol.esfh_build import build_esfh, esfh_cobc_args

from conftest import program_environ

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"

# No known differences: where libcob deviates from the COBOL standard (REWRITE or
# DELETE of an empty RELATIVE slot answers "00"), ESFH answers as libcob does.
KNOWN_DIFFERENCES = {}


@pytest.fixture(scope="module")
def esfh_lib(tmp_path_factory):
    return build_esfh(tmp_path_factory.mktemp("esfh-lib"))


STORES = ["berkeley-db", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=STORES)
def store(request):
    """The environment variables that put ESFH's files in one store (none: Berkeley DB)."""
    if request.param == "berkeley-db":
        return {}
    return {"ESFH_STORE": request.getfixturevalue("pg_store")}


def stored_tables(postgres, dsn):
    return set(postgres.psql("SELECT table_name FROM information_schema.tables WHERE "
                             "table_schema = 'esfh'", dsn=dsn).split())


def run(executable, cwd, **variables):
    result = subprocess.run([str(executable)], cwd=cwd, capture_output=True, text=True,
                            timeout=120, env=program_environ(**variables))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("name", ["idxconf", "relconf", "varconf", "rkeyconf", "slotconf",
                                  "longconf"])
def test_same_output_as_gnucobol(name, esfh_lib, tmp_path, store, request):
    source = CONFORMANCE / f"{name}.cbl"
    plain_dir, esfh_dir = tmp_path / "plain", tmp_path / "esfh"
    plain_dir.mkdir()
    esfh_dir.mkdir()
    plain = compile_executable(source, tmp_path / f"{name}-plain")
    with_esfh = compile_executable(source, tmp_path / f"{name}-esfh",
                                   extra_args=esfh_cobc_args(esfh_lib))
    expected = run(plain, plain_dir)
    got = run(with_esfh, esfh_dir, **store)
    differences = KNOWN_DIFFERENCES.get(name, {})
    expected = [differences.get(line, line) for line in expected]
    assert got == expected
    assert len(got) > 40
    assert not (plain_dir / "log.0000000001").exists()
    if not store:
        # ESFH really stored the data in its environment, not in libcob's files.
        assert (esfh_dir / "log.0000000001").exists()
        return
    # In PostgreSQL: a table per INDEXED or RELATIVE file, and nothing in the directory but
    # what libcob keeps itself (LINE SEQUENTIAL files).
    indexed_or_relative = {path.name for path in plain_dir.iterdir()
                           if not (esfh_dir / path.name).exists()}
    assert indexed_or_relative
    assert stored_tables(request.getfixturevalue("postgres"), store["ESFH_STORE"]) \
        >= {name.split(".")[0] for name in indexed_or_relative}
    assert not (esfh_dir / "log.0000000001").exists()


def test_batch_program_commit_interval(esfh_lib, tmp_path):
    """With ESFH_COMMIT_INTERVAL (one transaction per 3 writes) the results are the same."""
    source = CONFORMANCE / "relconf.cbl"
    program = compile_executable(source, tmp_path / "relconf-esfh",
                                 extra_args=esfh_cobc_args(esfh_lib))
    plain = compile_executable(source, tmp_path / "relconf-plain")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    interval = subprocess.run([str(program)], cwd=tmp_path / "a", capture_output=True, text=True,
                              env=program_environ(ESFH_COMMIT_INTERVAL="3"))
    expected = run(plain, tmp_path / "b")
    differences = KNOWN_DIFFERENCES.get("relconf", {})
    assert interval.stdout.splitlines() == [differences.get(line, line) for line in expected]


def test_file_errors_reach_the_program_as_under_gnucobol(esfh_lib, tmp_path, store):
    """USE procedures (for one file and for a mode), FILE STATUS and the runtime's own stop
    for a file with neither see ESFH's errors as they see GnuCOBOL's."""
    outcomes = []
    for name, extra in (("plain", ()), ("esfh", esfh_cobc_args(esfh_lib))):
        program = compile_executable(CONFORMANCE / "errconf.cbl", tmp_path / f"errconf-{name}",
                                     extra_args=extra)
        (tmp_path / name).mkdir()
        result = subprocess.run([str(program)], cwd=tmp_path / name, capture_output=True,
                                text=True, timeout=120,
                                env=program_environ(**(store if name == "esfh" else {})))
        runtime_errors = [line for line in result.stderr.splitlines() if "libcob" in line]
        outcomes.append((result.returncode, result.stdout.splitlines(), runtime_errors))
    assert outcomes[1] == outcomes[0]
    returncode, lines, runtime_errors = outcomes[1]
    assert ["use idx 22", "write twice 22"] == lines[2:4]
    assert "use i-o 23 0007" in lines and "read rel next 00 0003" in lines
    assert lines[-1] == "read rel past end 10 0003"
    # The file without FILE STATUS or USE procedure stops the run unit, named in the message.
    assert returncode != 0
    assert "NOFS" in runtime_errors[-1] and "status = 35" in runtime_errors[-1]
