"""The admin pages in a real headless Chromium (Debian's chromium + chromedriver, Selenium),
against a real mfds and a real CBLAPP01 region.

One walk through what an administrator does: log in, create a server (fixing a validation
error), deploy srv01.car by upload, start the server, watch the Monitor counters move while the
service is called, read and search the console log, stop the server.
"""

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from esrt.home import Home
from esrt.mfds.users import UserStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cblapp01"
PASSWORD = "alice-secret-1"
# Upper bound for waiting on a page to show something: a broken build fails instead of hanging.
PATIENCE = 45.0

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: "
                                "pip install selenium")
if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
    pytest.skip("browser tests need Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser():
    profile = tempfile.mkdtemp(prefix="esrt-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, predicate, what):
    """Reload until predicate(driver) is true (pages are server-rendered)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            if predicate(driver):
                return
        except Exception:  # noqa: BLE001 - element not there yet
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; page was:\n{driver.page_source[:3000]}")
        time.sleep(0.3)
        driver.refresh()


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def wait_for_next_page(driver, old):
    """Wait until the page whose <html> element is `old` has been replaced.

    While Chromium swaps documents, chromedriver may answer "Node with given id does not
    belong to the document" instead of reporting the element stale: that means the same, so
    it is retried rather than failing the test.
    """
    WebDriverWait(driver, PATIENCE, ignored_exceptions=(WebDriverException,)).until(
        staleness_of(old))


def submit(driver, element_id):
    """Click a button or link and wait until the next page replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    wait_for_next_page(driver, old)


def click_and_confirm(driver, element_id):
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    alert = driver.switch_to.alert
    assert "ESSRV01" in alert.text
    alert.accept()
    wait_for_next_page(driver, old)


def test_admin_walkthrough(node, srv01_car, browser):
    home = Home(node.home)
    store = UserStore(home.repository)
    store.add("alice", PASSWORD, "admin")
    store.close()
    url = node.mfds_url

    # Log in: any page leads to the login form first.
    browser.get(url + "/")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(browser, "login")
    assert "alice (admin)" in browser.find_element(By.TAG_NAME, "header").text

    # Create a server; a bad listener gets its message next to the field.
    submit(browser, "new-server")
    browser.find_element(By.ID, "f-name").send_keys("ESSRV01")
    browser.find_element(By.ID, "f-listeners").send_keys("Web Services=127.0.0.1:99999")
    browser.find_element(By.ID, "f-env").send_keys("DD_APPFILE01=APPFILE01")
    submit(browser, "save")
    assert "port must be 0..65535" in text_of(browser, "error-listeners")
    listeners = browser.find_element(By.ID, "f-listeners")
    listeners.clear()
    listeners.send_keys("Web Services=127.0.0.1:*")
    submit(browser, "save")
    assert "server ESSRV01 created" in browser.page_source
    assert "Server ESSRV01" in browser.title

    # Deploy srv01.car by upload, then initialise the application file as a batch job would.
    submit(browser, "tab-packages")
    browser.find_element(By.ID, "package").send_keys(str(srv01_car))
    submit(browser, "deploy")
    assert "installed srv01 (1 program: CBLAPP01) into ESSRV01" in browser.page_source
    assert "CBLAPP01" in text_of(browser, "packages")
    node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", "ESSRV01")

    # Start from the server list, with confirmation.
    browser.get(url + "/")
    click_and_confirm(browser, "start-ESSRV01")
    wait_for(browser, lambda d: "Started" in text_of(d, "server-ESSRV01")
             and "Web Services: 127.0.0.1:" in text_of(d, "server-ESSRV01"),
             "ESSRV01 shown Started with its listener address")
    row = text_of(browser, "server-ESSRV01")
    address = row.split("Web Services: ", 1)[1].split()[0]

    # Monitor & Control: the counters move when the service is called.
    browser.get(url + "/servers/ESSRV01?tab=monitor")
    wait_for(browser, lambda d: text_of(d, "m-transactions") == "0", "0 transactions")
    assert text_of(browser, "m-max-tasks") == "2"
    from esrt.client import Client
    with Client(f"http://{address}") as client:
        counters = [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(5)]
    assert counters == [0, 1, 2, 3, 4]
    wait_for(browser, lambda d: text_of(d, "m-transactions") == "5",
             "the Monitor to show 5 transactions")
    assert float(text_of(browser, "m-tasks-per-second")) > 0
    assert float(text_of(browser, "m-per-hour")) > 0

    # The console log shows the region's messages and the admin action; search narrows it.
    submit(browser, "tab-console")
    console = text_of(browser, "console")
    assert "ESAD0001I admin action start ok by user alice" in console
    assert "ESCS5004I" in console  # the listener's start message from the region itself
    browser.find_element(By.ID, "search").send_keys("ESAD")
    submit(browser, "search-button")
    lines = text_of(browser, "console").splitlines()
    assert lines and all("ESAD" in line for line in lines)
    submit(browser, "console-bak")
    assert "console.bak" in browser.page_source

    # Stop from the server list.
    browser.get(url + "/")
    click_and_confirm(browser, "stop-ESSRV01")
    wait_for(browser, lambda d: "Stopped" in text_of(d, "server-ESSRV01"),
             "ESSRV01 shown Stopped")
    audit = (node.home / "audit.log").read_text()
    for action in ('"create server"', '"deploy"', '"start"', '"stop"'):
        assert action in audit and '"user": "alice"' in audit
