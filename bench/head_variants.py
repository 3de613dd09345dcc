"""Ranking, head and confidence variants of the head index, selected on validation data only.

    python bench/head_variants.py [--data ../shared/data/clinc150] [--cache DIR]
                                  [--sets clinc,en,zh] [--only "NAME;NAME"]
                                  [--test "NAME;NAME"] [--bootstrap N] [--no-record]

Each variant rebuilds the index ``Engine.build`` builds (the same exemplar rows, intents,
settings, lexical weight and ``out_of_scope:`` examples) with one thing changed; every row is
decided as ``Engine.classify`` decides (bench/oos_methods.py: embedded as served, folded,
``decide``, the replica checked against ``Engine.classify`` on 200 val rows). The sets:
CLINC150 val with MiniLM (its in-scope train rows the exemplars), the bundled English val
with MiniLM and the bundled Chinese val with ``use-multilingual``; no threshold of the files
is used. ``replica (defaults)`` rebuilds the product's index unchanged: its figures must be
the current product's.

Figures per variant on val: in-scope top-1; the threshold ``router.quality.tuning.choose``
picks over the val sweep (``balanced``, out-of-scope share 0.2, as ``tune``), with its
in-scope accuracy, unknown recall and merit = 0.8 x in-scope accuracy + 0.2 x unknown recall
(what ``balanced`` maximises); ``in@rec``: the in-scope accuracy at the lowest threshold
whose val unknown recall reaches the current product's balanced one; ``in@80-95``: the mean
in-scope accuracy at unknown recall 80, 85, 90 and 95 (a diagnostic); AUROC; the seconds to
build the index and the milliseconds to score a message.

The protocol. Val only for selection: a variant is a candidate only if, on CLINC150 val, it
raises both merit and ``in@rec`` over the current product, and it lowers the bundled English
val merit by no more than 0.3 points (the Chinese figures are shown, not a condition). At most
two candidates are then measured on test (``--test``), each with its val-chosen threshold,
beside the current product. ``--test`` refuses a variant that is not a candidate.

``--bootstrap N``: for each variant raising CLINC150 val merit, a paired bootstrap of CLINC150
val (N resamples of the in-scope and the unknown rows apart, seed 0, the threshold chosen
again in each) of its merit and ``in@rec`` minus the current product's: mean, 90% interval
and the share of resamples above zero.

The variants (``VARIANTS``), each against the product (head.py and index.py: logit scale 16,
l2 1e-3, plain cross-entropy, confidence mix 0.5/0.25/0.25 of head/local/any, any_k 5, local
k 3, lexical overlap in both the confidence and the ranking):

* head hyperparameters: ``scale``, ``l2``, ``label smoothing`` (the same training against
  smoothed targets) and the ``l2 rule`` l2 = 1e-3 x min(1, 15 / mean exemplars per intent);
* the confidence: ``mix`` (head/local/any weights), ``any_k``, ``conf local k`` (the local
  term's k; the ranking keeps k 3);
* ``rank +w*16*local``: the ranking adds w x scale x the intent's local top-3 cosine mean
  to the logits;
* lexical placement: the overlap in the ranking only, or in the confidence only;
* the head term: ``energy`` (logsumexp of the logits / scale, one value for every intent) or
  ``x.W/|W|`` (the features' cosine to the intent's weight column) instead of logit / scale;
* feature-space cosines: the local and/or any term from cosines between the head's features
  (centred blocks) instead of between sentence vectors;
* ``disagree penalty p``: the confidence minus p where the head's winner is not the local
  top-3 winner;
* ensembles: the logits (and reject score) averaged with those of a second head: one on the
  last block alone (centred; several blocks only, so not ``use-multilingual``), weight 0.5
  or 0.25, or one trained with l2 1e-4 on the same features, weight 0.5.

Writes bench/results/ (bench/_record.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from _sets import pct, read_jsonl
from oos_methods import (
    BALANCED_SHARE,
    BenchSet,
    Split,
    auroc,
    check_replica,
    clinc_intents,
    decide,
    grid,
    labels,
    make_set,
)

from router.quality.evaluate import SweepPoint, sweep
from router.quality.tuning import Objective, choose
from router.routing import head as head_module
from router.routing.head import Features, Head, train_head
from router.routing.index import Index, Scored, Scoring, _topk_mean
from router.routing.intents import UNKNOWN, IntentSet, load_intents
from router.vectors import unit_rows

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
ROOT = Path(__file__).resolve().parents[1]
CURRENT = "current"
REPLICA = "replica (defaults)"
MODELS = {"clinc": "minilm", "en": "minilm", "zh": "use-multilingual"}
#: The protocol: how far English val merit may fall (points), and the most test candidates.
EN_SLACK = 0.3
MAX_TEST = 2
EPS = 1e-9  # on per-cent figures: "raises" means by more than rounding
RECALLS = (0.80, 0.85, 0.90, 0.95)  # the in@80-95 diagnostic


# ---------------------------------------------------------------- the variants


@dataclass(frozen=True)
class Variant:
    """One change to the product's index (module doc); the defaults are the product."""

    name: str
    #: ``train_head``'s scale, l2, mix, any_k; and ``smoothing`` (label smoothing).
    head: dict[str, Any] = field(default_factory=dict)
    l2_rule: bool = False  # l2 = 1e-3 x min(1, 15 / mean exemplars per intent)
    rank_local: float = 0.0  # rank = logits + rank_local x scale x local top-3 mean
    conf_k: int | None = None  # the confidence's local k (the ranking's stays)
    lexical: str = "both"  # where lexical overlap goes: "both", "rank", "conf"
    head_term: str = "logit"  # the confidence's head term: "logit", "energy", "wnorm"
    feature_sims: str = ""  # cosines on the head's features for "local", "any", "both"
    disagree: float = 0.0  # confidence penalty where head and local top-3 winners differ
    ensemble: str = ""  # a second head: "last" (last block alone), "same" (same features)
    ensemble_head: dict[str, Any] = field(default_factory=dict)  # the "same" head's kwargs
    ensemble_weight: float = 0.5  # the second head's share of the logits


