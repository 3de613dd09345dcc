"""Intents YAML: the schema, exactly, with file:line:column errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.errors import IntentsError
from router.routing.intents import IntentsLimits, load_intents

GOOD = """\
version: 1
defaults:
  threshold: 0.5
intents:
  - name: request_refund
    description: Customer wants money back
    threshold: 0.55
    examples:
      - I want a refund
      - How do I get my money back?
  - name: track_delivery
    examples: [where is my parcel]
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    return [str(p) for p in info.value.problems]


def test_good_file_loads(write) -> None:
    intents = load_intents(write("a.yaml", GOOD))
    assert [i.name for i in intents.intents] == ["request_refund", "track_delivery"]
    assert intents.default_threshold == 0.5
    assert intents.intents[0].threshold == 0.55
    assert intents.intents[1].threshold is None
    assert intents.intents[0].examples == ("I want a refund", "How do I get my money back?")
    assert intents.intents[0].description == "Customer wants money back"
    assert len(intents.revision) == 12


def test_revision_follows_content_not_layout(write) -> None:
    a = load_intents(write("a.yaml", GOOD))
    b = load_intents(write("b.yaml", "# a comment\n" + GOOD))
    c = load_intents(write("c.yaml", GOOD.replace("money back?", "money back")))
    assert a.revision == b.revision
    assert a.revision != c.revision


