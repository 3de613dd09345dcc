"""``intent-router triage`` end to end on the fake model: files and stdin, bad input with
its exit code and message, in process against ``--server``, and ``--resume`` after a
real SIGKILL in the middle of a file (byte for byte against an uninterrupted run)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, in_process

from router.triage.writing import checkpoint_of

INTENTS = str(ROOT / "intents")

BODIES = [
    "The charger arrived broken, please refund it. It was meant as a gift for my son.\n\n"
    "Separately, I moved house last month. Please change my delivery address for the next order.",
    "Hi team,\n\nwhere is my parcel? It has been two weeks.\n\nThanks,\nAnn",
    "I want my money back for order 1234.\n\n> On Mon, Support wrote:\n> your order shipped",
    "Can you cancel my order please, I ordered the wrong size.",
    "tell me a joke about cats",
    "My password does not work and I cannot log in to my account.",
]


def tickets(n: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"T-{i:05d}",
            "subject": "Order help" if i % 3 else "",
            "text": BODIES[i % len(BODIES)],
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_triage_writes_one_row_per_ticket_with_matches_and_evidence(
    fake_model, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "t.jsonl", tickets(12))
    out = tmp_path / "out.jsonl"
    code, _, err = in_process("triage", str(source), "--intents", INTENTS, "--out", str(out))
    assert code == 0, err
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [t["id"] for t in tickets(12)]
    first = rows[0]
    assert first["intent"] != "unknown"
    assert len(first["matches"]) >= 2  # two requests in one ticket  # type: ignore[arg-type]
    for match in first["matches"]:  # type: ignore[attr-defined]
        evidence = match["evidence"]
        field = BODIES[0] if evidence["field"] == "text" else ""
        assert field[evidence["start"] : evidence["end"]] == evidence["text"]
    assert "12 tickets in" in err and "tickets/s" in err  # the summary line
    assert not checkpoint_of(out).exists()


def test_csv_in_csv_out_and_named_fields(fake_model, tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_text(
        'ticket_id,title,body\n7,Refund,"I want my money back,\nplease"\n8,,where is my parcel\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    code, _, err = in_process(
        "triage", str(source), "--intents", INTENTS, "--out", str(out), "--id-field", "ticket_id",
        "--subject-field", "title", "--text-field", "body",
    )  # fmt: skip
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id,intent,score,threshold,reason,intents,matches")
    assert [line.split(",")[0] for line in lines[1:]] == ["7", "8"]


def test_a_missing_field_names_the_fields_present(fake_model, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "t.jsonl", [{"ticket": "1", "body": "refund"}])
    code, _, err = in_process(
        "triage", str(source), "--intents", INTENTS, "--out", str(tmp_path / "o.jsonl")
    )
    assert code == 2
    assert "t.jsonl:1: id: no such field; the fields present are 'ticket', 'body'" in err


def test_bad_rows_stop_or_are_skipped_by_flag(fake_model, tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_text(
        "id,text\n1,refund please\n2,a,b\n3,\n4,where is my parcel\n", encoding="utf-8"
    )
    out = tmp_path / "o.jsonl"
    code, _, err = in_process("triage", str(source), "--intents", INTENTS, "--out", str(out))
    assert code == 2
    assert "t.csv:3: malformed CSV row: 3 cells where the header has 2" in err
    code, _, err = in_process(
        "triage", str(source), "--intents", INTENTS, "--out", str(out), "--on-bad-row", "skip"
    )
    assert code == 0, err
    rows = read_rows(out)
    assert [r["id"] for r in rows] == ["1", "3", "4"]
    assert rows[1]["intent"] == "unknown" and rows[1]["reason"] == "empty"
    assert "1 empty" in err and "1 bad rows skipped" in err


def test_undecodable_bytes_name_the_line_and_encoding_fixes_it(fake_model, tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_bytes("id,text\n1,refund\n2,où est mon colis\n".encode("latin-1"))
    out = tmp_path / "o.jsonl"
    code, _, err = in_process("triage", str(source), "--intents", INTENTS, "--out", str(out))
    assert code == 2
    assert "t.csv:3:" in err and "--encoding" in err
    code, _, err = in_process(
        "triage", str(source), "--intents", INTENTS, "--out", str(out), "--encoding", "latin-1"
    )
    assert code == 0, err
    assert read_rows(out)[1]["id"] == "2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["t.jsonl", "--out", "o.jsonl"], "needs --intents (in process) or --server"),
        (["t.txt", "--intents", INTENTS, "--out", "o.jsonl"], "cannot tell the input's format"),
        (["t.jsonl", "--intents", INTENTS, "--out", "o.txt"], "name it .jsonl or .csv"),
        (["missing.jsonl", "--intents", INTENTS, "--out", "o.jsonl"], "cannot read missing.jsonl"),
        (
            ["t.jsonl", "--intents", INTENTS, "--out", "o.jsonl", "--encoding", "nonsense-enc"],
            "--encoding nonsense-enc: no such encoding",
        ),
        (["t.jsonl", "--intents", INTENTS, "--out", "/proc/nope/o.jsonl"], "/proc/nope"),
    ],
)
def test_usage_errors(
    fake_model, tmp_path: Path, monkeypatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "t.jsonl", tickets(1))
    code, _, err = in_process("triage", *args)
    assert code == 2
    assert message in err


async def test_in_process_and_server_write_the_same_rows(
    fake_model, fake_server, tmp_path: Path, monkeypatch
) -> None:
    # the CLI runs on a thread (the server answers on this loop): no signal handlers there
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    overlong = [
        {"id": "long", "text": "refund " * 3000},  # 21,000 characters: over serve's limit
        {"id": "long+subject", "subject": "Order help", "text": "refund " * 2858},
    ]
    source = write_jsonl(tmp_path / "t.jsonl", [*tickets(40), *overlong])
    local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    code, _, err = await asyncio.to_thread(
        in_process, "triage", str(source), "--intents", INTENTS, "--out", str(local)
    )
    assert code == 0, err
    address = f"127.0.0.1:{fake_server.port}"
    code, _, err = await asyncio.to_thread(
        in_process, "triage", str(source), "--server", address, "--out", str(remote),
        "--max-text-chars", "100000",  # the server, not this client, refuses the long ones
    )  # fmt: skip
    assert code == 0, err
    ours, theirs = read_rows(local), read_rows(remote)
    assert len(ours) == len(theirs) == 42
    # an overlong ticket's row is the same whoever refused it
    assert ours[40:] == theirs[40:]
    assert [r["reason"] for r in ours[40:]] == ["error", "error"]
    assert str(ours[41]["error"]).endswith("characters with the subject exceed the limit of 20000")

    def without_scores(row: dict[str, object]) -> dict[str, object]:
        matches = [{**m, "score": None} for m in row["matches"]]  # type: ignore[attr-defined]
        return {**row, "score": None, "matches": matches}

    # the same intents, matches, evidence and revision; scores equal to float32 rounding
    # (the batch a text shares moves its last bits)
    assert [without_scores(r) for r in ours] == [without_scores(r) for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=2e-4)
        for m, n in zip(a["matches"], b["matches"], strict=True):  # type: ignore[call-overload]
            assert m["score"] == pytest.approx(n["score"], abs=2e-4)


def test_triage_reads_stdin_with_a_format(fake_model, tmp_path: Path, monkeypatch) -> None:
    import io

    data = "".join(json.dumps(t) + "\n" for t in tickets(3)).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "o.jsonl"
    code, _, err = in_process(
        "triage", "-", "--format", "jsonl", "--intents", INTENTS, "--out", str(out)
    )
    assert code == 0, err
    assert len(read_rows(out)) == 3


# --------------------------------------------------------------- kill -9, then --resume

#: The CLI in a child process with the fake model, as the ``fake_model`` fixture sets it.
LAUNCHER = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import router.model.loading
from router import cli
from fakes import serving_fake
router.model.loading.load_encoder = lambda model_dir, threads=None: serving_fake()
cli._resolve_model = Path
sys.exit(cli.main(sys.argv[1:]))
"""


