"""What counts as a blank text (routing/blank.py), and who refuses one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import in_process

from router.errors import DataError
from router.routing.blank import is_blank
from router.routing.scorecard import load_labelled


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \t\n",
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width characters, byte-order mark
        "\u3000\u00a0",  # ideographic and no-break spaces
        "\u034f\ufe0f",  # combining grapheme joiner, a variation selector
        "\u3164\u115f\u2800",  # Hangul fillers, the blank Braille pattern
        "\x00\x07",  # controls
    ],
)
def test_invisible_texts_are_blank(text: str) -> None:
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", "\u200bhi", "退款", "\u0600", "🙂", " . "])
def test_anything_drawn_is_not_blank(text: str) -> None:
    assert not is_blank(text)


def test_a_blank_labelled_row_is_a_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "val.jsonl"
    rows = [{"text": "where is my parcel", "intent": "x"}, {"text": "\u200b", "intent": "x"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        load_labelled(path)
    assert f"{path}:2: text: required: a non-blank string" in str(info.value)


def test_classify_refuses_a_blank_text_before_loading_anything() -> None:
    code, _, err = in_process("classify", "--intents", "/nonexistent", "ok", "\u200b")
    assert code == 2
    assert "TEXT 2 is empty or blank" in err
