"""Negation cues, scopes and refusals: pure functions, checked on hand-picked sentences."""

from __future__ import annotations

import pytest

from router.routing.negation import (
    Lexicon,
    NegationSettings,
    analyse,
    default_lexicon,
    pooling_spans,
)


def refused(text: str) -> list[str]:
    a = analyse(text)
    return [s.text(text) for s in a.refusals]


def states(text: str) -> list[str]:
    a = analyse(text)
    return [s.text(text) for s in a.spans if not s.refusal]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't want a refund, I want a bigger size", ["want a refund"]),
        ("don't cancel my subscription, just pause it", ["cancel my subscription"]),
        ("not cancelling, I just need to change the address", ["cancelling"]),
        ("I'm not after a refund but I'd like a swap", ["after a refund"]),
        ("No need to cancel anything, thanks", ["need to cancel anything"]),
        ("please don't delete my account", ["delete my account"]),
        ("It's not about a refund, actually I was charged twice", ["about a refund"]),
        ("I do not want a refund instead send a new one", ["want a refund"]),
        ("I don’t want a refund", ["want a refund"]),  # typographic apostrophe
        ("我不要退款，我想换大一号", ["退款"]),
        ("别取消我的订阅，暂停一个月就行", ["取消我的订阅"]),
        ("forget the refund, just send me a replacement", ["the refund"]),
        ("Forget about the refund, I want an exchange", ["the refund"]),
        ("I didn't ask for a refund, I asked for a new one", ["ask for a refund"]),
    ],
)
def test_refusals_and_their_scope(text: str, expected: list[str]) -> None:
    assert refused(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my phone won't turn on",
        "I haven't received my order",
        "the payment didn't go through",
        "I can't log in",
        "I'm not receiving the login code",
        "The fridge isn't cooling at all",
        "I never got my parcel",
        "我的手机开不了机",
    ],
)
def test_negation_that_belongs_to_the_intent_is_not_a_refusal(text: str) -> None:
    a = analyse(text)
    assert not a.refusals
    if not any("\u4e00" <= c <= "\u9fff" for c in text):
        assert a.spans, "the cue is still found"


def test_bare_no_is_an_answer_not_a_cue() -> None:
    assert refused("No, I don't want to speak to an agent") == ["want to speak to an agent"]
    assert analyse("no thanks").spans == ()


def test_wants_nothing_only_when_nothing_is_left() -> None:
    lex = default_lexicon()
    assert analyse("I don't want a refund").wants_nothing(lex)
    assert analyse("please don't cancel it, thanks").wants_nothing(lex)
    assert not analyse("I don't want a refund, I want a bigger size").wants_nothing(lex)
    assert not analyse("where is my parcel").wants_nothing(lex)  # nothing refused


def test_lexicon_extends_per_deployment() -> None:
    assert not analyse("nope to the refund").spans
    lex = default_lexicon().extended(Lexicon(cues=("nope",), refusal=("to",)))
    assert [s.refusal for s in analyse("nope to the refund", lex).spans] == [True]


def test_pooling_spans_cover_cue_and_scope() -> None:
    text = "I don't want a refund, I want a bigger size"
    (span,) = pooling_spans(analyse(text), NegationSettings(scope_weight=0.25))
    assert text[span[0] : span[1]] == "n't want a refund"
    assert span[2] == 0.25
    assert pooling_spans(analyse(text), NegationSettings(enabled=False)) == []


@pytest.mark.parametrize(
    "text",
    [
        "I don't want my reservation anymore",  # a request to cancel, not a refusal
        "I no longer want the order, cancel it",
        "don't forget to set an alarm for noon",
        "I don't know",
    ],
)
def test_discontinuation_and_stative_verbs_are_not_refusals(text: str) -> None:
    assert not analyse(text).refusals


@pytest.mark.parametrize(
    "text",
    [
        "isn't my top-up supposed to mean its complete?",
        "shouldn't my new card be here by now?",
        "don't really care",
    ],
)
def test_one_word_before_a_cue_then_a_denied_word_does_not_crash(text: str) -> None:
    analysis = analyse(text)  # raised IndexError
    assert [text[s.cue[0] : s.cue[1]] for s in analysis.spans] == ["n't"]


@pytest.mark.parametrize(
    ("typed", "standard"),
    [
        ("I dont want a refund", "I don't want a refund"),
        ("I don`t want a refund", "I don't want a refund"),
        ("I don\u02bct want a refund", "I don't want a refund"),
        ("I don\uff07t want a refund", "I don't want a refund"),
        ("dont cancel it please", "don't cancel it please"),
        ("please dont delete my account", "please don't delete my account"),
        ("my phone wont turn on", "my phone won't turn on"),
        ("I cant log in", "I can't log in"),
        (
            "I dont want a refund, I want a bigger size",
            "I don't want a refund, I want a bigger size",
        ),
    ],
)
def test_negation_typed_without_a_straight_apostrophe_reads_as_with_one(
    typed: str, standard: str
) -> None:
    lex = default_lexicon()
    a, b = analyse(typed), analyse(standard)
    assert [s.refusal for s in a.spans] == [s.refusal for s in b.spans]
    assert a.wants_nothing(lex) == b.wants_nothing(lex)
    assert a.spans, typed


