"""Read a COBOL program's interface (``imtkmake -defmap``) and the mapping files it writes.

:func:`defmap` reads COBOL sources, finds each program's PROGRAM-ID, its PROCEDURE DIVISION
USING list and its LINKAGE SECTION (with COPY books), and returns a mapping document; see
:mod:`esrt.mapping.model` for sizes and the document's vocabulary. Turning source text into
tokens and expanding COPY statements is :mod:`esrt.mapping.source`'s part; this module reads
the tokens: the program's structure, then the data description entries (level numbers, PIC,
USAGE, SIGN, OCCURS, REDEFINES) laid out as the items of the mapping document.

Offsets: every item has ``offset``, the byte position of its first occurrence relative to
its *frame*. The frame is the start of the parameter (its 01/77 item), except below a group
that has OCCURS: there it is the start of one element of the nearest OCCURS ancestor.
Groups without OCCURS do not start a frame, so in ``01 P. 05 A. 10 B.`` the offset of B
counts from P. The address of ``P.T[i].F[j]`` where ``T`` has OCCURS is
``start(P) + T.offset + i * T.length + F.offset + j * F.length``, and ``length`` is always
the size of ONE occurrence.

FILLER and unnamed items take their bytes but are not listed (nor anything under them);
REDEFINES items are skipped entirely (the first definition wins); level 88 and VALUE
clauses are ignored.
"""

import json
import os
import re

from esrt.home import write_text_atomic
from esrt.mapping import model
from esrt.mapping.model import MappingError
from esrt.mapping.source import FORMAT_DIRECTIVE, expand_copies, fail, tokenize


# --- program structure -------------------------------------------------------------------

def entry_symbol(program_id):
    """The C symbol cobc gives a PROGRAM-ID: a leading digit gets '_', '-' becomes '__',
    any other character outside [A-Za-z0-9_] becomes '_' plus its two hex digits."""
    out = "_" if program_id[:1].isdigit() else ""
    for char in program_id:
        if char.isascii() and (char.isalnum() or char == "_"):
            out += char
        elif char == "-":
            out += "__"
        else:
            out += "".join("_%02X" % b for b in char.encode("utf-8"))
    return out


def _split_programs(tokens):
    """Return [(program-id token, tokens of that program)] for outer (callable) programs."""
    programs = []
    depth = 0
    current = None
    for index, token in enumerate(tokens):
        if token.kind == "word" and token.upper == "PROGRAM-ID":
            depth += 1
            if depth == 1:
                current = [index, None]
                programs.append(current)
        elif token.kind == "word" and token.upper == "END" and index + 1 < len(tokens) \
                and tokens[index + 1].upper == "PROGRAM":
            depth -= 1
            if depth == 0 and current:
                current[1] = index
    # A nested program's text stays inside its parent's tokens; the parent's own LINKAGE
    # SECTION and USING list come first, which is all that is read.
    return [tokens[start:end] for start, end in programs]


def _section(tokens, header):
    """Tokens after '<header> SECTION .' up to the next SECTION or DIVISION header."""
    start = None
    for index in range(len(tokens) - 1):
        if tokens[index].upper == header and tokens[index + 1].upper == "SECTION":
            start = index + 2
            if start < len(tokens) and tokens[start].kind == "period":
                start += 1
            break
    if start is None:
        return []
    end = start
    while end < len(tokens) - 1:
        if tokens[end + 1].upper in ("SECTION", "DIVISION") and tokens[end].kind == "word" \
                and (end == start or tokens[end - 1].kind == "period"):
            break
        end += 1
    else:
        end = len(tokens)
    return tokens[start:end]


