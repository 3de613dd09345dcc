"""Evaluation on labelled tickets: reading them, multi-label metrics, the threshold sweep.

Pure: no grpc, no onnxruntime. The predictions come from ``Engine.classify_tickets``
(through ``quality/run.py``), the call the gRPC service makes with ``multi_intent``;
the sweep re-decides the engine's passage scores (``Engine.score_tickets``) at each
threshold with ``routing.aggregation.decide_tickets``, so nothing here re-scores.

Data, JSONL or CSV (by extension), one ticket a line or row: ``id``, ``subject``
(optional), ``text`` and ``labels``: a JSON list, or in a string the intents separated
by ``;``, ``|`` or ``,``; ``unknown`` alone marks a ticket that asks for none of the
intents. A JSONL row may give ``intent`` (one label) instead of ``labels``. Field names
can be changed (``TicketFields``).

Metrics (``TicketScorecard``): a ticket's predicted labels are its matches' intents, or
``unknown`` when it has none; its gold labels are ``labels``.

* ``exact_match``: predicted set == gold set;
* ``micro_*``: precision, recall and F1 over every (ticket, label) pair, ``unknown``
  included as a label;
* ``macro_f1``: mean F1 over the labels that occur as gold or predicted;
* ``single_top1``: over tickets with one in-scope label, the answer (``intent``) is it;
  ``single_candidate_top1``: the best candidate is it, whatever the threshold;
* ``multi_found``: over tickets with two labels or more, the share of their labels found;
* ``unknown_recall``: out-of-scope tickets answered ``unknown``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from router.errors import DataError, Problem
from router.routing.aggregation import TicketScoring, TicketSettings, decide_tickets
from router.routing.blank import is_blank
from router.routing.folding import without_lone_surrogates
from router.routing.index import Prediction
from router.routing.intents import UNKNOWN
from router.routing.scorecard import f1, jsonl_records, ratio, read_data_file

__all__ = [
    "LabelStats",
    "LabelledTicket",
    "TicketFields",
    "TicketScorecard",
    "TicketSweepPoint",
    "choose_ticket_threshold",
    "is_ticket_file",
    "load_tickets",
    "predicted_labels",
    "score_tickets",
    "sweep_tickets",
    "ticket_grid",
]

_SPLIT = re.compile(r"[;|,]")


@dataclass(frozen=True, slots=True)
class TicketFields:
    """The names of a ticket file's fields."""

    id: str = "id"
    subject: str = "subject"
    text: str = "text"
    labels: str = "labels"


@dataclass(frozen=True, slots=True)
class LabelledTicket:
    id: str
    subject: str
    text: str
    labels: tuple[str, ...]  # intents, or (UNKNOWN,)
    line: int  # 1-based line of the file where the ticket starts


# ---------------------------------------------------------------------------- data


def is_ticket_file(path: Path) -> bool:
    """Whether ``path`` holds tickets rather than ``{"text", "intent"}`` rows: a CSV
    file, or JSONL whose first record has ``labels`` or ``subject``."""
    if path.suffix.lower() == ".csv":
        return True
    try:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    record = json.loads(raw)
                    return isinstance(record, dict) and bool({"labels", "subject"} & set(record))
    except (OSError, ValueError):
        return False  # the row loader reports what is wrong, with its line
    return False


def load_tickets(
    path: Path | str,
    labels: Collection[str] | None = None,
    fields: TicketFields | None = None,
) -> list[LabelledTicket]:
    """Read labelled tickets from JSONL or CSV; raise DataError naming ``file:line`` for
    every malformed record and, with ``labels`` (the loaded intents), unknown labels."""
    path = Path(path)
    fields = fields or TicketFields()
    where = str(path)
    raw = read_data_file(path)
    problems: list[Problem] = []
    if path.suffix.lower() == ".csv":
        records = _csv_records(raw, where, problems)
    else:
        records = list(jsonl_records(raw, where, problems))
    tickets: list[LabelledTicket] = []
    seen: dict[str, int] = {}
    for line, record in records:
        ticket = _ticket(record, line, fields, labels, where, problems)
        if ticket is None:
            continue
        if ticket.id in seen:
            problems.append(
                Problem(
                    where, line, None, fields.id, f"{ticket.id!r} repeats line {seen[ticket.id]}"
                )
            )
            continue
        seen[ticket.id] = line
        tickets.append(ticket)
    if problems:
        raise DataError(problems)
    if not tickets:
        raise DataError([Problem(where, None, None, "", "no tickets")])
    return tickets


