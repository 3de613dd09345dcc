"""Passage scores into a ticket's answer: pure numpy, no model.

A ticket is routed passage by passage (``routing/tickets.py``); each passage gets every
intent's score and its own winner (the head's choice, refused intents excluded), as a
single text would. ``aggregate`` turns one ticket's passages into:

* ticket-level scores per intent (``Rule``: the best passage's score, ``max`` and
  ``winners``, or the mean of the two best, ``top2``);
* the intents the ticket asks for (``matches``): under ``winners`` (the default) an
  intent some passage chose whose score reached its threshold; under ``max`` and
  ``top2`` any intent whose ticket score reached it;
* the single answer: the passage winner with the best ticket score (so it is
  ``matches[0]`` whenever there are matches); ``unknown`` below its threshold.

Passages that only refuse things ("I don't want a refund") vote for nothing; an intent
refused in a passage gets no score from that passage. Thresholds are the index's, on
the passage scale. bench/tickets.py measures the rules (ARCHITECTURE.md "Tickets").
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Rule", "TicketDecision", "TicketSettings", "aggregate"]

Matrix = npt.NDArray[np.float32]


class Rule(enum.StrEnum):
    WINNERS = "winners"  # passage winners at or above their threshold; score: best passage
    MAX = "max"  # any intent whose best passage reaches its threshold
    TOP2 = "top2"  # any intent whose two best passages' mean reaches its threshold


@dataclass(frozen=True, slots=True)
class TicketSettings:
    """How tickets are cut and aggregated (bench/tickets.py compares the choices)."""

    rule: Rule = Rule.WINNERS
    window: int = 1  # sentences per passage
    subject: bool = True  # the subject is a passage of its own; False: ignored
    whole: bool = False  # no splitting: the cleaned body (and subject) as one passage


@dataclass(frozen=True, slots=True)
class TicketDecision:
    """One ticket's aggregate, by intent index."""

    scores: Matrix  # (n_intents,) ticket-level scores
    source: npt.NDArray[np.int64]  # (n_intents,) the passage each score comes from
    matches: tuple[int, ...]  # intents asked for, the answer first, then by score
    answer: int | None  # the single answer's candidate; None when nothing is wanted
    refused: tuple[int, ...]  # refused in some passage and chosen by none


def aggregate(
    scores: Matrix,
    winners: npt.NDArray[np.int64],
    refused: npt.NDArray[np.bool_],
    thresholds: Matrix,
    rule: Rule = Rule.WINNERS,
) -> TicketDecision:
    """One ticket from its passages.

    ``scores``: (p, n) each passage's score for each intent; ``winners``: (p,) each
    passage's chosen intent, -1 for a passage that only refuses things; ``refused``:
    (p, n) intents a passage refuses; ``thresholds``: (n,).
    """
    p, n = scores.shape
    usable = np.where(refused | (winners < 0)[:, None], -np.inf, scores).astype(np.float32)
    if p == 0 or not (winners >= 0).any():
        empty = np.full(n, -np.inf, np.float32) if p == 0 else scores.max(axis=0)
        return TicketDecision(empty, np.zeros(n, np.int64), (), None, _refused(refused, ()))
    source = usable.argmax(axis=0)
    best = usable.max(axis=0).copy()
    if rule is Rule.TOP2 and p > 1:
        top2 = np.sort(usable, axis=0)[-2:]
        second = np.where(np.isfinite(top2[0]), top2[0], top2[1])
        ticket = ((top2[1] + second) / 2).astype(np.float32)
    else:
        ticket = best
    if rule is Rule.WINNERS:  # a chosen intent's score and evidence: the passages that chose it
        for j in {int(w) for w in winners if w >= 0}:
            own = np.where(winners == j, usable[:, j], -np.inf)
            source[j] = int(own.argmax())
            ticket[j] = own[source[j]]
    chosen = sorted({int(w) for w in winners if w >= 0}, key=lambda j: -float(ticket[j]))
    answer = chosen[0]
    if rule is Rule.WINNERS:
        above = [j for j in chosen if ticket[j] >= thresholds[j]]
    else:
        above = [int(j) for j in np.argsort(-ticket, kind="stable") if ticket[j] >= thresholds[j]]
    matches = tuple(([answer] if answer in above else []) + [j for j in above if j != answer])
    if answer not in above and matches:
        matches = ()  # the answer is unknown: nothing above is trusted more than it
    return TicketDecision(ticket, source, matches, answer, _refused(refused, chosen))


def _refused(refused: npt.NDArray[np.bool_], chosen: Collection[int]) -> tuple[int, ...]:
    """Intents some passage refuses and no passage chose."""
    return tuple(int(j) for j in np.flatnonzero(refused.any(axis=0)) if int(j) not in chosen)
