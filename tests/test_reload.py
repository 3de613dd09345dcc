"""Hot reload against a real server: each trigger, bad edits, and edits under load.

In-process servers run on the fake encoder (a reload's logic does not depend on the
model; "purple elephant" shares words with the marker intent only). The SIGHUP test
runs the real command line, so it needs the real model.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from fakes import serving_fake
from grpc_health.v1 import health_pb2
from helpers import (
    CLI,
    ROOT,
    SHOP_YAML,
    Served,
    recording_swaps,
    serving,
    serving_intents,
    wait_for,
    with_marker,
)

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.routing.engine import Engine
from router.routing.intents import IntentsLimits, load_intents


def watchers() -> list[asyncio.Task[object]]:
    """The running servers' directory watchers (``Reloader.start_watching`` names its task)."""
    return [t for t in asyncio.all_tasks() if t.get_name() == "intents-watcher"]


#: What a watcher logs in its task's first step. The task is created before the server
#: answers anything and the event loop runs ready tasks in order, so once a server has
#: answered, this line is in its log if it will ever be.
WATCHING = "for changes"


BAD = "version: 1\nintents:\n  - name: request_refund\n    examples: []\n"


async def serve(directory: Path, **kw: object) -> AsyncIterator[Served]:
    async with serving_intents(directory, **kw) as served:
        yield served


@pytest.fixture
async def plain(tmp_path: Path) -> AsyncIterator[tuple[Served, Path]]:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async for served in serve(directory):
        yield served, directory


async def test_file_edit_in_place(plain) -> None:
    served, directory = plain
    assert len(watchers()) == 1
    assert (await served.classify("purple elephant")).intent == "marker_0"
    before = served.revision
    (directory / "shop.yaml").write_text(with_marker(1))
    revision = await served.wait_for_edit(directory)
    reply = await served.classify("purple elephant")
    assert reply.intent == "marker_1"
    assert reply.revision == revision != before
    assert served.reloader.status.trigger == "watch"


async def test_rename_over_like_an_editor(plain) -> None:
    served, directory = plain
    tmp = directory / ".shop.yaml.swp"
    tmp.write_text(with_marker(2))
    os.replace(tmp, directory / "shop.yaml")
    await served.wait_for_edit(directory)
    assert (await served.classify("purple elephant")).intent == "marker_2"


async def test_configmap_symlink_swap(tmp_path: Path) -> None:
    directory = tmp_path / "configmap"
    (directory / "..2026_01").mkdir(parents=True)
    (directory / "..2026_01" / "shop.yaml").write_text(with_marker(3))
    (directory / "..data").symlink_to("..2026_01")
    (directory / "shop.yaml").symlink_to("..data/shop.yaml")
    async for served in serve(directory):
        assert (await served.classify("purple elephant")).intent == "marker_3"
        # what the kubelet does: write a new timestamped dir, then swap ..data atomically
        (directory / "..2026_02").mkdir()
        (directory / "..2026_02" / "shop.yaml").write_text(with_marker(4))
        (directory / "..data_tmp").symlink_to("..2026_02")
        os.replace(directory / "..data_tmp", directory / "..data")
        await served.wait_for_edit(directory)
        assert (await served.classify("purple elephant")).intent == "marker_4"


async def test_a_watching_server_says_so_before_it_answers(tmp_path: Path, caplog) -> None:
    """The log line the SIGHUP test relies on to show a server is not watching."""
    caplog.set_level(logging.INFO, logger="router.serving.reload")
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(11))
    async for served in serve(directory):
        assert (await served.classify("purple elephant")).intent == "marker_11"
        assert len(watchers()) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert [m for m in messages if not m.startswith("lint:")] == [
            f"watching {directory} {WATCHING}"
        ]


