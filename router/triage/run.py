"""The triage loop: read a bounded batch of tickets, route it, write and commit it.

Memory holds one batch (``batch_size`` tickets) and the ids seen so far; the rest of
the file stays on disk. With ``resume``, the ids the output already holds are skipped
as they come (the input must be the same file: the run then writes exactly the rows an
uninterrupted run would have written, in the same order).

A ticket whose subject and text are both blank is not routed: it gets a row with intent
``unknown``, reason ``empty``, and a warning naming its line, so that every ticket of
the input has exactly one row. A ticket longer than ``max_text_chars`` (subject and text
together; the server's limit by default) is not routed either: its row has reason
``error`` and says why, as a server's refusal does, so a file reads the same in process
and through a server. A bad row (reading.py) is skipped with a warning or stops the run,
by ``on_bad_row``.

The output is opened only once the input's first row has been read (a missing field, an
undecodable or malformed first row leaves an existing output as it was); an output that is the
input itself is refused, and so is one another run is writing (``OutputFile``).
"""

from __future__ import annotations

import enum
import io
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from router.errors import DataError, Problem
from router.limits import MAX_TEXT_CHARS
from router.routing.intents import UNKNOWN
from router.triage.progress import Progress
from router.triage.reading import BadRow, Fields, InputFormat, Ticket, read_tickets
from router.triage.routers import ERROR_REASON, Routed, TicketRouter
from router.triage.writing import OutputFile

__all__ = [
    "EMPTY_REASON",
    "BadRowPolicy",
    "TriageJob",
    "TriageSummary",
    "max_cell_chars",
    "triage",
]

log = logging.getLogger(__name__)

#: The reason of an empty ticket's row.
EMPTY_REASON = "empty"
#: Tickets routed (and committed) together by default.
DEFAULT_BATCH = 32
#: The longest ticket routed by default (subject and text, characters): ``serve``'s
#: ``--max-text-chars`` default, so that a file reads the same in process and remotely.
DEFAULT_MAX_TEXT_CHARS = MAX_TEXT_CHARS


class BadRowPolicy(enum.StrEnum):
    SKIP = "skip"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class TriageJob:
    input: IO[bytes]
    input_name: str  # in messages: the path, or "-"
    input_format: InputFormat
    out: Path
    out_format: InputFormat
    fields: Fields = field(default_factory=Fields)
    encoding: str = "utf-8"
    resume: bool = False
    on_bad_row: BadRowPolicy = BadRowPolicy.STOP
    batch_size: int = DEFAULT_BATCH
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS


@dataclass(slots=True)
class TriageSummary:
    written: int = 0  # rows written by this run
    resumed: int = 0  # tickets skipped because the output already held them
    empty: int = 0
    bad_rows: int = 0
    errors: int = 0  # tickets not routed: too long, or refused by a server (rows with ``error``)
    seconds: float = 0.0
    intents: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def max_cell_chars(max_text_chars: int) -> int:
    """The longest CSV cell read: 2**20 characters, or 4x the longest ticket routed when
    that is more. A longer ticket is an error row up to there (as in JSONL) and a bad row
    beyond, so an unclosed quote cannot read the rest of the file into one cell."""
    return max(2**20, 4 * max_text_chars)


def triage(job: TriageJob, router: TicketRouter, progress: Progress | None = None) -> TriageSummary:
    """Route every ticket of ``job.input`` into ``job.out``; see the module doc."""
    summary = TriageSummary()
    start = time.perf_counter()
    _refuse_input_as_output(job)
    rows = read_tickets(
        job.input, job.input_format, job.fields, name=job.input_name, encoding=job.encoding,
        max_cell_chars=max_cell_chars(job.max_text_chars),
    )  # fmt: skip
    first = list(itertools.islice(rows, 1))  # the header and first row checked: may raise
    if first and isinstance(first[0], BadRow) and job.on_bad_row is BadRowPolicy.STOP:
        raise DataError([first[0].problem], limit=1)  # before the output is touched
    tickets = itertools.chain(first, rows)
    out = OutputFile(job.out, job.out_format)
    try:
        done = out.open(resume=job.resume)
        _same_answers(job, out.resumed_revisions, router.revision())
        for batch in _batches(_admitted(tickets, job, done, summary, progress), job.batch_size):
            routed = _route(batch, router, job)
            out.write(routed)
            summary.written += len(routed)
            for r in routed:
                summary.intents[r.intent] = summary.intents.get(r.intent, 0) + 1
                summary.errors += bool(r.error)
                summary.empty += r.reason == EMPTY_REASON
            if progress is not None:
                progress.advance(len(routed))
        out.finish()
    finally:
        out.close()
        summary.seconds = time.perf_counter() - start
    return summary


