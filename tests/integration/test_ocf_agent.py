"""The ocf:esrt:region agent passes Debian's ocf-tester with a real CBLAPP01 region."""

import os
import stat
import subprocess
import sys

from esrt.ha.agent import install_agent
from ha_helpers import OCF_TESTER, make_portable_region, needs_ocf_tester, run_agent

pytestmark = needs_ocf_tester


def test_install_agent_is_executable_and_world_readable(ocf_root):
    agent = install_agent(ocf_root / "resource.d")
    assert agent == ocf_root / "resource.d" / "esrt" / "region"
    assert stat.S_IMODE(agent.stat().st_mode) == 0o755
    text = agent.read_text()
    assert "@ESRT_" not in text  # every placeholder filled in
    meta = run_agent(agent, "meta-data", ocf_root)
    assert meta.returncode == 0
    assert '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">' in meta.stdout


def test_install_agent_command_installs_both_agents(ocf_root):
    result = subprocess.run([sys.executable, "-m", "esrt", "ha", "install-agent", "--root",
                             str(ocf_root / "resource.d")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("region", "pgfollow"):
        agent = ocf_root / "resource.d" / "esrt" / name
        assert str(agent) in result.stdout
        meta = run_agent(agent, "meta-data", ocf_root)
        assert meta.returncode == 0 and f'<resource-agent name="{name}"' in meta.stdout


def test_ocf_tester_passes(node, srv01_car, tmp_path, ocf_root):
    region_file, definition = make_portable_region(tmp_path / "shared", srv01_car)
    agent = install_agent(ocf_root / "resource.d")
    environ = dict(os.environ, OCF_ROOT=str(ocf_root))
    try:
        result = subprocess.run(
            [OCF_TESTER, "-n", "esrt1", "-o", f"config={region_file}", "-o",
             f"home={node.home}", str(agent)],
            env=environ, capture_output=True, text=True, timeout=600)
    finally:
        run_agent(agent, "stop", ocf_root, config=str(region_file), home=str(node.home))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "passed all tests" in result.stdout
    # The agent's stop left the region cleanly stopped.
    assert node.esrt("server", "status", definition["name"], check=False).returncode == 7


def test_agent_codes_for_missing_and_bad_configuration(node, tmp_path, ocf_root):
    agent = install_agent(ocf_root / "resource.d")
    home = str(node.home)
    assert run_agent(agent, "validate-all", ocf_root, home=home).returncode == 6
    missing = str(tmp_path / "unmounted" / "ESHA01.json")
    # A region file on a shared disk mounted on the other node: not running here, stop is fine.
    assert run_agent(agent, "validate-all", ocf_root, config=missing, home=home).returncode == 5
    assert run_agent(agent, "monitor", ocf_root, config=missing, home=home).returncode == 7
    assert run_agent(agent, "stop", ocf_root, config=missing, home=home).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "ESHA01", "seps": 0}')
    result = run_agent(agent, "validate-all", ocf_root, config=str(bad), home=home)
    assert result.returncode == 6 and "seps" in result.stderr
    assert run_agent(agent, "frobnicate", ocf_root).returncode == 3


def test_monitor_reports_a_killed_region_as_failed_and_stop_cleans_up(node, srv01_car, tmp_path,
                                                                      ocf_root):
    from esrt.home import Home
    from esrt.procs import process_alive
    from esrt.node.runs import read_json, recorded_run_dir, region_pid
    region_file, definition = make_portable_region(tmp_path / "shared", srv01_car)
    agent = install_agent(ocf_root / "resource.d")
    params = {"config": str(region_file), "home": str(node.home)}
    try:
        assert run_agent(agent, "start", ocf_root, **params).returncode == 0
        run_dir = recorded_run_dir(Home(node.home), definition["name"])
        seps = [int(pid) for pid in read_json(run_dir / "processes.json")["seps"].values()]
        os.kill(region_pid(run_dir), 9)  # a crash: the region cannot record that it stopped
        monitor = run_agent(agent, "monitor", ocf_root, **params)
        assert monitor.returncode == 1, monitor.stderr
        assert run_agent(agent, "stop", ocf_root, **params).returncode == 0
        assert run_agent(agent, "monitor", ocf_root, **params).returncode == 7
        assert not any(process_alive(pid) for pid in seps)  # leftovers of this region killed
    finally:
        run_agent(agent, "stop", ocf_root, **params)
