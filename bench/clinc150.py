"""CLINC150 through the product's own path: YAML -> Engine -> tune on val -> eval on test.

    python bench/clinc150.py [--data ../shared/data/clinc150] [--model NAME|DIR] [--cache DIR]
                             [--answer-rate 0.98] [--scoring head] [--with-oos]
                             [--no-negation] [--no-record]

What it does, step by step, with the same objects ``intent-router tune`` / ``eval`` use:

1. writes CLINC's in-scope train rows (100 per intent) as one intents YAML in a temp dir
   (with ``--with-oos``, CLINC's 100 train rows labelled unknown are written there too,
   as ``out_of_scope:`` examples);
2. opens ``--model`` (a catalogue name, default minilm, or a directory) with
   ``router.model.loading.load_encoder``, as ``serve`` does, and builds
   ``router.routing.engine.Engine`` (exemplar vectors cached on disk via
   ``VectorCache``, so a second run does not re-embed) and runs val through
   ``router.quality.run.run_eval``, the eval run of ``intent-router eval`` / ``tune``
   (``Engine.classify``, what the gRPC service answers);
3. chooses the default threshold on val only with ``router.quality.tuning.tune``
   (``intent-router tune``), under three objectives:

   * ``balanced``: what plain ``tune`` picks (its default objective);
   * ``accuracy``: the threshold maximising overall val accuracy, unknown counted as a
     label;
   * ``answer-rate``: the highest threshold that still answers at least
     ``--answer-rate`` of the val in-scope rows with an intent (a quantile of the
     in-scope scores; the val unknown rows play no part);

4. writes it into the YAML (``router.quality.tuning.write_thresholds``:
   ``defaults.threshold``), loads the intents again and runs test through ``run_eval``;
5. prints in-scope accuracy, unknown recall / precision, overall accuracy and the
   threshold for each rule, next to the paper's anchors, and writes them to
   bench/results/ (bench/_record.py).

Never tunes on test. Figures differ slightly from bench/clinc_scoring.py because the
engine applies negation preprocessing (pooling weights) exactly as the server does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _model import add_model_flag, open_model
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script

from router.quality.run import run_eval
from router.quality.tuning import Objective, tune, write_thresholds
from router.routing.engine import Engine
from router.routing.index import IndexSettings, Scoring
from router.routing.intents import UNKNOWN, load_intents
from router.routing.vectorcache import VectorCache

ROOT = Path(__file__).resolve().parents[1]

#: Larson et al. 2019, Table 2, "full": in-scope accuracy / out-of-scope recall.
ANCHORS = {
    "BERT": (96.2, 52.3),
    "MLP": (93.4, 49.1),
    "Rasa": (90.9, 31.2),
    "DialogFlow": (90.8, 26.7),
    "SVM": (88.2, 18.0),
    "FastText": (88.6, 28.3),
    "CNN": (90.9, 30.9),
}


def write_yaml(rows: list[dict[str, str]], path: Path, with_oos: bool, negation: bool) -> None:
    by_intent: dict[str, list[str]] = {}
    oos: list[str] = []
    for r in rows:
        if r["intent"] == UNKNOWN:
            oos.append(r["text"])
        else:
            by_intent.setdefault(r["intent"], []).append(r["text"])
    lines = ["version: 1", "defaults:", "  threshold: 0.38"]
    if not negation:
        lines += ["negation:", "  enabled: false"]
    if with_oos and oos:
        lines.append("out_of_scope:")
        lines += [f"  - {json.dumps(t)}" for t in oos]
    lines.append("intents:")
    for name in sorted(by_intent):
        lines += [f"  - name: {json.dumps(name)}", "    examples:"]
        lines += [f"      - {json.dumps(t)}" for t in by_intent[name]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    add_model_flag(ap)
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-clinc150-cache"
    )
    ap.add_argument(
        "--answer-rate", type=float, default=0.98, help="in-scope answer rate to keep on val"
    )
    ap.add_argument("--scoring", default=Scoring.HEAD.value, choices=[s.value for s in Scoring])
    ap.add_argument(
        "--with-oos",
        action="store_true",
        help="also write CLINC's 100 unknown train rows as out_of_scope examples "
        "(needs a product that accepts them)",
    )
    ap.add_argument(
        "--no-negation", action="store_true", help="write negation: enabled: false in the YAML"
    )
    add_record_flag(ap)
    args = ap.parse_args()
    run = Run("clinc150", args)
    logging.basicConfig(level=logging.WARNING)
    model = open_model(args.model, threads=2)
    encoder = model.encoder
    print(f"model {model.label} ({type(encoder).__name__})", flush=True)

    train = [json.loads(x) for x in (args.data / "train.jsonl").read_text().splitlines() if x]
    args.cache.mkdir(parents=True, exist_ok=True)
    cache = VectorCache(encoder.fingerprint, encoder.width, args.cache)
    engine = Engine(encoder, IndexSettings(scoring=Scoring(args.scoring)), cache=cache)

    # Query vectors are not cached: scores depend on the index, so each run classifies.
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clinc150.yaml"
        write_yaml(train, path, args.with_oos, not args.no_negation)
        intents = load_intents(path)
        t0 = time.perf_counter()
        val = run_eval(engine, intents, args.data / "val.jsonl", progress=False)
        val_seconds = time.perf_counter() - t0
        print(
            f"index: {len(intents.intents)} intents, {intents.example_count} examples "
            f"({len(intents.out_of_scope)} out_of_scope); built and classified val "
            f"({len(val.rows)} rows) in {val_seconds:.1f}s",
            flush=True,
        )
        gold = [r.intent for r in val.rows]
        cand = [p.candidate for p in val.predictions]
        scores = [p.score for p in val.predictions]
        rules = {
            "balanced (tune's default)": tune(gold, cand, scores).default,
            "accuracy": tune(gold, cand, scores, objective=Objective.ACCURACY).default,
            f"answer-rate {args.answer_rate:g}": tune(
                gold, cand, scores, objective=Objective.ANSWER_RATE, target=args.answer_rate
            ).default,
        }
        for rule, threshold in rules.items():
            write_thresholds(intents, threshold, None)
            intents = load_intents(path)
            t0 = time.perf_counter()
            test = run_eval(engine, intents, args.data / "test.jsonl", progress=False)
            e = test.evaluation()
            if e.default_threshold != threshold:  # the YAML's threshold is the one applied
                raise RuntimeError(f"threshold {e.default_threshold} applied, not {threshold}")
            m = e.metrics
            print(
                f"classified test ({e.rows} rows) with rule {rule!r} "
                f"in {time.perf_counter() - t0:.1f}s",
                flush=True,
            )
            results.append(
                {
                    "rule": rule,
                    "threshold": threshold,
                    "revision": e.revision,
                    "in_scope_accuracy": 100 * (m.in_scope_accuracy or 0.0),
                    "in_scope_top1": 100 * (m.in_scope_top1 or 0.0),
                    "unknown_recall": 100 * (m.unknown_recall or 0.0),
                    "unknown_precision": 100 * (m.unknown_precision or 0.0),
                    "accuracy": 100 * m.accuracy,
                }
            )

    oos = " + 100 out_of_scope rows" if args.with_oos else ""
    oos += ", negation off" if args.no_negation else ""
    print(
        f"\nCLINC150 full, test; model {model.label}; threshold chosen on val; "
        f"scoring {val.index.scoring}{oos}"
    )
    print(f"{'':34s} {'in-acc':>6s} {'unkR':>6s} {'unkP':>6s} {'all':>6s} {'thr':>7s}")
    for f in results:
        print(
            f"{'intent-router, ' + f['rule']:34s} {f['in_scope_accuracy']:6.1f} "
            f"{f['unknown_recall']:6.1f} {f['unknown_precision']:6.1f} {f['accuracy']:6.1f} "
            f"{f['threshold']:7.4f}   (closed-set top-1 {f['in_scope_top1']:.1f})"
        )
    for name, (acc, recall) in ANCHORS.items():
        print(f"{'paper: ' + name:34s} {acc:6.1f} {recall:6.1f} {'-':>6s} {'-':>6s} {'-':>7s}")
    run.finish(
        {
            "model": model.record(),
            "scoring": val.index.scoring,
            "with_oos": args.with_oos,
            "negation": not args.no_negation,
            "val_rows": len(val.rows),
            "test_rows": e.rows,
            "unit": "percent of the test rows (threshold: score)",
            "rules": results,
            "paper_anchors": {
                k: {"in_scope_accuracy": a, "unknown_recall": r} for k, (a, r) in ANCHORS.items()
            },
        }
    )


if __name__ == "__main__":
    main()
