"""The gRPC API against a real server on 127.0.0.1 with the real model and bundled intents."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from router.api.v1 import router_pb2 as pb
from router.routing.intents import IntentSet
from router.serving.server import RouterServer, ServerConfig


async def test_classify_routes_and_reports(stub, bundled: IntentSet) -> None:
    reply = await stub.Classify(pb.ClassifyRequest(text="where is my parcel", top_k=3))
    assert reply.intent == "track_delivery"
    assert reply.score >= reply.threshold
    assert len(reply.alternatives) == 3
    assert reply.alternatives[0].intent == reply.intent
    assert reply.alternatives[0].score == pytest.approx(reply.score)
    examples = {e for i in bundled.intents for e in i.examples}
    assert all(a.example in examples for a in reply.alternatives)
    runners_up = [a.score for a in reply.alternatives[1:]]
    assert runners_up == sorted(runners_up, reverse=True)
    assert reply.revision == bundled.revision
    assert reply.timings.encode_ms > 0
    assert reply.timings.total_ms >= reply.timings.encode_ms


async def test_out_of_scope_is_unknown_with_candidate(stub) -> None:
    reply = await stub.Classify(pb.ClassifyRequest(text="tell me a joke"))
    assert reply.intent == "unknown"
    assert reply.score < reply.threshold
    assert reply.alternatives and reply.alternatives[0].intent != "unknown"
    assert len(reply.alternatives) == 3  # top_k 0 means the default


async def test_batch_keeps_order_and_matches_single(stub) -> None:
    texts = [
        "tell me a joke",
        "where is my parcel",
        "my card was declined at checkout",
        "I want to speak to a real person",
    ]
    batch = await stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=texts, top_k=2))
    assert len(batch.results) == len(texts)
    for text, result in zip(texts, batch.results, strict=True):
        single = await stub.Classify(pb.ClassifyRequest(text=text, top_k=2))
        assert result.intent == single.intent
        assert result.score == pytest.approx(single.score, abs=1e-5)
        assert result.revision == batch.revision
    assert batch.timings.encode_ms > 0


async def test_list_intents_and_info(stub, bundled: IntentSet, encoder) -> None:
    listed = await stub.ListIntents(pb.ListIntentsRequest())
    assert [i.name for i in listed.intents] == [i.name for i in bundled.intents]
    assert [i.example_count for i in listed.intents] == [len(i.examples) for i in bundled.intents]
    assert all(-1 <= i.threshold <= 1 for i in listed.intents)
    info = await stub.Info(pb.InfoRequest())
    assert info.model_id == encoder.model_id
    assert info.dimension == 384
    assert info.intent_count == len(bundled.intents)
    assert info.example_count == bundled.example_count
    assert info.revision == bundled.revision == listed.revision


async def test_health_serving(channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "router.api.v1.IntentRouter"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_the_service(server) -> None:
    # the reflection client is synchronous; run it off the event loop
    def describe() -> tuple[list[str], list[str]]:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
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
        ("Classify", pb.ClassifyRequest(text="x" * 20_001)),
        ("Classify", pb.ClassifyRequest(text="hello", top_k=-1)),
        ("Classify", pb.ClassifyRequest(text="hello", top_k=21)),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=[])),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok"] * 513)),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok", " "])),
        ("ClassifyBatch", pb.ClassifyBatchRequest(texts=["ok"], top_k=99)),
    ],
    ids=[
        "empty",
        "blank",
        "too-long",
        "top_k-negative",
        "top_k-too-big",
        "batch-empty",
        "batch-too-big",
        "batch-blank-item",
        "batch-top_k",
    ],
)
async def test_bad_input_is_invalid_argument_and_server_keeps_serving(stub, call) -> None:
    method, request = call
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(stub, method)(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details()
    reply = await stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
    assert reply.intent == "track_delivery"


async def test_batch_error_names_the_item(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=["ok", "fine", ""]))
    assert "texts[2]" in info.value.details()


async def test_health_is_not_serving_until_the_index_is_built(model_dir, bundled) -> None:
    srv = RouterServer(ServerConfig(intents=bundled, model_dir=model_dir, port=0, threads=1))
    starting = asyncio.create_task(srv.start())
    seen: list[int] = []
    try:
        while not starting.done():
            if srv.port:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
                    reply = await health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(service="")
                    )
                    seen.append(reply.status)
            await asyncio.sleep(0.01)
        await starting
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await srv.stop(grace=0)
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen


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


async def test_refusing_only_is_unknown_with_a_reason(stub) -> None:
    reply = await stub.Classify(pb.ClassifyRequest(text="I don't want a refund"))
    assert reply.intent == "unknown"
    assert reply.reason == "nothing_wanted"
    below = await stub.Classify(pb.ClassifyRequest(text="tell me a joke"))
    assert below.reason == "below_threshold"


async def test_negation_inside_the_intent_is_kept(stub) -> None:
    reply = await stub.Classify(pb.ClassifyRequest(text="my phone won't turn on"))
    assert reply.intent == "broken_device"
    assert [n.refusal for n in reply.negations] == [False]
    assert not reply.refused_intents


async def test_metrics_count_requests_and_answers(server, stub) -> None:
    from prometheus_client import generate_latest

    await stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Classify(pb.ClassifyRequest(text=""))
    text = generate_latest(server.metrics.registry).decode()
    assert 'intent_router_requests_total{code="OK",method="Classify"}' in text
    assert 'intent_router_requests_total{code="INVALID_ARGUMENT",method="Classify"}' in text
    assert 'intent_router_predictions_total{intent="track_delivery"}' in text
    assert "intent_router_revision_info{revision=" in text
    registry = server.metrics.registry
    assert (registry.get_sample_value("intent_router_batch_texts_count") or 0) >= 1
    assert (registry.get_sample_value("intent_router_batch_texts_sum") or 0) >= 1


def test_out_of_scope_examples_lower_confidence_near_them(engine, bundled) -> None:
    from dataclasses import replace

    from router.routing.engine import Engine

    text = "tell me a funny joke about cats"
    plain = engine.classify([text]).predictions[0]
    with_oos = Engine(engine.encoder)
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
