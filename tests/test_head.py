"""The trained head (router/routing/head.py) and the one confidence Index.scores reports.

Pure numpy, no model: synthetic unit vectors for the head itself, the deterministic
FakeEncoder for the check through ``Index``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fakes import FakeEncoder

from router.routing.head import Features, Head, Start, train_head
from router.routing.index import Index, IndexSettings, Reason, Scoring
from router.routing.intents import UNKNOWN, Intent, IntentSet
from router.vectors import unit_rows

#: The documented mix: (head, intent's top-k mean, any-exemplar top-k mean), reject weight.
W_HEAD, W_LOCAL, W_ANY, W_REJECT = 0.5, 0.25, 0.25, 0.25
LOCAL_K, ANY_K = 3, 5


def separable(seed: int = 3, dim: int = 8, classes: int = 4, n: int = 60):
    """Unit vectors labelled by a random linear rule with a margin: separable by a linear
    classifier, but (for this seed) not by the class centroids."""
    rng = np.random.default_rng(seed)
    rule = rng.standard_normal((dim, classes))
    x = unit_rows(rng.standard_normal((4000, dim)))
    z = np.sort(x @ rule, axis=1)
    x = x[(z[:, -1] - z[:, -2]) > 0.5][:n]
    y = (x @ rule).argmax(axis=1).astype(np.int64)
    assert np.bincount(y, minlength=classes).min() > 0
    return x, y


def clusters(seed: int = 11, dim: int = 16, classes: int = 3, per: int = 8, spread: float = 0.25):
    """Tight clusters around random unit directions: (x, labels, centres)."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((classes, dim)))
    x = unit_rows(
        np.repeat(centres, per, axis=0) + spread * rng.standard_normal((classes * per, dim))
    )
    return x, np.repeat(np.arange(classes), per).astype(np.int64), centres


# ---------------------------------------------------------------------- training


def test_training_is_deterministic() -> None:
    x, y = separable()
    negatives = unit_rows(np.random.default_rng(5).standard_normal((6, x.shape[1])))
    first = train_head(x, y, 4, negatives=negatives)
    again = train_head(x.copy(), y.copy(), 4, negatives=negatives.copy(), seed=12345)
    for field in ("weights", "bias", "reject"):
        assert np.array_equal(getattr(first, field), getattr(again, field)), field
    assert first.reject_bias == again.reject_bias


def test_separable_data_is_learned_beyond_the_centroids() -> None:
    x, y = separable()
    centroid = train_head(x, y, 4, steps=0)
    trained = train_head(x, y, 4)
    # the data needs the training: the centroid router (step 0) gets some rows wrong...
    assert (centroid.logits(x).argmax(axis=1) == y).mean() < 0.9
    # ...and the trained head gets every one right
    assert np.array_equal(trained.logits(x).argmax(axis=1), y)
    probabilities = trained.probabilities(x)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=1), y)


def test_step_zero_is_the_centroid_router() -> None:
    x, y = separable()
    rng = np.random.default_rng(2)
    negatives = unit_rows(rng.standard_normal((5, x.shape[1])))
    head = train_head(x, y, 4, steps=0, negatives=negatives)
    centroids = unit_rows(np.stack([x[y == c].mean(axis=0) for c in range(4)]))
    assert np.allclose(head.weights, centroids.T, atol=1e-6)
    assert np.array_equal(head.bias, np.zeros(4, np.float32))
    assert head.reject is not None
    assert np.allclose(head.reject, unit_rows(negatives.mean(axis=0)), atol=1e-6)
    assert head.reject_bias == 0.0
    # so its logits are the scaled cosines to the centroids, and it answers as they do
    queries = unit_rows(rng.standard_normal((50, x.shape[1])))
    assert np.allclose(head.logits(queries), head.scale * (queries @ centroids.T), atol=1e-5)
    assert np.array_equal(head.logits(queries).argmax(1), (queries @ centroids.T).argmax(1))


