"""Sentence vectors: Hugging Face tokenizers + onnxruntime, weighted mean pooling, L2 norm.

The one place that builds the ONNX session (CPU provider, full graph optimisation,
configurable threads) and feeds the graph only the inputs it declares. Pooling is the
mean of the last hidden states over the attention mask, optionally weighted per token
(negation handling, see routing/negation.py), then L2-normalised: ``encode``.

Batches are packed when the graph allows it (the graphs ``model pull`` builds take
``contract.PACKED_INPUTS``): short texts share a row, each with its own positions and
attending only to itself, instead of each being padded to the batch's longest text.
Other graphs (a user's own export) get one padded row per text. Either way a text's
vector does not depend on its batch (``_Layout``).

``embed`` pools every hidden-state output of the graph the same way, unnormalised: the
graphs ``model pull`` builds also output an earlier block (contract.FEATURE_BLOCKS),
which the classification head reads. One row of ``embed`` is ``layers`` blocks of
``dimension`` values, earlier blocks first, the last hidden state last; a graph with a
single output gives ``layers == 1``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from router.errors import ModelError
from router.memory import release_memory
from router.model.catalogue import default_threshold_of, lexical_weight_of
from router.model.contract import (
    DEFAULT_MAX_TOKENS,
    MODEL_FILE,
    PACKED_INPUTS,
    TOKENIZER_FILE,
    load_manifest,
    missing_files,
    sha256_of,
)
from router.model.session import default_threads, inference_session
from router.vectors import Span, Vectors, unit_rows

__all__ = ["TokenGraphEncoder"]

log = logging.getLogger(__name__)


#: Batches are cut so that their tokens (padded: longest x count) stay under this.
_TOKEN_BUDGET = 32 * 64
#: Texts per model run; larger runs raise an index build's peak RSS for no speed
#: (ARCHITECTURE.md "Memory").
_MAX_BATCH = 32

#: A length-sorted run is also cut once it holds _MIN_RUN texts and the next text would
#: make it wasteful: padded, when padding to the longest would exceed _PAD_SLACK x the
#: real tokens; packed, when the next text is wider than a row (it would widen every
#: row), after which wide texts follow the padded rule (ARCHITECTURE.md "Packing").
_MIN_RUN = 8
_PAD_SLACK = 1.25

#: Rows of a packed batch are this many tokens wide (or as wide as its longest text);
#: attention's cost grows with the square of the width (ARCHITECTURE.md "Packing").
_PACK_WIDTH = 48

#: A call that embeds many texts (an index build) hands freed heap back every this many
#: texts, so that glibc's fragments do not raise the peak RSS; requests never reach it
#: (ARCHITECTURE.md "Memory").
_TRIM_EVERY = 128


class TokenGraphEncoder:
    """Turns texts into unit-length float32 vectors. Thread-safe (onnxruntime sessions are)."""

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelError(f"{model_dir}: model directory does not exist")
        missing = missing_files(model_dir)
        if missing:
            raise ModelError(
                f"{model_dir}: missing {', '.join(missing)} "
                "(a model directory needs model.onnx and tokenizer.json; "
                "run `intent-router model pull` to create one)"
            )
        manifest = load_manifest(model_dir)
        self.model_id = manifest.model_id if manifest else f"custom:{model_dir.name}"
        #: The catalogue name, or ``custom:<dir>`` for a user's own export.
        self.model_name = manifest.name if manifest else f"custom:{model_dir.name}"
        #: The model's own fallback threshold (catalogue.py), None for an export.
        self.default_threshold = default_threshold_of(manifest.name) if manifest else None
        self.lexical_weight = lexical_weight_of(manifest.name) if manifest else 0.0
        self.max_tokens = max_tokens or (manifest.max_tokens if manifest else DEFAULT_MAX_TOKENS)
        self.threads = threads or default_threads()
        files = (
            manifest.files
            if manifest and manifest.files
            else {name: sha256_of(model_dir / name) for name in (MODEL_FILE, TOKENIZER_FILE)}
        )
        #: Identifies what this encoder computes: the model and tokenizer files and the
        #: truncation length. Vectors cached under another fingerprint are never used.
        self.fingerprint = json.dumps(
            {"files": files, "max_tokens": self.max_tokens}, sort_keys=True
        )

        try:
            self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError(f"{model_dir / TOKENIZER_FILE}: not a tokenizers file: {exc}") from exc
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tokenizer.no_padding()  # batches are padded here, to their own longest input
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0

        self._session = inference_session(
            model_dir / MODEL_FILE,
            threads=self.threads,
            # its CPU kernel is slower than the Add + LayerNormalization it replaces
            # (graph.optimize)
            disabled_optimizers=["SkipLayerNormFusion"],
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        #: the graph takes several texts per row (contract.PACKED_INPUTS)
        self._packed = set(PACKED_INPUTS) <= self._inputs
        for required in ("input_ids", *(PACKED_INPUTS if self._packed else ("attention_mask",))):
            if required not in self._inputs:
                raise ModelError(
                    f"{model_dir / MODEL_FILE}: graph has no input {required!r} "
                    f"(it declares {sorted(self._inputs)})"
                )
        outputs = self._session.get_outputs()
        output = outputs[0]
        if len(output.shape) != 3:
            raise ModelError(
                f"{model_dir / MODEL_FILE}: first output {output.name!r} has shape "
                f"{output.shape}; token vectors [batch, seq, dim] are needed for pooling"
            )
        # earlier blocks first, the last hidden state (the sentence vector's) last
        hidden = sorted(
            (o.name for o in outputs[1:] if o.name.startswith("hidden_") and len(o.shape) == 3),
            key=lambda name: int(name.removeprefix("hidden_") or 0),
        )
        self._outputs = [*hidden, output.name]
        #: hidden-state blocks in each ``embed`` row
        self.layers = len(self._outputs)
        try:
            probe = self._run(_Layout.of([self._tokenizer.encode("probe")], False, self._pad_id))
        except Exception as exc:  # a tokenizer that does not fit the graph fails here
            raise ModelError(f"{model_dir}: the tokenizer does not fit the model ({exc})") from exc
        self.dimension = int(probe[-1].shape[-1])
        if any(h.shape[-1] != self.dimension for h in probe):
            raise ModelError(f"{model_dir / MODEL_FILE}: hidden-state outputs differ in width")
        if manifest and manifest.dimension != self.dimension:
            raise ModelError(
                f"{model_dir}: manifest says dimension {manifest.dimension}, "
                f"the model gives {self.dimension}"
            )
        release_memory()  # loading the graph freed tens of MB that glibc would keep

    @property
    def width(self) -> int:
        """Values in one ``embed`` row: ``layers`` x ``dimension``."""
        return self.layers * self.dimension

    def tokenize(self, texts: Sequence[str]) -> list[Encoding]:
        """Token ids and offsets; up to a batch's worth one by one on the calling thread.

        The tokenizer's own thread pool competes with onnxruntime's threads for the
        cores, so a request's batch is tokenised here; larger calls (an index build)
        still use the pool (ARCHITECTURE.md "Batching and threads").
        """
        if len(texts) <= _MAX_BATCH:
            return [self._tokenizer.encode(t, add_special_tokens=True) for t in texts]
        return self._tokenizer.encode_batch(list(texts), add_special_tokens=True)

    def encode(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[Span]] | None = None,
    ) -> Vectors:
        """Unit vectors for ``texts``, in order; ``spans`` reweight tokens for pooling."""
        return unit_rows(self.embed(texts, spans)[:, -self.dimension :])

    def embed(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[Span]] | None = None,
    ) -> Vectors:
        """(n, layers x dimension) pooled hidden states, unnormalised; see the module doc."""
        if not texts:
            return np.zeros((0, self.width), dtype=np.float32)
        encodings = self.tokenize(texts)
        return self.embed_tokens(encodings, spans)

    def embed_tokens(
        self,
        encodings: Sequence[Encoding],
        spans: Sequence[Sequence[Span]] | None = None,
    ) -> Vectors:
        out = np.empty((len(encodings), self.width), dtype=np.float32)
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(encodings)), key=lengths.__getitem__)
        start = trimmed = 0
        while start < len(order):
            if start - trimmed >= _TRIM_EVERY:
                release_memory()
                trimmed = start
            end = self._cut(order, lengths, start)
            chunk = order[start:end]
            layout = _Layout.of([encodings[i] for i in chunk], self._packed, self._pad_id)
            hidden = self._run(layout)
            weights = layout.token_weights()
            if spans is not None:
                for k, i in enumerate(chunk):
                    first = int(layout.starts[k])
                    tokens = weights[first : first + lengths[i]]  # a view: edited in place
                    _apply_spans(tokens, encodings[i], spans[i])
            out[chunk] = np.concatenate([layout.pool(h, weights) for h in hidden], axis=1)
            start = end
        return out

    def _cut(self, order: Sequence[int], lengths: Sequence[int], start: int) -> int:
        """End of the run of ``order`` (ascending lengths) that starts at ``start``."""
        end = start + 1
        real = lengths[order[start]]
        while end < len(order) and end - start < _MAX_BATCH:
            longest = lengths[order[end]]
            padded = longest * (end - start + 1)
            wasteful = end - start >= _MIN_RUN and padded > _PAD_SLACK * (real + longest)
            if self._packed:  # rows are filled, not padded: only real tokens count
                if real + longest > _TOKEN_BUDGET or (
                    # a text wider than a row would widen every row: short texts go on
                    # without it, and texts wider than a row (one to a row, or nearly)
                    # are grouped by length as padded runs are
                    end - start >= _MIN_RUN
                    and longest > _PACK_WIDTH
                    and (lengths[order[end - 1]] <= _PACK_WIDTH or wasteful)
                ):
                    break
            elif padded > _TOKEN_BUDGET or wasteful:
                break
            real += longest
            end += 1
        return end

    def _run(self, layout: _Layout) -> list[npt.NDArray[np.float32]]:
        feeds: dict[str, npt.NDArray[np.int64] | npt.NDArray[np.int32]] = {"input_ids": layout.ids}
        if self._packed:
            feeds["position_ids"] = layout.positions
            feeds["attention_mask_3d"] = layout.attention_3d()
        else:
            feeds["attention_mask"] = (layout.segment >= 0).astype(np.int64)
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(layout.ids)
        hidden = self._session.run(self._outputs, feeds)
        return [np.asarray(h, dtype=np.float32) for h in hidden]


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each text of a batch sits in the graph's [rows, width] input.

    Without packing, each text has a row of its own, padded to the longest. With it,
    texts are placed first-fit, longest first, into rows ``_PACK_WIDTH`` tokens wide (or
    as wide as the longest text): a row may hold several texts, each with positions
    from 0 and attending only to itself, so a batch of mixed lengths is no longer padded
    to its longest. In the flattened [rows x width] tokens every text is one contiguous
    range: text ``k`` starts at ``starts[k]``, and ``bounds`` lists where each text and
    each run of padding begins, so one ``np.add.reduceat`` sums every text's tokens.
    """

    ids: npt.NDArray[np.int64]  # [rows, width]; padding is the tokenizer's [PAD]
    positions: npt.NDArray[np.int64]  # [rows, width]; each text counts from 0
    segment: npt.NDArray[np.int32]  # [rows, width]; the text a token belongs to, -1 padding
    starts: npt.NDArray[np.int64]  # [texts]; flat offset of each text's first token
    bounds: npt.NDArray[np.int64]  # ascending flat offsets where a text or padding begins
    firsts: npt.NDArray[np.int64]  # [texts]; each text's index in ``bounds``

    @classmethod
    def of(cls, encodings: Sequence[Encoding], packed: bool, pad_id: int) -> _Layout:
        if len(encodings) == 1:  # a lone request: one row, nothing to place
            ids = np.array([encodings[0].ids], dtype=np.int64)
            zero = np.zeros(1, dtype=np.int64)
            positions = np.arange(ids.shape[1], dtype=np.int64)[None]
            return cls(ids, positions, np.zeros(ids.shape, np.int32), zero, zero, zero)
        lengths = [len(e.ids) for e in encodings]
        longest = max(lengths)
        rows: list[list[int]] = []  # the texts of each row
        if packed:
            width = max(longest, _PACK_WIDTH)
            free: list[int] = []
            for k in sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True):
                row = next((r for r, room in enumerate(free) if room >= lengths[k]), len(rows))
                if row == len(rows):
                    rows.append([])
                    free.append(width)
                rows[row].append(k)
                free[row] -= lengths[k]
            width -= min(free)  # as wide as the fullest row
        else:
            width = longest
            rows = [[k] for k in range(len(lengths))]
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        positions = np.zeros((len(rows), width), dtype=np.int64)
        segment = np.full((len(rows), width), -1, dtype=np.int32)
        counting = np.arange(width, dtype=np.int64)
        bounds: list[int] = []
        firsts = [0] * len(lengths)
        for r, members in enumerate(rows):
            col = 0
            for k in members:
                n = lengths[k]
                ids[r, col : col + n] = encodings[k].ids
                positions[r, col : col + n] = counting[:n]
                segment[r, col : col + n] = k
                firsts[k] = len(bounds)
                bounds.append(r * width + col)
                col += n
            if col < width:
                bounds.append(r * width + col)  # the row's padding
        flat_bounds = np.asarray(bounds, dtype=np.int64)
        text_firsts = np.asarray(firsts, dtype=np.int64)
        return cls(ids, positions, segment, flat_bounds[text_firsts], flat_bounds, text_firsts)

    @property
    def lone(self) -> bool:
        """One text filling one row: a lone request, the latency-critical case."""
        return len(self.bounds) == 1

    def attention_3d(self) -> npt.NDArray[np.int32]:
        """1 where token i may attend to token j: both of one text (or both padding)."""
        if self.lone:
            width = self.ids.shape[1]
            return np.ones((1, width, width), dtype=np.int32)
        same: npt.NDArray[np.bool_] = self.segment[:, :, None] == self.segment[:, None, :]
        return same.astype(np.int32)

    def token_weights(self) -> npt.NDArray[np.float32]:
        """[rows x width] pooling weights: 1 for every token of a text, 0 for padding."""
        if self.lone:
            return np.ones(self.ids.size, dtype=np.float32)
        return (self.segment.reshape(-1) >= 0).astype(np.float32)

    def pool(self, hidden: npt.NDArray[np.float32], weights: npt.NDArray[np.float32]) -> Vectors:
        """Each text's weighted mean over its tokens, unnormalised: [texts, dim]."""
        flat = hidden.reshape(-1, hidden.shape[-1])
        if self.lone:  # after a model run the caches are cold: as few numpy steps as can be
            lone: Vectors = (weights @ flat)[None] / max(float(weights.sum()), 1e-9)
            return lone
        rows, width = self.ids.shape
        if rows == len(self.starts):  # one text a row (long texts): a product per row
            by_row = weights.reshape(rows, width)
            sums = np.einsum("rwd,rw->rd", hidden, by_row)[self.starts // width]
            totals = by_row.sum(axis=1)[self.starts // width]
        else:
            sums = np.add.reduceat(flat * weights[:, None], self.bounds, axis=0)[self.firsts]
            totals = np.add.reduceat(weights, self.bounds)[self.firsts]
        pooled: Vectors = (sums / np.maximum(totals, 1e-9)[:, None]).astype(
            np.float32, copy=False
        )  # float32 already: no copy
        return pooled


def _apply_spans(weights: npt.NDArray[np.float32], enc: Encoding, spans: Sequence[Span]) -> None:
    """Multiply the weight of every real token whose characters fall in a span."""
    if not spans:
        return
    for t, (begin, end) in enumerate(enc.offsets):
        if weights[t] == 0 or begin == end:  # padding and special tokens keep their weight
            continue
        for s_begin, s_end, factor in spans:
            if begin < s_end and end > s_begin:
                weights[t] *= factor
                break
