"""The mfds process: Twisted web serving the JSON API of esrt.mfds.api and the admin pages.

Life cycle: lock the pid file (one mfds per home), open the repository, bind, write mfds.pid and
mfds.json, serve; on SIGTERM/SIGINT stop and remove both files. Regions started from the admin
pages are detached, so killing mfds leaves every region running.

Security: mfds listens on 127.0.0.1 by default and refuses any other address until an admin
account exists (`esrt mfds user add`). Once any account exists, every request but
GET /api/health must be authenticated (see esrt.mfds.web.auth and esrt.mfds.users).
"""

import argparse
import fcntl
import ipaddress
import os
import sqlite3
import sys
from datetime import datetime, timezone

from twisted.internet import error as twisted_error
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web import resource, server

from esrt.home import Home, write_json_atomic
from esrt.mfds.api import MfdsApi
from esrt.mfds.api.packages import MAX_PACKAGE_BYTES
from esrt.mfds.api.routes import ApiError, Later
from esrt.mfds.repository import Repository, RepositoryError
from esrt.mfds.users import UserStore, ensure_node_token
from esrt.settings import format_address, parse_address
from esrt.states import ExitCode

DEFAULT_LISTEN = "127.0.0.1:8686"
# JSON documents are small; only package uploads are big. Anything larger than a package plus
# headroom is refused before it is buffered.
MAX_BODY = MAX_PACKAGE_BYTES + 1024 * 1024


class _Discard:
    """Stands in for a request body that is too large: counts the bytes and drops them."""

    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)

    def seek(self, *args):
        return 0

    def tell(self):
        return 0

    def read(self, *args):
        return b""

    def close(self):
        pass


class MfdsRequest(server.Request):
    """A Request that refuses oversized bodies without holding them in memory or on disk."""

    too_large = False

    def gotLength(self, length):
        if length is not None and length > MAX_BODY:
            self.too_large = True
            self.content = _Discard()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        # Chunked bodies announce no length: stop keeping them once they pass the limit.
        if not self.too_large and self.content.tell() + len(data) > MAX_BODY:
            self.too_large = True
            self.content.close()
            self.content = _Discard()
        self.content.write(data)


class ApiResource(resource.Resource):
    """One leaf resource answering every /api/ path through MfdsApi.

    With a `gate` (esrt.mfds.web.auth.Gate) every call but GET /api/health is authenticated
    first: 401 without valid credentials once accounts exist, 403 for a cookie session's state
    change without its CSRF token.
    """

    isLeaf = True

    def __init__(self, api, log, gate=None):
        super().__init__()
        self.api = api
        self.log = log
        self.gate = gate

    def render(self, request):
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("utf-8", "replace")
        query = {key.decode("utf-8", "replace"): values[-1].decode("utf-8", "replace")
                 for key, values in (request.args or {}).items() if values}
        who = None
        if getattr(request, "too_large", False):
            answer = ApiError(413, "too_large", f"request body is larger than {MAX_BODY} "
                              "bytes: packages are limited to 64 MiB").response()
        else:
            answer = None
            if self.gate is not None and not self.api.is_public(path):
                who, refusal = self.gate.api_principal(request, method.upper())
                if refusal:
                    answer = ApiError(*refusal).response()
                    if refusal[0] == 401:
                        request.setHeader(b"WWW-Authenticate", b'Basic realm="esrt mfds"')
            if answer is None:
                body = request.content.read() if request.content is not None else b""
                try:
                    answer = self.api.handle(method, path, query, body, who)
                except Exception as exc:  # noqa: BLE001 - mfds must answer, never die of a bug
                    self.log(f"internal error on {method} {path}: {exc!r}")
                    answer = ApiError(500, "internal", f"mfds internal error: {exc}").response()
        if isinstance(answer, Later):
            # Starting or stopping a region takes seconds: never in the reactor thread.
            deferred = deferToThread(answer.run)
            deferred.addErrback(lambda failure: ApiError(
                500, "internal", f"mfds internal error: {failure.getErrorMessage()}").response())
            deferred.addCallback(self._finish, request, method, path, who)
            return server.NOT_DONE_YET
        return self._payload(request, answer, method, path, who)

    def _payload(self, request, answer, method, path, who):
        request.setResponseCode(answer.status)
        payload = answer.encode()
        if payload:
            request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        user = f" ({who.name})" if who is not None and who.via != "token" else ""
        self.log(f"{method} {path} {answer.status}{user}")
        return payload

    def _finish(self, answer, request, method, path, who):
        payload = self._payload(request, answer, method, path, who)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(payload)
            request.finish()


