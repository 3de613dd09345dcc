"""Triage's reading, writing and resuming, on a stand-in router (no model, no engine).

The stand-in answers from the words of each ticket, deterministically, so that two runs
over the same input must write the same bytes; what is tested here is the plumbing:
line numbers, bad rows, encodings, missing fields, empty tickets, the checkpoint and
``--resume`` after a failure at any batch, with a torn row left behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from router.errors import DataError
from router.triage.reading import BadRow, Fields, InputFormat, Ticket, read_tickets
from router.triage.routers import Evidence, Match, Routed
from router.triage.run import BadRowPolicy, TriageJob, triage
from router.triage.writing import CSV_COLUMNS, checkpoint_of


class WordRouter:
    """``refund`` in a ticket routes to refund_request, ``address`` adds change_address."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.batches = 0
        self.fail_after = fail_after
        self.seen: list[str] = []
        self.answering: str | None = "r1"

    def revision(self) -> str | None:
        return self.answering

    def route(self, tickets: Sequence[Ticket]) -> list[Routed]:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt  # as a kill would: nothing after this batch is written
        self.batches += 1
        self.seen += [t.id for t in tickets]
        out = []
        for t in tickets:
            matches = []
            for word, intent in (("refund", "refund_request"), ("address", "change_address")):
                at = t.text.find(word)
                if at >= 0:
                    matches.append(
                        Match(intent, 0.7, 0.4, Evidence(word, at, at + len(word), "text"))
                    )
            best = matches[0].intent if matches else "unknown"
            reason = "matched" if matches else "below_threshold"
            out.append(
                Routed(
                    t.id,
                    best,
                    0.7 if matches else 0.1,
                    0.4,
                    reason,
                    tuple(matches),
                    self.answering or "r1",
                )
            )
        return out

    def close(self) -> None:
        pass


def rows(path: Path) -> list[Ticket | BadRow]:
    fmt = InputFormat.CSV if path.suffix == ".csv" else InputFormat.JSONL
    with path.open("rb") as f:
        return list(read_tickets(f, fmt, Fields(), name=path.name))


def run(
    source: Path, out: Path, router: WordRouter | None = None, **options: object
) -> tuple[WordRouter, object]:
    router = router or WordRouter()
    fmt = InputFormat.CSV if source.suffix == ".csv" else InputFormat.JSONL
    out_fmt = InputFormat.CSV if out.suffix == ".csv" else InputFormat.JSONL
    with source.open("rb") as f:
        job = TriageJob(f, source.name, fmt, out, out_fmt, **options)  # type: ignore[arg-type]
        return router, triage(job, router)


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


# ---------------------------------------------------------------------------- reading


def test_csv_rows_carry_the_line_they_start_on_even_across_quoted_newlines(write) -> None:
    path = write(
        "t.csv",
        'id,subject,text\n'
        '1,Refund,"please refund\nthe charger"\n'
        '\n'
        '2,,"my address changed"\n',
    )  # fmt: skip
    got = rows(path)
    assert got == [
        Ticket("1", "please refund\nthe charger", "Refund", 2),
        Ticket("2", "my address changed", "", 5),
    ]


def test_a_malformed_csv_row_is_reported_with_its_line(write) -> None:
    path = write("t.csv", 'id,text\n1,fine\n2,too,many\n3,"bad"quote\n4,fine again\n')
    got = rows(path)
    assert [r.id for r in got if isinstance(r, Ticket)] == ["1", "4"]
    bad = [r for r in got if isinstance(r, BadRow)]
    assert [b.problem.line for b in bad] == [3, 4]
    assert "3 cells where the header has 2" in str(bad[0])
    assert str(bad[0]).startswith("t.csv:3:")


def test_jsonl_bad_rows_name_their_line_and_what_is_wrong(write) -> None:
    path = write(
        "t.jsonl",
        jsonl({"id": "a", "text": "x"}) + "{not json\n" + "[1, 2]\n"
        + jsonl({"id": "b"}, {"id": "c", "text": 5}, {"id": 7, "text": "numeric id"}),
    )  # fmt: skip
    got = rows(path)
    assert [r.id for r in got if isinstance(r, Ticket)] == ["a", "7"]
    problems = {b.problem.line: str(b) for b in got if isinstance(b, BadRow)}
    assert set(problems) == {2, 3, 4, 5}
    assert "not JSON" in problems[2]
    assert "a JSON object is expected, not list" in problems[3]
    assert "text: missing" in problems[4]
    assert "text: must be a string, not int" in problems[5]


