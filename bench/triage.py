"""Triage throughput and memory: ``intent-router triage`` against sentence-transformers.

Throughput (the default): 1,000 synthetic helpdesk tickets of about 300 words (a
greeting, one or two requests taken from the bundled eval sets, context sentences, a
sign-off and signature, a quoted earlier mail in one ticket out of three; seeded), or
``--tickets FILE.jsonl``. Measured in the same run:

The tickets are cut into ``--rounds`` slices (5), each triaged and then encoded by the
baseline, in turn, so that load from other work on the machine falls on both alike;
the figures are totals over the rounds.

* triage: ``intent-router triage TICKETS --intents intents --out OUT.jsonl`` as a child
  process, tickets/s as its summary line gives it (the loop alone: reading, cutting,
  routing, writing; not loading the model) and its peak RSS (``wait4``);
* sentence-transformers (bench/st_baseline.py in the benchmark's own venv, torch CPU):
  ``encode(chunks, batch_size=32)`` over exactly the passages the engine embeds for
  those tickets (``Engine._passages``), as chunks/s, divided by the chunks per ticket.

The target: triage at least 2x the tickets/s of the baseline.

Memory (``--memory``): short tickets (one or two sentences) at 10,000 and 100,000
tickets, the triage child's peak RSS and tickets/s at each: memory stays flat with the
file's length. ``--fake`` runs the child on tests/fakes.py's encoder: what the triage
loop itself holds (reading, batches, ids, writing), without hours of model time.

    python bench/triage.py [--tickets FILE.jsonl] [--count 1000] [--model NAME|DIR]
                           [--st-python PATH] [--memory [--fake] [--sizes N...]] [--no-record]

The baseline needs bench/.venv-st (``python bench/throughput.py --setup-st``), or
``--st-python`` naming another venv's python that has sentence-transformers (its model
is the ``model`` folder beside its venv's ``bin``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _model import add_model_flag, open_model
from _record import Run, add_record_flag

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
ST_PYTHON = ROOT / "bench" / ".venv-st" / "bin" / "python"
TARGET_RATIO = 2.0

GREETINGS = ["Hi,", "Hello team,", "Hi there,", "Dear support,", "Good morning,", ""]
CONTEXT = [
    "I have been a customer of your shop for several years and I have always been happy "
    "with the service so far.",
    "I placed the order last Tuesday evening from my laptop and paid with my usual card.",
    "The confirmation email arrived straight away, so I assumed everything was fine.",
    "My neighbour said a courier came by in the afternoon but nobody rang the bell.",
    "I checked the tracking page twice this morning and it still shows the same status.",
    "This was meant to be a birthday present for my sister, so the timing matters a lot.",
    "I already tried the help pages on your website but could not find an answer there.",
    "The box looked fine from the outside, only when I opened it did I notice the problem.",
    "I work from home most days, so someone is usually around to take a parcel in.",
    "Last time I had a question your colleague on the chat sorted it out in minutes.",
    "I attached a photo of the label in case it helps you find the shipment.",
    "To be honest I am a bit disappointed, as this is the second time this year.",
    "Please let me know if you need any more details from me, like the receipt.",
    "I would appreciate a quick answer because I am travelling at the end of next week.",
]
SIGN_OFFS = ["Thanks,", "Best regards,", "Kind regards,", "Many thanks,", "Cheers,"]
NAMES = ["Ann Becker", "Tom Ruiz", "Priya Nair", "Lukas Weber", "Mei Chen", "Sam O'Neil"]
QUOTE = (
    "On Mon, 3 Nov 2026 at 09:12, Shop Support <support@shop.example> wrote:\n"
    "> Thank you for contacting us. Your request has been received and one of our\n"
    "> agents will get back to you within two working days.\n"
    "> Kind regards, the Shop team"
)


def requests_of(intents: Path) -> list[str]:
    """In-scope requests from the bundled eval sets (out-of-scope rows left out)."""
    texts = []
    for name in ("val.jsonl", "test.jsonl"):
        for line in (intents / "eval" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and row["intent"] != "unknown":
                texts.append(row["text"].rstrip(".!? ") + ".")
    return texts


def words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def synthetic_ticket(
    rng: random.Random, requests: list[str], i: int, target: int
) -> dict[str, str]:
    """About ``target`` words: requests placed among context sentences."""
    asked = rng.sample(requests, 2 if rng.random() < 1 / 3 else 1)
    body = [rng.choice(GREETINGS), ""]
    sentences = list(asked)
    while words(" ".join(sentences)) < target - 20:
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(CONTEXT))
    paragraph: list[str] = []
    for sentence in sentences:
        paragraph.append(sentence)
        if len(paragraph) >= 4:
            body += [" ".join(paragraph), ""]
            paragraph = []
    if paragraph:
        body += [" ".join(paragraph), ""]
    body += [rng.choice(SIGN_OFFS), rng.choice(NAMES), f"Order {rng.randrange(10_000, 99_999)}"]
    if i % 3 == 0:
        body += ["", QUOTE]
    return {"id": f"T{i:06d}", "subject": asked[0][:60], "text": "\n".join(body).strip()}


def short_ticket(rng: random.Random, requests: list[str], i: int) -> dict[str, str]:
    return {"id": f"S{i:07d}", "subject": "", "text": " ".join(rng.sample(requests, 1 + i % 2))}


def write_tickets(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


#: The CLI with tests/fakes.py's encoder instead of the model (``--memory --fake``).
FAKE_LAUNCHER = """
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


