"""TLS on a region's listeners, against real clients: curl, openssl s_client, Python's ssl (the
Client and WireClient) and raw sockets speaking plain text to a TLS port.

The certificates are made with openssl as a user would (conftest.make_certificates): a test CA,
a server certificate for 127.0.0.1 and localhost, and client certificates.
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from esrt import wire
from esrt.client import Client, ConnectionFailed, ServiceError, WireClient

from conftest import ROOT, make_certificates, start_cblapp01_region, wait_for


def listener(region, name):
    (found,) = [item for item in region.node.region_status(region.name)["listeners"]
                if item["CN"] == name]
    return found


def console(region):
    return (region.node.home / "servers" / region.name / "logs" / "console.log").read_text()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"), clients=("alice",))


@pytest.fixture
def region(node, srv01_car, tst_car, certificates, tmp_path):
    """ESSRV01 with an HTTPS listener, a TLS binary listener and an HTTPS listener that wants
    client certificates. The server's files are copies, so that a test may replace them."""
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "server.crt", live / "server.key"
    shutil.copy(certificates["server.crt"], cert)
    shutil.copy(certificates["server.key"], key)
    files = f"tls_cert={cert},tls_key={key}"
    region = start_cblapp01_region(node, srv01_car, extra=(
        "--listener", f"Secure=127.0.0.1:*,web-services,{files}",
        "--listener", f"SecureBinary=127.0.0.1:*,esrt,{files}",
        "--listener", f"Mutual=127.0.0.1:*,web-services,{files},"
                      f"tls_client_ca={certificates['ca']}"))
    node.esrt("deploy", str(tst_car), "--server", region.name)
    region.https = "https://" + listener(region, "Secure")["address"]
    region.esrts = "esrts://" + listener(region, "SecureBinary")["address"]
    region.mutual = "https://" + listener(region, "Mutual")["address"]
    region.live = {"cert": cert, "key": key}
    return region


def host_port(url):
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def curl(*args):
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "30", *args],
                          capture_output=True, text=True, timeout=60)


def test_cblapp01_over_https_and_esrts_with_the_ca(region, certificates):
    ca = certificates["ca"]
    with Client(region.https, ca_file=ca) as client:
        first = client.call("srv01.CBLAPP01")
    assert first["LK-PGMNAME"] == "CBLAPP01"
    # Pipelined calls over TLS: every reply comes back whole and in its own record.
    with Client(region.esrts, ca_file=ca) as client:
        replies = client.call_many([("srv01.CBLAPP01", {})] * 200)
    assert sorted(reply["LK-COUNTER"] for reply in replies) == \
        list(range(first["LK-COUNTER"] + 1, first["LK-COUNTER"] + 201))

    answer = curl("--cacert", str(ca), "-X", "POST", "-H", "Content-Type: application/json",
                  "-d", "{}", region.https + "/services/srv01/CBLAPP01")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["LK-COUNTER"] == first["LK-COUNTER"] + 201

    # The certificate is for 127.0.0.1 and localhost: both names are accepted.
    _, port = host_port(region.https)
    assert Client(f"https://localhost:{port}", ca_file=ca).call("srv01.CBLAPP01")

    status = listener(region, "Secure")
    assert status["tls"]["subject"] == "CN=esrt test server"
    assert status["tls"]["client_certificates"] is False
    assert "TLS, certificate CN=esrt test server" in console(region)


def test_a_client_without_the_ca_is_told_what_to_give(region):
    with pytest.raises(ConnectionFailed) as caught:
        Client(region.https).call("srv01.CBLAPP01")
    assert "certificate verify failed" in str(caught.value)
    assert "give the CA that signed it" in str(caught.value)
    answer = curl(region.https + "/health")
    assert answer.returncode != 0
    assert "certificate" in answer.stderr


def test_tls_older_than_1_2_is_refused_by_the_server(region):
    host, port = host_port(region.https)

    def s_client(*version):
        # SECLEVEL=0 lets the client offer old versions, so that the refusal is the server's.
        return subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", *version,
                               "-cipher", "DEFAULT@SECLEVEL=0"], input="", capture_output=True,
                              text=True, timeout=30)

    old = s_client("-tls1_1")
    assert old.returncode != 0
    assert "alert protocol version" in old.stdout + old.stderr
    assert s_client("-tls1_2").returncode == 0
    assert s_client("-tls1_3").returncode == 0


def test_plain_text_on_a_tls_port_is_answered_at_once_and_logged(region):
    host, port = host_port(region.https)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 2\r\n\r\n{}")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # Answered and closed long before any handshake time limit (10 s).
    assert time.monotonic() - started < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    error = json.loads(body)["error"]
    assert error["code"] == "tls_required"
    assert "https://" in error["message"]

    with pytest.raises(ServiceError) as caught:
        WireClient(*host_port(region.esrts)).call("srv01.CBLAPP01")
    assert caught.value.code == "tls_required"
    assert "esrts://" in caught.value.message
    text = wait_for(lambda: console(region).count("ESCS5010W") >= 2 and console(region),
                    "the refusals in the console log")
    assert "sent plain text (b'POST /services/s')" in text


