"""Dynamic micro-batching between the gRPC handlers and the engine.

One consumer thread owns the queues and runs the model. It takes the oldest request,
then whatever else is already waiting, until the batch is full by count, by
padded-token budget (longest x count) or by attention budget (longest² x count: the
model's working memory), tokens estimated from characters, or ``max_wait_ms`` has
passed (0 by default: a lone request never waits; under load, requests that arrive
while the model is busy form the next batch). The batch runs as one engine call, so it
is answered by one snapshot; each request gets its slice back through its Future, set
on the event loop.

The consumer is a plain thread, not an event-loop task: a request reaches the model
with one thread wake-up and its answer comes back with one, and the next batch starts
as soon as the model is free, whatever the event loop is doing
(ARCHITECTURE.md "Batching and threads").

Two queues, so that bulk work never starves interactive callers:

* *interactive*: ``classify`` (the Classify RPC), at most ``max_queue`` requests waiting;
* *bulk*: ``classify_many`` (ClassifyBatch) cut into chunks bounded like a batch, at
  most ``max_bulk_queue`` texts waiting. A request is
  admitted whole or refused whole, and an empty bulk queue always admits one.

Each batch is taken from one queue; when both hold work they take turns (one
interactive batch, one bulk batch), so an interactive request waits for at most the
batch running plus one bulk batch, whatever the bulk backlog, and a busy interactive
queue cannot starve bulk work either.

A batch is one engine call, but not one long wait: tickets are cut into passages, and a
chunk of 32 long tickets is a thousand model rows (seconds of work). The engine embeds
in slices of ``PAUSE_ROWS`` rows and calls back between them (``Engine.classify``'s
``pause``); there the consumer runs one batch of the plain Classify requests waiting
(tickets keep their places in the queue: one would hold everyone for its whole length)
before going on (turns again, so a steady stream of Classify calls cannot starve the
long call). A plain request thus waits for at most one slice of a long call, not the
whole of it; the long call's answers do not change. When every caller of the running
call has gone (cancelled, past its deadline, or cut off by a shutdown's grace), the
call stops at the next pause instead of running to its end.

* Requests whose caller has gone (cancelled, or past its deadline) are skipped and
  counted by reason (``skipped_requests``, ``skipped_texts``). When one chunk of a
  large request fails, its other chunks are cancelled, hence skipped.
* If a batch fails, its requests are retried one by one, so one bad item never fails
  the others.
* A full queue refuses at once (``OverloadedError`` -> RESOURCE_EXHAUSTED) instead of
  letting callers time out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from router.errors import CallerGoneError, OverloadedError
from router.routing.engine import Engine, Result, Timings
from router.routing.index import Prediction
from router.routing.negation import Analysis

__all__ = ["SKIP_REASONS", "Answer", "BatchSettings", "Batcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchSettings:
    max_batch: int = 32  # texts per engine call
    max_tokens: int = 32 * 128  # padded-token budget: longest x count
    #: longest² x count: the model's working memory grows with each text's tokens times
    #: its row's width, about 17 MB for one text of 256 tokens (MiniLM); at most two such
    #: texts per engine call (README "Operations")
    max_attention: int = 2 * 256 * 256
    max_wait_ms: float = 0.0  # extra wait for company after the first request
    max_queue: int = 256  # interactive requests (not texts) waiting; beyond: RESOURCE_EXHAUSTED
    #: ClassifyBatch texts waiting (16 full requests of 512); beyond: RESOURCE_EXHAUSTED
    max_bulk_queue: int = 16 * 512


@dataclass(frozen=True, slots=True)
class Answer:
    prediction: Prediction
    analysis: Analysis
    revision: str


@dataclass(slots=True)
class _Entry:
    texts: Sequence[str]
    top_k: int
    future: asyncio.Future[Result]  # set on its loop only (``_deliver``)
    deadline: float | None  # time.monotonic()
    tokens: int  # estimated tokens of the longest text
    bulk: bool = False  # a chunk of a ClassifyBatch (the bulk queue)
    #: Tickets (``Engine.classify_tickets``): one subject per text ("" for none); None
    #: routes each text whole, as it is.
    subjects: Sequence[str] | None = None
    enqueued: float = field(default_factory=time.perf_counter)

    def gone(self, now: float) -> str | None:
        """Why the caller no longer waits ("deadline", "cancelled"), or None."""
        if self.deadline is not None and now > self.deadline:
            return "deadline"
        # done() read from the consumer thread: a cancellation it misses only costs
        # the model a text whose answer is dropped
        return "cancelled" if self.future.done() else None


class _Abandoned(Exception):  # noqa: N818 - control flow, never reaches a caller
    """Raised from an engine call's ``pause`` when every caller of its batch has gone:
    the rest of the call would be work nobody reads."""


#: What the consumer hands back to the loop: each future with its answer or error.
_Delivery = tuple["asyncio.Future[Result]", "Result | BaseException"]


def _estimate_tokens(text: str) -> int:
    """At most a token a character (punctuation, Chinese and runs of rare letters take
    one each), plus [CLS] and [SEP]; capped at the model's 256. An upper bound, not an
    average: it bounds a batch's memory whatever the text (English averages about 4
    characters a token, so batches of texts over 62 characters hold fewer than 32 of
    them; bulk throughput on the bundled eval texts measured the same, 461 texts/s)."""
    return min(256, 2 + len(text))


def _fits(count: int, longest: int, settings: BatchSettings) -> bool:
    """Whether ``count`` texts, the longest ``longest`` tokens (estimated), make one batch."""
    return (
        count <= settings.max_batch
        and longest * count <= settings.max_tokens
        and longest * longest * count <= settings.max_attention
    )


#: Why a queued request was dropped before the model ran: its deadline passed, or its
#: caller went away (cancelled the call, or a sibling chunk failed).
SKIP_REASONS = ("deadline", "cancelled")
_GONE = {
    "deadline": "the deadline passed while the request was queued",
    "cancelled": "the caller went away while the request was queued",
}


def _chunks(texts: Sequence[str], settings: BatchSettings) -> list[list[int]]:
    """Indices of ``texts`` shortest first, cut into chunks that each fit one batch
    (``_fits``; a text alone always does)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks: list[list[int]] = []
    current: list[int] = []
    for i in order:
        tokens = _estimate_tokens(texts[i])  # the longest so far: sorted by length
        if current and not _fits(len(current) + 1, tokens, settings):
            chunks.append(current)
            current = []
        current.append(i)
    if current:
        chunks.append(current)
    return chunks