VARIANTS = (
    Variant(REPLICA),
    Variant("rank +0.25*16*local", rank_local=0.25),
    Variant("rank +0.5*16*local", rank_local=0.5),
    Variant("l2 1e-4", {"l2": 1e-4}),
    Variant("l2 2e-4", {"l2": 2e-4}),
    Variant("l2 3e-4", {"l2": 3e-4}),
    Variant("l2 5e-4", {"l2": 5e-4}),
    Variant("l2 1e-2", {"l2": 1e-2}),
    Variant("l2 rule 1e-3*min(1,15/n)", l2_rule=True),
    Variant("scale 10", {"scale": 10.0}),
    Variant("scale 12", {"scale": 12.0}),
    Variant("scale 14", {"scale": 14.0}),
    Variant("scale 20", {"scale": 20.0}),
    Variant("label smoothing 0.05", {"smoothing": 0.05}),
    Variant("label smoothing 0.1", {"smoothing": 0.1}),
    Variant("mix 0.6/0.4/0", {"mix": (0.6, 0.4, 0.0)}),
    Variant("mix 0.5/0.5/0", {"mix": (0.5, 0.5, 0.0)}),
    Variant("mix 0.6/0.2/0.2", {"mix": (0.6, 0.2, 0.2)}),
    Variant("mix 0.4/0.4/0.2", {"mix": (0.4, 0.4, 0.2)}),
    Variant("mix 0.4/0.3/0.3", {"mix": (0.4, 0.3, 0.3)}),
    Variant("scale 12 + mix 0.6/0.4/0", {"scale": 12.0, "mix": (0.6, 0.4, 0.0)}),
    Variant("any_k 3", {"any_k": 3}),
    Variant("any_k 10", {"any_k": 10}),
    Variant("conf local k=1", conf_k=1),
    Variant("conf local k=5", conf_k=5),
    Variant("conf local k=10", conf_k=10),
    Variant("lexical in rank only", lexical="rank"),
    Variant("lexical in conf only", lexical="conf"),
    Variant("head term energy", head_term="energy"),
    Variant("head term x.W/|W|", head_term="wnorm"),
    Variant("local on features", feature_sims="local"),
    Variant("any on features", feature_sims="any"),
    Variant("local+any on features", feature_sims="both"),
    Variant("disagree penalty 0.05", disagree=0.05),
    Variant("disagree penalty 0.1", disagree=0.1),
    Variant("ensemble 2+6 & 6", ensemble="last"),
    Variant("ensemble 2+6 & 6 w0.25", ensemble="last", ensemble_weight=0.25),
    Variant("ens l2 1e-3 & 1e-4", ensemble="same", ensemble_head={"l2": 1e-4}),
)
BY_NAME = {v.name: v for v in VARIANTS}


