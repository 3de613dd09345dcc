"""A threshold calibrated from the exemplars where no tuned threshold applies
(routing/calibration.py, Engine.build), on the fake encoder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import serving_fake
from helpers import in_process, running

from router import cli
from router.api.v1 import router_pb2 as pb
from router.routing.calibration import MIN_SCORES, calibrate, negatives_of
from router.routing.engine import Engine
from router.routing.index import DEFAULT_THRESHOLD, Index, IndexSettings, Scoring
from router.routing.intents import Intent, IntentSet, load_intents
from router.serving.server import ServerConfig

EXAMPLES = {
    "refund": [
        "refund my money",
        "I want my money back",
        "give me a refund",
        "money back for the broken kettle",
        "return the cash I paid",
    ],
    "track": [
        "where is my parcel",
        "track the parcel",
        "when does the parcel arrive",
        "parcel delivery status",
        "has the courier shipped it",
    ],
    "cancel": [
        "cancel the order",
        "stop my order",
        "I no longer want the order",
        "cancel it before it ships",
        "undo my purchase",
    ],
    "password": [
        "reset my password",
        "forgot the password",
        "cannot log in to my account",
        "change the account password",
        "locked out of my login",
    ],
}
#: Words every message of the "high" set starts with: every score rises with them.
PREAMBLE = "hello there customer service team I need some help with this today "
#: Out-of-scope sentences made of the intents' words (close to them).
NEAR_OUT_OF_SCOPE = [
    "refund my money after the parcel and the order and the password",
    "money parcel order password help",
    "my parcel money order",
    "the order parcel refund money",
    "password money parcel order",
    "order refund",
    "parcel password",
    "money order",
    "cancel parcel money",
    "track money order",
    "refund parcel",
]


def shop(prefix: str = "", out_of_scope: tuple[str, ...] = (), **thresholds: float) -> IntentSet:
    return IntentSet(
        intents=tuple(
            Intent(name, tuple(prefix + e for e in examples), threshold=thresholds.get(name))
            for name, examples in EXAMPLES.items()
        ),
        default_threshold=thresholds.get("default"),
        files=(),
        revision="r",
        out_of_scope=out_of_scope,
    )


def build(intents: IntentSet, settings: IndexSettings | None = None) -> tuple[Engine, Index, str]:
    engine = Engine(serving_fake(), settings)
    snapshot = engine.build(intents)
    engine.swap(snapshot)
    return engine, snapshot.index, snapshot.threshold_source


def test_without_tuned_thresholds_a_calibrated_one_applies_and_is_reported() -> None:
    _, index, source = build(shop())
    assert source.startswith("calibrated from the exemplars")
    assert "20 exemplars" in source and "for fake" in source
    calibrated = index.default_threshold
    assert calibrated != DEFAULT_THRESHOLD
    assert f"{calibrated:.4g}" in source
    assert index.thresholds.tolist() == pytest.approx([calibrated] * 4)
    assert not index.thresholds.flags.writeable  # a built index is never mutated
    assert all(i.threshold is None for i in index.intents.intents)  # no intent's "own"


def test_a_tuned_threshold_wins() -> None:
    _, index, source = build(shop(default=0.55))
    assert index.default_threshold == pytest.approx(0.55)
    assert index.thresholds.tolist() == pytest.approx([0.55] * 4)
    assert source == "the intents"
    # an intent's own threshold is kept; the others get the calibrated one
    _, index, source = build(shop(track=0.7))
    assert index.thresholds[1] == pytest.approx(0.7)
    assert index.thresholds[0] == pytest.approx(index.default_threshold) != 0.7
    assert source.startswith("calibrated") and "1 intents with their own" in source


def test_a_tuned_threshold_for_another_model_is_set_aside_for_a_calibrated_one() -> None:
    tuned = replace(shop(default=0.99, refund=0.98), threshold_model="minilm")
    _, index, source = build(tuned)
    assert index.default_threshold < 0.9 and index.thresholds.max() < 0.9
    assert source.startswith("calibrated") and "minilm" in source and "fake" in source


def test_the_settings_can_keep_a_fixed_default() -> None:
    _, index, source = build(shop(), IndexSettings(calibrate=False))
    assert (index.default_threshold, source) == (DEFAULT_THRESHOLD, "the default for fake")
    _, index, source = build(shop(), IndexSettings(default_threshold=0.42))
    assert (index.default_threshold, source) == (pytest.approx(0.42), "the default for fake")


def test_too_few_exemplars_keep_the_models_default() -> None:
    tiny = IntentSet(
        intents=(Intent("a", ("refund my money", "money back")), Intent("b", ("my parcel",))),
        default_threshold=None,
        files=(),
        revision="r",
    )
    assert tiny.example_count < MIN_SCORES
    _, index, source = build(tiny)
    assert (index.default_threshold, source) == (DEFAULT_THRESHOLD, "the default for fake")


def test_calibration_is_deterministic() -> None:
    thresholds = {build(shop())[1].default_threshold for _ in range(3)}
    assert len(thresholds) == 1
    _, index, _ = build(shop())
    engine = Engine(serving_fake())
    vectors = engine.encoder.embed([e for i in index.intents.intents for e in i.examples])
    first, second = negatives_of(index, vectors), negatives_of(index, vectors)
    assert first.scores.tobytes() == second.scores.tobytes()


def test_exemplars_that_score_high_get_a_higher_threshold() -> None:
    # The same intents, every message starting with the same words: every score is
    # higher, so a fixed threshold would mean something else; the calibrated one follows.
    _, low, _ = build(shop())
    _, high, _ = build(shop(PREAMBLE))
    assert high.default_threshold > low.default_threshold + 0.1


def test_out_of_scope_examples_raise_the_threshold() -> None:
    _, without, _ = build(shop())
    _, with_them, source = build(shop(out_of_scope=tuple(NEAR_OUT_OF_SCOPE)))
    assert with_them.default_threshold > without.default_threshold
    assert f"{len(NEAR_OUT_OF_SCOPE)} out_of_scope examples (raised it)" in source


@pytest.mark.parametrize("lexical_weight", [0.0, 0.5])
@pytest.mark.parametrize("scoring", [Scoring.NEAREST, Scoring.TOPK_MEAN, Scoring.CENTROID])
def test_cosine_scorings_calibrate_on_exact_leave_one_intent_out_scores(
    scoring: Scoring, lexical_weight: float
) -> None:
    """Without the head, each pseudo-negative is exactly what an index without the
    exemplar's intent would score it (Index.scores), and out_of_scope rows score as queries.
    The lexical overlap is the full index's (its IDF counts every exemplar)."""
    encoder = serving_fake()
    intents = shop(out_of_scope=tuple(NEAR_OUT_OF_SCOPE))
    vectors = encoder.embed([e for i in intents.intents for e in i.examples])
    settings = IndexSettings(scoring=scoring, lexical_weight=lexical_weight)
    index = Index(intents, vectors, settings)
    others = encoder.embed(NEAR_OUT_OF_SCOPE)
    found = negatives_of(index, vectors, others)
    assert found.probes.tolist() == list(range(intents.example_count))
    rows = index.example_intents
    for c, intent in enumerate(intents.intents):
        rest = replace(intents, intents=intents.intents[:c] + intents.intents[c + 1 :])
        left_out = Index(rest, vectors[rows != c], replace(settings, lexical_weight=0.0))
        expected = left_out.scores(vectors[rows == c]).scores
        if lexical_weight:
            lexical = index.lexical_scores(list(intent.examples), len(intent.examples))
            assert lexical is not None
            expected = index.with_lexical(expected, np.delete(lexical, c, axis=1))
        assert found.scores[rows == c] == pytest.approx(expected.max(axis=1), abs=1e-5), intent.name
    texts = NEAR_OUT_OF_SCOPE if lexical_weight else None
    expected_out = index.scores(others, texts).scores.max(axis=1)
    assert found.out_of_scope == pytest.approx(expected_out, abs=1e-5)
    calibration = calibrate(index, vectors)
    assert calibration is not None
    assert calibration.threshold == pytest.approx(np.quantile(found.scores, 0.3), abs=1e-4)


