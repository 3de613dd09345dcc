"""Scoring and the decision, on hand-made vectors (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from router.routing.index import Index, IndexSettings, Scoring
from router.routing.intents import UNKNOWN, Intent, IntentSet


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def make(thresholds=(None, None), default=None, scoring=Scoring.NEAREST, k=3) -> Index:
    intents = IntentSet(
        intents=(
            Intent("refund", ("r1", "r2", "r3"), threshold=thresholds[0]),
            Intent("track", ("t1", "t2"), threshold=thresholds[1]),
        ),
        default_threshold=default,
        files=(),
        revision="rev",
    )
    vectors = np.stack(
        [unit(1, 0, 0), unit(1, 0.2, 0), unit(1, -0.5, 0.5), unit(0, 1, 0), unit(0, 1, 0.3)]
    )
    return Index(intents, vectors, IndexSettings(scoring=scoring, k=k, default_threshold=0.5))


def test_nearest_picks_closest_intent_and_example() -> None:
    (p,) = make().classify(unit(1, 0.25, 0)[None, :], top_k=2)
    assert p.intent == "refund"
    assert p.alternatives[0].example == "r2"
    assert p.alternatives[1].intent == "track"
    assert p.score == pytest.approx(float(unit(1, 0.25, 0) @ unit(1, 0.2, 0)), abs=1e-6)


def test_below_threshold_is_unknown_but_candidate_is_reported() -> None:
    (p,) = make().classify(unit(0, 0, 1)[None, :])
    assert p.intent == UNKNOWN
    assert p.candidate in {"refund", "track"}
    assert p.score < p.threshold == 0.5


def test_threshold_precedence_intent_then_file_then_index() -> None:
    q = unit(1, 0.25, 0.6)[None, :]
    score = make().classify(q)[0].score
    assert make(default=score + 0.01).classify(q)[0].intent == UNKNOWN
    assert make(default=score - 0.01).classify(q)[0].intent == "refund"
    # the intent's own threshold wins over the file default; 0.0 is a threshold, not "unset"
    p = make(thresholds=(0.0, None), default=0.99).classify(q)[0]
    assert (p.intent, p.threshold) == ("refund", 0.0)


def test_topk_mean_and_centroid_differ_from_nearest() -> None:
    q = unit(1, 0.2, 0)[None, :]
    nearest = make(scoring=Scoring.NEAREST).scores(q).scores[0]
    topk = make(scoring=Scoring.TOPK_MEAN, k=3).scores(q).scores[0]
    centroid = make(scoring=Scoring.CENTROID).scores(q).scores[0]
    assert nearest[0] == pytest.approx(1.0, abs=1e-6)
    sims = [float(q[0] @ unit(*v)) for v in ((1, 0, 0), (1, 0.2, 0), (1, -0.5, 0.5))]
    assert topk[0] == pytest.approx(sum(sims) / 3, abs=1e-6)
    # "track" has two examples only: top-3 mean averages the two it has
    assert topk[1] == pytest.approx(
        (float(q[0] @ unit(0, 1, 0)) + float(q[0] @ unit(0, 1, 0.3))) / 2, abs=1e-6
    )
    assert centroid[0] not in (nearest[0], topk[0])


def test_top_k_is_clamped_and_sorted() -> None:
    (p,) = make().classify(unit(0.2, 1, 0)[None, :], top_k=10)
    assert [a.intent for a in p.alternatives] == ["track", "refund"]
    assert p.alternatives[0].score >= p.alternatives[1].score


def test_index_is_immutable() -> None:
    index = make()
    with pytest.raises(ValueError, match="read-only"):
        index.matrix[0, 0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        index.thresholds[0] = 0.0


def test_vector_count_must_match_examples() -> None:
    intents = IntentSet((Intent("a", ("x", "y")),), None, (), "r")
    with pytest.raises(ValueError, match="2 examples"):
        Index(intents, np.zeros((3, 3), np.float32), IndexSettings())
