"""eval: metrics on hand-made predictions, the data reader, the CLI, the report, and that
eval's predictions are the gRPC server's answers."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, in_process

from router.api.v1 import router_pb2 as pb
from router.errors import DataError
from router.quality.evaluate import (
    Row,
    evaluate,
    load_labelled,
    metrics_at,
    predict,
    sweep,
    threshold_grid,
)
from router.quality.report import write_report
from router.routing.engine import revision_of
from router.routing.index import Alternative, Index, IndexSettings, Prediction, Scoring
from router.routing.intents import UNKNOWN, Intent, IntentSet

INTENTS = ROOT / "intents"
VAL = INTENTS / "eval" / "val.jsonl"


def prediction(intent: str, candidate: str, score: float, threshold: float = 0.5) -> Prediction:
    return Prediction(
        intent=intent,
        score=score,
        threshold=threshold,
        alternatives=(Alternative(candidate, score, f"closest {candidate}"),),
    )


# gold, predicted, candidate, score (threshold 0.5 for every intent)
HAND = [
    ("a", "a", "a", 0.9),
    ("a", "a", "a", 0.8),
    ("a", "b", "b", 0.7),  # wrong intent
    ("b", "b", "b", 0.6),
    ("b", UNKNOWN, "b", 0.4),  # right candidate, rejected
    (UNKNOWN, UNKNOWN, "a", 0.3),
    (UNKNOWN, "a", "a", 0.55),  # out of scope, accepted
    (UNKNOWN, UNKNOWN, "c", 0.2),
]


#: The headline metrics every JSON record carries.
HEADLINE = (
    "accuracy",
    "in_scope_accuracy",
    "unknown_recall",
    "unknown_precision",
    "unknown_f1",
    "macro_f1",
)


@pytest.fixture
def hand():
    rows = [Row(text=f"text {i}", intent=g, line=i + 1) for i, (g, *_) in enumerate(HAND)]
    predictions = [prediction(p, c, s) for _, p, c, s in HAND]
    return evaluate(
        rows,
        predictions,
        labels=["a", "b", "c"],
        revision="r1",
        scoring="topk_mean",
        default_threshold=0.5,
        data="hand.jsonl",
    )


def test_metrics_by_hand(hand) -> None:
    m = hand.metrics
    assert m.accuracy == 5 / 8  # rows 1, 2, 4, 6, 8
    assert m.in_scope_accuracy == 3 / 5  # rows 1, 2, 4 of 1-5
    assert m.in_scope_top1 == 4 / 5  # candidate right on rows 1, 2, 4, 5
    assert m.in_scope_precision == 3 / 5  # answers 1, 2, 3, 4, 7; right 1, 2, 4
    assert m.unknown_precision == pytest.approx(2 / 3)  # unknown answers 5, 6, 8
    assert m.unknown_recall == pytest.approx(2 / 3)  # gold unknown 6, 7, 8
    assert m.unknown_f1 == pytest.approx(2 / 3)
    per = {s.name: s for s in hand.per_intent}
    assert (per["a"].precision, per["a"].recall, per["a"].support) == (2 / 3, 2 / 3, 3)
    assert per["a"].f1 == pytest.approx(2 / 3)
    assert (per["b"].precision, per["b"].recall, per["b"].f1, per["b"].support) == (
        0.5,
        0.5,
        0.5,
        2,
    )
    # "c" is neither gold nor predicted: no figures, and not part of the macro average.
    assert (per["c"].precision, per["c"].recall, per["c"].f1, per["c"].support) == (
        None,
        None,
        None,
        0,
    )
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert [(p.gold, p.predicted, p.count) for p in hand.confused_pairs] == [
        ("a", "b", 1),
        ("b", UNKNOWN, 1),
        (UNKNOWN, "a", 1),
    ]
    assert [e.line for e in hand.errors] == [3, 5, 7]


def test_json_has_every_field(hand) -> None:
    record = json.loads(json.dumps(hand.to_json()))
    for key in (
        *HEADLINE,
        "per_intent",
        "confused_pairs",
        "errors",
        "rows",
        "revision",
        "scoring",
    ):
        assert key in record, key
    assert record["rows"] == 8
    assert record["per_intent"]["c"] == {
        "precision": None,
        "recall": None,
        "f1": None,
        "support": 0,
        "predicted": 0,
    }
    assert record["errors"][0] == {
        "line": 3,
        "text": "text 2",
        "gold": "a",
        "predicted": "b",
        "candidate": "b",
        "score": 0.7,
        "threshold": 0.5,
        "matched_example": "closest b",
    }


def test_sweep_by_hand(hand) -> None:
    gold = [g for g, *_ in HAND]
    candidates = [c for _, _, c, _ in HAND]
    scores = [s for *_, s in HAND]
    everything, mixed, nothing = sweep(gold, candidates, scores, [0.0, 0.65, 0.95])
    assert (everything.accuracy, everything.answered, everything.unknown_precision) == (
        4 / 8,
        8,
        None,
    )
    assert (mixed.accuracy, mixed.answered, mixed.in_scope_precision) == (5 / 8, 3, 2 / 3)
    assert (nothing.accuracy, nothing.in_scope_precision, nothing.unknown_recall) == (
        3 / 8,
        None,
        1.0,
    )
    # An intent's own threshold holds whatever the swept default.
    pinned = sweep(gold, candidates, scores, [0.95], {"b": 0.0})[0]
    assert (pinned.correct, pinned.answered) == (5, 3)  # rows 4, 5 right, 3 wrong; 6-8 unknown
    # The decisions made by the engine are the sweep's at the thresholds it applied.
    now = hand.at_current()
    assert (now.accuracy, now.unknown_precision, now.in_scope_precision) == (
        hand.metrics.accuracy,
        hand.metrics.unknown_precision,
        hand.metrics.in_scope_precision,
    )


def test_sweep_compares_in_float32_like_the_index() -> None:
    score = float(np.float32(0.7))  # 0.699999988..., below the double 0.7
    point = sweep(["a"], ["a"], [score], [0.7])[0]
    assert point.answered == 1  # float32(score) >= float32(0.7), as Index decides


def _synthetic_index(default: float, seed: int = 7) -> tuple[Index, np.ndarray]:
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d"]
    intents = tuple(
        Intent(name=n, examples=tuple(f"{n}{i}" for i in range(3 + k))) for k, n in enumerate(names)
    )
    intent_set = IntentSet(intents=intents, default_threshold=default, files=(), revision="x")
    vectors = rng.normal(size=(intent_set.example_count, 16)).astype(np.float32)
    queries = rng.normal(size=(60, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = Index(intent_set, vectors, IndexSettings(scoring=Scoring.TOPK_MEAN))
    return index, queries


def test_sweep_reproduces_the_index_decisions_at_every_threshold() -> None:
    index, queries = _synthetic_index(0.0)
    base = index.classify(queries)
    rng = np.random.default_rng(1)
    gold = [str(rng.choice(["a", "b", "c", "d", UNKNOWN])) for _ in base]
    scores = [p.score for p in base]
    candidates = [p.candidate for p in base]
    # Thresholds on the grid, plus some equal to a score (the >= boundary).
    grid = threshold_grid(scores)
    thresholds = [*grid[:: max(1, len(grid) // 25)], *sorted(scores)[::7]]
    swept = sweep(gold, candidates, scores, thresholds)
    rows = [Row(text=str(i), intent=g, line=i + 1) for i, g in enumerate(gold)]
    for threshold, point in zip(thresholds, swept, strict=True):
        engine_index, _ = _synthetic_index(float(threshold))
        predictions = engine_index.classify(queries)
        got = evaluate(
            rows, predictions, labels=list("abcd"), default_threshold=float(threshold)
        ).metrics
        assert point.accuracy == got.accuracy, threshold
        assert point.unknown_precision == got.unknown_precision, threshold
        assert point.in_scope_precision == got.in_scope_precision, threshold


def test_metrics_at_applies_per_intent_thresholds() -> None:
    point = metrics_at(["a", "b"], ["a", "b"], [0.5, 0.5], 0.6, {"a": 0.4})
    assert (point.answered, point.correct) == (1, 1)


def test_threshold_grid_spans_the_data_on_a_round_step() -> None:
    grid = threshold_grid([0.2, 0.9, 0.45])
    assert grid[0] < 0.2 and grid[-1] > 0.9
    assert np.allclose(np.diff(grid), 1e-4)
    assert all(float(f"{t:.4f}") == t for t in grid)  # what YAML gets is what was swept
    narrow = threshold_grid([0.91, 0.93])
    assert np.allclose(np.diff(narrow), 1e-5)
    wide = threshold_grid([-1.0, 0.9995])
    assert (wide[0], wide[-1]) == (-1.0, 1.0)  # never outside the range the schema accepts


def test_load_labelled_reads_rows_and_names_every_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"text": "where is it", "intent": "a", "kind": "extra keys are fine"}\n'
        "\n"
        '{"text": "tell me a joke", "intent": "unknown"}\n',
        encoding="utf-8",
    )
    rows = load_labelled(good, {"a"})
    assert [(r.text, r.intent, r.line) for r in rows] == [
        ("where is it", "a", 1),
        ("tell me a joke", UNKNOWN, 3),
    ]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "fine", "intent": "a"}\n'
        '{"text": "broken", "intent": \n'
        '["not", "an", "object"]\n'
        '{"intent": "a"}\n'
        '{"text": "x", "intent": "no_such_intent"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError) as caught:
        load_labelled(bad, {"a"})
    message = str(caught.value)
    assert f"{bad}:2:" in message and "malformed JSON" in message
    assert f"{bad}:3: must be a JSON object" in message
    assert f"{bad}:4: text: required" in message
    assert f"{bad}:5: intent: 'no_such_intent' is neither a loaded intent nor 'unknown'" in (
        message
    )
    assert caught.value.exit_code == 2


@dataclass
class _Answer:
    predictions: list[Prediction]
    revision: str


class _Fake:
    def __init__(self, revisions: Sequence[str]) -> None:
        self.calls: list[list[str]] = []
        self.revisions = list(revisions)

    def classify(self, texts: Sequence[str], top_k: int = 3) -> _Answer:
        self.calls.append(list(texts))
        revision = self.revisions[min(len(self.calls), len(self.revisions)) - 1]
        return _Answer([prediction("a", "a", 0.9) for _ in texts], revision)


def test_predict_batches_and_refuses_a_revision_change() -> None:
    fake = _Fake(["r1"])
    predictions, revision = predict(fake, [f"t{i}" for i in range(5)], batch_size=2)
    assert (len(predictions), revision) == (5, "r1")
    assert [len(c) for c in fake.calls] == [2, 2, 1]
    with pytest.raises(RuntimeError, match="changed"):
        predict(_Fake(["r1", "r2"]), ["x", "y", "z"], batch_size=2)


def test_report_in_process(hand, tmp_path: Path) -> None:
    page = write_report(hand, tmp_path / "r")
    text = page.read_text(encoding="utf-8")
    for name in ("scores.png", "sweep.png", "confusion.png"):
        assert (tmp_path / "r" / name).stat().st_size > 1000
        assert f'src="{name}"' in text
    assert "text 2" in text and "closest b" in text  # the error list


# ------------------------------------------------------------------ the command line
# In process. The real model where its figures are the point (the bundled validation
# set, negation on and off, the server's answers); FakeEncoder where only the command's
# logic is.


@pytest.fixture(scope="module")
def val_eval(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``eval`` of the bundled validation set with the real model, in process."""
    out = tmp_path_factory.mktemp("eval")
    code, stdout, stderr = in_process(
        "eval",
        "--intents",
        str(INTENTS),
        "--data",
        str(VAL),
        "--json",
        "--report",
        str(out / "report"),
        "--predictions",
        str(out / "predictions.jsonl"),
        "--model",
        str(model_dir),
    )
    assert code == 0, stderr
    assert len(stdout.strip().splitlines()) == 1  # one JSON object
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return {
        "json": json.loads(stdout),
        "out": out,
        "predictions": [json.loads(line) for line in lines],
    }


