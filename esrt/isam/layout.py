"""The description of one ESFH file: organization, record length, keys, record layout.

ESFH stores no key layout of its own (a COBOL program brings it in its FCD at every OPEN), so
the file tools keep it in a small JSON sidecar next to the file, ``PATH.esrt.json``, written by
``esrt file create``. For files created by COBOL programs the same description comes from
command options (a copybook and field names, or offsets and lengths).

The stored format this description must match (native/esfh.c): the primary database PATH maps
the prime key bytes to the record followed by one 4-byte big-endian sequence number per
alternate key WITH DUPLICATES (in key order); PATH.N maps alternate key N's bytes (plus that
sequence number for keys with duplicates) to the prime key. A RELATIVE file's value is a slot
as libcob keeps it: the whole record area (the maximum record length), followed by the
record's 4-byte big-endian length when the record is shorter; a value no longer than the
maximum is a record of its own length.
"""

import json
import os
import re
from pathlib import Path

SIDECAR_SUFFIX = ".esrt.json"
SEQ_LEN = 4
REL_LEN = 4
MAX_KEY_LENGTH = 1024
MAX_KEYS = 16
ORGANIZATIONS = ("indexed", "relative")


class LayoutError(ValueError):
    """A file description is missing, contradictory or does not fit the record."""


class Key:
    """One key: ``offset`` and ``length`` in the record; ``dups`` for alternate keys WITH
    DUPLICATES; ``name`` is the COBOL field name or "OFFSET+LENGTH"."""

    def __init__(self, name, offset, length, dups=False):
        self.name, self.offset, self.length, self.dups = name, int(offset), int(length), dups

    def extract(self, record):
        """The key bytes of a record."""
        return bytes(record[self.offset:self.offset + self.length])

    def to_json(self):
        return {"name": self.name, "offset": self.offset, "length": self.length,
                "dups": self.dups}

    def __repr__(self):
        return "Key(%s @%d+%d%s)" % (self.name, self.offset, self.length,
                                     " dups" if self.dups else "")


class FileLayout:
    """What the tools know about one file. ``keys`` is empty when the keys are unknown (enough
    for reading); ``item`` is the copybook's record item (esrt.mapping.record) or None."""

    def __init__(self, organization="indexed", record_length=None, keys=(), layout=None,
                 copy_dirs=(), record=None, item=None):
        if organization not in ORGANIZATIONS:
            raise LayoutError("organization %r is not known; use indexed or relative"
                              % organization)
        self.organization = organization
        self.keys = list(keys)
        self.layout = str(layout) if layout else None
        self.copy_dirs = [str(d) for d in copy_dirs]
        self.record = record
        self.item = item
        if item is not None and record_length is None:
            record_length = item["length"]
        self.record_length = int(record_length) if record_length is not None else None
        self._codec = None
        self._check()

    def _check(self):
        if self.record_length is not None and self.record_length < 1:
            raise LayoutError("record length %d is not valid; give a positive length"
                              % self.record_length)
        if self.organization == "relative":
            if self.keys:
                raise LayoutError("a RELATIVE file has no record keys; remove --key/--alt-key")
            return
        if len(self.keys) > MAX_KEYS:
            raise LayoutError("%d keys given; ESFH stores at most %d (1 prime + %d alternate)"
                              % (len(self.keys), MAX_KEYS, MAX_KEYS - 1))
        for index, key in enumerate(self.keys):
            what = "prime key" if index == 0 else "alternate key %d" % index
            if key.offset < 0 or key.length < 1 or key.length > MAX_KEY_LENGTH:
                raise LayoutError("%s %s: offset %d length %d is not valid; a key has 1 to %d "
                                  "bytes at offset 0 or more" % (what, key.name, key.offset,
                                                                 key.length, MAX_KEY_LENGTH))
            if self.record_length is not None and key.offset + key.length > self.record_length:
                raise LayoutError("%s %s (offset %d, length %d) ends after the %d-byte record; "
                                  "fix the offset or length" % (what, key.name, key.offset,
                                                                key.length, self.record_length))
        if self.keys and self.keys[0].dups:
            raise LayoutError("the prime key %s cannot have duplicates; remove ':dups'"
                              % self.keys[0].name)

    # --- the stored value -------------------------------------------------------------------

    @property
    def ndups(self):
        """How many 4-byte sequence numbers follow each record in the primary database."""
        return sum(1 for key in self.keys[1:] if key.dups)

    @property
    def prime(self):
        if not self.keys:
            raise LayoutError("the keys of this file are not known; pass --key (and --alt-key) "
                              "or create its description with 'esrt file create --adopt'")
        return self.keys[0]

    @property
    def alternates(self):
        return self.keys[1:]

    def record_of(self, value):
        """The record part of a stored primary value (without sequence numbers, or a RELATIVE
        slot's bytes after the record's length)."""
        if self.keys:
            return bytes(value[:len(value) - SEQ_LEN * self.ndups])
        if self.record_length is not None:
            if self.organization == "relative" and len(value) == self.record_length + REL_LEN:
                length = int.from_bytes(value[self.record_length:], "big")
                return bytes(value[:min(length, self.record_length)])
            return bytes(value[:self.record_length])
        return bytes(value)

    def sequence(self, value, key_index):
        """The sequence number bytes stored for alternate key ``key_index`` (with dups)."""
        slot = sum(1 for key in self.keys[1:key_index] if key.dups)
        start = len(value) - SEQ_LEN * self.ndups + SEQ_LEN * slot
        return bytes(value[start:start + SEQ_LEN])

    # --- records as JSON ----------------------------------------------------------------------

    @property
    def codec(self):
        """A RecordCodec for the copybook layout; LayoutError without a copybook."""
        if self.item is None:
            raise LayoutError("no record layout is known; pass --layout COPYBOOK or use "
                              "--format fixed")
        if self._codec is None:
            from esrt.mapping.record import RecordCodec
            self._codec = RecordCodec(self.item)
        return self._codec

    # --- sidecar -----------------------------------------------------------------------------

    def to_json(self):
        return {"format": 1, "organization": self.organization,
                "record_length": self.record_length,
                "keys": [key.to_json() for key in self.keys],
                "layout": self.layout, "copy_dirs": self.copy_dirs, "record": self.record}

    def save(self, path):
        """Write the sidecar of file ``path`` (atomically)."""
        target = sidecar_path(path)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, target)
        return target

    @classmethod
    def from_json(cls, data, where):
        """A layout from sidecar data; LayoutError naming ``where`` when it is malformed."""
        try:
            keys = [Key(k["name"], k["offset"], k["length"], bool(k.get("dups")))
                    for k in data.get("keys", [])]
            item = None
            if data.get("layout"):
                from esrt.mapping.record import parse_record
                item = parse_record(data["layout"], data.get("copy_dirs") or (),
                                    data.get("record"))
            return cls(data.get("organization", "indexed"), data.get("record_length"), keys,
                       data.get("layout"), data.get("copy_dirs") or (), data.get("record"),
                       item)
        except (KeyError, TypeError, AttributeError) as exc:
            raise LayoutError("%s: malformed file description (%s: %s); recreate it with "
                              "'esrt file create --adopt'" % (where, type(exc).__name__, exc)) \
                from None

    @classmethod
    def load(cls, path):
        """The sidecar of file ``path``, or None when there is none."""
        target = sidecar_path(path)
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LayoutError("%s: not valid JSON (%s); fix it or recreate it with "
                              "'esrt file create --adopt'" % (target, exc)) from None
        return cls.from_json(data, str(target))


