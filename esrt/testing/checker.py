"""Proves or refutes that a history of counter calls (esrt.testing.history) lost nothing.

The service under test takes one counter per applied call: CBLAPP01 returns the value it read
(`initial` for the first call after INITFILE1, then initial+1, ...) and stores it plus one.
So in a correct run the applied calls hold the counters initial, initial+1, ..., final-1,
each exactly once, and a call that completed before another began holds the smaller one.
check_history() looks for every way that can fail (KINDS) and returns a Report; outages()
turns the same history and the faults injected into client-visible outage times.
"""

import bisect
import collections
import dataclasses
import statistics
from typing import NamedTuple, Optional, Sequence

from esrt.testing.history import ERROR, OK, UNKNOWN, Fault

KINDS = {
    "duplicate": "two calls hold the same counter: both read the same value, so the "
                 "increment of one was lost (a lost update); also when a call of unknown "
                 "outcome settles to a counter another call was acknowledged",
    "gap": "a counter below the final value that no call holds and no call of unsettled "
           "outcome can account for: a call reported as failed was applied, or a call was "
           "applied twice (its retry ran again instead of returning the stored reply)",
    "double-apply": "one Idempotency-Key holds two counters, or more counters were taken "
                    "than the history has calls, failed ones included",
    "order": "a call acknowledged before another began holds a counter that is not smaller: "
             "the counter went back (an acknowledged write was lost, or a call ran on a "
             "stale copy of the data)",
    "lost-write": "a counter was acknowledged (or settled) that the final value does not "
                  "include, or one below the initial value",
}


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One violation: its kind (a key of KINDS), what happened, the operations involved and
    the counters concerned (a range for a gap)."""

    kind: str
    message: str
    operations: tuple = ()
    counters: Sequence = ()

    def __str__(self):
        lines = [f"{self.kind}: {self.message}"]
        lines += [f"    {operation}" for operation in self.operations]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Counts of the history: outcomes as the clients saw them, how many unknown outcomes
    were settled (and of those, applied), how many distinct calls took a counter, and the
    counters' range: initial to final - 1."""

    calls: int
    ok: int
    error: int
    unknown: int
    settled: int
    settled_applied: int
    unsettled: int
    applied: int
    initial: int
    final: int


@dataclasses.dataclass(frozen=True)
class Report:
    """What check_history found: `anomalies` (empty when the history is correct), a
    `summary`, and the operations as checked (unknown ones settled)."""

    anomalies: tuple
    summary: Summary
    operations: tuple

    @property
    def valid(self):
        """True when no anomaly was found."""
        return not self.anomalies

    def kinds(self):
        """The set of anomaly kinds found."""
        return {anomaly.kind for anomaly in self.anomalies}

    def of_kind(self, kind):
        """The anomalies of one kind."""
        return [anomaly for anomaly in self.anomalies if anomaly.kind == kind]

    def __str__(self):
        s = self.summary
        head = (f"{s.calls} calls: {s.ok} ok, {s.error} error, {s.unknown} unknown "
                f"({s.settled} settled, {s.settled_applied} of them applied; {s.unsettled} "
                f"unsettled); counters {s.initial}..{s.final - 1}: ")
        if self.valid:
            return head + "no anomaly"
        return "\n".join([head + f"{len(self.anomalies)} anomalies", *map(str, self.anomalies)])


def settle_history(operations, settle):
    """The operations with each unknown outcome settled by `settle(key)`.

    `settle` takes an Idempotency-Key and returns the counter the call committed with, or
    None if it was not applied (esrt.testing.history.ResendSettler is one). It is asked once
    per key; calls without a key cannot be settled and stay unknown.
    """
    answers = {}
    settled = []
    for operation in operations:
        if operation.outcome == UNKNOWN and not operation.settled and operation.key:
            if operation.key not in answers:
                counter = settle(operation.key)
                if counter is not None and (isinstance(counter, bool)
                                            or not isinstance(counter, int)):
                    raise TypeError(f"settle({operation.key!r}) returned {counter!r}: it must "
                                    "return the committed counter (an int) or None")
                answers[operation.key] = counter
            operation = dataclasses.replace(operation, settled=True,
                                            counter=answers[operation.key])
        settled.append(operation)
    return settled


