"""Histories of calls to a counter service: what each client asked and what it was told.

A failover test proves that no transaction was lost by looking at what the clients saw. Each
logical call is one Operation: its invocation (client id, Idempotency-Key, start time) and its
completion (end time and outcome). The outcome is one of

* "ok": acknowledged, with the counter (LK-COUNTER) and the host (LK-HOSTNAME) of the reply;
* "error": definitely not applied: the call never reached a program, or the region answered
  that it rolled the call back (see DEFINITE_CODES);
* "unknown": may or may not have been applied: a timeout, a connection lost after the request
  was sent, a 500. These are settled afterwards (esrt.testing.checker.settle_history).

RecordingClient.operations() gives one client's history; collect() merges several clients;
save_history() and load_history() keep a history, and the faults injected during the run, in a
JSON-lines file. esrt.testing.checker checks it.
"""

import dataclasses
import json
import uuid
from typing import NamedTuple, Optional

from esrt.client import Client, ConnectionFailed, ServiceError, call

OK = "ok"
ERROR = "error"
UNKNOWN = "unknown"
OUTCOMES = (OK, ERROR, UNKNOWN)

# Error codes after which the caller knows its call was not applied, and why. Every other
# error is "unknown": a 500 can come from a failed commit, an abend of a region that runs
# without transactions, or a proxy in between, and none of them says whether the data changed.
DEFINITE_CODES = {
    "unavailable": "refused before a SEP ran it (standby, no SEP left, stopping)",
    "killed": "its SEP was killed every time it ran; each run was rolled back",
    "deadlock": "rolled back after losing a deadlock every time",
    "recovering": "not run: the region was recovering its data environment",
    "cancelled": "rolled back because the caller went away",
    "bad_json": "refused before running",
    "bad_idempotency_key": "refused before running",
    "bad_frame": "refused before running",
    "too_large": "refused before running",
    "unknown_service": "refused before running",
    "not_found": "refused before running",
    "method_not_allowed": "refused before running",
}


def attempt_outcome(exc, fresh_connection):
    """ERROR if the failed attempt `exc` (from esrt.client) was certainly not applied, else
    UNKNOWN.

    `fresh_connection` says whether the client had no open connection before the attempt. A
    refused connection proves nothing was sent only then: on a reused connection the client
    first sends the request on the old connection, and only if that one turns out dead does it
    connect again; the request may have reached a region that died before answering.
    """
    if isinstance(exc, ServiceError):
        return ERROR if exc.code in DEFINITE_CODES else UNKNOWN
    if isinstance(exc, ConnectionFailed):
        # The client raises its own exception "from None"; the OSError is still its context.
        if fresh_connection and isinstance(exc.__context__, ConnectionRefusedError):
            return ERROR
    return UNKNOWN


