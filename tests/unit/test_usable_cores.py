"""esrt.procs.usable_cores: the CPUs a region's SEPs can use at once, within a cgroup quota."""

import os

from esrt.procs import usable_cores


def test_a_cgroup_quota_lowers_the_cores_and_no_quota_leaves_the_affinity(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    membership = tmp_path / "cgroup"
    membership.write_text("0::/system.slice/esrt-server@ES1.service\n")
    unit = tmp_path / "system.slice" / "esrt-server@ES1.service"
    unit.mkdir(parents=True)
    (unit / "cpu.max").write_text("max 100000\n")
    assert usable_cores(str(tmp_path), str(membership)) == affinity
    (unit / "cpu.max").write_text("50000 100000\n")  # CPUQuota=50%: one core at most
    assert usable_cores(str(tmp_path), str(membership)) == 1
    # cgroup v1: the cpu controller's cfs quota.
    membership.write_text("4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n")
    v1 = tmp_path / "cpu" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cores(str(tmp_path), str(membership)) == affinity
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    assert usable_cores(str(tmp_path), str(membership)) == 1
    assert usable_cores(str(tmp_path / "nothing"), str(tmp_path / "none")) == affinity
