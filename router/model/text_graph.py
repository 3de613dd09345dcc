"""TokenGraphEncoder for text-level graphs: strings in, unit sentence vectors out.

Universal Sentence Encoder multilingual (``model pull --model use-multilingual``) is such
a graph: its SentencePiece tokenizer runs inside the graph as a custom op from
onnxruntime-extensions, and its single output is the sentence vector. There are no
token vectors to pool, so negation reaches it through the text itself: the characters
a refusal covers (pooling weight below ``KEEP_WEIGHT``) are cut out of the text before
it is embedded, which is what weight 0 does to a token-level graph's pooling
(ARCHITECTURE.md, "Negation with text-level models").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.errors import ModelError
from router.model.catalogue import default_threshold_of, lexical_weight_of
from router.model.contract import MODEL_FILE, load_manifest, sha256_of
from router.model.session import inference_session
from router.vectors import Span, Vectors, unit_rows

__all__ = ["KEEP_WEIGHT", "MAX_CHARS", "TextGraphEncoder", "without_spans"]

#: Spans weighted below this are cut out of the text; others are left as they are.
KEEP_WEIGHT = 0.5
#: A text-level graph reads at most this many characters of a text, as a token-level
#: graph reads at most 256 tokens: its memory grows with the text (one 20,000-character
#: Chinese text took 1.5 GB), and a sentence vector of more says less anyway. Long
#: texts are read as tickets, passage by passage (routing/tickets.py).
MAX_CHARS = 1000
_SPACES = re.compile(r"\s+")


def without_spans(text: str, spans: Sequence[Span]) -> str:
    """``text`` with every span weighted below ``KEEP_WEIGHT`` removed, spaces tidied."""
    cut = sorted((b, e) for b, e, w in spans if w < KEEP_WEIGHT and e > b)
    if not cut:
        return text
    kept: list[str] = []
    at = 0
    for begin, end in cut:
        if begin > at:
            kept.append(text[at:begin])
        at = max(at, end)
    kept.append(text[at:])
    return _SPACES.sub(" ", " ".join(kept)).strip()


class TextGraphEncoder:
    """Sentence vectors from a graph with one string input and one [n, dim] output."""

    layers = 1

    def __init__(self, model_dir: Path, *, threads: int | None = None) -> None:
        model_dir = Path(model_dir)
        path = model_dir / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"{model_dir}: missing {MODEL_FILE}")
        manifest = load_manifest(model_dir)
        self.model_id = manifest.model_id if manifest else f"custom:{model_dir.name}"
        self.model_name = manifest.name if manifest else f"custom:{model_dir.name}"
        self.default_threshold = default_threshold_of(manifest.name) if manifest else None
        self.lexical_weight = lexical_weight_of(manifest.name) if manifest else 0.0
        files = manifest.files if manifest and manifest.files else {MODEL_FILE: sha256_of(path)}
        self.fingerprint = repr(("text-graph", sorted(files.items())))
        # One intra-op thread unless told otherwise: a one-text run of this small int8
        # graph has too little work to split, and two threads waiting on each other lose
        # to the server's other threads (ARCHITECTURE.md, "Text-level models").
        self._session = inference_session(path, threads=threads or 1, custom_ops=True)
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(string)":
            raise ModelError(f"{path}: a text-level graph takes one string tensor")
        if len(outputs[0].shape) != 2:
            raise ModelError(
                f"{path}: first output {outputs[0].name!r} has shape {outputs[0].shape}; "
                "sentence vectors [batch, dim] are needed"
            )
        self._input = inputs[0].name
        self._output = outputs[0].name
        self.dimension = int(self._run(["probe"]).shape[1])

    @property
    def width(self) -> int:
        return self.dimension

    def _run(self, texts: Sequence[str]) -> Vectors:
        feed = {self._input: np.array(list(texts), dtype=object)}
        out: Vectors = np.asarray(self._session.run([self._output], feed)[0], dtype=np.float32)
        return out

    def embed(self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None) -> Vectors:
        """(n, dimension) unit sentence vectors, each computed alone; refused spans are cut
        out of the text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        edited = [
            (without_spans(t, spans[i]) if spans is not None else t)[:MAX_CHARS]
            for i, t in enumerate(texts)
        ]
        # One text a run: the int8 graph quantises its activations with one scale per
        # run, so a text's vector would move with the rest of its batch (cosine down to
        # 0.995); alone it is always the same. ARCHITECTURE.md, "Text-level models".
        return unit_rows(np.concatenate([self._run([text]) for text in edited]))

    def encode(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None
    ) -> Vectors:
        """Unit sentence vectors (the same as ``embed``: one block)."""
        return self.embed(texts, spans)
