"""The encoder against the reference implementation's vectors, and its model checks.

Most tests need the real model (the ``model_dir`` fixture marks them ``model``); the
error paths for a broken directory and the pure head features do not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from router.errors import ModelError
from router.model.token_graph import TokenGraphEncoder


def test_every_golden_vector_matches(encoder: TokenGraphEncoder, golden: dict) -> None:
    items = golden["items"]
    texts = [item["text"] for item in items]
    vectors = encoder.encode(texts)
    reference = np.array([item["embedding"] for item in items], dtype=np.float64)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosines = (vectors * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.9999, f"{texts[worst][:40]!r}: cosine {cosines[worst]:.6f}"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_tokenizer_truncates_at_256_and_matches_reference_ids(
    encoder: TokenGraphEncoder, golden: dict
) -> None:
    for item in golden["items"]:
        (enc,) = encoder.tokenize([item["text"]])
        assert len(enc.ids) == item["n_tokens"], item["text"][:40]
        assert enc.ids[:16] == item["input_ids_head"], item["text"][:40]


def test_a_vector_does_not_depend_on_its_batch(encoder: TokenGraphEncoder) -> None:
    alone = encoder.encode(["where is my parcel"])[0]
    long = "please help " * 60
    mixed = encoder.encode([long, "where is my parcel", "hi"])[1]
    assert float(alone @ mixed) > 0.99999


def test_empty_input_list_gives_empty_matrix(encoder: TokenGraphEncoder) -> None:
    assert encoder.encode([]).shape == (0, encoder.dimension)


def _tiny_tokenizer(path: Path) -> None:
    """A valid tokenizer.json without the model: one word-level vocabulary entry."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")).save(str(path))


def test_missing_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"a graph; the tokenizer is checked first")
    with pytest.raises(ModelError, match=r"missing tokenizer\.json"):
        TokenGraphEncoder(tmp_path)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        TokenGraphEncoder(tmp_path / "nope")


def test_garbage_model_file_is_a_clear_error(tmp_path: Path) -> None:
    _tiny_tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        TokenGraphEncoder(tmp_path)


