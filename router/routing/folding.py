"""How the router reads a text: full-width Latin as ASCII, traditional Chinese as simplified.

Both folds map one code point to one, so a folded text has the length of the original
and every offset into it (negation spans, ticket evidence) holds for both. Every reader
folds, exemplars and messages alike: the text the encoder embeds, the lexical units and
the negation cues. Folding is how the router reads, never what it shows: answers quote
the text as sent. ``FOLDING`` names the folds in revisions and in the vector cache's keys.

* Full-width digits and Latin letters (U+FF10-U+FF5A) and the ideographic space, as
  Chinese and Japanese input methods type them: "I want a refund" typed so was [UNK]
  tokens to MiniLM and routed `unknown` (0.21). Full-width punctuation stays: Chinese
  writes its commas and question marks so, and the clause rules read them.
* Traditional Chinese characters: customers in Taiwan and Hong Kong write 怎麼退款, the
  bundled exemplars say 怎么退款. The multilingual model places the two forms apart, the
  lexical overlap sees no shared character and the negation lexicon (别, 没) misses 別,
  沒: the Chinese test as typed in Taiwan scored 64.0 in scope against 94.0 for the
  simplified test; folded, 91.5 (bench/multilingual.py, section f). The table
  (``t2s.txt``) is OpenCC's ``t2s`` applied to each CJK character alone, written by
  ``scripts/t2s-table``; only one-character results are kept. Phrase conversion is not
  needed: the readers are characters and a model that reads both forms. A text holding
  kana is Japanese, whose kanji are neither form: only its full-width Latin is folded.
"""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["FOLDING", "fold"]


def _load_table() -> dict[int, str]:
    text = resources.files("router.routing").joinpath("t2s.txt").read_text(encoding="utf-8")
    table: dict[int, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            table[ord(line[0])] = line[1]
    return table


_TRADITIONAL = _load_table()
#: Full-width digits and Latin letters, and the ideographic space; not punctuation
#: (Chinese writes its commas and question marks in full width; the clause rules read them).
_FULL_WIDTH = {
    **{c: chr(c - 0xFEE0) for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                    *range(0xFF41, 0xFF5B))},
    0x3000: " ",
}  # fmt: skip
_ALL = {**_FULL_WIDTH, **_TRADITIONAL}
#: Names the folds (the traditional table's size) in revisions and vector-cache keys.
FOLDING = f"fw+t2s:{len(_TRADITIONAL)}"
_FOLDABLE = re.compile(
    "[\u3000\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")


def fold(text: str) -> str:
    """``text`` as the router reads it (module doc), same length; itself when there is
    nothing to fold."""
    if not _FOLDABLE.search(text):
        return text
    return text.translate(_FULL_WIDTH if _KANA.search(text) else _ALL)
