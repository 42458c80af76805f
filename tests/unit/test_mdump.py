"""mdump's text: the facts HA monitor scripts grep (SERVER_DOWN, CN:, mfListenerStatus)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from esrt.ha import mdump

ROOT = Path(__file__).resolve().parents[2]


def server_object(state="Started", listener_state="Started", pid=None):
    """A server object as mfds's API returns it."""
    return {
        "name": "ESSRV01", "mfServerStatus": state,
        "definition": {"name": "ESSRV01", "seps": 2, "listeners": [
            {"name": "Web Services", "address": "127.0.0.1:9003", "conversation": "web-services"},
            {"name": "Wire", "address": "10.9.9.9:9004", "conversation": "esrt"}]},
        "status": {"mfServerStatus": state, "pid": pid or os.getpid(), "listeners": [
            {"CN": "Web Services", "mfListenerStatus": listener_state,
             "mfRequestedEndpoint": "tcp:127.0.0.1:9003", "address": "127.0.0.1:9003"},
            {"CN": "Wire", "mfListenerStatus": "Waiting for address",
             "mfRequestedEndpoint": "tcp:10.9.9.9:9004", "address": ""}]},
    }


def listener_status_after_cn(text, listener):
    """What a report-style monitor does: the first mfListenerStatus after `CN: listener`."""
    lines = text.splitlines()
    start = lines.index(f"CN: {listener}")
    for line in lines[start + 1:]:
        if line.startswith("mfListenerStatus:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no mfListenerStatus after CN: {listener}")


def test_healthy_server_shows_server_and_listener_facts():
    text = mdump.format_dump([server_object()], "http://127.0.0.1:8686")
    assert "CN: ESSRV01" in text
    assert "mfServerStatus: Started" in text
    assert listener_status_after_cn(text, "Web Services") == "Started"
    assert "mfRequestedEndpoint: tcp:127.0.0.1:9003" in text
    assert listener_status_after_cn(text, "Wire") == "Waiting for address"
    assert "SERVER_DOWN" not in text


def test_listener_of_dead_region_is_never_started():
    # The last report said Started, but mfds judged the region Failed (its pid is gone).
    text = mdump.format_dump([server_object(state="Failed")], "http://x:1")
    assert "mfServerStatus: Failed" in text
    assert listener_status_after_cn(text, "Web Services") == "Failed"
    stopped = mdump.format_dump([server_object(state="Stopped")], "http://x:1")
    assert listener_status_after_cn(stopped, "Web Services") == "Stopped"


def test_defined_listener_without_report_is_stopped_with_its_endpoint():
    server = {"name": "NEW", "mfServerStatus": "Stopped", "status": None,
              "definition": {"name": "NEW", "seps": 1, "listeners": [
                  {"name": "Web Services", "address": "127.0.0.1:*"}]}}
    text = mdump.format_server(server)
    assert listener_status_after_cn(text, "Web Services") == "Stopped"
    assert "mfRequestedEndpoint: tcp:127.0.0.1:*" in text


def test_host_argument():
    assert mdump.mfds_url_for("localhost") is None
    assert mdump.mfds_url_for(None) is None
    assert mdump.mfds_url_for("node2") == "http://node2:8686"
    assert mdump.mfds_url_for("10.0.0.5:86") == "http://10.0.0.5:86"
    assert mdump.mfds_url_for("http://node2/") == "http://node2:8686"
    assert mdump.mfds_url_for("https://node2:8443") == "https://node2:8443"
    with pytest.raises(mdump.MdumpError, match="only http:// and https://"):
        mdump.mfds_url_for("ftp://node2")
    with pytest.raises(mdump.MdumpError, match="not a host"):
        mdump.mfds_url_for("node2:abc")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_mdump(args, home):
    environ = dict(os.environ, ESRT_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "esrt.ha.mdump", *args], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_server_down_when_nothing_listens(tmp_path):
    result = run_mdump([f"127.0.0.1:{closed_port()}"], tmp_path)
    assert result.returncode != 0
    assert "m_ldap_bind: 0x51 SERVER_DOWN" in result.stdout
    assert "CN:" not in result.stdout


def test_server_down_when_node_has_no_mfds(tmp_path):
    result = run_mdump([], tmp_path)
    assert result.returncode != 0
    assert "SERVER_DOWN" in result.stdout
    assert "esrt mfds --daemon" in result.stdout


def test_bad_host_is_a_clear_error(tmp_path):
    result = run_mdump(["node2:abc"], tmp_path)
    assert result.returncode != 0
    assert "'node2:abc' is not a host" in result.stderr
