"""Intents YAML: schema, validation with ``file:line:column: field: message``, merging.

One file, or a directory whose ``*.yaml``/``*.yml`` files (not hidden, not recursive) are
merged; ``gate.yaml`` (``GATE_FILE``) is the regression gate (``gate.py``), never intents.
The YAML is composed into nodes first, so every finding carries the position of the node
it is about; every problem in every file is reported at once.

    version: 1
    defaults:              # optional
      threshold: 0.5       # optional; score in [-1, 1]
      model: minilm        # optional; the model the file's thresholds were tuned with
      lexical_weight: 0    # optional; in [0, 1]: how much word overlap counts (index.py);
                           # the model's own when absent (use-multilingual: 0.5)
    out_of_scope:          # optional; sentences that are none of the intents (negatives)
      - what's the weather like
    negation:              # optional; extends the built-in lexicons (negation.py)
      enabled: true        # false switches negation handling off for this deployment
      cues: [nope]         # also contrast, refusal, filler
    intents:
      - name: request_refund          # [a-z0-9_]+, unique across files; "unknown" reserved
        description: ...              # optional
        threshold: 0.55               # optional per-intent override
        examples: [...]               # at least one non-blank string

Limits (``IntentsLimits``; ``serve`` flags in brackets) keep a hostile or mistaken edit
from taking the process's memory and the reload thread for minutes; each finding names
the file, and the line of the node that crossed the limit:

* a file over ``max_file_bytes`` (2 MiB) is not parsed at all [--max-file-bytes];
* YAML aliases (``*name``) beyond ``max_aliases`` (16) in one file are refused: an
  alias repeats a node without repeating its bytes, so it would defeat the size limit
  [--max-yaml-aliases];
* an example or ``out_of_scope`` sentence over ``max_example_chars`` (1,000; the
  encoder reads 256 tokens) [--max-example-chars];
* more than ``max_examples`` (50,000) examples and ``out_of_scope`` sentences in all
  files together [--max-examples]; more than ``max_intents`` (1,000) intents [--max-intents].
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from router.errors import IntentsError, Problem
from router.routing.blank import is_blank
from router.routing.negation import Lexicon, NegationSettings

__all__ = ["GATE_FILE", "UNKNOWN", "Intent", "IntentSet", "IntentsLimits", "load_intents"]

UNKNOWN = "unknown"
#: The regression gate's file in an intents directory (``routing/gate.py``): not intents.
GATE_FILE = "gate.yaml"
SUPPORTED_VERSION = 1
_NAME = re.compile(r"[a-z0-9_]+")
_Value = TypeVar("_Value")
_TOP_KEYS = frozenset({"version", "defaults", "negation", "out_of_scope", "intents"})
_NEGATION_KEYS = frozenset({"enabled", "cues", "contrast", "refusal", "filler"})
_DEFAULT_KEYS = frozenset({"threshold", "model", "lexical_weight"})
#: libyaml's loader composes about 15x faster (matters on reload); same nodes and marks.
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class YamlLoader(_SafeLoader):
    """``yaml.safe_load``'s loader (libyaml's when built), reading a number with an
    exponent and no dot ("1e-1", "5E3") as the float YAML 1.2 says it is: YAML 1.1, which
    PyYAML follows, leaves it a string. Quoted, it stays a string. The intents and the
    gate file read with it."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)
_INTENT_KEYS = frozenset({"name", "description", "threshold", "examples"})


@dataclass(frozen=True, slots=True)
class IntentsLimits:
    """What one load accepts (module doc). The defaults pass the bundled sets and CLINC150
    (15,000 examples in one 0.5 MB file, 150 intents) with room to spare."""

    max_file_bytes: int = 2 * 1024 * 1024
    max_examples: int = 50_000
    max_example_chars: int = 1_000
    max_intents: int = 1_000
    max_aliases: int = 16


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    description: str = ""
    threshold: float | None = None
    source: str = ""  # "file:line" of the intent's entry
    #: "file:line" of each example, in order (empty when not loaded from a file).
    example_sources: tuple[str, ...] = ()

    def example_source(self, index: int) -> str:
        """Where example ``index`` is written: its own line, else the intent's."""
        return self.example_sources[index] if index < len(self.example_sources) else self.source