async def test_each_revision_is_linted_into_the_log_and_info(tmp_path: Path, caplog) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(12))  # intents of 3 examples: too few
    async for served in serve(directory, watch=False):
        await wait_for(functools.partial(lambda r: bool(r.lint_findings), served.reloader))
        info = await served.stub.Info(pb.InfoRequest())
        assert any("too_few: request_refund has 3 examples" in f for f in info.lint_findings)
        assert all(f.startswith("shop.yaml:") for f in info.lint_findings)  # no directory
        assert any(r.getMessage().startswith("lint: ") for r in caplog.records)
        (directory / "shop.yaml").write_text(SHOP_YAML.replace("request_refund", "refund_request"))
        await served.stub.Reload(pb.ReloadRequest())
        info = await served.stub.Info(pb.InfoRequest())
        assert any("refund_request has 3" in f for f in info.lint_findings)  # this revision's


async def test_without_watching_only_a_trigger_reloads(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="router.serving.reload")
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(9))
    async for served in serve(directory, watch=False):
        assert watchers() == []  # nothing can react to an edit on its own
        old = served.revision
        (directory / "shop.yaml").write_text(with_marker(10))
        assert (await served.classify("purple elephant")).intent == "marker_9"
        assert not [r for r in caplog.records if WATCHING in r.getMessage()]
        reply = await served.stub.Reload(pb.ReloadRequest())
        # the trigger's reload is the one that swapped the edit in: no reload came before it
        assert reply.ok and reply.changed and reply.trigger == "rpc"
        assert reply.revision == served.revision != old
        assert served.server.engine.snapshot.intents.revision == load_intents(directory).revision
        assert served.reloader.count == 1
        assert (await served.classify("purple elephant")).intent == "marker_10"


async def test_reload_rpc_reports_errors_and_keeps_serving(tmp_path: Path) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(5))
    async for served in serve(directory, watch=False):
        good = served.revision
        (directory / "shop.yaml").write_text(BAD)
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert not reply.ok
        assert reply.revision == good
        assert any(e.startswith(f"{directory / 'shop.yaml'}:4:15: ") for e in reply.errors), (
            reply.errors
        )
        info = await served.stub.Info(pb.InfoRequest())
        assert info.revision == good
        assert not info.last_reload.ok  # the same errors, without the directory (no token)
        assert info.last_reload.errors == [e.replace(f"{directory}/", "") for e in reply.errors]
        assert (await served.classify("purple elephant")).intent == "marker_5"

        (directory / "shop.yaml").unlink()
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert not reply.ok and "no *.yaml" in reply.errors[0]
        assert (await served.classify("purple elephant")).revision == good

        (directory / "shop.yaml").write_text(with_marker(6))
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert reply.ok and reply.changed and reply.trigger == "rpc"
        assert reply.revision == served.revision != good
        assert served.server.engine.snapshot.intents.revision == load_intents(directory).revision
        assert (await served.classify("purple elephant")).intent == "marker_6"
        info = await served.stub.Info(pb.InfoRequest())
        assert info.last_reload.ok and info.revision == reply.revision


