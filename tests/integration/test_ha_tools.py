"""HA tools against real processes: mdump, server export/import, casstart --config."""

import json
import os
import subprocess
import sys

from conftest import ROOT, start_cblapp01_region
from ha_helpers import make_portable_region


def mdump_script(node, *args):
    """The `mdump` script as an HA monitor runs it."""
    environ = dict(os.environ, ESRT_HOME=str(node.home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "esrt.ha.mdump", *args], env=environ,
                          capture_output=True, text=True, timeout=60)


def status_after(text, cn):
    lines = text.splitlines()
    for line in lines[lines.index(f"CN: {cn}") + 1:]:
        if line.startswith("mfListenerStatus:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no mfListenerStatus after CN: {cn} in\n{text}")


def test_mdump_follows_a_real_region_and_mfds(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car, seps=1)
    healthy = node.esrt("mdump").stdout
    assert "CN: ESSRV01" in healthy and "mfServerStatus: Started" in healthy
    assert status_after(healthy, "Web Services") == "Started"
    assert "mfRequestedEndpoint: tcp:127.0.0.1:" in healthy
    only = mdump_script(node, "localhost", "ESSRV01")
    assert only.returncode == 0 and status_after(only.stdout, "Web Services") == "Started"
    by_address = node.esrt("mdump", node.mfds_url[len("http://"):], "ESSRV01").stdout
    assert status_after(by_address, "Web Services") == "Started"
    unknown = node.esrt("mdump", "localhost", "NOSUCH", check=False)
    assert unknown.returncode != 0 and "no server 'NOSUCH'" in unknown.stderr

    node.esrt("casstop", "-r", region.name, "--force")
    killed = node.esrt("mdump").stdout
    assert status_after(killed, "Web Services") != "Started"

    node.esrt("mfds", "--stop")
    down = node.esrt("mdump", check=False)
    assert down.returncode != 0
    assert "m_ldap_bind: 0x51 SERVER_DOWN" in down.stdout


def test_export_import_round_trip(node):
    node.esrt("server", "create", "ESEXP1", "--seps", "3", "--listener",
              "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01",
              "--description", "exported")
    exported = node.esrt("server", "export", "ESEXP1").stdout
    region_file = node.home / "ESEXP1.json"
    region_file.write_text(exported)
    original = json.loads(exported)
    assert original["seps"] == 3 and original["env"] == {"DD_APPFILE01": "APPFILE01"}

    node.esrt("server", "delete", "ESEXP1")
    created = node.esrt("server", "import", str(region_file)).stdout
    assert "created" in created
    assert node.esrt("server", "export", "ESEXP1").stdout == exported

    changed = dict(original, seps=5, description="imported again")
    region_file.write_text(json.dumps(changed))
    assert "updated" in node.esrt("server", "import", str(region_file)).stdout
    assert json.loads(node.esrt("server", "export", "ESEXP1").stdout) == changed

    region_file.write_text(json.dumps(dict(original, seps=0)))
    bad = node.esrt("server", "import", str(region_file), check=False)
    assert bad.returncode != 0
    assert str(region_file) in bad.stderr and "seps" in bad.stderr


def test_casstart_from_region_file_with_nothing_in_the_repository(node, srv01_car, tmp_path):
    region_file, definition = make_portable_region(tmp_path / "shared", srv01_car)
    name = definition["name"]
    assert node.esrt("server", "status", name, check=False).returncode == 7

    started = node.esrt("casstart", "-r", name, "--config", str(region_file), "--wait")
    assert "Started" in started.stdout
    assert name not in node.esrt("server", "list").stdout  # the repository stays empty
    assert node.esrt("server", "status", name).returncode == 0
    dumped = node.esrt("mdump", "localhost", name).stdout  # known from its own run records
    assert "mfServerStatus: Started" in dumped and status_after(dumped, "Web Services") == "Started"
    url = f"http://{definition['listeners'][0]['address']}"
    first = node.esrt("call", "srv01.CBLAPP01", "--url", url, "--repeat", "2", "--json").stdout
    assert [json.loads(line)["LK-COUNTER"] for line in first.splitlines()] == [0, 1]
    assert (tmp_path / "shared" / "logs" / "console.log").is_file()  # CASROOT on the "shared disk"

    again = node.esrt("casstart", "-r", name, "--config", str(region_file), "--wait", check=False)
    assert again.returncode != 0 and "already running" in again.stderr

    node.esrt("mfds", "--stop")  # the region neither needs mfds to run nor to be stopped
    assert node.esrt("server", "status", name).returncode == 0
    node.esrt("casstop", "-r", name)
    assert node.esrt("server", "status", name, check=False).returncode == 7


def test_casstart_config_errors_name_the_file(node, tmp_path):
    missing = node.esrt("casstart", "-r", "X", "--config", str(tmp_path / "nope.json"),
                        check=False)
    assert missing.returncode != 0 and "nope.json" in missing.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "OTHER", "listeners": []}))
    wrong = node.esrt("casstart", "-r", "X", "--config", str(other), check=False)
    assert wrong.returncode != 0 and "defines server 'OTHER'" in wrong.stderr


def test_powerha_example_scripts(node, srv01_car, tmp_path):
    from pathlib import Path
    esrt_command = Path(sys.executable).parent / "esrt"
    region_file, definition = make_portable_region(tmp_path / "shared", srv01_car)
    environ = dict(os.environ, REGION=definition["name"], REGION_FILE=str(region_file),
                   ESRT_HOME=str(node.home), ESRT=str(esrt_command), LISTENER="Web Services",
                   PYTHONPATH=str(ROOT))

    def script(name):
        return subprocess.run(["sh", str(ROOT / "examples" / "ha" / name)], env=environ,
                              capture_output=True, text=True, timeout=180)

    try:
        started = script("start.sh")
        assert started.returncode == 0, started.stdout + started.stderr
        assert script("monitor.sh").returncode == 0
        environ["LISTENER"] = "No Such Listener"
        assert script("monitor.sh").returncode != 0
        environ["LISTENER"] = "Web Services"
        node.esrt("mfds", "--stop")  # mfds down is no reason to fail over
        assert script("monitor.sh").returncode == 0
        assert script("start.sh").returncode == 0  # restart: leftovers killed first
        stopped = script("stop.sh")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert script("monitor.sh").returncode != 0
    finally:
        script("stop.sh")
