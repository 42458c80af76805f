"""The SEP's request loop: frame in, COBOL call, frame out.

A SEP loads libcob once, resolves each program once (on its first call) and keeps one set of
LINKAGE buffers per program, reused by every call. It serves one request at a time. A program
that ends the run unit (STOP RUN), hits a libcob runtime error or crashes takes this process down
with it; the region notices, answers the caller and starts a new SEP.
"""

import json
import os
import time
from pathlib import Path

from esrt.mapping import jsonio
from esrt.mapping.car import MANIFEST
from esrt.mapping.codec import FieldValueError, ProgramCodec
from esrt.sep import protocol


class ServiceFailure(Exception):
    """A request that cannot be served; carries the HTTP-like status and a stable error code."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class LoadedService:
    """One program ready to call: its codec, its buffers and its bound entry point."""

    def __init__(self, name, codec, buffers, bound_call):
        self.name = name
        self.codec = codec
        self.buffers = buffers
        self.bound_call = bound_call

    def call(self, values):
        self.codec.load_inputs(self.buffers, values)
        return_code = self.bound_call()
        return return_code, self.codec.dump_outputs(self.buffers)


class ServiceCache:
    """Finds services in the deploy directory and loads each once."""

    def __init__(self, runtime, deploy_dir):
        self.runtime = runtime
        self.deploy_dir = Path(deploy_dir)
        self._services = {}

    def clear(self):
        self._services.clear()

    def get(self, service):
        loaded = self._services.get(service)
        if loaded is None:
            loaded = self._services[service] = self._load(service)
        return loaded

    def _load(self, service):
        package, _, program_name = service.partition(".")
        folder = self.deploy_dir / package
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            mapping = json.loads((folder / manifest["mapping"]).read_text())
        except (OSError, ValueError, KeyError):
            raise ServiceFailure(404, "unknown_service",
                                 f"no package {package!r} is deployed (deploy it with "
                                 f"`esrt deploy {package}.car --server NAME`)") from None
        entry = next((p for p in manifest["programs"] if p["program"] == program_name), None)
        program = next((p for p in mapping["programs"] if p["program"] == program_name), None)
        if entry is None or program is None:
            known = ", ".join(f"{package}.{p['program']}" for p in manifest["programs"])
            raise ServiceFailure(404, "unknown_service",
                                 f"package {package} has no program {program_name}; it has {known}")
        codec = ProgramCodec(program)
        buffers = codec.new_buffers()
        try:
            loaded_program = self.runtime.load(str(folder / entry["module"]), entry["entry"],
                                               len(buffers))
        except Exception as exc:  # LoadError and dlopen failures alike: the caller must hear why
            raise ServiceFailure(500, "load_failed", f"{service} cannot be loaded: {exc}") from None
        return LoadedService(service, codec, buffers, loaded_program.bind(buffers))


def handle_call(cache, service, body):
    """Run one call; return (reply header fields, reply body)."""
    try:
        loaded = cache.get(service)
        try:
            values = jsonio.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise ServiceFailure(400, "bad_json", f"request body is not valid JSON: {exc}") from None
        if not isinstance(values, dict):
            raise ServiceFailure(400, "bad_json", "request body must be a JSON object of "
                                 "parameters, e.g. {\"LK-NAME\": \"value\"}")
        try:
            return_code, outputs = loaded.call(values)
        except FieldValueError as exc:
            raise ServiceFailure(400, exc.code, f"{service}: {exc}") from None
    except ServiceFailure as failure:
        return {"status": failure.status,
                "error": {"code": failure.code, "message": failure.message}}, b""
    return {"status": 200, "rc": return_code}, jsonio.dumps(outputs)


def serve(runtime, deploy_dir, requests, replies):
    """Serve frames until the region closes the request pipe."""
    cache = ServiceCache(runtime, deploy_dir)
    replies.write(protocol.encode_frame({"id": protocol.READY_ID, "op": "ready",
                                         "pid": os.getpid()}))
    replies.flush()
    while True:
        frame = protocol.read_frame(requests)
        if frame is None:
            return
        header, body = frame
        started = time.perf_counter()
        if header.get("op") == "reload":
            cache.clear()
            reply, reply_body = {"status": 200}, b""
        elif header.get("op") == "call":
            reply, reply_body = handle_call(cache, str(header.get("service", "")), body)
        else:
            reply, reply_body = {"status": 400, "error": {
                "code": "bad_request", "message": f"unknown SEP operation {header.get('op')!r}"}}, b""
        reply["id"] = header.get("id")
        reply["ms"] = round((time.perf_counter() - started) * 1000, 3)
        replies.write(protocol.encode_frame(reply, reply_body))
        replies.flush()
