"""cffi declarations for libcob and the few libc functions esrt calls directly.

ABI mode only: nothing is compiled when esrt is installed, libcob is found at run time. This is
the one module that knows C signatures; everything else goes through `esrt.cobol.runtime`.
"""

from cffi import FFI

from esrt.cobol import dialect
from esrt.cobol.dialect import LIBCOB_SONAMES

ffi = FFI()

# Prototypes copied in spirit from libcob/common.h (GnuCOBOL 3.1/3.2) and <dlfcn.h>. Only what
# the runtime needs: pointers are kept opaque so that libcob's struct layouts never matter here.
ffi.cdef(
    """
    void cob_init(const int argc, char **argv);
    int cob_tidy(void);
    void *cob_resolve(const char *name);
    const char *cob_resolve_error(void);
    void cob_cancel(const char *name);
    int cob_encode_program_id(const unsigned char *name, unsigned char *buff,
                              const int buff_size, const int fold_case);

    void *dlopen(const char *filename, int flags);
    void *dlsym(void *handle, const char *symbol);
    char *dlerror(void);
    """
)

# glibc values; cffi exposes them as ffi.RTLD_* too, but dlopen is called through libc here.
RTLD_NOW = 0x00002
RTLD_GLOBAL = 0x00100

# gnucobol3 brings the runtime (libcob4 or libcob4t64) on both Debian releases.
LIBCOB_MISSING_HINT = "install GnuCOBOL's runtime (apt-get install gnucobol3)"


class LibraryNotFound(OSError):
    """libcob (or libc) could not be loaded."""


_libc = None
_libcob = None


def libc():
    """Return the C library (for dlopen/dlsym/dlerror), loaded once."""
    global _libc
    if _libc is None:
        # dlopen(NULL) gives the main program's namespace, which includes libc and, on
        # glibc >= 2.34, dlopen/dlsym themselves (no separate libdl needed).
        _libc = ffi.dlopen(None)
        # cffi looks a function up (dlsym) on first use, which clears the pending dlerror();
        # look them all up now so dlerror() still reports the failure of the call before it.
        for name in ("dlopen", "dlsym", "dlerror"):
            getattr(_libc, name)
    return _libc


def libcob():
    """Return libcob, loaded once with RTLD_GLOBAL so COBOL modules share this copy.

    Raises LibraryNotFound with an install hint when no libcob.so.4 is on this host.
    `ESRT_LIBCOB` may name the library file explicitly (a non-Debian install, say).
    """
    global _libcob
    if _libcob is not None:
        return _libcob
    errors = []
    for name in dialect.libcob_candidates(LIBCOB_SONAMES):
        try:
            _libcob = ffi.dlopen(name, ffi.RTLD_NOW | ffi.RTLD_GLOBAL)
            return _libcob
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    raise LibraryNotFound(
        "libcob (the GnuCOBOL runtime) cannot be loaded: tried "
        + "; ".join(errors)
        + f"; {LIBCOB_MISSING_HINT}, or set ESRT_LIBCOB to the path of libcob.so.4"
    )


def last_dlerror():
    """Return dlerror()'s message as str, or "" when there is none."""
    message = libc().dlerror()
    return ffi.string(message).decode(errors="replace") if message != ffi.NULL else ""


def entry_type(nparams):
    """Return the cffi function-pointer type of a COBOL entry point with `nparams` USING items.

    cobc generates `int PROGRAM(cob_u8_t *, ...)`: one data pointer per item, int result
    (the RETURN-CODE).
    """
    if nparams < 0:
        raise ValueError(f"a COBOL entry point cannot take {nparams} parameters")
    if nparams not in _entry_types:
        args = ", ".join(["unsigned char *"] * nparams) or "void"
        _entry_types[nparams] = ffi.typeof(f"int (*)({args})")
    return _entry_types[nparams]


_entry_types = {}