def test_repeated_and_empty_ids_are_bad_rows_naming_the_first_use(write) -> None:
    path = write("t.jsonl", jsonl({"id": "a", "text": "x"}, {"id": "", "text": "y"},
                                  {"id": "a", "text": "z"}))  # fmt: skip
    bad = [r for r in rows(path) if isinstance(r, BadRow)]
    assert [b.problem.line for b in bad] == [2, 3]
    assert "the id is empty" in str(bad[0])
    assert "already used on line 1" in str(bad[1])


@pytest.mark.parametrize(
    ("name", "text"),
    [("t.csv", "ticket,body\n1,hello\n"), ("t.jsonl", jsonl({"ticket": "1", "body": "hello"}))],
)
def test_a_missing_field_is_an_error_listing_the_fields_present(
    write, name: str, text: str
) -> None:
    with pytest.raises(DataError) as caught:
        rows(write(name, text))
    message = str(caught.value)
    assert f"{name}:1: id: no such field; the fields present are 'ticket', 'body'" in message
    assert "text: no such field" in message


def test_an_explicit_subject_field_must_exist_but_the_default_is_optional(write) -> None:
    path = write("t.csv", "id,text\n1,hello\n")
    assert rows(path) == [Ticket("1", "hello", "", 2)]
    with path.open("rb") as f, pytest.raises(DataError, match="subj: no such field"):
        list(read_tickets(f, InputFormat.CSV, Fields(subject="subj"), name="t.csv"))


def test_undecodable_bytes_name_the_line_and_the_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,text\n1,fine\n2,caf\xe9 au lait\n")
    with pytest.raises(DataError) as caught:
        rows(path)
    assert "t.csv:3:" in str(caught.value)
    assert "byte e9 is not valid utf-8" in str(caught.value)
    assert "--encoding" in str(caught.value)
    with path.open("rb") as f:
        got = list(read_tickets(f, InputFormat.CSV, Fields(), name="t.csv", encoding="latin-1"))
    assert got[-1] == Ticket("2", "café au lait", "", 3)


def read_bytes(data: bytes, fmt: InputFormat, encoding: str = "utf-8") -> list[Ticket | BadRow]:
    return list(read_tickets(io.BytesIO(data), fmt, Fields(), name="t", encoding=encoding))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_wide_encodings_read_as_the_same_tickets(encoding: str) -> None:
    """Excel's "Unicode text" is UTF-16 with a byte order mark: a newline there is two
    bytes, and a 0a byte may sit inside a character (U+010A)."""
    csv_text = 'id,text\r\n1,I want a refund\r\n2,"where is\nmy parcel \u010a"\r\n'
    jsonl_text = jsonl({"id": "1", "text": "退款"}, {"id": "2", "text": "Ċ parcel"})
    data = csv_text.encode(encoding)
    if encoding.endswith(("-le", "-be")):
        data = "\ufeff".encode(encoding) + data  # a mark the codec itself does not read
    assert read_bytes(data, InputFormat.CSV, encoding) == [
        Ticket("1", "I want a refund", "", 2),
        Ticket("2", "where is\nmy parcel \u010a", "", 3),
    ]
    assert read_bytes(jsonl_text.encode(encoding), InputFormat.JSONL, encoding) == [
        Ticket("1", "退款", "", 1),
        Ticket("2", "Ċ parcel", "", 2),
    ]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le"])
@pytest.mark.parametrize("line", [1, 2, 3])
def test_undecodable_wide_bytes_name_their_line(encoding: str, line: int) -> None:
    """In UTF-16-LE a newline's second byte opens the next piece read: the line count
    must not lose it."""
    texts = [f"ticket {k}" if k != line else "tick\ud800et" for k in range(1, 5)]
    records = jsonl(*({"id": str(k), "text": t} for k, t in enumerate(texts, start=1)))
    data = records.replace("\\ud800", "\ud800").encode(encoding, "surrogatepass")
    with pytest.raises(DataError, match=rf"^t:{line}: bytes that are not valid {encoding}"):
        read_bytes(data, InputFormat.JSONL, encoding)


