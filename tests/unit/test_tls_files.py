"""esrt.node.tls: the listener's TLS files, their reload, and the guards of a TLS connection
(plain text refused at its first byte, a stalled handshake closed), on a fake clock."""

import os
import shutil

import pytest
from twisted.internet import address, protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from esrt.node.tls import ServerTLS, TLSFilesError

from conftest import make_certificates, openssl


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"), clients=())


@pytest.fixture
def live(made, tmp_path):
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    shutil.copy(made["server.crt"], cert)
    shutil.copy(made["server.key"], key)
    return cert, key


class Recorder(protocol.Protocol):
    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data


def connect(tls, clock, answer=b"go away"):
    reports = []
    factory = tls.wrap(protocol.Factory.forProtocol(Recorder), clock, plain_text_answer=answer,
                       on_plain_text=lambda peer, data: reports.append(("plain", peer, data)),
                       on_handshake_failure=lambda peer, why: reports.append(("slow", peer, why)))
    connection = factory.buildProtocol(address.IPv4Address("TCP", "127.0.0.1", 5555))
    transport = StringTransport(peerAddress=address.IPv4Address("TCP", "192.0.2.7", 40000))
    connection.makeConnection(transport)
    return connection, transport, reports


def test_plain_text_is_answered_and_closed_at_its_first_byte(live):
    clock = Clock()
    connection, transport, reports = connect(ServerTLS(*live), clock, answer=b"HTTP/1.1 400")
    transport.clear()
    connection.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert transport.value() == b"HTTP/1.1 400"
    assert transport.disconnecting
    assert reports == [("plain", "192.0.2.7:40000", b"GET / HTTP/1.1\r\n")]
    assert connection.wrappedProtocol.received == b""
    assert not clock.getDelayedCalls()  # no handshake timer left behind


def test_a_handshake_that_never_ends_is_cut_off(live):
    clock = Clock()
    connection, transport, reports = connect(ServerTLS(*live), clock)
    connection.dataReceived(b"\x16\x03\x01\x00")  # the start of a ClientHello, then nothing
    clock.advance(ServerTLS.handshake_timeout - 0.1)
    assert not transport.disconnecting and reports == []
    clock.advance(0.2)
    assert reports == [("slow", "192.0.2.7:40000", "no TLS handshake within 10 s")]
    assert transport.disconnecting


def test_changed_files_are_loaded_once_and_bad_ones_keep_the_old_pair(live, made, tmp_path):
    cert, key = live
    tls = ServerTLS(cert, key)
    first = tls.certificate
    assert tls.reload_if_changed() is None  # nothing changed

    other = make_certificates(tmp_path / "other", clients=(), prefix="o-")
    shutil.copy(other["server.key"], key)  # key before certificate: the pair does not match
    with pytest.raises(TLSFilesError, match="is not the key of the certificate"):
        tls.reload_if_changed()
    assert tls.reload_if_changed() is None  # reported once, not at every look
    assert tls.certificate == first

    shutil.copy(other["server.crt"], cert)
    renewed = tls.reload_if_changed()
    assert renewed is not None and renewed != first
    assert tls.certificate == renewed
    assert tls.reload_if_changed() is None


def test_a_file_swapped_by_rename_with_the_same_size_and_time_is_seen(live, made, tmp_path):
    cert, key = live
    tls = ServerTLS(cert, key)
    swapped = tmp_path / "swap.crt"
    shutil.copy(made["server.crt"], swapped)
    stat = os.stat(cert)
    os.utime(swapped, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.rename(swapped, cert)  # a new inode: what tools that write atomically do
    assert tls.reload_if_changed() is not None


@pytest.mark.parametrize("mistake, says", [
    ("encrypted key", "protected by a passphrase"),
    ("key as certificate", "holds no PEM certificate"),
    ("missing key", "cannot be read: no such file or directory"),
])
def test_files_that_cannot_be_used_say_what_to_do(live, tmp_path, mistake, says):
    cert, key = live
    if mistake == "encrypted key":
        locked = tmp_path / "locked.key"
        openssl("pkey", "-in", key, "-out", locked, "-aes256", "-passout", "pass:secret",
                cwd=tmp_path)
        files = (cert, locked)
    elif mistake == "key as certificate":
        files = (key, key)
    else:
        files = (cert, tmp_path / "nowhere.key")
    with pytest.raises(TLSFilesError, match=says):
        ServerTLS(*files)
