"""JSON for requests and replies with exact decimals.

Numbers with a fraction or exponent are parsed as :class:`decimal.Decimal` so that COBOL
amounts never pass through binary floating point; Decimals are written back digit for digit.
"""

import json
from decimal import Decimal

# json's own string escaper (C-accelerated); keeps non-ASCII text as UTF-8.
_string = json.encoder.encode_basestring


def _reject_constant(name):
    raise ValueError("%s is not valid JSON; send numbers as plain digits" % name)


def _decimal(text):
    try:
        return Decimal(text)
    except ArithmeticError:  # an exponent beyond any Decimal: 91E8888888888888888888
        raise ValueError("the number %s... is out of any range; send numbers the field can "
                         "hold" % text[:40]) from None


_DECODER = json.JSONDecoder(parse_float=_decimal, parse_constant=_reject_constant)


def loads(body):
    """Parse a request body (bytes or str); raise ValueError saying where the JSON is wrong."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("the body is not UTF-8 (byte %d); send JSON encoded as UTF-8"
                             % exc.start) from None
    try:
        return _DECODER.decode(body)
    except json.JSONDecodeError as exc:
        raise ValueError("invalid JSON at line %d column %d (char %d): %s"
                         % (exc.lineno, exc.colno, exc.pos, exc.msg)) from None


def _decimal_text(value):
    text = str(value)
    # str() may give exponent forms such as 1E+3 or 0E-7 which JSON accepts; keep digits
    # plain when that is short, since clients compare text.
    if "E" in text:
        plain = format(value, "f")
        if len(plain) <= 40:
            return plain
    return text


def _encode(obj, parts):
    # bool before int: True is an int in Python but must be written as true.
    if obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, str):
        parts.append(_string(obj))
    elif isinstance(obj, int):
        parts.append(int.__repr__(obj))
    elif isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError("%s cannot be written as JSON" % obj)
        parts.append(_decimal_text(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError("%r cannot be written as JSON" % obj)
        parts.append(float.__repr__(obj))
    elif isinstance(obj, dict):
        parts.append("{")
        first = True
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings, got %r" % (key,))
            if not first:
                parts.append(",")
            first = False
            parts.append(_string(key))
            parts.append(":")
            _encode(value, parts)
        parts.append("}")
    elif isinstance(obj, (list, tuple)):
        parts.append("[")
        for index, value in enumerate(obj):
            if index:
                parts.append(",")
            _encode(value, parts)
        parts.append("]")
    else:
        raise TypeError("%s is not JSON serializable" % type(obj).__name__)


def dumps(obj):
    """Compact UTF-8 JSON: Decimals exactly as they are, floats with repr."""
    parts = []
    _encode(obj, parts)
    return "".join(parts).encode("utf-8")
