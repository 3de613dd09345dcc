"""Hot reload from a Kubernetes ConfigMap volume, the way the kubelet updates one.

deploy/k8s mounts the intents ConfigMap as a directory. The kubelet lays it out as a
timestamped directory holding the files, a ``..data`` symlink to it and, for each key,
a symlink ``NAME -> ..data/NAME``; an update writes a new timestamped directory, points
``..data_tmp`` at it, renames that over ``..data`` (the one atomic step), then adds the
symlinks of new keys, removes those of deleted keys and deletes the old directory
(kubernetes pkg/volume/util/atomic_writer.go). `Kubelet` below does exactly that; a real
server (fake encoder) watches the directory and must serve every published revision,
with no reload ever failing on a half-made layout.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes import serving_fake
from helpers import SHOP_YAML, Running, marker_intent, running

from router.api.v1 import router_pb2 as pb
from router.routing.intents import load_intents
from router.serving.server import ServerConfig


def marker(n: int) -> str:
    """A file whose one intent says which publication it came from."""
    return "version: 1\nintents:\n" + marker_intent(n)


class Kubelet:
    """Publishes ConfigMap payloads into ``directory`` as the kubelet's atomic writer."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir()
        self.published = 0

    def publish(self, files: dict[str, str]) -> None:
        old_target = self._data_target()
        stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
        payload = self.directory / f"{stamp}{random.randrange(10**9):09d}"
        payload.mkdir()
        for name, text in files.items():
            (payload / name).write_text(text, encoding="utf-8")
        tmp = self.directory / "..data_tmp"
        tmp.symlink_to(payload.name)
        os.replace(tmp, self.directory / "..data")  # the atomic swap
        for name in files:
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        for link in self.directory.iterdir():
            if not link.name.startswith("..") and link.name not in files:
                link.unlink()
        if old_target is not None:
            shutil.rmtree(self.directory / old_target)
        self.published += 1

    def _data_target(self) -> str | None:
        data = self.directory / "..data"
        return os.readlink(data) if data.is_symlink() else None


@pytest.fixture
async def mounted(tmp_path: Path) -> AsyncIterator[tuple[Running, Kubelet]]:
    kubelet = Kubelet(tmp_path / "intents")
    kubelet.publish({"shop.yaml": SHOP_YAML, "marker.yaml": marker(0)})
    config = ServerConfig(
        intents=load_intents(kubelet.directory),
        intents_path=kubelet.directory,
        encoder=serving_fake(),
        port=0,
    )
    async with running(config) as run:
        yield run, kubelet


async def serves_what_is_mounted(run: Running, directory: Path) -> str:
    """Wait until the files now mounted serve; their revision."""
    want = load_intents(directory).revision
    engine, reloader = run.server.engine, run.server.reloader
    assert engine is not None and reloader is not None
    await reloader.wait_until(lambda _: engine.snapshot.intents.revision == want, 10)
    return engine.snapshot.revision


async def answer(run: Running, text: str) -> pb.ClassifyResponse:
    return await run.stub.Classify(pb.ClassifyRequest(text=text))


def failed_reloads(run: Running) -> float:
    registry = run.server.metrics.registry
    return sum(
        registry.get_sample_value("intent_router_reloads_total", {"trigger": t, "result": "error"})
        or 0.0
        for t in ("start", "watch", "sighup", "rpc")
    )


async def test_an_edited_key_is_served_after_the_data_swap(mounted) -> None:
    run, kubelet = mounted
    assert (await answer(run, "purple elephant")).intent == "marker_0"
    before = (await answer(run, "purple elephant")).revision
    kubelet.publish({"shop.yaml": SHOP_YAML, "marker.yaml": marker(1)})
    revision = await serves_what_is_mounted(run, kubelet.directory)
    reply = await answer(run, "purple elephant")
    assert (reply.intent, reply.revision) == ("marker_1", revision)
    assert revision != before
    assert len(list(kubelet.directory.glob("..2*"))) == 1  # the old payload is gone
    assert failed_reloads(run) == 0


async def test_added_and_removed_keys_follow_the_config_map(mounted) -> None:
    run, kubelet = mounted
    # a new key: its symlink appears only after the swap
    kubelet.publish({"shop.yaml": SHOP_YAML, "marker.yaml": marker(0), "extra.yaml": marker(2)})
    await serves_what_is_mounted(run, kubelet.directory)
    served = {i.name for i in run.server.engine.snapshot.intents.intents}  # type: ignore[union-attr]
    assert {"marker_0", "marker_2"} <= served
    # a removed key: its symlink dangles between the swap and its removal
    kubelet.publish({"shop.yaml": SHOP_YAML})
    await serves_what_is_mounted(run, kubelet.directory)
    assert (await answer(run, "purple elephant")).intent != "marker_0"
    served = {i.name for i in run.server.engine.snapshot.intents.intents}  # type: ignore[union-attr]
    assert served == {"request_refund", "track_delivery"}
    assert failed_reloads(run) == 0


async def test_many_publications_in_a_row_end_on_the_last(mounted) -> None:
    run, kubelet = mounted
    for n in range(3, 13):
        kubelet.publish({"shop.yaml": SHOP_YAML, "marker.yaml": marker(n)})
    await serves_what_is_mounted(run, kubelet.directory)
    assert (await answer(run, "purple elephant")).intent == "marker_12"
    assert run.server.reloader is not None and run.server.reloader.watching
    assert failed_reloads(run) == 0
