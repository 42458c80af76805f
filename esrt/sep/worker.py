"""The SEP's request loop: frame in, COBOL call, frame out.

A SEP loads libcob once, resolves each program once (on its first call) and keeps one set of
LINKAGE buffers per program, reused by every call. It serves one request at a time. A program
that ends the run unit (STOP RUN), hits a libcob runtime error or crashes takes this process down
with it; the region notices, answers the caller and starts a new SEP.
"""

import json
import os
import select
import time
from pathlib import Path

from esrt.mapping import jsonio
from esrt.mapping.car import MANIFEST
from esrt.mapping.codec import FieldValueError, ProgramCodec
from esrt.isam import DB_LOCK_DEADLOCK, EsfhError
from esrt.sep import protocol


class ServiceFailure(Exception):
    """A request that cannot be served; carries the HTTP-like status and a stable error code."""

    def __init__(self, status, code, message, attempts=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # Transactions run (and all aborted) before failing; None when none was begun.
        self.attempts = attempts


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


def parse_values(body):
    """The request body as a dict of parameters, or ServiceFailure 400."""
    try:
        values = jsonio.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise ServiceFailure(400, "bad_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ServiceFailure(400, "bad_json", "request body must be a JSON object of "
                             "parameters, e.g. {\"LK-NAME\": \"value\"}")
    return values


# Seconds between sweeps of expired stored replies (idempotency keys, crash-recovery records).
PURGE_INTERVAL = 60.0
PURGE_BATCH = 10000


class Transactions:
    """Runs each call inside one ESFH transaction.

    Commit when the program returns; abort and re-run (bounded) when it was a deadlock victim.
    The reply is stored in the same transaction when the call changed files or carries an
    idempotency key, so that after a crash the region can tell committed from rolled back, and
    a retried call finds the first call's reply instead of running again.

    The reply header tells the region how it went, for its metrics: "attempts" (transactions
    begun, deadlock re-runs included) and "committed" (whether the last one committed).
    """

    max_attempts = 5

    def __init__(self, esfh, clock=time.time):
        self.esfh = esfh
        self.clock = clock

    def purge(self):
        """Delete stored replies whose time is up; returns how many went."""
        return self.esfh.reply_purge(self.clock(), PURGE_BATCH)

    def run(self, loaded, values, request, cancelled):
        key = (request.get("key") or "").encode()
        idempotent = bool(request.get("idempotent"))
        ttl = int(request.get("ttl") or 600)
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                loaded.codec.load_inputs(loaded.buffers, values)
            self.esfh.begin()
            try:
                if idempotent:
                    stored = self.esfh.reply_get(key, self.clock())
                    if stored is not None:
                        self.esfh.commit()
                        header, body = protocol.unpack_reply(stored)
                        header["replayed"] = True
                        header.update(attempts=attempt, committed=True)
                        return header, body
                return_code = loaded.bound_call()
                if self.esfh.doomed():
                    self.esfh.abort()
                    continue
                header = {"status": 200, "rc": return_code}
                body = jsonio.dumps(loaded.codec.dump_outputs(loaded.buffers))
                if key and (idempotent or self.esfh.request_writes()):
                    self.esfh.reply_put(key, protocol.pack_reply(header, body), self.clock() + ttl)
                if self.esfh.doomed():
                    self.esfh.abort()
                    continue
                if cancelled():
                    self.esfh.abort()
                    return {"status": 499, "error": {
                        "code": "cancelled", "message": "the caller went away before the "
                        "commit; the call was rolled back"},
                        "attempts": attempt, "committed": False}, b""
                self.esfh.commit()
                # Added after reply_put: a stored reply describes the call, not this run.
                return dict(header, attempts=attempt, committed=True), body
            except EsfhError as exc:
                self.esfh.abort()
                if exc.code == DB_LOCK_DEADLOCK:
                    continue
                raise ServiceFailure(500, "transaction_failed",
                                     f"{loaded.name}: {exc}", attempts=attempt) from None
            except BaseException:
                self.esfh.abort()
                raise
        raise ServiceFailure(503, "deadlock",
                             f"{loaded.name} lost a deadlock {self.max_attempts} times in a row "
                             "and was rolled back each time; retry later",
                             attempts=self.max_attempts)


class Untransacted:
    """Calls without ESFH (no data environment): the program's files are its own business."""

    def purge(self):
        return 0

    def run(self, loaded, values, request, cancelled):
        return_code = loaded.bound_call()
        return {"status": 200, "rc": return_code}, jsonio.dumps(
            loaded.codec.dump_outputs(loaded.buffers))


def handle_call(cache, transactions, request, body, cancelled=lambda: False):
    """Run one call; return (reply header fields, reply body)."""
    service = str(request.get("service", ""))
    try:
        loaded = cache.get(service)
        values = parse_values(body)
        try:
            loaded.codec.load_inputs(loaded.buffers, values)
            return transactions.run(loaded, values, request, cancelled)
        except FieldValueError as exc:
            raise ServiceFailure(400, exc.code, f"{service}: {exc}") from None
    except ServiceFailure as failure:
        header = {"status": failure.status,
                  "error": {"code": failure.code, "message": failure.message}}
        if failure.attempts is not None:
            header.update(attempts=failure.attempts, committed=False)
        return header, b""


class CancelWatch:
    """Notices a cancel frame for the running request without blocking (one poll per check)."""

    def __init__(self, requests):
        self.requests = requests
        self.request_id = None
        self.later = []

    def __call__(self):
        while select.select([self.requests], [], [], 0)[0]:
            frame = protocol.read_frame(self.requests)
            if frame is None:
                return True  # the region is gone: nobody will read the reply
            header, body = frame
            if header.get("op") == "cancel":
                if header.get("id") == self.request_id:
                    return True
                continue
            self.later.append(frame)
        return False


def serve(runtime, deploy_dir, requests, replies, transactions=None):
    """Serve frames until the region closes the request pipe."""
    cache = ServiceCache(runtime, deploy_dir)
    transactions = transactions or Untransacted()
    watch = CancelWatch(requests)
    next_purge = time.monotonic() + PURGE_INTERVAL
    replies.write(protocol.encode_frame({"id": protocol.READY_ID, "op": "ready",
                                         "pid": os.getpid()}))
    replies.flush()
    while True:
        frame = watch.later.pop(0) if watch.later else protocol.read_frame(requests)
        if frame is None:
            return
        header, body = frame
        started = time.perf_counter()
        op = header.get("op")
        if op == "cancel":
            continue  # for a request that already finished
        if op == "reload":
            cache.clear()
            reply, reply_body = {"status": 200}, b""
        elif op == "call":
            watch.request_id = header.get("id")
            reply, reply_body = handle_call(cache, transactions, header, body, watch)
        else:
            reply, reply_body = {"status": 400, "error": {
                "code": "bad_request", "message": f"unknown SEP operation {op!r}"}}, b""
        reply["id"] = header.get("id")
        reply["ms"] = round((time.perf_counter() - started) * 1000, 3)
        replies.write(protocol.encode_frame(reply, reply_body))
        replies.flush()
        if time.monotonic() >= next_purge:
            # Between requests, so a caller never waits for it; bounded per run.
            transactions.purge()
            next_purge = time.monotonic() + PURGE_INTERVAL