def test_the_reject_class_lowers_the_confidence_near_the_negatives() -> None:
    x, y, centres = clusters()
    rng = np.random.default_rng(3)
    far = unit_rows(rng.standard_normal(x.shape[1]))  # where the out-of-scope sentences are
    negatives = unit_rows(far + 0.25 * rng.standard_normal((8, x.shape[1])))
    plain = train_head(x, y, 3)
    guarded = train_head(x, y, 3, negatives=negatives)
    assert plain.reject is None and guarded.reject is not None
    assert guarded.n_classes == 3  # the reject class is never answered

    def confidence(head: Head, queries: np.ndarray) -> np.ndarray:
        """The winner's confidence; local and any terms as Index computes them."""
        sims = queries @ x.T
        winner = head.logits(queries).argmax(axis=1)
        local = np.array(
            [np.sort(s[y == w])[-LOCAL_K:].mean() for s, w in zip(sims, winner, strict=True)]
        )
        near = np.sort(sims, axis=1)[:, -ANY_K:].mean(axis=1)
        cosine = (head.logits(queries) / head.scale)[np.arange(len(queries)), winner]
        return head.mix_scores(cosine, local, near, head.reject_score(queries))

    near_negatives = unit_rows(far + 0.25 * rng.standard_normal((20, x.shape[1])))
    lowered = confidence(plain, near_negatives) - confidence(guarded, near_negatives)
    assert (lowered > 0.05).all(), lowered.min()
    # near the intents the reject term adds confidence: head beats reject there
    in_scope = unit_rows(
        np.repeat(centres, 5, axis=0) + 0.2 * rng.standard_normal((15, x.shape[1]))
    )
    reject = guarded.reject_score(in_scope)
    assert reject is not None
    best = guarded.logits(in_scope).max(axis=1) / guarded.scale
    assert (best > reject).all()
    assert (confidence(guarded, in_scope) > confidence(guarded, near_negatives).max()).all()


# ---------------------------------------------------------------- the confidence


def documented(head, local, near, reject=None, mix=(W_HEAD, W_LOCAL, W_ANY), weight=W_REJECT):
    """head.py's formula, written out independently in float64."""
    head, local, near = (np.asarray(a, np.float64) for a in (head, local, near))
    mixed = mix[0] * head + mix[1] * local + mix[2] * near
    if reject is not None:
        mixed = mixed + weight * (head - np.asarray(reject, np.float64))
    return np.clip(mixed, -1.0, 1.0)


def a_head(dim: int = 4, classes: int = 3, **kwargs) -> Head:
    return Head(np.eye(dim, classes, dtype=np.float32), np.zeros(classes, np.float32), **kwargs)


def test_mix_scores_is_the_documented_formula_and_stays_in_range() -> None:
    rng = np.random.default_rng(0)
    # head terms beyond [-1, 1] happen (logits / scale of a trained head), so does clipping
    head = rng.uniform(-1.6, 1.6, (40, 3)).astype(np.float32)
    local = rng.uniform(-1, 1, (40, 3)).astype(np.float32)
    near = rng.uniform(-1, 1, (40, 1)).astype(np.float32)  # broadcast over the intents
    reject = rng.uniform(-1, 1, (40, 1)).astype(np.float32)
    for got, want in (
        (a_head().mix_scores(head, local, near, None), documented(head, local, near)),
        (a_head().mix_scores(head, local, near, reject), documented(head, local, near, reject)),
        (
            a_head(mix=(0.2, 0.3, 0.5), reject_weight=0.6).mix_scores(head, local, near, reject),
            documented(head, local, near, reject, mix=(0.2, 0.3, 0.5), weight=0.6),
        ),
    ):
        assert got.shape == (40, 3) and got.dtype == np.float32
        assert np.allclose(got, want, atol=1e-6)
        assert got.min() >= -1.0 and got.max() <= 1.0
    clipped = a_head().mix_scores(head, local, near, reject)
    assert (clipped == 1.0).any() and (clipped == -1.0).any()  # the clip was exercised
    ones = np.ones(1, np.float32)
    assert a_head().mix_scores(ones, ones, ones, -ones)[0] == 1.0  # 1.5 unclipped
    assert a_head().mix_scores(-ones, -ones, -ones, ones)[0] == -1.0


