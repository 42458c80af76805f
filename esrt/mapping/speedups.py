"""The one place that picks the C field codec (esrt._codec) or its pure-Python twin.

``selected`` is the implementation :class:`esrt.mapping.codec.ProgramCodec` uses for the
codecs it builds from then on. It is the C module when it was built (``pip install -e .``
compiles native/_codec.c) and ``ESRT_PUREPYTHON`` is not set to a non-empty value other
than 0; otherwise the twin, :mod:`esrt.mapping._pycodec`. The C module provides every field
type the mapping supports; a function it lacked would be taken from the twin, per field type.
"""

import types

from esrt import native
from esrt.mapping import _pycodec

# Not built (plain source checkout): the twin does everything.
_native = native.built("_codec")

FUNCTIONS = tuple("%s_%s" % (way, kind) for kind in ("string", "display", "binary",
                                                     "packed", "float")
                  for way in ("decode", "encode"))


forced_pure_python = native.forced_pure_python


def implementation(name):
    """The functions of one implementation, "c" or "python", as a namespace.

    Raises ImportError for "c" when the extension was not built.
    """
    if name == "python":
        source = _pycodec
    elif name == "c":
        if _native is None:
            raise ImportError("esrt._codec is not built; run `pip install -e .` in the "
                              "source tree (needs a C compiler and python3-dev)")
        source = _native
    else:
        raise ValueError("implementation %r: use 'c' or 'python'" % (name,))
    return types.SimpleNamespace(name=name, **{
        function: getattr(source, function, None) or getattr(_pycodec, function)
        for function in FUNCTIONS})


AVAILABLE = ("c", "python") if _native is not None else ("python",)
selected = implementation("python" if forced_pure_python() or _native is None else "c")
