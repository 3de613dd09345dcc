"""The text ``eval`` and ``tune`` print: each function returns lines, the CLI prints them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.quality.evaluate import Evaluation, SweepPoint
from router.quality.ticket_eval import TicketSweepPoint, predicted_labels
from router.quality.tuning import PRIOR_ROWS, Objective, Tuning
from router.routing.intents import UNKNOWN

if TYPE_CHECKING:  # run.py builds the engine; rendering only reads what it gave
    from router.quality.run import TicketRun

__all__ = [
    "compact_curve",
    "evaluation_lines",
    "negation_compare_lines",
    "ticket_lines",
    "ticket_tuning_lines",
    "tuning_lines",
]


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def evaluation_lines(e: Evaluation, show_errors: int) -> list[str]:
    """The summary ``eval`` prints: headline metrics, per-label table, confusions, errors."""
    m = e.metrics
    n_in = e.in_scope_rows
    n_out = e.rows - n_in
    own = f"; {len(e.own_thresholds)} intents with their own" if e.own_thresholds else ""
    out = [
        f"{e.data}: {e.rows} rows ({n_in} in scope, {n_out} unknown)",
        f"revision {e.revision}, model {e.model or '-'}, scoring {e.scoring}, "
        f"default threshold {e.default_threshold:g}{own}"
        + (f" ({e.threshold_source})" if e.threshold_source else ""),
        "",
    ]
    correct = sum(o.correct for o in e.outcomes)
    in_correct = sum(o.correct for o in e.outcomes if o.gold != UNKNOWN)
    headline = [
        ("accuracy", m.accuracy, f"{correct}/{e.rows}, unknown counted as a label"),
        ("in-scope accuracy", m.in_scope_accuracy, f"{in_correct}/{n_in}"),
        ("in-scope top-1", m.in_scope_top1, "best candidate, whatever the threshold"),
        ("in-scope precision", m.in_scope_precision, "answers naming an intent that are right"),
        ("unknown recall", m.unknown_recall, f"of {n_out} out-of-scope rows"),
        ("unknown precision", m.unknown_precision, "unknown answers that are out of scope"),
        ("unknown F1", m.unknown_f1, ""),
        ("macro F1", m.macro_f1, "over intents and unknown"),
    ]
    out += [f"  {name:<20}{_f(value):>7}   {note}".rstrip() for name, value, note in headline]
    out.append("")
    width = max(len(s.name) for s in e.per_intent)
    out.append(f"  {'label':<{width}}  precision  recall     f1  support")
    for s in sorted(e.per_intent, key=lambda s: (s.f1 is None, s.f1 or 0.0, s.name)):
        out.append(
            f"  {s.name:<{width}}  {_f(s.precision):>9}  {_f(s.recall):>6}  {_f(s.f1):>5}"
            f"  {s.support:>7}"
        )
    if e.confused_pairs:
        out.append("\n  most confused (gold -> predicted)")
        out += [f"  {p.count:>4}  {p.gold} -> {p.predicted}" for p in e.confused_pairs]
    errors = e.errors
    if errors and show_errors > 0:
        shown = errors[:show_errors]
        first = f", first {len(shown)}" if len(shown) < len(errors) else ""
        out.append(f"\n  errors: {len(errors)}{first}")
        for o in shown:
            op = ">=" if o.score >= o.threshold else "<"
            out.append(
                f"  line {o.line}: {o.gold} -> {o.predicted} "
                f"({o.candidate} {o.score:.3f} {op} {o.threshold:g}): {o.text!r}"
            )
    return out


def negation_compare_lines(off: Evaluation, on: Evaluation, show_errors: int) -> list[str]:
    """Both evaluations in full, then the headline metrics off -> on."""
    out: list[str] = []
    for name, evaluation in (("off", off), ("on", on)):
        out.append(f"=== negation handling {name}")
        out += evaluation_lines(evaluation, show_errors)
        out.append("")
    out.append("=== negation handling off -> on")
    a_m, b_m = off.metrics, on.metrics
    for label, a, b in (
        ("accuracy", a_m.accuracy, b_m.accuracy),
        ("in-scope accuracy", a_m.in_scope_accuracy, b_m.in_scope_accuracy),
        ("unknown recall", a_m.unknown_recall, b_m.unknown_recall),
        ("macro F1", a_m.macro_f1, b_m.macro_f1),
    ):
        delta = "" if a is None or b is None else f"  ({(b - a) * 100:+.1f} points)"
        out.append(f"  {label:<20}{_f(a):>7} -> {_f(b)}{delta}")
    return out


def summary(p: SweepPoint, threshold: float) -> str:
    """One sweep point as a sentence."""
    return (
        f"threshold {threshold:g}: accuracy {p.accuracy:.3f} ({p.correct}/{p.rows}), "
        f"in-scope accuracy {_f(p.in_scope_accuracy)}, in-scope precision "
        f"{_f(p.in_scope_precision)}, in-scope answered {_f(p.in_scope_answered)}, "
        f"unknown recall {_f(p.unknown_recall)}, "
        f"unknown precision {_f(p.unknown_precision)}"
    )


def compact_curve(
    curve: Sequence[SweepPoint], marks: Sequence[SweepPoint], rows: int = 16
) -> list[SweepPoint]:
    """About ``rows`` points of the curve on a round step, plus the ``marks``."""
    lo, hi = curve[0].threshold, curve[-1].threshold
    raw = (hi - lo) / rows if hi > lo else 1.0
    step = min(m * 10.0**e for e in range(-6, 2) for m in (1, 2, 5) if m * 10.0**e >= raw)
    picked: dict[float, SweepPoint] = {}
    for k in range(math.ceil(lo / step), math.floor(hi / step) + 1):
        nearest = min(curve, key=lambda p: abs(p.threshold - k * step))
        picked[nearest.threshold] = nearest
    for point in marks:
        picked[point.threshold] = point
    return [picked[t] for t in sorted(picked)]


def tuning_lines(
    now: Evaluation,
    tuning: Tuning,
    curve: Sequence[SweepPoint],
    current: SweepPoint,
    current_threshold: float,
    *,
    target: float,
    min_rows: int,
) -> list[str]:
    """The curve with the chosen and the current threshold marked, and what was chosen."""
    out = [
        f"{now.data}: {now.rows} rows ({now.in_scope_rows} in scope), scoring {now.scoring}, "
        f"revision {now.revision}",
        "",
        "  threshold  accuracy  in-scope acc  in-scope prec  in-scope answered  unk recall"
        "  unk prec",
    ]
    for p in curve:
        mark = " *" if p.threshold == tuning.default else "  "
        note = "  <- now" if p.threshold == current.threshold else ""
        out.append(
            f"{mark} {p.threshold:>9g}  {p.accuracy:>8.3f}  {_f(p.in_scope_accuracy):>12}"
            f"  {_f(p.in_scope_precision):>13}  {_f(p.in_scope_answered):>17}"
            f"  {_f(p.unknown_recall):>10}  {_f(p.unknown_precision):>8}{note}"
        )
    objective = tuning.objective
    goal = {
        Objective.ACCURACY: "",
        Objective.BALANCED: f" (out-of-scope weighed as {target:g} of the traffic)",
    }.get(objective, f" >= {target:g}")
    out += [
        "",
        f"objective: {objective}{goal}",
        f"now:    {summary(now.at_current(), current_threshold)}",
        f"chosen: {summary(tuning.chosen, tuning.default)}",
    ]
    if tuning.per_intent is not None:
        out += [
            "",
            f"per-intent: intents with {min_rows}+ rows (gold or best candidate); the best "
            f"threshold on their rows, shrunk toward the default by {PRIOR_ROWS} rows, is kept "
            "only if it is better there",
        ]
        if not tuning.intents:
            out.append("  none has enough rows: every intent uses the default")
        for c in tuning.intents:
            verdict = f"{c.shrunk:g}" if c.kept else "default"
            out.append(
                f"  {c.name:<28} rows {c.rows:>3} (support {c.support:>3})  best {c.raw:g} -> "
                f"shrunk {c.shrunk:g}: {c.correct_default} -> {c.correct_own} correct => {verdict}"
            )
        out.append(
            f"with per-intent thresholds ({len(tuning.per_intent)}): "
            f"{summary(tuning.result, tuning.default)}"
        )
    return out


def ticket_lines(run: TicketRun, show_errors: int) -> list[str]:
    """The summary ``eval`` prints for tickets: headline metrics, per label, errors."""
    card = run.scorecard()
    index = run.index
    out = [
        f"{run.data}: {card.tickets} tickets ({card.single_tickets} single-request, "
        f"{card.multi_tickets} with several, {card.out_of_scope_tickets} out of scope)",
        f"revision {run.revision}, model {run.model}, default threshold "
        f"{index.default_threshold:g} ({run.threshold_source})",
        "",
    ]
    headline = [
        ("top-1 single", card.single_top1, "the answer is the one label (single-request tickets)"),
        ("top-1 candidate", card.single_candidate_top1, "best candidate, whatever the threshold"),
        ("exact match", card.exact_match, "the intents found are the labels"),
        ("micro F1", card.micro_f1, f"P {_f(card.micro_precision)} R {_f(card.micro_recall)}"),
        ("macro F1", card.macro_f1, "over intents and unknown"),
        ("several found", card.multi_found, "labels found on tickets with several"),
        ("unknown recall", card.unknown_recall, "out-of-scope tickets answered unknown"),
    ]
    out += [f"  {name:<20}{_f(value):>7}   {note}".rstrip() for name, value, note in headline]
    out.append("")
    width = max(len(name) for name in card.per_label)
    out.append(f"  {'label':<{width}}  precision  recall     f1  support")
    for name, s in sorted(card.per_label.items(), key=lambda kv: (kv[1].f1 or 0.0, kv[0])):
        out.append(
            f"  {name:<{width}}  {_f(s.precision):>9}  {_f(s.recall):>6}  {_f(s.f1):>5}"
            f"  {s.support:>7}"
        )
    errors = [
        (t, p)
        for t, p in zip(run.tickets, run.predictions, strict=True)
        if set(t.labels) != set(predicted_labels(p))
    ]
    if errors and show_errors > 0:
        shown = errors[:show_errors]
        first = f", first {len(shown)}" if len(shown) < len(errors) else ""
        out.append(f"\n  tickets not matched exactly: {len(errors)}{first}")
        for ticket, prediction in shown:
            found = (
                ", ".join(
                    f"{m.intent} {m.score:.3f} "
                    f"({m.evidence.field} {m.evidence.start}-{m.evidence.end})"
                    for m in prediction.matches
                )
                or f"unknown (best {prediction.candidate} {prediction.score:.3f})"
            )
            out.append(
                f"  {ticket.id} (line {ticket.line}): {' + '.join(ticket.labels)} -> {found}"
            )
    return out


def ticket_tuning_lines(
    run: TicketRun, now: TicketSweepPoint, chosen: TicketSweepPoint
) -> list[str]:
    """What ``tune`` prints for tickets: the default threshold now and the one chosen."""

    def line(label: str, point: TicketSweepPoint) -> str:
        card = point.scorecard
        return (
            f"  {label:<8} {point.threshold:.4f}  micro F1 {_f(card.micro_f1)}  "
            f"top-1 single {_f(card.single_top1)}  exact {_f(card.exact_match)}  "
            f"unknown recall {_f(card.unknown_recall)}"
        )

    own = sum(i.threshold is not None for i in run.index.intents.intents)
    return [
        f"{run.data}: {len(run.tickets)} tickets; the default threshold with the best micro "
        "F1 (intents' own thresholds kept" + (f": {own}" if own else ": none") + ")",
        line("now", now),
        line("chosen", chosen),
    ]
