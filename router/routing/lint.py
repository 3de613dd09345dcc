"""Lint an intent set: what in the examples will make routing worse, found before it does.

Works on a built snapshot (the exemplars' unit sentence vectors, ``Index.matrix``), so
it needs the model but no labelled data. Findings, each a warning:

* ``duplicate``: the same example (case, spaces and punctuation aside) under two intents;
* ``near_duplicate``: two examples of different intents with cosine >= ``NEAR``;
* ``too_few``: an intent with fewer than ``min_examples`` examples;
* ``closer_elsewhere``: an example whose leave-one-out nearest intent (mean of the three
  closest other examples of each intent) is another intent, by more than ``MARGIN``;
* ``confusable``: a pair of intents whose examples are routed to each other that way
  for at least ``CONFUSABLE`` of the smaller intent's examples;
* ``out_of_scope_answered``: an ``out_of_scope:`` example that the index would answer
  with an intent (its score reaches the threshold).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from router.routing.engine import Engine, Snapshot
from router.routing.intents import IntentSet

__all__ = ["CONFUSABLE", "MARGIN", "MIN_EXAMPLES", "NEAR", "Finding", "lint", "lint_snapshot"]

#: Cosine from which two examples of different intents count as nearly the same.
NEAR = 0.95
#: Share of the smaller intent's examples routed to the other that makes a pair confusable.
CONFUSABLE = 0.2
#: How much closer (mean cosine) another intent must be for ``closer_elsewhere``.
MARGIN = 0.05
MIN_EXAMPLES = 5
_LOO_K = 3
_CHUNK = 1024  # rows of the similarity matrix at a time (bounds memory at chunk x n)
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    message: str
    intents: tuple[str, ...]
    where: str  # "file:line:col" of the example (or first intent) concerned, or ""

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}" if self.where else self.message

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "intents": list(self.intents)}


def lint(engine: Engine, intents: IntentSet, *, min_examples: int = MIN_EXAMPLES) -> list[Finding]:
    """Build ``intents`` with ``engine`` (nothing is swapped) and lint the result."""
    return lint_snapshot(engine, engine.build(intents), min_examples=min_examples)


def lint_snapshot(
    engine: Engine, snapshot: Snapshot, *, min_examples: int = MIN_EXAMPLES
) -> list[Finding]:
    intents = snapshot.intents
    where = {i.name: i.source for i in intents.intents}
    names = [i.name for i in intents.intents]
    labels = np.repeat(np.arange(len(names)), [len(i.examples) for i in intents.intents])
    examples = [e for i in intents.intents for e in i.examples]
    sources = [i.example_source(k) for i in intents.intents for k in range(len(i.examples))]
    findings = _duplicates(names, labels, examples, sources)
    findings += [
        Finding(
            "too_few",
            f"{i.name} has {len(i.examples)} example{'' if len(i.examples) == 1 else 's'}; "
            f"{min_examples} or more route better",
            (i.name,),
            where[i.name],
        )
        for i in intents.intents
        if len(i.examples) < min_examples
    ]
    matrix = snapshot.index.matrix
    findings += _neighbours(names, labels, examples, matrix, where=where, sources=sources)
    if intents.out_of_scope:
        predictions = engine_classify(engine, snapshot, list(intents.out_of_scope))
        for k, (text, prediction) in enumerate(zip(intents.out_of_scope, predictions, strict=True)):
            if prediction != "unknown":
                findings.append(
                    Finding(
                        "out_of_scope_answered",
                        f"out_of_scope example {text!r} is answered as {prediction}",
                        (prediction,),
                        _at(intents.out_of_scope_sources, k, where[prediction]),
                    )
                )
    return findings


def engine_classify(engine: Engine, snapshot: Snapshot, texts: list[str]) -> list[str]:
    """What ``snapshot`` answers for ``texts`` (the engine's current snapshot untouched)."""
    probe = Engine(engine.encoder, engine.settings, engine.cache, engine.negation)
    probe.swap(snapshot)
    return [p.intent for p in probe.classify(texts).predictions]


def _at(sources: tuple[str, ...], index: int, fallback: str) -> str:
    return sources[index] if index < len(sources) else fallback


def _normal(text: str) -> str:
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _duplicates(
    names: list[str], labels: npt.NDArray[np.int64], examples: list[str], sources: list[str]
) -> list[Finding]:
    owners: dict[str, dict[int, str]] = {}  # normal form -> intent -> where it first is
    for label, text, at in zip(labels.tolist(), examples, sources, strict=True):
        owners.setdefault(_normal(text), {}).setdefault(label, at)
    out = []
    for text, found in owners.items():
        if len(found) > 1:
            pair = tuple(names[i] for i in sorted(found))
            places = [found[i] for i in sorted(found)]
            out.append(
                Finding(
                    "duplicate",
                    f"the same example {text!r} is under {' and '.join(pair)} "
                    f"(also at {', '.join(places[1:])})",
                    pair,
                    places[0],
                )
            )
    return out


def _neighbours(
    names: list[str],
    labels: npt.NDArray[np.int64],
    examples: list[str],
    matrix: npt.NDArray[np.float32],
    *,
    where: dict[str, str],
    sources: list[str],
) -> list[Finding]:
    n, n_intents = len(examples), len(names)
    counts = np.bincount(labels, minlength=n_intents)
    out: list[Finding] = []
    routed = np.empty(n, dtype=np.int64)
    near_pairs: set[tuple[int, int]] = set()
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        sims = matrix[start:stop] @ matrix.T  # (chunk, n)
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf  # leave each example out
        scores = np.full((stop - start, n_intents), -np.inf, dtype=np.float32)
        for intent in range(n_intents):
            group = sims[:, labels == intent]
            k = min(_LOO_K, group.shape[1])
            if k == 0:
                continue
            top = -np.partition(-group, k - 1, axis=1)[:, :k]
            finite = np.isfinite(top)
            scores[:, intent] = np.where(finite, top, 0).sum(1) / np.maximum(finite.sum(1), 1)
            scores[finite.sum(1) == 0, intent] = -np.inf
        best = scores.argmax(1)
        mine = labels[start:stop]
        # another intent only when clearly closer: near ties are the model's noise
        with np.errstate(invalid="ignore"):  # -inf - -inf: an intent with no other example
            clear = scores[rows, best] - scores[rows, mine] > MARGIN
        routed[start:stop] = np.where(clear, best, mine)
        close = np.argwhere(sims >= NEAR)
        for row, col in close.tolist():
            a, b = start + row, col
            if labels[a] != labels[b] and a < b:
                near_pairs.add((a, b))
    for a, b in sorted(near_pairs):
        pair = (names[labels[a]], names[labels[b]])
        out.append(
            Finding(
                "near_duplicate",
                f"{examples[a]!r} ({pair[0]}) and {examples[b]!r} ({pair[1]}, at {sources[b]}) "
                "are nearly the same",
                pair,
                sources[a],
            )
        )
    confusion: Counter[tuple[int, int]] = Counter()
    for index in np.flatnonzero(routed != labels).tolist():
        own, other = int(labels[index]), int(routed[index])
        if counts[own] > 1:  # a lone example has no others of its own to be close to
            confusion[(own, other)] += 1
            out.append(
                Finding(
                    "closer_elsewhere",
                    f"{examples[index]!r} of {names[own]} is closer to {names[other]}",
                    (names[own], names[other]),
                    sources[index],
                )
            )
    pairs: Counter[tuple[int, int]] = Counter()
    for (a, b), count in confusion.items():
        pairs[(min(a, b), max(a, b))] += count
    for (a, b), count in sorted(pairs.items()):
        if count >= CONFUSABLE * min(counts[a], counts[b]):
            out.append(
                Finding(
                    "confusable",
                    f"{names[a]} and {names[b]}: {count} of their examples are closer to the "
                    "other intent",
                    (names[a], names[b]),
                    where[names[a]],
                )
            )
    return out
