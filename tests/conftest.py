"""Shared fixtures: the bundled intents; a fake encoder, engine and server; the real model.

Every test that needs a real model depends, directly or through a fixture, on
``model_dir`` (MiniLM), ``int8_model_dir`` (MiniLM with int8 products) or
``use_model_dir`` (Universal Sentence Encoder multilingual),
each pulled once as ``model pull`` pulls it; such tests are marked ``model`` here at
collection, so ``pytest -m "not model"`` (``make test-fast``) runs the rest without a
model on the machine. Routing, batching, reload and service logic use the fake
(``fakes.serving_fake``): ``fake_encoder``, ``fake_engine``, ``fake_server``/``fake_stub``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from fakes import FakeEncoder, serving_fake

from router.api.v1 import router_pb2_grpc as pb_grpc
from router.model.contract import default_model_dir, needs_pull
from router.model.pull import pull
from router.model.token_graph import TokenGraphEncoder
from router.routing.engine import Engine
from router.routing.intents import IntentSet, load_intents
from router.serving.server import RouterServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
SHARED = ROOT.parent / "shared"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"model_dir", "use_model_dir", "int8_model_dir"} & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The real model, pulled if missing. Every real-model fixture depends on this one."""
    target = default_model_dir()
    if needs_pull(target):
        pull(target)
    return target


@pytest.fixture(scope="session")
def use_model_dir() -> Path:
    """The multilingual model, pulled if missing (as ``model pull --model use-multilingual``)."""
    target = default_model_dir("use-multilingual")
    if needs_pull(target, "use-multilingual"):
        pull(target, name="use-multilingual")
    return target


@pytest.fixture(scope="session")
def int8_model_dir(model_dir: Path) -> Path:
    """MiniLM with int8 products, pulled if missing (as ``model pull --model minilm-int8``)."""
    target = default_model_dir("minilm-int8")
    if needs_pull(target, "minilm-int8"):
        pull(target, name="minilm-int8")
    return target


@pytest.fixture(scope="session")
def encoder(model_dir: Path) -> TokenGraphEncoder:
    return TokenGraphEncoder(model_dir, threads=2)


@pytest.fixture(scope="session")
def bundled() -> IntentSet:
    return load_intents(INTENTS)


@pytest.fixture(scope="session")
def engine(encoder: TokenGraphEncoder, bundled: IntentSet) -> Engine:
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


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return serving_fake()


@pytest.fixture
def fake_engine(fake_encoder: FakeEncoder, bundled: IntentSet) -> Engine:
    """An engine on a fresh fake with the bundled intents loaded (its own: tests may hold it)."""
    engine = Engine(fake_encoder)
    engine.load(bundled)
    return engine


@pytest.fixture(scope="session")
async def fake_server(bundled: IntentSet) -> AsyncIterator[RouterServer]:
    """A real grpc.aio server on 127.0.0.1 with the bundled intents and a fake encoder."""
    srv = RouterServer(ServerConfig(intents=bundled, encoder=serving_fake(), port=0))
    await srv.start()
    yield srv
    await srv.stop(grace=0)


@pytest.fixture(scope="session")
async def fake_channel(fake_server: RouterServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{fake_server.port}") as ch:
        yield ch


@pytest.fixture(scope="session")
def fake_stub(fake_channel: grpc.aio.Channel) -> pb_grpc.IntentRouterStub:
    return pb_grpc.IntentRouterStub(fake_channel)


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


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The CLI's model replaced by a fresh ``serving_fake()``: nothing is resolved or
    pulled; returns the model directories the CLI asked for, in order."""
    import router.model.loading
    from router import cli

    given: list[Path] = []

    def load_encoder(model_dir: Path, threads: int | None = None) -> FakeEncoder:
        given.append(model_dir)
        return serving_fake()

    monkeypatch.setattr(router.model.loading, "load_encoder", load_encoder)
    monkeypatch.setattr(cli, "_resolve_model", Path)
    return given
