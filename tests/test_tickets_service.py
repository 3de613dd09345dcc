"""Tickets through the engine and the gRPC API: several intents, evidence, subjects.

Routing logic runs on the fake encoder (``fake_engine``, ``fake_stub``); what only
real vectors show runs on the real model (``engine``, ``stub``, marked ``model``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes import FakeEncoder
from helpers import wait_for

from router.api.v1 import router_pb2 as pb
from router.model.loading import load_encoder
from router.routing.engine import MAX_REFUSED_SPANS, Engine
from router.routing.intents import UNKNOWN, load_intents
from router.serving.batching import Batcher, BatchSettings

INTENTS = Path(__file__).resolve().parent.parent / "intents"

TICKET = (
    "Hello,\n\nWhere is my parcel? It was due last Monday.\n"
    "Also I want to reset my password please, the old one does not work.\n\n"
    "Thanks,\nBob\n\nOn Mon, 2 Mar 2026 Shop <help@shop.com> wrote:\n> Please cancel my order"
)


def test_a_ticket_answers_every_intent_it_asks_for(fake_engine: Engine) -> None:
    result = fake_engine.classify([TICKET], multi_intent=True)
    (prediction,) = result.predictions
    names = [m.intent for m in prediction.matches]
    assert names[:2] == ["track_delivery", "reset_password"]
    assert "cancel_order" not in names  # only in the quoted mail
    assert prediction.intent == names[0]
    assert prediction.score == pytest.approx(prediction.matches[0].score)
    for match in prediction.matches:
        assert match.score >= match.threshold
        assert TICKET[match.evidence.start : match.evidence.end] == match.evidence.text
    assert prediction.matches[0].evidence.text == "Where is my parcel? It was due last Monday."


def test_a_candidate_snapshot_answers_tickets_too(fake_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(
        "version: 1\nintents:\n  - name: track_parcel\n"
        "    examples: [where is my parcel, track my package, when will my order arrive]\n"
    )
    candidate = fake_engine.build(load_intents(tmp_path))  # built, never swapped in
    result = fake_engine.classify(["where is my parcel"], multi_intent=True, snapshot=candidate)
    assert result.revision == candidate.revision != fake_engine.snapshot.revision
    assert result.predictions[0].alternatives[0].intent == "track_parcel"  # its only intent


def test_plain_texts_answer_as_before(fake_engine: Engine) -> None:
    texts = ["where is my parcel", "zebra quantum xylophone", TICKET]
    plain = fake_engine.classify(texts).predictions
    assert all(p.matches == () for p in plain)
    again = fake_engine.classify(texts, multi_intent=False).predictions
    assert again == plain


def test_unknown_has_no_matches_and_a_subject_routes(fake_engine: Engine) -> None:
    (unknown, subject_only) = fake_engine.classify(
        ["zebra quantum xylophone", "zebra quantum xylophone"],
        subjects=["", "reset my password"],
    ).predictions
    assert (unknown.intent, unknown.matches) == (UNKNOWN, ())
    assert subject_only.intent == "reset_password"
    assert subject_only.matches[0].evidence.field == "subject"
    with pytest.raises(ValueError, match="subjects"):
        fake_engine.classify(["a", "b"], subjects=["one"])


async def test_classify_fills_matches_only_when_asked(fake_stub) -> None:
    plain = await fake_stub.Classify(pb.ClassifyRequest(text=TICKET))
    assert not plain.matches
    multi = await fake_stub.Classify(
        pb.ClassifyRequest(text=TICKET, multi_intent=True, subject="parcel late")
    )
    assert [m.intent for m in multi.matches][:2] == ["track_delivery", "reset_password"]
    assert multi.intent == multi.matches[0].intent
    for match in multi.matches:
        source = "parcel late" if match.evidence.field == "subject" else TICKET
        assert source[match.evidence.start : match.evidence.end] == match.evidence.text
        assert match.score >= match.threshold


async def test_classify_batch_takes_subjects(fake_stub) -> None:
    reply = await fake_stub.ClassifyBatch(
        pb.ClassifyBatchRequest(
            texts=[TICKET, "zebra quantum xylophone"],
            subjects=["", "I forgot my password"],
            multi_intent=True,
        )
    )
    first, second = reply.results
    assert first.matches[0].intent == "track_delivery"
    assert second.intent == "reset_password"
    assert second.matches[0].evidence.field == "subject"
    single = await fake_stub.Classify(pb.ClassifyRequest(text=TICKET, multi_intent=True))
    assert first == pb.ClassifyResponse(
        **{f.name: getattr(single, f.name) for f, _ in single.ListFields() if f.name != "timings"},
        timings=first.timings,
    )


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ClassifyBatchRequest(texts=["a", "b"], subjects=["one"]), "subjects"),
        (pb.ClassifyBatchRequest(texts=["a"], subjects=["x" * 20_001]), "texts[0]: 20002 "),
        (pb.ClassifyBatchRequest(texts=["a" * 150_000], subjects=["b" * 60_000]), "texts"),
    ],
)
async def test_bad_subjects_are_invalid_argument(fake_stub, request_, field) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await fake_stub.ClassifyBatch(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


async def test_a_subject_alone_is_a_ticket_for_every_method(fake_stub) -> None:
    one = await fake_stub.Classify(pb.ClassifyRequest(text="", subject="where is my parcel"))
    batch = await fake_stub.ClassifyBatch(
        pb.ClassifyBatchRequest(texts=["", "refund please"], subjects=["where is my parcel", ""])
    )
    assert one.intent == batch.results[0].intent == "track_delivery"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await fake_stub.Classify(pb.ClassifyRequest(text=" ", subject=" "))
    assert "text: must not be empty or blank (nor the subject)" in (caught.value.details() or "")


async def test_a_long_subject_is_invalid_argument(fake_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await fake_stub.Classify(pb.ClassifyRequest(text="hi", subject="x" * 20_001))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "subject" in (caught.value.details() or "")
    ok = await fake_stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
    assert ok.intent == "track_delivery"


def test_real_model_finds_two_requests(engine: Engine) -> None:
    ticket = (
        "Hi,\n\nI sent the charger back two weeks ago and I am still waiting for my refund. "
        "When will I get the money back?\nAlso, could you change the delivery address for my "
        "next order to 12 Elm Street, Leeds?\n\nBest regards,\nAnna\n\nSent from my iPhone"
    )
    (prediction,) = engine.classify([ticket], multi_intent=True).predictions
    names = {m.intent for m in prediction.matches}
    assert {"request_refund", "change_delivery_address"} <= names
    short = [  # two requests in one window: each sentence is read alone too
        "Hi,\n\nI sent the charger back two weeks ago, still no refund.\nAlso please change "
        "the address for my next order.\n\nThanks,\nAnna\n\nSent from my iPhone",
        "I want a refund. Please change my delivery address.",
    ]
    for prediction in engine.classify(short, multi_intent=True).predictions:
        names = {m.intent for m in prediction.matches}
        assert {"request_refund", "change_delivery_address"} <= names, prediction.matches
    assert engine.classify(["where is my parcel"], multi_intent=True).predictions[0].intent == (
        engine.classify(["where is my parcel"]).predictions[0].intent
    )


async def test_tickets_and_plain_texts_queued_together_answer_as_alone(fake_engine: Engine) -> None:
    """A batch holding tickets and plain texts runs each kind in its own engine call."""
    encoder = fake_engine.encoder
    assert isinstance(encoder, FakeEncoder)
    batcher = Batcher(fake_engine, BatchSettings(max_batch=8, max_queue=64))
    batcher.start()
    try:
        encoder.hold()
        first = asyncio.create_task(batcher.classify(["where is my parcel"], 3))
        await encoder.held()  # the consumer is busy: the next requests queue together
        queued = asyncio.gather(
            batcher.classify([TICKET], 3, subjects=[""]),
            batcher.classify([TICKET], 3),
            batcher.classify(["zebra quantum xylophone"], 3, subjects=["reset my password"]),
        )
        await wait_for(lambda: batcher.depth == 3)
        encoder.release()
        ticket, plain, subject_only = await queued
        await first
    finally:
        encoder.release()
        await batcher.close()
    assert plain.predictions == fake_engine.classify([TICKET]).predictions
    assert ticket.predictions == fake_engine.classify([TICKET], multi_intent=True).predictions
    assert subject_only.predictions[0].intent == "reset_password"
    assert plain.predictions[0].matches == ()


def test_multilingual_model_reads_a_chinese_ticket(use_model_dir: Path) -> None:
    engine = Engine(load_encoder(use_model_dir, threads=1))
    engine.load(load_intents(INTENTS / "zh"))
    ticket = (
        "您好，\n我上周买的蓝牙耳机左边没有声音，充电也充不进去。我想退货退款。\n谢谢！\n\n"
        "发自我的iPhone\n\n在 2026年5月3日 客服 写道：\n> 您好，您的订单已经发货，请耐心等待。"
    )
    lost = "你好，我的快递显示已签收，但是我根本没收到。麻烦帮我查一下。\n\n--\n张伟"
    two = "我要退款。\n\n请帮我把收货地址改成北京市朝阳区。"
    refund, missing, both = engine.classify([ticket, lost, two], multi_intent=True).predictions
    assert {m.intent for m in both.matches} >= {"request_refund", "change_delivery_address"}
    # "退货退款" is the shops' return-for-refund: either intent is the right first answer
    assert refund.matches[0].intent in {"request_refund", "return_item"}
    assert refund.matches[0].evidence.text == "我想退货退款。"
    assert missing.intent == "missing_delivery"
    quoted = ticket.index("在 2026年")
    for match in (*refund.matches, *missing.matches):
        assert match.evidence.end <= quoted
    assert all(ticket[m.evidence.start : m.evidence.end] == m.evidence.text for m in refund.matches)


def test_refused_spans_embedded_per_ticket_are_bounded(fake_engine: Engine, monkeypatch) -> None:
    """A ticket is one request however many passages it has: at most MAX_REFUSED_SPANS
    refused spans embedded for it, each once."""
    embedded: list[str] = []
    real = fake_engine.encoder.embed

    def recording(texts, spans=None):
        embedded.extend(texts)
        return real(texts, spans)

    monkeypatch.setattr(fake_engine.encoder, "embed", recording)
    ticket = " ".join(f"I don't want item number {i} at all." for i in range(30))
    ticket += " I don't want a refund. Where is my parcel?"
    (prediction,) = fake_engine.classify([ticket], multi_intent=True).predictions
    scoring = fake_engine.score_tickets([ticket])
    first_call = embedded[: len(embedded) // 2]  # classify's call, then score_tickets'
    spans = first_call[len(scoring.passages[0]) :]
    assert spans == [f"want item number {i} at all" for i in range(MAX_REFUSED_SPANS)]
    assert prediction.intent == "track_delivery"
