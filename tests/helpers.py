"""Helpers shared by the tests: in-process servers, waiting on a condition, the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from fakes import serving_fake
from grpc_health.v1 import health_pb2, health_pb2_grpc

import router.serving.server
from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.routing.engine import Engine, Snapshot
from router.routing.intents import load_intents
from router.serving.reload import Reloader
from router.serving.server import RouterServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "router.cli", "--log-level", "warning"]


@dataclass
class Running:
    server: RouterServer
    channel: grpc.aio.Channel
    stub: pb_grpc.IntentRouterStub


@contextlib.asynccontextmanager
async def running(config: ServerConfig) -> AsyncIterator[Running]:
    """A started RouterServer (use port 0) and a channel to it; stopped after."""
    server = RouterServer(config)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Running(server, channel, pb_grpc.IntentRouterStub(channel))
    finally:
        await server.stop(grace=0)


#: Two intents of a small shop: what the reload tests serve before and around their edits.
SHOP_YAML = """\
version: 1
intents:
  - name: request_refund
    examples: [I want a refund, give me my money back, refund my order please]
  - name: track_delivery
    examples: [where is my parcel, when will my order arrive, track my package]
"""


def marker_intent(n: int) -> str:
    """An intent ``marker_N`` (YAML list item) whose examples alone share words with
    "purple elephant", so an answer to that text says which edit served it."""
    return (
        f"  - name: marker_{n}\n"
        "    examples: [purple elephant dancing on the moon, the purple elephant song]\n"
    )


def with_marker(n: int) -> str:
    """SHOP_YAML plus ``marker_N``."""
    return SHOP_YAML + marker_intent(n)


class Served:
    """A running server whose intents come from a directory, with what reload tests ask it.

    ``file`` is the intents file the edits write (``shop.yaml`` in that directory).
    """

    def __init__(self, run: Running, file: Path) -> None:
        self.server, self.stub, self.channel, self.file = run.server, run.stub, run.channel, file

    def metric(self, name: str, **labels: str) -> float | None:
        return self.server.metrics.registry.get_sample_value(name, labels)

    async def health(self) -> int:
        check = health_pb2_grpc.HealthStub(self.channel).Check
        return (await check(health_pb2.HealthCheckRequest(service=""))).status

    @property
    def reloader(self) -> Reloader:
        assert self.server.reloader is not None
        return self.server.reloader

    @property
    def revision(self) -> str:
        """The revision serving now (what answers name)."""
        assert self.server.engine is not None
        return self.server.engine.snapshot.revision

    async def wait_for_edit(self, directory: Path, timeout: float = 10.0) -> str:
        """Wait until the intents now in ``directory`` serve; the revision they serve as."""
        want = load_intents(directory).revision
        engine = self.server.engine
        assert engine is not None
        await self.reloader.wait_until(lambda _: engine.snapshot.intents.revision == want, timeout)
        return engine.snapshot.revision

    async def classify(self, text: str) -> pb.ClassifyResponse:
        return await self.stub.Classify(pb.ClassifyRequest(text=text))

    async def edit(self, n: int) -> str:
        """Write marker ``n`` into ``file`` and reload; the revision now serving."""
        self.file.write_text(with_marker(n))
        reply = await self.stub.Reload(pb.ReloadRequest())
        assert reply.ok and reply.changed, reply
        return reply.revision

    async def marker(self) -> tuple[str, str]:
        """The intent and revision answering "purple elephant"."""
        reply = await self.classify("purple elephant")
        return reply.intent, reply.revision

    async def listed(self) -> list[pb.RevisionSummary]:
        return list((await self.stub.ListRevisions(pb.ListRevisionsRequest())).revisions)


@contextlib.asynccontextmanager
async def serving_intents(directory: Path, **kw: object) -> AsyncIterator[Served]:
    """A server on the fake encoder reloading the intents in ``directory`` (ServerConfig
    fields in ``kw``); its edits write ``directory/shop.yaml``."""
    config = ServerConfig(
        intents=load_intents(directory), intents_path=directory, encoder=serving_fake(),
        port=0, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    async with running(config) as run:
        yield Served(run, directory / "shop.yaml")


def recording_swaps(engine: Engine) -> list[bool]:
    """From now on, each snapshot ``engine`` swaps in appends whether it was final (a warm
    one appends False) to the list returned; the swaps still happen."""
    swapped: list[bool] = []
    swap = engine.swap

    def recording(snapshot: Snapshot) -> None:
        swapped.append(snapshot.final)
        swap(snapshot)

    engine.swap = recording  # type: ignore[method-assign]
    return swapped


def serve_configs(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """Make ``intent-router serve`` return at once instead of serving; the list returned
    gathers the ServerConfig each such command built."""
    seen: list[ServerConfig] = []

    async def run(config: ServerConfig) -> None:
        seen.append(config)

    monkeypatch.setattr(router.serving.server, "run", run)
    return seen


async def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds (a positive wait: it fails, never passes, on time-out)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.002)


def run_cli(*args: str, model_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``intent-router ARGS`` in the repository with the test model; never raises."""
    env = {**os.environ, "INTENT_ROUTER_MODEL_HOME": str(model_dir.parent)}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
        check=False,
    )  # fmt: skip


@contextlib.contextmanager
def serving(
    *args: str, model_dir: Path, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``intent-router serve ARGS --port 0`` as a real process: (process, port); killed after.

    With ``log``, the server logs at info level to that file (else warnings, discarded).
    """
    env = {**os.environ, "INTENT_ROUTER_MODEL_HOME": str(model_dir.parent)}
    cli = CLI if log is None else [*CLI[:-1], "info"]
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("w")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(
            [*cli, "serve", *args, "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("intent-router listening on 127.0.0.1:"), line
            yield proc, int(line.rsplit(":", 1)[1])
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


def in_process(*args: str) -> tuple[int, str, str]:
    """``intent-router ARGS`` in this process: (exit code, stdout, stderr); a usage error's
    SystemExit gives its code like any other exit."""
    from router import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["--log-level", "warning", *args])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()
