"""Every escaping rule for user text, in one place: terminal lines, Markdown, LaTeX, DOT, XML.

Node names may hold anything.  Each output must show exactly the characters typed, never obey
them: a table row stays one line, a DOT label cannot end itself or add attributes, a LaTeX
file compiles, an XML file stays well-formed.  The characters that are never shown as
themselves are in one table, :data:`HIDDEN`; each output only decides how to show them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import graphviz

#: Characters never shown as themselves: C0 and C1 controls and DEL, the invisible marks that
#: reorder or break text (bidirectional controls, line and paragraph separators), lone
#: surrogates (they cannot even be encoded) and the noncharacters U+FFFE and U+FFFF (XML
#: cannot hold them).
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                    "\ud800-\udfff\ufffe\uffff]")

#: What XML 1.0 cannot carry at all (tab and newline it can), plus the backslash that starts
#: a visible escape.
XML_UNSAFE = re.compile("[\\\\\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")


def code_escape(ch: str) -> str:
    """``\\xNN`` or ``\\uNNNN``: a character as a visible escape."""
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures: ␊ ␉ ␛ ␀
    return "\u2421" if code == 0x7F else f"[U+{code:04X}]"


def one_line(text: str) -> str:
    """``text`` as one line of plain text that shows every character it holds.

    C0 controls and DEL become their control pictures (``␊ ␉ ␛ ␀ ␡``); the other hidden
    characters become ``[U+XXXX]``.  Everything else (emoji, accents, markup) is kept.

    >>> one_line("a\\nb\\tc\\x1b[31m")
    'a␊b␉c␛[31m'
    >>> one_line("\\u202eevil")
    '[U+202E]evil'
    """
    return HIDDEN.sub(_picture, text)


def width(text: str) -> int:
    """Columns ``text`` takes in a monospace terminal: wide characters (CJK, most emoji) take
    two, combining marks and zero-width format characters none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, one line per row whatever the cells hold."""
    cells = [[one_line(str(c)) for c in row] for row in (header, *rows)]
    widths = [max(width(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - width(c)) for c, w in zip(row, widths)).rstrip(" ")

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


_MD_SPECIAL = set("\\`*_{}[]<>#|~!$")
_MD_ENTITY = re.compile(r"&(?=[A-Za-z][A-Za-z0-9]*;)")


def markdown_text(text: str) -> str:
    """``text`` as Markdown that shows exactly these characters, on one line (for table rows).

    Special characters get a backslash, and so does an ``&`` that would start an entity.
    """
    escaped = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in one_line(text))
    return _MD_ENTITY.sub(r"\\&", escaped)


GREEK = dict(zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ∂",
                 ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho "
                  "sigma tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi "
                  "Omega partial").split()))
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
                "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                # typeset literally rather than as curly quotes (and no `` or '' ligatures):
                "'": r"\textquotesingle{}", "`": r"\textasciigrave{}", '"': r"\texttt{\char34}"}


def tex_text(text: str) -> str:
    """``text`` as LaTeX: ``\\text{...}`` with every special character escaped.

    Greek letters become math symbols; other non-ASCII characters (and control characters) are
    written as ``[U+XXXX]`` so that pdflatex compiles it without extra packages (amsmath is
    needed for ``\\text``).  Quotes, backquotes and ``--`` are typeset as typed.
    """
    out = []
    for k, ch in enumerate(text):
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch == "-" and text[k + 1:k + 2] == "-":
            out.append("-{}")  # "--" would be typeset as an en dash
        elif ch in GREEK:
            out.append(f"$\\{GREEK[ch]}$")
        elif ord(ch) > 126 or ord(ch) < 32:
            out.append(f"[U+{ord(ch):04X}]" if unicodedata.category(ch) != "Zs" else " ")
        else:
            out.append(ch)
    return r"\text{" + "".join(out) + "}"


def dot_label_text(text: str) -> str:
    """User text escaped for a plain (never HTML-like) DOT label, shown exactly as typed.

    Backslashes are doubled (``\\N`` or ``\\l`` stay literal), ``&`` becomes ``&amp;`` (entities
    stay literal), newlines become ``\\n`` line breaks, tabs four spaces, and the
    :data:`HIDDEN` characters visible escapes (``\\x01``, ``\\u202e``).
    """
    lines = str(text).replace("\r\n", "\n").replace("\t", "    ").split("\n")
    escaped = (HIDDEN.sub(lambda m: code_escape(m.group()), line) for line in lines)
    return "\\n".join(line.replace("&", "&amp;").replace("\\", "\\\\") for line in escaped)


def dot_quote(text: str) -> str:
    """A DOT identifier or quoted string for a label or a style value: the ``graphviz``
    package's quoting, never read as an HTML-like label.

    Label text comes from :func:`dot_label_text`, where every backslash is part of an escape,
    so each quote a user typed is escaped and nothing can end the string.
    """
    return graphviz.quoting.quote(graphviz.nohtml(str(text)))


def xml_text(text: str) -> str:
    """``text`` with what XML 1.0 cannot carry as visible escapes, and the backslash doubled so
    that an escape and a name holding one can be told apart (as GraphML attribute values)."""
    return XML_UNSAFE.sub(lambda m: "\\\\" if m.group() == "\\" else code_escape(m.group()), text)
