"""The SEP's call path in C (esrt._callpath) agrees with its pure-Python twin.

Hypothesis draws mappings (fields of every usage, groups, OCCURS), request bodies (valid,
re-spelt, mangled) and raw buffer bytes. Whenever the C plan says it handled a request, the
Python path must accept it and leave byte-identical buffers; whenever it writes a reply, the
reply must be byte-identical to jsonio.dumps(dump_outputs(...)). Plain valid input must be
handled by C (a C path that always declined would pass the first two checks). Real COBOL
programs run in child processes (libcob state is per process): the C caller must give the
same RETURN-CODE and buffers as cffi, and the null service and CBLAPP01 go through C entirely.
"""

import json
import os
import resource
import subprocess
import sys
import textwrap
import zipfile
from decimal import Context, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esrt import native
from esrt.mapping import ProgramCodec, jsonio
from test_codec_twins import elementary, items

# Decimal's default 28 digits would round values of wider fields.
EXACT = Context(prec=100)
REPO = Path(__file__).resolve().parents[2]
NULL_MAPPING = REPO / "examples" / "null" / "null.mapping.json"

_callpath = native.load("_callpath")
needs_c = pytest.mark.skipif(_callpath is None, reason="esrt._callpath not built (run "
                             "pip install -e .) or ESRT_PUREPYTHON=1")


def hypothesis_settings(examples):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def both(program):
    """(C codec, twin codec) for one program mapping."""
    native_codec = ProgramCodec(program, "c")
    assert native_codec.callpath == "c"
    return native_codec, ProgramCodec(program, "python")


def null_program():
    return json.loads(NULL_MAPPING.read_text())["programs"][0]


# --- mappings ----------------------------------------------------------------------------

def _leaf(draw, name, offset):
    item = dict(draw(items), name=name, level=5, offset=offset)
    if draw(st.integers(0, 4)) == 0:
        item["occurs"] = draw(st.integers(1, 3))
    return item


def _group(draw, name, offset, depth):
    occurs = draw(st.one_of(st.none(), st.none(), st.integers(1, 3)))
    # Children of an OCCURS group count from the element, others from the parent's frame.
    base = 0 if occurs else offset
    at, fields = base, []
    for number in range(draw(st.integers(1, 3))):
        child_name = "%s-F%d" % (name, number)
        if depth < 2 and draw(st.integers(0, 3)) == 0:
            child = _group(draw, child_name, at, depth + 1)
        else:
            child = _leaf(draw, child_name, at)
        fields.append(child)
        at += child["length"] * child.get("occurs", 1)
    group = {"name": name, "level": 1 + depth * 4, "usage": "group", "offset": offset,
             "length": at - base, "fields": fields, "type": "object"}
    if occurs:
        group["occurs"] = occurs
    return group


@st.composite
def programs(draw):
    parameters = []
    for number in range(draw(st.integers(1, 4))):
        name = "LK-P%d" % number
        if draw(st.booleans()):
            parameter = _group(draw, name, 0, 0)
        else:
            parameter = _leaf(draw, name, 0)
        parameter.update(level=1, direction=draw(st.sampled_from(["in", "out", "io", "io"])))
        parameters.append(parameter)
    return {"program": "P", "parameters": parameters}


def has_float(item):
    if item["usage"] == "group":
        return any(has_float(field) for field in item["fields"])
    return item["usage"] in ("comp-1", "comp-2")


# --- values and bodies -------------------------------------------------------------------

def valid_value(draw, item, whole=True):
    """A value the field holds (a list for OCCURS), never for COMP-1/COMP-2."""
    if whole and item.get("occurs"):
        count = draw(st.integers(0, item["occurs"]))
        return [valid_value(draw, item, False) for _ in range(count)]
    if item["usage"] == "group":
        chosen = draw(st.permutations([f for f in item["fields"] if not has_float(f)]))
        chosen = chosen[:draw(st.integers(0, len(chosen)))]
        return {field["name"]: valid_value(draw, field) for field in chosen}
    if item["type"] == "string":
        return draw(st.text(max_size=item["length"]).filter(
            lambda text: len(text.encode("utf-8")) <= item["length"]))
    top = 10 ** item["digits"] - 1
    number = draw(st.one_of(st.integers(-top if item["signed"] else 0, top),
                            st.sampled_from([0, top, -top if item["signed"] else 1])))
    if item["scale"] <= 0:
        return number * 10 ** -item["scale"]
    return Decimal(number).scaleb(-item["scale"], EXACT)


