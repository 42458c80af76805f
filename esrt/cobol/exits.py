"""How a process running COBOL ended, in words (standard library only).

libcob ends the whole process on STOP RUN, on a runtime error and on a crash, so the only
evidence is the exit status and what libcob wrote on stderr. The region (which must not load
cffi for this) and the runtime tests share these readings.
"""

import re
import signal


def describe_exit(returncode, stderr="", program="the program"):
    """Say in words how a process that ran a COBOL program ended.

    `returncode` follows subprocess (negative = killed by that signal); `stderr` is what the
    process wrote there (str or bytes, only the libcob lines matter). Returns e.g.
    "program CBLAPP01 abended: runtime error: module 'NOSUCHPG' not found".
    """
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    if returncode is None:
        return f"program {program} is still running"
    caught = _caught_signal(returncode, stderr)
    if caught is None and returncode < 0:
        return f"program {program} abended: killed by {_signal_name(-returncode)}"
    runtime_errors = _LIBCOB_ERROR.findall(stderr)
    if runtime_errors and returncode > 0:
        return f"program {program} abended: runtime error: {runtime_errors[-1].strip()}"
    if caught is not None:
        text, name = caught
        if name in _CRASH_SIGNALS:
            return f"program {program} abended: crashed with {name} ({text})"
        return f"program {program} abended: stopped by {name}"
    if returncode == 0:
        return f"program {program} ended normally"
    return f"program {program} ended with exit status {returncode}"


def _caught_signal(returncode, stderr):
    """(libcob's text, signal name) when libcob's signal handler reported the signal that ended
    the process, else None.

    libcob 3.1 exits with the signal's number as the status; 3.2 raises the signal again after
    its message, so the process dies of it, and its message may lack the signal's name.
    """
    reports = _LIBCOB_SIGNAL.findall(stderr)
    if not reports or not returncode:
        return None
    text, name = reports[-1]
    number = abs(returncode)
    if name and _signal_number(name) != number:
        return None
    return text.strip(), _signal_name(number)


# libcob's fatal messages (common.c): "libcob: error: <cause>" for runtime errors (possibly
# prefixed by "<source>:<line>: "), "<text> (signal SIGxxx)" from its signal handler ("<text>
# (signal)" in 3.2).
_LIBCOB_ERROR = re.compile(r"libcob: error: (.*)")
_LIBCOB_SIGNAL = re.compile(r"^(.*?)\s*\(signal(?: (SIG[A-Z0-9]+))?\)\s*$", re.MULTILINE)
_CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"}


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _signal_number(name):
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None




def abend_cause(returncode, stderr=""):
    """The cause of a SEP's death in the middle of a request, for the caller's error message.

    `returncode` follows subprocess (negative = killed by that signal). A SEP never exits by
    itself while serving, so a plain exit means the program ended the run unit.
    """
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    if returncode is not None and returncode >= 0:
        runtime_errors = _LIBCOB_ERROR.findall(stderr)
        if not runtime_errors and _caught_signal(returncode, stderr) is None:
            return f"the program ended the run unit (STOP RUN, exit status {returncode})"
    cause = describe_exit(returncode, stderr, "").partition(": ")[2] or f"exit status {returncode}"
    runtime_errors = _LIBCOB_ERROR.findall(stderr)
    if returncode is not None and returncode < 0 and runtime_errors:
        # killed from outside (timeout, kill test) after libcob had already complained
        cause = f"runtime error: {runtime_errors[-1].strip()} ({cause})"
    return cause
