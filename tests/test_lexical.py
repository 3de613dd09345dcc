"""Lexical overlap (routing/lexical.py) and how an index mixes it in (routing/index.py),
on the fake encoder."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from fakes import FakeEncoder

from router.routing import lexical
from router.routing.engine import Engine
from router.routing.index import Index, IndexSettings, Reason
from router.routing.intents import Intent, IntentSet
from router.routing.lexical import LexicalIndex, grams

EXEMPLARS = [
    "申请退款",
    "我要退款，钱退回原账户",
    "查一下物流到哪了",
    "快递到哪了",
    "修改收货地址",
    "my iPhone won't turn on",
    "the charger is broken",
]


def test_chinese_runs_give_characters_and_pairs_other_runs_give_words() -> None:
    assert grams("申请退款") == ["申", "请", "退", "款", "申请", "请退", "退款"]
    assert grams("My iPhone, order A1234!") == ["my", "iphone", "order", "a1234"]
    # mixed script, full-width letters (NFKC) and punctuation
    assert grams("我的ＩＰｈｏｎｅ无法开机。") == (
        ["我", "的", "我的", "iphone", "无", "法", "开", "机", "无法", "法开", "开机"]
    )
    assert grams("snake_case ... ???") == ["snake", "case"]
    assert grams("") == []


def dense_reference(exemplars: list[str], texts: list[str]) -> np.ndarray:
    """The module doc's TF-IDF cosine, written out with dense vectors."""
    counted = [Counter(grams(t)) for t in exemplars]
    df = Counter(u for c in counted for u in c)
    units = sorted(df)
    n = len(exemplars)
    idf = {u: math.log((1 + n) / (1 + df[u])) + 1 for u in units}

    def vector(text: str) -> np.ndarray:
        v = np.zeros(len(units))
        unseen = 0.0  # units of no exemplar count in the length
        for u, c in Counter(grams(text)).items():
            if u in idf:
                v[units.index(u)] = (1 + math.log(c)) * idf[u]
            else:
                unseen += ((1 + math.log(c)) * (math.log(1 + n) + 1)) ** 2
        norm = math.sqrt(float(v @ v) + unseen)
        return v / norm if norm else v

    e = np.array([vector(t) for t in exemplars])
    q = np.array([vector(t) for t in texts])
    return q @ e.T


QUERIES = ["怎么退款？", "退款退款，快递到哪了", "iphone broken", "天气不错", "", "退"]


def test_similarities_are_the_tf_idf_cosine() -> None:
    found = LexicalIndex(EXEMPLARS).similarities(QUERIES)
    assert found.shape == (len(QUERIES), len(EXEMPLARS))
    assert found == pytest.approx(dense_reference(EXEMPLARS, QUERIES), abs=1e-6)
    assert found[3].max() == 0  # nothing shared
    assert found[4].max() == 0  # empty
    same = LexicalIndex(EXEMPLARS).similarities(EXEMPLARS)
    assert np.diag(same) == pytest.approx(1.0, abs=1e-6)


def test_similarities_in_chunks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = LexicalIndex(EXEMPLARS).similarities(QUERIES)
    monkeypatch.setattr(lexical, "MAX_VALUES", len(EXEMPLARS) * 2)  # two texts a chunk
    assert LexicalIndex(EXEMPLARS).similarities(QUERIES) == pytest.approx(whole, abs=0)


def test_an_empty_index_matches_nothing() -> None:
    assert LexicalIndex([]).similarities(["退款"]).shape == (1, 0)


def shop() -> IntentSet:
    return IntentSet(
        intents=(
            Intent("request_refund", ("申请退款", "我要退款")),
            Intent("track_delivery", ("查一下物流", "快递到哪了")),
            Intent("exchange_item", ("换个大一号的", "我想换货")),
        ),
        default_threshold=0.0,
        files=(),
        revision="r",
    )


def index_of(weight: float) -> tuple[Index, FakeEncoder]:
    encoder = FakeEncoder()
    intents = shop()
    vectors = encoder.embed([e for i in intents.intents for e in i.examples])
    return Index(intents, vectors, IndexSettings(lexical_weight=weight)), encoder


