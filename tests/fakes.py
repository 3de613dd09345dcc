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
count what was asked of it, and ``delay`` makes each call take that long. ``hold()``
closes a gate that every following ``embed`` call waits at until ``release()``;
``await held()`` returns once a call is waiting there. That is how batching, start-up
and drain tests know, without sleeping, that the model is busy: requests queue behind
a held call, and nothing can be answered until the test says so.

``serving_fake()`` is the configuration the routing and serving tests use: 256
dimensions (words that share nothing stay well below the bundled intents' threshold)
and two blocks, as the pulled graph gives.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from router.vectors import Span, Vectors

__all__ = ["SERVING_DIMENSION", "FakeEncoder", "serving_fake"]

#: Dimension of ``serving_fake()``: in 256 dimensions a text with none of the bundled
#: intents' words scores about 0.2 against them, far below their 0.386 threshold.
SERVING_DIMENSION = 256
#: A call held longer than this fails instead of hanging the suite (a test forgot
#: ``release()``).
_HOLD_LIMIT_S = 60.0

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

    def __init__(
        self, dimension: int = 64, layers: int = 1, delay: float = 0.0, lexical_weight: float = 0.0
    ) -> None:
        # as the real TokenGraphEncoder does: one BLAS thread (idle BLAS threads spinning next to
        # the batcher's and the server's threads cost seconds on two cores)
        threadpool_limits(limits=1, user_api="blas")
        self.dimension = dimension
        self.layers = layers
        self.delay = delay
        self.model_id = "fake/bag-of-words"
        self.model_name = "fake"
        #: None: the index default applies when the intents set no threshold.
        self.default_threshold: float | None = None
        #: As a catalogue model's (routing/index.py): 0 mixes in no lexical overlap.
        self.lexical_weight = lexical_weight
        self.fingerprint = f"fake:{dimension}x{layers}"
        self.calls = 0
        self.texts_seen = 0
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._waiting = threading.Event()
        rng = np.random.default_rng(7)
        self._rotation = np.linalg.qr(rng.standard_normal((dimension, dimension)))[0].astype(
            np.float32
        )

    @property
    def width(self) -> int:
        return self.layers * self.dimension

    def hold(self) -> None:
        """Make every following ``embed`` call wait until ``release()``."""
        self._waiting.clear()
        self._open.clear()

    def release(self) -> None:
        """Let held and later calls through."""
        self._open.set()

    async def held(self, timeout: float = 30.0) -> None:
        """Return once an ``embed`` call is waiting at the gate ``hold()`` closed."""
        if not await asyncio.to_thread(self._waiting.wait, timeout):
            raise TimeoutError(f"no embed call reached the held gate within {timeout} s")

    def embed(self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None) -> Vectors:
        with self._lock:
            self.calls += 1
            self.texts_seen += len(texts)
        if not self._open.is_set():
            self._waiting.set()
            if not self._open.wait(_HOLD_LIMIT_S):
                raise TimeoutError(f"held for {_HOLD_LIMIT_S} s: the test never called release()")
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


def serving_fake(delay: float = 0.0) -> FakeEncoder:
    """A new fake as the routing and serving tests use it (see the module doc)."""
    return FakeEncoder(dimension=SERVING_DIMENSION, layers=2, delay=delay)
