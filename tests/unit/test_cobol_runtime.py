"""esrt.cobol: compiling with real cobc, calling real modules through libcob, and how abends end.

libcob keeps per-process state (cob_init cannot be undone, it takes over signals), so every
program call happens in a child Python process running DRIVER; the pytest process never
initialises libcob.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esrt.cobol import bindings, dialect
from esrt.cobol.compile import (CompileError, cobc_version, compile_executable, compile_module,
                                program_id)
from esrt.cobol.runtime import Program, describe_exit

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "cblapp01"
ABEND = REPO / "tests" / "cobol" / "abend"

# Loads one entry point, binds buffers of the given sizes and calls it N times, printing one
# JSON line per call. "mode" chooses extras: "wait" reports readiness and waits on stdin.
DRIVER = textwrap.dedent(
    """
    import json, sys
    from esrt.cobol.runtime import CobolRuntime
    module, entry, sizes, calls, mode = sys.argv[1:6]
    sizes = [int(size) for size in sizes.split(",") if size]
    runtime = CobolRuntime()
    runtime.init()
    if mode == "wait":
        print("ready", flush=True)
        sys.stdin.read()
    program = runtime.load(module, entry, len(sizes))
    assert runtime.load(module, entry, len(sizes)) is program
    buffers = [bytearray(size) for size in sizes]
    call = program.bind(buffers)
    for _ in range(int(calls)):
        rc = call()
        print(json.dumps({"rc": rc, "out": [b.decode("latin-1") for b in buffers]}), flush=True)
    """
)

WSCOUNT = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. WSCOUNT.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01  WS-CALLS                PIC 9(4) VALUE 0.
       LINKAGE SECTION.
       01  LK-CALLS                PIC 9(4).
       PROCEDURE DIVISION USING LK-CALLS.
           ADD 1 TO WS-CALLS
           MOVE WS-CALLS TO LK-CALLS
           GOBACK.
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Compile the examples and the abend programs once for this module."""
    out = tmp_path_factory.mktemp("cobol-build")
    (out / "wscount.cbl").write_text(WSCOUNT)
    modules = {
        "CBLAPP01": compile_module(EXAMPLES / "cblapp01.cbl", out),
        "WSCOUNT": compile_module(out / "wscount.cbl", out),
    }
    for source in sorted(ABEND.glob("*.cbl")):
        modules[program_id(source)] = compile_module(source, out)
    modules["INITFILE1"] = compile_executable(EXAMPLES / "initfile1.cbl", out / "INITFILE1")
    return modules


def child_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def drive(module, entry, sizes, calls=1, mode="plain", env=None):
    """Run DRIVER in a child process; return (CompletedProcess, list of per-call results)."""
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(module), entry, ",".join(map(str, sizes)),
         str(calls), mode],
        capture_output=True, text=True, env=env or child_env(), timeout=120,
    )
    results = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, results