def test_zero_threshold_is_a_threshold_not_missing(write) -> None:
    intents = load_intents(write("a.yaml", GOOD.replace("threshold: 0.55", "threshold: 0")))
    assert intents.intents[0].threshold == 0.0


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            (
                "    examples:\n      - I want a refund\n      - How do I get my money back?\n",
                "    examples: []\n",
            ),
            "a.yaml:8:15: intents[0].examples: must not be empty",
        ),
        (
            ("      - I want a refund\n", "      - '   '\n"),
            "a.yaml:9:9: intents[0].examples[0]: must not be blank",
        ),
        (
            ("      - I want a refund\n", '      - "\\u200b\\u2060 \\ufeff"\n'),
            "a.yaml:9:9: intents[0].examples[0]: must not be blank",
        ),
        (
            ("    description:", "    colour: red\n    description:"),
            "a.yaml:6:5: intents[0].colour: unknown key",
        ),
        (
            ("threshold: 0.55", "threshold: 1.5"),
            "a.yaml:7:16: intents[0].threshold: must be in [-1, 1]",
        ),
        (
            ("threshold: 0.55", "threshold: high"),
            "a.yaml:7:16: intents[0].threshold: must be a number",
        ),
        (
            ("threshold: 0.5\n", "threshold: .nan\n"),
            "a.yaml:3:14: defaults.threshold: must be in [-1, 1]",
        ),
        (
            ("name: request_refund", "name: Request-Refund"),
            "a.yaml:5:11: intents[0].name: 'Request-Refund' must match",
        ),
        (
            ("name: request_refund", "name: unknown"),
            "a.yaml:5:11: intents[0].name: 'unknown' is reserved",
        ),
        (("version: 1", "version: 2"), "a.yaml:1:10: version: unsupported"),
        (("version: 1\n", ""), "a.yaml:1:1: version: required"),
        (
            ("name: track_delivery", "name: request_refund"),
            "a.yaml:11:11: name: duplicate intent 'request_refund' (first defined at",
        ),
        (
            ("      - I want a refund\n", "      - [nested]\n"),
            "a.yaml:9:9: intents[0].examples[0]: must be a string, not a list",
        ),
        (
            ("      - I want a refund\n", "      - 42\n"),
            "a.yaml:9:9: intents[0].examples[0]: must be a string, not a int",
        ),
        (
            (
                "  - name: track_delivery\n    examples: [where is my parcel]\n",
                "  - name: track_delivery\n",
            ),
            "a.yaml:11:5: intents[1].examples: required",
        ),
        (("intents:", "intents: 3\nextra:"), "a.yaml:5:1: extra: unknown key"),
        (
            ("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.5\n  threshold: 0.6\n"),
            "a.yaml:4:3: defaults.threshold: duplicate key",
        ),
    ],
)
def test_each_schema_problem_is_located(write, edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in GOOD
    path = write("a.yaml", GOOD.replace(old, new, 1))
    found = problems_of(path)
    assert any(p.startswith(str(path.parent / expected)) for p in found), found


def test_malformed_yaml_names_line(write) -> None:
    path = write("a.yaml", GOOD.replace("      - I want a refund\n", "      - I want: [a refund\n"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:"), problem
    assert "malformed YAML" in problem
    line = int(problem.split(":")[1])
    assert 9 <= line <= 12


def test_empty_file_and_non_mapping(write) -> None:
    assert problems_of(write("a.yaml", "")) == [f"{write('a.yaml', '')}: file is empty"]
    assert "must be a mapping" in problems_of(write("b.yaml", "- a\n- b\n"))[0]


def test_every_problem_is_reported_at_once(write) -> None:
    text = GOOD.replace("threshold: 0.55", "threshold: 7").replace(
        "name: track_delivery", "name: X"
    )
    assert len(problems_of(write("a.yaml", text))) == 2


def test_directory_merges_yaml_and_yml_and_skips_others(tmp_path: Path, write) -> None:
    write("d/a.yaml", GOOD)
    write(
        "d/b.yml", "version: 1\nintents:\n  - name: human_agent\n    examples: [a person please]\n"
    )
    write("d/notes.txt", "not yaml")
    write("d/.hidden.yaml", "garbage: [")
    write("d/sub/c.yaml", "garbage: [")
    intents = load_intents(tmp_path / "d")
    assert [i.name for i in intents.intents] == ["request_refund", "track_delivery", "human_agent"]
    assert len(intents.files) == 2


def test_duplicate_across_files_names_both_places(tmp_path: Path, write) -> None:
    a = write("d/a.yaml", GOOD)
    b = write("d/b.yaml", "version: 1\nintents:\n  - name: track_delivery\n    examples: [x]\n")
    (problem,) = problems_of(tmp_path / "d")
    assert problem.startswith(f"{b}:3:11: name: duplicate intent 'track_delivery'")
    assert f"{a}:11:11" in problem


def test_conflicting_defaults_across_files(tmp_path: Path, write) -> None:
    write("d/a.yaml", GOOD)
    write(
        "d/b.yaml",
        "version: 1\ndefaults: {threshold: 0.4}\nintents:\n  - name: x\n    examples: [x]\n",
    )
    (problem,) = problems_of(tmp_path / "d")
    assert "defaults.threshold: conflicts with 0.5" in problem


def test_lexical_weight_is_read_checked_and_part_of_the_revision(tmp_path: Path, write) -> None:
    one = "version: 1\nintents:\n  - name: x\n    examples: [x]\n"
    plain = load_intents(write("plain.yaml", one))
    assert plain.lexical_weight is None
    off = load_intents(write("off.yaml", "defaults:\n  lexical_weight: 0\n" + one))
    assert off.lexical_weight == 0.0
    assert off.revision != plain.revision
    bad = write("bad.yaml", "version: 1\ndefaults:\n  lexical_weight: 1.5\nintents: []\n")
    assert f"{bad}:3:19: defaults.lexical_weight: must be in [0, 1], got 1.5" in problems_of(bad)
    word = write("word.yaml", "defaults: {lexical_weight: lots}\n" + one)
    assert "defaults.lexical_weight: must be a number in [0, 1], not a string" in "".join(
        problems_of(word)
    )
    write("d/a.yaml", "defaults: {lexical_weight: 0.5}\n" + one)
    write("d/b.yaml", "defaults: {lexical_weight: 0}\n" + one.replace("name: x", "name: y"))
    (problem,) = problems_of(tmp_path / "d")
    assert "defaults.lexical_weight: conflicts with 0.5" in problem


def test_empty_directory_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no *.yaml or *.yml files" in problems_of(tmp_path / "empty")[0]
    assert "no such file or directory" in problems_of(tmp_path / "missing")[0]


def test_a_broken_link_in_a_directory_is_an_error_not_a_file_skipped(tmp_path: Path, write) -> None:
    """The ConfigMap layout: each key a link into ``..data``; a key whose target is gone
    must not silently drop its intents."""
    write("d/a.yaml", "intents:\n  - name: x\n    examples: [hello]\n")
    (tmp_path / "d" / "b.yaml").symlink_to(tmp_path / "gone" / "b.yaml")
    (tmp_path / "d" / "loop.yaml").symlink_to(tmp_path / "d" / "loop.yaml")
    found = problems_of(tmp_path / "d")
    assert len(found) == 2
    assert found[0].endswith("b.yaml: a link to nothing (a broken symlink)")
    assert "loop.yaml" in found[1]


def test_bundled_intents_are_a_real_set() -> None:
    intents = load_intents(Path(__file__).resolve().parent.parent / "intents")
    assert len(intents.intents) >= 20
    assert all(len(i.examples) >= 8 for i in intents.intents)
    names = {i.name for i in intents.intents}
    for needed in (
        "request_refund",
        "cancel_order",
        "track_delivery",
        "change_delivery_address",
        "exchange_item",
        "payment_failed",
        "login_problem",
        "broken_device",
        "human_agent",
        "request_invoice",
        "cancel_subscription",
        "product_stock",
    ):
        assert needed in names


def test_negation_block_extends_the_lexicon_and_switches_off(tmp_path: Path, write) -> None:
    write("d/a.yaml", "version: 1\nnegation:\n  cues: [Nope]\n  refusal: [fancy]\n" + GOOD[11:])
    intents = load_intents(tmp_path / "d")
    assert intents.negation.enabled
    assert "nope" in intents.negation.lexicon.cues
    assert "not" in intents.negation.lexicon.cues  # built-ins stay
    off = load_intents(write("b.yaml", "version: 1\nnegation: {enabled: false}\n" + GOOD[11:]))
    assert not off.negation.enabled
    assert off.revision != intents.revision


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("negation:\n  enabled: maybe\n", "a.yaml:3:12: negation.enabled: must be true or false"),
        ("negation:\n  words: [x]\n", "a.yaml:3:3: negation.words: unknown key"),
        ("negation:\n  cues: nope\n", "a.yaml:3:9: negation.cues: must be a list of strings"),
    ],
)
def test_negation_block_problems_are_located(write, block: str, expected: str) -> None:
    path = write("a.yaml", "version: 1\n" + block + GOOD[11:])
    found = problems_of(path)
    assert any(p.startswith(str(path.parent / expected)) for p in found), found


def test_out_of_scope_examples_load_and_count_in_the_revision(write) -> None:
    base = load_intents(write("a.yaml", GOOD))
    text = GOOD.replace(
        "intents:\n", "out_of_scope:\n  - tell me a joke\n  - what's the weather\nintents:\n"
    )
    intents = load_intents(write("b.yaml", text))
    assert intents.out_of_scope == ("tell me a joke", "what's the weather")
    assert intents.revision != base.revision
    bad = write("c.yaml", GOOD.replace("intents:\n", "out_of_scope: nope\nintents:\n"))
    assert any("out_of_scope: must be a list of strings" in p for p in problems_of(bad))


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("version: 1\ndefaults:\n  threshold: !!int 'zz'\n", "a.yaml:3:14: defaults.threshold"),
        ("version: !!float 'abc'\n", "a.yaml:1:10: version"),
        ("version: 1\ndefaults:\n  threshold: !!python/name:os.system\n", "a.yaml:3:14:"),
    ],
)
def test_tags_safe_load_cannot_build_are_located_errors(
    tmp_path: Path, yaml_text: str, where: str
) -> None:
    (tmp_path / "a.yaml").write_text(yaml_text + "intents:\n  - name: a\n    examples: [x]\n")
    with pytest.raises(IntentsError) as raised:  # ValueError / ConstructorError escaped
        load_intents(tmp_path)
    assert where in str(raised.value) and "cannot be read" in str(raised.value)


