"""Tickets routed by an engine in this process (``triage`` without ``--server``).

One ``Engine.classify(multi_intent=True, subjects=...)`` call per batch: the call the
server makes for ClassifyBatch and ClassifyStream with ``multi_intent``, so both paths
answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.routing.engine import Engine
from router.routing.index import Prediction
from router.triage.reading import Ticket
from router.triage.routers import Evidence, Match, Routed

__all__ = ["EngineRouter", "routed_from_prediction"]


def routed_from_prediction(id_: str, prediction: Prediction, revision: str) -> Routed:
    return Routed(
        id=id_,
        intent=prediction.intent,
        score=prediction.score,
        threshold=prediction.threshold,
        reason=str(prediction.reason),
        matches=tuple(
            Match(
                m.intent,
                m.score,
                m.threshold,
                Evidence(m.evidence.text, m.evidence.start, m.evidence.end, m.evidence.field),
            )
            for m in prediction.matches
        ),
        revision=revision,
    )


class EngineRouter:
    def __init__(self, engine: Engine, top_k: int = 3) -> None:
        self.engine = engine
        self.top_k = top_k

    def route(self, tickets: Sequence[Ticket]) -> list[Routed]:
        result = self.engine.classify(
            [t.text for t in tickets],
            self.top_k,
            multi_intent=True,
            subjects=[t.subject for t in tickets],
        )
        return [
            routed_from_prediction(t.id, p, result.revision)
            for t, p in zip(tickets, result.predictions, strict=True)
        ]

    def revision(self) -> str | None:
        return self.engine.snapshot.revision

    def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""