def init_appfile(build, tmp_path):
    data = tmp_path / "APPFILE01.dat"
    env = child_env(DD_APPFILE01=str(data))
    result = subprocess.run([build["INITFILE1"]], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "INITFILE1: created APPFILE01" in result.stdout
    assert data.exists()
    return env


def test_cblapp01_counts_from_zero_and_fills_every_field(build, tmp_path):
    env = init_appfile(build, tmp_path)
    result, calls = drive(build["CBLAPP01"], "CBLAPP01", [20, 10, 20, 10], calls=5, env=env)
    assert result.returncode == 0, result.stderr
    assert [call["out"][3] for call in calls] == [f"{n:010d}" for n in range(5)]
    expected_host = socket.gethostname()[:20].ljust(20)
    for call in calls:
        datetime, name, host, _ = call["out"]
        assert call["rc"] == 0
        assert re.fullmatch(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d\.\d\d", datetime), datetime
        assert name == "CBLAPP01  "
        assert "\0" not in host
        assert host == expected_host
    # The counter lives in the file, not in the process: a new process carries on at 5.
    _, calls = drive(build["CBLAPP01"], "CBLAPP01", [20, 10, 20, 10], calls=1, env=env)
    assert calls[0]["out"][3] == "0000000005"


def test_cblapp01_without_its_file_returns_8_and_names_the_status(build, tmp_path):
    env = child_env(DD_APPFILE01=str(tmp_path / "missing.dat"))
    result, calls = drive(build["CBLAPP01"], "CBLAPP01", [20, 10, 20, 10], calls=2, env=env)
    assert result.returncode == 0
    assert [call["rc"] for call in calls] == [8, 8]
    assert all(call["out"][3] == "0" * 10 for call in calls)
    assert "OPEN of file APPFILE01 failed with file status 35" in result.stderr


def test_working_storage_is_kept_between_calls(build):
    result, calls = drive(build["WSCOUNT"], "WSCOUNT", [4], calls=3)
    assert result.returncode == 0, result.stderr
    assert [call["out"][0] for call in calls] == ["0001", "0002", "0003"]


def test_stop_run_in_a_called_program_ends_the_process_with_its_return_code(build):
    result, calls = drive(build["STOPRUN"], "STOPRUN", [8])
    assert calls == []
    assert result.returncode == 12
    assert "STOPRUN: stopping the run unit" in result.stdout
    assert "libcob" not in result.stderr
    assert describe_exit(result.returncode, result.stderr, "STOPRUN") == (
        "program STOPRUN ended with exit status 12")


def test_runtime_error_ends_the_process_with_status_1_and_a_libcob_error(build):
    result, calls = drive(build["CALLMISS"], "CALLMISS", [8])
    assert calls == []
    assert result.returncode == 1
    assert "libcob: error: module 'NOSUCHPG' not found" in result.stderr
    assert describe_exit(result.returncode, result.stderr, "CALLMISS") == (
        "program CALLMISS abended: runtime error: module 'NOSUCHPG' not found")


def test_crash_ends_the_process_with_the_signal_number_as_status(build):
    result, calls = drive(build["SEGV"], "SEGV", [8])
    assert calls == []
    # libcob 3.1 exits with the signal's number; 3.2 raises the signal again after its message
    # ("attempt to reference unallocated memory (signal SIGSEGV)" in 3.1, "attempt to
    # reference invalid memory address (signal)" in 3.2).
    assert result.returncode in (signal.SIGSEGV, -signal.SIGSEGV)
    assert "attempt to reference" in result.stderr and "(signal" in result.stderr
    described = describe_exit(result.returncode, result.stderr, "SEGV")
    assert described.startswith("program SEGV abended: crashed with SIGSEGV (attempt to reference")


@pytest.mark.parametrize("returncode, stderr, described", [
    (11, "\nattempt to reference unallocated memory (signal SIGSEGV)\n\n",
     "program P abended: crashed with SIGSEGV (attempt to reference unallocated memory)"),
    (-11, "\nattempt to reference invalid memory address (signal)\n\n",
     "program P abended: crashed with SIGSEGV (attempt to reference invalid memory address)"),
    (-15, "\nSIGTERM (signal)\n", "program P abended: stopped by SIGTERM"),
    (15, "\nSIGTERM (signal SIGTERM)\n", "program P abended: stopped by SIGTERM"),
    (-11, "", "program P abended: killed by SIGSEGV"),
    (-9, "\nattempt to reference invalid memory address (signal SIGSEGV)\n",
     "program P abended: killed by SIGKILL"),
    (11, "", "program P ended with exit status 11"),
])
def test_both_libcob_crash_forms_read_as_an_abend(returncode, stderr, described):
    assert describe_exit(returncode, stderr, "P") == described


def test_init_gives_sigterm_back_to_python(build):
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(build["WSCOUNT"]), "WSCOUNT", "4", "1", "wait"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=child_env(),
    )
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # libcob's own handler would have exited with status 15 and "caught signal" on stderr.
    assert process.returncode == -signal.SIGTERM
    assert "caught signal" not in stderr
    assert describe_exit(process.returncode, stderr, "X") == "program X abended: killed by SIGTERM"


def test_load_errors_name_the_module_and_the_entry(build, tmp_path):
    result, _ = drive(tmp_path / "NOPE.so", "NOPE", [1])
    assert "LoadError: COBOL module" in result.stderr
    assert "NOPE.so does not exist; compile the program" in result.stderr
    result, _ = drive(build["WSCOUNT"], "OTHER", [4])
    assert "has no entry point 'OTHER'" in result.stderr
    assert "check the program's PROGRAM-ID" in result.stderr


def test_module_needing_an_absent_file_handler_fails_to_load_clearly(tmp_path):
    module = compile_module(EXAMPLES / "cblapp01.cbl", tmp_path, callfh="NOSUCHFH")
    result, calls = drive(module, "CBLAPP01", [20, 10, 20, 10])
    assert calls == []
    assert f"COBOL module {module} cannot be loaded" in result.stderr
    assert "undefined symbol: NOSUCHFH" in result.stderr
    assert "preload any library it needs" in result.stderr


def test_hyphenated_program_id_is_found_by_its_cobol_name(tmp_path):
    source = tmp_path / "hyphen.cbl"
    source.write_text(WSCOUNT.replace("PROGRAM-ID. WSCOUNT.", "PROGRAM-ID. WS-COUNT."))
    module = compile_module(source, tmp_path)
    assert module.name == "WS-COUNT.so"
    result, calls = drive(module, "WS-COUNT", [4], calls=2)
    assert result.returncode == 0, result.stderr
    assert [call["out"][0] for call in calls] == ["0001", "0002"]


def test_the_libcob_version_read_is_that_of_the_cobc_in_use():
    major, minor = (int(part) for part in cobc_version().split(".")[:2])
    assert dialect.libcob_version()[:2] == (major, minor)


def test_missing_libcob_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(bindings, "_libcob", None)
    monkeypatch.setattr(bindings, "LIBCOB_SONAMES", ("libcob-not-here.so.4",))
    monkeypatch.setattr(dialect.ctypes.util, "find_library", lambda name: None)
    monkeypatch.delenv("ESRT_LIBCOB", raising=False)
    with pytest.raises(bindings.LibraryNotFound, match=r"apt-get install gnucobol3"):
        bindings.libcob()


def test_bind_checks_the_buffers():
    program = Program("CBLAPP01", Path("/x/CBLAPP01.so"), 2, function=None)
    with pytest.raises(ValueError, match="CBLAPP01 takes 2 parameters, got 1 buffers"):
        program.bind([bytearray(4)])
    with pytest.raises(TypeError, match="buffer 1 for program CBLAPP01 is not a writable"):
        program.bind([bytearray(4), b"read-only"])
    buffers = [bytearray(4), bytearray(4)]
    bound = program.bind(buffers)
    # A bound buffer cannot be resized under the program's feet, while the binding lives.
    with pytest.raises(BufferError):
        buffers[0].extend(b"more")
    del bound
    buffers[0].extend(b"more")


def test_cobc_version_is_gnucobol_3():
    assert re.fullmatch(r"3\.\d+(\.\d+)*", cobc_version())


def test_compile_error_shows_diagnostics_and_the_command(tmp_path):
    source = tmp_path / "bad.cbl"
    source.write_text("       IDENTIFICATION DIVISION.\n       PROGRAM-ID. BAD.\n"
                      "       PROCEDURE DIVISION.\n           MOVE NOSUCH TO OTHER.\n")
    with pytest.raises(CompileError) as caught:
        compile_module(source, tmp_path / "out")
    text = str(caught.value)
    assert "cobc could not compile" in text
    assert "'NOSUCH'" in text
    assert f"to reproduce: {caught.value.command[0]} -m -o {tmp_path / 'out' / 'BAD.so'}" in text
    assert list((tmp_path / "out").iterdir()) == []


def test_compile_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(CompileError, match=r"nosuch.cbl does not exist"):
        compile_module(tmp_path / "nosuch.cbl", tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("       IDENTIFICATION DIVISION.\n       PROGRAM-ID. CBLAPP01.\n", "CBLAPP01"),
        ("      * PROGRAM-ID. OLD.\n       PROGRAM-ID.\n           NEWNAME.\n", "NEWNAME"),
        ("000100 PROGRAM-ID. 'quoted'.\n", "quoted"),
        ("       program-id. inner as \"OUTER\".\n", "OUTER"),
        ("identification division. *> PROGRAM-ID. NO.\nprogram-id. free-form.\n", "free-form"),
    ],
)
def test_program_id(tmp_path, text, expected):
    source = tmp_path / "p.cbl"
    source.write_text(text)
    assert program_id(source) == expected


