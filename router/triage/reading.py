"""Tickets from a CSV or JSONL file (or stdin), one at a time, each with the line it starts on.

Nothing is read ahead: ``read_tickets`` yields as it parses, so memory does not grow with
the file (only the ids seen, to refuse duplicates). What is wrong is said with
``file:line``:

* bytes that do not decode (``--encoding``): an error naming the line and the byte, always
  fatal (the rest of the file is probably in another encoding);
* a field named by ``--id-field``/``--text-field`` (or an explicit ``--subject-field``)
  that the CSV header or the first JSONL object lacks: an error listing the fields present;
* a malformed row (CSV: a bad quote or the wrong number of cells; JSONL: not a JSON
  object, a missing or non-text field), an empty id, or an id seen before: a ``BadRow``,
  which the caller skips (with a warning) or stops on, by ``--on-bad-row``.

A ticket whose subject and text are both blank is yielded like any other (the router
answers it ``unknown`` with the reason ``empty``; see run.py).
"""

from __future__ import annotations

import codecs
import csv
import enum
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from router.errors import DataError, Problem
from router.routing.blank import is_blank
from router.routing.folding import without_lone_surrogates

__all__ = [
    "CSV_FIELD_LIMIT",
    "BadRow",
    "Fields",
    "InputFormat",
    "Ticket",
    "format_of",
    "read_tickets",
]


class InputFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


#: The csv module's default limit on a cell (characters); ``read_tickets`` takes a
#: larger one from its caller.
CSV_FIELD_LIMIT = 131_072
_EXTENSIONS = {".csv": InputFormat.CSV, ".jsonl": InputFormat.JSONL, ".ndjson": InputFormat.JSONL}


def format_of(name: str) -> InputFormat | None:
    """The format a file name's extension says (``.csv``, ``.jsonl``, ``.ndjson``), or None."""
    for extension, fmt in _EXTENSIONS.items():
        if name.lower().endswith(extension):
            return fmt
    return None


