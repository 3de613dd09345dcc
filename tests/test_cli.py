"""The command line: ``router.cli.main`` in process where a process adds nothing (output,
exit codes, messages), real processes for what only a process shows (serving, SIGTERM,
the exit code of a server that cannot start)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from fakes import serving_fake
from helpers import ROOT, in_process, run_cli, serving

from router import cli
from router.routing.engine import revision_of
from router.routing.intents import load_intents

INTENTS = ROOT / "intents"
RECORD = {
    "text",
    "intent",
    "score",
    "threshold",
    "alternatives",
    "reason",
    "refused",
    "negations",
    "revision",
}


# ------------------------------------------------------------------- classify


@pytest.fixture(scope="module")
def classified(model_dir: Path) -> dict[str, dict]:
    """``classify`` with the real model, in process."""
    texts = ["where is my parcel", "tell me a joke"]
    code, out, err = in_process(
        "classify", "--intents", str(INTENTS), "--model", str(model_dir), *texts
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == texts
    return {line["text"]: line for line in lines}


def test_classify_names_tracking(classified: dict[str, dict]) -> None:
    assert classified["where is my parcel"]["intent"] == "track_delivery"


def test_classify_says_unknown_for_a_joke(classified: dict[str, dict]) -> None:
    joke = classified["tell me a joke"]
    assert joke["intent"] == "unknown"
    assert joke["alternatives"][0]["intent"] != "unknown"
    assert joke["score"] < joke["threshold"]


def test_classify_prints_a_json_line_per_text_with_its_negations(fake_model: list[Path]) -> None:
    texts = ["where is my parcel", "I don't want a refund, where is my parcel"]
    code, out, err = in_process(
        "classify", "--intents", str(INTENTS), "--model", "my-model", "--top-k", "2", *texts
    )
    assert code == 0, err
    assert fake_model == [Path("my-model")]
    plain, negated = (json.loads(line) for line in out.splitlines())
    revision = revision_of(load_intents(INTENTS), serving_fake())
    for record, text in ((plain, texts[0]), (negated, texts[1])):
        assert set(record) == RECORD
        assert (record["text"], record["revision"]) == (text, revision)
        assert len(record["alternatives"]) == 2
        assert record["alternatives"][0]["intent"] == record["intent"] == "track_delivery"
        assert record["reason"] == "matched" and record["score"] >= record["threshold"]
    assert (plain["negations"], plain["refused"]) == ([], [])
    assert negated["negations"] == [
        {"cue": "n't", "scope": "want a refund", "topic": "", "refusal": True}
    ]
    assert negated["refused"] == ["request_refund"]


# ------------------------------------------------------------- errors, exit codes

BROKEN = "version: 1\nintents:\n  - name: refund\n    examples: []\n"


@pytest.mark.parametrize("command", ["classify", "serve"])
def test_broken_intents_stop_with_file_line(command: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN, encoding="utf-8")
    args = (
        ["classify", "--intents", str(bad), "hello"]
        if command == "classify"
        else ["serve", "--intents", str(bad), "--port", "0"]
    )
    code, out, err = in_process(*args)  # the intents are read before any model or port
    assert code == 2
    assert f"{bad}:4:15: intents[0].examples: must not be empty" in err
    assert out == ""


def test_outputs_that_cannot_be_written_are_refused_before_the_run(
    fake_model: list[Path], tmp_path: Path, caplog
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "where is my parcel", "intent": "track_delivery"}\n', "utf-8")
    a_file = tmp_path / "taken"
    a_file.write_text("")
    base = ("eval", "--intents", str(INTENTS), "--data", str(data))
    for extra, said in (
        (("--report", str(a_file)), "exists and is not a directory"),
        (("--report", str(a_file / "sub")), "is not a directory this user can write"),
        (("--report", " "), "--report: an empty path"),
        (("--predictions", str(tmp_path)), "a file is needed, not a directory"),
        (("--predictions", str(a_file / "p.jsonl")), "no directory"),
        (("--predictions", str(tmp_path / "nodir" / "p.jsonl")), "no directory"),
        (("--predictions", str(data)), "is the --data file"),
        (("--negation", "compare", "--predictions", str(tmp_path / "p.jsonl")),
         "not written by --negation compare"),
    ):  # fmt: skip
        code, out, err = in_process(*base, *extra)
        assert (code, out) == (2, ""), extra
        assert said in err, extra
    code, _, err = in_process("classify", "--intents", str(INTENTS), "--top-k", "0", "hi")
    assert code == 2 and "--top-k must be in [1, 20], got 0" in err
    code, _, err = in_process("tune", *base[1:])  # one in-scope row, none out of scope
    assert code == 0, err
    assert "tuned on 1 in-scope and 0 out-of-scope rows" in caplog.text


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["classify"])
    assert caught.value.code == 2
    assert "--intents" in capsys.readouterr().err


def test_serve_with_incomplete_model_dir_exits_3_as_a_process(tmp_path: Path) -> None:
    """A real process: the failed start ends it, with the model error's exit code."""
    (tmp_path / "model.onnx").write_bytes(b"")
    done = run_cli(
        "serve", "--intents", "intents", "--model", str(tmp_path), "--port", "0",
        model_dir=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    assert "missing tokenizer.json" in done.stderr


# ---------------------------------------------------------------------- serve


def test_serve_starts_answers_and_stops_on_sigterm(model_dir: Path) -> None:
    import grpc

    from router.api.v1 import router_pb2 as pb
    from router.api.v1 import router_pb2_grpc as pb_grpc

    with serving("--intents", "intents", "--threads", "1", model_dir=model_dir) as (proc, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = pb_grpc.IntentRouterStub(ch).Classify(
                pb.ClassifyRequest(text="I forgot my password"), timeout=30
            )
        assert reply.intent in {"reset_password", "login_problem"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
