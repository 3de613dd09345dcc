"""The progress bar on stderr: tickets done, tickets/s and the time left.

Drawn by tqdm when it is installed (the ``eval`` extra; ``make`` installs it) and stderr
is a terminal; without tqdm there is no bar, only the summary line at the end (triage
itself never needs it). The total is counted before the run when the input is a file
(a fast pass over it); on stdin there is no total, hence no time left.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from typing import IO, Any

from router.triage.reading import CSV_FIELD_LIMIT, InputFormat

__all__ = ["Progress", "count_tickets", "progress_bar"]


class Progress:
    """A tqdm bar counting tickets; resumed ones move it without counting in the rate."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def advance(self, n: int, *, resumed: bool = False) -> None:
        if resumed:
            # already in the output: moved past, kept out of the rate and the time left
            self._bar.n += n
            self._bar.last_print_n += n
            self._bar.refresh()
        else:
            self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def progress_bar(total: int | None, stream: IO[str]) -> Progress | None:
    """A bar on ``stream``, or None when tqdm is missing."""
    if importlib.util.find_spec("tqdm") is None:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="tickets", desc="triage", file=stream, smoothing=0.1)
    return Progress(bar)


def count_tickets(
    path: Path, fmt: InputFormat, encoding: str, max_cell_chars: int = CSV_FIELD_LIMIT
) -> int | None:
    """About how many tickets ``path`` holds (non-blank lines or CSV records, less the
    header), for the bar's total; None when it cannot be read that way (errors are
    reported by the run itself)."""
    try:
        csv.field_size_limit(max(CSV_FIELD_LIMIT, max_cell_chars))  # as the run reads it
        with path.open(encoding=encoding, errors="replace", newline="") as f:
            if fmt is InputFormat.CSV:
                return max(0, sum(1 for row in csv.reader(f) if row) - 1)
            return sum(1 for line in f if line.strip())
    except (OSError, csv.Error):
        return None
