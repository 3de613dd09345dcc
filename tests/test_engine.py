"""The engine contains a failure of one text's negation analysis to that text."""

from __future__ import annotations

import pytest
from fakes import serving_fake

import router.routing.engine as engine_module
from router.api.v1 import router_pb2 as pb
from router.routing.engine import Engine
from router.routing.intents import IntentSet, load_intents

POISON = "this text breaks the negation rules"


@pytest.fixture
def broken_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine_module.analyse

    def analyse(text, lexicon=None):
        if POISON in text:
            raise IndexError("list index out of range")
        return real(text, lexicon)

    monkeypatch.setattr(engine_module, "analyse", analyse)


def test_one_failing_text_never_fails_a_batch(broken_rules, bundled: IntentSet, caplog) -> None:
    failures: list[int] = []
    engine = Engine(serving_fake(), on_negation_failure=lambda: failures.append(1))
    engine.load(bundled)
    texts = ["where is my parcel", POISON, "I don't want a refund"]
    result = engine.classify(texts)
    assert len(result.predictions) == 3
    assert result.analyses[1].spans == ()  # routed without negation handling
    assert result.predictions[2].reason == "nothing_wanted"  # the others keep theirs
    assert (engine.negation_failures, len(failures)) == (1, 1)
    assert "text of 35 characters" in caplog.text and POISON not in caplog.text


def test_a_failing_example_never_fails_a_build(broken_rules, tmp_path) -> None:
    (tmp_path / "a.yaml").write_text(
        f"version: 1\nintents:\n  - name: a\n    examples: ['{POISON}', 'fine example']\n"
    )
    engine = Engine(serving_fake())
    snapshot = engine.load(load_intents(tmp_path))
    assert snapshot.intents.example_count == 2 and engine.negation_failures == 1


async def test_the_server_counts_them(broken_rules, fake_server, fake_stub) -> None:
    reply = await fake_stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=[POISON, "hello"]))
    assert len(reply.results) == 2
    sample = fake_server.metrics.registry.get_sample_value
    assert (sample("intent_router_negation_failures_total") or 0) >= 1
