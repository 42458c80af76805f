"""The SEP's request loop: frame in, COBOL call, frame out.

A SEP loads libcob once, resolves each program once (on its first call) and keeps one set of
LINKAGE buffers per program, reused by every call. It runs one request at a time; when the
region sends several at once (a batch, while callers wait), it runs them in order, syncs the
log once for all their commits and answers them together (group commit). A program that ends
the run unit (STOP RUN), hits a libcob runtime error or crashes takes this process down with
it; the region notices, answers the caller and starts a new SEP.
"""

import collections
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

from esrt.mapping import jsonio
from esrt.mapping.car import MANIFEST
from esrt.mapping.codec import FieldValueError, ProgramCodec
from esrt.isam import (CONSTANTS, DB_LOCK_DEADLOCK, DB_RUNRECOVERY, ESFH_IDLE_TIMEOUT,
                       ESFH_IN_DOUBT, ESFH_STORE_LOST, EsfhError)
from esrt.sep import protocol
from esrt.states import ExitCode


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
    """One program ready to call: its codec, its buffers and its bound entry point.

    A call's path is load(body), bound_call(), reply_body(): the request's JSON straight into
    the LINKAGE buffers, the program, the buffers straight into the reply's JSON; in C
    (esrt._callpath) when it is built, with no Python object per field.
    """

    def __init__(self, name, codec, buffers, bound_call):
        self.name = name
        self.codec = codec
        self.buffers = buffers
        self.bound_call = bound_call

    def load(self, body):
        """Reset the buffers and store the request `body` in them.

        Raises ServiceFailure (400) naming what is wrong with the request."""
        if self.codec.load_json(self.buffers, body):
            return
        # Declined: the general path tells what is wrong (and loads what it accepts).
        try:
            self.codec.load_inputs(self.buffers, parse_values(body))
        except FieldValueError as exc:
            raise ServiceFailure(400, exc.code, f"{self.name}: {exc}") from None

    def reply_body(self):
        """The out and io parameters as the reply's JSON bytes."""
        return self.codec.dump_json(self.buffers)


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
        except Exception as exc:  # noqa: BLE001 - LoadError and dlopen failures alike: the caller must hear why
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