def render(draw, value):
    """JSON text of `value`, spelt one of several valid ways; (text, plain) where plain is
    False when it used escapes the C path may leave to Python (surrogate pairs)."""
    space = draw(st.sampled_from(["", " ", "\n\t", "\r\n  "]))
    if isinstance(value, dict):
        parts, plain = [], True
        for key, element in value.items():
            text, element_plain = render(draw, element)
            parts.append("%s%s:%s%s" % (json.dumps(key), space, space, text))
            plain = plain and element_plain
        return "{" + space + ("," + space).join(parts) + space + "}", plain
    if isinstance(value, list):
        rendered = [render(draw, element) for element in value]
        return ("[" + space + ("," + space).join(text for text, _ in rendered) + space + "]",
                all(plain for _, plain in rendered))
    if isinstance(value, str):
        style = draw(st.integers(0, 2))
        if style == 0:
            return jsonio.dumps(value).decode("utf-8"), True
        if style == 1:
            return json.dumps(value, ensure_ascii=True), all(ord(c) < 0x10000 for c in value)
        return jsonio.dumps(value).decode("utf-8").replace("/", "\\/"), True
    number = Decimal(value)
    style = draw(st.integers(0, 4))
    if style == 0:
        return jsonio.dumps(value).decode("ascii"), True
    if style == 1:
        return str(number), True
    if style == 2:
        return format(number, "f") + (".000" if "." not in format(number, "f") else "00"), True
    sign, digits, exponent = number.as_tuple()
    shift = draw(st.integers(-3, 3))
    coefficient = "".join(map(str, digits)).lstrip("0") or "0"
    coefficient += "0" * max(shift, 0) if coefficient != "0" else ""
    return "%s%se%d" % ("-" if sign else "", coefficient, exponent - max(shift, 0)), True


def mangled(draw, program, values):
    """A body the C path should decline or the Python path reject, or a near miss."""
    params = program["parameters"]
    param = draw(st.sampled_from(params))
    values = dict(values)
    kind = draw(st.integers(0, 12))
    if kind == 0:
        values["NO-SUCH-FIELD"] = 1
    elif kind == 1:
        values[param["name"].lower()] = values.pop(param["name"], 0)
    elif kind == 2:
        values[param["name"]] = draw(st.one_of(st.none(), st.booleans(), st.text(max_size=50),
                                               st.integers(-10 ** 40, 10 ** 40),
                                               st.decimals(allow_nan=False,
                                                           allow_infinity=False),
                                               st.just([1, 2, 3, 4, 5]), st.just({"X": 1})))
    elif kind == 3:
        text = jsonio.dumps(values).decode("utf-8")
        return text[:draw(st.integers(0, max(len(text) - 1, 0)))].encode("utf-8")
    elif kind == 4:
        body = bytearray(jsonio.dumps(values))
        body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
        return bytes(body)
    elif kind == 5:
        return draw(st.sampled_from([b"", b" \n", b"[]", b"1", b'"x"', b"null", b"\xef\xbb\xbf{}",
                                     b"{}x", b"{},", b'{"a"}', b"{\x0c}", b'{"\\ud800": 1}']))
    elif kind == 6:
        first = jsonio.dumps(values)
        key = jsonio.dumps(param["name"]) + b":0"
        return first[:-1] + (b"," if len(first) > 2 else b"") + key + b"," + key + b"}"
    elif kind == 7 and param["usage"] == "group":
        element = {field["name"]: "x" * 41 for field in param["fields"]}
        values[param["name"]] = [element] * 5 if param.get("occurs") else element
    elif kind == 8:  # escaped surrogate pairs, which C leaves to Python
        values[param["name"]] = "@@"
        pairs = b"\\ud83d\\ude00" * draw(st.integers(0, 12))
        return jsonio.dumps(values).replace(b'"@@"', b'"' + pairs + b'"')
    elif kind == 9:
        return jsonio.dumps(values).replace(b"}", b"}" * draw(st.integers(1, 2)), 1)
    else:
        # a nearly valid number for every field: out by one digit or one place
        values[param["name"]] = draw(st.sampled_from([10 ** 38, Decimal("0.001"), -1,
                                                      Decimal("1E+2"), Decimal("-0.0")]))
    return jsonio.dumps(values)


