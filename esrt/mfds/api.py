"""mfds's JSON API, free of any web framework: (method, path, query, body) -> Response.

server.py plugs this into Twisted web; keeping the routing and the rules here lets them read
as plain functions. Every error leaves as {"error": {"code", "message", "fields"?}}.
"""

import json
import os
import signal
from pathlib import Path
from urllib.parse import unquote

import esrt
from esrt.home import Home
from esrt.mfds.daemon import pid_alive
from esrt.mfds.repository import ServerExists, ServerNotFound
from esrt.paths import RegionPaths
from esrt.settings import SettingError
from esrt.states import ServerStatus

MAX_PACKAGE_BYTES = 64 * 1024 * 1024
LIVE_STATES = (ServerStatus.STARTING.value, ServerStatus.STARTED.value,
               ServerStatus.STOPPING.value)


class Response:
    """What the API answers: an HTTP status and a JSON-able body (None = no body)."""

    def __init__(self, status, body=None):
        self.status = status
        self.body = body

    def encode(self):
        """The body as UTF-8 JSON bytes (b"" when there is none)."""
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8") + b"\n"


class ApiError(Exception):
    """An error answer: HTTP status, short machine code, human message, optional fields."""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self):
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return Response(self.status, {"error": error})


def effective_status(document):
    """The mfServerStatus to show for a region's last reported status document.

    A region that said it was running but whose pid is gone died without telling us (SIGKILL,
    OOM, power): it must not keep looking Started.
    """
    if not document:
        return ServerStatus.STOPPED.value
    reported = document.get("mfServerStatus") or ServerStatus.STOPPED.value
    if reported in LIVE_STATES and not pid_alive(document.get("pid")):
        if reported == ServerStatus.STOPPING.value:
            return ServerStatus.STOPPED.value
        return ServerStatus.FAILED.value
    return reported


def _package_name(manifest, filename):
    name = manifest.get("package") or manifest.get("service")
    if not name:
        name = Path(filename or "package.car").stem
    return str(name)


def _programs(manifest):
    return [entry.get("program") for entry in manifest.get("programs") or []
            if isinstance(entry, dict) and entry.get("program")]


