"""esrt.isam.files and esrt.isam.layout on a real Berkeley DB environment (no COBOL here; the
round trips with COBOL programs are in tests/integration/test_isam_cli.py)."""

import io
import os
from decimal import Decimal

import pytest

from esrt.isam.files import (DataEnv, IsamFileError, create_file, env_lock_holders,
                             read_input, recover_environment, write_output)
from esrt.isam.layout import FileLayout, LayoutError, layout_from_options, sidecar_path
from esrt.mapping.model import MappingError
from esrt.mapping.record import parse_record

COPYBOOK = """\
01 ITEM-REC.
   05 ITEM-ID     PIC X(4).
   05 ITEM-GROUP  PIC X(3).
   05 ITEM-PRICE  PIC S9(5)V99 COMP-3.
   05 ITEM-TAGS   OCCURS 2 TIMES.
      10 ITEM-TAG PIC X(2).
"""


@pytest.fixture
def copybook(tmp_path):
    path = tmp_path / "item.cpy"
    path.write_text(COPYBOOK)
    return path


@pytest.fixture
def layout(copybook):
    return layout_from_options(layout=copybook, key="item-id", alt_keys=["ITEM-GROUP:dups"])


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return path


def records(layout, *rows):
    return [("line %d" % n, layout.codec.encode({"ITEM-ID": i, "ITEM-GROUP": g,
                                                  "ITEM-PRICE": Decimal(p)}))
            for n, (i, g, p) in enumerate(rows, 1)]


def test_copybook_layout_and_keys(copybook, layout):
    assert layout.record_length == 4 + 3 + 4 + 4
    assert [(k.name, k.offset, k.length, k.dups) for k in layout.keys] == [
        ("ITEM-ID", 0, 4, False), ("ITEM-GROUP", 4, 3, True)]
    fixed = copybook.with_name("fixed.cpy")
    fixed.write_text("".join("       " + line + "\n" for line in COPYBOOK.splitlines()))
    assert parse_record(fixed) == parse_record(copybook)


@pytest.mark.parametrize("options, message", [
    ({"key": "ITEM-TAG"}, "OCCURS"),
    ({"key": "NOPE"}, "no field NOPE"),
    ({"key": "ITEM-ID:dups"}, "only alternate keys"),
    ({"key": "10+8"}, "ends after the 15-byte record"),
    ({"key": "ITEM-ID", "alt_keys": ["ITEM-GROUP:many"]}, "'many' is not understood"),
    ({"alt_keys": ["ITEM-GROUP"]}, "need the prime key"),
    ({"key_offset": 0}, "go together"),
    ({"record_length": 99}, "contradicts copybook"),
])
def test_bad_layout_options_are_explained(copybook, options, message):
    with pytest.raises((LayoutError, MappingError), match=message):
        layout_from_options(layout=copybook, **options)


def test_raw_keys_without_copybook():
    layout = layout_from_options(record_length=20, key_offset=2, key_length=4,
                                 alt_keys=["10+5:dups"])
    assert (layout.prime.offset, layout.prime.length) == (2, 4)
    assert layout.ndups == 1
    with pytest.raises(LayoutError, match="no --layout copybook"):
        layout_from_options(record_length=20, key="CUST-ID")


def test_stored_value_has_one_sequence_number_per_duplicate_key():
    layout = layout_from_options(record_length=6, key="0+2", alt_keys=["2+2:dups", "4+2",
                                                                         "4+2:dups"])
    value = b"AABBCC" + b"\0\0\0\x05" + b"\0\0\0\x07"
    assert layout.record_of(value) == b"AABBCC"
    assert layout.sequence(value, 1) == b"\0\0\0\x05"
    assert layout.sequence(value, 3) == b"\0\0\0\x07"


def test_relative_slot_holds_a_shorter_record_and_its_length():
    layout = FileLayout("relative", record_length=8)
    assert layout.record_of(b"ABCDEFGH") == b"ABCDEFGH"
    assert layout.record_of(b"ABCdefgh" + b"\0\0\0\x03") == b"ABC"
    assert layout.record_of(b"ABCDE") == b"ABCDE"   # stored before ESFH kept slots


def test_create_load_and_read_back(data, layout):
    with DataEnv(data) as env:
        path = create_file(env, "ITEMS", layout)
        assert FileLayout.load(path).to_json() == layout.to_json()
        handle = env.open_file("ITEMS")
        rows = records(layout, ("B002", "TOY", "1.50"), ("A001", "TOY", "-2.25"),
                       ("C003", "PEN", "0.10"))
        assert handle.load(rows) == 3
        got = [layout.codec.decode(r) for _, r in handle.records()]
        assert [(g["ITEM-ID"], g["ITEM-PRICE"]) for g in got] == [
            ("A001", Decimal("-2.25")), ("B002", Decimal("1.50")), ("C003", Decimal("0.10"))]
        # ESFH's format: duplicates numbered 1, 2 ... in write order, in the index key and in
        # the record's trailer.
        index = dict(handle.dbs[1].items())
        assert index == {b"TOY\0\0\0\x01": b"B002", b"TOY\0\0\0\x02": b"A001",
                         b"PEN\0\0\0\x01": b"C003"}
        assert handle.dbs[0].get(b"A001")[-4:] == b"\0\0\0\x02"
        assert handle.count() == 3
        assert handle.verify() == []
        with pytest.raises(IsamFileError, match="already exists"):
            create_file(env, "ITEMS", layout)


