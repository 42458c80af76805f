"""Call COBOL programs compiled with `cobc -m` from Python, in this process.

A SEP makes one `CobolRuntime`, calls `init()` once after its environment (COB_*, DD_*) is set,
`load()`s each program once and `bind()`s it to LINKAGE buffers it keeps for its whole life, so
that a request costs one cffi call (measured: 100-200 ns with preallocated pointers, ~700 ns when
the buffers are wrapped anew on every call).

What a user of this module must know about libcob (GnuCOBOL 3.1.2, checked by
tests/unit/test_cobol_runtime.py):

* libcob state is per process: `cob_init` runs once and there is no way to undo it. Tests run
  programs in a child process.
* WORKING-STORAGE survives between calls of the same loaded program (ordinary COBOL semantics):
  a program that counts its calls in WORKING-STORAGE sees 1, 2, 3, ... A caller that needs
  fresh storage must restart the process.
* Loading the same module path again gives the same code (dlopen reference-counts); a rebuilt
  module is only picked up by a new process.
* The program's DISPLAY output goes to this process's stdout (UPON SYSERR: stderr).
* Calling an entry point before cob_init ends the process: exit status 1,
  ``libcob: error: cob_init() has not been called``. `load()` therefore runs `init()` itself.
* cob_init installs C signal handlers for SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGSEGV, SIGBUS and
  SIGFPE. Each prints ``caught signal (signal SIGTERM)`` (for a crash: ``attempt to reference
  unallocated memory (signal SIGSEGV)``) on stderr and exits with the signal's NUMBER as exit
  status: the process is not "killed by" the signal. `init()` gives SIGHUP, SIGINT, SIGQUIT and
  SIGTERM back to Python (so a SEP can stop gracefully) and leaves the crash signals to libcob.
* Some endings do not return to Python; libcob calls exit() and the whole process ends.
  Python's own buffers are not flushed then: flush sys.stdout before calling a program.

  ==========================  ===============================================================
  program does                process ends with
  ==========================  ===============================================================
  STOP RUN [RETURNING n]      exit status = RETURN-CODE (0 unless set), nothing on stderr
  runtime error (CALL of a    exit status 1; stderr ``libcob: error: module 'NOSUCHPG' not
  missing program, ...)       found`` (always ``libcob: error: <cause>``)
  crash (SIGSEGV, SIGBUS,     exit status 11, 7 or 8 (the signal number); stderr
  SIGFPE)                     ``attempt to reference unallocated memory (signal SIGSEGV)``
                              (SIGBUS/SIGFPE: ``... (signal SIGBUS)`` etc.)
  ==========================  ===============================================================

  Exit statuses alone are ambiguous (a STOP RUN with RETURN-CODE 11 looks like a crash), so
  `describe_exit()` also reads the stderr text to say "program X abended: cause".
"""

import os
import signal
import threading
from pathlib import Path

from esrt import native
from esrt.cobol import bindings
from esrt.cobol.bindings import ffi
from esrt.cobol.exits import describe_exit  # noqa: F401  (part of this module's API)


# The C caller (native/_callpath.c): calls an entry point straight from C, about three times
# cheaper than cffi's call (measured: 0.08 us against 0.22 us for the null service). cffi is
# its twin: ESRT_PUREPYTHON=1, no build, or more USING items than it takes.
_callpath = native.load("_callpath")

# libcob is initialised once per process, whichever CobolRuntime asks first.
_process_state = {"initialized": False, "argv": None}


class LoadError(RuntimeError):
    """A COBOL program (or libcob itself) cannot be loaded; the message says what to do."""


class CobolRuntime:
    """The process's libcob: initialise it once, load programs, cache them by module and entry."""

    def __init__(self):
        self._programs = {}
        self._preloaded = {}

    @property
    def initialized(self):
        """True once cob_init has run in this process."""
        return _process_state["initialized"]

    def init(self, program_name="esrt"):
        """Run cob_init once; later calls do nothing.

        Python's handlers for SIGHUP, SIGINT, SIGQUIT and SIGTERM are put back afterwards when
        called from the main thread (libcob would otherwise exit on them, see above).

        libcob reads its configuration (COB_LIBRARY_PATH, COB_FILE_PATH, runtime.cfg ...) here,
        so set the environment first. DD_ variables are read at each OPEN and may change later.
        """
        if _process_state["initialized"]:
            return
        lib = _libcob()
        arg0 = ffi.new("char[]", program_name.encode())
        argv = ffi.new("char *[2]", [arg0, ffi.NULL])
        # cob_init keeps the argv pointer it is given: its storage must live as long as libcob.
        _process_state["argv"] = (arg0, argv)
        saved = _process_control_handlers()
        lib.cob_init(1, argv)
        _process_state["initialized"] = True
        for signum, handler in saved.items():
            signal.signal(signum, handler)

    def preload(self, library_path):
        """Load a shared library with RTLD_GLOBAL so that modules loaded later can use its symbols.

        Needed for a file handler named by `cobc -fcallfh=NAME`: the module refers to NAME
        without linking it, and loading with RTLD_NOW fails unless NAME is already visible.
        """
        path = Path(library_path).resolve()
        if path in self._preloaded:
            return
        if not path.is_file():
            raise LoadError(f"shared library {path} does not exist; build it (python setup.py "
                            f"build_ext) or fix the path")
        handle = _dlopen(path, what="shared library")
        self._preloaded[path] = handle

    def load(self, module_path, entry, nparams):
        """Load `entry` from module `module_path` once and return it as a Program.

        `entry` is the PROGRAM-ID (or an ENTRY name); `nparams` the number of USING items.
        Calls init() first if it has not run yet. Raises LoadError when the module or the
        entry point cannot be found.
        """
        self.init()
        path = Path(module_path).resolve()
        key = (path, entry, nparams)
        program = self._programs.get(key)
        if program is not None:
            return program
        if not path.is_file():
            raise LoadError(f"COBOL module {path} does not exist; compile the program with "
                            f"`cobc -m` (esrt.cobol.compile.compile_module) or fix the path")
        handle = _dlopen(path, what="COBOL module")
        symbol = entry_symbol(entry)
        address = bindings.libc().dlsym(handle, symbol.encode())
        if address == ffi.NULL:
            raise LoadError(
                f"COBOL module {path} has no entry point {entry!r} (symbol {symbol!r}); "
                f"check the program's PROGRAM-ID or ENTRY name and the service mapping")
        function = ffi.cast(bindings.entry_type(nparams), address)
        program = Program(entry, path, nparams, function)
        self._programs[key] = program
        return program