def triage_process(*args: str, model: str | None = None) -> list[str]:
    """The CLI's ``triage`` as a child: on the fake model, or on catalogue ``model``."""
    if model is not None:
        program = ["-m", "router.cli"]
        args = (*args, "--model", model)
    else:
        program = ["-c", LAUNCHER.format(tests=str(ROOT / "tests"))]
    return [sys.executable, *program, "--log-level", "warning", "triage", *args]


def committed_rows(out: Path) -> int:
    """Rows the checkpoint says are committed (0 before the first commit)."""
    try:
        size = json.loads(checkpoint_of(out).read_text())["bytes"]
    except (FileNotFoundError, ValueError):
        return 0
    return out.read_bytes()[:size].count(b"\n")


@pytest.mark.parametrize(
    ("suffix", "model"),
    [
        (".jsonl", None),
        (".csv", None),
        # int8 products with fixed activation scales: a text's vector does not depend on
        # its batch, so the resumed bytes match too
        pytest.param(".jsonl", "minilm-int8", marks=pytest.mark.model),
    ],
)
def test_resume_after_sigkill_mid_file_writes_what_an_uninterrupted_run_writes(
    tmp_path: Path, suffix: str, model: str | None, request: pytest.FixtureRequest
) -> None:
    if model is not None:
        request.getfixturevalue("int8_model_dir")  # pulled, as `model pull` pulls it
    rows = tickets(300)
    whole = tmp_path / f"whole{suffix}"
    source = write_jsonl(tmp_path / "tickets.jsonl", rows)
    done = subprocess.run(
        triage_process(str(source), "--intents", INTENTS, "--out", str(whole),
                       "--batch-size", "16", model=model),
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    # The same file, fed through a named pipe: the child has read the first 100 tickets
    # and can read no further, so it is certainly killed in the middle of the file.
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / f"out{suffix}"
    child = subprocess.Popen(
        triage_process(str(fifo), "--intents", INTENTS, "--out", str(out), "--batch-size", "16",
                       model=model),
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with fifo.open("w", encoding="utf-8") as pipe:
            pipe.write("".join(json.dumps(r) + "\n" for r in rows[:100]))
            pipe.flush()
            deadline = time.monotonic() + 120
            while committed_rows(out) < 96 and time.monotonic() < deadline:  # 6 batches of 16
                assert child.poll() is None, child.stderr.read() if child.stderr else ""
                time.sleep(0.01)
            assert committed_rows(out) >= 96
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stderr:
            child.stderr.close()
    assert checkpoint_of(out).exists()
    with out.open("ab") as f:  # as if the kill had torn a row in half
        f.write(b"T-00101,refund_requ")

    resumed = subprocess.run(
        triage_process(str(source), "--intents", INTENTS, "--out", str(out), "--batch-size", "16",
                       "--resume", model=model),
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "already there" in resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert not checkpoint_of(out).exists()


async def test_a_ticket_the_server_refuses_gets_a_row_saying_why(
    fake_server, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    rows = [*tickets(2), {"id": "huge", "text": "refund " * 3000}]  # 21,000 characters
    source = write_jsonl(tmp_path / "t.jsonl", rows)
    out = tmp_path / "o.jsonl"
    code, _, err = await asyncio.to_thread(
        in_process, "triage", str(source), "--server", f"127.0.0.1:{fake_server.port}",
        "--out", str(out), "--max-text-chars", "100000",
    )  # fmt: skip
    assert code == 0, err
    written = read_rows(out)
    assert [r["id"] for r in written] == ["T-00000", "T-00001", "huge"]
    assert written[2]["intent"] == "unknown" and written[2]["reason"] == "error"
    assert str(written[2]["error"]).startswith("INVALID_ARGUMENT: text: 21000 characters")
    assert "1 not routed (reason error)" in err


async def test_a_ticket_over_the_servers_message_size_stops_the_run_without_retries(
    fake_server, tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    rows = [*tickets(2), {"id": "huge", "text": "refund " * 150_000}]  # about 1 MB
    source = write_jsonl(tmp_path / "t.jsonl", rows)
    code, _, err = await asyncio.to_thread(
        in_process, "triage", str(source), "--server", f"127.0.0.1:{fake_server.port}",
        "--out", str(tmp_path / "o.jsonl"), "--max-text-chars", "10000000",
    )  # fmt: skip
    assert code == 1
    assert "larger than the server takes in one message: lower --max-text-chars" in err
    assert "retrying" not in caplog.text


def test_triage_with_the_real_model_finds_both_requests_of_a_ticket(
    model_dir: Path, tmp_path: Path
) -> None:
    from helpers import run_cli

    source = write_jsonl(tmp_path / "t.jsonl", tickets(6))
    out = tmp_path / "o.jsonl"
    done = run_cli("triage", str(source), "--intents", INTENTS, "--out", str(out),
                   model_dir=model_dir)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [t["id"] for t in tickets(6)]
    both = {m["intent"] for m in rows[0]["matches"]}  # type: ignore[attr-defined]
    # "The charger arrived broken, please refund it. ... Please change my delivery address"
    assert "change_delivery_address" in both, rows[0]
    assert both & {"request_refund", "damaged_item", "broken_device", "return_item"}, rows[0]
    assert rows[1]["intent"] in {"track_delivery", "missing_delivery"}, rows[1]
    # "tell me a joke about cats", subject "Order help": only the subject asks anything
    assert all(m["evidence"]["field"] == "subject" for m in rows[4]["matches"])  # type: ignore[attr-defined]
