"""check_history and outages on histories made by hand and by a simulated counter.

The simulation plays the service: concurrent clients invoke calls, each call takes the next
counter at some moment between its start and (for an unknown outcome) any time later, and
completes "ok", "error" (never applied) or "unknown". Every history it makes is correct, so
the checker must accept all of them, however their unknowns are settled; each mutation then
breaks one property, and the checker must name it.
"""

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from esrt.testing.checker import KINDS, check_history, outages, settle_history
from esrt.testing.history import ERROR, OK, UNKNOWN, Fault, Operation


def op(client, start, end, outcome, counter=None, key=None, **fields):
    return Operation(client, key, float(start), float(end), outcome, counter, **fields)


# -- the simulated counter ---------------------------------------------------------------

class Simulation:
    """A counter service and its clients; time moves one unit per event."""

    def __init__(self, initial):
        self.initial = initial
        self.value = initial
        self.now = 0.0
        self.inflight = {}     # client -> the call it waits for
        self.late = []         # calls given up before they were applied: they may still be
        self.calls = []        # (operation index, call), to learn each key's truth at the end
        self.operations = []

    def __repr__(self):
        return (f"Simulation(initial={self.initial}, value={self.value}, operations=[\n  "
                + ",\n  ".join(map(str, self.operations)) + "])")

    def apply(self, call):
        call["counter"] = self.value
        self.value += 1

    def step(self, client, action, keyed):
        self.now += 1.0
        call = self.inflight.get(client)
        if action == "late" and self.late:
            self.apply(self.late.pop(0))
        elif call is None:
            number = len(self.calls) + len(self.inflight)
            self.inflight[client] = {"key": f"key-{number}" if keyed else None,
                                     "start": self.now, "counter": None}
        elif action in ("go", "late"):
            if call["counter"] is None:
                self.apply(call)
            else:
                self.complete(client, OK)
        elif action == "error" and call["counter"] is None:
            self.complete(client, ERROR)
        else:
            self.complete(client, UNKNOWN)

    def complete(self, client, outcome):
        call = self.inflight.pop(client)
        if outcome == UNKNOWN and call["counter"] is None:
            self.late.append(call)
        self.calls.append((len(self.operations), call))
        self.operations.append(op(f"c{client}", call["start"], self.now, outcome,
                                  call["counter"] if outcome == OK else None, call["key"],
                                  host="node1"))

    def finish(self):
        for client in sorted(self.inflight):
            self.now += 1.0
            self.complete(client, UNKNOWN)
        return self

    def truth(self):
        """{key: the counter its call took, or None}."""
        return {call["key"]: call["counter"] for _, call in self.calls if call["key"]}

    def resend(self):
        """A settler that behaves like ResendSettler: the stored reply if the call was
        applied, else the call applied now."""
        def settle(key):
            call = next(call for _, call in self.calls if call["key"] == key)
            if call["counter"] is None:
                self.apply(call)
            return call["counter"]
        return settle


@st.composite
def simulations(draw, keyed=0.85):
    simulation = Simulation(draw(st.integers(0, 5)))
    clients = draw(st.integers(1, 4))
    for _ in range(draw(st.integers(0, 80))):
        simulation.step(draw(st.integers(0, clients - 1)),
                        draw(st.sampled_from(["go", "go", "go", "error", "unknown", "late"])),
                        draw(st.integers(0, 99)) < keyed * 100)
    return simulation.finish()


def simulated(examples):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- correct histories are accepted ------------------------------------------------------

@simulated(300)
@given(simulations())
def test_a_correct_history_is_valid_without_settling(simulation):
    ops = simulation.operations
    for final in (None, simulation.value):
        report = check_history(ops, initial=simulation.initial, final=final)
        assert report.valid, str(report)
    assert report.summary.ok == sum(1 for o in ops if o.outcome == OK)
    assert report.summary.final == simulation.value


