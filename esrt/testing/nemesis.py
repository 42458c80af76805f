"""A nemesis for a lab: random faults from a seed, while recording clients call the service.

The schedule is drawn from `random.Random(seed)`, and the seed is printed first, so a run that
found something can be replayed. Heavy faults (a region killed or frozen, mfds killed, a node
powered off or cut from the LAN, the shared data disk filled, or failing with I/O errors or
slow, through esrt-faultfs) come one after the other: each is healed (the node switched on
again, the disk emptied or working again, ...) and the service must serve again before the
next. Light faults (a SEP killed) come at random moments of their own, so they also
land in the middle of a takeover, a recovery or a heal: overlaps the cluster is meant to
survive. Two nodes down at once, which it is not, never happens.

Every fault is returned as an esrt.testing.history.Fault, for esrt.testing.checker.outages().
A service that does not serve again within `recovery_timeout` after a heal is a hang: it is
recorded in `hangs` (with the fault) and the run stops there, since what follows would say
nothing more.
"""

import random
import threading
import time

from esrt.testing import faults
from esrt.testing.history import Fault

HEAVY_KINDS = ("kill-region", "freeze-region", "kill-mfds", "power-off", "lan-failure",
               "full-disk", "io-errors", "slow-io")
LIGHT_KINDS = ("kill-sep",)
KINDS = HEAVY_KINDS + LIGHT_KINDS
# Faults of the region's data disk itself: they need a service made with faulty_disk=True.
DISK_IO_KINDS = ("io-errors", "slow-io")
# Seconds the cluster needs to notice a fault (its monitors run every 2 s).
NOTICE_SECONDS = 3.0
# Milliseconds each read, write and sync waits during a slow-io fault.
SLOW_IO_DELAYS = (20, 200)


class NemesisError(RuntimeError):
    """A fault could not be injected or healed (the lab itself is broken)."""


