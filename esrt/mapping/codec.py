"""Convert JSON values to and from the bytes of COBOL LINKAGE parameters (the per-request path).

:class:`ProgramCodec` compiles one program's mapping (see :mod:`esrt.mapping.parser` for
the offset rule) into per-field reader/writer functions once (C from native/_codec.c or
the pure-Python twin, as :mod:`esrt.mapping.speedups` selects); a request then costs one
slice copy per parameter to reset it plus one conversion per field sent or returned.
:meth:`ProgramCodec.load_json` and :meth:`ProgramCodec.dump_json` go further: with the C
codec they take the request body and write the reply body in one C call each
(native/_callpath*.c), with no Python object per field; their twin is
:mod:`esrt.mapping._pycallpath`.

Representations, as GnuCOBOL 3.1.2 writes them on ASCII machines:

* PIC X/A: UTF-8 text padded with spaces. Decoding cuts at the first NUL (C functions such
  as gethostname leave NUL padding), replaces invalid UTF-8 and right-trims spaces.
* DISPLAY numeric: ASCII digits. An embedded sign (trailing by default, or leading) turns
  the sign digit of a negative value into 0x70-0x79 ('p'..'y'); positive values keep the
  plain digit. SEPARATE signs are '+' or '-'.
* BINARY/COMP/COMP-4: big-endian; COMP-5: little-endian; two's complement when signed.
* COMP-3: packed nibbles, sign nibble C (+), D (-), F (unsigned); C/A/E/F read as positive,
  D/B as negative.
* COMP-1/COMP-2: native (little-endian) IEEE single/double.

Bytes that no COBOL MOVE would produce (a field the program never set) never raise on
output. DISPLAY digits take the low nibble of each byte, as GnuCOBOL's arithmetic does (so
spaces read as 0); a sign byte that is neither a digit nor 'p'..'y' counts as a positive 0
digit. Packed nibbles above 9 keep their nibble value. A float that is NaN or infinite
decodes as None (JSON has no such numbers).

Numbers come in as int or decimal.Decimal (float is accepted and converted through its
repr); integers (scale <= 0) go out as int, scaled numbers as Decimal with exactly
``scale`` decimal places, COMP-1/COMP-2 as float. Paths in error messages use the JSON
shape: ``LK-GROUP.ITEMS[2].AMOUNT`` with 0-based array indexes.
"""

from functools import partial

from esrt import native
from esrt.mapping import _pycallpath, speedups
from esrt.mapping._pycodec import (FieldValueError, _label, _type_name, _wrong_type,
                                   checked_encoder, field_access)

__all__ = ["FieldValueError", "ProgramCodec"]

# The whole-request path (native/_callpath.c); it goes with the C field codec, so
# ESRT_PUREPYTHON=1 or ProgramCodec(..., "python") gives the twin for both.
_callpath = native.built("_callpath")


def _leaf_access(item, impl):
    """(read(buffer, at), write(buffer, at, value, path), initial image) of one field."""
    checked, initial = checked_encoder(item)
    kind, decode_spec, encode_spec = field_access(item)
    read = partial(getattr(impl, "decode_" + kind), *decode_spec)
    write = partial(getattr(impl, "encode_" + kind), *encode_spec, checked)
    return read, write, initial


# --- structure ---------------------------------------------------------------------------

class _Node:
    """One compiled item: where it lives and how to convert one occurrence."""

    __slots__ = ("item", "name", "offset", "length", "occurs", "children", "by_name",
                 "read_leaf", "write_leaf", "initial", "child_base")

    def __init__(self, item, impl):
        self.item = item
        self.name = item["name"]
        self.offset = item["offset"]
        self.length = item["length"]
        self.occurs = item.get("occurs")
        if item["usage"] == "group":
            self.children = [_Node(field, impl) for field in item["fields"]]
            self.by_name = {child.name: child for child in self.children}
            self.by_name.update({child.name.upper(): child for child in self.children
                                 if child.name.upper() not in self.by_name})
            self.read_leaf = self.write_leaf = None
            # Children of an OCCURS group count from the element's start; others share
            # their parent's frame (see the offset rule in esrt.mapping.parser).
            self.child_base = 0 if self.occurs else -self.offset
            image = bytearray(b" " * self.length)
            for child in self.children:
                child.fill(image, self.child_base)
            self.initial = bytes(image)
        else:
            self.children = None
            self.child_base = 0
            self.read_leaf, self.write_leaf, self.initial = _leaf_access(item, impl)

    def fill(self, buffer, frame):
        """Write the initial image of every occurrence into ``buffer``."""
        start = frame + self.offset
        for index in range(self.occurs or 1):
            at = start + index * self.length
            buffer[at:at + self.length] = self.initial

    def write(self, buffer, frame, value, path):
        """Store a JSON value (array when OCCURS) at this item's place in the frame."""
        start = frame + self.offset
        if self.occurs:
            if not isinstance(value, list):
                raise _wrong_type(path, self.item, value, "an array (OCCURS %d)" % self.occurs)
            if len(value) > self.occurs:
                raise FieldValueError("too_long", path, "%s: %d elements given, the field "
                                      "OCCURS %d TIMES" % (_label(path, self.item), len(value),
                                                           self.occurs))
            for index, element in enumerate(value):
                self._write_one(buffer, start + index * self.length, element,
                                "%s[%d]" % (path, index))
        else:
            self._write_one(buffer, start, value, path)

    def _write_one(self, buffer, at, value, path):
        if self.children is None:
            self.write_leaf(buffer, at, value, path)
            return
        if not isinstance(value, dict):
            raise _wrong_type(path, self.item, value, "an object (group)")
        for key, element in value.items():
            child = self.by_name.get(key) or self.by_name.get(str(key).upper())
            if child is None:
                raise FieldValueError("unknown_parameter", "%s.%s" % (path, key),
                                      "%s: group %s has no field %r; its fields are %s" % (
                                          path, self.name, key,
                                          ", ".join(c.name for c in self.children)))
            child.write(buffer, at + self.child_base, element, "%s.%s" % (path, child.name))

    def read(self, buffer, frame):
        """Return this item's JSON value (array when OCCURS) from the frame."""
        start = frame + self.offset
        if self.occurs:
            return [self._read_one(buffer, start + index * self.length)
                    for index in range(self.occurs)]
        return self._read_one(buffer, start)

    def _read_one(self, buffer, at):
        if self.children is None:
            return self.read_leaf(buffer, at)
        frame = at + self.child_base
        return {child.name: child.read(buffer, frame) for child in self.children}


