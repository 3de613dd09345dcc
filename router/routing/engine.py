"""The routing engine: an encoder plus one swappable snapshot of (intents, index).

Everything that answers a classification goes through ``Engine.classify``: the gRPC
service, the in-process CLI and ``eval``, so they give the same answers for the same
intents. Each call reads the snapshot reference once, so a concurrent swap never mixes
two revisions in one answer.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from router.memory import release_memory
from router.routing.aggregation import TicketScoring, TicketSettings, decide_tickets
from router.routing.calibration import Calibration, calibrate
from router.routing.folding import FOLDING, fold
from router.routing.index import DEFAULT_THRESHOLD, Index, IndexSettings, Prediction, Scoring
from router.routing.intents import IntentSet
from router.routing.negation import Analysis, NegationSettings, analyse, pooling_spans
from router.routing.tickets import Passage, passages
from router.routing.vectorcache import VectorCache
from router.vectors import Span, Vectors

__all__ = [
    "MAX_REFUSED_SPANS",
    "MAX_REFUSED_SPAN_CHARS",
    "BuildAbandoned",
    "Engine",
    "Result",
    "Snapshot",
    "TextEncoder",
    "Timings",
    "refused_texts",
    "revision_of",
]

log = logging.getLogger(__name__)


class TextEncoder(Protocol):
    """What the engine needs of an encoder (``router.model.loading.load_encoder``; a fake in tests).

    ``embed`` gives one row per text: ``layers`` pooled hidden-state blocks of
    ``dimension`` values, the sentence vector's block last; ``spans`` reweight tokens
    for pooling (negation). ``fingerprint`` names what it computes (cache key).
    """

    @property
    def model_id(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def default_threshold(self) -> float | None: ...
    @property
    def lexical_weight(self) -> float: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    @property
    def layers(self) -> int: ...
    @property
    def width(self) -> int: ...
    def embed(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None
    ) -> Vectors: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One loaded revision: the intents and the index built from them. Never mutated."""

    intents: IntentSet
    index: Index
    built_at: float
    build_seconds: float
    #: Names the intents and the model together (answers name it; the vector cache and
    #: thresholds depend on both).
    revision: str
    #: Where the thresholds come from, in words (Info, eval): the intents' own, one
    #: calibrated from the exemplars where they have none (or were tuned with another
    #: model), or the model's default.
    threshold_source: str
    #: Built as a cold start builds it (head trained from the centroids, threshold
    #: calibrated for it). False: a hot reload's first build, its head and calibrated
    #: threshold carried over from the revision it replaced; ``Engine.complete`` gives
    #: the final one (same revision), off the answer path.
    final: bool = True
    #: The calibrated threshold, when one applies.
    calibration: Calibration | None = None


@dataclass(frozen=True, slots=True)
class Timings:
    preprocess_ms: float = 0.0
    encode_ms: float = 0.0
    score_ms: float = 0.0
    total_ms: float = 0.0
    queue_ms: float = 0.0

    @classmethod
    def between(
        cls, start: float, analysed: float, encoded: float, done: float, paused: float = 0.0
    ) -> Timings:
        """The stages' times in ms from their ``time.perf_counter()`` ends, less the
        ``paused`` seconds the encode stage spent serving others (``_Pauses``)."""
        return cls(
            preprocess_ms=(analysed - start) * 1e3,
            encode_ms=(encoded - analysed - paused) * 1e3,
            score_ms=(done - encoded) * 1e3,
            total_ms=(done - start - paused) * 1e3,
        )


class _Pauses:
    """A caller's ``pause``, timed: what it takes is not this call's own time."""

    def __init__(self, pause: Callable[[], None]) -> None:
        self._pause = pause
        self.seconds = 0.0

    def __call__(self) -> None:
        started = time.perf_counter()
        try:
            self._pause()
        finally:
            self.seconds += time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Result:
    predictions: list[Prediction]
    analyses: list[Analysis]  # what preprocessing found in each text
    revision: str
    timings: Timings


