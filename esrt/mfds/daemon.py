"""Start, find and stop the node's mfds as a detached background process.

Used by `esrt mfds --daemon` / `esrt mfds --stop` and by tests. The mfds started here is put in
its own session, so it survives the shell (and the CLI) that started it, and regions started
later never become its children.
"""

import errno
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import esrt
from esrt.home import Home
from esrt.procs import process_alive as pid_alive, process_state  # noqa: F401 (API)

POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 20


class MfdsStartError(Exception):
    """mfds could not be started; the message says why and what to do."""


def read_pid(path):
    """The pid written first in a pid file, or None when there is none to read."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def looks_like_mfds(pid):
    """Guard against a stale pid file whose pid now belongs to an unrelated process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # cannot tell (no /proc): trust the pid file
    return b"mfds" in cmdline


def running_info(home=None):
    """Return the info dict of the mfds running for `home`, or None when none is running."""
    home = home if isinstance(home, Home) else Home(home)
    pid = read_pid(home.mfds_pid)
    if pid is None or not pid_alive(pid) or not looks_like_mfds(pid):
        return None
    info = home.read_mfds_info()
    if not info or info.get("pid") != pid:
        # Alive but not yet answering (it writes mfds.json once it listens).
        return {"pid": pid, "url": None, "home": str(home.root)}
    return info


def _log_tail(path, start=0, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def _health_ok(info, timeout=1.0):
    context = None
    if info.get("tls_cert"):
        from esrt.node.tls import TLSFilesError, pinned_client_context
        try:
            context = pinned_client_context(info["tls_cert"])
        except TLSFilesError:
            return False
    try:
        with urllib.request.urlopen(info["url"].rstrip("/") + "/api/health", timeout=timeout,
                                    context=context) as reply:
            return reply.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _child_environment():
    # The package may be used from a source tree rather than installed: make sure the child
    # imports the same esrt as we do.
    environ = dict(os.environ)
    source_root = str(Path(esrt.__file__).resolve().parent.parent)
    paths = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if source_root not in paths:
        environ["PYTHONPATH"] = os.pathsep.join([source_root] + paths)
    return environ


def _reap(pid):
    """Collect `pid` if it is our own child, so it does not stay a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError as exc:
        if exc.errno != errno.ECHILD:
            raise


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def start_daemon(home=None, listen="127.0.0.1:8686", timeout=20.0, extra=()):
    """Start mfds detached for `home` listening on `listen`; return its info dict once it answers.

    `extra` are more arguments of `python -m esrt.mfds` (its TLS options).

    Raises MfdsStartError when an mfds already runs for this home, when the new process exits
    before answering, or when it does not answer within `timeout` seconds (it is then stopped).
    """
    home = home if isinstance(home, Home) else Home(home)
    home.ensure()
    current = running_info(home)
    if current:
        raise MfdsStartError(
            f"an mfds is already running for ESRT_HOME={home.root} (pid {current['pid']}, "
            f"{current.get('url') or 'starting'}): stop it with `esrt mfds --stop` first, "
            "or use another ESRT_HOME")
    with open(home.mfds_log, "ab") as log:
        log_start = log.tell()
        command = [sys.executable, "-m", "esrt.mfds", "--listen", str(listen),
                   "--home", str(home.root), *extra]
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env=_child_environment(), close_fds=True)
    deadline = time.monotonic() + timeout
    while True:
        code = child.poll()
        if code is not None:
            raise MfdsStartError(
                f"mfds for ESRT_HOME={home.root} exited with code {code} before answering; "
                f"see {home.mfds_log}:\n{_log_tail(home.mfds_log, log_start)}")
        info = home.read_mfds_info()
        if info and info.get("pid") == child.pid and _health_ok(info):
            return info
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    # It never answered: do not leave a half-started daemon behind.
    child.terminate()
    try:
        child.wait(5.0)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    raise MfdsStartError(
        f"mfds for ESRT_HOME={home.root} did not answer on {listen} within {timeout:g} s and was "
        f"stopped; see {home.mfds_log}:\n{_log_tail(home.mfds_log, log_start)}")


def stop_daemon(home=None, timeout=20.0):
    """Stop the mfds of `home`: SIGTERM, then SIGKILL after `timeout`. False if none was running."""
    home = home if isinstance(home, Home) else Home(home)
    pid = read_pid(home.mfds_pid)
    if pid is None or not pid_alive(pid) or not looks_like_mfds(pid):
        _remove_own_files(home, pid)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _remove_own_files(home, pid)
        return False
    if not _wait_gone(pid, timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, 10.0)
    # A clean stop removed them already; after SIGKILL (or a crash) we must.
    _remove_own_files(home, pid)
    return True


def _remove_own_files(home, pid):
    """Remove mfds.pid / mfds.json when they belong to `pid` (a dead mfds), never a live one's."""
    if pid is None:
        return
    info = home.read_mfds_info()
    if info is not None and info.get("pid") == pid:
        _unlink(home.mfds_info)
    if read_pid(home.mfds_pid) == pid:
        _unlink(home.mfds_pid)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
