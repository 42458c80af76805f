"""A listener whose address is not on the node waits for it and binds once it appears.

This is the report's pattern 6: a standby region started before the cluster moves the
relocatable address to its node. The region runs in a network namespace of the test's own,
where the test adds the address itself.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to make a network namespace")

ADDRESS = "10.99.77.1"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespace():
    name = f"esrtwait{os.getpid()}"
    ip("netns", "add", name)
    try:
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def read_status(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def test_listener_waits_for_its_address_then_binds(namespace, tmp_path):
    port = random.randint(20000, 60000)
    home = tmp_path / "home"
    definition = {"name": "STANDBY", "seps": 1,
                  "listeners": [{"name": "Web Services", "address": f"{ADDRESS}:{port}",
                                 "auth": "none"}]}
    definition_file = tmp_path / "standby.json"
    definition_file.write_text(json.dumps(definition))
    status_file = home / "servers" / "STANDBY" / "run" / "status.json"
    region = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-m", "esrt.region", "STANDBY",
         "--home", str(home), "--definition", str(definition_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        status = wait_for(lambda: (lambda s: s if s.get("mfServerStatus") == "Started" else None)(
            read_status(status_file)), "the standby region to start")
        listener = status["listeners"][0]
        assert listener["mfListenerStatus"] == "Waiting for address"
        assert "address not on this host (waiting)" in listener["message"]

        ip("netns", "exec", namespace, "ip", "addr", "add", f"{ADDRESS}/32", "dev", "lo")
        appeared = time.monotonic()
        wait_for(lambda: read_status(status_file)["listeners"][0]["mfListenerStatus"]
                 == "Started", "the listener to bind")
        print(f"bound {time.monotonic() - appeared:.2f} s after the address appeared")
        health = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c",
             f"import urllib.request; print(urllib.request.urlopen("
             f"'http://{ADDRESS}:{port}/health', timeout=10).read().decode())"],
            capture_output=True, text=True, check=True)
        assert json.loads(health.stdout)["status"] == "ok"
    finally:
        os.killpg(region.pid, signal.SIGTERM)
        try:
            region.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(region.pid, signal.SIGKILL)
            region.wait()
