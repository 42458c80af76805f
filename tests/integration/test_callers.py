"""Authenticated and authorized service calls: listeners with auth=token, basic and mtls in front
of a real region, accounts, tokens and rules made with `esrt mfds ...` as an admin would, and
the region's copy of them while mfds is down."""

import base64
import json
import os
import socket
import stat
import subprocess
import urllib.request

import pytest

from esrt import wire
from esrt.client import Client, ServiceError, WireClient
from esrt.mfds import daemon

from conftest import make_certificates, scrape_metrics, start_cblapp01_region, wait_for

PASSWORD = "correct horse battery"


def listener_url(region, name, scheme):
    status = region.node.region_status(region.name)
    (found,) = [item for item in status["listeners"] if item["CN"] == name]
    return f"{scheme}://{found['address']}"


def console(region):
    return (region.node.home / "servers" / region.name / "logs" / "console.log").read_text()


@pytest.fixture
def secured(node, srv01_car, tmp_path):
    """alice (operator) with a token, bob (readonly); a region with a listener per kind of
    authentication."""
    for name, role in (("admin", "admin"), ("alice", "operator"), ("bob", "readonly")):
        node.esrt("mfds", "user", "add", name, "--password", PASSWORD, "--role", role)
    created = node.esrt("mfds", "token", "create", "alice", "--note", "tests")
    token = created.stdout.strip().splitlines()[-1]
    certificates = make_certificates(tmp_path / "tls", clients=("alice", "mallory"))
    tls = f"tls_cert={certificates['server.crt']},tls_key={certificates['server.key']}"
    region = start_cblapp01_region(node, srv01_car, extra=(
        "--listener", "Token=127.0.0.1:*,web-services,auth=token,metrics=auth",
        "--listener", "Basic=127.0.0.1:*,web-services,auth=basic,openapi=off",
        "--listener", "BinToken=127.0.0.1:*,esrt,auth=token",
        "--listener", "BinBasic=127.0.0.1:*,esrt,auth=basic",
        "--listener", f"Mutual=127.0.0.1:*,web-services,{tls},"
                      f"tls_client_ca={certificates['ca']},auth=mtls"))
    region.token = token
    region.token_id = created.stdout.split()[1]
    region.certificates = certificates
    region.urls = {"token": listener_url(region, "Token", "http"),
                   "basic": listener_url(region, "Basic", "http"),
                   "binary": listener_url(region, "BinToken", "esrt"),
                   "binary_basic": listener_url(region, "BinBasic", "esrt"),
                   "mtls": listener_url(region, "Mutual", "https")}
    return region


def refused(call):
    with pytest.raises(ServiceError) as caught:
        call()
    return caught.value


def test_a_token_listener_knows_its_callers(secured):
    url = secured.urls["token"]
    nobody = refused(lambda: Client(url).call("srv01.CBLAPP01"))
    assert (nobody.status, nobody.code) == (401, "unauthenticated")
    assert "Authorization: Bearer TOKEN" in nobody.message
    assert "esrt mfds token create USER" in nobody.message
    # An unknown caller learns nothing, not even which services exist.
    assert refused(lambda: Client(url).call("srv01.NOSUCH")).status == 401
    forged = "esrt_" + secured.token_id + "_" + "A" * 43
    assert refused(lambda: Client(url, token=forged).call("srv01.CBLAPP01")).status == 401

    with Client(url, token=secured.token) as client:
        assert client.call("srv01.CBLAPP01")["LK-PGMNAME"] == "CBLAPP01"
    answer = subprocess.run(["curl", "--silent", "-H", f"Authorization: Bearer {secured.token}",
                             "-d", "{}", url + "/services/srv01/CBLAPP01"],
                            capture_output=True, text=True, timeout=30)
    assert json.loads(answer.stdout)["LK-PGMNAME"] == "CBLAPP01"
    # The listener without auth (on loopback) is as it always was.
    assert Client(secured.url).call("srv01.CBLAPP01")
    log = console(secured)
    assert "ESCS5020W http call of srv01.CBLAPP01 by an unknown caller refused (401)" in log
    audit = [json.loads(line) for line in
             (secured.node.home / "audit.log").read_text().splitlines()]
    assert any(r["action"] == "call" and r["outcome"] == "denied"
               and r["target"] == "ESSRV01/srv01.CBLAPP01" for r in audit)


