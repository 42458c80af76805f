"""A recording client for failover tests, like the report's Java client.

RecordingClient calls one service (CBLAPP01 by default) over and over from a thread and keeps a
record of every attempt: when it ended, which host answered (LK-HOSTNAME), which counter it got
(LK-COUNTER) and the outcome ("ok" or the error text). Watching host and counter is how the
report proved where each call ran and that no transaction was lost; outage() turns the records
into the client-visible takeover time.

With idempotency=True every logical call carries one Idempotency-Key, and a failed attempt is
sent again with the same key until it succeeds: a call that committed before its reply was
lost then returns that reply, so no counter is skipped and none is counted twice.

Besides the attempts, a RecordingClient keeps its history for esrt.testing.checker: one
esrt.testing.history.Operation per logical call (all the attempts that share a key), ending
"ok", "error" (certainly not applied) or "unknown". Run several, each with its own client_id,
to record concurrent clients; esrt.testing.history.collect() merges their histories.
"""

import collections
import itertools
import threading
import time
import uuid

from esrt.client import Client, ConnectionFailed, ServiceError
from esrt.testing.history import ERROR, UNKNOWN, Operation, attempt_outcome

Record = collections.namedtuple("Record", "time host counter outcome")
Record.__doc__ = """One call attempt: host time.time() at its end, the answering host and the
counter (None when it failed), and "ok" or the error text."""

OK = "ok"

_client_numbers = itertools.count(1)


class _Call:
    """The logical call in progress: its attempts so far."""

    def __init__(self, key):
        self.key = key
        self.start = time.time()
        self.last_try = self.start
        self.attempts = 0
        self.in_doubt = False  # some failed attempt may have been applied
        self.detail = ""

    def trying(self):
        self.attempts += 1
        self.last_try = time.time()

    def failed(self, outcome, detail):
        self.in_doubt = self.in_doubt or outcome == UNKNOWN
        self.detail = detail


