"""Thresholds calibrated from the exemplars, against the model's default and a val-tuned one.

    python bench/calibration.py [--data ../shared/data/clinc150] [--cut 6] [--cache DIR]
                                [--no-zh] [--no-clinc] [--domains] [--no-record]

Every figure comes from ``router.quality.run.run_eval`` (``Engine.classify``, what the
service answers) on intents stripped of their thresholds, under three rules:

* ``calibrated``: ``IndexSettings()``, the default: ``routing/calibration.py`` sets the
  threshold from the exemplars (and ``out_of_scope:`` examples) alone;
* ``model default``: ``IndexSettings(calibrate=False)``: the catalogue default (MiniLM
  0.44, USE-m 0.55), what applied before;
* ``val-tuned``: ``router.quality.tuning.tune`` (``balanced``, the ``tune`` default) on
  the set's val file, applied as ``IndexSettings(default_threshold=...)``.

Nothing is tuned on test: the calibration sees only the exemplars; the quantile it takes
was chosen on val splits (the "quantile on val" table: balanced val score, 0.8 x in-scope
accuracy + 0.2 x unknown recall, at each quantile of the pseudo-negatives).

Sets:

a. ``intents/`` (English, MiniLM) cut to the first ``--cut`` examples of each intent;
   ``intents/eval/val.jsonl`` and ``test.jsonl``. Target (issue #16): in-scope accuracy
   within 5 points of the val-tuned threshold's, unknown recall >= 70%;
b. ``intents/`` whole; and ``as shipped`` (its tuned threshold applies: unchanged);
c. ``intents/zh`` with ``use-multilingual`` (``out_of_scope:`` kept); and as shipped;
d. CLINC150: train rows as one YAML, as ``bench/clinc150.py`` writes it, no threshold;
e. (``--domains``) each CLINC150 domain on its own (15 intents; the first 6 and 20 train
   rows of each); out of scope: CLINC's unknown rows and 100 rows of other domains.

Also:

* approximation: the pseudo-negatives the calibration computes (the head's term
  approximated) against exact ones (the head retrained without each intent, scored
  with ``Index.scores``) on a, b and c;
* cost: ``calibrate`` on built indexes of 2,000 exemplars (CLINC's first 20 intents, as
  ``bench/reload.py``) and 15,000 (all), median of 5, next to the index build;
  ``Engine.build`` with and without calibration (vectors cached: what a reload pays).

Percentages of rows; ``in-acc``: in-scope rows answered with their intent; ``unkR``:
unknown rows answered unknown. Writes bench/results/ (bench/_record.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _model import Model, open_model
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from _sets import figures, pct, read_jsonl, strip_thresholds, write_jsonl
from clinc150 import write_yaml

from router.quality.evaluate import metrics_at
from router.quality.run import EvalRun, run_eval
from router.quality.tuning import tune
from router.routing.calibration import NEGATIVE_QUANTILE, calibrate, negatives_of
from router.routing.engine import Engine
from router.routing.index import Index, IndexSettings
from router.routing.intents import UNKNOWN, IntentSet, load_intents
from router.routing.vectorcache import VectorCache

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / "intents"
ZH = ROOT / "intents" / "zh"

CALIBRATED = "calibrated"
MODEL_DEFAULT = "model default"
VAL_TUNED = "val-tuned"
SHIPPED = "as shipped"
#: Issue #16's targets for set a.
IN_SCOPE_GAP = 5.0
UNKNOWN_BAR = 70.0
#: Quantiles of the pseudo-negatives swept on val.
QUANTILES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
#: Weight of in-scope accuracy in the balanced val score (tune's default objective).
IN_SCOPE_WEIGHT = 0.8


def cut(intents: IntentSet, n: int) -> IntentSet:
    """The first ``n`` examples of each intent (a deterministic cut)."""
    return replace(
        intents,
        intents=tuple(replace(i, examples=i.examples[:n]) for i in intents.intents),
        revision=f"{intents.revision}-first{n}",
    )


def balanced(in_scope: float | None, unknown: float | None) -> float:
    return IN_SCOPE_WEIGHT * (in_scope or 0.0) + (1 - IN_SCOPE_WEIGHT) * (unknown or 0.0)


@dataclass
class Bench:
    """One model; engines built as ``serve`` builds them, one vector cache per set."""

    model: Model
    cache_dir: Path | None = None

    def cache(self, key: str) -> VectorCache:
        encoder = self.model.encoder
        directory = None
        if self.cache_dir is not None:
            directory = self.cache_dir / key
            directory.mkdir(parents=True, exist_ok=True)
        return VectorCache(encoder.fingerprint, encoder.width, directory)

    def run(
        self, intents: IntentSet, data: Path, settings: IndexSettings, cache: VectorCache
    ) -> tuple[EvalRun, Engine]:
        engine = Engine(self.model.encoder, settings, cache=cache)
        return run_eval(engine, intents, data, progress=False), engine


def compare(
    bench: Bench,
    label: str,
    intents: IntentSet,
    val: Path,
    test: Path,
    cache: VectorCache,
    shipped: IntentSet | None = None,
) -> dict[str, Any]:
    """Set ``label`` under each rule (module doc), the quantile sweep on val."""
    t0 = time.perf_counter()
    bare = strip_thresholds(intents)
    val_run, _ = bench.run(bare, val, IndexSettings(calibrate=False), cache)
    gold = [r.intent for r in val_run.rows]
    candidates = [p.candidate for p in val_run.predictions]
    scores = [p.score for p in val_run.predictions]
    tuned = tune(gold, candidates, scores).default  # balanced, tune's default
    val_calibrated, engine = bench.run(bare, val, IndexSettings(), cache)
    # The pseudo-negatives, for the quantile sweep on val.
    vectors, negatives = engine.exemplar_vectors(bare)
    found = negatives_of(val_calibrated.index, vectors, negatives)
    sweep = {}
    for q in QUANTILES:
        point = metrics_at(gold, candidates, scores, float(np.quantile(found.scores, q)))
        sweep[q] = balanced(point.in_scope_accuracy, point.unknown_recall)
    at_tuned = metrics_at(gold, candidates, scores, tuned)
    best_val = balanced(at_tuned.in_scope_accuracy, at_tuned.unknown_recall)

    rules = []
    if shipped is not None:
        rules.append(figures(bench.run(shipped, test, IndexSettings(), cache)[0], SHIPPED))
        off = figures(bench.run(shipped, test, IndexSettings(calibrate=False), cache)[0], "")
        if any(rules[0][k] != off[k] for k in ("threshold", "in_scope_accuracy")):
            raise RuntimeError(f"{label}: calibration changed the shipped thresholds")
    rules.append(figures(bench.run(bare, test, IndexSettings(), cache)[0], CALIBRATED))
    default_run, _ = bench.run(bare, test, IndexSettings(calibrate=False), cache)
    rules.append(figures(default_run, MODEL_DEFAULT))
    tuned_run, _ = bench.run(bare, test, IndexSettings(default_threshold=tuned), cache)
    rules.append(figures(tuned_run, VAL_TUNED))
    val_fig = {
        CALIBRATED: figures(val_calibrated, CALIBRATED),
        VAL_TUNED: {
            "threshold": tuned,
            "in_scope_accuracy": pct(at_tuned.in_scope_accuracy),
            "unknown_recall": pct(at_tuned.unknown_recall),
        },
    }
    return {
        "set": label,
        "model": bench.model.label,
        "intents": len(bare.intents),
        "examples": bare.example_count,
        "out_of_scope_examples": len(bare.out_of_scope),
        "pseudo_negatives": len(found.scores),
        "rules": rules,
        "val": val_fig,
        "val_sweep": {
            "balanced_at_val_tuned": 100 * best_val,
            "regret_by_quantile": {str(q): 100 * (best_val - v) for q, v in sweep.items()},
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }


def exact_pseudo_negatives(
    index: Index, vectors: np.ndarray, negatives: np.ndarray | None, layers: int
) -> np.ndarray:
    """Each exemplar's best score with the head retrained without its intent (Index.scores)."""
    rows = index.example_intents
    intents = index.intents
    out = np.empty(len(rows), dtype=np.float32)
    for c in range(len(intents.intents)):
        rest = replace(intents, intents=intents.intents[:c] + intents.intents[c + 1 :])
        left_out = Index(rest, vectors[rows != c], index.settings, negatives, layers=layers)
        own = [e for e, r in zip(index.examples, rows.tolist(), strict=True) if r == c]
        scored = left_out.scores(vectors[rows == c], own)
        winner = scored.rank.argmax(axis=1)
        out[rows == c] = scored.scores[np.arange(len(winner)), winner]
    return out


