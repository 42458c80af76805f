"""The JSON <-> COBOL field codec, checked byte for byte against real GnuCOBOL programs."""

import os
import shutil
import struct
import subprocess
from decimal import Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esrt.cobol import dialect
from esrt.mapping import FieldValueError, ProgramCodec, defmap, jsonio

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "cobol", "mapping")

EXACT = Context(prec=100)
needs_cobc = pytest.mark.skipif(shutil.which("cobc") is None, reason="GnuCOBOL not installed")


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, "%s failed:\n%s%s" % (args, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def program():
    doc = defmap([os.path.join(FIXTURES, "codecprog.cbl")], "svc")
    return doc["programs"][0]


@pytest.fixture
def codec(program):
    return ProgramCodec(program)


# Two records' worth of values for codecrec.cpy: ordinary ones and extremes/negatives.
VALUES = [
    {"CR-NAME": "Zo\u00eb Smith", "CR-CODE": "ABCD", "CR-COUNT": 1234567890,
     "CR-AMOUNT": Decimal("1234567.89"), "CR-LEAD": Decimal("12.5"), "CR-LEADSEP": 42,
     "CR-TRAILSEP": Decimal("1.05"), "CR-HUND": 12300, "CR-TINY": Decimal("0.00012"),
     "CR-B1": 7, "CR-B2": 9999, "CR-B4": Decimal("1.01"), "CR-B8": 123456789012345678,
     "CR-N2": 300, "CR-N4": 999999999, "CR-N8": Decimal("123456789012345.678"),
     "CR-P1": Decimal("0.01"), "CR-P2": 42, "CR-P3": 1, "CR-F1": 1.5, "CR-F2": 2.25,
     "CR-ROWS": [{"CR-ID": 1, "CR-CELLS": [5, 6]}, {"CR-ID": 2, "CR-CELLS": [7, 8]}],
     "CR-LAST": "end"},
    {"CR-NAME": "", "CR-CODE": "Z", "CR-COUNT": 0, "CR-AMOUNT": Decimal("-9999999.99"),
     "CR-LEAD": Decimal("-0.1"), "CR-LEADSEP": -9999, "CR-TRAILSEP": Decimal("-99.99"),
     "CR-HUND": -99900, "CR-TINY": Decimal("0.00099"), "CR-B1": -99, "CR-B2": 0,
     "CR-B4": Decimal("-9999999.99"), "CR-B8": -999999999999999999, "CR-N2": -9999,
     "CR-N4": 0, "CR-N8": Decimal("-999999999999999.999"), "CR-P1": Decimal("-1234567.89"),
     "CR-P2": 9999, "CR-P3": -999999999999999999, "CR-F1": -0.125, "CR-F2": -1234.5,
     "CR-ROWS": [{"CR-ID": 999, "CR-CELLS": [-999, 0]}, {"CR-ID": 0, "CR-CELLS": [-1, 999]}],
     "CR-LAST": "\u00e9"},
]


def _assignments(values):
    """(COBOL reference, COBOL literal) for every leaf of a value set."""
    out = []

    def literal(value):
        if isinstance(value, str):
            return '"%s"' % value
        return repr(value) if isinstance(value, float) else str(value)

    def walk(value, name, subs):
        if isinstance(value, dict):
            for key, element in value.items():
                walk(element, key, subs)
        elif isinstance(value, list):
            for index, element in enumerate(value, 1):
                walk(element, name, subs + [index])
        else:
            ref = "%s OF CR-REC" % name + (" (%s)" % ", ".join(map(str, subs)) if subs else "")
            out.append((ref, literal(value)))

    walk(values, None, [])
    return out


def _batch_program(length):
    """A program that writes INITIALIZE'd and MOVE'd records and checks records we wrote."""
    lines = ["       IDENTIFICATION DIVISION.", "       PROGRAM-ID. CODECBATCH.",
             "       ENVIRONMENT DIVISION.", "       INPUT-OUTPUT SECTION.",
             "       FILE-CONTROL.",
             '           SELECT OUT-FILE ASSIGN TO "CODECOUT" ORGANIZATION SEQUENTIAL.',
             '           SELECT IN-FILE ASSIGN TO "CODECIN" ORGANIZATION SEQUENTIAL.',
             "       DATA DIVISION.", "       FILE SECTION.",
             "       FD OUT-FILE.", "       01 OUT-REC PIC X(%d)." % length,
             "       FD IN-FILE.", "       01 IN-REC PIC X(%d)." % length,
             "       WORKING-STORAGE SECTION.", "       COPY codecrec.",
             "       PROCEDURE DIVISION.", "           OPEN OUTPUT OUT-FILE",
             "           INITIALIZE CR-REC", "           WRITE OUT-REC FROM CR-REC"]
    for values in VALUES:
        lines += ["           MOVE %s" % lit + "\n             TO %s" % ref
                  for ref, lit in _assignments(values)]
        lines.append("           WRITE OUT-REC FROM CR-REC")
    lines += ["           CLOSE OUT-FILE", "           OPEN INPUT IN-FILE"]
    for number, values in enumerate(VALUES):
        lines.append("           READ IN-FILE INTO CR-REC")
        for ref, lit in _assignments(values):
            lines += ["           IF %s" % ref, "              NOT = %s" % lit,
                      '              DISPLAY "BAD %d %s"' % (number, ref.split()[0]),
                      "           END-IF"]
    lines += ["           CLOSE IN-FILE", '           DISPLAY "CHECKED"', "           STOP RUN."]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cobol_run(program, tmp_path_factory):
    """Compile and run the batch program once: COBOL's bytes, and COBOL's view of ours."""
    if shutil.which("cobc") is None:
        pytest.skip("GnuCOBOL not installed")
    work = tmp_path_factory.mktemp("codec")
    length = program["parameters"][0]["length"]
    source = work / "batch.cbl"
    source.write_text(_batch_program(length))
    exe = str(work / "batch")
    run(["cobc", "-x", "-I", FIXTURES, "-o", exe, str(source)])
    codec = ProgramCodec(program)
    buffers = codec.new_buffers()
    ours = b""
    for values in VALUES:
        codec.load_inputs(buffers, {"CR-REC": values})
        ours += bytes(buffers[0])
    (work / "in.dat").write_bytes(ours)
    env = dict(os.environ, CODECOUT=str(work / "out.dat"), CODECIN=str(work / "in.dat"))
    output = run([exe], env=env)
    data = (work / "out.dat").read_bytes()
    records = [data[i:i + length] for i in range(0, len(data), length)]
    return {"records": records, "ours": ours, "output": output, "length": length}


@needs_cobc
def test_initial_image_equals_cobol_initialize(cobol_run, codec):
    assert bytes(codec.new_buffers()[0]) == cobol_run["records"][0]


@needs_cobc
@pytest.mark.parametrize("index", range(len(VALUES)))
def test_python_encodes_the_bytes_cobol_moves_write(cobol_run, codec, index):
    buffers = codec.new_buffers()
    codec.load_inputs(buffers, {"CR-REC": VALUES[index]})
    assert bytes(buffers[0]) == cobol_run["records"][index + 1]


@needs_cobc
@pytest.mark.parametrize("index", range(len(VALUES)))
def test_python_decodes_what_cobol_wrote(cobol_run, codec, index):
    buffers = codec.new_buffers()
    buffers[0][:] = cobol_run["records"][index + 1]
    assert codec.dump_outputs(buffers)["CR-REC"] == VALUES[index]


@needs_cobc
def test_cobol_reads_what_python_encoded(cobol_run):
    assert cobol_run["output"].splitlines() == ["CHECKED"]


@needs_cobc
def test_invalid_display_bytes_decode_as_gnucobol_computes_them(tmp_path):
    exe = str(tmp_path / "garbage")
    run(["cobc", "-x", "-o", exe, os.path.join(FIXTURES, "garbage.cbl")])
    cobol = [int(line) for line in run([exe]).split()]
    codec = ProgramCodec({"program": "G", "parameters": [
        _elementary("U", "9(3)", "display"), _elementary("S", "S9(3)", "display")]})
    got = []
    for raw in GARBAGE:
        buffers = codec.new_buffers()
        buffers[0][:], buffers[1][:] = raw[:3], raw[3:]
        out = codec.dump_outputs(buffers)
        got += [out["U"], out["S"]]
    assert got == cobol
    # "12z" in S9(3): GnuCOBOL 3.1 reads the sign byte 'z' as +0, 3.2 as a negative 10.
    assert cobol[3] == (-130 if dialect.display_sign_by_nibble() else 120)


# The bytes garbage.cbl moves into its 9(3) and S9(3) fields, in its order.
GARBAGE = (b"  5 1x", b"1:312z", b"45612{")


# --- unit behaviour ----------------------------------------------------------------------

def _elementary(name, pic, usage, direction="io", **extra):
    from esrt.mapping.model import analyse_picture, json_type, numeric_length
    item = {"name": name, "level": 1, "pic": pic, "usage": usage, "offset": 0,
            "direction": direction}
    if pic is None:
        item.update(length=numeric_length(usage, 0, True, False), type="number", pic=None)
        return item
    info = analyse_picture(pic)
    if info["kind"] == "string":
        item.update(length=info["length"], type="string")
        return item
    item.update(digits=info["digits"], scale=info["scale"], signed=info["signed"],
                type=json_type(usage, info["scale"]))
    if usage == "display" and info["signed"]:
        item.update(sign=extra.get("sign", "trailing"),
                    sign_separate=extra.get("sign_separate", False))
    item["length"] = numeric_length(usage, info["digits"], info["signed"],
                                    item.get("sign_separate", False))
    return item


def _codec(*items):
    return ProgramCodec({"program": "P", "parameters": list(items)})


def _error(codec, values):
    with pytest.raises(FieldValueError) as info:
        codec.load_inputs(codec.new_buffers(), values)
    return info.value


@pytest.mark.parametrize("values,code,field,fragment", [
    ({"NOPE": 1}, "unknown_parameter", "NOPE", "NOPE is not a parameter of CODECPROG"),
    ({"CR-REC": {"CR-NOPE": 1}}, "unknown_parameter", "CR-REC.CR-NOPE", "has no field"),
    ({"CR-REC": {"CR-COUNT": "12"}}, "wrong_type", "CR-REC.CR-COUNT", "expected a number"),
    ({"CR-REC": {"CR-COUNT": True}}, "wrong_type", "CR-REC.CR-COUNT", "a boolean"),
    ({"CR-REC": {"CR-NAME": 5}}, "wrong_type", "CR-REC.CR-NAME", "expected a string"),
    ({"CR-REC": {"CR-NAME": {"a": 1}}}, "wrong_type", "CR-REC.CR-NAME", "an object"),
    ({"CR-REC": {"CR-F1": False}}, "wrong_type", "CR-REC.CR-F1", "a boolean"),
    ({"CR-REC": 5}, "wrong_type", "CR-REC", "expected an object"),
    ({"CR-REC": {"CR-ROWS": {}}}, "wrong_type", "CR-REC.CR-ROWS", "expected an array"),
    ({"CR-REC": {"CR-NAME": "x" * 13}}, "too_long", "CR-REC.CR-NAME",
     "CR-REC.CR-NAME (PIC X(12)): the value is 13 bytes in UTF-8, the field holds 12"),
    ({"CR-REC": {"CR-NAME": "\u00e9" * 7}}, "too_long", "CR-REC.CR-NAME", "14 bytes"),
    ({"CR-REC": {"CR-ROWS": [{}, {}, {}]}}, "too_long", "CR-REC.CR-ROWS", "OCCURS 2 TIMES"),
    ({"CR-REC": {"CR-AMOUNT": Decimal("1.001")}}, "too_precise", "CR-REC.CR-AMOUNT",
     "more decimal places"),
    ({"CR-REC": {"CR-HUND": 12345}}, "too_precise", "CR-REC.CR-HUND", "multiple of 100"),
    ({"CR-REC": {"CR-COUNT": 1.5}}, "too_precise", "CR-REC.CR-COUNT", "decimal places"),
    ({"CR-REC": {"CR-AMOUNT": Decimal("12345678.5")}}, "out_of_range", "CR-REC.CR-AMOUNT",
     "CR-REC.CR-AMOUNT (PIC S9(7)V9(2)): 12345678.5 has 8 integer digits, the field holds 7"),
    ({"CR-REC": {"CR-COUNT": -1}}, "out_of_range", "CR-REC.CR-COUNT", "unsigned"),
    ({"CR-REC": {"CR-B2": 10000}}, "out_of_range", "CR-REC.CR-B2", "5 integer digits"),
    ({"CR-REC": {"CR-TINY": Decimal("0.001")}}, "out_of_range", "CR-REC.CR-TINY",
     "at most 0.00099"),
    ({"CR-REC": {"CR-F1": Decimal("1e300")}}, "out_of_range", "CR-REC.CR-F1", "COMP-1"),
    ({"CR-REC": {"CR-COUNT": Decimal("1e999999")}}, "out_of_range", "CR-REC.CR-COUNT",
     "has 1000000 integer digits, the field holds 10"),
    ({"CR-REC": {"CR-P3": Decimal("-1234567890123456789")}}, "out_of_range",
     "CR-REC.CR-P3", "has 19 integer digits, the field holds 18"),
    ({"CR-REC": {"CR-COUNT": Decimal("1e-999999")}}, "too_precise", "CR-REC.CR-COUNT", ""),
    ({"CR-REC": {"CR-ROWS": [{}, {"CR-CELLS": [1, "x"]}]}}, "wrong_type",
     "CR-REC.CR-ROWS[1].CR-CELLS[1]", "PIC S9(3)"),
])
def test_bad_values_are_rejected_with_code_field_and_message(codec, values, code, field,
                                                              fragment):
    error = _error(codec, values)
    assert (error.code, error.field) == (code, field)
    assert fragment in str(error)


def test_output_parameters_cannot_be_sent_and_only_outputs_are_returned():
    codec = _codec(_elementary("IN-A", "X(3)", "display", "in"),
                   _elementary("OUT-B", "9(3)", "display", "out"),
                   _elementary("IO-C", "X(2)", "display", "io"))
    error = _error(codec, {"OUT-B": 1})
    assert (error.code, error.field) == ("not_input", "OUT-B")
    buffers = codec.new_buffers()
    codec.load_inputs(buffers, {"IN-A": "abc", "IO-C": "xy"})
    assert codec.dump_outputs(buffers) == {"OUT-B": 0, "IO-C": "xy"}


def test_load_inputs_resets_buffers_and_keeps_missing_keys_initialised(codec):
    buffers = codec.new_buffers()
    codec.load_inputs(buffers, {"CR-REC": VALUES[0], "LK-NOTE": "note"})
    identities = [id(b) for b in buffers]
    codec.load_inputs(buffers, {"CR-REC": {"CR-ROWS": [{"CR-ID": 4}]}})
    assert [id(b) for b in buffers] == identities  # reused, so cffi pointers stay valid
    out = codec.dump_outputs(buffers)
    assert out["LK-NOTE"] == "" and out["CR-REC"]["CR-NAME"] == ""
    assert out["CR-REC"]["CR-ROWS"] == [{"CR-ID": 4, "CR-CELLS": [0, 0]},
                                        {"CR-ID": 0, "CR-CELLS": [0, 0]}]
    assert out["CR-REC"]["CR-AMOUNT"] == Decimal("0.00")


def test_output_types_and_exact_scale(codec):
    buffers = codec.new_buffers()
    codec.load_inputs(buffers, {"CR-REC": {"CR-AMOUNT": 5, "CR-TINY": Decimal("0.0001")}})
    rec = codec.dump_outputs(buffers)["CR-REC"]
    assert type(rec["CR-COUNT"]) is int and type(rec["CR-HUND"]) is int
    assert str(rec["CR-AMOUNT"]) == "5.00"
    assert str(rec["CR-TINY"]) == "0.00010"
    assert type(rec["CR-F2"]) is float
    assert jsonio.dumps(rec["CR-AMOUNT"]) == b"5.00"


def test_strings_cut_at_nul_trim_spaces_and_replace_bad_utf8():
    codec = _codec(_elementary("H", "X(10)", "display"))
    buffers = codec.new_buffers()
    for raw, text in [(b"host1\0\0\0\0\0", "host1"), (b"ab  \0zzzzz", "ab"),
                      (b"\xff\xfeok      ", "\ufffd\ufffdok"), (b"  lead    ", "  lead")]:
        buffers[0][:] = raw
        assert codec.dump_outputs(buffers) == {"H": text}


def test_signs_and_invalid_numeric_bytes_never_raise():
    codec = _codec(_elementary("D", "S9(3)", "display"),
                   _elementary("P", "S9(3)", "comp-3"),
                   _elementary("F", None, "comp-2"))
    buffers = codec.new_buffers()
    buffers[0][:] = b"12s"
    buffers[1][:] = b"\x12\x3b"  # B is a negative sign nibble too
    buffers[2][:] = struct.pack("=d", float("nan"))
    assert codec.dump_outputs(buffers) == {"D": -123, "P": -123, "F": None}
    buffers[0][:] = b"   "
    buffers[1][:] = b"\x12\x3a"  # A reads as positive
    assert codec.dump_outputs(buffers)["D"] == 0 and codec.dump_outputs(buffers)["P"] == 123


def test_request_must_be_an_object(codec):
    assert _error(codec, [1]).code == "wrong_type"


# --- round trips -------------------------------------------------------------------------

@st.composite
def numeric_case(draw):
    usage = draw(st.sampled_from(["display", "binary", "comp-5", "comp-3"]))
    digits = draw(st.integers(1, 18 if usage in ("binary", "comp-5") else 31))
    signed = draw(st.booleans())
    shape = draw(st.sampled_from(["int", "v", "p_right", "p_left"]))
    if shape == "int":
        pic, scale = "9(%d)" % digits, 0
    elif shape == "v":
        scale = draw(st.integers(0, digits))
        pic = "9(%d)" % (digits - scale) if digits > scale else ""
        pic += "V9(%d)" % scale if scale else ""
    elif shape == "p_right":
        ps = draw(st.integers(1, 4))
        pic, scale = "9(%d)P(%d)" % (digits, ps), -ps
    else:
        ps = draw(st.integers(1, 4))
        pic, scale = "P(%d)9(%d)" % (ps, digits), ps + digits
    pic = ("S" if signed else "") + pic
    extra = {}
    if usage == "display" and signed:
        extra = {"sign": draw(st.sampled_from(["leading", "trailing"])),
                 "sign_separate": draw(st.booleans())}
    item = _elementary("N", pic, usage, **extra)
    assert item["scale"] == scale
    low = -(10 ** digits) + 1 if signed else 0
    stored = draw(st.integers(low, 10 ** digits - 1))
    value = stored * 10 ** -scale if scale <= 0 else Decimal(stored).scaleb(-scale, EXACT)
    return item, value


@settings(max_examples=400, deadline=None)
@given(numeric_case())
def test_numbers_round_trip_for_every_picture(case):
    item, value = case
    codec = _codec(item)
    buffers = codec.new_buffers()
    codec.load_inputs(buffers, {"N": value})
    out = codec.dump_outputs(buffers)["N"]
    assert out == value
    if item["scale"] > 0:
        assert out.as_tuple().exponent == -item["scale"]
    else:
        assert type(out) is int


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
               max_size=12).map(lambda s: s.rstrip(" ")))