def _variant(negation: NegationSettings) -> str:
    """What an exemplar's vector depends on besides its text and the model: the
    negation settings and the script folding (the vector cache's key)."""
    return f"{negation.key()}|{FOLDING}"


def revision_of(intents: IntentSet, encoder: TextEncoder) -> str:
    """The revision that names ``intents`` served with ``encoder``'s model (12 hex digits)."""
    key = f"{intents.revision}\0{encoder.fingerprint}\0{FOLDING}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


#: Return freed C heap to the system after a build that embedded this many texts; a
#: trim costs tens of ms, so small reloads skip it (ARCHITECTURE.md "Memory").
_RELEASE_AFTER = 64

#: Texts a build that can be abandoned embeds between two looks at ``abandoned()``:
#: about a quarter of a second of MiniLM on two cores.
_BUILD_CHUNK = 256


#: Rows an engine call given a ``pause`` embeds between two calls of it: about a tenth
#: of a second of MiniLM on passages of two sentences (``serving/batching.py`` serves
#: waiting Classify calls there, so one long ticket call never holds them for seconds).
PAUSE_ROWS = 32


def _stop_if(abandoned: Callable[[], bool], step: int) -> None:
    """``Index``'s ``on_step``: stop training once a newer build supersedes this one."""
    if abandoned():
        raise BuildAbandoned(f"abandoned at training step {step}")


class BuildAbandoned(Exception):  # noqa: N818 - not an error: a newer build supersedes this one
    """``Engine.build(abandoned=...)`` stopped because ``abandoned()`` became true.

    Control flow between the engine and ``serving/reload.py``, which asked for it; it
    never reaches a caller (``RouterError`` is for what goes wrong).
    """


#: Refused spans embedded per text at most: each is a model row of its own, and one
#: long text can hold hundreds ("I don't want a refund, " x 870 took 5.2 s of model
#: time). The first distinct ones are kept: the model reads the start of a long text.
MAX_REFUSED_SPANS = 8
#: Characters of a refused span embedded (its start): a clause without punctuation runs
#: to the end of the text (Chinese), and 8 spans of 256 tokens each beside every text
#: doubled the model's working memory. The bundled eval sets hold none this long.
MAX_REFUSED_SPAN_CHARS = 100


def refused_texts(analysis: Analysis) -> list[str]:
    """The refused spans of ``analysis`` that ``classify`` embeds: each its first
    ``MAX_REFUSED_SPAN_CHARS``, distinct (the same words give the same vector), naming
    something (a letter or digit besides Chinese particles), the first
    ``MAX_REFUSED_SPANS``."""
    texts = (s.text(analysis.text)[:MAX_REFUSED_SPAN_CHARS].strip() for s in analysis.refusals)
    named = (t for t in texts if any(ch.isalnum() and ch not in _PARTICLES for ch in t))
    return list(dict.fromkeys(named))[:MAX_REFUSED_SPANS]


#: Chinese particles: a refused span of these alone ("不用了") names nothing to refuse.
_PARTICLES = frozenset("了的吧啊呢吗呀啦哦么")


def _lexical_texts(index: Index, analyses: Sequence[Analysis]) -> list[str] | None:
    """What the index's lexical overlap reads of each text (its refusals blanked); None
    when the index mixes in none (nothing to compute on the answer path)."""
    return None if index.lexical is None else [a.kept_text() for a in analyses]


def _ticket_refusals(
    cut: Sequence[Sequence[Passage]], analyses: Sequence[Analysis]
) -> tuple[list[str], list[tuple[int, int]]]:
    """The refused spans ``classify_tickets`` embeds, and which passage row owns which
    span: each ticket's first ``MAX_REFUSED_SPANS`` distinct ones, whatever its passage
    count (overlapping windows read a sentence twice; a long ticket is not many texts'
    worth of refusals)."""
    spans: list[str] = []
    owners: list[tuple[int, int]] = []
    row = 0
    for ticket in cut:
        seen: dict[str, int] = {}
        for _ in ticket:
            for text in refused_texts(analyses[row]):
                if text not in seen and len(seen) < MAX_REFUSED_SPANS:
                    seen[text] = len(spans)
                    spans.append(text)
                if text in seen:
                    owners.append((row, seen[text]))
            row += 1
    return spans, owners


