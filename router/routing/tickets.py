"""Tickets into passages: what a helpdesk ticket asks, cut to the model's size.

Pure text processing, no model. A ticket is a subject and a body as a helpdesk
receives it: greetings, quoted earlier mails, signatures, "Sent from my iPhone". The
body is cleaned line by line (``kept_regions``), the rest split into sentences
(English ``.!?``, Chinese ``。！？；``, paragraph breaks), and the sentences grouped into
passages of at most ``window`` sentences that fit ``max_tokens`` (estimated; MiniLM
reads 256 tokens, longer sentences are cut at commas or spaces). Every passage keeps
code-point offsets into the field it came from, so evidence can be shown in place.

What is removed, and why (each would otherwise route as a request of its own):

* quoted replies: lines starting with ``>``, and everything from a reply header on
  ("On Tue, 3 May 2026, Shop Support <...> wrote:", "-----Original Message-----",
  "From: ... Sent: ...", "在 2026年5月3日 ... 写道：");
* signatures: everything after a "-- " line; a sign-off ("Best regards,", "Thanks,",
  "谢谢") followed only by a few short lines (name, phone, order number) at the end;
* boilerplate lines: "Sent from my iPhone", "Get Outlook for Android", "发自我的iPhone";
* greetings alone on a line ("Hi team,", "Hello,", "您好，").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW",
    "IntentMatch",
    "Passage",
    "estimate_tokens",
    "kept_regions",
    "passages",
    "sentences",
]

#: Tokens a passage may hold, estimated (``estimate_tokens``): MiniLM truncates at 256,
#: and the estimate can run a fifth low on English with many numbers or rare words.
DEFAULT_MAX_TOKENS = 200
#: Sentences a passage holds at most, and between the starts of two passages: windows
#: of two sentences overlapping by one read each request with its context on both
#: sides ("The charger is cracked. I want my money back.") and gave the best val micro-F1,
#: at the intents' thresholds and at the val-tuned one (bench/tickets.py compares
#: sentences, windows of 2 and 3, overlapping or not).
DEFAULT_WINDOW = 2
DEFAULT_STRIDE = 1
#: A sentence of fewer words than this ("Thanks!", "Order 1234.") joins its neighbour.
MIN_WORDS = 4


@dataclass(frozen=True)
class Passage:
    """A span of a ticket routed on its own. ``text`` is ``field[start:end]``."""

    text: str
    start: int  # code-point offsets into the field it came from
    end: int
    field: str  # "text" or "subject"


@dataclass(frozen=True)
class IntentMatch:
    """One intent a ticket asks for: its ticket-level score, the threshold it passed and
    the passage that scored it."""

    intent: str
    score: float
    threshold: float
    evidence: Passage


# ----------------------------------------------------------------- cleaning

_QUOTE_HEADERS = (
    re.compile(r"^\s*on\b.{0,200}\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*(original|forwarded) message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{8,}\s*$"),  # Outlook's rule above the quoted mail
    re.compile(r"^\s*from:\s.*$", re.IGNORECASE),  # only with "Sent:" / "Date:" next
    re.compile(r"^\s*在.{0,200}写道[：:]\s*$"),
    re.compile(r"^\s*-{2,}\s*原始邮件\s*-{2,}\s*$"),
)
_FROM_HEADER = _QUOTE_HEADERS[3]
_HEADER_FOLLOW = re.compile(r"^\s*(sent|date|to|subject|发送时间|收件人|主题):", re.IGNORECASE)
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")
_BOILERPLATE = re.compile(
    r"^\s*(sent from my \w+( \w+)?|sent from (mail|outlook|yahoo mail|gmail) for \w+.*"
    r"|get outlook for \w+|sent from my (iphone|ipad|android|samsung|mobile|phone).*"
    r"|发自我的\s*\w+|来自\s*\w+\s*客户端|this email (and any attachments )?is confidential.*)"
    r"\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(best|kind|warm|many thanks and)?\s*(regards|wishes)[,!.]?\s*$"
    r"|^\s*(best|cheers|thanks|thank you|thanks again|many thanks|thanks in advance|"
    r"sincerely|yours sincerely|yours faithfully|all the best|br|rgds|regards)[,!.]?\s*$"
    r"|^\s*(谢谢|此致|敬礼|祝好)[！!。，,]?\s*$",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*((hi|hello|hey|dear|good (morning|afternoon|evening))\b[^.!?\n]{0,40}[,!:]?"
    r"|(您好|你好|在吗)[，,！!。]?)\s*$",
    re.IGNORECASE,
)
#: Lines after a sign-off that still count as the signature (name, phone, order number).
_SIGNATURE_LINES = 4
_SIGNATURE_LINE_CHARS = 60


#: Line breaks: CR LF, CR, LF and Unicode's others (U+2028 line, U+2029 paragraph
#: separator, NEL, VT, FF), as ``str.splitlines`` knows them.
_BREAK = re.compile("\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line of ``text``, without its line break."""
    spans = []
    start = 0
    for match in _BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _quote_header_at(text: str, lines: list[tuple[int, int]], i: int) -> bool:
    line = text[lines[i][0] : lines[i][1]]
    for pattern in _QUOTE_HEADERS:
        if not pattern.match(line):
            continue
        if pattern is _FROM_HEADER:  # "From: x" alone may be the customer's own words
            follow = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""
            return bool(_HEADER_FOLLOW.match(follow))
        return True
    return False


