"""defmap, the mapping file, and their agreement with GnuCOBOL's own layout (real cobc)."""

import json
import os
import re
import shutil
import subprocess
import textwrap

import pytest

from esrt.mapping import MappingError, defmap, entry_symbol, load_mapping, write_mapping

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "cobol", "mapping")
COPYLIB = os.path.join(FIXTURES, "copylib")

needs_cobc = pytest.mark.skipif(shutil.which("cobc") is None, reason="GnuCOBOL not installed")


def fixture(name):
    return os.path.join(FIXTURES, name)


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, "%s failed:\n%s%s" % (args, result.stdout, result.stderr)
    return result.stdout


# --- the document ------------------------------------------------------------------------

def test_cblapp01_default_mapping_has_the_documented_shape():
    doc = defmap([fixture("cblapp01.cbl")], "srv01")
    assert doc["format"] == "esrt-mapping/1"
    assert doc["service"] == "srv01"
    (program,) = doc["programs"]
    assert program["program"] == "CBLAPP01"
    assert program["entry"] == "CBLAPP01"
    assert program["source"] == fixture("cblapp01.cbl")
    names = [p["name"] for p in program["parameters"]]
    assert names == ["LK-DATETIME", "LK-PGMNAME", "LK-HOSTNAME", "LK-COUNTER"]
    assert program["parameters"][0] == {
        "name": "LK-DATETIME", "level": 1, "pic": "X(20)", "usage": "display", "offset": 0,
        "length": 20, "type": "string", "direction": "io", "line": 8}
    assert program["parameters"][3] == {
        "name": "LK-COUNTER", "level": 1, "pic": "9(10)", "usage": "display", "offset": 0,
        "length": 10, "type": "integer", "direction": "io", "digits": 10, "scale": 0,
        "signed": False, "line": 11}


def _fields(doc, index=0):
    return {f["name"]: f for f in doc["programs"][0]["parameters"][index]["fields"]}


def test_every_supported_clause_is_described():
    doc = defmap([fixture("allclauses.cbl")], "srv01")
    params = doc["programs"][0]["parameters"]
    assert [p["name"] for p in params] == ["LK-FLAG", "LK-REC"]  # USING order, 77 level
    f = _fields(doc, 1)
    assert "LK-ALT" not in f and "LK-ALT-B" not in f  # REDEFINES skipped with its children
    assert "FILLER" not in f and None not in f
    assert f["LK-AMOUNT"]["type"] == "number" and f["LK-AMOUNT"]["scale"] == 2
    assert (f["LK-AMOUNT"]["sign"], f["LK-AMOUNT"]["sign_separate"]) == ("trailing", False)
    assert (f["LK-LEADSEP"]["sign"], f["LK-LEADSEP"]["sign_separate"]) == ("leading", True)
    assert f["LK-LEADSEP"]["length"] == 4
    assert (f["LK-HUNDREDS"]["digits"], f["LK-HUNDREDS"]["scale"]) == (3, -2)
    assert f["LK-HUNDREDS"]["type"] == "integer"
    assert (f["LK-TINY"]["digits"], f["LK-TINY"]["scale"]) == (2, 5)
    assert [f[n]["usage"] for n in ("LK-BIN1", "LK-BIN4", "LK-NAT5", "LK-PACKED", "LK-FLOAT",
                                    "LK-DOUBLE")] == ["binary", "binary", "comp-5", "comp-3",
                                                      "comp-1", "comp-2"]
    items = f["LK-ITEMS"]
    assert items["occurs"] == 3 and items["type"] == "object" and items["length"] == 11
    inner = {x["name"]: x for x in items["fields"]}
    assert inner["LK-QTY"]["offset"] == 0  # relative to one element of LK-ITEMS
    assert inner["LK-TAGS"]["occurs"] == 2
    assert inner["LK-INNER"]["fields"][0]["name"] == "LK-CELL"


