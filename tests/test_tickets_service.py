"""Tickets through the engine and the gRPC API: several intents, evidence, subjects.

Routing logic runs on the fake encoder (``fake_engine``, ``fake_stub``); what only
real vectors show runs on the real model (``engine``, ``stub``, marked ``model``).
"""

from __future__ import annotations

import grpc
import pytest

from router.api.v1 import router_pb2 as pb
from router.routing.engine import Engine
from router.routing.intents import UNKNOWN

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
        (pb.ClassifyBatchRequest(texts=["a"], subjects=["x" * 20_001]), "subjects[0]"),
        (pb.ClassifyBatchRequest(texts=["a" * 150_000], subjects=["b" * 60_000]), "texts"),
    ],
)
async def test_bad_subjects_are_invalid_argument(fake_stub, request_, field) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await fake_stub.ClassifyBatch(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


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
    assert engine.classify(["where is my parcel"], multi_intent=True).predictions[0].intent == (
        engine.classify(["where is my parcel"]).predictions[0].intent
    )
