"""The micro-batcher: batches form under load, gone callers are skipped, overload is
refused at once and the server recovers, one bad item never fails the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.errors import CallerGoneError, OverloadedError
from router.routing.engine import Engine
from router.serving.batching import Batcher, BatchSettings
from router.serving.server import RouterServer, ServerConfig

TEXTS = [
    "where is my parcel",
    "I want my money back",
    "my card was declined",
    "please cancel my order",
    "the screen is cracked",
    "I can't log in",
]


@pytest.fixture
async def batcher(engine: Engine) -> AsyncIterator[Batcher]:
    b = Batcher(engine, BatchSettings(max_batch=8, max_queue=64))
    b.start()
    yield b
    await b.close()


async def test_concurrent_requests_share_batches_and_match_single_answers(batcher, engine) -> None:
    texts = TEXTS * 8
    results = await asyncio.gather(*(batcher.classify([t], 3) for t in texts))
    assert batcher.batches < len(texts)  # requests were grouped
    alone = engine.classify(texts, 3).predictions
    for result, single in zip(results, alone, strict=True):
        (p,) = result.predictions
        assert p.intent == single.intent
        assert p.score == pytest.approx(single.score, abs=1e-5)


async def test_top_k_is_per_request_within_a_batch(batcher) -> None:
    one, five = await asyncio.gather(
        batcher.classify([TEXTS[0]], 1), batcher.classify([TEXTS[1]], 5)
    )
    assert len(one.predictions[0].alternatives) == 1
    assert len(five.predictions[0].alternatives) == 5


async def test_large_batches_keep_order(batcher, engine) -> None:
    texts = [t + "!" * i for i, t in enumerate(TEXTS * 5)]
    answers, timings = await batcher.classify_many(texts, 2)
    expected = engine.classify(texts, 2).predictions
    assert [a.prediction.intent for a in answers] == [p.intent for p in expected]
    assert timings.encode_ms > 0


async def test_callers_gone_are_skipped(batcher) -> None:
    slow = asyncio.create_task(batcher.classify(["a long text " * 100] * 8, 3))
    await asyncio.sleep(0)  # the consumer picks it up and is busy
    expired = asyncio.create_task(batcher.classify(["where is my parcel"], 3, timeout=0.0))
    cancelled = asyncio.create_task(batcher.classify(["where is my parcel"], 3))
    await asyncio.sleep(0)
    cancelled.cancel()
    await slow
    with pytest.raises(CallerGoneError):
        await expired
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert batcher.skipped >= 1


async def test_a_bad_item_does_not_fail_the_others(batcher, engine, monkeypatch) -> None:
    real = engine.classify

    def fragile(texts, top_k):  # the engine fails on any batch holding the poison text
        if "poison" in texts:
            raise ValueError("cannot encode this")
        return real(texts, top_k)

    monkeypatch.setattr(engine, "classify", fragile)
    results = await asyncio.gather(
        batcher.classify(["where is my parcel"], 3),
        batcher.classify(["poison"], 3),
        batcher.classify(["I want my money back"], 3),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert not isinstance(results[0], BaseException)
    assert results[2].predictions[0].intent == "request_refund"
    # and the consumer lives on
    assert (await batcher.classify(["my card was declined"], 1)).predictions


async def test_full_queue_refuses_at_once(engine) -> None:
    b = Batcher(engine, BatchSettings(max_batch=1, max_queue=2))
    # not started: nothing drains the queue
    waiting = [asyncio.create_task(b.classify(["x"], 1)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(OverloadedError):
        await b.classify(["x"], 1)
    b.start()
    await asyncio.gather(*waiting)
    assert len((await b.classify(["where is my parcel"], 1)).predictions) == 1
    await b.close()


LONG_TEXT = "my order arrived broken and I want to know what to do about it " * 20


async def _started(model_dir, bundled, threads: int, batching: BatchSettings) -> RouterServer:
    server = RouterServer(
        ServerConfig(
            intents=bundled, model_dir=model_dir, port=0, threads=threads, batching=batching
        )
    )
    await server.start()
    return server


async def test_overload_over_grpc_is_resource_exhausted_then_recovers(model_dir, bundled) -> None:
    server = await _started(model_dir, bundled, 1, BatchSettings(max_batch=4, max_queue=4))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            calls = [
                stub.Classify(pb.ClassifyRequest(text=LONG_TEXT), timeout=60) for _ in range(64)
            ]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            codes = [o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
            answered = [o for o in outcomes if not isinstance(o, BaseException)]
            assert codes and set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert answered  # the admitted ones were served
            # load has dropped: every request is answered again
            for text in TEXTS:
                reply = await stub.Classify(pb.ClassifyRequest(text=text), timeout=30)
                assert reply.intent != ""
    finally:
        await server.stop(grace=0)


async def test_stop_lets_in_flight_requests_finish(model_dir, bundled) -> None:
    server = await _started(model_dir, bundled, 2, BatchSettings(max_batch=2, max_queue=64))
    assert server.batcher is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.IntentRouterStub(channel)
        calls = [
            asyncio.ensure_future(stub.Classify(pb.ClassifyRequest(text=LONG_TEXT), timeout=60))
            for _ in range(16)
        ]
        while server.batcher.depth < 8:  # accepted and waiting for the model
            await asyncio.sleep(0.005)
        queued = server.batcher.depth
        await server.stop(grace=30)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    answered = [o for o in outcomes if isinstance(o, pb.ClassifyResponse)]
    # every accepted request is answered; calls gRPC had not handed to a handler yet
    # when the stop began are cancelled by gRPC itself, never refused by the batcher
    assert len(answered) >= queued
    assert {o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)} <= {
        grpc.StatusCode.CANCELLED
    }
    assert all(a.intent == answered[0].intent != "" for a in answered)
