"""A threshold calibrated from the exemplars, for intents that no tuned threshold covers.

Pure numpy; no I/O. ``Engine.build`` calls ``calibrate`` when neither the intent nor the
intents' ``defaults.threshold`` (for the serving model) gives a threshold; the result
replaces the model's fixed default there (ARCHITECTURE.md, "Threshold semantics").

Why: the score scale moves with the intent set (how many exemplars an intent has, how
close the intents are to each other, the model), so one fixed default answers
``unknown`` to good matches in a small file and answers out-of-scope messages in
another. Without labelled data the exemplars stand in for what a threshold has to
refuse:

* **pseudo-negatives**: every exemplar scored as if its own intent were not in the
  file (leave one intent out): its best score among the *other* intents. It is an
  out-of-scope message close to the domain, harder to refuse than most real ones;
* the file's ``out_of_scope:`` examples, when there are some, each scored as if it were
  not among them (leave one out of the reject class).

    threshold = quantile(pseudo-negatives, NEGATIVE_QUANTILE)
                raised to quantile(out_of_scope scores, OUT_OF_SCOPE_QUANTILE)

The pseudo-negatives' quantile was chosen on validation splits only (bench/calibration.py
sweeps it: 0.3 had the smallest mean regret against val-tuned thresholds over 24 intent
sets); the out-of-scope one is a floor (at least half of the file's own out-of-scope
examples refused) that rarely binds. Rejected: a low quantile of the exemplars' own
leave-one-out scores (how real in-scope messages would score): CLINC150's exemplars are
near-paraphrases of each other and score far above its test messages, the bundled ones
do not, so no one quantile served both (val regret up to 26 points); per-intent
thresholds from the pseudo-negatives that land on each intent, shrunk toward the global
one: no better on val anywhere but the Chinese set.

The scores follow the index's own formula (``Head.mix_scores``; the cosine scorings
directly) on terms computed as if the probe were not among the exemplars: the cosine
terms exactly (the probe's intent, or the probe, left out); the head's term
approximated by the cosine between the probe's head features and the head's starting
weights, the class centroids of those features (the probe left out of its own). Exact
would retrain the head once per left-out intent (150 trainings for CLINC150): on the
bundled English intents the approximation's pseudo-negatives correlate 0.94-0.95 with
the retrained ones and the threshold is within 0.013 of theirs (Chinese, with the
reject class approximated as well: 0.91, 0.019), at 2-5 ms instead of 0.5-0.9 s.

At most ``MAX_PROBES`` exemplars are scored (evenly spaced), each against every
exemplar, ``CHUNK_VALUES`` cosines at a time; for each probe the ``CANDIDATES`` other
intents whose score bound (nearest exemplar in place of the top-k mean) is highest are
scored exactly.
Cost: 32 ms for 2,000 exemplars, 0.26 s for 15,000 (whose head trains in 4.7 s).

Deterministic: no sampling, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from router.routing.index import Index, Scoring
from router.vectors import unit_rows

__all__ = [
    "CANDIDATES",
    "CHUNK_VALUES",
    "MAX_PROBES",
    "MIN_SCORES",
    "NEGATIVE_QUANTILE",
    "OUT_OF_SCOPE_QUANTILE",
    "Calibration",
    "Negatives",
    "calibrate",
    "negatives_of",
]

Matrix = npt.NDArray[np.float32]

#: The threshold leaves this share of the pseudo-negatives below it (refused).
NEGATIVE_QUANTILE: Final = 0.3
#: With ``out_of_scope:`` examples, the threshold is at least this quantile of theirs.
OUT_OF_SCOPE_QUANTILE: Final = 0.5
#: Scores a source needs to count (pseudo-negatives, ``out_of_scope:`` examples): a
#: quantile of fewer says little (two intents of two examples each give four).
MIN_SCORES: Final = 10
#: Exemplars scored as pseudo-negatives at most (evenly spaced over all of them).
MAX_PROBES: Final = 1000
#: Cosines computed at once (probes x exemplars): 16 MB, whatever the number of exemplars.
CHUNK_VALUES: Final = 4_000_000
#: Other intents scored exactly per probe, the best by an upper bound of the score.
CANDIDATES: Final = 4


@dataclass(frozen=True, slots=True)
class Negatives:
    """What the calibration scored: pseudo-negatives and ``out_of_scope:`` examples."""

    probes: npt.NDArray[np.int64]  # exemplar ids scored as pseudo-negatives
    scores: Matrix  # (probes,) each probe's best score among the other intents
    intents: npt.NDArray[np.int64]  # (probes,) the intent that score belongs to
    out_of_scope: Matrix  # (out_of_scope examples,) best score, left out of the reject class


@dataclass(frozen=True, slots=True)
class Calibration:
    """A threshold from the exemplars, and what it was made of (Info, eval, the log)."""

    threshold: float
    from_negatives: float | None  # the pseudo-negatives' quantile; None when too few
    from_out_of_scope: float | None  # the out_of_scope examples' quantile, if any
    probes: int
    out_of_scope: int

    def describe(self) -> str:
        parts = []
        if self.from_negatives is not None:
            parts.append(f"{self.probes} exemplars scored against the other intents")
        if self.from_out_of_scope is not None:
            raised = (
                " (raised it)"
                if self.from_negatives is not None and self.from_out_of_scope > self.from_negatives
                else ""
            )
            parts.append(f"{self.out_of_scope} out_of_scope examples{raised}")
        return f"calibrated from the exemplars: {self.threshold:.4g} ({'; '.join(parts)})"


def calibrate(index: Index, vectors: Matrix, negatives: Matrix | None = None) -> Calibration | None:
    """The calibrated threshold for ``index`` built from ``vectors`` (and ``negatives``, the
    ``out_of_scope:`` rows it was given); None when there is too little to calibrate
    from (fewer than ``MIN_SCORES`` pseudo-negatives and ``out_of_scope:`` examples)."""
    found = negatives_of(index, vectors, negatives)
    from_negatives = (
        float(np.quantile(found.scores, NEGATIVE_QUANTILE))
        if len(found.scores) >= MIN_SCORES
        else None
    )
    from_oos = (
        float(np.quantile(found.out_of_scope, OUT_OF_SCOPE_QUANTILE))
        if len(found.out_of_scope) >= MIN_SCORES
        else None
    )
    candidates = [t for t in (from_negatives, from_oos) if t is not None]
    if not candidates:
        return None
    threshold = round(max(candidates), 4)
    return Calibration(
        threshold, from_negatives, from_oos, len(found.probes), len(found.out_of_scope)
    )


def negatives_of(index: Index, vectors: Matrix, negatives: Matrix | None = None) -> Negatives:
    """Score the pseudo-negatives and the ``out_of_scope:`` rows as ``index`` would (module doc)."""
    terms = _Terms(index, vectors, negatives)
    n = len(index.examples)
    probes = np.arange(n, dtype=np.int64)
    if n > MAX_PROBES:
        probes = (np.arange(MAX_PROBES, dtype=np.int64) * n) // MAX_PROBES
    if len(index.names) < 2:
        probes = probes[:0]
    scores = np.empty(len(probes), dtype=np.float32)
    intents = np.empty(len(probes), dtype=np.int64)
    chunk = max(1, CHUNK_VALUES // (n + 1))
    for begin in range(0, len(probes), chunk):
        part = probes[begin : begin + chunk]
        scores[begin : begin + chunk], intents[begin : begin + chunk] = terms.best_other(part)
    out_of_scope = terms.out_of_scope()
    return Negatives(probes, scores, intents, out_of_scope)


class _Terms:
    """The index's score terms for rows that are not (or no longer) among its exemplars."""

    def __init__(self, index: Index, vectors: Matrix, negatives: Matrix | None) -> None:
        self.index = index
        self.rows = index.example_intents
        self.groups = index.intent_groups
        self.offsets = index.intent_offsets
        self.head = index.head
        self.k = index.settings.k
        self.scoring = index.settings.scoring
        # Sentence-space centroids (``centroid`` scoring); exemplars are grouped by intent.
        self.centroids = unit_rows(np.add.reduceat(index.matrix, self.offsets, axis=0))
        self.neg_unit: Matrix | None = None
        if negatives is not None and len(negatives):
            self.neg_unit = unit_rows(np.asarray(negatives, np.float32)[:, -index.dimension :])
        self.features: Matrix | None = None
        self.feature_sums: Matrix | None = None
        self.neg_features: Matrix | None = None
        self.reject_sum: Matrix | None = None
        if self.head is not None:
            # The head's starting weights: each class's summed (unit) features.
            self.features = index.features(vectors)
            self.feature_sums = np.add.reduceat(self.features, self.offsets, axis=0)
            if negatives is not None and len(negatives):
                self.neg_features = index.features(np.asarray(negatives, np.float32))
                if self.head.reject is not None:
                    self.reject_sum = self.neg_features.sum(axis=0)

    def best_other(self, probes: npt.NDArray[np.int64]) -> tuple[Matrix, npt.NDArray[np.int64]]:
        """Each probe's best score among the intents other than its own, its own intent's
        exemplars left out of every term."""
        own = self.rows[probes]
        lexical = self.index.lexical_scores(
            [self.index.examples[p] for p in probes.tolist()], len(probes)
        )
        if self.scoring is Scoring.CENTROID:
            return self._best_centroid(self.index.matrix[probes], own, lexical)
        padded = self._cosines(self.index.matrix[probes])
        padded[np.arange(len(probes))[:, None], self.groups[own]] = -np.inf
        head = reject = None
        if self.features is not None:
            head = self._head_term(self.features[probes])
            if self.reject_sum is not None:
                reject = self.features[probes] @ unit_rows(self.reject_sum[None, :])[0]
        return self._best(padded, head, reject, lexical, exclude=own)

    def out_of_scope(self) -> Matrix:
        """Each ``out_of_scope:`` row's best score, itself left out of the reject class."""
        if self.neg_unit is None:
            return np.empty(0, dtype=np.float32)
        texts = self.index.intents.out_of_scope
        lexical = self.index.lexical_scores(texts, len(texts))
        if self.scoring is Scoring.CENTROID:
            return self._best_centroid(self.neg_unit, None, lexical)[0]
        head = reject = None
        if self.neg_features is not None:
            head = self._head_term(self.neg_features)
            if self.reject_sum is not None:
                reject = np.einsum(
                    "md,md->m",
                    self.neg_features,
                    unit_rows(self.reject_sum[None, :] - self.neg_features),
                )
        scores, _ = self._best(self._cosines(self.neg_unit), head, reject, lexical, exclude=None)
        return scores

    def _cosines(self, unit: Matrix) -> Matrix:
        """(m, n_examples + 1): cosines to every exemplar, then a ``-inf`` column (the
        padding ``intent_groups`` points at)."""
        n = self.index.matrix.shape[0]
        padded = np.empty((len(unit), n + 1), dtype=np.float32)
        np.matmul(unit, self.index.matrix.T, out=padded[:, :n])
        padded[:, n] = -np.inf
        return padded

    def _best_centroid(
        self, unit: Matrix, exclude: npt.NDArray[np.int64] | None, lexical: Matrix | None
    ) -> tuple[Matrix, npt.NDArray[np.int64]]:
        scores = unit @ self.centroids.T
        if lexical is not None:
            scores = self.index.with_lexical(scores, lexical)
        at = np.arange(len(unit))
        if exclude is not None:
            scores[at, exclude] = -np.inf
        best = scores.argmax(axis=1)
        return scores[at, best], best

    def _head_term(self, features: Matrix) -> Matrix:
        assert self.feature_sums is not None
        return features @ unit_rows(self.feature_sums).T

    def _gather(self, padded: Matrix, intents: npt.NDArray[np.int64]) -> Matrix:
        """(m, len, width): each row's cosines to the exemplars of its ``intents``."""
        return np.take_along_axis(padded[:, None, :], self.groups[intents], axis=2)

    def _best(
        self,
        padded: Matrix,
        head: Matrix | None,
        reject: Matrix | None,
        lexical: Matrix | None,
        exclude: npt.NDArray[np.int64] | None,
    ) -> tuple[Matrix, npt.NDArray[np.int64]]:
        """Each row's best intent and its score (``exclude``: an intent per row left out)
        from ``_cosines`` (``-inf`` where exemplars are left out), the head term (rows x
        intents), the reject term (rows) and the lexical overlap (rows x intents; its
        own exemplars are never among another intent's, so nothing is left out)."""
        m = len(padded)
        at = np.arange(m)
        n = padded.shape[1] - 1
        nearest = np.maximum.reduceat(padded[:, :n], self.offsets, axis=1)  # (m, intents)
        if exclude is not None:
            nearest[at, exclude] = -np.inf
        if self.scoring is Scoring.NEAREST:
            if lexical is not None:
                nearest = self.index.with_lexical(nearest, lexical)
            best = nearest.argmax(axis=1)
            return nearest[at, best], best
        near = None
        if self.head is not None:
            # The top any_k cosines lie among the any_k intents with the closest exemplars.
            n_near = min(self.head.any_k, nearest.shape[1])
            closest = np.argpartition(-nearest, n_near - 1, axis=1)[:, :n_near]
            near = _top_mean_finite(self._gather(padded, closest).reshape(m, -1), self.head.any_k)[
                :, None
            ]
        # An upper bound of each intent's score (its nearest exemplar in place of the top-k
        # mean) picks the candidates scored exactly.
        bound = nearest if head is None else self._mix(head, nearest, near, reject)
        if lexical is not None:  # the same term on both sides: still an upper bound
            bound = self.index.with_lexical(bound, lexical)
        if exclude is not None:
            bound[at, exclude] = -np.inf
        n_candidates = min(CANDIDATES, bound.shape[1])
        candidates = np.argpartition(-bound, n_candidates - 1, axis=1)[:, :n_candidates]
        local = _top_mean_finite(self._gather(padded, candidates), self.k)
        if head is None:
            exact = local
        else:
            exact = self._mix(np.take_along_axis(head, candidates, axis=1), local, near, reject)
        if lexical is not None:
            exact = self.index.with_lexical(exact, np.take_along_axis(lexical, candidates, axis=1))
        exact[~np.isfinite(np.take_along_axis(bound, candidates, axis=1))] = -np.inf
        pick = exact.argmax(axis=1)
        return exact[at, pick], candidates[at, pick]

    def _mix(
        self, head: Matrix, local: Matrix, near: Matrix | None, reject: Matrix | None
    ) -> Matrix:
        assert self.head is not None and near is not None
        return self.head.mix_scores(head, local, near, None if reject is None else reject[:, None])


def _top_mean_finite(values: Matrix, k: int) -> Matrix:
    """Mean of the k largest finite values along the last axis (fewer when fewer; -inf
    when none), as ``index._topk_mean`` treats an intent with fewer than k exemplars."""
    width = values.shape[-1]
    k = min(k, width)
    top = np.partition(values, width - k, axis=-1)[..., width - k :]
    finite = np.isfinite(top)
    count = finite.sum(axis=-1)
    total = np.where(finite, top, np.float32(0)).sum(axis=-1)
    out: Matrix = np.where(count > 0, total / np.maximum(count, 1), -np.inf).astype(np.float32)
    return out
