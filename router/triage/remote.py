"""Tickets routed by a running server, over ClassifyStream (``triage --server ADDR``).

Each batch is one stream: every ticket goes out with its id, subject and
``multi_intent``; answers come back in any order (ids echoed) and are put back in the
batch's order. A ticket the server refuses (too long, say) comes back with ``error``
and gets a row saying so; the others are unaffected. A batch that fails with
``UNAVAILABLE`` or ``RESOURCE_EXHAUSTED`` (the server still starting, or overloaded),
whole or for any of its texts, is sent again after a back-off (0.2 s, doubling, six
tries), unless it is a message over gRPC's size limit; any other failure stops the run
(what was committed stays: ``--resume`` continues).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import grpc

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.errors import RouterError
from router.routing.intents import UNKNOWN
from router.triage.reading import Ticket
from router.triage.routers import ERROR_REASON, Evidence, Match, Routed

__all__ = ["ServerError", "ServerRouter", "routed_of"]

log = logging.getLogger(__name__)

_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
_ATTEMPTS = 6


def _retried(error: str) -> bool:
    """Whether a text's error is the server's state (starting, overloaded), not the text's."""
    return error.startswith(tuple(f"{code.name}:" for code in _RETRIED))


class ServerError(RouterError):
    """The server could not be reached or refused the work (exit 1)."""


def routed_of(id_: str, response: pb.ClassifyResponse) -> Routed:
    """A ClassifyResponse as a ticket's answer."""
    return Routed(
        id=id_,
        intent=response.intent,
        score=response.score,
        threshold=response.threshold,
        reason=response.reason,
        matches=tuple(
            Match(
                m.intent,
                m.score,
                m.threshold,
                Evidence(m.evidence.text, m.evidence.start, m.evidence.end, m.evidence.field)
                if m.HasField("evidence")
                else None,
            )
            for m in response.matches
        ),
        revision=response.revision,
    )


class ServerRouter:
    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout: float = 600.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = (
            grpc.secure_channel(address, credentials)
            if credentials is not None
            else grpc.insecure_channel(address)
        )
        self._stub = pb_grpc.IntentRouterStub(self._channel)

    def revision(self) -> str | None:
        """None: the server may reload between two runs, or during one (each row names
        the revision that answered it)."""
        return None

    def route(self, tickets: Sequence[Ticket]) -> list[Routed]:
        requests = [
            pb.ClassifyStreamRequest(id=t.id, text=t.text, subject=t.subject, multi_intent=True)
            for t in tickets
        ]
        delay = 0.2
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                answers = {
                    r.id: r
                    for r in self._stub.ClassifyStream(
                        iter(requests), timeout=self.timeout, metadata=self._metadata
                    )
                }
                busy = next((a.error for a in answers.values() if _retried(a.error)), None)
                if busy is None:
                    break
                if attempt == _ATTEMPTS:
                    raise ServerError(f"{self.address}: {busy}")
                log.warning("%s: %s; retrying in %.1f s", self.address, busy, delay)
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if "larger than max" in details:  # a message over gRPC's size: never retried
                    raise ServerError(
                        f"{self.address}: {code.name}: {details}; a ticket is larger than the "
                        "server takes in one message: lower --max-text-chars"
                    ) from exc
                if code not in _RETRIED or attempt == _ATTEMPTS:
                    raise ServerError(f"{self.address}: {code.name}: {details}") from exc
                log.warning("%s: %s; retrying in %.1f s", self.address, code.name, delay)
            time.sleep(delay)
            delay *= 2
        return [self._answer(t, answers.get(t.id)) for t in tickets]

    def _answer(self, ticket: Ticket, answer: pb.ClassifyStreamResponse | None) -> Routed:
        if answer is None:
            raise ServerError(f"{self.address}: no answer for ticket {ticket.id!r}")
        if answer.error:
            log.warning("line %d: ticket %r refused by the server: %s",
                        ticket.line, ticket.id, answer.error)  # fmt: skip
            return Routed(ticket.id, UNKNOWN, 0.0, 0.0, ERROR_REASON, error=answer.error)
        return routed_of(ticket.id, answer.result)

    def close(self) -> None:
        self._channel.close()
