"""Facts about processes from /proc, shared by every esrt process (standard library only)."""


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None when there is no such process."""
    try:
        with open(f"/proc/{int(pid)}/stat") as stat:
            # The command name may itself contain ") ": split at the last one.
            return stat.read().rpartition(")")[2].split()
    except (OSError, ValueError, TypeError):
        return None


def process_state(pid):
    """The one-letter state of process `pid` (R, S, Z, ...), or None when there is none."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def process_alive(pid):
    """True if pid is a live process.

    A zombie counts as dead: kill(pid, 0) still succeeds for one, and this machine's init reaps
    orphans only now and then, so a killed process can linger as Z for a while.
    """
    try:
        if not pid or int(pid) <= 0:
            return False
    except (TypeError, ValueError):
        return False
    return process_state(pid) not in (None, "Z", "X")


def process_start_time(pid):
    """The process's start time in clock ticks since boot (stable for its life), or None.

    Recorded with a pid, it tells the same process from a later one that reused the pid.
    """
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None
