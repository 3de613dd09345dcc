"""Tickets: the accuracy targets of issue #17 and the aggregation rules compared.

    python bench/tickets.py [--model NAME|DIR] [--no-record]

Data: the bundled ticket sets, ``intents/eval/tickets_val.jsonl`` (rules and thresholds
are chosen on it) and ``tickets_test.jsonl`` (only the chosen rule is reported on it;
nothing is tuned on test). Every figure comes from ``router.quality.run.run_ticket_eval``
(``Engine.score_tickets`` then ``decide_tickets``: what ``Classify`` with
``multi_intent`` answers) and ``router.quality.ticket_eval`` (the metrics of
``intent-router eval``).

Compared on val, for each way of cutting tickets (sentences, windows of 2 and 3
sentences apart or overlapping by all but one, without the subject, the cleaned ticket
whole) and each rule (``winners``,
``max``, ``top2``; ``routing/aggregation.py``) and margin for a second intent: the
metrics at the intents' thresholds (``now``) and at the default threshold that gives
the best val micro-F1 (``tuned``). ``as today``: each ticket's subject and body as one
text through plain ``Engine.classify`` (truncated at 256 tokens, nothing removed, one
intent), the answer before this change.

Targets (test, val-tuned threshold): top-1 >= 90% on single-request tickets (the answer
is the ticket's one label), micro-F1 >= 0.85 over all labels (``unknown`` included).
Writes bench/results/ (bench/_record.py).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from _model import add_model_flag, open_model
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script

from router.quality.run import TicketRun, run_ticket_eval
from router.quality.ticket_eval import (
    TicketScorecard,
    choose_ticket_threshold,
    score_tickets,
    sweep_tickets,
)
from router.routing.aggregation import Rule, TicketSettings, decide_tickets
from router.routing.engine import Engine
from router.routing.index import Prediction
from router.routing.intents import UNKNOWN, load_intents
from router.routing.tickets import IntentMatch, Passage

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
VAL = INTENTS / "eval" / "tickets_val.jsonl"
TEST = INTENTS / "eval" / "tickets_test.jsonl"
GRID = [round(float(t), 3) for t in np.arange(0.30, 0.601, 0.005)]
TOP1_TARGET, MICRO_F1_TARGET = 0.90, 0.85

CUTS: dict[str, TicketSettings] = {
    "sentences": TicketSettings(window=1, stride=None),
    "windows of 2": TicketSettings(window=2, stride=None),
    "windows of 3": TicketSettings(window=3, stride=None),
    "windows of 2, overlapping": TicketSettings(window=2, stride=1),
    "windows of 3, overlapping": TicketSettings(window=3, stride=1),
    "overlapping 2, short tickets not alone": TicketSettings(window=2, stride=1, short_alone=False),
    "overlapping 2, no subject": TicketSettings(window=2, stride=1, subject=False),
    "whole (cleaned)": TicketSettings(whole=True),
}
RULES = [Rule.WINNERS, Rule.MAX, Rule.TOP2]
MARGINS = [0.0, 0.03, 0.05, 0.1]


@dataclass(frozen=True)
class Row:
    cut: str
    settings: TicketSettings
    now: TicketScorecard
    tuned_threshold: float
    tuned: TicketScorecard


def _brief(card: TicketScorecard) -> dict[str, Any]:
    return {
        "single_top1": card.single_top1,
        "single_candidate_top1": card.single_candidate_top1,
        "micro_f1": card.micro_f1,
        "micro_precision": card.micro_precision,
        "micro_recall": card.micro_recall,
        "macro_f1": card.macro_f1,
        "exact_match": card.exact_match,
        "multi_found": card.multi_found,
        "unknown_recall": card.unknown_recall,
    }


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{100 * value:5.1f}"


def _line(label: str, card: TicketScorecard, threshold: float | None = None) -> str:
    at = f"{threshold:.3f}" if threshold is not None else "  now"
    return (
        f"{label:<44} {at}  top1 {_pct(card.single_top1)}  F1 {_pct(card.micro_f1)} "
        f"(P {_pct(card.micro_precision)} R {_pct(card.micro_recall)})  "
        f"macro {_pct(card.macro_f1)}  exact {_pct(card.exact_match)}  "
        f"2nd found {_pct(card.multi_found)}  unk {_pct(card.unknown_recall)}"
    )


def _score(engine: Engine, intents_path: Path, data: Path, settings: TicketSettings) -> TicketRun:
    engine.tickets = settings
    return run_ticket_eval(engine, load_intents(intents_path), data, load=False)


def _as_today(engine: Engine, run: TicketRun) -> TicketScorecard:
    """Each ticket as one text (subject, blank line, body) through plain ``classify``."""
    texts = [f"{t.subject}\n\n{t.text}" if t.subject else t.text for t in run.tickets]
    predictions: list[Prediction] = []
    for start in range(0, len(texts), 32):
        predictions.extend(engine.classify(texts[start : start + 32]).predictions)
    # a plain prediction has no matches: its one answer is what it asks for
    as_matches = [
        replace(p, matches=()) if p.intent == UNKNOWN else _single_match(p) for p in predictions
    ]
    return score_tickets(run.tickets, as_matches)


def _single_match(prediction: Prediction) -> Prediction:
    match = IntentMatch(
        prediction.intent, prediction.score, prediction.threshold, Passage("", 0, 0, "text")
    )
    return replace(prediction, matches=(match,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_flag(parser)
    add_record_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    run = Run("tickets", args)
    model = open_model(args.model)
    intents = load_intents(INTENTS)
    engine = Engine(model.encoder)
    engine.load(intents)
    chosen = TicketSettings()
    print(f"model {model.choice.name}; thresholds: {engine.snapshot.threshold_source}")
    print(f"chosen (the engine's default): {chosen}\n")

    rows: list[Row] = []
    timing: dict[str, float] = {}
    print("validation (rules and thresholds chosen here)")
    for cut, cut_settings in CUTS.items():
        started = time.perf_counter()
        val = _score(engine, INTENTS, VAL, cut_settings)
        timing[cut] = time.perf_counter() - started
        for rule in RULES:
            for margin in MARGINS:
                settings = replace(cut_settings, rule=rule, margin=margin)
                now = score_tickets(val.tickets, _decide(val, settings))
                best = choose_ticket_threshold(
                    sweep_tickets(val.tickets, val.scoring, GRID, settings)
                )
                rows.append(Row(cut, settings, now, best.threshold, best.scorecard))
                label = f"{cut}, {rule}, margin {margin:.2f}"
                print(_line(label, now))
                print(_line("", best.scorecard, best.threshold))
    engine.tickets = chosen
    val = _score(engine, INTENTS, VAL, chosen)
    today_val = _as_today(engine, val)
    print(_line("as today (one text, plain classify)", today_val))

    chosen_row = next(r for r in rows if r.settings == chosen)
    threshold = chosen_row.tuned_threshold
    test = _score(engine, INTENTS, TEST, chosen)
    test_now = test.scorecard()
    test_tuned = sweep_tickets(test.tickets, test.scoring, [threshold], chosen)[0].scorecard
    today_test = _as_today(engine, test)
    print(
        f"\ntest ({test_tuned.tickets} tickets: {test_tuned.single_tickets} single-request, "
        f"{test_tuned.multi_tickets} with two requests, "
        f"{test_tuned.out_of_scope_tickets} out of scope)"
    )
    print(_line("chosen, intents' thresholds", test_now))
    print(_line("chosen, val-tuned default", test_tuned, threshold))
    print(_line("as today (one text, plain classify)", today_test))
    top1_ok = (test_tuned.single_top1 or 0) >= TOP1_TARGET
    f1_ok = (test_tuned.micro_f1 or 0) >= MICRO_F1_TARGET
    print(
        f"\ntargets: top-1 single-request {_pct(test_tuned.single_top1)}% (>= 90: "
        f"{'met' if top1_ok else 'MISSED'}), micro-F1 {test_tuned.micro_f1:.3f} "
        f"(>= 0.85: {'met' if f1_ok else 'MISSED'})"
    )
    run.finish(
        {
            "model": model.record(),
            "chosen": {"settings": chosen, "val_tuned_threshold": threshold},
            "test": {
                "val_tuned": _brief(test_tuned),
                "intents_thresholds": _brief(test_now),
                "as_today": _brief(today_test),
                "per_label_val_tuned": {
                    k: vars(v) if hasattr(v, "__dict__") else v
                    for k, v in test_tuned.per_label.items()
                },
            },
            "targets": {"single_top1": top1_ok, "micro_f1": f1_ok},
            "val": {
                "as_today": _brief(today_val),
                "compared": [
                    {
                        "cut": r.cut,
                        "settings": r.settings,
                        "now": _brief(r.now),
                        "tuned_threshold": r.tuned_threshold,
                        "tuned": _brief(r.tuned),
                    }
                    for r in rows
                ],
            },
            "val_scoring_seconds": timing,
        }
    )


def _decide(run: TicketRun, settings: TicketSettings) -> list[Prediction]:
    return decide_tickets(run.scoring, 1, settings)


if __name__ == "__main__":
    main()
