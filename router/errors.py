"""One exception tree for the whole package.

    RouterError                 base; carries the CLI exit code
    +-- IntentsError            an intents file or directory is unusable (exit 2)
    |                           holds one or more Problem(file, line, column, field, message)
    +-- ModelError              the model directory is missing or unusable (exit 3)
    +-- InputError              a request is invalid (text empty/too long, top_k, batch size)
    +-- DataError               a labelled data file (eval/tune) is unusable (exit 2)
    |                           holds one or more Problem(file, line, column, field, message)
    +-- TuningError             no threshold meets the tuning objective on the data (exit 2)
    +-- MissingExtraError       a command needs an optional extra that is not installed (exit 2)
    +-- UsageError              options that do not go together (exit 2)
    +-- StartError              the server cannot start: a busy port, a bad host (exit 4)
    +-- GateError               the regression gate refused the intents, or its file or data
    |                           is unusable (exit 2); ``lines`` says what, file:line first
    +-- NotReadyError           a request came before the first index was built
    +-- NotFoundError           a request names what is not there (a revision not kept)
    +-- OverloadedError         the request queue is full; the caller should back off
    +-- CallerGoneError         the caller's deadline passed while its request was queued

Errors are values with context, never bare strings: callers map them to exit codes
(cli.py) or gRPC status codes (serving/service.py) in one place each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CallerGoneError",
    "DataError",
    "GateError",
    "InputError",
    "IntentsError",
    "MissingExtraError",
    "ModelError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "Problem",
    "RouterError",
    "StartError",
    "TuningError",
    "UsageError",
]


class RouterError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in an intents file, located as precisely as the parser allows."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class IntentsError(RouterError):
    """The intents could not be loaded; ``problems`` lists every finding."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ModelError(RouterError):
    """The model directory is missing, incomplete or does not fit."""

    exit_code = 3


class InputError(RouterError):
    """A request is invalid; ``field`` names the offending request field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class DataError(RouterError):
    """A labelled data file could not be used; ``problems`` lists the findings."""

    exit_code = 2

    def __init__(self, problems: list[Problem], *, limit: int = 20) -> None:
        self.problems = tuple(problems)
        lines = [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        super().__init__("\n".join(lines))


class TuningError(RouterError):
    """No threshold meets the tuning objective on the given data."""

    exit_code = 2


class MissingExtraError(RouterError):
    """A command needs an optional dependency (an extra) that is not installed."""

    exit_code = 2


class UsageError(RouterError):
    """Command-line options that do not go together."""

    exit_code = 2


class StartError(RouterError):
    """The server cannot start: its port is in use, its host is not an address here."""

    exit_code = 4


class GateError(RouterError):
    """The regression gate beside the intents refused them (a figure under its bound),
    or the gate file or its labelled data is unusable; ``lines`` lists every finding."""

    exit_code = 2

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = tuple(lines)
        super().__init__("\n".join(self.lines))


class NotReadyError(RouterError):
    """No index has been built yet."""


class NotFoundError(RouterError):
    """A request names something that is not there (Rollback to a revision not kept)."""


class OverloadedError(RouterError):
    """The request queue is full; the caller should back off and retry."""


class CallerGoneError(RouterError):
    """The caller's deadline passed while the request was queued."""
