"""The mfds process: Twisted web serving the JSON API of esrt.mfds.api over the repository.

Life cycle: lock the pid file (one mfds per home), open the repository, bind, write mfds.pid and
mfds.json, serve; on SIGTERM/SIGINT stop and remove both files. mfds never starts regions, so
killing it leaves every region running.
"""

import argparse
import fcntl
import os
import sqlite3
import sys
from datetime import datetime, timezone

from twisted.internet import error as twisted_error
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web import resource, server

from esrt.home import Home, write_json_atomic
from esrt.mfds.api import MAX_PACKAGE_BYTES, ApiError, MfdsApi
from esrt.mfds.repository import Repository, RepositoryError
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
    """One leaf resource answering every path through MfdsApi."""

    isLeaf = True

    def __init__(self, api, log):
        super().__init__()
        self.api = api
        self.log = log

    def render(self, request):
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("utf-8", "replace")
        query = {key.decode("utf-8", "replace"): values[-1].decode("utf-8", "replace")
                 for key, values in (request.args or {}).items() if values}
        if getattr(request, "too_large", False):
            answer = ApiError(413, "too_large", f"request body is larger than {MAX_BODY} "
                              "bytes: packages are limited to 64 MiB").response()
        else:
            body = request.content.read() if request.content is not None else b""
            try:
                answer = self.api.handle(method, path, query, body)
            except Exception as exc:  # noqa: BLE001 - mfds must answer, never die of a bug
                self.log(f"internal error on {method} {path}: {exc!r}")
                answer = ApiError(500, "internal", f"mfds internal error: {exc}").response()
        request.setResponseCode(answer.status)
        payload = answer.encode()
        if payload:
            request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        self.log(f"{method} {path} {answer.status}")
        return payload


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
    return parser.parse_args(argv)


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

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)],
                                     redirectStandardIO=False)
    site = _QuietSite(ApiResource(MfdsApi(repository, home), _stderr_log))
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
    url = f"http://{url_host}:{address.port}"
    lock.write_pid()
    info = {"url": url, "pid": os.getpid(), "listen": listen, "home": str(home.root),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json_atomic(home.mfds_info, info)
    _stderr_log(f"listening on {listen} ({url}), ESRT_HOME={home.root}")

    try:
        reactor.run()
    finally:
        _remove_info(home)
        repository.close()
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
