"""Choosing thresholds on labelled validation data, and writing them to the intents YAML.

Pure numpy on (gold, best candidate, score) triples taken from the engine's predictions,
so a chosen threshold has the meaning the engine gives it (its scale is the scoring's).

Objectives (``Objective``). The first three pick, among the swept thresholds that
satisfy them, the one with the most correct rows (``unknown`` counted as a label), and
among equally good thresholds the middle of the widest run of them (the choice least
sensitive to a small shift of scores):

* ``accuracy``: no constraint;
* ``unknown-precision``: at least ``target`` of the ``unknown`` answers are out of scope;
* ``in-scope-precision``: at least ``target`` of the answers naming an intent are right.

* ``answer-rate`` picks the highest threshold that still answers at least ``target`` of
  the in-scope rows with an intent (right or wrong): of the thresholds that keep that
  promise to users, the one that refuses the most out-of-scope rows (ARCHITECTURE.md,
  "Threshold semantics and tune objectives").

Per-intent thresholds: an intent whose threshold decides ``min_rows`` rows or more (rows
where it is the gold label or the best candidate) gets the best threshold on the rows it
is the candidate of, shrunk toward the default by ``prior_rows`` pseudo-rows:
``(n * own + prior_rows * default) / (n + prior_rows)``. It keeps it only if that is
strictly better than the default on those rows; otherwise it uses the default (with
``answer-rate``, "best" is the highest threshold answering the target share of its
in-scope rows; "better" is still more rows right). With a constrained objective, each
intent's rows must satisfy the target on their own (so the pooled figure does too) and,
should the pooled check still fail, the least useful per-intent thresholds are dropped
until it holds.
"""

from __future__ import annotations

import enum
import io
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from router.errors import TuningError
from router.extras import require
from router.quality.evaluate import (
    SweepPoint,
    grid_decimals,
    metrics_at,
    round_threshold,
    sweep,
    threshold_grid,
)
from router.routing.intents import IntentSet, load_intents

__all__ = [
    "IntentChoice",
    "Objective",
    "Tuning",
    "choose",
    "tune",
    "write_thresholds",
]

log = logging.getLogger(__name__)

MIN_ROWS = 8
PRIOR_ROWS = 8


class Objective(enum.StrEnum):
    BALANCED = "balanced"
    ACCURACY = "accuracy"
    UNKNOWN_PRECISION = "unknown-precision"
    IN_SCOPE_PRECISION = "in-scope-precision"
    ANSWER_RATE = "answer-rate"


#: The target each objective takes by default: a precision, an answer rate, or for
#: ``balanced`` the share of out-of-scope traffic to weigh (a fifth, as in the bundled sets).
DEFAULT_TARGET = {
    Objective.BALANCED: 0.2,
    Objective.ACCURACY: 0.0,
    Objective.UNKNOWN_PRECISION: 0.9,
    Objective.IN_SCOPE_PRECISION: 0.9,
    Objective.ANSWER_RATE: 0.98,
}
#: The SweepPoint field each constrained objective holds to its target.
_MEASURE = {
    Objective.UNKNOWN_PRECISION: "unknown_precision",
    Objective.IN_SCOPE_PRECISION: "in_scope_precision",
    Objective.ANSWER_RATE: "in_scope_answered",
}


def _feasible(
    point: SweepPoint, objective: Objective, target: float, *, vacuous: bool = False
) -> bool:
    """Whether ``point`` meets the objective's constraint. A precision with no answers
    to measure is undefined: it passes only when ``vacuous`` (one intent's share of a
    pooled precision), never for the whole data."""
    if objective in (Objective.ACCURACY, Objective.BALANCED):
        return True
    value = getattr(point, _MEASURE[objective])
    return vacuous if value is None else bool(value >= target)