def train(
    x: F32, labels: I64, n_classes: int, negatives: F32 | None, smoothing: float = 0.0, **kw: Any
) -> Head:
    """``head.train_head``; with ``smoothing`` > 0, its loop against smoothed targets."""
    if not smoothing:
        return train_head(x, labels, n_classes, negatives=negatives, **kw)
    scale = kw.get("scale", head_module.DEFAULT_SCALE)
    mix = kw.get("mix", head_module.DEFAULT_MIX)
    any_k = kw.get("any_k", head_module.DEFAULT_ANY_K)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    n_intents = n_classes
    has_reject = negatives is not None and len(negatives) > 0
    if negatives is not None and has_reject:
        x = np.concatenate([x, np.ascontiguousarray(negatives, dtype=np.float32)])
        y = np.concatenate([y, np.full(len(negatives), n_classes, dtype=np.int64)])
        n_classes += 1
    n = len(x)
    weights, bias = head_module._initial(x, y, n_classes, has_reject, None)
    target = np.full((n, n_classes), smoothing / n_classes, dtype=np.float32)
    target[np.arange(n), y] += np.float32(1 - smoothing)
    s = np.float32(scale)
    lam = np.float32(kw.get("l2", head_module.DEFAULT_L2))
    inv_n = np.float32(1.0 / n)
    m_w, v_w = np.zeros_like(weights), np.zeros_like(weights)
    m_b, v_b = np.zeros_like(bias), np.zeros_like(bias)
    lr = head_module.DEFAULT_LR
    for t in range(1, head_module.DEFAULT_STEPS + 1):
        g = head_module._softmax(s * (x @ weights) + bias)
        g -= target
        g *= inv_n
        grad_w = s * (x.T @ g) + lam * weights
        grad_b = g.sum(axis=0)
        beta1, beta2 = head_module._BETA1, head_module._BETA2
        step = np.float32(lr * np.sqrt(1 - beta2**t) / (1 - beta1**t))
        head_module._adam_update(weights, m_w, v_w, grad_w, step)
        head_module._adam_update(bias, m_b, v_b, grad_b, step)
    return head_module._head(weights, bias, n_intents, has_reject, scale, mix, any_k)


