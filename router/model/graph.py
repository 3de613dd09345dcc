"""Graph surgery for ``model pull``: fp32 weights restored, attention fused, packing inputs.

Each function rewrites the ONNX file at ``path`` in place; ``pull`` calls them in
order. Only ``model pull`` imports this module (and with it ``onnx`` and
``safetensors``, the ``model`` extra): serving never does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.errors import ModelError
from router.model.contract import DIMENSION

__all__ = [
    "accept_packed_rows",
    "build_fp32",
    "expose_blocks",
    "fuse_attention",
    "optimize",
    "quantize_int8",
]

log = logging.getLogger(__name__)

NUM_HEADS = 12


def build_fp32(int8_graph: Path, safetensors_path: Path, out: Path) -> None:
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


def fuse_attention(path: Path) -> None:
    """Replace each block's attention subgraph by one ``MultiHeadAttention`` node.

    The exported graph spells attention out: reshapes and transposes of Q, K and V, two
    scalings, ``Q @ K^T``, an additive mask built from ``attention_mask`` (a dozen shape
    nodes), softmax, a NaN guard, ``@ V`` and the transposes back; about 150 of its 290
    nodes, which onnxruntime's optimiser does not recognise. onnxruntime's
    ``MultiHeadAttention`` (com.microsoft) computes the same from the projected Q, K, V
    and the padding mask: scale 1/sqrt(head size), masked keys get no weight. A padded
    query row always has unmasked keys, so the NaN guard never fired. Vectors stay equal
    to 1e-6 (ARCHITECTURE.md "Model provisioning and format").
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
    _prune_and_sort(graph, path)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(path))
    log.info("attention fused: %d blocks, %d nodes left", len(softmaxes), len(graph.node))


def _prune_and_sort(graph: Any, path: Path) -> None:
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


def accept_packed_rows(path: Path) -> None:
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
    _prune_and_sort(graph, path)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def optimize(path: Path) -> bool:
    """Fuse GELU and its bias with onnxruntime's transformer optimiser; False if unavailable.

    Layer norms stay apart from their residual Add: onnxruntime's CPU
    ``SkipLayerNormalization`` is slower than the Add plus ``LayerNormalization``
    (ARCHITECTURE.md "Model provisioning and format"); the encoder also turns off
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


def expose_blocks(path: Path, blocks: tuple[int, ...]) -> None:
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


def quantize_int8(path: Path, tokenizer_path: Path, texts: Sequence[str]) -> int:
    """Quantise the fp32 graph at ``path`` to int8 matrix products with fixed activation
    scales; return how many activations are quantised.

    ``onnxruntime.quantization.quantize_dynamic`` (weights int8, one scale per output
    channel) rewrites every MatMul as ``DynamicQuantizeLinear -> MatMulInteger -> Cast ->
    Mul``; the first measures each run's activation range, so a text's vector would
    depend on the texts it is run with. Each ``DynamicQuantizeLinear`` is replaced here by
    a ``QuantizeLinear`` whose scale and zero point are constants computed as it computes
    them (uint8, the range widened to hold 0), from the range the fp32 graph's tensor
    spans over ``texts``, each run alone. Products stay exact integers and their outputs
    fp32, so a text's vector does not depend on its batch (ARCHITECTURE.md "int8
    MiniLM"). ``quantize_static``'s QLinearMatMul, which also quantises each product's
    output, moved vectors three times as far (bench/int8.py).
    """
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    fp32 = onnx.load(str(path))
    # quantize_dynamic skips a MatMul whose input type it cannot infer: the outputs of
    # com.microsoft MultiHeadAttention nodes get their type stated
    typed = {v.name for v in fp32.graph.value_info}
    for node in fp32.graph.node:
        if node.op_type == "MultiHeadAttention" and node.output[0] not in typed:
            fp32.graph.value_info.append(
                helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)
            )
    source = path.with_name(path.name + ".fp32")
    onnx.save(fp32, str(source))
    try:
        logging.disable(logging.INFO)  # it logs a line per tensor on the root logger
        try:
            quantize_dynamic(source, path, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
        model = onnx.load(str(path))
        dynamic = [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]
        matmuls = sum(n.op_type == "MatMulInteger" for n in model.graph.node)
        if not dynamic or matmuls != sum(n.op_type == "MatMul" for n in fp32.graph.node):
            raise ModelError(f"{path}: quantize_dynamic left {matmuls} integer products")
        tensors = list(dict.fromkeys(n.input[0] for n in dynamic))
        for name in tensors:
            fp32.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        session = ort.InferenceSession(fp32.SerializeToString(), providers=["CPUExecutionProvider"])
    finally:
        source.unlink(missing_ok=True)

    inputs = {i.name for i in session.get_inputs()}
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    low = dict.fromkeys(tensors, 0.0)  # the range always holds 0, as DynamicQuantizeLinear's
    high = dict.fromkeys(tensors, 0.0)
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        n = ids.shape[1]
        feeds: dict[str, Any] = {"input_ids": ids}
        if "position_ids" in inputs:
            feeds["position_ids"] = np.arange(n, dtype=np.int64)[None]
            feeds["attention_mask_3d"] = np.ones((1, n, n), dtype=np.int32)
        if "attention_mask" in inputs:
            feeds["attention_mask"] = np.ones_like(ids)
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        for name, value in zip(tensors, session.run(tensors, feeds), strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    del session

    nodes = list(model.graph.node)
    for node in dynamic:
        name = node.input[0]
        scale = np.float32((high[name] - low[name]) / 255.0)
        zero = np.uint8(np.clip(np.rint(-low[name] / scale), 0, 255))
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(scale, dtype=np.float32), node.output[1]),
                numpy_helper.from_array(np.array(zero, dtype=np.uint8), node.output[2]),
            ]
        )
        nodes[nodes.index(node)] = helper.make_node(
            "QuantizeLinear", [name, node.output[1], node.output[2]], [node.output[0]],
            name=f"{node.name}_fixed",
        )  # fmt: skip
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    log.info("int8 graph: %d activations quantised with fixed scales", len(dynamic))
    return len(dynamic)