def _using_list(tokens):
    """Tokens naming the PROCEDURE DIVISION USING items, in order."""
    for index in range(len(tokens) - 1):
        if tokens[index].upper == "PROCEDURE" and tokens[index + 1].upper == "DIVISION":
            break
    else:
        return []
    pos = index + 2
    names = []
    if pos >= len(tokens) or tokens[pos].upper != "USING":
        return names
    pos += 1
    while pos < len(tokens) and tokens[pos].kind != "period":
        token = tokens[pos]
        word = token.upper
        if word == "RETURNING":
            break
        if word == "BY":
            mode = tokens[pos + 1].upper if pos + 1 < len(tokens) else ""
            if mode != "REFERENCE":
                fail(token, "USING BY %s is not supported; pass every parameter BY REFERENCE"
                     % mode)
            pos += 2
            continue
        if word in ("REFERENCE", "OPTIONAL"):
            pos += 1
            continue
        if word in ("VALUE", "CONTENT"):
            fail(token, "USING BY %s is not supported; pass every parameter BY REFERENCE" % word)
        names.append(token)
        pos += 1
    return names


# --- data description entries ------------------------------------------------------------

_USAGE_WORDS = {
    "DISPLAY": "display", "COMP": "binary", "COMPUTATIONAL": "binary", "BINARY": "binary",
    "COMP-4": "binary", "COMPUTATIONAL-4": "binary", "COMP-5": "comp-5",
    "COMPUTATIONAL-5": "comp-5", "COMP-3": "comp-3", "COMPUTATIONAL-3": "comp-3",
    "PACKED-DECIMAL": "comp-3", "COMP-1": "comp-1", "COMPUTATIONAL-1": "comp-1",
    "COMP-2": "comp-2", "COMPUTATIONAL-2": "comp-2",
}
_UNSUPPORTED = {
    "INDEX": "USAGE INDEX", "POINTER": "USAGE POINTER", "PROGRAM-POINTER": "USAGE POINTER",
    "PROCEDURE-POINTER": "USAGE POINTER", "COMP-X": "COMP-X", "COMPUTATIONAL-X": "COMP-X",
    "COMP-6": "COMP-6", "COMP-N": "COMP-N", "NATIONAL": "USAGE NATIONAL",
    "SYNC": "SYNCHRONIZED", "SYNCHRONIZED": "SYNCHRONIZED", "JUST": "JUSTIFIED",
    "JUSTIFIED": "JUSTIFIED", "BLANK": "BLANK WHEN ZERO", "ANY": "ANY LENGTH",
    "RENAMES": "RENAMES", "BASED": "BASED", "EXTERNAL": "EXTERNAL", "GLOBAL": "GLOBAL",
    "FLOAT-SHORT": "FLOAT-SHORT", "FLOAT-LONG": "FLOAT-LONG", "BINARY-CHAR": "BINARY-CHAR",
    "BINARY-SHORT": "BINARY-SHORT", "BINARY-LONG": "BINARY-LONG",
    "BINARY-DOUBLE": "BINARY-DOUBLE", "SIGNED": "SIGNED", "UNSIGNED": "UNSIGNED",
    "COMP-9": "COMP-9", "DYNAMIC": "DYNAMIC", "CONSTANT": "CONSTANT",
}


class Entry:
    """One data description entry while the layout is being computed."""

    def __init__(self, level, name, token):
        self.level, self.name, self.token = level, name, token
        self.pic = None
        self.usage = None
        self.sign = None
        self.sign_separate = False
        self.occurs = None
        self.redefines = None
        self.children = []
        self.error = None


def _parse_entry(tokens):
    """Build an Entry from the tokens of one entry (without its period), or None for 88."""
    first = tokens[0]
    if first.kind != "word" or not first.text.isdigit():
        fail(first, "expected a level number, found %r; the LINKAGE SECTION may hold only "
             "data description entries" % first.text)
    level = int(first.text)
    if level == 88:
        return None
    if level == 66:
        fail(first, "66 RENAMES is not supported; describe the field directly")
    if not (1 <= level <= 49 or level == 77):
        fail(first, "level number %d is not valid; use 01-49 or 77" % level)
    pos = 1
    name = None
    if pos < len(tokens) and tokens[pos].kind == "word" and tokens[pos].upper not in (
            _USAGE_WORDS.keys() | {"PIC", "PICTURE", "OCCURS", "REDEFINES", "VALUE", "VALUES",
                                   "USAGE", "SIGN", "LEADING", "TRAILING"} | _UNSUPPORTED.keys()):
        name = tokens[pos].text
        pos += 1
    entry = Entry(level, None if name is None or name.upper() == "FILLER" else name, first)
    try:
        _parse_clauses(entry, tokens, pos)
    except MappingError as exc:
        # Reported only if the item is mapped: REDEFINES and unused records may hold
        # anything COBOL allows.
        entry.error = exc
    return entry


