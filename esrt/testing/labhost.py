"""What an esrt.testing lab needs from its host, and the cleanup of what a dead one left there.

A lab runs real corosync and Pacemaker in namespaces of this machine: lab_unavailable_reason()
says which Debian packages it lacks (or that it is not root); run_host() runs a host command
for the lab with a clear error; reclaim_stale_lab() removes the namespaces, mounts, loop devices
and links of a lab whose owner died without stopping it; wait_until() is the labs' one polling
loop.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# command -> Debian package that provides it
REQUIRED_COMMANDS = {
    "corosync": "corosync", "corosync-cfgtool": "corosync", "pacemakerd": "pacemaker",
    "cibadmin": "pacemaker-cli-utils", "crm_mon": "pacemaker-cli-utils",
    "crm_resource": "pacemaker-cli-utils", "losetup": "mount", "mkfs.ext4": "e2fsprogs",
    "ip": "iproute2", "unshare": "util-linux", "nsenter": "util-linux", "mount": "mount",
    # The Filesystem agent's probe needs it; resource-agents does not depend on it.
    "fuser": "psmisc",
}
REQUIRED_AGENTS = {"/usr/lib/ocf/resource.d/heartbeat/IPaddr2": "resource-agents",
                   "/usr/lib/ocf/resource.d/heartbeat/Filesystem": "resource-agents"}

class LabError(RuntimeError):
    """The lab could not do something; the message says what failed and what to do."""


def wait_until(check, timeout, interval=0.2):
    """Call `check()` every `interval` seconds until it returns a true value, and return that
    value; or the last false one once `timeout` seconds have passed. The caller raises its
    own error, which names what it waited for and where to look."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def lab_unavailable_reason():
    """Why a lab cannot run on this machine (a sentence naming the remedy), or None."""
    if os.geteuid() != 0:
        return "the esrt.testing lab needs root (network namespaces, loop devices, mounts)"
    missing = sorted({package for command, package in REQUIRED_COMMANDS.items()
                      if shutil.which(command) is None}
                     | {package for path, package in REQUIRED_AGENTS.items()
                        if not os.path.exists(path)})
    if missing:
        return ("the esrt.testing lab needs commands from Debian packages that are not "
                f"installed: apt-get install {' '.join(missing)}")
    return None


def run_host(argv, check=True, timeout=60, **kw):
    """Run a host command, text output captured; raise LabError naming it when it fails."""
    try:
        result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                                timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(map(str, argv))}` did not finish within {timeout} s") \
            from None
    if check and result.returncode != 0:
        raise LabError(f"`{' '.join(map(str, argv))}` failed ({result.returncode}): "
                       f"{(result.stderr or result.stdout).strip()}")
    return result


def reclaim_stale_lab(claim):
    """Tear down what a lab whose owner died without stop() (e.g. SIGKILL) left behind.

    Its claim file names it; its processes are found through its named network namespaces,
    its loop devices and mounts through its workdir's name.
    """
    try:
        name = claim.read_text().split()[1]
    except (OSError, IndexError):
        claim.unlink(missing_ok=True)
        return
    netns = run_host(["ip", "netns", "list"], check=False).stdout.split()
    for space in [n for n in netns if n.startswith(f"{name}-node")]:
        for pid in run_host(["ip", "netns", "pids", space], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run_host(["ip", "netns", "delete", space], check=False)
    marker = f"/esrt-lab-{name}-"
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        if marker in line.split()[1]:
            run_host(["umount", "-l", line.split()[1]], check=False)
    for line in run_host(["losetup", "-a"], check=False).stdout.splitlines():
        if marker in line:
            run_host(["losetup", "-d", line.split(":")[0]], check=False)
    links = run_host(["ip", "-o", "link", "show"], check=False).stdout.splitlines()
    for link in links:
        link_name = link.split(":")[1].strip().split("@")[0]
        if link_name.startswith(name) and link_name[len(name):] in (
                "br", *(f"n{i}" for i in range(1, 100))):
            run_host(["ip", "link", "delete", link_name], check=False)
    for workdir in Path(tempfile.gettempdir()).glob(f"esrt-lab-{name}-*"):
        shutil.rmtree(workdir, ignore_errors=True)
    claim.unlink(missing_ok=True)
