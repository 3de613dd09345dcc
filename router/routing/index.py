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
  Why: ARCHITECTURE.md, "Scoring".

With a ``lexical_weight`` w > 0 (the intents' ``defaults.lexical_weight``, else the
model's: ``minilm`` 0.2, ``use-multilingual`` 0.5), every intent's score also takes in its best
lexical overlap with the message, x in [0, 1] (lexical.py: the TF-IDF cosine of
characters and words to the intent's closest exemplar)::

    score = score + w * x * (1 - score)        rank = rank + w * scale * x

Overlap only adds: a message sharing no word with an intent (another language) keeps
its score, and scores stay in [-1, 1]. The head's ranking moves by w * x on its
cosine scale. Why: ARCHITECTURE.md, "Lexical overlap".

The best-scoring intent wins unless its score is below its threshold (the intent's
own, else the intents' default, else the index default, which ``Engine.build`` replaces
by one calibrated from the exemplars: ``with_default_threshold``, calibration.py), in
which case the answer is ``unknown`` and the best candidate and its score are still
reported.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.routing.head import DEFAULT_STEPS, WARM_STEPS, Features, Head, Start, train_head
from router.routing.intents import UNKNOWN, IntentSet
from router.routing.lexical import LexicalIndex
from router.routing.tickets import IntentMatch
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

#: Used when neither the intent nor the intents file sets a threshold, none is
#: calibrated (routing/calibration.py) and the model has no default of its own (a
#: model directory of one's own): set from MiniLM's head thresholds tuned for accuracy
#: on CLINC150 val and the bundled val without lexical overlap, which such a model
#: does not mix in (ARCHITECTURE.md "Threshold semantics").
#: Run `intent-router tune --write` on your own labelled data to set yours.
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
    #: The fallback threshold; None: the model's own default (``Engine.thresholds_for``).
    default_threshold: float | None = None
    #: Read by ``Engine.build``: where no threshold of the intents applies and
    #: ``default_threshold`` is None, a threshold calibrated from the exemplars
    #: (``routing/calibration.py``) replaces the model's default. ``Index`` ignores it.
    calibrate: bool = True
    #: How much lexical overlap counts (module doc). None: the intents'
    #: ``defaults.lexical_weight``, else the model's (``Engine.thresholds_for`` resolves
    #: it; ``Index`` reads None as 0); a number here overrides both (benchmarks sweep it).
    lexical_weight: float | None = None


@dataclass(frozen=True, slots=True)
class Scored:
    """Scores of m queries against every intent."""

    scores: Matrix  # (m, n_intents): compared with thresholds and reported
    rank: Matrix  # (m, n_intents): orders the intents (the head's logits, or ``scores``)
    sims: Matrix  # (m, n_examples): cosine to every exemplar
    closest: npt.NDArray[np.int64]  # (m, n_intents): each intent's exemplar closest to the query


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

    @classmethod
    def of(cls, *, nothing_wanted: bool, score: float, threshold: float) -> Reason:
        """The reason for the best candidate's ``score`` against its ``threshold``."""
        if nothing_wanted:
            return cls.NOTHING_WANTED
        if score < threshold:
            return cls.BELOW_THRESHOLD
        return cls.MATCHED


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str  # UNKNOWN when the best score is below its threshold
    score: float  # the best candidate's score, whatever the decision
    threshold: float  # the threshold applied to the best candidate
    alternatives: tuple[Alternative, ...]  # best first; the best candidate included
    reason: Reason = Reason.MATCHED
    refused: tuple[str, ...] = ()  # intents the customer refused; never candidates
    #: Tickets (``Engine.classify(multi_intent=True)``): every intent asked for, the
    #: answer first; empty when the answer is unknown, and for plain texts.
    matches: tuple[IntentMatch, ...] = ()

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
        *,
        warm_from: Index | None = None,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        """``vectors``: one row per example, ``layers`` pooled hidden-state blocks (the last
        block: the sentence vector; ``TokenGraphEncoder.embed``), or unit sentence vectors with
        ``layers=1``. ``negatives``: the same for out-of-scope examples (head scoring only).
        ``warm_from``: an index whose head this one's starts from (``head.Start``, matched
        by intent name; ``WARM_STEPS``) instead of being trained from the centroids.
        ``on_step``: called before each training step; it may raise to stop the build.
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
        cols = np.arange(n_examples) - np.repeat(self._offsets, counts)
        width = int(counts.max())
        # (n_intents, width) exemplar ids, padded with n_examples: a query's cosines,
        # with -inf appended, gathered through it give every intent's group in one step.
        groups = np.full((len(counts), width), n_examples, dtype=np.int64)
        groups[self._rows, cols] = np.arange(n_examples)
        groups.setflags(write=False)
        self._groups = groups
        self._rows = self._rows.astype(np.int64)
        for array in (self._offsets, self._counts, self._rows):
            array.setflags(write=False)
        self._group_start = np.arange(len(counts), dtype=np.int64) * width

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

        fallback = next(
            t
            for t in (intents.default_threshold, settings.default_threshold, DEFAULT_THRESHOLD)
            if t is not None
        )
        thresholds = np.array(
            [fallback if i.threshold is None else i.threshold for i in intents.intents],
            dtype=np.float32,
        )
        thresholds.setflags(write=False)
        self.thresholds = thresholds
        self.default_threshold = float(fallback)
        self.lexical_weight = float(settings.lexical_weight or 0.0)
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise ValueError(f"lexical_weight {self.lexical_weight} is not in [0, 1]")
        self.lexical = LexicalIndex(self.examples) if self.lexical_weight > 0 else None
        self.head: Head | None = None
        start = None
        if settings.scoring is Scoring.HEAD and warm_from is not None and warm_from.head:
            start = Start.matching(warm_from.head, warm_from.names, self.names)
            if WARM_STEPS == 0:  # the previous head as it is, with the features it reads
                self.head = start.as_is(has_reject=negatives is not None and len(negatives) > 0)
        self.features: Features
        if self.head is not None and warm_from is not None:
            self.features = warm_from.features
        else:
            self.features = Features.fit(vectors, layers)
        if settings.scoring is Scoring.HEAD and self.head is None:
            self.head = train_head(
                self.features(vectors),
                self._rows.astype(np.int64),
                len(self.names),
                negatives=None if negatives is None else self.features(negatives),
                start=start,
                steps=DEFAULT_STEPS if start is None else WARM_STEPS,
                on_step=on_step,
            )

    @property
    def revision(self) -> str:
        return self.intents.revision

    @property
    def scoring(self) -> str:
        """How it scores, for Info and eval: ``head``, or ``head + lexical 0.5``."""
        name = str(self.settings.scoring)
        return f"{name} + lexical {self.lexical_weight:g}" if self.lexical is not None else name

    @property
    def dimension(self) -> int:
        """Values of the sentence vector (the rows' last block)."""
        return int(self._dim)

    @property
    def example_intents(self) -> npt.NDArray[np.int64]:
        """(n_examples,) the intent of each exemplar (exemplars are grouped by intent)."""
        return self._rows

    @property
    def intent_offsets(self) -> npt.NDArray[np.int64]:
        """(n_intents,) each intent's first exemplar."""
        return self._offsets

    @property
    def intent_groups(self) -> npt.NDArray[np.int64]:
        """(n_intents, width) each intent's exemplar ids, padded with n_examples."""
        return self._groups

    def with_default_threshold(self, threshold: float) -> Index:
        """This index with ``threshold`` for every intent without a threshold of its own
        (the head and arrays shared, read-only; ``Engine.build`` gives it a calibrated one)."""
        if self.intents.default_threshold is not None:
            raise ValueError("the intents set a default threshold: it applies")
        other = copy.copy(self)
        thresholds = np.array(
            [threshold if i.threshold is None else i.threshold for i in self.intents.intents],
            dtype=np.float32,
        )
        thresholds.setflags(write=False)
        other.thresholds = thresholds
        other.default_threshold = float(threshold)
        return other

    def scores(self, queries: Matrix, texts: Sequence[str] | None = None) -> Scored:
        """Every intent's score for each query, the ranking key and the exemplar cosines.

        ``queries``: rows shaped like the ``vectors`` the index was built from;
        ``texts``: the words each row was embedded from (refused spans cut), needed when
        the index mixes in lexical overlap (``lexical_weight``).
        """
        scored = self._dense_scores(queries)
        lexical = self.lexical_scores(texts, queries.shape[0])
        if lexical is None:
            return scored
        scores, rank = self.with_lexical(scored.scores, lexical), scored.rank
        if rank is scored.scores:
            rank = scores
        else:  # the head's logits
            assert self.head is not None
            rank = rank + np.float32(self.lexical_weight * self.head.scale) * lexical
        return Scored(scores, rank, scored.sims, scored.closest)

    def lexical_scores(self, texts: Sequence[str] | None, rows: int) -> Matrix | None:
        """(rows, n_intents) each intent's best lexical overlap with each text; None when
        the index mixes in none."""
        if self.lexical is None:
            return None
        if texts is None or len(texts) != rows:
            raise ValueError(
                f"this index mixes in lexical overlap: pass the texts of the {rows} rows"
            )
        n = len(self.examples)
        padded = np.zeros((rows, n + 1), dtype=np.float32)
        padded[:, :n] = self.lexical.similarities(texts)
        best: Matrix = padded[:, self._groups].max(axis=2)
        return best

    def with_lexical(self, scores: Matrix, lexical: Matrix) -> Matrix:
        """``scores`` with ``lexical`` (same shape) mixed in (module doc)."""
        w = np.float32(self.lexical_weight)
        with np.errstate(invalid="ignore"):  # -inf (left out) stays -inf, not nan
            mixed = scores + w * lexical * (np.float32(1) - scores)
        out: Matrix = np.where(np.isneginf(scores), scores, mixed).astype(np.float32)
        return out

    def _dense_scores(self, queries: Matrix) -> Scored:
        # This runs once per request right after the model, which has evicted the CPU
        # caches: every numpy call then costs microseconds of misses, so the steps are
        # few and whole-array (bench/latency.py; ARCHITECTURE.md "Lone requests").
        m, n = queries.shape[0], self.matrix.shape[0]
        unit = unit_rows(queries[:, -self._dim :])
        padded = np.empty((m, n + 1), dtype=np.float32)
        np.matmul(unit, self.matrix.T, out=padded[:, :n])
        padded[:, n] = -np.inf
        sims = padded[:, :n]
        grouped = padded[:, self._groups]  # (m, n_intents, width)
        closest = self._groups.ravel()[self._group_start + grouped.argmax(axis=2)]
        grouped.sort(axis=2)  # each intent's cosines ascending, the -inf padding first
        scoring = self.settings.scoring
        if scoring is Scoring.CENTROID:
            centroid = unit @ self._centroids.T
            return Scored(centroid, centroid, sims, closest)
        if scoring is Scoring.NEAREST:
            nearest = grouped[:, :, -1]
            return Scored(nearest, nearest, sims, closest)
        topk = _topk_mean(grouped, self.settings.k, self._counts)
        if self.head is None:
            return Scored(topk, topk, sims, closest)
        features = self.features(queries)
        logits = self.head.logits(features)
        k_any = min(self.head.any_k, n)
        near = np.partition(sims, n - k_any, axis=1)[:, n - k_any :].sum(axis=1, keepdims=True)
        near *= np.float32(1 / k_any)
        cosine = logits / np.float32(self.head.scale)
        reject = self.head.reject_score(features)
        mixed = self.head.mix_scores(
            cosine, topk, near, None if reject is None else reject[:, None]
        )
        return Scored(mixed, logits, sims, closest)

    def classify(
        self, queries: Matrix, top_k: int = 3, texts: Sequence[str] | None = None
    ) -> list[Prediction]:
        return self.decide(self.scores(queries, texts), top_k)

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
                scored.closest[row],
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
        closest: npt.NDArray[np.int64],
        top_k: int,
        refused: Collection[int],
        wants_nothing: bool,
    ) -> Prediction:
        if refused and len(refused) < len(rank):
            rank = rank.copy()
            rank[list(refused)] = -np.inf
        top_k = max(1, min(top_k, len(rank) - len(refused) if refused else len(rank)))
        best: list[int] = np.argsort(-rank, kind="stable")[:top_k].tolist()
        values: list[float] = scores.tolist()
        # The classifier's choice first; the runners-up in the order of the scores shown.
        best[1:] = sorted(best[1:], key=lambda i: -values[i])
        examples = closest.tolist()
        alternatives = tuple(
            Alternative(intent=self.names[i], score=values[i], example=self.examples[examples[i]])
            for i in best
        )
        winner = best[0]
        score = values[winner]
        threshold = float(self.thresholds[winner])
        reason = Reason.of(nothing_wanted=wants_nothing, score=score, threshold=threshold)
        return Prediction(
            intent=self.names[winner] if reason is Reason.MATCHED else UNKNOWN,
            score=score,
            threshold=threshold,
            alternatives=alternatives,
            reason=reason,
            refused=tuple(self.names[i] for i in sorted(refused)),
        )


def _topk_mean(ascending: Matrix, k: int, counts: npt.NDArray[np.int64]) -> Matrix:
    """Mean of each intent's k best cosines; intents with fewer exemplars use what they have.

    ``ascending``: (m, n_intents, width) each intent's cosines sorted ascending, padded
    with -inf at the front; ``counts``: exemplars per intent.
    """
    k = min(k, ascending.shape[2])
    top = ascending[:, :, -k:]
    if counts.min() >= k:  # the usual case: no padding among the k best
        mean: Matrix = top.sum(axis=2) * np.float32(1 / k)
        return mean
    valid = np.isfinite(top)
    summed = np.where(valid, top, np.float32(0)).sum(axis=2)
    out: Matrix = (summed / np.maximum(valid.sum(axis=2), 1)).astype(np.float32)
    return out
