"""TLS on esrt's listeners (the region's and mfds's), with Twisted's own TLS layer.

A listener with a certificate wraps its connections' factory in `ServerTLS.wrap`: TLS 1.2 or
newer, the certificate chain and key read from PEM files, and, with a client CA, a client
certificate required of every caller. Three things a bare `TLSMemoryBIOFactory` does not do:

- The files are watched (`watch`): a changed certificate is loaded for the connections that
  come after it, while the open ones keep the context they shook hands with, so renewing a
  certificate needs no restart and fails no call in flight. Files that cannot be used (a key
  copied before its certificate, say) are reported and the previous pair stays in use.
- A client speaking plain text is answered at once with a short error of its own conversation
  and closed, instead of waiting in the handshake for bytes that never come.
- A client that opens a connection and never finishes its handshake is closed after
  `handshake_timeout` seconds.
"""

import json
import os
import ssl as stdlib_ssl

from cryptography import exceptions, x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import (IOpenSSLClientConnectionCreator,
                                         IOpenSSLServerConnectionCreator)
from twisted.protocols.tls import (BufferingTLSTransport, TLSMemoryBIOFactory,
                                   TLSMemoryBIOProtocol)
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

# Every TLS record starts with its content type; a handshake record (a ClientHello) is 22.
HANDSHAKE_RECORD = 0x16
# Seconds a client gets from connecting to a finished handshake.
HANDSHAKE_TIMEOUT = 10.0
# Seconds between two looks at the certificate files.
WATCH_INTERVAL = 2.0


class TLSFilesError(ValueError):
    """Certificate, key or CA files that cannot be used; the message says what to do."""


def _read(path, what):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise TLSFilesError(f"{what} {path} cannot be read: {exc.strerror.lower()}; check the "
                            "path and that the user running esrt may read it") from None


