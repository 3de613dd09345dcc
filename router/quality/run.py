"""The eval run: the engine built as ``serve`` builds it, asked what the server is asked.

``eval``, ``tune`` and ``bench/clinc150.py`` all go through ``run_eval``: the intents are
loaded, the labelled rows read against them, the engine loaded with the intents and
asked through ``Engine.classify`` (the call the gRPC handlers make). ``EvalRun`` holds
what that gave; ``EvalRun.evaluation`` turns it into metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from router.quality.evaluate import Evaluation, Row, evaluate, load_labelled, predict
from router.quality.ticket_eval import (
    LabelledTicket,
    TicketFields,
    TicketScorecard,
    load_tickets,
    score_tickets,
)
from router.routing.aggregation import TicketScoring, decide_tickets, merge_scorings
from router.routing.engine import Engine
from router.routing.index import Index, Prediction
from router.routing.intents import IntentSet

__all__ = ["EVAL_TOP_K", "EvalRun", "TicketRun", "run_eval", "run_ticket_eval"]

#: Alternatives asked for per row; the server's default (the decision does not use it).
EVAL_TOP_K = 3


@dataclass(frozen=True)
class EvalRun:
    """Intents, labelled rows and the engine's predictions for them, with the index used."""

    intents: IntentSet
    rows: list[Row]
    predictions: list[Prediction]
    index: Index
    data: str
    revision: str  # the snapshot's: intents and model together
    model: str  # the model's name (catalogue name, or custom:<dir>)
    threshold_source: str

    def evaluation(self) -> Evaluation:
        intents = self.index.intents  # the thresholds applied (Engine.thresholds_for)
        return evaluate(
            self.rows,
            self.predictions,
            labels=[i.name for i in intents.intents],
            revision=self.revision,
            scoring=self.index.scoring,
            default_threshold=self.index.default_threshold,
            own_thresholds={
                i.name: i.threshold for i in intents.intents if i.threshold is not None
            },
            data=self.data,
            model=self.model,
            threshold_source=self.threshold_source,
        )


def run_eval(
    engine: Engine, intents: IntentSet, data: Path, *, progress: bool | None = None
) -> EvalRun:
    """Load ``intents`` into ``engine`` and classify every labelled row of ``data``."""
    rows = load_labelled(data, {i.name for i in intents.intents})
    snapshot = engine.load(intents)
    predictions, revision = predict(
        engine, [r.text for r in rows], top_k=EVAL_TOP_K, progress=progress
    )
    if revision != snapshot.revision:  # pragma: no cover - nothing swaps in this process
        raise RuntimeError("the engine answered with another revision")
    return EvalRun(
        intents,
        rows,
        predictions,
        snapshot.index,
        str(data),
        snapshot.revision,
        engine.encoder.model_name,
        snapshot.threshold_source,
    )


@dataclass(frozen=True)
class TicketRun:
    """Labelled tickets and the engine's answers, as ``Classify`` with ``multi_intent``
    gives them; ``scoring`` (passage scores before any threshold) for ``tune``."""

    intents: IntentSet
    tickets: list[LabelledTicket]
    predictions: list[Prediction]
    scoring: TicketScoring
    index: Index
    data: str
    revision: str
    model: str
    threshold_source: str

    def scorecard(self) -> TicketScorecard:
        return score_tickets(self.tickets, self.predictions)


#: Tickets per engine call: bounds the passages embedded at once.
TICKET_BATCH = 32


def run_ticket_eval(
    engine: Engine,
    intents: IntentSet,
    data: Path,
    fields: TicketFields | None = None,
    *,
    load: bool = True,
) -> TicketRun:
    """Load ``intents`` into ``engine`` (unless ``load`` is False: already loaded) and
    route every labelled ticket of ``data`` as ``Engine.classify(multi_intent=True)`` does:
    its passages scored once (``Engine.score_tickets``), then decided."""
    tickets = load_tickets(data, {i.name for i in intents.intents}, fields)
    snapshot = engine.load(intents) if load else engine.snapshot
    predictions: list[Prediction] = []
    scorings: list[TicketScoring] = []
    for start in range(0, len(tickets), TICKET_BATCH):
        batch = tickets[start : start + TICKET_BATCH]
        texts, subjects = [t.text for t in batch], [t.subject for t in batch]
        scoring = engine.score_tickets(texts, subjects)
        if scoring.revision != snapshot.revision:  # pragma: no cover - nothing swaps here
            raise RuntimeError("the engine answered with another revision")
        scorings.append(scoring)
        # what Engine.classify(multi_intent=True) decides from the same scores (tested)
        predictions.extend(decide_tickets(scoring, EVAL_TOP_K, engine.tickets))
    return TicketRun(
        intents,
        tickets,
        predictions,
        merge_scorings(scorings),
        snapshot.index,
        str(data),
        snapshot.revision,
        engine.encoder.model_name,
        snapshot.threshold_source,
    )