def test_custom_export_without_manifest_is_served(model_dir: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    custom = TokenGraphEncoder(tmp_path)
    assert custom.model_id == f"custom:{tmp_path.name}"
    assert custom.dimension == 384


MIXED = [
    "where is my parcel",
    "hi",
    "I do not want a refund, I want a bigger size",
    "My order arrived damaged and the box was open; " * 8,  # about 100 tokens
    "cancel it",
    "the card payment failed twice and now the order says pending, what do I do?",
    *(f"order number {n} has not arrived yet" for n in range(12)),
]


def test_packed_rows_give_each_text_the_vector_it_has_alone(encoder: TokenGraphEncoder) -> None:
    from router.model.token_graph import _Layout

    assert encoder._packed  # the pulled graph takes several texts per row
    layout = _Layout.of(encoder.tokenize(MIXED), True, 0)
    assert layout.ids.shape[0] < len(MIXED)  # texts really share rows
    spans = [[(0, len(t) // 2, 0.25)] if k % 3 == 0 else [] for k, t in enumerate(MIXED)]
    together = encoder.embed(MIXED, spans)
    alone = np.concatenate([encoder.embed([t], [sp]) for t, sp in zip(MIXED, spans, strict=True)])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    assert not np.allclose(together, encoder.embed(MIXED), atol=1e-3)  # the spans count


def test_long_texts_one_to_a_row_keep_their_own_vectors(encoder: TokenGraphEncoder) -> None:
    from router.model.token_graph import _Layout

    long = [
        "My order arrived damaged and the box was open; " * k + "I do not want a refund"
        for k in (5, 6, 8)
    ]  # 60-100 tokens: no two fit in one row
    layout = _Layout.of(encoder.tokenize(long), True, 0)
    assert layout.ids.shape[0] == len(long)  # one text a row, padded to the longest
    spans = [[(0, 40, 0.25)], [], [(10, 200, 0.5)]]
    together = encoder.embed(long, spans)
    alone = np.concatenate([encoder.embed([t], [sp]) for t, sp in zip(long, spans, strict=True)])
    np.testing.assert_allclose(together, alone, atol=2e-5)


def _plain_export(source: Path, target: Path) -> None:
    """The pulled graph with the inputs of a usual export: 2-D attention_mask, no positions."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source / "model.onnx"))
    graph = model.graph
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = {"position_ids": "positions", "attention_mask_3d": "mask32"}.get(
                name, name
            )
    graph.initializer.extend(
        numpy_helper.from_array(np.array(v, dtype=np.int64), name) for name, v in
        (("zero", 0), ("one", 1))
    )  # fmt: skip
    prefix = [
        helper.make_node("Shape", ["input_ids"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["length"], axis=0),
        helper.make_node("Range", ["zero", "length", "one"], ["positions"]),
        helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32),
    ]
    nodes = prefix + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    inputs = [i for i in graph.input if i.name not in ("position_ids", "attention_mask_3d")]
    del graph.input[:]
    graph.input.extend(inputs)
    graph.input.append(
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    )
    onnx.save(model, str(target / "model.onnx"))
    shutil.copy(source / "tokenizer.json", target / "tokenizer.json")


def test_an_export_without_packed_inputs_pads_each_text(
    model_dir: Path, encoder: TokenGraphEncoder, tmp_path: Path
) -> None:
    _plain_export(model_dir, tmp_path)
    plain = TokenGraphEncoder(tmp_path, threads=2)
    assert not plain._packed
    np.testing.assert_allclose(plain.embed(MIXED), encoder.embed(MIXED), atol=2e-5)


def test_pulled_graph_gives_earlier_blocks_for_the_head(encoder: TokenGraphEncoder) -> None:
    texts = ["where is my parcel", "I do not want a refund, I want a bigger size"]
    rows = encoder.embed(texts)
    assert encoder.layers == 2  # block 2, then the last hidden state
    assert rows.shape == (2, encoder.width) == (2, 2 * encoder.dimension)
    last = rows[:, -encoder.dimension :]
    unit = last / np.linalg.norm(last, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, encoder.encode(texts), atol=1e-6)
    # the earlier block is another vector, not copies of the last
    first = rows[:, : encoder.dimension]
    assert not np.allclose(first, last, atol=1e-3)


def test_head_features_centre_each_block_and_keep_one_block_as_is() -> None:
    from router.routing.head import Features

    rng = np.random.default_rng(0)
    rows = rng.standard_normal((10, 6)).astype(np.float32) + 5.0  # a shared offset
    one = Features.fit(rows, 1)
    np.testing.assert_allclose(
        one(rows), rows / np.linalg.norm(rows, axis=1, keepdims=True), atol=1e-6
    )
    three = Features.fit(rows, 3)
    x = three(rows)
    assert x.shape == (10, 6)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    # centred: the shared offset is gone, so the exemplars' mean feature is near zero
    assert np.linalg.norm(x.mean(axis=0)) < 0.5
    assert np.linalg.norm(one(rows).mean(axis=0)) > 0.9


def test_a_model_pulled_by_an_older_version_is_pulled_again(tmp_path: Path) -> None:
    import json

    from router.model.contract import FEATURE_BLOCKS, GRAPH_VERSION, needs_pull

    assert needs_pull(tmp_path) is not None  # nothing there
    (tmp_path / "model.onnx").write_bytes(b"x")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert needs_pull(tmp_path) is None  # a user's own export: never replaced
    (tmp_path / "manifest.json").write_text(json.dumps({"feature_blocks": []}))
    reason = needs_pull(tmp_path)
    assert reason is not None and "older version" in reason
    blocks = list(FEATURE_BLOCKS)
    (tmp_path / "manifest.json").write_text(json.dumps({"feature_blocks": blocks}))
    reason = needs_pull(tmp_path)  # the graph layout of an older pull (no "graph" field)
    assert reason is not None and "graph layout 1" in reason
    (tmp_path / "manifest.json").write_text(
        json.dumps({"feature_blocks": blocks, "graph": GRAPH_VERSION})
    )
    assert needs_pull(tmp_path) is None


def test_pulled_graph_runs_attention_as_one_node_per_block(model_dir: Path) -> None:
    import onnx

    graph = onnx.load(str(model_dir / "model.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("MultiHeadAttention") == 6
    assert "Softmax" not in ops and "Transpose" not in ops  # the spelled-out attention is gone
    assert "SkipLayerNormalization" not in ops
    inputs = {i.name for i in graph.input}
    assert {"position_ids", "attention_mask_3d"} <= inputs and "attention_mask" not in inputs
