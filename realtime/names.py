"""A person's name: the one rule every command (enroll, remove, the window's e key) applies.

Names are data, shown on screen and in terminals, so characters that steer a terminal or the
text direction are refused; names are stored in Unicode NFC and stripped, so ``José`` typed
either way, or `` ann `` with spaces, is one person everywhere.
"""
from __future__ import annotations

import unicodedata

from realtime.errors import UserError, shorten

# The longest name a person may have (characters); the name prompt of the live window stops here too.
MAX_NAME_LENGTH = 64

# Bidirectional embeddings, overrides and isolates, and the invisible direction marks: they
# reorder what a terminal or the overlay shows (a name can display as another one).
BIDI_CONTROLS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def refused_character(c: str) -> bool:
    """C0 and C1 controls (an 8-bit CSI reaches a terminal raw), DEL, line and paragraph
    separators, bidi controls and lone surrogates (undecodable bytes from the command line)."""
    category = unicodedata.category(c)
    return category in ("Cc", "Zl", "Zp", "Cs") or c in BIDI_CONTROLS


def check_name(name: str) -> str:
    """The name as stored (NFC, stripped), or a one-line UserError saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("a person's name must not be empty: give a name, e.g. \"Ann Lee\"")
    bad = next((c for c in name if refused_character(c)), None)
    if bad is not None:
        raise UserError(f"name {shorten(name, 40)} contains control characters (U+{ord(bad):04X}): "
                        f"use printable characters only")
    name = unicodedata.normalize("NFC", name).strip()
    if len(name) > MAX_NAME_LENGTH:
        raise UserError(f"name {shorten(name, 20)} is {len(name)} characters long: use at most {MAX_NAME_LENGTH}")
    return name
