"""The model directory contract: what a directory must hold to be served.

A model directory holds ``model.onnx`` (token vectors of the last block as its first
output; extra ``hidden_<block>`` outputs feed the head), ``tokenizer.json`` and, when
``model pull`` made it, ``manifest.json``. Only the first two are required, so a
user's own export can be served with ``--model-dir``. The encoder reads this module;
it never imports the provisioning code (``pull``, ``graph``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from router.errors import ModelError
from router.model.catalogue import DEFAULT_MODEL, entry, model_home

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DIMENSION",
    "ENV_WHEEL_DIR",
    "FEATURE_BLOCKS",
    "GRAPH_VERSION",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "MODEL_ID",
    "PACKED_INPUTS",
    "REQUIRED_FILES",
    "TOKENIZER_FILE",
    "Manifest",
    "default_model_dir",
    "load_manifest",
    "missing_files",
    "needs_pull",
    "sha256_of",
]

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
DEFAULT_MAX_TOKENS = 256
#: Encoder blocks whose hidden states are extra outputs, named ``hidden_<block>``.
FEATURE_BLOCKS = (2,)
#: How ``pull`` lays out the graph; a directory pulled with an older layout is pulled
#: again. 1: fused by onnxruntime's transformer optimiser. 2: each block's attention as
#: one MultiHeadAttention node, layer norms not fused with their residual Add
#: (``graph.fuse_attention``).
#: 3: rows may carry several texts (``graph.accept_packed_rows``).
GRAPH_VERSION = 3
#: Graph inputs that let the encoder pack several texts into one row.
PACKED_INPUTS = ("position_ids", "attention_mask_3d")
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
ENV_WHEEL_DIR = "INTENT_ROUTER_WHEEL_DIR"


@dataclass(frozen=True)
class Manifest:
    """What a pulled model directory holds; written as ``manifest.json``."""

    #: The catalogue name it was pulled as (catalogue.py); "minilm" for older manifests.
    name: str = "minilm"
    #: "token": tokenizer.json + token vectors pooled here; "text": strings in, vectors out.
    kind: str = "token"
    model_id: str = MODEL_ID
    dimension: int = DIMENSION
    max_tokens: int = DEFAULT_MAX_TOKENS
    pooling: str = "mean"
    normalize: bool = True
    optimized: bool = False
    #: Blocks exposed as extra outputs (the last block is the first output).
    feature_blocks: tuple[int, ...] = ()
    #: ``GRAPH_VERSION`` of the pull that wrote it (1 for manifests without the field).
    graph: int = 1
    files: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def default_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """Where the catalogue model ``name`` lives: ``$INTENT_ROUTER_MODEL_HOME/<its folder>``."""
    return model_home() / entry(name).directory


def missing_files(model_dir: Path, kind: str | None = None) -> list[str]:
    """The required files absent from ``model_dir`` (empty when it is usable).

    ``kind`` "text" needs only the graph; "token" (the default, or what the manifest
    says) needs the tokenizer too.
    """
    if kind is None:
        manifest = load_manifest(model_dir) if model_dir.is_dir() else None
        kind = manifest.kind if manifest is not None else "token"
    required = (MODEL_FILE,) if kind == "text" else REQUIRED_FILES
    return [name for name in required if not (model_dir / name).is_file()]


def needs_pull(model_dir: Path, name: str = DEFAULT_MODEL) -> str | None:
    """Why ``model pull --model name`` should (re)build ``model_dir``, or None when current.

    Missing files, a manifest of another model, or one written by an older ``model
    pull`` (a graph layout or head outputs this version does not read). A directory
    without a manifest is a user's own export and is never replaced.
    """
    missing = missing_files(model_dir, entry(name).kind)
    if missing:
        return f"missing {', '.join(missing)}"
    manifest = load_manifest(model_dir)
    if manifest is None:
        return None
    if manifest.name != name:
        return f"holds {manifest.name}, not {name}"
    if entry(name).kind == "text":
        return None
    if tuple(manifest.feature_blocks) != FEATURE_BLOCKS:
        return "pulled by an older version (no hidden-state outputs for the head)"
    if manifest.graph != GRAPH_VERSION:
        return f"pulled by an older version (graph layout {manifest.graph}, now {GRAPH_VERSION})"
    return None


def load_manifest(model_dir: Path) -> Manifest | None:
    """The directory's manifest, or None for a user's own export without one."""
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable manifest: {exc}") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