# Seconds between sweeps of expired stored replies (idempotency keys, crash-recovery records);
# each looks at PURGE_BATCH entries per transaction until a batch finds little to delete or
# PURGE_BUDGET seconds went, so that it keeps up with a busy region without stalling its SEP.
PURGE_INTERVAL = 5.0
PURGE_BATCH = 1000
PURGE_BUDGET = 0.05
# Between batches, SEP 1 checkpoints once this many KB of log were written since the last
# checkpoint (one log file), and every checkpoint_interval seconds anyway.
CHECKPOINT_KBYTES = CONSTANTS["ESFH_LOG_FILE_BYTES"] // 1024
# ... asked at most this often (seconds): each ask takes Berkeley DB's region lock and reads
# its statistics, a fifth of a busy SEP's time when asked after every batch of null calls,
# and the log grows by far less than a file between two asks.
LOG_CHECK_INTERVAL = 0.01


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

    def __init__(self, esfh, clock=time.time, checkpoint_interval=0, remove_logs=True,
                 monotonic=time.monotonic):
        """`checkpoint_interval`: seconds between checkpoints of the environment (0: this SEP
        leaves them to another); `remove_logs`: each removes the log files recovery no longer
        needs."""
        self.esfh = esfh
        self.clock = clock
        self.monotonic = monotonic
        # Set once the environment must be recovered: the SEP then answers and exits.
        self.environment_lost = False
        self.checkpoint_interval = checkpoint_interval
        self.remove_logs = remove_logs
        self._next_purge = monotonic() + PURGE_INTERVAL
        self._next_checkpoint = monotonic() + checkpoint_interval
        self._next_log_check = 0.0

    def _abort_quietly(self):
        try:
            self.esfh.abort()
        except EsfhError:
            pass  # the failure being handled says more than the abort's

    def purge(self):
        """Delete stored replies whose time is up; returns how many went."""
        deleted, deadline = 0, self.monotonic() + PURGE_BUDGET
        while True:
            count = self.esfh.reply_purge(self.clock(), PURGE_BATCH)
            deleted += max(count, 0)
            # A batch that deleted few has caught up (or failed: tried again next time).
            if count < PURGE_BATCH // 2 or self.monotonic() >= deadline:
                return deleted

    def checkpoint(self, kbytes=0):
        """Checkpoint the environment (with `kbytes`: only once that much log was written since
        the last one) and, unless kept, remove the log files recovery no longer needs: nothing
        else removes them, and they would fill the data disk. A failure is reported on stderr
        (the console log) and tried again later; one that finds the environment broken gives
        it up, as a failed commit does."""
        try:
            return self.esfh.checkpoint(self.remove_logs, kbytes)
        except EsfhError as exc:
            print(f"{exc}; the log files it would have removed stay on the data disk (tried "
                  "again after the next calls)", file=sys.stderr, flush=True)
            if exc.code == DB_RUNRECOVERY:
                self.environment_lost = True
            return 0

    def between_batches(self):
        """Housekeeping that is due (expired replies, checkpoints), between batches so that
        no caller waits for it."""
        now = self.monotonic()
        if now >= self._next_purge:
            self.purge()
            self._next_purge = now + PURGE_INTERVAL
        if not self.checkpoint_interval:
            return
        if now >= self._next_checkpoint:
            self.checkpoint()
            self._next_checkpoint = now + self.checkpoint_interval
        elif now >= self._next_log_check:
            self._next_log_check = now + LOG_CHECK_INTERVAL
            # Cheap when not due: the log fills its files faster than any interval under load,
            # and the threshold counts the environment's log, whichever SEP asks (a restarted
            # SEP 1 does not start over).
            self.checkpoint(CHECKPOINT_KBYTES)

    def flush(self):
        """Make every commit so far durable (one log sync); None, or what went wrong (which
        is also written on stderr, for the console log)."""
        try:
            self.esfh.log_flush()
        except EsfhError as exc:
            self.environment_lost = True
            print(f"ESFH: {exc}; this SEP gives up the data environment for the region to "
                  "recover", file=sys.stderr, flush=True)
            return str(exc)
        return None

    def abandon(self):
        """Give up the environment after a failed flush: every process of the region then
        fails fast until the region has recovered it."""
        self.esfh.env_abandon()

    def run(self, loaded, body, request, cancelled):
        key = (request.get("key") or "").encode()
        idempotent = bool(request.get("idempotent"))
        ttl = int(request.get("ttl") or 600)
        idled_out = 0
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                loaded.load(body)
            try:
                self.esfh.begin()
                if idempotent:
                    stored = self.esfh.reply_get(key, self.clock())
                    if stored is not None:
                        self.esfh.commit()
                        header, stored_body = protocol.unpack_reply(stored)
                        header["replayed"] = True
                        header.update(attempts=attempt, committed=True)
                        return header, stored_body
                return_code = loaded.bound_call()
                if self.esfh.doomed():
                    self.esfh.abort()
                    continue
                reply_body = loaded.reply_body()
                stored = False
                if key and (idempotent or self.esfh.request_writes()):
                    # A stored reply describes the call, not this run: no attempts in it.
                    self.esfh.reply_put(key, protocol.pack_reply(
                        {"status": 200, "rc": return_code}, reply_body), self.clock() + ttl)
                    stored = True
                    if self.esfh.doomed():
                        self.esfh.abort()
                        continue
                    # Only a call that changed or stored something has anything to roll
                    # back: the others need no look for their caller's cancel (a poll of the
                    # pipe per call).
                    if cancelled():
                        self.esfh.abort()
                        return {"status": 499, "error": {
                            "code": "cancelled", "message": "the caller went away before "
                            "the commit; the call was rolled back"},
                            "attempts": attempt, "committed": False}, b""
                try:
                    self.esfh.commit()
                except EsfhError as exc:
                    if exc.code != ESFH_IN_DOUBT:
                        raise
                    settled = self._settle(loaded, key if stored else None, attempt, exc)
                    if settled is None:
                        continue  # it did not commit: run it again
                    return settled
                return {"status": 200, "rc": return_code, "attempts": attempt,
                        "committed": True}, reply_body
            except EsfhError as exc:
                self._abort_quietly()
                if exc.code == DB_LOCK_DEADLOCK:
                    continue
                if exc.code == DB_RUNRECOVERY:
                    # Another process broke the environment (a failed log sync, a death in
                    # the middle of Berkeley DB): the region recovers it, then serves again.
                    self.environment_lost = True
                    raise ServiceFailure(503, "recovering", (
                        f"{loaded.name} was not run: the region is recovering its data "
                        "environment; retry in a moment"), attempts=attempt) from None
                if exc.code == ESFH_IDLE_TIMEOUT:
                    # Once may be a process held up; twice is the program itself, and
                    # running it again (or a client retrying it) would never end.
                    idled_out += 1
                    if idled_out == 1:
                        continue
                    raise ServiceFailure(500, "transaction_timeout", (
                        f"{loaded.name} was rolled back twice: {exc}"),
                        attempts=attempt) from None
                if exc.code == ESFH_STORE_LOST:
                    # Rolled back with the session (the database or its node went away, or a
                    # standby is being promoted): nothing of it committed.
                    raise ServiceFailure(503, "store_unavailable", (
                        f"{loaded.name} was not run or was rolled back: {exc}; retry in a "
                        "moment (with its Idempotency-Key it runs once)"),
                        attempts=attempt) from None
                raise ServiceFailure(500, "transaction_failed",
                                     f"{loaded.name}: {exc}", attempts=attempt) from None
            except BaseException:
                self.esfh.abort()
                raise
        raise ServiceFailure(503, "deadlock",
                             f"{loaded.name} lost a deadlock {self.max_attempts} times in a row "
                             "and was rolled back each time; retry later",
                             attempts=self.max_attempts)


    def _settle(self, loaded, key, attempt, failure):
        """The connection to a PostgreSQL store broke during COMMIT (ESFH_IN_DOUBT; ESFH has
        connected again and ended the old session): the reply stored in the call's
        transaction tells whether it committed. Returns that reply as the call's answer, or
        None when it did not commit (a call that stored none changed nothing: None too)."""
        if key is None:
            return None
        try:
            stored = self.esfh.reply_get(key, self.clock())
        except EsfhError as exc:
            raise ServiceFailure(503, "in_doubt", (
                f"{loaded.name}: whether it committed cannot be told ({failure}; looking its "
                f"reply up: {exc}); retry it with the same Idempotency-Key"),
                attempts=attempt) from None
        if stored is None:
            return None
        header, body = protocol.unpack_reply(stored)
        header.update(attempts=attempt, committed=True)
        return header, body


