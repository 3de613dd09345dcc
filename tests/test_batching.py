"""The micro-batcher: batches form under load, gone callers are skipped, overload is
refused at once and the server recovers, one bad item never fails the others.

All on the fake encoder: ``hold()`` keeps the consumer busy inside the model for as
long as a test needs, so what queues behind it is decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from fakes import FakeEncoder, serving_fake
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import running, wait_for

from router.api.v1 import router_pb2 as pb
from router.errors import CallerGoneError, OverloadedError
from router.routing.engine import Engine
from router.serving.batching import Batcher, BatchSettings
from router.serving.server import ServerConfig

TEXTS = [
    "where is my parcel",
    "I want my money back",
    "my card was declined",
    "please cancel my order",
    "the screen is cracked",
    "I can't log in",
]


@pytest.fixture
async def batcher(fake_engine: Engine) -> AsyncIterator[Batcher]:
    b = Batcher(fake_engine, BatchSettings(max_batch=8, max_queue=64))
    b.start()
    yield b
    fake_engine.encoder.release()  # a failed test may leave it held
    await b.close()


async def test_concurrent_requests_share_batches_and_match_single_answers(
    batcher, fake_engine, fake_encoder: FakeEncoder
) -> None:
    texts = TEXTS * 8
    fake_encoder.hold()
    answering = asyncio.gather(*(batcher.classify([t], 3) for t in texts))
    await fake_encoder.held()  # the consumer runs a first batch; every other request queues
    assert batcher.depth >= len(texts) - 8  # all queued but the batch in the model
    fake_encoder.release()
    results = await answering
    # the first batch took 1 to 8 of the 48 requests, then full batches of 8: 6 or 7 in all
    assert batcher.batches <= 7
    alone = fake_engine.classify(texts, 3).predictions
    for result, single in zip(results, alone, strict=True):
        (p,) = result.predictions
        assert p.intent == single.intent
        assert p.score == pytest.approx(single.score, abs=1e-5)


async def test_top_k_is_per_request_within_a_batch(batcher, fake_encoder: FakeEncoder) -> None:
    fake_encoder.hold()
    first = asyncio.create_task(batcher.classify([TEXTS[2]], 3))
    await fake_encoder.held()  # the consumer is busy: the next two queue together
    pair = asyncio.gather(batcher.classify([TEXTS[0]], 1), batcher.classify([TEXTS[1]], 5))
    await wait_for(lambda: batcher.depth == 2)
    fake_encoder.release()
    one, five = await pair
    await first
    assert batcher.batches == 2  # the two requests were answered by one batch
    assert len(one.predictions[0].alternatives) == 1
    assert len(five.predictions[0].alternatives) == 5


async def test_large_batches_keep_order(batcher, fake_engine) -> None:
    texts = [t + "!" * i for i, t in enumerate(TEXTS * 5)]
    answers, timings = await batcher.classify_many(texts, 2)
    expected = fake_engine.classify(texts, 2).predictions
    assert [a.prediction.intent for a in answers] == [p.intent for p in expected]
    assert timings.encode_ms > 0


async def test_callers_gone_are_skipped(batcher, fake_encoder: FakeEncoder) -> None:
    fake_encoder.hold()
    busy = asyncio.create_task(batcher.classify(["a long text " * 100] * 8, 3))
    await fake_encoder.held()  # the consumer is inside the model with that batch
    seen = fake_encoder.texts_seen
    expired = asyncio.create_task(batcher.classify(["where is my parcel"], 3, timeout=0.0))
    cancelled = asyncio.create_task(batcher.classify(["I want my money back"], 3))
    await asyncio.sleep(0)  # one loop step: both tasks run up to their queued futures
    assert batcher.depth == 2
    cancelled.cancel()
    fake_encoder.release()
    await busy
    with pytest.raises(CallerGoneError):
        await expired
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert batcher.skipped == 2
    assert fake_encoder.texts_seen == seen  # neither reached the model
    assert (await batcher.classify(["where is my parcel"], 1)).predictions  # and it goes on


async def test_a_bad_item_does_not_fail_the_others(batcher, fake_engine, monkeypatch) -> None:
    engine = fake_engine
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


async def test_full_queue_refuses_at_once(fake_engine) -> None:
    b = Batcher(fake_engine, BatchSettings(max_batch=1, max_queue=2))
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


async def test_overload_over_grpc_is_resource_exhausted_then_recovers(bundled) -> None:
    encoder = serving_fake()
    config = ServerConfig(
        intents=bundled, encoder=encoder, port=0, batching=BatchSettings(max_batch=4, max_queue=4)
    )
    async with running(config) as served:
        encoder.hold()  # admitted requests wait in the model and the queue; the rest are refused
        calls = [
            asyncio.ensure_future(
                served.stub.Classify(pb.ClassifyRequest(text=LONG_TEXT), timeout=60)
            )
            for _ in range(64)
        ]
        done, _ = await asyncio.wait(calls, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        # nothing can be answered while the model is held: whatever ended was refused
        assert done and all(isinstance(c.exception(), grpc.aio.AioRpcError) for c in done)
        encoder.release()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        codes = [o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        answered = [o for o in outcomes if not isinstance(o, BaseException)]
        assert codes and set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert len(answered) >= 4  # at least the full queue was served
        assert len(answered) + len(codes) == len(calls)
        # load has dropped: every request is answered again
        for text in TEXTS:
            reply = await served.stub.Classify(pb.ClassifyRequest(text=text), timeout=30)
            assert reply.intent != ""


async def test_stop_lets_in_flight_requests_finish(bundled) -> None:
    encoder = serving_fake()
    config = ServerConfig(
        intents=bundled, encoder=encoder, port=0, batching=BatchSettings(max_batch=1, max_queue=64)
    )
    async with running(config) as served:
        server = served.server
        assert server.batcher is not None
        batcher = server.batcher
        encoder.hold()
        calls = [
            asyncio.ensure_future(
                served.stub.Classify(pb.ClassifyRequest(text=LONG_TEXT), timeout=60)
            )
            for _ in range(16)
        ]
        await encoder.held()  # one request is in the model
        await wait_for(lambda: batcher.depth == 15)  # and every other one is queued
        stopping = asyncio.create_task(server.stop(grace=30))
        health = health_pb2_grpc.HealthStub(served.channel)
        for _ in range(1000):  # once gRPC's stop has begun, new calls are refused
            try:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            except grpc.aio.AioRpcError as refused:
                # grpc.aio refuses a call that arrives while it stops with either code
                assert refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
                break
        else:
            raise AssertionError("the server still takes new calls")
        assert not any(c.done() for c in calls)  # nothing answered before the stop began
        encoder.release()
        await stopping
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    # every accepted request is answered during the drain, none refused or cancelled
    assert all(isinstance(o, pb.ClassifyResponse) for o in outcomes), outcomes
    assert all(o.intent == outcomes[0].intent != "" for o in outcomes)