def test_the_index_mixes_each_intents_best_overlap_into_scores_and_rank() -> None:
    plain, encoder = index_of(0.0)
    mixed, _ = index_of(0.5)
    assert plain.lexical is None
    texts = ["退款怎么申请", "快递"]
    q = encoder.embed(texts)
    dense, both = plain.scores(q), mixed.scores(q, texts)
    overlap = mixed.lexical_scores(texts, 2)
    assert overlap is not None
    assert overlap[0].argmax() == 0 and overlap[1].argmax() == 1
    # the best exemplar of each intent, from the TF-IDF cosine
    sims = dense_reference(list(mixed.examples), texts)
    assert overlap[0] == pytest.approx([sims[0, :2].max(), sims[0, 2:4].max(), sims[0, 4:].max()])
    assert both.scores == pytest.approx(dense.scores + 0.5 * overlap * (1 - dense.scores), abs=1e-6)
    assert (both.scores >= dense.scores - 1e-6).all() and (both.scores <= 1).all()
    assert mixed.head is not None
    scale = mixed.head.scale
    assert both.rank == pytest.approx(dense.rank + 0.5 * scale * overlap, abs=1e-4)
    assert both.sims == pytest.approx(dense.sims)
    assert plain.scores(q, texts).scores == pytest.approx(dense.scores)  # texts unused at 0


def test_an_index_with_overlap_asks_for_the_texts() -> None:
    mixed, encoder = index_of(0.5)
    q = encoder.embed(["退款"])
    with pytest.raises(ValueError, match="pass the texts of the 1 rows"):
        mixed.scores(q)
    with pytest.raises(ValueError, match="pass the texts"):
        mixed.scores(q, ["退款", "two texts for one row"])
    for weight in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"not in \[0, 1\]"):
            index_of(weight)


def test_the_engine_reads_the_models_weight_and_blanks_refusals() -> None:
    """The fake's bag of words cannot read Chinese words apart well: the overlap decides,
    and the refused words ("不要退款") must not count for the refund intent."""
    engine = Engine(FakeEncoder(lexical_weight=1.0), IndexSettings(calibrate=False))
    snapshot = engine.load(shop())
    assert snapshot.index.lexical_weight == 1.0
    overlap = snapshot.index.lexical
    assert overlap is not None
    read: list[str] = []
    similarities = overlap.similarities

    def recording(texts: Sequence[str]) -> np.ndarray:
        read.extend(texts)
        return similarities(texts)

    overlap.similarities = recording  # type: ignore[method-assign]
    result = engine.classify(["我不要退款，我想换个大一号的", "我要退款", "我不要退款"])
    # the messages with their refusals blanked, then the refused spans themselves
    assert read == ["我    ，我想换个大一号的", "我要退款", "我    ", "退款", "退款"]
    first, second, third = result.predictions
    assert first.candidate == "exchange_item"
    assert "request_refund" not in [a.intent for a in first.alternatives[:1]]
    assert second.candidate == "request_refund"
    assert third.reason is Reason.NOTHING_WANTED
    off = Engine(FakeEncoder(), IndexSettings(calibrate=False))
    assert off.load(shop()).index.lexical is None


def test_tickets_mix_in_the_overlap_of_each_passage() -> None:
    engine = Engine(FakeEncoder(lexical_weight=1.0), IndexSettings(calibrate=False))
    engine.load(shop())
    result = engine.classify(["我要退款。另外快递到哪了？"], multi_intent=True)
    (prediction,) = result.predictions
    assert {m.intent for m in prediction.matches} >= {"request_refund", "track_delivery"}


def test_the_intents_weight_wins_over_the_models() -> None:
    model_on = Engine(FakeEncoder(lexical_weight=1.0), IndexSettings(calibrate=False))
    index = model_on.load(replace(shop(), lexical_weight=0.0)).index
    assert index.lexical is None and index.scoring == "head"
    model_off = Engine(FakeEncoder(), IndexSettings(calibrate=False))
    index = model_off.load(replace(shop(), lexical_weight=0.25)).index
    assert index.lexical is not None and index.scoring == "head + lexical 0.25"
