"""Single requests beside bulk batches: are chatbot callers still served?

Starts ``intent-router serve`` (bundled intents, port 0, default batching and limits) as
a separate process and drives it from this one for ``--duration`` seconds after a
``--warmup``, with two kinds of closed-loop callers, each on its own channel:

* ``--bulk`` callers (16) sending ClassifyBatch of ``--batch`` texts (512), deadline
  ``--bulk-timeout`` (60 s);
* ``--single`` callers (4) sending Classify of one text, deadline ``--single-timeout``
  (1 s: a chatbot turn).

With ``--tickets``, the bulk callers send helpdesk tickets instead: the bodies and
subjects of <intents>/eval/tickets_val.jsonl + tickets_test.jsonl, cycled, with
``multi_intent`` (each ticket is cut into passages, several model rows each, so one
batch chunk is seconds of model work; the server serves waiting Classify calls between
slices of it). ``--ticket-chars N`` makes every ticket N characters long instead (the
eval utterances as sentences, one after another: a long complaint, not a quoted thread,
which cleaning would cut): at 20,000, the server's limit, about 400 passages a ticket.

A caller whose call failed waits ``--backoff`` (0.1 s) before the next one.

The texts are the utterances of <intents>/eval/val.jsonl + test.jsonl, cycled. It
prints the single requests' success rate (target >= 99%) and latency (p50, p99, max),
their errors by code, the bulk requests' latency and throughput (the texts the model
ran in the window, from the server's own metrics, less the single requests; whole
batches answered in the window are coarser), and the server's CPU use and peak
resident memory (VmHWM). The run is written to bench/results/
(bench/_record.py; ``--no-record``). Client and server share the machine's cores.

    python bench/fairness.py [--model NAME|DIR] [--intents DIR] [--duration 20]
                             [--warmup 3] [--bulk 16] [--batch 512|64] [--single 4]
                             [--single-timeout 1.0] [--bulk-timeout 60] [--backoff 0.1]
                             [--tickets [--ticket-chars N]] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from _load import proc_cpu_seconds, proc_status_mb, stop_process
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from throughput import load_texts

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
#: The single requests' success rate this benchmark is held to.
TARGET = 0.99


class Server:
    """``intent-router serve`` on a free port, default batching and limits."""

    def __init__(self, model: str, intents: Path) -> None:
        with socket.socket() as probe:  # a free port for the metrics endpoint
            probe.bind(("127.0.0.1", 0))
            self.metrics_port = probe.getsockname()[1]
        self.argv = [
            sys.executable, "-m", "router.cli", "--log-level", "warning", "serve",
            "--intents", str(intents), "--model", model, "--port", "0", "--no-watch",
            "--no-cache", "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def texts_run(self) -> float:
        """Texts the model has run so far (``intent_router_batch_texts_sum``)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("intent_router_batch_texts_sum "):
                    return float(line.split()[1])
        raise RuntimeError("no intent_router_batch_texts_sum in the server's metrics")

    def stop(self) -> None:
        stop_process(self.proc)


