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
from router.routing.engine import Engine
from router.routing.index import Index, Prediction
from router.routing.intents import IntentSet

__all__ = ["EVAL_TOP_K", "EvalRun", "run_eval"]

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
            scoring=str(self.index.settings.scoring),
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