IDENT_AREA = "       PROGRAM-ID.".ljust(72)


@pytest.mark.parametrize(
    ("text", "cobc_args", "expected"),
    [
        # Columns 73-80 (identification area) and 1-6 (sequence area) are not program text.
        (IDENT_AREA + "IDAREA01\n           REALNAME.\n", (), "REALNAME"),
        (IDENT_AREA + "IDAREA01\nSEQ002     SEQNAME.                                    "
         "                   CHANGE01\n", (), "SEQNAME"),
        ("       PROGRAM-ID. NAMED.".ljust(72) + "OTHER\n", (), "NAMED"),
        # The name, or its AS phrase, after comment and blank lines.
        ("       PROGRAM-ID.\n      * the name follows\n\n           LATE.\n", (), "LATE"),
        ("       PROGRAM-ID. INNER\n           AS \"OUTER\".\n", (), "OUTER"),
        # Free format has no areas: -free, or a directive, says so.
        (" " * 72 + "PROGRAM-ID. WIDE.\n", ("-free",), "WIDE"),
        ("       >>SOURCE FORMAT IS FREE\n" + " " * 72 + "PROGRAM-ID. FREED.\n", (), "FREED"),
        ('      $SET SOURCEFORMAT"VARIABLE"\n' + IDENT_AREA + "VARNAME.\n", (), "VARNAME"),
        ("       >>SOURCE FREE\n>>SOURCE FIXED\n" + IDENT_AREA + "IDAREA01\n"
         "           BACK.\n", (), "BACK"),
    ],
)
def test_program_id_is_read_as_cobc_reads_the_source(tmp_path, text, cobc_args, expected):
    source = tmp_path / "p.cbl"
    source.write_text(text)
    assert program_id(source, cobc_args) == expected


def test_module_is_named_after_the_program_cobc_compiles(tmp_path):
    """A fixed-format source with an identification area: the module is named after the
    program cobc sees, and exports it."""
    source = tmp_path / "idarea.cbl"
    source.write_text("\n".join([IDENT_AREA + "IDAREA01", "           REALNAME.",
                                  "       PROCEDURE DIVISION.".ljust(72) + "IDAREA02",
                                  "           GOBACK.", ""]))
    module = compile_module(source, tmp_path / "out")
    assert module == tmp_path / "out" / "REALNAME.so"
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(module)], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "REALNAME" in symbols and "IDAREA01" not in symbols


def test_program_id_missing(tmp_path):
    source = tmp_path / "p.cbl"
    source.write_text("       IDENTIFICATION DIVISION.\n")
    with pytest.raises(CompileError, match=r"has no PROGRAM-ID; add"):
        program_id(source)
