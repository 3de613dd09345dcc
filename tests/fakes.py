"""A deterministic fake encoder: routing, batching, reload and service logic without the model.

Each word (lower-cased, letters and digits; every CJK character is a word of its own)
maps to a fixed pseudo-random unit vector seeded from its BLAKE2 hash, and a text's
row is the weighted sum of its words' vectors. Texts that share words get close
vectors, texts that share none are nearly orthogonal (64 dimensions), so the bundled
intents route ordinary phrasings the way a reader expects, identically on every run
and machine. Pooling spans (negation) scale the words inside them, as the real
encoder scales tokens. ``layers=2`` gives rows of two blocks (the second a fixed
rotation of the first) so that the head's multi-block ``Features`` are exercised.

It implements ``router.routing.engine.TextEncoder``; ``calls`` and ``texts_seen``
count what was asked of it, and ``delay`` makes each call take that long (for
batching and overload tests).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from router.vectors import Span, Vectors

__all__ = ["FakeEncoder"]

_WORD = re.compile(r"[\u3400-\u9fff]|[^\W_]+", re.UNICODE)


@lru_cache(maxsize=65536)
def _word_vector(word: str, dimension: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    v /= np.linalg.norm(v)
    v.setflags(write=False)
    return v


class FakeEncoder:
    """Bag-of-words vectors with per-word pseudo-random directions; see the module doc."""

    def __init__(self, dimension: int = 64, layers: int = 1, delay: float = 0.0) -> None:
        self.dimension = dimension
        self.layers = layers
        self.delay = delay
        self.model_id = "fake/bag-of-words"
        self.fingerprint = f"fake:{dimension}x{layers}"
        self.calls = 0
        self.texts_seen = 0
        self._lock = threading.Lock()
        rng = np.random.default_rng(7)
        self._rotation = np.linalg.qr(rng.standard_normal((dimension, dimension)))[0].astype(
            np.float32
        )

    @property
    def width(self) -> int:
        return self.layers * self.dimension

    def embed(self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None) -> Vectors:
        with self._lock:
            self.calls += 1
            self.texts_seen += len(texts)
        if self.delay:
            time.sleep(self.delay)
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        for row, text in enumerate(texts):
            total = np.zeros(self.dimension, dtype=np.float32)
            for match in _WORD.finditer(text.lower()):
                weight = 1.0
                for begin, end, factor in spans[row] if spans is not None else ():
                    if match.start() < end and match.end() > begin:
                        weight *= factor
                        break
                total += weight * _word_vector(match.group(), self.dimension)
            last = self.dimension * (self.layers - 1)
            out[row, last:] = total
            for block in range(self.layers - 1):
                out[row, block * self.dimension : (block + 1) * self.dimension] = (
                    total @ self._rotation
                )
        return out