def _certificates(path, what):
    data = _read(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise TLSFilesError(f"{what} {path} holds no PEM certificate (a file starting with "
                            "-----BEGIN CERTIFICATE-----)")
    return certificates


def _private_key(path):
    data = _read(path, "tls_key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSFilesError(f"tls_key {path} is protected by a passphrase; esrt starts without "
                            "a person at the keyboard, so give it the key unencrypted (`openssl "
                            "pkey -in KEY -out PLAIN`) in a file only its user may read") from None
    except (ValueError, exceptions.UnsupportedAlgorithm) as exc:
        raise TLSFilesError(f"tls_key {path} holds no PEM private key that can be used "
                            f"({exc})") from None


def _public_bytes(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def describe(certificate):
    """'CN=..., expires YYYY-MM-DD' for messages."""
    subject = certificate.subject.rfc4514_string() or "(no subject)"
    return f"{subject}, expires {certificate.not_valid_after_utc:%Y-%m-%d}"


def load_server_options(cert_file, key_file, client_ca_file=None, protocols=()):
    """Twisted CertificateOptions for a server from PEM files; (options, leaf certificate).

    `protocols` are the ALPN names the listener speaks (b"http/1.1" for HTTP). Raises
    TLSFilesError saying which file is wrong and how.
    """
    chain = _certificates(cert_file, "tls_cert")
    key = _private_key(key_file)
    leaf = chain[0]
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise TLSFilesError(f"tls_key {key_file} is not the key of the certificate in "
                            f"tls_cert {cert_file} ({describe(leaf)}); give the key the "
                            "certificate was made for")
    options = ssl.CertificateOptions(privateKey=key, certificate=leaf, extraCertChain=chain[1:],
                                     raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
    # Built now, so that a problem shows at start and not at a client; the options keep this
    # context and hand it to every connection.
    context = options.getContext()
    context.set_alpn_select_callback(_alpn_choice(protocols))
    if client_ca_file:
        _certificates(client_ca_file, "tls_client_ca")  # says what is wrong with the file
        # Every client must present a certificate signed by one of these authorities; OpenSSL
        # reads the file itself and names the authorities when it asks for the certificate.
        context.load_verify_locations(str(client_ca_file))
        context.load_client_ca(str(client_ca_file).encode())
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT)
    return options, leaf


def _alpn_choice(protocols):
    # Twisted's own choice answers an offer it shares nothing with by failing the handshake
    # ("internal error"), and every curl offers h2; no common protocol must simply mean none.
    def choose(connection, offered):
        for name in protocols:
            if name in offered:
                return name
        return SSL.NO_OVERLAPPING_PROTOCOLS
    return choose


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """The TLS side of one listener: its files, the context in use and the file watch."""

    handshake_timeout = HANDSHAKE_TIMEOUT

    def __init__(self, cert_file, key_file, client_ca_file=None, protocols=()):
        """Load the files now; raises TLSFilesError when they cannot be used. `protocols`
        are the ALPN names of what the listener speaks (b"http/1.1" for HTTP)."""
        self.files = tuple(f for f in (cert_file, key_file, client_ca_file) if f)
        self.cert_file, self.key_file, self.client_ca_file = cert_file, key_file, client_ca_file
        self.protocols = tuple(protocols)
        # Stamped before reading: a file changed while it is read is read again later.
        self._stamp = self._stamps()
        self._options, self.certificate = self._load()
        self._refused_stamp = None
        self._watch = None

    @property
    def mutual(self):
        """Whether clients must present a certificate."""
        return bool(self.client_ca_file)

    def serverConnectionForTLS(self, tls_protocol):  # noqa: N802 - Twisted's interface
        return SSL.Connection(self._options.getContext(), None)

    def _stamps(self):
        stamps = []
        for path in self.files:
            try:
                status = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns))
        return tuple(stamps)

    def reload_if_changed(self):
        """Load the files again if any changed since the last load.

        Returns the new certificate when it was loaded, None when nothing changed; raises
        TLSFilesError (once per change) when the changed files cannot be used, and then the
        previous certificate stays in use.
        """
        stamp = self._stamps()
        if stamp == self._stamp or stamp == self._refused_stamp:
            return None
        try:
            options, certificate = self._load()
        except TLSFilesError:
            self._refused_stamp = stamp
            raise
        self._options, self.certificate, self._stamp = options, certificate, stamp
        self._refused_stamp = None
        return certificate

    def _load(self):
        return load_server_options(self.cert_file, self.key_file, self.client_ca_file,
                                   self.protocols)

    def watch(self, reactor, reloaded, refused, interval=WATCH_INTERVAL):
        """Look at the files every `interval` seconds: `reloaded(certificate)` after a reload,
        `refused(problem)` when changed files cannot be used."""
        from twisted.internet import task

        def look():
            try:
                certificate = self.reload_if_changed()
            except TLSFilesError as exc:
                refused(str(exc))
            else:
                if certificate is not None:
                    reloaded(certificate)

        self.stop_watching()
        self._watch = task.LoopingCall(look)
        self._watch.clock = reactor
        self._watch.start(interval, now=False)

    def stop_watching(self):
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        self._watch = None

    def wrap(self, factory, reactor, plain_text_answer=b"", on_plain_text=None,
             on_handshake_failure=None):
        """A factory serving `factory`'s protocol over TLS.

        A client whose first byte cannot start a TLS handshake is sent `plain_text_answer`
        (an error in the words of the listener's own conversation) and closed;
        `on_plain_text(peer, first_bytes)` and `on_handshake_failure(peer, problem)` report.
        """
        wrapped = GuardedTLSFactory(self, False, factory, reactor)
        wrapped.reactor = reactor
        wrapped.handshake_timeout = self.handshake_timeout
        wrapped.plain_text_answer = plain_text_answer
        wrapped.on_plain_text = on_plain_text or (lambda peer, data: None)
        wrapped.on_handshake_failure = on_handshake_failure or (lambda peer, problem: None)
        return wrapped


