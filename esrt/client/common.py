"""What the HTTP client (esrt.client) and the binary one (esrt.client.wire) share: their errors,
the Reply, service names and the retry loop. Both import it; neither imports the other's module
to get these.
"""

import ssl
import time
import urllib.parse
import uuid


class ServiceError(Exception):
    """The service answered with an error: `status` (HTTP), `code` (stable) and `message`."""

    def __init__(self, status, code, message):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ConnectionFailed(Exception):
    """No answer from the listener (refused, reset, timed out)."""


class Reply(dict):
    """The output parameters of one call, plus the program's RETURN-CODE."""

    return_code = 0


def service_path(service):
    """'srv01.CBLAPP01' -> '/services/srv01/CBLAPP01'."""
    package, dot, program = service.partition(".")
    if not dot or not package or not program or "/" in service:
        raise ValueError(f"service {service!r} must be named PACKAGE.PROGRAM, e.g. srv01.CBLAPP01")
    return f"/services/{urllib.parse.quote(package)}/{urllib.parse.quote(program)}"


# Answers that a retry with the same idempotency key may turn into the call's reply: no SEP
# free or the region stopping (503), and, from a proxy in front of regions, a region that
# died in the middle of the call (502) or did not answer in time (504).
RETRIED_STATUSES = (502, 503, 504)

# Pauses between retries: short at first, doubling, at most half a second. What they wait for
# (a takeover, a database failover) ends at no predictable moment, and the caller waits on
# average half the last pause beyond it: half a second of pause costs a waiting caller two
# calls a second, each answered at once (503, or a refused connection).
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 0.5


def pauses():
    """The pauses between retries, one after the other (for ever)."""
    pause = FIRST_PAUSE
    while True:
        yield pause
        pause = min(pause * 2, LONGEST_PAUSE)


def retry_call(call_once, service, params, idempotency_key, retry_for):
    """Run `call_once(service, params, key)`, retrying as Client.call documents."""
    if retry_for is None:
        return call_once(service, params, idempotency_key)
    key = idempotency_key or uuid.uuid4().hex
    deadline = time.monotonic() + retry_for
    for pause in pauses():
        try:
            return call_once(service, params, key)
        except (ConnectionFailed, ServiceError) as exc:
            retryable = isinstance(exc, ConnectionFailed) or exc.status in RETRIED_STATUSES
            if not retryable or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)


def tls_context(ca_file=None, cert_file=None, key_file=None):
    """The client side of TLS: TLS 1.2 or newer, the server's certificate checked against
    `ca_file` (the system's CAs when None) and its name against the URL's host; with
    `cert_file` (and `key_file` when the key is apart) a client certificate for mutual TLS.

    Raises ValueError naming the file that cannot be used.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"CA file {ca_file} cannot be used: {exc}; give a PEM file of the "
                             "certificate(s) that signed the server's certificate") from None
    if key_file and not cert_file:
        raise ValueError(f"a client key ({key_file}) needs its certificate file as well")
    if cert_file:
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except (OSError, ssl.SSLError) as exc:
            key_shown = key_file or "in the same file"
            raise ValueError(f"client certificate {cert_file} (key {key_shown}) cannot be "
                             f"used: {exc}") from None
    return context


def connection_problem(url, exc, tls=False):
    """What went wrong reaching `url`, with what to do for the TLS cases (`tls`: the
    connection was a TLS one)."""
    text = f"{url}: {exc}"
    if tls and isinstance(exc, ConnectionError):
        # With TLS 1.3 a server refuses a missing client certificate after the client's side
        # of the handshake is done, so the client often sees only the connection closing.
        return (text + "; the listener closed the TLS connection: when it asks for client "
                "certificates, give one (cert_file=..., --cert FILE) signed by a CA it trusts")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (text + "; the server's certificate is not trusted here: give the CA that "
                "signed it (ca_file=..., --cacert FILE), and use the name or address the "
                "certificate was made for")
    if isinstance(exc, ssl.SSLError):
        return (text + "; the TLS handshake failed: check that the listener speaks TLS "
                "(https://, esrts://) and, when it asks for client certificates, give one "
                "(cert_file=..., --cert FILE)")
    return text


def authorization(token=None, user=None, password=None):
    """The Authorization header value for an API token or an account's name and password
    (None without either)."""
    if token and user:
        raise ValueError("give a token or a user name and password, not both")
    if token:
        return f"Bearer {token}"
    if user:
        import base64
        pair = f"{user}:{password or ''}".encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None