def test_mutual_tls_wants_a_certificate_signed_by_the_client_ca(region, certificates, tmp_path):
    ca = certificates["ca"]
    with Client(region.mutual, ca_file=ca, cert_file=certificates["alice.crt"],
                key_file=certificates["alice.key"]) as client:
        assert client.call("srv01.CBLAPP01")["LK-PGMNAME"] == "CBLAPP01"
    answer = curl("--cacert", str(ca), "--cert", str(certificates["alice.crt"]),
                  "--key", str(certificates["alice.key"]), region.mutual + "/health")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["status"] == "ok"

    with pytest.raises(ConnectionFailed) as caught:
        Client(region.mutual, ca_file=ca).call("srv01.CBLAPP01")
    assert "--cert FILE" in str(caught.value)
    # A client certificate from another CA is no better than none.
    stranger = make_certificates(tmp_path / "other", clients=("mallory",), prefix="other-")
    with pytest.raises(ConnectionFailed):
        Client(region.mutual, ca_file=ca, cert_file=stranger["mallory.crt"],
               key_file=stranger["mallory.key"]).call("srv01.CBLAPP01")
    wait_for(lambda: "ESCS5011W" in console(region), "the handshake failure in the console log")
    # Listeners without a client CA do not ask for one.
    assert Client(region.https, ca_file=ca).call("srv01.CBLAPP01")
    assert listener(region, "Mutual")["tls"]["client_certificates"] is True


def peer_subject(url, ca):
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(host_port(url), timeout=30) as sock:
        with context.wrap_socket(sock, server_hostname=host_port(url)[0]) as tls:
            return dict(item[0] for item in tls.getpeercert()["subject"])["commonName"]


def test_a_renewed_certificate_is_used_without_a_restart_or_a_failed_call(
        region, certificates, tmp_path):
    ca = certificates["ca"]
    # Same CA, new key and subject: a renewal signed by the CA clients already trust.
    renewed = make_renewed(certificates, tmp_path / "renewal")
    pid_before = region.node.region_status(region.name)["pid"]
    open_client = Client(region.https, ca_file=ca)
    assert open_client.call("srv01.CBLAPP01")
    in_flight = {}

    def nap():
        try:
            in_flight["reply"] = Client(region.https, ca_file=ca).call(
                "tst.ABENDER", {"LK-MODE": "NAP"})
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            in_flight["error"] = exc

    caller = threading.Thread(target=nap)
    caller.start()
    time.sleep(0.5)
    # Key first, then certificate, as a renewal script would copy them: in between, the pair
    # does not match and the old one stays in use.
    shutil.copy(renewed["server.key"], region.live["key"])
    shutil.copy(renewed["server.crt"], region.live["cert"])
    wait_for(lambda: peer_subject(region.https, ca) == "esrt renewed server",
             "new connections to get the renewed certificate")
    caller.join(60)
    assert in_flight.get("reply", {}).get("LK-RESULT") == "OK", in_flight
    # The keep-alive connection made before the renewal goes on serving.
    assert open_client.call("srv01.CBLAPP01")
    assert open_client.connected
    open_client.close()
    assert region.node.region_status(region.name)["pid"] == pid_before
    assert "ESCS5012I" in console(region)
    assert listener(region, "Secure")["tls"]["subject"] == "CN=esrt renewed server"
    # Binary clients get it too.
    assert WireClient(region.esrts, ca_file=ca).call("srv01.CBLAPP01")


def make_renewed(certificates, directory):
    """A new key and certificate for the same names, signed by the same test CA."""
    from conftest import openssl
    directory.mkdir()
    ca_key = certificates["ca"].with_suffix(".key")
    key, request, cert = (directory / f"server.{kind}" for kind in ("key", "csr", "crt"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            key, "-out", request, "-subj", "/CN=esrt renewed server", cwd=directory)
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                   "basicConstraints=critical,CA:FALSE\n"
                                   "keyUsage=critical,digitalSignature\n"
                                   "authorityKeyIdentifier=keyid,issuer\n")
    openssl("x509", "-req", "-in", request, "-CA", certificates["ca"], "-CAkey", ca_key,
            "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", directory / "ext",
            cwd=directory)
    return {"server.crt": cert, "server.key": key}


def test_changed_files_that_cannot_be_used_keep_the_previous_certificate(region, certificates):
    region.live["cert"].write_text("this is not a certificate\n")
    wait_for(lambda: "ESCS5013E" in console(region), "the refusal of the broken files")
    assert "holds no PEM certificate" in console(region)
    assert Client(region.https, ca_file=certificates["ca"]).call("srv01.CBLAPP01")


