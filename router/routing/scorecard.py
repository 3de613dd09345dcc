"""Labelled rows and the figures measured on them: the one definition of each metric.

``eval`` (``quality/evaluate.py``) and the regression gate (``routing/gate.py``) both
read labelled data with ``load_labelled`` and measure it with ``figures``; the gate
runs inside the server, which may not import ``quality``, so the definitions live here.

Data: one JSON object a line, ``{"text": ..., "intent": ...}``; ``"unknown"`` marks an
out-of-scope row; other keys are ignored; blank lines are skipped.

Definitions (``unknown`` is a label like any other unless said otherwise):

* ``accuracy``: predicted == gold, over every row;
* ``in_scope_accuracy``: predicted == gold over rows whose gold is an intent;
* ``in_scope_top1``: the best candidate == gold over those rows, whatever the threshold;
* ``in_scope_precision``: of the answers naming an intent, the share that are right;
* ``unknown_recall`` / ``unknown_precision`` / ``unknown_f1``: for the label ``unknown``;
* ``macro_f1``: mean F1 over the labels (intents and ``unknown``) that occur as gold or
  as a prediction; a label that occurs in neither has no F1 and is left out.

A metric whose denominator is zero is ``None`` (``null`` in JSON), never 0.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import numpy.typing as npt

from router.errors import DataError, Problem
from router.routing.blank import is_blank
from router.routing.folding import without_lone_surrogates
from router.routing.intents import UNKNOWN

__all__ = [
    "FIGURES",
    "LabelStats",
    "Row",
    "Scorecard",
    "SweepPoint",
    "as_labels",
    "f1",
    "figures",
    "load_labelled",
    "point",
    "ratio",
]


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    intent: str  # gold label: an intent name or UNKNOWN
    line: int  # 1-based line in the data file


def read_data_file(path: Path) -> bytes:
    """The bytes of a data file; DataError naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError([Problem(str(path), None, None, "", f"cannot read: {exc}")]) from exc


def jsonl_records(raw: bytes, where: str, problems: list[Problem]) -> Iterator[tuple[int, object]]:
    """The JSON value on each non-blank line of ``raw`` with its line number, read as it
    is iterated; a line that is not UTF-8 or not JSON adds a Problem at ``where``:line to
    ``problems`` instead."""
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(where, number, None, "", f"not UTF-8: {exc.reason}"))
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(where, number, exc.colno, "", f"malformed JSON: {exc.msg}"))
            continue
        yield number, record


def load_labelled(path: Path | str, labels: Collection[str] | None = None) -> list[Row]:
    """Read a JSONL file of labelled rows; raise DataError naming ``file:line`` for each
    malformed line and, when ``labels`` (the loaded intent names) is given, for each
    label that is neither one of them nor ``unknown``."""
    path = Path(path)
    where = str(path)
    raw = read_data_file(path)
    rows: list[Row] = []
    problems: list[Problem] = []
    for number, record in jsonl_records(raw, where, problems):
        if not isinstance(record, dict):
            problems.append(Problem(where, number, None, "", "must be a JSON object"))
            continue
        text = record.get("text")
        intent = record.get("intent")
        ok = True
        if not isinstance(text, str) or is_blank(text):
            problems.append(Problem(where, number, None, "text", "required: a non-blank string"))
            ok = False
        if not isinstance(intent, str) or not intent:
            problems.append(Problem(where, number, None, "intent", "required: a string"))
            ok = False
        elif labels is not None and intent != UNKNOWN and intent not in labels:
            problems.append(
                Problem(
                    where,
                    number,
                    None,
                    "intent",
                    f"{intent!r} is neither a loaded intent nor {UNKNOWN!r}",
                )
            )
            ok = False
        if ok:
            assert isinstance(text, str) and isinstance(intent, str)
            rows.append(Row(text=without_lone_surrogates(text), intent=intent, line=number))
    if problems:
        raise DataError(problems)
    if not rows:
        raise DataError([Problem(where, None, None, "", "no rows")])
    return rows


# -------------------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """The decision metrics at one threshold (or one set of thresholds)."""

    threshold: float
    accuracy: float
    in_scope_accuracy: float | None
    in_scope_precision: float | None
    in_scope_answered: float | None  # in-scope rows answered with an intent, right or wrong
    unknown_recall: float | None
    unknown_precision: float | None
    unknown_f1: float | None
    correct: int  # rows whose prediction equals the gold label
    answered: int  # rows answered with an intent (not unknown)
    rows: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LabelStats:
    name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int  # rows with this gold label
    predicted: int  # rows predicted as this label

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "name"}


