"""A lab of N cluster nodes on one machine, for failover tests of esrt regions.

Each node is a network namespace plus PID/mount/UTS/IPC namespaces running real corosync and
real pacemakerd; the nodes share a bridge on the host (the "LAN", where clients on the host
reach relocatable addresses), a loop-device ext4 "shared disk" and a fake power switch used
by real Pacemaker fencing. Every name (bridge, namespaces, veths, subnet, workdir) is unique to
one Lab, so labs never collide, and stop() removes all of it, whatever state start() reached.

    with Lab(nodes=2) as lab:
        disk = lab.add_disk("shared")
        ...
        lab.add_group("grp1", "10.99.7.10", disk, "/mnt/grp1", "/mnt/grp1/ESHA01.region.json",
                      prefer=lab.nodes[0])
        node = lab.wait_group("grp1")
"""

import atexit
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

from esrt.procs import process_state
from esrt.testing import cluster
from esrt.testing.labhost import (LabError, lab_unavailable_reason, reclaim_stale_lab, run_host,
                                  wait_until)
from esrt.testing.power import PowerSwitch, install_fence_agent

STATE_DIR = Path("/run/esrt-lab")   # which lab indexes are taken (one claim file per lab)
SUBNET_PREFIX = "10.99"
FIRST_INDEX, LAST_INDEX = 10, 250   # below 10 is left for hand-made experiments
NODE_NIC = "lan0"                   # the lab interface's name inside every node
POLL = 0.2