# ------------------------------------------------------------------------ limits


def _examples_file(n: int, text: str = "example") -> str:
    lines = "".join(f"      - {text} {i}\n" for i in range(n))
    return f"version: 1\nintents:\n  - name: many\n    examples:\n{lines}"


def test_alias_bomb_is_refused_at_the_first_alias_too_many(write) -> None:
    """The hostile tester's file: one 5 kB example repeated 20,001 times by aliases.
    It was accepted (630 MB peak); now the 17th alias is refused before anything expands."""
    long = "x" * 5_000
    aliases = "".join("      - *big\n" for _ in range(20_001))
    text = f"version: 1\nintents:\n  - name: bomb\n    examples:\n      - &big {long}\n{aliases}"
    path = write("a.yaml", text)  # 265 kB, 100 MB of examples once expanded
    (problem,) = problems_of(path)
    # the first example holds the anchor (line 5); aliases start on line 6: the 17th is line 22
    assert problem.startswith(f"{path}:22:9: more than 16 YAML aliases (*big)"), problem


def test_a_few_aliases_are_still_accepted(write) -> None:
    text = (
        "version: 1\nintents:\n  - name: a\n    examples: &shared [where is it, track it]\n"
        "  - name: b\n    examples: *shared\n"
    )
    intents = load_intents(write("a.yaml", text))
    assert intents.intents[1].examples == ("where is it", "track it")