def _body_end(text: str, lines: list[tuple[int, int]]) -> int:
    """Lines before the first quoted-reply header or signature delimiter."""
    for i, (start, end) in enumerate(lines):
        line = text[start:end]
        if _SIGNATURE_DELIMITER.match(line) or _quote_header_at(text, lines, i):
            return i
    return len(lines)


def _sign_off_start(text: str, lines: list[tuple[int, int]], end: int) -> int:
    """The first line of a sign-off block at the end of ``lines[:end]`` (or ``end``)."""
    content = [i for i in range(end) if text[lines[i][0] : lines[i][1]].strip()]
    for back, i in enumerate(reversed(content)):
        if back > _SIGNATURE_LINES:
            break
        line = text[lines[i][0] : lines[i][1]]
        if _SIGN_OFF.match(line):
            tail = content[len(content) - back :]
            if all(
                len(text[lines[j][0] : lines[j][1]].strip()) <= _SIGNATURE_LINE_CHARS for j in tail
            ):
                return i
    return end


def kept_regions(text: str) -> list[tuple[int, int]]:
    """The (start, end) spans of ``text`` that are the customer's own words, in order:
    quoted replies, signatures, boilerplate and greeting lines removed."""
    lines = _lines(text)
    end = _body_end(text, lines)
    end = _sign_off_start(text, lines, end)
    regions = []
    for start, stop in lines[:end]:
        line = text[start:stop]
        if not line.strip() or line.lstrip().startswith(">"):
            continue
        if _BOILERPLATE.match(line) or _GREETING.match(line):
            continue
        regions.append((start, stop))
    return regions


#: "Re: ", "Fwd: ", "AW: ", "回复：" (repeated) before a subject: the mail client's words.
_REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|回复|答复|转发)\s*(\[\d+\])?\s*[:：]\s*)+", re.IGNORECASE
)

# ---------------------------------------------------------------- sentences

