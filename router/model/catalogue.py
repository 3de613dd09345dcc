"""The models ``model pull`` knows by name, and how ``--model NAME|DIR`` is resolved.

A deployment chooses one model. ``minilm`` (all-MiniLM-L6-v2, English) is the default;
``minilm-int8`` is the same model with int8 matrix products (about twice the
throughput, vectors within cosine 0.97 of the fp32 ones: ARCHITECTURE.md "int8 MiniLM");
``use-multilingual`` (Universal Sentence Encoder multilingual v3, 16 languages including
Chinese) serves Chinese and mixed Chinese/English intents. Anything else given to
``--model`` that names a directory is a user's own export (see contract.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from router.errors import ModelError

__all__ = [
    "CATALOGUE",
    "DEFAULT_MODEL",
    "ENV_MODEL_HOME",
    "CatalogueEntry",
    "ModelChoice",
    "default_threshold_of",
    "entry",
    "lexical_weight_of",
    "model_home",
    "resolve",
]

#: Where named models live: ``$INTENT_ROUTER_MODEL_HOME/<directory>``.
ENV_MODEL_HOME = "INTENT_ROUTER_MODEL_HOME"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str  # what --model takes
    model_id: str  # upstream identity, reported by Info and eval
    directory: str  # folder under the model home
    kind: str  # "token": tokenizer + token vectors; "text": strings in, sentence vectors out
    languages: str
    size: str  # what `model pull` downloads, for the first-use message
    #: The threshold that applies when the intents name none tuned for this model.
    default_threshold: float
    #: How much lexical overlap with the exemplars counts in a score (routing/index.py);
    #: chosen on validation data (ARCHITECTURE.md, "Lexical overlap").
    lexical_weight: float = 0.0


CATALOGUE: dict[str, CatalogueEntry] = {
    e.name: e
    for e in (
        CatalogueEntry(
            name="minilm",
            model_id="sentence-transformers/all-MiniLM-L6-v2",
            directory="all-MiniLM-L6-v2",
            kind="token",
            languages="en",
            size="about 110 MB",
            default_threshold=0.44,
            lexical_weight=0.2,
        ),
        CatalogueEntry(
            name="minilm-int8",
            model_id="sentence-transformers/all-MiniLM-L6-v2 (int8)",
            directory="all-MiniLM-L6-v2-int8",
            kind="token",
            languages="en",
            size="about 110 MB, quantised to 23 MB",
            default_threshold=0.43,  # accuracy-tuned on intents/eval/val.jsonl: 0.4313
            lexical_weight=0.2,  # minilm's: the same model
        ),
        CatalogueEntry(
            name="use-multilingual",
            model_id="google/universal-sentence-encoder-multilingual/3 (int8 ONNX)",
            directory="use-multilingual-v3",
            kind="text",
            languages="ar de en es fr it ja ko nl pl pt ru th tr zh zh-TW",
            size="about 45 MB",
            default_threshold=0.55,
            lexical_weight=0.5,
        ),
    )
}
DEFAULT_MODEL = "minilm"


@dataclass(frozen=True)
class ModelChoice:
    """What ``--model`` resolved to: a catalogue name (or None for a directory) and where."""

    name: str | None
    directory: Path

    @property
    def label(self) -> str:
        """How the model is named to users: the catalogue name, or ``custom:<dir name>``."""
        return self.name if self.name is not None else f"custom:{self.directory.name}"


def model_home() -> Path:
    """``$INTENT_ROUTER_MODEL_HOME``, else the user's cache directory."""
    env = os.environ.get(ENV_MODEL_HOME)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("intent-router")) / "models"


def entry(name: str) -> CatalogueEntry:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}: choose one of {', '.join(CATALOGUE)}, "
            "or give a model directory"
        ) from None


def default_threshold_of(name: str) -> float | None:
    """The catalogue model's fallback threshold; None for a name it does not know."""
    known = CATALOGUE.get(name)
    return known.default_threshold if known is not None else None


def lexical_weight_of(name: str) -> float:
    """The catalogue model's lexical weight; 0 (none) for a name it does not know."""
    known = CATALOGUE.get(name)
    return known.lexical_weight if known is not None else 0.0


def resolve(value: str | Path | None) -> ModelChoice:
    """``--model NAME|DIR``: a catalogue name, else an existing directory, else an error.

    A catalogue name wins over a directory of the same name in the working directory;
    write ``./minilm`` to mean the directory.
    """
    if value is None:
        value = DEFAULT_MODEL
    text = str(value)
    if text in CATALOGUE:
        return ModelChoice(text, model_home() / CATALOGUE[text].directory)
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelChoice(None, path)
    if os.sep in text or text.startswith("."):
        raise ModelError(f"{path}: model directory does not exist")
    entry(text)  # raises, naming the choices
    raise AssertionError("unreachable")  # pragma: no cover
