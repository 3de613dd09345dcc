"""The regression gate: a new revision serves only if its figures on labelled data hold.

An optional ``gate.yaml`` beside the intents (in the intents directory, or beside a
single intents file; the intents loader never reads it as intents)::

    version: 1
    data: eval/val.jsonl          # labelled rows as `eval` reads them, relative to this file
    min:                          # each figure at least this
      in_scope_accuracy: 0.85
      unknown_recall: 0.70
    max_drop:                     # each figure at most this far below the serving revision's
      in_scope_accuracy: 0.02     # on the same data

At least one bound is required; figures are those of ``routing/scorecard.py``'s
``Scorecard`` (``FIGURES``), as fractions in [0, 1]. At each reload the candidate is
built, measured on the data through ``Engine.classify`` (the call the server answers
with), and compared (``verdict``); a bound that fails refuses the reload and the
serving revision stays. ``max_drop`` compares with the serving revision measured on the
same data; with nothing serving (start-up) it does not apply. Every problem of the
file or its data is a ``GateError`` naming ``file:line:column``, like an intents error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from router.errors import DataError, GateError, Problem
from router.limits import MAX_TEXT_CHARS
from router.routing.engine import BuildAbandoned, Engine, Snapshot
from router.routing.intents import GATE_FILE, UNKNOWN, IntentSet, YamlLoader
from router.routing.scorecard import FIGURES, Row, Scorecard, figures, load_labelled

__all__ = [
    "GATE_FILE",
    "MAX_DATA_BYTES",
    "MAX_ROW_CHARS",
    "Bound",
    "Gate",
    "GateResult",
    "Verdict",
    "check_labels",
    "gate_path",
    "load_gate",
    "measure",
    "verdict",
]

#: A gate's data file larger than this is refused unread (it is read at every reload).
MAX_DATA_BYTES = 16 * 1024 * 1024
#: A gate row longer than this is an error: the server refuses such texts from callers
#: (``serve --max-text-chars``' default), and measuring one costs memory at every reload.
MAX_ROW_CHARS = MAX_TEXT_CHARS
#: Two figures this close count as equal (0.92 - 0.02 is 0.9000000000000001).
_TOLERANCE = 1e-9
_KINDS = ("min", "max_drop")
_TOP_KEYS = frozenset({"version", "data", *_KINDS})
_BATCH = 64


@dataclass(frozen=True, slots=True)
class Bound:
    figure: str  # one of scorecard.FIGURES
    kind: str  # "min" or "max_drop"
    value: float
    at: str  # "file:line:column" of the value


@dataclass(frozen=True, slots=True)
class Gate:
    file: Path
    data: Path  # as resolved against the gate file's directory
    rows: tuple[Row, ...]
    bounds: tuple[Bound, ...]
    #: Names the data's bytes: a serving revision's figures are reused while it holds.
    digest: str


@dataclass(frozen=True, slots=True)
class GateResult:
    bound: Bound
    value: float | None  # the candidate's figure; None: not measurable on the data
    serving: float | None = None  # the serving revision's, for max_drop
    applies: bool = True  # max_drop with nothing serving does not

    @property
    def limit(self) -> float | None:
        """The lowest value that passes."""
        if self.bound.kind == "min":
            return self.bound.value
        return None if self.serving is None else self.serving - self.bound.value

    @property
    def passed(self) -> bool:
        if not self.applies:
            return True
        limit = self.limit
        if self.value is None or limit is None:
            return False
        return self.value >= limit - _TOLERANCE

    def _against(self) -> str:
        b = self.bound
        if b.kind == "min":
            return f"{b.value:.4f} (min)"
        serving = "unmeasurable" if self.serving is None else f"{self.serving:.4f}"
        limit = self.limit
        shown = "?" if limit is None else f"{limit:.4f}"
        return f"{shown} (serving {serving} - max_drop {b.value:.4f})"

    def __str__(self) -> str:
        """``in_scope_accuracy 0.9120 >= 0.9000 (min) ok``, one line per bound."""
        name = self.bound.figure
        if not self.applies:
            return f"{name}: max_drop {self.bound.value:.4f} not applied (nothing serving yet)"
        value = "unmeasurable" if self.value is None else f"{self.value:.4f}"
        return f"{name} {value} >= {self._against()} {'ok' if self.passed else 'FAILED'}"

    def error(self, data: str) -> str:
        """What refuses the reload: the bound's position, the figure and what it missed."""
        b = self.bound
        field = f"{b.kind}.{b.figure}"
        if self.value is None:
            return f"{b.at}: {field}: not measurable on {data} (no rows it counts)"
        return f"{b.at}: {field}: {self.value:.4f} is below {self._against()} on {data}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer for one candidate: every bound's result, and its figures."""

    results: tuple[GateResult, ...]
    figures: Scorecard
    data: str  # the data file, as the gate file names it

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(str(r) for r in self.results)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(r.error(self.data) for r in self.results if not r.passed)


