"""What a hot reload answers before its final head serves: the warm snapshot against the cold.

A hot reload first serves the new revision with the previous revision's head (matched by
intent; a new intent starts at its centroid) and calibrated threshold, then swaps in the
head a cold start trains (``Engine.build(warm_from=...)``, ``Engine.complete``). The
final snapshot is the cold build itself; this script measures the warm one, on CLINC150
(train as the intents, no thresholds: calibrated; test rows scored), for edits of
growing size, each from the cold build of the intents before the edit:

  * one example changed in one intent;
  * one intent added (149 -> 150 intents);
  * ten intents added (140 -> 150).

Prints in-scope accuracy and unknown recall of the cold and the warm snapshot, and
writes them to bench/results/ (bench/_record.py).

    python bench/warm_head.py [--data ../shared/data/clinc150] [--model NAME|DIR]
                              [--cache DIR] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from _model import add_model_flag, open_model
from _record import Run, add_record_flag
from _sets import pct, strip_thresholds

from router.routing.engine import Engine, Snapshot
from router.routing.intents import UNKNOWN, IntentSet, load_intents
from router.routing.vectorcache import VectorCache

ROOT = Path(__file__).resolve().parent.parent


def write_yaml(data: Path, path: Path) -> None:
    by_intent: dict[str, list[str]] = {}
    for line in (data / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["intent"] != UNKNOWN:
            by_intent.setdefault(row["intent"], []).append(row["text"])
    lines = ["version: 1", "intents:"]
    for name in sorted(by_intent):
        lines += [f"  - name: {json.dumps(name)}", "    examples:"]
        lines += [f"      - {json.dumps(t)}" for t in by_intent[name]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def figures(
    snapshot: Snapshot, queries: np.ndarray, texts: list[str], gold: list[str]
) -> dict[str, float]:
    """``texts`` (embedded as ``queries``) answered by ``snapshot``'s index; the texts feed
    the lexical overlap when the index mixes it in."""
    predicted = [p.intent for p in snapshot.index.classify(queries, top_k=1, texts=texts)]
    inside = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != UNKNOWN]
    outside = [p for g, p in zip(gold, predicted, strict=True) if g == UNKNOWN]
    return {
        "in_scope_accuracy": pct(sum(g == p for g, p in inside) / len(inside)) or 0.0,
        "unknown_recall": pct(sum(p == UNKNOWN for p in outside) / len(outside)) or 0.0,
        "threshold": snapshot.index.default_threshold,
    }


def edits(intents: IntentSet) -> dict[str, IntentSet]:
    """The intents before each edit (the edit leads to ``intents``)."""
    first = intents.intents[0]
    changed = replace(first, examples=("zebra crossing please", *first.examples[1:]))
    return {
        "one example changed": replace(intents, intents=(changed, *intents.intents[1:])),
        "one intent added": replace(intents, intents=intents.intents[:-1]),
        "ten intents added": replace(intents, intents=intents.intents[:-10]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/clinc150")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-clinc150-cache"
    )
    add_model_flag(parser)
    add_record_flag(parser)
    args = parser.parse_args()
    run = Run("warm_head", args)
    model = open_model(args.model)
    encoder = model.encoder
    args.cache.mkdir(parents=True, exist_ok=True)
    engine = Engine(encoder, cache=VectorCache(encoder.fingerprint, encoder.width, args.cache))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clinc150.yaml"
        write_yaml(args.data, path)
        intents = strip_thresholds(load_intents(path))
    rows = [json.loads(x) for x in (args.data / "test.jsonl").read_text().splitlines() if x]
    gold = [r["intent"] for r in rows]
    texts = [r["text"] for r in rows]
    queries = np.concatenate([encoder.embed(texts[i : i + 32]) for i in range(0, len(texts), 32)])
    cold = engine.build(intents)
    engine.persist()
    base = figures(cold, queries, texts, gold)
    print(f"CLINC150 test ({len(rows)} rows), {intents.example_count} exemplars, {model.label}")
    print(f"{'snapshot':<40}{'in-scope acc':>14}{'unknown recall':>16}{'threshold':>11}")
    print(
        f"{'cold (final, as a cold start builds)':<40}{base['in_scope_accuracy']:>14.2f}"
        f"{base['unknown_recall']:>16.2f}{base['threshold']:>11.4f}"
    )
    results: dict[str, object] = {"cold": base}
    for name, before in edits(intents).items():
        previous = engine.build(before)
        warm = engine.build(intents, warm_from=previous)
        assert not warm.final
        got = figures(warm, queries, texts, gold)
        results[name] = got
        print(
            f"{'warm after ' + name:<40}{got['in_scope_accuracy']:>14.2f}"
            f"{got['unknown_recall']:>16.2f}{got['threshold']:>11.4f}"
        )
    run.finish({"model": model.record(), "test_rows": len(rows), **results})


if __name__ == "__main__":
    main()
