"""Compile COBOL sources with GnuCOBOL's cobc.

`cobc_command()` is the one place that builds a cobc command line, so that options every esrt
program needs (later `-fcallfh=ESFH` for the transactional file handler) are added once.
Outputs are written under a temporary name and renamed into place: overwriting a module that a
running SEP has mapped would crash that SEP, while a rename leaves it on the old file.
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

MODULE = "module"
EXECUTABLE = "executable"

# cobc flag per kind of output: -m a loadable module (.so), -x a main program.
_KIND_FLAGS = {MODULE: "-m", EXECUTABLE: "-x"}

SOURCE_SUFFIXES = (".cbl", ".cob", ".cobol")
COBC_MISSING_HINT = "install GnuCOBOL (apt-get install gnucobol3) or set ESRT_COBC to cobc's path"


class CompileError(RuntimeError):
    """cobc failed or could not run; str() has its diagnostics and the command to reproduce."""

    def __init__(self, message, command=None, diagnostics=""):
        self.command = list(command) if command else None
        self.diagnostics = diagnostics
        text = message
        if diagnostics.strip():
            text += "\n" + diagnostics.rstrip()
        if self.command:
            text += "\nto reproduce: " + shlex.join(self.command)
        super().__init__(text)


def cobc_path():
    """Return the cobc executable to use ($ESRT_COBC, else cobc on PATH)."""
    configured = os.environ.get("ESRT_COBC")
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise CompileError(f"ESRT_COBC={configured} is not an executable file; "
                               f"fix it or unset it to use cobc from PATH")
        return configured
    found = shutil.which("cobc")
    if not found:
        raise CompileError(f"the GnuCOBOL compiler cobc is not on PATH; {COBC_MISSING_HINT}")
    return found


def cobc_version():
    """Return cobc's version number, e.g. "3.1.2.0"."""
    command = [cobc_path(), "--version"]
    result = _run(command)
    if result.returncode != 0:
        raise CompileError("cobc --version failed", command, result.stderr + result.stdout)
    first = result.stdout.splitlines()[0] if result.stdout else ""
    match = re.search(r"(\d+\.\d+(?:\.\d+)*)", first)
    return match.group(1) if match else first.strip()


def cobc_command(kind, source, out, copy_dirs=(), extra_args=(), callfh=None):
    """Return the cobc command line that compiles `source` into `out`.

    `kind` is MODULE (cobc -m) or EXECUTABLE (cobc -x); `copy_dirs` become -I (COPY books);
    `callfh` names an EXTFH file handler (-fcallfh=NAME); `extra_args` go last.
    """
    if kind not in _KIND_FLAGS:
        raise ValueError(f"unknown kind of cobc output {kind!r}; use {MODULE!r} or {EXECUTABLE!r}")
    command = [cobc_path(), _KIND_FLAGS[kind]]
    for directory in copy_dirs:
        command += ["-I", str(directory)]
    if callfh:
        command.append(f"-fcallfh={callfh}")
    command += [str(arg) for arg in extra_args]
    command += ["-o", str(out), str(source)]
    return command


def compile_module(source, out_dir, copy_dirs=(), extra_args=(), callfh=None):
    """Compile `source` with cobc -m into `out_dir`/<PROGRAM-ID>.so and return that path."""
    source = _existing_source(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{program_id(source)}.so"
    return _compile(MODULE, source, out, copy_dirs, extra_args, callfh)


def compile_executable(source, out_path, copy_dirs=(), extra_args=(), callfh=None):
    """Compile `source` with cobc -x into the executable `out_path` and return that path."""
    source = _existing_source(source)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _compile(EXECUTABLE, source, out, copy_dirs, extra_args, callfh)


def _compile(kind, source, out, copy_dirs, extra_args, callfh):
    # cobc names its intermediate files after the output; keep the suffix so -m still makes
    # a proper shared object, and make the name unique per process.
    temporary = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    command = cobc_command(kind, source, temporary, copy_dirs, extra_args, callfh)
    try:
        result = _run(command)
        if result.returncode != 0 or not temporary.exists():
            # Show the command with the real output name: that is what a user would rerun.
            shown = cobc_command(kind, source, out, copy_dirs, extra_args, callfh)
            raise CompileError(f"cobc could not compile {source} (exit status "
                               f"{result.returncode})", shown, result.stderr + result.stdout)
        os.replace(temporary, out)
    finally:
        if temporary.exists():
            temporary.unlink()
    return out


def _run(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, errors="replace")
    except OSError as exc:
        raise CompileError(f"cannot run {command[0]}: {exc}; {COBC_MISSING_HINT}") from None


def _existing_source(source):
    source = Path(source)
    if not source.is_file():
        raise CompileError(f"COBOL source {source} does not exist; check the file name")
    return source


# PROGRAM-ID. NAME [AS "external"] or PROGRAM-ID. "name": the entry point is the AS literal if
# given, else the name (quotes removed).
_PROGRAM_ID = re.compile(
    r"PROGRAM-ID\s*\.?\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z0-9_-]+))"
    r"(?:\s+AS\s+(?:\"([^\"]+)\"|'([^']+)'))?",
    re.IGNORECASE,
)


def program_id(source):
    """Return the entry-point name of the first program in `source`, read from PROGRAM-ID.

    Only the text up to the PROGRAM-ID is looked at; comment lines (fixed-format `*` or `/` in
    column 7, or `*>` anywhere) are skipped. Raises CompileError when there is none.
    """
    source = Path(source)
    text = []
    try:
        with open(source, encoding="latin-1") as handle:
            for line in handle:
                line = line.rstrip("\r\n")
                if len(line) > 6 and line[6] in "*/" and not line[:6].strip("0123456789 "):
                    continue
                code = line.split("*>", 1)[0]
                text.append(code)
                if "PROGRAM-ID" in code.upper():
                    # The name may sit on the next line; read one more before matching.
                    following = next(handle, "")
                    text.append(following.split("*>", 1)[0])
                    break
    except OSError as exc:
        raise CompileError(f"cannot read COBOL source {source}: {exc}") from None
    match = _PROGRAM_ID.search("\n".join(text))
    if not match:
        raise CompileError(f"COBOL source {source} has no PROGRAM-ID; add "
                           f"`PROGRAM-ID. NAME.` to its IDENTIFICATION DIVISION")
    external = match.group(4) or match.group(5)
    return external or match.group(1) or match.group(2) or match.group(3)
