"""The example programs end to end: INITFILE creates the file, CBLAPP counts, via run_batch.

Everything here is real: cobc compiles, the batch programs run as subprocesses, and a COBOL
caller reaches the CBLAPP module through libcob's dynamic CALL (COB_LIBRARY_PATH).
"""

import os
import shutil
from pathlib import Path

import pytest

from esrt.cobol.batch import BatchError, run_batch
from esrt.cobol.compile import CompileError, compile_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cblapp01"

# A batch caller that CALLs the service program three times, as the report's client did.
CALLER = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CALLER.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01  WS-DATETIME             PIC X(20).
       01  WS-PGMNAME              PIC X(10).
       01  WS-HOSTNAME             PIC X(20).
       01  WS-COUNTER              PIC 9(10).
       01  WS-I                    PIC 9.
       PROCEDURE DIVISION.
           PERFORM 3 TIMES
               CALL "{program}" USING WS-DATETIME WS-PGMNAME
                                      WS-HOSTNAME WS-COUNTER
               DISPLAY "CALLED " WS-PGMNAME " RC " RETURN-CODE
                       " COUNTER " WS-COUNTER
           END-PERFORM
           STOP RUN.
"""


@pytest.mark.parametrize("number", ["1", "2"])
def test_initfile_then_cblapp_counts_up(tmp_path, capfd, number):
    program, initfile, appfile = f"CBLAPP0{number}", f"initfile{number}", f"APPFILE0{number}"
    data, modules, build = tmp_path / "data", tmp_path / "modules", tmp_path / "build"
    data.mkdir()
    environ = dict(os.environ, COB_LIBRARY_PATH=str(modules))
    environ[f"DD_{appfile}"] = str(data / appfile)

    assert run_batch(EXAMPLES / f"{initfile}.cbl", environ, data, build) == 0
    assert f"INITFILE{number}: created {appfile} with one record" in capfd.readouterr().out
    assert (data / appfile).is_file()

    compile_module(EXAMPLES / f"cblapp0{number}.cbl", modules)
    caller = tmp_path / "caller.cbl"
    caller.write_text(CALLER.format(program=program))
    assert run_batch(caller, environ, data, build) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("CALLED")]
    assert lines == [f"CALLED {program}   RC +000000000 COUNTER {n:010d}" for n in range(3)]

    # Running INITFILE again starts the counter from 0 again.
    assert run_batch(EXAMPLES / f"{initfile}.cbl", environ, data, build) == 0
    assert run_batch(caller, environ, data, build) == 0
    assert f"COUNTER {0:010d}" in capfd.readouterr().out


def test_cblapp_without_initfile_reports_the_file_status(tmp_path, capfd):
    modules = tmp_path / "modules"
    compile_module(EXAMPLES / "cblapp01.cbl", modules)
    caller = tmp_path / "caller.cbl"
    caller.write_text(CALLER.format(program="CBLAPP01"))
    environ = dict(os.environ, COB_LIBRARY_PATH=str(modules),
                   DD_APPFILE01=str(tmp_path / "never-created"))
    # STOP RUN returns the RETURN-CODE the last CALL left behind.
    assert run_batch(caller, environ, tmp_path, tmp_path / "build") == 8
    captured = capfd.readouterr()
    assert "CALLED CBLAPP01   RC +000000008 COUNTER 0000000000" in captured.out
    assert "CBLAPP01: OPEN of file APPFILE01 failed with file status 35" in captured.err


def test_run_batch_rebuilds_only_when_the_source_changes(tmp_path, capfd):
    source = tmp_path / "initfile1.cbl"
    shutil.copy(EXAMPLES / "initfile1.cbl", source)
    build = tmp_path / "build"
    environ = dict(os.environ, DD_APPFILE01=str(tmp_path / "APPFILE01"))

    assert run_batch(source, environ, tmp_path, build) == 0
    executable = build / "INITFILE1"
    first = executable.stat()
    os.utime(source)
    assert run_batch(source, environ, tmp_path, build) == 0
    second = executable.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    source.write_text(source.read_text().replace('": created "', '": made "'))
    capfd.readouterr()
    assert run_batch(source, environ, tmp_path, build) == 0
    assert "INITFILE1: made APPFILE01" in capfd.readouterr().out
    assert executable.stat().st_ino != first.st_ino


def test_run_batch_returns_the_programs_exit_code(tmp_path, capfd):
    build = tmp_path / "build"
    environ = dict(os.environ, DD_APPFILE01=str(tmp_path / "no" / "such" / "dir" / "F"))
    assert run_batch(EXAMPLES / "initfile1.cbl", environ, tmp_path, build) == 8
    assert "OPEN of file APPFILE01 failed with file status" in capfd.readouterr().err
    # The built executable can be run directly too.
    assert run_batch(build / "INITFILE1", environ, tmp_path, build, args=("ignored",)) == 8


def test_run_batch_errors_are_clear(tmp_path):
    with pytest.raises(BatchError, match=r"nosuch.cbl does not exist; give a COBOL source"):
        run_batch(tmp_path / "nosuch.cbl", os.environ, tmp_path, tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(BatchError, match=r"neither a COBOL source .* nor an executable"):
        run_batch(text, os.environ, tmp_path, tmp_path)
    with pytest.raises(BatchError,
                       match=r"working directory .*gone for batch program .* does not exist"):
        run_batch(EXAMPLES / "initfile1.cbl", os.environ, tmp_path / "gone", tmp_path)
    broken = tmp_path / "broken.cbl"
    broken.write_text("       IDENTIFICATION DIVISION.\n       PROGRAM-ID. BROKEN.\n"
                      "       PROCEDURE DIVISION.\n           MOVE NOSUCH TO X.\n")
    with pytest.raises(CompileError, match=r"cobc could not compile .*broken.cbl"):
        run_batch(broken, os.environ, tmp_path, tmp_path / "build")
