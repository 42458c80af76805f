"""A synchronous client of mfds's JSON API (standard library only).

Used by the CLI, by a region at boot to fetch its definition, and by tests; the node token's
file and header are shared with mfds (which checks them) and with the region's status reports.
Two errors only: MfdsUnavailable when nothing answers, MfdsError when mfds answered with an
error.

Credentials, first found wins: explicit user/password, $ESRT_MFDS_USER/$ESRT_MFDS_PASSWORD
(HTTP Basic), then the node token of the home ($ESRT_HOME/mfds.token, readable by the node's
owner only). Without any, requests go unauthenticated (fine until an account exists).

An https:// mfds is trusted, first found wins: through the certificate file its mfds.json
names (the node's own mfds, pinned: esrt.node.tls), through `ca_file` or $ESRT_MFDS_CA (a PEM
file of the CA that signed it), or through the system's CAs.
"""

import base64
import http.client
import json
import os
import socket
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from esrt.home import Home

TOKEN_HEADER = "X-Esrt-Node-Token"
TOKEN_FILE = "mfds.token"


class MfdsUnavailable(Exception):
    """No mfds answers for this home (not started, stopped, or unreachable)."""

    def __init__(self, home=None, url=None, reason=None):
        self.home = home
        self.url = url
        self.reason = reason
        where = f"ESRT_HOME={home}" if home is not None else "this node"
        at = f" ({url})" if url else ""
        why = f" ({reason})" if reason else ""
        super().__init__(f"no mfds answers for {where}{at}: start one with "
                         f"`esrt mfds --daemon`{why}")


class MfdsError(Exception):
    """mfds refused a request: HTTP status, error code, message and per-setting fields."""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})

    def __str__(self):
        return self.message