def choose(
    points: Sequence[SweepPoint],
    objective: Objective,
    target: float = 0.9,
    *,
    prefer: float | None = None,
    vacuous: bool = False,
) -> int:
    """Index of the chosen point: most correct rows among those meeting the objective
    (``balanced``: the highest mean of in-scope accuracy and unknown recall), the middle
    of the widest run of such points (ties: nearest ``prefer``, else lowest); for
    ``answer-rate``, the last point (``points`` ascend in threshold) meeting it.
    Raises TuningError when no point meets it."""
    feasible = [_feasible(p, objective, target, vacuous=vacuous) for p in points]
    if not any(feasible):
        raise TuningError(_infeasible_message(points, objective, target))
    if objective is Objective.ANSWER_RATE:
        return max(i for i, ok in enumerate(feasible) if ok)
    merit = _merit_of(points, objective, target)
    correct = np.array([m if ok else -1.0 for m, ok in zip(merit, feasible, strict=True)])
    best = correct == correct.max()
    edges = np.diff(np.concatenate([[0], best.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # [start, stop)
    runs = [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]

    def rank(run: tuple[int, int]) -> tuple[int, float, int]:
        middle = (run[0] + run[1] - 1) // 2
        distance = 0.0 if prefer is None else abs(points[middle].threshold - prefer)
        return (-(run[1] - run[0]), distance, run[0])

    start, stop = min(runs, key=rank)
    return (start + stop - 1) // 2


def _merit_of(points: Sequence[SweepPoint], objective: Objective, share: float) -> list[float]:
    """What ``choose`` maximises at each point: correct rows, or for ``balanced``
    ``(1 - share) x in-scope accuracy + share x unknown recall``: accuracy as if
    out-of-scope rows made up ``share`` of the traffic, whatever their share in the
    validation data (without both kinds of rows, it is accuracy)."""
    if objective is Objective.BALANCED and all(
        p.in_scope_accuracy is not None and p.unknown_recall is not None for p in points
    ):
        return [
            round(
                (1 - share) * (p.in_scope_accuracy or 0.0) + share * (p.unknown_recall or 0.0), 12
            )
            for p in points
        ]
    return [float(p.correct) for p in points]


def _infeasible_message(points: Sequence[SweepPoint], objective: Objective, target: float) -> str:
    attr = _MEASURE[objective]
    values = [(getattr(p, attr), p.threshold) for p in points if getattr(p, attr) is not None]
    if not values:
        if objective is Objective.ANSWER_RATE:
            return f"the data has no in-scope rows to measure {objective} on"
        return f"no threshold gives any answer to measure {objective} on"
    best, at = max(values)
    return (
        f"no threshold reaches {objective} >= {target:g} on this data "
        f"(the best is {best:.3f}, at threshold {at:g})"
    )


@dataclass(frozen=True, slots=True)
class IntentChoice:
    """What per-intent tuning found for one intent with enough rows."""

    name: str
    rows: int  # rows with this intent as the best candidate (its threshold decides them)
    support: int  # rows where it is the gold label or the best candidate
    raw: float  # the best threshold on its own rows, before shrinking
    shrunk: float  # raw shrunk toward the default
    correct_default: int  # correct among its rows with the default threshold
    correct_own: int  # ... with the shrunk threshold
    kept: bool  # True when it gets its own threshold

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "name"}


@dataclass(frozen=True, slots=True)
class Tuning:
    objective: Objective
    target: float
    default: float  # the chosen default threshold
    per_intent: dict[str, float] | None  # None: per-intent thresholds were not tuned
    kept: dict[str, float]  # intents' own thresholds left as they are (no --per-intent)
    intents: tuple[IntentChoice, ...]  # intents with enough rows (per-intent tuning)
    curve: list[SweepPoint]  # the default threshold swept, ``kept`` applied
    chosen: SweepPoint  # the curve at ``default``
    result: SweepPoint  # with ``default`` and ``per_intent`` (what eval will report)

    def to_json(self) -> dict[str, object]:
        return {
            "objective": str(self.objective),
            "target": None if self.objective is Objective.ACCURACY else self.target,
            "threshold": self.default,
            "per_intent": self.per_intent,
            "kept_thresholds": self.kept,
            "intents": {c.name: c.to_json() for c in self.intents},
            "chosen": self.chosen.to_json(),
            "result": self.result.to_json(),
            "curve": [p.to_json() for p in self.curve],
        }


def tune(
    gold: Sequence[str],
    candidates: Sequence[str],
    scores: Sequence[float] | npt.NDArray[np.floating],
    *,
    objective: Objective = Objective.BALANCED,
    target: float = 0.2,
    per_intent: bool = False,
    own_thresholds: Mapping[str, float] | None = None,
    min_rows: int = MIN_ROWS,
    prior_rows: int = PRIOR_ROWS,
) -> Tuning:
    """Choose the default threshold (and, with ``per_intent``, intents' own).

    Without ``per_intent``, ``own_thresholds`` (the intents' current ones) stay in force
    and the default is chosen with them applied; with it, they are replaced."""
    g = np.array(list(gold), dtype=np.str_)
    c = np.array(list(candidates), dtype=np.str_)
    s = np.asarray(scores, dtype=np.float32)
    grid = threshold_grid(s)
    decimals = grid_decimals(s)
    kept = {} if per_intent else dict(own_thresholds or {})
    curve = sweep(g, c, s, grid, kept)
    chosen_at = choose(curve, objective, target)
    default = float(grid[chosen_at])
    if not per_intent:
        return Tuning(
            objective=objective,
            target=target,
            default=default,
            per_intent=None,
            kept=kept,
            intents=(),
            curve=curve,
            chosen=curve[chosen_at],
            result=curve[chosen_at],
        )

    choices: list[IntentChoice] = []
    own: dict[str, float] = {}
    gains: dict[str, int] = {}
    for name in sorted(set(c.tolist())):
        mine = c == name
        support = int((mine | (g == name)).sum())
        if support < min_rows:
            continue
        local = sweep(g[mine], c[mine], s[mine], grid)
        try:
            best = choose(local, objective, target, prefer=default, vacuous=True)
        except TuningError:
            continue
        n = int(mine.sum())
        raw = float(grid[best])
        shrunk = round_threshold((n * raw + prior_rows * default) / (n + prior_rows), decimals)
        at_default, at_own = sweep(g[mine], c[mine], s[mine], [default, shrunk])
        better = _feasible(at_own, objective, target, vacuous=True) and (
            at_own.correct > at_default.correct
        )
        if better:
            own[name] = shrunk
            gains[name] = at_own.correct - at_default.correct
        choices.append(
            IntentChoice(
                name=name,
                rows=n,
                support=support,
                raw=raw,
                shrunk=shrunk,
                correct_default=at_default.correct,
                correct_own=at_own.correct,
                kept=better,
            )
        )
    result = metrics_at(g, c, s, default, own)
    while own and not _feasible(result, objective, target):
        drop = min(own, key=lambda name: (gains[name], name))
        log.info("dropping %s's own threshold: the pooled %s fails", drop, objective)
        del own[drop]
        result = metrics_at(g, c, s, default, own)
    choices = [
        choice if choice.name in own or not choice.kept else replace(choice, kept=False)
        for choice in choices
    ]
    return Tuning(
        objective=objective,
        target=target,
        default=default,
        per_intent=own,
        kept={},
        intents=tuple(choices),
        curve=curve,
        chosen=curve[chosen_at],
        result=result,
    )


# ---------------------------------------------------------------------- writing YAML

#: (mapping, sequence, offset) layouts tried, in order, for a faithful round trip.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 4, 0), (3, 3, 0))


def _yaml(layout: tuple[int, int, int]) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never re-wrap long examples
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: Any, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _load_round_trip(path: Path, text: str) -> tuple[Any, Any]:
    """The YAML instance whose layout reproduces ``text`` unchanged, and the document."""
    for layout in _LAYOUTS:
        yaml = _yaml(layout)
        data = yaml.load(text)
        if _dump(yaml, data) == text:
            return yaml, data
    from ruamel.yaml.util import load_yaml_guess_indent

    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    yaml = _yaml((indent, indent, block_seq_indent or 0))
    log.warning("%s: its layout may change where thresholds are written", path)
    return yaml, yaml.load(text)


def _number(yaml: Any, value: float) -> Any:
    """``value`` as a YAML float scalar in plain decimal notation ("0.4123", never
    "1e-05", which PyYAML would read as a string)."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{value:.12f}".rstrip("0")
        text = text + "0" if text.endswith(".") else text
    return yaml.load(f"v: {text}\n")["v"]


def _set_after(mapping: Any, key: str, value: Any, after: Sequence[str]) -> None:
    """Set ``key``; a new key goes right after the last of ``after`` present (or first)."""
    if key in mapping:
        mapping[key] = value
        return
    keys = list(mapping.keys())
    position = max((keys.index(k) + 1 for k in after if k in keys), default=0)
    mapping.insert(position, key, value)


def _delete(mapping: Any, key: str) -> None:
    """Delete ``key``, keeping whole-line comments that followed it (they belong to what
    comes next) by handing them to the previous key."""
    keys = list(mapping.keys())
    at = keys.index(key)
    comment = mapping.ca.items.get(key)
    del mapping[key]
    tokens = [t for t in (comment or [])[2:3] if t is not None]
    if not tokens or at == 0:
        return
    value = tokens[0].value
    newline = value.find("\n")
    following = value[newline + 1 :] if newline >= 0 else ""
    if not following.strip():
        return
    previous = keys[at - 1]
    if previous in mapping.ca.items and mapping.ca.items[previous][2] is not None:
        token = mapping.ca.items[previous][2]
        token.value = token.value + following
    else:
        from ruamel.yaml.error import CommentMark
        from ruamel.yaml.tokens import CommentToken

        token = CommentToken("\n" + following, CommentMark(0), None)
        entry = mapping.ca.items.setdefault(previous, [None, None, None, None])
        entry[2] = token


def write_thresholds(
    intents: IntentSet,
    default: float,
    per_intent: Mapping[str, float] | None,
    model: str | None = None,
) -> list[Path]:
    """Record thresholds in the intents' YAML files, keeping comments, order and layout.

    ``defaults.threshold`` is set in every file that has a ``defaults`` block (files must
    agree), or added to the first file when none has one; ``defaults.model`` records
    ``model``, the model they were tuned with (a threshold belongs to its model). With
    ``per_intent`` (not None), each named intent gets ``threshold:`` in the file that
    defines it and every other intent loses its own; with None, intents' own thresholds
    are left alone, unless they were recorded for another model: then they are removed.
    Needs the ``eval`` extra (ruamel.yaml).
    Returns the files that changed. The result is loaded back and checked; on any
    mismatch the files are restored and RuntimeError is raised."""
    require("eval", "tune --write", "ruamel.yaml")
    if per_intent is None and model is not None and intents.threshold_model not in (None, model):
        log.warning(
            "the intents' own thresholds were tuned for %s, not %s: removed",
            intents.threshold_model,
            model,
        )
        per_intent = {}
    files = [Path(f) for f in intents.files]
    if per_intent is not None:
        missing = sorted(set(per_intent) - {i.name for i in intents.intents})
        if missing:
            raise ValueError(f"no such intents: {', '.join(missing)}")
    originals: dict[Path, bytes] = {f: f.read_bytes() for f in files}
    docs: dict[Path, tuple[Any, Any]] = {}
    for f in files:
        text = originals[f].decode("utf-8").replace("\r\n", "\n")
        docs[f] = _load_round_trip(f, text)

    with_defaults = [f for f in files if "defaults" in docs[f][1]]
    for f in with_defaults or files[:1]:
        yaml, data = docs[f]
        block = data.get("defaults")
        if block is None:
            from ruamel.yaml.comments import CommentedMap

            block = CommentedMap()
            _set_after(data, "defaults", block, ["version"])
        block["threshold"] = _number(yaml, default)
        if model is not None:
            _set_after(block, "model", model, ["threshold"])

    if per_intent is not None:
        by_file = {str(f): f for f in files}
        for intent in intents.intents:
            f = by_file[intent.source.rsplit(":", 2)[0]]
            yaml, data = docs[f]
            item = next(i for i in data["intents"] if i.get("name") == intent.name)
            if intent.name in per_intent:
                value = _number(yaml, per_intent[intent.name])
                _set_after(item, "threshold", value, ["name", "description"])
            elif "threshold" in item:
                _delete(item, "threshold")

    changed: list[Path] = []
    for f in files:
        yaml, data = docs[f]
        text = _dump(yaml, data)
        if "\r\n" in originals[f].decode("utf-8"):
            text = text.replace("\n", "\r\n")
        if text.encode("utf-8") != originals[f]:
            _atomic_write(f, text)
            changed.append(f)

    try:
        _verify(intents, files, default, per_intent, model=model)
    except Exception:
        for f in changed:
            _atomic_write(f, originals[f].decode("utf-8"))
        raise
    return changed


def _verify(
    before: IntentSet,
    files: list[Path],
    default: float,
    per_intent: Mapping[str, float] | None,
    *,
    model: str | None,
) -> None:
    after = load_intents(files[0] if len(files) == 1 else files[0].parent)
    if after.default_threshold != default:
        raise RuntimeError(
            f"wrote defaults.threshold {default} but read back {after.default_threshold}"
        )
    if model is not None and after.threshold_model != model:
        raise RuntimeError(f"wrote defaults.model {model} but read back {after.threshold_model}")
    for intent in before.intents:
        now = after.by_name(intent.name)
        expected = intent.threshold if per_intent is None else per_intent.get(intent.name)
        if now is None or now.threshold != expected or now.examples != intent.examples:
            got = None if now is None else now.threshold
            raise RuntimeError(f"{intent.name}: expected threshold {expected}, read back {got}")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