@dataclasses.dataclass(frozen=True)
class Operation:
    """One logical call: invocation, completion and, for an unknown outcome, its settlement.

    Times are host time.time() (comparable across the clients of one machine, such as the
    lab's). `last_try` is when the last attempt was sent (several attempts share one
    Idempotency-Key). `settled` is True once an unknown outcome was settled: `counter` is then
    the counter the call committed with, or None if it was not applied.
    """

    client: str
    key: Optional[str]
    start: float
    end: float
    outcome: str
    counter: Optional[int] = None
    host: Optional[str] = None
    attempts: int = 1
    last_try: Optional[float] = None
    detail: str = ""
    settled: bool = False

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"operation outcome {self.outcome!r} must be one of {OUTCOMES}")
        if self.outcome == OK and not isinstance(self.counter, int):
            raise ValueError(f"operation {self.key or self.client}: an \"ok\" outcome needs the "
                             f"counter the reply carried, not {self.counter!r}")
        if self.end < self.start:
            raise ValueError(f"operation {self.key or self.client} ends ({self.end}) before it "
                             f"starts ({self.start}): record time.time() at both ends")
        if self.last_try is None:
            object.__setattr__(self, "last_try", self.start)

    @property
    def applied(self):
        """True if the call took a counter, False if not, None while that is unknown."""
        if self.outcome == OK:
            return True
        if self.outcome == ERROR:
            return False
        return (self.counter is not None) if self.settled else None

    def to_json(self):
        """The operation as a JSON object (one line of a history file)."""
        return {"type": "op", **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, fields):
        """The operation of a history file line (see to_json); fields it does not know, from
        a later version, are left out."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in fields.items() if name in known})

    def __str__(self):
        what = self.outcome
        if self.counter is not None:
            what += f" {self.counter}" + (f"@{self.host}" if self.host else "")
        if self.settled:
            what += f" (settled: {'applied' if self.counter is not None else 'not applied'})"
        key = f" key {self.key[:12]}" if self.key else ""
        return f"[{self.client}{key} {self.start:.3f}..{self.end:.3f} {what}]"


class Fault(NamedTuple):
    """A fault injected during the run: its time (time.time(), as esrt.testing.faults returns
    it), a kind to group by ("power-off", "kill-sep") and free text."""

    time: float
    kind: str
    description: str = ""


class History(NamedTuple):
    """What a history file holds: the operations, by start time, and the faults."""

    operations: list
    faults: list


def collect(recorders):
    """The operations of several RecordingClients, merged and ordered by start time."""
    operations = [op for recorder in recorders for op in recorder.operations()]
    return sorted(operations, key=lambda op: (op.start, op.client))


def save_history(path, operations, faults=()):
    """Write `operations` and `faults` to `path`, one JSON object per line; return the path."""
    with open(path, "w", encoding="utf-8") as out:
        for fault in faults:
            fault = Fault(*fault)
            out.write(json.dumps({"type": "fault", **fault._asdict()}) + "\n")
        for operation in operations:
            out.write(json.dumps(operation.to_json()) + "\n")
    return path


def load_history(path):
    """Read a history file written by save_history; return a History."""
    operations, faults = [], []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                kind = fields.pop("type", "op")
                if kind == "fault":
                    faults.append(Fault(**fields))
                elif kind == "op":
                    operations.append(Operation.from_json(fields))
                else:
                    raise ValueError(f"unknown line type {kind!r} (\"op\" or \"fault\")")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a history line ({exc}); history files "
                                 "are written by esrt.testing.history.save_history") from None
    operations.sort(key=lambda op: (op.start, op.client))
    faults.sort()
    return History(operations, faults)


class ResendSettler:
    """Settles a call of unknown outcome by sending it again with its own Idempotency-Key.

    The region stores a call's reply in the call's own transaction, so if the call committed,
    the resend returns that first reply and its counter. If it did not commit, the resend runs
    it now: the call is then applied, once, at settlement time, and its counter is a new one.
    Either way the call took exactly the counter returned, which is what the checker needs;
    the price is that settling changes the data, so read the final counter (next_counter)
    after settling, never before. Settle only once every region is quiet (recorders stopped,
    hung regions resumed or gone), and within the server's idempotency_ttl: an expired stored
    reply makes the resend run a committed call a second time.

    A reply with a non-zero RETURN-CODE settles to None: CBLAPP01 returns 8 when it could not
    count, and changes nothing then.
    """

    def __init__(self, url, service="srv01.CBLAPP01", counter_field="LK-COUNTER",
                 timeout=10.0, retry_for=60.0):
        Client(url)  # validates the URL now, with Client's clear message
        self.url = url
        self.service = service
        self.counter_field = counter_field
        self.timeout = timeout
        self.retry_for = retry_for

    def _call(self, key):
        return call(self.url, self.service, timeout=self.timeout, idempotency_key=key,
                    retry_for=self.retry_for)

    def __call__(self, key):
        reply = self._call(key)
        if reply.return_code != 0:
            return None
        try:
            return int(reply[self.counter_field])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"settling {key}: {self.service}'s reply has no counter in "
                             f"{self.counter_field} ({dict(reply)}); pass counter_field=") from None

    def next_counter(self):
        """Make one more call (a new key) and return its counter: the value the data held
        after the run and its settlement, to pass to check_history as `final`."""
        counter = self(uuid.uuid4().hex)
        if counter is None:
            raise RuntimeError(f"{self.service} at {self.url} answered a non-zero RETURN-CODE: "
                               "it cannot count; see the region's console log")
        return counter
