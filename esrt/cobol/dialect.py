"""What differs between the GnuCOBOL releases esrt runs on, read from the libcob in use
(standard library only, so that every process can ask).

Debian 12 has GnuCOBOL 3.1.2, Debian 13 has 3.2; a node's cobc and libcob are of one release,
so the libcob this process would load tells the rules the programs were compiled for.
"""

import ctypes
import ctypes.util
import functools
import os
import re

# libcob is the runtime of GnuCOBOL 3.x: package libcob4 on Debian 12 (3.1.2), libcob4t64 on
# Debian 13 (3.2); both keep soname libcob.so.4. libcob.so (no version) only exists with the
# -dev package.
LIBCOB_SONAMES = ("libcob.so.4", "libcob.so")


def libcob_candidates(sonames=LIBCOB_SONAMES):
    """The names to try, in order, to load libcob: $ESRT_LIBCOB (a non-Debian install, say),
    the sonames, then what ldconfig knows (find_library runs it, so it comes last)."""
    candidates = [os.environ["ESRT_LIBCOB"]] if os.environ.get("ESRT_LIBCOB") else []
    candidates.extend(sonames)
    found = ctypes.util.find_library("cob")
    if found:
        candidates.append(found)
    return candidates


@functools.lru_cache(maxsize=None)
def libcob_version():
    """libcob's version as a tuple, e.g. (3, 1, 2); None when libcob is not installed."""
    for name in libcob_candidates():
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        library.libcob_version.restype = ctypes.c_char_p
        match = re.match(rb"(\d+)\.(\d+)(?:\.(\d+))?", library.libcob_version() or b"")
        if match:
            return tuple(int(part or 0) for part in match.groups())
    return None


def display_sign_by_nibble():
    """How the runtime reads a DISPLAY field's embedded sign byte when it is not a digit.

    True for GnuCOBOL 3.2: any byte 0x70..0x7F is negative and every byte counts by its low
    nibble ("12z" in S9(3) is -130). False for 3.1, and without libcob: only 'p'..'y' are
    negative (-0..-9) and any other sign byte reads as +0 ("12z" is 120).
    """
    version = libcob_version()
    return version is not None and version >= (3, 2)
