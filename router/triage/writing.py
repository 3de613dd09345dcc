"""The output: one JSONL or CSV row per ticket, append-only, committed batch by batch.

A batch's rows are written, flushed and fsynced, then the checkpoint beside the output
(``OUT.resume``: the output's committed size in bytes) is replaced atomically (write,
fsync, rename). A run killed at any instant leaves an output whose first
``committed`` bytes are whole rows; anything after them (a torn row, a batch written but
not committed) is cut off by ``--resume``, which then reads the ids already written and
skips them in the input. The checkpoint exists from the first byte written until the
run ends, and is removed then: an output without one is complete.

JSONL rows: ``{"id", "intent", "score", "threshold", "reason", "matches": [{"intent",
"score", "threshold", "evidence": {"text", "start", "end", "field"}}], "revision"}``
(plus ``"error"`` for a ticket a server refused). CSV: ``id, intent, score, threshold,
reason, intents`` (every matched intent, ``;``-separated), ``matches`` (the JSON list),
``revision``, ``error``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from router.errors import DataError, Problem
from router.triage.reading import InputFormat
from router.triage.routers import Routed, score_value

__all__ = ["CSV_COLUMNS", "OutputFile", "checkpoint_of", "record"]

log = logging.getLogger(__name__)

#: flock's errors on a file system without locks (some network and FUSE mounts).
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})

CSV_COLUMNS = (
    "id", "intent", "score", "threshold", "reason", "intents", "matches", "revision", "error",
)  # fmt: skip


def checkpoint_of(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def record(routed: Routed) -> dict[str, Any]:
    """A ticket's output row as JSON."""
    row: dict[str, Any] = {
        "id": routed.id,
        "intent": routed.intent,
        "score": score_value(routed.score),
        "threshold": score_value(routed.threshold),
        "reason": routed.reason,
        "matches": [
            {
                "intent": m.intent,
                "score": score_value(m.score),
                "threshold": score_value(m.threshold),
                "evidence": None
                if m.evidence is None
                else {
                    "text": m.evidence.text,
                    "start": m.evidence.start,
                    "end": m.evidence.end,
                    "field": m.evidence.field,
                },
            }
            for m in routed.matches
        ],
        "revision": routed.revision,
    }
    if routed.error:
        row["error"] = routed.error
    return row


def _jsonl(rows: Sequence[Routed]) -> str:
    return "".join(json.dumps(record(r), ensure_ascii=False) + "\n" for r in rows)


def _csv(rows: Sequence[Routed], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for r in rows:
        row = record(r)
        writer.writerow(
            [
                row["id"], row["intent"], row["score"], row["threshold"], row["reason"],
                ";".join(m["intent"] for m in row["matches"]),
                json.dumps(row["matches"], ensure_ascii=False), row["revision"], r.error,
            ]
        )  # fmt: skip
    return buffer.getvalue()


class OutputFile:
    """The output and its checkpoint. ``open(resume=False)`` starts afresh;
    ``open(resume=True)`` cuts the output back to its last commit and returns the ids
    it holds."""

    def __init__(self, path: Path, fmt: InputFormat) -> None:
        self.path = path
        self.format = fmt
        self.checkpoint = checkpoint_of(path)
        self._file: IO[bytes] | None = None
        self._header = fmt is InputFormat.CSV
        #: The revisions of the rows a resumed output already held (``open``).
        self.resumed_revisions: set[str] = set()

    def open(self, *, resume: bool) -> list[str]:
        """Open for appending; the ids already written, in order (none unless resuming).
        The output is locked (``flock``) until ``close``: a second run writing the same
        output is refused, never interleaved with this one."""
        existed = self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("ab")  # created, not truncated: the lock comes first
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise DataError(
                [Problem(str(self.path), None, None, "",
                         "another triage run is writing this output; wait for it to end, "
                         "or choose another --out")]
            ) from None  # fmt: skip
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                file.close()
                raise
            log.warning("%s: no file locks here (%s): two runs into this output would "
                        "not be kept apart", self.path, exc.strerror)  # fmt: skip
        self._file = file
        done: list[str] = []
        if resume and existed:
            committed = self._committed()
            size = self.path.stat().st_size
            if committed is not None and committed > size:
                raise DataError(
                    [Problem(str(self.path), None, None, "",
                             f"the checkpoint says {committed} bytes were written, the file "
                             f"holds {size}: it was changed since; start without --resume")]
                )  # fmt: skip
            if committed is not None and committed < size:
                file.truncate(committed)  # a torn row or an uncommitted batch
            rows = list(self._rows())
            done = [id_ for id_, _ in rows]
            self.resumed_revisions = {revision for _, revision in rows if revision}
            self._header = self._header and self.path.stat().st_size == 0
        else:
            file.truncate(0)
            self._header = self.format is InputFormat.CSV
        file.seek(0, os.SEEK_END)
        self._commit()  # the checkpoint exists from here until ``finish``
        return done

    def write(self, rows: Sequence[Routed]) -> None:
        """Append ``rows`` and commit them (they survive a kill from here on)."""
        if not rows:
            return
        assert self._file is not None, "open() first"
        text = _csv(rows, self._header) if self.format is InputFormat.CSV else _jsonl(rows)
        self._header = False
        self._file.write(text.encode("utf-8"))
        self._commit()

    def finish(self) -> None:
        """Close the output and remove the checkpoint: the output is complete (a CSV
        output of no tickets still has its header)."""
        if self._file is not None and self._header:
            self._file.write(_csv([], header=True).encode("utf-8"))
            self._header = False
            self._commit()
        self.checkpoint.unlink(missing_ok=True)  # still locked: no other run's checkpoint
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _commit(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        size = self._file.tell()
        temporary = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as f:
            json.dump({"output": self.path.name, "format": str(self.format), "bytes": size}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.checkpoint)

    def _committed(self) -> int | None:
        """The committed size the checkpoint records; None without one (a finished run)."""
        try:
            data = json.loads(self.checkpoint.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DataError(
                [Problem(str(self.checkpoint), None, None, "", f"unreadable checkpoint: {exc}")]
            ) from exc
        if data.get("format") != str(self.format) or not isinstance(data.get("bytes"), int):
            raise DataError(
                [Problem(str(self.checkpoint), None, None, "",
                         f"not a checkpoint of a {self.format} output: {data}")]
            )  # fmt: skip
        size: int = data["bytes"]
        return size

    def _rows(self) -> Iterator[tuple[str, str]]:
        """The id and revision of each row the output holds (an unparsable row is an
        error)."""
        name = str(self.path)
        at = CSV_COLUMNS.index("revision")
        with self.path.open(encoding="utf-8", newline="") as f:
            if self.format is InputFormat.CSV:
                reader = csv.reader(f)
                for cells in reader:
                    if cells and cells != list(CSV_COLUMNS):
                        yield cells[0], cells[at] if len(cells) > at else ""
                return
            for number, line in enumerate(f, start=1):
                try:
                    row = json.loads(line)
                    yield str(row["id"]), str(row.get("revision") or "")
                except (ValueError, KeyError, TypeError) as exc:
                    raise DataError(
                        [Problem(name, number, None, "", f"not an output row ({exc}); "
                                 "resume only continues an output this command wrote")]
                    ) from exc  # fmt: skip


@contextlib.contextmanager
def output_file(path: Path, fmt: InputFormat) -> Iterator[OutputFile]:
    out = OutputFile(path, fmt)
    try:
        yield out
    finally:
        out.close()