@dataclass(frozen=True, slots=True)
class IntentSet:
    """Every intent of one load, in file order; immutable."""

    intents: tuple[Intent, ...]
    default_threshold: float | None
    files: tuple[str, ...]
    revision: str
    negation: NegationSettings = field(default_factory=NegationSettings)
    #: Examples of what is none of the intents (``out_of_scope:``, every file's, in order).
    out_of_scope: tuple[str, ...] = ()
    #: "file:line" of each ``out_of_scope`` sentence, in order.
    out_of_scope_sources: tuple[str, ...] = ()
    #: ``defaults.model``: the model the thresholds in these files were tuned with; None
    #: when the files do not say (their thresholds then apply to any model).
    threshold_model: str | None = None
    #: ``defaults.lexical_weight``; None: the model's own.
    lexical_weight: float | None = None

    def by_name(self, name: str) -> Intent | None:
        return next((i for i in self.intents if i.name == name), None)

    @property
    def example_count(self) -> int:
        return sum(len(i.examples) for i in self.intents)


def load_intents(path: Path | str, limits: IntentsLimits | None = None) -> IntentSet:
    """Load a file or a directory of intents; raise IntentsError listing every problem.

    ``limits`` (default ``IntentsLimits()``) bounds what is read; see the module doc.
    """
    path = Path(path)
    limits = limits if limits is not None else IntentsLimits()
    if path.is_dir():
        named = sorted(
            p
            for p in path.iterdir()
            if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.name != GATE_FILE
        )
        # a link to nothing (a ConfigMap key's target gone, a link loop) is a file the
        # operator meant: refusing it keeps its intents serving, skipping it drops them
        broken = [p for p in named if p.is_symlink() and not p.exists()]
        if broken:
            raise IntentsError(
                [Problem(str(p), None, None, "", "a link to nothing (a broken symlink)")
                 for p in broken]
            )  # fmt: skip
        files = [p for p in named if p.is_file()]
        if not files:
            raise IntentsError([Problem(str(path), None, None, "", "no *.yaml or *.yml files")])
    elif path.is_file():
        files = [path]
    else:
        raise IntentsError([Problem(str(path), None, None, "", "no such file or directory")])

    problems: list[Problem] = []
    intents: list[Intent] = []
    seen: dict[str, str] = {}
    default: tuple[float, str] | None = None
    lexicon = NegationSettings().lexicon
    enabled: tuple[bool, str] | None = None
    threshold_model: tuple[str, str] | None = None
    lexical_weight: tuple[float, str] | None = None
    out_of_scope: list[str] = []
    out_of_scope_sources: list[str] = []
    budget = _Budget(limits)
    for file in files:
        parsed = _parse_file(file, problems, budget)
        if parsed is None:
            continue
        file_default, file_intents = parsed.default, parsed.intents
        out_of_scope.extend(parsed.out_of_scope)
        out_of_scope_sources.extend(parsed.out_of_scope_sources)
        if parsed.negation is not None:
            lexicon = lexicon.extended(parsed.negation.lexicon)
            if parsed.negation.enabled is not None:
                if enabled is not None and enabled[0] != parsed.negation.enabled:
                    problems.append(
                        Problem(
                            *_split(parsed.negation.at),
                            "negation.enabled",
                            f"conflicts with {enabled[0]} set at {enabled[1]}",
                        )
                    )
                enabled = (parsed.negation.enabled, parsed.negation.at)
        default = _agreed(default, file_default, "defaults.threshold", problems)
        threshold_model = _agreed(
            threshold_model, parsed.threshold_model, "defaults.model", problems
        )
        lexical_weight = _agreed(
            lexical_weight, parsed.lexical_weight, "defaults.lexical_weight", problems
        )
        for intent, name_at in file_intents:
            if intent.name in seen:
                problems.append(
                    Problem(
                        *_split(name_at),
                        "name",
                        f"duplicate intent {intent.name!r} (first defined at {seen[intent.name]})",
                    )
                )
                continue
            seen[intent.name] = name_at
            intents.append(intent)
    if problems:
        raise IntentsError(problems)
    if not intents:
        raise IntentsError([Problem(str(path), None, None, "intents", "no intents defined")])
    default_threshold = default[0] if default else None
    negation = NegationSettings(enabled=enabled[0] if enabled else True, lexicon=lexicon)
    return IntentSet(
        intents=tuple(intents),
        default_threshold=default_threshold,
        files=tuple(str(f) for f in files),
        revision=_revision(
            intents,
            default_threshold,
            negation,
            out_of_scope,
            threshold_model[0] if threshold_model else None,
            lexical_weight=lexical_weight[0] if lexical_weight else None,
        ),
        negation=negation,
        out_of_scope=tuple(out_of_scope),
        out_of_scope_sources=tuple(out_of_scope_sources),
        threshold_model=threshold_model[0] if threshold_model else None,
        lexical_weight=lexical_weight[0] if lexical_weight else None,
    )


