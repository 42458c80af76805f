"""The one place that loads esrt's C extensions, and the switch that turns them all off.

Each extension in native/ has a pure-Python twin with the same results. ``load(name)`` returns
the extension module ``esrt.<name>``, or None when it was not built (a plain source checkout)
or when ``ESRT_PUREPYTHON`` is set to a non-empty value other than 0; callers then use the
twin. The test suite runs once each way (see the Makefile's test target).
"""

import importlib
import os


def forced_pure_python(environ=os.environ):
    """True when the environment asks for the pure-Python twins."""
    return environ.get("ESRT_PUREPYTHON", "") not in ("", "0")


def built(name):
    """The extension module esrt.`name` whether or not it is switched off, or None if not built."""
    try:
        return importlib.import_module("esrt." + name)
    except ImportError:
        return None


def load(name):
    """The extension module esrt.`name` to use: None means use the twin."""
    return None if forced_pure_python() else built(name)
