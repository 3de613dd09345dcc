"""Evaluation on labelled data: predicting, the evaluation report, the threshold sweep.

Pure: no grpc, no onnxruntime. The predictions come from ``Engine.classify`` (see
``predict``), the same call the gRPC service makes, so the scores and thresholds
measured here are the ones the server answers with; nothing here re-scores.

The data format (``load_labelled``) and the definition of every metric
(``Scorecard``, ``figures``) are in ``router/routing/scorecard.py``, shared with the
server's regression gate (``routing/gate.py``); they are re-exported here.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from router.routing.index import Prediction
from router.routing.intents import UNKNOWN
from router.routing.scorecard import (
    LabelStats,
    Row,
    Scorecard,
    SweepPoint,
    figures,
    load_labelled,
)
from router.routing.scorecard import as_labels as _as_labels
from router.routing.scorecard import point as _point

__all__ = [
    "ConfusedPair",
    "Evaluation",
    "LabelStats",
    "Outcome",
    "Row",
    "Scorecard",
    "SweepPoint",
    "evaluate",
    "grid_decimals",
    "load_labelled",
    "metrics_at",
    "predict",
    "round_threshold",
    "sweep",
    "threshold_grid",
]

#: Progress is shown for at least this many rows, and only on a terminal.
PROGRESS_MIN_ROWS = 200
TOP_CONFUSED = 10

Labels = Sequence[str] | npt.NDArray[np.str_]
Scores = Sequence[float] | npt.NDArray[np.floating]


# ---------------------------------------------------------------------------- data


# ----------------------------------------------------------------------- predicting


class _Answer(Protocol):
    @property
    def predictions(self) -> list[Prediction]: ...

    @property
    def revision(self) -> str: ...


class Classifier(Protocol):
    """What ``predict`` needs: ``router.routing.engine.Engine`` is one."""

    def classify(self, texts: Sequence[str], top_k: int = ...) -> _Answer: ...


def predict(
    classifier: Classifier,
    texts: Sequence[str],
    *,
    top_k: int = 3,
    batch_size: int = 64,
    progress: bool | None = None,
) -> tuple[list[Prediction], str]:
    """Classify ``texts`` through ``classifier.classify`` in batches; the predictions and
    the revision that answered. ``progress=None`` shows a bar on a terminal for
    ``PROGRESS_MIN_ROWS`` rows or more."""
    if progress is None:
        progress = len(texts) >= PROGRESS_MIN_ROWS and sys.stderr.isatty()
    predictions: list[Prediction] = []
    revision: str | None = None
    bar = _progress_bar(len(texts)) if progress else None
    try:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            answer = classifier.classify(batch, top_k)
            if revision is not None and answer.revision != revision:
                raise RuntimeError(
                    f"the intents changed during evaluation ({revision} -> {answer.revision})"
                )
            revision = answer.revision
            predictions.extend(answer.predictions)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    if revision is None:
        raise ValueError("nothing to classify")
    return predictions, revision


class _Bar(Protocol):
    def update(self, n: int) -> object: ...
    def close(self) -> None: ...


def _progress_bar(total: int) -> _Bar | None:
    """A tqdm bar on stderr, or None when tqdm (the ``eval`` extra) is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar: _Bar = tqdm(total=total, unit="rows", desc="classifying", file=sys.stderr, leave=False)
    return bar


# -------------------------------------------------------------------------- metrics