class RecordingClient:
    """Calls `service` at `url` continuously in a thread, recording every attempt.

    `timeout` bounds one attempt (connect + reply), so a dead node costs at most that long
    before the next attempt; `pause` is the wait after a failed attempt. `client_id` names
    this client in its history (default: client-1, client-2, ... in creation order).
    """

    def __init__(self, url, service="srv01.CBLAPP01", idempotency=True, timeout=2.0,
                 pause=0.05, host_field="LK-HOSTNAME", counter_field="LK-COUNTER",
                 client_id=None):
        Client(url)  # validates the URL now, with Client's clear message, not in the thread
        self.url = url
        self.service = service
        self.idempotency = idempotency
        self.timeout = timeout
        self.pause = pause
        self.host_field = host_field
        self.counter_field = counter_field
        self.client_id = client_id or f"client-{next(_client_numbers)}"
        self.records = []
        self._operations = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None

    # -- running -----------------------------------------------------------------------------

    def start(self):
        """Start calling in a background thread; return self."""
        if self._thread is not None:
            raise RuntimeError("RecordingClient.start() called twice: make a new client to "
                               "record another run")
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"recorder {self.client_id} {self.url}")
        self._thread.start()
        return self

    def stop(self):
        """Stop calling (after the attempt in flight) and return all records."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 3 + 5)
        return self.snapshot()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def snapshot(self):
        """A copy of the records so far (safe while the thread runs)."""
        with self._lock:
            return list(self.records)

    def operations(self):
        """This client's history so far: one Operation per logical call, in order."""
        with self._lock:
            return list(self._operations)

    def _record(self, host, counter, outcome, when=None):
        with self._lock:
            self.records.append(Record(when or time.time(), host, counter, outcome))

    def _complete(self, call, end, outcome, counter=None, host=None, detail=""):
        # max(): the host clock may be stepped back during a run; the call still took time.
        operation = Operation(self.client_id, call.key, call.start, max(end, call.start),
                              outcome, counter, host, call.attempts, call.last_try, detail)
        with self._lock:
            self._operations.append(operation)

    def _give_up(self, call, end):
        """The call ends without an answer: stopped while retrying, or retrying is off."""
        self._complete(call, end, UNKNOWN if call.in_doubt else ERROR, detail=call.detail)

    def _run(self):
        client = Client(self.url, timeout=self.timeout)
        call = None
        end = None
        try:
            while not self._stopping.is_set():
                if call is None:
                    call = _Call(uuid.uuid4().hex if self.idempotency else None)
                # Taken before the call: a refused connection proves nothing was sent only
                # if no earlier connection could have carried the request first.
                fresh = not client.connected
                call.trying()
                try:
                    reply = client.call(self.service, idempotency_key=call.key)
                except (ConnectionFailed, ServiceError) as exc:
                    end = time.time()
                    text = str(exc) or type(exc).__name__
                    call.failed(attempt_outcome(exc, fresh), text)
                except Exception as exc:  # noqa: BLE001 - keep recording whatever happens; the test judges
                    end = time.time()
                    text = f"{type(exc).__name__}: {exc}"
                    call.failed(UNKNOWN, text)
                    client.close()
                else:
                    end = time.time()
                    answered, call = call, None
                    self._answered(answered, reply, end)
                    continue
                self._record(None, None, text, end)
                if not self.idempotency:
                    self._give_up(call, end)
                    call = None
                # Otherwise keep the key: the retry must return the first attempt's
                # committed reply.
                self._stopping.wait(self.pause)
        finally:
            client.close()
            if call is not None and call.attempts:
                self._give_up(call, end or time.time())

    def _answered(self, call, reply, end):
        host = str(reply.get(self.host_field, "")).strip()
        try:
            counter = int(reply.get(self.counter_field))
        except (TypeError, ValueError):
            counter = None
        self._record(host, counter, OK, end)
        if reply.return_code != 0:
            # CBLAPP01 returns 8 (and a zero counter) when it could not count: it changed
            # nothing, and a retry with the same key would get the same stored reply.
            self._complete(call, end, ERROR, host=host,
                           detail=f"RETURN-CODE {reply.return_code}")
        elif counter is None:
            self._complete(call, end, UNKNOWN, host=host,
                           detail=f"the reply has no {self.counter_field}")
        else:
            self._complete(call, end, OK, counter, host)

    # -- results -----------------------------------------------------------------------------

    def successes(self):
        """The records of acknowledged calls, in order."""
        return [record for record in self.snapshot() if record.outcome == OK]

    def counters(self):
        """The acknowledged counters, in order."""
        return [record.counter for record in self.successes()]

    def hosts(self):
        """The hosts that answered, in the order they first answered."""
        seen = []
        for record in self.successes():
            if record.host not in seen:
                seen.append(record.host)
        return seen

    def wait_for(self, predicate, timeout=60.0, what="the condition"):
        """Wait until predicate(successes) is true; raise AssertionError naming `what` if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.successes()):
                return
            time.sleep(0.05)
        tail = self.snapshot()[-5:]
        raise AssertionError(f"recording client: {what} did not happen within {timeout:.0f} s; "
                             f"last records: {tail}")

    def wait_for_calls(self, count, host=None, timeout=60.0):
        """Wait for `count` more acknowledged calls (answered by `host` if given)."""
        def matching(records):
            return [r for r in records if host is None or r.host == host]
        start = len(matching(self.successes()))
        self.wait_for(lambda records: len(matching(records)) >= start + count, timeout,
                      f"{count} acknowledged call(s){f' from {host}' if host else ''}")

    def outage(self, since):
        """Seconds from `since` to the first "ok" answered by a different host than the last
        "ok" before `since`; None if there is none (yet)."""
        records = self.successes()
        before = [record for record in records if record.time <= since]
        if not before:
            return None
        old_host = before[-1].host
        for record in records:
            if record.time > since and record.host != old_host:
                return record.time - since
        return None

    def gaps(self):
        """Counters missing between the lowest and highest acknowledged counter."""
        counters = sorted(set(self.counters()))
        if not counters:
            return []
        present = set(counters)
        return [c for c in range(counters[0], counters[-1] + 1) if c not in present]

    def duplicates(self):
        """Counters acknowledged more than once."""
        seen = collections.Counter(self.counters())
        return sorted(counter for counter, times in seen.items() if times > 1)

    def write_log(self, path):
        """Write the records as "time host counter outcome" lines (the report's client log)."""
        with open(path, "w", encoding="utf-8") as log:
            for record in self.snapshot():
                stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.time))
                stamp += f".{int(record.time * 100) % 100:02d}"
                log.write(f"{stamp} {record.host or '-'} "
                          f"{'-' if record.counter is None else record.counter} "
                          f"{record.outcome}\n")
        return path