def check_history(operations, settle=None, initial=0, final=None):
    """Check a counter history; return a Report listing every anomaly (see KINDS).

    `initial` is the counter the first applied call returns (the value the data held before
    the run; 0 after CBLAPP01's INITFILE1). `final`, if known, is the value it holds after the
    run: the counter one more call gets (ResendSettler.next_counter()); without it the
    highest counter held stands for the end, and a write lost at the very end goes unseen.
    `settle`, if given, settles unknown outcomes first (settle_history). A settler that
    resends applies the calls that had not been applied, so with `final` settle first:
    settled = settle_history(operations, settler); final = settler.next_counter();
    check_history(settled, initial=..., final=final).
    """
    checked = sorted(operations, key=lambda op: (op.start, op.client))
    if settle is not None:
        checked = settle_history(checked, settle)
    anomalies = []
    applications = _applications(checked, anomalies)
    held = collections.defaultdict(list)
    for counter, group in applications:
        held[counter].append(group)
    top = final if final is not None else (max(held) + 1 if held else initial)
    _duplicates(held, anomalies)
    _out_of_range(applications, initial, final, anomalies)
    acknowledged = _Acknowledged(checked)
    _order(checked, acknowledged, anomalies)
    unsettled = [op for op in checked if op.applied is None]
    thresholds = []
    for operation in unsettled:
        earlier = acknowledged.highest_before(operation.start)
        thresholds.append(earlier.counter if earlier is not None else initial - 1)
    _gaps(held, initial, top, thresholds, anomalies)
    calls = len({op.key for op in checked if op.key}) + sum(1 for op in checked if not op.key)
    taken = top - initial
    if taken > calls:
        anomalies.append(Anomaly("double-apply", (
            f"{taken} counters were taken ({initial}..{top - 1}) by a history of {calls} "
            f"calls, failed ones included: at least {taken - calls} call(s) were applied "
            "twice, or something outside this history called the service"),
            counters=range(initial, top)))
    outcomes = collections.Counter(op.outcome for op in checked)
    settled = [op for op in checked if op.settled]
    summary = Summary(calls=len(checked), ok=outcomes[OK], error=outcomes[ERROR],
                      unknown=outcomes[UNKNOWN], settled=len(settled),
                      settled_applied=sum(1 for op in settled if op.applied),
                      unsettled=len(unsettled), applied=len(applications), initial=initial,
                      final=top)
    return Report(tuple(anomalies), summary, tuple(checked))


def _applications(operations, anomalies):
    """[(counter, operations)] with one entry per distinct application: operations that share
    an Idempotency-Key and a counter are one call retried; one key with two counters is a
    double application."""
    applications = []
    by_key = collections.defaultdict(lambda: collections.defaultdict(list))
    for operation in operations:
        if not operation.applied:
            continue
        if operation.key:
            by_key[operation.key][operation.counter].append(operation)
        else:
            applications.append((operation.counter, (operation,)))
    for key, counters in by_key.items():
        if len(counters) > 1:
            involved = tuple(op for group in counters.values() for op in group)
            anomalies.append(Anomaly("double-apply", (
                f"key {key} holds counters {sorted(counters)}: one call was applied "
                f"{len(counters)} times"), involved, tuple(sorted(counters))))
        applications.extend((counter, tuple(group)) for counter, group in counters.items())
    applications.sort(key=lambda application: application[0])
    return applications


def _duplicates(held, anomalies):
    for counter, groups in sorted(held.items()):
        if len(groups) < 2:
            continue
        involved = tuple(op for group in groups for op in group)
        settled = any(op.settled for op in involved)
        anomalies.append(Anomaly("duplicate", (
            f"counter {counter} is held by {len(groups)} calls"
            + (" (one of them of unknown outcome, settled to it)" if settled else "")
            + f": the increment of {len(groups) - 1} of them was lost"), involved, (counter,)))


def _out_of_range(applications, initial, final, anomalies):
    for counter, group in applications:
        if counter < initial:
            anomalies.append(Anomaly("lost-write", (
                f"counter {counter} is below the initial value {initial}: the data went back "
                "before the run's start (or `initial` is not what the data held)"),
                group, (counter,)))
        elif final is not None and counter >= final:
            hint = ("; read `final` after settling, since a resend applies unapplied calls"
                    if any(op.settled for op in group) else "")
            anomalies.append(Anomaly("lost-write", (
                f"counter {counter} was taken but the final value is {final}: the write was "
                f"lost after it committed{hint}"), group, (counter,)))


class _Acknowledged:
    """The acknowledged calls by end time, to find the highest counter acknowledged before a
    moment in O(log n)."""

    def __init__(self, operations):
        calls = sorted((op for op in operations if op.outcome == OK), key=lambda op: op.end)
        self.ends = [op.end for op in calls]
        self.highest = []  # highest[i]: the call with the highest counter among calls[:i + 1]
        for operation in calls:
            if not self.highest or operation.counter > self.highest[-1].counter:
                self.highest.append(operation)
            else:
                self.highest.append(self.highest[-1])

    def highest_before(self, moment):
        """The call with the highest counter among those acknowledged before `moment`."""
        index = bisect.bisect_left(self.ends, moment)
        return self.highest[index - 1] if index else None


