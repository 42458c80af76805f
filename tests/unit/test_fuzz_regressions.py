"""Every case the fuzzers (tests/fuzz, `make fuzz`) ever found, replayed through its target, and
the bugs they found, as a user meets them."""

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))
from targets import SEEDS, TARGETS  # noqa: E402

CASES = sorted((path.parent.name, path) for path in (FUZZ / "regressions").glob("*/*")
               if path.is_file())


@pytest.mark.parametrize("target, case", CASES, ids=[f"{t}/{p.name[:18]}" for t, p in CASES])
def test_a_case_the_fuzzer_found_stays_fixed(target, case):
    TARGETS[target](case.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_passes_its_seeds(target):
    for seed in SEEDS[target]:
        TARGETS[target](seed)


def test_a_number_beyond_any_decimal_is_a_clear_error():
    from esrt.mapping import jsonio
    with pytest.raises(ValueError, match="is out of any range"):
        jsonio.loads(b'{"LK-AMOUNT": 91E8888888888888888888888888888888}')


def test_a_huge_exponent_is_out_of_the_fields_range_not_an_overflow():
    from decimal import Decimal
    from esrt.mapping import FieldValueError, ProgramCodec
    codec = ProgramCodec(__import__("targets").RICH_PROGRAM, "python")
    with pytest.raises(FieldValueError, match="has 46913510 integer digits, the field holds 5"):
        codec.load_inputs(codec.new_buffers(), {"LK-AMOUNT": Decimal("2E46913509")})


def _car(service="srv01", member="srv01.mapping.json", declared=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps({"format": "esrt-car/1",
                                                      "service": service, "files": {}}))
        archive.writestr(member, b"0" * (declared or 10))
    return buffer.getvalue()


@pytest.mark.parametrize("package, says", [
    (_car(service="s" * 300), "manifest names an invalid service"),
    (_car(service="../up"), "manifest names an invalid service"),
    (_car(member="x" * 300), "is not a plain file name"),
    (_car(member=".hidden"), "is not a plain file name"),
])
def test_packages_with_names_no_file_system_takes_are_refused(package, says, tmp_path):
    from esrt.mapping.car import CarError, install_car
    with pytest.raises(CarError, match=says):
        install_car(package, tmp_path / "deploy")
    assert not (tmp_path / "deploy").exists()  # refused before anything is written


def test_a_package_that_would_unpack_beyond_the_limit_is_refused(monkeypatch):
    from esrt.mapping import car
    monkeypatch.setattr(car, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(car.CarError, match="would unpack to 2"):
        car.read_car(_car(declared=2000))