class MfdsClient:
    """Talks to one mfds at `url` (e.g. http://127.0.0.1:8686)."""

    def __init__(self, url, timeout=10.0, home=None, user=None, password=None, token=None,
                 pinned_cert=None, ca_file=None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"mfds url {url!r} must look like http://127.0.0.1:8686 or "
                             "https://HOST:PORT")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.home = home
        self._host = parts.hostname
        self._tls = None
        if parts.scheme == "https":
            self._tls = _mfds_tls_context(url, pinned_cert,
                                          ca_file or os.environ.get("ESRT_MFDS_CA") or None)
        self._port = parts.port or (443 if self._tls else 80)
        if user is None:
            user = os.environ.get("ESRT_MFDS_USER") or None
            password = os.environ.get("ESRT_MFDS_PASSWORD", "") if user else None
        self.user = user
        self._password = password
        if token is None and user is None and home is not None:
            token = read_node_token(home)
        self._token = token

    def _auth_headers(self):
        if self.user is not None:
            pair = f"{self.user}:{self._password or ''}".encode("utf-8")
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        if self._token:
            return {TOKEN_HEADER: self._token}
        return {}

    @classmethod
    def from_home(cls, home=None, timeout=10.0):
        """A client for the mfds of `home` (default $ESRT_HOME), from its mfds.json."""
        home = home if isinstance(home, Home) else Home(home)
        info = home.read_mfds_info()
        if not info or not info.get("url"):
            raise MfdsUnavailable(home.root, reason="no mfds.json")
        return cls(info["url"], timeout=timeout, home=home.root,
                   pinned_cert=info.get("tls_cert"))

    # -- transport -------------------------------------------------------------------------

    def _request(self, method, path, body=None, content_type="application/json"):
        headers = {"Accept": "application/json"}
        headers.update(self._auth_headers())
        if body is not None:
            headers["Content-Type"] = content_type
        if self._tls is not None:
            connection = http.client.HTTPSConnection(self._host, self._port,
                                                     timeout=self.timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port,
                                                    timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            reply = connection.getresponse()
            data = reply.read()
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            raise MfdsUnavailable(self.home, self.url, reason=str(exc) or type(exc).__name__) \
                from None
        finally:
            connection.close()
        document = None
        if data:
            try:
                document = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise MfdsError(reply.status, "bad_reply", f"{self.url} answered {method} {path} "
                                f"with status {reply.status} and a body that is not JSON: is it "
                                "really mfds?") from None
        if reply.status >= 400:
            error = document.get("error") if isinstance(document, dict) else None
            if not isinstance(error, dict):
                error = {"code": "http_error", "message": f"{method} {path}: HTTP {reply.status}"}
            if reply.status == 401:
                error = dict(error, message=f"mfds at {self.url} refused {method} {path}: "
                             f"{error.get('message')}. Set ESRT_MFDS_USER and "
                             "ESRT_MFDS_PASSWORD to an account's name and password")
            raise MfdsError(reply.status, error.get("code", "error"),
                            error.get("message", f"HTTP {reply.status}"), error.get("fields"))
        return document

    def _json(self, method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        return self._request(method, path, body)

    @staticmethod
    def _server_path(name, leaf=None):
        path = f"/api/servers/{quote(str(name), safe='')}"
        return f"{path}/{leaf}" if leaf else path

    # -- API -------------------------------------------------------------------------------

    def health(self):
        """{"status": "ok", "pid", "home", "version"}."""
        return self._json("GET", "/api/health")

    def list_servers(self):
        """Every server object, sorted by name."""
        return self._json("GET", "/api/servers")["servers"]

    def get_server(self, name):
        """The server object of `name`: definition, mfServerStatus, status, paths."""
        return self._json("GET", self._server_path(name))

    def create_server(self, definition):
        """Create a server from `definition`; return the server object."""
        return self._json("POST", "/api/servers", definition)

    def update_server(self, name, changes):
        """Apply partial `changes` to server `name`; return the server object."""
        return self._json("PUT", self._server_path(name), changes)

    def delete_server(self, name):
        """Delete server `name` (refused with 409 while it runs)."""
        self._json("DELETE", self._server_path(name))

    def report_status(self, name, status):
        """Report region `name`'s status document."""
        self._json("PUT", self._server_path(name, "status"), status)

    def deploy(self, name, car_bytes, filename):
        """Install a .car package into server `name`; return {"manifest", "package", "message"}."""
        path = self._server_path(name, "packages") + "?" + urlencode({"filename": filename})
        return self._request("POST", path, bytes(car_bytes), "application/octet-stream")

    def list_packages(self, name):
        """[{"package", "manifest", "installed", "size"}] installed in server `name`."""
        return self._json("GET", self._server_path(name, "packages"))["packages"]

    def list_services(self, name):
        """[{"name", "package", "program", "parameters"}] of server `name`."""
        return self._json("GET", self._server_path(name, "services"))["services"]

    def start_server(self, name):
        """Start region `name` through mfds; return {"name", "pid", "message"}."""
        return self._json("POST", self._server_path(name, "start"))

    def stop_server(self, name, force=False):
        """Stop region `name` through mfds (force kills it); return {"name", "message"}."""
        path = self._server_path(name, "stop") + ("?force=true" if force else "")
        return self._json("POST", path)

    def console(self, name, which="log", lines=200, search=None):
        """Tail of console.log (which="log") or console.bak ("bak"), optionally searched."""
        query = {"file": which, "lines": lines}
        if search:
            query["search"] = search
        return self._json("GET", self._server_path(name, "console") + "?" + urlencode(query))


def _mfds_tls_context(url, pinned_cert, ca_file):
    import ssl
    from esrt.node.tls import TLSFilesError, pinned_client_context
    try:
        if pinned_cert:
            return pinned_client_context(pinned_cert)
        context = ssl.create_default_context(cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
    except (TLSFilesError, OSError, ssl.SSLError) as exc:
        source = f"mfds's certificate {pinned_cert}" if pinned_cert else f"the CA file {ca_file}"
        raise MfdsUnavailable(url=url, reason=f"{source} cannot be used to check {url}: "
                              f"{exc}") from None


def read_node_token(home):
    """The node token of `home`, or None when it cannot be read (not the node's owner)."""
    root = home.root if isinstance(home, Home) else home
    try:
        return (Path(root) / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
