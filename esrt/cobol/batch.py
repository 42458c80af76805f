"""Run a COBOL batch program (a main program, `cobc -x`) as a subprocess.

Used by `esrt batch run` so that a batch job (INITFILE1, say) sees exactly the environment and
files of a region's services. A source file is compiled first and the executable is reused
while the source and the cobc command are unchanged.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from esrt.cobol.compile import (SOURCE_SUFFIXES, EXECUTABLE, CompileError, cobc_command,
                                compile_executable, program_id)


class BatchError(RuntimeError):
    """The batch program cannot be started; the message says why and what to do."""


def is_source(path):
    """True when `path` names a COBOL source file (by its suffix, any case)."""
    return Path(path).suffix.lower() in SOURCE_SUFFIXES


def build_executable(source, build_dir, copy_dirs=(), extra_args=()):
    """Return an up-to-date executable for `source` in `build_dir`, compiling only if needed.

    The executable is build_dir/<PROGRAM-ID>; next to it, <PROGRAM-ID>.build holds a hash of
    the source text and of the cobc command, so an edited source or changed options rebuild it
    while a touched-but-identical source does not.
    """
    source = Path(source)
    if not source.is_file():
        raise BatchError(f"batch program source {source} does not exist; check the path")
    build_dir = Path(build_dir)
    executable = build_dir / program_id(source, extra_args)
    stamp_path = executable.with_name(executable.name + ".build")
    command = cobc_command(EXECUTABLE, source.resolve(), executable, copy_dirs, extra_args)
    digest = hashlib.sha256()
    digest.update(source.read_bytes())
    digest.update("\0".join(command).encode())
    stamp = digest.hexdigest()
    if executable.is_file() and _read(stamp_path) == stamp:
        return executable
    compile_executable(source.resolve(), executable, copy_dirs, extra_args)
    stamp_path.write_text(stamp + "\n")
    return executable


def run_batch(program, environ, cwd, build_dir, args=(), extra_args=()):
    """Run batch `program` with `environ` in `cwd` and return its exit code.

    `program` is a COBOL source (.cbl/.cob: compiled into `build_dir` when needed) or an
    executable; `environ` None means this process's environment. Its stdout and stderr are
    this process's (inherited, so output streams as it is written). The code follows
    subprocess: STOP RUN's RETURN-CODE, or -N when killed by signal N. Raises BatchError for a
    missing program or directory, CompileError when the source does not compile.
    `extra_args` are cobc options for compiling a source (e.g. ESFH's).
    """
    program = Path(program)
    if not program.exists():
        raise BatchError(f"batch program {program} does not exist; give a COBOL source "
                         f"(.cbl/.cob) or an executable built with cobc -x")
    if cwd is not None and not Path(cwd).is_dir():
        raise BatchError(f"working directory {cwd} for batch program {program} does not "
                         f"exist; create it or choose another")
    if is_source(program):
        executable = build_executable(program, build_dir, extra_args=extra_args)
    elif program.is_file() and os.access(program, os.X_OK):
        executable = program.resolve()
    else:
        raise BatchError(f"batch program {program} is neither a COBOL source (.cbl, .cob) "
                         f"nor an executable file; compile it with cobc -x or chmod +x it")
    # Our own buffered output must come out before the child's, which writes to the same fds.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        env = None if environ is None else dict(environ)
        result = subprocess.run([str(executable), *map(str, args)], env=env, cwd=cwd)
    except OSError as exc:
        raise BatchError(f"cannot start batch program {executable}: {exc}") from None
    return result.returncode


def _read(path):
    try:
        return path.read_text().strip()
    except OSError:
        return None


__all__ = ["BatchError", "CompileError", "build_executable", "is_source", "run_batch"]