async def test_twenty_edits_under_load_lose_nothing(plain) -> None:
    served, directory = plain
    valid = {served.revision: "marker_0"}
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
            last_good = await served.wait_for_edit(directory)
            valid[last_good] = f"marker_{n}"
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
    log = tmp_path / "serve.log"
    with serving(*args, model_dir=model_dir, log=log) as (proc, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            ask = pb.ClassifyRequest(text="purple elephant")
            assert stub.Classify(ask, timeout=30).intent == "marker_7"
            # it has answered: had it started a watcher, the log would say so by now
            text = log.read_text()
            assert "serving revision" in text and WATCHING not in text, text
            started = stub.Info(pb.InfoRequest(), timeout=30)
            assert started.last_reload.trigger == "start"
            (directory / "shop.yaml").write_text(with_marker(8))
            assert stub.Classify(ask, timeout=30).intent == "marker_7"
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while (info := stub.Info(pb.InfoRequest(), timeout=30)).last_reload.trigger != "sighup":
                assert info.last_reload.trigger == "start", info.last_reload  # no other reload
                assert time.monotonic() < deadline, "SIGHUP did not reload"
                time.sleep(0.02)
            # no watcher: the revision SIGHUP's reload replaced was still the first one,
            # so nothing had reloaded the edit before the signal
            assert info.last_reload.ok and info.last_reload.changed
            assert info.last_reload.revision == info.revision != started.revision
            assert stub.Classify(ask, timeout=30).intent == "marker_8"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("defaults:\n  threshold: !!int 'zz'\n", "defaults.threshold"),
        ("defaults:\n  threshold: !!python/name:os.system\n", "defaults.threshold"),
        ("negation:\n  enabled: !!bool 'maybe'\n", "negation.enabled"),
    ],
)
async def test_yaml_tags_that_cannot_be_built_are_intents_errors(
    tmp_path: Path, line: str, field: str
) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(1))
    async for served in serve(directory, watch=False):
        good = served.revision
        (directory / "shop.yaml").write_text(
            with_marker(2).replace("version: 1\n", f"version: 1\n{line}")
        )
        reply = await served.stub.Reload(pb.ReloadRequest())  # answered UNKNOWN before
        assert not reply.ok and reply.revision == good
        assert any("shop.yaml:3:" in e and f"{field}: cannot be read" in e for e in reply.errors)
        info = await served.stub.Info(pb.InfoRequest())
        assert not info.last_reload.ok and info.revision == good


# --------------------------------------------- the watch survives its directory


def many_examples(marker: int, n: int = 600) -> str:
    """with_marker(marker) plus an intent of ``n`` examples: a build of several chunks."""
    lines = "".join(f"      - filler sentence number {i}\n" for i in range(n))
    return with_marker(marker) + f"  - name: filler\n    examples:\n{lines}"


async def test_a_removed_and_recreated_directory_is_watched_again(plain, caplog) -> None:
    """rm -r, then mkdir and write: the watch had stayed on the dead inode for good,
    silently. Now the loss shows (log, Info, metric), answers go on, and it re-arms."""
    caplog.set_level(logging.INFO, logger="router.serving.reload")
    served, directory = plain
    # the start-up reload lints before it is done (on a busy machine, after SERVING)
    await wait_for(lambda: not served.reloader.in_progress, timeout=10)
    info = await served.stub.Info(pb.InfoRequest())
    assert info.watching and not info.watch_problem and not info.reload_in_progress
    assert served.metric("intent_router_watching") == 1
    old = served.revision

    shutil.rmtree(directory)
    await wait_for(lambda: not served.reloader.watching, timeout=10)
    info = await served.stub.Info(pb.InfoRequest())
    assert not info.watching and info.watch_problem == "intents directory intents is gone"
    assert served.metric("intent_router_watching") == 0
    assert any(
        r.levelno == logging.WARNING and f"intents directory {directory} is gone" in r.getMessage()
        for r in caplog.records
    )
    assert await served.health() == health_pb2.HealthCheckResponse.SERVING
    reply = await served.classify("purple elephant")
    assert reply.intent == "marker_0" and reply.revision == old

    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(1))
    await served.wait_for_edit(directory)
    assert (await served.classify("purple elephant")).intent == "marker_1"
    await wait_for(lambda: served.reloader.watching, timeout=10)
    info = await served.stub.Info(pb.InfoRequest())
    assert info.watching and not info.watch_problem
    assert served.metric("intent_router_watching") == 1
    # and the new directory's own edits are seen
    (directory / "shop.yaml").write_text(with_marker(2))
    await served.wait_for_edit(directory)
    assert (await served.classify("purple elephant")).intent == "marker_2"