class Untransacted:
    """Calls without ESFH (no data environment): the program's files are its own business."""

    environment_lost = False

    def between_batches(self):
        pass

    def flush(self):
        return None

    def abandon(self):
        pass

    def run(self, loaded, body, request, cancelled):
        return_code = loaded.bound_call()
        return {"status": 200, "rc": return_code}, loaded.reply_body()


def handle_call(cache, transactions, request, body, cancelled=lambda: False):
    """Run one call; return (reply header fields, reply body)."""
    service = str(request.get("service", ""))
    try:
        loaded = cache.get(service)
        loaded.load(body)
        return transactions.run(loaded, body, request, cancelled)
    except ServiceFailure as failure:
        header = {"status": failure.status,
                  "error": {"code": failure.code, "message": failure.message}}
        if failure.attempts is not None:
            header.update(attempts=failure.attempts, committed=False)
        return header, b""


class Inbox:
    """The request pipe, read in large pieces: every frame the region has sent so far.

    The region sends a SEP several calls in one write when callers are waiting (a batch), so
    one read returns all of them. It also answers whether the caller of a request went away
    (a cancel frame), looking at the pipe without blocking.
    """

    # Below malloc's mmap threshold: a bigger read buffer would cost an mmap and munmap per read.
    read_size = 65536

    def __init__(self, requests):
        self.fd = requests.fileno()
        self.decoder = protocol.FrameDecoder()
        self.frames = collections.deque()
        self.cancelled_ids = set()
        self.closed = False

    def wait(self):
        """Block until at least one frame is here; False once the region closed the pipe."""
        while not self.frames:
            if self.closed or not self._read():
                return False
        return True

    def _read(self):
        data = os.read(self.fd, self.read_size)
        if not data:
            self.closed = True
            return False
        for header, body in self.decoder.feed(data):
            if header.get("op") == "cancel":
                self.cancelled_ids.add(header.get("id"))
            else:
                self.frames.append((header, body))
        return True

    def cancelled(self, request_id):
        """Whether request `request_id`'s caller went away (one poll of the pipe per check)."""
        while not self.closed and select.select([self.fd], [], [], 0)[0]:
            self._read()
        # The region is gone: nobody would read the reply, so roll back.
        return self.closed or request_id in self.cancelled_ids

    def next_call(self):
        """The oldest frame received, or None."""
        return self.frames.popleft() if self.frames else None