class Engine:
    def __init__(
        self,
        encoder: TextEncoder,
        settings: IndexSettings | None = None,
        cache: VectorCache | None = None,
        negation: NegationSettings | None = None,
        on_negation_failure: Callable[[], None] | None = None,
        *,
        warm_reloads: bool = True,
    ) -> None:
        self.encoder = encoder
        #: ``build(warm_from=...)`` warm-starts; False: every build is a cold one (the
        #: baseline bench/reload.py measures against).
        self.warm_reloads = warm_reloads
        #: Called once per text whose negation analysis raised (the metrics count it).
        self.on_negation_failure = on_negation_failure
        #: Texts routed without negation handling because their analysis raised.
        self.negation_failures = 0
        self.settings = settings or IndexSettings()
        self.cache = cache if cache is not None else VectorCache(encoder.fingerprint, encoder.width)
        #: Overrides the intents' own negation settings (eval compares on and off).
        self.negation = negation
        #: How ``classify_tickets`` cuts and aggregates tickets (bench/tickets.py).
        self.tickets = TicketSettings()
        self._snapshot: Snapshot | None = None

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise RuntimeError("no intents loaded yet")
        return snap

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    def negation_of(self, intents: IntentSet) -> NegationSettings:
        return self.negation if self.negation is not None else intents.negation

    def thresholds_for(self, intents: IntentSet) -> tuple[IntentSet, IndexSettings, str]:
        """The intents and settings the index applies, and where its thresholds come from.

        A threshold belongs to the model it was tuned with: when the files name another
        model (``defaults.model``), their thresholds are set aside (logged, and shown by
        Info and eval). Where no threshold of the intents applies, ``build`` calibrates
        one from the exemplars (``_calibrates``); the model's own default applies where
        it cannot (too few exemplars) or ``settings.calibrate`` is off. The lexical weight
        is the settings', else the intents' ``defaults.lexical_weight`` (a deployment's
        choice: it applies whatever the model), else the model's.
        """
        model = self.encoder.model_name
        settings = self.settings
        tuned_for = intents.threshold_model
        if settings.lexical_weight is None:  # the intents' own, else the model's
            weight = intents.lexical_weight
            settings = replace(
                settings,
                lexical_weight=self.encoder.lexical_weight if weight is None else weight,
            )
        if settings.default_threshold is None:
            model_default = self.encoder.default_threshold
            settings = replace(
                settings,
                default_threshold=DEFAULT_THRESHOLD if model_default is None else model_default,
            )
        if tuned_for is None or tuned_for == model:
            own = intents.default_threshold is not None or any(
                i.threshold is not None for i in intents.intents
            )
            where = "the intents" + (f" (tuned for {tuned_for})" if tuned_for else "")
            return intents, settings, where if own else f"the default for {model}"
        stripped = replace(
            intents,
            default_threshold=None,
            intents=tuple(replace(i, threshold=None) for i in intents.intents),
        )
        log.warning(
            "the thresholds in %s were tuned for model %s, not %s: set aside; %s applies "
            "(run `intent-router tune --write --model %s` to tune them for it)",
            ", ".join(intents.files) or "the intents",
            tuned_for,
            model,
            "a threshold calibrated from the exemplars"
            if self._calibrates(stripped)
            else f"{model}'s default {settings.default_threshold:.4g}",
            model,
        )
        return stripped, settings, f"the default for {model} (the intents' are for {tuned_for})"

    def _calibrates(self, applied: IntentSet) -> bool:
        """Whether ``build`` calibrates a threshold for ``applied`` (the intents as
        ``thresholds_for`` gives them): no ``defaults.threshold`` applies, some intent has
        none of its own, and neither the settings' ``default_threshold`` nor
        ``calibrate=False`` says otherwise."""
        if not self.settings.calibrate or self.settings.default_threshold is not None:
            return False
        return applied.default_threshold is None and any(
            i.threshold is None for i in applied.intents
        )

    def _calibrated_source(
        self, intents: IntentSet, applied: IntentSet, calibration: Calibration
    ) -> str:
        """``Snapshot.threshold_source`` for a calibrated threshold."""
        model = self.encoder.model_name
        source = f"{calibration.describe()} for {model}"
        own = sum(i.threshold is not None for i in applied.intents)
        if own:
            source += f"; {own} intents with their own threshold"
        if intents.threshold_model not in (None, model):
            source += f" (the intents' thresholds are for {intents.threshold_model})"
        return source

    def build(
        self,
        intents: IntentSet,
        abandoned: Callable[[], bool] | None = None,
        *,
        warm_from: Snapshot | None = None,
    ) -> Snapshot:
        """Embed every example and build an index; the current snapshot is untouched.

        With ``abandoned``, examples are embedded ``_BUILD_CHUNK`` at a time, each chunk
        kept in the vector cache, the head checks it between training steps, and
        ``BuildAbandoned`` is raised as soon as ``abandoned()`` is true (a newer edit
        supersedes this build; what was embedded is not embedded again).

        With ``warm_from`` (the snapshot serving, when its index has a head), the head
        starts from that one's columns (``head.WARM_STEPS``) and its calibrated threshold
        is carried over: a snapshot that is not ``final``, built in a fraction of the time
        (bench/reload.py); ``complete`` then builds the final one.
        """
        start = time.perf_counter()
        texts = [e for intent in intents.intents for e in intent.examples]
        negation = self.negation_of(intents)
        misses = self.cache.misses
        vectors = self._embed_examples(texts, negation, abandoned)
        negatives = None
        if intents.out_of_scope:
            negatives = self._embed_examples(list(intents.out_of_scope), negation, abandoned)
        if abandoned is not None and abandoned():
            raise BuildAbandoned(f"abandoned after {time.perf_counter() - start:.2f} s")
        applied, settings, source = self.thresholds_for(intents)
        warm = warm_from if self.warm_reloads and warm_from is not None else None
        if warm is not None and (warm.index.head is None or settings.scoring is not Scoring.HEAD):
            warm = None
        index = Index(
            applied,
            vectors,
            settings,
            negatives,
            layers=self.encoder.layers,
            warm_from=None if warm is None else warm.index,
            on_step=None if abandoned is None else functools.partial(_stop_if, abandoned),
        )
        calibration = None
        if self._calibrates(applied):
            calibration = warm.calibration if warm is not None else None
            if calibration is None:
                calibration = calibrate(index, vectors, negatives)
            if calibration is not None:
                index = index.with_default_threshold(calibration.threshold)
                source = self._calibrated_source(intents, applied, calibration)
        if self.cache.misses - misses >= _RELEASE_AFTER:
            release_memory()  # what embedding freed; see encoder.release_memory
        elapsed = time.perf_counter() - start
        revision = revision_of(intents, self.encoder)
        log.info(
            "built index revision %s (intents %s, model %s): %d intents, %d examples in "
            "%.2f s%s; thresholds: %s",
            revision,
            intents.revision,
            self.encoder.model_name,
            len(intents.intents),
            len(texts),
            elapsed,
            "" if warm is None else f", head warm-started from revision {warm.revision}",
            source,
        )
        return Snapshot(
            intents, index, time.time(), elapsed, revision, source, warm is None, calibration
        )

    def complete(self, snapshot: Snapshot, abandoned: Callable[[], bool] | None = None) -> Snapshot:
        """``snapshot`` as a cold start builds it: itself when ``final``, else rebuilt with
        the head trained from the centroids and the threshold calibrated (its vectors come
        from the cache; ``BuildAbandoned`` as in ``build``)."""
        if snapshot.final:
            return snapshot
        return self.build(snapshot.intents, abandoned)

    def exemplar_vectors(self, intents: IntentSet) -> tuple[Vectors, Vectors | None]:
        """The rows ``build`` indexes for ``intents``: the examples', then the
        ``out_of_scope:`` examples' (None without them), through the vector cache
        (bench/calibration.py scores them as the calibration does)."""
        negation = self.negation_of(intents)
        texts = [e for intent in intents.intents for e in intent.examples]
        vectors = self._embed_examples(texts, negation, None)
        if not intents.out_of_scope:
            return vectors, None
        return vectors, self._embed_examples(list(intents.out_of_scope), negation, None)

    def _embed_examples(
        self, texts: list[str], negation: NegationSettings, abandoned: Callable[[], bool] | None
    ) -> Vectors:
        """Rows for ``texts`` from the vector cache, embedding what it lacks (``build``)."""

        def encode(batch: Sequence[str]) -> Vectors:
            return self._encode(self._analyse(batch, negation), negation)

        variant = _variant(negation)
        if abandoned is not None:  # what is missing, a chunk at a time; then one gather
            missing = self.cache.missing(texts, variant)
            for begin in range(0, len(missing), _BUILD_CHUNK):
                if abandoned():
                    raise BuildAbandoned(f"abandoned after {begin} of {len(missing)} new texts")
                self.cache.embed(missing[begin : begin + _BUILD_CHUNK], encode, variant, save=False)
        return self.cache.embed(texts, encode, variant, save=False)

    def swap(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the one that answers from now on (a single reference store;
        ``persist`` then drops the vectors it no longer uses)."""
        self._snapshot = snapshot

    def load(self, intents: IntentSet) -> Snapshot:
        snapshot = self.build(intents)
        self.swap(snapshot)
        self.persist()
        return snapshot

    def persist(self) -> None:
        """Forget the vectors the serving snapshot does not use, and write the cache file
        if that or a build changed it (blocking I/O; after a swap, off the answer path)."""
        snapshot = self._snapshot
        if snapshot is not None:
            self.cache.retain(
                [e for i in snapshot.intents.intents for e in i.examples]
                + list(snapshot.intents.out_of_scope),
                _variant(self.negation_of(snapshot.intents)),
            )
        self.cache.save()

    def _analyse(self, texts: Sequence[str], negation: NegationSettings) -> list[Analysis]:
        if not negation.enabled:
            return [Analysis(t) for t in texts]
        return [self._analyse_one(t, negation) for t in texts]

    def _analyse_one(self, text: str, negation: NegationSettings) -> Analysis:
        """One text's analysis; a failure routes that text without negation handling.

        A bug in the rules must never fail another text, a batch or an index build:
        the text is logged (its length, never its words), counted, and embedded as it is.
        """
        try:
            return analyse(text, negation.lexicon)
        except Exception as exc:  # any bug in the rules: contain it to this text
            self.negation_failures += 1
            log.warning(
                "negation analysis failed on a text of %d characters (%s: %s); "
                "routed without negation handling",
                len(text),
                type(exc).__name__,
                exc,
                exc_info=self.negation_failures == 1,  # the traceback once per process
            )
            if self.on_negation_failure is not None:
                self.on_negation_failure()
            return Analysis(text)

    def _encode(
        self,
        analyses: Sequence[Analysis],
        negation: NegationSettings,
        extra: Sequence[str] = (),
        pause: Callable[[], None] | None = None,
    ) -> Vectors:
        """Rows of ``TextEncoder.embed`` with negation weights, then plain rows of ``extra``.

        With ``pause``, more than ``PAUSE_ROWS`` rows are embedded ``PAUSE_ROWS`` at a
        time, shortest first (so each slice pads little), and ``pause()`` is called
        between slices. A text's vector does not depend on the rest of its batch
        (``TextEncoder``), so the rows are those of one call.
        """
        spans = [pooling_spans(a, negation) for a in analyses] + [[] for _ in extra]
        texts = [fold(t) for t in (*(a.text for a in analyses), *extra)]
        if pause is None or len(texts) <= PAUSE_ROWS:
            return self.encoder.embed(texts, spans)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.encoder.width), np.float32)
        for start in range(0, len(order), PAUSE_ROWS):
            if start:
                pause()
            rows = order[start : start + PAUSE_ROWS]
            vectors[rows] = self.encoder.embed([texts[i] for i in rows], [spans[i] for i in rows])
        return vectors

    def classify(
        self,
        texts: Sequence[str],
        top_k: int = 3,
        *,
        multi_intent: bool = False,
        subjects: Sequence[str] | None = None,
        snapshot: Snapshot | None = None,
        pause: Callable[[], None] | None = None,
    ) -> Result:
        """Each text's answer, by the serving snapshot or by ``snapshot`` (a candidate not
        swapped in yet: the regression gate measures it so). With ``multi_intent`` or
        ``subjects``, the texts are tickets (``classify_tickets``); otherwise each is
        routed whole, as it is. ``pause``: called between slices of the model's work
        (``_encode``), for a caller to serve others there; the answers do not change."""
        if multi_intent or subjects is not None:
            return self.classify_tickets(texts, subjects, top_k, snapshot=snapshot, pause=pause)
        if snapshot is None:
            snapshot = self.snapshot  # read once: one revision answers the whole call
        if not texts:
            return Result([], [], snapshot.revision, Timings())
        negation = self.negation_of(snapshot.intents)
        index = snapshot.index
        start = time.perf_counter()
        analyses = self._analyse(texts, negation)
        owners = [(row, text) for row, a in enumerate(analyses) for text in refused_texts(a)]
        analysed = time.perf_counter()
        pauses = None if pause is None else _Pauses(pause)
        vectors = self._encode(analyses, negation, [text for _, text in owners], pauses)
        encoded = time.perf_counter()
        scored = index.scores(vectors[: len(texts)], _lexical_texts(index, analyses))
        scores = scored.scores
        refused: list[set[int]] = [set() for _ in texts]
        if owners:
            span_scores = index.scores(vectors[len(texts) :], [t for _, t in owners]).scores
            for (row, _), named in zip(owners, span_scores, strict=True):
                # The refused span names an intent more strongly than the rest of the
                # utterance does: the customer does not want that intent.
                target = int(np.argmax(named))
                if named[target] > scores[row, target]:
                    refused[row].add(target)
        wants_nothing = [a.wants_nothing(negation.lexicon) for a in analyses]
        predictions = index.decide(scored, top_k, refused, wants_nothing)
        done = time.perf_counter()
        return Result(
            predictions=predictions,
            analyses=analyses,
            revision=snapshot.revision,
            timings=Timings.between(
                start, analysed, encoded, done, 0.0 if pauses is None else pauses.seconds
            ),
        )

    def classify_tickets(
        self,
        texts: Sequence[str],
        subjects: Sequence[str] | None = None,
        top_k: int = 3,
        *,
        snapshot: Snapshot | None = None,
        pause: Callable[[], None] | None = None,
    ) -> Result:
        """Each ticket (a body and an optional subject) routed passage by passage
        (``routing/tickets.py``) and aggregated (``routing/aggregation.py``): one
        prediction per ticket carrying ``matches``, every intent it asks for with the
        passage that asked. ``Result.analyses`` holds each ticket's first passage's
        analysis (the whole body's when nothing was left to split).
        """
        if not texts:
            return Result([], [], (snapshot or self.snapshot).revision, Timings())
        scoring, timings = self._score_tickets(texts, subjects, snapshot, pause)
        started = time.perf_counter()
        predictions = decide_tickets(scoring, top_k, self.tickets)
        decided = (time.perf_counter() - started) * 1e3
        firsts = np.cumsum([0, *(len(t) for t in scoring.passages)])[:-1]
        return Result(
            predictions=predictions,
            analyses=[scoring.analyses[int(i)] for i in firsts],
            revision=scoring.revision,
            timings=replace(
                timings,
                score_ms=timings.score_ms + decided,
                total_ms=timings.total_ms + decided,
            ),
        )

    def score_tickets(
        self, texts: Sequence[str], subjects: Sequence[str] | None = None
    ) -> TicketScoring:
        """Every passage of each ticket scored, before any threshold applies
        (``decide_tickets`` decides; ``tune`` and bench/tickets.py decide at many)."""
        return self._score_tickets(texts, subjects, None, None)[0]

    def _score_tickets(
        self,
        texts: Sequence[str],
        subjects: Sequence[str] | None,
        snapshot: Snapshot | None,
        pause: Callable[[], None] | None,
    ) -> tuple[TicketScoring, Timings]:
        if subjects is not None and len(subjects) != len(texts):
            raise ValueError(f"{len(subjects)} subjects for {len(texts)} texts")
        if snapshot is None:
            snapshot = self.snapshot  # read once: one revision answers the whole call
        negation = self.negation_of(snapshot.intents)
        index = snapshot.index
        start = time.perf_counter()
        cut = [self._passages(t, subjects[i] if subjects else "") for i, t in enumerate(texts)]
        flat = [p for ticket in cut for p in ticket]
        analyses = self._analyse([p.text for p in flat], negation)
        spans, owners = _ticket_refusals(cut, analyses)
        analysed = time.perf_counter()
        pauses = None if pause is None else _Pauses(pause)
        if flat:
            vectors = self._encode(analyses, negation, spans, pauses)
        else:
            vectors = np.empty((0, self.encoder.width), np.float32)
        encoded = time.perf_counter()
        scored = index.scores(vectors[: len(flat)], _lexical_texts(index, analyses))
        refused = np.zeros(scored.scores.shape, dtype=bool)
        if owners:
            span_scores = index.scores(vectors[len(flat) :], spans).scores
            for row, span in owners:
                # as in ``classify``: the refused span names this intent more strongly
                named = span_scores[span]
                target = int(np.argmax(named))
                if named[target] > scored.scores[row, target]:
                    refused[row, target] = True
        wants_nothing = np.array([a.wants_nothing(negation.lexicon) for a in analyses], bool)
        rank = np.where(refused, -np.inf, scored.rank)
        winners = np.where(wants_nothing, -1, rank.argmax(axis=1) if flat else 0)
        done = time.perf_counter()
        scoring = TicketScoring(
            passages=cut,
            analyses=analyses,
            scores=scored.scores,
            closest=scored.closest,
            winners=winners.astype(np.int64),
            refused=refused,
            index=index,
            revision=snapshot.revision,
        )
        timings = Timings.between(
            start, analysed, encoded, done, 0.0 if pauses is None else pauses.seconds
        )
        return scoring, timings

    def _passages(self, text: str, subject: str) -> list[Passage]:
        """A ticket's passages under ``self.tickets``; the whole body when cleaning
        leaves nothing (a ticket that is only a quoted mail is still routed)."""
        settings = self.tickets
        subject = subject if settings.subject else ""
        if settings.whole:
            cut = passages(text, subject, window=10_000, max_tokens=10**9)
            body = [p for p in cut if p.field == "text"]
            cut = [p for p in cut if p.field == "subject"]
            if body:
                start, end = body[0].start, body[-1].end
                cut.append(Passage(text[start:end], start, end, "text"))
        else:
            cut = passages(
                text,
                subject,
                window=settings.window,
                stride=settings.stride,
                short_alone=settings.short_alone,
            )
        return cut or [Passage(text, 0, len(text), "text")]
