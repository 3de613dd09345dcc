"""The micro-batcher: batches form under load, gone callers are skipped, overload is
refused at once and the server recovers, one bad item never fails the others.

All on the fake encoder: ``hold()`` keeps the consumer busy inside the model for as
long as a test needs, so what queues behind it is decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
import time
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

    def fragile(texts, top_k, **kwargs):  # the engine fails on any batch holding the poison text
        if "poison" in texts:
            raise ValueError("cannot encode this")
        return real(texts, top_k, **kwargs)

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


# ------------------------------------------------- interactive beside bulk (fairness)


def _record_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The texts of every engine call, in the order the consumer made them."""
    calls: list[list[str]] = []
    real = engine.classify

    def recording(texts, top_k, **kwargs):
        calls.append(list(texts))
        return real(texts, top_k, **kwargs)

    monkeypatch.setattr(engine, "classify", recording)
    return calls


BULK = [f"where is my parcel number {i}" for i in range(64)]  # 8 chunks of 8


async def test_a_bulk_backlog_neither_refuses_nor_delays_interactive_requests(
    fake_engine, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    calls = _record_batches(fake_engine, monkeypatch)
    b = Batcher(fake_engine, BatchSettings(max_batch=8, max_queue=2))
    b.start()
    try:
        fake_encoder.hold()
        first = asyncio.create_task(b.classify(["hello there"], 1))
        await fake_encoder.held()  # the model is busy; what follows queues
        bulk = [asyncio.create_task(b.classify_many(BULK, 1)) for _ in range(4)]
        await wait_for(lambda: b.depth == 32 or any(t.done() for t in bulk), timeout=5)
        # 32 bulk chunks wait, yet the interactive queue (2) is empty: admitted
        single = asyncio.create_task(b.classify(["my card was declined"], 1))
        await wait_for(lambda: b.depth == 33 or single.done(), timeout=5)
        fake_encoder.release()
        reply = await single
        assert reply.predictions[0].intent == "payment_failed"
        await asyncio.gather(first, *bulk)
        # it ran right after the held batch and at most one bulk batch, not after 32
        assert calls.index(["my card was declined"]) <= 2
        assert len(calls) == 1 + 32 + 1
    finally:
        fake_encoder.release()
        await b.close()


async def test_interactive_and_bulk_take_turns(
    fake_engine, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    calls = _record_batches(fake_engine, monkeypatch)
    b = Batcher(fake_engine, BatchSettings(max_batch=1, max_queue=64))
    b.start()
    try:
        fake_encoder.hold()
        first = asyncio.create_task(b.classify(["hello there"], 1))
        await fake_encoder.held()
        bulk = asyncio.create_task(b.classify_many([f"bulk {i}" for i in range(4)], 1))
        singles = [asyncio.create_task(b.classify([f"single {i}"], 1)) for i in range(4)]
        await wait_for(lambda: b.depth == 8)
        fake_encoder.release()
        await asyncio.gather(first, bulk, *singles)
        kinds = [texts[0].split()[0] for texts in calls[1:]]
        # neither queue starves the other: they alternate while both hold work
        assert kinds == ["single", "bulk"] * 4 or kinds == ["bulk", "single"] * 4, kinds
    finally:
        fake_encoder.release()
        await b.close()


async def test_a_full_bulk_queue_refuses_a_whole_request_and_not_interactive(
    fake_engine, fake_encoder: FakeEncoder
) -> None:
    b = Batcher(fake_engine, BatchSettings(max_batch=8, max_queue=4, max_bulk_queue=64))
    b.start()
    try:
        fake_encoder.hold()
        first = asyncio.create_task(b.classify(["hello there"], 1))
        await fake_encoder.held()
        admitted = asyncio.create_task(b.classify_many(BULK, 1))  # 64: the queue is full
        await wait_for(lambda: b.bulk_depth == 64)
        with pytest.raises(OverloadedError, match="batch texts queued"):
            await b.classify_many(["one more"], 1)
        assert b.bulk_depth == 64  # nothing of the refused request was queued
        single = asyncio.create_task(b.classify(["where is my parcel"], 1))
        fake_encoder.release()
        assert (await single).predictions[0].intent == "track_delivery"
        answers, _ = await admitted
        assert len(answers) == len(BULK)
        await first
        assert b.bulk_depth == 0
        assert len((await b.classify_many(BULK, 1))[0]) == len(BULK)  # admitted again
    finally:
        fake_encoder.release()
        await b.close()


async def test_when_one_chunk_fails_the_others_are_skipped(
    fake_engine, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    real = fake_engine.classify
    ran: list[int] = []  # chunks that reached the model

    def fragile(texts, top_k, **kwargs):
        if "poison" in texts:
            raise ValueError("cannot encode this")
        ran.append(len(texts))
        return real(texts, top_k, **kwargs)

    monkeypatch.setattr(fake_engine, "classify", fragile)
    b = Batcher(fake_engine, BatchSettings(max_batch=8, max_queue=64))
    b.start()
    try:
        fake_encoder.hold()
        # 5 chunks, shortest first: "poison" is in the first, which fails before the
        # model; the model is held, so at most the second has started when the failure
        # reaches the caller, and the last three are still queued
        texts = ["poison", *(f"where is my parcel number {i:03d}" for i in range(39))]
        with pytest.raises(ValueError, match="cannot encode"):
            await b.classify_many(texts, 1)
        fake_encoder.release()
        await wait_for(lambda: b.depth == 0 and b.skipped + len(ran) == 4, timeout=5)
        assert b.skipped_requests["cancelled"] >= 3  # (it was 0: all four ran)
        assert len(ran) <= 1
        assert b.skipped_texts["cancelled"] == 8 * b.skipped
        assert (await b.classify(["where is my parcel"], 1)).predictions
    finally:
        fake_encoder.release()
        await b.close()


async def test_skips_are_counted_by_reason(batcher, fake_encoder: FakeEncoder) -> None:
    fake_encoder.hold()
    busy = asyncio.create_task(batcher.classify(["hello there"], 1))
    await fake_encoder.held()
    expired = asyncio.create_task(batcher.classify_many(["a", "b"], 1, timeout=0.0))
    cancelled = asyncio.create_task(batcher.classify(["c"], 1))
    await wait_for(lambda: batcher.depth == 2)
    cancelled.cancel()
    fake_encoder.release()
    await busy
    with pytest.raises(CallerGoneError, match="deadline"):
        await expired
    await wait_for(lambda: batcher.skipped == 2)
    assert batcher.skipped_requests == {"deadline": 1, "cancelled": 1}
    assert batcher.skipped_texts == {"deadline": 2, "cancelled": 1}


# ------------------------------------------------------------ one batch's memory


async def test_long_texts_go_to_the_model_two_at_a_time(
    fake_engine, fake_encoder: FakeEncoder
) -> None:
    """The model's working memory grows with tokens x row width: a batch holds at most
    two texts of the model's 256 tokens, counting a token a character, so that text
    that takes a token a character (punctuation, Chinese) cannot overshoot."""
    sizes: list[int] = []
    b = Batcher(fake_engine, BatchSettings(), on_batch=sizes.append)
    b.start()
    try:
        fake_encoder.hold()
        first = asyncio.create_task(b.classify(["hello there"], 1))
        await fake_encoder.held()
        long_texts = ["!" * 300, "退款" * 150, "where is my parcel " * 60]
        singles = [asyncio.create_task(b.classify([t], 1)) for t in long_texts * 4]
        many = asyncio.create_task(b.classify_many(long_texts * 8, 1))
        short = asyncio.create_task(b.classify_many(["where is my parcel"] * 64, 1))
        await wait_for(lambda: b.depth >= 12 + 2)  # queued: 12 singles and the chunks
        fake_encoder.release()
        await asyncio.gather(first, *singles, many, short)
        assert max(sizes[1:]) == 32  # short texts still share batches of 32
        long_batches = [n for n in sizes[1:] if n != 32]
        assert long_batches and max(long_batches) <= 2
        assert sum(long_batches) == 12 + 24
    finally:
        fake_encoder.release()
        await b.close()


# ------------------------------------------- long engine calls pause for interactive work

#: One ticket of 80 sentences: about 80 passages (windows of two, overlapping by one),
#: several engine slices (``PAUSE_ROWS``).
LONG_TICKET = " ".join(f"My parcel number {i} has not arrived yet." for i in range(80))


def _record_embeds(encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The texts of every model call, in order."""
    calls: list[list[str]] = []
    real = encoder.embed

    def recording(texts, spans=None):
        calls.append(list(texts))
        return real(texts, spans)

    monkeypatch.setattr(encoder, "embed", recording)
    return calls


@pytest.mark.parametrize("bulk", [True, False], ids=["ClassifyBatch", "Classify"])
async def test_a_long_ticket_call_lets_waiting_classify_calls_through(
    batcher: Batcher, fake_encoder: FakeEncoder, monkeypatch, bulk: bool
) -> None:
    embeds = _record_embeds(fake_encoder, monkeypatch)
    fake_encoder.hold()
    if bulk:
        ticket = asyncio.create_task(batcher.classify_many([LONG_TICKET], 3, subjects=[""]))
    else:
        ticket = asyncio.create_task(batcher.classify([LONG_TICKET], 3, subjects=[""]))
    await fake_encoder.held()  # inside the ticket's first slice
    single = asyncio.create_task(batcher.classify(["my card was declined"], 1))
    await wait_for(lambda: batcher.interactive_depth == 1)
    fake_encoder.release()
    reply = await single
    assert reply.predictions[0].intent == "payment_failed"
    assert not ticket.done()  # answered while the ticket's call was still running
    await ticket
    # the single request ran right after the ticket's first slice, not after all
    assert embeds.index(["my card was declined"]) == 1
    assert len(embeds) >= 3  # the ticket took several slices


async def test_a_paused_call_answers_as_an_unpaused_one(
    fake_engine, fake_encoder: FakeEncoder
) -> None:
    tickets = [LONG_TICKET, "I want my money back. " * 40, "where is my parcel"]
    plain = fake_engine.classify(tickets, 3, subjects=["", "refund", ""])
    pauses = []

    def pause() -> None:  # what serving others in the pause costs: not this call's time
        pauses.append(1)
        time.sleep(0.2)

    paused = fake_engine.classify(tickets, 3, subjects=["", "refund", ""], pause=pause)
    assert len(pauses) >= 2
    slept_ms = 200 * len(pauses)  # the call itself, on the fake encoder, takes far less
    assert paused.timings.encode_ms < slept_ms and paused.timings.total_ms < slept_ms
    assert [p.intent for p in paused.predictions] == [p.intent for p in plain.predictions]
    for a, b in zip(paused.predictions, plain.predictions, strict=True):
        assert [m.intent for m in a.matches] == [m.intent for m in b.matches]
        assert a.score == pytest.approx(b.score, abs=1e-5)


async def test_a_waiting_ticket_keeps_its_place_while_plain_requests_run_in_the_pause(
    batcher: Batcher, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    embeds = _record_embeds(fake_encoder, monkeypatch)
    fake_encoder.hold()
    first = asyncio.create_task(batcher.classify([LONG_TICKET], 3, subjects=[""]))
    await fake_encoder.held()
    second = asyncio.create_task(
        batcher.classify(["I want my money back. " * 80], 3, subjects=[""])
    )
    await wait_for(lambda: batcher.interactive_depth == 1)
    single = asyncio.create_task(batcher.classify(["my card was declined"], 1))
    await wait_for(lambda: batcher.interactive_depth == 2)
    fake_encoder.release()
    assert (await single).predictions[0].intent == "payment_failed"
    assert not first.done()  # the plain request went ahead, inside the first call
    await asyncio.gather(first, second)
    # the plain request ran in the first pause, ahead of the ticket queued before it,
    # and that ticket only once the first one was done
    assert embeds.index(["my card was declined"]) == 1
    firsts = [i for i, texts in enumerate(embeds) if any("parcel" in t for t in texts)]
    seconds = [i for i, texts in enumerate(embeds) if any("money" in t for t in texts)]
    assert max(firsts) < min(seconds), (firsts, seconds)


async def test_a_long_call_stops_once_every_caller_has_gone(
    batcher: Batcher, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    embeds = _record_embeds(fake_encoder, monkeypatch)
    fake_encoder.hold()
    ticket = asyncio.create_task(batcher.classify([LONG_TICKET], 3, subjects=[""]))
    await fake_encoder.held()  # inside the first slice
    ticket.cancel()
    fake_encoder.release()
    with pytest.raises(asyncio.CancelledError):
        await ticket
    await wait_for(lambda: batcher.abandoned_calls == 1)
    assert len(embeds) == 1  # stopped at the first pause, not after every slice
    assert batcher.skipped_requests["cancelled"] == 0  # it had left the queue: not a skip
    reply = await batcher.classify(["where is my parcel"], 1)  # and the batcher goes on
    assert reply.predictions[0].intent == "track_delivery"


async def test_a_plain_request_batched_with_a_ticket_is_answered_before_the_tickets_slices(
    batcher: Batcher, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    embeds = _record_embeds(fake_encoder, monkeypatch)
    fake_encoder.hold()
    first = asyncio.create_task(batcher.classify(["hello there"], 1))
    await fake_encoder.held()
    ticket = asyncio.create_task(batcher.classify([LONG_TICKET], 3, subjects=[""]))
    single = asyncio.create_task(batcher.classify(["my card was declined"], 1))
    await wait_for(lambda: batcher.interactive_depth == 2)  # one batch: the ticket, the text
    fake_encoder.delay = 0.05  # each slice of the ticket takes a while
    fake_encoder.release()
    assert (await single).predictions[0].intent == "payment_failed"
    assert not ticket.done()  # answered before the ticket's slices, not after them
    assert embeds[1] == ["my card was declined"]
    ticket.cancel()  # and the ticket's call then stops with its own caller
    await wait_for(lambda: batcher.abandoned_calls == 1)
    await first


async def test_a_long_call_stops_when_its_callers_leave_during_a_pause(
    batcher: Batcher, fake_encoder: FakeEncoder, monkeypatch
) -> None:
    """The callers of the long call go while the pause's batch runs: the call stops right
    after that batch, without one more slice for nobody."""
    loop = asyncio.get_running_loop()
    real = fake_encoder.embed
    calls: list[list[str]] = []
    ticket: asyncio.Task[object] | None = None

    def embed(texts, spans=None):
        calls.append(list(texts))
        if texts == ["my card was declined"]:  # the pause's batch: the ticket's caller goes
            assert ticket is not None
            loop.call_soon_threadsafe(ticket.cancel)
            deadline = time.monotonic() + 5
            while not ticket.done() and time.monotonic() < deadline:
                time.sleep(0.005)
        return real(texts, spans)

    monkeypatch.setattr(fake_encoder, "embed", embed)
    fake_encoder.hold()
    ticket = asyncio.create_task(batcher.classify([LONG_TICKET], 3, subjects=[""]))
    await fake_encoder.held()
    single = asyncio.create_task(batcher.classify(["my card was declined"], 1))
    await wait_for(lambda: batcher.interactive_depth == 1)
    fake_encoder.release()
    assert (await single).predictions[0].intent == "payment_failed"
    await wait_for(lambda: batcher.abandoned_calls == 1)
    assert calls[-1] == ["my card was declined"]  # no slice of the ticket after it
