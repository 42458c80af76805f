"""The mapping document's vocabulary: PICTURE strings, storage sizes, and validation.

A mapping document (``esrt-mapping/1``) describes the LINKAGE SECTION parameters of each
program in a service. It is produced by :func:`esrt.mapping.parser.defmap`, may be edited
by hand, and is read back by :func:`esrt.mapping.parser.load_mapping`, which calls
:func:`validate_document` here so that a hand-edited file is checked against the same
rules the generator follows (sizes are recomputed from ``pic`` and ``usage``).

Sizes follow GnuCOBOL 3.1.2 with its default configuration (``binary-size: 1-2-4-8``),
checked against ``cobc``:

* DISPLAY numeric: one byte per ``9``, plus one when the sign is SEPARATE; ``P`` takes no room.
* BINARY / COMP / COMP-4 / COMP-5: 1-2 digits -> 1 byte, 3-4 -> 2, 5-9 -> 4, 10-18 -> 8
  (only ``9`` positions count as digits, ``P`` does not).
* COMP-3 / PACKED-DECIMAL: ``digits // 2 + 1`` bytes.
* COMP-1: 4 bytes, COMP-2: 8 bytes.

Numeric items are described by ``digits`` (the number of ``9`` positions, i.e. the stored
digits), ``scale`` and ``signed``; the value is ``stored integer * 10 ** -scale``.
"""

import re

USAGES = ("display", "binary", "comp-5", "comp-3", "comp-1", "comp-2", "group")
TYPES = ("string", "integer", "number", "object")
DIRECTIONS = ("in", "out", "io")
FORMAT = "esrt-mapping/1"

# The largest digit counts GnuCOBOL 3 accepts per representation that esrt supports.
MAX_DISPLAY_DIGITS = 38
MAX_BINARY_DIGITS = 18


class MappingError(ValueError):
    """A COBOL interface or a mapping file that esrt cannot use; the message says where and why."""


_PIC_RUN = re.compile(r"(.)(?:\((\d+)\))?")


def expand_picture(pic):
    """Return the picture as a list of (symbol, count) runs, upper-cased, e.g. S9(3)V99 ->
    [('S',1),('9',3),('V',1),('9',2)]. Raises ValueError on malformed repetition."""
    runs = []
    text = pic.upper()
    pos = 0
    while pos < len(text):
        # CR and DB are two-letter symbols; keep them whole so the error can name them.
        if text.startswith(("CR", "DB"), pos):
            runs.append((text[pos:pos + 2], 1))
            pos += 2
            continue
        match = _PIC_RUN.match(text, pos)
        symbol, count = match.group(1), match.group(2)
        if symbol == "(" or symbol == ")":
            raise ValueError("misplaced parenthesis in PICTURE %s" % pic)
        count = int(count) if count is not None else 1
        if count < 1:
            raise ValueError("repetition (0) in PICTURE %s" % pic)
        if runs and runs[-1][0] == symbol:
            runs[-1] = (symbol, runs[-1][1] + count)
        else:
            runs.append((symbol, count))
        pos = match.end()
    return runs


def normalize_picture(runs):
    """Write runs back in one canonical form: a single symbol as is, longer runs as X(n)."""
    return "".join(s if n == 1 else "%s(%d)" % (s, n) for s, n in runs)


_EDITED = set("Z*+-B0/,.$CRDB") | {"CR", "DB"}