class _QuietSite(server.Site):
    """Site without Twisted's access log: ApiResource writes its own short line."""

    requestFactory = MfdsRequest
    noisy = False

    def log(self, request):
        pass


def _stderr_log(line):
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} mfds[{os.getpid()}] {line}\n")
    sys.stderr.flush()


class PidLock:
    """mfds.pid held under an exclusive flock for the life of the process.

    The kernel drops the lock when the process dies, however it dies, so a stale pid file left
    by a killed mfds is simply taken over.
    """

    def __init__(self, path):
        self.path = path
        self._fd = None

    def acquire(self):
        """Lock the file; return None on success, else the pid written by the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            return holder or "unknown"
        self._fd = fd
        return None

    def write_pid(self):
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self):
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None


def parse_arguments(argv=None):
    """Parse `python -m esrt.mfds` arguments."""
    parser = argparse.ArgumentParser(prog="esrt mfds", description="Run the node's directory "
                                     "server (configuration repository and JSON API).")
    parser.add_argument("--listen", default=DEFAULT_LISTEN,
                        help=f"ip:port to listen on (default {DEFAULT_LISTEN}; port 0 = any free)")
    parser.add_argument("--home", default=None, help="ESRT_HOME to serve (default $ESRT_HOME "
                        "or ~/.esrt)")
    add_tls_arguments(parser)
    return parser.parse_args(argv)


def add_tls_arguments(parser):
    """mfds's TLS options, shared by `python -m esrt.mfds` and `esrt mfds`."""
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (and chain) for "
                        "https://; reloaded when the file changes")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")


def tls_arguments(args):
    """The TLS options of `args` again as arguments, with full paths (for the daemon)."""
    argv = []
    for option in ("tls_cert", "tls_key"):
        value = getattr(args, option, None)
        if value:
            argv += ["--" + option.replace("_", "-"), os.path.abspath(value)]
    return argv


def _tls_problem(args):
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together: give the certificate and its key"
    return None