class VariantIndex(Index):
    """The product's index rebuilt with its head, ranking and confidence per ``variant``."""

    def __init__(
        self, base: Index, exemplars: F32, negatives: F32 | None, layers: int, variant: Variant
    ) -> None:
        t0 = time.perf_counter()
        # built without a head (top-k scoring trains none), then given the variant's
        super().__init__(
            base.intents, exemplars, replace(base.settings, scoring=Scoring.TOPK_MEAN), None, layers
        )
        self.settings = base.settings
        self.variant = variant
        kw = dict(variant.head)
        if variant.l2_rule:
            kw["l2"] = 1e-3 * min(1.0, 15.0 / (self.intents.example_count / len(self.names)))
        x = self.features(exemplars)
        negative_features = None if negatives is None else self.features(negatives)
        self.head = train(x, self.example_intents, len(self.names), negative_features, **kw)
        self.second: Head | None = None
        self.second_features = self.features
        if variant.ensemble == "last":
            if layers == 1:
                raise ValueError(f"{variant.name} needs an encoder with several blocks")
            last = np.asarray(exemplars, dtype=np.float32)[:, -self._dim :]
            self.second_features = Features(1, last.mean(axis=0, keepdims=True))
            self.second = train(
                self.second_features(last),
                self.example_intents,
                len(self.names),
                None if negatives is None else self.second_features(negatives[:, -self._dim :]),
                **kw,
            )
        elif variant.ensemble == "same":
            self.second = train(
                x, self.example_intents, len(self.names), negative_features, **variant.ensemble_head
            )
        self.feature_rows = x if variant.feature_sims else None
        self.build_seconds = time.perf_counter() - t0

    def scores(self, queries: F32, texts: Sequence[str] | None = None) -> Scored:
        where = self.variant.lexical
        if where == "both":
            return super().scores(queries, texts)
        scored = self._dense_scores(queries)
        lexical = self.lexical_scores(texts, queries.shape[0])
        if lexical is None:
            return scored
        if where == "conf":
            return replace(scored, scores=self.with_lexical(scored.scores, lexical))
        assert self.head is not None
        moved = scored.rank + np.float32(self.lexical_weight * self.head.scale) * lexical
        return replace(scored, rank=moved)

    def _dense_scores(self, queries: F32) -> Scored:
        v, head = self.variant, self.head
        assert head is not None
        m, n = queries.shape[0], self.matrix.shape[0]
        unit = unit_rows(queries[:, -self._dim :])
        padded = np.empty((m, n + 1), dtype=np.float32)
        np.matmul(unit, self.matrix.T, out=padded[:, :n])
        padded[:, n] = -np.inf
        sims = padded[:, :n]
        grouped = padded[:, self._groups]
        closest = self._groups.ravel()[self._group_start + grouped.argmax(axis=2)]
        grouped.sort(axis=2)
        topk = _topk_mean(grouped, self.settings.k, self._counts)
        features = self.features(queries)
        logits = head.logits(features)
        reject = head.reject_score(features)
        if self.second is not None:
            second = self.second_features(
                queries[:, -self._dim :] if v.ensemble == "last" else queries
            )
            w = np.float32(v.ensemble_weight)
            logits = (1 - w) * logits + w * self.second.logits(second)
            second_reject = self.second.reject_score(second)
            if reject is not None and second_reject is not None:
                reject = (1 - w) * reject + w * second_reject
        local = topk if v.conf_k is None else _topk_mean(grouped, v.conf_k, self._counts)
        k_any = min(head.any_k, n)
        near = np.partition(sims, n - k_any, axis=1)[:, n - k_any :].sum(axis=1, keepdims=True)
        near *= np.float32(1 / k_any)
        if self.feature_rows is not None:
            on_features = np.empty((m, n + 1), dtype=np.float32)
            np.matmul(features, self.feature_rows.T, out=on_features[:, :n])
            on_features[:, n] = -np.inf
            if v.feature_sims in {"local", "both"}:
                feature_groups = on_features[:, self._groups]
                feature_groups.sort(axis=2)
                local = _topk_mean(feature_groups, v.conf_k or self.settings.k, self._counts)
            if v.feature_sims in {"any", "both"}:
                best = np.partition(on_features[:, :n], n - k_any, axis=1)[:, n - k_any :]
                near = best.mean(axis=1, keepdims=True)
        mixed = head.mix_scores(
            self._head_term(logits, features),
            local,
            near,
            None if reject is None else reject[:, None],
        )
        if v.disagree:
            differs = (logits.argmax(axis=1) != topk.argmax(axis=1)).astype(np.float32)
            mixed = (mixed - np.float32(v.disagree) * differs[:, None]).astype(np.float32)
        rank = logits
        if v.rank_local:
            rank = logits + np.float32(v.rank_local * head.scale) * topk
        return Scored(mixed, rank.astype(np.float32), sims, closest)

    def _head_term(self, logits: F32, features: F32) -> F32:
        """The confidence's head term: logit / scale, or the variant's replacement."""
        assert self.head is not None
        scale = np.float32(self.head.scale)
        if self.variant.head_term == "energy":
            top = logits.max(axis=1, keepdims=True)
            energy = top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
            out: F32 = np.broadcast_to(energy / scale, logits.shape).astype(np.float32)
            return out
        if self.variant.head_term == "wnorm":
            norms = np.linalg.norm(self.head.weights, axis=0)
            out = ((features @ self.head.weights) / norms).astype(np.float32)
            return out
        return logits / scale


# ---------------------------------------------------------------- figures


@dataclass
class Decisions:
    """One index's decisions on one split: each row's candidate (or unknown) and confidence."""

    candidates: list[str]
    score: F32
    seconds: float


