"""Lexical overlap between messages and exemplars: TF-IDF over characters and words.

Pure numpy; no I/O. ``LexicalIndex`` is built once from an index's exemplar texts and
never mutated; ``LexicalIndex.similarities`` gives the cosine between each message's
TF-IDF vector and each exemplar's, and ``Index.scores`` mixes each intent's best one
into its score with the model's ``lexical_weight`` (index.py; ARCHITECTURE.md,
"Lexical overlap").

Units (``grams``), after NFKC and case folding:

* a run of Han, kana or Hangul characters gives each character and each pair of
  neighbouring characters ("申请退款" -> 申 请 退 款 申请 请退 退款): Chinese has no
  spaces, and most of its words are one or two characters;
* any other run of letters and digits gives one word ("iphone", "a1234"), except a
  number alone: amounts and order numbers say nothing of what is asked ("20" in
  "多扣了我20块" is not the "20" of "my 20% code did not apply").

Weights: sublinear term frequency (1 + log tf) times a smoothed inverse document
frequency over the exemplars (log((1 + n) / (1 + df)) + 1), each vector scaled to unit
length. A unit no exemplar has cannot match anything, but it still counts in the
length of the message's vector (weighted as df = 0): a Chinese message that shares only
"iphone" with English exemplars overlaps them little, not fully.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from router.routing.folding import fold

__all__ = ["MAX_VALUES", "LexicalIndex", "grams"]

Matrix = npt.NDArray[np.float32]

#: Similarities computed at once (messages x exemplars): 32 MB of float64 at most.
MAX_VALUES: Final = 4_000_000

_SCRIPT = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_UNITS = re.compile(rf"[{_SCRIPT}]+|[^\W_{_SCRIPT}]+")
_CHARACTERS = re.compile(rf"[{_SCRIPT}]")


def grams(text: str) -> list[str]:
    """The lexical units of ``text`` (module doc), in order, repeats kept."""
    out: list[str] = []
    for match in _UNITS.finditer(fold(unicodedata.normalize("NFKC", text)).casefold()):
        run = match.group()
        if _CHARACTERS.match(run):
            out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        elif not run.isdigit():
            out.append(run)
    return out


class LexicalIndex:
    """The exemplars' TF-IDF vectors, stored by unit (each unit's exemplars and weights)."""

    def __init__(self, exemplars: Sequence[str]) -> None:
        self.vocabulary: dict[str, int] = {}
        vocabulary = self.vocabulary
        rows: list[int] = []
        ids: list[int] = []
        counts: list[int] = []
        for row, text in enumerate(exemplars):  # units numbered as first met
            for unit, count in Counter(grams(text)).items():
                rows.append(row)
                ids.append(vocabulary.setdefault(unit, len(vocabulary)))
                counts.append(count)
        n = len(exemplars)
        row_of = np.array(rows, dtype=np.int64)
        unit_of = np.array(ids, dtype=np.int64)
        frequency = np.bincount(unit_of, minlength=len(vocabulary))
        self._idf = np.log((1 + n) / (1 + frequency)) + 1.0
        #: A unit no exemplar has (df = 0): it cannot match, but it is part of the text.
        self._unseen_idf = math.log(1 + n) + 1
        weight = (1.0 + np.log(np.array(counts, dtype=np.float64))) * self._idf[unit_of]
        norms = np.sqrt(np.bincount(row_of, weights=weight * weight, minlength=n))
        weight /= norms[row_of]
        order = np.argsort(unit_of, kind="stable")  # by unit, exemplars ascending within
        self._starts = np.concatenate([[0], np.cumsum(frequency)]).astype(np.int64)
        self._exemplars = row_of[order]
        self._values = weight[order]
        self.size = n
        for array in (self._idf, self._starts, self._exemplars, self._values):
            array.setflags(write=False)

    def _weights(
        self, counts: Counter[str]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """A text's known units and their TF-IDF weights, scaled as if the text's vector
        had unit length with its unknown units in it (weighted as units of no exemplar)."""
        known = [(self.vocabulary[u], c) for u, c in counts.items() if u in self.vocabulary]
        if not known:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        ids = np.array([i for i, _ in known], dtype=np.int64)
        tf = np.array([c for _, c in known], dtype=np.float64)
        weights = (1.0 + np.log(tf)) * self._idf[ids]
        unknown = np.array(
            [c for u, c in counts.items() if u not in self.vocabulary], dtype=np.float64
        )
        norm_squared = float(weights @ weights)
        if len(unknown):
            norm_squared += float(np.sum(((1.0 + np.log(unknown)) * self._unseen_idf) ** 2))
        weights /= math.sqrt(norm_squared)
        return ids, weights

    def similarities(self, texts: Sequence[str]) -> Matrix:
        """(len(texts), exemplars) cosine between each text's TF-IDF vector and each
        exemplar's; 0 where they share no unit."""
        out = np.zeros((len(texts), self.size), dtype=np.float32)
        if not self.size:
            return out
        step = max(1, MAX_VALUES // self.size)
        for begin in range(0, len(texts), step):
            out[begin : begin + step] = self._chunk(texts[begin : begin + step])
        return out

    def _chunk(self, texts: Sequence[str]) -> Matrix:
        rows: list[npt.NDArray[np.int64]] = []
        ids: list[npt.NDArray[np.int64]] = []
        weights: list[npt.NDArray[np.float64]] = []
        for row, text in enumerate(texts):
            unit_ids, unit_weights = self._weights(Counter(grams(text)))
            rows.append(np.full(len(unit_ids), row, dtype=np.int64))
            ids.append(unit_ids)
            weights.append(unit_weights)
        row_of = np.concatenate(rows) if rows else np.empty(0, np.int64)
        unit = np.concatenate(ids) if ids else np.empty(0, np.int64)
        weight = np.concatenate(weights) if weights else np.empty(0, np.float64)
        # Every (text, unit) pair meets the exemplars holding the unit: gather the
        # postings of all pairs at once, then sum the products per (text, exemplar).
        begin, end = self._starts[unit], self._starts[unit + 1]
        lengths = end - begin
        total = int(lengths.sum())
        if not total:
            return np.zeros((len(texts), self.size), dtype=np.float32)
        first = np.repeat(begin - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        postings = first + np.arange(total, dtype=np.int64)
        cells = np.repeat(row_of, lengths) * self.size + self._exemplars[postings]
        products = np.repeat(weight, lengths) * self._values[postings]
        summed = np.bincount(cells, weights=products, minlength=len(texts) * self.size)
        return summed.reshape(len(texts), self.size).astype(np.float32)
