"""The gRPC API against a real server on 127.0.0.1 with the bundled intents.

Status codes, validation, fields, health, reflection and metrics run on the fake
encoder (``fake_stub``); what only the real model can show (a joke is unknown,
negation on real vectors) runs on the real one (``stub``, marked ``model``).
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from fakes import SERVING_DIMENSION, FakeEncoder, serving_fake
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from helpers import running, wait_for

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.model.contract import DIMENSION, MODEL_ID
from router.routing.engine import Engine
from router.routing.intents import IntentSet
from router.serving.batching import BatchSettings
from router.serving.server import RouterServer, ServerConfig
from router.serving.service import Limits

#: No word of it is in the bundled intents: the fake scores it far below the threshold.
UNRELATED = "zebra quantum xylophone"


async def test_real_model_routes_the_bundled_intents(stub, bundled: IntentSet) -> None:
    reply = await stub.Classify(pb.ClassifyRequest(text="where is my parcel", top_k=3))
    assert (reply.intent, reply.reason) == ("track_delivery", "matched")
    assert reply.score >= reply.threshold
    joke = await stub.Classify(pb.ClassifyRequest(text="tell me a joke"))
    assert (joke.intent, joke.reason) == ("unknown", "below_threshold")
    assert joke.score < joke.threshold
    assert joke.alternatives and joke.alternatives[0].intent != "unknown"
    # typed with a Chinese or Japanese input method in full width: read as ASCII
    wide = "Ｉ ｗａｎｔ ａ ｒｅｆｕｎｄ ｆｏｒ ｍｙ ｏｒｄｅｒ"
    reply_wide = await stub.Classify(pb.ClassifyRequest(text=wide))
    plain = await stub.Classify(pb.ClassifyRequest(text="I want a refund for my order"))
    assert (reply_wide.intent, plain.intent) == ("request_refund", "request_refund")
    assert reply_wide.score == pytest.approx(plain.score, abs=1e-4)
    info = await stub.Info(pb.InfoRequest())
    assert (info.model_id, info.dimension) == (MODEL_ID, DIMENSION)
    assert info.revision == reply.revision == joke.revision
    assert info.intent_count == len(bundled.intents)


async def test_classify_routes_and_reports(fake_server, fake_stub, bundled: IntentSet) -> None:
    reply = await fake_stub.Classify(pb.ClassifyRequest(text="where is my parcel", top_k=3))
    assert reply.intent == "track_delivery"
    assert reply.score >= reply.threshold
    assert len(reply.alternatives) == 3
    assert reply.alternatives[0].intent == reply.intent
    assert reply.alternatives[0].score == pytest.approx(reply.score)
    examples = {e for i in bundled.intents for e in i.examples}
    assert all(a.example in examples for a in reply.alternatives)
    runners_up = [a.score for a in reply.alternatives[1:]]
    assert runners_up == sorted(runners_up, reverse=True)
    snapshot = fake_server.engine.snapshot
    assert snapshot.intents.revision == bundled.revision
    assert reply.revision == snapshot.revision
    assert reply.timings.encode_ms > 0
    assert reply.timings.total_ms >= reply.timings.encode_ms


async def test_out_of_scope_is_unknown_with_candidate(fake_stub) -> None:
    reply = await fake_stub.Classify(pb.ClassifyRequest(text=UNRELATED))
    assert (reply.intent, reply.reason) == ("unknown", "below_threshold")
    assert reply.score < reply.threshold
    assert reply.alternatives and reply.alternatives[0].intent != "unknown"
    assert reply.alternatives[0].score == pytest.approx(reply.score)
    assert len(reply.alternatives) == 3  # top_k 0 means the default


async def test_batch_keeps_order_and_matches_single(fake_stub) -> None:
    texts = [
        UNRELATED,
        "where is my parcel",
        "my card was declined at checkout",
        "I want to speak to a real person",
    ]
    batch = await fake_stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=texts, top_k=2))
    assert [r.intent for r in batch.results] == [
        "unknown",
        "track_delivery",
        "payment_failed",
        "human_agent",
    ]
    for text, result in zip(texts, batch.results, strict=True):
        single = await fake_stub.Classify(pb.ClassifyRequest(text=text, top_k=2))
        assert result.intent == single.intent
        assert result.score == pytest.approx(single.score, abs=1e-5)
        assert result.revision == batch.revision
    assert batch.timings.encode_ms > 0


async def test_list_intents_and_info(fake_server, fake_stub, bundled: IntentSet) -> None:
    listed = await fake_stub.ListIntents(pb.ListIntentsRequest())
    assert [i.name for i in listed.intents] == [i.name for i in bundled.intents]
    assert [i.example_count for i in listed.intents] == [len(i.examples) for i in bundled.intents]
    assert [i.description for i in listed.intents] == [i.description for i in bundled.intents]
    snapshot = fake_server.engine.snapshot
    applied = [float(t) for t in snapshot.index.thresholds]
    assert [i.threshold for i in listed.intents] == pytest.approx(applied)
    assert all(-1 <= t <= 1 for t in applied)
    info = await fake_stub.Info(pb.InfoRequest())
    assert info.model_id == FakeEncoder().model_id
    assert info.dimension == SERVING_DIMENSION
    assert info.intent_count == len(bundled.intents)
    assert info.example_count == bundled.example_count
    assert info.revision == listed.revision == snapshot.revision


async def test_health_serving(fake_channel) -> None:
    health = health_pb2_grpc.HealthStub(fake_channel)
    for service in ("", "router.api.v1.IntentRouter"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_the_service(fake_server) -> None:
    # the reflection client is synchronous; run it off the event loop
    def describe() -> tuple[list[str], list[str]]:
        with grpc.insecure_channel(f"127.0.0.1:{fake_server.port}") as ch:
            db = ProtoReflectionDescriptorDatabase(ch)
            services = list(db.get_services())
            from google.protobuf.descriptor_pool import DescriptorPool

            svc = DescriptorPool(db).FindServiceByName("router.api.v1.IntentRouter")
            return services, [m.name for m in svc.methods]

    services, methods = await asyncio.to_thread(describe)
    assert "router.api.v1.IntentRouter" in services
    assert "grpc.health.v1.Health" in services
    assert set(methods) >= {"Classify", "ClassifyBatch", "ListIntents", "Info"}


@pytest.mark.parametrize(
    "call",
    [
        ("Classify", pb.ClassifyRequest(text="")),
        ("Classify", pb.ClassifyRequest(text="   \n\t ")),
        ("Classify", pb.ClassifyRequest(text="\u200b\u200d \ufeff\u2060")),
        ("Classify", pb.ClassifyRequest(text="x" * 20_001)),
        ("Classify", pb.ClassifyRequest(text="hello", top_k=-1)),
        ("Classify", pb.ClassifyRequest(text="hello", top_k=21)),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=[])),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok"] * 513)),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok", " "])),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok", "\u200b"], subjects=["", "\u200c"])),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok"], top_k=99)),
    ],
    ids=[
        "empty",
        "blank",
        "zero-width",
        "too-long",
        "top_k-negative",
        "top_k-too-big",
        "batch-empty",
        "batch-too-big",
        "batch-blank-item",
        "batch-zero-width-ticket",
        "batch-top_k",
    ],
)
async def test_bad_input_is_invalid_argument_and_server_keeps_serving(fake_stub, call) -> None:
    method, request = call
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(fake_stub, method)(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details()
    reply = await fake_stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
    assert reply.intent == "track_delivery"


async def test_batch_error_names_the_item(fake_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fake_stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=["ok", "fine", ""]))
    assert "texts[2]" in info.value.details()


async def test_health_is_not_serving_until_the_index_is_built(bundled) -> None:
    encoder = serving_fake()
    encoder.hold()  # the first index build waits inside the encoder until released
    srv = RouterServer(ServerConfig(intents=bundled, encoder=encoder, port=0))
    starting = asyncio.create_task(srv.start())
    try:
        await encoder.held()  # building: the port is bound and the server answers
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            for service in ("", "router.api.v1.IntentRouter"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = pb_grpc.IntentRouterStub(ch)
            for call in (
                stub.Classify(pb.ClassifyRequest(text="where is my parcel")),
                stub.Info(pb.InfoRequest()),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert not starting.done()
            encoder.release()
            await starting
            reply = await health.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            answer = await stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
            assert answer.intent == "track_delivery"
    finally:
        encoder.release()
        if not starting.done():
            starting.cancel()
        await srv.stop(grace=0)


async def test_negation_is_explained_in_the_response(stub) -> None:
    text = "I don't want a refund, I want a bigger size"
    reply = await stub.Classify(pb.ClassifyRequest(text=text))
    assert reply.intent == "exchange_item"
    (negation,) = reply.negations
    assert negation.refusal
    assert negation.cue == "n't"
    assert negation.scope == "want a refund" == text[negation.scope_start : negation.scope_end]
    assert "request_refund" in reply.refused_intents
    assert all(a.intent != "request_refund" for a in reply.alternatives)


async def test_negation_fields_and_refused_intents(fake_stub) -> None:
    """The negation part of the response, field by field (the real model's answer: above)."""
    text = "I don't want a refund, I want a bigger size"
    reply = await fake_stub.Classify(pb.ClassifyRequest(text=text, top_k=5))
    (negation,) = reply.negations
    assert negation.refusal
    assert negation.cue == "n't" == text[negation.cue_start : negation.cue_end]
    assert negation.scope == "want a refund" == text[negation.scope_start : negation.scope_end]
    assert list(reply.refused_intents) == ["request_refund"]
    assert reply.intent not in ("request_refund", "unknown")
    assert all(a.intent != "request_refund" for a in reply.alternatives)
    assert (negation.topic, negation.topic_start, negation.topic_end) == ("", 0, 0)
    fronted = "地址不用改了"  # the refused object before the cue: the topic, with its offsets
    (negation,) = (await fake_stub.Classify(pb.ClassifyRequest(text=fronted))).negations
    assert (negation.cue, negation.scope, negation.topic) == ("不用", "改了", "地址")
    assert negation.scope == fronted[negation.scope_start : negation.scope_end]
    assert negation.topic == fronted[negation.topic_start : negation.topic_end]
    kept = await fake_stub.Classify(pb.ClassifyRequest(text="my phone won't turn on"))
    assert kept.intent == "broken_device"
    assert [(n.cue, n.refusal) for n in kept.negations] == [("n't", False)]
    assert not kept.refused_intents


async def test_refusing_only_is_unknown_with_a_reason(fake_stub) -> None:
    reply = await fake_stub.Classify(pb.ClassifyRequest(text="I don't want a refund"))
    assert reply.intent == "unknown"
    assert reply.reason == "nothing_wanted"
    assert list(reply.refused_intents) == ["request_refund"]
    below = await fake_stub.Classify(pb.ClassifyRequest(text=UNRELATED))
    assert below.reason == "below_threshold"


async def test_negation_inside_the_intent_is_kept(stub) -> None:
    reply = await stub.Classify(pb.ClassifyRequest(text="my phone won't turn on"))
    assert reply.intent == "broken_device"
    assert [n.refusal for n in reply.negations] == [False]
    assert not reply.refused_intents


async def test_metrics_count_requests_and_answers(fake_server, fake_stub) -> None:
    from prometheus_client import generate_latest

    await fake_stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
    with pytest.raises(grpc.aio.AioRpcError):
        await fake_stub.Classify(pb.ClassifyRequest(text=""))
    text = generate_latest(fake_server.metrics.registry).decode()
    assert 'intent_router_requests_total{code="OK",method="Classify"}' in text
    assert 'intent_router_requests_total{code="INVALID_ARGUMENT",method="Classify"}' in text
    assert 'intent_router_predictions_total{intent="track_delivery"}' in text
    assert "intent_router_revision_info{revision=" in text
    registry = fake_server.metrics.registry
    assert (registry.get_sample_value("intent_router_batch_texts_count") or 0) >= 1
    assert (registry.get_sample_value("intent_router_batch_texts_sum") or 0) >= 1


def test_out_of_scope_examples_lower_confidence_near_them(fake_engine, bundled) -> None:
    from dataclasses import replace

    from router.routing.engine import Engine

    text = "tell me a funny joke about cats"
    plain = fake_engine.classify([text]).predictions[0]
    with_oos = Engine(fake_engine.encoder)
    with_oos.load(
        replace(
            bundled,
            out_of_scope=(
                "tell me a joke",
                "say something funny about cats",
                "what's the weather today",
                "who won the match",
            ),
        )
    )
    guarded = with_oos.classify([text]).predictions[0]
    assert guarded.score < plain.score
    # in-scope answers stay
    assert with_oos.classify(["where is my parcel"]).predictions[0].intent == "track_delivery"


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xff\xff\xff",  # not protobuf at all
        b"\x0a\x03\xff\xfe\xfd",  # field 1 (text) with invalid UTF-8
        b"\x0a\x10abc",  # a length longer than the message
    ],
)
async def test_malformed_bytes_are_invalid_argument_without_a_traceback(
    fake_channel, raw: bytes, caplog
) -> None:
    call = fake_channel.unary_unary(
        "/router.api.v1.IntentRouter/Classify",
        request_serializer=lambda b: b,
        response_deserializer=pb.ClassifyResponse.FromString,
    )
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(raw, timeout=5)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # was UNKNOWN
        assert "malformed request" in raised.value.details()
    assert not [r for r in caplog.records if r.exc_info]  # no traceback per bad request
    reply = await pb_grpc.IntentRouterStub(fake_channel).Classify(pb.ClassifyRequest(text="hi"))
    assert reply.alternatives  # and the server keeps serving