def _parse_clauses(entry, tokens, pos):
    while pos < len(tokens):
        token = tokens[pos]
        word = token.upper
        nxt = tokens[pos + 1] if pos + 1 < len(tokens) else None
        if word in ("PIC", "PICTURE"):
            pos += 1
            if pos < len(tokens) and tokens[pos].upper == "IS":
                pos += 1
            if pos >= len(tokens):
                fail(token, "PICTURE without a picture string")
            entry.pic = tokens[pos]
            pos += 1
        elif word == "USAGE":
            pos += 1
            if nxt is not None and nxt.upper == "IS":
                pos += 1
        elif word in _USAGE_WORDS:
            entry.usage = _USAGE_WORDS[word]
            pos += 1
        elif word in _UNSUPPORTED:
            fail(token, "%s is not supported (%s)%s" % (
                _UNSUPPORTED[word], entry.name or "FILLER",
                "; remove it" if word in ("SYNC", "SYNCHRONIZED", "JUST", "JUSTIFIED", "BLANK")
                else "; use PIC X or PIC 9 with DISPLAY, COMP, COMP-3, COMP-5, COMP-1 or COMP-2"))
        elif word in ("SIGN", "LEADING", "TRAILING"):
            pos += 1
            if word == "SIGN":
                if pos < len(tokens) and tokens[pos].upper == "IS":
                    pos += 1
                word = tokens[pos].upper if pos < len(tokens) else ""
                if word not in ("LEADING", "TRAILING"):
                    fail(token, "SIGN must be followed by LEADING or TRAILING")
                pos += 1
            entry.sign = word.lower()
            if pos < len(tokens) and tokens[pos].upper == "SEPARATE":
                entry.sign_separate = True
                pos += 1
                if pos < len(tokens) and tokens[pos].upper == "CHARACTER":
                    pos += 1
        elif word == "OCCURS":
            pos = _parse_occurs(entry, tokens, pos)
        elif word == "REDEFINES":
            entry.redefines = nxt.text if nxt is not None else "?"
            pos += 2
        elif word in ("VALUE", "VALUES"):
            # VALUE has no effect on LINKAGE storage: skip its literals up to the next clause.
            pos += 1
            while pos < len(tokens) and (tokens[pos].kind == "lit" or tokens[pos].upper in (
                    "IS", "ARE", "ALL", "ZERO", "ZEROS", "ZEROES", "SPACE", "SPACES",
                    "HIGH-VALUE", "HIGH-VALUES", "LOW-VALUE", "LOW-VALUES", "QUOTE", "QUOTES",
                    "NULL", "NULLS") or re.fullmatch(r"[+-]?\d*\.?\d+", tokens[pos].text)):
                pos += 1
        else:
            fail(token, "%r is not supported in a LINKAGE SECTION entry (%s); remove it or "
                 "describe the field with PIC and USAGE" % (token.text, entry.name or "FILLER"))


def _parse_occurs(entry, tokens, pos):
    token = tokens[pos]
    pos += 1
    if pos >= len(tokens) or not tokens[pos].text.isdigit():
        fail(token, "OCCURS needs a number of times")
    count = int(tokens[pos].text)
    pos += 1
    if pos < len(tokens) and tokens[pos].upper == "TO":
        fail(token, "OCCURS DEPENDING ON is not supported (%s); use a fixed OCCURS n"
             % entry.name)
    if pos < len(tokens) and tokens[pos].upper == "TIMES":
        pos += 1
    while pos < len(tokens):
        word = tokens[pos].upper
        if word == "DEPENDING":
            fail(token, "OCCURS DEPENDING ON is not supported (%s); use a fixed OCCURS n"
                 % entry.name)
        if word in ("ASCENDING", "DESCENDING", "INDEXED"):
            # Keys and index names do not change the layout: skip to the next clause.
            pos += 1
            while pos < len(tokens) and tokens[pos].upper not in (
                    "PIC", "PICTURE", "USAGE", "VALUE", "SIGN", "REDEFINES", "ASCENDING",
                    "DESCENDING", "INDEXED") and tokens[pos].upper not in _USAGE_WORDS \
                    and tokens[pos].upper not in _UNSUPPORTED:
                pos += 1
            continue
        break
    if count < 1:
        fail(token, "OCCURS %d is not valid; use at least 1" % count)
    entry.occurs = count
    return pos


