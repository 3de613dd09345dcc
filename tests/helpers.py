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

from router.api.v1 import router_pb2_grpc as pb_grpc
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
