"""The encoder against the reference implementation's vectors, and its model checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from router.encoder import Encoder
from router.errors import ModelError


def test_every_golden_vector_matches(encoder: Encoder, golden: dict) -> None:
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
    encoder: Encoder, golden: dict
) -> None:
    for item in golden["items"]:
        (enc,) = encoder.tokenize([item["text"]])
        assert len(enc.ids) == item["n_tokens"], item["text"][:40]
        assert enc.ids[:16] == item["input_ids_head"], item["text"][:40]


def test_a_vector_does_not_depend_on_its_batch(encoder: Encoder) -> None:
    alone = encoder.encode(["where is my parcel"])[0]
    long = "please help " * 60
    mixed = encoder.encode([long, "where is my parcel", "hi"])[1]
    assert float(alone @ mixed) > 0.99999


def test_empty_input_list_gives_empty_matrix(encoder: Encoder) -> None:
    assert encoder.encode([]).shape == (0, encoder.dimension)


def test_missing_tokenizer_is_a_clear_error(model_dir: Path, tmp_path: Path) -> None:
    shutil.copy(model_dir / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(ModelError, match=r"missing tokenizer\.json"):
        Encoder(tmp_path)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        Encoder(tmp_path / "nope")


def test_garbage_model_file_is_a_clear_error(model_dir: Path, tmp_path: Path) -> None:
    shutil.copy(model_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        Encoder(tmp_path)


def test_custom_export_without_manifest_is_served(model_dir: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    custom = Encoder(tmp_path)
    assert custom.model_id == f"custom:{tmp_path.name}"
    assert custom.dimension == 384


def test_pulled_graph_gives_earlier_blocks_for_the_head(encoder: Encoder) -> None:
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
    from router.head import Features

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

    from router.modelstore import FEATURE_BLOCKS, GRAPH_VERSION, needs_pull

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