@simulated(300)
@given(simulations())
def test_a_correct_history_is_valid_once_settled_by_the_truth(simulation):
    report = check_history(simulation.operations, settle=simulation.truth().get,
                           initial=simulation.initial, final=simulation.value)
    assert report.valid, str(report)
    keyed_unknowns = [o for o in simulation.operations if o.outcome == UNKNOWN and o.key]
    assert report.summary.settled == len(keyed_unknowns)
    assert report.summary.unsettled == sum(1 for o in simulation.operations
                                           if o.outcome == UNKNOWN and not o.key)


@simulated(300)
@given(simulations())
def test_a_correct_history_is_valid_once_settled_by_resending(simulation):
    settled = settle_history(simulation.operations, simulation.resend())
    # Read after settling: resending applied the calls that had not been.
    report = check_history(settled, initial=simulation.initial, final=simulation.value)
    assert report.valid, str(report)
    assert all(o.applied is not False for o in settled if o.outcome == UNKNOWN)


# -- broken histories are caught, each with its kind -------------------------------------

def settled_run(draw):
    simulation = draw(simulations(keyed=1.0))
    return simulation, simulation.truth().get, simulation.initial, simulation.value


def kinds(operations, settle, initial, final):
    return check_history(operations, settle=settle, initial=initial, final=final).kinds()


def acknowledged(operations):
    return [index for index, o in enumerate(operations) if o.outcome == OK]


@simulated(150)
@given(st.data())
def test_two_calls_acknowledged_the_same_counter_is_a_duplicate(data):
    simulation, settle, initial, final = settled_run(data.draw)
    ops = list(simulation.operations)
    oks = acknowledged(ops)
    assume(len(oks) >= 2)
    first, second = data.draw(st.permutations(oks))[:2]
    ops[second] = dataclasses.replace(ops[second], counter=ops[first].counter)
    assert "duplicate" in kinds(ops, settle, initial, final)


@simulated(150)
@given(st.data())
def test_an_applied_call_reported_as_failed_leaves_a_gap(data):
    simulation, settle, initial, final = settled_run(data.draw)
    ops = list(simulation.operations)
    oks = acknowledged(ops)
    assume(oks)
    index = data.draw(st.sampled_from(oks))
    ops[index] = dataclasses.replace(ops[index], outcome=ERROR, counter=None)
    assert kinds(ops, settle, initial, final) == {"gap"}


@simulated(150)
@given(st.data())
def test_a_key_holding_two_counters_is_a_double_application(data):
    simulation, settle, initial, final = settled_run(data.draw)
    ops = list(simulation.operations)
    oks = acknowledged(ops)
    assume(oks)
    again = ops[data.draw(st.sampled_from(oks))]
    ops.append(dataclasses.replace(again, start=simulation.now + 1, end=simulation.now + 2,
                                   counter=final))
    assert kinds(ops, settle, initial, final + 1) == {"double-apply"}


@simulated(150)
@given(st.data())
def test_more_counters_than_calls_is_a_double_application(data):
    simulation, settle, initial, final = settled_run(data.draw)
    # Only calls that were applied, so that every counter has its call...
    ops = [o for o in simulation.operations if settle(o.key) is not None]
    oks = acknowledged(ops)
    assume(oks)
    del ops[data.draw(st.sampled_from(oks))]  # ...but one: a call run twice took its counter
    assert kinds(ops, settle, initial, final) == {"double-apply", "gap"}


@simulated(150)
@given(st.data())
def test_a_later_call_with_a_smaller_counter_breaks_real_time_order(data):
    simulation, settle, initial, final = settled_run(data.draw)
    ops = list(simulation.operations)
    pairs = [(a, b) for a in acknowledged(ops) for b in acknowledged(ops)
             if ops[a].end < ops[b].start]
    assume(pairs)
    a, b = data.draw(st.sampled_from(pairs))
    ops[a], ops[b] = (dataclasses.replace(ops[a], counter=ops[b].counter),
                      dataclasses.replace(ops[b], counter=ops[a].counter))
    assert kinds(ops, settle, initial, final) == {"order"}


