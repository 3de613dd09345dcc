"""The routing engine: an encoder plus one swappable snapshot of (intents, index).

Everything that answers a classification goes through ``Engine.classify``: the gRPC
service, the in-process CLI and ``eval``, so they give the same answers for the same
intents. Each call reads the snapshot reference once, so a concurrent swap never mixes
two revisions in one answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router.encoder import Encoder, Vectors
from router.index import Index, IndexSettings, Prediction
from router.intents import IntentSet
from router.vectorcache import VectorCache

__all__ = ["Engine", "Result", "Snapshot", "Timings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One loaded revision: the intents and the index built from them. Never mutated."""

    intents: IntentSet
    index: Index
    built_at: float
    build_seconds: float

    @property
    def revision(self) -> str:
        return self.intents.revision


@dataclass(frozen=True, slots=True)
class Timings:
    preprocess_ms: float = 0.0
    encode_ms: float = 0.0
    score_ms: float = 0.0
    total_ms: float = 0.0
    queue_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Result:
    predictions: list[Prediction]
    revision: str
    timings: Timings


class Engine:
    def __init__(
        self,
        encoder: Encoder,
        settings: IndexSettings | None = None,
        cache: VectorCache | None = None,
    ) -> None:
        self.encoder = encoder
        self.settings = settings or IndexSettings()
        self.cache = (
            cache if cache is not None else VectorCache(encoder.fingerprint, encoder.dimension)
        )
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

    def build(self, intents: IntentSet) -> Snapshot:
        """Embed every example and build an index; the current snapshot is untouched."""
        start = time.perf_counter()
        texts = [e for intent in intents.intents for e in intent.examples]
        vectors = self.cache.embed(texts, self.encoder.encode)
        index = Index(intents, vectors, self.settings)
        elapsed = time.perf_counter() - start
        log.info(
            "built index revision %s: %d intents, %d examples in %.2f s",
            intents.revision,
            len(intents.intents),
            len(texts),
            elapsed,
        )
        return Snapshot(intents=intents, index=index, built_at=time.time(), build_seconds=elapsed)

    def swap(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the one that answers from now on (a single reference store)."""
        self._snapshot = snapshot
        self.cache.retain([e for i in snapshot.intents.intents for e in i.examples])

    def load(self, intents: IntentSet) -> Snapshot:
        snapshot = self.build(intents)
        self.swap(snapshot)
        return snapshot

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.encoder.encode(texts)

    def classify(self, texts: Sequence[str], top_k: int = 3) -> Result:
        snapshot = self.snapshot  # read once: one revision answers the whole call
        start = time.perf_counter()
        vectors = self.encoder.encode(texts) if texts else np.zeros((0, 1), np.float32)
        encoded = time.perf_counter()
        predictions = snapshot.index.classify(vectors, top_k) if texts else []
        done = time.perf_counter()
        return Result(
            predictions=predictions,
            revision=snapshot.revision,
            timings=Timings(
                encode_ms=(encoded - start) * 1e3,
                score_ms=(done - encoded) * 1e3,
                total_ms=(done - start) * 1e3,
            ),
        )
