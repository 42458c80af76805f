"""COBOL source text as tokens: fixed and free format, COPY books and REPLACING.

This is the lexical half of ``imtkmake -defmap``: it turns a source file into the words,
literals, periods and ``==`` delimiters that :mod:`esrt.mapping.parser` reads the program's
structure and LINKAGE SECTION from. Every :class:`Token` remembers the file and line it came
from, copybook lines included, so that a mistake found later still names where to fix it.

* :func:`tokenize` strips sequence areas, indicator-column comments and ``*>`` comments, joins
  fixed-format continuation lines and follows ``>>SOURCE`` / ``$SET SOURCEFORMAT`` switches.
* :func:`expand_copies` replaces each COPY statement by its copybook's tokens (found in the
  including file's directory, then in ``copy_dirs``), nested COPYs included, and applies
  REPLACING (pseudo-text, words, LEADING and TRAILING).

Nothing here knows level numbers or PICTUREs, and nothing here imports the parser: the parser
builds on this module, never the other way round.
"""

import os
import re

from esrt.mapping.model import MappingError

COPY_SUFFIXES = ("", ".cpy", ".CPY", ".cob", ".cbl")
_MAX_COPY_DEPTH = 20

# A compiler directive that switches the source format; group 1 or 2 holds FREE or FIXED.
FORMAT_DIRECTIVE = re.compile(
    r""">>\s*SOURCE\s+(?:FORMAT\s+)?(?:IS\s+)?(FREE|FIXED)|\$\s*SET\s+SOURCEFORMAT\s*\(?\s*["']?(FREE|FIXED)""",
    re.IGNORECASE)
_TOKEN = re.compile(r"""
    (?P<space>[\s]+)
  | (?P<comment>\*>.*)
  | (?P<pseudo>==)
  | (?P<lit>(?:[A-Za-z]{1,2})?(?:"(?:[^"]|"")*"?|'(?:[^']|'')*'?))
  | (?P<word>(?:(?!==)[^\s"'])+)
""", re.VERBOSE)


class Token:
    """One COBOL word, literal, period or pseudo-text delimiter with its origin."""

    __slots__ = ("kind", "text", "file", "line")

    def __init__(self, kind, text, file, line):
        self.kind, self.text, self.file, self.line = kind, text, file, line

    @property
    def upper(self):
        return self.text.upper()

    def where(self):
        return "%s:%d" % (os.path.basename(self.file), self.line)

    def __repr__(self):
        return "Token(%s %r @%d)" % (self.kind, self.text, self.line)


def fail(token, message):
    """Raise MappingError for what is wrong at ``token``, prefixed with its file and line."""
    raise MappingError("%s: %s" % (token.where(), message))


# --- source text -> logical lines -> tokens ----------------------------------------------