async def test_a_directory_replaced_with_mv_is_watched_again(plain, caplog) -> None:
    """mv intents intents.old; mv new intents: the watch followed the old inode (its
    edits were even reported under the old name). Now the new directory is watched."""
    caplog.set_level(logging.INFO, logger="router.serving.reload")
    served, directory = plain
    assert (await served.classify("purple elephant")).intent == "marker_0"  # watching now
    new = directory.parent / "new"
    new.mkdir()
    (new / "shop.yaml").write_text(with_marker(3))
    os.rename(directory, directory.parent / "intents.old")
    os.rename(new, directory)
    await served.wait_for_edit(directory)
    assert (await served.classify("purple elephant")).intent == "marker_3"
    await wait_for(
        lambda: any(f"{directory} was replaced" in r.getMessage() for r in caplog.records),
        timeout=10,
    )

    (directory / "shop.yaml").write_text(with_marker(4))
    await served.wait_for_edit(directory)
    assert (await served.classify("purple elephant")).intent == "marker_4"
    await wait_for(lambda: served.reloader.watching, timeout=10)
    assert (await served.stub.Info(pb.InfoRequest())).watching


# ------------------------------------------------- limits, superseding, failures


async def test_a_newer_edit_supersedes_a_build_in_progress(tmp_path: Path) -> None:
    """A slow build (held in the model) and a good edit behind it: the build is abandoned,
    the newest files are built next, and both callers get that reload's status."""
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async for served in serve(directory, watch=False):
        encoder = served.server.engine.encoder
        count = served.reloader.count
        (directory / "shop.yaml").write_text(many_examples(1))
        encoder.hold()
        first = asyncio.ensure_future(served.stub.Reload(pb.ReloadRequest()))
        await encoder.held()  # the build of edit 1 is in the model
        info = await served.stub.Info(pb.InfoRequest())
        assert info.reload_in_progress
        assert served.metric("intent_router_reload_in_progress") == 1
        (directory / "shop.yaml").write_text(many_examples(2))
        second = asyncio.ensure_future(served.stub.Reload(pb.ReloadRequest()))
        await wait_for(lambda r=served.reloader: r.requests == 2, timeout=10)
        encoder.release()
        one, two = await first, await second

        want = load_intents(directory).revision
        assert served.server.engine.snapshot.intents.revision == want
        assert one.ok and two.ok and one.revision == two.revision == served.revision
        assert served.reloader.count == count + 1  # one reload recorded: edit 1 never served
        assert served.reloader.abandoned == 1
        assert (await served.classify("purple elephant")).intent == "marker_2"
        info = await served.stub.Info(pb.InfoRequest())
        assert not info.reload_in_progress and info.last_reload.duration_ms > 0
        assert served.metric("intent_router_reload_in_progress") == 0
        assert served.metric("intent_router_reload_seconds_count") == 2  # start + this one