def http_refusal(message):
    """The answer to an HTTP client speaking plain text to a TLS port: a 400 with the JSON
    error body every esrt HTTP service answers with (code tls_required)."""
    body = json.dumps({"error": {"code": "tls_required", "message": message}}).encode()
    return (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


def peer_text(transport):
    """'HOST:PORT' of a connection's client."""
    try:
        peer = transport.getPeer()
        return f"{peer.host}:{peer.port}"
    except Exception:  # noqa: BLE001 - only for a message
        return "an unknown address"


class GuardedTLS(BufferingTLSTransport):
    """One TLS connection: refuses plain text at its first byte, and a handshake that stalls."""

    _checked_first_byte = False
    _deadline = None
    _refused = False

    def makeConnection(self, transport):  # noqa: N802 - Twisted's interface
        self._deadline = self.factory.reactor.callLater(self.factory.handshake_timeout,
                                                        self._handshake_too_slow)
        super().makeConnection(transport)

    def dataReceived(self, data):
        if not self._checked_first_byte and data:
            self._checked_first_byte = True
            if data[0] != HANDSHAKE_RECORD:
                self._refuse_plain_text(data)
                return
        if self._refused:
            return
        super().dataReceived(data)
        if self._deadline is not None and self._handshakeDone:
            self._cancel_deadline()

    def _refuse_plain_text(self, data):
        self._refused = True
        self._cancel_deadline()
        self.factory.on_plain_text(peer_text(self.transport), data[:16])
        # Straight to the socket: the client reads no TLS, and nothing more is sent or read.
        if self.factory.plain_text_answer:
            self.transport.write(self.factory.plain_text_answer)
        self.transport.loseConnection()

    def _handshake_too_slow(self):
        self._deadline = None
        if not self._handshakeDone and self.transport is not None:
            self.factory.on_handshake_failure(
                peer_text(self.transport),
                f"no TLS handshake within {self.factory.handshake_timeout:g} s")
            self.transport.abortConnection()

    def _cancel_deadline(self):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def connectionLost(self, reason):
        self._cancel_deadline()
        # A failed handshake is kept as the TLS layer's own reason, not the socket's.
        failure = self._reason or reason
        if not self._handshakeDone and not self._refused and failure is not None \
                and isinstance(failure.value, SSL.Error):
            self.factory.on_handshake_failure(peer_text(self.transport),
                                              handshake_problem(failure.value))
        super().connectionLost(reason)


def handshake_problem(exc):
    """OpenSSL's reasons for a failed handshake, in a line."""
    reasons = [item[2] for item in (exc.args[0] if exc.args and isinstance(exc.args[0], list)
                                    else []) if len(item) == 3 and item[2]]
    return "TLS handshake failed: " + ("; ".join(reasons) or str(exc))


class GuardedTLSFactory(TLSMemoryBIOFactory):
    """TLSMemoryBIOFactory building GuardedTLS connections (see ServerTLS.wrap)."""

    protocol = GuardedTLS


def is_tls(transport):
    """Whether a connection's transport is a TLS one (a request came over https://)."""
    return isinstance(transport, TLSMemoryBIOProtocol)


# --- the node's own clients of mfds ------------------------------------------------------------
#
# The CLI, the regions and the daemon's start-up check reach the mfds of their node through
# the URL in mfds.json, which also names mfds's certificate file. They trust exactly that
# certificate (a pin): the node's own file is a stronger proof than any CA's signature, and
# the address in mfds.json (127.0.0.1 for a wildcard bind) need not be a name the certificate
# was made for.

def pinned_certificate(cert_file):
    """The first (leaf) certificate of a PEM file, as cryptography's object."""
    return _certificates(cert_file, "mfds certificate")[0]


def pinned_client_context(cert_file):
    """A client SSLContext (standard library) that accepts only the certificate of `cert_file`."""
    context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = stdlib_ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the pin names the one certificate; see above
    context.verify_mode = stdlib_ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=pinned_certificate(cert_file).public_bytes(
        serialization.Encoding.PEM).decode("ascii"))
    # The pinned certificate is a trust anchor of its own, not only the CA's child.
    context.verify_flags |= stdlib_ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def mfds_agent(reactor, url, cert_file, timeout):
    """A Twisted web client for the node's mfds at `url` (None without one): over https://,
    trusting only mfds's certificate file."""
    if not url:
        return None
    from twisted.web.client import Agent
    policy = {}
    if cert_file and url.startswith("https:"):
        policy["contextFactory"] = PinnedPolicy(cert_file)
    return Agent(reactor, connectTimeout=timeout, **policy)


@implementer(IPolicyForHTTPS, IOpenSSLClientConnectionCreator)
class PinnedPolicy:
    """The same pin for Twisted's web client (twisted.web.client.Agent's contextFactory).

    mfds reloads a renewed certificate without a restart; the pin follows its file, read
    again whenever the file changes, so regions keep reaching it."""

    def __init__(self, cert_file):
        self.cert_file = cert_file
        self._stamp = None
        self.pinned = None
        self._load_pin()
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        self._context = context

    def _verify(self, connection, certificate, error, depth, preverified):
        # Only the server's own certificate counts, and it must be the pinned one, byte for
        # byte; what signed it does not matter then.
        if depth > 0:
            return True
        return certificate.to_cryptography().public_bytes(
            serialization.Encoding.DER) == self.pinned

    def _load_pin(self):
        try:
            status = os.stat(self.cert_file)
        except OSError:
            return
        stamp = (status.st_ino, status.st_size, status.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            self.pinned = pinned_certificate(self.cert_file).public_bytes(
                serialization.Encoding.DER)
        except TLSFilesError:
            if self.pinned is None:
                raise
            return  # half written: keep the previous pin and look again next time
        self._stamp = stamp

    def creatorForNetloc(self, hostname, port):  # noqa: N802 - Twisted's interface
        return self

    def clientConnectionForTLS(self, tls_protocol):  # noqa: N802 - Twisted's interface
        self._load_pin()
        return SSL.Connection(self._context, None)