def test_usage_and_sign_on_a_group_apply_to_its_children(tmp_path):
    src = _program(tmp_path, [
        "01 LK-G COMP-3.",
        "   05 LK-A PIC S9(5).",
        "   05 LK-B PIC 9(2).",
        "01 LK-H SIGN LEADING SEPARATE.",
        "   05 LK-C PIC S9(3).",
    ], using="LK-G LK-H")
    doc = defmap([src], "svc")
    g, h = doc["programs"][0]["parameters"]
    assert [x["usage"] for x in g["fields"]] == ["comp-3", "comp-3"]
    assert g["length"] == 5
    assert h["fields"][0]["sign"] == "leading" and h["fields"][0]["length"] == 4


def test_copy_with_replacing_and_copy_dirs():
    doc = defmap([fixture("copyuse.cbl")], "srv01", copy_dirs=[COPYLIB])
    first, second = doc["programs"][0]["parameters"]
    assert first["name"] == "LK-IN-REC" and second["name"] == "LK-OUT-REC"
    assert [x["name"] for x in first["fields"]] == [
        "LK-IN-ID", "LK-IN-AMOUNT", "LK-NOTE", "AUDIT-USER", "AUDIT-STAMP"]
    assert [x["name"] for x in second["fields"]][2] == "XX-NOTE"
    assert first["length"] == 42


def test_missing_copybook_is_a_clear_error():
    with pytest.raises(MappingError) as info:
        defmap([fixture("copyuse.cbl")], "srv01")  # audit.cpy lives in copylib/
    message = str(info.value)
    assert message.startswith("orderrec.cpy:6:")
    assert "copybook audit not found" in message and "copy_dirs" in message


def test_free_format_and_fixed_format_quirks():
    doc = defmap([fixture("freeformat.cbl")], "srv01")
    program = doc["programs"][0]
    assert program["program"] == "free-prog" and program["entry"] == "free__prog"
    order = program["parameters"][0]
    assert order["fields"][1]["name"] == "lk-customer-name-that-is-rather-long"
    assert order["fields"][3]["sign_separate"] is True
    doc = defmap([fixture("fixedquirks.cbl")], "srv01")
    rec = doc["programs"][0]["parameters"][0]
    # Debug line skipped, text after column 72 ignored, continued literal and the
    # clause split across lines understood.
    assert [x["name"] for x in rec["fields"]] == ["LK-TEXT", "LK-NUM", "LK-SPLIT"]
    assert rec["fields"][1]["pic"] == "9(4)"
    assert rec["fields"][2]["usage"] == "comp-3"
    assert rec["length"] == 76


def test_a_source_with_two_programs_gives_two_entries(tmp_path):
    text = _source("FIRST-ONE", ["01 LK-A PIC X(3)."], "LK-A") + "       END PROGRAM FIRST-ONE.\n" \
        + _source("SECOND", ["01 LK-B PIC 9(3)."], "LK-B") + "       END PROGRAM SECOND.\n"
    path = tmp_path / "two.cbl"
    path.write_text(text)
    doc = defmap([str(path)], "svc")
    assert [(p["program"], p["parameters"][0]["name"]) for p in doc["programs"]] == [
        ("FIRST-ONE", "LK-A"), ("SECOND", "LK-B")]


# --- errors ------------------------------------------------------------------------------

def _source(program_id, linkage, using):
    lines = ["       IDENTIFICATION DIVISION.", "       PROGRAM-ID. %s." % program_id,
             "       DATA DIVISION.", "       LINKAGE SECTION."]
    lines += ["       " + line for line in linkage]
    lines += ["       PROCEDURE DIVISION USING %s." % using, "           GOBACK."]
    return "\n".join(lines) + "\n"


def _program(tmp_path, linkage, using="LK-REC", name="prog.cbl"):
    path = tmp_path / name
    path.write_text(_source("PROG", linkage, using))
    return str(path)


