"""The nemesis's schedule (esrt.testing.nemesis): reproducible from its seed, only the kinds
asked for, each fault healed, and a group that never comes back reported as a hang. Driven
with a stand-in lab; the real faults run in tests/failover/test_soak.py."""

import pytest

from esrt.testing import nemesis as nemesis_module
from esrt.testing.nemesis import Nemesis


class FakeNode:
    def __init__(self, name):
        self.name = name
        self.powered = True
        self.commands = []

    def esrt(self, *args):
        self.commands.append(args)


class FakeLab:
    def __init__(self, serving=True):
        self.nodes = [FakeNode("node1"), FakeNode("node2")]
        self.serving = serving
        self.actions = []
        self.fences = []

    def fence_events(self):
        return list(self.fences)

    def wait_group(self, group, timeout=60):
        if not self.serving:
            raise RuntimeError(f"group {group} did not start within {timeout} s")
        return self.nodes[0]

    def crm(self, *argv):
        self.actions.append(argv[0])

    def power_on(self, node):
        node.powered = True
        self.actions.append(f"power on {node.name}")

    def lan_up(self, node):
        self.actions.append(f"lan up {node.name}")


class FakeService:
    group, region, mountpoint, data_dir = "soak", "ESSOAK", "/mnt/soak", "/mnt/soak/data"

    def __init__(self, lab, faulty_disk=True):
        self.lab = lab
        self.faulty_disk = faulty_disk

    def node(self):
        return self.lab.nodes[0]


@pytest.fixture
def injected(monkeypatch):
    """Every fault the nemesis asks esrt.testing.faults for, as (action, node name)."""
    done = []

    def action(name):
        def act(*args):
            node = next(arg for arg in args if isinstance(arg, FakeNode))
            if name == "power_off":
                node.powered = False
            done.append((name, node.name))
            return 1000.0 + len(done)
        return act

    for name in ("kill_region", "hang_region", "resume_region", "kill_mfds", "kill_sep",
                 "fill_disk", "free_disk", "io_errors", "slow_io", "heal_io"):
        monkeypatch.setattr(nemesis_module.faults, name, action(name))
    def fenced(name):
        # The cluster fences a node it lost: the nemesis waits for that before switching on.
        def fault(lab, node):
            lab.fences.append(f"off {node.name}")
            return action(name)(node)
        return fault

    monkeypatch.setattr(nemesis_module.faults, "power_off", fenced("power_off"))
    monkeypatch.setattr(nemesis_module.faults, "lan_failure", fenced("lan_failure"))
    monkeypatch.setattr(nemesis_module, "NOTICE_SECONDS", 0.0)
    return done


def run(seed, kinds=nemesis_module.HEAVY_KINDS, lab=None, seconds=0.3):
    lab = lab or FakeLab()
    nemesis = Nemesis(lab, FakeService(lab), seed=seed, kinds=kinds, gap=(0.0, 0.01),
                      hold=(0.0, 0.0), log=lambda line: None)
    return nemesis, nemesis.run(seconds), lab


def test_the_same_seed_gives_the_same_schedule(injected):
    _, first, _ = run(42)
    schedule = list(injected)
    injected.clear()
    _, second, _ = run(42, seconds=0.6)
    assert [fault.kind for fault in first] == [fault.kind for fault in second][:len(first)]
    assert injected[:len(schedule)] == schedule


def test_only_the_kinds_asked_for_and_each_healed(injected):
    _, faults, lab = run(7, kinds=("freeze-region", "full-disk", "power-off"))
    assert {fault.kind for fault in faults} <= {"freeze-region", "full-disk", "power-off"}
    actions = [name for name, _ in injected]
    assert actions.count("hang_region") == actions.count("resume_region")
    assert actions.count("fill_disk") == actions.count("free_disk")
    assert actions.count("power_off") == lab.actions.count("power on node1")


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown fault kind.*known: kill-region"):
        Nemesis(FakeLab(), None, kinds=("meteor",))


def test_disk_io_faults_need_a_faulty_disk_and_each_is_healed(injected):
    lab = FakeLab()
    with pytest.raises(ValueError, match="faulty_disk=True"):
        Nemesis(lab, FakeService(lab, faulty_disk=False), kinds=("io-errors",))
    _, faults, _ = run(11, kinds=("io-errors", "slow-io"), seconds=0.6)
    assert {fault.kind for fault in faults} == {"io-errors", "slow-io"}
    actions = [name for name, _ in injected]
    # Healed on every powered node: the disk may have moved with the group.
    assert actions.count("heal_io") == 2 * (actions.count("io_errors")
                                            + actions.count("slow_io"))


def test_a_group_that_does_not_come_back_is_a_hang(injected):
    lab = FakeLab(serving=False)
    nemesis, _, _ = run(3, lab=lab)
    assert nemesis.hangs and "did not start" in nemesis.hangs[0][1]
