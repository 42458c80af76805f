"""Facts about processes from /proc, shared by every esrt process (standard library only)."""

import os


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


def usable_cores(cgroup_root="/sys/fs/cgroup", membership="/proc/self/cgroup"):
    """How many CPUs this process and its children can keep busy at once: the CPUs it may run
    on (its affinity), fewer when its cgroup's CPU quota allows less (cgroup v2 cpu.max, or
    v1's cfs quota: a container or a systemd CPUQuota=); at least 1."""
    cores = len(os.sched_getaffinity(0))
    try:
        lines = open(membership).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        path = path.lstrip("/")
        if controllers == "":  # cgroup v2 (alone, or beside v1 under unified/)
            candidates = [(os.path.join(cgroup_root, path, "cpu.max"), None),
                          (os.path.join(cgroup_root, "unified", path, "cpu.max"), None)]
        elif "cpu" in controllers.split(","):
            base = os.path.join(cgroup_root, "cpu", path)
            candidates = [(os.path.join(base, "cpu.cfs_quota_us"),
                           os.path.join(base, "cpu.cfs_period_us"))]
        else:
            continue
        for quota_file, period_file in candidates:
            try:
                fields = open(quota_file).read().split()
                if period_file is not None:
                    fields.append(open(period_file).read().strip())
                quota, period = fields[0], int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
            if quota not in ("max", "-1") and period > 0:
                cores = min(cores, -(-int(quota) // period))
    return max(1, cores)
