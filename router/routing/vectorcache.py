"""Exemplar vectors cached by (model, preprocessing settings, text), in memory and on disk.

Keys are ``variant + NUL + text``, the variant naming the preprocessing settings.

A reload re-embeds only the examples it has not seen; a restart reads the vectors of
the last run from disk. The cache's namespace is a hash of the model fingerprint and
the preprocessing settings, so vectors made by another model or other settings are
never used. The file is checked (magic, sizes, checksum) and a bad one is ignored and
replaced, never trusted.

File layout (``<dir>/<namespace>.vec``), little-endian:

    magic  b"IRVC1\\n"   | u32 dim | u32 count | 32-byte sha256 of the rest
    then count x (u32 utf-8 length, text bytes) and count x dim float32
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from router.vectors import Vectors

__all__ = ["VectorCache"]

log = logging.getLogger(__name__)

_MAGIC = b"IRVC1\n"
_TEMPORARY = ".vec-"  # prefix of a file being written; renamed over the cache when done
_STALE_SECONDS = 60
_HEADER = struct.Struct("<II32s")


class VectorCache:
    """Thread-safe map text -> vector for one namespace, optionally persisted."""

    def __init__(self, namespace: str, dimension: int, directory: Path | None = None) -> None:
        self.namespace = hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:16]
        self.dimension = dimension
        self.path = directory / f"{self.namespace}.vec" if directory is not None else None
        self._vectors: dict[str, Vectors] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._unsaved = False  # entries added or dropped since the file was written
        if self.path is not None:
            self._remove_stale_temporaries(self.path.parent)
            self._load(self.path)

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(
        self,
        texts: Sequence[str],
        encode: Callable[[Sequence[str]], Vectors],
        variant: str = "",
        *,
        save: bool = True,
    ) -> Vectors:
        """Vectors for ``texts``, encoding only those not cached; saves when something was new.

        ``variant`` names how ``encode`` treats a text (the preprocessing settings): the
        same text under another variant is another entry. ``save=False`` leaves writing
        the file to a later ``save()`` (the engine writes after swapping, off the path
        from an edit to its answers).
        """
        keys = [f"{variant}\x00{t}" for t in texts]
        with self._lock:
            vectors = self._vectors
            missing = list(dict.fromkeys(k for k in keys if k not in vectors))
        if missing:
            fresh = encode([k.split("\x00", 1)[1] for k in missing])
            if fresh.shape[1] != self.dimension:
                raise ValueError(
                    f"encoder gave rows of {fresh.shape[1]} values; this cache holds "
                    f"{self.dimension} (build it with TokenGraphEncoder.width)"
                )
            with self._lock:
                for key, vector in zip(missing, fresh, strict=True):
                    self._vectors[key] = vector
                self._unsaved = True
        with self._lock:
            rows = [self._vectors[key] for key in keys]
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if save:
            self.save()
        if not rows:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)  # one copy, in C

    def missing(self, texts: Sequence[str], variant: str = "") -> list[str]:
        """The distinct ``texts`` that ``embed`` would encode now (not cached under ``variant``)."""
        prefix = f"{variant}\x00"
        with self._lock:
            vectors = self._vectors
            return list(dict.fromkeys(t for t in texts if prefix + t not in vectors))

    def retain(self, texts: Sequence[str], variant: str = "") -> None:
        """Forget every vector but those of ``texts`` under ``variant`` (bounds the file)."""
        keep = {f"{variant}\x00{t}" for t in texts}
        with self._lock:
            before = len(self._vectors)
            self._vectors = {t: v for t, v in self._vectors.items() if t in keep}
            if len(self._vectors) < before:
                self._unsaved = True  # the next save compacts the file

    def save(self) -> None:
        """Write the file if entries were added since it was last written."""
        if self.path is None or not self._unsaved:
            return
        with self._lock:
            items = list(self._vectors.items())
            self._unsaved = False
        body = bytearray()
        for text, _ in items:
            raw = text.encode("utf-8")
            body += struct.pack("<I", len(raw)) + raw
        matrix = (
            np.stack([v for _, v in items]).astype("<f4")
            if items
            else np.zeros((0, self.dimension), "<f4")
        )
        body += matrix.tobytes()
        digest = hashlib.sha256(body).digest()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=_TEMPORARY)
        except OSError as exc:  # read-only file system, a file in the way, no permission
            log.warning(
                "vector cache directory %s is not writable (%s): keeping vectors in memory only",
                self.path.parent,
                exc,
            )
            self.path = None
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + _HEADER.pack(self.dimension, len(items), digest) + body)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write the vector cache %s: %s", self.path, exc)
            Path(tmp).unlink(missing_ok=True)

    @staticmethod
    def _remove_stale_temporaries(directory: Path) -> None:
        """Delete what a writer killed mid-write left (``.vec-*`` older than a minute)."""
        try:
            stale = [
                p
                for p in directory.glob(f"{_TEMPORARY}*")
                if p.stat().st_mtime < time.time() - _STALE_SECONDS
            ]
            for path in stale:
                path.unlink(missing_ok=True)
        except OSError:
            return  # an unreadable directory: _load and save say so

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("vector cache %s unreadable (%s); rebuilding", path, exc)
            return
        try:
            self._vectors = _parse(data, self.dimension)
            log.info("vector cache: %d vectors from %s", len(self._vectors), path)
        except (ValueError, struct.error) as exc:
            log.warning("vector cache %s is corrupt (%s); ignoring it and rebuilding", path, exc)
            self._vectors = {}


def _parse(data: bytes, dimension: int) -> dict[str, Vectors]:
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _HEADER.size:
        raise ValueError("not a vector cache file")
    dim, count, digest = _HEADER.unpack_from(data, len(_MAGIC))
    body = data[len(_MAGIC) + _HEADER.size :]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("checksum mismatch")
    if dim != dimension:
        raise ValueError(f"dimension {dim}, expected {dimension}")
    texts: list[str] = []
    offset = 0
    for _ in range(count):
        (length,) = struct.unpack_from("<I", body, offset)
        offset += 4
        texts.append(body[offset : offset + length].decode("utf-8"))
        offset += length
    matrix = np.frombuffer(body, dtype="<f4", offset=offset)
    if matrix.size != count * dim:
        raise ValueError("truncated vectors")
    matrix = matrix.reshape(count, dim).astype(np.float32)
    return dict(zip(texts, matrix, strict=True))
