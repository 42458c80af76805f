"""The ocf:esrt:pgfollow agent on a real PostgreSQL primary and streaming standby: it passes
Debian's ocf-tester, and its start makes the standby connect to its primary again at once."""

import subprocess

import pytest

from conftest import wait_for
from esrt.ha.agent import install_agent
from esrt.testing.postgres import PostgresCluster
from ha_helpers import OCF_TESTER, agent_environment, needs_ocf_tester, run_agent

pytestmark = [pytest.mark.postgresql, needs_ocf_tester]


@pytest.fixture
def agent(ocf_root):
    return install_agent(ocf_root / "resource.d", "pgfollow")


@pytest.fixture
def standby(postgres):
    with PostgresCluster(standby_of=postgres) as cluster:
        yield cluster


def streaming_receiver(cluster):
    """The pid of the standby's walreceiver once it streams, else None."""
    row = cluster.psql("SELECT pid, status FROM pg_stat_wal_receiver").strip()
    if not row:
        return None
    pid, status = row.split("|")
    return int(pid) if status == "streaming" else None


def walsenders(cluster):
    return cluster.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' "
                        "ORDER BY pid").split()


def test_start_makes_the_standby_connect_again_and_leaves_the_primary_alone(
        agent, ocf_root, postgres, standby):
    before = wait_for(lambda: streaming_receiver(standby), "the standby streams")

    # On the primary there is no walreceiver: none of its processes is stopped.
    senders = walsenders(postgres)
    result = run_agent(agent, "start", ocf_root, pgdata=str(postgres.data_dir))
    assert result.returncode == 0 and "walreceiver" not in result.stderr
    assert walsenders(postgres) == senders
    assert streaming_receiver(standby) == before

    result = run_agent(agent, "start", ocf_root, pgdata=str(standby.data_dir))
    assert result.returncode == 0, result.stderr
    assert "walreceiver" in result.stderr
    wait_for(lambda: streaming_receiver(standby) not in (None, before),
             "a new walreceiver streams")
    assert run_agent(agent, "monitor", ocf_root, pgdata=str(standby.data_dir)).returncode == 0

    assert run_agent(agent, "stop", ocf_root, pgdata=str(standby.data_dir)).returncode == 0
    assert run_agent(agent, "monitor", ocf_root, pgdata=str(standby.data_dir)).returncode == 7


def test_ocf_tester_passes(agent, ocf_root, standby):
    result = subprocess.run([OCF_TESTER, "-n", "follow1", "-o", f"pgdata={standby.data_dir}",
                             str(agent)], env=agent_environment(ocf_root), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "passed all tests" in result.stdout
    wait_for(lambda: streaming_receiver(standby), "the standby streams after the tests")


def test_bad_parameters_get_the_ocf_codes_and_say_why(agent, ocf_root, tmp_path):
    missing = run_agent(agent, "validate-all", ocf_root)
    assert missing.returncode == 6 and "pgdata" in missing.stderr
    assert run_agent(agent, "start", ocf_root).returncode == 6
    absent = run_agent(agent, "validate-all", ocf_root, pgdata=str(tmp_path / "nowhere"))
    assert absent.returncode == 5 and "not a directory" in absent.stderr
    # No instance on this node: start has nothing to do, and does not fail.
    assert run_agent(agent, "start", ocf_root, pgdata=str(tmp_path)).returncode == 0
    assert run_agent(agent, "unknown-action", ocf_root, pgdata=str(tmp_path)).returncode == 3