@st.composite
def requests(draw):
    """(program, body, plain): plain bodies are valid and must be handled by C."""
    program = draw(programs())
    inputs = [p for p in program["parameters"]
              if p["direction"] in ("in", "io") and not has_float(p)]
    values = {p["name"]: valid_value(draw, p) for p in draw(st.permutations(inputs))}
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return program, jsonio.dumps(values), True
    if choice == 1:
        text, plain = render(draw, values)
        return program, text.encode("utf-8"), plain
    return program, mangled(draw, program, values), False


# --- properties --------------------------------------------------------------------------

@needs_c
@hypothesis_settings(1500)
@given(requests(), st.data())
def test_a_request_c_handles_leaves_the_buffers_the_python_path_leaves(request, data):
    program, body, plain = request
    native_codec, twin = both(program)
    buffers = native_codec.new_buffers()
    for buffer in buffers:  # leftovers of an earlier call: load must reset them
        buffer[:] = data.draw(st.binary(min_size=len(buffer), max_size=len(buffer)))
    handled = native_codec._plan.load(buffers, body)
    expected = twin.new_buffers()
    accepted = twin.load_json(expected, body)
    if plain:
        assert handled, body
    if handled:
        assert accepted, body
        assert buffers == expected, body
        reference = twin.new_buffers()
        twin.load_inputs(reference, jsonio.loads(body) if body.strip() else {})
        assert buffers == reference


@needs_c
@hypothesis_settings(1200)
@given(programs(), st.data())
def test_a_reply_c_writes_is_byte_identical_to_jsonio(program, data):
    native_codec, twin = both(program)
    buffers = native_codec.new_buffers()
    raw_bytes = st.sampled_from([st.binary, lambda **size: st.text(
        "0123456789pqrstuvwxy +-\0\x01\"\\\x7fé\U0001f600", **size).map(
            lambda text: text.encode("utf-8")[:size["max_size"]].ljust(size["max_size"], b"0"))])
    for buffer in buffers:
        buffer[:] = data.draw(data.draw(raw_bytes)(min_size=len(buffer), max_size=len(buffer)))
    reply = native_codec._plan.dump(buffers)
    expected = jsonio.dumps(twin.dump_outputs(buffers))
    assert reply is None or reply == expected
    assert native_codec.dump_json(buffers) == expected == twin.dump_json(buffers)
    # What COBOL MOVEs write (here: what a valid request stored) C must always handle.
    outputs = [p for p in program["parameters"] if p["direction"] in ("out", "io")]
    if not any(has_float(p) for p in outputs):
        values = {p["name"]: valid_value(data.draw, p) for p in program["parameters"]
                  if p["direction"] in ("in", "io") and not has_float(p)}
        twin.load_inputs(buffers, values)
        assert native_codec._plan.dump(buffers) == jsonio.dumps(twin.dump_outputs(buffers))


def test_the_twin_accepts_what_the_python_path_accepts():
    codec = ProgramCodec(null_program(), "python")
    assert codec.callpath == "python"
    buffers = codec.new_buffers()
    buffers[0][:] = b"x" * 20
    assert codec.load_json(buffers, b" \n")
    assert buffers == codec.new_buffers()
    assert codec.load_json(buffers, b'{"LK-IN-NAME": "caf\\u00e9", "lk-in-amount": 1.0E3}')
    assert buffers[0] == "café".encode().ljust(20) and buffers[1] == b"0001000"
    for body in (b"[1]", b"{", b'{"LK-IN-NAME": 1}', b'{"LK-OUT-NAME": "x"}',
                 b'{"LK-IN-AMOUNT": 12345678}', b"\xff{}"):
        assert not codec.load_json(codec.new_buffers(), body), body
    assert codec.dump_json(buffers) == b'{"LK-OUT-NAME":"","LK-OUT-AMOUNT":0}'


