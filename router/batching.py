"""Dynamic micro-batching between the gRPC handlers and the engine.

One consumer task owns the queue. It takes the oldest request, then whatever else is
already waiting, until the batch is full by count or by padded-token budget (longest
x count, estimated from characters), or ``max_wait_ms`` has passed (0 by default: a
lone request never waits; under load, requests that arrive while the model is busy
form the next batch). The batch runs on a worker thread as one engine call, so it is
answered by one snapshot; each request gets its slice back through its Future.

* Requests whose caller has gone (cancelled, or past its deadline) are skipped.
* If a batch fails, its requests are retried one by one, so one bad item never fails
  the others.
* A full queue refuses at once (``OverloadedError`` -> RESOURCE_EXHAUSTED) instead of
  letting callers time out.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from router.engine import Engine, Result, Timings
from router.errors import RouterError
from router.index import Prediction
from router.preprocess import Analysis

__all__ = ["Answer", "BatchSettings", "Batcher", "CallerGoneError", "OverloadedError"]

log = logging.getLogger(__name__)


class OverloadedError(RouterError):
    """The request queue is full; the caller should back off and retry."""


class CallerGoneError(RouterError):
    """The caller's deadline passed while the request was queued."""


@dataclass(frozen=True, slots=True)
class BatchSettings:
    max_batch: int = 32  # texts per engine call
    max_tokens: int = 32 * 128  # padded-token budget: longest x count
    max_wait_ms: float = 0.0  # extra wait for company after the first request
    max_queue: int = 256  # requests (not texts) waiting; beyond this: RESOURCE_EXHAUSTED


@dataclass(frozen=True, slots=True)
class Answer:
    prediction: Prediction
    analysis: Analysis
    revision: str


@dataclass(slots=True)
class _Entry:
    texts: Sequence[str]
    top_k: int
    future: asyncio.Future[Result]
    deadline: float | None  # loop time
    tokens: int  # estimated tokens of the longest text
    enqueued: float = field(default_factory=time.perf_counter)

    def gone(self, now: float) -> bool:
        return self.future.done() or (self.deadline is not None and now > self.deadline)


def _estimate_tokens(text: str) -> int:
    """WordPiece averages about 4 characters a token on English; capped at the model's 256."""
    return min(256, 2 + len(text) // 4)


class Batcher:
    def __init__(
        self,
        engine: Engine,
        executor: ThreadPoolExecutor,
        settings: BatchSettings,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.settings = settings
        self._on_batch = on_batch  # told the number of texts of every batch run
        self._queue: collections.deque[_Entry] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.skipped = 0

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._consume(), name="batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for entry in self._queue:
            if not entry.future.done():
                entry.future.set_exception(OverloadedError("the server is shutting down"))
        self._queue.clear()

    async def classify(
        self, texts: Sequence[str], top_k: int, timeout: float | None = None
    ) -> Result:
        """Queue ``texts`` as one request and wait for its answer."""
        if len(self._queue) >= self.settings.max_queue:
            raise OverloadedError(
                f"overloaded: {len(self._queue)} requests queued (limit "
                f"{self.settings.max_queue}); retry with backoff"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        tokens = max(_estimate_tokens(t) for t in texts)  # a bad item fails here, alone
        entry = _Entry(texts, top_k, loop.create_future(), deadline, tokens)
        self._queue.append(entry)
        self._arrived.set()
        return await entry.future  # cancelling the caller cancels the future: skipped

    async def classify_many(
        self, texts: Sequence[str], top_k: int, timeout: float | None = None
    ) -> tuple[list[Answer], Timings]:
        """A large batch: grouped by length into chunks that queue like single requests.

        Answers come back in the order of ``texts``; each names the revision that
        answered it (chunks may straddle a reload).
        """
        size = self.settings.max_batch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[i : i + size] for i in range(0, len(order), size)]
        results = await asyncio.gather(
            *(self.classify([texts[i] for i in chunk], top_k, timeout) for chunk in chunks)
        )
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

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            try:
                batch = await self._collect(loop)
                if batch:
                    self.batches += 1
                    await self._run(loop, batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one batch kill the consumer
                log.exception("batch failed")

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Entry]:
        s = self.settings
        batch: list[_Entry] = []
        count = longest = 0
        wait_until = loop.time() + s.max_wait_ms / 1e3
        while True:
            while self._queue:
                entry = self._queue[0]
                if entry.gone(loop.time()):
                    self._queue.popleft()
                    self._drop(entry)
                    continue
                n, tokens = len(entry.texts), max(longest, entry.tokens)
                if batch and (count + n > s.max_batch or tokens * (count + n) > s.max_tokens):
                    return batch
                self._queue.popleft()
                batch.append(entry)
                count, longest = count + n, tokens
            remaining = wait_until - loop.time()
            if not batch or remaining <= 0 or count >= s.max_batch:
                return batch
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return batch

    def _drop(self, entry: _Entry) -> None:
        self.skipped += 1
        if not entry.future.done():
            entry.future.set_exception(CallerGoneError("deadline passed while queued"))

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        texts = [t for e in batch for t in e.texts]
        top_k = max(e.top_k for e in batch)
        if self._on_batch is not None:
            self._on_batch(len(texts))
        started = time.perf_counter()
        try:
            result = await loop.run_in_executor(self.executor, self.engine.classify, texts, top_k)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            for entry in batch:
                await self._run(loop, [entry])
            return
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
            if not entry.future.done():
                entry.future.set_result(answer)


def _settle(entry: _Entry, exc: BaseException) -> None:
    if not entry.future.done():
        entry.future.set_exception(exc)
