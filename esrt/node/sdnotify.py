"""Telling systemd how a service started under it is doing (sd_notify(3)), and writing to its
journal.

A unit of Type=notify (esrt.node.units) waits for READY=1 before it counts the service as
started, so that units ordered after it (a server after mfds) start once it really answers;
STOPPING=1 says a stop is under way, STATUS= is shown by `systemctl status`. The protocol is
one datagram of "KEY=VALUE" lines to the AF_UNIX socket named in $NOTIFY_SOCKET (a leading
"@" names an abstract socket); outside systemd the variable is unset and nothing is sent.
libsystemd's own sd_notify would need a compiled binding for these few lines.
"""

import os
import socket
import sys


# The socket taken from the environment by take_socket().
_taken = None


def take_socket(environ=os.environ):
    """Keep $NOTIFY_SOCKET for notify() and remove it (and $JOURNAL_STREAM) from `environ`,
    as sd_notify's unset_environment does: the processes this one starts (SEPs, programs,
    regions started from mfds's admin UI) must not talk to systemd in its name."""
    global _taken
    _taken = environ.pop("NOTIFY_SOCKET", None) or _taken
    environ.pop("JOURNAL_STREAM", None)


def notify(*assignments, environ=os.environ):
    """Send "KEY=VALUE" `assignments` to systemd; False when not run by it (or it is gone)."""
    address = environ.get("NOTIFY_SOCKET") or _taken
    if not address or not assignments:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sender:
            sender.sendto("\n".join(assignments).encode("utf-8", "replace"), address)
    except OSError:
        return False  # systemd went away or refused: the service goes on regardless
    return True


def stderr_is_journal(environ=os.environ, stream=sys.stderr):
    """Whether `stream` is connected to systemd's journal ($JOURNAL_STREAM names the device and
    inode of the journal's stream; a redirected stderr no longer matches)."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{info.st_dev}:{info.st_ino}" == f"{device}:{inode}"