@simulated(150)
@given(st.data())
def test_an_unknown_settling_to_an_acknowledged_counter_is_a_duplicate(data):
    simulation, truth, initial, final = settled_run(data.draw)
    ops = simulation.operations
    unknowns = [o.key for o in ops if o.outcome == UNKNOWN]
    oks = acknowledged(ops)
    assume(unknowns and oks)
    key = data.draw(st.sampled_from(unknowns))
    taken = ops[data.draw(st.sampled_from(oks))].counter
    report = check_history(ops, settle=lambda k: taken if k == key else truth(k),
                           initial=initial, final=final)
    assert "duplicate" in report.kinds()
    (duplicate,) = report.of_kind("duplicate")
    assert duplicate.counters == (taken,)
    assert key in {o.key for o in duplicate.operations}


@simulated(150)
@given(st.data())
def test_an_acknowledged_counter_the_final_value_lacks_is_a_lost_write(data):
    simulation, settle, initial, _ = settled_run(data.draw)
    oks = acknowledged(simulation.operations)
    assume(oks)
    lost = simulation.operations[data.draw(st.sampled_from(oks))].counter
    assert "lost-write" in kinds(simulation.operations, settle, initial, lost)


# -- each kind, by hand ------------------------------------------------------------------

def test_a_sequential_history_is_valid_and_summarised():
    ops = [op("a", i, i + 0.5, OK, i, f"k{i}") for i in range(5)]
    report = check_history(ops, final=5)
    assert report.valid and report.anomalies == ()
    assert (report.summary.calls, report.summary.ok, report.summary.final) == (5, 5, 5)
    assert str(report).endswith("counters 0..4: no anomaly")


def test_a_failover_that_loses_the_last_committed_write_is_caught_three_ways():
    # node1 acknowledged 2, then the standby took over with the file as it was before 2.
    ops = [op("a", 0, 1, OK, 0, "k0"), op("a", 2, 3, OK, 1, "k1"), op("a", 4, 5, OK, 2, "k2"),
           op("a", 6, 9, OK, 2, "k3", host="node2"), op("a", 10, 11, OK, 3, "k4")]
    report = check_history(ops, final=4)
    assert report.kinds() == {"duplicate", "order"}
    (duplicate,) = report.of_kind("duplicate")
    assert duplicate.counters == (2,) and [o.key for o in duplicate.operations] == ["k2", "k3"]
    (order,) = report.of_kind("order")
    assert [o.key for o in order.operations] == ["k2", "k3"]
    # Lost at the very end, it shows only against the final value.
    assert check_history(ops[:3], final=2).kinds() == {"lost-write"}
    assert check_history(ops[:3]).valid


def test_a_gap_names_its_neighbours_and_unknowns_explain_only_what_they_can():
    ops = [op("a", 0, 1, OK, 0, "k0"), op("a", 2, 3, OK, 1, "k1"), op("a", 6, 7, OK, 4, "k4"),
           op("c", 3, 4, ERROR, key="e2"), op("c", 4, 5, ERROR, key="e3")]
    (gap,) = check_history(ops).anomalies
    assert (gap.kind, list(gap.counters)) == ("gap", [2, 3])
    assert [o.key for o in gap.operations] == ["k1", "k4"]
    # One call of unknown outcome started after 1 was acknowledged: it may hold 2 or 3.
    unknown = op("b", 4, 5, UNKNOWN, key="u")
    (gap,) = check_history(ops + [unknown]).anomalies
    assert list(gap.counters) == [3]   # matched to the lowest missing counter first
    # Settled, it holds 3 (applied) or nothing (then 2 and 3 are both missing).
    assert list(check_history(ops + [unknown], settle={"u": 3}.get).anomalies[0].counters) == [2]
    # Begun after 4 was acknowledged, it can hold neither.
    late = op("b", 8, 9, UNKNOWN, key="v")
    assert list(check_history(ops + [late, unknown]).of_kind("gap")[0].counters) == [3]
    early = op("c", 1.5, 9, UNKNOWN)   # no key: never settled, may hold anything above 0
    assert check_history(ops + [unknown, early]).valid


