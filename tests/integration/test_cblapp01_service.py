"""CBLAPP01 as a network service, end to end, with real mfds, region, SEPs and GnuCOBOL."""

import json
import os
import re
import signal
import socket
from pathlib import Path


from esrt.client import Client
from esrt.node.runs import read_json
from esrt.procs import process_alive

from conftest import ROOT, run_esrt, start_cblapp01_region, wait_for

LINE = re.compile(r"^(\d\d/\d\d/\d\d) (\d\d:\d\d:\d\d\.\d\d) (CBLAPP01) (\S+) (\d+)$")


def region_pids(region):
    run_dir = Path(read_json(region.node.home / "run" / f"{region.name}.json")["run"])
    record = read_json(run_dir / "processes.json")
    return [int(record["region"])] + [int(p) for p in record["seps"].values()]


def port_is_free(address):
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def test_call_prints_ten_lines_with_rising_counters(esrt_region):
    result = esrt_region.node.esrt("call", "srv01.CBLAPP01", "--url", esrt_region.url,
                                   "--repeat", "10")
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [int(m.group(5)) for m in matches] == list(range(10))
    assert {m.group(4) for m in matches} == {socket.gethostname()[:20]}


def test_200_sequential_calls_give_200_consecutive_counters(esrt_region):
    with Client(esrt_region.url) as client:
        counters = [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(200)]
    assert counters == list(range(200))


def test_stop_leaves_no_process_or_port_and_restart_keeps_the_old_log(esrt_region):
    node, name = esrt_region.node, esrt_region.name
    pids = region_pids(esrt_region)
    assert len(pids) == 3  # region + 2 SEPs
    titles = sorted(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    for pid in pids[1:])
    assert titles == [f"{name} SEP 0001", f"{name} SEP 0002"]
    address = esrt_region.status["listeners"][0]["address"]

    stopped = node.esrt("casstop", "-r", name)
    assert "stopped" in stopped.stdout
    assert not any(process_alive(pid) for pid in pids)
    assert port_is_free(address)
    assert node.region_status(name)["mfServerStatus"] == "Stopped"
    assert node.esrt("server", "status", name, check=False).returncode == 7

    log_dir = node.home / "servers" / name / "logs"
    first_log = (log_dir / "console.log").read_text()
    assert re.search(r"^\d{6} \d{8} \[\d+ ESSRV01\] ES\w+\d{4}[IWES] ", first_log, re.M)
    node.esrt("casstart", "-r", name, "--wait")
    assert (log_dir / "console.bak").read_text() == first_log
    with Client(esrt_region.url.rsplit(":", 1)[0] + ":" +
                node.region_status(name)["listeners"][0]["address"].rsplit(":", 1)[1]) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0


def test_killing_mfds_does_not_stop_the_region(esrt_region):
    info = json.loads((esrt_region.node.home / "mfds.json").read_text())
    os.kill(info["pid"], signal.SIGKILL)
    wait_for(lambda: not process_alive(info["pid"]), "mfds to die")
    with Client(esrt_region.url) as client:
        assert [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(3)] == [0, 1, 2]
    assert all(process_alive(pid) for pid in region_pids(esrt_region))


def test_force_stop_kills_only_that_region(node, srv01_car):
    first = start_cblapp01_region(node, srv01_car, name="ESSRV01")
    second = start_cblapp01_region(node, srv01_car, name="ESSRV02", seps=1)
    first_pids, second_pids = region_pids(first), region_pids(second)
    result = node.esrt("casstop", "-r", "ESSRV01", "--force")
    assert "force-stopped" in result.stdout
    assert not any(process_alive(pid) for pid in first_pids)
    assert all(process_alive(pid) for pid in second_pids)
    with Client(second.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0


def test_mf_style_aliases(node, srv01_car, tmp_path):
    node.esrt("server", "create", "ESSRV01", "--listener", "Web Services=127.0.0.1:*",
              "--env", "DD_APPFILE01=APPFILE01")
    run_esrt(["/rESSRV01", "/w"], node.home, command="casstart")
    deploy_dir = tmp_path / "deploy"
    deploy_dir.mkdir()
    (deploy_dir / ".mfdeploy").write_text("MFDS=localhost\nMFUS_SERVER=ESSRV01\n"
                                          "MFUS_LISTENER=Web Services\n")
    (deploy_dir / "srv01.car").write_bytes(srv01_car.read_bytes())
    run_esrt(["srv01.car"], node.home, cwd=deploy_dir, command="mfdepinst")
    assert "Deployment successful" in (deploy_dir / "deploy.txt").read_text()
    node.esrt("batch", "run", str(ROOT / "examples/cblapp01/initfile1.cbl"), "--server", "ESSRV01")
    url = "http://" + node.region_status("ESSRV01")["listeners"][0]["address"]
    with Client(url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
    run_esrt(["/rESSRV01", "/f"], node.home, command="casstop")
    assert node.esrt("server", "status", "ESSRV01", check=False).returncode == 7


def test_casstart_wait_fails_with_the_reason_when_the_port_is_taken(node):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        node.esrt("server", "create", "ESSRV01", "--listener", f"Web Services=127.0.0.1:{port}")
        result = node.esrt("casstart", "-r", "ESSRV01", "--wait", check=False)
    assert result.returncode != 0
    assert "Web Services" in result.stderr and str(port) in result.stderr
    assert "in use" in result.stderr


def test_cli_errors_say_what_to_do(node, tmp_path):
    bad = node.esrt("server", "create", "ESSRV01", "--listener", "nonsense", check=False)
    assert bad.returncode == 1 and "Web Services=127.0.0.1:9003" in bad.stderr
    missing = node.esrt("casstart", "-r", "NOSUCH", check=False)
    assert missing.returncode == 1 and "NOSUCH" in missing.stderr
    nohome = run_esrt(["server", "list"], tmp_path / "empty", check=False)
    assert nohome.returncode == 1 and "esrt mfds --daemon" in nohome.stderr
    refused = node.esrt("call", "srv01.CBLAPP01", "--url", "http://127.0.0.1:1", check=False)
    assert refused.returncode == 1 and "127.0.0.1:1" in refused.stderr
