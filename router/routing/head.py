"""A trained softmax head over exemplar features, and the cosine-scale confidence it feeds.

Pure numpy; no I/O. ``train_head`` fits the head from exemplar ``Features`` and their
intent ids; the returned ``Head`` is immutable (read-only arrays). ``Index.scores`` is
the one place that turns a query into scores; it calls ``Head.logits``,
``Head.reject_score`` and ``Head.mix_scores`` (the confidence formula, below).

The classifier: multinomial logistic regression with a fixed logit scale, because the
inputs are unit vectors (cosines live in [-1, 1] and need a temperature)::

    logits = s * (x @ W) + b            s = 16, W: (dim, n_classes), b: (n_classes,)
    loss   = mean cross-entropy + l2/2 * ||W||^2        (l2 = 1e-3)

W starts at the normalised class centroids (step 0 is the centroid router) and is
refined by full-batch Adam (lr 0.02, 50 steps): no sampling, so training is
deterministic. The intent answered is ``argmax(logits)``.

A warm start (``Start``) begins instead from a previous head's columns, matched by
intent (a new intent starts at its centroid), and runs ``WARM_STEPS`` steps (none: the
previous head as it is). A hot reload serves such a head while the head trained from
the centroids, the one a cold start builds, is trained off the answer path
(``Engine.build(warm_from=...)``, ``Engine.complete``; ARCHITECTURE.md "Hot reload").

The confidence, compared with the threshold (higher = more in-scope). The softmax's
max probability is a poor out-of-scope detector (a sentence far from every intent still
gets a peaked softmax), so three cosine-scale terms are mixed for intent c::

    head  = logits_c / s                 the head's own cosine-like score
    local = mean of the 3 highest cosines between the sentence vector and c's exemplars
    any   = mean of the 5 highest cosines between the sentence vector and any exemplar
    confidence = clip(0.5 * head + 0.25 * local + 0.25 * any, -1, 1)

With ``out_of_scope:`` examples the head has one extra "reject" class (same loss, never
answered) and the confidence gains ``+ 0.25 * (head - reject)``. Every term is
cosine-like, so the confidence lives in [-1, 1] like every other scoring and YAML
thresholds keep one meaning. Why these choices: ARCHITECTURE.md, "Scoring".

``Features``: the head reads the mean-pooled hidden states of several encoder blocks
(2 and 6 for the pulled MiniLM), each centred on the exemplars' mean for its block and
scaled to unit length, concatenated and scaled again. A graph with one output gives
the unit sentence vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from router.vectors import unit_rows

__all__ = ["WARM_STEPS", "Features", "Head", "Start", "train_head"]

DEFAULT_SCALE: Final = 16.0
DEFAULT_L2: Final = 1e-3
#: Adam steps; more did not help on CLINC150 val (ARCHITECTURE.md, "The head's input").
DEFAULT_STEPS: Final = 50
DEFAULT_LR: Final = 0.02
#: Adam steps of a warm start: none, the previous head's columns as they are (a one-example
#: edit barely moves the optimum; the cold head follows seconds later).
WARM_STEPS: Final = 0
#: Weights of (head cosine, intent's top-k cosine mean, any-exemplar top-k cosine mean).
DEFAULT_MIX: Final = (0.5, 0.25, 0.25)
DEFAULT_ANY_K: Final = 5
#: Weight of (head - reject) in the confidence when out-of-scope examples are given.
DEFAULT_REJECT_WEIGHT: Final = 0.25


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


@dataclass(frozen=True)
class Head:
    """A fitted head; immutable, arrays read-only."""

    weights: NDArray[np.float32]  # (dim, n_classes)
    bias: NDArray[np.float32]  # (n_classes,)
    scale: float = DEFAULT_SCALE
    #: Weights of (head cosine, intent's top-k cosine mean, any-exemplar top-k cosine mean).
    mix: tuple[float, float, float] = DEFAULT_MIX
    #: How many of the closest exemplars (any intent) the ``any`` term averages.
    any_k: int = DEFAULT_ANY_K
    #: The reject class (trained on out-of-scope examples): weights (dim,) and bias, or None.
    reject: NDArray[np.float32] | None = None
    reject_bias: float = 0.0
    reject_weight: float = DEFAULT_REJECT_WEIGHT

    def __post_init__(self) -> None:
        weights = _frozen(self.weights, np.float32)
        dim, n_classes = weights.shape
        bias = _frozen(self.bias, np.float32)
        if bias.shape != (n_classes,):
            raise ValueError(f"bias shape {bias.shape} != ({n_classes},)")
        if self.any_k < 1 or self.scale <= 0:
            raise ValueError("any_k and scale must be positive")
        if self.reject is not None:
            reject = _frozen(self.reject, np.float32)
            if reject.shape != (dim,):
                raise ValueError(f"reject shape {reject.shape} != ({dim},)")
            object.__setattr__(self, "reject", reject)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "bias", bias)

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


@dataclass(frozen=True)
class Start:
    """Where ``train_head`` starts instead of the class centroids: ``head``'s columns.

    ``columns[c]`` is the column of ``head`` that class ``c`` starts from, or None for a
    class the head did not have (it starts at its centroid, bias 0). The reject class
    starts from the head's reject weights when both have one.
    """

    head: Head
    columns: tuple[int | None, ...]

    @classmethod
    def matching(cls, head: Head, names: Sequence[str], new_names: Sequence[str]) -> Start:
        """Start classes ``new_names`` from ``head``, whose classes are ``names``, by name."""
        at = {name: column for column, name in enumerate(names)}
        return cls(head, tuple(at.get(name) for name in new_names))

    def as_is(self, has_reject: bool) -> Head | None:
        """The head a start with no steps gives, when every class has a column to start
        from (and the reject class, if any): the columns as they are, no exemplar read.
        None when a class needs its centroid."""
        if None in self.columns or (has_reject and self.head.reject is None):
            return None
        at = [c for c in self.columns if c is not None]
        head = self.head
        return Head(
            weights=head.weights[:, at],
            bias=head.bias[at],
            scale=head.scale,
            mix=head.mix,
            any_k=head.any_k,
            reject=head.reject if has_reject else None,
            reject_bias=head.reject_bias if has_reject else 0.0,
            reject_weight=head.reject_weight,
        )


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
    any_k: int = DEFAULT_ANY_K,
    negatives: NDArray[np.float32] | None = None,
    start: Start | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Head:
    """Fit the head on unit exemplar vectors ``x`` (n, dim) with ids in [0, n_classes).

    ``negatives`` (k, dim), unit vectors of out-of-scope examples, if any, train one extra
    reject class (see the module docstring). Every class needs at least one exemplar.
    Full-batch Adam from the centroid initialisation uses no randomness, so the result is
    deterministic; ``seed`` is kept for API stability (and would seed any future stochastic
    variant). ``start``: begin from a previous head's columns instead (module doc).
    ``on_step(t)`` is called before each step; it may raise to stop the training.
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
    n_intents = n_classes
    has_reject = negatives is not None and len(negatives) > 0
    if has_reject:
        neg = np.ascontiguousarray(negatives, dtype=np.float32)
        if neg.ndim != 2 or neg.shape[1] != x.shape[1]:
            raise ValueError("negatives must be (k, dim)")
        x = np.concatenate([x, neg])
        y = np.concatenate([y, np.full(len(neg), n_classes, dtype=np.int64)])
        n_classes += 1
    if start is not None and (
        len(start.columns) != n_intents or start.head.weights.shape[0] != x.shape[1]
    ):
        raise ValueError("start must name a column (or None) per class, of the same dim")
    n = len(x)
    weights, bias = _initial(x, y, n_classes, has_reject, start)
    if steps == 0:  # the initial weights are the head: no per-step work at all
        return _head(weights, bias, n_intents, has_reject, scale, mix, any_k)
    onehot = np.zeros((n, n_classes), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0

    s = np.float32(scale)
    lam = np.float32(l2)
    inv_n = np.float32(1.0 / n)
    m_w = np.zeros_like(weights)
    v_w = np.zeros_like(weights)
    m_b = np.zeros_like(bias)
    v_b = np.zeros_like(bias)
    for t in range(1, steps + 1):
        if on_step is not None:
            on_step(t)
        z = s * (x @ weights) + bias
        g = _softmax(z)
        g -= onehot
        g *= inv_n
        grad_w = s * (x.T @ g) + lam * weights
        grad_b = g.sum(axis=0)
        step = np.float32(learning_rate * np.sqrt(1 - _BETA2**t) / (1 - _BETA1**t))
        _adam_update(weights, m_w, v_w, grad_w, step)
        _adam_update(bias, m_b, v_b, grad_b, step)
    return _head(weights, bias, n_intents, has_reject, scale, mix, any_k)


def _initial(
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    n_classes: int,
    has_reject: bool,
    start: Start | None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The starting (weights, bias): normalised class centroids, bias 0; with ``start``,
    its columns where it has them (only the other classes' centroids are computed)."""
    weights = np.empty((x.shape[1], n_classes), dtype=np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)
    fresh = list(range(n_classes))
    if start is not None:
        carried = dict(enumerate(start.columns))
        if has_reject and start.head.reject is not None:
            weights[:, n_classes - 1] = start.head.reject
            bias[n_classes - 1] = start.head.reject_bias
            carried[n_classes - 1] = -1  # filled above
        fresh = [c for c in range(n_classes) if carried.get(c) is None]
        taken = [(c, col) for c, col in carried.items() if col is not None and col >= 0]
        if taken:
            to, at = (list(t) for t in zip(*taken, strict=True))
            weights[:, to] = start.head.weights[:, at]
            bias[to] = start.head.bias[at]
    if fresh:
        if len(fresh) == n_classes:
            onehot = np.zeros((len(y), n_classes), dtype=np.float32)
            onehot[np.arange(len(y)), y] = 1.0
            sums = x.T @ onehot  # (dim, n_classes)
        else:
            sums = np.stack([x[y == c].sum(axis=0) for c in fresh], axis=1)
        norms = np.linalg.norm(sums, axis=0, keepdims=True)
        weights[:, fresh] = sums / np.maximum(norms, np.float32(1e-12))
    return weights, bias


def _head(  # noqa: PLR0917 - private; the two returns of train_head
    weights: NDArray[np.float32],
    bias: NDArray[np.float32],
    n_intents: int,
    has_reject: bool,
    scale: float,
    mix: tuple[float, float, float],
    any_k: int,
) -> Head:
    return Head(
        weights=weights[:, :n_intents],
        bias=bias[:n_intents],
        scale=float(scale),
        mix=mix,
        any_k=any_k,
        reject=weights[:, n_intents] if has_reject else None,
        reject_bias=float(bias[n_intents]) if has_reject else 0.0,
    )
