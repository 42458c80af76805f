"""Fault injectors for failover tests: the failures of the report's nine patterns and more.

Each injector returns the host's time.time() at the moment of the fault, so a test can measure
the client-visible outage with RecordingClient.outage(since).

Process faults act on exactly the processes esrt recorded for the node's mfds or for one region
(run/processes.json, with start times against pid reuse), never on processes found by name: a
kill script must not hit another server on the same node (a lesson of the report).

A node is either a lab node (esrt.testing.lab.Node, which has run() and init_pid) or anything
with a `home` attribute (the node's ESRT_HOME) on this machine. On a lab node the injector runs
inside the node's namespaces (`python -m esrt.testing.faults ACTION HOME ...`), because the pids
in the node's records are pids of the node's PID namespace and its mounts are its own.
"""

import argparse
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class FaultError(RuntimeError):
    """A fault could not be injected; the message says what was missing and what to do."""


# --- the actions, run where the node's processes and mounts are visible ---------------------

def _region_pids(home, server):
    """The live pids esrt recorded for region `server` of ESRT_HOME `home`, region first."""
    from esrt.home import Home
    from esrt.node.runs import is_recorded_process, recorded_pids, recorded_run_dir
    run_dir = recorded_run_dir(Home(home), server)
    started, pids = recorded_pids(run_dir)
    live = [pid for pid in pids if is_recorded_process(pid, started)]
    if not live:
        raise FaultError(f"region {server} has no live recorded process under {run_dir} "
                         f"(ESRT_HOME={home}): start it first (`esrt casstart -r {server}`)")
    return live


