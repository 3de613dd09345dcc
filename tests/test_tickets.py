"""Tickets into passages (pure text): cleaning, sentences, windows, offsets."""

from __future__ import annotations

import pytest

from router.routing.tickets import (
    DEFAULT_MAX_TOKENS,
    Passage,
    estimate_tokens,
    kept_regions,
    passages,
    sentences,
)

TICKET = """Hi team,

The charger I got last week arrived with a cracked casing. I'd like a refund for it please.
Also, could you change the delivery address for my next order to 12 Elm Street, Leeds?

Best regards,
Anna Smith
+44 7700 900123

Sent from my iPhone

On Tue, 3 May 2026 at 10:02, Shop Support <help@shop.com> wrote:
> Thanks for contacting us. Your order 1234 has shipped.
> Where would you like it delivered?
"""


def _texts(found: list[Passage]) -> list[str]:
    return [p.text for p in found]


def test_offsets_point_into_the_field_they_came_from() -> None:
    subject = "  Broken charger + address  "
    found = passages(TICKET, subject)
    assert found[0] == Passage("Broken charger + address", 2, 26, "subject")
    for p in found:
        source = subject if p.field == "subject" else TICKET
        assert source[p.start : p.end] == p.text


def test_quotes_signature_boilerplate_and_greeting_are_removed() -> None:
    texts = _texts(passages(TICKET, window=1))
    assert texts == [
        "The charger I got last week arrived with a cracked casing.",
        "I'd like a refund for it please.",
        "Also, could you change the delivery address for my next order to 12 Elm Street, Leeds?",
    ]


@pytest.mark.parametrize(
    "header",
    [
        "-----Original Message-----\nFrom: Shop <a@b.c>\nSent: Monday",
        "From: Shop Support <help@shop.com>\nSent: Tuesday, May 3, 2026 10:02 AM",
        "On Tue, May 3, 2026 at 10:02 AM Shop Support <help@shop.com> wrote:",
        "________________________________\nFrom: Shop",
        "--\nAnna Smith | Acme Ltd",
    ],
)
def test_everything_after_a_reply_header_or_signature_delimiter_goes(header: str) -> None:
    text = (
        f"My parcel never arrived and the tracking says delivered.\n\n{header}\n"
        "Please cancel the order right now."
    )
    assert _texts(passages(text)) == ["My parcel never arrived and the tracking says delivered."]


def test_a_from_line_of_the_customers_own_stays() -> None:
    text = "From: the order page I tried to pay three times and the card was declined each time."
    assert _texts(passages(text)) == [text]


def test_a_sign_off_mid_ticket_is_not_a_signature() -> None:
    text = (
        "Thanks,\nbut that did not help. My card keeps getting declined at checkout.\n"
        "It says payment failed every time I try again."
    )
    assert "My card keeps getting declined at checkout." in " ".join(_texts(passages(text)))


def test_chinese_is_split_and_cleaned() -> None:
    text = (
        "您好，\n我上周买的耳机坏了，左边没有声音。我想退货！另外能帮我改一下收货地址吗？谢谢\n\n"
        "发自我的iPhone\n\n在 2026年5月3日 客服 写道：\n> 您好，您的订单已发货"
    )
    found = passages(text, window=1)
    assert _texts(found) == [
        "我上周买的耳机坏了，左边没有声音。",
        "我想退货！",
        "另外能帮我改一下收货地址吗？谢谢",
    ]
    assert all(text[p.start : p.end] == p.text for p in found)
    assert _texts(passages(text)) == [
        "我上周买的耳机坏了，左边没有声音。我想退货！",
        "我想退货！另外能帮我改一下收货地址吗？谢谢",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我要退款另外收货地址改成上海", ["我要退款", "另外收货地址改成上海"]),
        ("我的订单还没到顺便问一下发票怎么开", ["我的订单还没到", "顺便问一下发票怎么开"]),
        ("我要换另外一个颜色", ["我要换另外一个颜色"]),  # 另外 as "another"
        ("还有货吗", ["还有货吗"]),  # 还有 as "still have"
        ("我不需要你们顺便寄发票", ["我不需要你们顺便寄发票"]),  # after a negation
        ("运费需要另外付吗", ["运费需要另外付吗"]),  # after a modal
        ("东西坏了因此外壳要换一个", ["东西坏了因此外壳要换一个"]),  # 因此 + 外壳
        ("我买了两件另外2件还没发货", ["我买了两件另外2件还没发货"]),  # another two
        ("我要退款此外发票也要重开", ["我要退款", "此外发票也要重开"]),
        ("另外我想改地址", ["另外我想改地址"]),  # already at the start
    ],
)
def test_a_chinese_sentence_is_cut_before_a_word_opening_another_request(
    text: str, expected: list[str]
) -> None:
    assert [text[s:e] for s, e in sentences(text)] == expected


def test_short_sentences_join_a_neighbour() -> None:
    text = "Order 5512. The blender I received does not switch on at all. Help!"
    assert _texts(passages(text)) == [text]


def test_a_short_ticket_with_two_requests_reads_each_alone() -> None:
    text = "I want a refund. Please change my delivery address."
    assert _texts(passages(text)) == [
        "I want a refund.",
        "Please change my delivery address.",
        text,
    ]
    assert _texts(passages(text, short_alone=False)) == [text]


def test_windows_group_sentences() -> None:
    text = (
        "The first thing is broken here. The second thing is late again. "
        "A third thing is wrong too."
    )
    assert len(passages(text, window=1)) == 3
    assert _texts(passages(text, window=2, stride=None)) == [
        "The first thing is broken here. The second thing is late again.",
        "A third thing is wrong too.",
    ]
    assert _texts(passages(text, window=3, short_alone=False)) == [text]
    # one window holds the whole ticket: its sentences are read alone too
    assert _texts(passages(text, window=3)) == [*_texts(passages(text, window=1)), text]
    assert _texts(passages(text)) == [  # the default: two sentences, overlapping by one
        "The first thing is broken here. The second thing is late again.",
        "The second thing is late again. A third thing is wrong too.",
    ]
    with pytest.raises(ValueError, match="window"):
        passages(text, window=0)


def test_a_long_sentence_is_cut_within_the_limit() -> None:
    text = ", ".join(f"item number {i} in my basket was missing" for i in range(80)) + "."
    found = passages(text)
    assert len(found) > 1
    assert all(estimate_tokens(p.text) <= DEFAULT_MAX_TOKENS for p in found)
    assert all(text[p.start : p.end] == p.text for p in found)
    assert found[0].start == 0 and found[-1].end == len(text)


def test_wrapped_lines_stay_one_sentence() -> None:
    text = "I ordered the blue jacket in size M but\nthe parcel had a red one in size XL inside."
    assert _texts(passages(text)) == [text]


def test_nothing_left_is_empty() -> None:
    assert passages("> quoted only\n> more quoted") == []
    assert passages("Sent from my iPhone") == []
    assert kept_regions("") == []


def test_unicode_line_and_paragraph_separators_break_like_newlines() -> None:
    newline = "My parcel never arrived.\nPlease cancel my order.\n\nI can't log in either."
    unicode = newline.replace("\n\n", "\u2029").replace("\n", "\u2028")
    assert _texts(passages(unicode, window=1)) == _texts(passages(newline, window=1))
    assert len(passages(unicode, window=1)) == 3