def test_a_retried_call_is_one_application_but_a_key_with_two_counters_is_two():
    retried = [op("a", 0, 1, UNKNOWN, key="k"), op("a", 1, 2, OK, 0, "k")]
    assert check_history(retried, settle={"k": 0}.get, final=1).valid
    report = check_history(retried, settle={"k": 1}.get, final=2)
    assert report.kinds() == {"double-apply"}
    assert report.anomalies[0].counters == (0, 1)


def test_a_settled_counter_past_the_final_value_hints_at_reading_it_later():
    ops = [op("a", 0, 1, OK, 0, "k0"), op("a", 2, 3, UNKNOWN, key="k1")]
    report = check_history(ops, settle={"k1": 1}.get, final=1)
    assert report.kinds() == {"lost-write"}
    assert "read `final` after settling" in report.anomalies[0].message
    assert "below the initial" in check_history(ops[:1], initial=1).anomalies[0].message


def test_settle_is_asked_once_per_key_and_must_answer_a_counter_or_none():
    asked = []
    ops = [op("a", 0, 1, UNKNOWN, key="k"), op("b", 0, 2, UNKNOWN, key="k"),
           op("c", 0, 1, UNKNOWN), op("d", 0, 1, OK, 0, "j")]
    settled = settle_history(ops, lambda key: asked.append(key))
    assert asked == ["k"]
    assert [o.applied for o in settled] == [False, False, None, True]
    with pytest.raises(TypeError, match="must return the committed counter"):
        settle_history(ops, lambda key: "7")


def test_every_kind_is_explained_and_a_report_prints_its_anomalies():
    assert set(KINDS) == {"duplicate", "gap", "double-apply", "order", "lost-write"}
    report = check_history([op("a", 0, 1, OK, 0, "k"), op("b", 0, 1, OK, 0, "j")])
    text = str(report)
    assert text.startswith("2 calls: 2 ok, 0 error, 0 unknown")
    assert "duplicate: counter 0 is held by 2 calls" in text
    assert "[a key k 0.000..1.000 ok 0]" in text


# -- outages ------------------------------------------------------------------------------

def test_outage_runs_from_the_fault_to_the_first_ok_call_sent_after_it():
    ops = [op("a", 8, 9, OK, 0, "a0"),
           op("a", 9.5, 12.2, OK, 2, "a1", attempts=3, last_try=12.0),  # retried after it
           op("b", 9.9, 10.1, UNKNOWN, key="b0"),
           op("b", 10.2, 11.5, OK, 1, "b1"),
           op("c", 1, 2, OK, 3, "c0")]                                   # gone before it
    fault = Fault(10.0, "kill-sep", "SEP 1 of ESSRV01")
    (outage,), by_kind = outages(ops, [fault])
    assert outage.fault == fault
    assert outage.clients == {"a": pytest.approx(2.2), "b": pytest.approx(1.5)}
    assert outage.seconds == pytest.approx(1.5)
    assert outage.every_client == pytest.approx(2.2)
    assert by_kind["kill-sep"].count == 1


def test_outages_are_spread_per_fault_kind_and_unended_ones_counted():
    ops = [op("a", t, t + 0.1, OK, i, f"k{i}") for i, t in enumerate([1, 3, 7.5, 9, 15])]
    faults = [(0.5, "kill-sep", ""), (2.0, "kill-sep", ""), (5.0, "kill-sep", ""),
              (14.0, "power-off", "node1"), (20.0, "power-off", "node2")]
    found, by_kind = outages(ops, faults)
    assert [o.seconds for o in found][:4] == pytest.approx([0.6, 1.1, 2.6, 1.1])
    assert found[4].seconds is None and found[4].every_client is None
    spread = by_kind["kill-sep"]
    assert (spread.count, spread.recovered) == (3, 3)
    assert (spread.min, spread.median, spread.max) == pytest.approx((0.6, 1.1, 2.6))
    power = by_kind["power-off"]
    assert (power.count, power.recovered, power.median) == (2, 1, pytest.approx(1.1))