def test_failed_batch_leaves_nothing_of_itself(data, layout):
    with DataEnv(data) as env:
        create_file(env, "ITEMS", layout)
        handle = env.open_file("ITEMS")
        rows = records(layout, ("A001", "X", "1"), ("A002", "X", "1"), ("A003", "X", "1"),
                       ("A001", "Y", "1"))
        with pytest.raises(IsamFileError, match="line 4: prime key ITEM-ID 'A001' already "
                                                "exists.*load again from line 3"):
            handle.load(rows, batch_size=2)
        assert [k for k, _ in handle.records()] == [b"A001", b"A002"]
        assert sorted(handle.dbs[1].keys()) == [b"X  \0\0\0\x01", b"X  \0\0\0\x02"]
        with pytest.raises(IsamFileError, match="record is 3 bytes, the file's records are 15"):
            handle.load([("record 1", b"abc")])


def test_verify_reports_orphans_and_missing_entries(data, layout):
    with DataEnv(data) as env:
        create_file(env, "ITEMS", layout)
        handle = env.open_file("ITEMS")
        handle.load(records(layout, ("A001", "TOY", "1"), ("A002", "TOY", "2")))
        txn = env.env.txn_begin()
        handle.dbs[1].delete(b"TOY\0\0\0\x02", txn=txn)
        handle.dbs[1].put(b"PEN\0\0\0\x01", b"Z999", txn=txn)
        txn.commit()
        problems = handle.verify()
    assert len(problems) == 2
    assert "record 'A002' has no entry for alternate key ITEM-GROUP" in problems[0]
    assert "'Z999'" in problems[1] and "orphan" in problems[1]


def test_formats_round_trip(data, layout, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"ITEM-ID":"A001","ITEM-GROUP":"TOY","ITEM-PRICE":12345.67}\n\n'
                      '{"ITEM-ID":"A002","ITEM-TAGS":[{"ITEM-TAG":"x"},{"ITEM-TAG":"y"}]}\n')
    with DataEnv(data) as env:
        create_file(env, "ITEMS", layout)
        handle = env.open_file("ITEMS")
        assert handle.load(read_input(source, layout)) == 2
        out = io.BytesIO()
        write_output(out, handle.records(), layout, "jsonl")
        fixed = io.BytesIO()
        write_output(fixed, handle.records(), layout, "fixed")
    assert out.getvalue().decode().splitlines()[0] == (
        '{"ITEM-ID":"A001","ITEM-GROUP":"TOY","ITEM-PRICE":12345.67,'
        '"ITEM-TAGS":[{"ITEM-TAG":""},{"ITEM-TAG":""}]}')
    binary = tmp_path / "in.dat"
    binary.write_bytes(fixed.getvalue() + b"xx")
    chunks = read_input(binary, layout, "fixed")
    assert [w for w, _ in [next(chunks), next(chunks)]] == ["record 1", "record 2"]
    with pytest.raises(IsamFileError, match="record 3 is 2 bytes, expected 15"):
        next(chunks)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ITEM-ID":"A001"}\n{"ITEM-NOPE":1}\n')
    with pytest.raises(IsamFileError, match="line 2: .*ITEM-NOPE"):
        list(read_input(bad, layout))


def test_recover_needs_the_environment_to_itself(data, layout):
    env = DataEnv(data)
    try:
        assert env_lock_holders(data) == [os.getpid()]
        with pytest.raises(IsamFileError, match="in use by PIDs %d; stop the region"
                                                % os.getpid()):
            recover_environment(data)
        create_file(env, "ITEMS", layout)
        env.open_file("ITEMS").load(records(layout, ("A001", "TOY", "1")))
    finally:
        env.close()
    assert env_lock_holders(data) == []
    recover_environment(data)
    with DataEnv(data) as env:
        assert env.open_file("ITEMS").count() == 1


def test_missing_things_are_explained(tmp_path, data):
    with pytest.raises(IsamFileError, match="data directory .*nowhere does not exist"):
        DataEnv(tmp_path / "nowhere")
    with DataEnv(data) as env:
        with pytest.raises(IsamFileError, match="ITEMS does not exist; create it"):
            env.open_file("ITEMS")
        with pytest.raises(IsamFileError, match="needs its keys"):
            create_file(env, "ITEMS", layout_from_options(record_length=10))
    assert not sidecar_path(data / "ITEMS").exists()