async def test_list_intents_and_info_report_the_calibrated_threshold(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(
        json.dumps(
            {
                "version": 1,
                "intents": [{"name": n, "examples": e} for n, e in EXAMPLES.items()],
            }
        )
    )
    config = ServerConfig(intents=load_intents(tmp_path), encoder=serving_fake(), port=0)
    async with running(config) as served:
        assert served.server.engine is not None
        calibrated = served.server.engine.snapshot.index.default_threshold
        listed = await served.stub.ListIntents(pb.ListIntentsRequest())
        assert [i.threshold for i in listed.intents] == pytest.approx([calibrated] * 4)
        info = await served.stub.Info(pb.InfoRequest())
        assert info.threshold_source.startswith("calibrated from the exemplars")


def test_eval_json_reports_the_calibrated_threshold(tmp_path: Path, monkeypatch) -> None:
    import router.model.loading

    monkeypatch.setattr(
        router.model.loading, "load_encoder", lambda d, threads=None: serving_fake()
    )
    monkeypatch.setattr(cli, "_resolve_model", Path)
    shop_file = tmp_path / "shop.yaml"
    shop_file.write_text(
        json.dumps(
            {
                "version": 1,
                "intents": [{"name": n, "examples": e} for n, e in EXAMPLES.items()],
            }
        )
    )
    data = tmp_path / "val.jsonl"
    rows = [("refund my money please", "refund"), ("where is my parcel now", "track")]
    data.write_text("".join(json.dumps({"text": t, "intent": i}) + "\n" for t, i in rows))
    code, out, err = in_process("eval", "--intents", str(shop_file), "--data", str(data), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["threshold_source"].startswith("calibrated from the exemplars")
    assert record["own_thresholds"] == {}
    _, index, _ = build(load_intents(shop_file))
    assert record["default_threshold"] == pytest.approx(index.default_threshold)