def _admitted(
    rows: Iterable[Ticket | BadRow],
    job: TriageJob,
    done: list[str],
    summary: TriageSummary,
    progress: Progress | None,
) -> Iterator[Ticket]:
    """The tickets to route: bad rows skipped or fatal, resumed ids passed over. The
    output being resumed must hold the input's first tickets, in order: an output of
    another input is refused, never mixed with this one."""
    for row in rows:
        if isinstance(row, BadRow):
            if job.on_bad_row is BadRowPolicy.STOP:
                raise DataError(
                    [row.problem], limit=1
                )  # the rows before it are written and committed: --resume continues
            summary.bad_rows += 1
            log.warning("skipped: %s", row)
            continue
        if summary.resumed < len(done):
            if row.id != done[summary.resumed]:
                raise DataError([_not_resumable(job, row, done[summary.resumed])], limit=1)
            summary.resumed += 1
            if progress is not None:
                progress.advance(1, resumed=True)
            continue
        yield row
    if summary.resumed < len(done):
        raise DataError(
            [Problem(job.input_name, None, None, "",
                     f"{job.out} holds {len(done)} tickets, this input only "
                     f"{summary.resumed}: it was written from another input; start "
                     "without --resume")],
        )  # fmt: skip


def _refuse_input_as_output(job: TriageJob) -> None:
    """Writing the output would empty the input when both are one file (a link too)."""
    try:
        read = os.fstat(job.input.fileno())
        written = os.stat(job.out)
    except (OSError, ValueError, io.UnsupportedOperation):
        return  # no output yet, or an input without a file (a pipe, a buffer)
    if (read.st_dev, read.st_ino) == (written.st_dev, written.st_ino):
        raise DataError(
            [Problem(job.input_name, None, None, "",
                     f"--out {job.out} is this input itself: writing it would destroy the "
                     "tickets; choose another output")],
        )  # fmt: skip


def _same_answers(job: TriageJob, written: set[str], answering: str | None) -> None:
    """A resumed output must go on with the revision (model and intents) that wrote it:
    rows of two revisions in one file would not be what one run writes."""
    other = sorted(written - {answering}) if answering is not None else []
    if other:
        raise DataError(
            [Problem(str(job.out), None, None, "revision",
                     f"written by revision {', '.join(other)}; this run answers with "
                     f"{answering} (another --model or other --intents): resume with the "
                     "same ones, or start without --resume")],
        )  # fmt: skip


def _not_resumable(job: TriageJob, row: Ticket, written: str) -> Problem:
    return Problem(
        job.input_name, row.line, None, "id",
        f"{row.id!r}, but ticket {written!r} is where {job.out} holds it: the output was "
        "written from another input; start without --resume",
    )  # fmt: skip


def _batches(tickets: Iterable[Ticket], size: int) -> Iterator[list[Ticket]]:
    """``tickets`` in batches of ``size``; a bad row that stops the run first lets the
    tickets before it be routed and committed (``--resume`` continues after it)."""
    batch: list[Ticket] = []
    try:
        for ticket in tickets:
            batch.append(ticket)
            if len(batch) >= size:
                yield batch
                batch = []
    except DataError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _route(batch: list[Ticket], router: TicketRouter, job: TriageJob) -> list[Routed]:
    """``batch`` answered in order: empty and overlong tickets here, the others by
    ``router``."""
    unrouted: dict[int, Routed] = {}
    for k, ticket in enumerate(batch):
        if ticket.empty:
            log.warning(
                "%s:%d: ticket %r has no subject and no text: written as %s (reason %s)",
                job.input_name, ticket.line, ticket.id, UNKNOWN, EMPTY_REASON,
            )  # fmt: skip
            unrouted[k] = Routed(ticket.id, UNKNOWN, 0.0, 0.0, EMPTY_REASON)
            continue
        size = len(ticket.text) + len(ticket.subject)
        if size > job.max_text_chars:  # worded as the server words it (service.py)
            with_subject = " with the subject" if ticket.subject else ""
            error = (
                f"INVALID_ARGUMENT: text: {size} characters{with_subject} exceed the limit "
                f"of {job.max_text_chars}"
            )
            log.warning("%s:%d: ticket %r not routed: %s",
                        job.input_name, ticket.line, ticket.id, error)  # fmt: skip
            unrouted[k] = Routed(ticket.id, UNKNOWN, 0.0, 0.0, ERROR_REASON, error=error)
    routable = [t for k, t in enumerate(batch) if k not in unrouted]
    answered = iter(router.route(routable) if routable else [])
    return [unrouted[k] if k in unrouted else next(answered) for k in range(len(batch))]
