"""URLs as they may be shown: a password in one never reaches a message or a log line.

A password may hold ``@``, ``/`` or ``:`` (FFmpeg opens ``rtsp://admin:pa/ss@word@cam/`` as it is,
and a user may type one unencoded into a PostgreSQL URL), so the user information runs up to the
*last* ``@`` before any white space: an ``@`` later in a path makes more of the URL masked, never
less.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

# scheme:// then user : password @ (greedy: up to the last @ of the word)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s:/@]*):(\S*)@")
_PARAMETER = re.compile(r"((?:^|[?&\s])password=)[^&\s]*", re.IGNORECASE)


def mask_url(text: str) -> str:
    """``text`` with every URL password (and any ``password=`` parameter) replaced by ``***``."""
    text = _USERINFO.sub(r"\1\2:***@", str(text))
    return _PARAMETER.sub(r"\1***", text)


def url_passwords(text: str) -> list[str]:
    """The passwords in ``text``'s URLs, as written and percent-decoded (to mask them in
    messages of libraries that quote them)."""
    found = {m.group(3) for m in _USERINFO.finditer(str(text)) if m.group(3)}
    found |= {m.group(0).split("=", 1)[1] for m in _PARAMETER.finditer(str(text))}
    found |= {unquote(p) for p in found}
    return sorted((p for p in found if p and p != "***"), key=len, reverse=True)
