"""The binary conversation "esrt" end to end: a real region with an HTTP and an "esrt" listener,
real SEPs running CBLAPP01, and the WireClient / raw sockets on the other side."""

import json
import socket
import struct

import pytest

from esrt import wire
from esrt.client import Client, ConnectionFailed, ServiceError, WireClient

from conftest import start_cblapp01_region


@pytest.fixture
def region(node, srv01_car):
    region = start_cblapp01_region(node, srv01_car,
                                   extra=("--listener", "Binary=127.0.0.1:*,esrt"))
    (binary,) = [lst for lst in region.status["listeners"] if lst["conversation"] == "esrt"]
    assert binary["mfListenerStatus"] == "Started"
    region.binary = binary["address"]
    region.wire_url = f"esrt://{binary['address']}"
    return region


def connect(region):
    host, port = region.binary.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=60)
    return sock


def read_replies(sock, count):
    """Read `count` reply frames (fewer if the region closes); return them and whether it did."""
    decoder = wire.FrameDecoder(wire.DEFAULT_MAX_REPLY)
    replies = []
    while len(replies) < count:
        data = sock.recv(65536)
        if not data:
            return replies, True
        replies += [wire.parse_reply(p) for p in decoder.feed(data)]
    return replies, False


def closed_after(sock):
    return sock.recv(65536) == b""


def counters(replies):
    return [reply["LK-COUNTER"] for reply in replies]


def test_100_calls_over_one_connection_give_consecutive_counters(region):
    with WireClient(*region.binary.rsplit(":", 1)) as client:
        replies = [client.call("srv01.CBLAPP01") for _ in range(100)]
        assert client._socket is not None  # still the first connection
    assert counters(replies) == list(range(100))
    assert {reply["LK-PGMNAME"] for reply in replies} == {"CBLAPP01"}
    assert {reply.return_code for reply in replies} == {0}


def test_pipelined_calls_are_all_answered_with_their_ids(region):
    with Client(region.wire_url) as client:
        replies = client.call_many([("srv01.CBLAPP01", {})] * 300)
    assert sorted(counters(replies)) == list(range(300))
    with connect(region) as sock:
        ids = [1000 + 7 * n for n in range(40)]
        sock.sendall(b"".join(wire.encode_request(i, "srv01.CBLAPP01", b"{}") for i in ids))
        replies, closed = read_replies(sock, len(ids))
    assert not closed
    assert sorted(reply.request_id for reply in replies) == ids
    assert {reply.status for reply in replies} == {200}
    assert sorted(json.loads(r.body)["LK-COUNTER"] for r in replies) == list(range(300, 340))


def test_request_errors_keep_the_connection(region):
    with connect(region) as sock:
        sock.sendall(wire.encode_request(1, "srv01.NOPE", b"{}")
                     + wire.encode_request(2, "srv01.CBLAPP01", b"this is not json")
                     + wire.encode_request(3, "srv01.CBLAPP01", b"{}", key="bad key")
                     + wire.encode_request(4, "srv01.CBLAPP01", b"{}"))
        replies, closed = read_replies(sock, 4)
    assert not closed
    by_id = {reply.request_id: reply for reply in replies}
    errors = {i: json.loads(by_id[i].body)["error"] for i in (1, 2, 3)}
    assert (by_id[1].status, errors[1]["code"]) == (404, "unknown_service")
    assert "srv01.CBLAPP01" in errors[1]["message"]  # names what is deployed
    assert (by_id[2].status, errors[2]["code"]) == (400, "bad_json")
    assert (by_id[3].status, errors[3]["code"]) == (400, "bad_idempotency_key")
    assert by_id[4].status == 200 and json.loads(by_id[4].body)["LK-COUNTER"] == 0


def test_client_raises_the_same_errors_as_over_http(region):
    with Client(region.wire_url) as wire_client, Client(region.url) as http_client:
        for client in (wire_client, http_client):
            with pytest.raises(ServiceError) as caught:
                client.call("srv01.NOPE")
            assert (caught.value.status, caught.value.code) == (404, "unknown_service")
        results = wire_client.call_many([("srv01.CBLAPP01", {}), ("srv01.NOPE", {}),
                                         ("srv01.CBLAPP01", {})])
    assert isinstance(results[1], ServiceError) and results[1].code == "unknown_service"
    assert sorted(counters([results[0], results[2]])) == [0, 1]