class ProgramCodec:
    """Converts one program's parameters between JSON values and LINKAGE buffers.

    ``program`` is one entry of a mapping document's "programs" list (validated by
    :func:`esrt.mapping.parser.load_mapping`).
    """

    def __init__(self, program, implementation=None):
        """`implementation` ("c" or "python") overrides esrt.mapping.speedups' choice."""
        self.program = program
        self.parameters = program["parameters"]
        # The C or Python field functions are chosen once here, never per call.
        chosen = speedups.implementation(implementation) if implementation else speedups.selected
        self.implementation = chosen.name
        self._nodes = [_Node(param, chosen) for param in self.parameters]
        self._by_name = {node.name: (index, node) for index, node in enumerate(self._nodes)}
        self._by_name.update({node.name.upper(): (index, node)
                              for index, node in enumerate(self._nodes)
                              if node.name.upper() not in self._by_name})
        self._images = []
        for node in self._nodes:
            image = bytearray(node.length * (node.occurs or 1))
            node.fill(image, -node.offset)
            self._images.append(bytes(image))
        self._inputs = {param["name"] for param in self.parameters
                        if param.get("direction", "io") in ("in", "io")}
        # A parameter starts its buffer, so a plain elementary one is read with one call.
        self._outputs = [(param["name"], index, node,
                          node.read_leaf if node.children is None and not node.occurs else None)
                         for index, (param, node) in enumerate(zip(self.parameters, self._nodes))
                         if param.get("direction", "io") in ("out", "io")]
        spec = _pycallpath.plan_spec(self) if self.implementation == "c" and _callpath else None
        self._plan = _callpath.Plan(*spec) if spec else None
        self._twin = _pycallpath.Plan(self)
        self.callpath = "c" if self._plan is not None else "python"

    def new_buffers(self):
        """One COBOL-initialised bytearray per USING parameter, in USING order."""
        return [bytearray(image) for image in self._images]

    def load_inputs(self, buffers, values):
        """Reset every buffer to its initial image, then store the in/io ``values``.

        Raises FieldValueError; the buffers are then in an unspecified state and must be
        loaded again before a call.
        """
        for buffer, image in zip(buffers, self._images):
            buffer[:] = image
        if not isinstance(values, dict):
            raise FieldValueError("wrong_type", "", "the request must be a JSON object whose "
                                  "keys are parameter names, got %s" % _type_name(values))
        for key, value in values.items():
            found = self._by_name.get(key) or self._by_name.get(str(key).upper())
            if found is None:
                raise FieldValueError("unknown_parameter", str(key), "%s is not a parameter "
                                      "of %s; its parameters are %s" % (
                                          key, self.program.get("program", "the program"),
                                          ", ".join(n.name for n in self._nodes)))
            index, node = found
            if node.name not in self._inputs:
                raise FieldValueError("not_input", node.name, "%s is an output parameter "
                                      "(direction out) and cannot be sent; remove it from "
                                      "the request" % node.name)
            node.write(buffers[index], -node.offset, value, node.name)

    def dump_outputs(self, buffers):
        """The out and io parameters as JSON-ready values (dict in USING order)."""
        return {name: leaf(buffers[index], 0) if leaf else node.read(buffers[index], -node.offset)
                for name, index, node, leaf in self._outputs}

    def load_json(self, buffers, body):
        """Reset the buffers, then store the request ``body`` (JSON object bytes) in them.

        Returns True when the buffers hold the request. False means it was not handled
        here: run the ordinary path (parse the body, then :meth:`load_inputs`), which
        starts again from reset buffers and raises the error that says what is wrong.
        The C path declines anything unusual; the twin declines only invalid requests.
        """
        if self._plan is not None and self._plan.load(buffers, body):
            return True
        return self._twin.load(buffers, body)

    def dump_json(self, buffers):
        """The out and io parameters as compact JSON bytes, identical to
        ``jsonio.dumps(self.dump_outputs(buffers))``."""
        if self._plan is not None:
            body = self._plan.dump(buffers)
            if body is not None:
                return body
        return self._twin.dump(buffers)