def _order(operations, acknowledged, anomalies):
    for operation in operations:
        if not operation.applied:
            continue
        earlier = acknowledged.highest_before(operation.start)
        if earlier is not None and earlier.counter >= operation.counter:
            anomalies.append(Anomaly("order", (
                f"a call acknowledged with counter {earlier.counter} ended before a call "
                f"holding {operation.counter} began: the counter went back"),
                (earlier, operation), (earlier.counter, operation.counter)))


def _runs(held, initial, top):
    """The counters in initial..top-1 that nobody holds, as (low, high) runs."""
    runs = []
    expected = initial
    for counter in sorted(c for c in held if initial <= c < top) + [top]:
        if counter > expected:
            runs.append((expected, counter - 1))
        expected = counter + 1
    return runs


def _gaps(held, initial, top, thresholds, anomalies):
    """Report the missing counters that the unsettled calls cannot hold.

    An unsettled call may hold any counter above the highest one acknowledged before it began
    (its threshold). Missing counters are matched to such calls lowest first: a call that may
    hold a low counter may hold every higher one too, so any eligible call will do.
    """
    thresholds = sorted(thresholds)
    ready = 0  # calls whose threshold is below the counter at hand and not yet used
    joined = 0
    for low, high in _runs(held, initial, top):
        counter = low
        unexplained = []
        while counter <= high:
            while joined < len(thresholds) and thresholds[joined] < counter:
                ready += 1
                joined += 1
            # No call joins the pool before the next threshold + 1.
            limit = thresholds[joined] + 1 if joined < len(thresholds) else high + 1
            stretch = min(limit, high + 1) - counter
            if ready:
                taken = min(ready, stretch)
                ready -= taken
                counter += taken
            else:
                unexplained.append((counter, counter + stretch - 1))
                counter += stretch
        for first, last in _merge(unexplained):
            neighbours = tuple(group[0] for c in (first - 1, last + 1) for group in held.get(c, ()))
            span = f"counter {first}" if first == last else f"counters {first}..{last}"
            unsettled = (", and no call of unsettled outcome is left that could (they are "
                         "matched to the lowest missing counters first)" if thresholds else "")
            anomalies.append(Anomaly("gap", (
                f"no call holds {span}, below the final value{unsettled}: a call reported "
                "as failed was applied, or one was applied twice"),
                neighbours, range(first, last + 1)))


def _merge(runs):
    merged = []
    for first, last in runs:
        if merged and merged[-1][1] + 1 == first:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


# -- outages ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Outage:
    """The client-visible outage of one fault, in seconds from its injection: `seconds` to
    the first ok call any client sent after it, `every_client` until each client calling at
    the time had one (None if one never did), and `clients` {client id: seconds or None}."""

    fault: Fault
    seconds: Optional[float]
    every_client: Optional[float]
    clients: dict


class Spread(NamedTuple):
    """The outages of one kind of fault: how many faults, how many ended, min/median/max."""

    count: int
    recovered: int
    min: Optional[float]
    median: Optional[float]
    max: Optional[float]


class Outages(NamedTuple):
    """What outages() found: one Outage per fault, in time order, and a Spread per kind."""

    faults: list
    by_kind: dict


def outages(operations, faults):
    """Each fault's client-visible outage (Outage), and their spread per fault kind.

    A client is back once a call it sent after the fault (the call's last attempt, for a
    call retried with one Idempotency-Key) was acknowledged; the outage ends when that
    acknowledgement arrives.
    """
    operations = list(operations)
    acknowledged = collections.defaultdict(list)
    for operation in operations:
        if operation.outcome == OK:
            acknowledged[operation.client].append(operation)
    found = []
    for fault in sorted(Fault(*fault) for fault in faults):
        calling = sorted({op.client for op in operations if op.end >= fault.time})
        clients = {}
        for client in calling:
            ends = [op.end for op in acknowledged[client] if op.last_try >= fault.time]
            clients[client] = min(ends) - fault.time if ends else None
        times = [seconds for seconds in clients.values() if seconds is not None]
        found.append(Outage(fault, min(times) if times else None,
                            max(times) if times and len(times) == len(clients) else None,
                            clients))
    by_kind = {}
    for kind in sorted({outage.fault.kind for outage in found}):
        of_kind = [outage for outage in found if outage.fault.kind == kind]
        times = sorted(outage.seconds for outage in of_kind if outage.seconds is not None)
        by_kind[kind] = Spread(len(of_kind), len(times), times[0] if times else None,
                               statistics.median(times) if times else None,
                               times[-1] if times else None)
    return Outages(found, by_kind)
