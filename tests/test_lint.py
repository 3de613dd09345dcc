"""`intent-router lint`: duplicates, too few examples, misplaced examples, confusable
pairs and answered out-of-scope examples, on the fake encoder (word overlap)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import serving_fake
from helpers import in_process

from router import cli
from router.routing.engine import Engine
from router.routing.index import IndexSettings
from router.routing.intents import load_intents
from router.routing.lint import lint

LINTED = """version: 1
out_of_scope:
  - refund my money back please
  - zebra quantum xylophone
intents:
  - name: refund
    examples:
      - refund my money back please
      - I want a refund of my money
      - money back refund now
      - give my money back as a refund
      - where is my parcel parcel tracking
  - name: track
    examples:
      - where is my parcel
      - track my parcel delivery
      - parcel tracking number where
      - when will the parcel arrive
      - Refund my money back, please!
  - name: tiny
    examples:
      - purple elephant
      - green giraffe
"""


@pytest.fixture
def linted(tmp_path: Path) -> Path:
    (tmp_path / "shop.yaml").write_text(LINTED)
    return tmp_path


def test_every_kind_of_finding_is_found(linted: Path) -> None:
    # The fake's word vectors are near-orthogonal: a threshold calibrated from them is
    # about 0 (everything answered), so this test keeps the fixed default.
    engine = Engine(serving_fake(), IndexSettings(calibrate=False))
    findings = lint(engine, load_intents(linted))
    kinds = {f.kind: f for f in findings}
    assert kinds["duplicate"].intents == ("refund", "track")  # case and punctuation aside
    # each finding about an example points at the example's own line
    assert kinds["duplicate"].where.endswith("shop.yaml:8:9")
    assert "also at " in kinds["duplicate"].message
    assert kinds["duplicate"].message.endswith("shop.yaml:19:9)")
    assert kinds["too_few"].intents == ("tiny",) and kinds["too_few"].where.endswith(":20:5")
    misplaced = [f for f in findings if f.kind == "closer_elsewhere"]
    (parcel,) = [f for f in misplaced if "where is my parcel parcel tracking" in f.message]
    assert parcel.intents == ("refund", "track")
    assert parcel.where.endswith("shop.yaml:12:9")
    answered = [f for f in findings if f.kind == "out_of_scope_answered"]
    assert len(answered) == 1 and answered[0].intents[0] in ("refund", "track")  # not the zebra
    assert answered[0].where.endswith("shop.yaml:3:5")
    assert str(findings[0]).startswith(str(linted / "shop.yaml"))


def test_a_clean_set_has_no_findings(tmp_path: Path) -> None:
    numbers = ["one", "two", "three", "four", "five"]
    clean = "\n".join(
        ["version: 1", "intents:"]
        + [
            f"  - name: {name}\n    examples: [{', '.join(f'{word} {n}' for n in numbers)}]"
            for name, word in (("alpha", "apple"), ("beta", "banana"), ("gamma", "cherry"))
        ]
    )
    (tmp_path / "a.yaml").write_text(clean + "\n")
    assert lint(Engine(serving_fake()), load_intents(tmp_path)) == []


def test_cli_json_and_strict(linted: Path, fake_model: list[Path]) -> None:
    code, out, _ = in_process("lint", "--intents", str(linted), "--json")
    assert code == 0
    findings = json.loads(out)["findings"]
    assert {"duplicate", "too_few", "out_of_scope_answered"} <= {f["kind"] for f in findings}
    code, out, _ = in_process("lint", "--intents", str(linted), "--strict")
    assert code == cli.LINT_FINDINGS_EXIT == 5
    assert "duplicate" in out
