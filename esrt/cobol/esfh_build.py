"""Build libesfh.so (ESFH, esrt's EXTFH file handler, from native/) and say how to compile COBOL
programs so that their file operations go to it."""

import subprocess
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[2] / "native"
SOURCES = ("esfh.c", "esfh_env.c")
HEADERS = ("esfh.h",)
LIBRARY_NAME = "libesfh.so"


class EsfhBuildError(RuntimeError):
    """gcc could not build libesfh.so; the message holds the command and its diagnostics."""


def build_esfh(out_dir, native_dir=NATIVE):
    """Compile libesfh.so into `out_dir` unless it is newer than every source; return its path."""
    native_dir = Path(native_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / LIBRARY_NAME
    inputs = [native_dir / name for name in SOURCES + HEADERS]
    missing = [str(path) for path in inputs if not path.is_file()]
    if missing:
        raise EsfhBuildError(f"ESFH sources missing: {', '.join(missing)}; "
                             f"check out the complete esrt tree")
    if out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in inputs):
        return out
    # Build under a temporary name and rename: another process may be loading the library.
    temporary = out.with_name(f".{LIBRARY_NAME}.{id(out)}.tmp")
    command = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(temporary)]
    command += [str(native_dir / name) for name in SOURCES]
    command += ["-ldb-5.3", "-lcob"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EsfhBuildError(f"cannot build {out} (gcc exit status {result.returncode}); "
                             f"install gcc, libcob4-dev and libdb5.3-dev.\n"
                             f"{' '.join(command)}\n{result.stderr}")
    temporary.replace(out)
    return out


def esfh_cobc_args(lib_path, executable=True):
    """Return the cobc flags that route a program's file operations to ESFH in `lib_path`.

    For an executable (cobc -x) the library is linked in with an rpath, so it runs as is.
    For a module (cobc -m, executable=False) the same: the module then depends on libesfh.so
    and loading it loads ESFH too (a SEP may instead preload libesfh.so with RTLD_GLOBAL).
    """
    lib = Path(lib_path).resolve()
    directory = str(lib.parent)
    return ["-fcallfh=ESFH", f"-L{directory}", "-lesfh", "-Q", f"-Wl,-rpath,{directory}"]
