"""The pure-Python twin of native/_codec.c: per-field conversions for esrt.mapping.codec.

Pick between this module and the C one through :mod:`esrt.mapping.speedups` only. The
functions below ``# --- twin`` have exactly the signatures of the C functions of the same
names and must return identical objects; the checked encoders above them (``*_codec``)
hold every validation rule and error message and are used by both implementations: the C
encoders call them for anything but the common case, so errors are always these.

Decoders are ``decode_KIND(spec..., buffer, at)``; encoders are
``encode_KIND(spec..., checked, buffer, at, value, path)`` where ``checked(value, path)``
returns the field's bytes or raises :class:`FieldValueError`. :func:`field_access` gives
each field's spec. See :mod:`esrt.mapping.codec` for the byte representations.
"""

import decimal
import math
import struct
from decimal import Decimal

from esrt.cobol import dialect

_EXACT = decimal.Context(prec=100, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_SINGLE, _DOUBLE = struct.Struct("=f"), struct.Struct("=d")


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
    # Counted from the exponent: building the integer part of 2E46913509 overflows Decimal.
    number = Decimal(value)
    count = number.adjusted() + 1 if number and number.adjusted() >= 0 else 0
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


# How the runtime in use reads an embedded sign byte that is not a digit (the C twins read it
# from here too).
DISPLAY_SIGN_BY_NIBBLE = dialect.display_sign_by_nibble()


def _sign_digit(byte):
    """Return (negative, digit) for an embedded sign byte."""
    if DISPLAY_SIGN_BY_NIBBLE:
        return (byte & 0xF0) == 0x70, byte & 0x0F
    if 0x70 <= byte <= 0x79:
        return True, byte - 0x70
    if 0x30 <= byte <= 0x39:
        return False, byte - 0x30
    return False, 0


def _display_codec(item):
    digits, signed = item["digits"], item["signed"]
    leading = item.get("sign") == "leading"
    separate = item.get("sign_separate", False)

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

    return encode, encode(0, "")


def _binary_codec(item, order):
    signed, length = item["signed"], item["length"]

    def encode(value, path):
        return _scaled_integer(value, item, path).to_bytes(length, order, signed=signed)

    return encode, bytes(length)


def _packed_codec(item):
    signed, length = item["signed"], item["length"]
    nibbles = length * 2 - 1

    def encode(value, path):
        number = _scaled_integer(value, item, path)
        sign = ("d" if number < 0 else "c") if signed else "f"
        return bytes.fromhex("%0*d%s" % (nibbles, abs(number), sign))

    return encode, encode(0, "")


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

    return encode, bytes(fmt.size)


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

    return encode, b" " * length


def checked_encoder(item):
    """(encode(value, path) -> bytes, initial image) for one elementary item."""
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


SIGN_TRAILING, SIGN_LEADING, SIGN_TRAILING_SEPARATE, SIGN_LEADING_SEPARATE = range(4)


def field_access(item):
    """(kind, decoder spec, encoder spec) of one elementary item.

    The reader is ``decode_KIND(*decoder_spec, buffer, at)``, the writer
    ``encode_KIND(*encoder_spec, checked, buffer, at, value, path)``.
    """
    usage, length = item["usage"], item["length"]
    if item["type"] == "string":
        return "string", (length,), (length,)
    if usage in ("comp-1", "comp-2"):
        return "float", (length,), (length,)
    digits, scale, signed = item["digits"], item["scale"], item["signed"]
    if usage == "display":
        mode = (SIGN_LEADING if item.get("sign") == "leading" else SIGN_TRAILING) + \
            (2 if item.get("sign_separate", False) else 0)
        return "display", (length, signed, mode, scale), (length, digits, scale, signed, mode)
    if usage in ("binary", "comp-5"):
        little = usage == "comp-5"
        return "binary", (length, signed, little, scale), (length, digits, scale, signed,
                                                           little)
    return "packed", (length, scale), (length, digits, scale, signed)


# --- twin: same names and signatures as esrt._codec ---------------------------------------

def decode_string(length, buffer, at):
    """Text of a PIC X field: cut at the first NUL, bad UTF-8 replaced, spaces trimmed."""
    data = bytes(buffer[at:at + length])
    end = data.find(b"\0")
    if end >= 0:
        data = data[:end]
    return data.decode("utf-8", "replace").rstrip(" ")


def decode_display(length, signed, mode, scale, buffer, at):
    """Value of a DISPLAY numeric field (int, or Decimal with ``scale`` places)."""
    data = bytes(buffer[at:at + length])
    if not signed:
        return _from_scaled(_display_digits(data), scale)
    if mode == SIGN_LEADING_SEPARATE:
        negative, number = data[0] == 0x2D, _display_digits(data[1:])
    elif mode == SIGN_TRAILING_SEPARATE:
        negative, number = data[-1] == 0x2D, _display_digits(data[:-1])
    elif mode == SIGN_LEADING:
        negative, first = _sign_digit(data[0])
        number = first * 10 ** (length - 1) + _display_digits(data[1:]) if length > 1 \
            else first
    else:
        negative, last = _sign_digit(data[-1])
        number = _display_digits(data[:-1]) * 10 + last if length > 1 else last
    return _from_scaled(-number if negative else number, scale)


def decode_binary(length, signed, little, scale, buffer, at):
    """Value of a BINARY (big-endian) or COMP-5 (little-endian) field."""
    return _from_scaled(int.from_bytes(buffer[at:at + length], "little" if little else "big",
                                       signed=signed), scale)


def decode_packed(length, scale, buffer, at):
    """Value of a COMP-3 field."""
    text = buffer[at:at + length].hex()
    body = text[:-1]
    number = int(body) if body.isdigit() else _nibble_value(body)
    if text[-1] in "db":
        number = -number
    return _from_scaled(number, scale)


def decode_float(length, buffer, at):
    """Value of a COMP-1 (4 bytes) or COMP-2 (8 bytes) field; None for NaN/infinity."""
    number = (_SINGLE if length == 4 else _DOUBLE).unpack_from(buffer, at)[0]
    return number if math.isfinite(number) else None


def encode_string(length, checked, buffer, at, value, path):
    """Store a str in a PIC X field."""
    buffer[at:at + length] = checked(value, path)


def encode_display(length, digits, scale, signed, mode, checked, buffer, at, value, path):
    """Store a number in a DISPLAY numeric field."""
    buffer[at:at + length] = checked(value, path)


def encode_binary(length, digits, scale, signed, little, checked, buffer, at, value, path):
    """Store a number in a BINARY or COMP-5 field."""
    buffer[at:at + length] = checked(value, path)


def encode_packed(length, digits, scale, signed, checked, buffer, at, value, path):
    """Store a number in a COMP-3 field."""
    buffer[at:at + length] = checked(value, path)


def encode_float(length, checked, buffer, at, value, path):
    """Store a number in a COMP-1 or COMP-2 field."""
    buffer[at:at + length] = checked(value, path)
