"""Facts about processes from /proc, shared by every esrt process (standard library only)."""


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None when there is no such process."""
    try:
        with open(f"/proc/{int(pid)}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except (OSError, ValueError):
        return None


def process_alive(pid):
    """True if pid is a live process. A zombie counts as dead: kill(pid, 0) would say alive."""
    if not pid or int(pid) <= 0:
        return False
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def process_start_time(pid):
    """The process's start time in clock ticks since boot (stable for its life), or None.

    Recorded with a pid, it tells the same process from a later one that reused the pid.
    """
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None
