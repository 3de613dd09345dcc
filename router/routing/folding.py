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
  沒: the Chinese test in traditional characters scored 64.0 in scope against 94.0 for the
  simplified test; folded, 94.0, the same (bench/multilingual.py, section f). The table
  (``t2s.txt``) is OpenCC's ``t2s`` applied to each CJK character alone, written by
  ``scripts/t2s-table``; only one-character results are kept. Phrase conversion is not
  needed: the readers are characters and a model that reads both forms. A text holding
  kana is Japanese, whose kanji are neither form: only its full-width Latin is folded.
* A lone surrogate (U+D800-U+DFFF: half of an emoji, cut by an export that counts UTF-16
  units, and kept by JSON's ``\\ud83d`` escapes or by undecodable bytes in a command line)
  reads as U+FFFD, the replacement character: the tokenizers refuse such a string.
  ``without_lone_surrogates`` does the same for the readers of files, so that what they
  write back (ids, evidence) is text that encodes.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

__all__ = ["FOLDING", "fold", "without_lone_surrogates"]


_TABLE_TEXT = resources.files("router.routing").joinpath("t2s.txt").read_text(encoding="utf-8")


def _load_table(text: str) -> dict[int, str]:
    """The pairs of ``t2s.txt``, chains followed to their end (薴 -> 苧 -> 苎 maps 薴 to
    苎), so that folding a folded text changes nothing."""
    pairs = {line[0]: line[1] for line in text.splitlines() if line and not line.startswith("#")}
    table: dict[int, str] = {}
    for traditional, first in pairs.items():
        end, seen = first, {traditional}
        while end in pairs and end not in seen:
            seen.add(end)
            end = pairs[end]
        if end != traditional:
            table[ord(traditional)] = end
    return table


_TRADITIONAL = _load_table(_TABLE_TEXT)
#: Full-width digits and Latin letters, and the ideographic space; not punctuation
#: (Chinese writes its commas and question marks in full width; the clause rules read them).
_FULL_WIDTH = {
    **{c: chr(c - 0xFEE0) for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                    *range(0xFF41, 0xFF5B))},
    0x3000: " ",
}  # fmt: skip
_SURROGATES = {c: "\ufffd" for c in range(0xD800, 0xE000)}
_LATIN = {**_FULL_WIDTH, **_SURROGATES}
_ALL = {**_LATIN, **_TRADITIONAL}
#: Names the folds in revisions and vector-cache keys: the rules' version and a digest
#: of the table, so that any change to either changes every revision.
_RULES = 2
FOLDING = f"fold{_RULES}:{hashlib.sha256(_TABLE_TEXT.encode('utf-8')).hexdigest()[:12]}"
_FOLDABLE = re.compile(
    "[\u3000\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\ud800-\udfff]"
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")


def fold(text: str) -> str:
    """``text`` as the router reads it (module doc), same length; itself when there is
    nothing to fold."""
    if not _FOLDABLE.search(text):
        return text
    return text.translate(_LATIN if _KANA.search(text) else _ALL)


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (module doc); same length."""
    return _LONE_SURROGATE.sub("\ufffd", text)
