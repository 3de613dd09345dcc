"""The IntentRouter gRPC service: proto <-> domain, validation, one error->status table.

Handlers validate the request, hand the work to the engine on a worker thread (the
model is CPU-bound and releases the GIL) and translate the result. Errors become gRPC
status codes in ``_status_of`` and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from router import __version__
from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.errors import (
    CallerGoneError,
    InputError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    RouterError,
)
from router.limits import MAX_TEXT_CHARS, MAX_TOP_K
from router.routing.blank import is_blank
from router.routing.engine import Engine, Snapshot, Timings
from router.routing.index import Prediction
from router.routing.negation import Analysis, NegatedSpan
from router.routing.tickets import IntentMatch
from router.serving.batching import Batcher
from router.serving.metrics import Metrics
from router.serving.reload import Reloader, ReloadStatus, Revision
from router.serving.security import TokenFile, caller_token

__all__ = ["IntentRouterService", "Limits", "add_to_server"]

Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int = MAX_TEXT_CHARS
    max_batch_size: int = 512
    max_top_k: int = MAX_TOP_K
    default_top_k: int = 3
    #: Characters in all the texts of one call: bounds one request's memory and model
    #: time (README "Operations" has the peak RSS measured at this limit).
    max_request_chars: int = 200_000
    #: ClassifyStream: texts of one stream read and not yet answered and written; a
    #: caller that stops reading results is not read from either (flow control).
    max_stream_in_flight: int = 64
    #: ClassifyStream calls open at once; one more is refused RESOURCE_EXHAUSTED (with
    #: the per-stream bound, the server holds at most both multiplied in stream texts).
    max_streams: int = 32
    #: ClassifyStream: seconds a stream may wait for its caller's next message while
    #: nothing of it is in flight; then it ends DEADLINE_EXCEEDED and frees its place
    #: (a caller holding ``max_streams`` idle streams would lock everyone else out).
    #: 0: no limit.
    stream_idle_seconds: float = 300.0
    #: ClassifyStream: characters of a text's id; a longer one is that text's error,
    #: echoed cut to this length (an id is held, and echoed, while its text is).
    max_id_chars: int = 256

    @property
    def max_message_bytes(self) -> int:
        """The largest request these limits accept, in bytes: gRPC's receive limit.

        UTF-8 takes at most 4 bytes a character; each text adds a tag and a length
        (at most 6 bytes), the rest of the message a few. A larger message is refused
        by gRPC itself (RESOURCE_EXHAUSTED) before it is read into memory.
        """
        return 4 * self.max_request_chars + 6 * self.max_batch_size + 64


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The one table from domain errors to gRPC status codes."""
    if isinstance(exc, InputError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, NotReadyError):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, NotFoundError):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, OverloadedError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, CallerGoneError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    log.exception("internal error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error"


class IntentRouterService(pb_grpc.IntentRouterServicer):
    def __init__(
        self,
        engine: Engine,
        limits: Limits,
        batcher: Batcher,
        reloader: Reloader | None = None,
        metrics: Metrics | None = None,
        *,
        tokens: TokenFile | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.batcher = batcher
        self.reloader = reloader
        self.metrics = metrics
        if metrics is not None:
            metrics.watch(batcher)  # its queues and skipped work
        #: With tokens configured, callers without a valid one see no file system paths.
        self.tokens = tokens
        #: ClassifyStream texts read and not yet written back, all streams (each stream
        #: holds at most ``limits.max_stream_in_flight``).
        self.stream_in_flight = 0
        #: Of those, the answered ones waiting to be written (the caller is not reading).
        self.stream_unwritten = 0
        #: ClassifyStream calls open now (at most ``limits.max_streams``).
        self.streams_open = 0
        if metrics is not None:
            metrics.stream_texts.set_function(lambda: float(self.stream_in_flight))

    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: Context
    ) -> pb.ClassifyResponse:
        try:
            top_k = self._top_k(request.top_k)
            self._check_ticket(request.text, request.subject)
            self._check_request_chars(len(request.text) + len(request.subject), "text")
            self._check_ready()
            result = await self.batcher.classify(
                [request.text],
                top_k,
                context.time_remaining(),
                subjects=_ticket_subjects(request.multi_intent, [request.subject]),
            )
        except RouterError as exc:
            await _abort(context, exc)
        prediction = result.predictions[0]
        if self.metrics is not None:
            self.metrics.observe_answer(prediction.intent, prediction.score)
        return _response(
            prediction, result.analyses[0], result.revision, result.timings, request.multi_intent
        )

    async def ClassifyBatch(  # noqa: N802
        self, request: pb.ClassifyBatchRequest, context: Context
    ) -> pb.ClassifyBatchResponse:
        try:
            top_k = self._top_k(request.top_k)
            texts = list(request.texts)
            if not texts:
                raise InputError("texts", "must hold at least one text")
            if len(texts) > self.limits.max_batch_size:
                raise InputError(
                    "texts", f"{len(texts)} texts exceed the limit of {self.limits.max_batch_size}"
                )
            subjects = list(request.subjects)
            if subjects and len(subjects) != len(texts):
                raise InputError(
                    "subjects",
                    f"{len(subjects)} subjects for {len(texts)} texts: give none or one per text",
                )
            chars = sum(len(t) for t in texts) + sum(len(s) for s in subjects)
            self._check_request_chars(chars, "texts")
            for i, text in enumerate(texts):
                self._check_ticket(text, subjects[i] if subjects else "", f"texts[{i}]")
            self._check_ready()
            answers, timings = await self.batcher.classify_many(
                texts,
                top_k,
                context.time_remaining(),
                subjects=_ticket_subjects(request.multi_intent, subjects or [""] * len(texts)),
            )
        except RouterError as exc:
            await _abort(context, exc)
        if self.metrics is not None:
            for answer in answers:
                self.metrics.observe_answer(answer.prediction.intent, answer.prediction.score)
        empty = Timings()
        return pb.ClassifyBatchResponse(
            results=[
                _response(a.prediction, a.analysis, a.revision, empty, request.multi_intent)
                for a in answers
            ],
            revision=answers[-1].revision,
            timings=_timings(timings),
        )

    async def ListIntents(  # noqa: N802
        self, request: pb.ListIntentsRequest, context: Context
    ) -> pb.ListIntentsResponse:
        try:
            snapshot = self._snapshot()
        except RouterError as exc:
            await _abort(context, exc)
        index = snapshot.index
        return pb.ListIntentsResponse(
            intents=[
                pb.IntentSummary(
                    name=intent.name,
                    description=intent.description,
                    example_count=len(intent.examples),
                    threshold=float(index.thresholds[i]),
                )
                for i, intent in enumerate(snapshot.intents.intents)
            ],
            revision=snapshot.revision,
        )

    def _redacting(self, context: Context) -> bool:
        """Whether this caller must not see file system paths: any caller without a valid
        token, so every caller when no tokens are configured (Info is never an admin call)."""
        if self.tokens is None:
            return True
        return self.tokens.check(caller_token(context.invocation_metadata())) is None

    async def Info(  # noqa: N802
        self, request: pb.InfoRequest, context: Context
    ) -> pb.InfoResponse:
        try:
            snapshot = self._snapshot()
        except RouterError as exc:
            await _abort(context, exc)
        encoder = self.engine.encoder
        return pb.InfoResponse(
            model_id=encoder.model_id,
            dimension=encoder.dimension,
            intent_count=len(snapshot.intents.intents),
            example_count=snapshot.intents.example_count,
            revision=snapshot.revision,
            default_threshold=snapshot.index.default_threshold,
            scoring=snapshot.index.scoring,
            version=__version__,
            max_text_chars=self.limits.max_text_chars,
            max_batch_size=self.limits.max_batch_size,
            max_top_k=self.limits.max_top_k,
            model=encoder.model_name,
            threshold_source=snapshot.threshold_source,
            **(_reloader_fields(self.reloader, self._redacting(context)) if self.reloader else {}),
        )

    async def Reload(  # noqa: N802
        self, request: pb.ReloadRequest, context: Context
    ) -> pb.ReloadResponse:
        reloader = await self._reloader(context)
        return _reload(await reloader.reload("rpc"))

    async def _reloader(self, context: Context) -> Reloader:
        """The reloader, or FAILED_PRECONDITION for a server without an intents path."""
        if self.reloader is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "this server has no intents path to reload"
            )
            raise AssertionError("unreachable")  # pragma: no cover
        return self.reloader

    async def ClassifyStream(  # noqa: N802
        self, request_iterator: AsyncIterator[Any], context: Context
    ) -> AsyncIterator[pb.ClassifyStreamResponse]:
        """Texts in as they come, a result per text as soon as it is ready (ids echoed).

        A reader task takes requests while fewer than ``max_stream_in_flight`` texts of
        this stream are read and not yet answered *and written*: a caller that stops
        reading results stops being read from (gRPC's flow control then holds its
        writes), so one stream holds at most that many texts in the server. Each text
        goes through the batcher's bulk queue, as a ClassifyBatch text does (it cannot
        starve Classify); a text that is refused gets ``error`` and the stream goes on.
        Cancellation and the deadline end the stream's queued work (skipped by the
        batcher).
        """
        if self.streams_open >= self.limits.max_streams:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self.streams_open} streams are open, the server's limit (--max-streams); "
                "retry later or send fewer streams at once",
            )
        self.streams_open += 1
        try:
            async for response in self._stream(request_iterator, context):
                yield response
        finally:
            self.streams_open -= 1

    async def _stream(
        self, request_iterator: AsyncIterator[Any], context: Context
    ) -> AsyncIterator[pb.ClassifyStreamResponse]:
        slots = asyncio.Semaphore(self.limits.max_stream_in_flight)
        answers: asyncio.Queue[pb.ClassifyStreamResponse | None] = asyncio.Queue()
        pending: set[asyncio.Task[None]] = set()
        held = [0, 0]  # this stream's texts read and not yet written; of those, answered
        active = [asyncio.get_running_loop().time()]  # the last message read or answer written

        async def answer(request: pb.ClassifyStreamRequest | _Malformed) -> None:
            try:
                response = await self._stream_answer(request, context)
            except Exception as exc:  # a bug answers this text INTERNAL; it never loses it
                code, message = _status_of(exc)
                text_id = request.id if isinstance(request, pb.ClassifyStreamRequest) else ""
                response = pb.ClassifyStreamResponse(id=text_id, error=f"{code.name}: {message}")
            answers.put_nowait(response)
            held[1] += 1
            self.stream_unwritten += 1

        async def requests() -> AsyncIterator[Any]:
            """The caller's messages; an idle caller's stream ends (``Limits``)."""
            iterator = aiter(request_iterator)
            loop = asyncio.get_running_loop()
            while True:
                waiting = asyncio.ensure_future(anext(iterator))
                try:
                    request = await _next_or_idle(waiting)
                except StopAsyncIteration:
                    return
                finally:
                    waiting.cancel()  # done already, or the stream is ending
                active[0] = loop.time()
                yield request

        async def _next_or_idle(waiting: asyncio.Future[Any]) -> Any:
            """``waiting``'s message; the stream ends DEADLINE_EXCEEDED once nothing has
            been read or written for ``stream_idle_seconds`` with nothing in flight."""
            idle = self.limits.stream_idle_seconds
            loop = asyncio.get_running_loop()
            while idle > 0:
                quiet = loop.time() - active[0]
                wait = idle - quiet if held[0] == 0 else idle
                if wait <= 0:
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"no message for {idle:g} s with nothing in flight: an idle "
                        "stream is closed (--stream-idle-seconds); open another when "
                        "there is more",
                    )
                done, _ = await asyncio.wait({waiting}, timeout=wait)
                if done:
                    break
            return await waiting

        async def read() -> None:
            try:
                async for request in requests():
                    await slots.acquire()
                    held[0] += 1
                    self.stream_in_flight += 1
                    task = asyncio.create_task(answer(request))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                if pending:
                    await asyncio.wait(set(pending))
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (response := await answers.get()) is not None:
                yield response  # returns once gRPC has taken it
                active[0] = asyncio.get_running_loop().time()
                held[0] -= 1
                held[1] -= 1
                self.stream_in_flight -= 1
                self.stream_unwritten -= 1
                slots.release()
            await reader  # a failure to read the requests ends the stream with its status
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()
            self.stream_in_flight -= held[0]  # read, never written: the call ended
            self.stream_unwritten -= held[1]

    async def ListRevisions(  # noqa: N802
        self, request: pb.ListRevisionsRequest, context: Context
    ) -> pb.ListRevisionsResponse:
        """The revisions kept in memory, newest first; without an intents path, the one
        serving."""
        try:
            snapshot = self._snapshot()
        except RouterError as exc:
            await _abort(context, exc)
        if self.reloader is None:
            kept = [Revision(snapshot, snapshot.built_at, "start")]
        else:
            kept = list(self.reloader.revisions)
        return pb.ListRevisionsResponse(
            revisions=[_revision(r, r.snapshot is snapshot) for r in reversed(kept)]
        )

    async def Rollback(  # noqa: N802
        self, request: pb.RollbackRequest, context: Context
    ) -> pb.RollbackResponse:
        """Serve a kept revision again (empty: the one before the serving one); an admin
        call. NOT_FOUND names the kept revisions."""
        reloader = await self._reloader(context)
        try:
            self._check_ready()
            status = await reloader.rollback(request.revision.strip())
        except RouterError as exc:
            await _abort(context, exc)
        return pb.RollbackResponse(ok=status.ok, revision=status.revision, errors=status.errors)

    async def _stream_answer(
        self, request: pb.ClassifyStreamRequest | _Malformed, context: Context
    ) -> pb.ClassifyStreamResponse:
        """One streamed text's answer, or its error (the stream goes on either way)."""
        if isinstance(request, _Malformed):
            return pb.ClassifyStreamResponse(
                error=f"{grpc.StatusCode.INVALID_ARGUMENT.name}: malformed request: "
                f"{request.reason}"
            )
        if len(request.id) > self.limits.max_id_chars:
            return pb.ClassifyStreamResponse(
                id=request.id[: self.limits.max_id_chars],
                error=f"{grpc.StatusCode.INVALID_ARGUMENT.name}: id: {len(request.id)} "
                f"characters exceed the limit of {self.limits.max_id_chars}",
            )
        try:
            top_k = self._top_k(request.top_k)
            self._check_ticket(request.text, request.subject)
            self._check_ready()
            answers, _ = await self.batcher.classify_many(
                [request.text],
                top_k,
                context.time_remaining(),
                subjects=_ticket_subjects(request.multi_intent, [request.subject]),
            )
        except RouterError as exc:
            code, message = _status_of(exc)
            return pb.ClassifyStreamResponse(id=request.id, error=f"{code.name}: {message}")
        answer = answers[0]
        if self.metrics is not None:
            self.metrics.observe_answer(answer.prediction.intent, answer.prediction.score)
        return pb.ClassifyStreamResponse(
            id=request.id,
            result=_response(
                answer.prediction, answer.analysis, answer.revision, Timings(), request.multi_intent
            ),
        )

    def _check_ticket(self, text: str, subject: str, field: str = "text") -> None:
        """A text, or a ticket: a body and a subject, one of them not blank, within
        ``max_text_chars`` together (the same rule for Classify, ClassifyBatch and
        ClassifyStream)."""
        if subject:
            if is_blank(text) and is_blank(subject):
                raise InputError(field, "must not be empty or blank (nor the subject)")
            if len(text) + len(subject) > self.limits.max_text_chars:
                raise InputError(
                    field,
                    f"{len(text) + len(subject)} characters with the subject exceed the "
                    f"limit of {self.limits.max_text_chars}",
                )
            return
        self._check_text(text, field)

    def _snapshot(self) -> Snapshot:
        self._check_ready()
        return self.engine.snapshot

    def _check_ready(self) -> None:
        if not self.engine.ready:
            raise NotReadyError("the intent index is still being built")

    def _top_k(self, top_k: int) -> int:
        if top_k == 0:
            return self.limits.default_top_k
        if not 1 <= top_k <= self.limits.max_top_k:
            raise InputError("top_k", f"must be in [0, {self.limits.max_top_k}], got {top_k}")
        return top_k

    def _check_request_chars(self, chars: int, field: str) -> None:
        if chars > self.limits.max_request_chars:
            raise InputError(
                field,
                f"{chars} characters in all exceed the limit of "
                f"{self.limits.max_request_chars} per request",
            )

    def _check_text(self, text: str, field: str) -> None:
        if is_blank(text):
            raise InputError(field, "must not be empty or blank")
        if len(text) > self.limits.max_text_chars:
            raise InputError(
                field,
                f"{len(text)} characters exceed the limit of {self.limits.max_text_chars}",
            )