def sidecar_path(path):
    """Where the description of file ``path`` lives."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


_RAW_KEY = re.compile(r"(\d+)\+(\d+)")


def parse_key_spec(spec, item=None, allow_dups=True):
    """A Key from "NAME[:dups]" (a field of the copybook ``item``) or "OFFSET+LENGTH[:dups]"."""
    text, _, flag = spec.partition(":")
    if flag and (flag.lower() != "dups" or not allow_dups):
        raise LayoutError("key %r: %r is not understood; write NAME or NAME:dups (only "
                          "alternate keys may have duplicates)" % (spec, flag))
    raw = _RAW_KEY.fullmatch(text)
    if raw:
        return Key(text, int(raw.group(1)), int(raw.group(2)), bool(flag))
    if item is None:
        raise LayoutError("key %r names a field but no --layout copybook is given; pass "
                          "--layout or write the key as OFFSET+LENGTH (e.g. 0+8)" % text)
    from esrt.mapping.record import find_field
    offset, length = find_field(item, text)
    return Key(text.upper(), offset, length, bool(flag))


def layout_from_options(layout=None, key=None, alt_keys=(), record_length=None,
                        key_offset=None, key_length=None, copy_dirs=(), record=None,
                        organization="indexed"):
    """A FileLayout from command options, or None when no option describes the file."""
    if not any((layout, key, alt_keys, record_length, key_offset is not None,
                key_length is not None)):
        return None
    item = None
    if layout:
        from esrt.mapping.record import parse_record
        layout = os.path.abspath(layout)
        item = parse_record(layout, copy_dirs, record)
        if record_length is not None and int(record_length) != item["length"]:
            raise LayoutError("--record-length %s contradicts copybook %s (record %s is %d "
                              "bytes); drop --record-length" % (record_length, layout,
                                                               item["name"], item["length"]))
    keys = []
    if (key_offset is None) != (key_length is None):
        raise LayoutError("--key-offset and --key-length go together; give both")
    if key_offset is not None:
        if key:
            raise LayoutError("give the prime key once: --key or --key-offset/--key-length")
        keys.append(Key("%d+%d" % (key_offset, key_length), key_offset, key_length))
    elif key:
        keys.append(parse_key_spec(key, item, allow_dups=False))
    if alt_keys and not keys:
        raise LayoutError("alternate keys need the prime key too; add --key")
    keys += [parse_key_spec(spec, item) for spec in alt_keys]
    return FileLayout(organization, record_length, keys, layout, copy_dirs, record, item)
