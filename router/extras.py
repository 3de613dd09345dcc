"""Optional dependencies: what each extra brings, and a clear error when one is missing.

Serving installs only what serving needs. ``model pull`` needs the ``model`` extra
(onnx, safetensors, sympy: graph surgery and fusion); ``eval --report`` and
``tune --write`` need the ``eval`` extra (matplotlib, ruamel.yaml; tqdm draws the
progress bar when present).
"""

from __future__ import annotations

import importlib.util

from router.errors import MissingExtraError

__all__ = ["require"]


def require(extra: str, purpose: str, *modules: str) -> None:
    """Raise ``MissingExtraError`` naming ``extra`` unless every module can be imported."""
    missing = [m for m in modules if not _importable(m)]
    if missing:
        raise MissingExtraError(
            f"{purpose} needs {', '.join(missing)}: "
            f"pip install 'intent-router[{extra}]' (or run `make` targets, which install it)"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False
