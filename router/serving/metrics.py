"""Prometheus metrics: RED per gRPC method, plus what ops need to see of routing.

Exposed on ``serve --metrics-port`` (plain HTTP, ``/metrics``). The registry is per
server, so tests and embedded servers do not collide.

* ``intent_router_requests_total{method, code}`` and
  ``intent_router_request_seconds{method}``: rate, errors, duration;
* ``intent_router_predictions_total{intent}`` (``unknown`` included) and
  ``intent_router_score``: what is being answered and how confidently;
* ``intent_router_reloads_total{trigger, result}`` (``error``: invalid intents or a
  build that raised; ``gate``: refused by the regression gate; trigger ``rollback`` for
  Rollback), ``intent_router_reload_seconds``, ``intent_router_revision_info``;
* ``intent_router_reload_in_progress`` (1 while a reload builds) and
  ``intent_router_watching`` (0 while the watched intents directory is gone or replaced,
  and with ``--no-watch``): see ``serving/reload.py``;
* ``intent_router_batch_texts`` and ``intent_router_queue_depth``: the batcher (texts
  per model call; requests and ClassifyBatch chunks waiting, both queues);
* ``intent_router_queue_texts{queue}``: texts waiting, ``interactive`` (Classify) and
  ``bulk`` (ClassifyBatch);
* ``intent_router_skipped_total{reason}`` and ``intent_router_skipped_texts_total{reason}``:
  queued requests (a ClassifyBatch chunk is one) and their texts dropped before the model
  ran, because the ``deadline`` passed or the caller was gone (``cancelled``);
* ``intent_router_abandoned_calls_total``: model calls stopped part-way (between two
  slices of a long call) because every caller had gone;
* ``intent_router_stream_texts``: ClassifyStream texts read and not yet written back
  (each stream reads at most ``--stream-in-flight`` ahead of the results it has taken);
* ``intent_router_negation_failures_total``: texts whose negation analysis failed
  (routed without it; see ``Engine._analyse_one``);
* ``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
  ``process_virtual_memory_bytes``, ``process_open_fds``, ``process_max_fds``,
  ``process_start_time_seconds``: the server process (prometheus_client's
  ``ProcessCollector``; Linux only).

A ClassifyStream call counts once, when it ends, with the status it ended with, and its
time is how long it was open.

``code`` is the status the caller got: a call cancelled by the client is ``CANCELLED``,
one whose deadline passed while it was handled, or that was cancelled within 0.1 s of it
(the caller's own timer fires first), ``DEADLINE_EXCEEDED`` (both end the handler with
``asyncio.CancelledError``). A request larger than gRPC's receive limit is
refused by gRPC before any handler runs, and is not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.serving.batching import SKIP_REASONS, Batcher
from router.serving.reload import Reloader, ReloadStatus

__all__ = ["Metrics"]

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: Reloads: a cached edit takes tens of ms, a cold CLINC150-sized build a minute.
_RELOAD = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "intent_router_requests", "gRPC requests by method and status code",
            ["method", "code"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "intent_router_request_seconds", "gRPC handling time", ["method"],
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "intent_router_predictions", "answers by intent (unknown included)", ["intent"],
            registry=r,
        )  # fmt: skip
        self.score = Histogram(
            "intent_router_score", "score of the best candidate",
            buckets=[i / 10 for i in range(-2, 11)], registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "intent_router_reloads", "reload attempts", ["trigger", "result"], registry=r
        )
        self.revision = Gauge(
            "intent_router_revision_info", "the revision serving (value 1)", ["revision"],
            registry=r,
        )  # fmt: skip
        self.batch_texts = Histogram(
            "intent_router_batch_texts", "texts per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "intent_router_queue_depth", "requests waiting for the model", registry=r
        )
        self.negation_failures = Counter(
            "intent_router_negation_failures",
            "texts routed without negation handling because their analysis failed",
            registry=r,
        )
        self.reload_seconds = Histogram(
            "intent_router_reload_seconds", "duration of each reload, failed ones included",
            buckets=_RELOAD, registry=r,
        )  # fmt: skip
        self.reload_in_progress = Gauge(
            "intent_router_reload_in_progress", "1 while a reload validates or builds", registry=r
        )
        self.stream_texts = Gauge(
            "intent_router_stream_texts",
            "ClassifyStream texts read and not yet written back, all streams (each stream "
            "holds at most --stream-in-flight)",
            registry=r,
        )
        self.watching = Gauge(
            "intent_router_watching",
            "1 while the intents directory is watched; 0 with --no-watch, or after the "
            "directory was removed or replaced, until it is watched again",
            registry=r,
        )

        ProcessCollector(registry=r)
        self._batcher = _BatcherCollector()
        r.register(self._batcher)

    def watch(self, batcher: Batcher) -> None:
        """Report ``batcher``'s queues and skipped work (read at each scrape)."""
        self._batcher.batcher = batcher

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe_answer(self, intent: str, score: float) -> None:
        self.predictions.labels(intent).inc()
        self.score.observe(score)

    def set_revision(self, revision: str) -> None:
        self.revision.clear()
        self.revision.labels(revision).set(1)

    def follow_reloads(self, reloader: Reloader) -> None:
        """Report whether ``reloader`` watches and is reloading (read at each scrape)."""
        self.watching.set_function(lambda: float(reloader.watching))
        self.reload_in_progress.set_function(lambda: float(reloader.in_progress))

    def observe_reload(self, status: ReloadStatus) -> None:
        """Count a finished reload (a build that raised is an ``error``), time it, and
        follow the revision it left serving."""
        result = "ok" if status.ok else "gate" if status.gated else "error"
        self.reloads.labels(status.trigger, result).inc()
        self.reload_seconds.observe(status.seconds)
        if status.ok:
            self.set_revision(status.revision)

    def interceptor(self) -> grpc.aio.ServerInterceptor:  # type: ignore[type-arg]
        return _RedInterceptor(self)