def analyse_picture(pic):
    """Classify a PICTURE string.

    Returns a dict: ``pic`` (normalized), ``kind`` ("string" or "numeric"), ``length`` of a
    string, or ``digits``, ``scale`` and ``signed`` of a number. Raises ValueError with the
    reason and the remedy when the picture is not supported.
    """
    runs = expand_picture(pic)
    symbols = [s for s, _ in runs]
    for s in symbols:
        if s in ("N", "U", "1", "E"):
            raise ValueError("PICTURE %s: national, boolean and floating-point-edited "
                             "pictures are not supported; use PIC X or PIC 9" % pic)
        if s in _EDITED:
            raise ValueError("PICTURE %s is numeric-edited (symbol %s), which is not supported "
                             "in an interface; use PIC 9 with S and V" % (pic, s))
        if s not in ("X", "A", "9", "S", "V", "P"):
            raise ValueError("PICTURE %s has the unknown symbol %r; use PIC X or PIC 9" % (pic, s))
    normalized = normalize_picture(runs)
    if "X" in symbols or "A" in symbols:
        if any(s in ("S", "V", "P") for s in symbols):
            raise ValueError("PICTURE %s mixes X/A with S, V or P; use PIC X(n) or PIC 9" % pic)
        return {"pic": normalized, "kind": "string", "length": sum(n for _, n in runs)}
    signed = False
    if symbols[0] == "S":
        if runs[0][1] != 1:
            raise ValueError("PICTURE %s has more than one S" % pic)
        signed = True
        runs = runs[1:]
    if any(s == "S" for s, _ in runs):
        raise ValueError("PICTURE %s: S must be the first symbol" % pic)
    if sum(n for s, n in runs if s == "V") > 1:
        raise ValueError("PICTURE %s has more than one V" % pic)
    digits = sum(n for s, n in runs if s == "9")
    if digits == 0:
        raise ValueError("PICTURE %s has no digit positions (9)" % pic)
    positions = [s for s, n in runs for _ in range(n)]
    p_at = [i for i, s in enumerate(positions) if s == "P"]
    nines = [i for i, s in enumerate(positions) if s == "9"]
    # The implied point sits at V; without V it follows right-hand P's (999PP counts
    # hundreds) or precedes left-hand ones (PPP99 holds at most .00099).
    point = positions.index("V") if "V" in positions else len(positions)
    if p_at:
        run_ok = max(p_at) - min(p_at) + 1 == len(p_at)
        if run_ok and max(p_at) < min(nines):
            point = positions.index("V") if "V" in positions else -1
            run_ok = point < min(p_at)
        elif run_ok and min(p_at) > max(nines):
            run_ok = point > max(p_at)
        else:
            run_ok = False
        if not run_ok:
            raise ValueError("PICTURE %s: P must form one run at the left end (after any V) "
                             "or at the right end (before any V)" % pic)
    scale = 0
    for i, s in enumerate(positions):
        if s == "9" and i > point:
            scale += 1
        elif s == "P":
            scale += 1 if i > point else -1
    return {"pic": normalized, "kind": "numeric", "digits": digits, "scale": scale,
            "signed": signed}


def binary_size(digits):
    """Bytes GnuCOBOL gives a BINARY/COMP-5 item of ``digits`` digits (binary-size 1-2-4-8)."""
    if digits <= 2:
        return 1
    if digits <= 4:
        return 2
    if digits <= 9:
        return 4
    return 8


def numeric_length(usage, digits, signed, sign_separate):
    """Storage size in bytes of one numeric item."""
    if usage == "display":
        return digits + (1 if signed and sign_separate else 0)
    if usage in ("binary", "comp-5"):
        return binary_size(digits)
    if usage == "comp-3":
        return digits // 2 + 1
    if usage == "comp-1":
        return 4
    if usage == "comp-2":
        return 8
    raise ValueError("usage %r has no numeric size" % usage)


def check_digits(usage, digits):
    """Raise ValueError when a digit count is beyond what esrt supports for the usage."""
    limit = MAX_BINARY_DIGITS if usage in ("binary", "comp-5") else MAX_DISPLAY_DIGITS
    if digits > limit:
        raise ValueError("%d digits is more than %d, the most esrt supports for %s; "
                         "shorten the PICTURE" % (digits, limit, usage.upper()))


def json_type(usage, scale):
    """The JSON type a value of this usage and scale has."""
    if usage == "group":
        return "object"
    if usage in ("comp-1", "comp-2"):
        return "number"
    return "integer" if scale <= 0 else "number"


# --- validation of a (possibly hand-edited) document -------------------------------------

_ITEM_KEYS = ("name", "level", "usage", "offset", "length", "type")


def validate_document(doc, where):
    """Check a mapping document; ``where`` names the file in error messages.

    Fills in defaults (direction "io") and raises MappingError naming the program and
    parameter that is wrong and how to fix it.
    """
    if not isinstance(doc, dict):
        raise MappingError("%s: the mapping must be a JSON object; regenerate it with "
                           "'imtkmake -defmap'" % where)
    if doc.get("format") != FORMAT:
        raise MappingError("%s: \"format\" is %r, expected %r; regenerate the mapping with "
                           "'imtkmake -defmap'" % (where, doc.get("format"), FORMAT))
    if not isinstance(doc.get("service"), str) or not doc["service"]:
        raise MappingError("%s: \"service\" must be a non-empty string" % where)
    programs = doc.get("programs")
    if not isinstance(programs, list) or not programs:
        raise MappingError("%s: \"programs\" must be a non-empty list" % where)
    seen = set()
    for program in programs:
        if not isinstance(program, dict):
            raise MappingError("%s: every entry of \"programs\" must be an object" % where)
        for key in ("program", "entry", "source", "parameters"):
            if key not in program:
                raise MappingError("%s: a program lacks the key %r; add it or regenerate the "
                                   "mapping" % (where, key))
        name = program["program"]
        if name.upper() in seen:
            raise MappingError("%s: program %s appears twice; keep one" % (where, name))
        seen.add(name.upper())
        params = program["parameters"]
        if not isinstance(params, list):
            raise MappingError("%s: program %s: \"parameters\" must be a list" % (where, name))
        names = set()
        for param in params:
            label = "%s: program %s, parameter %s" % (
                where, name, param.get("name", "?") if isinstance(param, dict) else "?")
            _validate_item(param, label, top=True)
            if param["name"].upper() in names:
                raise MappingError("%s: the name is used twice; COBOL USING lists each item "
                                   "once" % label)
            names.add(param["name"].upper())
            direction = param.setdefault("direction", "io")
            if direction not in DIRECTIONS:
                raise MappingError("%s: direction %r is not one of in, out, io; edit the "
                                   "file" % (label, direction))
    return doc


