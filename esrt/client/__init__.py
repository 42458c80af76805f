"""Python API for calling esrt services: `Client(url).call("srv01.CBLAPP01", {...})`.

One Client keeps one HTTP/1.1 keep-alive connection to a listener; `Client("esrt://HOST:PORT")`
returns an esrt.client.wire.WireClient instead, which speaks the binary conversation "esrt"
with the same calls and errors, plus call_many() to pipeline. Numbers come back as int or
decimal.Decimal (never binary floats) so that COBOL amounts survive the trip exactly.

A listener with TLS is reached as https://HOST:PORT or esrts://HOST:PORT, with `ca_file` when
its certificate is not signed by a CA of the system, and `cert_file`/`key_file` when it asks
for client certificates.

`Client([url, url, ...])` calls through several listeners serving the same services, moving to
the next when one fails and keeping the call's idempotency key (esrt.client.failover).
"""

import http.client
import urllib.parse

# Users import these from here too (`from esrt.client import ServiceError`); they live in
# common so that wire shares them without importing this module.
from esrt.client.common import (ConnectionFailed, Reply, ServiceError, authorization,
                                connection_problem, retry_call, service_path, tls_context)
from esrt.client.failover import FailoverClient
from esrt.client.wire import WireClient
from esrt.mapping import jsonio


class Client:
    """Calls services of one listener over one keep-alive connection."""

    def __new__(cls, url, *args, **kwargs):
        if cls is Client and isinstance(url, (list, tuple)):
            # Several listeners: a FailoverClient of one client each (not a Client either).
            return FailoverClient(url, Client, *args, **kwargs)
        if cls is Client and isinstance(url, str) and url.lower().startswith(("esrt://",
                                                                              "esrts://")):
            # A binary listener: the WireClient is not a Client, so its own __init__ has
            # already run and Python does not run Client.__init__ on it.
            return WireClient(url, None, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, url, timeout=60.0, ca_file=None, cert_file=None, key_file=None,
                 token=None, user=None, password=None):
        """`url` is http://HOST:PORT or https://HOST:PORT; the files are for TLS (see
        esrt.client.common.tls_context); `token` (an API token) or `user` and `password` (an
        account) for a listener that authenticates its callers."""
        self.authorization = authorization(token, user, password)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"URL {url!r} must look like http://HOST:PORT, https://HOST:PORT, "
                             "esrt://HOST:PORT or esrts://HOST:PORT (the listener's address)")
        if parsed.scheme == "http" and (ca_file or cert_file or key_file):
            raise ValueError(f"URL {url!r} is plain HTTP, so its certificate files would not be "
                             "used: write https:// for a listener with TLS")
        self.url = url
        self.host = parsed.hostname
        self.tls = (tls_context(ca_file, cert_file, key_file) if parsed.scheme == "https"
                    else None)
        self.port = parsed.port or (443 if self.tls else 80)
        self.timeout = timeout
        self._connection = None
        self._reused = False

    def _connect(self):
        if self._connection is None:
            if self.tls is not None:
                self._connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.tls)
            else:
                self._connection = http.client.HTTPConnection(self.host, self.port,
                                                              timeout=self.timeout)
            self._reused = False
        return self._connection

    @property
    def connected(self):
        """True while a connection is open: the next call goes over it instead of a new one."""
        return self._connection is not None

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def request(self, method, path, body=b"", headers=None):
        """Send one request; return (status, headers, body bytes)."""
        all_headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if self.authorization:
            all_headers["Authorization"] = self.authorization
        all_headers.update(headers or {})
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=all_headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                was_reused = self._reused
                self.close()
                # A keep-alive connection the server closed while idle fails on first use; the
                # request never reached a program, so sending it once more is safe.
                if attempt == 1 and was_reused:
                    continue
                raise ConnectionFailed(connection_problem(f"{self.url}: connection lost",
                                                          exc, self.tls is not None)) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise ConnectionFailed(connection_problem(self.url, exc)) from None
            self._reused = True
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, response, data
        raise AssertionError("unreachable")

    def call(self, service, params=None, idempotency_key=None, retry_for=None):
        """Call PACKAGE.PROGRAM with a dict of in/io parameters; return a Reply of out/io values.

        With `retry_for` (seconds), connection failures and 503 answers (no SEP free, server
        stopping, a takeover in progress; 502 and 504 from a proxy in front of regions) are
        retried until that deadline with one idempotency
        key (generated when not given), so a call that committed before its reply was lost
        returns that reply instead of running twice.
        """
        return retry_call(self._call_once, service, params, idempotency_key, retry_for)

    def _call_once(self, service, params, idempotency_key):
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        status, response, data = self.request("POST", service_path(service),
                                              jsonio.dumps(params or {}), headers)
        try:
            decoded = jsonio.loads(data) if data else {}
        except ValueError:
            decoded = None
        if status != 200:
            error = decoded.get("error") if isinstance(decoded, dict) else None
            if isinstance(error, dict):
                raise ServiceError(status, error.get("code", "error"), error.get("message", ""))
            raise ServiceError(status, "http_error",
                               f"HTTP {status}: {data[:200].decode('utf-8', 'replace')}")
        if not isinstance(decoded, dict):
            raise ServiceError(status, "bad_reply", "the service's reply is not a JSON object")
        reply = Reply(decoded)
        reply.return_code = int(response.getheader("Esrt-Return-Code", "0") or 0)
        return reply


def call(url, service, params=None, timeout=60.0, idempotency_key=None, retry_for=None,
         **tls_files):
    """Call one service on a fresh connection (see Client.call for the retry options and
    Client for the TLS files and credentials)."""
    with Client(url, timeout=timeout, **tls_files) as client:
        return client.call(service, params, idempotency_key, retry_for)