class _RedInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._wrapped: dict[str, Handler] = {}  # per method: built once, not per call

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        full = handler_call_details.method
        if full in self._wrapped:
            return self._wrapped[full]
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = full.rsplit("/", 1)[-1]
        metrics = self.metrics
        if handler.stream_stream is not None:
            streamed = handler.stream_stream

            async def timed_stream(
                requests: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                # a stream is one request: its code is how it ended, its time how long
                # it was open
                with _Call(metrics, method, context):
                    async for response in streamed(requests, context):  # type: ignore[attr-defined,arg-type]
                        yield response

            wrapped = grpc.stream_stream_rpc_method_handler(
                timed_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
            self._wrapped[full] = wrapped
            return wrapped
        if handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            with _Call(metrics, method, context):
                return await inner(request, context)  # type: ignore[arg-type]

        wrapped = grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[full] = wrapped
        return wrapped


class _Call:
    """Counts one call by the code it ended with, and times it."""

    def __init__(
        self, metrics: Metrics, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        self.metrics = metrics
        self.method = method
        self.context = context
        self.start = time.perf_counter()

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        code = "OK"
        if kind is not None and issubclass(kind, asyncio.CancelledError):
            # gRPC cancels the handler when the caller cancels or its deadline passes;
            # no status is set on the context either way
            remaining = self.context.time_remaining()
            expired = remaining is not None and remaining <= _DEADLINE_SLACK_S
            code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
        elif kind is not None:
            status = self.context.code()
            code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
        self.metrics.requests.labels(self.method, code).inc()
        self.metrics.latency.labels(self.method).observe(time.perf_counter() - self.start)


#: A call cancelled this close to its deadline ran out of time: the caller's own timer
#: fires first and its cancellation reaches the server before the server's copy of the
#: deadline (started when the headers arrived) has passed, later still on a busy machine.
_DEADLINE_SLACK_S = 0.1


class _BatcherCollector(Collector):
    """The batcher's queues and skip counts, read at each scrape (the consumer thread
    keeps them as plain counts; nothing is reported until ``Metrics.watch``)."""

    def __init__(self) -> None:
        self.batcher: Batcher | None = None

    def collect(self) -> Iterator[Metric]:
        batcher = self.batcher
        if batcher is None:
            return
        queued = GaugeMetricFamily(
            "intent_router_queue_texts",
            "texts waiting for the model: interactive (Classify, one text each) and bulk "
            "(ClassifyBatch)",
            labels=["queue"],
        )
        queued.add_metric(["interactive"], batcher.interactive_depth)
        queued.add_metric(["bulk"], batcher.bulk_depth)
        skipped = CounterMetricFamily(
            "intent_router_skipped",
            "queued requests (a ClassifyBatch chunk is one) dropped before the model ran",
            labels=["reason"],
        )
        texts = CounterMetricFamily(
            "intent_router_skipped_texts",
            "texts of the requests dropped before the model ran",
            labels=["reason"],
        )
        for reason in SKIP_REASONS:
            skipped.add_metric([reason], batcher.skipped_requests[reason])
            texts.add_metric([reason], batcher.skipped_texts[reason])
        abandoned = CounterMetricFamily(
            "intent_router_abandoned_calls",
            "model calls stopped part-way because every caller had gone",
        )
        abandoned.add_metric([], batcher.abandoned_calls)
        yield from (queued, skipped, texts, abandoned)
