"""The client library rides out a server restart without losing or repeating a call."""

import socket
import threading
import time

from esrt.client import Client, ConnectionFailed

from conftest import EXAMPLES


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_call_retried_across_a_restart_runs_exactly_once(node, srv01_car):
    port = free_port()
    node.esrt("server", "create", "ESSRV01", "--listener", f"Web Services=127.0.0.1:{port}",
              "--env", "DD_APPFILE01=APPFILE01")
    node.esrt("casstart", "-r", "ESSRV01", "--wait")
    node.esrt("deploy", str(srv01_car), "--server", "ESSRV01")
    node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", "ESSRV01")
    url = f"http://127.0.0.1:{port}"
    with Client(url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
    node.esrt("casstop", "-r", "ESSRV01")
    with Client(url, timeout=10) as client:
        try:
            client.call("srv01.CBLAPP01")
            raise AssertionError("a stopped server answered")
        except ConnectionFailed:
            pass
    restarter = threading.Timer(1.0, lambda: node.esrt("casstart", "-r", "ESSRV01", "--wait"))
    restarter.start()
    try:
        started = time.monotonic()
        with Client(url, timeout=10) as client:
            reply = client.call("srv01.CBLAPP01", retry_for=60)
            assert reply["LK-COUNTER"] == 1
            assert time.monotonic() - started >= 1.0  # it really waited for the restart
            assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 2
    finally:
        restarter.join()
