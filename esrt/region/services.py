"""The region's service table, read from the deploy directory, and its OpenAPI description.

Each package lives in deploy/<package>/ with a manifest.json (manifest["programs"][i]["program"]
names its programs, manifest["mapping"] its mapping file). A service is "<package>.<PROGRAM>".
The table is read at start, again when a lookup misses (a package deployed while the region
runs is found without a restart) and on SIGHUP.
"""

import json
from pathlib import Path

MANIFEST = "manifest.json"


class Service:
    """One deployed service: its package, program and mapping parameters (may be empty)."""

    __slots__ = ("name", "package", "program", "parameters")

    def __init__(self, package, program, parameters):
        self.package = package
        self.program = program
        self.name = f"{package}.{program}"
        self.parameters = parameters


class ServiceTable:
    """Services deployed in one deploy directory."""

    def __init__(self, deploy_dir, warn=None):
        """`warn(package, problem)` is told about packages that cannot be read."""
        self.deploy_dir = Path(deploy_dir)
        self._warn = warn or (lambda package, problem: None)
        # Name -> Service, replaced whole by each scan (the front door's admit reads it).
        self.by_name = {}
        self._warned = set()

    def scan(self):
        """Re-read every package; return the sorted service names."""
        found = {}
        try:
            folders = sorted(p for p in self.deploy_dir.iterdir() if p.is_dir())
        except OSError:
            folders = []
        for folder in folders:
            if folder.name.startswith("."):
                continue  # installers stage packages in hidden folders before renaming them
            try:
                for service in _read_package(folder):
                    found[service.name] = service
            except ValueError as exc:
                # Warn once per package and problem: a miss rescans, and a client retrying an
                # unknown name must not flood the console.
                key = (folder.name, str(exc))
                if key not in self._warned:
                    self._warned.add(key)
                    self._warn(folder.name, str(exc))
        self.by_name = found
        return self.names()

    def names(self):
        return sorted(self.by_name)

    def lookup(self, name):
        """Return the Service called `name`, rescanning once on a miss; None if not deployed."""
        service = self.by_name.get(name)
        if service is None:
            self.scan()
            service = self.by_name.get(name)
        return service

    def __iter__(self):
        return iter(self.by_name[name] for name in self.names())

    def __len__(self):
        return len(self.by_name)


def _read_package(folder):
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise ValueError(f"{manifest_path} is missing; reinstall the package")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{manifest_path} cannot be read ({exc}); reinstall the package") from None
    programs = manifest.get("programs") if isinstance(manifest, dict) else None
    if not isinstance(programs, list):
        raise ValueError(f"{manifest_path} has no \"programs\" list; reinstall the package")
    parameters = _mapping_parameters(folder, manifest)
    services = []
    for entry in programs:
        if isinstance(entry, dict) and isinstance(entry.get("program"), str):
            program = entry["program"]
            services.append(Service(folder.name, program, parameters.get(program, [])))
    return services


def _mapping_parameters(folder, manifest):
    """{program: parameters} from the package's mapping file; {} when there is none."""
    name = manifest.get("mapping")
    if not isinstance(name, str) or not name:
        return {}
    try:
        document = json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for entry in (document.get("programs") or []) if isinstance(document, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("program"), str):
            params = entry.get("parameters")
            found[entry["program"]] = params if isinstance(params, list) else []
    return found


# -- OpenAPI -----------------------------------------------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}}},
}


def item_schema(item):
    """JSON schema of one mapping item (parameter or group field), OCCURS included."""
    kind = item.get("type")
    if kind == "object" or item.get("fields"):
        schema = {"type": "object",
                  "properties": {f["name"]: item_schema(f) for f in item.get("fields") or []
                                 if isinstance(f, dict) and "name" in f}}
    elif kind == "string":
        schema = {"type": "string"}
        if isinstance(item.get("length"), int):
            schema["maxLength"] = item["length"]
    elif kind in ("integer", "number"):
        schema = {"type": kind}
    else:
        schema = {}
    if item.get("pic"):
        usage = item.get("usage")
        schema["description"] = f"PIC {item['pic']}" + (
            f" {usage.upper()}" if usage and usage not in ("display", "group") else "")
    occurs = item.get("occurs", 1)
    if isinstance(occurs, int) and occurs > 1:
        schema = {"type": "array", "items": schema, "maxItems": occurs}
    return schema


def _object_schema(parameters, directions):
    chosen = [p for p in parameters if isinstance(p, dict) and "name" in p
              and p.get("direction", "io") in directions]
    return {"type": "object", "properties": {p["name"]: item_schema(p) for p in chosen}}


def openapi_document(server, services, version="0.1.0"):
    """An OpenAPI 3 document with one POST path per service."""
    paths = {}
    for service in services:
        paths[f"/services/{service.package}/{service.program}"] = {"post": {
            "operationId": service.name,
            "summary": f"call COBOL program {service.program} of package {service.package}",
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": _object_schema(service.parameters, ("in", "io"))}}},
            "responses": {
                "200": {"description": "the program ran; its out and io parameters",
                        "headers": {"Esrt-Return-Code": {
                            "description": "the program's RETURN-CODE",
                            "schema": {"type": "integer"}}},
                        "content": {"application/json": {
                            "schema": _object_schema(service.parameters, ("out", "io"))}}},
                "default": {"description": "an error",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }}
    return {
        "openapi": "3.0.3",
        "info": {"title": f"esrt server {server}", "version": version},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
    }