def sweep(
    gold: Labels,
    candidates: Labels,
    scores: Scores,
    thresholds: Scores,
    fixed: Mapping[str, float] | None = None,
) -> list[SweepPoint]:
    """The metrics at each threshold, as the engine would decide: a row is answered with
    its best candidate when ``score >= threshold`` (compared in float32, as the index
    does), else ``unknown``. Rows whose candidate is in ``fixed`` keep that intent's own
    threshold whatever the swept one. Vectorised: one sort, cumulative counts."""
    g = _as_labels(gold)
    c = _as_labels(candidates)
    s = np.asarray(scores, dtype=np.float32)
    t = np.asarray(thresholds, dtype=np.float64)
    if not len(g) == len(c) == len(s):
        raise ValueError("gold, candidates and scores differ in length")
    if len(g) == 0:
        raise ValueError("no rows")
    t32 = t.astype(np.float32)
    unknown = g == UNKNOWN
    hit = c == g
    fixed = fixed or {}
    if fixed:
        own = np.array([fixed.get(str(x), np.nan) for x in c], dtype=np.float32)
        pinned = ~np.isnan(own)
        pinned_known = pinned & (s >= np.where(pinned, own, np.float32(0)))
        pinned_unknown = pinned & ~pinned_known
    else:
        pinned = pinned_known = pinned_unknown = np.zeros(len(g), dtype=bool)
    free = ~pinned
    order = np.argsort(s[free], kind="stable")
    fs, fh, fu = s[free][order], hit[free][order], unknown[free][order]
    hits_below = np.concatenate([[0], np.cumsum(fh)])
    unknown_below = np.concatenate([[0], np.cumsum(fu)])
    # Rows before ``cut`` score below the threshold: they are answered ``unknown``.
    cut = np.searchsorted(fs, t32, side="left")
    answered = (len(fs) - cut) + int(pinned_known.sum())
    hits = (hits_below[-1] - hits_below[cut]) + int((pinned_known & hit).sum())
    unknown_answers = cut + int(pinned_unknown.sum())
    unknown_hits = unknown_below[cut] + int((pinned_unknown & unknown).sum())
    rows, in_scope = len(g), int((~unknown).sum())
    return [
        _point(
            float(t[i]),
            rows=rows,
            in_scope=in_scope,
            answered=int(answered[i]),
            hits=int(hits[i]),
            unknown_answers=int(unknown_answers[i]),
            unknown_hits=int(unknown_hits[i]),
        )
        for i in range(len(t))
    ]


def metrics_at(
    gold: Labels,
    candidates: Labels,
    scores: Scores,
    default: float,
    per_intent: Mapping[str, float] | None = None,
) -> SweepPoint:
    """The metrics with one default threshold and per-intent overrides."""
    return sweep(gold, candidates, scores, [default], per_intent)[0]


def grid_decimals(scores: Scores) -> int:
    """Decimals of the threshold grid for these scores: a step of about a thousandth of
    their range, a power of ten (0.0001 for cosines spread over 0.1 .. 1)."""
    s = np.asarray(scores, dtype=np.float64)
    span = max(float(s.max()) - float(s.min()), 1e-3)
    return max(2, 3 - math.floor(math.log10(span)))


def threshold_grid(scores: Scores) -> npt.NDArray[np.float64]:
    """Candidate thresholds from one step below the lowest score to one step above the
    highest (``grid_decimals``), kept within [-1, 1], the range the intents schema
    accepts. The scale is the data's: whatever the scoring in use produces."""
    s = np.asarray(scores, dtype=np.float64)
    decimals = grid_decimals(s)
    step = 10.0**-decimals
    first = math.floor(float(s.min()) / step) - 1
    last = math.ceil(float(s.max()) / step) + 1
    # Each value is the double nearest its decimal text, so what is written to YAML and
    # read back is exactly the value swept here.
    values = [round_threshold(k * step, decimals) for k in range(first, last + 1)]
    grid = np.array([v for v in values if -1.0 <= v <= 1.0], dtype=np.float64)
    return np.unique(grid)


