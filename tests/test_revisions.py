"""Kept revisions and Rollback against a real server on the fake encoder.

Each edit adds an intent ``marker_N`` whose examples share words with "purple
elephant" only, so an answer to "purple elephant" says which revision served it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from helpers import Served, serving_intents, with_marker

from router.api.v1 import router_pb2 as pb


async def serve(tmp_path: Path, **kw: object) -> AsyncIterator[Served]:
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text(with_marker(0))
    async with serving_intents(directory, watch=False, **kw) as served:
        yield served


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for s in serve(tmp_path):
        yield s


async def test_a_kept_revision_is_its_final_snapshot(served: Served) -> None:
    revision = await served.edit(1)  # warm snapshot first, then the final one
    engine = served.server.engine
    assert engine.snapshot.final
    kept = served.server.reloader.kept(revision)
    assert kept.snapshot is engine.snapshot


async def test_list_revisions_after_start(served: Served) -> None:
    (only,) = await served.listed()
    snapshot = served.server.engine.snapshot
    assert only.revision == snapshot.revision
    assert only.serving and only.trigger == "start"
    assert (only.intent_count, only.example_count) == (3, 8)
    assert only.loaded_at_unix == pytest.approx(served.server.reloader.status.at, abs=5)


async def test_the_last_revisions_are_kept_newest_first(served: Served) -> None:
    first = served.server.engine.snapshot.revision
    second = await served.edit(1)
    third = await served.edit(2)
    fourth = await served.edit(3)  # the default keeps 3: the first is let go
    listed = await served.listed()
    assert [r.revision for r in listed] == [fourth, third, second]
    assert [r.serving for r in listed] == [True, False, False]
    assert [r.trigger for r in listed] == ["rpc"] * 3
    assert first not in {r.revision for r in listed}
    times = [r.loaded_at_unix for r in listed]
    assert times == sorted(times, reverse=True)


async def test_rollback_to_the_previous_revision_and_forward_again(served: Served) -> None:
    first = served.server.engine.snapshot.revision
    second = await served.edit(1)
    assert await served.marker() == ("marker_1", second)
    calls = served.server.engine.encoder.calls
    reply = await served.stub.Rollback(pb.RollbackRequest())  # empty: the one before
    assert (reply.ok, reply.revision, list(reply.errors)) == (True, first, [])
    assert await served.marker() == ("marker_0", first)
    assert served.server.engine.encoder.calls == calls + 1  # that answer only: no build
    info = await served.stub.Info(pb.InfoRequest())
    assert (info.revision, info.last_reload.trigger, info.last_reload.ok) == (
        first,
        "rollback",
        True,
    )
    assert info.last_reload.changed
    # lint findings follow the serving revision (its examples: marker_0's)
    assert any("marker_0 has 2 examples" in f for f in info.lint_findings)
    assert not any("marker_1" in f for f in info.lint_findings)
    count = served.server.metrics.registry.get_sample_value
    assert count("intent_router_revision_info", {"revision": first}) == 1
    assert count("intent_router_reloads_total", {"trigger": "rollback", "result": "ok"}) == 1
    listed = await served.listed()
    assert [(r.revision, r.serving) for r in listed] == [(second, False), (first, True)]
    # the files are unchanged: the next reload serves them again, from the kept snapshot
    assert served.file.read_text() == with_marker(1)
    calls = served.server.engine.encoder.calls
    again = await served.stub.Reload(pb.ReloadRequest())
    assert (again.ok, again.changed, again.revision) == (True, True, second)
    assert served.server.engine.encoder.calls == calls  # no build: the kept snapshot
    assert await served.marker() == ("marker_1", second)
    assert count("intent_router_revision_info", {"revision": second}) == 1


async def test_rollback_steps_back_and_to_a_named_revision(served: Served) -> None:
    first = served.server.engine.snapshot.revision
    second = await served.edit(1)
    third = await served.edit(2)
    assert (await served.stub.Rollback(pb.RollbackRequest())).revision == second
    assert (await served.stub.Rollback(pb.RollbackRequest())).revision == first  # further back
    named = await served.stub.Rollback(pb.RollbackRequest(revision=third))
    assert (named.ok, named.revision) == (True, third)
    assert await served.marker() == ("marker_2", third)
    same = await served.stub.Rollback(pb.RollbackRequest(revision=third))  # already serving
    assert (same.ok, same.revision) == (True, third)
    assert not served.server.reloader.status.changed


async def test_rollback_to_a_revision_not_kept_names_the_kept_ones(served: Served) -> None:
    first = served.server.engine.snapshot.revision
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.stub.Rollback(pb.RollbackRequest())  # nothing before the first
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"no revision is kept before the serving one {first}" in refused.value.details()
    second = await served.edit(1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.stub.Rollback(pb.RollbackRequest(revision="0123456789ab"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == (
        f"revision '0123456789ab' is not kept (kept, newest first: {second}, {first})"
    )
    assert served.server.engine.snapshot.revision == second


async def test_keep_revisions_bounds_what_is_kept(tmp_path: Path) -> None:
    async for served in serve(tmp_path, keep_revisions=1):
        await served.edit(1)
        assert len(await served.listed()) == 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await served.stub.Rollback(pb.RollbackRequest())
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_rollback_supersedes_a_build_in_progress(served: Served) -> None:
    first = served.server.engine.snapshot.revision
    second = await served.edit(1)
    encoder = served.server.engine.encoder
    served.file.write_text(with_marker(2).replace("purple elephant song", "purple llama song"))
    encoder.hold()  # the build waits inside the model
    try:
        reload = asyncio.create_task(served.server.reloader.reload("rpc"))
        await encoder.held()
        rollback = asyncio.create_task(served.server.reloader.rollback(first))
        await asyncio.sleep(0)  # the rollback has asked the build to stop
    finally:
        encoder.release()
    rolled, reloaded = await rollback, await reload
    assert (rolled.trigger, rolled.revision) == ("rollback", first)
    assert reloaded == rolled  # the reload asked before the rollback got its status
    assert served.server.engine.snapshot.revision == first
    assert second in {r.revision for r in await served.listed()}
    assert served.server.reloader.abandoned == 1


async def test_without_an_intents_path_the_serving_revision_is_listed(fake_stub) -> None:
    (only,) = (await fake_stub.ListRevisions(pb.ListRevisionsRequest())).revisions
    assert only.serving and only.trigger == "start"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await fake_stub.Rollback(pb.RollbackRequest())
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return () if token is None else (("authorization", f"Bearer {token}"),)


async def test_rollback_needs_an_admin_token_and_listing_any_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("reader-token\nops-token admin\n")
    async for served in serve(tmp_path, auth_tokens=tokens):
        ops = _metadata("ops-token")
        first = served.server.engine.snapshot.revision
        served.file.write_text(with_marker(1))
        assert (await served.stub.Reload(pb.ReloadRequest(), metadata=ops)).ok
        for token, code in [
            (None, grpc.StatusCode.UNAUTHENTICATED),
            ("wrong-token", grpc.StatusCode.UNAUTHENTICATED),
            ("reader-token", grpc.StatusCode.PERMISSION_DENIED),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await served.stub.Rollback(pb.RollbackRequest(), metadata=_metadata(token))
            assert refused.value.code() == code
        listed = await served.stub.ListRevisions(
            pb.ListRevisionsRequest(), metadata=_metadata("reader-token")
        )
        assert len(listed.revisions) == 2
        assert (await served.stub.Rollback(pb.RollbackRequest(), metadata=ops)).revision == first
        assert served.server.engine.snapshot.revision == first
