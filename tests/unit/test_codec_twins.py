"""The C field codec (esrt._codec) and its pure-Python twin give identical results.

Hypothesis draws field definitions, values and raw bytes; both implementations must store
the same bytes, read back the same objects (type and exact representation, so Decimals
keep their scale) and raise the same errors. test_codec.py runs once per implementation,
and a leak test drives the C functions 200k times.
"""

import os
import resource
import subprocess
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esrt.mapping import FieldValueError, ProgramCodec, speedups
from esrt.mapping.model import analyse_picture, json_type, numeric_length

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

needs_c = pytest.mark.skipif("c" not in speedups.AVAILABLE,
                             reason="esrt._codec not built (run pip install -e .)")


def both(items):
    program = {"program": "P", "parameters": items}
    return ProgramCodec(program, "c"), ProgramCodec(program, "python")


def exact(value):
    """A comparable form that tells 1 from 1.0 from Decimal('1.00')."""
    if isinstance(value, dict):
        return {key: exact(element) for key, element in value.items()}
    if isinstance(value, list):
        return [exact(element) for element in value]
    return type(value).__name__, repr(value)


def outcome(call):
    try:
        return "ok", exact(call())
    except FieldValueError as exc:
        return "FieldValueError", exc.code, exc.field, str(exc)
    except Exception as exc:  # noqa: BLE001 - any other error must be the same one too
        return type(exc).__name__, str(exc)


# --- field definitions -------------------------------------------------------------------

def elementary(name, pic, usage, sign="trailing", separate=False):
    """A mapping item as esrt.mapping.parser writes it."""
    item = {"name": name, "level": 1, "pic": pic, "usage": usage, "offset": 0,
            "direction": "io"}
    if pic is None:
        item.update(length=numeric_length(usage, 0, True, False), type="number")
        return item
    info = analyse_picture(pic)
    if info["kind"] == "string":
        item.update(length=info["length"], type="string")
        return item
    item.update(digits=info["digits"], scale=info["scale"], signed=info["signed"],
                type=json_type(usage, info["scale"]))
    if usage == "display" and info["signed"]:
        item.update(sign=sign, sign_separate=separate)
    item["length"] = numeric_length(usage, info["digits"], info["signed"],
                                    item.get("sign_separate", False))
    return item


@st.composite
def numeric_items(draw):
    usage = draw(st.sampled_from(["display", "binary", "comp-5", "comp-3"]))
    digits = draw(st.integers(1, 18 if usage in ("binary", "comp-5") else 38))
    shape = draw(st.sampled_from(["int", "v", "p_right", "p_left"]))
    if shape == "int":
        pic = "9(%d)" % digits
    elif shape == "v":
        scale = draw(st.integers(0, digits))
        pic = ("9(%d)" % (digits - scale) if digits > scale else "") + \
            ("V9(%d)" % scale if scale else "")
    elif shape == "p_right":
        pic = "9(%d)P(%d)" % (digits, draw(st.integers(1, 4)))
    else:
        pic = "P(%d)9(%d)" % (draw(st.integers(1, 4)), digits)
    signed = draw(st.booleans())
    return elementary("N", ("S" if signed else "") + pic, usage,
                      sign=draw(st.sampled_from(["leading", "trailing"])),
                      separate=draw(st.booleans()))


items = st.one_of(numeric_items(),
                  st.integers(1, 40).map(lambda n: elementary("N", "X(%d)" % n, "display")),
                  st.sampled_from(["comp-1", "comp-2"]).map(
                      lambda usage: elementary("N", None, usage)))


def values_for(item):
    """Values near and beyond what the field holds, and values of the wrong type."""
    bound = 10 ** item.get("digits", 10)
    numbers = st.one_of(
        st.integers(-bound, bound), st.integers(-bound * 1000, bound * 1000),
        st.integers(-2 ** 70, 2 ** 70),
        st.decimals(allow_nan=False, allow_infinity=False, places=max(item.get("scale", 2), 0)),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.floats(allow_nan=False, allow_infinity=False), st.floats())
    others = st.one_of(st.text(max_size=45), st.booleans(), st.none(),
                       st.lists(st.integers(), max_size=2), st.just({"a": 1}))
    return st.one_of(numbers, others) if item["type"] != "string" else \
        st.one_of(st.text(max_size=45), st.text(max_size=3).map(lambda s: s + "\ud800"),
                  numbers, others)


# --- properties --------------------------------------------------------------------------

@needs_c
@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_both_store_the_same_bytes_or_raise_the_same_error(data):
    item = data.draw(items)
    value = data.draw(values_for(item))
    native, twin = both([item])
    got = []
    for codec in (native, twin):
        buffers = codec.new_buffers()
        result = outcome(lambda: codec.load_inputs(buffers, {"N": value}))  # noqa: B023 - called here
        got.append((result, bytes(buffers[0]) if result[0] == "ok" else None))
    assert got[0] == got[1]