def round_threshold(value: float, decimals: int) -> float:
    """``value`` rounded to ``decimals``, as the double its decimal text parses to."""
    text = f"{value:.{decimals}f}"
    return 0.0 if float(text) == 0 else float(text)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One evaluated row: the gold label and what the engine answered."""

    text: str
    gold: str
    predicted: str
    candidate: str
    score: float
    threshold: float
    matched_example: str  # the candidate's exemplar closest to the text
    line: int

    @property
    def correct(self) -> bool:
        return self.predicted == self.gold

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ConfusedPair:
    gold: str
    predicted: str
    count: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of one evaluation; ``to_json`` is what ``eval --json`` prints."""

    data: str
    revision: str
    scoring: str
    default_threshold: float
    own_thresholds: Mapping[str, float]  # intents with a threshold of their own
    metrics: Scorecard
    per_intent: tuple[LabelStats, ...]
    confused_pairs: tuple[ConfusedPair, ...]
    outcomes: tuple[Outcome, ...] = field(repr=False)
    model: str = ""  # the model that answered (catalogue name, or custom:<dir>)
    threshold_source: str = ""  # where the thresholds came from (Engine.thresholds_for)

    @property
    def rows(self) -> int:
        return len(self.outcomes)

    @property
    def in_scope_rows(self) -> int:
        return sum(o.gold != UNKNOWN for o in self.outcomes)

    @property
    def errors(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.correct)

    def at_current(self) -> SweepPoint:
        """The decision metrics recomputed from candidates and scores (a cross-check)."""
        return metrics_at(
            [o.gold for o in self.outcomes],
            [o.candidate for o in self.outcomes],
            [o.score for o in self.outcomes],
            self.default_threshold,
            self.own_thresholds,
        )

    def curve(self, thresholds: Sequence[float] | None = None) -> list[SweepPoint]:
        """The metrics if the default threshold were each of ``thresholds`` (intents'
        own thresholds kept)."""
        scores = [o.score for o in self.outcomes]
        grid = threshold_grid(scores) if thresholds is None else thresholds
        return sweep(
            [o.gold for o in self.outcomes],
            [o.candidate for o in self.outcomes],
            scores,
            grid,
            self.own_thresholds,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "data": self.data,
            "rows": self.rows,
            "in_scope_rows": self.in_scope_rows,
            "revision": self.revision,
            "model": self.model,
            "scoring": self.scoring,
            "default_threshold": self.default_threshold,
            "threshold_source": self.threshold_source,
            "own_thresholds": dict(self.own_thresholds),
            **asdict(self.metrics),
            "per_intent": {s.name: s.to_json() for s in self.per_intent},
            "confused_pairs": [asdict(p) for p in self.confused_pairs],
            "errors": [o.to_json() for o in self.errors],
        }


def evaluate(
    rows: Sequence[Row],
    predictions: Sequence[Prediction],
    *,
    labels: Sequence[str],
    revision: str = "",
    scoring: str = "",
    default_threshold: float,
    own_thresholds: Mapping[str, float] | None = None,
    data: str = "",
    model: str = "",
    threshold_source: str = "",
) -> Evaluation:
    """Score ``predictions`` (one per row, in order) against the rows' gold labels.

    ``labels`` are the loaded intent names (``unknown`` is added); every one gets a
    per-intent entry, with ``None`` where it never occurs."""
    if len(rows) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows")
    if not rows:
        raise ValueError("no rows")
    outcomes = tuple(
        Outcome(
            text=row.text,
            gold=row.intent,
            predicted=p.intent,
            candidate=p.candidate,
            score=p.score,
            threshold=p.threshold,
            matched_example=p.alternatives[0].example,
            line=row.line,
        )
        for row, p in zip(rows, predictions, strict=True)
    )
    metrics, stats = figures(
        [o.gold for o in outcomes],
        [o.predicted for o in outcomes],
        [o.candidate for o in outcomes],
        labels,
    )
    pairs = Counter((o.gold, o.predicted) for o in outcomes if not o.correct)
    confused = tuple(
        ConfusedPair(gold=g, predicted=p, count=n)
        for (g, p), n in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:TOP_CONFUSED]
    )
    return Evaluation(
        data=data,
        revision=revision,
        scoring=scoring,
        default_threshold=default_threshold,
        own_thresholds=dict(own_thresholds or {}),
        metrics=metrics,
        per_intent=stats,
        confused_pairs=confused,
        outcomes=outcomes,
        model=model,
        threshold_source=threshold_source,
    )