# ------------------------------------------------------------ one request's work


async def test_too_many_characters_in_all_is_invalid_argument(fake_stub) -> None:
    texts = ["where is my parcel " * 1000] * 11  # 209,000 characters, each text allowed
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fake_stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=texts))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "texts: 209000 characters in all exceed the limit of 200000 per request"
    )
    reply = await fake_stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=texts[:10]))
    assert len(reply.results) == 10  # 190,000: accepted


async def test_grpc_receive_limit_follows_the_request_limits(bundled: IntentSet) -> None:
    limits = Limits(max_text_chars=1000, max_batch_size=4, max_request_chars=800)
    config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0, limits=limits)
    async with running(config) as served:
        stub = served.stub
        # the largest accepted request in bytes: every character 4 bytes of UTF-8
        widest = ["\U0001f600" * 200] * 4
        assert pb.ClassifyBatchRequest(texts=widest, top_k=20).ByteSize() <= (
            limits.max_message_bytes
        )
        reply = await stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=widest, top_k=20))
        assert len(reply.results) == 4
        for call, field in (
            (stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=["a" * 201] * 4)), "texts"),
            (stub.Classify(pb.ClassifyRequest(text="a" * 900)), "text"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details().startswith(f"{field}: ")
            assert "exceed the limit of 800 per request" in info.value.details()
        # larger than any accepted request: gRPC refuses it before it is read
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ClassifyBatch(
                pb.ClassifyBatchRequest(texts=["a" * (limits.max_message_bytes + 1)])
            )
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_refused_spans_embedded_per_text_are_bounded(bundled: IntentSet, monkeypatch) -> None:
    """Each refused span is a model row: 870 of them had taken 5.2 s of model time."""
    engine = Engine(serving_fake())
    engine.load(bundled)
    embedded: list[str] = []
    real = engine.encoder.embed

    def recording(texts, spans=None):
        embedded.extend(texts)
        return real(texts, spans)

    monkeypatch.setattr(engine.encoder, "embed", recording)
    repeated = "I don't want a refund, " * 869  # 19,987 characters
    distinct = "".join(f"I don't want item {i}, " for i in range(20)) + "where is my parcel"
    long_scope = "I don't want " + "a refund for my order " * 50
    result = engine.classify([repeated, distinct, long_scope])
    assert len(result.analyses[0].refusals) == 869  # all reported
    assert result.predictions[0].reason == "nothing_wanted"
    assert result.predictions[0].refused == ("request_refund",)
    spans = embedded[3:]
    assert spans.count("want a refund") == 1  # the same words: embedded once (was 869)
    assert len(spans) == 1 + 8 + 1  # at most 8 a text (engine.MAX_REFUSED_SPANS)
    assert spans[1:9] == [f"want item {i}" for i in range(8)]  # the first ones
    assert len(spans[-1]) <= 100  # each its first 100 characters at most
    assert result.predictions[2].refused == ("request_refund",)


# ------------------------------------------------------- bulk beside interactive


async def test_batches_do_not_crowd_out_single_requests(bundled: IntentSet) -> None:
    """16 callers of ClassifyBatch(512) had left single requests 2 answers in 81."""
    encoder = serving_fake()
    config = ServerConfig(intents=bundled, encoder=encoder, port=0, batching=BatchSettings())
    async with running(config) as served:
        assert served.server.batcher is not None
        batcher = served.server.batcher
        try:
            encoder.hold()
            first = asyncio.ensure_future(served.stub.Classify(pb.ClassifyRequest(text="hi")))
            await encoder.held()
            texts = [f"where is my parcel number {i}" for i in range(512)]  # 16 chunks each
            bulk = [
                asyncio.ensure_future(
                    served.stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=texts), timeout=60)
                )
                for _ in range(16)
            ]
            await wait_for(lambda: batcher.depth == 16 * 16)
            singles = [
                asyncio.ensure_future(
                    served.stub.Classify(
                        pb.ClassifyRequest(text="my card was declined"), timeout=60
                    )
                )
                for _ in range(8)
            ]
            await wait_for(lambda: batcher.depth == 16 * 16 + 8 or any(s.done() for s in singles))
            encoder.release()
            for reply in await asyncio.gather(*singles):  # (they were RESOURCE_EXHAUSTED)
                assert reply.intent == "payment_failed"
            # answered while most of the bulk work still waits
            assert batcher.depth > 16 * 16 / 2
            assert (await first).intent
            for reply in await asyncio.gather(*bulk):
                assert len(reply.results) == 512
        finally:
            encoder.release()  # never leave the model held on a failure


