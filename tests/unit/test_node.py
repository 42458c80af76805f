"""What mfds, the region, the CLI and the OCF agent share (esrt.node): region files, a region's
last status as shown, console tails, and creating-or-updating a server from a region file."""

import json
import os
import subprocess
import sys

import pytest

from esrt.home import Home
from esrt.node.console import format_line, tail_lines
from esrt.node.definitions import (RegionFileError, read_region_file, region_file_definition,
                                   save_definition)
from esrt.node.mfds_client import MfdsError
from esrt.node.runs import effective_status
from esrt.region.main import RegionError, load_definition
from esrt.states import ExitCode

DEFINITION = {"name": "ESSRV01", "seps": 1,
              "listeners": [{"name": "Web Services", "address": "127.0.0.1:9003"}]}


@pytest.fixture
def region_file(tmp_path):
    path = tmp_path / "ESSRV01.region.json"
    path.write_text(json.dumps(DEFINITION))
    return path


@pytest.fixture
def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- region files ----------------------------------------------------------------------------

def test_a_region_file_gives_the_validated_definition(region_file):
    definition = read_region_file(region_file)
    assert definition["name"] == "ESSRV01" and definition["seps"] == 1
    # Validated: every setting has its value, defaults included.
    assert definition["listeners"][0]["conversation"] == "web-services"
    assert "request_timeout" in definition


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read it"),
    ("{not json", "is not valid JSON"),
    (json.dumps({"name": "ESSRV01", "seps": "many"}), "holds an invalid server definition"),
])
def test_a_bad_region_file_is_not_configured_and_says_why(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RegionFileError, match=expected) as caught:
        read_region_file(path)
    assert caught.value.exit_code == ExitCode.NOT_CONFIGURED
    assert str(path) in str(caught.value)


def test_the_region_file_of_another_server_is_a_usage_error(region_file):
    assert region_file_definition(region_file, "ESSRV01")["name"] == "ESSRV01"
    assert region_file_definition(region_file)["name"] == "ESSRV01"
    with pytest.raises(RegionFileError, match="defines server 'ESSRV01', not 'OTHER'") as caught:
        region_file_definition(region_file, "OTHER")
    assert caught.value.exit_code == ExitCode.USAGE


def test_the_region_reads_its_definition_file_with_the_same_loader(tmp_path, region_file):
    definition, source = load_definition("ESSRV01", Home(tmp_path), str(region_file))
    assert (definition, source) == (read_region_file(region_file), str(region_file))
    with pytest.raises(RegionError, match="is for server 'ESSRV01'") as caught:
        load_definition("OTHER", Home(tmp_path), str(region_file))
    assert caught.value.exit_code == ExitCode.BOOT_FAILED
    region_file.write_text("{")
    with pytest.raises(RegionError, match=r"^ESSRV01: region file .* is not valid JSON"):
        load_definition("ESSRV01", Home(tmp_path), str(region_file))


class FakeMfds:
    """The three calls save_definition makes, against a dict of servers."""

    def __init__(self, **servers):
        self.servers = servers
        self.calls = []

    def get_server(self, name):
        if name not in self.servers:
            raise MfdsError(404, "not_found", f"no server {name}")
        return {"definition": self.servers[name]}

    def create_server(self, definition):
        self.calls.append(("create", definition["name"]))
        self.servers[definition["name"]] = definition

    def update_server(self, name, changes):
        self.calls.append(("update", name, sorted(changes)))
        self.servers[name].update(changes)


def test_saving_creates_a_new_server_and_updates_an_existing_one(region_file):
    definition = read_region_file(region_file)
    mfds = FakeMfds()
    assert save_definition(mfds, definition) == "created"
    assert save_definition(mfds, definition) == "updated"
    # The name is the key, never a change.
    assert mfds.calls == [("create", "ESSRV01"),
                          ("update", "ESSRV01", sorted(set(definition) - {"name"}))]


def test_saving_passes_on_any_refusal_but_not_found(region_file):
    class Refusing(FakeMfds):
        def get_server(self, name):
            raise MfdsError(401, "unauthorized", "log in")

    with pytest.raises(MfdsError, match="log in"):
        save_definition(Refusing(), read_region_file(region_file))


# --- a region's last status as shown -----------------------------------------------------------

def test_a_region_that_never_reported_is_stopped():
    assert effective_status(None) == effective_status({}) == "Stopped"


def test_a_reported_status_stands_while_its_process_lives():
    assert effective_status({"mfServerStatus": "Started", "pid": os.getpid()}) == "Started"
    assert effective_status({"mfServerStatus": "Stopped"}) == "Stopped"


def test_a_region_whose_process_died_is_failed_or_stopped(dead_pid):
    assert effective_status({"mfServerStatus": "Started", "pid": dead_pid}) == "Failed"
    assert effective_status({"mfServerStatus": "Starting", "pid": dead_pid}) == "Failed"
    # It was on its way down: that is a stop, not a failure.
    assert effective_status({"mfServerStatus": "Stopping", "pid": dead_pid}) == "Stopped"


# --- console lines -------------------------------------------------------------------------------

def test_a_console_line_is_one_line_whatever_its_text():
    line = format_line(0.0, 1, "ESSRV01", "ESAD0001I", "detail\r\nESXX0000I forged")
    assert "\n" not in line and "\r" not in line and "detail  ESXX0000I forged" in line


def test_the_tail_keeps_the_last_lines_and_counts_the_matches(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("".join(f"line {n} {'ERROR' if n % 3 == 0 else 'ok'}\n" for n in range(10)))
    assert tail_lines(log, 2) == (["line 8 ok", "line 9 ERROR"], 10)
    assert tail_lines(log, 2, search="error") == (["line 6 ERROR", "line 9 ERROR"], 4)
    assert tail_lines(log) == (log.read_text().splitlines(), 10)


def test_the_tail_of_a_huge_log_reads_only_its_end_and_drops_the_cut_line(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("first line\nsecond line\nthird line\n")
    # The last 16 bytes start inside "second line": that part line is not shown.
    assert tail_lines(log, 10, max_bytes=16) == (["third line"], 1)


def test_the_tail_of_a_missing_log_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        tail_lines(tmp_path / "console.log", 10)