async def _abort(context: Context, exc: BaseException) -> NoReturn:
    code, message = _status_of(exc)
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def _reload(status: ReloadStatus, *, redact: Path | None = None) -> pb.ReloadResponse:
    """``redact``: the intents directory, left out of the errors' file names."""
    errors = [_without_directories(e, redact) if redact is not None else e for e in status.errors]
    return pb.ReloadResponse(
        ok=status.ok,
        revision=status.revision,
        changed=status.changed,
        errors=errors,
        trigger=status.trigger,
        finished_at_unix=status.at,
        duration_ms=status.seconds * 1e3,
        gate_results=status.gate_results,
    )


def _revision(kept: Revision, serving: bool) -> pb.RevisionSummary:
    intents = kept.snapshot.intents
    return pb.RevisionSummary(
        revision=kept.revision,
        loaded_at_unix=kept.loaded_at,
        intent_count=len(intents.intents),
        example_count=intents.example_count,
        serving=serving,
        trigger=kept.trigger,
    )


def _reloader_fields(reloader: Reloader, redact: bool) -> dict[str, Any]:
    """Info's view of the reloader: the last reload, watching or why not, a reload running,
    lint findings; with ``redact``, the intents' directory left out of every text."""
    hidden = reloader.directory if redact else None

    def shown(text: str) -> str:
        return text if hidden is None else _without_directories(text, hidden)

    return {
        "last_reload": _reload(reloader.status, redact=hidden),
        "watching": reloader.watching,
        "watch_problem": shown(reloader.watch_problem),
        "reload_in_progress": reloader.in_progress,
        "lint_findings": [shown(f) for f in reloader.lint_findings],
    }


