"""The graphs of Monitor & Control in a real headless Chromium, against a real mfds and a
CBLAPP01 region under load: the curves move while calls flow, a service can be picked, the
points survive a restart of mfds, and nothing is fetched from anywhere but mfds."""

import os
import threading
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from esrt.client import Client
from esrt.mfds import daemon
from esrt.home import Home
from test_admin_ui import PATIENCE, browser  # noqa: F401

from conftest import start_cblapp01_region

SERVICE = "srv01.CBLAPP01"
CHARTS = ("calls", "errors", "latency", "queue", "busy")
# Where the README's screenshot is written, when asked for (ESRT_SCREENSHOT=path).
SCREENSHOT = os.environ.get("ESRT_SCREENSHOT")


class Load:
    """Calls CBLAPP01 from a thread until stopped; counts what it sent."""

    def __init__(self, url):
        self.url, self.calls, self._stop = url, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with Client(self.url) as client:
            while not self._stop.is_set():
                client.call(SERVICE)
                self.calls += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)


def chart(driver, name):
    """(points drawn, newest value, the first curve's coordinates) of chart `name`, read in
    one step: the script redraws the charts at every update."""
    points, last, drawn = driver.execute_script(
        "var svg = document.getElementById(arguments[0]);"
        "var curve = svg && svg.querySelector('polyline');"
        "return svg && curve ? [svg.getAttribute('data-points'), svg.getAttribute('data-last'),"
        " curve.getAttribute('points')] : ['0', '0', ''];", f"chart-{name}")
    return int(points), float(last), drawn


def settle(predicate, what):
    """Wait (without reloading: the page updates itself) until predicate() holds."""
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def test_the_monitor_graphs_move_under_load_and_outlive_an_mfds_restart(node, srv01_car,
                                                                        browser):  # noqa: F811
    region = start_cblapp01_region(node, srv01_car, extra=("--history-interval", "1"))
    browser.get(f"{node.mfds_url}/servers/{region.name}?tab=monitor")
    assert browser.find_element(By.ID, "graphs")
    with Load(region.url) as load:
        settle(lambda: chart(browser, "calls")[1] > 10, "the calls curve to rise")
        points, _, drawn = chart(browser, "calls")
        # Live: more points, a different curve, without reloading the page.
        settle(lambda: chart(browser, "calls")[0] >= points + 2, "new points")
        assert chart(browser, "calls")[2] != drawn
        assert chart(browser, "latency")[1] > 0
        assert chart(browser, "busy")[0] == chart(browser, "calls")[0]
        assert "updated live" in browser.find_element(By.ID, "graph-status").text
        # One service: its own curve, which is the server's here (one service called).
        Select(browser.find_element(By.ID, "graph-service")).select_by_value(SERVICE)
        assert chart(browser, "calls")[1] > 0
        if SCREENSHOT:
            time.sleep(20)  # more points on the curves
            browser.set_window_size(1300, 1400)
            browser.refresh()  # the counters of the page too
            settle(lambda: chart(browser, "calls")[0] > 20, "the points after the reload")
            browser.save_screenshot(SCREENSHOT)
    assert load.calls > 0
    settle(lambda: chart(browser, "calls")[1] == 0, "the calls curve to fall once idle")

    # The points are the region's: a new mfds serves the same ones.
    before = chart(browser, "calls")[0]
    node.esrt("mfds", "--stop")
    daemon.start_daemon(Home(node.home), "127.0.0.1:0")
    browser.get(f"{node.mfds_url}/servers/{region.name}?tab=monitor")
    settle(lambda: chart(browser, "calls")[0] >= before, "the old points after the restart")
    for name in CHARTS:
        assert chart(browser, name)[0] > 0
    # Nothing but mfds was asked for anything.
    sources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (r) { return r.name; })")
    assert sources and all(url.startswith(node.mfds_url) for url in sources), sources
