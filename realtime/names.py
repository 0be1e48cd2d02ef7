"""A person's name: the one rule every command (enroll, remove, the window's e key) applies.

Names are data, shown on screen and in terminals, so characters that steer a terminal or the
text direction are refused, and so are invisible ones (a zero-width space would make ``Ann``
and ``Ann``+U+200B two people who look the same, a Hangul filler a name that looks empty);
names are stored in Unicode NFC and stripped, so ``José`` typed either way, or `` ann `` with
spaces, is one person everywhere. What another program put in a gallery is printed through
:func:`printable`, which spells such characters out (``\\x1b``, ``\\u200b``).
"""
from __future__ import annotations

import unicodedata

from realtime.errors import UserError, shorten

# The longest name a person may have (characters); the name prompt of the live window stops here too.
MAX_NAME_LENGTH = 64

# Bidirectional embeddings, overrides and isolates, and the invisible direction marks: they
# reorder what a terminal or the overlay shows (a name can display as another one).
BIDI_CONTROLS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): drawn as nothing.
IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
             (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
             (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
             (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
# Blank but not ignorable: a name of these alone looks empty.
BLANK = frozenset("\u2800\u3164\u115f\u1160\uffa0")
# Joiners that scripts need (Persian ZWNJ, Indic and emoji ZWJ sequences): allowed between two
# visible characters when one of them is not Latin, Greek or Cyrillic (where they would only hide).
JOINERS = frozenset("\u200c\u200d")
# Variation selectors pick a glyph's form (an emoji's colour presentation): allowed after a visible character.
SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
_JOINED_SCRIPTS_FROM = 0x0590          # Hebrew onwards: Arabic, the Indic scripts, CJK, emoji


def _in(code: int, ranges) -> bool:
    return any(low <= code <= high for low, high in ranges)


def refused_character(c: str) -> bool:
    """C0 and C1 controls (an 8-bit CSI reaches a terminal raw), DEL, line and paragraph
    separators, bidi controls and lone surrogates (undecodable bytes from the command line)."""
    category = unicodedata.category(c)
    return category in ("Cc", "Zl", "Zp", "Cs") or c in BIDI_CONTROLS


def invisible(c: str) -> bool:
    """Format characters and default-ignorable code points: nothing shows where they are."""
    return unicodedata.category(c) == "Cf" or _in(ord(c), IGNORABLE) or _in(ord(c), SELECTORS)


def _visible(c: str) -> bool:
    return not (invisible(c) or refused_character(c) or c.isspace() or c in BLANK)


def _allowed_invisible(text: str, i: int) -> bool:
    """A joiner between two visible characters of a script that needs it, or a variation selector
    after a visible character (or after another selector's base)."""
    c = text[i]
    if c in JOINERS:
        if 0 < i < len(text) - 1 and _visible(text[i - 1]) and _visible(text[i + 1]):
            return max(ord(text[i - 1]), ord(text[i + 1])) >= _JOINED_SCRIPTS_FROM
        return False
    if _in(ord(c), SELECTORS):
        return i > 0 and _visible(text[i - 1])
    return False


def check_name(name: str) -> str:
    """The name as stored (NFC, stripped), or a one-line UserError saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("a person's name must not be empty: give a name, e.g. \"Ann Lee\"")
    bad = next((c for c in name if refused_character(c)), None)
    if bad is not None:
        raise UserError(f"name {printable(shorten(name, 40))} contains control characters (U+{ord(bad):04X}): "
                        f"use printable characters only")
    name = unicodedata.normalize("NFC", name).strip()
    hidden = next((c for i, c in enumerate(name) if invisible(c) and not _allowed_invisible(name, i)), None)
    if hidden is not None:
        raise UserError(f"name {printable(shorten(name, 40))} contains an invisible character "
                        f"(U+{ord(hidden):04X} {unicodedata.name(hidden, 'format character')}): type the name "
                        f"without it (two names that look the same must be one person)")
    if not any(_visible(c) for c in name):
        raise UserError(f"name {printable(shorten(name, 40))} shows nothing (only blank characters): give a "
                        f"name, e.g. \"Ann Lee\"")
    if len(name) > MAX_NAME_LENGTH:
        raise UserError(f"name {shorten(name, 20)} is {len(name)} characters long: use at most {MAX_NAME_LENGTH}")
    return name


def printable(text: str, keep: str = "") -> str:
    """``text`` safe to print on a terminal: controls, bidi controls and invisible characters
    (other than those a name may hold) spelled out as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``;
    the characters of ``keep`` stay (a newline inside a quoted CSV field)."""
    out = []
    for i, c in enumerate(text):
        if c not in keep and (refused_character(c) or (invisible(c) and not _allowed_invisible(text, i))):
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(c)
    return "".join(out)
