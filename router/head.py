"""A trained softmax head over sentence vectors, and a cosine-like confidence for "unknown".

Pure numpy; no I/O. ``train_head`` fits the head from exemplar vectors (unit rows) and
their intent ids; the returned ``Head`` is immutable (read-only arrays).

The classifier
--------------
Multinomial logistic regression with a fixed logit scale, because the inputs are unit
vectors (cosines live in [-1, 1] and need a temperature to make confident softmaxes)::

    logits = s * (x @ W) + b            s = 16, W: (dim, n_classes), b: (n_classes,)
    loss   = mean cross-entropy + l2/2 * ||W||^2        (l2 = 1e-3)

W starts at the normalised class centroids (so step 0 is the centroid router) and is
refined by full-batch Adam (lr 0.02, 50 steps). There is no sampling, so training is
deterministic. The intent answered is ``argmax(logits)``.

The confidence (what the threshold is compared with, higher = more in-scope)
---------------------------------------------------------------------------
The softmax's max probability is a poor out-of-scope detector: a sentence far from
every intent still gets a peaked softmax if it is a little closer to one intent than to
the others. Three cosine-scale evidence terms are mixed instead, for predicted intent c::

    head  = max_j logits_j / s = x . w_c + b_c / s      (the head's own cosine-like score)
    local = mean of the k_c = 3 highest cosines between x and c's exemplars
    any   = mean of the k = 5 highest cosines between x and any exemplar
    confidence = clip(0.5 * head + 0.25 * local + 0.25 * any, -1, 1)

Out-of-scope examples (optional, ``negatives``): when the operator lists sentences that
are none of the intents, the head gets one extra "reject" class trained on them (same
loss, same steps; never answered) and the confidence gains a fourth term::

    confidence = clip(0.5 * head + 0.25 * local + 0.25 * any + 0.25 * (head - reject), -1, 1)
    reject     = (x . w_r + b_r / s)                      (the reject class's cosine-like logit)

so a query closer to the listed out-of-scope sentences than to its intent loses
confidence. Without negatives nothing changes. The 0.25 was chosen on CLINC150 val
(AUROC of correct in-scope vs unknown, and max val accuracy; 0.125 and 0.5 are close).
With CLINC's 100 unknown train rows as negatives (bench/clinc150.py --with-oos), test
in-scope accuracy / unknown recall at the threshold answering 98.5% of val in-scope rows
goes from 95.0 / 72.2 to 95.0 / 75.3 (mixed score alone: max unknown recall any test
threshold reaches at >= 95.0 in-scope accuracy 72.1 -> 75.9).

Every term is a cosine-like number, so the confidence lives in [-1, 1] like the
service's other scores and YAML thresholds; the clip only guards the rare |head| > 1.
``head`` knows which directions separate the intents; ``local`` and ``any`` know where
the training sentences actually are, which the linear head forgets (it scores any point
far out along w_c highly).

Measured (all-MiniLM-L6-v2; exemplars = in-scope train rows; threshold tuned on val only,
figures on test; bench/clinc_scoring.py reproduces them). CLINC150 "full", in-scope
accuracy / unknown recall, threshold maximising overall val accuracy | threshold
answering 98% of the val in-scope rows:

    nearest exemplar        87.5 / 47.2  |  87.1 / 58.5
    top-3 mean              89.4 / 61.6  |  89.2 / 65.4
    centroid                91.5 / 46.2  |  90.6 / 68.8
    head, max probability   95.2 / 50.9  |  94.8 / 64.1
    head, mixed confidence  95.2 / 63.0  |  94.7 / 77.2

The head's closed-set test accuracy (no threshold) is 95.6, which caps in-scope
accuracy: holding 95.0 in-scope accuracy, even the best threshold chosen on test itself
reaches only 72.1 unknown recall with the mixed confidence (60.9 with max probability,
68.4 with Euclidean distance to the nearest intent mean, 62.7 with the energy score).
On the bundled shop intents (27 intents, ~13 examples each; 40 unknown test rows) the
mixed confidence gives 88.8 / 87.5 | 90.0 / 82.5 (max probability 86.2 / 82.5 |
90.0 / 57.5), the best overall accuracy of the candidates under both rules.

Training 15,000 x 384 exemplars with 150 intents takes ~2.4 s of wall time (~4.8 s CPU)
on 2 idle cores; scoring costs one (m, n_exemplars) matrix product, done in blocks.
(The figures above are for a head on the last block only, before ``Features``.)

Features
--------
The head reads ``Features`` of a row, not the sentence vector: the mean-pooled hidden
states of encoder blocks 2 and 6 (``Encoder.embed``), each centred on the exemplars'
mean for that block and scaled to unit length, concatenated (768 values) and scaled
again. The ``local`` and ``any`` terms keep using the sentence vector. Chosen on CLINC150
val (AUROC of in-scope vs unknown, closed-set accuracy) against all 7 blocks averaged
(0.982) or concatenated (0.986), single earlier blocks (0.965-0.970), Mahalanobis on
the concatenation (0.938-0.989) and other block sets (within 0.002); blocks 2, 4, 6
gave 0.990 / 97.4 (100 steps), against 0.986 / 96.1 for the last block alone. Blocks
2 and 6 at 50 steps matched 2, 4, 6 on val (0.9893 / 97.0 vs 0.9894 / 96.9) at two
thirds of the training cost, which a reload of 2,000 exemplars needed (save to answer
353-369 ms with three blocks, 220 ms with two). On test (bench/clinc150.py): closed-set
95.9 (last block alone 95.6); 95.1 / 79.0 at the threshold answering 98% of val
in-scope rows (last block alone 94.7 / 77.2; blocks 2, 4, 6: 95.4 / 78.7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from router.vectors import unit_rows

__all__ = ["Features", "Head", "HeadScores", "train_head"]

DEFAULT_SCALE: Final = 16.0
DEFAULT_L2: Final = 1e-3
#: 50, not 100, since the head reads several blocks: CLINC150 val closed-set accuracy /
#: AUROC with blocks 2, 4, 6: 96.9 / 0.9894 at 50 steps, 97.2 / 0.9894 at 100 (25:
#: 96.6 / 0.9886; a larger learning rate with fewer steps was worse); bundled val
#: accuracy 93.1 vs 92.5; half the build time. Blocks 2 and 6, 15,000 exemplars, one
#: BLAS thread: 3.7 s (bench/scoring_scale.py).
DEFAULT_STEPS: Final = 50
DEFAULT_LR: Final = 0.02
#: Weights of (head cosine, intent's top-k cosine mean, any-exemplar top-k cosine mean).
DEFAULT_MIX: Final = (0.5, 0.25, 0.25)
DEFAULT_CLASS_K: Final = 3
DEFAULT_ANY_K: Final = 5
#: Weight of (head - reject) in the confidence when out-of-scope examples are given.
DEFAULT_REJECT_WEIGHT: Final = 0.25

_CHUNK = 512  # query rows per exemplar-similarity block (bounds memory at ~chunk x n)


def _frozen(a: NDArray[np.generic], dtype: type[np.generic]) -> NDArray[np.generic]:
    out = np.array(a, dtype=dtype, copy=True, order="C")
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Features:
    """What the head reads: pooled hidden states of several encoder blocks, combined.

    With one block (a graph with a single output) this is the unit sentence vector,
    as before. With several (``layers`` blocks of ``dim`` values per row, the last
    block last): each block is centred on the exemplars' mean for that block and scaled
    to unit length, the blocks are concatenated and the result scaled to unit length.
    Centring removes the direction every sentence shares, which dominates the early
    blocks' vectors; see the module doc ("Features") for what it bought.
    """

    layers: int = 1
    centre: NDArray[np.float32] | None = None  # (layers, dim); None with one block

    @classmethod
    def fit(cls, rows: NDArray[np.float32], layers: int) -> Features:
        if layers == 1:
            return cls()
        blocks = np.asarray(rows, dtype=np.float32).reshape(len(rows), layers, -1)
        centre = blocks.mean(axis=0).astype(np.float32)
        centre.flags.writeable = False
        return cls(layers, centre)

    def __call__(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        x = np.asarray(rows, dtype=np.float32)
        if self.centre is None:
            return unit_rows(x)
        blocks = x.reshape(len(x), self.layers, -1) - self.centre
        # unit blocks, concatenated, over sqrt(layers): the concatenation made unit
        norms = np.sqrt(np.einsum("mld,mld->ml", blocks, blocks))[..., None]
        out: NDArray[np.float32] = blocks / (
            np.maximum(norms, np.float32(1e-12)) * np.float32(np.sqrt(self.layers))
        )
        return out.reshape(len(x), -1)


@dataclass(frozen=True, slots=True)
class HeadScores:
    """Per-row prediction and every score, for diagnostics and research."""

    label: NDArray[np.int64]  # argmax of the logits
    probability: NDArray[np.float32]  # softmax probability of ``label``
    head: NDArray[np.float32]  # max logit / scale
    local: NDArray[np.float32]  # mean top-k cosine to the predicted intent's exemplars
    any: NDArray[np.float32]  # mean top-k cosine to any exemplar
    confidence: NDArray[np.float32]  # the mixed score in [-1, 1]


@dataclass(frozen=True)
class Head:
    """A fitted head; immutable, arrays read-only."""

    weights: NDArray[np.float32]  # (dim, n_classes)
    bias: NDArray[np.float32]  # (n_classes,)
    exemplars: NDArray[np.float32]  # (n, dim) unit rows the head was trained on
    labels: NDArray[np.int64]  # (n,) intent id of each exemplar
    scale: float = DEFAULT_SCALE
    mix: tuple[float, float, float] = DEFAULT_MIX
    class_k: int = DEFAULT_CLASS_K
    any_k: int = DEFAULT_ANY_K
    #: The reject class (trained on out-of-scope examples): weights (dim,) and bias, or None.
    reject: NDArray[np.float32] | None = None
    reject_bias: float = 0.0
    reject_weight: float = DEFAULT_REJECT_WEIGHT
    _counts: NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights = _frozen(self.weights, np.float32)
        dim, n_classes = weights.shape
        bias = _frozen(self.bias, np.float32)
        exemplars = _frozen(self.exemplars, np.float32)
        labels = _frozen(self.labels, np.int64)
        if bias.shape != (n_classes,):
            raise ValueError(f"bias shape {bias.shape} != ({n_classes},)")
        if exemplars.ndim != 2 or exemplars.shape[1] != dim or len(exemplars) != len(labels):
            raise ValueError("exemplars must be (n, dim) with one label per row")
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError("labels must be in [0, n_classes)")
        if self.class_k < 1 or self.any_k < 1 or self.scale <= 0:
            raise ValueError("class_k, any_k and scale must be positive")
        counts = _frozen(np.bincount(labels, minlength=n_classes), np.int64)
        if self.reject is not None:
            reject = _frozen(self.reject, np.float32)
            if reject.shape != (dim,):
                raise ValueError(f"reject shape {reject.shape} != ({dim},)")
            object.__setattr__(self, "reject", reject)
        for name, value in (
            ("weights", weights),
            ("bias", bias),
            ("exemplars", exemplars),
            ("labels", labels),
            ("_counts", counts),
        ):
            object.__setattr__(self, name, value)

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """(m, n_classes) logits ``s * x @ W + b``."""
        x = np.asarray(x, dtype=np.float32)
        out: NDArray[np.float32] = (np.float32(self.scale) * (x @ self.weights) + self.bias).astype(
            np.float32, copy=False
        )
        return out

    def mix_scores(
        self,
        head: NDArray[np.float32],
        local: NDArray[np.float32],
        near: NDArray[np.float32],
        reject: NDArray[np.float32] | None,
    ) -> NDArray[np.float32]:
        """The confidence from its terms (arrays of one shape, or broadcastable), in [-1, 1]."""
        w_head, w_local, w_any = self.mix
        mixed = w_head * head + w_local * local + w_any * near
        if reject is not None:
            mixed = mixed + np.float32(self.reject_weight) * (head - reject)
        out: NDArray[np.float32] = np.clip(mixed, -1.0, 1.0).astype(np.float32)
        return out

    def reject_score(self, x: NDArray[np.float32]) -> NDArray[np.float32] | None:
        """(m,) the reject class's logit / scale, or None without out-of-scope examples."""
        if self.reject is None:
            return None
        x = np.asarray(x, dtype=np.float32)
        out: NDArray[np.float32] = (
            x @ self.reject + np.float32(self.reject_bias / self.scale)
        ).astype(np.float32, copy=False)
        return out

    def probabilities(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """(m, n_classes) softmax probabilities; rows sum to 1."""
        return _softmax(self.logits(x))

    def scores(self, x: NDArray[np.float32]) -> HeadScores:
        """The predicted intent of every row of ``x`` and every score behind the confidence."""
        x = np.asarray(x, dtype=np.float32)
        z = self.logits(x)
        label = z.argmax(axis=1).astype(np.int64)
        rows = np.arange(len(x))
        probability = _softmax(z)[rows, label]
        head = (z[rows, label] / np.float32(self.scale)).astype(np.float32)
        local = np.empty(len(x), dtype=np.float32)
        near = np.empty(len(x), dtype=np.float32)
        n = len(self.labels)
        any_k = min(self.any_k, n)
        for start in range(0, len(x), _CHUNK):
            stop = min(start + _CHUNK, len(x))
            cos = x[start:stop] @ self.exemplars.T  # (chunk, n)
            if n == 0:
                local[start:stop] = 0.0
                near[start:stop] = 0.0
                continue
            top = np.partition(cos, n - any_k, axis=1)[:, n - any_k :]
            near[start:stop] = top.mean(axis=1)
            mine = self.labels[None, :] == label[start:stop, None]
            own = np.where(mine, cos, np.float32(-np.inf))
            k = min(self.class_k, n)
            best = np.partition(own, n - k, axis=1)[:, n - k :]
            have = np.minimum(self._counts[label[start:stop]], k)
            best = np.where(np.isfinite(best), best, np.float32(0.0))
            local[start:stop] = best.sum(axis=1) / np.maximum(have, 1)
        confidence = self.mix_scores(head, local, near, self.reject_score(x))
        return HeadScores(
            label=label,
            probability=probability.astype(np.float32),
            head=head,
            local=local,
            any=near,
            confidence=confidence.astype(np.float32),
        )

    def predict(self, x: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(intent id, confidence in [-1, 1]) per row; answer unknown if confidence < threshold."""
        s = self.scores(x)
        return s.label, s.confidence

    def confidence(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """(m,) the score compared with the threshold, in [-1, 1]; higher = more in-scope."""
        return self.scores(x).confidence


def _softmax(z: NDArray[np.float32]) -> NDArray[np.float32]:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: NDArray[np.float32] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)
    return out


_BETA1: Final = 0.9
_BETA2: Final = 0.999
_EPS: Final = 1e-8


def _adam_update(
    param: NDArray[np.float32],
    m: NDArray[np.float32],
    v: NDArray[np.float32],
    grad: NDArray[np.float32],
    step: np.float32,
) -> None:
    """One in-place Adam step (bias correction folded into ``step``)."""
    m *= np.float32(_BETA1)
    m += np.float32(1 - _BETA1) * grad
    v *= np.float32(_BETA2)
    v += np.float32(1 - _BETA2) * grad * grad
    param -= step * m / (np.sqrt(v) + np.float32(_EPS))


def train_head(
    x: NDArray[np.float32],
    labels: NDArray[np.int64],
    n_classes: int,
    *,
    seed: int = 0,
    scale: float = DEFAULT_SCALE,
    l2: float = DEFAULT_L2,
    steps: int = DEFAULT_STEPS,
    learning_rate: float = DEFAULT_LR,
    mix: tuple[float, float, float] = DEFAULT_MIX,
    class_k: int = DEFAULT_CLASS_K,
    any_k: int = DEFAULT_ANY_K,
    negatives: NDArray[np.float32] | None = None,
) -> Head:
    """Fit the head on unit exemplar vectors ``x`` (n, dim) with ids in [0, n_classes).

    ``negatives`` (k, dim), unit vectors of out-of-scope examples, if any, train one extra
    reject class (see the module docstring). Every class needs at least one exemplar.
    Full-batch Adam from the centroid initialisation uses no randomness, so the result is
    deterministic; ``seed`` is kept for API stability (and would seed any future stochastic
    variant).
    """
    del seed  # deterministic by construction
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError("x must be (n, dim) with one label per row")
    if n_classes < 1:
        raise ValueError("n_classes must be positive")
    counts = np.bincount(y, minlength=n_classes) if len(y) else np.zeros(n_classes, np.int64)
    if len(counts) != n_classes or (counts == 0).any():
        raise ValueError("every class in [0, n_classes) needs at least one exemplar")
    exemplars, exemplar_labels, n_intents = x, y, n_classes
    has_reject = negatives is not None and len(negatives) > 0
    if has_reject:
        neg = np.ascontiguousarray(negatives, dtype=np.float32)
        if neg.ndim != 2 or neg.shape[1] != x.shape[1]:
            raise ValueError("negatives must be (k, dim)")
        x = np.concatenate([x, neg])
        y = np.concatenate([y, np.full(len(neg), n_classes, dtype=np.int64)])
        n_classes += 1
    n = len(x)

    onehot = np.zeros((n, n_classes), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0
    sums = x.T @ onehot  # (dim, n_classes)
    norms = np.linalg.norm(sums, axis=0, keepdims=True)
    weights = (sums / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)

    s = np.float32(scale)
    lam = np.float32(l2)
    inv_n = np.float32(1.0 / n)
    m_w = np.zeros_like(weights)
    v_w = np.zeros_like(weights)
    m_b = np.zeros_like(bias)
    v_b = np.zeros_like(bias)
    for t in range(1, steps + 1):
        z = s * (x @ weights) + bias
        g = _softmax(z)
        g -= onehot
        g *= inv_n
        grad_w = s * (x.T @ g) + lam * weights
        grad_b = g.sum(axis=0)
        step = np.float32(learning_rate * np.sqrt(1 - _BETA2**t) / (1 - _BETA1**t))
        _adam_update(weights, m_w, v_w, grad_w, step)
        _adam_update(bias, m_b, v_b, grad_b, step)

    return Head(
        weights=weights[:, :n_intents],
        bias=bias[:n_intents],
        exemplars=exemplars,
        labels=exemplar_labels,
        scale=float(scale),
        mix=mix,
        class_k=class_k,
        any_k=any_k,
        reject=weights[:, n_intents] if has_reject else None,
        reject_bias=float(bias[n_intents]) if has_reject else 0.0,
    )
