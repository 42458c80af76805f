"""esrt-faultfs, the disk that fails on command: it mirrors its source, its modes do what they
say to the calls a program makes, shared memory maps stay coherent, and no mount outlives a
test even when the daemon is killed."""

import errno
import mmap
import os
import subprocess
import sys
import time

import pytest

from esrt.testing import faultfs, faults


@pytest.fixture
def disk(tmp_path):
    reason = faultfs.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with faultfs.FaultFS(tmp_path / "source", tmp_path / "mount",
                         log=tmp_path / "faultfs.log") as mounted:
        yield mounted
    assert not faultfs.is_mounted(tmp_path / "mount")


def _errno_of(action):
    with pytest.raises(OSError) as raised:
        action()
    return raised.value.errno


def test_it_mirrors_its_source_and_hides_only_the_control_file(disk):
    (disk.mountpoint / "data").mkdir()
    (disk.mountpoint / "data" / "file").write_bytes(b"written through the mount")
    assert (disk.source / "data" / "file").read_bytes() == b"written through the mount"
    (disk.source / "data" / "direct").write_bytes(b"written beside it")
    assert (disk.mountpoint / "data" / "direct").read_bytes() == b"written beside it"
    os.rename(disk.mountpoint / "data" / "direct", disk.mountpoint / "data" / "renamed")
    assert sorted(os.listdir(disk.mountpoint / "data")) == ["file", "renamed"]
    assert os.listdir(disk.mountpoint) == ["data"]
    assert disk.state() == {"mode": "ok", "failed": 0, "delayed": 0}
    assert _errno_of(lambda: os.unlink(disk.mountpoint / faultfs.CONTROL_NAME)) == errno.EPERM


def test_eio_fails_reads_writes_syncs_and_creates_until_healed(disk):
    (disk.source / "old").write_bytes(b"x" * 8192)   # not in the mount's page cache yet
    with open(disk.mountpoint / "log", "wb", buffering=0) as log:
        log.write(b"committed")
        faults.io_errors(None, disk.mountpoint)
        assert disk.state()["mode"] == "eio"
        assert _errno_of(lambda: log.write(b"more")) == errno.EIO
        assert _errno_of(lambda: os.fsync(log.fileno())) == errno.EIO
        assert _errno_of(lambda: os.fdatasync(log.fileno())) == errno.EIO
        assert _errno_of(lambda: log.truncate(0)) == errno.EIO
        assert _errno_of(lambda: (disk.mountpoint / "old").read_bytes()) == errno.EIO
        assert _errno_of(lambda: (disk.mountpoint / "new").write_bytes(b"")) == errno.EIO
        assert _errno_of(lambda: os.unlink(disk.mountpoint / "old")) == errno.EIO
        # A dying disk still answers for what is cached: a program meets the error where it
        # reads or writes data, not in a stat.
        assert (disk.mountpoint / "old").stat().st_size == 8192
        assert disk.state()["failed"] >= 7
        faults.heal_io(None, disk.mountpoint)
        log.write(b" again")
        os.fsync(log.fileno())
    assert (disk.source / "log").read_bytes() == b"committed again"
    assert (disk.mountpoint / "old").read_bytes() == b"x" * 8192


def test_eio_writes_leaves_reads_working(disk):
    (disk.source / "old").write_bytes(b"readable")
    disk.set_mode("eio-writes")
    assert (disk.mountpoint / "old").read_bytes() == b"readable"
    assert _errno_of(lambda: (disk.mountpoint / "old").write_bytes(b"no")) == errno.EIO


def test_slow_io_delays_each_read_write_and_sync(disk):
    path = disk.mountpoint / "slow"
    with open(path, "wb", buffering=0) as file:
        faults.slow_io(None, disk.mountpoint, 150)
        started = time.monotonic()
        file.write(b"a")
        os.fsync(file.fileno())
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3, f"a write and an fsync took {elapsed:.3f} s, not 2 x 150 ms"
    assert disk.state() == {"mode": "slow 150", "failed": 0, "delayed": disk.state()["delayed"]}
    assert disk.state()["delayed"] >= 2
    faults.heal_io(None, disk.mountpoint)
    assert path.read_bytes() == b"a"