def test_an_open_quote_names_every_line_it_swallowed() -> None:
    data = b'id,text\n1,refund\n2,"where is\n3,my parcel\n4,cancel\n5,"x"\n6,hello\n'
    got = read_bytes(data, InputFormat.CSV)
    assert got[0] == Ticket("1", "refund", "", 2) and got[-1] == Ticket("6", "hello", "", 7)
    (bad,) = got[1:-1]
    assert isinstance(bad, BadRow)
    assert str(bad).startswith("t:3: malformed CSV row (lines 3-6, one record)")


def test_old_mac_line_endings_are_named_and_a_stray_carriage_return_is_not_them() -> None:
    with pytest.raises(DataError, match="carriage return alone"):
        read_bytes(b"id,text\r1,refund\r", InputFormat.CSV)
    got = read_bytes(b"id,text\n1,ref\rund\n2,fine\n", InputFormat.CSV)
    assert "a carriage return inside a cell that is not quoted" in str(got[0])
    assert got[1] == Ticket("2", "fine", "", 3)


def test_a_csv_cell_is_read_to_the_callers_limit_and_no_further() -> None:
    long = "refund " * 30_000  # 210,000 characters: over csv's 131,072
    data = f"id,text\n1,{long}\n2,fine\n".encode()
    got = list(
        read_tickets(io.BytesIO(data), InputFormat.CSV, Fields(), name="t", max_cell_chars=2**20)
    )
    assert got == [Ticket("1", long, "", 2), Ticket("2", "fine", "", 3)]
    bad, fine = read_bytes(data, InputFormat.CSV)  # the csv module's own limit
    assert isinstance(bad, BadRow) and "a cell over 131,072 characters" in str(bad)
    assert fine == Ticket("2", "fine", "", 3)  # reading goes on after it


def test_a_lone_surrogate_is_replaced_in_a_text_and_refused_in_an_id() -> None:
    """A JSON export that cut an emoji in half writes its first \\u escape alone."""
    data = b'{"id": "1", "subject": "\\ud83d", "text": "refund \\ud83d"}\n'
    data += b'{"id": "a\\ud800", "text": "refund"}\n'
    first, second = read_bytes(data, InputFormat.JSONL)
    assert first == Ticket("1", "refund \ufffd", "\ufffd", 1)
    assert isinstance(second, BadRow) and "lone surrogate" in str(second)


def test_reading_is_lazy(tmp_path: Path) -> None:
    """The first ticket comes before the rest of the stream is read."""
    stream = io.BytesIO(b"".join(b'{"id": "%d", "text": "t"}\n' % i for i in range(1000)))
    tickets = read_tickets(stream, InputFormat.JSONL, Fields(), name="-")
    assert next(tickets) == Ticket("0", "t", "", 1)
    assert stream.tell() < 1000 * 10


# ---------------------------------------------------------------------------- running


TICKETS = [
    {"id": f"t{i}", "subject": "Order", "text": text}
    for i, text in enumerate(
        ["please refund me", "new address please", "refund and address", "hello there"] * 10
    )
]


