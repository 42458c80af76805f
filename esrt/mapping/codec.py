"""Convert JSON values to and from the bytes of COBOL LINKAGE parameters (the per-request path).

:class:`ProgramCodec` compiles one program's mapping (see :mod:`esrt.mapping.parser` for
the offset rule) into per-field encoder/decoder closures once; a request then costs one
slice copy per parameter to reset it plus one conversion per field sent or returned.

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

import decimal
import math
import struct
from decimal import Decimal

_EXACT = decimal.Context(prec=100, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


class FieldValueError(ValueError):
    """A request value that does not fit its COBOL field.

    ``code`` is one of unknown_parameter, not_input, wrong_type, too_long, too_precise,
    out_of_range; ``field`` is the dotted JSON path of the field.
    """

    def __init__(self, code, field, message):
        super().__init__(message)
        self.code = code
        self.field = field


def _label(path, item):
    if item.get("pic"):
        return "%s (PIC %s)" % (path, item["pic"])
    if item["usage"] in ("comp-1", "comp-2"):
        return "%s (%s)" % (path, item["usage"].upper())
    return path


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong_type(path, item, value, wanted):
    return FieldValueError("wrong_type", path, "%s: expected %s, got %s" % (
        _label(path, item), wanted, _type_name(value)))


# --- numbers -----------------------------------------------------------------------------

def _scaled_integer(value, item, path):
    """Return the stored integer N for ``value`` (value = N * 10**-scale), checking range."""
    digits, scale, signed = item["digits"], item["scale"], item["signed"]
    if type(value) is int:
        if scale >= 0:
            number = value * 10 ** scale
        else:
            unit = 10 ** -scale
            if value % unit:
                raise FieldValueError("too_precise", path, "%s: %s is not a multiple of %d, "
                                      "the field stores hundreds/thousands only (P scaling)"
                                      % (_label(path, item), value, unit))
            number = value // unit
    elif isinstance(value, (Decimal, float)) and not isinstance(value, bool):
        if isinstance(value, float):
            value = Decimal(repr(value))
        number = _decimal_scaled(value, item, path)
    else:
        raise _wrong_type(path, item, value, "a number")
    if number < 0 and not signed:
        raise FieldValueError("out_of_range", path, "%s: %s is negative, the field is unsigned; "
                              "send a value of 0 or more" % (_label(path, item), value))
    if abs(number) >= 10 ** digits:
        raise _too_big(value, item, path)
    return number


def _decimal_scaled(value, item, path):
    if not value.is_finite():
        raise _wrong_type(path, item, value, "a finite number")
    sign, coefficient, exponent = value.as_tuple()
    coefficient = list(coefficient)
    while len(coefficient) > 1 and coefficient[-1] == 0:
        coefficient.pop()
        exponent += 1
    if coefficient == [0]:
        return 0
    exponent += item["scale"]
    # Reject huge or very precise values from their shape before building big integers.
    top = len(coefficient) - 1 + exponent
    if top >= item["digits"]:
        raise _too_big(value, item, path)
    if exponent < 0:
        raise FieldValueError("too_precise", path, "%s: %s has more decimal places than the "
                              "field holds (%d)" % (_label(path, item), value,
                                                    max(item["scale"], 0)))
    number = int("".join(map(str, coefficient))) * 10 ** exponent
    return -number if sign else number


def _too_big(value, item, path):
    holds = item["digits"] - item["scale"]
    integer_part = abs(Decimal(value)).to_integral_value(decimal.ROUND_DOWN, _EXACT)
    count = integer_part.adjusted() + 1 if integer_part else 0
    if holds > 0 and count > holds:
        text = "%s has %d integer digits, the field holds %d" % (value, count, holds)
    else:
        largest = Decimal(10 ** item["digits"] - 1).scaleb(-item["scale"], _EXACT)
        text = "%s is out of range, the field holds at most %s" % (value, largest)
    return FieldValueError("out_of_range", path, "%s: %s" % (_label(path, item), text))


def _from_scaled(number, scale):
    if scale <= 0:
        return number * 10 ** -scale
    return Decimal(number).scaleb(-scale, _EXACT)


def _display_digits(data):
    if data.isdigit():
        return int(data)
    number = 0
    for byte in data:
        number = number * 10 + (byte & 0x0F)
    return number


def _sign_digit(byte):
    """Return (negative, digit) for an embedded sign byte."""
    if 0x70 <= byte <= 0x79:
        return True, byte - 0x70
    if 0x30 <= byte <= 0x39:
        return False, byte - 0x30
    return False, 0


def _display_codec(item):
    digits, scale, signed = item["digits"], item["scale"], item["signed"]
    leading = item.get("sign") == "leading"
    separate = item.get("sign_separate", False)
    length = item["length"]

    def encode(value, path):
        number = _scaled_integer(value, item, path)
        text = b"%0*d" % (digits, abs(number))
        if not signed:
            return text
        if separate:
            mark = b"-" if number < 0 else b"+"
            return mark + text if leading else text + mark
        if number < 0:
            if leading:
                return bytes((text[0] + 0x40,)) + text[1:]
            return text[:-1] + bytes((text[-1] + 0x40,))
        return text

    def decode(data):
        if not signed:
            return _from_scaled(_display_digits(data), scale)
        if separate:
            if leading:
                negative, number = data[0] == 0x2D, _display_digits(data[1:])
            else:
                negative, number = data[-1] == 0x2D, _display_digits(data[:-1])
        elif leading:
            negative, first = _sign_digit(data[0])
            number = first * 10 ** (length - 1) + _display_digits(data[1:]) if length > 1 \
                else first
        else:
            negative, last = _sign_digit(data[-1])
            number = _display_digits(data[:-1]) * 10 + last if length > 1 else last
        return _from_scaled(-number if negative else number, scale)

    return encode, decode, encode(0, "")


def _binary_codec(item, order):
    scale, signed, length = item["scale"], item["signed"], item["length"]

    def encode(value, path):
        return _scaled_integer(value, item, path).to_bytes(length, order, signed=signed)

    def decode(data):
        return _from_scaled(int.from_bytes(data, order, signed=signed), scale)

    return encode, decode, bytes(length)


def _packed_codec(item):
    scale, signed, length = item["scale"], item["signed"], item["length"]
    nibbles = length * 2 - 1

    def encode(value, path):
        number = _scaled_integer(value, item, path)
        sign = ("d" if number < 0 else "c") if signed else "f"
        return bytes.fromhex("%0*d%s" % (nibbles, abs(number), sign))

    def decode(data):
        text = data.hex()
        body = text[:-1]
        number = int(body) if body.isdigit() else _nibble_value(body)
        if text[-1] in "db":
            number = -number
        return _from_scaled(number, scale)

    return encode, decode, encode(0, "")


def _nibble_value(body):
    number = 0
    for char in body:
        number = number * 10 + int(char, 16)
    return number


def _float_codec(item):
    fmt = struct.Struct("=f" if item["usage"] == "comp-1" else "=d")

    def encode(value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise _wrong_type(path, item, value, "a number")
        try:
            number = float(value)
            if not math.isfinite(number):
                raise OverflowError
            return fmt.pack(number)
        except OverflowError:
            raise FieldValueError("out_of_range", path, "%s: %s does not fit a %s float"
                                  % (_label(path, item), value, item["usage"].upper())) from None

    def decode(data):
        number = fmt.unpack(data)[0]
        return number if math.isfinite(number) else None

    return encode, decode, bytes(fmt.size)


def _string_codec(item):
    length = item["length"]

    def encode(value, path):
        if not isinstance(value, str):
            raise _wrong_type(path, item, value, "a string")
        data = value.encode("utf-8")
        if len(data) > length:
            raise FieldValueError("too_long", path, "%s: the value is %d bytes in UTF-8, the "
                                  "field holds %d; shorten it" % (_label(path, item), len(data),
                                                                  length))
        return data.ljust(length, b" ")

    def decode(data):
        end = data.find(b"\0")
        if end >= 0:
            data = data[:end]
        return data.decode("utf-8", "replace").rstrip(" ")

    return encode, decode, b" " * length


def _leaf_codec(item):
    usage = item["usage"]
    if item["type"] == "string":
        return _string_codec(item)
    if usage == "display":
        return _display_codec(item)
    if usage == "binary":
        return _binary_codec(item, "big")
    if usage == "comp-5":
        return _binary_codec(item, "little")
    if usage == "comp-3":
        return _packed_codec(item)
    return _float_codec(item)


# --- structure ---------------------------------------------------------------------------

class _Node:
    """One compiled item: where it lives and how to convert one occurrence."""

    __slots__ = ("item", "name", "offset", "length", "occurs", "children", "by_name",
                 "encode", "decode", "initial", "child_base")

    def __init__(self, item):
        self.item = item
        self.name = item["name"]
        self.offset = item["offset"]
        self.length = item["length"]
        self.occurs = item.get("occurs")
        if item["usage"] == "group":
            self.children = [_Node(field) for field in item["fields"]]
            self.by_name = {child.name: child for child in self.children}
            self.by_name.update({child.name.upper(): child for child in self.children
                                 if child.name.upper() not in self.by_name})
            self.encode = self.decode = None
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
            self.encode, self.decode, self.initial = _leaf_codec(item)

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
            buffer[at:at + self.length] = self.encode(value, path)
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
            return self.decode(bytes(buffer[at:at + self.length]))
        frame = at + self.child_base
        return {child.name: child.read(buffer, frame) for child in self.children}


class ProgramCodec:
    """Converts one program's parameters between JSON values and LINKAGE buffers.

    ``program`` is one entry of a mapping document's "programs" list (validated by
    :func:`esrt.mapping.parser.load_mapping`).
    """

    def __init__(self, program):
        self.program = program
        self.parameters = program["parameters"]
        self._nodes = [_Node(param) for param in self.parameters]
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
        self._outputs = [(param["name"], index, self._nodes[index])
                         for index, param in enumerate(self.parameters)
                         if param.get("direction", "io") in ("out", "io")]

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
        return {name: node.read(buffers[index], -node.offset)
                for name, index, node in self._outputs}
