"""examples/haproxy: Debian's HAProxy in front of two regions on one PostgreSQL store, as the
example's README runs it (with free ports in place of the example's). Calls with idempotency
keys go on through a region killed outright: none is lost, none applied twice.
"""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from esrt.client import Client
from esrt.testing.postgres import free_port

from conftest import CallLoad, start_cblapp01_region, start_second_region, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "haproxy" / "haproxy.cfg"

pytestmark = pytest.mark.postgresql


def example_config(front, first, second):
    """The example's configuration with these addresses in place of its fixed ports."""
    text = EXAMPLE.read_text()
    for fixed, address in (("bind 127.0.0.1:9000", f"bind 127.0.0.1:{front}"),
                           ("essrv01 127.0.0.1:9003", f"essrv01 {first}"),
                           ("essrv02 127.0.0.1:9004", f"essrv02 {second}")):
        assert fixed in text, f"{EXAMPLE} no longer has {fixed!r}"
        text = text.replace(fixed, address)
    return text


@pytest.fixture
def haproxy(tmp_path):
    """Start HAProxy with a configuration text; stopped at the end, whatever happens."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: make setup installs Debian's haproxy package")
    started = []

    def start(config):
        path = tmp_path / "haproxy.cfg"
        path.write_text(config)
        checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True,
                                 text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        process = subprocess.Popen(["haproxy", "-db", "-f", str(path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_calls_go_on_through_a_killed_region(node, srv01_car, pg_store, haproxy):
    first = start_cblapp01_region(node, srv01_car, extra=("--store", pg_store))
    second_url = start_second_region(node, srv01_car, pg_store)
    front = free_port()
    haproxy(example_config(front, first.url.removeprefix("http://"),
                           second_url.removeprefix("http://")))
    url = f"http://127.0.0.1:{front}"

    def both_serve():
        try:
            with Client(url) as client:
                return client.call("srv01.CBLAPP01", retry_for=5)["LK-COUNTER"] == 0
        except Exception:  # noqa: BLE001 - not up yet
            return False

    wait_for(both_serve, "HAProxy to pass calls to the regions", limit=30)
    load = CallLoad(url)
    try:
        time.sleep(1.5)
        killed = time.monotonic()
        node.esrt("casstop", "-r", "ESSRV02", "--force")
        wait_for(lambda: load.answered_since(killed + 1.0) >= 50,
                 "calls after the region was killed")
    finally:
        load.stop()
    assert load.errors == []
    # 1 for the first call above; every counter once: nothing lost, nothing applied twice.
    assert sorted(load.counters) == list(range(1, len(load.counters) + 1))
    print(f"HAProxy, region killed: longest call {load.longest_call():.3f} s over "
          f"{len(load.counters)} calls")
    with Client(first.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == len(load.counters) + 1