#: A sentence ends after ., ! or ? (and closing quotes or brackets) before a space, or
#: after Chinese 。！？； (no space follows those), or ... as an ellipsis.
_SENTENCE_END = re.compile(
    r"(?<!\b[A-Z])(?<!\be\.g)(?<!\bi\.e)[.!?]+[\"')\]]*(?=\s)|[。！？；]+[”」』）)]*"
)
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Chinese words that open another request inside a sentence typed without punctuation
#: ("我要退款另外收货地址改成上海"): the sentence is cut before them. Not after a
#: negation, a modal, a request or a pronoun, where they modify the verb that follows
#: ("我不需要你们顺便寄发票", "运费需要另外付吗"); not 另外 as "another" ("换另外一个颜色",
#: "另外2件"); not 此外 inside 因此/如此/除此 ("因此外壳要换"); never 还有 ("还有货吗").
_ZH_NEXT_REQUEST = re.compile(
    r"(?<![不没要用需别想以能请们我你他她它求该得])"
    r"(?:另外(?![一二两三四五六七八九十几半个的些种件款色双条那这\d０-９])"
    r"|顺便|(?<![因如除彼在])此外|再就是)"
)


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` for a WordPiece or SentencePiece model, roughly: a CJK
    character each, 1.3 a word otherwise, punctuation one each."""
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    words = len(_WORD.findall(rest))
    punctuation = sum(1 for c in rest if not c.isalnum() and not c.isspace())
    return cjk + (words * 13 + 9) // 10 + punctuation


def _words(text: str) -> int:
    """Words of ``text``, a CJK character counting as one."""
    return len(_CJK.findall(text)) + len(_WORD.findall(_CJK.sub(" ", text)))


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _paragraphs(text: str, regions: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Runs of adjacent kept lines (a blank or removed line ends a paragraph)."""
    run: tuple[int, int] | None = None
    for start, end in regions:
        gap = text[run[1] : start] if run is not None else ""
        one_break = len(_BREAK.findall(gap)) <= 1 and "\u2029" not in gap
        if run is not None and one_break and _continues(text, run[1]):
            run = (run[0], end)
            continue
        if run is not None:
            yield run
        run = (start, end)
    if run is not None:
        yield run


def _continues(text: str, line_end: int) -> bool:
    """Whether the next line continues the one ending at ``line_end`` (a wrapped line):
    the line does not end a sentence, a list item or a label."""
    before = text[:line_end].rstrip()
    return bool(before) and before[-1] not in ".!?:。！？；：)"


def sentences(text: str, regions: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text`` (of its ``regions`` when given)."""
    spans: list[tuple[int, int]] = []
    for para_start, para_end in _paragraphs(text, regions if regions is not None else _lines(text)):
        start = para_start
        for match in _SENTENCE_END.finditer(text, para_start, para_end):
            spans.extend(_requests(text, *_trimmed(text, start, match.end())))
            start = match.end()
        spans.extend(_requests(text, *_trimmed(text, start, para_end)))
    return [(s, e) for s, e in spans if e > s and any(c.isalnum() for c in text[s:e])]


def _requests(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A sentence cut before each Chinese word that opens another request in it."""
    cuts = [m.start() for m in _ZH_NEXT_REQUEST.finditer(text, start, end) if m.start() > start]
    bounds = [start, *cuts, end]
    return [_trimmed(text, a, b) for a, b in itertools.pairwise(bounds)]


def _cut(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]:
    """``text[start:end]`` in pieces of at most ``max_tokens``, cut after a comma or
    space where possible (a sentence longer than the model reads)."""
    pieces = []
    while estimate_tokens(text[start:end]) > max_tokens:
        low, high = start + 1, end
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            if estimate_tokens(text[start:middle]) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        cut = low
        for breaks in ("，,;；", " \t"):
            at = max(text.rfind(c, start, low) for c in breaks)
            if at > start + (low - start) // 2:
                cut = at + 1
                break
        pieces.append(_trimmed(text, start, cut))
        start = cut
    pieces.append(_trimmed(text, start, end))
    return [(s, e) for s, e in pieces if e > s]


def _grouped(
    text: str,
    spans: list[tuple[int, int]],
    window: int,
    max_tokens: int,
    stride: int | None = None,
    *,
    short_alone: bool = True,
) -> list[tuple[int, int]]:
    """Sentences grouped into passages: short ones join the next (or, at the end, the
    previous), then at most ``window`` sentences a passage, within ``max_tokens``. With
    ``short_alone``, a ticket that fits one window has its sentences read alone too:
    one window picks one intent, and a short ticket may ask for two."""
    units: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    for sentence_start, end in spans:
        start = sentence_start if pending is None else pending[0]
        pending = None
        if _words(text[start:end]) < MIN_WORDS:
            pending = (start, end)
            continue
        units.append((start, end))
    if pending is not None:
        if units and estimate_tokens(text[units[-1][0] : pending[1]]) <= max_tokens:
            units[-1] = (units[-1][0], pending[1])
        else:
            units.append(pending)
    pieces = [p for s, e in units for p in _cut(text, s, e, max_tokens)]
    grouped = _grouped_pieces(text, pieces, window, max_tokens, stride)
    if short_alone and len(grouped) == 1 and len(pieces) > 1:
        return [*pieces, *grouped]
    return grouped


def _grouped_pieces(
    text: str, pieces: list[tuple[int, int]], window: int, max_tokens: int, stride: int | None
) -> list[tuple[int, int]]:
    if stride is not None and stride < window:
        return _sliding(text, pieces, window, stride, max_tokens)
    grouped: list[tuple[int, int]] = []
    count = 0
    for start, end in pieces:
        if grouped and count < window and estimate_tokens(text[grouped[-1][0] : end]) <= max_tokens:
            grouped[-1] = (grouped[-1][0], end)
            count += 1
            continue
        grouped.append((start, end))
        count = 1
    return grouped


def _sliding(
    text: str, pieces: list[tuple[int, int]], window: int, stride: int, max_tokens: int
) -> list[tuple[int, int]]:
    """Overlapping windows: ``window`` pieces starting every ``stride`` (fewer where they
    would pass ``max_tokens``), the last one ending with the text."""
    windows: list[tuple[int, int]] = []
    for first in range(0, len(pieces), stride):
        last = min(first + window, len(pieces)) - 1
        while (
            last > first and estimate_tokens(text[pieces[first][0] : pieces[last][1]]) > max_tokens
        ):
            last -= 1
        windows.append((pieces[first][0], pieces[last][1]))
        if last == len(pieces) - 1:
            break
    return windows


def passages(
    text: str,
    subject: str = "",
    *,
    window: int = DEFAULT_WINDOW,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    stride: int | None = DEFAULT_STRIDE,
    short_alone: bool = True,
) -> list[Passage]:
    """The passages of a ticket to route: the subject (when it has words; without "Re:"
    and "Fwd:") first, then
    the cleaned body's sentences in windows of ``window`` starting every ``stride``
    (None: ``window``, no overlap), each within ``max_tokens``.

    Empty when nothing is left (a body that is only a quoted mail or a signature).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    found: list[Passage] = []
    if any(c.isalnum() for c in subject):
        reply = _REPLY_PREFIX.match(subject)
        begin = reply.end() if reply else 0
        for start, end in _cut(subject, *_trimmed(subject, begin, len(subject)), max_tokens):
            found.append(Passage(subject[start:end], start, end, "subject"))
    spans = _grouped(
        text,
        sentences(text, kept_regions(text)),
        window,
        max_tokens,
        stride,
        short_alone=short_alone,
    )
    found.extend(Passage(text[s:e], s, e, "text") for s, e in spans)
    return found