@dataclass(frozen=True, slots=True)
class Fields:
    """Which columns (CSV) or keys (JSONL) hold what. ``subject`` None: the ``subject``
    field if the input has one, else no subjects."""

    id: str = "id"
    text: str = "text"
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    text: str
    subject: str
    line: int  # where its row starts in the input (1-based)

    @property
    def empty(self) -> bool:
        return is_blank(self.text) and is_blank(self.subject)


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be a ticket; ``problem`` says where and why."""

    problem: Problem

    def __str__(self) -> str:
        return str(self.problem)


def read_tickets(
    stream: IO[bytes],
    fmt: InputFormat,
    fields: Fields,
    *,
    name: str,
    encoding: str = "utf-8",
    max_cell_chars: int = CSV_FIELD_LIMIT,
) -> Iterator[Ticket | BadRow]:
    """Tickets and bad rows of ``stream`` in file order; raises ``DataError`` for what
    makes the whole input unusable (bytes that do not decode, a missing field).
    ``name`` is the file's name in messages (``-`` for stdin). A CSV cell over
    ``max_cell_chars`` (at least the csv module's 131,072) is a bad row: memory stays
    bounded when an unclosed quote would read the rest of the file into one cell."""
    lines = _decoded(stream, encoding, name)
    rows = (
        _csv_rows(lines, fields, name, max(CSV_FIELD_LIMIT, max_cell_chars))
        if fmt is InputFormat.CSV
        else _jsonl_rows(lines, fields, name)
    )
    seen: dict[str, int] = {}  # id -> the line it was first seen on
    for row in rows:
        if isinstance(row, Ticket):
            if not row.id.strip():
                yield _bad(name, row.line, fields.id, "the id is empty")
                continue
            if row.id in seen:
                first = seen[row.id]
                yield _bad(
                    name, row.line, fields.id,
                    f"the id {row.id!r} was already used on line {first} (ids must be unique)",
                )  # fmt: skip
                continue
            seen[row.id] = row.line
        yield row


def _bad(name: str, line: int, field: str, message: str) -> BadRow:
    return BadRow(Problem(name, line, None, field, message))


def _decoded(stream: IO[bytes], encoding: str, name: str) -> Iterator[tuple[int, str]]:
    """(line number, decoded line with its newline) for each line of ``stream``; a byte
    order mark opening the first line is dropped (it is not part of the first field).

    An encoding that writes a newline as the byte 0a (UTF-8, Latin-1, GB18030, ...) is
    decoded line by line, so that an error names its line and byte; any other (UTF-16,
    UTF-32) is decoded as a stream, and an error names the line it is on."""
    if "\n".encode(encoding) != b"\n":
        yield from _decoded_wide(stream, encoding, name)
        return
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.end]
            raise DataError(
                [
                    Problem(
                        name, number, exc.start + 1, "",
                        f"byte {bad.hex(' ')} is not valid {encoding} ({exc.reason}); "
                        "give the file's encoding with --encoding",
                    )
                ]
            ) from exc  # fmt: skip
        yield number, line.removeprefix("\ufeff") if number == 1 else line


def _decoded_wide(stream: IO[bytes], encoding: str, name: str) -> Iterator[tuple[int, str]]:
    """As ``_decoded``, for an encoding whose newline is wider than a byte: the bytes go
    through an incremental decoder in pieces that end at a 0a byte (each at most a line),
    and the text is cut at its newlines."""
    decoder = codecs.getincrementaldecoder(encoding)()
    pending, number = "", 0
    pieces = itertools.chain(stream, [b""])
    for raw in pieces:
        state = decoder.getstate()
        try:
            pending += decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            # the piece may begin with the end of the last line's newline (0a 00 in
            # UTF-16-LE): count the newlines decoded before the bad bytes
            probe = codecs.getincrementaldecoder(encoding)(errors="replace")
            probe.setstate(state)
            seen = probe.decode(raw, final=True)
            before = seen[: seen.index("\ufffd")] if "\ufffd" in seen else seen
            raise DataError(
                [
                    Problem(
                        name, number + 1 + before.count("\n"), None, "",
                        f"bytes that are not valid {encoding} ({exc.reason}); give the "
                        "file's encoding with --encoding",
                    )
                ]
            ) from exc  # fmt: skip
        *lines, pending = pending.split("\n")
        for line in lines:
            number += 1
            yield number, (line.removeprefix("\ufeff") if number == 1 else line) + "\n"
    if pending:
        number += 1
        yield number, pending.removeprefix("\ufeff") if number == 1 else pending


def _missing(name: str, line: int, wanted: Iterable[str], present: list[str]) -> DataError:
    listed = ", ".join(repr(f) for f in present) or "none"
    return DataError(
        [
            Problem(name, line, None, field, f"no such field; the fields present are {listed}")
            for field in wanted
        ]
    )


def _subject_field(fields: Fields, present: Iterable[str]) -> str | None:
    if fields.subject is not None:
        return fields.subject
    return "subject" if "subject" in present else None


# -------------------------------------------------------------------------------- CSV


def _csv_rows(
    lines: Iterator[tuple[int, str]], fields: Fields, name: str, max_cell_chars: int
) -> Iterator[Ticket | BadRow]:
    current = [0]  # the physical line csv is reading (it may span several for one record)

    def text_lines() -> Iterator[str]:
        for number, text in lines:
            current[0] = number
            yield text

    # the ticket's length is the run's to judge (``--max-text-chars``): a cell may be
    # longer than the csv module's default, not unbounded
    csv.field_size_limit(max_cell_chars)
    reader = csv.reader(text_lines(), strict=True)
    header: list[str] | None = None

    def _lines(start: int) -> str:
        """The lines a bad record took, when more than its first (an open quote takes
        every line to the next quote: the tickets on them have no row)."""
        return f" (lines {start}-{current[0]}, one record)" if current[0] > start else ""

    while True:
        start = current[0] + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if header is None:
                raise DataError(
                    [Problem(name, start, None, "", f"bad CSV header: {_csv_error(exc, True)}")]
                ) from exc
            yield _bad(
                name, start, "", f"malformed CSV row{_lines(start)}: {_csv_error(exc, False)}"
            )
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        if header is None:
            header = cells
            subject = _subject_field(fields, header)
            wanted = [f for f in (fields.id, fields.text, subject) if f is not None]
            missing = [f for f in wanted if f not in header]
            if missing:
                raise _missing(name, start, missing, header)
            pick = _picker(header, fields.id, fields.text, subject)
            continue
        if len(cells) != len(header):
            yield _bad(
                name, start, "",
                f"malformed CSV row{_lines(start)}: {len(cells)} cells where the header has "
                f"{len(header)}",
            )  # fmt: skip
            continue
        yield pick(cells, start)


def _csv_error(exc: csv.Error, header: bool) -> str:
    """What the csv module's error means for the person holding the file."""
    said = str(exc)
    if "new-line character seen in unquoted field" in said:
        if header:  # the first line never ended: the file ends its lines with CR alone
            return (
                "a line ends with a carriage return alone (old Mac line endings); convert "
                "the file's line endings to \\n or \\r\\n"
            )
        return "a carriage return inside a cell that is not quoted (quote the cell)"
    if "field larger than field limit" in said:
        return (
            f"a cell over {csv.field_size_limit():,} characters (an unclosed quote reads "
            "on to the next quote)"
        )
    return said


def _picker(
    header: list[str], id_field: str, text_field: str, subject_field: str | None
) -> Callable[[list[str], int], Ticket]:
    i, t = header.index(id_field), header.index(text_field)
    s = header.index(subject_field) if subject_field is not None else None

    def pick(cells: list[str], line: int) -> Ticket:
        return Ticket(cells[i], cells[t], cells[s] if s is not None else "", line)

    return pick


# ------------------------------------------------------------------------------ JSONL


def _jsonl_rows(
    lines: Iterator[tuple[int, str]], fields: Fields, name: str
) -> Iterator[Ticket | BadRow]:
    subject: str | None = None
    checked = False
    for number, text in lines:
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield _bad(name, number, "", f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(row, dict):
            yield _bad(name, number, "", f"a JSON object is expected, not {type(row).__name__}")
            continue
        if not checked:  # the first object sets what the file holds
            subject = _subject_field(fields, row)
            wanted = [f for f in (fields.id, fields.text, subject) if f is not None]
            missing = [f for f in wanted if f not in row]
            if missing:
                raise _missing(name, number, missing, list(row))
            checked = True
        yield _ticket(row, fields, subject, name, number)


def _ticket(
    row: dict[str, object], fields: Fields, subject: str | None, name: str, line: int
) -> Ticket | BadRow:
    values: dict[str, str] = {}
    for role, field in (("id", fields.id), ("text", fields.text), ("subject", subject)):
        if field is None:
            values[role] = ""
            continue
        value = row.get(field)
        if value is None:
            if role == "subject":
                values[role] = ""
                continue
            return _bad(name, line, field, f"missing (the fields present are {', '.join(row)})")
        if role == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # numeric ids are common in exports
        if not isinstance(value, str):
            return _bad(name, line, field, f"must be a string, not {type(value).__name__}")
        clean = without_lone_surrogates(value)
        if role == "id" and clean != value:  # an id is written back: it must stay itself
            return _bad(name, line, field, f"{value!r} holds a lone surrogate (a \\ud800-"
                        "\\udfff escape without its pair): not text")  # fmt: skip
        values[role] = clean
    return Ticket(values["id"], values["text"], values["subject"], line)
