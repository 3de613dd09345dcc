"""The engine contains a failure of one text's negation analysis to that text; a warm build
(hot reload) carries the previous head over and ``complete`` gives the cold build."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from fakes import serving_fake

import router.routing.engine as engine_module
from router.api.v1 import router_pb2 as pb
from router.routing.engine import BuildAbandoned, Engine, revision_of
from router.routing.head import DEFAULT_STEPS
from router.routing.index import IndexSettings, Scoring
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


# --------------------------------------------------------- warm builds (hot reload)


def _untuned(intents: IntentSet) -> IntentSet:
    """``intents`` without thresholds: the build calibrates one."""
    return replace(
        intents,
        default_threshold=None,
        intents=tuple(replace(i, threshold=None) for i in intents.intents),
    )


def _edited(intents: IntentSet) -> IntentSet:
    """``intents`` with one example changed (a new revision)."""
    first = intents.intents[0]
    changed = replace(first, examples=("zebra crossing please", *first.examples[1:]))
    edited = replace(intents, intents=(changed, *intents.intents[1:]))
    return replace(edited, revision=f"{intents.revision}-edited")


def test_a_warm_build_carries_the_head_and_threshold_then_complete_is_the_cold_build(
    bundled: IntentSet,
) -> None:
    engine = Engine(serving_fake())
    serving = engine.load(_untuned(bundled))
    assert serving.final and serving.calibration is not None
    edited = _edited(_untuned(bundled))

    warm = engine.build(edited, warm_from=serving)
    assert not warm.final
    assert warm.revision == revision_of(edited, engine.encoder) != serving.revision
    assert warm.index.head is not None and serving.index.head is not None
    assert np.array_equal(warm.index.head.weights, serving.index.head.weights)
    assert warm.index.features is serving.index.features  # the features its weights read
    assert warm.calibration == serving.calibration
    assert warm.index.default_threshold == serving.index.default_threshold
    assert warm.index.examples[0] == "zebra crossing please"  # the edit is in the index

    final = engine.complete(warm)
    cold = Engine(serving_fake()).build(edited)
    assert final.final and final.revision == cold.revision == warm.revision
    assert final.index.head is not None and cold.index.head is not None
    assert np.array_equal(final.index.head.weights, cold.index.head.weights)
    assert np.array_equal(final.index.head.bias, cold.index.head.bias)
    assert final.index.default_threshold == cold.index.default_threshold
    assert final.threshold_source == cold.threshold_source
    assert engine.complete(final) is final


def test_without_warm_reloads_or_a_head_every_build_is_cold(bundled: IntentSet) -> None:
    engine = Engine(serving_fake(), warm_reloads=False)
    serving = engine.load(bundled)
    assert engine.build(_edited(bundled), warm_from=serving).final
    topk = Engine(serving_fake(), IndexSettings(scoring=Scoring.TOPK_MEAN))
    serving = topk.load(bundled)
    assert topk.build(_edited(bundled), warm_from=serving).final


def test_a_build_stops_between_training_steps_once_abandoned(bundled: IntentSet) -> None:
    engine = Engine(serving_fake())
    engine.load(bundled)  # every vector cached: the same looks at abandoned() each build
    calls = 0

    def count() -> bool:
        nonlocal calls
        calls += 1
        return False

    engine.build(bundled, count)
    steps = DEFAULT_STEPS  # the head's training asks once per step, after the embedding
    before_training = calls - steps
    calls = 0

    def during_training() -> bool:
        nonlocal calls
        calls += 1
        return calls > before_training + 3

    with pytest.raises(BuildAbandoned, match="training step 4"):
        engine.build(bundled, during_training)