def _without_directories(text: str, directory: Path) -> str:
    """``/srv/intents/shop.yaml:4:15: ...`` -> ``shop.yaml:4:15: ...`` for the intents'
    own directory, as given and absolute (the only paths reload errors name)."""
    for prefix in sorted({str(directory), str(directory.resolve())}, key=len, reverse=True):
        text = text.replace(prefix + os.sep, "").replace(prefix, directory.name)
    return text


def _timings(t: Timings) -> pb.Timings:
    return pb.Timings(
        preprocess_ms=t.preprocess_ms,
        encode_ms=t.encode_ms,
        score_ms=t.score_ms,
        total_ms=t.total_ms,
        queue_ms=t.queue_ms,
    )


def _negation(text: str, span: NegatedSpan) -> pb.Negation:
    topic = span.topic or (0, 0)
    return pb.Negation(
        cue=text[span.cue[0] : span.cue[1]],
        scope=text[span.scope[0] : span.scope[1]],
        cue_start=span.cue[0],
        cue_end=span.cue[1],
        scope_start=span.scope[0],
        scope_end=span.scope[1],
        refusal=span.refusal,
        topic=text[topic[0] : topic[1]],
        topic_start=topic[0],
        topic_end=topic[1],
    )


def _ticket_subjects(multi_intent: bool, subjects: list[str]) -> list[str] | None:
    """The subjects to route texts as tickets with, or None to route each text whole as
    before: tickets when multi-intent answers are asked for or a subject is given."""
    if multi_intent or not all(is_blank(s) for s in subjects):
        return subjects
    return None