def approximation(bench: Bench, label: str, intents: IntentSet, cache: VectorCache) -> dict:
    """The calibration's pseudo-negatives against exact ones (the head retrained)."""
    engine = Engine(bench.model.encoder, cache=cache)
    bare = strip_thresholds(intents)
    snapshot = engine.build(bare)
    vectors, negatives = engine.exemplar_vectors(bare)
    t0 = time.perf_counter()
    found = negatives_of(snapshot.index, vectors, negatives)
    approx_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    exact = exact_pseudo_negatives(snapshot.index, vectors, negatives, engine.encoder.layers)
    exact_s = time.perf_counter() - t0
    mine = found.scores
    exact = exact[found.probes]
    return {
        "set": label,
        "model": bench.model.label,
        "probes": len(mine),
        "correlation": float(np.corrcoef(mine, exact)[0, 1]),
        "mean_abs_difference": float(np.abs(mine - exact).mean()),
        "threshold_approximated": float(np.quantile(mine, NEGATIVE_QUANTILE)),
        "threshold_exact": float(np.quantile(exact, NEGATIVE_QUANTILE)),
        "approximated_ms": round(approx_ms, 1),
        "exact_seconds": round(exact_s, 2),
    }


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def cost_of(bench: Bench, intents: IntentSet, cache: VectorCache, repeat: int) -> dict:
    """What calibration adds to building an index of ``intents`` (vectors cached)."""
    engine = Engine(bench.model.encoder, cache=cache)
    vectors, _ = engine.exemplar_vectors(intents)
    layers = engine.encoder.layers
    settings = IndexSettings()
    index = Index(intents, vectors, settings, layers=layers)
    off = Engine(bench.model.encoder, IndexSettings(calibrate=False), cache=cache)
    return {
        "examples": intents.example_count,
        "intents": len(intents.intents),
        "index_build_ms": round(
            median_ms(lambda: Index(intents, vectors, settings, layers=layers), repeat), 1
        ),
        "calibrate_ms": round(median_ms(lambda: calibrate(index, vectors), repeat), 1),
        "engine_build_ms_without": round(median_ms(lambda: off.build(intents), repeat), 1),
        "engine_build_ms_with": round(median_ms(lambda: engine.build(intents), repeat), 1),
    }


