"""The gRPC server: IntentRouter, health, reflection, start-up order, graceful stop.

Start-up: the port is bound and health answers NOT_SERVING at once (so Kubernetes
startup probes see a live process), the model and index are built off the event loop,
the regression gate beside the intents (if any) measures the index, then health turns
SERVING. A gate that refuses the first index stops the server (``GateError``, exit 2).
On stop, health goes NOT_SERVING first (on SIGTERM, calls are still answered for
``drain_seconds`` while balancers notice), then in-flight requests get ``grace`` seconds
to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from router.api.v1 import router_pb2 as pb
from router.errors import GateError, StartError
from router.routing.engine import Engine, Snapshot, TextEncoder
from router.routing.index import IndexSettings
from router.routing.intents import IntentSet, IntentsLimits
from router.routing.vectorcache import VectorCache
from router.serving.batching import Batcher, BatchSettings
from router.serving.metrics import Metrics
from router.serving.reload import KEEP_REVISIONS, Reloader
from router.serving.security import (
    CertificateFiles,
    TokenFile,
    TokenInterceptor,
    server_credentials,
)
from router.serving.service import IntentRouterService, Limits, add_to_server

__all__ = ["RouterServer", "ServerConfig", "run"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IntentRouter"].full_name


@dataclass(frozen=True)
class ServerConfig:
    intents: IntentSet
    #: The model directory the encoder is loaded from (off the event loop, at start).
    model_dir: Path | None = None
    #: An encoder ready to use instead (tests pass a fake); one of the two is required.
    encoder: TextEncoder | None = None
    host: str = "127.0.0.1"
    port: int = 50051
    threads: int | None = None
    batching: BatchSettings = field(default_factory=BatchSettings)
    limits: Limits = field(default_factory=Limits)
    settings: IndexSettings = field(default_factory=IndexSettings)
    #: How long in-flight calls get to finish on SIGTERM (keep it below Kubernetes'
    #: terminationGracePeriodSeconds: deploy/k8s gives 25 for 15 and a 5 s preStop).
    grace_seconds: float = 15.0
    #: On SIGTERM, how long to keep answering while health already says NOT_SERVING, so
    #: that balancers (Envoy's health checks, Kubernetes endpoints) move traffic away
    #: before new calls are refused; then the ``grace_seconds`` drain. 0: stop at once.
    drain_seconds: float = 0.0
    #: Where reloads read the intents from; None serves ``intents`` as they are.
    intents_path: Path | None = None
    #: What a reload accepts (file size, aliases, examples, intents; ``serve`` flags).
    intents_limits: IntentsLimits = field(default_factory=IntentsLimits)
    watch: bool = True
    #: Where exemplar vectors persist between runs; None keeps them in memory only.
    cache_dir: Path | None = None
    #: Serve Prometheus metrics over HTTP on this port; None: no metrics endpoint.
    metrics_port: int | None = None
    #: The metrics endpoint's own address (loopback unless said otherwise, whatever --host).
    metrics_host: str = "127.0.0.1"
    #: Serve over TLS (mutual TLS when ``client_ca`` is set); None: plaintext.
    tls: CertificateFiles | None = None
    #: Bearer tokens (security.TokenFile); None: no authentication.
    auth_tokens: Path | None = None
    #: With tokens: classification without a token too (admin RPCs always need one).
    classify_open: bool = False
    #: Keepalive pings to each client this often (dead peers are noticed).
    keepalive_seconds: float = 60.0
    #: A connection this old is closed (GOAWAY) so that its client reconnects, and so
    #: spreads over the replicas behind a plain Kubernetes Service; calls still running
    #: get ``max_connection_age_grace_seconds`` to finish.
    max_connection_age_seconds: float = 1800.0
    max_connection_age_grace_seconds: float = 30.0
    #: Revisions kept in memory for Rollback, the serving one included (with an
    #: ``intents_path``).
    keep_revisions: int = KEEP_REVISIONS


def _why_not(config: ServerConfig) -> str:
    """Why gRPC could not bind: an unknown host, or what the OS says of the address."""
    try:
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"{config.host!r} is not a host name or address ({exc.strerror})"
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(where)
        except OSError as exc:
            return exc.strerror or str(exc)
    return "gRPC could not bind it"


def connection_options(config: ServerConfig) -> list[tuple[str, int]]:
    """gRPC's keepalive and connection-age options, from ``config``'s seconds."""
    return [
        ("grpc.keepalive_time_ms", round(config.keepalive_seconds * 1000)),
        ("grpc.max_connection_age_ms", round(config.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", round(config.max_connection_age_grace_seconds * 1000)),
        # clients may ping every 10 s (the default, 5 min, sends GOAWAY "too_many_pings"
        # to a client whose keepalive is shorter)
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


class RouterServer:
    """Owns the grpc.aio server, the health servicer and the engine."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port = 0
        self.engine: Engine | None = None
        self.reloader: Reloader | None = None
        self.batcher: Batcher | None = None
        self.service: IntentRouterService | None = None
        self._lint: asyncio.Task[None] | None = None
        # Loads the model and builds the first index off the event loop; requests are
        # run by the batcher's own thread, one batch at a time, each using every core.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load")
        self._health = health_aio.HealthServicer()
        self.metrics = Metrics()
        self.tokens = TokenFile(config.auth_tokens) if config.auth_tokens is not None else None
        interceptors: list[grpc.aio.ServerInterceptor] = [self.metrics.interceptor()]  # type: ignore[type-arg]
        if self.tokens is not None:  # after the metrics: refused calls are counted too
            interceptors.append(TokenInterceptor(self.tokens, classify_open=config.classify_open))
        self._server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                # a second server on a busy port must fail, not share it (SO_REUSEPORT
                # would split the connections between two processes)
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", config.limits.max_message_bytes),
                *connection_options(config),
            ],
        )

    async def start(self) -> int:
        """Bind, load the model, answer NOT_SERVING, build the index, then SERVING.

        The ports are bound first, so that a busy port or a bad host fails at once
        (``StartError``), before the model is loaded.
        """
        loop = asyncio.get_running_loop()
        address = f"{self.config.host}:{self.config.port}"
        try:
            if self.config.tls is not None:
                credentials = server_credentials(self.config.tls)
                self.port = self._server.add_secure_port(address, credentials)
            else:
                self.port = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise StartError(f"cannot listen on {address}: {_why_not(self.config)}") from exc
        if self.config.metrics_port is not None:
            metrics_address = f"{self.config.metrics_host}:{self.config.metrics_port}"
            try:
                self.metrics.serve(self.config.metrics_port, self.config.metrics_host)
            except OSError as exc:
                raise StartError(f"cannot serve metrics on {metrics_address}: {exc}") from exc
        encoder = await loop.run_in_executor(self._executor, self._load_encoder)
        cache = VectorCache(encoder.fingerprint, encoder.width, self.config.cache_dir)
        self.engine = Engine(
            encoder,
            self.config.settings,
            cache,
            on_negation_failure=self.metrics.negation_failures.inc,
        )
        if self.config.intents_path is not None:
            self.reloader = Reloader(
                self.engine,
                self.config.intents_path,
                limits=self.config.intents_limits,
                on_status=self.metrics.observe_reload,
                keep=self.config.keep_revisions,
            )
            self.metrics.follow_reloads(self.reloader)
        self.batcher = Batcher(self.engine, self.config.batching, self.metrics.batch_texts.observe)
        self.batcher.start()
        batcher = self.batcher
        self.metrics.queue_depth.set_function(lambda: batcher.depth)
        self.service = IntentRouterService(
            self.engine,
            self.config.limits,
            self.batcher,
            self.reloader,
            self.metrics,
            tokens=self.tokens,
        )
        add_to_server(self.service, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.start()
        log.info(
            "listening on %s:%d (NOT_SERVING until the index is built)", self.config.host, self.port
        )
        snapshot = await loop.run_in_executor(
            self._executor, self.engine.build, self.config.intents
        )
        gate_results = await self._gate(snapshot)
        self.engine.swap(snapshot)
        await loop.run_in_executor(self._executor, self.engine.persist)
        self.metrics.set_revision(snapshot.revision)
        if self.reloader is not None:
            self.reloader.record_start(snapshot, gate_results)
            if self.config.watch:
                self.reloader.start_watching()
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving revision %s", self.engine.snapshot.revision)
        if self.reloader is not None:  # off the start-up path: findings are warnings
            self._lint = asyncio.create_task(self.reloader.lint(snapshot), name="intents-lint")
        return self.port

    async def _gate(self, snapshot: Snapshot) -> tuple[str, ...]:
        """The regression gate's lines for the first snapshot (none without a gate). A
        gate that refuses it, or cannot be read, stops the server: ``GateError`` (exit 2),
        as a bad intents file does; the port is closed first."""
        if self.reloader is None:
            return ()
        try:
            return await self.reloader.gate_start(snapshot)
        except GateError:
            await self.stop(grace=0)
            raise

    def _load_encoder(self) -> TextEncoder:
        if self.config.encoder is not None:
            return self.config.encoder
        if self.config.model_dir is None:
            raise ValueError("ServerConfig needs a model_dir or an encoder")
        from router.model.loading import load_encoder  # onnxruntime loads only here

        return load_encoder(self.config.model_dir, threads=self.config.threads)

    async def drain(self, seconds: float) -> None:
        """Health NOT_SERVING while calls are still answered, for ``seconds``."""
        if seconds <= 0:
            return
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        log.info("draining: NOT_SERVING, still answering for %.1f s", seconds)
        await asyncio.sleep(seconds)

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, refuse new calls, let in-flight ones finish (``grace`` s), then stop."""
        await self._health.enter_graceful_shutdown()
        if self._lint is not None:
            self._lint.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lint
        if self.reloader is not None:
            await self.reloader.close()
        # the batcher keeps answering until the server has stopped: in-flight requests
        # are queued there
        await self._server.stop(self.config.grace_seconds if grace is None else grace)
        if self.batcher is not None:
            await self.batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def wait(self) -> None:
        await self._server.wait_for_termination()


async def run(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (NOT_SERVING, then drain).

    Signal handlers are installed before start-up: a SIGHUP while the model loads is
    kept and acted on once serving (it had killed the process); SIGTERM during start-up
    stops the server as soon as it has started.
    """
    server = RouterServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[object]] = set()
    started = False
    pending: list[str] = []

    def on_sighup() -> None:
        if not started:
            log.info("SIGHUP during start-up: the intents are reloaded once serving")
            pending[:] = ["sighup"]
            return
        if server.reloader is None:
            log.warning("SIGHUP ignored: no intents path to reload from")
            return
        task: asyncio.Task[object] = asyncio.create_task(server.reloader.reload("sighup"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await server.start()
    started = True
    if pending:
        on_sighup()
    print(f"intent-router listening on {config.host}:{server.port}", flush=True)
    await stop.wait()
    await server.drain(config.drain_seconds)
    log.info("stopping (grace %.1f s)", config.grace_seconds)
    await server.stop()
