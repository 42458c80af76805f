"""RecordingClient against a real CBLAPP01 region, and its outage arithmetic."""

import socket

import pytest

from esrt.testing.faults import kill_sep
from esrt.testing.recorder import Record, RecordingClient


def test_counters_are_distinct_and_consecutive_and_logged(esrt_region, tmp_path):
    recorder = RecordingClient(esrt_region.url).start()
    try:
        recorder.wait_for_calls(40, timeout=60)
    finally:
        records = recorder.stop()
    counters = recorder.counters()
    assert len(counters) >= 40
    assert counters == list(range(len(counters)))
    assert recorder.hosts() == [socket.gethostname()[:20]]
    assert recorder.gaps() == [] and recorder.duplicates() == []
    lines = recorder.write_log(tmp_path / "client.log").read_text().splitlines()
    assert len(lines) == len(records)
    date, clock, host, counter, outcome = lines[0].split()
    assert (host, counter, outcome) == (socket.gethostname()[:20], "0", "ok")


def test_no_counter_is_skipped_when_a_sep_dies_while_calling(node, srv01_car):
    from conftest import start_cblapp01_region
    region = start_cblapp01_region(node, srv01_car, seps=1)
    recorder = RecordingClient(region.url).start()
    try:
        recorder.wait_for_calls(10)
        kill_sep(node, region.name, 1)
        # The region restarts the SEP; calling goes on from where it was.
        recorder.wait_for_calls(20, timeout=60)
    finally:
        recorder.stop()
    assert recorder.gaps() == []
    assert recorder.duplicates() == []
    assert recorder.counters()[0] == 0


def _client_with(records):
    client = RecordingClient("http://127.0.0.1:1")
    client.records = [Record(*fields) for fields in records]
    return client


def test_outage_runs_from_the_fault_to_the_first_ok_on_another_host():
    client = _client_with([
        (100.0, "node1", 5, "ok"), (101.0, "node1", 6, "ok"),
        (102.0, None, None, "connection refused"), (104.5, "node1", 7, "ok"),
        (106.0, "node2", 8, "ok"), (107.0, "node2", 9, "ok")])
    assert client.outage(101.5) == pytest.approx(4.5)
    assert client.outage(99.0) is None       # nothing acknowledged before: no "old" host
    assert client.outage(106.5) is None      # no other host after the last switch
    assert client.hosts() == ["node1", "node2"]
    assert client.counters() == [5, 6, 7, 8, 9]


def test_gaps_and_duplicates_show_lost_and_repeated_calls():
    client = _client_with([(1.0, "a", 338, "ok"), (2.0, None, None, "I/O error"),
                           (3.0, "b", 340, "ok"), (4.0, "b", 340, "ok")])
    assert client.gaps() == [339]            # the report's pattern 5: 339 never reached a client
    assert client.duplicates() == [340]


def test_bad_url_is_refused_with_the_expected_form():
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        RecordingClient("10.0.0.1:9003")