def _entries(tokens):
    """Split the LINKAGE SECTION tokens into entries (one per period)."""
    entries = []
    current = []
    for token in tokens:
        if token.kind == "period":
            if current:
                entry = _parse_entry(current)
                if entry is not None:
                    entries.append(entry)
            current = []
        else:
            current.append(token)
    if current:
        fail(current[-1], "the last entry of the LINKAGE SECTION has no ending period")
    return entries


def _build_tree(entries):
    """Nest entries by level number; return the 01/77 records."""
    records = []
    stack = []
    for entry in entries:
        if entry.level in (1, 77):
            records.append(entry)
            stack = [entry]
            continue
        while stack and stack[-1].level >= entry.level:
            stack.pop()
        if not stack:
            fail(entry.token, "level %02d item %s has no 01 record above it"
                 % (entry.level, entry.name or "FILLER"))
        parent = stack[-1]
        if parent.pic is not None or parent.level == 77:
            fail(entry.token, "%s is subordinate to elementary item %s; give %s no PICTURE "
                 "or fix the level numbers" % (entry.name or "FILLER", parent.name,
                                               parent.name))
        parent.children.append(entry)
        stack.append(entry)
    return records


def _layout(entry, usage, sign, separate, start):
    """Compute the mapping item for an entry placed at ``start`` in its frame.

    Returns (item dict, or None for FILLER, length of one occurrence)."""
    if entry.error is not None:
        raise entry.error
    usage = entry.usage or usage
    sign = entry.sign or sign
    separate = entry.sign_separate or separate
    label = entry.name or "FILLER"
    item = {"name": entry.name, "level": entry.level, "line": entry.token.line,
            "offset": start}
    if entry.children:
        if entry.pic is not None:
            fail(entry.pic, "group %s cannot have a PICTURE" % label)
        fields = []
        offset = 0
        # An OCCURS group opens a new frame for its children (one element).
        base = 0 if entry.occurs else start
        names = set()
        for child in entry.children:
            if child.redefines is not None:
                continue
            sub, length = _layout(child, usage, sign, separate, base + offset)
            if sub is not None:
                if sub["name"].upper() in names:
                    fail(child.token, "%s appears twice in group %s; rename one"
                         % (sub["name"], label))
                names.add(sub["name"].upper())
                fields.append(sub)
            offset += length * (child.occurs or 1)
        item.update(pic=None, usage="group", length=offset, type="object", fields=fields)
    elif usage in ("comp-1", "comp-2"):
        if entry.pic is not None:
            fail(entry.pic, "%s is %s, which takes no PICTURE; remove the PICTURE"
                 % (label, usage.upper()))
        item.update(pic=None, usage=usage, length=model.numeric_length(usage, 0, True, False),
                    type="number")
    else:
        if entry.pic is None:
            fail(entry.token, "elementary item %s has no PICTURE; add PIC X(n) or PIC 9(n)"
                 % label)
        try:
            info = model.analyse_picture(entry.pic.text)
        except ValueError as exc:
            fail(entry.pic, "%s (%s)" % (exc, label))
        usage = usage or "display"
        if info["kind"] == "string":
            if usage != "display":
                fail(entry.token, "%s: PIC %s cannot have USAGE %s; use PIC 9"
                     % (label, info["pic"], usage.upper()))
            item.update(pic=info["pic"], usage="display", length=info["length"], type="string")
        else:
            try:
                model.check_digits(usage, info["digits"])
            except ValueError as exc:
                fail(entry.pic, "%s: %s" % (label, exc))
            item.update(pic=info["pic"], usage=usage,
                        length=model.numeric_length(usage, info["digits"], info["signed"],
                                                    usage == "display" and separate),
                        type=model.json_type(usage, info["scale"]),
                        digits=info["digits"], scale=info["scale"], signed=info["signed"])
            if usage == "display" and info["signed"]:
                item["sign"] = sign or "trailing"
                item["sign_separate"] = bool(separate)
    if entry.occurs:
        item["occurs"] = entry.occurs
    return (item if entry.name else None), item["length"]