def _match(match: IntentMatch) -> pb.IntentMatch:
    evidence = match.evidence
    return pb.IntentMatch(
        intent=match.intent,
        score=match.score,
        threshold=match.threshold,
        evidence=pb.Evidence(
            text=evidence.text, start=evidence.start, end=evidence.end, field=evidence.field
        ),
    )


def _response(
    prediction: Prediction,
    analysis: Analysis,
    revision: str,
    timings: Timings,
    multi_intent: bool = False,
) -> pb.ClassifyResponse:
    return pb.ClassifyResponse(
        matches=[_match(m) for m in prediction.matches] if multi_intent else [],
        reason=str(prediction.reason),
        negations=[_negation(analysis.text, s) for s in analysis.spans],
        refused_intents=list(prediction.refused),
        intent=prediction.intent,
        score=prediction.score,
        threshold=prediction.threshold,
        alternatives=[
            pb.Alternative(intent=a.intent, score=a.score, example=a.example)
            for a in prediction.alternatives
        ],
        revision=revision,
        timings=_timings(timings),
    )


# --------------------------------------------------------------------- registration


@dataclass(frozen=True, slots=True)
class _Malformed:
    """A request whose bytes did not parse (bad protobuf, invalid UTF-8 in a string)."""

    reason: str


def _lenient(parse: Callable[[bytes], Message]) -> Callable[[bytes], Message | _Malformed]:
    def deserialize(data: bytes) -> Message | _Malformed:
        try:
            return parse(data)
        except DecodeError as exc:
            return _Malformed(str(exc) or "cannot parse the message")

    return deserialize