def _logical_lines(text, free):
    """Return [line number, code text] pairs with comments, sequence areas and fixed-format
    continuations removed; ``>>SOURCE`` and ``$SET SOURCEFORMAT`` switch the format."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        raw = raw.expandtabs(8)
        head = raw.lstrip() if free else raw[6:].lstrip()
        if head.startswith((">>", "$")) or raw.lstrip().startswith(">>"):
            directive = FORMAT_DIRECTIVE.search(raw)
            if directive:
                free = (directive.group(1) or directive.group(2)).upper() == "FREE"
            continue  # other compiler directives carry no data layout
        if free:
            lines.append([number, raw])
            continue
        indicator = raw[6:7]
        code = raw[7:72]
        if indicator in ("*", "/", "D", "d"):
            continue
        if indicator == "-" and lines:
            _continue_line(lines[-1], code)
            continue
        lines.append([number, code])
    return lines


def _continue_line(previous, code):
    body = code.lstrip()
    text = previous[1]
    # An open literal runs to column 72 and resumes after the quote on the continuation line.
    open_quote = _open_quote(text)
    if open_quote and body[:1] == open_quote:
        previous[1] = text + body[1:]
    else:
        previous[1] = text.rstrip() + body


def _open_quote(text):
    quote = None
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
    return quote


def tokenize(path, text, free=False):
    """Split COBOL source text into tokens (words, literals, periods, ``==``)."""
    tokens = []
    for number, code in _logical_lines(text, free):
        for match in _TOKEN.finditer(code):
            kind = match.lastgroup
            value = match.group()
            if kind in ("space", "comment"):
                continue
            if kind != "word":
                tokens.append(Token(kind, value, path, number))
                continue
            # A period or comma ends a word only when space (or the line end) follows it,
            # which keeps PIC 9.99 or 9,999 whole.
            trailing_period = value.endswith(".")
            value = value.rstrip(".,;") if trailing_period else value.rstrip(",;")
            if value:
                tokens.append(Token("word", value, path, number))
            if trailing_period:
                tokens.append(Token("period", ".", path, number))
    return tokens


# --- COPY --------------------------------------------------------------------------------

def _find_copybook(token, name, base_dir, copy_dirs):
    for directory in (base_dir,) + tuple(copy_dirs):
        for suffix in COPY_SUFFIXES:
            candidate = os.path.join(directory, name + suffix)
            if os.path.isfile(candidate):
                return candidate
    fail(token, "copybook %s not found in %s (tried suffixes %s); add its directory to "
         "copy_dirs" % (name, ", ".join((base_dir,) + tuple(copy_dirs)),
                        ", ".join(repr(s) for s in COPY_SUFFIXES)))


def _read_operand(tokens, pos, copy_token):
    """Read one REPLACING operand: pseudo-text, literal or word. Returns (token list, pos)."""
    if pos >= len(tokens):
        fail(copy_token, "COPY REPLACING is incomplete; end it with a period")
    if tokens[pos].kind == "pseudo":
        end = pos + 1
        while end < len(tokens) and tokens[end].kind != "pseudo":
            end += 1
        if end >= len(tokens):
            fail(tokens[pos], "pseudo-text opened with == is never closed")
        return tokens[pos + 1:end], end + 1
    return [tokens[pos]], pos + 1


def expand_copies(tokens, base_dir, copy_dirs, free, depth=0):
    """Replace every COPY statement by the copybook's tokens, applying REPLACING.

    Copybooks are looked up in ``base_dir`` (the including file's directory), then in
    ``copy_dirs``; they are read in the format ``free`` (True: free format).
    """
    out = []
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token.kind != "word" or token.upper != "COPY":
            out.append(token)
            pos += 1
            continue
        if depth >= _MAX_COPY_DEPTH:
            fail(token, "COPY nested more than %d deep; check for a copybook that copies "
                 "itself" % _MAX_COPY_DEPTH)
        if pos + 1 >= len(tokens):
            fail(token, "COPY without a copybook name")
        name_token = tokens[pos + 1]
        name = name_token.text.strip("\"'") if name_token.kind == "lit" else name_token.text
        pos += 2
        replacing = []
        while pos < len(tokens) and tokens[pos].kind != "period":
            word = tokens[pos].upper
            if word in ("OF", "IN"):
                pos += 2  # the library name: copybooks are looked up by directory instead
            elif word == "SUPPRESS":
                pos += 1
            elif word == "REPLACING":
                pos += 1
                while pos < len(tokens) and tokens[pos].kind != "period":
                    mode = None
                    if tokens[pos].upper in ("LEADING", "TRAILING"):
                        mode = tokens[pos].upper
                        pos += 1
                    old, pos = _read_operand(tokens, pos, token)
                    if pos >= len(tokens) or tokens[pos].upper != "BY":
                        fail(token, "COPY REPLACING needs 'BY' after each operand")
                    new, pos = _read_operand(tokens, pos + 1, token)
                    if not old:
                        fail(token, "COPY REPLACING with empty pseudo-text to replace")
                    replacing.append((mode, old, new))
            else:
                fail(tokens[pos], "unexpected %r in COPY statement; end COPY with a period"
                     % tokens[pos].text)
        pos += 1  # the period ending COPY
        path = _find_copybook(token, name, base_dir, copy_dirs)
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        book = tokenize(path, text, free)
        book = expand_copies(book, os.path.dirname(path), copy_dirs, free, depth + 1)
        out.extend(_apply_replacing(book, replacing))
    return out


def _apply_replacing(tokens, replacing):
    if not replacing:
        return tokens
    out = []
    pos = 0
    while pos < len(tokens):
        for mode, old, new in replacing:
            if mode or (len(old) == 1 and old[0].text.startswith(":")):
                token = tokens[pos]
                if token.kind != "word":
                    continue
                pattern, repl = old[0].text.upper(), "".join(t.text for t in new)
                upper = token.upper
                if mode == "LEADING" and upper.startswith(pattern):
                    text = repl + token.text[len(pattern):]
                elif mode == "TRAILING" and upper.endswith(pattern):
                    text = token.text[:len(token.text) - len(pattern)] + repl
                elif mode is None and pattern in upper:
                    index = upper.index(pattern)
                    text = token.text[:index] + repl + token.text[index + len(pattern):]
                else:
                    continue
                out.append(Token("word", text, token.file, token.line))
                pos += 1
                break
            window = tokens[pos:pos + len(old)]
            if len(window) == len(old) and all(
                    a.kind == b.kind and a.upper == b.upper for a, b in zip(window, old)):
                out.extend(Token(t.kind, t.text, tokens[pos].file, tokens[pos].line) for t in new)
                pos += len(old)
                break
        else:
            out.append(tokens[pos])
            pos += 1
    return out
