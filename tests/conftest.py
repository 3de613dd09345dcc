"""Shared fixtures: the real model (pulled once), the bundled intents, a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from router.api.v1 import router_pb2_grpc as pb_grpc
from router.model.contract import default_model_dir, needs_pull
from router.model.encoder import Encoder
from router.model.pull import pull
from router.routing.engine import Engine
from router.routing.intents import IntentSet, load_intents
from router.serving.server import RouterServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    target = default_model_dir()
    if needs_pull(target):
        pull(target)
    return target


@pytest.fixture(scope="session")
def encoder(model_dir: Path) -> Encoder:
    return Encoder(model_dir, threads=2)


@pytest.fixture(scope="session")
def bundled() -> IntentSet:
    return load_intents(INTENTS)


@pytest.fixture(scope="session")
def engine(encoder: Encoder, bundled: IntentSet) -> Engine:
    engine = Engine(encoder)
    engine.load(bundled)
    return engine


@pytest.fixture(scope="session")
async def server(model_dir: Path, bundled: IntentSet) -> AsyncIterator[RouterServer]:
    srv = RouterServer(ServerConfig(intents=bundled, model_dir=model_dir, port=0, threads=2))
    await srv.start()
    yield srv
    await srv.stop(grace=0)


@pytest.fixture(scope="session")
async def channel(server: RouterServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.aio.Channel) -> pb_grpc.IntentRouterStub:
    return pb_grpc.IntentRouterStub(channel)


@pytest.fixture(scope="session")
def golden() -> dict[str, object]:
    path = SHARED / "data" / "golden" / "minilm_reference.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: ../shared must sit beside the project")
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def write(tmp_path: Path) -> Iterator[object]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    yield _write
