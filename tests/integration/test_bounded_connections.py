"""Bounded connections on a real region: thousands of half-sent requests are closed when their
time is up while a normal call is answered at once; a listener full of connections answers the
next one 503; idle keep-alive connections are closed; a full queue answers 503 with
Retry-After."""

import json
import resource
import socket
import threading
import time

import pytest

from esrt import wire
from esrt.client import Client, ServiceError

from conftest import start_cblapp01_region, wait_for

HEAD_TIMEOUT = 6
STALLED = 2000


def listener_address(region, name):
    status = region.node.region_status(region.name)
    (found,) = [item for item in status["listeners"] if item["CN"] == name]
    host, port = found["address"].rsplit(":", 1)
    return host, int(port)


def console(region):
    return (region.node.home / "servers" / region.name / "logs" / "console.log").read_text()


@pytest.fixture
def bounded(node, srv01_car, tst_car):
    region = start_cblapp01_region(node, srv01_car, extra=(
        "--listener", f"Bounded=127.0.0.1:*,web-services,head_timeout={HEAD_TIMEOUT},"
                      "idle_timeout=3",
        "--listener", "Small=127.0.0.1:*,web-services,max_connections=5",
        "--listener", "OneAtATime=127.0.0.1:*,web-services,max_queue=1",
        "--listener", f"BinaryBounded=127.0.0.1:*,esrt,head_timeout={HEAD_TIMEOUT},"
                      "idle_timeout=3"))
    node.esrt("deploy", str(tst_car), "--server", region.name)
    return region


def stalled_connections(address, count):
    """`count` connections that each sent half a request head and wait."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 500), hard))
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(address, timeout=60)
        sock.sendall(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\nContent-Le")
        sockets.append(sock)
    return sockets


def test_stalled_heads_are_closed_when_their_time_is_up_and_calls_go_on(bounded):
    address = listener_address(bounded, "Bounded")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(STALLED, hard - 500)
    opened = time.monotonic()
    sockets = stalled_connections(address, count)
    try:
        # A normal call on a new connection, while every stalled one is still open.
        started = time.monotonic()
        with Client(f"http://{address[0]}:{address[1]}") as client:
            assert client.call("srv01.CBLAPP01")["LK-PGMNAME"] == "CBLAPP01"
        answered = time.monotonic() - started
        assert time.monotonic() - opened < HEAD_TIMEOUT, "too slow to open the connections " \
            "before their time limit: the test shows nothing on this machine"
        print(f"{count} stalled connections open; a normal call took {answered * 1000:.1f} ms")
        for sock in sockets:
            sock.settimeout(HEAD_TIMEOUT * 4)
        answers = [b"".join(iter(lambda s=sock: s.recv(65536), b"")) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    closed_after = time.monotonic() - opened
    timed_out = [answer for answer in answers if answer.startswith(b"HTTP/1.1 408 ")]
    assert len(timed_out) == count, {answer[:40] for answer in answers}
    assert json.loads(timed_out[0].split(b"\r\n\r\n", 1)[1])["error"]["code"] == "head_timeout"
    print(f"all {count} closed {closed_after:.1f} s after they opened (head_timeout "
          f"{HEAD_TIMEOUT} s)")


def test_an_idle_keep_alive_connection_is_closed_and_the_client_carries_on(bounded):
    host, port = listener_address(bounded, "Bounded")
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.settimeout(30)
        assert sock.recv(65536) == b""  # closed by the region once idle for 3 s
    with Client(f"http://{host}:{port}") as client:
        assert client.call("srv01.CBLAPP01")
        time.sleep(4)
        # The idle connection was closed; the client sends again on a new one.
        assert client.call("srv01.CBLAPP01")


def test_a_full_listener_answers_503_at_once(bounded):
    address = listener_address(bounded, "Small")
    held = [socket.create_connection(address, timeout=30) for _ in range(5)]
    try:
        for sock in held:  # each is accepted: it answers
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        with socket.create_connection(address, timeout=30) as extra:
            answer = b"".join(iter(lambda: extra.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1" in answer and b"too_many_connections" in answer
    finally:
        for sock in held:
            sock.close()
    with Client(f"http://{address[0]}:{address[1]}") as client:
        wait_for(lambda: _ok(client), "a connection once the others closed")


def _ok(client):
    try:
        return bool(client.call("srv01.CBLAPP01"))
    except ServiceError:
        return False


def test_a_full_queue_answers_503_with_retry_after(bounded):
    host, port = listener_address(bounded, "OneAtATime")
    napped = {}

    def nap():
        with Client(f"http://{host}:{port}") as client:
            napped["reply"] = client.call("tst.ABENDER", {"LK-MODE": "NAP"})

    napping = threading.Thread(target=nap)
    napping.start()
    time.sleep(0.5)  # the two-second call is under way: the queue of one is full
    try:
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(b"POST /services/srv01/CBLAPP01 HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 2\r\n\r\n{}")
            answer = sock.recv(65536)
    finally:
        napping.join(60)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in head.lower(), head
    assert json.loads(body)["error"]["code"] == "busy"
    assert napped["reply"]["LK-RESULT"] == "OK"  # the call that filled it was not disturbed
    assert Client(f"http://{host}:{port}").call("srv01.CBLAPP01")


def test_a_stalled_binary_frame_gets_408_and_the_connection_closes(bounded):
    address = listener_address(bounded, "BinaryBounded")
    with socket.create_connection(address, timeout=HEAD_TIMEOUT * 4) as sock:
        sock.sendall(wire.encode_request(9, "srv01.CBLAPP01", b"{}")[:12])
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    (payload,) = wire.FrameDecoder(1 << 20).feed(data)
    reply = wire.parse_reply(payload)
    assert reply.status == 408 and b"head_timeout" in reply.body