def is_loopback(host):
    """True for 127.0.0.0/8, ::1 and "localhost"; False for '*' and any other name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fail(message):
    sys.stderr.write(f"esrt mfds: {message}\n")
    sys.stderr.flush()
    return int(ExitCode.ERROR)


def main(argv=None, reactor=None):
    """Run mfds in the foreground until SIGTERM/SIGINT; return the process exit code."""
    args = parse_arguments(argv)
    try:
        host, port = parse_address(args.listen)
    except ValueError as exc:
        return _fail(f"--listen: {exc}")
    interface = "" if host == "*" else host
    home = Home(args.home)
    try:
        home.ensure()
    except OSError as exc:
        return _fail(f"cannot create ESRT_HOME {home.root}: {exc.strerror}; choose another "
                     "with --home or $ESRT_HOME")

    lock = PidLock(home.mfds_pid)
    holder = lock.acquire()
    if holder is not None:
        info = home.read_mfds_info() or {}
        return _fail(f"an mfds is already running for ESRT_HOME={home.root} (pid {holder}, "
                     f"{info.get('url', 'url unknown')}): stop it with `esrt mfds --stop` or "
                     "use another --home")
    problem = _tls_problem(args)
    if problem:
        return _fail(problem)
    try:
        return _serve(args, home, lock, interface, port, reactor)
    finally:
        lock.release()


def _serve(args, home, lock, interface, port, reactor):
    if reactor is None:
        from twisted.internet import reactor
    try:
        repository = Repository(home.repository)
    except (RepositoryError, OSError, sqlite3.Error) as exc:
        return _fail(f"cannot open the repository {home.repository}: {exc}; check the file "
                     "and its directory permissions")

    try:
        users = UserStore(home.repository)
    except (OSError, sqlite3.Error) as exc:
        repository.close()
        return _fail(f"cannot open the accounts in {home.repository}: {exc}")
    if not is_loopback(interface or "*") and not users.has_admin():
        repository.close()
        return _fail(f"refusing to listen on {args.listen}: it is reachable from other "
                     "machines and no admin account exists yet. Add one with `esrt mfds user "
                     "add NAME --password PASSWORD --role admin`, then start mfds again (or "
                     "listen on 127.0.0.1)")
    try:
        token = ensure_node_token(home)
    except OSError as exc:
        repository.close()
        return _fail(f"cannot write the node token in {home.root}: {exc.strerror}; check the "
                     "directory's permissions")

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)],
                                     redirectStandardIO=False)
    from esrt.mfds.web import RootResource
    from esrt.mfds.web.auth import Gate
    from esrt.mfds.web.pages import Pages
    api = MfdsApi(repository, home, users, log=_stderr_log)
    gate = Gate(users, token)
    api.accounts.on_password_change = gate.sessions.drop_user
    site = _QuietSite(RootResource(ApiResource(api, _stderr_log, gate),
                                   Pages(api, gate, _stderr_log)))
    tls = None
    if args.tls_cert:
        from esrt.node.tls import ServerTLS, TLSFilesError, describe, http_refusal
        try:
            # No client CA here: mfds knows its callers by account, session and node token,
            # and its own regions and commands hold no client certificate.
            tls = ServerTLS(os.path.abspath(args.tls_cert), os.path.abspath(args.tls_key),
                            protocols=(b"http/1.1",))
        except TLSFilesError as exc:
            repository.close()
            return _fail(f"cannot serve https: {exc}")
        site = tls.wrap(
            site, reactor,
            plain_text_answer=http_refusal("mfds speaks TLS only: use https://HOST:PORT"),
            on_plain_text=lambda peer, data: _stderr_log(
                f"refused {peer}: it sent plain text ({data!r}) to the TLS port; it must "
                "use https://"),
            on_handshake_failure=lambda peer, problem: _stderr_log(f"client {peer}: {problem}"))
        tls.watch(reactor, lambda certificate: _stderr_log(
            f"certificate reloaded from {tls.cert_file} ({describe(certificate)}); new "
            "connections use it"), lambda problem: _stderr_log(
            f"the changed TLS files cannot be used: {problem}; the previous certificate stays "
            "in use"))
    elif not is_loopback(interface or "*"):
        _stderr_log(f"warning: listening on {args.listen} without TLS: passwords and session "
                    "cookies cross the network in clear text; give --tls-cert and --tls-key")
    try:
        port_object = reactor.listenTCP(port, site, interface=interface or "")
    except twisted_error.CannotListenError as exc:
        reason = getattr(exc.socketError, "strerror", None) or str(exc.socketError)
        repository.close()
        return _fail(f"cannot listen on {args.listen}: {reason.lower()}; choose another "
                     "with --listen")

    address = port_object.getHost()
    listen = format_address(interface or "*", address.port)
    # A wildcard bind is reached locally through the loopback address.
    shown_host = "127.0.0.1" if interface in ("", "0.0.0.0") else (
        "::1" if interface == "::" else interface)
    url_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    url = f"{'https' if tls else 'http'}://{url_host}:{address.port}"
    lock.write_pid()
    info = {"url": url, "pid": os.getpid(), "listen": listen, "home": str(home.root),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if tls is not None:
        # The node's own clients trust exactly this certificate (esrt.node.tls).
        info["tls_cert"] = tls.cert_file
    write_json_atomic(home.mfds_info, info)
    _stderr_log(f"listening on {listen} ({url}), ESRT_HOME={home.root}")
    # Under systemd (Type=notify, esrt.node.units): started once the reactor serves, so that
    # the servers ordered after mfds find it answering.
    from esrt.node.sdnotify import notify, take_socket
    take_socket()
    reactor.callWhenRunning(notify, "READY=1", f"STATUS=listening on {listen} ({url})")
    reactor.addSystemEventTrigger("before", "shutdown", notify, "STOPPING=1")
    reactor.callWhenRunning(api.stores.start, reactor)
    reactor.addSystemEventTrigger("before", "shutdown", api.stores.stop)

    try:
        reactor.run()
    finally:
        _remove_info(home)
        repository.close()
        users.close()
        _stderr_log("stopped")
    return int(ExitCode.OK)


def _remove_info(home):
    info = home.read_mfds_info()
    if info is not None and info.get("pid") == os.getpid():
        try:
            os.unlink(home.mfds_info)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    sys.exit(main())