def test_rules_deny_by_default_once_one_exists_and_changes_arrive_within_seconds(secured):
    client = Client(secured.urls["token"], token=secured.token)
    assert client.call("srv01.CBLAPP01")  # no rule: every known caller may call
    secured.node.esrt("mfds", "rule", "add", "bob", "srv01.*")

    def denied():
        try:
            client.call("srv01.CBLAPP01")
        except ServiceError as exc:
            return exc
        return None

    forbidden = wait_for(denied, "the first rule to reach the region", limit=30)
    assert (forbidden.status, forbidden.code) == (403, "forbidden")
    assert "alice (role operator) may not call srv01.CBLAPP01" in forbidden.message
    assert "esrt mfds rule add alice srv01.CBLAPP01" in forbidden.message
    # A rule for alice's role lets her call again.
    secured.node.esrt("mfds", "rule", "add", "operator", "srv01.*")
    wait_for(lambda: denied() is None, "the role's rule to reach the region", limit=30)
    _, metrics = scrape_metrics(secured.url)
    assert metrics[("esrt_refused_total", (("code", "forbidden"),
                                           ("conversation", "http")))] >= 1


def test_a_revoked_token_is_refused_within_seconds(secured):
    client = Client(secured.urls["token"], token=secured.token)
    assert client.call("srv01.CBLAPP01")
    secured.node.esrt("mfds", "token", "revoke", secured.token_id)
    gone = wait_for(lambda: _refusal(client), "the revocation to reach the region", limit=30)
    assert gone.status == 401 and "revoked" in gone.message


def _refusal(client):
    try:
        client.call("srv01.CBLAPP01")
    except ServiceError as exc:
        return exc
    return None


def test_calls_are_still_checked_while_mfds_is_down(secured):
    cache = secured.node.home / "servers" / secured.name / "run" / "callers.json"
    wait_for(cache.exists, "the region's copy of the callers")
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600  # it holds password hashes
    from esrt.home import Home
    daemon.stop_daemon(Home(secured.node.home))
    assert Client(secured.urls["token"], token=secured.token).call("srv01.CBLAPP01")
    assert refused(lambda: Client(secured.urls["token"]).call("srv01.CBLAPP01")).status == 401
    assert Client(secured.urls["basic"], user="bob", password=PASSWORD).call("srv01.CBLAPP01")


def test_basic_checks_the_accounts_password(secured):
    url = secured.urls["basic"]
    with Client(url, user="bob", password=PASSWORD) as client:
        for _ in range(20):
            assert client.call("srv01.CBLAPP01")["LK-PGMNAME"] == "CBLAPP01"
    wrong = refused(lambda: Client(url, user="bob", password="not it at all").call(
        "srv01.CBLAPP01"))
    assert wrong.status == 401 and "wrong name or password" in wrong.message
    assert refused(lambda: Client(url, user="nobody", password=PASSWORD).call(
        "srv01.CBLAPP01")).status == 401
    # openapi=off on this listener; metrics default open on loopback.
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + "/openapi.json", timeout=30)
    assert caught.value.code == 404
    assert b"openapi=off" in caught.value.read()


def test_metrics_behind_the_listeners_authentication(secured):
    url = secured.urls["token"] + "/metrics"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=30)
    assert caught.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secured.token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert b"esrt_" in answer.read()


def test_the_binary_conversation_authenticates_once_per_connection(secured):
    with WireClient(secured.urls["binary"], token=secured.token) as client:
        replies = client.call_many([("srv01.CBLAPP01", {})] * 50)
    assert len(replies) == 50 and all(r["LK-PGMNAME"] == "CBLAPP01" for r in replies)
    anonymous = refused(lambda: WireClient(secured.urls["binary"]).call("srv01.CBLAPP01"))
    assert anonymous.status == 401 and "credentials frame" in anonymous.message
    bad = refused(lambda: WireClient(secured.urls["binary"], token="esrt_00000000_" + "x" * 43)
                  .call("srv01.CBLAPP01"))
    assert bad.status == 401


