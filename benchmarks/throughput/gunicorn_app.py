"""What users run instead of esrt: a WSGI app that calls COBOL through ctypes, under gunicorn.

    BENCH_COBOL_SERVICES=/path/services.json gunicorn -k sync -w 2 \
        benchmarks.throughput.gunicorn_app:app

Serves the same URLs and JSON as esrt's HTTP API (POST /services/PACKAGE/PROGRAM with a JSON
object of inputs, a JSON object of outputs back) the way a team would hand-write it: each
gunicorn worker runs cob_init once, resolves each program once with cob_resolve and keeps one
set of LINKAGE buffers per program, so a request costs JSON parsing, a copy into the buffers,
the call, and JSON out. No transactions, no isolation between workers (the programs use
GnuCOBOL's own file handler), no idempotency: the baseline esrt is compared with.

services.json maps "PACKAGE.PROGRAM" to {"module": path of the cobc -m module, "entry":
PROGRAM-ID, "parameters": the mapping's parameter list (name, length, type, direction)}.
Only the field kinds the benchmark's programs use are handled: PIC X (string) and unsigned
DISPLAY integers (PIC 9).
"""

import ctypes
import json
import os
import signal

_state = {}


class CobolProgram:
    """One resolved COBOL entry point with buffers preallocated for its LINKAGE items."""

    def __init__(self, libcob, entry, parameters):
        self.parameters = parameters
        self.buffers = [ctypes.create_string_buffer(p["length"]) for p in parameters]
        address = libcob.cob_resolve(entry.encode())
        if not address:
            raise RuntimeError(f"cob_resolve could not find program {entry!r}; check "
                               "COB_LIBRARY_PATH and the module's PROGRAM-ID")
        prototype = ctypes.CFUNCTYPE(ctypes.c_int, *([ctypes.c_void_p] * len(parameters)))
        self.function = prototype(address)
        self.pointers = [ctypes.addressof(buffer) for buffer in self.buffers]

    def call(self, inputs):
        """Fill the in/io fields from `inputs`, run the program, return (rc, outputs)."""
        for parameter, buffer in zip(self.parameters, self.buffers):
            length = parameter["length"]
            if parameter["direction"] == "out":
                # COBOL expects initialised storage even for outputs; blank it like a caller.
                ctypes.memset(buffer, 0x20 if parameter["type"] == "string" else 0x30, length)
                continue
            value = inputs.get(parameter["name"])
            if parameter["type"] == "string":
                raw = ("" if value is None else str(value)).encode("ascii")[:length]
                buffer.raw = raw.ljust(length, b" ")
            else:
                buffer.raw = str(int(value or 0)).rjust(length, "0").encode("ascii")[-length:]
        rc = self.function(*self.pointers)
        outputs = {}
        for parameter, buffer in zip(self.parameters, self.buffers):
            if parameter["direction"] == "in":
                continue
            raw = buffer.raw
            if parameter["type"] == "string":
                outputs[parameter["name"]] = raw.decode("ascii", "replace").rstrip(" ")
            else:
                outputs[parameter["name"]] = int(raw)
        return rc, outputs


def _programs():
    """This worker's programs, set up on first use (so after gunicorn's fork: cob_init once
    per worker process, as libcob state cannot be shared between processes)."""
    programs = _state.get("programs")
    if programs is None:
        with open(os.environ["BENCH_COBOL_SERVICES"], encoding="utf-8") as handle:
            config = json.load(handle)
        libcob = ctypes.CDLL("libcob.so.4", mode=ctypes.RTLD_GLOBAL)
        libcob.cob_resolve.restype = ctypes.c_void_p
        libcob.cob_resolve.argtypes = [ctypes.c_char_p]
        # cob_init takes over SIGTERM, SIGINT, SIGQUIT and SIGHUP (it exits on them); gunicorn
        # stops and reloads its workers with those, so its handlers are put back.
        saved = {signum: signal.getsignal(signum) for signum in
                 (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)}
        libcob.cob_init(0, None)
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)
        programs = {}
        for service, spec in config.items():
            # cob_resolve searches COB_LIBRARY_PATH; the module's directory is put there.
            programs[service] = CobolProgram(libcob, spec["entry"], spec["parameters"])
        _state["programs"] = programs
    return programs


def _respond(start_response, status, document):
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    """WSGI entry: POST /services/PACKAGE/PROGRAM, JSON in, JSON out."""
    parts = environ.get("PATH_INFO", "").strip("/").split("/")
    if environ["REQUEST_METHOD"] != "POST" or len(parts) != 3 or parts[0] != "services":
        return _respond(start_response, "404 Not Found",
                        {"error": {"code": "not_found", "message": "POST /services/PKG/PROGRAM"}})
    service = f"{parts[1]}.{parts[2]}"
    program = _programs().get(service)
    if program is None:
        return _respond(start_response, "404 Not Found",
                        {"error": {"code": "unknown_service", "message": service}})
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size) if size else b""
    try:
        inputs = json.loads(body) if body else {}
    except ValueError as exc:
        return _respond(start_response, "400 Bad Request",
                        {"error": {"code": "bad_json", "message": str(exc)}})
    rc, outputs = program.call(inputs)
    if rc != 0:
        return _respond(start_response, "500 Internal Server Error",
                        {"error": {"code": "program_failed", "message": f"RETURN-CODE {rc}"}})
    return _respond(start_response, "200 OK", outputs)