@dataclass(frozen=True, slots=True)
class Scorecard:
    accuracy: float
    in_scope_accuracy: float | None
    in_scope_top1: float | None
    in_scope_precision: float | None
    unknown_recall: float | None
    unknown_precision: float | None
    unknown_f1: float | None
    macro_f1: float | None

    def get(self, name: str) -> float | None:
        """The figure called ``name`` (one of ``FIGURES``)."""
        if name not in FIGURES:
            raise KeyError(name)
        value: float | None = getattr(self, name)
        return value


#: The names of the figures a ``Scorecard`` holds, in order.
FIGURES: tuple[str, ...] = tuple(f.name for f in fields(Scorecard))


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None and recall is None:
        return None
    p, r = precision or 0.0, recall or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def point(
    threshold: float,
    *,
    rows: int,
    in_scope: int,
    answered: int,
    hits: int,
    unknown_answers: int,
    unknown_hits: int,
) -> SweepPoint:
    """Metrics from counts. ``hits``: answers naming the gold intent; ``unknown_hits``:
    unknown answers to out-of-scope rows."""
    unknown_gold = rows - in_scope
    precision = ratio(unknown_hits, unknown_answers)
    recall = ratio(unknown_hits, unknown_gold)
    return SweepPoint(
        threshold=threshold,
        accuracy=(hits + unknown_hits) / rows,
        in_scope_accuracy=ratio(hits, in_scope),
        in_scope_precision=ratio(hits, answered),
        # out-of-scope rows are answered unknown (a hit) or with an intent
        in_scope_answered=ratio(answered - (unknown_gold - unknown_hits), in_scope),
        unknown_recall=recall,
        unknown_precision=precision,
        unknown_f1=f1(precision, recall),
        correct=hits + unknown_hits,
        answered=answered,
        rows=rows,
    )


def as_labels(values: Iterable[str]) -> npt.NDArray[np.str_]:
    return np.array(list(values), dtype=np.str_)


def figures(
    gold: Sequence[str],
    predicted: Sequence[str],
    candidate: Sequence[str],
    labels: Sequence[str],
) -> tuple[Scorecard, tuple[LabelStats, ...]]:
    """The scorecard of one set of answers, and each label's precision and recall.

    One entry per row in each sequence: the gold label, the answer (an intent or
    ``unknown``) and the best candidate whatever the threshold. ``labels`` are the
    loaded intent names (``unknown`` is added); every one gets a ``LabelStats``, with
    ``None`` where it never occurs."""
    if not len(gold) == len(predicted) == len(candidate):
        raise ValueError("gold, predicted and candidate differ in length")
    if not gold:
        raise ValueError("no rows")
    g, p, c = as_labels(gold), as_labels(predicted), as_labels(candidate)
    unknown_gold = g == UNKNOWN
    unknown_pred = p == UNKNOWN
    at = point(
        0.0,
        rows=len(g),
        in_scope=int((~unknown_gold).sum()),
        answered=int((~unknown_pred).sum()),
        hits=int(((p == g) & ~unknown_pred).sum()),
        unknown_answers=int(unknown_pred.sum()),
        unknown_hits=int((unknown_pred & unknown_gold).sum()),
    )
    stats: list[LabelStats] = []
    for name in [*dict.fromkeys(labels), UNKNOWN]:
        is_gold, is_pred = g == name, p == name
        tp = int((is_gold & is_pred).sum())
        support, n_pred = int(is_gold.sum()), int(is_pred.sum())
        precision, recall = ratio(tp, n_pred), ratio(tp, support)
        stats.append(LabelStats(name, precision, recall, f1(precision, recall), support, n_pred))
    f1s = [s.f1 for s in stats if s.f1 is not None]
    card = Scorecard(
        accuracy=at.accuracy,
        in_scope_accuracy=at.in_scope_accuracy,
        in_scope_top1=ratio(int((c == g).sum()), int((~unknown_gold).sum())),
        in_scope_precision=at.in_scope_precision,
        unknown_recall=at.unknown_recall,
        unknown_precision=at.unknown_precision,
        unknown_f1=at.unknown_f1,
        macro_f1=sum(f1s) / len(f1s) if f1s else None,
    )
    return card, tuple(stats)
