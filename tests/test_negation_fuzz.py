"""Property-based tests of the negation analysis: it never raises and its spans are sane.

Three sources of text: word sequences drawn from the lexicons (cues, contrast, refusal
and filler words, with content words, in English and Chinese), real sentences from the
bundled intents and eval files (cut and recombined), and arbitrary Unicode. Under CI
the examples are derandomised (same cases every run); locally they vary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.routing.intents import load_intents
from router.routing.negation import (
    NegationSettings,
    analyse,
    default_lexicon,
    pooling_spans,
)

ROOT = Path(__file__).resolve().parent.parent
LEXICON = default_lexicon()
SETTINGS = NegationSettings()
settings.register_profile(
    "negation",
    max_examples=1000,  # five properties: 5,000 cases a run, a few seconds
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("negation")


def _sentences() -> list[str]:
    texts = [e for d in ("intents", "intents/zh") for i in load_intents(ROOT / d).intents
             for e in i.examples]  # fmt: skip
    for path in sorted((ROOT / "intents").rglob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]
    return texts


SENTENCES = _sentences()
CONTENT = [
    "refund", "order", "card", "really", "my", "top-up", "here", "by", "now", "it", "退款",
    "订单", "手机", "地址", "了", "吗", "真的", "我的", "iPhone", "A1234",
]  # fmt: skip
CONTRACTIONS = ["isn't", "shouldn't", "don't", "won't", "can't", "doesn't", "wasn't", "ain't"]
PUNCTUATION = [",", "，", "?", "。", "!", "..."]
WORDS = [
    *LEXICON.cues, *LEXICON.contrast, *LEXICON.refusal, *LEXICON.filler, *CONTENT,
    *CONTRACTIONS, *PUNCTUATION,
]  # fmt: skip
#: What may follow a cue: the words the refusal rules look at first.
AFTER_CUE = [*LEXICON.refusal, *LEXICON.filler, *CONTENT, "a", "the", "about", "mind", "need"]


def check(text: str) -> None:
    analysis = analyse(text, LEXICON)
    assert analysis.text == text
    end = len(text)
    for span in analysis.spans:
        assert 0 <= span.cue[0] < span.cue[1] <= end
        assert 0 <= span.scope[0] <= span.scope[1] <= end
        assert span.start <= span.cue[0]
        if span.topic is not None:
            assert 0 <= span.topic[0] < span.topic[1] <= span.cue[0]
        assert isinstance(span.text(text), str)
    for begin, stop, weight in pooling_spans(analysis, SETTINGS):
        assert 0 <= begin <= stop <= end and weight == SETTINGS.scope_weight
    assert isinstance(analysis.wants_nothing(LEXICON), bool)


@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14), st.sampled_from([" ", ""]))
def test_word_sequences_from_the_lexicons(words: list[str], joiner: str) -> None:
    check(joiner.join(words))


@given(
    st.lists(st.sampled_from(WORDS), max_size=3),
    st.sampled_from([*LEXICON.cues, *CONTRACTIONS]),
    st.lists(st.sampled_from(AFTER_CUE), min_size=1, max_size=3),
    st.lists(st.sampled_from(WORDS), max_size=5),
)
def test_cues_in_context(lead: list[str], cue: str, after: list[str], tail: list[str]) -> None:
    """A cue with a short lead and the words its rules read next ("isn't my top-up ...")."""
    check(" ".join([*lead, cue, *after, *tail]))
    check("".join([*lead, cue, *after, *tail]))


@given(st.sampled_from(SENTENCES), st.sampled_from(SENTENCES), st.integers(0, 60))
def test_real_sentences_cut_and_joined(first: str, second: str, cut: int) -> None:
    check(first)
    check(first[:cut] + second[cut:])
    check(f"{first}, {second}")


@given(st.text(max_size=200))
def test_any_unicode(text: str) -> None:
    check(text)


@given(st.text(alphabet=st.sampled_from("不没别甭要想是用了的我你，。? nt'o"), max_size=40))
def test_dense_cues(text: str) -> None:
    check(text)
