"""Ticket evaluation: reading ticket files, the multi-label metrics, eval and tune on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import in_process

from router.errors import DataError
from router.quality.run import TICKET_BATCH, run_ticket_eval
from router.quality.ticket_eval import (
    LabelledTicket,
    TicketFields,
    choose_ticket_threshold,
    is_ticket_file,
    load_tickets,
    score_tickets,
    sweep_tickets,
    ticket_grid,
)
from router.routing.engine import Engine
from router.routing.index import Alternative, Prediction, Reason
from router.routing.intents import UNKNOWN, IntentSet
from router.routing.tickets import IntentMatch, Passage

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
BUNDLED = [INTENTS / "eval" / "tickets_val.jsonl", INTENTS / "eval" / "tickets_test.jsonl"]
NAMES = {"request_refund", "track_delivery", "cancel_order", "reset_password"}


def _prediction(*found: str, candidate: str | None = None) -> Prediction:
    best = found[0] if found else candidate or "track_delivery"
    matches = tuple(IntentMatch(n, 0.6, 0.4, Passage("x", 0, 1, "text")) for n in found)
    return Prediction(
        intent=best if found else UNKNOWN,
        score=0.6 if found else 0.3,
        threshold=0.4,
        alternatives=(Alternative(best, 0.6, "e"),),
        reason=Reason.MATCHED if found else Reason.BELOW_THRESHOLD,
        matches=matches,
    )


def _ticket(*labels: str) -> LabelledTicket:
    return LabelledTicket("t", "", "text", labels, 1)


def test_metrics_count_every_label_of_every_ticket() -> None:
    tickets = [
        _ticket("request_refund"),  # right
        _ticket("track_delivery"),  # right, plus one too many
        _ticket("cancel_order", "reset_password"),  # one of two
        _ticket(UNKNOWN),  # answered unknown: right
        _ticket("request_refund"),  # unknown: wrong, but the candidate is right
    ]
    predictions = [
        _prediction("request_refund"),
        _prediction("track_delivery", "cancel_order"),
        _prediction("reset_password"),
        _prediction(),
        _prediction(candidate="request_refund"),
    ]
    card = score_tickets(tickets, predictions)
    # pairs: tp refund, track, reset, unknown = 4; fp cancel, unknown = 2; fn cancel, refund = 2
    assert card.micro_precision == pytest.approx(4 / 6)
    assert card.micro_recall == pytest.approx(4 / 6)
    assert card.micro_f1 == pytest.approx(4 / 6)
    assert card.exact_match == pytest.approx(2 / 5)
    assert (card.single_tickets, card.multi_tickets, card.out_of_scope_tickets) == (3, 1, 1)
    assert card.single_top1 == pytest.approx(2 / 3)
    assert card.single_candidate_top1 == pytest.approx(1.0)
    assert card.multi_found == pytest.approx(1 / 2)
    assert card.unknown_recall == 1.0
    refund = card.per_label["request_refund"]
    assert (refund.precision, refund.recall, refund.support) == (1.0, 0.5, 2)
    assert card.per_label["cancel_order"].f1 == 0.0
    with pytest.raises(ValueError, match="length"):
        score_tickets(tickets, predictions[:2])


def test_jsonl_and_csv_tickets_read_alike(tmp_path: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        json.dumps(
            {"id": "a", "subject": "Refund", "text": "money back", "labels": ["request_refund"]}
        )
        + "\n\n"
        + json.dumps({"id": 2, "text": "where is it", "labels": "track_delivery; cancel_order"})
        + "\n"
        + json.dumps({"text": "a joke", "intent": "unknown"})
        + "\n",
        encoding="utf-8",
    )
    csv_file = tmp_path / "t.csv"
    csv_file.write_text(
        "id,subject,text,labels\n"
        "a,Refund,money back,request_refund\n"
        '2,,"where is it",track_delivery|cancel_order\n'
        '5,,"a joke","[""unknown""]"\n',
        encoding="utf-8",
    )
    from_jsonl = load_tickets(jsonl, NAMES)
    from_csv = load_tickets(csv_file, NAMES)
    assert [(t.id, t.subject, t.text, t.labels) for t in from_jsonl][:2] == [
        (t.id, t.subject, t.text, t.labels) for t in from_csv
    ][:2]
    assert from_jsonl[1].labels == ("track_delivery", "cancel_order")
    assert [t.line for t in from_jsonl] == [1, 3, 4]
    assert from_csv[2].labels == (UNKNOWN,)
    assert is_ticket_file(jsonl) and is_ticket_file(csv_file)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "where is it", "intent": "track_delivery"}\n', encoding="utf-8")
    assert not is_ticket_file(rows)


def test_bad_tickets_are_named_by_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(
        '{"id": "a", "text": "fine", "labels": ["request_refund"]}\n'
        '{"id": "b", "text": "", "labels": ["request_refund"]}\n'
        '{"id": "c", "text": "x", "labels": ["no_such_intent"]}\n'
        '{"id": "d", "text": "x", "labels": ["unknown", "request_refund"]}\n'
        '{"id": "a", "text": "x", "labels": ["request_refund"]}\n'
        "{not json\n"
        '{"id": "f", "text": "x", "labels": []}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError) as caught:
        load_tickets(data, NAMES)
    message = str(caught.value)
    for line, what in [
        (2, "text"),
        (3, "no_such_intent"),
        (4, "cannot go with intents"),
        (5, "repeats line 1"),
        (6, "malformed JSON"),
        (7, "labels"),
    ]:
        assert f"bad.jsonl:{line}" in message and what in message
    broken = tmp_path / "bad.csv"
    broken.write_text('id,text,labels\n1,"ok",request_refund\n2,"two\nlines",x,extra\n', "utf-8")
    with pytest.raises(DataError, match=r"bad.csv:3: 4 fields, the header has 3"):
        load_tickets(broken, NAMES)
    subject_only = tmp_path / "subject.csv"  # a ticket may be its subject alone
    subject_only.write_text("id,text,subject,labels\n1,,I want a refund,request_refund\n")
    (ticket,) = load_tickets(subject_only, NAMES)
    assert (ticket.text, ticket.subject) == ("", "I want a refund")
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("key,body,tags\n7,where is my parcel,track_delivery\n", "utf-8")
    (ticket,) = load_tickets(renamed, NAMES, TicketFields(id="key", text="body", labels="tags"))
    assert (ticket.id, ticket.text, ticket.labels) == (
        "7",
        "where is my parcel",
        ("track_delivery",),
    )


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_the_bundled_ticket_sets_load(path: Path, bundled: IntentSet) -> None:
    tickets = load_tickets(path, {i.name for i in bundled.intents})
    assert len(tickets) >= 75
    several = sum(len(t.labels) > 1 for t in tickets)
    assert 0.25 <= several / len(tickets) <= 0.4
    assert any(t.labels == (UNKNOWN,) for t in tickets)
    words = [len(f"{t.subject} {t.text}".split()) for t in tickets]
    assert min(words) >= 20 and max(words) <= 800


def test_val_and_test_tickets_share_no_body(bundled: IntentSet) -> None:
    val, test = (load_tickets(p) for p in BUNDLED)
    first = {t.text.split("\n\n")[1] if t.text.count("\n\n") else t.text for t in val}
    assert not any(t.text.split("\n\n")[0] in first for t in test)


def test_run_ticket_eval_decides_as_classify(fake_engine: Engine, bundled: IntentSet) -> None:
    run = run_ticket_eval(fake_engine, bundled, BUNDLED[0], load=False)
    served = []
    for start in range(0, len(run.tickets), TICKET_BATCH):  # the same batches: same floats
        batch = run.tickets[start : start + TICKET_BATCH]
        texts, subjects = [t.text for t in batch], [t.subject for t in batch]
        served += fake_engine.classify(texts, 3, multi_intent=True, subjects=subjects).predictions
    assert run.predictions == served
    grid = ticket_grid(run.scoring)
    points = sweep_tickets(run.tickets, run.scoring, grid)
    best = choose_ticket_threshold(points)
    assert best.scorecard.micro_f1 == max(p.scorecard.micro_f1 or 0 for p in points)
    # at the index's own default the sweep gives what eval reports
    (now,) = sweep_tickets(run.tickets, run.scoring, [run.index.default_threshold])
    assert now.scorecard == run.scorecard()
    assert np.all(np.diff(grid) > 0)


def test_eval_and_tune_read_ticket_files(fake_model: list[Path], tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_text(
        "ref,title,body,tags\n"
        '1,Parcel,"Hello,\n\nWhere is my parcel? It was due Monday.\n\nThanks,\nAnn",'
        "track_delivery\n"
        '2,,"I want to reset my password please. Also where is my parcel?",'
        '"reset_password,track_delivery"\n'
        "3,,zebra quantum xylophone,unknown\n",
        encoding="utf-8",
    )
    fields = ["--id-field", "ref", "--subject-field", "title", "--text-field", "body"]
    fields += ["--labels-field", "tags"]
    predictions = tmp_path / "p.jsonl"
    code, out, err = in_process(
        "eval", "--intents", str(INTENTS), "--data", str(data), "--json", *fields,
        "--predictions", str(predictions),
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["tickets"] == 3 and record["micro_f1"] is not None
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["matches"][0]["evidence"]["field"] in {"subject", "text"}
    code, out, err = in_process("eval", "--intents", str(INTENTS), "--data", str(data), *fields)
    assert code == 0, err
    assert "micro F1" in out and "3 tickets" in out
    code, out, err = in_process(
        "tune", "--intents", str(INTENTS), "--data", str(data), "--json", *fields
    )
    assert code == 0, err
    tuned = json.loads(out)
    assert tuned["chosen"]["micro_f1"] >= tuned["now"]["micro_f1"]
    code, _, err = in_process(
        "tune", "--intents", str(INTENTS), "--data", str(data), "--per-intent", *fields
    )
    assert code != 0 and "per-intent" in err
    code, _, err = in_process("eval", "--intents", str(INTENTS), "--data", str(data))
    assert code != 0 and "text" in err  # the default field names are missing: file:line