def _program_document(source, body, copy_dirs, free):
    program_token = next(t for t in body if t.upper == "PROGRAM-ID")
    index = body.index(program_token) + 1
    if index < len(body) and body[index].kind == "period":
        index += 1
    if index >= len(body):
        fail(program_token, "PROGRAM-ID without a name")
    name_token = body[index]
    program = name_token.text.strip("\"'") if name_token.kind == "lit" else name_token.text
    linkage = _section(body, "LINKAGE")
    linkage = expand_copies(linkage, os.path.dirname(source) or ".", tuple(copy_dirs), free)
    records = {}
    for record in _build_tree(_entries(linkage)):
        if record.name:
            records.setdefault(record.name.upper(), record)
    parameters = []
    for token in _using_list(body):
        record = records.get(token.upper)
        if record is None:
            fail(token, "USING item %s is not a 01 or 77 item of the LINKAGE SECTION; "
                 "declare it there" % token.text)
        item, _ = _layout(record, None, None, False, 0)
        item["direction"] = "io"
        parameters.append(item)
    return {"program": program, "entry": entry_symbol(program), "source": source,
            "parameters": [_ordered(item) for item in parameters]}


_KEY_ORDER = ("name", "level", "pic", "usage", "offset", "length", "type", "direction",
              "digits", "scale", "signed", "sign", "sign_separate", "occurs", "line", "fields")


def _ordered(item):
    """The item with its keys in reading order (the file is meant to be edited by hand)."""
    out = {key: item[key] for key in _KEY_ORDER if key in item}
    if "fields" in out:
        out["fields"] = [_ordered(field) for field in out["fields"]]
    return out


def defmap(sources, service, copy_dirs=()):
    """Read COBOL sources and return the default mapping document for ``service``.

    Every PROCEDURE DIVISION USING item becomes a parameter with direction "io".
    Raises MappingError (naming file and line) for anything esrt cannot map.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not service or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", service):
        raise MappingError("service name %r is not valid; use letters, digits, '_', '-', '.'"
                           % service)
    programs = []
    for source in sources:
        source = os.fspath(source)
        try:
            with open(source, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            raise MappingError("%s: cannot read the COBOL source (%s); check the path"
                               % (source, exc.strerror)) from None
        tokens = tokenize(source, text)
        # Copybooks start in the format the main source switched to first.
        first = FORMAT_DIRECTIVE.search(text)
        free = bool(first) and (first.group(1) or first.group(2)).upper() == "FREE"
        bodies = _split_programs(tokens)
        if not bodies:
            raise MappingError("%s: no PROGRAM-ID found; is this a COBOL program?" % source)
        for body in bodies:
            document = _program_document(source, body, copy_dirs, free)
            if any(p["program"].upper() == document["program"].upper() for p in programs):
                raise MappingError("%s: program %s is defined twice in the sources"
                                   % (source, document["program"]))
            programs.append(document)
    return {"format": model.FORMAT, "service": service, "programs": programs}


def write_mapping(doc, path):
    """Write a mapping document as indented JSON that users can edit."""
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")


def load_mapping(path):
    """Read and validate a mapping file; errors name the file and the parameter."""
    where = os.path.basename(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise MappingError("%s: cannot read the mapping (%s)" % (path, exc.strerror)) from None
    except ValueError as exc:
        raise MappingError("%s: not valid JSON (%s); fix the file or regenerate it with "
                           "'imtkmake -defmap'" % (where, exc)) from None
    return model.validate_document(doc, where)
