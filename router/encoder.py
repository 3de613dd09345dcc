"""Sentence vectors: Hugging Face tokenizers + onnxruntime, weighted mean pooling, L2 norm.

The one place that builds the ONNX session (CPU provider, full graph optimisation,
configurable threads) and feeds the graph only the inputs it declares. Pooling is the
mean of the last hidden states over the attention mask, optionally weighted per token
(negation handling, see preprocess.py), then L2-normalised: ``encode``.

``embed`` pools every hidden-state output of the graph the same way, unnormalised: the
graphs ``model pull`` builds also output an earlier block (modelstore.FEATURE_BLOCKS),
which the classification head reads. One row of ``embed`` is ``layers`` blocks of
``dimension`` values, earlier blocks first, the last hidden state last; a graph with a
single output gives ``layers == 1``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from threadpoolctl import threadpool_limits
from tokenizers import Encoding, Tokenizer

from router.errors import ModelError
from router.modelstore import (
    DEFAULT_MAX_TOKENS,
    MODEL_FILE,
    TOKENIZER_FILE,
    load_manifest,
    missing_files,
    sha256_of,
)
from router.vectors import unit_rows

__all__ = ["Encoder", "Span", "Vectors", "release_memory"]

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

#: A character span of the input and the pooling weight of the tokens inside it.
Span = tuple[int, int, float]

#: Batches are cut so that longest-length x count stays under this many tokens.
_TOKEN_BUDGET = 32 * 64
#: 64 made building the bundled index peak 10-30 MB higher (glibc keeps what a large
#: run freed) at no gain in speed (0.39-0.43 vs 0.43-0.44 s).
_MAX_BATCH = 32

#: A length-sorted run is also cut once it has _MIN_RUN texts and padding it to its
#: longest text would cost more than _PAD_SLACK x its real tokens. The server's batches
#: come in arrival order (the bundled eval texts run 3-27 tokens); cutting them so was
#: 1.25x faster than padding 32 whole (166 vs 133 sentences/s, 2 busy cores; see the
#: arrival-order line of bench/throughput.py). Length-sorted batches are rarely cut.
_MIN_RUN = 8
_PAD_SLACK = 1.25

#: A call that embeds many texts (an index build) hands freed heap back every this many
#: texts. glibc keeps, and fragments, what each run frees: building the bundled index in
#: the server peaked at 229-243 MB without it, 219-224 MB trimming every 128 texts
#: (below the graph load's own peak of ~226 MB). Requests never reach it.
_TRIM_EVERY = 128


@dataclass(frozen=True, slots=True)
class _Batch:
    ids: npt.NDArray[np.int64]
    mask: npt.NDArray[np.int64]


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Encoder:
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
        self.max_tokens = max_tokens or (manifest.max_tokens if manifest else DEFAULT_MAX_TOKENS)
        self.threads = threads or default_threads()
        # numpy's BLAS threads spin after each product and fight onnxruntime's for the
        # cores: engine throughput fell from ~775 to ~560 sentences/s on 2 cores. The
        # index's products are small; one BLAS thread is plenty.
        threadpool_limits(limits=1, user_api="blas")
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

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Measured with bench/throughput.py on 2 cores shared with the gRPC event loop:
        # without the arena, peak RSS 232 vs 253 MB at the same speed. Thread spinning
        # stays on: once numpy's BLAS threads were capped (below), turning it off no
        # longer helped 32 clients (579 vs 582 requests/s) and cost a lone request
        # 0.6 ms of model time (2.44 vs 1.81 ms p50).
        options.enable_cpu_mem_arena = False
        # Memory patterns pre-plan one block per input shape; shapes vary per batch here.
        # Off: peak RSS of the served process 241-255 vs 240-262 MB over five runs of
        # bench/throughput.py, requests/s the same (585-604 vs 580-608 at 32 clients).
        options.enable_mem_pattern = False
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(model_dir / MODEL_FILE),
                options,
                providers=["CPUExecutionProvider"],
                # its CPU kernel is slower than the Add + LayerNormalization it replaces
                # (modelstore._optimize)
                disabled_optimizers=["SkipLayerNormFusion"],
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(
                f"{model_dir / MODEL_FILE}: onnxruntime cannot load it: {exc}"
            ) from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        for required in ("input_ids", "attention_mask"):
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
            probe = self._run(self._pad([self._tokenizer.encode("probe")]))
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
        release_memory()  # loading the graph freed ~40 MB that glibc would keep

    @property
    def width(self) -> int:
        """Values in one ``embed`` row: ``layers`` x ``dimension``."""
        return self.layers * self.dimension

    def tokenize(self, texts: Sequence[str]) -> list[Encoding]:
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
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        start = trimmed = 0
        while start < len(order):
            if start - trimmed >= _TRIM_EVERY:
                release_memory()
                trimmed = start
            end = start + 1
            real = len(encodings[order[start]].ids)
            while end < len(order) and end - start < _MAX_BATCH:
                longest = len(encodings[order[end]].ids)
                padded = longest * (end - start + 1)
                if padded > _TOKEN_BUDGET or (
                    end - start >= _MIN_RUN and padded > _PAD_SLACK * (real + longest)
                ):
                    break
                real += longest
                end += 1
            chunk = order[start:end]
            batch = self._pad([encodings[i] for i in chunk])
            hidden = self._run(batch)
            weights = batch.mask.astype(np.float32)
            if spans is not None:
                for row, i in enumerate(chunk):
                    _apply_spans(weights[row], encodings[i], spans[i])
            out[chunk] = np.concatenate([_pool(h, weights) for h in hidden], axis=1)
            start = end
        return out

    def _pad(self, encodings: Sequence[Encoding]) -> _Batch:
        longest = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), longest), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        return _Batch(ids=ids, mask=mask)

    def _run(self, batch: _Batch) -> list[npt.NDArray[np.float32]]:
        feeds: dict[str, npt.NDArray[np.int64]] = {
            "input_ids": batch.ids,
            "attention_mask": batch.mask,
        }
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(batch.ids)
        hidden = self._session.run(self._outputs, feeds)
        return [np.asarray(h, dtype=np.float32) for h in hidden]


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


def _pool(hidden: npt.NDArray[np.float32], weights: npt.NDArray[np.float32]) -> Vectors:
    """Weighted mean over tokens, unnormalised."""
    summed: Vectors = np.einsum("bsd,bs->bd", hidden, weights)
    pooled: Vectors = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    return pooled


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
