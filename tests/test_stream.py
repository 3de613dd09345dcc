"""ClassifyStream on real grpc.aio servers with the fake encoder: ids echoed, the same
answers as Classify, per-text errors that do not end the stream, flow control against
a caller that never reads, cancellation, deadlines, metrics and tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import grpc
import pytest
from fakes import serving_fake
from helpers import running, wait_for

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.serving.server import ServerConfig
from router.serving.service import Limits

STREAM = "/router.api.v1.IntentRouter/ClassifyStream"
TEXTS = [
    "where is my parcel",
    "I want my money back",
    "change my delivery address",
    "tell me a joke about cats",
    "cancel my order please",
]


async def requests_of(
    items: Iterable[pb.ClassifyStreamRequest],
) -> AsyncIterator[pb.ClassifyStreamRequest]:
    for item in items:
        yield item


def sample(server, name: str, **labels: str) -> float:
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


def streams_ended(server, code: str) -> float:
    """How many ClassifyStream calls ``server`` counts as ended with status ``code``."""
    return sample(server, "intent_router_requests_total", method="ClassifyStream", code=code)


async def test_results_echo_ids_and_match_classify(fake_stub) -> None:
    texts = TEXTS * 40
    sent = [pb.ClassifyStreamRequest(id=f"n{i}", text=t, top_k=2) for i, t in enumerate(texts)]
    got = {r.id: r async for r in fake_stub.ClassifyStream(requests_of(sent))}
    assert set(got) == {r.id for r in sent}
    for i, text in enumerate(TEXTS):
        single = await fake_stub.Classify(pb.ClassifyRequest(text=text, top_k=2))
        result = got[f"n{i}"].result
        assert not got[f"n{i}"].error
        assert (result.intent, result.reason) == (single.intent, single.reason)
        # the same up to float32 rounding: the batch a text shares moves its last bits
        assert result.score == pytest.approx(single.score, abs=1e-5)
        assert [a.intent for a in result.alternatives] == [a.intent for a in single.alternatives]


async def test_a_refused_text_gets_an_error_and_the_stream_goes_on(fake_stub) -> None:
    sent = [
        pb.ClassifyStreamRequest(id="ok1", text="where is my parcel"),
        pb.ClassifyStreamRequest(id="blank", text="   "),
        pb.ClassifyStreamRequest(id="long", text="x" * 20_001),
        pb.ClassifyStreamRequest(id="topk", text="refund", top_k=99),
        pb.ClassifyStreamRequest(id="subject-only", text="", subject="refund my order"),
        pb.ClassifyStreamRequest(id="ok2", text="I want my money back"),
        pb.ClassifyStreamRequest(id="i" * 500_000, text="where is my parcel"),
    ]
    got = {r.id: r async for r in fake_stub.ClassifyStream(requests_of(sent))}
    # a huge id is refused and echoed cut: ids cannot hold the server's memory
    assert got["i" * 256].error == "INVALID_ARGUMENT: id: 500000 characters exceed the limit of 256"
    assert got["blank"].error.startswith("INVALID_ARGUMENT: text: must not be empty")
    assert got["long"].error.startswith("INVALID_ARGUMENT: text: 20001 characters exceed")
    assert got["topk"].error.startswith("INVALID_ARGUMENT: top_k")
    for ok in ("ok1", "ok2", "subject-only"):
        assert not got[ok].error and got[ok].result.alternatives, ok
    assert not got["blank"].HasField("result")


async def test_a_malformed_message_gets_an_error_in_the_stream(fake_channel) -> None:
    call = fake_channel.stream_stream(
        STREAM, request_serializer=lambda b: b,
        response_deserializer=pb.ClassifyStreamResponse.FromString,
    )  # fmt: skip
    good = pb.ClassifyStreamRequest(id="g", text="where is my parcel").SerializeToString()

    async def raw() -> AsyncIterator[bytes]:
        for message in (good, b"\x12\x03\xff\xfe\xfd", good.replace(b"\n\x01g", b"\n\x01h")):
            yield message

    got = [r async for r in call(raw())]
    assert sorted(r.id for r in got) == ["", "g", "h"]
    bad = next(r for r in got if not r.id)
    assert bad.error.startswith("INVALID_ARGUMENT: malformed request")


async def test_a_caller_that_never_reads_is_not_read_from(bundled) -> None:
    """Flow control: the server reads at most ``max_stream_in_flight`` texts ahead of the
    results written; a producer that never reads results is held back by gRPC."""
    encoder = serving_fake()
    limits = Limits(max_stream_in_flight=8)
    total = 5_000
    produced = [0]

    async def producer() -> AsyncIterator[pb.ClassifyStreamRequest]:
        for i in range(total):
            produced[0] += 1
            yield pb.ClassifyStreamRequest(id=str(i), text=f"where is my parcel number {i}")

    config = ServerConfig(intents=bundled, encoder=encoder, port=0, limits=limits)
    async with running(config) as served:
        # no BDP probing: the client's receive window stays at its initial size
        options = [("grpc.http2.bdp_probe", 0)]
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{served.server.port}", options=options
        ) as channel:
            call = pb_grpc.IntentRouterStub(channel).ClassifyStream(producer())
            server = served.server

            service = served.server.service
            assert service is not None

            def stuck() -> bool:  # every slot held by an answer that cannot be written
                limit = limits.max_stream_in_flight
                return service.stream_in_flight == service.stream_unwritten == limit

            # the writes back are blocked (the caller's receive window is full) and every
            # slot is taken: the server reads no further, with a few hundred texts done
            await wait_for(stuck)
            assert encoder.texts_seen < total // 5 and produced[0] < total
            assert sample(server, "intent_router_stream_texts") <= limits.max_stream_in_flight
            # reading resumes the flow: every text is answered, once
            ids = [r.id async for r in call]
            assert sorted(ids, key=int) == [str(i) for i in range(total)]
            await wait_for(lambda: sample(server, "intent_router_stream_texts") == 0)
            assert streams_ended(server, "OK") == 1


async def test_cancelling_a_stream_drops_its_queued_texts(bundled) -> None:
    encoder = serving_fake()
    async with running(ServerConfig(intents=bundled, encoder=encoder, port=0)) as served:
        server = served.server
        try:
            encoder.hold()
            sent = [pb.ClassifyStreamRequest(id=str(i), text=f"refund {i}") for i in range(40)]
            call = served.stub.ClassifyStream(requests_of(sent))
            await encoder.held()
            await wait_for(lambda: sample(server, "intent_router_stream_texts") == 40)
            call.cancel()
            await wait_for(lambda: sample(server, "intent_router_stream_texts") == 0)
            await wait_for(lambda: streams_ended(server, "CANCELLED") == 1)
            encoder.release()
            assert server.batcher is not None
            await wait_for(lambda: server.batcher.skipped_texts["cancelled"] > 0)
            calls = encoder.calls
            # the server goes on serving, and nothing of the cancelled stream runs again
            reply = await served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
            assert reply.alternatives
            assert encoder.calls <= calls + 1
        finally:
            encoder.release()


async def test_a_stream_past_its_deadline_ends_with_deadline_exceeded(bundled) -> None:
    encoder = serving_fake()
    async with running(ServerConfig(intents=bundled, encoder=encoder, port=0)) as served:
        try:
            encoder.hold()
            sent = [pb.ClassifyStreamRequest(id="a", text="refund please")]
            call = served.stub.ClassifyStream(requests_of(sent), timeout=0.5)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in call:
                    pass
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            server = served.server
            await wait_for(lambda: streams_ended(server, "DEADLINE_EXCEEDED") == 1)
            await wait_for(lambda: sample(server, "intent_router_stream_texts") == 0)
        finally:
            encoder.release()


async def test_a_stream_needs_a_token_like_classify(bundled, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("reader-token\n")
    config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0, auth_tokens=tokens)
    async with running(config) as served:
        sent = [pb.ClassifyStreamRequest(id="a", text="where is my parcel")]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in served.stub.ClassifyStream(requests_of(sent)):
                pass
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        metadata = (("authorization", "Bearer reader-token"),)
        got = [r async for r in served.stub.ClassifyStream(requests_of(sent), metadata=metadata)]
        assert [r.id for r in got] == ["a"] and not got[0].error
        server = served.server
        assert streams_ended(server, "UNAUTHENTICATED") == 1
        assert streams_ended(server, "OK") == 1


async def test_streamed_texts_share_the_bulk_queue_and_classify_still_passes(bundled) -> None:
    """A stream's texts queue as ClassifyBatch texts do: a Classify sent behind a full
    stream runs in the model call right after the one running, not after the stream."""
    encoder = serving_fake()
    calls: list[list[str]] = []
    embed = encoder.embed

    def recorded(texts, spans=None):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return embed(texts, spans)

    encoder.embed = recorded  # type: ignore[method-assign]
    async with running(ServerConfig(intents=bundled, encoder=encoder, port=0)) as served:
        server = served.server
        assert server.batcher is not None
        try:
            await wait_for(lambda: server.engine is not None and server.engine.ready)
            calls.clear()
            encoder.hold()
            sent = [
                pb.ClassifyStreamRequest(id=str(i), text=f"refund order {i}") for i in range(64)
            ]
            call = served.stub.ClassifyStream(requests_of(sent))
            await encoder.held()
            await wait_for(lambda: server.batcher.bulk_depth >= 32)
            single = asyncio.ensure_future(
                served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
            )
            await wait_for(lambda: server.batcher.interactive_depth == 1)
            encoder.release()
            await single
            assert len([r async for r in call]) == 64
            at = next(i for i, texts in enumerate(calls) if "where is my parcel" in texts)
            assert at == 1  # right after the call that was running
            assert any(t.startswith("refund order") for c in calls[at + 1 :] for t in c)
        finally:
            encoder.release()


async def test_multi_intent_tickets_answer_as_classify_batch_does(fake_stub) -> None:
    tickets = [
        ("Refund", "The charger arrived broken, refund it. Also change my delivery address."),
        ("", "where is my parcel"),
        ("Order 123", "Hi,\n\nI want my money back.\n\nThanks,\nAnn"),
    ]
    sent = [
        pb.ClassifyStreamRequest(id=str(i), subject=s, text=t, multi_intent=True)
        for i, (s, t) in enumerate(tickets)
    ]
    got = {r.id: r for r in [r async for r in fake_stub.ClassifyStream(requests_of(sent))]}
    batch = await fake_stub.ClassifyBatch(
        pb.ClassifyBatchRequest(
            texts=[t for _, t in tickets], subjects=[s for s, _ in tickets], multi_intent=True
        )
    )
    for i, expected in enumerate(batch.results):
        result = got[str(i)].result
        assert result.intent == expected.intent
        assert [
            (m.intent, m.evidence.text, m.evidence.start, m.evidence.field) for m in result.matches
        ] == [
            (m.intent, m.evidence.text, m.evidence.start, m.evidence.field)
            for m in expected.matches
        ]
    assert got["0"].result.matches  # a ticket answers with its matches and their evidence


async def test_a_failure_inside_the_server_answers_that_text_internal(bundled, caplog) -> None:
    async with running(ServerConfig(intents=bundled, encoder=serving_fake(), port=0)) as served:
        batcher = served.server.batcher
        assert batcher is not None
        original = batcher.classify_many

        async def failing(texts, *args, **kwargs):  # type: ignore[no-untyped-def]
            if "boom" in texts[0]:
                raise RuntimeError("a bug")
            return await original(texts, *args, **kwargs)

        batcher.classify_many = failing  # type: ignore[method-assign]
        sent = [pb.ClassifyStreamRequest(id=i, text=t) for i, t in
                (("a", "where is my parcel"), ("b", "boom"), ("c", "refund please"))]  # fmt: skip
        got = {r.id: r async for r in served.stub.ClassifyStream(requests_of(sent))}
        assert got["b"].error == "INTERNAL: internal error"
        assert not got["a"].error and not got["c"].error
        assert any("internal error" in r.message for r in caplog.records)


async def test_a_stream_past_the_servers_limit_is_refused_and_the_others_go_on(bundled) -> None:
    limits = Limits(max_streams=2)
    config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0, limits=limits)
    async with running(config) as served:
        held = asyncio.Event()

        async def waiting(text_id: str) -> AsyncIterator[pb.ClassifyStreamRequest]:
            yield pb.ClassifyStreamRequest(id=text_id, text="where is my parcel")
            await held.wait()  # the stream stays open

        service = served.server.service
        assert service is not None
        calls = [served.stub.ClassifyStream(waiting(str(i))) for i in range(2)]
        firsts = [await call.read() for call in calls]
        assert [r.id for r in firsts] == ["0", "1"] and service.streams_open == 2
        refused = served.stub.ClassifyStream(requests_of([pb.ClassifyStreamRequest(id="x")]))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await refused.read()
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-streams" in (caught.value.details() or "")
        reply = await served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
        assert reply.intent  # Classify is answered meanwhile
        held.set()
        for call in calls:
            assert await call.read() == grpc.aio.EOF
        await wait_for(lambda: service.streams_open == 0)
        again = served.stub.ClassifyStream(
            requests_of([pb.ClassifyStreamRequest(id="y", text="where is my parcel")])
        )
        assert [r.id async for r in again] == ["y"]  # a slot is free again


async def test_an_idle_stream_ends_and_frees_its_place_but_not_while_a_text_is_in_flight(
    bundled,
) -> None:
    limits = Limits(max_streams=1, stream_idle_seconds=0.5)
    encoder = serving_fake()
    config = ServerConfig(intents=bundled, encoder=encoder, port=0, limits=limits)
    async with running(config) as served:
        held = asyncio.Event()

        async def one_then_nothing() -> AsyncIterator[pb.ClassifyStreamRequest]:
            yield pb.ClassifyStreamRequest(id="a", text="where is my parcel")
            await held.wait()  # open, silent

        encoder.hold()
        try:
            call = served.stub.ClassifyStream(one_then_nothing(), timeout=10)
            await asyncio.sleep(1.0)  # twice the idle limit, with "a" in the model
        finally:
            encoder.release()
        assert (await call.read()).id == "a"  # answered: in flight is not idle
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await call.read()  # then nothing more comes
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "--stream-idle-seconds" in (ended.value.details() or "")
        service = served.server.service
        assert service is not None
        await wait_for(lambda: service.streams_open == 0)
        again = served.stub.ClassifyStream(
            requests_of([pb.ClassifyStreamRequest(id="b", text="where is my parcel")])
        )
        assert [r.id async for r in again] == ["b"]  # its place is free
        held.set()