def test_reject_score_is_the_reject_logit_over_the_scale() -> None:
    x, y, _ = clusters()
    negatives = unit_rows(np.random.default_rng(4).standard_normal((5, x.shape[1])))
    head = train_head(x, y, 3, negatives=negatives)
    assert head.reject is not None
    got = head.reject_score(x)
    assert got is not None and got.shape == (len(x),)
    assert np.allclose(got, x @ head.reject + head.reject_bias / head.scale, atol=1e-6)
    assert train_head(x, y, 3).reject_score(x) is None
    assert train_head(x, y, 3, negatives=negatives[:0]).reject is None  # none given: none


# ----------------------------------------------------------------------- Features


def test_features_with_one_block_are_unit_rows() -> None:
    rows = np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32) * 3
    features = Features.fit(rows, 1)
    assert features.centre is None
    out = features(rows)
    assert np.allclose(out, rows / np.linalg.norm(rows, axis=1, keepdims=True), atol=1e-6)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_features_with_several_blocks_are_centred_unit_blocks_over_sqrt_layers() -> None:
    rng = np.random.default_rng(2)
    layers, dim = 3, 5
    exemplars = (rng.standard_normal((9, layers * dim)) + 4.0).astype(np.float32)  # shared offset
    queries = (rng.standard_normal((4, layers * dim)) + 4.0).astype(np.float32)
    features = Features.fit(exemplars, layers)
    assert features.centre is not None and features.centre.shape == (layers, dim)
    centre = exemplars.reshape(9, layers, dim).mean(axis=0)
    assert np.allclose(features.centre, centre, atol=1e-6)
    for rows in (exemplars, queries):  # queries are centred on the exemplars' mean
        out = features(rows)
        assert out.shape == rows.shape
        blocks = rows.reshape(len(rows), layers, dim) - centre
        want = blocks / np.linalg.norm(blocks, axis=2, keepdims=True) / np.sqrt(layers)
        assert np.allclose(out, want.reshape(len(rows), -1), atol=1e-6)
        per_block = np.linalg.norm(out.reshape(len(rows), layers, dim), axis=2)
        assert np.allclose(per_block, 1 / np.sqrt(layers), atol=1e-6)  # each block weighs the same
        assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    # a row at the centre has nothing left: zeros, not NaN
    assert np.array_equal(features(centre.reshape(1, -1)), np.zeros((1, layers * dim), np.float32))


# ------------------------------------------------------------- immutability, errors


def test_head_and_features_are_read_only() -> None:
    x, y, _ = clusters()
    negatives = unit_rows(np.random.default_rng(4).standard_normal((5, x.shape[1])))
    head = train_head(x, y, 3, negatives=negatives)
    for name in ("weights", "bias", "reject"):
        array = getattr(head, name)
        assert not array.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        head.scale = 1.0  # type: ignore[misc]
    # the head keeps its own copies: the caller's arrays stay the caller's
    weights = np.eye(4, 3, dtype=np.float32)
    built = Head(weights, np.zeros(3, np.float32))
    weights[0, 0] = 9.0
    assert built.weights[0, 0] == 1.0 and weights.flags.writeable
    features = Features.fit(np.ones((3, 8), np.float32), 2)
    assert features.centre is not None and not features.centre.flags.writeable


