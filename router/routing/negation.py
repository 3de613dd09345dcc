"""Negation cues and their scope, in English and Chinese: pure functions, no model, no I/O.

Sentence embeddings all but ignore negation ("I don't want a refund" sits next to "I
want a refund"). This module finds, for an utterance:

* cues: not, no, never, n't, without, no longer, ...; 不, 没, 没有, 别, 不要, 不是, 无法, 未, ...
* the scope of each cue: from the cue to the end of its clause, where a clause ends at
  punctuation or at a contrastive turn (but, just, only, instead, rather; 但, 只是, 而是, 就);
* whether the negation is a *refusal* (the customer says what they do NOT want: "don't
  want a refund", "not cancelling", "no need to", "please don't delete") or belongs to
  the state being reported ("my phone won't turn on", "I haven't received my order").

Only refusals change routing (see engine.py): their scope is down-weighted in pooling
and the intent the refused span names is penalised. A reported state keeps its words,
so intents whose examples carry negation themselves still match.

Lexicons are data (``Lexicon``), extendable per deployment from the intents YAML.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from router.routing.folding import fold

__all__ = [
    "Analysis",
    "Lexicon",
    "NegatedSpan",
    "NegationSettings",
    "analyse",
    "default_lexicon",
    "pooling_spans",
]

# English -------------------------------------------------------------------------------
_EN_CUES = (
    "not", "no", "never", "n't", "without", "nor", "neither", "none", "nothing",
    "no longer", "cannot", "instead of", "rather than", "forget", "forget about",
    # typed without the apostrophe, as chat often is ("I dont want a refund")
    "dont", "doesnt", "didnt", "cant", "wont", "isnt", "arent", "wasnt", "werent",
    "havent", "hasnt", "shouldnt", "wouldnt", "couldnt",
)  # fmt: skip
#: Folded before cues are looked for, one character for one (offsets stay valid):
#: apostrophes as typed (curly, modifier letter, backtick, full width) become "'"
#: (full-width letters and digits are already ASCII: ``folding.fold``); the dotted
#: capital I, whose lower case is two code points, becomes "I".
_FOLD = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\uff07": "'", "\u0130": "I"}
)
_EN_CONTRAST = (
    "but", "just", "only", "instead", "rather", "however", "though", "although",
    "actually", "what i need", "what i want", "i'd rather", "i would rather", "i want",
    "i need", "i'd like", "i would like", "all i want", "please",
)  # fmt: skip
#: Words right after a cue (or an imperative cue) that make the negation a refusal.
_EN_REFUSAL = (
    "want", "wanna", "need", "wish", "asking", "after", "looking", "trying",
    "interested", "planning", "going", "gonna", "about", "mean", "meant", "cancelling",
    "canceling", "returning", "requesting", "calling", "writing", "contacting", "complaining",
)  # fmt: skip
#: Words that carry no request of their own: what is left of "please don't cancel it,
#: thanks" once the refusal is taken out.
_EN_FILLER = (
    "i", "me", "my", "we", "our", "you", "it", "its", "i'm", "im", "i've", "i'd", "please",
    "thanks", "thank", "ok", "okay", "so", "really", "the", "a", "an", "to", "do", "does",
    "just", "am", "is", "are", "was", "be", "no", "yes", "that", "this", "and", "or",
    "anything", "something", "at", "all", "for", "of", "on", "with", "now", "again",
    "anymore", "any", "more", "mind", "hi", "hello", "hey", "sorry", "though", "actually",
)  # fmt: skip
_ZH_FILLER = (
    "我", "你", "的", "了", "吧", "呢", "啊", "请", "谢", "谢谢", "好", "这", "个", "们", "并",
    "也", "都", "还", "就", "先", "暂", "时", "真", "其", "实", "麻", "烦", "亲", "哦", "嗯",
    "啦", "呀", "吗", "一", "下", "再",
)  # fmt: skip
#: "no X" at the head of a clause refuses X only when the customer says so: X is closed
#: by a polite word, at the end or before the next clause ("no refund please", "no
#: refunds, thanks", "no refund please, I want a replacement"), or the next clause
#: turns to what is wanted instead ("no refund, I'd rather have a new one"). "No X, I
#: want/need Y" is not enough: "no package, I want a refund" reports X missing.
_EN_NO_X_CLOSE = re.compile(
    r"\s*([a-z']+(?:\s+[a-z']+){0,2}?)[\s,]*(?:please|thanks|thank you|thx)\s*(?:[,.;:!?].*)?",
    re.DOTALL,
)
_EN_NO_X_THEN = ("i'd rather", "i would rather", "rather", "instead")
#: What a shop does for a customer, which "no X" refuses when a want follows.
_EN_SERVICES = (
    "refund", "exchange", "replacement", "repair", "cancellation", "return", "credit",
    "voucher", "callback",
)  # fmt: skip
#: What the next clause names when it asks for another service instead.
_EN_OTHER = ("new one", "replace", "instead")
#: ... nor when X is missing ("no refund yet") or to stop ("no more emails please").
_EN_NO_X_STILL = (
    "yet", "still", "received", "arrived", "showing", "shown", "working", "more", "longer",
)  # fmt: skip
#: Verbs of knowing and feeling: "I don't know", "don't care", "never mind" are no refusal.
_EN_STATIVE = (
    "know", "think", "understand", "care", "remember", "recall", "believe", "see", "get",
    "recognise", "recognize", "agree", "like", "love", "feel", "seem", "forget",
)  # fmt: skip
#: "I don't want my reservation anymore", "no longer want the order": a request to stop
#: or remove something (cancel, delete, unsync), not a refusal of the thing named.
_DISCONTINUE = re.compile(r"\b(?:any ?more|any longer)\b")
# Chinese -------------------------------------------------------------------------------
_ZH_CUES = (
    "没有", "不要", "不是", "不想", "不用", "不必", "无需", "无法", "不", "没", "别", "甭",
    "未", "无", "算了",
)  # fmt: skip
#: Chinese cues that refuse whatever follows (volition, "no need", imperatives).
_ZH_REFUSING = ("不要", "不想", "不用", "不必", "无需", "别", "甭")
#: "不想用了", "不要了", "不想买了": the customer wants to stop (return, refund, cancel),
#: which is a request, not a refusal (the English "don't want it anymore").
_ZH_DISCONTINUE = re.compile(r"再?[\u4e00-\u9fff]?了")
#: Words that hold a cue's character but negate nothing: 性别, 别人, 无线, 不过, ...
_ZH_NOT_CUES = (
    "别人", "别的", "性别", "特别", "区别", "分别", "类别", "级别", "告别", "识别", "差别",
    "无线", "无论", "无聊", "不同", "不错", "不少", "不久", "不过", "不断", "不仅", "不管",
    "不如", "不然", "不但", "不得不", "差不多", "要不要", "是不是", "能不能", "可不可以",
    "有没有", "会不会", "好不好", "行不行", "对不起", "了不起", "打算", "计算", "算了一下",
    "算了算", "结算", "估算", "换算", "核算", "清算", "预算", "推算", "折算", "总算", "划算",
    "别家", "别处",
)  # fmt: skip
#: "不退款，换货", "不换了，退款": a bare 不 before these verbs, at the head of a clause,
#: refuses them when another clause follows or 了 closes the clause.
_ZH_REFUSED_VERBS = ("退", "换")
#: A hold: "这周先别送了", "下周别送了", "暂时不要发了" ask to pause, they refuse nothing.
_ZH_HOLD = ("先", "暂时")
_ZH_WHEN = re.compile(r"(?:这|下|本|上)(?:周|个?星期|个?月|次|期|回)|下(?:一|两|几)期|今天|明天")
#: The next clause asks for something: "..., 我要换货", "...，只想退款".
_ZH_WANT_NEXT = re.compile(r"[\s,.;!?，。；！？、]*(?:我们|我)?(?:只|还是|就)?(?:要|想|需要)")
#: ... or names what to do instead: "不退款，换货", "不换了，直接退款".
_ZH_ALTERNATIVE = re.compile(
    r"[\s,.;!?，。；！？、]+(?:我们|我)?(?:只|还是|就|直接)?(?:要|想|需要|换|退|改|给我|帮我)"
)
#: Words before a bare 不 that leave it at the head of its clause; not 还/也/就/都, which
#: make it the shop's refusal ("还不退款").
_ZH_HEAD_FILLER = re.compile(r"^(?:我|我们|并|真的|其实)*")
#: What a hold stops: sending, charging ("这周先别送了", "下个月先不扣了").
_ZH_HOLD_VERBS = ("送", "发", "寄", "派", "配", "扣", "续")
#: "还是退款算了": rather do it, not forget it.
_ZH_RATHER = ("还是", "干脆", "不如", "要不")
#: Question endings: "不退款吗？" asks.
_ZH_QUESTION = ("吗", "么", "呢")
#: Words before a cue that leave it at the head of its clause ("我并不是想...").
_ZH_LEAD_FILLER = re.compile(r"^(?:我|我们|并|也|都|还|就|真的|其实|暂时|先)*")
_ZH_CONTRAST = ("但是", "但", "只是", "而是", "就", "只想", "只要", "可是", "不过", "我想", "我要")
_ZH_REFUSAL = ("要", "想", "是", "用", "需要", "打算")
#: Clause boundaries, Latin and CJK.
_PUNCT = ",.;:!?()，。；：！？、\n"


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Word lists, lower case: negation cues, contrastive turns, refusal words, fillers."""

    cues: tuple[str, ...] = ()
    contrast: tuple[str, ...] = ()
    refusal: tuple[str, ...] = ()
    filler: tuple[str, ...] = ()

    def extended(self, other: Lexicon) -> Lexicon:
        def merge(a: Iterable[str], b: Iterable[str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys([*a, *(x.lower() for x in b)]))

        return Lexicon(
            merge(self.cues, other.cues),
            merge(self.contrast, other.contrast),
            merge(self.refusal, other.refusal),
            merge(self.filler, other.filler),
        )


def default_lexicon() -> Lexicon:
    return Lexicon(
        cues=_EN_CUES + _ZH_CUES,
        contrast=_EN_CONTRAST + _ZH_CONTRAST,
        refusal=_EN_REFUSAL + _ZH_REFUSAL,
        filler=_EN_FILLER + _ZH_FILLER,
    )


@dataclass(frozen=True, slots=True)
class NegationSettings:
    """How negation changes routing; part of the vector cache's key.

    ``scope_weight`` is the pooling weight of the tokens a refusal covers (cue and
    scope; 1.0 would leave them as they are). Why 0: ARCHITECTURE.md, "Negation".
    """

    enabled: bool = True
    scope_weight: float = 0.0
    lexicon: Lexicon = field(default_factory=default_lexicon)

    def key(self) -> str:
        if not self.enabled:
            return "negation:off"
        lex = self.lexicon
        return repr(("negation:v2", self.scope_weight, lex.cues, lex.contrast, lex.refusal))


@dataclass(frozen=True, slots=True)
class NegatedSpan:
    cue: tuple[int, int]  # character offsets of the cue
    scope: tuple[int, int]  # character offsets of what it negates (to the clause's end)
    refusal: bool  # the customer refuses this, rather than reporting a state
    #: A refused object put before the cue (Chinese topic: "地址不用改了"), or None.
    topic: tuple[int, int] | None = None

    @property
    def start(self) -> int:
        return min(self.cue[0], self.scope[0], *(self.topic[:1] if self.topic else ()))

    def text(self, utterance: str) -> str:
        """What is negated: the fronted topic, if any, then the scope."""
        lead = utterance[self.topic[0] : self.topic[1]] if self.topic else ""
        return lead + utterance[self.scope[0] : self.scope[1]]


@dataclass(frozen=True, slots=True)
class Analysis:
    text: str
    spans: tuple[NegatedSpan, ...] = field(default_factory=tuple)

    @property
    def refusals(self) -> tuple[NegatedSpan, ...]:
        return tuple(s for s in self.spans if s.refusal)

    def kept_text(self) -> str:
        """The text with every refusal (its cue, scope and topic) blanked out: the words
        of what the customer wants, offsets unchanged."""
        kept = list(self.text)
        for span in self.refusals:
            for i in range(span.start, min(span.scope[1], len(kept))):
                kept[i] = " "
        return "".join(kept)

    def affirmative_words(self, lexicon: Lexicon) -> list[str]:
        """The words outside every refusal that are not fillers: what the customer wants."""
        fillers = set(lexicon.filler)
        return [
            w
            for w in _WORD.findall(fold(self.kept_text()).lower())
            if w not in fillers and w != "n't"
        ]

    def wants_nothing(self, lexicon: Lexicon) -> bool:
        """Refuses something and asks for nothing else ("I don't want a refund"), or says
        nothing at all: no letter or digit of any script ("。", "👍", an empty passage)."""
        if not any(ch.isalnum() for ch in self.text):
            return True
        return bool(self.refusals) and not self.affirmative_words(lexicon)


def pooling_spans(analysis: Analysis, settings: NegationSettings) -> list[tuple[int, int, float]]:
    """Character spans and pooling weights: each refusal's cue and scope get scope_weight."""
    if not settings.enabled or settings.scope_weight == 1.0:
        return []
    return [(s.start, s.scope[1], settings.scope_weight) for s in analysis.refusals]


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|n't|[\u4e00-\u9fff]", re.IGNORECASE)


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def analyse(text: str, lexicon: Lexicon | None = None) -> Analysis:
    """Find negation cues, their scopes and whether each is a refusal."""
    lex = lexicon or default_lexicon()
    lower = fold(text).translate(_FOLD).lower()  # same length: offsets stay valid
    cues = _find_cues(lower, lex)
    spans: list[NegatedSpan] = []
    for start, end in cues:
        last = spans[-1] if spans else None
        if last and start < last.scope[1] and (last.refusal or not _forgets(lower, last)):
            continue  # already inside an earlier cue's scope (a request to forget reads on)
        scope_end = _clause_end(lower, end, lex)
        while scope_end > end and lower[scope_end - 1].isspace():
            scope_end -= 1
        if scope_end <= end:
            scope_start = end
        else:
            scope_start = end + (len(lower[end:scope_end]) - len(lower[end:scope_end].lstrip()))
        if _is_interjection(lower, start, end):
            continue
        refusal = _is_refusal(lower, start, end, scope_end, lex)
        topic = _zh_topic(lower, start) if refusal and _is_cjk(lower[start]) else None
        spans.append(NegatedSpan((start, end), (scope_start, scope_end), refusal, topic))
    return Analysis(text, tuple(spans))


@functools.lru_cache(maxsize=16)
def _alternation(words: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for a word list: Latin words whole, "n't" as a suffix, CJK anywhere;
    longest first, so "no longer" wins over "no" and 不要 over 不."""
    ordered = sorted(set(words), key=len, reverse=True)
    latin = [re.escape(w) for w in ordered if not _is_cjk(w[0]) and w != "n't"]
    parts = [r"\b(?:" + "|".join(latin) + r")\b"] if latin else []
    if "n't" in ordered:
        parts.append(r"n't\b")
    parts += [re.escape(w) for w in ordered if _is_cjk(w[0])]
    return re.compile("|".join(parts) if parts else r"(?!)")


def _find_cues(lower: str, lex: Lexicon) -> list[tuple[int, int]]:
    """Non-overlapping cues, left to right, the longest at each position; a Chinese cue
    inside a word that only looks negative (性别, 无线, 是不是) is skipped."""
    inert = {i for m in _alternation(_ZH_NOT_CUES).finditer(lower) for i in range(*m.span())}
    return [m.span() for m in _alternation(lex.cues).finditer(lower) if m.start() not in inert]


def _clause_end(lower: str, start: int, lex: Lexicon) -> int:
    """The end of the clause that starts at ``start``: punctuation or a contrastive turn
    (a turn right at the cue does not end the scope)."""
    end = len(lower)
    for i in range(start, len(lower)):
        if lower[i] in _PUNCT:
            end = i
            break
    if _is_cjk(lower[start - 1]):
        # 了 closes a Chinese clause that runs on without punctuation: "我不想用了能退钱吗"
        done = lower.find("了", start, end - 1)
        if done >= 0:
            end = done + 1
    turn = _alternation(lex.contrast).search(lower, start + 1, end)
    return turn.start() if turn else end


_PRONOUNS = ("i", "we", "you", "it", "thanks", "thank", "that", "sorry", "please", "worries")
_PRONOUN_COPULAS = ("it's", "that's", "its", "thats", "i'm", "im")
_DENIED = ("a", "an", "the", "about", "really", "problem", "issue", "complaint", "my")


def _is_interjection(lower: str, start: int, end: int) -> bool:
    """ "No, I ..." / "no thanks": a bare no answers something; it negates nothing after it."""
    if lower[start:end] != "no":
        return False
    rest = lower[end:].lstrip()
    if not rest or rest[0] in _PUNCT:
        return True
    words = _WORD.findall(rest)
    return bool(words) and words[0] in _PRONOUNS


def _clause_lead(lower: str, start: int) -> tuple[int, str]:
    """Where the clause holding ``start`` begins, and its words before ``start``."""
    clause_start = max((lower.rfind(p, 0, start) for p in _PUNCT), default=-1) + 1
    while clause_start < start and lower[clause_start].isspace():
        clause_start += 1
    return clause_start, lower[clause_start:start]


def _is_zh_refusal(lower: str, start: int, end: int, scope_end: int, lex: Lexicon) -> bool:
    cue = lower[start:end]
    scope = lower[end:scope_end]
    lead = _clause_lead(lower, start)[1].strip()
    held = lead.endswith(_ZH_HOLD) or _ZH_WHEN.search(lead) is not None
    stops = scope.startswith(_ZH_HOLD_VERBS) and scope.rstrip().endswith("了")
    if held and stops and cue in ("别", "不", "不要"):
        return False  # 这周先别送了, 下周别送了: a hold, a request (pause)
    if cue == "算了":  # "退款就算了，给我换一个": forget the fronted thing, ask another
        topic = _zh_topic(lower, start)
        told = lead.endswith("就") and not lead.startswith(_ZH_RATHER)  # 还是退款算了: do it
        return told and topic is not None and _words_follow(lower, scope_end)
    if cue in ("不要", "不想") and _ZH_DISCONTINUE.fullmatch(scope.strip()):
        # 不要了 / 不想用了: wants to stop, a request ("这单我不要了，我要取消"); "退款不要
        # 了，我要换货" refuses the fronted service for the want that follows
        topic = _zh_topic(lower, start)
        service = topic is not None and any(v in lower[topic[0] : topic[1]] for v in "退换修补")
        return service and _ZH_WANT_NEXT.match(lower, scope_end) is not None
    if cue in _ZH_REFUSING:
        return True
    nxt = lower[end : end + 2]
    if cue == "不" and nxt[:1] in _ZH_REFUSED_VERBS:
        # "不退款，换货", "不换了": refused; "还不退款，我要投诉", "不退款我就投诉",
        # "不退款？", "不退运费，太坑了" complain that the shop will not
        head = not _ZH_HEAD_FILLER.sub("", lead)
        asks = scope.rstrip().endswith(_ZH_QUESTION) or lower[scope_end : scope_end + 1] in (
            "?",
            "？",
        )
        if not head or asks:
            return False
        if _ZH_ALTERNATIVE.match(lower, scope_end):
            return True  # another clause asks for something else
        return scope.rstrip().endswith("了") and not _words_follow(lower, scope_end)
    if cue == "不是":
        # "不是要退货", clause-initial "(我并)不是投诉": refused; "收到的不是我订的",
        # "不是我买的", "不是15的" state a fact
        if nxt[:1] in ("要", "想", "来"):
            return True
        lead = _ZH_LEAD_FILLER.sub("", _clause_lead(lower, start)[1].strip())
        return not lead and bool(nxt) and _is_cjk(nxt[0]) and nxt[0] not in "我你他她它这那"
    return any(nxt.startswith(w) for w in lex.refusal if _is_cjk(w[0]))


def _words_follow(lower: str, scope_end: int) -> bool:
    """Whether words follow the clause that ends at ``scope_end``."""
    return any(ch.isalnum() for ch in lower[scope_end:])


def _forgets(lower: str, span: NegatedSpan) -> bool:
    return lower[span.cue[0] : span.cue[1]] in ("forget", "forget about")


def _service_swap(lower: str, named: list[str], scope_end: int) -> bool:
    """``named`` ends with a service (refund, exchange, ...) and the next clause, after a
    comma or semicolon, asks for another one: "no refund, I want an exchange", "forget
    the refund, just send a replacement". Not "No refund! Please refund me", "forget my
    old address, please send it to ...", "forget my reservation, please"."""
    if not named or named[-1].removesuffix("s") not in _EN_SERVICES:
        return False
    rest = lower[scope_end:].lstrip()
    if not rest.startswith((",", ";")):
        return False
    clause = re.split(r"[.!?;]", rest[1:], maxsplit=1)[0]
    others = {w.removesuffix("s") for w in _WORD.findall(clause)} & set(_EN_SERVICES)
    return bool(others - {named[-1].removesuffix("s")}) or any(o in clause for o in _EN_OTHER)


def _did_not_ask(lower: str, start: int, cue: str, end: int) -> bool:
    """ "I didn't ask for X" / "we don't ask for X": a refusal; not "haven't asked for
    it yet", "never asked before", a question, or someone else who did not ask."""
    before = _WORD.findall(lower[:start])
    did = cue in ("didnt", "dont") or (cue == "n't" and before[-1:] in (["did"], ["do"]))
    subject = before[-2:-1] if cue == "n't" else before[-1:]
    tail = _WORD.findall(lower[end:])
    clause_end = next((i for i, ch in enumerate(lower[end:]) if ch in _PUNCT), len(lower) - end)
    asks = lower[end + clause_end : end + clause_end + 1] == "?"
    return did and subject in (["i"], ["we"]) and not {"yet", "before"} & set(tail) and not asks


def _zh_topic(lower: str, start: int) -> tuple[int, int] | None:
    """A short object fronted before a Chinese refusal cue ("地址不用改了"), or None."""
    lead = _clause_lead(lower, start)[1]
    stripped = _ZH_LEAD_FILLER.sub("", lead)
    if not stripped.strip() or len(stripped) > 8:
        return None
    return (start - len(stripped), start)


def _is_refusal(lower: str, start: int, end: int, scope_end: int, lex: Lexicon) -> bool:
    cue = lower[start:end]
    if _is_cjk(cue[0]):
        return _is_zh_refusal(lower, start, end, scope_end, lex)
    if cue in ("instead of", "rather than"):
        return True
    if cue in ("forget", "forget about"):
        # "forget the refund, just send a new one": at the head of a clause, an imperative
        # dropping X for what the next clause asks; alone ("forget my reservation") it
        # asks to cancel X, a request ("skip" is no cue: "skip next week's box" pauses)
        lead = _WORD.findall(lower[_clause_lead(lower, start)[0] : start])
        head = not [w for w in lead if w not in ("please", "just", "oh", "ok", "okay")]
        return head and _service_swap(lower, _WORD.findall(lower[end:scope_end]), scope_end)
    if cue == "no longer" or _DISCONTINUE.search(lower, end, scope_end + 12):
        return False
    words = _WORD.findall(lower[end:scope_end])[:3]
    if words and words[0] in _EN_STATIVE:
        return False
    if words[:2] in (["ask", "for"], ["asked", "for"]) and _did_not_ask(lower, start, cue, end):
        return True  # "I didn't ask for a refund"; not "I haven't asked for it yet"
    if words and words[0] in lex.refusal:
        return True
    if cue == "no" and words and words[0] in ("need", "thanks", "problem", "issue"):
        return True
    if cue == "never" and words and words[0] == "mind":
        return True
    before = _WORD.findall(lower[:start])
    clause_start = max((lower.rfind(p, 0, start) for p in _PUNCT), default=-1) + 1
    lead = _WORD.findall(lower[clause_start:start])
    if cue == "no" and words and not [w for w in lead if w != "please"]:
        closed = _EN_NO_X_CLOSE.fullmatch(lower, end)
        named = closed.group(1).split() if closed else _WORD.findall(lower[end:scope_end])
        asks = _alternation(_EN_NO_X_THEN).search(lower, scope_end)
        if (closed or asks) and len(named) <= 3 and not set(named) & set(_EN_NO_X_STILL):
            return True  # "no refund please", "no refund, I'd rather have a new one"
        if len(named) == 1 and _service_swap(lower, named, scope_end):
            return True  # "no refund, I want an exchange" (not "no refund, I want my money")
    # A denied category: "not a complaint", "it's not about a refund", "that isn't the problem"
    if words and words[0] in _DENIED:
        if cue == "not" and not lead:
            return True
        if before[-1:] and before[-1] in _PRONOUN_COPULAS:
            return True
        if (
            len(before) >= 2
            and before[-2] in ("it", "that", "this")
            and before[-1] in ("is", "was")
        ):
            return True
    if cue == "not" and not lead and words and words[0].endswith("ing"):
        return True  # "not cancelling, ..."
    if cue == "n't" and before and before[-1] in ("do", "please do") and len(lead) <= 2:
        return not lead or lead[0] in ("do", "please")
    if cue == "dont" and len(lead) <= 1:  # "dont cancel it", "please dont delete"
        return not lead or lead[0] == "please"
    return False
