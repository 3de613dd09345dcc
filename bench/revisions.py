"""What a kept revision costs in memory, and what the regression gate adds to a reload.

    python bench/revisions.py [--data ../shared/data/clinc150] [--exemplars 10000]
                              [--keep 3] [--model NAME|DIR] [--cache DIR] [--no-record]

Sets: the bundled ``intents/``; and ``--exemplars`` CLINC150 train rows (the first of each
intent in turn, 150 intents) written as one YAML.

Memory: ``serve --keep-revisions N`` holds N snapshots (``Engine.build``: the intents as
loaded from disk, the index with its exemplar matrix, head and thresholds). The set is
built once (vectors then come from the vector cache, as on a reload), then ``--keep``
more snapshots are built, each from the files loaded again, and held; the bytes each
holds are tracemalloc's (numpy reports its arrays to it) traced memory, after a
collection, divided by ``--keep``. RSS before and after is printed beside it (glibc
keeps freed heap, so RSS moves less predictably).

Gate: ``routing/gate.py``'s ``measure`` of a built candidate on labelled data (what a
gated reload adds before its swap; ``max_drop`` measures the serving revision once
more per revision and data file): bundled ``intents/eval/val.jsonl`` (160 rows) on the
bundled intents; CLINC150 ``val.jsonl`` (3,100 rows) on the CLINC set. Median of 3, with
the ratio to the build it follows (``Engine.build``, vectors cached: a reload's cost
without a gate), measured in the same run.

Writes bench/results/ (bench/_record.py).
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _model import add_model_flag, open_model
from _record import Run, add_record_flag
from _sets import read_jsonl
from clinc150 import write_yaml

from router.routing.engine import Engine
from router.routing.gate import GATE_FILE, load_gate, measure
from router.routing.intents import load_intents
from router.routing.vectorcache import VectorCache

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def per_revision(engine: Engine, intents_path: Path, keep: int) -> dict[str, Any]:
    """Bytes held by each of ``keep`` more snapshots of ``intents_path`` (module doc)."""
    engine.swap(engine.build(load_intents(intents_path)))  # warm: vectors cached
    gc.collect()
    rss_before = rss_mb()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    held = []
    for _ in range(keep):
        held.append(engine.build(load_intents(intents_path)))
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    rss_after = rss_mb()
    snapshot = held[0]
    arrays = snapshot.index.matrix.nbytes
    return {
        "intents": len(snapshot.intents.intents),
        "exemplars": snapshot.intents.example_count,
        "revisions_built": keep,
        "mb_per_revision": round(traced / keep / 2**20, 2),
        "exemplar_matrix_mb": round(arrays / 2**20, 2),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_mb_per_revision": round((rss_after - rss_before) / keep, 2),
    }


def gate_seconds(engine: Engine, intents_path: Path, data: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        gate_file = Path(tmp) / GATE_FILE
        gate_file.write_text(f"version: 1\ndata: {data}\nmin: {{accuracy: 0}}\n")
        gate = load_gate(gate_file)
    assert gate is not None
    intents = load_intents(intents_path)
    builds, times, card = [], [], None
    for _ in range(3):
        start = time.perf_counter()
        candidate = engine.build(intents)  # the baseline: a reload's build, vectors cached
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        card = measure(engine, candidate, gate)
        times.append(time.perf_counter() - start)
    assert card is not None
    return {
        "rows": len(gate.rows),
        "seconds_median": round(statistics.median(times), 3),
        "seconds": [round(t, 3) for t in times],
        "build_seconds_median": round(statistics.median(builds), 3),
        "gate_over_build": round(statistics.median(times) / statistics.median(builds), 2),
        "in_scope_accuracy": card.in_scope_accuracy,
        "unknown_recall": card.unknown_recall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    ap.add_argument("--exemplars", type=int, default=10_000)
    ap.add_argument("--keep", type=int, default=3, help="snapshots built and held per set")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-revisions-cache"
    )
    add_model_flag(ap)
    add_record_flag(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run = Run("revisions", args)
    model = open_model(args.model)
    encoder = model.encoder
    engine = Engine(encoder, cache=VectorCache(encoder.fingerprint, encoder.width, args.cache))
    results: dict[str, Any] = {"model": model.record()}

    bundled = ROOT / "intents"
    results["bundled"] = per_revision(engine, bundled, args.keep)
    results["bundled"]["gate"] = gate_seconds(engine, bundled, bundled / "eval" / "val.jsonl")
    engine.persist()

    with tempfile.TemporaryDirectory() as tmp:
        train = [r for r in read_jsonl(args.data / "train.jsonl") if r["intent"] != "unknown"]
        by_intent: dict[str, list[dict[str, str]]] = {}
        for row in train:
            by_intent.setdefault(row["intent"], []).append(row)
        rows: list[dict[str, str]] = []
        depth = 0
        while len(rows) < args.exemplars and any(depth < len(v) for v in by_intent.values()):
            rows += [v[depth] for v in by_intent.values() if depth < len(v)]
            depth += 1
        path = Path(tmp) / "clinc.yaml"
        write_yaml(rows[: args.exemplars], path, with_oos=False, negation=True)
        results["clinc"] = per_revision(engine, path, args.keep)
        engine.persist()
        results["clinc"]["gate"] = gate_seconds(engine, path, args.data / "val.jsonl")

    for name in ("bundled", "clinc"):
        r = results[name]
        g = r["gate"]
        print(
            f"{name:8s} {r['intents']:4d} intents {r['exemplars']:6d} exemplars: "
            f"{r['mb_per_revision']:7.2f} MB per kept revision (traced; exemplar matrix "
            f"{r['exemplar_matrix_mb']:.2f} MB; RSS +{r['rss_mb_per_revision']:.2f} MB each)"
        )
        print(
            f"{'':8s} gate on {g['rows']} rows: {g['seconds_median']:.3f} s median, "
            f"{g['gate_over_build']:.2f}x the build it follows ({g['build_seconds_median']:.3f} s, "
            f"vectors cached); in-scope {g['in_scope_accuracy']:.3f}, unknown recall "
            f"{g['unknown_recall']:.3f}"
        )
    run.finish(results)


if __name__ == "__main__":
    main()
