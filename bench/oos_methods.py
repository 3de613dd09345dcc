"""Near-domain out-of-scope: does another confidence refuse more unknown messages at the
same in-scope accuracy? CLINC150, the bundled English set and the bundled Chinese set.

    python bench/oos_methods.py [--data ../shared/data/clinc150] [--clinc-models minilm]
                                [--cache DIR] [--sets clinc,en,zh] [--no-record]

Each set is embedded once, as the server embeds (``Engine``'s negation analysis and pooling
spans, the same ``VectorCache`` for exemplars and messages, kept on disk under
``--cache``), with its model: MiniLM for CLINC150 (``--clinc-models`` may add
``use-multilingual``) and the English set, ``use-multilingual`` for the Chinese one.
Exemplars are the intents' examples (CLINC150: its in-scope train rows; the bundled sets:
their YAML, with the Chinese ``out_of_scope:`` examples as the product uses them); no
threshold of the files is used. The index is ``Engine.build``'s, and every row is decided as
``Engine.classify`` decides (refused intents excluded, ``nothing_wanted`` answered unknown
at any threshold); the replica is checked against ``Engine.classify`` on 200 val rows per set.

Methods (each keeps the product's ranking, so the candidate is the same, and replaces only
the confidence compared with the threshold; fixed weights, none tuned):

* ``current``: ``Index.scores`` (the head's mixed confidence);
* ``margin``: the winner's score minus the runner-up's (standalone);
* ``current + margin``: current + 0.25 x that margin;
* ``kNN density``: the message's mean cosine to its 5 nearest exemplars minus those
  exemplars' own mean cosine to their 5 nearest (a local outlier factor; standalone);
* ``current + kNN density``: current - 0.25 x (the 5 nearest exemplars' own density -
  the mean exemplar's): in a dense region the message must come closer;
* ``current + intent density``: current - 0.25 x (the winner's exemplars' mean
  top-3 cosine to each other - the mean over intents): a tight intent asks for more;
* ``near-miss negatives``: the head trained with a reject class (as ``out_of_scope:``
  examples train it) on near-miss negatives built from the exemplars: for each exemplar,
  the midpoint between it and its nearest exemplar of another intent (the file's own
  ``out_of_scope:`` examples kept beside them);
* ``Mahalanobis``: minus the smallest Mahalanobis distance of the sentence vector to an
  intent's mean, one shared covariance shrunk by Ledoit-Wolf (standalone).

Two comparisons per method, thresholds chosen on val only (``router.quality.evaluate.sweep``
over the val scores):

* ``matched``: the highest threshold whose val in-scope accuracy is at least the current
  scoring's at its balanced point (the lowest threshold when none reaches it); val unknown
  recall there (the val verdict), then test in-scope accuracy and unknown recall there;
* ``balanced``: the threshold ``router.quality.tuning.choose`` picks with the ``balanced``
  objective (``tune``'s default), applied to test.

A method is worth adopting only if its matched val recall and matched test recall beat
``current`` on every set. Writes bench/results/ (bench/_record.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _model import open_model
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from _sets import read_jsonl, strip_thresholds

from router.quality.evaluate import SweepPoint, sweep
from router.quality.tuning import Objective, choose
from router.routing.engine import Engine, TextEncoder, refused_texts
from router.routing.folding import FOLDING, fold
from router.routing.index import Index, IndexSettings, Scored
from router.routing.intents import UNKNOWN, Intent, IntentSet, load_intents
from router.routing.negation import Analysis, NegationSettings, analyse, pooling_spans
from router.routing.vectorcache import VectorCache
from router.vectors import unit_rows

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
ROOT = Path(__file__).resolve().parents[1]
MIX = 0.25  # the weight of one cosine term in the head's confidence (head.DEFAULT_MIX)
KNN = 5  # the head's any-exemplar k (head.DEFAULT_ANY_K)
LOCAL_K = 3  # the index's top-k (IndexSettings.k)
CHUNK = 2048
CHECK_ROWS = 200
#: The balanced objective's out-of-scope share (tune's default).
BALANCED_SHARE = 0.2
#: In-scope accuracy of the oracle diagnostic (issue #14's Chinese target).
ORACLE_ACCURACY = 0.95


# ---------------------------------------------------------------- embedding, as served


@dataclass
class Split:
    """Labelled messages embedded as ``Engine.classify`` embeds them."""

    texts: list[str]
    kept: list[str]  # the texts with refusals blanked: what the lexical overlap reads
    gold: list[str]
    vectors: F32  # (m, width)
    owners: list[int]  # the row of each refused span
    span_texts: list[str]  # the refused spans
    span_vectors: F32  # (spans, width) refused spans, embedded plainly
    wants_nothing: NDArray[np.bool_]


def _analyses(texts: Sequence[str], negation: NegationSettings) -> list[Analysis]:
    if not negation.enabled:
        return [Analysis(t) for t in texts]
    return [analyse(t, negation.lexicon) for t in texts]


def embed_split(
    encoder: TextEncoder, cache: VectorCache, negation: NegationSettings, rows: list[dict[str, Any]]
) -> Split:
    texts = [r["text"] for r in rows]
    analyses = _analyses(texts, negation)
    by_text = {a.text: a for a in analyses}

    def encode(batch: Sequence[str]) -> F32:
        chosen = [by_text[t] for t in batch]
        spans = [pooling_spans(a, negation) for a in chosen]
        return encoder.embed([fold(a.text) for a in chosen], spans)  # as Engine._encode

    def plain(batch: Sequence[str]) -> F32:
        return encoder.embed([fold(t) for t in batch], [[] for _ in batch])

    vectors = cache.embed(texts, encode, f"{negation.key()}|{FOLDING}", save=False)
    owners = [(row, t) for row, a in enumerate(analyses) for t in refused_texts(a)]
    spans = cache.embed([t for _, t in owners], plain, f"plain|{FOLDING}", save=False)
    cache.save()
    return Split(
        texts,
        [a.kept_text() for a in analyses],
        [r["intent"] for r in rows],
        vectors,
        [row for row, _ in owners],
        [t for _, t in owners],
        spans,
        np.array([a.wants_nothing(negation.lexicon) for a in analyses], dtype=bool),
    )


# ---------------------------------------------------------------- the sets


@dataclass
class BenchSet:
    name: str
    model: str
    intents: IntentSet
    engine: Engine
    index: Index  # Engine.build's
    exemplars: F32  # rows of the examples, in index order
    negatives: F32 | None  # rows of the ``out_of_scope:`` examples
    val: Split
    test: Split


def make_set(
    name: str, model: str, intents: IntentSet, val: list[dict[str, Any]],
    test: list[dict[str, Any]], cache_dir: Path,
) -> BenchSet:  # fmt: skip
    encoder = open_model(model, threads=2).encoder
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = VectorCache(encoder.fingerprint, encoder.width, cache_dir)
    # messages in a cache of their own: a load keeps only the exemplars in the engine's
    queries = VectorCache(encoder.fingerprint, encoder.width, cache_dir / "messages")
    engine = Engine(encoder, IndexSettings(calibrate=False), cache=cache)
    intents = strip_thresholds(intents)
    snapshot = engine.load(intents)
    exemplars, negatives = engine.exemplar_vectors(intents)
    negation = engine.negation_of(intents)
    print(f"  {name} ({model}): embedding val and test", flush=True)
    return BenchSet(
        name,
        model,
        intents,
        engine,
        snapshot.index,
        exemplars,
        negatives,
        embed_split(encoder, queries, negation, val),
        embed_split(encoder, queries, negation, test),
    )


def clinc_intents(data: Path) -> IntentSet:
    by_intent: dict[str, list[str]] = {}
    for r in read_jsonl(data / "train.jsonl"):
        if r["intent"] != UNKNOWN:
            by_intent.setdefault(r["intent"], []).append(r["text"])
    return IntentSet(
        intents=tuple(Intent(name=k, examples=tuple(v)) for k, v in sorted(by_intent.items())),
        default_threshold=None,
        files=(),
        revision="clinc150-train",
    )


# ---------------------------------------------------------------- deciding, as served


@dataclass
class Decided:
    """Each row's candidate (the product's ranking; -1: ``nothing_wanted``) and scores."""

    winner: I64
    scored: Scored
    score: F32  # the current confidence of the winner


def decide(index: Index, split: Split) -> Decided:
    """``Engine.classify``'s decision, from the split's vectors (see the module doc)."""
    scored = index.scores(split.vectors, split.kept)
    rank = scored.rank.copy()
    if split.owners:
        named = index.scores(split.span_vectors, split.span_texts).scores
        for row, span in zip(split.owners, named, strict=True):
            target = int(np.argmax(span))
            if span[target] > scored.scores[row, target]:
                rank[row, target] = -np.inf
    winner = np.argmax(rank, axis=1).astype(np.int64)  # first maximum, as argsort(stable)
    winner[split.wants_nothing] = -1
    rows = np.arange(len(winner))
    score = np.where(winner >= 0, scored.scores[rows, np.maximum(winner, 0)], -np.inf)
    return Decided(winner, scored, score.astype(np.float32))


def check_replica(bench: BenchSet, rows: list[dict[str, Any]]) -> int:
    """Rows of the first ``CHECK_ROWS`` val rows where the replica differs from the engine."""
    n = min(CHECK_ROWS, len(rows))
    result = bench.engine.classify([r["text"] for r in rows[:n]], top_k=1)
    mine = decide(bench.index, bench.val)
    names = bench.index.names
    differ = 0
    for row, p in enumerate(result.predictions):
        w = int(mine.winner[row])
        if w < 0:
            differ += p.reason != "nothing_wanted"
        else:
            differ += p.candidate != names[w] or abs(p.score - float(mine.score[row])) > 1e-4
    return differ


# ---------------------------------------------------------------- the methods

Method = Callable[[Split], tuple[I64, F32]]  # split -> (candidate, -1 unknown; confidence)


def _top_k_cosines(a: F32, b: F32, k: int, exclude_self: bool) -> F32:
    """(len(a), k) the k highest cosines of each row of ``a`` to the rows of ``b``."""
    out = np.empty((len(a), k), dtype=np.float32)
    for start in range(0, len(a), CHUNK):
        sims = a[start : start + CHUNK] @ b.T
        if exclude_self:
            rows = np.arange(len(sims))
            sims[rows, rows + start] = -np.inf
        out[start : start + CHUNK] = np.sort(np.partition(sims, -k, axis=1)[:, -k:], axis=1)
    return out


@dataclass
class Geometry:
    """What the density methods read, computed once per set from the exemplars."""

    unit: F32  # (n, dim) the exemplars' sentence vectors
    density: F32  # (n,) each exemplar's mean cosine to its KNN nearest other exemplars
    intent_density: F32  # (n_intents,) mean top-LOCAL_K cosine within the intent, leave one out

    @classmethod
    def of(cls, index: Index) -> Geometry:
        unit = np.asarray(index.matrix, dtype=np.float32)
        k = min(KNN, len(unit) - 1)
        density = _top_k_cosines(unit, unit, k, exclude_self=True).mean(axis=1)
        per_intent = []
        ends = [*index.intent_offsets[1:].tolist(), len(unit)]
        for start, end in zip(index.intent_offsets.tolist(), ends, strict=True):
            group = unit[start:end]
            if len(group) < 2:
                per_intent.append(np.nan)
                continue
            kk = min(LOCAL_K, len(group) - 1)
            per_intent.append(float(_top_k_cosines(group, group, kk, True).mean()))
        values = np.array(per_intent, dtype=np.float32)
        values[np.isnan(values)] = np.nanmean(values)
        return cls(unit, density.astype(np.float32), values)


def _rows(decided: Decided) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    return np.arange(len(decided.winner)), decided.winner >= 0


def _with(decided: Decided, value: F32) -> tuple[I64, F32]:
    """``value`` as the confidence; ``nothing_wanted`` rows stay unknown at any threshold."""
    return decided.winner, np.where(decided.winner >= 0, value, -np.inf).astype(np.float32)


def _margin(decided: Decided) -> F32:
    rows, _ = _rows(decided)
    scores = decided.scored.scores
    best = scores[rows, np.maximum(decided.winner, 0)]
    others = scores.copy()
    others[rows, np.maximum(decided.winner, 0)] = -np.inf
    out: F32 = (best - others.max(axis=1)).astype(np.float32)
    return out


def _neighbour_density(geo: Geometry, split: Split) -> tuple[F32, F32]:
    """The message's mean cosine to its KNN nearest exemplars, and theirs to their own."""
    query = unit_rows(split.vectors[:, -geo.unit.shape[1] :])
    near = np.empty(len(query), dtype=np.float32)
    their = np.empty(len(query), dtype=np.float32)
    k = min(KNN, len(geo.unit))
    for start in range(0, len(query), CHUNK):
        sims = query[start : start + CHUNK] @ geo.unit.T
        ids = np.argpartition(sims, -k, axis=1)[:, -k:]
        near[start : start + CHUNK] = np.take_along_axis(sims, ids, axis=1).mean(axis=1)
        their[start : start + CHUNK] = geo.density[ids].mean(axis=1)
    return near, their