class Nemesis:
    """Injects random faults into the group behind `service` (esrt.testing.apps.Service).

    `kinds` limits the kinds drawn; `gap` is the (min, max) seconds of calm between heavy
    faults, `hold` how long a fault that waits for its heal (frozen region, full disk) lasts,
    and `light_every` the (min, max) seconds between SEP kills.
    """

    def __init__(self, lab, service, seed=None, kinds=KINDS, gap=(3.0, 8.0), hold=(2.0, 6.0),
                 light_every=(2.0, 10.0), recovery_timeout=120.0, log=print):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(KINDS)}")
        if set(kinds) & set(DISK_IO_KINDS) and not getattr(service, "faulty_disk", False):
            raise ValueError("io-errors and slow-io need the region's data on esrt-faultfs: "
                             "make the service with make_service(..., faulty_disk=True), or "
                             "leave those kinds out")
        self.lab = lab
        self.service = service
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 32)
        self.random = random.Random(self.seed)
        # The SEP kills draw from a stream of their own, so both stay reproducible.
        self.light_random = random.Random(self.seed ^ 0x5EED)
        self.heavy = [kind for kind in kinds if kind in HEAVY_KINDS]
        self.light = [kind for kind in kinds if kind in LIGHT_KINDS]
        self.gap = gap
        self.hold = hold
        self.light_every = light_every
        self.recovery_timeout = recovery_timeout
        self.log = log
        self.faults = []
        self.hangs = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _record(self, moment, kind, description):
        fault = Fault(moment, kind, description)
        with self._lock:
            self.faults.append(fault)
        self.log(f"nemesis: {time.strftime('%H:%M:%S', time.localtime(moment))} {kind}: "
                 f"{description}")
        return fault

    # -- the run ---------------------------------------------------------------------------

    def run(self, seconds):
        """Inject faults for `seconds`; return them in time order (also in self.faults)."""
        self.log(f"nemesis: seed {self.seed} (replay with seed={self.seed})")
        deadline = time.monotonic() + seconds
        light = None
        if self.light:
            light = threading.Thread(target=self._light_faults, args=(deadline,),
                                     name="nemesis light faults", daemon=True)
            light.start()
        try:
            while time.monotonic() < deadline and self.heavy and not self.hangs:
                time.sleep(self.random.uniform(*self.gap))
                if time.monotonic() >= deadline:
                    break
                self._heavy_fault(self.random.choice(self.heavy))
        finally:
            self._stopping.set()
            if light is not None:
                light.join()
        if not self.heavy:
            while time.monotonic() < deadline:
                time.sleep(0.2)
        return sorted(self.faults)

    def _light_faults(self, deadline):
        while not self._stopping.wait(self.light_random.uniform(*self.light_every)):
            if time.monotonic() >= deadline:
                return
            node = self.service.node()
            if node is None or not node.powered:
                continue  # nothing serves right now: nothing to kill
            number = self.light_random.randint(1, getattr(self.service, "seps", 1))
            try:
                moment = faults.kill_sep(node, self.service.region, number)
            except faults.FaultError as exc:
                # A takeover may have stopped the region between locate and kill.
                self.log(f"nemesis: kill-sep on {node.name} skipped: {exc}")
                continue
            self._record(moment, "kill-sep", f"SEP {number} of {self.service.region} on "
                         f"{node.name}")

    def _heavy_fault(self, kind):
        node = self._serving_node()
        if node is None:
            return
        heal = getattr(self, "_" + kind.replace("-", "_"))(node)
        if heal is not None:
            time.sleep(self.random.uniform(*self.hold))
            try:
                heal()
            except Exception as exc:  # noqa: BLE001 - NemesisError, LabError: reported, not raised
                self.hangs.append((f"{kind} (healing it)", str(exc)))
                self.log(f"nemesis: cannot heal {kind}: {exc}")
                self.log(self.diagnosis())
                return
        self._after(kind)

    def _serving_node(self):
        try:
            return self.lab.wait_group(self.service.group, timeout=self.recovery_timeout)
        except Exception as exc:  # noqa: BLE001 - LabError and friends: the group is gone
            self.hangs.append(("before a fault", str(exc)))
            return None

    def _after(self, kind):
        """Wait until the group serves again, an operator's cleanup of fail counts included."""
        # First give the cluster a monitor interval to notice the fault: right after it, the
        # group still looks started where it was.
        time.sleep(NOTICE_SECONDS)
        try:
            node = self.lab.wait_group(self.service.group, timeout=self.recovery_timeout)
        except Exception as exc:  # noqa: BLE001 - the group never came back: a hang
            self.hangs.append((kind, str(exc)))
            self.log(f"nemesis: HANG after {kind}: {exc}")
            self.log(self.diagnosis())
            return
        # As an operator would once the incident is over: forget the failures, so that the
        # next fault finds both nodes eligible again.
        self.lab.crm("crm_resource", "--cleanup", "--resource", self.service.group)
        self.log(f"nemesis: {self.service.group} serves on {node.name} again")

    def diagnosis(self):
        """What a hang looks like from inside the nodes: the state and kernel wait channel of
        every esrt process, and the end of the region's console log where its disk is."""
        lines = ["nemesis: diagnosis"]
        for node in self.lab.nodes:
            if not node.powered:
                lines.append(f"  {node.name}: powered off")
                continue
            try:
                processes = node.run(["ps", "-eo", "pid,stat,wchan:30,etime,args"],
                                     check=False, timeout=20).stdout
                console = node.run(["tail", "-n", "30",
                                    str(self.service.mountpoint / "logs" / "console.log")],
                                   check=False, timeout=20).stdout
            except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the hang
                lines.append(f"  {node.name}: cannot look inside: {exc}")
                continue
            lines += [f"  {node.name}: {line}" for line in processes.splitlines()
                      if self.service.region in line or "esrt" in line]
            lines += [f"  {node.name} console: {line}" for line in console.splitlines()]
        return "\n".join(lines)

    # -- the heavy faults: each injects, records, and returns its heal (or None) -------------

    def _kill_region(self, node):
        self._record(faults.kill_region(node, self.service.region), "kill-region",
                     f"{self.service.region} on {node.name}")

    def _freeze_region(self, node):
        self._record(faults.hang_region(node, self.service.region), "freeze-region",
                     f"{self.service.region} on {node.name} (SIGSTOP)")

        def heal():
            try:
                faults.resume_region(node, self.service.region)
            except faults.FaultError:
                pass  # the cluster already stopped or killed the frozen region
        return heal

    def _kill_mfds(self, node):
        self._record(faults.kill_mfds(node), "kill-mfds", f"mfds on {node.name}")
        return lambda: node.esrt("mfds", "--daemon")

    def _power_off(self, node):
        fenced = self._fences(node)
        self._record(faults.power_off(self.lab, node), "power-off", node.name)
        return lambda: self._switch_on(node, fenced)

    def _lan_failure(self, node):
        fenced = self._fences(node)
        self._record(faults.lan_failure(self.lab, node), "lan-failure", node.name)
        return lambda: self._switch_on(node, fenced)

    def _fences(self, node):
        return self.lab.fence_events().count(f"off {node.name}")

    def _switch_on(self, node, fenced_before):
        # Wait for the cluster to have dealt with the node (fenced it, moved the group) first:
        # the node coming back in the middle of that, to be switched off again by a fence that
        # was already on its way, is no fault the cluster promises to survive.
        deadline = time.monotonic() + self.recovery_timeout
        while self._fences(node) <= fenced_before and time.monotonic() < deadline:
            time.sleep(0.5)
        self._after("takeover")
        if node.powered:
            # The LAN came back before anyone fenced the node.
            self.lab.lan_up(node)
            return
        self.lab.power_on(node)
        self.log(f"nemesis: {node.name} switched on again")

    def _full_disk(self, node):
        mountpoint = str(self.service.mountpoint)
        self._record(faults.fill_disk(node, mountpoint), "full-disk",
                     f"shared disk of {self.service.group} on {node.name}")

        def heal():
            # The disk may have moved with the group, or be between nodes: empty it on the
            # node that has it mounted, once one has (free_disk refuses a node without it).
            deadline = time.monotonic() + self.recovery_timeout
            while True:
                holder = self.service.node()
                try:
                    if holder is not None:
                        faults.free_disk(holder, mountpoint)
                        return
                except faults.FaultError as exc:
                    if time.monotonic() > deadline:
                        raise NemesisError(f"cannot empty the full disk: {exc}") from None
                if time.monotonic() > deadline:
                    raise NemesisError("cannot empty the full disk: the group runs nowhere")
                time.sleep(1.0)
        return heal

    def _io_errors(self, node):
        self._record(faults.io_errors(node, self.service.data_dir), "io-errors",
                     f"data disk of {self.service.region} on {node.name} (EIO)")
        return self._heal_io

    def _slow_io(self, node):
        delay = self.random.randint(*SLOW_IO_DELAYS)
        self._record(faults.slow_io(node, self.service.data_dir, delay), "slow-io",
                     f"data disk of {self.service.region} on {node.name} ({delay} ms per "
                     "operation)")
        return self._heal_io

    def _heal_io(self):
        # The cluster may have moved the group (and with it the disk, mounted anew and
        # healthy) while the disk failed: heal it wherever it is mounted now.
        for node in self.lab.nodes:
            if not node.powered:
                continue
            try:
                faults.heal_io(node, self.service.data_dir)
            except faults.FaultError:
                pass  # not mounted on that node