def test_cli_eval_json_has_all_fields(val_eval: dict, bundled: IntentSet, encoder) -> None:
    record = val_eval["json"]
    rows = VAL.read_text(encoding="utf-8").splitlines()
    assert record["rows"] == len(rows)
    assert record["revision"] == revision_of(bundled, encoder)
    assert record["scoring"] == f"{IndexSettings().scoring.value} + lexical 0.2"  # minilm's
    for key in HEADLINE:
        assert 0.0 <= record[key] <= 1.0, key
    assert set(record["per_intent"]) == {i.name for i in bundled.intents} | {UNKNOWN}
    assert set(record["per_intent"]["unknown"]) >= {"precision", "recall", "f1", "support"}
    assert len(record["confused_pairs"]) <= 10
    assert all(p["count"] >= 1 for p in record["confused_pairs"])
    errors = record["errors"]
    assert errors, "the bundled validation set has errors to show"
    assert set(errors[0]) >= {
        "text",
        "gold",
        "predicted",
        "candidate",
        "score",
        "threshold",
        "matched_example",
    }
    correct = len(rows) - len(errors)
    assert record["accuracy"] == correct / len(rows)
    # Every row's decision is the threshold rule applied to its score.
    assert len(val_eval["predictions"]) == len(rows)
    for p in val_eval["predictions"]:
        assert (p["predicted"] != UNKNOWN) == (np.float32(p["score"]) >= np.float32(p["threshold"]))