UNSUPPORTED = [
    ("   05 LK-N PIC 9(2).|   05 LK-T PIC X OCCURS 1 TO 5 DEPENDING ON LK-N.",
     7, "OCCURS DEPENDING ON is not supported (LK-T); use a fixed OCCURS n"),
    ("   05 LK-N PIC 9(2).|   05 LK-T PIC X OCCURS 5 DEPENDING ON LK-N.", 7, "DEPENDING"),
    ("   05 LK-I USAGE INDEX.", 6, "USAGE INDEX"),
    ("   05 LK-P USAGE IS POINTER.", 6, "USAGE POINTER"),
    ("   05 LK-E PIC ZZ9.99.", 6, "numeric-edited"),
    ("   05 LK-E PIC 9(5)CR.", 6, "numeric-edited"),
    ("   05 LK-E PIC ***9.", 6, "numeric-edited"),
    ("   05 LK-E PIC +9(3).", 6, "numeric-edited"),
    ("   05 LK-E PIC 99/99/99.", 6, "numeric-edited"),
    ("   05 LK-E PIC 9,999.", 6, "numeric-edited"),
    ("   05 LK-E PIC 9B9.", 6, "numeric-edited"),
    ("   05 LK-E PIC 9909.", 6, "numeric-edited"),
    ("   05 LK-N PIC N(4).", 6, "national"),
    ("   05 LK-N PIC X(4) USAGE NATIONAL.", 6, "NATIONAL"),
    ("   05 LK-X PIC 9(4) COMP-X.", 6, "COMP-X"),
    ("   05 LK-S PIC S9(4) COMP SYNCHRONIZED.", 6, "SYNCHRONIZED"),
    ("   05 LK-J PIC X(4) JUSTIFIED RIGHT.", 6, "JUSTIFIED"),
    ("   05 LK-B PIC 9(4) BLANK WHEN ZERO.", 6, "BLANK WHEN ZERO"),
    ("   05 LK-A PIC X(4).|   05 LK-B PIC X(2).|66 LK-R RENAMES LK-A THRU LK-B.", 8, "RENAMES"),
    ("   05 LK-A PIC X ANY LENGTH.", 6, "ANY LENGTH"),
    ("   05 LK-A PIC 9(19) COMP.", 6, "18"),
    ("   05 LK-A.|      10 LK-B PIC X.|   05 LK-A PIC X.", 8, "appears twice"),
    ("   05 LK-A COMP-1 PIC 9.", 6, "takes no PICTURE"),
    ("   05 LK-A.", 6, "no PICTURE"),
]


@pytest.mark.parametrize("linkage,line,fragment", UNSUPPORTED)
def test_unsupported_linkage_clause_names_file_line_and_remedy(tmp_path, linkage, line,
                                                                fragment):
    src = _program(tmp_path, ["01 LK-REC."] + linkage.split("|"))
    with pytest.raises(MappingError) as info:
        defmap([src], "svc")
    assert str(info.value).startswith("prog.cbl:%d: " % line), str(info.value)
    assert fragment in str(info.value)


def test_unsupported_items_outside_the_interface_are_ignored(tmp_path):
    src = _program(tmp_path, ["01 LK-REC PIC X(2).", "01 LK-OTHER USAGE POINTER."])
    assert defmap([src], "svc")["programs"][0]["parameters"][0]["length"] == 2


def test_using_by_value_and_unknown_using_items_are_errors(tmp_path):
    src = _program(tmp_path, ["01 LK-REC PIC 9(4) COMP-5."], using="BY VALUE LK-REC")
    with pytest.raises(MappingError, match=r"prog.cbl:6: USING BY VALUE is not supported"):
        defmap([src], "svc")
    src = _program(tmp_path, ["01 LK-REC PIC X."], using="LK-REC LK-NOPE")
    with pytest.raises(MappingError, match=r"prog.cbl:6: USING item LK-NOPE is not"):
        defmap([src], "svc")


def test_unreadable_source_and_bad_service_name(tmp_path):
    with pytest.raises(MappingError, match="cannot read the COBOL source"):
        defmap([str(tmp_path / "nope.cbl")], "svc")
    with pytest.raises(MappingError, match="service name"):
        defmap([fixture("cblapp01.cbl")], "bad name")