def test_tls_files_that_cannot_be_used_fail_the_start_and_say_why(node, srv01_car, tmp_path):
    missing = tmp_path / "missing.crt"
    node.esrt("server", "create", "BADTLS", "--listener",
              f"Secure=127.0.0.1:*,web-services,tls_cert={missing},tls_key={missing}")
    result = node.esrt("casstart", "-r", "BADTLS", "--wait", check=False)
    assert result.returncode != 0
    assert f"tls_cert {missing} cannot be read: no such file or directory" in \
        result.stdout + result.stderr

    refused = node.esrt("server", "create", "HALFTLS", "--listener",
                        f"Secure=127.0.0.1:*,web-services,tls_cert={missing}", check=False)
    assert refused.returncode != 0
    assert "has tls_cert but no tls_key" in refused.stdout + refused.stderr


def test_frames_sent_in_pieces_over_tls_get_whole_replies(region, certificates):
    """A raw TLS socket sending frames in small pieces gets whole replies (the TLS layer, not
    the socket under it, carries the region's writes)."""
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    host, port = host_port(region.esrts)
    with socket.create_connection((host, port), timeout=30) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            frames = b"".join(wire.encode_request(n, "srv01.CBLAPP01", b"{}")
                              for n in range(1, 21))
            for start in range(0, len(frames), 7):
                tls.sendall(frames[start:start + 7])
            decoder = wire.FrameDecoder(wire.DEFAULT_MAX_REPLY)
            replies = []
            while len(replies) < 20:
                replies += [wire.parse_reply(p) for p in decoder.feed(tls.recv(65536))]
    assert sorted(reply.request_id for reply in replies) == list(range(1, 21))
    assert {reply.status for reply in replies} == {200}


def test_esrt_call_and_bench_take_the_ca_and_client_certificate(region, certificates):
    ca = str(certificates["ca"])
    called = region.node.esrt("call", "srv01.CBLAPP01", "--url", region.https, "--cacert", ca,
                              "--json")
    assert json.loads(called.stdout)["LK-PGMNAME"] == "CBLAPP01"
    mutual = region.node.esrt("call", "srv01.CBLAPP01", "--url", region.mutual, "--cacert", ca,
                              "--cert", str(certificates["alice.crt"]),
                              "--key", str(certificates["alice.key"]), "--json")
    assert json.loads(mutual.stdout)["LK-PGMNAME"] == "CBLAPP01"

    untrusted = region.node.esrt("call", "srv01.CBLAPP01", "--url", region.https, check=False)
    assert untrusted.returncode != 0
    assert "--cacert FILE" in untrusted.stderr
    plain_url = region.node.esrt("call", "srv01.CBLAPP01", "--url", "http://127.0.0.1:1",
                                 "--cacert", ca, check=False)
    assert plain_url.returncode != 0
    assert "write https://" in plain_url.stderr

    bench = region.node.esrt("bench", "srv01.CBLAPP01", "--url", region.esrts, "--cacert", ca,
                             "-c", "2", "-d", "1", "--processes", "1", "--json")
    summary = json.loads(bench.stdout)
    assert summary["requests"] > 0 and summary["errors"] == 0


def test_the_cluster_monitor_probes_a_region_whose_listeners_all_speak_tls(
        node, srv01_car, certificates):
    files = f"tls_cert={certificates['server.crt']},tls_key={certificates['server.key']}"
    node.esrt("server", "create", "TLSONLY", "--listener", f"Secure=127.0.0.1:*,web-services,"
              f"{files},tls_client_ca={certificates['ca']}")
    node.esrt("casstart", "-r", "TLSONLY", "--wait")
    monitor = node.esrt("ha", "monitor", "TLSONLY", check=False)
    # Before TLS was known to the probe, its plain-text GET was refused (400) and the region
    # reported as failed.
    assert monitor.returncode == 0, monitor.stdout + monitor.stderr
    # A frozen region answers no handshake either.
    pid = node.region_status("TLSONLY")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        frozen = node.esrt("ha", "monitor", "TLSONLY", "--probe-timeout", "1", check=False)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert frozen.returncode == 1, frozen.stdout + frozen.stderr


JAVA_SOURCE = ROOT / "examples" / "java" / "CblApp01Client.java"


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("keytool") is None,
                    reason="no JDK on PATH; `make` installs default-jdk-headless")
def test_the_java_client_trusts_the_ca_through_a_trust_store(region, certificates, tmp_path):
    store = tmp_path / "esrt-truststore.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "esrt-test-ca", "-file",
                    str(certificates["ca"]), "-keystore", str(store), "-storetype", "PKCS12",
                    "-storepass", "changeit"], check=True, capture_output=True, timeout=120)

    def java(*options):
        return subprocess.run(["java", *options, str(JAVA_SOURCE), "--url", region.https,
                               "--repeat", "3"], capture_output=True, text=True, timeout=300)

    trusted = java(f"-Djavax.net.ssl.trustStore={store}",
                   "-Djavax.net.ssl.trustStorePassword=changeit")
    assert trusted.returncode == 0, trusted.stderr
    lines = trusted.stdout.splitlines()
    assert len(lines) == 3 and all(" CBLAPP01 " in line for line in lines)
    untrusted = java()
    assert untrusted.returncode != 0
    assert "PKIX" in untrusted.stdout + untrusted.stderr
