"""Classify latency over gRPC on loopback vs the model's own in-process time, one run.

Starts `intent-router serve --model NAME|DIR` as a separate process on a free port with
the bundled intents, then alternates, in rounds so that both see the same machine state:

* ``--block`` sequential Classify calls for one short utterance over gRPC;
* ``--block`` encoder calls for the same text in this process with the same thread
  count and the encoder class the server uses (``router.model.loading.load_encoder``:
  tokenise + model + pooling for a token-level graph, the graph alone for a text-level
  one), back to back (the model's own time);
* the same, paced: each call after an idle gap as long as the gRPC client's median
  (client wall - the server's own engine time), so the model idles between calls as it
  does inside the server (a warm, busy loop is faster than any served request can be).

Each round starts with a 0.2 s pause so that this process's onnxruntime threads have
stopped spinning before the gRPC block (they would take a core from the server).

Prints p50/p99 of each and the overhead the service adds over both model figures, and
writes them to bench/results/ (bench/_record.py; ``--no-record`` to skip).

    python bench/latency.py [--model minilm|use-multilingual|DIR] [--rounds 10] [--block 60]
                            [--threads N] [--text "where is my parcel"] [--no-record]
"""

from __future__ import annotations

import argparse
import time

import grpc
import numpy as np
from _model import add_model_flag, open_model
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from throughput import Server, ServerSettings

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples_ms, 50)), float(np.percentile(samples_ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=60, help="calls of each kind per round")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="onnxruntime threads, server and in process (default: the encoder's own)",
    )
    parser.add_argument("--text", default="where is my parcel")
    add_model_flag(parser)
    add_record_flag(parser)
    args = parser.parse_args()
    run = Run("latency", args)

    chosen = open_model(args.model, threads=args.threads)
    encoder = chosen.encoder
    server = Server(ServerSettings(threads=args.threads), model=chosen.serve_arg)
    wall: list[float] = []
    server_encode: list[float] = []
    idle: list[float] = []
    model: list[float] = []
    paced: list[float] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            request = pb.ClassifyRequest(text=args.text, top_k=3)
            for _ in range(100):  # warm-up, both sides
                stub.Classify(request)
                encoder.encode([args.text])
            for _ in range(args.rounds):
                time.sleep(0.2)  # this process's onnxruntime threads stop spinning first
                for _ in range(args.block):
                    start = time.perf_counter()
                    reply = stub.Classify(request)
                    elapsed = (time.perf_counter() - start) * 1e3
                    wall.append(elapsed)
                    server_encode.append(reply.timings.encode_ms)
                    idle.append(elapsed - reply.timings.total_ms)
                for _ in range(args.block):
                    start = time.perf_counter()
                    encoder.encode([args.text])
                    model.append((time.perf_counter() - start) * 1e3)
                gap = float(np.median(idle)) / 1e3
                for _ in range(args.block):
                    time.sleep(gap)
                    start = time.perf_counter()
                    encoder.encode([args.text])
                    paced.append((time.perf_counter() - start) * 1e3)
    finally:
        server.stop()

    g50, g99 = percentiles(wall)
    s50, s99 = percentiles(server_encode)
    m50, m99 = percentiles(model)
    p50, p99 = percentiles(paced)
    n = args.rounds * args.block
    load = run.load_before["1m"]
    print(
        f"model {chosen.label} ({type(encoder).__name__}, served with --model {chosen.serve_arg})"
    )
    threads = chosen.threads
    print(f"text: {args.text!r}; {args.rounds} rounds x {args.block} calls of each kind "
          f"({n} each); {threads} onnxruntime threads (server and in process); "
          f"load average {load:.2f}")  # fmt: skip
    print(f"{'path':<52}{'p50 ms':>8}{'p99 ms':>8}")
    print(f"{'Classify over gRPC (loopback, client wall)':<52}{g50:>8.2f}{g99:>8.2f}")
    print(f"{'  of which encode inside the server':<52}{s50:>8.2f}{s99:>8.2f}")
    print(f"{'model in process, back to back':<52}{m50:>8.2f}{m99:>8.2f}")
    idle_ms = float(np.median(idle))
    label = f"model in process, paced (idle {idle_ms:.2f} ms between)"
    print(f"{label:<52}{p50:>8.2f}{p99:>8.2f}")
    print(f"service overhead at p50 over the model back to back: {g50 - m50:+.2f} ms "
          f"(goal <= 1 ms); paced: {g50 - p50:+.2f} ms")  # fmt: skip
    run.finish(
        {
            "model": chosen.record(),
            "text": args.text,
            "calls_each": n,
            "threads": threads,
            "grpc_ms": {"p50": g50, "p99": g99},
            "server_encode_ms": {"p50": s50, "p99": s99},
            "model_back_to_back_ms": {"p50": m50, "p99": m99},
            "model_paced_ms": {"p50": p50, "p99": p99},
            "paced_idle_ms": idle_ms,
            "overhead_p50_ms": {"over_back_to_back": g50 - m50, "over_paced": g50 - p50},
        }
    )


if __name__ == "__main__":
    main()
