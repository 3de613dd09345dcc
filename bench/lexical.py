"""How much should lexical overlap count? A sweep of the lexical weight on validation data.

    python bench/lexical.py [--models minilm,use-multilingual] [--weights 0,0.1,0.2,0.3,0.5]
                            [--data ../shared/data/clinc150] [--cache DIR] [--no-record]

Validation files only: nothing here reads a test file. For each model and weight w, an
``Engine`` with ``IndexSettings(lexical_weight=w)`` (what ``defaults.lexical_weight`` or the
model's catalogue weight would give) runs each set through ``router.quality.run``, the
path of ``intent-router eval`` / ``tune``:

* ``use-multilingual``: the bundled Chinese set (``intents/zh``, ``intents/zh/eval/val.jsonl``);
* ``minilm``: CLINC150 (in-scope train rows as exemplars, its val), the bundled English
  set (``intents/eval/val.jsonl``) and the bundled tickets (``tickets_val.jsonl``).

Per set: closed-set in-scope top-1 (the ranking), then the threshold ``tune`` picks with
its default objective (``balanced``) and val in-scope accuracy / unknown recall there, and
``merit`` = 0.8 x in-scope accuracy + 0.2 x unknown recall (what ``balanced`` maximises);
tickets: micro-F1 at the threshold that maximises it (bench/tickets.py's ``tuned``).
A weight is worth a model's catalogue entry only where it beats w = 0 on every set of that
model (merit up, top-1 not down); ARCHITECTURE.md, "Lexical overlap", records the choice.
Writes bench/results/ (bench/_record.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _model import open_model
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from clinc150 import write_yaml
from tickets import GRID

from router.quality.run import run_eval, run_ticket_eval
from router.quality.ticket_eval import choose_ticket_threshold, sweep_tickets
from router.quality.tuning import Objective, tune
from router.routing.aggregation import TicketSettings
from router.routing.engine import Engine
from router.routing.index import IndexSettings
from router.routing.intents import IntentSet, load_intents
from router.routing.vectorcache import VectorCache

ROOT = Path(__file__).resolve().parents[1]
INTENTS = ROOT / "intents"


def pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def closed_set(engine: Engine, intents: IntentSet, data: Path) -> dict[str, Any]:
    run = run_eval(engine, intents, data, progress=False)
    ev = run.evaluation()
    gold = [r.intent for r in run.rows]
    tuned = tune(
        gold,
        [p.candidate for p in run.predictions],
        [p.score for p in run.predictions],
        objective=Objective.BALANCED,
        target=0.2,
        own_thresholds=dict(ev.own_thresholds),
    )
    chosen = tuned.chosen
    return {
        "rows": len(run.rows),
        "top1": pct(ev.metrics.in_scope_top1),
        "threshold": tuned.default,
        "in_scope_accuracy": pct(chosen.in_scope_accuracy),
        "unknown_recall": pct(chosen.unknown_recall),
        "merit": round(80 * (chosen.in_scope_accuracy or 0) + 20 * (chosen.unknown_recall or 0), 2),
    }


def tickets(engine: Engine, intents: IntentSet, data: Path) -> dict[str, Any]:
    settings = TicketSettings()
    engine.tickets = settings
    run = run_ticket_eval(engine, intents, data, load=True)
    best = choose_ticket_threshold(sweep_tickets(run.tickets, run.scoring, GRID, settings))
    return {
        "tickets": len(run.tickets),
        "threshold": best.threshold,
        "micro_f1": pct(best.scorecard.micro_f1),
        "single_top1": pct(best.scorecard.single_top1),
    }


def sets_of(model: str, data: Path, work: Path) -> list[tuple[str, str, IntentSet, Path]]:
    """(name, kind, intents, val file) for ``model``."""
    if model == "use-multilingual":
        zh = INTENTS / "zh"
        return [("chinese", "chat", load_intents(zh), zh / "eval" / "val.jsonl")]
    train = [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines() if x]
    clinc_yaml = work / "clinc150.yaml"
    write_yaml(train, clinc_yaml, with_oos=False, negation=True)
    english = load_intents(INTENTS)
    return [
        ("clinc150", "chat", load_intents(clinc_yaml), data / "val.jsonl"),
        ("english", "chat", english, INTENTS / "eval" / "val.jsonl"),
        ("tickets", "tickets", english, INTENTS / "eval" / "tickets_val.jsonl"),
    ]


def verdict(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Per weight: does it beat w = 0 on every set (merit or micro-F1 up, top-1 not down)?"""
    base = rows["0.0"]
    out: dict[str, bool] = {}
    for w, r in rows.items():
        if w == "0.0":
            continue
        wins = []
        for name, s in r.items():
            b = base[name]
            if "micro_f1" in s:
                wins.append(s["micro_f1"] > b["micro_f1"])
            else:
                wins.append(s["merit"] > b["merit"] and s["top1"] >= b["top1"])
        out[w] = all(wins)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="minilm,use-multilingual")
    ap.add_argument("--weights", default="0,0.1,0.2,0.3,0.5")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-lexical-cache"
    )
    add_record_flag(ap)
    args = ap.parse_args()
    record = Run("lexical", args)
    logging.basicConfig(level=logging.WARNING)
    weights = [float(w) for w in args.weights.split(",")]
    if 0.0 not in weights:
        weights.insert(0, 0.0)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            encoder = open_model(model, threads=2).encoder
            cache_dir = args.cache / model
            cache_dir.mkdir(parents=True, exist_ok=True)
            cache = VectorCache(encoder.fingerprint, encoder.width, cache_dir)
            sets = sets_of(model, args.data, Path(tmp))
            print(f"\n## {model} (catalogue weight {encoder.lexical_weight:g}), val only")
            print(f"{'w':>5} | " + " | ".join(f"{name:^34s}" for name, *_ in sets))
            rows: dict[str, dict[str, Any]] = {}
            for w in weights:
                engine = Engine(encoder, IndexSettings(lexical_weight=w), cache=cache)
                row: dict[str, Any] = {}
                cells = []
                for name, kind, intents, val in sets:
                    if kind == "tickets":
                        r = tickets(engine, intents, val)
                        cells.append(
                            f"micro-F1 {r['micro_f1']:5.1f} single {r['single_top1']:5.1f}"
                            f" @{r['threshold']:.3f}"
                        )
                    else:
                        r = closed_set(engine, intents, val)
                        cells.append(
                            f"top1 {r['top1']:5.1f} {r['in_scope_accuracy']:5.1f}/"
                            f"{r['unknown_recall']:5.1f} merit {r['merit']:5.2f}"
                        )
                    row[name] = r
                rows[str(w)] = row
                print(f"{w:5.2f} | " + " | ".join(f"{c:34s}" for c in cells), flush=True)
            wins = verdict(rows)
            print(
                "beats w = 0 on every set: "
                + (", ".join(w for w, ok in wins.items() if ok) or "none")
            )
            figures[model] = {"weights": rows, "beats_zero_everywhere": wins}
    record.finish(
        {
            "unit": "percent; merit = 0.8 x in-scope accuracy + 0.2 x unknown recall at the "
            "balanced threshold; val files only",
            "models": figures,
        }
    )


if __name__ == "__main__":
    main()
