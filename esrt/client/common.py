"""What the HTTP client (esrt.client) and the binary one (esrt.client.wire) share: their errors,
the Reply, service names and the retry loop. Both import it; neither imports the other's module
to get these.
"""

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


def retry_call(call_once, service, params, idempotency_key, retry_for):
    """Run `call_once(service, params, key)`, retrying as Client.call documents."""
    if retry_for is None:
        return call_once(service, params, idempotency_key)
    key = idempotency_key or uuid.uuid4().hex
    deadline = time.monotonic() + retry_for
    pause = 0.05
    while True:
        try:
            return call_once(service, params, key)
        except (ConnectionFailed, ServiceError) as exc:
            retryable = isinstance(exc, ConnectionFailed) or exc.status == 503
            if not retryable or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
