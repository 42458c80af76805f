"""A standby region (setting "standby": true): pre-started, it serves only while activated.

The report's pattern 6 failed because a server could not be pre-started on the standby node.
An esrt region can be: its listeners wait for their address, and with "standby" it also leaves
the data environment (on a shared disk only the active node may hold) closed and starts no
SEP until `esrt server activate`; `esrt server deactivate` hands the data back.
"""

import fcntl
import json

import pytest

from esrt.client import Client, ServiceError

from conftest import EXAMPLES, Region, scrape_metrics, wait_for

NAME = "ESSTB01"


def sep_pids(status):
    return [sep["pid"] for sep in status["seps"] if sep["pid"]]


def environment_is_free(data_dir):
    """True when no process has the data environment open (esrt's users all hold a shared
    lock on esrt-env.lock while they have it open)."""
    with open(data_dir / "esrt-env.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


@pytest.fixture
def standby(node, tmp_path):
    """Region ESSTB01 defined with "standby": true and started (not activated)."""
    node.esrt("server", "create", NAME, "--seps", "2", "--listener", "Web Services=127.0.0.1:*",
              "--env", "DD_APPFILE01=APPFILE01")
    definition = json.loads(node.esrt("server", "export", NAME).stdout)
    definition["standby"] = True
    region_file = tmp_path / "standby.json"
    region_file.write_text(json.dumps(definition))
    node.esrt("server", "import", str(region_file))
    node.esrt("casstart", "-r", NAME, "--wait")
    return Region(node, NAME, node.region_status(NAME))


def test_a_standby_serves_only_while_active(node, srv01_car, standby):
    status = standby.status
    data_dir = node.home / "servers" / NAME / "data"
    # Started, but holding nothing: no SEP, no data directory touched (it may be on a disk
    # that is mounted elsewhere), and `esrt server status` says it runs.
    assert status["mfServerStatus"] == "Started" and status["active"] is False
    assert sep_pids(status) == [] and not data_dir.exists()
    assert node.esrt("server", "status", NAME).returncode == 0
    with Client(standby.url) as client:
        with pytest.raises(ServiceError) as refused:
            client.call("srv01.CBLAPP01")
        assert refused.value.status == 503 and "standby" in refused.value.message
        _, metrics = scrape_metrics(standby.url)
        assert metrics[("esrt_region_active", ())] == 0
        assert metrics[("esrt_activations_total", ())] == 0

        node.esrt("deploy", str(srv01_car), "--server", NAME)
        node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", NAME)
        assert "active" in node.esrt("server", "activate", NAME).stdout
        assert [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(3)] == [0, 1, 2]
        assert len(sep_pids(node.region_status(NAME))) == 2
        assert not environment_is_free(data_dir)

        # A takeover, as Prometheus sees it (the EsrtFailover alert of examples/monitoring).
        _, metrics = scrape_metrics(standby.url)
        assert metrics[("esrt_region_active", ())] == 1
        assert metrics[("esrt_activations_total", ())] == 1

        assert "standing by" in node.esrt("server", "deactivate", NAME).stdout
        status = node.region_status(NAME)
        assert status["active"] is False and sep_pids(status) == []
        # The other node may now take the disk: nothing here has the environment open.
        assert environment_is_free(data_dir)
        with pytest.raises(ServiceError) as refused:
            client.call("srv01.CBLAPP01")
        assert refused.value.status == 503

        # Taking over again continues from the committed data.
        assert scrape_metrics(standby.url)[1][("esrt_region_active", ())] == 0
        node.esrt("server", "activate", NAME)
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 3
        assert scrape_metrics(standby.url)[1][("esrt_activations_total", ())] == 2
    console = (node.home / "servers" / NAME / "logs" / "console.log").read_text()
    for message in ("ESCD0110I", "ESCD0111I", "ESCD0112I"):
        assert message in console


def test_switching_needs_a_running_standby(node, srv01_car):
    missing = node.esrt("server", "activate", "NOSUCH", check=False)
    assert missing.returncode == 7 and "not running" in missing.stdout + missing.stderr
    region = node.esrt("server", "create", "ESPLAIN", "--listener", "Web Services=127.0.0.1:*")
    assert region.returncode == 0
    node.esrt("casstart", "-r", "ESPLAIN", "--wait")
    plain = node.esrt("server", "deactivate", "ESPLAIN", check=False)
    assert plain.returncode == 1 and "not a standby" in plain.stdout + plain.stderr
    # Activating a region that is always active is no error (agents call it blindly).
    assert node.esrt("server", "activate", "ESPLAIN").returncode == 0


def test_stopping_an_inactive_standby_is_clean(node, standby):
    node.esrt("casstop", "-r", NAME)
    wait_for(lambda: node.esrt("server", "status", NAME, check=False).returncode == 7,
             "the standby to stop")
