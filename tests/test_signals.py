"""Stopping and signals: the drain grace is a setting, SIGHUP never kills a starting server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from fakes import serving_fake
from helpers import CLI, ROOT, running, serve_configs

from router.api.v1 import router_pb2 as pb
from router.serving.server import ServerConfig


@pytest.mark.parametrize(("grace", "answered"), [(0.2, False), (5.0, True)])
async def test_in_flight_calls_get_the_configured_grace(bundled, grace, answered) -> None:
    encoder = serving_fake()
    config = ServerConfig(intents=bundled, encoder=encoder, port=0, grace_seconds=grace)
    async with running(config) as served:
        encoder.hold()
        call = asyncio.ensure_future(
            served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"), timeout=30)
        )
        await encoder.held()
        stopping = asyncio.create_task(served.server.stop())  # the config's grace
        await asyncio.sleep(0.6)  # past the short grace, well inside the long one
        encoder.release()
        await stopping
        if answered:
            assert (await call).intent
        else:
            with pytest.raises(grpc.aio.AioRpcError):
                await call


def test_sighup_while_the_model_loads_does_not_kill_the_server(
    model_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "INTENT_ROUTER_MODEL_HOME": str(model_dir.parent)}
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [*CLI[:-1], "info", "serve", "--intents", "intents", "--port", "0", "--no-cache"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "starting:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)  # the command line has begun; what follows is start-up
        os.set_blocking(proc.stdout.fileno(), False)
        line = ""
        sent = 0
        while not line and time.monotonic() < deadline:
            time.sleep(0.05)
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGHUP)  # rc 129 before: the default action
            sent += 1
            line = proc.stdout.readline()
        assert proc.poll() is None, f"server died with rc {proc.returncode}"
        assert line.startswith("intent-router listening on"), line
        assert sent >= 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_the_grace_is_a_flag(monkeypatch, tmp_path: Path) -> None:
    from router import cli

    seen = serve_configs(monkeypatch)
    monkeypatch.setattr(cli, "_resolve_model", Path)
    assert cli.main(["serve", "--intents", "intents", "--grace", "12.5", "--no-cache"]) == 0
    assert cli.main(["serve", "--intents", "intents", "--no-cache"]) == 0
    assert [c.grace_seconds for c in seen] == [12.5, 15.0]  # was a fixed 5 s
