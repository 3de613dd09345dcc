"""Hot reload against a real server: each trigger, bad edits, and edits under load."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from helpers import serving

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.routing.intents import load_intents
from router.serving.server import RouterServer, ServerConfig

BASE = """\
version: 1
intents:
  - name: request_refund
    examples: [I want a refund, give me my money back, refund my order please]
  - name: track_delivery
    examples: [where is my parcel, when will my order arrive, track my package]
"""


def with_marker(n: int) -> str:
    """BASE plus an intent whose name says which edit it came from."""
    return BASE + (
        f"  - name: marker_{n}\n"
        "    examples: [purple elephant dancing on the moon, the purple elephant song]\n"
    )


BAD = "version: 1\nintents:\n  - name: request_refund\n    examples: []\n"


class Served:
    def __init__(self, server: RouterServer, stub: pb_grpc.IntentRouterStub) -> None:
        self.server = server
        self.stub = stub

    @property
    def reloader(self):
        assert self.server.reloader is not None
        return self.server.reloader

    async def wait_revision(self, revision: str, timeout: float = 10.0) -> None:
        await self.reloader.wait_until(lambda s: s.revision == revision, timeout)

    async def classify(self, text: str) -> pb.ClassifyResponse:
        return await self.stub.Classify(pb.ClassifyRequest(text=text))


async def serve(path: Path, model_dir: Path, **kw) -> AsyncIterator[Served]:
    server = RouterServer(
        ServerConfig(
            intents=load_intents(path),
            intents_path=path,
            model_dir=model_dir,
            port=0,
            threads=1,
            **kw,
        )
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Served(server, pb_grpc.IntentRouterStub(channel))
    finally:
        await server.stop(grace=0)


@pytest.fixture
async def plain(tmp_path: Path, model_dir: Path) -> AsyncIterator[tuple[Served, Path]]:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async for served in serve(directory, model_dir):
        yield served, directory


async def test_file_edit_in_place(plain) -> None:
    served, directory = plain
    assert (await served.classify("purple elephant")).intent == "marker_0"
    (directory / "shop.yaml").write_text(with_marker(1))
    await served.wait_revision(load_intents(directory).revision)
    reply = await served.classify("purple elephant")
    assert reply.intent == "marker_1"
    assert reply.revision == load_intents(directory).revision


async def test_rename_over_like_an_editor(plain) -> None:
    served, directory = plain
    tmp = directory / ".shop.yaml.swp"
    tmp.write_text(with_marker(2))
    os.replace(tmp, directory / "shop.yaml")
    await served.wait_revision(load_intents(directory).revision)
    assert (await served.classify("purple elephant")).intent == "marker_2"


async def test_configmap_symlink_swap(tmp_path: Path, model_dir: Path) -> None:
    directory = tmp_path / "configmap"
    (directory / "..2026_01").mkdir(parents=True)
    (directory / "..2026_01" / "shop.yaml").write_text(with_marker(3))
    (directory / "..data").symlink_to("..2026_01")
    (directory / "shop.yaml").symlink_to("..data/shop.yaml")
    async for served in serve(directory, model_dir):
        assert (await served.classify("purple elephant")).intent == "marker_3"
        # what the kubelet does: write a new timestamped dir, then swap ..data atomically
        (directory / "..2026_02").mkdir()
        (directory / "..2026_02" / "shop.yaml").write_text(with_marker(4))
        (directory / "..data_tmp").symlink_to("..2026_02")
        os.replace(directory / "..data_tmp", directory / "..data")
        await served.wait_revision(load_intents(directory).revision)
        assert (await served.classify("purple elephant")).intent == "marker_4"


async def test_reload_rpc_reports_errors_and_keeps_serving(tmp_path: Path, model_dir: Path) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(5))
    async for served in serve(directory, model_dir, watch=False):
        good = load_intents(directory).revision
        (directory / "shop.yaml").write_text(BAD)
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert not reply.ok
        assert reply.revision == good
        assert any(e.startswith(f"{directory / 'shop.yaml'}:4:15: ") for e in reply.errors), (
            reply.errors
        )
        info = await served.stub.Info(pb.InfoRequest())
        assert info.revision == good
        assert not info.last_reload.ok and info.last_reload.errors == reply.errors
        assert (await served.classify("purple elephant")).intent == "marker_5"

        (directory / "shop.yaml").unlink()
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert not reply.ok and "no *.yaml" in reply.errors[0]
        assert (await served.classify("purple elephant")).revision == good

        (directory / "shop.yaml").write_text(with_marker(6))
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert reply.ok and reply.changed and reply.trigger == "rpc"
        assert reply.revision == load_intents(directory).revision != good
        assert (await served.classify("purple elephant")).intent == "marker_6"
        info = await served.stub.Info(pb.InfoRequest())
        assert info.last_reload.ok and info.revision == reply.revision


async def test_twenty_edits_under_load_lose_nothing(plain) -> None:
    served, directory = plain
    valid = {load_intents(directory).revision: "marker_0"}
    failures: list[BaseException] = []
    replies: list[pb.ClassifyResponse] = []
    done = asyncio.Event()

    async def client() -> None:
        while not done.is_set():
            try:
                replies.append(await served.classify("purple elephant"))
            except grpc.aio.AioRpcError as exc:
                failures.append(exc)

    clients = [asyncio.create_task(client()) for _ in range(4)]
    last_good = None
    for n in range(1, 21):
        path = directory / "shop.yaml"
        if n % 3 == 0:
            path.write_text(BAD)
            await served.reloader.wait_until(lambda s: not s.ok)
        else:
            path.write_text(with_marker(n))
            last_good = load_intents(directory).revision
            valid[last_good] = f"marker_{n}"
            await served.wait_revision(last_good)
    # a good edit after the last one written above, so answers must follow it
    done.set()
    await asyncio.gather(*clients)

    assert not failures, failures[:3]
    assert len(replies) > 50
    for reply in replies:
        assert reply.revision in valid, reply.revision
        assert reply.intent == valid[reply.revision]  # answered by exactly that revision
    final = await served.classify("purple elephant")
    assert final.revision == last_good
    assert final.intent == valid[last_good]


def test_sighup_reloads_a_running_server(tmp_path: Path, model_dir: Path) -> None:
    """The real process: `serve --no-watch`, edit the file, SIGHUP, answers follow."""
    import signal
    import time

    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(7))
    args = ("--intents", str(directory), "--threads", "1", "--no-watch", "--no-cache")
    with serving(*args, model_dir=model_dir) as (proc, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            ask = pb.ClassifyRequest(text="purple elephant")
            assert stub.Classify(ask, timeout=30).intent == "marker_7"
            (directory / "shop.yaml").write_text(with_marker(8))
            time.sleep(0.5)  # no watcher: nothing may change without the signal
            assert stub.Classify(ask, timeout=30).intent == "marker_7"
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while stub.Classify(ask, timeout=30).intent != "marker_8":
                assert time.monotonic() < deadline, "SIGHUP did not reload"
                time.sleep(0.02)
            info = stub.Info(pb.InfoRequest(), timeout=30)
            assert info.last_reload.trigger == "sighup" and info.last_reload.ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