def test_bad_shapes_raise_value_error() -> None:
    x, y, _ = clusters()
    with pytest.raises(ValueError, match="bias shape"):
        Head(np.eye(4, 3, dtype=np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="reject shape"):
        a_head(reject=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="positive"):
        a_head(any_k=0)
    with pytest.raises(ValueError, match="positive"):
        a_head(scale=0.0)
    with pytest.raises(ValueError, match=r"\(n, dim\)"):
        train_head(x[0], y[:1], 3)
    with pytest.raises(ValueError, match="one label per row"):
        train_head(x, y[:-1], 3)
    with pytest.raises(ValueError, match="n_classes must be positive"):
        train_head(x, y, 0)
    with pytest.raises(ValueError, match=r"negatives must be \(k, dim\)"):
        train_head(x, y, 3, negatives=np.zeros((2, x.shape[1] + 1), np.float32))
    with pytest.raises(ValueError, match=r"negatives must be \(k, dim\)"):
        train_head(x, y, 3, negatives=np.zeros(x.shape[1], np.float32))


@pytest.mark.parametrize(
    ("labels", "n_classes"),
    [
        ([0, 0, 2, 2], 3),  # class 1 has no exemplar
        ([0, 1, 2, 3], 3),  # a label outside [0, n_classes)
        ([], 1),  # no exemplars at all
    ],
)
def test_every_class_needs_an_exemplar(labels: list[int], n_classes: int) -> None:
    x = unit_rows(np.random.default_rng(0).standard_normal((len(labels), 4)))
    with pytest.raises(ValueError, match="every class"):
        train_head(x, np.array(labels, dtype=np.int64), n_classes)


# ------------------------------------------------- through Index: one confidence


INTENTS = {
    "track_delivery": (
        "where is my parcel",
        "track my order",
        "has my package shipped yet",
        "when will my order arrive",
    ),
    "refund": ("i want my money back", "refund my order please", "give me a refund", "money back"),
    "reset_password": ("i forgot my password", "reset my password"),  # fewer than k = 3
}
OUT_OF_SCOPE = ("tell me a joke", "what is the weather today", "who won the football match")
QUERIES = (
    "where is my order",
    "refund please",
    "password reset",
    "tell me a funny joke",
    "the weather tomorrow",
    "my parcel never arrived so i want a refund",
    "football results",
    "hello",
)


def fake_index(negatives: bool, threshold: float) -> tuple[Index, FakeEncoder]:
    encoder = FakeEncoder(layers=2)  # two blocks: the head reads centred Features
    intents = IntentSet(
        intents=tuple(Intent(name, examples) for name, examples in INTENTS.items()),
        default_threshold=threshold,
        files=(),
        revision="r",
        out_of_scope=OUT_OF_SCOPE if negatives else (),
    )
    texts = [e for examples in INTENTS.values() for e in examples]
    index = Index(
        intents,
        encoder.embed(texts),
        IndexSettings(scoring=Scoring.HEAD),
        encoder.embed(OUT_OF_SCOPE) if negatives else None,
        layers=encoder.layers,
    )
    return index, encoder


@pytest.mark.parametrize("negatives", [False, True], ids=["plain", "with-reject"])
def test_index_head_score_is_the_documented_mix_of_its_three_terms(negatives: bool) -> None:
    index, encoder = fake_index(negatives, threshold=0.0)
    head = index.head
    assert head is not None and (head.reject is not None) == negatives
    rows = encoder.embed(QUERIES)
    scored = index.scores(rows)

    # The terms, computed here from the sentence vectors (the last block) and the exemplars.
    sentence = rows[:, -encoder.dimension :].astype(np.float64)
    sentence /= np.linalg.norm(sentence, axis=1, keepdims=True)
    exemplars = encoder.embed([e for examples in INTENTS.values() for e in examples])
    exemplars = exemplars[:, -encoder.dimension :].astype(np.float64)
    exemplars /= np.linalg.norm(exemplars, axis=1, keepdims=True)
    sims = sentence @ exemplars.T
    owner = np.repeat(np.arange(len(INTENTS)), [len(e) for e in INTENTS.values()])
    local = np.stack(
        [[np.sort(s[owner == c])[-LOCAL_K:].mean() for c in range(len(INTENTS))] for s in sims]
    )
    near = np.sort(sims, axis=1)[:, -ANY_K:].mean(axis=1, keepdims=True)
    features = index.features(rows)
    logits = head.logits(features)
    cosine = logits / head.scale
    reject = head.reject_score(features)
    reject = None if reject is None else reject[:, None]

    assert np.allclose(scored.sims, sims, atol=1e-5)
    assert np.array_equal(scored.rank, logits)  # the head ranks the intents
    assert np.allclose(scored.scores, documented(cosine, local, near, reject), atol=1e-5)
    assert np.allclose(scored.scores, head.mix_scores(cosine, local, near, reject), atol=1e-5)


def test_the_score_compared_with_the_threshold_is_the_mixed_confidence() -> None:
    probe, encoder = fake_index(negatives=True, threshold=0.0)
    rows = encoder.embed(QUERIES)
    scored = probe.scores(rows)
    winners = scored.rank.argmax(axis=1)
    confidence = scored.scores[np.arange(len(QUERIES)), winners]
    threshold = float(np.median(confidence))  # some answered, some not
    index, _ = fake_index(negatives=True, threshold=threshold)
    predictions = index.classify(rows)
    reasons = {p.reason for p in predictions}
    assert reasons == {Reason.MATCHED, Reason.BELOW_THRESHOLD}
    for p, winner, score in zip(predictions, winners, confidence, strict=True):
        assert p.candidate == index.names[winner]
        assert p.score == pytest.approx(float(score), abs=1e-6)
        assert p.threshold == pytest.approx(threshold, abs=1e-6)
        answered = np.float32(p.score) >= np.float32(p.threshold)
        assert p.intent == (p.candidate if answered else UNKNOWN)


# ------------------------------------------------------------------- warm starts


def test_a_warm_start_begins_from_the_previous_columns_matched_by_name() -> None:
    x, y, _ = clusters(classes=3)
    previous = train_head(x, y, 3)
    # classes now: c, a, and a new one (d) made of a's rows moved
    names, new_names = ["a", "b", "c"], ["c", "a", "d"]
    start = Start.matching(previous, names, new_names)
    assert start.columns == (2, 0, None)
    new_y = np.select([y == 2, y == 0, y == 1], [0, 1, 2]).astype(np.int64)
    head = train_head(x, new_y, 3, start=start, steps=0)
    assert np.array_equal(head.weights[:, 0], previous.weights[:, 2])
    assert np.array_equal(head.weights[:, 1], previous.weights[:, 0])
    assert head.bias[0] == previous.bias[2] and head.bias[1] == previous.bias[0]
    centroid = unit_rows(x[y == 1].sum(axis=0, keepdims=True))[0]
    assert np.allclose(head.weights[:, 2], centroid, atol=1e-6) and head.bias[2] == 0.0
    # steps from the start move every column, and keep learning the data
    trained = train_head(x, new_y, 3, start=start, steps=20)
    assert not np.array_equal(trained.weights, head.weights)
    assert (trained.logits(x).argmax(axis=1) == new_y).mean() == 1.0


def test_as_is_is_the_columns_when_every_class_has_one() -> None:
    x, y, _ = clusters(classes=3)
    negatives = unit_rows(np.random.default_rng(4).standard_normal((5, x.shape[1])))
    previous = train_head(x, y, 3, negatives=negatives)
    same = Start.matching(previous, ["a", "b", "c"], ["b", "c"])
    head = same.as_is(has_reject=True)
    assert head is not None
    assert np.array_equal(head.weights, previous.weights[:, [1, 2]])
    assert np.array_equal(head.bias, previous.bias[[1, 2]])
    assert head.reject is not None and np.array_equal(head.reject, previous.reject)
    assert head.reject_bias == previous.reject_bias
    assert same.as_is(has_reject=False).reject is None  # type: ignore[union-attr]
    # a new class needs its centroid; a reject class the head never had, its negatives
    assert Start.matching(previous, ["a", "b", "c"], ["a", "z"]).as_is(has_reject=True) is None
    plain = train_head(x, y, 3)
    assert Start.matching(plain, ["a", "b", "c"], ["a"]).as_is(has_reject=True) is None


def test_on_step_is_called_before_each_step_and_can_stop_the_training() -> None:
    x, y = separable()
    seen: list[int] = []
    train_head(x, y, 4, steps=7, on_step=seen.append)
    assert seen == list(range(1, 8))

    class Stop(Exception):
        pass

    def stop_at_three(step: int) -> None:
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train_head(x, y, 4, on_step=stop_at_three)


def test_a_start_that_does_not_fit_is_refused() -> None:
    x, y = separable()
    previous = train_head(x, y, 4)
    with pytest.raises(ValueError, match="start"):
        train_head(x, y, 4, start=Start(previous, (0, 1, 2)))  # 3 columns for 4 classes
    wider = np.concatenate([x, x], axis=1)
    with pytest.raises(ValueError, match="start"):
        train_head(wider, y, 4, start=Start(previous, (0, 1, 2, 3)))