def run_triage(tickets: Path, out: Path, model: str, *, fake: bool = False) -> dict[str, float]:
    """The CLI as a child: its tickets/s (summary line) and peak RSS in MB."""
    program = (
        ["-c", FAKE_LAUNCHER.format(tests=str(ROOT / "tests"))] if fake else ["-m", "router.cli"]
    )
    argv = [sys.executable, *program, "--log-level", "error", "triage", str(tickets),
            "--intents", str(INTENTS), "--out", str(out), "--model", model]  # fmt: skip
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if child.returncode != 0:
        sys.exit(f"triage failed ({child.returncode}):\n{stderr}")
    found = re.search(r"triage: (\d+) tickets in ([\d.]+) s \(([\d.]+) tickets/s\)", stderr)
    if found is None:
        sys.exit(f"no summary line in:\n{stderr}")
    return {
        "tickets": int(found.group(1)),
        "seconds": float(found.group(2)),
        "tickets_per_s": float(found.group(3)),
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def st_rate(st_python: Path, chunks: list[str], threads: int) -> dict[str, Any] | None:
    model = st_python.parent.parent / "model"
    if not st_python.exists() or not (model / "modules.json").exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(chunks, f)
    try:
        out = subprocess.run(
            [str(st_python), str(ROOT / "bench" / "st_baseline.py"), "--model", str(model),
             "--texts", f.name, "--duration", "1", "--threads", str(threads)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1"},
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def throughput(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from router.routing.engine import Engine
    from router.routing.intents import load_intents

    rng = random.Random(17)
    requests = requests_of(INTENTS)
    if args.tickets is not None:
        rows = [
            json.loads(line)
            for line in args.tickets.read_text("utf-8").splitlines()
            if line.strip()
        ]
        source = args.tickets
    else:
        rows = [synthetic_ticket(rng, requests, i, args.words) for i in range(args.count)]
        source = work / "tickets.jsonl"
        write_tickets(source, rows)
    mean_words = sum(words(r.get("subject", "") + " " + r["text"]) for r in rows) / len(rows)

    # the passages the engine embeds for these tickets: the baseline encodes the same
    model = open_model(args.model)
    engine = Engine(model.encoder)
    engine.load(load_intents(INTENTS))
    chunk_lists = [
        [p.text for p in engine._passages(r["text"], r.get("subject", ""))] for r in rows
    ]
    chunks = [c for lst in chunk_lists for c in lst]
    threads = model.threads or 2
    del engine, model

    # Rounds alternate the two on slices of the tickets, so that the load other work puts
    # on the machine falls on both alike; the totals over the rounds are compared.
    triage: list[dict[str, float]] = []
    st_runs: list[dict[str, Any]] = []
    st_seconds = 0.0
    cut = [round(len(rows) * k / args.rounds) for k in range(args.rounds + 1)]
    for k in range(args.rounds):
        part = rows[cut[k] : cut[k + 1]]
        part_file = work / f"part{k}.jsonl"
        write_tickets(part_file, part)
        triage.append(run_triage(part_file, work / f"out{k}.jsonl", args.model))
        part_chunks = [c for lst in chunk_lists[cut[k] : cut[k + 1]] for c in lst]
        st_part = st_rate(args.st_python, part_chunks, threads)
        if st_part is not None:
            st_runs.append(st_part)
            st_seconds += len(part_chunks) / st_part["batched_per_s"]
        line = f"  round {k + 1}: triage {triage[-1]['tickets_per_s']:.1f} tickets/s"
        if st_part is not None:
            st_tps = st_part["batched_per_s"] * len(part) / len(part_chunks)
            line += f", sentence-transformers {st_tps:.1f} tickets/s"
        print(line)
    triage_seconds = sum(t["seconds"] for t in triage)
    best = len(rows) / triage_seconds
    st = None
    if st_runs:
        st = {**st_runs[-1], "batched_per_s": len(chunks) / st_seconds,
              "peak_rss_mb": max(r["peak_rss_mb"] for r in st_runs)}  # fmt: skip
    per_ticket = len(chunks) / len(rows)
    figures: dict[str, Any] = {
        "tickets": len(rows),
        "mean_words": round(mean_words, 1),
        "chunks": len(chunks),
        "chunks_per_ticket": round(per_ticket, 2),
        "rounds": args.rounds,
        "triage_runs": triage,
        "triage_tickets_per_s": best,
        "triage_peak_rss_mb": max(t["peak_rss_mb"] for t in triage),
    }
    print(f"{len(rows)} tickets, {mean_words:.0f} words on average, {len(chunks)} passages "
          f"({per_ticket:.1f} a ticket)")  # fmt: skip
    print(f"  triage: {best:.2f} tickets/s over the rounds ({triage_seconds:.1f} s), peak RSS "
          f"{figures['triage_peak_rss_mb']:.0f} MB")  # fmt: skip
    if st is None:
        print(f"  sentence-transformers: not measured ({args.st_python} or its model is missing; "
              "python bench/throughput.py --setup-st)")  # fmt: skip
        return figures
    st_tickets = st["batched_per_s"] / per_ticket
    ratio = best / st_tickets
    figures |= {"st": st, "st_tickets_per_s": st_tickets, "ratio": ratio,
                "target_ratio": TARGET_RATIO, "target_met": ratio >= TARGET_RATIO}  # fmt: skip
    print(f"  sentence-transformers (torch {st['torch']}, {st['threads']} threads): "
          f"{st['batched_per_s']:.0f} passages/s = {st_tickets:.1f} tickets/s, "
          f"peak RSS {st['peak_rss_mb']:.0f} MB")  # fmt: skip
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(
        f"  ratio triage / sentence-transformers: {ratio:.2f}x (target {TARGET_RATIO}x: {verdict})"
    )
    return figures


def memory(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(23)
    requests = requests_of(INTENTS)
    figures: dict[str, Any] = {}
    for count in args.sizes:
        source = work / f"short{count}.jsonl"
        write_tickets(source, [short_ticket(rng, requests, i) for i in range(count)])
        run = run_triage(source, work / f"short{count}.out.jsonl", args.model, fake=args.fake)
        figures[str(count)] = run
        print(f"{count:>7} short tickets: {run['tickets_per_s']:.0f} tickets/s, "
              f"peak RSS {run['peak_rss_mb']:.0f} MB")  # fmt: skip
        source.unlink()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=Path, help="JSONL tickets (id, subject, text)")
    parser.add_argument("--count", type=int, default=1000, help="synthetic tickets")
    parser.add_argument("--words", type=int, default=300, help="words a synthetic ticket has")
    parser.add_argument(
        "--rounds", type=int, default=5,
        help="slices of the tickets, each triaged then encoded by the baseline in turn",
    )  # fmt: skip
    parser.add_argument("--st-python", type=Path, default=ST_PYTHON)
    parser.add_argument("--memory", action="store_true", help="peak RSS at 10k and 100k tickets")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--fake", action="store_true",
        help="with --memory: tests/fakes.py's encoder instead of the model (what triage "
        "itself holds, without the model's time)",
    )  # fmt: skip
    add_model_flag(parser)
    add_record_flag(parser)
    args = parser.parse_args()
    name = "triage_memory" + ("_fake" if args.fake else "") if args.memory else "triage"
    run = Run(name, args)
    with tempfile.TemporaryDirectory() as tmp:
        figures = memory(args, Path(tmp)) if args.memory else throughput(args, Path(tmp))
    path = run.finish(figures)
    if path is not None:
        print(f"recorded {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