class Program:
    """One resolved COBOL entry point with a fixed number of USING parameters."""

    def __init__(self, name, module_path, nparams, function):
        self.name = name
        self.module_path = module_path
        self.nparams = nparams
        self._function = function

    def __repr__(self):
        return f"<Program {self.name} from {self.module_path} ({self.nparams} parameters)>"

    @property
    def address(self):
        """The entry point's address as an int (for esrt._callpath.call)."""
        return int(ffi.cast("uintptr_t", self._function))

    def bind(self, buffers):
        """Return a BoundCall that passes these buffers (one per USING item) on every call.

        Each buffer must be a writable bytes-like object (a bytearray, usually) at least as
        long as its LINKAGE item; the program reads and writes it in place. The buffers stay
        pinned while the BoundCall lives: resizing a bound bytearray raises BufferError instead
        of leaving a dangling pointer.
        """
        buffers = list(buffers)
        if len(buffers) != self.nparams:
            raise ValueError(f"program {self.name} takes {self.nparams} parameters, "
                             f"got {len(buffers)} buffers; pass one buffer per LINKAGE item")
        pointers = []
        for index, buffer in enumerate(buffers):
            try:
                # cffi alone does not stop a bytearray from being resized (and moved) under
                # the pointer; a live memoryview export does, so the pointer is taken from it.
                view = memoryview(buffer)
                pointers.append(ffi.from_buffer("unsigned char[]", view, require_writable=True))
            except (TypeError, BufferError) as exc:
                raise TypeError(f"buffer {index} for program {self.name} is not a writable "
                                f"bytes-like object ({exc}); use a bytearray") from None
        return BoundCall(self, self._function, pointers, buffers)


class BoundCall:
    """A Program bound to its buffers; call it to run the program once."""

    __slots__ = ("program", "buffers", "_function", "_pointers", "_address")

    def __init__(self, program, function, pointers, buffers):
        self.program = program
        self.buffers = buffers
        self._function = function
        self._pointers = tuple(pointers)
        self._address = None
        # Only a real cffi function pointer has an address (tests bind stand-ins).
        if (_callpath is not None and isinstance(function, ffi.CData)
                and len(self._pointers) <= _callpath.MAX_CALL_ARGS):
            self._address = int(ffi.cast("uintptr_t", function))

    @property
    def caller(self):
        """"c" when calls go through esrt._callpath, "cffi" otherwise."""
        return "cffi" if self._address is None else "c"

    def __call__(self):
        """Run the program; return its RETURN-CODE."""
        if self._address is not None:
            return _callpath.call(self._address, self.buffers)
        return self._function(*self._pointers)

    def call_cffi(self):
        """Run the program through cffi whatever the caller (the C caller's twin)."""
        return self._function(*self._pointers)


def entry_symbol(name):
    """Return the C symbol cobc gives entry point `name` (hyphens and the like are encoded)."""
    raw = name.encode()
    if raw.replace(b"_", b"").isalnum() and not raw[:1].isdigit():
        return name
    size = 4 * len(raw) + 8
    out = ffi.new("unsigned char[]", size)
    _libcob().cob_encode_program_id(raw, out, size, 0)
    return ffi.string(out).decode()


_PROCESS_CONTROL_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


def _process_control_handlers():
    """Python's handlers for the signals cob_init takes over, if we may set them back."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    saved = {}
    for signum in _PROCESS_CONTROL_SIGNALS:
        handler = signal.getsignal(signum)
        # None means "set from C, not by Python": leave whatever libcob installs.
        if handler is not None:
            saved[signum] = handler
    return saved


def _libcob():
    try:
        return bindings.libcob()
    except bindings.LibraryNotFound as exc:
        raise LoadError(str(exc)) from None


def _dlopen(path, what):
    handle = bindings.libc().dlopen(os.fsencode(path), bindings.RTLD_NOW | bindings.RTLD_GLOBAL)
    if handle == ffi.NULL:
        raise LoadError(f"{what} {path} cannot be loaded: {bindings.last_dlerror()}; "
                        f"rebuild it on this host, and preload any library it needs "
                        f"(CobolRuntime.preload)")
    return handle
