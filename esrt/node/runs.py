"""A region's run records, as anyone on the node reads them.

A running region keeps its pid (run/region.pid), every pid it owns with their start times
(run/processes.json) and its last status (run/status.json) in its run directory; the node
remembers where each region's run directory is ($ESRT_HOME/run/NAME.json), so that casstop,
monitors and mdump find a region started from a region file, which mfds does not know.
"""

import json
from pathlib import Path

from esrt.home import write_json_atomic
from esrt.procs import process_alive, process_start_time
from esrt.states import ServerStatus

# States in which a region claims to have a live process.
LIVE_STATES = (ServerStatus.STARTING.value, ServerStatus.STARTED.value,
               ServerStatus.STOPPING.value)


def region_index_path(home, name):
    """Where the node records region `name`'s run directory."""
    return home.root / "run" / f"{name}.json"


def remember_region(home, name, paths):
    """Record where region `name` keeps its run directory, so casstop works without mfds."""
    index = region_index_path(home, name)
    index.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(index, {"name": name, "run": str(paths.run), "casroot": str(paths.casroot)})


def recorded_run_dir(home, name):
    """Region `name`'s run directory: as recorded at its last start, else the default one."""
    try:
        return Path(json.loads(region_index_path(home, name).read_text())["run"])
    except (OSError, ValueError, KeyError):
        return home.server_root(name) / "run"


def read_json(path):
    """The JSON document in `path`, or None when it is missing or half-written."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def region_pid(run_dir):
    """The pid in the region.pid of `run_dir`, or None."""
    try:
        return int(Path(run_dir, "region.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def recorded_pids(run_dir):
    """(start times by pid, every pid recorded for the region, region first) of a run
    directory; fault injectors and stop_region act on these pids only."""
    record = read_json(Path(run_dir) / "processes.json") or {}
    pids = []
    if record.get("region"):
        pids.append(int(record["region"]))
    pids += [int(pid) for pid in (record.get("seps") or {}).values() if pid]
    if record.get("recovery"):
        # A recovery of the data environment under way (esrt.region.txstore).
        pids.append(int(record["recovery"]))
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


def effective_status(document):
    """The mfServerStatus to show for a region's last status document (None: never ran).

    A region that said it was running but whose pid is gone died without telling anyone
    (SIGKILL, OOM, power): it must not keep looking Started. mfds's API and mdump show this.
    """
    if not document:
        return ServerStatus.STOPPED.value
    reported = document.get("mfServerStatus") or ServerStatus.STOPPED.value
    if reported in LIVE_STATES and not process_alive(document.get("pid")):
        if reported == ServerStatus.STOPPING.value:
            return ServerStatus.STOPPED.value
        return ServerStatus.FAILED.value
    return reported


# A region's graph points (esrt.region.history), one JSON object per line, in its run dir.
HISTORY_FILE = "history.jsonl"


def read_history(run_dir, since=None, limit=None):
    """The graph points a region wrote in `run_dir` (oldest first), those after time `since`
    only, at most `limit` of the newest; [] when there are none (the region never ran)."""
    points = []
    try:
        # Newest first, from the end of the file: a page polling for the points after its
        # last one reads a line or two, not the hour.
        for line in _lines_from_the_end(Path(run_dir, HISTORY_FILE)):
            try:
                point = json.loads(line)
            except ValueError:
                continue  # the line being written
            if not isinstance(point, dict):
                continue
            if since is not None and point.get("t", 0) <= since:
                break
            points.append(point)
            if limit and len(points) >= limit:
                break
    except FileNotFoundError:
        return []
    points.reverse()
    return points


def _lines_from_the_end(path, block=65536):
    with open(path, "rb") as source:
        position = source.seek(0, 2)
        rest = b""
        while position > 0:
            step = min(block, position)
            position -= step
            source.seek(position)
            lines = (source.read(step) + rest).split(b"\n")
            rest = lines.pop(0)  # perhaps the end of a line that starts in the block before
            for line in reversed(lines):
                if line.strip():
                    yield line.decode("utf-8", "replace")
        if rest.strip():
            yield rest.decode("utf-8", "replace")
