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
    out = out_dir / f"{program_id(source, extra_args)}.so"
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

# Reference formats as cobc reads them (GnuCOBOL 3.1.2's cobc/pplex.l and ppparse.y). FIXED,
# the default: columns 1-6 are the sequence area and 73-80 the identification area, neither of
# them program text; column 7 is the indicator. VARIABLE is FIXED with program text up to
# column 250. FREE has no areas.
FIXED, FREE, VARIABLE = "FIXED", "FREE", "VARIABLE"
_TEXT_END = {FIXED: 72, VARIABLE: 250}
_FORMAT_DIRECTIVE = re.compile(
    r""">>\s*SOURCE\s+(?:FORMAT\s+)?(?:IS\s+)?(FIXED|FREE|VARIABLE)\b"""
    r"""|\$\s*SET\s+SOURCEFORMAT\s*\(?\s*["']?(FIXED|FREE|VARIABLE)\b""",
    re.IGNORECASE)
# What column 7 may hold in fixed format: an indicator, or the start of a directive or of a
# floating comment (cobc lets those begin there).
_COLUMN_7 = " -*/dD$>"


def source_format(cobc_args=()):
    """The reference format cobc starts a source in with these options (-free or -F, -fixed,
    3.2's -fformat=fixed|free|variable), or None when they do not say (cobc reads FIXED)."""
    chosen = None
    for arg in map(str, cobc_args):
        if arg in ("-free", "-F"):
            chosen = FREE
        elif arg == "-fixed":
            chosen = FIXED
        elif arg.startswith("-fformat=") and arg[9:].upper() in (FIXED, FREE, VARIABLE):
            chosen = arg[9:].upper()
    return chosen


def program_id(source, cobc_args=()):
    """Return the entry-point name of the first program in `source`, read from PROGRAM-ID.

    The source is read as cobc reads it (see source_format): in fixed format only columns
    8-72 hold program text, so sequence numbers and whatever stands in columns 73-80 are never
    taken for the name, and comment lines (`*` or `/` in column 7), debugging lines and `*>`
    comments are skipped. `>>SOURCE FORMAT` and `$SET SOURCEFORMAT` switch formats. When
    neither the options nor a directive before the program text say, a source with a line
    whose column 7 cannot be fixed format is taken as free format. Raises CompileError when
    there is no PROGRAM-ID.
    """
    source = Path(source)
    try:
        lines = source.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise CompileError(f"cannot read COBOL source {source}: {exc}") from None
    text = None
    for code in _program_text(lines, source_format(cobc_args)):
        if text is None:
            at = code.upper().find("PROGRAM-ID")
            if at < 0:
                continue
            text = code[at:]
        else:
            text += "\n" + code
        # The name, or an AS phrase after it, may stand on a later line.
        match = _PROGRAM_ID.match(text)
        if match and (match.group(4) or match.group(5) or text[match.end():].strip()):
            break
    match = _PROGRAM_ID.match(text) if text is not None else None
    if not match:
        raise CompileError(f"COBOL source {source} has no PROGRAM-ID; add "
                           f"`PROGRAM-ID. NAME.` to its IDENTIFICATION DIVISION")
    external = match.group(4) or match.group(5)
    return external or match.group(1) or match.group(2) or match.group(3)


def _program_text(lines, chosen):
    """Yield the program text of each line (comments removed), in the reference format
    `chosen` (None: cobc's default, unless the lines can only be free format)."""
    fmt = chosen or (FREE if _free_form(lines) else FIXED)
    for line in lines:
        line = line.expandtabs(8)
        if fmt == FREE:
            area = line
        elif len(line) < 7:
            continue            # cobc skips a line that ends before the indicator
        else:
            area = line[6:_TEXT_END[fmt]]
        first = area.lstrip()
        if first.startswith(">>") or (first.startswith("$") and first[1:2] not in ("", " ")):
            directive = _FORMAT_DIRECTIVE.search(first)
            if directive:
                fmt = (directive.group(1) or directive.group(2)).upper()
            continue
        if first.startswith("*>"):
            continue
        if fmt != FREE:
            if area[0] not in " -":
                continue        # comment, debugging or (for cobc, an error) line
            area = area[1:]
        yield area.split("*>", 1)[0]


def _free_form(lines):
    """True when the lines before the first format directive cannot be fixed format: a line
    long enough to have column 7 holds something there that is none of what it may hold."""
    for line in lines:
        line = line.expandtabs(8)
        if _FORMAT_DIRECTIVE.search(line):
            return False
        if len(line) > 6 and line[6] not in _COLUMN_7:
            return True
    return False
