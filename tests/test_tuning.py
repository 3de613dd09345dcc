"""tune: objectives on synthetic scores, per-intent shrinkage, YAML writes that keep
comments and layout, and tune --write followed by eval reproducing the tuned figures."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import FakeEncoder
from helpers import ROOT, in_process

from router import cli
from router.errors import TuningError
from router.quality.tuning import Objective, tune, write_thresholds
from router.routing.engine import Engine
from router.routing.intents import UNKNOWN, load_intents

VAL = ROOT / "intents" / "eval" / "val.jsonl"
U = UNKNOWN


# (gold, candidate, score)
BASE = [
    ("a", "a", 0.9),
    ("a", "a", 0.8),
    ("a", "a", 0.7),
    ("a", "a", 0.62),
    ("b", "a", 0.45),  # in scope, wrong candidate
    (U, "a", 0.2),
    (U, "a", 0.3),
    (U, "a", 0.4),
    (U, "a", 0.5),
]


def columns(rows: list[tuple[str, str, float]]) -> tuple[list[str], list[str], list[float]]:
    return [g for g, _, _ in rows], [c for _, c, _ in rows], [s for _, _, s in rows]


def test_accuracy_picks_the_middle_of_the_best_range() -> None:
    # Best: answer 0.62 and above, reject 0.5 and below -> 8 of 9 right on (0.5, 0.62].
    result = tune(*columns(BASE))
    assert 0.5 < result.default <= 0.62
    assert result.default == pytest.approx(0.56, abs=1e-3)
    assert (result.chosen.correct, result.chosen.accuracy) == (8, 8 / 9)
    assert result.result == result.chosen and result.per_intent is None


def test_unknown_precision_is_the_best_accuracy_meeting_the_target() -> None:
    # On (0.5, 0.62] the unknown answers include the in-scope 0.45: precision 4/5.
    # Precision 1 needs 0.45 answered, and the most accurate such range is (0.4, 0.45].
    strict = tune(*columns(BASE), objective=Objective.UNKNOWN_PRECISION, target=1.0)
    assert 0.4 < strict.default <= 0.45
    assert strict.chosen.unknown_precision == 1.0
    assert strict.chosen.correct == 7
    lenient = tune(*columns(BASE), objective=Objective.UNKNOWN_PRECISION, target=0.8)
    assert 0.5 < lenient.default <= 0.62  # 4/5 meets 0.8: the accuracy optimum stands


def test_in_scope_precision_is_the_best_accuracy_meeting_the_target() -> None:
    rows = [*BASE, ("c", "a", 0.75)]  # a confident wrong answer
    assert 0.5 < tune(*columns(rows)).default <= 0.62  # accuracy 8/10, precision 4/5
    result = tune(*columns(rows), objective=Objective.IN_SCOPE_PRECISION, target=0.9)
    assert 0.75 < result.default <= 0.8  # answers 0.9 and 0.8 only: precision 1, 6/10
    assert result.chosen.in_scope_precision == 1.0 and result.chosen.correct == 6


def test_answer_rate_is_the_highest_threshold_answering_the_target() -> None:
    # In scope: a at 0.9 0.8 0.7 0.62, b (wrongly a) at 0.45. Answering 4 of 5 in-scope
    # rows allows a threshold up to 0.62; 0.45 and the out-of-scope 0.5 are then refused.
    result = tune(*columns(BASE), objective=Objective.ANSWER_RATE, target=0.8)
    assert 0.6 < result.default <= 0.62
    assert result.chosen.in_scope_answered == 0.8 and result.chosen.unknown_recall == 1.0
    everything = tune(*columns(BASE), objective=Objective.ANSWER_RATE, target=1.0)
    assert 0.4 < everything.default <= 0.45  # the in-scope 0.45 answered too
    assert everything.chosen.in_scope_answered == 1.0
    assert everything.chosen.unknown_recall == 0.75  # out-of-scope 0.5 answered with it
    # the most accurate threshold answers only 4 of 5 as well, but is lower
    assert tune(*columns(BASE)).default < result.default


def test_answer_rate_without_in_scope_rows_is_an_error() -> None:
    with pytest.raises(TuningError, match="no in-scope rows"):
        tune([U, U], ["a", "a"], [0.3, 0.4], objective=Objective.ANSWER_RATE, target=0.9)


def test_an_unreachable_target_is_an_error() -> None:
    rows = [("b", "a", 0.95), ("a", "a", 0.9), (U, "a", 0.1)]
    with pytest.raises(TuningError, match=r"in-scope-precision >= 1.*best is 0\.500") as caught:
        tune(*columns(rows), objective=Objective.IN_SCOPE_PRECISION, target=1.0)
    assert caught.value.exit_code == 2


def test_kept_own_thresholds_are_applied_in_the_sweep() -> None:
    gold, candidates, scores = columns([*BASE, ("z", "z", 0.3), ("z", "z", 0.31)])
    free = tune(gold, candidates, scores, objective=Objective.ACCURACY)
    pinned = tune(gold, candidates, scores, objective=Objective.ACCURACY, own_thresholds={"z": 0.1})
    assert pinned.kept == {"z": 0.1}
    assert pinned.chosen.correct == free.chosen.correct + 2  # z's rows always answered


def test_balanced_weighs_out_of_scope_as_its_share_of_traffic_not_of_the_data() -> None:
    # 97 in-scope rows and 3 out-of-scope ones, as in CLINC150's val split: accuracy barely
    # rewards refusing the few unknowns; balanced weighs them as a fifth of the traffic
    rows = [("a", "a", 0.40 + i * 0.005) for i in range(97)]
    rows += [(U, "a", s) for s in (0.41, 0.42, 0.43)]  # refusing them costs 7 in-scope rows
    accuracy = tune(*columns(rows), objective=Objective.ACCURACY)
    balanced = tune(*columns(rows))  # the default
    assert balanced.objective is Objective.BALANCED and balanced.target == 0.2
    assert accuracy.chosen.unknown_recall == 0.0
    assert balanced.chosen.unknown_recall == 1.0
    assert balanced.chosen.in_scope_accuracy == pytest.approx(90 / 97)
    # with out-of-scope a fifth of the data, balanced at 0.2 is accuracy
    fifth = [*rows[:12], *[(U, "a", s) for s in (0.41, 0.42, 0.43)]]
    assert (
        tune(*columns(fifth)).default == tune(*columns(fifth), objective=Objective.ACCURACY).default
    )


PER_INTENT = [
    # "a": right answers score high, its out-of-scope look-alikes score 0.45 .. 0.58
    *[("a", "a", s) for s in (0.62, 0.66, 0.7, 0.74, 0.78, 0.82, 0.86, 0.9)],
    *[(U, "a", s) for s in (0.45, 0.5, 0.55, 0.58)],
    # "b": right answers score lower, its out-of-scope rows 0.1 .. 0.3
    *[("b", "b", s) for s in (0.35, 0.38, 0.41, 0.44, 0.47, 0.5, 0.55, 0.6)],
    *[(U, "b", s) for s in (0.1, 0.2, 0.25, 0.3)],
    # "c": too few rows for a threshold of its own
    ("c", "c", 0.4),
    (U, "c", 0.33),
    ("c", "c", 0.2),
]


def test_per_intent_thresholds_are_shrunk_and_kept_only_when_they_help() -> None:
    gold, candidates, scores = columns(PER_INTENT)
    result = tune(gold, candidates, scores, per_intent=True)
    # One threshold cannot suit a and b: the default serves b and c: (0.33, 0.35].
    assert 0.33 < result.default <= 0.35
    by_name = {c.name: c for c in result.intents}
    assert set(by_name) == {"a", "b"}  # c has 3 rows < 8
    a = by_name["a"]
    assert 0.58 < a.raw <= 0.62 and a.rows == 12
    assert a.shrunk == round((12 * a.raw + 8 * result.default) / (12 + 8), 4)
    assert result.default < a.shrunk < a.raw  # pulled toward the default...
    assert a.kept and a.correct_own > a.correct_default  # ...and still better there
    assert not by_name["b"].kept  # its best is the default's range: nothing to gain
    assert result.per_intent == {"a": a.shrunk}
    assert result.result.correct == result.chosen.correct + (a.correct_own - a.correct_default)
    # Without shrinkage "a" would reach its raw optimum.
    bare = tune(gold, candidates, scores, per_intent=True, prior_rows=0)
    assert bare.per_intent is not None and bare.per_intent["a"] == by_name["a"].raw


def test_per_intent_answer_rate_keeps_the_rate_pooled() -> None:
    gold, candidates, scores = columns(PER_INTENT)
    result = tune(
        gold, candidates, scores, per_intent=True, objective=Objective.ANSWER_RATE, target=0.9
    )
    assert result.chosen.in_scope_answered is not None
    assert result.chosen.in_scope_answered >= 0.9
    assert result.result.in_scope_answered is not None
    assert result.result.in_scope_answered >= 0.9  # with the intents' own thresholds too
    a = {c.name: c for c in result.intents}["a"]
    # a's out-of-scope look-alikes top out at 0.58 and its right answers start at 0.62:
    # its own threshold refuses them all and still answers 90% of its rows
    assert a.kept and a.shrunk > result.default
    assert result.result.unknown_recall is not None and result.chosen.unknown_recall is not None
    assert result.result.unknown_recall > result.chosen.unknown_recall


def test_per_intent_respects_min_rows() -> None:
    gold, candidates, scores = columns(PER_INTENT)
    result = tune(gold, candidates, scores, per_intent=True, min_rows=13)
    assert result.intents == () and result.per_intent == {}


# ---------------------------------------------------------------------- YAML writes

COMMENTED = """\
# Orders: a file with comments everywhere.
version: 1   # schema version

