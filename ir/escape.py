"""How a name from the user's model is written into each language tcc generates.

ONNX node and tensor names are arbitrary strings (newlines, quotes, backslashes, NUL, ``*/``,
``</script>``, megabytes of text). Every generator writes them through exactly one function here
for its output language, so a name is data in the output and never code:

- ``ir_string``: a string literal of the textual IR (JSON escapes; the parser reads it back exactly).
- ``one_line``: one line of plain text (listings, assembly comments, terminal tables).
- ``cpp_comment`` / ``cpp_string`` / ``is_cpp_identifier``: C++ comments, string literals, identifiers.
- ``html_text``: HTML text and attribute values (quoted with ``'`` or ``"``).
- ``dot_string``: a quoted Graphviz DOT ID or label.
"""
from __future__ import annotations

import html
import json
import re

_CPP_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def ir_string(text: str) -> str:
    """A double-quoted textual-IR string literal (JSON escapes) that parses back to ``text``; characters
    that are not printable (controls, line and paragraph separators, bidi overrides) are ``\\uXXXX``
    escapes, so the literal stays on its line for line-oriented tools too."""
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isprintable():
        return quoted
    return "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in quoted)


def _code_point_escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: str) -> str:
    """``text`` as one line of printable text: line breaks, control and format characters (including
    bidirectional overrides and terminal escapes) become visible ``\\n``/``\\xNN``/``\\uNNNN`` escapes,
    and a backslash is doubled so an escape in the name cannot pass for one made here."""
    return "".join(_SHORT_ESCAPES.get(ch) or (ch if ch.isprintable() else _code_point_escape(ch))
                   for ch in str(text))


def cpp_comment(text: str) -> str:
    """``text`` for the body of a ``//`` or ``/* */`` comment: printable ASCII only, and no backslash
    (a trailing one would splice the next line into the comment), ``*/`` or ``??`` (trigraphs in
    pre-C++17 modes) left in it; everything else is written as ``\\xNN``-style escapes."""
    out = []
    for ch in str(text):
        if ch == "\\" or not (" " <= ch <= "~"):
            out.append(_code_point_escape(ch))
        elif ch == "/" and out and out[-1] == "*":
            out.append("\\x2f")
        elif ch == "?" and out and out[-1] == "?":
            out.append("\\x3f")
        else:
            out.append(ch)
    return "".join(out)


def cpp_string(text: str) -> str:
    """A double-quoted C++ narrow string literal holding ``text``'s UTF-8 bytes: printable ASCII other
    than ``"``, ``\\``, ``?`` and ``%`` as is (so the literal is also a safe printf format), every other
    byte as a three-digit octal escape (which, unlike ``\\x``, cannot swallow a following digit)."""
    out = []
    for byte in str(text).encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        out.append(ch if " " <= ch <= "~" and ch not in '"\\?%' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def is_cpp_identifier(text) -> bool:
    """``text`` is a plain C++ identifier ([A-Za-z_][A-Za-z0-9_]*, no reserved ``__`` prefix)."""
    return isinstance(text, str) and _CPP_IDENTIFIER.fullmatch(text) is not None and not text.startswith("__")


def html_text(text) -> str:
    """``text`` escaped for HTML text and for quoted attribute values (``&<>"'``); control characters,
    which HTML forbids, are written as visible escapes."""
    text = "".join(ch if ch in "\t\n" or not (ch < " " or "\x7f" <= ch <= "\x9f") else _code_point_escape(ch)
                   for ch in str(text))
    return html.escape(text, quote=True)


def dot_string(*lines: str) -> str:
    """A double-quoted DOT string whose lines are ``lines`` (each made ``one_line`` first): quotes and
    backslashes escaped, so no name can end the string or form an escape such as ``\\N`` or ``\\l``."""
    body = "\\n".join(one_line(line).replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return f'"{body}"'
