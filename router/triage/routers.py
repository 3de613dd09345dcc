"""Who routes a batch of tickets: the engine in this process, or a running server.

Both give the same ``Routed`` for the same ticket (scores pass through float32, as the
proto carries them, then are rounded), so a file triaged in process and through
``--server`` reads the same byte for byte (tested).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from router.triage.reading import Ticket

__all__ = ["ERROR_REASON", "Evidence", "Match", "Routed", "TicketRouter", "score_value"]

log = logging.getLogger(__name__)

#: The reason of a row whose ticket was not routed (too long, refused by a server).
ERROR_REASON = "error"
#: Decimals kept of a score or threshold in the output.
SCORE_DECIMALS = 4


def score_value(x: float) -> float:
    """A score as the output writes it: float32 (the proto's), rounded."""
    return round(float(np.float32(x)), SCORE_DECIMALS)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The passage that matched: offsets in code points of ``field`` ("text" or "subject")."""

    text: str
    start: int
    end: int
    field: str


@dataclass(frozen=True, slots=True)
class Match:
    intent: str
    score: float
    threshold: float
    evidence: Evidence | None


@dataclass(frozen=True, slots=True)
class Routed:
    """One ticket's answer: the routed intent (``unknown`` included), and every intent
    above its threshold with its evidence. ``error``: why the ticket was not routed
    (a server refused it); then ``intent`` is ``unknown`` and ``reason`` ``error``."""

    id: str
    intent: str
    score: float
    threshold: float
    reason: str
    matches: tuple[Match, ...] = ()
    revision: str = ""
    error: str = ""


class TicketRouter(Protocol):
    """Routes non-empty tickets, one ``Routed`` per ticket in order."""

    def route(self, tickets: Sequence[Ticket]) -> list[Routed]: ...

    def revision(self) -> str | None:
        """The revision (model and intents) that answers, when it is fixed for the run
        (in process); None when it may change under the run (a server reloads)."""
        ...

    def close(self) -> None: ...