def mahalanobis_method(index: Index) -> Callable[[Split, Decided], F32]:
    """Minus the smallest Mahalanobis distance to an intent mean (shared, Ledoit-Wolf)."""
    x = np.asarray(index.matrix, dtype=np.float64)
    labels = index.example_intents
    means = np.stack([x[labels == c].mean(axis=0) for c in range(len(index.names))])
    centred = x - means[labels]
    n, d = centred.shape
    cov = centred.T @ centred / n
    mu = np.trace(cov) / d
    # Ledoit-Wolf: shrink toward mu x I by beta / delta (no free parameter)
    delta = float(np.sum((cov - mu * np.eye(d)) ** 2)) / d
    sq = (centred**2).sum(axis=1)
    quad = np.einsum("nd,de,ne->n", centred, cov, centred)
    beta = float(np.sum(sq**2 - 2 * quad + np.sum(cov**2))) / (n * n * d)
    shrink = min(beta, delta) / delta if delta else 1.0
    precision = np.linalg.inv((1 - shrink) * cov + shrink * mu * np.eye(d))

    def score(split: Split, decided: Decided) -> F32:
        q = unit_rows(split.vectors[:, -d:]).astype(np.float64)
        qp, mp = q @ precision, means @ precision
        dist = (qp * q).sum(1)[:, None] - 2 * qp @ means.T + (mp * means).sum(1)[None, :]
        out: F32 = (-np.sqrt(np.maximum(dist.min(axis=1), 0))).astype(np.float32)
        return out

    return score