defaults:
  threshold: 0.5   # picked by hand

intents:
  # The first intent.
  - name: cancel_order
    description: "Cancel an order"   # quoted on purpose
    threshold: 0.7  # too strict?
    # examples follow
    examples:
      - 'I want to cancel my order'
      - Cancel order 123   # with a number

  - name: track_delivery
    examples: [where is my parcel, track my order]
"""

SECOND = """\
version: 1
intents:
  - name: reset_password
    threshold: 0.3
    examples:
      - I forgot my password
"""


def without_thresholds(text: str) -> list[str]:
    """The lines other than thresholds (and the ``defaults:`` line that holds one)."""
    return [line for line in text.splitlines() if not re.match(r"\s*threshold:|defaults:$", line)]


def make_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "intents"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_write_keeps_comments_order_and_layout(tmp_path: Path) -> None:
    folder = make_dir(tmp_path, {"a.yaml": COMMENTED, "b.yaml": SECOND})
    changed = write_thresholds(load_intents(folder), 0.4321, {"track_delivery": 0.61})
    assert changed == [folder / "a.yaml", folder / "b.yaml"]
    a = (folder / "a.yaml").read_text(encoding="utf-8")
    b = (folder / "b.yaml").read_text(encoding="utf-8")
    assert without_thresholds(a) == without_thresholds(COMMENTED)
    assert without_thresholds(b) == without_thresholds(SECOND)
    assert "  threshold: 0.4321" in a  # the defaults block that was there
    assert "defaults" not in b  # one defaults block is enough
    assert "    threshold: 0.61\n    examples: [where is my parcel" in a
    assert "too strict" not in a  # cancel_order was not tuned: its own threshold goes
    reloaded = load_intents(folder)
    assert reloaded.default_threshold == 0.4321
    assert {i.name: i.threshold for i in reloaded.intents} == {
        "cancel_order": None,
        "track_delivery": 0.61,
        "reset_password": None,
    }


def test_write_without_per_intent_leaves_own_thresholds(tmp_path: Path) -> None:
    folder = make_dir(tmp_path, {"a.yaml": COMMENTED, "b.yaml": SECOND})
    write_thresholds(load_intents(folder), 0.45, None)
    reloaded = load_intents(folder)
    assert reloaded.default_threshold == 0.45
    assert reloaded.by_name("cancel_order").threshold == 0.7  # type: ignore[union-attr]
    assert reloaded.by_name("reset_password").threshold == 0.3  # type: ignore[union-attr]
    assert (folder / "b.yaml").read_text(encoding="utf-8") == SECOND  # unchanged


def test_write_adds_defaults_to_the_first_file_when_none_has_one(tmp_path: Path) -> None:
    folder = make_dir(tmp_path, {"a.yaml": SECOND, "b.yaml": SECOND.replace("reset", "new")})
    changed = write_thresholds(load_intents(folder), 0.38, None)
    assert changed == [folder / "a.yaml"]
    assert (
        (folder / "a.yaml")
        .read_text(encoding="utf-8")
        .startswith("version: 1\ndefaults:\n  threshold: 0.38\nintents:\n")
    )


def test_write_updates_every_defaults_block(tmp_path: Path) -> None:
    with_default = SECOND.replace("version: 1\n", "version: 1\ndefaults:\n  threshold: 0.5\n")
    folder = make_dir(
        tmp_path, {"a.yaml": with_default, "b.yaml": with_default.replace("reset", "new")}
    )
    write_thresholds(load_intents(folder), 0.42, None)
    for name in ("a.yaml", "b.yaml"):
        assert "  threshold: 0.42\n" in (folder / name).read_text(encoding="utf-8")
    assert load_intents(folder).default_threshold == 0.42  # no conflict between files


def test_write_on_the_bundled_intents_changes_only_threshold_lines(tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", folder, ignore=shutil.ignore_patterns("eval"))
    before = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}
    write_thresholds(load_intents(folder), 0.4321, {"cancel_order": 0.5, "human_agent": 0.45})
    for name, text in before.items():
        after = (folder / name).read_text(encoding="utf-8")
        assert without_thresholds(after) == without_thresholds(text), name
    assert sum(line.lstrip().startswith("#") for t in before.values() for line in t.splitlines())
    reloaded = load_intents(folder)
    assert reloaded.default_threshold == 0.4321
    assert {i.name: i.threshold for i in reloaded.intents if i.threshold is not None} == {
        "cancel_order": 0.5,
        "human_agent": 0.45,
    }


def test_write_refuses_unknown_intents(tmp_path: Path) -> None:
    folder = make_dir(tmp_path, {"a.yaml": SECOND})
    with pytest.raises(ValueError, match="no such intents: nope"):
        write_thresholds(load_intents(folder), 0.4, {"nope": 0.5})
    assert (folder / "a.yaml").read_text(encoding="utf-8") == SECOND


# ------------------------------------------------------------ tune, then eval (CLI)
# In process, with the deterministic FakeEncoder for the model: these test the command's
# logic (what tune writes, eval applies), which does not depend on the model's quality.


def bundled_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", folder, ignore=shutil.ignore_patterns("eval"))
    return folder


def tune_json(folder: Path, *extra: str) -> dict:
    code, out, err = in_process(
        "tune", "--intents", str(folder), "--data", str(VAL), "--write", "--json", *extra
    )
    assert code == 0, err
    result: dict = json.loads(out)
    return result


def eval_json(folder: Path) -> dict:
    code, out, err = in_process("eval", "--intents", str(folder), "--data", str(VAL), "--json")
    assert code == 0, err
    result: dict = json.loads(out)
    return result


def test_tune_write_then_eval_reproduces_the_tuned_figures(
    fake_model: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = bundled_copy(tmp_path)
    # start from an untuned default so that --write has something to record
    first = folder / "account.yaml"
    first.write_text(re.sub(r"threshold: [0-9.]+", "threshold: 0.9", first.read_text()))

    tuned = tune_json(folder)
    assert tuned["written"]
    evaluated = eval_json(folder)
    assert evaluated["default_threshold"] == tuned["threshold"]
    assert evaluated["accuracy"] == tuned["result"]["accuracy"]
    assert evaluated["unknown_precision"] == tuned["result"]["unknown_precision"]
    assert evaluated["in_scope_precision"] == tuned["result"]["in_scope_precision"]
    assert evaluated["accuracy"] >= tuned["now"]["accuracy"]  # never worse on its own data

    # Per-intent thresholds (a low --min-rows so the small bundled set yields some).
    tuned = tune_json(folder, "--per-intent", "--min-rows", "4")
    own = tuned["per_intent"]
    assert own, "no intent kept a threshold of its own: the checks below would prove nothing"
    evaluated = eval_json(folder)
    assert evaluated["own_thresholds"] == own
    assert evaluated["accuracy"] == tuned["result"]["accuracy"]
    assert evaluated["unknown_precision"] == tuned["result"]["unknown_precision"]

    # A plain tune keeps them (and says so), applying them in its sweep.
    caplog.clear()
    tuned = tune_json(folder)
    assert f"{len(own)} intents have their own threshold" in caplog.text
    assert tuned["now"]["own_thresholds"] == own
    assert tuned["kept_thresholds"] == own
    assert tuned["per_intent"] is None
    evaluated = eval_json(folder)
    assert evaluated["own_thresholds"] == own
    assert evaluated["accuracy"] == tuned["result"]["accuracy"]


def test_tune_answer_rate_writes_the_highest_threshold_keeping_the_rate(
    fake_model: None, tmp_path: Path
) -> None:
    folder = bundled_copy(tmp_path)
    target = 0.5
    tuned = tune_json(folder, "--objective", "answer-rate", "--target", str(target))
    assert tuned["objective"] == "answer-rate" and tuned["written"]
    assert tuned["result"]["in_scope_answered"] >= target
    above = [p for p in tuned["curve"] if p["threshold"] > tuned["threshold"]]
    assert above and all(p["in_scope_answered"] < target for p in above)
    # here the rate allows a higher threshold than the accuracy optimum: more refused
    accurate = tune_json(folder)
    assert tuned["threshold"] > accurate["threshold"]
    assert tuned["result"]["unknown_recall"] >= accurate["result"]["unknown_recall"]
    # what was written is what eval then applies
    tuned = tune_json(folder, "--objective", "answer-rate", "--target", str(target))
    evaluated = eval_json(folder)
    assert evaluated["default_threshold"] == tuned["threshold"]
    assert evaluated["accuracy"] == tuned["result"]["accuracy"]


def test_tune_prints_the_curve_and_the_choice(fake_model: None) -> None:
    code, out, err = in_process("tune", "--intents", str(ROOT / "intents"), "--data", str(VAL))
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith(" *") for line in lines)  # the chosen row of the curve
    assert any(line.endswith("<- now") for line in lines)
    assert any(line.startswith("chosen: threshold ") for line in lines)
    assert "not written" in out


def test_tune_bad_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tune", "--intents", "intents", "--data", str(VAL)]
    with pytest.raises(SystemExit) as caught:
        cli.main([*args, "--objective", "unknown-precision", "--target", "1.5"])
    assert caught.value.code == 2
    assert "--target: must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_write_keeps_a_hand_set_lexical_weight(tmp_path: Path) -> None:
    pinned = SECOND.replace(
        "version: 1\n", "version: 1\ndefaults:\n  lexical_weight: 0  # messages in Chinese\n"
    )
    folder = make_dir(tmp_path, {"a.yaml": pinned})
    write_thresholds(load_intents(folder), 0.47, None, "use-multilingual")
    text = (folder / "a.yaml").read_text(encoding="utf-8")
    assert "  lexical_weight: 0  # messages in Chinese\n" in text
    assert text.count("lexical_weight") == 1
    reloaded = load_intents(folder)
    assert (reloaded.default_threshold, reloaded.threshold_model) == (0.47, "use-multilingual")
    assert reloaded.lexical_weight == 0.0


def test_the_intents_lexical_weight_applies_whatever_the_model() -> None:
    """A deployment's choice (README: 0 for messages in another language than the
    examples), kept when thresholds tuned for another model are set aside."""
    intents = load_intents(ROOT / "intents")
    for tuned_for in ("fake", "minilm", None):
        pinned = replace(intents, threshold_model=tuned_for, lexical_weight=0.0)
        _, settings, _ = Engine(FakeEncoder(lexical_weight=0.7)).thresholds_for(pinned)
        assert settings.lexical_weight == 0.0, tuned_for
    _, settings, _ = Engine(FakeEncoder(lexical_weight=0.7)).thresholds_for(intents)
    assert settings.lexical_weight == 0.7  # the bundled files leave it to the model
