"""Prometheus metrics: RED per gRPC method, plus what ops need to see of routing.

Exposed on ``serve --metrics-port`` (plain HTTP, ``/metrics``). The registry is per
server, so tests and embedded servers do not collide.

* ``intent_router_requests_total{method, code}`` and
  ``intent_router_request_seconds{method}``: rate, errors, duration;
* ``intent_router_predictions_total{intent}`` (``unknown`` included) and
  ``intent_router_score``: what is being answered and how confidently;
* ``intent_router_reloads_total{trigger, result}``, ``intent_router_revision_info``;
* ``intent_router_batch_texts`` and ``intent_router_queue_depth``: the batcher;
* ``intent_router_negation_failures_total``: texts whose negation analysis failed
  (routed without it; see ``Engine._analyse_one``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


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

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe_answer(self, intent: str, score: float) -> None:
        self.predictions.labels(intent).inc()
        self.score.observe(score)

    def set_revision(self, revision: str) -> None:
        self.revision.clear()
        self.revision.labels(revision).set(1)

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
        if handler is None or handler.unary_unary is None:
            return handler
        method = full.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        metrics = self.metrics

        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)  # type: ignore[arg-type]
            except BaseException:
                status = context.code()
                code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                metrics.requests.labels(method, code).inc()
                metrics.latency.labels(method).observe(time.perf_counter() - start)

        wrapped = grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[full] = wrapped
        return wrapped
