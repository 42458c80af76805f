"""Record layouts from copybooks: one 01 record of a copybook as a mapping item and a codec.

The file tools (:mod:`esrt.isam.files`) describe a file's records with the copybook a COBOL
program uses for its FD. This module reuses the LINKAGE parser (:mod:`esrt.mapping.parser`) on
a copybook that holds data description entries only, so offsets, sizes and conversions are
exactly those of service parameters.
"""

import os
import re

from esrt.mapping import parser, source
from esrt.mapping.codec import ProgramCodec
from esrt.mapping.model import MappingError


def parse_record(copybook_path, copy_dirs=(), record=None):
    """Return the mapping item (dict) of the 01 record ``record`` (default: the first one)
    described in ``copybook_path``; COPY statements inside are expanded from its directory
    and ``copy_dirs``. Raises MappingError naming the file and line of what is wrong."""
    path = os.fspath(copybook_path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise MappingError("%s: cannot read the copybook (%s); check the --layout path"
                           % (path, exc.strerror)) from None
    first = source.FORMAT_DIRECTIVE.search(text)
    if first:
        free = (first.group(1) or first.group(2)).upper() == "FREE"
    else:
        free = any(_starts_before_area_a(line) for line in text.splitlines())
    tokens = source.tokenize(path, text, free)
    tokens = source.expand_copies(tokens, os.path.dirname(path) or ".", tuple(copy_dirs), free)
    records = [entry for entry in parser._build_tree(parser._entries(tokens))
               if entry.level == 1 and entry.name]
    if not records:
        raise MappingError("%s: no named 01 record found; a layout copybook must describe "
                           "the record, e.g. '01 CUSTOMER-REC.' with its fields" % path)
    chosen = records[0]
    if record is not None:
        matches = [entry for entry in records if entry.name.upper() == record.upper()]
        if not matches:
            raise MappingError("%s: no 01 record %s; the records are %s"
                               % (path, record, ", ".join(e.name for e in records)))
        chosen = matches[0]
    item, _ = parser._layout(chosen, None, None, False, 0)
    item["direction"] = "io"
    return parser._ordered(item)


def find_field(item, name):
    """The field ``name`` (case-insensitive) anywhere in record ``item`` as (offset, length),
    offsets from the record start. Raises MappingError when it is missing or inside OCCURS
    (a key cannot be a table element)."""
    wanted = name.upper()

    def walk(node, in_table):
        if node["name"] and node["name"].upper() == wanted:
            return node, in_table
        for child in node.get("fields") or ():
            found = walk(child, in_table or bool(node.get("occurs")))
            if found:
                return found
        return None

    found = walk(item, False)
    if found is None:
        raise MappingError("record %s has no field %s; use a field name of the layout "
                           "copybook" % (item["name"], name))
    node, in_table = found
    if in_table or node.get("occurs"):
        raise MappingError("field %s is part of an OCCURS table and cannot be a key; "
                           "choose a field outside any OCCURS" % name)
    return node["offset"], node["length"]


def _starts_before_area_a(line):
    """True for a code line written free-form: it starts before column 8 and has no
    sequence number (hand-written copybooks often start in column 1)."""
    line = line.expandtabs(8)
    stripped = line.lstrip()
    if not stripped or stripped.startswith("*"):
        return False
    if len(line) - len(stripped) >= 7 or re.match(r"\d{6}", line):
        return False
    return True


class RecordCodec:
    """Converts one record between bytes and a JSON object keyed by COBOL field names."""

    def __init__(self, item):
        self.item = item
        self.name = item["name"]
        self.length = item["length"]
        self._codec = ProgramCodec({"program": self.name, "parameters": [item]})

    def encode(self, value):
        """Record bytes for a JSON object (missing fields keep their initial value: spaces
        or zeros). Raises esrt.mapping.codec.FieldValueError naming the field."""
        buffers = self._codec.new_buffers()
        self._codec.load_inputs(buffers, {self.name: value})
        return bytes(buffers[0])

    def decode(self, data):
        """The JSON object of record bytes (short records are padded with spaces)."""
        data = bytes(data[:self.length]).ljust(self.length, b" ")
        return self._codec.dump_outputs([bytearray(data)])[self.name]