@needs_c
def test_the_environment_switch_gives_the_twin(monkeypatch):
    environ = dict(os.environ, ESRT_PUREPYTHON="1", PYTHONPATH=str(REPO))
    probe = subprocess.run(
        [sys.executable, "-c", "import json\nfrom esrt.mapping import ProgramCodec\n"
         "from esrt.cobol import runtime\n"
         "codec = ProgramCodec(json.load(open(%r))['programs'][0])\n"
         "print(codec.callpath, runtime._callpath)" % str(NULL_MAPPING)],
        env=environ, cwd=REPO, capture_output=True, text=True)
    assert probe.stdout.split() == ["python", "None"], probe.stderr
    assert ProgramCodec(null_program()).callpath == "c"


@needs_c
def test_the_null_service_and_cblapp01_go_through_c_entirely(tmp_path):
    from esrt.testing.apps import build_car
    with zipfile.ZipFile(build_car("CBLAPP01", workdir=tmp_path)) as car:
        cblapp01 = json.loads(car.read("srv01.mapping.json"))["programs"][0]
    codec = ProgramCodec(cblapp01)
    buffers = codec.new_buffers()
    assert codec._plan.load(buffers, b"") and codec._plan.load(buffers, b"{}")
    # as CBLAPP01 leaves them: gethostname pads with NUL
    buffers[:] = [bytearray(b"26/11/26 01:40:20.00"), bytearray(b"CBLAPP01  "),
                  bytearray(b"node1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), bytearray(b"0000000042")]
    assert codec._plan.dump(buffers) == (b'{"LK-DATETIME":"26/11/26 01:40:20.00","LK-PGMNAME":'
                                         b'"CBLAPP01","LK-HOSTNAME":"node1","LK-COUNTER":42}')
    codec = ProgramCodec(null_program())
    buffers = codec.new_buffers()
    assert codec._plan.load(buffers, b'{"LK-IN-NAME": "h\xc3\xa9llo", "LK-IN-AMOUNT": 1234567}')
    buffers[2][:], buffers[3][:] = buffers[0], buffers[1]
    assert codec._plan.dump(buffers) == b'{"LK-OUT-NAME":"h\xc3\xa9llo","LK-OUT-AMOUNT":1234567}'


@needs_c
def test_decimal_text_matches_jsonio_at_the_edges():
    cases = [("S9(3)V9(2)", -1), ("9V9(8)", 1), ("V9(38)", 1), ("V9(38)", 0), ("V9(30)", 7),
             ("P(4)9(5)", 12345), ("P(4)9(5)", 0), ("9(3)P(3)", 5), ("S9(18)", -10 ** 17),
             ("P(4)9(34)", 1)]
    for pic, stored in cases:
        item = elementary("N", pic, "comp-3")
        native_codec, twin = both({"program": "P", "parameters": [item]})
        buffers = native_codec.new_buffers()
        digits = item["length"] * 2 - 1
        sign = "d" if stored < 0 else ("c" if item["signed"] else "f")
        buffers[0][:] = bytes.fromhex("%0*d%s" % (digits, abs(stored), sign))
        assert native_codec._plan.dump(buffers) == jsonio.dumps(twin.dump_outputs(buffers)), pic



@needs_c
def test_a_plan_nested_deeper_than_cobol_allows_is_refused_not_recursed_into():
    from esrt import _callpath
    node = (1, 0, 1, 0, b"LEAF", b'"LEAF":', 0, 0, 0, 0, ())
    for depth in range(100000):
        node = (0, 0, 1, 0, b"G%d" % depth, b'"G%d":' % depth, 0, 0, 0, 0, (node,))
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        _callpath.Plan((node,), (True,), (0,), (b" ",))


# Runs in a child: a stack overflow kills the process.
MANY_PARAMETERS = textwrap.dedent(
    """
    import sys, threading
    from esrt import _callpath
    count = int(sys.argv[1])
    names = [b"P%d" % i for i in range(count)]
    plan = _callpath.Plan(tuple((1, 0, 1, 0, name, b'"%s":' % name, 0, 0, 0, 0, ())
                                for name in names),
                          (True,) * count, tuple(range(count)), (b" ",) * count)
    buffers = [bytearray(b" ") for _ in range(count)]
    result = []
    def call():
        result.append(plan.load(buffers, b'{"P7": "x"}'))
        result.append(plan.dump(buffers))
    # A SEP's Twisted threads have small stacks too.
    threading.stack_size(512 * 1024)
    worker = threading.Thread(target=call)
    worker.start()
    worker.join()
    print(result[0], buffers[7].decode(), len(result[1]))
    """
)


@needs_c
def test_a_mapping_with_many_parameters_does_not_overflow_the_stack():
    count = 50000
    result = subprocess.run([sys.executable, "-c", MANY_PARAMETERS, str(count)],
                            capture_output=True, text=True, timeout=120, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr}"
    handled, value, reply_size = result.stdout.split()
    expected = b"{" + b",".join(b'"P%d":"%s"' % (i, b"x" if i == 7 else b"")
                                for i in range(count)) + b"}"
    assert (handled, value, int(reply_size)) == ("True", "x", len(expected))

# --- leaks -------------------------------------------------------------------------------

@needs_c
def test_the_c_plan_does_not_leak():
    codec = ProgramCodec(null_program())
    group = {"name": "G", "level": 1, "usage": "group", "offset": 0, "length": 10,
             "occurs": 3, "type": "object", "direction": "io",
             "fields": [elementary("A", "X(5)", "display"),
                        dict(elementary("B", "S9(3)V99", "comp-3"), offset=5, occurs=1)]}
    nested = ProgramCodec({"program": "P", "parameters": [group]})
    buffers, nested_buffers = codec.new_buffers(), nested.new_buffers()
    body = b'{"LK-IN-NAME": "hello \\"world\\"", "LK-IN-AMOUNT": 1.234e3}'
    nested_body = b'{"G": [{"A": "x\\u00e9", "B": [-12.5]}, {"B": [1E2]}]}'

    def rounds(count):
        for _ in range(count):
            assert codec._plan.load(buffers, body)
            codec._plan.dump(buffers)
            codec._plan.load(buffers, b'{"LK-IN-NAME": "\\ud83d\\ude00"}')  # declined
            assert nested._plan.load(nested_buffers, nested_body)
            assert nested._plan.dump(nested_buffers) is not None

    rounds(20000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rounds(300000)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # Leaking one reply or view per round would grow the process by tens of MiB.
    assert grown_kib < 4096, f"resident size grew by {grown_kib} KiB over 300,000 rounds"


# --- real COBOL --------------------------------------------------------------------------

MIXCALL = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. MIXCALL.
       DATA DIVISION.
       LINKAGE SECTION.
       01  LK-NAME                 PIC X(10).
       01  LK-AMOUNT               PIC S9(5)V99 COMP-3.
       01  LK-TABLE.
           05  LK-ITEM             PIC S9(4) COMP OCCURS 3 TIMES.
           05  LK-TOTAL            PIC S9(7) SIGN LEADING SEPARATE.
       PROCEDURE DIVISION USING LK-NAME LK-AMOUNT LK-TABLE.
           MOVE FUNCTION UPPER-CASE(LK-NAME) TO LK-NAME
           ADD 1.5 TO LK-AMOUNT
           COMPUTE LK-TOTAL = LK-ITEM(1) + LK-ITEM(2)
                            + LK-ITEM(3) - 1000
           MOVE 7 TO RETURN-CODE
           GOBACK.
"""

# Runs in a child (libcob is per process): the same request through the C caller and
# through cffi, the full C path on the null service, and a leak check of the full path.
DRIVER = textwrap.dedent(
    """
    import json, resource, sys
    from esrt.cobol.runtime import CobolRuntime
    from esrt.mapping import ProgramCodec, defmap
    from esrt import _callpath
    mix_source, mix_module, null_module, null_mapping, many_module = sys.argv[1:6]
    runtime = CobolRuntime()
    out = {}
    codec = ProgramCodec(defmap([mix_source], "t")["programs"][0])
    program = runtime.load(mix_module, "MIXCALL", 3)
    body = b'{"LK-NAME": "abc", "LK-AMOUNT": -12.25, "LK-TABLE": {"LK-ITEM": [5, -7, 3000]}}'
    for way in ("c", "cffi"):
        buffers = codec.new_buffers()
        bound = program.bind(buffers)
        handled = codec._plan.load(buffers, body)
        rc = bound() if way == "c" else bound.call_cffi()
        out[way] = {"caller": bound.caller, "handled": handled, "rc": rc,
                    "buffers": [b.hex() for b in buffers],
                    "reply": codec._plan.dump(buffers).decode(),
                    "twin": codec._twin.dump(buffers).decode()}
    codec = ProgramCodec(json.load(open(null_mapping))["programs"][0])
    buffers = codec.new_buffers()
    bound = runtime.load(null_module, "NULLSVC", 4).bind(buffers)
    body = b'{"LK-IN-NAME": "null \\\\u00e9", "LK-IN-AMOUNT": 42}'
    def full_path():
        assert codec._plan.load(buffers, body)
        rc = bound()
        return rc, codec._plan.dump(buffers)
    rc, reply = full_path()
    out["null"] = {"caller": bound.caller, "rc": rc, "reply": reply.decode()}
    for _ in range(20000):
        full_path()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(300000):
        full_path()
    out["null"]["grown_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    buffers = [bytearray(b"00") for _ in range(17)]
    bound = runtime.load(many_module, "MANY", 17).bind(buffers)
    out["many"] = {"caller": bound.caller, "rc": bound(), "buffers": [b.decode() for b in buffers],
                   "c_call": _callpath.call(runtime.load(many_module, "MANY", 17).address,
                                            buffers)}
    print(json.dumps(out))
    """
)


def many_source():
    """A program with 17 USING items, one more than the C caller takes."""
    names = ["LK-P%d" % n for n in range(1, 18)]
    lines = ["       IDENTIFICATION DIVISION.", "       PROGRAM-ID. MANY.",
             "       DATA DIVISION.", "       LINKAGE SECTION."]
    lines += ["       01  %s PIC 9(2)." % name for name in names]
    lines.append("       PROCEDURE DIVISION USING")
    lines += ["           %s" % name for name in names]
    lines[-1] += "."
    lines += ["           ADD %d TO %s" % (n, name) for n, name in enumerate(names, 1)]
    lines += ["           MOVE 17 TO RETURN-CODE", "           GOBACK."]
    return "\n".join(lines) + "\n"


@needs_c
def test_real_cobol_calls_through_c_match_cffi(tmp_path):
    from esrt.cobol.compile import compile_module
    (tmp_path / "mixcall.cbl").write_text(MIXCALL)
    (tmp_path / "many.cbl").write_text(many_source())
    modules = [compile_module(tmp_path / "mixcall.cbl", tmp_path),
               compile_module(REPO / "examples" / "null" / "nullsvc.cbl", tmp_path),
               compile_module(tmp_path / "many.cbl", tmp_path)]
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "mixcall.cbl"), str(modules[0]),
         str(modules[1]), str(NULL_MAPPING), str(modules[2])],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    c_run, cffi_run = out["c"], out["cffi"]
    assert (c_run["caller"], cffi_run["caller"]) == ("c", "c")
    assert c_run["handled"] and c_run["rc"] == cffi_run["rc"] == 7
    assert c_run["buffers"] == cffi_run["buffers"]
    assert c_run["reply"] == c_run["twin"] == (
        '{"LK-NAME":"ABC","LK-AMOUNT":-10.75,'
        '"LK-TABLE":{"LK-ITEM":[5,-7,3000],"LK-TOTAL":1998}}')
    assert out["null"]["caller"] == "c" and out["null"]["rc"] == 0
    assert out["null"]["reply"] == '{"LK-OUT-NAME":"null \u00e9","LK-OUT-AMOUNT":42}'
    assert out["null"]["grown_kib"] < 4096, out["null"]
    # Beyond MAX_CALL_ARGS the C caller declines and BoundCall uses cffi.
    assert out["many"]["caller"] == "cffi" and out["many"]["rc"] == 17
    assert out["many"]["buffers"] == ["%02d" % n for n in range(1, 18)]
    assert out["many"]["c_call"] is None