def gate_path(intents: Path) -> Path:
    """Where the gate of ``intents`` (a directory or one file) is: ``GATE_FILE`` in the
    directory, or beside the file."""
    directory = intents if intents.is_dir() else intents.parent
    return directory / GATE_FILE


def load_gate(path: Path) -> Gate | None:
    """Read a gate file and its data; None when there is no such file.

    Raises ``GateError`` listing every problem (``file:line:column: field: message``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError([f"{path}: cannot read: {exc}"]) from exc
    problems: list[str] = []
    try:
        root = yaml.compose(text, Loader=YamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise GateError([f"{where}: malformed YAML: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise GateError([f"{path}: malformed YAML: {exc}"]) from exc
    if root is None:
        raise GateError([f"{path}: file is empty (or remove it: the gate is optional)"])
    at = _Positions(path)
    top = _mapping(root, "", _TOP_KEYS, at, problems)
    if top is None:
        raise GateError(problems)
    version = top.get("version")
    if version is None:
        problems.append(f"{at(root)}: version: required (use version: 1)")
    elif not (isinstance(version, ScalarNode) and version.value == "1"):
        problems.append(f"{at(version)}: version: unsupported; expected 1")
    bounds = [b for kind in _KINDS if kind in top for b in _bounds(top[kind], kind, at, problems)]
    if not bounds and not any(kind in top for kind in _KINDS):
        problems.append(f"{at(root)}: min: a gate needs bounds: min, max_drop or both")
    data: Path | None = None
    rows: list[Row] = []
    digest = ""
    node = top.get("data")
    if node is None:
        problems.append(f"{at(root)}: data: required: labelled rows (JSONL), as `eval` reads")
    elif not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str":
        problems.append(f"{at(node)}: data: must be a path (a string)")
    else:
        data = path.parent / str(node.value).strip()
        rows, digest = _data(data, node, at, problems)
    if problems:
        raise GateError(problems)
    assert data is not None
    _measurable(bounds, rows, at, problems)
    if problems:
        raise GateError(problems)
    return Gate(path, data, tuple(rows), tuple(bounds), digest)


class _Positions:
    def __init__(self, file: Path) -> None:
        self.file = file

    def __call__(self, node: Node) -> str:
        return f"{self.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _mapping(
    node: Node, field: str, allowed: frozenset[str], at: _Positions, problems: list[str]
) -> dict[str, Node] | None:
    prefix = f" {field}:" if field else ""
    if not isinstance(node, MappingNode):
        problems.append(f"{at(node)}:{prefix} must be a mapping")
        return None
    out: dict[str, Node] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) else None
        where = f"{field}.{name}" if field else str(name)
        if name is None:
            problems.append(f"{at(key)}:{prefix} keys must be plain strings")
        elif name in out:
            problems.append(f"{at(key)}: {where}: duplicate key")
        elif name not in allowed:
            problems.append(
                f"{at(key)}: {where}: unknown key (allowed: {', '.join(sorted(allowed))})"
            )
        else:
            out[name] = value
    return out


def _bounds(node: Node, kind: str, at: _Positions, problems: list[str]) -> list[Bound]:
    fields = _mapping(node, kind, frozenset(FIGURES), at, problems)
    if fields is None:
        return []
    if isinstance(node, MappingNode) and not node.value:
        problems.append(f"{at(node)}: {kind}: name at least one figure ({', '.join(FIGURES)})")
    bounds: list[Bound] = []
    for name, value in fields.items():
        number = _fraction(value)
        if number is None:
            problems.append(f"{at(value)}: {kind}.{name}: must be a number in [0, 1]")
        else:
            bounds.append(Bound(name, kind, number, at(value)))
    return bounds


def _fraction(node: Node) -> float | None:
    if not isinstance(node, ScalarNode) or node.tag not in (
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
    ):
        return None
    try:
        number = float(node.value)
    except ValueError:
        return None
    return number if 0.0 <= number <= 1.0 else None


def _data(path: Path, node: Node, at: _Positions, problems: list[str]) -> tuple[list[Row], str]:
    """The labelled rows of ``path`` and a digest of its bytes; problems located at the
    ``data:`` value (unreadable, too large) or at the data file's own lines."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        problems.append(f"{at(node)}: data: cannot read {path}: {exc.strerror or exc}")
        return [], ""
    if size > MAX_DATA_BYTES:
        problems.append(f"{at(node)}: data: {path} is over {MAX_DATA_BYTES:,} bytes: not read")
        return [], ""
    try:
        rows = load_labelled(path)
    except DataError as exc:
        problems.extend(str(p) for p in exc.problems)
        return [], ""
    long = [r for r in rows if len(r.text) > MAX_ROW_CHARS]
    if long:
        problems.extend(
            f"{path}:{r.line}: text: {len(r.text):,} characters, over the {MAX_ROW_CHARS:,} a "
            "caller may send (a gate measures what the server answers)"
            for r in long
        )
        return [], ""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return rows, digest


