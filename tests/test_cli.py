"""The command line as a person runs it: real processes, exit codes, messages."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from helpers import run_cli, serving


@pytest.fixture(scope="module")
def classified(model_dir: Path) -> dict[str, dict]:
    texts = ["where is my parcel", "tell me a joke"]
    done = run_cli("classify", "--intents", "intents", *texts, model_dir=model_dir)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {line["text"]: line for line in lines}


def test_classify_names_tracking(classified: dict[str, dict]) -> None:
    assert classified["where is my parcel"]["intent"] == "track_delivery"


def test_classify_says_unknown_for_a_joke(classified: dict[str, dict]) -> None:
    joke = classified["tell me a joke"]
    assert joke["intent"] == "unknown"
    assert joke["alternatives"][0]["intent"] != "unknown"
    assert joke["score"] < joke["threshold"]


BROKEN = "version: 1\nintents:\n  - name: refund\n    examples: []\n"


@pytest.mark.parametrize("command", ["classify", "serve"])
def test_broken_intents_stop_with_file_line(command: str, model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN, encoding="utf-8")
    args = (
        ["classify", "--intents", str(bad), "hello"]
        if command == "classify"
        else ["serve", "--intents", str(bad), "--port", "0"]
    )
    done = run_cli(*args, model_dir=model_dir, timeout=60)
    assert done.returncode == 2
    assert f"{bad}:4:15: intents[0].examples: must not be empty" in done.stderr


def test_serve_with_incomplete_model_dir_fails_clearly(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    done = run_cli(
        "serve",
        "--intents",
        "intents",
        "--model-dir",
        str(tmp_path),
        "--port",
        "0",
        model_dir=model_dir,
        timeout=60,
    )
    assert done.returncode == 3
    assert "missing tokenizer.json" in done.stderr


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


def test_usage_error_exit_code(model_dir: Path) -> None:
    done = run_cli("classify", model_dir=model_dir, timeout=30)
    assert done.returncode == 2
    assert "--intents" in done.stderr
