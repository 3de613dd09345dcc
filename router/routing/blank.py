"""Whether a text holds anything to route.

``str.strip()`` leaves zero-width characters (U+200B, joiners, U+2060, a byte-order
mark) and control characters, so a message made only of them used to pass as text and
be routed on nothing. A text is blank when every character is white space, a format
character (Unicode category Cf, except the few that are drawn), a control (Cc) or a
filler that shows nothing (Hangul fillers, variation selectors, the blank Braille
pattern). The service, triage, the intents and labelled data all ask this.
"""

from __future__ import annotations

import unicodedata

__all__ = ["is_blank"]

_INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})
#: Letters and marks that show nothing: the combining grapheme joiner, the Hangul
#: fillers, the Mongolian vowel separator, the blank Braille pattern, variation selectors.
_FILLERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
#: Format characters that are drawn (prepended concatenation marks: Arabic number sign,
#: end of ayah, Syriac abbreviation mark, Kaithi number signs).
_SHOWN = frozenset(
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd"
)


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: only white space, format and control characters
    and the invisible fillers. Stops at the first visible character."""
    return all(
        c.isspace() or c in _FILLERS or (unicodedata.category(c) in _INVISIBLE and c not in _SHOWN)
        for c in text
    )
