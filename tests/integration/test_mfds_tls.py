"""mfds over https: the node's own tools and regions trust its certificate file, curl and browsers
its CA, and plain text on its port is refused at once."""

import http.client
import json
import ssl
import subprocess

import pytest

from esrt.home import Home
from esrt.mfds import daemon
from esrt.node.mfds_client import MfdsClient, MfdsUnavailable

from conftest import Node, make_certificates, wait_for


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("mfds-tls"), clients=())


@pytest.fixture
def tls_node(tmp_path, certificates):
    home = tmp_path / "home"
    home.mkdir()
    node = Node(home)
    daemon.start_daemon(Home(home), "127.0.0.1:0", extra=[
        "--tls-cert", str(certificates["server.crt"]),
        "--tls-key", str(certificates["server.key"])])
    try:
        yield node
    finally:
        node.stop_everything()


def test_the_node_speaks_to_its_mfds_over_https(tls_node, certificates):
    info = json.loads((tls_node.home / "mfds.json").read_text())
    assert info["url"].startswith("https://127.0.0.1:")
    assert info["tls_cert"] == str(certificates["server.crt"])
    tls_node.esrt("server", "create", "ESSRV01", "--seps", "1")
    tls_node.esrt("casstart", "-r", "ESSRV01", "--wait")
    # The region reports its status to mfds over https (Twisted's client, the same pin).
    client = MfdsClient.from_home(tls_node.home)
    wait_for(lambda: client.get_server("ESSRV01")["mfServerStatus"] == "Started",
             "the region's status report through https")
    listed = tls_node.esrt("server", "list")
    assert "ESSRV01" in listed.stdout

    health = subprocess.run(["curl", "--silent", "--show-error", "--cacert",
                             str(certificates["ca"]), info["url"] + "/api/health"],
                            capture_output=True, text=True, timeout=30)
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["status"] == "ok"


def test_plain_http_to_mfds_is_refused_and_the_cookie_is_secure(tls_node, certificates):
    info = json.loads((tls_node.home / "mfds.json").read_text())
    host, port = info["url"][len("https://"):].rsplit(":", 1)
    plain = http.client.HTTPConnection(host, int(port), timeout=30)
    plain.request("GET", "/api/health")
    answer = plain.getresponse()
    assert answer.status == 400
    assert json.loads(answer.read())["error"]["code"] == "tls_required"
    plain.close()

    tls_node.esrt("mfds", "user", "add", "alice", "--password", "a long passphrase 1",
                  "--role", "admin")
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    secure = http.client.HTTPSConnection(host, int(port), timeout=30, context=context)
    secure.request("GET", "/login")
    page = secure.getresponse()
    page.read()
    cookie = page.getheader("set-cookie")
    secure.close()
    assert page.status == 200
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_a_client_that_does_not_trust_the_certificate_gets_no_answer(tls_node, tmp_path,
                                                                     certificates):
    info = json.loads((tls_node.home / "mfds.json").read_text())
    other = make_certificates(tmp_path / "other", clients=(), prefix="other-")
    stranger = MfdsClient(info["url"], home=tls_node.home, pinned_cert=other["server.crt"])
    with pytest.raises(MfdsUnavailable, match="certificate verify failed"):
        stranger.list_servers()
    # A client elsewhere, with the CA that signed mfds's certificate, is answered.
    assert MfdsClient(info["url"], home=tls_node.home,
                      ca_file=str(certificates["ca"])).list_servers() == []


def test_mfds_with_tls_files_that_do_not_match_does_not_start(tmp_path, certificates):
    other = make_certificates(tmp_path / "other", clients=(), prefix="other-")
    home = Home(tmp_path / "home")
    with pytest.raises(daemon.MfdsStartError) as caught:
        daemon.start_daemon(home, "127.0.0.1:0", extra=[
            "--tls-cert", str(certificates["server.crt"]),
            "--tls-key", str(other["server.key"])])
    assert "is not the key of the certificate" in str(caught.value)
    assert daemon.running_info(home) is None