class Node:
    """One lab node: its namespaces, address, ESRT_HOME and host-side veth."""

    def __init__(self, lab, index):
        self.lab = lab
        self.index = index
        self.name = f"node{index}"
        self.address = f"{lab.subnet}.{index}"
        self.netns = f"{lab.name}-{self.name}"
        self.veth = f"{lab.name}n{index}"
        self.dir = lab.workdir / self.name
        self.home = self.dir / "home"
        self.init_pid = None
        self._process = None      # the `unshare` parent of init (our child, to be reaped)
        self._powered = False

    def __repr__(self):
        state = "on" if self._powered else "off"
        return f"<Node {self.name} {self.address} init={self.init_pid} {state}>"

    @property
    def powered(self):
        """False once the node was powered off (or before it was started)."""
        return self._powered

    def _enter(self, argv):
        if not self._powered or self.init_pid is None:
            raise LabError(f"{self.name} of lab {self.lab.name} is powered off: run commands "
                           "on a powered node (see Lab.nodes and Node.powered)")
        return ["nsenter", "-t", str(self.init_pid), "-a", "--"] + [str(a) for a in argv]

    def _environment(self, env):
        environ = dict(os.environ, ESRT_HOME=str(self.home))
        environ.update(env or {})
        return environ

    def run(self, argv, check=True, timeout=60, env=None):
        """Run argv inside the node (ESRT_HOME = node.home); return the CompletedProcess.

        With check, a non-zero exit raises LabError showing the command's output.
        """
        command = self._enter(argv)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                    env=self._environment(env))
        except subprocess.TimeoutExpired:
            raise LabError(f"{self.name}: `{' '.join(map(str, argv))}` did not finish within "
                           f"{timeout} s") from None
        if check and result.returncode != 0:
            raise LabError(f"{self.name}: `{' '.join(map(str, argv))}` failed "
                           f"({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def popen(self, argv, **kw):
        """Start argv inside the node and return its Popen (the caller waits for it)."""
        kw["env"] = self._environment(kw.get("env"))
        return subprocess.Popen(self._enter(argv), **kw)

    def esrt(self, *args, check=True, timeout=120):
        """Run the esrt CLI of this Python inside the node, with ESRT_HOME = node.home."""
        return self.run([sys.executable, "-m", "esrt", "--home", self.home, *args],
                        check=check, timeout=timeout)


_LIVE_LABS = set()
_sigterm_before = None   # SIGTERM's handler before the first live lab, while labs are live
_stopping = 0            # labs being torn down now
_terminate = False       # a SIGTERM came during a teardown: raised once the last one ends


@atexit.register
def _stop_leftover_labs():
    # Safety net for a lab whose owner forgot stop() (or died in a fixture): never leave
    # namespaces, loop devices or a cluster running after the interpreter exits.
    for lab in list(_LIVE_LABS):
        lab.stop()


def _terminated(signum, frame):
    # SIGTERM (a job stopped, a CI timeout) would end the interpreter without atexit, and the
    # labs with their clusters would outlive it. As a Ctrl-C instead: with-blocks, fixtures and
    # atexit unwind, and every lab stops. A teardown under way is let finish first.
    global _terminate
    if _stopping:
        _terminate = True
        return
    raise KeyboardInterrupt(f"signal {signum}: stopping the labs")


def _watch_sigterm(live):
    """While a lab is live, a SIGTERM stops it; the handler goes when the last one stops, and
    a SIGTERM that came during a teardown is raised then. Only where SIGTERM was left to its
    default, and from the main thread (Python's rule)."""
    global _sigterm_before, _terminate
    if threading.current_thread() is not threading.main_thread():
        return
    if live and _sigterm_before is None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        _sigterm_before = signal.signal(signal.SIGTERM, _terminated)
    elif not live and not _LIVE_LABS and not _stopping and _sigterm_before is not None:
        signal.signal(signal.SIGTERM, _sigterm_before)
        _sigterm_before = None
        if _terminate:
            _terminate = False
            raise KeyboardInterrupt("SIGTERM: the labs are stopped")


class Lab:
    """N nodes with real corosync + pacemaker, fencing, a LAN bridge and shared disks.

    A context manager: leaving the block (or stop()) always tears everything down.
    """

    def __init__(self, nodes=2, workdir=None, name=None, totem=None):
        """`totem`: corosync totem settings over the lab's (esrt.testing.cluster), e.g.
        {"token_coefficient": 0} for a third node that adds nothing to the token timeout."""
        if nodes < 2:
            raise LabError(f"a lab needs at least 2 nodes (got {nodes}): a cluster of one "
                           "cannot fail over")
        self.node_count = nodes
        self.totem = dict(totem or {})
        self._requested_workdir = workdir
        self._requested_name = name
        self.name = None
        self.index = None
        self.subnet = None
        self.host_address = None
        self.bridge = None
        self.workdir = None
        self.nodes = []
        self.disks = {}           # name -> (loop device, backing file)
        self._power = None
        self._claim = None
        self._own_workdir = False
        self._started = False
        self.boot_seconds = None  # how long start() took

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=90):
        """Bring up network, nodes, corosync + pacemaker (quorate, fencing) and mfds."""
        reason = lab_unavailable_reason()
        if reason:
            raise LabError(reason)
        if self._started:
            raise LabError(f"lab {self.name} is already started; use a new Lab for another one")
        self._started = True
        _LIVE_LABS.add(self)
        _watch_sigterm(True)
        began = time.monotonic()
        try:
            self._claim_index()
            self._make_workdir()
            try:
                install_fence_agent()
            except RuntimeError as exc:
                raise LabError(str(exc)) from None
            self._install_ocf_agents()
            self._make_network()
            self._power = PowerSwitch(self.workdir / "power.sock", self._switch_off,
                                      lambda: [n.name for n in self.nodes],
                                      lambda name: self.node(name).powered,
                                      lan_address=self.host_address)
            self._power.start()
            for node in self.nodes:
                self._prepare_node(node)
            for node in self.nodes:
                self._boot_node(node)
            self._wait_cluster(timeout - (time.monotonic() - began))
            for node in self.nodes:
                node.esrt("mfds", "--daemon")
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - began

    def stop(self):
        """Tear everything down (idempotent): nodes, network, disks, workdir, claim."""
        global _stopping
        if not self._started:
            return
        self._started = False
        _stopping += 1
        try:
            self._teardown()
        finally:
            _LIVE_LABS.discard(self)
            _stopping -= 1
            _watch_sigterm(False)

    def _teardown(self):
        problems = []
        for node in self.nodes:
            try:
                self._kill_node(node)
            except Exception as exc:  # noqa: BLE001 - keep going: the rest must still be removed
                problems.append(f"{node.name}: {exc}")
        if self._power is not None:
            self._power.stop()
        for mount in self._host_mounts():
            run_host(["umount", "-l", mount], check=False)
        for device, _backing in self.disks.values():
            run_host(["losetup", "-d", device], check=False)
        self.disks.clear()
        for node in self.nodes:
            run_host(["ip", "netns", "delete", node.netns], check=False)
            run_host(["ip", "link", "delete", node.veth], check=False)
        if self.bridge:
            run_host(["ip", "link", "delete", self.bridge], check=False)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self._claim is not None:
            try:
                self._claim.unlink()
            except OSError:
                pass
            self._claim = None
        if problems:
            raise LabError(f"lab {self.name} teardown: " + "; ".join(problems))

    # --- start steps ------------------------------------------------------------------------

    def _claim_index(self):
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used_addresses = run_host(["ip", "-4", "-o", "addr", "show"]).stdout
            links = run_host(["ip", "-o", "link", "show"]).stdout
            if self._requested_name and f" {self._requested_name}br:" in links:
                raise LabError(f"a lab named {self._requested_name!r} is running already "
                               f"(bridge {self._requested_name}br exists): choose another name, "
                               "or leave name unset for a unique one")
            for index in range(FIRST_INDEX, LAST_INDEX + 1):
                claim = STATE_DIR / f"{index}.pid"
                if claim.exists():
                    try:
                        owner = int(claim.read_text().split()[0])
                    except (OSError, ValueError, IndexError):
                        owner = None
                    if owner and process_state(owner) not in (None, "Z", "X"):
                        continue
                    reclaim_stale_lab(claim)
                name = self._requested_name or f"esl{index}"
                if (f" {SUBNET_PREFIX}.{index}." in used_addresses
                        or f" {name}br:" in links or f" {name}n1@" in links):
                    continue
                claim.write_text(f"{os.getpid()} {name}\n")
                self._claim = claim
                self.index = index
                self.name = name
                break
            else:
                raise LabError(f"no free lab subnet {SUBNET_PREFIX}.{FIRST_INDEX}-{LAST_INDEX}"
                               f".0/24: stop other labs, or remove stale claims in {STATE_DIR}")
        if len(self.name) > 9:
            raise LabError(f"lab name {self.name!r} is too long: interface names are built from "
                           "it and Linux allows 15 characters; use at most 9")
        self.subnet = f"{SUBNET_PREFIX}.{self.index}"
        self.host_address = f"{self.subnet}.254"
        self.bridge = f"{self.name}br"

    def _make_workdir(self):
        if self._requested_workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"esrt-lab-{self.name}-"))
            self._own_workdir = True
        else:
            self.workdir = Path(self._requested_workdir).resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        # Pacemaker runs some tools as hacluster; they must reach the fence socket's directory.
        os.chmod(self.workdir, 0o755)
        self.nodes = [Node(self, index) for index in range(1, self.node_count + 1)]

    @staticmethod
    def _install_ocf_agents():
        from esrt.ha.agent import AgentInstallError, install_agents
        try:
            install_agents()
        except AgentInstallError as exc:
            raise LabError(str(exc)) from None

    def _make_network(self):
        run_host(["ip", "link", "add", self.bridge, "type", "bridge"])
        run_host(["ip", "addr", "add", f"{self.host_address}/24", "dev", self.bridge])
        run_host(["ip", "link", "set", self.bridge, "up"])
        for node in self.nodes:
            run_host(["ip", "netns", "add", node.netns])
            run_host(["ip", "link", "add", node.veth, "type", "veth", "peer", "name", NODE_NIC,
                  "netns", node.netns])
            run_host(["ip", "link", "set", node.veth, "master", self.bridge])
            run_host(["ip", "link", "set", node.veth, "up"])
            inside = ["ip", "netns", "exec", node.netns]
            run_host(inside + ["ip", "link", "set", "lo", "up"])
            self._address_node(node)
            run_host(inside + ["ip", "link", "set", NODE_NIC, "up"])

    @staticmethod
    def _address_node(node):
        """Give the node's NIC its own address, and only that one (IPv4; the link-local IPv6
        address stays)."""
        inside = ["ip", "netns", "exec", node.netns]
        run_host(inside + ["ip", "-4", "addr", "flush", "dev", NODE_NIC])
        run_host(inside + ["ip", "addr", "add", f"{node.address}/24", "dev", NODE_NIC])

    def _prepare_node(self, node):
        import grp
        import pwd
        for relative, (user, group, mode) in cluster.NODE_DIRS.items():
            path = node.dir / relative
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
            os.chmod(path, mode)
        node.home.mkdir(parents=True, exist_ok=True)
        (node.dir / "etc/corosync/corosync.conf").write_text(
            cluster.corosync_conf(self.name, [n.address for n in self.nodes], self.totem))
        cib = node.dir / "var/lib/pacemaker/cib/cib.xml"
        cib.write_text(cluster.initial_cib([n.name for n in self.nodes],
                                           self.workdir / "power.sock", self._power.lan_check))
        hacluster = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
        os.chown(cib, *hacluster)
        os.chmod(cib, 0o600)
        script = self.workdir / "node-init"
        if not script.exists():
            script.write_text(cluster.node_init_script())
            os.chmod(script, 0o755)

    def _boot_node(self, node):
        log = open(node.dir / "node-init.log", "ab")
        try:
            node._process = subprocess.Popen(
                ["ip", "netns", "exec", node.netns, "unshare", "--mount", "--uts", "--ipc",
                 "--pid", "--fork", "--mount-proc", str(self.workdir / "node-init"),
                 str(node.dir), node.name],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        # `ip netns exec` execs unshare, whose only child is the namespace's init.
        children = Path(f"/proc/{node._process.pid}/task/{node._process.pid}/children")
        while time.monotonic() < deadline:
            try:
                pids = children.read_text().split()
            except OSError:
                pids = []
            if pids:
                node.init_pid = int(pids[0])
                node._powered = True
                return
            if node._process.poll() is not None:
                break
            time.sleep(0.02)
        raise LabError(f"{node.name} did not start its namespace init; see "
                       f"{node.dir / 'node-init.log'}")

    def _wait_cluster(self, timeout):
        deadline = time.monotonic() + max(timeout, 5)
        last = "no answer from crm_mon yet"
        names = {n.name for n in self.nodes}
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node._process.poll() is not None:
                    raise LabError(f"{node.name} stopped while booting: see "
                                   f"{node.dir / 'node-init.log'} and "
                                   f"{node.dir / 'var/log/pacemaker'}")
            try:
                root = self._crm_mon()
            except LabError as exc:
                last = str(exc)
            else:
                online = {n.get("name") for n in root.iter("node") if n.get("online") == "true"}
                dc = root.find("summary/current_dc")
                fence = [r for r in root.iter("resource") if r.get("id") == "lab-fence"]
                quorate = dc is not None and dc.get("with_quorum") == "true"
                if online == names and quorate and fence and fence[0].get("active") == "true":
                    return
                last = f"online: {sorted(online)}, quorate: {quorate}"
            time.sleep(POLL)
        raise LabError(f"lab {self.name} did not become a quorate cluster within "
                       f"{timeout:.0f} s ({last}); see the logs in {self.workdir}/node*/var/log/"
                       "pacemaker")

    # --- power ------------------------------------------------------------------------------

    def node(self, name):
        """The Node called `name`."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"lab {self.name} has no node {name!r}; its nodes are "
                       f"{', '.join(n.name for n in self.nodes)}")

    def _kill_node(self, node):
        """SIGKILL the node's init (the kernel kills the whole PID namespace), veth down."""
        node._powered = False
        # Only while unshare (init's parent) has not reaped init can init_pid not be reused.
        if node.init_pid is not None and node._process is not None \
                and node._process.poll() is None:
            try:
                os.kill(node.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run_host(["ip", "link", "set", node.veth, "down"], check=False)
        if node._process is not None:
            try:
                node._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node._process.kill()
                node._process.wait(timeout=5)
        # The namespace's processes are gone once its init is reaped; wait until /proc agrees.
        if node.init_pid is not None:
            deadline = time.monotonic() + 10
            while process_state(node.init_pid) is not None and time.monotonic() < deadline:
                time.sleep(0.05)

    def _switch_off(self, name):
        self._kill_node(self.node(name))

    def power_off(self, node):
        """Pull the plug of `node` (a Node or its name): SIGKILL of its init, veth down."""
        node = self.node(node) if isinstance(node, str) else node
        self._kill_node(node)

    def power_on(self, node, timeout=90):
        """Switch `node` on again after a power-off or a fence: its LAN back up, its init
        booted, Pacemaker rejoined (both nodes online and quorate), its mfds started."""
        node = self.node(node) if isinstance(node, str) else node
        if node.powered:
            raise LabError(f"{node.name} is already on")
        # A fence may still be switching it off: let that finish first.
        self._kill_node(node)
        # It boots with its own address only, as a machine does: one a resource agent had
        # added (a floating address) went with the power, or two nodes would answer for it.
        self._address_node(node)
        run_host(["ip", "link", "set", node.veth, "up"])
        self._boot_node(node)
        self._wait_cluster(timeout)
        node.esrt("mfds", "--daemon")

    def lan_up(self, node):
        """Plug the node's LAN back in (after esrt.testing.faults.lan_failure)."""
        node = self.node(node) if isinstance(node, str) else node
        run_host(["ip", "link", "set", node.veth, "up"])

    def fence_events(self):
        """What the power switch did for the cluster's fencing, e.g. ["off node1"]."""
        return list(self._power.events) if self._power else []

    # --- disks ------------------------------------------------------------------------------

    def add_disk(self, name, size_mb=64):
        """Create an ext4 "shared disk" on a loop device; return its /dev/loopN path."""
        if name in self.disks:
            raise LabError(f"lab {self.name} already has a disk {name!r}; choose another name")
        if not self.workdir:
            raise LabError("start the lab before adding disks")
        backing = self.workdir / f"disk-{name}.img"
        with open(backing, "wb") as image:
            image.truncate(size_mb * 1024 * 1024)
        device = run_host(["losetup", "--find", "--show", backing]).stdout.strip()
        self.disks[name] = (device, backing)
        run_host(["mkfs.ext4", "-q", "-F", device], timeout=120)
        return device

    @contextmanager
    def mounted(self, disk, at=None):
        """Mount `disk` on the host (at `at`, default a temporary directory) and yield the path.

        Mount it at the group's mountpoint to populate it: paths written into region files are
        then the same on the host and on the nodes. Never keep it mounted while a node has it.
        """
        path = Path(at) if at else Path(tempfile.mkdtemp(prefix="mnt-", dir=self.workdir))
        path.mkdir(parents=True, exist_ok=True)
        run_host(["mount", "-t", "ext4", disk, path])
        try:
            yield path
        finally:
            if os.path.ismount(path):
                run_host(["umount", path], check=False)
            if os.path.ismount(path):
                run_host(["umount", "-l", path], check=False)

    def _host_mounts(self):
        devices = {device for device, _ in self.disks.values()}
        mounts = []
        try:
            lines = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return mounts
        for line in lines:
            fields = line.split()
            if len(fields) > 1 and (fields[0] in devices or
                                    (self.workdir and fields[1].startswith(str(self.workdir)))):
                mounts.append(fields[1])
        return sorted(mounts, reverse=True)

    # --- cluster ----------------------------------------------------------------------------

    def live_node(self):
        """A powered node to run cluster commands on."""
        for node in self.nodes:
            if node.powered:
                return node
        raise LabError(f"every node of lab {self.name} is powered off")

    def crm(self, *argv, timeout=60):
        """Run a Pacemaker CLI (e.g. "crm_mon", "-1") on a live node; return its stdout."""
        return self.live_node().run(list(argv), timeout=timeout).stdout

    def designated_controller(self):
        """The name of the node Pacemaker's decisions are made on now (the DC), or None. A
        node that dies as DC costs its takeover an election and a second more."""
        dc = self._crm_mon().find("summary/current_dc")
        return dc.get("name") if dc is not None and dc.get("present") == "true" else None

    def _crm_mon(self):
        text = self.crm("crm_mon", "-1", "--output-as=xml", timeout=20)
        try:
            return ET.fromstring(text)
        except ET.ParseError as exc:
            raise LabError(f"crm_mon gave no XML ({exc})") from None

    def add_group(self, name, ip, disk, mountpoint, region_config, prefer=None,
                  region_name=None, extra_resources=(), region_params=None, before_region=()):
        """Create resource group `name`: IPaddr2 `ip`/24 + Filesystem + ocf:esrt:region.

        `extra_resources` are <primitive> XML strings appended to the group, `before_region`
        ones placed between the Filesystem and the region; `region_params`
        are more parameters of the region resource (e.g. {"check_mfds": "true"}). Returns once the
        cluster has the configuration (use wait_group to wait until it runs).
        """
        if not ip.startswith(self.subnet + "."):
            raise LabError(f"group {name}: address {ip} is not on the lab LAN {self.subnet}.0/24;"
                           f" use an address like {self.subnet}.10")
        if not Path(region_config).is_absolute() or not Path(mountpoint).is_absolute():
            raise LabError(f"group {name}: mountpoint and region_config must be absolute paths")
        xml = cluster.group_xml(name, ip, NODE_NIC, disk, str(mountpoint), str(region_config),
                                {n.name: str(n.home) for n in self.nodes},
                                region_name=region_name, extra_resources=extra_resources,
                                region_params=region_params, stopped=prefer is not None,
                                before_region=before_region)
        self._cib_create("resources", xml)
        if prefer is not None:
            # Created stopped, released once the preference exists: otherwise the scheduler
            # may place the group before it sees the preference, and stickiness keeps it there.
            prefer = self.node(prefer) if isinstance(prefer, str) else prefer
            self._cib_create("constraints", cluster.location_xml(name, prefer.name))
            self.crm("cibadmin", "--delete", "--xml-text",
                     f'<nvpair id="{cluster.held_nvpair_id(name)}"/>')

    def add_standby_group(self, name, ip, disk, mountpoint, standby_config, region_name,
                          prefer=None):
        """The report's pattern 6: region `region_name` pre-started on every node as a standby
        (a clone, from `standby_config`, a region file with "standby": true readable on every
        node), and group `name` (IPaddr2 + Filesystem + the region's activation) that moves
        between them. Taking over then mounts the disk, adds the address and activates the
        region already running there: no region start."""
        clone, constraints = cluster.standby_xml(
            name, str(standby_config), region_name, {n.name: str(n.home) for n in self.nodes})
        self._cib_create("resources", clone)
        self.add_group(name, ip, disk, mountpoint, standby_config, prefer=prefer,
                       region_name=region_name, region_params={"activate": "true"})
        for constraint in constraints:
            self._cib_create("constraints", constraint)

    def _cib_create(self, section, xml):
        self.crm("cibadmin", "--create", "-o", section, "--xml-text", xml)

    def configure(self, section, xml):
        """Add `xml` (one element) to the CIB's `section` ("resources", "constraints")."""
        self._cib_create(section, xml)

    def _group_state(self, group):
        """(node name or None, started?) of the group's region resource, from crm_mon."""
        region_id = cluster.resource_ids(group)[2]
        root = self._crm_mon()
        for group_el in root.iter("group"):
            if group_el.get("id") != group:
                continue
            members = list(group_el.iter("resource"))
            nodes = {n.get("name") for r in members for n in r.iter("node")}
            started = bool(members) and all(
                r.get("role") == "Started" and r.get("active") == "true"
                and r.get("failed") != "true" for r in members)
            for resource in members:
                if resource.get("id") == region_id:
                    where = [n.get("name") for n in resource.iter("node")]
                    return (where[0] if where else None), started and len(nodes) == 1
        return None, False

    def locate(self, group):
        """The Node where the group's region resource runs now, or None."""
        name, _ = self._group_state(group)
        return self.node(name) if name else None

    def wait_group(self, group, on=None, timeout=60):
        """Wait until every resource of `group` is started (on node `on`, if given)."""
        on = self.node(on) if isinstance(on, str) else on
        state = (None, False)

        def started_node():
            nonlocal state
            try:
                state = self._group_state(group)
            except LabError:
                return None
            name, started = state
            return self.node(name) if started and name and (on is None or name == on.name) \
                else None

        node = wait_until(started_node, timeout, POLL)
        if node:
            return node
        where = f"on {on.name} " if on else ""
        raise LabError(f"group {group} did not start {where}within {timeout} s (now: "
                       f"{state[0] or 'nowhere'}, all started: {state[1]}); see `crm_mon -1` "
                       f"via Lab.crm and the logs in {self.workdir}/node*/var/log/pacemaker")

    def move(self, group, to, timeout=60):
        """Switch `group` over to node `to` by cluster command, then drop the move constraint."""
        to = self.node(to) if isinstance(to, str) else to
        self.crm("crm_resource", "--move", "--resource", group, "--node", to.name)
        try:
            self.wait_group(group, on=to, timeout=timeout)
        finally:
            self.crm("crm_resource", "--clear", "--resource", group)