def _csv_records(raw: bytes, where: str, problems: list[Problem]) -> list[tuple[int, object]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(where, line, None, "", f"not UTF-8: {exc.reason}"))
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, object]] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        start = reader.line_num + 1
        for row in reader:
            if not any(cell.strip() for cell in row):
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                problems.append(
                    Problem(
                        where, start, None, "", f"{len(row)} fields, the header has {len(header)}"
                    )
                )
            else:
                records.append((start, dict(zip(header, row, strict=True))))
            start = reader.line_num + 1
    except csv.Error as exc:
        problems.append(Problem(where, reader.line_num, None, "", f"malformed CSV: {exc}"))
    return records


def _labels_of(value: object) -> list[str] | None:
    """A labels field as a list of names, or None when it is neither a list of strings
    nor a string (a JSON list in a string is read as one)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                return None
        else:
            return [part.strip() for part in _SPLIT.split(stripped) if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def _ticket(  # noqa: PLR0917 - private; one call site
    record: object,
    line: int,
    fields: TicketFields,
    known: Collection[str] | None,
    where: str,
    problems: list[Problem],
) -> LabelledTicket | None:
    if not isinstance(record, dict):
        problems.append(Problem(where, line, None, "", "must be a JSON object"))
        return None
    before = len(problems)
    text = record.get(fields.text)
    subject = record.get(fields.subject, "")
    ident = record.get(fields.id, str(line))
    if text is None:
        text = ""
    if subject is None:
        subject = ""
    if not isinstance(text, str):
        problems.append(Problem(where, line, None, fields.text, "must be a string"))
    if not isinstance(subject, str):
        problems.append(Problem(where, line, None, fields.subject, "must be a string"))
    elif isinstance(text, str) and is_blank(text) and is_blank(subject):
        # a ticket may be its subject alone, as Classify and triage take it
        problems.append(
            Problem(where, line, None, fields.text, "required: a text or a subject, not blank")
        )
    if not isinstance(ident, (str, int)) or isinstance(ident, bool):
        problems.append(Problem(where, line, None, fields.id, "must be a string or a number"))
    raw = record[fields.labels] if fields.labels in record else record.get("intent")
    labels = _labels_of(raw)
    if not labels:
        problems.append(
            Problem(where, line, None, fields.labels, 'required: intents, or "unknown"')
        )
    else:
        if UNKNOWN in labels and len(labels) > 1:
            problems.append(
                Problem(where, line, None, fields.labels, f"{UNKNOWN!r} cannot go with intents")
            )
        for label in labels:
            if known is not None and label != UNKNOWN and label not in known:
                problems.append(
                    Problem(
                        where,
                        line,
                        None,
                        fields.labels,
                        f"{label!r} is neither a loaded intent nor {UNKNOWN!r}",
                    )
                )
    if len(problems) > before:
        return None
    assert isinstance(text, str) and isinstance(subject, str) and labels
    return LabelledTicket(
        without_lone_surrogates(str(ident)),
        without_lone_surrogates(subject),
        without_lone_surrogates(text),
        tuple(dict.fromkeys(labels)),
        line,
    )


# ----------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class LabelStats:
    precision: float | None
    recall: float | None
    f1: float | None
    support: int  # tickets with this gold label


@dataclass(frozen=True, slots=True)
class TicketScorecard:
    tickets: int
    single_tickets: int  # one in-scope label
    multi_tickets: int  # two labels or more
    out_of_scope_tickets: int
    exact_match: float
    micro_precision: float | None
    micro_recall: float | None
    micro_f1: float | None
    macro_f1: float | None
    single_top1: float | None
    single_candidate_top1: float | None
    multi_found: float | None
    unknown_recall: float | None
    per_label: dict[str, LabelStats] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def predicted_labels(prediction: Prediction) -> tuple[str, ...]:
    """What a ticket's prediction says it asks for: its matches, else ``unknown``."""
    return tuple(m.intent for m in prediction.matches) or (UNKNOWN,)


