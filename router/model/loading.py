"""Open a model directory with the encoder its graph needs.

Two kinds of graph serve behind one interface (``router.routing.engine.TextEncoder``):

* token-level (``TokenGraphEncoder``): ``tokenizer.json`` + a graph of token vectors,
  pooled here (all-MiniLM-L6-v2, or a user's own export);
* text-level (``TextGraphEncoder``): strings in, sentence vectors out, the tokenizer
  inside the graph (Universal Sentence Encoder multilingual).

The manifest's ``kind`` decides; a directory without a manifest is token-level when it
holds ``tokenizer.json`` and text-level otherwise.
"""

from __future__ import annotations

from pathlib import Path

from router.errors import ModelError
from router.model.contract import MODEL_FILE, TOKENIZER_FILE, load_manifest
from router.model.text_graph import TextGraphEncoder
from router.model.token_graph import TokenGraphEncoder

__all__ = ["load_encoder"]


def load_encoder(
    model_dir: Path, *, threads: int | None = None
) -> TokenGraphEncoder | TextGraphEncoder:
    """The encoder for ``model_dir``; ``ModelError`` (one line) when it cannot be used."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model directory does not exist")
    if not (model_dir / MODEL_FILE).is_file():
        raise ModelError(
            f"{model_dir}: missing {MODEL_FILE} (run `intent-router model pull` to create one)"
        )
    manifest = load_manifest(model_dir)
    if manifest is not None and manifest.kind == "text":
        return TextGraphEncoder(model_dir, threads=threads)
    if manifest is not None or (model_dir / TOKENIZER_FILE).is_file():
        return TokenGraphEncoder(model_dir, threads=threads)
    try:  # a user's own export without a tokenizer: a graph that takes strings, or broken
        return TextGraphEncoder(model_dir, threads=threads)
    except ModelError as exc:
        raise ModelError(
            f"{model_dir}: missing {TOKENIZER_FILE} (a graph that does not take strings "
            f"needs one; as a text-level graph: {exc})"
        ) from exc