# --- the mapping file --------------------------------------------------------------------

def test_write_then_load_round_trips_and_accepts_edited_directions(tmp_path):
    doc = defmap([fixture("allclauses.cbl")], "srv01")
    path = tmp_path / "srv01.mapping.json"
    write_mapping(doc, str(path))
    assert "\n  " in path.read_text()  # indented for people
    edited = json.loads(path.read_text())
    edited["programs"][0]["parameters"][0]["direction"] = "out"
    del edited["programs"][0]["parameters"][1]["direction"]
    path.write_text(json.dumps(edited))
    loaded = load_mapping(str(path))
    assert loaded["programs"][0]["parameters"][0]["direction"] == "out"
    assert loaded["programs"][0]["parameters"][1]["direction"] == "io"  # the default


def _edited(tmp_path, change):
    doc = defmap([fixture("cblapp01.cbl")], "srv01")
    change(doc["programs"][0]["parameters"])
    path = tmp_path / "srv01.mapping.json"
    write_mapping(doc, str(path))
    return str(path)


@pytest.mark.parametrize("change,fragment", [
    (lambda p: p[1].update(direction="output"), "LK-PGMNAME: direction 'output' is not one of"),
    (lambda p: p[3].update(length=9), "LK-COUNTER: length 9 does not match"),
    (lambda p: p[3].update(type="string"), "LK-COUNTER: PIC 9(10) has type 'integer'"),
    (lambda p: p[3].update(scale=2), "LK-COUNTER: 'scale' is 2 but PIC 9(10) means 0"),
    (lambda p: p[0].pop("usage"), "LK-DATETIME: the key 'usage' is missing"),
    (lambda p: p[2].update(pic="ZZ9"), "LK-HOSTNAME: PICTURE ZZ9 is numeric-edited"),
    (lambda p: p.append(dict(p[0])), "LK-DATETIME: the name is used twice"),
])
def test_load_mapping_names_file_and_parameter(tmp_path, change, fragment):
    with pytest.raises(MappingError) as info:
        load_mapping(_edited(tmp_path, change))
    assert str(info.value).startswith("srv01.mapping.json: program CBLAPP01, parameter ")
    assert fragment in str(info.value)