#: Figures that count only the in-scope rows, or only the out-of-scope ones.
_IN_SCOPE = frozenset({"in_scope_accuracy", "in_scope_top1"})
_OUT_OF_SCOPE = frozenset({"unknown_recall", "unknown_f1"})


def _measurable(
    bounds: Sequence[Bound], rows: Sequence[Row], at: _Positions, out: list[str]
) -> None:
    """A bound on a figure the data cannot measure is a mistake in the gate file."""
    unknown = sum(r.intent == UNKNOWN for r in rows)
    for b in bounds:
        if b.figure in _IN_SCOPE and unknown == len(rows):
            out.append(f"{b.at}: {b.kind}.{b.figure}: the data holds no in-scope rows")
        if b.figure in _OUT_OF_SCOPE and unknown == 0:
            out.append(f"{b.at}: {b.kind}.{b.figure}: the data holds no {UNKNOWN!r} rows")


def check_labels(gate: Gate, intents: IntentSet) -> None:
    """Every gold label of the gate's data must be an intent of ``intents`` or
    ``unknown`` (a removed or misspelt intent); ``GateError`` at the data's lines."""
    names = {i.name for i in intents.intents}
    wrong = [r for r in gate.rows if r.intent != UNKNOWN and r.intent not in names]
    if wrong:
        lines = [
            str(
                Problem(
                    str(gate.data),
                    r.line,
                    None,
                    "intent",
                    f"{r.intent!r} is neither an intent of these intents nor {UNKNOWN!r}",
                )
            )
            for r in wrong[:20]
        ]
        if len(wrong) > 20:
            lines.append(f"... and {len(wrong) - 20} more rows in {gate.data}")
        raise GateError(lines)


def measure(
    engine: Engine,
    snapshot: Snapshot,
    gate: Gate,
    abandoned: Callable[[], bool] | None = None,
) -> Scorecard:
    """``snapshot``'s figures on the gate's data, answered by ``Engine.classify`` as the
    server answers (``snapshot`` need not be serving). Runs the model: call it off the
    event loop. With ``abandoned``, ``BuildAbandoned`` is raised between two batches once
    it is true (a newer reload or a rollback supersedes this one)."""
    predicted: list[str] = []
    candidates: list[str] = []
    texts = [r.text for r in gate.rows]
    for begin in range(0, len(texts), _BATCH):
        if abandoned is not None and abandoned():
            raise BuildAbandoned(f"gate measurement abandoned after {begin} rows")
        result = engine.classify(texts[begin : begin + _BATCH], 1, snapshot=snapshot)
        predicted.extend(p.intent for p in result.predictions)
        candidates.extend(p.candidate for p in result.predictions)
    labels = [i.name for i in snapshot.intents.intents]
    card, _ = figures([r.intent for r in gate.rows], predicted, candidates, labels)
    return card


def verdict(gate: Gate, candidate: Scorecard, serving: Scorecard | None) -> Verdict:
    """Each bound of ``gate`` against the candidate's figures (and, for ``max_drop``, the
    serving revision's; None: nothing serves, those bounds do not apply)."""
    results = []
    for b in gate.bounds:
        value = candidate.get(b.figure)
        if b.kind == "min":
            results.append(GateResult(b, value))
        elif serving is None:
            results.append(GateResult(b, value, applies=False))
        else:
            results.append(GateResult(b, value, serving.get(b.figure)))
    data = (
        gate.data.relative_to(gate.file.parent)
        if gate.data.is_relative_to(gate.file.parent)
        else gate.data
    )
    return Verdict(tuple(results), candidate, f"{data} ({len(gate.rows)} rows)")