def _agreed(
    kept: tuple[_Value, str] | None,
    found: tuple[_Value, str] | None,
    field: str,
    problems: list[Problem],
) -> tuple[_Value, str] | None:
    """A ``defaults`` value several files may set, with where it was set: the first one;
    a later file setting another is a problem naming both places."""
    if found is None:
        return kept
    if kept is not None and kept[0] != found[0]:
        problems.append(
            Problem(*_split(found[1]), field, f"conflicts with {kept[0]} set at {kept[1]}")
        )
        return kept
    return found


def _revision(
    intents: list[Intent],
    default_threshold: float | None,
    negation: NegationSettings,
    out_of_scope: list[str],
    threshold_model: str | None,
    *,
    lexical_weight: float | None = None,
) -> str:
    canonical = json.dumps(
        {
            "negation": negation.key(),
            "default_threshold": default_threshold,
            **({"threshold_model": threshold_model} if threshold_model else {}),
            **({"lexical_weight": lexical_weight} if lexical_weight is not None else {}),
            "intents": [[i.name, i.threshold, list(i.examples)] for i in intents],
            **({"out_of_scope": out_of_scope} if out_of_scope else {}),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _split(where: str) -> tuple[str, int | None, int | None]:
    file, _, rest = where.partition(":")
    line, _, col = rest.partition(":")
    return file, int(line) if line else None, int(col) if col else None


class _Budget:
    """What the files read so far have used of ``IntentsLimits``' totals."""

    def __init__(self, limits: IntentsLimits) -> None:
        self.limits = limits
        self.examples = 0
        self.intents = 0
        self.reported: set[str] = set()  # each total is reported once, where it is crossed


class _Checker:
    """Walks the composed YAML of one file, collecting problems with positions."""

    def __init__(self, file: Path, problems: list[Problem], budget: _Budget) -> None:
        self.file = str(file)
        self.problems = problems
        self.budget = budget
        self.limits = budget.limits

    def at(self, node: Node) -> str:
        return f"{self.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def error(self, node: Node | None, field: str, message: str) -> None:
        if node is None:
            self.problems.append(Problem(self.file, None, None, field, message))
        else:
            self.problems.append(
                Problem(
                    self.file,
                    node.start_mark.line + 1,
                    node.start_mark.column + 1,
                    field,
                    message,
                )
            )

    def mapping(self, node: Node, field: str, allowed: frozenset[str]) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.error(node, field, f"must be a mapping, not {_kind(node)}")
            return None
        out: dict[str, Node] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            where = f"{field}.{name}" if field else str(name)
            if name is None:
                self.error(key, field, "keys must be plain strings")
            elif name in out:
                self.error(key, where, "duplicate key")
            elif name not in allowed:
                self.error(key, where, f"unknown key (allowed: {', '.join(sorted(allowed))})")
            else:
                out[name] = value
        return out

    def string(self, node: Node, field: str, *, allow_blank: bool = False) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.error(node, field, f"must be a string, not {_kind(node)}")
            return None
        text = str(node.value)
        if not allow_blank and is_blank(text):
            self.error(node, field, "must not be blank")
            return None
        return text

    def scalar(self, node: Node, field: str) -> object:
        """The node's value as yaml.safe_load builds it; ``_UNREADABLE`` (and a problem)
        when its tag cannot be built: ``!!int 'zz'``, ``!!python/name:...``."""
        try:
            return _scalar(node)
        except Exception as exc:  # yaml constructors raise anything: ValueError, KeyError, ...
            reason = str(exc).splitlines()[0]
            self.error(node, field, f"cannot be read as {_kind(node)} ({reason})")
            return _UNREADABLE

    def threshold(self, node: Node, field: str) -> float | None:
        """A score in [-1, 1]."""
        return self.number(node, field, -1.0, 1.0)

    def weight(self, node: Node, field: str) -> float | None:
        """A number in [0, 1]."""
        return self.number(node, field, 0.0, 1.0)

    def number(self, node: Node, field: str, low: float, high: float) -> float | None:
        """A number in [low, high]; None (and a problem) otherwise."""
        bounds = f"[{low:g}, {high:g}]"
        value = self.scalar(node, field)
        if value is _UNREADABLE:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(node, field, f"must be a number in {bounds}, not {_kind(node)}")
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            self.error(
                node, field, f"must be in {bounds}, got a number of {len(str(value))} digits"
            )
            return None
        if math.isnan(number) or not low <= number <= high:
            self.error(node, field, f"must be in {bounds}, got {value}")
            return None
        return number

    def example(self, node: Node, field: str) -> str | None:
        """An example or out_of_scope sentence: a non-blank string within the limits."""
        text = self.string(node, field)
        if text is None:
            return None
        text = text.strip()
        limit = self.limits.max_example_chars
        if len(text) > limit:
            self.error(node, field, f"{len(text):,} characters, over the limit of {limit:,}")
            return None
        self.budget.examples += 1
        self.over_total(node, field, "examples", self.budget.examples, self.limits.max_examples)
        return text

    def over_total(self, node: Node, field: str, what: str, count: int, limit: int) -> None:
        """Report, once per load, the node that takes a total over its limit."""
        if count > limit and what not in self.budget.reported:
            self.budget.reported.add(what)
            self.error(node, field, f"more than {limit:,} {what} in all files (the limit)")


#: What ``_Checker.scalar`` gives for a node whose tag cannot be built (already reported).
_UNREADABLE = object()


def _scalar(node: Node) -> object:
    """The Python value of a scalar node, as yaml.safe_load would build it."""
    if not isinstance(node, ScalarNode):
        return node
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    return {"str": "a string", "null": "empty", "bool": "a boolean"}.get(tag, f"a {tag}")


@dataclass(frozen=True, slots=True)
class _Negation:
    enabled: bool | None
    lexicon: Lexicon
    at: str


@dataclass(frozen=True, slots=True)
class _File:
    default: tuple[float, str] | None
    negation: _Negation | None
    intents: list[tuple[Intent, str]]
    out_of_scope: list[str] = field(default_factory=list)
    threshold_model: tuple[str, str] | None = None  # (value, file:line:col)
    lexical_weight: tuple[float, str] | None = None  # (value, file:line:col)
    out_of_scope_sources: list[str] = field(default_factory=list)  # file:line:col of each


def _parse_file(file: Path, problems: list[Problem], budget: _Budget) -> _File | None:
    check = _Checker(file, problems, budget)
    limit = budget.limits.max_file_bytes
    try:
        with file.open("rb") as stream:
            data = stream.read(limit + 1)  # never more than the limit: the file may be huge
        if len(data) > limit:
            check.error(None, "", f"file is over the limit of {limit:,} bytes: not read")
            return None
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        check.error(None, "", f"cannot read: {exc}")
        return None
    try:
        if "*" in text and not _aliases_within(check, text):
            return None
        root = yaml.compose(text, Loader=YamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problems.append(Problem(str(file), line, col, "", f"malformed YAML: {exc.problem}"))
        return None
    except yaml.YAMLError as exc:
        check.error(None, "", f"malformed YAML: {exc}")
        return None
    if root is None:
        check.error(None, "", "file is empty")
        return None
    top = check.mapping(root, "", _TOP_KEYS)
    if top is None:
        return None

    if "version" not in top:
        check.error(root, "version", f"required (use version: {SUPPORTED_VERSION})")
    elif (version := check.scalar(top["version"], "version")) is not _UNREADABLE and (
        version != SUPPORTED_VERSION
    ):
        check.error(top["version"], "version", f"unsupported; expected {SUPPORTED_VERSION}")

    default: tuple[float, str] | None = None
    threshold_model: tuple[str, str] | None = None
    lexical_weight: tuple[float, str] | None = None
    negation = _parse_negation(check, top["negation"]) if "negation" in top else None
    if "defaults" in top:
        defaults = check.mapping(top["defaults"], "defaults", _DEFAULT_KEYS)
        if defaults and "threshold" in defaults:
            value = check.threshold(defaults["threshold"], "defaults.threshold")
            if value is not None:
                default = (value, check.at(defaults["threshold"]))
        if defaults and "model" in defaults:
            model = check.string(defaults["model"], "defaults.model")
            if model is not None:
                threshold_model = (model.strip(), check.at(defaults["model"]))
        if defaults and "lexical_weight" in defaults:
            weight = check.weight(defaults["lexical_weight"], "defaults.lexical_weight")
            if weight is not None:
                lexical_weight = (weight, check.at(defaults["lexical_weight"]))

    out_of_scope: list[str] = []
    out_of_scope_at: list[str] = []
    if "out_of_scope" in top:
        negatives = top["out_of_scope"]
        if not isinstance(negatives, SequenceNode):
            check.error(
                negatives, "out_of_scope", f"must be a list of strings, not {_kind(negatives)}"
            )
        else:
            for i, item in enumerate(negatives.value):
                sentence = check.example(item, f"out_of_scope[{i}]")
                if sentence is not None:
                    out_of_scope.append(sentence)
                    out_of_scope_at.append(check.at(item))

    intents: list[tuple[Intent, str]] = []
    seq = top.get("intents")
    if seq is None:
        check.error(root, "intents", "required: a list of intents")
    elif not isinstance(seq, SequenceNode):
        check.error(seq, "intents", f"must be a list, not {_kind(seq)}")
    else:
        if not seq.value:
            check.error(seq, "intents", "must not be empty")
        for index, item in enumerate(seq.value):
            check.budget.intents += 1
            limit = check.limits.max_intents
            check.over_total(item, f"intents[{index}]", "intents", check.budget.intents, limit)
            parsed = _parse_intent(check, item, f"intents[{index}]")
            if parsed is not None:
                intents.append(parsed)
    return _File(
        default,
        negation,
        intents,
        out_of_scope,
        threshold_model,
        lexical_weight,
        out_of_scope_sources=out_of_scope_at,
    )


def _parse_negation(check: _Checker, node: Node) -> _Negation | None:
    fields = check.mapping(node, "negation", _NEGATION_KEYS)
    if fields is None:
        return None
    enabled: bool | None = None
    if "enabled" in fields:
        value = check.scalar(fields["enabled"], "negation.enabled")
        if isinstance(value, bool):
            enabled = value
        elif value is not _UNREADABLE:
            check.error(fields["enabled"], "negation.enabled", "must be true or false")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("cues", "contrast", "refusal", "filler"):
        if key not in fields:
            continue
        seq = fields[key]
        if not isinstance(seq, SequenceNode):
            check.error(seq, f"negation.{key}", f"must be a list of strings, not {_kind(seq)}")
            continue
        words = [check.string(item, f"negation.{key}[{i}]") for i, item in enumerate(seq.value)]
        lists[key] = tuple(w.strip().lower() for w in words if w is not None)
    return _Negation(enabled, Lexicon(**lists), check.at(node))


def _parse_intent(check: _Checker, node: Node, field: str) -> tuple[Intent, str] | None:
    fields = check.mapping(node, field, _INTENT_KEYS)
    if fields is None:
        return None
    ok = True
    name: str | None = None
    if "name" not in fields:
        check.error(node, f"{field}.name", "required")
        ok = False
    else:
        name = check.string(fields["name"], f"{field}.name")
        if name is None:
            ok = False
        elif not _NAME.fullmatch(name):
            check.error(fields["name"], f"{field}.name", f"{name!r} must match [a-z0-9_]+")
            ok = False
        elif name == UNKNOWN:
            check.error(fields["name"], f"{field}.name", f"{UNKNOWN!r} is reserved")
            ok = False
    description = ""
    if "description" in fields:
        description = (
            check.string(fields["description"], f"{field}.description", allow_blank=True) or ""
        )
    threshold: float | None = None
    if "threshold" in fields:
        threshold = check.threshold(fields["threshold"], f"{field}.threshold")
        ok = ok and threshold is not None
    examples = list(_examples(check, fields, node, f"{field}.examples"))
    ok = ok and bool(examples) and all(text is not None for text, _ in examples)
    if not ok or name is None:
        return None
    return (
        Intent(
            name=name,
            examples=tuple(text for text, _ in examples if text is not None),
            example_sources=tuple(at for text, at in examples if text is not None),
            description=description.strip(),
            threshold=threshold,
            source=check.at(node),
        ),
        check.at(fields["name"]),
    )


def _examples(
    check: _Checker, fields: dict[str, Node], node: Node, field: str
) -> Iterator[tuple[str | None, str]]:
    """Each example (None when invalid) and where it is written."""
    if "examples" not in fields:
        check.error(node, field, "required: a list of at least one example")
        return
    seq = fields["examples"]
    if not isinstance(seq, SequenceNode):
        check.error(seq, field, f"must be a list of strings, not {_kind(seq)}")
        return
    if not seq.value:
        check.error(seq, field, "must not be empty")
        return
    for index, item in enumerate(seq.value):
        yield check.example(item, f"{field}[{index}]"), check.at(item)


def _aliases_within(check: _Checker, text: str) -> bool:
    """False (and a problem at the first alias too many) when ``text`` holds more YAML
    aliases than the limit. Parsing stops there: what it would expand is never built."""
    limit = check.limits.max_aliases
    count = 0
    for event in yaml.parse(text, Loader=YamlLoader):
        if isinstance(event, yaml.AliasEvent):
            count += 1
            if count > limit:
                mark = event.start_mark
                check.problems.append(
                    Problem(
                        check.file,
                        mark.line + 1 if mark else None,
                        mark.column + 1 if mark else None,
                        "",
                        f"more than {limit} YAML aliases (*{event.anchor}) in one file "
                        "(the limit: an alias repeats a node without its bytes)",
                    )
                )
                return False
    return True