def test_strings_round_trip(text):
    codec = _codec(_elementary("S", "X(40)", "display"))
    buffers = codec.new_buffers()
    codec.load_inputs(buffers, {"S": text})
    assert codec.dump_outputs(buffers) == {"S": text}


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["comp-1", "comp-2"]))
def test_floats_round_trip_through_their_precision(number, usage):
    codec = _codec(_elementary("F", None, usage))
    buffers = codec.new_buffers()
    try:
        expected = struct.unpack("=f" if usage == "comp-1" else "=d",
                                 struct.pack("=f" if usage == "comp-1" else "=d", number))[0]
    except OverflowError:
        assert _error(codec, {"F": number}).code == "out_of_range"
        return
    codec.load_inputs(buffers, {"F": number})
    assert codec.dump_outputs(buffers) == {"F": expected}


# --- jsonio ------------------------------------------------------------------------------

def test_jsonio_keeps_decimals_exact_and_rejects_bad_json():
    parsed = jsonio.loads(b'{"a": 1.10, "b": 7, "c": [0.1, -2E-3], "d": "\\u00e9"}')
    assert parsed == {"a": Decimal("1.10"), "b": 7, "c": [Decimal("0.1"), Decimal("-0.002")],
                      "d": "\u00e9"}
    assert type(parsed["b"]) is int and str(parsed["a"]) == "1.10"
    assert jsonio.dumps({"a": Decimal("1.10"), "b": [1, 0.5, None, True], "c": "\u00e9\""}) == \
        '{"a":1.10,"b":[1,0.5,null,true],"c":"\u00e9\\""}'.encode("utf-8")
    for bad, fragment in [(b'{"a": NaN}', "NaN"), (b'[Infinity]', "Infinity"),
                          (b'{"a": 1', "line 1 column 8"), (b"\xff", "not UTF-8")]:
        with pytest.raises(ValueError, match=fragment):
            jsonio.loads(bad)
    with pytest.raises(ValueError):
        jsonio.dumps(float("nan"))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_jsonio_decimal_round_trip(value):
    assert jsonio.loads(jsonio.dumps([value]))[0] == value