def test_a_file_over_the_size_limit_is_not_parsed(write) -> None:
    path = write("a.yaml", _examples_file(200))
    size = path.stat().st_size
    assert load_intents(path, IntentsLimits(max_file_bytes=size)).example_count == 200
    (problem,) = problems_of_with(path, IntentsLimits(max_file_bytes=size - 1))
    assert problem == f"{path}: file is over the limit of {size - 1:,} bytes: not read"


def test_an_example_over_the_length_limit_is_located(write) -> None:
    path = write("a.yaml", GOOD.replace("where is my parcel", "where " + "y" * 1_000))
    (problem,) = problems_of(path)
    assert problem == (
        f"{path}:12:16: intents[1].examples[0]: 1,006 characters, over the limit of 1,000"
    )
    text = GOOD.replace("intents:\n", "out_of_scope:\n  - " + "z" * 1_001 + "\nintents:\n")
    (problem,) = problems_of(write("b.yaml", text))
    assert ":5:5: out_of_scope[0]: 1,001 characters" in problem


def test_the_example_total_counts_every_file_and_names_where_it_is_crossed(
    tmp_path: Path, write
) -> None:
    write("d/a.yaml", _examples_file(30))
    write("d/b.yaml", _examples_file(30).replace("name: many", "name: more"))
    limits = IntentsLimits(max_examples=45)
    (problem,) = problems_of_with(tmp_path / "d", limits)
    # b.yaml's 16th example (line 5 + 15) is the 46th in all
    assert problem == (
        f"{tmp_path / 'd' / 'b.yaml'}:20:9: intents[0].examples[15]: "
        "more than 45 examples in all files (the limit)"
    )
    assert load_intents(tmp_path / "d", IntentsLimits(max_examples=60)).example_count == 60


def test_the_intent_count_is_limited(write) -> None:
    intents = "".join(f"  - name: i{n}\n    examples: [x{n}]\n" for n in range(4))
    path = write("a.yaml", "version: 1\nintents:\n" + intents)
    (problem,) = problems_of_with(path, IntentsLimits(max_intents=3))
    assert problem == f"{path}:9:5: intents[3]: more than 3 intents in all files (the limit)"


def test_the_default_limits_pass_clinc150_sized_sets(write) -> None:
    """15,000 examples in 150 intents plus 100 out_of_scope (bench/clinc150.py's file)."""
    intents = "".join(
        f"  - name: intent_{n}\n    examples:\n"
        + "".join(f'      - "how would I ask for thing {n} number {i} today"\n' for i in range(100))
        for n in range(150)
    )
    oos = "".join(f'  - "something else entirely {i}"\n' for i in range(100))
    path = write("a.yaml", f"version: 1\nout_of_scope:\n{oos}intents:\n{intents}")
    loaded = load_intents(path)
    assert loaded.example_count == 15_000 and len(loaded.out_of_scope) == 100


def problems_of_with(path: Path, limits: IntentsLimits) -> list[str]:
    with pytest.raises(IntentsError) as info:
        load_intents(path, limits)
    return [str(p) for p in info.value.problems]


def test_a_number_too_large_for_a_float_is_an_error_with_its_place(write) -> None:
    huge = "1" + "0" * 400
    path = write(
        "huge.yaml",
        f"version: 1\ndefaults:\n  lexical_weight: {huge}\n  threshold: {huge}\n"
        "intents:\n  - name: x\n    examples: [x]\n",
    )
    found = problems_of(path)
    assert (
        f"{path}:3:19: defaults.lexical_weight: must be in [0, 1], got a number of 401 digits"
        in found
    )
    assert (
        f"{path}:4:14: defaults.threshold: must be in [-1, 1], got a number of 401 digits" in found
    )


def test_a_number_with_an_exponent_and_no_dot_is_a_number(write) -> None:
    """YAML 1.1 reads 1e-1 as a string; a quoted "1e-1" stays one."""
    path = write(
        "exp.yaml",
        "version: 1\ndefaults:\n  threshold: 4e-1\n  lexical_weight: 0E0\n"
        "intents:\n  - name: x\n    examples: [x]\n    threshold: 5e-1\n",
    )
    loaded = load_intents(path)
    assert loaded.default_threshold == pytest.approx(0.4)
    assert loaded.intents[0].threshold == pytest.approx(0.5)
    quoted = write("quoted.yaml", 'version: 1\ndefaults:\n  threshold: "4e-1"\nintents: []\n')
    assert any("defaults.threshold: must be a number in [-1, 1], not a string" in p
               for p in problems_of(quoted))  # fmt: skip
