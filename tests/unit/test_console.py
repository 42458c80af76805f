"""Console log: ES line shape, rotation to console.bak, message table."""

import re
import time

import pytest

from esrt.messages import MESSAGES, Severity, format_message, severity
from esrt.node.console import format_line
from esrt.region.console import ConsoleLog

LINE = re.compile(r"^\d{6} \d{8} \[\d+ ESSRV01\] [A-Z]{4}\d{4}[IWES] .* \d\d:\d\d:\d\d$")


def test_line_has_the_enterprise_server_shape():
    when = time.mktime((2006, 10, 20, 17, 8, 59, 0, 0, -1)) + 0.557
    line = format_line(when, 4242, "ESSRV01", "ESST0005I", "shutdown starting")
    assert line == "061020 17085955 [4242 ESSRV01] ESST0005I shutdown starting 17:08:59"


def test_open_rotates_the_old_log_to_bak(tmp_path):
    log, bak = tmp_path / "console.log", tmp_path / "console.bak"
    bak.write_text("oldest\n")
    first = ConsoleLog(log, bak, "ESSRV01", pid=1).open()
    first.log("ESCS5003I")
    first.close()
    second = ConsoleLog(log, bak, "ESSRV01", pid=2).open()
    second.log("ESST0006I")
    second.close()
    assert "[1 ESSRV01] ESCS5003I communications interface initialized" in bak.read_text()
    assert "oldest" not in bak.read_text()
    [line] = log.read_text().splitlines()
    assert LINE.match(line) and "[2 ESSRV01] ESST0006I shutdown complete" in line


def test_embedded_newlines_cannot_forge_lines(tmp_path):
    console = ConsoleLog(tmp_path / "c.log", tmp_path / "c.bak", "ESSRV01").open()
    console.write_line("ESSI1800I", "SEP 0001: one\nESSI9999I forged")
    console.close()
    assert len((tmp_path / "c.log").read_text().splitlines()) == 1


def test_every_message_id_is_well_formed_and_formats():
    assert "ESCS5005E" in MESSAGES and severity("ESCS5005E") == Severity.ERROR
    for message_id in MESSAGES:
        assert re.match(r"^ES[A-Z]{2}\d{4}[IWES]$", message_id), message_id
    text = format_message("ESCS5005E", server="ESSRV01", listener="Web Services",
                          address="127.0.0.1:9003", problem="address already in use")
    assert text == ('ESSRV01: listener "Web Services" cannot bind 127.0.0.1:9003: '
                    "address already in use")


def test_unknown_message_id_fails_loudly():
    with pytest.raises(KeyError, match="ESXX0000I"):
        format_message("ESXX0000I")