def test_oversize_gets_413_and_the_next_connection_is_served(region):
    max_body = 1024 * 1024  # the default
    with Client(region.wire_url) as client:
        with pytest.raises(ServiceError) as caught:
            client.call("srv01.CBLAPP01", {"LK-PAD": "x" * (2 * max_body)})
        assert (caught.value.status, caught.value.code) == (413, "too_large")
        assert "max_body" in caught.value.message
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0  # on a new connection
    with connect(region) as sock:
        # Within the frame limit (max_body plus the largest header), yet the parameters alone
        # are over max_body: refused, and the connection goes on.
        sock.sendall(wire.encode_request(5, "srv01.CBLAPP01", b" " * (max_body + 1))
                     + wire.encode_request(6, "srv01.CBLAPP01", b"{}"))
        replies, closed = read_replies(sock, 2)
        assert not closed
        assert sorted((r.request_id, r.status) for r in replies) == [(5, 413), (6, 200)]
    with connect(region) as sock:
        # The header alone announces too much: refused before any of it is sent.
        sock.sendall(struct.pack(">I", 64 * 1024 * 1024)
                     + wire.encode_request(77, "srv01.CBLAPP01", b"")[4:wire.PEEK])
        replies, _ = read_replies(sock, 1)
        assert (replies[0].request_id, replies[0].status) == (77, 413)
        assert closed_after(sock)


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    struct.pack(">I", 5) + b"\xe5\x01\x01\x00\x00",
    struct.pack(">I", 12) + b"\xe5\x01\x01" + bytes(8) + b"\x00",
])
def test_malformed_frame_gets_bad_frame_then_close_and_the_region_keeps_serving(region, garbage):
    with connect(region) as sock:
        sock.sendall(wire.encode_request(1, "srv01.CBLAPP01", b"{}") + garbage
                     + wire.encode_request(2, "srv01.CBLAPP01", b"{}"))
        replies, _ = read_replies(sock, 2)
        assert closed_after(sock)
    # The request before the bad frame is answered; nothing after it runs.
    assert [(r.request_id, r.status) for r in replies if r.status == 200] == [(1, 200)]
    (error,) = [r for r in replies if r.status != 200]
    assert (error.status, json.loads(error.body)["error"]["code"]) == (400, "bad_frame")
    with Client(region.wire_url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 1
    assert region.node.region_status(region.name)["mfServerStatus"] == "Started"


def test_idempotency_key_replay_returns_the_same_reply(region):
    with Client(region.wire_url) as client:
        first = client.call("srv01.CBLAPP01", idempotency_key="order-42")
        again = client.call("srv01.CBLAPP01", idempotency_key="order-42")
        nxt = client.call("srv01.CBLAPP01")
    assert again == first and first["LK-COUNTER"] == 0
    assert nxt["LK-COUNTER"] == 1
    with Client(region.url) as client:  # the key is shared with HTTP
        assert client.call("srv01.CBLAPP01", idempotency_key="order-42") == first


def test_http_and_binary_interleaved_share_one_counter(region):
    with Client(region.url) as http_client, Client(region.wire_url) as wire_client:
        seen = [(http_client if n % 2 else wire_client).call("srv01.CBLAPP01")["LK-COUNTER"]
                for n in range(30)]
    assert seen == list(range(30))


def test_esrt_call_command_accepts_esrt_urls(region):
    result = region.node.esrt("call", "srv01.CBLAPP01", "--url", region.wire_url,
                              "--repeat", "3")
    lines = result.stdout.splitlines()
    assert [int(line.split()[-1]) for line in lines] == [0, 1, 2]


def test_stopped_listener_refuses_connections(region):
    region.node.esrt("casstop", "-r", region.name)
    with pytest.raises(ConnectionFailed):
        Client(region.wire_url).call("srv01.CBLAPP01")