def near_miss_rows(exemplars: F32, index: Index) -> F32:
    """For each exemplar, the midpoint between it and its nearest exemplar of another
    intent (raw rows, every block: the head's features are built from them)."""
    unit = np.asarray(index.matrix, dtype=np.float32)
    labels = index.example_intents
    partner = np.empty(len(unit), dtype=np.int64)
    for start in range(0, len(unit), CHUNK):
        sims = unit[start : start + CHUNK] @ unit.T
        same = labels[start : start + CHUNK, None] == labels[None, :]
        sims[same] = -np.inf
        partner[start : start + CHUNK] = sims.argmax(axis=1)
    out: F32 = ((exemplars + exemplars[partner]) / 2).astype(np.float32)
    return out


def methods(bench: BenchSet) -> dict[str, Method]:
    index = bench.index
    geo = Geometry.of(index)
    mean_density = float(geo.density.mean())
    mean_intent = float(geo.intent_density.mean())
    mahalanobis = mahalanobis_method(index)
    synthetic = near_miss_rows(bench.exemplars, index)
    negatives = (
        synthetic if bench.negatives is None else np.concatenate([bench.negatives, synthetic])
    )
    near_miss = Index(
        bench.index.intents,
        bench.exemplars,
        index.settings,
        negatives,
        layers=bench.engine.encoder.layers,
    )

    def current(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        return _with(d, d.score)

    def margin(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        return _with(d, _margin(d))

    def current_margin(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        return _with(d, d.score + MIX * _margin(d))

    def knn(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        near, their = _neighbour_density(geo, split)
        return _with(d, near - their)

    def current_knn(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        _, their = _neighbour_density(geo, split)
        return _with(d, d.score - MIX * (their - mean_density))

    def current_intent(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        tight = geo.intent_density[np.maximum(d.winner, 0)]
        return _with(d, d.score - MIX * (tight - mean_intent))

    def with_near_miss(split: Split) -> tuple[I64, F32]:
        d = decide(near_miss, split)
        return _with(d, d.score)

    def maha(split: Split) -> tuple[I64, F32]:
        d = decide(index, split)
        return _with(d, mahalanobis(split, d))

    return {
        "current": current,
        "margin": margin,
        "current + margin": current_margin,
        "kNN density": knn,
        "current + kNN density": current_knn,
        "current + intent density": current_intent,
        "near-miss negatives": with_near_miss,
        "Mahalanobis": maha,
    }


# ---------------------------------------------------------------- thresholds and figures


def labels(bench: BenchSet, winner: I64) -> list[str]:
    names = bench.index.names
    return [UNKNOWN if w < 0 else names[w] for w in winner.tolist()]


def grid(scores: F32) -> NDArray[np.float64]:
    """Midpoints between the distinct finite val scores, plus one below and one above."""
    u = np.unique(scores[np.isfinite(scores)].astype(np.float64))
    return np.concatenate([[u[0] - 1e-3], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-3]])


def pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def point(p: SweepPoint) -> dict[str, Any]:
    return {
        "threshold": p.threshold,
        "in_scope_accuracy": pct(p.in_scope_accuracy),
        "unknown_recall": pct(p.unknown_recall),
        "accuracy": pct(p.accuracy),
    }


def auroc(gold: Sequence[str], score: F32) -> float | None:
    """Per cent: the chance that an in-scope row outscores an unknown one (ties half)."""
    unknown = np.array([g == UNKNOWN for g in gold])
    if unknown.all() or not unknown.any():
        return None
    neg = np.sort(score[unknown].astype(np.float64))
    pos = score[~unknown].astype(np.float64)
    below = np.searchsorted(neg, pos, side="left")
    equal = np.searchsorted(neg, pos, side="right") - below
    return 100 * float((below + equal / 2).sum()) / (len(pos) * len(neg))


def evaluate_method(
    bench: BenchSet, method: Method, baseline_val_accuracy: float | None
) -> dict[str, Any]:
    val_cand, val_score = method(bench.val)
    test_cand, test_score = method(bench.test)
    vc, tc = labels(bench, val_cand), labels(bench, test_cand)
    thresholds = grid(val_score)
    curve = sweep(bench.val.gold, vc, val_score, thresholds)
    balanced = curve[choose(curve, Objective.BALANCED, BALANCED_SHARE)]
    out: dict[str, Any] = {
        "val_auroc": auroc(bench.val.gold, val_score),
        "test_auroc": auroc(bench.test.gold, test_score),
        "val_balanced": point(balanced),
        "test_balanced": point(sweep(bench.test.gold, tc, test_score, [balanced.threshold])[0]),
    }
    target = baseline_val_accuracy
    if target is None:
        target = balanced.in_scope_accuracy or 0.0
    ok = [p for p in curve if (p.in_scope_accuracy or 0.0) >= target - 1e-12]
    matched = ok[-1] if ok else curve[0]
    out["val_matched"] = point(matched)
    out["test_matched"] = point(sweep(bench.test.gold, tc, test_score, [matched.threshold])[0])
    # Diagnostic only, never a setting: the best test unknown recall any threshold gives
    # with test in-scope accuracy >= ORACLE_ACCURACY (can the confidence reach it at all?)
    test_curve = sweep(bench.test.gold, tc, test_score, grid(test_score))
    reach = [
        p.unknown_recall or 0.0
        for p in test_curve
        if (p.in_scope_accuracy or 0.0) >= ORACLE_ACCURACY - 1e-12
    ]
    out["test_oracle_recall"] = pct(max(reach)) if reach else None
    ins = np.array([g != UNKNOWN for g in bench.test.gold])
    out["test_top1"] = 100 * float(
        np.mean([c == g for c, g, i in zip(tc, bench.test.gold, ins, strict=True) if i])
    )
    return out


def f(v: float | None) -> str:
    return "     -" if v is None else f"{v:6.1f}"


def run_set(bench: BenchSet, check_rows: list[dict[str, Any]]) -> dict[str, Any]:
    differ = check_replica(bench, check_rows)
    n_unk = sum(g == UNKNOWN for g in bench.test.gold)
    print(
        f"\n## {bench.name} ({bench.model}): {len(bench.index.names)} intents, "
        f"{bench.intents.example_count} exemplars, {len(bench.intents.out_of_scope)} out_of_scope; "
        f"val {len(bench.val.gold)} rows, test {len(bench.test.gold)} ({n_unk} unknown); "
        f"replica differs from Engine.classify on {differ} of "
        f"{min(CHECK_ROWS, len(check_rows))} val rows"
    )
    print(
        f"{'method':28s} | balanced on val: val in/unk  test in/unk    thr | "
        f"matched val in-acc: val unk  test in/unk    thr | orc95 | AUROC val  test"
    )
    results: dict[str, Any] = {}
    baseline: float | None = None
    for name, method in methods(bench).items():
        r = evaluate_method(bench, method, baseline)
        if baseline is None:
            baseline = r["val_balanced"]["in_scope_accuracy"] / 100
        results[name] = r
        vb, tb, vm, tm = r["val_balanced"], r["test_balanced"], r["val_matched"], r["test_matched"]
        print(
            f"{name:28s} | {f(vb['in_scope_accuracy'])}{f(vb['unknown_recall'])} "
            f"{f(tb['in_scope_accuracy'])}{f(tb['unknown_recall'])} {vb['threshold']:7.3f} | "
            f"{f(vm['in_scope_accuracy'])}{f(vm['unknown_recall'])} "
            f"{f(tm['in_scope_accuracy'])}{f(tm['unknown_recall'])} {vm['threshold']:7.3f} | "
            f"{f(r['test_oracle_recall'])} | {f(r['val_auroc'])}{f(r['test_auroc'])}",
            flush=True,
        )
    return {
        "model": bench.model,
        "intents": len(bench.index.names),
        "exemplars": bench.intents.example_count,
        "out_of_scope_examples": len(bench.intents.out_of_scope),
        "val_rows": len(bench.val.gold),
        "test_rows": len(bench.test.gold),
        "replica_mismatches": differ,
        "methods": results,
    }


def verdicts(sets: dict[str, Any]) -> dict[str, Any]:
    """Per method: does it beat ``current`` on matched val and test unknown recall everywhere?"""
    out: dict[str, Any] = {}
    names = next(iter(sets.values()))["methods"].keys()
    for name in names:
        if name == "current":
            continue
        gains = {}
        for key, s in sets.items():
            base, m = s["methods"]["current"], s["methods"][name]
            gains[key] = {
                split: m[f"{split}_matched"]["unknown_recall"]
                - base[f"{split}_matched"]["unknown_recall"]
                for split in ("val", "test")
            }
        wins = all(g["val"] > 0 and g["test"] > 0 for g in gains.values())
        out[name] = {"recall_gain_at_matched_accuracy": gains, "wins_everywhere": wins}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    ap.add_argument("--clinc-models", default="minilm", help="comma-separated, for CLINC150")
    ap.add_argument("--sets", default="clinc,en,zh", help="which sets: clinc, en, zh")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-oos-cache"
    )
    add_record_flag(ap)
    args = ap.parse_args()
    record = Run("oos_methods", args)
    logging.basicConfig(level=logging.WARNING)
    chosen = set(args.sets.split(","))
    plans: list[tuple[str, str, IntentSet, Path, Path]] = []
    if "clinc" in chosen:
        for model in args.clinc_models.split(","):
            plans.append(
                (f"clinc150/{model}", model, clinc_intents(args.data), args.data / "val.jsonl",
                 args.data / "test.jsonl")
            )  # fmt: skip
    if "en" in chosen:
        ev = ROOT / "intents" / "eval"
        plans.append(
            ("en", "minilm", load_intents(ROOT / "intents"), ev / "val.jsonl", ev / "test.jsonl")
        )
    if "zh" in chosen:
        ev = ROOT / "intents" / "zh" / "eval"
        plans.append(
            ("zh", "use-multilingual", load_intents(ROOT / "intents" / "zh"), ev / "val.jsonl",
             ev / "test.jsonl")
        )  # fmt: skip
    sets: dict[str, Any] = {}
    for key, model, intents, val_path, test_path in plans:
        val, test = read_jsonl(val_path), read_jsonl(test_path)
        bench = make_set(key, model, intents, val, test, args.cache / model)
        sets[key] = run_set(bench, val)
    verdict = verdicts(sets)
    print("\nrecall gain over current at matched val in-scope accuracy (val / test, points):")
    for name, v in verdict.items():
        gains = "  ".join(
            f"{k} {g['val']:+5.1f}/{g['test']:+5.1f}"
            for k, g in v["recall_gain_at_matched_accuracy"].items()
        )
        print(f"  {name:28s} {gains}  {'WINS' if v['wins_everywhere'] else 'no'}")
    record.finish(
        {
            "unit": "percent of rows; thresholds on each method's own scale, chosen on val",
            "sets": sets,
            "verdicts": verdict,
        }
    )


if __name__ == "__main__":
    main()
