"""The packages resource: .car archives deployed into a server, and the services they hold."""

import json
import os
import signal
from pathlib import Path

from esrt.mfds.api.routes import ApiError, Later, Response, Route, schema_ref
from esrt.node.members import StoreUnavailable, member_name, package_digest
from esrt.paths import RegionPaths

MAX_PACKAGE_BYTES = 64 * 1024 * 1024


def _package_name(manifest, filename):
    name = manifest.get("package") or manifest.get("service")
    if not name:
        name = Path(filename or "package.car").stem
    return str(name)


def _programs(manifest):
    return [entry.get("program") for entry in manifest.get("programs") or []
            if isinstance(entry, dict) and entry.get("program")]


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


class Packages:
    """Installing packages into a server's deploy directory, and reading what is there."""

    def __init__(self, repository, home, authority, servers, stores):
        self.repository = repository
        self.home = home
        self.authority = authority
        self.servers = servers
        # The packages of servers on a PostgreSQL store, shared with their other members.
        self.stores = stores

    def routes(self):
        """The routes of a server's packages and services."""
        return [
            Route("GET", "/api/servers/{name}/packages", lambda call: Response(200, {
                "packages": self.repository.list_packages(call.params["name"])}),
                "Installed packages", "readonly",
                {200: ("packages", {"type": "object", "properties": {"packages": {
                    "type": "array", "items": schema_ref("Package")}}})}, (401, 404)),
            Route("POST", "/api/servers/{name}/packages", lambda call: self.deploy(
                call.params["name"], call.body, call.query.get("filename"), call.who),
                "Deploy a .car (checked before anything is installed; a server on a PostgreSQL "
                "store has it stored there too, for its members on other nodes)", "operator",
                {201: ("installed", {"type": "object"})}, (400, 401, 403, 404, 413, 503),
                {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                query=(("filename", {"type": "string"}, "the archive's file name"),)),
            Route("GET", "/api/servers/{name}/services", lambda call: Response(200, {
                "services": self.services(call.params["name"])}),
                "Services of the installed packages", "readonly",
                {200: ("{services: [{name, package, program, parameters}]}",
                       {"type": "object"})}, (401, 404)),
        ]

    def deploy(self, name, data, filename, who=None):
        """Install a .car package into server `name` (operator); tell a running region to
        rescan. The archive is checked (size, member names, manifest, checksums) first.
        The Response, or for a server on a PostgreSQL store a Later that stores the package
        there, so that the server's members on other nodes install it too."""
        self.authority.require(who, "operator", "deploy packages", name)
        definition = self.repository.get_server(name)
        try:
            answer = self._install(name, definition, data, filename)
        except ApiError as exc:
            self.authority.record(who, "deploy", name, "failed", exc.message, definition)
            raise
        if definition.get("store"):
            self.stores.sharing(name, answer["package"], answer["sha256"], data,
                                filename or f"{answer['package']}.car",
                                member_name(self.home.root))
            return Later(self._share, name, definition, answer, who)
        self.authority.record(who, "deploy", name, "ok", answer["message"], definition)
        return Response(201, answer)

    def _share(self, name, definition, answer, who):
        try:
            self.stores.share(name, definition["store"], answer["package"], answer["sha256"])
        except StoreUnavailable as exc:
            message = (f"{answer['message']}, but not yet stored for the members on other "
                       f"nodes: {exc}; mfds here stores it as soon as the store answers "
                       "(until then they keep what they have)")
            self.authority.record(who, "deploy", name, "failed", message, definition)
            raise ApiError(503, "store_unavailable", message) from None
        answer = dict(answer, message=f"{answer['message']}; stored in its PostgreSQL store, "
                      "where its members on other nodes find it (within seconds)")
        self.authority.record(who, "deploy", name, "ok", answer["message"], definition)
        return Response(201, answer)

    def install_shared(self, name, data, filename, digest):
        """Install a package another member of server `name` deployed (read from the store
        by esrt.mfds.api.members); its answer, or ApiError."""
        return self._install(name, self.repository.get_server(name), data, filename, digest)

    def _install(self, name, definition, data, filename, digest=None):
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
        digest = digest or package_digest(data)
        self.repository.record_package(name, package, manifest, len(data), sha256=digest)
        programs = _programs(manifest)
        noun = "program" if len(programs) == 1 else "programs"
        message = (f"installed {package} ({len(programs)} {noun}: "
                   f"{', '.join(programs) or 'none'}) into {name}")
        pid = self.servers.live_pid(name)
        if pid:
            try:
                # SIGHUP makes the region rescan its deploy directory.
                os.kill(int(pid), signal.SIGHUP)
                message += f"; region {name} (pid {pid}) told to rescan"
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        return {"manifest": manifest, "package": package, "sha256": digest, "message": message}

    def services(self, name):
        """The services of server `name`, from its installed packages' manifests and mappings."""
        definition = self.repository.get_server(name)
        deploy_dir = RegionPaths(definition, self.home).deploy
        services = []
        for record in self.repository.list_packages(name):
            package, manifest = record["package"], record["manifest"]
            parameters = _mapping_parameters(deploy_dir / package, manifest)
            for program in _programs(manifest):
                services.append({"name": f"{package}.{program}", "package": package,
                                 "program": program,
                                 "parameters": parameters.get(program, [])})
        return services