def test_cli_eval_report_files(val_eval: dict) -> None:
    report = val_eval["out"] / "report"
    page = report / "index.html"
    assert page.stat().st_size > 0
    text = page.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', text)
    assert set(images) == {"scores.png", "sweep.png", "confusion.png"}
    for name in images:
        data = (report / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert val_eval["json"]["report"] == str(page)


async def test_eval_predictions_equal_the_servers_answers(val_eval: dict, stub) -> None:
    ours = val_eval["predictions"][:40]
    assert len(ours) == 40
    for row in ours:
        reply = await stub.Classify(pb.ClassifyRequest(text=row["text"]))
        assert reply.intent == row["predicted"], row["text"]
        assert reply.alternatives[0].intent == row["candidate"]
        assert reply.score == pytest.approx(row["score"], abs=1e-5)
        assert reply.threshold == pytest.approx(row["threshold"], abs=1e-6)
        assert reply.alternatives[0].example == row["matched_example"]
        assert reply.revision == val_eval["json"]["revision"]


def test_cli_eval_malformed_data_exits_2_with_file_line(fake_model: None, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(
        '{"text": "where is my parcel", "intent": "track_delivery"}\n{"text": oops}\n',
        encoding="utf-8",
    )
    code, _, stderr = in_process("eval", "--intents", str(INTENTS), "--data", str(data))
    assert code == 2
    assert f"{data}:2:" in stderr and "malformed JSON" in stderr

    data.write_text('{"text": "hello", "intent": "say_hello"}\n', encoding="utf-8")
    code, _, stderr = in_process("eval", "--intents", str(INTENTS), "--data", str(data))
    assert code == 2
    assert f"{data}:1: intent: 'say_hello' is neither a loaded intent" in stderr


def test_report_without_errors_has_no_confusion_plot(tmp_path: Path) -> None:
    rows = [Row("hi", "a", 1), Row("joke", UNKNOWN, 2)]
    predictions = [prediction("a", "a", 0.9), prediction(UNKNOWN, "a", 0.1)]
    perfect = evaluate(rows, predictions, labels=["a"], default_threshold=0.5, data="p.jsonl")
    assert perfect.metrics.accuracy == 1.0 and perfect.errors == ()
    text = write_report(perfect, tmp_path).read_text(encoding="utf-8")
    assert "confusion.png" not in text and not (tmp_path / "confusion.png").exists()
    assert "no errors" in text


def test_eval_compares_negation_off_and_on_in_one_run(model_dir: Path) -> None:
    code, stdout, stderr = in_process(
        "eval", "--intents", str(INTENTS), "--data", str(INTENTS / "eval" / "negation_en.jsonl"),
        "--negation", "compare", "--json", "--model", str(model_dir),
    )  # fmt: skip
    assert code == 0, stderr
    record = json.loads(stdout)
    off, on = record["negation_off"], record["negation_on"]
    assert off["rows"] == on["rows"] >= 80
    # the bar, measured on the bundled negation set
    assert on["accuracy"] >= 0.85
    assert on["accuracy"] - off["accuracy"] >= 0.25