def serve(runtime, deploy_dir, requests, replies, transactions=None, call_timeout=0):
    """Serve frames until the region closes the request pipe.

    Calls are run one after the other in the order they came; the replies of everything that
    arrived together are written together, after one log flush has made all their commits
    durable (Transactions.flush). In a batch of several calls, each call gets `call_timeout`
    seconds (0: no limit here; at most a tenth more) before the kernel ends this process
    with SIGALRM: the region times out a whole batch only, and must not wait for every
    call's share to learn that one call hangs.
    """
    cache = ServiceCache(runtime, deploy_dir)
    transactions = transactions or Untransacted()
    inbox = Inbox(requests)
    replies.write(protocol.encode_frame({"id": protocol.READY_ID, "op": "ready",
                                         "pid": os.getpid()}))
    replies.flush()
    # The timer is armed for call_timeout plus this slack, and armed again only for a call
    # that starts more than the slack after it was: each call still gets at least
    # call_timeout, and a batch of short calls costs one timer system call, not one per call.
    slack = call_timeout / 10
    while inbox.wait():
        answered = []
        limited = call_timeout > 0 and len(inbox.frames) > 1
        armed_at = None
        frame = inbox.next_call()
        while frame is not None:
            if limited:
                now = time.monotonic()
                if armed_at is None or now - armed_at > slack:
                    signal.setitimer(signal.ITIMER_REAL, call_timeout + slack)
                    armed_at = now
            answered.append(_serve_one(cache, transactions, inbox, *frame))
            frame = inbox.next_call()
        if limited:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if transactions.flush() is not None:
            # Their commits are written but perhaps not on disk: they are not answered here.
            # The region recovers the environment from the disk and answers each of them
            # from what recovery kept (its stored reply, or a run on another SEP).
            answered = [(reply, committed) for reply, committed in answered if not committed]
        replies.write(b"".join(protocol.encode_frame(header, body)
                               for (header, body), _ in answered))
        replies.flush()
        if not transactions.environment_lost:
            transactions.between_batches()
        if transactions.environment_lost:
            # Commits that are not on disk must not reach it later: the environment is given
            # up, the region recovers it from what is on disk, and starts new SEPs.
            transactions.abandon()
            raise SystemExit(ExitCode.ENVIRONMENT_LOST)


def _serve_one(cache, transactions, inbox, header, body):
    """Run one frame; return ((reply header, reply body), whether it committed)."""
    started = time.perf_counter()
    op = header.get("op")
    request_id = header.get("id")
    if op == "reload":
        cache.clear()
        reply, reply_body = {"status": 200}, b""
    elif op == "call":
        reply, reply_body = handle_call(cache, transactions, header, body,
                                        lambda: inbox.cancelled(request_id))
    else:
        reply, reply_body = {"status": 400, "error": {
            "code": "bad_request", "message": f"unknown SEP operation {op!r}"}}, b""
    inbox.cancelled_ids.discard(request_id)
    reply["id"] = request_id
    # Not rounded here: the frame keeps whole microseconds, rounded once (esrt.sep.protocol).
    reply["ms"] = (time.perf_counter() - started) * 1000
    return (reply, reply_body), bool(reply.get("committed"))
