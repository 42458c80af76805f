"""Fixtures of the failover tests: recording clients and the outage summary.

Each pattern gets its own lab (esrt.testing.plugin's `lab` fixture, loaded by
tests/conftest.py; a lab boots in about 6 s) because most patterns break a node for good.
Labs and clients are always stopped, whether the test passed or not; the clients' logs
("time host counter outcome", like the report's Java client) are kept next to the test's
tmp_path, and every measured outage is printed and collected into a summary at the end.
"""

import os
import time
from pathlib import Path

import pytest

from esrt.testing.recorder import RecordingClient

OUTAGES = []
SUMMARY = Path(os.environ.get("ESRT_FAILOVER_SUMMARY",
                              Path(__file__).resolve().parents[2] / ".pytest_cache"
                              / "failover-outages.txt"))


@pytest.fixture
def recorder(tmp_path):
    """recorder(url, **options) -> a started RecordingClient, stopped (and its log written)
    after the test."""
    made = []

    def make(url, **options):
        client = RecordingClient(url, **options).start()
        made.append(client)
        return client

    try:
        yield make
    finally:
        for index, client in enumerate(made):
            client.stop()
            client.write_log(tmp_path / f"client{index + 1}.log")


@pytest.fixture
def report_outage(request):
    """report_outage(label, seconds): print the client-visible outage and keep it for the
    summary printed at the end of the run."""
    def report(label, seconds):
        line = f"{request.node.name}: {label}: client-visible outage {seconds:.2f} s"
        print(line)
        OUTAGES.append(line)
        try:
            SUMMARY.parent.mkdir(parents=True, exist_ok=True)
            with open(SUMMARY, "a", encoding="utf-8") as summary:
                summary.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        except OSError:
            pass
    return report


def pytest_terminal_summary(terminalreporter):
    if OUTAGES:
        terminalreporter.section("failover outages (fault -> first reply on the other node)")
        for line in OUTAGES:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(also appended to {SUMMARY})")