class MfdsApi:
    """The routes of mfds's JSON API over one Repository."""

    def __init__(self, repository, home):
        self.repository = repository
        self.home = home if isinstance(home, Home) else Home(home)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, method, path, query=None, body=b""):
        """Answer one request; never raises (unexpected errors become 500 "internal")."""
        try:
            return self._route(method.upper(), path, query or {}, body or b"")
        except ApiError as exc:
            return exc.response()
        except SettingError as exc:
            return ApiError(400, "invalid", f"invalid definition: {exc}",
                            exc.fields).response()
        except ServerNotFound as exc:
            return ApiError(404, "not_found", str(exc)).response()
        except ServerExists as exc:
            return ApiError(409, "exists", str(exc)).response()

    def _route(self, method, path, query, body):
        parts = [unquote(part) for part in path.strip("/").split("/") if part]
        if parts[:1] != ["api"]:
            raise ApiError(404, "not_found", f"no such path {path}: the API lives under /api/")
        parts = parts[1:]
        if parts == ["health"]:
            self._allow(method, path, "GET")
            return Response(200, self.health())
        if parts == ["servers"]:
            self._allow(method, path, "GET", "POST")
            if method == "GET":
                return Response(200, {"servers": [self._server_object(d) for d in
                                                  self.repository.list_servers()]})
            return Response(201, self._server_object(
                self.repository.create_server(self._json(body))))
        if len(parts) == 2 and parts[0] == "servers":
            name = parts[1]
            self._allow(method, path, "GET", "PUT", "DELETE")
            if method == "GET":
                return Response(200, self._server_object(self.repository.get_server(name)))
            if method == "PUT":
                return Response(200, self._server_object(
                    self.repository.update_server(name, self._json(body))))
            self._delete(name)
            return Response(204)
        if len(parts) == 3 and parts[0] == "servers":
            name, leaf = parts[1], parts[2]
            if leaf == "status":
                self._allow(method, path, "GET", "PUT")
                if method == "PUT":
                    self.repository.set_status(name, self._json(body, what="status document"))
                    return Response(204)
                return Response(200, self._status_object(name))
            if leaf == "packages":
                self._allow(method, path, "GET", "POST")
                if method == "GET":
                    return Response(200, {"packages": self.repository.list_packages(name)})
                return Response(201, self.deploy(name, body, query.get("filename")))
            if leaf == "services":
                self._allow(method, path, "GET")
                return Response(200, {"services": self.services(name)})
        raise ApiError(404, "not_found", f"no such path {path}: see /api/servers, /api/health")

    @staticmethod
    def _allow(method, path, *methods):
        if method not in methods:
            raise ApiError(405, "method_not_allowed",
                           f"{method} is not allowed on {path}: use {' or '.join(methods)}")

    @staticmethod
    def _json(body, what="request body"):
        try:
            value = json.loads(body.decode("utf-8") if body else "")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, "bad_json", f"the {what} is not valid JSON ({exc}): send a "
                           "JSON object with Content-Type application/json") from None
        if not isinstance(value, dict):
            raise ApiError(400, "bad_json", f"the {what} must be a JSON object, "
                           f"got {type(value).__name__}")
        return value

    # -- resources -------------------------------------------------------------------------

    def health(self):
        """The /api/health answer."""
        return {"status": "ok", "pid": os.getpid(), "home": str(self.home.root),
                "version": esrt.__version__}

    def _server_object(self, definition):
        name = definition["name"]
        reported = self.repository.get_status(name)
        document, received = reported if reported else (None, None)
        created, updated = self.repository.server_times(name)
        paths = RegionPaths(definition, self.home)
        return {"name": name, "definition": definition,
                "mfServerStatus": effective_status(document),
                "status": document, "received": received,
                "created": created, "updated": updated,
                "paths": {"root": str(paths.root), "data": str(paths.data),
                          "deploy": str(paths.deploy), "casroot": str(paths.casroot)}}

    def _status_object(self, name):
        self.repository.get_server(name)
        reported = self.repository.get_status(name)
        document, received = reported if reported else (None, None)
        return {"name": name, "mfServerStatus": effective_status(document),
                "status": document, "received": received}

    def _live_pid(self, name):
        """The pid of region `name` when it is running, else None."""
        reported = self.repository.get_status(name)
        if not reported:
            return None
        document = reported[0]
        if effective_status(document) in LIVE_STATES:
            return document.get("pid")
        return None

    def _delete(self, name):
        self.repository.get_server(name)
        pid = self._live_pid(name)
        if pid:
            raise ApiError(409, "running", f"server {name} is running (pid {pid}): stop it "
                           f"first with `esrt casstop -r {name}`, then delete it")
        self.repository.delete_server(name)

    def deploy(self, name, data, filename):
        """Install a .car package into server `name`; tell a running region to rescan."""
        definition = self.repository.get_server(name)
        if not data:
            raise ApiError(400, "bad_package", "the request body is empty: send the .car "
                           "file's bytes as the body (POST .../packages?filename=srv01.car)")
        if len(data) > MAX_PACKAGE_BYTES:
            raise ApiError(413, "too_large", f"package of {len(data)} bytes is larger than "
                           f"the limit of {MAX_PACKAGE_BYTES} bytes")
        try:
            from esrt.mapping.car import CarError, install_car
        except ImportError as exc:
            raise ApiError(500, "internal", f"cannot install packages: esrt.mapping.car is "
                           f"not available ({exc})") from None
        deploy_dir = RegionPaths(definition, self.home).deploy
        deploy_dir.mkdir(parents=True, exist_ok=True)
        try:
            manifest = install_car(data, deploy_dir)
        except CarError as exc:
            label = filename or "package"
            raise ApiError(400, "bad_package", f"{label}: {exc}") from None
        package = _package_name(manifest, filename)
        self.repository.record_package(name, package, manifest, len(data))
        programs = _programs(manifest)
        noun = "program" if len(programs) == 1 else "programs"
        message = (f"installed {package} ({len(programs)} {noun}: "
                   f"{', '.join(programs) or 'none'}) into {name}")
        pid = self._live_pid(name)
        if pid:
            try:
                # SIGHUP makes the region rescan its deploy directory.
                os.kill(int(pid), signal.SIGHUP)
                message += f"; region {name} (pid {pid}) told to rescan"
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        return {"manifest": manifest, "package": package, "message": message}

    def services(self, name):
        """The services of server `name`, from its installed packages' manifests and mappings."""
        definition = self.repository.get_server(name)
        deploy_dir = RegionPaths(definition, self.home).deploy
        services = []
        for record in self.repository.list_packages(name):
            package, manifest = record["package"], record["manifest"]
            parameters = self._mapping_parameters(deploy_dir / package, manifest)
            for program in _programs(manifest):
                services.append({"name": f"{package}.{program}", "package": package,
                                 "program": program,
                                 "parameters": parameters.get(program, [])})
        return services

    @staticmethod
    def _mapping_parameters(package_dir, manifest):
        """{program: parameters} from the package's mapping file ({} when it cannot be read)."""
        mapping_name = manifest.get("mapping")
        if not mapping_name:
            return {}
        try:
            document = json.loads((Path(package_dir) / mapping_name).read_text())
        except (OSError, ValueError):
            return {}
        found = {}
        for entry in document.get("programs") or []:
            if isinstance(entry, dict) and entry.get("program"):
                found[entry["program"]] = entry.get("parameters") or []
        return found