def decisions(bench: BenchSet, index: Index, split: Split) -> Decisions:
    t0 = time.perf_counter()
    d = decide(index, split)
    return Decisions(labels(bench, d.winner), d.score, time.perf_counter() - t0)


def curve(gold: Sequence[str], d: Decisions) -> list[SweepPoint]:
    return sweep(gold, d.candidates, d.score, grid(d.score))


def balanced(points: list[SweepPoint]) -> SweepPoint:
    return points[choose(points, Objective.BALANCED, BALANCED_SHARE)]


def at_recall(points: list[SweepPoint], recall: float) -> SweepPoint:
    """The lowest-threshold point whose unknown recall reaches ``recall``, else the last."""
    return next((p for p in points if (p.unknown_recall or 0.0) >= recall - 1e-12), points[-1])


def merit(p: SweepPoint) -> float:
    """Per cent: what the balanced objective maximises."""
    share = BALANCED_SHARE
    return 100 * ((1 - share) * (p.in_scope_accuracy or 0.0) + share * (p.unknown_recall or 0.0))


def top1(gold: Sequence[str], d: Decisions) -> float:
    hits = [c == g for c, g in zip(d.candidates, gold, strict=True) if g != UNKNOWN]
    return 100 * float(np.mean(hits))


def val_figures(gold: Sequence[str], d: Decisions, recall: float | None) -> dict[str, Any]:
    """Val figures at the balanced threshold; ``in@rec`` at unknown recall ``recall`` (None:
    this row's own balanced recall: the current product's)."""
    points = curve(gold, d)
    b = balanced(points)
    at = {f"{100 * r:.0f}": pct(at_recall(points, r).in_scope_accuracy) for r in RECALLS}
    return {
        "top1": top1(gold, d),
        "threshold": b.threshold,
        "in_scope_accuracy": pct(b.in_scope_accuracy),
        "unknown_recall": pct(b.unknown_recall),
        "merit": merit(b),
        "in_scope_accuracy_at_current_recall": pct(
            at_recall(
                points, (b.unknown_recall or 0.0) if recall is None else recall
            ).in_scope_accuracy
        ),
        "in_scope_accuracy_at_recall": at,
        "in_scope_accuracy_at_recall_80_95": float(np.mean(list(at.values()))),
        "auroc": auroc(gold, d.score),
        "score_ms_per_message": 1000 * d.seconds / len(gold),
    }


def test_figures(gold: Sequence[str], d: Decisions, threshold: float) -> dict[str, Any]:
    p = sweep(gold, d.candidates, d.score, [threshold])[0]
    return {
        "top1": top1(gold, d),
        "threshold": threshold,
        "in_scope_accuracy": pct(p.in_scope_accuracy),
        "unknown_recall": pct(p.unknown_recall),
        "merit": merit(p),
    }


# ---------------------------------------------------------------- the sets