def test_every_ticket_gets_one_row_with_its_matches_and_evidence(write, tmp_path: Path) -> None:
    invisible = {"id": "zw", "subject": "\u200b", "text": "\ufeff\u200d\n"}  # zero-width only
    source = write(
        "t.jsonl",
        jsonl(*TICKETS[:4], {"id": "empty", "subject": " ", "text": ""}, invisible),
    )
    out = tmp_path / "out.jsonl"
    _, summary = run(source, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["t0", "t1", "t2", "t3", "empty", "zw"]
    assert lines[2]["intent"] == "refund_request"
    assert [(m["intent"], m["evidence"]) for m in lines[2]["matches"]] == [
        ("refund_request", {"text": "refund", "start": 0, "end": 6, "field": "text"}),
        ("change_address", {"text": "address", "start": 11, "end": 18, "field": "text"}),
    ]
    assert lines[4] == {"id": "empty", "intent": "unknown", "score": 0.0, "threshold": 0.0,
                        "reason": "empty", "matches": [], "revision": ""}  # fmt: skip
    assert lines[5]["reason"] == "empty"
    assert summary.empty == 2  # type: ignore[attr-defined]
    assert not checkpoint_of(out).exists()  # a finished run leaves none


def test_csv_output_has_a_header_and_one_row_per_ticket(write, tmp_path: Path) -> None:
    import csv

    source = write("t.jsonl", jsonl(*TICKETS[:3]))
    out = tmp_path / "out.csv"
    run(source, out)
    with out.open(newline="") as f:
        table = list(csv.reader(f))
    assert tuple(table[0]) == CSV_COLUMNS
    assert [r[0] for r in table[1:]] == ["t0", "t1", "t2"]
    assert table[3][5] == "refund_request;change_address"
    assert json.loads(table[3][6])[1]["evidence"]["start"] == 11


def test_bad_rows_stop_the_run_after_committing_what_came_before(write, tmp_path: Path) -> None:
    source = write("t.csv", "id,text\n1,refund\n2,x,y\n3,address\n")
    out = tmp_path / "out.jsonl"
    for batch_size in (1, 4):  # the rows before it, in its batch too
        with pytest.raises(DataError, match=r"t\.csv:3: malformed CSV row"):
            run(source, out, batch_size=batch_size)
        assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1"]
    _, summary = run(source, out, on_bad_row=BadRowPolicy.SKIP)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1", "3"]
    assert summary.bad_rows == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("fail_after", [0, 1, 3, 9])
def test_resume_after_a_failure_and_a_torn_row_writes_what_one_run_writes(
    write, tmp_path: Path, suffix: str, fail_after: int
) -> None:
    source = write("t.jsonl", jsonl(*TICKETS))
    whole = tmp_path / f"whole{suffix}"
    run(source, whole, batch_size=4)

    out = tmp_path / f"out{suffix}"
    with pytest.raises(KeyboardInterrupt):
        run(source, out, WordRouter(fail_after=fail_after), batch_size=4)
    assert checkpoint_of(out).exists()
    with out.open("ab") as f:  # a batch written but not committed, its last row torn
        f.write(b'{"id": "t99", "intent": "refund_req')
    router, summary = run(source, out, resume=True, batch_size=4)
    assert out.read_bytes() == whole.read_bytes()
    assert summary.resumed == 4 * fail_after  # type: ignore[attr-defined]
    assert router.seen == [t["id"] for t in TICKETS[4 * fail_after :]]  # none routed twice
    assert not checkpoint_of(out).exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resume_with_another_revision_is_refused_a_server_is_not_held_to_one(
    write, tmp_path: Path, suffix: str
) -> None:
    source = write("t.jsonl", jsonl(*TICKETS))
    out = tmp_path / f"out{suffix}"
    with pytest.raises(KeyboardInterrupt):
        run(source, out, WordRouter(fail_after=1), batch_size=4)
    before = out.read_bytes()
    other = WordRouter()
    other.answering = "r2"  # another --model or other --intents, in process
    with pytest.raises(DataError, match=r"written by revision r1; this run answers with r2"):
        run(source, out, other, resume=True, batch_size=4)
    assert out.read_bytes() == before and other.seen == []  # nothing written or routed
    server = WordRouter()
    server.answering = None  # a server: its revision may change under any run
    _, summary = run(source, out, server, resume=True, batch_size=4)
    assert summary.resumed == 4  # type: ignore[attr-defined]
    assert not checkpoint_of(out).exists()


def test_resuming_a_finished_output_routes_nothing(write, tmp_path: Path) -> None:
    source = write("t.jsonl", jsonl(*TICKETS[:5]))
    out = tmp_path / "out.jsonl"
    run(source, out)
    before = out.read_bytes()
    router, summary = run(source, out, resume=True)
    assert out.read_bytes() == before
    assert router.seen == []
    assert summary.resumed == 5  # type: ignore[attr-defined]


def test_resuming_with_another_input_is_refused_not_mixed(write, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(write("t.jsonl", jsonl(*TICKETS[:5])), out)
    before = out.read_bytes()
    other = write("other.jsonl", jsonl(TICKETS[9], *TICKETS[1:5]))
    with pytest.raises(DataError, match=r"other\.jsonl:1: id: 't9', but ticket 't0' is where"):
        run(other, out, resume=True)
    shorter = write("short.jsonl", jsonl(*TICKETS[:3]))
    with pytest.raises(DataError, match=r"holds 5 tickets, this input only 3"):
        run(shorter, out, resume=True)
    assert out.read_bytes() == before  # nothing written by either


def test_a_checkpoint_longer_than_the_output_is_refused(write, tmp_path: Path) -> None:
    source = write("t.jsonl", jsonl(*TICKETS[:5]))
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(source, out, WordRouter(fail_after=1), batch_size=2)
    out.write_bytes(b"")
    with pytest.raises(DataError, match="changed since"):
        run(source, out, resume=True)


def test_the_progress_bar_counts_resumed_tickets_apart(write, tmp_path: Path) -> None:
    from router.triage.progress import count_tickets, progress_bar

    source = write("t.jsonl", jsonl(*TICKETS[:10]) + "\n")
    assert count_tickets(source, InputFormat.JSONL, "utf-8") == 10
    csv_source = write("t.csv", 'id,text\n1,"two\nlines"\n2,x\n')
    assert count_tickets(csv_source, InputFormat.CSV, "utf-8") == 2
    stream = io.StringIO()
    progress = progress_bar(10, stream)
    assert progress is not None  # tqdm is installed with the dev extras
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(source, out, WordRouter(fail_after=1), batch_size=4)
    fmt = InputFormat.JSONL
    with source.open("rb") as f:
        triage(
            TriageJob(f, "t.jsonl", fmt, out, fmt, resume=True, batch_size=4),
            WordRouter(),
            progress,
        )
    progress.close()
    assert "10/10" in stream.getvalue()


# ------------------------------------------------------------------ the output's safety


def test_an_output_that_is_the_input_is_refused_and_the_input_kept(write, tmp_path: Path) -> None:
    source = write("t.jsonl", jsonl(*TICKETS[:3]))
    before = source.read_bytes()
    with pytest.raises(DataError, match=r"--out .*t\.jsonl is this input itself"):
        run(source, source)
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    with pytest.raises(DataError, match="is this input itself"):
        run(source, link)
    assert source.read_bytes() == before


def test_an_input_that_cannot_be_read_leaves_an_existing_output_as_it_was(
    write, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run(write("t.jsonl", jsonl(*TICKETS[:3])), out)
    before = out.read_bytes()
    wrong = write("wrong.jsonl", jsonl({"ticket": "1", "body": "refund"}))
    with pytest.raises(DataError, match="no such field"):
        run(wrong, out)
    assert out.read_bytes() == before
    assert not checkpoint_of(out).exists()


def test_a_malformed_first_row_leaves_an_existing_output_as_it_was(write, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(write("t.jsonl", jsonl(*TICKETS[:3])), out)
    before = out.read_bytes()
    with pytest.raises(DataError, match=r"t\.jsonl:1: a JSON object is expected"):
        run(write("t.jsonl", "[1, 2]\n{oops\n"), out)
    assert out.read_bytes() == before
    assert not checkpoint_of(out).exists()


def test_a_file_system_without_locks_still_triages(write, tmp_path: Path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "out.jsonl"
    run(write("t.jsonl", jsonl(*TICKETS[:3])), out)
    assert len(out.read_text().splitlines()) == 3
    assert "no file locks here" in caplog.text


def test_a_second_run_into_the_same_output_is_refused_while_the_first_writes(
    write, tmp_path: Path
) -> None:
    from router.triage.writing import OutputFile

    out = tmp_path / "out.jsonl"
    first = OutputFile(out, InputFormat.JSONL)
    first.open(resume=False)
    try:
        with pytest.raises(DataError, match="another triage run is writing this output"):
            run(write("t.jsonl", jsonl(*TICKETS[:3])), out)
    finally:
        first.close()
    run(write("t.jsonl", jsonl(*TICKETS[:3])), out)  # the lock went with the first run
    assert len(out.read_text().splitlines()) == 3


def test_a_csv_output_of_no_tickets_still_has_its_header(write, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    run(write("t.csv", "id,text\n"), out)
    assert out.read_text().splitlines() == [",".join(CSV_COLUMNS)]


def test_an_overlong_ticket_gets_an_error_row_and_is_not_routed(write, tmp_path: Path) -> None:
    long = {"id": "long", "subject": "refund", "text": "x" * 95}  # 101 characters
    source = write("t.jsonl", jsonl(TICKETS[0], long, TICKETS[1]))
    out = tmp_path / "out.jsonl"
    router, summary = run(source, out, max_text_chars=100)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["t0", "long", "t1"]
    assert lines[1]["reason"] == "error" and lines[1]["intent"] == "unknown"
    assert lines[1]["error"] == (
        "INVALID_ARGUMENT: text: 101 characters with the subject exceed the limit of 100"
    )
    assert router.seen == ["t0", "t1"]
    assert summary.errors == 1  # type: ignore[attr-defined]