def score_tickets(
    tickets: Sequence[LabelledTicket], predictions: Sequence[Prediction]
) -> TicketScorecard:
    """The metrics of ``predictions`` (one per ticket, in order) against the labels."""
    if len(tickets) != len(predictions):
        raise ValueError("tickets and predictions differ in length")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    exact = single = single_hits = single_candidates = multi_labels = multi_hits = 0
    oos = oos_hits = 0
    for ticket, prediction in zip(tickets, predictions, strict=True):
        gold, found = set(ticket.labels), set(predicted_labels(prediction))
        exact += gold == found
        for label in gold & found:
            tp[label] += 1
        for label in found - gold:
            fp[label] += 1
        for label in gold - found:
            fn[label] += 1
        if gold == {UNKNOWN}:
            oos += 1
            oos_hits += prediction.intent == UNKNOWN
        elif len(gold) == 1:
            single += 1
            single_hits += prediction.intent == ticket.labels[0]
            single_candidates += prediction.candidate == ticket.labels[0]
        else:
            multi_labels += len(gold)
            multi_hits += len(gold & found)
    per_label = {}
    for label in sorted(set(tp) | set(fp) | set(fn)):
        precision = ratio(tp[label], tp[label] + fp[label])
        recall = ratio(tp[label], tp[label] + fn[label])
        per_label[label] = LabelStats(
            precision, recall, f1(precision, recall), tp[label] + fn[label]
        )
    micro_p = ratio(sum(tp.values()), sum(tp.values()) + sum(fp.values()))
    micro_r = ratio(sum(tp.values()), sum(tp.values()) + sum(fn.values()))
    f1s = [s.f1 for s in per_label.values() if s.f1 is not None]
    return TicketScorecard(
        tickets=len(tickets),
        single_tickets=single,
        multi_tickets=sum(len(t.labels) > 1 for t in tickets),
        out_of_scope_tickets=oos,
        exact_match=exact / len(tickets) if tickets else 0.0,
        micro_precision=micro_p,
        micro_recall=micro_r,
        micro_f1=f1(micro_p, micro_r),
        macro_f1=sum(f1s) / len(f1s) if f1s else None,
        single_top1=ratio(single_hits, single),
        single_candidate_top1=ratio(single_candidates, single),
        multi_found=ratio(multi_hits, multi_labels),
        unknown_recall=ratio(oos_hits, oos),
        per_label=per_label,
    )


# ---------------------------------------------------------------------- the sweep


@dataclass(frozen=True, slots=True)
class TicketSweepPoint:
    threshold: float  # the default threshold (intents' own thresholds stay)
    scorecard: TicketScorecard


def _thresholds(scoring: TicketScoring, default: float) -> npt.NDArray[np.float32]:
    """The index's thresholds with ``default`` for every intent without its own."""
    intents = scoring.index.intents.intents
    return np.array(
        [default if i.threshold is None else i.threshold for i in intents], dtype=np.float32
    )


def sweep_tickets(
    tickets: Sequence[LabelledTicket],
    scoring: TicketScoring,
    grid: Sequence[float],
    settings: TicketSettings | None = None,
) -> list[TicketSweepPoint]:
    """The metrics at each default threshold of ``grid``, the passages scored once."""
    return [
        TicketSweepPoint(
            float(t),
            score_tickets(tickets, decide_tickets(scoring, 1, settings, _thresholds(scoring, t))),
        )
        for t in grid
    ]


def choose_ticket_threshold(points: Sequence[TicketSweepPoint]) -> TicketSweepPoint:
    """The point with the best micro-F1; among equals, the middle of the widest run of
    them (the choice least sensitive to a small shift of scores)."""
    if not points:
        raise ValueError("no thresholds swept")
    values = [p.scorecard.micro_f1 or 0.0 for p in points]
    best = max(values)
    runs: list[list[int]] = []
    for i, value in enumerate(values):
        if value == best:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
    widest = max(runs, key=len)
    return points[widest[len(widest) // 2]]


def ticket_grid(scoring: TicketScoring, step: float = 0.005) -> list[float]:
    """Default thresholds to sweep: every ``step`` between the lowest and the highest
    score a passage gave its own choice (outside that range nothing changes)."""
    rows = np.flatnonzero(scoring.winners >= 0)
    if not len(rows):
        return [float(scoring.index.default_threshold)]
    chosen = scoring.scores[rows, scoring.winners[rows]]
    low = np.floor(float(chosen.min()) / step) * step
    high = np.ceil(float(chosen.max()) / step) * step + step
    return [round(float(t), 4) for t in np.arange(low, high + step / 2, step)]