def load_set(key: str, data: Path, cache: Path) -> tuple[BenchSet, list[dict[str, Any]]]:
    """The set ``key`` embedded (cached under ``cache``), and its val rows."""
    intents: IntentSet
    if key == "clinc":
        intents, evals = clinc_intents(data), data
    else:
        folder = ROOT / "intents" / ("zh" if key == "zh" else "")
        intents, evals = load_intents(folder), folder / "eval"
    val, test = read_jsonl(evals / "val.jsonl"), read_jsonl(evals / "test.jsonl")
    t0 = time.perf_counter()
    bench = make_set(key, MODELS[key], intents, val, test, cache / key)
    print(f"  {key}: loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    return bench, val


def variant_index(bench: BenchSet, variant: Variant) -> VariantIndex:
    layers = bench.engine.encoder.layers
    return VariantIndex(bench.index, bench.exemplars, bench.negatives, layers, variant)


def f(v: float | None, width: int = 6, digits: int = 2) -> str:
    return f"{'-':>{width}s}" if v is None else f"{v:{width}.{digits}f}"


def measure_set(
    bench: BenchSet, val_rows: list[dict[str, Any]], variants: Sequence[Variant]
) -> tuple[dict[str, Any], dict[str, Decisions]]:
    """Every variant on the set's val; prints its table. Returns the figures and decisions."""
    gold = bench.val.gold
    layers = bench.engine.encoder.layers
    mismatches = check_replica(bench, val_rows)
    runs = {CURRENT: decisions(bench, bench.index, bench.val)}
    current = val_figures(gold, runs[CURRENT], None)
    current_recall = (current["unknown_recall"] or 0.0) / 100
    rows: dict[str, Any] = {CURRENT: {"val": current, "build_seconds": None}}
    n_unknown = sum(g == UNKNOWN for g in gold)
    print(
        f"\n## {bench.name} ({bench.model}): {len(bench.index.names)} intents, "
        f"{bench.intents.example_count} exemplars, {len(bench.intents.out_of_scope)} "
        f"out_of_scope; val {len(gold)} rows ({n_unknown} unknown); {layers} block(s); "
        f"lexical {bench.index.lexical_weight:g}; the replica differs from Engine.classify on "
        f"{mismatches} of {min(len(val_rows), 200)} val rows"
    )
    print(
        f"{'variant':26s} {'top1':>6s} {'merit':>6s} {'in':>6s} {'unk':>6s} {'thr':>7s} "
        f"{'in@rec':>6s} {'in@80-95':>8s} {'AUROC':>6s} {'build s':>7s} {'ms/msg':>6s}"
    )

    def show(name: str, r: dict[str, Any], build: float | None) -> None:
        print(
            f"{name:26s} {f(r['top1'])} {f(r['merit'])} {f(r['in_scope_accuracy'])} "
            f"{f(r['unknown_recall'])} {r['threshold']:7.4f} "
            f"{f(r['in_scope_accuracy_at_current_recall'])} "
            f"{f(r['in_scope_accuracy_at_recall_80_95'], 8)} {f(r['auroc'])} "
            f"{f(build, 7)} {f(r['score_ms_per_message'], 6, 3)}",
            flush=True,
        )

    show(CURRENT, current, None)
    for variant in variants:
        if variant.ensemble == "last" and layers == 1:
            print(f"{variant.name:26s} n/a: the encoder gives one block")
            continue
        index = variant_index(bench, variant)
        runs[variant.name] = decisions(bench, index, bench.val)
        r = val_figures(gold, runs[variant.name], current_recall)
        rows[variant.name] = {"val": r, "build_seconds": index.build_seconds}
        show(variant.name, r, index.build_seconds)
    replica = runs.get(REPLICA)
    replica_differs = None
    if replica is not None:
        differs = np.array(replica.candidates) != np.array(runs[CURRENT].candidates)
        differs |= ~np.isclose(replica.score, runs[CURRENT].score, rtol=0, atol=1e-5)
        replica_differs = int(differs.sum())
        print(f"{REPLICA} differs from the product's index on {replica_differs} val rows")
    out = {
        "model": bench.model,
        "intents": len(bench.index.names),
        "exemplars": bench.intents.example_count,
        "out_of_scope_examples": len(bench.intents.out_of_scope),
        "val_rows": len(gold),
        "val_unknown_rows": n_unknown,
        "blocks": layers,
        "lexical_weight": bench.index.lexical_weight,
        "replica_mismatches": mismatches,
        "replica_variant_differs": replica_differs,
        "current_recall": 100 * current_recall,
        "variants": rows,
    }
    return out, runs


# ---------------------------------------------------------------- the protocol


def verdicts(sets: dict[str, Any]) -> dict[str, Any]:
    """Per variant: its val differences from the current product and whether it is a
    candidate (module doc); needs the clinc and en sets."""
    clinc, en = sets["clinc"]["variants"], sets["en"]["variants"]
    zh = sets.get("zh", {}).get("variants", {})

    def gain(rows: dict[str, Any], name: str, key: str) -> float | None:
        if name not in rows:
            return None
        value: float = rows[name]["val"][key] - rows[CURRENT]["val"][key]
        return value

    out: dict[str, Any] = {}
    for name in clinc:
        if name in {CURRENT, REPLICA}:  # the replica is the product: a check, not a variant
            continue
        merit_gain = gain(clinc, name, "merit") or 0.0
        in_gain = gain(clinc, name, "in_scope_accuracy_at_current_recall") or 0.0
        en_gain = gain(en, name, "merit")
        failed = [
            label
            for label, ok in (
                ("CLINC merit", merit_gain > EPS),
                ("CLINC in@rec", in_gain > EPS),
                ("En merit", en_gain is not None and en_gain >= -EN_SLACK - EPS),
            )
            if not ok
        ]
        out[name] = {
            "clinc_merit_gain": merit_gain,
            "clinc_in_at_recall_gain": in_gain,
            "en_merit_gain": en_gain,
            "zh_merit_gain": gain(zh, name, "merit"),
            "candidate": not failed,
            "failed": failed,
        }
    print(
        "\nverdicts: val gains over current, points (C: CLINC150)\n"
        f"{'variant':26s} {'C merit':>7s} {'C in@rec':>8s} {'En merit':>8s} {'Zh merit':>8s}  "
        "verdict"
    )
    for name, v in out.items():
        verdict = "CANDIDATE" if v["candidate"] else "no: " + ", ".join(v["failed"])
        print(
            f"{name:26s} {v['clinc_merit_gain']:+7.2f} "
            f"{v['clinc_in_at_recall_gain']:+8.2f} {signed(v['en_merit_gain'], 8)} "
            f"{signed(v['zh_merit_gain'], 8)}  {verdict}"
        )
    return out


def signed(v: float | None, width: int) -> str:
    return f"{'n/a':>{width}s}" if v is None else f"{v:+{width}.2f}"


def measure_test(benches: dict[str, BenchSet], sets: dict[str, Any], names: list[str]) -> None:
    """The candidates ``names`` and the current product on test, val-chosen thresholds."""
    for key, bench in benches.items():
        rows = sets[key]["variants"]
        gold = bench.test.gold
        print(f"\n## {key} TEST, each at its val-chosen threshold")
        for name in [CURRENT, *names]:
            if name not in rows:
                continue
            index = bench.index if name == CURRENT else variant_index(bench, BY_NAME[name])
            d = decisions(bench, index, bench.test)
            r = test_figures(gold, d, rows[name]["val"]["threshold"])
            rows[name]["test"] = r
            print(
                f"  {name:26s} top1 {f(r['top1'])}  merit {f(r['merit'])}  "
                f"in {f(r['in_scope_accuracy'])}  unk {f(r['unknown_recall'])}  "
                f"thr {r['threshold']:.4f}",
                flush=True,
            )


def bootstrap(
    gold: Sequence[str], runs: dict[str, Decisions], names: list[str], resamples: int
) -> dict[str, Any]:
    """Paired, stratified bootstrap of merit and ``in@rec`` differences from current (module
    doc): mean, 5% and 95% quantiles, share above zero; in points."""
    g = np.array(gold)
    arrays = {n: (np.array(runs[n].candidates), runs[n].score) for n in [CURRENT, *names]}
    in_scope, unknown = np.flatnonzero(g != UNKNOWN), np.flatnonzero(g == UNKNOWN)
    rng = np.random.default_rng(0)
    diffs: dict[str, dict[str, list[float]]] = {n: {"merit": [], "in@rec": []} for n in names}

    def points(name: str, rows: I64) -> list[SweepPoint]:
        candidates, score = arrays[name]
        return curve(g[rows].tolist(), Decisions(candidates[rows].tolist(), score[rows], 0.0))

    for _ in range(resamples):
        rows = np.concatenate(
            [rng.choice(in_scope, len(in_scope)), rng.choice(unknown, len(unknown))]
        )
        current = points(CURRENT, rows)
        base = balanced(current)
        recall = base.unknown_recall or 0.0
        base_in = at_recall(current, recall).in_scope_accuracy or 0.0
        for name in names:
            p = points(name, rows)
            diffs[name]["merit"].append(merit(balanced(p)) - merit(base))
            diffs[name]["in@rec"].append(
                100 * ((at_recall(p, recall).in_scope_accuracy or 0.0) - base_in)
            )
    out: dict[str, Any] = {}
    print(
        f"\nbootstrap of CLINC150 val, {resamples} resamples (points, variant - current):\n"
        f"{'variant':26s} {'merit':>6s} {'90% interval':>16s} {'P>0':>5s} | "
        f"{'in@rec':>6s} {'90% interval':>16s} {'P>0':>5s}"
    )
    for name in names:
        out[name] = {}
        for key, values in diffs[name].items():
            x = np.array(values)
            out[name][key] = {
                "mean": float(x.mean()),
                "low": float(np.quantile(x, 0.05)),
                "high": float(np.quantile(x, 0.95)),
                "share_above_zero": float((x > 0).mean()),
            }
        m, a = out[name]["merit"], out[name]["in@rec"]
        print(
            f"{name:26s} {m['mean']:+6.2f} [{m['low']:+6.2f}, {m['high']:+6.2f}] "
            f"{m['share_above_zero']:5.2f} | {a['mean']:+6.2f} [{a['low']:+6.2f}, "
            f"{a['high']:+6.2f}] {a['share_above_zero']:5.2f}"
        )
    return out


# ---------------------------------------------------------------- main


def names_of(value: str, ap: argparse.ArgumentParser, flag: str) -> list[str]:
    names = [n.strip() for n in value.split(";") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"{flag}: no variant {unknown}; the variants: {'; '.join(BY_NAME)}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "intent-router-head-variants-cache",
        help="vector caches, one folder per set",
    )
    ap.add_argument("--sets", default="clinc,en,zh", help="which sets: clinc, en, zh")
    ap.add_argument("--only", default="", help=f'"NAME;NAME": these variants (and "{REPLICA}")')
    ap.add_argument(
        "--test",
        default="",
        help=f'"NAME;NAME": at most {MAX_TEST} val candidates to measure on test as well',
    )
    ap.add_argument(
        "--bootstrap", type=int, default=0, metavar="N", help="CLINC150 val resamples (0: none)"
    )
    add_record_flag(ap)
    args = ap.parse_args()
    keys = [k for k in args.sets.split(",") if k]
    if not keys or set(keys) - set(MODELS):
        ap.error(f"--sets: choose from {', '.join(MODELS)}")
    only = names_of(args.only, ap, "--only")
    variants = [v for v in VARIANTS if not only or v.name in only or v.name == REPLICA]
    test_names = names_of(args.test, ap, "--test")
    if len(test_names) > MAX_TEST:
        ap.error(f"--test: at most {MAX_TEST} candidates")
    if test_names and not {"clinc", "en"} <= set(keys):
        ap.error("--test: candidates are chosen on the clinc and en sets; include both")
    if set(test_names) - {v.name for v in variants}:
        ap.error("--test: a variant --only leaves out")
    if args.bootstrap and "clinc" not in keys:
        ap.error("--bootstrap resamples CLINC150 val; include clinc")
    record = Run("head_variants", args)
    logging.basicConfig(level=logging.WARNING)

    benches: dict[str, BenchSet] = {}
    sets: dict[str, Any] = {}
    clinc_runs: dict[str, Decisions] = {}
    for key in keys:
        bench, val_rows = load_set(key, args.data, args.cache)
        sets[key], runs = measure_set(bench, val_rows, variants)
        benches[key] = bench
        if key == "clinc":
            clinc_runs = runs

    verdict = verdicts(sets) if {"clinc", "en"} <= set(keys) else None
    if verdict is not None and test_names:
        refused = [n for n in test_names if not verdict[n]["candidate"]]
        for name in refused:
            print(f"--test {name}: not a candidate on val; not measured on test")
        chosen = [n for n in test_names if n not in refused]
        if chosen:
            measure_test(benches, sets, chosen)
    spread = None
    if args.bootstrap:
        clinc = sets["clinc"]["variants"]
        raising = [
            n
            for n in clinc
            if n not in {CURRENT, REPLICA}
            and clinc[n]["val"]["merit"] > clinc[CURRENT]["val"]["merit"] + EPS
        ]
        spread = bootstrap(benches["clinc"].val.gold, clinc_runs, raising, args.bootstrap)
    record.finish(
        {
            "unit": "per cent of rows; merit = 0.8 x in-scope accuracy + 0.2 x unknown recall "
            "at the balanced threshold chosen on val; gains in points",
            "protocol": {
                "selection": "val only",
                "candidate": "CLINC150 val merit and in@rec both raised; English val merit "
                f"lowered by at most {EN_SLACK} points",
                "max_test": MAX_TEST,
            },
            "sets": sets,
            "verdicts": verdict,
            "bootstrap": spread,
        }
    )


if __name__ == "__main__":
    main()
