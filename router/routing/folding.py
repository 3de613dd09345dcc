"""Traditional Chinese read as simplified: one character for one, before anything reads a text.

Customers in Taiwan and Hong Kong write 怎麼退款, the bundled exemplars say 怎么退款.
The multilingual model places the two forms apart (the Chinese val set written in
traditional characters: in-scope accuracy 58.2 against 89.9 in simplified), the
lexical overlap sees no shared character, and the negation lexicon (别, 没) misses 別,
沒. Folding every text the router reads, exemplars and messages alike, gives the
traditional set the simplified set's figures (bench/multilingual.py, "traditional").

* The table (``t2s.txt``) is OpenCC's ``t2s`` applied to each CJK character alone,
  written by ``scripts/t2s-table``; only one-character results are kept, so a folded
  text has the length of the original and every offset into it (negation spans,
  ticket evidence) holds for both. Phrase-level conversion is not needed: the readers
  are characters (lexical overlap, negation cues) and a model that reads both forms.
* A text holding kana is Japanese and is left as it is (its kanji are neither form).
* Folding is how the router reads, never what it shows: answers quote the text as
  sent. ``FOLDING`` names the table in revisions and in the vector cache's keys.
"""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["FOLDING", "fold_script"]


def _load_table() -> dict[int, str]:
    text = resources.files("router.routing").joinpath("t2s.txt").read_text(encoding="utf-8")
    table: dict[int, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            table[ord(line[0])] = line[1]
    return table


_TABLE = _load_table()
#: Names this folding (the table's size and content) in revisions and vector-cache keys.
FOLDING = f"t2s:{len(_TABLE)}"
_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")


def fold_script(text: str) -> str:
    """``text`` with traditional characters replaced by their simplified forms, same
    length; unchanged when it holds no ideograph or holds kana (Japanese)."""
    if not _IDEOGRAPH.search(text) or _KANA.search(text):
        return text
    return text.translate(_TABLE)
