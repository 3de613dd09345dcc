"""Row-wise unit normalisation, shared by the encoder, the head and the index (pure numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["unit_rows"]


def unit_rows(rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Each row scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    out: npt.NDArray[np.float32] = (matrix / np.maximum(norms, 1e-12)).astype(
        np.float32, copy=False
    )
    return out
