"""The exemplar vector cache: only new texts are embedded; bad files are never trusted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from fakes import FakeEncoder

from router.routing.vectorcache import VectorCache


class CountingEncoder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        rng = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts]
        return np.array(rng, dtype=np.float32)


def test_embeds_only_what_is_new(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = VectorCache("model-a", 8, tmp_path)
    first = cache.embed(["a", "b", "a"], enc)
    assert enc.seen == ["a", "b"]
    assert np.array_equal(first[0], first[2])
    again = cache.embed(["b", "c"], enc)
    assert enc.seen == ["a", "b", "c"]
    assert np.array_equal(again[0], first[1])


def test_restart_reads_vectors_from_disk(tmp_path: Path) -> None:
    enc = CountingEncoder()
    before = VectorCache("model-a", 8, tmp_path).embed(["héllo", "世界", "x"], enc)
    enc.seen.clear()
    after = VectorCache("model-a", 8, tmp_path).embed(["héllo", "世界", "x"], enc)
    assert enc.seen == []
    assert np.array_equal(before, after)


def test_other_model_or_settings_never_share_vectors(tmp_path: Path) -> None:
    enc = CountingEncoder()
    VectorCache("model-a", 8, tmp_path).embed(["a"], enc)
    VectorCache("model-b", 8, tmp_path).embed(["a"], enc)
    assert enc.seen == ["a", "a"]


def test_corrupt_or_truncated_file_is_rebuilt(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = VectorCache("model-a", 8, tmp_path)
    cache.embed(["a", "b"], enc)
    assert cache.path is not None
    data = cache.path.read_bytes()
    for broken in (data[:-5], data[:-40] + b"\x00" * 40, b"garbage", b""):
        cache.path.write_bytes(broken)
        enc.seen.clear()
        fresh = VectorCache("model-a", 8, tmp_path)
        assert len(fresh) == 0
        fresh.embed(["a"], enc)
        assert enc.seen == ["a"]
    # and what it wrote back is good again
    enc.seen.clear()
    VectorCache("model-a", 8, tmp_path).embed(["a"], enc)
    assert enc.seen == []


def test_retain_drops_texts_no_longer_used(tmp_path: Path) -> None:
    cache = VectorCache("model-a", 8, None)
    cache.embed(["a", "b", "c"], CountingEncoder())
    cache.retain(["b"])
    assert len(cache) == 1


def test_engine_reembeds_only_changed_examples(fake_encoder: FakeEncoder, bundled) -> None:
    from dataclasses import replace

    from router.routing.engine import Engine

    engine = Engine(fake_encoder)
    engine.load(bundled)
    misses = engine.cache.misses
    seen = fake_encoder.texts_seen
    first = bundled.intents[0]
    edited = replace(first, examples=(*first.examples, "a brand new example sentence"))
    engine.load(replace(bundled, intents=(edited, *bundled.intents[1:]), revision="edited"))
    assert engine.cache.misses == misses + 1
    assert fake_encoder.texts_seen == seen + 1  # the encoder saw that one text only
    result = engine.classify(["a brand new example sentence"])
    assert engine.snapshot.intents.revision == "edited"
    assert result.revision == engine.snapshot.revision
    assert result.predictions[0].intent == first.name  # the new example routes to its intent


def test_engine_uses_the_cache_it_is_given_even_when_empty(
    fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    from router.routing.engine import Engine

    cache = VectorCache(fake_encoder.fingerprint, fake_encoder.width, tmp_path)
    assert len(cache) == 0
    assert Engine(fake_encoder, cache=cache).cache is cache


def test_a_build_leaves_the_file_to_persist_after_the_swap(
    fake_encoder: FakeEncoder, bundled, tmp_path: Path
) -> None:
    from router.routing.engine import Engine

    encoder = fake_encoder
    engine = Engine(encoder, cache=VectorCache(encoder.fingerprint, encoder.width, tmp_path))
    snapshot = engine.build(bundled)
    assert not list(tmp_path.glob("*.vec"))  # building wrote nothing
    engine.swap(snapshot)
    engine.persist()
    (path,) = tmp_path.glob("*.vec")
    written = path.stat().st_mtime_ns
    engine.persist()  # nothing new: the file is not rewritten
    assert path.stat().st_mtime_ns == written
    again = VectorCache(encoder.fingerprint, encoder.width, tmp_path)
    assert len(again) == bundled.example_count


def test_an_unwritable_directory_keeps_vectors_in_memory(tmp_path: Path, caplog) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    cache = VectorCache("model-a", 8, in_the_way / "vectors")  # mkdir and writes fail
    enc = CountingEncoder()
    first = cache.embed(["a", "b"], enc)  # saves: must warn, not raise
    assert "not writable" in caplog.text and cache.path is None
    assert np.array_equal(cache.embed(["a"], enc)[0], first[0]) and enc.seen == ["a", "b"]


async def test_a_server_with_an_unwritable_cache_directory_serves(
    tmp_path: Path, bundled, caplog
) -> None:
    from fakes import serving_fake
    from helpers import running

    from router.api.v1 import router_pb2 as pb
    from router.serving.server import ServerConfig

    in_the_way = tmp_path / "cache"
    in_the_way.write_text("a file where the cache directory should be")
    config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0, cache_dir=in_the_way)
    async with running(config) as served:  # start-up crashed after the index was built
        reply = await served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
        assert reply.revision == served.server.engine.snapshot.revision
    assert "keeping vectors in memory only" in caplog.text


def test_the_file_is_compacted_when_examples_go(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = VectorCache("model-a", 8, tmp_path)
    cache.embed(["a", "b", "c"], enc)
    size = cache.path.stat().st_size
    cache.retain(["a"])
    cache.save()
    assert cache.path.stat().st_size < size
    assert len(VectorCache("model-a", 8, tmp_path)) == 1


def test_what_a_killed_writer_left_is_removed(tmp_path: Path) -> None:
    import os
    import time

    stale, fresh = tmp_path / ".vec-dead1234", tmp_path / ".vec-live5678"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    VectorCache("model-a", 8, tmp_path)
    assert not stale.exists() and fresh.exists()  # a live writer's file is left alone


def test_persist_drops_what_the_serving_snapshot_no_longer_uses(
    fake_encoder: FakeEncoder, bundled, tmp_path: Path
) -> None:
    from dataclasses import replace

    from router.routing.engine import Engine

    engine = Engine(fake_encoder)
    engine.load(bundled)
    fewer = replace(bundled, intents=bundled.intents[1:])
    engine.swap(engine.build(fewer))
    assert len(engine.cache) == bundled.example_count  # a swap only stores a reference
    engine.persist()
    assert len(engine.cache) == fewer.example_count