def test_load_mapping_rejects_broken_json(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"format": ')
    with pytest.raises(MappingError, match=r"m.json: not valid JSON"):
        load_mapping(str(path))


# --- agreement with cobc -----------------------------------------------------------------

@needs_cobc
@pytest.mark.parametrize("program_id", ["CBLAPP01", "cbl-app-02", "1ST-PROG", '"my.prog$x"',
                                        "MixedCase"])
def test_entry_symbol_is_what_cobc_exports(tmp_path, program_id):
    src = tmp_path / "p.cbl"
    src.write_text(_source(program_id, ["01 LK-A PIC X."], "LK-A"))
    doc = defmap([str(src)], "svc")
    run(["cobc", "-m", "-o", str(tmp_path / "p.so"), str(src)])
    symbols = run(["nm", "-D", "--defined-only", str(tmp_path / "p.so")]).split()
    assert doc["programs"][0]["entry"] in symbols
    assert entry_symbol(doc["programs"][0]["program"]) == doc["programs"][0]["entry"]


def _probe_statements(params):
    """COBOL statements that DISPLAY the offset and length GnuCOBOL gives each item."""
    lines, expected = [], {}

    def visit(item, record, frame, subs, path):
        offset = frame + item["offset"]
        subs_here = subs + ([1] if "occurs" in item else [])
        qualified = item["name"] if item is record else "%s OF %s" % (item["name"],
                                                                     record["name"])
        probes = [(path, subs_here, offset)]
        if "occurs" in item:
            probes.append((path + "#2", subs[:] + [2], offset + item["length"]))
        for key, sub, at in probes:
            ref = qualified + (" (%s)" % ", ".join(map(str, sub)) if sub else "")
            lines.extend(["SET PRB-P2 TO ADDRESS OF %s" % ref,
                          "COMPUTE PRB-D = PRB-N2 - PRB-N1",
                          "MOVE FUNCTION LENGTH(%s) TO PRB-L" % ref,
                          'DISPLAY "%s" SPACE PRB-D SPACE PRB-L' % key])
            expected[key] = (at, item["length"])
        child_frame = offset if "occurs" in item else frame
        for field in item.get("fields", []):
            visit(field, record, child_frame, subs_here, path + "." + field["name"])

    for param in params:
        lines += ["SET ADDRESS OF %s TO ADDRESS OF PRB-AREA" % param["name"],
                  "SET PRB-P1 TO ADDRESS OF %s" % param["name"]]
        visit(param, param, 0, [], param["name"])
    return lines, expected


def _layout_probe(src, params, workdir):
    """Turn a fixture into a batch program printing GnuCOBOL's view of its LINKAGE items."""
    text = open(src).read().splitlines()
    proc = next(i for i, line in enumerate(text) if re.search(r"PROCEDURE\s+DIVISION", line,
                                                                re.I))
    link = next(i for i, line in enumerate(text) if re.search(r"LINKAGE\s+SECTION", line, re.I))
    has_ws = any(re.search(r"WORKING-STORAGE\s+SECTION", line, re.I) for line in text[:link])
    storage = [] if has_ws else ["       WORKING-STORAGE SECTION."]
    storage += ["       01 PRB-AREA PIC X(8000).", "       01 PRB-P1 USAGE POINTER.",
                "       01 PRB-N1 REDEFINES PRB-P1 PIC S9(18) COMP-5.",
                "       01 PRB-P2 USAGE POINTER.",
                "       01 PRB-N2 REDEFINES PRB-P2 PIC S9(18) COMP-5.",
                "       01 PRB-D PIC S9(9).", "       01 PRB-L PIC 9(9)."]
    statements, expected = _probe_statements(params)
    # Fixed format ends at column 72: wrap long qualified references.
    body = ["       PROCEDURE DIVISION."] + [
        "           " + part for s in statements
        for part in textwrap.wrap(s, 55, break_long_words=False,
                                    break_on_hyphens=False)] + ["           STOP RUN."]
    probe = workdir / ("probe_" + os.path.basename(src))
    probe.write_text("\n".join(text[:link] + storage + text[link:proc] + body) + "\n")
    exe = str(workdir / "probe")
    run(["cobc", "-x", "-w", "-I", COPYLIB, "-I", FIXTURES, "-o", exe, str(probe)])
    seen = {}
    for line in run([exe]).splitlines():
        key, offset, length = line.split()
        seen[key] = (int(offset), int(length))
    return seen, expected


@needs_cobc
@pytest.mark.parametrize("name", ["allclauses.cbl", "freeformat.cbl", "copyuse.cbl",
                                  "fixedquirks.cbl", "cblapp01.cbl", "nested.cbl"])
def test_offsets_and_lengths_match_gnucobol(tmp_path, name):
    doc = defmap([fixture(name)], "svc", copy_dirs=[COPYLIB])
    seen, expected = _layout_probe(fixture(name), doc["programs"][0]["parameters"], tmp_path)
    assert seen == expected


def test_set_sourceformat_free_and_word_replacing(tmp_path):
    (tmp_path / "book.cpy").write_text("01 OLD-NAME.\n   05 OLD-FIELD PIC X(4).\n")
    src = tmp_path / "mf.cbl"
    src.write_text('      $SET SOURCEFORMAT"FREE"\n'
                   "identification division.\nprogram-id. mfprog.\ndata division.\n"
                   "linkage section.\ncopy book replacing OLD-NAME by NEW-NAME\n"
                   "    old-field by new-field.\n"
                   "procedure division using NEW-NAME.\n    goback.\n")
    doc = defmap([str(src)], "svc")
    (param,) = doc["programs"][0]["parameters"]
    assert param["name"] == "NEW-NAME" and param["fields"][0]["name"] == "new-field"
    assert param["length"] == 4