def _signal_all(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    return time.time()


def do_kill_mfds(home):
    """SIGKILL the mfds recorded in ESRT_HOME `home` (mfds.pid)."""
    from esrt.home import Home
    from esrt.mfds.daemon import looks_like_mfds, read_pid, pid_alive
    pid = read_pid(Home(home).mfds_pid)
    if pid is None or not pid_alive(pid) or not looks_like_mfds(pid):
        raise FaultError(f"no mfds runs for ESRT_HOME={home}: start it with `esrt mfds start`")
    return _signal_all([pid], signal.SIGKILL)


def do_kill_region(home, server):
    """SIGKILL every recorded process of region `server` (a crash: no status is updated)."""
    return _signal_all(_region_pids(home, server), signal.SIGKILL)


def do_kill_sep(home, server, number=1):
    """SIGKILL SEP `number` (1 = "SEP 0001") of region `server`."""
    from esrt.home import Home
    from esrt.node.runs import is_recorded_process, read_json, recorded_run_dir
    run_dir = recorded_run_dir(Home(home), server)
    record = read_json(run_dir / "processes.json") or {}
    seps = {int(k): int(v) for k, v in (record.get("seps") or {}).items() if v}
    pid = seps.get(int(number))
    if pid is None or not is_recorded_process(pid, record.get("started") or {}):
        raise FaultError(f"region {server} has no live SEP {int(number):04d} in "
                         f"{run_dir / 'processes.json'} (SEPs recorded: {sorted(seps) or 'none'});"
                         " start the region or pick a recorded SEP number")
    return _signal_all([pid], signal.SIGKILL)


def do_hang_region(home, server):
    """SIGSTOP every recorded process of region `server`: alive, but answering nothing."""
    return _signal_all(_region_pids(home, server), signal.SIGSTOP)


def do_resume_region(home, server):
    """SIGCONT every recorded process of region `server` (undoes hang_region)."""
    return _signal_all(_region_pids(home, server), signal.SIGCONT)


FILL_NAME = "esrt-fill-disk.bin"


def do_fill_disk(mountpoint):
    """Write mountpoint/esrt-fill-disk.bin until the file system is full."""
    mountpoint = _mounted(mountpoint, "fill")
    chunk = b"\0" * (1 << 20)
    path = mountpoint / FILL_NAME
    # Unbuffered: a buffered file would raise ENOSPC again when closed, on data never written.
    with open(path, "ab", buffering=0) as filler:
        for size in (len(chunk), 4096, 1):
            try:
                while True:
                    filler.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise FaultError(f"filling {mountpoint} failed: {exc}") from None
        try:
            os.fsync(filler.fileno())
        except OSError:
            pass
    return time.time()


def do_free_disk(mountpoint):
    """Remove the file fill_disk wrote."""
    (_mounted(mountpoint, "empty") / FILL_NAME).unlink(missing_ok=True)
    return time.time()


def _mounted(mountpoint, verb):
    """`mountpoint` as a Path, when a file system is mounted there (as this process sees it).

    Filling a bare directory would fill the node's root file system instead, and emptying one
    would "succeed" while the full disk stays full on the node that holds it now."""
    mountpoint = Path(mountpoint)
    if not mountpoint.is_dir():
        raise FaultError(f"cannot {verb} {mountpoint}: no such directory (is the disk "
                         "mounted on this node?)")
    if not os.path.ismount(mountpoint):
        raise FaultError(f"cannot {verb} {mountpoint}: no file system is mounted there on "
                         "this node")
    return mountpoint


def do_io_errors(mountpoint):
    """Make every read, write, sync and directory change under `mountpoint` (anywhere in an
    esrt-faultfs mount) fail with EIO."""
    return _faultfs_mode(mountpoint, "eio")


def do_slow_io(mountpoint, delay_ms):
    """Delay every read, write and sync under `mountpoint` by `delay_ms` milliseconds."""
    return _faultfs_mode(mountpoint, f"slow {int(delay_ms)}")


def do_heal_io(mountpoint):
    """Undo io_errors and slow_io."""
    return _faultfs_mode(mountpoint, "ok")


def _faultfs_mode(mountpoint, command):
    from esrt.testing.faultfs import FaultFSError, set_mode
    try:
        return set_mode(mountpoint, command)
    except FaultFSError as exc:
        raise FaultError(str(exc)) from None


ACTIONS = {
    "kill-mfds": (do_kill_mfds, 0),
    "kill-region": (do_kill_region, 1),
    "kill-sep": (do_kill_sep, 2),
    "hang-region": (do_hang_region, 1),
    "resume-region": (do_resume_region, 1),
}
# Disk faults take the mountpoint, then these many more arguments.
DISK_ACTIONS = {"fill-disk": (do_fill_disk, 0), "free-disk": (do_free_disk, 0),
                "io-errors": (do_io_errors, 0), "slow-io": (do_slow_io, 1),
                "heal-io": (do_heal_io, 0)}


# --- dispatch: here, or inside a lab node -----------------------------------------------------

def _is_lab_node(node):
    return hasattr(node, "run") and hasattr(node, "init_pid")


def _inside(node, argv):
    """Run `python -m esrt.testing.faults ARGV` inside lab node `node`; return the fault time."""
    command = [sys.executable, "-m", "esrt.testing.faults", *map(str, argv)]
    try:
        result = node.run(command, check=False, timeout=120)
    except subprocess.TimeoutExpired:
        raise FaultError(f"{node.name}: {' '.join(map(str, argv))} did not finish within "
                         "120 s") from None
    if result.returncode != 0:
        raise FaultError(f"{node.name}: {' '.join(map(str, argv))} failed "
                         f"(exit {result.returncode}): {(result.stderr or result.stdout).strip()}")
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise FaultError(f"{node.name}: the fault helper printed no time: "
                         f"{result.stdout!r} {result.stderr!r}") from None


def _process_fault(action, node, *args):
    function, _ = ACTIONS[action]
    if _is_lab_node(node):
        return _inside(node, [action, node.home, *args])
    home = getattr(node, "home", None)
    if home is None:
        raise FaultError(f"{node!r} is not a node: give a lab node or an object with `home` "
                         "(its ESRT_HOME)")
    return function(home, *args)


def kill_mfds(node):
    """Kill the node's mfds (SIGKILL); regions keep serving. Returns the fault time."""
    return _process_fault("kill-mfds", node)


def kill_region(node, server):
    """Kill every process of region `server` on the node (SIGKILL). Returns the fault time."""
    return _process_fault("kill-region", node, server)


def kill_sep(node, server, number=1):
    """Kill one SEP of region `server` on the node (SIGKILL). Returns the fault time."""
    return _process_fault("kill-sep", node, server, int(number))


def hang_region(node, server):
    """Freeze every process of region `server` (SIGSTOP). Returns the fault time."""
    return _process_fault("hang-region", node, server)


def resume_region(node, server):
    """Undo hang_region (SIGCONT). Returns the time."""
    return _process_fault("resume-region", node, server)


def fill_disk(node, mountpoint):
    """Fill the file system mounted on `mountpoint` of the node. Returns the fault time.

    `node` may be None for a directory of this machine."""
    return _disk_fault("fill-disk", node, mountpoint)


def free_disk(node, mountpoint):
    """Remove what fill_disk wrote."""
    return _disk_fault("free-disk", node, mountpoint)


def _disk_fault(action, node, mountpoint, *args):
    if node is not None and _is_lab_node(node):
        return _inside(node, [action, mountpoint, *args])
    function, _ = DISK_ACTIONS[action]
    return function(mountpoint, *args)


def io_errors(node, mountpoint):
    """Make the disk under `mountpoint` fail: reads, writes, syncs and directory changes give
    EIO. `mountpoint` is (or is inside) an esrt-faultfs mount (esrt.testing.faultfs) of the
    node, or of this machine when `node` is None. Returns the fault time."""
    return _disk_fault("io-errors", node, mountpoint)


def slow_io(node, mountpoint, delay_ms):
    """Make every read, write and sync under `mountpoint` (an esrt-faultfs mount) wait
    `delay_ms` milliseconds. Returns the fault time."""
    return _disk_fault("slow-io", node, mountpoint, int(delay_ms))


def heal_io(node, mountpoint):
    """Make the disk under `mountpoint` work normally again (undoes io_errors and slow_io).
    Returns the time."""
    return _disk_fault("heal-io", node, mountpoint)


def power_off(lab, node):
    """Pull the node's power plug (lab.power_off). Returns the fault time."""
    if not getattr(node, "powered", True):
        raise FaultError(f"{node.name} is already powered off")
    # Taken before the call: power_off kills the node first, then waits for its processes
    # to be reaped, which must not count as takeover time saved.
    moment = time.time()
    lab.power_off(node)
    return moment


def lan_failure(lab, node):
    """Unplug the node's LAN: its veth goes down on the host side. Returns the fault time.

    IPaddr2's monitor does not notice a dead link; the peer notices the lost cluster membership
    and fences the node (the lab's fencing lets only a node that still reaches the LAN fence).
    """
    if node not in lab.nodes:
        raise FaultError(f"{node!r} is not a node of this lab")
    moment = time.time()
    result = subprocess.run(["ip", "link", "set", node.veth, "down"], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise FaultError(f"cannot take {node.name}'s LAN down (ip link set {node.veth} down): "
                         f"{result.stderr.strip()}; the lab needs root")
    return moment


# --- the helper run inside a node -------------------------------------------------------------

def main(argv=None):
    """`python -m esrt.testing.faults ACTION ...`: inject one fault here; print its time."""
    parser = argparse.ArgumentParser(prog="python -m esrt.testing.faults",
                                     description="inject one fault on this node")
    parser.add_argument("action", choices=sorted([*ACTIONS, *DISK_ACTIONS]))
    parser.add_argument("target", help="ESRT_HOME (process faults) or mountpoint (disk faults)")
    parser.add_argument("args", nargs="*", help="server name, then SEP number for kill-sep; "
                        "milliseconds for slow-io")
    args = parser.parse_args(argv)
    try:
        if args.action in DISK_ACTIONS:
            function, count = DISK_ACTIONS[args.action]
            where = "the mountpoint"
        else:
            function, count = ACTIONS[args.action]
            where = "the home"
        if len(args.args) != count:
            parser.error(f"{args.action} needs {count} argument(s) after {where}")
        moment = function(args.target, *args.args)
    except FaultError as exc:
        print(f"fault {args.action}: {exc}", file=sys.stderr)
        return 1
    print(f"{moment:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