def test_client_certificates_are_mapped_to_accounts(secured):
    files = secured.certificates
    with Client(secured.urls["mtls"], ca_file=files["ca"], cert_file=files["alice.crt"],
                key_file=files["alice.key"]) as client:
        assert client.call("srv01.CBLAPP01")
    stranger = refused(lambda: Client(secured.urls["mtls"], ca_file=files["ca"],
                                      cert_file=files["mallory.crt"],
                                      key_file=files["mallory.key"]).call("srv01.CBLAPP01"))
    assert stranger.status == 401 and "CN=mallory" in stranger.message


def test_esrt_call_sends_a_token(secured):
    called = secured.node.esrt("call", "srv01.CBLAPP01", "--url", secured.urls["binary"],
                               "--token", secured.token, "--json")
    assert json.loads(called.stdout)["LK-PGMNAME"] == "CBLAPP01"
    failed = secured.node.esrt("call", "srv01.CBLAPP01", "--url", secured.urls["token"],
                               check=False)
    assert failed.returncode != 0 and "unauthenticated" in failed.stderr


def test_an_open_binary_connection_loses_a_revoked_token(secured):
    with WireClient(secured.urls["binary"], token=secured.token) as client:
        assert client.call("srv01.CBLAPP01")
        secured.node.esrt("mfds", "token", "revoke", secured.token_id)
        gone = wait_for(lambda: _refusal(client), "the revocation to reach the connection",
                        limit=30)
        assert gone.status == 401 and "revoked" in gone.message


def test_frames_behind_a_password_check_are_answered_in_order(node, srv01_car):
    node.esrt("mfds", "user", "add", "bob", "--password", PASSWORD, "--role", "readonly")
    # One SEP: the calls then run in the order the region dispatches them (with two, the
    # calls dispatched together race for APPFILE01's record and either may win).
    region = start_cblapp01_region(node, srv01_car, seps=1, extra=(
        "--listener", "BinBasic=127.0.0.1:*,esrt,auth=basic"))
    host, port = listener_url(region, "BinBasic", "esrt")[len("esrt://"):].rsplit(":", 1)
    good = "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    frames = (wire.encode_request(1, "srv01.CBLAPP01", b"{}")  # before: not yet known
              + wire.encode_credentials(2, good)
              + b"".join(wire.encode_request(n, "srv01.CBLAPP01", b"{}") for n in (3, 4, 5)))
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(frames)
        decoder = wire.FrameDecoder(wire.DEFAULT_MAX_REPLY)
        replies = []
        while len(replies) < 5:
            data = sock.recv(65536)
            assert data, f"closed after {replies}"
            replies += [wire.parse_reply(p) for p in decoder.feed(data)]
    status = {reply.request_id: reply.status for reply in replies}
    assert status == {1: 401, 2: 200, 3: 200, 4: 200, 5: 200}
    # Replies come back as calls finish: read them by request id, in the order they were sent.
    by_id = {reply.request_id: reply for reply in replies}
    counters = [json.loads(by_id[n].body)["LK-COUNTER"] for n in (3, 4, 5)]
    assert counters == sorted(counters)  # run in the order they were sent


def test_a_401_names_the_scheme_and_a_known_caller_sees_no_service_list(secured):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(
            secured.urls["basic"] + "/services/srv01/CBLAPP01", data=b"{}"), timeout=30)
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Basic realm=")
    unknown = refused(lambda: Client(secured.urls["token"], token=secured.token).call(
        "srv01.NOSUCH"))
    assert unknown.status == 404 and "deployed" not in unknown.message
    assert "deployed: srv01" in refused(lambda: Client(secured.url).call("srv01.NOSUCH")).message


def test_only_the_node_reads_the_accounts_hashes(secured):
    request = urllib.request.Request(secured.node.mfds_url + "/api/callers", headers={
        "Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 403


def test_deleting_an_account_takes_its_tokens_and_rules(secured):
    secured.node.esrt("mfds", "rule", "add", "alice", "srv01.*")
    secured.node.esrt("mfds", "user", "delete", "alice")
    assert secured.token_id not in secured.node.esrt("mfds", "token", "list").stdout
    assert "user:alice" not in secured.node.esrt("mfds", "rule", "list").stdout
    secured.node.esrt("mfds", "user", "add", "alice", "--password", PASSWORD, "--role", "admin")
    client = Client(secured.urls["token"], token=secured.token)
    wait_for(lambda: _refusal(client), "the old token to stay refused", limit=30)
