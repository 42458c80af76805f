"""The sanitized build (ESRT_SANITIZE=1, run by `make test-sanitized`) really is instrumented:
a sanitizer that is not there finds nothing, and a run of tests against it would prove nothing.

Instrumented code calls the sanitizers' runtimes (__asan_report_*, __ubsan_handle_*) wherever
it checks a memory access or an operation; a library that only links them does not.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from esrt import native
from esrt.cobol.esfh_build import build_esfh, esfh_library, sanitizing

EXTENSIONS = ("_codec", "_frames", "_callpath")


def runtime_calls(library):
    """The sanitizer runtime functions a shared library calls."""
    listing = subprocess.run(["nm", "-D", "--undefined-only", str(library)], check=True,
                             capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in listing.splitlines() if line.strip()}
    return ({name for name in names if name.startswith("__asan_report_")},
            {name for name in names if name.startswith("__ubsan_handle_")})


def libasan():
    return subprocess.run(["gcc", "-print-file-name=libasan.so"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_esrt_sanitize_builds_esfh_with_both_sanitizers(tmp_path, monkeypatch):
    monkeypatch.setenv("ESRT_SANITIZE", "1")
    library = build_esfh(tmp_path)
    address, undefined = runtime_calls(library)
    assert address and undefined
    # Switching back rebuilds it, although it is newer than its sources.
    monkeypatch.setenv("ESRT_SANITIZE", "0")
    assert runtime_calls(build_esfh(tmp_path)) == (set(), set())


# Hands ESFH a file control block (FCD) far too short for it, as a broken program would.
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    esfh = ctypes.CDLL(sys.argv[1])
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    fcd = libc.malloc(16)
    ctypes.memset(fcd, 0, 16)
    ctypes.memset(fcd + 5, 2, 1)     # fileOrg: INDEXED, which ESFH handles itself
    esfh.ESFH(ctypes.c_char_p(b"\\xfa\\x00"), ctypes.c_void_p(fcd))   # OPEN INPUT
    print("ESFH read past the FCD unnoticed")
    """
)


def test_a_read_past_a_buffer_in_sanitized_esfh_stops_the_process(tmp_path, monkeypatch):
    monkeypatch.setenv("ESRT_SANITIZE", "1")
    library = build_esfh(tmp_path)
    environ = dict(os.environ, LD_PRELOAD=libasan(), ASAN_OPTIONS="detect_leaks=0")
    result = subprocess.run([sys.executable, "-c", PROBE, str(library)], env=environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result.stdout
    assert "AddressSanitizer: heap-buffer-overflow" in result.stderr, result.stderr
    # Caught by ESFH's own instrumented code (frame #0), not by a libc interceptor.
    first_frame = re.search(r"^\s*#0 .*$", result.stderr, re.MULTILINE).group(0)
    assert "esfh.c" in first_frame, result.stderr


@pytest.mark.skipif(not sanitizing(), reason="only under make test-sanitized")
def test_the_native_parts_under_test_are_instrumented():
    parts = [native.built(name) for name in EXTENSIONS]
    assert None not in parts, "the extensions are not built: run setup.py build_ext"
    for library in [part.__file__ for part in parts] + [esfh_library()]:
        address, undefined = runtime_calls(library)
        assert address and undefined, f"{library} is not instrumented"
