"""Embedding rows: their type and row-wise unit normalisation, shared by the encoder, the
vector cache, the head and the index (pure numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["Span", "Vectors", "unit_rows"]

#: Rows of float32 embeddings, one per text: ``[texts, width]``.
Vectors = npt.NDArray[np.float32]
#: A character span of a text and the pooling weight of the tokens inside it.
Span = tuple[int, int, float]


def unit_rows(rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Each row scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(rows, dtype=np.float32)
    # One C call for the squared norms (np.linalg.norm is several, and this runs on every
    # request right after the model has evicted the caches; see index.Index.scores).
    norms = np.sqrt(np.einsum("...i,...i->...", matrix, matrix))[..., None]
    out: npt.NDArray[np.float32] = matrix / np.maximum(norms, np.float32(1e-12))
    return out
