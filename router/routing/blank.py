"""Whether a text holds anything to route.

``str.strip()`` leaves zero-width characters (U+200B, joiners, U+2060, a byte-order
mark) and control characters, so a message made only of them used to pass as text and
be routed on nothing. A text is blank when every character is white space, a format
character (Unicode category Cf) or a control (Cc).
"""

from __future__ import annotations

import unicodedata

__all__ = ["is_blank"]

_INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: only white space, format and control characters.
    Stops at the first visible character."""
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)
