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
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.routing.index import Alternative, Index, Prediction, Reason
from router.routing.intents import UNKNOWN
from router.routing.negation import Analysis
from router.routing.tickets import DEFAULT_STRIDE, DEFAULT_WINDOW, IntentMatch, Passage

__all__ = [
    "Rule",
    "TicketDecision",
    "TicketScoring",
    "TicketSettings",
    "aggregate",
    "decide_tickets",
    "merge_scorings",
]

Matrix = npt.NDArray[np.float32]


class Rule(enum.StrEnum):
    WINNERS = "winners"  # passage winners at or above their threshold; score: best passage
    MAX = "max"  # any intent whose best passage reaches its threshold
    TOP2 = "top2"  # any intent whose two best passages' mean reaches its threshold


@dataclass(frozen=True, slots=True)
class TicketSettings:
    """How tickets are cut and aggregated (bench/tickets.py compares the choices)."""

    rule: Rule = Rule.WINNERS
    window: int = DEFAULT_WINDOW  # sentences per passage
    #: sentences between passage starts; None: ``window`` (no overlap)
    stride: int | None = DEFAULT_STRIDE
    #: A ticket that fits one window has its sentences read alone too (one window picks
    #: one intent; "I want a refund. Please change my address." asks for two).
    short_alone: bool = True
    subject: bool = True  # the subject is a passage of its own; False: ignored
    whole: bool = False  # no splitting: the cleaned body (and subject) as one passage
    #: A match beside the answer needs its threshold + ``margin``: a sentence that only
    #: describes ("Order number is 66013.") grazes some intent's threshold.
    margin: float = 0.0


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
    *,
    rule: Rule = Rule.WINNERS,
    margin: float = 0.0,
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
    others = [j for j in above if j != answer and ticket[j] >= thresholds[j] + margin]
    matches = tuple(([answer] if answer in above else []) + others)
    if answer not in above and matches:
        matches = ()  # the answer is unknown: nothing above is trusted more than it
    return TicketDecision(ticket, source, matches, answer, _refused(refused, chosen))


def _refused(refused: npt.NDArray[np.bool_], chosen: Collection[int]) -> tuple[int, ...]:
    """Intents some passage refuses and no passage chose."""
    return tuple(int(j) for j in np.flatnonzero(refused.any(axis=0)) if int(j) not in chosen)


@dataclass(frozen=True, slots=True)
class TicketScoring:
    """Tickets scored passage by passage, before any threshold (``Engine.score_tickets``).

    Rows of the arrays are the passages of every ticket, in order.
    """

    passages: list[list[Passage]]  # each ticket's passages
    analyses: list[Analysis]  # each passage's negation analysis
    scores: Matrix  # (p, n_intents)
    closest: npt.NDArray[np.int64]  # (p, n_intents) each intent's exemplar closest
    winners: npt.NDArray[np.int64]  # (p,) each passage's choice; -1: it only refuses
    refused: npt.NDArray[np.bool_]  # (p, n_intents)
    index: Index
    revision: str


def decide_tickets(
    scoring: TicketScoring,
    top_k: int = 3,
    settings: TicketSettings | None = None,
    thresholds: Matrix | None = None,
) -> list[Prediction]:
    """One prediction per ticket, at the index's thresholds or ``thresholds``."""
    settings = settings or TicketSettings()
    limits = scoring.index.thresholds if thresholds is None else thresholds
    predictions = []
    first = 0
    for ticket in scoring.passages:
        rows = slice(first, first + len(ticket))
        predictions.append(_ticket_prediction(scoring, rows, ticket, limits, top_k, settings))
        first += len(ticket)
    return predictions


def _ticket_prediction(  # noqa: PLR0917 - private; one call site
    scoring: TicketScoring,
    rows: slice,
    ticket: list[Passage],
    thresholds: Matrix,
    top_k: int,
    settings: TicketSettings,
) -> Prediction:
    """One ticket's prediction from its passages' rows."""
    index = scoring.index
    decision = aggregate(
        scoring.scores[rows],
        scoring.winners[rows],
        scoring.refused[rows],
        thresholds,
        rule=settings.rule,
        margin=settings.margin,
    )
    names, values = index.names, decision.scores.tolist()
    top_k = max(1, min(top_k, len(names)))
    ranked = [int(j) for j in np.argsort(-decision.scores, kind="stable")]
    lead = decision.answer if decision.answer is not None else ranked[0]
    order = [lead, *(j for j in ranked if j != lead)][:top_k]
    closest = scoring.closest[rows]

    def example(j: int) -> str:
        return index.examples[int(closest[decision.source[j], j])]

    score = values[lead]
    threshold = float(thresholds[lead])
    reason = Reason.of(nothing_wanted=decision.answer is None, score=score, threshold=threshold)
    return Prediction(
        intent=names[lead] if reason is Reason.MATCHED else UNKNOWN,
        score=score,
        threshold=threshold,
        alternatives=tuple(Alternative(names[j], values[j], example(j)) for j in order),
        reason=reason,
        refused=tuple(names[j] for j in decision.refused),
        matches=tuple(
            IntentMatch(names[j], values[j], float(thresholds[j]), ticket[int(decision.source[j])])
            for j in decision.matches
        ),
    )


def merge_scorings(parts: Sequence[TicketScoring]) -> TicketScoring:
    """One scoring of the tickets of ``parts``, in order (one index and revision)."""
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    if any(p.revision != first.revision for p in parts):
        raise ValueError("the scorings come from different revisions")
    return TicketScoring(
        passages=[t for p in parts for t in p.passages],
        analyses=[a for p in parts for a in p.analyses],
        scores=np.concatenate([p.scores for p in parts]),
        closest=np.concatenate([p.closest for p in parts]),
        winners=np.concatenate([p.winners for p in parts]),
        refused=np.concatenate([p.refused for p in parts]),
        index=first.index,
        revision=first.revision,
    )
