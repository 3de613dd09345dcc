"""The exemplar index: an immutable matrix of unit vectors, intent scores, the decision.

Pure numpy: no grpc, no onnxruntime, no I/O. An index is built once from an IntentSet
and the exemplar vectors and never mutated (its arrays are read-only); a reload builds
a new one.

Scoring (``Scoring``), each giving one score per intent in [-1, 1]:

* ``nearest``: cosine to the intent's closest exemplar;
* ``topk_mean``: mean cosine of the intent's k closest exemplars (k = 3 by default;
  an intent with fewer exemplars averages what it has);
* ``centroid``: cosine to the normalised mean of the intent's exemplars;
* ``head``: a softmax-regression head trained on the exemplar vectors at build time
  (head.py) ranks the intents; an intent's score mixes the head's cosine-like logit
  with where the exemplars actually are: 0.5 x logit/scale + 0.25 x the intent's top-3
  cosine mean + 0.25 x the top-5 cosine mean over all exemplars (the winner's score is
  head.py's confidence). With out-of-scope examples (``negatives``), the head has a reject
  class and every score also gets + 0.25 x (logit/scale - reject logit/scale) (head.py).
  See ARCHITECTURE.md for the measurements.

The best-scoring intent wins unless its score is below its threshold (the intent's
own, else the intents' default, else the index default), in which case the answer is
``unknown`` and the best candidate and its score are still reported.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.head import Features, Head, train_head
from router.intents import UNKNOWN, IntentSet
from router.vectors import unit_rows

__all__ = [
    "DEFAULT_THRESHOLD",
    "Alternative",
    "Index",
    "IndexSettings",
    "Prediction",
    "Reason",
    "Scored",
    "Scoring",
]

Matrix = npt.NDArray[np.float32]

#: Used when neither the intent nor the intents file sets a threshold: the head's
#: confidence threshold tuned on the two validation sets we have (CLINC150 val 0.395,
#: the bundled shop intents' val 0.372, both maximising accuracy). Run
#: `intent-router tune --write` on your own labelled data to set yours.
DEFAULT_THRESHOLD = 0.38


class Scoring(enum.StrEnum):
    NEAREST = "nearest"
    TOPK_MEAN = "topk_mean"
    CENTROID = "centroid"
    HEAD = "head"


@dataclass(frozen=True, slots=True)
class IndexSettings:
    scoring: Scoring = Scoring.HEAD
    k: int = 3
    default_threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class Scored:
    """Scores of m queries against every intent."""

    scores: Matrix  # (m, n_intents): compared with thresholds and reported
    rank: Matrix  # (m, n_intents): orders the intents (the head's logits, or ``scores``)
    sims: Matrix  # (m, n_examples): cosine to every exemplar


@dataclass(frozen=True, slots=True)
class Alternative:
    intent: str
    score: float
    example: str  # the intent's exemplar closest to the query


class Reason(enum.StrEnum):
    """Why the answer is what it is."""

    MATCHED = "matched"  # the best candidate reached its threshold
    BELOW_THRESHOLD = "below_threshold"
    NOTHING_WANTED = "nothing_wanted"  # the utterance only refuses things


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str  # UNKNOWN when the best score is below its threshold
    score: float  # the best candidate's score, whatever the decision
    threshold: float  # the threshold applied to the best candidate
    alternatives: tuple[Alternative, ...]  # best first; the best candidate included
    reason: Reason = Reason.MATCHED
    refused: tuple[str, ...] = ()  # intents the customer refused; never candidates

    @property
    def candidate(self) -> str:
        return self.alternatives[0].intent


class Index:
    """Immutable exemplar matrix plus the scoring and decision rule."""

    def __init__(
        self,
        intents: IntentSet,
        vectors: Matrix,
        settings: IndexSettings,
        negatives: Matrix | None = None,
        layers: int = 1,
    ) -> None:
        """``vectors``: one row per example, ``layers`` pooled hidden-state blocks (the last
        block: the sentence vector; ``Encoder.embed``), or unit sentence vectors with
        ``layers=1``. ``negatives``: the same for out-of-scope examples (head scoring only).
        """
        n_examples = intents.example_count
        if vectors.shape[0] != n_examples:
            raise ValueError(f"{vectors.shape[0]} vectors for {n_examples} examples")
        self.intents = intents
        self.settings = settings
        self.names = tuple(i.name for i in intents.intents)
        self.examples = tuple(e for i in intents.intents for e in i.examples)
        counts = np.array([len(i.examples) for i in intents.intents], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._counts = counts
        # Row of each exemplar's intent and its slot within the intent's group.
        self._rows = np.repeat(np.arange(len(counts)), counts)
        self._cols = np.arange(n_examples) - np.repeat(self._offsets, counts)
        self._width = int(counts.max())

        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape[1] % layers:
            raise ValueError(f"rows of {vectors.shape[1]} values do not split into {layers} blocks")
        self._dim = vectors.shape[1] // layers
        matrix = unit_rows(vectors[:, -self._dim :])
        matrix.setflags(write=False)
        self.matrix = matrix
        centroids = unit_rows(
            (np.add.reduceat(matrix, self._offsets, axis=0) / counts[:, None]).astype(np.float32)
        )
        centroids.setflags(write=False)
        self._centroids = centroids

        fallback = (
            intents.default_threshold
            if intents.default_threshold is not None
            else settings.default_threshold
        )
        thresholds = np.array(
            [fallback if i.threshold is None else i.threshold for i in intents.intents],
            dtype=np.float32,
        )
        thresholds.setflags(write=False)
        self.thresholds = thresholds
        self.default_threshold = float(fallback)
        self.head: Head | None = None
        self.features = Features.fit(vectors, layers)
        if settings.scoring is Scoring.HEAD:
            self.head = train_head(
                self.features(vectors),
                self._rows.astype(np.int64),
                len(self.names),
                negatives=None if negatives is None else self.features(negatives),
            )

    @property
    def revision(self) -> str:
        return self.intents.revision

    def scores(self, queries: Matrix) -> Scored:
        """Every intent's score for each query, the ranking key and the exemplar cosines.

        ``queries``: rows shaped like the ``vectors`` the index was built from.
        """
        unit = unit_rows(queries[:, -self._dim :])
        sims = unit @ self.matrix.T
        scoring = self.settings.scoring
        if scoring is Scoring.CENTROID:
            centroid = unit @ self._centroids.T
            return Scored(centroid, centroid, sims)
        grouped = np.full((queries.shape[0], len(self.names), self._width), -np.inf, np.float32)
        grouped[:, self._rows, self._cols] = sims
        if scoring is Scoring.NEAREST:
            nearest = grouped.max(axis=2)
            return Scored(nearest, nearest, sims)
        topk = _topk_mean(grouped, self.settings.k)
        if self.head is None:
            return Scored(topk, topk, sims)
        features = self.features(queries)
        logits = self.head.logits(features)
        k_any = min(self.head.any_k, sims.shape[1])
        near = -np.partition(-sims, k_any - 1, axis=1)[:, :k_any].mean(axis=1, keepdims=True)
        cosine = logits / np.float32(self.head.scale)
        reject = self.head.reject_score(features)
        mixed = self.head.mix_scores(
            cosine, topk, near, None if reject is None else reject[:, None]
        )
        return Scored(mixed, logits, sims)

    def classify(self, queries: Matrix, top_k: int = 3) -> list[Prediction]:
        return self.decide(self.scores(queries), top_k)

    def decide(
        self,
        scored: Scored,
        top_k: int,
        refused: Sequence[Collection[int]] | None = None,
        wants_nothing: Sequence[bool] | None = None,
    ) -> list[Prediction]:
        """Predictions from ``scored``; refused intents are never candidates."""
        return [
            self._decide(
                scored.scores[row],
                scored.rank[row],
                scored.sims[row],
                top_k,
                refused[row] if refused else (),
                bool(wants_nothing[row]) if wants_nothing else False,
            )
            for row in range(scored.scores.shape[0])
        ]

    def _decide(  # noqa: PLR0917 - private; one call site
        self,
        scores: Matrix,
        rank: Matrix,
        sims: Matrix,
        top_k: int,
        refused: Collection[int],
        wants_nothing: bool,
    ) -> Prediction:
        if refused and len(refused) < len(rank):
            rank = rank.copy()
            rank[list(refused)] = -np.inf
        top_k = max(1, min(top_k, len(rank) - len(refused) if refused else len(rank)))
        if top_k < len(rank):
            best = np.argpartition(-rank, top_k - 1)[:top_k]
            best = best[np.argsort(-rank[best], kind="stable")]
        else:
            best = np.argsort(-rank, kind="stable")
        # The classifier's choice first; the runners-up in the order of the scores shown.
        best = np.concatenate([best[:1], best[1:][np.argsort(-scores[best[1:]], kind="stable")]])
        alternatives = tuple(
            Alternative(
                intent=self.names[i],
                score=float(scores[i]),
                example=self._closest_example(int(i), sims),
            )
            for i in best
        )
        winner = int(best[0])
        score = float(scores[winner])
        threshold = float(self.thresholds[winner])
        if wants_nothing:
            reason = Reason.NOTHING_WANTED
        elif score < threshold:
            reason = Reason.BELOW_THRESHOLD
        else:
            reason = Reason.MATCHED
        return Prediction(
            intent=self.names[winner] if reason is Reason.MATCHED else UNKNOWN,
            score=score,
            threshold=threshold,
            alternatives=alternatives,
            reason=reason,
            refused=tuple(self.names[i] for i in sorted(refused)),
        )

    def _closest_example(self, intent: int, sims: Matrix) -> str:
        start = int(self._offsets[intent])
        stop = start + int(self._counts[intent])
        return self.examples[start + int(np.argmax(sims[start:stop]))]


def _topk_mean(grouped: Matrix, k: int) -> Matrix:
    """Mean of each intent's k best cosines; intents with fewer exemplars use what they have."""
    k = min(k, grouped.shape[2])
    top = -np.partition(-grouped, k - 1, axis=2)[:, :, :k]
    valid = np.isfinite(top)
    summed = np.where(valid, top, 0.0).sum(axis=2)
    mean: Matrix = (summed / np.maximum(valid.sum(axis=2), 1)).astype(np.float32)
    return mean