@pytest.mark.parametrize(
    ("text", "refusal", "nothing_wanted"),
    [
        ("no refund please", True, True),
        ("no refund thanks", True, True),
        ("no refunds, thanks", True, True),
        ("no refund please, I want a replacement", True, False),
        ("no refund, I'd rather have a replacement", True, False),
        ("no refund, send a new one instead", True, False),
        ("no refund, I want an exchange", True, False),  # a service, then a want
        ("No exchanges, just refund me", True, False),
        ("no return label, I need one", False, False),  # a thing missing, not the service
        ("No refund!! Please refund me now", False, False),  # the same service, demanded
        ("No refund, I want my money back now", False, False),
        ("no exchange, please just tell me the status", False, False),
        # a missing thing, not a refusal of it
        ("no refund yet", False, False),
        ("no refund yet please", False, False),
        ("still no refund", False, False),
        ("No refund but I sent it back", False, False),
        ("No access to my account please help", False, False),
        ("No refund received please help", False, False),
        ("no tracking info, just a label created", False, False),
        ("no more emails please", False, False),  # stop them: a request
        ("no refund please help", False, False),
        ("no package, I want a refund", False, False),  # the package is missing
        ("no confirmation email, I need to check my order", False, False),
        ("no response from support, I need a refund", False, False),
        ("我没收到退款", False, False),  # "I have not received the refund"
        ("你们也没说要多久才能退款", False, False),  # "you never said how long it takes"
    ],
)
def test_no_x_is_a_refusal_only_when_asked_as_one(
    text: str, refusal: bool, nothing_wanted: bool
) -> None:
    analysis = analyse(text)
    assert [s.refusal for s in analysis.spans] == [refusal]
    assert analysis.wants_nothing(default_lexicon()) == nothing_wanted


def test_offsets_hold_after_a_character_whose_lower_case_is_longer() -> None:
    text = "\u0130\u0130 I don't want a refund, I want a replacement"
    (span,) = analyse(text).spans
    assert text[span.cue[0] : span.cue[1]] == "n't"
    assert span.text(text).strip(", ") == "want a refund"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("不退款，换货", ["退款"]),  # a bare 不 before 退/换 at a clause's head ...
        ("不退款了，换货吧", ["退款了"]),
        ("不退了，换货", ["退了"]),
        ("不换了，我要退款", ["换了"]),
        ("退款不要了，我要换货", ["退款了"]),  # a fronted thing no longer wanted, then a want
        ("退款就算了，给我换一个", ["退款就"]),  # forget the fronted thing, ask another
        ("先别取消，就是想把数量改成两件", ["取消"]),  # not now, and no hold: refused
        ("先别取消订单了，我再等等", ["取消订单了"]),  # a hold is of sending, not of cancelling
        ("暂时别注销账号了，我还要用", ["注销账号了"]),
        ("不退了", ["退了"]),  # not returning it after all: nothing else asked
        ("甭退钱了，少发的充电器补寄过来就行", ["退钱了"]),
    ],
)
def test_chinese_refusals_by_a_bare_bu_a_fronted_object_or_suan_le(
    text: str, expected: list[str]
) -> None:
    assert refused(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "为什么不退款",  # asks why not: wants it
        "不退款吗？",  # asks
        "不满意，要退款",  # a state
        "衣服不要了",  # wants to stop (return it): a request
        "这单我不要了，帮我取消",  # ... and then how: still a request
        "银行卡不想绑了，在哪解除绑定",
        "退款不要了",  # ... with nothing else asked: still a request to stop
        "这周的花先别送了",  # a hold: pause
        "下周别送了，下下周再送",
        "暂时不要发了",
        "我算了一下运费",  # 算了 as "worked out"
        "我打算了，下周再买",
        "价格我换算了，你们比别家贵",  # 换算, 别家: no cues
        "订单已经结算了，我要开发票",
        "换货算了，省得麻烦",  # X算了 without 就: let's just do X
        "还是退款算了，不想等了",
        "这周不要送了，我要暂停",  # a hold, then what it is
        "这单我不要了，我要取消",  # the fronted thing is no service: a request to stop
        "衣服不要了，我想退货",
        "还不退款，我要投诉",  # the shop's refusal, complained of
        "不退款我就投诉",
        "不退款？那我去投诉了",
        "不换了？",  # asks the shop
        "不退运费，太坑了",
    ],
)
def test_chinese_holds_questions_and_stops_are_not_refusals(text: str) -> None:
    assert not analyse(text).refusals


@pytest.mark.parametrize(
    "text",
    [
        "forget my reservation for tonight",  # alone, forget X asks to cancel X
        "forget it",
        "I always forget the code, please send it again",  # not an imperative
        "I forgot my password",
        "don't forget to ship my order",
        "please skip next week's box",  # skip is no cue: a pause
        "is there anything i can't ask you",  # ask, but not "ask for"
        "forget my reservation, please",
        "forget the old address, please send it to 12 Main Street",  # no service forgotten
        "forget my old password, please send a new reset link",
        "I haven't asked for a refund yet, can I still get one?",  # not yet: no refusal
        "I never asked for a refund before, how do I do it?",
        "You never asked for my order number, here it is: 5512",
        "didn't I ask for a refund?",
    ],
)
def test_forget_alone_and_skip_are_requests_not_refusals(text: str) -> None:
    assert not analyse(text).refusals


def test_a_request_to_forget_does_not_hide_a_refusal_after_it() -> None:
    assert refused("actually forget that i don't need it") == ["need it"]


def test_a_text_with_no_letter_or_digit_wants_nothing() -> None:
    lex = default_lexicon()
    for text in ("。", "？？？", "👍", "...", ""):
        assert analyse(text).wants_nothing(lex), text
    for text in ("OK", "12345", "Привет", "嗯"):
        assert not analyse(text).wants_nothing(lex), text
