"""Handing freed C heap back to the system after large, rare allocations (glibc only)."""

from __future__ import annotations

import ctypes

__all__ = ["release_memory"]


def release_memory() -> None:
    """Hand memory the C heap keeps after large frees back to the system (glibc only).

    Loading a graph or embedding many exemplars frees tens of MB that glibc otherwise
    keeps resident; calling this after such work keeps the server's peak RSS down
    (bench/throughput.py). Off the request path; a no-op without glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
