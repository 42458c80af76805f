"""Starting and stopping regions from the command line (casstart / casstop).

A region is started as a detached process (its own session), so neither the shell that ran
casstart nor mfds is its parent: killing either leaves the region running. Every pid a region
owns is in its run/processes.json; casstop --force kills exactly those, and only after checking
that each pid still belongs to this region (pids are reused), never by process name.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from esrt.home import Home, write_json_atomic
from esrt.paths import RegionPaths
from esrt.procs import process_alive, process_start_time
from esrt.states import ServerStatus


class RegionControlError(Exception):
    """casstart/casstop could not do what was asked; the message says why and what to do."""


def region_index_path(home, name):
    return home.root / "run" / f"{name}.json"


def remember_region(home, name, paths):
    """Record where region `name` keeps its run directory, so casstop works without mfds."""
    index = region_index_path(home, name)
    index.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(index, {"name": name, "run": str(paths.run), "casroot": str(paths.casroot)})


def recorded_run_dir(home, name):
    try:
        return Path(json.loads(region_index_path(home, name).read_text())["run"])
    except (OSError, ValueError, KeyError):
        return home.server_root(name) / "run"


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def region_pid(run_dir):
    try:
        return int(Path(run_dir, "region.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path, lines=8):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_region(name, home=None, definition=None, wait=True, timeout=60.0, progress=None):
    """Start region `name` detached; with wait, return its status once every listener started.

    `definition` (a validated dict) is passed to the region in a file when given; otherwise the
    region fetches its definition from the node's mfds.
    """
    home = home if isinstance(home, Home) else Home(home)
    if definition is None:
        from esrt.mfds.client import MfdsClient
        definition = MfdsClient.from_home(home).get_server(name)["definition"]
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


def recorded_pids(run_dir):
    """(start times by pid, every pid recorded for the region, region first) of a run
    directory; fault injectors and stop_region act on these pids only."""
    record = read_json(Path(run_dir) / "processes.json") or {}
    pids = []
    if record.get("region"):
        pids.append(int(record["region"]))
    pids += [int(pid) for pid in (record.get("seps") or {}).values() if pid]
    main = region_pid(run_dir)
    if main and main not in pids:
        pids.insert(0, main)
    return record.get("started") or {}, pids


def is_recorded_process(pid, started):
    """Guard against pid reuse: the process must have the start time recorded with its pid."""
    if not process_alive(pid):
        return False
    recorded = started.get(str(pid))
    return recorded is None or recorded == process_start_time(pid)


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
        from esrt.mfds.client import MfdsClient
        MfdsClient.from_home(home).report_status(name, status)
    except Exception:  # noqa: BLE001 - mfds down is normal here (HA); the status file says it all
        pass
