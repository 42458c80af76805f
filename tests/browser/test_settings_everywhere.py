"""Every server setting of esrt.settings is settable everywhere a user sets things.

The table is walked, not listed here: a setting added to SERVER_SETTINGS is covered at once.
Each setting goes from its default to its example and back, through the CLI (`esrt server
create` flags, `esrt server set KEY=VALUE`), the JSON API, and the admin form in a real
headless Chromium, against a real mfds; and the OpenAPI document describes it.
"""

import json
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from esrt.node.mfds_client import MfdsClient
from esrt.settings import SERVER_SETTINGS, OptionalPath
from test_admin_ui import browser, submit  # noqa: F401

CHANGEABLE = [setting for setting in SERVER_SETTINGS if setting.name != "name"]
JSON_TYPES = {bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}


@pytest.fixture
def samples(tmp_path):
    """A valid value other than the default for every setting.

    Directories point into the test's own directory: mfds writes a server's console log as
    soon as the server is defined, so the table's examples (/srv/...) must not be used here.
    """
    values = {}
    for setting in CHANGEABLE:
        if isinstance(setting.kind, OptionalPath):
            values[setting.name] = str(tmp_path / "dirs" / setting.name)
        else:
            values[setting.name] = setting.example
        assert setting.validate(values[setting.name]) != setting.validate(setting.default), \
            f"the example of {setting.name} must differ from its default to show it is set"
    return values


def defaults():
    return {setting.name: setting.validate(setting.default) for setting in CHANGEABLE}


def clean(values):
    return {setting.name: setting.validate(values[setting.name]) for setting in CHANGEABLE}


def definition_of(node, name):
    return MfdsClient.from_home(node.home).get_server(name)["definition"]


def assert_settings(definition, expected, how):
    wrong = {name: (definition.get(name), value) for name, value in expected.items()
             if definition.get(name) != value}
    assert not wrong, f"settings not set {how} (got, wanted): {wrong}"


def test_every_setting_from_the_cli(node, samples):
    arguments = ["server", "create", "CLI01"]
    for setting in CHANGEABLE:
        value = samples[setting.name]
        if value is True:
            arguments.append(setting.flag)
            continue
        for text in setting.to_texts(value):
            arguments += [setting.flag, text]
    node.esrt(*arguments)
    assert_settings(definition_of(node, "CLI01"), clean(samples), "by `esrt server create`")

    pairs = [f"{setting.name}={text}" for setting in CHANGEABLE
             for text in setting.to_texts(setting.default) or [""]]
    result = node.esrt("server", "set", "CLI01", *pairs)
    assert "server CLI01:" in result.stdout
    assert_settings(definition_of(node, "CLI01"), defaults(), "back by `esrt server set`")

    shown = json.loads(node.esrt("server", "show", "CLI01").stdout)
    assert_settings(shown["definition"], defaults(), "as `esrt server show` prints them")


def test_every_setting_through_the_api_and_in_openapi(node, samples):
    client = MfdsClient.from_home(node.home)
    created = client.create_server(dict(samples, name="API01"))
    assert_settings(created["definition"], clean(samples), "by POST /api/servers")
    changed = client.update_server("API01", {s.name: s.default for s in CHANGEABLE})
    assert_settings(changed["definition"], defaults(), "back by PUT /api/servers/API01")

    with urllib.request.urlopen(node.mfds_url + "/api/openapi.json", timeout=10) as answer:
        document = json.load(answer)
    schemas = document["components"]["schemas"]
    for schema_name in ("Definition", "DefinitionChanges"):
        properties = schemas[schema_name]["properties"]
        for setting in SERVER_SETTINGS:
            described = properties.get(setting.name)
            assert described, f"{setting.name} is missing from the OpenAPI {schema_name}"
            assert described["description"] == setting.help
            assert described["type"] == JSON_TYPES[type(setting.example)], setting.name
            if "enum" in described:
                assert setting.example in described["enum"], setting.name
    assert schemas["Definition"]["required"] == ["name"]


def fill_form(driver, texts):
    """Type every setting's text into the server form, as a user would."""
    for setting in CHANGEABLE:
        field = driver.find_element(By.ID, f"f-{setting.name}")
        text = texts[setting.name]
        if setting.kind.control == "choice":
            Select(field).select_by_value(text)
        else:
            field.clear()
            field.send_keys(text)


def test_every_setting_in_the_browser_form(node, samples, browser):  # noqa: F811
    url = node.mfds_url
    browser.get(url + "/servers/new")
    for setting in SERVER_SETTINGS:
        label = browser.find_element(By.CSS_SELECTOR, f'label[for="f-{setting.name}"]')
        assert label.text == setting.label
    browser.find_element(By.ID, "f-name").send_keys("WEB01")
    fill_form(browser, {s.name: "\n".join(s.to_texts(samples[s.name])) for s in CHANGEABLE})
    submit(browser, "save")
    assert "server WEB01 created" in browser.page_source, browser.page_source[:3000]
    assert_settings(definition_of(node, "WEB01"), clean(samples), "by the New server form")

    # The edit form shows the stored values, and setting them back works the same way.
    browser.get(url + "/servers/WEB01?tab=edit")
    for setting in CHANGEABLE:
        field = browser.find_element(By.ID, f"f-{setting.name}")
        assert field.get_attribute("value") == "\n".join(
            setting.to_texts(setting.validate(samples[setting.name]))), setting.name
    fill_form(browser, {s.name: "\n".join(s.to_texts(s.default)) for s in CHANGEABLE})
    submit(browser, "save")
    assert "server WEB01 saved" in browser.page_source, browser.page_source[:3000]
    assert_settings(definition_of(node, "WEB01"), defaults(), "back by the Edit form")
