"""The ocf:esrt:pgfollow agent on a real PostgreSQL primary and streaming standby: it passes
Debian's ocf-tester, and its start makes the standby connect to its primary again at once."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import wait_for
from esrt.ha.agent import install_agent
from esrt.testing.postgres import PostgresCluster

OCF_TESTER = shutil.which("ocf-tester")
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(OCF_TESTER is None, reason="ocf-tester is not installed (Debian package "
                                                  "resource-agents: `apt-get install "
                                                  "resource-agents`)")]


@pytest.fixture
def agent():
    """The agent, installed in a world-traversable OCF root of its own (ocf-tester runs
    meta-data as nobody), and a state directory of its own."""
    root = Path(tempfile.mkdtemp(prefix="esrt-ocf-"))
    os.chmod(root, 0o755)
    try:
        yield install_agent(root / "resource.d", "pgfollow"), root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def standby(postgres):
    with PostgresCluster(standby_of=postgres) as cluster:
        yield cluster


def run_agent(agent, action, **params):
    path, root = agent
    environ = dict(os.environ, OCF_ROOT=str(root), OCF_RESOURCE_INSTANCE="follow1",
                   HA_RSCTMP=str(root / "run"))
    environ.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
    return subprocess.run([str(path), action], env=environ, capture_output=True, text=True,
                          timeout=60)


def streaming_receiver(cluster):
    """(pid, status) of the standby's walreceiver once it streams, else None."""
    row = cluster.psql("SELECT pid, status FROM pg_stat_wal_receiver").strip()
    if not row:
        return None
    pid, status = row.split("|")
    return (int(pid), status) if status == "streaming" else None


def test_start_makes_the_standby_connect_again_and_leaves_the_primary_alone(
        agent, postgres, standby):
    before = wait_for(lambda: streaming_receiver(standby), "the standby streams")
    primary_backends = postgres.psql("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE backend_type = 'walsender'").strip()

    result = run_agent(agent, "start", pgdata=str(standby.data_dir))
    assert result.returncode == 0, result.stderr
    assert "walreceiver" in result.stderr
    after = wait_for(lambda: (lambda now: now if now and now[0] != before[0] else None)(
        streaming_receiver(standby)), "a new walreceiver streams")
    assert after[1] == "streaming"
    assert run_agent(agent, "monitor", pgdata=str(standby.data_dir)).returncode == 0

    # On the primary there is no walreceiver: nothing of it is stopped.
    result = run_agent(agent, "start", pgdata=str(postgres.data_dir))
    assert result.returncode == 0 and "walreceiver" not in result.stderr
    assert postgres.psql("SELECT count(*) FROM pg_stat_activity "
                         "WHERE backend_type = 'walsender'").strip() == primary_backends
    wait_for(lambda: streaming_receiver(standby), "the standby still streams")

    assert run_agent(agent, "stop", pgdata=str(standby.data_dir)).returncode == 0
    assert run_agent(agent, "monitor", pgdata=str(standby.data_dir)).returncode == 7


def test_ocf_tester_passes(agent, standby):
    path, root = agent
    environ = dict(os.environ, OCF_ROOT=str(root), HA_RSCTMP=str(root / "run"))
    result = subprocess.run([OCF_TESTER, "-n", "follow1", "-o", f"pgdata={standby.data_dir}",
                             str(path)], env=environ, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "passed all tests" in result.stdout
    wait_for(lambda: streaming_receiver(standby), "the standby streams after the tests")


def test_bad_parameters_get_the_ocf_codes_and_say_why(agent, tmp_path):
    missing = run_agent(agent, "validate-all")
    assert missing.returncode == 6 and "pgdata" in missing.stderr
    assert run_agent(agent, "start").returncode == 6
    absent = run_agent(agent, "validate-all", pgdata=str(tmp_path / "nowhere"))
    assert absent.returncode == 5 and "not a directory" in absent.stderr
    # No instance on this node: start has nothing to do, and does not fail.
    assert run_agent(agent, "start", pgdata=str(tmp_path)).returncode == 0
    assert run_agent(agent, "unknown-action", pgdata=str(tmp_path)).returncode == 3
