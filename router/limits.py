"""What one request may hold, by default: the server's limits, which triage and the
regression gate hold their inputs to as well, so a file reads the same in process and
through a server. Plain constants, no imports: the CLI reads them without loading gRPC."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TEXT_CHARS", "MAX_TOP_K"]

#: Characters of one text (a ticket: subject and body together); ``serve --max-text-chars``.
MAX_TEXT_CHARS: Final = 20_000
#: Alternatives one answer may list.
MAX_TOP_K: Final = 20
