"""Starting and stopping a region process: for casstart/casstop, mfds's start and stop, tests.

A region is started as a detached process (its own session), so neither the shell that ran
casstart nor mfds is its parent: killing either leaves the region running. Every pid a region
owns is in its run/processes.json; casstop --force kills exactly those, and only after checking
that each pid still belongs to this region (pids are reused), never by process name.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from esrt.home import Home, write_json_atomic
from esrt.node.console import tail_lines
from esrt.node.definitions import server_definition
from esrt.node.mfds_client import MfdsClient
from esrt.node.runs import (is_recorded_process, read_json, recorded_pids, recorded_run_dir,
                            region_pid, remember_region)
from esrt.paths import RegionPaths
from esrt.procs import process_alive
from esrt.states import ServerStatus


class RegionControlError(Exception):
    """casstart/casstop could not do what was asked; the message says why and what to do."""


def _tail(path, count=8):
    try:
        lines, _ = tail_lines(path, count)
    except OSError:
        return ""
    return "\n".join(lines)


def _region_command(name, home, definition):
    """Prepare region `name`'s directories and run files; (paths, command, environment) of
    the region process to start."""
    if definition is None:
        definition = server_definition(name, home)
    paths = RegionPaths(definition, home).create(standby=definition.get("standby", False))
    running = region_pid(paths.run)
    if running and process_alive(running):
        raise RegionControlError(f"{name} is already running (pid {running}); stop it with "
                                 f"`esrt casstop -r {name}`")
    remember_region(home, name, paths)
    for stale in (paths.status_file, paths.run / "definition.json"):
        stale.unlink(missing_ok=True)
    command = [sys.executable, "-m", "esrt.region", name, "--home", str(home.root)]
    if definition is not None:
        definition_file = paths.run / "definition.json"
        write_json_atomic(definition_file, definition)
        command += ["--definition", str(definition_file)]
    environ = dict(os.environ)
    environ["ESRT_HOME"] = str(home.root)
    return paths, command, environ


def _detached(environ):
    # A region started from mfds (which systemd may run) is not mfds's unit's main process.
    return {key: value for key, value in environ.items()
            if key not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}


def run_region_here(name, home=None, definition=None):
    """Become region `name`'s process (exec, never returns): what a service manager runs, so
    that it watches the region itself (`esrt casstart --foreground`, esrt.node.units)."""
    home = home if isinstance(home, Home) else Home(home)
    _, command, environ = _region_command(name, home, definition)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, environ)


def start_region(name, home=None, definition=None, wait=True, timeout=60.0, progress=None):
    """Start region `name` detached; with wait, return its status once every listener started.

    `definition` (a validated dict) is passed to the region in a file when given; otherwise the
    region fetches its definition from the node's mfds.
    """
    home = home if isinstance(home, Home) else Home(home)
    paths, command, environ = _region_command(name, home, definition)
    environ = _detached(environ)
    boot_log = paths.run / "region.out"
    with open(boot_log, "ab") as out, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(command, stdin=devnull, stdout=out, stderr=out,
                                   start_new_session=True, env=environ, close_fds=True)
    if progress:
        progress(f"{name}: region process started (pid {process.pid})")
    if not wait:
        return {"mfServerStatus": ServerStatus.STARTING.value, "pid": process.pid}
    return wait_for_region(name, paths, process, timeout, boot_log, progress)


def wait_for_region(name, paths, process, timeout, boot_log, progress=None):
    """Wait until the region reports Started (return its status) or fails (raise)."""
    deadline = time.monotonic() + timeout
    last_message = None
    while time.monotonic() < deadline:
        status = read_json(paths.status_file) or {}
        state = status.get("mfServerStatus")
        message = status.get("message")
        if progress and message and message != last_message:
            progress(f"{name}: {message}")
            last_message = message
        if state == ServerStatus.STARTED.value:
            return status
        if state == ServerStatus.FAILED.value:
            raise RegionControlError(f"{name} failed to start: {message or 'see console.log'}\n"
                                     f"{_tail(paths.console_log)}")
        if process.poll() is not None:
            raise RegionControlError(
                f"{name} exited during start (exit code {process.returncode}): "
                f"{message or 'see the log below'}\n{_tail(boot_log)}\n{_tail(paths.console_log)}")
        time.sleep(0.05)
    raise RegionControlError(f"{name} did not start within {timeout:.0f} s (status "
                             f"{state or 'unknown'}); see {paths.console_log}")


def stop_region(name, home=None, force=False, timeout=30.0, progress=None):
    """Stop region `name`; return a sentence saying what was done.

    Without force: SIGTERM to the region, which stops its listeners, finishes requests in
    flight and stops its SEPs in order. With force (or when that does not finish within
    timeout and force is set): SIGKILL to each of the region's own recorded processes.
    """
    home = home if isinstance(home, Home) else Home(home)
    run_dir = recorded_run_dir(home, name)
    started, pids = recorded_pids(run_dir)
    live = [pid for pid in pids if is_recorded_process(pid, started)]
    if not live:
        _mark_stopped(run_dir, name, home)
        return f"{name} is not running; nothing to stop"
    main = live[0] if live[0] == region_pid(run_dir) else None
    if not force:
        if main is None:
            raise RegionControlError(f"{name}: the region process is gone but {len(live)} of its "
                                     f"processes remain; use `esrt casstop -r {name} --force`")
        os.kill(main, signal.SIGTERM)
        if progress:
            progress(f"{name}: shutdown requested (pid {main})")
        if _wait_gone(live, started, timeout):
            return f"{name} stopped"
        raise RegionControlError(f"{name} did not stop within {timeout:.0f} s; force it with "
                                 f"`esrt casstop -r {name} --force`")
    for pid in live:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if not _wait_gone(live, started, 10.0):
        raise RegionControlError(f"{name}: processes {live} survived SIGKILL")
    _mark_stopped(run_dir, name, home, forced=True)
    return f"{name} force-stopped: killed {len(live)} process(es) ({', '.join(map(str, live))})"


def _wait_gone(pids, started, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(is_recorded_process(pid, started) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _mark_stopped(run_dir, name, home, forced=False):
    """After a kill nobody else will say the region stopped: say it in its status and to mfds."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / "status.json") or {}
    if status.get("mfServerStatus") in (None, ServerStatus.STOPPED.value) and not forced:
        return
    status.update({"mfServerStatus": ServerStatus.STOPPED.value,
                   "message": f"{name} force-stopped" if forced else f"{name} stopped"})
    for listener in status.get("listeners") or []:
        listener["mfListenerStatus"] = "Stopped"
    if run_dir.is_dir():
        write_json_atomic(run_dir / "status.json", status)
        (run_dir / "region.pid").unlink(missing_ok=True)
    try:
        MfdsClient.from_home(home).report_status(name, status)
    except Exception:  # noqa: BLE001 - mfds down is normal here (HA); the status file says it all
        pass