def load_tickets(intents: Path) -> list[tuple[str, str]]:
    """(body, subject) of every ticket in <intents>/eval/tickets_{val,test}.jsonl."""
    tickets = []
    for name in ("tickets_val.jsonl", "tickets_test.jsonl"):
        for line in (intents / "eval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                tickets.append((row["text"], row.get("subject", "")))
    return tickets


def long_tickets(texts: list[str], chars: int, count: int) -> list[tuple[str, str]]:
    """``count`` tickets of ``chars`` characters: ``texts`` as sentences, cycled."""
    sentences = itertools.cycle(t.rstrip(".?!") + "." for t in texts)
    tickets = []
    for _ in range(count):
        body = ""
        while len(body) < chars:
            body += next(sentences) + " "
        tickets.append((body[:chars], ""))
    return tickets


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    args: argparse.Namespace,
    server: Server,
    texts: list[str],
    tickets: list[tuple[str, str]] | None,
) -> dict[str, Any]:
    target, pid = f"127.0.0.1:{server.port}", server.proc.pid
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    channels = [
        grpc.aio.insecure_channel(target, options=options) for _ in range(args.bulk + args.single)
    ]
    await asyncio.gather(*(c.channel_ready() for c in channels))
    if tickets:
        pairs = itertools.cycle(tickets)
        chosen = [next(pairs) for _ in range(args.batch)]
        batch = pb.ClassifyBatchRequest(
            texts=[body for body, _ in chosen],
            subjects=[subject for _, subject in chosen],
            multi_intent=True,
            top_k=3,
        )
    else:
        cycle = itertools.cycle(texts)
        batch = pb.ClassifyBatchRequest(texts=[next(cycle) for _ in range(args.batch)], top_k=3)
    singles = [pb.ClassifyRequest(text=t, top_k=3) for t in texts]
    begin = time.perf_counter() + args.warmup
    end = begin + args.duration
    single_ok: list[float] = []
    single_errors: dict[str, int] = {}
    bulk_ok: list[float] = []
    bulk_errors: dict[str, int] = {}
    cpu: dict[str, float] = {}

    async def single_caller(channel: grpc.aio.Channel, offset: int) -> None:
        stub = pb_grpc.IntentRouterStub(channel)
        for k in itertools.count(offset * 97):
            started = time.perf_counter()
            if started >= end:
                return
            try:
                await stub.Classify(singles[k % len(singles)], timeout=args.single_timeout)
                failed = None
            except grpc.aio.AioRpcError as exc:
                failed = exc.code().name
            done = time.perf_counter()
            if started >= begin:  # calls started inside the window count
                if failed is None:
                    single_ok.append(done - started)
                else:
                    single_errors[failed] = single_errors.get(failed, 0) + 1
            if failed is not None:
                await asyncio.sleep(args.backoff)

    async def bulk_caller(channel: grpc.aio.Channel) -> None:
        stub = pb_grpc.IntentRouterStub(channel)
        while True:
            started = time.perf_counter()
            if started >= end:
                return
            try:
                await stub.ClassifyBatch(batch, timeout=args.bulk_timeout)
                failed = None
            except grpc.aio.AioRpcError as exc:
                failed = exc.code().name
            done = time.perf_counter()
            if begin <= done <= end:  # bulk work finished inside the window counts
                if failed is None:
                    bulk_ok.append(done - started)
                else:
                    bulk_errors[failed] = bulk_errors.get(failed, 0) + 1
            if failed is not None:
                await asyncio.sleep(args.backoff)

    async def meter() -> None:
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        cpu["server0"], cpu["client0"] = proc_cpu_seconds(pid), time.process_time()
        cpu["texts0"] = await asyncio.to_thread(server.texts_run)
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu["server1"], cpu["client1"] = proc_cpu_seconds(pid), time.process_time()
        cpu["texts1"] = await asyncio.to_thread(server.texts_run)

    await asyncio.gather(
        meter(),
        *(bulk_caller(channels[k]) for k in range(args.bulk)),
        *(single_caller(channels[args.bulk + k], k) for k in range(args.single)),
    )
    for channel in channels:
        await channel.close()
    calls = len(single_ok) + sum(single_errors.values())
    model_texts = cpu["texts1"] - cpu["texts0"]
    return {
        "single": {
            "calls": calls,
            "ok": len(single_ok),
            "success_rate": len(single_ok) / calls if calls else float("nan"),
            "errors": single_errors,
            "p50_ms": pct(single_ok, 0.50) * 1e3,
            "p99_ms": pct(single_ok, 0.99) * 1e3,
            "max_ms": max(single_ok, default=float("nan")) * 1e3,
        },
        "bulk": {
            "requests_ok": len(bulk_ok),
            "errors": bulk_errors,
            # the texts batches held in the window less the single requests' (one text
            # each); with --tickets, tickets (a ticket counts one, whatever its passages)
            "texts_per_s": (model_texts - len(single_ok)) / args.duration,
            "answered_texts_per_s": len(bulk_ok) * args.batch / args.duration,
            "p50_s": statistics.median(bulk_ok) if bulk_ok else float("nan"),
            "max_s": max(bulk_ok, default=float("nan")),
        },
        "server_cpu": (cpu["server1"] - cpu["server0"]) / args.duration,
        "client_cpu": (cpu["client1"] - cpu["client0"]) / args.duration,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", metavar="NAME|DIR", help="served model")
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--bulk", type=int, default=16, help="ClassifyBatch callers")
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="texts per ClassifyBatch (default 512; with --tickets 64, with "
        "--ticket-chars 8: under the server's 200,000 characters a request)",
    )
    parser.add_argument("--single", type=int, default=4, help="Classify callers")
    parser.add_argument("--single-timeout", type=float, default=1.0, help="Classify deadline, s")
    parser.add_argument("--bulk-timeout", type=float, default=60.0, help="batch deadline, s")
    parser.add_argument("--backoff", type=float, default=0.1, help="wait after an error, s")
    parser.add_argument(
        "--tickets", action="store_true", help="bulk callers send tickets, multi_intent"
    )
    parser.add_argument(
        "--ticket-chars",
        type=int,
        default=0,
        metavar="N",
        help="with --tickets: tickets of N characters made of the eval utterances",
    )
    add_record_flag(parser)
    args = parser.parse_args()
    if args.batch is None:
        args.batch = (8 if args.ticket_chars else 64) if args.tickets else 512
    run = Run("fairness", args)
    texts = load_texts(args.intents)
    tickets = None
    if args.tickets:
        tickets = load_tickets(args.intents)
        if args.ticket_chars:
            tickets = long_tickets(texts, args.ticket_chars, len(tickets))
    server = Server(args.model, args.intents)
    try:
        figures = asyncio.run(drive(args, server, texts, tickets))
        figures["server_vmhwm_mb"] = proc_status_mb(server.proc.pid, "VmHWM")
    finally:
        server.stop()
    figures["server_argv"] = server.argv[3:]
    s, b = figures["single"], figures["bulk"]
    kind = "tickets" if args.tickets else "texts"
    print(
        f"{args.single} Classify callers (deadline {args.single_timeout:g} s) beside "
        f"{args.bulk} ClassifyBatch({args.batch} {kind}) callers, {args.duration:g} s "
        f"(model {args.model}, {len(os.sched_getaffinity(0))} cores shared with the client)"
    )
    verdict = "meets" if s["success_rate"] >= TARGET else "MISSES"
    print(
        f"single: {s['ok']}/{s['calls']} answered = {s['success_rate']:.2%} ({verdict} the "
        f"{TARGET:.0%} target); p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
        f"max {s['max_ms']:.1f} ms; errors {s['errors'] or 'none'}"
    )
    print(
        f"bulk:   {b['texts_per_s']:.0f} {kind}/s through the model; {b['requests_ok']} "
        f"ClassifyBatch answered ({b['answered_texts_per_s']:.0f} {kind}/s), p50 "
        f"{b['p50_s']:.2f} s, max {b['max_s']:.2f} s; errors {b['errors'] or 'none'}"
    )
    print(
        f"server: {figures['server_cpu']:.2f} CPUs, peak RSS (VmHWM) "
        f"{figures['server_vmhwm_mb']:.1f} MB; client {figures['client_cpu']:.2f} CPUs"
    )
    run.finish(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
