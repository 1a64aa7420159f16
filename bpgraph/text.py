"""Every escaping rule for user text, in one place: terminal lines, Markdown, LaTeX, DOT, XML.

Node names may hold anything; each output shows exactly the characters typed and never obeys them.
The characters never shown as themselves are in one table, :data:`HIDDEN`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import graphviz

#: C0 and C1 controls, DEL, bidirectional controls, line and paragraph separators, lone
#: surrogates and the noncharacters U+FFFE and U+FFFF.
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                    "\ud800-\udfff\ufffe\uffff]")

#: What XML 1.0 cannot carry, plus the backslash that starts a visible escape.
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
    """``text`` on one line: C0 controls and DEL as control pictures, other hidden characters as ``[U+XXXX]``.

    >>> one_line("a\\nb\\tc\\x1b[31m")
    'a␊b␉c␛[31m'
    >>> one_line("\\u202eevil")
    '[U+202E]evil'
    """
    return HIDDEN.sub(_picture, text)


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide characters two, combining and format characters none."""
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
    """``text`` as one line of Markdown showing exactly these characters (specials and entities escaped)."""
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
    """``text`` as LaTeX ``\\text{...}`` that plain pdflatex (with amsmath) compiles: specials escaped,
    Greek letters as math symbols, other non-ASCII as ``[U+XXXX]``, quotes and ``--`` as typed."""
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
    """User text for a plain DOT label, shown as typed: backslashes doubled, ``&`` as ``&amp;``,
    newlines as ``\\n``, tabs as four spaces, :data:`HIDDEN` characters as visible escapes."""
    lines = str(text).replace("\r\n", "\n").replace("\t", "    ").split("\n")
    escaped = (HIDDEN.sub(lambda m: code_escape(m.group()), line) for line in lines)
    return "\\n".join(line.replace("&", "&amp;").replace("\\", "\\\\") for line in escaped)


def dot_quote(text: str) -> str:
    """A DOT identifier or quoted string (labels and style values alike), never HTML-like; after
    :func:`dot_label_text` every typed quote is escaped, so nothing can end the string."""
    return graphviz.quoting.quote(graphviz.nohtml(str(text)))


def xml_text(text: str) -> str:
    """``text`` with what XML 1.0 cannot carry as visible escapes, and the backslash doubled so
    that an escape and a name holding one can be told apart (as GraphML attribute values)."""
    return XML_UNSAFE.sub(lambda m: "\\\\" if m.group() == "\\" else code_escape(m.group()), text)
