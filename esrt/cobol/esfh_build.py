"""Build libesfh.so (ESFH, esrt's EXTFH file handler, from native/) and say how to compile COBOL
programs so that their file operations go to it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[2] / "native"
# Where `make setup` (and the first use) puts the library: beside the package, or, when the
# package directory is read-only, in the user's cache.
PACKAGE_LIB = Path(__file__).resolve().parents[1] / "lib"
CACHE_LIB = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "esrt" / "lib"
SOURCES = ("esfh.c", "esfh_read.c", "esfh_write.c", "esfh_env.c", "esfh_replies.c",
           "esfh_calls.c", "esfh_logs.c", "esfh_store.c", "esfh_pg.c")
HEADER_NAME = "esfh.h"
HEADERS = (HEADER_NAME, "esfh_internal.h")
# libpq's header (the PostgreSQL store, native/esfh_pg.c, which loads libpq itself when a
# store is used), where Debian's libpq-dev puts it.
PG_INCLUDE = ("-I/usr/include/postgresql",)
LIBRARY_NAME = "libesfh.so"
PRELOAD_NAME = "libesfh_failchk.so"
PRELOAD_SOURCE = "failchk_preload.c"
# Every native part (these libraries and the extensions, see setup.py) is built with these: an
# array sized by input on the stack is a stack overflow that bad input chooses.
# A function used without its declaration is an error, as gcc 14 (Debian 13) makes it: gcc 12
# (Debian 12) only warns, and would take a returned pointer for an int.
HARDENING_FLAGS = ("-Werror=vla", "-Werror=implicit-function-declaration")
# ESRT_SANITIZE=1 (make test-sanitized) adds AddressSanitizer and UndefinedBehaviorSanitizer.
# UBSan stops the process at the first finding, as ASan does, so no test can pass over one.
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                  "-fno-sanitize-recover=undefined", "-g")


class EsfhBuildError(RuntimeError):
    """gcc could not build libesfh.so; the message holds the command and its diagnostics."""


def build_esfh(out_dir, native_dir=NATIVE):
    """Compile libesfh.so into `out_dir` unless it is newer than every source; return its path.

    Its header goes beside it: the Python side reads its declarations from there once esrt
    is installed (see esfh_header).
    """
    # -z nodelete: ESFH registers an exit handler (commit or roll back at exit), so the library
    # must stay mapped even after cffi drops its handle during interpreter shutdown.
    library = _build_shared(Path(out_dir) / LIBRARY_NAME, Path(native_dir), SOURCES + HEADERS,
                            SOURCES, ["-Wl,-z,nodelete", *PG_INCLUDE],
                            ["-ldb-5.3", "-lcob", "-ldl"])
    source, copy = Path(native_dir) / HEADER_NAME, Path(out_dir) / HEADER_NAME
    if source.is_file() and (not copy.exists() or copy.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, copy)
    return library


def sanitizing(environ=os.environ):
    """True when ESRT_SANITIZE asks for a build with the sanitizers (set, and not 0)."""
    return environ.get("ESRT_SANITIZE", "") not in ("", "0")


def native_flags(environ=os.environ):
    """The gcc flags, beyond the usual ones, for compiling and linking every native part."""
    return [*HARDENING_FLAGS, *(SANITIZE_FLAGS if sanitizing(environ) else ())]


def esfh_header():
    """ESFH's public header: native/esfh.h in a source tree, else the copy installed with
    libesfh.so."""
    source = NATIVE / HEADER_NAME
    if source.is_file():
        return source
    for directory in (PACKAGE_LIB, CACHE_LIB):
        if (directory / HEADER_NAME).is_file():
            return directory / HEADER_NAME
    raise EsfhBuildError(f"ESFH's header {HEADER_NAME} is neither in {NATIVE} nor in "
                         f"{PACKAGE_LIB}; reinstall esrt (pip builds and installs it)")


def build_failchk_preload(out_dir, native_dir=NATIVE):
    """Compile the region's LD_PRELOAD fix for failchk (see native/failchk_preload.c)."""
    return _build_shared(Path(out_dir) / PRELOAD_NAME, Path(native_dir), (PRELOAD_SOURCE,),
                         (PRELOAD_SOURCE,), [], ["-ldl"])


def _build_shared(out, native_dir, inputs, sources, flags, libraries):
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [native_dir / name for name in inputs]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing and out.exists():
        return out   # an installed esrt: built with the package, no sources to rebuild from
    if missing:
        raise EsfhBuildError(f"ESFH sources missing: {', '.join(missing)}; reinstall esrt "
                             f"(pip builds {out.name} with the package) or check out the "
                             f"complete esrt tree")
    flags = [*native_flags(), *flags]
    # The flags it was built with live beside the library: a build with or without the
    # sanitizers must not be taken for the other because it is newer than the sources.
    flags_file = out.with_name(f".{out.name}.flags")
    if (out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in paths)
            and flags_file.is_file() and flags_file.read_text() == " ".join(flags)):
        return out
    # Build under a temporary name and rename: another process may be loading the library.
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    command = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", *flags, "-o", str(temporary)]
    command += [str(native_dir / name) for name in sources]
    command += libraries
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EsfhBuildError(f"cannot build {out} (gcc exit status {result.returncode}); "
                             f"install gcc, libcob4-dev, libdb5.3-dev and libpq-dev.\n"
                             f"{' '.join(command)}\n{result.stderr}")
    temporary.replace(out)
    flags_file.write_text(" ".join(flags))
    return out


def esfh_program_args():
    """Return the cobc flags that send a program's file operations to ESFH (not linking it).

    Beside -fcallfh=ESFH, the program's calls of libcob's cob_extfh_* go to ESFH's wrappers
    of them (native/esfh_calls.c), which give ESFH the program's view of the file on every
    libcob version.
    """
    renames = [arg for call in EXTFH_CALLS
               for arg in ("-A", f"-Dcob_extfh_{call}=esfh_extfh_{call}")]
    return ["-fcallfh=ESFH", *renames]


# libcob's entry points for a program whose files go to an external handler (common.h).
EXTFH_CALLS = ("open", "close", "read", "read_next", "rewrite", "delete", "start", "write")


def esfh_cobc_args(lib_path, executable=True):
    """Return the cobc flags that route a program's file operations to ESFH in `lib_path`.

    For an executable (cobc -x) the library is linked in with an rpath, so it runs as is.
    For a module (cobc -m, executable=False) the same: the module then depends on libesfh.so
    and loading it loads ESFH too (a SEP may instead preload libesfh.so with RTLD_GLOBAL).
    """
    lib = Path(lib_path).resolve()
    directory = str(lib.parent)
    return [*esfh_program_args(), f"-L{directory}", "-lesfh", "-Q", f"-Wl,-rpath,{directory}"]


def esfh_library():
    """Path of an up-to-date libesfh.so, building it on first use."""
    return _in_writable_lib(build_esfh)


def failchk_preload_library():
    """Path of an up-to-date libesfh_failchk.so, building it on first use."""
    return _in_writable_lib(build_failchk_preload)


def _in_writable_lib(build):
    try:
        return build(PACKAGE_LIB)
    except OSError:
        return build(CACHE_LIB)


if __name__ == "__main__":
    print(esfh_library())
    print(failchk_preload_library())
    sys.exit(0)
