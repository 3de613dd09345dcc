"""Traditional Chinese folded to simplified for every reader (routing/folding.py)."""

from __future__ import annotations

import pytest

from router.routing.folding import FOLDING, fold
from router.routing.lexical import grams
from router.routing.negation import analyse


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("怎麼退款？", "怎么退款？"),
        ("我不想用了能退錢嗎？", "我不想用了能退钱吗？"),
        ("訂單號A1234還沒到", "订单号A1234还没到"),
        ("別寄了，發票開錯了", "别寄了，发票开错了"),
        ("我的iPhone無法開機", "我的iPhone无法开机"),
    ],
)
def test_traditional_characters_read_as_simplified_one_for_one(
    traditional: str, simplified: str
) -> None:
    folded = fold(traditional)
    assert folded == simplified
    assert len(folded) == len(traditional)  # offsets into the text stay valid
    assert fold(simplified) == simplified


@pytest.mark.parametrize(
    "text",
    [
        "I want a refund",
        "東京の電車が遅れました",  # kana: Japanese, whose kanji are neither form
        "退款，可以吗？",  # full-width punctuation stays
        "",
    ],
)
def test_text_without_chinese_or_with_kana_is_left_alone(text: str) -> None:
    assert fold(text) == text


def test_the_table_maps_one_ideograph_to_one_other() -> None:
    from router.routing.folding import _TRADITIONAL as _TABLE

    assert len(_TABLE) > 4000
    assert FOLDING.startswith("fold")
    assert fold("薴") == fold(fold("薴")) == "苎"  # a chain in the table, followed to its end
    assert all(fold(s) == s for s in _TABLE.values())  # folding is idempotent
    for code, simplified in _TABLE.items():
        assert len(simplified) == 1 and chr(code) != simplified
    assert not set(map(ord, "退款订单取消")) & _TABLE.keys()  # simplified forms are not keys


def test_lexical_units_and_negation_read_the_folded_text() -> None:
    assert grams("怎麼退款") == grams("怎么退款")
    refusal = analyse("別給我退款")
    assert [s.refusal for s in refusal.spans] == [True]
    assert refusal.text == "別給我退款"  # the analysis keeps the text as sent
    assert analyse("我不要退款，我想換個大一號的").refusals


def test_full_width_letters_digits_and_spaces_read_as_ascii() -> None:
    wide = "Ｉ\u3000ｗａｎｔ ａ ｒｅｆｕｎｄ ｆｏｒ ｏｒｄｅｒ １２３４"
    assert fold(wide) == "I want a refund for order 1234"
    # in a Japanese text too, where the kanji stay as they are
    assert fold("注文番号ＡＢ１２の電車") == "注文番号AB12の電車"
    assert grams(wide) == grams("I want a refund for order 1234")
    assert analyse("Ｉ ｄｏｎ＇ｔ ｗａｎｔ ａ ｒｅｆｕｎｄ").refusals


def test_a_refusal_in_traditional_characters_with_thanks_wants_nothing() -> None:
    from router.routing.negation import default_lexicon

    # 謝謝 is a filler only once folded (谢谢): nothing is wanted besides the refusal
    assert analyse("別給我退款，謝謝").wants_nothing(default_lexicon())


def test_the_folding_is_part_of_the_revision_and_of_the_vector_cache_key(
    fake_encoder, bundled, monkeypatch
) -> None:
    import router.routing.engine as engine_module
    from router.routing.engine import Engine, revision_of

    engine = Engine(fake_encoder)
    first = engine.load(bundled).revision
    assert first == revision_of(bundled, fake_encoder)
    embedded = fake_encoder.texts_seen
    monkeypatch.setattr(engine_module, "FOLDING", "another folding")
    assert revision_of(bundled, fake_encoder) != first
    engine.load(bundled)  # same engine, same cache: every example embedded again
    assert fake_encoder.texts_seen - embedded >= bundled.example_count


def test_a_lone_surrogate_reads_as_the_replacement_character() -> None:
    from router.routing.folding import without_lone_surrogates

    assert fold("refund \ud83d") == "refund \ufffd"
    assert fold("返金\udcffして") == "返金\ufffdして"  # Japanese: kanji kept, surrogate not
    assert without_lone_surrogates("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert without_lone_surrogates("refund 😀") == "refund 😀"  # a whole emoji is text


def test_the_engine_routes_a_text_holding_a_lone_surrogate(engine) -> None:
    """The tokenizer refuses such a string; the engine reads it folded (U+FFFD)."""
    result = engine.classify(["\ud83d I want a refund", "I want a refund"])
    first, second = result.predictions
    assert first.intent == second.intent == "request_refund"
    assert result.analyses[0].text == "\ud83d I want a refund"  # the text as sent