def test_a_command_it_does_not_know_is_refused(disk):
    with pytest.raises(faultfs.FaultFSError, match="give ok, eio, eio-writes or slow MS"):
        disk.set_mode("explode")
    with pytest.raises(faultfs.FaultFSError):
        disk.set_mode("slow soon")
    assert disk.state()["mode"] == "ok"


def test_shared_maps_stay_coherent_and_reach_the_source(disk):
    """Berkeley DB's region files (__db.*) are mapped MAP_SHARED by every SEP at once."""
    path = disk.mountpoint / "__db.001"
    with open(path, "w+b") as first:
        first.truncate(65536)
        one = mmap.mmap(first.fileno(), 65536)
        one[:5] = b"first"
        # A second opener (a SEP starting) must see the same memory, not a reread of the disk.
        with open(path, "r+b") as second:
            two = mmap.mmap(second.fileno(), 65536)
            assert two[:5] == b"first"
            two[4096:4102] = b"second"
            assert one[4096:4102] == b"second"
            two.flush()
            assert (disk.source / "__db.001").read_bytes()[4096:4102] == b"second"
            # While the disk fails, a new opener must still share the pages (not drop them,
            # which would write them back through the failing disk and reread them).
            disk.set_mode("eio")
            one[:5] = b"FIRST"
            with open(path, "r+b") as third:
                three = mmap.mmap(third.fileno(), 65536)
                assert three[:5] == b"FIRST" and three[4096:4102] == b"second"
                three.close()
            disk.set_mode("ok")
            two.close()
        one.close()
    assert (disk.source / "__db.001").read_bytes()[4096:4102] == b"second"


def test_the_fault_helper_sets_modes_anywhere_inside_the_mount(disk):
    (disk.mountpoint / "data").mkdir()
    for argv, mode in ((["slow-io", disk.mountpoint / "data", "20"], "slow 20"),
                       (["io-errors", disk.mountpoint / "data"], "eio"),
                       (["heal-io", disk.mountpoint], "ok")):
        result = subprocess.run([sys.executable, "-m", "esrt.testing.faults", *map(str, argv)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert float(result.stdout) > 0
        assert disk.state()["mode"] == mode
    missing = subprocess.run([sys.executable, "-m", "esrt.testing.faults", "slow-io",
                              str(disk.mountpoint)], capture_output=True, text=True)
    assert missing.returncode == 2 and "slow-io needs 1 argument" in missing.stderr


def test_outside_a_mount_the_fault_says_so(tmp_path):
    with pytest.raises(faults.FaultError, match="not inside an esrt-faultfs mount"):
        faults.io_errors(None, tmp_path)


def test_a_killed_daemon_leaves_no_mount_behind(tmp_path):
    reason = faultfs.unavailable_reason()
    if reason:
        pytest.skip(reason)
    disk = faultfs.FaultFS(tmp_path / "source", tmp_path / "mount").mount()
    try:
        # An open file keeps the mount busy, as a region's would: a plain unmount fails.
        held = os.open(disk.mountpoint / "held", os.O_WRONLY | os.O_CREAT)
        disk.kill()
        assert _errno_of(lambda: os.listdir(disk.mountpoint)) == errno.ENOTCONN
    finally:
        disk.unmount()
    # Closing flushes through the dead connection: ENOTCONN, and the descriptor is gone.
    assert _errno_of(lambda: os.close(held)) == errno.ENOTCONN
    assert not faultfs.is_mounted(disk.mountpoint)
    assert os.listdir(disk.mountpoint) == []


def test_the_command_line_mounts_in_the_background_and_unmounts(tmp_path):
    reason = faultfs.unavailable_reason()
    if reason:
        pytest.skip(reason)
    source, mountpoint = tmp_path / "source", tmp_path / "mount"
    source.mkdir()
    mountpoint.mkdir()
    command = [sys.executable, "-m", "esrt.testing.faultfs"]
    try:
        subprocess.run([*command, "mount", str(source), str(mountpoint)], check=True,
                       timeout=30)
        assert faultfs.is_mounted(mountpoint)
        subprocess.run([*command, "set", str(mountpoint), "slow", "5"], check=True)
        shown = subprocess.run([*command, "show", str(mountpoint)], check=True,
                               capture_output=True, text=True).stdout
        assert shown.startswith("slow 5\n")
    finally:
        subprocess.run([*command, "unmount", str(mountpoint)], timeout=60)
    assert not faultfs.is_mounted(mountpoint)