# ------------------------------------------------------------------------ metrics


async def test_metrics_count_deadlines_cancels_skips_and_the_process(bundled: IntentSet) -> None:
    encoder = serving_fake()
    async with running(ServerConfig(intents=bundled, encoder=encoder, port=0)) as served:
        registry = served.server.metrics.registry

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        try:
            encoder.hold()
            first = asyncio.ensure_future(served.stub.Classify(pb.ClassifyRequest(text="hi")))
            await encoder.held()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await served.stub.Classify(
                    pb.ClassifyRequest(text="where is my parcel"), timeout=0.3
                )
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            gone = served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"), timeout=30)
            assert served.server.batcher is not None
            batcher = served.server.batcher
            await wait_for(lambda: batcher.depth == 2)
            gone.cancel()
            requests = "intent_router_requests_total"

            def ended(code: str) -> float:
                return sample(requests, method="Classify", code=code)

            codes = ("CANCELLED", "DEADLINE_EXCEEDED", "UNKNOWN")
            await wait_for(lambda: sum(ended(c) for c in codes) == 2)
            # the codes the callers got (both had been UNKNOWN)
            assert [ended(c) for c in codes] == [1, 1, 0]
            assert sample("intent_router_queue_texts", queue="interactive") == 2
            encoder.release()
            await first
            await wait_for(lambda: sample("intent_router_skipped_total", reason="cancelled") == 1)
            assert sample("intent_router_skipped_total", reason="deadline") == 1
            assert sample("intent_router_skipped_texts_total", reason="deadline") == 1
            assert sample("intent_router_queue_texts", queue="interactive") == 0
            assert sample(requests, method="Classify", code="OK") == 1
            assert sample("process_resident_memory_bytes") > 50e6
            assert sample("process_cpu_seconds_total") > 0
        finally:
            encoder.release()  # never leave the model held on a failure


@pytest.mark.parametrize(
    ("remaining", "code"),
    [(-0.01, "DEADLINE_EXCEEDED"), (0.05, "DEADLINE_EXCEEDED"), (0.5, "CANCELLED"),
     (None, "CANCELLED")],
)  # fmt: skip
def test_a_cancel_close_to_the_deadline_counts_as_the_deadline(
    remaining: float | None, code: str
) -> None:
    """The caller's own timer fires first: its cancel reaches the server a little before
    the server's copy of the deadline has passed."""
    from router.serving.metrics import Metrics, _Call

    class Context:
        def time_remaining(self) -> float | None:
            return remaining

    metrics = Metrics()
    with pytest.raises(asyncio.CancelledError), _Call(metrics, "Classify", Context()):  # type: ignore[arg-type]
        raise asyncio.CancelledError
    counted = metrics.registry.get_sample_value(
        "intent_router_requests_total", {"method": "Classify", "code": code}
    )
    assert counted == 1