async def test_a_build_that_raises_is_reported_and_counted(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async for served in serve(directory):
        good = served.revision

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(served.server.engine, "build", boom)
        # a file change: the watcher's reload raised, was logged, and nothing else
        (directory / "shop.yaml").write_text(with_marker(1))
        status = await served.reloader.wait_until(lambda s: s.trigger == "watch" and not s.ok)
        assert not status.ok and status.errors == ("reload failed: RuntimeError: boom",)
        assert served.metric("intent_router_reloads_total", trigger="watch", result="error") == 1
        reply = await served.stub.Reload(pb.ReloadRequest())  # was UNKNOWN, uncounted
        assert not reply.ok and reply.revision == good
        assert reply.errors == ["reload failed: RuntimeError: boom"]
        assert served.metric("intent_router_reloads_total", trigger="rpc", result="error") == 1
        info = await served.stub.Info(pb.InfoRequest())
        assert info.revision == good and not info.last_reload.ok
        assert (await served.classify("purple elephant")).intent == "marker_0"


async def test_reloads_apply_the_configured_limits(tmp_path: Path) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    limits = IntentsLimits(max_examples=20)
    async for served in serve(directory, watch=False, intents_limits=limits):
        good = served.revision
        (directory / "shop.yaml").write_text(many_examples(1, n=30))
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert not reply.ok and reply.revision == good
        path = directory / "shop.yaml"
        # 8 examples before the filler intent: its 13th (line 11 + 12) is the 21st
        assert reply.errors == [
            f"{path}:23:9: intents[3].examples[12]: more than 20 examples in all files (the limit)"
        ]
        # the default limits: the alias bomb is refused, not expanded and built
        (directory / "shop.yaml").write_text(
            with_marker(2)
            + "  - name: bomb\n    examples:\n      - &big "
            + "x" * 5_000
            + "\n"
            + "      - *big\n" * 20_001
        )
        reply = await served.stub.Reload(pb.ReloadRequest())
        assert not reply.ok and reply.revision == good
        assert "more than 16 YAML aliases (*big)" in reply.errors[0]
        assert (await served.classify("purple elephant")).intent == "marker_0"


def test_serve_flags_set_the_intents_limits(tmp_path: Path) -> None:
    """A file over ``--max-examples`` stops ``serve`` before the model loads (exit 2; a
    server that took the file would stop at the missing model, exit 3)."""
    (tmp_path / "shop.yaml").write_text(many_examples(0, n=30))
    args = ("--intents", str(tmp_path), "--max-examples", "20", "--model", str(tmp_path / "no"))
    done = subprocess.run(
        [*CLI, "serve", *args, "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "intents[3].examples[12]: more than 20 examples in all files" in done.stderr


# ------------------------------------------------------------ warm, then final


async def test_an_edit_serves_warm_first_then_the_head_a_cold_start_trains(plain) -> None:
    served, directory = plain
    engine = served.server.engine
    swapped = recording_swaps(engine)
    (directory / "shop.yaml").write_text(with_marker(1))
    revision = await served.wait_for_edit(directory)
    await wait_for(lambda: engine.snapshot.final)
    assert swapped == [False, True]  # the warm snapshot answered first
    assert (await served.classify("purple elephant")).revision == revision == served.revision
    cold = Engine(serving_fake()).build(load_intents(directory))
    assert cold.revision == revision
    assert np.array_equal(engine.snapshot.index.head.weights, cold.index.head.weights)
    assert served.reloader.status.ok and served.reloader.status.changed


async def test_a_warm_snapshot_whose_final_build_was_abandoned_is_completed_next(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async for served in serve(directory, watch=False):
        engine = served.server.engine
        (directory / "shop.yaml").write_text(with_marker(1))
        # what a reload leaves when a newer request abandons its final build
        engine.swap(engine.build(load_intents(directory), warm_from=engine.snapshot))
        assert not engine.snapshot.final
        reply = await served.stub.Reload(pb.ReloadRequest())  # the same files
        assert reply.ok and reply.changed and reply.revision == served.revision
        assert engine.snapshot.final


async def test_a_lint_in_progress_never_holds_the_next_reload(tmp_path: Path, monkeypatch) -> None:
    import threading

    import router.serving.reload as reload_module

    started, release = threading.Event(), threading.Event()
    real = reload_module.lint_snapshot

    def slow_lint(engine, snapshot):
        started.set()
        release.wait(30)
        return real(engine, snapshot)

    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async for served in serve(directory, watch=False):
        monkeypatch.setattr(reload_module, "lint_snapshot", slow_lint)
        engine = served.server.engine
        (directory / "shop.yaml").write_text(with_marker(1))
        first = asyncio.ensure_future(served.stub.Reload(pb.ReloadRequest()))
        await wait_for(started.is_set)  # revision 1 serves; its lint is held
        (directory / "shop.yaml").write_text(with_marker(2))
        second = asyncio.ensure_future(served.stub.Reload(pb.ReloadRequest()))
        want = load_intents(directory).revision
        await wait_for(
            functools.partial(
                lambda e, w: e.snapshot.intents.revision == w and e.snapshot.final, engine, want
            )
        )
        assert not release.is_set()  # built and swapped while the lint still ran
        assert (await served.classify("purple elephant")).intent == "marker_2"
        release.set()
        one, two = await first, await second
        assert one.ok and two.ok and two.revision == served.revision