def cost(bench: Bench, clinc: IntentSet, cache: VectorCache) -> list[dict[str, Any]]:
    """``cost_of`` 2,000 exemplars (the first 20 intents, as bench/reload.py) and all."""
    first = replace(clinc, intents=clinc.intents[:20])
    return [cost_of(bench, first, cache, 5), cost_of(bench, clinc, cache, 3)]


def domain_sets(data: Path, train: list[dict[str, Any]], tmp: Path) -> list[tuple]:
    """(label, intents, val, test) for each CLINC150 domain and size (module doc, e)."""
    domains: dict[str, list[str]] = json.loads((data / "domains.json").read_text())
    split_rows = {s: read_jsonl(data / f"{s}.jsonl") for s in ("val", "test")}
    out = []
    for domain, names in sorted(domains.items()):
        mine = set(names)
        files = {}
        for split, rows in split_rows.items():
            ins = [r for r in rows if r["intent"] in mine]
            unknown = [r for r in rows if r["intent"] == UNKNOWN][:100]
            others = [r for r in rows if r["intent"] not in mine and r["intent"] != UNKNOWN]
            step = max(1, len(others) // 100)
            unknown += [{"text": r["text"], "intent": UNKNOWN} for r in others[::step][:100]]
            files[split] = write_jsonl(ins + unknown, tmp / f"{domain}_{split}.jsonl")
        for per in (6, 20):
            rows = [r for r in train if r["intent"] in mine]
            path = tmp / f"{domain}_{per}.yaml"
            by: dict[str, int] = {}
            kept = []
            for r in rows:
                by[r["intent"]] = by.get(r["intent"], 0) + 1
                if by[r["intent"]] <= per:
                    kept.append(r)
            write_yaml(kept, path, with_oos=False, negation=True)
            out.append((f"e. {domain} {per}", load_intents(path), files["val"], files["test"]))
    return out


def print_set(result: dict[str, Any]) -> None:
    print(
        f"\n{result['set']} ({result['model']}: {result['intents']} intents, "
        f"{result['examples']} examples, {result['out_of_scope_examples']} out_of_scope)"
    )
    print(f"  {'rule':14s} {'thr':>7s} {'in-acc':>7s} {'unkR':>6s}")
    for r in result["rules"]:
        print(
            f"  {r['rule']:14s} {r['threshold']:7.4f} {r['in_scope_accuracy']:7.1f} "
            f"{r['unknown_recall'] or 0:6.1f}"
        )
    v = result["val"]
    print(
        f"  on val: calibrated {v[CALIBRATED]['in_scope_accuracy']:.1f} / "
        f"{v[CALIBRATED]['unknown_recall'] or 0:.1f}, val-tuned "
        f"{v[VAL_TUNED]['in_scope_accuracy']:.1f} / {v[VAL_TUNED]['unknown_recall'] or 0:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    ap.add_argument("--cut", type=int, default=6, help="examples per intent in set a")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "intent-router-calibration-cache",
        help="exemplar vectors of the CLINC150 sets, kept between runs",
    )
    ap.add_argument("--no-zh", action="store_true", help="skip set c (use-multilingual)")
    ap.add_argument("--no-clinc", action="store_true", help="skip sets d and e and the cost")
    ap.add_argument("--domains", action="store_true", help="also set e: CLINC150's domains")
    add_record_flag(ap)
    args = ap.parse_args()
    run = Run("calibration", args)
    logging.basicConfig(level=logging.ERROR)

    minilm = Bench(open_model("minilm", threads=2), args.cache)
    en = load_intents(EN)
    en_val, en_test = EN / "eval" / "val.jsonl", EN / "eval" / "test.jsonl"
    sets: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    en_cache = minilm.cache("en")
    sets.append(
        compare(
            minilm, f"a. intents/ first {args.cut}", cut(en, args.cut), en_val, en_test, en_cache
        )
    )
    print_set(sets[-1])
    sets.append(compare(minilm, "b. intents/", en, en_val, en_test, en_cache, shipped=en))
    print_set(sets[-1])
    checks.append(
        approximation(minilm, f"a. intents/ first {args.cut}", cut(en, args.cut), en_cache)
    )
    checks.append(approximation(minilm, "b. intents/", en, en_cache))

    if not args.no_zh:
        multi = Bench(open_model("use-multilingual", threads=2), args.cache)
        zh = load_intents(ZH)
        zh_cache = multi.cache("zh")
        zh_val, zh_test = ZH / "eval" / "val.jsonl", ZH / "eval" / "test.jsonl"
        sets.append(compare(multi, "c. intents/zh", zh, zh_val, zh_test, zh_cache, shipped=zh))
        print_set(sets[-1])
        checks.append(approximation(multi, "c. intents/zh", zh, zh_cache))

    costs: list[dict[str, Any]] = []
    if not args.no_clinc:
        train = read_jsonl(args.data / "train.jsonl")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "clinc150.yaml"
            write_yaml(train, path, with_oos=False, negation=True)
            clinc = strip_thresholds(load_intents(path))
            clinc_cache = minilm.cache("clinc150")
            sets.append(
                compare(
                    minilm,
                    "d. CLINC150",
                    clinc,
                    args.data / "val.jsonl",
                    args.data / "test.jsonl",
                    clinc_cache,
                )
            )
            print_set(sets[-1])
            costs = cost(minilm, clinc, clinc_cache)
            if args.domains:
                for label, intents, val, test in domain_sets(args.data, train, Path(tmp)):
                    sets.append(compare(minilm, label, intents, val, test, clinc_cache))
                    print_set(sets[-1])

    print("\nquantile of the pseudo-negatives on val: balanced regret (points) vs val-tuned")
    print(f"  {'set':24s}" + "".join(f"{q:>7g}" for q in QUANTILES))
    for s in sets:
        regrets = s["val_sweep"]["regret_by_quantile"]
        print(f"  {s['set'][:24]:24s}" + "".join(f"{regrets[str(q)]:7.1f}" for q in QUANTILES))
    means = {
        q: statistics.mean(s["val_sweep"]["regret_by_quantile"][str(q)] for s in sets)
        for q in QUANTILES
    }
    print(f"  {'mean':24s}" + "".join(f"{means[q]:7.1f}" for q in QUANTILES))
    print(f"  (the calibration takes {NEGATIVE_QUANTILE})")

    print("\napproximation: pseudo-negatives with the head's term approximated vs retrained")
    for c in checks:
        print(
            f"  {c['set']:24s} corr {c['correlation']:.3f}, mean |diff| "
            f"{c['mean_abs_difference']:.4f}, threshold {c['threshold_approximated']:.4f} vs "
            f"{c['threshold_exact']:.4f} exact; {c['approximated_ms']:.1f} ms vs "
            f"{c['exact_seconds']:.1f} s"
        )
    if costs:
        print("\ncost (ms, median; vectors cached)")
        for c in costs:
            print(
                f"  {c['examples']:6d} exemplars: calibrate {c['calibrate_ms']:.1f} "
                f"(index build {c['index_build_ms']:.0f}); Engine.build "
                f"{c['engine_build_ms_without']:.0f} -> {c['engine_build_ms_with']:.0f}"
            )

    first = sets[0]
    by_rule = {r["rule"]: r for r in first["rules"]}
    gap = by_rule[VAL_TUNED]["in_scope_accuracy"] - by_rule[CALIBRATED]["in_scope_accuracy"]
    recall = by_rule[CALIBRATED]["unknown_recall"] or 0.0
    targets = {
        "in_scope_gap_to_val_tuned": gap,
        "in_scope_met": gap <= IN_SCOPE_GAP,
        "unknown_recall": recall,
        "unknown_recall_met": recall >= UNKNOWN_BAR,
    }
    print(
        f"\ntargets (set a): in-scope accuracy {gap:.1f} points below val-tuned "
        f"(<= {IN_SCOPE_GAP:g}: {'met' if targets['in_scope_met'] else 'MISSED'}); "
        f"unknown recall {recall:.1f} (>= {UNKNOWN_BAR:g}: "
        f"{'met' if targets['unknown_recall_met'] else 'MISSED'})"
    )
    run.finish(
        {
            "unit": "percent of the test rows (threshold: score)",
            "sets": sets,
            "approximation": checks,
            "cost": costs,
            "targets": targets,
            "negative_quantile": NEGATIVE_QUANTILE,
        }
    )


if __name__ == "__main__":
    main()
