"""The Callers page in a real headless Chromium against a real mfds and region: an admin creates
an API token (shown once), a caller uses it against a region, the admin adds and removes a
call rule and revokes the token, and the region follows each change."""

from selenium.webdriver.common.by import By

from esrt.client import Client, ServiceError
from esrt.home import Home
from esrt.mfds.users import UserStore
from test_admin_ui import browser, submit, text_of, wait_for_next_page  # noqa: F401
from test_users_page import PASSWORDS, log_in

from conftest import start_cblapp01_region, wait_for


def outcome(client):
    try:
        client.call("srv01.CBLAPP01")
    except ServiceError as exc:
        return exc.status
    return 200


def test_an_admin_issues_and_revokes_tokens_and_rules_in_the_browser(node, srv01_car,
                                                                     browser):  # noqa: F811
    store = UserStore(Home(node.home).repository)
    try:
        store.add("alice", PASSWORDS["alice"], "admin")
        store.add("oscar", PASSWORDS["oscar"], "operator")
    finally:
        store.close()
    region = start_cblapp01_region(node, srv01_car, extra=(
        "--listener", "Token=127.0.0.1:*,web-services,auth=token"))
    (token_listener,) = [item for item in region.status["listeners"] if item["CN"] == "Token"]
    url = "http://" + token_listener["address"]

    log_in(browser, node.mfds_url, "alice")
    submit(browser, "nav-callers")
    assert "Callers" in browser.title
    assert browser.find_element(By.ID, "no-tokens")
    browser.find_element(By.ID, "token-user").send_keys("oscar")
    browser.find_element(By.ID, "token-note").send_keys("billing batch")
    submit(browser, "create-token")
    token = browser.find_element(By.ID, "new-token-value").get_attribute("value")
    assert token.startswith("esrt_")
    ident = token.split("_")[1]
    assert "billing batch" in text_of(browser, f"token-{ident}")
    # Shown once: the page reloaded no longer holds it.
    browser.get(node.mfds_url + "/callers")
    assert token not in browser.page_source

    client = Client(url, token=token)
    wait_for(lambda: outcome(client) == 200, "the new token to reach the region")
    # A rule for someone else: deny by default for oscar.
    browser.find_element(By.ID, "rule-subject").send_keys("alice")
    browser.find_element(By.ID, "rule-pattern").send_keys("srv01.*")
    submit(browser, "add-rule")
    assert "user:alice may call srv01.*" in browser.page_source
    wait_for(lambda: outcome(client) == 403, "the rule to reach the region")
    # A bad pattern is refused with the reason.
    browser.find_element(By.ID, "rule-subject").send_keys("oscar")
    browser.find_element(By.ID, "rule-pattern").send_keys("no spaces allowed")
    submit(browser, "add-rule")
    assert "is not a service pattern" in text_of(browser, "callers-error")
    submit(browser, "remove-rule-0")
    assert "user:alice may no longer call srv01.*" in browser.page_source
    wait_for(lambda: outcome(client) == 200, "the rule's removal to reach the region")

    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, f"revoke-{ident}").click()
    alert = browser.switch_to.alert
    assert f"Revoke token {ident} of oscar?" in alert.text
    alert.accept()
    wait_for_next_page(browser, old)
    assert f"token {ident} revoked" in browser.page_source
    wait_for(lambda: outcome(client) == 401, "the revocation to reach the region")
