"""The regression gate: the gate file, and reloads it passes or refuses on a real server.

Servers run on the fake encoder (the gate's logic does not depend on the model): with
``GOOD`` every row of ``DATA`` is answered right; ``WORSE`` misroutes one of the six
in-scope rows (in-scope accuracy 5/6); ``BAD`` misroutes three (3/6). One test gates the
bundled intents with the real model.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from fakes import serving_fake
from helpers import ROOT, in_process, recording_swaps, running

from router.api.v1 import router_pb2 as pb
from router.errors import GateError
from router.routing.engine import Engine
from router.routing.gate import GATE_FILE, gate_path, load_gate, measure, verdict
from router.routing.intents import load_intents
from router.serving.server import RouterServer, ServerConfig

HEAD = "version: 1\ndefaults: {threshold: 0.25}\nintents:\n"
REFUND = (
    "  - name: request_refund\n"
    "    examples: [I want a refund, give me my money back, refund my order please]\n"
)
TRACK = (
    "  - name: track_delivery\n"
    "    examples: [where is my parcel, when will my order arrive, track my package]\n"
)
GOOD = HEAD + REFUND + TRACK
#: "give me my money back now" no longer finds its intent.
WORSE = (
    HEAD
    + ("  - name: request_refund\n    examples: [I want a refund, refund my order please]\n")
    + TRACK
)
#: The refund intent's examples replaced by unrelated ones.
BAD = (
    HEAD
    + ("  - name: request_refund\n    examples: [purple elephant dancing, the moon is bright]\n")
    + TRACK
)

DATA = "\n".join(
    f'{{"text": "{text}", "intent": "{intent}"}}'
    for text, intent in [
        ("I want a refund please", "request_refund"),
        ("give me my money back now", "request_refund"),
        ("refund my order", "request_refund"),
        ("where is my parcel today", "track_delivery"),
        ("track my package please", "track_delivery"),
        ("when will my order arrive", "track_delivery"),
        ("what colour is the sky at night", "unknown"),
        ("tell me a joke about cats", "unknown"),
    ]
)


def gate_yaml(body: str) -> str:
    return "version: 1\ndata: eval/gate.jsonl\n" + body


MIN_GATE = gate_yaml("min:\n  in_scope_accuracy: 0.8\n  unknown_recall: 0.5\n")


def intents_dir(tmp_path: Path, intents: str = GOOD, gate: str | None = MIN_GATE) -> Path:
    directory = tmp_path / "intents"
    (directory / "eval").mkdir(parents=True)
    (directory / "shop.yaml").write_text(intents)
    (directory / "eval" / "gate.jsonl").write_text(DATA)
    if gate is not None:
        (directory / GATE_FILE).write_text(gate)
    return directory


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[tuple[RouterServer, Path, object]]:
    directory = intents_dir(tmp_path)
    config = ServerConfig(
        intents=load_intents(directory), intents_path=directory, encoder=serving_fake(),
        port=0, watch=False,
    )  # fmt: skip
    async with running(config) as run:
        yield run.server, directory, run.stub


# --------------------------------------------------------------------- the gate file


def test_the_gate_file_is_never_read_as_intents(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path)
    intents = load_intents(directory)
    assert [Path(f).name for f in intents.files] == ["shop.yaml"]
    assert gate_path(directory) == gate_path(directory / "shop.yaml") == directory / GATE_FILE


def test_a_gate_is_optional(tmp_path: Path) -> None:
    assert load_gate(intents_dir(tmp_path, gate=None) / GATE_FILE) is None


def test_a_gate_bound_with_an_exponent_and_no_dot_is_a_number(tmp_path: Path) -> None:
    gate = load_gate(intents_dir(tmp_path, gate=gate_yaml("min: {accuracy: 8e-1}\n")) / GATE_FILE)
    assert gate is not None
    assert [(b.figure, b.value) for b in gate.bounds] == [("accuracy", pytest.approx(0.8))]


def test_a_gate_reads_its_data_relative_to_itself(tmp_path: Path) -> None:
    gate = load_gate(intents_dir(tmp_path) / GATE_FILE)
    assert gate is not None
    assert gate.data == tmp_path / "intents" / "eval" / "gate.jsonl"
    assert len(gate.rows) == 8
    assert [(b.figure, b.kind, b.value) for b in gate.bounds] == [
        ("in_scope_accuracy", "min", 0.8),
        ("unknown_recall", "min", 0.5),
    ]
    assert gate.bounds[0].at == f"{gate.file}:4:22"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("data: x.jsonl\nmin: {accuracy: 0.5}\n", ":1:1: version:", "required"),
        ("version: 1\nmin: {accuracy: 0.5}\n", ":1:1: data:", "required"),
        ("version: 1\ndata: eval/gate.jsonl\n", ":1:1: min:", "needs bounds"),
        (gate_yaml("min: {acuracy: 0.5}\n"), ":3:7: min.acuracy:", "unknown key"),
        (gate_yaml("min:\n  accuracy: 1.5\n"), ":4:13: min.accuracy:", "number in [0, 1]"),
        (gate_yaml("max_drop:\n  accuracy: lots\n"), ":4:13: max_drop.accuracy:", "number"),
        (gate_yaml("min: 0.5\n"), ":3:6: min:", "must be a mapping"),
        (gate_yaml("mni: {accuracy: 0.5}\n"), ":3:1: mni:", "unknown key"),
        ("version: 1\ndata: eval/gone.jsonl\nmin: {accuracy: 0.5}\n", ":2:7: data:", "gone"),
        (gate_yaml("min: [accuracy\n"), ":4:1:", "malformed YAML"),
    ],
)
def test_gate_file_problems_name_file_line_and_column(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = intents_dir(tmp_path, gate=text) / GATE_FILE
    with pytest.raises(GateError) as refused:
        load_gate(path)
    assert any(
        line.startswith(f"{path}{where}") and message in line for line in refused.value.lines
    ), refused.value.lines


def test_bad_rows_in_the_gate_data_name_their_line(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path)
    data = directory / "eval" / "gate.jsonl"
    data.write_text(DATA + '\n{"text": "no label"}\n')
    with pytest.raises(GateError) as refused:
        load_gate(directory / GATE_FILE)
    assert refused.value.lines == (f"{data}:9: intent: required: a string",)


def test_a_gate_row_longer_than_a_caller_may_send_is_refused(tmp_path: Path) -> None:
    from router.routing.gate import MAX_ROW_CHARS

    directory = intents_dir(tmp_path)
    data = directory / "eval" / "gate.jsonl"
    long = json.dumps({"text": "refund " * (MAX_ROW_CHARS // 7 + 1), "intent": "unknown"})
    data.write_text(DATA + "\n" + long + "\n")
    with pytest.raises(GateError) as refused:
        load_gate(directory / GATE_FILE)
    (line,) = refused.value.lines
    assert line.startswith(f"{data}:9: text: 20,006 characters, over the 20,000")


def test_a_bound_the_data_cannot_measure_is_refused(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path, gate=gate_yaml("min: {unknown_recall: 0.5}\n"))
    (directory / "eval" / "gate.jsonl").write_text(DATA.split("\n")[0])
    with pytest.raises(GateError, match=r"gate.yaml:3:23: min.unknown_recall: .*no 'unknown'"):
        load_gate(directory / GATE_FILE)


def test_verdict_lines_and_errors(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path, gate=gate_yaml("min: {in_scope_accuracy: 0.8}\n"
                                                     "max_drop: {accuracy: 0.1}\n"))  # fmt: skip
    gate = load_gate(directory / GATE_FILE)
    assert gate is not None
    engine = Engine(serving_fake())
    good = measure(engine, engine.build(load_intents(directory)), gate)
    (directory / "shop.yaml").write_text(BAD)
    bad = measure(engine, engine.build(load_intents(directory)), gate)
    assert (good.in_scope_accuracy, bad.in_scope_accuracy) == (1.0, 0.5)
    passed = verdict(gate, good, None)
    assert passed.passed
    assert passed.lines == (
        "in_scope_accuracy 1.0000 >= 0.8000 (min) ok",
        "accuracy: max_drop 0.1000 not applied (nothing serving yet)",
    )
    failed = verdict(gate, bad, good)
    assert not failed.passed
    assert failed.lines == (
        "in_scope_accuracy 0.5000 >= 0.8000 (min) FAILED",
        "accuracy 0.6250 >= 0.9000 (serving 1.0000 - max_drop 0.1000) FAILED",
    )
    assert failed.errors == (
        f"{gate.file}:3:26: min.in_scope_accuracy: 0.5000 is below 0.8000 (min) "
        "on eval/gate.jsonl (8 rows)",
        f"{gate.file}:4:22: max_drop.accuracy: 0.6250 is below 0.9000 (serving 1.0000 - "
        "max_drop 0.1000) on eval/gate.jsonl (8 rows)",
    )


# -------------------------------------------------------------------- gated reloads


async def test_a_reload_that_passes_the_gate_serves(gated) -> None:
    server, directory, stub = gated
    first = server.reloader.status
    assert first.gate_results == (
        "in_scope_accuracy 1.0000 >= 0.8000 (min) ok",
        "unknown_recall 1.0000 >= 0.5000 (min) ok",
    )
    (directory / "shop.yaml").write_text(WORSE)  # 5/6 in scope: above 0.8
    reply = await stub.Reload(pb.ReloadRequest())
    assert reply.ok and reply.changed and not reply.errors
    assert list(reply.gate_results) == [
        "in_scope_accuracy 0.8333 >= 0.8000 (min) ok",
        "unknown_recall 1.0000 >= 0.5000 (min) ok",
    ]
    assert reply.revision != first.revision
    assert (await stub.Classify(pb.ClassifyRequest(text="refund"))).revision == reply.revision


async def test_a_gated_reload_judges_and_serves_only_the_final_snapshot(gated) -> None:
    server, directory, stub = gated
    engine = server.engine
    swapped = recording_swaps(engine)
    (directory / "shop.yaml").write_text(WORSE)
    assert (await stub.Reload(pb.ReloadRequest())).changed
    assert swapped == [True]  # what the gate judged is what serves: no warm snapshot
    (directory / GATE_FILE).unlink()
    (directory / "shop.yaml").write_text(BAD)  # a revision never built before
    assert (await stub.Reload(pb.ReloadRequest())).changed
    assert swapped == [True, False, True]  # without a gate: warm first, then final


async def test_a_reload_that_fails_the_gate_is_refused_and_the_old_revision_answers(
    gated, caplog
) -> None:
    server, directory, stub = gated
    before = await stub.Classify(pb.ClassifyRequest(text="give me my money back now"))
    assert before.intent == "request_refund"
    (directory / "shop.yaml").write_text(BAD)
    reply = await stub.Reload(pb.ReloadRequest())
    assert not reply.ok and not reply.changed
    assert reply.revision == before.revision
    assert list(reply.errors) == [
        f"{directory / GATE_FILE}:4:22: min.in_scope_accuracy: 0.5000 is below 0.8000 (min) "
        "on eval/gate.jsonl (8 rows)"
    ]
    assert list(reply.gate_results) == [
        "in_scope_accuracy 0.5000 >= 0.8000 (min) FAILED",
        "unknown_recall 1.0000 >= 0.5000 (min) ok",
    ]
    after = await stub.Classify(pb.ClassifyRequest(text="give me my money back now"))
    assert (after.intent, after.revision) == ("request_refund", before.revision)
    info = await stub.Info(pb.InfoRequest())
    assert not info.last_reload.ok
    assert list(info.last_reload.gate_results) == list(reply.gate_results)
    assert "eval/gate.jsonl" in info.last_reload.errors[0]
    assert str(directory) not in info.last_reload.errors[0]  # no token: directories hidden
    count = server.metrics.registry.get_sample_value
    assert count("intent_router_reloads_total", {"trigger": "rpc", "result": "gate"}) == 1
    assert count("intent_router_reloads_total", {"trigger": "rpc", "result": "error"}) is None
    assert "refused by the regression gate" in caplog.text
    # a fixed edit passes again
    (directory / "shop.yaml").write_text(WORSE)
    assert (await stub.Reload(pb.ReloadRequest())).ok


async def test_max_drop_compares_with_the_serving_revision(gated) -> None:
    server, directory, stub = gated
    (directory / GATE_FILE).write_text(gate_yaml("max_drop: {in_scope_accuracy: 0.1}\n"))
    (directory / "shop.yaml").write_text(WORSE)  # 1.0 -> 0.833: a drop of 0.167
    refused = await stub.Reload(pb.ReloadRequest())
    assert not refused.ok
    assert list(refused.gate_results) == [
        "in_scope_accuracy 0.8333 >= 0.9000 (serving 1.0000 - max_drop 0.1000) FAILED"
    ]
    assert "max_drop.in_scope_accuracy: 0.8333 is below 0.9000" in refused.errors[0]
    (directory / GATE_FILE).write_text(gate_yaml("max_drop: {in_scope_accuracy: 0.2}\n"))
    passed = await stub.Reload(pb.ReloadRequest())
    assert passed.ok and passed.changed
    assert list(passed.gate_results) == [
        "in_scope_accuracy 0.8333 >= 0.8000 (serving 1.0000 - max_drop 0.2000) ok"
    ]
    # the new serving revision is the baseline now: a further drop of 0.167 is refused
    (directory / "shop.yaml").write_text(BAD)
    again = await stub.Reload(pb.ReloadRequest())
    assert not again.ok
    assert list(again.gate_results) == [
        "in_scope_accuracy 0.5000 >= 0.6333 (serving 0.8333 - max_drop 0.2000) FAILED"
    ]
    assert server.engine.snapshot.revision == passed.revision


async def test_a_broken_gate_file_refuses_the_reload_with_its_line(gated) -> None:
    server, directory, stub = gated
    serving = server.engine.snapshot.revision
    (directory / GATE_FILE).write_text(gate_yaml("min:\n  in_scope_acuracy: 0.8\n"))
    (directory / "shop.yaml").write_text(WORSE)
    reply = await stub.Reload(pb.ReloadRequest())
    assert not reply.ok
    assert reply.errors[0].startswith(f"{directory / GATE_FILE}:4:3: min.in_scope_acuracy: ")
    assert "unknown key" in reply.errors[0]
    assert (reply.revision, server.engine.snapshot.revision) == (serving, serving)
    count = server.metrics.registry.get_sample_value
    assert count("intent_router_reloads_total", {"trigger": "rpc", "result": "error"}) == 1


async def test_a_broken_gate_is_reported_even_when_the_intents_are_unchanged(gated) -> None:
    server, directory, stub = gated
    serving = server.engine.snapshot.revision
    (directory / GATE_FILE).write_text(gate_yaml("min: {in_scope_accuracy: 80}\n"))
    reply = await stub.Reload(pb.ReloadRequest())
    assert (reply.ok, reply.changed, reply.revision) == (False, False, serving)
    assert reply.errors[0].startswith(f"{directory / GATE_FILE}:3:26: min.in_scope_accuracy:")


async def test_gate_data_naming_an_intent_the_candidate_lacks_is_refused(gated) -> None:
    server, directory, stub = gated
    serving = server.engine.snapshot.revision
    (directory / "shop.yaml").write_text(HEAD + REFUND)  # track_delivery removed
    reply = await stub.Reload(pb.ReloadRequest())
    assert not reply.ok
    data = directory / "eval" / "gate.jsonl"
    assert reply.errors[0] == (
        f"{data}:4: intent: 'track_delivery' is neither an intent of these intents nor 'unknown'"
    )
    assert server.engine.snapshot.revision == serving


async def test_a_gate_added_later_applies_from_the_next_reload(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path, gate=None)
    config = ServerConfig(
        intents=load_intents(directory), intents_path=directory, encoder=serving_fake(),
        port=0, watch=False,
    )  # fmt: skip
    async with running(config) as run:
        assert run.server.reloader.status.gate_results == ()
        (directory / GATE_FILE).write_text(MIN_GATE)
        (directory / "shop.yaml").write_text(BAD)
        reply = await run.stub.Reload(pb.ReloadRequest())
        assert not reply.ok and "min.in_scope_accuracy" in reply.errors[0]


async def test_a_watched_edit_that_fails_the_gate_is_refused(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path)
    config = ServerConfig(
        intents=load_intents(directory), intents_path=directory, encoder=serving_fake(), port=0
    )
    async with running(config) as run:
        serving = run.server.engine.snapshot.revision
        (directory / "shop.yaml").write_text(BAD)
        status = await run.server.reloader.wait_until(lambda s: s.gated)
        assert (status.trigger, status.revision) == ("watch", serving)
        assert "min.in_scope_accuracy: 0.5000 is below 0.8000" in status.errors[0]
        reply = await run.stub.Classify(pb.ClassifyRequest(text="give me my money back now"))
        assert (reply.intent, reply.revision) == ("request_refund", serving)


# ------------------------------------------------------------------------ start-up


async def test_a_server_whose_first_revision_fails_the_gate_does_not_start(
    tmp_path: Path,
) -> None:
    directory = intents_dir(tmp_path, intents=BAD)
    config = ServerConfig(
        intents=load_intents(directory), intents_path=directory, encoder=serving_fake(),
        port=0, watch=False,
    )  # fmt: skip
    server = RouterServer(config)
    with pytest.raises(GateError) as refused:
        await server.start()
    assert refused.value.exit_code == 2
    assert refused.value.lines[1].startswith(f"{directory / GATE_FILE}:4:22: min.in_scope_accuracy")
    with pytest.raises(ConnectionRefusedError):  # the port is closed again
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


@pytest.mark.usefixtures("fake_model")
def test_serve_exits_2_when_the_gate_refuses_the_intents(tmp_path: Path) -> None:
    directory = intents_dir(tmp_path, intents=BAD)
    code, _, err = in_process("serve", "--intents", str(directory), "--port", "0", "--no-cache")
    assert code == 2
    assert "the regression gate refuses revision" in err
    assert "min.in_scope_accuracy: 0.5000 is below 0.8000" in err


def test_serve_refuses_a_broken_gate_before_loading_the_model(
    tmp_path: Path, fake_model: list[Path]
) -> None:
    directory = intents_dir(tmp_path, gate=gate_yaml("min: {accuracy: 2}\n"))
    code, _, err = in_process("serve", "--intents", str(directory), "--port", "0")
    assert code == 2
    assert f"{directory / GATE_FILE}:3:17: min.accuracy: must be a number in [0, 1]" in err
    assert fake_model == []  # stopped before the model was asked for


# ------------------------------------------------------------------- the real model


async def test_the_bundled_intents_pass_a_gate_and_a_regression_is_refused(
    tmp_path: Path, model_dir: Path
) -> None:
    directory = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", directory, ignore=shutil.ignore_patterns("zh"))
    (directory / GATE_FILE).write_text(
        "version: 1\ndata: eval/val.jsonl\n"
        "min: {in_scope_accuracy: 0.8, unknown_recall: 0.6}\nmax_drop: {in_scope_accuracy: 0.02}\n"
    )
    config = ServerConfig(
        intents=load_intents(directory), intents_path=directory, model_dir=model_dir,
        port=0, threads=2, watch=False,
    )  # fmt: skip
    async with running(config) as run:
        start = run.server.reloader.status
        assert len(start.gate_results) == 3
        assert all(line.endswith(("ok", "(nothing serving yet)")) for line in start.gate_results)
        # an edit leaves each intent of orders.yaml one example: their rows go elsewhere
        orders = directory / "orders.yaml"
        cut = [{"name": i.name, "examples": [i.examples[0]]} for i in load_intents(orders).intents]
        orders.write_text(yaml.safe_dump({"version": 1, "intents": cut}))
        reply = await run.stub.Reload(pb.ReloadRequest())
        assert not reply.ok, list(reply.gate_results)
        assert any("max_drop.in_scope_accuracy" in e for e in reply.errors)
        assert run.server.engine.snapshot.revision == start.revision