@needs_c
@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_both_read_the_same_objects_from_any_bytes(data):
    item = data.draw(items)
    raw = data.draw(st.one_of(
        st.binary(min_size=item["length"], max_size=item["length"]),
        st.text("0123456789pqrstuvwxy +-\0", min_size=item["length"],
                max_size=item["length"]).map(lambda text: text.encode("ascii"))))
    native, twin = both([item])
    results = []
    for codec in (native, twin):
        buffers = codec.new_buffers()
        buffers[0][:] = raw
        results.append(outcome(lambda: codec.dump_outputs(buffers)))  # noqa: B023 - called here
    assert results[0] == results[1]


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.lists(items, min_size=1, max_size=5), st.integers(0, 7), st.data())
def test_both_agree_inside_groups_and_occurs(leaves, occurs, data):
    offset, fields = 0, []
    for number, item in enumerate(leaves):
        fields.append(dict(item, name="F%d" % number, level=5, offset=offset))
        offset += item["length"]
    group = {"name": "G", "level": 1, "usage": "group", "offset": 0, "length": offset,
             "fields": fields, "direction": "io", "type": "object"}
    if occurs:
        group["occurs"] = occurs
    native, twin = both([group])
    element = {field["name"]: data.draw(values_for(field)) for field in fields}
    value = [element] * occurs if occurs else element
    raw = data.draw(st.binary(min_size=offset * (occurs or 1), max_size=offset * (occurs or 1)))
    results = []
    for codec in (native, twin):
        buffers = codec.new_buffers()
        stored = outcome(lambda: codec.load_inputs(buffers, {"G": value}))  # noqa: B023 - called here
        image = bytes(buffers[0]) if stored[0] == "ok" else None
        buffers[0][:] = raw
        results.append((stored, image,
                        outcome(lambda: codec.dump_outputs(buffers))))  # noqa: B023 - called here
    assert results[0] == results[1]


def test_decimal_outputs_keep_exactly_scale_places_in_both():
    item = elementary("N", "S9(5)V9(3)", "comp-3")
    for name in speedups.AVAILABLE:
        codec = ProgramCodec({"program": "P", "parameters": [item]}, name)
        buffers = codec.new_buffers()
        codec.load_inputs(buffers, {"N": 12})
        assert repr(codec.dump_outputs(buffers)["N"]) == "Decimal('12.000')", name


# --- selection ---------------------------------------------------------------------------

def test_environment_variable_forces_the_twin():
    assert speedups.forced_pure_python({"ESRT_PUREPYTHON": "1"})
    assert not speedups.forced_pure_python({"ESRT_PUREPYTHON": "0"})
    assert not speedups.forced_pure_python({})
    with pytest.raises(ValueError, match="use 'c' or 'python'"):
        speedups.implementation("rust")


@pytest.mark.parametrize("forced", ["1", "0"])
def test_the_whole_codec_suite_passes_on_each_implementation(forced):
    environ = dict(os.environ, ESRT_PUREPYTHON=forced, PYTHONPATH=ROOT)
    expected = "python" if forced == "1" or "c" not in speedups.AVAILABLE else "c"
    probe = subprocess.run(
        [sys.executable, "-c", "from esrt.mapping import ProgramCodec\n"
         "print(ProgramCodec({'program': 'P', 'parameters': []}).implementation)"],
        env=environ, cwd=ROOT, capture_output=True, text=True)
    assert probe.stdout.strip() == expected, probe.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         os.path.join(HERE, "test_codec.py")],
        env=environ, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


# --- leaks -------------------------------------------------------------------------------

@needs_c
def test_c_functions_do_not_leak():
    from esrt import _codec as c
    from esrt.mapping._pycodec import checked_encoder
    checked = checked_encoder(elementary("N", "S9(3)", "display"))[0]
    buffer = bytearray(b"12345678901234567890")
    packed = bytearray(b"\x12\x34\x5d")

    def rounds(count):
        for number in range(count):
            c.decode_string(20, buffer, 0)
            c.decode_display(20, True, 0, 2, buffer, 0)      # Decimal, beyond 64 bits
            c.decode_binary(8, True, False, 0, buffer, 0)
            c.decode_packed(3, 1, packed, 0)
            c.encode_string(10, checked, buffer, 0, "h\u00e9llo", "N")
            c.encode_display(3, 3, 0, True, 0, checked, buffer, 0, -number % 999, "N")
            c.encode_packed(3, 5, 0, True, checked, packed, 0, number % 99999, "N")
            c.encode_binary(4, 9, 0, True, True, checked, buffer, 0, -number, "N")
            c.encode_float(8, checked, buffer, 0, number * 0.5, "N")
            c.encode_float(4, checked, buffer, 8, number, "N")
            c.decode_float(8, buffer, 0)
            c.decode_float(4, buffer, 8)
            if number % 10 == 0:  # the fallback path and its error
                try:
                    c.encode_display(3, 3, 0, True, 0, checked, buffer, 0, 5000, "N")
                except FieldValueError:
                    pass

    rounds(2000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        rounds(1000)
        before = tracemalloc.get_traced_memory()[0]
        rounds(200000)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    # A leaked object per call would be megabytes here; the slack covers interpreter caches.
    assert growth < 64 * 1024, growth
    assert rss_growth_kib < 8 * 1024, rss_growth_kib


# --- speed (printed, never asserted) -----------------------------------------------------

@needs_c
def test_benchmark_prints_the_cblapp01_ratio(capsys):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import bench_codec
    finally:
        sys.path.pop(0)
    program = bench_codec.cblapp01_program()
    outputs = []
    for name in ("c", "python"):
        codec = bench_codec.ProgramCodec(program, name)
        buffers = codec.new_buffers()
        codec.load_inputs(buffers, bench_codec.REQUEST)
        outputs.append(exact(codec.dump_outputs(buffers)))
    assert outputs[0] == outputs[1] == exact(bench_codec.REQUEST)
    lines = bench_codec.report(bench_codec.measure(20000))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert lines[0].startswith("CBLAPP01 dump_outputs:")