class Batcher:
    def __init__(
        self,
        engine: Engine,
        settings: BatchSettings,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._on_batch = on_batch  # told the number of texts of every batch run
        self._queue: collections.deque[_Entry] = collections.deque()  # interactive
        self._bulk: collections.deque[_Entry] = collections.deque()  # ClassifyBatch chunks
        self._bulk_texts = 0  # texts in ``_bulk`` (under ``_ready``)
        self._bulk_turn = False  # consumer only: when both queues wait, bulk goes next
        self._pausing = False  # consumer only: serving interactive requests inside a call
        self._running: list[_Entry] = []  # consumer only: the batch of the running call
        self._ready = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches = 0
        #: Queued requests (a ClassifyBatch chunk counts as one) and their texts dropped
        #: before the model ran, by reason (``SKIP_REASONS``); written by the consumer.
        self.skipped_requests = dict.fromkeys(SKIP_REASONS, 0)
        self.skipped_texts = dict.fromkeys(SKIP_REASONS, 0)
        #: Engine calls stopped at a pause because every caller had gone (consumer).
        self.abandoned_calls = 0

    @property
    def depth(self) -> int:
        """Requests and ClassifyBatch chunks waiting, both queues."""
        return len(self._queue) + len(self._bulk)

    @property
    def interactive_depth(self) -> int:
        return len(self._queue)

    @property
    def bulk_depth(self) -> int:
        """ClassifyBatch texts waiting."""
        return self._bulk_texts

    @property
    def skipped(self) -> int:
        return sum(self.skipped_requests.values())

    def start(self) -> None:
        if self._thread is None:
            self._closing = False
            self._thread = threading.Thread(target=self._consume, name="batcher", daemon=True)
            self._thread.start()

    async def close(self) -> None:
        """Stop the consumer after the batch it is running; queued requests are refused."""
        with self._ready:
            self._closing = True
            self._ready.notify()
            left = [*self._queue, *self._bulk]
            self._queue.clear()
            self._bulk.clear()
            self._bulk_texts = 0
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        for entry in left:
            if not entry.future.done():
                entry.future.set_exception(OverloadedError("the server is shutting down"))

    async def classify(
        self,
        texts: Sequence[str],
        top_k: int,
        timeout: float | None = None,
        *,
        subjects: Sequence[str] | None = None,
    ) -> Result:
        """Queue ``texts`` as one request and wait for its answer; with ``subjects``
        (one per text, "" for none) they are routed as tickets."""
        if self._closing:
            raise OverloadedError("the server is shutting down")
        if len(self._queue) >= self.settings.max_queue:
            raise OverloadedError(
                f"overloaded: {len(self._queue)} requests queued (limit "
                f"{self.settings.max_queue}); retry with backoff"
            )
        deadline = time.monotonic() + timeout if timeout is not None else None
        tokens = max(_estimate_tokens(t) for t in texts)  # a bad item fails here, alone
        entry = _Entry(
            texts,
            top_k,
            asyncio.get_running_loop().create_future(),
            deadline,
            tokens,
            subjects=subjects,
        )
        with self._ready:
            self._queue.append(entry)
            self._ready.notify()
        return await entry.future  # cancelling the caller cancels the future: skipped

    async def classify_many(
        self,
        texts: Sequence[str],
        top_k: int,
        timeout: float | None = None,
        *,
        subjects: Sequence[str] | None = None,
    ) -> tuple[list[Answer], Timings]:
        """A large batch, on the bulk queue: grouped by length into chunks that each fit
        one batch, admitted together (or refused together when the bulk queue is full).

        Answers come back in the order of ``texts``; each names the revision that
        answered it (chunks may straddle a reload). If one chunk fails, the others are
        cancelled: the consumer skips them rather than run work nobody will read.
        """
        if self._closing:
            raise OverloadedError("the server is shutting down")
        deadline = time.monotonic() + timeout if timeout is not None else None
        chunks = _chunks(texts, self.settings)
        loop = asyncio.get_running_loop()
        entries = [
            _Entry(
                [texts[i] for i in chunk],
                top_k,
                loop.create_future(),
                deadline,
                _estimate_tokens(texts[chunk[-1]]),  # the longest: chunks are sorted
                bulk=True,
                subjects=None if subjects is None else [subjects[i] for i in chunk],
            )
            for chunk in chunks
        ]
        limit = self.settings.max_bulk_queue
        with self._ready:
            if self._bulk and self._bulk_texts + len(texts) > limit:
                raise OverloadedError(
                    f"overloaded: {self._bulk_texts} batch texts queued (limit {limit}); "
                    "retry with backoff"
                )
            self._bulk.extend(entries)
            self._bulk_texts += len(texts)
            self._ready.notify()
        futures = [entry.future for entry in entries]
        try:
            results = await asyncio.gather(*futures)
        except BaseException:
            for future in futures:  # still queued: skipped by the consumer
                future.cancel()
            raise
        answers: dict[int, Answer] = {}
        for chunk, result in zip(chunks, results, strict=True):
            for pos, i in enumerate(chunk):
                answers[i] = Answer(result.predictions[pos], result.analyses[pos], result.revision)
        timings = Timings(
            preprocess_ms=sum(r.timings.preprocess_ms for r in results),
            encode_ms=sum(r.timings.encode_ms for r in results),
            score_ms=sum(r.timings.score_ms for r in results),
            total_ms=max(r.timings.total_ms for r in results),
            queue_ms=max(r.timings.queue_ms for r in results),
        )
        return [answers[i] for i in range(len(texts))], timings

    # ------------------------------------------------------------ the consumer thread

    def _consume(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            if batch:
                self._run_and_deliver(batch)

    def _run_and_deliver(self, batch: list[_Entry]) -> None:
        self.batches += 1
        try:
            outcomes = self._run(batch)
        except Exception as exc:  # never let one batch kill the consumer
            log.exception("batch failed")
            outcomes = [(entry.future, exc) for entry in batch]
        _deliver_soon(outcomes)

    def _collect(self) -> list[_Entry] | None:
        """The next batch, from one queue (empty if every waiting caller had gone); None
        once closing. When both queues hold work, they take turns."""
        with self._ready:
            while not self._queue and not self._bulk and not self._closing:
                self._ready.wait()
            bulk = bool(self._bulk) and (self._bulk_turn or not self._queue)
            queue = self._bulk if bulk else self._queue
            batch = self._fill(queue, time.monotonic() + self.settings.max_wait_ms / 1e3)
            closing = self._closing
        if batch:
            self._bulk_turn = not bulk  # the other queue goes next, if it holds work
        if closing:
            _deliver_soon(
                [(e.future, OverloadedError("the server is shutting down")) for e in batch]
            )
            return None
        return batch

    def _fill(self, queue: collections.deque[_Entry], wait_until: float) -> list[_Entry]:
        """Entries from the head of ``queue`` that make one batch (``_ready`` held),
        waiting for company until ``wait_until`` (time.monotonic()); callers gone
        meanwhile are dropped and told so."""
        s = self.settings
        batch: list[_Entry] = []
        count = longest = 0
        gone: list[tuple[_Entry, str]] = []
        while not self._closing:
            while queue:
                entry = queue[0]
                reason = entry.gone(time.monotonic())
                if reason is not None:
                    gone.append((self._take(queue), reason))
                    continue
                n, tokens = len(entry.texts), max(longest, entry.tokens)
                if batch and not _fits(count + n, tokens, s):
                    break
                batch.append(self._take(queue))
                count, longest = count + n, tokens
            else:
                remaining = wait_until - time.monotonic()
                if batch and remaining > 0 and count < s.max_batch:
                    self._ready.wait(remaining)
                    continue
            break
        self._drop(gone)
        return batch

    def _drop(self, gone: list[tuple[_Entry, str]]) -> None:
        """Tell callers gone before the model ran, and count them by reason."""
        for entry, reason in gone:
            self.skipped_requests[reason] += 1
            self.skipped_texts[reason] += len(entry.texts)
        _deliver_soon([(e.future, CallerGoneError(_GONE[why])) for e, why in gone])

    def _serve_waiting(self) -> None:
        """The ``pause`` of a long engine call (consumer thread). Stops the call when all
        its callers have gone (``_Abandoned``); else runs one batch of the plain Classify
        requests waiting (``_plain_waiting``) and lets the call go on. The batch run here
        is not paused again: it holds no ticket, so it is short."""
        self._stop_if_abandoned()
        if self._pausing or not self._queue:  # a glance without the lock: a request
            return  # just missed waits one more slice
        with self._ready:
            batch = [] if self._closing else self._plain_waiting()
        if batch:
            self._pausing = True
            try:
                self._run_and_deliver(batch)
            finally:
                self._pausing = False
            self._stop_if_abandoned()  # its callers may have gone meanwhile

    def _stop_if_abandoned(self) -> None:
        now = time.monotonic()
        if self._running and all(e.gone(now) is not None for e in self._running):
            raise _Abandoned

    def _plain_waiting(self) -> list[_Entry]:
        """(``_ready`` held) The plain Classify requests waiting that make one batch,
        taken from wherever they stand in the interactive queue; tickets keep their
        places (one would hold the paused call, and everyone behind it, for its whole
        length). Callers gone meanwhile are dropped."""
        batch: list[_Entry] = []
        kept: list[_Entry] = []
        gone: list[tuple[_Entry, str]] = []
        count = longest = 0
        now = time.monotonic()
        for entry in self._queue:
            reason = entry.gone(now)
            n, tokens = len(entry.texts), max(longest, entry.tokens)
            if reason is not None:
                gone.append((entry, reason))
            elif entry.subjects is None and (not batch or _fits(count + n, tokens, self.settings)):
                batch.append(entry)
                count, longest = count + n, tokens
            else:
                kept.append(entry)
        if batch or gone:  # one store: a reader without the lock never sees it empty
            self._queue = collections.deque(kept)
        self._drop(gone)
        return batch

    def _take(self, queue: collections.deque[_Entry]) -> _Entry:
        """The head of ``queue`` (``_ready`` held)."""
        entry = queue.popleft()
        if entry.bulk:
            self._bulk_texts -= len(entry.texts)
        return entry

    def _run(self, batch: list[_Entry]) -> list[_Delivery]:
        """One engine call per kind of request in ``batch`` (plain texts, tickets)."""
        if self._pausing:  # plain requests only (``_plain_waiting``)
            return self._call(batch)
        plain = [e for e in batch if e.subjects is None]
        tickets = [e for e in batch if e.subjects is not None]
        if plain and tickets:
            # answered at once, not after the tickets' slices; and then only the tickets'
            # callers keep the tickets' call alive
            _deliver_soon(self._run_watched(plain))
            return self._run_watched(tickets)
        return self._run_watched(batch)

    def _run_watched(self, batch: list[_Entry]) -> list[_Delivery]:
        """``batch`` run as one engine call that stops at a pause once all its callers
        have gone (``_serve_waiting``)."""
        self._running = batch
        try:
            return self._call(batch)
        except _Abandoned:
            self.abandoned_calls += 1
            log.info("an engine call of %d requests stopped: every caller had gone", len(batch))
            error = CallerGoneError("the caller went away while its request ran")
            return [(e.future, error) for e in batch]
        finally:
            self._running = []

    def _call(self, batch: list[_Entry]) -> list[_Delivery]:
        """``batch``, requests of one kind (``_run``), as one engine call; if it fails,
        each request alone."""
        texts = [t for e in batch for t in e.texts]
        subjects = None
        if batch[0].subjects is not None:
            subjects = [s for e in batch for s in e.subjects or ()]
        top_k = max(e.top_k for e in batch)
        if self._on_batch is not None:
            self._on_batch(len(texts))
        started = time.perf_counter()
        pause = None if self._pausing else self._serve_waiting
        try:
            if subjects is None:
                result = self.engine.classify(texts, top_k, pause=pause)
            else:
                result = self.engine.classify(texts, top_k, subjects=subjects, pause=pause)
        except _Abandoned:
            raise
        except Exception as exc:
            if len(batch) == 1:
                return [(batch[0].future, exc)]
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            return [outcome for entry in batch for outcome in self._call([entry])]
        outcomes: list[_Delivery] = []
        offset = 0
        for entry in batch:
            n = len(entry.texts)
            predictions = result.predictions[offset : offset + n]
            if entry.top_k < top_k:
                predictions = [
                    replace(p, alternatives=p.alternatives[: entry.top_k]) for p in predictions
                ]
            timings = replace(result.timings, queue_ms=(started - entry.enqueued) * 1e3)
            answer = Result(
                predictions, result.analyses[offset : offset + n], result.revision, timings
            )
            offset += n
            outcomes.append((entry.future, answer))
        return outcomes


def _deliver_soon(outcomes: list[_Delivery]) -> None:
    """Hand answers to the futures' event loop (one wake-up for the whole batch)."""
    if not outcomes:
        return
    loop = outcomes[0][0].get_loop()
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(_deliver, outcomes)


def _deliver(outcomes: list[_Delivery]) -> None:
    for future, outcome in outcomes:
        if future.done():  # cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