def _guarded(handler: Callable[[Any, Context], Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def handle(request: Any, context: Context) -> Any:
        if isinstance(request, _Malformed):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {request.reason}"
            )
        return await handler(request, context)

    return handle


def add_to_server(service: IntentRouterService, server: grpc.aio.Server) -> None:
    """Register the service as the generated code does, except that a request that does
    not parse is answered INVALID_ARGUMENT by the handler (gRPC's own deserialisation
    answered UNKNOWN and logged a traceback for every such request); in ClassifyStream,
    by an ``error`` for that message, the stream going on."""
    descriptor = pb.DESCRIPTOR.services_by_name["IntentRouter"]
    handlers = {}
    for method in descriptor.methods:
        request = GetMessageClass(method.input_type)
        response = GetMessageClass(method.output_type)
        if method.client_streaming and method.server_streaming:
            # each malformed message of the stream is answered in it (ClassifyStream)
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                getattr(service, method.name),
                request_deserializer=_lenient(request.FromString),
                response_serializer=response.SerializeToString,
            )
            continue
        if method.client_streaming or method.server_streaming:
            raise TypeError(f"{method.name}: only unary and bidirectional methods are served")
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _guarded(getattr(service, method.name)),
            request_deserializer=_lenient(request.FromString),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(descriptor.full_name, handlers),)
    )
    server.add_registered_method_handlers(descriptor.full_name, handlers)  # type: ignore[attr-defined]