def _validate_item(item, label, top):
    if not isinstance(item, dict):
        raise MappingError("%s: must be a JSON object" % label)
    for key in _ITEM_KEYS:
        if key not in item:
            raise MappingError("%s: the key %r is missing; add it or regenerate the mapping"
                               % (label, key))
    if not isinstance(item["name"], str) or not item["name"]:
        raise MappingError("%s: \"name\" must be a non-empty string" % label)
    if not top and "direction" in item:
        raise MappingError("%s: \"direction\" is allowed only on a parameter, not on a field "
                           "of a group; remove it" % label)
    usage = item["usage"]
    if usage not in USAGES:
        raise MappingError("%s: usage %r is not one of %s" % (label, usage, ", ".join(USAGES)))
    for key in ("offset", "length"):
        if not isinstance(item[key], int) or isinstance(item[key], bool) or item[key] < 0:
            raise MappingError("%s: %r must be a non-negative integer" % (label, key))
    occurs = item.get("occurs", 1)
    if not isinstance(occurs, int) or isinstance(occurs, bool) or occurs < 1:
        raise MappingError("%s: \"occurs\" must be a positive integer" % label)
    if usage == "group":
        _validate_group(item, label)
    else:
        _validate_elementary(item, label)


def _validate_group(item, label):
    if item["type"] != "object":
        raise MappingError("%s: a group has type \"object\", not %r" % (label, item["type"]))
    fields = item.get("fields")
    if not isinstance(fields, list):
        raise MappingError("%s: a group needs a \"fields\" list" % label)
    names = set()
    for field in fields:
        sub = "%s.%s" % (label, field.get("name", "?") if isinstance(field, dict) else "?")
        _validate_item(field, sub, top=False)
        if field["name"].upper() in names:
            raise MappingError("%s: the name appears twice in its group; rename one" % sub)
        names.add(field["name"].upper())
        # Offsets count from the frame: an OCCURS group's element, else the parameter.
        low = 0 if "occurs" in item else item["offset"]
        end = field["offset"] + field["length"] * field.get("occurs", 1)
        if field["offset"] < low or end > low + item["length"]:
            raise MappingError("%s: bytes %d-%d lie outside its group (bytes %d-%d of the "
                               "frame); fix the offset or regenerate the mapping"
                               % (sub, field["offset"], end, low, low + item["length"]))


def _validate_elementary(item, label):
    usage = item["usage"]
    pic = item.get("pic")
    if usage in ("comp-1", "comp-2"):
        expected_len = numeric_length(usage, 0, True, False)
        if item["type"] != "number":
            raise MappingError("%s: %s has type \"number\", not %r"
                               % (label, usage.upper(), item["type"]))
    else:
        if not isinstance(pic, str):
            raise MappingError("%s: an elementary %s item needs a \"pic\"" % (label, usage))
        try:
            info = analyse_picture(pic)
        except ValueError as exc:
            raise MappingError("%s: %s" % (label, exc)) from None
        if info["kind"] == "string":
            if usage != "display":
                raise MappingError("%s: PIC %s must have usage display" % (label, pic))
            expected_type, expected_len = "string", info["length"]
        else:
            for key in ("digits", "scale", "signed"):
                if item.get(key) != info[key]:
                    raise MappingError("%s: %r is %r but PIC %s means %r; fix one of them"
                                       % (label, key, item.get(key), pic, info[key]))
            try:
                check_digits(usage, info["digits"])
            except ValueError as exc:
                raise MappingError("%s: %s" % (label, exc)) from None
            separate = bool(item.get("sign_separate", False))
            if item.get("sign", "trailing") not in ("trailing", "leading"):
                raise MappingError("%s: \"sign\" must be \"trailing\" or \"leading\"" % label)
            expected_type = json_type(usage, info["scale"])
            expected_len = numeric_length(usage, info["digits"], info["signed"], separate)
        if item["type"] != expected_type:
            raise MappingError("%s: PIC %s has type %r, not %r"
                               % (label, pic, expected_type, item["type"]))
    if item["length"] != expected_len:
        raise MappingError("%s: length %d does not match its PIC/usage (%d bytes); fix the "
                           "length or regenerate the mapping"
                           % (label, item["length"], expected_len))
