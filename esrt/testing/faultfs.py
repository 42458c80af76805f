"""A disk that fails or slows down on command, for tests: esrt-faultfs (native/faultfs.c).

esrt-faultfs is a FUSE passthrough file system: a mount mirrors a source directory, and one
line written to the control file ``.esrt-faultfs`` in the mount's root sets what its I/O does:

    ok            pass everything through
    eio           reads, writes, syncs and directory changes fail with EIO (a dead disk)
    eio-writes    writes, syncs and directory changes fail, reads work (a disk failing writes)
    slow MS       each read, write and sync waits MS milliseconds first

Put a region's ``--data-dir`` inside the mount, then use set_mode (or esrt.testing.faults'
io_errors, slow_io and heal_io) to fail its disk under load. Pages the kernel has cached are
still read from memory in the eio modes, as with a real disk.

Use FaultFS as a context manager: it mounts, and unmounts even when the test fails or the
daemon was killed. ``python -m esrt.testing.faultfs`` does the same from a shell or inside a
lab node. This module imports only the standard library: setup.py loads it by path to build
esrt-faultfs when esrt is installed.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[2] / "native"
PACKAGE_LIB = Path(__file__).resolve().parents[1] / "lib"
CACHE_LIB = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "esrt" / "lib"
BINARY_NAME = "esrt-faultfs"
SOURCE_NAME = "faultfs.c"
CONTROL_NAME = ".esrt-faultfs"
FSTYPE = "fuse.esrt-faultfs"
REMEDY = "install fuse3 and libfuse3-dev (Debian), then reinstall esrt"


class FaultFSError(RuntimeError):
    """esrt-faultfs cannot be built, mounted, unmounted or told a mode; the message says why
    and what to do."""


# --- building ---------------------------------------------------------------------------------

def build_faultfs(out_dir, native_dir=NATIVE):
    """Compile esrt-faultfs into `out_dir` unless it is newer than its source; return its path.

    Flags come from pkg-config (fuse3), so headers in a non-standard place are found too.
    """
    out = Path(out_dir) / BINARY_NAME
    source = Path(native_dir) / SOURCE_NAME
    if not source.is_file():
        if out.exists():
            return out   # an installed esrt: built with the package
        raise FaultFSError(f"{source} is missing and {out} was not built; {REMEDY}")
    if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
        return out
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                               capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FaultFSError(f"pkg-config finds no fuse3 ({exc}); {REMEDY}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    # Under a temporary name, then renamed: a test elsewhere may be starting the old binary.
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    command = ["gcc", "-O2", "-Wall", "-o", str(temporary), str(source), *flags]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FaultFSError(f"cannot build {out} (gcc exit status {result.returncode}); "
                           f"{REMEDY}.\n{' '.join(command)}\n{result.stderr}")
    temporary.replace(out)
    return out


def faultfs_binary():
    """Path of an up-to-date esrt-faultfs, building it on first use."""
    try:
        return build_faultfs(PACKAGE_LIB)
    except OSError:
        return build_faultfs(CACHE_LIB)


def unavailable_reason():
    """Why esrt-faultfs cannot be mounted here (a text for pytest.skip), or None."""
    if not os.path.exists("/dev/fuse"):
        return "this machine has no /dev/fuse (load the fuse module, or give the container it)"
    if shutil.which("fusermount3") is None:
        return f"fusermount3 is not installed; {REMEDY}"
    try:
        faultfs_binary()
    except FaultFSError as exc:
        return str(exc)
    return None


# --- the control file -------------------------------------------------------------------------

def control_file(path):
    """The control file of the esrt-faultfs mount that holds `path` (any path inside it)."""
    path = Path(path).absolute()
    for directory in (path, *path.parents):
        if (directory / CONTROL_NAME).exists():
            return directory / CONTROL_NAME
    raise FaultFSError(f"{path} is not inside an esrt-faultfs mount (no {CONTROL_NAME} in it "
                       "or above it): mount one with FaultFS or `python -m "
                       "esrt.testing.faultfs mount SOURCE MOUNTPOINT`")


def set_mode(path, command):
    """Set the mode of the mount holding `path`: "ok", "eio", "eio-writes" or "slow MS".
    Returns time.time() once the mount acts on it."""
    target = control_file(path)
    try:
        with open(target, "w") as control:
            control.write(f"{command}\n")
    except OSError as exc:
        raise FaultFSError(f"{target} refused {command!r} ({exc.strerror}): give ok, eio, "
                           "eio-writes or slow MS") from None
    return time.time()


def read_state(path):
    """{"mode": "eio" | "slow 200" | ..., "failed": n, "delayed": n} of the mount holding
    `path`: the counters say how many operations it failed or delayed since it was mounted."""
    lines = control_file(path).read_text().splitlines()
    state = {"mode": lines[0]}
    for line in lines[1:]:
        name, _, value = line.partition(" ")
        state[name] = int(value)
    return state


# --- mounting ---------------------------------------------------------------------------------

def is_mounted(mountpoint):
    """True while an esrt-faultfs is mounted on `mountpoint` (alive or with a dead daemon)."""
    target = os.path.realpath(mountpoint)
    try:
        with open("/proc/self/mountinfo") as mounts:
            for line in mounts:
                fields = line.split()
                separator = fields.index("-")
                if _unescape(fields[4]) == target and fields[separator + 1] == FSTYPE:
                    return True
    except OSError:
        pass
    return False


def _unescape(field):
    # /proc/self/mountinfo writes space, tab, newline and backslash as octal escapes.
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def unmount(mountpoint):
    """Unmount an esrt-faultfs, lazily if it is busy (a region still has files open) or its
    daemon is dead; does nothing when none is mounted there."""
    if not is_mounted(mountpoint):
        return
    for command in (["fusermount3", "-u", str(mountpoint)],
                    ["fusermount3", "-u", "-z", str(mountpoint)],
                    ["umount", "-l", str(mountpoint)]):
        try:
            subprocess.run(command, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if not is_mounted(mountpoint):
            return
    raise FaultFSError(f"cannot unmount {mountpoint}: run `fusermount3 -u -z {mountpoint}` "
                       "(or `umount -l` as root)")


class FaultFS:
    """esrt-faultfs mirroring `source` on `mountpoint`, its daemon a child of this process.

    Its messages (each mode change) go to `log` (a path) when given. Use it as a context
    manager, or call mount() and unmount() (which is safe to call more than once).
    """

    # Seconds to wait for the mount to appear, and for the daemon to exit once unmounted.
    mount_timeout = 10.0
    exit_timeout = 10.0

    def __init__(self, source, mountpoint, log=None):
        self.source = Path(source)
        self.mountpoint = Path(mountpoint)
        self.log = Path(log) if log else None
        self.process = None

    def mount(self):
        """Start the daemon and return once the mount serves its control file."""
        if is_mounted(self.mountpoint):
            raise FaultFSError(f"an esrt-faultfs is already mounted on {self.mountpoint}: "
                               f"unmount it first (fusermount3 -u {self.mountpoint})")
        self.source.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [str(faultfs_binary()), "-f", str(self.source), str(self.mountpoint)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        finally:
            if self.log:
                output.close()
        deadline = time.monotonic() + self.mount_timeout
        while not (is_mounted(self.mountpoint)
                   and (self.mountpoint / CONTROL_NAME).exists()):
            if self.process.poll() is not None:
                raise FaultFSError(f"esrt-faultfs exited with status {self.process.returncode} "
                                   f"before mounting {self.mountpoint}"
                                   + (f"; see {self.log}" if self.log else ""))
            if time.monotonic() > deadline:
                self.unmount()
                raise FaultFSError(f"esrt-faultfs did not mount {self.mountpoint} within "
                                   f"{self.mount_timeout} s")
            time.sleep(0.02)
        return self

    def set_mode(self, command):
        """See the module-level set_mode; returns the time of the change."""
        return set_mode(self.mountpoint, command)

    def state(self):
        """See read_state."""
        return read_state(self.mountpoint)

    def kill(self):
        """SIGKILL the daemon: the mount stays, and every access then fails (ENOTCONN)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def unmount(self):
        """Unmount and wait for the daemon to exit (killing it if it does not)."""
        try:
            unmount(self.mountpoint)
        finally:
            if self.process is not None:
                try:
                    self.process.wait(self.exit_timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()

    def __enter__(self):
        return self.mount()

    def __exit__(self, *exc_info):
        self.unmount()


# --- command line -----------------------------------------------------------------------------

def main(argv=None):
    """`python -m esrt.testing.faultfs mount|unmount|set|show ...` (see --help)."""
    parser = argparse.ArgumentParser(prog="python -m esrt.testing.faultfs",
                                     description="mount esrt-faultfs and set its mode")
    commands = parser.add_subparsers(dest="command", required=True)
    mount = commands.add_parser("mount", help="mirror SOURCE on MOUNTPOINT (in the background)")
    mount.add_argument("source")
    mount.add_argument("mountpoint")
    commands.add_parser("unmount", help="unmount (lazily if busy)").add_argument("mountpoint")
    mode = commands.add_parser("set", help="set the mode of the mount holding PATH")
    mode.add_argument("path")
    mode.add_argument("mode", nargs="+", help="ok, eio, eio-writes or slow MS")
    commands.add_parser("show", help="print the mode and counters").add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.command == "mount":
            # Without -f, libfuse returns once the mount is up and leaves the daemon running.
            result = subprocess.run([str(faultfs_binary()), args.source, args.mountpoint])
            return result.returncode
        if args.command == "unmount":
            unmount(args.mountpoint)
        elif args.command == "set":
            print(f"{set_mode(args.path, ' '.join(args.mode)):.6f}")
        else:
            print(control_file(args.path).read_text(), end="")
    except FaultFSError as exc:
        print(f"esrt-faultfs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
