"""The Users page in a real headless Chromium (Debian's chromium + chromedriver, Selenium)
against a real mfds: an admin adds an account (fixing a validation error shown next to its
field), changes its role, resets its password and deletes it after a confirmation; the last
admin cannot be demoted; an operator sees no Users page."""

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from esrt.home import Home
from esrt.mfds.users import UserStore
from test_admin_ui import browser, submit, text_of, wait_for_next_page  # noqa: F401

PASSWORDS = {"alice": "alice-secret-1", "oscar": "oscar-secret-1"}


def log_in(driver, url, name):
    """Open the site, which leads to the login form, and log in as `name`."""
    driver.get(url + "/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    submit(driver, "login")
    assert f"{name} (" in driver.find_element(By.TAG_NAME, "header").text


def nav_ids(driver):
    return [link.get_attribute("id") for link in
            driver.find_elements(By.CSS_SELECTOR, "header nav a")]


def test_admin_manages_accounts_in_the_browser(node, browser):  # noqa: F811
    store = UserStore(Home(node.home).repository)
    try:
        store.add("alice", PASSWORDS["alice"], "admin")
        store.add("oscar", PASSWORDS["oscar"], "operator")
    finally:
        store.close()
    url = node.mfds_url
    log_in(browser, url, "alice")
    submit(browser, "nav-users")
    assert "Users" in browser.title
    assert "never" in text_of(browser, "user-oscar")

    # A too short password is reported next to its field; the name stays filled in.
    browser.find_element(By.ID, "new-name").send_keys("bob")
    browser.find_element(By.ID, "new-password").send_keys("short")
    Select(browser.find_element(By.ID, "new-role")).select_by_value("operator")
    submit(browser, "add-user")
    assert "at least 8 characters" in text_of(browser, "error-new-password")
    assert browser.find_element(By.ID, "new-name").get_attribute("value") == "bob"
    browser.find_element(By.ID, "new-password").send_keys("bob-secret-1")
    Select(browser.find_element(By.ID, "new-role")).select_by_value("operator")
    submit(browser, "add-user")
    assert "user bob added with role operator" in browser.page_source
    row = text_of(browser, "user-bob")
    assert "operator" in row and "never" in row

    # Change the role, reset the password.
    Select(browser.find_element(By.ID, "role-bob")).select_by_value("admin")
    submit(browser, "set-role-bob")
    assert "user bob now has the role admin" in browser.page_source
    assert browser.find_element(By.CSS_SELECTOR, "#user-bob td.role").text == "admin"
    browser.find_element(By.ID, "password-bob").send_keys("bob-secret-2")
    submit(browser, "reset-password-bob")
    assert "password of user bob reset" in browser.page_source
    store = UserStore(Home(node.home).repository)
    try:
        assert store.authenticate("bob", "bob-secret-2") == "admin"
        assert store.authenticate("bob", "bob-secret-1") is None
    finally:
        store.close()

    # Delete asks first: cancelling keeps the account, accepting deletes it.
    browser.find_element(By.ID, "delete-bob").click()
    alert = browser.switch_to.alert
    assert "Delete user bob?" in alert.text
    alert.dismiss()
    assert browser.find_elements(By.ID, "user-bob")
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "delete-bob").click()
    browser.switch_to.alert.accept()
    wait_for_next_page(browser, old)
    assert "user bob deleted" in browser.page_source
    assert not browser.find_elements(By.ID, "user-bob")

    # alice is the last admin again: demoting her is refused, on her row.
    Select(browser.find_element(By.ID, "role-alice")).select_by_value("operator")
    submit(browser, "set-role-alice")
    assert "last admin" in text_of(browser, "error-user-alice")
    assert browser.find_element(By.CSS_SELECTOR, "#user-alice td.role").text == "admin"

    # An operator has no Users link, and the page itself refuses them.
    submit(browser, "logout")
    log_in(browser, url, "oscar")
    assert "nav-users" not in nav_ids(browser)
    browser.get(url + "/users")
    assert "may not manage the accounts" in browser.page_source
    assert not browser.find_elements(By.ID, "users")

    records = [json.loads(line) for line in (node.home / "audit.log").read_text().splitlines()]
    done = {(r["user"], r["action"], r["target"], r["outcome"]) for r in records}
    for entry in (("alice", "add user", "bob", "failed"), ("alice", "add user", "bob", "ok"),
                  ("alice", "change role", "bob", "ok"), ("alice", "reset password", "bob", "ok"),
                  ("alice", "delete user", "bob", "ok"),
                  ("alice", "change role", "alice", "failed"),
                  ("oscar", "manage the accounts", "users", "denied")):
        assert entry in done, entry
